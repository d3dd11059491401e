/* pin.h - pins segment pages for the duration of an I/O call and defers the agent's requests for them. */
#ifndef DSHM_SHIM_PIN_H
#define DSHM_SHIM_PIN_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* What the kernel does with a buffer, hence the mode its pages need. */
#define SHIM_PIN_SHARED 1 /* reads it (write, send): SHARED or better */
#define SHIM_PIN_EXCL   2 /* writes it (read, recv): EXCLUSIVE */

/* Pin count word of a page (shim_seg.pin): holders needing SHARED in the low half, holders
 * needing EXCLUSIVE in the high half. */
#define SHIM_PIN_ONE_R 0x00000001u
#define SHIM_PIN_ONE_W 0x00010000u

struct shim_pin_run {
  int slot;        /* index in shim__segs */
  unsigned gen;    /* the slot's generation when the run was collected */
  int32_t shmid;   /* the global order pins are taken in: (shmid, page) */
  uint32_t first, count;
  int level;       /* SHIM_PIN_* */
};

#define SHIM_PIN_LOCAL 16

/* The pages one I/O call needs. Lives on the caller's stack. */
struct shim_pinset {
  struct shim_pin_run *run;
  int n, cap;
  int held_run;        /* runs [0, held_run) are pinned whole ... */
  uint32_t held_page;  /* ... and the first held_page pages of run[held_run] */
  struct shim_pin_run local[SHIM_PIN_LOCAL];
};

void shim_pin_init(struct shim_pinset *ps);
/* Adds the parts of [p, p+len) that lie in segment views. An EXCLUSIVE need on a SHM_RDONLY
 * view is left out: the kernel cannot write there and fails as it would on kernel shm.
 * Takes the cache lock. 0 or -ENOMEM. */
int shim_pin_add(struct shim_pinset *ps, const void *p, size_t len, int level);
/* Brings every page to its mode and pins it, in (shmid, page) order. Application thread,
 * cache lock not held. 0, or -EFAULT (segment detached, session lost, page refused) with
 * nothing pinned. */
int shim_pin_acquire(struct shim_pinset *ps);
/* Unpins, and wakes the I/O thread if server requests wait for it. */
void shim_pin_release(struct shim_pinset *ps);
void shim_pin_fini(struct shim_pinset *ps);

/* I/O thread, cache lock held: 1 if the INVALIDATE/RECALL m must wait for pins (it was
 * queued), 0 to process it now. */
int shim__pin_defer(const struct proto_msg *m);
/* I/O thread: processes the queued requests whose pages are no longer pinned, in order. */
void shim__pin_retry(void);
/* In the fork child (cache lock held): the parent's deferred requests belong to the parent's
 * session and its pins to threads the child does not have; forget both. */
void shim__pin_fork_child(void);

#endif /* DSHM_SHIM_PIN_H */
