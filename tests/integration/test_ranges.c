/* test_ranges.c - calls that take an address range on an attachment (issue 9: mlock*,
 * madvise, msync, mincore, process_vm_readv/writev): tests/progs/ranges.c runs natively (the
 * kernel is the oracle) and under the shim against a real server, the segment filled on one
 * host and used on another; the outputs must match line by line. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define KEYSTR(buf, key) (snprintf(buf, sizeof buf, "%d", key), buf)
#define OUT_MAX 16384

static struct h_server srv;
static char hosts[192];                       /* this test's hosts live here */
static char host_a[256], host_b[256];         /* "DSHM_AGENT_DIR=..." of each host */

static void host_init(char *env, size_t cap, const char *name) {
  char dir[224];

  snprintf(dir, sizeof dir, "%s/%s", hosts, name);
  ck_assert_msg(mkdir(dir, 0700) == 0, "mkdir %s: %s", dir, strerror(errno));
  snprintf(env, cap, "DSHM_AGENT_DIR=%s", dir);
}

static void setup(void) {
  const char *base = getenv("DSHM_AGENT_DIR");

  ck_assert_msg(base != NULL, "DSHM_AGENT_DIR is not set (run the tests through meson)");
  snprintf(hosts, sizeof hosts, "%s/ranges-XXXXXX", base);
  ck_assert_msg(mkdtemp(hosts) != NULL, "mkdtemp %s: %s", hosts, strerror(errno));
  host_init(host_a, sizeof host_a, "a");
  host_init(host_b, sizeof host_b, "b");
  h_server_start(&srv);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0; /* best effort: go on with the rest */
}

/* The pid of each host's agent from its pid file, if it is still running. */
static int agent_running(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  const char *dot = strrchr(path, '.');
  FILE *f;
  int pid = 0;

  (void)st;
  (void)ftw;
  if (flag != FTW_F || dot == NULL || strcmp(dot, ".pid") != 0 || (f = fopen(path, "r")) == NULL)
    return 0;
  if (fscanf(f, "%d", &pid) != 1)
    pid = 0;
  fclose(f);
  return pid > 0 && kill(pid, 0) == 0 ? pid : 0;
}

/* The agents exit on their own once idle (DSHM_AGENT_IDLE_MS) and write their files until
 * then: the hosts' directories go after them (bounded: a lingering agent is not this suite's
 * subject). */
static void teardown(void) {
  long deadline = h_now_ms() + 10000;

  while (nftw(hosts, agent_running, 16, FTW_PHYS) > 0 && h_now_ms() < deadline)
    usleep(50000);
  h_server_stop(&srv);
  nftw(hosts, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs ranges KEY STEP natively (host NULL) or under the shim on host (its env entry) and
 * appends its output to out; asserts it exits 0. */
static void run(const char *key, const char *step, char *host, char *out) {
  static struct h_result r;
  char *argv[] = {"ranges", (char *)key, (char *)step, NULL};
  char *env[] = {host, NULL};
  struct h_proc p;

  h_spawn_env(&p, host ? srv.addr : NULL, argv, host ? env : NULL);
  h_wait(&p, &r, 120000);
  ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                "ranges %s (%s): status %#x\nstdout:\n%s\nstderr:\n%s", step,
                host ? "shim" : "native", r.status, r.out, r.err);
  ck_assert_msg(strlen(out) + strlen(r.out) < OUT_MAX, "output too long");
  strcat(out, r.out);
}

/* prep on host A, the section on host B, check on host A again, rm: their lines. Natively
 * all four run on the kernel. */
static void sequence(const char *section, int shim, char *out) {
  char k[16];

  KEYSTR(k, h_unique_key());
  out[0] = '\0';
  run(k, "prep", shim ? host_a : NULL, out);
  run(k, section, shim ? host_b : NULL, out);
  run(k, "check", shim ? host_a : NULL, out);
  run(k, "rm", shim ? host_a : NULL, out);
  if (!shim)
    h_kernel_forget(k);
}

/* Compares two outputs line by line and fails at the first difference, showing both. */
static void compare(const char *section, const char *native, const char *shim) {
  const char *a = native, *b = shim;
  int n = 1;

  ck_assert_msg(strstr(native, "\nrm: ok\n") != NULL, "native %s incomplete:\n%s", section,
                native);
  while (*a != '\0' || *b != '\0') {
    size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
    ck_assert_msg(la == lb && strncmp(a, b, la) == 0,
                  "%s, line %d differs:\n  kernel: %.*s\n  dshm:   %.*s\nkernel:\n%s\ndshm:\n%s",
                  section, n, (int)la, a, (int)lb, b, native, shim);
    a += la + (a[la] == '\n');
    b += lb + (b[lb] == '\n');
    n++;
  }
}

static void differential(const char *section) {
  static char native[OUT_MAX], shim[OUT_MAX];

  sequence(section, 0, native);
  sequence(section, 1, shim);
  compare(section, native, shim);
}

START_TEST(test_mlock) { differential("mlock"); }
END_TEST

START_TEST(test_mlock_onfault) { differential("onfault"); }
END_TEST

/* Locks the whole process: root only (RLIMIT_MEMLOCK would decide otherwise, and the
 * process under the shim maps more than the native one). CI runs as root. */
START_TEST(test_mlockall) {
  if (geteuid() != 0) {
    fprintf(stderr, "test_mlockall: not root, skipped\n");
    return;
  }
  differential("mlockall");
}
END_TEST

START_TEST(test_populate) { differential("populate"); }
END_TEST

START_TEST(test_msync) { differential("msync"); }
END_TEST

START_TEST(test_mincore) { differential("mincore"); }
END_TEST

START_TEST(test_madvise) { differential("madvise"); }
END_TEST

START_TEST(test_process_vm) { differential("procvm"); }
END_TEST

/* Not differential: what the shim refuses on an attachment although the kernel accepts it
 * (docs/compatibility.md, "Address-range calls on a view"), and the view is untouched. */
START_TEST(test_refused) {
  static char shim[OUT_MAX];

  sequence("refused", 1, shim);
  ck_assert_str_eq(shim, "prep: ok\n"
                         "dontfork: EINVAL\n"
                         "guard_install: EINVAL\n"
                         "guard_remove: ok\n"
                         "remap_file_pages: EINVAL\n"
                         "refused.data: pppppppppppppppp\n"
                         "check: pppppppppppppppp\n"
                         "rm: ok\n");
}
END_TEST

static Suite *ranges_suite(void) {
  Suite *s = suite_create("ranges");
  TCase *tc = tcase_create("ranges");

  tcase_set_timeout(tc, 300);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_mlock);
  tcase_add_test(tc, test_mlock_onfault);
  tcase_add_test(tc, test_mlockall);
  tcase_add_test(tc, test_populate);
  tcase_add_test(tc, test_msync);
  tcase_add_test(tc, test_mincore);
  tcase_add_test(tc, test_madvise);
  tcase_add_test(tc, test_process_vm);
  tcase_add_test(tc, test_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(ranges_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
