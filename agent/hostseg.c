/* hostseg.c - owns the host's segments and the host's half of the page protocol.
 *
 * Per page the host holds a mode granted by the server; the host page table (shared with
 * every local process) publishes it. Local processes raise their own views up to that mode
 * without asking (preload/agentpage.c); what the agent does:
 *  - a fault record asks for a page the host does not hold well enough: one READ_DATA or
 *    ACQUIRE to the server for all local waiters (read-ahead included); the grant is copied
 *    into the memfd, THEN the table word is raised and its sleepers woken;
 *  - an INVALIDATE or RECALL lowers the table word FIRST, then asks every local process whose
 *    bit is in the page's holders to lower its views, and answers the server only when all
 *    of them did (a process that goes away counts as done: its mappings went with it). A
 *    recall's data is copied out of the memfd after that, so every local store before the
 *    lowering is in it.
 * Messages to the server leave in the order they are made (one FIFO), as the shim's did. */
#include "hostseg.h"

#include "stats.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client.h"
#include "kabi.h"
#include "local.h"
#include "upstream.h"


#define READ_AHEAD  64u  /* pages a request asks for at most: the read-ahead window's cap */
#define WRITE_AHEAD 64u  /* the same for writes */

/* One INVALIDATE or RECALL of the server, waiting for local processes to lower the pages. */
struct revoke {
  TAILQ_ENTRY(revoke) link;
  struct hseg *seg;         /* NULL once the segment was freed (then acked without data) */
  uint32_t up_reqid;
  int local_only;           /* the resync's (counted in resync_pending): no answer to send */
  uint8_t op;
  int32_t shmid;
  uint32_t first, count, n; /* n: pages of the range inside the segment */
  uint32_t keep;
  uint64_t holders;         /* the bits that were told */
  uint64_t held_until;      /* != 0: held for a fresh grant until then (uv_now), see hold() */
  uint32_t npending;
  uint32_t cappending;
  struct {
    uint32_t proc, reqid;
  } *pending;
  uint8_t was_excl[PROTO_MAX_RUN];
};

static struct proto_msg out; /* 6 KiB, single-threaded agent: not on the stack */

/* A 64-bit digest of a page (FNV-1a over words): how the background write-back tells a page
 * that changed from one that did not, without a copy of it and without write-protecting
 * it in every local process. */
static uint64_t page_sum(const uint8_t *p) {
  uint64_t h = 0xcbf29ce484222325ull, w;

  /* memcpy: a grant's data sits in the receive buffer at any alignment. */
  for (size_t i = 0; i < PROTO_PAGE_SIZE; i += sizeof w) {
    memcpy(&w, p + i, sizeof w);
    h = (h ^ w) * 0x100000001b3ull;
  }
  return h;
}

/* The digest of a page of zeros. */
static uint64_t zero_sum(void) {
  static const uint8_t zeros[PROTO_PAGE_SIZE];
  static uint64_t sum;

  if (sum == 0)
    sum = page_sum(zeros); /* FNV-1a never gives 0 for it */
  return sum;
}

/* For the verbose log: the first word of a page (of a grant: at any alignment). */
static uint64_t first_word(const uint8_t *p) {
  uint64_t w;

  memcpy(&w, p, sizeof w);
  return w;
}

struct hseg *agent_seg_find(struct agent *ag, int32_t shmid) {
  struct hseg *s;

  TAILQ_FOREACH(s, &ag->segs, link)
    if (s->shmid == shmid)
      return s;
  return NULL;
}

static uint32_t tab_mode(const struct hseg *s, uint32_t p) {
  return dshm_ht_mode(atomic_load(&s->tab[p].word));
}

/* Publishes a page's new mode (and error bit), moving the generation and waking sleepers in
 * every local process (the word is in shared memory: a shared futex). */
static void tab_set(struct hseg *s, uint32_t p, uint32_t mode, uint32_t err) {
  _Atomic uint32_t *w = &s->tab[p].word;
  uint32_t old = atomic_load(w), nw;

  do {
    uint32_t gen = (old >> DSHM_HT_GEN_SHIFT) + 1;
    nw = (gen << DSHM_HT_GEN_SHIFT) | mode | ((old | err) & DSHM_HT_ERR);
  } while (!atomic_compare_exchange_weak(w, &old, nw));
  s->nexcl += (mode == PROTO_MODE_EXCLUSIVE) - (dshm_ht_mode(old) == PROTO_MODE_EXCLUSIVE);
  if (old & DSHM_HT_WAIT)
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void seg_release(struct hseg *s) {
  if (s->data != NULL && s->data != MAP_FAILED)
    munmap(s->data, (size_t)s->npages * PROTO_PAGE_SIZE);
  if (s->tab != NULL && (void *)s->tab != MAP_FAILED)
    munmap(s->tab, DSHM_HT_SIZE(s->npages));
  if (s->memfd >= 0)
    close(s->memfd);
  if (s->tabfd >= 0)
    close(s->tabfd);
  free(s->pg);
  free(s);
}

int agent_seg_get(struct agent *ag, int32_t shmid, uint64_t segsz, struct hseg **outp) {
  uint64_t npages = (segsz + PROTO_PAGE_SIZE - 1) / PROTO_PAGE_SIZE;
  struct hseg *s = agent_seg_find(ag, shmid);
  char name[40];
  int err;

  if (s != NULL) {
    s->dying = 0; /* attached again while its last DETACH was on its way: it lives on */
    *outp = s;
    return 0;
  }
  if (segsz == 0 || npages > UINT32_MAX || npages > SIZE_MAX / PROTO_PAGE_SIZE ||
      (ag->cfg->max_segsz != 0 && segsz > ag->cfg->max_segsz))
    return -EINVAL;
  s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->shmid = shmid;
  s->segsz = segsz;
  s->npages = (uint32_t)npages;
  s->memfd = s->tabfd = -1;
  snprintf(name, sizeof name, "dshm:%d", shmid);
  s->memfd = memfd_create(name, MFD_CLOEXEC);
  snprintf(name, sizeof name, "dshm-pages:%d", shmid);
  s->tabfd = memfd_create(name, MFD_CLOEXEC);
  if (s->memfd < 0 || s->tabfd < 0 ||
      ftruncate(s->memfd, (off_t)(npages * PROTO_PAGE_SIZE)) < 0 ||
      ftruncate(s->tabfd, (off_t)DSHM_HT_SIZE(npages)) < 0) {
    err = -errno;
    goto fail;
  }
  s->data = mmap(NULL, (size_t)npages * PROTO_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                 s->memfd, 0);
  s->tab = mmap(NULL, DSHM_HT_SIZE(npages), PROT_READ | PROT_WRITE, MAP_SHARED, s->tabfd, 0);
  if (s->data == MAP_FAILED || (void *)s->tab == MAP_FAILED) {
    err = -errno;
    goto fail;
  }
  s->pg = calloc((size_t)npages, sizeof *s->pg);
  if (s->pg == NULL) {
    err = -ENOMEM;
    goto fail;
  }
  TAILQ_INSERT_TAIL(&ag->segs, s, link);
  *outp = s;
  return 0;

fail:
  seg_release(s);
  return err;
}

/* Frees s: revocations and requests still in flight forget it. */
static void seg_free(struct agent *ag, struct hseg *s) {
  struct revoke *rv;

  TAILQ_FOREACH(rv, &ag->revokes, link)
    if (rv->seg == s)
      rv->seg = NULL;
  /* Its page requests end with it. Every path here comes after the host's last DETACH was
   * answered (a grant sent earlier came first, FIFO: a request still recorded was dropped
   * by the server's forget of this host, srv_dir_forget, and will never be answered),
   * after the connection is gone, during a resync (which starts with none in flight), or
   * while the agent stops (a grant that still comes matches nothing and is dropped). */
  for (size_t i = 0; i < ag->npreq;)
    if (ag->preq[i].shmid == s->shmid)
      ag->preq[i] = ag->preq[--ag->npreq];
    else
      i++;
  TAILQ_REMOVE(&ag->segs, s, link);
  seg_release(s);
}

static void revoke_finish(struct agent *ag, struct revoke *rv);
static void revoke_go(struct agent *ag, struct revoke *rv);

/* An EXCLUSIVE page written since the server last got it (its grant's data or a background
 * write-back): the digest says. */
static int changed(const struct hseg *s, uint32_t p) {
  return tab_mode(s, p) == PROTO_MODE_EXCLUSIVE &&
         page_sum(s->data + (size_t)p * PROTO_PAGE_SIZE) != s->pg[p].sum;
}

/* Maps the run of EXCLUSIVE pages from p (at most max_run) into the agent's view of the
 * memfd with one system call: the digests and the copies that follow would otherwise take
 * a page fault per page (~10 us each on a VM, 16384 of them for a 64 MiB fill). Pages the
 * host does not hold are left alone (reading a hole of a memfd allocates it). */
static uint32_t map_run(struct agent *ag, struct hseg *s, uint32_t p) {
  uint32_t q = p;

  while (q < s->npages && q - p < ag->max_run && tab_mode(s, q) == PROTO_MODE_EXCLUSIVE)
    q++;
  if (q - p > 1)
    (void)madvise(s->data + (size_t)p * PROTO_PAGE_SIZE, (size_t)(q - p) * PROTO_PAGE_SIZE,
                  MADV_POPULATE_READ); /* failing (before Linux 5.14) only costs the faults */
  return q > p ? q : p + 1;
}

/* Writes back every page the host holds EXCLUSIVE (WRITE_DATA, mode INVALID): runs of at
 * most max_run pages, the data copied out as each message is encoded. */
static void write_back_all(struct agent *ag, struct hseg *s) {
  uint32_t p = 0, q, i, mapped = 0;

  /* Without it, the scan reads every page of a table mostly never touched: a page fault per
   * 4 KiB of it, about 1 ms for a 64 MiB segment on a VM. */
  if (s->nexcl == 0)
    return;
  while (p < s->npages) {
    if (tab_mode(s, p) != PROTO_MODE_EXCLUSIVE) {
      p++;
      continue;
    }
    if (p >= mapped)
      mapped = map_run(ag, s, p);
    /* Unchanged: the server has it; the DETACH that follows ends our ownership. */
    if (!changed(s, p)) {
      tab_set(s, p, PROTO_MODE_INVALID, 0);
      p++;
      continue;
    }
    for (q = p + 1; q < s->npages && q - p < ag->max_run && changed(s, q); q++)
      ;
    memset(&out.h, 0, sizeof out.h);
    out.h.opcode = PROTO_OP_WRITE_DATA;
    out.h.reqid = agent_up_reqid(ag); /* its empty reply matches nothing: dropped */
    out.u.run.shmid = s->shmid;
    out.u.run.first = p;
    out.u.run.count = q - p;
    out.u.run.mode = PROTO_MODE_INVALID;
    for (i = p; i < q; i++) {
      tab_set(s, i, PROTO_MODE_INVALID, 0);
      s->pg[i].owed = 1; /* until the DETACH after it is answered (agent_seg_release) */
      out.u.run.page[i - p] = (struct proto_page){s->pg[i].version, PROTO_PAGE_DATA,
                                                  s->data + (size_t)i * PROTO_PAGE_SIZE};
    }
    AGENT_VLOG("write-back shm %d pages %u+%u (first word %llu)", s->shmid, p, q - p,
               (unsigned long long)*(uint64_t *)(s->data + (size_t)p * PROTO_PAGE_SIZE));
    if (agent_up_send(ag, &out) < 0)
      agent_log("write-back of segment %d pages %u+%u failed", s->shmid, p, q - p);
    p = q;
  }
}

int agent_seg_detach(struct agent *ag, struct hseg *s) {
  AGENT_VLOG("detach shm %d: %u local attachments before", s->shmid, s->nattach);
  if (s->nattach > 0)
    s->nattach--;
  if (s->nattach > 0)
    return 0;
  /* The host's last attachment: its data goes home before the DETACH that ends the host's
   * part in the segment's directory (the caller sends it next, on the same FIFO). No view
   * of it is left on this host, so a revocation still waiting for a process that had not
   * answered yet (its DETACH crossed our request) is complete: answered now, with the
   * data of a recalled page, which nobody can change any more. */
  s->dying = 1;
  for (struct revoke *rv = TAILQ_FIRST(&ag->revokes), *next; rv != NULL; rv = next) {
    next = TAILQ_NEXT(rv, link);
    if (rv->seg == s && rv->held_until != 0)
      revoke_go(ag, rv); /* no process left to ask: it finishes at once */
    else if (rv->seg == s)
      revoke_finish(ag, rv);
  }
  /* The segment stays until the reply to the DETACH that follows proves the server stored
   * the write-back (agent_seg_release); if the connection drops first, the resync writes
   * it back again. */
  write_back_all(ag, s);
  if (ag->up_dead || ag->stopping)
    seg_free(ag, s);
  return 1;
}

void agent_seg_release(struct agent *ag, int32_t shmid) {
  struct hseg *s = agent_seg_find(ag, shmid);

  if (s != NULL && s->dying && s->nattach == 0)
    seg_free(ag, s);
}

/* Read-ahead that adapts: how many pages a request for page at mode may ask for. A fault
 * inside or right after the run a stream of the segment asked for last continues that
 * stream and doubles its window, up to the cap; any other fault starts a stream of one page
 * (replacing the least recently used), so isolated and scattered faults fetch their page
 * alone and only sequential runs read ahead. A few streams per segment, for processes or
 * threads reading different parts of it at once. */
static uint32_t ahead(struct agent *ag, struct hseg *s, uint32_t page, uint32_t mode) {
  uint32_t cap = mode == PROTO_MODE_EXCLUSIVE ? WRITE_AHEAD : READ_AHEAD;
  struct hstream *st = NULL;
  unsigned i;

  if (cap > ag->max_run)
    cap = ag->max_run;
  s->nrequests++;
  for (i = 0; i < HSEG_STREAMS && st == NULL; i++)
    if (s->streams[i].window != 0 && s->streams[i].mode == mode &&
        page >= s->streams[i].first && page <= s->streams[i].next)
      st = &s->streams[i];
  if (st != NULL) {
    st->window = st->window * 2 < cap ? st->window * 2 : cap;
  } else {
    st = &s->streams[0];
    for (i = 1; i < HSEG_STREAMS; i++)
      if (s->streams[i].used < st->used)
        st = &s->streams[i];
    st->window = 1;
    st->mode = mode;
    st->prefetch = UINT32_MAX;
  }
  st->used = s->nrequests;
  st->first = page;
  st->next = page + st->window;
  return st->window;
}

/* Asks the server for page at mode and up to limit - 1 following pages that need the same
 * and that nothing is happening to. The number of pages asked for. */
static uint32_t request_run(struct agent *ag, struct hseg *s, uint32_t page, uint32_t limit,
                            uint32_t mode) {
  uint64_t versions[PROTO_MAX_RUN];
  uint32_t n, i;

  for (n = 1; n < limit && page + n < s->npages; n++) {
    const struct hpage *hp = &s->pg[page + n];
    uint32_t w = atomic_load(&s->tab[page + n].word), m = dshm_ht_mode(w);
    if (hp->fetching || hp->revoking || (w & DSHM_HT_ERR) ||
        (mode == PROTO_MODE_EXCLUSIVE ? m == PROTO_MODE_EXCLUSIVE : m != PROTO_MODE_INVALID))
      break;
  }
  for (i = 0; i < n; i++) {
    versions[i] = s->pg[page + i].version;
    s->pg[page + i].fetching = (uint8_t)mode;
  }
  if (agent_up_page_request(ag, s->shmid, page, n, mode, versions) < 0) {
    for (i = 0; i < n; i++)
      s->pg[page + i].fetching = 0;
    tab_set(s, page, tab_mode(s, page), DSHM_HT_ERR);
  }
  return n;
}

/* A fault's request: its page with read-ahead (ahead()). */
static void request(struct agent *ag, struct hseg *s, uint32_t page, uint32_t mode) {
  (void)request_run(ag, s, page, ahead(ag, s, page, mode), mode);
}

/* Pipelined reads: the grant of a fault's run to a reader at the full window (a long
 * sequential read) asks for the next window at once, so that it is on the wire while the
 * reader consumes this one. At most one window ahead: the prefetched run's own grant asks
 * for nothing; the reader's fault past its end does (it continues the stream). */
static void prefetch(struct agent *ag, struct hseg *s, uint32_t first) {
  struct hstream *st = NULL;
  uint32_t page, w;

  for (unsigned i = 0; i < HSEG_STREAMS && st == NULL; i++)
    if (s->streams[i].window != 0 && s->streams[i].mode == PROTO_MODE_SHARED &&
        s->streams[i].first == first)
      st = &s->streams[i];
  if (st == NULL || st->prefetch == first) {
    if (st != NULL)
      st->prefetch = UINT32_MAX; /* the prefetch arrived */
    return;
  }
  page = st->next;
  if (st->window < (READ_AHEAD < ag->max_run ? READ_AHEAD : ag->max_run) || page >= s->npages ||
      s->dying || !ag->up_open || s->pg[page].fetching || s->pg[page].revoking)
    return;
  w = atomic_load(&s->tab[page].word);
  if ((w & DSHM_HT_ERR) || dshm_ht_mode(w) != PROTO_MODE_INVALID)
    return;
  st->prefetch = st->first = page;
  st->next = page + request_run(ag, s, page, st->window, PROTO_MODE_SHARED);
  AGENT_VLOG("prefetch shm %d pages %u+%u", s->shmid, page, st->next - page);
}

void agent_seg_want(struct agent *ag, struct hseg *s, uint32_t page, uint32_t mode) {
  struct hpage *hp;
  uint32_t w;

  if (page >= s->npages || mode < PROTO_MODE_SHARED || mode > PROTO_MODE_EXCLUSIVE)
    return;
  hp = &s->pg[page];
  w = atomic_load(&s->tab[page].word);
  if ((w & DSHM_HT_ERR) || dshm_ht_mode(w) >= mode)
    return; /* the word changed since the process looked: it sees that, no need to wake */
  if (ag->up_dead) {
    tab_set(s, page, dshm_ht_mode(w), DSHM_HT_ERR);
    return;
  }
  /* Something is under way for the page (or the server connection is being made again):
   * remember the need and look again when it ends. */
  if (hp->revoking || hp->fetching || !ag->up_open) {
    if (hp->want < mode)
      hp->want = (uint8_t)mode;
    return;
  }
  AGENT_VLOG("want shm %d page %u mode %u: asking", s->shmid, page, mode);
  request(ag, s, page, mode);
}

/* After a grant or a revocation of page p: a need that arrived meanwhile is served now. */
static void settle(struct agent *ag, struct hseg *s, uint32_t p) {
  struct hpage *hp = &s->pg[p];
  uint32_t want = hp->want;

  if (want == 0 || hp->fetching || hp->revoking || s->dying || !ag->up_open)
    return;
  hp->want = 0;
  agent_seg_want(ag, s, p, want);
}

/* Writes count pages of data into the memfd at page first, with pwritev: no page fault in
 * the agent (a fresh memfd page touched through our mapping costs a fault, ~10 us on a VM,
 * 64 of them per read-ahead). 0 or -errno (ENOSPC, ENOMEM: the memfd cannot grow). */
static int put_pages(struct hseg *s, uint32_t first, const struct iovec *iov, uint32_t count) {
  off_t off = (off_t)first * PROTO_PAGE_SIZE;
  size_t left = (size_t)count * PROTO_PAGE_SIZE;
  struct iovec v[PROTO_MAX_RUN];
  uint32_t k = 0;

  memcpy(v, iov, count * sizeof *v);
  while (left > 0) {
    ssize_t n = pwritev(s->memfd, v + k, (int)(count - k), off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? -errno : -EIO;
    off += n;
    left -= (size_t)n;
    while (n > 0) { /* step over what was written, possibly into the middle of a page */
      size_t c = (size_t)n < v[k].iov_len ? (size_t)n : v[k].iov_len;
      v[k].iov_base = (uint8_t *)v[k].iov_base + c;
      v[k].iov_len -= c;
      n -= (ssize_t)c;
      if (v[k].iov_len == 0)
        k++;
    }
  }
  return 0;
}

/* Installs pages [from, to) of grant run: data first, then the word (a process that sees the
 * mode sees the data). A grant never lowers a page (only RECALL takes ownership away): a page
 * the host already holds higher is left alone. */
static void install(struct hseg *s, const struct proto_run *run, uint32_t from, uint32_t to) {
  struct iovec iov[PROTO_MAX_RUN];
  uint32_t i, j, n;
  int err, zero;

  for (i = from; i < to; i = j) {
    /* The next stretch of pages with data to write, one pwritev. */
    for (j = i, n = 0; j < to && tab_mode(s, run->first + j) <= run->mode &&
                       (run->page[j].flags & PROTO_PAGE_DATA);
         j++, n++)
      iov[n] = (struct iovec){(void *)(uintptr_t)run->page[j].data, PROTO_PAGE_SIZE};
    if (n > 0 && (err = put_pages(s, run->first + i, iov, n)) < 0) {
      agent_log("segment %d pages %u+%u: cannot store the granted data (%s): its waiters get "
                "SIGBUS", s->shmid, run->first + i, n, strerror(-err));
      for (; i < j; i++)
        tab_set(s, run->first + i, tab_mode(s, run->first + i), DSHM_HT_ERR);
      continue;
    }
    if (j == i)
      j++; /* a page without data, or one held higher */
    for (; i < j; i++) {
      uint32_t p = run->first + i;
      int data = (run->page[i].flags & PROTO_PAGE_DATA) != 0;
      if (tab_mode(s, p) > run->mode)
        continue;
      AGENT_VLOG("  page %u v%llu %s first word %llu", p, (unsigned long long)run->page[i].version,
                 data ? "data" : "no data",
                 data ? (unsigned long long)first_word(run->page[i].data) : 0);
      /* Never held here (version 0) and granted without data: a page of zeros, in the memfd
       * too (a hole), whose digest is known without reading it (reading would allocate). */
      zero = !data && s->pg[p].version == 0;
      s->pg[p].version = run->page[i].version;
      s->pg[p].owed = 0; /* granted after the server stored what we last sent */
      if (run->mode == PROTO_MODE_EXCLUSIVE) /* what the server has of it, for flushing */
        s->pg[p].sum = zero ? zero_sum()
                            : page_sum(data ? run->page[i].data : s->data + (size_t)p * PROTO_PAGE_SIZE);
      if (tab_mode(s, p) < run->mode)
        tab_set(s, p, run->mode, 0);
    }
  }
}

void agent_seg_grant(struct agent *ag, const struct preq *q, const struct proto_msg *m) {
  const struct proto_run *run = &m->u.run;
  struct hseg *s = q->shmid >= 0 ? agent_seg_find(ag, q->shmid) : NULL;
  uint32_t i;

  if (m->h.status == 0) {
    *(run->mode == PROTO_MODE_EXCLUSIVE ? &agent_stats.grants_exclusive
                                        : &agent_stats.grants_shared) += 1;
    agent_stats.pages_granted += run->count;
  }
  if (s == NULL)
    return;
  for (i = 0; i < q->count && q->first + i < s->npages; i++)
    if (s->pg[q->first + i].fetching == q->mode)
      s->pg[q->first + i].fetching = 0;
  /* A read of a migratory page may be granted EXCLUSIVE, that page alone (docs/protocol.md,
   * "Migratory pages"). */
  int mode_ok = run->mode == q->mode ||
                (q->mode == PROTO_MODE_SHARED && run->mode == PROTO_MODE_EXCLUSIVE && run->count == 1);
  if (m->h.status != 0 || run->shmid != q->shmid || run->first != q->first ||
      run->count < 1 || run->count > q->count || !mode_ok) {
    agent_log("%s of segment %d page %u %s: its waiters get SIGBUS", proto_op_name(m->h.opcode),
              q->shmid, q->first,
              m->h.status != 0 ? strerror(proto_err_to_errno(m->h.status)) : "answered wrongly");
    tab_set(s, q->first, tab_mode(s, q->first), DSHM_HT_ERR);
  } else {
    AGENT_VLOG("grant %s shm %d pages %u+%u", proto_op_name(m->h.opcode), q->shmid, q->first,
               run->count);
    /* The first page alone (the one a process faulted on), then the read-ahead. The first
     * is fresh until a process raises it (hold()): set before the word rises. */
    atomic_store(&s->tab[q->first].fresh, DSHM_HT_FRESH);
    install(s, run, 0, 1);
    if (tab_mode(s, q->first) < run->mode)
      atomic_store(&s->tab[q->first].fresh, 0);
    install(s, run, 1, run->count);
    if (q->mode == PROTO_MODE_SHARED && run->mode == PROTO_MODE_SHARED)
      prefetch(ag, s, q->first);
  }
  for (i = 0; i < q->count && q->first + i < s->npages; i++)
    settle(ag, s, q->first + i);
}

/* Every local process told has lowered its views (or is gone): answer the server. */
static void revoke_finish(struct agent *ag, struct revoke *rv) {
  struct hseg *s = rv->seg;
  uint32_t i;

  TAILQ_REMOVE(&ag->revokes, rv, link);
  /* A page given up from EXCLUSIVE is owed until the next grant: if the server dies before
   * storing it, the resync writes it back again (docs/protocol.md, "Reconnect"). */
  for (i = 0; s != NULL && i < rv->n; i++)
    if (rv->was_excl[i])
      s->pg[rv->first + i].owed = 1;
  memset(&out.h, 0, sizeof out.h);
  out.h.reqid = rv->up_reqid; /* acks echo the server's id */
  if (rv->local_only) {
    /* nothing to answer */
  } else if (rv->op == PROTO_OP_RECALL) {
    out.h.opcode = PROTO_OP_RECALL_ACK;
    out.u.run.shmid = rv->shmid;
    out.u.run.first = rv->first;
    out.u.run.count = rv->count;
    out.u.run.mode = rv->keep;
    for (i = 0; i < rv->count; i++) {
      int data = s != NULL && i < rv->n && rv->was_excl[i];
      out.u.run.page[i] = (struct proto_page){
          s != NULL && i < rv->n ? s->pg[rv->first + i].version : 0, data ? PROTO_PAGE_DATA : 0,
          data ? s->data + (size_t)(rv->first + i) * PROTO_PAGE_SIZE : NULL};
    }
  } else {
    out.h.opcode = PROTO_OP_INVALIDATE_ACK;
    out.u.range = (struct proto_range){rv->shmid, rv->first, rv->count, PROTO_MODE_INVALID};
  }
  if (s != NULL)
    AGENT_VLOG("ack %s shm %d page %u%s first word %llu", proto_op_name(out.h.opcode), rv->shmid,
               rv->first, rv->n && rv->was_excl[0] ? " with data" : "",
               (unsigned long long)*(uint64_t *)(s->data + (size_t)rv->first * PROTO_PAGE_SIZE));
  if (!rv->local_only)
    (void)agent_up_send(ag, &out); /* fails quietly while reconnecting: the resync writes back */
  if (s != NULL) {
    for (i = 0; i < rv->n; i++) {
      /* Every process told lowered the page to keep: when that is INVALID none holds it. */
      if (rv->keep == PROTO_MODE_INVALID)
        atomic_fetch_and(&s->tab[rv->first + i].holders, ~rv->holders);
      s->pg[rv->first + i].revoking--;
    }
    for (i = 0; i < rv->n; i++)
      settle(ag, s, rv->first + i);
  }
  if (rv->local_only && --ag->resync_pending == 0)
    agent_up_resync_soon(ag); /* not now: our caller may still use the segment it frees */
  free(rv->pending);
  free(rv);
}

static int pending_add(struct revoke *rv, uint32_t proc, uint32_t reqid) {
  if (rv->npending == rv->cappending) {
    uint32_t cap = rv->cappending ? rv->cappending * 2 : 4;
    void *np = realloc(rv->pending, cap * sizeof *rv->pending);
    if (np == NULL)
      return -ENOMEM;
    rv->pending = np;
    rv->cappending = cap;
  }
  rv->pending[rv->npending].proc = proc;
  rv->pending[rv->npending].reqid = reqid;
  rv->npending++;
  return 0;
}

/* The lowering itself: the table word first (seq_cst), then every local process whose bit is
 * in the pages' holders is asked to lower its views; the revocation completes
 * (revoke_finish) when all did. */
static void revoke_go(struct agent *ag, struct revoke *rv) {
  struct hseg *s = rv->seg;
  struct lproc *p;
  uint32_t i;

  rv->held_until = 0;
  if (s == NULL)
    rv->n = 0; /* freed while held: acked without data */
  /* The word first (seq_cst), then the holders: a process raising concurrently either sees
   * the lower mode or has its bit read here (proto/hosttab.h). */
  for (i = 0; i < rv->n; i++) {
    uint32_t pg = rv->first + i, old = tab_mode(s, pg);
    atomic_store(&s->tab[pg].fresh, 0);
    rv->was_excl[i] = old == PROTO_MODE_EXCLUSIVE;
    if (old > rv->keep)
      tab_set(s, pg, rv->keep, 0);
    rv->holders |= atomic_load(&s->tab[pg].holders);
  }
  AGENT_VLOG("%s shm %d page %u+%u keep %u: holders %#llx", proto_op_name(rv->op), rv->shmid,
             rv->first, rv->n, rv->keep, (unsigned long long)rv->holders);
  if (rv->holders != 0) {
    TAILQ_FOREACH(p, &ag->procs, link) {
      if (p->fd < 0 || !(dshm_ht_bit(p->slot) & rv->holders) || agent_proc_att(p, rv->shmid) == NULL)
        continue;
      memset(&out.h, 0, sizeof out.h);
      out.h.opcode = rv->op;
      out.h.reqid = ++ag->next_lreqid ? ag->next_lreqid : ++ag->next_lreqid;
      out.u.range = (struct proto_range){rv->shmid, rv->first, rv->n, rv->keep};
      if (pending_add(rv, p->id, out.h.reqid) == 0 && agent_proc_send(p, &out, -1, -1) < 0)
        rv->npending--; /* it is going away: as if it had answered */
    }
  }
  if (rv->npending == 0)
    revoke_finish(ag, rv);
  else
    AGENT_VLOG("  waiting for %u local processes", rv->npending);
}

/* A grant is used before it is taken back (docs/design.md): a RECALL or INVALIDATE of a page
 * granted for local waiters that none of them has raised yet waits until one does (RAISED,
 * agent_seg_raised) or cfg->hold_ms passed. Without this the page could leave again while the
 * faulting thread is still waking up, and two hosts taking a page in turn would each lose it
 * before using it, a transaction or more per turn. 1 if rv is held. */
static int hold(struct agent *ag, struct revoke *rv) {
  uint32_t fresh = DSHM_HT_FRESH;

  if (rv->local_only || rv->n != 1 ||
      !atomic_compare_exchange_strong(&rv->seg->tab[rv->first].fresh, &fresh, DSHM_HT_HELD))
    return 0;
  rv->held_until = uv_now(ag->loop) + ag->cfg->hold_ms;
  if (!uv_is_active((uv_handle_t *)&ag->hold))
    uv_timer_start(&ag->hold, agent_seg_hold_expired, ag->cfg->hold_ms, 0);
  AGENT_VLOG("%s shm %d page %u: held until a local process raised it", proto_op_name(rv->op),
             rv->shmid, rv->first);
  return 1;
}

/* Lowers pages [first, first+count) of shmid to keep (revoke_go), unless the page is a fresh
 * grant (hold). up_reqid 0: the host's own (a resync after the server connection dropped),
 * answered to nobody. */
static void revoke_start(struct agent *ag, uint8_t op, uint32_t up_reqid, int32_t shmid,
                         uint32_t first, uint32_t count, uint32_t keep) {
  struct revoke *rv = calloc(1, sizeof *rv);
  struct hseg *s = agent_seg_find(ag, shmid);
  uint32_t i;

  if (rv == NULL) {
    agent_log("out of memory: cannot revoke segment %d page %u; stopping", shmid, first);
    agent_stop(ag, "out of memory");
    return;
  }
  rv->seg = s;
  rv->up_reqid = up_reqid;
  rv->local_only = up_reqid == 0;
  rv->op = op;
  rv->shmid = shmid;
  rv->first = first;
  rv->count = count;
  rv->keep = keep;
  if (rv->local_only)
    ag->resync_pending++;
  TAILQ_INSERT_TAIL(&ag->revokes, rv, link);
  if (s != NULL && first < s->npages)
    rv->n = count < s->npages - first ? count : s->npages - first;
  for (i = 0; i < rv->n; i++)
    s->pg[rv->first + i].revoking++;
  if (!hold(ag, rv))
    revoke_go(ag, rv);
}

void agent_seg_raised(struct agent *ag, int32_t shmid, uint32_t page) {
  struct revoke *rv, *next;

  for (rv = TAILQ_FIRST(&ag->revokes); rv != NULL; rv = next) {
    next = TAILQ_NEXT(rv, link);
    if (rv->held_until != 0 && rv->shmid == shmid && rv->first == page) {
      AGENT_VLOG("shm %d page %u raised: the held %s goes on", shmid, page,
                 proto_op_name(rv->op));
      revoke_go(ag, rv);
    }
  }
}

void agent_seg_unhold_all(struct agent *ag) {
  struct revoke *rv, *next;

  for (rv = TAILQ_FIRST(&ag->revokes); rv != NULL; rv = next) {
    next = TAILQ_NEXT(rv, link);
    if (rv->held_until != 0)
      revoke_go(ag, rv);
  }
}

void agent_seg_hold_expired(uv_timer_t *t) {
  struct agent *ag = t->data;
  struct revoke *rv, *next;
  uint64_t now = uv_now(ag->loop), first_left = 0;

  for (rv = TAILQ_FIRST(&ag->revokes); rv != NULL; rv = next) {
    next = TAILQ_NEXT(rv, link);
    if (rv->held_until == 0)
      continue;
    if (rv->held_until <= now) {
      AGENT_VLOG("shm %d page %u: no local process raised it in %u ms; the %s goes on",
                 rv->shmid, rv->first, ag->cfg->hold_ms, proto_op_name(rv->op));
      revoke_go(ag, rv);
    } else if (first_left == 0 || rv->held_until < first_left) {
      first_left = rv->held_until;
    }
  }
  if (first_left != 0)
    uv_timer_start(&ag->hold, agent_seg_hold_expired, first_left - now, 0);
}

void agent_seg_revoke(struct agent *ag, const struct proto_msg *m) {
  const struct proto_range *r = &m->u.range;

  *(m->h.opcode == PROTO_OP_RECALL ? &agent_stats.recalls : &agent_stats.invalidations) += 1;
  revoke_start(ag, m->h.opcode, m->h.reqid, r->shmid, r->first, r->count,
               m->h.opcode == PROTO_OP_RECALL && r->mode == PROTO_MODE_SHARED
                   ? PROTO_MODE_SHARED : PROTO_MODE_INVALID);
}

void agent_seg_local_ack(struct agent *ag, uint32_t proc, uint32_t reqid) {
  struct revoke *rv, *next;
  uint32_t i;

  for (rv = TAILQ_FIRST(&ag->revokes); rv != NULL; rv = next) {
    int hit = 0;
    next = TAILQ_NEXT(rv, link);
    for (i = 0; i < rv->npending;) {
      if (rv->pending[i].proc == proc && (reqid == 0 || rv->pending[i].reqid == reqid)) {
        rv->pending[i] = rv->pending[--rv->npending];
        hit = 1;
      } else {
        i++;
      }
    }
    if (hit && rv->npending == 0)
      revoke_finish(ag, rv);
  }
}

/* Sends pages [p, q) of s (all EXCLUSIVE and changed) keeping them. */
static void flush_run(struct agent *ag, struct hseg *s, uint32_t p, uint32_t q,
                      const uint64_t *sums) {
  uint32_t i;

  memset(&out.h, 0, sizeof out.h);
  out.h.opcode = PROTO_OP_WRITE_DATA;
  out.h.reqid = agent_up_reqid(ag); /* its empty reply matches nothing: dropped */
  out.u.run.shmid = s->shmid;
  out.u.run.first = p;
  out.u.run.count = q - p;
  out.u.run.mode = PROTO_MODE_EXCLUSIVE; /* keep them (docs/protocol.md) */
  for (i = p; i < q; i++) {
    out.u.run.page[i - p] = (struct proto_page){s->pg[i].version, PROTO_PAGE_DATA,
                                                s->data + (size_t)i * PROTO_PAGE_SIZE};
    s->pg[i].sum = sums[i - p];
  }
  (void)agent_up_send(ag, &out); /* the data is copied as it is encoded */
}

uint32_t agent_seg_flush(struct agent *ag, uint32_t max_pages) {
  uint64_t sums[PROTO_MAX_RUN];
  uint32_t looked = 0, sent = 0;
  struct hseg *s, *last = TAILQ_LAST(&ag->segs, hsegs), *next;

  /* Segments in turn: one that used up a period's budget goes to the end of the list, so
   * the next period starts with the others. */
  for (s = TAILQ_FIRST(&ag->segs); s != NULL && looked < max_pages; s = next) {
    next = s == last ? NULL : TAILQ_NEXT(s, link);
    uint32_t n = s->npages, p = s->flush_cursor < n ? s->flush_cursor : 0, q, scanned = 0;

    if (s->nexcl == 0)
      continue; /* nothing the host could have written */
    while (scanned < n && looked < max_pages && ag->up_open) {
      /* A run of EXCLUSIVE pages that changed; a page the agent is revoking or fetching is
       * left to that transaction (a recall sends its data anyway). */
      for (q = p; q < n && q - p < ag->max_run && scanned + (q - p) < n; q++) {
        const struct hpage *hp = &s->pg[q];
        if (tab_mode(s, q) != PROTO_MODE_EXCLUSIVE || hp->revoking || hp->fetching)
          break;
        sums[q - p] = page_sum(s->data + (size_t)q * PROTO_PAGE_SIZE);
        if (sums[q - p] == hp->sum)
          break;
      }
      if (q > p) {
        flush_run(ag, s, p, q, sums);
        sent += q - p;
      }
      q = q > p ? q : p + 1; /* the page that ended the run was looked at too */
      looked += q - p;
      scanned += q - p;
      p = q >= n ? 0 : q;
    }
    s->flush_cursor = p;
    if (looked >= max_pages) {
      TAILQ_REMOVE(&ag->segs, s, link);
      TAILQ_INSERT_TAIL(&ag->segs, s, link);
    }
  }
  return sent;
}

/* ---- the server connection dropped: resync (docs/protocol.md, "Reconnect") ---- */

void agent_seg_lower_all(struct agent *ag) {
  struct revoke *rv;
  struct hseg *s;

  /* Requests in flight are gone with the connection: asked again after the resync. */
  TAILQ_FOREACH(s, &ag->segs, link)
    for (uint32_t p = 0; p < s->npages; p++)
      if (s->pg[p].fetching) {
        if (s->pg[p].want < s->pg[p].fetching)
          s->pg[p].want = s->pg[p].fetching;
        s->pg[p].fetching = 0;
      }
  ag->npreq = 0;
  /* Revocations under way can no longer be answered; the resync waits for them too. */
  TAILQ_FOREACH(rv, &ag->revokes, link)
    if (!rv->local_only) {
      rv->local_only = 1;
      ag->resync_pending++;
    }
  /* The server may have lost its record of every copy we hold: none may stay readable
   * (a read copy is revalidated by version at its next fault). */
  TAILQ_FOREACH(s, &ag->segs, link) {
    uint32_t p = 0, q;
    if (s->lost)
      continue;
    while (p < s->npages) {
      if (tab_mode(s, p) == PROTO_MODE_INVALID || s->pg[p].revoking) {
        p++;
        continue;
      }
      for (q = p + 1; q < s->npages && q - p < PROTO_MAX_RUN && tab_mode(s, q) != PROTO_MODE_INVALID &&
                      !s->pg[q].revoking;
           q++)
        ;
      revoke_start(ag, PROTO_OP_INVALIDATE, 0, s->shmid, p, q - p, PROTO_MODE_INVALID);
      p = q;
    }
  }
}

/* A segment the server does not have any more: its pages not present fault with SIGBUS,
 * calls on its id fail with EIDRM (local.c). */
static void seg_lose(struct hseg *s) {
  agent_log("segment %d is gone after the server restarted: its pages now fault with SIGBUS",
            s->shmid);
  s->lost = 1;
  for (uint32_t p = 0; p < s->npages; p++)
    tab_set(s, p, tab_mode(s, p), DSHM_HT_ERR);
}

void agent_seg_lose_all(struct agent *ag) {
  struct hseg *s;

  TAILQ_FOREACH(s, &ag->segs, link)
    if (!s->lost)
      seg_lose(s);
}

int agent_seg_resync(struct agent *ag, int fd) {
  struct proto_msg *m = calloc(2, sizeof *m);
  struct hseg *s, *next;
  int err = 0;

  if (m == NULL)
    return -ENOMEM;
  for (s = TAILQ_FIRST(&ag->segs); s != NULL && err == 0; s = next) {
    uint32_t nrw = 0, nro = 0, p, q, i, owes = 0;
    int rc;
    next = TAILQ_NEXT(s, link);
    if (s->lost)
      continue;
    agent_proc_counts(ag, s->shmid, &nrw, &nro);
    for (p = 0; p < s->npages && !owes; p++)
      owes = s->pg[p].owed && s->pg[p].version;
    /* Detached while the connection was down: registered once more if it owes data, so
     * the write-back applies, then detached for good. */
    if (nrw + nro == 0 && !owes) {
      if (s->dying)
        seg_free(ag, s);
      continue;
    }
    if (nrw + nro == 0)
      nrw = 1;
    if (nrw + nro > PROTO_MAX_REATTACH) {
      /* More than one REATTACH can carry: nattch is short by the rest (logged). */
      agent_log("segment %d: %u local attachments, re-registered as %u", s->shmid, nrw + nro,
                PROTO_MAX_REATTACH);
      nro = nro > PROTO_MAX_REATTACH ? PROTO_MAX_REATTACH : nro;
      nrw = PROTO_MAX_REATTACH - nro;
    }
    memset(m, 0, 2 * sizeof *m);
    m->h.opcode = PROTO_OP_REATTACH;
    m->h.reqid = agent_up_reqid(ag);
    m->u.reattach.cred = (struct proto_cred){(uint32_t)getpid(), (uint32_t)geteuid(),
                                             (uint32_t)getegid()};
    m->u.reattach.shmid = s->shmid;
    m->u.reattach.nrw = nrw;
    m->u.reattach.nro = nro;
    rc = dshm_client_call(fd, &m[0], &m[1]);
    if (rc == -EINVAL || rc == -EIDRM || rc == -EACCES) {
      seg_lose(s);
      if (s->dying)
        seg_free(ag, s);
      continue;
    }
    if (rc < 0) {
      err = rc;
      break;
    }
    /* What the server may miss: every page given up from EXCLUSIVE since its last grant. */
    for (p = 0; p < s->npages && err == 0; p = q) {
      if (!s->pg[p].owed || s->pg[p].version == 0) {
        q = p + 1;
        continue;
      }
      for (q = p + 1; q < s->npages && q - p < ag->max_run && s->pg[q].owed && s->pg[q].version;
           q++)
        ;
      memset(m, 0, 2 * sizeof *m);
      m->h.opcode = PROTO_OP_WRITE_DATA;
      m->h.reqid = agent_up_reqid(ag);
      m->u.run.shmid = s->shmid;
      m->u.run.first = p;
      m->u.run.count = q - p;
      m->u.run.mode = PROTO_MODE_INVALID;
      for (i = p; i < q; i++)
        m->u.run.page[i - p] = (struct proto_page){s->pg[i].version, PROTO_PAGE_DATA,
                                                   s->data + (size_t)i * PROTO_PAGE_SIZE};
      rc = dshm_client_call(fd, &m[0], &m[1]);
      if (rc < 0 && rc != -EINVAL) {
        /* Not answered (the connection failed) or not applied (ENOMEM): still owed, at its
         * version, for the next try; a restarted server's ghost of it waits for it. */
        err = rc;
        break;
      }
      /* Taken or not (the server had given the page up), our copy is not the server's any
       * more: the next fault fetches it. */
      for (i = p; i < q; i++) {
        s->pg[i].owed = 0;
        s->pg[i].version = 0;
      }
    }
    AGENT_VLOG("reconnect: segment %d re-registered (%u rw, %u ro)", s->shmid, nrw, nro);
    if (err == 0 && s->dying) {
      memset(m, 0, 2 * sizeof *m);
      m->h.opcode = PROTO_OP_DETACH_SEGMENT;
      m->h.reqid = agent_up_reqid(ag);
      m->u.segref.cred = (struct proto_cred){(uint32_t)getpid(), (uint32_t)geteuid(),
                                             (uint32_t)getegid()};
      m->u.segref.shmid = s->shmid;
      rc = dshm_client_call(fd, &m[0], &m[1]);
      if (rc < 0 && rc != -EINVAL)
        err = rc;
      seg_free(ag, s);
    }
  }
  free(m);
  return err;
}

void agent_seg_resume(struct agent *ag) {
  struct hseg *s;

  TAILQ_FOREACH(s, &ag->segs, link)
    for (uint32_t p = 0; p < s->npages; p++)
      settle(ag, s, p);
}

void agent_seg_fail_all(struct agent *ag) {
  struct hseg *s;

  TAILQ_FOREACH(s, &ag->segs, link)
    for (uint32_t p = 0; p < s->npages; p++)
      if (dshm_ht_mode(atomic_load(&s->tab[p].word)) == PROTO_MODE_INVALID ||
          s->pg[p].fetching)
        tab_set(s, p, tab_mode(s, p), DSHM_HT_ERR);
}

void agent_seg_free_all(struct agent *ag) {
  struct revoke *rv;
  struct hseg *s;

  while ((rv = TAILQ_FIRST(&ag->revokes)) != NULL) {
    TAILQ_REMOVE(&ag->revokes, rv, link);
    free(rv->pending);
    free(rv);
  }
  while ((s = TAILQ_FIRST(&ag->segs)) != NULL)
    seg_free(ag, s);
}
