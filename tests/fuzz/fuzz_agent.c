/* fuzz_agent.c - libFuzzer target: dshm-agent driven from both sides at once, as the local
 * processes of its host and as its server, interleaved as the input says. The agent's own
 * modules (upstream.c, local.c, hostseg.c, main.c's stop) run on real sockets and memfds;
 * there is no real server and no listener.
 *
 * The server is this program: a thread listens on a unix socket (cfg.addr.unix_path) and
 * answers the agent's blocking calls, the handshake (HELLO, NODE) and after a reconnect the
 * resync (REATTACH, WRITE_DATA, DETACH, NODE RESUMED), then hands the connection over to the
 * input.
 * Processes are SOCK_SEQPACKET socketpairs adopted with agent__local_adopt (local.h).
 *
 * Input: records [selector u8][length u16 big-endian][length bytes], as fuzz_server's:
 *   00mnnnpp  process pp (0-3) sends the bytes as one message (it connects first if it is
 *             not connected). m: the message's reqid becomes that of the nnn-th latest
 *             message the agent sent pp that it answers (the same opcode; INVALIDATE or
 *             RECALL for INVALIDATE_ACK and RECALL_ACK).
 *   11mnnnpp  the same, with a descriptor attached (SCM_RIGHTS).
 *   01mnnnnn  the server sends the bytes (a stream: frames may span records). m: the bytes
 *             start a frame whose reqid becomes that of the nnnnn-th latest request the
 *             agent sent with that opcode, and a payload shorter than the header says is
 *             padded (page data need not be in the input).
 *   10oooopp  event o, the bytes its arguments (missing ones are 0):
 *             0 pp hangs up; 1 pp connects anew (byte 0: pid table index in bits 0-2,
 *             bit 6: a small send buffer on the agent's end, bit 7: SO_PASSCRED on it);
 *             2 pp stops/resumes reading;
 *             3 background write-back of at most byte 0 pages (0: the agent's default);
 *             4 the server hangs up (byte 0: bit 0 it comes back as another instance, bit 1
 *             it answers the next REATTACH with EINVAL, bit 2 with EIO, bit 3 it stays down);
 *             5 the server stops/resumes reading; 6 SIGTERM (agent_stop);
 *             7 pp sets bits in the holders of pages of a segment it mapped and takes their
 *             fresh words, as the shim's raise does (bytes: which mapping, first page,
 *             count (0: all), flags: bit 7 bit number in bits 0-5 instead of pp's own,
 *             bit 6 also WAIT in the state word); a RAISED is a message of its own;
 *             8 pp stores into a page it mapped writable (bytes: which mapping, page);
 *             9 the next byte-0 records come without the agent running in between (so
 *             a hang-up, a call and server input can be read in one loop iteration).
 * The pids of the processes and of INHERIT's child come from a table of real ones: this
 * process, init, a zombie child (a pending child that dies at once), none, and a child with
 * supplementary groups of its own (when setgroups is allowed: the agent sends GROUPS before
 * its calls). Segments are bounded to FUZZ_MAX_SEGSZ (cfg.max_segsz) and INHERIT's counts to 7
 * (FUZZ_AGENT_UNBOUNDED=1 lifts both, to reproduce what they hide). After the input the agent
 * is stopped and freed; a leak, a descriptor left open, a handle left active, an attached
 * segment or a revocation left, or a malformed frame from the agent fails the run (abort). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "agent.h"
#include "hostseg.h"
#include "hosttab.h"
#include "local.h"
#include "upstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define NPROC 4
#define NPID 5
#define NMAP 4
#define PRING 8
#define SRING 32
#define FUZZ_MAX_SEGSZ (64u * PROTO_PAGE_SIZE)
#define FUZZ_MAX_RUN 16u
#define SETTLE_ROUNDS 64

/* ---- shared ---- */

static uv_loop_t loop;
static struct agent_cfg cfg;
static struct agent ag;
static pid_t pidtab[NPID];
static int devnull = -1;
static int bounded = 1; /* FUZZ_AGENT_UNBOUNDED=1 lifts the harness's bounds (findings) */
static char sockdir[64];

struct sent {
  uint8_t op;
  uint32_t reqid;
};

static void die(const char *what) {
  fprintf(stderr, "fuzz_agent: %s\n", what);
  abort();
}

/* ---- the server's blocking half: a thread (handshake and resync) ---- */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int lfd;
  int phase;        /* 0 waiting for a connection, 1 serving one, 2 handing it over */
  int handed;       /* a connection handed over to the input, or -1 */
  int initial;      /* hand over after NODE (else after NODE with RESUMED) */
  uint8_t instance; /* of the NODE reply: another one is another server instance */
  int reattach_err; /* the next REATTACH is answered with it (once) */
  int down;         /* connections are closed at once */
} hp = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, 0, -1, 0, 1, 0, 0};

static uint8_t hbuf[PROTO_MAX_FRAME];
static struct proto_msg hmsg, hrep;

static int h_recv_all(int fd, uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r <= 0) {
      if (r < 0 && errno == EINTR)
        continue;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int h_send(int fd, struct proto_msg *m) {
  static uint8_t out[PROTO_HDR_SIZE + PROTO_SMALL_MAX];
  ssize_t n = proto_encode(out, sizeof out, m);

  if (n < 0)
    die("helper: cannot encode");
  return send(fd, out, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static void h_phase(int phase, int handed) {
  pthread_mutex_lock(&hp.mu);
  hp.phase = phase;
  if (handed >= 0)
    hp.handed = handed;
  pthread_cond_broadcast(&hp.cv);
  pthread_mutex_unlock(&hp.mu);
}

/* Answers the agent's blocking calls on fd; 1 when the connection is to be handed over
 * (the final reply is sent by then), 0 when the agent closed it. */
static int h_serve(int fd) {
  for (;;) {
    int last = 0;

    if (h_recv_all(fd, hbuf, PROTO_HDR_SIZE) < 0 ||
        proto_frame(hbuf, PROTO_HDR_SIZE, &hmsg.h) < 0 ||
        h_recv_all(fd, hbuf + PROTO_HDR_SIZE, hmsg.h.length) < 0)
      return 0;
    if (proto_decode(&hmsg, hbuf + PROTO_HDR_SIZE, hmsg.h.length) < 0)
      die("helper: the agent sent a malformed frame");
    memset(&hrep, 0, sizeof hrep);
    hrep.h.opcode = hmsg.h.opcode;
    hrep.h.flags = PROTO_F_REPLY;
    hrep.h.reqid = hmsg.h.reqid;
    pthread_mutex_lock(&hp.mu);
    switch (hmsg.h.opcode) {
    case PROTO_OP_HELLO:
      hrep.u.hello_reply = (struct proto_hello_reply){1, PROTO_PAGE_SIZE, FUZZ_MAX_RUN};
      break;
    case PROTO_OP_NODE:
      memset(hrep.u.node_reply.instance, hp.instance, PROTO_NODE_ID);
      last = hp.initial || (hmsg.u.node.flags & PROTO_NODE_RESUMED);
      break;
    case PROTO_OP_REATTACH:
      if (hp.reattach_err != 0)
        hrep.h.status = proto_err_from_errno(hp.reattach_err);
      else
        hrep.u.attach_reply = (struct proto_attach_reply){hmsg.u.reattach.shmid, PROTO_PAGE_SIZE};
      hp.reattach_err = 0;
      break;
    case PROTO_OP_WRITE_DATA:
    case PROTO_OP_DETACH_SEGMENT:
      break;
    default:
      hrep.h.status = PROTO_EIO;
      break;
    }
    if (last) {
      hp.initial = 0;
      hp.phase = 2; /* before the reply: the agent may go on the moment it has it */
    }
    pthread_mutex_unlock(&hp.mu);
    if (h_send(fd, &hrep) < 0 || last)
      return last;
  }
}

static void *h_main(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept4(hp.lfd, NULL, NULL, SOCK_CLOEXEC), down;
    struct timeval tv = {5, 0};

    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      die("helper: accept");
    }
    pthread_mutex_lock(&hp.mu);
    hp.phase = 1;
    down = hp.down;
    pthread_mutex_unlock(&hp.mu);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (!down && h_serve(fd) == 1) {
      h_phase(0, fd);
    } else {
      close(fd);
      h_phase(0, -1);
    }
  }
  return NULL;
}

/* The connection the helper handed over, or -1. With wait, until the helper is idle. */
static int h_take(int wait) {
  struct timespec dl;
  int fd;

  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 8;
  pthread_mutex_lock(&hp.mu);
  while (hp.phase == 2 || (wait && hp.phase != 0))
    if (pthread_cond_timedwait(&hp.cv, &hp.mu, &dl) == ETIMEDOUT)
      die("helper: stuck");
  fd = hp.handed;
  hp.handed = -1;
  pthread_mutex_unlock(&hp.mu);
  return fd;
}

/* ---- the server's half of the agent's stream ---- */

static struct {
  int fd;          /* our end, -1 */
  int paused;      /* not reading what the agent sends */
  uint8_t in[2 * PROTO_MAX_FRAME];
  size_t inlen;
  uint8_t *wq;     /* to write */
  size_t wqlen, wqcap;
  struct sent ring[SRING];
  unsigned nring;
} srv = {.fd = -1};

static struct proto_msg smsg;

static void srv_hangup(void) {
  if (srv.fd >= 0)
    close(srv.fd);
  srv.fd = -1;
  srv.inlen = 0;
  srv.wqlen = 0;
}

static void srv_adopt(int fd) {
  srv_hangup();
  srv.fd = fd;
  if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
    die("fcntl");
}

/* Every frame the agent sends must decode. */
static void srv_parse(void) {
  size_t off = 0;

  for (;;) {
    ssize_t n = proto_frame(srv.in + off, srv.inlen - off, &smsg.h);
    if (n == 0)
      break;
    if (n < 0 || proto_decode(&smsg, srv.in + off + PROTO_HDR_SIZE, smsg.h.length) < 0)
      die("the agent sent the server a malformed frame");
    if (!(smsg.h.flags & PROTO_F_REPLY))
      srv.ring[srv.nring++ % SRING] = (struct sent){smsg.h.opcode, smsg.h.reqid};
    off += (size_t)n;
  }
  memmove(srv.in, srv.in + off, srv.inlen - off);
  srv.inlen -= off;
}

static int srv_io(void) {
  int moved = 0;

  while (srv.fd >= 0 && srv.wqlen > 0) {
    ssize_t n = send(srv.fd, srv.wq, srv.wqlen, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      memmove(srv.wq, srv.wq + n, srv.wqlen - (size_t)n);
      srv.wqlen -= (size_t)n;
      moved = 1;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {
      srv_hangup(); /* the agent closed the connection */
      return 1;
    }
  }
  while (srv.fd >= 0 && !srv.paused) {
    ssize_t n = recv(srv.fd, srv.in + srv.inlen, sizeof srv.in - srv.inlen, MSG_DONTWAIT);
    if (n > 0) {
      srv.inlen += (size_t)n;
      srv_parse();
      moved = 1;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {
      srv_hangup();
      return 1;
    }
  }
  return moved;
}

static void srv_queue(const uint8_t *p, size_t n) {
  if (srv.fd < 0)
    return;
  if (srv.wqlen + n > srv.wqcap) {
    size_t cap = srv.wqlen + n + 65536;
    uint8_t *q = realloc(srv.wq, cap);
    if (q == NULL)
      die("out of memory");
    srv.wq = q;
    srv.wqcap = cap;
  }
  memcpy(srv.wq + srv.wqlen, p, n);
  srv.wqlen += n;
}

/* The nth latest of the messages in ring that op answers: those of the same opcode; for an
 * acknowledgement, INVALIDATEs and RECALLs (the shim answers both with INVALIDATE_ACK). */
static const struct sent *ring_find(const struct sent *ring, unsigned nring, unsigned cap,
                                    uint8_t op, unsigned nth) {
  int ack = op == PROTO_OP_INVALIDATE_ACK || op == PROTO_OP_RECALL_ACK;
  unsigned seen = 0;

  for (unsigned i = 0; i < nring && i < cap; i++) {
    const struct sent *s = &ring[(nring - 1 - i) % cap];
    if ((ack ? s->op == PROTO_OP_INVALIDATE || s->op == PROTO_OP_RECALL : s->op == op) &&
        seen++ == nth)
      return s;
  }
  return NULL;
}

static void srv_record(uint8_t sel, const uint8_t *p, size_t n) {
  static uint8_t fr[PROTO_MAX_FRAME];
  const struct sent *s;
  size_t total;

  if (!(sel & 0x20) || n < PROTO_HDR_SIZE) {
    srv_queue(p, n);
    return;
  }
  memcpy(fr, p, n);
  if ((s = ring_find(srv.ring, srv.nring, SRING, fr[5], sel & 0x1f)) != NULL)
    proto_put_u32(fr + 8, s->reqid);
  total = PROTO_HDR_SIZE + (size_t)proto_get_u32(fr + 16);
  if (total > n && total <= sizeof fr) {
    memset(fr + n, fr[n - 1], total - n);
    n = total;
  }
  srv_queue(fr, n);
}

/* ---- the processes ---- */

struct fmap {
  int32_t shmid;
  struct dshm_hostpage *tab;
  size_t tablen;
  uint8_t *data;
  size_t datalen;
  int rw;
};

static struct fproc {
  int fd;          /* our end, -1 */
  int bit;         /* in the holders */
  int paused;
  struct sent ring[PRING];
  unsigned nring;
  struct fmap map[NMAP];
  unsigned nmap;
} procs[NPROC];

static uint8_t pbuf[PROTO_MAX_FRAME + 1]; /* the agent relays any reply the server sends */
static struct proto_msg pmsg;
static unsigned batch; /* records still to come without settle() */

static void map_drop(struct fmap *m) {
  if (m->tab != NULL)
    munmap(m->tab, m->tablen);
  if (m->data != NULL)
    munmap(m->data, m->datalen);
  memset(m, 0, sizeof *m);
}

static void proc_hangup(struct fproc *f) {
  if (f->fd >= 0)
    close(f->fd);
  f->fd = -1;
  f->paused = 0;
  f->nring = 0;
  for (unsigned i = 0; i < NMAP; i++)
    map_drop(&f->map[i]);
  f->nmap = 0;
}

/* An attach: the process maps the segment and the host page table, as the shim does. */
static void proc_map(struct fproc *f, int dfd, int tfd, int32_t shmid) {
  struct fmap *m = &f->map[f->nmap++ % NMAP];
  struct stat ds, ts;
  int fl = fcntl(dfd, F_GETFL);

  map_drop(m);
  if (fstat(dfd, &ds) < 0 || fstat(tfd, &ts) < 0 || fl < 0)
    die("fstat of an attach's descriptors");
  if (ds.st_size <= 0 || (uint64_t)ds.st_size > FUZZ_MAX_SEGSZ ||
      ts.st_size <= 0 || (uint64_t)ts.st_size > DSHM_HT_SIZE(FUZZ_MAX_SEGSZ / PROTO_PAGE_SIZE)) {
    if (bounded)
      die("an attach's descriptors have sizes out of bounds");
    return; /* not mapped */
  }
  m->shmid = shmid;
  m->rw = (fl & O_ACCMODE) == O_RDWR;
  m->datalen = (size_t)ds.st_size;
  m->tablen = (size_t)ts.st_size;
  m->data = mmap(NULL, m->datalen, PROT_READ | (m->rw ? PROT_WRITE : 0), MAP_SHARED, dfd, 0);
  m->tab = mmap(NULL, m->tablen, PROT_READ | PROT_WRITE, MAP_SHARED, tfd, 0);
  if (m->data == MAP_FAILED || m->tab == MAP_FAILED)
    die("mmap of an attach's descriptors");
}

static int proc_drain(struct fproc *f) {
  int moved = 0;

  while (f->fd >= 0 && !f->paused) {
    union {
      char buf[CMSG_SPACE(8 * sizeof(int))];
      struct cmsghdr align;
    } cm;
    struct iovec iov = {pbuf, sizeof pbuf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                        .msg_controllen = sizeof cm.buf};
    int fds[8], nfd = 0;
    ssize_t n = recvmsg(f->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      break;
    if (n <= 0) {
      proc_hangup(f); /* the agent closed the connection */
      return 1;
    }
    moved = 1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) && nfd < 8; k++)
          memcpy(&fds[nfd++], CMSG_DATA(c) + k * sizeof(int), sizeof(int));
    /* One message is one whole frame, and it decodes. */
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || proto_frame(pbuf, (size_t)n, &pmsg.h) != n ||
        proto_decode(&pmsg, pbuf + PROTO_HDR_SIZE, pmsg.h.length) < 0)
      die("the agent sent a process a malformed message");
    if (nfd > 2)
      die("the agent sent a process more than two descriptors");
    if (nfd == 2 && pmsg.h.opcode == PROTO_OP_ATTACH_SEGMENT && pmsg.h.status == 0)
      proc_map(f, fds[0], fds[1], pmsg.u.attach_reply.shmid);
    for (int k = 0; k < nfd; k++)
      close(fds[k]);
    if (!(pmsg.h.flags & PROTO_F_REPLY))
      f->ring[f->nring++ % PRING] = (struct sent){pmsg.h.opcode, pmsg.h.reqid};
  }
  return moved;
}

static void proc_connect(int k, uint8_t arg) {
  struct fproc *f = &procs[k];
  int sv[2], one = 1, small = 1024, bit;

  proc_hangup(f);
  if (ag.stopping)
    return; /* the listener is gone */
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
    die("socketpair");
  if ((arg & 0x80) && setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
    die("SO_PASSCRED");
  /* A small send buffer: the agent's queue to the process and its wait for POLLOUT. */
  if ((arg & 0x40) && setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) < 0)
    die("SO_SNDBUF");
  bit = agent__local_adopt(&ag, sv[1], pidtab[(arg & 7) % NPID], getuid(), getgid());
  if (bit < 0) {
    close(sv[0]);
    return;
  }
  f->fd = sv[0];
  f->bit = bit;
}

static void settle(void);

static void proc_record(uint8_t sel, const uint8_t *p, size_t n) {
  static uint8_t msg[65536];
  struct fproc *f = &procs[sel & 3];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } cm;
  struct iovec iov = {msg, n};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  const struct sent *s;

  if (f->fd < 0)
    proc_connect(sel & 3, (uint8_t)(sel & 3));
  if (f->fd < 0)
    return;
  memcpy(msg, p, n);
  if ((sel & 0x20) && n >= PROTO_HDR_SIZE &&
      (s = ring_find(f->ring, f->nring, PRING, msg[5], (sel >> 2) & 7)) != NULL)
    proto_put_u32(msg + 8, s->reqid);
  /* INHERIT's child is one of the table's pids, and its counts are small: the agent
   * detaches each attachment with a message of its own (65536 per INHERIT). */
  if (n >= PROTO_HDR_SIZE + 28 && msg[5] == PROTO_OP_INHERIT) {
    proto_put_u32(msg + PROTO_HDR_SIZE + 24,
                  (uint32_t)pidtab[proto_get_u32(msg + PROTO_HDR_SIZE + 24) % NPID]);
    for (int i = 16; i < 24 && bounded; i += 4)
      proto_put_u32(msg + PROTO_HDR_SIZE + i, proto_get_u32(msg + PROTO_HDR_SIZE + i) % 8);
  }
  if (sel & 0x40) {
    struct cmsghdr *c;
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof cm.buf;
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &devnull, sizeof(int));
  }
  for (int tries = 0; tries < 4 && f->fd >= 0; tries++) {
    if (sendmsg(f->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
      return;
    if (errno == EAGAIN || errno == EINTR) {
      settle(); /* the agent reads, then we try again */
      continue;
    }
    if (errno != EMSGSIZE && errno != ENOBUFS)
      proc_hangup(f);
    return;
  }
}

/* ---- events ---- */

static uint8_t arg(const uint8_t *p, size_t n, size_t i) {
  return i < n ? p[i] : 0;
}

static struct fmap *map_pick(struct fproc *f, uint8_t which) {
  unsigned have = f->nmap < NMAP ? f->nmap : NMAP;
  struct fmap *m;

  if (have == 0)
    return NULL;
  m = &f->map[(f->nmap - 1 - which % have) % NMAP];
  return m->tab != NULL ? m : NULL;
}

/* Process k raised a fresh page the agent holds a revocation for: RAISED, as the shim. */
static void proc_raised(uint8_t k, int32_t shmid, uint32_t page) {
  static uint8_t b[PROTO_HDR_SIZE + PROTO_RUN_HDR];
  struct proto_msg r;
  ssize_t n;

  memset(&r.h, 0, sizeof r.h);
  r.h.opcode = PROTO_OP_RAISED;
  r.u.range = (struct proto_range){shmid, page, 1, PROTO_MODE_INVALID};
  n = proto_encode(b, sizeof b, &r);
  if (n < 0)
    die("encoding RAISED");
  proc_record(k, b, (size_t)n);
}

static void event(uint8_t sel, const uint8_t *p, size_t n) {
  struct fproc *f = &procs[sel & 3];
  struct fmap *m;

  switch ((sel >> 2) & 0xf) {
  case 0:
    proc_hangup(f);
    break;
  case 1:
    proc_connect(sel & 3, arg(p, n, 0));
    break;
  case 2:
    f->paused = !f->paused;
    break;
  case 3:
    if (!ag.stopping)
      (void)agent_seg_flush(&ag, arg(p, n, 0) ? arg(p, n, 0) : 16384u);
    break;
  case 4: {
    uint8_t a = arg(p, n, 0);
    pthread_mutex_lock(&hp.mu);
    if (a & 1)
      hp.instance++;
    hp.reattach_err = (a & 2) ? EINVAL : (a & 4) ? EIO : 0;
    hp.down = (a & 8) != 0;
    pthread_mutex_unlock(&hp.mu);
    srv_hangup();
    break;
  }
  case 5:
    srv.paused = !srv.paused;
    break;
  case 6:
    agent_stop(&ag, "fuzz: SIGTERM");
    break;
  case 7: {
    uint8_t fl = arg(p, n, 3);
    uint64_t bit = dshm_ht_bit((fl & 0x80) ? (fl & 63u) : (uint32_t)f->bit);
    size_t npages;
    if ((m = map_pick(f, arg(p, n, 0))) == NULL)
      break;
    npages = m->tablen / sizeof *m->tab;
    for (size_t i = arg(p, n, 1), k = 0; i < npages && (arg(p, n, 2) == 0 || k < arg(p, n, 2));
         i++, k++) {
      atomic_fetch_or(&m->tab[i].holders, bit);
      if (atomic_exchange(&m->tab[i].fresh, 0) == DSHM_HT_HELD)
        proc_raised((uint8_t)(sel & 3), m->shmid, (uint32_t)i);
      if (fl & 0x40)
        atomic_fetch_or(&m->tab[i].word, DSHM_HT_WAIT);
    }
    break;
  }
  case 8:
    if ((m = map_pick(f, arg(p, n, 0))) != NULL && m->rw) {
      size_t pg = arg(p, n, 1) % (m->datalen / PROTO_PAGE_SIZE);
      m->data[pg * PROTO_PAGE_SIZE + arg(p, n, 2)]++;
    }
    break;
  case 9:
    batch = arg(p, n, 0);
    break;
  default:
    break;
  }
}

/* ---- the loop ---- */

/* Runs the agent until nothing moves any more: its input read, its output drained (but for
 * a paused reader), its short timers (reconnect backoff) run. */
static void settle(void) {
  for (int round = 0; round < SETTLE_ROUNDS; round++) {
    int moved = 0, fd, t;

    uv_run(&loop, UV_RUN_NOWAIT);
    if ((fd = h_take(0)) >= 0) {
      srv_adopt(fd);
      moved = 1;
    }
    moved |= srv_io();
    for (int k = 0; k < NPROC; k++)
      moved |= proc_drain(&procs[k]);
    if (moved)
      continue;
    if (!uv_loop_alive(&loop))
      break;
    t = uv_backend_timeout(&loop);
    if (t < 0 || t > 20)
      break;
    if (t > 0)
      uv_run(&loop, UV_RUN_ONCE);
  }
}

/* Our open descriptors; with show, each with what it is (on stderr). */
static int count_fds(int show) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    die("/proc/self/fd");
  while ((e = readdir(d)) != NULL) {
    char path[300], target[256] = "?";
    ssize_t len;
    if (e->d_name[0] == '.')
      continue;
    n++;
    if (!show)
      continue;
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    if ((len = readlink(path, target, sizeof target - 1)) > 0)
      target[len] = '\0';
    fprintf(stderr, "fuzz_agent: fd %s -> %s\n", e->d_name, target);
  }
  closedir(d);
  return n;
}

static void cleanup(void) {
  char path[128];

  snprintf(path, sizeof path, "%s/server.sock", sockdir);
  unlink(path);
  rmdir(sockdir);
}

/* A child that lives as long as we do, with supplementary groups of its own if it may. */
static pid_t grouped_child(void) {
  pid_t parent = getpid(), pid = fork();
  gid_t g = 4242;

  if (pid < 0)
    die("fork");
  if (pid > 0)
    return pid;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
    _exit(0);
  (void)setgroups(1, &g);
  for (;;)
    pause();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  pthread_t th;
  cpu_set_t cpus;
  pid_t zombie;
  int sv[2];

  (void)argc;
  (void)argv;
  /* One CPU for this thread and the helper: they take turns anyway, and an munmap (ASan
   * maps every large block) then flushes no other CPU's TLB: three times as many runs. */
  CPU_ZERO(&cpus);
  CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &cpus);
  (void)sched_setaffinity(0, sizeof cpus, &cpus);
  signal(SIGPIPE, SIG_IGN);
  agent_verbose = getenv("DSHM_AGENT_VERBOSE") != NULL; /* shows what a seed does */
  /* A child that has exited and is never reaped: a pid that exists and is dead. */
  zombie = fork();
  if (zombie < 0)
    die("fork");
  if (zombie == 0)
    _exit(0);
  pidtab[0] = getpid();
  pidtab[1] = 1;
  pidtab[2] = zombie;
  pidtab[3] = 0x7ffffff0; /* above any pid_max */
  pidtab[4] = grouped_child();
  devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  snprintf(sockdir, sizeof sockdir, "/tmp/fuzz_agent.XXXXXX");
  if (devnull < 0 || mkdtemp(sockdir) == NULL || uv_loop_init(&loop) != 0)
    die("setup");
  atexit(cleanup);
  snprintf(cfg.addr.unix_path, sizeof cfg.addr.unix_path, "%s/server.sock", sockdir);
  snprintf(cfg.spec, sizeof cfg.spec, "unix:%s", cfg.addr.unix_path);
  snprintf(cfg.sock_path, sizeof cfg.sock_path, "%s/agent.sock", sockdir); /* never made */
  cfg.ready_fd = -1;
  cfg.idle_ms = 3600u * 1000u;
  cfg.timeout_ms = 30;
  /* Longer than settle() waits for a timer: a held revocation stays held until the input
   * raises the page (event 7), detaches or ends. */
  cfg.hold_ms = 60000;
  bounded = getenv("FUZZ_AGENT_UNBOUNDED") == NULL;
  cfg.max_segsz = bounded ? FUZZ_MAX_SEGSZ : 0;
  /* The loop's signal pipe and its spare descriptor (EMFILE) are made once, by the first
   * signal handle and the first stream: before any input. */
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    die("socketpair");
  close(sv[1]);
  uv_signal_init(&loop, &ag.sigterm);
  uv_close((uv_handle_t *)&ag.sigterm, NULL);
  uv_pipe_init(&loop, &ag.up.pipe, 0);
  uv_pipe_open(&ag.up.pipe, sv[0]);
  uv_close((uv_handle_t *)&ag.up.pipe, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  memcpy(a.sun_path, cfg.addr.unix_path, strlen(cfg.addr.unix_path) + 1);
  hp.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (hp.lfd < 0 || bind(hp.lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(hp.lfd, 16) < 0 ||
      pthread_create(&th, NULL, h_main, NULL) != 0)
    die("server socket");
  for (int k = 0; k < NPROC; k++)
    procs[k].fd = -1;
  return 0;
}

static void agent_start(void) {
  char why[700] = "";
  int fd;

  /* As main() does, but the signal handles are never started (libFuzzer has SIGINT). */
  agent_init(&ag, &loop, &cfg);
  pthread_mutex_lock(&hp.mu);
  hp.initial = 1;
  hp.instance = 1;
  hp.reattach_err = 0;
  hp.down = 0;
  pthread_mutex_unlock(&hp.mu);
  if (agent_up_open(&ag, why, sizeof why) != 0 || (fd = h_take(1)) < 0) {
    fprintf(stderr, "fuzz_agent: agent_up_open: %s\n", why);
    abort();
  }
  srv_adopt(fd);
  srv.paused = 0;
  srv.nring = 0;
  batch = 0;
  agent_procs_changed(&ag);
}

static void agent_finish(void) {
  struct hseg *s;
  int fd;

  agent_stop(&ag, "fuzz: end of input");
  /* The server and the processes read again: what the agent still writes (its stream is
   * shut down once its queue is out) can go. */
  srv.paused = 0;
  for (int k = 0; k < NPROC; k++)
    procs[k].paused = 0;
  for (int i = 0; i < 1000 && uv_loop_alive(&loop); i++)
    settle();
  if (uv_loop_alive(&loop))
    die("a handle outlived agent_stop");
  /* Every process is gone and detached what it had: a segment left (one whose last local
   * detach came while the server connection was being made again) has no attachment, and
   * no revocation waits for anybody. */
  TAILQ_FOREACH(s, &ag.segs, link)
    if (s->nattach != 0) {
      fprintf(stderr, "fuzz_agent: segment %d: %u attachments left (dying %d)\n", s->shmid,
              s->nattach, s->dying);
      die("a segment outlived every local process");
    }
  if (!TAILQ_EMPTY(&ag.revokes))
    die("a revocation outlived every local process");
  agent_seg_free_all(&ag); /* what main() does after its loop */
  proto_rxbuf_free(&ag.rx);
  free(ag.fwd);
  free(ag.preq);
  for (int k = 0; k < NPROC; k++)
    proc_hangup(&procs[k]);
  if ((fd = h_take(1)) >= 0)
    close(fd);
  srv_hangup();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fds = count_fds(0);
  size_t off = 0;

  agent_start();
  settle();
  while (size - off >= 3) {
    uint8_t sel = data[off];
    size_t len = (size_t)data[off + 1] << 8 | data[off + 2];

    off += 3;
    if (len > size - off)
      len = size - off;
    switch (sel >> 6) {
    case 0:
    case 3:
      proc_record(sel, data + off, len);
      break;
    case 1:
      srv_record(sel, data + off, len);
      break;
    default:
      event(sel, data + off, len);
      break;
    }
    off += len;
    if (batch > 0)
      batch--;
    else
      settle();
  }
  agent_finish();
  if (count_fds(0) != fds) {
    (void)count_fds(1);
    die("descriptors left open (listed above)");
  }
  return 0;
}
