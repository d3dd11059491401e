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
#include <stdint.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "agentpage.h"
#include "cache.h"
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

/* A line being formatted in a signal handler: no stdio, bounded. */
struct sline {
  char b[256];
  size_t n;
};

static void put_str(struct sline *l, const char *s) {
  while (*s != '\0' && l->n < sizeof l->b - 1)
    l->b[l->n++] = *s++;
}

static void put_num(struct sline *l, unsigned long long v, unsigned base) {
  char d[24];
  int k = 0;

  do
    d[k++] = "0123456789abcdef"[v % base];
  while ((v /= base) != 0);
  while (k > 0 && l->n < sizeof l->b - 1)
    l->b[l->n++] = d[--k];
}

/* Why a page of sg could not be served, from what the failed fault left behind. */
static const char *why_unserved(const struct shim_seg *sg, uint32_t page) {
  if (atomic_load(&shim__dead))
    return "the host agent is gone";
  if (sg->host != NULL && (atomic_load(&sg->host[page].word) & DSHM_HT_ERR))
    return "the host agent has it in error: the server lost the segment or refused the "
           "page, the agent's log says which";
  if (atomic_load(&sg->state[page]) & SHIM_PG_ERR)
    return "this process could not map it";
  return NULL; /* no answer in time */
}

/* One line on stderr, whatever DSHM_DEBUG says, the first time this process gets dshm's
 * SIGBUS: without it the program dies of a bus error nobody can explain. The segment and
 * page are looked up again (the fault released them), so they can be read safely here. */
static void explain_sigbus(void *addr) {
  static atomic_int told;
  struct shim_hit hit;
  struct sline l = {.n = 0};
  const char *why;

  if (atomic_exchange(&told, 1))
    return;
  put_str(&l, "dshm: SIGBUS at 0x");
  put_num(&l, (uintptr_t)addr, 16);
  if (shim_cache_lookup((uintptr_t)addr, &hit) == 0) {
    put_str(&l, ": segment ");
    put_num(&l, (unsigned)hit.seg->shmid, 10);
    put_str(&l, " page ");
    put_num(&l, hit.page, 10);
    why = why_unserved(hit.seg, hit.page);
    shim_cache_release(&hit);
  } else {
    why = atomic_load(&shim__dead) ? "the host agent is gone" : NULL;
  }
  put_str(&l, " could not be served (");
  if (why != NULL) {
    put_str(&l, why);
  } else {
    put_str(&l, "no answer from the host agent within DSHM_TIMEOUT_MS, ");
    put_num(&l, (unsigned)shim_cfg.timeout_ms, 10);
    put_str(&l, " ms");
  }
  put_str(&l, ")\n");
  if (l.b[l.n - 1] != '\n')
    l.b[l.n++] = '\n';
  /* The raw system call: write(2) is interposed by the shim (io.c). */
  if (syscall(SYS_write, STDERR_FILENO, l.b, l.n) < 0) {
    /* nothing sensible to do */
  }
}

/* The page can never be served (session lost, server refused, no answer within
 * DSHM_TIMEOUT_MS): the kernel's answer to touching a mapping that has no backing is
 * SIGBUS (BUS_ADRERR at the address), to the application's SIGBUS handler if it has one,
 * else with the default action. Queued to this thread; delivered when the handler returns.
 * The first time, one line on stderr says it is dshm's (explain_sigbus). */
static void deliver_sigbus(void *addr) {
  struct sigaction cur;
  siginfo_t si;
  sigset_t set;

  explain_sigbus(addr);

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
      int rc = shim_agent_fault(&hit, (uintptr_t)si->si_addr, write); /* releases hit */
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
