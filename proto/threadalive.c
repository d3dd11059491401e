/* threadalive.c - owns the liveness test of threadalive.h (/proc/PID/task/TID/stat). */
#include "threadalive.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int dshm_thread_alive(pid_t pid, pid_t tid) {
  char path[64], buf[512];
  const char *paren;
  ssize_t n;
  int fd;

  if (pid <= 0 || tid <= 0)
    return 0;
  snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT || errno == ESRCH ? 0 : 1;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return n == 0 || errno == ESRCH ? 0 : 1; /* the task went while it was read */
  buf[n] = '\0';
  /* "tid (comm) S ...": comm may hold anything, ")" included; the state follows the last. */
  paren = strrchr(buf, ')');
  if (paren == NULL || paren[1] != ' ')
    return 1;
  return paren[2] != 'Z' && paren[2] != 'X';
}
