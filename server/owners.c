/* owners.c - owns the OWNER_ALIVE questions relayed to host agents (owners.h). */
#include "owners.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "server.h"

#define OWNERS_MAX 4096u /* questions in flight, server-wide: one per waiting robust locker */

static struct srv_conn *conn_by_tag(struct srv_server *s, uint64_t tag) {
  for (uint32_t i = 0; i < s->cfg->max_conns; i++) {
    struct srv_conn *c = s->conns[i];
    if (c != NULL && c->node_tag == tag && c->state == SRV_CONN_READY)
      return c;
  }
  return NULL;
}

static void answer(struct srv_conn *asker, uint32_t reqid, const struct proto_owner *o,
                   uint32_t alive) {
  struct proto_msg r;

  memset(&r.h, 0, sizeof r.h);
  r.h.opcode = PROTO_OP_OWNER_ALIVE;
  r.h.flags = PROTO_F_REPLY;
  r.h.reqid = reqid;
  r.u.owner = *o;
  r.u.owner.alive = alive;
  (void)srv__conn_send(asker, &r);
}

int srv__owner_alive(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct srv_server *s = c->srv;
  struct srv_owners *o = &s->owners;
  struct srv_conn *t;
  struct proto_msg r;

  (void)why;
  t = m->u.owner.tag != 0 ? conn_by_tag(s, m->u.owner.tag) : NULL;
  if (t == NULL) {
    srv_metrics_inc(SRV_M_OWNER_LOCAL);
    answer(c, m->h.reqid, &m->u.owner, 0);
    return 0;
  }
  if (o->n >= OWNERS_MAX) {
    (void)srv__conn_send_status(c, m->h.opcode, m->h.reqid, -EAGAIN);
    return 0;
  }
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 16;
    struct srv_owner_q *nq = realloc(o->q, cap * sizeof *nq);
    if (nq == NULL) {
      (void)srv__conn_send_status(c, m->h.opcode, m->h.reqid, -ENOMEM);
      return 0;
    }
    o->q = nq;
    o->cap = cap;
  }
  memset(&r.h, 0, sizeof r.h);
  r.h.opcode = PROTO_OP_OWNER_ALIVE;
  r.h.reqid = ++o->next_reqid;
  r.u.owner = m->u.owner;
  r.u.owner.alive = 0;
  if (srv__conn_send(t, &r) < 0) {
    srv_metrics_inc(SRV_M_OWNER_LOCAL);
    answer(c, m->h.reqid, &m->u.owner, 0); /* closing: the host is going */
    return 0;
  }
  srv_metrics_inc(SRV_M_OWNER_RELAYED);
  o->q[o->n++] = (struct srv_owner_q){r.h.reqid, t->node, c->node, m->h.reqid};
  SRV_VLOG("node %u: owner %u/%u of node %u? asked (reqid %u)", c->node, m->u.owner.pid,
           m->u.owner.tid, t->node, r.h.reqid);
  return 0;
}

void srv__owner_answer(struct srv_conn *c, const struct proto_msg *m) {
  struct srv_server *s = c->srv;
  struct srv_owners *o = &s->owners;

  for (size_t i = 0; i < o->n; i++) {
    struct srv_owner_q q = o->q[i];
    struct srv_conn *a;
    if (q.sreqid != m->h.reqid || q.target != c->node)
      continue;
    o->q[i] = o->q[--o->n];
    a = q.asker < s->cfg->max_conns ? s->conns[q.asker] : NULL;
    if (a == NULL)
      return;
    if (m->h.status != 0)
      (void)srv__conn_send_status(a, PROTO_OP_OWNER_ALIVE, q.areqid,
                                  -proto_err_to_errno((int)m->h.status));
    else
      answer(a, q.areqid, &m->u.owner, m->u.owner.alive);
    return;
  }
}

void srv__owner_conn_gone(struct srv_conn *c) {
  struct srv_server *s = c->srv;
  struct srv_owners *o = &s->owners;
  size_t i = 0;

  while (i < o->n) {
    struct srv_owner_q q = o->q[i];
    if (q.target != c->node && q.asker != c->node) {
      i++;
      continue;
    }
    o->q[i] = o->q[--o->n];
    if (q.target == c->node && q.asker != c->node) {
      struct srv_conn *a = q.asker < s->cfg->max_conns ? s->conns[q.asker] : NULL;
      struct proto_owner none = {0};
      if (a != NULL)
        answer(a, q.areqid, &none, 0); /* the host is gone, and its processes with it */
    }
  }
}

void srv_owners_fini(struct srv_owners *o) {
  free(o->q);
  memset(o, 0, sizeof *o);
}
