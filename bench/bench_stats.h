/* bench_stats: the clock and the summary statistics both bench programs print. */
#ifndef DSHM_BENCH_STATS_H
#define DSHM_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Bytes over nanoseconds as MB/s (10^6 bytes per second). */
double bench_mbps(size_t bytes, uint64_t ns);

/* Sorts lat[0..n) in place and prints
 * "result NAME median=.. p99=.. min=.. max=.. n=.." (microseconds). */
void bench_print_lat(const char *name, double *lat, size_t n);

/* Median of v[0..n) (sorted in place); 0 when n == 0. */
double bench_median(double *v, size_t n);

#endif /* DSHM_BENCH_STATS_H */
