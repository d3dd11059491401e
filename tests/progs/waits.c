/* waits.c - process-shared primitives in a segment used from several hosts (run under the
 * shim by test_agent.c): a sem_t producer/consumer queue whose parties are separate
 * processes that attach the segment by key.
 *
 *   waits init KEY                    the queue: sem_t empty (16), full (0), lock (1)
 *   waits producer KEY N              puts 1..N
 *   waits consumer KEY WHO N          takes N items, their sum into slot WHO (0..3); a post
 *                                     that never arrives shows as ETIMEDOUT after 20 s
 *   waits sum KEY                     prints the sums, counts and semaphore values, removes
 *   waits timeout KEY MS              sem_timedwait on full (0) for MS: prints the errno and
 *                                     whether at least MS went by
 *   waits minit KEY                   a process-shared mutex (TYPE: normal, recursive,
 *     [TYPE]                          errorcheck, or robust: a robust normal one) and a plain
 *                                     counter it guards
 *   waits mutex KEY PARTIES ROUNDS    after PARTIES processes arrived: ROUNDS locked
 *     [HOLD_US]                       increments (pthread_mutex_lock, or timedlock on odd
 *                                     rounds), each holding the lock HOLD_US (so that the
 *                                     others sleep in the lock, on every host)
 *   waits msum KEY                    prints the counter, removes the segment
 *   waits rhold KEY                   takes the (robust) mutex, counts, prints "held" and
 *                                     waits to be killed holding it
 *   waits rtake KEY MS                a trylock (its result printed), then a timedlock of MS:
 *                                     its result printed; after EOWNERDEAD the mutex is made
 *                                     consistent; counts and unlocks
 *   waits cinit KEY                   a queue of a process-shared mutex and two condition
 *                                     variables (not full, not empty; CLOCK_MONOTONIC)
 *   waits cprod KEY N                 puts 1..N, waiting while the queue is full
 *   waits ccons KEY WHO N             takes N items, waiting while it is empty (20 s at most
 *                                     each: a lost wake shows as ETIMEDOUT)
 *   waits csum KEY                    prints the sums and counts, removes the segment
 *   waits trinit KEY                  a sem_t (process-shared, 0) in page 0 of TR_PAGES pages
 *   waits trwait KEY MS               sem_timedwait of MS on it: prints "woken" or the errno
 *   waits trpost KEY                  sem_post in two halves, as glibc's: the store (value
 *                                     1), then pages read until this process's mapping budget
 *                                     (DSHM_MAX_MAPS, small) lowers its view of page 0, then
 *                                     the FUTEX_WAKE: prints "lowered 1 wake EFAULT" (the
 *                                     kernel finds no key through a view with no access);
 *                                     removes the segment
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PROG "waits"
#include "progs.h"

#define SLOTS  16
#define WAIT_S 20

struct queue {
  sem_t empty, full, lock;
  uint64_t head, tail; /* guarded by lock */
  uint64_t slot[SLOTS];
  uint64_t sum[4], count[4];
};

static int timed(sem_t *s) {
  struct timespec until = after_ms(WAIT_S * 1000L);
  int rc;

  while ((rc = sem_timedwait(s, &until)) != 0 && errno == EINTR)
    ;
  return rc;
}

static int cmd_init(key_t key) {
  struct queue *q = attach(key, sizeof(struct queue), 1);

  if (q == NULL)
    return 1;
  if (sem_init(&q->empty, 1, SLOTS) != 0 || sem_init(&q->full, 1, 0) != 0 ||
      sem_init(&q->lock, 1, 1) != 0)
    return fail("sem_init");
  printf("ready\n");
  return shmdt(q) == 0 ? 0 : fail("shmdt");
}

static int cmd_producer(key_t key, long n) {
  struct queue *q = attach(key, 0, 0);

  if (q == NULL)
    return 1;
  for (long i = 1; i <= n; i++) {
    if (timed(&q->empty) != 0 || sem_wait(&q->lock) != 0)
      return fail("producer: sem_wait");
    q->slot[q->head++ % SLOTS] = (uint64_t)i;
    if (sem_post(&q->lock) != 0 || sem_post(&q->full) != 0)
      return fail("producer: sem_post");
  }
  printf("produced\n");
  return shmdt(q) == 0 ? 0 : fail("shmdt");
}

static int cmd_consumer(key_t key, long who, long n) {
  struct queue *q = attach(key, 0, 0);
  uint64_t sum = 0;

  if (q == NULL || who < 0 || who > 3)
    return 1;
  for (long i = 0; i < n; i++) {
    if (timed(&q->full) != 0)
      return fail("consumer: sem_timedwait");
    if (sem_wait(&q->lock) != 0)
      return fail("consumer: sem_wait");
    sum += q->slot[q->tail++ % SLOTS];
    if (sem_post(&q->lock) != 0 || sem_post(&q->empty) != 0)
      return fail("consumer: sem_post");
  }
  q->sum[who] = sum;
  q->count[who] = (uint64_t)n;
  printf("consumed\n");
  return shmdt(q) == 0 ? 0 : fail("shmdt");
}

static int cmd_sum(key_t key) {
  struct queue *q = attach(key, 0, 0);
  int full, empty, lock, id = shmget(key, 0, 0);

  if (q == NULL)
    return 1;
  if (sem_getvalue(&q->full, &full) != 0 || sem_getvalue(&q->empty, &empty) != 0 ||
      sem_getvalue(&q->lock, &lock) != 0)
    return fail("sem_getvalue");
  printf("sum %" PRIu64 " count %" PRIu64 " full %d empty %d lock %d\n",
         q->sum[0] + q->sum[1] + q->sum[2] + q->sum[3],
         q->count[0] + q->count[1] + q->count[2] + q->count[3], full, empty, lock);
  if (shmdt(q) != 0 || shmctl(id, IPC_RMID, NULL) != 0)
    return fail("cleanup");
  return 0;
}

static int cmd_timeout(key_t key, long ms) {
  struct queue *q = attach(key, 0, 0);
  struct timespec t0, t1, until = after_ms(ms);
  int rc, e;

  if (q == NULL)
    return 1;
  clock_gettime(CLOCK_REALTIME, &t0);
  rc = sem_timedwait(&q->full, &until);
  e = errno;
  clock_gettime(CLOCK_REALTIME, &t1);
  printf("%s waited>=%ldms=%d\n", rc == 0 ? "ok" : strerrorname_np(e), ms,
         (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= ms);
  return shmdt(q) == 0 ? 0 : fail("shmdt");
}

struct locked {
  pthread_mutex_t m;
  uint64_t arrived; /* start barrier */
  uint64_t counter; /* plain: only the mutex makes it exact */
};

static int cmd_minit(key_t key, const char *type) {
  struct locked *l = attach(key, sizeof(struct locked), 1);
  pthread_mutexattr_t a;
  int t = PTHREAD_MUTEX_NORMAL;

  if (l == NULL)
    return 1;
  if (type != NULL && !strcmp(type, "recursive"))
    t = PTHREAD_MUTEX_RECURSIVE;
  else if (type != NULL && !strcmp(type, "errorcheck"))
    t = PTHREAD_MUTEX_ERRORCHECK;
  if (pthread_mutexattr_init(&a) != 0 || pthread_mutexattr_setpshared(&a, 1) != 0 ||
      pthread_mutexattr_settype(&a, t) != 0 ||
      (type != NULL && !strcmp(type, "robust") &&
       pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0) ||
      pthread_mutex_init(&l->m, &a) != 0)
    return fail("pthread_mutex_init");
  printf("ready\n");
  return shmdt(l) == 0 ? 0 : fail("shmdt");
}

/* A mutex party that has not finished after STUCK_S says where it is and exits 3, so that a
 * lost wake-up shows as a diagnosis rather than as a silent hang. */
#define STUCK_S 40
static struct locked *stuck_l;
static volatile long stuck_round = -1;

static void on_stuck(int sig) {
  char buf[200];
  int n;

  (void)sig;
  n = snprintf(buf, sizeof buf,
               "waits: mutex: stuck at round %ld: lock %d owner %d nusers %u arrived %lu\n",
               stuck_round, stuck_l ? stuck_l->m.__data.__lock : -1,
               stuck_l ? stuck_l->m.__data.__owner : -1,
               stuck_l ? stuck_l->m.__data.__nusers : 0,
               stuck_l ? (unsigned long)stuck_l->arrived : 0);
  if (n > 0)
    (void)!write(2, buf, (size_t)n);
  _exit(3);
}

static int cmd_mutex(key_t key, long parties, long rounds, long hold_us) {
  struct locked *l = attach(key, 0, 0);
  struct timespec t0, t;
  int rc;

  if (l == NULL)
    return 1;
  stuck_l = l;
  signal(SIGALRM, on_stuck);
  alarm(STUCK_S);
  __atomic_fetch_add(&l->arrived, 1, __ATOMIC_SEQ_CST);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (__atomic_load_n(&l->arrived, __ATOMIC_SEQ_CST) < (uint64_t)parties) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > WAIT_S) {
      fprintf(stderr, "waits: the other parties did not arrive\n");
      return 1;
    }
  }
  for (long i = 0; i < rounds; i++) {
    struct timespec until = after_ms(WAIT_S * 1000L);
    stuck_round = i;
    rc = i % 2 ? pthread_mutex_timedlock(&l->m, &until) : pthread_mutex_lock(&l->m);
    if (rc != 0) {
      errno = rc;
      return fail("mutex: lock");
    }
    volatile uint64_t *c = &l->counter;
    uint64_t v = *c;
    if (hold_us > 0)
      nanosleep(&(struct timespec){0, hold_us * 1000}, NULL);
    *c = v + 1;
    if ((rc = pthread_mutex_unlock(&l->m)) != 0) {
      errno = rc;
      return fail("mutex: unlock");
    }
  }
  printf("done\n");
  fflush(stdout); /* seen even if the detach below were the part that hangs */
  stuck_round = rounds;
  return shmdt(l) == 0 ? 0 : fail("shmdt");
}

static int cmd_msum(key_t key) {
  struct locked *l = attach(key, 0, 0);
  int id = shmget(key, 0, 0);

  if (l == NULL)
    return 1;
  printf("counter %" PRIu64 "\n", l->counter);
  if (pthread_mutex_destroy(&l->m) != 0 || shmdt(l) != 0 || shmctl(id, IPC_RMID, NULL) != 0)
    return fail("cleanup");
  return 0;
}

static const char *lock_result(int rc) {
  return rc == 0 ? "0" : rc == EOWNERDEAD ? "EOWNERDEAD" : rc == EBUSY ? "EBUSY"
         : rc == ETIMEDOUT ? "ETIMEDOUT" : rc == ENOTRECOVERABLE ? "ENOTRECOVERABLE"
         : strerror(rc);
}

static int cmd_rhold(key_t key) {
  struct locked *l = attach(key, 0, 0);
  int rc;

  if (l == NULL)
    return 1;
  rc = pthread_mutex_lock(&l->m);
  if (rc != 0)
    return fail_rc("rhold: lock", rc);
  l->counter++;
  printf("held\n");
  fflush(stdout);
  for (;;)
    pause();
}

static int cmd_rtake(key_t key, long ms) {
  struct locked *l = attach(key, 0, 0);
  struct timespec until;
  int rc;

  if (l == NULL)
    return 1;
  printf("%s\n", lock_result(pthread_mutex_trylock(&l->m)));
  fflush(stdout);
  until = after_ms(ms);
  rc = pthread_mutex_timedlock(&l->m, &until);
  printf("%s\n", lock_result(rc));
  if (rc == EOWNERDEAD && (rc = pthread_mutex_consistent(&l->m)) != 0)
    return fail_rc("rtake: consistent", rc);
  if (rc != 0)
    return 1;
  l->counter++;
  if ((rc = pthread_mutex_unlock(&l->m)) != 0)
    return fail_rc("rtake: unlock", rc);
  return shmdt(l) == 0 ? 0 : fail("shmdt");
}

struct cqueue {
  pthread_mutex_t m;
  pthread_cond_t notfull, notempty;
  uint64_t n, head, tail; /* guarded by m */
  uint64_t slot[SLOTS];
  uint64_t sum[4], count[4];
};

static int cmd_cinit(key_t key) {
  struct cqueue *q = attach(key, sizeof(struct cqueue), 1);
  pthread_mutexattr_t ma;
  pthread_condattr_t ca;

  if (q == NULL)
    return 1;
  if (pthread_mutexattr_init(&ma) != 0 || pthread_mutexattr_setpshared(&ma, 1) != 0 ||
      pthread_mutex_init(&q->m, &ma) != 0 || pthread_condattr_init(&ca) != 0 ||
      pthread_condattr_setpshared(&ca, 1) != 0 ||
      pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
      pthread_cond_init(&q->notfull, &ca) != 0 || pthread_cond_init(&q->notempty, &ca) != 0)
    return fail("cinit");
  printf("ready\n");
  return shmdt(q) == 0 ? 0 : fail("shmdt");
}

/* Waits on c (with m held) until *n says go; 0 or an error number. */
static int cwait(pthread_cond_t *c, pthread_mutex_t *m, volatile uint64_t *n, uint64_t bad) {
  struct timespec until;
  int rc;

  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += WAIT_S;
  while (*n == bad)
    if ((rc = pthread_cond_timedwait(c, m, &until)) != 0)
      return rc;
  return 0;
}

static int cmd_cprod(key_t key, long n) {
  struct cqueue *q = attach(key, 0, 0);
  int rc;

  if (q == NULL)
    return 1;
  for (long i = 1; i <= n; i++) {
    if ((rc = pthread_mutex_lock(&q->m)) != 0)
      return fail_rc("cprod: lock", rc);
    if ((rc = cwait(&q->notfull, &q->m, &q->n, SLOTS)) != 0)
      return fail_rc("cprod: wait", rc);
    q->slot[q->head++ % SLOTS] = (uint64_t)i;
    q->n++;
    if ((rc = pthread_cond_signal(&q->notempty)) != 0 || (rc = pthread_mutex_unlock(&q->m)))
      return fail_rc("cprod: signal", rc);
  }
  printf("produced\n");
  return shmdt(q) == 0 ? 0 : fail("shmdt");
}

static int cmd_ccons(key_t key, long who, long n) {
  struct cqueue *q = attach(key, 0, 0);
  uint64_t sum = 0;
  int rc;

  if (q == NULL || who < 0 || who > 3)
    return 1;
  for (long i = 0; i < n; i++) {
    if ((rc = pthread_mutex_lock(&q->m)) != 0)
      return fail_rc("ccons: lock", rc);
    if ((rc = cwait(&q->notempty, &q->m, &q->n, 0)) != 0)
      return fail_rc("ccons: wait", rc);
    sum += q->slot[q->tail++ % SLOTS];
    q->n--;
    if ((rc = pthread_cond_signal(&q->notfull)) != 0 || (rc = pthread_mutex_unlock(&q->m)))
      return fail_rc("ccons: signal", rc);
  }
  q->sum[who] = sum;
  q->count[who] = (uint64_t)n;
  printf("consumed\n");
  return shmdt(q) == 0 ? 0 : fail("shmdt");
}

static int cmd_csum(key_t key) {
  struct cqueue *q = attach(key, 0, 0);
  int id = shmget(key, 0, 0);

  if (q == NULL)
    return 1;
  printf("sum %" PRIu64 " count %" PRIu64 " left %" PRIu64 "\n",
         q->sum[0] + q->sum[1] + q->sum[2] + q->sum[3],
         q->count[0] + q->count[1] + q->count[2] + q->count[3], q->n);
  if (pthread_cond_destroy(&q->notfull) != 0 || pthread_cond_destroy(&q->notempty) != 0 ||
      pthread_mutex_destroy(&q->m) != 0 || shmdt(q) != 0 || shmctl(id, IPC_RMID, NULL) != 0)
    return fail("cleanup");
  return 0;
}

#define TR_PAGES 64
#define TR_PAGE  4096

static int cmd_trinit(key_t key) {
  sem_t *s = attach(key, TR_PAGES * TR_PAGE, 1);

  if (s == NULL)
    return 1;
  if (sem_init(s, 1, 0) != 0)
    return fail("sem_init");
  printf("ready\n");
  return shmdt(s) == 0 ? 0 : fail("shmdt");
}

static int cmd_trwait(key_t key, long ms) {
  sem_t *s = attach(key, 0, 0);
  struct timespec until = after_ms(ms);
  int rc;

  if (s == NULL)
    return 1;
  printf("waiting\n");
  fflush(stdout);
  while ((rc = sem_timedwait(s, &until)) != 0 && errno == EINTR)
    ;
  printf("%s\n", rc == 0 ? "woken" : errno == ETIMEDOUT ? "ETIMEDOUT" : strerror(errno));
  return shmdt(s) == 0 ? 0 : fail("shmdt");
}

/* 1 if the mapping that holds p has no access (/proc/self/maps), 0 if it has, -1 if none. */
static int no_access(const void *p) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512], perms[8];
  unsigned long lo, hi;
  int r = -1;

  if (f == NULL)
    return -1;
  while (r < 0 && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && (uintptr_t)p >= lo &&
        (uintptr_t)p < hi)
      r = perms[0] == '-' && perms[1] == '-';
  fclose(f);
  return r;
}

static int cmd_trpost(key_t key) {
  char *seg = attach(key, 0, 0);
  /* glibc's 64-bit sem_t: the value is the low half of its first word, the futex word */
  uint32_t *value = (uint32_t *)(void *)seg;
  volatile char sink;
  int lowered, id = shmget(key, 0, 0);
  long rc;

  if (seg == NULL)
    return 1;
  __atomic_fetch_add(value, 1, __ATOMIC_RELEASE);
  /* every other page: more runs of equal protection than the budget allows */
  for (long t = 0; t < 5000 && no_access(seg) != 1; t++) {
    for (int i = 2; i < TR_PAGES; i += 2)
      sink = seg[(size_t)i * TR_PAGE];
    usleep(1000);
  }
  (void)sink;
  lowered = no_access(seg);
  rc = syscall(SYS_futex, value, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
  printf("lowered %d wake %s\n", lowered, rc >= 0 ? "ok" : errno == EFAULT ? "EFAULT" : strerror(errno));
  if (shmdt(seg) != 0 || shmctl(id, IPC_RMID, NULL) != 0)
    return fail("cleanup");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "init"))
    return cmd_init((key_t)atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "producer"))
    return cmd_producer((key_t)atol(argv[2]), atol(argv[3]));
  if (argc == 5 && !strcmp(argv[1], "consumer"))
    return cmd_consumer((key_t)atol(argv[2]), atol(argv[3]), atol(argv[4]));
  if (argc == 3 && !strcmp(argv[1], "sum"))
    return cmd_sum((key_t)atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "timeout"))
    return cmd_timeout((key_t)atol(argv[2]), atol(argv[3]));
  if ((argc == 3 || argc == 4) && !strcmp(argv[1], "minit"))
    return cmd_minit((key_t)atol(argv[2]), argc == 4 ? argv[3] : NULL);
  if ((argc == 5 || argc == 6) && !strcmp(argv[1], "mutex"))
    return cmd_mutex((key_t)atol(argv[2]), atol(argv[3]), atol(argv[4]),
                     argc == 6 ? atol(argv[5]) : 0);
  if (argc == 3 && !strcmp(argv[1], "msum"))
    return cmd_msum((key_t)atol(argv[2]));
  if (argc == 3 && !strcmp(argv[1], "rhold"))
    return cmd_rhold((key_t)atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "rtake"))
    return cmd_rtake((key_t)atol(argv[2]), atol(argv[3]));
  if (argc == 3 && !strcmp(argv[1], "cinit"))
    return cmd_cinit((key_t)atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "cprod"))
    return cmd_cprod((key_t)atol(argv[2]), atol(argv[3]));
  if (argc == 5 && !strcmp(argv[1], "ccons"))
    return cmd_ccons((key_t)atol(argv[2]), atol(argv[3]), atol(argv[4]));
  if (argc == 3 && !strcmp(argv[1], "csum"))
    return cmd_csum((key_t)atol(argv[2]));
  if (argc == 3 && !strcmp(argv[1], "trinit"))
    return cmd_trinit((key_t)atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "trwait"))
    return cmd_trwait((key_t)atol(argv[2]), atol(argv[3]));
  if (argc == 3 && !strcmp(argv[1], "trpost"))
    return cmd_trpost((key_t)atol(argv[2]));
  fprintf(stderr, "usage: see the head of waits.c\n");
  return 2;
}
