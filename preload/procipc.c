/* procipc.c - owns /proc/sysvipc/shm and /proc/sysvipc/sem as a process under the shim reads
 * them: the kernel's lines, then a line for each segment or semaphore set of the server (the
 * table that networked keys go to), in the kernel's format. ipcs, and anything else that
 * lists SysV objects from /proc, then shows networked ones beside the kernel's, as DSHM_KEYS
 * routes them (docs/compatibility.md, "Listing"). Only opens for reading of exactly these two
 * paths are taken; every other open is libc's, untouched. The file is a snapshot made at
 * open (a memfd), as the kernel's seq_file is made at read. */
/* open and open64, fopen and fopen64 are both defined below: no redirection of one to the
 * other, and no fortified inline open. */
#undef _FILE_OFFSET_BITS
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include "boundary.h"
#include "kabi.h"
#include "real.h"
#include "route.h"


enum { NOT_IPC, IPC_SHM, IPC_SEM };

static int which(const char *path) {
  if (path == NULL || strncmp(path, "/proc/sysvipc/", 14) != 0)
    return NOT_IPC;
  if (strcmp(path + 14, "shm") == 0)
    return IPC_SHM;
  if (strcmp(path + 14, "sem") == 0)
    return IPC_SEM;
  return NOT_IPC;
}

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef FILE *(*fopen_fn)(const char *, const char *);
static _Atomic(void *) real_open, real_open64, real_openat, real_openat64, real_fopen,
    real_fopen64;

/* Appends what fmt makes to the memfd; 0 or -1. */
static int put(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(int fd, const char *fmt, ...) {
  char line[512];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof line)
    return -1;
  return write(fd, line, (size_t)n) == n ? 0 : -1;
}

/* The server's segments, as ipc/shm.c's sysvipc_shm_proc_show prints the kernel's (resident
 * and swapped bytes are the host's business: 0). */
static int server_shm(int fd) {
  struct shm_info info;
  int max = shmctl(0, SHM_INFO, (struct shmid_ds *)(void *)&info);

  for (int i = 0; i <= max; i++) {
    struct shmid_ds ds;
    int id = shmctl(i, SHM_STAT_ANY, &ds);
    if (id < 0)
      continue;
    if (put(fd,
            "%10d %10d  %4o %21lu %5u %5u  %5lu %5u %5u %5u %5u %10llu %10llu %10llu %21lu "
            "%21lu\n",
            ds.shm_perm.__key, id, ds.shm_perm.mode & 01777, (unsigned long)ds.shm_segsz,
            (unsigned)ds.shm_cpid, (unsigned)ds.shm_lpid, (unsigned long)ds.shm_nattch,
            (unsigned)ds.shm_perm.uid, (unsigned)ds.shm_perm.gid, (unsigned)ds.shm_perm.cuid,
            (unsigned)ds.shm_perm.cgid, (unsigned long long)ds.shm_atime,
            (unsigned long long)ds.shm_dtime, (unsigned long long)ds.shm_ctime, 0UL, 0UL) < 0)
      return -1;
  }
  return max < 0 && errno != EINVAL ? -1 : 0;
}

/* The server's semaphore sets, as ipc/sem.c's sysvipc_sem_proc_show. */
static int server_sem(int fd) {
  struct seminfo info;
  int max = semctl(0, 0, SEM_INFO, &info);

  for (int i = 0; i <= max; i++) {
    struct semid_ds ds;
    int id = semctl(i, 0, SEM_STAT_ANY, &ds);
    if (id < 0)
      continue;
    if (put(fd, "%10d %10d  %4o %10u %5u %5u %5u %5u %10llu %10llu\n", ds.sem_perm.__key, id,
            ds.sem_perm.mode & 0777, (unsigned)ds.sem_nsems, (unsigned)ds.sem_perm.uid,
            (unsigned)ds.sem_perm.gid, (unsigned)ds.sem_perm.cuid, (unsigned)ds.sem_perm.cgid,
            (unsigned long long)ds.sem_otime, (unsigned long long)ds.sem_ctime) < 0)
      return -1;
  }
  return max < 0 && errno != EINVAL ? -1 : 0;
}

/* The merged file for kind (kernel_fd: the kernel's, open; taken), as a memfd at offset 0, or
 * -1 with errno. */
static int merged(int kind, int kernel_fd, int flags) {
  char buf[8192];
  ssize_t n;
  int fd = memfd_create(kind == IPC_SHM ? "sysvipc-shm" : "sysvipc-sem",
                        (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
  int err = 0;

  if (fd < 0) {
    err = errno;
    close(kernel_fd);
    errno = err;
    return -1;
  }
  while ((n = read(kernel_fd, buf, sizeof buf)) > 0)
    if (write(fd, buf, (size_t)n) != n) {
      n = -1;
      break;
    }
  if (n < 0)
    err = errno ? errno : EIO;
  close(kernel_fd);
  if (err == 0 && shim_route_tables() && (kind == IPC_SHM ? server_shm(fd) : server_sem(fd)) < 0)
    err = errno ? errno : EIO;
  if (err == 0 && lseek(fd, 0, SEEK_SET) != 0)
    err = errno;
  if (err != 0) {
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

static int is_read_only(int flags) {
  return (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_CREAT | O_TRUNC | O_DIRECTORY));
}

/* mode: the optional third argument of open/openat, read only when flags say it is there. */
#define OPEN_MODE(flags, last, mode)                                                          \
  do {                                                                                        \
    if ((flags) & (O_CREAT | __O_TMPFILE)) {                                                  \
      va_list ap;                                                                             \
      va_start(ap, last);                                                                     \
      mode = va_arg(ap, mode_t);                                                              \
      va_end(ap);                                                                             \
    }                                                                                         \
  } while (0)

static int do_openat(_Atomic(void *) *slot, const char *name, int dirfd, const char *path,
                     int flags, mode_t mode) {
  openat_fn f = (openat_fn)shim_real_lazy(slot, name);
  int kind = which(path), kfd;

  if (f == NULL) {
    errno = ENOSYS;
    return -1;
  }
  if (kind == NOT_IPC || !is_read_only(flags))
    return f(dirfd, path, flags, mode);
  kfd = f(dirfd, path, flags | O_CLOEXEC, mode);
  return kfd < 0 ? -1 : merged(kind, kfd, flags);
}

static int do_open(_Atomic(void *) *slot, const char *name, const char *path, int flags,
                   mode_t mode) {
  open_fn f = (open_fn)shim_real_lazy(slot, name);
  int kind = which(path), kfd;

  if (f == NULL) {
    errno = ENOSYS;
    return -1;
  }
  if (kind == NOT_IPC || !is_read_only(flags))
    return f(path, flags, mode);
  kfd = f(path, flags | O_CLOEXEC, mode);
  return kfd < 0 ? -1 : merged(kind, kfd, flags);
}

SHIM_EXPORT int open(const char *path, int flags, ...) {
  mode_t mode = 0;

  OPEN_MODE(flags, flags, mode);
  return do_open(&real_open, "open", path, flags, mode);
}

SHIM_EXPORT int open64(const char *path, int flags, ...) {
  mode_t mode = 0;

  OPEN_MODE(flags, flags, mode);
  return do_open(&real_open64, "open64", path, flags, mode);
}

SHIM_EXPORT int openat(int dirfd, const char *path, int flags, ...) {
  mode_t mode = 0;

  OPEN_MODE(flags, flags, mode);
  return do_openat(&real_openat, "openat", dirfd, path, flags, mode);
}

SHIM_EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
  mode_t mode = 0;

  OPEN_MODE(flags, flags, mode);
  return do_openat(&real_openat64, "openat64", dirfd, path, flags, mode);
}

/* fopen's own open is inside libc (not through the symbol above): the paths are taken here
 * too. A mode that writes goes to libc, which refuses it as the kernel's file does. */
static FILE *do_fopen(_Atomic(void *) *slot, const char *name, const char *path,
                      const char *mode) {
  fopen_fn f = (fopen_fn)shim_real_lazy(slot, name);
  int kind = which(path), fd;
  FILE *fp;

  if (f == NULL) {
    errno = ENOSYS;
    return NULL;
  }
  if (kind == NOT_IPC || mode == NULL || mode[0] != 'r' || strchr(mode, '+') != NULL)
    return f(path, mode);
  fd = do_open(&real_open, "open", path, O_RDONLY | (strchr(mode, 'e') ? O_CLOEXEC : 0), 0);
  if (fd < 0)
    return NULL;
  fp = fdopen(fd, mode);
  if (fp == NULL) {
    int err = errno;
    close(fd);
    errno = err;
  }
  return fp;
}

SHIM_EXPORT FILE *fopen(const char *path, const char *mode) {
  return do_fopen(&real_fopen, "fopen", path, mode);
}

SHIM_EXPORT FILE *fopen64(const char *path, const char *mode) {
  return do_fopen(&real_fopen64, "fopen64", path, mode);
}
