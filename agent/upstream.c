/* upstream.c - owns the agent's connection to dshm-server: connect and handshake (through
 * auth/client.c, as the shim), framing of what the server sends, forwarded SysV calls and
 * their replies, and the host's page requests. */
#include "upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "hostseg.h"
#include "keepalive.h"
#include "local.h"
#include "stats.h"
#include "threadalive.h"

/* A SysV request waiting for the reconnect: its process, and its frame (kernel-verified
 * credentials already in it). */
struct parked {
  TAILQ_ENTRY(parked) link;
  uint32_t proc;
  uint8_t op;
  uint32_t lreqid;
  size_t len;
  uint8_t buf[];
};

/* One queued write: request, length and encoded frame in one allocation. */
struct wreq {
  uv_write_t req;
  size_t len;
  uint8_t buf[];
};

static struct proto_msg in;  /* decoded input: 6 KiB, single-threaded */
static struct proto_msg rep; /* replies built here */
static struct proto_msg parked_msg; /* a parked call, decoded again to be sent */

uint32_t agent_up_reqid(struct agent *ag) {
  if (++ag->next_reqid == 0)
    ag->next_reqid = 1;
  return ag->next_reqid;
}

/* Connects to the server; over TCP, a server that stops answering is lost after about
 * DSHM_KEEPALIVE_MS (auth/keepalive.h), the connection being idle or not. */
static int connect_server(const struct agent_cfg *cfg, char *why, size_t whylen) {
  const char *reason = NULL;
  int fd = dshm_client_connect(&cfg->addr, &reason), err;

  if (fd >= 0 && cfg->addr.unix_path[0] == '\0' &&
      (err = dshm_keepalive_set(fd, cfg->keepalive_ms)) < 0)
    agent_log("cannot bound a silent server (DSHM_KEEPALIVE_MS=%u): %s", cfg->keepalive_ms,
              strerror(-err));
  if (fd < 0 && reason != NULL)
    snprintf(why, whylen, "cannot resolve %s (DSHM_SERVER): %s", cfg->spec, reason);
  else if (fd < 0)
    snprintf(why, whylen, "cannot connect to %s (DSHM_SERVER): %s", cfg->spec, strerror(-fd));
  return fd;
}

/* NODE on the blocking socket: the host's identity (chosen once per agent), RESUMED once a
 * resync is done; the server's instance id into instance (may be NULL). */
static int node_call(struct agent *ag, int fd, uint32_t flags, uint8_t *instance) {
  struct proto_msg *m = calloc(2, sizeof *m);
  int err;

  if (m == NULL)
    return -ENOMEM;
  m->h.opcode = PROTO_OP_NODE;
  m->h.reqid = agent_up_reqid(ag);
  memcpy(m->u.node.id, ag->node_id, PROTO_NODE_ID);
  m->u.node.flags = flags;
  err = dshm_client_call(fd, &m[0], &m[1]);
  if (err == 0 && instance != NULL)
    memcpy(instance, m[1].u.node_reply.instance, PROTO_NODE_ID);
  free(m);
  return err;
}

/* HELLO (+ AUTH) and NODE on the blocking socket. */
static int handshake(struct agent *ag, int fd, uint8_t *instance, char *why, size_t whylen) {
  struct proto_msg *m = calloc(1, sizeof *m);
  gid_t groups[PROTO_MAX_GROUPS];
  const char *reason = NULL;
  char host[64] = "";
  int n, i, err;

  if (m == NULL)
    return -ENOMEM;
  m->h.opcode = PROTO_OP_HELLO;
  m->h.reqid = agent_up_reqid(ag);
  m->u.hello.pid = (uint32_t)getpid();
  m->u.hello.uid = (uint32_t)geteuid();
  m->u.hello.gid = (uint32_t)getegid();
  n = getgroups(PROTO_MAX_GROUPS, groups);
  if (n < 0)
    n = 0;
  m->u.hello.ngroups = (uint32_t)n;
  for (i = 0; i < n; i++)
    m->u.hello.groups[i] = (uint32_t)groups[i];
  ag->ngroups_sent = (uint32_t)n;
  memcpy(ag->groups_sent, m->u.hello.groups, (size_t)n * sizeof groups[0]);
  ag->groups_known = 1;
  gethostname(host, sizeof host - 1);
  snprintf(m->u.hello.name, sizeof m->u.hello.name, "dshm-agent@%.50s", host);
  m->u.hello.name_len = (uint32_t)strlen(m->u.hello.name);
  err = dshm_client_hello(fd, m, ag->cfg->have_key ? &ag->cfg->key : NULL, agent_up_reqid(ag),
                          &reason);
  if (err == 0)
    ag->max_run = m->u.hello_reply.max_run >= 1 && m->u.hello_reply.max_run <= PROTO_MAX_RUN
                      ? m->u.hello_reply.max_run : 1;
  free(m);
  if (err == 0)
    err = node_call(ag, fd, 0, instance);
  if (err == -EACCES && reason != NULL)
    snprintf(why, whylen, "server %s: %s", ag->cfg->spec, reason);
  else if (err < 0)
    snprintf(why, whylen, "handshake with %s (DSHM_SERVER) failed: %s", ag->cfg->spec,
             strerror(-err));
  return err;
}

/* The input buffer between frames: a read-ahead grant (64 pages) fits without growing. */
#define AGENT_RX_BASE (PROTO_HDR_SIZE + PROTO_RUN_HDR + 64u * (PROTO_RUN_ENTRY + PROTO_PAGE_SIZE))

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct agent *ag = h->data;

  (void)suggested;
  *buf = uv_buf_init((char *)proto_rxbuf_tail(&ag->rx), (unsigned)proto_rxbuf_room(&ag->rx));
}

static void on_reconn(uv_timer_t *t);
static void reply_err(struct lproc *p, uint8_t op, uint32_t reqid, int err);

/* Every SysV call in flight fails with ENOTCONN (it may or may not have been done), as the
 * shim's did when its own connection dropped. */
static void fail_forwarded(struct agent *ag) {
  for (size_t i = 0; i < ag->nfwd; i++) {
    struct lproc *p = ag->fwd[i].proc ? agent_proc_find(ag, ag->fwd[i].proc) : NULL;
    if (p != NULL)
      reply_err(p, ag->fwd[i].op, ag->fwd[i].lreqid, -ENOTCONN);
  }
  ag->nfwd = 0;
}

static void on_up_closed(uv_handle_t *h) {
  struct agent *ag = h->data;

  ag->up_closing = 0;
}

static void close_stream(struct agent *ag) {
  if (ag->up_open) {
    ag->up_open = 0;
    ag->up_closing = 1;
    uv_close((uv_handle_t *)&ag->up.stream, on_up_closed);
  }
}

/* The writes queued before agent_up_close are out (or failed): the stream can go. */
#define AGENT_DRAIN_MS 2000u /* stopping: how long the server may take to read our last writes */

/* The last writes are out, failed, or took too long: the stream and the timer go. */
static void drain_done(struct agent *ag) {
  if (!uv_is_closing((uv_handle_t *)&ag->up.stream)) {
    ag->up_closing = 1;
    uv_close((uv_handle_t *)&ag->up.stream, on_up_closed);
  }
  if (!uv_is_closing((uv_handle_t *)&ag->reconn))
    uv_close((uv_handle_t *)&ag->reconn, NULL);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct agent *ag = req->data;

  (void)status;
  free(req);
  drain_done(ag);
}

static void on_drain_deadline(uv_timer_t *t) {
  agent_log("the server did not take our last writes within %u ms: closing anyway",
            AGENT_DRAIN_MS);
  drain_done(t->data);
}

/* The reconnect window closed: nothing can be served any more; the processes see the agent
 * go (each access of theirs then gets SIGBUS). */
static void give_up(struct agent *ag, const char *why) {
  struct parked *k;

  ag->up_dead = 1;
  ag->up_reconn = 0;
  if (ag->reconn_fd >= 0)
    close(ag->reconn_fd);
  ag->reconn_fd = -1;
  agent_log("connection to %s (DSHM_SERVER) lost for good: %s", ag->cfg->spec, why);
  while ((k = TAILQ_FIRST(&ag->parked)) != NULL) {
    struct lproc *p = agent_proc_find(ag, k->proc);
    TAILQ_REMOVE(&ag->parked, k, link);
    if (p != NULL)
      reply_err(p, k->op, k->lreqid, -ENOTCONN);
    free(k);
  }
  agent_seg_fail_all(ag);
  agent_stop(ag, "the server connection is lost");
}

/* The connection dropped: the host's pages are lowered everywhere on the host, and the
 * agent connects again for at most DSHM_TIMEOUT_MS (docs/protocol.md, "Reconnect"). */
static void up_lost(struct agent *ag, const char *why) {
  if (ag->up_dead || ag->up_reconn || ag->stopping)
    return;
  agent_log("connection to %s (DSHM_SERVER) lost: %s; reconnecting", ag->cfg->spec, why);
  close_stream(ag);
  fail_forwarded(ag);
  ag->rx.len = 0;
  ag->up_reconn = 1;
  ag->reconn_fd = -1;
  ag->reconn_delay = 10;
  ag->reconn_deadline = uv_now(ag->loop) + ag->cfg->timeout_ms;
  agent_up_resync_ready(ag); /* starts lowering the host's pages */
  uv_timer_start(&ag->reconn, on_reconn, 0, 0);
}

static void reply_err(struct lproc *p, uint8_t op, uint32_t reqid, int err) {
  struct proto_msg r;

  memset(&r.h, 0, sizeof r.h);
  r.h.opcode = op;
  r.h.flags = PROTO_F_REPLY;
  r.h.reqid = reqid;
  r.h.status = proto_err_from_errno(err);
  (void)agent_proc_send(p, &r, -1, -1);
}

static void take_fwd(struct agent *ag, size_t i) {
  ag->fwd[i] = ag->fwd[--ag->nfwd];
}

/* Sends a DETACH of shmid for pid that nobody waits for (a process that went away). */
static void detach_for(struct agent *ag, int32_t shmid, uint32_t pid) {
  struct proto_msg m;

  memset(&m.h, 0, sizeof m.h);
  m.u.segref.cred = (struct proto_cred){pid, 0, 0};
  m.u.segref.shmid = shmid;
  (void)agent_up_detach(ag, NULL, &m, 0);
}

/* ATTACH succeeded for p: the host's segment, the process's record, and its descriptors:
 * the memfd read-write, or read-only for SHM_RDONLY (then mprotect cannot make it
 * writable), and the host page table. */
static void attach_done(struct agent *ag, struct lproc *p, const struct fwd *f,
                        struct proto_msg *m) {
  int ro = (f->shmflg & SHM_RDONLY) != 0, dfd = -1, tfd = -1, err;
  struct hseg *s;
  char path[64];

  err = agent_seg_get(ag, f->shmid, m->u.attach_reply.segsz, &s);
  if (err == 0 && (err = agent_proc_att_add(p, f->shmid, !ro, ro)) == 0) {
    s->nattach++;
    snprintf(path, sizeof path, "/proc/self/fd/%d", s->memfd);
    dfd = ro ? open(path, O_RDONLY | O_CLOEXEC) : dup(s->memfd);
    tfd = dup(s->tabfd);
    if (dfd < 0 || tfd < 0) {
      err = -errno;
      if (dfd >= 0)
        close(dfd);
      if (tfd >= 0)
        close(tfd);
      dfd = tfd = -1;
      struct latt *a = agent_proc_att(p, f->shmid);
      ro ? a->nro-- : a->nrw--;
      agent_seg_detach(ag, s);
    }
  }
  if (err < 0) {
    agent_log("attach of segment %d for pid %d: %s", f->shmid, (int)p->pid, strerror(-err));
    detach_for(ag, f->shmid, (uint32_t)p->pid); /* undo the server's nattch++ */
    memset(&m->h, 0, sizeof m->h);
    m->h.opcode = PROTO_OP_ATTACH_SEGMENT;
    m->h.flags = PROTO_F_REPLY;
    m->h.status = proto_err_from_errno(err);
  }
  m->h.reqid = f->lreqid;
  (void)agent_proc_send(p, m, dfd, tfd);
}

/* The server answered an INHERIT: only now are the child's attachments the host's (a refused
 * one, or one lost with the connection, is not counted); a child that is gone meanwhile
 * is detached again. */
static void inherit_done(struct agent *ag, const struct fwd *f, int ok) {
  struct lproc *c = ok ? agent_proc_by_pid(ag, (pid_t)f->child) : NULL;
  struct hseg *s = agent_seg_find(ag, f->shmid);

  if (!ok)
    return;
  if (c != NULL && s != NULL && agent_proc_att_add(c, f->shmid, f->nrw, f->nro) == 0) {
    s->nattach += f->nrw + f->nro;
    return;
  }
  for (uint32_t k = 0; k < f->nrw + f->nro; k++)
    detach_for(ag, f->shmid, f->child);
}

static void on_reply(struct agent *ag, struct proto_msg *m) {
  size_t i;

  for (i = 0; i < ag->npreq; i++)
    if (ag->preq[i].reqid == m->h.reqid) {
      struct preq q = ag->preq[i];
      if (m->h.opcode != (q.mode == PROTO_MODE_EXCLUSIVE ? PROTO_OP_ACQUIRE : PROTO_OP_READ_DATA)) {
        up_lost(ag, "a reply that does not match its request");
        return;
      }
      ag->preq[i] = ag->preq[--ag->npreq];
      agent_stats_observe(q.mode == PROTO_MODE_EXCLUSIVE ? AGENT_RC_ACQUIRE : AGENT_RC_READ,
                          q.t0);
      agent_seg_grant(ag, &q, m);
      return;
    }
  for (i = 0; i < ag->nfwd; i++)
    if (ag->fwd[i].reqid == m->h.reqid) {
      struct fwd f = ag->fwd[i];
      struct lproc *p = f.proc ? agent_proc_find(ag, f.proc) : NULL;
      if (m->h.opcode != f.op ||
          m->h.length > (f.op == PROTO_OP_SEMCTL     ? PROTO_SEMCTL_MAX_PAYLOAD
                         : f.op == PROTO_OP_SEG_INFO ? PROTO_SEGINFO_MAX_PAYLOAD
                                                     : PROTO_SMALL_MAX)) {
        up_lost(ag, "a reply that does not match its request");
        return;
      }
      take_fwd(ag, i);
      if (f.op != PROTO_OP_SEMOP)
        agent_stats_observe(AGENT_RC_SYSV, f.t0);
      if (f.op == PROTO_OP_INHERIT) {
        inherit_done(ag, &f, m->h.status == 0);
        if (p == NULL)
          return;
      }
      if (f.op == PROTO_OP_ATTACH_SEGMENT && m->h.status == 0 && p == NULL && f.proc != 0) {
        detach_for(ag, f.shmid, f.pid); /* the process died waiting: undo */
        return;
      }
      if (p != NULL && f.op == PROTO_OP_ATTACH_SEGMENT && m->h.status == 0) {
        attach_done(ag, p, &f, m);
        return;
      }
      if (p != NULL) {
        m->h.reqid = f.lreqid;
        (void)agent_proc_send(p, m, -1, -1);
      }
      /* After the answer: freeing a large host copy takes a while, nobody need wait. */
      if (f.host_last)
        agent_seg_release(ag, f.shmid); /* its write-back is stored (FIFO) */
      return;
    }
  /* WRITE_DATA and GROUPS replies, and DETACHes nobody waits for. */
}

static void on_message(struct agent *ag, struct proto_msg *m) {
  if (m->h.flags & PROTO_F_REPLY) {
    on_reply(ag, m);
    return;
  }
  switch (m->h.opcode) {
  case PROTO_OP_INVALIDATE:
  case PROTO_OP_RECALL:
    agent_seg_revoke(ag, m);
    break;
  case PROTO_OP_PING:
    m->h.flags = PROTO_F_REPLY;
    (void)agent_up_send(ag, m);
    break;
  case PROTO_OP_OWNER_ALIVE:
    /* Another host asks whether a robust mutex's owner here lives (server/owners.c). */
    m->h.flags = PROTO_F_REPLY;
    m->u.owner.alive = (uint32_t)dshm_thread_alive((pid_t)m->u.owner.pid, (pid_t)m->u.owner.tid);
    AGENT_VLOG("owner %u/%u alive? %u", m->u.owner.pid, m->u.owner.tid, m->u.owner.alive);
    (void)agent_up_send(ag, m);
    break;
  case PROTO_OP_SEG_INFO: {
    /* Which of our processes have a segment attached (dshm stat, server/seginfo.c). */
    static uint8_t buf[PROTO_SEGINFO_MAX_ENTRIES * PROTO_SEGPROC_SIZE];
    struct proto_seginfo q = m->u.seginfo;
    m->h.flags = PROTO_F_REPLY;
    if (q.what != PROTO_SEGINFO_PROCS) {
      m->h.status = proto_err_from_errno(EINVAL);
    } else {
      agent_proc_seginfo(ag, &q, &m->u.seginfo_reply, buf);
    }
    (void)agent_up_send(ag, m);
    break;
  }
  default:
    agent_log("ignoring unexpected %s from the server", proto_op_name(m->h.opcode));
    break;
  }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct agent *ag = st->data;
  size_t off = 0, need = 0;

  (void)buf;
  if (nread < 0) {
    up_lost(ag, nread == UV_EOF ? "disconnected" : uv_strerror((int)nread));
    return;
  }
  ag->rx.len += (size_t)nread;
  agent_stats.bytes_in += (uint64_t)nread;
  while (ag->up_open) {
    ssize_t n = proto_frame(ag->rx.p + off, ag->rx.len - off, &in.h);
    if (n == 0) {
      if (ag->rx.len - off >= PROTO_HDR_SIZE)
        need = PROTO_HDR_SIZE + (size_t)in.h.length;
      break;
    }
    if (n < 0 || proto_decode(&in, ag->rx.p + off + PROTO_HDR_SIZE, in.h.length) < 0) {
      up_lost(ag, "bad message from the server");
      return;
    }
    on_message(ag, &in);
    off += (size_t)n;
  }
  if (!ag->up_open)
    return; /* lost while dispatching: the buffer belongs to the next connection */
  proto_rxbuf_shift(&ag->rx, off);
  if (proto_rxbuf_fit(&ag->rx, need) < 0)
    up_lost(ag, "out of memory for input");
}

/* Hands the handshaken blocking socket fd to the loop. 0 or a libuv error. */
static int start_stream(struct agent *ag, int fd) {
  struct timeval zero = {0, 0};
  int err;

  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof zero);
  if (ag->cfg->addr.unix_path[0] != '\0') {
    err = uv_pipe_init(ag->loop, &ag->up.pipe, 0);
    if (err == 0)
      err = uv_pipe_open(&ag->up.pipe, fd);
  } else {
    err = uv_tcp_init(ag->loop, &ag->up.tcp);
    if (err == 0)
      err = uv_tcp_open(&ag->up.tcp, fd);
  }
  if (err < 0)
    return err;
  ag->up_open = 1;
  ag->up.stream.data = ag;
  ag->rx.len = 0;
  err = uv_read_start(&ag->up.stream, on_alloc, on_read);
  if (err < 0)
    close_stream(ag);
  return err;
}

int agent_up_open(struct agent *ag, char *why, size_t whylen) {
  struct timeval tv = {10, 0};
  int fd, err;

  ag->reconn_fd = -1;
  TAILQ_INIT(&ag->parked);
  if (proto_rxbuf_init(&ag->rx, AGENT_RX_BASE) < 0 || uv_timer_init(ag->loop, &ag->reconn) < 0 ||
      uv_timer_init(ag->loop, &ag->resync_step) < 0)
    return -ENOMEM;
  ag->reconn.data = ag;
  ag->resync_step.data = ag;
  if (getrandom(ag->node_id, sizeof ag->node_id, 0) != (ssize_t)sizeof ag->node_id)
    return -EIO;
  fd = connect_server(ag->cfg, why, whylen);
  if (fd < 0)
    return fd;
  /* Bound the handshake: a peer that is not a dshm server must not hang us. */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  err = handshake(ag, fd, ag->instance, why, whylen);
  if (err == 0) {
    err = start_stream(ag, fd);
    if (err < 0)
      snprintf(why, whylen, "cannot use the server connection: %s", uv_strerror(err));
  }
  if (err < 0 && !ag->up_open)
    close(fd);
  return err;
}

/* The resync on the new connection, once every local view is down. */
static void finish_reconnect(struct agent *ag) {
  int fd = ag->reconn_fd, err;
  struct parked *k;

  agent_stats.reconnects++;
  ag->reconn_fd = -1;
  err = agent_seg_resync(ag, fd);
  if (err == 0)
    err = node_call(ag, fd, PROTO_NODE_RESUMED, NULL);
  if (err == 0)
    err = start_stream(ag, fd);
  if (err < 0) {
    close(fd);
    if (uv_now(ag->loop) + ag->reconn_delay >= ag->reconn_deadline) {
      give_up(ag, "the resync kept failing");
      return;
    }
    agent_log("reconnect to %s: resync failed (%s); trying again", ag->cfg->spec,
              strerror(err < 0 && err > -4096 ? -err : EIO));
    uv_timer_start(&ag->reconn, on_reconn, ag->reconn_delay, 0);
    return;
  }
  ag->up_reconn = 0;
  agent_log("reconnected to %s (DSHM_SERVER)", ag->cfg->spec);
  agent_seg_resume(ag);
  /* The calls that waited, in their order. */
  while ((k = TAILQ_FIRST(&ag->parked)) != NULL) {
    struct lproc *p = agent_proc_find(ag, k->proc);
    struct proto_msg *m = &parked_msg; /* not rep: forwarding may fill that (GROUPS) */
    TAILQ_REMOVE(&ag->parked, k, link);
    if (p != NULL && proto_frame(k->buf, k->len, &m->h) == (ssize_t)k->len &&
        proto_decode(m, k->buf + PROTO_HDR_SIZE, m->h.length) == 0 &&
        (err = agent_up_forward(ag, p, m)) < 0)
      reply_err(p, k->op, k->lreqid, err);
    free(k);
  }
}

void agent_up_resync_ready(struct agent *ag) {
  if (!ag->up_reconn)
    return;
  if (ag->in_step) {
    ag->step_again = 1;
    return;
  }
  ag->in_step = 1;
  do {
    ag->step_again = 0;
    if (ag->resync_pending == 0)
      agent_seg_lower_all(ag); /* pages left readable (a recall that kept SHARED) go too */
  } while (ag->step_again);
  ag->in_step = 0;
  if (ag->resync_pending == 0 && ag->reconn_fd >= 0)
    finish_reconnect(ag);
}

static void on_resync_step(uv_timer_t *t) {
  agent_up_resync_ready(t->data);
}

void agent_up_resync_soon(struct agent *ag) {
  if (ag->up_reconn)
    uv_timer_start(&ag->resync_step, on_resync_step, 0, 0);
}

static void on_reconn(uv_timer_t *t) {
  struct agent *ag = t->data;
  uint8_t inst[PROTO_NODE_ID];
  char why[700] = "";
  struct timeval tv;
  uint64_t now = uv_now(ag->loop), left;
  int fd, err;

  if (!ag->up_reconn || ag->reconn_fd >= 0)
    return;
  if (ag->up_closing) { /* the old stream's handle is not free yet */
    uv_timer_start(&ag->reconn, on_reconn, 1, 0);
    return;
  }
  left = ag->reconn_deadline > now ? ag->reconn_deadline - now : 1;
  fd = connect_server(ag->cfg, why, sizeof why);
  err = fd;
  if (fd >= 0) {
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    err = handshake(ag, fd, inst, why, sizeof why);
    if (err < 0)
      close(fd);
  }
  if (err < 0) {
    if (uv_now(ag->loop) + ag->reconn_delay >= ag->reconn_deadline) {
      give_up(ag, why[0] ? why : strerror(-err));
      return;
    }
    uv_timer_start(&ag->reconn, on_reconn, ag->reconn_delay, 0);
    ag->reconn_delay = ag->reconn_delay * 2 > 500 ? 500 : ag->reconn_delay * 2;
    return;
  }
  /* Another instance (restarted without --data-dir): it has none of our segments. */
  if (memcmp(inst, ag->instance, sizeof inst) != 0) {
    agent_seg_lose_all(ag);
    memcpy(ag->instance, inst, sizeof inst);
  }
  ag->reconn_fd = fd;
  agent_up_resync_ready(ag);
}

void agent_up_close(struct agent *ag) {
  uv_shutdown_t *req = ag->up_open ? malloc(sizeof *req) : NULL;
  struct parked *k;

  /* What is queued (write-backs, DETACHes) still goes out: shutdown waits for the pending
   * writes, then the stream is closed. */
  uv_timer_stop(&ag->reconn);
  if (!uv_is_closing((uv_handle_t *)&ag->resync_step))
    uv_close((uv_handle_t *)&ag->resync_step, NULL);
  if (req != NULL) {
    req->data = ag;
    if (uv_shutdown(req, &ag->up.stream, on_shutdown) == 0) {
      ag->up_open = 0; /* nothing more is queued; drain_done closes it */
      uv_timer_start(&ag->reconn, on_drain_deadline, AGENT_DRAIN_MS, 0);
    } else {
      free(req);
      req = NULL;
    }
  }
  close_stream(ag);
  if (ag->reconn_fd >= 0)
    close(ag->reconn_fd);
  ag->reconn_fd = -1;
  ag->up_reconn = 0;
  if (req == NULL)
    uv_close((uv_handle_t *)&ag->reconn, NULL);
  while ((k = TAILQ_FIRST(&ag->parked)) != NULL) {
    TAILQ_REMOVE(&ag->parked, k, link);
    free(k);
  }
}

static void on_write(uv_write_t *req, int status) {
  struct agent *ag = req->handle->data;

  free(req);
  if (status < 0 && status != UV_ECANCELED)
    up_lost(ag, uv_strerror(status));
}

int agent_up_send(struct agent *ag, struct proto_msg *m) {
  ssize_t n = proto_encoded_size(m);
  struct wreq *w;
  uv_buf_t b;
  int err;

  if (!ag->up_open || ag->up_dead)
    return -ENOTCONN;
  if (n < 0)
    return (int)n;
  agent_stats.bytes_out += (uint64_t)n;
  if (!(m->h.flags & PROTO_F_REPLY) &&
      (m->h.opcode == PROTO_OP_WRITE_DATA || m->h.opcode == PROTO_OP_RECALL_ACK))
    for (uint32_t i = 0; i < m->u.run.count; i++)
      agent_stats.writeback_pages += (m->u.run.page[i].flags & PROTO_PAGE_DATA) != 0;
  w = malloc(sizeof *w + (size_t)n);
  if (w == NULL)
    return -ENOMEM;
  w->len = (size_t)proto_encode(w->buf, (size_t)n, m);
  b = uv_buf_init((char *)w->buf, (unsigned)w->len);
  /* Nothing queued: write now. A queued uv_write costs two epoll_ctl calls (POLLOUT on,
   * then off) on top of the write, a few us per message on a VM. What the socket does not
   * take, and any error, goes the usual way (errors then come from on_write, as before). */
  if (uv_stream_get_write_queue_size(&ag->up.stream) == 0) {
    int done = uv_try_write(&ag->up.stream, &b, 1);
    if (done == (int)b.len) {
      free(w);
      return 0;
    }
    if (done > 0) {
      b.base += done;
      b.len -= (size_t)done;
    }
  }
  err = uv_write(&w->req, &ag->up.stream, &b, 1, on_write);
  if (err < 0) {
    free(w);
    up_lost(ag, uv_strerror(err));
  }
  return err;
}

/* The supplementary groups of pid, from the kernel (/proc/PID/status). 0 or -errno. */
static int proc_groups(pid_t pid, uint32_t *groups, uint32_t *n) {
  char path[64], line[4096];
  FILE *f;
  int err = -ENOENT;

  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  f = fopen(path, "re");
  if (f == NULL)
    return -errno;
  while (fgets(line, sizeof line, f) != NULL) {
    char *p = line + 7, *end;
    if (strncmp(line, "Groups:", 7) != 0)
      continue;
    *n = 0;
    for (;;) {
      unsigned long g = strtoul(p, &end, 10);
      if (end == p)
        break;
      if (*n == PROTO_MAX_GROUPS) {
        err = -E2BIG;
        break;
      }
      groups[(*n)++] = (uint32_t)g;
      p = end;
    }
    if (err != -E2BIG)
      err = 0;
    break;
  }
  fclose(f);
  return err;
}

/* The server checks permissions with the groups of the connection: before a process's call,
 * they become that process's, as the kernel sees them now. */
static int sync_groups(struct agent *ag, pid_t pid) {
  uint32_t groups[PROTO_MAX_GROUPS], n = 0;
  int err = proc_groups(pid, groups, &n);

  if (err == -E2BIG)
    n = PROTO_MAX_GROUPS; /* the first ones only, as the shim did (docs/compatibility.md) */
  else if (err < 0)
    n = 0;
  if (ag->groups_known && n == ag->ngroups_sent &&
      memcmp(groups, ag->groups_sent, n * sizeof groups[0]) == 0)
    return 0;
  memset(&rep.h, 0, sizeof rep.h);
  rep.h.opcode = PROTO_OP_GROUPS;
  rep.h.reqid = agent_up_reqid(ag);
  rep.u.groups.ngroups = n;
  memcpy(rep.u.groups.groups, groups, n * sizeof groups[0]);
  memcpy(ag->groups_sent, groups, n * sizeof groups[0]);
  ag->ngroups_sent = n;
  ag->groups_known = 1;
  return agent_up_send(ag, &rep);
}

static int fwd_add(struct agent *ag, const struct fwd *f) {
  if (ag->nfwd == ag->capfwd) {
    size_t cap = ag->capfwd ? ag->capfwd * 2 : 16;
    struct fwd *nf = realloc(ag->fwd, cap * sizeof *nf);
    if (nf == NULL)
      return -ENOMEM;
    ag->fwd = nf;
    ag->capfwd = cap;
  }
  ag->fwd[ag->nfwd] = *f;
  ag->fwd[ag->nfwd++].t0 = uv_hrtime();
  return 0;
}

/* Records f and sends m as its request (the server's reply is matched by f.reqid); the
 * record goes again if the send fails. 0 or -errno. */
static int fwd_send(struct agent *ag, const struct fwd *f, struct proto_msg *m) {
  int err = fwd_add(ag, f);

  if (err < 0)
    return err;
  m->h.reqid = f->reqid;
  m->h.flags = 0;
  m->h.status = 0;
  err = agent_up_send(ag, m);
  if (err < 0)
    ag->nfwd--;
  return err;
}

/* A call on the id of a segment the server lost in a restart: that id may name another
 * segment now (docs/shim.md, "Server lost mid-run"). */
static int names_lost(struct agent *ag, const struct proto_msg *m) {
  struct hseg *s = NULL;

  if (m->h.opcode == PROTO_OP_REMOVE_SEGMENT)
    s = agent_seg_find(ag, m->u.segref.shmid);
  else if (m->h.opcode == PROTO_OP_SHMCTL && m->u.shmctl.cmd != IPC_INFO &&
           m->u.shmctl.cmd != SHM_INFO && m->u.shmctl.cmd != SHM_STAT &&
           m->u.shmctl.cmd != SHM_STAT_ANY)
    s = agent_seg_find(ag, m->u.shmctl.shmid);
  return s != NULL && s->lost;
}

int agent_up_park(struct agent *ag, struct lproc *p, struct proto_msg *m) {
  ssize_t n = proto_encoded_size(m);
  struct parked *k;

  if (n < 0)
    return (int)n;
  k = malloc(sizeof *k + (size_t)n);
  if (k == NULL)
    return -ENOMEM;
  k->proc = p->id;
  k->op = m->h.opcode;
  k->lreqid = m->h.reqid;
  k->len = (size_t)proto_encode(k->buf, (size_t)n, m);
  TAILQ_INSERT_TAIL(&ag->parked, k, link);
  return 0;
}

int agent_up_forward(struct agent *ag, struct lproc *p, struct proto_msg *m) {
  struct fwd f = {0};
  int err;

  agent_stats.sysv_calls++;
  if (ag->up_dead)
    return -ENOTCONN;
  if (ag->up_reconn)
    return agent_up_park(ag, p, m); /* sent once the resync is done */
  if (names_lost(ag, m))
    return -EIDRM;
  err = sync_groups(ag, p->pid);
  if (err < 0)
    return err;
  f.reqid = agent_up_reqid(ag);
  f.proc = p->id;
  f.pid = (uint32_t)p->pid;
  f.lreqid = m->h.reqid;
  f.op = m->h.opcode;
  if (m->h.opcode == PROTO_OP_ATTACH_SEGMENT) {
    f.shmid = m->u.attach.shmid;
    f.shmflg = m->u.attach.shmflg;
  } else if (m->h.opcode == PROTO_OP_INHERIT) {
    f.shmid = m->u.inherit.shmid;
    f.child = m->u.inherit.child;
    f.nrw = m->u.inherit.nrw;
    f.nro = m->u.inherit.nro;
  }
  return fwd_send(ag, &f, m);
}

int agent_up_detach(struct agent *ag, struct lproc *p, struct proto_msg *m, int last) {
  struct fwd f = {0};

  if (!ag->up_open)
    return -ENOTCONN; /* the resync counts what is left */
  f.reqid = agent_up_reqid(ag);
  f.proc = p != NULL ? p->id : 0;
  f.pid = m->u.segref.cred.pid;
  f.lreqid = m->h.reqid;
  f.op = PROTO_OP_DETACH_SEGMENT;
  f.shmid = m->u.segref.shmid;
  f.host_last = last;
  m->h.opcode = PROTO_OP_DETACH_SEGMENT;
  return fwd_send(ag, &f, m);
}

int agent_up_page_request(struct agent *ag, int32_t shmid, uint32_t first, uint32_t count,
                          uint32_t mode, const uint64_t *versions) {
  struct preq *q;
  uint32_t i;
  int err;

  agent_stats.page_requests++;
  if (ag->npreq == ag->cappreq) {
    size_t cap = ag->cappreq ? ag->cappreq * 2 : 16;
    struct preq *nq = realloc(ag->preq, cap * sizeof *nq);
    if (nq == NULL)
      return -ENOMEM;
    ag->preq = nq;
    ag->cappreq = cap;
  }
  memset(&rep.h, 0, sizeof rep.h);
  rep.h.opcode = mode == PROTO_MODE_EXCLUSIVE ? PROTO_OP_ACQUIRE : PROTO_OP_READ_DATA;
  rep.h.reqid = agent_up_reqid(ag);
  rep.u.run.shmid = shmid;
  rep.u.run.first = first;
  rep.u.run.count = count;
  rep.u.run.mode = mode;
  for (i = 0; i < count; i++)
    rep.u.run.page[i] = (struct proto_page){versions[i], 0, NULL};
  q = &ag->preq[ag->npreq];
  *q = (struct preq){rep.h.reqid, shmid, first, count, mode, uv_hrtime()};
  err = agent_up_send(ag, &rep);
  if (err == 0)
    ag->npreq++;
  return err;
}

/* Asks the server to end the waiting SEMOP with upstream reqid (its reply follows). */
static void send_sem_cancel(struct agent *ag, uint32_t reqid) {
  struct proto_msg m;

  memset(&m, 0, sizeof m);
  m.h.opcode = PROTO_OP_SEM_CANCEL;
  m.u.sem_cancel.reqid = reqid;
  if (ag->up_open && !ag->up_reconn)
    (void)agent_up_send(ag, &m);
}

void agent_up_sem_cancel(struct agent *ag, uint32_t proc, uint32_t lreqid) {
  for (size_t i = 0; i < ag->nfwd; i++)
    if (ag->fwd[i].proc == proc && ag->fwd[i].op == PROTO_OP_SEMOP &&
        ag->fwd[i].lreqid == lreqid) {
      send_sem_cancel(ag, ag->fwd[i].reqid);
      return;
    }
}

void agent_up_forget_proc(struct agent *ag, uint32_t proc) {
  size_t i;

  /* An ATTACH still in flight keeps its entry, marked: its success is undone on arrival.
   * A semop still waiting at the server must not run for a process that is gone (the
   * kernel drops a dying task's waits): cancelled, its reply dropped. */
  for (i = 0; i < ag->nfwd; i++)
    if (ag->fwd[i].proc == proc && ag->fwd[i].op != PROTO_OP_ATTACH_SEGMENT) {
      if (ag->fwd[i].op == PROTO_OP_SEMOP)
        send_sem_cancel(ag, ag->fwd[i].reqid);
      ag->fwd[i].proc = 0;
    }
}
