/* client.h - the client half of the handshake on a blocking socket (HELLO, CHALLENGE/AUTH),
 * and one request/reply exchange: shared by the shim and dshm-agent, so both speak to the
 * server through the same code. */
#ifndef DSHM_AUTH_CLIENT_H
#define DSHM_AUTH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "proto.h"

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
