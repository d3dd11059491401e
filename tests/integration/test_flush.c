/* test_flush.c - write-back under load and after a crash: shmdt of thousands of scattered
 * dirty runs, the background write-back (DSHM_FLUSH_MS) and a writer killed with SIGKILL. */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define KEYSTR(buf, key) (snprintf(buf, sizeof buf, "%d", key), buf)

static struct h_server srv;
static char log_path[64] = ""; /* the verbose server's stderr, for tests that read it */

static void setup(void) {
  h_server_start(&srv);
}

static void teardown(void) {
  h_server_stop(&srv);
  if (log_path[0] != '\0')
    unlink(log_path);
}

static void setup_verbose(void) {
  h_server_start_logged(&srv, log_path);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int logged_flush_of(uint32_t page) {
  return h_logged_flush_of(log_path, page);
}

/* Waits (bounded) for logged_flush_of(page): a condition, polled at 10 ms. */
static int await_flush_of(uint32_t page, int timeout_ms) {
  long deadline = now_ms() + timeout_ms;

  while (!logged_flush_of(page)) {
    if (now_ms() > deadline)
      return 0;
    poll(NULL, 0, 10);
  }
  return 1;
}

static void ok_exit(const struct h_result *r, const char *what) {
  ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0, "%s: status %#x: %s%s",
                what, r->status, r->out, r->err);
}

/* shmdt writes back 3000 separate dirty runs in batches of WRITE_DATA. The shim's I/O
 * thread used to lose the wake-up for frames queued while it emptied its pipe (a poke
 * flag left set with no record behind it): the batch then waited for replies to frames
 * never sent, and shmdt failed with ETIMEDOUT after DSHM_TIMEOUT_MS. */
START_TEST(test_scattered_writeback) {
  char k[16];
  char *argv[] = {"flush", "scatter", KEYSTR(k, h_unique_key()), "3000", NULL};
  /* No background write-back: every run must still be dirty at shmdt. */
  char *env[] = {"DSHM_TIMEOUT_MS=20000", "DSHM_FLUSH_MS=0", NULL};
  struct h_proc p;
  struct h_result r;

  for (int round = 0; round < 3; round++) {
    h_spawn_env(&p, srv.addr, argv, env);
    h_wait(&p, &r, 120000);
    ok_exit(&r, "scatter");
    ck_assert_str_eq(r.out, "detached\n");
    ck_assert_msg(strstr(r.err, "write-back") == NULL, "%s", r.err);
  }
}
END_TEST

#define WPAGES   200  /* pattern pages of the killed writer */
#define WMARKER  (WPAGES + 65 - 1) /* its marker page (tests/progs/flush.c, GAP) */

/* Runs the killed-writer scenario: writer writes WPAGES pages, then its marker page, and
 * says "written"; if wait_flush, the test waits until the server logged a background
 * write-back of the marker page; then SIGKILL, and a fresh reader counts intact pages.
 * Why the marker proves it: the marker page is acquired only after every pattern store,
 * and a write-back period scans a segment under the cache lock, in page order, from page 0
 * (flush.c), so the period that wrote the marker back also wrote back every pattern page
 * still dirty, in WRITE_DATAs that the server processed before the marker's. */
static void killed_writer(char *const env[], int wait_flush, const char *want) {
  char k[16];
  char *wr[] = {"flush", "write", KEYSTR(k, h_unique_key()), "200", NULL};
  char *ck[] = {"flush", "check", k, "200", NULL};
  struct h_proc w, c;
  struct h_result r;

  h_spawn_env(&w, srv.addr, wr, env);
  h_expect_line(&w, "written", 30000);
  if (wait_flush)
    ck_assert_msg(await_flush_of(WMARKER, 20000),
                  "no background write-back of page %d logged within 20 s", WMARKER);
  ck_assert_int_eq(kill(w.pid, SIGKILL), 0);
  h_wait(&w, &r, 10000);
  ck_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL);
  h_spawn(&c, &srv, ck);
  h_wait(&c, &r, 60000);
  ok_exit(&r, "check");
  ck_assert_str_eq(r.out, want);
}

/* Default DSHM_FLUSH_MS: what was written one period before the kill survives it. */
START_TEST(test_killed_writer_flushed) {
  killed_writer(NULL, 1, "intact 200 of 200\n");
}
END_TEST

/* The same with a period of 20 ms. */
START_TEST(test_killed_writer_flushed_fast) {
  char *env[] = {"DSHM_FLUSH_MS=20", NULL};
  killed_writer(env, 1, "intact 200 of 200\n");
}
END_TEST

/* DSHM_FLUSH_MS=0: the agent writes nothing back before the kill, yet nothing is lost: the
 * writes are in the host's memory, which the writer's death does not touch, and reach the
 * reader through coherence, as with the kernel. */
START_TEST(test_killed_writer_no_flush) {
  char *env[] = {"DSHM_FLUSH_MS=0", NULL};

  killed_writer(env, 0, "intact 200 of 200\n");
  ck_assert(!logged_flush_of(WMARKER));
}
END_TEST

static Suite *flush_suite(void) {
  Suite *s = suite_create("flush");
  TCase *tc = tcase_create("flush");
  TCase *tk = tcase_create("killed");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_scattered_writeback);
  suite_add_tcase(s, tc);
  tcase_add_checked_fixture(tk, setup_verbose, teardown);
  tcase_set_timeout(tk, 120);
  tcase_add_test(tk, test_killed_writer_flushed);
  tcase_add_test(tk, test_killed_writer_flushed_fast);
  tcase_add_test(tk, test_killed_writer_no_flush);
  suite_add_tcase(s, tk);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(flush_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
