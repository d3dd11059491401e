/* conn.h - one client connection: framing of its byte stream, its output, its teardown. */
#ifndef DSHM_SRV_CONN_H
#define DSHM_SRV_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "attach.h"
#include "proto.h"

struct srv_server;

/* Default for --max-output: output a connection may have queued before we give up on it,
 * 64 grants of a full run. A peer that stops reading is closed, it cannot pin server
 * memory. */
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
  uint64_t since_ms;         /* uv_now at accept: the HELLO deadline counts from here */
  uint64_t last_rx_ms;       /* uv_now of the last bytes read: the idle timeout */
  int discard_output;        /* test seam (fuzzing): no socket, replies are dropped */
  int draining;              /* server shutdown: not reading, closes once output is gone */
  uint8_t node_id[16];       /* the client's persistent identity (NODE), or zeros */
  uint64_t node_tag;         /* its 64-bit fold recorded in page records; 0 = none */
  struct srv_peer peer;
  struct srv_atts atts;
};

/* Accepts one pending connection on the listener. Loop thread only. */
void srv_conn_accept(struct srv_server *s);

/* Encodes m and queues it. Returns 0, or -errno if the connection is closing or was just
 * closed because its output is over --max-output. Never tears down synchronously, so the
 * directory may call it in the middle of a transition. Loop thread only. */
int srv__conn_send(struct srv_conn *c, struct proto_msg *m);

/* Sends a reply without payload: status 0 for an empty success, else the error. */
int srv__conn_send_status(struct srv_conn *c, uint8_t opcode, uint32_t reqid, int err);

/* Starts closing: logs why, stops reading, uv_close. The close callback is the one teardown
 * (detach everything, leave the table, free). Idempotent. Loop thread only. */
void srv__conn_close(struct srv_conn *c, const char *why);

/* Server shutdown: stops reading (every request read so far has been dispatched) and
 * closes the connection once its queued output has been written. Loop thread only. */
void srv__conn_drain(struct srv_conn *c);

/* Test seam for the fuzzer: a registered connection with an unconnected handle, whose
 * output is discarded. NULL when the table is full or memory is short. Close it with
 * srv__conn_close and run the loop, like any connection. Loop thread only. */
struct srv_conn *srv__conn_new_detached(struct srv_server *s);

/* Hands n bytes to c as if they had been read from its socket: framing, decoding and
 * dispatch exactly as for network input. Loop thread only. */
void srv__conn_feed(struct srv_conn *c, const uint8_t *p, size_t n);

/* Closes c if it is past the HELLO or idle deadline at now_ms (see docs/operations.md).
 * Loop thread only. */
void srv__conn_check_timeouts(struct srv_conn *c, uint64_t now_ms);

#endif
