/* vma.c - owns the mapping budget: run counting, and dropping resident runs to stay under vm.max_map_count.
 *
 * Per-page protections split each view into one VMA per run of equal protection, and the
 * kernel refuses an mprotect that would pass vm.max_map_count (65530 by default) with
 * ENOMEM. A segment touched at random would get there. The shim counts runs of equal page
 * mode per segment (an upper bound of each view's VMAs) and keeps the total over all views
 * under a budget: DSHM_MAX_MAPS, by default half of vm.max_map_count. Past the budget it
 * lowers this process's views of runs of resident, unpinned pages to INVALID, which merges
 * them with their INVALID neighbours; the host keeps the pages (a later touch raises them
 * again without a message). It drops until a quarter of the budget is free again, so the work is
 * amortized over many faults. A real ENOMEM (the application's own mappings filled the
 * table) drops everything droppable and retries once. docs/shim-io.md.
 */
#include "vma.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <string.h>
#include <unistd.h>

#include "agentpage.h"
#include "cache.h"
#include "config.h"
#include "pin.h"
#include "session.h"

static uint32_t budget;     /* 0 until first needed */
static int trimming;        /* trim lowers views itself: no recursion */
static uint32_t cursor[SHIM_MAX_SEGS]; /* where the next trim of a segment starts */

static uint32_t mode_at(struct shim_seg *sg, uint32_t p) {
  return atomic_load(&sg->state[p]) & SHIM_PG_MODE;
}

void shim__vma_note(struct shim_seg *sg, uint32_t page, uint32_t oldm, uint32_t newm) {
  int before = 0, after = 0;

  if (oldm == newm)
    return;
  if (page > 0) {
    before += mode_at(sg, page - 1) != oldm;
    after += mode_at(sg, page - 1) != newm;
  }
  if (page + 1 < sg->npages) {
    before += mode_at(sg, page + 1) != oldm;
    after += mode_at(sg, page + 1) != newm;
  }
  atomic_fetch_add(&sg->nruns, (uint32_t)(after - before));
}

atomic_uint shim__vma_trims;

/* Lock-free and async-signal-safe (no budget read from the environment here: the first
 * view's shim__vma_room did that). An estimate: other threads may be changing runs. */
int shim__vma_over(void) {
  uint64_t t = 0;
  int i;

  if (budget == 0)
    return 0;
  for (i = 0; i < SHIM_MAX_SEGS; i++) {
    struct shim_seg *sg = &shim__segs[i];
    if (atomic_load(&sg->used))
      t += (uint64_t)atomic_load(&sg->nruns) *
           (uint64_t)__atomic_load_n(&sg->nviews, __ATOMIC_RELAXED);
  }
  return t > budget;
}

void shim__vma_trim(void) {
  pthread_mutex_lock(&shim__cache_lock);
  shim__vma_room(NULL, 0, 0, 0);
  pthread_mutex_unlock(&shim__cache_lock);
  atomic_fetch_add(&shim__vma_trims, 1);
  syscall(SYS_futex, (uint32_t *)&shim__vma_trims, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

uint32_t shim__vma_budget(void) {
  if (budget == 0) {
    const char *e = getenv("DSHM_MAX_MAPS");
    long v = 0;
    if (e != NULL && *e != '\0')
      v = strtol(e, NULL, 10);
    if (v <= 0) {
      char buf[32] = "";
      int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
      ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
      if (fd >= 0)
        close(fd);
      v = n > 0 ? strtol(buf, NULL, 10) : 0;
      if (v <= 0)
        v = 65530;
      v /= SHIM_VMA_SHARE_DIV;
    }
    if (v < 16)
      v = 16; /* a few runs per view are needed to make progress at all */
    budget = v > (long)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
  }
  return budget;
}

static uint64_t total_maps(void) {
  uint64_t t = 0;
  int i;

  for (i = 0; i < SHIM_MAX_SEGS; i++) {
    struct shim_seg *sg = &shim__segs[i];
    if (atomic_load(&sg->used))
      t += (uint64_t)sg->nruns * (uint64_t)sg->nviews;
  }
  return t;
}

static int droppable(struct shim_seg *sg, uint32_t p) {
  uint32_t s = atomic_load(&sg->state[p]);

  return (s & SHIM_PG_MODE) != PROTO_MODE_INVALID &&
         !(s & (SHIM_PG_BUSY | SHIM_PG_WAIT | SHIM_PG_ERR)) && sg->pin[p] == 0;
}

/* Drops pages [p, q) of sg (all droppable): only this process's views go down; the host
 * keeps the pages, and its page table words do not move.
 * Then it wakes the threads asleep on those words (shim_netwait; DSHM_HT_WAIT says there
 * may be some): a thread of this process may have just stored to a futex word of one of
 * them and be about to FUTEX_WAKE it. A shared futex's key is found through the caller's
 * view (get_futex_key), and a view lowered to PROT_NONE fails that wake with EFAULT, which
 * glibc ignores: the waiters (in any process of this host) would sleep on, since the host
 * word they also wait on does not move. Woken, they read the futex word again, and the
 * store (done through the view before it went down) is there (verify/netwait.pml,
 * TRIM_NO_WAKE). */
static void drop(struct shim_seg *sg, uint32_t p, uint32_t q) {
  shim_agent_lower(sg, p, q - p, PROTO_MODE_INVALID);
  if (sg->host != NULL)
    shim_agent_wake_waiters(sg, p, q - p);
}

/* Drops runs until the total is at most target (or nothing more can go). */
static int trim(uint64_t target, struct shim_seg *keep, uint32_t first, uint32_t count) {
  int i, dropped = 0;

  trimming = 1;
  for (i = 0; i < SHIM_MAX_SEGS && total_maps() > target; i++) {
    struct shim_seg *sg = &shim__segs[i];
    uint32_t n, p, q, scanned = 0;
    if (!atomic_load(&sg->used) || sg->nviews == 0)
      continue;
    n = sg->npages;
    p = cursor[i] < n ? cursor[i] : 0;
    while (scanned < n && total_maps() > target) {
      if (!droppable(sg, p) || (sg == keep && p >= first && p - first < count)) {
        p = p + 1 == n ? 0 : p + 1;
        scanned++;
        continue;
      }
      for (q = p + 1; q < n && droppable(sg, q) && !(sg == keep && q >= first && q - first < count); q++)
        ;
      drop(sg, p, q);
      dropped = 1;
      scanned += q - p;
      p = q == n ? 0 : q;
    }
    cursor[i] = p;
  }
  trimming = 0;
  return dropped;
}

/* Counts sg's runs again from its page words. The incremental count (shim__vma_note) is
 * exact for one thread, but fault handlers note neighbouring pages concurrently without the
 * lock, and each reads the other's page half-changed: the count drifts, and a drift below
 * zero wraps around and would keep every fault trimming forever. Cache lock held. */
static void recount(struct shim_seg *sg) {
  uint32_t runs = 1;

  for (uint32_t p = 1; p < sg->npages; p++)
    runs += mode_at(sg, p) != mode_at(sg, p - 1);
  atomic_store(&sg->nruns, runs);
}

void shim__vma_room(struct shim_seg *keep, uint32_t first, uint32_t count, uint32_t extra) {
  uint64_t b;

  if (trimming)
    return;
  b = shim__vma_budget();
  if (total_maps() + extra <= b)
    return;
  /* Over by the estimate: the exact figures decide (O(pages), only past the budget). */
  for (int i = 0; i < SHIM_MAX_SEGS; i++)
    if (atomic_load(&shim__segs[i].used) && shim__segs[i].nviews > 0)
      recount(&shim__segs[i]);
  if (total_maps() + extra <= b)
    return;
  if (trim(b - b / 4 > extra ? b - b / 4 - extra : 0, keep, first, count) == 0)
    shim_debug("%u mappings budget (DSHM_MAX_MAPS) exceeded: nothing left to drop", (unsigned)b);
}

int shim__vma_enomem(struct shim_seg *keep, uint32_t first, uint32_t count) {
  if (trimming)
    return 0;
  return trim(0, keep, first, count);
}
