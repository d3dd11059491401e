/* real.c - owns the table of real libc symbols behind the interposed ones (dlsym RTLD_NEXT). */
#include "real.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

struct shim_real shim_real;

/* One row per wrapped symbol: adding a wrapper means adding a row here. */
static const struct {
  const char *name;
  void **ptr;
} table[] = {
  {"sigaction", (void **)&shim_real.sigaction},
  {"signal", (void **)&shim_real.signal},
  {"sigprocmask", (void **)&shim_real.sigprocmask},
  {"pthread_sigmask", (void **)&shim_real.pthread_sigmask},
  {"sigset", (void **)&shim_real.sigset},
  {"bsd_signal", (void **)&shim_real.bsd_signal},
  {"sysv_signal", (void **)&shim_real.sysv_signal},
  {"sighold", (void **)&shim_real.sighold},
  {"fork", (void **)&shim_real.fork},
  {"shmget", (void **)&shim_real.shmget},
  {"shmat", (void **)&shim_real.shmat},
  {"shmdt", (void **)&shim_real.shmdt},
  {"shmctl", (void **)&shim_real.shmctl},
  {"semget", (void **)&shim_real.semget},
  {"semop", (void **)&shim_real.semop},
  {"semtimedop", (void **)&shim_real.semtimedop},
  {"semctl", (void **)&shim_real.semctl},
  {"sem_wait", (void **)&shim_real.sem_wait},
  {"sem_timedwait", (void **)&shim_real.sem_timedwait},
  {"sem_clockwait", (void **)&shim_real.sem_clockwait},
  {"pthread_mutex_timedlock", (void **)&shim_real.pthread_mutex_timedlock},
  {"pthread_mutex_clocklock", (void **)&shim_real.pthread_mutex_clocklock},
  {"pthread_cond_wait", (void **)&shim_real.pthread_cond_wait},
  {"pthread_cond_timedwait", (void **)&shim_real.pthread_cond_timedwait},
  {"pthread_cond_clockwait", (void **)&shim_real.pthread_cond_clockwait},
  {"pthread_cond_signal", (void **)&shim_real.pthread_cond_signal},
  {"pthread_cond_broadcast", (void **)&shim_real.pthread_cond_broadcast},
  {"pthread_rwlock_rdlock", (void **)&shim_real.pthread_rwlock_rdlock},
  {"pthread_rwlock_tryrdlock", (void **)&shim_real.pthread_rwlock_tryrdlock},
  {"pthread_rwlock_timedrdlock", (void **)&shim_real.pthread_rwlock_timedrdlock},
  {"pthread_rwlock_clockrdlock", (void **)&shim_real.pthread_rwlock_clockrdlock},
  {"pthread_rwlock_wrlock", (void **)&shim_real.pthread_rwlock_wrlock},
  {"pthread_rwlock_trywrlock", (void **)&shim_real.pthread_rwlock_trywrlock},
  {"pthread_rwlock_timedwrlock", (void **)&shim_real.pthread_rwlock_timedwrlock},
  {"pthread_rwlock_clockwrlock", (void **)&shim_real.pthread_rwlock_clockwrlock},
  {"pthread_rwlock_unlock", (void **)&shim_real.pthread_rwlock_unlock},
  {"pthread_barrier_wait", (void **)&shim_real.pthread_barrier_wait},
  {"ftok", (void **)&shim_real.ftok},
  {"mmap", (void **)&shim_real.mmap},
  {"munmap", (void **)&shim_real.munmap},
  {"mremap", (void **)&shim_real.mremap},
};

void *shim_real_lazy(_Atomic(void *) *slot, const char *name) {
  void *f = atomic_load_explicit(slot, memory_order_acquire);

  if (f == NULL) {
    f = dlsym(RTLD_NEXT, name); /* the same answer in every thread */
    atomic_store_explicit(slot, f, memory_order_release);
  }
  return f;
}

int shim_real_mutex_call(_Atomic(void *) *slot, const char *name, pthread_mutex_t *m) {
  int (*f)(pthread_mutex_t *) = (int (*)(pthread_mutex_t *))shim_real_lazy(slot, name);

  return f != NULL ? f(m) : ENOSYS;
}

int shim_real_resolve(void) {
  int rc = 0;
  size_t i;

  for (i = 0; i < sizeof table / sizeof table[0]; i++) {
    *table[i].ptr = dlsym(RTLD_NEXT, table[i].name);
    if (*table[i].ptr == NULL)
      rc = -ENOSYS;
  }
  return rc;
}
