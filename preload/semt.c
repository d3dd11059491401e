/* semt.c - owns the interposed sem_wait/sem_timedwait/sem_clockwait: a POSIX semaphore
 * (sem_t) that lives in a networked segment waits through shim_netwait, so that a sem_post on
 * another host wakes it. The semaphore's algorithm and layout stay glibc's (sem_post,
 * sem_trywait, sem_getvalue are glibc's own, not interposed): a 64-bit word whose low half is
 * the value and high half the number of waiters, which glibc's sem_post reads to decide
 * whether to wake (nptl/sem_waitcommon.c, the 64-bit variant). Elsewhere the real functions
 * run. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "boundary.h"
#include "lifecycle.h"
#include "netwait.h"
#include "real.h"

/* glibc's struct new_sem on a 64-bit machine (sysdeps/nptl/internaltypes.h): its ABI. */
struct glibc_sem {
  _Atomic uint64_t data;
  int private_;  /* 0: process-private; 128: process-shared (glibc's LLL_SHARED) */
  int pad;
};
#define VALUE_MASK     UINT64_C(0xffffffff)
#define NWAITERS_SHIFT 32
#define ONE_WAITER     (UINT64_C(1) << NWAITERS_SHIFT)

_Static_assert(sizeof(struct glibc_sem) <= sizeof(sem_t), "sem_t is glibc's");

/* The slow path, glibc's: counted among the waiters (so that sem_post wakes), sleep while
 * the value is 0, take one when it is not. 0, or -ETIMEDOUT / -EINTR (not counted any
 * more), or 1 (not networked after all: the caller runs the real function). */
static int wait_slow(struct glibc_sem *s, clockid_t clock, const struct timespec *abstime) {
  uint64_t d = atomic_fetch_add_explicit(&s->data, ONE_WAITER, memory_order_acquire) +
               ONE_WAITER;
  int rc;

  for (;;) {
    if ((d & VALUE_MASK) == 0) {
      /* glibc's "private" field: 0 (FUTEX_PRIVATE) for a process-private semaphore,
       * FUTEX_PRIVATE_FLAG (its FUTEX_SHARED) for a process-shared one. */
      rc = shim_netwait((const uint32_t *)&s->data, 0, s->private_ == 0, clock, abstime);
      if (rc == 1 || rc == -ETIMEDOUT || rc == -EINTR) {
        atomic_fetch_sub_explicit(&s->data, ONE_WAITER, memory_order_relaxed);
        return rc;
      }
      d = atomic_load_explicit(&s->data, memory_order_relaxed);
    } else if (atomic_compare_exchange_weak_explicit(&s->data, &d, d - 1 - ONE_WAITER,
                                                     memory_order_acquire,
                                                     memory_order_relaxed)) {
      return 0;
    }
  }
}

/* 0 or -errno as sem_clockwait; 1: not a networked semaphore. */
static int do_wait(sem_t *sem, clockid_t clock, const struct timespec *abstime) {
  struct glibc_sem *s = (struct glibc_sem *)(void *)sem;

  if (shim_init() < 0 || !shim_netwait_covers(sem))
    return 1;
  if (abstime != NULL && (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000L))
    return -EINVAL;
  pthread_testcancel(); /* sem_wait is a cancellation point */
  if (sem_trywait(sem) == 0) /* glibc's own fast path (not interposed) */
    return 0;
  return wait_slow(s, clock, abstime);
}

SHIM_EXPORT int sem_wait(sem_t *sem) {
  int rc = do_wait(sem, CLOCK_REALTIME, NULL);

  if (rc == 1)
    return shim_real.sem_wait ? shim_real.sem_wait(sem) : (int)shim_ret(-ENOSYS);
  return (int)shim_ret(rc);
}

SHIM_EXPORT int sem_timedwait(sem_t *sem, const struct timespec *abstime) {
  int rc = do_wait(sem, CLOCK_REALTIME, abstime);

  if (rc == 1)
    return shim_real.sem_timedwait ? shim_real.sem_timedwait(sem, abstime)
                                   : (int)shim_ret(-ENOSYS);
  return (int)shim_ret(rc);
}

SHIM_EXPORT int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *abstime) {
  int rc = clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC ? do_wait(sem, clock, abstime)
                                                                : 1;

  if (rc == 1)
    return shim_real.sem_clockwait ? shim_real.sem_clockwait(sem, clock, abstime)
                                   : (int)shim_ret(-ENOSYS);
  return (int)shim_ret(rc);
}
