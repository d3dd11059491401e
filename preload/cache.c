/* cache.c - owns the segment and view tables, page protections and the signal-safe lookup. */
#include "cache.h"

#include "real.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "pin.h"
#include "vma.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

struct shim_seg shim__segs[SHIM_MAX_SEGS];
pthread_mutex_t shim__cache_lock = PTHREAD_MUTEX_INITIALIZER;

atomic_int shim__nviews;
atomic_uint shim__views_gen;

static struct shim_view views[SHIM_MAX_VIEWS];
static atomic_int views_hw; /* slots [0, views_hw) have ever been used */

void shim_futex_wait(_Atomic uint32_t *w, uint32_t val) {
  /* EAGAIN (value changed), EINTR and spurious wake-ups all mean "look again". */
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

void shim_futex_wake(_Atomic uint32_t *w) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

int shim_prot_of(uint32_t mode, int vflags) {
  int prot;

  switch (mode) {
  case PROTO_MODE_SHARED:    prot = PROT_READ; break;
  case PROTO_MODE_EXCLUSIVE: prot = (vflags & SHIM_VIEW_RDONLY) ? PROT_READ : PROT_READ | PROT_WRITE; break;
  default:                   return PROT_NONE;
  }
  if (vflags & SHIM_VIEW_EXEC)
    prot |= PROT_EXEC;
  return prot;
}

struct shim_seg *shim_cache_seg_find(int shmid, int dying_ok) {
  struct shim_seg *dying = NULL;
  int i;

  for (i = 0; i < SHIM_MAX_SEGS; i++) {
    struct shim_seg *sg = &shim__segs[i];
    if (!atomic_load(&sg->used) || sg->shmid != shmid)
      continue;
    if (!atomic_load(&sg->dying))
      return sg;
    dying = sg;
  }
  return dying_ok ? dying : NULL;
}

int shim_cache_seg_new(int shmid, uint64_t segsz, int tabfd, struct shim_seg **out) {
  struct shim_seg *sg = NULL;
  uint64_t npages = (segsz + SHIM_PAGE - 1) / SHIM_PAGE;
  void *t;
  int i, err;

  /* The page index is a u32 on the wire; the rounding above cannot overflow for sizes the
   * server accepts, but refuse anything a u32 page index or size_t cannot address. */
  if (segsz == 0 || npages > UINT32_MAX || npages > SIZE_MAX / SHIM_PAGE || tabfd < 0)
    return -EINVAL;
  for (i = 0; i < SHIM_MAX_SEGS && sg == NULL; i++)
    if (!atomic_load(&shim__segs[i].used))
      sg = &shim__segs[i];
  if (sg == NULL)
    return -EMFILE;

  /* The host page table: what the host holds (the data itself is the memfd each view maps). */
  t = shim_sys_mmap(NULL, DSHM_HT_SIZE(npages), PROT_READ | PROT_WRITE, MAP_SHARED, tabfd, 0);
  if (t == MAP_FAILED)
    return -errno;
  sg->host = t;
  /* mmap, not malloc: the fault handler reads these words, and mmap memory is zeroed
   * (= INVALID). */
  sg->state = shim_sys_mmap(NULL, (size_t)npages * sizeof *sg->state, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sg->state == MAP_FAILED) {
    err = -errno;
    goto fail_host;
  }
  sg->pin = calloc((size_t)npages, sizeof *sg->pin);
  if (sg->pin == NULL) {
    err = -ENOMEM;
    goto fail_state;
  }
  sg->nruns = 1;
  sg->shmid = shmid;
  sg->segsz = segsz;
  sg->npages = (uint32_t)npages;
  sg->nviews = 0;
  atomic_store(&sg->dying, 0);
  atomic_store(&sg->inflight, 0);
  atomic_fetch_add(&sg->gen, 1);
  atomic_store(&sg->used, 1);
  *out = sg;
  return 0;

fail_state:
  shim_sys_munmap((void *)sg->state, (size_t)npages * sizeof *sg->state);
fail_host:
  shim_sys_munmap(sg->host, DSHM_HT_SIZE(npages));
  sg->host = NULL;
  return err;
}

void shim_cache_seg_free(struct shim_seg *sg) {
  atomic_store(&sg->used, 0);
  free(sg->pin);
  shim_sys_munmap((void *)sg->state, (size_t)sg->npages * sizeof *sg->state);
  if (sg->host != NULL)
    shim_sys_munmap(sg->host, DSHM_HT_SIZE(sg->npages));
  sg->host = NULL;
  sg->pin = NULL;
  sg->state = NULL;
}

void shim_cache_seg_kill(struct shim_seg *sg) {
  /* Nobody sleeps on a page word of ours for long: a thread waiting for BUSY holds the
   * segment (inflight) and the holder drops BUSY within a few system calls; a faulting
   * thread sleeps on the host's word, without holding it, and looks at dying every
   * WAIT_SLICE_MS. So nothing is woken here: a walk over every page word cost a zero-page
   * fault per 1024 pages of the segment at each last shmdt (~600 us for 256 MiB). */
  atomic_store(&sg->dying, 1);
}

void shim_cache_seg_quiesce(struct shim_seg *sg) {
  struct timespec ts = {0, 1000000};

  /* Handlers only hold the count while they look at the segment or sleep on a page of a
   * dying segment for the few instructions before they see dying; this ends quickly. */
  while (atomic_load(&sg->inflight) != 0)
    nanosleep(&ts, NULL);
}

int shim_cache_view_add(struct shim_seg *sg, int fd, void *addr, int fixed, int flags,
                        void **out) {
  size_t len = (size_t)sg->npages * SHIM_PAGE;
  int mflags = MAP_SHARED, v;
  uint8_t *base;

  for (v = 0; v < SHIM_MAX_VIEWS && atomic_load(&views[v].start) != 0; v++)
    ;
  if (v == SHIM_MAX_VIEWS)
    return -EMFILE;
  if (addr != NULL)
    mflags |= fixed ? MAP_FIXED : MAP_FIXED_NOREPLACE;
  base = shim_sys_mmap(addr, len, PROT_NONE, mflags, fd, 0);
  if (base == MAP_FAILED)
    return errno == EEXIST ? -EINVAL : -errno; /* shmat reports an occupied range as EINVAL */
  if (addr != NULL && base != addr) {
    /* A kernel older than 4.17 ignores MAP_FIXED_NOREPLACE and maps elsewhere. */
    shim_sys_munmap(base, len);
    return -EINVAL;
  }
  shim__vma_room(NULL, 0, 0, sg->nruns); /* the new view brings sg's runs as VMAs */
  /* A new view starts with no access and its faults raise it to what the host holds
   * (agentpage.c); lowering covers every view whatever it has. */
  /* Publish (seqlock writer, serialized by the cache lock): seq odd, fields, seq even,
   * start last so a reader that sees start also sees the rest. */
  atomic_fetch_add(&views[v].seq, 1);
  atomic_store(&views[v].len, len);
  atomic_store(&views[v].seg, (int)(sg - shim__segs));
  atomic_store(&views[v].seg_gen, atomic_load(&sg->gen));
  atomic_store(&views[v].flags, flags);
  atomic_store(&views[v].start, (uintptr_t)base);
  atomic_fetch_add(&views[v].seq, 1);
  if (v >= atomic_load(&views_hw))
    atomic_store(&views_hw, v + 1);
  sg->nviews++;
  atomic_fetch_add(&shim__nviews, 1);
  atomic_fetch_add(&shim__views_gen, 1);
  *out = base;
  return v;
}

int shim_cache_view_find(const void *addr, struct shim_seg **sg) {
  int v, hw = atomic_load(&views_hw);

  for (v = 0; v < hw; v++)
    if (addr != NULL && atomic_load(&views[v].start) == (uintptr_t)addr) {
      *sg = &shim__segs[atomic_load(&views[v].seg)];
      return v;
    }
  return -1;
}

void shim_cache_view_remove(int v, uintptr_t gone, size_t gone_len) {
  uintptr_t base = atomic_load(&views[v].start);
  size_t len = atomic_load(&views[v].len);
  struct shim_seg *sg = &shim__segs[atomic_load(&views[v].seg)];

  /* Unpublish before unmapping: a handler that validated the slot after this point
   * does not claim the address (see shim_cache_lookup). */
  atomic_fetch_add(&views[v].seq, 1);
  atomic_store(&views[v].start, 0);
  atomic_fetch_add(&views[v].seq, 1);
  atomic_fetch_add(&shim__views_gen, 1);
  /* A fault handler may be raising a page of this view (it holds an inflight reference only
   * for that, never while it sleeps): it must be done before the range can be reused by
   * anything else. */
  shim_cache_seg_quiesce(sg);
  if (gone_len == 0) {
    shim_sys_munmap((void *)base, len);
  } else {
    /* The application took [gone, gone + gone_len) (munmap, mremap, MAP_FIXED, SHM_REMAP):
     * that part is its memory now and is left alone. What is left of the view loses all
     * access: it is not kept coherent any more (docs/compatibility.md). */
    uintptr_t end = base + len, gend = gone + gone_len;
    if (gone > base)
      mprotect((void *)base, (gone < end ? gone : end) - base, PROT_NONE);
    if (gend < end)
      mprotect((void *)(gend > base ? gend : base), end - (gend > base ? gend : base), PROT_NONE);
  }
  sg->nviews--;
  atomic_fetch_sub(&shim__nviews, 1);
}

int shim_cache_view_overlapping(uintptr_t p, size_t len, struct shim_seg **sg) {
  int v, hw = atomic_load(&views_hw);

  for (v = 0; v < hw; v++) {
    uintptr_t start = atomic_load(&views[v].start);
    size_t vlen = atomic_load(&views[v].len);
    if (start != 0 && len != 0 && p < start + vlen && (start <= p || start - p < len)) {
      *sg = &shim__segs[atomic_load(&views[v].seg)];
      return v;
    }
  }
  return -1;
}

int shim_cache_protect(struct shim_seg *sg, uint32_t first, uint32_t count, uint32_t mode) {
  int v, hw = atomic_load(&views_hw), idx = (int)(sg - shim__segs), err = 0;

  /* Changing a run can split a VMA in three in every view. */
  shim__vma_room(sg, first, count, 2u * (uint32_t)sg->nviews);
  for (v = 0; v < hw; v++) {
    uintptr_t start = atomic_load(&views[v].start);
    if (start == 0 || atomic_load(&views[v].seg) != idx)
      continue;
    uint8_t *at = (uint8_t *)start + (size_t)first * SHIM_PAGE;
    int prot = shim_prot_of(mode, atomic_load(&views[v].flags));
    int rc = mprotect(at, (size_t)count * SHIM_PAGE, prot);
    /* ENOMEM: the process is out of VMAs (vm.max_map_count). Drop what can be dropped
     * to INVALID, which merges runs, and try once more. */
    if (rc < 0 && errno == ENOMEM && shim__vma_enomem(sg, first, count))
      rc = mprotect(at, (size_t)count * SHIM_PAGE, prot);
    if (rc < 0) {
      err = -errno;
      shim_log("mprotect of segment %d pages %u+%u failed: %s", sg->shmid, first, count,
               strerror(errno));
    }
  }
  return err;
}

uint32_t shim_cache_set_mode(struct shim_seg *sg, uint32_t page, uint32_t mode, uint32_t clr) {
  _Atomic uint32_t *w = &sg->state[page];
  uint32_t old = atomic_load(w), nw;

  do
    nw = (old & ~(SHIM_PG_MODE | SHIM_PG_WAIT | clr)) | mode;
  while (!atomic_compare_exchange_weak(w, &old, nw));
  shim__vma_note(sg, page, old & SHIM_PG_MODE, mode);
  if (old & SHIM_PG_WAIT)
    shim_futex_wake(w);
  return old;
}

void shim_cache_set_bits(struct shim_seg *sg, uint32_t page, uint32_t bits) {
  _Atomic uint32_t *w = &sg->state[page];
  uint32_t old = atomic_load(w);

  /* Clearing WAIT always changes a word somebody sleeps on, even when bits is 0. */
  while (!atomic_compare_exchange_weak(w, &old, (old | bits) & ~SHIM_PG_WAIT))
    ;
  if (old & SHIM_PG_WAIT)
    shim_futex_wake(w);
}

/* Called from the SIGSEGV handler: no locks, no malloc, no stdio.
 * Every field is an atomic read; a slot changed during the read (seq moved or odd) is
 * skipped, so a torn view never matches. The inflight reference is taken, then the slot is
 * re-validated: shim_cache_view_remove stores seq before the detacher reads inflight, and
 * this handler increments inflight before it re-reads seq (both seq_cst), so either the
 * detacher waits for us or we see the slot changed and back off. */
int shim_cache_lookup(uintptr_t addr, struct shim_hit *hit) {
  int v, hw = atomic_load(&views_hw);

  for (v = 0; v < hw; v++) {
    struct shim_view *vw = &views[v];
    unsigned s1 = atomic_load(&vw->seq), gen;
    uintptr_t start;
    size_t len;
    int idx, flags;
    struct shim_seg *sg;

    if (s1 & 1u)
      continue;
    start = atomic_load(&vw->start);
    len = atomic_load(&vw->len);
    if (start == 0 || addr < start || addr - start >= len)
      continue;
    idx = atomic_load(&vw->seg);
    gen = atomic_load(&vw->seg_gen);
    flags = atomic_load(&vw->flags);
    if (atomic_load(&vw->seq) != s1 || idx < 0 || idx >= SHIM_MAX_SEGS)
      continue;
    sg = &shim__segs[idx];
    atomic_fetch_add(&sg->inflight, 1);
    if (atomic_load(&vw->seq) != s1 || !atomic_load(&sg->used) || atomic_load(&sg->gen) != gen) {
      atomic_fetch_sub(&sg->inflight, 1);
      continue;
    }
    hit->seg = sg;
    hit->page = (uint32_t)((addr - start) / SHIM_PAGE);
    hit->flags = flags;
    hit->vstart = start;
    return 0;
  }
  return -1;
}

void shim_cache_release(struct shim_hit *hit) {
  atomic_fetch_sub(&hit->seg->inflight, 1);
}

int shim_cache_views(struct shim_view_info *out, int max) {
  int v, n = 0, hw = atomic_load(&views_hw);

  for (v = 0; v < hw && n < max; v++) {
    int idx;
    if (atomic_load(&views[v].start) == 0)
      continue;
    idx = atomic_load(&views[v].seg);
    out[n].seg = idx;
    out[n].shmid = shim__segs[idx].shmid;
    out[n].flags = atomic_load(&views[v].flags);
    n++;
  }
  return n;
}

/* Same seqlock reading as shim_cache_lookup, without taking a reference: the answer is a
 * hint for the I/O wrappers, which look again under the cache lock. A slot caught changing
 * is a view being attached or detached: no buffer the application may use lies in it yet,
 * or any more. Never takes a lock: the I/O thread calls write/send under the session lock. */
int shim_cache_overlaps(uintptr_t p, size_t len) {
  int v, hw = atomic_load(&views_hw);

  if (len == 0 || atomic_load(&shim__nviews) == 0)
    return 0;
  for (v = 0; v < hw; v++) {
    unsigned s1 = atomic_load(&views[v].seq);
    uintptr_t start = atomic_load(&views[v].start);
    size_t vlen = atomic_load(&views[v].len);
    if ((s1 & 1u) || atomic_load(&views[v].seq) != s1 || start == 0)
      continue;
    if (p < start + vlen && (start <= p || start - p < len))
      return 1;
  }
  return 0;
}

int shim_cache_views_in(uintptr_t p, size_t len, struct shim_vrange *out, int max) {
  int v, n = 0, hw = atomic_load(&views_hw);
  uintptr_t end = len > UINTPTR_MAX - p ? UINTPTR_MAX : p + len;

  for (v = 0; v < hw && len > 0; v++) {
    uintptr_t start = atomic_load(&views[v].start), lo, hi;
    size_t vlen = atomic_load(&views[v].len);
    struct shim_seg *sg;
    if (start == 0 || end <= start || p >= start + vlen)
      continue;
    lo = p > start ? p : start;
    hi = end < start + vlen ? end : start + vlen;
    sg = &shim__segs[atomic_load(&views[v].seg)];
    if (n < max)
      out[n] = (struct shim_vrange){sg, atomic_load(&views[v].seg_gen),
                                    (uint32_t)((lo - start) / SHIM_PAGE),
                                    (uint32_t)((hi - 1 - start) / SHIM_PAGE - (lo - start) / SHIM_PAGE + 1),
                                    atomic_load(&views[v].flags)};
    n++;
  }
  return n;
}

/* In the forked child: the memory stays the host's (the child maps what the
 * parent mapped), but the child holds nothing until its own faults raise its views with
 * its own bit in the host table's holders. */
static void fork_seg(struct shim_seg *sg) {
  int idx = (int)(sg - shim__segs), v, hw = atomic_load(&views_hw);
  uint32_t p;

  for (v = 0; v < hw; v++) {
    void *start = (void *)atomic_load(&views[v].start);
    if (start != NULL && atomic_load(&views[v].seg) == idx)
      mprotect(start, atomic_load(&views[v].len), PROT_NONE);
  }
  for (p = 0; p < sg->npages; p++) {
    atomic_store(&sg->state[p], 0u);
    sg->pin[p] = 0;
  }
  sg->nruns = 1;
  atomic_store(&sg->inflight, 0);
}

void shim_cache_fork_child(void) {
  int i;

  shim__pin_fork_child();
  for (i = 0; i < SHIM_MAX_SEGS; i++) {
    struct shim_seg *sg = &shim__segs[i];
    if (!atomic_load(&sg->used))
      continue;
    if (sg->nviews == 0 || atomic_load(&sg->dying)) {
      /* Its last view was being detached by a thread that the child does not have. */
      atomic_store(&sg->inflight, 0);
      if (sg->nviews == 0) {
        shim_cache_seg_free(sg);
        continue;
      }
      atomic_store(&sg->dying, 0);
    }
    fork_seg(sg);
  }
}
