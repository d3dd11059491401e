/* agentpage.c - the page engine: owns the protections of this process's views.
 *
 * The host's copy of a segment is the agent's memfd, which every view maps; the host page
 * table (proto/hosttab.h) says what the host holds. Per page the process keeps one word
 * (cache.h): the highest mode any of its views may have, and BUSY while a thread changes
 * the views of the page. The rules that keep a view from ever exceeding what the host holds
 * once the agent has been told the page is lowered:
 *  - raising (fault handler, pins): take BUSY, set our bit in holders, THEN read the host's
 *    mode, mprotect up to it, record it, drop BUSY. The agent lowers the host word before it
 *    reads holders, so either we see the lower mode or the agent sees our bit and asks us;
 *  - lowering (the agent's request, the mapping budget): take BUSY, record the lower mode,
 *    mprotect every view down, drop BUSY, and only then acknowledge. A raise that saw the old
 *    mode finished before we took BUSY, so its mprotect is undone by ours.
 * A thread holds BUSY only for a few system calls and never waits while holding it. */
#include "agentpage.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "kabi.h"
#include "pin.h"
#include "real.h"
#include "session.h"
#include "vma.h"

#define WAIT_SLICE_MS 100 /* a sleeper looks again this often (agent or segment gone) */
#define RAISE_AHEAD   63u /* pages raised after a faulting one: the rest of a read-ahead */

atomic_int shim__agent_fd = -1;
atomic_uint shim__agent_slot;

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void futex_wait(_Atomic uint32_t *w, uint32_t val, int shared, long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

  syscall(SYS_futex, (uint32_t *)w, shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

/* Takes BUSY on page p's word (waiting while another thread has it). Returns the word. */
static uint32_t busy_take(_Atomic uint32_t *w) {
  for (;;) {
    uint32_t s = atomic_load(w);
    if (s & SHIM_PG_BUSY) {
      if ((s & SHIM_PG_WAIT) || atomic_compare_exchange_weak(w, &s, s | SHIM_PG_WAIT))
        futex_wait(w, s | SHIM_PG_WAIT, 0, 10);
      continue;
    }
    if (atomic_compare_exchange_weak(w, &s, s | SHIM_PG_BUSY))
      return s;
  }
}

/* Drops BUSY, setting the mode (and ERR if err) and waking waiters. */
static void busy_drop(_Atomic uint32_t *w, uint32_t mode, int err) {
  uint32_t old = atomic_load(w), nw;

  do
    nw = (old & ~(SHIM_PG_BUSY | SHIM_PG_WAIT | SHIM_PG_MODE)) | mode | (err ? SHIM_PG_ERR : 0);
  while (!atomic_compare_exchange_weak(w, &old, nw));
  if (old & SHIM_PG_WAIT)
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* BUSY held: sets our bit in the page's holders, THEN reads the host's word (the Dekker
 * handshake with the agent's lowering, proto/hosttab.h), and returns the word. The bit is
 * read again after the word: the agent clears the bits of the processes it told once a
 * revocation is complete, and that clearing can land between our setting and our reading
 * (we took BUSY right after our own lowering for it, before its acknowledgement reached the
 * agent); a word read then may already be a later grant's, with our bit gone. */
static uint32_t announce(struct dshm_hostpage *hp) {
  uint64_t bit = dshm_ht_bit(atomic_load(&shim__agent_slot));
  uint32_t h;

  do {
    atomic_fetch_or(&hp->holders, bit);
    h = atomic_load(&hp->word);
  } while (!(atomic_load(&hp->holders) & bit));
  return h;
}

/* Async-signal-safe: a record about one page, one SOCK_SEQPACKET message (one send(2) is one
 * whole message, whoever else writes to the socket): a fault record (READ_DATA or ACQUIRE,
 * a run of one page) or RAISED (a range of one page). The run header and the range have the
 * same layout. 0 or -1. */
static int send_page_msg(uint8_t op, int32_t shmid, uint32_t page, uint32_t mode) {
  uint8_t f[PROTO_HDR_SIZE + PROTO_RUN_HDR + PROTO_RUN_ENTRY];
  size_t len = op == PROTO_OP_RAISED ? PROTO_HDR_SIZE + PROTO_RUN_HDR : sizeof f;
  int fd = atomic_load(&shim__agent_fd);

  if (fd < 0)
    return -1;
  memset(f, 0, sizeof f);
  proto_put_u32(f, PROTO_MAGIC);
  f[4] = PROTO_VERSION;
  f[5] = op;
  proto_put_u32(f + 16, (uint32_t)(len - PROTO_HDR_SIZE));
  proto_put_u32(f + 20, (uint32_t)shmid);
  proto_put_u32(f + 24, page);
  proto_put_u32(f + 28, 1);
  proto_put_u32(f + 32, mode);
  for (;;) {
    ssize_t n = send(fd, f, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == (ssize_t)len)
      return 0;
    if (n < 0 && errno == EAGAIN) {
      sched_yield();
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    return -1;
  }
}

static int send_record(int32_t shmid, uint32_t page, int write) {
  return send_page_msg(write ? PROTO_OP_ACQUIRE : PROTO_OP_READ_DATA, shmid, page,
                       write ? PROTO_MODE_EXCLUSIVE : PROTO_MODE_SHARED);
}

/* After raising page p: a grant made for this host's waiters has been used (hosttab.h,
 * the fresh word); if the agent holds a revocation of it until then, it may go on. */
static void fresh_used(struct shim_seg *sg, uint32_t p) {
  _Atomic uint32_t *f = &sg->host[p].fresh;

  if (atomic_load_explicit(f, memory_order_relaxed) != 0 && atomic_exchange(f, 0) == DSHM_HT_HELD)
    (void)send_page_msg(PROTO_OP_RAISED, sg->shmid, p, PROTO_MODE_INVALID);
}

/* Raises page p of sg to what the host holds, if that is enough for want: in the view at
 * vstart (vflags) only, or (vstart 0, cache lock held) in every view of sg. 1 done, 0 the
 * host does not hold enough (any more), -1 failed (SIGBUS). The one place that raises: BUSY,
 * then the holders bit and the word (announce), then the mprotect. */
static int raise_page(struct shim_seg *sg, uint32_t p, uint32_t want, uintptr_t vstart,
                      int vflags) {
  _Atomic uint32_t *w = &sg->state[p];
  uint32_t s = busy_take(w), mode = s & SHIM_PG_MODE, h = announce(&sg->host[p]);
  uint32_t hm = dshm_ht_mode(h);
  int rc = 0;

  if (h & DSHM_HT_ERR) {
    rc = -1;
  } else if (hm >= want) {
    int err = vstart != 0 ? mprotect((void *)(vstart + (uintptr_t)p * SHIM_PAGE), SHIM_PAGE,
                                     shim_prot_of(hm, vflags))
                          : shim_cache_protect(sg, p, 1, hm);
    rc = err < 0 ? -1 : 1;
    if (rc > 0 && hm > mode)
      mode = hm;
  }
  busy_drop(w, mode, rc < 0);
  if (mode != (s & SHIM_PG_MODE))
    shim__vma_note(sg, p, s & SHIM_PG_MODE, mode);
  if (rc > 0)
    fresh_used(sg, p);
  return rc;
}

/* After a fault raised page p of the view at vstart: the pages after it that this process
 * holds at INVALID and the host already holds at want or more (the rest of a read-ahead
 * grant) are raised too, with one mprotect per mode, and every page raised is mapped in with
 * one MADV_POPULATE_READ. A sequential reader then takes one signal per grant instead of one
 * signal and one minor fault per page (each ~10-20 us on a VM). Only an optimisation: it
 * stops at the first page it cannot take at once (BUSY elsewhere, raised already, or the
 * host short), and each page goes through the same BUSY/announce protocol as raise_page. */
static void raise_ahead(struct shim_seg *sg, uint32_t p, uintptr_t vstart, int vflags,
                        uint32_t want) {
  uint32_t mode[RAISE_AHEAD], n, i, j;

  for (n = 0; n < RAISE_AHEAD && p + 1 + n < sg->npages; n++) {
    uint32_t q = p + 1 + n, st = atomic_load(&sg->state[q]), h;
    if ((st & (SHIM_PG_BUSY | SHIM_PG_ERR | SHIM_PG_MODE)) != PROTO_MODE_INVALID ||
        dshm_ht_mode(atomic_load(&sg->host[q].word)) < want ||
        !atomic_compare_exchange_strong(&sg->state[q], &st, st | SHIM_PG_BUSY))
      break;
    h = announce(&sg->host[q]);
    if ((h & DSHM_HT_ERR) || dshm_ht_mode(h) < want) {
      busy_drop(&sg->state[q], PROTO_MODE_INVALID, 0);
      break;
    }
    mode[n] = dshm_ht_mode(h);
  }
  for (i = 0; i < n; i = j) {
    for (j = i + 1; j < n && mode[j] == mode[i]; j++)
      ;
    if (mprotect((void *)(vstart + (uintptr_t)(p + 1 + i) * SHIM_PAGE), (size_t)(j - i) * SHIM_PAGE,
                 shim_prot_of(mode[i], vflags)) < 0)
      for (uint32_t k = i; k < j; k++)
        mode[k] = PROTO_MODE_INVALID; /* left as it was: a later fault retries it */
  }
  for (i = 0; i < n; i++) {
    busy_drop(&sg->state[p + 1 + i], mode[i], 0);
    if (mode[i] != PROTO_MODE_INVALID)
      shim__vma_note(sg, p + 1 + i, PROTO_MODE_INVALID, mode[i]);
  }
  /* Failure (an old kernel without it) only costs the minor faults it would have saved. */
  (void)syscall(SYS_madvise, (void *)(vstart + (uintptr_t)p * SHIM_PAGE),
                (size_t)(n + 1) * SHIM_PAGE, MADV_POPULATE_READ); /* not the interposed madvise */
}

/* The fault handler's raise of the faulting view (and of what follows it, raise_ahead). No
 * signal handler may run on this thread while it holds BUSY: one that touched the page would
 * wait for BUSY forever. */
static int raise_view(struct shim_seg *sg, uint32_t p, uintptr_t vstart, int vflags,
                      uint32_t want) {
  sigset_t all, old;
  int rc;

  sigfillset(&all);
  shim_real.pthread_sigmask(SIG_BLOCK, &all, &old);
  rc = raise_page(sg, p, want, vstart, vflags);
  if (rc > 0)
    raise_ahead(sg, p, vstart, vflags, want);
  shim_real.pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* Called from the fault handler after a raise: past the mapping budget, the I/O thread
 * drops cold runs (vma.c) and this thread waits for that, so the views never run far past
 * DSHM_MAX_MAPS. */
static void budget_wait(void) {
  for (int tries = 0; tries < 3 && shim__vma_over(); tries++) {
    uint32_t g = atomic_load(&shim__vma_trims);
    struct shim_fault_rec r = {SHIM_REC_TRIM, 0, 0, 0};
    if (shim_session_post_fault(&r) < 0)
      return;
    futex_wait((_Atomic uint32_t *)&shim__vma_trims, g, 0, WAIT_SLICE_MS);
  }
}

#define UNSENT_SLICE_MS 10 /* how often a record the socket refused is tried again */

/* The host does not hold page p of sg well enough (word h): asks the agent (again after
 * every change of the page that left it short, sent_gen tracking that) and announces WAIT.
 * 1: sleep on the word h | WAIT for *slice ms; 2: the record could not be sent (the agent's
 * socket is closing: the I/O thread is about to declare the agent gone, which the caller's
 * next look sees, so that the SIGBUS names the right cause), sleep *slice ms (sleep_unsent)
 * and try again; 0: the word moved, look again; -1: the deadline passed. */
static int ask(struct shim_seg *sg, uint32_t p, int write, uint32_t h, uint32_t *sent_gen,
               long deadline, long *slice) {
  _Atomic uint32_t *hw = &sg->host[p].word;
  long left = deadline - now_ms();

  if (left <= 0)
    return -1;
  if ((h >> DSHM_HT_GEN_SHIFT) != *sent_gen) {
    if (send_record(sg->shmid, p, write) < 0) {
      *slice = left < UNSENT_SLICE_MS ? left : UNSENT_SLICE_MS;
      return 2;
    }
    *sent_gen = h >> DSHM_HT_GEN_SHIFT;
  }
  if (!(h & DSHM_HT_WAIT) && !atomic_compare_exchange_strong(hw, &h, h | DSHM_HT_WAIT))
    return 0;
  *slice = left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS;
  return 1;
}

/* ask()'s 2: a short sleep that the session's loss ends early (it wakes shim__dead). */
static void sleep_unsent(long slice) {
  futex_wait((_Atomic uint32_t *)&shim__dead, 0, 0, slice);
}

int shim_agent_fault(struct shim_hit *hit, uintptr_t addr, int write) {
  uint32_t want = write ? PROTO_MODE_EXCLUSIVE : PROTO_MODE_SHARED;
  long deadline = now_ms() + shim_cfg.timeout_ms;
  uint32_t sent_gen = UINT32_MAX;

  for (;;) {
    struct shim_seg *sg = hit->seg;
    _Atomic uint32_t *hw = &sg->host[hit->page].word;
    uint32_t h = atomic_load(hw);
    long slice;
    int rc;

    if (atomic_load(&shim__dead) || (atomic_load(&sg->state[hit->page]) & SHIM_PG_ERR) ||
        (h & DSHM_HT_ERR)) {
      shim_cache_release(hit);
      return -1;
    }
    if (atomic_load(&sg->dying)) {
      shim_cache_release(hit);
      return 0; /* detached under our feet: the retry faults as not ours */
    }
    if (dshm_ht_mode(h) >= want) {
      rc = raise_view(sg, hit->page, hit->vstart, hit->flags, want);
      if (rc != 0) {
        shim_cache_release(hit);
        if (rc > 0)
          budget_wait();
        return rc > 0 ? 0 : -1;
      }
      continue; /* lowered meanwhile: look again */
    }
    rc = ask(sg, hit->page, write, h, &sent_gen, deadline, &slice);
    if (rc == 0)
      continue;
    /* Not holding the segment while asleep: a detach must not wait for the server. */
    shim_cache_release(hit);
    if (rc < 0)
      return -1;
    if (rc == 2)
      sleep_unsent(slice);
    else
      futex_wait(hw, h | DSHM_HT_WAIT, 1, slice);
    if (shim_cache_lookup(addr, hit) < 0)
      return 0; /* the view is gone: the retry decides whose fault it is */
  }
}

int shim_agent_page_ready(int slot, unsigned gen, uint32_t pg, int write) {
  uint32_t want = write ? PROTO_MODE_EXCLUSIVE : PROTO_MODE_SHARED, sent_gen = UINT32_MAX;
  long deadline = now_ms() + shim_cfg.timeout_ms;

  for (;;) {
    struct shim_seg *sg = &shim__segs[slot];
    _Atomic uint32_t *hw;
    uint32_t h;
    long slice;
    int rc;

    if (!atomic_load(&sg->used) || atomic_load(&sg->gen) != gen || atomic_load(&sg->dying) ||
        atomic_load(&shim__dead) || sg->host == NULL)
      return -EFAULT;
    hw = &sg->host[pg].word;
    h = atomic_load(hw);
    if ((h & DSHM_HT_ERR) || (atomic_load(&sg->state[pg]) & SHIM_PG_ERR))
      return -EFAULT;
    if (dshm_ht_mode(h) >= want) {
      /* Every view: the kernel may use the buffer through any of them. */
      rc = raise_page(sg, pg, want, 0, 0);
      if (rc != 0)
        return rc > 0 ? 0 : -EFAULT;
      continue;
    }
    rc = ask(sg, pg, write, h, &sent_gen, deadline, &slice);
    if (rc == 0)
      continue;
    if (rc < 0)
      return -EFAULT;
    pthread_mutex_unlock(&shim__cache_lock);
    if (rc == 2)
      sleep_unsent(slice);
    else
      futex_wait(hw, h | DSHM_HT_WAIT, 1, slice);
    pthread_mutex_lock(&shim__cache_lock);
  }
}

void shim_agent_lower(struct shim_seg *sg, uint32_t first, uint32_t count, uint32_t keep) {
  uint32_t i, j, old[PROTO_MAX_RUN];

  while (count > 0) {
    uint32_t n = count < PROTO_MAX_RUN ? count : PROTO_MAX_RUN;
    for (i = 0; i < n; i++)
      old[i] = busy_take(&sg->state[first + i]) & SHIM_PG_MODE;
    for (i = 0; i < n; i = j) {
      if (old[i] <= keep) {
        j = i + 1;
        continue;
      }
      for (j = i + 1; j < n && old[j] > keep; j++)
        ;
      shim_cache_protect(sg, first + i, j - i, keep);
    }
    for (i = 0; i < n; i++) {
      busy_drop(&sg->state[first + i], old[i] > keep ? keep : old[i], 0);
      if (old[i] > keep)
        shim__vma_note(sg, first + i, old[i], keep);
    }
    first += n;
    count -= n;
  }
}

void shim__agent_request_locked(const struct proto_msg *m) {
  const struct proto_range *r = &m->u.range;
  uint32_t keep = m->h.opcode == PROTO_OP_RECALL && r->mode == PROTO_MODE_SHARED
                      ? PROTO_MODE_SHARED : PROTO_MODE_INVALID;
  struct shim_seg *sg = shim_cache_seg_find(r->shmid, 1);
  struct proto_msg a;

  if (sg != NULL && sg->host != NULL && r->first < sg->npages)
    shim_agent_lower(sg, r->first,
                     r->count < sg->npages - r->first ? r->count : sg->npages - r->first, keep);
  /* Every request is answered, whatever we held: the agent counts answers, not pages. */
  memset(&a.h, 0, sizeof a.h);
  a.h.opcode = PROTO_OP_INVALIDATE_ACK;
  a.h.reqid = m->h.reqid;
  a.u.range = *r;
  (void)shim__session_enqueue(&a);
}

void shim_agent_request(const struct proto_msg *m) {
  pthread_mutex_lock(&shim__cache_lock);
  if (!shim__pin_defer(m))
    shim__agent_request_locked(m);
  pthread_mutex_unlock(&shim__cache_lock);
}

void shim_agent_wake_waiters(struct shim_seg *sg, uint32_t first, uint32_t count) {
  for (uint32_t p = first; p < first + count; p++)
    if (atomic_load(&sg->host[p].word) & DSHM_HT_WAIT)
      syscall(SYS_futex, (uint32_t *)&sg->host[p].word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* The agent is gone: every view goes and every page gets ERR in this process. Then the
 * threads asleep in shim_netwait on one of its host words (WAIT set) are woken: nothing else
 * would move those words now, and the lowered views do not end a futex_waitv that already
 * compared. Woken, a waiter looks again and finds the page lost (SIGBUS at its next access,
 * as for every other access). The wake is the host's: a sleeper of another process of this
 * host is woken too, before its own I/O thread notices. */
void shim_agent_dead(void) {
  pthread_mutex_lock(&shim__cache_lock);
  for (int i = 0; i < SHIM_MAX_SEGS; i++) {
    struct shim_seg *sg = &shim__segs[i];
    if (!atomic_load(&sg->used) || sg->host == NULL)
      continue;
    shim_agent_lower(sg, 0, sg->npages, PROTO_MODE_INVALID);
    for (uint32_t p = 0; p < sg->npages; p++)
      shim_cache_set_bits(sg, p, SHIM_PG_ERR);
    shim_agent_wake_waiters(sg, 0, sg->npages);
  }
  pthread_mutex_unlock(&shim__cache_lock);
}

/* A record from the I/O thread's pipe: the fault handler's mapping-budget trim (vma.c). */
static void on_record(const struct shim_fault_rec *r) {
  if (r->kind == SHIM_REC_TRIM)
    shim__vma_trim();
}

const struct shim_session_ops shim_page_engine = {
    .request = shim_agent_request,
    .record = on_record,
    .turn = shim__pin_retry,
    .lost = shim_agent_dead,
};
