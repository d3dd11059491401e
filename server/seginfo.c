/* seginfo.c - answers SEG_INFO (seginfo.h). */
#include "seginfo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "dispatch.h"
#include "owners.h"
#include "segments.h"
#include "server.h"

#define S_IRUGO 0444

static int reply(struct srv_conn *c, const struct proto_msg *m, uint32_t total, uint32_t next,
                 uint32_t n, const uint8_t *entries) {
  struct proto_msg r;

  srv__reply_init(&r, m);
  r.u.seginfo_reply = (struct proto_seginfo_reply){m->u.seginfo.what, total, next, n, entries};
  (void)srv__conn_send(c, &r);
  return 0;
}

/* The hosts with an attachment record of the segment, in node order from entry first. */
static int hosts(struct srv_conn *c, const struct proto_msg *m) {
  static uint8_t out[PROTO_SEGINFO_MAX_ENTRIES * PROTO_SEGHOST_SIZE];
  struct srv_server *s = c->srv;
  uint32_t total = 0, n = 0, next = 0;

  for (uint32_t i = 0; i < s->cfg->max_conns; i++) {
    struct srv_conn *h = s->conns[i];
    struct srv_att *at;
    struct proto_seghost e;
    if (h == NULL || h->state != SRV_CONN_READY ||
        (at = srv_att_find(&h->atts, m->u.seginfo.shmid)) == NULL)
      continue;
    if (total++ < m->u.seginfo.first || n == PROTO_SEGINFO_MAX_ENTRIES)
      continue;
    memset(&e, 0, sizeof e);
    e.tag = h->node_tag;
    e.node = h->node;
    e.nrw = at->nrw;
    e.nro = at->nro;
    memcpy(e.name, h->peer.name, sizeof e.name - 1); /* printable since HELLO */
    proto_seghost_put(out + (size_t)n++ * PROTO_SEGHOST_SIZE, &e);
    next = total;
  }
  if (n == 0)
    next = total;
  return reply(c, m, total, next, n, out);
}

/* One page as a run of one: mode, flags and its holders in ascending node order (so that
 * equal sets compare equal). holders has room for every node. */
static uint32_t page_run(const struct srv_dpage_info *pi, uint32_t idx, struct proto_segrun *r,
                         uint32_t *holders) {
  uint32_t n = 0;

  memset(r, 0, sizeof *r);
  r->first = idx;
  r->count = 1;
  r->flags = pi->busy || pi->queued ? PROTO_SEGRUN_BUSY : 0;
  if (pi->owner == SRV_NODE_GHOST) {
    r->mode = PROTO_MODE_EXCLUSIVE;
    r->flags |= PROTO_SEGRUN_GHOST;
  } else if (pi->owner != SRV_NODE_NONE) {
    r->mode = PROTO_MODE_EXCLUSIVE;
    holders[n++] = pi->owner;
  } else if (pi->nsharers > 0) {
    r->mode = PROTO_MODE_SHARED;
    for (uint32_t i = 0; i < pi->nsharers; i++) {
      uint32_t v = pi->sharers[i], j = n++;
      for (; j > 0 && holders[j - 1] > v; j--) /* a few sharers: insertion sort */
        holders[j] = holders[j - 1];
      holders[j] = v;
    }
  } else {
    r->mode = PROTO_MODE_INVALID;
  }
  r->nholders = (uint16_t)(n < UINT16_MAX ? n : UINT16_MAX);
  for (uint32_t i = 0; i < PROTO_SEGINFO_HOLDERS; i++)
    r->holder[i] = i < n ? holders[i] : PROTO_NO_NODE;
  return n;
}

/* Runs of pages in the same state (mode, flags, holders), from page first on. */
static int pages(struct srv_conn *c, const struct proto_msg *m, const struct srv_seg *seg) {
  static uint8_t out[PROTO_SEGINFO_MAX_ENTRIES * PROTO_SEGRUN_SIZE];
  uint32_t max = c->srv->cfg->max_conns + 1u;
  uint64_t np = seg->npages < UINT32_MAX ? seg->npages : UINT32_MAX;
  uint32_t *base = malloc(2 * (size_t)max * sizeof *base), *cur, *prev, *t;
  uint32_t ncur, nprev = 0, n = 0;
  uint64_t idx = m->u.seginfo.first, stop;
  struct proto_segrun run = {0}, next;

  if (base == NULL)
    return srv__conn_send_status(c, m->h.opcode, m->h.reqid, -ENOMEM), 0;
  cur = base;
  prev = base + max;
  stop = idx + SRV_SEGINFO_SCAN_MAX < np ? idx + SRV_SEGINFO_SCAN_MAX : np;
  for (; idx < stop; idx++) {
    struct srv_dpage_info pi;
    if (srv_dir_page_info(seg->dir, idx, &pi) < 0)
      break;
    if (pi.nsharers > max - 1)
      pi.nsharers = max - 1; /* cannot happen: sharers are connected nodes */
    ncur = page_run(&pi, (uint32_t)idx, &next, cur);
    if (n > 0 && next.mode == run.mode && next.flags == run.flags && ncur == nprev &&
        memcmp(cur, prev, ncur * sizeof *cur) == 0) {
      run.count++;
      continue;
    }
    if (n > 0)
      proto_segrun_put(out + (size_t)(n - 1) * PROTO_SEGRUN_SIZE, &run);
    if (n == PROTO_SEGINFO_MAX_ENTRIES)
      break; /* this page starts the next reply */
    n++;
    run = next;
    t = prev, prev = cur, cur = t;
    nprev = ncur;
  }
  if (n > 0)
    proto_segrun_put(out + (size_t)(n - 1) * PROTO_SEGRUN_SIZE, &run);
  free(base);
  return reply(c, m, (uint32_t)np, (uint32_t)idx, n, out);
}

int srv__seg_info(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct srv_cred cr = srv__cred_of(c, &m->u.seginfo.cred);
  struct srv_seg *seg = srv_seg_lookup(&c->srv->segs, m->u.seginfo.shmid);

  (void)why;
  if (seg == NULL)
    return srv__conn_send_status(c, m->h.opcode, m->h.reqid, -EINVAL), 0;
  if (srv_ipc_perms(&seg->shm_perm, &cr, S_IRUGO) < 0)
    return srv__conn_send_status(c, m->h.opcode, m->h.reqid, -EACCES), 0;
  switch (m->u.seginfo.what) {
  case PROTO_SEGINFO_HOSTS:
    return hosts(c, m);
  case PROTO_SEGINFO_PAGES:
    if (m->u.seginfo.first > seg->npages)
      return srv__conn_send_status(c, m->h.opcode, m->h.reqid, -EINVAL), 0;
    return pages(c, m, seg);
  default: /* PROCS: only the host's agent knows its processes */
    return srv__relay(c, m, m->u.seginfo.tag);
  }
}
