/* real.h - the libc functions the shim wraps, resolved once with dlsym(RTLD_NEXT). */
#ifndef DSHM_SHIM_REAL_H
#define DSHM_SHIM_REAL_H

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/types.h>
#include <stddef.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

struct shim_real {
  int (*sigaction)(int, const struct sigaction *, struct sigaction *);
  __sighandler_t (*signal)(int, __sighandler_t);
  int (*sigprocmask)(int, const sigset_t *, sigset_t *);
  int (*pthread_sigmask)(int, const sigset_t *, sigset_t *);
  __sighandler_t (*sigset)(int, __sighandler_t);
  __sighandler_t (*bsd_signal)(int, __sighandler_t);
  __sighandler_t (*sysv_signal)(int, __sighandler_t);
  int (*sighold)(int);
  pid_t (*fork)(void);
  /* The kernel's SysV calls, for keys and ids that are not networked (route.c). */
  int (*shmget)(key_t, size_t, int);
  void *(*shmat)(int, const void *, int);
  int (*shmdt)(const void *);
  int (*shmctl)(int, int, struct shmid_ds *);
  int (*semget)(key_t, int, int);
  int (*semop)(int, struct sembuf *, size_t);
  int (*semtimedop)(int, struct sembuf *, size_t, const struct timespec *);
  int (*semctl)(int, int, int, ...);
  key_t (*ftok)(const char *, int);
  /* POSIX semaphores outside networked segments (semt.c). */
  int (*sem_wait)(sem_t *);
  int (*sem_timedwait)(sem_t *, const struct timespec *);
  int (*sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
  /* Timed locks of mutexes outside networked segments (mutex.c). */
  int (*pthread_mutex_timedlock)(pthread_mutex_t *, const struct timespec *);
  int (*pthread_mutex_clocklock)(pthread_mutex_t *, clockid_t, const struct timespec *);
  /* Condition variables outside networked segments (condvar.c). */
  int (*pthread_cond_wait)(pthread_cond_t *, pthread_mutex_t *);
  int (*pthread_cond_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
  int (*pthread_cond_clockwait)(pthread_cond_t *, pthread_mutex_t *, clockid_t,
                                const struct timespec *);
  int (*pthread_cond_signal)(pthread_cond_t *);
  int (*pthread_cond_broadcast)(pthread_cond_t *);
  /* Read-write locks and barriers outside networked segments (rwlock.c, barrier.c). */
  int (*pthread_rwlock_rdlock)(pthread_rwlock_t *);
  int (*pthread_rwlock_tryrdlock)(pthread_rwlock_t *);
  int (*pthread_rwlock_timedrdlock)(pthread_rwlock_t *, const struct timespec *);
  int (*pthread_rwlock_clockrdlock)(pthread_rwlock_t *, clockid_t, const struct timespec *);
  int (*pthread_rwlock_wrlock)(pthread_rwlock_t *);
  int (*pthread_rwlock_trywrlock)(pthread_rwlock_t *);
  int (*pthread_rwlock_timedwrlock)(pthread_rwlock_t *, const struct timespec *);
  int (*pthread_rwlock_clockwrlock)(pthread_rwlock_t *, clockid_t, const struct timespec *);
  int (*pthread_rwlock_unlock)(pthread_rwlock_t *);
  int (*pthread_barrier_wait)(pthread_barrier_t *);
  /* Address-space calls that may take a view away (remap.c). */
  void *(*mmap)(void *, size_t, int, int, int, off_t);
  int (*munmap)(void *, size_t);
  void *(*mremap)(void *, size_t, size_t, int, ...);
};

/* A libc function looked up on first use (dlsym RTLD_NEXT) and kept in *slot, NULL if libc
 * has none: for wrappers the shim's own init goes through (its locks), before shim_real is
 * filled. */
void *shim_real_lazy(_Atomic(void *) *slot, const char *name);
/* Calls the pthread_mutex_* function name of libc (looked up as shim_real_lazy does) on m:
 * its result, or ENOSYS if libc has none. */
int shim_real_mutex_call(_Atomic(void *) *slot, const char *name, pthread_mutex_t *m);

int shim_init(void); /* lifecycle.h */
/* shim_real.f, resolved by the shim's init first when a call comes before it (another
 * library's constructor); NULL if libc has no such symbol. */
#define SHIM_REAL(f) (shim_real.f != NULL ? shim_real.f : (shim_init(), shim_real.f))

/* The shim's own mappings go to the kernel directly, not through its mmap/munmap wrappers
 * (remap.c), which look at the views under the cache lock the caller may hold. */
static inline void *shim_sys_mmap(void *addr, size_t len, int prot, int flags, int fd,
                                  off_t off) {
  long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
  return r == -1 ? MAP_FAILED : (void *)r;
}

static inline int shim_sys_munmap(void *addr, size_t len) {
  return (int)syscall(SYS_munmap, addr, len);
}

/* Filled by shim_real_resolve(); read-only afterwards. A NULL entry means "not found". */
extern struct shim_real shim_real;

/* Resolves every entry of the table. Called once, from the library's init (pthread_once).
 * Returns 0 or -ENOSYS if an entry is missing (the wrappers then fail with ENOSYS). */
int shim_real_resolve(void);

#endif /* DSHM_SHIM_REAL_H */
