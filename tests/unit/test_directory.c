/* test_directory.c - drives the page directory with fake nodes and checks what it sends. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "metrics.h"

#define NPAGES 8
#define SHMID  7
#define MAXMSG 64

/* What a fake node received: enough of each message to assert on. */
struct sent {
  uint32_t node;
  uint8_t op;
  int reply;
  uint32_t reqid;
  int32_t status;
  int32_t shmid;
  uint32_t first, count, mode;
  uint64_t version[PROTO_MAX_RUN];
  int data[PROTO_MAX_RUN];        /* DATA flag */
  uint8_t byte[PROTO_MAX_RUN];    /* first byte of the data block */
};

static struct sent log_[MAXMSG];
static int nlog, nread;
static uint8_t *mem;
static struct srv_dirctx ctx;
static struct srv_dir *dir;

static int fake_send(void *opaque, uint32_t node, struct proto_msg *m) {
  struct sent *s;
  uint32_t i;

  (void)opaque;
  ck_assert_int_lt(nlog, MAXMSG);
  ck_assert_int_ge(proto_encoded_size(m), PROTO_HDR_SIZE); /* a valid message */
  s = &log_[nlog++];
  memset(s, 0, sizeof *s);
  s->node = node;
  s->op = m->h.opcode;
  s->reply = (m->h.flags & PROTO_F_REPLY) != 0;
  s->reqid = m->h.reqid;
  s->status = m->h.status;
  if (s->reply && s->status != 0)
    return 0;
  if (s->op == PROTO_OP_RECALL || s->op == PROTO_OP_INVALIDATE) {
    s->shmid = m->u.range.shmid;
    s->first = m->u.range.first;
    s->count = m->u.range.count;
    s->mode = m->u.range.mode;
    return 0;
  }
  s->shmid = m->u.run.shmid;
  s->first = m->u.run.first;
  s->count = m->u.run.count;
  s->mode = m->u.run.mode;
  for (i = 0; i < s->count; i++) {
    s->version[i] = m->u.run.page[i].version;
    s->data[i] = (m->u.run.page[i].flags & PROTO_PAGE_DATA) != 0;
    if (s->data[i])
      s->byte[i] = m->u.run.page[i].data[0];
  }
  return 0;
}

static const struct srv_dir_ops fake_ops = {.send = fake_send};

static void setup(void) {
  nlog = nread = 0;
  mem = calloc(NPAGES, PROTO_PAGE_SIZE);
  ck_assert_ptr_nonnull(mem);
  ctx.ops = &fake_ops;
  ctx.opaque = NULL;
  ctx.next_reqid = 1000;
  dir = srv_dir_new(&ctx, SHMID, mem, NPAGES);
  ck_assert_ptr_nonnull(dir);
}

/* The page-state gauges (metrics.h), kept on every transition, agree with a scan of the
 * directory after whatever the test did; freeing the directory takes its pages away. */
static void check_gauges(void) {
  int64_t shared = 0, exclusive = 0;
  struct srv_dpage_info in;

  for (uint32_t i = 0; i < NPAGES; i++) {
    ck_assert_int_eq(srv_dir_page_info(dir, i, &in), 0);
    if (in.owner != SRV_NODE_NONE)
      exclusive++;
    else if (in.nsharers > 0)
      shared++;
  }
  ck_assert_int_eq(srv_metrics.dir_pages, NPAGES);
  ck_assert_int_eq(srv_metrics.pages_shared, shared);
  ck_assert_int_eq(srv_metrics.pages_exclusive, exclusive);
}

static void teardown(void) {
  check_gauges();
  srv_dir_free(dir);
  dir = NULL;
  ck_assert_int_eq(srv_metrics.dir_pages, 0);
  ck_assert_int_eq(srv_metrics.pages_shared, 0);
  ck_assert_int_eq(srv_metrics.pages_exclusive, 0);
  free(mem);
}

/* ---- helpers ---- */

static int request_w(uint32_t node, uint32_t reqid, uint8_t op, uint32_t first,
                     uint32_t count, uint64_t version, int writable) {
  struct proto_run run;
  uint32_t i;

  memset(&run, 0, sizeof run);
  run.shmid = SHMID;
  run.first = first;
  run.count = count;
  run.mode = op == PROTO_OP_READ_DATA ? PROTO_MODE_SHARED : PROTO_MODE_EXCLUSIVE;
  for (i = 0; i < count && i < PROTO_MAX_RUN; i++)
    run.page[i].version = version;
  return srv_dir_request(dir, node, reqid, op, &run, writable);
}

static int request(uint32_t node, uint32_t reqid, uint8_t op, uint32_t first, uint32_t count,
                   uint64_t version) {
  return request_w(node, reqid, op, first, count, version, 1);
}

static void read_req(uint32_t node, uint32_t reqid, uint32_t first, uint32_t count,
                     uint64_t version) {
  ck_assert_int_eq(request(node, reqid, PROTO_OP_READ_DATA, first, count, version), 0);
}

static void acquire_req(uint32_t node, uint32_t reqid, uint32_t first, uint32_t count,
                        uint64_t version) {
  ck_assert_int_eq(request(node, reqid, PROTO_OP_ACQUIRE, first, count, version), 0);
}

static const struct sent *next_msg(void) {
  ck_assert_msg(nread < nlog, "expected another message (%d sent)", nlog);
  return &log_[nread++];
}

static void no_more(void) {
  ck_assert_msg(nread == nlog, "unexpected message: op %u to node %u", log_[nread].op,
                log_[nread].node);
}

/* The next message is a grant reply to node for reqid; returns it for more checks. */
static const struct sent *expect_grant(uint32_t node, uint32_t reqid, uint8_t op,
                                       uint32_t first, uint32_t count) {
  const struct sent *s = next_msg();
  ck_assert_uint_eq(s->node, node);
  ck_assert_uint_eq(s->op, op);
  ck_assert(s->reply);
  ck_assert_int_eq(s->status, 0);
  ck_assert_uint_eq(s->reqid, reqid);
  ck_assert_int_eq(s->shmid, SHMID);
  ck_assert_uint_eq(s->first, first);
  ck_assert_uint_eq(s->count, count);
  ck_assert_uint_eq(s->mode, op == PROTO_OP_READ_DATA ? PROTO_MODE_SHARED
                                                      : PROTO_MODE_EXCLUSIVE);
  return s;
}

/* The next message is a server request (RECALL/INVALIDATE) to node; returns its reqid. */
static uint32_t expect_ask(uint32_t node, uint8_t op, uint32_t page, uint32_t mode) {
  const struct sent *s = next_msg();
  ck_assert_uint_eq(s->node, node);
  ck_assert_uint_eq(s->op, op);
  ck_assert(!s->reply);
  ck_assert_int_eq(s->shmid, SHMID);
  ck_assert_uint_eq(s->first, page);
  ck_assert_uint_eq(s->count, 1);
  ck_assert_uint_eq(s->mode, mode);
  return s->reqid;
}

static struct srv_dpage_info info(uint32_t page) {
  struct srv_dpage_info i;
  ck_assert_int_eq(srv_dir_page_info(dir, page, &i), 0);
  return i;
}

static void recall_ack(uint32_t node, uint32_t reqid, uint32_t page, int with_data,
                       uint8_t fill) {
  static uint8_t block[PROTO_PAGE_SIZE];
  struct proto_run run;

  memset(&run, 0, sizeof run);
  memset(block, fill, sizeof block);
  run.shmid = SHMID;
  run.first = page;
  run.count = 1;
  run.mode = PROTO_MODE_INVALID;
  run.page[0].flags = with_data ? PROTO_PAGE_DATA : 0;
  run.page[0].data = with_data ? block : NULL;
  srv_dir_recall_ack(dir, node, reqid, &run);
}

static void inval_ack(uint32_t node, uint32_t reqid, uint32_t page) {
  struct proto_range r = {.shmid = SHMID, .first = page, .count = 1,
                          .mode = PROTO_MODE_INVALID};
  srv_dir_invalidate_ack(dir, node, reqid, &r);
}

static int write_back(uint32_t node, uint32_t page, uint32_t mode, uint8_t fill) {
  static uint8_t block[PROTO_PAGE_SIZE];
  struct proto_run run;

  memset(&run, 0, sizeof run);
  memset(block, fill, sizeof block);
  run.shmid = SHMID;
  run.first = page;
  run.count = 1;
  run.mode = mode;
  run.page[0].flags = PROTO_PAGE_DATA;
  run.page[0].data = block;
  return srv_dir_write(dir, node, &run);
}

/* Makes node the owner of page (idle before). */
static void make_owner(uint32_t node, uint32_t page) {
  acquire_req(node, 1, page, 1, 0);
  expect_grant(node, 1, PROTO_OP_ACQUIRE, page, 1);
  ck_assert_uint_eq(info(page).owner, node);
}

/* ---- READ_DATA ---- */

START_TEST(read_idle_page_grants_data) {
  const struct sent *s;

  mem[0] = 0x42;
  read_req(1, 10, 0, 1, 7); /* a host holding another version (0 would be pristine_...) */
  s = expect_grant(1, 10, PROTO_OP_READ_DATA, 0, 1);
  ck_assert_uint_eq(s->version[0], 1);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(s->byte[0], 0x42);
  ck_assert(srv_dir_is_sharer(dir, 0, 1));
  ck_assert_uint_eq(info(0).owner, SRV_NODE_NONE);
  no_more();
}
END_TEST

/* A page never granted EXCLUSIVE is all zeros, as is the copy of a host that never held it
 * (version 0): such grants carry no data, read or write. Once written, they do. */
START_TEST(pristine_page_grants_carry_no_data) {
  const struct sent *s;

  read_req(1, 10, 0, 2, 0);
  s = expect_grant(1, 10, PROTO_OP_READ_DATA, 0, 2);
  ck_assert(!s->data[0] && !s->data[1]);
  acquire_req(2, 11, 4, 1, 0);
  s = expect_grant(2, 11, PROTO_OP_ACQUIRE, 4, 1);
  ck_assert(!s->data[0]);
  ck_assert_uint_eq(s->version[0], 2);
  ck_assert_int_eq(write_back(2, 4, PROTO_MODE_SHARED, 0x66), 0);
  read_req(3, 12, 4, 1, 0);
  s = expect_grant(3, 12, PROTO_OP_READ_DATA, 4, 1);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(s->byte[0], 0x66);
  no_more();
}
END_TEST

START_TEST(read_same_version_omits_data) {
  const struct sent *s;

  read_req(1, 10, 0, 1, 1);
  s = expect_grant(1, 10, PROTO_OP_READ_DATA, 0, 1);
  ck_assert_uint_eq(s->version[0], 1);
  ck_assert(!s->data[0]);
  /* Another version: data. */
  read_req(2, 11, 0, 1, 7);
  s = expect_grant(2, 11, PROTO_OP_READ_DATA, 0, 1);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(info(0).nsharers, 2);
}
END_TEST

START_TEST(read_ahead_grants_idle_pages) {
  const struct sent *s;

  read_req(1, 10, 2, 4, 7);
  s = expect_grant(1, 10, PROTO_OP_READ_DATA, 2, 4);
  for (int i = 0; i < 4; i++) {
    ck_assert(s->data[i]);
    ck_assert(srv_dir_is_sharer(dir, 2 + (uint32_t)i, 1));
  }
}
END_TEST

START_TEST(read_ahead_stops_at_owned_page) {
  const struct sent *s;

  make_owner(5, 3);
  read_req(1, 10, 1, 4, 7);
  s = expect_grant(1, 10, PROTO_OP_READ_DATA, 1, 2); /* pages 1, 2; 3 is owned */
  ck_assert(s->data[0] && s->data[1]);
  ck_assert(!srv_dir_is_sharer(dir, 3, 1));
  ck_assert(!srv_dir_is_sharer(dir, 4, 1)); /* stops at the first, even if later are idle */
  no_more();
}
END_TEST

START_TEST(read_ahead_stops_at_busy_page) {
  uint32_t rq;

  read_req(1, 10, 2, 1, 0);          /* node 1 shares page 2 */
  expect_grant(1, 10, PROTO_OP_READ_DATA, 2, 1);
  acquire_req(2, 20, 2, 1, 0);       /* invalidation of node 1 in progress */
  rq = expect_ask(1, PROTO_OP_INVALIDATE, 2, PROTO_MODE_INVALID);
  read_req(3, 30, 0, 4, 0);
  expect_grant(3, 30, PROTO_OP_READ_DATA, 0, 2);
  no_more();
  inval_ack(1, rq, 2);
  expect_grant(2, 20, PROTO_OP_ACQUIRE, 2, 1);
}
END_TEST

START_TEST(read_mandatory_first_page_waits_for_recall) {
  const struct sent *s;
  uint32_t rq;

  make_owner(1, 0);
  read_req(2, 20, 0, 3, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  no_more();
  ck_assert(info(0).busy);
  recall_ack(1, rq, 0, 1, 0xAB);
  s = expect_grant(2, 20, PROTO_OP_READ_DATA, 0, 3);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(s->byte[0], 0xAB);
  ck_assert_uint_eq(s->version[0], 2);
  ck_assert_uint_eq(mem[0], 0xAB);            /* stored */
  ck_assert_uint_eq(info(0).owner, SRV_NODE_NONE);
  ck_assert(srv_dir_is_sharer(dir, 0, 1));    /* recalled to SHARED keeps a copy */
  ck_assert(srv_dir_is_sharer(dir, 0, 2));
  ck_assert(!info(0).busy);
}
END_TEST

START_TEST(read_by_owner_demotes_it) {
  const struct sent *s;

  make_owner(1, 0);
  read_req(1, 11, 0, 1, 2);
  s = expect_grant(1, 11, PROTO_OP_READ_DATA, 0, 1);
  ck_assert(!s->data[0]);
  ck_assert_uint_eq(info(0).owner, SRV_NODE_NONE);
  ck_assert(srv_dir_is_sharer(dir, 0, 1));
}
END_TEST

/* ---- ACQUIRE ---- */

START_TEST(acquire_idle_page_bumps_version) {
  const struct sent *s;

  acquire_req(1, 10, 0, 1, 7);
  s = expect_grant(1, 10, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert_uint_eq(s->version[0], 2);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(info(0).owner, 1);
  ck_assert_uint_eq(info(0).nsharers, 0);
}
END_TEST

START_TEST(acquire_version_equal_omits_data) {
  const struct sent *s;

  acquire_req(1, 10, 0, 1, 1);
  s = expect_grant(1, 10, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert(!s->data[0]);
  ck_assert_uint_eq(s->version[0], 2);
}
END_TEST

START_TEST(acquire_by_sole_sharer_no_data) {
  const struct sent *s;

  read_req(1, 10, 0, 1, 0);
  expect_grant(1, 10, PROTO_OP_READ_DATA, 0, 1);
  acquire_req(1, 11, 0, 1, 99); /* even with a stale-looking version: it is a sharer */
  s = expect_grant(1, 11, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert(!s->data[0]);
  ck_assert_uint_eq(s->version[0], 2);
  ck_assert(!srv_dir_is_sharer(dir, 0, 1));
  ck_assert_uint_eq(info(0).owner, 1);
  no_more();
}
END_TEST

START_TEST(acquire_by_owner_is_immediate) {
  const struct sent *s;

  make_owner(1, 0);
  acquire_req(1, 12, 0, 1, 0);
  s = expect_grant(1, 12, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert(!s->data[0]);
  ck_assert_uint_eq(s->version[0], 2); /* not bumped again */
  no_more();
}
END_TEST

START_TEST(acquire_invalidates_sharers) {
  const struct sent *s;
  uint32_t r1, r2;

  read_req(1, 10, 0, 1, 0);
  read_req(2, 20, 0, 1, 0);
  read_req(3, 30, 0, 1, 0);
  nread = nlog;
  acquire_req(3, 31, 0, 1, 1);
  /* One INVALIDATE per other sharer, none to the requester. */
  r1 = expect_ask(1, PROTO_OP_INVALIDATE, 0, PROTO_MODE_INVALID);
  r2 = expect_ask(2, PROTO_OP_INVALIDATE, 0, PROTO_MODE_INVALID);
  ck_assert_uint_ne(r1, r2);
  no_more();
  inval_ack(1, r1, 0);
  no_more();                      /* still waiting for node 2 */
  ck_assert(!srv_dir_is_sharer(dir, 0, 1));
  inval_ack(2, r1, 0);            /* node 2 echoing node 1's reqid: not its ack */
  no_more();
  inval_ack(2, r2, 0);
  s = expect_grant(3, 31, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert(!s->data[0]);         /* the requester was a sharer */
  ck_assert_uint_eq(s->version[0], 2);
  ck_assert_uint_eq(info(0).nsharers, 0);
  ck_assert_uint_eq(info(0).owner, 3);
}
END_TEST

START_TEST(acquire_recalls_owner_to_invalid) {
  const struct sent *s;
  uint32_t rq;

  make_owner(1, 0);
  acquire_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_INVALID);
  no_more();
  recall_ack(1, rq, 0, 1, 0xCD);
  s = expect_grant(2, 20, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(s->byte[0], 0xCD);
  ck_assert_uint_eq(s->version[0], 3);
  ck_assert(!srv_dir_is_sharer(dir, 0, 1));
  ck_assert_uint_eq(info(0).owner, 2);
}
END_TEST

START_TEST(acquire_read_ahead_stops_at_shared_page) {
  read_req(2, 20, 2, 1, 0);
  expect_grant(2, 20, PROTO_OP_READ_DATA, 2, 1);
  acquire_req(1, 10, 0, 4, 0);
  expect_grant(1, 10, PROTO_OP_ACQUIRE, 0, 2);
  ck_assert_uint_eq(info(1).owner, 1);
  ck_assert_uint_eq(info(2).owner, SRV_NODE_NONE);
  ck_assert(srv_dir_is_sharer(dir, 2, 2));
  no_more();
}
END_TEST

START_TEST(stale_ack_is_ignored) {
  uint32_t rq;

  make_owner(1, 0);
  acquire_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_INVALID);
  recall_ack(1, rq + 77, 0, 1, 0xEE); /* wrong reqid */
  recall_ack(3, rq, 0, 1, 0xEE);      /* wrong node */
  no_more();
  ck_assert_uint_eq(mem[0], 0);
  ck_assert_uint_eq(info(0).owner, 1);
  recall_ack(1, rq, 0, 0, 0);
  expect_grant(2, 20, PROTO_OP_ACQUIRE, 0, 1);
}
END_TEST

/* ---- queueing ---- */

START_TEST(concurrent_requests_are_served_in_order) {
  uint32_t rq, i1, i2;
  const struct sent *s;

  make_owner(1, 0);
  read_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  acquire_req(3, 30, 0, 1, 0);
  read_req(4, 40, 0, 1, 0);
  ck_assert_uint_eq(info(0).queued, 2);
  no_more();
  recall_ack(1, rq, 0, 1, 0x11);
  expect_grant(2, 20, PROTO_OP_READ_DATA, 0, 1);
  /* Node 3's ACQUIRE starts: invalidate sharers 1 and 2. */
  i1 = expect_ask(1, PROTO_OP_INVALIDATE, 0, PROTO_MODE_INVALID);
  i2 = expect_ask(2, PROTO_OP_INVALIDATE, 0, PROTO_MODE_INVALID);
  no_more();
  inval_ack(2, i2, 0);
  inval_ack(1, i1, 0);
  s = expect_grant(3, 30, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(s->byte[0], 0x11);
  /* Node 4's READ recalls node 3. */
  rq = expect_ask(3, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  ck_assert_uint_eq(info(0).queued, 0);
  recall_ack(3, rq, 0, 1, 0x33);
  s = expect_grant(4, 40, PROTO_OP_READ_DATA, 0, 1);
  ck_assert_uint_eq(s->byte[0], 0x33);
  ck_assert(!info(0).busy);
  no_more();
}
END_TEST

/* ---- WRITE_DATA ---- */

START_TEST(write_back_stores_and_lowers) {
  make_owner(1, 0);
  ck_assert_int_eq(write_back(1, 0, PROTO_MODE_SHARED, 0x5A), 0);
  ck_assert_uint_eq(mem[0], 0x5A);
  ck_assert_uint_eq(mem[PROTO_PAGE_SIZE - 1], 0x5A);
  ck_assert_uint_eq(info(0).owner, SRV_NODE_NONE);
  ck_assert(srv_dir_is_sharer(dir, 0, 1));
  ck_assert_uint_eq(info(0).version, 2); /* write-back does not bump */

  make_owner(2, 1);
  ck_assert_int_eq(write_back(2, 1, PROTO_MODE_INVALID, 0x77), 0);
  ck_assert_uint_eq(mem[PROTO_PAGE_SIZE], 0x77);
  ck_assert(!srv_dir_is_sharer(dir, 1, 2));
  no_more();
}
END_TEST

START_TEST(write_back_from_non_owner_ignored) {
  read_req(1, 10, 0, 1, 0);
  expect_grant(1, 10, PROTO_OP_READ_DATA, 0, 1);
  ck_assert_int_eq(write_back(1, 0, PROTO_MODE_INVALID, 0x99), 0);
  ck_assert_uint_eq(mem[0], 0);
  ck_assert(srv_dir_is_sharer(dir, 0, 1));
}
END_TEST

START_TEST(write_back_bad_requests) {
  struct proto_run run;

  make_owner(1, 0);
  ck_assert_int_eq(write_back(1, NPAGES, PROTO_MODE_INVALID, 1), -EINVAL);
  memset(&run, 0, sizeof run);
  run.shmid = SHMID;
  run.count = 1;
  run.mode = PROTO_MODE_INVALID; /* no DATA */
  ck_assert_int_eq(srv_dir_write(dir, 1, &run), -EINVAL);
  ck_assert_uint_eq(info(0).owner, 1);
}
END_TEST

/* Mode EXCLUSIVE (background write-back): the data is stored, the owner keeps the page
 * with the same version and is asked again for it by the next requester. */
START_TEST(write_back_keeping_ownership) {
  const struct sent *s;
  uint32_t rq;

  make_owner(1, 0);
  ck_assert_int_eq(write_back(1, 0, PROTO_MODE_EXCLUSIVE, 0x3C), 0);
  ck_assert_uint_eq(mem[0], 0x3C);
  ck_assert_uint_eq(mem[PROTO_PAGE_SIZE - 1], 0x3C);
  ck_assert_uint_eq(info(0).owner, 1);
  ck_assert_uint_eq(info(0).version, 2);
  ck_assert(!srv_dir_is_sharer(dir, 0, 1));
  no_more();
  /* A later reader recalls it; the owner's ack without data leaves the written-back data. */
  read_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  recall_ack(1, rq, 0, 0, 0);
  s = expect_grant(2, 20, PROTO_OP_READ_DATA, 0, 1);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(s->byte[0], 0x3C);
  /* From a node that is not the owner it is ignored like any other write-back. */
  ck_assert_int_eq(write_back(3, 0, PROTO_MODE_EXCLUSIVE, 0x55), 0);
  ck_assert_uint_eq(mem[0], 0x3C);
}
END_TEST

/* A background write-back crossing a RECALL: stored, and the ack's data wins. */
START_TEST(recall_crossing_keeping_write_back) {
  const struct sent *s;
  uint32_t rq;

  make_owner(1, 0);
  acquire_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_INVALID);
  ck_assert_int_eq(write_back(1, 0, PROTO_MODE_EXCLUSIVE, 0x41), 0);
  ck_assert_uint_eq(info(0).owner, 1);
  no_more();
  recall_ack(1, rq, 0, 1, 0x42); /* written again after the write-back: the ack has data */
  s = expect_grant(2, 20, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(s->byte[0], 0x42);
}
END_TEST

START_TEST(recall_crossing_write_back) {
  const struct sent *s;
  uint32_t rq;

  make_owner(1, 0);
  acquire_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_INVALID);
  ck_assert_int_eq(write_back(1, 0, PROTO_MODE_INVALID, 0x21), 0); /* sent before the recall */
  no_more();
  recall_ack(1, rq, 0, 0, 0);                    /* already gave it back: no data */
  s = expect_grant(2, 20, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(s->byte[0], 0x21);
}
END_TEST

/* ---- errors ---- */

START_TEST(requests_out_of_range_fail) {
  ck_assert_int_eq(request(1, 1, PROTO_OP_READ_DATA, NPAGES, 1, 0), -EINVAL);
  ck_assert_int_eq(request(1, 1, PROTO_OP_READ_DATA, NPAGES - 1, 2, 0), -EINVAL);
  ck_assert_int_eq(request(1, 1, PROTO_OP_ACQUIRE, UINT32_MAX, 1, 0), -EINVAL);
  ck_assert_int_eq(request(1, 1, PROTO_OP_READ_DATA, 0, 0, 0), -EINVAL);
  ck_assert_int_eq(request(1, 1, PROTO_OP_WRITE_DATA, 0, 1, 0), -EINVAL);
  no_more();
}
END_TEST

START_TEST(request_mode_must_match_op) {
  struct proto_run run;

  memset(&run, 0, sizeof run);
  run.shmid = SHMID;
  run.count = 1;
  run.mode = PROTO_MODE_EXCLUSIVE;
  ck_assert_int_eq(srv_dir_request(dir, 1, 1, PROTO_OP_READ_DATA, &run, 1), -EINVAL);
  run.mode = PROTO_MODE_SHARED;
  ck_assert_int_eq(srv_dir_request(dir, 1, 1, PROTO_OP_ACQUIRE, &run, 1), -EINVAL);
  no_more();
}
END_TEST

/* ---- disconnects and detaches ---- */

START_TEST(disconnect_mid_recall_continues) {
  const struct sent *s;

  mem[0] = 0x01;
  make_owner(1, 0);
  read_req(2, 20, 0, 1, 0);
  expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  srv_dir_forget(dir, 1);
  s = expect_grant(2, 20, PROTO_OP_READ_DATA, 0, 1);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(s->byte[0], 0x01); /* the stored data stays */
  ck_assert(!srv_dir_is_sharer(dir, 0, 1));
  ck_assert_uint_eq(info(0).owner, SRV_NODE_NONE);
  ck_assert(!info(0).busy);
}
END_TEST

START_TEST(disconnect_mid_invalidate_continues) {
  uint32_t i1;

  read_req(1, 10, 0, 1, 0);
  read_req(2, 20, 0, 1, 0);
  nread = nlog;
  acquire_req(3, 30, 0, 1, 0);
  i1 = expect_ask(1, PROTO_OP_INVALIDATE, 0, PROTO_MODE_INVALID);
  expect_ask(2, PROTO_OP_INVALIDATE, 0, PROTO_MODE_INVALID);
  srv_dir_forget(dir, 2);
  no_more();
  inval_ack(1, i1, 0);
  expect_grant(3, 30, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert_uint_eq(info(0).owner, 3);
  ck_assert_uint_eq(info(0).nsharers, 0);
}
END_TEST

START_TEST(requester_disconnect_mid_recall) {
  uint32_t rq;

  make_owner(1, 0);
  acquire_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_INVALID);
  read_req(3, 30, 0, 1, 0);
  srv_dir_forget(dir, 2);
  no_more();
  ck_assert(info(0).busy); /* the recall is still out: node 1 is lowering its copy */
  recall_ack(1, rq, 0, 1, 0x44);
  /* Node 2 gets nothing; node 3's READ is served from the recalled data. */
  const struct sent *s = expect_grant(3, 30, PROTO_OP_READ_DATA, 0, 1);
  ck_assert_uint_eq(s->byte[0], 0x44);
  ck_assert_uint_eq(info(0).owner, SRV_NODE_NONE);
  ck_assert(!srv_dir_is_sharer(dir, 0, 1));
  ck_assert(!srv_dir_is_sharer(dir, 0, 2));
  no_more();
}
END_TEST

START_TEST(forget_drops_queued_requests) {
  uint32_t rq;

  make_owner(1, 0);
  read_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  read_req(3, 30, 0, 1, 0);
  acquire_req(3, 31, 0, 1, 0);
  read_req(4, 40, 0, 1, 0);
  ck_assert_uint_eq(info(0).queued, 3);
  srv_dir_forget(dir, 3);
  ck_assert_uint_eq(info(0).queued, 1);
  recall_ack(1, rq, 0, 0, 0);
  expect_grant(2, 20, PROTO_OP_READ_DATA, 0, 1);
  expect_grant(4, 40, PROTO_OP_READ_DATA, 0, 1);
  no_more();
  ck_assert_uint_eq(info(0).queued, 0);
}
END_TEST

START_TEST(forget_removes_every_role) {
  make_owner(1, 0);
  read_req(1, 10, 1, 3, 0);
  expect_grant(1, 10, PROTO_OP_READ_DATA, 1, 3);
  srv_dir_forget(dir, 1);
  ck_assert_uint_eq(info(0).owner, SRV_NODE_NONE);
  for (uint32_t p = 1; p < 4; p++)
    ck_assert(!srv_dir_is_sharer(dir, p, 1));
  /* Nothing wedged: another node gets page 0 at once. */
  acquire_req(2, 20, 0, 1, 0);
  expect_grant(2, 20, PROTO_OP_ACQUIRE, 0, 1);
  no_more();
}
END_TEST

START_TEST(late_ack_after_forget_is_ignored) {
  uint32_t rq;

  make_owner(1, 0);
  acquire_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_INVALID);
  srv_dir_forget(dir, 1);
  expect_grant(2, 20, PROTO_OP_ACQUIRE, 0, 1);
  recall_ack(1, rq, 0, 1, 0x66); /* arrives after the node left: must not touch the page */
  ck_assert_uint_eq(mem[0], 0);
  ck_assert_uint_eq(info(0).owner, 2);
  no_more();
}
END_TEST

/* A forgotten owner's copy may hold writes the server never got: the stored data gets a new
 * version, so that a copy at the old one (a host that kept its version across a reconnect)
 * is never taken for it (the model's mutant RESYNC_KEEPS_VERSION, verify/coherence.pml). */
START_TEST(forgotten_owner_copy_never_passes) {
  const struct sent *s;
  uint64_t v;

  mem[0] = 0x17;
  make_owner(1, 0);
  v = info(0).version;
  srv_dir_forget(dir, 1);
  ck_assert_uint_gt(info(0).version, v);
  read_req(5, 50, 0, 1, v); /* the same host, back as a new node, with its old version */
  s = expect_grant(5, 50, PROTO_OP_READ_DATA, 0, 1);
  ck_assert(s->data[0]);
  ck_assert_uint_eq(s->byte[0], 0x17);
  no_more();
}
END_TEST

/* ---- migratory pages ---- */

/* Nodes 1 and 2 take page 0 in turn, reading then writing it: 1 writes (0x11), 2 reads and
 * then upgrades. That upgrade (a sharer, one other copy, another node wrote last) makes the
 * page migratory; 2 owns it afterwards. */
static void make_migratory(void) {
  uint32_t rq;

  make_owner(1, 0);
  read_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  recall_ack(1, rq, 0, 1, 0x11);
  expect_grant(2, 20, PROTO_OP_READ_DATA, 0, 1);
  acquire_req(2, 21, 0, 1, info(0).version);
  rq = expect_ask(1, PROTO_OP_INVALIDATE, 0, PROTO_MODE_INVALID);
  inval_ack(1, rq, 0);
  expect_grant(2, 21, PROTO_OP_ACQUIRE, 0, 1);
  ck_assert_uint_eq(info(0).owner, 2);
  no_more();
}

/* The next message is a READ_DATA reply to node granting page alone EXCLUSIVE. */
static const struct sent *expect_migratory_grant(uint32_t node, uint32_t reqid, uint32_t page) {
  const struct sent *s = next_msg();
  ck_assert_uint_eq(s->node, node);
  ck_assert_uint_eq(s->op, PROTO_OP_READ_DATA);
  ck_assert(s->reply);
  ck_assert_int_eq(s->status, 0);
  ck_assert_uint_eq(s->reqid, reqid);
  ck_assert_uint_eq(s->first, page);
  ck_assert_uint_eq(s->count, 1);
  ck_assert_uint_eq(s->mode, PROTO_MODE_EXCLUSIVE);
  return s;
}

START_TEST(migratory_read_is_granted_exclusive) {
  const struct sent *g;
  uint64_t v;
  uint32_t rq;

  make_migratory();
  v = info(0).version;
  /* 1 reads: 2 must give the page up entirely (not keep a copy), with its data. */
  read_req(1, 30, 0, 4, 0);
  rq = expect_ask(2, PROTO_OP_RECALL, 0, PROTO_MODE_INVALID);
  recall_ack(2, rq, 0, 1, 0x22);
  g = expect_migratory_grant(1, 30, 0); /* no read-ahead with it */
  ck_assert(g->data[0]);
  ck_assert_uint_eq(g->byte[0], 0x22); /* 2's write */
  ck_assert_uint_gt(g->version[0], v);
  ck_assert_uint_eq(info(0).owner, 1);
  ck_assert_uint_eq(info(0).nsharers, 0);
  /* And back: 2 reads, 1 gives it up with its write. */
  read_req(2, 31, 0, 1, v);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_INVALID);
  recall_ack(1, rq, 0, 1, 0x33);
  g = expect_migratory_grant(2, 31, 0);
  ck_assert_uint_eq(g->byte[0], 0x33);
  ck_assert_uint_eq(mem[0], 0x33);
  ck_assert_uint_eq(info(0).owner, 2);
  no_more();
}
END_TEST

START_TEST(migratory_ends_when_page_comes_back_unchanged) {
  uint32_t rq;

  make_migratory();
  read_req(1, 30, 0, 1, 0);
  rq = expect_ask(2, PROTO_OP_RECALL, 0, PROTO_MODE_INVALID);
  recall_ack(2, rq, 0, 1, 0x22);
  expect_migratory_grant(1, 30, 0);
  /* 1 only read it: what comes back is what the server has. */
  read_req(2, 31, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_INVALID);
  recall_ack(1, rq, 0, 1, 0x22);
  expect_migratory_grant(2, 31, 0); /* decided when the request started */
  /* No longer migratory: the next read leaves the owner a copy. */
  read_req(1, 32, 0, 1, 0);
  rq = expect_ask(2, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  recall_ack(2, rq, 0, 1, 0x22);
  expect_grant(1, 32, PROTO_OP_READ_DATA, 0, 1);
  ck_assert_uint_eq(info(0).nsharers, 2);
  no_more();
}
END_TEST

START_TEST(migratory_read_needs_a_writable_attachment) {
  uint32_t rq;

  make_migratory();
  ck_assert_int_eq(request_w(1, 30, PROTO_OP_READ_DATA, 0, 1, 0, 0), 0);
  rq = expect_ask(2, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  recall_ack(2, rq, 0, 1, 0x22);
  expect_grant(1, 30, PROTO_OP_READ_DATA, 0, 1);
  ck_assert_uint_eq(info(0).owner, SRV_NODE_NONE);
  no_more();
}
END_TEST

/* One writer, one reader: the writer upgrades after the reader's read, but it also wrote
 * last, so the page is not migratory and the reader keeps getting SHARED copies. */
START_TEST(producer_consumer_is_not_migratory) {
  uint32_t rq;

  make_owner(1, 0);
  for (uint32_t i = 0; i < 3; i++) {
    read_req(2, 20 + i, 0, 1, 0);
    rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
    recall_ack(1, rq, 0, 1, (uint8_t)(0x40 + i));
    expect_grant(2, 20 + i, PROTO_OP_READ_DATA, 0, 1);
    acquire_req(1, 30 + i, 0, 1, info(0).version);
    rq = expect_ask(2, PROTO_OP_INVALIDATE, 0, PROTO_MODE_INVALID);
    inval_ack(2, rq, 0);
    expect_grant(1, 30 + i, PROTO_OP_ACQUIRE, 0, 1);
  }
  no_more();
}
END_TEST

/* An upgrade while two other nodes hold copies: widely shared, not migratory. */
START_TEST(upgrade_among_many_sharers_is_not_migratory) {
  uint32_t rq, a, b;

  make_owner(1, 0);
  read_req(2, 20, 0, 1, 0);
  rq = expect_ask(1, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  recall_ack(1, rq, 0, 1, 0x11);
  expect_grant(2, 20, PROTO_OP_READ_DATA, 0, 1);
  read_req(3, 30, 0, 1, 0);
  expect_grant(3, 30, PROTO_OP_READ_DATA, 0, 1);
  acquire_req(2, 21, 0, 1, info(0).version);
  a = expect_ask(1, PROTO_OP_INVALIDATE, 0, PROTO_MODE_INVALID);
  b = expect_ask(3, PROTO_OP_INVALIDATE, 0, PROTO_MODE_INVALID);
  inval_ack(1, a, 0);
  inval_ack(3, b, 0);
  expect_grant(2, 21, PROTO_OP_ACQUIRE, 0, 1);
  read_req(1, 40, 0, 1, 0);
  rq = expect_ask(2, PROTO_OP_RECALL, 0, PROTO_MODE_SHARED);
  recall_ack(2, rq, 0, 1, 0x22);
  expect_grant(1, 40, PROTO_OP_READ_DATA, 0, 1);
  no_more();
}
END_TEST

START_TEST(free_with_work_in_flight) {
  make_owner(1, 0);
  read_req(2, 20, 0, 1, 0);
  read_req(3, 30, 0, 1, 0);
  /* teardown frees the transaction and the queue: LeakSanitizer checks it. */
}
END_TEST

static Suite *directory_suite(void) {
  Suite *s = suite_create("directory");
  TCase *tc = tcase_create("directory");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, read_idle_page_grants_data);
  tcase_add_test(tc, read_same_version_omits_data);
  tcase_add_test(tc, pristine_page_grants_carry_no_data);
  tcase_add_test(tc, read_ahead_grants_idle_pages);
  tcase_add_test(tc, read_ahead_stops_at_owned_page);
  tcase_add_test(tc, read_ahead_stops_at_busy_page);
  tcase_add_test(tc, read_mandatory_first_page_waits_for_recall);
  tcase_add_test(tc, read_by_owner_demotes_it);
  tcase_add_test(tc, acquire_idle_page_bumps_version);
  tcase_add_test(tc, acquire_version_equal_omits_data);
  tcase_add_test(tc, acquire_by_sole_sharer_no_data);
  tcase_add_test(tc, acquire_by_owner_is_immediate);
  tcase_add_test(tc, acquire_invalidates_sharers);
  tcase_add_test(tc, acquire_recalls_owner_to_invalid);
  tcase_add_test(tc, acquire_read_ahead_stops_at_shared_page);
  tcase_add_test(tc, stale_ack_is_ignored);
  tcase_add_test(tc, concurrent_requests_are_served_in_order);
  tcase_add_test(tc, write_back_stores_and_lowers);
  tcase_add_test(tc, write_back_from_non_owner_ignored);
  tcase_add_test(tc, write_back_bad_requests);
  tcase_add_test(tc, recall_crossing_write_back);
  tcase_add_test(tc, write_back_keeping_ownership);
  tcase_add_test(tc, recall_crossing_keeping_write_back);
  tcase_add_test(tc, requests_out_of_range_fail);
  tcase_add_test(tc, request_mode_must_match_op);
  tcase_add_test(tc, disconnect_mid_recall_continues);
  tcase_add_test(tc, disconnect_mid_invalidate_continues);
  tcase_add_test(tc, requester_disconnect_mid_recall);
  tcase_add_test(tc, forget_drops_queued_requests);
  tcase_add_test(tc, forget_removes_every_role);
  tcase_add_test(tc, late_ack_after_forget_is_ignored);
  tcase_add_test(tc, forgotten_owner_copy_never_passes);
  tcase_add_test(tc, free_with_work_in_flight);
  tcase_add_test(tc, migratory_read_is_granted_exclusive);
  tcase_add_test(tc, migratory_ends_when_page_comes_back_unchanged);
  tcase_add_test(tc, migratory_read_needs_a_writable_attachment);
  tcase_add_test(tc, producer_consumer_is_not_migratory);
  tcase_add_test(tc, upgrade_among_many_sharers_is_not_migratory);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(directory_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
