/* config.h - the shim's settings from the environment (DSHM_*) and its stderr diagnostics. */
#ifndef DSHM_SHIM_CONFIG_H
#define DSHM_SHIM_CONFIG_H

#define SHIM_DEFAULT_SERVER "127.0.0.1:8080"
#define SHIM_DEFAULT_PORT   "8080"

#include "auth.h"

struct shim_config {
  char spec[256];  /* DSHM_SERVER as given (or the default), for messages */
  char host[256];  /* host part, brackets removed */
  char port[32];   /* port part (service name or number) */
  char unix_path[108]; /* DSHM_SERVER=unix:PATH: the socket's path, else "" */
  int spec_err;    /* 0, or -EINVAL if DSHM_SERVER could not be parsed */
  int debug;       /* DSHM_DEBUG=1 */
  int timeout_ms;  /* DSHM_TIMEOUT_MS: longest wait for the server (fault, call, write-back) */
  int token_set;   /* DSHM_TOKEN was given: token_key is derived from it */
  int token_err;   /* DSHM_TOKEN was given but unusable (empty, too long) */
  struct dshm_auth_key token_key;
  char token_file[4096]; /* DSHM_TOKEN_FILE (read at each connect), else "" */
  int flush_ms;    /* DSHM_FLUSH_MS: background write-back period, 0 = off (flush.c) */
  /* The host agent (agentlink.c, docs/design.md "The node is the host"). */
  int agent;       /* DSHM_AGENT=1: talk to the host agent, not to the server */
  char agent_dir[2048];  /* the host directory: DSHM_AGENT_DIR, else $XDG_RUNTIME_DIR, else
                          * /tmp; each user's agent lives in its dshm-EUID (agentlink.c) */
  char agent_name[128];  /* "agent-" + DSHM_SERVER made file-name safe */
  char agent_bin[2048];  /* DSHM_AGENT_BIN, else found beside the library (agentlink.c) */
  char agent_idle[16];   /* DSHM_AGENT_IDLE_MS, passed to the agent it starts */
};

#define SHIM_DEFAULT_TIMEOUT_MS 10000
#define SHIM_DEFAULT_FLUSH_MS   100
#define SHIM_MAX_FLUSH_MS       3600000

/* Written once by shim_config_load() during init; read-only afterwards. */
extern struct shim_config shim_cfg;

/* Reads DSHM_SERVER, DSHM_DEBUG, DSHM_TIMEOUT_MS, DSHM_TOKEN, DSHM_TOKEN_FILE,
 * DSHM_FLUSH_MS and the DSHM_AGENT* variables. Never fails: a bad DSHM_SERVER is kept in spec_err and
 * reported by the first call that needs the server. */
void shim_config_load(void);

/* One line "dshm: ..." on stderr, written with a single write(2). Not for signal handlers. */
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* shim_log only when DSHM_DEBUG=1. */
#define shim_debug(...)        \
  do {                         \
    if (shim_cfg.debug)        \
      shim_log(__VA_ARGS__);   \
  } while (0)

#endif /* DSHM_SHIM_CONFIG_H */
