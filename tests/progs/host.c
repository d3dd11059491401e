/* host.c - SysV workloads that need one host's semantics: shared futexes, fork, exits and kills.
 *
 * A plain SysV program (no dshm headers): natively the kernel is the oracle; under the shim
 * every process with the same DSHM_AGENT_DIR (one host agent) must behave as on one kernel. Every subcommand prints normalized lines (no ids, pids, addresses or times).
 * Exit status: 0 success, 1 a check failed (message on stderr), 2 usage.
 *
 *   host counter KEY N ROUNDS      barrier of N processes, then ROUNDS atomic increments of the
 *                                  first word; prints "started" after the barrier, then "done"
 *   host sum KEY                   prints "sum V" (the counter word)
 *   host mutex KEY NPROC ROUNDS [reattach]
 *                                  NPROC forked children increment a plain counter under a
 *                                  process-shared pthread mutex; "mutex counter V"
 *   host sem KEY NITEMS            2 producers and 2 consumers (forked) over a bounded buffer
 *                                  guarded by process-shared sem_t; "sem sum V count C"
 *   host exitwrite KEY PAGES       a forked child writes the page pattern and _exit()s; the
 *                                  parent verifies; "exitwrite ok PAGES"
 *   host verify KEY PAGES          checks the page pattern of an existing segment; "verify ok"
 *   host killwrite KEY PAGES       writes the page pattern, prints "written", waits to be killed
 *   host rmidfork KEY              IPC_RMID, fork, the parent detaches first: the child still
 *                                  reads the segment
 *   host forks KEY N               nattch after N forks and after their exits
 *   host readers KEY MB NPROC [fresh]
 *                                  NPROC forked readers of an MB MiB segment: one copy in
 *                                  memory (Pss/Rss from /proc/PID/smaps); "readers one_copy yes"
 *   host flag KEY ROUNDS ROLE      flag (page 0) / payload (page 1) ping-pong, ROLE 0 or 1
 *   host scan KEY PAGES STRIDE     reads one byte of every STRIDE-th page of a PAGES-page
 *                                  segment (made if missing), in order; "scan ok N" (N pages)
 *   host gens KEY PAGES w|r          w writes generation 1 into PAGES pages, waits for r to have
 *                                  read it, writes generation 2; r reads (in order) and checks
 *                                  each generation; "gens w ok" / "gens r ok"
 *   host turns KEY ROUNDS ROLE NROLES
 *                                  NROLES processes take ROUNDS turns each on one page: at
 *                                  its turn a role checks that the plain counter beside the
 *                                  turn word counts every turn so far, adds one and passes
 *                                  the turn on; "turns ok T" (T: the turns taken in all)
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define SPIN_MS 20000  /* a spin on a shared word gives up (fails) after this */
#define WAIT_S  20     /* timed waits on a mutex or semaphore: a lost wake-up fails, not hangs */
#define MAX_CHILDREN 64

static int fail(const char *what) {
  fprintf(stderr, "host: %s: %s\n", what, strerror(errno));
  return 1;
}

static int failx(const char *what) {
  fprintf(stderr, "host: %s\n", what);
  return 1;
}

static key_t key_arg(const char *s) {
  return (key_t)strtol(s, NULL, 0);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* shmget (flags | 0600) + shmat; NULL after a message on failure. */
static void *attach(key_t key, size_t size, int getflg, int atflg, int *idp) {
  int id = shmget(key, size, getflg | 0600);
  void *p;

  if (id < 0) {
    fail("shmget");
    return NULL;
  }
  p = shmat(id, NULL, atflg);
  if (p == (void *)-1) {
    fail("shmat");
    return NULL;
  }
  if (idp != NULL)
    *idp = id;
  return p;
}

/* A forked child dies with its parent: a parent killed by the test's timeout must not leave
 * children spinning on shared memory. */
static void child_init(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(1);
}

/* Waits for a child; 0 if it exited with 0, else 1 after a message. */
static int reap(pid_t pid, const char *what) {
  int status;

  if (waitpid(pid, &status, 0) != pid)
    return fail("waitpid");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  if (WIFSIGNALED(status))
    fprintf(stderr, "host: %s child killed by signal %d\n", what, WTERMSIG(status));
  else
    fprintf(stderr, "host: %s child exit status %d\n", what, WEXITSTATUS(status));
  return 1;
}

/* Waits for n children in the order they end; after the first failure the others (maybe
 * blocked for good on what the failed one should have done) are killed. 0 if all exited 0. */
static int reap_all(pid_t *kids, long n, const char *what) {
  int bad = 0;

  for (long left = n; left > 0; left--) {
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0)
      return fail("waitpid");
    for (long k = 0; k < n; k++)
      if (kids[k] == pid)
        kids[k] = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
      continue;
    if (WIFSIGNALED(status))
      fprintf(stderr, "host: %s child killed by signal %d\n", what, WTERMSIG(status));
    else if (!bad)
      fprintf(stderr, "host: %s child exit status %d\n", what, WEXITSTATUS(status));
    if (!bad)
      for (long k = 0; k < n; k++)
        if (kids[k] > 0)
          kill(kids[k], SIGKILL);
    bad = 1;
  }
  return bad;
}

/* CLOCK_REALTIME + WAIT_S, the deadline of sem_timedwait and pthread_mutex_timedlock. */
static struct timespec wait_deadline(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += WAIT_S;
  return ts;
}

/* Spins until *word == want (acquire); 0, or -1 after SPIN_MS. */
static int spin_until(uint64_t *word, uint64_t want) {
  long deadline = now_ms() + SPIN_MS;

  while (__atomic_load_n(word, __ATOMIC_ACQUIRE) != want) {
    if (now_ms() > deadline)
      return -1;
    sched_yield();
  }
  return 0;
}

/* Waits until `parties` processes have arrived at the word; 0, or -1 after SPIN_MS. */
static int barrier(uint64_t *word, uint64_t parties) {
  long deadline = now_ms() + SPIN_MS;

  __atomic_fetch_add(word, 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(word, __ATOMIC_ACQUIRE) < parties) {
    if (now_ms() > deadline)
      return -1;
    sched_yield();
  }
  return 0;
}

/* The page pattern: byte i of page p. */
static unsigned char pattern(size_t p, size_t i) {
  return (unsigned char)((p * 31 + i) & 0xff);
}

static void write_pattern(unsigned char *s, size_t pages) {
  for (size_t p = 0; p < pages; p++)
    for (size_t i = 0; i < PAGE; i++)
      s[p * PAGE + i] = pattern(p, i);
}

/* 0 if every byte matches, else 1 after naming the first wrong byte. */
static int check_pattern(const unsigned char *s, size_t pages, const char *who) {
  for (size_t p = 0; p < pages; p++) {
    for (size_t i = 0; i < PAGE; i++) {
      if (s[p * PAGE + i] != pattern(p, i)) {
        fprintf(stderr, "host: %s: page %zu byte %zu is %u, expected %u\n", who, p, i,
                s[p * PAGE + i], pattern(p, i));
        return 1;
      }
    }
  }
  return 0;
}

/* counter KEY N ROUNDS: word 0 is the counter, the first word of page 1 the barrier. */
static int cmd_counter(key_t key, long parties, long rounds) {
  uint64_t *c = attach(key, 2 * PAGE, IPC_CREAT, 0, NULL);

  if (c == NULL)
    return 1;
  if (barrier(c + PAGE / 8, (uint64_t)parties) != 0)
    return failx("counter: the other parties did not arrive");
  printf("started\n");
  for (long i = 0; i < rounds; i++)
    __atomic_fetch_add(c, 1, __ATOMIC_SEQ_CST);
  if (shmdt(c) != 0)
    return fail("shmdt");
  printf("done\n");
  return 0;
}

static int cmd_sum(key_t key) {
  uint64_t *c = attach(key, 0, 0, SHM_RDONLY, NULL);

  if (c == NULL)
    return 1;
  printf("sum %" PRIu64 "\n", __atomic_load_n(c, __ATOMIC_SEQ_CST));
  return shmdt(c) == 0 ? 0 : fail("shmdt");
}

struct mutex_seg {
  pthread_mutex_t m;
  uint64_t arrived; /* start barrier: the children contend from the first round */
  uint64_t counter; /* plain, guarded by m */
};

/* A mutex child: optionally its own attachment instead of the inherited one. */
static int mutex_child(struct mutex_seg *s, int id, long nproc, long rounds, int reattach) {
  if (reattach) {
    if (shmdt(s) != 0)
      return fail("child shmdt");
    s = shmat(id, NULL, 0);
    if (s == (void *)-1)
      return fail("child shmat");
  }
  if (barrier(&s->arrived, (uint64_t)nproc) != 0)
    return failx("mutex: the other children did not arrive");
  for (long i = 0; i < rounds; i++) {
    /* Both entry points; the timed one turns a lost wake-up into a failure, not a hang. */
    struct timespec until = wait_deadline();
    int rc = i % 2 ? pthread_mutex_lock(&s->m) : pthread_mutex_timedlock(&s->m, &until);
    if (rc != 0) {
      errno = rc;
      return fail("pthread_mutex_lock");
    }
    s->counter = s->counter + 1;
    rc = pthread_mutex_unlock(&s->m);
    if (rc != 0) {
      errno = rc;
      return fail("pthread_mutex_unlock");
    }
  }
  return 0;
}

static int cmd_mutex(key_t key, long nproc, long rounds, int reattach) {
  int id;
  struct mutex_seg *s = attach(key, sizeof *s, IPC_CREAT | IPC_EXCL, 0, &id);
  pthread_mutexattr_t attr;
  pid_t kids[MAX_CHILDREN], self = getpid();

  if (s == NULL)
    return 1;
  if (nproc < 1 || nproc > MAX_CHILDREN)
    return 2;
  pthread_mutexattr_init(&attr);
  if (pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
      pthread_mutex_init(&s->m, &attr) != 0)
    return failx("pthread_mutex_init (process-shared) failed");
  pthread_mutexattr_destroy(&attr);
  for (long k = 0; k < nproc; k++) {
    kids[k] = fork();
    if (kids[k] < 0)
      return fail("fork");
    if (kids[k] == 0) {
      child_init(self);
      _exit(mutex_child(s, id, nproc, rounds, reattach));
    }
  }
  if (reap_all(kids, nproc, "mutex") != 0)
    return 1;
  printf("mutex counter %" PRIu64 "\n", s->counter);
  if (pthread_mutex_destroy(&s->m) != 0)
    return failx("pthread_mutex_destroy failed");
  if (shmdt(s) != 0)
    return fail("shmdt");
  return shmctl(id, IPC_RMID, NULL) == 0 ? 0 : fail("IPC_RMID");
}

#define SEM_SLOTS 16

struct sem_seg {
  sem_t empty, full, lock;
  uint64_t head, tail; /* guarded by lock */
  uint64_t slot[SEM_SLOTS];
  uint64_t sum[2], count[2];
};

/* A producer puts 1..nitems into the buffer. */
static int sem_producer(struct sem_seg *s, long nitems) {
  for (long i = 1; i <= nitems; i++) {
    if (sem_wait(&s->empty) != 0 || sem_wait(&s->lock) != 0)
      return fail("sem_wait");
    s->slot[s->head++ % SEM_SLOTS] = (uint64_t)i;
    if (sem_post(&s->lock) != 0 || sem_post(&s->full) != 0)
      return fail("sem_post");
  }
  return 0;
}

/* A consumer takes nitems items and sums them; a lost post shows as ETIMEDOUT. */
static int sem_consumer(struct sem_seg *s, int who, long nitems) {
  uint64_t sum = 0, count = 0;

  for (long i = 0; i < nitems; i++) {
    struct timespec until = wait_deadline();
    while (sem_timedwait(&s->full, &until) != 0) {
      if (errno != EINTR)
        return fail("sem_timedwait");
    }
    if (sem_wait(&s->lock) != 0)
      return fail("sem_wait");
    sum += s->slot[s->tail++ % SEM_SLOTS];
    count++;
    if (sem_post(&s->lock) != 0 || sem_post(&s->empty) != 0)
      return fail("sem_post");
  }
  s->sum[who] = sum;
  s->count[who] = count;
  return 0;
}

static int cmd_sem(key_t key, long nitems) {
  int id, full, empty, lock;
  struct sem_seg *s = attach(key, sizeof *s, IPC_CREAT | IPC_EXCL, 0, &id);
  pid_t kids[4], self = getpid();

  if (s == NULL)
    return 1;
  if (sem_init(&s->empty, 1, SEM_SLOTS) != 0 || sem_init(&s->full, 1, 0) != 0 ||
      sem_init(&s->lock, 1, 1) != 0)
    return fail("sem_init");
  for (int k = 0; k < 4; k++) {
    kids[k] = fork();
    if (kids[k] < 0)
      return fail("fork");
    if (kids[k] == 0) {
      child_init(self);
      _exit(k < 2 ? sem_producer(s, nitems) : sem_consumer(s, k - 2, nitems));
    }
  }
  if (reap_all(kids, 4, "sem") != 0)
    return 1;
  printf("sem sum %" PRIu64 " count %" PRIu64 "\n", s->sum[0] + s->sum[1],
         s->count[0] + s->count[1]);
  if (sem_getvalue(&s->full, &full) != 0 || sem_getvalue(&s->empty, &empty) != 0 ||
      sem_getvalue(&s->lock, &lock) != 0)
    return fail("sem_getvalue");
  printf("sem values full %d empty %d lock %d\n", full, empty, lock);
  sem_destroy(&s->empty);
  sem_destroy(&s->full);
  sem_destroy(&s->lock);
  if (shmdt(s) != 0)
    return fail("shmdt");
  return shmctl(id, IPC_RMID, NULL) == 0 ? 0 : fail("IPC_RMID");
}

/* exitwrite KEY PAGES: the child's writes must outlive its _exit. */
static int cmd_exitwrite(key_t key, long pages) {
  unsigned char *s = attach(key, (size_t)pages * PAGE, IPC_CREAT, 0, NULL);
  pid_t kid, self = getpid();

  if (s == NULL)
    return 1;
  kid = fork();
  if (kid < 0)
    return fail("fork");
  if (kid == 0) {
    child_init(self);
    write_pattern(s, (size_t)pages);
    _exit(0);
  }
  if (reap(kid, "exitwrite") != 0 || check_pattern(s, (size_t)pages, "exitwrite") != 0)
    return 1;
  printf("exitwrite ok %ld\n", pages);
  return shmdt(s) == 0 ? 0 : fail("shmdt");
}

static int cmd_verify(key_t key, long pages) {
  int id;
  struct shmid_ds ds;
  unsigned char *s = attach(key, 0, 0, SHM_RDONLY, &id);

  if (s == NULL)
    return 1;
  if (shmctl(id, IPC_STAT, &ds) != 0)
    return fail("IPC_STAT");
  if (ds.shm_segsz != (size_t)pages * PAGE) {
    fprintf(stderr, "host: verify: segment size %zu, expected %zu\n", (size_t)ds.shm_segsz,
            (size_t)pages * PAGE);
    return 1;
  }
  if (check_pattern(s, (size_t)pages, "verify") != 0)
    return 1;
  printf("verify ok\n");
  return shmdt(s) == 0 ? 0 : fail("shmdt");
}

static int cmd_killwrite(key_t key, long pages) {
  unsigned char *s = attach(key, (size_t)pages * PAGE, IPC_CREAT, 0, NULL);

  if (s == NULL)
    return 1;
  write_pattern(s, (size_t)pages);
  printf("written\n");
  fflush(stdout);
  for (;;)
    pause();
}

/* writedetach KEY PAGES GO: writes the pattern, says "written", waits (bounded, 60 s) for
 * the file GO to exist, detaches, says "detached". */
static int cmd_writedetach(key_t key, long pages, const char *go) {
  unsigned char *s = attach(key, (size_t)pages * PAGE, IPC_CREAT, 0, NULL);

  if (s == NULL)
    return 1;
  write_pattern(s, (size_t)pages);
  printf("written\n");
  fflush(stdout);
  for (int i = 0; access(go, F_OK) != 0; i++) {
    if (i == 6000)
      return fail("no go file");
    usleep(10000);
  }
  if (shmdt(s) < 0)
    return fail("shmdt");
  printf("detached\n");
  return 0;
}

/* IPC_STAT as one normalized line, or the error. */
static void print_stat(const char *what, int id) {
  struct shmid_ds ds;

  if (shmctl(id, IPC_STAT, &ds) != 0) {
    printf("%s: %s\n", what, strerror(errno));
    return;
  }
  printf("%s: nattch=%lu dest=%d\n", what, (unsigned long)ds.shm_nattch,
         (ds.shm_perm.mode & SHM_DEST) != 0);
}

/* The rmidfork child: waits for the parent's "detached", lets a little time pass (an
 * asynchronous destroy after the parent's detach would strike now), then reads. */
static int rmidfork_child(int id, const unsigned char *s, int rfd) {
  char msg[32] = "";
  ssize_t n = read(rfd, msg, sizeof msg - 1);
  struct timespec nap = {0, 100 * 1000000L};

  if (n <= 0 || strcmp(msg, "parent detached") != 0)
    return failx("rmidfork: no word from the parent");
  nanosleep(&nap, NULL);
  print_stat("child stat", id);
  if (check_pattern(s, 3, "rmidfork child") != 0)
    return 1;
  printf("child pattern ok\n");
  printf("child shmdt: %d\n", shmdt(s));
  return 0;
}

static int cmd_rmidfork(key_t key) {
  int id = shmget(key, 3 * PAGE, IPC_CREAT | IPC_EXCL | 0600), fds[2], bad;
  unsigned char *s;
  pid_t kid, self = getpid();

  if (id < 0)
    return fail("shmget");
  s = shmat(id, NULL, 0);
  if (s == (void *)-1)
    return fail("shmat");
  write_pattern(s, 3);
  printf("rmid: %d\n", shmctl(id, IPC_RMID, NULL));
  print_stat("before fork", id);
  if (pipe(fds) != 0)
    return fail("pipe");
  kid = fork();
  if (kid < 0)
    return fail("fork");
  if (kid == 0) {
    child_init(self);
    close(fds[1]);
    _exit(rmidfork_child(id, s, fds[0]));
  }
  close(fds[0]);
  print_stat("after fork", id);
  printf("parent shmdt: %d\n", shmdt(s));
  print_stat("after parent shmdt", id);
  if (write(fds[1], "parent detached", 15) != 15)
    return fail("write");
  close(fds[1]);
  bad = reap(kid, "rmidfork");
  print_stat("after child exit", id);
  if (bad)
    return 1;
  printf("rmidfork ok\n");
  return 0;
}

/* forks KEY N: the children block on a pipe until released, then write one word each. */
static int cmd_forks(key_t key, long n) {
  int id, fds[2];
  uint64_t *w = attach(key, PAGE, IPC_CREAT | IPC_EXCL, 0, &id), sum = 0;
  pid_t kids[MAX_CHILDREN], self = getpid();

  if (w == NULL)
    return 1;
  if (n < 1 || n > MAX_CHILDREN)
    return 2;
  if (pipe(fds) != 0)
    return fail("pipe");
  for (long k = 0; k < n; k++) {
    kids[k] = fork();
    if (kids[k] < 0)
      return fail("fork");
    if (kids[k] == 0) {
      char c;
      child_init(self);
      close(fds[1]);
      while (read(fds[0], &c, 1) > 0)
        ;
      w[k + 1] = (uint64_t)k + 1;
      _exit(0);
    }
  }
  print_stat("nattch after forks", id);
  close(fds[0]);
  close(fds[1]);
  if (reap_all(kids, n, "forks") != 0)
    return 1;
  print_stat("nattch after exits", id);
  for (long k = 0; k < n; k++)
    sum += w[k + 1];
  printf("children wrote %" PRIu64 "\n", sum);
  printf("shmdt: %d\n", shmdt(w));
  print_stat("nattch after shmdt", id);
  printf("rmid: %d\n", shmctl(id, IPC_RMID, NULL));
  return 0;
}

/* What a reader reports to the parent once it has read every page. */
struct reader_report {
  pid_t pid;
  int ok;
  uintptr_t addr;
};

static int reader_child(unsigned char *s, int id, size_t size, int fresh, int rep, int hold) {
  struct reader_report r = {getpid(), 1, 0};
  char c;

  if (fresh) {
    if (shmdt(s) != 0)
      return fail("reader shmdt");
    s = shmat(id, NULL, SHM_RDONLY);
    if (s == (void *)-1)
      return fail("reader shmat");
  }
  for (size_t off = 0; off < size; off += PAGE)
    if (*(volatile unsigned char *)(s + off) != (unsigned char)(off / PAGE * 31))
      r.ok = 0;
  r.addr = (uintptr_t)s;
  if (write(rep, &r, sizeof r) != (ssize_t)sizeof r)
    return fail("reader write");
  close(rep); /* a reader that dies before its report shows as EOF, not as a hang */
  while (read(hold, &c, 1) > 0) /* keeps the attachment until the parent has measured */
    ;
  return r.ok ? 0 : failx("reader saw a wrong byte");
}

/* Sums Rss and Pss (kB) of pid's mappings inside [addr, addr + size); -1 if none. */
static int smaps_of(pid_t pid, uintptr_t addr, size_t size, long *rss, long *pss) {
  char path[64], line[512];
  FILE *f;
  int in = 0, found = 0;

  snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  *rss = *pss = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    long kb;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
      in = lo < addr + size && hi > addr;
      found |= in;
    } else if (in && sscanf(line, "Rss: %ld kB", &kb) == 1) {
      *rss += kb;
    } else if (in && sscanf(line, "Pss: %ld kB", &kb) == 1) {
      *pss += kb;
    }
  }
  fclose(f);
  return found ? 0 : -1;
}

/* readers KEY MB NPROC [fresh]: one copy per host. Natively each page is in memory once,
 * shared by the parent and the readers: the readers' Pss adds up to at most the size. */
static int cmd_readers(key_t key, long mb, long nproc, int fresh) {
  size_t size = (size_t)mb << 20;
  int id, rep[2], hold[2], bad = 0, one_copy = 1;
  unsigned char *s = attach(key, size, IPC_CREAT | IPC_EXCL, 0, &id);
  pid_t kids[MAX_CHILDREN], self = getpid();
  long size_kb = (long)(size >> 10), pss_sum = 0, rss_min = -1;

  if (s == NULL)
    return 1;
  if (nproc < 1 || nproc > MAX_CHILDREN)
    return 2;
  for (size_t off = 0; off < size; off += PAGE)
    memset(s + off, (unsigned char)(off / PAGE * 31), PAGE);
  if (pipe(rep) != 0 || pipe(hold) != 0)
    return fail("pipe");
  for (long k = 0; k < nproc; k++) {
    kids[k] = fork();
    if (kids[k] < 0)
      return fail("fork");
    if (kids[k] == 0) {
      child_init(self);
      close(rep[0]);
      close(hold[1]);
      _exit(reader_child(s, id, size, fresh, rep[1], hold[0]));
    }
  }
  close(rep[1]);
  close(hold[0]);
  for (long k = 0; k < nproc; k++) {
    struct reader_report r;
    long rss, pss;
    if (read(rep[0], &r, sizeof r) != (ssize_t)sizeof r) {
      bad = failx("readers: a reader did not report");
      break;
    }
    if (smaps_of(r.pid, r.addr, size, &rss, &pss) != 0) {
      bad = failx("readers: no mapping of the segment in a reader's smaps");
      break;
    }
    pss_sum += pss;
    if (rss_min < 0 || rss < rss_min)
      rss_min = rss;
  }
  close(hold[1]); /* releases the readers */
  close(rep[0]);
  if (reap_all(kids, nproc, "readers") != 0 || bad)
    return 1;
  one_copy = pss_sum * 10 <= size_kb * 12 && rss_min * 10 >= size_kb * 9;
  fprintf(stderr, "host: readers: size %ld kB, readers' Pss %ld kB (ratio %.2f), "
          "least Rss %ld kB\n", size_kb, pss_sum, (double)pss_sum / (double)size_kb, rss_min);
  printf("readers one_copy %s\n", one_copy ? "yes" : "no");
  if (shmdt(s) != 0)
    return fail("shmdt");
  return shmctl(id, IPC_RMID, NULL) == 0 ? 0 : fail("IPC_RMID");
}

/* Page 0 holds the flag, page 1 the payload: whoever sees flag == r must see payload r. */
struct flag_seg {
  uint64_t flag;
  char pad[PAGE - 8];
  uint64_t payload[PAGE / 8];
};

static uint64_t payload_word(long round, size_t i) {
  return (uint64_t)round * 1000003u + i;
}

/* flag KEY ROUNDS ROLE: role 0 writes the odd rounds, role 1 the even ones; each waits for
 * the other's round, checks its payload, then writes the next. */
static int cmd_flag(key_t key, long rounds, int role) {
  struct flag_seg *s = attach(key, sizeof *s, IPC_CREAT, 0, NULL);

  if (s == NULL)
    return 1;
  if (role != 0 && role != 1)
    return 2;
  for (long r = 1; r <= rounds; r++) {
    if ((r % 2 == 1) == (role == 0)) {
      for (size_t i = 0; i < PAGE / 8; i++)
        s->payload[i] = payload_word(r, i);
      __atomic_store_n(&s->flag, (uint64_t)r, __ATOMIC_RELEASE);
      continue;
    }
    if (spin_until(&s->flag, (uint64_t)r) != 0) {
      fprintf(stderr, "host: flag: round %ld never came\n", r);
      return 1;
    }
    for (size_t i = 0; i < PAGE / 8; i++) {
      if (s->payload[i] != payload_word(r, i)) {
        fprintf(stderr, "host: flag: round %ld: stale payload word %zu\n", r, i);
        return 1;
      }
    }
  }
  printf("flag ok\n");
  return shmdt(s) == 0 ? 0 : fail("shmdt");
}

static int cmd_scan(key_t key, long pages, long stride) {
  volatile uint8_t *s = attach(key, (size_t)pages * PAGE, IPC_CREAT, SHM_RDONLY, NULL);
  unsigned sum = 0;
  long n = 0;

  if (s == NULL)
    return 1;
  if (pages < 1 || stride < 1)
    return 2;
  for (long i = 0; i < pages; i += stride, n++)
    sum += s[(size_t)i * PAGE];
  printf("scan ok %ld\n", sum == 0 ? n : -1L);
  return shmdt((const void *)s) == 0 ? 0 : fail("shmdt");
}

/* gens: two generations of every word of PAGES pages, the control words on page PAGES. */
static uint64_t gen_word(uint64_t gen, size_t p, size_t i) {
  return gen << 48 | (uint64_t)p << 16 | i;
}

static int gen_check(const volatile uint64_t *w, size_t pages, uint64_t gen) {
  for (size_t p = 0; p < pages; p++)
    for (size_t i = 0; i < PAGE / 8; i++)
      if (w[p * (PAGE / 8) + i] != gen_word(gen, p, i)) {
        fprintf(stderr, "host: gens: generation %llu: page %zu word %zu is %#llx\n",
                (unsigned long long)gen, p, i, (unsigned long long)w[p * (PAGE / 8) + i]);
        return 1;
      }
  return 0;
}

static int cmd_gens(key_t key, long pages, const char *role) {
  uint64_t *w = attach(key, (size_t)(pages + 1) * PAGE, IPC_CREAT, 0, NULL);
  uint64_t *ctl;
  int writer = !strcmp(role, "w");

  if (w == NULL)
    return 1;
  if (pages < 1 || (!writer && strcmp(role, "r")))
    return 2;
  ctl = w + (size_t)pages * (PAGE / 8); /* [0]: generation written, [1]: generation read */
  for (uint64_t gen = 1; gen <= 2; gen++) {
    if (writer) {
      if (gen == 2 && spin_until(&ctl[1], 1) != 0)
        return fail("gens: the reader never read generation 1");
      for (size_t p = 0; p < (size_t)pages; p++)
        for (size_t i = 0; i < PAGE / 8; i++)
          w[p * (PAGE / 8) + i] = gen_word(gen, p, i);
      __atomic_store_n(&ctl[0], gen, __ATOMIC_RELEASE);
    } else {
      if (spin_until(&ctl[0], gen) != 0)
        return fail("gens: the writer never wrote");
      if (gen_check(w, (size_t)pages, gen) != 0)
        return 1;
      __atomic_store_n(&ctl[1], gen, __ATOMIC_RELEASE);
    }
  }
  printf("gens %s ok\n", role);
  return shmdt(w) == 0 ? 0 : fail("shmdt");
}

/* Turn-taking on one page (the pattern migratory grants serve: read, then write, then
 * another host): a write lost or a stale copy read shows as a counter that does not match
 * the turn. The segment is removed by the last role. */
struct turns_seg {
  uint64_t turn;  /* whose turn: turn % nroles */
  uint64_t count; /* plain read-modify-write, one per turn */
  uint64_t done;
};

static int cmd_turns(key_t key, long rounds, long role, long nroles) {
  int id;
  struct turns_seg *s = attach(key, sizeof *s, IPC_CREAT, 0, &id);

  if (s == NULL)
    return 1;
  if (nroles < 1 || role < 0 || role >= nroles || rounds < 1)
    return 2;
  for (long r = 0; r < rounds; r++) {
    uint64_t t = (uint64_t)(r * nroles + role);
    if (spin_until(&s->turn, t) != 0) {
      fprintf(stderr, "host: turns: role %ld: turn %llu never came (turn word %llu)\n", role,
              (unsigned long long)t,
              (unsigned long long)__atomic_load_n(&s->turn, __ATOMIC_ACQUIRE));
      return 1;
    }
    uint64_t c = *(volatile uint64_t *)&s->count;
    if (c != t) {
      fprintf(stderr, "host: turns: role %ld at turn %llu found count %llu: a write was lost\n",
              role, (unsigned long long)t, (unsigned long long)c);
      return 1;
    }
    *(volatile uint64_t *)&s->count = c + 1;
    __atomic_store_n(&s->turn, t + 1, __ATOMIC_RELEASE);
  }
  printf("turns ok %llu\n", (unsigned long long)(rounds * nroles));
  if (__atomic_add_fetch(&s->done, 1, __ATOMIC_SEQ_CST) == (uint64_t)nroles)
    (void)shmctl(id, IPC_RMID, NULL);
  return shmdt(s) == 0 ? 0 : fail("shmdt");
}

/* storm KEY PARTIES THREADS: THREADS threads of this process and of the other PARTIES-1
 * processes running the same meet at a barrier (page 0), then all read the storm page at
 * once; prints "storm value V". The host agent must ask the server for that page once. */
#define STORM_PAGE 40 /* not fetched with the barrier page (its faults are isolated ones) */

struct storm {
  uint64_t *w;
  long arrivals;
  uint64_t value;
};

static void *storm_thread(void *arg) {
  struct storm *st = arg;
  long spins = 0;

  __atomic_fetch_add(&st->w[0], 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&st->w[0], __ATOMIC_ACQUIRE) < (uint64_t)st->arrivals)
    if (++spins % 1024 == 0)
      sched_yield();
  st->value = __atomic_load_n(&st->w[STORM_PAGE * (PAGE / 8)], __ATOMIC_ACQUIRE);
  return NULL;
}

static int cmd_storm(key_t key, long parties, long threads) {
  struct storm st[64];
  pthread_t tid[64];
  uint64_t *w = attach(key, (STORM_PAGE + 1) * PAGE, IPC_CREAT, 0, NULL);

  if (w == NULL)
    return 1;
  if (threads < 1 || threads > 64 || parties < 1)
    return 2;
  for (long t = 0; t < threads; t++) {
    st[t] = (struct storm){w, parties * threads, 0};
    if (pthread_create(&tid[t], NULL, storm_thread, &st[t]) != 0)
      return fail("pthread_create");
  }
  for (long t = 0; t < threads; t++)
    pthread_join(tid[t], NULL);
  for (long t = 1; t < threads; t++)
    if (st[t].value != st[0].value)
      return fail("threads read different values");
  printf("storm value %" PRIu64 "\n", st[0].value);
  return shmdt(w) < 0 ? fail("shmdt") : 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: host counter KEY N ROUNDS | sum KEY | mutex KEY NPROC ROUNDS [reattach] |\n"
          "       sem KEY NITEMS | exitwrite KEY PAGES | verify KEY PAGES |\n"
          "       killwrite KEY PAGES | rmidfork KEY | forks KEY N |\n"
          "       readers KEY MB NPROC [fresh] | flag KEY ROUNDS ROLE |\n"
          "       storm KEY PARTIES THREADS | writedetach KEY PAGES GOFILE |\n"
          "       turns KEY ROUNDS ROLE NROLES | scan KEY PAGES STRIDE |\n"
          "       gens KEY PAGES w|r\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *cmd;
  key_t key;

  /* Line-buffered even into a pipe: nothing is pending at fork, children print too. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3)
    return usage();
  cmd = argv[1];
  key = key_arg(argv[2]);
  if (!strcmp(cmd, "counter") && argc == 5)
    return cmd_counter(key, atol(argv[3]), atol(argv[4]));
  if (!strcmp(cmd, "sum") && argc == 3)
    return cmd_sum(key);
  if (!strcmp(cmd, "mutex") && (argc == 5 || (argc == 6 && !strcmp(argv[5], "reattach"))))
    return cmd_mutex(key, atol(argv[3]), atol(argv[4]), argc == 6);
  if (!strcmp(cmd, "sem") && argc == 4)
    return cmd_sem(key, atol(argv[3]));
  if (!strcmp(cmd, "exitwrite") && argc == 4)
    return cmd_exitwrite(key, atol(argv[3]));
  if (!strcmp(cmd, "verify") && argc == 4)
    return cmd_verify(key, atol(argv[3]));
  if (!strcmp(cmd, "killwrite") && argc == 4)
    return cmd_killwrite(key, atol(argv[3]));
  if (!strcmp(cmd, "rmidfork") && argc == 3)
    return cmd_rmidfork(key);
  if (!strcmp(cmd, "forks") && argc == 4)
    return cmd_forks(key, atol(argv[3]));
  if (!strcmp(cmd, "readers") && (argc == 5 || (argc == 6 && !strcmp(argv[5], "fresh"))))
    return cmd_readers(key, atol(argv[3]), atol(argv[4]), argc == 6);
  if (!strcmp(cmd, "writedetach") && argc == 5)
    return cmd_writedetach(key, atol(argv[3]), argv[4]);
  if (!strcmp(cmd, "storm") && argc == 5)
    return cmd_storm(key, atol(argv[3]), atol(argv[4]));
  if (!strcmp(cmd, "scan") && argc == 5)
    return cmd_scan(key, atol(argv[3]), atol(argv[4]));
  if (!strcmp(cmd, "gens") && argc == 5)
    return cmd_gens(key, atol(argv[3]), argv[4]);
  if (!strcmp(cmd, "turns") && argc == 6)
    return cmd_turns(key, atol(argv[3]), atol(argv[4]), atol(argv[5]));
  if (!strcmp(cmd, "flag") && argc == 5)
    return cmd_flag(key, atol(argv[3]), atoi(argv[4]));
  return usage();
}
