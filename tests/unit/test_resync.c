/* test_resync.c - the host agent's resync after a reconnect (agent/hostseg.c,
 * agent_seg_resync) against a server played on a socketpair: an owed page whose write-back
 * the server did not take stays owed, at its version, for the next resync. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "hostseg.h"
#include "proto.h"

#define SHMID 7

static struct agent_cfg cfg;
static struct agent ag;

/* An agent with one segment of two pages whose page 1 is owed at version 5 (given up from
 * EXCLUSIVE since its grant: the server may not have stored it), no local process. */
static struct hseg *owing_agent(void) {
  struct hseg *s;

  memset(&cfg, 0, sizeof cfg);
  memset(&ag, 0, sizeof ag);
  ag.cfg = &cfg;
  ag.max_run = 1;
  TAILQ_INIT(&ag.parked);
  TAILQ_INIT(&ag.procs);
  TAILQ_INIT(&ag.segs);
  TAILQ_INIT(&ag.revokes);
  TAILQ_INIT(&ag.exitwatches);
  ck_assert_int_eq(agent_seg_get(&ag, SHMID, 2 * PROTO_PAGE_SIZE, &s), 0);
  s->pg[1].owed = 1;
  s->pg[1].version = 5;
  memset(s->data + PROTO_PAGE_SIZE, 0xab, PROTO_PAGE_SIZE);
  return s;
}

/* The server's answers, queued before the call: the agent's reqids count from 1 (REATTACH,
 * then the WRITE_DATA). REATTACH is answered with the segment, the write-back with err. */
static void answer_reattach(int fd) {
  static uint8_t buf[PROTO_HDR_SIZE + 64];
  struct proto_msg m;
  ssize_t n;

  memset(&m, 0, sizeof m);
  m.h.opcode = PROTO_OP_REATTACH;
  m.h.flags = PROTO_F_REPLY;
  m.h.reqid = 1;
  m.u.attach_reply.shmid = SHMID;
  m.u.attach_reply.segsz = 2 * PROTO_PAGE_SIZE;
  n = proto_encode(buf, sizeof buf, &m);
  ck_assert_int_gt(n, 0);
  ck_assert_int_eq(write(fd, buf, (size_t)n), n);
}

static void answer_write(int fd, int err) {
  uint8_t buf[PROTO_HDR_SIZE];
  size_t n = proto_encode_status(buf, PROTO_OP_WRITE_DATA, 2, proto_err_from_errno(err));

  ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
}

/* The write-back never answered: the connection fails first. */
#define NO_ANSWER 1

/* Resyncs owing_agent() against the played server, which answers the write-back with err
 * (0: taken; NO_ANSWER: the connection fails before); agent_seg_resync's result, and the
 * page's owed flag and version after it. */
static int resync_with(int err, struct hpage *after) {
  struct hseg *s = owing_agent();
  int sv[2], rc;

  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  answer_reattach(sv[1]);
  if (err == NO_ANSWER)
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
  else
    answer_write(sv[1], err);
  rc = agent_seg_resync(&ag, sv[0]);
  *after = s->pg[1];
  close(sv[0]);
  close(sv[1]);
  agent_seg_free_all(&ag);
  return rc;
}

/* The server answers the write-back with an error (it took nothing): the page stays owed,
 * at its version, so that the next resync writes it back again. Until the fix the page was
 * dropped whatever the answer, and the next resync's NODE RESUMED ended the restarted
 * server's ghost ownership with the host's writes never taken. */
START_TEST(refused_writeback_stays_owed) {
  struct hpage pg;

  ck_assert_int_eq(resync_with(-ENOMEM, &pg), -ENOMEM);
  ck_assert_int_eq(pg.owed, 1);
  ck_assert_uint_eq(pg.version, 5);
}
END_TEST

/* The connection fails before the write-back's answer (the server crashed again, the
 * network): the page stays owed too. */
START_TEST(unanswered_writeback_stays_owed) {
  struct hpage pg;

  ck_assert_int_lt(resync_with(NO_ANSWER, &pg), 0);
  ck_assert_int_eq(pg.owed, 1);
  ck_assert_uint_eq(pg.version, 5);
}
END_TEST

/* Answered (taken, or ignored by a server that gave the page up): the copy is not the
 * server's any more, fetched whole at the next fault. */
START_TEST(answered_writeback_is_dropped) {
  struct hpage pg;

  ck_assert_int_eq(resync_with(0, &pg), 0);
  ck_assert_int_eq(pg.owed, 0);
  ck_assert_uint_eq(pg.version, 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("resync");
  TCase *tc = tcase_create("writeback");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, refused_writeback_stays_owed);
  tcase_add_test(tc, unanswered_writeback_stays_owed);
  tcase_add_test(tc, answered_writeback_is_dropped);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
