/* dispatch.c - owns the meaning of each client message: HELLO, the SysV calls, the page
 * protocol; it maps them onto segments, attachments and directories and sends the replies. */
#include "dispatch.h"

#include <errno.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "log.h"
#include "metrics.h"
#include "owners.h"
#include "seginfo.h"
#include "peercred.h"
#include "semcalls.h"
#include "server.h"

#ifndef IPC_64
#define IPC_64 0x0100
#endif

typedef int (*handler_fn)(struct srv_conn *c, struct proto_msg *m, const char **why);

/* Who makes a request: its claimed ids, except for a non-root peer the kernel vouches for
 * (Unix socket, loopback TCP), whose uid, gid and groups are the kernel's (docs/security.md,
 * "Who the server believes"). The pid is always the claimed one: a host agent forwards the
 * calls of many local processes over one connection and names each caller, so that
 * shm_cpid and shm_lpid are theirs; a pid grants nothing. */
struct srv_cred srv__cred_of(const struct srv_conn *c, const struct proto_cred *pc) {
  struct srv_cred cr = {
    .pid = pc->pid, .uid = pc->uid, .gid = pc->gid,
    .ngroups = c->peer.ngroups, .groups = c->peer.groups,
  };
  if (c->kernel_ids) {
    cr.uid = c->peer.uid;
    cr.gid = c->peer.gid;
  }
  return cr;
}

/* A loopback TCP peer that is not root: its gid and groups, now that HELLO names the
 * process that probably holds the socket (a hint, checked in /proc; else the user
 * database). 0, or -errno after a log line: the connection is refused. */
static int owner_groups(struct srv_conn *c, uint32_t hint_pid) {
  struct srv_peercred pc;
  int src = srv_peercred_tcp_groups(c->peer.uid, c->owner_ino, hint_pid, &pc);

  if (src < 0) {
    srv_log(SRV_LOG_WARN, "node %u (%s): cannot read the groups of uid %u, the owner of the local peer's "
            "socket (%s): refusing it rather than believing its claims", c->node, c->addr,
            c->peer.uid, src == -ERANGE ? "more than 64 supplementary groups"
                         : src == -ENOENT ? "not held by the pid it names, and no passwd entry"
                                          : strerror(-src));
    return src;
  }
  c->owner_ino = 0;
  c->peer.gid = pc.gid;
  c->peer.ngroups = pc.ngroups;
  memcpy(c->peer.groups, pc.groups, pc.ngroups * sizeof pc.groups[0]);
  SRV_VLOG("node %u: uid %u from the kernel, gid %u and %u supplementary group(s) from %s",
           c->node, c->peer.uid, c->peer.gid, c->peer.ngroups,
           src == SRV_PEERCRED_PROC ? "the process holding the socket" : "the user database");
  return 0;
}

void srv__reply_init(struct proto_msg *r, const struct proto_msg *m) {
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

/* The end of the handshake: the connection is ready, HELLO gets its reply. */
static void hello_done(struct srv_conn *c) {
  struct proto_msg r;

  memset(&r.h, 0, sizeof r.h);
  r.h.opcode = PROTO_OP_HELLO;
  r.h.flags = PROTO_F_REPLY;
  r.h.reqid = c->hello_reqid;
  c->state = SRV_CONN_READY;
  r.u.hello_reply.node = c->node;
  r.u.hello_reply.page_size = PROTO_PAGE_SIZE;
  r.u.hello_reply.max_run = srv_config_max_run(c->srv->cfg);
  srv_log(SRV_LOG_INFO, "node %u: hello from %s (%s) pid %u uid %u gid %u%s%s", c->node,
          c->peer.name[0] ? c->peer.name : "-", c->addr[0] ? c->addr : "-", c->peer.pid,
          c->peer.uid, c->peer.gid,
          c->kernel_ids    ? " (kernel-verified)"
          : c->kernel_root ? " (kernel-verified root: claims believed)"
                           : "",
          c->srv->cfg->auth ? " (token proven)" : "");
  (void)srv__conn_send(c, &r);
}

static int on_hello(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_hello *he = &m->u.hello;
  struct proto_msg r;

  if (c->state != SRV_CONN_HELLO) {
    *why = "second HELLO";
    return -EPROTO;
  }
  if (c->kernel_ids) {
    /* The kernel gave the identity (SO_PEERCRED, or sock_diag and the owner's groups now):
     * claims are ignored. */
    if (c->owner_ino != 0 && owner_groups(c, he->pid) < 0) {
      *why = "the kernel cannot vouch for the local peer's groups (refused)";
      return -EACCES;
    }
    if (he->uid != c->peer.uid || he->gid != c->peer.gid)
      srv_log(SRV_LOG_INFO, "node %u (%s): ignoring claimed uid %u gid %u", c->node, c->addr, he->uid,
              he->gid);
  } else {
    c->peer.uid = he->uid;
    c->peer.gid = he->gid;
    c->peer.ngroups = he->ngroups;
    memcpy(c->peer.groups, he->groups, he->ngroups * sizeof he->groups[0]);
  }
  c->peer.pid = he->pid; /* informational, even from a verified peer (cred_of) */
  /* Printable only: the name goes into log lines. */
  for (uint32_t i = 0; i <= he->name_len; i++) {
    char ch = he->name[i];
    c->peer.name[i] = ch == '\0' || (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  }
  c->hello_reqid = m->h.reqid;
  if (!c->srv->cfg->auth) {
    hello_done(c);
    return 0;
  }
  /* --token-file: the peer proves the token before anything else (docs/security.md). */
  c->state = SRV_CONN_AUTH;
  dshm_auth_nonce(c->snonce);
  memset(&r, 0, sizeof r);
  r.h.opcode = PROTO_OP_CHALLENGE;
  r.h.reqid = m->h.reqid;
  r.u.challenge.alg = PROTO_AUTH_ALG;
  memcpy(r.u.challenge.nonce, c->snonce, PROTO_NONCE_SIZE);
  (void)srv__conn_send(c, &r);
  return 0;
}

/* AUTH: the client's proof over our nonce and its own; we answer with ours, then HELLO's
 * reply. A wrong proof gets EACCES and the connection is closed. */
static int on_auth(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct dshm_auth_key *key = &c->srv->cfg->key;
  struct proto_msg r;

  if (c->state != SRV_CONN_AUTH) {
    *why = "AUTH without CHALLENGE";
    return -EPROTO;
  }
  if (dshm_auth_verify(key, DSHM_AUTH_CLIENT, c->snonce, m->u.auth.nonce, m->u.auth.mac) < 0) {
    srv__conn_reject(c, m->h.reqid, "wrong token");
    return 0;
  }
  srv__reply_init(&r, m);
  dshm_auth_mac(key, DSHM_AUTH_SERVER, c->snonce, m->u.auth.nonce, r.u.auth_reply.mac);
  /* One use: the nonce cannot serve again on this connection. */
  memset(c->snonce, 0, sizeof c->snonce);
  (void)srv__conn_send(c, &r);
  hello_done(c);
  return 0;
}

/* GROUPS: the client's supplementary groups changed (setgroups after HELLO); the following
 * requests are checked with the new ones. */
static int on_groups(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_groups *g = &m->u.groups;

  (void)why;
  if (c->kernel_ids) /* the kernel's groups at connect stand */
    return reply_status(c, m, 0);
  c->peer.ngroups = g->ngroups; /* <= PROTO_MAX_GROUPS, checked by the decoder */
  memcpy(c->peer.groups, g->groups, g->ngroups * sizeof g->groups[0]);
  return reply_status(c, m, 0);
}

/* The 64-bit tag recorded in page records: the two halves of the id folded, never 0. */
/* NODE: the client's persistent identity (once per connection, the same id afterwards);
 * with RESUMED, a returning node has re-registered and written back: what it held before
 * the restart and did not write back is released. */
static int on_node(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_node *q = &m->u.node;
  struct proto_msg r;

  (void)why;
  if (c->node_tag == 0) {
    memcpy(c->node_id, q->id, sizeof c->node_id);
    c->node_tag = proto_node_tag(q->id);
  } else if (memcmp(c->node_id, q->id, sizeof c->node_id) != 0) {
    return reply_status(c, m, -EINVAL);
  }
  if (q->flags & PROTO_NODE_RESUMED)
    srv__server_node_resumed(c->srv, c->node_tag);
  srv__reply_init(&r, m);
  memcpy(r.u.node_reply.instance, c->srv->instance, PROTO_NODE_ID);
  (void)srv__conn_send(c, &r);
  return 0;
}

/* REATTACH: a reconnecting node's attachments of a segment, counted again. */
static int on_reattach(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_reattach *q = &m->u.reattach;
  struct srv_cred cr = srv__cred_of(c, &q->cred);
  struct srv_seg *seg;
  struct proto_msg r;
  int err;

  (void)why;
  err = srv_att_readd(&c->atts, &c->srv->segs, &cr, q->shmid, q->nrw, q->nro, &seg);
  if (err < 0)
    return reply_status(c, m, err);
  SRV_VLOG("node %u: reattached shm %d (%u rw, %u ro)", c->node, q->shmid, q->nrw, q->nro);
  srv__reply_init(&r, m);
  r.u.attach_reply.shmid = q->shmid;
  r.u.attach_reply.segsz = seg->shm_segsz;
  (void)srv__conn_send(c, &r);
  return 0;
}

/* INHERIT: an agent registers the attachments a forked child inherited of a segment the
 * agent's connection has attached; fork counts them without a permission check. */
static int on_inherit(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_inherit *q = &m->u.inherit;
  uint32_t pid = srv__cred_of(c, &q->cred).pid;
  int err;

  (void)why;
  err = srv_att_inherit(&c->atts, &c->srv->segs, pid, q->shmid, q->nrw, q->nro);
  if (err == 0)
    SRV_VLOG("node %u: pid %u inherited shm %d from pid %u (%u rw, %u ro)", c->node,
             q->child, q->shmid, pid, q->nrw, q->nro);
  return reply_status(c, m, err);
}

static int on_create(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_create *q = &m->u.create;
  struct srv_cred cr = srv__cred_of(c, &q->cred);
  struct proto_msg r;
  int id;

  (void)why;
  id = srv_seg_get_huge(&c->srv->segs, &cr, q->key, q->size, q->shmflg,
                        q->huge_err != 0 ? -proto_err_to_errno((int)q->huge_err) : 0);
  if (id < 0)
    return reply_status(c, m, id);
  srv__reply_init(&r, m);
  r.u.create_reply.shmid = id;
  (void)srv__conn_send(c, &r);
  return 0;
}

static int on_attach(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_attach *q = &m->u.attach;
  struct srv_cred cr = srv__cred_of(c, &q->cred);
  struct srv_seg *seg;
  struct proto_msg r;
  int err;

  (void)why;
  err = srv_att_add(&c->atts, &c->srv->segs, &cr, q->shmid, q->shmflg, &seg);
  if (err < 0)
    return reply_status(c, m, err);
  srv__reply_init(&r, m);
  r.u.attach_reply.shmid = q->shmid;
  r.u.attach_reply.segsz = seg->shm_segsz;
  (void)srv__conn_send(c, &r);
  return 0;
}

static int on_detach(struct srv_conn *c, struct proto_msg *m, const char **why) {
  const struct proto_segref *q = &m->u.segref;

  (void)why;
  return reply_status(c, m, srv_att_detach(&c->atts, &c->srv->segs, c->node, q->shmid,
                                           srv__cred_of(c, &q->cred).pid));
}

static int on_remove(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct proto_shmctl q = {.cred = m->u.segref.cred, .shmid = m->u.segref.shmid,
                           .cmd = IPC_RMID};
  struct srv_cred cr = srv__cred_of(c, &q.cred);
  struct proto_shmctl_reply out;

  (void)why;
  return reply_status(c, m, srv_seg_ctl(&c->srv->segs, &cr, &q, &out));
}

static int on_shmctl(struct srv_conn *c, struct proto_msg *m, const char **why) {
  struct proto_shmctl q = m->u.shmctl;
  struct srv_cred cr = srv__cred_of(c, &q.cred);
  struct proto_msg r;
  int ret;

  (void)why;
  /* CAP_IPC_LOCK is the caller's host's word, believed where its ids are (cred_of): a
   * non-root peer the kernel vouches for has only the uid the kernel gave it. */
  if (c->kernel_ids && ((q.cmd & ~IPC_64) == SHM_LOCK || (q.cmd & ~IPC_64) == SHM_UNLOCK))
    q.mode &= ~PROTO_LOCK_CAP_IPC_LOCK;
  srv__reply_init(&r, m);
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
  err = srv_dir_request(at->seg->dir, c->node, m->h.reqid, m->h.opcode, &m->u.run,
                        at->nrw > 0);
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
  srv__reply_init(&r, m);
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
  [PROTO_OP_AUTH] = on_auth,
  [PROTO_OP_NODE] = on_node,
  [PROTO_OP_REATTACH] = on_reattach,
  [PROTO_OP_INHERIT] = on_inherit,
  [PROTO_OP_SEMGET] = srv__sem_get,
  [PROTO_OP_SEMCTL] = srv__sem_ctl,
  [PROTO_OP_SEMOP] = srv__sem_op,
  [PROTO_OP_SEM_CANCEL] = srv__sem_cancel,
  [PROTO_OP_PROC_EXIT] = srv__sem_proc_exit,
  [PROTO_OP_OWNER_ALIVE] = srv__owner_alive,
  [PROTO_OP_SEG_INFO] = srv__seg_info,
};

int srv__dispatch(struct srv_conn *c, struct proto_msg *m, const char **why) {
  handler_fn fn = m->h.opcode < PROTO_OP_MAX_ ? handlers[m->h.opcode] : NULL;
  unsigned cls;
  int err;

  srv_metrics_rx(m->h.opcode);
  /* The requests of the server that a client answers with a REPLY: a relayed OWNER_ALIVE
   * or SEG_INFO (owners.c). */
  if ((m->h.flags & PROTO_F_REPLY) && c->state == SRV_CONN_READY &&
      (m->h.opcode == PROTO_OP_OWNER_ALIVE || m->h.opcode == PROTO_OP_SEG_INFO)) {
    srv__owner_answer(c, m);
    return 0;
  }
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
  if (c->state == SRV_CONN_AUTH && m->h.opcode != PROTO_OP_AUTH) {
    *why = "request before authentication";
    return -EPROTO;
  }
  if (fn == NULL) {
    *why = "opcode not accepted from a client";
    return -EPROTO;
  }
  err = fn(c, m, why);
  srv__server_changed(c->srv);
  /* Page requests are timed by the directory, until their grant. */
  cls = srv__op_class[m->h.opcode];
  if (cls != SRV_RC_READ && cls != SRV_RC_ACQUIRE)
    srv_metrics_observe(cls, srv_metrics_now_ns() - srv_metrics.rx_ns);
  return err;
}
