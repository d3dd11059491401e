/* conn.h - one client connection: framing of its byte stream, its output, its teardown. */
#ifndef DSHM_SRV_CONN_H
#define DSHM_SRV_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

#include "attach.h"
#include "proto.h"
#include "rxbuf.h"

struct srv_server;
struct srv_semreq;
TAILQ_HEAD(srv_semreq_q, srv_semreq);

#define SRV_CONN_RBASE  8192u   /* read buffer kept between frames */

enum srv_conn_state {
  SRV_CONN_HELLO,    /* waiting for HELLO */
  SRV_CONN_AUTH,     /* CHALLENGE sent, waiting for AUTH (--token-file) */
  SRV_CONN_REJECTED, /* authentication failed: not read, closed once the refusal is sent */
  SRV_CONN_READY,
  SRV_CONN_CLOSING,  /* uv_close called; teardown runs in the close callback */
};

/* The peer: as it introduced itself in HELLO, or as the kernel vouches for it (kernel_ids;
 * the pid is then still the claimed one, docs/security.md "Who the server believes"). */
struct srv_peer {
  uint32_t pid, uid, gid;
  uint32_t ngroups;
  uint32_t groups[PROTO_MAX_GROUPS];
  char name[PROTO_MAX_NAME + 1];
};

struct srv_conn {
  union {                    /* freed with the connection in the close callback */
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;            /* TCP listener */
    uv_pipe_t pipe;          /* --unix listener */
  } h;
  struct srv_server *srv;
  uint32_t node;
  enum srv_conn_state state;
  struct proto_rxbuf rx;     /* framed input (proto/rxbuf.h), SRV_CONN_RBASE between frames */
  size_t wpending;           /* bytes handed to uv_write and not yet completed */
  uint64_t since_ms;         /* uv_now at accept: the HELLO deadline counts from here */
  uint64_t last_rx_ms;       /* uv_now of the last bytes read: the idle timeout */
  uint64_t rx_ns;            /* CLOCK_MONOTONIC of the last bytes read: request latency */
  int discard_output;        /* test seam (fuzzing): no socket, replies are dropped */
  char addr[80];             /* the peer for log lines: "1.2.3.4:5678", "unix pid 12 uid 3" */
  int is_unix;               /* accepted on the --unix listener */
  int kernel_ids;            /* a non-root peer on this host: uid, gid, groups from the kernel,
                                claims ignored (the claimed pid is kept) */
  int kernel_root;           /* the kernel says the peer is root: its claims are believed */
  uint32_t owner_ino;        /* loopback TCP, kernel_ids: the peer socket's inode, whose
                                owner's gid and groups are read at HELLO; 0 once read */
  uint32_t hello_reqid;      /* HELLO's reqid, for the reply after AUTH */
  uint8_t snonce[PROTO_NONCE_SIZE]; /* this connection's challenge */
  uint32_t npending;         /* page requests held by directories (--max-pending) */
  int paused;                /* not read while npending >= --max-pending */
  int draining;              /* server shutdown: not reading, closes once output is gone */
  uint8_t node_id[16];       /* the client's persistent identity (NODE), or zeros */
  uint64_t node_tag;         /* its 64-bit fold recorded in page records; 0 = none */
  struct srv_peer peer;
  struct srv_atts atts;
  struct srv_semreq_q semreqs; /* SEMOPs waiting at the server (semcalls.c) */
  uint32_t nsemreqs;
};

/* Accepts one pending connection on listener (the TCP or the Unix one). Loop thread only. */
void srv_conn_accept(struct srv_server *s, uv_stream_t *listener);

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

/* Authentication failed: sends the EACCES reply to AUTH, stops reading, and closes once
 * it is written. Loop thread only. */
void srv__conn_reject(struct srv_conn *c, uint32_t reqid, const char *why);

/* npending changed (directory hook): pauses reading at --max-pending; below it, a paused
 * connection is resumed from the loop (srv__conn_resume), not from inside the directory. */
void srv__conn_pending(struct srv_conn *c, int delta);

/* Resumes reading a paused connection that is below --max-pending, and processes what it
 * had buffered. Loop thread only, never from inside a directory transition. */
void srv__conn_resume(struct srv_conn *c);

/* Closes c if it is past the HELLO or idle deadline at now_ms (see docs/operations.md).
 * Loop thread only. */
void srv__conn_check_timeouts(struct srv_conn *c, uint64_t now_ms);

#endif
