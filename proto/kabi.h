/* kabi.h - Linux constants that older C library headers lack, with the kernel's values. A
 * call that passes one to an older kernel fails with EINVAL, which every caller treats as
 * "not available" (the optimisation it stood for is skipped; futex_waitv's ENOSYS: see its
 * caller). Pure definitions. */
#ifndef DSHM_PROTO_KABI_H
#define DSHM_PROTO_KABI_H

#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15        /* Linux 4.17 */
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20        /* Linux 4.17 */
#endif
/* Every id dshm-server hands out has this bit (server/ipcperm.h); kernel ids never reach it
 * (preload/route.h, SHIM_ID_TAG, is the same bit). */
#define DSHM_ID_TAG 0x40000000

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  /* Linux 5.14 */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* futex_waitv (Linux 5.16): one sleep on several futexes. Our own copy of the struct, so
 * that older headers build; the layout is the kernel's. An older kernel says ENOSYS. */
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#define DSHM_FUTEX2_SIZE_U32 0x02u
#define DSHM_FUTEX2_PRIVATE  128u
struct dshm_futex_waitv {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};

#endif /* DSHM_PROTO_KABI_H */
