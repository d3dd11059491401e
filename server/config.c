/* config.c - owns option parsing: defaults, then DSHM_* variables, then command-line flags. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "keepalive.h"

/* X(id, long name, environment variable, argument, help): one table generates the getopt
 * options, the environment lookups and --help. */
#define SRV_OPTIONS(X)                                                                     \
  X(PORT, "port", "DSHM_PORT", "N", "TCP port; 0 picks a free one (default 8080)")         \
  X(BIND, "bind", "DSHM_BIND", "ADDR", "address to listen on (default 127.0.0.1)")         \
  X(SHMMAX, "shmmax", "DSHM_SHMMAX", "BYTES", "largest segment (SHMMAX)")                  \
  X(SHMALL, "shmall", "DSHM_SHMALL", "PAGES", "pages in all segments together (SHMALL)")   \
  X(SHMMNI, "shmmni", "DSHM_SHMMNI", "N", "most segments at once, <= 32768 (SHMMNI)")      \
  X(SEMMSL, "semmsl", "DSHM_SEMMSL", "N", "most semaphores in a set, <= 32000 (SEMMSL)")   \
  X(SEMMNS, "semmns", "DSHM_SEMMNS", "N", "semaphores in all sets together (SEMMNS)")       \
  X(SEMOPM, "semopm", "DSHM_SEMOPM", "N", "most operations in one semop, <= 4096 (SEMOPM)") \
  X(SEMMNI, "semmni", "DSHM_SEMMNI", "N", "most semaphore sets at once, <= 32768 (SEMMNI)") \
  X(MAX_CONNS, "max-conns", "DSHM_MAX_CONNS", "N", "most client connections (1024)")       \
  X(MAX_OUTPUT, "max-output", "DSHM_MAX_OUTPUT", "BYTES",                                 \
    "output queued to one peer before it is closed (64 MiB)")                              \
  X(HELLO_TIMEOUT, "hello-timeout", "DSHM_HELLO_TIMEOUT", "SECONDS",                       \
    "close connections without HELLO after this; 0 = never (10)")                          \
  X(IDLE_TIMEOUT, "idle-timeout", "DSHM_IDLE_TIMEOUT", "SECONDS",                          \
    "close silent connections with nothing attached; 0 = never (0)")                       \
  X(KEEPALIVE_MS, "keepalive-ms", "DSHM_KEEPALIVE_MS", "MS",                             \
    "drop a TCP peer that stops answering after about MS (1000..3600000); 0 = the "     \
    "kernel's retransmission limit (5000)")                                               \
  X(UNIX, "unix", "DSHM_UNIX", "PATH",                                                     \
    "also listen on this Unix socket; alone, it replaces TCP unless --port/--bind is given") \
  X(UNIX_MODE, "unix-mode", "DSHM_UNIX_MODE", "OCTAL",                                     \
    "permissions of the --unix socket file (0666)")                                        \
  X(TOKEN_FILE, "token-file", "DSHM_TOKEN_FILE", "FILE",                                   \
    "require every client to prove this token (file chmod 600)")                           \
  X(INSECURE, "insecure", "DSHM_INSECURE", "",                                             \
    "allow a non-loopback --bind without --token-file (anyone may connect)")               \
  X(MAX_FRAME, "max-frame", "DSHM_MAX_FRAME", "BYTES",                                     \
    "largest frame accepted, also the input buffered per connection (1052708)")            \
  X(MAX_PENDING, "max-pending", "DSHM_MAX_PENDING", "N",                                   \
    "page requests held for one connection before it is not read (1024)")                  \
  X(DATA_DIR, "data-dir", "DSHM_DATA_DIR", "DIR",                                         \
    "keep segments in files in DIR across restarts (default: in memory)")                 \
  X(GRACE_MS, "grace-ms", "DSHM_GRACE_MS", "MS",                                           \
    "after a restart, pages wait this long for their old owners (5000)")                   \
  X(METRICS, "metrics", "DSHM_METRICS", "[ADDR:]PORT",                                 \
    "serve Prometheus figures at http://ADDR:PORT/metrics (ADDR 127.0.0.1; default off)")    \
  X(LOG_FORMAT, "log-format", "DSHM_LOG_FORMAT", "text|json",                              \
    "log lines as text or as one JSON object each (text)")                                 \
  X(VERBOSE, "verbose", "DSHM_VERBOSE", "", "also log per-page traffic (debug level)")

enum opt_id {
#define OPT_ENUM(id, name, env, arg, help) OPT_##id,
  SRV_OPTIONS(OPT_ENUM)
#undef OPT_ENUM
  OPT_COUNT_,
  OPT_HELP = 0x100, /* outside the table and above any short option character */
  OPT_VERSION,
};

struct opt {
  const char *name;
  const char *env;
  const char *arg;
  const char *help;
};

static const struct opt opts[OPT_COUNT_] = {
#define OPT_ROW(id, name, env, arg, help) [OPT_##id] = {name, env, arg, help},
  SRV_OPTIONS(OPT_ROW)
#undef OPT_ROW
};

static void usage(FILE *f) {
  int i;
  fprintf(f, "usage: dshm-server [OPTIONS] [PORT]\n"
             "Serves SysV shared memory segments to dshm clients over TCP and/or a Unix socket\n"
             "(--unix alone means no TCP unless --port or --bind is given too).\n\n");
  for (i = 0; i < OPT_COUNT_; i++) {
    char left[40];
    snprintf(left, sizeof left, "--%s%s%s", opts[i].name, *opts[i].arg ? " " : "",
             opts[i].arg);
    fprintf(f, "  %-20s %s [%s]\n", left, opts[i].help, opts[i].env);
  }
  fprintf(f, "  %-20s %s\n  %-20s %s\n", "-h, --help", "show this help", "-V, --version",
          "show the version");
}

/* A whole unsigned decimal (or 0x hex) number: strtoull alone would accept "-1". */
static int parse_u64(const char *s, uint64_t *v) {
  char *end;
  unsigned long long n;

  if (s == NULL || *s < '0' || *s > '9')
    return -EINVAL;
  errno = 0;
  n = strtoull(s, &end, 0);
  if (errno != 0 || *end != '\0')
    return -EINVAL;
  *v = n;
  return 0;
}

/* Applies one setting; from names its source for the message. */
static int apply(struct srv_config *cfg, enum opt_id id, const char *val, const char *from,
                 FILE *err) {
  uint64_t v = 0;
  int numeric = id != OPT_BIND && id != OPT_VERBOSE && id != OPT_UNIX &&
                id != OPT_UNIX_MODE && id != OPT_TOKEN_FILE && id != OPT_INSECURE &&
                id != OPT_DATA_DIR && id != OPT_METRICS && id != OPT_LOG_FORMAT;

  if (numeric && parse_u64(val, &v) < 0)
    goto bad;
  switch (id) {
  case OPT_PORT:
    if (v > 65535)
      goto bad;
    cfg->port = (int)v;
    break;
  case OPT_BIND: {
    unsigned char addr[sizeof(struct in6_addr)];
    /* A numeric address: resolving names is not the server's business at startup. */
    if (val == NULL || strlen(val) >= sizeof cfg->bind ||
        (inet_pton(AF_INET, val, addr) != 1 && inet_pton(AF_INET6, val, addr) != 1))
      goto bad;
    strcpy(cfg->bind, val);
    break;
  }
  case OPT_SHMMAX:
    cfg->lim.shmmax = v;
    break;
  case OPT_SHMALL:
    cfg->lim.shmall = v;
    break;
  case OPT_SHMMNI:
    if (v > SRV_IPCMNI)
      goto bad;
    cfg->lim.shmmni = v;
    break;
  case OPT_SEMMSL:
    if (v < 1 || v > PROTO_SEMMSL_MAX)
      goto bad;
    cfg->semlim.semmsl = (uint32_t)v;
    break;
  case OPT_SEMMNS:
    if (v > INT32_MAX) /* IPC_INFO reports it as an int */
      goto bad;
    cfg->semlim.semmns = (uint32_t)v;
    break;
  case OPT_SEMOPM:
    if (v < 1 || v > PROTO_SEMOPM_MAX)
      goto bad;
    cfg->semlim.semopm = (uint32_t)v;
    break;
  case OPT_SEMMNI:
    if (v > SRV_IPCMNI)
      goto bad;
    cfg->semlim.semmni = (uint32_t)v;
    break;
  case OPT_MAX_CONNS:
    if (v < 1 || v > SRV_MAX_CONNS_LIMIT)
      goto bad;
    cfg->max_conns = (uint32_t)v;
    break;
  case OPT_MAX_OUTPUT:
    if (v < SRV_MIN_MAX_OUTPUT || v > SIZE_MAX / 2)
      goto bad;
    cfg->max_output = v;
    break;
  case OPT_HELLO_TIMEOUT:
  case OPT_IDLE_TIMEOUT:
    if (v > SRV_MAX_TIMEOUT_S)
      goto bad;
    if (id == OPT_HELLO_TIMEOUT)
      cfg->hello_timeout_ms = v * 1000;
    else
      cfg->idle_timeout_ms = v * 1000;
    break;
  case OPT_KEEPALIVE_MS:
    if (!dshm_keepalive_valid(v))
      goto bad;
    cfg->keepalive_ms = (uint32_t)v;
    break;
  case OPT_DATA_DIR:
    if (val == NULL || *val == '\0' || strlen(val) >= 4000)
      goto bad;
    cfg->data_dir = val;
    break;
  case OPT_GRACE_MS:
    if (v > SRV_MAX_GRACE_MS)
      goto bad;
    cfg->grace_ms = v;
    break;
  case OPT_METRICS:
    if (val == NULL || srv_config_parse_hostport(val, SRV_DEFAULT_METRICS_BIND, cfg->metrics_addr,
                                                 sizeof cfg->metrics_addr,
                                                 &cfg->metrics_port) < 0)
      goto bad;
    cfg->metrics = 1;
    break;
  case OPT_LOG_FORMAT:
    if (val == NULL || (strcmp(val, "text") != 0 && strcmp(val, "json") != 0))
      goto bad;
    cfg->log_json = strcmp(val, "json") == 0;
    break;
  case OPT_VERBOSE:
    cfg->verbose = val == NULL || strcmp(val, "0") != 0;
    break;
  case OPT_INSECURE:
    cfg->insecure = val == NULL || strcmp(val, "0") != 0;
    break;
  case OPT_UNIX:
    if (val == NULL || *val == '\0' || strlen(val) >= sizeof cfg->unix_path)
      goto bad;
    strcpy(cfg->unix_path, val);
    break;
  case OPT_UNIX_MODE: {
    char *end;
    unsigned long mode;
    if (val == NULL || *val < '0' || *val > '7')
      goto bad;
    errno = 0;
    mode = strtoul(val, &end, 8);
    if (errno != 0 || *end != '\0' || mode > 0777)
      goto bad;
    cfg->unix_mode = (uint32_t)mode;
    break;
  }
  case OPT_TOKEN_FILE:
    if (val == NULL || *val == '\0' || strlen(val) >= sizeof cfg->token_file)
      goto bad;
    strcpy(cfg->token_file, val);
    break;
  case OPT_MAX_FRAME:
    if (v < SRV_MIN_MAX_FRAME || v > PROTO_MAX_FRAME)
      goto bad;
    cfg->max_frame = v;
    break;
  case OPT_MAX_PENDING:
    if (v < 1 || v > SRV_MAX_PENDING_LIMIT)
      goto bad;
    cfg->max_pending = (uint32_t)v;
    break;
  default:
    goto bad;
  }
  return 0;
bad:
  fprintf(err, "dshm-server: invalid value '%s' for --%s (from %s)\n", val ? val : "",
          opts[id].name, from);
  return -EINVAL;
}

/* After parsing: which listeners, the token, and the refusal to serve a network without
 * one (docs/security.md). */
static int check_security(struct srv_config *cfg, FILE *err) {
  char why[4200 + 128];

  cfg->tcp = cfg->unix_path[0] == '\0' || cfg->tcp_explicit;
  if (cfg->token_file[0] != '\0') {
    if (dshm_auth_key_from_file(&cfg->key, cfg->token_file, why, sizeof why) < 0) {
      fprintf(err, "dshm-server: %s\n", why);
      return -EINVAL;
    }
    cfg->auth = 1;
  }
  if (cfg->tcp && !cfg->auth && !cfg->insecure && !srv_config_is_loopback(cfg->bind)) {
    fprintf(err,
            "dshm-server: refusing to listen on %s without a token: anyone who can reach it "
            "could read and write every segment as any user. Give --token-file FILE "
            "(docs/security.md), or --insecure if the network is trusted.\n",
            cfg->bind);
    return -EINVAL;
  }
  return 0;
}

int srv_config_parse(struct srv_config *cfg, int argc, char **argv, FILE *out, FILE *err) {
  struct option longopts[OPT_COUNT_ + 3];
  int i, c, port_flag = 0;

  memset(cfg, 0, sizeof *cfg);
  strcpy(cfg->bind, SRV_DEFAULT_BIND);
  cfg->port = SRV_DEFAULT_PORT;
  cfg->lim.shmmax = SRV_SHMMAX_DEFAULT;
  cfg->lim.shmmin = SRV_SHMMIN;
  cfg->lim.shmall = SRV_SHMALL_DEFAULT;
  cfg->lim.shmmni = SRV_SHMMNI_DEFAULT;
  cfg->semlim = (struct srv_sem_limits){SRV_SEMMSL_DEFAULT, SRV_SEMMNS_DEFAULT,
                                        SRV_SEMOPM_DEFAULT, SRV_SEMMNI_DEFAULT};
  cfg->max_conns = SRV_DEFAULT_MAX_CONNS;
  cfg->max_output = SRV_DEFAULT_MAX_OUTPUT;
  cfg->hello_timeout_ms = SRV_DEFAULT_HELLO_TIMEOUT_MS;
  cfg->unix_mode = SRV_DEFAULT_UNIX_MODE;
  cfg->max_frame = PROTO_MAX_FRAME;
  cfg->max_pending = SRV_DEFAULT_MAX_PENDING;
  cfg->grace_ms = SRV_DEFAULT_GRACE_MS;
  cfg->keepalive_ms = DSHM_KEEPALIVE_DEFAULT_MS;

  for (i = 0; i < OPT_COUNT_; i++) {
    const char *v = getenv(opts[i].env);
    if (v != NULL && *v != '\0' && apply(cfg, (enum opt_id)i, v, opts[i].env, err) < 0)
      return -EINVAL;
    if (v != NULL && *v != '\0' && (i == OPT_PORT || i == OPT_BIND))
      cfg->tcp_explicit = 1;
    longopts[i] = (struct option){opts[i].name, *opts[i].arg ? required_argument : no_argument,
                                  NULL, i};
  }
  longopts[OPT_COUNT_] = (struct option){"help", no_argument, NULL, OPT_HELP};
  longopts[OPT_COUNT_ + 1] = (struct option){"version", no_argument, NULL, OPT_VERSION};
  longopts[OPT_COUNT_ + 2] = (struct option){NULL, 0, NULL, 0};

  optind = 0; /* full reinitialisation, so tests may parse more than once */
  opterr = 0; /* our own messages */
  while ((c = getopt_long(argc, argv, ":hVv", longopts, NULL)) != -1) {
    switch (c) {
    case 'h':
    case OPT_HELP:
      usage(out);
      return 1;
    case 'V':
    case OPT_VERSION:
      fprintf(out, "dshm-server %s\n", DSHM_VERSION);
      return 1;
    case 'v':
      cfg->verbose = 1;
      break;
    case ':':
      fprintf(err, "dshm-server: option '%s' needs an argument\n", argv[optind - 1]);
      return -EINVAL;
    case '?':
      fprintf(err, "dshm-server: unknown option '%s' (try --help)\n", argv[optind - 1]);
      return -EINVAL;
    default:
      if (apply(cfg, (enum opt_id)c, optarg, "command line", err) < 0)
        return -EINVAL;
      port_flag |= c == OPT_PORT;
      cfg->tcp_explicit |= c == OPT_PORT || c == OPT_BIND;
      break;
    }
  }
  if (optind < argc) {
    /* The positional PORT of the original specification. */
    if (argc - optind > 1) {
      fprintf(err, "dshm-server: unexpected argument '%s'\n", argv[optind + 1]);
      return -EINVAL;
    }
    if (port_flag) {
      fprintf(err, "dshm-server: port given both as --port and as '%s'\n", argv[optind]);
      return -EINVAL;
    }
    if (apply(cfg, OPT_PORT, argv[optind], "command line", err) < 0)
      return -EINVAL;
    cfg->tcp_explicit = 1;
  }
  return check_security(cfg, err);
}

/* A whole decimal port, 0 to 65535. */
static int parse_port(const char *s, int *port) {
  uint64_t v;

  if (parse_u64(s, &v) < 0 || v > 65535 || (s[0] == '0' && s[1] != '\0'))
    return -EINVAL;
  *port = (int)v;
  return 0;
}

int srv_config_parse_hostport(const char *val, const char *def, char *addr, size_t cap,
                              int *port) {
  unsigned char buf[sizeof(struct in6_addr)];
  const char *colon = strrchr(val, ':');
  char host[64];
  size_t hlen;

  if (colon == NULL) {
    if (strlen(def) >= cap || parse_port(val, port) < 0)
      return -EINVAL;
    strcpy(addr, def);
    return 0;
  }
  if (parse_port(colon + 1, port) < 0)
    return -EINVAL;
  hlen = (size_t)(colon - val);
  if (hlen >= 2 && val[0] == '[' && val[hlen - 1] == ']') {
    val++; /* [v6]:port */
    hlen -= 2;
  } else if (memchr(val, ':', hlen) != NULL) {
    return -EINVAL; /* an IPv6 address needs its brackets */
  }
  if (hlen == 0 || hlen >= sizeof host || hlen >= cap)
    return -EINVAL;
  memcpy(host, val, hlen);
  host[hlen] = '\0';
  if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
    return -EINVAL;
  strcpy(addr, host);
  return 0;
}

int srv_config_is_loopback(const char *addr) {
  struct in6_addr a6;
  struct in_addr a4;

  if (inet_pton(AF_INET, addr, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, addr, &a6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
  return 0;
}

uint32_t srv_config_max_run(const struct srv_config *cfg) {
  uint64_t n = (cfg->max_frame - PROTO_HDR_SIZE - PROTO_RUN_HDR) /
               (PROTO_RUN_ENTRY + PROTO_PAGE_SIZE);

  return n > PROTO_MAX_RUN ? PROTO_MAX_RUN : n < 1 ? 1 : (uint32_t)n;
}
