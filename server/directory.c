/* directory.c - owns page coherence for one segment: per page the version, owner, sharers,
 * the transaction in progress and the FIFO of waiting requests (docs/protocol.md).
 *
 * Every transition is driven by a message (request, ack, write-back, forget); nothing here
 * waits. A transaction serves the request at the head of a page's queue: at most one RECALL
 * to the owner, then (ACQUIRE only) one INVALIDATE per other sharer, then the grant. */
#include "directory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kabi.h"
#include "metrics.h"
#include "store.h"

/* Page state is allocated in chunks on first use, so a huge mostly untouched segment costs
 * only a pointer per chunk. */
#define CHUNK_SHIFT 10u
#define CHUNK_PAGES (1u << CHUNK_SHIFT)
#define CHUNK_MASK  (CHUNK_PAGES - 1u)

/* A READ_DATA or ACQUIRE waiting for, or being served at, its first page. */
struct dreq {
  struct dreq *next;
  uint32_t node;        /* SRV_NODE_NONE once the requester went away */
  uint32_t reqid;
  uint8_t op;           /* PROTO_OP_READ_DATA or PROTO_OP_ACQUIRE: the reply's opcode */
  uint8_t mode;         /* what is granted: SHARED, or EXCLUSIVE (an ACQUIRE, or a READ_DATA
                         * of a migratory page, see start) */
  uint8_t writable;     /* the node has the segment attached writable */
  uint8_t started;      /* start() saw it once (a transaction re-starts it when done) */
  uint32_t first;
  uint32_t count;
  uint64_t t0;          /* when its message was read (srv_metrics.rx_ns): its latency */
  uint64_t version[];   /* what the requester holds, per page of the run */
};

struct pending {
  uint32_t node;
  uint32_t reqid;
};

struct dtxn {
  struct dreq *req;
  uint32_t recall_node; /* owes a RECALL_ACK, or SRV_NODE_NONE */
  uint32_t recall_reqid;
  int inval_started;
  uint32_t ninval;      /* INVALIDATE_ACKs outstanding */
  struct pending *inval;
};

struct dpage {
  uint64_t version;
  uint32_t owner;
  uint32_t nsharers;
  uint32_t capsharers;
  uint32_t last_writer; /* the node of the last EXCLUSIVE grant, or SRV_NODE_NONE */
  uint8_t migratory;    /* nodes take the page in turn, reading then writing it */
  uint32_t *sharers;
  struct dtxn *txn;
  struct dreq *qhead;
  struct dreq *qtail;
};

struct srv_dir {
  struct srv_dirctx *ctx;
  int32_t shmid;
  uint8_t *data;
  struct srv_prec *rec; /* persisted version and owner tag per page, or NULL */
  uint64_t npages;      /* addressable pages: a run's first is 32 bits */
  uint64_t nchunks;
  struct dpage **chunk;
  /* Nodes that ever asked for a page: only they can be in a page's state, so forgetting any
   * other node (a host that attached and detached without touching a page) is O(1), not a
   * walk over every page of the segment. */
  uint32_t *users;
  uint32_t nusers, capusers;
};

static void advance(struct srv_dir *d, struct dpage *pg);
static void ghost_end(struct srv_dir *d, struct dpage *pg, uint64_t idx, int bump);

/* ---- pages and sharer sets ---- */

/* The page's state as the figures count it (metrics.h): 2 EXCLUSIVE (an owner, node or
 * ghost), 1 SHARED (sharers only), 0 INVALID. Every change of owner or sharers goes through
 * set_owner, sharer_add, sharer_del or sharers_clear, which keep the gauges exact without a
 * scan. */
static int pstate(const struct dpage *pg) {
  return pg->owner != SRV_NODE_NONE ? 2 : pg->nsharers > 0 ? 1 : 0;
}

static struct dpage *page_peek(const struct srv_dir *d, uint64_t idx) {
  struct dpage *c = d->chunk[idx >> CHUNK_SHIFT];
  return c ? &c[idx & CHUNK_MASK] : NULL;
}

static struct dpage *page_get(struct srv_dir *d, uint64_t idx) {
  uint64_t ci = idx >> CHUNK_SHIFT, base = ci << CHUNK_SHIFT, n, i;
  struct dpage *c = d->chunk[ci];

  if (c == NULL) {
    n = d->npages - base < CHUNK_PAGES ? d->npages - base : CHUNK_PAGES;
    c = calloc((size_t)n, sizeof *c);
    if (c == NULL)
      return NULL;
    for (i = 0; i < n; i++) {
      const struct srv_prec *pr = d->rec ? &d->rec[base + i] : NULL;
      c[i].version = pr && pr->version ? pr->version : 1;
      /* A chunk is made before any grant of its pages: an owner recorded here was granted
       * by an earlier run of the server, and its node has not come back yet. */
      c[i].owner = pr && pr->owner ? SRV_NODE_GHOST : SRV_NODE_NONE;
      c[i].last_writer = SRV_NODE_NONE;
      srv_metrics_page_moved(0, pstate(&c[i]));
    }
    d->chunk[ci] = c;
  }
  return &c[idx & CHUNK_MASK];
}

static int sharer_find(const struct dpage *pg, uint32_t node) {
  uint32_t i;
  for (i = 0; i < pg->nsharers; i++)
    if (pg->sharers[i] == node)
      return (int)i;
  return -1;
}

/* Makes room for n more sharers, so that a later add cannot fail. */
static int sharer_reserve(struct dpage *pg, uint32_t n) {
  uint32_t cap;
  uint32_t *v;

  if (pg->capsharers - pg->nsharers >= n)
    return 0;
  cap = pg->capsharers ? pg->capsharers * 2 : 4;
  while (cap - pg->nsharers < n)
    cap *= 2;
  v = realloc(pg->sharers, cap * sizeof *v);
  if (v == NULL)
    return -ENOMEM;
  pg->sharers = v;
  pg->capsharers = cap;
  return 0;
}

static int sharer_add(struct dpage *pg, uint32_t node) {
  int before = pstate(pg);

  if (sharer_find(pg, node) >= 0)
    return 0;
  if (sharer_reserve(pg, 1) < 0)
    return -ENOMEM;
  pg->sharers[pg->nsharers++] = node;
  srv_metrics_page_moved(before, pstate(pg));
  return 0;
}

static void sharer_del(struct dpage *pg, uint32_t node) {
  int i = sharer_find(pg, node), before = pstate(pg);
  if (i >= 0) {
    pg->sharers[i] = pg->sharers[--pg->nsharers];
    srv_metrics_page_moved(before, pstate(pg));
  }
}

static void sharers_clear(struct dpage *pg) {
  int before = pstate(pg);

  pg->nsharers = 0;
  srv_metrics_page_moved(before, pstate(pg));
}

/* ---- persisted page records (--data-dir) ---- */

static uint64_t node_tag(const struct srv_dir *d, uint32_t node) {
  if (node == SRV_NODE_NONE || node == SRV_NODE_GHOST || d->ctx->ops->node_tag == NULL)
    return 0;
  return d->ctx->ops->node_tag(d->ctx->opaque, node);
}

/* Every change of a page's owner goes through here, so that the record says who holds it
 * EXCLUSIVE whenever the server might die. */
static void set_owner(struct srv_dir *d, struct dpage *pg, uint64_t idx, uint32_t node) {
  int before = pstate(pg);

  pg->owner = node;
  srv_metrics_page_moved(before, pstate(pg));
  if (d->rec != NULL)
    d->rec[idx].owner = node_tag(d, node);
}

static void bump_version(struct srv_dir *d, struct dpage *pg, uint64_t idx) {
  pg->version++;
  if (d->rec != NULL)
    d->rec[idx].version = pg->version;
}

/* Nobody but node holds the page in any mode. */
static int held_only_by(const struct dpage *pg, uint32_t node) {
  if (pg->owner != SRV_NODE_NONE && pg->owner != node)
    return 0;
  return pg->nsharers == 0 || (pg->nsharers == 1 && pg->sharers[0] == node);
}

static int idle(const struct dpage *pg) {
  return pg->txn == NULL && pg->qhead == NULL;
}

/* The head page can be granted without asking anyone. */
static int grantable(const struct dpage *pg, const struct dreq *r) {
  if (r->mode == PROTO_MODE_SHARED)
    return pg->owner == SRV_NODE_NONE || pg->owner == r->node;
  return held_only_by(pg, r->node);
}

/* A read-ahead page (after the head) may join the grant. A page without state is idle,
 * unqueued and held by nobody. */
static int ahead_ok(const struct dpage *pg, const struct dreq *r) {
  if (r->mode != (r->op == PROTO_OP_READ_DATA ? PROTO_MODE_SHARED : PROTO_MODE_EXCLUSIVE))
    return 0; /* a migratory grant is of its page alone */
  if (pg == NULL)
    return 1;
  if (!idle(pg))
    return 0;
  if (r->mode == PROTO_MODE_SHARED)
    return pg->owner == SRV_NODE_NONE;
  return held_only_by(pg, r->node);
}

/* ---- messages ---- */

static void send_msg(struct srv_dir *d, uint32_t node, struct proto_msg *m) {
  (void)d->ctx->ops->send(d->ctx->opaque, node, m);
}

static uint32_t next_reqid(struct srv_dirctx *ctx) {
  if (++ctx->next_reqid == 0) /* 0 reads as "unset" in a trace; skip it */
    ctx->next_reqid = 1;
  return ctx->next_reqid;
}

static void send_range(struct srv_dir *d, uint32_t node, uint8_t op, uint32_t reqid,
                       uint64_t idx, uint32_t mode) {
  struct proto_msg m;

  memset(&m.h, 0, sizeof m.h);
  m.h.opcode = op;
  m.h.reqid = reqid;
  m.u.range.shmid = d->shmid;
  m.u.range.first = (uint32_t)idx;
  m.u.range.count = 1;
  m.u.range.mode = mode;
  send_msg(d, node, &m);
}

static void send_error(struct srv_dir *d, const struct dreq *r, int err) {
  struct proto_msg m;

  srv_metrics_inc(SRV_M_PAGE_REQ_ERRORS);
  srv_metrics_observe(srv__op_class[r->op], srv_metrics_now_ns() - r->t0);
  memset(&m.h, 0, sizeof m.h);
  m.h.opcode = r->op;
  m.h.flags = PROTO_F_REPLY;
  m.h.reqid = r->reqid;
  m.h.status = proto_err_from_errno(err);
  send_msg(d, r->node, &m);
}

/* ---- grants ---- */

/* Applies the grant of page idx to r and fills its run entry. Fails only with -ENOMEM,
 * before changing anything. */
static int grant_page(struct srv_dir *d, struct dpage *pg, uint64_t idx,
                      const struct dreq *r, uint64_t held, struct proto_page *out) {
  /* Never granted EXCLUSIVE (version 1, in a segment without records of an earlier run):
   * all zeros, as is the copy of a host that never held the page (version 0, a fresh memfd
   * page). Such a grant carries no data: a fill moves its pages once, back to the server. */
  int pristine = d->rec == NULL && pg->version == 1 && held == 0;
  int data;

  if (r->mode == PROTO_MODE_SHARED) {
    /* An owner asking to read has lost track of its copy: it becomes a plain sharer. */
    if (sharer_add(pg, r->node) < 0)
      return -ENOMEM;
    if (pg->owner == r->node)
      set_owner(d, pg, idx, SRV_NODE_NONE);
    data = held != pg->version;
  } else if (pg->owner == r->node) {
    data = 0; /* already EXCLUSIVE: an immediate grant, the version does not move */
  } else {
    /* A sharer already has the latest data; otherwise compare versions before the bump. */
    data = sharer_find(pg, r->node) < 0 && held != pg->version;
    sharers_clear(pg);
    bump_version(d, pg, idx);
    set_owner(d, pg, idx, r->node);
  }
  if (r->mode == PROTO_MODE_EXCLUSIVE)
    pg->last_writer = r->node;
  if (pristine)
    data = 0;
  out->version = pg->version;
  out->flags = data ? PROTO_PAGE_DATA : 0;
  out->data = data ? d->data + idx * PROTO_PAGE_SIZE : NULL;
  return 0;
}

/* Grants r's head page (the caller made it grantable) and then read-ahead pages while each
 * is immediately grantable, and sends the reply. */
static void grant(struct srv_dir *d, const struct dreq *r) {
  struct proto_msg m;
  struct proto_run *run = &m.u.run;
  uint32_t i;

  memset(&m.h, 0, sizeof m.h);
  m.h.opcode = r->op;
  m.h.flags = PROTO_F_REPLY;
  m.h.reqid = r->reqid;
  run->shmid = d->shmid;
  run->first = r->first;
  run->mode = r->mode;
  for (i = 0; i < r->count; i++) {
    uint64_t idx = (uint64_t)r->first + i;
    struct dpage *pg = page_peek(d, idx);
    if (i > 0 && !ahead_ok(pg, r))
      break;
    if (pg == NULL && (pg = page_get(d, idx)) == NULL)
      break;
    if (grant_page(d, pg, idx, r, r->version[i], &run->page[i]) < 0)
      break;
  }
  if (i == 0) {
    send_error(d, r, -ENOMEM);
    return;
  }
  run->count = i;
  send_msg(d, r->node, &m);
  srv_metrics_inc(r->mode == PROTO_MODE_SHARED ? SRV_M_GRANTS_SHARED : SRV_M_GRANTS_EXCLUSIVE);
  srv_metrics_add(r->mode == PROTO_MODE_SHARED ? SRV_M_GRANTED_SHARED : SRV_M_GRANTED_EXCLUSIVE,
                  i);
  if (r->op == PROTO_OP_READ_DATA && r->mode == PROTO_MODE_EXCLUSIVE)
    srv_metrics_inc(SRV_M_MIGRATORY_GRANTS);
  for (i = 0; i < run->count; i++)
    srv_metrics.c[SRV_M_GRANT_DATA_PAGES] += (run->page[i].flags & PROTO_PAGE_DATA) != 0;
  srv_metrics_observe(srv__op_class[r->op], srv_metrics_now_ns() - r->t0);
}

/* ---- transactions ---- */

/* The transport counts each live node's requests held here (queued or being served):
 * --max-pending. */
static void req_count(struct srv_dir *d, uint32_t node, int delta) {
  if (node != SRV_NODE_NONE && d->ctx->ops->pending != NULL)
    d->ctx->ops->pending(d->ctx->opaque, node, delta);
}

/* Frees a request that is done (granted, failed or dropped). */
static void req_free(struct srv_dir *d, struct dreq *r) {
  req_count(d, r->node, -1);
  free(r);
}

static void txn_free(struct dtxn *t) {
  free(t->inval);
  free(t);
}

/* Migratory sharing (docs/protocol.md, "Migratory pages"): nodes that take a page in turn,
 * each reading it and then writing it (a lock word, a flag handed back and forth), pay two
 * transactions per turn, a read and an upgrade. An upgrade by a sharer when at most one
 * other node has a copy and another node wrote last marks the page migratory; a read of a
 * migratory page held EXCLUSIVE by another node is then granted EXCLUSIVE (when the reader
 * may write), which takes the owner's copy away as the upgrade would have. An upgrade with
 * more copies about, or an owner giving the page back unchanged (srv_dir_recall_ack), ends
 * it. Only the mode of a grant changes: the transaction is the one an ACQUIRE would run.
 * Called when r first starts at pg, with the copies as they are before its transaction. */
static void migratory_note(struct dpage *pg, struct dreq *r) {
  if (r->started)
    return;
  r->started = 1;
  if (r->op == PROTO_OP_ACQUIRE) {
    if (sharer_find(pg, r->node) >= 0 && pg->nsharers <= 2 &&
        pg->last_writer != SRV_NODE_NONE && pg->last_writer != r->node)
      pg->migratory = 1;
    else if (pg->nsharers > 2)
      pg->migratory = 0;
  } else if (pg->migratory && r->writable && pg->owner != r->node &&
             pg->owner != SRV_NODE_NONE && pg->owner != SRV_NODE_GHOST) {
    r->mode = PROTO_MODE_EXCLUSIVE;
  }
}

/* Serves r at its head page pg, which has no transaction: grants at once or starts one.
 * Takes ownership of r. */
static void start(struct srv_dir *d, struct dpage *pg, struct dreq *r) {
  struct dtxn *t;

  migratory_note(pg, r);
  if (grantable(pg, r)) {
    grant(d, r);
    req_free(d, r);
    return;
  }
  t = calloc(1, sizeof *t);
  /* A RECALL to SHARED turns the owner into a sharer when its ack arrives: reserve the slot
   * now so that the ack can always be applied. */
  if (t == NULL || (r->mode == PROTO_MODE_SHARED && sharer_reserve(pg, 1) < 0)) {
    free(t);
    send_error(d, r, -ENOMEM);
    req_free(d, r);
    return;
  }
  t->req = r;
  t->recall_node = SRV_NODE_NONE;
  pg->txn = t;
  if (pg->owner != SRV_NODE_NONE && pg->owner != r->node) {
    t->recall_node = pg->owner;
    t->recall_reqid = next_reqid(d->ctx);
    srv_metrics_inc(SRV_M_RECALLS);
    send_range(d, t->recall_node, PROTO_OP_RECALL, t->recall_reqid, r->first,
               r->mode == PROTO_MODE_SHARED ? PROTO_MODE_SHARED : PROTO_MODE_INVALID);
    return;
  }
  advance(d, pg);
}

/* Starts queued requests while the page has no transaction. */
static void kick(struct srv_dir *d, struct dpage *pg) {
  while (pg->txn == NULL && pg->qhead != NULL) {
    struct dreq *r = pg->qhead;
    pg->qhead = r->next;
    if (pg->qhead == NULL)
      pg->qtail = NULL;
    r->next = NULL;
    start(d, pg, r);
  }
}

/* Sends INVALIDATE to every sharer but the requester. */
static int invalidate_others(struct srv_dir *d, struct dpage *pg, struct dtxn *t) {
  uint32_t i;

  t->inval_started = 1;
  if (t->req->node == SRV_NODE_NONE || pg->nsharers == 0)
    return 0; /* nobody to grant to, or nobody to ask */
  t->inval = malloc(pg->nsharers * sizeof *t->inval);
  if (t->inval == NULL)
    return -ENOMEM;
  for (i = 0; i < pg->nsharers; i++) {
    struct pending *p;
    if (pg->sharers[i] == t->req->node)
      continue;
    p = &t->inval[t->ninval++];
    p->node = pg->sharers[i];
    p->reqid = next_reqid(d->ctx);
  }
  /* Sent after the list is complete: send() never re-enters, but keep the state whole. */
  srv_metrics_add(SRV_M_INVALIDATIONS, t->ninval);
  for (i = 0; i < t->ninval; i++)
    send_range(d, t->inval[i].node, PROTO_OP_INVALIDATE, t->inval[i].reqid, t->req->first,
               PROTO_MODE_INVALID);
  return 0;
}

/* Moves pg's transaction on after something it waited for happened: next phase, or done.
 * When done, serves the request (or drops it if its node is gone) and the queue. */
static void advance(struct srv_dir *d, struct dpage *pg) {
  struct dtxn *t = pg->txn;
  struct dreq *r;

  if (t->recall_node != SRV_NODE_NONE)
    return;
  if (t->req->mode == PROTO_MODE_EXCLUSIVE && !t->inval_started) {
    if (invalidate_others(d, pg, t) < 0) {
      pg->txn = NULL;
      send_error(d, t->req, -ENOMEM);
      req_free(d, t->req);
      txn_free(t);
      kick(d, pg);
      return;
    }
  }
  if (t->ninval > 0)
    return;
  pg->txn = NULL;
  r = t->req;
  txn_free(t);
  if (r->node == SRV_NODE_NONE)
    req_free(d, r);
  else
    start(d, pg, r); /* grantable by now; start re-checks rather than trusts that */
  kick(d, pg);
}

/* ---- public entry points ---- */

struct srv_dir *srv_dir_new(struct srv_dirctx *ctx, int32_t shmid, uint8_t *data,
                            uint64_t npages) {
  struct srv_dir *d = calloc(1, sizeof *d);

  if (d == NULL)
    return NULL;
  d->ctx = ctx;
  d->shmid = shmid;
  d->data = data;
  d->npages = npages > (uint64_t)UINT32_MAX + 1 ? (uint64_t)UINT32_MAX + 1 : npages;
  d->nchunks = (d->npages + CHUNK_PAGES - 1) >> CHUNK_SHIFT;
  d->chunk = calloc(d->nchunks ? (size_t)d->nchunks : 1, sizeof *d->chunk);
  if (d->chunk == NULL) {
    free(d);
    return NULL;
  }
  srv_metrics.dir_pages += (int64_t)d->npages;
  return d;
}

void srv_dir_set_records(struct srv_dir *d, struct srv_prec *rec) {
  d->rec = rec;
}

uint64_t srv_dir_end_ghosts(struct srv_dir *d, uint64_t tag) {
  uint64_t idx, n = 0;

  if (d->rec == NULL)
    return 0;
  for (idx = 0; idx < d->npages; idx++) {
    struct dpage *pg;
    if (d->rec[idx].owner == 0 || (tag != 0 && d->rec[idx].owner != tag))
      continue;
    pg = page_peek(d, idx);
    if (pg == NULL) {
      d->rec[idx].owner = 0; /* never looked at since the restart */
      d->rec[idx].version++;
      n++;
    } else if (pg->owner == SRV_NODE_GHOST) {
      ghost_end(d, pg, idx, 1);
      n++;
    }
  }
  return n;
}

static void free_queue(struct srv_dir *d, struct dreq *r) {
  while (r != NULL) {
    struct dreq *next = r->next;
    req_free(d, r);
    r = next;
  }
}

void srv_dir_free(struct srv_dir *d) {
  uint64_t ci, i, n;

  if (d == NULL)
    return;
  for (ci = 0; ci < d->nchunks; ci++) {
    struct dpage *c = d->chunk[ci];
    if (c == NULL)
      continue;
    n = d->npages - (ci << CHUNK_SHIFT);
    n = n < CHUNK_PAGES ? n : CHUNK_PAGES;
    for (i = 0; i < n; i++) {
      srv_metrics_page_moved(pstate(&c[i]), 0);
      if (c[i].txn != NULL) {
        req_free(d, c[i].txn->req);
        txn_free(c[i].txn);
      }
      free_queue(d, c[i].qhead);
      free(c[i].sharers);
    }
    free(c);
  }
  srv_metrics.dir_pages -= (int64_t)d->npages;
  free(d->chunk);
  free(d->users);
  free(d);
}

static int user_find(const struct srv_dir *d, uint32_t node) {
  for (uint32_t i = 0; i < d->nusers; i++)
    if (d->users[i] == node)
      return (int)i;
  return -1;
}

static int user_add(struct srv_dir *d, uint32_t node) {
  if (user_find(d, node) >= 0)
    return 0;
  if (d->nusers == d->capusers) {
    uint32_t cap = d->capusers ? d->capusers * 2 : 4;
    uint32_t *v = realloc(d->users, cap * sizeof *v);
    if (v == NULL)
      return -ENOMEM;
    d->users = v;
    d->capusers = cap;
  }
  d->users[d->nusers++] = node;
  return 0;
}

static int run_in_range(const struct srv_dir *d, const struct proto_run *run) {
  return run->count >= 1 && run->count <= PROTO_MAX_RUN && run->first < d->npages &&
         run->count <= d->npages - run->first;
}

int srv_dir_request(struct srv_dir *d, uint32_t node, uint32_t reqid, uint8_t op,
                    const struct proto_run *run, int writable) {
  struct dpage *pg;
  struct dreq *r;
  uint32_t i;

  if (op == PROTO_OP_READ_DATA ? run->mode != PROTO_MODE_SHARED
                               : op != PROTO_OP_ACQUIRE || run->mode != PROTO_MODE_EXCLUSIVE)
    return -EINVAL;
  if (!run_in_range(d, run))
    return -EINVAL;
  r = malloc(sizeof *r + run->count * sizeof r->version[0]);
  if (r == NULL)
    return -ENOMEM;
  pg = page_get(d, run->first);
  if (pg == NULL || user_add(d, node) < 0) {
    free(r);
    return -ENOMEM;
  }
  /* The node itself asks for a page it held before the restart: it has nothing newer. */
  if (pg->owner == SRV_NODE_GHOST && d->rec[run->first].owner != 0 &&
      d->rec[run->first].owner == node_tag(d, node))
    ghost_end(d, pg, run->first, 1);
  r->next = NULL;
  r->node = node;
  r->reqid = reqid;
  r->op = op;
  r->mode = (uint8_t)run->mode;
  r->writable = writable != 0;
  r->started = 0;
  r->first = run->first;
  r->count = run->count;
  r->t0 = srv_metrics.rx_ns;
  for (i = 0; i < run->count; i++)
    r->version[i] = run->page[i].version;
  req_count(d, node, +1);
  if (!idle(pg)) {
    if (pg->qtail != NULL)
      pg->qtail->next = r;
    else
      pg->qhead = r;
    pg->qtail = r;
    return 0;
  }
  start(d, pg, r);
  return 0;
}

/* The page's owner recorded by an earlier run of the server is node, which came back: its
 * write-back is the data the server was missing, if it is of the version it was granted. */
static int ghost_of(const struct srv_dir *d, const struct dpage *pg, uint64_t idx,
                    uint64_t tag, uint64_t version) {
  return pg != NULL && pg->owner == SRV_NODE_GHOST && tag != 0 && d->rec[idx].owner == tag &&
         d->rec[idx].version == version;
}

/* Ends a ghost ownership: the page is nobody's; bump when the owner's last data never came
 * back (a node holding the old version must not take its own unsent writes for the
 * server's). A transaction waiting for the ghost's "recall" moves on. */
static void ghost_end(struct srv_dir *d, struct dpage *pg, uint64_t idx, int bump) {
  set_owner(d, pg, idx, SRV_NODE_NONE); /* the record's owner becomes 0 too */
  if (bump)
    bump_version(d, pg, idx);
  if (pg->txn != NULL && pg->txn->recall_node == SRV_NODE_GHOST) {
    pg->txn->recall_node = SRV_NODE_NONE;
    advance(d, pg);
  }
}

int srv_dir_write(struct srv_dir *d, uint32_t node, const struct proto_run *run) {
  uint64_t tag = d->rec != NULL ? node_tag(d, node) : 0;
  uint32_t i;

  if (!run_in_range(d, run))
    return -EINVAL;
  for (i = 0; i < run->count; i++)
    if (!(run->page[i].flags & PROTO_PAGE_DATA) || run->page[i].data == NULL)
      return -EINVAL;
  /* A ghost's write-back can make node a sharer without a request of its own. */
  if (tag != 0 && user_add(d, node) < 0)
    return -ENOMEM;
  /* The store's pages of the run in one system call: the copies below would otherwise take
   * a page fault per page first written (~10 us on a VM; a 64 MiB fill is 16384 of them).
   * Failing (before Linux 5.14, or out of memory) only costs those faults. */
  if (run->count > 1)
    (void)madvise(d->data + (uint64_t)run->first * PROTO_PAGE_SIZE,
                  (size_t)run->count * PROTO_PAGE_SIZE, MADV_POPULATE_WRITE);
  /* Reserve first so that applying cannot fail half-way: a node told SHARED must be
   * recorded as a sharer, or a later ACQUIRE would not invalidate its copy. A page whose
   * ghost owner is node gets its state now. */
  for (i = 0; i < run->count; i++) {
    uint64_t idx = (uint64_t)run->first + i;
    struct dpage *pg = page_peek(d, idx);
    if (pg == NULL && tag != 0 && d->rec[idx].owner == tag && (pg = page_get(d, idx)) == NULL)
      return -ENOMEM;
    if (run->mode == PROTO_MODE_SHARED && pg != NULL &&
        (pg->owner == node || ghost_of(d, pg, idx, tag, run->page[i].version)) &&
        sharer_reserve(pg, 1) < 0)
      return -ENOMEM;
  }
  for (i = 0; i < run->count; i++) {
    uint64_t idx = (uint64_t)run->first + i;
    struct dpage *pg = page_peek(d, idx);
    if (pg != NULL && d->rec != NULL && ghost_of(d, pg, idx, tag, run->page[i].version)) {
      memcpy(d->data + idx * PROTO_PAGE_SIZE, run->page[i].data, PROTO_PAGE_SIZE);
      srv_metrics_inc(SRV_M_WRITEBACK_PAGES);
      if (run->mode == PROTO_MODE_SHARED)
        (void)sharer_add(pg, node);
      ghost_end(d, pg, idx, 0);
      continue;
    }
    /* Not the owner: a recall crossed this write-back, whose ack will settle the page. */
    if (pg == NULL || pg->owner != node)
      continue;
    memcpy(d->data + idx * PROTO_PAGE_SIZE, run->page[i].data, PROTO_PAGE_SIZE);
    srv_metrics_inc(SRV_M_WRITEBACK_PAGES);
    if (run->mode == PROTO_MODE_EXCLUSIVE)
      continue; /* a background write-back: the node keeps the page, the version stays */
    set_owner(d, pg, idx, SRV_NODE_NONE);
    if (run->mode == PROTO_MODE_SHARED)
      (void)sharer_add(pg, node);
  }
  srv_metrics_inc(SRV_M_WRITEBACKS);
  return 0;
}

void srv_dir_recall_ack(struct srv_dir *d, uint32_t node, uint32_t reqid,
                        const struct proto_run *run) {
  uint32_t i;

  if (!run_in_range(d, run))
    return;
  for (i = 0; i < run->count; i++) {
    uint64_t idx = (uint64_t)run->first + i;
    struct dpage *pg = page_peek(d, idx);
    struct dtxn *t = pg ? pg->txn : NULL;
    if (t == NULL || t->recall_node != node || t->recall_reqid != reqid)
      continue;
    /* Still the owner: it held the page EXCLUSIVE until now and lowered it to the mode we
     * asked for. Otherwise its write-back already arrived and there is nothing to take. */
    if (pg->owner == node) {
      uint8_t *dst = d->data + idx * PROTO_PAGE_SIZE;
      if (run->page[i].flags & PROTO_PAGE_DATA) {
        /* Given back unchanged: the owner only read it, the page is not migratory. */
        if (pg->migratory && memcmp(dst, run->page[i].data, PROTO_PAGE_SIZE) == 0)
          pg->migratory = 0;
        memcpy(dst, run->page[i].data, PROTO_PAGE_SIZE);
      }
      set_owner(d, pg, idx, SRV_NODE_NONE);
      if (t->req->mode == PROTO_MODE_SHARED)
        (void)sharer_add(pg, node); /* slot reserved when the recall was sent */
    }
    t->recall_node = SRV_NODE_NONE;
    advance(d, pg);
  }
}

/* Drops node's pending INVALIDATE_ACK from t if there is one with that reqid (any reqid
 * when reqid is 0 and any is set). Returns 1 if one was dropped. */
static int drop_pending(struct dtxn *t, uint32_t node, uint32_t reqid, int any) {
  uint32_t i;
  for (i = 0; i < t->ninval; i++)
    if (t->inval[i].node == node && (any || t->inval[i].reqid == reqid)) {
      t->inval[i] = t->inval[--t->ninval];
      return 1;
    }
  return 0;
}

void srv_dir_invalidate_ack(struct srv_dir *d, uint32_t node, uint32_t reqid,
                            const struct proto_range *range) {
  uint64_t i;

  if (range->count < 1 || range->first >= d->npages)
    return;
  for (i = 0; i < range->count && range->first + i < d->npages; i++) {
    struct dpage *pg = page_peek(d, range->first + i);
    if (pg == NULL || pg->txn == NULL || !drop_pending(pg->txn, node, reqid, 0))
      continue;
    sharer_del(pg, node);
    advance(d, pg);
  }
}

void srv_dir_forget(struct srv_dir *d, uint32_t node) {
  uint64_t ci, i, n;
  int u = user_find(d, node);

  if (u < 0)
    return; /* it never asked for a page: it is in no page's state */
  d->users[u] = d->users[--d->nusers];
  for (ci = 0; ci < d->nchunks; ci++) {
    struct dpage *c = d->chunk[ci];
    if (c == NULL)
      continue;
    n = d->npages - (ci << CHUNK_SHIFT);
    n = n < CHUNK_PAGES ? n : CHUNK_PAGES;
    for (i = 0; i < n; i++) {
      struct dpage *pg = &c[i];
      struct dreq **pp = &pg->qhead, *last = NULL;
      struct dtxn *t = pg->txn;

      while (*pp != NULL) {
        struct dreq *r = *pp;
        if (r->node == node) {
          *pp = r->next;
          req_free(d, r);
        } else {
          last = r;
          pp = &r->next;
        }
      }
      pg->qtail = last;
      /* An owner's unsent changes are lost; the stored data stays, under a new version:
       * the owner's copy at the old one may hold those changes, and must never be taken
       * for the stored data (a host that comes back with it gets the data again). */
      if (pg->owner == node) {
        set_owner(d, pg, ci * CHUNK_PAGES + i, SRV_NODE_NONE);
        bump_version(d, pg, ci * CHUNK_PAGES + i);
      }
      if (pg->last_writer == node)
        pg->last_writer = SRV_NODE_NONE;
      sharer_del(pg, node);
      if (t == NULL)
        continue;
      if (t->req->node == node) {
        req_count(d, node, -1);
        t->req->node = SRV_NODE_NONE;
      }
      if (t->recall_node == node)
        t->recall_node = SRV_NODE_NONE; /* as if it had answered without data */
      while (drop_pending(t, node, 0, 1))
        ;
      advance(d, pg);
    }
  }
}

int srv_dir_page_info(const struct srv_dir *d, uint64_t idx, struct srv_dpage_info *out) {
  const struct dpage *pg;
  const struct dreq *r;

  if (idx >= d->npages)
    return -EINVAL;
  memset(out, 0, sizeof *out);
  out->version = 1;
  out->owner = SRV_NODE_NONE;
  pg = page_peek(d, idx);
  if (pg == NULL) {
    if (d->rec != NULL && d->rec[idx].version != 0)
      out->version = d->rec[idx].version;
    if (d->rec != NULL && d->rec[idx].owner != 0)
      out->owner = SRV_NODE_GHOST;
    return 0;
  }
  out->version = pg->version;
  out->owner = pg->owner;
  out->nsharers = pg->nsharers;
  out->sharers = pg->sharers;
  out->busy = pg->txn != NULL;
  for (r = pg->qhead; r != NULL; r = r->next)
    out->queued++;
  return 0;
}

int srv_dir_is_sharer(const struct srv_dir *d, uint64_t idx, uint32_t node) {
  const struct dpage *pg = idx < d->npages ? page_peek(d, idx) : NULL;
  return pg != NULL && sharer_find(pg, node) >= 0;
}
