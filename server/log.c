/* log.c - owns the server's log format: one line per event on stderr, with its level, as
 * "dshm-server: info: ..." text or as one JSON object (docs/operations.md, "Logs"). */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

int srv_log_verbose;
int srv_log_json;

#define MSG_MAX  512u   /* a message is cut there */
#define LINE_MAX_ 4096u /* room for MSG_MAX escaped (6 bytes per byte at worst) and the rest */

static const char *const level_name[] = {"error", "warn", "info", "debug"};

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  size_t len, i;
  unsigned cp;

  if (p[0] < 0x80)
    return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    len = 2, cp = p[0] & 0x1f;
  else if (p[0] >= 0xe0 && p[0] <= 0xef)
    len = 3, cp = p[0] & 0x0f;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4)
    len = 4, cp = p[0] & 0x07;
  else
    return 0;
  if (len > n)
    return 0;
  for (i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

/* Appends msg as a JSON string body (no quotes) to out[*n..cap), stopping before an escape
 * would not fit: the result is always valid JSON text. Invalid UTF-8 becomes U+FFFD. */
static void json_escape(char *out, size_t *n, size_t cap, const char *msg) {
  const unsigned char *p = (const unsigned char *)msg;
  size_t left = strlen(msg);

  while (left > 0) {
    char esc[8];
    const char *src = esc;
    size_t len, take = 1;

    if (*p == '"' || *p == '\\') {
      esc[0] = '\\', esc[1] = (char)*p, len = 2;
    } else if (*p == '\n') {
      memcpy(esc, "\\n", 2), len = 2;
    } else if (*p == '\t') {
      memcpy(esc, "\\t", 2), len = 2;
    } else if (*p < 0x20 || *p == 0x7f) {
      len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
    } else if ((take = utf8_len(p, left)) == 0) {
      memcpy(esc, "\\ufffd", 6), len = 6, take = 1;
    } else {
      src = (const char *)p, len = take;
    }
    if (len > cap - *n)
      return;
    memcpy(out + *n, src, len);
    *n += len;
    p += take;
    left -= take;
  }
}

/* "node N" at the start of a message: N, else -1. */
static long long node_of(const char *msg) {
  long long v = 0;
  const char *p;

  if (strncmp(msg, "node ", 5) != 0 || msg[5] < '0' || msg[5] > '9')
    return -1;
  for (p = msg + 5; *p >= '0' && *p <= '9' && v < 1000000000; p++)
    v = v * 10 + (*p - '0');
  return *p == ' ' || *p == ':' || *p == '\0' ? v : -1;
}

size_t srv__log_format(char *out, size_t cap, int json, enum srv_log_level level,
                       const char *msg, long long now_s, long now_ns) {
  size_t n;

  if (!json) {
    int k = snprintf(out, cap, "dshm-server: %s: %s", level_name[level], msg);
    n = k < 0 ? 0 : (size_t)k > cap - 2 ? cap - 2 : (size_t)k; /* keep room for '\n' */
  } else {
    struct tm tm;
    time_t t = (time_t)now_s;
    long long node = node_of(msg);
    char ts[32];

    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    n = (size_t)snprintf(out, cap, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"", ts,
                         now_ns / 1000000, level_name[level]);
    /* The tail: the quote, the node field and "}\n". */
    json_escape(out, &n, cap - 32, msg);
    n += (size_t)snprintf(out + n, cap - n, node >= 0 ? "\",\"node\":%lld}" : "\"}", node);
  }
  out[n++] = '\n';
  return n;
}

__attribute__((format(printf, 3, 0)))
static void vlog(int fd, enum srv_log_level level, const char *fmt, va_list ap) {
  char msg[MSG_MAX], line[LINE_MAX_];
  struct timespec ts = {0, 0};
  size_t n;

  vsnprintf(msg, sizeof msg, fmt, ap);
  if (srv_log_json)
    clock_gettime(CLOCK_REALTIME, &ts);
  n = srv__log_format(line, sizeof line, srv_log_json, level, msg, (long long)ts.tv_sec,
                      ts.tv_nsec);
  /* One write per line so lines from a busy server never interleave mid-line. */
  (void)!write(fd, line, n);
}

void srv_log(enum srv_log_level level, const char *fmt, ...) {
  va_list ap;

  if ((unsigned)level > SRV_LOG_DEBUG)
    level = SRV_LOG_ERROR;
  srv_metrics_inc((enum srv_counter)(SRV_M_LOG_ERROR + (int)level));
  va_start(ap, fmt);
  vlog(STDERR_FILENO, level, fmt, ap);
  va_end(ap);
}

void srv_log_stdout(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  if (srv_log_json) {
    vlog(STDOUT_FILENO, SRV_LOG_INFO, fmt, ap);
  } else {
    char msg[MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* The historical line, without a level: scripts parse "dshm-server: listening on". */
    printf("dshm-server: %s\n", msg);
    fflush(stdout);
  }
  va_end(ap);
}
