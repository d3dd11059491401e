/* semprobe.c - the differential probe for SysV semaphores: exercises semget, semop,
 * semtimedop and semctl case by case and prints one normalized line per observation (no raw
 * ids, pids, times or addresses), so that a native run (the kernel is the oracle) and a run
 * under the shim compare line by line.
 *
 * Plain SysV, no dshm headers. Usage: semprobe KEY [SECTION] (KEY a unique base key; the
 * keyed sets use KEY .. KEY+39, and every set made is removed before exiting). Waiters are
 * forked children that answer through a pipe, so that the parent alone orders the output;
 * "is it blocked yet" is GETNCNT/GETZCNT polled against a deadline, never a sleep. The probe
 * re-executes itself ("semprobe -c CASE ...") to drop to an unprivileged uid and to show that
 * SEM_UNDO entries survive execve. Nothing here expects an errno: the kernel's answers are
 * the expectation, and the exit status is non-zero only when the probe itself cannot run
 * (fork, pipe). Not covered: ENOMEM, and ENOSPC (SEMMNI/SEMMNS are system-wide). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOBODY 65534
#define NOGROUP 4000   /* the unprivileged child's gid */
#define SUPPGRP 5000   /* ... and its supplementary group */
#define SEMVMX 32767
/* Index 32767 is never in use while SEMMNI stays below IPCMNI (32768): never a set. */
#define BAD_ID INT_MAX
#define POLL_MS 5000     /* how long a count is polled for the value it should reach */
#define ANSWER_MS 10000  /* how long a child's answer is waited for */
#define KID_ALARM 20     /* every child dies after this many seconds, whatever happens */

/* The caller defines it (semctl(2)). */
union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
  struct seminfo *__buf;
};

/* A sembuf array literal and its length: semop(id, OPS({0, 1, 0}, {1, -1, 0})). */
#define OPS(...) \
  (struct sembuf[]){__VA_ARGS__}, sizeof((struct sembuf[]){__VA_ARGS__}) / sizeof(struct sembuf)

static int base_key;
static pid_t main_pid;
static time_t t0;
static int lim_msl = 32000, lim_opm = 500; /* SEMMSL and SEMOPM, from IPC_INFO */
static const char *self_exe = "/proc/self/exe";

/* ---- output ---- */

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

/* "name: ok" / "name: EXXX". */
static void res(const char *name, long rc) {
  if (rc < 0)
    line("%s: %s", name, ename(errno));
  else
    line("%s: ok", name);
}

/* "name: ok VALUE" / "name: EXXX", for the values that are the same on every run. */
static void val(const char *name, long rc) {
  if (rc < 0)
    line("%s: %s", name, ename(errno));
  else
    line("%s: ok %ld", name, rc);
}

static _Noreturn void fatal(const char *what) {
  fprintf(stderr, "semprobe: %s: %s\n", what, strerror(errno));
  exit(1); /* rm_all runs */
}

static char *num(char *buf, size_t cap, long v) {
  snprintf(buf, cap, "%ld", v);
  return buf;
}

static char *status_str(int st, char *buf, size_t cap) {
  if (WIFSIGNALED(st))
    snprintf(buf, cap, "killed by %s",
             sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
  else if (WIFEXITED(st))
    snprintf(buf, cap, "exit %d", WEXITSTATUS(st));
  else
    snprintf(buf, cap, "status?");
  return buf;
}

/* ---- the sets this process made: all removed at exit, whatever path it takes ---- */

static int made[256];
static size_t nmade;

static int mk(key_t key, int nsems, int flg) {
  int id = semget(key, nsems, flg);

  if (id >= 0 && nmade < sizeof made / sizeof made[0]) {
    for (size_t i = 0; i < nmade; i++)
      if (made[i] == id)
        return id;
    made[nmade++] = id;
  }
  return id;
}

/* IPC_RMID (semnum is ignored), and the set is forgotten. */
static int rmid_num(int id, int semnum) {
  int r = semctl(id, semnum, IPC_RMID);
  int e = errno;

  for (size_t i = 0; i < nmade; i++)
    if (made[i] == id)
      made[i] = -1;
  errno = e;
  return r;
}

static int rmid(int id) {
  return rmid_num(id, 0);
}

/* atexit, in the main process only (forked children leave by _exit). */
static void rm_all(void) {
  if (getpid() != main_pid)
    return;
  for (size_t i = 0; i < nmade; i++)
    if (made[i] >= 0)
      semctl(made[i], 0, IPC_RMID);
}

/* SIGINT or SIGTERM in the main process: the sets go too (semctl is a plain system call). */
static void on_term(int sig) {
  if (getpid() == main_pid)
    for (size_t i = 0; i < nmade; i++)
      if (made[i] >= 0)
        semctl(made[i], 0, IPC_RMID);
  _exit(128 + sig);
}

/* ---- semctl in short ---- */

static int getval(int id, int semnum) {
  return semctl(id, semnum, GETVAL);
}

static int setval(int id, int semnum, int v) {
  return semctl(id, semnum, SETVAL, (union semun){.val = v});
}

static int setall(int id, unsigned short *v) {
  return semctl(id, 0, SETALL, (union semun){.array = v});
}

static int stat_of(int id, struct semid_ds *ds) {
  memset(ds, 0, sizeof *ds);
  return semctl(id, 0, IPC_STAT, (union semun){.buf = ds});
}

static int ipcset(int id, struct semid_ds *ds) {
  return semctl(id, 0, IPC_SET, (union semun){.buf = ds});
}

static int op1(int id, unsigned short semnum, short op, short flg) {
  struct sembuf b = {semnum, op, flg};
  return semop(id, &b, 1);
}

static int timed(int id, struct sembuf *sops, size_t n, long sec, long nsec) {
  struct timespec ts = {sec, nsec};
  return semtimedop(id, sops, n, &ts);
}

/* "name: ok 1 2 3": GETALL of the first n (at most 8) semaphores. */
static void getall_line(const char *name, int id, int n) {
  unsigned short v[8] = {0};
  char out[64];
  size_t len = 0;

  if (semctl(id, 0, GETALL, (union semun){.array = v}) < 0) {
    line("%s: %s", name, ename(errno));
    return;
  }
  for (int i = 0; i < n && i < 8; i++)
    len += (size_t)snprintf(out + len, sizeof out - len, " %u", v[i]);
  line("%s: ok%s", name, out);
}

/* GETPID as a relation: "self", "child" (kid), "0" or "other". */
static void pid_line(const char *name, int id, int semnum, pid_t kid) {
  int r = semctl(id, semnum, GETPID);

  if (r < 0)
    line("%s: %s", name, ename(errno));
  else
    line("%s: ok %s", name,
         r == 0 ? "0" : (r == getpid() ? "self" : (kid > 0 && r == kid ? "child" : "other")));
}

static const char *tlabel(time_t t) {
  if (t == 0)
    return "0";
  return t >= t0 && t <= time(NULL) + 1 ? "now" : "bad";
}

static const char *ulabel(uid_t u) {
  if (u == geteuid())
    return "self";
  return u == 0 ? "root" : (u == NOBODY ? "nobody" : "other");
}

static const char *glabel(gid_t g) {
  if (g == getegid())
    return "self";
  if (g == 0)
    return "root";
  return g == NOGROUP ? "nogroup" : (g == SUPPGRP ? "supp" : "other");
}

/* A semid_ds normalized: the key relative to KEY, owners relative to the caller, times as
 * "0" or "now". */
static void fmt_ds(const char *name, const struct semid_ds *ds) {
  long k = ds->sem_perm.__key;
  char kb[24];

  if (k == IPC_PRIVATE)
    snprintf(kb, sizeof kb, "0");
  else if (k >= base_key && k - base_key < 100)
    snprintf(kb, sizeof kb, "k+%ld", k - base_key);
  else
    snprintf(kb, sizeof kb, "other");
  line("%s: key=%s mode=%04o nsems=%lu uid=%s gid=%s cuid=%s cgid=%s otime=%s ctime=%s", name,
       kb, (unsigned)ds->sem_perm.mode, (unsigned long)ds->sem_nsems, ulabel(ds->sem_perm.uid),
       glabel(ds->sem_perm.gid), ulabel(ds->sem_perm.cuid), glabel(ds->sem_perm.cgid),
       tlabel(ds->sem_otime), tlabel(ds->sem_ctime));
}

static void show_ds(const char *name, int id) {
  struct semid_ds ds;

  if (stat_of(id, &ds) < 0)
    line("%s: %s", name, ename(errno));
  else
    fmt_ds(name, &ds);
}

/* The index of set id in the table SEM_STAT reads (the walk ipcs does): the kernel's is
 * id % 32768; otherwise every index up to IPC_INFO's answer is tried. -1: not found. */
static int find_index(int id) {
  struct semid_ds ds;
  struct seminfo si;
  int max;

  if (semctl(id % 32768, 0, SEM_STAT_ANY, (union semun){.buf = &ds}) == id)
    return id % 32768;
  max = semctl(0, 0, IPC_INFO, (union semun){.__buf = &si});
  for (int i = 0; i <= max; i++)
    if (semctl(i, 0, SEM_STAT_ANY, (union semun){.buf = &ds}) == id)
      return i;
  return -1;
}

/* ---- time ---- */

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Polls semctl(id, semnum, cmd) (GETNCNT or GETZCNT) until it reads want, for at most
 * POLL_MS: the one way this probe waits for another process to block. */
static void cnt_line(const char *name, int id, int semnum, int cmd, int want) {
  long end = now_ms() + POLL_MS;
  int v, e;

  for (;;) {
    v = semctl(id, semnum, cmd);
    e = errno;
    if (v == want || now_ms() >= end)
      break;
    nap_ms(1);
  }
  if (v < 0)
    line("%s: %s", name, ename(e));
  else
    line("%s: ok %d", name, v);
}

/* Reaps pid within ANSWER_MS, then kills it; returns the wait status. */
static int reap(pid_t pid, int kill_first) {
  long end = now_ms() + ANSWER_MS;
  int st = 0;
  pid_t r;

  if (kill_first)
    kill(pid, SIGKILL);
  while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
    if (now_ms() >= end) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    nap_ms(1);
  }
  return st;
}

/* ---- children that wait ---- */

/* What a child does: one semop (or semtimedop) after setting up SIGUSR1. */
struct job {
  int id;
  size_t nops;
  struct sembuf ops[3];
  int timed;  /* semtimedop with to_ms */
  long to_ms;
  char sig;   /* SIGUSR1: 0 default, 'h' handler, 'r' handler with SA_RESTART, 'i' ignored */
  int hold;   /* after answering, wait for the parent's word before exiting */
};

#define JOB(...) (&(const struct job){__VA_ARGS__})

struct kid {
  pid_t pid;
  int ans; /* read end: the child's answer, one int */
  int go;  /* write end: a byte lets a holding child exit */
  int answered;
};

#define KID_NONE INT_MIN      /* it died without answering */
#define KID_LATE (INT_MIN + 1) /* no answer within ANSWER_MS */

static void on_usr1(int sig) {
  (void)sig;
}

/* The child's side: 0 on success, else errno. */
static int job_semop(const struct job *j) {
  struct sembuf sops[3];
  struct sigaction sa;
  int r;

  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = j->sig == 'h' || j->sig == 'r' ? on_usr1 : (j->sig == 'i' ? SIG_IGN : SIG_DFL);
  sa.sa_flags = j->sig == 'r' ? SA_RESTART : 0;
  sigaction(SIGUSR1, &sa, NULL);
  memcpy(sops, j->ops, sizeof sops);
  if (j->timed)
    r = timed(j->id, sops, j->nops, j->to_ms / 1000, (j->to_ms % 1000) * 1000000L);
  else
    r = semop(j->id, sops, j->nops);
  return r < 0 ? errno : 0;
}

/* +1 with SEM_UNDO, then a grandchild that exits: the value after it (fork does not pass
 * the adjustments on), or -errno. */
static int job_undo_fork(const struct job *j) {
  pid_t g;
  int v;

  if (op1(j->id, 0, 1, SEM_UNDO) < 0)
    return -errno;
  g = fork();
  if (g == 0)
    _exit(0);
  if (g < 0 || waitpid(g, NULL, 0) != g)
    return -ECHILD;
  v = getval(j->id, 0);
  return v < 0 ? -errno : v;
}

static void kid_start(struct kid *k, int (*fn)(const struct job *), const struct job *j) {
  int ans[2], go[2];

  if (pipe2(ans, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
    fatal("pipe");
  fflush(stdout);
  k->pid = fork();
  if (k->pid < 0)
    fatal("fork");
  if (k->pid == 0) {
    int a;
    char c;
    close(ans[0]);
    close(go[1]);
    alarm(KID_ALARM);
    a = fn(j);
    if (write(ans[1], &a, sizeof a) != (ssize_t)sizeof a)
      _exit(3);
    if (j->hold && read(go[0], &c, 1) < 0)
      _exit(4);
    _exit(0);
  }
  close(ans[1]);
  close(go[0]);
  k->ans = ans[0];
  k->go = go[1];
  k->answered = 0;
}

static void start(struct kid *k, const struct job *j) {
  kid_start(k, job_semop, j);
}

static int kid_answer(struct kid *k) {
  struct pollfd p = {k->ans, POLLIN, 0};
  long end = now_ms() + ANSWER_MS;
  int a, r;

  do
    r = poll(&p, 1, (int)(end - now_ms() > 0 ? end - now_ms() : 0));
  while (r < 0 && errno == EINTR);
  if (r <= 0)
    return KID_LATE;
  if (read(k->ans, &a, sizeof a) != (ssize_t)sizeof a)
    return KID_NONE;
  k->answered = 1;
  return a;
}

static const char *answer_str(int a) {
  if (a == KID_LATE)
    return "no answer in time";
  if (a == KID_NONE)
    return "died without answering";
  return a == 0 ? "ok" : ename(a);
}

/* "name: ok" / "name: EXXX": how the child's semop ended. */
static void kid_say(const char *name, struct kid *k) {
  line("%s: %s", name, answer_str(kid_answer(k)));
}

/* Which of two children answers first: "A" or "B", with its answer; then the other's. */
static void first_line(const char *name, struct kid *a, struct kid *b, int *which) {
  struct pollfd p[2] = {{a->ans, POLLIN, 0}, {b->ans, POLLIN, 0}};
  long end = now_ms() + ANSWER_MS;
  int r;

  do
    r = poll(p, 2, (int)(end - now_ms() > 0 ? end - now_ms() : 0));
  while (r < 0 && errno == EINTR);
  *which = r <= 0 ? -1 : ((p[0].revents & POLLIN) ? 0 : 1);
  if (*which < 0)
    line("%s: nobody", name);
  else
    line("%s: %s %s", name, *which == 0 ? "A" : "B", answer_str(kid_answer(*which == 0 ? a : b)));
}

/* Lets a holding child exit (or kills it: also one that never answered, still blocked) and
 * reaps it; returns the wait status. */
static int kid_end(struct kid *k, int kill_it) {
  int st;

  if (!k->answered)
    kill_it = 1;
  if (!kill_it && write(k->go, "x", 1) != 1)
    kill_it = 1;
  st = reap(k->pid, kill_it);
  close(k->ans);
  close(k->go);
  return st;
}

static void kid_end_line(const char *name, struct kid *k, int kill_it) {
  char sb[32];
  line("%s: %s", name, status_str(kid_end(k, kill_it), sb, sizeof sb));
}

/* Runs "semprobe -c CASE args..." and prints how it ended. */
static void child(const char *name, char *const args[]) {
  char *argv[16], sb[32];
  int n = 0;
  pid_t pid;

  argv[n++] = (char *)"semprobe";
  argv[n++] = (char *)"-c";
  for (int i = 0; args[i] != NULL && n < 15; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  fflush(stdout);
  pid = fork();
  if (pid < 0)
    fatal("fork");
  if (pid == 0) {
    alarm(KID_ALARM); /* kept across execv */
    execv(self_exe, argv);
    _exit(127);
  }
  line("%s: %s", name, status_str(reap(pid, 0), sb, sizeof sb));
}

/* ---- cases ---- */

static void case_get(void) {
  int k = base_key, id, a, b;

  /* IPC_PRIVATE: always a new set, zero-filled; only the low 9 bits of semflg are the mode. */
  a = mk(IPC_PRIVATE, 3, IPC_CREAT | 01640);
  res("get.private", a);
  show_ds("get.private.ds", a);
  getall_line("get.private.values", a, 3);
  b = mk(IPC_PRIVATE, 3, IPC_CREAT | IPC_EXCL | 0600);
  line("get.private-again: %s", b < 0 ? ename(errno) : (b != a ? "different" : "same"));
  res("get.private-nsems0", mk(IPC_PRIVATE, 0, 0600));
  res("get.private-nsems-neg", mk(IPC_PRIVATE, -1, 0600));
  res("get.private-nsems-over", mk(IPC_PRIVATE, lim_msl + 1, 0600));
  id = mk(IPC_PRIVATE, lim_msl, 0600);
  res("get.private-nsems-max", id);
  val("get.private-nsems-max.last", getval(id, lim_msl - 1));
  rmid(id);
  rmid(a);
  rmid(b);

  /* A key. */
  id = mk(k, 3, IPC_CREAT | 0640);
  res("get.create", id);
  show_ds("get.create.ds", id);
  a = semget(k, 3, IPC_CREAT | 0600);
  line("get.create-again: %s", a < 0 ? ename(errno) : (a == id ? "same" : "different"));
  a = semget(k, 0, 0);
  line("get.existing-nsems0: %s", a < 0 ? ename(errno) : (a == id ? "same" : "different"));
  a = semget(k, 2, 0);
  line("get.existing-fewer: %s", a < 0 ? ename(errno) : (a == id ? "same" : "different"));
  a = semget(k, 3, IPC_EXCL | 0600);
  line("get.existing-excl-alone: %s", a < 0 ? ename(errno) : (a == id ? "same" : "different"));
  res("get.existing-more", semget(k, 4, 0));
  res("get.existing-more-creat", semget(k, 4, IPC_CREAT | 0600));
  res("get.existing-neg", semget(k, -1, 0));
  res("get.existing-over", semget(k, lim_msl + 1, 0));
  res("get.excl", semget(k, 3, IPC_CREAT | IPC_EXCL | 0600));
  res("get.excl-more", semget(k, 4, IPC_CREAT | IPC_EXCL | 0600));
  res("get.excl-over", semget(k, lim_msl + 1, IPC_CREAT | IPC_EXCL | 0600));
  /* A key nobody uses. */
  res("get.missing", semget(k + 1, 3, 0600));
  res("get.missing-nsems0", semget(k + 1, 0, 0));
  res("get.missing-excl", semget(k + 1, 3, IPC_EXCL | 0600));
  res("get.missing-over", semget(k + 1, lim_msl + 1, 0600));
  res("get.missing-neg", semget(k + 1, -1, 0600));
  res("get.create-nsems0", mk(k + 1, 0, IPC_CREAT | 0600));
  res("get.create-over", mk(k + 1, lim_msl + 1, IPC_CREAT | 0600));
  res("get.missing-after", semget(k + 1, 0, 0));
  a = mk(k + 1, 1, IPC_CREAT | IPC_EXCL | 0600);
  res("get.create-excl", a);
  rmid(a);
  /* Removed: the key is free, and a new set under it is another set. */
  rmid(id);
  res("get.after-rmid", semget(k, 0, 0));
  a = mk(k, 1, IPC_CREAT | 0600);
  line("get.recreate: %s", a < 0 ? ename(errno) : (a == id ? "same" : "different"));
  show_ds("get.recreate.ds", a);
  rmid(a);
}

static int read_proc_sem(long v[4]) {
  FILE *f = fopen("/proc/sys/kernel/sem", "r");
  int n = f != NULL ? fscanf(f, "%ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3]) : 0;

  if (f != NULL)
    fclose(f);
  return n == 4 ? 0 : -1;
}

/* The limits IPC_INFO and SEM_INFO report, as relations ("proc": as /proc/sys/kernel/sem
 * says), and the constants the kernel fills in. */
static void info_lines(const char *name, int r, int idx, const struct seminfo *si) {
  long p[4] = {-1, -1, -1, -1};

  read_proc_sem(p);
  if (r < 0) {
    line("%s: %s", name, ename(errno));
    return;
  }
  line("%s: ok ret>=idx=%d semmsl=%s semmns=%s semopm=%s semmni=%s semvmx=%d", name,
       idx >= 0 && r >= idx, si->semmsl == p[0] ? "proc" : "other",
       si->semmns == p[1] ? "proc" : "other", si->semopm == p[2] ? "proc" : "other",
       si->semmni == p[3] ? "proc" : "other", si->semvmx);
  line("%s.constants: semmap=%d semmnu=%d semume=%d", name, si->semmap, si->semmnu, si->semume);
}

static void case_ctl(void) {
  int id = mk(base_key + 2, 3, IPC_CREAT | 0600), other, idx, r, max;
  struct semid_ds ds;
  struct seminfo si;

  res("ctl.create", id);
  /* IPC_STAT: returns 0; semnum is ignored. */
  memset(&ds, 0, sizeof ds);
  val("ctl.stat", semctl(id, 0, IPC_STAT, (union semun){.buf = &ds}));
  fmt_ds("ctl.stat.ds", &ds);
  res("ctl.stat-semnum-ignored", semctl(id, 99, IPC_STAT, (union semun){.buf = &ds}));

  /* IPC_SET: uid, gid and the low 9 bits of mode. */
  stat_of(id, &ds);
  ds.sem_perm.mode = 0640;
  ds.sem_perm.gid = SUPPGRP;
  res("ctl.set", ipcset(id, &ds));
  show_ds("ctl.set.ds", id);
  stat_of(id, &ds);
  ds.sem_perm.mode = 07777;
  res("ctl.set-high-bits", ipcset(id, &ds));
  show_ds("ctl.set-high-bits.ds", id);
  stat_of(id, &ds);
  ds.sem_perm.uid = NOBODY;
  res("ctl.set-uid", ipcset(id, &ds));
  show_ds("ctl.set-uid.ds", id);
  stat_of(id, &ds);
  ds.sem_perm.uid = geteuid();
  ds.sem_perm.gid = getegid();
  ds.sem_perm.mode = 0600;
  res("ctl.set-back", semctl(id, 99, IPC_SET, (union semun){.buf = &ds}));
  show_ds("ctl.set-back.ds", id);
  stat_of(id, &ds);
  ds.sem_perm.uid = (uid_t)-1;
  ds.sem_perm.mode = 0644;
  res("ctl.set-uid-1", ipcset(id, &ds));
  stat_of(id, &ds);
  ds.sem_perm.gid = (gid_t)-1;
  ds.sem_perm.mode = 0644;
  res("ctl.set-gid-1", ipcset(id, &ds));
  show_ds("ctl.set-failed.ds", id);

  /* GETVAL, SETVAL, GETPID. */
  pid_line("ctl.getpid-fresh", id, 0, 0);
  val("ctl.getval-fresh", getval(id, 0));
  res("ctl.setval", setval(id, 0, 5));
  val("ctl.setval.val", getval(id, 0));
  pid_line("ctl.getpid-after-setval", id, 0, 0);
  pid_line("ctl.getpid-other-sem", id, 1, 0);
  res("ctl.setval-max", setval(id, 0, SEMVMX));
  val("ctl.setval-max.val", getval(id, 0));
  res("ctl.setval-over", setval(id, 0, SEMVMX + 1));
  res("ctl.setval-neg", setval(id, 0, -1));
  val("ctl.setval-refused.val", getval(id, 0));
  res("ctl.setval-semnum", setval(id, 3, 1));
  res("ctl.setval-semnum-neg", setval(id, -1, 1));
  res("ctl.setval-neg-bad-semnum", setval(id, 3, -1));
  res("ctl.setval-neg-bad-id", setval(BAD_ID, 0, -1));
  res("ctl.setval-bad-id", setval(BAD_ID, 0, 1));
  res("ctl.getval-semnum", getval(id, 3));
  res("ctl.getval-semnum-neg", getval(id, -1));

  /* GETALL, SETALL: semnum is ignored. */
  getall_line("ctl.getall", id, 3);
  res("ctl.getall-semnum-ignored",
      semctl(id, 99, GETALL, (union semun){.array = (unsigned short[3]){0}}));
  res("ctl.setall", setall(id, (unsigned short[]){1, 2, 3}));
  getall_line("ctl.setall.values", id, 3);
  pid_line("ctl.getpid-after-setall", id, 2, 0);
  res("ctl.setall-over", setall(id, (unsigned short[]){4, SEMVMX + 1, 6}));
  getall_line("ctl.setall-refused.values", id, 3);
  res("ctl.setall-max", setall(id, (unsigned short[]){SEMVMX, 0, SEMVMX}));
  getall_line("ctl.setall-max.values", id, 3);
  res("ctl.setall-semnum-ignored",
      semctl(id, 99, SETALL, (union semun){.array = (unsigned short[]){0, 0, 0}}));
  getall_line("ctl.setall-semnum-ignored.values", id, 3);

  /* GETNCNT, GETZCNT with nobody waiting; bad semnums. */
  val("ctl.getncnt", semctl(id, 0, GETNCNT));
  val("ctl.getzcnt", semctl(id, 2, GETZCNT));
  res("ctl.getncnt-semnum", semctl(id, 3, GETNCNT));
  res("ctl.getzcnt-semnum-neg", semctl(id, -1, GETZCNT));
  res("ctl.getpid-semnum", semctl(id, 3, GETPID));

  /* sem_otime: set by semop, not by SETVAL or SETALL. */
  show_ds("ctl.before-op.ds", id);
  res("ctl.op", op1(id, 0, 1, 0));
  show_ds("ctl.after-op.ds", id);

  /* Unknown commands and bad ids. */
  res("ctl.cmd-99", semctl(id, 0, 99));
  res("ctl.cmd-5", semctl(id, 0, 5));
  res("ctl.cmd-neg", semctl(id, 0, -1));
  res("ctl.cmd-99-neg-id", semctl(-1, 0, 99));
  res("ctl.id-neg", semctl(-1, 0, IPC_STAT, (union semun){.buf = &ds}));
  res("ctl.id-neg-info", semctl(-1, 0, IPC_INFO, (union semun){.__buf = &si}));
  res("ctl.bad-id", semctl(BAD_ID, 0, IPC_STAT, (union semun){.buf = &ds}));
  res("ctl.bad-id-getval", getval(BAD_ID, 0));
  res("ctl.bad-id-getall",
      semctl(BAD_ID, 0, GETALL, (union semun){.array = (unsigned short[3]){0}}));
  res("ctl.bad-id-rmid", semctl(BAD_ID, 0, IPC_RMID));

  /* IPC_INFO and SEM_INFO: the limits, the highest index in use; SEM_INFO counts the sets
   * (semusz) and their semaphores (semaem). */
  other = mk(IPC_PRIVATE, 5, 0600);
  idx = find_index(id);
  memset(&si, 0xff, sizeof si);
  max = semctl(0, 0, IPC_INFO, (union semun){.__buf = &si});
  info_lines("ctl.ipc-info", max, idx, &si);
  if (max >= 0)
    line("ctl.ipc-info.fixed: semusz=%d semaem=%d", si.semusz, si.semaem);
  memset(&si, 0xff, sizeof si);
  r = semctl(0, 0, SEM_INFO, (union semun){.__buf = &si});
  info_lines("ctl.sem-info", r, idx, &si);
  if (r >= 0)
    line("ctl.sem-info.usage: semusz>=2=%d semaem>=8=%d", si.semusz >= 2, si.semaem >= 8);
  res("ctl.info-semid-ignored", semctl(12345, 7, IPC_INFO, (union semun){.__buf = &si}));

  /* SEM_STAT and SEM_STAT_ANY take an index and return the set's id. */
  line("ctl.index: %s", idx >= 0 ? "found" : "not found");
  memset(&ds, 0, sizeof ds);
  r = semctl(idx, 0, SEM_STAT, (union semun){.buf = &ds});
  line("ctl.sem-stat: %s", r < 0 ? ename(errno) : (r == id ? "same id" : "other id"));
  fmt_ds("ctl.sem-stat.ds", &ds);
  memset(&ds, 0, sizeof ds);
  r = semctl(idx, 0, SEM_STAT_ANY, (union semun){.buf = &ds});
  line("ctl.sem-stat-any: %s", r < 0 ? ename(errno) : (r == id ? "same id" : "other id"));
  fmt_ds("ctl.sem-stat-any.ds", &ds);
  res("ctl.sem-stat-free", semctl(max + 1, 0, SEM_STAT, (union semun){.buf = &ds}));
  res("ctl.sem-stat-any-free", semctl(max + 1, 0, SEM_STAT_ANY, (union semun){.buf = &ds}));
  res("ctl.sem-stat-neg", semctl(-1, 0, SEM_STAT, (union semun){.buf = &ds}));

  /* IPC_RMID (semnum ignored); afterwards the id is gone for every call. */
  res("ctl.rmid", rmid_num(id, 99));
  res("ctl.rmid-again", rmid(id));
  res("ctl.removed-stat", stat_of(id, &ds));
  res("ctl.removed-set", ipcset(id, &ds));
  res("ctl.removed-getval", getval(id, 0));
  res("ctl.removed-setval", setval(id, 0, 1));
  res("ctl.removed-setval-range", setval(id, 0, -1));
  res("ctl.removed-getall", semctl(id, 0, GETALL, (union semun){.array = (unsigned short[3]){0}}));
  res("ctl.removed-setall", setall(id, (unsigned short[]){0, 0, 0}));
  res("ctl.removed-getncnt", semctl(id, 0, GETNCNT));
  res("ctl.removed-op", op1(id, 0, 1, 0));
  res("ctl.removed-key", semget(base_key + 2, 0, 0));
  res("ctl.removed-sem-stat", semctl(idx, 0, SEM_STAT_ANY, (union semun){.buf = &ds}));
  rmid(other);
}

static void case_op(void) {
  int a = mk(IPC_PRIVATE, 3, 0600), b = mk(IPC_PRIVATE, 1, 0600), c = mk(IPC_PRIVATE, 1, 0600);
  int gone, r;
  struct sembuf *many;
  long t;

  /* One at a time. */
  show_ds("op.fresh.ds", a);
  res("op.inc", semop(a, OPS({0, 2, 0})));
  val("op.inc.val", getval(a, 0));
  res("op.dec", semop(a, OPS({0, -1, 0})));
  res("op.dec-nowait", semop(a, OPS({0, -1, IPC_NOWAIT})));
  res("op.dec-empty-nowait", semop(a, OPS({0, -1, IPC_NOWAIT})));
  val("op.dec.val", getval(a, 0));
  show_ds("op.after.ds", a);
  pid_line("op.getpid", a, 0, 0);
  pid_line("op.getpid-untouched", a, 1, 0);
  /* A failing operation sets neither sempid nor sem_otime. */
  res("op.fail", semop(b, OPS({0, -1, IPC_NOWAIT})));
  show_ds("op.fail.ds", b);
  pid_line("op.fail.getpid", b, 0, 0);
  /* Wait-for-zero that goes at once sets both. */
  res("op.zero", semop(c, OPS({0, 0, 0})));
  show_ds("op.zero.ds", c);
  pid_line("op.zero.getpid", c, 0, 0);
  setval(c, 0, 1);
  res("op.zero-nonzero-nowait", semop(c, OPS({0, 0, IPC_NOWAIT})));

  /* Several operations: all or none. */
  res("op.multi", semop(a, OPS({0, 1, 0}, {1, 2, 0}, {2, 3, 0})));
  getall_line("op.multi.values", a, 3);
  res("op.atomic-eagain", semop(a, OPS({0, -1, 0}, {1, -1, 0}, {2, -4, IPC_NOWAIT})));
  getall_line("op.atomic-eagain.values", a, 3);
  res("op.atomic-erange", semop(a, OPS({0, 1, 0}, {2, SEMVMX, 0})));
  getall_line("op.atomic-erange.values", a, 3);
  res("op.atomic-efbig", semop(a, OPS({0, 1, 0}, {3, 1, 0})));
  getall_line("op.atomic-efbig.values", a, 3);
  /* In array order: the first operation that cannot go decides the error. */
  setall(a, (unsigned short[]){0, SEMVMX, 0});
  res("op.order-eagain-first", semop(a, OPS({0, -1, IPC_NOWAIT}, {1, 1, 0})));
  res("op.order-erange-first", semop(a, OPS({1, 1, 0}, {0, -1, IPC_NOWAIT})));
  getall_line("op.order.values", a, 3);
  /* One semaphore twice: each operation sees the value the one before left. */
  setall(a, (unsigned short[]){1, 0, 0});
  res("op.same-inc-dec", semop(a, OPS({0, 1, 0}, {0, -2, 0})));
  getall_line("op.same-inc-dec.values", a, 3);
  res("op.same-dec-inc", semop(a, OPS({0, -1, IPC_NOWAIT}, {0, 1, 0})));
  res("op.same-zero-inc", semop(a, OPS({0, 0, 0}, {0, 1, 0})));
  getall_line("op.same-zero-inc.values", a, 3);
  res("op.same-inc-zero", semop(a, OPS({0, 1, 0}, {0, 0, IPC_NOWAIT})));
  res("op.same-dec-zero", semop(a, OPS({0, -1, 0}, {0, 0, 0})));
  getall_line("op.same.values", a, 3);

  /* SEMVMX. */
  setval(a, 0, SEMVMX);
  res("op.over-semvmx", semop(a, OPS({0, 1, 0})));
  res("op.over-semvmx-nowait", semop(a, OPS({0, 1, IPC_NOWAIT})));
  res("op.dec-min-nowait", semop(a, OPS({0, -32768, IPC_NOWAIT})));
  res("op.dec-all", semop(a, OPS({0, -SEMVMX, 0})));
  res("op.inc-max", semop(a, OPS({1, SEMVMX, 0})));
  getall_line("op.semvmx.values", a, 3);
  setall(a, (unsigned short[]){0, 0, 0});

  /* E2BIG, EINVAL, EFBIG, and which comes first. */
  many = calloc((size_t)lim_opm + 1, sizeof *many); /* all wait-for-zero on semaphore 0 */
  if (many == NULL)
    fatal("calloc");
  res("op.nsops-max", semop(a, many, (size_t)lim_opm));
  res("op.nsops-over", semop(a, many, (size_t)lim_opm + 1));
  res("op.nsops-over-bad-id", semop(BAD_ID, many, (size_t)lim_opm + 1));
  res("op.nsops-over-neg-id", semop(-1, many, (size_t)lim_opm + 1));
  res("op.nsops0", semop(a, many, 0));
  res("op.nsops0-neg-id", semop(-1, many, 0));
  res("op.nsops0-bad-id", semop(BAD_ID, many, 0));
  res("op.neg-id", semop(-1, OPS({0, 1, 0})));
  res("op.bad-id", semop(BAD_ID, OPS({0, 1, 0})));
  res("op.semnum-nsems", semop(a, OPS({3, 1, 0})));
  res("op.semnum-max", semop(a, OPS({65535, 1, 0})));
  res("op.semnum-zero-op", semop(a, OPS({3, 0, 0})));
  res("op.semnum-bad-id", semop(BAD_ID, OPS({3, 1, 0})));
  gone = mk(IPC_PRIVATE, 1, 0600);
  rmid(gone);
  res("op.removed", semop(gone, OPS({0, 1, 0})));
  getall_line("op.refused.values", a, 3);

  /* semtimedop. */
  t = now_ms();
  r = timed(b, OPS({0, -1, 0}), 0, 100000000L);
  line("op.timed-expires: %s waited>=90ms=%d", r < 0 ? ename(errno) : "ok", now_ms() - t >= 90);
  res("op.timed-zero", timed(b, OPS({0, -1, 0}), 0, 0));
  res("op.timed-null", semtimedop(b, OPS({0, 1, 0}), NULL));
  res("op.timed-at-once", timed(b, OPS({0, -1, 0}), 1, 0));
  res("op.timed-nsec-1e9", timed(b, OPS({0, 1, 0}), 0, 1000000000L));
  res("op.timed-nsec-neg", timed(b, OPS({0, 1, 0}), 0, -1));
  res("op.timed-sec-neg", timed(b, OPS({0, 1, 0}), -1, 0));
  val("op.timed-invalid.val", getval(b, 0));
  res("op.timed-invalid-efbig", timed(b, OPS({5, 1, 0}), 0, 1000000000L));
  res("op.timed-invalid-e2big", timed(b, many, (size_t)lim_opm + 1, 0, 1000000000L));
  res("op.timed-invalid-nsops0", timed(b, many, 0, 0, 1000000000L));
  free(many);
  rmid(a);
  rmid(b);
  rmid(c);
}

/* Blocking: waiters in children, woken by the parent, a signal or IPC_RMID. */
static void case_wait(void) {
  int id = mk(IPC_PRIVATE, 2, 0600), g, which;
  struct kid a, b, c;
  char sb[32];

  /* A decrement that blocks, completed by another process. */
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}));
  cnt_line("wait.dec.ncnt", id, 0, GETNCNT, 1);
  val("wait.dec.zcnt", semctl(id, 0, GETZCNT));
  res("wait.dec.post", op1(id, 0, 1, 0));
  kid_say("wait.dec", &a);
  val("wait.dec.val", getval(id, 0));
  pid_line("wait.dec.getpid", id, 0, a.pid);
  cnt_line("wait.dec.ncnt-after", id, 0, GETNCNT, 0);
  kid_end(&a, 0);

  /* Wait-for-zero. */
  setval(id, 0, 1);
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, 0, 0}}));
  cnt_line("wait.zero.zcnt", id, 0, GETZCNT, 1);
  val("wait.zero.ncnt", semctl(id, 0, GETNCNT));
  res("wait.zero.take", op1(id, 0, -1, 0));
  kid_say("wait.zero", &a);
  pid_line("wait.zero.getpid", id, 0, a.pid);
  kid_end(&a, 0);

  /* One waiting for zero and one for more, on the same semaphore. */
  setval(id, 0, 1);
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, 0, 0}}));
  cnt_line("wait.both.zcnt", id, 0, GETZCNT, 1);
  start(&b, JOB(.id = id, .nops = 1, .ops = {{0, -2, 0}}));
  cnt_line("wait.both.ncnt", id, 0, GETNCNT, 1);
  res("wait.both.take", op1(id, 0, -1, 0));
  kid_say("wait.both.zero", &a);
  cnt_line("wait.both.ncnt-still", id, 0, GETNCNT, 1);
  res("wait.both.post", op1(id, 0, 2, 0));
  kid_say("wait.both.dec", &b);
  getall_line("wait.both.values", id, 2);
  kid_end(&a, 0);
  kid_end(&b, 0);

  /* Two equal waiters: who is served first. */
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}));
  cnt_line("wait.fifo.ncnt-a", id, 0, GETNCNT, 1);
  start(&b, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}));
  cnt_line("wait.fifo.ncnt-b", id, 0, GETNCNT, 2);
  res("wait.fifo.post", op1(id, 0, 1, 0));
  first_line("wait.fifo.first", &a, &b, &which);
  cnt_line("wait.fifo.ncnt", id, 0, GETNCNT, 1);
  res("wait.fifo.post2", op1(id, 0, 1, 0));
  if (which >= 0)
    kid_say("wait.fifo.second", which == 0 ? &b : &a);
  getall_line("wait.fifo.values", id, 2);
  kid_end(&a, 0);
  kid_end(&b, 0);

  /* A bigger request first: does it hold back a smaller one that could go? */
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -2, 0}}));
  cnt_line("wait.sizes.ncnt-a", id, 0, GETNCNT, 1);
  start(&b, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}));
  cnt_line("wait.sizes.ncnt-b", id, 0, GETNCNT, 2);
  res("wait.sizes.post", op1(id, 0, 1, 0));
  first_line("wait.sizes.first", &a, &b, &which);
  cnt_line("wait.sizes.ncnt", id, 0, GETNCNT, 1);
  res("wait.sizes.post2", op1(id, 0, 2, 0));
  if (which >= 0)
    kid_say("wait.sizes.second", which == 0 ? &b : &a);
  getall_line("wait.sizes.values", id, 2);
  kid_end(&a, 0);
  kid_end(&b, 0);

  /* A waiter on two semaphores is counted where it blocks. */
  setall(id, (unsigned short[]){0, 0});
  start(&a, JOB(.id = id, .nops = 2, .ops = {{0, -1, 0}, {1, -1, 0}}));
  cnt_line("wait.multi.ncnt0", id, 0, GETNCNT, 1);
  val("wait.multi.ncnt1", semctl(id, 1, GETNCNT));
  res("wait.multi.post0", op1(id, 0, 1, 0));
  cnt_line("wait.multi.ncnt1-after", id, 1, GETNCNT, 1);
  val("wait.multi.ncnt0-after", semctl(id, 0, GETNCNT));
  getall_line("wait.multi.values-half", id, 2);
  res("wait.multi.post1", op1(id, 1, 1, 0));
  kid_say("wait.multi", &a);
  getall_line("wait.multi.values", id, 2);
  kid_end(&a, 0);

  /* A chain: the first waiter's operation lets the second go. */
  start(&a, JOB(.id = id, .nops = 2, .ops = {{0, -1, 0}, {1, 1, 0}}));
  cnt_line("wait.chain.ncnt0", id, 0, GETNCNT, 1);
  start(&b, JOB(.id = id, .nops = 1, .ops = {{1, -1, 0}}));
  cnt_line("wait.chain.ncnt1", id, 1, GETNCNT, 1);
  res("wait.chain.post", op1(id, 0, 1, 0));
  kid_say("wait.chain.a", &a);
  kid_say("wait.chain.b", &b);
  getall_line("wait.chain.values", id, 2);
  kid_end(&a, 0);
  kid_end(&b, 0);

  /* IPC_NOWAIT counts on the operation that would block, not on the others. */
  setall(id, (unsigned short[]){1, 0});
  start(&a, JOB(.id = id, .nops = 2, .ops = {{0, -1, IPC_NOWAIT}, {1, -1, 0}}));
  cnt_line("wait.nowait-elsewhere.ncnt1", id, 1, GETNCNT, 1);
  res("wait.nowait-elsewhere.post", op1(id, 1, 1, 0));
  kid_say("wait.nowait-elsewhere", &a);
  getall_line("wait.nowait-elsewhere.values", id, 2);
  kid_end(&a, 0);
  setall(id, (unsigned short[]){1, 0});
  start(&a, JOB(.id = id, .nops = 2, .ops = {{0, -1, 0}, {1, -1, IPC_NOWAIT}}));
  kid_say("wait.nowait-on-blocker", &a);
  getall_line("wait.nowait-on-blocker.values", id, 2);
  kid_end(&a, 0);

  /* SETVAL and SETALL wake waiters. */
  setall(id, (unsigned short[]){0, 0});
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}));
  cnt_line("wait.setval.ncnt", id, 0, GETNCNT, 1);
  res("wait.setval.set", setval(id, 0, 1));
  kid_say("wait.setval", &a);
  val("wait.setval.val", getval(id, 0));
  kid_end(&a, 0);
  setval(id, 1, 1);
  start(&a, JOB(.id = id, .nops = 1, .ops = {{1, 0, 0}}));
  cnt_line("wait.setall.zcnt", id, 1, GETZCNT, 1);
  res("wait.setall.set", setall(id, (unsigned short[]){0, 0}));
  kid_say("wait.setall", &a);
  kid_end(&a, 0);

  /* Signals: a handler interrupts it, SA_RESTART or not; an ignored signal does not. */
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}, .sig = 'h'));
  cnt_line("wait.eintr.ncnt", id, 0, GETNCNT, 1);
  kill(a.pid, SIGUSR1);
  kid_say("wait.eintr", &a);
  cnt_line("wait.eintr.ncnt-after", id, 0, GETNCNT, 0);
  kid_end(&a, 0);
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}, .sig = 'r'));
  cnt_line("wait.eintr-restart.ncnt", id, 0, GETNCNT, 1);
  kill(a.pid, SIGUSR1);
  kid_say("wait.eintr-restart", &a);
  kid_end(&a, 0);
  setval(id, 0, 1);
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, 0, 0}}, .sig = 'h'));
  cnt_line("wait.eintr-zero.zcnt", id, 0, GETZCNT, 1);
  kill(a.pid, SIGUSR1);
  kid_say("wait.eintr-zero", &a);
  kid_end(&a, 0);
  setval(id, 0, 0);
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}, .timed = 1, .to_ms = 10000, .sig = 'h'));
  cnt_line("wait.eintr-timed.ncnt", id, 0, GETNCNT, 1);
  kill(a.pid, SIGUSR1);
  kid_say("wait.eintr-timed", &a);
  kid_end(&a, 0);
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}, .sig = 'i'));
  cnt_line("wait.ignored.ncnt", id, 0, GETNCNT, 1);
  kill(a.pid, SIGUSR1);
  res("wait.ignored.post", op1(id, 0, 1, 0));
  kid_say("wait.ignored", &a);
  val("wait.ignored.val", getval(id, 0));
  kid_end(&a, 0);

  /* A waiter killed: it is no longer counted, and takes nothing. */
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}));
  cnt_line("wait.killed.ncnt", id, 0, GETNCNT, 1);
  line("wait.killed: %s", status_str(kid_end(&a, 1), sb, sizeof sb));
  cnt_line("wait.killed.ncnt-after", id, 0, GETNCNT, 0);
  res("wait.killed.post", op1(id, 0, 1, 0));
  val("wait.killed.val", getval(id, 0));
  setval(id, 0, 0);

  /* semtimedop: woken in time, or the time runs out. */
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}, .timed = 1, .to_ms = 10000));
  cnt_line("wait.timed.ncnt", id, 0, GETNCNT, 1);
  res("wait.timed.post", op1(id, 0, 1, 0));
  kid_say("wait.timed", &a);
  kid_end(&a, 0);
  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}, .timed = 1, .to_ms = 200));
  kid_say("wait.timed-expires", &a);
  cnt_line("wait.timed-expires.ncnt", id, 0, GETNCNT, 0);
  kid_end(&a, 0);

  /* IPC_RMID wakes every waiter with EIDRM. */
  g = mk(IPC_PRIVATE, 2, 0600);
  setval(g, 1, 1);
  start(&a, JOB(.id = g, .nops = 1, .ops = {{0, -1, 0}}));
  cnt_line("wait.rmid.ncnt-a", g, 0, GETNCNT, 1);
  start(&b, JOB(.id = g, .nops = 1, .ops = {{1, 0, 0}}));
  cnt_line("wait.rmid.zcnt-b", g, 1, GETZCNT, 1);
  start(&c, JOB(.id = g, .nops = 1, .ops = {{0, -1, 0}}, .timed = 1, .to_ms = 10000));
  cnt_line("wait.rmid.ncnt-c", g, 0, GETNCNT, 2);
  res("wait.rmid", rmid(g));
  kid_say("wait.rmid.dec", &a);
  kid_say("wait.rmid.zero", &b);
  kid_say("wait.rmid.timed", &c);
  kid_end(&a, 0);
  kid_end(&b, 0);
  kid_end(&c, 0);
  rmid(id);
}

/* SIGSTOP then SIGCONT, no handler: the kernel's semop fails with EINTR (signal(7)). Its own
 * section: under dshm a waiting semop is not interrupted by a stop (docs/compatibility.md,
 * "Known differences"), so the differential suite leaves it out. */
static void case_stop(void) {
  int id = mk(IPC_PRIVATE, 1, 0600), st;
  struct kid a;

  start(&a, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}));
  cnt_line("wait.stop.ncnt", id, 0, GETNCNT, 1);
  kill(a.pid, SIGSTOP);
  {
    long end = now_ms() + ANSWER_MS;
    pid_t r;
    st = 0;
    while ((r = waitpid(a.pid, &st, WNOHANG | WUNTRACED)) == 0 && now_ms() < end)
      nap_ms(1);
    line("wait.stop: %s", r == a.pid && WIFSTOPPED(st) ? "stopped" : "not stopped");
  }
  cnt_line("wait.stop.ncnt-stopped", id, 0, GETNCNT, 0);
  kill(a.pid, SIGCONT);
  kid_say("wait.stop-cont", &a);
  kid_end(&a, 0);
}

/* SEM_UNDO: adjustments applied at exit (normal or killed), cleared by SETVAL/SETALL,
 * clamped to [0, SEMVMX], not inherited by fork, kept across execve, bounded by SEMAEM. */
static void case_undo(void) {
  int id = mk(IPC_PRIVATE, 2, 0600), r2 = mk(IPC_PRIVATE, 1, 0600), g;
  struct kid a, b;
  char ib[16], sb[32];
  pid_t pid;
  int v;

  setval(id, 0, 5);
  kid_start(&a, job_semop, JOB(.id = id, .nops = 1, .ops = {{0, -1, SEM_UNDO}}, .hold = 1));
  kid_say("undo.exit.op", &a);
  val("undo.exit.during", getval(id, 0));
  kid_end_line("undo.exit", &a, 0);
  val("undo.exit.after", getval(id, 0));
  pid_line("undo.exit.getpid", id, 0, a.pid);

  kid_start(&a, job_semop, JOB(.id = id, .nops = 1, .ops = {{0, 1, SEM_UNDO}}, .hold = 1));
  kid_say("undo.kill.op", &a);
  val("undo.kill.during", getval(id, 0));
  kid_end_line("undo.kill", &a, 1);
  val("undo.kill.after", getval(id, 0));

  /* SETVAL clears the adjustments of the semaphore it sets, not of the others. */
  setall(id, (unsigned short[]){5, 0});
  kid_start(&a, job_semop,
            JOB(.id = id, .nops = 2, .ops = {{0, 1, SEM_UNDO}, {1, 1, SEM_UNDO}}, .hold = 1));
  kid_say("undo.setval.op", &a);
  res("undo.setval.set", setval(id, 0, 3));
  kid_end_line("undo.setval", &a, 0);
  getall_line("undo.setval.after", id, 2);
  /* SETALL clears them all. */
  kid_start(&a, job_semop,
            JOB(.id = id, .nops = 2, .ops = {{0, 1, SEM_UNDO}, {1, 1, SEM_UNDO}}, .hold = 1));
  kid_say("undo.setall.op", &a);
  res("undo.setall.set", setall(id, (unsigned short[]){2, 2}));
  kid_end_line("undo.setall", &a, 0);
  getall_line("undo.setall.after", id, 2);

  /* Clamped at 0 and at SEMVMX. */
  setall(id, (unsigned short[]){0, 0});
  kid_start(&a, job_semop, JOB(.id = id, .nops = 1, .ops = {{0, 2, SEM_UNDO}}, .hold = 1));
  kid_say("undo.clamp0.op", &a);
  res("undo.clamp0.take", op1(id, 0, -1, 0));
  kid_end_line("undo.clamp0", &a, 0);
  val("undo.clamp0.after", getval(id, 0));
  setval(id, 0, 1);
  kid_start(&a, job_semop, JOB(.id = id, .nops = 1, .ops = {{0, -1, SEM_UNDO}}, .hold = 1));
  kid_say("undo.clamp-max.op", &a);
  res("undo.clamp-max.post", op1(id, 0, SEMVMX, 0));
  kid_end_line("undo.clamp-max", &a, 0);
  val("undo.clamp-max.after", getval(id, 0));

  /* A blocked operation with SEM_UNDO, completed later: its adjustment counts. */
  setval(id, 0, 0);
  kid_start(&a, job_semop, JOB(.id = id, .nops = 1, .ops = {{0, -1, SEM_UNDO}}, .hold = 1));
  cnt_line("undo.blocked.ncnt", id, 0, GETNCNT, 1);
  res("undo.blocked.post", op1(id, 0, 1, 0));
  kid_say("undo.blocked.op", &a);
  val("undo.blocked.during", getval(id, 0));
  kid_end_line("undo.blocked", &a, 0);
  val("undo.blocked.after", getval(id, 0));

  /* The undo at exit wakes a waiter. */
  setval(id, 0, 1);
  kid_start(&a, job_semop, JOB(.id = id, .nops = 1, .ops = {{0, -1, SEM_UNDO}}, .hold = 1));
  kid_say("undo.wakes.op", &a);
  start(&b, JOB(.id = id, .nops = 1, .ops = {{0, -1, 0}}));
  cnt_line("undo.wakes.ncnt", id, 0, GETNCNT, 1);
  kid_end_line("undo.wakes.exit", &a, 0);
  kid_say("undo.wakes", &b);
  val("undo.wakes.val", getval(id, 0));
  pid_line("undo.wakes.getpid", id, 0, b.pid);
  kid_end(&b, 0);

  /* fork: the child's adjustments are its own. */
  setval(id, 0, 0);
  kid_start(&a, job_undo_fork, JOB(.id = id));
  v = kid_answer(&a);
  if (v >= 0)
    line("undo.fork.after-grandchild: ok %d", v);
  else
    line("undo.fork.after-grandchild: %s", v == KID_LATE || v == KID_NONE ? answer_str(v)
                                                                          : ename(-v));
  kid_end_line("undo.fork", &a, 0);
  val("undo.fork.after", getval(id, 0));

  /* execve: the adjustments stay with the process. */
  setval(id, 0, 0);
  fflush(stdout);
  pid = fork();
  if (pid < 0)
    fatal("fork");
  if (pid == 0) {
    alarm(KID_ALARM);
    if (op1(id, 0, 1, SEM_UNDO) < 0)
      _exit(2);
    execv(self_exe, (char *[]){"semprobe", "-c", "undo-exec", num(ib, sizeof ib, id), NULL});
    _exit(127);
  }
  line("undo.exec: %s", status_str(reap(pid, 0), sb, sizeof sb));
  val("undo.exec.after", getval(id, 0));

  /* The set removed while a process holds an adjustment on it. */
  g = mk(IPC_PRIVATE, 1, 0600);
  kid_start(&a, job_semop, JOB(.id = g, .nops = 1, .ops = {{0, 1, SEM_UNDO}}, .hold = 1));
  kid_say("undo.rmid.op", &a);
  res("undo.rmid", rmid(g));
  kid_end_line("undo.rmid.exit", &a, 0);

  /* The adjustment's range, SEMAEM (32767) either way, in this process. */
  res("undo.adj-max", op1(r2, 0, SEMVMX, SEM_UNDO));
  op1(r2, 0, -SEMVMX, 0);
  res("undo.adj-min", op1(r2, 0, 1, SEM_UNDO));
  op1(r2, 0, -1, 0);
  res("undo.adj-below-min", op1(r2, 0, 1, SEM_UNDO));
  val("undo.adj-below-min.val", getval(r2, 0));
  setval(r2, 0, SEMVMX);
  res("undo.adj-pos-max", op1(r2, 0, -SEMVMX, SEM_UNDO));
  op1(r2, 0, SEMVMX, 0);
  res("undo.adj-over-max", op1(r2, 0, -1, SEM_UNDO));
  val("undo.adj-over-max.val", getval(r2, 0));
  rmid(id);
  rmid(r2);
}

/* Sets root makes and an unprivileged child probes: mode, owner, group. */
static const struct {
  unsigned mode;
  uid_t uid;
  gid_t gid;
} psets[] = {
  {0600, NOBODY, 0},       /* 0: nobody owns it */
  {0600, 0, 0},            /* 1: a stranger's */
  {0640, 0, SUPPGRP},      /* 2: group read, through a supplementary group */
  {0660, 0, NOGROUP},      /* 3: group read/alter, through the primary group */
  {0604, 0, 0},            /* 4: others read */
  {0606, 0, 0},            /* 5: others read/alter */
  {0602, 0, 0},            /* 6: others alter only */
  {0620, 0, SUPPGRP},      /* 7: group alter only */
  {0400, NOBODY, 0},       /* 8: nobody owns it, read only */
  {0066, NOBODY, NOGROUP}, /* 9: nobody owns it: the owner's bits count, not the others' */
  {0000, 0, 0},            /* 10 */
  {0666, 0, 0},            /* 11: everything but ownership */
};
#define NPSETS (sizeof psets / sizeof psets[0])
#define PKEY(i) (base_key + 20 + (int)(i))

static void case_perm(void) {
  int ids[NPSETS], stray;
  struct semid_ds ds;
  char kb[16], name[32];

  for (size_t i = 0; i < NPSETS; i++) {
    ids[i] = mk(PKEY(i), 2, IPC_CREAT | 0600);
    stat_of(ids[i], &ds);
    ds.sem_perm.mode = (unsigned short)psets[i].mode;
    ds.sem_perm.uid = psets[i].uid;
    ds.sem_perm.gid = psets[i].gid;
    snprintf(name, sizeof name, "perm.setup.%zu", i);
    if (ipcset(ids[i], &ds) < 0)
      res(name, -1);
  }
  /* Root (CAP_IPC_OWNER) passes mode 0000. */
  res("perm.root-get-0000", semget(PKEY(10), 0, 0600));
  res("perm.root-getval-0000", getval(ids[10], 0));
  res("perm.root-op-0000", op1(ids[10], 0, 1, IPC_NOWAIT));
  res("perm.root-setval-0000", setval(ids[10], 0, 0));
  child("perm.unpriv", (char *[]){"unpriv", num(kb, sizeof kb, base_key), NULL});
  for (size_t i = 0; i < NPSETS; i++)
    rmid(ids[i]); /* the child removed set 0 itself */
  stray = semget(base_key + 32, 0, 0); /* the child's own, should it have failed midway */
  if (stray >= 0)
    semctl(stray, 0, IPC_RMID);
}

static void add(char *out, size_t cap, const char *tag, int rc) {
  size_t n = strlen(out);
  snprintf(out + n, cap - n, " %s=%s", tag, rc < 0 ? ename(errno) : "ok");
}

/* The set's index was not found: printed as ENXIO. */
static int no_index(void) {
  errno = ENXIO;
  return -1;
}

/* nobody, with NOGROUP and SUPPGRP, against each of psets. */
static void unpriv_set(size_t i) {
  int k = PKEY(i), id = semget(k, 0, 0), idx = id >= 0 ? find_index(id) : -1;
  struct semid_ds ds;
  char out[512] = "";

  add(out, sizeof out, "get", id);
  add(out, sizeof out, "get-r", semget(k, 0, 0400));
  add(out, sizeof out, "get-w", semget(k, 0, 0200));
  add(out, sizeof out, "get-rw", semget(k, 0, 0600));
  add(out, sizeof out, "get-creat", semget(k, 0, IPC_CREAT | 0666));
  line("np.%zu.get:%s", i, out);
  out[0] = '\0';
  add(out, sizeof out, "stat", stat_of(id, &ds));
  add(out, sizeof out, "sem-stat",
      idx < 0 ? no_index() : semctl(idx, 0, SEM_STAT, (union semun){.buf = &ds}));
  add(out, sizeof out, "sem-stat-any",
      idx < 0 ? no_index() : semctl(idx, 0, SEM_STAT_ANY, (union semun){.buf = &ds}));
  add(out, sizeof out, "getval", getval(id, 0));
  add(out, sizeof out, "getall",
      semctl(id, 0, GETALL, (union semun){.array = (unsigned short[2]){0}}));
  add(out, sizeof out, "getpid", semctl(id, 0, GETPID));
  add(out, sizeof out, "getncnt", semctl(id, 0, GETNCNT));
  add(out, sizeof out, "getzcnt", semctl(id, 0, GETZCNT));
  line("np.%zu.read:%s", i, out);
  out[0] = '\0';
  add(out, sizeof out, "zero", semop(id, OPS({0, 0, IPC_NOWAIT})));
  add(out, sizeof out, "inc", semop(id, OPS({0, 1, IPC_NOWAIT})));
  add(out, sizeof out, "dec", semop(id, OPS({0, -1, IPC_NOWAIT})));
  add(out, sizeof out, "setval", setval(id, 1, 0));
  add(out, sizeof out, "setall", setall(id, (unsigned short[]){0, 0}));
  line("np.%zu.alter:%s", i, out);
}

static int unpriv(int key0) {
  gid_t g = SUPPGRP;
  int own, stranger, all, ro, mine;
  struct semid_ds ds;

  base_key = key0;
  if (setgroups(1, &g) < 0 || setgid(NOGROUP) < 0 || setuid(NOBODY) < 0)
    return 10;
  for (size_t i = 0; i < NPSETS; i++)
    unpriv_set(i);
  own = semget(PKEY(0), 0, 0);
  stranger = semget(PKEY(1), 0, 0);
  ro = semget(PKEY(8), 0, 0);
  all = semget(PKEY(11), 0, 0);

  /* Which check comes first. */
  res("np.order.get-more-nsems", semget(PKEY(1), 3, 0));
  res("np.order.get-excl", semget(PKEY(1), 0, IPC_CREAT | IPC_EXCL | 0600));
  res("np.order.get-creat", semget(PKEY(1), 0, IPC_CREAT | 0600));
  res("np.order.get-over", semget(PKEY(1), lim_msl + 1, 0600));
  res("np.order.op-efbig", semop(stranger, OPS({2, 1, IPC_NOWAIT})));
  res("np.order.op-nsops0", semop(stranger, (struct sembuf[1]){{0, 1, IPC_NOWAIT}}, 0));
  res("np.order.getval-semnum", semctl(stranger, 5, GETVAL));
  res("np.order.setval-semnum", setval(stranger, 5, 1));
  res("np.order.setval-range", setval(stranger, 0, -1));
  res("np.order.setall-range", setall(stranger, (unsigned short[]){SEMVMX + 1, 0}));

  /* Ownership: IPC_SET and IPC_RMID. */
  stat_of(own, &ds);
  ds.sem_perm.mode = 0640;
  res("np.own.set", ipcset(own, &ds));
  show_ds("np.own.ds", own);
  stat_of(ro, &ds);
  ds.sem_perm.mode = 0600;
  res("np.own-readonly.set", ipcset(ro, &ds));
  show_ds("np.own-readonly.ds", ro);
  stat_of(all, &ds);
  ds.sem_perm.uid = NOBODY;
  res("np.other.set", ipcset(all, &ds));
  res("np.other.rmid", semctl(all, 0, IPC_RMID));
  memset(&ds, 0, sizeof ds);
  ds.sem_perm.uid = NOBODY;
  ds.sem_perm.gid = NOGROUP;
  ds.sem_perm.mode = 0666;
  res("np.stranger.set", ipcset(stranger, &ds));
  res("np.stranger.rmid", semctl(stranger, 0, IPC_RMID));
  res("np.own.rmid", semctl(own, 0, IPC_RMID));

  /* Sets of nobody's own. */
  mine = semget(IPC_PRIVATE, 2, 0600);
  res("np.create", mine);
  show_ds("np.create.ds", mine);
  res("np.create.op", op1(mine, 0, 1, 0));
  pid_line("np.create.getpid", mine, 0, 0);
  res("np.create.rmid", semctl(mine, 0, IPC_RMID));
  mine = semget(base_key + 32, 1, IPC_CREAT | IPC_EXCL | 0640);
  res("np.create-key", mine);
  show_ds("np.create-key.ds", mine);
  res("np.create-key.rmid", semctl(mine, 0, IPC_RMID));
  return 0;
}

/* EFAULT, and where the kernel checks other things first. In a child of its own, so that an
 * implementation that dereferences what it should not dies alone ("efault: killed by ..."). */
static void efault_cases(int id, int gone, int idx) {
  long pg = sysconf(_SC_PAGESIZE);
  char *p = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct timespec *bad_ts = (struct timespec *)8;

  if (p == MAP_FAILED || mprotect(p, (size_t)pg, PROT_READ) < 0 ||
      mprotect(p + pg, (size_t)pg, PROT_NONE) < 0) {
    line("efault: setup failed");
    return;
  }
  res("efault.op-null", semop(id, NULL, 1));
  res("efault.op-null-nsops0", semop(id, NULL, 0));
  res("efault.op-null-e2big", semop(id, NULL, (size_t)lim_opm + 1));
  res("efault.op-null-neg-id", semop(-1, NULL, 1));
  res("efault.op-null-removed", semop(gone, NULL, 1));
  /* Operations in a read-only page (zeros: wait-for-zero on semaphore 0) are only read. */
  res("efault.op-readonly-sops", semop(id, (struct sembuf *)p, 2));
  /* The second operation on an inaccessible page. */
  res("efault.op-cross-page", semop(id, (struct sembuf *)(p + pg - sizeof(struct sembuf)), 2));
  res("efault.timed-bad-ptr", semtimedop(id, OPS({0, 1, 0}), bad_ts));
  res("efault.timed-bad-ptr-neg-id", semtimedop(-1, OPS({0, 1, 0}), bad_ts));
  res("efault.timed-bad-ptr-nsops0", semtimedop(id, (struct sembuf[1]){{0, 1, 0}}, 0, bad_ts));
  res("efault.timed-bad-ptr-null-sops", semtimedop(id, NULL, 1, bad_ts));
  res("efault.stat-null", semctl(id, 0, IPC_STAT, (union semun){.buf = NULL}));
  res("efault.stat-readonly", semctl(id, 0, IPC_STAT, (union semun){.buf = (void *)p}));
  res("efault.stat-null-removed", semctl(gone, 0, IPC_STAT, (union semun){.buf = NULL}));
  res("efault.set-null", semctl(id, 0, IPC_SET, (union semun){.buf = NULL}));
  res("efault.set-null-removed", semctl(gone, 0, IPC_SET, (union semun){.buf = NULL}));
  res("efault.set-null-neg-id", semctl(-1, 0, IPC_SET, (union semun){.buf = NULL}));
  res("efault.getall-null", semctl(id, 0, GETALL, (union semun){.array = NULL}));
  res("efault.getall-readonly", semctl(id, 0, GETALL, (union semun){.array = (void *)p}));
  res("efault.setall-null", semctl(id, 0, SETALL, (union semun){.array = NULL}));
  res("efault.setall-null-removed", semctl(gone, 0, SETALL, (union semun){.array = NULL}));
  res("efault.setall-from-readonly", semctl(id, 0, SETALL, (union semun){.array = (void *)p}));
  res("efault.info-null", semctl(0, 0, IPC_INFO, (union semun){.__buf = NULL}));
  res("efault.sem-info-null", semctl(0, 0, SEM_INFO, (union semun){.__buf = NULL}));
  res("efault.sem-stat-null", semctl(idx, 0, SEM_STAT, (union semun){.buf = NULL}));
  res("efault.sem-stat-any-null", semctl(idx, 0, SEM_STAT_ANY, (union semun){.buf = NULL}));
  res("efault.setval-ignores-pointer", semctl(id, 1, SETVAL, (union semun){.val = 0}));
  getall_line("efault.values", id, 2);
  show_ds("efault.ds", id);
}

static void case_efault(void) {
  int id = mk(IPC_PRIVATE, 2, 0600), gone = mk(IPC_PRIVATE, 1, 0600), idx = find_index(id);
  char sb[32];
  pid_t pid;

  rmid(gone);
  fflush(stdout);
  pid = fork();
  if (pid < 0)
    fatal("fork");
  if (pid == 0) {
    alarm(KID_ALARM);
    efault_cases(id, gone, idx);
    _exit(0);
  }
  line("efault: %s", status_str(reap(pid, 0), sb, sizeof sb));
  rmid(id);
}

static int child_main(int argc, char **argv) {
  const char *c = argv[2];

  if (strcmp(c, "unpriv") == 0 && argc > 3)
    return unpriv(atoi(argv[3]));
  if (strcmp(c, "undo-exec") == 0 && argc > 3) {
    val("undo.exec.in-new-image", getval(atoi(argv[3]), 0));
    return 0;
  }
  return 99;
}

static void limits(void) {
  struct seminfo si;
  long p[4];

  if (semctl(0, 0, IPC_INFO, (union semun){.__buf = &si}) >= 0) {
    lim_msl = si.semmsl;
    lim_opm = si.semopm;
  } else if (read_proc_sem(p) == 0) {
    lim_msl = (int)p[0];
    lim_opm = (int)p[2];
  }
}

int main(int argc, char **argv) {
  const char *sec = argc > 2 ? argv[2] : "all";
  int all = strcmp(sec, "all") == 0;

  setvbuf(stdout, NULL, _IOLBF, 0);
  t0 = time(NULL) - 1;
  limits();
  if (argc >= 3 && strcmp(argv[1], "-c") == 0)
    return child_main(argc, argv);
  if (argc < 2 || argc > 3 || atoi(argv[1]) <= 0) {
    fprintf(stderr, "usage: semprobe KEY [all|get|ctl|op|wait|stop|undo|perm|efault]\n");
    return 2;
  }
  base_key = atoi(argv[1]);
  main_pid = getpid();
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, on_term);
  signal(SIGTERM, on_term);
  atexit(rm_all);
  line("root: %s", geteuid() == 0 ? "yes" : "no");
  if (all || strcmp(sec, "get") == 0)
    case_get();
  if (all || strcmp(sec, "ctl") == 0)
    case_ctl();
  if (all || strcmp(sec, "op") == 0)
    case_op();
  if (all || strcmp(sec, "wait") == 0)
    case_wait();
  if (all || strcmp(sec, "stop") == 0)
    case_stop();
  if (all || strcmp(sec, "undo") == 0)
    case_undo();
  if ((all || strcmp(sec, "perm") == 0) && geteuid() == 0)
    case_perm();
  if (all || strcmp(sec, "efault") == 0)
    case_efault();
  line("done");
  return 0;
}
