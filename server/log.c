/* log.c - owns the server's stderr log format: one line per event, "dshm-server: " first. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

int srv_log_verbose;

void srv_log(const char *fmt, ...) {
  char line[512];
  va_list ap;
  int n = snprintf(line, sizeof line, "dshm-server: ");

  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2)
    n = (int)sizeof line - 2; /* truncated: keep room for the newline */
  line[n++] = '\n';
  /* One write per line so lines from a busy server never interleave mid-line. */
  (void)!write(STDERR_FILENO, line, (size_t)n);
}
