/* agentlink.h - the shim's way to its host agent: find it, start it when none answers. */
#ifndef DSHM_SHIM_AGENTLINK_H
#define DSHM_SHIM_AGENTLINK_H

/* A SOCK_SEQPACKET socket connected to the host agent of DSHM_AGENT_DIR and DSHM_SERVER,
 * starting the agent if none answers (one start at a time, under a lock file), or -errno
 * after one line on stderr. Blocking, bounded by DSHM_TIMEOUT_MS. */
int shim_agent_connect(void);

#endif /* DSHM_SHIM_AGENTLINK_H */
