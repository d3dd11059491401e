/* mutex.c - owns the interposed pthread_mutex_lock/timedlock/clocklock: a process-shared
 * mutex that lives in a networked segment and is contended sleeps through shim_netwait, so
 * that an unlock on another host wakes it. The algorithm and layout stay glibc's (the
 * low-level lock of nptl: 0 free, 1 taken, 2 taken with waiters; the owner's tid, the
 * recursion count and the user count beside it), so glibc's own unlock and trylock, not
 * interposed, keep working in every process. Uncontended locks, and mutexes elsewhere, take
 * glibc's path. Robust process-shared mutexes in networked segments are robust.c's;
 * priority-inheritance and priority-protect ones are glibc's alone: their owner is a kernel
 * thread id that only the kernel of its host can act on. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "boundary.h"
#include "cache.h"
#include "mutexabi.h"
#include "netwait.h"
#include "real.h"
#include "self.h"
#include "robust.h"

/* glibc's own lock and trylock, looked up on first use rather than in the shim's init: the
 * shim's own locks come through these wrappers too, from inside its init. */
static _Atomic(void *) real_lock, real_trylock;

static int glibc_lock(pthread_mutex_t *m) {
  return shim_real_mutex_call(&real_lock, "pthread_mutex_lock", m);
}

static int glibc_trylock(pthread_mutex_t *m) {
  return shim_real_mutex_call(&real_trylock, "pthread_mutex_trylock", m);
}

/* The wait of nptl's __lll_lock_wait / __lll_clocklock_wait: mark the lock contended (2)
 * and sleep while it stays so, until the exchange finds it free. 0, or -ETIMEDOUT /
 * -EINVAL, or 1: not networked after all. */
static int lll_wait(pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime) {
  _Atomic int *lock = (_Atomic int *)&m->__data.__lock;
  int private_ = !(m->__data.__kind & KIND_PSHARED);

  if (abstime != NULL && (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000L))
    return -EINVAL;
  while (atomic_exchange_explicit(lock, 2, memory_order_acquire) != 0) {
    int rc = shim_netwait((const uint32_t *)lock, 2, private_, clock, abstime);
    if (rc == -ETIMEDOUT || rc == 1)
      return rc;
  }
  return 0;
}

/* 0 or an error number as pthread_mutex_clocklock returns it; -1: glibc's own path. */
static int do_lock(pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime) {
  int kind, type, rc;
  pid_t tid;

  /* No view in the process (also: before the shim's init), so no networked mutex. */
  if (atomic_load(&shim__nviews) == 0)
    return -1;
  /* A robust one of ours is never glibc's, not even its trylock (robust.c). */
  if (m->__data.__kind & KIND_ROBUST) {
    rc = shim_robust_lock(m, clock, abstime);
    if (rc != -1)
      return rc;
  }
  /* Uncontended (or ours already, recursively): glibc's trylock is the fast path, and its
   * answer for robust mutexes (EOWNERDEAD, ENOTRECOVERABLE) is the lock's. */
  rc = glibc_trylock(m);
  if (rc != EBUSY)
    return rc;
  kind = m->__data.__kind;
  if ((kind & (KIND_ROBUST | KIND_PI | KIND_PP)) || !shim_netwait_covers(m))
    return -1;
  type = kind & KIND_TYPE_MASK;
  tid = shim_self_tid();
  if (type == KIND_ERRORCHECK && m->__data.__owner == tid)
    return EDEADLK;
  rc = lll_wait(m, clock, abstime);
  if (rc == 1)
    return -1;
  if (rc < 0)
    return -rc;
  m->__data.__owner = tid;
  if (type == KIND_RECURSIVE)
    m->__data.__count = 1;
  ++m->__data.__nusers;
  return 0;
}

SHIM_EXPORT int pthread_mutex_lock(pthread_mutex_t *m) {
  int rc = do_lock(m, CLOCK_REALTIME, NULL);

  return rc == -1 ? glibc_lock(m) : rc;
}

SHIM_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abstime) {
  int rc = do_lock(m, CLOCK_REALTIME, abstime);

  if (rc == -1)
    return SHIM_REAL(pthread_mutex_timedlock) ? shim_real.pthread_mutex_timedlock(m, abstime)
                                             : ENOSYS;
  return rc;
}

SHIM_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock,
                                        const struct timespec *abstime) {
  int rc = clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC ? do_lock(m, clock, abstime)
                                                                : -1;

  if (rc == -1)
    return SHIM_REAL(pthread_mutex_clocklock)
               ? shim_real.pthread_mutex_clocklock(m, clock, abstime)
               : ENOSYS;
  return rc;
}
