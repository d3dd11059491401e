/* test_transparency.c - fork, exec, exit, signals and server loss under the shim, with the kernel as the oracle. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

static struct h_server srv;

static void setup(void) {
  h_server_start(&srv);
}

static void teardown(void) {
  h_server_stop(&srv);
}

/* Runs transp with args natively and under the shim; both must exit 0 with the same output. */
static void differential(char *const argv[], struct h_result *shim) {
  struct h_result native;

  h_run_ok(NULL, argv, &native);
  h_run_ok(&srv, argv, shim);
  ck_assert_msg(strcmp(native.out, shim->out) == 0, "kernel:\n%s\nshim:\n%s\nshim stderr:\n%s",
                native.out, shim->out, shim->err);
}

/* Create, attach, fork 4 workers that add atomically: the sum is exact and nattch is 5
 * while they run, 1 after, as the kernel shows it. */
START_TEST(test_fork_workers) {
  char *argv[] = {"transp", "fork-workers", "4", "20000", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_str_eq(r.out, "nattch with workers 5\nsum 80000\nnattch after workers 1\n");
}
END_TEST

/* The parent forks while four of its threads fault on the segment the whole time. */
START_TEST(test_fork_while_threads_fault) {
  char *argv[] = {"transp", "fork-threads", "4", "20000", "6", "2000", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_str_eq(r.out, "threads sum 80000\nchildren sum 12000\nnattch 1\n");
}
END_TEST

/* The child of a child is a node too. */
START_TEST(test_fork_chain) {
  char *argv[] = {"transp", "fork-chain", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_str_eq(r.out, "grandchild nattch 3\nchild nattch 2\nsum 2000\nnattch 1\n");
}
END_TEST

/* A forked child's writes survive its exit. */
START_TEST(test_fork_exit_writes) {
  char *argv[] = {"transp", "fork-exit-writes", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_str_eq(r.out, "parent read the child's writes: yes\n");
}
END_TEST

/* exec detaches (nattch back to 0) after the dirty pages went home. */
START_TEST(test_exec_detaches) {
  char *argv[] = {"transp", "exec", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_str_eq(r.out, "nattch before exec 1\nnattch after exec 0\nwritten before exec: yes\n");
}
END_TEST

/* exit() from a thread that is not main writes back and detaches. */
START_TEST(test_exit_from_thread) {
  char *argv[] = {"transp", "exit-thread", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_str_eq(r.out, "written by an exiting thread: yes\nnattch 1\n");
}
END_TEST

/* The application's SIGSEGV handlers, flags and masks, SHM_RDONLY writes, blocked threads. */
START_TEST(test_signals) {
  char *argv[] = {"transp", "signals", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_msg(strstr(r.out, "null read: signal 11 code SEGV_MAPERR addr right\n") != NULL, "%s", r.out);
  ck_assert_msg(strstr(r.out, "rdonly write untouched: signal 11 code SEGV_ACCERR addr right\n") != NULL,
                "%s", r.out);
  ck_assert_msg(strstr(r.out, "blocked thread wrote: 42\n") != NULL, "%s", r.out);
}
END_TEST

/* Runs transp cmd natively and under the shim: both die of the same signal, same core flag. */
static void same_death(const char *cmd, int sig) {
  char *argv[] = {"transp", (char *)cmd, NULL};
  struct h_proc p;
  struct h_result native, shim;

  h_spawn(&p, NULL, argv);
  h_wait(&p, &native, 30000);
  h_spawn(&p, &srv, argv);
  h_wait(&p, &shim, 30000);
  ck_assert_msg(WIFSIGNALED(native.status) && WTERMSIG(native.status) == sig, "native %#x",
                native.status);
  ck_assert_msg(shim.status == native.status, "kernel status %#x, shim status %#x: %s",
                native.status, shim.status, shim.err);
  ck_assert_str_eq(native.out, shim.out);
}

START_TEST(test_segv_default_action) {
  same_death("segv-default", SIGSEGV);
}
END_TEST

START_TEST(test_rdonly_default_action) {
  same_death("rdonly-default", SIGSEGV);
}
END_TEST

/* The server stops answering (SIGSTOP) or dies (SIGKILL) mid-run: the shmctl call fails with
 * ETIMEDOUT or ENOTCONN, the next fault on a page not present ends in SIGBUS, bounded by
 * DSHM_TIMEOUT_MS (1 s here), never an endless hang. */
static void server_loss(int stop) {
  struct h_server own;
  struct h_proc p;
  struct h_result r;
  char *argv[] = {"transp", "lose", NULL};
  /* The harness's sanitizer options, plus: leave SIGBUS to the program (its default). */
  char *env[] = {"DSHM_TIMEOUT_MS=1000",
                 "ASAN_OPTIONS=verify_asan_link_order=0:handle_segv=0:handle_sigbus=0:"
                 "allow_user_segv_handler=1:detect_leaks=0",
                 NULL};
  int status;

  h_server_start(&own);
  h_spawn_env(&p, own.addr, argv, env);
  h_expect_line(&p, "ready", 30000);
  ck_assert_int_eq(kill(own.pid, stop ? SIGSTOP : SIGKILL), 0);
  if (stop)
    h_expect_line(&p, "shmctl: ETIMEDOUT", 15000);
  else
    h_expect_line(&p, "shmctl: ENOTCONN", 15000);
  h_wait(&p, &r, 15000);
  ck_assert_msg(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGBUS, "status %#x: %s",
                r.status, r.err);
  if (stop) {
    kill(own.pid, SIGCONT);
    h_server_stop(&own);
  } else {
    ck_assert_int_eq(waitpid(own.pid, &status, 0), own.pid);
  }
}

START_TEST(test_server_stopped) {
  server_loss(1);
}
END_TEST

START_TEST(test_server_killed) {
  server_loss(0);
}
END_TEST

/* stress-ng's SHM_REMAP pattern: the second attachment replaces the first (issue 9). */
START_TEST(test_remap_replaces) {
  char *argv[] = {"transp", "remap", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_str_eq(r.out, "same address: yes\nnattch after remap 1\n"
                          "read through the new attachment 42\nshmdt 0\nnattch after shmdt 0\n"
                          "second shmdt EINVAL\nown memory there: intact\n");
}
END_TEST

/* munmap over a view detaches it; the program's later memory there is its own. */
START_TEST(test_munmap_view) {
  char *argv[] = {"transp", "unmap-view", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_str_eq(r.out, "nattch 0\nshmdt there EINVAL\nown memory there: intact\n"
                          "segment keeps 7\n");
}
END_TEST

/* mmap(MAP_FIXED) over a view: the same. */
START_TEST(test_mmap_over_view) {
  char *argv[] = {"transp", "mmap-over-view", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_str_eq(r.out, "nattch 0\nshmdt there EINVAL\nown memory there: intact\n"
                          "segment keeps 7\n");
}
END_TEST

/* shmat at an address whose hole the segment fits exactly. */
START_TEST(test_exact_hole) {
  char *argv[] = {"transp", "exact-hole", NULL};
  struct h_result r;

  differential(argv, &r);
  ck_assert_str_eq(r.out, "attached in an exact hole: yes\nwritten: 2\n");
}
END_TEST

static Suite *transparency_suite(void) {
  Suite *s = suite_create("transparency");
  TCase *tc = tcase_create("fork-exec-signals");
  TCase *loss = tcase_create("server-loss");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_fork_workers);
  tcase_add_test(tc, test_fork_while_threads_fault);
  tcase_add_test(tc, test_remap_replaces);
  tcase_add_test(tc, test_munmap_view);
  tcase_add_test(tc, test_mmap_over_view);
  tcase_add_test(tc, test_exact_hole);
  tcase_add_test(tc, test_fork_chain);
  tcase_add_test(tc, test_fork_exit_writes);
  tcase_add_test(tc, test_exec_detaches);
  tcase_add_test(tc, test_exit_from_thread);
  tcase_add_test(tc, test_signals);
  tcase_add_test(tc, test_segv_default_action);
  tcase_add_test(tc, test_rdonly_default_action);
  suite_add_tcase(s, tc);
  tcase_set_timeout(loss, 60);
  tcase_add_test(loss, test_server_stopped);
  tcase_add_test(loss, test_server_killed);
  suite_add_tcase(s, loss);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(transparency_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
