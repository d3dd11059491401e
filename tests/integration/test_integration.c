/* test_integration.c - a real dshm-server and real preloaded processes, each its own node. */
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

/* Runs `procs` copies of argv at once, each must succeed; then `get` must print want. */
static void run_counters(int procs, char *const argv[], const char *want) {
  struct h_proc p[8];
  struct h_result r;
  char *get[] = {"shmtool", "get", argv[2], NULL};

  for (int i = 0; i < procs; i++)
    h_spawn(&p[i], &srv, argv);
  for (int i = 0; i < procs; i++) {
    h_wait(&p[i], &r, 120000);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                  "counter %d: status %#x: %s", i, r.status, r.err);
  }
  h_run_ok(&srv, get, &r);
  ck_assert_str_eq(r.out, want);
}

/* Four processes, 20000 atomic increments each, on one word, all at once (a barrier in
 * the segment starts them together): the sum is exact. */
START_TEST(test_atomic_counter) {
  char k[16];
  char *argv[] = {"shmtool", "counter", KEYSTR(k, h_unique_key()), "20000", "4", NULL};
  run_counters(4, argv, "value 80000\n");
}
END_TEST

/* Eight threads in each of two processes faulting on the same pages at once. */
START_TEST(test_threads) {
  char k[16];
  char *argv[] = {"shmtool", "counter", KEYSTR(k, h_unique_key()), "5000", "2", "8", NULL};
  run_counters(2, argv, "value 80000\n");
}
END_TEST

/* Flag on one page, payload on the next: 1000 handoffs, never a stale payload. */
START_TEST(test_message_passing) {
  char k[16];
  struct h_proc s, rcv;
  struct h_result r;
  char *send[] = {"shmtool", "send", KEYSTR(k, h_unique_key()), "1000", NULL};
  char *recv[] = {"shmtool", "recv", k, "1000", NULL};

  h_spawn(&rcv, &srv, recv);
  h_spawn(&s, &srv, send);
  h_wait(&rcv, &r, 120000);
  ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "recv: %#x %s", r.status, r.err);
  ck_assert_str_eq(r.out, "received 1000\n");
  h_wait(&s, &r, 120000);
  ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "send: %#x %s", r.status, r.err);
  ck_assert_str_eq(r.out, "sent 1000\n");
}
END_TEST

/* Written then detached (or just exited): a process started later reads every byte. */
START_TEST(test_data_survives_writer) {
  char k1[16], k2[16];
  struct h_result r;
  char *fill[] = {"shmtool", "fill", KEYSTR(k1, h_unique_key()), "300000", "3", NULL};
  char *verify[] = {"shmtool", "verify", k1, "300000", "3", NULL};
  char *fill_exit[] = {"shmtool", "fill", KEYSTR(k2, h_unique_key()), "20000", "9", "nodt", NULL};
  char *verify_exit[] = {"shmtool", "verify", k2, "20000", "9", NULL};

  h_run_ok(&srv, fill, &r);
  h_run_ok(&srv, verify, &r);
  ck_assert_str_eq(r.out, "verified 300000\n");
  h_run_ok(&srv, fill_exit, &r);
  h_run_ok(&srv, verify_exit, &r);
  ck_assert_str_eq(r.out, "verified 20000\n");
}
END_TEST

/* A write through a SHM_RDONLY attachment kills with SIGSEGV, as with the kernel. */
START_TEST(test_rdonly_write_segv) {
  char k[16];
  struct h_proc p;
  struct h_result r;
  char *count[] = {"shmtool", "counter", KEYSTR(k, h_unique_key()), "5", NULL};
  char *wr[] = {"shmtool", "rdonly-write", k, NULL};

  h_run_ok(&srv, count, &r);
  h_spawn(&p, &srv, wr);
  h_wait(&p, &r, 30000);
  ck_assert_msg(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSEGV,
                "status %#x, stdout %s stderr %s", r.status, r.out, r.err);
  ck_assert_str_eq(r.out, "read 5\n");
}
END_TEST

/* Same program natively and under the shim: the kernel is the oracle. */
static void differential(const char *cmd) {
  char k1[16], k2[16];
  struct h_result native, shim;
  char *a[] = {"shmtool", (char *)cmd, KEYSTR(k1, h_unique_key()), NULL};
  char *b[] = {"shmtool", (char *)cmd, KEYSTR(k2, h_unique_key()), NULL};

  h_run_ok(NULL, a, &native);
  h_kernel_forget(k1);
  h_run_ok(&srv, b, &shim);
  ck_assert_msg(strlen(native.out) > 100, "native run printed too little: %s", native.out);
  ck_assert_msg(strcmp(native.out, shim.out) == 0, "kernel:\n%s\nshim:\n%s", native.out, shim.out);
}

/* IPC_RMID while attached: SHM_DEST, key gone, still usable, destroyed at the last detach. */
START_TEST(test_rmid_while_attached) {
  differential("rmid");
}
END_TEST

START_TEST(test_shmget_errors) {
  differential("errors");
}
END_TEST

/* A client killed with SIGKILL while it owns a page: it is detached (nattch correct) and
 * the page it held is usable by the others. */
START_TEST(test_killed_client) {
  char k[16], line[64];
  struct h_proc holder, p;
  struct h_result r;
  char *hold[] = {"shmtool", "hold", KEYSTR(k, h_unique_key()), NULL};
  char *nattch[] = {"shmtool", "nattch", k, NULL};
  char *get[] = {"shmtool", "get", k, NULL};
  int n = -1, attempts = 0;
  unsigned long value = 0;

  h_spawn(&holder, &srv, hold);
  h_expect_line(&holder, "held", 30000);
  ck_assert_int_eq(kill(holder.pid, SIGKILL), 0);
  h_wait(&holder, &r, 10000);
  ck_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL);

  /* The server learns of the death asynchronously: ask until it shows (bounded). */
  do {
    h_spawn(&p, &srv, nattch);
    h_wait(&p, &r, 30000);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "nattch: %s", r.err);
    ck_assert(sscanf(r.out, "stat: segsz=4096 nattch=%d", &n) == 1);
    ck_assert(sscanf(strstr(r.out, "value "), "value %lu", &value) == 1);
  } while (n != 1 && ++attempts < 50);
  ck_assert_int_eq(n, 1);
  h_run_ok(&srv, get, &r);
  snprintf(line, sizeof line, "value %lu\n", value);
  ck_assert_str_eq(r.out, line);
}
END_TEST

/* Server unreachable: -1/ECONNREFUSED and one stderr line naming the address. */
START_TEST(test_server_unreachable) {
  char k[16];
  struct h_proc p;
  struct h_result r;
  char *count[] = {"shmtool", "counter", KEYSTR(k, h_unique_key()), "1", NULL};

  h_spawn_env(&p, "127.0.0.1:1", count, NULL);
  h_wait(&p, &r, 30000);
  ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1, "status %#x", r.status);
  ck_assert_msg(strstr(r.err, "shmtool: shmget: Connection refused") != NULL, "%s", r.err);
  ck_assert_msg(strstr(r.err, "127.0.0.1:1") && strstr(r.err, "DSHM_SERVER"), "%s", r.err);
}
END_TEST

static Suite *integration_suite(void) {
  Suite *s = suite_create("integration");
  TCase *tc = tcase_create("skeleton");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_atomic_counter);
  tcase_add_test(tc, test_threads);
  tcase_add_test(tc, test_message_passing);
  tcase_add_test(tc, test_data_survives_writer);
  tcase_add_test(tc, test_rdonly_write_segv);
  tcase_add_test(tc, test_rmid_while_attached);
  tcase_add_test(tc, test_shmget_errors);
  tcase_add_test(tc, test_killed_client);
  tcase_add_test(tc, test_server_unreachable);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(integration_suite());
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
