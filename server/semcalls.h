/* semcalls.h - the server's end of the SysV semaphore calls: SEMGET, SEMCTL, SEMOP and
 * SEM_CANCEL from a connection, PROC_EXIT from a host agent, and the semops that wait (their
 * timers, their late replies, their end when the connection goes). The semantics are the
 * table's (sems.h); this module owns only the waiting requests. */
#ifndef DSHM_SRV_SEMCALLS_H
#define DSHM_SRV_SEMCALLS_H

#include "conn.h"
#include "sems.h"

/* Handlers for srv__dispatch (same contract): reply now, or later for a SEMOP that waits. */
int srv__sem_get(struct srv_conn *c, struct proto_msg *m, const char **why);
int srv__sem_ctl(struct srv_conn *c, struct proto_msg *m, const char **why);
int srv__sem_op(struct srv_conn *c, struct proto_msg *m, const char **why);
int srv__sem_cancel(struct srv_conn *c, struct proto_msg *m, const char **why);
int srv__sem_proc_exit(struct srv_conn *c, struct proto_msg *m, const char **why);

/* The table's done callback (srv_semtab_init's done_arg is the server): a waiting SEMOP
 * finished (0, or the kernel's error: EIDRM, or EAGAIN/ERANGE/EINTR); its reply is sent. */
void srv__sem_done(void *arg, struct srv_semwait *w, int result);

/* Part of a connection's teardown: its waiting semops end unanswered, then every SEM_UNDO
 * adjustment of its processes applies (the node is gone: a host agent's processes with it).
 * Loop thread only. */
void srv__sem_conn_gone(struct srv_conn *c);

#endif
