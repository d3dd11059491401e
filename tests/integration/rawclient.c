/* rawclient.c - a raw dshm protocol client for the integration tests (see rawclient.h). */
#include "rawclient.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static void rc_bound_reads(int fd) {
  struct timeval tv = {.tv_sec = 20};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

int rc_connect_tcp(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  rc_bound_reads(fd);
  return fd;
}

int rc_connect(const struct h_server *s) {
  int fd = rc_connect_tcp(s->port);

  ck_assert_msg(fd >= 0, "connect: %s", strerror(-fd));
  return fd;
}

int rc_connect_unix(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -errno;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  rc_bound_reads(fd);
  return fd;
}

int rc_send(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

int rc_recv(int fd, uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

size_t rc_encode(uint8_t *buf, size_t cap, struct proto_msg *m) {
  ssize_t n = proto_encode(buf, cap, m);
  ck_assert_int_gt(n, 0);
  return (size_t)n;
}

int rc_send_msg(int fd, struct proto_msg *m) {
  static uint8_t buf[PROTO_MAX_FRAME];
  ssize_t n = proto_encode(buf, sizeof buf, m);

  if (n <= 0)
    return -1;
  return rc_send(fd, buf, (size_t)n);
}

int rc_next(int fd, struct proto_msg *m) {
  static uint8_t buf[PROTO_MAX_FRAME];
  if (rc_recv(fd, buf, PROTO_HDR_SIZE) < 0 || proto_frame(buf, PROTO_HDR_SIZE, &m->h) < 0 ||
      rc_recv(fd, buf + PROTO_HDR_SIZE, m->h.length) < 0 ||
      proto_decode(m, buf + PROTO_HDR_SIZE, m->h.length) < 0)
    return -1;
  return 0;
}

int rc_reply(int fd, uint32_t reqid, struct proto_msg *m) {
  for (;;) {
    if (rc_next(fd, m) < 0)
      return -1;
    if ((m->h.flags & PROTO_F_REPLY) && m->h.reqid == reqid)
      return 0;
  }
}

int rc_wait_closed(int fd) {
  uint8_t buf[65536];
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0 || (r < 0 && errno == ECONNRESET))
      return 0;
    if (r < 0)
      return -1; /* the receive timeout */
  }
}

struct proto_msg rc_msg(uint8_t op, uint32_t reqid) {
  struct proto_msg m;
  memset(&m, 0, sizeof m);
  m.h.opcode = op;
  m.h.reqid = reqid;
  return m;
}

long rc_proc_kib(pid_t pid, const char *field) {
  char path[64], line[256];
  long v = -1;
  FILE *f;

  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  f = fopen(path, "r");
  ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':')
      v = strtol(line + strlen(field) + 1, NULL, 10);
  fclose(f);
  ck_assert_int_gt(v, 0);
  return v;
}
