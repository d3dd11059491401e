/* rwbar.c - process-shared read-write locks and barriers in a segment used from several hosts
 * (run under the shim by test_agent.c); the parties are separate processes that attach the
 * segment by key.
 *
 *   rwbar rwinit KEY [KIND]          a process-shared rwlock (KIND: reader, writer or
 *                                    writer-nonrecursive, the PTHREAD_RWLOCK_PREFER_*_NP
 *                                    kinds) guarding a plain record of RECORD words
 *   rwbar rw KEY PARTIES ROUNDS      after PARTIES processes arrived, ROUNDS times: a write
 *     HOLD_US                        (wrlock, timedwrlock on odd rounds) that stores the next
 *                                    value into the record word by word, holding the lock
 *                                    HOLD_US; then a read (rdlock, timedrdlock, or tryrdlock
 *                                    then rdlock, in turn) that checks every word is equal,
 *                                    holding it HOLD_US / 2. A torn record, a writer that
 *                                    finds a reader inside or a reader that finds a writer
 *                                    inside fails (exit 1)
 *   rwbar rwsum KEY                  prints the writes counted and the record, removes
 *   rwbar binit KEY N                a process-shared barrier of N parties (N <= MAXP)
 *   rwbar barrier KEY N ROUNDS       one party: ROUNDS times, writes the round into its own
 *                                    slot, waits at the barrier, then checks that every slot
 *                                    holds this round or the next (a party let through early
 *                                    fails); counts its PTHREAD_BARRIER_SERIAL_THREADs
 *   rwbar bsum KEY                   prints the serials of every party summed, destroys the
 *                                    barrier, removes the segment
 *
 * A party that has not finished after STUCK_S says where it is and exits 3, and a timed lock
 * that waits WAIT_S fails with ETIMEDOUT: a lost wake shows as a diagnosis, not a hang. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#define PROG "rwbar"
#include "progs.h"

#define RECORD  64
#define MAXP    16
#define WAIT_S  20
#define STUCK_S 40

struct rw {
  pthread_rwlock_t l;
  uint64_t arrived; /* start barrier (atomic) */
  int64_t inside;   /* readers in their section, -1000 while a writer is in its (atomic) */
  uint64_t writes;  /* plain: only the lock makes it exact */
  uint64_t record[RECORD];
};

struct bar {
  pthread_barrier_t b;
  uint64_t joined;      /* hands out the slots (atomic) */
  uint64_t slot[MAXP];  /* each party's round (atomic stores and loads) */
  uint64_t serial[MAXP];
};

static int detach_remove(key_t key, void *p) {
  int id = shmget(key, 0, 0);

  if (id < 0 || shmdt(p) != 0 || shmctl(id, IPC_RMID, NULL) != 0)
    return fail("cleanup");
  return 0;
}

static struct timespec after_s(int s) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += s;
  return ts;
}

static void hold(long us) {
  if (us > 0)
    nanosleep(&(struct timespec){us / 1000000, (us % 1000000) * 1000}, NULL);
}

static const char *stuck_what = "start";
static volatile long stuck_round = -1;
static volatile uint32_t *stuck_word;

static void on_stuck(int sig) {
  char buf[160];
  int n;

  (void)sig;
  n = snprintf(buf, sizeof buf, "rwbar: stuck in %s at round %ld, word %#x\n", stuck_what,
               stuck_round, stuck_word ? *stuck_word : 0);
  if (n > 0)
    (void)!write(2, buf, (size_t)n);
  _exit(3);
}

static void watch(volatile uint32_t *word) {
  stuck_word = word;
  signal(SIGALRM, on_stuck);
  alarm(STUCK_S);
}

static int cmd_rwinit(key_t key, const char *kind) {
  struct rw *p = attach(key, sizeof(struct rw), 1);
  pthread_rwlockattr_t a;
  int k = PTHREAD_RWLOCK_PREFER_READER_NP;

  if (p == NULL)
    return 1;
  if (kind != NULL && !strcmp(kind, "writer"))
    k = PTHREAD_RWLOCK_PREFER_WRITER_NP;
  else if (kind != NULL && !strcmp(kind, "writer-nonrecursive"))
    k = PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
  if (pthread_rwlockattr_init(&a) != 0 || pthread_rwlockattr_setpshared(&a, 1) != 0 ||
      pthread_rwlockattr_setkind_np(&a, k) != 0 || pthread_rwlock_init(&p->l, &a) != 0)
    return fail("pthread_rwlock_init");
  printf("ready\n");
  return shmdt(p) == 0 ? 0 : fail("shmdt");
}

static int write_round(struct rw *p, long i, long hold_us) {
  struct timespec until = after_s(WAIT_S);
  volatile uint64_t *rec = p->record;
  uint64_t v;
  int rc;

  stuck_what = "wrlock";
  rc = i % 2 ? pthread_rwlock_timedwrlock(&p->l, &until) : pthread_rwlock_wrlock(&p->l);
  if (rc != 0)
    return fail_rc("wrlock", rc);
  if (__atomic_exchange_n(&p->inside, -1000, __ATOMIC_SEQ_CST) != 0) {
    fprintf(stderr, "rwbar: a writer found somebody inside at round %ld\n", i);
    return 1;
  }
  v = rec[0] + 1;
  for (int j = 0; j < RECORD; j++) {
    rec[j] = v;
    if (j == RECORD / 2)
      hold(hold_us); /* half written: a reader let in now sees a torn record */
  }
  p->writes++;
  __atomic_store_n(&p->inside, 0, __ATOMIC_SEQ_CST);
  if ((rc = pthread_rwlock_unlock(&p->l)) != 0)
    return fail_rc("wrunlock", rc);
  return 0;
}

static int read_round(struct rw *p, long i, long hold_us) {
  struct timespec until = after_s(WAIT_S);
  volatile uint64_t *rec = p->record;
  int rc;

  stuck_what = "rdlock";
  switch (i % 3) {
  case 0:
    rc = pthread_rwlock_rdlock(&p->l);
    break;
  case 1:
    rc = pthread_rwlock_timedrdlock(&p->l, &until);
    break;
  default:
    rc = pthread_rwlock_tryrdlock(&p->l);
    if (rc == EBUSY)
      rc = pthread_rwlock_rdlock(&p->l);
  }
  if (rc != 0)
    return fail_rc("rdlock", rc);
  if (__atomic_fetch_add(&p->inside, 1, __ATOMIC_SEQ_CST) < 0) {
    fprintf(stderr, "rwbar: a reader found a writer inside at round %ld\n", i);
    return 1;
  }
  hold(hold_us / 2);
  for (int j = 1; j < RECORD; j++)
    if (rec[j] != rec[0]) {
      fprintf(stderr, "rwbar: torn record at round %ld: word %d is %" PRIu64 ", word 0 %" PRIu64
              "\n", i, j, rec[j], rec[0]);
      return 1;
    }
  __atomic_fetch_sub(&p->inside, 1, __ATOMIC_SEQ_CST);
  if ((rc = pthread_rwlock_unlock(&p->l)) != 0)
    return fail_rc("rdunlock", rc);
  return 0;
}

static int cmd_rw(key_t key, long parties, long rounds, long hold_us) {
  struct rw *p = attach(key, 0, 0);
  struct timespec t0, t;

  if (p == NULL)
    return 1;
  watch(&p->l.__data.__readers);
  __atomic_fetch_add(&p->arrived, 1, __ATOMIC_SEQ_CST);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (__atomic_load_n(&p->arrived, __ATOMIC_SEQ_CST) < (uint64_t)parties) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > WAIT_S) {
      fprintf(stderr, "rwbar: the other parties did not arrive\n");
      return 1;
    }
  }
  for (long i = 0; i < rounds; i++) {
    stuck_round = i;
    if (write_round(p, i, hold_us) != 0 || read_round(p, i, hold_us) != 0)
      return 1;
  }
  printf("done\n");
  fflush(stdout);
  stuck_what = "shmdt";
  return shmdt(p) == 0 ? 0 : fail("shmdt");
}

static int cmd_rwsum(key_t key) {
  struct rw *p = attach(key, 0, 0);

  if (p == NULL)
    return 1;
  for (int j = 1; j < RECORD; j++)
    if (p->record[j] != p->record[0])
      return fprintf(stderr, "rwbar: torn record at the end\n"), 1;
  printf("writes %" PRIu64 " record %" PRIu64 "\n", p->writes, p->record[0]);
  if (pthread_rwlock_destroy(&p->l) != 0)
    return fail("pthread_rwlock_destroy");
  return detach_remove(key, p);
}

static int cmd_binit(key_t key, long n) {
  struct bar *p = attach(key, sizeof(struct bar), 1);
  pthread_barrierattr_t a;

  if (p == NULL || n < 1 || n > MAXP)
    return 1;
  if (pthread_barrierattr_init(&a) != 0 || pthread_barrierattr_setpshared(&a, 1) != 0 ||
      pthread_barrier_init(&p->b, &a, (unsigned)n) != 0)
    return fail("pthread_barrier_init");
  printf("ready\n");
  return shmdt(p) == 0 ? 0 : fail("shmdt");
}

static int cmd_barrier(key_t key, long n, long rounds) {
  struct bar *p = attach(key, 0, 0);
  uint64_t me, serials = 0;

  if (p == NULL || n < 1 || n > MAXP)
    return 1;
  watch((volatile uint32_t *)&p->b);
  me = __atomic_fetch_add(&p->joined, 1, __ATOMIC_SEQ_CST);
  if (me >= (uint64_t)n)
    return fprintf(stderr, "rwbar: more than %ld parties\n", n), 1;
  stuck_what = "barrier";
  for (long r = 1; r <= rounds; r++) {
    int rc;
    stuck_round = r;
    __atomic_store_n(&p->slot[me], (uint64_t)r, __ATOMIC_SEQ_CST);
    rc = pthread_barrier_wait(&p->b);
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
      serials++;
    else if (rc != 0)
      return fail_rc("pthread_barrier_wait", rc);
    for (long j = 0; j < n; j++) {
      uint64_t s = __atomic_load_n(&p->slot[j], __ATOMIC_SEQ_CST);
      if (s != (uint64_t)r && s != (uint64_t)r + 1) {
        fprintf(stderr, "rwbar: after the barrier of round %ld party %ld is at round %" PRIu64
                "\n", r, j, s);
        return 1;
      }
    }
  }
  p->serial[me] = serials;
  printf("done\n");
  fflush(stdout);
  stuck_what = "shmdt";
  return shmdt(p) == 0 ? 0 : fail("shmdt");
}

static int cmd_bsum(key_t key) {
  struct bar *p = attach(key, 0, 0);
  uint64_t sum = 0;

  if (p == NULL)
    return 1;
  for (int j = 0; j < MAXP; j++)
    sum += p->serial[j];
  printf("serials %" PRIu64 "\n", sum);
  if (pthread_barrier_destroy(&p->b) != 0)
    return fail("pthread_barrier_destroy");
  return detach_remove(key, p);
}

int main(int argc, char **argv) {
  if ((argc == 3 || argc == 4) && !strcmp(argv[1], "rwinit"))
    return cmd_rwinit((key_t)atol(argv[2]), argc == 4 ? argv[3] : NULL);
  if (argc == 6 && !strcmp(argv[1], "rw"))
    return cmd_rw((key_t)atol(argv[2]), atol(argv[3]), atol(argv[4]), atol(argv[5]));
  if (argc == 3 && !strcmp(argv[1], "rwsum"))
    return cmd_rwsum((key_t)atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "binit"))
    return cmd_binit((key_t)atol(argv[2]), atol(argv[3]));
  if (argc == 5 && !strcmp(argv[1], "barrier"))
    return cmd_barrier((key_t)atol(argv[2]), atol(argv[3]), atol(argv[4]));
  if (argc == 3 && !strcmp(argv[1], "bsum"))
    return cmd_bsum((key_t)atol(argv[2]));
  fprintf(stderr, "usage: see the head of rwbar.c\n");
  return 2;
}
