/* procexit.h - watches the local processes that have SEM_UNDO adjustments at the server until
 * they really exit (an exec keeps them, as the kernel's do), then tells the server
 * (PROC_EXIT), which applies them. */
#ifndef DSHM_AGENT_PROCEXIT_H
#define DSHM_AGENT_PROCEXIT_H

#include <sys/types.h>

#include "agent.h"

/* A pidfd for pid, opened while the process is known alive (it just sent us a SEM_UNDO
 * semop), so that a reused pid can never be mistaken for it. -1 if none can be had. */
int agent_exit_pidfd(pid_t pid);

/* The process's connection is gone: watch pidfd (taken) until the process exits, then send
 * PROC_EXIT. Loop thread only. */
void agent_exit_watch(struct agent *ag, pid_t pid, int pidfd);

/* Before a SysV call is forwarded: PROC_EXIT now for every watched process that has exited,
 * so that a call made after the caller saw a process die (waitpid) sees its adjustments
 * applied, as with the kernel (exit_sem runs before the parent can reap). */
void agent_exit_reap(struct agent *ag);

/* Agent stopping: every watch ends (the server applies what is left when the connection
 * closes). */
void agent_exit_close_all(struct agent *ag);

#endif
