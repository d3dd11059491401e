/* progs.h - what the test programs of tests/progs share: failing with a message, attaching a
 * segment by key, a deadline. A program defines PROG (its name in messages) first. Static
 * inline: a program that uses only some of them compiles without warnings. */
#ifndef DSHM_TEST_PROGS_H
#define DSHM_TEST_PROGS_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>

/* Says what failed with errno's text; returns 1 (an exit status). */
static inline int fail(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", PROG, what, strerror(errno));
  return 1;
}

/* The same for a function that returns its error number (pthread_*). */
static inline int fail_rc(const char *what, int rc) {
  errno = rc;
  return fail(what);
}

/* shmget(key, size, shmflg), then attached; NULL (said why) on failure. */
static inline void *attach_flags(key_t key, size_t size, int shmflg) {
  int id = shmget(key, size, shmflg);
  void *p;

  if (id < 0) {
    fail("shmget");
    return NULL;
  }
  p = shmat(id, NULL, 0);
  if (p == (void *)-1) {
    fail("shmat");
    return NULL;
  }
  return p;
}

/* The segment KEY of size bytes, made (create: IPC_EXCL, 0600) or found, attached. */
static inline void *attach(key_t key, size_t size, int create) {
  return attach_flags(key, size, create ? IPC_CREAT | IPC_EXCL | 0600 : 0);
}

/* CLOCK_REALTIME now plus ms: a deadline for the timed waits. */
static inline struct timespec after_ms(long ms) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

#endif
