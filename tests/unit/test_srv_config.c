/* test_srv_config.c - dshm-server option parsing: defaults, environment, flags, errors. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
  ck_assert_int_eq(parse(NULL), -EINVAL); /* not loopback: a token or --insecure */
  setenv("DSHM_INSECURE", "1", 1);
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

/* --keepalive-ms: on by default, 0 turns it off, sub-second and over-an-hour values are
 * refused with the option named. */
START_TEST(keepalive_ms) {
  unsetenv("DSHM_KEEPALIVE_MS");
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_uint_eq(cfg.keepalive_ms, 5000);
  ck_assert_int_eq(parse("--keepalive-ms", "0", NULL), 0);
  ck_assert_uint_eq(cfg.keepalive_ms, 0);
  ck_assert_int_eq(parse("--keepalive-ms", "1000", NULL), 0);
  ck_assert_uint_eq(cfg.keepalive_ms, 1000);
  ck_assert_int_eq(parse("--keepalive-ms", "3600000", NULL), 0);
  ck_assert_uint_eq(cfg.keepalive_ms, 3600000);
  setenv("DSHM_KEEPALIVE_MS", "2000", 1);
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_uint_eq(cfg.keepalive_ms, 2000);
  ck_assert_int_eq(parse("--keepalive-ms", "30000", NULL), 0); /* the flag wins */
  ck_assert_uint_eq(cfg.keepalive_ms, 30000);
  setenv("DSHM_KEEPALIVE_MS", "500", 1);
  ck_assert_int_eq(parse(NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "invalid value '500' for --keepalive-ms (from DSHM_KEEPALIVE_MS)"));
  unsetenv("DSHM_KEEPALIVE_MS");
  ck_assert_int_eq(parse("--keepalive-ms", "999", NULL), -EINVAL);
  ck_assert_int_eq(parse("--keepalive-ms", "3600001", NULL), -EINVAL);
  ck_assert_int_eq(parse("--keepalive-ms", "-1", NULL), -EINVAL);
  ck_assert_int_eq(parse("--keepalive-ms", "5s", NULL), -EINVAL);
  ck_assert_int_eq(parse("--keepalive-ms", "99999999999999999999", NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "--keepalive-ms"));
  ck_assert_int_eq(parse("--help", NULL), 1);
  ck_assert_ptr_nonnull(strstr(outbuf, "--keepalive-ms MS"));
}
END_TEST


/* Which listeners, and the refusal to serve a network without a token. */
START_TEST(security_listeners) {
  unsetenv("DSHM_BIND");
  unsetenv("DSHM_PORT");
  unsetenv("DSHM_UNIX");
  unsetenv("DSHM_INSECURE");
  unsetenv("DSHM_TOKEN_FILE");
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_int_eq(cfg.tcp, 1);
  ck_assert_int_eq(cfg.auth, 0);
  ck_assert_int_eq(cfg.insecure, 0);
  ck_assert_str_eq(cfg.unix_path, "");
  ck_assert_uint_eq(cfg.unix_mode, 0666);
  ck_assert_int_eq(parse("--bind", "0.0.0.0", "--port", "0", NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "refusing to listen on 0.0.0.0 without a token"));
  ck_assert_ptr_nonnull(strstr(errbuf, "--token-file"));
  ck_assert_int_eq(parse("--bind", "::", NULL), -EINVAL);
  ck_assert_int_eq(parse("--bind", "192.168.1.5", "--insecure", NULL), 0);
  ck_assert_int_eq(cfg.insecure, 1);
  ck_assert_int_eq(parse("--bind", "127.0.0.2", NULL), 0);
  ck_assert_int_eq(parse("--bind", "::1", NULL), 0);
  ck_assert_int_eq(parse("--bind", "::ffff:127.0.0.1", NULL), 0);
  ck_assert_int_eq(srv_config_is_loopback("10.0.0.1"), 0);
  ck_assert_int_eq(srv_config_is_loopback("::ffff:10.0.0.1"), 0);
  /* --unix alone: no TCP; with --port or --bind (flag or environment): both. */
  ck_assert_int_eq(parse("--unix", "/tmp/x.sock", NULL), 0);
  ck_assert_str_eq(cfg.unix_path, "/tmp/x.sock");
  ck_assert_int_eq(cfg.tcp, 0);
  ck_assert_int_eq(parse("--unix", "/tmp/x.sock", "--port", "0", NULL), 0);
  ck_assert_int_eq(cfg.tcp, 1);
  ck_assert_int_eq(parse("--unix", "/tmp/x.sock", "9000", NULL), 0);
  ck_assert_int_eq(cfg.tcp, 1);
  setenv("DSHM_UNIX", "/tmp/y.sock", 1);
  setenv("DSHM_BIND", "127.0.0.1", 1);
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_str_eq(cfg.unix_path, "/tmp/y.sock");
  ck_assert_int_eq(cfg.tcp, 1);
  unsetenv("DSHM_BIND");
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_int_eq(cfg.tcp, 0);
  /* Unix only, with 0.0.0.0 never used: no token needed. */
  unsetenv("DSHM_UNIX");
  ck_assert_int_eq(parse("--unix", "/tmp/x.sock", "--unix-mode", "0600", NULL), 0);
  ck_assert_uint_eq(cfg.unix_mode, 0600);
  ck_assert_int_eq(parse("--unix-mode", "660", NULL), 0);
  ck_assert_uint_eq(cfg.unix_mode, 0660);
  ck_assert_int_eq(parse("--unix-mode", "0800", NULL), -EINVAL);
  ck_assert_int_eq(parse("--unix-mode", "01777", NULL), -EINVAL);
  ck_assert_int_eq(parse("--unix-mode", "rw", NULL), -EINVAL);
  ck_assert_int_eq(parse("--unix", "", NULL), -EINVAL);
  {
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    ck_assert_int_eq(parse("--unix", longpath, NULL), -EINVAL);
  }
}
END_TEST

/* --metrics: off by default, a port alone is loopback, numeric addresses only, IPv6 in
 * brackets; --log-format text or json. */
START_TEST(metrics_and_log_format) {
  static const char *const bad[] = {"", "65536", "-1", "01", "1.2.3.4", "localhost:9464",
                                    "::1:9464", "[::1]", "[::1]:", "1.2.3.4:", ":9464",
                                    "1.2.3.4:x", "[1.2.3.4]:80x"};

  unsetenv("DSHM_METRICS");
  unsetenv("DSHM_LOG_FORMAT");
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_int_eq(cfg.metrics, 0);
  ck_assert_int_eq(cfg.log_json, 0);
  ck_assert_int_eq(parse("--metrics", "9464", NULL), 0);
  ck_assert_int_eq(cfg.metrics, 1);
  ck_assert_str_eq(cfg.metrics_addr, "127.0.0.1");
  ck_assert_int_eq(cfg.metrics_port, 9464);
  ck_assert_int_eq(parse("--metrics", "0", NULL), 0);
  ck_assert_int_eq(cfg.metrics_port, 0);
  ck_assert_int_eq(parse("--metrics", "0.0.0.0:9100", NULL), 0); /* allowed, warned at start */
  ck_assert_str_eq(cfg.metrics_addr, "0.0.0.0");
  ck_assert_int_eq(cfg.metrics_port, 9100);
  ck_assert_int_eq(parse("--metrics=[::1]:9464", NULL), 0);
  ck_assert_str_eq(cfg.metrics_addr, "::1");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(parse("--metrics", bad[i], NULL) == -EINVAL, "accepted '%s'", bad[i]);
    ck_assert_ptr_nonnull(strstr(errbuf, "--metrics"));
  }
  setenv("DSHM_METRICS", "127.0.0.2:7000", 1);
  setenv("DSHM_LOG_FORMAT", "json", 1);
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_int_eq(cfg.metrics, 1);
  ck_assert_str_eq(cfg.metrics_addr, "127.0.0.2");
  ck_assert_int_eq(cfg.log_json, 1);
  ck_assert_int_eq(parse("--log-format", "text", NULL), 0); /* flags win */
  ck_assert_int_eq(cfg.log_json, 0);
  unsetenv("DSHM_METRICS");
  unsetenv("DSHM_LOG_FORMAT");
  ck_assert_int_eq(parse("--log-format", "xml", NULL), -EINVAL);
}
END_TEST

START_TEST(frame_and_pending_limits) {
  unsetenv("DSHM_MAX_FRAME");
  unsetenv("DSHM_MAX_PENDING");
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_uint_eq(cfg.max_frame, PROTO_MAX_FRAME);
  ck_assert_uint_eq(srv_config_max_run(&cfg), PROTO_MAX_RUN);
  ck_assert_uint_eq(cfg.max_pending, 1024);
  ck_assert_int_eq(parse("--max-frame", "65536", "--max-pending", "8", NULL), 0);
  ck_assert_uint_eq(cfg.max_frame, 65536);
  ck_assert_uint_eq(srv_config_max_run(&cfg), (65536 - 20 - 16) / (16 + 4096));
  ck_assert_uint_eq(cfg.max_pending, 8);
  /* The smallest frame still carries one full page. */
  ck_assert_int_eq(parse("--max-frame", "4148", NULL), 0);
  ck_assert_uint_eq(srv_config_max_run(&cfg), 1);
  ck_assert_int_eq(parse("--max-frame", "4147", NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "--max-frame"));
  ck_assert_int_eq(parse("--max-frame", "1052709", NULL), -EINVAL); /* protocol maximum */
  ck_assert_int_eq(parse("--max-pending", "0", NULL), -EINVAL);
  ck_assert_int_eq(parse("--max-pending", "1048577", NULL), -EINVAL);
  setenv("DSHM_MAX_PENDING", "3", 1);
  ck_assert_int_eq(parse(NULL), 0);
  ck_assert_uint_eq(cfg.max_pending, 3);
  unsetenv("DSHM_MAX_PENDING");
}
END_TEST

/* A token file: loaded at parse time, refused when others may read it, empty or missing. */
START_TEST(token_file) {
  char path[] = "/tmp/dshm-test-token-XXXXXX";
  struct dshm_auth_key a, b;
  int fd = mkstemp(path);

  unsetenv("DSHM_TOKEN_FILE");
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "s3cret\n", 7), 7);
  ck_assert_int_eq(fchmod(fd, 0600), 0);
  ck_assert_int_eq(parse("--token-file", path, "--bind", "0.0.0.0", NULL), 0);
  ck_assert_int_eq(cfg.auth, 1);
  /* One trailing newline is not part of the token. */
  ck_assert_int_eq(dshm_auth_key_from_token(&a, "s3cret", 6), 0);
  ck_assert_mem_eq(cfg.key.k, a.k, sizeof a.k);
  ck_assert_int_eq(dshm_auth_key_from_token(&b, "s3cret\n", 7), 0);
  ck_assert_int_ne(memcmp(a.k, b.k, sizeof a.k), 0);
  ck_assert_int_eq(fchmod(fd, 0644), 0);
  ck_assert_int_eq(parse("--token-file", path, NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "accessible by group or others"));
  ck_assert_int_eq(fchmod(fd, 0640), 0);
  ck_assert_int_eq(parse("--token-file", path, NULL), -EINVAL);
  ck_assert_int_eq(fchmod(fd, 0600), 0);
  ck_assert_int_eq(ftruncate(fd, 0), 0);
  ck_assert_int_eq(parse("--token-file", path, NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "empty"));
  ck_assert_int_eq(pwrite(fd, "\n", 1, 0), 1);
  ck_assert_int_eq(parse("--token-file", path, NULL), -EINVAL); /* only a newline: empty */
  setenv("DSHM_TOKEN_FILE", path, 1);
  ck_assert_int_eq(parse(NULL), -EINVAL);
  unsetenv("DSHM_TOKEN_FILE");
  close(fd);
  unlink(path);
  ck_assert_int_eq(parse("--token-file", path, NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "cannot open token file"));
  ck_assert_int_eq(parse("--token-file", "/", NULL), -EINVAL);
  ck_assert_ptr_nonnull(strstr(errbuf, "not a regular file"));
}
END_TEST

/* The handshake proofs: each role verifies only as itself, with these nonces, this key. */
START_TEST(auth_proofs) {
  uint8_t sn[PROTO_NONCE_SIZE], cn[PROTO_NONCE_SIZE], mac[PROTO_MAC_SIZE];
  struct dshm_auth_key k, other;

  ck_assert_int_eq(dshm_auth_key_from_token(&k, "token", 5), 0);
  ck_assert_int_eq(dshm_auth_key_from_token(&other, "tokeN", 5), 0);
  ck_assert_int_eq(dshm_auth_key_from_token(&other, "", 0), -EINVAL);
  dshm_auth_nonce(sn);
  dshm_auth_nonce(cn);
  ck_assert_int_ne(memcmp(sn, cn, sizeof sn), 0);
  dshm_auth_mac(&k, DSHM_AUTH_CLIENT, sn, cn, mac);
  ck_assert_int_eq(dshm_auth_verify(&k, DSHM_AUTH_CLIENT, sn, cn, mac), 0);
  ck_assert_int_eq(dshm_auth_verify(&k, DSHM_AUTH_SERVER, sn, cn, mac), -EACCES);
  ck_assert_int_eq(dshm_auth_key_from_token(&other, "tokeN", 5), 0);
  ck_assert_int_eq(dshm_auth_verify(&other, DSHM_AUTH_CLIENT, sn, cn, mac), -EACCES);
  ck_assert_int_eq(dshm_auth_verify(&k, DSHM_AUTH_CLIENT, cn, sn, mac), -EACCES);
  sn[0] ^= 1;
  ck_assert_int_eq(dshm_auth_verify(&k, DSHM_AUTH_CLIENT, sn, cn, mac), -EACCES);
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
  tcase_add_test(tc, keepalive_ms);
  tcase_add_test(tc, security_listeners);
  tcase_add_test(tc, metrics_and_log_format);
  tcase_add_test(tc, frame_and_pending_limits);
  tcase_add_test(tc, token_file);
  tcase_add_test(tc, auth_proofs);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
