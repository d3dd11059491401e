/* log.h - one-line event logging to stderr for the server. */
#ifndef DSHM_SRV_LOG_H
#define DSHM_SRV_LOG_H

/* Set once from the configuration; per-page traffic is logged only when it is non-zero. */
extern int srv_log_verbose;

/* Writes "dshm-server: <message>\n" to stderr as one write. */
void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define SRV_VLOG(...)          \
  do {                         \
    if (srv_log_verbose)       \
      srv_log(__VA_ARGS__);    \
  } while (0)

#endif
