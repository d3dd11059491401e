/* signals.c - owns sigaction, the signal() family, sighold and the masks as the application sees them.
 *
 * The shim's SIGSEGV handler stays installed; the application's SIGSEGV action is recorded
 * here and reported back as if it were installed (fault.c forwards to it). SIGSEGV and
 * SIGBUS are removed from every mask passing through, because the kernel kills a thread
 * that faults with SIGSEGV blocked, our handler notwithstanding (as the JVM does).
 */
#include "signals.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "boundary.h"
#include "fault.h"
#include "lifecycle.h"
#include "real.h"

/* Two slots and an index: the handler reads the published slot without a lock while a
 * writer fills the other one. Writers are serialized by app_lock (except SA_RESETHAND from
 * the handler itself, which races only with the application changing its own handler). */
static struct sigaction app_slot[2];
static atomic_int app_idx;
static pthread_mutex_t app_lock = PTHREAD_MUTEX_INITIALIZER;

void shim_sig_app_get(struct sigaction *out) {
  *out = app_slot[atomic_load(&app_idx)];
}

void shim_sig_app_set(const struct sigaction *act) {
  int next = !atomic_load(&app_idx);

  app_slot[next] = *act;
  atomic_store(&app_idx, next);
}

void shim_sig_strip(sigset_t *set) {
  sigdelset(set, SIGSEGV);
  sigdelset(set, SIGBUS);
}

SHIM_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact) {
  struct sigaction copy, cur;

  shim_init();
  if (shim_real.sigaction == NULL)
    return (int)shim_ret(-ENOSYS);
  if (sig == SIGSEGV && shim_fault_installed()) {
    pthread_mutex_lock(&app_lock);
    shim_sig_app_get(&cur);
    if (act != NULL) {
      copy = *act;
      shim_sig_strip(&copy.sa_mask);
      shim_sig_app_set(&copy);
    }
    pthread_mutex_unlock(&app_lock);
    if (oldact != NULL)
      *oldact = cur;
    return 0;
  }
  if (act == NULL)
    return shim_real.sigaction(sig, NULL, oldact);
  copy = *act;
  shim_sig_strip(&copy.sa_mask);
  return shim_real.sigaction(sig, &copy, oldact);
}

/* Records handler as the application's SIGSEGV action with the given flags; returns the
 * previous handler. */
static sighandler_t app_set_handler(sighandler_t handler, int flags) {
  struct sigaction act, cur;

  memset(&act, 0, sizeof act);
  act.sa_handler = handler;
  act.sa_flags = flags;
  sigemptyset(&act.sa_mask);
  pthread_mutex_lock(&app_lock);
  shim_sig_app_get(&cur);
  shim_sig_app_set(&act);
  pthread_mutex_unlock(&app_lock);
  return cur.sa_handler;
}

/* The signal() family: SIGSEGV is recorded (the shim's handler stays), the rest passes.
 * SIG_HOLD (sigset) and SIG_ERR are no handlers: SIGSEGV is never held. */
static sighandler_t any_signal(sighandler_t (*real)(int, sighandler_t), int sig,
                               sighandler_t handler, int flags) {
  shim_init();
  if (real == NULL) {
    shim_ret(-ENOSYS);
    return SIG_ERR;
  }
  if ((sig != SIGSEGV && sig != SIGBUS) || !shim_fault_installed() ||
      handler == SIG_ERR)
    return real(sig, handler);
#ifdef SIG_HOLD
  if (handler == SIG_HOLD) {
    struct sigaction cur;
    if (sig == SIGBUS)
      shim_real.sigaction(SIGBUS, NULL, &cur); /* kept, never held */
    else
      shim_sig_app_get(&cur);
    return cur.sa_handler;
  }
#endif
  if (sig == SIGBUS)
    return real(sig, handler);
  return app_set_handler(handler, flags);
}

/* glibc's signal() and bsd_signal() have BSD semantics: SA_RESTART, handler stays. */
SHIM_EXPORT sighandler_t signal(int sig, sighandler_t handler) {
  shim_init();
  return any_signal(shim_real.signal, sig, handler, SA_RESTART);
}

/* Still exported by glibc, no longer declared by <signal.h> for POSIX.1-2008. */
sighandler_t bsd_signal(int sig, sighandler_t handler);

SHIM_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler) {
  shim_init();
  return any_signal(shim_real.bsd_signal, sig, handler, SA_RESTART);
}

/* System V semantics: one-shot, not deferred. Strict ISO C programs get signal() as
 * __sysv_signal from <signal.h>, so that name is interposed too. */
SHIM_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler) {
  shim_init();
  return any_signal(shim_real.sysv_signal, sig, handler, SA_RESETHAND | SA_NODEFER);
}

SHIM_EXPORT sighandler_t __sysv_signal(int sig, sighandler_t handler) {
  return sysv_signal(sig, handler);
}

/* sigset(3): a plain handler, kept installed; SIG_HOLD would block, which is filtered. */
SHIM_EXPORT sighandler_t sigset(int sig, sighandler_t handler) {
  shim_init();
  return any_signal(shim_real.sigset, sig, handler, 0);
}

/* sighold(3) of SIGSEGV or SIGBUS would get the thread killed at its next page fault. */
SHIM_EXPORT int sighold(int sig) {
  shim_init();
  if (shim_real.sighold == NULL)
    return (int)shim_ret(-ENOSYS);
  if (sig == SIGSEGV || sig == SIGBUS)
    return 0;
  return shim_real.sighold(sig);
}

/* The filtered set for SIG_BLOCK/SIG_SETMASK; SIG_UNBLOCK and queries pass as they are. */
static const sigset_t *filter(int how, const sigset_t *set, sigset_t *copy) {
  if (set == NULL || how == SIG_UNBLOCK)
    return set;
  *copy = *set;
  shim_sig_strip(copy);
  return copy;
}

SHIM_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *oldset) {
  sigset_t copy;

  shim_init();
  if (shim_real.sigprocmask == NULL)
    return (int)shim_ret(-ENOSYS);
  return shim_real.sigprocmask(how, filter(how, set, &copy), oldset);
}

SHIM_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *oldset) {
  sigset_t copy;

  shim_init();
  if (shim_real.pthread_sigmask == NULL)
    return ENOSYS; /* pthread_sigmask reports errors by value, not errno */
  return shim_real.pthread_sigmask(how, filter(how, set, &copy), oldset);
}
