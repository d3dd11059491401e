/* cache.h - the process's segments (host page table, per-page view states, pins) and views. */
#ifndef DSHM_SHIM_CACHE_H
#define DSHM_SHIM_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hosttab.h"
#include "proto.h"

#define SHIM_MAX_SEGS  256   /* segments cached at once in one process */
#define SHIM_MAX_VIEWS 1024  /* attachments at once in one process */
#define SHIM_PAGE      PROTO_PAGE_SIZE

/* Page state word (one _Atomic uint32_t per page): the highest mode any view of this process
 * may have, and BUSY while a thread changes the views of the page (agentpage.c). */
#define SHIM_PG_MODE  0x03u  /* PROTO_MODE_INVALID / SHARED / EXCLUSIVE */
#define SHIM_PG_WAIT  0x10u  /* somebody waits for BUSY to drop: wake on change */
#define SHIM_PG_ERR   0x20u  /* the page can never be served: faults get SIGBUS */
#define SHIM_PG_BUSY  0x80u  /* a thread is changing this page's views */

/* View flags. */
#define SHIM_VIEW_RDONLY 0x1  /* SHM_RDONLY: never more than PROT_READ */
#define SHIM_VIEW_EXEC   0x2  /* SHM_EXEC: PROT_EXEC wherever readable */

struct shim_seg {
  atomic_int used;          /* slot holds a segment */
  atomic_uint gen;          /* bumped at every reuse of the slot */
  atomic_int dying;         /* last view gone: faulting threads must give up */
  atomic_int inflight;      /* fault handlers currently using this slot */
  int shmid;
  uint64_t segsz;
  uint32_t npages;
  struct dshm_hostpage *host; /* the host page table (proto/hosttab.h) */
  _Atomic uint32_t *state;  /* npages page state words */
  uint32_t *pin;            /* npages pin counts (pin.h: readers low 16 bits, writers high);
                             * under the cache lock */
  _Atomic uint32_t nruns;   /* runs of equal mode over the pages (vma.c); changed under the
                             * lock, or by a fault handler raising a page */
  int nviews;               /* under the cache lock */
};

/* Read by the fault handler without locks: a seqlock (seq odd while the slot changes). */
struct shim_view {
  atomic_uint seq;
  atomic_uintptr_t start;   /* 0 = free slot */
  atomic_size_t len;
  atomic_int seg;
  atomic_uint seg_gen;
  atomic_int flags;         /* SHIM_VIEW_* */
};

/* What a fault address resolved to. The segment's inflight count is held: release it with
 * shim_cache_release(). */
struct shim_hit {
  struct shim_seg *seg;
  uint32_t page;
  int flags;
  uintptr_t vstart;         /* the view the address is in */
};

extern struct shim_seg shim__segs[SHIM_MAX_SEGS];
extern pthread_mutex_t shim__cache_lock;
/* Published views in the process: 0 lets every I/O wrapper take its fast path. */
extern atomic_int shim__nviews;
/* Moves at every view published or taken away: what a thread remembered of the views (netwait.c)
 * holds while it has not moved. */
extern atomic_uint shim__views_gen;

/* A part of an address range that lies in a view: pages [first, first+count) of seg. */
struct shim_vrange {
  struct shim_seg *seg;
  unsigned gen;
  uint32_t first, count;
  int flags;                /* the view's SHIM_VIEW_* */
};

/* The protection a view with flags vflags (SHIM_VIEW_*) gets for a page at mode. No lock. */
int shim_prot_of(uint32_t mode, int vflags);

/* All of the following need shim__cache_lock held, unless stated otherwise. */

/* The live segment with this shmid (a dying one only if dying_ok), or NULL. */
struct shim_seg *shim_cache_seg_find(int shmid, int dying_ok);
/* A new segment, all pages INVALID: the host page table tabfd is mapped (the data is the
 * agent's memfd, mapped by each view). */
int shim_cache_seg_new(int shmid, uint64_t segsz, int tabfd, struct shim_seg **out);
/* Frees the segment's resources. Precondition: no views, dying set, inflight 0. */
void shim_cache_seg_free(struct shim_seg *sg);
/* Marks the segment dying: handlers that look at it from now on give up. */
void shim_cache_seg_kill(struct shim_seg *sg);
/* Waits (sleeping, without the lock) until no fault handler uses the segment. */
void shim_cache_seg_quiesce(struct shim_seg *sg);

/* Maps a view of sg (of the agent's memfd fd) at addr (NULL = anywhere; fixed means
 * MAP_FIXED instead of MAP_FIXED_NOREPLACE), with no access (its faults raise it), and
 * publishes it. */
int shim_cache_view_add(struct shim_seg *sg, int fd, void *addr, int fixed, int flags,
                        void **out);
/* The view that starts exactly at addr, or -1. */
int shim_cache_view_find(const void *addr, struct shim_seg **sg);
/* Unpublishes view v and unmaps it (gone_len 0: shmdt), or, when the application took
 * [gone, gone + gone_len) over it, leaves that part alone and takes all access from the
 * rest of the view. */
void shim_cache_view_remove(int v, uintptr_t gone, size_t gone_len);
/* The first view that overlaps [p, p+len), or -1. */
int shim_cache_view_overlapping(uintptr_t p, size_t len, struct shim_seg **sg);
/* Gives pages [first, first+count) of every view of sg the protection of mode. */
int shim_cache_protect(struct shim_seg *sg, uint32_t first, uint32_t count, uint32_t mode);

/* Sets the mode of a page, clearing the bits in clr (and WAIT), waking sleepers.
 * Returns the previous word. */
uint32_t shim_cache_set_mode(struct shim_seg *sg, uint32_t page, uint32_t mode, uint32_t clr);
/* ORs bits into a page word and wakes sleepers. */
void shim_cache_set_bits(struct shim_seg *sg, uint32_t page, uint32_t bits);

/* Called from the SIGSEGV handler: no locks, no malloc, no stdio. Resolves addr to a page of
 * a published view and takes an inflight reference on its segment. Returns 0 or -1. */
int shim_cache_lookup(uintptr_t addr, struct shim_hit *hit);
void shim_cache_release(struct shim_hit *hit);

/* One published view, as listed by shim_cache_views. */
struct shim_view_info {
  int seg;    /* slot in shim__segs */
  int shmid;
  int flags;  /* SHIM_VIEW_* */
};
/* Lists up to max published views into out; returns how many. */
int shim_cache_views(struct shim_view_info *out, int max);

/* In the child of fork (single thread, both locks held, before the application runs): the
 * inherited views keep mapping the host's memory but lose all access (PROT_NONE), every page
 * word becomes INVALID and no pin holds: the child raises its own views with its own bit in
 * the host table's holders. Segments left without views (a detach was in flight in the
 * parent) are freed. */
void shim_cache_fork_child(void);
/* Lock-free and async-signal-safe: 1 if [p, p+len) may overlap a published view. */
int shim_cache_overlaps(uintptr_t p, size_t len);
/* Cache lock held: the parts of [p, p+len) that lie in views, at most max of them.
 * Returns how many there are (may exceed max: then only max were written). */
int shim_cache_views_in(uintptr_t p, size_t len, struct shim_vrange *out, int max);

/* Futex helpers on a page word (async-signal-safe: raw syscalls). */
void shim_futex_wait(_Atomic uint32_t *w, uint32_t val);
void shim_futex_wake(_Atomic uint32_t *w);

#endif /* DSHM_SHIM_CACHE_H */
