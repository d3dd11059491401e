/* test_metrics.c - the server's figures (--metrics) against known traffic, parsed by
 * Prometheus' own text parser (metrics_parse.py); the endpoint against garbage, oversized,
 * silent and too many clients; --log-format json parsed line by line. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define PAGE   4096
#define NPAGES 16

struct msrv {
  struct h_server h;
  int mport;              /* the metrics endpoint's port */
  char dir[64];           /* temporary: the server's log, scrapes, host B's agent dir */
  char log[128];          /* the server's stderr */
};

static const char *need(const char *name) {
  const char *v = getenv(name);
  ck_assert_msg(v != NULL && *v, "%s is not set (run the tests through meson)", name);
  return v;
}

/* Starts dshm-server --port 0 --metrics 127.0.0.1:0 [extra], stderr to dir/server.log, and
 * reads its two stdout lines (text or JSON: the same words are in both). */
static void msrv_start(struct msrv *s, const char *extra) {
  const char *args[] = {"--port", "0", "--metrics", "127.0.0.1:0", extra, NULL};
  char line[512];
  const char *p;
  int out[1];

  snprintf(s->dir, sizeof s->dir, "/tmp/dshm-metrics-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(s->dir));
  chmod(s->dir, 0755);
  snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
  out[0] = h_server_exec(&s->h.pid, args, s->log);
  ck_assert_msg(h_read_line(out[0], line, sizeof line, 15000) == 0, "server did not start");
  p = strstr(line, "listening on 127.0.0.1:");
  ck_assert_msg(p && sscanf(p, "listening on 127.0.0.1:%d", &s->h.port) == 1, "%s", line);
  snprintf(s->h.addr, sizeof s->h.addr, "127.0.0.1:%d", s->h.port);
  ck_assert_msg(h_read_line(out[0], line, sizeof line, 15000) == 0, "no metrics line");
  p = strstr(line, "metrics on http://127.0.0.1:");
  ck_assert_msg(p && sscanf(p, "metrics on http://127.0.0.1:%d/metrics", &s->mport) == 1,
                "%s", line);
  ck_assert_int_gt(s->mport, 0);
  close(out[0]);
}

static void msrv_stop(struct msrv *s) {
  char cmd[128];

  h_server_stop(&s->h); /* exit 0: in the sanitizer build, no leak either */
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
  ck_assert_int_eq(system(cmd), 0);
}

static int connect_to(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  ck_assert_int_ge(fd, 0);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s",
                strerror(errno));
  return fd;
}

/* Reads until EOF (the server closes after one response) within timeout_ms; the bytes read,
 * or -1 on timeout. */
static ssize_t read_all(int fd, char *buf, size_t cap, int timeout_ms) {
  long deadline = h_now_ms() + timeout_ms;
  size_t n = 0;

  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    long left = deadline - h_now_ms();
    ssize_t r;
    if (left <= 0 || poll(&p, 1, (int)left) <= 0)
      return -1;
    r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == ECONNRESET)
      r = 0;
    ck_assert_int_ge(r, 0);
    if (r == 0 || n + (size_t)r == cap - 1) {
      n += (size_t)r;
      buf[n] = '\0';
      return (ssize_t)n;
    }
    n += (size_t)r;
  }
}

/* Sends req whole and returns the response (malloc'd, NUL-terminated). */
static char *http(int port, const char *req, size_t len) {
  size_t cap = 1 << 20;
  char *buf = malloc(cap);
  int fd = connect_to(port);

  ck_assert_ptr_nonnull(buf);
  ck_assert_int_eq(write(fd, req, len), (ssize_t)len);
  ck_assert_msg(read_all(fd, buf, cap, 10000) >= 0, "no response to %.40s", req);
  close(fd);
  return buf;
}

/* The samples of one scrape, as metrics_parse.py prints them. */
struct scrape {
  char *text;
  char *line[4096];
  int n;
};

/* Runs metrics_parse.py MODE on the file in, its output into *sc (exit status asserted 0). */
static void run_parser(const char *mode, const char *in, struct scrape *sc) {
  char cmd[1024], *save = NULL, *l;
  size_t cap = 1 << 20, n = 0;
  FILE *f;
  int st;

  snprintf(cmd, sizeof cmd, "'%s' '%s' %s < '%s'", need("DSHM_TEST_PYTHON"),
           need("DSHM_TEST_METRICS_PY"), mode, in);
  f = popen(cmd, "r");
  ck_assert_ptr_nonnull(f);
  sc->text = malloc(cap);
  ck_assert_ptr_nonnull(sc->text);
  for (size_t r; (r = fread(sc->text + n, 1, cap - 1 - n, f)) > 0;)
    n += r;
  sc->text[n] = '\0';
  st = pclose(f);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "metrics_parse.py %s failed (status %#x; 2: python3-prometheus-client missing)",
                mode, st);
  sc->n = 0;
  for (l = strtok_r(sc->text, "\n", &save); l && sc->n < 4096; l = strtok_r(NULL, "\n", &save))
    sc->line[sc->n++] = l;
}

static void scrape(const struct msrv *s, struct scrape *sc) {
  static const char req[] = "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";
  char *resp = http(s->mport, req, sizeof req - 1), *body, path[160];
  FILE *f;

  ck_assert_msg(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "%.200s", resp);
  ck_assert_ptr_nonnull(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4"));
  body = strstr(resp, "\r\n\r\n");
  ck_assert_ptr_nonnull(body);
  body += 4;
  {
    long clen = strtol(strstr(resp, "Content-Length: ") + 16, NULL, 10);
    ck_assert_int_eq(clen, (long)strlen(body));
  }
  snprintf(path, sizeof path, "%s/scrape.txt", s->dir);
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(body, f);
  fclose(f);
  free(resp);
  run_parser("prom", path, sc);
}

/* The value of one series, written as metrics_parse.py prints it ('name{k="v"}'). */
static double val(const struct scrape *sc, const char *series) {
  size_t n = strlen(series);

  for (int i = 0; i < sc->n; i++)
    if (strncmp(sc->line[i], series, n) == 0 && sc->line[i][n] == ' ')
      return strtod(sc->line[i] + n + 1, NULL);
  ck_abort_msg("no series %s in the scrape", series);
  return 0;
}

#define RX(op) "dshm_server_messages_received_total{op=\"" op "\"}"
#define LAT(cls) "dshm_server_request_duration_seconds_count{class=\"" cls "\"}"

static void run_on(const struct msrv *s, const char *agent_dir, char *const argv[]) {
  char env_dir[256];
  char *env[] = {env_dir, NULL};
  struct h_result r;
  struct h_proc p;

  snprintf(env_dir, sizeof env_dir, "DSHM_AGENT_DIR=%s", agent_dir);
  h_spawn_env(&p, s->h.addr, argv, agent_dir ? env : NULL);
  h_wait(&p, &r, 60000);
  ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                "%s: status %#x; stdout: %s stderr: %s", argv[1], r.status, r.out, r.err);
}

/* Polls the figures until no node is connected (the agents leave DSHM_AGENT_IDLE_MS after
 * their last process). */
static void wait_no_nodes(const struct msrv *s, struct scrape *sc) {
  long deadline = h_now_ms() + 20000;

  for (;;) {
    scrape(s, sc);
    if (val(sc, "dshm_server_connections{state=\"ready\"}") == 0 &&
        val(sc, "dshm_server_connections{state=\"closing\"}") == 0 &&
        val(sc, "dshm_server_connections{state=\"hello\"}") == 0)
      return;
    ck_assert_msg(h_now_ms() < deadline, "the agents did not leave");
    free(sc->text);
    usleep(100 * 1000);
  }
}

/* Host A fills NPAGES pages, host B reads them back: every figure the protocol makes exact
 * is checked exactly, the others within bounds. */
START_TEST(figures_match_known_traffic) {
  struct msrv s;
  struct scrape sc;
  char key[32], size[32], host_b[128];
  double granted_x, granted_s, grants, reqs;

  msrv_start(&s, NULL);
  scrape(&s, &sc);
  ck_assert(val(&sc, "dshm_server_connections_accepted_total") == 0);
  ck_assert(val(&sc, "dshm_server_segments") == 0);
  ck_assert(val(&sc, "dshm_server_pages{state=\"invalid\"}") == 0);
  ck_assert(val(&sc, "dshm_server_info{version=\"" DSHM_VERSION "\"}") == 1);
  ck_assert(val(&sc, "dshm_server_metrics_requests_total{code=\"200\"}") == 0);
  free(sc.text);

  snprintf(key, sizeof key, "%d", h_unique_key());
  snprintf(size, sizeof size, "%d", NPAGES * PAGE);
  snprintf(host_b, sizeof host_b, "%s/host-b", s.dir);
  ck_assert_int_eq(mkdir(host_b, 01777), 0);
  chmod(host_b, 01777);
  run_on(&s, NULL, (char *[]){"shmtool", "fill", key, size, "5", NULL});
  run_on(&s, host_b, (char *[]){"shmtool", "verify", key, size, "5", NULL});
  wait_no_nodes(&s, &sc);

  /* Exact: two hosts, one connection each, one HELLO each, both gone. */
  ck_assert(val(&sc, "dshm_server_connections_accepted_total") == 2);
  ck_assert(val(&sc, RX("HELLO")) == 2);
  ck_assert(val(&sc, "dshm_server_connections_closed_total{reason=\"disconnect\"}") == 2);
  ck_assert(val(&sc, "dshm_server_nodes") == 0);
  /* Exact: one segment of NPAGES pages, kept (never removed); two shmget, two shmat. */
  ck_assert(val(&sc, "dshm_server_segments") == 1);
  ck_assert(val(&sc, "dshm_server_segment_bytes") == NPAGES * PAGE);
  ck_assert(val(&sc, "dshm_server_segment_pages") == NPAGES);
  ck_assert(val(&sc, RX("CREATE_SEGMENT")) == 2);
  ck_assert(val(&sc, RX("ATTACH_SEGMENT")) == 2);
  /* Exact: nobody holds a page any more; every page is in the directory. */
  ck_assert(val(&sc, "dshm_server_pages{state=\"invalid\"}") == NPAGES);
  ck_assert(val(&sc, "dshm_server_pages{state=\"shared\"}") == 0);
  ck_assert(val(&sc, "dshm_server_pages{state=\"exclusive\"}") == 0);
  ck_assert(val(&sc, "dshm_server_pending_page_requests") == 0);
  /* Bounds: A acquired every page at least once and wrote every one back; B read every
   * page, each with its data (it never had any). Read-ahead makes fewer grants than pages. */
  granted_x = val(&sc, "dshm_server_pages_granted_total{mode=\"exclusive\"}");
  granted_s = val(&sc, "dshm_server_pages_granted_total{mode=\"shared\"}");
  ck_assert_msg(granted_x >= NPAGES, "%g", granted_x);
  ck_assert_msg(granted_s >= NPAGES, "%g", granted_s);
  ck_assert(val(&sc, "dshm_server_grant_data_pages_total") >= NPAGES);
  ck_assert(val(&sc, "dshm_server_writeback_pages_total") >= NPAGES);
  ck_assert(val(&sc, "dshm_server_writebacks_total") >= 1);
  ck_assert(val(&sc, "dshm_server_writebacks_total") == val(&sc, RX("WRITE_DATA")));
  ck_assert(val(&sc, "dshm_server_received_bytes_total") >= NPAGES * PAGE);
  ck_assert(val(&sc, "dshm_server_sent_bytes_total") >= NPAGES * PAGE);
  /* Exact: every page request was answered (nothing pending, nobody left mid-request), and
   * each answer was timed once in its class. */
  grants = val(&sc, "dshm_server_page_grants_total{mode=\"exclusive\"}") +
           val(&sc, "dshm_server_page_grants_total{mode=\"shared\"}");
  reqs = val(&sc, RX("READ_DATA")) + val(&sc, RX("ACQUIRE"));
  ck_assert_msg(grants >= 2 && grants <= granted_x + granted_s, "%g", grants);
  ck_assert_msg(reqs == grants + val(&sc, "dshm_server_page_request_errors_total"),
                "%g requests, %g grants", reqs, grants);
  ck_assert(val(&sc, LAT("read")) + val(&sc, LAT("acquire")) == reqs);
  ck_assert(val(&sc, LAT("read")) == val(&sc, RX("READ_DATA")));
  ck_assert(val(&sc, LAT("shm")) ==
            val(&sc, RX("CREATE_SEGMENT")) + val(&sc, RX("ATTACH_SEGMENT")) +
                val(&sc, RX("DETACH_SEGMENT")) + val(&sc, RX("REMOVE_SEGMENT")) +
                val(&sc, RX("SHMCTL")) + val(&sc, RX("REATTACH")) + val(&sc, RX("INHERIT")));
  ck_assert(val(&sc, LAT("write")) == val(&sc, RX("WRITE_DATA")));
  /* B's reads found nobody holding the pages: no recall, no invalidation. */
  ck_assert(val(&sc, "dshm_server_recalls_sent_total") == 0);
  ck_assert(val(&sc, "dshm_server_invalidations_sent_total") == 0);
  /* The scrapes before this one (a scrape is counted once its body is made). */
  ck_assert(val(&sc, "dshm_server_metrics_requests_total{code=\"200\"}") >= 2);
  free(sc.text);
  msrv_stop(&s);
}
END_TEST

/* A page held EXCLUSIVE by a live process on host A, then read by host B: one recall, and
 * the page goes from exclusive to shared. */
START_TEST(page_states_follow_a_recall) {
  struct msrv s;
  struct scrape sc;
  char key[32], host_b[128];
  struct h_proc holder;
  struct h_result r;

  msrv_start(&s, NULL);
  snprintf(key, sizeof key, "%d", h_unique_key());
  snprintf(host_b, sizeof host_b, "%s/host-b", s.dir);
  ck_assert_int_eq(mkdir(host_b, 01777), 0);
  chmod(host_b, 01777);
  h_spawn(&holder, &s.h, (char *[]){"shmtool", "hold", key, NULL});
  h_expect_line(&holder, "held", 30000);
  scrape(&s, &sc);
  ck_assert(val(&sc, "dshm_server_pages{state=\"exclusive\"}") == 1);
  ck_assert(val(&sc, "dshm_server_pages{state=\"shared\"}") == 0);
  ck_assert(val(&sc, "dshm_server_nodes") == 1);
  ck_assert(val(&sc, "dshm_server_recalls_sent_total") == 0);
  free(sc.text);

  run_on(&s, host_b, (char *[]){"shmtool", "get", key, NULL});
  scrape(&s, &sc);
  ck_assert(val(&sc, "dshm_server_recalls_sent_total") == 1);
  /* A keeps a SHARED copy after the recall (B may have left already). */
  ck_assert(val(&sc, "dshm_server_pages{state=\"exclusive\"}") == 0);
  ck_assert(val(&sc, "dshm_server_pages{state=\"shared\"}") == 1);
  free(sc.text);
  kill(holder.pid, SIGKILL);
  h_wait(&holder, &r, 10000);
  msrv_stop(&s);
}
END_TEST

/* Garbage, oversized, silent, wrong and too many clients: each gets its answer or is
 * closed, and the endpoint and the server go on serving. */
START_TEST(endpoint_survives_bad_clients) {
  struct msrv s;
  struct scrape sc;
  char *resp, big[12000], key[32];
  int idle[24], silent;
  char buf[4096];

  msrv_start(&s, NULL);
  resp = http(s.mport, "\x16\x03\x01\x02\x00garbage\r\n\r\n", 16);
  ck_assert_msg(strncmp(resp, "HTTP/1.1 400 ", 13) == 0, "%.100s", resp);
  free(resp);
  resp = http(s.mport, "POST /metrics HTTP/1.1\r\n\r\n", 26);
  ck_assert_msg(strncmp(resp, "HTTP/1.1 405 ", 13) == 0, "%.100s", resp);
  ck_assert_ptr_nonnull(strstr(resp, "\r\nAllow: GET, HEAD\r\n"));
  free(resp);
  resp = http(s.mport, "GET /other HTTP/1.0\r\n\r\n", 23);
  ck_assert_msg(strncmp(resp, "HTTP/1.1 404 ", 13) == 0, "%.100s", resp);
  free(resp);
  resp = http(s.mport, "HEAD /metrics HTTP/1.1\r\n\r\n", 26);
  ck_assert_msg(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "%.100s", resp);
  ck_assert_msg(strlen(strstr(resp, "\r\n\r\n")) == 4, "HEAD got a body");
  free(resp);
  /* A head that never ends: refused at the 8 KiB cap, not buffered on. */
  memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
  memset(big + 26, 'a', sizeof big - 26);
  resp = http(s.mport, big, sizeof big);
  ck_assert_msg(strncmp(resp, "HTTP/1.1 431 ", 13) == 0, "%.100s", resp);
  free(resp);

  /* Silent clients fill the endpoint: past 16 at once, the next gets 503 at once; the
   * silent ones are closed at the 5 s deadline. The clients above are gone first (a
   * lingering close ends when the server reads their EOF, after they read the response). */
  usleep(300 * 1000);
  for (int i = 0; i < 16; i++)
    idle[i] = connect_to(s.mport);
  usleep(300 * 1000); /* accepted by now */
  resp = http(s.mport, "GET /metrics HTTP/1.1\r\n\r\n", 25);
  ck_assert_msg(strncmp(resp, "HTTP/1.1 503 ", 13) == 0, "%.100s", resp);
  free(resp);
  silent = idle[0];
  ck_assert_msg(read_all(silent, buf, sizeof buf, 9000) == 0, "a silent client was not closed");
  for (int i = 0; i < 16; i++) {
    ck_assert_msg(read_all(idle[i], buf, sizeof buf, 9000) == 0, "silent client %d", i);
    close(idle[i]);
  }
  usleep(300 * 1000); /* the server has freed their slots */
  /* A slow client that sends half a request and stops: closed at the deadline too. */
  silent = connect_to(s.mport);
  ck_assert_int_eq(write(silent, "GET /metr", 9), 9);
  ck_assert_msg(read_all(silent, buf, sizeof buf, 9000) == 0, "a slow client was not closed: %s",
                buf);
  close(silent);

  /* The endpoint and the server still work, and counted all of it. */
  snprintf(key, sizeof key, "%d", h_unique_key());
  run_on(&s, NULL, (char *[]){"shmtool", "counter", key, "100", NULL});
  scrape(&s, &sc);
  ck_assert(val(&sc, "dshm_server_metrics_requests_total{code=\"400\"}") == 1);
  ck_assert(val(&sc, "dshm_server_metrics_requests_total{code=\"404\"}") == 1);
  ck_assert(val(&sc, "dshm_server_metrics_requests_total{code=\"405\"}") == 1);
  ck_assert(val(&sc, "dshm_server_metrics_requests_total{code=\"431\"}") == 1);
  ck_assert(val(&sc, "dshm_server_metrics_requests_total{code=\"503\"}") == 1);
  ck_assert(val(&sc, "dshm_server_metrics_requests_total{code=\"closed\"}") == 17);
  /* The HEAD; a scrape is counted once its body is made, so not this one. */
  ck_assert(val(&sc, "dshm_server_metrics_requests_total{code=\"200\"}") == 1);
  ck_assert(val(&sc, "dshm_server_connections_accepted_total") >= 1);
  free(sc.text);
  msrv_stop(&s);
}
END_TEST

/* --log-format json: every line of the log is a JSON object with ts, level and msg; the
 * stdout lines carry the same words in msg (read by msrv_start). */
START_TEST(json_log_lines) {
  struct msrv s;
  struct scrape sc;
  char key[32];
  int hello = 0, closed = 0, exited = 0;

  msrv_start(&s, "--log-format=json");
  snprintf(key, sizeof key, "%d", h_unique_key());
  run_on(&s, NULL, (char *[]){"shmtool", "counter", key, "10", NULL});
  wait_no_nodes(&s, &sc);
  free(sc.text);
  h_server_stop(&s.h);
  run_parser("json", s.log, &sc);
  for (int i = 0; i < sc.n; i++) {
    hello += strncmp(sc.line[i], "info\tnode ", 10) == 0 && strstr(sc.line[i], ": hello from");
    closed += strncmp(sc.line[i], "info\tnode ", 10) == 0 && strstr(sc.line[i], "closed: disconnected");
    exited += strcmp(sc.line[i], "info\texited cleanly") == 0;
  }
  ck_assert_msg(hello == 1 && closed == 1 && exited == 1, "%d %d %d in:\n%s", hello, closed,
                exited, sc.text);
  free(sc.text);
  {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s.dir);
    ck_assert_int_eq(system(cmd), 0);
  }
}
END_TEST

/* The text log: every line carries its level after "dshm-server: ". */
START_TEST(text_log_lines_have_levels) {
  struct msrv s;
  char buf[65536], *save = NULL, *l, key[32];
  int fd, lines = 0;
  ssize_t n;

  msrv_start(&s, "--verbose");
  snprintf(key, sizeof key, "%d", h_unique_key());
  run_on(&s, NULL, (char *[]){"shmtool", "counter", key, "10", NULL});
  h_server_stop(&s.h);
  fd = open(s.log, O_RDONLY);
  ck_assert_int_ge(fd, 0);
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  ck_assert_int_gt(n, 0);
  buf[n] = '\0';
  for (l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++)
    ck_assert_msg(!strncmp(l, "dshm-server: error: ", 20) || !strncmp(l, "dshm-server: warn: ", 19) ||
                      !strncmp(l, "dshm-server: info: ", 19) ||
                      !strncmp(l, "dshm-server: debug: ", 20),
                  "a line without a level: %s", l);
  ck_assert_int_gt(lines, 5);
  ck_assert_ptr_nonnull(strstr(buf, "dshm-server: debug: node 0: ")); /* --verbose */
  {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s.dir);
    ck_assert_int_eq(system(cmd), 0);
  }
}
END_TEST

static Suite *metrics_suite(void) {
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("metrics");

  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, figures_match_known_traffic);
  tcase_add_test(tc, page_states_follow_a_recall);
  tcase_add_test(tc, endpoint_survives_bad_clients);
  tcase_add_test(tc, json_log_lines);
  tcase_add_test(tc, text_log_lines_have_levels);
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
