/* robust.h - robust process-shared mutexes in networked segments (robust.c): the shim's own
 * lock, with EOWNERDEAD when the owner's process or host is gone. */
#ifndef DSHM_SHIM_ROBUST_H
#define DSHM_SHIM_ROBUST_H

#include <pthread.h>
#include <time.h>

/* 1 if m is a robust process-shared mutex (not PI/PP) in a networked view: robust.c's. */
int shim_robust_ours(pthread_mutex_t *m);

/* pthread_mutex_clocklock for such a mutex: 0 or an error number (EOWNERDEAD,
 * ENOTRECOVERABLE, EDEADLK, ETIMEDOUT, EINVAL, EAGAIN); -1 if m is not robust.c's. */
int shim_robust_lock(pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime);

#endif
