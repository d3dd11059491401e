/* self.c - owns the cached thread and process ids of self.h. */
#include "self.h"

#include <stdatomic.h>
#include <unistd.h>

static __thread pid_t tid_cache; /* 0: not asked yet in this thread */
static _Atomic pid_t pid_cache;

pid_t shim_self_tid(void) {
  if (tid_cache == 0)
    tid_cache = gettid();
  return tid_cache;
}

pid_t shim_self_pid(void) {
  pid_t p = atomic_load_explicit(&pid_cache, memory_order_relaxed);

  if (p == 0) {
    p = getpid();
    atomic_store_explicit(&pid_cache, p, memory_order_relaxed);
  }
  return p;
}

void shim_self_fork_child(void) {
  tid_cache = 0; /* the child's only thread is the one that forked */
  atomic_store_explicit(&pid_cache, 0, memory_order_relaxed);
}
