/* harness.c - process plumbing for the integration tests: server start/stop, preloaded runs. */
#include "harness.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Sanitizer runtimes: the preloaded shim shares the program's SIGSEGV, so ASan must leave
 * that signal alone; the server must exit leak-free. Harmless in the release build. */
#define CLIENT_ASAN "verify_asan_link_order=0:handle_segv=0:allow_user_segv_handler=1:detect_leaks=0"
#define SERVER_ASAN "detect_leaks=1"

static const char *need_env(const char *name) {
  const char *v = getenv(name);
  ck_assert_msg(v != NULL && *v, "%s is not set (run the tests through meson)", name);
  return v;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int pidfd_of(pid_t pid) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  ck_assert_msg(fd >= 0, "pidfd_open: %s", strerror(errno));
  return fd;
}

/* Reads one line (without the newline) from fd within the deadline; 0 on success. */
static int read_line(int fd, char *buf, size_t cap, long deadline) {
  size_t n = 0;
  for (;;) {
    struct pollfd pfd = {fd, POLLIN, 0};
    long left = deadline - now_ms();
    char c;
    if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
      return -1;
    ssize_t r = read(fd, &c, 1);
    if (r <= 0)
      return -1;
    if (c == '\n') {
      buf[n] = '\0';
      return 0;
    }
    if (n + 1 < cap)
      buf[n++] = c;
  }
}

void h_server_start(struct h_server *s) {
  h_server_start_args(s, 0, NULL);
}

int h_server_exec(pid_t *pid, const char *const args[], const char *log) {
  const char *bin = need_env("DSHM_TEST_SERVER");
  const char *argv[32];
  int out[2], n = 0, logfd = -1;

  argv[n++] = bin;
  for (int i = 0; args[i] != NULL && n < 31; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  if (log != NULL) {
    logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(logfd, 0);
  }
  ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
  *pid = fork();
  ck_assert_int_ge(*pid, 0);
  if (*pid == 0) {
    /* A failed assertion ends the test process without teardown: take the server along. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], STDOUT_FILENO);
    if (logfd >= 0)
      dup2(logfd, STDERR_FILENO);
    /* A test may tune the server's sanitizer (e.g. a small quarantine to measure RSS). */
    setenv("ASAN_OPTIONS", getenv("DSHM_TEST_SERVER_ASAN") ? getenv("DSHM_TEST_SERVER_ASAN")
                                                            : SERVER_ASAN, 1);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  if (logfd >= 0)
    close(logfd);
  return out[0];
}

void h_server_start_args(struct h_server *s, int port, char *const extra[]) {
  char portstr[16], line[256];
  const char *args[32];
  int n = 0, fd;

  snprintf(portstr, sizeof portstr, "%d", port);
  args[n++] = "--port";
  args[n++] = portstr;
  for (int i = 0; extra != NULL && extra[i] != NULL && n < 29; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  fd = h_server_exec(&s->pid, args, NULL);
  ck_assert_msg(read_line(fd, line, sizeof line, now_ms() + 15000) == 0,
                "dshm-server did not report its address");
  close(fd);
  ck_assert_msg(sscanf(line, "dshm-server: listening on 127.0.0.1:%d", &s->port) == 1,
                "unexpected first line from dshm-server: %s", line);
  ck_assert_int_gt(s->port, 0);
  snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->port);
}

/* Waits for pid within timeout_ms; returns 0 and the status, or -1 on timeout. */
static int wait_pid(pid_t pid, int *status, int timeout_ms) {
  int pfd = pidfd_of(pid);
  struct pollfd p = {pfd, POLLIN, 0};
  int rc = poll(&p, 1, timeout_ms);
  close(pfd);
  if (rc <= 0)
    return -1;
  ck_assert_int_eq(waitpid(pid, status, 0), pid);
  return 0;
}

void h_server_stop(struct h_server *s) {
  int status;
  ck_assert_int_eq(kill(s->pid, SIGTERM), 0);
  if (wait_pid(s->pid, &status, 20000) != 0) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    ck_abort_msg("dshm-server did not exit within 20 s of SIGTERM");
  }
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "dshm-server exit status %#x after SIGTERM", status);
}

void h_server_kill(struct h_server *s) {
  int status;
  ck_assert_int_eq(kill(s->pid, SIGKILL), 0);
  ck_assert_int_eq(wait_pid(s->pid, &status, 20000), 0);
}

void h_spawn_env(struct h_proc *p, const char *dshm_server, char *const argv[],
                 char *const env[]) {
  const char *shim = dshm_server ? need_env("DSHM_TEST_PRELOAD") : NULL;
  char tool[4096];
  int out[2], err[2];

  snprintf(tool, sizeof tool, "%s/%s", need_env("DSHM_TEST_PROGS"), argv[0]);
  ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
  ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
  p->pid = fork();
  ck_assert_int_ge(p->pid, 0);
  if (p->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    setenv("ASAN_OPTIONS", CLIENT_ASAN, 1);
    if (dshm_server) {
      setenv("LD_PRELOAD", shim, 1);
      setenv("DSHM_SERVER", dshm_server, 1);
    } else {
      unsetenv("LD_PRELOAD");
    }
    for (int i = 0; env != NULL && env[i] != NULL; i++)
      putenv(env[i]);
    execv(tool, argv);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  p->out_fd = out[0];
  p->err_fd = err[0];
}

void h_spawn(struct h_proc *p, const struct h_server *server, char *const argv[]) {
  h_spawn_env(p, server ? server->addr : NULL, argv, NULL);
}

void h_expect_line(struct h_proc *p, const char *want, int timeout_ms) {
  char line[512];
  ck_assert_msg(read_line(p->out_fd, line, sizeof line, now_ms() + timeout_ms) == 0,
                "no line from pid %d within %d ms (wanted \"%s\")", (int)p->pid, timeout_ms, want);
  ck_assert_str_eq(line, want);
}

static void drain(int fd, char *buf, size_t *len, size_t cap, int *open_) {
  char tmp[4096];
  ssize_t r = read(fd, tmp, sizeof tmp);
  if (r <= 0) {
    *open_ = 0;
    return;
  }
  size_t take = (size_t)r < cap - 1 - *len ? (size_t)r : cap - 1 - *len;
  memcpy(buf + *len, tmp, take);
  *len += take;
  buf[*len] = '\0';
}

void h_wait(struct h_proc *p, struct h_result *r, int timeout_ms) {
  long deadline = now_ms() + timeout_ms;
  size_t olen = 0, elen = 0;
  int oopen = 1, eopen = 1;

  r->out[0] = r->err[0] = '\0';
  while (oopen || eopen) {
    struct pollfd pfd[2] = {{oopen ? p->out_fd : -1, POLLIN, 0},
                            {eopen ? p->err_fd : -1, POLLIN, 0}};
    long left = deadline - now_ms();
    if (left <= 0 || poll(pfd, 2, (int)left) <= 0)
      break;
    if (pfd[0].revents)
      drain(p->out_fd, r->out, &olen, sizeof r->out, &oopen);
    if (pfd[1].revents)
      drain(p->err_fd, r->err, &elen, sizeof r->err, &eopen);
  }
  close(p->out_fd);
  close(p->err_fd);
  long left = deadline - now_ms();
  if (wait_pid(p->pid, &r->status, left > 0 ? (int)left : 0) != 0) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &r->status, 0);
    ck_abort_msg("pid %d did not finish within %d ms; stdout: %s stderr: %s", (int)p->pid,
                 timeout_ms, r->out, r->err);
  }
}

void h_run_ok(const struct h_server *server, char *const argv[], struct h_result *r) {
  struct h_proc p;
  h_spawn(&p, server, argv);
  h_wait(&p, r, 60000);
  ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
                "shmtool %s exited with status %#x; stdout: %s stderr: %s", argv[1],
                r->status, r->out, r->err);
}

int h_unique_key(void) {
  static int counter;

  for (;;) {
    int key = 0x5D000000 | (getpid() & 0xFFFF) << 8 | (++counter & 0xFF);
    /* Not one the kernel already has (left by an earlier run killed midway): a native
     * run would find it instead of creating it. The harness itself is not preloaded. */
    if (shmget(key, 0, 0) < 0 && errno == ENOENT)
      return key;
  }
}

void h_kernel_forget(const char *key) {
  int id = shmget((key_t)strtol(key, NULL, 0), 0, 0);

  if (id >= 0)
    shmctl(id, IPC_RMID, NULL);
}

long h_now_ms(void) {
  return now_ms();
}

int h_read_line(int fd, char *buf, size_t cap, int timeout_ms) {
  return read_line(fd, buf, cap, now_ms() + timeout_ms);
}

int h_wait_exit(pid_t pid, int *status, int timeout_ms) {
  return wait_pid(pid, status, timeout_ms);
}

int h_wait_in_syscall(pid_t pid, long nr, int timeout_ms) {
  char path[64], buf[64];
  long deadline = h_now_ms() + timeout_ms;

  snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
  do {
    FILE *f = fopen(path, "r");
    long got = -2;
    if (f == NULL)
      return -1;
    /* "NR args... sp pc" while blocked, "running" or "-1 sp pc" otherwise */
    if (fgets(buf, sizeof buf, f) != NULL && sscanf(buf, "%ld", &got) != 1)
      got = -2;
    fclose(f);
    if (got == nr)
      return 0;
    usleep(2000); /* polling a condition, with a deadline */
  } while (h_now_ms() < deadline);
  return -1;
}

void h_server_start_logged(struct h_server *s, char *log_path) {
  int fd, saved;

  strcpy(log_path, "/tmp/dshm-test-log.XXXXXX");
  fd = mkstemp(log_path);
  ck_assert_int_ge(fd, 0);
  saved = dup(STDERR_FILENO);
  ck_assert_int_ge(saved, 0);
  ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  setenv("DSHM_VERBOSE", "1", 1);
  h_server_start(s);
  unsetenv("DSHM_VERBOSE");
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
}

int h_logged_count(const char *log_path, const char *a, const char *b) {
  FILE *f = fopen(log_path, "r");
  char line[512];
  int n = 0;

  ck_assert_msg(f != NULL, "%s", log_path);
  while (fgets(line, sizeof line, f) != NULL)
    n += strstr(line, a) != NULL && strstr(line, b) != NULL;
  fclose(f);
  return n;
}

int h_logged_flush_of(const char *log_path, unsigned page) {
  FILE *f = fopen(log_path, "r");
  char line[512];
  int found = 0;

  ck_assert_msg(f != NULL, "%s", log_path);
  while (!found && fgets(line, sizeof line, f) != NULL) {
    const char *at = strstr(line, "WRITE_DATA shm ");
    unsigned first, count;
    if (at != NULL && strstr(at, "(kept") != NULL &&
        sscanf(at, "WRITE_DATA shm %*d pages %u+%u", &first, &count) == 2)
      found = first <= page && page - first < count;
  }
  fclose(f);
  return found;
}
