/* coherence.c - owns the node's half of the page protocol (docs/protocol.md, "Coherence").
 *
 * Ordering rules that keep the app from seeing or losing data (all under the cache lock):
 *  - raising a page (grant): install data through the private view, mprotect the views up,
 *    THEN publish the state word and wake; a thread that faults in between sleeps.
 *  - lowering a page (invalidate, recall, write-back): publish the lower state, mprotect
 *    the views down, THEN copy the data out and queue the message; a write that lands
 *    before the mprotect is in the copy, one after it faults and queues behind our message.
 *  - every message leaves through one FIFO, so the server sees a write-back and a recall
 *    ack in the order this node made them.
 */
#include "coherence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentpage.h"
#include "config.h"
#include "pin.h"
#include "vma.h"

atomic_int shim__exiting;

/* A READ_DATA/ACQUIRE the I/O thread sent for a fault. I/O thread only. */
struct pend {
  uint32_t reqid;
  struct shim_seg *sg;
  unsigned gen;
  uint32_t first, count, mode;
};

static struct pend *pend;
static size_t npend, cappend;
static struct proto_msg io_msg; /* the I/O thread's outgoing message (6 KiB: not on its stack) */

static uint32_t min_u32(uint32_t a, uint32_t b) {
  return a < b ? a : b;
}

/* Sets bits, clears clr (and WAIT), wakes sleepers. Cache lock held. */
static void page_update(struct shim_seg *sg, uint32_t page, uint32_t set, uint32_t clr) {
  _Atomic uint32_t *w = &sg->state[page];
  uint32_t old = atomic_load(w);

  while (!atomic_compare_exchange_weak(w, &old, (old | set) & ~(clr | SHIM_PG_WAIT)))
    ;
  if (old & SHIM_PG_WAIT)
    shim_futex_wake(w);
}

static uint32_t page_mode(struct shim_seg *sg, uint32_t page) {
  return atomic_load(&sg->state[page]) & SHIM_PG_MODE;
}

/* A write to a SHIM_MODE_CLEAN page: the node still owns it, so only the views change (up
 * first, then publish, as for a grant). If the views cannot be raised the writer gets
 * SIGBUS rather than faulting forever. Cache lock held. */
static void upgrade_clean(struct shim_seg *sg, uint32_t page) {
  if (shim_cache_protect(sg, page, 1, PROTO_MODE_EXCLUSIVE) < 0)
    page_update(sg, page, SHIM_PG_ERR, SHIM_PG_REQ_W);
  else
    shim_cache_set_mode(sg, page, PROTO_MODE_EXCLUSIVE, SHIM_PG_REQ_W);
}

void shim__coh_fault(const struct shim_fault_rec *r) {
  int write = r->kind == SHIM_REC_WRITE;
  uint32_t want = write ? SHIM_PG_REQ_W : SHIM_PG_REQ_R;
  uint32_t mode = write ? PROTO_MODE_EXCLUSIVE : PROTO_MODE_SHARED;
  struct proto_msg *m = &io_msg;
  struct shim_seg *sg;
  uint32_t limit, n, i;
  int err;

  if (r->kind == SHIM_REC_TRIM) {
    shim__vma_trim();
    return;
  }
  if (r->seg >= SHIM_MAX_SEGS)
    return;
  sg = &shim__segs[r->seg];
  pthread_mutex_lock(&shim__cache_lock);
  /* The faulting thread holds an inflight reference, so the slot is the one it saw
   * unless the record is stale; then its requester is gone and nothing is owed. */
  if (!atomic_load(&sg->used) || atomic_load(&sg->gen) != r->gen || r->page >= sg->npages ||
      !(atomic_load(&sg->state[r->page]) & want))
    goto out;
  /* Still ours, written back since its last write (flush.c): raised here, no message. */
  if (write && page_mode(sg, r->page) == SHIM_MODE_CLEAN) {
    upgrade_clean(sg, r->page);
    goto out;
  }
  /* Ahead: following pages that need the same upgrade and that nobody else asked for. */
  limit = min_u32(write ? SHIM_WRITE_AHEAD : SHIM_READ_AHEAD, shim__session_max_run());
  for (n = 1; n < limit && r->page + n < sg->npages; n++) {
    uint32_t t = atomic_load(&sg->state[r->page + n]);
    if ((t & (SHIM_PG_REQ | SHIM_PG_ERR)) ||
        (write ? (t & SHIM_PG_MODE) >= PROTO_MODE_EXCLUSIVE : (t & SHIM_PG_MODE) != PROTO_MODE_INVALID))
      break;
  }
  memset(&m->h, 0, sizeof m->h);
  m->h.opcode = write ? PROTO_OP_ACQUIRE : PROTO_OP_READ_DATA;
  m->h.reqid = shim__session_reqid();
  m->u.run.shmid = sg->shmid;
  m->u.run.first = r->page;
  m->u.run.count = n;
  m->u.run.mode = mode;
  for (i = 0; i < n; i++) {
    m->u.run.page[i].version = sg->version[r->page + i];
    m->u.run.page[i].flags = 0;
    m->u.run.page[i].data = NULL;
  }
  if (npend == cappend) {
    size_t cap = cappend ? cappend * 2 : 16;
    struct pend *np = realloc(pend, cap * sizeof *np);
    if (np == NULL) {
      page_update(sg, r->page, SHIM_PG_ERR, want);
      goto out;
    }
    pend = np;
    cappend = cap;
  }
  pend[npend] = (struct pend){m->h.reqid, sg, atomic_load(&sg->gen), r->page, n, mode};
  err = shim__session_enqueue(m);
  if (err < 0) {
    page_update(sg, r->page, SHIM_PG_ERR, want);
    goto out;
  }
  npend++;
out:
  pthread_mutex_unlock(&shim__cache_lock);
}

/* Installs a grant. Cache lock held. */
static void install(struct shim_seg *sg, const struct pend *p, const struct proto_run *run) {
  uint32_t clr = run->mode == PROTO_MODE_EXCLUSIVE ? SHIM_PG_REQ : SHIM_PG_REQ_R;
  uint32_t i, j;
  int err = 0;

  for (i = 0; i < run->count; i++) {
    uint32_t idx = run->first + i;
    /* Never lower a page on a grant: only RECALL takes ownership away (protocol.md). */
    if (page_mode(sg, idx) > run->mode)
      continue;
    if (run->page[i].flags & PROTO_PAGE_DATA)
      memcpy(sg->priv + (size_t)idx * SHIM_PAGE, run->page[i].data, SHIM_PAGE);
    sg->version[idx] = run->page[i].version;
  }
  /* Views up, one mprotect per view and run of pages that change. */
  for (i = 0; i < run->count; i = j) {
    if (page_mode(sg, run->first + i) >= run->mode) {
      j = i + 1;
      continue;
    }
    for (j = i + 1; j < run->count && page_mode(sg, run->first + j) < run->mode; j++)
      ;
    if (shim_cache_protect(sg, run->first + i, j - i, run->mode) < 0)
      err = -1;
  }
  /* Publish. If the views could not be raised, a published mode would make the faulting
   * thread retry forever: give it SIGBUS instead. */
  /* A grant comes after the server stored whatever we last sent it: nothing is owed. */
  clr |= SHIM_PG_OWED;
  for (i = 0; i < run->count; i++) {
    uint32_t idx = run->first + i;
    if (err < 0 && page_mode(sg, idx) < run->mode)
      page_update(sg, idx, SHIM_PG_ERR, clr);
    else if (page_mode(sg, idx) < run->mode)
      shim_cache_set_mode(sg, idx, run->mode, clr);
    else
      page_update(sg, idx, 0, clr);
  }
  (void)p;
}

int shim__coh_reply(const struct proto_msg *m) {
  struct shim_seg *sg;
  const struct proto_run *run = &m->u.run;
  struct pend p;
  uint32_t clr;
  size_t i;

  for (i = 0; i < npend && pend[i].reqid != m->h.reqid; i++)
    ;
  if (i == npend)
    return 0;
  p = pend[i];
  pend[i] = pend[--npend];
  sg = p.sg;
  clr = p.mode == PROTO_MODE_EXCLUSIVE ? SHIM_PG_REQ_W : SHIM_PG_REQ_R;

  pthread_mutex_lock(&shim__cache_lock);
  if (!atomic_load(&sg->used) || atomic_load(&sg->gen) != p.gen)
    goto out;
  if (m->h.status != 0) {
    shim_debug("%s of segment %d page %u refused: %s", proto_op_name(m->h.opcode), sg->shmid,
               p.first, strerror(proto_err_to_errno(m->h.status)));
    page_update(sg, p.first, SHIM_PG_ERR, clr);
    goto out;
  }
  if ((m->h.opcode != PROTO_OP_READ_DATA && m->h.opcode != PROTO_OP_ACQUIRE) ||
      run->shmid != sg->shmid || run->first != p.first || run->count > p.count ||
      run->mode != p.mode) {
    shim_log("grant for segment %d page %u does not match the request", sg->shmid, p.first);
    page_update(sg, p.first, SHIM_PG_ERR, clr);
    goto out;
  }
  install(sg, &p, run);
out:
  pthread_mutex_unlock(&shim__cache_lock);
  return 1;
}

void shim__coh_server_request(const struct proto_msg *m) {
  pthread_mutex_lock(&shim__cache_lock);
  /* Pages pinned by an I/O call keep their mode until it returns (pin.c). */
  if (!shim__pin_defer(m))
    shim__coh_server_request_locked(m);
  pthread_mutex_unlock(&shim__cache_lock);
}

void shim__coh_server_request_locked(const struct proto_msg *m) {
  if (shim_cfg.agent) {
    shim__agent_request_locked(m); /* the data is the host's: lower the views, answer */
    return;
  }
  const struct proto_range *r = &m->u.range;
  int recall = m->h.opcode == PROTO_OP_RECALL;
  uint32_t keep = recall && r->mode == PROTO_MODE_SHARED ? PROTO_MODE_SHARED : PROTO_MODE_INVALID;
  struct proto_msg *a = &io_msg;
  struct shim_seg *sg;
  uint32_t i, j, n = 0;

  memset(&a->h, 0, sizeof a->h);
  a->h.reqid = m->h.reqid; /* acks echo the server's id, without the REPLY flag */
  sg = shim_cache_seg_find(r->shmid, 1);
  if (sg != NULL && r->first < sg->npages)
    n = min_u32(r->count, sg->npages - r->first); /* pages past the end were never held */
  if (sg != NULL && n > 0) {
    uint32_t old[PROTO_MAX_RUN];
    for (i = 0; i < n; i++) {
      old[i] = page_mode(sg, r->first + i);
      if (old[i] > keep)
        shim_cache_set_mode(sg, r->first + i, keep, 0);
    }
    for (i = 0; i < n; i = j) {
      if (old[i] <= keep) {
        j = i + 1;
        continue;
      }
      for (j = i + 1; j < n && old[j] > keep; j++)
        ;
      shim_cache_protect(sg, r->first + i, j - i, keep);
    }
    if (recall)
      for (i = 0; i < n; i++) {
        /* A SHIM_MODE_CLEAN page's data left in a WRITE_DATA queued before this ack. */
        int dirty = old[i] == PROTO_MODE_EXCLUSIVE;
        if (dirty)
          page_update(sg, r->first + i, SHIM_PG_OWED, 0);
        a->u.run.page[i].version = sg->version[r->first + i];
        a->u.run.page[i].flags = dirty ? PROTO_PAGE_DATA : 0;
        a->u.run.page[i].data = dirty ? sg->priv + (size_t)(r->first + i) * SHIM_PAGE : NULL;
      }
  }
  if (recall) {
    for (i = n; i < r->count; i++)
      a->u.run.page[i] = (struct proto_page){0, 0, NULL};
    a->h.opcode = PROTO_OP_RECALL_ACK;
    a->u.run.shmid = r->shmid;
    a->u.run.first = r->first;
    a->u.run.count = r->count;
    a->u.run.mode = keep;
  } else {
    a->h.opcode = PROTO_OP_INVALIDATE_ACK;
    a->u.range = *r;
    a->u.range.mode = PROTO_MODE_INVALID;
  }
  /* Encoded (data copied out of the private view) before the lock is dropped. */
  shim__session_enqueue(a);
}

/* ---- reconnect (session.c calls these on the I/O thread) ---- */

/* Lowers pages [p, q) of sg to INVALID: state first, then the views, as for a recall. */
static void lower_run(struct shim_seg *sg, uint32_t p, uint32_t q) {
  uint32_t i;

  for (i = p; i < q; i++)
    shim_cache_set_mode(sg, i, PROTO_MODE_INVALID, 0);
  shim_cache_protect(sg, p, q - p, PROTO_MODE_INVALID);
}

/* Whether the server may miss this page's data: we hold it EXCLUSIVE (dirty, or CLEAN:
 * its background write-back may have died with the server unread), or we gave it up and
 * the server may have died before storing it. */
static int owed(struct shim_seg *sg, uint32_t p) {
  uint32_t w = atomic_load(&sg->state[p]), mode = w & SHIM_PG_MODE;
  return sg->version[p] != 0 &&
         (mode == PROTO_MODE_EXCLUSIVE || mode == SHIM_MODE_CLEAN || (w & SHIM_PG_OWED));
}

/* Writes back the owed pages of sg, lowering every readable page to INVALID (it is
 * revalidated by version at its next fault: same version, no data). Cache lock held. */
static int resync_pages(int fd, struct shim_seg *sg, struct proto_msg *m) {
  uint32_t p = 0, q, i, maxrun = shim__session_max_run();
  int err = 0;

  for (p = 0; p < sg->npages; p = q) {
    if (!owed(sg, p)) {
      q = p + 1;
      if (page_mode(sg, p) != PROTO_MODE_INVALID) {
        for (; q < sg->npages && !owed(sg, q) && page_mode(sg, q) != PROTO_MODE_INVALID; q++)
          ;
        lower_run(sg, p, q);
      }
      continue;
    }
    for (q = p + 1; q < sg->npages && q - p < maxrun && owed(sg, q); q++)
      ;
    lower_run(sg, p, q);
    memset(m, 0, 2 * sizeof *m);
    m->h.opcode = PROTO_OP_WRITE_DATA;
    m->u.run.shmid = sg->shmid;
    m->u.run.first = p;
    m->u.run.count = q - p;
    m->u.run.mode = PROTO_MODE_INVALID;
    for (i = p; i < q; i++) {
      m->u.run.page[i - p] = (struct proto_page){sg->version[i], PROTO_PAGE_DATA,
                                                 sg->priv + (size_t)i * SHIM_PAGE};
      page_update(sg, i, 0, SHIM_PG_OWED);
    }
    err = shim__session_sync_call(fd, &m[0], &m[1]);
    /* Whether the server took the data (it did if it still held the page for us) or not
     * (it had given the page up): the next fault fetches it, never trusting our copy. */
    for (i = p; i < q; i++)
      sg->version[i] = 0;
    if (err < 0)
      break;
  }
  return err;
}

int shim__coh_resync(int fd, int same_server) {
  struct shim_view_info *vi = malloc(SHIM_MAX_VIEWS * sizeof *vi);
  struct proto_msg *m = malloc(2 * sizeof *m);
  int i, k, n, err = 0;

  if (vi == NULL || m == NULL) {
    free(vi);
    free(m);
    return -ENOMEM;
  }
  pthread_mutex_lock(&shim__cache_lock);
  n = shim_cache_views(vi, SHIM_MAX_VIEWS);
  for (i = 0; i < SHIM_MAX_SEGS && err == 0; i++) {
    struct shim_seg *sg = &shim__segs[i];
    uint32_t nrw = 0, nro = 0;
    int rc;

    if (!atomic_load(&sg->used) || atomic_load(&sg->lost))
      continue;
    for (k = 0; k < n; k++)
      if (vi[k].seg == i)
        (vi[k].flags & SHIM_VIEW_RDONLY) ? nro++ : nrw++;
    /* A shmdt in progress (its last view is gone, its write-back and DETACH wait for us):
     * registered once more so that both apply; a DETACH that had already left before the
     * drop leaves nattch one too high until this connection closes. */
    if (atomic_load(&sg->dying) && nrw + nro == 0)
      nrw = 1;
    shim_debug("reconnect: segment %d: %u rw + %u ro attachments", sg->shmid, nrw, nro);
    if (nrw + nro == 0)
      continue;
    rc = -EIDRM;
    if (same_server) {
      memset(m, 0, 2 * sizeof *m);
      m->h.opcode = PROTO_OP_REATTACH;
      m->u.reattach.cred = (struct proto_cred){(uint32_t)getpid(), (uint32_t)geteuid(),
                                               (uint32_t)getegid()};
      m->u.reattach.shmid = sg->shmid;
      m->u.reattach.nrw = nrw;
      m->u.reattach.nro = nro;
      rc = shim__session_sync_call(fd, &m[0], &m[1]);
      if (rc == 0)
        rc = resync_pages(fd, sg, m);
      shim_debug("reconnect: segment %d re-registered: %d", sg->shmid, rc);
    }
    if (rc == -EINVAL || rc == -EIDRM || rc == -EACCES) {
      /* The server does not have it any more (restarted without --data-dir, or it was
       * destroyed): its pages fault with SIGBUS, calls on its id fail with EIDRM. */
      shim_log("segment %d is gone after the server restarted: its pages now fault with "
               "SIGBUS", sg->shmid);
      atomic_store(&sg->lost, 1);
      shim_cache_seg_fail(sg);
    } else if (rc < 0) {
      err = rc;
    }
  }
  pthread_mutex_unlock(&shim__cache_lock);
  free(vi);
  free(m);
  return err;
}

void shim__coh_resume(void) {
  size_t n = npend, i;
  struct pend *old = pend;

  /* Every request in flight when the connection dropped is asked again, fresh. */
  pend = NULL;
  npend = cappend = 0;
  for (i = 0; i < n; i++) {
    struct shim_seg *sg = old[i].sg;
    struct shim_fault_rec r = {old[i].mode == PROTO_MODE_EXCLUSIVE ? SHIM_REC_WRITE
                                                                   : SHIM_REC_READ,
                               (uint32_t)(sg - shim__segs), old[i].gen, old[i].first};
    if (atomic_load(&sg->lost)) {
      pthread_mutex_lock(&shim__cache_lock);
      if (atomic_load(&sg->used) && atomic_load(&sg->gen) == old[i].gen)
        page_update(sg, old[i].first, SHIM_PG_ERR, SHIM_PG_REQ);
      pthread_mutex_unlock(&shim__cache_lock);
      continue;
    }
    shim__coh_fault(&r);
  }
  free(old);
}

void shim__coh_fork_child(void) {
  npend = 0; /* the parent's requests: its I/O thread answers them, not ours */
  atomic_store(&shim__exiting, 0);
}

void shim__coh_dead(void) {
  uint32_t p;
  int i;

  npend = 0;
  pthread_mutex_lock(&shim__cache_lock);
  for (i = 0; i < SHIM_MAX_SEGS; i++) {
    struct shim_seg *sg = &shim__segs[i];
    if (!atomic_load(&sg->used))
      continue;
    /* Agent mode: the host's memory is no longer kept coherent with anything; a write to
     * it now would be lost without a trace. Every view goes and every access gets SIGBUS,
     * as the processes of a crashed host would die (docs/shim.md). */
    if (sg->host != NULL) {
      shim_agent_lower(sg, 0, sg->npages, PROTO_MODE_INVALID);
      for (p = 0; p < sg->npages; p++)
        shim_cache_set_bits(sg, p, SHIM_PG_ERR);
      continue;
    }
    /* shim__dead is already set: a thread that requests after this scan sees it before
     * sleeping (fault.c); one that requested before is woken here. */
    for (p = 0; p < sg->npages; p++)
      if (atomic_load(&sg->state[p]) & (SHIM_PG_REQ | SHIM_PG_WAIT))
        page_update(sg, p, SHIM_PG_ERR, SHIM_PG_REQ);
  }
  pthread_mutex_unlock(&shim__cache_lock);
}

int shim_coh_writeback(struct shim_seg *sg, int timeout_ms) {
  struct proto_msg *m = malloc(sizeof *m);
  struct shim_waiter w[SHIM_WB_BATCH];
  uint32_t p = 0, q, i, maxrun = shim__session_max_run();
  int err = 0, e, nw;

  if (m == NULL)
    return -ENOMEM;
  while (err == 0) {
    nw = 0;
    pthread_mutex_lock(&shim__cache_lock);
    while (nw < SHIM_WB_BATCH && err == 0) {
      /* Dirty pages only: a SHIM_MODE_CLEAN page's data is at the server already (its
       * WRITE_DATA left first), and the DETACH or disconnect that follows ends the
       * ownership; a RECALL before that is answered without data, which is right. */
      while (p < sg->npages && page_mode(sg, p) != PROTO_MODE_EXCLUSIVE)
        p++;
      if (p == sg->npages)
        break;
      for (q = p + 1; q < sg->npages && q - p < maxrun && page_mode(sg, q) == PROTO_MODE_EXCLUSIVE; q++)
        ;
      for (i = p; i < q; i++) {
        shim_cache_set_mode(sg, i, PROTO_MODE_INVALID, 0);
        page_update(sg, i, SHIM_PG_OWED, 0);
      }
      shim_cache_protect(sg, p, q - p, PROTO_MODE_INVALID);
      memset(&m->h, 0, sizeof m->h);
      m->h.opcode = PROTO_OP_WRITE_DATA;
      m->u.run.shmid = sg->shmid;
      m->u.run.first = p;
      m->u.run.count = q - p;
      m->u.run.mode = PROTO_MODE_INVALID;
      for (i = p; i < q; i++)
        m->u.run.page[i - p] = (struct proto_page){sg->version[i], PROTO_PAGE_DATA,
                                                   sg->priv + (size_t)i * SHIM_PAGE};
      shim_session_waiter_init(&w[nw], NULL);
      err = shim_session_submit(m, &w[nw]);
      if (err < 0)
        pthread_cond_destroy(&w[nw].cond);
      else
        nw++;
      p = q;
    }
    pthread_mutex_unlock(&shim__cache_lock);
    if (nw == 0)
      break;
    for (e = 0; e < nw; e++) {
      /* After one failure the others are not waited for again in full. */
      int rc = shim_session_wait(&w[e], err < 0 ? 0 : timeout_ms);
      if (rc < 0 && err == 0)
        err = rc;
    }
  }
  free(m);
  if (err < 0)
    shim_log("write-back of segment %d failed: %s", sg->shmid, strerror(-err));
  return err;
}

/* One DETACH of shmid, waiting for its reply. */
static int detach_once(int shmid) {
  struct proto_msg *m = calloc(1, sizeof *m);
  int err;

  if (m == NULL)
    return -ENOMEM;
  m->h.opcode = PROTO_OP_DETACH_SEGMENT;
  m->u.segref.cred =
      (struct proto_cred){(uint32_t)getpid(), (uint32_t)geteuid(), (uint32_t)getegid()};
  m->u.segref.shmid = shmid;
  err = shim_session_call(m, NULL);
  free(m);
  return err;
}

int shim_coh_detach(struct shim_seg *sg, int shmid, int n) {
  int attempt, k, err = 0;

  /* A retry needs a successful reconnect in between, so this ends: at most a few tries,
   * each bounded by DSHM_TIMEOUT_MS. */
  for (attempt = 0; attempt < 3; attempt++) {
    err = shim_coh_writeback(sg, shim_cfg.timeout_ms);
    for (k = 0; k < n && err == 0; k++)
      err = detach_once(shmid);
    if (err != -ENOTCONN || atomic_load(&sg->lost))
      break;
    /* The connection dropped with our frames in flight: the server may have missed them
     * (background write-backs too). Wait for the reconnect, which writes back what it may
     * miss and registers sg again (it is still in the table), then detach again. */
    if (shim_session_ensure() < 0)
      break;
  }
  return err;
}

void shim_coh_exit(void) {
  int i, err;

  /* Agent mode: the data is already in the host's memory, and the agent detaches us when
   * our connection closes at exit, as the kernel does. */
  if (shim_cfg.agent || !shim_session_mine())
    return;
  atomic_store(&shim__exiting, 1);
  for (i = 0; i < SHIM_MAX_SEGS; i++) {
    struct shim_seg *sg = &shim__segs[i];
    int shmid, nviews;

    pthread_mutex_lock(&shim__cache_lock);
    shmid = sg->shmid;
    nviews = atomic_load(&sg->used) && !atomic_load(&sg->dying) && !atomic_load(&sg->lost)
                 ? sg->nviews : 0;
    pthread_mutex_unlock(&shim__cache_lock);
    if (nviews == 0)
      continue;
    /* The mappings stay (other threads may still run until exit_group); only the
     * server's data, nattch and lpid/dtime are brought up to date. */
    err = shim_coh_detach(sg, shmid, nviews);
    if (err == -ETIMEDOUT || err == -ENOTCONN)
      break; /* the server does not answer: one wait, not one per segment */
  }
}
