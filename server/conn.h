/* conn.h - one client connection: framing of its byte stream, its output, its teardown. */
#ifndef DSHM_SRV_CONN_H
#define DSHM_SRV_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "attach.h"
#include "proto.h"

struct srv_server;

/* Output a connection may have queued before we give up on it: a few hundred grants of
 * a full run. A peer that stops reading is closed, it cannot pin server memory. */
#define SRV_CONN_WMAX   (64u << 20)
#define SRV_CONN_RBASE  8192u   /* read buffer kept between frames */

enum srv_conn_state {
  SRV_CONN_HELLO,    /* waiting for HELLO */
  SRV_CONN_READY,
  SRV_CONN_CLOSING,  /* uv_close called; teardown runs in the close callback */
};

/* The peer as it introduced itself in HELLO. */
struct srv_peer {
  uint32_t pid, uid, gid;
  uint32_t ngroups;
  uint32_t groups[PROTO_MAX_GROUPS];
  char name[PROTO_MAX_NAME + 1];
};

struct srv_conn {
  uv_tcp_t tcp;              /* freed with the connection in the close callback */
  struct srv_server *srv;
  uint32_t node;
  enum srv_conn_state state;
  uint8_t *rbuf;
  size_t rlen;
  size_t rcap;
  size_t wpending;           /* bytes handed to uv_write and not yet completed */
  struct srv_peer peer;
  struct srv_atts atts;
};

/* Accepts one pending connection on the listener. Loop thread only. */
void srv_conn_accept(struct srv_server *s);

/* Encodes m and queues it. Returns 0, or -errno if the connection is closing or was just
 * closed because its output is over SRV_CONN_WMAX. Never tears down synchronously, so the
 * directory may call it in the middle of a transition. Loop thread only. */
int srv__conn_send(struct srv_conn *c, struct proto_msg *m);

/* Sends a reply without payload: status 0 for an empty success, else the error. */
int srv__conn_send_status(struct srv_conn *c, uint8_t opcode, uint32_t reqid, int err);

/* Starts closing: logs why, stops reading, uv_close. The close callback is the one teardown
 * (detach everything, leave the table, free). Idempotent. Loop thread only. */
void srv__conn_close(struct srv_conn *c, const char *why);

#endif
