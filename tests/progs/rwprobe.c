/* rwprobe.c - the differential probe for process-shared read-write locks and barriers in a
 * segment: prints one line per observation (return codes by name, "waited >= MS"), so that a
 * native run (glibc on kernel shm is the oracle) and a run under the shim (the segment
 * networked: the shim's own algorithms) compare line by line.
 *
 * Usage: rwprobe KEY [SECTION], SECTION one of
 *   rw        the error cases: EDEADLK, EBUSY, ETIMEDOUT (a time in the past, before the
 *             epoch, or MS from now on either clock, also with signals arriving meanwhile),
 *             EINVAL (a bad tv_nsec, a bad clock), recursive read locks
 *   writer    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP: a waiting writer keeps new
 *             readers out (tryrdlock EBUSY, timedrdlock ETIMEDOUT), until it gets the lock or
 *             times out
 *   reader    the default kind: readers get in whatever writers wait
 *   barrier   PTHREAD_BARRIER_SERIAL_THREAD exactly once a round, for 3 threads and for 1
 * A writer is known to wait when tryrdlock starts failing, polled against a deadline, never
 * by a sleep. Exits non-zero only when the probe itself cannot run. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#define MS      300
#define POLL_S  5
#define ROUNDS  50
#define THREADS 3

struct seg {
  pthread_rwlock_t l;
  pthread_barrier_t b;
};

static struct seg *seg;

static const char *name(int rc) {
  static char buf[16];
  const char *n = rc == 0 ? "0" : rc == PTHREAD_BARRIER_SERIAL_THREAD ? "SERIAL"
                                                                      : strerrorname_np(rc);
  if (n != NULL)
    return n;
  snprintf(buf, sizeof buf, "%d", rc);
  return buf;
}

static void say(const char *what, int rc) {
  printf("%s: %s\n", what, name(rc));
  fflush(stdout);
}

static struct timespec from_now(clockid_t clock, long ms) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  if (ts.tv_nsec < 0) {
    ts.tv_sec--;
    ts.tv_nsec += 1000000000L;
  }
  return ts;
}

static long ms_since(clockid_t clock, const struct timespec *t0) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A timed lock of MS from now on clock: its result, and whether MS went by. */
static void timed(const char *what, int wr, clockid_t clock) {
  struct timespec t0, until = from_now(clock, MS);
  int rc;

  clock_gettime(clock, &t0);
  rc = wr ? pthread_rwlock_clockwrlock(&seg->l, clock, &until)
          : pthread_rwlock_clockrdlock(&seg->l, clock, &until);
  printf("%s: %s waited>=%dms=%d\n", what, name(rc), MS, ms_since(clock, &t0) >= MS);
  fflush(stdout);
}

static void *other_thread(void *arg) {
  struct timespec past = from_now(CLOCK_REALTIME, -1000), mpast = from_now(CLOCK_MONOTONIC, -1);
  struct timespec bad = {0, 1000000000L}, epoch = {-1, 0};

  (void)arg;
  say("other: tryrdlock", pthread_rwlock_tryrdlock(&seg->l));
  say("other: trywrlock", pthread_rwlock_trywrlock(&seg->l));
  say("other: timedrdlock past", pthread_rwlock_timedrdlock(&seg->l, &past));
  say("other: timedwrlock past", pthread_rwlock_timedwrlock(&seg->l, &past));
  say("other: clockrdlock monotonic past",
      pthread_rwlock_clockrdlock(&seg->l, CLOCK_MONOTONIC, &mpast));
  say("other: clockwrlock monotonic past",
      pthread_rwlock_clockwrlock(&seg->l, CLOCK_MONOTONIC, &mpast));
  say("other: timedrdlock before the epoch", pthread_rwlock_timedrdlock(&seg->l, &epoch));
  say("other: timedwrlock before the epoch", pthread_rwlock_timedwrlock(&seg->l, &epoch));
  say("other: timedrdlock bad nsec", pthread_rwlock_timedrdlock(&seg->l, &bad));
  say("other: timedwrlock bad nsec", pthread_rwlock_timedwrlock(&seg->l, &bad));
  say("other: clockwrlock bad clock",
      pthread_rwlock_clockwrlock(&seg->l, CLOCK_PROCESS_CPUTIME_ID, &mpast));
  timed("other: clockrdlock monotonic", 0, CLOCK_MONOTONIC);
  timed("other: clockwrlock realtime", 1, CLOCK_REALTIME);
  return NULL;
}

static volatile sig_atomic_t hits;
static void on_signal(int sig) {
  (void)sig;
  hits++;
}

static void *signalled_thread(void *arg) {
  (void)arg;
  timed("signalled: clockrdlock realtime", 0, CLOCK_REALTIME);
  return NULL;
}

static int section_rw(void) {
  struct timespec bad = {0, -1}, past = from_now(CLOCK_REALTIME, -1000);
  struct sigaction sa;
  pthread_t t;
  void *done;

  say("wrlock", pthread_rwlock_wrlock(&seg->l));
  say("rdlock while writing", pthread_rwlock_rdlock(&seg->l));
  say("wrlock while writing", pthread_rwlock_wrlock(&seg->l));
  say("tryrdlock while writing", pthread_rwlock_tryrdlock(&seg->l));
  say("trywrlock while writing", pthread_rwlock_trywrlock(&seg->l));
  say("timedrdlock past while writing", pthread_rwlock_timedrdlock(&seg->l, &past));
  say("timedwrlock bad nsec while writing", pthread_rwlock_timedwrlock(&seg->l, &bad));
  say("clockrdlock bad clock while writing",
      pthread_rwlock_clockrdlock(&seg->l, CLOCK_THREAD_CPUTIME_ID, &past));
  if (pthread_create(&t, NULL, other_thread, NULL) != 0 || pthread_join(t, NULL) != 0)
    return 1;
  /* Signals while a thread waits: the wait goes on (never EINTR), and ends on time. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  if (sigaction(SIGUSR1, &sa, NULL) != 0 || pthread_create(&t, NULL, signalled_thread, NULL))
    return 1;
  while (pthread_tryjoin_np(t, &done) == EBUSY) {
    pthread_kill(t, SIGUSR1);
    nanosleep(&(struct timespec){0, 20000000L}, NULL); /* pacing the signals, not a sync */
  }
  say("unlock", pthread_rwlock_unlock(&seg->l));
  say("timedrdlock bad nsec, free", pthread_rwlock_timedrdlock(&seg->l, &bad));
  say("timedrdlock past, free", pthread_rwlock_timedrdlock(&seg->l, &past));
  say("rdlock again", pthread_rwlock_rdlock(&seg->l));
  say("tryrdlock again", pthread_rwlock_tryrdlock(&seg->l));
  say("trywrlock while reading", pthread_rwlock_trywrlock(&seg->l));
  say("timedwrlock past while reading", pthread_rwlock_timedwrlock(&seg->l, &past));
  for (int i = 0; i < 3; i++)
    say("unlock", pthread_rwlock_unlock(&seg->l));
  say("trywrlock, free", pthread_rwlock_trywrlock(&seg->l));
  say("unlock", pthread_rwlock_unlock(&seg->l));
  say("timedwrlock past, free", pthread_rwlock_timedwrlock(&seg->l, &past));
  say("unlock", pthread_rwlock_unlock(&seg->l));
  return 0;
}

static long writer_ms;
static int writer_rc;

static void *writer_thread(void *arg) {
  struct timespec until = from_now(CLOCK_MONOTONIC, writer_ms);

  (void)arg;
  writer_rc = pthread_rwlock_clockwrlock(&seg->l, CLOCK_MONOTONIC, &until);
  if (writer_rc == 0)
    writer_rc = pthread_rwlock_unlock(&seg->l) == 0 ? 0 : -1;
  return NULL;
}

/* With a read lock held, a writer waits (ms at most): tryrdlock polled until it fails, the
 * writer is done, or POLL_S. The result of the last tryrdlock; the writer is joined. */
static int reader_meets_writer(long ms, int (*then)(void)) {
  struct timespec t0;
  pthread_t t;
  int rc, joined = 0;

  writer_ms = ms;
  if (pthread_create(&t, NULL, writer_thread, NULL) != 0)
    return -1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while ((rc = pthread_rwlock_tryrdlock(&seg->l)) == 0) {
    pthread_rwlock_unlock(&seg->l);
    if (ms_since(CLOCK_MONOTONIC, &t0) > POLL_S * 1000)
      break;
    if (pthread_tryjoin_np(t, NULL) == 0) {
      joined = 1;
      break;
    }
  }
  say("tryrdlock while a writer waits", rc);
  if (then != NULL)
    then();
  return joined ? 0 : pthread_join(t, NULL);
}

static int past_rdlock_unlock(void) {
  struct timespec past = from_now(CLOCK_REALTIME, -1000);

  say("timedrdlock past while a writer waits", pthread_rwlock_timedrdlock(&seg->l, &past));
  say("unlock", pthread_rwlock_unlock(&seg->l));
  return 0;
}

static int section_writer(void) {
  say("rdlock", pthread_rwlock_rdlock(&seg->l));
  if (reader_meets_writer(20000, past_rdlock_unlock) != 0)
    return 1;
  say("the writer", writer_rc);
  /* A writer that times out lets readers in again. */
  say("rdlock", pthread_rwlock_rdlock(&seg->l));
  if (reader_meets_writer(1000, NULL) != 0)
    return 1;
  say("the writer", writer_rc);
  say("tryrdlock after it timed out", pthread_rwlock_tryrdlock(&seg->l));
  say("unlock", pthread_rwlock_unlock(&seg->l));
  say("unlock", pthread_rwlock_unlock(&seg->l));
  return 0;
}

static int section_reader(void) {
  say("rdlock", pthread_rwlock_rdlock(&seg->l));
  /* Readers are never kept out: the poll ends when the writer times out. */
  if (reader_meets_writer(MS, NULL) != 0)
    return 1;
  say("the writer", writer_rc);
  say("unlock", pthread_rwlock_unlock(&seg->l));
  return 0;
}

static int serials[THREADS], zeros[THREADS], others[THREADS];

static void *barrier_thread(void *arg) {
  long me = (long)arg;

  for (int r = 0; r < ROUNDS; r++) {
    int rc = pthread_barrier_wait(&seg->b);
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
      serials[me]++;
    else if (rc == 0)
      zeros[me]++;
    else
      others[me]++;
  }
  return NULL;
}

static int section_barrier(void) {
  pthread_barrierattr_t a;
  pthread_t t[THREADS];
  int s = 0, z = 0, o = 0;

  if (pthread_barrierattr_init(&a) != 0 || pthread_barrierattr_setpshared(&a, 1) != 0)
    return 1;
  say("barrier_init 3", pthread_barrier_init(&seg->b, &a, THREADS));
  for (long i = 0; i < THREADS; i++)
    if (pthread_create(&t[i], NULL, barrier_thread, (void *)i) != 0)
      return 1;
  for (int i = 0; i < THREADS; i++) {
    if (pthread_join(t[i], NULL) != 0)
      return 1;
    s += serials[i];
    z += zeros[i];
    o += others[i];
  }
  printf("%d rounds of 3: serial %d zero %d other %d\n", ROUNDS, s, z, o);
  say("barrier_destroy", pthread_barrier_destroy(&seg->b));
  say("barrier_init 1", pthread_barrier_init(&seg->b, &a, 1));
  say("wait", pthread_barrier_wait(&seg->b));
  say("wait", pthread_barrier_wait(&seg->b));
  say("barrier_destroy", pthread_barrier_destroy(&seg->b));
  return 0;
}

int main(int argc, char **argv) {
  const char *section = argc > 2 ? argv[2] : "rw";
  pthread_rwlockattr_t a;
  int id, rc, kind = PTHREAD_RWLOCK_PREFER_READER_NP;

  if (argc < 2)
    return fprintf(stderr, "usage: rwprobe KEY [rw|writer|reader|barrier]\n"), 2;
  id = shmget((key_t)atol(argv[1]), sizeof(struct seg), IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0 || (seg = shmat(id, NULL, 0)) == (void *)-1)
    return perror("rwprobe: shmget/shmat"), 1;
  if (!strcmp(section, "writer"))
    kind = PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
  if (pthread_rwlockattr_init(&a) != 0 || pthread_rwlockattr_setpshared(&a, 1) != 0 ||
      pthread_rwlockattr_setkind_np(&a, kind) != 0 || pthread_rwlock_init(&seg->l, &a) != 0)
    return perror("rwprobe: pthread_rwlock_init"), 1;
  if (!strcmp(section, "rw"))
    rc = section_rw();
  else if (!strcmp(section, "writer"))
    rc = section_writer();
  else if (!strcmp(section, "reader"))
    rc = section_reader();
  else if (!strcmp(section, "barrier"))
    rc = section_barrier();
  else
    return fprintf(stderr, "rwprobe: no section %s\n", section), 2;
  say("rwlock_destroy", pthread_rwlock_destroy(&seg->l));
  if (shmdt(seg) != 0 || shmctl(id, IPC_RMID, NULL) != 0)
    return perror("rwprobe: cleanup"), 1;
  printf("done\n");
  return rc;
}
