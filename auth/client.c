/* client.c - owns the client side of the handshake on a blocking socket: HELLO, the answer to
 * a CHALLENGE (docs/security.md) and the check of the server's proof. */
#include "client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int dshm_client_parse_addr(const char *s, const char *default_port, struct dshm_addr *a) {
  const char *host = s, *port = default_port, *colon;
  size_t hlen;

  memset(a, 0, sizeof *a);
  if (strncmp(s, "unix:", 5) == 0) {
    if (s[5] == '\0' || strlen(s + 5) >= sizeof a->unix_path)
      return -EINVAL;
    memcpy(a->unix_path, s + 5, strlen(s + 5) + 1);
    return 0;
  }
  if (*s == '[') {
    const char *end = strchr(s, ']');
    if (end == NULL || (end[1] != ':' && end[1] != '\0'))
      return -EINVAL;
    host = s + 1;
    hlen = (size_t)(end - host);
    if (end[1] == ':')
      port = end + 2;
  } else {
    colon = strrchr(s, ':');
    if (colon != NULL && strchr(s, ':') == colon) {
      hlen = (size_t)(colon - s);
      port = colon + 1;
    } else {
      hlen = strlen(s);
    }
  }
  if (hlen == 0 || hlen >= sizeof a->host || *port == '\0' || strlen(port) >= sizeof a->port)
    return -EINVAL;
  memcpy(a->host, host, hlen);
  a->host[hlen] = '\0';
  memcpy(a->port, port, strlen(port) + 1);
  return 0;
}

int dshm_client_connect(const struct dshm_addr *a, const char **why) {
  struct addrinfo hints, *res = NULL, *ai;
  int fd = -1, err = -EHOSTUNREACH, gai, one = 1;

  *why = NULL;
  if (a->unix_path[0] != '\0') {
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return -errno;
    memcpy(un.sun_path, a->unix_path, strlen(a->unix_path) + 1);
    if (connect(fd, (struct sockaddr *)&un, sizeof un) == 0)
      return fd;
    err = -errno;
    close(fd);
    return err;
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  gai = getaddrinfo(a->host, a->port, &hints, &res);
  if (gai != 0) {
    *why = gai_strerror(gai);
    return gai == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
  }
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = -errno;
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      break;
    err = -errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    return err;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int dshm_client_send_all(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;

  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int dshm_client_recv_all(int fd, void *buf, size_t len) {
  uint8_t *p = buf;

  while (len > 0) {
    ssize_t n = recv(fd, p, len, 0);
    if (n == 0)
      return -ECONNRESET;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN ? -ETIMEDOUT : -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads one frame of at most PROTO_SMALL_MAX payload into buf and decodes it into m. */
static int recv_small(int fd, uint8_t *buf, struct proto_msg *m) {
  ssize_t len;
  int err = dshm_client_recv_all(fd, buf, PROTO_HDR_SIZE);

  if (err < 0)
    return err;
  len = proto_frame(buf, PROTO_HDR_SIZE, &m->h);
  if (len < 0 || m->h.length > PROTO_SMALL_MAX)
    return -EPROTO;
  err = dshm_client_recv_all(fd, buf + PROTO_HDR_SIZE, m->h.length);
  if (err == 0 && proto_decode(m, buf + PROTO_HDR_SIZE, m->h.length) < 0)
    err = -EPROTO;
  return err;
}

int dshm_client_call(int fd, struct proto_msg *req, struct proto_msg *reply) {
  ssize_t len = proto_encoded_size(req);
  uint8_t *buf = malloc(PROTO_MAX_FRAME);
  int err;

  req->h.flags = 0;
  req->h.status = 0;
  if (buf == NULL)
    return -ENOMEM;
  len = len < 0 ? len : proto_encode(buf, PROTO_MAX_FRAME, req);
  err = len < 0 ? (int)len : dshm_client_send_all(fd, buf, (size_t)len);
  while (err == 0) {
    err = dshm_client_recv_all(fd, buf, PROTO_HDR_SIZE);
    if (err == 0 && proto_frame(buf, PROTO_HDR_SIZE, &reply->h) < 0)
      err = -EPROTO;
    if (err == 0)
      err = dshm_client_recv_all(fd, buf + PROTO_HDR_SIZE, reply->h.length);
    if (err == 0 && proto_decode(reply, buf + PROTO_HDR_SIZE, reply->h.length) < 0)
      err = -EPROTO;
    if (err == 0 && (reply->h.flags & PROTO_F_REPLY) && reply->h.reqid == req->h.reqid) {
      if (reply->h.status != 0)
        err = -proto_err_to_errno(reply->h.status);
      break;
    }
  }
  free(buf); /* replies that reach the caller carry no pointers into it */
  return err;
}

/* Answers the CHALLENGE in m: proves the key over its nonce and ours, then checks the
 * server's proof. */
static int authenticate(int fd, uint8_t *buf, struct proto_msg *m,
                        const struct dshm_auth_key *key, uint32_t reqid, const char **why) {
  uint8_t snonce[PROTO_NONCE_SIZE], cnonce[PROTO_NONCE_SIZE];
  ssize_t len;
  int err;

  if (m->u.challenge.alg != PROTO_AUTH_ALG) {
    *why = "uses an authentication method this client does not know";
    return -EACCES;
  }
  memcpy(snonce, m->u.challenge.nonce, sizeof snonce);
  dshm_auth_nonce(cnonce);
  memset(m, 0, sizeof *m);
  m->h.opcode = PROTO_OP_AUTH;
  m->h.reqid = reqid;
  memcpy(m->u.auth.nonce, cnonce, sizeof cnonce);
  dshm_auth_mac(key, DSHM_AUTH_CLIENT, snonce, cnonce, m->u.auth.mac);
  len = proto_encode(buf, PROTO_HDR_SIZE + PROTO_SMALL_MAX, m);
  err = len < 0 ? (int)len : dshm_client_send_all(fd, buf, (size_t)len);
  if (err == 0)
    err = recv_small(fd, buf, m);
  if (err == -ECONNRESET ||
      (err == 0 && m->h.opcode == PROTO_OP_AUTH && m->h.status == PROTO_EACCES)) {
    *why = "refused our token: check DSHM_TOKEN / DSHM_TOKEN_FILE";
    return -EACCES;
  }
  if (err < 0)
    return err;
  if (m->h.opcode != PROTO_OP_AUTH || !(m->h.flags & PROTO_F_REPLY) || m->h.status != 0)
    return -EPROTO;
  if (dshm_auth_verify(key, DSHM_AUTH_SERVER, snonce, cnonce, m->u.auth_reply.mac) < 0) {
    *why = "could not prove it knows our token (DSHM_TOKEN / DSHM_TOKEN_FILE): "
           "not the server we meant?";
    return -EACCES;
  }
  return 0;
}

int dshm_client_hello(int fd, struct proto_msg *m, const struct dshm_auth_key *key,
                      uint32_t auth_reqid, const char **why) {
  uint8_t buf[PROTO_HDR_SIZE + PROTO_SMALL_MAX];
  ssize_t len = proto_encode(buf, sizeof buf, m);
  int err = len < 0 ? (int)len : dshm_client_send_all(fd, buf, (size_t)len);

  if (err == 0)
    err = recv_small(fd, buf, m);
  if (err == 0 && m->h.opcode == PROTO_OP_CHALLENGE && !(m->h.flags & PROTO_F_REPLY)) {
    if (key != NULL) {
      err = authenticate(fd, buf, m, key, auth_reqid, why);
    } else {
      *why = "requires a token: set DSHM_TOKEN or DSHM_TOKEN_FILE";
      err = -EACCES;
    }
    if (err == 0)
      err = recv_small(fd, buf, m);
  } else if (err == 0 && key != NULL) {
    /* The server did not ask: it cannot prove it knows the token either. */
    *why = "did not ask for the token given in DSHM_TOKEN / DSHM_TOKEN_FILE: "
           "refusing a server that cannot prove it knows it";
    err = -EACCES;
  }
  if (err == 0 && (m->h.opcode != PROTO_OP_HELLO || !(m->h.flags & PROTO_F_REPLY)))
    err = -EPROTO;
  if (err == 0 && m->h.status != 0)
    err = -proto_err_to_errno(m->h.status);
  if (err == 0 && m->u.hello_reply.page_size != PROTO_PAGE_SIZE)
    err = -EPROTO;
  return err;
}
