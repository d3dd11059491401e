/* remap.c - owns munmap, mremap and mmap(MAP_FIXED) over a view: the application takes the
 * memory, the attachment goes.
 *
 * The kernel detaches an attachment whose mapping is unmapped or mapped over (shm_close:
 * nattch drops, a later shmdt there is EINVAL). Under the shim the view's record would stay
 * and the shim would go on changing the protections of memory that is the application's now
 * (or the shim's own next mapping). So each of these calls, when its range touches a view,
 * first detaches the views in it (shm.c, shim_views_gone: unpublished, fault handlers
 * drained, DETACH sent), then does the real call. Arguments the kernel refuses are refused
 * before anything is detached. Not touching a view costs one lock-free look. */
/* The wrappers define mmap itself: not its redirection to mmap64 (alias below). */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>

#include "boundary.h"
#include "cache.h"
#include "detach.h"
#include "real.h"

#define PAGE_MASK_ ((uintptr_t)SHIM_PAGE - 1)

/* The page-rounded length of [p, p+len), or 0 for arguments the kernel refuses (EINVAL). */
static size_t span(const void *p, size_t len) {
  if (((uintptr_t)p & PAGE_MASK_) != 0 || len == 0 || len > SIZE_MAX - PAGE_MASK_)
    return 0;
  return (len + PAGE_MASK_) & ~PAGE_MASK_;
}

SHIM_EXPORT int munmap(void *addr, size_t len) {
  size_t n = span(addr, len);

  if (n != 0 && shim_cache_overlaps((uintptr_t)addr, n))
    shim_views_gone((uintptr_t)addr, n);
  /* Before the library's init (a sanitizer runtime maps memory first thing), straight to the
   * kernel: initializing here would read the environment before libc has it. */
  if (shim_real.munmap == NULL)
    return shim_sys_munmap(addr, len);
  return shim_real.munmap(addr, len);
}

SHIM_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  size_t n = (flags & MAP_FIXED) ? span(addr, len) : 0;

  /* Without MAP_FIXED (MAP_FIXED_NOREPLACE included) nothing mapped is replaced. */
  if (n != 0 && shim_cache_overlaps((uintptr_t)addr, n))
    shim_views_gone((uintptr_t)addr, n);
  if (shim_real.mmap == NULL)
    return shim_sys_mmap(addr, len, prot, flags, fd, off);
  return shim_real.mmap(addr, len, prot, flags, fd, off);
}

SHIM_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

SHIM_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
  void *new_addr = NULL;
  size_t n = span(old, old_len ? old_len : 1);
  va_list ap;

  if (flags & MREMAP_FIXED) {
    va_start(ap, flags);
    new_addr = va_arg(ap, void *);
    va_end(ap);
  }
  /* A view moved, grown, shrunk or copied is not one the shim can follow: it is detached
   * first (docs/compatibility.md). The target of MREMAP_FIXED is mapped over. */
  if (n != 0 && shim_cache_overlaps((uintptr_t)old, n)) {
    shim_views_gone((uintptr_t)old, n);
    /* What moves is still the host's memory, no longer kept coherent: it takes no access
     * with it (a touch is then the program's SIGSEGV, never a stale read). */
    mprotect(old, n, PROT_NONE);
  }
  if ((flags & MREMAP_FIXED) && span(new_addr, new_len) != 0 &&
      shim_cache_overlaps((uintptr_t)new_addr, span(new_addr, new_len)))
    shim_views_gone((uintptr_t)new_addr, span(new_addr, new_len));
  if (shim_real.mremap == NULL) {
    long r = syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
    return r == -1 ? MAP_FAILED : (void *)r;
  }
  return (flags & MREMAP_FIXED) ? shim_real.mremap(old, old_len, new_len, flags, new_addr)
                                : shim_real.mremap(old, old_len, new_len, flags);
}
