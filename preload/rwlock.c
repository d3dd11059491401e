/* rwlock.c - owns the interposed pthread_rwlock_* lock and unlock calls for read-write locks
 * in networked segments. glibc's algorithm sleeps on three words and hands the lock over
 * through them in unlock, which no wait of ours could see across hosts; so a lock in a
 * segment gets an algorithm of the shim's own, in every process (they all run under the
 * shim: the segment is networked). Its whole state is one word, glibc's __readers, which
 * every waiter sleeps on (shim_netwait): every change that may unblock a waiter writes it,
 * so a remote waiter wakes when its host loses the page, and a local one by the futex wake
 * that the change makes when the SLEEPERS bit says somebody sleeps. Elsewhere glibc's
 * functions run.
 *
 * The word: bit 31 write-locked; bit 30 sleepers; bits 20-29 writers waiting (registered:
 * with PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP they keep new readers out); bits 0-19
 * read locks held (at most RW_MAX_READERS, then EAGAIN). glibc's pthread_rwlock_init (not
 * interposed) and PTHREAD_RWLOCK_INITIALIZER leave it 0, unlocked; the kind (__flags) and
 * the process-shared flag (__shared) are read from glibc's fields, the writer's thread id
 * is kept in __cur_writer as glibc keeps it, and nothing else is touched: glibc's
 * pthread_rwlock_destroy checks nothing. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "boundary.h"
#include "cache.h"
#include "netwait.h"
#include "real.h"
#include "self.h"

#define RW_READERS     0x000fffffu
#define RW_MAX_READERS RW_READERS /* docs/compatibility.md */
#define RW_WWAIT_ONE   0x00100000u
#define RW_WWAIT       0x3ff00000u
#define RW_SLEEPERS    0x40000000u
#define RW_WRITER      0x80000000u

static _Atomic uint32_t *word_of(pthread_rwlock_t *l) {
  return (_Atomic uint32_t *)&l->__data.__readers;
}

static int is_ours(pthread_rwlock_t *l) {
  return atomic_load(&shim__nviews) != 0 && shim_netwait_covers(l);
}

/* glibc 2.36 sets __shared to 1 for a process-shared lock, 0 for a private one. */
static int private_of(pthread_rwlock_t *l) {
  return l->__data.__shared == 0;
}

/* glibc treats PREFER_WRITER_NP as reader preference; only the non-recursive kind keeps new
 * readers out while a writer waits. */
static int prefers_writers(pthread_rwlock_t *l) {
  return l->__data.__flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
}

static int cur_writer(pthread_rwlock_t *l) {
  return __atomic_load_n(&l->__data.__cur_writer, __ATOMIC_RELAXED);
}

/* Every local sleeper (remote ones wake because this host took the page to write). */
static void wake_all(pthread_rwlock_t *l) {
  int op = FUTEX_WAKE | (private_of(l) ? FUTEX_PRIVATE_FLAG : 0), e = errno;

  syscall(SYS_futex, (uint32_t *)word_of(l), op, INT_MAX, NULL, NULL, 0);
  errno = e; /* pthread functions leave errno alone */
}

/* glibc 2.36 checks the clock and the time first, whether or not the call would block. */
static int bad_time(clockid_t clock, const struct timespec *abstime) {
  return abstime != NULL && ((clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) ||
                             abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000L);
}

/* Sets SLEEPERS in *s (and counts a waiting writer: *reg becomes RW_WWAIT_ONE, if reg) and
 * sleeps while the word stays so. 0: look again (*s is the word now), or ETIMEDOUT. */
static int sleep_on(pthread_rwlock_t *l, uint32_t *s, uint32_t *reg, clockid_t clock,
                    const struct timespec *abstime) {
  _Atomic uint32_t *w = word_of(l);
  /* Counted once; with the field full, the writers counted already keep readers out. */
  uint32_t add = reg != NULL && *reg == 0 && (*s & RW_WWAIT) != RW_WWAIT ? RW_WWAIT_ONE : 0;
  uint32_t n = (*s | RW_SLEEPERS) + add;
  int rc, e = errno;

  if (abstime != NULL && abstime->tv_sec < 0)
    return ETIMEDOUT; /* glibc does not sleep until a time before the epoch either */
  if (n != *s && !atomic_compare_exchange_weak_explicit(w, s, n, memory_order_relaxed,
                                                        memory_order_relaxed))
    return 0;
  if (add != 0)
    *reg = add;
  /* -EINTR: POSIX restarts rwlock waits after a handler; -EAGAIN and 0: look again. */
  rc = shim_netwait_own((const uint32_t *)w, n, private_of(l), clock, abstime);
  *s = atomic_load_explicit(w, memory_order_relaxed);
  errno = e;
  return rc == -ETIMEDOUT ? ETIMEDOUT : 0;
}

/* 0 or an error number, as pthread_rwlock_clockrdlock returns it. */
static int rdlock(pthread_rwlock_t *l, int try_, clockid_t clock,
                  const struct timespec *abstime) {
  _Atomic uint32_t *w = word_of(l);
  int writers_first = prefers_writers(l), rc;
  uint32_t s;

  if (bad_time(clock, abstime))
    return EINVAL;
  if (!try_ && cur_writer(l) == shim_self_tid())
    return EDEADLK;
  s = atomic_load_explicit(w, memory_order_relaxed);
  for (;;) {
    if (!(s & RW_WRITER) && !(writers_first && (s & RW_WWAIT))) {
      if ((s & RW_READERS) == RW_MAX_READERS)
        return EAGAIN;
      if (atomic_compare_exchange_weak_explicit(w, &s, s + 1, memory_order_acquire,
                                                memory_order_relaxed))
        return 0;
      continue;
    }
    if (try_)
      return EBUSY;
    rc = sleep_on(l, &s, NULL, clock, abstime);
    if (rc == ETIMEDOUT)
      return rc;
  }
}

/* 0 or an error number, as pthread_rwlock_clockwrlock returns it. */
static int wrlock(pthread_rwlock_t *l, int try_, clockid_t clock,
                  const struct timespec *abstime) {
  _Atomic uint32_t *w = word_of(l);
  uint32_t s, reg = 0; /* RW_WWAIT_ONE once this writer counts among the waiting */
  int rc;

  if (bad_time(clock, abstime))
    return EINVAL;
  if (!try_ && cur_writer(l) == shim_self_tid())
    return EDEADLK;
  s = atomic_load_explicit(w, memory_order_relaxed);
  for (;;) {
    if (!(s & (RW_WRITER | RW_READERS))) {
      if (atomic_compare_exchange_weak_explicit(w, &s, (s | RW_WRITER) - reg,
                                                memory_order_acquire, memory_order_relaxed)) {
        __atomic_store_n(&l->__data.__cur_writer, shim_self_tid(), __ATOMIC_RELAXED);
        return 0;
      }
      continue;
    }
    if (try_)
      return EBUSY;
    rc = sleep_on(l, &s, &reg, clock, abstime);
    if (rc == ETIMEDOUT)
      break;
  }
  /* Readers kept out by this writer may go now. */
  if (reg != 0 && (atomic_fetch_sub(w, reg) & RW_SLEEPERS))
    wake_all(l);
  return ETIMEDOUT;
}

static int unlock(pthread_rwlock_t *l) {
  _Atomic uint32_t *w = word_of(l);
  uint32_t s = atomic_load_explicit(w, memory_order_relaxed), n;

  if ((s & RW_WRITER) && cur_writer(l) == shim_self_tid()) {
    __atomic_store_n(&l->__data.__cur_writer, 0, __ATOMIC_RELAXED);
    s = atomic_fetch_and_explicit(w, ~(RW_WRITER | RW_SLEEPERS), memory_order_release);
    if (s & RW_SLEEPERS)
      wake_all(l); /* the sleepers set the bit again if they must sleep on */
    return 0;
  }
  do {
    if ((s & RW_READERS) == 0)
      return 0; /* not held: glibc says 0 as well */
    n = s - 1;
    /* Only the last reader can unblock anyone (a writer): it wakes. */
    if ((n & RW_READERS) == 0)
      n &= ~RW_SLEEPERS;
  } while (!atomic_compare_exchange_weak_explicit(w, &s, n, memory_order_release,
                                                  memory_order_relaxed));
  if ((s & RW_SLEEPERS) && !(n & RW_SLEEPERS))
    wake_all(l);
  return 0;
}

#define GLIBC(f, ...) (SHIM_REAL(f) ? shim_real.f(__VA_ARGS__) : ENOSYS)

SHIM_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *l) {
  return is_ours(l) ? rdlock(l, 0, CLOCK_REALTIME, NULL) : GLIBC(pthread_rwlock_rdlock, l);
}

SHIM_EXPORT int pthread_rwlock_tryrdlock(pthread_rwlock_t *l) {
  return is_ours(l) ? rdlock(l, 1, CLOCK_REALTIME, NULL) : GLIBC(pthread_rwlock_tryrdlock, l);
}

SHIM_EXPORT int pthread_rwlock_timedrdlock(pthread_rwlock_t *l, const struct timespec *t) {
  return is_ours(l) ? rdlock(l, 0, CLOCK_REALTIME, t) : GLIBC(pthread_rwlock_timedrdlock, l, t);
}

SHIM_EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t c,
                                           const struct timespec *t) {
  return is_ours(l) ? rdlock(l, 0, c, t) : GLIBC(pthread_rwlock_clockrdlock, l, c, t);
}

SHIM_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *l) {
  return is_ours(l) ? wrlock(l, 0, CLOCK_REALTIME, NULL) : GLIBC(pthread_rwlock_wrlock, l);
}

SHIM_EXPORT int pthread_rwlock_trywrlock(pthread_rwlock_t *l) {
  return is_ours(l) ? wrlock(l, 1, CLOCK_REALTIME, NULL) : GLIBC(pthread_rwlock_trywrlock, l);
}

SHIM_EXPORT int pthread_rwlock_timedwrlock(pthread_rwlock_t *l, const struct timespec *t) {
  return is_ours(l) ? wrlock(l, 0, CLOCK_REALTIME, t) : GLIBC(pthread_rwlock_timedwrlock, l, t);
}

SHIM_EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t c,
                                           const struct timespec *t) {
  return is_ours(l) ? wrlock(l, 0, c, t) : GLIBC(pthread_rwlock_clockwrlock, l, c, t);
}

SHIM_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *l) {
  return is_ours(l) ? unlock(l) : GLIBC(pthread_rwlock_unlock, l);
}
