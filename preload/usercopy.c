/* usercopy.c - owns EFAULT detection for application buffers: the kernel copies, not us. */
#include "usercopy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"

/* Through a fresh pipe: write(src) then read(dst). Whichever side is the application's,
 * the kernel reports EFAULT for it. len is far below the pipe's capacity. */
static int pipe_copy(void *dst, const void *src, size_t len) {
  int p[2], err = 0;
  ssize_t n;

  if (pipe2(p, O_CLOEXEC) < 0)
    return -errno;
  n = write(p[1], src, len);
  if (n < 0)
    err = -errno;
  else if ((size_t)n != len)
    err = -EFAULT;
  if (err == 0) {
    n = read(p[0], dst, len);
    if (n < 0)
      err = -errno;
    else if ((size_t)n != len)
      err = -EFAULT;
  }
  close(p[0]);
  close(p[1]);
  return err;
}

/* 1 if [p, p+len) starts in a dshm view (writable ones only when want_write). */
static int in_view(const void *p, int want_write) {
  struct shim_hit hit;
  int ok;

  if (shim_cache_lookup((uintptr_t)p, &hit) < 0)
    return 0;
  ok = !want_write || !(hit.flags & SHIM_VIEW_RDONLY);
  shim_cache_release(&hit);
  return ok;
}

int shim_copy_to_user(void *dst, const void *src, size_t len) {
  int err = pipe_copy(dst, src, len);

  /* A page of an attachment that is not resident locally is PROT_NONE to the kernel. */
  if (err == -EFAULT && in_view(dst, 1)) {
    memcpy(dst, src, len);
    err = 0;
  }
  return err;
}

int shim_copy_from_user(void *dst, const void *src, size_t len) {
  int err = pipe_copy(dst, src, len);

  if (err == -EFAULT && in_view(src, 0)) {
    memcpy(dst, src, len);
    err = 0;
  }
  return err;
}
