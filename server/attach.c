/* attach.c - owns a connection's attachment records and the server's one detach path. */
#include "attach.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/shm.h>

struct srv_att *srv_att_find(struct srv_atts *a, int32_t shmid) {
  uint32_t i;
  for (i = 0; i < a->n; i++)
    if (a->v[i].shmid == shmid)
      return &a->v[i];
  return NULL;
}

int srv_att_add(struct srv_atts *a, struct srv_segtab *t, const struct srv_cred *c,
                int32_t shmid, int32_t shmflg, struct srv_seg **out) {
  struct srv_att *at = srv_att_find(a, shmid);
  int err;

  /* Room first: once nattch has moved, recording it must not fail. */
  if (at == NULL && a->n == a->cap) {
    uint32_t cap = a->cap ? a->cap * 2 : 4;
    struct srv_att *v = realloc(a->v, cap * sizeof *v);
    if (v == NULL)
      return -ENOMEM;
    a->v = v;
    a->cap = cap;
  }
  err = srv_seg_attach(t, c, shmid, shmflg, out);
  if (err < 0)
    return err;
  if (at == NULL) {
    at = &a->v[a->n++];
    at->seg = *out;
    at->shmid = shmid;
    at->nrw = at->nro = 0;
  }
  if (shmflg & SHM_RDONLY)
    at->nro++;
  else
    at->nrw++;
  return 0;
}

int srv_att_readd(struct srv_atts *a, struct srv_segtab *t, const struct srv_cred *c,
                  int32_t shmid, uint32_t nrw, uint32_t nro, struct srv_seg **out) {
  struct srv_att *at;
  int err;

  if (srv_att_find(a, shmid) != NULL)
    return -EBUSY;
  if (a->n == a->cap) {
    uint32_t cap = a->cap ? a->cap * 2 : 4;
    struct srv_att *v = realloc(a->v, cap * sizeof *v);
    if (v == NULL)
      return -ENOMEM;
    a->v = v;
    a->cap = cap;
  }
  err = srv_seg_reattach(t, c, shmid, nrw, nro, out);
  if (err < 0)
    return err;
  at = &a->v[a->n++];
  at->seg = *out;
  at->shmid = shmid;
  at->nrw = nrw;
  at->nro = nro;
  return 0;
}

int srv_att_inherit(struct srv_atts *a, struct srv_segtab *t, uint32_t pid, int32_t shmid,
                    uint32_t nrw, uint32_t nro) {
  struct srv_att *at = srv_att_find(a, shmid);

  if (at == NULL)
    return -EINVAL;
  /* The counts must stay exact: a wrapped one would end the record (and leave the
   * directory) while the segment still counts its attachments. */
  if (nrw > UINT32_MAX - at->nrw || nro > UINT32_MAX - at->nro)
    return -EOVERFLOW;
  at->nrw += nrw;
  at->nro += nro;
  srv_seg_inherit(t, at->seg, pid, nrw + nro);
  return 0;
}

int srv_att_detach(struct srv_atts *a, struct srv_segtab *t, uint32_t node, int32_t shmid,
                   uint32_t pid) {
  struct srv_att *at = srv_att_find(a, shmid);
  struct srv_seg *seg;

  if (at == NULL)
    return -EINVAL;
  seg = at->seg;
  /* DETACH carries no shmflg, so we cannot tell which attachment went: drop a read-only
   * one first, which keeps write rights as long as any read-write attachment may remain. */
  if (at->nro > 0)
    at->nro--;
  else
    at->nrw--;
  if (at->nro + at->nrw == 0) {
    /* Leave the directory before the segment can be destroyed with it. */
    srv_dir_forget(seg->dir, node);
    *at = a->v[--a->n];
  }
  srv__seg_detach(t, seg, pid);
  return 0;
}

void srv_att_detach_all(struct srv_atts *a, struct srv_segtab *t, uint32_t node, uint32_t pid) {
  while (a->n > 0)
    (void)srv_att_detach(a, t, node, a->v[a->n - 1].shmid, pid);
  free(a->v);
  a->v = NULL;
  a->cap = 0;
}
