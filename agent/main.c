/* main.c - owns the dshm-agent process: its command line, the host directory's lock, the
 * handshake with the process that started it, its log, signals and the idle exit.
 *
 *   dshm-agent --dir DIR --name NAME --server SPEC [--ready-fd FD] [--idle-ms MS] [--foreground]
 *              [--systemd]
 *   dshm-agent --print-name [--server SPEC]
 *
 * The shim starts it (preload/agentlink.c) when no agent answers on DIR/NAME.sock; it
 * detaches itself (a grandchild in a session of its own, so the program that started it
 * never waits for it), holds DIR/NAME.pid locked for as long as it runs (a second agent for
 * the same host and server refuses to start), logs to DIR/NAME.log, and exits idle-ms after
 * its last local process is gone.
 *
 * Or systemd starts it (systemd/dshm-agent@.socket, socket activation: activate.c) with
 * DIR/NAME.sock already listening: it stays in the foreground, logs to stderr (the journal),
 * takes the same lock, and leaves the socket file to systemd when it exits idle; systemd
 * starts it again on the next connect. --systemd makes that socket mandatory. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "activate.h"
#include "agent.h"
#include "agentname.h"
#include "hostseg.h"
#include "keepalive.h"
#include "local.h"
#include "procexit.h"
#include "stats.h"
#include "upstream.h"

int agent_verbose;

void agent_log(const char *fmt, ...) {
  char buf[600];
  struct timespec ts;
  struct tm tm;
  int n, m;
  va_list ap;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ dshm-agent[%d]: ",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               (int)getpid());
  va_start(ap, fmt);
  m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  va_end(ap);
  if (m > 0)
    n = (size_t)(n + m) >= sizeof buf - 1 ? (int)sizeof buf - 2 : n + m;
  buf[n++] = '\n';
  if (write(STDERR_FILENO, buf, (size_t)n) < 0) {
    /* nothing sensible to do */
  }
}

static void on_closed(uv_handle_t *h) {
  (void)h;
}

/* The socket file this process bound (agent_local_listen), to be removed when it stops: only
 * if the path still names that file. An activated agent made none (systemd owns it), and a
 * file that replaced ours (a socket unit started meanwhile) is not ours to remove. */
static int sock_made;
static dev_t sock_dev;
static ino_t sock_ino;

static void unlink_own_socket(const char *path) {
  struct stat st;

  if (sock_made && stat(path, &st) == 0 && st.st_dev == sock_dev && st.st_ino == sock_ino)
    (void)unlink(path);
  sock_made = 0;
}

void agent_stop(struct agent *ag, const char *why) {
  if (ag->stopping)
    return;
  ag->stopping = 1;
  agent_log("stopping: %s", why);
  /* New processes must not find a socket that no longer answers: it goes first (systemd's
   * stays: it queues them for the next agent). */
  unlink_own_socket(ag->cfg->sock_path);
  uv_close((uv_handle_t *)&ag->sigterm, on_closed);
  uv_close((uv_handle_t *)&ag->sigint, on_closed);
  uv_close((uv_handle_t *)&ag->idle, on_closed);
  uv_close((uv_handle_t *)&ag->flush, on_closed);
  uv_close((uv_handle_t *)&ag->stats, on_closed);
  agent_stats_remove(ag);
  agent_seg_unhold_all(ag);
  uv_close((uv_handle_t *)&ag->hold, on_closed);
  agent_local_close_all(ag);
  agent_exit_close_all(ag);
  agent_up_close(ag);
}

#define AGENT_FLUSH_MAX_PAGES 16384u /* looked at per period: 64 MiB hashed, a few ms */

static void on_flush(uv_timer_t *t) {
  struct agent *ag = t->data;
  uint32_t n = agent_seg_flush(ag, AGENT_FLUSH_MAX_PAGES);

  if (n > 0)
    AGENT_VLOG("background write-back: %u pages", n);
}

static void on_idle(uv_timer_t *t) {
  struct agent *ag = t->data;

  if (ag->nprocs != 0)
    return;
  /* Idle, but the host still owes the server something: a segment whose last DETACH has
   * not been answered, or a reconnect whose resync will write pages back. Leaving now would
   * lose them: look again later (a reconnect that fails stops the agent itself). */
  if (!TAILQ_EMPTY(&ag->segs) || ag->up_reconn) {
    uv_timer_start(&ag->idle, on_idle, 100, 0);
    return;
  }
  agent_stop(ag, "no local process left");
}

#define AGENT_FIRST_WAIT_MS 5000u /* the process that started us connects right after "ok" */

void agent_procs_changed(struct agent *ag) {
  if (ag->stopping)
    return;
  if (ag->nprocs == 0)
    uv_timer_start(&ag->idle, on_idle,
                   ag->next_proc_id == 0 && ag->cfg->idle_ms < AGENT_FIRST_WAIT_MS
                       ? AGENT_FIRST_WAIT_MS : ag->cfg->idle_ms, 0);
  else
    uv_timer_stop(&ag->idle);
}

static void on_signal(uv_signal_t *h, int signum) {
  agent_stop(h->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void agent_init(struct agent *ag, uv_loop_t *loop, struct agent_cfg *cfg) {
  memset(ag, 0, sizeof *ag);
  ag->loop = loop;
  ag->cfg = cfg;
  ag->listen_fd = -1;
  TAILQ_INIT(&ag->procs);
  TAILQ_INIT(&ag->segs);
  TAILQ_INIT(&ag->revokes);
  TAILQ_INIT(&ag->exitwatches);
  uv_signal_init(loop, &ag->sigterm);
  uv_signal_init(loop, &ag->sigint);
  uv_timer_init(loop, &ag->idle);
  uv_timer_init(loop, &ag->flush);
  uv_timer_init(loop, &ag->stats);
  uv_timer_init(loop, &ag->hold);
  ag->sigterm.data = ag->sigint.data = ag->idle.data = ag->flush.data = ag->hold.data = ag->stats.data = ag;
}

static int usage(void) {
  fprintf(stderr, "usage: dshm-agent --dir DIR --name NAME --server SPEC [--ready-fd FD] "
                  "[--idle-ms MS] [--foreground] [--systemd]\n"
                  "       dshm-agent --print-name [--server SPEC]\n");
  return 2;
}

/* Tells the process that started us how it went: "ok", or "err ERRNO reason". */
static void ready(struct agent_cfg *c, int err, const char *why) {
  char line[700];
  int n;

  if (c->ready_fd < 0)
    return;
  n = err == 0 ? snprintf(line, sizeof line, "ok\n")
               : snprintf(line, sizeof line, "err %d %s\n", -err, why);
  if (write(c->ready_fd, line, (size_t)n) < 0) {
    /* the starter is gone: nothing to tell */
  }
  close(c->ready_fd);
  c->ready_fd = -1;
}

static int token(struct agent_cfg *c, char *why, size_t whylen) {
  const char *tok = getenv("DSHM_TOKEN"), *file = getenv("DSHM_TOKEN_FILE");
  char reason[4200];

  if (tok != NULL) {
    if (dshm_auth_key_from_token(&c->key, tok, strlen(tok)) < 0) {
      snprintf(why, whylen, "DSHM_TOKEN is empty or longer than 4096 bytes");
      return -EACCES;
    }
    c->have_key = 1;
  } else if (file != NULL && *file != '\0') {
    if (dshm_auth_key_from_file(&c->key, file, reason, sizeof reason) < 0) {
      snprintf(why, whylen, "DSHM_TOKEN_FILE: %.600s", reason);
      return -EACCES;
    }
    c->have_key = 1;
  }
  return 0;
}

/* A grandchild in a session of its own, stdio on /dev/null and the log, every inherited
 * descriptor but the ready pipe closed (an inherited pipe end would keep a reader of the
 * starter's output waiting for us). The intermediate child exits at once. */
static int daemonize(struct agent_cfg *c) {
  char log[PATH_MAX];
  pid_t pid = fork();
  int fd;

  if (pid < 0)
    return -errno;
  if (pid > 0)
    _exit(0);
  setsid();
  pid = fork();
  if (pid < 0)
    return -errno;
  if (pid > 0)
    _exit(0);
  if (chdir("/") < 0) {
    /* nothing depends on the directory */
  }
  fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    if (fd > STDERR_FILENO)
      close(fd);
  }
  snprintf(log, sizeof log, "%.2000s/%.120s.log", c->dir, c->name);
  fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  return 0;
}

static void close_inherited(int keep, int keep2) {
  for (int fd = 3; fd < 1024; fd++)
    if (fd != keep && fd != keep2)
      close(fd);
}

/* --print-name: the name (and so the unit instance, docs/operations.md) of the agent the
 * library uses with this environment's DSHM_SERVER (or spec) and token setting. */
static int print_name(const char *spec) {
  const char *env = getenv("DSHM_SERVER");
  char name[128];

  if (spec[0] == '\0')
    spec = env != NULL && *env != '\0' ? env : DSHM_DEFAULT_SERVER;
  agent_act_name(spec, name, sizeof name);
  printf("%s\n", name);
  return fflush(stdout) == 0 ? 0 : 1;
}

/* The socket systemd passed is the one the library connects to, and the agent's name is the
 * one the library derives from the server and token of the agent's environment (else the
 * library's processes would look elsewhere, and start agents of their own). 0, or -errno
 * with why filled. */
static int check_activated(int fd, struct agent_cfg *c, char *why, size_t whylen) {
  char name[128];
  int err = agent_act_check(fd, c->sock_path, why, whylen);

  if (err < 0)
    return err;
  agent_act_name(c->spec, name, sizeof name);
  if (strcmp(name, c->name) != 0) {
    snprintf(why, whylen, "--name %.120s is not the library's name for DSHM_SERVER=%.200s%s: "
                          "%.120s (dshm-agent --print-name; a unit's instance is that name)",
             c->name, c->spec, getenv("DSHM_TOKEN") != NULL ? " with DSHM_TOKEN"
                               : getenv("DSHM_TOKEN_FILE") != NULL &&
                                 *getenv("DSHM_TOKEN_FILE") != '\0' ? " with DSHM_TOKEN_FILE"
                                                                     : " without a token",
             name);
    return -EINVAL;
  }
  /* libuv's poll and local.c's accept loop want a non-blocking listener. */
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
    snprintf(why, whylen, "the socket from systemd: fcntl: %s", strerror(errno));
    return -errno;
  }
  return 0;
}

static int timeout_valid(uint64_t ms) {
  return ms >= 1 && ms <= 86400000u;
}

static int flush_valid(uint64_t ms) {
  return ms <= 3600000u;
}

/* A setting in milliseconds from the environment: taken when it is a number valid() accepts,
 * else named in the log and *ms kept (a typo must not stop the host's agent). */
static void env_ms(const char *name, int (*valid)(uint64_t), const char *want, uint32_t *ms) {
  const char *v = getenv(name);
  char *end = NULL;
  unsigned long long n;

  if (v == NULL || *v == '\0')
    return;
  errno = 0;
  n = strtoull(v, &end, 10);
  if (*end == '\0' && v[0] != '-' && errno == 0 && valid(n))
    *ms = (uint32_t)n;
  else
    agent_log("ignoring %s='%s' (want %s), using %u", name, v, want, *ms);
}

int main(int argc, char **argv) {
  static struct agent_cfg cfg;
  static struct agent ag;
  char why[700] = "", pidline[32];
  uv_loop_t loop;
  int i, err, foreground = 0, lockfd, systemd = 0, name_only = 0, act_fd;

  cfg.ready_fd = -1;
  agent_verbose = getenv("DSHM_AGENT_VERBOSE") != NULL && strcmp(getenv("DSHM_AGENT_VERBOSE"), "0") != 0;
  cfg.idle_ms = AGENT_DEFAULT_IDLE_MS;
  cfg.flush_ms = 100;
  cfg.hold_ms = AGENT_HOLD_MS;
  {
    /* A segment larger than the machine's memory and swap could never be used whole:
     * refuse it (ENOMEM) rather than size the per-page records from a server's word. */
    struct sysinfo si;
    if (sysinfo(&si) == 0)
      cfg.max_segsz = ((uint64_t)si.totalram + si.totalswap) * (si.mem_unit ? si.mem_unit : 1);
  }
  cfg.timeout_ms = 10000;
  env_ms("DSHM_TIMEOUT_MS", timeout_valid, "1..86400000", &cfg.timeout_ms);
  cfg.keepalive_ms = DSHM_KEEPALIVE_DEFAULT_MS;
  env_ms("DSHM_KEEPALIVE_MS", dshm_keepalive_valid, "0 or 1000..3600000", &cfg.keepalive_ms);
  env_ms("DSHM_FLUSH_MS", flush_valid, "0..3600000", &cfg.flush_ms);
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--foreground") == 0) {
      foreground = 1;
      continue;
    }
    if (strcmp(a, "--systemd") == 0) {
      systemd = 1;
      continue;
    }
    if (strcmp(a, "--print-name") == 0) {
      name_only = 1;
      continue;
    }
    if (v == NULL)
      return usage();
    if (strcmp(a, "--dir") == 0)
      snprintf(cfg.dir, sizeof cfg.dir, "%s", v);
    else if (strcmp(a, "--name") == 0)
      snprintf(cfg.name, sizeof cfg.name, "%s", v);
    else if (strcmp(a, "--server") == 0)
      snprintf(cfg.spec, sizeof cfg.spec, "%s", v);
    else if (strcmp(a, "--ready-fd") == 0)
      cfg.ready_fd = atoi(v);
    else if (strcmp(a, "--idle-ms") == 0)
      cfg.idle_ms = (uint32_t)strtoul(v, NULL, 10);
    else
      return usage();
    i++;
  }
  if (name_only)
    return print_name(cfg.spec);
  if (cfg.dir[0] == '\0' || cfg.name[0] == '\0' || cfg.spec[0] == '\0')
    return usage();
  snprintf(cfg.sock_path, sizeof cfg.sock_path, "%.2000s/%.120s.sock", cfg.dir, cfg.name);
  snprintf(cfg.pid_path, sizeof cfg.pid_path, "%.2000s/%.120s.pid", cfg.dir, cfg.name);
  /* Before any descriptor is closed: systemd's socket is descriptor 3. */
  act_fd = agent_act_take(why, sizeof why);
  if (act_fd == 0 && systemd) {
    snprintf(why, sizeof why, "--systemd: no socket from systemd (LISTEN_PID, LISTEN_FDS): "
                              "start dshm-agent@%.120s.socket, not the service alone", cfg.name);
    act_fd = -EINVAL;
  }
  if (act_fd > 0 && cfg.ready_fd == act_fd) {
    snprintf(why, sizeof why, "--ready-fd %d is the socket from systemd", act_fd);
    act_fd = -EINVAL;
  }
  if (act_fd < 0) {
    agent_log("cannot start: %s", why);
    ready(&cfg, act_fd, why);
    return 1;
  }
  close_inherited(cfg.ready_fd, act_fd > 0 ? act_fd : -1);
  signal(SIGPIPE, SIG_IGN);
  /* Activated: systemd follows this process, and the journal reads its stderr. */
  if (act_fd == 0 && !foreground && daemonize(&cfg) < 0)
    return 1;

  err = dshm_client_parse_addr(cfg.spec, "8080", &cfg.addr) < 0 ? -EINVAL : 0;
  if (err < 0)
    snprintf(why, sizeof why, "bad DSHM_SERVER '%s' (expected host:port, [ipv6]:port or "
                              "unix:PATH)", cfg.spec);
  if (err == 0 && act_fd > 0)
    err = check_activated(act_fd, &cfg, why, sizeof why);
  /* One agent per host directory and server: the lock is held for the agent's life. */
  lockfd = err < 0 ? -1 : open(cfg.pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (err == 0 && lockfd < 0) {
    err = -errno;
    snprintf(why, sizeof why, "cannot open %.500s: %s", cfg.pid_path, strerror(errno));
  }
  if (err == 0 && flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
    err = -EADDRINUSE;
    snprintf(why, sizeof why, "another agent runs for %.500s", cfg.sock_path);
  }
  if (err == 0) {
    int n = snprintf(pidline, sizeof pidline, "%d\n", (int)getpid());
    if (ftruncate(lockfd, 0) < 0 || pwrite(lockfd, pidline, (size_t)n, 0) < 0) {
      /* the pid is informative only */
    }
    err = token(&cfg, why, sizeof why);
  }
  if (err == 0)
    err = dshm_auth_init() < 0 ? -EIO : 0;
  if (err == 0 && (err = uv_loop_init(&loop)) < 0)
    snprintf(why, sizeof why, "uv_loop_init: %s", uv_strerror(err));
  if (err < 0) {
    agent_log("cannot start: %s", why);
    ready(&cfg, err, why);
    if (act_fd > 0)
      agent_act_drain(act_fd);
    return 1;
  }
  agent_init(&ag, &loop, &cfg);
  uv_signal_start(&ag.sigterm, on_signal, SIGTERM);
  uv_signal_start(&ag.sigint, on_signal, SIGINT);
  err = agent_up_open(&ag, why, sizeof why);
  if (err == 0 && act_fd > 0) {
    err = agent_local_serve(&ag, act_fd);
    if (err < 0)
      snprintf(why, sizeof why, "cannot serve the socket from systemd: %s", strerror(-err));
  } else if (err == 0) {
    struct stat st;
    err = agent_local_listen(&ag);
    if (err < 0)
      snprintf(why, sizeof why, "cannot listen on %.500s: %s", cfg.sock_path, strerror(-err));
    else if (stat(cfg.sock_path, &st) == 0) {
      sock_made = 1;
      sock_dev = st.st_dev;
      sock_ino = st.st_ino;
    }
  }
  if (err < 0) {
    agent_log("cannot start: %s", why);
    ready(&cfg, err, why);
    if (act_fd > 0 && ag.listen_fd < 0)
      agent_act_drain(act_fd);
    agent_stop(&ag, why);
  } else {
    agent_log("serving %s for %s (idle exit after %u ms%s)", cfg.sock_path, cfg.spec,
              cfg.idle_ms, act_fd > 0 ? "; socket from systemd" : "");
    ready(&cfg, 0, "");
    if (cfg.flush_ms > 0)
      uv_timer_start(&ag.flush, on_flush, cfg.flush_ms, cfg.flush_ms);
    uv_timer_start(&ag.stats, agent_stats_tick, 0, AGENT_STATS_MS);
    agent_procs_changed(&ag); /* nobody yet: the idle clock runs until the first connects */
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  agent_seg_free_all(&ag);
  proto_rxbuf_free(&ag.rx);
  free(ag.fwd);
  free(ag.preq);
  if (uv_loop_close(&loop) != 0)
    agent_log("loop closed with handles still open");
  dshm_auth_key_wipe(&cfg.key);
  agent_log("exited");
  return err < 0 ? 1 : 0;
}
