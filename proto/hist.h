/* hist.h - the latency histogram the server and the host agents keep (docs/operations.md,
 * "Metrics"): bucket i counts durations above 2^(i-1) and up to 2^i microseconds, the last
 * up to 2^(N-1) us (~33.6 s); longer ones count only in count (+Inf). Pure, no locking: each
 * histogram has one writer, the loop thread of its program. */
#ifndef DSHM_HIST_H
#define DSHM_HIST_H

#include <stdint.h>

#define DSHM_HIST_BUCKETS 26

struct dshm_hist {
  uint64_t bucket[DSHM_HIST_BUCKETS]; /* not cumulative; an exposition sums them */
  uint64_t count;
  uint64_t sum_ns;
};

static inline void dshm_hist_observe(struct dshm_hist *h, uint64_t ns) {
  /* The first bucket whose bound is >= ns: bound(i) = 1000 * 2^i ns. */
  unsigned b = ns <= 1000 ? 0 : 64u - (unsigned)__builtin_clzll((ns - 1) / 1000);

  if (b < DSHM_HIST_BUCKETS)
    h->bucket[b]++;
  h->count++;
  h->sum_ns += ns;
}

/* The bound of bucket i in seconds, exact with %.9g. */
static inline double dshm_hist_le(unsigned i) {
  return (double)(1ull << i) * 1e-6;
}

#endif
