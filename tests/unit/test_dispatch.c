/* test_dispatch.c - requests through real server connections without sockets (the fuzzer's
 * seam: srv__conn_new_detached, srv__conn_feed): framing, dispatch, whose pid and ids a
 * handler uses, and what the segment table and the connection's records hold afterwards. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>
#include <uv.h>

#include "conn.h"
#include "server.h"

static uv_loop_t loop;
static struct srv_config cfg;
static struct srv_server srv;

static const struct proto_cred parent = {.pid = 4242, .uid = 1000, .gid = 100};

static void setup(void) {
  char *args[] = {"test_dispatch", NULL};

  ck_assert_int_eq(srv_config_parse(&cfg, 1, args, stdout, stderr), 0);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(srv_server_init(&srv, &loop, &cfg), 0);
}

/* Closes what is still open and frees the server: LeakSanitizer checks the teardown. */
static void teardown(void) {
  for (uint32_t i = 0; i < cfg.max_conns; i++)
    if (srv.conns[i] != NULL)
      srv__conn_close(srv.conns[i], "test: end");
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(srv_server_fini(&srv), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static struct proto_msg msg(uint8_t op, uint32_t reqid) {
  struct proto_msg m;

  memset(&m, 0, sizeof m);
  m.h.opcode = op;
  m.h.reqid = reqid;
  return m;
}

/* Encodes m and hands it to c as if read from its socket. */
static void feed(struct srv_conn *c, struct proto_msg m) {
  static uint8_t buf[PROTO_HDR_SIZE + PROTO_SMALL_MAX];
  ssize_t n = proto_encode(buf, sizeof buf, &m);

  ck_assert_int_gt(n, 0);
  srv__conn_feed(c, buf, (size_t)n);
}

/* A connection past HELLO. With kpid != 0 it is a peer whose ids the kernel gave (pid
 * kpid, uid 2000, gid 300): its claimed uid and gid are ignored, its claimed pid is kept. */
static struct srv_conn *ready_conn(uint32_t kpid) {
  struct srv_conn *c = srv__conn_new_detached(&srv);
  struct proto_msg m = msg(PROTO_OP_HELLO, 1);

  ck_assert_ptr_nonnull(c);
  if (kpid != 0) {
    c->kernel_ids = 1;
    c->peer.pid = kpid;
    c->peer.uid = 2000;
    c->peer.gid = 300;
  }
  m.u.hello = (struct proto_hello){.pid = parent.pid, .uid = parent.uid, .gid = parent.gid};
  feed(c, m);
  ck_assert_int_eq(c->state, SRV_CONN_READY);
  return c;
}

/* shmget(IPC_PRIVATE) on c; the new segment's id. */
static int32_t create(struct srv_conn *c, int32_t mode) {
  struct proto_msg m = msg(PROTO_OP_CREATE_SEGMENT, 2);
  uint32_t before = srv.segs.in_use;

  m.u.create = (struct proto_create){.cred = parent, .key = IPC_PRIVATE,
                                     .size = 2 * PROTO_PAGE_SIZE, .shmflg = mode};
  feed(c, m);
  ck_assert_uint_eq(srv.segs.in_use, before + 1);
  for (uint32_t i = srv.segs.nslots; i > 0; i--)
    if (srv.segs.slot[i - 1] != NULL)
      return srv.segs.slot[i - 1]->shm_id; /* slots fill from 0: the highest is the newest */
  ck_abort();
  return -1;
}

static void segop(struct srv_conn *c, uint8_t op, int32_t shmid) {
  struct proto_msg m = msg(op, 3);

  if (op == PROTO_OP_ATTACH_SEGMENT)
    m.u.attach = (struct proto_attach){.cred = parent, .shmid = shmid, .shmflg = 0};
  else
    m.u.segref = (struct proto_segref){.cred = parent, .shmid = shmid};
  feed(c, m);
}

static void inherit(struct srv_conn *c, int32_t shmid, uint32_t nrw, uint32_t nro) {
  struct proto_msg m = msg(PROTO_OP_INHERIT, 4);

  m.u.inherit = (struct proto_inherit){.cred = parent, .shmid = shmid, .nrw = nrw,
                                       .nro = nro, .child = 5151};
  feed(c, m);
}

/* A connection that is still open and was not asked to close. */
static int is_open(const struct srv_conn *c) {
  return srv.conns[c->node] == c && c->state == SRV_CONN_READY;
}

START_TEST(inherit_counts_on_the_connection) {
  struct srv_conn *c = ready_conn(0);
  int32_t id = create(c, 0600);
  struct srv_seg *s = srv_seg_lookup(&srv.segs, id);
  struct srv_att *at;
  time_t before;

  segop(c, PROTO_OP_ATTACH_SEGMENT, id);
  ck_assert_uint_eq(s->shm_nattch, 1);
  s->shm_atime = 0;
  s->shm_lpid = 0;
  before = time(NULL);
  inherit(c, id, 2, 1);
  ck_assert(is_open(c));
  ck_assert_uint_eq(s->shm_nattch, 4);
  ck_assert_uint_eq(s->shm_lpid, parent.pid); /* the parent's, not the child's (5151) */
  ck_assert_int_ge(s->shm_atime, before);
  at = srv_att_find(&c->atts, id);
  ck_assert_ptr_nonnull(at);
  ck_assert_uint_eq(at->nrw, 3);
  ck_assert_uint_eq(at->nro, 1);
  /* The disconnect detaches them all. */
  srv__conn_close(c, "test: disconnect");
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_uint_eq(s->shm_nattch, 0);
}
END_TEST

/* A kernel-verified peer (a host agent forwarding its processes' calls): the kernel's uid
 * and gid, the claimed pid (informational: shm_cpid and shm_lpid name the real caller). */
START_TEST(kernel_ids_keep_the_claimed_pid) {
  struct srv_conn *c = ready_conn(777);
  int32_t id = create(c, 0600);
  struct srv_seg *s = srv_seg_lookup(&srv.segs, id);

  ck_assert_uint_eq(c->peer.pid, parent.pid);
  ck_assert_uint_eq(s->shm_perm.cuid, 2000); /* not the claimed 1000 */
  ck_assert_uint_eq(s->shm_perm.cgid, 300);
  ck_assert_uint_eq(s->shm_cpid, parent.pid);
  segop(c, PROTO_OP_ATTACH_SEGMENT, id);
  s->shm_lpid = 0;
  inherit(c, id, 1, 0);
  ck_assert(is_open(c));
  ck_assert_uint_eq(s->shm_nattch, 2);
  ck_assert_uint_eq(s->shm_lpid, parent.pid); /* the claimed 4242, not the kernel's 777 */
}
END_TEST

START_TEST(inherit_without_attachment_fails) {
  struct srv_conn *a = ready_conn(0), *b = ready_conn(0);
  int32_t id = create(a, 0666);
  struct srv_seg *s = srv_seg_lookup(&srv.segs, id);

  inherit(a, id, 1, 0);   /* created, not attached */
  segop(a, PROTO_OP_ATTACH_SEGMENT, id);
  s->shm_lpid = 0;
  inherit(b, id, 1, 0);   /* attached by another connection only */
  inherit(b, id + 1, 1, 0);
  ck_assert_uint_eq(s->shm_nattch, 1);
  ck_assert_uint_eq(s->shm_lpid, 0);
  ck_assert_uint_eq(b->atts.n, 0);
  ck_assert_uint_eq(srv_att_find(&a->atts, id)->nrw, 1);
  /* An error reply: the connections stay. */
  ck_assert(is_open(a));
  ck_assert(is_open(b));
}
END_TEST

/* shmget, shmat, IPC_RMID, fork: the child's attachments keep the segment until the last
 * one is gone. */
START_TEST(inherit_on_a_removed_segment) {
  struct srv_conn *c = ready_conn(0);
  int32_t id = create(c, 0600);
  struct srv_seg *s = srv_seg_lookup(&srv.segs, id);

  segop(c, PROTO_OP_ATTACH_SEGMENT, id);
  segop(c, PROTO_OP_REMOVE_SEGMENT, id);
  ck_assert_uint_ne(s->shm_perm.mode & SRV_SHM_DEST, 0);
  inherit(c, id, 1, 1);
  ck_assert(is_open(c));
  ck_assert_uint_eq(s->shm_nattch, 3);
  segop(c, PROTO_OP_DETACH_SEGMENT, id); /* the parent's shmdt */
  segop(c, PROTO_OP_DETACH_SEGMENT, id);
  ck_assert_ptr_eq(srv_seg_lookup(&srv.segs, id), s);
  ck_assert_uint_eq(s->shm_nattch, 1);
  segop(c, PROTO_OP_DETACH_SEGMENT, id);
  ck_assert_ptr_null(srv_seg_lookup(&srv.segs, id));
  ck_assert_uint_eq(c->atts.n, 0);
  ck_assert_uint_eq(srv.segs.in_use, 0);
}
END_TEST

static Suite *dispatch_suite(void) {
  Suite *s = suite_create("dispatch");
  TCase *tc = tcase_create("inherit");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, inherit_counts_on_the_connection);
  tcase_add_test(tc, kernel_ids_keep_the_claimed_pid);
  tcase_add_test(tc, inherit_without_attachment_fails);
  tcase_add_test(tc, inherit_on_a_removed_segment);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(dispatch_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
