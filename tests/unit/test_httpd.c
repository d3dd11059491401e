/* test_httpd.c - the metrics endpoint's request parser: complete, partial and bad heads. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"

static ssize_t parse(const char *s, struct srv_http_req *r) {
  return srv_http_parse(s, strlen(s), r);
}

START_TEST(get_metrics) {
  static const char *const ok[] = {
    "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    "GET /metrics HTTP/1.0\r\n\r\n",
    "GET /metrics?name[]=a HTTP/1.1\r\nUser-Agent: Prometheus/2.45\r\n\r\n",
    "GET /metrics HTTP/1.1\n\n", /* bare LF line ends are accepted */
    "GET /metrics HTTP/1.1\r\nX-Empty:\r\nX-Tab:\ta\tb\r\n\r\n",
  };
  struct srv_http_req r;

  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    ck_assert_int_eq(parse(ok[i], &r), (ssize_t)strlen(ok[i]));
    ck_assert_int_eq(r.method, SRV_HTTP_GET);
    ck_assert_int_eq(r.metrics, 1);
    ck_assert_int_eq(srv_http_status(&r), 200);
  }
  ck_assert_int_eq(parse(ok[1], &r), (ssize_t)strlen(ok[1]));
  ck_assert_int_eq(r.minor, 0);
}
END_TEST

/* The head's length stops at the blank line: a body or a second request is not read. */
START_TEST(length_excludes_what_follows) {
  const char *s = "GET /metrics HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  struct srv_http_req r;

  ck_assert_int_eq(parse(s, &r), 25);
}
END_TEST

START_TEST(statuses) {
  struct srv_http_req r;

  ck_assert_int_gt(parse("HEAD /metrics HTTP/1.1\r\n\r\n", &r), 0);
  ck_assert_int_eq(r.method, SRV_HTTP_HEAD);
  ck_assert_int_eq(srv_http_status(&r), 200);
  ck_assert_int_gt(parse("GET / HTTP/1.1\r\n\r\n", &r), 0);
  ck_assert_int_eq(srv_http_status(&r), 404);
  ck_assert_int_gt(parse("GET /metricsx HTTP/1.1\r\n\r\n", &r), 0);
  ck_assert_int_eq(srv_http_status(&r), 404);
  ck_assert_int_gt(parse("GET /metrics/ HTTP/1.1\r\n\r\n", &r), 0);
  ck_assert_int_eq(srv_http_status(&r), 404);
  ck_assert_int_gt(parse("GET http://h/metrics HTTP/1.1\r\n\r\n", &r), 0);
  ck_assert_int_eq(srv_http_status(&r), 404);
  ck_assert_int_gt(parse("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n", &r), 0);
  ck_assert_int_eq(srv_http_status(&r), 405);
  ck_assert_int_gt(parse("get /metrics HTTP/1.1\r\n\r\n", &r), 0); /* methods are case-sensitive */
  ck_assert_int_eq(srv_http_status(&r), 405);
}
END_TEST

/* Every proper prefix of a valid head needs more; the whole needs nothing more. */
START_TEST(prefixes_need_more) {
  const char *s = "GET /metrics HTTP/1.1\r\nHost: localhost:9464\r\nAccept: text/plain\r\n\r\n";
  struct srv_http_req r;
  size_t n = strlen(s);

  for (size_t i = 0; i < n; i++) {
    /* A copy of exactly i bytes, so that a read past the end is caught by ASan. */
    char *p = malloc(i ? i : 1);
    memcpy(p, s, i);
    ck_assert_msg(srv_http_parse(p, i, &r) == 0, "prefix of %zu bytes", i);
    free(p);
  }
  ck_assert_int_eq(srv_http_parse(s, n, &r), (ssize_t)n);
}
END_TEST

START_TEST(bad_heads) {
  static const char *const bad[] = {
    "\r\n\r\n",
    " GET /metrics HTTP/1.1\r\n\r\n",
    "GET  /metrics HTTP/1.1\r\n\r\n",
    "GET /metrics\r\n\r\n",                    /* HTTP/0.9 */
    "GET /metrics HTTP/2.0\r\n\r\n",
    "GET /metrics HTTP/1.1 \r\n\r\n",
    "GET /metrics HTTP/1.x\r\n\r\n",
    "GET /met\x01rics HTTP/1.1\r\n\r\n",
    "GET /metrics HTTP/1.1\r\nNo colon\r\n\r\n",
    "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
    "GET /metrics HTTP/1.1\r\nX: a\x01\r\n\r\n",
    "GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
    "GET /metrics HTTP/1.1\rX: y\r\n\r\n",      /* a CR alone */
    "GETTINGVERYLONGMETHOD /metrics HTTP/1.1\r\n\r\n",
  };
  struct srv_http_req r;

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(parse(bad[i], &r) == -EBADMSG, "accepted: %s", bad[i]);
}
END_TEST

/* Garbage is refused at once, not after waiting for a newline that may never come. */
START_TEST(garbage_refused_early) {
  struct srv_http_req r;

  ck_assert_int_eq(parse("\x16\x03\x01\x02", &r), -EBADMSG); /* a TLS ClientHello */
  ck_assert_int_eq(parse("{\"json\"", &r), -EBADMSG);
  ck_assert_int_eq(parse("GET /\x7f", &r), -EBADMSG);
  ck_assert_int_eq(parse("GET /metrics HTTP/1.1\r\nX: \x02", &r), -EBADMSG);
  ck_assert_int_eq(parse("GET /metrics HTTP/1.1\r", &r), 0); /* its LF may follow */
}
END_TEST

/* Random bytes: never a crash or a read past the end (ASan), never a length beyond n. */
START_TEST(random_bytes) {
  static const char alphabet[] = "GET /mtrics HTP1.0\r\n:x\x01";
  struct srv_http_req r;
  unsigned seed = 12345;

  for (int round = 0; round < 20000; round++) {
    size_t n = (size_t)(rand_r(&seed) % 64), i;
    char *p = malloc(n ? n : 1);
    for (i = 0; i < n; i++)
      p[i] = rand_r(&seed) % 4 ? alphabet[rand_r(&seed) % (sizeof alphabet - 1)]
                               : (char)rand_r(&seed);
    ssize_t got = srv_http_parse(p, n, &r);
    ck_assert(got == 0 || got == -EBADMSG || (got > 0 && (size_t)got <= n));
    free(p);
  }
}
END_TEST

static Suite *httpd_suite(void) {
  Suite *s = suite_create("httpd");
  TCase *tc = tcase_create("parse");

  tcase_add_test(tc, get_metrics);
  tcase_add_test(tc, length_excludes_what_follows);
  tcase_add_test(tc, statuses);
  tcase_add_test(tc, prefixes_need_more);
  tcase_add_test(tc, bad_heads);
  tcase_add_test(tc, garbage_refused_early);
  tcase_add_test(tc, random_bytes);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(httpd_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
