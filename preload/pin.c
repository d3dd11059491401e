/* pin.c - owns page pinning for I/O calls and the queue of agent requests deferred by pins.
 *
 * The kernel touching a segment page (read into it, write from it) must find the page in the
 * mode it needs and keep it so until the call returns: a protected page gives EFAULT, a short
 * transfer or a lost datagram, never a fault we could serve. An I/O call therefore declares
 * a pin on each page (its intent), waits until the page has the mode, then moves on to the
 * next page. The I/O thread defers an INVALIDATE or RECALL that would take a pinned page
 * below the mode its pinner needs *and already has*; it answers once the pins are gone.
 *
 * Deadlock freedom (docs/shim-io.md): pins are taken in one global order, (shmid, page),
 * by every thread of every process, and a pin defers nothing while its page is still being
 * fetched, so a waiting pinner never holds up the request it waits behind.
 */
#include "pin.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agentpage.h"
#include "cache.h"
#include "session.h"

/* A deferred agent request (I/O thread only, plus the count read by pinners). */
struct deferred {
  struct proto_hdr h;
  struct proto_range r;
};

static struct deferred *dq;
static size_t ndq, capdq;
static atomic_int ndeferred;
static struct proto_msg replay; /* 6 KiB: not on the I/O thread's stack */

void shim_pin_init(struct shim_pinset *ps) {
  memset(ps, 0, sizeof *ps);
  ps->run = ps->local;
  ps->cap = SHIM_PIN_LOCAL;
}

void shim_pin_fini(struct shim_pinset *ps) {
  if (ps->run != ps->local)
    free(ps->run);
  ps->run = NULL;
}

static int grow(struct shim_pinset *ps, int need) {
  struct shim_pin_run *nr;
  int cap = ps->cap;

  if (need <= cap)
    return 0;
  while (cap < need)
    cap *= 2;
  nr = malloc((size_t)cap * sizeof *nr);
  if (nr == NULL)
    return -ENOMEM;
  memcpy(nr, ps->run, (size_t)ps->n * sizeof *nr);
  if (ps->run != ps->local)
    free(ps->run);
  ps->run = nr;
  ps->cap = cap;
  return 0;
}

int shim_pin_add(struct shim_pinset *ps, const void *p, size_t len, int level) {
  struct shim_vrange vr[8], *v = vr;
  int n, i, err = 0;

  if (p == NULL || len == 0 || !shim_cache_overlaps((uintptr_t)p, len))
    return 0;
  pthread_mutex_lock(&shim__cache_lock);
  n = shim_cache_views_in((uintptr_t)p, len, vr, 8);
  if (n > 8) {
    v = malloc((size_t)n * sizeof *v);
    if (v == NULL) {
      err = -ENOMEM;
      goto out;
    }
    n = shim_cache_views_in((uintptr_t)p, len, v, n);
  }
  err = grow(ps, ps->n + n);
  for (i = 0; i < n && err == 0; i++) {
    if (level == SHIM_PIN_EXCL && (v[i].flags & SHIM_VIEW_RDONLY))
      continue;
    ps->run[ps->n++] = (struct shim_pin_run){(int)(v[i].seg - shim__segs), v[i].gen,
                                             v[i].seg->shmid, v[i].first, v[i].count, level};
  }
out:
  pthread_mutex_unlock(&shim__cache_lock);
  if (v != vr)
    free(v);
  return err;
}

static int run_cmp(const void *a, const void *b) {
  const struct shim_pin_run *x = a, *y = b;

  if (x->shmid != y->shmid)
    return x->shmid < y->shmid ? -1 : 1;
  if (x->first != y->first)
    return x->first < y->first ? -1 : 1;
  return y->level - x->level; /* EXCLUSIVE first: the SHARED pin then finds it ready */
}

/* Cache lock held: the segment of run r if it is still the one collected, else NULL. */
static struct shim_seg *run_seg(const struct shim_pin_run *r) {
  struct shim_seg *sg = &shim__segs[r->slot];

  if (!atomic_load(&sg->used) || atomic_load(&sg->gen) != r->gen || atomic_load(&sg->dying))
    return NULL;
  return sg;
}

static uint32_t pin_unit(int level) {
  return level == SHIM_PIN_EXCL ? SHIM_PIN_ONE_W : SHIM_PIN_ONE_R;
}

/* Cache lock held. Drops every pin the set holds. */
static void unpin_locked(struct shim_pinset *ps) {
  int i;

  for (i = 0; i <= ps->held_run && i < ps->n; i++) {
    const struct shim_pin_run *r = &ps->run[i];
    struct shim_seg *sg = &shim__segs[r->slot];
    uint32_t k, upto = i < ps->held_run ? r->count : ps->held_page;
    /* A segment freed meanwhile took its pin array with it. */
    if (!atomic_load(&sg->used) || atomic_load(&sg->gen) != r->gen)
      continue;
    for (k = 0; k < upto; k++)
      sg->pin[r->first + k] -= pin_unit(r->level);
  }
  ps->held_run = 0;
  ps->held_page = 0;
}

static void wake_io(void) {
  struct shim_fault_rec rec = {SHIM_REC_WAKE, 0, 0, 0};

  if (atomic_load(&ndeferred) > 0)
    shim_session_post_fault(&rec);
}

/* Cache lock held on entry and exit (dropped while sleeping). Brings page pg of run r to
 * the run's mode. 0, or -EFAULT if that can never happen. */
static int page_ready(const struct shim_pin_run *r, uint32_t pg) {
  return shim_agent_page_ready(r->slot, r->gen, pg, r->level == SHIM_PIN_EXCL);
}

int shim_pin_acquire(struct shim_pinset *ps) {
  int i, err = 0;

  if (ps->n == 0)
    return 0;
  qsort(ps->run, (size_t)ps->n, sizeof *ps->run, run_cmp);
  pthread_mutex_lock(&shim__cache_lock);
  ps->held_run = 0;
  ps->held_page = 0;
  for (i = 0; i < ps->n && err == 0; i++) {
    const struct shim_pin_run *r = &ps->run[i];
    uint32_t k;
    for (k = 0; k < r->count && err == 0; k++) {
      struct shim_seg *sg = run_seg(r);
      if (sg == NULL) {
        err = -EFAULT;
        break;
      }
      /* The intent first: once the page arrives no request can take it away. */
      sg->pin[r->first + k] += pin_unit(r->level);
      ps->held_run = i;
      ps->held_page = k + 1;
      err = page_ready(r, r->first + k);
    }
    if (err == 0) {
      ps->held_run = i + 1;
      ps->held_page = 0;
    }
  }
  if (err < 0)
    unpin_locked(ps);
  pthread_mutex_unlock(&shim__cache_lock);
  if (err < 0)
    wake_io();
  return err;
}

void shim_pin_release(struct shim_pinset *ps) {
  if (ps->n == 0)
    return;
  pthread_mutex_lock(&shim__cache_lock);
  unpin_locked(ps);
  pthread_mutex_unlock(&shim__cache_lock);
  wake_io();
}

/* ---- the I/O thread's side ------------------------------------------------------------ */

static int ranges_overlap(const struct proto_range *a, const struct proto_range *b) {
  return a->shmid == b->shmid && a->first < b->first + b->count && b->first < a->first + a->count;
}

/* Cache lock held: 1 if lowering r's pages to its target would break a pin that holds. */
static int pinned(const struct proto_hdr *h, const struct proto_range *r) {
  uint32_t keep = h->opcode == PROTO_OP_RECALL && r->mode == PROTO_MODE_SHARED
                      ? PROTO_MODE_SHARED : PROTO_MODE_INVALID;
  struct shim_seg *sg = shim_cache_seg_find(r->shmid, 1);
  uint32_t i, n;

  if (sg == NULL || r->first >= sg->npages)
    return 0;
  n = r->count < sg->npages - r->first ? r->count : sg->npages - r->first;
  for (i = 0; i < n; i++) {
    uint32_t pin = sg->pin[r->first + i];
    uint32_t mode = atomic_load(&sg->state[r->first + i]) & SHIM_PG_MODE;
    /* A pin only holds a page its pinner already has in the needed mode: one still
     * waiting for an upgrade must let the request it queues behind go through. */
    if ((pin >> 16) != 0 && mode == PROTO_MODE_EXCLUSIVE && keep != PROTO_MODE_EXCLUSIVE)
      return 1;
    if ((pin & 0xffffu) != 0 && mode != PROTO_MODE_INVALID && keep == PROTO_MODE_INVALID)
      return 1;
  }
  return 0;
}

/* Cache lock held: 1 if an earlier deferred request (before index upto) covers a page of r;
 * requests for one page are answered in the order they came. */
static int behind(const struct proto_range *r, size_t upto) {
  size_t i;

  for (i = 0; i < upto; i++)
    if (ranges_overlap(&dq[i].r, r))
      return 1;
  return 0;
}

int shim__pin_defer(const struct proto_msg *m) {
  if (!behind(&m->u.range, ndq) && !pinned(&m->h, &m->u.range))
    return 0;
  if (ndq == capdq) {
    size_t cap = capdq ? capdq * 2 : 16;
    struct deferred *nq = realloc(dq, cap * sizeof *nq);
    if (nq == NULL)
      return 0; /* answering now breaks a pin (the kernel may see EFAULT); never lose an ack */
    dq = nq;
    capdq = cap;
  }
  dq[ndq].h = m->h;
  dq[ndq].r = m->u.range;
  ndq++;
  atomic_store(&ndeferred, (int)ndq);
  return 1;
}

void shim__pin_retry(void) {
  size_t i = 0;

  if (atomic_load(&ndeferred) == 0)
    return;
  pthread_mutex_lock(&shim__cache_lock);
  while (i < ndq) {
    if (behind(&dq[i].r, i) || pinned(&dq[i].h, &dq[i].r)) {
      i++;
      continue;
    }
    memset(&replay.h, 0, sizeof replay.h);
    replay.h = dq[i].h;
    replay.u.range = dq[i].r;
    memmove(&dq[i], &dq[i + 1], (ndq - i - 1) * sizeof *dq);
    ndq--;
    shim__agent_request_locked(&replay);
  }
  atomic_store(&ndeferred, (int)ndq);
  pthread_mutex_unlock(&shim__cache_lock);
}

void shim__pin_fork_child(void) {
  ndq = 0;
  atomic_store(&ndeferred, 0);
}
