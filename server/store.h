/* store.h - page-rounded, zero-filled memory behind one segment. */
#ifndef DSHM_SRV_STORE_H
#define DSHM_SRV_STORE_H

#include <stddef.h>
#include <stdint.h>

struct srv_store {
  uint8_t *base; /* npages * PROTO_PAGE_SIZE bytes, or NULL */
  size_t len;
};

/* Maps npages zero-filled pages. Returns 0, -ENOMEM (also when the size does not fit the
 * address space) or another -errno from mmap. */
int srv_store_init(struct srv_store *st, uint64_t npages);

/* Unmaps the memory; safe on a store that was never initialised or is already released. */
void srv_store_fini(struct srv_store *st);

#endif
