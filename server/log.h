/* log.h - one-line event logging to stderr for the server, with a level, as text or JSON. */
#ifndef DSHM_SRV_LOG_H
#define DSHM_SRV_LOG_H

#include <stdio.h>

enum srv_log_level { SRV_LOG_ERROR, SRV_LOG_WARN, SRV_LOG_INFO, SRV_LOG_DEBUG };

/* Set once from the configuration; per-page traffic is logged only when it is non-zero. */
extern int srv_log_verbose;
/* Set once from the configuration (--log-format json): one JSON object per line. */
extern int srv_log_json;

/* Writes one line to stderr as one write: "dshm-server: LEVEL: <message>\n", or with
 * --log-format json {"ts":"RFC 3339 UTC","level":"LEVEL","msg":"<message>"} (with "node"
 * when the message starts "node N"). */
void srv_log(enum srv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The lines scripts wait for on stdout ("dshm-server: listening on ADDR:PORT"): the text
 * line unchanged, or with --log-format json an object whose msg is the text after
 * "dshm-server: ". Flushed. */
void srv_log_stdout(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Formats one log line of msg at level into out (cap bytes, >= 64), newline included;
 * returns its length. json selects the format; now_s/now_ns is the wall-clock time. */
size_t srv__log_format(char *out, size_t cap, int json, enum srv_log_level level,
                       const char *msg, long long now_s, long now_ns);

#define SRV_VLOG(...)                          \
  do {                                         \
    if (srv_log_verbose)                       \
      srv_log(SRV_LOG_DEBUG, __VA_ARGS__);     \
  } while (0)

#endif
