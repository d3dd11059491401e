/* config.h - the shim's settings from the environment (DSHM_*) and its stderr diagnostics. */
#ifndef DSHM_SHIM_CONFIG_H
#define DSHM_SHIM_CONFIG_H

struct shim_config {
  char spec[256];  /* DSHM_SERVER as given (or the default): names the host agent that serves
                    * it, and is passed to the agent it starts */
  int debug;       /* DSHM_DEBUG=1 */
  int timeout_ms;  /* DSHM_TIMEOUT_MS: longest wait for the agent (fault, call) */
  /* The host agent (agentlink.c, docs/design.md "The node is the host"). */
  char agent_dir[2048];  /* the host directory: DSHM_AGENT_DIR, else $XDG_RUNTIME_DIR, else
                          * /tmp; each user's agent lives in its dshm-EUID (agentlink.c) */
  char agent_name[128];  /* "agent-" + DSHM_SERVER made file-name safe */
  char agent_bin[2048];  /* DSHM_AGENT_BIN, else found beside the library (agentlink.c) */
  char agent_idle[16];   /* DSHM_AGENT_IDLE_MS, passed to the agent it starts */
};

#define SHIM_DEFAULT_TIMEOUT_MS 10000

/* Written once by shim_config_load() during init; read-only afterwards. */
extern struct shim_config shim_cfg;

/* Reads DSHM_SERVER, DSHM_DEBUG, DSHM_TIMEOUT_MS and the DSHM_AGENT* variables. Never fails:
 * a bad DSHM_SERVER is reported by the agent it would start. */
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
