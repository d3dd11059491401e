/* test_agent.c - the node is the host: processes sharing a dshm-agent (one DSHM_AGENT_DIR)
 * behave as on one kernel; two agent dirs are two hosts kept coherent
 * through a real dshm-server. The programs are tests/progs/host.c. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define KEYSTR(buf, key) (snprintf(buf, sizeof buf, "%d", key), buf)

#define STR_(x)       #x
#define STR(x)        STR_(x)
#define IDLE_MS       500   /* DSHM_AGENT_IDLE_MS of every host in these tests */
#define AGENT_GONE_MS 10000 /* an idle agent must have exited within this */
#define RUN_MS        60000 /* bound of one program run */
#define MAX_AGENTS    16

/* Made by the unchecked fixture (the runner process): every test's hosts live under it, so
 * the runner can clean up after tests that failed before their own teardown. */
static char base_dir[64];

static struct h_server srv;
static char test_dir[128]; /* base_dir/tXXXXXX: this test's hosts */

/* One host: a DSHM_AGENT_DIR and the environment that puts a process on it. */
struct host {
  char base[192];           /* DSHM_AGENT_DIR */
  char dir[192];            /* the agent's directory in it: dshm-EUID */
  char dir_env[224];
  char bin_env[4200];
  char *env[4];
};

static struct host host_a, host_b;

static void host_init(struct host *h, const char *name) {
  const char *bin = getenv("DSHM_TEST_AGENT_WRAP");

  ck_assert_msg(bin != NULL && *bin && getenv("DSHM_TEST_AGENT") != NULL,
                "DSHM_TEST_AGENT(_WRAP) is not set (run the tests through meson)");
  setenv("DSHM_TEST_AGENT_REAL", getenv("DSHM_TEST_AGENT"), 1);
  snprintf(h->base, sizeof h->base, "%s/%s", test_dir, name);
  ck_assert_msg(mkdir(h->base, 0700) == 0, "mkdir %s: %s", h->base, strerror(errno));
  snprintf(h->dir, sizeof h->dir, "%.150s/dshm-%u", h->base, (unsigned)geteuid());
  snprintf(h->dir_env, sizeof h->dir_env, "DSHM_AGENT_DIR=%s", h->base);
  snprintf(h->bin_env, sizeof h->bin_env, "DSHM_AGENT_BIN=%s", bin);
  h->env[0] = h->dir_env;
  h->env[1] = h->bin_env;
  h->env[2] = "DSHM_AGENT_IDLE_MS=" STR(IDLE_MS);
  h->env[3] = NULL;
}

/* Runs host.c's argv on host h under the shim; extra: more "NAME=value" entries or NULL. */
static void spawn_on(struct h_proc *p, const struct host *h, char *const argv[],
                     char *const extra[]) {
  char *env[16];
  int n = 0;

  for (int i = 0; h->env[i] != NULL; i++)
    env[n++] = h->env[i];
  for (int i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
    env[n++] = extra[i];
  env[n] = NULL;
  h_spawn_env(p, srv.addr, argv, env);
}

static void assert_exit0(const struct h_result *r, const char *what) {
  ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
                "%s: status %#x; stdout: %s stderr: %s", what, r->status, r->out, r->err);
}

/* Runs argv on h to completion; it must exit 0 and print exactly want (if not NULL). */
static void run_on(const struct host *h, char *const argv[], const char *want,
                   struct h_result *r) {
  struct h_proc p;

  spawn_on(&p, h, argv, NULL);
  h_wait(&p, r, RUN_MS);
  assert_exit0(r, argv[1]);
  if (want != NULL)
    ck_assert_msg(strcmp(r->out, want) == 0, "host %s on %s printed \"%s\", expected \"%s\"",
                  argv[1], h->dir, r->out, want);
}

/* Whether the command line (NUL-separated args, len bytes) is a dshm-agent serving dir
 * ("--dir DIR" or "--dir=DIR"); with prefix, any dir under it. */
static int is_agent_of(const char *cmd, size_t len, const char *dir, int prefix) {
  size_t dlen = strlen(dir);
  const char *prev = "";
  int agent = 0, served = 0;

  for (const char *a = cmd; a < cmd + len; a += strlen(a) + 1) {
    const char *val = NULL;
    if (strstr(a, "dshm-agent") != NULL)
      agent = 1;
    if (strcmp(prev, "--dir") == 0)
      val = a;
    else if (strncmp(a, "--dir=", 6) == 0)
      val = a + 6;
    if (val != NULL &&
        (prefix ? strncmp(val, dir, dlen) == 0 && (val[dlen] == '/' || val[dlen] == '\0')
                : strcmp(val, dir) == 0))
      served = 1;
    prev = a;
  }
  return agent && served;
}

/* Pids of the live dshm-agents of dir (see is_agent_of); returns how many (at most cap
 * stored). A zombie's cmdline is empty: it does not count. */
static int agents_of(const char *dir, int prefix, pid_t *pids, int cap) {
  DIR *proc = opendir("/proc");
  struct dirent *e;
  int n = 0;

  if (proc == NULL)
    return 0;
  while ((e = readdir(proc)) != NULL) {
    char path[300], cmd[8192];
    pid_t pid = (pid_t)atoi(e->d_name);
    int fd;
    ssize_t len;

    if (pid <= 0)
      continue;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    len = read(fd, cmd, sizeof cmd - 1);
    close(fd);
    if (len <= 0)
      continue;
    cmd[len] = '\0';
    if (is_agent_of(cmd, (size_t)len, dir, prefix)) {
      if (n < cap)
        pids[n] = pid;
      n++;
    }
  }
  closedir(proc);
  return n;
}

/* Polls (10 ms) until no agent of dir is left; returns how many are left at the deadline. */
static int await_agents_gone(const char *dir, int prefix, int timeout_ms) {
  long deadline = h_now_ms() + timeout_ms;
  pid_t pids[MAX_AGENTS];
  int n;

  while ((n = agents_of(dir, prefix, pids, MAX_AGENTS)) > 0 && h_now_ms() < deadline)
    poll(NULL, 0, 10);
  return n;
}

/* The one agent of host h (asserted: exactly one). */
static pid_t the_agent(const struct host *h) {
  pid_t pids[MAX_AGENTS];
  int n = agents_of(h->dir, 0, pids, MAX_AGENTS);

  ck_assert_msg(n == 1, "%d dshm-agent processes with --dir %s, expected 1", n, h->dir);
  return pids[0];
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void rm_rf(const char *dir) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runner process, once: the base directory. No assertions here (not a test process). */
static void suite_setup(void) {
  snprintf(base_dir, sizeof base_dir, "/tmp/dshm-test-XXXXXX");
  if (mkdtemp(base_dir) == NULL) {
    fprintf(stderr, "test_agent: mkdtemp: %s\n", strerror(errno));
    base_dir[0] = '\0';
  }
}

/* Runner process, once: agents left by failed tests get their idle time, then SIGKILL
 * (they are ours: their --dir is under base_dir); then the directory goes. */
static void suite_teardown(void) {
  pid_t pids[MAX_AGENTS];
  int n;

  if (base_dir[0] == '\0')
    return;
  if (await_agents_gone(base_dir, 1, AGENT_GONE_MS) > 0) {
    n = agents_of(base_dir, 1, pids, MAX_AGENTS);
    for (int i = 0; i < n && i < MAX_AGENTS; i++)
      kill(pids[i], SIGKILL);
  }
  rm_rf(base_dir);
}

static void setup(void) {
  ck_assert_msg(base_dir[0] != '\0', "no base directory (mkdtemp failed)");
  snprintf(test_dir, sizeof test_dir, "%s/tXXXXXX", base_dir);
  ck_assert_msg(mkdtemp(test_dir) != NULL, "mkdtemp: %s", strerror(errno));
  host_init(&host_a, "hostA");
  host_init(&host_b, "hostB");
  h_server_start(&srv);
}

/* Every agent exits by itself once its last process is gone: asserted after every test. */
/* Calls fn with every line of every agent log of host h (its dir, *.log). */
static void each_log_line(const struct host *h, void (*fn)(const char *path, const char *line,
                                                             void *arg),
                          void *arg) {
  DIR *d = opendir(h->dir);
  struct dirent *e;

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char path[512], line[1024];
    size_t len = strlen(e->d_name);
    FILE *f;
    if (len < 4 || strcmp(e->d_name + len - 4, ".log") != 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", h->dir, e->d_name);
    f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
      fn(path, line, arg);
    if (f != NULL)
      fclose(f);
  }
  closedir(d);
}

static void no_sanitizer_report(const char *path, const char *line, void *arg) {
  (void)arg;
  ck_assert_msg(strstr(line, "Sanitizer") == NULL && strstr(line, "runtime error") == NULL,
                "%s: %s", path, line);
}

/* An agent's log (host dir, *.log) must hold no sanitizer report: in the ASan build every
 * agent runs with leak detection (agent-asan.sh) and reports into its log at exit. */
static void assert_clean_logs(const struct host *h) {
  each_log_line(h, no_sanitizer_report, NULL);
}

static void teardown(void) {
  int left = await_agents_gone(test_dir, 1, AGENT_GONE_MS);

  ck_assert_msg(left == 0, "%d dshm-agent(s) still running %d ms after the test's last process",
                left, AGENT_GONE_MS);
  assert_clean_logs(&host_a);
  assert_clean_logs(&host_b);
  h_server_stop(&srv);
  rm_rf(test_dir);
}

/* Two hosts, two processes on each, 10000 atomic increments each after a barrier of all
 * four: the sum is exact on both hosts. */
START_TEST(test_counter_two_hosts) {
  char k[16];
  char *argv[] = {"host", "counter", KEYSTR(k, h_unique_key()), "4", "10000", NULL};
  char *sum[] = {"host", "sum", k, NULL};
  const struct host *on[4] = {&host_a, &host_a, &host_b, &host_b};
  struct h_proc p[4];
  struct h_result r;

  for (int i = 0; i < 4; i++)
    spawn_on(&p[i], on[i], argv, NULL);
  for (int i = 0; i < 4; i++) {
    h_wait(&p[i], &r, RUN_MS);
    assert_exit0(&r, "counter");
    ck_assert_str_eq(r.out, "started\ndone\n");
  }
  run_on(&host_b, sum, "sum 40000\n", &r);
  run_on(&host_a, sum, "sum 40000\n", &r);
}
END_TEST

/* Flag on page 0, payload on page 1, written in turns by roles 0 and 1: every payload is
 * exact when its flag is seen. */
static void flag_pingpong(const struct host *h0, const struct host *h1, const char *rounds) {
  char k[16];
  char *role0[] = {"host", "flag", KEYSTR(k, h_unique_key()), (char *)rounds, "0", NULL};
  char *role1[] = {"host", "flag", k, (char *)rounds, "1", NULL};
  struct h_proc p0, p1;
  struct h_result r;

  spawn_on(&p0, h0, role0, NULL);
  spawn_on(&p1, h1, role1, NULL);
  h_wait(&p0, &r, RUN_MS);
  assert_exit0(&r, "flag role 0");
  ck_assert_str_eq(r.out, "flag ok\n");
  h_wait(&p1, &r, RUN_MS);
  assert_exit0(&r, "flag role 1");
  ck_assert_str_eq(r.out, "flag ok\n");
}

START_TEST(test_flag_two_hosts) {
  flag_pingpong(&host_a, &host_b, "1000");
}
END_TEST

START_TEST(test_flag_one_host) {
  flag_pingpong(&host_a, &host_a, "2000");
}
END_TEST

/* A process-shared pthread mutex among 4 forked processes of one host, guarding a plain
 * counter: exact, no abort, no hang. reattach: each child uses its own shmat. */
static void mutex_run(const char *mode) {
  char k[16];
  char *argv[] = {"host", "mutex", KEYSTR(k, h_unique_key()), "4", "20000", (char *)mode, NULL};
  struct h_result r;

  run_on(&host_a, argv, "mutex counter 80000\n", &r);
}

START_TEST(test_mutex) {
  mutex_run(NULL);
}
END_TEST

START_TEST(test_mutex_reattach) {
  mutex_run("reattach");
}
END_TEST

/* sem_t (pshared) bounded buffer, 2 producers of 1..20000 and 2 consumers (sem_timedwait):
 * every item consumed once, semaphores back at their initial values. */
START_TEST(test_sem) {
  char k[16];
  char *argv[] = {"host", "sem", KEYSTR(k, h_unique_key()), "20000", NULL};
  struct h_result r;

  run_on(&host_a, argv, "sem sum 400020000 count 40000\nsem values full 0 empty 16 lock 1\n", &r);
  ck_assert_msg(strstr(r.err, "futex") == NULL, "%s", r.err);
}
END_TEST

/* A forked child writes 64 pages and _exit()s: the parent sees them; so does a later process
 * on the same host, then (after host A's agent has gone idle and exited) one on host B and
 * one on host A again. */
START_TEST(test_exitwrite) {
  char k[16];
  char *wr[] = {"host", "exitwrite", KEYSTR(k, h_unique_key()), "64", NULL};
  char *ver[] = {"host", "verify", k, "64", NULL};
  struct h_result r;

  run_on(&host_a, wr, "exitwrite ok 64\n", &r);
  run_on(&host_a, ver, "verify ok\n", &r);
  ck_assert_msg(await_agents_gone(host_a.dir, 0, AGENT_GONE_MS) == 0,
                "host A's agent did not exit within %d ms of its last process", AGENT_GONE_MS);
  run_on(&host_b, ver, "verify ok\n", &r);
  run_on(&host_a, ver, "verify ok\n", &r);
}
END_TEST

/* A writer SIGKILLed after writing 64 pages loses nothing: host B (fetching from host A's
 * agent) and host A both read every byte. While the writer lives (idle, in pause()), host A
 * has exactly one agent and it stays, for twice the idle time. */
START_TEST(test_killwrite) {
  char k[16];
  char *wr[] = {"host", "killwrite", KEYSTR(k, h_unique_key()), "64", NULL};
  char *ver[] = {"host", "verify", k, "64", NULL};
  struct h_proc w;
  struct h_result r;
  pid_t agent, again;
  long until;

  spawn_on(&w, &host_a, wr, NULL);
  h_expect_line(&w, "written", 30000);
  agent = the_agent(&host_a);
  ck_assert_int_eq(agents_of(host_b.dir, 0, &again, 1), 0);
  until = h_now_ms() + 2 * IDLE_MS; /* the property is about time: an idle wait is the test */
  while (h_now_ms() < until) {
    again = the_agent(&host_a);
    ck_assert_int_eq(again, agent);
    poll(NULL, 0, 50);
  }
  ck_assert_int_eq(kill(w.pid, SIGKILL), 0);
  h_wait(&w, &r, 10000);
  ck_assert_msg(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL, "status %#x", r.status);
  run_on(&host_b, ver, "verify ok\n", &r);
  run_on(&host_a, ver, "verify ok\n", &r);
}
END_TEST

/* The same argv natively (the kernel is the oracle) and on host A: the same lines. */
static void differential(const char *cmd, const char *arg, const char *last) {
  char k1[16], k2[16];
  char *native[] = {"host", (char *)cmd, KEYSTR(k1, h_unique_key()), (char *)arg, NULL};
  char *agent[] = {"host", (char *)cmd, KEYSTR(k2, h_unique_key()), (char *)arg, NULL};
  struct h_proc p;
  struct h_result kern, shim;
  const char *a, *b;
  int line = 1;

  h_spawn_env(&p, NULL, native, NULL);
  h_wait(&p, &kern, RUN_MS);
  h_kernel_forget(k1);
  assert_exit0(&kern, "native run");
  ck_assert_msg(strstr(kern.out, last) != NULL, "native run: %s", kern.out);
  run_on(&host_a, agent, NULL, &shim);
  for (a = kern.out, b = shim.out; *a != '\0' && *a == *b; a++, b++)
    if (*a == '\n')
      line++;
  ck_assert_msg(*a == '\0' && *b == '\0', "line %d differs\nkernel:\n%s\nagent:\n%s%s", line,
                kern.out, shim.out, shim.err);
}

/* IPC_RMID, fork, the parent detaches first: the child (after a pause) still reads every
 * byte, nattch and SHM_DEST as the kernel reports them, destroyed at the child's exit. */
START_TEST(test_rmidfork) {
  differential("rmidfork", NULL, "rmidfork ok\n");
}
END_TEST

/* nattch counts the 4 forked children as soon as fork() returned, and drops back to 1 when
 * they have exited (_exit after writing a word each, which the parent sees). */
START_TEST(test_forks) {
  differential("forks", "20", "nattch after forks: nattch=21 dest=0\n");
}
END_TEST

/* 4 readers of a 64 MiB segment on one host: one copy in memory (the readers' Pss adds up
 * to at most 1.2 x the size, each has all of it resident). The kernel must pass the same
 * measurement, or the measurement is wrong. */
static void readers_run(const char *mode) {
  char k1[16], k2[16];
  char *native[] = {"host", "readers", KEYSTR(k1, h_unique_key()), "64", "4", (char *)mode, NULL};
  char *agent[] = {"host", "readers", KEYSTR(k2, h_unique_key()), "64", "4", (char *)mode, NULL};
  struct h_proc p;
  struct h_result r;

  h_spawn_env(&p, NULL, native, NULL);
  h_wait(&p, &r, RUN_MS);
  h_kernel_forget(k1);
  assert_exit0(&r, "native readers");
  ck_assert_msg(strcmp(r.out, "readers one_copy yes\n") == 0, "native: %s%s", r.out, r.err);
  run_on(&host_a, agent, NULL, &r);
  ck_assert_msg(strcmp(r.out, "readers one_copy yes\n") == 0, "agent: %s%s", r.out, r.err);
}

START_TEST(test_readers) {
  readers_run(NULL);
}
END_TEST

START_TEST(test_readers_fresh) {
  readers_run("fresh");
}
END_TEST

#define LONG_ROUNDS 20000000L

/* Host A's agent SIGKILLed while both hosts count on one segment: host B finishes (its
 * increments all kept: LONG_ROUNDS <= sum <= 2 x LONG_ROUNDS) and a later process on B
 * reads the sum; host A's process ends with an error or a signal, bounded
 * (DSHM_TIMEOUT_MS=2000), and does not pretend success. */
START_TEST(test_agent_killed) {
  char k[16], rounds[24];
  char *argv[] = {"host", "counter", KEYSTR(k, h_unique_key()), "2", rounds, NULL};
  char *sum[] = {"host", "sum", k, NULL};
  char *short_timeout[] = {"DSHM_TIMEOUT_MS=2000", NULL};
  struct h_proc a, b;
  struct h_result ra, rb, r;
  unsigned long v = 0;

  snprintf(rounds, sizeof rounds, "%ld", LONG_ROUNDS);
  spawn_on(&a, &host_a, argv, short_timeout);
  spawn_on(&b, &host_b, argv, NULL);
  h_expect_line(&a, "started", 30000);
  h_expect_line(&b, "started", 30000);
  ck_assert_int_eq(kill(the_agent(&host_a), SIGKILL), 0);

  h_wait(&b, &rb, RUN_MS);
  h_wait(&a, &ra, 30000);
  assert_exit0(&rb, "counter on host B");
  ck_assert_str_eq(rb.out, "done\n");
  run_on(&host_b, sum, NULL, &r);
  ck_assert_msg(sscanf(r.out, "sum %lu", &v) == 1, "%s", r.out);
  ck_assert_msg(!(WIFEXITED(ra.status) && WEXITSTATUS(ra.status) == 0),
                "host A's process succeeded without its agent (the sum is then %lu); "
                "stdout: %s stderr: %s", v, ra.out, ra.err);
  /* A SIGBUS is the shim's, and it says so on stderr, with the reason. */
  ck_assert_msg(!(WIFSIGNALED(ra.status) && WTERMSIG(ra.status) == SIGBUS) ||
                    strstr(ra.err, "could not be served (the host agent is gone)") != NULL,
                "host A's process got SIGBUS with no word from dshm on stderr:\n%s", ra.err);
  ck_assert_msg(v >= (unsigned long)LONG_ROUNDS && v <= 2 * (unsigned long)LONG_ROUNDS,
                "sum %lu after host A's agent died: host B's %ld increments must all be kept",
                v, LONG_ROUNDS);
}
END_TEST

/* ---- the agent's background write-back (DSHM_FLUSH_MS) ------------------------------ */

#define WPAGES  200              /* pattern pages of tests/progs/flush.c's writer */
#define WMARKER (WPAGES + 65 - 1) /* its marker page (flush.c, GAP) */

static char log_path[64]; /* the verbose server's stderr */

/* A server whose log the tests read (harness.h, h_server_start_logged). */
static void setup_verbose(void) {
  ck_assert_msg(base_dir[0] != '\0', "no base directory (mkdtemp failed)");
  snprintf(test_dir, sizeof test_dir, "%s/tXXXXXX", base_dir);
  ck_assert_msg(mkdtemp(test_dir) != NULL, "mkdtemp: %s", strerror(errno));
  host_init(&host_a, "hostA");
  host_init(&host_b, "hostB");
  h_server_start_logged(&srv, log_path);
}

static void teardown_verbose(void) {
  teardown();
  unlink(log_path);
}

static int logged_flush_of(uint32_t page) {
  return h_logged_flush_of(log_path, page);
}

/* A writer on host A writes WPAGES pages, then the marker page, and waits; once the server
 * logged the agent's background write-back of the marker (the agent scans a small segment
 * from page 0 each period, so the pattern pages went first, on the same FIFO), host A's
 * agent is SIGKILLed: a reader on host B counts the intact pages. Without write-back
 * (DSHM_FLUSH_MS=0) the same scenario loses them all: the test can fail. */
static void killed_agent(int flush, const char *want) {
  char k[16];
  char *wr[] = {"flush", "write", KEYSTR(k, h_unique_key()), STR(WPAGES), NULL};
  char *ck[] = {"flush", "check", k, STR(WPAGES), NULL};
  char *noflush[] = {"DSHM_FLUSH_MS=0", NULL};
  struct h_proc w, c;
  struct h_result r;
  long deadline = h_now_ms() + 20000;

  spawn_on(&w, &host_a, wr, flush ? NULL : noflush);
  h_expect_line(&w, "written", 30000);
  while (flush && !logged_flush_of(WMARKER)) {
    ck_assert_msg(h_now_ms() < deadline, "no background write-back of page %d within 20 s",
                  WMARKER);
    poll(NULL, 0, 10);
  }
  ck_assert_int_eq(kill(the_agent(&host_a), SIGKILL), 0);
  ck_assert_int_eq(kill(w.pid, SIGKILL), 0);
  h_wait(&w, &r, 10000);
  spawn_on(&c, &host_b, ck, NULL);
  h_wait(&c, &r, RUN_MS);
  assert_exit0(&r, "flush check");
  ck_assert_str_eq(r.out, want);
  if (!flush)
    ck_assert(!logged_flush_of(WMARKER));
}

/* 4 processes x 4 threads of host A read one page at the same moment (after a barrier on
 * another page): the server sees one request for it (its verbose log: one READ_DATA whose
 * first page is the storm page), and every thread read the same value. */
START_TEST(test_fault_storm) {
  char k[16];
  char *argv[] = {"host", "storm", KEYSTR(k, h_unique_key()), "4", "4", NULL};
  struct h_proc p[4];
  struct h_result r;
  char line[512];
  int reads = 0;
  FILE *f;

  for (int i = 0; i < 4; i++)
    spawn_on(&p[i], &host_a, argv, NULL);
  for (int i = 0; i < 4; i++) {
    h_wait(&p[i], &r, RUN_MS);
    assert_exit0(&r, "storm");
    ck_assert_str_eq(r.out, "storm value 0\n");
  }
  f = fopen(log_path, "r");
  ck_assert_ptr_nonnull(f);
  while (fgets(line, sizeof line, f) != NULL) {
    const char *at = strstr(line, "READ_DATA shm ");
    unsigned first;
    if (at != NULL && sscanf(at, "READ_DATA shm %*d pages %u+", &first) == 1 && first == 40)
      reads++;
  }
  fclose(f);
  ck_assert_msg(reads == 1, "%d requests for the storm page left the host, expected 1", reads);
}
END_TEST

/* A process writes, the server is SIGKILLed, the process detaches (the agent keeps what it
 * owes: the host's last detach could not be written back) and exits. The idle agent must
 * not leave while it owes the server data: it is still there after five idle periods, and
 * once the server is back (same port, its data directory) its resync writes the pages back:
 * a reader on host B sees every byte. */
START_TEST(test_idle_agent_keeps_owed_data) {
  char k[16], go[256], data[256];
  char *wr[] = {"host", "writedetach", KEYSTR(k, h_unique_key()), "8", go, NULL};
  char *ck[] = {"host", "verify", k, "8", NULL};
  char *slow[] = {"DSHM_TIMEOUT_MS=20000", NULL};
  char *extra[] = {"--data-dir", data, NULL};
  struct h_proc w;
  struct h_result r;
  pid_t agent;
  int port, fd;

  snprintf(go, sizeof go, "%s/go", test_dir);
  snprintf(data, sizeof data, "%s/data", test_dir);
  ck_assert_int_eq(mkdir(data, 0700), 0);
  h_server_stop(&srv);
  h_server_start_args(&srv, 0, extra);
  port = srv.port;
  spawn_on(&w, &host_a, wr, slow);
  h_expect_line(&w, "written", RUN_MS);
  agent = the_agent(&host_a);
  h_server_kill(&srv);
  fd = open(go, O_CREAT | O_WRONLY, 0600);
  ck_assert_int_ge(fd, 0);
  close(fd);
  h_wait(&w, &r, RUN_MS);
  assert_exit0(&r, "writedetach");
  ck_assert_str_eq(r.out, "detached\n"); /* "written" was read above */
  /* Five idle periods: a condition on time itself (the agent must outlive them). */
  for (long end = h_now_ms() + 5 * IDLE_MS; h_now_ms() < end;)
    poll(NULL, 0, 20);
  ck_assert_msg(kill(agent, 0) == 0, "the idle agent left while it owed the server data");
  h_server_start_args(&srv, port, extra);
  run_on(&host_b, ck, "verify ok\n", &r);
}
END_TEST

/* Four roles on two hosts (A, B, A, B) take turns on one page, each turn a read and then a
 * write on the other host than the last: the plain counter beside the turn word is exact at
 * every turn. The server granted reads EXCLUSIVE along the way (migratory pages,
 * docs/protocol.md), so the test covers that path: a grant that dropped the owner's write
 * or left it a copy shows as a wrong count. */
START_TEST(test_turns_two_hosts) {
  char k[16], role[4][4];
  const struct host *on[4] = {&host_a, &host_b, &host_a, &host_b};
  struct h_proc p[4];
  struct h_result r;
  int migratory;

  KEYSTR(k, h_unique_key());
  for (int i = 0; i < 4; i++) {
    char *argv[] = {"host", "turns", k, "300", role[i], "4", NULL};
    snprintf(role[i], sizeof role[i], "%d", i);
    spawn_on(&p[i], on[i], argv, NULL);
  }
  for (int i = 0; i < 4; i++) {
    h_wait(&p[i], &r, RUN_MS);
    assert_exit0(&r, "turns");
    ck_assert_str_eq(r.out, "turns ok 1200\n");
  }
  migratory = h_logged_count(log_path, "<- READ_DATA reply", "EXCLUSIVE");
  ck_assert_msg(migratory > 0, "no read was granted EXCLUSIVE: the migratory path was not taken");
}
END_TEST

/* The READ_DATA requests the verbose server logged: how many, and the pages they asked for
 * in all. */
static void logged_reads(int *nreq, unsigned *npages) {
  FILE *f = fopen(log_path, "r");
  char line[512];

  ck_assert_msg(f != NULL, "%s", log_path);
  *nreq = 0;
  *npages = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    const char *at = strstr(line, "READ_DATA shm ");
    unsigned first, count;
    if (at != NULL && sscanf(at, "READ_DATA shm %*d pages %u+%u", &first, &count) == 2) {
      (*nreq)++;
      *npages += count;
    }
  }
  fclose(f);
}

/* Read-ahead adapts (agent/hostseg.c, ahead()): every 4th of 64 pages read in order is an
 * isolated fault, each asking for its page alone (16 requests for 16 pages: nothing fetched
 * that the reader does not touch); all 64 read in order by another host, the window doubles
 * from one page and takes at most 8 requests. A fixed read-ahead asks for 64 pages at the
 * first fault of each. */
START_TEST(test_read_ahead_adapts) {
  char k[16];
  char *strided[] = {"host", "scan", KEYSTR(k, h_unique_key()), "64", "4", NULL};
  char *all[] = {"host", "scan", k, "64", "1", NULL};
  struct h_result r;
  unsigned pages, pages2;
  int n, n2;

  run_on(&host_a, strided, "scan ok 16\n", &r);
  logged_reads(&n, &pages);
  ck_assert_int_eq(n, 16);
  ck_assert_uint_eq(pages, 16);
  run_on(&host_b, all, "scan ok 64\n", &r);
  logged_reads(&n2, &pages2);
  ck_assert_msg(n2 - n >= 1 && n2 - n <= 8, "64 pages read in order took %d requests", n2 - n);
}
END_TEST

/* Pipelined reads (agent/hostseg.c, prefetch): a reader on host B reads 1024 pages in order
 * that host A wrote, then A writes them all again (taking them from B) and B reads them
 * again: every word is of the latest generation, and B's agent asked for runs ahead of the
 * reader (its verbose log says so), so the prefetched runs are what was checked. */
static void count_prefetches(const char *path, const char *line, void *arg) {
  (void)path;
  *(int *)arg += strstr(line, "prefetch shm") != NULL;
}

START_TEST(test_pipelined_reads_stay_coherent) {
  char k[16];
  char *wr[] = {"host", "gens", KEYSTR(k, h_unique_key()), "1024", "w", NULL};
  char *rd[] = {"host", "gens", k, "1024", "r", NULL};
  char *verbose[] = {"DSHM_AGENT_VERBOSE=1", NULL};
  struct h_proc pw, pr;
  struct h_result r;
  int prefetches = 0;

  spawn_on(&pw, &host_a, wr, NULL);
  spawn_on(&pr, &host_b, rd, verbose);
  h_wait(&pw, &r, RUN_MS);
  assert_exit0(&r, "gens w");
  ck_assert_str_eq(r.out, "gens w ok\n");
  h_wait(&pr, &r, RUN_MS);
  assert_exit0(&r, "gens r");
  ck_assert_str_eq(r.out, "gens r ok\n");
  each_log_line(&host_b, count_prefetches, &prefetches);
  ck_assert_msg(prefetches > 0, "host B's agent logged no prefetch: the path was not taken");
}
END_TEST

START_TEST(test_agent_flush) {
  killed_agent(1, "intact " STR(WPAGES) " of " STR(WPAGES) "\n");
}
END_TEST

START_TEST(test_agent_no_flush) {
  killed_agent(0, "intact 0 of " STR(WPAGES) "\n");
}
END_TEST

/* SIGKILLs p and reaps it. */
static void kill_reap(struct h_proc *p) {
  int st;

  ck_assert_int_eq(kill(p->pid, SIGKILL), 0);
  ck_assert_int_eq(h_wait_exit(p->pid, &st, RUN_MS), 0);
  close(p->out_fd);
  close(p->err_fd);
}

/* Four programs at once, argv[i] on host on[i]; each must exit 0 printing want[i]. */
static void parties(const struct host *const on[4], char *const *const argv[4],
                    const char *const want[4]) {
  struct h_proc p[4];
  struct h_result r;

  for (int i = 0; i < 4; i++)
    spawn_on(&p[i], on[i], argv[i], NULL);
  for (int i = 0; i < 4; i++) {
    h_wait(&p[i], &r, RUN_MS);
    assert_exit0(&r, argv[i][1]);
    ck_assert_str_eq(r.out, want[i]);
  }
}

/* argv on hosts A, B, A, B at once; each must exit 0 printing want. */
static void four_parties(char *const argv[], const char *want) {
  const struct host *const on[4] = {&host_a, &host_b, &host_a, &host_b};
  char *const *const av[4] = {argv, argv, argv, argv};
  const char *const w[4] = {want, want, want, want};

  parties(on, av, w);
}

/* Consumers cons0 and cons1 on host B, two producers prod on host A (every wake a waiter
 * needs comes from the other host). */
static void b_consumes_a_produces(char *const cons0[], char *const cons1[],
                                  char *const prod[]) {
  const struct host *const on[4] = {&host_b, &host_b, &host_a, &host_a};
  char *const *const av[4] = {cons0, cons1, prod, prod};
  const char *const w[4] = {"consumed\n", "consumed\n", "produced\n", "produced\n"};

  parties(on, av, w);
}

/* SysV semaphores between hosts (tests/progs/semhost.c). A set of one semaphore is the
 * mutex of a plain counter in a segment: 2 processes on each of 2 hosts, 300 locked
 * increments each (SEM_UNDO on every operation): exact, and the semaphore back at 1. */
START_TEST(test_semaphore_mutex_two_hosts) {
  char sk[16], mk[16];
  char *init[] = {"semhost", "init", KEYSTR(sk, h_unique_key()), KEYSTR(mk, h_unique_key()),
                  NULL};
  char *argv[] = {"semhost", "mutex", sk, mk, "4", "300", NULL};
  char *sum[] = {"semhost", "sum", sk, mk, NULL};
  struct h_result r;

  run_on(&host_a, init, "ready\n", &r);
  four_parties(argv, "done\n");
  run_on(&host_b, sum, "counter 1200 sem 1\n", &r);
}
END_TEST

/* A process on host A takes the semaphore with SEM_UNDO; host B cannot (EAGAIN after its
 * timeout) until A's process is SIGKILLed: its adjustment is applied (the host agent tells
 * the server it exited), and B's waiting semtimedop gets it. Another process keeps host A's
 * agent (and its connection) up meanwhile: the adjustment must come from the exit alone, not
 * from the host leaving. */
START_TEST(test_sem_undo_after_kill) {
  char sk[16], mk[16];
  char *init[] = {"semhost", "init", KEYSTR(sk, h_unique_key()), KEYSTR(mk, h_unique_key()),
                  NULL};
  char *hold[] = {"semhost", "hold", sk, NULL};
  char *take_short[] = {"semhost", "take", sk, "1", NULL};
  char *take[] = {"semhost", "take", sk, "30", NULL};
  char *keep[] = {"semhost", "keep", sk, NULL};
  char *sum[] = {"semhost", "sum", sk, mk, NULL};
  struct h_proc holder, taker, keeper;
  struct h_result r;

  run_on(&host_a, init, "ready\n", &r);
  spawn_on(&keeper, &host_a, keep, NULL);
  h_expect_line(&keeper, "kept", RUN_MS);
  spawn_on(&holder, &host_a, hold, NULL);
  h_expect_line(&holder, "held", RUN_MS);
  run_on(&host_b, take_short, "EAGAIN\n", &r);
  spawn_on(&taker, &host_b, take, NULL);
  kill_reap(&holder);
  h_wait(&taker, &r, RUN_MS);
  assert_exit0(&r, "semhost take");
  ck_assert_str_eq(r.out, "taken\n");
  run_on(&host_a, sum, "counter 0 sem 0\n", &r);
  kill_reap(&keeper);
}
END_TEST

/* POSIX semaphores (sem_t, process-shared) in a segment, used from two hosts: a bounded
 * queue (tests/progs/waits.c) with both producers on host A and both consumers on host B,
 * 1000 items each, so that every wake a waiter needs comes from the other host (a lost one
 * shows as ETIMEDOUT); the sums are exact and the semaphores end where they started. Then a
 * sem_timedwait that nobody posts times out (ETIMEDOUT, not before its time). */
START_TEST(test_sem_t_two_hosts) {
  char k[16];
  char *init[] = {"waits", "init", KEYSTR(k, h_unique_key()), NULL};
  char *prod[] = {"waits", "producer", k, "1000", NULL};
  char *cons0[] = {"waits", "consumer", k, "0", "1000", NULL};
  char *cons1[] = {"waits", "consumer", k, "1", "1000", NULL};
  char *tmo[] = {"waits", "timeout", k, "300", NULL};
  char *sum[] = {"waits", "sum", k, NULL};
  struct h_result r;

  run_on(&host_a, init, "ready\n", &r);
  b_consumes_a_produces(cons0, cons1, prod);
  run_on(&host_b, tmo, "ETIMEDOUT waited>=300ms=1\n", &r);
  run_on(&host_b, sum, "sum 1001000 count 2000 full 0 empty 16 lock 1\n", &r);
}
END_TEST

/* A sem_post on the waiter's own host whose FUTEX_WAKE comes after the mapping budget
 * (DSHM_MAX_MAPS) lowered the poster's view of the page (preload/vma.c, drop): the wake fails
 * with EFAULT (a shared futex's key is found through the caller's view), the host keeps the
 * page so its word does not move, and the waiter must still wake: drop wakes the host word's
 * sleepers (verify/netwait.pml, TRIM_NO_WAKE). Without that the waiter times out. */
START_TEST(test_trim_keeps_local_wake) {
  char k[16];
  char *init[] = {"waits", "trinit", KEYSTR(k, h_unique_key()), NULL};
  char *wait[] = {"waits", "trwait", k, "15000", NULL};
  char *post[] = {"waits", "trpost", k, NULL};
  char *small[] = {"DSHM_MAX_MAPS=16", NULL};
  struct h_proc w, p;
  struct h_result r;

  run_on(&host_b, init, "ready\n", &r);
  spawn_on(&w, &host_b, wait, NULL);
  h_expect_line(&w, "waiting", RUN_MS);
  ck_assert_msg(h_wait_in_syscall(w.pid, SYS_futex_waitv, RUN_MS) == 0,
                "the waiter never slept in shim_netwait's futex_waitv");
  spawn_on(&p, &host_b, post, small);
  h_wait(&p, &r, RUN_MS);
  assert_exit0(&r, "trpost");
  ck_assert_str_eq(r.out, "lowered 1 wake EFAULT\n");
  h_wait(&w, &r, RUN_MS);
  assert_exit0(&r, "trwait");
  ck_assert_str_eq(r.out, "woken\n");
}
END_TEST

/* Host B's agent SIGKILLed while a process of host B sleeps in sem_timedwait on a semaphore
 * in a segment (asleep in shim_netwait's futex_waitv on the futex word and the host word):
 * nothing will move the host word again, so the shim's shim_agent_dead wakes it, and the
 * waiter must end at once, by the shim's SIGBUS (its page is lost, as every page of a host
 * whose agent died), not sleep until its 20 s deadline (then ETIMEDOUT, exit 0; or, as it
 * was, the SIGBUS only then). */
START_TEST(test_agent_death_wakes_waiter) {
  char k[16];
  char *init[] = {"waits", "trinit", KEYSTR(k, h_unique_key()), NULL};
  char *wait[] = {"waits", "trwait", k, "20000", NULL};
  struct h_proc w;
  struct h_result r;
  long t0;

  run_on(&host_b, init, "ready\n", &r);
  spawn_on(&w, &host_b, wait, NULL);
  h_expect_line(&w, "waiting", RUN_MS);
  ck_assert_msg(h_wait_in_syscall(w.pid, SYS_futex_waitv, RUN_MS) == 0,
                "the waiter never slept in shim_netwait's futex_waitv");
  t0 = h_now_ms();
  ck_assert_int_eq(kill(the_agent(&host_b), SIGKILL), 0);
  h_wait(&w, &r, 30000);
  /* The shim's SIGBUS, which it names on stderr (a sanitizer build's handler turns the
   * signal into an exit status of its own) */
  ck_assert_msg(!(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) &&
                    strstr(r.err, "dshm: SIGBUS at ") != NULL &&
                    strstr(r.err, "the host agent is gone") != NULL,
                "the waiter ended with status %#x after %ld ms (stdout: %s stderr: %s)",
                r.status, h_now_ms() - t0, r.out, r.err);
  ck_assert_msg(h_now_ms() - t0 < 10000, "the waiter took %ld ms to notice", h_now_ms() - t0);
}
END_TEST

/* A process-shared pthread mutex in a segment guarding a plain counter, 2 processes on each
 * of 2 hosts (tests/progs/waits.c), each critical section held 300 us so that the others
 * sleep in the lock, on both hosts: the unlock on one host must wake a sleeper on the other
 * (without the interposed lock the first cross-host sleeper never wakes). Exact, for each
 * mutex type glibc's algorithm has. */
static void mutex_two_hosts(const char *type) {
  char k[16];
  char *init[] = {"waits", "minit", KEYSTR(k, h_unique_key()), (char *)type, NULL};
  char *argv[] = {"waits", "mutex", k, "4", "100", "300", NULL};
  char *sum[] = {"waits", "msum", k, NULL};
  struct h_result r;

  run_on(&host_a, init, "ready\n", &r);
  four_parties(argv, "done\n");
  run_on(&host_b, sum, "counter 400\n", &r);
}

START_TEST(test_mutex_two_hosts) {
  mutex_two_hosts("normal");
  mutex_two_hosts("recursive");
  mutex_two_hosts("errorcheck");
  mutex_two_hosts("robust"); /* preload/robust.c's own algorithm */
}
END_TEST

/* A robust mutex (process-shared, in a segment) held by a process on host A that is
 * SIGKILLed while a process on each host waits for it (each saw EBUSY first: the owner was
 * alive then): one of them gets EOWNERDEAD (from its own host's look at the owner, or from
 * host A's agent through the server), makes it consistent, and the other gets it after
 * (tests/progs/waits.c). Without robust.c the waiter on host B never wakes. */
START_TEST(test_robust_owner_killed) {
  char k[16];
  char *init[] = {"waits", "minit", KEYSTR(k, h_unique_key()), "robust", NULL};
  char *hold[] = {"waits", "rhold", k, NULL};
  char *take[] = {"waits", "rtake", k, "30000", NULL};
  char *sum[] = {"waits", "msum", k, NULL};
  struct h_proc holder, tb, ta;
  struct h_result rb, ra, r;

  run_on(&host_a, init, "ready\n", &r);
  spawn_on(&holder, &host_a, hold, NULL);
  h_expect_line(&holder, "held", RUN_MS);
  spawn_on(&tb, &host_b, take, NULL);
  h_expect_line(&tb, "EBUSY", RUN_MS);
  spawn_on(&ta, &host_a, take, NULL);
  h_expect_line(&ta, "EBUSY", RUN_MS);
  kill_reap(&holder);
  h_wait(&tb, &rb, RUN_MS);
  assert_exit0(&rb, "rtake on B");
  h_wait(&ta, &ra, RUN_MS);
  assert_exit0(&ra, "rtake on A");
  ck_assert_msg((!strcmp(rb.out, "EOWNERDEAD\n") && !strcmp(ra.out, "0\n")) ||
                    (!strcmp(rb.out, "0\n") && !strcmp(ra.out, "EOWNERDEAD\n")),
                "after the owner's death: B took it with \"%s\", A with \"%s\"", rb.out, ra.out);
  run_on(&host_b, sum, "counter 3\n", &r);
}
END_TEST

/* The owner's host is lost: host A's agent is SIGKILLed (its connection to the server
 * closes) while its process holds a robust mutex and a process on host B waits: B gets
 * EOWNERDEAD (the server answers for a host it has no connection to), although the holder
 * process itself still runs, cut off. */
START_TEST(test_robust_owner_host_lost) {
  char k[16];
  char *init[] = {"waits", "minit", KEYSTR(k, h_unique_key()), "robust", NULL};
  char *hold[] = {"waits", "rhold", k, NULL};
  char *take[] = {"waits", "rtake", k, "30000", NULL};
  char *sum[] = {"waits", "msum", k, NULL};
  struct h_proc holder, tb;
  struct h_result r;

  run_on(&host_a, init, "ready\n", &r);
  spawn_on(&holder, &host_a, hold, NULL);
  h_expect_line(&holder, "held", RUN_MS);
  spawn_on(&tb, &host_b, take, NULL);
  h_expect_line(&tb, "EBUSY", RUN_MS);
  ck_assert_int_eq(kill(the_agent(&host_a), SIGKILL), 0);
  h_wait(&tb, &r, RUN_MS);
  assert_exit0(&r, "rtake on B");
  ck_assert_str_eq(r.out, "EOWNERDEAD\n");
  kill_reap(&holder);
  run_on(&host_b, sum, "counter 2\n", &r);
}
END_TEST

/* Condition variables (process-shared, CLOCK_MONOTONIC) in a segment, with their mutex: a
 * bounded queue with both producers on host A and both consumers on host B, 1000 items each
 * (tests/progs/waits.c): every signal a waiter needs comes from the other host (a lost one
 * shows as ETIMEDOUT after 20 s; glibc's own condition variables lose them). */
START_TEST(test_condvar_two_hosts) {
  char k[16];
  char *init[] = {"waits", "cinit", KEYSTR(k, h_unique_key()), NULL};
  char *prod[] = {"waits", "cprod", k, "1000", NULL};
  char *cons0[] = {"waits", "ccons", k, "0", "1000", NULL};
  char *cons1[] = {"waits", "ccons", k, "1", "1000", NULL};
  char *sum[] = {"waits", "csum", k, NULL};
  struct h_result r;

  run_on(&host_a, init, "ready\n", &r);
  b_consumes_a_produces(cons0, cons1, prod);
  run_on(&host_b, sum, "sum 1001000 count 2000 left 0\n", &r);
}
END_TEST

/* A process-shared read-write lock in a segment guarding a plain record of 64 words, 2
 * processes on each of 2 hosts (tests/progs/rwbar.c), each taking it 100 times to write (the
 * record word by word, holding it 300 us half-written) and 100 times to read (checking every
 * word is equal): the others sleep in the lock on both hosts, and an unlock on one host must
 * wake sleepers on the other (glibc's own rwlock leaves them asleep: the parties time out).
 * No torn record, no reader beside a writer, every write counted; for reader preference and
 * for PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP. */
static void rwlock_two_hosts(const char *kind) {
  char k[16];
  char *init[] = {"rwbar", "rwinit", KEYSTR(k, h_unique_key()), (char *)kind, NULL};
  char *argv[] = {"rwbar", "rw", k, "4", "100", "300", NULL};
  char *sum[] = {"rwbar", "rwsum", k, NULL};
  struct h_result r;

  run_on(&host_a, init, "ready\n", &r);
  four_parties(argv, "done\n");
  run_on(&host_b, sum, "writes 400 record 400\n", &r);
}

START_TEST(test_rwlock_two_hosts) {
  rwlock_two_hosts("reader");
  rwlock_two_hosts("writer-nonrecursive");
}
END_TEST

/* A process-shared barrier of 4 parties in a segment, 2 on each of 2 hosts, 200 rounds
 * (tests/progs/rwbar.c): nobody passes before every party arrived (each checks the others'
 * round after it), the round is reusable at once, and exactly one party a round gets
 * PTHREAD_BARRIER_SERIAL_THREAD; glibc's own barrier leaves a host asleep. */
START_TEST(test_barrier_two_hosts) {
  char k[16];
  char *init[] = {"rwbar", "binit", KEYSTR(k, h_unique_key()), "4", NULL};
  char *argv[] = {"rwbar", "barrier", k, "4", "200", NULL};
  char *sum[] = {"rwbar", "bsum", k, NULL};
  struct h_result r;

  run_on(&host_a, init, "ready\n", &r);
  four_parties(argv, "done\n");
  run_on(&host_b, sum, "serials 200\n", &r);
}
END_TEST

static Suite *agent_suite(void) {
  Suite *s = suite_create("agent");
  TCase *tc = tcase_create("host");

  tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_counter_two_hosts);
  tcase_add_test(tc, test_flag_two_hosts);
  tcase_add_test(tc, test_flag_one_host);
  tcase_add_test(tc, test_mutex);
  tcase_add_test(tc, test_mutex_reattach);
  tcase_add_test(tc, test_sem);
  tcase_add_test(tc, test_exitwrite);
  tcase_add_test(tc, test_killwrite);
  tcase_add_test(tc, test_rmidfork);
  tcase_add_test(tc, test_forks);
  tcase_add_test(tc, test_readers);
  tcase_add_test(tc, test_readers_fresh);
  tcase_add_test(tc, test_agent_killed);
  tcase_add_test(tc, test_idle_agent_keeps_owed_data);
  tcase_add_test(tc, test_semaphore_mutex_two_hosts);
  tcase_add_test(tc, test_sem_undo_after_kill);
  tcase_add_test(tc, test_sem_t_two_hosts);
  tcase_add_test(tc, test_mutex_two_hosts);
  tcase_add_test(tc, test_robust_owner_killed);
  tcase_add_test(tc, test_robust_owner_host_lost);
  tcase_add_test(tc, test_condvar_two_hosts);
  tcase_add_test(tc, test_rwlock_two_hosts);
  tcase_add_test(tc, test_barrier_two_hosts);
  tcase_add_test(tc, test_trim_keeps_local_wake);
  tcase_add_test(tc, test_agent_death_wakes_waiter);
  suite_add_tcase(s, tc);
  tc = tcase_create("flush");
  tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture(tc, setup_verbose, teardown_verbose);
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_agent_flush);
  tcase_add_test(tc, test_fault_storm);
  tcase_add_test(tc, test_agent_no_flush);
  tcase_add_test(tc, test_turns_two_hosts);
  tcase_add_test(tc, test_read_ahead_adapts);
  tcase_add_test(tc, test_pipelined_reads_stay_coherent);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(agent_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
