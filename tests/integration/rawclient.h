/* rawclient.h - a raw dshm protocol client for the integration tests: plain blocking sockets
 * (TCP to a test server or a Unix socket), whole frames in and out, every wait bounded. */
#ifndef DSHM_TEST_RAWCLIENT_H
#define DSHM_TEST_RAWCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"
#include "proto.h"

/* Connects over TCP to s (TCP_NODELAY); fails the test on error. Every read on the socket
 * is bounded (SO_RCVTIMEO, 20 s): a server that neither answers nor closes fails the test. */
int rc_connect(const struct h_server *s);

/* Connects over TCP to 127.0.0.1:port with the same options; the fd or -errno (no Check
 * calls: usable in a forked child, e.g. one that became another user). */
int rc_connect_tcp(int port);

/* Connects to a Unix socket with the same read bound; the fd or -errno (no Check calls:
 * usable in a forked child). */
int rc_connect_unix(const char *path);

/* Sends everything; 0, or -1 once the server has closed (EPIPE/ECONNRESET). */
int rc_send(int fd, const void *p, size_t n);

/* Receives exactly n bytes; 0, or -1 on EOF, error or the receive timeout. */
int rc_recv(int fd, uint8_t *p, size_t n);

/* Encodes m into buf; asserts success and returns the frame's length. */
size_t rc_encode(uint8_t *buf, size_t cap, struct proto_msg *m);

/* Encodes and sends m; 0, or -1 if it does not encode or the server has closed. Like
 * rc_connect_unix, rc_next, rc_reply and rc_wait_closed: no Check calls. */
int rc_send_msg(int fd, struct proto_msg *m);

/* Reads the next frame into m (payload pointers into a static buffer); 0, or -1 on EOF,
 * timeout or a frame that does not decode. */
int rc_next(int fd, struct proto_msg *m);

/* Reads until the reply to reqid (skipping RECALL/INVALIDATE and other replies) into m;
 * 0, or -1 if the connection ended first. */
int rc_reply(int fd, uint32_t reqid, struct proto_msg *m);

/* Waits (bounded by the receive timeout) until the server closes: 0, or -1 if it did not. */
int rc_wait_closed(int fd);

/* A zeroed message with this opcode and request id. */
struct proto_msg rc_msg(uint8_t op, uint32_t reqid);

/* VmRSS, VmHWM or another "Vm" field of pid's /proc status, in KiB; asserts it is there. */
long rc_proc_kib(pid_t pid, const char *field);

#endif
