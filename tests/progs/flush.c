/* flush.c - test program for write-back: scattered dirty pages at shmdt, and a writer killed
 * after the background write-back (DSHM_FLUSH_MS) had time to save its pages.
 *
 *   flush scatter KEY RUNS    dirties RUNS separate runs of pages (a gap page between runs),
 *                             then shmdt, which writes them all back; prints "detached"
 *   flush write KEY PAGES     writes a pattern into pages 0..PAGES-1, then one word into the
 *                             marker page (the last of PAGES + GAP), prints "written" and
 *                             waits to be killed
 *   flush check KEY PAGES     prints "intact N of PAGES": pages that hold the whole pattern
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#define PROG "flush"
#include "progs.h"

#define PAGE 4096
#define RUN  17 /* runs 17 pages apart: each write is an isolated fault, granted alone */
#define GAP  65 /* past the write-ahead cap (64): the marker page is never taken with a pattern page */

static uint64_t pat(long page, long word) {
  return (uint64_t)page * 0x9E3779B97F4A7C15ull + (uint64_t)word * 2654435761u + 1;
}

static int cmd_scatter(key_t key, long runs) {
  uint8_t *s = attach_flags(key, (size_t)runs * RUN * PAGE, IPC_CREAT | 0666);

  if (s == NULL)
    return 1;
  for (long i = 0; i < runs; i++)
    s[(size_t)i * RUN * PAGE] = 1;
  if (shmdt(s) < 0)
    return fail("shmdt");
  printf("detached\n");
  return 0;
}

static int cmd_write(key_t key, long pages) {
  uint64_t *w = (uint64_t *)attach_flags(key, (size_t)(pages + GAP) * PAGE, IPC_CREAT | 0666);

  if (w == NULL)
    return 1;
  for (long p = 0; p < pages; p++)
    for (long i = 0; i < PAGE / 8; i++)
      w[p * (PAGE / 8) + i] = pat(p, i);
  /* The marker page is acquired only now, after every pattern store: a background
   * write-back that includes it scanned the segment after them all (test_flush.c). */
  w[(pages + GAP - 1) * (PAGE / 8)] = 1;
  printf("written\n");
  fflush(stdout);
  for (;;)
    pause();
}

static int cmd_check(key_t key, long pages) {
  uint64_t *w = (uint64_t *)attach_flags(key, (size_t)(pages + GAP) * PAGE, IPC_CREAT | 0666);
  long intact = 0;

  if (w == NULL)
    return 1;
  for (long p = 0; p < pages; p++) {
    long i = 0;
    while (i < PAGE / 8 && w[p * (PAGE / 8) + i] == pat(p, i))
      i++;
    intact += i == PAGE / 8;
  }
  printf("intact %ld of %ld\n", intact, pages);
  return shmdt(w) < 0 ? fail("shmdt") : 0;
}

int main(int argc, char **argv) {
  key_t key;
  long n;

  if (argc != 4) {
    fprintf(stderr, "usage: flush scatter|write|check KEY N\n");
    return 2;
  }
  key = (key_t)strtol(argv[2], NULL, 0);
  n = atol(argv[3]);
  if (n < 1)
    return 2;
  if (strcmp(argv[1], "scatter") == 0)
    return cmd_scatter(key, n);
  if (strcmp(argv[1], "write") == 0)
    return cmd_write(key, n);
  if (strcmp(argv[1], "check") == 0)
    return cmd_check(key, n);
  fprintf(stderr, "flush: unknown command %s\n", argv[1]);
  return 2;
}
