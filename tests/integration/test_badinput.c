/* test_badinput.c - a real dshm-server under hostile and broken peers: garbage, truncated
 * frames, lying length fields, byte-at-a-time writes, peers that never HELLO or never read,
 * idle peers, and thousands of connect/attach/detach cycles. Well-behaved preloaded
 * programs keep working, the server's memory stays bounded, it exits 0 and leak-free. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"
#include "rawclient.h"

#define KEYSTR(buf, key) (snprintf(buf, sizeof buf, "%d", key), buf)

/* ---- requests over the raw client (rawclient.h) ---- */

static struct proto_msg rc_hello(void) {
  struct proto_msg m = rc_msg(PROTO_OP_HELLO, 1);
  m.u.hello.pid = (uint32_t)getpid();
  m.u.hello.uid = (uint32_t)getuid();
  m.u.hello.gid = (uint32_t)getgid();
  m.u.hello.name_len = 7;
  memcpy(m.u.hello.name, "badpeer", 7);
  return m;
}

static const struct proto_cred *rc_cred(void) {
  static struct proto_cred c;
  c = (struct proto_cred){(uint32_t)getpid(), (uint32_t)getuid(), (uint32_t)getgid()};
  return &c;
}

/* Sends m and asserts a successful reply (returned in *r). */
static void rc_call_ok(int fd, struct proto_msg *m, struct proto_msg *r) {
  ck_assert_int_eq(rc_send_msg(fd, m), 0);
  ck_assert_msg(rc_reply(fd, m->h.reqid, r) == 0, "no reply to %s", proto_op_name(m->h.opcode));
  ck_assert_msg(r->h.status == 0, "%s failed: status %d", proto_op_name(m->h.opcode),
                r->h.status);
}

static void rc_handshake(int fd) {
  struct proto_msg m = rc_hello(), r;
  rc_call_ok(fd, &m, &r);
}

static int rc_create(int fd, int32_t key, uint64_t size) {
  struct proto_msg m = rc_msg(PROTO_OP_CREATE_SEGMENT, 2), r;
  m.u.create = (struct proto_create){*rc_cred(), key, size, IPC_CREAT | 0600};
  rc_call_ok(fd, &m, &r);
  return r.u.create_reply.shmid;
}

static void rc_attach(int fd, int32_t shmid) {
  struct proto_msg m = rc_msg(PROTO_OP_ATTACH_SEGMENT, 3), r;
  m.u.attach = (struct proto_attach){*rc_cred(), shmid, 0};
  rc_call_ok(fd, &m, &r);
}

static void rc_segref(int fd, uint8_t op, int32_t shmid) {
  struct proto_msg m = rc_msg(op, 4), r;
  m.u.segref = (struct proto_segref){*rc_cred(), shmid};
  rc_call_ok(fd, &m, &r);
}

static void rc_ping(int fd, uint64_t cookie) {
  struct proto_msg m = rc_msg(PROTO_OP_PING, 6), r;
  m.u.ping.cookie = cookie;
  rc_call_ok(fd, &m, &r);
  ck_assert(r.u.ping.cookie == cookie);
}

/* READ_DATA of count pages from 0, with a version the server does not have, so every
 * page of the grant carries data. */
static struct proto_msg rc_read_req(int32_t shmid, uint32_t reqid, uint32_t count) {
  struct proto_msg m = rc_msg(PROTO_OP_READ_DATA, reqid);
  m.u.run.shmid = shmid;
  m.u.run.count = count;
  m.u.run.mode = PROTO_MODE_SHARED;
  for (uint32_t i = 0; i < count; i++)
    m.u.run.page[i].version = 0xdead0000u + i;
  return m;
}

/* Starts a server with extra DSHM_* settings ("NAME=value", NULL-terminated) in its env. */
static void start_with(struct h_server *s, const char *const *settings) {
  char name[64];

  /* A small ASan quarantine, so that freed memory does not count as the server's RSS. */
  setenv("DSHM_TEST_SERVER_ASAN", "detect_leaks=1:quarantine_size_mb=8", 1);
  for (int i = 0; settings[i] != NULL; i++) {
    const char *eq = strchr(settings[i], '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - settings[i]), settings[i]);
    setenv(name, eq + 1, 1);
  }
  h_server_start(s);
  for (int i = 0; settings[i] != NULL; i++) {
    const char *eq = strchr(settings[i], '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - settings[i]), settings[i]);
    unsetenv(name);
  }
  unsetenv("DSHM_TEST_SERVER_ASAN");
}

/* ---- the tests ---- */

enum { N_GARBAGE = 40, N_NOHELLO = 30, N_LIARS = 30, N_OVERSIZED = 10, N_BADPAYLOAD = 10,
       N_SLOW = 10, N_NOREAD = 5, N_ALL = N_GARBAGE + N_NOHELLO + N_LIARS + N_OVERSIZED +
       N_BADPAYLOAD + N_SLOW + N_NOREAD };

/* 135 hostile connections at once, while two preloaded counters and a fill/verify run. */
START_TEST(test_abuse_while_serving) {
  /* 2 s: the preloaded programs say HELLO right after connecting, even on a busy machine. */
  static const char *const settings[] = {"DSHM_HELLO_TIMEOUT=2", "DSHM_MAX_OUTPUT=2097152",
                                         NULL};
  static uint8_t buf[PROTO_MAX_FRAME];
  struct h_server srv;
  int fd[N_ALL], nfd = 0, i, slow0, noread0, closed0;
  char k1[16], k2[16];
  char *count[] = {"shmtool", "counter", KEYSTR(k1, h_unique_key()), "3000", "2", NULL};
  char *get[] = {"shmtool", "get", k1, NULL};
  char *fill[] = {"shmtool", "fill", KEYSTR(k2, h_unique_key()), "200000", "5", NULL};
  char *verify[] = {"shmtool", "verify", k2, "200000", "5", NULL};
  struct h_proc p[2];
  struct h_result r;
  long rss0, hwm;
  struct proto_msg m;
  size_t n;

  start_with(&srv, settings);
  rss0 = rc_proc_kib(srv.pid, "VmRSS");

  /* Garbage: random bytes, never a valid magic. Closed at once. */
  srand(42);
  for (i = 0; i < N_GARBAGE; i++) {
    fd[nfd] = rc_connect(&srv);
    for (n = 0; n < 4096; n++)
      buf[n] = (uint8_t)rand();
    buf[0] = 'X';
    (void)rc_send(fd[nfd++], buf, 1 + (size_t)i * 100);
  }
  closed0 = nfd;
  /* Lies in length fields: frames whose claimed payload is above the opcode's cap, and
   * payloads that do not parse (ngroups beyond the limit). Closed at once. */
  for (i = 0; i < N_OVERSIZED; i++) {
    m = rc_hello();
    n = rc_encode(buf, sizeof buf, &m);
    proto_put_u32(buf + 16, i % 2 ? UINT32_MAX : PROTO_SMALL_MAX + 1);
    fd[nfd] = rc_connect(&srv);
    (void)rc_send(fd[nfd++], buf, n);
  }
  for (i = 0; i < N_BADPAYLOAD; i++) {
    m = rc_hello();
    n = rc_encode(buf, sizeof buf, &m);
    proto_put_u32(buf + PROTO_HDR_SIZE + 12, 1000 + (uint32_t)i); /* ngroups */
    fd[nfd] = rc_connect(&srv);
    (void)rc_send(fd[nfd++], buf, n);
  }
  /* Half-open: a truncated HELLO (or nothing at all), never finished. Closed by
   * --hello-timeout. */
  for (i = 0; i < N_NOHELLO; i++) {
    m = rc_hello();
    n = rc_encode(buf, sizeof buf, &m);
    fd[nfd] = rc_connect(&srv);
    ck_assert_int_eq(rc_send(fd[nfd++], buf, (size_t)i % n), 0);
  }
  /* After a good HELLO, a WRITE_DATA header announcing a full run and a little of it: the
   * server must not reserve the announced size for a peer that does not send it. */
  for (i = 0; i < N_LIARS; i++) {
    fd[nfd] = rc_connect(&srv);
    rc_handshake(fd[nfd]);
    m = rc_msg(PROTO_OP_WRITE_DATA, 9);
    proto_put_u32(buf, PROTO_MAGIC);
    buf[4] = PROTO_VERSION;
    buf[5] = PROTO_OP_WRITE_DATA;
    proto_put_u16(buf + 6, 0);
    proto_put_u32(buf + 8, 9);
    proto_put_u32(buf + 12, 0);
    proto_put_u32(buf + 16, PROTO_RUN_MAX_PAYLOAD);
    memset(buf + PROTO_HDR_SIZE, 0, 1000);
    ck_assert_int_eq(rc_send(fd[nfd++], buf, PROTO_HDR_SIZE + 1000), 0);
  }
  /* Peers that ask for megabytes and never read them: closed at --max-output. */
  noread0 = nfd;
  for (i = 0; i < N_NOREAD; i++) {
    int32_t id;
    fd[nfd] = rc_connect(&srv);
    rc_handshake(fd[nfd]);
    id = rc_create(fd[nfd], IPC_PRIVATE, PROTO_MAX_RUN * PROTO_PAGE_SIZE);
    rc_attach(fd[nfd], id);
    rc_segref(fd[nfd], PROTO_OP_REMOVE_SEGMENT, id); /* gone at their disconnect */
    for (uint32_t q = 0; q < 40; q++) {
      m = rc_read_req(id, 100 + q, PROTO_MAX_RUN);
      if (rc_send_msg(fd[nfd], &m) < 0)
        break; /* already closed */
    }
    nfd++;
  }
  /* Byte-at-a-time writers, interleaved: a HELLO and a PING, one byte per write. */
  slow0 = nfd;
  for (i = 0; i < N_SLOW; i++)
    fd[nfd++] = rc_connect(&srv);
  {
    struct proto_msg h = rc_hello(), pg = rc_msg(PROTO_OP_PING, 77);
    size_t hn = rc_encode(buf, sizeof buf, &h), pn;
    pg.u.ping.cookie = 0xfeedface;
    pn = rc_encode(buf + hn, sizeof buf - hn, &pg);
    /* The well-behaved programs start while all of the above is going on. */
    for (i = 0; i < 2; i++)
      h_spawn(&p[i], &srv, count);
    for (n = 0; n < hn + pn; n++)
      for (i = slow0; i < slow0 + N_SLOW; i++)
        ck_assert_int_eq(rc_send(fd[i], buf + n, 1), 0);
    for (i = slow0; i < slow0 + N_SLOW; i++) {
      struct proto_msg rr;
      ck_assert_int_eq(rc_reply(fd[i], 1, &rr), 0);
      ck_assert_int_eq(rc_reply(fd[i], 77, &rr), 0);
      ck_assert(rr.u.ping.cookie == 0xfeedface);
    }
  }
  h_run_ok(&srv, fill, &r);
  h_run_ok(&srv, verify, &r);
  ck_assert_str_eq(r.out, "verified 200000\n");
  for (i = 0; i < 2; i++) {
    h_wait(&p[i], &r, 120000);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "counter %d: %#x %s", i,
                  r.status, r.err);
  }
  h_run_ok(&srv, get, &r);
  ck_assert_str_eq(r.out, "value 6000\n");

  /* Each hostile peer was closed by the server: at once, or by a limit or timeout. */
  for (i = 0; i < closed0 + N_OVERSIZED + N_BADPAYLOAD + N_NOHELLO; i++)
    ck_assert_msg(rc_wait_closed(fd[i]) == 0, "hostile connection %d still open", i);
  for (i = noread0; i < noread0 + N_NOREAD; i++)
    ck_assert_msg(rc_wait_closed(fd[i]) == 0, "non-reading peer %d still open", i);

  /* Bounded memory: the liars pin what they sent, not what they announced (30 MiB), the
   * non-readers at most --max-output each. */
  hwm = rc_proc_kib(srv.pid, "VmHWM");
  ck_assert_msg(hwm - rss0 < 96 * 1024, "server RSS grew from %ld KiB to a peak of %ld KiB",
                rss0, hwm);
  for (i = 0; i < nfd; i++)
    close(fd[i]);
  /* Still answering; then SIGTERM: exit 0, leak-free under the sanitizer build. */
  fd[0] = rc_connect(&srv);
  rc_handshake(fd[0]);
  rc_ping(fd[0], 1);
  close(fd[0]);
  h_server_stop(&srv);
}
END_TEST

/* --hello-timeout closes a peer that never says HELLO; --idle-timeout closes a silent peer
 * with nothing attached, but never one that holds an attachment. */
START_TEST(test_timeouts) {
  static const char *const settings[] = {"DSHM_HELLO_TIMEOUT=1", "DSHM_IDLE_TIMEOUT=1", NULL};
  struct h_server srv;
  int holder, idle, mute;
  int32_t id;

  start_with(&srv, settings);
  /* The holder goes silent first: it has been idle longer than the idle peer below. */
  holder = rc_connect(&srv);
  rc_handshake(holder);
  id = rc_create(holder, IPC_PRIVATE, PROTO_PAGE_SIZE);
  rc_attach(holder, id);
  rc_segref(holder, PROTO_OP_REMOVE_SEGMENT, id);
  mute = rc_connect(&srv);
  idle = rc_connect(&srv);
  rc_handshake(idle);
  ck_assert_msg(rc_wait_closed(mute) == 0, "a peer without HELLO was not closed");
  ck_assert_msg(rc_wait_closed(idle) == 0, "an idle peer with nothing attached was not closed");
  /* The holder survived every sweep that closed the idle peer. */
  rc_ping(holder, 2);
  close(holder);
  close(idle);
  close(mute);
  h_server_stop(&srv);
}
END_TEST

/* Thousands of connect / HELLO / shmget / shmat / read / shmdt / disconnect cycles, some
 * ending in a disconnect with the segment still attached or removed while attached; then
 * SIGTERM: exit 0 means LeakSanitizer found nothing (sanitizer build). */
START_TEST(test_cycles_leak_free) {
  static const char *const settings[] = {NULL};
  struct h_server srv;
  int32_t key = h_unique_key();
  struct proto_msg m, r;
  long rss1 = 0;

  start_with(&srv, settings);
  for (int i = 0; i < 2000; i++) {
    int fd = rc_connect(&srv);
    int32_t id;

    rc_handshake(fd);
    id = rc_create(fd, key, 4 * PROTO_PAGE_SIZE);
    rc_attach(fd, id);
    m = rc_read_req(id, 50, 2);
    rc_call_ok(fd, &m, &r);
    ck_assert_int_eq(r.u.run.count, 2);
    switch (i % 4) {
    case 0:
      rc_segref(fd, PROTO_OP_DETACH_SEGMENT, id);
      break;
    case 1: /* disconnect while attached: the teardown detaches */
      break;
    case 2: /* removed while attached: destroyed at the disconnect */
      rc_segref(fd, PROTO_OP_REMOVE_SEGMENT, id);
      break;
    case 3:
      rc_segref(fd, PROTO_OP_DETACH_SEGMENT, id);
      rc_segref(fd, PROTO_OP_REMOVE_SEGMENT, id);
      break;
    }
    close(fd);
    if (i == 500)
      rss1 = rc_proc_kib(srv.pid, "VmRSS");
  }
  /* No growth per cycle either (generous: 1500 cycles, 16 MiB). */
  ck_assert_msg(rc_proc_kib(srv.pid, "VmRSS") - rss1 < 16 * 1024, "RSS grew from %ld KiB", rss1);
  h_server_stop(&srv);
}
END_TEST

static Suite *badinput_suite(void) {
  Suite *s = suite_create("badinput");
  TCase *tc = tcase_create("badinput");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_abuse_while_serving);
  tcase_add_test(tc, test_timeouts);
  tcase_add_test(tc, test_cycles_leak_free);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(badinput_suite());
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
