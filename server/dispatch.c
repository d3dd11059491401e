/* dispatch.c - owns the meaning of each client message: HELLO, the SysV calls, the page
 * protocol; it maps them onto segments, attachments and directories and sends the replies. */
#include "dispatch.h"

#include <errno.h>
#include <string.h>
#include <sys/ipc.h>

#include "log.h"
#include "server.h"

typedef int (*handler_fn)(struct srv_conn *c, struct proto_msg *m, const char **why);

static struct srv_cred cred_of(const struct srv_conn *c, const struct proto_cred *pc) {
  struct srv_cred cr = {
    .pid = pc->pid, .uid = pc->uid, .gid = pc->gid,
    .ngroups = c->peer.ngroups, .groups = c->peer.groups,
  };
  return cr;
}

static void reply_init(struct proto_msg *r, const struct proto_msg *m) {
  memset(&r->h, 0, sizeof r->h);
  r->h.opcode = m->h.opcode;
  r->h.flags = PROTO_F_REPLY;
  r->h.reqid = m->h.reqid;
}

/* Replies with err if negative. The connection's own errors never close it. */
static int reply_status(struct srv_conn *c, const struct proto_msg *m, int err) {
  (void)srv__conn_send_status(c, m->h.opcode, m->h.reqid, err < 0 ? err : 0);
  return 0;
}

static int on_hello(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_hello *he = &m->u.hello;
  struct proto_msg r;

  if (c->state != SRV_CONN_HELLO) {
    *why = "second HELLO";
    return -EPROTO;
  }
  c->peer.pid = he->pid;
  c->peer.uid = he->uid;
  c->peer.gid = he->gid;
  c->peer.ngroups = he->ngroups;
  memcpy(c->peer.groups, he->groups, he->ngroups * sizeof he->groups[0]);
  /* Printable only: the name goes into log lines. */
  for (uint32_t i = 0; i <= he->name_len; i++) {
    char ch = he->name[i];
    c->peer.name[i] = ch == '\0' || (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  }
  c->state = SRV_CONN_READY;
  reply_init(&r, m);
  r.u.hello_reply.node = c->node;
  r.u.hello_reply.page_size = PROTO_PAGE_SIZE;
  r.u.hello_reply.max_run = PROTO_MAX_RUN;
  srv_log("node %u: hello from %s pid %u uid %u gid %u", c->node,
          c->peer.name[0] ? c->peer.name : "-", he->pid, he->uid, he->gid);
  (void)srv__conn_send(c, &r);
  return 0;
}

/* GROUPS: the client's supplementary groups changed (setgroups after HELLO); the following
 * requests are checked with the new ones. */
static int on_groups(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_groups *g = &m->u.groups;

  (void)why;
  c->peer.ngroups = g->ngroups; /* <= PROTO_MAX_GROUPS, checked by the decoder */
  memcpy(c->peer.groups, g->groups, g->ngroups * sizeof g->groups[0]);
  return reply_status(c, m, 0);
}

static int on_create(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_create *q = &m->u.create;
  struct srv_cred cr = cred_of(c, &q->cred);
  struct proto_msg r;
  int id;

  (void)why;
  id = srv_seg_get(&c->srv->segs, &cr, q->key, q->size, q->shmflg);
  if (id < 0)
    return reply_status(c, m, id);
  reply_init(&r, m);
  r.u.create_reply.shmid = id;
  (void)srv__conn_send(c, &r);
  return 0;
}

static int on_attach(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_attach *q = &m->u.attach;
  struct srv_cred cr = cred_of(c, &q->cred);
  struct srv_seg *seg;
  struct proto_msg r;
  int err;

  (void)why;
  err = srv_att_add(&c->atts, &c->srv->segs, &cr, q->shmid, q->shmflg, &seg);
  if (err < 0)
    return reply_status(c, m, err);
  reply_init(&r, m);
  r.u.attach_reply.shmid = q->shmid;
  r.u.attach_reply.segsz = seg->shm_segsz;
  (void)srv__conn_send(c, &r);
  return 0;
}

static int on_detach(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_segref *q = &m->u.segref;

  (void)why;
  return reply_status(c, m, srv_att_detach(&c->atts, &c->srv->segs, c->node, q->shmid,
                                           q->cred.pid));
}

static int on_remove(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct proto_shmctl q = {.cred = m->u.segref.cred, .shmid = m->u.segref.shmid,
                           .cmd = IPC_RMID};
  struct srv_cred cr = cred_of(c, &q.cred);
  struct proto_shmctl_reply out;

  (void)why;
  return reply_status(c, m, srv_seg_ctl(&c->srv->segs, &cr, &q, &out));
}

static int on_shmctl(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct proto_shmctl q = m->u.shmctl;
  struct srv_cred cr = cred_of(c, &q.cred);
  struct proto_msg r;
  int ret;

  (void)why;
  reply_init(&r, m);
  ret = srv_seg_ctl(&c->srv->segs, &cr, &q, &r.u.shmctl_reply);
  if (ret < 0)
    return reply_status(c, m, ret);
  (void)srv__conn_send(c, &r);
  return 0;
}

/* READ_DATA and ACQUIRE: the directory replies, now or when the page is free. */
static int on_page_request(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct srv_att *at = srv_att_find(&c->atts, m->u.run.shmid);
  int err;

  (void)why;
  if (at == NULL)
    return reply_status(c, m, -EINVAL);
  if (m->h.opcode == PROTO_OP_ACQUIRE && at->nrw == 0)
    return reply_status(c, m, -EACCES);
  SRV_VLOG("node %u: %s shm %d pages %u+%u", c->node, proto_op_name(m->h.opcode),
           m->u.run.shmid, m->u.run.first, m->u.run.count);
  err = srv_dir_request(at->seg->dir, c->node, m->h.reqid, m->h.opcode, &m->u.run);
  if (err < 0)
    return reply_status(c, m, err);
  return 0;
}

static int on_write(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct srv_att *at = srv_att_find(&c->atts, m->u.run.shmid);

  (void)why;
  if (at == NULL)
    return reply_status(c, m, -EINVAL);
  SRV_VLOG("node %u: WRITE_DATA shm %d pages %u+%u%s", c->node, m->u.run.shmid,
           m->u.run.first, m->u.run.count,
           m->u.run.mode == PROTO_MODE_EXCLUSIVE ? " (kept: background write-back)" : "");
  return reply_status(c, m, srv_dir_write(at->seg->dir, c->node, &m->u.run));
}

/* Acks get no reply. One for a segment the node no longer has attached was already
 * counted as answered when it detached. */
static int on_recall_ack(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct srv_att *at = srv_att_find(&c->atts, m->u.run.shmid);

  (void)why;
  if (at != NULL)
    srv_dir_recall_ack(at->seg->dir, c->node, m->h.reqid, &m->u.run);
  return 0;
}

static int on_invalidate_ack(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct srv_att *at = srv_att_find(&c->atts, m->u.range.shmid);

  (void)why;
  if (at != NULL)
    srv_dir_invalidate_ack(at->seg->dir, c->node, m->h.reqid, &m->u.range);
  return 0;
}

static int on_ping(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct proto_msg r;

  (void)why;
  reply_init(&r, m);
  r.u.ping = m->u.ping;
  (void)srv__conn_send(c, &r);
  return 0;
}

/* What a client may send. INVALIDATE and RECALL go the other way only. */
static const handler_fn handlers[PROTO_OP_MAX_] = {
  [PROTO_OP_HELLO] = on_hello,
  [PROTO_OP_CREATE_SEGMENT] = on_create,
  [PROTO_OP_ATTACH_SEGMENT] = on_attach,
  [PROTO_OP_DETACH_SEGMENT] = on_detach,
  [PROTO_OP_REMOVE_SEGMENT] = on_remove,
  [PROTO_OP_READ_DATA] = on_page_request,
  [PROTO_OP_WRITE_DATA] = on_write,
  [PROTO_OP_SHMCTL] = on_shmctl,
  [PROTO_OP_ACQUIRE] = on_page_request,
  [PROTO_OP_INVALIDATE_ACK] = on_invalidate_ack,
  [PROTO_OP_RECALL_ACK] = on_recall_ack,
  [PROTO_OP_PING] = on_ping,
  [PROTO_OP_GROUPS] = on_groups,
};

int srv__dispatch(struct srv_conn *c, struct proto_msg *m, const char **why) {
  handler_fn fn = m->h.opcode < PROTO_OP_MAX_ ? handlers[m->h.opcode] : NULL;

  /* The server sends no request that a client could answer with a REPLY. */
  if (m->h.flags & PROTO_F_REPLY) {
    *why = "unexpected reply";
    return -EPROTO;
  }
  if (m->h.status != 0) {
    *why = "non-zero status in a request";
    return -EPROTO;
  }
  if (c->state == SRV_CONN_HELLO && m->h.opcode != PROTO_OP_HELLO) {
    *why = "first message is not HELLO";
    return -EPROTO;
  }
  if (fn == NULL) {
    *why = "opcode not accepted from a client";
    return -EPROTO;
  }
  return fn(c, m, why);
}
