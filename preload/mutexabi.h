/* mutexabi.h - glibc's pthread_mutex_t kinds and owner values (the ABI: nptl/pthreadP.h,
 * sysdeps/nptl/pthread.h), for the interposed locks (mutex.c, robust.c). */
#ifndef DSHM_SHIM_MUTEXABI_H
#define DSHM_SHIM_MUTEXABI_H

#include <limits.h>

#define KIND_TYPE_MASK  3   /* TIMED (normal), RECURSIVE, ERRORCHECK, ADAPTIVE */
#define KIND_RECURSIVE  1
#define KIND_ERRORCHECK 2
#define KIND_ROBUST     16
#define KIND_PI         32
#define KIND_PP         64
#define KIND_PSHARED    128

#define OWNER_INCONSISTENT   INT_MAX       /* PTHREAD_MUTEX_INCONSISTENT */
#define OWNER_NOTRECOVERABLE (INT_MAX - 1) /* PTHREAD_MUTEX_NOTRECOVERABLE */

#endif
