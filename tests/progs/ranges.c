/* ranges.c - calls that take an address range (mlock family, madvise, msync, mincore,
 * process_vm_readv/writev, remap_file_pages) applied to SysV attachments; prints one
 * normalized line per observation (no ids, pids or addresses), so that a native run (the
 * kernel is the oracle) and a run under the shim compare line by line.
 *
 * Plain SysV, no dshm headers. Usage: ranges KEY STEP. A differential test runs
 *   prep    create KEY (16 pages) and fill every page with its pattern
 *   SECTION one of mlock, onfault, mlockall, populate, msync, mincore, madvise, procvm,
 *           refused: attaches KEY afresh and applies the calls to it
 *   check   what every page of KEY holds now, as another process (another host) sees it
 *   rm      IPC_RMID
 * Each page is shown as one letter: p its pattern, m the marker pattern a section wrote,
 * z zeros, x anything else. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096
#define NP 16 /* pages of KEY's segment */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#define MADV_GUARD_REMOVE  103
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif

static key_t key;

static const char *ename(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}

static void line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void line(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* "name: ok" / "name: EXXX" (errno read here, right after the call). */
static void res(const char *name, long rc) {
  if (rc < 0)
    line("%s: %s", name, ename(errno));
  else
    line("%s: ok", name);
}

/* "name: N" for a byte count, else the errno. */
static void res_n(const char *name, long rc) {
  if (rc < 0)
    line("%s: %s", name, ename(errno));
  else
    line("%s: %ld", name, rc);
}

static uint8_t pat(int pg, int off) {
  return (uint8_t)(pg * 37 + off * 11 + 1);
}

static uint8_t mark(int pg, int off) {
  return (uint8_t)(pg * 13 + off * 3 + 0x55);
}

static void fill(char *page, int pg, uint8_t (*f)(int, int)) {
  for (int off = 0; off < PG; off++)
    page[off] = (char)f(pg, off);
}

static char kind(const char *page, int pg) {
  int p = 1, m = 1, z = 1;

  for (int off = 0; off < PG; off++) {
    uint8_t b = (uint8_t)page[off];
    p &= b == pat(pg, off);
    m &= b == mark(pg, off);
    z &= b == 0;
  }
  return p ? 'p' : m ? 'm' : z ? 'z' : 'x';
}

/* One letter per page of a view of KEY. */
static void data(const char *name, const char *v) {
  char s[NP + 1];

  for (int i = 0; i < NP; i++)
    s[i] = kind(v + (size_t)i * PG, i);
  s[NP] = '\0';
  line("%s: %s", name, s);
}

/* A new attachment of KEY: a view none of this process's accesses has raised yet. */
static char *attach(int flags) {
  int id = shmget(key, 0, 0);
  char *p = id < 0 ? (void *)-1 : shmat(id, NULL, flags);

  if (p == (void *)-1) {
    fprintf(stderr, "ranges: attach: %s\n", strerror(errno));
    exit(1);
  }
  return p;
}

/* Runs fn in a forked child (another process) and waits for it. */
static void in_child(const char *name, void (*fn)(char *), char *arg) {
  pid_t pid;
  int st;

  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    fn(arg);
    fflush(stdout);
    _exit(0);
  }
  if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    line("%s: child failed", name);
}

static void child_data(char *v) {
  data("child.data", v);
}

/* mincore's answer for n pages at p, as a string of 0/1. */
static void residency(const char *name, void *p, int n, unsigned char *vec) {
  char s[65];

  if (mincore(p, (size_t)n * PG, vec) < 0) {
    line("%s: %s", name, ename(errno));
    return;
  }
  for (int i = 0; i < n && i < 64; i++)
    s[i] = (char)('0' + (vec[i] & 1));
  s[n < 64 ? n : 64] = '\0';
  line("%s: %s", name, s);
}

/* A fresh IPC_PRIVATE segment of n pages that nobody has touched, already marked for
 * removal (it goes at this process's exit). */
static char *private_seg(int n) {
  int id = shmget(IPC_PRIVATE, (size_t)n * PG, 0600);
  char *p = id < 0 ? (void *)-1 : shmat(id, NULL, 0);

  if (p == (void *)-1) {
    fprintf(stderr, "ranges: private segment: %s\n", strerror(errno));
    exit(1);
  }
  shmctl(id, IPC_RMID, NULL);
  return p;
}

/* ---- the steps --------------------------------------------------------------------------- */

static void step_prep(void) {
  int id = shmget(key, NP * PG, IPC_CREAT | IPC_EXCL | 0600);
  char *p = id < 0 ? (void *)-1 : shmat(id, NULL, 0);

  if (p == (void *)-1) {
    line("prep: %s", ename(errno));
    return;
  }
  for (int i = 0; i < NP; i++)
    fill(p + (size_t)i * PG, i, pat);
  res("prep", shmdt(p));
}

static void step_check(void) {
  char *p = attach(SHM_RDONLY);

  data("check", p);
  shmdt(p);
}

static void step_rm(void) {
  res("rm", shmctl(shmget(key, 0, 0), IPC_RMID, NULL));
}

/* mlock brings every page in (natively: makes it resident) and succeeds. */
static void sec_mlock(void) {
  char *p = attach(0), *ro = attach(SHM_RDONLY);

  res("mlock", mlock(p, NP * PG));
  data("mlock.data", p);
  /* Natively a locked range refuses both (the sanitizer build's mlock is a no-op: ok). */
  res("mlock.msync_invalidate", msync(p, NP * PG, MS_INVALIDATE));
  res("mlock.dontneed", madvise(p, PG, MADV_DONTNEED));
  res("munlock", munlock(p, NP * PG));
  res("mlock.part", mlock(p + 3 * PG + 100, 10));
  res("munlock.part", munlock(p + 3 * PG + 100, 10));
  res("mlock.ro", mlock(ro, NP * PG));
  data("mlock.ro.data", ro);
  res("munlock.ro", munlock(ro, NP * PG));
  res("mlock2", mlock2(p, NP * PG, 0));
  res("mlock2.badflags", mlock2(p, PG, 0x100));
  res("munlock2", munlock(p, NP * PG));
  fill(p + 9 * PG, 9, mark);
  in_child("mlock.child", child_data, p);
  shmdt(p);
  shmdt(ro);
}

/* MLOCK_ONFAULT locks pages as they come in: nothing to bring in first. */
static void sec_onfault(void) {
  char *p = attach(0);

  res("mlock2.onfault", mlock2(p, NP * PG, MLOCK_ONFAULT));
  data("onfault.data", p);
  fill(p + 2 * PG, 2, mark);
  res("munlock", munlock(p, NP * PG));
  shmdt(p);
}

/* mlockall: MCL_CURRENT locks what is mapped (natively every attached page becomes
 * resident); MCL_FUTURE locks later attachments too. */
static void sec_mlockall(void) {
  char *p = attach(0), *q;

  res("mlockall", mlockall(MCL_CURRENT));
  data("mlockall.data", p);
  res("munlockall", munlockall());
  res("mlockall.future", mlockall(MCL_CURRENT | MCL_FUTURE));
  q = attach(0);
  data("mlockall.future.data", q);
  fill(q + 5 * PG, 5, mark);
  res("munlockall.future", munlockall());
  res("mlockall.onfault", mlockall(MCL_CURRENT | MCL_ONFAULT));
  data("mlockall.onfault.data", p);
  res("munlockall.onfault", munlockall());
  shmdt(q);
  shmdt(p);
}

/* MADV_POPULATE_READ / _WRITE prefault an attachment; a write after POPULATE_WRITE is seen
 * by another process. */
static void sec_populate(void) {
  char *p = attach(0), *ro = attach(SHM_RDONLY), *q;

  res("populate_read", madvise(p, NP * PG, MADV_POPULATE_READ));
  data("populate_read.data", p);
  res("populate_write.ro", madvise(ro, NP * PG, MADV_POPULATE_WRITE));
  res("populate_read.ro", madvise(ro, NP * PG, MADV_POPULATE_READ));
  res("populate.unaligned", madvise(p + 1, PG, MADV_POPULATE_READ));
  res("populate.badlen", madvise(p, (size_t)-PG, MADV_POPULATE_READ));
  q = attach(0);
  res("populate_write", madvise(q, NP * PG, MADV_POPULATE_WRITE));
  for (int i = 0; i < NP / 2; i++)
    fill(q + (size_t)i * PG, i, mark);
  in_child("populate.child", child_data, p);
  data("populate.ro.data", ro);
  res("populate_write.part", madvise(q + 12 * PG, 2 * PG, MADV_POPULATE_WRITE));
  fill(q + 13 * PG, 13, mark);
  shmdt(q);
  shmdt(ro);
  shmdt(p);
}

/* msync on an attachment: nothing to write back natively; the flags are still checked. */
static void sec_msync(void) {
  char *p = attach(0);

  res("msync.sync", msync(p, NP * PG, MS_SYNC));
  res("msync.async", msync(p, NP * PG, MS_ASYNC));
  res("msync.invalidate", msync(p, NP * PG, MS_INVALIDATE));
  res("msync.both", msync(p, PG, MS_SYNC | MS_ASYNC));
  res("msync.unaligned", msync(p + 1, PG, MS_SYNC));
  data("msync.data", p);
  fill(p + 4 * PG, 4, mark);
  res("msync.after_write", msync(p + 4 * PG, PG, MS_SYNC));
  in_child("msync.child", child_data, p);
  shmdt(p);
}

/* mincore: which pages are resident. Only what both sides define alike is printed: a
 * fresh segment has none, a touched page is resident, a prefaulted range is, a removed
 * page is not. */
static void sec_mincore(void) {
  char *m = private_seg(8), *v = private_seg(1), *p = attach(0);
  unsigned char vec[64];

  residency("mincore.fresh", m, 8, vec);
  m[0] = 1;
  if (mincore(m, PG, vec) == 0)
    line("mincore.touched: page0=%d", vec[0] & 1);
  res("mincore.populate", madvise(m, 8 * PG, MADV_POPULATE_READ));
  residency("mincore.populated", m, 8, vec);
  res("mincore.remove", madvise(m + 2 * PG, PG, MADV_REMOVE));
  residency("mincore.removed", m, 8, vec);
  line("mincore.removed.value: %d", m[2 * PG]);
  res("mincore.dontneed", madvise(m, 8 * PG, MADV_DONTNEED));
  if (mincore(m, 8 * PG, vec) == 0)
    line("mincore.dontneed: page1=%d", vec[1] & 1);
  /* The vector itself in an untouched attachment: the kernel writes it. */
  residency("mincore.vec_in_segment", m, 8, (unsigned char *)v);
  res("mincore.unaligned", mincore(m + 1, PG, vec));
  /* KEY was filled by another process (another host under the shim): readable at once. */
  res("mincore.other", mincore(p, NP * PG, vec));
  shmdt(p);
}

/* madvise advice that is not a prefault. */
static void sec_madvise(void) {
  char *p = attach(0), *ro = attach(SHM_RDONLY);

  res("dontneed.fresh", madvise(p, NP * PG, MADV_DONTNEED));
  res("willneed", madvise(p, NP * PG, MADV_WILLNEED));
  data("madvise.data", p);
  res("free", madvise(p, PG, MADV_FREE));
  /* Pages only read so far: removing them is a write for everyone. */
  res("remove", madvise(p + 4 * PG, 2 * PG, MADV_REMOVE));
  data("remove.data", p);
  fill(p + PG, 1, mark);
  res("dontneed", madvise(p, NP * PG, MADV_DONTNEED));
  data("dontneed.data", p);
  res("remove.ro", madvise(ro, PG, MADV_REMOVE));
  data("remove.ro.data", ro);
  in_child("remove.child", child_data, p);
  res("cold", madvise(p, NP * PG, MADV_COLD));
  res("pageout", madvise(p, NP * PG, MADV_PAGEOUT));
  res("sequential", madvise(p, NP * PG, MADV_SEQUENTIAL));
  res("dofork", madvise(p, NP * PG, MADV_DOFORK));
  res("dontdump", madvise(p, NP * PG, MADV_DONTDUMP));
  data("madvise.after", p);
  shmdt(ro);
  shmdt(p);
}

/* process_vm_readv/writev with this process's own attachments on either side. */
static void sec_procvm(void) {
  char *p = attach(0), *ro = attach(SHM_RDONLY);
  static char a[PG], b[PG];
  struct iovec l, r;

  fill(a, 2, mark);
  l = (struct iovec){p + 2 * PG, PG};
  r = (struct iovec){a, PG};
  res_n("procvm.readv.local", process_vm_readv(getpid(), &l, 1, &r, 1, 0));
  l = (struct iovec){b, PG};
  r = (struct iovec){p + 5 * PG, PG};
  res_n("procvm.readv.remote", process_vm_readv(getpid(), &l, 1, &r, 1, 0));
  line("procvm.readv.remote.data: %c", kind(b, 5));
  l = (struct iovec){p + 3 * PG, PG};
  r = (struct iovec){b, PG};
  res_n("procvm.writev.local", process_vm_writev(getpid(), &l, 1, &r, 1, 0));
  line("procvm.writev.local.data: %c", kind(b, 3));
  fill(a, 6, mark);
  l = (struct iovec){a, PG};
  r = (struct iovec){p + 6 * PG, PG};
  res_n("procvm.writev.remote", process_vm_writev(getpid(), &l, 1, &r, 1, 0));
  r = (struct iovec){ro + 7 * PG, PG};
  res_n("procvm.writev.remote_ro", process_vm_writev(getpid(), &l, 1, &r, 1, 0));
  data("procvm.data", ro);
  shmdt(ro);
  shmdt(p);
}

/* What the shim refuses on an attachment (the kernel accepts all three: natively the guard
 * is taken away again, and page 0 then shows page 1). */
static void sec_refused(void) {
  char *p = attach(0);

  res("dontfork", madvise(p, PG, MADV_DONTFORK));
  res("guard_install", madvise(p + PG, PG, MADV_GUARD_INSTALL));
  res("guard_remove", madvise(p + PG, PG, MADV_GUARD_REMOVE));
  res("remap_file_pages", remap_file_pages(p, PG, 0, 1, 0));
  data("refused.data", p);
  shmdt(p);
}

static const struct {
  const char *name;
  void (*fn)(void);
} steps[] = {
  {"prep", step_prep},         {"check", step_check},       {"rm", step_rm},
  {"mlock", sec_mlock},        {"onfault", sec_onfault},    {"mlockall", sec_mlockall},
  {"populate", sec_populate},  {"msync", sec_msync},        {"mincore", sec_mincore},
  {"madvise", sec_madvise},    {"procvm", sec_procvm},      {"refused", sec_refused},
};

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: ranges KEY STEP\n");
    return 2;
  }
  key = (key_t)strtol(argv[1], NULL, 0);
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
    if (strcmp(argv[2], steps[i].name) == 0) {
      steps[i].fn();
      return 0;
    }
  fprintf(stderr, "ranges: unknown step %s\n", argv[2]);
  return 2;
}
