/* bench_stats: the clock and the summary statistics both bench programs print. */
#include "bench_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_mbps(size_t bytes, uint64_t ns) {
  return ns ? (double)bytes * 1e3 / (double)ns : 0.0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile (pct in 1..100) of sorted v: the smallest value with at
 * least pct% of the samples at or below it. */
static double rank(const double *v, size_t n, unsigned pct) {
  size_t k = (n * pct + 99) / 100;
  return v[k ? k - 1 : 0];
}

double bench_median(double *v, size_t n) {
  if (n == 0)
    return 0.0;
  qsort(v, n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_print_lat(const char *name, double *lat, size_t n) {
  if (n == 0) {
    printf("result %s n=0\n", name);
    return;
  }
  double med = bench_median(lat, n);
  printf("result %s median=%.2f p99=%.2f min=%.2f max=%.2f n=%zu\n", name, med,
         rank(lat, n, 99), lat[0], lat[n - 1], n);
}
