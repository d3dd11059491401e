/* agentlink.c - owns finding and starting the host agent.
 *
 * The agent of a host listens on DIR/NAME.sock (DIR = HOST/dshm-EUID, HOST = DSHM_AGENT_DIR,
 * else $XDG_RUNTIME_DIR, else /tmp; NAME from DSHM_SERVER). When nothing answers,
 * the process takes DIR/NAME.lock, looks once more (another process may have started it
 * meanwhile), and starts dshm-agent, which says "ok" (or why not) on a pipe once it is
 * connected to the server and listening. The agent detaches itself, so the program never
 * has it as a child to wait for. */
#include "agentlink.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

extern char **environ;

#ifndef DSHM_LIBEXECDIR
#define DSHM_LIBEXECDIR "/usr/local/libexec"
#endif

/* The kernel's euid, not libc's: a wrapper such as fakeroot answers geteuid() with 0, and the
 * agent directory and the agent's owner are about who we really are. */
static uid_t real_euid(void) {
  return (uid_t)syscall(SYS_geteuid);
}

static long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int try_connect(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  int fd, err;

  if (strlen(path) >= sizeof a.sun_path)
    return -ENAMETOOLONG;
  fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  memcpy(a.sun_path, path, strlen(path) + 1);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
    return fd;
  err = -errno;
  close(fd);
  return err;
}

/* The user's directory in the host directory (DSHM_AGENT_DIR, $XDG_RUNTIME_DIR, else /tmp):
 * dshm-EUID with the euid of now (a process that changed uid goes to that user's agent). */
static char host_dir[2048]; /* session lock held (session.c): one connect at a time */

static void agent_dir(char *out, size_t cap) {
  snprintf(out, cap, "%.2000s/dshm-%u", shim_cfg.agent_dir, (unsigned)real_euid());
}

/* The host directory exists and is ours alone (a directory in /tmp could be anybody's). */
static int dir_ready(void) {
  const char *dir = host_dir;
  struct stat st;

  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    shim_log("cannot create the agent directory %s: %s", dir, strerror(errno));
    return -errno;
  }
  /* The kernel's answer (a raw call): a wrapper such as fakeroot fakes owners in lstat. */
  if (syscall(SYS_newfstatat, AT_FDCWD, dir, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return -errno;
  if (!S_ISDIR(st.st_mode) || st.st_uid != real_euid() || (st.st_mode & 077) != 0) {
    shim_log("agent directory %s is not a directory of ours with mode 0700: refusing it "
             "(set DSHM_AGENT_DIR)", dir);
    return -EACCES;
  }
  return 0;
}

/* The agent program: DSHM_AGENT_BIN, else beside this library (the build tree keeps it in
 * ../agent/, an installation in libexec). */
static int find_agent(char *out, size_t cap) {
  char lib[PATH_MAX], *dir;
  const char *tries[] = {"/../agent/dshm-agent", "/dshm-agent", "/../libexec/dshm-agent"};
  Dl_info di;

  if (shim_cfg.agent_bin[0] != '\0') {
    snprintf(out, cap, "%s", shim_cfg.agent_bin);
    return access(out, X_OK) == 0 ? 0 : -errno;
  }
  if (dladdr((void *)find_agent, &di) != 0 && di.dli_fname != NULL &&
      realpath(di.dli_fname, lib) != NULL) {
    dir = dirname(lib);
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
      snprintf(out, cap, "%s%s", dir, tries[i]);
      if (access(out, X_OK) == 0)
        return 0;
    }
  }
  snprintf(out, cap, "%s/dshm-agent", DSHM_LIBEXECDIR);
  return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

/* The environment for the agent: ours without LD_PRELOAD (the agent must not run under the
 * shim). NULL on allocation failure. */
static char **agent_env(void) {
  size_t n = 0, k = 0;
  char **env;

  while (environ[n] != NULL)
    n++;
  env = calloc(n + 1, sizeof *env);
  if (env == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
      env[k++] = environ[i];
  env[k] = NULL;
  return env;
}

/* Starts the agent and waits for its word. 0 (it listens), or -errno after a message. */
static int start_agent(long deadline) {
  char bin[PATH_MAX], line[800] = "";
  char *argv[16];
  int argc = 0, p[2], err, status;
  posix_spawn_file_actions_t fa;
  size_t got = 0;
  char **env;
  pid_t pid;

  err = find_agent(bin, sizeof bin);
  if (err < 0) {
    shim_log("cannot find dshm-agent (%s): set DSHM_AGENT_BIN", bin);
    return -ENOENT;
  }
  if (pipe2(p, O_CLOEXEC) < 0)
    return -errno;
  env = agent_env();
  argv[argc++] = bin;
  argv[argc++] = "--dir";
  argv[argc++] = host_dir;
  argv[argc++] = "--name";
  argv[argc++] = shim_cfg.agent_name;
  argv[argc++] = "--server";
  argv[argc++] = shim_cfg.spec;
  argv[argc++] = "--ready-fd";
  argv[argc++] = "3";
  if (shim_cfg.agent_idle[0] != '\0') {
    argv[argc++] = "--idle-ms";
    argv[argc++] = shim_cfg.agent_idle;
  }
  argv[argc] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 3); /* dup2 clears close-on-exec */
  err = env == NULL ? ENOMEM : posix_spawn(&pid, bin, &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  close(p[1]);
  if (err != 0) {
    close(p[0]);
    shim_log("cannot start %s: %s", bin, strerror(err));
    return -err;
  }
  /* The agent's first process exits as soon as it has detached the agent. */
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  while (got < sizeof line - 1 && strchr(line, '\n') == NULL) {
    struct pollfd pf = {p[0], POLLIN, 0};
    long left = deadline - mono_ms();
    ssize_t n;
    if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
      break;
    n = read(p[0], line + got, sizeof line - 1 - got);
    if (n <= 0)
      break;
    got += (size_t)n;
    line[got] = '\0';
  }
  close(p[0]);
  if (strncmp(line, "ok", 2) == 0)
    return 0;
  if (strncmp(line, "err ", 4) == 0) {
    char *msg = NULL;
    long e = strtol(line + 4, &msg, 10);
    if (msg != NULL && *msg == ' ')
      msg++;
    if (msg != NULL)
      msg[strcspn(msg, "\n")] = '\0';
    if (e != EADDRINUSE) /* another agent is starting: the caller looks again */
      shim_log("%s", msg != NULL ? msg : "the host agent could not start");
    return e > 0 ? (int)-e : -EIO;
  }
  shim_log("the host agent %s did not start in time (see %s/%s.log)", bin, host_dir,
           shim_cfg.agent_name);
  return -ETIMEDOUT;
}

/* The agent must run as our user (or root): else the socket is an impostor's. fd or
 * -EACCES (fd closed, after a message). */
static int peer_is_ours(int fd, const char *sock) {
  struct ucred uc;
  socklen_t len = sizeof uc;

  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 &&
      (uc.uid == real_euid() || uc.uid == 0))
    return fd;
  shim_log("the agent at %s runs as uid %u, not as us (uid %u): refusing it", sock,
           (unsigned)uc.uid, (unsigned)real_euid());
  close(fd);
  return -EACCES;
}

int shim_agent_connect(void) {
  char sock[PATH_MAX], lock[PATH_MAX];
  long deadline = mono_ms() + shim_cfg.timeout_ms;
  int fd, lfd, err;

  agent_dir(host_dir, sizeof host_dir);
  snprintf(sock, sizeof sock, "%.2000s/%.120s.sock", host_dir, shim_cfg.agent_name);
  snprintf(lock, sizeof lock, "%.2000s/%.120s.lock", host_dir, shim_cfg.agent_name);
  /* The directory first: a socket in a directory that is not ours alone may be anybody's. */
  err = dir_ready();
  if (err < 0)
    return err;
  for (;;) {
    fd = try_connect(sock);
    if (fd >= 0)
      return peer_is_ours(fd, sock);
    if (fd != -ENOENT && fd != -ECONNREFUSED) {
      shim_log("cannot connect to the host agent at %s: %s", sock, strerror(-fd));
      return fd;
    }
    lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX) < 0) {
      err = -errno;
      shim_log("cannot lock %s: %s", lock, strerror(errno));
      if (lfd >= 0)
        close(lfd);
      return err;
    }
    fd = try_connect(sock); /* started by another process while we waited for the lock */
    err = fd >= 0 ? 0 : start_agent(deadline);
    close(lfd);
    if (fd >= 0)
      return peer_is_ours(fd, sock);
    if (err < 0 && err != -EADDRINUSE)
      return err;
    if (mono_ms() >= deadline) {
      shim_log("the host agent at %s does not answer", sock);
      return -ETIMEDOUT;
    }
    if (err == -EADDRINUSE) { /* an agent is stopping: it unlinks its socket first */
      struct timespec ts = {0, 10 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
}
