/* upstream.h - the agent's one connection to dshm-server: handshake, framing, forwarded SysV
 * calls matched to their processes, the host's page requests. */
#ifndef DSHM_AGENT_UPSTREAM_H
#define DSHM_AGENT_UPSTREAM_H

#include "agent.h"

struct lproc;

/* Connects and says HELLO (and AUTH) and NODE on a blocking socket, then hands the socket to
 * the loop. 0, or -errno with a one-line reason in why (for the spawner). */
int agent_up_open(struct agent *ag, char *why, size_t whylen);
void agent_up_close(struct agent *ag);

/* Queues m (header fields set by the caller except magic/version/length). 0 or -errno. */
int agent_up_send(struct agent *ag, struct proto_msg *m);
uint32_t agent_up_reqid(struct agent *ag);

/* Forwards the SysV request m of process p (its reqid in m->h.reqid, the kernel-verified
 * credentials already in m) and relays the reply when it comes. 0 or -errno (the caller
 * answers with it). */
int agent_up_forward(struct agent *ag, struct lproc *p, struct proto_msg *m);

/* DETACH of shmid for the process pid (p if it waits for the reply, else NULL); last: the
 * host's last local attachment went (hostseg.c). 0 or -errno. */
int agent_up_detach(struct agent *ag, struct lproc *p, struct proto_msg *m, int last);

/* The host's page request: READ_DATA (mode SHARED) or ACQUIRE for pages [first, first+count). */
int agent_up_page_request(struct agent *ag, int32_t shmid, uint32_t first, uint32_t count,
                          uint32_t mode, const uint64_t *versions);

/* The resync's local revocations are all done (hostseg.c): the reconnect can finish.
 * agent_up_resync_soon does it from the loop (for callers in the middle of a step). */
void agent_up_resync_ready(struct agent *ag);
void agent_up_resync_soon(struct agent *ag);

/* While the server connection is made again, the SysV request m of p waits (agent_up_forward
 * does this itself); it is forwarded once the resync is done, or answered ENOTCONN. 0 or
 * -errno. */
int agent_up_park(struct agent *ag, struct lproc *p, struct proto_msg *m);

/* A process went away: its forwarded calls get no reply (an ATTACH that succeeds for it is
 * undone). */
void agent_up_forget_proc(struct agent *ag, uint32_t proc);

/* The process (lproc id) that waits in the SEMOP with its own reqid lreqid was interrupted:
 * the server is asked to end it (its reply, EINTR or its real result, follows). */
void agent_up_sem_cancel(struct agent *ag, uint32_t proc, uint32_t lreqid);

#endif
