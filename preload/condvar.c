/* condvar.c - owns the interposed pthread_cond_wait/timedwait/clockwait/signal/broadcast for
 * condition variables in networked segments. glibc's algorithm for them has a signaller that
 * sleeps too (until the waiters of a group left it), which no wait of ours could see; so a
 * condition variable in a segment gets a simpler algorithm of the shim's own, in every process
 * (they all run under the shim: the segment is networked): a sequence word that signal and
 * broadcast move and wake, waiters sleeping (shim_netwait) while it has not moved. Every
 * waiter wakes on a signal, and re-takes the mutex before it returns: POSIX allows spurious
 * wake-ups, and callers re-check their predicate. Elsewhere glibc's functions run.
 *
 * glibc's pthread_cond_init (not interposed) leaves the word at 0 and says in __wrefs whether
 * the variable is process-shared (bit 0) and timed on CLOCK_MONOTONIC (bit 1); the shim uses
 * __g_signals[0] as its sequence word and touches nothing else, so glibc's pthread_cond_destroy
 * finds no glibc waiter to wait for. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "boundary.h"
#include "cache.h"
#include "netwait.h"
#include "real.h"

#define WREFS_SHARED    1u /* glibc 2.36: __PTHREAD_COND_SHARED_MASK */
#define WREFS_MONOTONIC 2u /* ... __PTHREAD_COND_CLOCK_MONOTONIC_MASK */

static _Atomic unsigned *seq_of(pthread_cond_t *c) {
  return (_Atomic unsigned *)&c->__data.__g_signals[0];
}

static int is_ours(pthread_cond_t *c) {
  return atomic_load(&shim__nviews) != 0 && shim_netwait_covers(c);
}

/* 0, ETIMEDOUT or an error of the mutex, as pthread_cond_clockwait; -1: glibc's path. */
static int do_wait(pthread_cond_t *c, pthread_mutex_t *m, int clock_given, clockid_t clock,
                   const struct timespec *abstime) {
  unsigned shared, s;
  int rc, lrc;

  if (!is_ours(c))
    return -1;
  if (abstime != NULL && (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000L))
    return EINVAL;
  shared = atomic_load((_Atomic unsigned *)&c->__data.__wrefs);
  if (!clock_given)
    clock = (shared & WREFS_MONOTONIC) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
  pthread_testcancel(); /* a cancellation point */
  /* Read under the mutex: a signal after the unlock moves the word, and the wait's compare
   * fails; one before it was made with the predicate the caller just found false. */
  s = atomic_load(seq_of(c));
  rc = pthread_mutex_unlock(m);
  if (rc != 0)
    return rc;
  rc = shim_netwait((const uint32_t *)seq_of(c), s, !(shared & WREFS_SHARED), clock, abstime);
  lrc = pthread_mutex_lock(m); /* the interposed lock: a mutex in a segment waits as ours */
  if (lrc != 0)
    return lrc;
  return rc == -ETIMEDOUT ? ETIMEDOUT : 0; /* EINTR, EAGAIN, a wake: 0 (spurious is fine) */
}

static int do_wake(pthread_cond_t *c) {
  unsigned shared;

  if (!is_ours(c))
    return -1;
  shared = atomic_load((_Atomic unsigned *)&c->__data.__wrefs);
  atomic_fetch_add(seq_of(c), 1);
  /* Local waiters by their futex; those of other hosts by this host taking the page. */
  syscall(SYS_futex, (unsigned *)seq_of(c),
          FUTEX_WAKE | ((shared & WREFS_SHARED) ? 0 : FUTEX_PRIVATE_FLAG), INT_MAX, NULL, NULL,
          0);
  return 0;
}

SHIM_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) {
  int rc = do_wait(c, m, 0, CLOCK_REALTIME, NULL);

  if (rc == -1)
    return SHIM_REAL(pthread_cond_wait) ? shim_real.pthread_cond_wait(c, m) : ENOSYS;
  return rc;
}

SHIM_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                       const struct timespec *abstime) {
  int rc = do_wait(c, m, 0, CLOCK_REALTIME, abstime);

  if (rc == -1)
    return SHIM_REAL(pthread_cond_timedwait) ? shim_real.pthread_cond_timedwait(c, m, abstime)
                                            : ENOSYS;
  return rc;
}

SHIM_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                                       const struct timespec *abstime) {
  int rc = clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC
               ? do_wait(c, m, 1, clock, abstime) : -1;

  if (rc == -1)
    return SHIM_REAL(pthread_cond_clockwait)
               ? shim_real.pthread_cond_clockwait(c, m, clock, abstime)
               : ENOSYS;
  return rc;
}

SHIM_EXPORT int pthread_cond_signal(pthread_cond_t *c) {
  int rc = do_wake(c);

  if (rc == -1)
    return SHIM_REAL(pthread_cond_signal) ? shim_real.pthread_cond_signal(c) : ENOSYS;
  return rc;
}

SHIM_EXPORT int pthread_cond_broadcast(pthread_cond_t *c) {
  int rc = do_wake(c);

  if (rc == -1)
    return SHIM_REAL(pthread_cond_broadcast) ? shim_real.pthread_cond_broadcast(c) : ENOSYS;
  return rc;
}
