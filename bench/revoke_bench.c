/* revoke_bench: the cost of taking one page away from K local processes, design A (each lowers its own view when the agent asks over SOCK_SEQPACKET) against design B (the agent revokes every view itself through userfaultfd).
 *
 *   revoke_bench [-n ROUNDS] [-u] [-s]
 *
 * The parent plays the agent: it owns the memfd and maps it too (its copy-out view). Each
 * child plays a local process: it maps page 0 of the memfd MAP_SHARED read-write, touches it,
 * and serves the agent from a dedicated thread blocked in recv(2), like the shim's I/O thread.
 * Every timed round starts from the same state: each child holds a writable, dirty PTE (the
 * restore between rounds is untimed). -u opens the userfaultfds with UFFD_USER_MODE_ONLY,
 * which is what an unprivileged process gets on Debian (vm.unprivileged_userfaultfd=0).
 * -s keeps each child's main thread spinning, as a busy application would: its mm is then
 * live on another CPU, so a revocation may also need a TLB-shootdown IPI (only K < CPUs run;
 * compare the "TLB shootdowns" line of /proc/interrupts to see whether any were sent).
 * For scale it also times, in-process, a native minor fault, an mprotect and a SIGSEGV round trip.
 * Built with the other bench programs (build/bench/revoke_bench), run by hand; not part of
 * `make bench`, whose budget it would take. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG 4096u
#define MAXK 8
#define TIMEOUT_MS 3000 /* a lost wake-up must end the run, not hang it */

/* What the agent asks a child; every request gets exactly one reply. */
enum op { OP_NOP, OP_NONE, OP_READ, OP_RAISE, OP_WRITE, OP_LOAD, OP_KWRITE };
struct req { uint32_t op, val; };
struct rep { int32_t err; uint32_t val; uint64_t ns; }; /* ns: the child's own time for the op */
struct hello { int32_t err, stage; uint64_t addr; };     /* first message, uffd (if any) attached */

/* One local process as the agent sees it. */
struct holder { pid_t pid; int sock, uffd; uint64_t addr; };

static int memfd;
static unsigned char *agent_view;
static unsigned char save[PG]; /* the agent's copy of the page while it is punched out */
static unsigned rounds = 2000;
static int user_only, spin;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "revoke_bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* ---- the child (a local process) ---- */

static unsigned char *view;
static int csock;

/* The I/O thread: one request, one action on this process's view, one reply. The ns it
 * reports is what the faulting process itself sees (for WRITE/LOAD: the whole fault). */
static void *io_thread(void *arg) {
  struct req q;
  (void)arg;
  while (recv(csock, &q, sizeof q, 0) == (ssize_t)sizeof q) {
    struct rep r = {0, 0, 0};
    uint64_t t0 = now_ns();
    switch (q.op) {
    case OP_NONE: if (mprotect(view, PG, PROT_NONE) < 0) r.err = errno; break;
    case OP_READ: if (mprotect(view, PG, PROT_READ) < 0) r.err = errno; break;
    case OP_RAISE: /* a raised page is used again, so the next round finds a live PTE */
      if (mprotect(view, PG, PROT_READ | PROT_WRITE) < 0) r.err = errno;
      *(volatile uint32_t *)view = q.val;
      break;
    case OP_WRITE: *(volatile uint32_t *)view = q.val; break;
    case OP_LOAD: r.val = *(volatile uint32_t *)view; break;
    case OP_KWRITE: { /* the kernel writes the page for us: read(2) from a pipe into it */
      int p[2];
      if (pipe(p) < 0) { r.err = errno; break; }
      if (write(p[1], &q.val, 4) != 4 || read(p[0], view, 4) != 4) r.err = errno;
      close(p[0]);
      close(p[1]);
      break;
    }
    }
    r.ns = now_ns() - t0;
    if (send(csock, &r, sizeof r, 0) != (ssize_t)sizeof r) break;
  }
  _exit(0); /* the agent hung up: the whole process goes, a spinning main thread too */
}

/* Opens a userfaultfd for this process and registers the view MISSING|WP. Returns 0 or an
 * errno with *stage naming the step (the parent prints why B is not available). */
static int uffd_setup(int *out, int *stage) {
  int flags = O_CLOEXEC | O_NONBLOCK | (user_only ? UFFD_USER_MODE_ONLY : 0);
  *stage = 0;
  int fd = (int)syscall(SYS_userfaultfd, flags);
  if (fd < 0 && errno == EPERM) { /* vm.unprivileged_userfaultfd=0: the device node may allow it */
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) { fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags); close(dev); }
  }
  if (fd < 0) return errno;
  /* WP on shmem needs the PTE markers of 5.19+; ask for it so an older kernel says EINVAL. */
  struct uffdio_api api = {.api = UFFD_API,
                           .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_MISSING_SHMEM};
  *stage = 1;
  if (ioctl(fd, UFFDIO_API, &api) < 0) { int e = errno; close(fd); return e; }
  struct uffdio_register reg = {.range = {(uintptr_t)view, PG},
                                .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP};
  *stage = 2;
  if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) { int e = errno; close(fd); return e; }
  *stage = 3;
  if (!(reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT)) || !(reg.ioctls & (1ull << _UFFDIO_COPY))) {
    close(fd);
    return EOPNOTSUPP;
  }
  *out = fd;
  return 0;
}

static void child_main(int sock, int want_uffd) {
  struct hello h = {0, 0, 0};
  int uffd = -1;
  csock = sock;
  view = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (view == MAP_FAILED) _exit(2);
  view[64] = 1; /* touched: the process holds the page */
  h.addr = (uintptr_t)view;
  if (want_uffd) h.err = uffd_setup(&uffd, &h.stage);
  /* The uffd goes to the agent with SCM_RIGHTS; from then on the agent holds the only copy. */
  struct iovec iov = {&h, sizeof h};
  union { struct cmsghdr c; char buf[CMSG_SPACE(sizeof(int))]; } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (uffd >= 0) {
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &uffd, sizeof uffd);
  }
  if (sendmsg(sock, &m, 0) < 0) _exit(3);
  if (uffd >= 0) close(uffd);
  pthread_t t;
  if (pthread_create(&t, NULL, io_thread, NULL) != 0) _exit(4);
  /* Idle, the child's mm is live on no other CPU and a PTE change needs no IPI; -s makes it live. */
  if (spin) for (;;) __asm__ volatile("" ::: "memory");
  pthread_join(t, NULL);
  _exit(0);
}

/* ---- the parent (the agent) ---- */

static const char *stage_name[] = {"userfaultfd() and /dev/userfaultfd", "UFFDIO_API (WP on shmem)",
                                   "UFFDIO_REGISTER MISSING|WP", "WRITEPROTECT/COPY ioctls"};

/* Forks k holders; with want_uffd each passes its registered uffd. Returns 0, or -1 after
 * printing why the uffd is not available (the children still run and must be reaped). */
static int spawn(struct holder *h, int k, int want_uffd) {
  int rc = 0;
  for (int i = 0; i < k; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(sv[0]);
      for (int j = 0; j < i; j++) { close(h[j].sock); if (h[j].uffd >= 0) close(h[j].uffd); }
      child_main(sv[1], want_uffd);
    }
    close(sv[1]);
    struct timeval tv = {TIMEOUT_MS / 1000, 0};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    h[i] = (struct holder){pid, sv[0], -1, 0};
    struct hello hl;
    struct iovec iov = {&hl, sizeof hl};
    union { struct cmsghdr c; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    if (recvmsg(sv[0], &m, 0) != (ssize_t)sizeof hl) die("hello from child");
    h[i].addr = hl.addr;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_type == SCM_RIGHTS) memcpy(&h[i].uffd, CMSG_DATA(c), sizeof(int));
    if (want_uffd && hl.err) {
      if (i == 0) printf("  design B not available: %s failed: %s\n", stage_name[hl.stage], strerror(hl.err));
      rc = -1;
    }
  }
  return rc;
}

static void reap(struct holder *h, int k) {
  for (int i = 0; i < k; i++) { close(h[i].sock); if (h[i].uffd >= 0) close(h[i].uffd); }
  for (int i = 0; i < k; i++) waitpid(h[i].pid, NULL, 0);
}

static void ask(struct holder *h, uint32_t op, uint32_t val) {
  struct req q = {op, val};
  if (send(h->sock, &q, sizeof q, 0) != (ssize_t)sizeof q) die("send to child");
}

static struct rep answer(struct holder *h) {
  struct rep r;
  if (recv(h->sock, &r, sizeof r, 0) != (ssize_t)sizeof r) die("answer from child (stuck in a fault?)");
  if (r.err) { errno = r.err; die("child's operation"); }
  return r;
}

/* Untimed: every holder does op and answers. */
static void all(struct holder *h, int k, uint32_t op, uint32_t val) {
  for (int i = 0; i < k; i++) ask(&h[i], op, val);
  for (int i = 0; i < k; i++) answer(&h[i]);
}

static int wp(struct holder *h, int on) {
  struct uffdio_writeprotect w = {.range = {h->addr, PG}, .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
  return ioctl(h->uffd, UFFDIO_WRITEPROTECT, &w);
}

/* Copies the page out and punches it from the memfd: every mapping of every process loses it.
 * by_map copies through the agent's own view, whose PTE the punch then zaps too (a TLB flush
 * in the agent itself); otherwise pread copies it and the agent has nothing mapped. */
static int punch(int by_map) {
  if (by_map) memcpy(save, agent_view, PG);
  else if (pread(memfd, save, PG, 0) != PG) return -1;
  return fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PG);
}

static int wait_event(struct holder *h, struct uffd_msg *m) {
  struct pollfd p = {h->uffd, POLLIN, 0};
  if (poll(&p, 1, TIMEOUT_MS) != 1) return -1;
  return read(h->uffd, m, sizeof *m) == (ssize_t)sizeof *m && m->event == UFFD_EVENT_PAGEFAULT &&
                 (m->arg.pagefault.address & ~(uint64_t)(PG - 1)) == h->addr ? 0 : -1;
}

static uint32_t page_word(void) {
  uint32_t v;
  if (pread(memfd, &v, sizeof v, 0) != (ssize_t)sizeof v) die("pread");
  return v;
}

/* One write-protect fault served by the agent: protect, let the child write, take the event,
 * check the store has not landed, unprotect (which wakes the child). Returns the child's
 * store time in us, or -1 when protection did not take. */
static double wp_fault(struct holder *h, uint32_t val) {
  struct uffd_msg m;
  uint32_t before = page_word();
  if (wp(h, 1) < 0) return -1;
  ask(h, OP_WRITE, val);
  if (wait_event(h, &m) < 0 || !(m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) || page_word() != before) {
    fprintf(stderr, "revoke_bench: write-protect did not stop the child's store\n");
    return -1;
  }
  if (wp(h, 0) < 0) die("UFFDIO_WRITEPROTECT off");
  struct rep r = answer(h);
  return page_word() == val ? (double)r.ns / 1e3 : -1;
}

/* One missing-page fault served by the agent: punch, let the child load, take the event,
 * UFFDIO_COPY the saved data in (for every mapping: it lands in the memfd). */
static double missing_fault(struct holder *h, uint32_t val) {
  struct uffd_msg m;
  if (punch(1) < 0) return -1;
  memcpy(save, &val, sizeof val); /* "the data that came back": proves the copy is what is read */
  ask(h, OP_LOAD, 0);
  if (wait_event(h, &m) < 0 || (m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
    fprintf(stderr, "revoke_bench: the punched page produced no missing event\n");
    return -1;
  }
  struct uffdio_copy c = {.dst = h->addr, .src = (uintptr_t)save, .len = PG, .mode = 0};
  if (ioctl(h->uffd, UFFDIO_COPY, &c) < 0) die("UFFDIO_COPY");
  struct rep r = answer(h);
  return r.val == val ? (double)r.ns / 1e3 : -1;
}

/* ---- the table ---- */

enum row { R_ANOP, R_AREAD, R_ANONE, R_BWP, R_BPUNCH, R_BPREAD, R_WPFAULT, R_MISSFAULT, R_MINOR, R_MPROT, R_SEGV, NROWS };
static const char *row_name[NROWS] = {
    "A  message round trip, no mprotect", "A  revoke write: mprotect READ", "A  revoke all: mprotect NONE",
    "B  revoke write: K x WRITEPROTECT", "B  revoke all: memcpy out + PUNCH_HOLE",
    "B  ... the same, pread out (agent unmapped)", "B  WP fault served by agent (child)",
    "B  MISSING fault + UFFDIO_COPY (child)", "in-process native minor fault", "in-process mprotect NONE alone",
    "in-process SIGSEGV + mprotect back"};
static const int ks[] = {1, 2, 4, 8};
static double res[NROWS][4][2]; /* median, p99 in us; median -1: not available, -2: not applicable */

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentiles, as bench_stats.c. */
static void store(int row, int ki, double *v, size_t n) {
  qsort(v, n, sizeof *v, cmpd);
  res[row][ki][0] = v[(n * 50 + 99) / 100 - 1];
  res[row][ki][1] = v[(n * 99 + 99) / 100 - 1];
}

/* Marks row/K as not available, saying why (errno) unless spawn already did. Returns 0. */
static int fail(int row, int ki, const char *why) {
  if (why) printf("  %s: %s: %s\n", row_name[row], why, strerror(errno));
  res[row][ki][0] = -1;
  return 0;
}

/* ---- the measurements ---- */

static void bench_a(int ki, double *lat) {
  int k = ks[ki];
  struct holder h[MAXK];
  static const uint32_t ops[] = {OP_NOP, OP_READ, OP_NONE};
  spawn(h, k, 0);
  for (int o = 0; o < 3; o++) {
    for (long r = -(long)rounds / 10; r < (long)rounds; r++) {
      uint64_t t0 = now_ns();
      for (int i = 0; i < k; i++) ask(&h[i], ops[o], 0);
      for (int i = 0; i < k; i++) answer(&h[i]);
      uint64_t t1 = now_ns();
      if (r >= 0) lat[r] = (double)(t1 - t0) / 1e3;
      if (ops[o] != OP_NOP) all(h, k, OP_RAISE, (uint32_t)r);
    }
    store(R_ANOP + o, ki, lat, rounds);
  }
  if (k == 1) { /* a stopped holder: A cannot finish without it */
    kill(h[0].pid, SIGSTOP);
    waitpid(h[0].pid, NULL, WUNTRACED);
    ask(&h[0], OP_NONE, 0);
    struct pollfd p = {h[0].sock, POLLIN, 0};
    int got = poll(&p, 1, 200);
    printf("  A, holder SIGSTOPped: %s\n", got == 0 ? "no answer after 200 ms (the revocation waits for SIGCONT)"
                                                    : "answered (unexpected)");
    kill(h[0].pid, SIGCONT);
    answer(&h[0]);
  }
  reap(h, k);
}

static void bench_b(int ki, double *lat) {
  int k = ks[ki];
  unsigned nf = rounds / 10 < 50 ? 50 : rounds / 10;
  struct holder h[MAXK];
  if (spawn(h, k, 1) < 0) {
    for (int row = R_BWP; row <= R_MISSFAULT; row++) fail(row, ki, NULL);
    reap(h, k);
    return;
  }
  /* Revoke write: K ioctls from the agent, no context switch to any holder. */
  int ok = 1;
  for (long r = -(long)rounds / 10; ok && r < (long)rounds; r++) {
    uint64_t t0 = now_ns();
    int bad = 0;
    for (int i = 0; i < k; i++) bad |= wp(&h[i], 1);
    uint64_t t1 = now_ns();
    if (bad) { ok = fail(R_BWP, ki, "UFFDIO_WRITEPROTECT"); break; }
    if (r >= 0) lat[r] = (double)(t1 - t0) / 1e3;
    for (int i = 0; i < k; i++) if (wp(&h[i], 0) < 0) die("UFFDIO_WRITEPROTECT off");
    all(h, k, OP_WRITE, (uint32_t)r);
  }
  if (ok) store(R_BWP, ki, lat, rounds);
  /* Is it effective? Each round checks that the store waited for the agent. */
  ok = 1;
  for (unsigned r = 0; ok && r < nf; r++)
    if ((lat[r] = wp_fault(&h[0], 0x5000000u + r)) < 0) ok = fail(R_WPFAULT, ki, NULL);
  if (ok) store(R_WPFAULT, ki, lat, nf);
  /* Revoke all: one punch for all K mappings; then refill and let every holder map it again. */
  for (int by_map = 1; by_map >= 0; by_map--) {
    int row = by_map ? R_BPUNCH : R_BPREAD;
    ok = 1;
    for (long r = -(long)rounds / 10; ok && r < (long)rounds; r++) {
      if (by_map) (void)*(volatile unsigned char *)agent_view; /* the agent's minor fault is not the cost */
      uint64_t t0 = now_ns();
      int bad = punch(by_map);
      uint64_t t1 = now_ns();
      if (bad) { ok = fail(row, ki, "copy-out/fallocate(PUNCH_HOLE)"); break; }
      if (r >= 0) lat[r] = (double)(t1 - t0) / 1e3;
      if (pwrite(memfd, save, PG, 0) != PG) die("pwrite");
      all(h, k, OP_WRITE, (uint32_t)r);
    }
    if (ok) store(row, ki, lat, rounds);
  }
  ok = 1;
  for (unsigned r = 0; ok && r < nf; r++) {
    if ((lat[r] = missing_fault(&h[0], 0x6000000u + r)) < 0) { ok = fail(R_MISSFAULT, ki, NULL); break; }
    all(h, k, OP_WRITE, r); /* the others find the copied page in the memfd: minor faults */
  }
  if (ok) store(R_MISSFAULT, ki, lat, nf);
  if (k == 1) {
    /* A syscall that writes the page (kernel-mode fault): served, or EFAULT under USER_MODE_ONLY? */
    struct uffd_msg m;
    wp(&h[0], 1);
    ask(&h[0], OP_KWRITE, 0x7777);
    struct pollfd p[2] = {{h[0].uffd, POLLIN, 0}, {h[0].sock, POLLIN, 0}};
    if (poll(p, 2, TIMEOUT_MS) > 0 && (p[0].revents & POLLIN) && wait_event(&h[0], &m) == 0) {
      wp(&h[0], 0);
      answer(&h[0]);
      printf("  B, kernel-mode write (read(2) into the page): uffd event, served by the agent\n");
    } else {
      struct rep r = {0, 0, 0};
      if (recv(h[0].sock, &r, sizeof r, 0) != (ssize_t)sizeof r) die("answer from child");
      printf("  B, kernel-mode write (read(2) into the page): %s\n",
             r.err ? strerror(r.err) : "completed without an event (protection not effective!)");
      wp(&h[0], 0);
    }
    /* A stopped holder: B does not need it to run. */
    kill(h[0].pid, SIGSTOP);
    waitpid(h[0].pid, NULL, WUNTRACED);
    uint64_t t0 = now_ns();
    int rc = wp(&h[0], 1);
    uint64_t t1 = now_ns();
    printf("  B, holder SIGSTOPped: WRITEPROTECT %s in %.2f us without it running\n", rc ? "FAILED" : "done",
           (double)(t1 - t0) / 1e3);
    wp(&h[0], 0);
    kill(h[0].pid, SIGCONT);
  }
  reap(h, k);
}

static volatile unsigned char *segv_page;

/* The shim's handler in miniature: raise the view and return to retry the access. */
static void on_segv(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)si, (void)uc;
  mprotect((void *)segv_page, PG, PROT_READ | PROT_WRITE);
}

static void bench_local(double *lat) {
  volatile unsigned char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (p == MAP_FAILED) die("mmap");
  for (unsigned r = 0; r < rounds; r++) { /* DONTNEED drops our PTE, the memfd keeps the page */
    madvise((void *)p, PG, MADV_DONTNEED);
    uint64_t t0 = now_ns();
    p[0] = (unsigned char)r;
    lat[r] = (double)(now_ns() - t0) / 1e3;
  }
  store(R_MINOR, 0, lat, rounds);
  for (unsigned r = 0; r < rounds; r++) {
    p[0] = (unsigned char)r;
    uint64_t t0 = now_ns();
    mprotect((void *)p, PG, PROT_NONE);
    lat[r] = (double)(now_ns() - t0) / 1e3;
    mprotect((void *)p, PG, PROT_READ | PROT_WRITE);
  }
  store(R_MPROT, 0, lat, rounds);
  struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO}, old;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old);
  segv_page = p;
  for (unsigned r = 0; r < rounds; r++) {
    p[0] = (unsigned char)r;
    mprotect((void *)p, PG, PROT_NONE);
    uint64_t t0 = now_ns();
    p[0] = (unsigned char)(r + 1);
    lat[r] = (double)(now_ns() - t0) / 1e3;
  }
  store(R_SEGV, 0, lat, rounds);
  sigaction(SIGSEGV, &old, NULL);
  munmap((void *)p, PG);
}

int main(int argc, char **argv) {
  int c;
  while ((c = getopt(argc, argv, "n:us")) != -1) {
    if (c == 'n' && atoi(optarg) >= 100) rounds = (unsigned)atoi(optarg);
    else if (c == 'u') user_only = 1;
    else if (c == 's') spin = 1;
    else { fprintf(stderr, "usage: %s [-n ROUNDS>=100] [-u] [-s]\n", argv[0]); return 2; }
  }
  memfd = memfd_create("revoke_bench", MFD_CLOEXEC);
  if (memfd < 0 || ftruncate(memfd, PG) < 0) die("memfd");
  agent_view = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (agent_view == MAP_FAILED) die("mmap");
  memset(agent_view, 0xab, PG);
  double *lat = malloc(rounds * sizeof *lat);
  if (!lat) die("malloc");
  for (int row = 0; row < NROWS; row++) for (int ki = 0; ki < 4; ki++) res[row][ki][0] = -2;

  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  printf("revoke_bench: %u rounds, %ld CPUs, uffd %s, holders %s\n", rounds, ncpu,
         user_only ? "UFFD_USER_MODE_ONLY" : "all faults (privileged)", spin ? "spinning" : "idle");
  bench_local(lat);
  for (int ki = 0; ki < 4 && !(spin && ks[ki] >= ncpu); ki++) {
    printf("K=%d\n", ks[ki]);
    bench_a(ki, lat);
    bench_b(ki, lat);
  }
  printf("\n%-44s", "us, median/p99");
  for (int ki = 0; ki < 4; ki++) printf("%18s", ks[ki] == 1 ? "K=1" : ks[ki] == 2 ? "K=2" : ks[ki] == 4 ? "K=4" : "K=8");
  printf("\n");
  for (int row = 0; row < NROWS; row++) {
    printf("%-44s", row_name[row]);
    for (int ki = 0; ki < 4; ki++) {
      if (res[row][ki][0] == -2) printf("%18s", "");
      else if (res[row][ki][0] < 0) printf("%18s", "n/a");
      else printf("%9.2f/%-8.2f", res[row][ki][0], res[row][ki][1]);
    }
    printf("\n");
  }
  free(lat);
  return 0;
}
