/* test_seginfo.c - SEG_INFO (dshm stat's hosts, pages and processes) against a real
 * dshm-server, with raw clients as the hosts: the page states it lists must be the ones the
 * grants the hosts received imply, page by page, across several replies; the hosts the ones
 * attached, with their counts; a PROCS question goes to the host's own connection and its
 * answer back unchanged; a host gone gives ENOTCONN; rights are those of IPC_STAT. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"
#include "rawclient.h"

#define NPAGES 600u   /* more runs than one reply holds (PROTO_SEGINFO_MAX_ENTRIES) */
#define NONE UINT32_MAX /* check_pages: no page is busy */

static struct h_server srv;
static const struct proto_cred root = {1, 0, 0};

/* Sends m and reads its reply into *r; the reply's status as -errno (0: success). */
static int call(int fd, struct proto_msg *m, struct proto_msg *r) {
  ck_assert_int_eq(rc_send_msg(fd, m), 0);
  ck_assert_msg(rc_reply(fd, m->h.reqid, r) == 0, "no reply to %s", proto_op_name(m->h.opcode));
  return r->h.status ? -proto_err_to_errno((int)r->h.status) : 0;
}

/* A host: HELLO with this name, NODE with an id made of one byte; its node tag. */
static int host(const char *name, uint8_t idbyte, uint64_t *tag) {
  int fd = rc_connect(&srv);
  struct proto_msg m = rc_msg(PROTO_OP_HELLO, 1), r;

  m.u.hello = (struct proto_hello){.pid = (uint32_t)getpid(), .uid = 0, .gid = 0};
  m.u.hello.name_len = (uint32_t)strlen(name);
  memcpy(m.u.hello.name, name, m.u.hello.name_len);
  ck_assert_int_eq(call(fd, &m, &r), 0);
  m = rc_msg(PROTO_OP_NODE, 2);
  memset(m.u.node.id, 0x11, PROTO_NODE_ID);
  m.u.node.id[0] = idbyte; /* the halves differ in one byte: a tag of its own, never 0 */
  ck_assert_int_eq(call(fd, &m, &r), 0);
  *tag = proto_node_tag(m.u.node.id);
  return fd;
}

static int32_t create(int fd, struct proto_cred c, uint32_t npages, int mode) {
  struct proto_msg m = rc_msg(PROTO_OP_CREATE_SEGMENT, 3), r;

  m.u.create = (struct proto_create){c, IPC_PRIVATE, (uint64_t)npages * PROTO_PAGE_SIZE,
                                     IPC_CREAT | mode, 0};
  ck_assert_int_eq(call(fd, &m, &r), 0);
  return r.u.create_reply.shmid;
}

static void attach(int fd, int32_t id, int flg) {
  struct proto_msg m = rc_msg(PROTO_OP_ATTACH_SEGMENT, 4), r;

  m.u.attach = (struct proto_attach){root, id, flg};
  ck_assert_int_eq(call(fd, &m, &r), 0);
}

/* READ_DATA or ACQUIRE of count pages from first, holding nothing; the grant's run. */
static struct proto_run ask(int fd, uint8_t op, int32_t id, uint32_t first, uint32_t count) {
  static uint32_t reqid = 100;
  struct proto_msg m = rc_msg(op, ++reqid), r;

  m.u.run.shmid = id;
  m.u.run.first = first;
  m.u.run.count = count;
  m.u.run.mode = op == PROTO_OP_ACQUIRE ? PROTO_MODE_EXCLUSIVE : PROTO_MODE_SHARED;
  ck_assert_int_eq(call(fd, &m, &r), 0);
  ck_assert_uint_eq(r.u.run.first, first);
  return r.u.run;
}

static int seg_info(int fd, int32_t id, uint32_t what, uint32_t first, uint64_t tag,
                    struct proto_msg *r) {
  static uint32_t reqid = 5000;
  struct proto_msg m = rc_msg(PROTO_OP_SEG_INFO, ++reqid);

  m.u.seginfo = (struct proto_seginfo){root, id, what, first, tag};
  return call(fd, &m, r);
}

/* What a page should be: mode and holders (bit 0 host A, bit 1 host B). */
struct want {
  uint8_t mode;
  uint8_t who;
};

/* Every page of id as SEG_INFO lists it (asked from first 0 to the last reply), checked
 * against want; returns how many replies it took. */
static int check_pages(int fd, int32_t id, const struct want *want, uint32_t npages,
                       const uint32_t node[2], uint32_t busy_page) {
  struct proto_msg r;
  uint32_t first = 0, seen = 0;
  int replies = 0;

  do {
    ck_assert_int_eq(seg_info(fd, id, PROTO_SEGINFO_PAGES, first, 0, &r), 0);
    replies++;
    ck_assert_uint_eq(r.u.seginfo_reply.total, npages);
    ck_assert_uint_le(r.u.seginfo_reply.n, PROTO_SEGINFO_MAX_ENTRIES);
    ck_assert_uint_gt(r.u.seginfo_reply.next, first);
    for (uint32_t i = 0; i < r.u.seginfo_reply.n; i++) {
      struct proto_segrun run;
      uint8_t who = 0;
      proto_segrun_get(&r.u.seginfo_reply, i, &run);
      ck_assert_uint_eq(run.first, seen); /* runs follow each other, nothing left out */
      for (uint32_t k = 0; k < run.nholders && k < PROTO_SEGINFO_HOLDERS; k++)
        who |= run.holder[k] == node[0] ? 1 : run.holder[k] == node[1] ? 2 : 4;
      for (uint32_t p = run.first; p < run.first + run.count; p++) {
        ck_assert_msg(run.mode == want[p].mode && who == want[p].who,
                      "page %u: mode %u holders %#x, want mode %u holders %#x", p, run.mode,
                      who, want[p].mode, want[p].who);
        ck_assert_int_eq(!!(run.flags & PROTO_SEGRUN_BUSY), p == busy_page);
      }
      /* Adjacent runs differ: a run is as long as it can be. */
      if (i + 1 < r.u.seginfo_reply.n) {
        uint32_t q = run.first + run.count;
        ck_assert(want[q].mode != want[q - 1].mode || want[q].who != want[q - 1].who ||
                  q == busy_page || q - 1 == busy_page);
      }
      seen += run.count;
    }
    ck_assert_uint_eq(r.u.seginfo_reply.next, seen);
    first = r.u.seginfo_reply.next;
  } while (first < npages);
  ck_assert_uint_eq(seen, npages);
  return replies;
}

START_TEST(test_pages_hosts_procs) {
  uint64_t ta, tb, tc;
  int a = host("host-a", 1, &ta), b = host("host-b", 2, &tb), c = host("asker", 3, &tc);
  int32_t id = create(a, root, NPAGES, 0644), small;
  struct want want[NPAGES] = {{0}};
  uint32_t node[2] = {PROTO_NO_NODE, PROTO_NO_NODE};
  struct proto_msg r, q;
  struct proto_run g;
  uint64_t v0 = 0; /* the version of page 0 granted to A */

  attach(a, id, 0);
  attach(b, id, SHM_RDONLY);
  attach(b, id, 0);
  /* A takes the even pages, B reads the odd ones below 300, A reads page 1 too. */
  for (uint32_t p = 0; p < NPAGES; p += 2) {
    g = ask(a, PROTO_OP_ACQUIRE, id, p, 1);
    ck_assert_uint_eq(g.count, 1);
    if (p == 0)
      v0 = g.page[0].version;
    want[p] = (struct want){PROTO_MODE_EXCLUSIVE, 1};
  }
  for (uint32_t p = 1; p < 300; p += 2) {
    g = ask(b, PROTO_OP_READ_DATA, id, p, 1);
    want[p] = (struct want){PROTO_MODE_SHARED, 2};
  }
  g = ask(a, PROTO_OP_READ_DATA, id, 1, 1);
  want[1] = (struct want){PROTO_MODE_SHARED, 3};

  /* The hosts: A and B, not the asker (nothing attached). */
  ck_assert_int_eq(seg_info(c, id, PROTO_SEGINFO_HOSTS, 0, 0, &r), 0);
  ck_assert_uint_eq(r.u.seginfo_reply.total, 2);
  ck_assert_uint_eq(r.u.seginfo_reply.n, 2);
  ck_assert_uint_eq(r.u.seginfo_reply.next, 2);
  for (uint32_t i = 0; i < 2; i++) {
    struct proto_seghost h;
    proto_seghost_get(&r.u.seginfo_reply, i, &h);
    if (h.tag == ta) {
      ck_assert_str_eq(h.name, "host-a");
      ck_assert_uint_eq(h.nrw, 1);
      ck_assert_uint_eq(h.nro, 0);
      node[0] = h.node;
    } else {
      ck_assert_uint_eq(h.tag, tb);
      ck_assert_str_eq(h.name, "host-b");
      ck_assert_uint_eq(h.nrw, 1);
      ck_assert_uint_eq(h.nro, 1);
      node[1] = h.node;
    }
  }
  ck_assert(node[0] != PROTO_NO_NODE && node[1] != PROTO_NO_NODE);
  /* From the second host on. */
  ck_assert_int_eq(seg_info(c, id, PROTO_SEGINFO_HOSTS, 1, 0, &r), 0);
  ck_assert_uint_eq(r.u.seginfo_reply.n, 1);
  ck_assert_uint_eq(r.u.seginfo_reply.next, 2);

  /* 600 runs: three replies. */
  ck_assert_int_eq(check_pages(c, id, want, NPAGES, node, NONE), 3);

  /* B asks for page 0, A has not answered the RECALL yet: page 0 is busy, still A's. */
  q = rc_msg(PROTO_OP_ACQUIRE, 900);
  q.u.run = (struct proto_run){.shmid = id, .first = 0, .count = 1,
                               .mode = PROTO_MODE_EXCLUSIVE};
  ck_assert_int_eq(rc_send_msg(b, &q), 0);
  ck_assert_int_eq(rc_next(a, &r), 0);
  ck_assert_uint_eq(r.h.opcode, PROTO_OP_RECALL);
  {
    struct proto_msg ack = rc_msg(PROTO_OP_RECALL_ACK, r.h.reqid);
    static uint8_t zero[PROTO_PAGE_SIZE];
    /* rc_next's buffer is reused: the request is answered before anything else is read. */
    ck_assert_int_eq(check_pages(c, id, want, NPAGES, node, 0), 3);
    ack.u.run = (struct proto_run){.shmid = id, .first = 0, .count = 1,
                                   .mode = PROTO_MODE_INVALID};
    ack.u.run.page[0] = (struct proto_page){v0, PROTO_PAGE_DATA, zero};
    ck_assert_int_eq(rc_send_msg(a, &ack), 0);
  }
  ck_assert_int_eq(rc_reply(b, 900, &r), 0);
  ck_assert_int_eq(r.h.status, 0);
  want[0] = (struct want){PROTO_MODE_EXCLUSIVE, 2};
  ck_assert_int_eq(check_pages(c, id, want, NPAGES, node, NONE), 3);

  /* A run of several pages granted at once is one run; the rest one more. */
  small = create(a, root, 8, 0644);
  attach(a, small, 0);
  g = ask(a, PROTO_OP_ACQUIRE, small, 0, 4);
  ck_assert_uint_eq(g.count, 4);
  {
    struct want w8[8];
    for (uint32_t p = 0; p < 8; p++)
      w8[p] = (struct want){p < 4 ? PROTO_MODE_EXCLUSIVE : PROTO_MODE_INVALID, p < 4 ? 1 : 0};
    ck_assert_int_eq(seg_info(c, small, PROTO_SEGINFO_PAGES, 0, 0, &r), 0);
    ck_assert_uint_eq(r.u.seginfo_reply.n, 2);
    ck_assert_int_eq(check_pages(c, small, w8, 8, node, NONE), 1);
  }

  /* PROCS: the question goes to A's connection under the server's own reqid; A's answer
   * comes back to the asker as it was. */
  q = rc_msg(PROTO_OP_SEG_INFO, 901);
  q.u.seginfo = (struct proto_seginfo){root, id, PROTO_SEGINFO_PROCS, 0, ta};
  ck_assert_int_eq(rc_send_msg(c, &q), 0);
  ck_assert_int_eq(rc_next(a, &r), 0);
  ck_assert_uint_eq(r.h.opcode, PROTO_OP_SEG_INFO);
  ck_assert_uint_eq(r.h.flags & PROTO_F_REPLY, 0);
  ck_assert_uint_eq(r.u.seginfo.what, PROTO_SEGINFO_PROCS);
  ck_assert_int_eq(r.u.seginfo.shmid, id);
  {
    struct proto_msg ans = rc_msg(PROTO_OP_SEG_INFO, r.h.reqid);
    uint8_t e[2 * PROTO_SEGPROC_SIZE];
    proto_segproc_put(e, &(struct proto_segproc){4242, 1, 0});
    proto_segproc_put(e + PROTO_SEGPROC_SIZE, &(struct proto_segproc){4343, 0, 2});
    ans.h.flags = PROTO_F_REPLY;
    ans.u.seginfo_reply = (struct proto_seginfo_reply){PROTO_SEGINFO_PROCS, 2, 2, 2, e};
    ck_assert_int_eq(rc_send_msg(a, &ans), 0);
  }
  ck_assert_int_eq(rc_reply(c, 901, &r), 0);
  ck_assert_int_eq(r.h.status, 0);
  ck_assert_uint_eq(r.u.seginfo_reply.n, 2);
  {
    struct proto_segproc p;
    proto_segproc_get(&r.u.seginfo_reply, 1, &p);
    ck_assert_uint_eq(p.pid, 4343);
    ck_assert_uint_eq(p.nro, 2);
  }
  /* A host nobody knows; a host that goes before it answers. */
  ck_assert_int_eq(seg_info(c, id, PROTO_SEGINFO_PROCS, 0, 0x1234, &r), -ENOTCONN);
  q = rc_msg(PROTO_OP_SEG_INFO, 902);
  q.u.seginfo = (struct proto_seginfo){root, id, PROTO_SEGINFO_PROCS, 0, tb};
  ck_assert_int_eq(rc_send_msg(c, &q), 0);
  ck_assert_int_eq(rc_next(b, &r), 0);
  ck_assert_uint_eq(r.h.opcode, PROTO_OP_SEG_INFO);
  close(b);
  ck_assert_int_eq(rc_reply(c, 902, &r), 0);
  ck_assert_int_eq(-proto_err_to_errno((int)r.h.status), -ENOTCONN);
  /* B's pages went with it. */
  for (uint32_t p = 0; p < NPAGES; p++) {
    want[p].who &= 1;
    if (want[p].who == 0)
      want[p].mode = PROTO_MODE_INVALID;
  }
  ck_assert_int_eq(check_pages(c, id, want, NPAGES, node, NONE), 3);
  close(a);
  close(c);
}
END_TEST

START_TEST(test_refusals) {
  uint64_t ta, tc;
  int a = host("host-a", 1, &ta), c = host("asker", 3, &tc);
  struct proto_cred owner = {1, 1000, 100}, other = {1, 2000, 200};
  int32_t id = create(a, owner, 4, 0600);
  struct proto_msg m = rc_msg(PROTO_OP_SEG_INFO, 7), r;

  /* Without read permission: EACCES, as IPC_STAT; for every kind, PROCS before relaying. */
  for (uint32_t what = PROTO_SEGINFO_HOSTS; what <= PROTO_SEGINFO_PROCS; what++) {
    m.u.seginfo = (struct proto_seginfo){other, id, what, 0, ta};
    ck_assert_int_eq(call(c, &m, &r), -EACCES);
    m.u.seginfo.cred = owner;
    if (what != PROTO_SEGINFO_PROCS)
      ck_assert_int_eq(call(c, &m, &r), 0);
  }
  /* A segment of more pages than one reply looks at: two replies, the run cut between. */
  {
    int32_t big = create(a, owner, (1u << 20) + 5, 0600);
    m.u.seginfo = (struct proto_seginfo){owner, big, PROTO_SEGINFO_PAGES, 0, 0};
    ck_assert_int_eq(call(c, &m, &r), 0);
    ck_assert_uint_eq(r.u.seginfo_reply.total, (1u << 20) + 5);
    ck_assert_uint_eq(r.u.seginfo_reply.next, 1u << 20);
    ck_assert_uint_eq(r.u.seginfo_reply.n, 1);
    m.u.seginfo.first = 1u << 20;
    ck_assert_int_eq(call(c, &m, &r), 0);
    ck_assert_uint_eq(r.u.seginfo_reply.next, (1u << 20) + 5);
    ck_assert_uint_eq(r.u.seginfo_reply.n, 1);
  }
  /* No such segment; pages past the end. */
  m.u.seginfo = (struct proto_seginfo){owner, id + 1000, PROTO_SEGINFO_HOSTS, 0, 0};
  ck_assert_int_eq(call(c, &m, &r), -EINVAL);
  m.u.seginfo = (struct proto_seginfo){owner, id, PROTO_SEGINFO_PAGES, 5, 0};
  ck_assert_int_eq(call(c, &m, &r), -EINVAL);
  m.u.seginfo.first = 4; /* the end itself: nothing left */
  ck_assert_int_eq(call(c, &m, &r), 0);
  ck_assert_uint_eq(r.u.seginfo_reply.n, 0);
  ck_assert_uint_eq(r.u.seginfo_reply.next, 4);
  /* An unknown kind does not even decode: the server closes the connection. */
  {
    uint8_t buf[PROTO_HDR_SIZE + 64];
    m.u.seginfo = (struct proto_seginfo){owner, id, PROTO_SEGINFO_HOSTS, 0, 0};
    size_t n = rc_encode(buf, sizeof buf, &m);
    proto_put_u32(buf + PROTO_HDR_SIZE + 16, 9); /* what */
    ck_assert_int_eq(rc_send(c, buf, n), 0);
    ck_assert_int_eq(rc_wait_closed(c), 0);
  }
  close(a);
  close(c);
}
END_TEST

/* After a restart with --data-dir, a page its old owner has not come back for is a ghost's:
 * EXCLUSIVE, flagged GHOST, no holder named; once the grace period ends it is nobody's. */
START_TEST(test_ghost_after_restart) {
  char dir[] = "/tmp/dshm-seginfo-XXXXXX", *extra[] = {"--data-dir", dir, "--grace-ms", "60000",
                                                       NULL};
  uint64_t ta, tc;
  int a, c, port;
  int32_t id;
  struct proto_msg r;
  struct proto_segrun run;

  h_server_stop(&srv);
  ck_assert_ptr_nonnull(mkdtemp(dir));
  h_server_start_args(&srv, 0, extra);
  a = host("host-a", 1, &ta);
  id = create(a, root, 4, 0644);
  attach(a, id, 0);
  ask(a, PROTO_OP_ACQUIRE, id, 1, 1);
  port = srv.port;
  h_server_kill(&srv); /* a crash: host A never wrote page 1 back */
  close(a);
  h_server_start_args(&srv, port, extra);
  c = host("asker", 3, &tc);
  ck_assert_int_eq(seg_info(c, id, PROTO_SEGINFO_PAGES, 0, 0, &r), 0);
  ck_assert_uint_eq(r.u.seginfo_reply.n, 3);
  proto_segrun_get(&r.u.seginfo_reply, 1, &run);
  ck_assert_uint_eq(run.first, 1);
  ck_assert_uint_eq(run.count, 1);
  ck_assert_uint_eq(run.mode, PROTO_MODE_EXCLUSIVE);
  ck_assert_uint_eq(run.flags & PROTO_SEGRUN_GHOST, PROTO_SEGRUN_GHOST);
  ck_assert_uint_eq(run.nholders, 0);
  proto_segrun_get(&r.u.seginfo_reply, 0, &run);
  ck_assert_uint_eq(run.mode, PROTO_MODE_INVALID);
  ck_assert_uint_eq(run.flags, 0);
  /* No host has it attached since the restart. */
  ck_assert_int_eq(seg_info(c, id, PROTO_SEGINFO_HOSTS, 0, 0, &r), 0);
  ck_assert_uint_eq(r.u.seginfo_reply.total, 0);
  close(c);
  h_server_stop(&srv);
  {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
  }
  h_server_start(&srv); /* for the teardown */
}
END_TEST

static void setup(void) {
  h_server_start(&srv);
}

static void teardown(void) {
  h_server_stop(&srv);
}

static Suite *seginfo_suite(void) {
  Suite *s = suite_create("seginfo");
  TCase *tc = tcase_create("seginfo");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_pages_hosts_procs);
  tcase_add_test(tc, test_refusals);
  tcase_add_test(tc, test_ghost_after_restart);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(seginfo_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
