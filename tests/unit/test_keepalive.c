/* test_keepalive.c - dshm_keepalive_set: the options the kernel holds afterwards for a
 * setting, off, and the settings refused. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keepalive.h"

static int opt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;

  ck_assert_int_eq(getsockopt(fd, level, name, &v, &len), 0);
  return v;
}

/* Asserts fd's keepalive, its idle, interval and count, and its user timeout. */
static void expect(int fd, int on, int idle, int intvl, int cnt, int user_timeout) {
  ck_assert_int_eq(opt(fd, SOL_SOCKET, SO_KEEPALIVE) != 0, on);
  if (on) {
    ck_assert_int_eq(opt(fd, IPPROTO_TCP, TCP_KEEPIDLE), idle);
    ck_assert_int_eq(opt(fd, IPPROTO_TCP, TCP_KEEPINTVL), intvl);
    ck_assert_int_eq(opt(fd, IPPROTO_TCP, TCP_KEEPCNT), cnt);
  }
  ck_assert_int_eq(opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), user_timeout);
}

START_TEST(derived_options) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  ck_assert_int_ge(fd, 0);
  /* A fresh socket has neither: what the setting must change. */
  expect(fd, 0, 0, 0, 0, 0);
  ck_assert_int_eq(dshm_keepalive_set(fd, DSHM_KEEPALIVE_DEFAULT_MS), 0);
  expect(fd, 1, 2, 1, 3, 5000);
  ck_assert_int_eq(dshm_keepalive_set(fd, 2000), 0);
  expect(fd, 1, 1, 1, 3, 2000);
  ck_assert_int_eq(dshm_keepalive_set(fd, 1000), 0);
  expect(fd, 1, 1, 1, 3, 1000);
  ck_assert_int_eq(dshm_keepalive_set(fd, 60000), 0);
  expect(fd, 1, 30, 10, 3, 60000);
  ck_assert_int_eq(dshm_keepalive_set(fd, DSHM_KEEPALIVE_MAX_MS), 0);
  expect(fd, 1, 1800, 600, 3, 3600000);
  /* Off: both back to the kernel's defaults. */
  ck_assert_int_eq(dshm_keepalive_set(fd, 0), 0);
  expect(fd, 0, 0, 0, 0, 0);
  close(fd);
}
END_TEST

START_TEST(refused) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);

  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(dshm_keepalive_valid(0), 1);
  ck_assert_int_eq(dshm_keepalive_valid(999), 0);
  ck_assert_int_eq(dshm_keepalive_valid(DSHM_KEEPALIVE_MAX_MS + 1), 0);
  ck_assert_int_eq(dshm_keepalive_set(fd, 999), -EINVAL);
  ck_assert_int_eq(dshm_keepalive_set(fd, DSHM_KEEPALIVE_MAX_MS + 1), -EINVAL);
  expect(fd, 0, 0, 0, 0, 0); /* nothing half-set */
  ck_assert_int_eq(dshm_keepalive_set(fd, 3000), 0); /* IPv6 too */
  expect(fd, 1, 1, 1, 3, 3000);
  close(fd);
  /* Not a TCP socket: the kernel's refusal is passed on. */
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_lt(dshm_keepalive_set(fd, 3000), 0);
  close(fd);
}
END_TEST

int main(void) {
  Suite *s = suite_create("keepalive");
  TCase *tc = tcase_create("sockopt");
  SRunner *sr;
  int nf;

  tcase_add_test(tc, derived_options);
  tcase_add_test(tc, refused);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf == 0 ? 0 : 1;
}
