/* hostlimits.c - owns what only the caller's host can tell the server: its capability to
 * lock memory, its RLIMIT_MEMLOCK, and its huge page pools (the server may be another
 * machine). Everything is read from the kernel with raw system calls, so that a wrapper
 * such as fakeroot cannot change the answer, as it cannot change the kernel's. */
#include "hostlimits.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proto.h"

#ifndef SHM_HUGE_SHIFT /* linux/shm.h; glibc's sys/shm.h has only SHM_HUGETLB */
#define SHM_HUGE_SHIFT 26
#endif
#ifndef SHM_HUGE_MASK
#define SHM_HUGE_MASK 0x3f
#endif
#ifndef SHM_NORESERVE
#define SHM_NORESERVE 010000
#endif
#define POOLS "/sys/kernel/mm/hugepages"

int shim_cap_ipc_lock(void) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];

  if (syscall(SYS_capget, &h, d) < 0)
    return 0;
  return (d[CAP_IPC_LOCK / 32].effective >> (CAP_IPC_LOCK % 32)) & 1;
}

uint64_t shim_memlock_limit(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
    return 0; /* as if the limit were zero: SHM_LOCK then needs CAP_IPC_LOCK */
  return rl.rlim_cur == RLIM_INFINITY ? PROTO_MEMLOCK_INFINITY : (uint64_t)rl.rlim_cur;
}

/* Reads a small file into buf (NUL-terminated). Its length, or -1. */
static ssize_t read_file(const char *path, char *buf, size_t cap) {
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  size_t n = 0;

  if (fd < 0)
    return -1;
  while (n < cap - 1) {
    ssize_t r = syscall(SYS_read, fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  syscall(SYS_close, fd);
  buf[n] = '\0';
  return (ssize_t)n;
}

/* The number in a file (a sysctl, a pool's counter); -1 if unreadable. */
static long long read_num(const char *path) {
  char buf[64], *end;
  long long v;

  if (read_file(path, buf, sizeof buf) <= 0)
    return -1;
  errno = 0;
  v = strtoll(buf, &end, 10);
  return errno != 0 || end == buf ? -1 : v;
}

/* The default huge page size in kB ("Hugepagesize:" in /proc/meminfo), 0 without huge
 * page support. */
static unsigned long default_kb(void) {
  char buf[8192], *p;

  if (read_file("/proc/meminfo", buf, sizeof buf) <= 0 ||
      (p = strstr(buf, "\nHugepagesize:")) == NULL)
    return 0;
  return strtoul(p + sizeof "\nHugepagesize:" - 1, NULL, 10);
}

/* can_do_hugetlb_shm(): CAP_IPC_LOCK, or vm.hugetlb_shm_group among the caller's fsgid and
 * supplementary groups (in_group_p). */
static int may_use_huge(void) {
  long long g = read_num("/proc/sys/vm/hugetlb_shm_group");
  long n;
  gid_t *v;
  int in = 0;

  if (shim_cap_ipc_lock())
    return 1;
  if (g < 0)
    return 0;
  if ((long long)(gid_t)syscall(SYS_setfsgid, (gid_t)-1) == g) /* -1 only reads it */
    return 1;
  n = syscall(SYS_getgroups, 0, NULL);
  v = n > 0 ? malloc((size_t)n * sizeof *v) : NULL;
  if (v != NULL && syscall(SYS_getgroups, n, v) == n)
    for (long i = 0; i < n && !in; i++)
      in = (long long)v[i] == g;
  free(v);
  return in;
}

/* hugetlb_reserve_pages() for a segment of size bytes in the pool of kb-kB pages: whether
 * the pool's free pages not yet reserved, plus what it may still overcommit, cover it. */
static int pool_covers(unsigned long kb, size_t size) {
  static const char *const names[] = {"free_hugepages", "resv_hugepages",
                                      "nr_overcommit_hugepages", "surplus_hugepages"};
  long long v[4];
  char path[128];
  unsigned long long bytes = (unsigned long long)kb * 1024, need;

  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, POOLS "/hugepages-%lukB/%s", kb, names[i]);
    if ((v[i] = read_num(path)) < 0)
      return 0;
  }
  need = size / bytes + (size % bytes != 0);
  return (long long)need <= v[0] - v[1] + (v[2] > v[3] ? v[2] - v[3] : 0);
}

int shim_hugetlb_answer(size_t size, int shmflg, int *kernel_would) {
  unsigned log = ((unsigned)shmflg >> SHM_HUGE_SHIFT) & SHM_HUGE_MASK;
  unsigned long kb;
  char path[128];

  *kernel_would = 0;
  if (!(shmflg & SHM_HUGETLB))
    return 0;
  /* hstate_sizelog(): 0 is the default size; else a pool of that page size must exist. */
  kb = log == 0 ? default_kb() : log >= 10 ? 1ul << (log - 10) : 0;
  snprintf(path, sizeof path, POOLS "/hugepages-%lukB", kb);
  if (kb == 0 || syscall(SYS_faccessat, AT_FDCWD, path, F_OK) != 0)
    return -EINVAL;
  if (!may_use_huge())
    return -EPERM;
  /* SHM_NORESERVE reserves nothing: the kernel creates it and faults later. */
  if (!(shmflg & SHM_NORESERVE) && !pool_covers(kb, size))
    return -ENOMEM;
  *kernel_would = 1;
  return -ENOMEM;
}
