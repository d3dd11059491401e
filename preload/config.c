/* config.c - owns the environment configuration (DSHM_SERVER, DSHM_DEBUG, DSHM_TIMEOUT_MS,
 * DSHM_AGENT_*) and diagnostics. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentname.h"

struct shim_config shim_cfg;

/* DSHM_AGENT, DSHM_AGENT_DIR, DSHM_AGENT_BIN, DSHM_AGENT_IDLE_MS. The agent's files are
 * named after the server, so that one directory can serve several servers. */
static void load_agent(void) {
  const char *a = getenv("DSHM_AGENT"), *dir = getenv("DSHM_AGENT_DIR");
  const char *bin = getenv("DSHM_AGENT_BIN"), *idle = getenv("DSHM_AGENT_IDLE_MS");
  const char *xdg = getenv("XDG_RUNTIME_DIR");

  /* Direct mode (every process a node of its own) is gone: say so to whoever still asks. */
  if (a != NULL && (strcmp(a, "0") == 0 || strcmp(a, "off") == 0))
    shim_log("DSHM_AGENT=%s: direct mode was removed; processes always share their host's "
             "agent (docs/design.md)", a);
  /* The user's own directory under it (dshm-EUID) is decided at each connect (agentlink.c):
   * a process that changed its uid uses that user's agent. */
  if (dir != NULL && *dir != '\0')
    snprintf(shim_cfg.agent_dir, sizeof shim_cfg.agent_dir, "%.2000s", dir);
  else if (xdg != NULL && *xdg == '/')
    snprintf(shim_cfg.agent_dir, sizeof shim_cfg.agent_dir, "%.2000s", xdg);
  else
    snprintf(shim_cfg.agent_dir, sizeof shim_cfg.agent_dir, "/tmp");
  /* Processes that would prove different tokens to the server must not share an agent
   * (the agent proves the token of the process that started it): the name carries a
   * digest of the token setting. */
  dshm_agent_name(shim_cfg.spec, getenv("DSHM_TOKEN"), getenv("DSHM_TOKEN_FILE"),
                  shim_cfg.agent_name, sizeof shim_cfg.agent_name);
  snprintf(shim_cfg.agent_bin, sizeof shim_cfg.agent_bin, "%s", bin != NULL ? bin : "");
  shim_cfg.agent_idle[0] = '\0';
  if (idle != NULL && *idle != '\0') {
    char *end = NULL;
    long ms = strtol(idle, &end, 10);
    if (*end == '\0' && ms >= 0 && ms <= 86400000L)
      snprintf(shim_cfg.agent_idle, sizeof shim_cfg.agent_idle, "%ld", ms);
    else
      shim_log("ignoring DSHM_AGENT_IDLE_MS='%s' (want 0..86400000)", idle);
  }
}

void shim_config_load(void) {
  const char *s = getenv("DSHM_SERVER");
  const char *d = getenv("DSHM_DEBUG");
  const char *t = getenv("DSHM_TIMEOUT_MS");
  char *end = NULL;
  long ms;

  /* The agent parses and checks it (and says what is wrong with it); here it names the
   * agent that serves it. */
  if (s == NULL || *s == '\0')
    s = DSHM_DEFAULT_SERVER;
  snprintf(shim_cfg.spec, sizeof shim_cfg.spec, "%s", s);
  shim_cfg.debug = d != NULL && *d != '\0' && strcmp(d, "0") != 0;
  /* Positive milliseconds up to a day; anything else keeps the default (said once). */
  shim_cfg.timeout_ms = SHIM_DEFAULT_TIMEOUT_MS;
  if (t != NULL && *t != '\0') {
    errno = 0;
    ms = strtol(t, &end, 10);
    if (errno == 0 && *end == '\0' && ms > 0 && ms <= 86400000L)
      shim_cfg.timeout_ms = (int)ms;
    else
      shim_log("ignoring DSHM_TIMEOUT_MS='%s' (want 1..86400000), using %d", t,
               SHIM_DEFAULT_TIMEOUT_MS);
  }
  load_agent();
}

void shim_log(const char *fmt, ...) {
  char buf[512];
  const char prefix[] = "dshm: ";
  int n = (int)sizeof prefix - 1, m;
  va_list ap;
  int saved = errno;

  memcpy(buf, prefix, (size_t)n);
  va_start(ap, fmt);
  m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  va_end(ap);
  /* Truncate an over-long message, keeping room for the newline. */
  if (m > 0)
    n = (size_t)(n + m) >= sizeof buf - 1 ? (int)sizeof buf - 2 : n + m;
  buf[n++] = '\n';
  /* One write(2): lines from several threads and processes do not interleave. */
  if (write(STDERR_FILENO, buf, (size_t)n) < 0) {
    /* nothing sensible to do */
  }
  errno = saved;
}
