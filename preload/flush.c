/* flush.c - owns the background write-back: every DSHM_FLUSH_MS the I/O thread writes back
 * the pages this process wrote since their last write-back, and keeps owning them. (No
 * thread of its own: one created next to another thread's fork is what the sanitizers'
 * runtimes do not survive, and the I/O thread's poll already has a timeout to give.)
 *
 * Dirty tracking uses the views' protections: a written-back page becomes SHIM_MODE_CLEAN
 * (read-only, still EXCLUSIVE at the server), so its next write faults and coherence.c
 * raises it back to EXCLUSIVE (dirty) locally, without a message. A page costs at most one
 * such local fault per period in which it is written. Order (as for every lowering,
 * coherence.c): publish CLEAN, mprotect the views down, then copy the data out and queue
 * the WRITE_DATA; a store before the mprotect is in the copy, one after it faults and
 * dirties the page again. The WRITE_DATA leaves through the session's one FIFO, so a RECALL
 * that arrives later is answered after it and needs no data for a CLEAN page.
 */
#include "flush.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "cache.h"
#include "coherence.h"
#include "config.h"
#include "pin.h"
#include "session.h"

static uint32_t cursor[SHIM_MAX_SEGS];     /* where the next period starts in a segment */
static struct proto_msg msg;               /* 6 KiB: not on a stack; under the cache lock */

/* Cache lock held. */
static int flushable(struct shim_seg *sg, uint32_t p) {
  uint32_t s = atomic_load(&sg->state[p]);

  /* A page the kernel is writing through a view (write pin) must stay writable. */
  return (s & SHIM_PG_MODE) == PROTO_MODE_EXCLUSIVE && !(s & (SHIM_PG_REQ | SHIM_PG_ERR)) &&
         (sg->pin[p] >> 16) == 0;
}

/* Writes back pages [p, q) of sg, all flushable. 0 or -errno (then they stay dirty).
 * Cache lock held. */
static int flush_run(struct shim_seg *sg, uint32_t p, uint32_t q) {
  uint32_t i;
  int err;

  for (i = p; i < q; i++)
    shim_cache_set_mode(sg, i, SHIM_MODE_CLEAN, 0);
  err = shim_cache_protect(sg, p, q - p, SHIM_MODE_CLEAN);
  if (err == 0) {
    memset(&msg.h, 0, sizeof msg.h);
    msg.h.opcode = PROTO_OP_WRITE_DATA;
    msg.h.reqid = shim__session_reqid(); /* the empty reply matches nothing: ignored */
    msg.u.run.shmid = sg->shmid;
    msg.u.run.first = p;
    msg.u.run.count = q - p;
    msg.u.run.mode = PROTO_MODE_EXCLUSIVE; /* keep the pages (docs/protocol.md) */
    for (i = p; i < q; i++)
      msg.u.run.page[i - p] = (struct proto_page){sg->version[i], PROTO_PAGE_DATA,
                                                  sg->priv + (size_t)i * SHIM_PAGE};
    err = shim__session_enqueue(&msg);
  }
  if (err < 0) {
    /* Nothing left: dirty again, raised views first as for a grant. A page that a budget
     * trim dropped meanwhile (vma.c) stays as it is. */
    for (i = p; i < q; i++)
      if ((atomic_load(&sg->state[i]) & SHIM_PG_MODE) == SHIM_MODE_CLEAN &&
          shim_cache_protect(sg, i, 1, PROTO_MODE_EXCLUSIVE) == 0)
        shim_cache_set_mode(sg, i, PROTO_MODE_EXCLUSIVE, 0);
  }
  return err;
}

unsigned shim__flush_once(void) {
  uint32_t maxrun = shim__session_max_run(), left = SHIM_FLUSH_MAX_PAGES;
  int i, err = 0;

  if (shim_cfg.agent || atomic_load(&shim__nviews) == 0 || atomic_load(&shim__exiting) ||
      !shim_session_mine())
    return 0;
  for (i = 0; i < SHIM_MAX_SEGS && left > 0 && err == 0; i++) {
    struct shim_seg *sg = &shim__segs[i];
    uint32_t n, p, q, scanned = 0;

    pthread_mutex_lock(&shim__cache_lock);
    if (!atomic_load(&sg->used) || atomic_load(&sg->dying) || sg->nviews == 0) {
      pthread_mutex_unlock(&shim__cache_lock);
      continue;
    }
    n = sg->npages;
    p = cursor[i] < n ? cursor[i] : 0;
    /* One pass over the segment from where the last period stopped, wrapping around. */
    while (scanned < n && left > 0 && err == 0) {
      if (!flushable(sg, p)) {
        p = p + 1 == n ? 0 : p + 1;
        scanned++;
        continue;
      }
      for (q = p + 1; q < n && q - p < maxrun && q - p < left && flushable(sg, q); q++)
        ;
      err = flush_run(sg, p, q);
      left -= q - p;
      scanned += q - p;
      p = q == n ? 0 : q;
    }
    cursor[i] = p;
    pthread_mutex_unlock(&shim__cache_lock);
  }
  if (err < 0)
    shim_debug("background write-back stopped: %s", strerror(-err));
  return SHIM_FLUSH_MAX_PAGES - left;
}
