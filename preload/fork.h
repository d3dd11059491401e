/* fork.h - the forked child as a node of its own: re-registering inherited attachments. */
#ifndef DSHM_SHIM_FORK_H
#define DSHM_SHIM_FORK_H

/* In a forked child whose own session just opened: sends ATTACH for every inherited view, so
 * the server counts the child's attachments as the kernel does at fork. A view the server
 * refuses gets SIGBUS on every fault. Application thread, no lock held. */
void shim__fork_reattach(void);

#endif /* DSHM_SHIM_FORK_H */
