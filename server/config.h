/* config.h - the server's settings from the command line and DSHM_* environment. */
#ifndef DSHM_SRV_CONFIG_H
#define DSHM_SRV_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "segments.h"
#include "sems.h"

#define SRV_DEFAULT_PORT      8080
#define SRV_DEFAULT_BIND      "127.0.0.1"
#define SRV_DEFAULT_METRICS_BIND "127.0.0.1" /* --metrics PORT */
#define SRV_DEFAULT_MAX_CONNS 1024u
#define SRV_MAX_CONNS_LIMIT   65536u
#define SRV_DEFAULT_MAX_OUTPUT (64u << 20)  /* bytes queued to one peer */
#define SRV_MIN_MAX_OUTPUT    (2u << 20)    /* room for the largest reply frame */
#define SRV_DEFAULT_HELLO_TIMEOUT_MS 10000u
#define SRV_MAX_TIMEOUT_S     (7u * 24 * 3600)
#define SRV_DEFAULT_MAX_PENDING 1024u       /* page requests one connection may have held */
#define SRV_MAX_PENDING_LIMIT (1u << 20)
/* --max-frame: from one full-page run (the smallest frame a client must be able to send)
 * up to the protocol's largest frame. */
#define SRV_MIN_MAX_FRAME     (PROTO_HDR_SIZE + PROTO_RUN_HDR + PROTO_RUN_ENTRY + PROTO_PAGE_SIZE)
#define SRV_DEFAULT_UNIX_MODE 0666u
#define SRV_DEFAULT_GRACE_MS  5000u   /* after a restart: how long pages wait for old owners */
#define SRV_MAX_GRACE_MS      3600000u

struct srv_config {
  char bind[64];
  int port;                 /* 0: the kernel picks a free one */
  int tcp;                  /* listen on TCP (bind:port): not with --unix alone */
  int tcp_explicit;         /* --port, --bind or a positional PORT was given */
  char unix_path[108];      /* --unix: "" for none */
  uint32_t unix_mode;       /* permissions of the socket file */
  char token_file[4096];    /* --token-file: "" for none */
  int auth;                 /* a token was loaded into key: every peer must prove it */
  struct dshm_auth_key key;
  int insecure;             /* --insecure: a non-loopback bind without a token */
  uint64_t max_frame;       /* largest frame accepted (header included) */
  uint32_t max_pending;     /* page requests held for one connection before it is paused */
  struct srv_limits lim;
  struct srv_sem_limits semlim;
  uint32_t max_conns;
  uint64_t max_output;         /* bytes queued to one peer before it is closed */
  uint64_t hello_timeout_ms;   /* 0: none */
  uint64_t idle_timeout_ms;    /* 0: none; only connections with nothing attached */
  uint32_t keepalive_ms;       /* TCP peers that stop answering are dropped after about
                                * this (auth/keepalive.h); 0: the kernel's defaults */
  int verbose;
  int log_json;                /* --log-format json */
  int metrics;                 /* --metrics given: serve /metrics on metrics_addr:port */
  char metrics_addr[64];       /* numeric */
  int metrics_port;            /* 0: the kernel picks one (logged) */
  const char *data_dir;        /* --data-dir: NULL keeps segments in memory only */
  uint64_t grace_ms;           /* --grace-ms */
};

/* Fills *cfg from defaults, then environment, then argv (flags win), then loads the token
 * file and checks the combination: a non-loopback TCP address needs a token or --insecure.
 * Returns 0 to run, 1 when --help/--version was printed to out (exit 0), or -EINVAL after
 * a message on err (exit 2). Uses getopt_long: call once per process. */
int srv_config_parse(struct srv_config *cfg, int argc, char **argv, FILE *out, FILE *err);

/* Parses "PORT", "ADDR:PORT" or "[V6ADDR]:PORT" (numeric addresses only); def is the
 * address for a port alone. 0, or -EINVAL. */
int srv_config_parse_hostport(const char *val, const char *def, char *addr, size_t cap,
                              int *port);

/* 1 if the numeric address addr is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x). */
int srv_config_is_loopback(const char *addr);

/* The largest run a client may send under max_frame (1..PROTO_MAX_RUN). */
uint32_t srv_config_max_run(const struct srv_config *cfg);

#endif
