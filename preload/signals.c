/* signals.c - owns sigaction/signal/sigprocmask/pthread_sigmask as the application sees them.
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

SHIM_EXPORT sighandler_t signal(int sig, sighandler_t handler) {
  struct sigaction act, cur;

  shim_init();
  if (shim_real.signal == NULL) {
    shim_ret(-ENOSYS);
    return SIG_ERR;
  }
  if (sig != SIGSEGV || !shim_fault_installed())
    return shim_real.signal(sig, handler);
  /* glibc's signal() has BSD semantics: SA_RESTART, handler stays installed. */
  memset(&act, 0, sizeof act);
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  pthread_mutex_lock(&app_lock);
  shim_sig_app_get(&cur);
  shim_sig_app_set(&act);
  pthread_mutex_unlock(&app_lock);
  return cur.sa_handler;
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
