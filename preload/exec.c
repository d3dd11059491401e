/* exec.c - owns the exec family: dirty pages go home before the image is replaced.
 *
 * exec discards every mapping, so the kernel detaches all attachments. Here the detach is
 * the server's disconnect path: the connection is close-on-exec. What must happen first is
 * the write-back of every EXCLUSIVE page, as at exit; the pages stay mapped (INVALID), so a
 * failed exec leaves a working process. A vfork or posix_spawn child shares the parent's
 * memory and session and writes back nothing: the parent keeps its pages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include "boundary.h"
#include "cache.h"
#include "coherence.h"
#include "config.h"
#include "lifecycle.h"
#include "real.h"
#include "session.h"

static void before_exec(void) {
  int saved = errno, i;

  shim_init();
  /* Agent mode: nothing to write back, the data is the host's; the agent detaches us when
   * the connection (close-on-exec) closes. */
  if (shim_cfg.agent || !shim_session_mine())
    goto out;
  for (i = 0; i < SHIM_MAX_SEGS; i++) {
    struct shim_seg *sg = &shim__segs[i];
    int live;

    pthread_mutex_lock(&shim__cache_lock);
    live = atomic_load(&sg->used) && !atomic_load(&sg->dying) && sg->nviews > 0;
    pthread_mutex_unlock(&shim__cache_lock);
    if (live && shim_coh_writeback(sg, shim_cfg.timeout_ms) == -ETIMEDOUT)
      break; /* the server does not answer: do not wait once per segment */
  }
out:
  errno = saved;
}

SHIM_EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
  before_exec();
  if (shim_real.execve == NULL)
    return (int)shim_ret(-ENOSYS);
  return shim_real.execve(path, argv, envp);
}

SHIM_EXPORT int execv(const char *path, char *const argv[]) {
  before_exec();
  if (shim_real.execv == NULL)
    return (int)shim_ret(-ENOSYS);
  return shim_real.execv(path, argv);
}

SHIM_EXPORT int execvp(const char *file, char *const argv[]) {
  before_exec();
  if (shim_real.execvp == NULL)
    return (int)shim_ret(-ENOSYS);
  return shim_real.execvp(file, argv);
}

SHIM_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
  before_exec();
  if (shim_real.execvpe == NULL)
    return (int)shim_ret(-ENOSYS);
  return shim_real.execvpe(file, argv, envp);
}

SHIM_EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
  before_exec();
  if (shim_real.fexecve == NULL)
    return (int)shim_ret(-ENOSYS);
  return shim_real.fexecve(fd, argv, envp);
}

/* The list forms are variadic: count the arguments, copy them into an array (on the stack
 * when small, as libc does) and use the vector form. envp, for execle, follows the NULL. */
#define SMALL_ARGS 64

/* Reads the n - 1 pointers after arg0 (the last is the NULL) into argv[1..]. */
static void fill_argv(const char *arg0, va_list ap, size_t n, char **argv) {
  size_t i;

  argv[0] = (char *)arg0;
  for (i = 1; i < n; i++)
    argv[i] = va_arg(ap, char *);
}

/* Pointers after arg0 up to and including the NULL. */
static size_t count_args(va_list ap) {
  size_t n = 1;

  while (va_arg(ap, char *) != NULL)
    n++;
  return n;
}

enum { VIA_EXECV, VIA_EXECVP, VIA_EXECVE };

static int exec_list(int via, const char *path, char **argv, char **envp) {
  switch (via) {
  case VIA_EXECV:  return execv(path, argv);
  case VIA_EXECVP: return execvp(path, argv);
  default:         return execve(path, argv, envp);
  }
}

#define EXEC_FROM_LIST(via, path, arg0, with_env)                                  \
  do {                                                                             \
    char *small[SMALL_ARGS], **argv = small, **envp = NULL;                        \
    va_list ap;                                                                    \
    size_t n;                                                                      \
    int rc;                                                                        \
    va_start(ap, arg0);                                                            \
    n = count_args(ap) + 1;                                                        \
    if (with_env)                                                                  \
      envp = va_arg(ap, char **);                                                  \
    va_end(ap);                                                                    \
    if (n > SMALL_ARGS && (argv = malloc(n * sizeof *argv)) == NULL)               \
      return (int)shim_ret(-ENOMEM);                                               \
    va_start(ap, arg0);                                                            \
    fill_argv(arg0, ap, n, argv);                                                  \
    va_end(ap);                                                                    \
    rc = exec_list(via, path, argv, envp);                                         \
    if (argv != small)                                                             \
      free(argv);                                                                  \
    return rc; /* errno from the vector form */                                    \
  } while (0)

SHIM_EXPORT int execl(const char *path, const char *arg0, ...) {
  EXEC_FROM_LIST(VIA_EXECV, path, arg0, 0);
}

SHIM_EXPORT int execlp(const char *file, const char *arg0, ...) {
  EXEC_FROM_LIST(VIA_EXECVP, file, arg0, 0);
}

SHIM_EXPORT int execle(const char *path, const char *arg0, ...) {
  EXEC_FROM_LIST(VIA_EXECVE, path, arg0, 1);
}
