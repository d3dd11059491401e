/* keepalive.h - the bound on a dead peer of a TCP connection between a host agent and
 * dshm-server: one setting (DSHM_KEEPALIVE_MS, --keepalive-ms) made into the same socket
 * options on both ends (docs/operations.md, "Dead peers"). */
#ifndef DSHM_AUTH_KEEPALIVE_H
#define DSHM_AUTH_KEEPALIVE_H

#include <stdint.h>

/* Well below DSHM_TIMEOUT_MS's default (10 s): another host's fault on a page the lost host
 * held waits for the server to forget that host, and gives up at its DSHM_TIMEOUT_MS. */
#define DSHM_KEEPALIVE_DEFAULT_MS 5000u
/* Keepalive counts whole seconds, and a healthy peer's lost segment takes TCP at least 200
 * ms to send again: below a second a blip would look like a dead peer. */
#define DSHM_KEEPALIVE_MIN_MS 1000u
#define DSHM_KEEPALIVE_MAX_MS 3600000u

/* 1 if ms is a setting dshm_keepalive_set accepts: 0 (off), or MIN..MAX. */
int dshm_keepalive_valid(uint64_t ms);

/* Bounds how long the TCP socket fd stays open once its peer stops answering to about ms:
 * SO_KEEPALIVE with the first probe after ms/2 of silence (at least 1 s), then one every
 * ms/6 (at least 1 s), and TCP_USER_TIMEOUT ms, which ends the connection when nothing was
 * received for ms after a probe, or when data stays unacknowledged for ms. 0 turns both
 * off (the kernel's defaults: an idle connection is never checked, unacknowledged data is
 * given up after tcp_retries2, about 15 minutes). 0, -EINVAL (!dshm_keepalive_valid) or
 * -errno of setsockopt. Not for Unix sockets. */
int dshm_keepalive_set(int fd, uint32_t ms);

#endif
