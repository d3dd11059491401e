/* session.c - owns the connection to the host agent: connect + HELLO, the I/O thread, the
 * output queue, replies to waiting threads; the agent's page requests go to agentpage.c. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agentlink.h"
#include "agentpage.h"
#include "config.h"
#include "real.h"

enum { S_NONE, S_UP, S_DEAD, S_FORKED };

/* An encoded frame waiting to be written. */
struct frame {
  struct frame *next;
  size_t len, off;
  int has_cred;           /* sent with these SCM_CREDENTIALS (the kernel checks them: the
                           * agent believes them) */
  struct ucred cred;
  uint8_t buf[];
};

/* lock protects everything here except fd/rbuf (I/O thread only once it runs). */
static struct {
  pthread_mutex_t lock;
  int state;
  int fd;
  int pipe_rd;
  struct frame *out_head, *out_tail;
  struct shim_waiter *waiters;
  pid_t pid; /* the process that opened the session (a vfork child is not it) */
} S = {PTHREAD_MUTEX_INITIALIZER, S_NONE, -1, -1, NULL, NULL, NULL, 0};
static int rx_fds[2] = {-1, -1}; /* descriptors that came with the frame being dispatched
                                  * (I/O thread); a waiter may take them */

static const struct shim_session_ops *ops;

void shim_session_set_ops(const struct shim_session_ops *o) {
  ops = o;
}

atomic_int shim__dead;
static atomic_int pipe_wr = -1;    /* read by the fault handler */
static atomic_uint next_reqid;
static atomic_int poke_pending;    /* a WAKE record is already in the pipe */
static _Thread_local int on_io_thread;

uint32_t shim__session_reqid(void) {
  uint32_t id;

  do
    id = atomic_fetch_add(&next_reqid, 1) + 1;
  while (id == 0);
  return id;
}

int shim_session_mine(void) {
  int mine;

  pthread_mutex_lock(&S.lock);
  mine = S.state == S_UP && S.pid == getpid();
  pthread_mutex_unlock(&S.lock);
  return mine;
}

/* Called from the SIGSEGV handler: write(2) is async-signal-safe and the record is smaller
 * than PIPE_BUF, so it lands whole. The pipe holds at most one record per blocked faulting
 * thread plus one WAKE, far below its capacity; EAGAIN is still retried, not dropped. */
int shim_session_post_fault(const struct shim_fault_rec *r) {
  for (;;) {
    int fd = atomic_load(&pipe_wr);
    ssize_t n;

    if (fd < 0 || atomic_load(&shim__dead))
      return -ENOTCONN;
    n = write(fd, r, sizeof *r);
    if (n == (ssize_t)sizeof *r)
      return 0;
    if (n < 0 && errno != EINTR && errno != EAGAIN)
      return -errno;
    if (n < 0 && errno == EAGAIN)
      sched_yield();
  }
}

static void poke(void) {
  struct shim_fault_rec r = {SHIM_REC_WAKE, 0, 0, 0};
  int fd = atomic_load(&pipe_wr);

  if (on_io_thread || fd < 0 || atomic_exchange(&poke_pending, 1))
    return;
  if (write(fd, &r, sizeof r) < 0) {
    /* EAGAIN: the pipe is full of records, the I/O thread is awake anyway. */
  }
}

/* The credentials a SysV request carries (cred field), or NULL for other messages. */
static const struct proto_cred *msg_cred(const struct proto_msg *m) {
  switch (m->h.opcode) {
  case PROTO_OP_CREATE_SEGMENT: return &m->u.create.cred;
  case PROTO_OP_ATTACH_SEGMENT: return &m->u.attach.cred;
  case PROTO_OP_DETACH_SEGMENT:
  case PROTO_OP_REMOVE_SEGMENT: return &m->u.segref.cred;
  case PROTO_OP_SHMCTL:         return &m->u.shmctl.cred;
  case PROTO_OP_INHERIT:        return &m->u.inherit.cred;
  default:                      return NULL;
  }
}

static int encode(struct proto_msg *m, struct frame **out) {
  ssize_t size = proto_encoded_size(m);
  struct frame *f = NULL;

  if (size < 0)
    return (int)size;
  f = malloc(sizeof *f + (size_t)size);
  if (f == NULL)
    return -ENOMEM;
  size = proto_encode(f->buf, (size_t)size, m);
  if (size < 0) {
    free(f);
    return (int)size;
  }
  f->len = (size_t)size;
  f->off = 0;
  f->next = NULL;
  f->has_cred = 0;
  if (!(m->h.flags & PROTO_F_REPLY) && msg_cred(m) != NULL) {
    const struct proto_cred *c = msg_cred(m);
    f->has_cred = 1;
    f->cred = (struct ucred){(pid_t)c->pid, (uid_t)c->uid, (gid_t)c->gid};
  }
  *out = f;
  return 0;
}

static int do_write(void);

/* After queueing: the calling thread writes the queue itself (one system call instead of a
 * wake-up of the I/O thread, ~10-20 us on a VM, before the request even leaves); the I/O
 * thread is woken only for what the socket would not take, or an error it must see. On
 * the I/O thread its loop writes next anyway. */
static void send_now(void) {
  if (!on_io_thread && do_write() == 0)
    return;
  poke();
}

/* Lock held. */
static void queue_frame(struct frame *f) {
  if (S.out_tail != NULL)
    S.out_tail->next = f;
  else
    S.out_head = f;
  S.out_tail = f;
}

int shim__session_enqueue(struct proto_msg *m) {
  struct frame *f = NULL;
  int err = encode(m, &f);

  if (err < 0)
    return err;
  pthread_mutex_lock(&S.lock);
  if (S.state != S_UP) {
    pthread_mutex_unlock(&S.lock);
    free(f);
    return -ENOTCONN;
  }
  queue_frame(f);
  pthread_mutex_unlock(&S.lock);
  send_now();
  return 0;
}

void shim_session_waiter_init(struct shim_waiter *w, struct proto_msg *reply) {
  memset(w, 0, sizeof *w);
  w->reply = reply;
  w->fds[0] = w->fds[1] = -1;
  w->efd = -1;
  pthread_cond_init(&w->cond, NULL);
}

void shim_session_intr_begin(struct shim_waiter *w) {
  sigset_t all;

  w->intr = 1;
  sigfillset(&all);
  /* A fault, an illegal instruction, a trap: the kernel kills a thread that gets one blocked. */
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGILL);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGTRAP);
  if (shim_real.pthread_sigmask == NULL ||
      shim_real.pthread_sigmask(SIG_BLOCK, &all, &w->oldmask) != 0)
    return; /* the futex on done, as before: a signal just before the sleep waits its turn */
  w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->efd < 0)
    shim_real.pthread_sigmask(SIG_SETMASK, &w->oldmask, NULL);
}

int shim_session_submit(struct proto_msg *req, struct shim_waiter *w) {
  struct frame *f = NULL;
  int err;

  req->h.reqid = w->reqid = shim__session_reqid();
  req->h.flags = 0;
  req->h.status = 0;
  err = encode(req, &f);
  if (err < 0) {
    pthread_cond_destroy(&w->cond);
    return err;
  }
  pthread_mutex_lock(&S.lock);
  if (S.state != S_UP) {
    pthread_mutex_unlock(&S.lock);
    pthread_cond_destroy(&w->cond);
    free(f);
    return -ENOTCONN;
  }
  w->next = S.waiters;
  S.waiters = w;
  queue_frame(f);
  pthread_mutex_unlock(&S.lock);
  send_now();
  return 0;
}

/* Lock held. Wakes the waiter (both ways it may be waiting). */
static void waiter_done(struct shim_waiter *w) {
  __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
  pthread_cond_signal(&w->cond);
  if (w->intr)
    syscall(SYS_futex, &w->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  if (w->efd >= 0) {
    uint64_t one = 1;
    (void)!write(w->efd, &one, sizeof one);
  }
}

void shim_session_intr_end(struct shim_waiter *w) {
  if (w->efd < 0)
    return;
  close(w->efd);
  w->efd = -1;
  shim_real.pthread_sigmask(SIG_SETMASK, &w->oldmask, NULL);
}

int shim_session_wait_intr(struct shim_waiter *w, int *err) {
  /* ppoll, like a futex wait with a timeout, ends with EINTR after any signal handler,
   * SA_RESTART or not: semop is never restarted either. */
  struct timespec ts = {1, 0};
  struct pollfd p = {w->efd, POLLIN, 0};

  while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE)) {
    if (w->efd >= 0) {
      if (ppoll(&p, 1, NULL, &w->oldmask) < 0 && errno == EINTR)
        return 1;
    } else if (syscall(SYS_futex, &w->done, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0) < 0 &&
               errno == EINTR) {
      return 1;
    }
  }
  pthread_mutex_lock(&S.lock); /* pairs with the I/O thread's writes before done */
  pthread_mutex_unlock(&S.lock);
  shim_session_intr_end(w);
  pthread_cond_destroy(&w->cond);
  if (w->err < 0)
    *err = w->err;
  else if (w->hdr.status != 0)
    *err = -proto_err_to_errno(w->hdr.status);
  else
    *err = 0;
  return 0;
}

/* Lock held. */
static void unlink_waiter(struct shim_waiter *w) {
  struct shim_waiter **pp;

  for (pp = &S.waiters; *pp != NULL; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      return;
    }
}

int shim_session_wait(struct shim_waiter *w, int timeout_ms) {
  struct timespec dl;
  int err;

  if (timeout_ms >= 0) {
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000L;
    }
  }
  pthread_mutex_lock(&S.lock);
  while (!w->done) {
    if (timeout_ms < 0) {
      pthread_cond_wait(&w->cond, &S.lock);
    } else if (pthread_cond_timedwait(&w->cond, &S.lock, &dl) == ETIMEDOUT && !w->done) {
      unlink_waiter(w);
      w->done = 1;
      w->err = -ETIMEDOUT;
    }
  }
  pthread_mutex_unlock(&S.lock);
  pthread_cond_destroy(&w->cond);
  if (w->err < 0)
    err = w->err;
  else if (w->hdr.status != 0)
    err = -proto_err_to_errno(w->hdr.status);
  else
    err = 0;
  return err;
}

/* One synchronous call; vals/cap: the waiter's room for GETALL's values (NULL/0 if none). */
static int call(struct proto_msg *req, struct proto_msg *reply, int fds[2], uint8_t *vals,
                size_t cap) {
  struct shim_waiter w;
  int err;

  shim_session_waiter_init(&w, reply);
  w.vals = vals;
  w.vals_cap = cap;
  err = shim_session_submit(req, &w);
  if (err < 0)
    return err;
  err = shim_session_wait(&w, shim_cfg.timeout_ms);
  for (int i = 0; i < 2; i++) {
    if (fds != NULL && err == 0)
      fds[i] = w.fds[i];
    else if (w.fds[i] >= 0)
      close(w.fds[i]);
  }
  return err;
}

int shim_session_call_fds(struct proto_msg *req, struct proto_msg *reply, int fds[2]) {
  return call(req, reply, fds, NULL, 0);
}

int shim_session_call(struct proto_msg *req, struct proto_msg *reply) {
  return call(req, reply, NULL, NULL, 0);
}

int shim_session_call_vals(struct proto_msg *req, struct proto_msg *reply, uint8_t *vals,
                           size_t cap) {
  return call(req, reply, NULL, vals, cap);
}

/* ---- connecting ---------------------------------------------------------------------- */

static void *io_main(void *arg);

/* One request and its reply on the blocking SOCK_SEQPACKET socket to the agent: a message is
 * a whole frame (read it whole: a shorter read would drop its rest). 0 or -errno. */
static int agent_call(int fd, struct proto_msg *req, struct proto_msg *reply) {
  uint8_t buf[PROTO_HDR_SIZE + PROTO_SMALL_MAX];
  ssize_t len = proto_encode(buf, sizeof buf, req), n;

  if (len < 0)
    return (int)len;
  if (send(fd, buf, (size_t)len, MSG_NOSIGNAL) != len)
    return -errno;
  do
    n = recv(fd, buf, sizeof buf, 0);
  while (n < 0 && errno == EINTR);
  if (n == 0)
    return -ECONNRESET;
  if (n < 0)
    return errno == EAGAIN ? -ETIMEDOUT : -errno;
  if (proto_frame(buf, (size_t)n, &reply->h) != n ||
      proto_decode(reply, buf + PROTO_HDR_SIZE, reply->h.length) < 0 ||
      !(reply->h.flags & PROTO_F_REPLY) || reply->h.reqid != req->h.reqid)
    return -EPROTO;
  return reply->h.status != 0 ? -proto_err_to_errno(reply->h.status) : 0;
}

/* HELLO to the host agent on the still-blocking SOCK_SEQPACKET socket; its reply
 * carries our slot (our bit in the holders of the host page table). */
static int agent_hello(int fd) {
  struct proto_msg *m = calloc(2, sizeof *m);
  int err;

  if (m == NULL)
    return -ENOMEM;
  m[0].h.opcode = PROTO_OP_HELLO;
  m[0].h.reqid = shim__session_reqid();
  m[0].u.hello.pid = (uint32_t)getpid();
  m[0].u.hello.uid = (uint32_t)geteuid();
  m[0].u.hello.gid = (uint32_t)getegid();
  snprintf(m[0].u.hello.name, sizeof m[0].u.hello.name, "%s", program_invocation_short_name);
  m[0].u.hello.name_len = (uint32_t)strlen(m[0].u.hello.name);
  err = agent_call(fd, &m[0], &m[1]);
  if (err == 0) {
    atomic_store(&shim__agent_slot, m[1].u.hello_reply.node);
    shim_debug("connected to the host agent as slot %u", m[1].u.hello_reply.node);
  }
  free(m);
  return err;
}

/* Lock held. Connects to the host agent, says HELLO, starts the I/O thread. */
static int session_open(void) {
  struct timeval tv = {10, 0}, zero = {0, 0};
  int fd, err = 0, p[2] = {-1, -1};
  sigset_t all, old;
  pthread_t th;

  fd = shim_agent_connect();
  if (fd < 0)
    return fd;
  /* An agent that was stopping when we connected closes us at once: start anew, a few
   * times (its socket file is gone by then). Bounded: a peer that does not answer must not
   * hang the caller. */
  for (int tries = 0; tries < 5; tries++) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    err = agent_hello(fd);
    if (err != -ECONNRESET && err != -EPIPE)
      break;
    close(fd);
    fd = shim_agent_connect();
    if (fd < 0)
      return fd;
  }
  if (err < 0) {
    shim_log("handshake with the host agent failed: %s", strerror(-err));
    goto fail;
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof zero);
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
      pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
    err = -errno;
    goto fail;
  }
  S.fd = fd;
  S.pid = getpid();
  S.pipe_rd = p[0];
  atomic_store(&pipe_wr, p[1]);
  atomic_store(&shim__agent_fd, fd);
  atomic_store(&shim__dead, 0);
  S.state = S_UP;
  /* The I/O thread inherits a full mask: no application signal ever lands on it. */
  sigfillset(&all);
  shim_real.pthread_sigmask(SIG_SETMASK, &all, &old);
  err = -pthread_create(&th, NULL, io_main, NULL);
  shim_real.pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err < 0) {
    S.state = S_NONE;
    atomic_store(&pipe_wr, -1);
    S.fd = S.pipe_rd = -1;
    goto fail;
  }
  pthread_detach(th);
  return 0;

fail:
  if (p[0] >= 0) {
    close(p[0]);
    close(p[1]);
  }
  close(fd);
  return err;
}

int shim_session_ensure(void) {
  int err = 0;

  pthread_mutex_lock(&S.lock);
  switch (S.state) {
  case S_UP:
    break;
  case S_NONE:
  case S_FORKED:
    /* A forked child has a connection of its own; the parent declared the attachments it
     * inherited to the agent before fork() returned (fork.c). */
    err = session_open();
    break;
  default:
    err = -ENOTCONN; /* the agent is gone: the session is lost for good */
    break;
  }
  pthread_mutex_unlock(&S.lock);
  return err;
}

int shim_session_forked(void) {
  int forked;

  pthread_mutex_lock(&S.lock);
  forked = S.state == S_FORKED;
  pthread_mutex_unlock(&S.lock);
  return forked;
}

/* ---- the I/O thread ------------------------------------------------------------------ */

/* Fails everything that waits on the session. I/O thread. */
static void session_die(int err) {
  struct frame *f = NULL;
  struct shim_waiter *w;

  pthread_mutex_lock(&S.lock);
  S.state = S_DEAD;
  atomic_store(&shim__dead, 1);
  /* Fault handlers whose record the dying socket refused sleep on it (agentpage.c). */
  syscall(SYS_futex, (int *)&shim__dead, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
  atomic_store(&shim__agent_fd, -1);
  while ((w = S.waiters) != NULL) {
    S.waiters = w->next;
    w->err = -ENOTCONN; /* one errno for "the agent (or its server) is gone" (README) */
    waiter_done(w);
  }
  while ((f = S.out_head) != NULL) {
    S.out_head = f->next;
    free(f);
  }
  S.out_tail = NULL;
  if (S.fd >= 0)
    close(S.fd);
  S.fd = -1;
  pthread_mutex_unlock(&S.lock);
  shim_log("connection to the host agent lost: %s", strerror(-err));
  ops->lost();
}

/* The variable part of w's reply, which still points into rbuf (GETALL's values, SEG_INFO's
 * entries): copied to the waiter's room, or EPROTO when it does not fit. */
static void take_tail(struct shim_waiter *w) {
  struct proto_msg *r = w->reply;
  const uint8_t **p;
  uint32_t *count;
  size_t n;

  if (r->h.opcode == PROTO_OP_SEMCTL) {
    p = &r->u.semctl_reply.vals;
    count = &r->u.semctl_reply.nvals;
    n = 2 * (size_t)*count;
  } else if (r->h.opcode == PROTO_OP_SEG_INFO) {
    p = &r->u.seginfo_reply.entries;
    count = &r->u.seginfo_reply.n;
    n = *count * proto_seginfo_entry_size(r->u.seginfo_reply.what);
  } else {
    return;
  }
  if (n > w->vals_cap) {
    w->err = -EPROTO;
    *count = 0;
    *p = NULL;
    return;
  }
  if (n > 0)
    memcpy(w->vals, *p, n);
  *p = w->vals;
}

/* A reply for a synchronous waiter. I/O thread. Returns 1 if one matched. */
static int deliver(const struct proto_msg *m) {
  struct shim_waiter *w;

  pthread_mutex_lock(&S.lock);
  for (w = S.waiters; w != NULL && w->reqid != m->h.reqid; w = w->next)
    ;
  if (w != NULL) {
    unlink_waiter(w);
    w->hdr = m->h;
    w->fds[0] = rx_fds[0];
    w->fds[1] = rx_fds[1];
    rx_fds[0] = rx_fds[1] = -1;
    if (w->reply != NULL)
      *w->reply = *m; /* only non-run replies reach waiters: no pointer into rbuf escapes, */
    if (w->reply != NULL && m->h.status == 0) /* but for the variable parts, taken here */
      take_tail(w);
    waiter_done(w);
  }
  pthread_mutex_unlock(&S.lock);
  return w != NULL;
}

/* One decoded frame. I/O thread. */
static void dispatch(struct proto_msg *m) {
  if (m->h.flags & PROTO_F_REPLY) {
    if (!deliver(m))
      shim_debug("reply %s #%u matches no request", proto_op_name(m->h.opcode), m->h.reqid);
    return;
  }
  switch (m->h.opcode) {
  case PROTO_OP_INVALIDATE:
  case PROTO_OP_RECALL:
    ops->request(m);
    break;
  case PROTO_OP_PING:
    m->h.flags = PROTO_F_REPLY;
    shim__session_enqueue(m);
    break;
  default:
    shim_debug("ignoring unexpected %s from the host agent", proto_op_name(m->h.opcode));
    break;
  }
}

/* One SOCK_SEQPACKET message is one whole frame, maybe with descriptors (an ATTACH reply's
 * memfd and host page table). Reads what the socket has. 0 or -errno. */
static int do_read(uint8_t *rbuf, struct proto_msg *m) {
  for (;;) {
    union {
      char buf[CMSG_SPACE(4 * sizeof(int))];
      struct cmsghdr align;
    } cm;
    struct iovec iov = {rbuf, PROTO_MAX_FRAME};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                        .msg_controllen = sizeof cm.buf};
    struct cmsghdr *c;
    ssize_t n = recvmsg(S.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    int k = 0;

    if (n == 0)
      return -ECONNRESET;
    if (n < 0)
      return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
          int fd = ((int *)CMSG_DATA(c))[i];
          if (k < 2)
            rx_fds[k++] = fd;
          else
            close(fd);
        }
    if (proto_frame(rbuf, (size_t)n, &m->h) != n ||
        proto_decode(m, rbuf + PROTO_HDR_SIZE, m->h.length) < 0) {
      shim_log("bad message from the host agent");
      return -EPROTO;
    }
    dispatch(m);
    for (k = 0; k < 2; k++) /* nobody took them */
      if (rx_fds[k] >= 0) {
        close(rx_fds[k]);
        rx_fds[k] = -1;
      }
  }
}

/* Writes queued frames until the socket is full. 1 if output remains, 0, or -errno. */
static int do_write(void) {
  int rc = 0;

  pthread_mutex_lock(&S.lock);
  while (S.out_head != NULL) {
    struct frame *f = S.out_head;
    ssize_t n;
    if (f->has_cred) {
      /* The kernel checks that we may claim these ids; the agent takes them from it. */
      union {
        char buf[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
      } cm;
      struct iovec iov = {f->buf, f->len};
      struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                          .msg_controllen = sizeof cm.buf};
      struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_CREDENTIALS;
      c->cmsg_len = CMSG_LEN(sizeof f->cred);
      memcpy(CMSG_DATA(c), &f->cred, sizeof f->cred);
      n = sendmsg(S.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EPERM) {
        /* Ids changed between the call and now: fall back to what the kernel says. */
        mh.msg_control = NULL;
        mh.msg_controllen = 0;
        n = sendmsg(S.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
      }
    } else {
      n = send(S.fd, f->buf + f->off, f->len - f->off, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      rc = errno == EAGAIN ? 1 : -errno;
      break;
    }
    f->off += (size_t)n;
    if (f->off == f->len) {
      S.out_head = f->next;
      if (S.out_head == NULL)
        S.out_tail = NULL;
      free(f);
    }
  }
  pthread_mutex_unlock(&S.lock);
  return rc;
}

/* The flag is cleared only after the pipe is empty, and do_write follows: a WAKE read here
 * cannot leave poke_pending set with no record in the pipe (which would swallow every
 * later poke: a shmdt write-back then waited for replies to frames never sent). A poke
 * that sees the flag still set queued its frame before this store, so do_write sends it. */
static void drain_pipe(void) {
  struct shim_fault_rec recs[64];
  ssize_t n;
  size_t i;

  while ((n = read(S.pipe_rd, recs, sizeof recs)) > 0)
    for (i = 0; i < (size_t)n / sizeof recs[0]; i++)
      if (recs[i].kind != SHIM_REC_WAKE)
        ops->record(&recs[i]);
  atomic_store(&poke_pending, 0);
}

static void *io_main(void *arg) {
  uint8_t *rbuf = malloc(PROTO_MAX_FRAME);
  struct proto_msg *m = malloc(sizeof *m);
  int pending_out = 1, err = 0;

  (void)arg;
  on_io_thread = 1;
  if (rbuf == NULL || m == NULL)
    err = -ENOMEM;
  /* The agent's loss is the host's: its processes are not resumed (docs/shim.md). */
  while (err == 0) {
    struct pollfd pfd[2] = {
      {S.fd, (short)(POLLIN | (pending_out ? POLLOUT : 0)), 0},
      {S.pipe_rd, POLLIN, 0},
    };
    if (poll(pfd, 2, -1) < 0) {
      if (errno != EINTR)
        err = -errno;
      continue;
    }
    if (pfd[1].revents & POLLIN)
      drain_pipe();
    ops->turn(); /* e.g. agent requests that waited for an I/O call's pins */
    if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
      err = do_read(rbuf, m);
    if (err == 0) {
      pending_out = do_write();
      if (pending_out < 0)
        err = pending_out;
    }
  }
  session_die(err);
  free(rbuf);
  free(m);
  return NULL;
}

/* ---- fork ------------------------------------------------------------------------------ */

void shim_session_atfork_prepare(void) {
  pthread_mutex_lock(&S.lock);
}

void shim_session_atfork_parent(void) {
  pthread_mutex_unlock(&S.lock);
}

/* The child has no I/O thread and shares the parent's socket: it must never write to it.
 * Its descriptors are closed (the parent's stay open); it opens a session of its own at
 * the end of fork() or at its first shm call (shim_session_ensure). */
void shim_session_atfork_child(void) {
  struct frame *f = NULL;

  atomic_store(&poke_pending, 0);
  atomic_store(&shim__agent_fd, -1);
  if (S.state != S_NONE) {
    S.state = S_FORKED;
    atomic_store(&shim__dead, 1);
    if (S.fd >= 0)
      close(S.fd);
    if (S.pipe_rd >= 0)
      close(S.pipe_rd);
    if (atomic_load(&pipe_wr) >= 0)
      close(atomic_load(&pipe_wr));
    atomic_store(&pipe_wr, -1);
    S.fd = S.pipe_rd = -1;
    while ((f = S.out_head) != NULL) {
      S.out_head = f->next;
      free(f);
    }
    S.out_tail = NULL;
    S.waiters = NULL; /* they belong to threads that do not exist in the child */
  }
  pthread_mutex_unlock(&S.lock);
}
