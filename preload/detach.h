/* detach.h - views that stop being ours without a shmdt (shm.c). */
#ifndef DSHM_SHIM_DETACH_H
#define DSHM_SHIM_DETACH_H

#include <stddef.h>
#include <stdint.h>

/* [p, p+len) is about to be unmapped or mapped over by the application (munmap, mremap,
 * mmap MAP_FIXED, shmat SHM_REMAP): every view in it is detached as the kernel detaches an
 * attachment whose mapping goes (nattch drops; a later shmdt there is EINVAL), and the shim
 * never touches that memory again. A view only partly in it loses all access to the rest
 * (docs/compatibility.md). No lock held; fast when no view is there. */
void shim_views_gone(uintptr_t p, size_t len);

#endif /* DSHM_SHIM_DETACH_H */
