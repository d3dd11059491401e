/* store.h - page-rounded, zero-filled memory behind one segment, anonymous or in a file. */
#ifndef DSHM_SRV_STORE_H
#define DSHM_SRV_STORE_H

#include <stddef.h>
#include <stdint.h>

/* What the directory keeps of a page across restarts (--data-dir), in the segment's file
 * after the data, host byte order: the version, and the 64-bit tag of the node it was
 * granted EXCLUSIVE to (0: none). */
struct srv_prec {
  uint64_t version;
  uint64_t owner;
};

struct srv_store {
  uint8_t *base;         /* npages * PROTO_PAGE_SIZE bytes, or NULL */
  size_t len;            /* of the data */
  struct srv_prec *rec;  /* npages records in a file-backed store, else NULL */
  size_t maplen;         /* the whole mapping */
};

/* Maps npages zero-filled pages. dirfd < 0: anonymous memory, gone with the process.
 * Otherwise the file srv_store_name(id) in dirfd, MAP_SHARED: created (it must not exist)
 * when create, else opened and its size checked (-EBADMSG when it is not what npages
 * needs). Returns 0, -ENOMEM (also when the size does not fit the address space) or
 * another -errno. */
int srv_store_init(struct srv_store *st, uint64_t npages, int dirfd, int32_t id, int create);

/* The file name of segment id in the data directory ("seg-%08x"); buf >= 16 bytes. */
void srv_store_name(char *buf, size_t cap, int32_t id);

/* Writes a file-backed store's dirty pages to its file (msync MS_SYNC). 0 or -errno. */
int srv_store_sync(struct srv_store *st);

/* Unmaps the memory; safe on a store that was never initialised or is already released.
 * The file, if any, stays. */
void srv_store_fini(struct srv_store *st);

#endif
