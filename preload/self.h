/* self.h - this thread's id and this process's id without a system call each time: on a
 * paravirtualized guest a gettid() costs about a microsecond, and the interposed locks ask
 * for them on every call. Cached per thread and per process; a fork child starts afresh. */
#ifndef DSHM_SHIM_SELF_H
#define DSHM_SHIM_SELF_H

#include <sys/types.h>

pid_t shim_self_tid(void);
pid_t shim_self_pid(void);

/* In the child of fork(), from its atfork handler (lifecycle.c): the caches are the
 * parent's. */
void shim_self_fork_child(void);

#endif
