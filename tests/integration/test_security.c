/* test_security.c - a real dshm-server's security (issue #4): the refusal to serve a network
 * without a token, token challenge-response with real preloaded programs and raw peers
 * (wrong, missing, unfinished and replayed proofs), the Unix socket listener with
 * kernel-verified identities and stale socket files, and --max-pending under a flood. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "harness.h"
#include "proto.h"
#include "rawclient.h"

#define TOKEN "c2VjcmV0LXRva2VuLWZvci10ZXN0cw=="
#define NOBODY 65534

/* ---- a server with our own arguments; its stderr goes to a file we can read ---- */

struct srv {
  struct h_server h;      /* pid, port, addr: what h_spawn_env and h_server_stop use */
  char log[128];          /* the server's stderr */
  char unix_path[108];    /* "" unless --unix */
};

static char dir[32];      /* a private directory per test: token files, sockets */

static void mkdir_private(void) {
  snprintf(dir, sizeof dir, "/tmp/dshm-sec-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  /* The unprivileged child must reach the socket inside it. */
  ck_assert_int_eq(chmod(dir, 0755), 0);
}

/* Writes a token file with mode; returns its path (static per name). */
static const char *token_file(const char *name, const char *content, mode_t mode) {
  static char path[4][128];
  static int next;
  char *p = path[next++ % 4];
  int fd;

  snprintf(p, 128, "%s/%s", dir, name);
  fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
  ck_assert_int_eq(fchmod(fd, mode), 0);
  close(fd);
  return p;
}

/* Starts dshm-server with args (NULL-terminated); returns its stdout's read end. */
static int srv_exec(struct srv *s, const char *const args[]) {
  const char *bin = getenv("DSHM_TEST_SERVER");
  const char *argv[24];
  int out[2], n = 0, logfd;

  ck_assert_ptr_nonnull(bin);
  argv[n++] = bin;
  for (int i = 0; args[i] != NULL && n < 23; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  snprintf(s->log, sizeof s->log, "%s/server.log", dir);
  logfd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ck_assert_int_ge(logfd, 0);
  ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
  s->h.pid = fork();
  ck_assert_int_ge(s->h.pid, 0);
  if (s->h.pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], STDOUT_FILENO);
    dup2(logfd, STDERR_FILENO);
    setenv("ASAN_OPTIONS", getenv("DSHM_TEST_SERVER_ASAN") ? getenv("DSHM_TEST_SERVER_ASAN")
                                                            : "detect_leaks=1", 1);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  close(logfd);
  return out[0];
}

/* Starts a server that must come up: waits for its TCP line (when with_tcp) and its unix
 * line (when unix_path is set). */
static void srv_start(struct srv *s, const char *const args[], int with_tcp) {
  char line[256];
  int fd = srv_exec(s, args);

  if (with_tcp) {
    ck_assert_msg(h_read_line(fd, line, sizeof line, 15000) == 0, "server did not start");
    ck_assert_msg(sscanf(line, "dshm-server: listening on 127.0.0.1:%d", &s->h.port) == 1,
                  "unexpected line: %s", line);
    snprintf(s->h.addr, sizeof s->h.addr, "127.0.0.1:%d", s->h.port);
  }
  if (s->unix_path[0]) {
    char want[200];
    snprintf(want, sizeof want, "dshm-server: listening on unix:%s", s->unix_path);
    ck_assert_msg(h_read_line(fd, line, sizeof line, 15000) == 0, "no unix listening line");
    ck_assert_str_eq(line, want);
  }
  close(fd);
}

/* Waits (bounded) for a server that must exit by itself; returns its wait status. */
static int srv_wait_exit(struct srv *s) {
  int status;

  if (h_wait_exit(s->h.pid, &status, 15000) != 0) {
    kill(s->h.pid, SIGKILL);
    waitpid(s->h.pid, &status, 0);
    ck_abort_msg("dshm-server did not exit by itself");
  }
  return status;
}

static void slurp(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY);
  ssize_t n;

  ck_assert_int_ge(fd, 0);
  n = read(fd, buf, cap - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
}

/* ---- requests over the raw client (rawclient.h), TCP or the Unix socket ---- */

static struct proto_msg rc_hello(uint32_t uid, uint32_t gid) {
  struct proto_msg m = rc_msg(PROTO_OP_HELLO, 1);
  m.u.hello.pid = (uint32_t)getpid();
  m.u.hello.uid = uid;
  m.u.hello.gid = gid;
  m.u.hello.name_len = 6;
  memcpy(m.u.hello.name, "secraw", 6);
  return m;
}

/* HELLO without a token: 0 when the reply arrives. */
static int rc_plain_hello(int fd, uint32_t uid, uint32_t gid) {
  struct proto_msg m = rc_hello(uid, gid), r;
  if (rc_send_msg(fd, &m) < 0 || rc_reply(fd, 1, &r) < 0 || r.h.status != 0)
    return -1;
  return 0;
}

/* HELLO and the challenge-response with token; the AUTH frame sent is left in auth_frame
 * (PROTO_HDR_SIZE + PROTO_SMALL_MAX bytes). Returns 0 when the server accepted and proved
 * itself. */
static int rc_auth_hello(int fd, const char *token, uint8_t *auth_frame, size_t *auth_len) {
  struct proto_msg m = rc_hello((uint32_t)getuid(), (uint32_t)getgid()), r;
  uint8_t sn[PROTO_NONCE_SIZE], cn[PROTO_NONCE_SIZE];
  struct dshm_auth_key key;

  ck_assert_int_eq(dshm_auth_key_from_token(&key, token, strlen(token)), 0);
  ck_assert_int_eq(rc_send_msg(fd, &m), 0);
  ck_assert_int_eq(rc_next(fd, &r), 0);
  ck_assert_int_eq(r.h.opcode, PROTO_OP_CHALLENGE);
  ck_assert_uint_eq(r.u.challenge.alg, PROTO_AUTH_ALG);
  memcpy(sn, r.u.challenge.nonce, sizeof sn);
  dshm_auth_nonce(cn);
  m = rc_msg(PROTO_OP_AUTH, 2);
  memcpy(m.u.auth.nonce, cn, sizeof cn);
  dshm_auth_mac(&key, DSHM_AUTH_CLIENT, sn, cn, m.u.auth.mac);
  *auth_len = rc_encode(auth_frame, PROTO_HDR_SIZE + PROTO_SMALL_MAX, &m);
  ck_assert_int_eq(rc_send(fd, auth_frame, *auth_len), 0);
  if (rc_reply(fd, 2, &r) < 0 || r.h.status != 0)
    return -1;
  /* Mutual: the server's proof is over both nonces, with the server's label. */
  ck_assert_int_eq(dshm_auth_verify(&key, DSHM_AUTH_SERVER, sn, cn, r.u.auth_reply.mac), 0);
  ck_assert_int_eq(rc_reply(fd, 1, &r), 0);
  ck_assert_int_eq(r.h.status, 0);
  return 0;
}

static struct proto_cred cred_of(uint32_t uid, uint32_t gid) {
  return (struct proto_cred){(uint32_t)getpid(), uid, gid};
}

/* CREATE; the shmid or -errno. */
static int rc_create(int fd, struct proto_cred c, int32_t key, uint64_t size, int flg) {
  struct proto_msg m = rc_msg(PROTO_OP_CREATE_SEGMENT, 10), r;
  m.u.create = (struct proto_create){c, key, size, flg};
  if (rc_send_msg(fd, &m) < 0 || rc_reply(fd, 10, &r) < 0)
    return -EPIPE;
  return r.h.status ? -proto_err_to_errno(r.h.status) : r.u.create_reply.shmid;
}

static int rc_attach(int fd, struct proto_cred c, int32_t shmid) {
  struct proto_msg m = rc_msg(PROTO_OP_ATTACH_SEGMENT, 11), r;
  m.u.attach = (struct proto_attach){c, shmid, 0};
  if (rc_send_msg(fd, &m) < 0 || rc_reply(fd, 11, &r) < 0)
    return -EPIPE;
  return r.h.status ? -proto_err_to_errno(r.h.status) : 0;
}

/* IPC_STAT into *ds; 0 or -errno. */
static int rc_stat(int fd, struct proto_cred c, int32_t shmid, struct proto_ds *ds) {
  struct proto_msg m = rc_msg(PROTO_OP_SHMCTL, 12), r;
  m.u.shmctl = (struct proto_shmctl){.cred = c, .shmid = shmid, .cmd = IPC_STAT};
  if (rc_send_msg(fd, &m) < 0 || rc_reply(fd, 12, &r) < 0)
    return -EPIPE;
  if (r.h.status)
    return -proto_err_to_errno(r.h.status);
  *ds = r.u.shmctl_reply.ds;
  return 0;
}

static void run_tool(const struct srv *s, const char *server, char *const argv[],
                     char *const env[], struct h_result *r) {
  struct h_proc p;
  (void)s;
  h_spawn_env(&p, server, argv, env);
  h_wait(&p, r, 60000);
}

static void setup(void) {
  mkdir_private();
  unsetenv("DSHM_TOKEN");
  unsetenv("DSHM_TOKEN_FILE");
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) {
    /* leftovers in /tmp are harmless */
  }
}

/* ---- tests ---- */

START_TEST(refuses_network_without_token) {
  const char *const refuse[] = {"--bind", "0.0.0.0", "--port", "0", NULL};
  const char *const insecure[] = {"--bind", "0.0.0.0", "--port", "0", "--insecure", NULL};
  struct srv s = {0};
  char log[8192], line[256];
  int status, fd;

  close(srv_exec(&s, refuse));
  status = srv_wait_exit(&s);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status %#x", status);
  slurp(s.log, log, sizeof log);
  ck_assert_msg(strstr(log, "refusing to listen on 0.0.0.0 without a token") != NULL, "%s", log);
  ck_assert_ptr_nonnull(strstr(log, "--token-file"));

  /* --insecure: it starts, on every address, and says so loudly. */
  fd = srv_exec(&s, insecure);
  ck_assert_int_eq(h_read_line(fd, line, sizeof line, 15000), 0);
  close(fd);
  ck_assert_msg(sscanf(line, "dshm-server: listening on 0.0.0.0:%d", &s.h.port) == 1, "%s",
                line);
  h_server_stop(&s.h);
  slurp(s.log, log, sizeof log);
  ck_assert_msg(strstr(log, "WARNING: listening on 0.0.0.0 without a token") != NULL, "%s", log);
}
END_TEST

START_TEST(token_file_checked_at_start) {
  struct srv s = {0};
  const char *bad = token_file("tok644", TOKEN "\n", 0644);
  const char *empty = token_file("empty", "\n", 0600);
  const char *const a1[] = {"--port", "0", "--token-file", bad, NULL};
  const char *const a2[] = {"--port", "0", "--token-file", empty, NULL};
  char log[8192];
  int status;

  close(srv_exec(&s, a1));
  status = srv_wait_exit(&s);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status %#x", status);
  slurp(s.log, log, sizeof log);
  ck_assert_msg(strstr(log, "accessible by group or others (mode 0644); chmod 600") != NULL,
                "%s", log);
  close(srv_exec(&s, a2));
  status = srv_wait_exit(&s);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status %#x", status);
  slurp(s.log, log, sizeof log);
  ck_assert_msg(strstr(log, "is empty") != NULL, "%s", log);
}
END_TEST

/* Real preloaded programs: the right token works (DSHM_TOKEN and DSHM_TOKEN_FILE), a wrong
 * or missing one gets EACCES from shmget and one line naming the variables. */
START_TEST(token_clients) {
  const char *tok = token_file("tok", TOKEN "\n", 0600);
  const char *const args[] = {"--port", "0", "--token-file", tok, NULL};
  struct srv s = {0};
  char key[32], envtok[128], envfile[256], log[16384];
  struct h_result r;

  srv_start(&s, args, 1);
  snprintf(key, sizeof key, "%d", h_unique_key());
  snprintf(envtok, sizeof envtok, "DSHM_TOKEN=%s", TOKEN);
  snprintf(envfile, sizeof envfile, "DSHM_TOKEN_FILE=%s", tok);
  {
    char *argv[] = {"shmtool", "fill", key, "20000", "7", NULL};
    char *env[] = {envtok, NULL};
    run_tool(&s, s.h.addr, argv, env, &r);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "fill: %s", r.err);
  }
  {
    char *argv[] = {"shmtool", "verify", key, "20000", "7", NULL};
    char *env[] = {envfile, NULL};
    run_tool(&s, s.h.addr, argv, env, &r);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "verify: %s", r.err);
  }
  {
    char *argv[] = {"shmtool", "verify", key, "20000", "7", NULL};
    char *env[] = {"DSHM_TOKEN=not-the-token", NULL};
    run_tool(&s, s.h.addr, argv, env, &r);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1, "wrong token: %#x",
                  r.status);
    ck_assert_msg(strstr(r.err, "shmget: Permission denied") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "refused our token: check DSHM_TOKEN / DSHM_TOKEN_FILE"), "%s",
                  r.err);
  }
  {
    char *argv[] = {"shmtool", "verify", key, "20000", "7", NULL};
    run_tool(&s, s.h.addr, argv, NULL, &r);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1, "no token: %#x", r.status);
    ck_assert_msg(strstr(r.err, "shmget: Permission denied") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "requires a token: set DSHM_TOKEN or DSHM_TOKEN_FILE"), "%s",
                  r.err);
  }
  {
    /* A token file others may read is refused by the client too. */
    const char *loose = token_file("loose", TOKEN, 0644);
    char envloose[256];
    char *argv[] = {"shmtool", "verify", key, "20000", "7", NULL};
    char *env[] = {envloose, NULL};
    snprintf(envloose, sizeof envloose, "DSHM_TOKEN_FILE=%s", loose);
    run_tool(&s, s.h.addr, argv, env, &r);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1, "loose: %#x", r.status);
    ck_assert_msg(strstr(r.err, "DSHM_TOKEN_FILE: token file") && strstr(r.err, "chmod 600"),
                  "%s", r.err);
  }
  {
    /* The server keeps serving the right token. */
    char *argv[] = {"shmtool", "verify", key, "20000", "7", NULL};
    char *env[] = {envtok, NULL};
    run_tool(&s, s.h.addr, argv, env, &r);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "verify: %s", r.err);
  }
  {
    char *argv[] = {"shmtool", "rmid", key, NULL};
    char *env[] = {envtok, NULL};
    run_tool(&s, s.h.addr, argv, env, &r);
  }
  h_server_stop(&s.h);
  slurp(s.log, log, sizeof log);
  ck_assert_msg(strstr(log, "(127.0.0.1:") && strstr(log, "authentication failed: wrong token"),
                "%s", log);
  ck_assert_msg(strstr(log, "closed before completing authentication"), "%s", log);
  ck_assert_msg(strstr(log, TOKEN) == NULL, "the token is in the server's log");
}
END_TEST

/* A client with a token refuses a server that has none: it could not prove it knows it. */
START_TEST(client_refuses_server_without_token) {
  const char *const args[] = {"--port", "0", NULL};
  struct srv s = {0};
  char key[32], envtok[128];
  struct h_result r;
  char *argv[] = {"shmtool", "get", key, NULL};
  char *env[] = {envtok, NULL};

  srv_start(&s, args, 1);
  snprintf(key, sizeof key, "%d", h_unique_key());
  snprintf(envtok, sizeof envtok, "DSHM_TOKEN=%s", TOKEN);
  run_tool(&s, s.h.addr, argv, env, &r);
  ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1, "%#x", r.status);
  ck_assert_msg(strstr(r.err, "did not ask for the token"), "%s", r.err);
  h_server_stop(&s.h);
}
END_TEST

/* Raw peers: an unanswered challenge ends with --hello-timeout; a proof replayed from an
 * earlier handshake is refused (the nonce is fresh per connection); nothing but AUTH is
 * accepted before it. */
START_TEST(challenge_timeout_and_replay) {
  const char *tok = token_file("tok", TOKEN, 0600);
  const char *const args[] = {"--port", "0", "--token-file", tok, "--hello-timeout", "1", NULL};
  struct srv s = {0};
  uint8_t frame[PROTO_HDR_SIZE + PROTO_SMALL_MAX];
  size_t flen = 0;
  struct proto_msg m, r;
  char log[16384];
  long t0;
  int fd, fd2;

  srv_start(&s, args, 1);
  /* An honest raw handshake works and leaves its AUTH frame. */
  fd = rc_connect(&s.h);
  ck_assert_int_eq(rc_auth_hello(fd, TOKEN, frame, &flen), 0);
  ck_assert_int_eq(rc_create(fd, cred_of(getuid(), getgid()), IPC_PRIVATE, 4096, 0600) >= 0, 1);

  /* Replay it on a new connection: refused with EACCES, then closed. */
  fd2 = rc_connect(&s.h);
  m = rc_hello((uint32_t)getuid(), (uint32_t)getgid());
  ck_assert_int_eq(rc_send_msg(fd2, &m), 0);
  ck_assert_int_eq(rc_next(fd2, &r), 0);
  ck_assert_int_eq(r.h.opcode, PROTO_OP_CHALLENGE);
  ck_assert_int_eq(rc_send(fd2, frame, flen), 0);
  ck_assert_int_eq(rc_reply(fd2, 2, &r), 0);
  ck_assert_int_eq(proto_err_to_errno(r.h.status), EACCES);
  ck_assert_int_eq(rc_wait_closed(fd2), 0);
  close(fd2);

  /* A request instead of AUTH: closed. */
  fd2 = rc_connect(&s.h);
  ck_assert_int_eq(rc_send_msg(fd2, &m), 0);
  ck_assert_int_eq(rc_next(fd2, &r), 0);
  ck_assert_int_eq(rc_create(fd2, cred_of(0, 0), IPC_PRIVATE, 4096, 0600), -EPIPE);
  ck_assert_int_eq(rc_wait_closed(fd2), 0);
  close(fd2);

  /* HELLO, then silence: the hello timeout closes it. */
  fd2 = rc_connect(&s.h);
  t0 = h_now_ms();
  ck_assert_int_eq(rc_send_msg(fd2, &m), 0);
  ck_assert_int_eq(rc_next(fd2, &r), 0);
  ck_assert_int_eq(r.h.opcode, PROTO_OP_CHALLENGE);
  ck_assert_int_eq(rc_wait_closed(fd2), 0);
  ck_assert_int_ge(h_now_ms() - t0, 900);
  close(fd2);

  /* The honest connection is still served. */
  ck_assert_int_ge(rc_create(fd, cred_of(getuid(), getgid()), IPC_PRIVATE, 4096, 0600), 0);
  close(fd);
  h_server_stop(&s.h);
  slurp(s.log, log, sizeof log);
  ck_assert_msg(strstr(log, "no AUTH in time (--hello-timeout)"), "%s", log);
  ck_assert_msg(strstr(log, "request before authentication"), "%s", log);
}
END_TEST

/* A preloaded program over DSHM_SERVER=unix:PATH; the socket file goes away at exit. */
START_TEST(unix_socket_preloaded) {
  struct srv s = {0};
  const char *args[] = {"--unix", s.unix_path, NULL};
  char key[32], spec[160];
  struct h_result r;
  struct stat st;

  snprintf(s.unix_path, sizeof s.unix_path, "%s/dshm.sock", dir);
  args[1] = s.unix_path;
  srv_start(&s, args, 0); /* --unix alone: no TCP */
  ck_assert_int_eq(stat(s.unix_path, &st), 0);
  ck_assert(S_ISSOCK(st.st_mode));
  ck_assert_uint_eq(st.st_mode & 0777, 0666);
  snprintf(key, sizeof key, "%d", h_unique_key());
  snprintf(spec, sizeof spec, "unix:%s", s.unix_path);
  {
    char *argv[] = {"shmtool", "fill", key, "12345", "3", NULL};
    run_tool(&s, spec, argv, NULL, &r);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "fill: %s", r.err);
  }
  {
    char *argv[] = {"shmtool", "verify", key, "12345", "3", NULL};
    run_tool(&s, spec, argv, NULL, &r);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "verify: %s", r.err);
  }
  h_server_stop(&s.h);
  ck_assert_int_eq(stat(s.unix_path, &st), -1); /* removed at exit */
}
END_TEST

/* In a child that became nobody: connects to the Unix socket claiming uid 0, creates a
 * segment and stats it, and tries the root segment rootid. Exit codes say what failed. */
static int nobody_child(const char *path, int32_t rootid) {
  struct proto_ds ds;
  struct proto_cred root = {(uint32_t)getpid(), 0, 0};
  int fd, id;

  if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
    return 10;
  fd = rc_connect_unix(path);
  if (fd < 0)
    return 11;
  if (rc_plain_hello(fd, 0, 0) < 0)
    return 12;
  id = rc_create(fd, root, IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  if (id < 0)
    return 13;
  if (rc_stat(fd, root, id, &ds) < 0)
    return 14;
  if (ds.uid != NOBODY || ds.cuid != NOBODY || ds.gid != NOBODY || ds.cgid != NOBODY)
    return 15; /* the claim was believed */
  if (rc_attach(fd, root, rootid) != -EACCES)
    return 16;
  if (rc_stat(fd, root, rootid, &ds) != -EACCES)
    return 17;
  close(fd);
  return 0;
}

START_TEST(unix_peer_identity_from_kernel) {
  struct srv s = {0};
  const char *args[] = {"--unix", NULL, "--port", "0", NULL};
  struct proto_ds ds;
  int fd, status;
  int32_t rootid;
  pid_t pid;

  snprintf(s.unix_path, sizeof s.unix_path, "%s/dshm.sock", dir);
  args[1] = s.unix_path;
  srv_start(&s, args, 1); /* --unix with --port: both listeners */
  /* Root makes a 0600 segment over TCP. */
  fd = rc_connect(&s.h);
  ck_assert_int_eq(rc_plain_hello(fd, 0, 0), 0);
  rootid = rc_create(fd, cred_of(0, 0), IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  ck_assert_int_ge(rootid, 0);
  ck_assert_int_eq(rc_stat(fd, cred_of(0, 0), rootid, &ds), 0);
  ck_assert_uint_eq(ds.uid, 0);
  if (getuid() != 0) {
    close(fd);
    h_server_stop(&s.h);
    return; /* cannot become another user: nothing more to show */
  }
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(nobody_child(s.unix_path, rootid));
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
  /* Over TCP the same claim is believed: that is the TCP trust model. */
  ck_assert_int_eq(rc_attach(fd, cred_of(0, 0), rootid), 0);
  close(fd);
  h_server_stop(&s.h);
}
END_TEST

START_TEST(unix_stale_socket) {
  struct srv s = {0}, s2 = {0};
  const char *args[] = {"--unix", NULL, NULL};
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  char log[8192], spec[160], key[32];
  struct h_result r;
  int fd, status;

  snprintf(s.unix_path, sizeof s.unix_path, "%s/dshm.sock", dir);
  args[1] = s.unix_path;
  /* A socket file nobody listens on any more. */
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  snprintf(a.sun_path, sizeof a.sun_path, "%s", s.unix_path);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  close(fd);
  srv_start(&s, args, 0);
  slurp(s.log, log, sizeof log);
  ck_assert_msg(strstr(log, "removed stale socket file"), "%s", log);
  /* A second server does not steal a live socket. */
  close(srv_exec(&s2, args));
  status = srv_wait_exit(&s2);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %#x", status);
  slurp(s2.log, log, sizeof log);
  ck_assert_msg(strstr(log, "another server is listening on"), "%s", log);
  /* The first one still serves. */
  snprintf(spec, sizeof spec, "unix:%s", s.unix_path);
  snprintf(key, sizeof key, "%d", h_unique_key());
  {
    char *argv[] = {"shmtool", "fill", key, "4096", "1", NULL};
    run_tool(&s, spec, argv, NULL, &r);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "fill: %s", r.err);
  }
  h_server_stop(&s.h);
  /* Not a socket: left alone, and the server refuses to start. */
  close(open(s.unix_path, O_WRONLY | O_CREAT, 0600));
  close(srv_exec(&s2, args));
  status = srv_wait_exit(&s2);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %#x", status);
  ck_assert_int_eq(access(s.unix_path, F_OK), 0);
}
END_TEST

/* A peer floods page requests that must queue (another peer owns the page and never
 * answers the RECALL): past --max-pending the server stops reading it, so neither its
 * memory nor what the flooder manages to send grows without bound; others keep working. */
START_TEST(max_pending_backpressure) {
  const char *const args[] = {"--port", "0", "--max-pending", "16", NULL};
  static uint8_t buf[PROTO_MAX_FRAME];
  struct srv s = {0};
  struct proto_msg m, r;
  struct timeval tv = {.tv_sec = 2};
  struct h_result res;
  size_t sent = 0, flen;
  const size_t limit = (size_t)512 << 20;
  long rss0, rss1;
  char key[32];
  int owner, flood, shmid, i;

  setenv("DSHM_TEST_SERVER_ASAN", "detect_leaks=1:quarantine_size_mb=8", 1);
  srv_start(&s, args, 1);
  unsetenv("DSHM_TEST_SERVER_ASAN");
  owner = rc_connect(&s.h);
  ck_assert_int_eq(rc_plain_hello(owner, getuid(), getgid()), 0);
  shmid = rc_create(owner, cred_of(getuid(), getgid()), IPC_PRIVATE, 256 * 4096, 0600);
  ck_assert_int_ge(shmid, 0);
  ck_assert_int_eq(rc_attach(owner, cred_of(getuid(), getgid()), shmid), 0);
  m = rc_msg(PROTO_OP_ACQUIRE, 20);
  m.u.run.shmid = shmid;
  m.u.run.count = 1;
  m.u.run.mode = PROTO_MODE_EXCLUSIVE;
  ck_assert_int_eq(rc_send_msg(owner, &m), 0);
  ck_assert_int_eq(rc_reply(owner, 20, &r), 0);
  ck_assert_int_eq(r.h.status, 0);

  flood = rc_connect(&s.h);
  ck_assert_int_eq(rc_plain_hello(flood, getuid(), getgid()), 0);
  ck_assert_int_eq(rc_attach(flood, cred_of(getuid(), getgid()), shmid), 0);
  rss0 = rc_proc_kib(s.h.pid, "VmRSS");
  /* Full-run READ_DATA frames: each queued request would cost the server ~2 KiB. */
  m = rc_msg(PROTO_OP_READ_DATA, 100);
  m.u.run.shmid = shmid;
  m.u.run.count = 256;
  m.u.run.mode = PROTO_MODE_SHARED;
  flen = (size_t)proto_encode(buf, sizeof buf, &m);
  setsockopt(flood, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  while (sent < limit) {
    ssize_t w = send(flood, buf, flen, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break; /* blocked for 2 s: the server stopped reading */
    sent += (size_t)w;
    if ((size_t)w < flen)
      break;
  }
  rss1 = rc_proc_kib(s.h.pid, "VmRSS");
  ck_assert_msg(sent < limit / 4, "the server read %zu bytes of page requests", sent);
  ck_assert_msg(rss1 - rss0 < 32 * 1024, "server RSS grew from %ld KiB to %ld KiB", rss0, rss1);

  /* Well-behaved programs keep working meanwhile. */
  snprintf(key, sizeof key, "%d", h_unique_key());
  for (i = 0; i < 2; i++) {
    char *fill[] = {"shmtool", "fill", key, "40000", "5", NULL};
    char *verify[] = {"shmtool", "verify", key, "40000", "5", NULL};
    run_tool(&s, s.h.addr, i == 0 ? fill : verify, NULL, &res);
    ck_assert_msg(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0, "%s", res.err);
  }
  {
    char *rm[] = {"shmtool", "rmid", key, NULL};
    run_tool(&s, s.h.addr, rm, NULL, &res);
  }
  /* The owner leaves: the flood's requests are served, it is read again, and since it never
   * reads its grants it is closed by --max-output; the server exits clean. */
  close(owner);
  close(flood);
  h_server_stop(&s.h);
}
END_TEST


/* --max-frame: a preloaded program still works (HELLO's reply tells it the largest run),
 * and a larger frame closes the connection. */
START_TEST(max_frame_small) {
  const char *const args[] = {"--port", "0", "--max-frame", "20000", NULL};
  static uint8_t buf[PROTO_MAX_FRAME];
  struct srv s = {0};
  struct proto_msg m;
  struct h_result res;
  char key[32], log[8192];
  int fd, i;
  ssize_t n;

  srv_start(&s, args, 1);
  snprintf(key, sizeof key, "%d", h_unique_key());
  for (i = 0; i < 2; i++) {
    char *fill[] = {"shmtool", "fill", key, "100000", "9", NULL};
    char *verify[] = {"shmtool", "verify", key, "100000", "9", NULL};
    run_tool(&s, s.h.addr, i == 0 ? fill : verify, NULL, &res);
    ck_assert_msg(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0, "%s", res.err);
  }
  fd = rc_connect(&s.h);
  ck_assert_int_eq(rc_plain_hello(fd, getuid(), getgid()), 0);
  m = rc_msg(PROTO_OP_WRITE_DATA, 5);
  m.u.run.count = 8; /* 8 pages with data: above 20000 bytes */
  m.u.run.mode = PROTO_MODE_INVALID;
  for (i = 0; i < 8; i++) {
    m.u.run.page[i].flags = PROTO_PAGE_DATA;
    m.u.run.page[i].data = buf;
  }
  n = proto_encode(buf + 40000, sizeof buf - 40000, &m);
  ck_assert_int_gt(n, 20000);
  ck_assert_int_eq(rc_send(fd, buf + 40000, PROTO_HDR_SIZE), 0); /* the header suffices */
  ck_assert_int_eq(rc_wait_closed(fd), 0);
  close(fd);
  {
    char *rm[] = {"shmtool", "rmid", key, NULL};
    run_tool(&s, s.h.addr, rm, NULL, &res);
  }
  h_server_stop(&s.h);
  slurp(s.log, log, sizeof log);
  ck_assert_msg(strstr(log, "above --max-frame"), "%s", log);
}
END_TEST

int main(void) {
  Suite *su = suite_create("security");
  TCase *tc = tcase_create("security");
  SRunner *sr;
  int failed;

  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, refuses_network_without_token);
  tcase_add_test(tc, token_file_checked_at_start);
  tcase_add_test(tc, token_clients);
  tcase_add_test(tc, client_refuses_server_without_token);
  tcase_add_test(tc, challenge_timeout_and_replay);
  tcase_add_test(tc, unix_socket_preloaded);
  tcase_add_test(tc, unix_peer_identity_from_kernel);
  tcase_add_test(tc, unix_stale_socket);
  tcase_add_test(tc, max_pending_backpressure);
  tcase_add_test(tc, max_frame_small);
  suite_add_tcase(su, tc);
  sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
