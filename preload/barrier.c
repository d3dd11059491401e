/* barrier.c - owns the interposed pthread_barrier_wait for barriers in networked segments.
 * glibc's waiters sleep in futex_wait on two words (the round, and the arrival counter near
 * its reset, done by the last thread to leave), woken by futex wakes that cannot reach
 * another host; so a barrier in a segment gets a simpler algorithm of the shim's own, in
 * every process (they all run under the shim: the segment is networked), and glibc's
 * function runs elsewhere.
 *
 * On glibc's layout (struct pthread_barrier of sysdeps/nptl/internaltypes.h, glibc 2.36: in,
 * current_round, count, shared, out): `in` counts the arrivals of the round, `current_round`
 * is the round number and the only word waiters sleep on (shim_netwait). The last arriver
 * resets `in` to 0 and then moves the round, which writes the very word every waiter
 * compares (a remote waiter wakes when its host loses the page), and wakes the local
 * sleepers; it alone returns PTHREAD_BARRIER_SERIAL_THREAD. A thread of the next round can
 * only arrive after seeing the round move, so after the reset. glibc's pthread_barrier_init
 * (not interposed) leaves both words at 0, and between rounds `in` is 0 and `out` untouched,
 * which glibc's pthread_barrier_destroy takes as "everyone has left". */
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

struct glibc_barrier { /* glibc 2.36, nptl's struct pthread_barrier */
  unsigned in;
  unsigned current_round;
  unsigned count;
  int shared; /* glibc's LLL_SHARED (FUTEX_PRIVATE_FLAG) for a process-shared barrier, or 0 */
  unsigned out;
};

_Static_assert(sizeof(struct glibc_barrier) <= sizeof(pthread_barrier_t),
               "glibc's barrier layout");

static int is_ours(pthread_barrier_t *b) {
  return atomic_load(&shim__nviews) != 0 && shim_netwait_covers(b);
}

static int barrier_wait(pthread_barrier_t *b) {
  struct glibc_barrier *bar = (struct glibc_barrier *)(void *)b;
  _Atomic unsigned *in = (_Atomic unsigned *)&bar->in;
  _Atomic unsigned *round = (_Atomic unsigned *)&bar->current_round;
  int private_ = !(bar->shared & FUTEX_PRIVATE_FLAG), e = errno;
  unsigned r = atomic_load_explicit(round, memory_order_acquire);

  if (atomic_fetch_add_explicit(in, 1, memory_order_acq_rel) + 1 >= bar->count) {
    atomic_store_explicit(in, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(round, 1, memory_order_release);
    syscall(SYS_futex, (uint32_t *)round, FUTEX_WAKE | (private_ ? FUTEX_PRIVATE_FLAG : 0),
            INT_MAX, NULL, NULL, 0);
    errno = e;
    return PTHREAD_BARRIER_SERIAL_THREAD;
  }
  /* Every return (a wake, a signal handler, a change of the page's host mode) looks again. */
  while (atomic_load_explicit(round, memory_order_acquire) == r)
    shim_netwait_own((const uint32_t *)round, r, private_, CLOCK_REALTIME, NULL);
  errno = e;
  return 0;
}

SHIM_EXPORT int pthread_barrier_wait(pthread_barrier_t *b) {
  if (!is_ours(b))
    return SHIM_REAL(pthread_barrier_wait) ? shim_real.pthread_barrier_wait(b) : ENOSYS;
  return barrier_wait(b);
}
