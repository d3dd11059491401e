/* test_actname.c - socket activation of the agent (agent/activate.c): its name for a server and
 * token against the library's own (preload/config.c, linked in: the oracle), the
 * sd_listen_fds protocol, and the checks of the socket systemd passes. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "activate.h"
#include "config.h"

/* The library's name with this environment, and the agent's, must be equal. */
static void same_name(const char *server, const char *token, const char *token_file) {
  char mine[128];

  if (server != NULL)
    setenv("DSHM_SERVER", server, 1);
  else
    unsetenv("DSHM_SERVER");
  if (token != NULL)
    setenv("DSHM_TOKEN", token, 1);
  else
    unsetenv("DSHM_TOKEN");
  if (token_file != NULL)
    setenv("DSHM_TOKEN_FILE", token_file, 1);
  else
    unsetenv("DSHM_TOKEN_FILE");
  shim_config_load();
  agent_act_name(shim_cfg.spec, mine, sizeof mine);
  ck_assert_msg(strcmp(mine, shim_cfg.agent_name) == 0, "server '%s' token '%s' file '%s': "
                "agent says %s, library says %s", server ? server : "(unset)",
                token ? token : "(unset)", token_file ? token_file : "(unset)", mine,
                shim_cfg.agent_name);
}

START_TEST(names_agree) {
  char longspec[300];

  memset(longspec, 'h', sizeof longspec - 1);
  longspec[sizeof longspec - 1] = '\0';
  longspec[150] = ':';
  same_name(NULL, NULL, NULL);
  same_name("", NULL, NULL);
  same_name("127.0.0.1:8080", NULL, NULL);
  same_name("host-a.example:9000", NULL, NULL);
  same_name("[::1]:8080", NULL, NULL);
  same_name("unix:/run/dshm/dshm.sock", NULL, NULL);
  same_name("h\xc3\xa9te:1 2\t", NULL, NULL);
  same_name(longspec, NULL, NULL);
  same_name("127.0.0.1:8080", "secret", NULL);
  same_name("127.0.0.1:8080", "", NULL);
  same_name("127.0.0.1:8080", NULL, "/home/u/.config/dshm/token");
  same_name("127.0.0.1:8080", NULL, "");
  same_name("127.0.0.1:8080", "secret", "/etc/dshm.token");
  same_name(longspec, "x", NULL);
}
END_TEST

START_TEST(known_names) {
  char n[128];

  unsetenv("DSHM_TOKEN");
  unsetenv("DSHM_TOKEN_FILE");
  agent_act_name("127.0.0.1:8080", n, sizeof n);
  ck_assert_str_eq(n, "agent-127.0.0.1_8080");
  agent_act_name("unix:/run/x.sock", n, sizeof n);
  ck_assert_str_eq(n, "agent-unix__run_x.sock");
  setenv("DSHM_TOKEN_FILE", "/t", 1);
  agent_act_name("h:1", n, sizeof n);
  ck_assert_int_eq(strlen(n), strlen("agent-h_1-t") + 8);
  ck_assert(strncmp(n, "agent-h_1-t", 11) == 0);
}
END_TEST

static void listen_env(long pid, const char *fds) {
  char p[32];

  snprintf(p, sizeof p, "%ld", pid);
  setenv("LISTEN_PID", p, 1);
  if (fds != NULL)
    setenv("LISTEN_FDS", fds, 1);
  else
    unsetenv("LISTEN_FDS");
  setenv("LISTEN_FDNAMES", "x", 1);
}

static int unset_all(void) {
  return getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL &&
         getenv("LISTEN_FDNAMES") == NULL;
}

/* Descriptor 3 may be Check's own (its messages to the runner): it is put aside while the
 * test uses 3, and put back before anything is asserted. */
#define EXPECT(c)                  \
  do {                             \
    if (!(c) && bad == 0)          \
      bad = __LINE__;              \
  } while (0)

START_TEST(take_protocol) {
  char why[300] = "";
  int s = socket(AF_UNIX, SOCK_SEQPACKET, 0), bad = 0, saved;

  ck_assert_int_ge(s, 0);
  saved = fcntl(AGENT_ACT_FD, F_DUPFD_CLOEXEC, 10);
  EXPECT(dup2(s, AGENT_ACT_FD) == AGENT_ACT_FD);
  /* Nothing, or another process's: nothing taken, the variables gone all the same. */
  unsetenv("LISTEN_PID");
  EXPECT(agent_act_take(why, sizeof why) == 0);
  listen_env(getpid() + 1, "1");
  EXPECT(agent_act_take(why, sizeof why) == 0);
  EXPECT(unset_all());
  listen_env(getpid(), "0");
  EXPECT(agent_act_take(why, sizeof why) == 0);
  /* Ours: descriptor 3, close-on-exec from now on. */
  EXPECT(fcntl(AGENT_ACT_FD, F_SETFD, 0) == 0);
  listen_env(getpid(), "1");
  EXPECT(agent_act_take(why, sizeof why) == AGENT_ACT_FD);
  EXPECT(unset_all());
  EXPECT((fcntl(AGENT_ACT_FD, F_GETFD) & FD_CLOEXEC) == FD_CLOEXEC);
  /* Wrong: two sockets, a bad count, descriptor 3 closed. */
  listen_env(getpid(), "2");
  EXPECT(agent_act_take(why, sizeof why) == -EINVAL);
  EXPECT(strstr(why, "passed 2 sockets") != NULL);
  EXPECT(unset_all());
  listen_env(getpid(), "one");
  EXPECT(agent_act_take(why, sizeof why) == -EINVAL);
  EXPECT(strstr(why, "LISTEN_FDS='one'") != NULL);
  close(AGENT_ACT_FD);
  listen_env(getpid(), "1");
  EXPECT(agent_act_take(why, sizeof why) == -EBADF);
  EXPECT(unset_all());
  if (saved >= 0) {
    dup2(saved, AGENT_ACT_FD);
    close(saved);
  }
  close(s);
  ck_assert_msg(bad == 0, "expectation on line %d failed (last reason: %s)", bad, why);
}
END_TEST

/* A Unix socket of type bound at path (else at an abstract name), listening when asked. */
static int sock_at(int type, const char *path, int do_listen) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, type, 0);

  ck_assert_int_ge(fd, 0);
  if (path != NULL) {
    snprintf(a.sun_path, sizeof a.sun_path, "%.100s", path);
    unlink(path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  } else {
    /* Autobind: an abstract name the kernel picks. */
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a.sun_family), 0);
  }
  if (do_listen)
    ck_assert_int_eq(listen(fd, 4), 0);
  return fd;
}

START_TEST(check_socket) {
  char dir[] = "/tmp/dshm-actname.XXXXXX", path[128], other[128], link[128], via[160];
  char why[1200] = "";
  int fd, fd2;

  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/agent-x.sock", dir);
  snprintf(other, sizeof other, "%s/agent-y.sock", dir);
  snprintf(link, sizeof link, "%s/l", dir);
  snprintf(via, sizeof via, "%s/agent-x.sock", link);
  ck_assert_int_eq(symlink(dir, link), 0);

  fd = sock_at(SOCK_SEQPACKET, path, 1);
  ck_assert_int_eq(agent_act_check(fd, path, why, sizeof why), 0);
  ck_assert_int_eq(agent_act_check(fd, via, why, sizeof why), 0); /* the same file */
  ck_assert_int_eq(agent_act_check(fd, other, why, sizeof why), -EINVAL);
  ck_assert_msg(strstr(why, "not at") != NULL && strstr(why, other) != NULL, "%s", why);
  close(fd);

  fd = sock_at(SOCK_STREAM, path, 1);
  ck_assert_int_eq(agent_act_check(fd, path, why, sizeof why), -EPROTOTYPE);
  ck_assert_msg(strstr(why, "SOCK_STREAM (ListenStream=)") != NULL, "%s", why);
  close(fd);
  fd = sock_at(SOCK_DGRAM, path, 0);
  ck_assert_int_eq(agent_act_check(fd, path, why, sizeof why), -EPROTOTYPE);
  close(fd);

  fd = sock_at(SOCK_SEQPACKET, path, 0); /* bound, not listening */
  ck_assert_int_eq(agent_act_check(fd, path, why, sizeof why), -EINVAL);
  ck_assert_msg(strstr(why, "not listening") != NULL, "%s", why);
  close(fd);

  fd = sock_at(SOCK_SEQPACKET, NULL, 1); /* autobound: abstract */
  ck_assert_int_eq(agent_act_check(fd, path, why, sizeof why), -EINVAL);
  ck_assert_msg(strstr(why, "no path") != NULL, "%s", why);
  close(fd);

  fd = socket(AF_INET, SOCK_SEQPACKET, 0);
  if (fd < 0)
    fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(agent_act_check(fd, path, why, sizeof why), -EAFNOSUPPORT);
  close(fd);

  fd = open("/dev/null", O_RDONLY);
  ck_assert_int_eq(agent_act_check(fd, path, why, sizeof why), -ENOTSOCK);
  close(fd);

  /* Drain: the waiting connections are accepted and closed (their next read says EOF). */
  fd = sock_at(SOCK_SEQPACKET, path, 1);
  {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char b;
    snprintf(a.sun_path, sizeof a.sun_path, "%.100s", path);
    fd2 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    ck_assert_int_eq(connect(fd2, (struct sockaddr *)&a, sizeof a), 0);
    agent_act_drain(fd);
    ck_assert_int_eq(read(fd2, &b, 1), 0);
    close(fd2);
  }
  close(fd);
  unlink(path);
  unlink(link);
  rmdir(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("actname");
  TCase *tc = tcase_create("activate");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, names_agree);
  tcase_add_test(tc, known_names);
  tcase_add_test(tc, take_protocol);
  tcase_add_test(tc, check_socket);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
