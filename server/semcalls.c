/* semcalls.c - owns the SEMOPs that wait at the server: their timers, late replies,
 * cancellation and end with the connection; passes the other semaphore calls through to the
 * table (sems.c). */
#include "semcalls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "server.h"

/* A SEMOP that waits: the table's srv_semwait points here through ctx. Freed in its timer's
 * close callback (libuv: a handle's memory lives until then). */
struct srv_semreq {
  uv_timer_t timer;
  TAILQ_ENTRY(srv_semreq) link;  /* on its connection's semreqs */
  struct srv_conn *c;
  struct srv_semwait *w;         /* NULL once it ended */
  uint32_t reqid;
};

static int64_t now_s(void) {
  return (int64_t)time(NULL);
}

static struct srv_semtab *tab(const struct srv_conn *c) {
  return &c->srv->sems;
}

static void on_timer_closed(uv_handle_t *h) {
  free(h->data);
}

/* Ends a waiting request: off its connection, the reply (unless the connection is going),
 * its memory once the timer is closed. The table has already let go of w. */
static void req_end(struct srv_semreq *q, int result, int reply) {
  struct srv_conn *c = q->c;

  TAILQ_REMOVE(&c->semreqs, q, link);
  c->nsemreqs--;
  q->w = NULL;
  if (reply)
    (void)srv__conn_send_status(c, PROTO_OP_SEMOP, q->reqid, result);
  uv_timer_stop(&q->timer);
  uv_close((uv_handle_t *)&q->timer, on_timer_closed);
}

void srv__sem_done(void *arg, struct srv_semwait *w, int result) {
  struct srv_semreq *q = w->ctx;

  (void)arg;
  SRV_VLOG("node %u: semop reqid %u %s%s", q->c->node, q->reqid,
           result == 0 ? "done after waiting" : "ended: ",
           result == 0 ? "" : result == -EIDRM ? "set removed" : strerror(-result));
  req_end(q, result, 1);
}

/* semtimedop's timeout: the table checked it; EAGAIN when it runs out. */
static void on_timeout(uv_timer_t *t) {
  struct srv_semreq *q = t->data;

  srv_sem_cancel(tab(q->c), q->w);
  SRV_VLOG("node %u: semop reqid %u timed out", q->c->node, q->reqid);
  req_end(q, -EAGAIN, 1);
}

int srv__sem_get(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_semget *q = &m->u.semget;
  struct srv_cred cr = srv__cred_of(c, &q->cred);
  struct proto_msg r;
  int id;

  (void)why;
  id = srv_sem_get(tab(c), &cr, q->key, q->nsems, q->semflg, now_s());
  if (id < 0)
    return srv__conn_send_status(c, m->h.opcode, m->h.reqid, id), 0;
  memset(&r, 0, sizeof r);
  srv__reply_init(&r, m);
  r.u.semget_reply.semid = id;
  (void)srv__conn_send(c, &r);
  return 0;
}

int srv__sem_ctl(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_semctl *q = &m->u.semctl;
  struct srv_cred cr = srv__cred_of(c, &q->cred);
  uint16_t *vals = NULL;
  uint8_t *wire = NULL;
  struct proto_msg r;
  int ret;

  (void)why;
  memset(&r, 0, sizeof r);
  srv__reply_init(&r, m);
  /* GETALL's room: the set's size is bounded by --semmsl <= PROTO_SEMMSL_MAX. */
  vals = malloc(sizeof *vals * tab(c)->lim.semmsl);
  if (vals == NULL) {
    ret = -ENOMEM;
    goto out;
  }
  ret = srv_sem_ctl(tab(c), &cr, q, &r.u.semctl_reply, vals, now_s());
  if (ret < 0)
    goto out;
  if (r.u.semctl_reply.nvals > 0) {
    wire = malloc(2 * (size_t)r.u.semctl_reply.nvals);
    if (wire == NULL) {
      ret = -ENOMEM;
      goto out;
    }
    for (uint32_t i = 0; i < r.u.semctl_reply.nvals; i++)
      proto_put_u16(wire + 2 * i, vals[i]);
    r.u.semctl_reply.vals = wire;
  }
  (void)srv__conn_send(c, &r);
out:
  if (ret < 0)
    (void)srv__conn_send_status(c, m->h.opcode, m->h.reqid, ret);
  free(wire);
  free(vals);
  return 0;
}

int srv__sem_op(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_semop *q = &m->u.semop;
  struct srv_cred cr = srv__cred_of(c, &q->cred);
  int64_t tmo[2] = {q->tv_sec, q->tv_nsec};
  int has_tmo = (q->flags & PROTO_SEMOP_TIMEOUT) != 0;
  struct srv_semop_one *sops;
  struct srv_semreq *rq = NULL;
  struct srv_semwait *w = NULL;
  int ret;

  (void)why;
  sops = malloc(sizeof *sops * q->nsops); /* nsops <= PROTO_SEMOPM_MAX (decoder) */
  if (sops == NULL) {
    ret = -ENOMEM;
    goto out;
  }
  for (uint32_t i = 0; i < q->nsops; i++) {
    const uint8_t *p = q->sops + (size_t)i * PROTO_SEMOP_SIZE;
    sops[i].num = proto_get_u16(p);
    sops[i].op = (int16_t)proto_get_u16(p + 2);
    sops[i].flg = (int16_t)proto_get_u16(p + 4);
  }
  ret = srv_sem_op(tab(c), &cr, c->node, q->semid, sops, q->nsops, has_tmo ? tmo : NULL,
                   now_s(), &w);
  if (ret <= 0)
    goto out;
  /* It waits. A zero timeout ends it at once, as the kernel's does; more waiting semops
   * than --max-pending on one connection are refused like an allocation failure. */
  if ((has_tmo && tmo[0] == 0 && tmo[1] == 0) || c->nsemreqs >= c->srv->cfg->max_pending ||
      (rq = calloc(1, sizeof *rq)) == NULL) {
    if (!(has_tmo && tmo[0] == 0 && tmo[1] == 0))
      srv_log(SRV_LOG_WARN, "node %u: semop refused: %s", c->node,
              rq == NULL && c->nsemreqs < c->srv->cfg->max_pending
                  ? "out of memory" : "too many waiting semops (--max-pending)");
    ret = has_tmo && tmo[0] == 0 && tmo[1] == 0 ? -EAGAIN : -ENOMEM;
    srv_sem_cancel(tab(c), w);
    goto out;
  }
  rq->c = c;
  rq->w = w;
  rq->reqid = m->h.reqid;
  w->ctx = rq;
  (void)uv_timer_init(c->srv->loop, &rq->timer); /* cannot fail */
  rq->timer.data = rq;
  TAILQ_INSERT_TAIL(&c->semreqs, rq, link);
  c->nsemreqs++;
  srv_metrics_inc(SRV_M_SEMOP_WAITS);
  if (has_tmo) {
    /* libuv counts milliseconds: round up, never wake early. */
    uint64_t ms = (uint64_t)tmo[0] * 1000 + ((uint64_t)tmo[1] + 999999) / 1000000;
    uv_timer_start(&rq->timer, on_timeout, ms, 0);
  }
  SRV_VLOG("node %u: semop reqid %u on sem %d waits", c->node, rq->reqid, q->semid);
out:
  if (ret <= 0)
    (void)srv__conn_send_status(c, m->h.opcode, m->h.reqid, ret);
  free(sops);
  return 0;
}

/* The caller was interrupted: EINTR if its SEMOP still waits; else its reply has left. */
int srv__sem_cancel(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct srv_semreq *q;

  (void)why;
  TAILQ_FOREACH(q, &c->semreqs, link) {
    if (q->reqid == m->u.sem_cancel.reqid) {
      srv_sem_cancel(tab(c), q->w);
      SRV_VLOG("node %u: semop reqid %u cancelled", c->node, q->reqid);
      req_end(q, -EINTR, 1);
      break;
    }
  }
  return 0;
}

int srv__sem_proc_exit(struct srv_conn *c, struct proto_msg *m, const char **why) {
  (void)why;
  srv_sem_exit(tab(c), c->node, m->u.proc_exit.pid, now_s());
  return 0;
}

void srv__sem_conn_gone(struct srv_conn *c) {
  struct srv_semreq *q;

  while ((q = TAILQ_FIRST(&c->semreqs)) != NULL) {
    srv_sem_cancel(tab(c), q->w);
    req_end(q, 0, 0);
  }
  srv_sem_owner_gone(tab(c), c->node, now_s());
}
