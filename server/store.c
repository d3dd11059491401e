/* store.c - owns segment memory: anonymous private mappings, one per segment. */
#include "store.h"

#include <errno.h>
#include <sys/mman.h>

#include "proto.h"

int srv_store_init(struct srv_store *st, uint64_t npages) {
  void *p;

  st->base = NULL;
  st->len = 0;
  /* Guard the page multiplication: a segsz near SHMMAX must fail, not wrap to a tiny map. */
  if (npages == 0 || npages > SIZE_MAX / PROTO_PAGE_SIZE)
    return -ENOMEM;
  /* NORESERVE: a huge, mostly untouched segment costs only what is written to it. */
  p = mmap(NULL, (size_t)npages * PROTO_PAGE_SIZE, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return -errno;
  st->base = p;
  st->len = (size_t)npages * PROTO_PAGE_SIZE;
  return 0;
}

void srv_store_fini(struct srv_store *st) {
  if (st->base != NULL)
    munmap(st->base, st->len);
  st->base = NULL;
  st->len = 0;
}
