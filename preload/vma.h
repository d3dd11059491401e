/* vma.h - keeps the views' mappings (one VMA per run of equal protection) under a budget. */
#ifndef DSHM_SHIM_VMA_H
#define DSHM_SHIM_VMA_H

#include <stdatomic.h>
#include <stdint.h>

struct shim_seg;

/* Default share of vm.max_map_count the views may use (the rest is the application's). */
#define SHIM_VMA_SHARE_DIV 2

/* Cache lock held, for all of these. */

/* Page `page` of sg changes mode from oldm to newm: keeps sg->nruns exact. */
void shim__vma_note(struct shim_seg *sg, uint32_t page, uint32_t oldm, uint32_t newm);
/* Before views change: if the mappings would pass the budget (DSHM_MAX_MAPS), drops runs
 * of resident pages to INVALID (writing back the EXCLUSIVE ones) until well below it.
 * Pages [first, first+count) of keep are never dropped. extra: runs about to be added. */
void shim__vma_room(struct shim_seg *keep, uint32_t first, uint32_t count, uint32_t extra);
/* mprotect failed with ENOMEM (the process's real limit): drops every page it may.
 * Returns 1 if anything was dropped (worth retrying), else 0. */
int shim__vma_enomem(struct shim_seg *keep, uint32_t first, uint32_t count);
/* The budget in mappings (for tests and diagnostics). */
uint32_t shim__vma_budget(void);

/* Fault handlers raise views without the cache lock (agentpage.c): */
/* Lock-free, async-signal-safe: 1 if the views' mappings seem to pass the budget. */
int shim__vma_over(void);
/* I/O thread, no lock held: trims (shim__vma_room), then counts one more trim in
 * shim__vma_trims and wakes the handlers waiting for it. */
void shim__vma_trim(void);
extern atomic_uint shim__vma_trims;

#endif /* DSHM_SHIM_VMA_H */
