/* lifecycle.c - owns the library's init (real symbols, config, handler) and fork hooks. */
#include "lifecycle.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "agentpage.h"
#include "cache.h"
#include "config.h"
#include "fault.h"
#include "real.h"
#include "self.h"
#include "route.h"
#include "session.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_err;

/* Fork: the cache lock, then the session lock (the order every path takes them in), so the
 * child starts with all consistent and owned by its only thread. */
static void atfork_prepare(void) {
  pthread_mutex_lock(&shim__cache_lock);
  shim_session_atfork_prepare();
}

static void atfork_parent(void) {
  shim_session_atfork_parent();
  pthread_mutex_unlock(&shim__cache_lock);
}

/* The child inherits the attachments (SysV semantics): the same host memory at the same
 * addresses (cache.c), no share of the parent's connection; fork.c then gives it a
 * session of its own before fork() returns. */
static void atfork_child(void) {
  shim_self_fork_child();
  shim_session_atfork_child();
  shim_cache_fork_child();
  pthread_mutex_unlock(&shim__cache_lock);
}

static void init_once(void) {
  int err;

  shim_session_set_ops(&shim_page_engine); /* the transport reports to the page engine */
  shim_config_load();
  shim_route_load();
  if (shim_real_resolve() < 0)
    shim_log("some libc symbols could not be resolved; signal wrappers may fail");
  if (sysconf(_SC_PAGESIZE) != (long)PROTO_PAGE_SIZE) {
    /* TODO(pagesize): pages larger than the protocol's would need several per fault. */
    shim_log("page size %ld is not %u: shared memory calls will fail", sysconf(_SC_PAGESIZE),
             PROTO_PAGE_SIZE);
    init_err = -ENOSYS;
    return;
  }
  err = shim_fault_install();
  if (err < 0) {
    shim_log("cannot install the SIGSEGV handler: %s", strerror(-err));
    init_err = err;
    return;
  }
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

int shim_init(void) {
  pthread_once(&once, init_once);
  return init_err;
}

__attribute__((constructor)) static void shim_ctor(void) {
  shim_init();
}

/* No exit hook: what a process wrote is in its host's memory, and the agent detaches it when
 * its connection closes (exit, _exit, a crash or SIGKILL alike), as the kernel does. */
