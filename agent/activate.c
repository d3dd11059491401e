/* activate.c - owns socket activation: taking the listening socket systemd passes the agent
 * (the sd_listen_fds protocol, a few lines, written out so that the agent needs no
 * libsystemd), checking that it is the socket the agent would have made, and the agent's
 * name as the library derives it, which a unit's instance must equal (docs/operations.md,
 * "The host agent as a user unit"). */
#include "activate.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "agentname.h"

/* A decimal number that is the whole string, else -1. */
static long whole_number(const char *s) {
  char *end = NULL;
  long v;

  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtol(s, &end, 10);
  return errno != 0 || *end != '\0' ? -1 : v;
}

static int take(char *why, size_t whylen) {
  const char *fds = getenv("LISTEN_FDS");
  long pid = whole_number(getenv("LISTEN_PID")), n;

  /* Not for us (no LISTEN_PID, or another process's, inherited): nothing was passed. */
  if (pid < 0 || pid != (long)getpid())
    return 0;
  n = whole_number(fds);
  if (n < 0) {
    snprintf(why, whylen, "LISTEN_FDS='%.40s' is not a number of descriptors",
             fds != NULL ? fds : "");
    return -EINVAL;
  }
  if (n == 0)
    return 0;
  if (n > 1) {
    snprintf(why, whylen, "systemd passed %ld sockets (LISTEN_FDS); the agent takes one "
                          "(a single ListenSequentialPacket= in its socket unit)", n);
    return -EINVAL;
  }
  if (fcntl(AGENT_ACT_FD, F_SETFD, FD_CLOEXEC) < 0) {
    snprintf(why, whylen, "LISTEN_FDS=1 but descriptor %d is not open", AGENT_ACT_FD);
    return -EBADF;
  }
  return AGENT_ACT_FD;
}

int agent_act_take(char *why, size_t whylen) {
  int rc = take(why, whylen);

  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  return rc;
}

static const char *type_name(int type) {
  switch (type) {
  case SOCK_STREAM:
    return "SOCK_STREAM (ListenStream=)";
  case SOCK_DGRAM:
    return "SOCK_DGRAM (ListenDatagram=)";
  case SOCK_SEQPACKET:
    return "SOCK_SEQPACKET";
  default:
    return "of another type";
  }
}

int agent_act_check(int fd, const char *path, char *why, size_t whylen) {
  struct sockaddr_un a;
  socklen_t len = sizeof a;
  struct stat st, want;
  int type = 0, acc = 0;
  socklen_t ol = sizeof type;

  if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
    snprintf(why, whylen, "descriptor %d from systemd is not a socket", fd);
    return -ENOTSOCK;
  }
  memset(&a, 0, sizeof a);
  if (getsockname(fd, (struct sockaddr *)&a, &len) < 0 || a.sun_family != AF_UNIX) {
    snprintf(why, whylen, "the socket from systemd is not a Unix socket (address family "
                          "%d): the agent listens on a path", (int)a.sun_family);
    return -EAFNOSUPPORT;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol) < 0 || type != SOCK_SEQPACKET) {
    snprintf(why, whylen, "the socket from systemd is %s, not SOCK_SEQPACKET "
                          "(ListenSequentialPacket=)", type_name(type));
    return -EPROTOTYPE;
  }
  ol = sizeof acc;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol) < 0 || acc != 1) {
    snprintf(why, whylen, "the socket from systemd is not listening (Accept=no, one socket "
                          "for every connection)");
    return -EINVAL;
  }
  /* The path, NUL-terminated whatever the kernel wrote: an unnamed or abstract socket has
   * none, and no process of the library would find it. */
  if (len <= offsetof(struct sockaddr_un, sun_path) || a.sun_path[0] == '\0') {
    snprintf(why, whylen, "the socket from systemd has no path (unnamed or abstract); "
                          "the library connects to %.500s", path);
    return -EINVAL;
  }
  if (len >= sizeof a)
    len = sizeof a - 1;
  ((char *)&a)[len] = '\0';
  /* The same string, or the same file by another spelling (a symlinked directory). */
  if (strcmp(a.sun_path, path) != 0 &&
      (stat(a.sun_path, &st) < 0 || stat(path, &want) < 0 || st.st_dev != want.st_dev ||
       st.st_ino != want.st_ino)) {
    snprintf(why, whylen, "the socket from systemd is at %.400s, not at %.400s where the "
                          "library connects (--dir and --name)", a.sun_path, path);
    return -EINVAL;
  }
  return 0;
}

void agent_act_name(const char *spec, char *out, size_t cap) {
  dshm_agent_name(spec, getenv("DSHM_TOKEN"), getenv("DSHM_TOKEN_FILE"), out, cap);
}

void agent_act_drain(int fd) {
  int c, fl = fcntl(fd, F_GETFL);

  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return;
  while ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) >= 0 || errno == EINTR ||
         errno == ECONNABORTED)
    if (c >= 0)
      close(c);
}
