/* test_srv_config.c - dshm-server option parsing: defaults, environment, flags, errors. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static struct srv_config cfg;
static char outbuf[4096], errbuf[4096];

/* Parses a NULL-terminated argument list with the program name prepended. */
static int parse(const char *first, ...) {
  char *argv[16];
  int argc = 0, rc;
  va_list ap;
  const char *a;
  FILE *out = fmemopen(outbuf, sizeof outbuf, "w");
  FILE *err = fmemopen(errbuf, sizeof errbuf, "w");

  argv[argc++] = (char *)"dshm-server";
  va_start(ap, first);
  for (a = first; a != NULL && argc < 15; a = va_arg(ap, const char *))
    argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  rc = srv_config_parse(&cfg, argc, argv, out, err);
  fclose(out);
  fclose(err);
  return rc;
}

START_TEST(defaults) {
  unsetenv("DSHM_PORT");
  unsetenv("DSHM_BIND");
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_int_eq(cfg.port, 8080);
  ck_assert_str_eq(cfg.bind, "127.0.0.1");
  ck_assert_uint_eq(cfg.lim.shmmax, UINT64_MAX - (UINT64_C(1) << 24));
  ck_assert_uint_eq(cfg.lim.shmall, UINT64_MAX - (UINT64_C(1) << 24));
  ck_assert_uint_eq(cfg.lim.shmmni, 4096);
  ck_assert_uint_eq(cfg.lim.shmmin, 1);
  ck_assert_uint_eq(cfg.max_conns, 1024);
  ck_assert_int_eq(cfg.verbose, 0);
}
END_TEST

START_TEST(positional_port_and_flags) {
  ck_assert_int_eq(parse("9000", NULL), 0);
  ck_assert_int_eq(cfg.port, 9000);
  ck_assert_int_eq(parse("--port", "0", "--bind", "::1", "--shmmax", "4096", "--shmall",
                         "0x10", "--shmmni", "32768", "--max-conns", "3", "-v", NULL), 0);
  ck_assert_int_eq(cfg.port, 0);
  ck_assert_str_eq(cfg.bind, "::1");
  ck_assert_uint_eq(cfg.lim.shmmax, 4096);
  ck_assert_uint_eq(cfg.lim.shmall, 16);
  ck_assert_uint_eq(cfg.lim.shmmni, 32768);
  ck_assert_uint_eq(cfg.max_conns, 3);
  ck_assert_int_eq(cfg.verbose, 1);
  ck_assert_int_eq(parse("--port=7", NULL), 0);
  ck_assert_int_eq(cfg.port, 7);
  ck_assert_int_eq(parse("9001", "--verbose", NULL), 0); /* options after the port too */
  ck_assert_int_eq(cfg.port, 9001);
  ck_assert_int_eq(cfg.verbose, 1);
}
END_TEST

START_TEST(environment_then_flags) {
  setenv("DSHM_PORT", "1234", 1);
  setenv("DSHM_BIND", "0.0.0.0", 1);
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_int_eq(cfg.port, 1234);
  ck_assert_str_eq(cfg.bind, "0.0.0.0");
  ck_assert_int_eq(parse("--port", "5", NULL), 0);
  ck_assert_int_eq(cfg.port, 5);
  setenv("DSHM_PORT", "http", 1);
  ck_assert_int_eq(parse(NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "DSHM_PORT"));
}
END_TEST

START_TEST(bad_arguments) {
  ck_assert_int_eq(parse("65536", NULL), -EINVAL);
  ck_assert_int_eq(parse("-1", NULL), -EINVAL);
  ck_assert_int_eq(parse("--port", "-1", NULL), -EINVAL);
  ck_assert_int_eq(parse("--port", "12x", NULL), -EINVAL);
  ck_assert_int_eq(parse("--port", NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "needs an argument"));
  ck_assert_int_eq(parse("--frobnicate", NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "unknown option"));
  ck_assert_int_eq(parse("1", "2", NULL), -EINVAL);
  ck_assert_int_eq(parse("--port", "1", "2", NULL), -EINVAL);
  ck_assert_int_eq(parse("--shmmni", "32769", NULL), -EINVAL);
  ck_assert_int_eq(parse("--max-conns", "0", NULL), -EINVAL);
  ck_assert_int_eq(parse("--shmmax", "99999999999999999999999", NULL), -EINVAL);
  ck_assert_int_eq(parse("--bind", "", NULL), -EINVAL);
  ck_assert_int_eq(parse("--bind", "localhost", NULL), -EINVAL);
  ck_assert_int_eq(parse("--bind", "1.2.3.4.5", NULL), -EINVAL);
}
END_TEST

START_TEST(help_and_version) {
  ck_assert_int_eq(parse("--help", NULL), 1);
  ck_assert_ptr_nonnull(strstr(outbuf, "usage: dshm-server"));
  ck_assert_ptr_nonnull(strstr(outbuf, "--max-conns"));
  ck_assert_int_eq(parse("--version", NULL), 1);
  ck_assert_str_eq(outbuf, "dshm-server " DSHM_VERSION "\n");
}
END_TEST

/* The abuse limits: defaults, flags, environment, and values refused. */
START_TEST(abuse_limits) {
  unsetenv("DSHM_MAX_OUTPUT");
  unsetenv("DSHM_HELLO_TIMEOUT");
  unsetenv("DSHM_IDLE_TIMEOUT");
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_uint_eq(cfg.max_output, 64u << 20);
  ck_assert_uint_eq(cfg.hello_timeout_ms, 10000);
  ck_assert_uint_eq(cfg.idle_timeout_ms, 0);
  ck_assert_int_eq(parse("--max-output", "4194304", "--hello-timeout", "0", "--idle-timeout",
                         "30", NULL), 0);
  ck_assert_uint_eq(cfg.max_output, 4u << 20);
  ck_assert_uint_eq(cfg.hello_timeout_ms, 0);
  ck_assert_uint_eq(cfg.idle_timeout_ms, 30000);
  setenv("DSHM_IDLE_TIMEOUT", "2", 1);
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_uint_eq(cfg.idle_timeout_ms, 2000);
  unsetenv("DSHM_IDLE_TIMEOUT");
  /* Below the largest reply frame, a peer could never be sent one. */
  ck_assert_int_eq(parse("--max-output", "1048576", NULL), -EINVAL);
  ck_assert_int_eq(parse("--hello-timeout", "-1", NULL), -EINVAL);
  ck_assert_int_eq(parse("--idle-timeout", "999999999", NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "--idle-timeout"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("srv_config");
  TCase *tc = tcase_create("config");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, defaults);
  tcase_add_test(tc, positional_port_and_flags);
  tcase_add_test(tc, environment_then_flags);
  tcase_add_test(tc, bad_arguments);
  tcase_add_test(tc, help_and_version);
  tcase_add_test(tc, abuse_limits);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
