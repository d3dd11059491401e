/* io.c - owns the interposed I/O calls (read/write/recv/send families) whose buffers may lie in a segment.
 *
 * The kernel reading or writing a segment page that is not resident in the needed mode
 * would answer EFAULT (or a short transfer, or drop a datagram) instead of faulting into
 * our handler. Each wrapper checks, lock-free, whether a buffer may touch a view; if none
 * does (always when nothing is attached) it calls libc at once. Otherwise the pages are
 * brought in and pinned (pin.c) around the real call.
 *
 * A pinned page delays other nodes, so pins are not held while a call waits for its file
 * descriptor: on a pipe, socket or terminal opened blocking, the wrapper first waits for
 * readiness unpinned (poll), then pins and makes the transfer without blocking
 * (RWF_NOWAIT / MSG_DONTWAIT), and goes back to waiting if another reader was faster.
 * Where the kernel has no non-blocking form (writes, RWF_NOWAIT refused), the call may block
 * pinned after poll said ready; docs/shim-io.md gives the trade-off.
 */
/* The wrappers define read() & co.: glibc's fortified inline versions must not exist here. */
#undef _FORTIFY_SOURCE
/* ... nor the redirection of pread to pread64: both names are defined below. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "boundary.h"
#include "cache.h"
#include "pin.h"

/* The libc functions behind the wrappers, resolved once (not in real.c: these must work
 * before the library's init, which itself writes to stderr). */
static struct {
  ssize_t (*read)(int, void *, size_t);
  ssize_t (*pread)(int, void *, size_t, off_t);
  ssize_t (*pread64)(int, void *, size_t, off64_t);
  ssize_t (*readv)(int, const struct iovec *, int);
  ssize_t (*preadv)(int, const struct iovec *, int, off_t);
  ssize_t (*preadv64)(int, const struct iovec *, int, off64_t);
  ssize_t (*preadv2)(int, const struct iovec *, int, off_t, int);
  ssize_t (*recv)(int, void *, size_t, int);
  ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
  ssize_t (*recvmsg)(int, struct msghdr *, int);
  ssize_t (*write)(int, const void *, size_t);
  ssize_t (*pwrite)(int, const void *, size_t, off_t);
  ssize_t (*pwrite64)(int, const void *, size_t, off64_t);
  ssize_t (*writev)(int, const struct iovec *, int);
  ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
  ssize_t (*pwritev64)(int, const struct iovec *, int, off64_t);
  ssize_t (*send)(int, const void *, size_t, int);
  ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
  ssize_t (*sendmsg)(int, const struct msghdr *, int);
} R;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void resolve(void) {
#define SYM(name) (*(void **)&R.name = dlsym(RTLD_NEXT, #name))
  SYM(read); SYM(pread); SYM(pread64); SYM(readv); SYM(preadv); SYM(preadv64); SYM(preadv2);
  SYM(recv); SYM(recvfrom); SYM(recvmsg);
  SYM(write); SYM(pwrite); SYM(pwrite64); SYM(writev); SYM(pwritev); SYM(pwritev64);
  SYM(send); SYM(sendto); SYM(sendmsg);
#undef SYM
}

/* Every wrapper starts here. After the first call this is one atomic load. */
static void real_init(void) {
  pthread_once(&real_once, resolve);
}

enum op {
  OP_READ, OP_PREAD, OP_READV, OP_PREADV, OP_RECV, OP_RECVFROM, OP_RECVMSG,
  OP_WRITE, OP_PWRITE, OP_WRITEV, OP_PWRITEV, OP_SEND, OP_SENDTO, OP_SENDMSG,
};

/* One interposed call, as the application made it. */
struct io_call {
  enum op op;
  int fd;
  void *buf;
  size_t len;
  off64_t off;
  const struct iovec *iov;
  int iovcnt;
  int flags;                  /* MSG_* */
  struct sockaddr *addr;      /* recvfrom: written; sendto: read */
  socklen_t *alen;            /* recvfrom */
  socklen_t dlen;             /* sendto */
  struct msghdr *msg;
};

static int is_in(enum op op) {
  return op <= OP_RECVMSG;
}

/* NOWAIT: the transfer must not block (the wrapper waited for readiness itself). */
#define NOWAIT_RWF 1 /* preadv2(RWF_NOWAIT): pipes, FIFOs, sockets via read/readv */
#define NOWAIT_MSG 2 /* MSG_DONTWAIT: the recv family */

static long neg(ssize_t n) {
  return n < 0 ? -errno : n;
}

/* The real call; -errno on failure. */
static long do_real(struct io_call *c, int nowait) {
  struct iovec one = {c->buf, c->len};
  int f = c->flags | (nowait == NOWAIT_MSG ? MSG_DONTWAIT : 0);

  switch (c->op) {
  case OP_READ:
    return nowait == NOWAIT_RWF ? neg(R.preadv2(c->fd, &one, 1, -1, RWF_NOWAIT))
                                : neg(R.read(c->fd, c->buf, c->len));
  case OP_PREAD:     return neg(R.pread64(c->fd, c->buf, c->len, c->off));
  case OP_READV:
    return nowait == NOWAIT_RWF ? neg(R.preadv2(c->fd, c->iov, c->iovcnt, -1, RWF_NOWAIT))
                                : neg(R.readv(c->fd, c->iov, c->iovcnt));
  case OP_PREADV:    return neg(R.preadv64(c->fd, c->iov, c->iovcnt, c->off));
  case OP_RECV:      return neg(R.recv(c->fd, c->buf, c->len, f));
  case OP_RECVFROM:  return neg(R.recvfrom(c->fd, c->buf, c->len, f, c->addr, c->alen));
  case OP_RECVMSG:   return neg(R.recvmsg(c->fd, c->msg, f));
  case OP_WRITE:     return neg(R.write(c->fd, c->buf, c->len));
  case OP_PWRITE:    return neg(R.pwrite64(c->fd, c->buf, c->len, c->off));
  case OP_WRITEV:    return neg(R.writev(c->fd, c->iov, c->iovcnt));
  case OP_PWRITEV:   return neg(R.pwritev64(c->fd, c->iov, c->iovcnt, c->off));
  case OP_SEND:      return neg(R.send(c->fd, c->buf, c->len, c->flags));
  case OP_SENDTO:    return neg(R.sendto(c->fd, c->buf, c->len, c->flags, c->addr, c->dlen));
  case OP_SENDMSG:   return neg(R.sendmsg(c->fd, c->msg, c->flags));
  }
  return -ENOSYS;
}

/* Collects the segment pages the call touches, reading the application's descriptors
 * (iovec arrays, msghdr) outside any lock: they may themselves lie in a segment. */
static int collect(struct io_call *c, struct shim_pinset *ps) {
  int lvl = is_in(c->op) ? SHIM_PIN_EXCL : SHIM_PIN_SHARED;
  const struct iovec *iov = c->iov;
  size_t n = (size_t)c->iovcnt, i;
  int err = 0;

  switch (c->op) {
  case OP_RECVMSG:
  case OP_SENDMSG:
    /* recvmsg writes msg_namelen, msg_controllen and msg_flags back. */
    err = shim_pin_add(ps, c->msg, sizeof *c->msg, lvl);
    if (err == 0 && c->msg->msg_name != NULL)
      err = shim_pin_add(ps, c->msg->msg_name, c->msg->msg_namelen, lvl);
    if (err == 0 && c->msg->msg_control != NULL)
      err = shim_pin_add(ps, c->msg->msg_control, c->msg->msg_controllen, lvl);
    iov = c->msg->msg_iov;
    n = c->msg->msg_iovlen;
    break;
  case OP_RECVFROM:
    if (c->addr != NULL && c->alen != NULL) {
      err = shim_pin_add(ps, c->alen, sizeof *c->alen, lvl);
      if (err == 0)
        err = shim_pin_add(ps, c->addr, *c->alen, lvl);
    }
    break;
  case OP_SENDTO:
    if (c->addr != NULL)
      err = shim_pin_add(ps, c->addr, c->dlen, lvl);
    break;
  default:
    break;
  }
  if (err < 0)
    return err;
  switch (c->op) {
  case OP_READ: case OP_PREAD: case OP_RECV: case OP_RECVFROM:
  case OP_WRITE: case OP_PWRITE: case OP_SEND: case OP_SENDTO:
    return shim_pin_add(ps, c->buf, c->len, lvl);
  default:
    break;
  }
  if (iov == NULL || n > IOV_MAX)
    return 0; /* the kernel rejects it (EINVAL/EFAULT) before touching any buffer */
  err = shim_pin_add(ps, iov, n * sizeof *iov, SHIM_PIN_SHARED);
  for (i = 0; i < n && err == 0; i++)
    err = shim_pin_add(ps, iov[i].iov_base, iov[i].iov_len, lvl);
  return err;
}

/* How the call may wait for its descriptor: 0 = never waits long (regular file, block
 * device, O_NONBLOCK, MSG_DONTWAIT, positional I/O), else wait unpinned first. Sets *nowait
 * to the non-blocking form of the transfer, or 0 if it has none. */
static int wait_kind(const struct io_call *c, int *nowait, int *timeout_ms) {
  struct stat st;
  int fl;

  *nowait = 0;
  *timeout_ms = -1;
  if (c->op == OP_PREAD || c->op == OP_PREADV || c->op == OP_PWRITE || c->op == OP_PWRITEV)
    return 0;
  if (fstat(c->fd, &st) < 0 || S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode))
    return 0;
  fl = fcntl(c->fd, F_GETFL);
  if (fl < 0 || (fl & O_NONBLOCK) || (c->flags & MSG_DONTWAIT))
    return 0;
  if (S_ISSOCK(st.st_mode)) {
    struct timeval tv;
    socklen_t tl = sizeof tv;
    /* SO_RCVTIMEO/SO_SNDTIMEO bound the wait as they bound the blocking call. */
    if (getsockopt(c->fd, SOL_SOCKET, is_in(c->op) ? SO_RCVTIMEO : SO_SNDTIMEO, &tv, &tl) == 0 &&
        (tv.tv_sec > 0 || tv.tv_usec > 0))
      *timeout_ms = tv.tv_sec > INT_MAX / 1000 - 1 ? INT_MAX : (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
  }
  if (!is_in(c->op) || (c->flags & MSG_WAITALL))
    return 1;
  if (c->op == OP_READ || c->op == OP_READV)
    *nowait = NOWAIT_RWF;
  else
    *nowait = NOWAIT_MSG;
  return 1;
}

/* Waits until fd is ready, unpinned. 0, or -EAGAIN when a socket timeout expires. */
static int wait_ready(int fd, int in, int timeout_ms) {
  struct pollfd p = {fd, (short)(in ? POLLIN : POLLOUT), 0};

  for (;;) {
    int n = poll(&p, 1, timeout_ms);
    if (n > 0)
      return 0; /* readable, writable, hung up, error or invalid: the call tells which */
    if (n == 0)
      return -EAGAIN;
    if (errno != EINTR)
      return 0;
    /* A handler ran. Taken as SA_RESTART would take it (docs/shim-io.md). */
  }
}

/* The slow path: the call may touch a segment. */
static long io_slow(struct io_call *c) {
  struct shim_pinset ps;
  int wait, nowait, tmo;
  long rc;

  shim_pin_init(&ps);
  if (collect(c, &ps) < 0 || ps.n == 0) {
    shim_pin_fini(&ps);
    return do_real(c, 0);
  }
  wait = wait_kind(c, &nowait, &tmo);
  for (;;) {
    int pinned;
    if (wait) {
      rc = wait_ready(c->fd, is_in(c->op), tmo);
      if (rc < 0)
        break;
    }
    /* A page that cannot be had (segment detached, server lost) is left as it is: the
     * kernel then answers as it does for any inaccessible mapping. */
    pinned = shim_pin_acquire(&ps) == 0;
    rc = do_real(c, pinned ? nowait : 0);
    if (pinned)
      shim_pin_release(&ps);
    if (!pinned || nowait == 0)
      break;
    if (rc == -EOPNOTSUPP && nowait == NOWAIT_RWF) {
      nowait = 0; /* this kind of file has no RWF_NOWAIT: block pinned after poll */
      continue;
    }
    if (rc != -EAGAIN)
      break;
    /* Another reader took what poll saw. Wait again, unpinned. */
  }
  shim_pin_fini(&ps);
  return rc;
}

static int any_view(void) {
  return atomic_load_explicit(&shim__nviews, memory_order_relaxed) != 0;
}

/* ---- the interposed calls ---------------------------------------------------------------- */

#define SLOW(...)                                          \
  do {                                                     \
    struct io_call c_ = {__VA_ARGS__};                     \
    return (ssize_t)shim_ret(io_slow(&c_));                \
  } while (0)

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t count) {
  real_init();
  if (!any_view())
    return R.read(fd, buf, count);
  SLOW(.op = OP_READ, .fd = fd, .buf = buf, .len = count);
}

SHIM_EXPORT ssize_t pread(int fd, void *buf, size_t count, off_t off) {
  real_init();
  if (!any_view())
    return R.pread(fd, buf, count, off);
  SLOW(.op = OP_PREAD, .fd = fd, .buf = buf, .len = count, .off = off);
}

SHIM_EXPORT ssize_t pread64(int fd, void *buf, size_t count, off64_t off) {
  real_init();
  if (!any_view())
    return R.pread64(fd, buf, count, off);
  SLOW(.op = OP_PREAD, .fd = fd, .buf = buf, .len = count, .off = off);
}

SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
  real_init();
  if (!any_view())
    return R.readv(fd, iov, iovcnt);
  SLOW(.op = OP_READV, .fd = fd, .iov = iov, .iovcnt = iovcnt);
}

SHIM_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int iovcnt, off_t off) {
  real_init();
  if (!any_view())
    return R.preadv(fd, iov, iovcnt, off);
  SLOW(.op = OP_PREADV, .fd = fd, .iov = iov, .iovcnt = iovcnt, .off = off);
}

SHIM_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int iovcnt, off64_t off) {
  real_init();
  if (!any_view())
    return R.preadv64(fd, iov, iovcnt, off);
  SLOW(.op = OP_PREADV, .fd = fd, .iov = iov, .iovcnt = iovcnt, .off = off);
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags) {
  real_init();
  if (!any_view())
    return R.recv(fd, buf, len, flags);
  SLOW(.op = OP_RECV, .fd = fd, .buf = buf, .len = len, .flags = flags);
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                             socklen_t *alen) {
  real_init();
  if (!any_view())
    return R.recvfrom(fd, buf, len, flags, addr, alen);
  SLOW(.op = OP_RECVFROM, .fd = fd, .buf = buf, .len = len, .flags = flags, .addr = addr,
       .alen = alen);
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  real_init();
  if (!any_view() || msg == NULL)
    return R.recvmsg(fd, msg, flags);
  SLOW(.op = OP_RECVMSG, .fd = fd, .msg = msg, .flags = flags);
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t count) {
  real_init();
  if (!any_view())
    return R.write(fd, buf, count);
  SLOW(.op = OP_WRITE, .fd = fd, .buf = (void *)buf, .len = count);
}

SHIM_EXPORT ssize_t pwrite(int fd, const void *buf, size_t count, off_t off) {
  real_init();
  if (!any_view())
    return R.pwrite(fd, buf, count, off);
  SLOW(.op = OP_PWRITE, .fd = fd, .buf = (void *)buf, .len = count, .off = off);
}

SHIM_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t off) {
  real_init();
  if (!any_view())
    return R.pwrite64(fd, buf, count, off);
  SLOW(.op = OP_PWRITE, .fd = fd, .buf = (void *)buf, .len = count, .off = off);
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  real_init();
  if (!any_view())
    return R.writev(fd, iov, iovcnt);
  SLOW(.op = OP_WRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt);
}

SHIM_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off) {
  real_init();
  if (!any_view())
    return R.pwritev(fd, iov, iovcnt, off);
  SLOW(.op = OP_PWRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt, .off = off);
}

SHIM_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t off) {
  real_init();
  if (!any_view())
    return R.pwritev64(fd, iov, iovcnt, off);
  SLOW(.op = OP_PWRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt, .off = off);
}

SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags) {
  real_init();
  if (!any_view())
    return R.send(fd, buf, len, flags);
  SLOW(.op = OP_SEND, .fd = fd, .buf = (void *)buf, .len = len, .flags = flags);
}

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
                           const struct sockaddr *addr, socklen_t alen) {
  real_init();
  if (!any_view())
    return R.sendto(fd, buf, len, flags, addr, alen);
  SLOW(.op = OP_SENDTO, .fd = fd, .buf = (void *)buf, .len = len, .flags = flags,
       .addr = (struct sockaddr *)addr, .dlen = alen);
}

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  real_init();
  if (!any_view() || msg == NULL)
    return R.sendmsg(fd, msg, flags);
  SLOW(.op = OP_SENDMSG, .fd = fd, .msg = (struct msghdr *)msg, .flags = flags);
}
