/* harness.h - starts a real dshm-server and runs real programs under LD_PRELOAD for tests. */
#ifndef DSHM_TEST_HARNESS_H
#define DSHM_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

struct h_server {
  pid_t pid;
  int port;
  char addr[64]; /* "127.0.0.1:PORT", the value for DSHM_SERVER */
};

/* A child process with its stdout (and stderr) captured through pipes. */
struct h_proc {
  pid_t pid;
  int out_fd;
  int err_fd;
};

struct h_result {
  int status;      /* as from waitpid */
  char out[8192];  /* captured stdout, NUL-terminated (truncated if longer) */
  char err[8192];  /* captured stderr */
};

/* Starts build/server/dshm-server --port 0 and waits for its "listening on" line.
 * The server inherits the environment (DSHM_* settings); DSHM_TEST_SERVER_ASAN, if set,
 * replaces its ASAN_OPTIONS. Fails the current test on error. */
void h_server_start(struct h_server *s);

/* The same on a given port (0: any; a restart passes the old one) with extra server
 * arguments (NULL-terminated, may be NULL). */
void h_server_start_args(struct h_server *s, int port, char *const extra[]);

/* The start itself, for a test that reads the server's first lines on its own: forks
 * DSHM_TEST_SERVER with args (NULL-terminated, without the program; at most 30), its stdout
 * a pipe whose read end is returned, its stderr written to log (truncated first; inherited
 * when NULL), its ASAN_OPTIONS from DSHM_TEST_SERVER_ASAN if set; killed if the test
 * process dies. */
int h_server_exec(pid_t *pid, const char *const args[], const char *log);

/* SIGKILL, and reaps it. */
void h_server_kill(struct h_server *s);

/* SIGTERM, then waits (bounded) and asserts a clean exit 0 (in the sanitizer build this
 * also means LeakSanitizer found no leak in the server). */
void h_server_stop(struct h_server *s);

/* Runs the test program argv[0] (a name like "shmtool", found in $DSHM_TEST_PROGS; argv is
 * NULL-terminated) natively (server == NULL) or preloaded with the shim and DSHM_SERVER
 * pointing at server. */
void h_spawn(struct h_proc *p, const struct h_server *server, char *const argv[]);

/* Like h_spawn with an explicit DSHM_SERVER value (may be an unreachable address; NULL
 * runs natively) and extra "NAME=value" environment entries (env may be NULL). */
void h_spawn_env(struct h_proc *p, const char *dshm_server, char *const argv[],
                 char *const env[]);

/* Reads one line from the child's stdout (bounded by timeout_ms); asserts it equals want. */
void h_expect_line(struct h_proc *p, const char *want, int timeout_ms);

/* Collects output and waits for the child, at most timeout_ms, then kills it and fails. */
void h_wait(struct h_proc *p, struct h_result *r, int timeout_ms);

/* Runs to completion and asserts exit status 0; returns the result for output checks. */
void h_run_ok(const struct h_server *server, char *const argv[], struct h_result *r);

/* A SysV key unlikely to collide with other tests or other runs. */
int h_unique_key(void);
/* Removes the kernel's segment with this key (a KEYSTR string), if any: native runs of
 * the differential tests must not leave segments behind in the machine. */
void h_kernel_forget(const char *key);

/* A server with --verbose (DSHM_VERBOSE) whose stderr goes to a new file, named into
 * log_path (a buffer of at least 32 bytes; the caller unlinks it): it logs every
 * WRITE_DATA it receives, background write-backs marked "(kept". */
void h_server_start_logged(struct h_server *s, char *log_path);
/* Whether the server log at log_path holds a background write-back (WRITE_DATA keeping
 * the pages) of a run that contains page. Fails the test if the log cannot be read. */
int h_logged_flush_of(const char *log_path, unsigned page);
/* How many lines of the server log at log_path hold both a and b. Fails the test if the log
 * cannot be read. */
int h_logged_count(const char *log_path, const char *a, const char *b);

/* CLOCK_MONOTONIC in milliseconds. */
long h_now_ms(void);
/* Reads one line (without the newline) from fd within timeout_ms; 0, or -1 on EOF or timeout. */
int h_read_line(int fd, char *buf, size_t cap, int timeout_ms);
/* Waits up to timeout_ms for pid (a child) to end; 0 and its wait status, or -1 on timeout. */
int h_wait_exit(pid_t pid, int *status, int timeout_ms);
/* Waits up to timeout_ms until pid's main thread is blocked in system call nr
 * (/proc/PID/syscall): e.g. asleep in SYS_futex_waitv, after which a wake that is lost stays
 * lost. 0, or -1 on timeout or if pid is gone. */
int h_wait_in_syscall(pid_t pid, long nr, int timeout_ms);

#endif
