/* memcalls.c - owns the interposed calls that take an address range of the process's own
 * memory (mlock, mlock2, mlockall, madvise, mincore, remap_file_pages, process_vm_readv and
 * process_vm_writev) when that range touches a view.
 *
 * A view's pages stay PROT_NONE or PROT_READ until a fault raises them, and these calls do
 * not fault: natively they succeed on an attachment, on a view mlock fails with ENOMEM,
 * MADV_POPULATE_* with EINVAL, process_vm_* and a mincore vector with EFAULT, and
 * MADV_REMOVE would punch the host's copy behind the page protocol's back. So, as for the
 * I/O calls (io.c), the pages of the range that lie in views are brought to the mode the
 * call needs in every view and pinned (pin.c) while the real call runs on the whole range.
 * What the shim cannot reproduce on a view is refused with the kernel's errno. A range that
 * touches no view costs one lock-free look. docs/compatibility.md, "Address-range calls on a
 * view", says what each call does under the shim and why.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "boundary.h"
#include "cache.h"
#include "hosttab.h"
#include "kabi.h"
#include "pin.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

#define PAGE_MASK_ ((uintptr_t)SHIM_PAGE - 1)

/* The libc functions behind the wrappers, resolved once. NULL: this libc has none (the
 * wrapper then fails with ENOSYS, as the missing call would). */
static struct {
  int (*mlock)(const void *, size_t);
  int (*mlock2)(const void *, size_t, unsigned int);
  int (*mlockall)(int);
  int (*madvise)(void *, size_t, int);
  int (*mincore)(void *, size_t, unsigned char *);
  int (*remap_file_pages)(void *, size_t, int, size_t, int);
  ssize_t (*process_vm_readv)(pid_t, const struct iovec *, unsigned long, const struct iovec *,
                              unsigned long, unsigned long);
  ssize_t (*process_vm_writev)(pid_t, const struct iovec *, unsigned long,
                               const struct iovec *, unsigned long, unsigned long);
} R;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void resolve(void) {
#define SYM(name) (*(void **)&R.name = dlsym(RTLD_NEXT, #name))
  SYM(mlock); SYM(mlock2); SYM(mlockall); SYM(madvise); SYM(mincore); SYM(remap_file_pages);
  SYM(process_vm_readv); SYM(process_vm_writev);
#undef SYM
}

/* Every wrapper starts here. After the first call this is one atomic load. */
static void real_init(void) {
  pthread_once(&real_once, resolve);
}

enum op { OP_MLOCK, OP_MLOCK2, OP_MLOCKALL, OP_MADVISE, OP_MINCORE, OP_VM_READV, OP_VM_WRITEV };

/* One interposed call, as the application made it. */
struct mem_call {
  enum op op;
  void *addr;
  size_t len;
  int arg;                 /* mlock2 and mlockall flags, madvise advice */
  unsigned char *vec;      /* mincore */
  pid_t pid;               /* process_vm_* */
  const struct iovec *lvec, *rvec;
  unsigned long liovcnt, riovcnt, flags;
};

static long neg(long n) {
  return n < 0 ? -errno : n;
}

/* The real call; -errno on failure. */
static long do_real(const struct mem_call *c) {
  switch (c->op) {
  case OP_MLOCK:
    return R.mlock ? neg(R.mlock(c->addr, c->len)) : -ENOSYS;
  case OP_MLOCK2:
    return R.mlock2 ? neg(R.mlock2(c->addr, c->len, (unsigned)c->arg)) : -ENOSYS;
  case OP_MLOCKALL:
    return R.mlockall ? neg(R.mlockall(c->arg)) : -ENOSYS;
  case OP_MADVISE:
    return R.madvise ? neg(R.madvise(c->addr, c->len, c->arg)) : -ENOSYS;
  case OP_MINCORE:
    return R.mincore ? neg(R.mincore(c->addr, c->len, c->vec)) : -ENOSYS;
  case OP_VM_READV:
    return R.process_vm_readv ? neg(R.process_vm_readv(c->pid, c->lvec, c->liovcnt, c->rvec,
                                                       c->riovcnt, c->flags))
                              : -ENOSYS;
  case OP_VM_WRITEV:
    return R.process_vm_writev ? neg(R.process_vm_writev(c->pid, c->lvec, c->liovcnt, c->rvec,
                                                         c->riovcnt, c->flags))
                               : -ENOSYS;
  }
  return -ENOSYS;
}

/* madvise: the mode the advice needs on a view's pages (SHIM_PIN_*), 0 for advice that works
 * on a view as it is, or -EINVAL for advice the shim refuses on a view:
 *  - MADV_REMOVE frees the backing: the host's copy, which other processes and the agent's
 *    write-back read. Taking the pages EXCLUSIVE first makes it a write of zeros by this host;
 *  - MADV_DONTFORK: a child would miss a view that the shim's fork handling gives it;
 *  - MADV_GUARD_INSTALL: a fault on the guard looks like one on a page to raise, forever;
 *  - MADV_HWPOISON poisons the host's copy, which the agent itself reads. */
static int advice_level(int advice) {
  switch (advice) {
  case MADV_POPULATE_READ:
    return SHIM_PIN_SHARED;
  case MADV_POPULATE_WRITE:
  case MADV_REMOVE:
    return SHIM_PIN_EXCL;
  case MADV_DONTFORK:
  case MADV_GUARD_INSTALL:
  case MADV_HWPOISON:
    return -EINVAL;
  default:
    return 0;
  }
}

/* Adds the pages of an iovec array and of its buffers. The array is read outside the cache
 * lock: it may itself lie in a view (a fault raises it). */
static int add_iov(struct shim_pinset *ps, const struct iovec *iov, unsigned long n, int level) {
  int err;

  if (iov == NULL || n > IOV_MAX)
    return 0; /* the kernel refuses it (EFAULT/EINVAL) before it touches a buffer */
  err = shim_pin_add(ps, iov, n * sizeof *iov, SHIM_PIN_SHARED);
  for (unsigned long i = 0; i < n && err == 0; i++)
    err = shim_pin_add(ps, iov[i].iov_base, iov[i].iov_len, level);
  return err;
}

/* Collects the view pages the call needs, at their modes. 0, or -errno. */
static int collect(const struct mem_call *c, struct shim_pinset *ps) {
  int local, remote, err;

  switch (c->op) {
  case OP_MLOCK:
  case OP_MLOCK2:
    return shim_pin_add(ps, c->addr, c->len, SHIM_PIN_SHARED);
  case OP_MLOCKALL:
    /* Every view: the whole address space above page 0. */
    return shim_pin_add(ps, (void *)(uintptr_t)SHIM_PAGE, UINTPTR_MAX - SHIM_PAGE,
                        SHIM_PIN_SHARED);
  case OP_MADVISE:
    return shim_pin_add(ps, c->addr, c->len, advice_level(c->arg));
  case OP_MINCORE:
    /* The vector is written by the kernel; the range itself is only looked at. */
    return shim_pin_add(ps, c->vec, c->len / SHIM_PAGE + (c->len % SHIM_PAGE != 0),
                        SHIM_PIN_EXCL);
  case OP_VM_READV:
  case OP_VM_WRITEV:
    local = c->op == OP_VM_READV ? SHIM_PIN_EXCL : SHIM_PIN_SHARED;
    remote = c->op == OP_VM_READV ? SHIM_PIN_SHARED : SHIM_PIN_EXCL;
    err = add_iov(ps, c->lvec, c->liovcnt, local);
    /* The other side is this process's memory only when it names this process. */
    if (err == 0 && c->pid == getpid())
      err = add_iov(ps, c->rvec, c->riovcnt, remote);
    else if (err == 0 && c->rvec != NULL && c->riovcnt <= IOV_MAX)
      err = shim_pin_add(ps, c->rvec, c->riovcnt * sizeof *c->rvec, SHIM_PIN_SHARED);
    return err;
  }
  return 0;
}

/* After mincore succeeded: a page of a view counts as resident only while the host holds its
 * current data (its mode above INVALID, not in error). The kernel sees the host's memfd,
 * which keeps a page's last data after the host lost it to another host. */
static void not_here(const struct mem_call *c) {
  uintptr_t base = (uintptr_t)c->addr;
  size_t n = c->len / SHIM_PAGE + (c->len % SHIM_PAGE != 0);

  if (!shim_cache_overlaps(base, c->len))
    return;
  for (size_t i = 0; i < n; i++) {
    struct shim_hit hit;
    uint32_t w;
    if (!(c->vec[i] & 1) || shim_cache_lookup(base + i * SHIM_PAGE, &hit) < 0)
      continue;
    w = hit.seg->host != NULL ? atomic_load(&hit.seg->host[hit.page].word) : DSHM_HT_ERR;
    if ((w & DSHM_HT_ERR) || dshm_ht_mode(w) == PROTO_MODE_INVALID)
      c->vec[i] &= (unsigned char)~1u;
    shim_cache_release(&hit);
  }
}

/* The slow path: the call's range may touch a view. Its view pages are brought in and
 * pinned around the real call. A page that cannot be had (segment detached meanwhile, agent
 * lost, page in error) is left as it is and the kernel answers as for any inaccessible
 * mapping, except for MADV_REMOVE, which never punches pages the host does not own: it fails
 * with EFAULT instead. */
static long mem_slow(const struct mem_call *c) {
  struct shim_pinset ps;
  int pinned;
  long rc;

  shim_pin_init(&ps);
  rc = collect(c, &ps);
  if (rc < 0)
    goto out;
  pinned = shim_pin_acquire(&ps) == 0;
  if (!pinned && c->op == OP_MADVISE && c->arg == MADV_REMOVE) {
    rc = -EFAULT;
    goto out;
  }
  rc = do_real(c);
  if (rc == 0 && c->op == OP_MINCORE)
    not_here(c);
  if (pinned)
    shim_pin_release(&ps);
out:
  shim_pin_fini(&ps);
  return rc;
}

static int any_view(void) {
  return atomic_load_explicit(&shim__nviews, memory_order_relaxed) != 0;
}

/* The page-rounded length of [p, p+len) for madvise and mincore, or 0 for arguments the
 * kernel refuses (unaligned, overflowing) or does nothing with (empty). */
static size_t span(const void *p, size_t len) {
  if (((uintptr_t)p & PAGE_MASK_) != 0 || len == 0 || len > SIZE_MAX - PAGE_MASK_ ||
      (uintptr_t)p > UINTPTR_MAX - ((len + PAGE_MASK_) & ~PAGE_MASK_))
    return 0;
  return (len + PAGE_MASK_) & ~PAGE_MASK_;
}

/* mlock's range: it rounds the start down to a page. 0 as for span. */
static size_t lock_span(const void *p, size_t len) {
  uintptr_t off = (uintptr_t)p & PAGE_MASK_;

  if (len > SIZE_MAX - off)
    return 0;
  return span((const void *)((uintptr_t)p - off), len + off);
}

/* ---- the interposed calls ---------------------------------------------------------------- */

SHIM_EXPORT int mlock(const void *addr, size_t len) {
  real_init();
  if (!any_view() || lock_span(addr, len) == 0 || !shim_cache_overlaps((uintptr_t)addr, len))
    return R.mlock ? R.mlock(addr, len) : (int)shim_ret(-ENOSYS);
  struct mem_call c = {.op = OP_MLOCK, .addr = (void *)addr, .len = len};
  return (int)shim_ret(mem_slow(&c));
}

/* MLOCK_ONFAULT brings nothing in: pages are locked as their faults bring them. */
SHIM_EXPORT int mlock2(const void *addr, size_t len, unsigned int flags) {
  real_init();
  if (!any_view() || flags != 0 || lock_span(addr, len) == 0 ||
      !shim_cache_overlaps((uintptr_t)addr, len))
    return R.mlock2 ? R.mlock2(addr, len, flags) : (int)shim_ret(-ENOSYS);
  struct mem_call c = {.op = OP_MLOCK2, .addr = (void *)addr, .len = len, .arg = (int)flags};
  return (int)shim_ret(mem_slow(&c));
}

/* MCL_CURRENT makes every page mapped now resident: the views' pages come in as for mlock.
 * MCL_FUTURE and MCL_ONFAULT bring nothing in. */
SHIM_EXPORT int mlockall(int flags) {
  real_init();
  if (!any_view() || !(flags & MCL_CURRENT) || (flags & MCL_ONFAULT) ||
      (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) != 0)
    return R.mlockall ? R.mlockall(flags) : (int)shim_ret(-ENOSYS);
  struct mem_call c = {.op = OP_MLOCKALL, .arg = flags};
  return (int)shim_ret(mem_slow(&c));
}

SHIM_EXPORT int madvise(void *addr, size_t len, int advice) {
  size_t n;
  int level;

  real_init();
  if (!any_view() || (level = advice_level(advice)) == 0 || (n = span(addr, len)) == 0 ||
      !shim_cache_overlaps((uintptr_t)addr, n))
    return R.madvise ? R.madvise(addr, len, advice) : (int)shim_ret(-ENOSYS);
  if (level < 0)
    return (int)shim_ret(level);
  struct mem_call c = {.op = OP_MADVISE, .addr = addr, .len = len, .arg = advice};
  return (int)shim_ret(mem_slow(&c));
}

SHIM_EXPORT int mincore(void *addr, size_t len, unsigned char *vec) {
  real_init();
  if (!any_view() || span(addr, len) == 0 ||
      (!shim_cache_overlaps((uintptr_t)addr, len) &&
       !shim_cache_overlaps((uintptr_t)vec, len / SHIM_PAGE + (len % SHIM_PAGE != 0))))
    return R.mincore ? R.mincore(addr, len, vec) : (int)shim_ret(-ENOSYS);
  struct mem_call c = {.op = OP_MINCORE, .addr = addr, .len = len, .vec = vec};
  return (int)shim_ret(mem_slow(&c));
}

/* Refused on a view: it would show another page of the segment at an address whose page the
 * shim raises and lowers by its position in the view. */
SHIM_EXPORT int remap_file_pages(void *addr, size_t size, int prot, size_t pgoff, int flags) {
  uintptr_t start = (uintptr_t)addr & ~PAGE_MASK_;
  size_t n = size & ~PAGE_MASK_;

  real_init();
  if (any_view() && n != 0 && start <= UINTPTR_MAX - n && shim_cache_overlaps(start, n))
    return (int)shim_ret(-EINVAL);
  return R.remap_file_pages ? R.remap_file_pages(addr, size, prot, pgoff, flags)
                            : (int)shim_ret(-ENOSYS);
}

SHIM_EXPORT ssize_t process_vm_readv(pid_t pid, const struct iovec *lvec, unsigned long liovcnt,
                                     const struct iovec *rvec, unsigned long riovcnt,
                                     unsigned long flags) {
  real_init();
  if (!any_view())
    return R.process_vm_readv ? R.process_vm_readv(pid, lvec, liovcnt, rvec, riovcnt, flags)
                              : shim_ret(-ENOSYS);
  struct mem_call c = {.op = OP_VM_READV, .pid = pid, .lvec = lvec, .liovcnt = liovcnt,
                       .rvec = rvec, .riovcnt = riovcnt, .flags = flags};
  return shim_ret(mem_slow(&c));
}

SHIM_EXPORT ssize_t process_vm_writev(pid_t pid, const struct iovec *lvec,
                                      unsigned long liovcnt, const struct iovec *rvec,
                                      unsigned long riovcnt, unsigned long flags) {
  real_init();
  if (!any_view())
    return R.process_vm_writev ? R.process_vm_writev(pid, lvec, liovcnt, rvec, riovcnt, flags)
                               : shim_ret(-ENOSYS);
  struct mem_call c = {.op = OP_VM_WRITEV, .pid = pid, .lvec = lvec, .liovcnt = liovcnt,
                       .rvec = rvec, .riovcnt = riovcnt, .flags = flags};
  return shim_ret(mem_slow(&c));
}
