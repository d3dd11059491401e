/* fork.c - owns fork(): the child shares its parent's host memory, as with the kernel.
 *
 * The inherited views map the host's memfd, so the child sees the same memory with no
 * work. Inside fork (the pthread_atfork child hook, lifecycle.c) the parent's connection is
 * closed in the child. In the parent, before fork() returns, the agent learns that the
 * child inherited our attachments (INHERIT, one per segment: nattch grows at fork, as with
 * the kernel) while the child waits on a pipe; then the child connects to the agent (its
 * own slot) before fork() returns in it.
 *
 * vfork and posix_spawn are not wrapped: their child shares the parent's memory and session
 * and only execs or _exits (shim_session_mine() tells it is not the session's process).
 */

#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <unistd.h>

#include "boundary.h"
#include "cache.h"
#include "config.h"
#include "lifecycle.h"
#include "real.h"
#include "session.h"

/* In the parent right after fork: the child shares our memory already; the agent learns
 * (INHERIT, one per segment) that it inherited our attachments, and the server counts them,
 * before fork() returns here, as the kernel counts them at fork. */
static void inherit(pid_t child) {
  struct shim_view_info *vi = malloc(SHIM_MAX_VIEWS * sizeof *vi);
  struct proto_msg *m = calloc(2, sizeof *m);
  int i, k, n = 0, rc;

  if (vi == NULL || m == NULL) {
    shim_log("fork: out of memory registering the child's attachments");
    goto out;
  }
  pthread_mutex_lock(&shim__cache_lock);
  n = shim_cache_views(vi, SHIM_MAX_VIEWS);
  pthread_mutex_unlock(&shim__cache_lock);
  for (i = 0; i < n; i++) {
    uint32_t nrw = 0, nro = 0;
    for (k = 0; k < n; k++) {
      if (vi[k].shmid != vi[i].shmid)
        continue;
      if (k < i)
        break; /* counted with its first view */
      (vi[k].flags & SHIM_VIEW_RDONLY) ? nro++ : nrw++;
    }
    if (k < i)
      continue;
    memset(m, 0, 2 * sizeof *m);
    m[0].h.opcode = PROTO_OP_INHERIT;
    m[0].u.inherit.cred = (struct proto_cred){(uint32_t)getpid(), (uint32_t)geteuid(),
                                              (uint32_t)getegid()};
    m[0].u.inherit.shmid = vi[i].shmid;
    m[0].u.inherit.nrw = nrw;
    m[0].u.inherit.nro = nro;
    m[0].u.inherit.child = (uint32_t)child;
    rc = shim_session_call(&m[0], &m[1]);
    if (rc < 0)
      shim_log("fork: the agent could not register the child's attachments of segment %d: %s",
               vi[i].shmid, strerror(-rc));
  }
out:
  free(vi);
  free(m);
}

/* 1 if the process has at least one attachment. */
static int has_views(void) {
  struct shim_view_info one;
  int n;

  pthread_mutex_lock(&shim__cache_lock);
  n = shim_cache_views(&one, 1);
  pthread_mutex_unlock(&shim__cache_lock);
  return n > 0;
}

SHIM_EXPORT pid_t fork(void) {
  int gate[2] = {-1, -1}, saved;
  pid_t pid;
  char c = 0;

  shim_init();
  if (shim_real.fork == NULL)
    return (pid_t)shim_ret(-ENOSYS);
  /* The child must not run before the agent knows what it inherited (its own fork or its
   * faults would find nothing registered): it waits on this pipe until the parent's
   * INHERITs are answered. A parent that dies meanwhile closes it: EOF. */
  if (shim_session_mine() && has_views() && pipe2(gate, O_CLOEXEC) < 0)
    gate[0] = gate[1] = -1;
  pid = shim_real.fork();
  if (pid > 0 && gate[1] >= 0) {
    saved = errno;
    close(gate[0]);
    inherit(pid);
    if (syscall(SYS_write, gate[1], &c, 1) < 0) {
      /* the child is gone: nothing to release */
    }
    close(gate[1]);
    errno = saved;
  } else if (pid < 0 && gate[0] >= 0) {
    saved = errno;
    close(gate[0]);
    close(gate[1]);
    errno = saved;
  }
  if (pid != 0)
    return pid;
  if (gate[0] >= 0) {
    close(gate[1]);
    while (syscall(SYS_read, gate[0], &c, 1) < 0 && errno == EINTR)
      ;
    close(gate[0]);
  }
  /* The child, single-threaded. A child without attachments connects lazily at its first
   * shm call, like any process. */
  saved = errno;
  if (shim_session_forked() && has_views())
    (void)shim_session_ensure(); /* a failure was logged; the pages then fault with SIGBUS */
  errno = saved;
  return 0;
}
