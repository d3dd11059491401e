/* hosttab.h - the host page table: one record per page of a segment, in a memfd that the host
 * agent owns and every local process maps (docs/design.md, "The node is the host").
 *
 * It is how a process learns, with one load and no message, what its host holds: the agent
 * alone writes the state word (mode, error, generation); processes only set WAIT on it before
 * they sleep and set their bit in holders before they raise a view. Pure definitions. */
#ifndef DSHM_PROTO_HOSTTAB_H
#define DSHM_PROTO_HOSTTAB_H

#include <stdatomic.h>
#include <stdint.h>

#include "proto.h"

/* The state word. */
#define DSHM_HT_MODE     0x03u  /* PROTO_MODE_INVALID / SHARED / EXCLUSIVE held by the host */
#define DSHM_HT_ERR      0x04u  /* the page can no longer be served: faults get SIGBUS */
#define DSHM_HT_WAIT     0x08u  /* a process sleeps on the word (shared futex): wake on change */
#define DSHM_HT_GEN_SHIFT 8u    /* every change of mode or error moves the generation, so a
                                 * sleeper never misses a change that came and went */

/* The fresh word: a grant that local processes asked for is not taken back before one of
 * them has raised the page (docs/design.md, "A grant is used before it is taken back").
 * The agent sets FRESH before it raises the state word for such a grant; the first process
 * to raise the page swaps it to 0, and if it was HELD (the agent holds a revocation of the
 * page until then) tells the agent with a RAISED message. */
#define DSHM_HT_FRESH 1u
#define DSHM_HT_HELD  2u

struct dshm_hostpage {
  _Atomic uint32_t word;
  _Atomic uint32_t fresh;  /* 0, DSHM_HT_FRESH or DSHM_HT_HELD */
  /* Bit (slot % 64) of every local process that may hold the page above INVALID in one of
   * its views. A process sets its bit (seq_cst) before it reads word and raises; the agent
   * lowers word (seq_cst) before it reads holders: one of the two always sees the other. */
  _Atomic uint64_t holders;
};

#define DSHM_HT_SIZE(npages) ((size_t)(npages) * sizeof(struct dshm_hostpage))

static inline uint32_t dshm_ht_mode(uint32_t w) {
  return w & DSHM_HT_MODE;
}

static inline uint64_t dshm_ht_bit(uint32_t slot) {
  return UINT64_C(1) << (slot % 64u);
}

#endif /* DSHM_PROTO_HOSTTAB_H */
