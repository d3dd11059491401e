/* local.c - owns the connections of this host's processes: accept on the SOCK_SEQPACKET
 * socket (one message = one frame, so the fault handler of a process can send a whole record
 * with one send(2)), the identity of each process from the kernel (SO_PEERCRED at connect,
 * SCM_CREDENTIALS with each SysV call), their attachment records, the inherited attachments
 * of a forked child until it connects, and the one teardown when a process goes away. */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "hostseg.h"
#include "procexit.h"
#include "stats.h"
#include "threadalive.h"
#include "upstream.h"

/* The largest message a process sends: a SEMCTL SETALL of the largest set. */
#define LOCAL_MAX_MSG (PROTO_HDR_SIZE + PROTO_SEMCTL_MAX_PAYLOAD)

static struct proto_msg in; /* 6 KiB, single-threaded */
static uint8_t rbuf[LOCAL_MAX_MSG + 1];

struct lproc *agent_proc_find(struct agent *ag, uint32_t id) {
  struct lproc *p;

  TAILQ_FOREACH(p, &ag->procs, link)
    if (p->id == id)
      return p;
  return NULL;
}

struct lproc *agent_proc_by_pid(struct agent *ag, pid_t pid) {
  struct lproc *p;

  TAILQ_FOREACH(p, &ag->procs, link)
    if (p->pid == pid && !p->gone)
      return p;
  return NULL;
}

struct latt *agent_proc_att(struct lproc *p, int32_t shmid) {
  for (uint32_t i = 0; i < p->natt; i++)
    if (p->att[i].shmid == shmid)
      return &p->att[i];
  return NULL;
}

void agent_proc_counts(struct agent *ag, int32_t shmid, uint32_t *nrw, uint32_t *nro) {
  struct lproc *p;
  struct latt *a;

  *nrw = *nro = 0;
  TAILQ_FOREACH(p, &ag->procs, link)
    if ((a = agent_proc_att(p, shmid)) != NULL) {
      *nrw += a->nrw;
      *nro += a->nro;
    }
}

void agent_proc_seginfo(struct agent *ag, const struct proto_seginfo *q,
                        struct proto_seginfo_reply *r, uint8_t *buf) {
  struct lproc *p;
  struct latt *a;

  *r = (struct proto_seginfo_reply){PROTO_SEGINFO_PROCS, 0, 0, 0, buf};
  TAILQ_FOREACH(p, &ag->procs, link) {
    if (p->gone || (a = agent_proc_att(p, q->shmid)) == NULL || a->nrw + a->nro == 0)
      continue;
    if (r->total++ < q->first || r->n == PROTO_SEGINFO_MAX_ENTRIES)
      continue;
    proto_segproc_put(buf + (size_t)r->n++ * PROTO_SEGPROC_SIZE,
                      &(struct proto_segproc){(uint32_t)p->pid, a->nrw, a->nro});
    r->next = r->total;
  }
  if (r->n == 0)
    r->next = r->total;
}

int agent_proc_att_add(struct lproc *p, int32_t shmid, uint32_t nrw, uint32_t nro) {
  struct latt *a = agent_proc_att(p, shmid);

  if (a == NULL) {
    if (p->natt == p->capatt) {
      uint32_t cap = p->capatt ? p->capatt * 2 : 4;
      struct latt *na = realloc(p->att, cap * sizeof *na);
      if (na == NULL)
        return -ENOMEM;
      p->att = na;
      p->capatt = cap;
    }
    a = &p->att[p->natt++];
    *a = (struct latt){shmid, 0, 0};
  }
  a->nrw += nrw;
  a->nro += nro;
  return 0;
}

static void proc_free(struct lproc *p) {
  struct lframe *f;

  while ((f = STAILQ_FIRST(&p->out)) != NULL) {
    STAILQ_REMOVE_HEAD(&p->out, link);
    for (int i = 0; i < 2; i++)
      if (f->fds[i] >= 0)
        close(f->fds[i]);
    free(f);
  }
  free(p->att);
  free(p);
}

static void on_proc_closed(uv_handle_t *h) {
  struct lproc *p = h->data;

  if (--p->closing == 0 && p->gone)
    proc_free(p);
}

/* Writes queued frames until the socket is full. 0, 1 (more to write) or -errno. */
static int flush_out(struct lproc *p) {
  struct lframe *f;

  while ((f = STAILQ_FIRST(&p->out)) != NULL) {
    union {
      char buf[CMSG_SPACE(2 * sizeof(int))];
      struct cmsghdr align;
    } cm;
    struct iovec iov = {f->buf, f->len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    int nfd = (f->fds[0] >= 0) + (f->fds[1] >= 0);
    ssize_t n;

    if (nfd > 0) {
      struct cmsghdr *c;
      mh.msg_control = cm.buf;
      mh.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
      c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
      memcpy(CMSG_DATA(c), f->fds, (size_t)nfd * sizeof(int));
    }
    n = sendmsg(p->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN ? 1 : -errno;
    }
    STAILQ_REMOVE_HEAD(&p->out, link);
    for (int i = 0; i < 2; i++)
      if (f->fds[i] >= 0)
        close(f->fds[i]);
    free(f);
  }
  return 0;
}

static void on_proc_event(uv_poll_t *h, int status, int events);

static void update_poll(struct lproc *p) {
  int want = STAILQ_EMPTY(&p->out) ? 0 : 1;

  if (p->poll_on && want != p->want_out) {
    p->want_out = want;
    uv_poll_start(&p->poll, UV_READABLE | (want ? UV_WRITABLE : 0), on_proc_event);
  }
}

int agent_proc_send(struct lproc *p, struct proto_msg *m, int fd0, int fd1) {
  ssize_t n = proto_encoded_size(m);
  struct lframe *f;

  if (p->fd < 0 || p->gone || n < 0) {
    if (fd0 >= 0)
      close(fd0);
    if (fd1 >= 0)
      close(fd1);
    return n < 0 ? (int)n : -ENOTCONN;
  }
  f = malloc(sizeof *f + (size_t)n);
  if (f == NULL) {
    if (fd0 >= 0)
      close(fd0);
    if (fd1 >= 0)
      close(fd1);
    return -ENOMEM;
  }
  f->len = (size_t)proto_encode(f->buf, (size_t)n, m);
  f->fds[0] = fd0 >= 0 ? fd0 : fd1;
  f->fds[1] = fd0 >= 0 ? fd1 : -1;
  STAILQ_INSERT_TAIL(&p->out, f, link);
  if (flush_out(p) < 0) {
    /* Not sendable (gone, or a message it cannot take): nothing later could pass it.
     * Shut the socket down: its hang-up is read next, and that tears the process down. */
    shutdown(p->fd, SHUT_RDWR);
    return -ECONNRESET;
  }
  update_poll(p);
  return 0;
}

/* The one teardown of a process (connection closed, exec, death of a child that never
 * connected): what it owed counts as answered, every attachment it had is detached at the
 * host and at the server (nattch, lpid and dtime move as the kernel's at exit). */
static void proc_gone(struct agent *ag, struct lproc *p) {
  struct proto_msg m;

  if (p->gone)
    return;
  p->gone = 1;
  agent_seg_local_ack(ag, p->id, 0);
  agent_up_forget_proc(ag, p->id);
  for (uint32_t i = 0; i < p->natt; i++) {
    struct latt *a = &p->att[i];
    for (uint32_t k = 0; k < a->nrw + a->nro; k++) {
      struct hseg *s = agent_seg_find(ag, a->shmid);
      int last = s != NULL && agent_seg_detach(ag, s);
      memset(&m.h, 0, sizeof m.h);
      m.u.segref.cred = (struct proto_cred){(uint32_t)p->pid, p->uid, p->gid};
      m.u.segref.shmid = a->shmid;
      (void)agent_up_detach(ag, NULL, &m, last);
    }
  }
  p->natt = 0;
  if (p->slot < 64)
    ag->slots_used &= ~(UINT64_C(1) << p->slot);
  TAILQ_REMOVE(&ag->procs, p, link);
  ag->nprocs--;
  if (p->poll_on) {
    p->closing++;
    uv_close((uv_handle_t *)&p->poll, on_proc_closed);
    p->poll_on = 0;
  }
  if (p->ppoll_on) {
    p->closing++;
    uv_close((uv_handle_t *)&p->ppoll, on_proc_closed);
    p->ppoll_on = 0;
  }
  if (p->fd >= 0)
    close(p->fd);
  if (p->pidfd >= 0)
    close(p->pidfd);
  if (p->undo_pidfd >= 0) /* an exec keeps the adjustments: only its exit applies them */
    agent_exit_watch(ag, p->pid, p->undo_pidfd);
  p->fd = p->pidfd = p->undo_pidfd = -1;
  if (p->closing == 0)
    proc_free(p); /* else by the last close callback */
  agent_procs_changed(ag);
}

static void reply_status(struct lproc *p, const struct proto_msg *m, int err) {
  struct proto_msg r;

  memset(&r.h, 0, sizeof r.h);
  r.h.opcode = m->h.opcode;
  r.h.flags = PROTO_F_REPLY;
  r.h.reqid = m->h.reqid;
  r.h.status = err < 0 ? proto_err_from_errno(err) : 0;
  (void)agent_proc_send(p, &r, -1, -1);
}

static int semop_has_undo(const struct proto_semop *q) {
  for (uint32_t i = 0; i < q->nsops; i++)
    if (proto_get_u16(q->sops + (size_t)i * PROTO_SEMOP_SIZE + 4) & SEM_UNDO)
      return 1;
  return 0;
}

/* Reads every process connection that has input or hung up, so that a call sees the effect
 * of every exit that happened before it (a parent that reaped its child and asks IPC_STAT
 * must see the child's detach, as with the kernel). */
static void reap_hangups(struct agent *ag, struct lproc *self);

static int pidfd_of(pid_t pid) {
#ifdef SYS_pidfd_open
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

static void on_pidfd(uv_poll_t *h, int status, int events) {
  struct lproc *p = h->data;

  (void)status;
  (void)events;
  proc_gone(p->ag, p); /* the child exited before it connected */
}

static uint32_t slot_new(struct agent *ag, uint32_t id) {
  for (uint32_t s = 0; s < 64; s++)
    if (!(ag->slots_used & (UINT64_C(1) << s))) {
      ag->slots_used |= UINT64_C(1) << s;
      return s;
    }
  return 64 + id; /* aliases slot id % 64 (hosttab.h) */
}

static struct lproc *proc_new(struct agent *ag, pid_t pid) {
  struct lproc *p = calloc(1, sizeof *p);

  if (p == NULL)
    return NULL;
  p->ag = ag;
  p->id = ++ag->next_proc_id ? ag->next_proc_id : ++ag->next_proc_id;
  p->slot = slot_new(ag, p->id);
  p->pid = pid;
  p->fd = p->pidfd = p->undo_pidfd = -1;
  STAILQ_INIT(&p->out);
  TAILQ_INSERT_TAIL(&ag->procs, p, link);
  ag->nprocs++;
  agent_procs_changed(ag);
  return p;
}

/* INHERIT: the parent p declares that its child (m->u.inherit.child) inherited n of its
 * attachments of shmid at fork. The child's record is created now if it has not connected
 * yet, watched through a pidfd until it does. */
static int on_inherit(struct agent *ag, struct lproc *p, struct proto_msg *m) {
  const struct proto_inherit *q = &m->u.inherit;
  struct hseg *s = agent_seg_find(ag, q->shmid);
  struct lproc *c;

  if (agent_proc_att(p, q->shmid) == NULL || s == NULL)
    return -EINVAL;
  c = agent_proc_by_pid(ag, (pid_t)q->child);
  if (c == NULL) {
    int pfd = pidfd_of((pid_t)q->child);
    if (pfd < 0)
      return -errno;
    c = proc_new(ag, (pid_t)q->child);
    if (c == NULL) {
      close(pfd);
      return -ENOMEM;
    }
    c->uid = p->uid;
    c->gid = p->gid;
    c->pidfd = pfd;
    if (uv_poll_init(ag->loop, &c->ppoll, pfd) == 0) {
      c->ppoll.data = c;
      c->ppoll_on = 1;
      uv_poll_start(&c->ppoll, UV_READABLE, on_pidfd);
    }
  }
  /* The attachments become the child's when the server accepts them (upstream.c). */
  return agent_up_forward(ag, p, m);
}

/* OWNER_ALIVE from a process (preload/robust.c): tag 0 asks for this host's tag; an owner
 * on this host is looked at here, one elsewhere asked of the server (which asks its host). */
static void on_owner_alive(struct agent *ag, struct lproc *p, struct proto_msg *m) {
  uint64_t mine = proto_node_tag(ag->node_id);
  int err;

  if (m->u.owner.tag == 0 || m->u.owner.tag == mine) {
    m->h.flags = PROTO_F_REPLY;
    m->u.owner.alive = m->u.owner.tag == 0 ? 1u
                       : (uint32_t)dshm_thread_alive((pid_t)m->u.owner.pid,
                                                     (pid_t)m->u.owner.tid);
    m->u.owner.tag = mine;
    (void)agent_proc_send(p, m, -1, -1);
    return;
  }
  err = agent_up_forward(ag, p, m);
  if (err < 0)
    reply_status(p, m, err);
}

/* One message of process p; creds are the kernel's for this message. */
static void dispatch(struct agent *ag, struct lproc *p, struct proto_msg *m,
                     const struct ucred *uc) {
  struct proto_cred cred = {(uint32_t)uc->pid, (uint32_t)uc->uid, (uint32_t)uc->gid};
  struct hseg *s;
  struct latt *a;
  int err = 0;

  if (m->h.flags & PROTO_F_REPLY) {
    proc_gone(ag, p);
    return;
  }
  switch (m->h.opcode) {
  case PROTO_OP_HELLO: {
    struct proto_msg r;
    memset(&r.h, 0, sizeof r.h);
    r.h.opcode = PROTO_OP_HELLO;
    r.h.flags = PROTO_F_REPLY;
    r.h.reqid = m->h.reqid;
    r.u.hello_reply = (struct proto_hello_reply){p->slot, PROTO_PAGE_SIZE, PROTO_MAX_RUN};
    (void)agent_proc_send(p, &r, -1, -1);
    return;
  }
  case PROTO_OP_PING:
    m->h.flags = PROTO_F_REPLY;
    (void)agent_proc_send(p, m, -1, -1);
    return;
  case PROTO_OP_READ_DATA:
  case PROTO_OP_ACQUIRE:
    /* A fault record: no reply; the host page table answers. */
    agent_stats.faults++;
    s = agent_seg_find(ag, m->u.run.shmid);
    a = agent_proc_att(p, m->u.run.shmid);
    if (s != NULL && a != NULL && (m->h.opcode == PROTO_OP_READ_DATA || a->nrw > 0))
    {
      AGENT_VLOG("pid %d (slot %u) wants shm %d page %u mode %u", (int)p->pid, p->slot,
                 m->u.run.shmid, m->u.run.first, m->u.run.mode);
      agent_seg_want(ag, s, m->u.run.first, m->u.run.mode);
    }
    return;
  case PROTO_OP_RAISED:
    /* A fresh grant was used (proto/hosttab.h): no reply. */
    if (agent_proc_att(p, m->u.range.shmid) != NULL)
      agent_seg_raised(ag, m->u.range.shmid, m->u.range.first);
    return;
  case PROTO_OP_INVALIDATE_ACK:
  case PROTO_OP_RECALL_ACK:
    AGENT_VLOG("pid %d (slot %u) lowered (reqid %u)", (int)p->pid, p->slot, m->h.reqid);
    agent_seg_local_ack(ag, p->id, m->h.reqid);
    return;
  case PROTO_OP_OWNER_ALIVE:
    on_owner_alive(ag, p, m);
    return;
  default:
    break;
  }
  /* SysV calls: the kernel's word on who asks, and every exit before this call applied
   * (detaches, SEM_UNDO). */
  reap_hangups(ag, p);
  agent_exit_reap(ag);
  switch (m->h.opcode) {
  case PROTO_OP_CREATE_SEGMENT:
    m->u.create.cred = cred;
    err = agent_up_forward(ag, p, m);
    break;
  case PROTO_OP_ATTACH_SEGMENT:
    m->u.attach.cred = cred;
    err = agent_up_forward(ag, p, m);
    break;
  case PROTO_OP_REMOVE_SEGMENT:
    m->u.segref.cred = cred;
    err = agent_up_forward(ag, p, m);
    break;
  case PROTO_OP_SHMCTL:
    m->u.shmctl.cred = cred;
    err = agent_up_forward(ag, p, m);
    break;
  case PROTO_OP_SEG_INFO:
    /* Even about this host's own processes the server answers (through us): it checks the
     * caller's right to read the segment. */
    m->u.seginfo.cred = cred;
    if (m->u.seginfo.tag == 0)
      m->u.seginfo.tag = proto_node_tag(ag->node_id);
    err = agent_up_forward(ag, p, m);
    break;
  case PROTO_OP_DETACH_SEGMENT:
    a = agent_proc_att(p, m->u.segref.shmid);
    if (a == NULL || a->nrw + a->nro == 0) {
      err = -EINVAL;
      break;
    }
    /* DETACH says not which attachment went: a read-only one first, as the server does. */
    a->nro > 0 ? a->nro-- : a->nrw--;
    s = agent_seg_find(ag, m->u.segref.shmid);
    {
      int lost = s != NULL && s->lost;
      int last = s != NULL && agent_seg_detach(ag, s); /* the host's last: written back */
      /* Reconnecting, the resync registers what is left (not this one); a lost segment
       * is the server's no more: done here. */
      if (ag->up_reconn || lost) {
        reply_status(p, m, 0);
        return;
      }
      m->u.segref.cred = cred;
      err = agent_up_detach(ag, p, m, last);
    }
    break;
  case PROTO_OP_INHERIT:
    m->u.inherit.cred = cred;
    err = on_inherit(ag, p, m);
    break;
  case PROTO_OP_SEMGET:
    m->u.semget.cred = cred;
    err = agent_up_forward(ag, p, m);
    break;
  case PROTO_OP_SEMCTL:
    m->u.semctl.cred = cred;
    err = agent_up_forward(ag, p, m);
    break;
  case PROTO_OP_SEMOP:
    m->u.semop.cred = cred;
    if (p->undo_pidfd < 0 && semop_has_undo(&m->u.semop))
      p->undo_pidfd = agent_exit_pidfd(p->pid);
    err = agent_up_forward(ag, p, m);
    break;
  case PROTO_OP_SEM_CANCEL:
    agent_up_sem_cancel(ag, p->id, m->u.sem_cancel.reqid);
    return;
  default:
    agent_log("pid %d: unexpected %s: closing its connection", (int)p->pid,
              proto_op_name(m->h.opcode));
    proc_gone(ag, p);
    return;
  }
  if (err < 0)
    reply_status(p, m, err);
}

/* Reads every whole message waiting on p. */
static void proc_read(struct agent *ag, struct lproc *p) {
  for (;;) {
    union {
      char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(4 * sizeof(int))];
      struct cmsghdr align;
    } cm;
    struct iovec iov = {rbuf, sizeof rbuf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                        .msg_controllen = sizeof cm.buf};
    struct ucred uc = {p->pid, p->uid, p->gid};
    struct cmsghdr *c;
    ssize_t n = recvmsg(p->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n < 0) {
      proc_gone(ag, p);
      return;
    }
    /* Before anything else: an empty message (read as n == 0) may carry descriptors too. */
    for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET)
        continue;
      if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof uc))
        memcpy(&uc, CMSG_DATA(c), sizeof uc);
      else if (c->cmsg_type == SCM_RIGHTS) /* nobody sends us descriptors: drop them */
        for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++)
          close(((int *)CMSG_DATA(c))[k]);
    }
    if (n == 0) {
      proc_gone(ag, p);
      return;
    }
    /* One message is one whole frame; anything else ends the connection. */
    if ((mh.msg_flags & MSG_TRUNC) || proto_frame(rbuf, (size_t)n, &in.h) != n ||
        proto_decode(&in, rbuf + PROTO_HDR_SIZE, in.h.length) < 0) {
      agent_log("pid %d: malformed message: closing its connection", (int)p->pid);
      proc_gone(ag, p);
      return;
    }
    /* A message without credentials is the connecting process's own. */
    if (uc.pid != p->pid && uc.pid != 0) {
      agent_log("pid %d: a message from pid %d on its connection: closing it", (int)p->pid,
                (int)uc.pid);
      proc_gone(ag, p);
      return;
    }
    dispatch(ag, p, &in, &uc);
    if (p->gone)
      return;
  }
}

static void reap_hangups(struct agent *ag, struct lproc *self) {
  struct lproc *p, *next;

  for (p = TAILQ_FIRST(&ag->procs); p != NULL; p = next) {
    struct pollfd pf = {p->fd, POLLIN | POLLRDHUP, 0};
    next = TAILQ_NEXT(p, link);
    if (p == self || p->fd < 0 || p->gone)
      continue;
    if (poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLRDHUP | POLLERR)))
      proc_gone(ag, p); /* its last messages were acks and records: nothing to lose */
  }
}

static void on_proc_event(uv_poll_t *h, int status, int events) {
  struct lproc *p = h->data;
  struct agent *ag = p->ag;

  if (status < 0) {
    proc_gone(ag, p);
    return;
  }
  if (events & UV_WRITABLE) {
    if (flush_out(p) < 0) {
      proc_gone(ag, p);
      return;
    }
    update_poll(p);
  }
  if (events & UV_READABLE)
    proc_read(ag, p);
}

/* The connection fd (non-blocking) of the process uc->pid: its record, created, or the one a
 * parent's INHERIT made for it. NULL if it could not be set up (fd is closed then). */
static struct lproc *proc_connect(struct agent *ag, int fd, const struct ucred *uc) {
  /* A forked child whose parent already declared its inherited attachments. */
  struct lproc *p = agent_proc_by_pid(ag, uc->pid);

  if (p != NULL && p->fd >= 0) {
    agent_log("pid %d connected twice: closing the older connection", (int)uc->pid);
    proc_gone(ag, p);
    p = NULL;
  }
  if (p == NULL)
    p = proc_new(ag, uc->pid);
  if (p == NULL) {
    close(fd);
    return NULL;
  }
  if (p->ppoll_on) {
    p->closing++;
    p->ppoll_on = 0;
    uv_close((uv_handle_t *)&p->ppoll, on_proc_closed);
    close(p->pidfd);
    p->pidfd = -1;
  }
  p->fd = fd;
  p->uid = uc->uid;
  p->gid = uc->gid;
  if (uv_poll_init(ag->loop, &p->poll, fd) < 0) {
    proc_gone(ag, p);
    return NULL;
  }
  p->poll.data = p;
  p->poll_on = 1;
  uv_poll_start(&p->poll, UV_READABLE, on_proc_event);
  return p;
}

int agent__local_adopt(struct agent *ag, int fd, pid_t pid, uid_t uid, gid_t gid) {
  struct ucred uc = {pid, uid, gid};
  struct lproc *p = proc_connect(ag, fd, &uc);

  return p != NULL ? (int)(p->slot % 64u) : -ENOMEM;
}

static void on_accept(uv_poll_t *h, int status, int events) {
  struct agent *ag = h->data;

  (void)events;
  if (status < 0)
    return;
  for (;;) {
    int fd = accept4(ag->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
    struct ucred uc;
    socklen_t len = sizeof uc;

    if (fd < 0)
      return;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) {
      close(fd);
      continue;
    }
    /* One agent per user (docs/security.md): only our own user's processes, or root's. The
     * socket's mode says so already; this holds even if the file's mode was changed. */
    if (uc.uid != geteuid() && uc.uid != 0) {
      agent_log("refusing pid %d of uid %u: this agent serves uid %u", (int)uc.pid,
                (unsigned)uc.uid, (unsigned)geteuid());
      close(fd);
      continue;
    }
    (void)proc_connect(ag, fd, &uc);
  }
}

int agent_local_listen(struct agent *ag) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  const char *path = ag->cfg->sock_path;
  int fd;

  if (strlen(path) >= sizeof a.sun_path)
    return -ENAMETOOLONG;
  fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  memcpy(a.sun_path, path, strlen(path) + 1);
  (void)unlink(path); /* we hold the agent lock: a socket file here is a dead agent's */
  /* Nobody else may connect: the socket is the user's (docs/security.md). */
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || chmod(path, 0600) < 0 ||
      listen(fd, 128) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return agent_local_serve(ag, fd);
}

int agent_local_serve(struct agent *ag, int fd) {
  ag->listen_fd = fd;
  if (uv_poll_init(ag->loop, &ag->lpoll, fd) < 0)
    return -EIO;
  ag->lpoll.data = ag;
  ag->lpoll_on = 1;
  return uv_poll_start(&ag->lpoll, UV_READABLE, on_accept);
}

static void on_lpoll_closed(uv_handle_t *h) {
  (void)h;
}

void agent_local_close_all(struct agent *ag) {
  struct lproc *p;

  if (ag->lpoll_on) {
    ag->lpoll_on = 0;
    uv_close((uv_handle_t *)&ag->lpoll, on_lpoll_closed);
    close(ag->listen_fd);
    ag->listen_fd = -1;
  }
  while ((p = TAILQ_FIRST(&ag->procs)) != NULL)
    proc_gone(ag, p);
}
