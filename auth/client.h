/* client.h - the client half of the handshake on a blocking socket (HELLO, CHALLENGE/AUTH),
 * and one request/reply exchange: shared by the shim and dshm-agent, so both speak to the
 * server through the same code. */
#ifndef DSHM_AUTH_CLIENT_H
#define DSHM_AUTH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "proto.h"

/* A server address as DSHM_SERVER spells it: host:port, [v6addr]:port, host, or unix:PATH. */
struct dshm_addr {
  char host[256];      /* brackets removed */
  char port[32];
  char unix_path[108]; /* unix:PATH, else "" */
};

/* Parses spec (port default_port when it names none). 0 or -EINVAL. A bare IPv6 literal
 * with several colons and no brackets is taken as a host. */
int dshm_client_parse_addr(const char *spec, const char *default_port, struct dshm_addr *a);

/* Connects to a (TCP with TCP_NODELAY, trying every address the name resolves to, or the
 * Unix socket), close-on-exec. A socket, or -errno with *why set to the resolver's message
 * when the name did not resolve (else NULL: strerror says it). */
int dshm_client_connect(const struct dshm_addr *a, const char **why);

/* Writes / reads exactly len bytes on a blocking socket. 0, -ECONNRESET (peer closed),
 * -ETIMEDOUT (SO_RCVTIMEO expired) or -errno. */
int dshm_client_send_all(int fd, const void *p, size_t len);
int dshm_client_recv_all(int fd, void *p, size_t len);

/* Sends req (its reqid already set) and reads frames until the reply with that reqid;
 * other frames are skipped (the server sends nothing else to a node that holds no page).
 * 0, -errno of the reply's status, or -errno of the socket. */
int dshm_client_call(int fd, struct proto_msg *req, struct proto_msg *reply);

/* The handshake: m holds a complete HELLO request (reqid set). With a key, a CHALLENGE is
 * answered (AUTH with reqid auth_reqid) and the server's proof checked; without one, a
 * CHALLENGE is refused. On success m holds HELLO's reply (page size checked). Returns 0,
 * -EACCES with *why set to a sentence fit for the user (which token is wrong or missing),
 * -EPROTO, or -errno. */
int dshm_client_hello(int fd, struct proto_msg *m, const struct dshm_auth_key *key,
                      uint32_t auth_reqid, const char **why);

#endif
