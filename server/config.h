/* config.h - the server's settings from the command line and DSHM_* environment. */
#ifndef DSHM_SRV_CONFIG_H
#define DSHM_SRV_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "segments.h"

#define SRV_DEFAULT_PORT      8080
#define SRV_DEFAULT_BIND      "127.0.0.1"
#define SRV_DEFAULT_MAX_CONNS 1024u
#define SRV_MAX_CONNS_LIMIT   65536u

struct srv_config {
  char bind[64];
  int port;                 /* 0: the kernel picks a free one */
  struct srv_limits lim;
  uint32_t max_conns;
  int verbose;
};

/* Fills *cfg from defaults, then environment, then argv (flags win).
 * Returns 0 to run, 1 when --help/--version was printed to out (exit 0), or -EINVAL after
 * a message on err (exit 2). Uses getopt_long: call once per process. */
int srv_config_parse(struct srv_config *cfg, int argc, char **argv, FILE *out, FILE *err);

#endif
