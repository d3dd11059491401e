/* netwait.c - owns the futex waits of threads on words in networked segments: the word
 * itself (local wakes: glibc's futex_wake from a process of this host) and the host page
 * table word of its page (the agent wakes it when the host's mode changes, and a remote
 * write needs the page first) in one futex_waitv. */
#include "netwait.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agentpage.h"
#include "cache.h"
#include "kabi.h"

static long waitv(struct dshm_futex_waitv *w, unsigned n, const struct timespec *abstime,
                  clockid_t clock) {
  return syscall(SYS_futex_waitv, w, n, 0, abstime, clock);
}

/* The answers for the last few objects asked about in this thread, while no view came or
 * went: every call of an interposed rwlock, barrier or condition variable asks, and a lookup
 * costs more than the uncontended operation itself. */
#define MEMO 4
static __thread struct {
  uintptr_t p;
  unsigned gen;
  int covered;
} memo[MEMO];

int shim_netwait_covers(const void *p) {
  unsigned gen = atomic_load_explicit(&shim__views_gen, memory_order_acquire);
  unsigned i = ((uintptr_t)p >> 4) % MEMO;
  struct shim_hit hit;
  int covered;

  if (atomic_load_explicit(&shim__nviews, memory_order_relaxed) == 0)
    return 0;
  if (memo[i].p == (uintptr_t)p && memo[i].gen == gen)
    return memo[i].covered;
  covered = shim_cache_lookup((uintptr_t)p, &hit) == 0;
  if (covered)
    shim_cache_release(&hit);
  memo[i].p = (uintptr_t)p;
  memo[i].gen = gen;
  memo[i].covered = covered;
  return covered;
}

/* A kernel before 5.16: the word alone, in slices of SLICE_MS, so that a remote change is seen
 * within a slice (the host page table word is compared between them). */
#define SLICE_MS 2
static long wait_slice(struct dshm_futex_waitv *w, const struct timespec *abstime,
                       clockid_t clock) {
  struct timespec now, rel = {0, SLICE_MS * 1000000L};
  int op = FUTEX_WAIT | ((w[0].flags & DSHM_FUTEX2_PRIVATE) ? FUTEX_PRIVATE_FLAG : 0);

  if (atomic_load((_Atomic uint32_t *)(uintptr_t)w[1].uaddr) != (uint32_t)w[1].val) {
    errno = EAGAIN;
    return -1;
  }
  if (abstime != NULL) {
    clock_gettime(clock, &now);
    if (now.tv_sec > abstime->tv_sec ||
        (now.tv_sec == abstime->tv_sec && now.tv_nsec >= abstime->tv_nsec)) {
      errno = ETIMEDOUT;
      return -1;
    }
  }
  if (syscall(SYS_futex, (uint32_t *)(uintptr_t)w[0].uaddr, op, (uint32_t)w[0].val, &rel,
              NULL, 0) < 0 && errno == ETIMEDOUT) {
    errno = EAGAIN; /* a slice ended, not the caller's time: compare again */
    return -1;
  }
  return 0;
}

int shim_netwait(const uint32_t *addr, uint32_t expected, int private_, clockid_t clock,
                 const struct timespec *abstime) {
  struct shim_hit hit;

  for (;;) {
    _Atomic uint32_t *hw;
    struct dshm_futex_waitv w[2];
    uint32_t h, v;
    long r;

    if (shim_cache_lookup((uintptr_t)addr, &hit) < 0)
      return 1;
    hw = &hit.seg->host[hit.page].word;
    h = atomic_load(hw);
    if (dshm_ht_mode(h) == PROTO_MODE_INVALID) {
      /* The host must hold the page while this thread sleeps, or a write on another host
       * would not change the word (a host that holds nothing loses nothing). This view may
       * still show it, lowered a moment later: ask as a fault would. */
      if (shim_agent_fault(&hit, (uintptr_t)addr, 0) < 0)
        return 1; /* detached or lost: the caller's plain path */
      continue;
    }
    /* Marked WAIT in the very word that was checked above: a CAS that fails saw the word
     * move (maybe to INVALID), and everything is looked at again. Sleeping on an INVALID
     * word would never end: a host that holds nothing loses nothing. */
    if (!(h & DSHM_HT_WAIT) && !atomic_compare_exchange_strong(hw, &h, h | DSHM_HT_WAIT)) {
      shim_cache_release(&hit);
      continue;
    }
    h |= DSHM_HT_WAIT;
    /* The state first, then the word (through the view: faulted in if need be). A change of
     * the host's mode after the state was read fails the wait's second compare. */
    v = __atomic_load_n(addr, __ATOMIC_ACQUIRE);
    if (v != expected) {
      shim_cache_release(&hit);
      return -EAGAIN;
    }
    memset(w, 0, sizeof w);
    w[0].uaddr = (uintptr_t)addr;
    w[0].val = expected;
    w[0].flags = DSHM_FUTEX2_SIZE_U32 | (private_ ? DSHM_FUTEX2_PRIVATE : 0);
    w[1].uaddr = (uintptr_t)hw;
    w[1].val = h;
    w[1].flags = DSHM_FUTEX2_SIZE_U32;
    /* Not holding the segment while asleep: a detach must not wait for us (its memory stays
     * mapped until the last detach, and a sleeping futex never touches it). */
    shim_cache_release(&hit);
    r = waitv(w, 2, abstime, clock);
    if (r < 0 && errno == ENOSYS)
      r = wait_slice(w, abstime, clock);
    if (r >= 0)
      return 0;
    switch (errno) {
    case EAGAIN:
      if (__atomic_load_n(addr, __ATOMIC_ACQUIRE) != expected)
        return -EAGAIN;
      continue; /* the host's mode moved: look again */
    case EFAULT:
      continue; /* the view was taken away before the compare: the load above brings it */
    case ETIMEDOUT:
    case EINTR:
      return -errno;
    default:
      return -errno;
    }
  }
}

int shim_netwait_own(const uint32_t *addr, uint32_t expected, int private_, clockid_t clock,
                     const struct timespec *abstime) {
  int rc = shim_netwait(addr, expected, private_, clock, abstime), op;

  if (rc != 1)
    return rc;
  /* Absolute, on the caller's clock, as glibc's own waits are. */
  op = FUTEX_WAIT_BITSET | (private_ ? FUTEX_PRIVATE_FLAG : 0) |
       (clock == CLOCK_REALTIME ? FUTEX_CLOCK_REALTIME : 0);
  if (syscall(SYS_futex, addr, op, expected, abstime, NULL, FUTEX_BITSET_MATCH_ANY) == 0)
    return 0;
  return errno == EAGAIN || errno == ETIMEDOUT || errno == EINTR ? -errno : 0;
}
