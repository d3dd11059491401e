/* hostlimits.h - what the caller's own host says of it that the server cannot see:
 * CAP_IPC_LOCK, RLIMIT_MEMLOCK, and what SHM_HUGETLB would get from the host's huge pages. */
#ifndef DSHM_SHIM_HOSTLIMITS_H
#define DSHM_SHIM_HOSTLIMITS_H

#include <stddef.h>
#include <stdint.h>

/* 1 if CAP_IPC_LOCK is in the calling thread's effective set, as the kernel reports it. */
int shim_cap_ipc_lock(void);

/* The caller's RLIMIT_MEMLOCK soft limit in bytes, PROTO_MEMLOCK_INFINITY for
 * RLIM_INFINITY. */
uint64_t shim_memlock_limit(void);

/* For a shmget with SHM_HUGETLB in shmflg that would create a segment: the kernel's answer
 * on this host (newseg's huge page checks) where it refuses — -EINVAL for a page size the
 * host has no pool of, -EPERM without CAP_IPC_LOCK or vm.hugetlb_shm_group, -ENOMEM with
 * no huge page to reserve — and -ENOMEM where it would create the segment, which dshm
 * cannot back with huge pages; *kernel_would is then 1. 0 without SHM_HUGETLB. */
int shim_hugetlb_answer(size_t size, int shmflg, int *kernel_would);

#endif
