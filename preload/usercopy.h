/* usercopy.h - copying to and from an application buffer without trusting the pointer. */
#ifndef DSHM_SHIM_USERCOPY_H
#define DSHM_SHIM_USERCOPY_H

#include <stddef.h>

/* Like the kernel's copy_to_user / copy_from_user: the application's pointer is only ever
 * touched by the kernel (through a pipe), so an unmapped or read-only buffer gives -EFAULT
 * instead of a crash. A buffer inside a dshm attachment is copied directly, so its pages
 * fault in as usual. 0 or -errno. */
int shim_copy_to_user(void *dst, const void *src, size_t len);
int shim_copy_from_user(void *dst, const void *src, size_t len);

#endif /* DSHM_SHIM_USERCOPY_H */
