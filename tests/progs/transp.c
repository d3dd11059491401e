/* transp.c - plain SysV programs for the transparency tests: fork, exec, exit, signals, loss.
 *
 * No dshm headers: the same binary runs natively (the kernel is the oracle) and under
 * LD_PRELOAD. Every subcommand prints normalized lines (no ids, pids, addresses or times).
 * Segments are IPC_PRIVATE and removed at the end, so native runs leave nothing behind.
 * Exit status: 0 success, 1 a check failed (message on stderr), 2 usage.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static int fail(const char *what) {
  fprintf(stderr, "transp: %s: %s\n", what, strerror(errno));
  return 1;
}

/* A new private segment of pages pages, attached; its id in *idp. */
static void *new_seg(size_t pages, int *idp) {
  int id = shmget(IPC_PRIVATE, pages * PAGE, IPC_CREAT | 0600);
  void *p;

  if (id < 0) {
    fail("shmget");
    return NULL;
  }
  p = shmat(id, NULL, 0);
  if (p == (void *)-1) {
    fail("shmat");
    shmctl(id, IPC_RMID, NULL);
    return NULL;
  }
  *idp = id;
  return p;
}

static long nattch(int id) {
  struct shmid_ds ds;

  if (shmctl(id, IPC_STAT, &ds) < 0)
    return -1;
  return (long)ds.shm_nattch;
}

/* nattch as the kernel shows it at once; the server learns of an exec or an exit through
 * the connection closing, a moment later: ask again until it shows (bounded). */
static long nattch_settled(int id, long want) {
  struct timespec ts = {0, 10 * 1000 * 1000};
  long n = nattch(id);

  for (int i = 0; i < 1000 && n != want; i++) {
    nanosleep(&ts, NULL);
    n = nattch(id);
  }
  return n;
}

static unsigned char pattern(size_t i, unsigned seed) {
  return (unsigned char)(i * 31u + seed + i / PAGE);
}

static void fill(unsigned char *p, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++)
    p[i] = pattern(i, seed);
}

static int verify(const unsigned char *p, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != pattern(i, seed)) {
      fprintf(stderr, "transp: byte %zu is %u, want %u\n", i, p[i], pattern(i, seed));
      return 1;
    }
  return 0;
}

/* Waits for every child; 0 if each exited 0. */
static int reap(int n) {
  int status, bad = 0;

  for (int i = 0; i < n; i++) {
    if (wait(&status) < 0)
      return fail("wait");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "transp: child status %#x\n", status);
      bad = 1;
    }
  }
  return bad;
}

/* Layout of the fork segment: counter, arrived, go on page 0; a second counter on page 1. */
struct fork_seg {
  uint64_t count;
  uint64_t arrived;
  uint64_t go;
  uint8_t pad[PAGE - 24];
  uint64_t count2;
};

static void spin_until(uint64_t *w, uint64_t want) {
  while (__atomic_load_n(w, __ATOMIC_ACQUIRE) < want)
    sched_yield();
}

/* fork-workers W N: the classic pattern. Create and attach, fork W workers that each add N
 * atomically; nattch is read while every worker is alive and after they are gone. */
static int cmd_fork_workers(long workers, long n) {
  struct fork_seg *s;
  int id, rc = 0;

  s = new_seg(2, &id);
  if (s == NULL)
    return 1;
  fflush(stdout);
  for (long w = 0; w < workers; w++) {
    pid_t pid = fork();
    if (pid < 0)
      return fail("fork");
    if (pid == 0) {
      __atomic_fetch_add(&s->arrived, 1, __ATOMIC_SEQ_CST);
      spin_until(&s->go, 1);
      for (long i = 0; i < n; i++)
        __atomic_fetch_add(&s->count, 1, __ATOMIC_SEQ_CST);
      exit(0); /* normal exit: detaches */
    }
  }
  spin_until(&s->arrived, (uint64_t)workers);
  printf("nattch with workers %ld\n", nattch(id));
  __atomic_store_n(&s->go, 1, __ATOMIC_RELEASE);
  rc |= reap((int)workers);
  printf("sum %lu\n", (unsigned long)__atomic_load_n(&s->count, __ATOMIC_SEQ_CST));
  printf("nattch after workers %ld\n", nattch_settled(id, 1));
  rc |= shmdt(s) < 0 ? fail("shmdt") : 0;
  shmctl(id, IPC_RMID, NULL);
  return rc;
}

struct hammer {
  struct fork_seg *s;
  long n;
  int started;
};

static void *hammer_main(void *arg) {
  struct hammer *h = arg;

  __atomic_fetch_add(&h->started, 1, __ATOMIC_SEQ_CST);
  for (long i = 0; i < h->n; i++)
    __atomic_fetch_add(&h->s->count, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* fork-threads T N K M: T threads add N each to one counter while the main thread forks K
 * children, one after another, that add M each to another counter (and read the first). */
static int cmd_fork_threads(long threads, long n, long kids, long m) {
  struct fork_seg *s;
  pthread_t th[16];
  struct hammer h;
  int id, rc = 0;

  if (threads < 1 || threads > 16)
    return 2;
  s = new_seg(2, &id);
  if (s == NULL)
    return 1;
  h.s = s;
  h.n = n;
  h.started = 0;
  for (long t = 0; t < threads; t++)
    pthread_create(&th[t], NULL, hammer_main, &h);
  /* Fork once every thread runs its loop (not while one is still being created: the
   * sanitizers' allocator is not fork-safe then), so that they fault during the forks. */
  while (__atomic_load_n(&h.started, __ATOMIC_SEQ_CST) < threads)
    sched_yield();
  fflush(stdout);
  for (long k = 0; k < kids; k++) {
    pid_t pid = fork();
    if (pid < 0)
      return fail("fork");
    if (pid == 0) {
      uint64_t seen = __atomic_load_n(&s->count, __ATOMIC_SEQ_CST);
      for (long i = 0; i < m; i++)
        __atomic_fetch_add(&s->count2, 1, __ATOMIC_SEQ_CST);
      /* The parent's counter only grows: the child never sees it go back. */
      exit(__atomic_load_n(&s->count, __ATOMIC_SEQ_CST) >= seen ? 0 : 1);
    }
    rc |= reap(1);
  }
  for (long t = 0; t < threads; t++)
    pthread_join(th[t], NULL);
  printf("threads sum %lu\n", (unsigned long)s->count);
  printf("children sum %lu\n", (unsigned long)s->count2);
  printf("nattch %ld\n", nattch_settled(id, 1));
  shmdt(s);
  shmctl(id, IPC_RMID, NULL);
  return rc;
}

/* fork-chain: a child forks a grandchild; each adds 1000; the grandchild sees nattch 3. */
static int cmd_fork_chain(void) {
  struct fork_seg *s;
  int id, rc;
  pid_t pid;

  s = new_seg(2, &id);
  if (s == NULL)
    return 1;
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    pid_t gpid = fork();
    if (gpid == 0) {
      for (int i = 0; i < 1000; i++)
        __atomic_fetch_add(&s->count, 1, __ATOMIC_SEQ_CST);
      printf("grandchild nattch %ld\n", nattch(id));
      fflush(stdout);
      exit(0);
    }
    rc = reap(1);
    for (int i = 0; i < 1000; i++)
      __atomic_fetch_add(&s->count, 1, __ATOMIC_SEQ_CST);
    printf("child nattch %ld\n", nattch_settled(id, 2));
    fflush(stdout);
    exit(rc);
  }
  rc = reap(1);
  printf("sum %lu\n", (unsigned long)s->count);
  printf("nattch %ld\n", nattch_settled(id, 1));
  shmdt(s);
  shmctl(id, IPC_RMID, NULL);
  return rc;
}

/* fork-exit-writes: a forked child writes 8 pages and exits; the parent reads every byte. */
static int cmd_fork_exit_writes(void) {
  unsigned char *p;
  int id, rc;
  pid_t pid;

  p = new_seg(8, &id);
  if (p == NULL)
    return 1;
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    fill(p, 8 * PAGE, 7);
    exit(0);
  }
  rc = reap(1);
  rc |= verify(p, 8 * PAGE, 7);
  printf("parent read the child's writes: %s\n", rc ? "no" : "yes");
  shmdt(p);
  shmctl(id, IPC_RMID, NULL);
  return rc;
}

static void *exit_thread(void *arg) {
  fill(arg, 8 * PAGE, 11);
  exit(0);
}

/* exit-thread-fill ID: writes 8 pages of segment ID from a second thread, which calls exit
 * while the main thread is still blocked. */
static int cmd_exit_thread_fill(int id) {
  void *p = shmat(id, NULL, 0);
  pthread_t th;

  if (p == (void *)-1)
    return fail("shmat");
  pthread_create(&th, NULL, exit_thread, p);
  pthread_join(th, NULL);
  return 1; /* not reached: the thread exits the process */
}

/* exit-thread: a child process writes from a non-main thread that calls exit; then the
 * data is all there and nattch is back to 1. The child is exec'd, not forked, so that this
 * checks exit alone. */
static int cmd_exit_thread(const char *self) {
  unsigned char *p;
  char ids[32];
  int id, rc;
  pid_t pid;

  p = new_seg(8, &id);
  if (p == NULL)
    return 1;
  snprintf(ids, sizeof ids, "%d", id);
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    execl(self, self, "exit-thread-fill", ids, (char *)NULL);
    _exit(127);
  }
  rc = reap(1);
  rc |= verify(p, 8 * PAGE, 11);
  printf("written by an exiting thread: %s\n", rc ? "no" : "yes");
  printf("nattch %ld\n", nattch_settled(id, 1));
  shmdt(p);
  shmctl(id, IPC_RMID, NULL);
  return rc;
}

/* exec-check ID: run after an exec by the attaching process: nattch is 0 again, and the
 * pages written before the exec are all there. */
static int cmd_exec_check(int id) {
  unsigned char *p;
  int rc;

  printf("nattch after exec %ld\n", nattch_settled(id, 0));
  p = shmat(id, NULL, SHM_RDONLY);
  if (p == (void *)-1)
    return fail("shmat");
  rc = verify(p, 8 * PAGE, 5);
  printf("written before exec: %s\n", rc ? "no" : "yes");
  shmdt(p);
  shmctl(id, IPC_RMID, NULL);
  return rc;
}

/* exec: attach, write 8 pages, exec exec-check (execv of ourselves). */
static int cmd_exec(const char *self) {
  unsigned char *p;
  char ids[32];
  int id;

  p = new_seg(8, &id);
  if (p == NULL)
    return 1;
  fill(p, 8 * PAGE, 5);
  printf("nattch before exec %ld\n", nattch(id));
  fflush(stdout);
  snprintf(ids, sizeof ids, "%d", id);
  execl(self, self, "exec-check", ids, (char *)NULL);
  return fail("execl");
}

/* ---- signals ----------------------------------------------------------------------------- */

static sigjmp_buf jb;
static volatile sig_atomic_t got_sig, got_code;
static void *volatile got_addr;
static volatile sig_atomic_t mask_had_usr2;

static void on_segv_info(int sig, siginfo_t *si, void *ctx) {
  sigset_t cur;

  (void)ctx;
  got_sig = sig;
  got_code = si->si_code;
  got_addr = si->si_addr;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  mask_had_usr2 = sigismember(&cur, SIGUSR2);
  siglongjmp(jb, 1);
}

static void on_segv_plain(int sig) {
  got_sig = sig;
  siglongjmp(jb, 1);
}

static const char *code_name(int code) {
  switch (code) {
  case SEGV_MAPERR: return "SEGV_MAPERR";
  case SEGV_ACCERR: return "SEGV_ACCERR";
  default:          return "other";
  }
}

/* Touches *p and reports what the application's handler saw. */
static void probe(const char *what, volatile char *p, int write, void *want_addr) {
  got_sig = 0;
  got_code = 0;
  got_addr = NULL;
  if (sigsetjmp(jb, 1) == 0) {
    if (write)
      *p = 1;
    else
      (void)*p;
    printf("%s: no signal\n", what);
    return;
  }
  printf("%s: signal %d code %s addr %s\n", what, (int)got_sig,
         got_sig == SIGSEGV && got_code ? code_name(got_code) : "-",
         got_addr == want_addr ? "right" : "wrong");
}

static void *touch_blocked(void *arg) {
  sigset_t all;
  volatile unsigned char *p = arg;

  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  p[2 * PAGE] = 42; /* a page nobody touched yet: a segment fault to serve */
  return (void *)(uintptr_t)p[2 * PAGE];
}

static volatile unsigned char *usr1_page;
static volatile int usr1_read = -1;

static void on_usr1(int sig) {
  (void)sig;
  usr1_read = usr1_page[0]; /* faults on a page of the segment inside a full-mask handler */
}

/* signals: the application's handlers with a segment attached, as with the kernel. */
static int cmd_signals(void) {
  struct sigaction sa, old;
  volatile unsigned char *p;
  void *rd;
  sigset_t all;
  pthread_t th;
  void *res;
  int id;

  p = new_seg(4, &id);
  if (p == NULL)
    return 1;
  p[0] = 1; /* the shim is live: one page resident */

  /* SA_SIGINFO handler with a full sa_mask: a NULL dereference reaches it, siglongjmp out. */
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv_info;
  sa.sa_flags = SA_SIGINFO;
  sigfillset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, NULL);
  probe("null read", NULL, 0, NULL);
  printf("sa_mask applied in handler: %s\n", mask_had_usr2 ? "yes" : "no");
  probe("wild write", (volatile char *)16, 1, (void *)16);
  sigaction(SIGSEGV, NULL, &old);
  printf("handler reported back: %s\n", old.sa_sigaction == on_segv_info ? "yes" : "no");

  /* The segment still works under the application's handler. */
  p[PAGE] = 7;
  printf("segment page after handler: %d\n", p[PAGE]);

  /* A SHM_RDONLY attachment: a write reaches the handler as the kernel's SIGSEGV. */
  rd = shmat(id, NULL, SHM_RDONLY);
  if (rd == (void *)-1)
    return fail("shmat rdonly");
  printf("rdonly read: %d\n", ((volatile unsigned char *)rd)[PAGE]);
  probe("rdonly write resident", (volatile char *)rd + PAGE, 1, (char *)rd + PAGE);
  probe("rdonly write untouched", (volatile char *)rd + 3 * PAGE, 1, (char *)rd + 3 * PAGE);
  shmdt(rd);

  /* signal(): plain handler, still reached. */
  signal(SIGSEGV, on_segv_plain);
  probe("signal() handler", NULL, 0, NULL);
  /* SA_RESETHAND: one shot, then SIG_DFL is what sigaction reports. */
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigaction(SIGSEGV, &sa, NULL);
  probe("resethand", NULL, 0, NULL);
  sigaction(SIGSEGV, NULL, &old);
  printf("after resethand: %s\n", old.sa_handler == SIG_DFL ? "SIG_DFL" : "handler");

  /* Blocking every signal does not stop segment faults from being served. */
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  p[3 * PAGE] = 9;
  printf("blocked main thread wrote: %d\n", p[3 * PAGE]);
  sigprocmask(SIG_UNBLOCK, &all, NULL);
  pthread_create(&th, NULL, touch_blocked, (void *)p);
  pthread_join(th, &res);
  printf("blocked thread wrote: %d\n", (int)(uintptr_t)res);

  /* A handler with a full sa_mask that touches the segment. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigfillset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  usr1_page = p + 2 * PAGE;
  raise(SIGUSR1);
  printf("full-mask handler read: %d\n", usr1_read);

  shmdt((void *)p);
  shmctl(id, IPC_RMID, NULL);
  return 0;
}

/* segv-default: no handler; a NULL dereference kills as it would natively. */
static int cmd_segv_default(void) {
  volatile int *p = NULL;
  int id;
  volatile unsigned char *s = new_seg(1, &id);

  if (s == NULL)
    return 1;
  s[0] = 1;
  shmctl(id, IPC_RMID, NULL); /* destroyed when the process dies */
  return *p;
}

/* rdonly-default: no handler; a write to a SHM_RDONLY attachment kills with SIGSEGV. */
static int cmd_rdonly_default(void) {
  int id;
  volatile unsigned char *s = new_seg(1, &id), *r;

  if (s == NULL)
    return 1;
  s[0] = 1;
  r = shmat(id, NULL, SHM_RDONLY);
  shmctl(id, IPC_RMID, NULL);
  if (r == (void *)-1)
    return fail("shmat");
  printf("read %d\n", r[0]);
  fflush(stdout);
  r[0] = 2;
  return 0;
}

/* ---- server loss ------------------------------------------------------------------------- */

/* lose: attach, touch page 0, say "ready"; then call shmctl until it fails (the test stops
 * or kills the server), print the errno, and touch a page never fetched: SIGBUS. */
static int cmd_lose(void) {
  struct timespec ts = {0, 10 * 1000 * 1000};
  volatile unsigned char *p;
  struct shmid_ds ds;
  int id, i;

  p = new_seg(128, &id); /* far more than the shim fetches ahead of a fault */
  if (p == NULL)
    return 1;
  p[0] = 1;
  printf("ready\n");
  fflush(stdout);
  for (i = 0; i < 3000 && shmctl(id, IPC_STAT, &ds) == 0; i++)
    nanosleep(&ts, NULL);
  printf("shmctl: %s\n", errno == ETIMEDOUT ? "ETIMEDOUT" : errno == ENOTCONN ? "ENOTCONN" :
                           strerror(errno));
  fflush(stdout);
  return p[100 * PAGE] + 100; /* SIGBUS here */
}

/* ---- the application takes a view's memory (issue 9) ---- */

/* Writes and reads back every byte of [p, p+len) as the program's own memory. */
static int own_memory_ok(unsigned char *p, size_t len) {
  for (size_t i = 0; i < len; i++)
    p[i] = (unsigned char)(i * 7 + 1);
  for (size_t i = 0; i < len; i++)
    if (p[i] != (unsigned char)(i * 7 + 1))
      return 0;
  return 1;
}

/* Another segment attached and faulted on, so that the shim changes protections somewhere
 * after the view went (it must never touch the memory that was the view's). */
static int other_activity(void) {
  int id;
  volatile unsigned char *q = new_seg(8, &id);

  if (q == NULL)
    return -1;
  for (int i = 0; i < 8; i++)
    q[i * PAGE] = (unsigned char)i;
  shmdt((const void *)q);
  shmctl(id, IPC_RMID, NULL);
  return 0;
}

/* stress-ng --shm-sysv: attach, attach again at the same address with SHM_REMAP|SHM_RDONLY,
 * one shmdt. The second attachment replaces the first, which the kernel detaches. */
static int cmd_remap(void) {
  int id;
  unsigned char *p = new_seg(4, &id), *q;

  if (p == NULL)
    return 1;
  p[0] = 42;
  q = shmat(id, p, SHM_REMAP | SHM_RDONLY);
  if (q == (void *)-1)
    return fail("shmat SHM_REMAP");
  printf("same address: %s\n", q == p ? "yes" : "no");
  printf("nattch after remap %ld\n", nattch(id));
  printf("read through the new attachment %d\n", q[0]);
  printf("shmdt %d\n", shmdt(q));
  printf("nattch after shmdt %ld\n", nattch(id));
  printf("second shmdt %s\n", shmdt(q) < 0 && errno == EINVAL ? "EINVAL" : "succeeded");
  /* The range is the program's again: it maps its own memory there. */
  if (mmap(p, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
      p)
    return fail("mmap over the old range");
  if (other_activity() < 0)
    return 1;
  printf("own memory there: %s\n", own_memory_ok(p, 4 * PAGE) ? "intact" : "damaged");
  munmap(p, 4 * PAGE);
  shmctl(id, IPC_RMID, NULL);
  return 0;
}

/* munmap or mmap(MAP_FIXED) over a whole view: the attachment goes. */
static int cmd_unmap_view(int fixed) {
  int id;
  unsigned char *p = new_seg(4, &id);

  if (p == NULL)
    return 1;
  p[PAGE] = 7;
  if (fixed) {
    if (mmap(p, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
             0) != p)
      return fail("mmap MAP_FIXED");
  } else if (munmap(p, 4 * PAGE) < 0) {
    return fail("munmap");
  }
  printf("nattch %ld\n", nattch(id));
  printf("shmdt there %s\n", shmdt(p) < 0 && errno == EINVAL ? "EINVAL" : "succeeded");
  if (!fixed &&
      mmap(p, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p)
    return fail("mmap");
  if (other_activity() < 0)
    return 1;
  printf("own memory there: %s\n", own_memory_ok(p, 4 * PAGE) ? "intact" : "damaged");
  munmap(p, 4 * PAGE);
  /* The data stays in the segment. */
  p = shmat(id, NULL, SHM_RDONLY);
  if (p == (void *)-1)
    return fail("shmat");
  printf("segment keeps %d\n", p[PAGE]);
  shmdt(p);
  shmctl(id, IPC_RMID, NULL);
  return 0;
}

/* shmat at an explicit address into a hole the segment fits exactly. */
static int cmd_exact_hole(void) {
  int id = shmget(IPC_PRIVATE, 2 * PAGE, IPC_CREAT | 0600);
  unsigned char *r, *p;

  if (id < 0)
    return fail("shmget");
  r = mmap(NULL, 4 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED || munmap(r + PAGE, 2 * PAGE) < 0)
    return fail("mmap");
  p = shmat(id, r + PAGE, 0);
  printf("attached in an exact hole: %s\n", p == r + PAGE ? "yes" : strerror(errno));
  if (p != (void *)-1) {
    p[0] = p[PAGE] = 1;
    printf("written: %d\n", p[0] + p[PAGE]);
    shmdt(p);
  }
  munmap(r, 4 * PAGE);
  shmctl(id, IPC_RMID, NULL);
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: transp fork-workers W N | fork-threads T N K M | fork-chain |\n"
                  "  fork-exit-writes | exit-thread | exec | signals | segv-default |\n"
                  "  rdonly-default | lose | remap | unmap-view | mmap-over-view | exact-hole\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";

  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(cmd, "fork-workers") == 0 && argc == 4)
    return cmd_fork_workers(atol(argv[2]), atol(argv[3]));
  if (strcmp(cmd, "fork-threads") == 0 && argc == 6)
    return cmd_fork_threads(atol(argv[2]), atol(argv[3]), atol(argv[4]), atol(argv[5]));
  if (strcmp(cmd, "fork-chain") == 0)
    return cmd_fork_chain();
  if (strcmp(cmd, "fork-exit-writes") == 0)
    return cmd_fork_exit_writes();
  if (strcmp(cmd, "exit-thread") == 0)
    return cmd_exit_thread("/proc/self/exe");
  if (strcmp(cmd, "exit-thread-fill") == 0 && argc == 3)
    return cmd_exit_thread_fill(atoi(argv[2]));
  if (strcmp(cmd, "exec") == 0)
    return cmd_exec("/proc/self/exe");
  if (strcmp(cmd, "exec-check") == 0 && argc == 3)
    return cmd_exec_check(atoi(argv[2]));
  if (strcmp(cmd, "signals") == 0)
    return cmd_signals();
  if (strcmp(cmd, "segv-default") == 0)
    return cmd_segv_default();
  if (strcmp(cmd, "rdonly-default") == 0)
    return cmd_rdonly_default();
  if (strcmp(cmd, "lose") == 0)
    return cmd_lose();
  if (strcmp(cmd, "remap") == 0)
    return cmd_remap();
  if (strcmp(cmd, "unmap-view") == 0)
    return cmd_unmap_view(0);
  if (strcmp(cmd, "mmap-over-view") == 0)
    return cmd_unmap_view(1);
  if (strcmp(cmd, "exact-hole") == 0)
    return cmd_exact_hole();
  return usage();
}
