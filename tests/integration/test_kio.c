/* test_kio.c - the kernel reading and writing segment pages: I/O calls into and from segments. */
#include <check.h>
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

static void ok_exit(const struct h_result *r, const char *who) {
  ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
                "%s: status %#x stdout %s stderr %s", who, r->status, r->out, r->err);
}

/* The same probe natively and under the shim: the kernel is the oracle, line for line. */
static void differential(const char *cmd, const char *must) {
  char k1[16], k2[16];
  struct h_result native, shim;
  char *a[] = {"kio", (char *)cmd, KEYSTR(k1, h_unique_key()), NULL};
  char *b[] = {"kio", (char *)cmd, KEYSTR(k2, h_unique_key()), NULL};

  h_run_ok(NULL, a, &native);
  h_kernel_forget(k1);
  h_run_ok(&srv, b, &shim);
  ck_assert_msg(strstr(native.out, must) != NULL, "native run lacks '%s':\n%s", must, native.out);
  ck_assert_msg(strstr(native.out, "BAD-DATA") == NULL, "native run:\n%s", native.out);
  ck_assert_msg(strcmp(native.out, shim.out) == 0, "kernel:\n%s\nshim:\n%s\nstderr: %s",
                native.out, shim.out, shim.err);
}

/* read/pread/readv/recv/recvmsg into INVALID pages and into buffers straddling SHARED and
 * INVALID pages; write/pwrite/writev/send/sendmsg back out: full transfers, right bytes. */
START_TEST(test_pipe_file_socket) {
  differential("pipe", "read-shared-invalid 12288\n");
}
END_TEST

/* A SHM_RDONLY view as read()/recv() target: EFAULT exactly as the kernel gives it. */
START_TEST(test_rdonly_efault) {
  differential("rdonly", "read-rdonly -1 EFAULT\n");
}
END_TEST

/* write()/send() from pages another process holds EXCLUSIVE: recalled, sent whole. */
START_TEST(test_write_from_held_pages) {
  char k[16];
  struct h_proc hold, from;
  struct h_result r;
  char *h[] = {"kio", "hold", KEYSTR(k, h_unique_key()), NULL};
  char *f[] = {"kio", "fromheld", k, NULL};

  h_spawn(&hold, &srv, h);
  h_spawn(&from, &srv, f);
  h_wait(&from, &r, 60000);
  ok_exit(&r, "fromheld");
  ck_assert_str_eq(r.out, "write-held 12288\nsend-held 12288\n");
  h_wait(&hold, &r, 60000);
  ok_exit(&r, "hold");
  ck_assert_str_eq(r.out, "released\n");
}
END_TEST

/* UDP datagrams received (recv, recvfrom with the address in the segment, recvmsg) into a
 * buffer straddling two pages that another process keeps writing: none lost or damaged. */
START_TEST(test_dgram_stolen_pages) {
  char k[16];
  struct h_proc thief, rcv;
  struct h_result r;
  char *t[] = {"kio", "thief", KEYSTR(k, h_unique_key()), NULL};
  char *d[] = {"kio", "dgram", k, "300", NULL};

  h_spawn(&thief, &srv, t);
  h_spawn(&rcv, &srv, d);
  h_wait(&rcv, &r, 120000);
  ok_exit(&r, "dgram");
  ck_assert_str_eq(r.out, "received 300 in order, bad 0\n");
  h_wait(&thief, &r, 60000);
  ok_exit(&r, "thief");
}
END_TEST

/* A 1 GiB segment touched at random by three processes at once, with the shim's mapping
 * budget lowered to 128 (DSHM_MAX_MAPS; vm.max_map_count is global and left alone): runs
 * are dropped to stay under it, every process's mapping count (/proc/self/maps) stays
 * within the budget (plus the library's private view of it), and every increment is there. */
START_TEST(test_large_segment_vma_budget) {
  char k[16];
  struct h_proc p[3];
  struct h_result r;
  char ids[3][4];
  char *env[] = {"DSHM_MAX_MAPS=128", "KIO_MAX_MAPS=130", NULL};
  char *check[] = {"kio", "vcheck", k, "262144", "2000", "11", "3", NULL};

  KEYSTR(k, h_unique_key());
  for (int i = 0; i < 3; i++) {
    char *argv[] = {"kio", "vmas", k, "262144", "2000", "11", ids[i], "3", NULL};
    snprintf(ids[i], sizeof ids[i], "%d", i);
    h_spawn_env(&p[i], srv.addr, argv, env);
  }
  for (int i = 0; i < 3; i++) {
    h_wait(&p[i], &r, 180000);
    ok_exit(&r, "vmas");
    ck_assert_msg(strcmp(r.out, "maps within limit\n") == 0, "%s%s", r.out, r.err);
  }
  h_spawn_env(&p[0], srv.addr, check, env);
  h_wait(&p[0], &r, 180000);
  ok_exit(&r, "vcheck");
  ck_assert_msg(strstr(r.out, "wrong 0\n") != NULL && strncmp(r.out, "counters 0,", 11) != 0,
                "%s", r.out);
}
END_TEST

static Suite *kio_suite(void) {
  Suite *s = suite_create("kio");
  TCase *tc = tcase_create("io");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_pipe_file_socket);
  tcase_add_test(tc, test_rdonly_efault);
  tcase_add_test(tc, test_write_from_held_pages);
  tcase_add_test(tc, test_dgram_stolen_pages);
  tcase_add_test(tc, test_large_segment_vma_budget);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(kio_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
