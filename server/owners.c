/* owners.c - owns the questions relayed to host agents (owners.h). */
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

/* Sends m on to target under a reqid of the server's and remembers who asked. 0, or -errno
 * (nothing remembered). */
static int relay_to(struct srv_conn *c, const struct proto_msg *m, struct srv_conn *t) {
  struct srv_owners *o = &c->srv->owners;
  struct proto_msg r;

  if (o->n >= OWNERS_MAX)
    return -EAGAIN;
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 16;
    struct srv_owner_q *nq = realloc(o->q, cap * sizeof *nq);
    if (nq == NULL)
      return -ENOMEM;
    o->q = nq;
    o->cap = cap;
  }
  r = *m;
  r.h.flags = 0;
  r.h.status = 0;
  r.h.reqid = ++o->next_reqid;
  if (srv__conn_send(t, &r) < 0)
    return -ENOTCONN; /* closing: the host is going */
  o->q[o->n++] = (struct srv_owner_q){m->h.opcode, r.h.reqid, t->node, c->node, m->h.reqid};
  SRV_VLOG("node %u: %s relayed to node %u (reqid %u)", c->node, proto_op_name(m->h.opcode),
           t->node, r.h.reqid);
  return 0;
}

int srv__owner_alive(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct srv_conn *t;
  int err;

  (void)why;
  m->u.owner.alive = 0;
  t = m->u.owner.tag != 0 ? conn_by_tag(c->srv, m->u.owner.tag) : NULL;
  err = t != NULL ? relay_to(c, m, t) : -ENOTCONN;
  if (err == -ENOTCONN) {
    srv_metrics_inc(SRV_M_OWNER_LOCAL);
    answer(c, m->h.reqid, &m->u.owner, 0); /* no such host now: its processes are gone */
  } else if (err < 0) {
    (void)srv__conn_send_status(c, m->h.opcode, m->h.reqid, err);
  } else {
    srv_metrics_inc(SRV_M_OWNER_RELAYED);
  }
  return 0;
}

int srv__relay(struct srv_conn *c, struct proto_msg *m, uint64_t tag) {
  struct srv_conn *t = tag != 0 ? conn_by_tag(c->srv, tag) : NULL;
  int err = t != NULL ? relay_to(c, m, t) : -ENOTCONN;

  if (err < 0)
    (void)srv__conn_send_status(c, m->h.opcode, m->h.reqid, err);
  return 0;
}

void srv__owner_answer(struct srv_conn *c, const struct proto_msg *m) {
  struct srv_server *s = c->srv;
  struct srv_owners *o = &s->owners;

  for (size_t i = 0; i < o->n; i++) {
    struct srv_owner_q q = o->q[i];
    struct srv_conn *a;
    if (q.sreqid != m->h.reqid || q.target != c->node || q.op != m->h.opcode)
      continue;
    o->q[i] = o->q[--o->n];
    a = q.asker < s->cfg->max_conns ? s->conns[q.asker] : NULL;
    if (a == NULL)
      return;
    if (m->h.status != 0) {
      (void)srv__conn_send_status(a, q.op, q.areqid, -proto_err_to_errno((int)m->h.status));
    } else if (q.op == PROTO_OP_OWNER_ALIVE) {
      answer(a, q.areqid, &m->u.owner, m->u.owner.alive);
    } else {
      struct proto_msg r = *m; /* decoded and checked: passed on as it is */
      r.h.reqid = q.areqid;
      (void)srv__conn_send(a, &r);
    }
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
      if (a == NULL)
        continue;
      if (q.op == PROTO_OP_OWNER_ALIVE)
        answer(a, q.areqid, &none, 0); /* the host is gone, and its processes with it */
      else
        (void)srv__conn_send_status(a, q.op, q.areqid, -ENOTCONN);
    }
  }
}

void srv_owners_fini(struct srv_owners *o) {
  free(o->q);
  memset(o, 0, sizeof *o);
}
