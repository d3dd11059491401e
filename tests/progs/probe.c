/* probe.c - the differential probe: exercises SysV shared memory case by case and prints
 * one normalized line per observation (no raw ids, pids, times or addresses), so that a
 * native run (the kernel is the oracle) and a run under the shim compare line by line.
 *
 * Plain SysV, no dshm headers. Usage: probe KEY (runs everything, KEY a unique base key);
 * the probe re-executes itself ("probe -c CASE ...") for cases that need a fresh process:
 * an expected SIGSEGV, a drop to an unprivileged uid, an id handed over in argv. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#ifndef SHM_HUGE_SHIFT /* linux/shm.h; glibc's sys/shm.h has only SHM_HUGETLB */
#define SHM_HUGE_SHIFT 26
#define SHM_HUGE_2MB (21 << SHM_HUGE_SHIFT)
#define SHM_HUGE_1GB (30 << SHM_HUGE_SHIFT)
#endif
#define PG 4096
#define NOBODY 65534
#define NOGROUP 4000   /* the unprivileged child's gid */
#define SUPPGRP 5000   /* ... and its supplementary group */

static int base_key;
static const char *self_exe = "/proc/self/exe";

static const char *ename(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}

/* "name: ok" / "name: ok VALUE" / "name: EXXX". */
static void res(const char *name, long rc) {
  if (rc < 0)
    printf("%s: %s\n", name, ename(errno));
  else
    printf("%s: ok\n", name);
  fflush(stdout);
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

static void *at(int id, const void *addr, int flg) {
  return shmat(id, addr, flg);
}

static void res_at(const char *name, void *p) {
  if (p == (void *)-1)
    line("%s: %s", name, ename(errno));
  else
    line("%s: ok", name);
}

static int stat_of(int id, struct shmid_ds *ds) {
  memset(ds, 0, sizeof *ds);
  return shmctl(id, IPC_STAT, ds);
}

/* The normalized IPC_STAT of a segment: ids and times as relations to what we know. */
static void show_ds(const char *name, int id, time_t t0) {
  struct shmid_ds ds;

  if (stat_of(id, &ds) < 0) {
    line("%s: %s", name, ename(errno));
    return;
  }
  line("%s: key=%s segsz=%zu mode=%04o uid=%s gid=%s cuid=%s cgid=%s nattch=%lu "
       "cpid=%s lpid=%s atime=%s dtime=%s ctime=%s seq=%s",
       name, ds.shm_perm.__key == 0 ? "0" : (ds.shm_perm.__key >= base_key ? "mine" : "other"),
       (size_t)ds.shm_segsz, (unsigned)ds.shm_perm.mode,
       ds.shm_perm.uid == geteuid() ? "self" : (ds.shm_perm.uid == NOBODY ? "nobody" : "other"),
       ds.shm_perm.gid == getegid() ? "self" : (ds.shm_perm.gid == SUPPGRP ? "supp" : "other"),
       ds.shm_perm.cuid == geteuid() ? "self" : "other",
       ds.shm_perm.cgid == getegid() ? "self" : "other", (unsigned long)ds.shm_nattch,
       ds.shm_cpid == getpid() ? "self" : (ds.shm_cpid == 0 ? "0" : "other"),
       ds.shm_lpid == getpid() ? "self" : (ds.shm_lpid == 0 ? "0" : "other"),
       ds.shm_atime == 0 ? "0" : (ds.shm_atime >= t0 && ds.shm_atime <= time(NULL) + 1 ? "now" : "bad"),
       ds.shm_dtime == 0 ? "0" : (ds.shm_dtime >= t0 && ds.shm_dtime <= time(NULL) + 1 ? "now" : "bad"),
       ds.shm_ctime == 0 ? "0" : (ds.shm_ctime >= t0 && ds.shm_ctime <= time(NULL) + 1 ? "now" : "bad"),
       (ds.shm_perm.__seq & 0xffff) == (((unsigned)id >> 15) & 0xffff) ? "id" : "bad");
}

/* A free, aligned address range of n pages (reserved then released). */
static char *free_range(size_t n) {
  char *p = mmap(NULL, n * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  munmap(p, n * PG);
  return p;
}

/* How many of the n pages at p are mapped (msync fails with ENOMEM on a hole). */
static int mapped_pages(char *p, size_t n) {
  int k = 0;
  for (size_t i = 0; i < n; i++)
    k += msync(p + i * PG, PG, MS_ASYNC) == 0;
  return k;
}

/* Runs "probe -c CASE args..." and prints how it ended. */
static void child(const char *name, char *const args[]) {
  char *argv[16];
  int n = 0, st;
  pid_t pid;

  argv[n++] = (char *)"probe";
  argv[n++] = (char *)"-c";
  for (int i = 0; args[i] != NULL && n < 15; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    execv(self_exe, argv);
    _exit(127);
  }
  if (pid < 0 || waitpid(pid, &st, 0) < 0) {
    line("%s: fork/wait failed", name);
    return;
  }
  if (WIFSIGNALED(st))
    line("%s: killed by %s", name, sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
  else
    line("%s: exit %d", name, WEXITSTATUS(st));
}

static char *num(char *buf, long v) {
  sprintf(buf, "%ld", v);
  return buf;
}

/* ---- cases ---- */

static void case_shmget(time_t t0) {
  int k = base_key, id, id2;
  char *p;

  id = shmget(IPC_PRIVATE, 5000, 0640);
  res("get.private", id);
  show_ds("get.private.ds", id, t0);
  p = at(id, NULL, 0);
  res_at("get.private.at", p);
  if (p != (void *)-1) {
    int nz = 0;
    for (int i = 0; i < 2 * PG; i++)
      nz += p[i] != 0;
    line("get.zero-filled: %s", nz == 0 ? "yes" : "no");
    shmdt(p);
  }
  shmctl(id, IPC_RMID, NULL);

  id = shmget(k, 3 * PG, IPC_CREAT | 0600);
  res("get.create", id);
  id2 = shmget(k, 3 * PG, IPC_CREAT | 0600);
  line("get.create-again: %s", id2 == id ? "same" : "different");
  res("get.excl", shmget(k, 3 * PG, IPC_CREAT | IPC_EXCL | 0600));
  res("get.excl-bigger", shmget(k, 100 * PG, IPC_CREAT | IPC_EXCL | 0600));
  id2 = shmget(k, 0, 0);
  line("get.existing-size0: %s", id2 == id ? "same" : ename(errno));
  id2 = shmget(k, PG, 0);
  line("get.existing-smaller: %s", id2 == id ? "same" : ename(errno));
  res("get.existing-bigger", shmget(k, 3 * PG + 1, 0));
  res("get.existing-bigger-creat", shmget(k, 3 * PG + 1, IPC_CREAT | 0600));
  res("get.missing", shmget(k + 1, PG, 0600));
  res("get.size0", shmget(IPC_PRIVATE, 0, 0600));
  res("get.size0-key", shmget(k + 1, 0, IPC_CREAT | 0600));
  res("get.size-max", shmget(IPC_PRIVATE, SIZE_MAX, 0600));
  res("get.size-max-key", shmget(k + 1, SIZE_MAX, IPC_CREAT | 0600));
  res("get.missing-after", shmget(k + 1, PG, 0600));
  id2 = shmget(IPC_PRIVATE, 1, 0600);
  show_ds("get.size1.ds", id2, t0);
  shmctl(id2, IPC_RMID, NULL);
  shmctl(id, IPC_RMID, NULL);
  res("get.after-rmid", shmget(k, PG, 0600));
}

static void case_shmat(time_t t0) {
  int id = shmget(IPC_PRIVATE, 2 * PG + 100, 0600), id2;
  char *p, *q, *want;
  char buf[32];

  res_at("at.bad-id", at(-1, NULL, 0));
  res_at("at.bad-id2", at(id + 1, NULL, 0));
  p = at(id, NULL, 0);
  res_at("at.null", p);
  show_ds("at.null.ds", id, t0);

  /* Given address: exactly there. */
  want = free_range(3);
  q = at(id, want, 0);
  line("at.given: %s", q == want ? "exact" : (q == (void *)-1 ? ename(errno) : "elsewhere"));
  /* Both views of one segment in one process are coherent. */
  if (q == want && p != (void *)-1) {
    p[10] = 42;
    q[PG + 7] = 43;
    line("at.twice-coherent: %d %d", q[10], p[PG + 7]);
    /* Bytes past shm_segsz inside the last page are usable. */
    p[2 * PG + 200] = 7;
    line("at.tail-of-last-page: %d", q[2 * PG + 200]);
  }
  /* Occupied range: EINVAL without SHM_REMAP, replaced with it. */
  {
    char *busy = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    busy[0] = 9;
    res_at("at.occupied", at(id, busy, 0));
    line("at.occupied-untouched: %d", busy[0]);
    q = at(id, busy, SHM_REMAP);
    line("at.remap: %s", q == busy ? "exact" : (q == (void *)-1 ? ename(errno) : "elsewhere"));
    if (q == busy)
      line("at.remap-sees-segment: %d", q[10]);
    if (q == busy)
      shmdt(q);
    munmap(busy, 3 * PG);
  }
  want = free_range(3);
  res_at("at.unaligned", at(id, want + 10, 0));
  q = at(id, want + 10, SHM_RND);
  line("at.rnd: %s", q == want ? "rounded" : (q == (void *)-1 ? ename(errno) : "elsewhere"));
  if (q != (void *)-1)
    shmdt(q);
  res_at("at.remap-null", at(id, NULL, SHM_REMAP));
  res_at("at.remap-null-bad-id", at(-1, NULL, SHM_REMAP));
  res_at("at.unaligned-bad-id", at(-1, want + 10, 0));
  res_at("at.rnd-low-remap", at(id, (void *)10, SHM_RND | SHM_REMAP));

  /* SHM_RDONLY reads; SHM_EXEC runs code. */
  q = at(id, NULL, SHM_RDONLY);
  res_at("at.rdonly", q);
  if (q != (void *)-1) {
    line("at.rdonly-read: %d", q[10]);
    shmdt(q);
  }
  q = at(id, NULL, SHM_EXEC);
  res_at("at.exec", q);
  if (q != (void *)-1) {
    q[3 * 0 + PG] = (char)0xc3; /* ret */
    ((void (*)(void))(q + PG))();
    line("at.exec-ran: yes");
    shmdt(q);
  }
  show_ds("at.before-children.ds", id, t0);
  child("at.rdonly-write", (char *[]){"rdonly-write", num(buf, id), NULL});
  child("at.noexec-run", (char *[]){"noexec-run", num(buf, id), NULL});
  child("at.past-last-page", (char *[]){"past-end", num(buf, id), NULL});
  child("at.id-from-argv", (char *[]){"argv-id", num(buf, id), NULL});

  /* Attach after IPC_RMID while attached elsewhere: Linux allows it. */
  shmctl(id, IPC_RMID, NULL);
  show_ds("at.after-rmid.ds", id, t0);
  q = at(id, NULL, 0);
  res_at("at.after-rmid", q);
  if (q != (void *)-1) {
    line("at.after-rmid-data: %d", q[10]);
    shmdt(q);
  }
  shmdt(p);
  res_at("at.after-last-detach", at(id, NULL, 0));

  id2 = shmget(IPC_PRIVATE, PG, 0600);
  show_ds("at.fresh.ds", id2, t0);
  shmctl(id2, IPC_RMID, NULL);
}

static void case_shmdt(time_t t0) {
  int id = shmget(IPC_PRIVATE, 4 * PG, 0600);
  char *p = at(id, NULL, 0), *q;

  res("dt.null", shmdt(NULL));
  res("dt.middle", shmdt(p + PG));
  res("dt.unaligned", shmdt(p + 1));
  res("dt.stack", shmdt(&id));
  q = at(id, NULL, 0);
  show_ds("dt.two.ds", id, t0);
  res("dt.start", shmdt(q));
  show_ds("dt.one.ds", id, t0);
  res("dt.again", shmdt(q));
  /* The application splits the attachment with mprotect: shmdt still unmaps it all. */
  p[0] = 1;
  p[3 * PG] = 2;
  line("dt.mprotect: %s", mprotect(p + PG, PG, PROT_READ) == 0 ? "ok" : ename(errno));
  line("dt.mprotect2: %s", mprotect(p + 2 * PG, PG, PROT_NONE) == 0 ? "ok" : ename(errno));
  res("dt.split", shmdt(p));
  line("dt.split-mapped-pages: %d", mapped_pages(p, 4));
  show_ds("dt.none.ds", id, t0);
  shmctl(id, IPC_RMID, NULL);
}

static long read_proc(const char *name) {
  char path[64];
  unsigned long long v = 0;
  FILE *f;

  snprintf(path, sizeof path, "/proc/sys/kernel/%s", name);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  if (fscanf(f, "%llu", &v) != 1)
    v = 0;
  fclose(f);
  return (long)v;
}

static void case_shmctl(time_t t0) {
  int id = shmget(base_key + 2, 3 * PG, IPC_CREAT | 0640), idx = id % 32768, r;
  struct shmid_ds ds;
  struct shminfo si;
  struct shm_info sinfo;
  void *ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

  show_ds("ctl.stat", id, t0);
  /* IPC_SET: uid, gid, mode; ctime moves; (uid_t)-1 is EINVAL. */
  stat_of(id, &ds);
  ds.shm_perm.mode = 0604 | 01000 | 02000;
  ds.shm_perm.gid = SUPPGRP;
  res("ctl.set", shmctl(id, IPC_SET, &ds));
  show_ds("ctl.set.ds", id, t0);
  ds.shm_perm.uid = (uid_t)-1;
  res("ctl.set-uid-1", shmctl(id, IPC_SET, &ds));
  stat_of(id, &ds);
  ds.shm_perm.gid = (gid_t)-1;
  res("ctl.set-gid-1", shmctl(id, IPC_SET, &ds));

  /* EFAULT, in the kernel's order. */
  res("ctl.stat-null", shmctl(id, IPC_STAT, NULL));
  res("ctl.stat-bad-ptr", shmctl(id, IPC_STAT, (struct shmid_ds *)8));
  res("ctl.stat-ro-buf", shmctl(id, IPC_STAT, ro));
  res("ctl.stat-null-bad-id", shmctl(id + 1, IPC_STAT, NULL));
  res("ctl.set-null", shmctl(id, IPC_SET, NULL));
  res("ctl.set-null-bad-id", shmctl(id + 1, IPC_SET, NULL));
  res("ctl.set-ro-buf", shmctl(id + 1, IPC_SET, ro) < 0 && errno == EINVAL ? 0 : -1);
  res("ctl.info-null", shmctl(0, IPC_INFO, NULL));
  res("ctl.shminfo-null", shmctl(0, SHM_INFO, NULL));
  res("ctl.shmstat-null", shmctl(idx, SHM_STAT, NULL));
  res("ctl.rmid-null", shmctl(id + 1, IPC_RMID, NULL));

  /* Unknown commands and negative arguments. */
  res("ctl.cmd-99", shmctl(id, 99, &ds));
  res("ctl.cmd-4", shmctl(id, 4, &ds));
  res("ctl.cmd-neg", shmctl(id, -1, &ds));
  res("ctl.id-neg", shmctl(-1, IPC_STAT, &ds));
  res("ctl.id-neg-info", shmctl(-1, IPC_INFO, (struct shmid_ds *)&si));
  res("ctl.bad-id", shmctl(id + 1, IPC_STAT, &ds));

  /* IPC_INFO: the limits, and the highest index in use. */
  memset(&si, 0xff, sizeof si);
  r = shmctl(0, IPC_INFO, (struct shmid_ds *)&si);
  line("ctl.ipc-info: ret>=idx=%d shmmax=%s shmmin=%lu shmmni=%s shmseg=%s shmall=%s",
       r >= idx, (long)si.shmmax == read_proc("shmmax") ? "proc" : "other",
       (unsigned long)si.shmmin, (long)si.shmmni == read_proc("shmmni") ? "proc" : "other",
       si.shmseg == si.shmmni ? "shmmni" : "other",
       (long)si.shmall == read_proc("shmall") ? "proc" : "other");
  memset(&sinfo, 0xff, sizeof sinfo);
  r = shmctl(0, SHM_INFO, (struct shmid_ds *)&sinfo);
  line("ctl.shm-info: ret>=idx=%d used_ids>=1=%d shm_tot>=3=%d swp=%lu", r >= idx,
       sinfo.used_ids >= 1, sinfo.shm_tot >= 3, (unsigned long)sinfo.shm_swp);

  /* SHM_STAT / SHM_STAT_ANY take an index and return the id. */
  r = shmctl(idx, SHM_STAT, &ds);
  line("ctl.shm-stat: %s", r == id ? "id" : (r < 0 ? ename(errno) : "other"));
  show_ds("ctl.shm-stat.ds", id, t0);
  r = shmctl(idx, SHM_STAT_ANY, &ds);
  line("ctl.shm-stat-any: %s", r == id ? "id" : (r < 0 ? ename(errno) : "other"));
  res("ctl.shm-stat-free", shmctl(32000, SHM_STAT, &ds));
  res("ctl.shm-stat-any-free", shmctl(32000, SHM_STAT_ANY, &ds));

  /* SHM_LOCK / SHM_UNLOCK: the SHM_LOCKED bit. */
  res("ctl.lock", shmctl(id, SHM_LOCK, NULL));
  show_ds("ctl.lock.ds", id, t0);
  res("ctl.lock-again", shmctl(id, SHM_LOCK, NULL));
  res("ctl.unlock", shmctl(id, SHM_UNLOCK, NULL));
  show_ds("ctl.unlock.ds", id, t0);
  res("ctl.unlock-again", shmctl(id, SHM_UNLOCK, NULL));
  res("ctl.lock-bad-id", shmctl(id + 1, SHM_LOCK, NULL));

  /* IPC_RMID: SHM_DEST, key 0, gone at the last detach. */
  {
    char *p = at(id, NULL, 0);
    res("ctl.rmid", shmctl(id, IPC_RMID, NULL));
    show_ds("ctl.rmid.ds", id, t0);
    res("ctl.rmid-again", shmctl(id, IPC_RMID, NULL));
    res("ctl.key-free", shmget(base_key + 2, PG, 0600));
    shmdt(p);
    res("ctl.gone", shmctl(id, IPC_STAT, &ds));
  }
  munmap(ro, PG);
}

/* Root creates segments with various modes and owners; an unprivileged child probes them. */
static void case_perms(time_t t0) {
  static const unsigned modes[] = {0600, 0640, 0604, 0660, 0606, 0060, 0006, 0400, 0040, 0004,
                                   0000, 0666};
  char buf[16][16];
  char *args[20];
  int ids[12], n = 0;
  struct shmid_ds ds;

  (void)t0;
  args[n++] = (char *)"unpriv";
  for (int i = 0; i < 12; i++) {
    ids[i] = shmget(base_key + 10 + i, PG, IPC_CREAT | 0600);
    stat_of(ids[i], &ds);
    ds.shm_perm.mode = modes[i];
    ds.shm_perm.gid = SUPPGRP;
    shmctl(ids[i], IPC_SET, &ds);
  }
  /* Segment 0 belongs to nobody: the owner checks. */
  stat_of(ids[0], &ds);
  ds.shm_perm.uid = NOBODY;
  shmctl(ids[0], IPC_SET, &ds);
  args[n++] = num(buf[0], base_key);
  args[n] = NULL;
  child("perm.unpriv", args);
  child("perm.switch", (char *[]){"switch", num(buf[1], base_key), NULL});
  for (int i = 0; i < 12; i++)
    shmctl(ids[i], IPC_RMID, NULL);
}

/* IPC_INFO / SHM_INFO with two segments: on a fresh server the highest index is exactly 1,
 * which the shim once read as "not mine, ask the kernel". Relations that hold whatever else
 * the kernel's table holds: the return value covers our indexes and names a used index. */
static void case_info2(time_t t0) {
  int a = shmget(IPC_PRIVATE, PG, 0600), b = shmget(IPC_PRIVATE, 3 * PG, 0600);
  int hi = a % 32768 > b % 32768 ? a % 32768 : b % 32768, r = -1, used = 0;
  struct shminfo si;
  struct shm_info sinfo;
  struct shmid_ds ds;

  (void)t0;
  /* Another program may remove the kernel's highest segment between the two calls: look
   * again then. */
  for (int tries = 0; tries < 5 && !used; tries++) {
    memset(&si, 0xff, sizeof si);
    r = shmctl(0, IPC_INFO, (struct shmid_ds *)&si);
    used = r >= 0 && shmctl(r, SHM_STAT_ANY, &ds) >= 0;
  }
  line("info2.ipc-info: ret>=idx=%d used-at-ret=%d shmmax=%s shmmni=%s", r >= hi, used,
       (long)si.shmmax == read_proc("shmmax") ? "proc" : "other",
       (long)si.shmmni == read_proc("shmmni") ? "proc" : "other");
  used = 0;
  for (int tries = 0; tries < 5 && !used; tries++) {
    memset(&sinfo, 0xff, sizeof sinfo);
    r = shmctl(0, SHM_INFO, (struct shmid_ds *)&sinfo);
    used = r >= 0 && shmctl(r, SHM_STAT_ANY, &ds) >= 0;
  }
  line("info2.shm-info: ret>=idx=%d used-at-ret=%d used_ids>=2=%d shm_tot>=4=%d", r >= hi,
       used, sinfo.used_ids >= 2, sinfo.shm_tot >= 4);
  shmctl(a, IPC_RMID, NULL);
  shmctl(b, IPC_RMID, NULL);
}

/* fork: the kernel counts the child's inherited attachment in the parent's context
 * (shm_open at dup_mmap), so shm_lpid is the parent's until the child detaches or exits. */
static void case_fork(time_t t0) {
  int id = shmget(IPC_PRIVATE, PG, 0600), go[2], ready[2];
  char *p = at(id, NULL, 0), c = 0;
  struct shmid_ds ds;
  pid_t pid;

  if (p == (void *)-1 || pipe(go) < 0 || pipe(ready) < 0) {
    line("fork: setup failed");
    return;
  }
  pid = fork();
  if (pid == 0) {
    /* A store of the child's own first: whatever it does to get the page is no detach. */
    close(go[1]);
    p[1] = 7;
    if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
      _exit(1);
    _exit(0);
  }
  close(go[0]);
  close(ready[1]);
  if (pid < 0 || read(ready[0], &c, 1) != 1) {
    line("fork: child failed");
    return;
  }
  stat_of(id, &ds);
  line("fork.lpid-is-parent: %s", ds.shm_lpid == getpid() ? "yes" : "no");
  line("fork.child-store: %d", p[1]);
  show_ds("fork.ds", id, t0);
  if (write(go[1], &c, 1) != 1 || waitpid(pid, NULL, 0) != pid)
    line("fork: wait failed");
  stat_of(id, &ds);
  line("fork.after-exit: nattch=%lu lpid-is-child=%s", (unsigned long)ds.shm_nattch,
       ds.shm_lpid == pid ? "yes" : "no");
  shmdt(p);
  shmctl(id, IPC_RMID, NULL);
}

/* SHM_LOCK against RLIMIT_MEMLOCK (mm/mlock.c user_shm_lock): an unprivileged user's
 * locked segments count together against the caller's limit; CAP_IPC_LOCK bypasses it. */
static void case_memlock(time_t t0) {
  (void)t0;
  child("ml.unpriv", (char *[]){"memlock-unpriv", NULL});
  child("ml.root", (char *[]){"memlock-root", NULL});
  child("ml.nocap", (char *[]){"memlock-nocap", NULL});
}

/* What the kernel would do with SHM_HUGETLB, where dshm must do the same: EINVAL for a size
 * the host has no pool of, EPERM without the privilege, ENOMEM with no huge page available
 * (the test skips this section on a machine that has some). */
static long huge_group(void) {
  char path[] = "/proc/sys/vm/hugetlb_shm_group";
  long g = -1;
  FILE *f = fopen(path, "r");

  if (f != NULL && fscanf(f, "%ld", &g) != 1)
    g = -1;
  if (f != NULL)
    fclose(f);
  return g;
}

/* shmget as name; a segment the kernel creates is removed at once. */
static void huge_get(const char *name, key_t key, size_t size, int flg) {
  int id = shmget(key, size, flg);

  res(name, id);
  if (id >= 0 && key == IPC_PRIVATE)
    shmctl(id, IPC_RMID, NULL);
}

#define HPG (2u << 20)
#define HUGE_LOG(n) ((int)((unsigned)(n) << SHM_HUGE_SHIFT))

static void huge_cases(const char *pfx) {
  static const struct {
    const char *name;
    size_t size;
    int flg;
  } c[] = {
    {"default", HPG, SHM_HUGETLB},
    {"small", 1, SHM_HUGETLB},
    {"2mb", HPG, SHM_HUGETLB | SHM_HUGE_2MB},
    {"1gb", HPG, SHM_HUGETLB | SHM_HUGE_1GB},
    {"log-22", HPG, SHM_HUGETLB | HUGE_LOG(22)},
    {"log-63", HPG, SHM_HUGETLB | HUGE_LOG(63)},
    {"log-12", HPG, SHM_HUGETLB | HUGE_LOG(12)},
    {"size0", 0, SHM_HUGETLB},
    {"size-max", SIZE_MAX, SHM_HUGETLB},
    {"bits-without-hugetlb", PG, SHM_HUGE_2MB},
  };
  char name[64];

  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    snprintf(name, sizeof name, "%s.%s", pfx, c[i].name);
    huge_get(name, IPC_PRIVATE, c[i].size, c[i].flg | 0600);
  }
}

static void case_huge(time_t t0) {
  int k = base_key + 30, id;

  (void)t0;
  huge_cases("huge");
  /* An existing key: shmget finds it and never gets to the huge page checks. */
  id = shmget(k, PG, IPC_CREAT | 0600);
  line("huge.existing: %s", shmget(k, PG, SHM_HUGETLB | IPC_CREAT | 0600) == id ? "same"
                                                                                : ename(errno));
  huge_get("huge.existing-excl", k, PG, SHM_HUGETLB | IPC_CREAT | IPC_EXCL | 0600);
  huge_get("huge.existing-bigger", k, HPG, SHM_HUGETLB | IPC_CREAT | 0600);
  huge_get("huge.missing", k + 1, HPG, SHM_HUGETLB | 0600);
  huge_get("huge.new-key", k + 1, HPG, SHM_HUGETLB | IPC_CREAT | 0600);
  res("huge.new-key-absent", shmget(k + 1, 0, 0));
  shmctl(id, IPC_RMID, NULL);
  child("huge.unpriv", (char *[]){"huge-unpriv", NULL});
  child("huge.group", (char *[]){"huge-group", NULL});
}

/* SHM_HUGETLB | SHM_NORESERVE by root: the kernel creates the segment without reserving
 * huge pages; dshm cannot back a segment with huge pages and refuses (ENOMEM). Not
 * differential: the test checks each side. */
static void case_huge_noreserve(void) {
  huge_get("huge.noreserve", IPC_PRIVATE, HPG, SHM_HUGETLB | SHM_NORESERVE | 0600);
}

/* ---- children ---- */

/* Drops CAP_IPC_LOCK from the effective set (raw capget/capset: no libcap). */
static int drop_ipc_lock(void) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];

  if (syscall(SYS_capget, &h, d) < 0)
    return -1;
  d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  return (int)syscall(SYS_capset, &h, d);
}

static int set_memlock(rlim_t soft) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
    return -1;
  rl.rlim_cur = soft;
  return setrlimit(RLIMIT_MEMLOCK, &rl);
}

static void lock_line(const char *name, int id, int cmd) {
  res(name, shmctl(id, cmd, NULL));
}

/* nobody with RLIMIT_MEMLOCK 16 pages (the hard limit as it was, at least 80 pages). */
static int memlock_unpriv(void) {
  struct rlimit rl;
  gid_t g = SUPPGRP;
  int a, b, c, d, f;
  pid_t pid;
  char *pa;

  if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_max < 80 * PG)
    return 9;
  rl.rlim_cur = 16 * PG;
  if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0 || setgroups(1, &g) < 0 || setgid(NOGROUP) < 0 ||
      setuid(NOBODY) < 0)
    return 10;
  a = shmget(IPC_PRIVATE, 8 * PG, 0600);
  b = shmget(IPC_PRIVATE, 8 * PG, 0600);
  c = shmget(IPC_PRIVATE, 1, 0600);
  d = shmget(IPC_PRIVATE, PG + 1, 0600); /* two pages */
  lock_line("ml.lock-a", a, SHM_LOCK);            /* 8 of 16 */
  lock_line("ml.lock-a-again", a, SHM_LOCK);      /* counted once */
  lock_line("ml.lock-b", b, SHM_LOCK);            /* 16: the limit itself is fine */
  lock_line("ml.lock-c-over", c, SHM_LOCK);       /* 17 */
  show_ds("ml.c.ds", c, time(NULL) - 2);
  show_ds("ml.a.ds", a, time(NULL) - 2);
  lock_line("ml.unlock-b", b, SHM_UNLOCK);        /* 8 */
  lock_line("ml.unlock-b-again", b, SHM_UNLOCK);
  lock_line("ml.lock-c", c, SHM_LOCK);            /* 9 */
  lock_line("ml.lock-d", d, SHM_LOCK);            /* 11: 4097 bytes are 2 pages */
  lock_line("ml.lock-b-over", b, SHM_LOCK);       /* 19 */
  /* Another process of the same user: the total is the user's. */
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    int e = shmget(IPC_PRIVATE, 6 * PG, 0600);
    lock_line("ml.other-process-over", e, SHM_LOCK); /* 17 */
    shmctl(e, IPC_RMID, NULL);
    _exit(0);
  }
  if (pid < 0 || waitpid(pid, NULL, 0) != pid)
    return 11;
  lock_line("ml.unlock-d", d, SHM_UNLOCK);        /* 9 */
  /* A locked segment removed while attached counts until it is destroyed. */
  pa = shmat(a, NULL, 0);
  lock_line("ml.rmid-attached-a", a, IPC_RMID);
  lock_line("ml.lock-b-while-a-attached", b, SHM_LOCK); /* 17 */
  res("ml.dt-a", pa == (void *)-1 ? -1 : shmdt(pa));  /* destroyed: 1 */
  lock_line("ml.lock-b-after-a-gone", b, SHM_LOCK);    /* 9 */
  lock_line("ml.rmid-b", b, IPC_RMID);                 /* destroyed: 1 */
  /* A zero limit refuses every SHM_LOCK (EPERM, before any counting), not SHM_UNLOCK. */
  if (set_memlock(0) < 0)
    return 12;
  lock_line("ml.lock-zero-limit", c, SHM_LOCK);
  lock_line("ml.unlock-zero-limit", c, SHM_UNLOCK);
  /* Up to the hard limit (RLIM_INFINITY where it is that: no limit at all). */
  if (set_memlock(rl.rlim_max) < 0)
    return 13;
  f = shmget(IPC_PRIVATE, 64 * PG, 0600);
  lock_line("ml.lock-up-to-hard-limit", f, SHM_LOCK);
  lock_line("ml.rmid-c", c, IPC_RMID);
  lock_line("ml.rmid-d", d, IPC_RMID);
  lock_line("ml.rmid-f", f, IPC_RMID);
  return 0;
}

/* Root keeps CAP_IPC_LOCK: neither the limit nor a zero limit stops it. */
static int memlock_root(void) {
  int big = shmget(IPC_PRIVATE, 64 * PG, 0600), one = shmget(IPC_PRIVATE, PG, 0600);

  if (set_memlock(16 * PG) < 0)
    return 10;
  lock_line("ml.root-over-limit", big, SHM_LOCK);
  if (set_memlock(0) < 0)
    return 11;
  lock_line("ml.root-zero-limit", one, SHM_LOCK);
  shmctl(big, IPC_RMID, NULL);
  shmctl(one, IPC_RMID, NULL);
  return 0;
}

/* Root without CAP_IPC_LOCK is held to the limit and to ownership like anyone. (Only the
 * refusals are compared: what root may still lock depends on every root process's locks.) */
static int memlock_nocap(void) {
  int big = shmget(IPC_PRIVATE, 64 * PG, 0600), one = shmget(IPC_PRIVATE, PG, 0600), id = -1;
  int fds[2];
  pid_t pid;

  /* A segment that nobody created and owns. */
  if (pipe(fds) < 0)
    return 10;
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    int n;
    if (setgid(NOGROUP) < 0 || setuid(NOBODY) < 0)
      _exit(1);
    n = shmget(IPC_PRIVATE, PG, 0666);
    _exit(write(fds[1], &n, sizeof n) == sizeof n ? 0 : 1);
  }
  if (pid < 0 || read(fds[0], &id, sizeof id) != sizeof id || waitpid(pid, NULL, 0) != pid)
    return 11;
  if (set_memlock(16 * PG) < 0 || drop_ipc_lock() < 0)
    return 12;
  lock_line("ml.nocap-over-limit", big, SHM_LOCK);
  lock_line("ml.nocap-not-owner", id, SHM_LOCK);
  if (set_memlock(0) < 0)
    return 13;
  lock_line("ml.nocap-zero-limit", one, SHM_LOCK);
  shmctl(big, IPC_RMID, NULL);
  shmctl(one, IPC_RMID, NULL);
  shmctl(id, IPC_RMID, NULL);
  return 0;
}

/* nobody, in the huge page group (hu-group) or not (hu-unpriv). */
static int huge_unpriv(int in_group) {
  long hg = huge_group();
  gid_t g[2] = {SUPPGRP, (gid_t)hg};

  if (hg < 0 || setgroups(in_group ? 2 : 1, g) < 0 || setgid(NOGROUP) < 0 ||
      setuid(NOBODY) < 0)
    return 10;
  line("%s.in-hugetlb-group: %s", in_group ? "hg" : "hu",
       hg == NOGROUP || hg == SUPPGRP || in_group ? "yes" : "no");
  huge_cases(in_group ? "hg" : "hu");
  return 0;
}

static int child_main(int argc, char **argv) {
  const char *c = argv[2];
  int id = argc > 3 ? atoi(argv[3]) : -1;
  char *p;

  if (strcmp(c, "memlock-unpriv") == 0)
    return memlock_unpriv();
  if (strcmp(c, "memlock-root") == 0)
    return memlock_root();
  if (strcmp(c, "memlock-nocap") == 0)
    return memlock_nocap();
  if (strcmp(c, "huge-unpriv") == 0 || strcmp(c, "huge-group") == 0)
    return huge_unpriv(strcmp(c, "huge-group") == 0);
  if (strcmp(c, "rdonly-write") == 0) {
    p = shmat(id, NULL, SHM_RDONLY);
    if (p == (void *)-1)
      return 2;
    *(volatile char *)p = 1;
    return 0;
  }
  if (strcmp(c, "noexec-run") == 0) {
    p = shmat(id, NULL, 0);
    if (p == (void *)-1)
      return 2;
    p[PG] = (char)0xc3;
    ((void (*)(void))(p + PG))();
    return 0;
  }
  if (strcmp(c, "past-end") == 0) {
    /* A guard page right after the attachment, so "past the end" is nobody's memory. */
    char *r = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p = shmat(id, r, SHM_REMAP);
    if (p != r)
      return 2;
    p[3 * PG - 1] = 5; /* last byte of the last page: fine */
    *(volatile char *)(p + 3 * PG) = 1;
    return 0;
  }
  if (strcmp(c, "argv-id") == 0) {
    struct shmid_ds ds;
    p = shmat(id, NULL, 0);
    if (p == (void *)-1)
      return 2;
    if (p[10] != 42 || shmctl(id, IPC_STAT, &ds) < 0)
      return 3;
    return shmdt(p) == 0 ? 10 + (int)ds.shm_nattch : 4;
  }
  if (strcmp(c, "unpriv") == 0 || strcmp(c, "switch") == 0) {
    int k = atoi(argv[3]), sw = strcmp(c, "switch") == 0, guard = -1;
    gid_t g = SUPPGRP;
    struct shmid_ds ds;
    char name[64];

    if (sw) {
      /* Connect as root first (under the shim), then change ids: checked as the new ids. */
      guard = shmget(IPC_PRIVATE, PG, 0600);
      if (setgroups(1, &g) < 0 || setegid(NOGROUP) < 0 || seteuid(NOBODY) < 0)
        return 10;
      line("sw.guard-now-foreign: %s", shmat(guard, NULL, 0) == (void *)-1 ? ename(errno) : "ok");
    } else if (setgroups(1, &g) < 0 || setgid(NOGROUP) < 0 || setuid(NOBODY) < 0) {
      return 10;
    }
    for (int i = 0; i < 12; i++) {
      int id2 = shmget(k + 10 + i, 0, 0);
      int r4 = shmget(k + 10 + i, 0, 0400) >= 0, r2 = shmget(k + 10 + i, 0, 0200) >= 0;
      void *rw = shmat(id2, NULL, 0);
      int erw = errno;
      void *ro = shmat(id2, NULL, SHM_RDONLY);
      int ero = errno;
      int st = shmctl(id2, IPC_STAT, &ds);
      int est = errno;
      int ss = shmctl(id2 % 32768, SHM_STAT, &ds);
      int ess = errno;
      int sa = shmctl(id2 % 32768, SHM_STAT_ANY, &ds);
      snprintf(name, sizeof name, "%s.%d", sw ? "sw" : "np", i);
      line("%s: get=%s get4=%d get2=%d rw=%s ro=%s stat=%s shmstat=%s any=%s", name,
           id2 >= 0 ? "ok" : ename(errno), r4, r2, rw == (void *)-1 ? ename(erw) : "ok",
           ro == (void *)-1 ? ename(ero) : "ok", st < 0 ? ename(est) : "ok",
           ss < 0 ? ename(ess) : "ok", sa >= 0 ? "ok" : ename(errno));
      if (rw != (void *)-1)
        shmdt(rw);
      if (ro != (void *)-1)
        shmdt(ro);
    }
    /* Owner (segment 0 belongs to nobody) vs. stranger (segment 1). */
    {
      int own = shmget(k + 10, 0, 0), other = shmget(k + 11, 0, 0);
      struct shmid_ds d2;
      const char *pfx = sw ? "sw" : "np";
      stat_of(own, &d2);
      line("%s.own-set: %s", pfx, shmctl(own, IPC_SET, &d2) == 0 ? "ok" : ename(errno));
      line("%s.own-lock: %s", pfx, shmctl(own, SHM_LOCK, NULL) == 0 ? "ok" : ename(errno));
      line("%s.own-unlock: %s", pfx, shmctl(own, SHM_UNLOCK, NULL) == 0 ? "ok" : ename(errno));
      stat_of(other, &d2);
      d2.shm_perm = (struct ipc_perm){.uid = NOBODY, .gid = NOGROUP, .mode = 0666};
      line("%s.other-set: %s", pfx, shmctl(other, IPC_SET, &d2) == 0 ? "ok" : ename(errno));
      line("%s.other-lock: %s", pfx, shmctl(other, SHM_LOCK, NULL) == 0 ? "ok" : ename(errno));
      line("%s.other-unlock: %s", pfx, shmctl(other, SHM_UNLOCK, NULL) == 0 ? "ok" : ename(errno));
      line("%s.other-rmid: %s", pfx, shmctl(other, IPC_RMID, NULL) == 0 ? "ok" : ename(errno));
      /* A segment created by nobody. */
      int mine = shmget(IPC_PRIVATE, PG, 0600);
      line("%s.create: %s", pfx, mine >= 0 ? "ok" : ename(errno));
      show_ds(sw ? "sw.create.ds" : "np.create.ds", mine, time(NULL) - 2);
      line("%s.create-rmid: %s", pfx, shmctl(mine, IPC_RMID, NULL) == 0 ? "ok" : ename(errno));
    }
    if (sw) {
      /* And back to root: the same connection serves it as root again. */
      if (seteuid(0) < 0 || setegid(0) < 0)
        return 11;
      void *g2 = shmat(guard, NULL, 0);
      line("sw.back-to-root: %s", g2 == (void *)-1 ? ename(errno) : "ok");
      shmctl(guard, IPC_RMID, NULL);
      if (g2 != (void *)-1)
        shmdt(g2);
    }
    return 0;
  }
  return 99;
}

/* Keys passthrough (run under the shim with DSHM_KEYS=KEY): KEY goes to the server, KEY+1
 * to the kernel; both are attached, written, stat'ed and detached through the same calls. */
static void case_keys(void) {
  int ids[2];
  for (int i = 0; i < 2; i++) {
    char *p, *q, name[32];
    struct shmid_ds ds;
    ids[i] = shmget(base_key + i, PG, IPC_CREAT | 0600);
    snprintf(name, sizeof name, "keys.%d", i);
    res(name, ids[i]);
    p = shmat(ids[i], NULL, 0);
    q = shmat(ids[i], NULL, SHM_RDONLY);
    if (p == (void *)-1 || q == (void *)-1) {
      line("keys.%d.at: %s", i, ename(errno));
      continue;
    }
    p[5] = (char)(i + 1);
    line("keys.%d.coherent: %d", i, q[5]);
    int st = stat_of(ids[i], &ds);
    line("keys.%d.stat: %s nattch=%lu", i, st == 0 ? "ok" : ename(errno),
         (unsigned long)ds.shm_nattch);
    line("keys.%d.dt: %s %s", i, shmdt(p) == 0 ? "ok" : ename(errno),
         shmdt(q) == 0 ? "ok" : ename(errno));
  }
}

static void case_keys_cleanup(void) {
  for (int i = 0; i < 2; i++) {
    int id = shmget(base_key + i, 0, 0);
    line("cleanup.%d: %s", i, id >= 0 && shmctl(id, IPC_RMID, NULL) == 0 ? "ok" : ename(errno));
  }
}

/* ftok(PATH, 'A') and ftok(PATH, 'B'), as numbers (compared between runs by the test). */
static void case_ftok(const char *path) {
  key_t a = ftok(path, 'A'), b = ftok(path, 'B');
  line("ftok: %#x %#x %s", (unsigned)a, (unsigned)b, a == -1 ? ename(errno) : "ok");
}

int main(int argc, char **argv) {
  time_t t0 = time(NULL) - 1;
  const char *sec = argc > 2 ? argv[2] : "all";
  int all = strcmp(sec, "all") == 0;

  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 3 && strcmp(argv[1], "-c") == 0)
    return child_main(argc, argv);
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: probe KEY [all|get|at|dt|ctl|perm|info2|fork|memlock|huge|"
                    "huge-noreserve|keys|keys-cleanup|ftok PATH]\n");
    return 2;
  }
  base_key = atoi(argv[1]);
  if (strcmp(sec, "keys") == 0) {
    case_keys();
    return 0;
  }
  if (strcmp(sec, "keys-cleanup") == 0) {
    case_keys_cleanup();
    return 0;
  }
  if (strcmp(sec, "ftok") == 0 && argc == 4) {
    case_ftok(argv[3]);
    return 0;
  }
  if (strcmp(sec, "huge-noreserve") == 0) {
    case_huge_noreserve();
    return 0;
  }
  line("root: %s", geteuid() == 0 ? "yes" : "no");
  if (all || strcmp(sec, "get") == 0)
    case_shmget(t0);
  if (all || strcmp(sec, "at") == 0)
    case_shmat(t0);
  if (all || strcmp(sec, "dt") == 0)
    case_shmdt(t0);
  if (all || strcmp(sec, "ctl") == 0)
    case_shmctl(t0);
  if ((all || strcmp(sec, "perm") == 0) && geteuid() == 0)
    case_perms(t0);
  if (all || strcmp(sec, "info2") == 0)
    case_info2(t0);
  if (all || strcmp(sec, "fork") == 0)
    case_fork(t0);
  /* These drop to nobody, or need root's CAP_IPC_LOCK to begin with. */
  if ((all || strcmp(sec, "memlock") == 0) && geteuid() == 0)
    case_memlock(t0);
  if ((all || strcmp(sec, "huge") == 0) && geteuid() == 0)
    case_huge(t0);
  line("done");
  return 0;
}
