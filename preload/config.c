/* config.c - owns the environment configuration (DSHM_SERVER, DSHM_DEBUG, DSHM_TIMEOUT_MS, DSHM_FLUSH_MS) and diagnostics. */
#include "config.h"

#include "client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct shim_config shim_cfg;

/* Splits DSHM_SERVER (auth/client.c) into cfg->host / port / unix_path. */
static int parse_server(const char *spec, struct shim_config *cfg) {
  struct dshm_addr a;
  int err = dshm_client_parse_addr(spec, SHIM_DEFAULT_PORT, &a);

  if (err == 0) {
    memcpy(cfg->host, a.host, sizeof cfg->host);
    memcpy(cfg->port, a.port, sizeof cfg->port);
    memcpy(cfg->unix_path, a.unix_path, sizeof cfg->unix_path);
  }
  return err;
}

/* DSHM_FLUSH_MS: 0 (off) or 1..SHIM_MAX_FLUSH_MS; anything else keeps the default. */
static void load_flush_ms(void) {
  const char *f = getenv("DSHM_FLUSH_MS");
  char *end = NULL;
  long ms;

  shim_cfg.flush_ms = SHIM_DEFAULT_FLUSH_MS;
  if (f == NULL || *f == '\0')
    return;
  errno = 0;
  ms = strtol(f, &end, 10);
  if (errno == 0 && *end == '\0' && ms >= 0 && ms <= SHIM_MAX_FLUSH_MS)
    shim_cfg.flush_ms = (int)ms;
  else
    shim_log("ignoring DSHM_FLUSH_MS='%s' (want 0..%d), using %d", f, SHIM_MAX_FLUSH_MS,
             SHIM_DEFAULT_FLUSH_MS);
}

/* DSHM_AGENT, DSHM_AGENT_DIR, DSHM_AGENT_BIN, DSHM_AGENT_IDLE_MS. The agent's files are
 * named after the server, so that one directory can serve several servers. */
static void load_agent(void) {
  const char *a = getenv("DSHM_AGENT"), *dir = getenv("DSHM_AGENT_DIR");
  const char *bin = getenv("DSHM_AGENT_BIN"), *idle = getenv("DSHM_AGENT_IDLE_MS");
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  size_t i, n = 0;

  /* The host agent is the default; DSHM_AGENT=0 keeps the direct mode (every process a
   * node of its own) while it lasts. */
  shim_cfg.agent = a == NULL || *a == '\0' || (strcmp(a, "0") != 0 && strcmp(a, "off") != 0);
  /* The user's own directory under it (dshm-EUID) is decided at each connect (agentlink.c):
   * a process that changed its uid uses that user's agent. */
  if (dir != NULL && *dir != '\0')
    snprintf(shim_cfg.agent_dir, sizeof shim_cfg.agent_dir, "%.2000s", dir);
  else if (xdg != NULL && *xdg == '/')
    snprintf(shim_cfg.agent_dir, sizeof shim_cfg.agent_dir, "%.2000s", xdg);
  else
    snprintf(shim_cfg.agent_dir, sizeof shim_cfg.agent_dir, "/tmp");
  n = (size_t)snprintf(shim_cfg.agent_name, sizeof shim_cfg.agent_name, "agent-");
  for (i = 0; shim_cfg.spec[i] != '\0' && n < 100; i++) {
    char c = shim_cfg.spec[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-';
    shim_cfg.agent_name[n++] = ok ? c : '_';
  }
  shim_cfg.agent_name[n] = '\0';
  /* Processes that would prove different tokens to the server must not share an agent
   * (the agent proves the token of the process that started it): the name carries a
   * digest of the token setting. */
  if (getenv("DSHM_TOKEN") != NULL || (getenv("DSHM_TOKEN_FILE") != NULL &&
                                       *getenv("DSHM_TOKEN_FILE") != '\0')) {
    const char *t = getenv("DSHM_TOKEN") != NULL ? getenv("DSHM_TOKEN") : getenv("DSHM_TOKEN_FILE");
    uint64_t h = getenv("DSHM_TOKEN") != NULL ? 0x74ull : 0x66ull;
    for (; *t != '\0'; t++)
      h = (h ^ (uint8_t)*t) * 0x100000001b3ull;
    snprintf(shim_cfg.agent_name + n, sizeof shim_cfg.agent_name - n, "-t%08x",
             (unsigned)(h ^ (h >> 32)));
  }
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
  const char *tok = getenv("DSHM_TOKEN");
  const char *tokf = getenv("DSHM_TOKEN_FILE");
  char *end = NULL;
  long ms;

  if (s == NULL || *s == '\0')
    s = SHIM_DEFAULT_SERVER;
  snprintf(shim_cfg.spec, sizeof shim_cfg.spec, "%s", s);
  shim_cfg.spec_err = parse_server(s, &shim_cfg);
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
  /* DSHM_TOKEN wins over DSHM_TOKEN_FILE; only the derived key is kept. */
  shim_cfg.token_set = tok != NULL;
  shim_cfg.token_err = 0;
  if (tok != NULL)
    shim_cfg.token_err = dshm_auth_key_from_token(&shim_cfg.token_key, tok, strlen(tok));
  shim_cfg.token_file[0] = '\0';
  if (tok == NULL && tokf != NULL && *tokf != '\0')
    snprintf(shim_cfg.token_file, sizeof shim_cfg.token_file, "%s", tokf);
  load_flush_ms();
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
