/* fault.c - owns the SIGSEGV handler: page faults on our views, and forwarding the others.
 *
 * Called from the SIGSEGV handler, everything in this file: no malloc, no stdio, no lock an
 * interrupted thread could hold (the library never touches an application view, so a fault
 * never interrupts the library itself), errno restored. It uses atomics, futex(2), write(2),
 * clock_gettime(2), sigaction(2), sigprocmask(2), tgkill(2) and rt_tgsigqueueinfo(2) only.
 */
#include "fault.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "agentpage.h"
#include "cache.h"
#include "coherence.h"
#include "config.h"
#include "real.h"
#include "session.h"
#include "signals.h"

static atomic_int installed;

int shim_fault_installed(void) {
  return atomic_load(&installed);
}

static void self_kill(int sig) {
  syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

/* A thread that faults while the process exits is parked until exit_group takes it:
 * the server may already have forgotten us, and a SIGBUS would turn a clean exit into a
 * crash. */
static void park(void) {
  static _Atomic uint32_t never;

  for (;;)
    shim_futex_wait(&never, 0);
}

/* The page can never be served (session lost, server refused, no answer within
 * DSHM_TIMEOUT_MS): the kernel's answer to touching a mapping that has no backing is
 * SIGBUS (BUS_ADRERR at the address), to the application's SIGBUS handler if it has one,
 * else with the default action. Queued to this thread; delivered when the handler returns. */
static void deliver_sigbus(void *addr) {
  struct sigaction cur;
  siginfo_t si;
  sigset_t set;

  if (atomic_load(&shim__exiting))
    park();
  /* As the kernel's force_sig: an ignored or blocked SIGBUS from a fault is not. */
  if (shim_real.sigaction(SIGBUS, NULL, &cur) == 0 && cur.sa_handler == SIG_IGN) {
    memset(&cur, 0, sizeof cur);
    cur.sa_handler = SIG_DFL;
    sigemptyset(&cur.sa_mask);
    shim_real.sigaction(SIGBUS, &cur, NULL);
  }
  sigemptyset(&set);
  sigaddset(&set, SIGBUS);
  shim_real.pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  memset(&si, 0, sizeof si);
  si.si_signo = SIGBUS;
  si.si_code = BUS_ADRERR;
  si.si_addr = addr;
  if (syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), SIGBUS, &si) < 0)
    self_kill(SIGBUS);
}

static long now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
  return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* FUTEX_WAIT for at most ms milliseconds. */
static void futex_wait_ms(_Atomic uint32_t *w, uint32_t val, long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

/* Whether the faulting access was a write. */
static int is_write(void *ctx, const struct shim_hit *hit) {
#if defined(__x86_64__)
  (void)hit;
  return (((ucontext_t *)ctx)->uc_mcontext.gregs[REG_ERR] & 2) != 0; /* PF_WRITE */
#else
  /* No portable error code: a fault on an INVALID page is taken as a read (a write then
   * faults again on the SHARED page), on a readable page as a write. */
  (void)ctx;
  return (atomic_load(&hit->seg->state[hit->page]) & SHIM_PG_MODE) != PROTO_MODE_INVALID;
#endif
}

/* Whether the fault was an instruction fetch (x86-64 only; elsewhere never). */
static int is_fetch(void *ctx) {
#if defined(__x86_64__)
  return (((ucontext_t *)ctx)->uc_mcontext.gregs[REG_ERR] & 0x10) != 0; /* PF_INSTR */
#else
  (void)ctx;
  return 0;
#endif
}

/* Brings the page to the needed mode, waiting at most DSHM_TIMEOUT_MS for the server.
 * 0: retry the instruction; -1: SIGBUS. */
static int page_wait(const struct shim_hit *hit, int write) {
  struct shim_seg *sg = hit->seg;
  _Atomic uint32_t *w = &sg->state[hit->page];
  uint32_t req = write ? SHIM_PG_REQ_W : SHIM_PG_REQ_R;
  long deadline = now_ms() + shim_cfg.timeout_ms, left;

  for (;;) {
    uint32_t s = atomic_load(w), mode = s & SHIM_PG_MODE, ns;

    if (atomic_load(&shim__dead))
      return -1;
    if (atomic_load(&sg->dying))
      return 0; /* detached under our feet: the retry faults as not ours */
    if (s & SHIM_PG_ERR)
      return -1;
    if (write ? mode == PROTO_MODE_EXCLUSIVE : mode != PROTO_MODE_INVALID)
      return 0;
    if (!(s & SHIM_PG_REQ)) {
      /* First to want the page: the CAS makes exactly one thread send the request. */
      ns = s | req | SHIM_PG_WAIT;
      if (!atomic_compare_exchange_strong(w, &s, ns))
        continue;
      struct shim_fault_rec r = {write ? SHIM_REC_WRITE : SHIM_REC_READ,
                                 (uint32_t)(sg - shim__segs), atomic_load(&sg->gen), hit->page};
      if (shim_session_post_fault(&r) < 0)
        return -1;
    } else if (!(s & SHIM_PG_WAIT)) {
      ns = s | SHIM_PG_WAIT;
      if (!atomic_compare_exchange_strong(w, &s, ns))
        continue;
    } else {
      ns = s;
    }
    /* Re-check after announcing WAIT: whoever sets dead/dying changes every word with WAIT
     * after setting the flag, so either we see the flag here or FUTEX_WAIT returns. */
    if (atomic_load(&shim__dead) || atomic_load(&sg->dying))
      continue;
    /* The request stays pending (its grant is installed whenever it comes); only this
     * thread stops waiting for it. */
    left = deadline - now_ms();
    if (left <= 0)
      return -1;
    futex_wait_ms(w, ns, left);
  }
}

/* Not our fault: do what the kernel would have done with the application's action. */
static void forward(int sig, siginfo_t *si, void *ctx) {
  struct sigaction app;
  sigset_t mask, old;
  int sent = si == NULL || si->si_code <= 0; /* kill(2), sigqueue(3), tgkill(2) */

  shim_sig_app_get(&app);
  if (app.sa_handler == SIG_IGN && sent)
    return; /* an ignored SIGSEGV from kill is discarded */
  if (app.sa_handler == SIG_DFL || app.sa_handler == SIG_IGN) {
    /* The kernel forces the default on a fault it cannot deliver. Returning re-executes
     * the instruction, which faults again under SIG_DFL and dumps core with the real
     * context; a signal from kill is re-raised instead. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    shim_real.sigaction(SIGSEGV, &dfl, NULL);
    atomic_store(&installed, 0);
    if (sent)
      self_kill(SIGSEGV);
    return;
  }
  if (app.sa_flags & SA_RESETHAND) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    shim_sig_app_set(&dfl);
  }
  /* The kernel would block sa_mask (and SIGSEGV unless SA_NODEFER) while the handler
   * runs. SIGSEGV/SIGBUS stay unblocked on purpose: a handler that touches a shared page
   * must be able to fault into us. */
  mask = app.sa_mask;
  shim_sig_strip(&mask);
  shim_real.pthread_sigmask(SIG_BLOCK, &mask, &old);
  if (app.sa_flags & SA_SIGINFO)
    app.sa_sigaction(sig, si, ctx);
  else
    app.sa_handler(sig);
  shim_real.pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_segv(int sig, siginfo_t *si, void *ctx) {
  int saved = errno;
  struct shim_hit hit;

  if (si != NULL && si->si_code > 0 && shim_cache_lookup((uintptr_t)si->si_addr, &hit) == 0) {
    int write = is_write(ctx, &hit);
    /* A write to a SHM_RDONLY view, or running code in a view without SHM_EXEC, is the
     * application's bug: the kernel's SIGSEGV. */
    if (!(write && (hit.flags & SHIM_VIEW_RDONLY)) &&
        !(is_fetch(ctx) && !(hit.flags & SHIM_VIEW_EXEC))) {
      int rc;
      if (hit.seg->host != NULL) {
        rc = shim_agent_fault(&hit, (uintptr_t)si->si_addr, write); /* releases hit */
      } else {
        rc = page_wait(&hit, write);
        shim_cache_release(&hit);
      }
      if (rc < 0)
        deliver_sigbus(si->si_addr);
      errno = saved;
      return;
    }
    shim_cache_release(&hit);
  }
  forward(sig, si, ctx);
  errno = saved;
}

int shim_fault_install(void) {
  struct sigaction sa, prev;

  if (shim_real.sigaction == NULL || shim_real.pthread_sigmask == NULL)
    return -ENOSYS;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  /* SA_NODEFER: a forwarded application handler may itself touch a shared page.
   * SA_ONSTACK: a stack-overflow fault still reaches the application's handler. */
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (shim_real.sigaction(SIGSEGV, &sa, &prev) < 0)
    return -errno;
  shim_sig_strip(&prev.sa_mask);
  shim_sig_app_set(&prev);
  atomic_store(&installed, 1);
  return 0;
}
