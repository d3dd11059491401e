/* test_persist.c - --data-dir, SIGTERM and restarts with a real server and real preloaded
 * programs (tests/progs/persist.c): segments come back with the same ids, IPC_STAT fields
 * and data; a corrupt data dir or a second server on it is refused. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define KEYSTR(buf, key) (snprintf(buf, sizeof buf, "%d", key), buf)

static char dir[64];

static void setup(void) {
  strcpy(dir, "/tmp/dshm_test_persist_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static void start(struct h_server *s, int port) {
  char *extra[] = {"--data-dir", dir, "--grace-ms", "3000", NULL};
  h_server_start_args(s, port, extra);
}

/* Runs the server expecting it to refuse to start: exit status 1, and stderr has want. */
static void expect_refusal(const char *want) {
  const char *bin = getenv("DSHM_TEST_SERVER");
  char err[8192] = "";
  size_t len = 0;
  int fds[2], status;
  pid_t pid;

  ck_assert_ptr_nonnull(bin);
  ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fds[1], STDERR_FILENO);
    dup2(fds[1], STDOUT_FILENO);
    execl(bin, bin, "--port", "0", "--data-dir", dir, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  for (;;) {
    struct pollfd p = {fds[0], POLLIN, 0};
    ssize_t n;
    ck_assert_msg(poll(&p, 1, 20000) == 1, "the server did not exit; output: %s", err);
    n = read(fds[0], err + len, sizeof err - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
    err[len] = '\0';
  }
  close(fds[0]);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %#x: %s", status, err);
  ck_assert_msg(strstr(err, want) != NULL, "wanted \"%s\" in: %s", want, err);
  ck_assert_msg(strstr(err, "listening") == NULL, "it listened: %s", err);
}

/* make, stat; restart (SIGTERM or SIGKILL) on the same port; stat is the same line and
 * the data is intact; a new segment gets a new id. */
static void restore(int kill9) {
  struct h_server srv;
  struct h_result r, r2;
  char k[16], k2[16], before[512];
  char *make[] = {"persist", "make", KEYSTR(k, h_unique_key()), "12388", "7", NULL};
  char *stat[] = {"persist", "stat", k, NULL};
  char *check[] = {"persist", "check", k, "12388", "7", NULL};
  char *make2[] = {"persist", "make", KEYSTR(k2, h_unique_key()), "100", "1", NULL};
  int port;

  start(&srv, 0);
  h_run_ok(&srv, make, &r);
  h_run_ok(&srv, stat, &r);
  ck_assert_ptr_nonnull(strstr(r.out, " mode 640 size 12388 "));
  strcpy(before, r.out);
  port = srv.port;
  if (kill9)
    h_server_kill(&srv);
  else
    h_server_stop(&srv);

  start(&srv, port);
  ck_assert_int_eq(srv.port, port);
  h_run_ok(&srv, stat, &r);
  ck_assert_str_eq(r.out, before); /* id, key, perms, size, cpid, lpid, times; nattch 0 */
  h_run_ok(&srv, check, &r);
  ck_assert_str_eq(r.out, "ok\n");
  h_run_ok(&srv, make2, &r2);
  ck_assert_ptr_null(strstr(before, r2.out)); /* "id N" of a new one is not the old id */
  h_server_stop(&srv);
}

START_TEST(restore_after_sigterm) {
  restore(0);
}
END_TEST

START_TEST(restore_after_sigkill) {
  restore(1);
}
END_TEST

START_TEST(corrupt_metadata_is_refused) {
  struct h_server srv;
  struct h_result r;
  char k[16], path[128];
  char *make[] = {"persist", "make", KEYSTR(k, h_unique_key()), "100", "1", NULL};
  unsigned char b;
  int fd;

  start(&srv, 0);
  h_run_ok(&srv, make, &r);
  h_server_stop(&srv);
  snprintf(path, sizeof path, "%s/meta", dir);
  fd = open(path, O_RDWR);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(pread(fd, &b, 1, 50), 1);
  b ^= 0x10;
  ck_assert_int_eq(pwrite(fd, &b, 1, 50), 1);
  close(fd);
  expect_refusal("checksum mismatch");
  ck_assert_int_eq(truncate(path, 30), 0);
  expect_refusal("is unusable");
}
END_TEST

START_TEST(second_server_is_refused) {
  struct h_server srv;

  start(&srv, 0);
  expect_refusal("in use by another dshm-server");
  h_server_stop(&srv);
}
END_TEST

/* Kills the server (SIGTERM or SIGKILL) while the workers wait halfway, lets them go on
 * against no server (they reconnect, their faults wait), and restarts it on the same port. */
/* Creates DIR/go: workers that printed "half" go on (or never stop, if it exists first). */
static void touch_go(void) {
  char go[128];
  int fd;

  snprintf(go, sizeof go, "%s/go", dir);
  fd = open(go, O_CREAT | O_WRONLY, 0600);
  ck_assert_int_ge(fd, 0);
  close(fd);
}

static void restart_midway(struct h_server *srv, int kill9, int datadir) {
  char *extra[] = {"--data-dir", dir, "--grace-ms", "3000", NULL};
  int port = srv->port;

  if (kill9)
    h_server_kill(srv);
  else
    h_server_stop(srv);
  touch_go();
  h_server_start_args(srv, port, datadir ? extra : NULL);
  ck_assert_int_eq(srv->port, port);
}

static void spawn_worker(struct h_proc *p, const struct h_server *srv, char *const argv[]) {
  char *env[] = {"DSHM_TIMEOUT_MS=30000", NULL};
  h_spawn_env(p, srv->addr, argv, env);
}

/* Waits for a worker: exit 0 and "done"; its output stays in *r. */
static void wait_ok(struct h_proc *p, const char *what, struct h_result *r) {
  h_wait(p, r, 120000);
  ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
                "%s: status %#x; stdout: %s stderr: %s", what, r->status, r->out, r->err);
  ck_assert_msg(strstr(r->out, "done") != NULL, "%s: %s", what, r->out);
}

/* Two counters and a flag/payload pair run across a restart: the sum is exact and no
 * payload is stale. */
static void workloads_across_restart(int kill9, int running) {
  struct h_server srv;
  struct h_proc w[4];
  struct h_result r, res[4];
  char k1[16], k2[16], go[128], want[32];
  /* running: go exists from the start, so the workers never pause and the server dies
   * under them, in the middle of whatever they were doing after "half". */
  char *n = running ? "200000" : "3000", *rounds = running ? "4000" : "400";
  char *counter[] = {"persist", "counter", KEYSTR(k1, h_unique_key()), n, "2", go, NULL};
  char *send[] = {"persist", "send", KEYSTR(k2, h_unique_key()), rounds, go, NULL};
  char *recv[] = {"persist", "recv", k2, rounds, go, NULL};
  char *sum[] = {"persist", "sum", k1, NULL};

  snprintf(go, sizeof go, "%s/go", dir);
  snprintf(want, sizeof want, "value %ld\n", 2 * atol(n));
  if (running)
    touch_go();
  start(&srv, 0);
  spawn_worker(&w[0], &srv, counter);
  spawn_worker(&w[1], &srv, counter);
  spawn_worker(&w[2], &srv, send);
  spawn_worker(&w[3], &srv, recv);
  /* Paused: all four wait halfway. Running: all are attached and the first counter is
   * halfway; the others are busy. */
  for (int i = 0; i < 4; i++)
    h_expect_line(&w[i], "ready", 60000);
  for (int i = 0; i < (running ? 1 : 4); i++)
    h_expect_line(&w[i], "half", 60000);
  restart_midway(&srv, kill9, 1);
  for (int i = 0; i < 4; i++)
    wait_ok(&w[i], i < 2 ? "counter" : i == 2 ? "send" : "recv", &res[i]);
  h_run_ok(&srv, sum, &r);
  ck_assert_msg(strcmp(r.out, want) == 0, "%s (want %s); counters' stderr:\n%s\n%s", r.out, want,
                res[0].err, res[1].err);
  h_server_stop(&srv);
}

START_TEST(workloads_survive_sigterm) {
  workloads_across_restart(0, 0);
}
END_TEST

START_TEST(workloads_survive_sigkill) {
  workloads_across_restart(1, 0);
}
END_TEST

START_TEST(workloads_survive_sigkill_while_running) {
  workloads_across_restart(1, 1);
}
END_TEST

/* Without --data-dir the restarted server has no segments: the client's old views fault
 * with SIGBUS where nothing is present and calls on the id fail with EIDRM. */
START_TEST(restart_without_data_dir_loses_segments) {
  struct h_server srv;
  struct h_proc w;
  struct h_result r;
  char k[16], go[128];
  char *lose[] = {"persist", "lose", KEYSTR(k, h_unique_key()), go, NULL};

  snprintf(go, sizeof go, "%s/go", dir);
  h_server_start(&srv);
  spawn_worker(&w, &srv, lose);
  h_expect_line(&w, "half", 60000);
  restart_midway(&srv, 1, 0);
  h_wait(&w, &r, 60000);
  ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "status %#x: %s %s",
                r.status, r.out, r.err);
  ck_assert_str_eq(r.out, "eidrm\nsigbus\n");
  /* The shim says on stderr, once, that the SIGBUS is its own, and why. */
  ck_assert_msg(strstr(r.err, "dshm: SIGBUS at 0x") != NULL &&
                    strstr(r.err, "page 127 could not be served (the host agent has it in "
                                  "error") != NULL,
                "no explanation of the SIGBUS on stderr:\n%s", r.err);
  h_server_stop(&srv);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("persist");
  TCase *tc = tcase_create("datadir");

  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, restore_after_sigterm);
  tcase_add_test(tc, restore_after_sigkill);
  tcase_add_test(tc, corrupt_metadata_is_refused);
  tcase_add_test(tc, second_server_is_refused);
  tcase_add_test(tc, workloads_survive_sigterm);
  tcase_add_test(tc, workloads_survive_sigkill);
  tcase_add_test(tc, workloads_survive_sigkill_while_running);
  tcase_add_test(tc, restart_without_data_dir_loses_segments);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
