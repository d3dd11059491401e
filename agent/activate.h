/* activate.h - socket activation of the agent: the listening socket systemd passes it, the
 * checks that it is the agent's, and the name the library gives an agent. */
#ifndef DSHM_AGENT_ACTIVATE_H
#define DSHM_AGENT_ACTIVATE_H

#include <stddef.h>

/* The first descriptor systemd passes (SD_LISTEN_FDS_START). */
#define AGENT_ACT_FD 3

/* The sd_listen_fds protocol, without libsystemd: when LISTEN_PID is this process and
 * LISTEN_FDS is 1, descriptor 3 (made close-on-exec); 0 when nothing was passed to this
 * process; -errno with why filled when something is wrong (more than one descriptor, a
 * malformed count, descriptor 3 not open). LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are
 * unset in every case, so that no child inherits them. Call before any descriptor is
 * opened or closed. */
int agent_act_take(char *why, size_t whylen);

/* 0 when fd is a listening AF_UNIX SOCK_SEQPACKET socket bound at path (the same string,
 * or the same file); else -errno with why filled. */
int agent_act_check(int fd, const char *path, char *why, size_t whylen);

/* The agent's name as the library derives it (the same function: proto/agentname.h) from
 * spec and the environment's DSHM_TOKEN and DSHM_TOKEN_FILE. out holds at least 128 bytes.
 * tests/unit/test_actname.c checks both give the same names. */
void agent_act_name(const char *spec, char *out, size_t cap);

/* Accepts and closes every connection waiting on fd (non-blocking): an activated agent
 * that cannot start tells the processes waiting for it at once, instead of leaving their
 * connections queued, where systemd would start the agent again and again for them. */
void agent_act_drain(int fd);

#endif
