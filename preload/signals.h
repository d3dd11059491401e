/* signals.h - the application's view of SIGSEGV (its recorded handler) and mask filtering. */
#ifndef DSHM_SHIM_SIGNALS_H
#define DSHM_SHIM_SIGNALS_H

#include <signal.h>

/* Called from the SIGSEGV handler: lock-free copy of the application's recorded action. */
void shim_sig_app_get(struct sigaction *out);
/* Replaces the recorded action. From the handler only for SA_RESETHAND (lock-free). */
void shim_sig_app_set(const struct sigaction *act);
/* Removes SIGSEGV and SIGBUS: a thread that blocks them is killed on its next page fault. */
void shim_sig_strip(sigset_t *set);

#endif /* DSHM_SHIM_SIGNALS_H */
