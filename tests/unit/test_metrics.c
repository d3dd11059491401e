/* test_metrics.c - the figures' exposition format, the histogram's buckets and the log line
 * formats (text and JSON). The integration test (test_metrics.py) parses a live server's
 * exposition with Prometheus' own parser. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

static char *render(const struct srv_gauges *g) {
  struct srv_mbuf b = {0};

  ck_assert_int_eq(srv_metrics_render(&b, g), 0);
  srv_mbuf_printf(&b, "%s", ""); /* NUL-terminated by vsnprintf */
  ck_assert_ptr_nonnull(b.p);
  return b.p;
}

/* The value of the sample whose line starts with "name " or "name{labels} ", or -1. */
static double sample(const char *text, const char *series) {
  size_t n = strlen(series);
  const char *p = text;

  while ((p = strstr(p, series)) != NULL) {
    if ((p == text || p[-1] == '\n') && p[n] == ' ')
      return strtod(p + n + 1, NULL);
    p += n;
  }
  return -1;
}

/* Every line is a comment (HELP or TYPE) or a sample "name[{labels}] value" whose family
 * was typed before it, and every family is typed once. */
START_TEST(exposition_is_well_formed) {
  struct srv_gauges g = {.conns_ready = 2, .segments = 3, .start_time = 1.5};
  char *text, *line, *save = NULL;
  char typed[256][80];
  int ntyped = 0, nsamples = 0;

  srv_metrics_reset();
  text = render(&g);
  ck_assert(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
  for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char name[80], type[32];
    if (strncmp(line, "# HELP ", 7) == 0)
      continue;
    if (sscanf(line, "# TYPE %79s %31s", name, type) == 2) {
      ck_assert_msg(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
                        !strcmp(type, "histogram"), "%s", line);
      for (int i = 0; i < ntyped; i++)
        ck_assert_msg(strcmp(typed[i], name) != 0, "typed twice: %s", name);
      ck_assert_int_lt(ntyped, 256);
      strcpy(typed[ntyped++], name);
      continue;
    }
    ck_assert_msg(line[0] != '#', "unknown comment: %s", line);
    /* name[{labels}] value: the family is the longest typed name the sample starts with. */
    size_t nlen = strcspn(line, "{ ");
    ck_assert_msg(line[nlen] == '{' || line[nlen] == ' ', "%s", line);
    int found = 0;
    for (int i = 0; i < ntyped && !found; i++) {
      size_t t = strlen(typed[i]);
      found = !strncmp(line, typed[i], t) &&
              (t == nlen || (nlen > t && (!strcmp(line + t, "_total") ||
                                          !strncmp(line + t, "_total", nlen - t) ||
                                          !strncmp(line + t, "_bucket", nlen - t) ||
                                          !strncmp(line + t, "_sum", nlen - t) ||
                                          !strncmp(line + t, "_count", nlen - t))));
    }
    ck_assert_msg(found, "sample of an untyped family: %s", line);
    ck_assert_msg(strncmp(line, "dshm_server_", 12) == 0, "%s", line);
    const char *v = strrchr(line, ' ');
    char *end;
    strtod(v + 1, &end);
    ck_assert_msg(*end == '\0' || !strcmp(v + 1, "+Inf"), "bad value: %s", line);
    nsamples++;
  }
  ck_assert_int_gt(nsamples, 100);
  free(text);
}
END_TEST

START_TEST(counters_and_gauges_show_their_values) {
  struct srv_gauges g = {.conns_ready = 2, .conns_hello = 1, .segments = 3,
                         .segment_bytes = 12345, .sem_sets = 4, .pending_page_reqs = 7};
  char *text;

  srv_metrics_reset();
  srv_metrics_inc(SRV_M_CONN_ACCEPTED);
  srv_metrics_add(SRV_M_BYTES_IN, 1000);
  srv_metrics_inc(SRV_M_CLOSED_AUTH);
  srv_metrics_inc(SRV_M_CLOSED_AUTH);
  srv_metrics_rx(PROTO_OP_READ_DATA);
  srv_metrics_rx(PROTO_OP_READ_DATA);
  srv_metrics_rx(PROTO_OP_MAX_); /* out of range: ignored */
  srv_metrics.dir_pages = 10;
  srv_metrics_page_moved(0, 1);
  srv_metrics_page_moved(0, 2);
  srv_metrics_page_moved(0, 2);
  srv_metrics_page_moved(2, 1);
  text = render(&g);
  ck_assert(sample(text, "dshm_server_connections_accepted_total") == 1);
  ck_assert(sample(text, "dshm_server_received_bytes_total") == 1000);
  ck_assert(sample(text, "dshm_server_connections_closed_total{reason=\"auth\"}") == 2);
  ck_assert(sample(text, "dshm_server_connections_closed_total{reason=\"error\"}") == 0);
  ck_assert(sample(text, "dshm_server_messages_received_total{op=\"READ_DATA\"}") == 2);
  ck_assert(sample(text, "dshm_server_messages_received_total{op=\"ACQUIRE\"}") == 0);
  ck_assert(sample(text, "dshm_server_nodes") == 2);
  ck_assert(sample(text, "dshm_server_connections{state=\"hello\"}") == 1);
  ck_assert(sample(text, "dshm_server_segments") == 3);
  ck_assert(sample(text, "dshm_server_segment_bytes") == 12345);
  ck_assert(sample(text, "dshm_server_semaphore_sets") == 4);
  ck_assert(sample(text, "dshm_server_pending_page_requests") == 7);
  ck_assert(sample(text, "dshm_server_pages{state=\"shared\"}") == 2);
  ck_assert(sample(text, "dshm_server_pages{state=\"exclusive\"}") == 1);
  ck_assert(sample(text, "dshm_server_pages{state=\"invalid\"}") == 7);
  free(text);
}
END_TEST

/* Bucket i holds durations in (2^(i-1), 2^i] microseconds; buckets are cumulative. */
START_TEST(histogram_buckets) {
  struct srv_gauges g = {0};
  char *text;

  srv_metrics_reset();
  srv_metrics_observe(SRV_RC_SHM, 0);
  srv_metrics_observe(SRV_RC_SHM, 1000);    /* exactly 1 us: le 1e-06 */
  srv_metrics_observe(SRV_RC_SHM, 1001);    /* le 2e-06 */
  srv_metrics_observe(SRV_RC_SHM, 2000);    /* le 2e-06 */
  srv_metrics_observe(SRV_RC_SHM, 2001);    /* le 4e-06 */
  srv_metrics_observe(SRV_RC_SHM, 100ull * 1000000000); /* 100 s: +Inf only */
  srv_metrics_observe(SRV_RC_COUNT_, 5);    /* no such class: ignored */
  ck_assert_uint_eq(srv_metrics.lat[SRV_RC_SHM].bucket[0], 2);
  ck_assert_uint_eq(srv_metrics.lat[SRV_RC_SHM].bucket[1], 2);
  ck_assert_uint_eq(srv_metrics.lat[SRV_RC_SHM].bucket[2], 1);
  text = render(&g);
#define B(le) "dshm_server_request_duration_seconds_bucket{class=\"shm\",le=\"" le "\"}"
  ck_assert(sample(text, B("1e-06")) == 2);
  ck_assert(sample(text, B("2e-06")) == 4);
  ck_assert(sample(text, B("4e-06")) == 5);
  ck_assert(sample(text, B("33.554432")) == 5);
  ck_assert(sample(text, B("+Inf")) == 6);
#undef B
  ck_assert(sample(text, "dshm_server_request_duration_seconds_count{class=\"shm\"}") == 6);
  double sum = sample(text, "dshm_server_request_duration_seconds_sum{class=\"shm\"}");
  ck_assert(sum > 100.000006 && sum < 100.000007);
  ck_assert(sample(text, "dshm_server_request_duration_seconds_count{class=\"read\"}") == 0);
  free(text);
}
END_TEST

START_TEST(log_text_line) {
  char out[4096];
  size_t n = srv__log_format(out, sizeof out, 0, SRV_LOG_WARN, "node 3 closed: x", 0, 0);

  out[n] = '\0';
  ck_assert_str_eq(out, "dshm-server: warn: node 3 closed: x\n");
}
END_TEST

START_TEST(log_json_line) {
  char out[4096];
  size_t n;

  /* 2026-12-01T17:00:00.123Z */
  n = srv__log_format(out, sizeof out, 1, SRV_LOG_INFO, "node 12 (a \"b\"\\c) closed:\tx\n",
                      1796144400, 123456789);
  out[n] = '\0';
  ck_assert_str_eq(out, "{\"ts\":\"2026-12-01T17:00:00.123Z\",\"level\":\"info\",\"msg\":"
                        "\"node 12 (a \\\"b\\\"\\\\c) closed:\\tx\\n\",\"node\":12}\n");
  n = srv__log_format(out, sizeof out, 1, SRV_LOG_ERROR, "bad \x01 \xff \xc3\xa9 nodes", 0, 0);
  out[n] = '\0';
  ck_assert_str_eq(out, "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"level\":\"error\",\"msg\":"
                        "\"bad \\u0001 \\ufffd \xc3\xa9 nodes\"}\n");
}
END_TEST

/* A message too long for the line is cut at a character, and the line stays valid JSON. */
START_TEST(log_json_truncation) {
  char msg[600], out[256];
  size_t n;

  memset(msg, '"', sizeof msg - 1);
  msg[sizeof msg - 1] = '\0';
  n = srv__log_format(out, sizeof out, 1, SRV_LOG_DEBUG, msg, 0, 0);
  ck_assert_uint_le(n, sizeof out);
  ck_assert(out[n - 1] == '\n' && out[n - 2] == '}' && out[n - 3] == '"');
  ck_assert(out[n - 4] == '"' && out[n - 5] == '\\'); /* a whole escape, then the quote */
}
END_TEST

static Suite *metrics_suite(void) {
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("metrics");

  tcase_add_test(tc, exposition_is_well_formed);
  tcase_add_test(tc, counters_and_gauges_show_their_values);
  tcase_add_test(tc, histogram_buckets);
  tcase_add_test(tc, log_text_line);
  tcase_add_test(tc, log_json_line);
  tcase_add_test(tc, log_json_truncation);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(metrics_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
