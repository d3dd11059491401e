/* session.c - owns the server connection: connect + HELLO, the I/O thread, output queue, replies. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "agentlink.h"
#include "agentpage.h"
#include "coherence.h"
#include "config.h"
#include "flush.h"
#include "fork.h"
#include "pin.h"
#include "real.h"

/* S_RECONN: the connection dropped and the I/O thread is connecting again; requests queue
 * (and wait, bounded by DSHM_TIMEOUT_MS) instead of failing. */
enum { S_NONE, S_UP, S_DEAD, S_FORKED, S_RECONN };

/* An encoded frame waiting to be written. */
struct frame {
  struct frame *next;
  size_t len, off;
  int has_cred;           /* agent mode: sent with these SCM_CREDENTIALS (the kernel checks
                           * them: the agent believes them) */
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
  int warned;
  uint32_t max_run;
  pid_t pid; /* the process that opened the session (a vfork child is not it) */
  uint8_t node_id[PROTO_NODE_ID];  /* this process's identity across reconnects */
  uint8_t instance[PROTO_NODE_ID]; /* the server's, from the NODE reply */
} S = {PTHREAD_MUTEX_INITIALIZER, S_NONE, -1, -1, NULL, NULL, NULL, 0, PROTO_MAX_RUN, 0,
       {0}, {0}};
static pthread_cond_t settled = PTHREAD_COND_INITIALIZER; /* S_RECONN ended */
static int rx_fds[2] = {-1, -1}; /* agent mode: descriptors that came with the frame being
                                  * dispatched (I/O thread); a waiter may take them */

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

uint32_t shim__session_max_run(void) {
  return S.max_run;
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
  if (shim_cfg.agent && !(m->h.flags & PROTO_F_REPLY) && msg_cred(m) != NULL) {
    const struct proto_cred *c = msg_cred(m);
    f->has_cred = 1;
    f->cred = (struct ucred){(pid_t)c->pid, (uid_t)c->uid, (gid_t)c->gid};
  }
  *out = f;
  return 0;
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
  if (S.state != S_UP && S.state != S_RECONN) {
    pthread_mutex_unlock(&S.lock);
    free(f);
    return -ENOTCONN;
  }
  queue_frame(f);
  pthread_mutex_unlock(&S.lock);
  poke();
  return 0;
}

void shim_session_waiter_init(struct shim_waiter *w, struct proto_msg *reply) {
  memset(w, 0, sizeof *w);
  w->reply = reply;
  w->fds[0] = w->fds[1] = -1;
  pthread_cond_init(&w->cond, NULL);
}

int shim_session_submit(struct proto_msg *req, struct shim_waiter *w) {
  struct frame *f = NULL;
  int err;

  req->h.reqid = w->reqid = shim__session_reqid();
  req->h.flags = 0;
  req->h.status = 0;
  err = encode(req, &f);
  if (err < 0)
    return err;
  pthread_mutex_lock(&S.lock);
  if (S.state != S_UP && S.state != S_RECONN) {
    pthread_mutex_unlock(&S.lock);
    free(f);
    return -ENOTCONN;
  }
  w->next = S.waiters;
  S.waiters = w;
  queue_frame(f);
  pthread_mutex_unlock(&S.lock);
  poke();
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

int shim_session_call_fds(struct proto_msg *req, struct proto_msg *reply, int fds[2]) {
  struct shim_waiter w;
  int err;

  shim_session_waiter_init(&w, reply);
  err = shim_session_submit(req, &w);
  if (err < 0) {
    pthread_cond_destroy(&w.cond);
    return err;
  }
  err = shim_session_wait(&w, shim_cfg.timeout_ms);
  for (int i = 0; i < 2; i++) {
    if (fds != NULL && err == 0)
      fds[i] = w.fds[i];
    else if (w.fds[i] >= 0)
      close(w.fds[i]);
  }
  return err;
}

int shim_session_call(struct proto_msg *req, struct proto_msg *reply) {
  return shim_session_call_fds(req, reply, NULL);
}

/* ---- connecting ---------------------------------------------------------------------- */

/* An authentication failure: one line naming the variables, EACCES for the caller. */
static int auth_fail(const char *msg) {
  if (!S.warned++ || shim_cfg.debug)
    shim_log("server %s: %s", shim_cfg.spec, msg);
  return -EACCES;
}

/* The key to prove, from DSHM_TOKEN or DSHM_TOKEN_FILE: 1, 0 when neither is set, or
 * -EACCES after a message. */
static int token_key(struct dshm_auth_key *key) {
  char why[4200], msg[4300];

  if (shim_cfg.token_set) {
    if (shim_cfg.token_err < 0)
      return auth_fail("DSHM_TOKEN is empty or longer than 4096 bytes");
    *key = shim_cfg.token_key;
    return 1;
  }
  if (shim_cfg.token_file[0] == '\0')
    return 0;
  if (dshm_auth_key_from_file(key, shim_cfg.token_file, why, sizeof why) < 0) {
    snprintf(msg, sizeof msg, "DSHM_TOKEN_FILE: %s", why);
    return auth_fail(msg);
  }
  return 1;
}

/* HELLO on the still-blocking socket, before the I/O thread exists; with a token, the
 * challenge-response in the middle. */
static int hello(int fd) {
  struct proto_msg *m = calloc(1, sizeof *m);
  gid_t groups[PROTO_MAX_GROUPS];
  struct dshm_auth_key key;
  const char *why = NULL;
  char host[64] = "";
  int n, err, i, have_key;

  if (m == NULL)
    return -ENOMEM;
  have_key = token_key(&key);
  if (have_key < 0) {
    free(m);
    return have_key;
  }
  m->h.opcode = PROTO_OP_HELLO;
  m->h.reqid = shim__session_reqid();
  m->u.hello.pid = (uint32_t)getpid();
  m->u.hello.uid = (uint32_t)geteuid();
  m->u.hello.gid = (uint32_t)getegid();
  n = getgroups(PROTO_MAX_GROUPS, groups);
  if (n < 0)
    n = 0; /* more than PROTO_MAX_GROUPS: claim none rather than a wrong subset */
  m->u.hello.ngroups = (uint32_t)n;
  for (i = 0; i < n; i++)
    m->u.hello.groups[i] = (uint32_t)groups[i];
  gethostname(host, sizeof host - 1);
  snprintf(m->u.hello.name, sizeof m->u.hello.name, "%s@%s", program_invocation_short_name, host);
  m->u.hello.name_len = (uint32_t)strlen(m->u.hello.name);

  err = dshm_client_hello(fd, m, have_key ? &key : NULL, shim__session_reqid(), &why);
  if (err == -EACCES && why != NULL)
    err = auth_fail(why);
  if (err == 0) {
    if (m->u.hello_reply.max_run >= 1 && m->u.hello_reply.max_run <= PROTO_MAX_RUN)
      S.max_run = m->u.hello_reply.max_run;
    shim_debug("connected to %s as node %u", shim_cfg.spec, m->u.hello_reply.node);
  }
  dshm_auth_key_wipe(&key);
  free(m);
  return err;
}

/* One request and its reply on the blocking socket fd (the handshake, and the I/O thread
 * while it reconnects, before it polls again). Frames that are not the reply are skipped:
 * the server sends nothing else to a node that holds no page yet. 0, -errno of the reply's
 * status, or -errno of the socket. */
int shim__session_sync_call(int fd, struct proto_msg *req, struct proto_msg *reply) {
  req->h.reqid = shim__session_reqid();
  return dshm_client_call(fd, req, reply);
}

/* NODE: says who we are (a fresh random id per process) and learns the server's instance
 * id; with PROTO_NODE_RESUMED, that a reconnect is complete. */
static int node_hello(int fd, uint32_t flags, uint8_t *instance) {
  struct proto_msg *m = calloc(2, sizeof *m);
  int err;

  if (m == NULL)
    return -ENOMEM;
  m[0].h.opcode = PROTO_OP_NODE;
  memcpy(m[0].u.node.id, S.node_id, PROTO_NODE_ID);
  m[0].u.node.flags = flags;
  err = shim__session_sync_call(fd, &m[0], &m[1]);
  if (err == 0 && instance != NULL)
    memcpy(instance, m[1].u.node_reply.instance, PROTO_NODE_ID);
  free(m);
  return err;
}

/* Returns a connected socket or -errno, and prints the reason once. Lock held. */
static int connect_server(void) {
  const struct dshm_addr a = {.host = "", .port = "", .unix_path = ""};
  struct dshm_addr addr = a;
  const char *why = NULL;
  int fd;

  if (shim_cfg.spec_err < 0) {
    if (!S.warned++ || shim_cfg.debug)
      shim_log("bad DSHM_SERVER '%s' (expected host:port, [ipv6]:port or unix:PATH)",
               shim_cfg.spec);
    return shim_cfg.spec_err;
  }
  memcpy(addr.host, shim_cfg.host, sizeof addr.host);
  memcpy(addr.port, shim_cfg.port, sizeof addr.port);
  memcpy(addr.unix_path, shim_cfg.unix_path, sizeof addr.unix_path);
  fd = dshm_client_connect(&addr, &why);
  if (fd < 0 && (!S.warned++ || shim_cfg.debug)) {
    if (why != NULL)
      shim_log("cannot resolve %s (DSHM_SERVER): %s", shim_cfg.spec, why);
    else
      shim_log("cannot connect to %s (DSHM_SERVER): %s", shim_cfg.spec, strerror(-fd));
  }
  return fd;
}

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

/* Agent mode: HELLO to the host agent on the still-blocking SOCK_SEQPACKET socket; its reply
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
    S.max_run = PROTO_MAX_RUN;
    shim_debug("connected to the host agent as slot %u", m[1].u.hello_reply.node);
  }
  free(m);
  return err;
}

/* Lock held. Connects, says HELLO, starts the I/O thread. */
static int session_open(void) {
  struct timeval tv = {10, 0}, zero = {0, 0};
  int fd, err = 0, p[2] = {-1, -1};
  sigset_t all, old;
  pthread_t th;

  fd = shim_cfg.agent ? shim_agent_connect() : connect_server();
  if (fd < 0)
    return fd;
  /* An agent that was stopping when we connected closes us at once: start anew, a few
   * times (its socket file is gone by then). */
  for (int tries = 0; shim_cfg.agent && tries < 5; tries++) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    err = agent_hello(fd);
    if (err != -ECONNRESET && err != -EPIPE)
      break;
    close(fd);
    fd = shim_agent_connect();
    if (fd < 0)
      return fd;
  }
  /* Bound the handshake: a peer that is not a dshm server must not hang the caller. */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  /* A new process (or forked child) is a new node: a fresh identity. */
  if (getrandom(S.node_id, sizeof S.node_id, 0) != (ssize_t)sizeof S.node_id)
    for (size_t i = 0; i < sizeof S.node_id; i++)
      S.node_id[i] = (uint8_t)(rand() ^ (int)getpid());
  if (shim_cfg.agent) {
    /* said HELLO above: the agent knows us from the kernel (no token, no NODE) */
  } else {
    err = hello(fd);
    if (err == 0)
      err = node_hello(fd, 0, S.instance);
  }
  if (err < 0) {
    if (err != -EACCES) /* authentication failures said why already */
      shim_log("handshake with %s (DSHM_SERVER) failed: %s", shim_cfg.spec, strerror(-err));
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
  if (shim_cfg.agent)
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

/* Lock held. Waits (at most DSHM_TIMEOUT_MS) while the I/O thread reconnects, so that a
 * call made meanwhile sees the outcome (a segment lost in the restart, docs/shim.md). */
static void settle(void) {
  struct timespec dl;

  if (S.state != S_RECONN)
    return;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += shim_cfg.timeout_ms / 1000;
  dl.tv_nsec += (long)(shim_cfg.timeout_ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  while (S.state == S_RECONN && pthread_cond_timedwait(&settled, &S.lock, &dl) == 0)
    ;
}

int shim_session_ensure(void) {
  int err = 0, forked = 0;

  pthread_mutex_lock(&S.lock);
  settle();
  switch (S.state) {
  case S_UP:
    break;
  case S_NONE:
    err = session_open();
    break;
  case S_FORKED:
    /* A forked child becomes a node of its own: its own connection, then every inherited
     * attachment is registered again (fork.c), as the kernel counts them. */
    err = session_open();
    forked = err == 0;
    break;
  case S_RECONN:
    break; /* requests queue until the I/O thread has reconnected */
  default:
    err = -ENOTCONN; /* the reconnect window closed: the session is lost for good */
    break;
  }
  pthread_mutex_unlock(&S.lock);
  if (forked && !shim_cfg.agent) /* agent mode: the parent declared them (fork.c) */
    shim__fork_reattach();
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
  pthread_cond_broadcast(&settled);
  atomic_store(&shim__dead, 1);
  atomic_store(&shim__agent_fd, -1);
  while ((w = S.waiters) != NULL) {
    S.waiters = w->next;
    w->err = -ENOTCONN; /* one errno for "the server is gone" (README) */
    w->done = 1;
    pthread_cond_signal(&w->cond);
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
  shim_log("connection to %s (DSHM_SERVER) lost: %s", shim_cfg.spec, strerror(-err));
  shim__coh_dead();
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
      *w->reply = *m; /* only non-run replies reach waiters: no pointer into rbuf escapes */
    w->done = 1;
    pthread_cond_signal(&w->cond);
  }
  pthread_mutex_unlock(&S.lock);
  return w != NULL;
}

/* One decoded frame. I/O thread. */
static void dispatch(struct proto_msg *m) {
  if (m->h.flags & PROTO_F_REPLY) {
    if (!shim__coh_reply(m) && !deliver(m))
      shim_debug("reply %s #%u matches no request", proto_op_name(m->h.opcode), m->h.reqid);
    return;
  }
  switch (m->h.opcode) {
  case PROTO_OP_INVALIDATE:
  case PROTO_OP_RECALL:
    shim__coh_server_request(m);
    break;
  case PROTO_OP_PING:
    m->h.flags = PROTO_F_REPLY;
    shim__session_enqueue(m);
    break;
  default:
    shim_debug("ignoring unexpected %s from the server", proto_op_name(m->h.opcode));
    break;
  }
}

/* Agent mode: one SOCK_SEQPACKET message is one whole frame, maybe with descriptors (an
 * ATTACH reply's memfd and host page table). 0 or -errno. */
static int do_read_agent(uint8_t *rbuf, struct proto_msg *m) {
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

/* Reads what the socket has and dispatches every complete frame. 0 or -errno. */
static int do_read(uint8_t *rbuf, size_t *rlen, struct proto_msg *m) {
  if (shim_cfg.agent)
    return do_read_agent(rbuf, m);
  for (;;) {
    ssize_t n = recv(S.fd, rbuf + *rlen, PROTO_MAX_FRAME - *rlen, 0);
    size_t off = 0;

    if (n == 0)
      return -ECONNRESET;
    if (n < 0)
      return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    *rlen += (size_t)n;
    for (;;) {
      ssize_t f = proto_frame(rbuf + off, *rlen - off, &m->h);
      if (f == 0)
        break;
      if (f < 0 || proto_decode(m, rbuf + off + PROTO_HDR_SIZE, m->h.length) < 0) {
        shim_log("bad message from the server (%s)", f < 0 ? strerror((int)-f) : "payload");
        return -EPROTO;
      }
      dispatch(m);
      off += (size_t)f;
    }
    /* A frame never exceeds PROTO_MAX_FRAME, so after this move the rest of a partial
     * frame always fits in the buffer. */
    memmove(rbuf, rbuf + off, *rlen - off);
    *rlen -= off;
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
        shim__coh_fault(&recs[i]);
  atomic_store(&poke_pending, 0);
}

/* Lock held. 1 if a queued, not yet started frame carries reqid. */
static int frame_queued(uint32_t reqid) {
  struct frame *f;

  for (f = S.out_head; f != NULL; f = f->next)
    if (f->off == 0 && proto_get_u32(f->buf + 8) == reqid)
      return 1;
  return 0;
}

/* The connection dropped. Lock held. Requests of waiting threads that never left stay
 * queued for the next connection; everything else in the queue goes (acks and page
 * requests belong to the old connection: coherence re-sends what matters), and a waiter
 * whose request did leave fails with ENOTCONN (it may or may not have been done). */
static void lose_connection(void) {
  struct frame *f, *keep = NULL, **kt = &keep, *last = NULL;
  struct shim_waiter **pp, *w;

  while ((f = S.out_head) != NULL) {
    uint32_t reqid = proto_get_u32(f->buf + 8);
    S.out_head = f->next;
    f->next = NULL;
    for (w = S.waiters; w != NULL && w->reqid != reqid; w = w->next)
      ;
    if (f->off == 0 && w != NULL) {
      *kt = last = f;
      kt = &f->next;
    } else {
      free(f);
    }
  }
  S.out_head = keep;
  S.out_tail = last;
  for (pp = &S.waiters; (w = *pp) != NULL;) {
    if (frame_queued(w->reqid)) {
      pp = &w->next;
      continue;
    }
    *pp = w->next;
    w->err = -ENOTCONN; /* one errno for "the server went away" (README) */
    w->done = 1;
    pthread_cond_signal(&w->cond);
  }
  if (S.fd >= 0)
    close(S.fd);
  S.fd = -1;
  S.state = S_RECONN;
}

static long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* The I/O thread, after the connection failed with err: connects again with backoff for
 * at most DSHM_TIMEOUT_MS, says HELLO and NODE (same identity), re-registers the
 * attachments and writes back what the server may miss (coherence.c), says RESUMED, and
 * goes on with the queued requests and the faults that were waiting. 0, or -errno when
 * the window closed (the session then dies as without reconnect). docs/protocol.md,
 * "Reconnect". */
static int reconnect(int err) {
  long deadline = mono_ms() + shim_cfg.timeout_ms, delay = 10;

  /* Agent mode: the agent's loss is the host's; its processes are not resumed (docs). */
  if (shim_cfg.agent) {
    shim_log("connection to the host agent lost: %s", strerror(-err));
    return err;
  }
  uint8_t inst[PROTO_NODE_ID];
  struct timeval tv;
  int fd = -1;

  shim_log("connection to %s (DSHM_SERVER) lost: %s; reconnecting", shim_cfg.spec,
           strerror(-err));
  pthread_mutex_lock(&S.lock);
  lose_connection();
  pthread_mutex_unlock(&S.lock);
  for (;;) {
    fd = connect_server();
    if (fd >= 0) {
      long left = deadline - mono_ms();
      tv.tv_sec = left > 0 ? left / 1000 : 0;
      tv.tv_usec = left > 0 ? (left % 1000) * 1000 : 1000;
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      err = hello(fd);
      if (err == 0)
        err = node_hello(fd, 0, inst);
      if (err == 0)
        break;
      close(fd);
      fd = -1;
    } else {
      err = fd;
    }
    if (mono_ms() + delay >= deadline)
      return err;
    usleep((useconds_t)delay * 1000);
    delay = delay * 2 > 500 ? 500 : delay * 2;
  }
  err = shim__coh_resync(fd, memcmp(inst, S.instance, sizeof inst) == 0);
  if (err == 0)
    err = node_hello(fd, PROTO_NODE_RESUMED, NULL);
  if (err == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
    err = -errno;
  if (err < 0) {
    close(fd);
    return err;
  }
  tv.tv_sec = tv.tv_usec = 0;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  pthread_mutex_lock(&S.lock);
  memcpy(S.instance, inst, sizeof inst);
  S.fd = fd;
  S.state = S_UP;
  pthread_cond_broadcast(&settled);
  pthread_mutex_unlock(&S.lock);
  shim_log("reconnected to %s (DSHM_SERVER)", shim_cfg.spec);
  shim__coh_resume(); /* the page requests that were in flight */
  return 0;
}

/* Milliseconds poll may sleep before the next background write-back is due (-1: none),
 * running it first when it is due. I/O thread, no lock held. */
static int flush_due(long *next) {
  long now;

  if (shim_cfg.flush_ms == 0 || shim_cfg.agent) /* agent mode: the data is the host's */
    return -1;
  now = mono_ms();
  if (*next == 0 || now >= *next) {
    if (*next != 0) {
      unsigned n = shim__flush_once();
      if (n > 0)
        shim_debug("background write-back: %u pages", n);
    }
    *next = now + shim_cfg.flush_ms;
  }
  return (int)(*next - now);
}

static void *io_main(void *arg) {
  uint8_t *rbuf = malloc(PROTO_MAX_FRAME);
  struct proto_msg *m = malloc(sizeof *m);
  size_t rlen = 0;
  long next_flush = 0;
  int pending_out = 1, err = 0;

  (void)arg;
  on_io_thread = 1;
  if (rbuf == NULL || m == NULL)
    err = -ENOMEM;
  for (;;) {
    if (err < 0) {
      /* The server went away: try again, unless this is a dying process or a copy. */
      /* Also while exiting: the exit flush waits for this to write back what the server
       * may have missed (coherence.c, shim_coh_detach). */
      if (err == -ENOMEM || getpid() != S.pid || (err = reconnect(err)) < 0)
        break;
      rlen = 0;
      pending_out = 1;
    }
    struct pollfd pfd[2] = {
      {S.fd, (short)(POLLIN | (pending_out ? POLLOUT : 0)), 0},
      {S.pipe_rd, POLLIN, 0},
    };
    if (poll(pfd, 2, flush_due(&next_flush)) < 0) {
      if (errno != EINTR)
        err = -errno;
      continue;
    }
    if (pfd[1].revents & POLLIN)
      drain_pipe();
    shim__pin_retry(); /* server requests that waited for an I/O call's pins */
    if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
      err = do_read(rbuf, &rlen, m);
    if (err == 0)
      flush_due(&next_flush); /* also when busy: poll's timeout alone may never expire */
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
