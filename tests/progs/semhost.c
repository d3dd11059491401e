/* semhost.c - SysV semaphores between hosts (run under the shim by test_agent.c): a set used
 * as a mutex around a plain counter in a segment, and SEM_UNDO of a killed holder.
 *
 *   semhost init SEMKEY SHMKEY          a set of one semaphore at 1, a zeroed segment
 *   semhost mutex SEMKEY SHMKEY N ROUNDS  after N parties arrived: ROUNDS locked increments
 *   semhost sum SEMKEY SHMKEY           prints "counter C", removes both
 *   semhost hold SEMKEY                 takes the semaphore with SEM_UNDO, prints "held",
 *                                       then waits to be killed
 *   semhost take SEMKEY SECONDS         semtimedop -1 within SECONDS: "taken" or the errno
 *   semhost keep SEMKEY                 looks the set up (so its host agent serves it), prints
 *                                       "kept", then waits to be killed
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

struct counter_seg {
  uint64_t arrived;  /* start barrier: everybody contends from the first round */
  uint64_t counter;  /* plain: only the semaphore makes the increments exact */
};

static int fail(const char *what) {
  fprintf(stderr, "semhost: %s: %s\n", what, strerror(errno));
  return 1;
}

static int sem_add(int id, short op, short flg) {
  struct sembuf b = {0, op, flg};
  return semop(id, &b, 1);
}

static int cmd_init(key_t sk, key_t mk) {
  int sid = semget(sk, 1, IPC_CREAT | IPC_EXCL | 0600);
  int mid = shmget(mk, sizeof(struct counter_seg), IPC_CREAT | IPC_EXCL | 0600);

  if (sid < 0 || mid < 0)
    return fail("semget/shmget");
  if (semctl(sid, 0, SETVAL, 1) < 0)
    return fail("SETVAL");
  printf("ready\n");
  return 0;
}

static int cmd_mutex(key_t sk, key_t mk, long parties, long rounds) {
  int sid = semget(sk, 0, 0), mid = shmget(mk, 0, 0);
  struct counter_seg *s;
  struct timespec t0, t;

  if (sid < 0 || mid < 0)
    return fail("semget/shmget");
  s = shmat(mid, NULL, 0);
  if (s == (void *)-1)
    return fail("shmat");
  __atomic_fetch_add(&s->arrived, 1, __ATOMIC_SEQ_CST);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (__atomic_load_n(&s->arrived, __ATOMIC_SEQ_CST) < (uint64_t)parties) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > 30) {
      fprintf(stderr, "semhost: the other parties did not arrive\n");
      return 1;
    }
  }
  for (long i = 0; i < rounds; i++) {
    if (sem_add(sid, -1, SEM_UNDO) < 0)
      return fail("semop -1");
    volatile uint64_t *c = &s->counter;
    uint64_t v = *c;
    *c = v + 1;
    if (sem_add(sid, 1, SEM_UNDO) < 0)
      return fail("semop +1");
  }
  if (shmdt(s) < 0)
    return fail("shmdt");
  printf("done\n");
  return 0;
}

static int cmd_sum(key_t sk, key_t mk) {
  int sid = semget(sk, 0, 0), mid = shmget(mk, 0, 0);
  struct counter_seg *s;

  if (sid < 0 || mid < 0)
    return fail("semget/shmget");
  s = shmat(mid, NULL, SHM_RDONLY);
  if (s == (void *)-1)
    return fail("shmat");
  printf("counter %" PRIu64 " sem %d\n", s->counter, semctl(sid, 0, GETVAL));
  if (shmdt(s) < 0 || shmctl(mid, IPC_RMID, NULL) < 0 || semctl(sid, 0, IPC_RMID) < 0)
    return fail("cleanup");
  return 0;
}

static int cmd_hold(key_t sk) {
  int sid = semget(sk, 0, 0);

  if (sid < 0)
    return fail("semget");
  if (sem_add(sid, -1, SEM_UNDO) < 0)
    return fail("semop");
  printf("held\n");
  fflush(stdout);
  for (;;)
    pause();
}

static int cmd_keep(key_t sk) {
  if (semget(sk, 0, 0) < 0)
    return fail("semget");
  printf("kept\n");
  fflush(stdout);
  for (;;)
    pause();
}

static int cmd_take(key_t sk, long seconds) {
  int sid = semget(sk, 0, 0);
  struct sembuf b = {0, -1, 0};
  struct timespec to = {seconds, 0};

  if (sid < 0)
    return fail("semget");
  if (semtimedop(sid, &b, 1, &to) < 0) {
    printf("%s\n", strerrorname_np(errno));
    return 0;
  }
  printf("taken\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "init"))
    return cmd_init((key_t)atol(argv[2]), (key_t)atol(argv[3]));
  if (argc == 6 && !strcmp(argv[1], "mutex"))
    return cmd_mutex((key_t)atol(argv[2]), (key_t)atol(argv[3]), atol(argv[4]), atol(argv[5]));
  if (argc == 4 && !strcmp(argv[1], "sum"))
    return cmd_sum((key_t)atol(argv[2]), (key_t)atol(argv[3]));
  if (argc == 3 && !strcmp(argv[1], "hold"))
    return cmd_hold((key_t)atol(argv[2]));
  if (argc == 3 && !strcmp(argv[1], "keep"))
    return cmd_keep((key_t)atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "take"))
    return cmd_take((key_t)atol(argv[2]), atol(argv[3]));
  fprintf(stderr, "usage: see the head of semhost.c\n");
  return 2;
}
