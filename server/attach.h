/* attach.h - one connection's attachments, and the single detach path of the server. */
#ifndef DSHM_SRV_ATTACH_H
#define DSHM_SRV_ATTACH_H

#include <stdint.h>

#include "segments.h"

/* A segment this connection has attached nrw + nro times (nattch counts each). */
struct srv_att {
  struct srv_seg *seg;
  int32_t shmid;
  uint32_t nrw;   /* read-write attachments */
  uint32_t nro;   /* SHM_RDONLY attachments */
};

struct srv_atts {
  struct srv_att *v;
  uint32_t n;
  uint32_t cap;
};

/* All below: loop thread only. */

/* The attachment record of shmid, or NULL if this connection has not attached it. */
struct srv_att *srv_att_find(struct srv_atts *a, int32_t shmid);

/* shmat: checks and counts through srv_seg_attach and records it. *out is the segment. */
int srv_att_add(struct srv_atts *a, struct srv_segtab *t, const struct srv_cred *c,
                int32_t shmid, int32_t shmflg, struct srv_seg **out);

/* REATTACH: records nrw + nro existing attachments of shmid (srv_seg_reattach). -EBUSY if
 * this connection already has the segment attached. */
int srv_att_readd(struct srv_atts *a, struct srv_segtab *t, const struct srv_cred *c,
                  int32_t shmid, uint32_t nrw, uint32_t nro, struct srv_seg **out);

/* INHERIT: a forked child's nrw + nro inherited attachments of shmid, which this
 * connection has attached (the parent's): added to its record and counted by
 * srv_seg_inherit (no permission check; lpid = pid, the parent's). -EINVAL if this
 * connection has not attached shmid, -EOVERFLOW if its counts would wrap. */
int srv_att_inherit(struct srv_atts *a, struct srv_segtab *t, uint32_t pid, int32_t shmid,
                    uint32_t nrw, uint32_t nro);

/* The one detach path (shmdt, disconnect, shutdown): drops one attachment of shmid by node;
 * on its last one the node leaves the segment's directory; then nattch-- and, if the
 * segment is marked SHM_DEST and unused, its destruction. -EINVAL if not attached. */
int srv_att_detach(struct srv_atts *a, struct srv_segtab *t, uint32_t node, int32_t shmid,
                   uint32_t pid);

/* Detaches everything (through srv_att_detach) and frees the records. */
void srv_att_detach_all(struct srv_atts *a, struct srv_segtab *t, uint32_t node, uint32_t pid);

#endif
