/* shm_bench: a plain SysV shared-memory program that measures faults, write ping-pong, sequential reads, SysV call times, process-shared locks and waits, first touches, readers' memory and revocations (run natively or under the dshm shim). */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <semaphore.h>
#include <pthread.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"

extern char **environ;

#define BENCH_PAGE 4096u

/* The knobs, with defaults that keep a dshm run of "all" well under a minute. */
struct shm_opts {
  size_t seg_bytes;     /* size of the filled segment (fault and seqread) */
  unsigned stride;      /* pages between two touches in the fault test */
  unsigned rounds;      /* attach/detach rounds in the fault test; round 0 is warm-up */
  unsigned pp_iters;    /* measured ping-pong round trips */
  unsigned pp_warmup;   /* unmeasured ping-pong round trips before them */
  unsigned nproc;       /* processes: mem readers, revoke holders */
};

static const struct shm_opts shm_defaults = {
  .seg_bytes = 64u << 20,
  .stride = 64,
  .rounds = 9,
  .pp_iters = 2000,
  .pp_warmup = 200,
  .nproc = 4,
};

/* The one page two processes bounce between them. */
struct pp_page {
  _Atomic uint32_t turn;  /* 1: B's move, 0: A's move */
  _Atomic uint32_t ready; /* B sets it once attached */
};

static int die_errno(const char *what) {
  fprintf(stderr, "shm_bench: %s: %s\n", what, strerror(errno));
  return 1;
}

/* Word i of the filled segment holds i, so every reader can check what it got. */
static uint64_t expected_sum(size_t nwords) {
  uint64_t n = nwords;
  return n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
}

static int cmd_fill(key_t key, const struct shm_opts *o) {
  int id = shmget(key, o->seg_bytes, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0)
    return die_errno("fill: shmget");
  uint64_t t0 = bench_now_ns();
  uint64_t *w = shmat(id, NULL, 0);
  if (w == (void *)-1)
    return die_errno("fill: shmat");
  size_t n = o->seg_bytes / sizeof(*w);
  for (size_t i = 0; i < n; i++)
    w[i] = i;
  /* Detaching is part of the cost: under dshm it writes the dirty pages back. */
  if (shmdt(w) < 0)
    return die_errno("fill: shmdt");
  uint64_t t1 = bench_now_ns();
  printf("result fill_MBps value=%.1f bytes=%zu\n", bench_mbps(o->seg_bytes, t1 - t0),
         o->seg_bytes);
  return 0;
}

/* One touch of the fault test: read a word of page, timing it if timed. */
struct touch {
  size_t page;
  int timed;
};

/* Scattered faults: one word on every stride-th page. A stride of 64 pages (256 KiB)
 * is beyond the kernel's fault-around window (64 KiB) and any read-ahead, so every
 * touch is a fault; under dshm each fault also carries the shim's read-ahead (the
 * pages after it that are not held yet). */
static size_t plan_scattered(struct touch *t, size_t npages, unsigned stride, unsigned r,
                             uintptr_t base) {
  (void)base;
  size_t n = 0;
  for (size_t pg = (r * 7u) % stride; pg < npages; pg += stride)
    t[n++] = (struct touch){pg, 1};
  return n;
}

/* Isolated faults: the timed page's successor is touched first (untimed), so a
 * forward read-ahead stops at once and the timed fault fetches exactly one page.
 * The timed page is the last of a 64 KiB-aligned virtual window and the successor
 * the first of the next, so the kernel's fault-around (64 KiB, aligned) does not
 * map the timed page natively either. Blocks of 128 pages keep each block clear of
 * the previous one's read-ahead (up to 112 pages). */
#define ISO_BLOCK 128u
#define FA_PAGES 16u /* kernel fault_around_bytes / page size */
static size_t plan_isolated(struct touch *t, size_t npages, unsigned stride, unsigned r,
                            uintptr_t base) {
  (void)stride;
  size_t align = (FA_PAGES - (base / BENCH_PAGE) % FA_PAGES) % FA_PAGES;
  size_t q = 1 + r % 7; /* move around within the block from round to round */
  size_t n = 0;
  for (size_t b = 0;; b += ISO_BLOCK) {
    size_t pg = b + align + FA_PAGES * q - 1;
    if (pg + 1 >= npages)
      break;
    t[n++] = (struct touch){pg + 1, 0};
    t[n++] = (struct touch){pg, 1};
  }
  return n;
}

/* As plan_isolated, with the last page of the successor's read-ahead window touched too,
 * untimed, before the timed page. A host agent publishes the pages of a grant one by one as
 * it copies them in, so the successor's fault returns after the first of them and the timed
 * fault would otherwise wait behind the rest of that copy; this one times the fetch alone. */
#define RA_PAGES 64u /* read-ahead window: the faulting page and the 63 after it */
static size_t plan_settled(struct touch *t, size_t npages, unsigned stride, unsigned r,
                           uintptr_t base) {
  (void)stride;
  size_t align = (FA_PAGES - (base / BENCH_PAGE) % FA_PAGES) % FA_PAGES;
  size_t q = 1 + r % 7;
  size_t n = 0;
  for (size_t b = 0;; b += ISO_BLOCK) {
    size_t pg = b + align + FA_PAGES * q - 1;
    if (pg + RA_PAGES >= npages)
      break;
    t[n++] = (struct touch){pg + 1, 0};
    t[n++] = (struct touch){pg + RA_PAGES, 0};
    t[n++] = (struct touch){pg, 1};
  }
  return n;
}

typedef size_t (*plan_fn)(struct touch *t, size_t npages, unsigned stride, unsigned r,
                          uintptr_t base);

/* Runs rounds of attach, touch as planned, detach, and prints the timed touches of
 * every round but the first (warm-up). Re-attaching makes every page cold again. */
static int run_faults(int id, const char *name, plan_fn plan, unsigned rounds,
                      const struct shm_opts *o) {
  size_t npages = o->seg_bytes / BENCH_PAGE;
  struct touch *t = calloc(npages, sizeof(*t));
  double *lat = calloc(npages * rounds, sizeof(*lat));
  size_t n = 0;
  int rc = 1;
  if (!t || !lat) {
    die_errno("fault: calloc");
    goto out;
  }
  for (unsigned r = 0; r < rounds; r++) {
    const volatile uint64_t *w = shmat(id, NULL, SHM_RDONLY);
    if (w == (void *)-1) {
      die_errno("fault: shmat");
      goto out;
    }
    size_t nt = plan(t, npages, o->stride, r, (uintptr_t)w);
    for (size_t j = 0; j < nt; j++) {
      size_t word = t[j].page * (BENCH_PAGE / sizeof(uint64_t));
      uint64_t t0 = bench_now_ns();
      uint64_t v = w[word];
      uint64_t t1 = bench_now_ns();
      if (v != word) {
        fprintf(stderr, "shm_bench: %s: word %zu holds %" PRIu64 "\n", name, word, v);
        shmdt((const void *)w);
        goto out;
      }
      if (r > 0 && t[j].timed)
        lat[n++] = (double)(t1 - t0) / 1e3;
    }
    if (shmdt((const void *)w) < 0) {
      die_errno("fault: shmdt");
      goto out;
    }
  }
  bench_print_lat(name, lat, n);
  rc = 0;
out:
  free(t);
  free(lat);
  return rc;
}

static int cmd_fault(key_t key, const struct shm_opts *o) {
  int id = shmget(key, 0, 0);
  if (id < 0)
    return die_errno("fault: shmget");
  /* An isolated round times 1/128 of the pages, a scattered one 1/64: twice the
   * rounds give about as many samples. */
  int rc = run_faults(id, "fault_us", plan_isolated, 2 * o->rounds - 1, o);
  if (!rc)
    rc = run_faults(id, "fault_scattered_us", plan_scattered, o->rounds, o);
  return rc ? rc : run_faults(id, "fault_settled_us", plan_settled, o->rounds, o);
}

static int cmd_seqread(key_t key, const struct shm_opts *o) {
  int id = shmget(key, 0, 0);
  if (id < 0)
    return die_errno("seqread: shmget");
  size_t n = o->seg_bytes / sizeof(uint64_t);
  uint64_t t0 = bench_now_ns();
  const volatile uint64_t *w = shmat(id, NULL, SHM_RDONLY);
  if (w == (void *)-1)
    return die_errno("seqread: shmat");
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += w[i];
  uint64_t t1 = bench_now_ns();
  shmdt((const void *)w);
  if (sum != expected_sum(n)) {
    fprintf(stderr, "shm_bench: seqread: checksum %" PRIu64 ", want %" PRIu64 "\n", sum,
            expected_sum(n));
    return 1;
  }
  printf("result seqread_MBps value=%.1f bytes=%zu\n", bench_mbps(o->seg_bytes, t1 - t0),
         o->seg_bytes);
  return 0;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Spin until *w == v, yielding every few spins: with 2 cores the peer (or the dshm
 * server) may share our CPU, and a long spin would cost it a whole pause loop per
 * turn. Gives up after 10 s so a broken peer cannot hang the whole run. */
static int wait_for(_Atomic uint32_t *w, uint32_t v) {
  uint64_t deadline = 0;
  for (unsigned spins = 1;; spins++) {
    if (atomic_load_explicit(w, memory_order_acquire) == v)
      return 0;
    if (spins % 16 == 0)
      sched_yield();
    else
      cpu_relax();
    if (spins % 65536 == 0) {
      uint64_t now = bench_now_ns();
      if (!deadline)
        deadline = now + 10ull * 1000000000ull;
      else if (now > deadline)
        return -ETIMEDOUT;
    }
  }
}

/* Puts the two sides on different CPUs when there are two: left to itself the
 * scheduler often keeps both spinners on one CPU (each looks cache-hot), and the
 * native figure then measures yield handoffs instead of a cache-line transfer. */
static void pp_pin(int side) {
  cpu_set_t cur, one;
  if (sched_getaffinity(0, sizeof(cur), &cur) < 0 || CPU_COUNT(&cur) < 2)
    return;
  for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &cur) || seen++ != side)
      continue;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof(one), &one);
    return;
  }
}

static struct pp_page *pp_attach(key_t key, int *id) {
  /* Both sides create-or-open: which one gets there first does not matter. */
  *id = shmget(key, BENCH_PAGE, IPC_CREAT | 0600);
  if (*id < 0)
    return NULL;
  void *p = shmat(*id, NULL, 0);
  return p == (void *)-1 ? NULL : p;
}

/* Side B: answer every 1 with a 0. */
static int cmd_pp_peer(key_t key, const struct shm_opts *o) {
  int id;
  pp_pin(1);
  struct pp_page *pg = pp_attach(key, &id);
  if (!pg)
    return die_errno("pingpong peer: attach");
  atomic_store(&pg->ready, 1);
  for (unsigned i = 0; i < o->pp_warmup + o->pp_iters; i++) {
    if (wait_for(&pg->turn, 1) < 0) {
      fprintf(stderr, "shm_bench: pingpong peer: timed out at round %u\n", i);
      return 1;
    }
    atomic_store(&pg->turn, 0);
  }
  shmdt(pg);
  return 0;
}

/* The environment of a peer: ours, with every NAME=VALUE of SHM_BENCH_PEER_ENV (separated by
 * spaces) replacing or adding NAME. This is how run.sh puts a peer on another dshm host
 * (another DSHM_AGENT_DIR) while this program knows nothing of dshm. fetch's clients get
 * SHM_BENCH_CLIENT_ENV the same way, with every "{}" in it replaced by the client's number
 * (each client on a host of its own). */
struct peer_env {
  char *buf;  /* the variable, "{}" replaced, cut into its entries */
  char **env; /* NULL-terminated */
};

static void peer_env_free(struct peer_env *pe) {
  free(pe->buf);
  free(pe->env);
}

/* A copy of spec with every "{}" replaced by index (index < 0: a plain copy), or NULL. */
static char *env_subst(const char *spec, int index) {
  char num[16];
  size_t nsub = 0, nlen, len = strlen(spec);
  const char *q;

  if (index < 0)
    return strdup(spec);
  nlen = (size_t)snprintf(num, sizeof(num), "%d", index);
  for (q = strstr(spec, "{}"); q; q = strstr(q + 2, "{}"))
    nsub++;
  char *out = malloc(len + nsub * nlen + 1), *o = out;
  if (!out)
    return NULL;
  for (const char *p = spec; *p;) {
    if (p[0] == '{' && p[1] == '}') {
      memcpy(o, num, nlen);
      o += nlen;
      p += 2;
    } else {
      *o++ = *p++;
    }
  }
  *o = 0;
  return out;
}

/* var: the variable naming the additions; index: what "{}" in it stands for (< 0: none). */
static int peer_env_make(struct peer_env *pe, const char *var, int index) {
  const char *spec = getenv(var);
  size_t n = 0, k = 0, nadd = 0;
  char *add[64], *save = NULL;

  while (environ[n])
    n++;
  pe->buf = env_subst(spec ? spec : "", index);
  pe->env = calloc(n + 64 + 1, sizeof(*pe->env));
  if (!pe->buf || !pe->env) {
    peer_env_free(pe);
    *pe = (struct peer_env){NULL, NULL};
    errno = ENOMEM;
    return -1;
  }
  for (char *t = strtok_r(pe->buf, " \t\n", &save); t && nadd < 64;
       t = strtok_r(NULL, " \t\n", &save))
    if (strchr(t, '=') && t[0] != '=')
      add[nadd++] = t;
  for (size_t i = 0; i < n; i++) {
    size_t len = strcspn(environ[i], "=");
    int replaced = 0;
    for (size_t j = 0; j < nadd && !replaced; j++)
      replaced = strncmp(add[j], environ[i], len + 1) == 0;
    if (!replaced)
      pe->env[k++] = environ[i];
  }
  for (size_t j = 0; j < nadd; j++)
    pe->env[k++] = add[j];
  pe->env[k] = NULL;
  return 0;
}

/* Spawns this program with argv; with var, in the environment peer_env_make makes of it (var
 * NULL: ours); fd3 and fd4, when >= 0, become the child's descriptors 3 and 4 (a control
 * channel). */
static int spawn_bench_env(pid_t *pid, char *const argv[], const char *var, int index, int fd3,
                           int fd4) {
  posix_spawn_file_actions_t fa;
  struct peer_env pe = {NULL, NULL};
  int err;

  if (var && peer_env_make(&pe, var, index) < 0)
    return -1;
  posix_spawn_file_actions_init(&fa);
  /* Through descriptors out of the way first, so that neither dup2 can clobber the other's
   * source; dup2 clears close-on-exec. */
  if (fd3 >= 0)
    posix_spawn_file_actions_adddup2(&fa, fd3, 200);
  if (fd4 >= 0)
    posix_spawn_file_actions_adddup2(&fa, fd4, 201);
  if (fd3 >= 0) {
    posix_spawn_file_actions_adddup2(&fa, 200, 3);
    posix_spawn_file_actions_addclose(&fa, 200);
  }
  if (fd4 >= 0) {
    posix_spawn_file_actions_adddup2(&fa, 201, 4);
    posix_spawn_file_actions_addclose(&fa, 201);
  }
  err = posix_spawn(pid, "/proc/self/exe", &fa, NULL, argv, var ? pe.env : environ);
  posix_spawn_file_actions_destroy(&fa);
  peer_env_free(&pe);
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

/* As spawn_bench_env; with peer, in the peer's environment (SHM_BENCH_PEER_ENV). */
static int spawn_bench(pid_t *pid, char *const argv[], int peer, int fd3, int fd4) {
  return spawn_bench_env(pid, argv, peer ? "SHM_BENCH_PEER_ENV" : NULL, -1, fd3, fd4);
}

static int spawn_self(pid_t *pid, char *const argv[]) {
  return spawn_bench(pid, argv, 0, -1, -1);
}

static int wait_child(pid_t pid, const char *what) {
  int st;
  if (waitpid(pid, &st, 0) < 0)
    return die_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "shm_bench: %s failed (status 0x%x)\n", what, st);
    return 1;
  }
  return 0;
}

#define NOPTS 7 /* KEY and the six knobs, as a child's argv[2..8] */
#define OPTS_ARGV(a) a[0], a[1], a[2], a[3], a[4], a[5], a[6]

static void fmt_opts(char buf[][32], key_t key, const struct shm_opts *o) {
  snprintf(buf[0], 32, "%#x", (unsigned)key);
  snprintf(buf[1], 32, "%zu", o->seg_bytes);
  snprintf(buf[2], 32, "%u", o->stride);
  snprintf(buf[3], 32, "%u", o->rounds);
  snprintf(buf[4], 32, "%u", o->pp_iters);
  snprintf(buf[5], 32, "%u", o->pp_warmup);
  snprintf(buf[6], 32, "%u", o->nproc);
}

/* Runs "shm_bench CMD KEY opts..." as a fresh process (exec, never a bare fork:
 * under the shim a fork after shmat is not supported, and a fresh process is what
 * "cold" means anyway). */
static int run_phase(const char *cmd, key_t key, const struct shm_opts *o) {
  /* Says where a hung or failed run stopped. */
  fprintf(stderr, "shm_bench: phase %s\n", cmd);
  char a[NOPTS][32];
  fmt_opts(a, key, o);
  char *argv[] = {"shm_bench", (char *)cmd, OPTS_ARGV(a), NULL};
  pid_t pid;
  if (spawn_self(&pid, argv) < 0)
    return die_errno("posix_spawn");
  return wait_child(pid, cmd);
}

/* Side A: spawn B, then time A->B->A round trips on one shared word. */
static int cmd_pingpong(key_t key, const struct shm_opts *o) {
  char a[NOPTS][32];
  fmt_opts(a, key, o);
  char *argv[] = {"shm_bench", "pp-peer", OPTS_ARGV(a), NULL};
  pid_t pid;
  /* B in the peer's environment: on another host when run.sh says so. */
  if (spawn_bench(&pid, argv, 1, -1, -1) < 0)
    return die_errno("posix_spawn");
  int rc = 1, id = -1;
  pp_pin(0);
  double *lat = calloc(o->pp_iters ? o->pp_iters : 1, sizeof(*lat));
  struct pp_page *pg = pp_attach(key, &id);
  if (!lat || !pg) {
    die_errno("pingpong: attach");
    goto out;
  }
  if (wait_for(&pg->ready, 1) < 0) {
    fprintf(stderr, "shm_bench: pingpong: peer never attached\n");
    goto out;
  }
  for (unsigned i = 0; i < o->pp_warmup + o->pp_iters; i++) {
    uint64_t t0 = bench_now_ns();
    atomic_store(&pg->turn, 1);
    if (wait_for(&pg->turn, 0) < 0) {
      fprintf(stderr, "shm_bench: pingpong: timed out at round %u\n", i);
      goto out;
    }
    uint64_t t1 = bench_now_ns();
    if (i >= o->pp_warmup)
      lat[i - o->pp_warmup] = (double)(t1 - t0) / 1e3;
  }
  bench_print_lat("pingpong_us", lat, o->pp_iters);
  rc = 0;
out:
  if (rc)
    kill(pid, SIGTERM);
  if (wait_child(pid, "pingpong peer"))
    rc = 1;
  if (pg)
    shmdt(pg);
  if (id >= 0)
    shmctl(id, IPC_RMID, NULL);
  free(lat);
  return rc;
}

/* sem_t ping-pong (issue 11): A posts ping and waits on pong, B (in the peer's environment:
 * another host when run.sh says so) waits on ping and posts pong. Both sleep in sem_wait, so
 * a round is two wakes that cross hosts, against the spinning page ping-pong above. */
struct semt_page {
  sem_t ping, pong; /* made by A before it starts B */
};

static struct semt_page *semt_attach(key_t key, int *id) {
  return (struct semt_page *)pp_attach(key, id); /* one page, made or found */
}

static int semt_wait(sem_t *s) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  while (sem_timedwait(s, &until) != 0)
    if (errno != EINTR)
      return -1;
  return 0;
}

static int cmd_semt_peer(key_t key, const struct shm_opts *o) {
  int id;
  struct semt_page *pg = semt_attach(key, &id);
  if (!pg)
    return die_errno("semt peer: attach");
  for (unsigned i = 0; i < o->pp_warmup + o->pp_iters; i++) {
    if (semt_wait(&pg->ping) < 0 || sem_post(&pg->pong) < 0)
      return die_errno("semt peer: round");
  }
  shmdt(pg);
  return 0;
}

static int cmd_semt(key_t key, const struct shm_opts *o) {
  char a[NOPTS][32];
  fmt_opts(a, key, o);
  char *argv[] = {"shm_bench", "semt-peer", OPTS_ARGV(a), NULL};
  double *lat = calloc(o->pp_iters ? o->pp_iters : 1, sizeof(*lat));
  int id = -1, rc = 1;
  struct semt_page *pg = semt_attach(key, &id);
  pid_t pid = -1;

  if (!lat || !pg) {
    die_errno("semt: attach");
    goto out;
  }
  if (sem_init(&pg->ping, 1, 0) < 0 || sem_init(&pg->pong, 1, 0) < 0) {
    die_errno("semt: sem_init");
    goto out;
  }
  if (spawn_bench(&pid, argv, 1, -1, -1) < 0) {
    die_errno("posix_spawn");
    goto out;
  }
  for (unsigned i = 0; i < o->pp_warmup + o->pp_iters; i++) {
    uint64_t t0 = bench_now_ns();
    if (sem_post(&pg->ping) < 0 || semt_wait(&pg->pong) < 0) {
      fprintf(stderr, "shm_bench: semt: round %u: %s\n", i, strerror(errno));
      goto out;
    }
    uint64_t t1 = bench_now_ns();
    if (i >= o->pp_warmup)
      lat[i - o->pp_warmup] = (double)(t1 - t0) / 1e3;
  }
  bench_print_lat("semt_pingpong_us", lat, o->pp_iters);
  rc = 0;
out:
  if (rc && pid > 0)
    kill(pid, SIGTERM);
  if (pid > 0 && wait_child(pid, "semt peer"))
    rc = 1;
  if (pg)
    shmdt(pg);
  if (id >= 0)
    shmctl(id, IPC_RMID, NULL);
  free(lat);
  return rc;
}

/* A one-page segment KEY made afresh (IPC_EXCL) and attached, or NULL (said why); *id is
 * its id, or -1. fresh_page_done detaches and removes what fresh_page made. */
static void *fresh_page(key_t key, int *id, const char *what) {
  void *p;

  *id = shmget(key, BENCH_PAGE, IPC_CREAT | IPC_EXCL | 0600);
  if (*id < 0) {
    fprintf(stderr, "shm_bench: %s: shmget: %s\n", what, strerror(errno));
    return NULL;
  }
  p = shmat(*id, NULL, 0);
  if (p == (void *)-1) {
    fprintf(stderr, "shm_bench: %s: shmat: %s\n", what, strerror(errno));
    return NULL;
  }
  return p;
}

static void fresh_page_done(void *p, int id) {
  if (p != NULL)
    shmdt(p);
  if (id >= 0)
    shmctl(id, IPC_RMID, NULL);
}

/* An uncontended process-shared mutex in the segment KEY (made and removed): lock + unlock,
 * MUTEX_ITERS pairs timed together after a warm-up; ns per pair. */
#define MUTEX_ITERS 1000000u
static int cmd_mutex(key_t key) {
  int id, rc = 1;
  pthread_mutexattr_t a;
  pthread_mutex_t *m = fresh_page(key, &id, "mutex");

  if (m == NULL)
    goto out;
  if (pthread_mutexattr_init(&a) != 0 || pthread_mutexattr_setpshared(&a, 1) != 0 ||
      pthread_mutex_init(m, &a) != 0) {
    fprintf(stderr, "shm_bench: mutex: pthread_mutex_init failed\n");
    goto out;
  }
  for (unsigned i = 0; i < MUTEX_ITERS / 10; i++) { /* warm-up: the page is ours after it */
    pthread_mutex_lock(m);
    pthread_mutex_unlock(m);
  }
  uint64_t t0 = bench_now_ns();
  for (unsigned i = 0; i < MUTEX_ITERS; i++) {
    pthread_mutex_lock(m);
    pthread_mutex_unlock(m);
  }
  uint64_t t1 = bench_now_ns();
  printf("result mutex_ns value=%.1f\n", (double)(t1 - t0) / MUTEX_ITERS);
  rc = 0;
out:
  fresh_page_done(m, id);
  return rc;
}

/* A contended mutex handoff (issue 11): A and B (B in the peer's environment: another host
 * when run.sh says so) take strict turns at a process-shared PTHREAD_MUTEX_NORMAL mutex, a
 * turn word beside it in the same page. Each loops: lock; if it is its turn, flip the turn and
 * count it; unlock; until it has taken its turns.
 *
 * What makes every turn a real contended handoff, the waiter asleep in pthread_mutex_lock
 * while the other holds the lock:
 *  - the holder keeps the lock for a hold after flipping the turn (a sleep that touches nothing
 *    in the segment), so the other side, back at the lock meanwhile, finds it held and sleeps;
 *  - after every unlock a side stays off the lock for a pause shorter than the hold: glibc's
 *    mutex is not fair, and an unlocker that locks again at once nearly always beats the
 *    waiter it has just woken (it would then only find that the turn is not its own). After
 *    the pause the other side holds the lock, so this side in turn sleeps in lock.
 * Hold and pause follow the handoffs seen: 4x and 2x their moving average, the hold 1 to 50 ms.
 * The pause must outlast the other side's handoff in (microseconds natively, page transfers
 * between hosts), and the hold the pause by more than a sleep's overshoot (on this VM a sleep
 * of 25 us takes 60-200, even at a timer slack of 1 ns). Without them a spinning scheme would
 * measure polling through the lock, not a wake.
 *
 * A handoff is timed from the holder's last instant before it touches the page again to
 * unlock (so under dshm it includes the page coming back for the unlock) to the waiter's return
 * from pthread_mutex_lock; one clock serves both, run.sh's hosts being processes of one
 * machine. A round A->B->A is two handoffs; holds and pauses are outside it. Checked: the
 * count of turns at the end (a lost handoff fails) and, before each unlock, that no one else
 * took the lock meanwhile. Each side re-arms alarm() every time round: a side stuck for
 * MH_STALL_S (its peer gone) dies of SIGALRM rather than hang the run. */
#define MH_STALL_S 10
#define MH_START_NS 1000000ull /* the moving average before any handoff is seen */
#define MH_MIN_NS 1000000ull   /* bounds of the hold */
#define MH_MAX_NS 50000000ull

struct mh_page {
  pthread_mutex_t m;      /* made by A before it starts B */
  uint32_t turn;          /* whose turn: 0 A, 1 B; under m */
  uint32_t owner;         /* who took m last: 0 A, 1 B; under m */
  uint64_t count;         /* turns taken by both; under m */
  uint64_t released_ns;   /* the last turn's holder's bench_now_ns() before its unlock */
  uint64_t handoff_ns[2]; /* each side's last handoff in */
};

struct mh_tally {
  unsigned contended; /* turns whose pthread_mutex_lock found the lock held */
  unsigned empty;     /* acquisitions that were not the taker's turn */
};

static void mh_sleep(uint64_t ns) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += (time_t)(ns / 1000000000u);
  until.tv_nsec += (long)(ns % 1000000000u);
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
    ;
}

/* me: 0 for A, 1 for B. turns: this side's turns; lat (A only): the rounds after warmup. */
static int mh_run(struct mh_page *pg, uint32_t me, unsigned turns, unsigned warmup, double *lat,
                  struct mh_tally *ty) {
  uint64_t avg = MH_START_NS, hold = 4 * MH_START_NS;
  const char *who = me ? "mhandoff peer" : "mhandoff";

  prctl(PR_SET_TIMERSLACK, 1UL); /* sleeps as short as the VM gives them */

  for (unsigned k = 0; k < turns;) {
    int contended = 0, err;

    alarm(MH_STALL_S);
    /* trylock only tells whether the lock was held: lock then takes the path it takes. */
    err = pthread_mutex_trylock(&pg->m);
    if (err == EBUSY) {
      contended = 1;
      err = pthread_mutex_lock(&pg->m);
    }
    uint64_t t = bench_now_ns();
    if (err) {
      fprintf(stderr, "shm_bench: %s: lock: %s\n", who, strerror(err));
      return 1;
    }
    pg->owner = me;
    if (pg->turn != me) {
      ty->empty++;
      pthread_mutex_unlock(&pg->m);
      mh_sleep(hold / 2);
      continue;
    }
    if (pg->count > 0) { /* a turn the other side handed over */
      uint64_t in = t - pg->released_ns, other = pg->handoff_ns[!me];
      pg->handoff_ns[me] = in;
      avg = (7 * avg + (in > other ? in : other)) / 8;
      hold = 4 * avg < MH_MIN_NS ? MH_MIN_NS : 4 * avg > MH_MAX_NS ? MH_MAX_NS : 4 * avg;
      if (lat && k > warmup)
        lat[k - warmup - 1] = (double)(other + in) / 1e3; /* A->B, then B->A */
    }
    ty->contended += (unsigned)contended;
    pg->turn = !me;
    pg->count++;
    k++;
    mh_sleep(hold);
    t = bench_now_ns();
    pg->released_ns = t; /* a write first: under dshm one transfer brings the page back */
    if (pg->owner != me) {
      fprintf(stderr, "shm_bench: %s: the other side took the lock held by this one\n", who);
      return 1;
    }
    pthread_mutex_unlock(&pg->m);
    if (k < turns)
      mh_sleep(hold / 2);
  }
  alarm(0);
  return 0;
}

static void mh_print_tally(const char *name, unsigned turns, const struct mh_tally *ty) {
  printf("result %s turns=%u contended=%u empty=%u\n", name, turns, ty->contended, ty->empty);
}

static int cmd_mhandoff_peer(key_t key, const struct shm_opts *o) {
  struct mh_tally ty = {0, 0};
  unsigned turns = o->pp_warmup + o->pp_iters + 1;
  int id, rc;
  struct mh_page *pg = (struct mh_page *)pp_attach(key, &id); /* one page, made by A */

  if (!pg)
    return die_errno("mhandoff peer: attach");
  rc = mh_run(pg, 1, turns, o->pp_warmup, NULL, &ty);
  if (!rc)
    mh_print_tally("mhandoff_peer_turns", turns, &ty);
  shmdt(pg);
  return rc;
}

static int cmd_mhandoff(key_t key, const struct shm_opts *o) {
  char a[NOPTS][32];
  fmt_opts(a, key, o);
  char *argv[] = {"shm_bench", "mhandoff-peer", OPTS_ARGV(a), NULL};
  /* Rounds 1..turns-1 end at A's turns 1..turns-1: PP_WARMUP, then PP_ITERS timed. */
  unsigned turns = o->pp_warmup + o->pp_iters + 1;
  double *lat = calloc(o->pp_iters ? o->pp_iters : 1, sizeof(*lat));
  struct mh_tally ty = {0, 0};
  pthread_mutexattr_t ma;
  int id = -1, rc = 1;
  struct mh_page *pg = (struct mh_page *)pp_attach(key, &id);
  pid_t pid = -1;

  if (!lat || !pg) {
    die_errno("mhandoff: attach");
    goto out;
  }
  if (pthread_mutexattr_init(&ma) != 0 ||
      pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_NORMAL) != 0 ||
      pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) != 0 ||
      pthread_mutex_init(&pg->m, &ma) != 0) {
    fprintf(stderr, "shm_bench: mhandoff: pthread_mutex_init failed\n");
    goto out;
  }
  pg->turn = 0;
  pg->owner = 0;
  pg->count = 0;
  if (spawn_bench(&pid, argv, 1, -1, -1) < 0) {
    die_errno("posix_spawn");
    goto out;
  }
  if (mh_run(pg, 0, turns, o->pp_warmup, lat, &ty))
    goto out;
  rc = 0;
out:
  if (rc && pid > 0)
    kill(pid, SIGTERM);
  if (pid > 0 && wait_child(pid, "mhandoff peer"))
    rc = 1;
  if (!rc && pg->count != 2ull * turns) { /* the peer is gone: no lock needed */
    fprintf(stderr, "shm_bench: mhandoff: %" PRIu64 " turns taken, want %u: a handoff was lost\n",
            pg->count, 2 * turns);
    rc = 1;
  }
  if (!rc) {
    bench_print_lat("mhandoff_us", lat, o->pp_iters);
    mh_print_tally("mhandoff_turns", turns, &ty);
  }
  if (pg)
    shmdt(pg);
  if (id >= 0)
    shmctl(id, IPC_RMID, NULL);
  free(lat);
  return rc;
}

/* An uncontended process-shared rwlock in the segment KEY (made and removed): rdlock + unlock,
 * then wrlock + unlock, RWLOCK_ITERS pairs of each timed together after a warm-up; ns per
 * pair. */
#define RWLOCK_ITERS 1000000u
static int cmd_rwlock(key_t key) {
  int id, rc = 1;
  pthread_rwlockattr_t a;
  pthread_rwlock_t *l = fresh_page(key, &id, "rwlock");
  uint64_t t0, t1, t2;

  if (l == NULL)
    goto out;
  if (pthread_rwlockattr_init(&a) != 0 ||
      pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
      pthread_rwlock_init(l, &a) != 0) {
    fprintf(stderr, "shm_bench: rwlock: pthread_rwlock_init failed\n");
    goto out;
  }
  for (unsigned i = 0; i < RWLOCK_ITERS / 10; i++) { /* warm-up: the page is ours after it */
    pthread_rwlock_rdlock(l);
    pthread_rwlock_unlock(l);
    pthread_rwlock_wrlock(l);
    pthread_rwlock_unlock(l);
  }
  t0 = bench_now_ns();
  for (unsigned i = 0; i < RWLOCK_ITERS; i++) {
    pthread_rwlock_rdlock(l);
    pthread_rwlock_unlock(l);
  }
  t1 = bench_now_ns();
  for (unsigned i = 0; i < RWLOCK_ITERS; i++) {
    pthread_rwlock_wrlock(l);
    pthread_rwlock_unlock(l);
  }
  t2 = bench_now_ns();
  printf("result rwlock_rd_ns value=%.1f\n", (double)(t1 - t0) / RWLOCK_ITERS);
  printf("result rwlock_wr_ns value=%.1f\n", (double)(t2 - t1) / RWLOCK_ITERS);
  rc = 0;
out:
  fresh_page_done(l, id);
  return rc;
}

static int cmd_rm(key_t key) {
  int id = shmget(key, 0, 0);
  if (id < 0)
    return errno == ENOENT ? 0 : die_errno("rm: shmget");
  return shmctl(id, IPC_RMID, NULL) < 0 ? die_errno("rm: shmctl") : 0;
}

/* SysV call times on the existing segment KEY: shmget of its key, then shmat and shmdt of
 * the whole segment (nothing touched), CALLS_ITERS times after CALLS_WARMUP. */
#define CALLS_ITERS 200u
#define CALLS_WARMUP 20u
static int cmd_calls(key_t key) {
  double get[CALLS_ITERS], at[CALLS_ITERS], st[CALLS_ITERS], dt[CALLS_ITERS];
  for (unsigned i = 0; i < CALLS_WARMUP + CALLS_ITERS; i++) {
    struct shmid_ds ds;
    uint64_t t0 = bench_now_ns();
    int id = shmget(key, 0, 0);
    uint64_t t1 = bench_now_ns();
    if (id < 0)
      return die_errno("calls: shmget");
    void *p = shmat(id, NULL, 0);
    uint64_t t2 = bench_now_ns();
    if (p == (void *)-1)
      return die_errno("calls: shmat");
    if (shmctl(id, IPC_STAT, &ds) < 0)
      return die_errno("calls: IPC_STAT");
    uint64_t t3 = bench_now_ns();
    if (shmdt(p) < 0)
      return die_errno("calls: shmdt");
    uint64_t t4 = bench_now_ns();
    if (i < CALLS_WARMUP)
      continue;
    get[i - CALLS_WARMUP] = (double)(t1 - t0) / 1e3;
    at[i - CALLS_WARMUP] = (double)(t2 - t1) / 1e3;
    st[i - CALLS_WARMUP] = (double)(t3 - t2) / 1e3;
    dt[i - CALLS_WARMUP] = (double)(t4 - t3) / 1e3;
  }
  bench_print_lat("shmget_us", get, CALLS_ITERS);
  bench_print_lat("shmat_us", at, CALLS_ITERS);
  bench_print_lat("ipcstat_us", st, CALLS_ITERS);
  bench_print_lat("shmdt_us", dt, CALLS_ITERS);
  return 0;
}

/* A SysV semaphore set KEY of one semaphore at 1 (made here, removed at the end): semop -1
 * then +1, uncontended, each timed, CALLS_ITERS times after CALLS_WARMUP. Under the shim
 * each is a round trip to the server through the host agent; natively a system call. */
static int cmd_semop(key_t key) {
  double lat[2 * CALLS_ITERS];
  struct sembuf dn = {0, -1, 0}, up = {0, 1, 0};
  int id = semget(key, 1, IPC_CREAT | IPC_EXCL | 0600), rc = 1;

  if (id < 0)
    return die_errno("semop: semget");
  if (semctl(id, 0, SETVAL, 1) < 0) {
    die_errno("semop: SETVAL");
    goto out;
  }
  for (unsigned i = 0; i < CALLS_WARMUP + CALLS_ITERS; i++) {
    uint64_t t0 = bench_now_ns();
    if (semop(id, &dn, 1) < 0) {
      die_errno("semop: -1");
      goto out;
    }
    uint64_t t1 = bench_now_ns();
    if (semop(id, &up, 1) < 0) {
      die_errno("semop: +1");
      goto out;
    }
    uint64_t t2 = bench_now_ns();
    if (i < CALLS_WARMUP)
      continue;
    lat[2 * (i - CALLS_WARMUP)] = (double)(t1 - t0) / 1e3;
    lat[2 * (i - CALLS_WARMUP) + 1] = (double)(t2 - t1) / 1e3;
  }
  bench_print_lat("semop_us", lat, 2 * CALLS_ITERS);
  rc = 0;
out:
  if (semctl(id, 0, IPC_RMID) < 0 && rc == 0)
    rc = die_errno("semop: IPC_RMID");
  return rc;
}

/* First touches of pages another process of the host holds. The holder creates KEY, writes
 * every word (word i = i) and stays attached while a fresh toucher (same environment, so the
 * same dshm host) reads one word on every stride-th page once per round; each round
 * re-attaches, so every touch is the first of its page in that view. Natively each touch is
 * a minor fault, whatever the stride (SysV shm mappings get no fault-around: strides 1 and 16
 * time the same); under the shim's agent mode it is the SIGSEGV, the raise of the view to
 * what the host holds and that minor fault. */
static int cmd_touch(key_t key, const struct shm_opts *o) {
  int id = shmget(key, o->seg_bytes, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0)
    return die_errno("touch: shmget");
  uint64_t *w = shmat(id, NULL, 0);
  int rc = 1;
  if (w == (void *)-1) {
    die_errno("touch: shmat");
    goto out;
  }
  for (size_t i = 0; i < o->seg_bytes / sizeof(*w); i++)
    w[i] = i;
  rc = run_phase("touch-peer", key, o);
  shmdt(w);
out:
  shmctl(id, IPC_RMID, NULL);
  return rc;
}

static int cmd_touch_peer(key_t key, const struct shm_opts *o) {
  size_t npages = o->seg_bytes / BENCH_PAGE, n = 0;
  int id = shmget(key, 0, 0), rc = 1;
  double *lat = calloc(npages * o->rounds, sizeof(*lat));
  if (id < 0 || !lat) {
    free(lat);
    return die_errno("touch-peer: shmget");
  }
  for (unsigned r = 0; r < o->rounds; r++) {
    const volatile uint64_t *w = shmat(id, NULL, SHM_RDONLY);
    if (w == (void *)-1) {
      die_errno("touch-peer: shmat");
      goto out;
    }
    for (size_t pg = (r * 7u) % o->stride; pg < npages; pg += o->stride) {
      size_t word = pg * (BENCH_PAGE / sizeof(uint64_t));
      uint64_t t0 = bench_now_ns();
      uint64_t v = w[word];
      uint64_t t1 = bench_now_ns();
      if (v != word) {
        fprintf(stderr, "shm_bench: touch: word %zu holds %" PRIu64 "\n", word, v);
        shmdt((const void *)w);
        goto out;
      }
      if (r > 0)
        lat[n++] = (double)(t1 - t0) / 1e3;
    }
    shmdt((const void *)w);
  }
  bench_print_lat("touch_us", lat, n);
  rc = 0;
out:
  free(lat);
  return rc;
}

/* The view of the SIGSEGV round trip: the handler raises a page of it, nothing else. */
static uintptr_t segv_base;
static size_t segv_len;

/* Called from the SIGSEGV handler: only mprotect, restores errno. A fault outside the view
 * restores the default action, so the retry kills the process as it should. */
static void on_segv(int sig, siginfo_t *si, void *uc) {
  uintptr_t a = (uintptr_t)si->si_addr;
  int saved = errno;
  (void)uc;
  if (a - segv_base < segv_len) {
    mprotect((void *)(a & ~(uintptr_t)(BENCH_PAGE - 1)), BENCH_PAGE, PROT_READ | PROT_WRITE);
  } else {
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(sig, &dfl, NULL);
  }
  errno = saved;
}

/* The SIGSEGV round trip (native only): a private SysV segment, every page populated; per
 * sample one page is made PROT_NONE (untimed), then touched (timed): the signal, a handler
 * that mprotects the page back, the return and the retried load, which finds the page mapped
 * (no minor fault in it). Every stride-th page, `rounds` times. */
static int cmd_sigsegv(const struct shm_opts *o) {
  size_t npages = o->seg_bytes / BENCH_PAGE, n = 0;
  int id = shmget(IPC_PRIVATE, o->seg_bytes, IPC_CREAT | 0600), rc = 1;
  if (id < 0)
    return die_errno("sigsegv: shmget");
  volatile uint64_t *w = shmat(id, NULL, 0);
  shmctl(id, IPC_RMID, NULL); /* gone with the last detach, whatever happens */
  if (w == (void *)-1)
    return die_errno("sigsegv: shmat");
  double *lat = calloc(npages * o->rounds, sizeof(*lat));
  if (!lat) {
    die_errno("sigsegv: calloc");
    goto out;
  }
  for (size_t i = 0; i < o->seg_bytes / sizeof(*w); i++)
    w[i] = i;
  segv_base = (uintptr_t)w;
  segv_len = o->seg_bytes;
  struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_RESTART};
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, NULL) < 0) {
    die_errno("sigsegv: sigaction");
    goto out;
  }
  for (unsigned r = 0; r < o->rounds; r++)
    for (size_t pg = (r * 7u) % o->stride; pg < npages; pg += o->stride) {
      size_t word = pg * (BENCH_PAGE / sizeof(uint64_t));
      if (mprotect((void *)(segv_base + pg * BENCH_PAGE), BENCH_PAGE, PROT_NONE) < 0) {
        die_errno("sigsegv: mprotect");
        goto out;
      }
      uint64_t t0 = bench_now_ns();
      uint64_t v = w[word];
      uint64_t t1 = bench_now_ns();
      if (v != word) {
        fprintf(stderr, "shm_bench: sigsegv: word %zu holds %" PRIu64 "\n", word, v);
        goto out;
      }
      if (r > 0)
        lat[n++] = (double)(t1 - t0) / 1e3;
    }
  bench_print_lat("sigsegv_us", lat, n);
  rc = 0;
out:
  shmdt((const void *)w);
  free(lat);
  return rc;
}

/* Reads a control record of len bytes from fd, waiting at most ms (< 0: forever). 1 read,
 * 0 end of file or timeout, -1 error. */
static int ctl_read(int fd, void *buf, size_t len, int ms) {
  size_t got = 0;
  while (got < len) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int pr = poll(&pf, 1, ms);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr <= 0)
      return pr < 0 ? -1 : 0;
    ssize_t k = read(fd, (char *)buf + got, len - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return k < 0 ? -1 : 0;
    got += (size_t)k;
  }
  return 1;
}

static int ctl_write(int fd, const void *buf, size_t len) {
  /* Records are far below PIPE_BUF: one write is one record, whoever else writes. */
  ssize_t k;
  do
    k = write(fd, buf, len);
  while (k < 0 && errno == EINTR);
  return k == (ssize_t)len ? 0 : -1;
}

#define CTL_MS 30000 /* a child that does not answer within this has failed */

/* Waits for n one-byte acks ('k') on fd. */
static int ctl_acks(int fd, unsigned n, const char *what) {
  for (unsigned i = 0; i < n; i++) {
    char c = 0;
    if (ctl_read(fd, &c, 1, CTL_MS) != 1 || c != 'k') {
      fprintf(stderr, "shm_bench: %s: a child failed or did not answer\n", what);
      return -1;
    }
  }
  return 0;
}

/* Another process whose memory the mem test reports: SHM_BENCH_RSS="NAME=PID" or
 * "NAME=@GLOB|GLOB..." (a pid file, looked up when measured), separated by spaces. */
struct watch {
  char name[32];
  char spec[256];
  long rss0_kib; /* VmRSS before the test, -1 if not running then */
};

#define MAX_WATCH 4

static int parse_watch(struct watch *w) {
  const char *env = getenv("SHM_BENCH_RSS");
  int n = 0;
  while (env && *env && n < MAX_WATCH) {
    size_t len = strcspn(env, " ");
    const char *eq = memchr(env, '=', len);
    if (eq && eq > env && (size_t)(eq - env) < sizeof(w[n].name) &&
        len - (size_t)(eq - env) - 1 < sizeof(w[n].spec)) {
      snprintf(w[n].name, sizeof(w[n].name), "%.*s", (int)(eq - env), env);
      snprintf(w[n].spec, sizeof(w[n].spec), "%.*s", (int)(len - (size_t)(eq - env) - 1),
               eq + 1);
      w[n++].rss0_kib = -1;
    }
    env += len;
    env += strspn(env, " ");
  }
  return n;
}

/* The pid a watch names: a number, or "@GLOB|GLOB..." (the first file found holds it). */
static pid_t watch_pid(const struct watch *w) {
  if (w->spec[0] != '@')
    return (pid_t)atol(w->spec);
  char pats[sizeof(w->spec)], *save = NULL;
  pid_t pid = 0;
  snprintf(pats, sizeof(pats), "%s", w->spec + 1);
  for (char *pat = strtok_r(pats, "|", &save); pat && !pid; pat = strtok_r(NULL, "|", &save)) {
    glob_t g;
    if (glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
      FILE *f = fopen(g.gl_pathv[0], "r");
      long v = 0;
      if (f && fscanf(f, "%ld", &v) == 1)
        pid = (pid_t)v;
      if (f)
        fclose(f);
    }
    globfree(&g);
  }
  return pid;
}

/* The value in kB of the line "field: N kB" of /proc/PID/file, or -1. */
static long proc_kib(pid_t pid, const char *file, const char *field) {
  char path[64], line[256];
  size_t flen = strlen(field);
  long v = -1;
  snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  while (fgets(line, sizeof(line), f))
    if (!strncmp(line, field, flen) && line[flen] == ':') {
      v = atol(line + flen + 1);
      break;
    }
  fclose(f);
  return v;
}

/* Pss (kB) of every mapping of pid backed by the same file as the one containing addr: the
 * segment's view, and any other view of the same memory (the shim's own, under dshm).
 * -1 when addr is not mapped. */
static long seg_pss_kib(pid_t pid, uintptr_t addr) {
  char path[64], line[512];
  struct {
    unsigned long dev_major, dev_minor, ino;
    long pss;
  } *m = NULL;
  size_t n = 0, cap = 0;
  long hit = -1, sum = -1;
  snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  while (fgets(line, sizeof(line), f)) {
    unsigned long lo, hi, off, maj, min, ino;
    if (sscanf(line, "%lx-%lx %*s %lx %lx:%lx %lu", &lo, &hi, &off, &maj, &min, &ino) == 6) {
      if (n == cap) {
        cap = cap ? 2 * cap : 64;
        void *nm = realloc(m, cap * sizeof(*m));
        if (!nm)
          goto out;
        m = nm;
      }
      m[n].dev_major = maj;
      m[n].dev_minor = min;
      m[n].ino = ino;
      m[n].pss = 0;
      if (addr >= lo && addr < hi)
        hit = (long)n;
      n++;
    } else if (n > 0 && !strncmp(line, "Pss:", 4)) {
      m[n - 1].pss = atol(line + 4);
    }
  }
  if (hit >= 0 && m[hit].ino != 0) {
    sum = 0;
    for (size_t i = 0; i < n; i++)
      if (m[i].ino == m[hit].ino && m[i].dev_major == m[hit].dev_major &&
          m[i].dev_minor == m[hit].dev_minor)
        sum += m[i].pss;
  }
out:
  fclose(f);
  free(m);
  return sum;
}

/* What a mem reader reports once it has read every page. */
struct mem_report {
  int64_t pid;
  uint64_t addr;
};

/* Memory of nproc readers of one segment: "fill" creates KEY (seg_bytes, word i = i) and
 * detaches; nproc fresh readers (same environment: one dshm host) attach it read-only and
 * read a word of every page; with all of them attached, this process sums their Pss for the
 * segment's mappings (/proc/PID/smaps) and reports the processes named in SHM_BENCH_RSS
 * (the host's agent, the server). Then the readers go and "rm" removes the segment. */
static int cmd_mem(key_t key, const struct shm_opts *o) {
  struct watch w[MAX_WATCH];
  int nw = parse_watch(w), rc = 1, rep[2] = {-1, -1}, hold[2] = {-1, -1};
  unsigned spawned = 0;
  pid_t *kids = calloc(o->nproc, sizeof(*kids));
  struct mem_report *r = calloc(o->nproc, sizeof(*r));
  long pss_seg = 0, pss_all = 0;
  char a[NOPTS][32];
  char *argv[] = {"shm_bench", "mem-reader", OPTS_ARGV(a), NULL};

  fmt_opts(a, key, o);
  if (!kids || !r) {
    die_errno("mem: calloc");
    goto out;
  }
  for (int i = 0; i < nw; i++) {
    pid_t pid = watch_pid(&w[i]);
    if (pid > 0)
      w[i].rss0_kib = proc_kib(pid, "status", "VmRSS");
  }
  if (run_phase("fill", key, o))
    goto rm;
  if (pipe2(rep, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0) {
    die_errno("mem: pipe");
    goto release;
  }
  for (; spawned < o->nproc; spawned++)
    if (spawn_bench(&kids[spawned], argv, 0, hold[0], rep[1]) < 0) {
      die_errno("mem: posix_spawn");
      goto release;
    }
  close(rep[1]);
  rep[1] = -1;
  for (unsigned i = 0; i < o->nproc; i++)
    if (ctl_read(rep[0], &r[i], sizeof(r[i]), CTL_MS) != 1) {
      fprintf(stderr, "shm_bench: mem: a reader failed or did not report\n");
      goto release;
    }
  /* Every reader has read everything and is still attached: each page has all its mappers. */
  for (unsigned i = 0; i < o->nproc; i++) {
    long seg = seg_pss_kib((pid_t)r[i].pid, (uintptr_t)r[i].addr);
    long all = proc_kib((pid_t)r[i].pid, "smaps_rollup", "Pss");
    if (seg < 0 || all < 0) {
      fprintf(stderr, "shm_bench: mem: no smaps of reader %" PRId64 "\n", r[i].pid);
      goto release;
    }
    pss_seg += seg;
    pss_all += all;
  }
  printf("result mem_readers pss_seg_kib=%ld pss_all_kib=%ld n=%u seg_kib=%zu\n", pss_seg,
         pss_all, o->nproc, o->seg_bytes >> 10);
  for (int i = 0; i < nw; i++) {
    pid_t pid = watch_pid(&w[i]);
    long rss = pid > 0 ? proc_kib(pid, "status", "VmRSS") : -1;
    long pss = pid > 0 ? proc_kib(pid, "smaps_rollup", "Pss") : -1;
    if (rss < 0)
      fprintf(stderr, "shm_bench: mem: %s (%s) is not running\n", w[i].name, w[i].spec);
    else
      printf("result mem_%s rss_kib=%ld pss_kib=%ld rss0_kib=%ld growth_kib=%ld\n", w[i].name,
             rss, pss, w[i].rss0_kib, w[i].rss0_kib >= 0 ? rss - w[i].rss0_kib : rss);
  }
  rc = 0;
release:
  /* Closing hold[1] is the readers' end of file: they detach and exit. */
  for (int i = 0; i < 2; i++) {
    if (hold[i] >= 0)
      close(hold[i]);
    if (rep[i] >= 0)
      close(rep[i]);
  }
  for (unsigned i = 0; i < spawned; i++)
    if (wait_child(kids[i], "mem reader"))
      rc = 1;
rm:
  if (run_phase("rm", key, o))
    rc = 1;
out:
  free(kids);
  free(r);
  return rc;
}

static int cmd_mem_reader(key_t key, const struct shm_opts *o) {
  int id = shmget(key, 0, 0);
  if (id < 0)
    return die_errno("mem-reader: shmget");
  const volatile uint64_t *w = shmat(id, NULL, SHM_RDONLY);
  if (w == (void *)-1)
    return die_errno("mem-reader: shmat");
  for (size_t pg = 0; pg < o->seg_bytes / BENCH_PAGE; pg++) {
    size_t word = pg * (BENCH_PAGE / sizeof(uint64_t));
    uint64_t v = w[word];
    if (v != word) {
      fprintf(stderr, "shm_bench: mem-reader: word %zu holds %" PRIu64 "\n", word, v);
      return 1;
    }
  }
  struct mem_report r = {.pid = getpid(), .addr = (uintptr_t)w};
  if (ctl_write(4, &r, sizeof(r)) < 0)
    return die_errno("mem-reader: report");
  char c;
  while (ctl_read(3, &c, 1, -1) > 0) /* held until the measuring process lets go */
    ;
  shmdt((const void *)w);
  return 0;
}

/* One round of the revocation test: a reader checks that word 0 of page holds value, the
 * writer stores value there (timed). */
struct rv_cmd {
  uint32_t page;
  uint32_t pad;
  uint64_t value;
};

#define RV_STRIDE 64u /* pages between two rounds' pages: past either side's read-ahead */
#define RV_WARMUP 2u

/* The cost of a revocation against the number of processes holding the page: nproc readers
 * (this environment: one dshm host) read page P, then a writer (the peer's environment:
 * another host when run.sh says so) stores to P, timed. Under the agent the server
 * invalidates the readers' host, whose agent has every reader lower its own view before it
 * answers. A fresh page each round (RV_STRIDE apart); the last step checks every store. */
static int cmd_revoke(key_t key, const struct shm_opts *o) {
  unsigned k = o->nproc, total = o->rounds + RV_WARMUP, spawned = 0;
  int ack[2] = {-1, -1}, rc = 1;
  int *cfd = calloc(k + 1, sizeof(*cfd));
  pid_t *kids = calloc(k + 1, sizeof(*kids));
  char a[NOPTS][32];
  char *rargv[] = {"shm_bench", "rv-reader", OPTS_ARGV(a), NULL};
  char *wargv[] = {"shm_bench", "rv-writer", OPTS_ARGV(a), NULL};

  fmt_opts(a, key, o);
  if (!cfd || !kids) {
    die_errno("revoke: calloc");
    goto out;
  }
  if ((size_t)total * RV_STRIDE > o->seg_bytes / BENCH_PAGE) {
    fprintf(stderr, "shm_bench: revoke: SEG_BYTES must hold (ROUNDS + %u) * %u pages\n",
            RV_WARMUP, RV_STRIDE);
    goto out;
  }
  if (pipe2(ack, O_CLOEXEC) < 0) {
    die_errno("revoke: pipe");
    goto out;
  }
  for (; spawned <= k; spawned++) {
    int c[2];
    if (pipe2(c, O_CLOEXEC) < 0) {
      die_errno("revoke: pipe");
      goto stop;
    }
    int err = spawn_bench(&kids[spawned], spawned < k ? rargv : wargv, spawned == k, c[0], ack[1]);
    close(c[0]);
    cfd[spawned] = c[1];
    if (err < 0) {
      close(c[1]);
      die_errno("revoke: posix_spawn");
      goto stop;
    }
  }
  close(ack[1]);
  ack[1] = -1;
  if (ctl_acks(ack[0], k + 1, "revoke: attach"))
    goto stop;
  for (unsigned r = 0; r < total; r++) {
    struct rv_cmd rd = {.page = r * RV_STRIDE, .value = 0};
    struct rv_cmd wr = {.page = r * RV_STRIDE, .value = r + 1};
    for (unsigned i = 0; i < k; i++)
      if (ctl_write(cfd[i], &rd, sizeof(rd)) < 0)
        goto stop;
    if (ctl_acks(ack[0], k, "revoke: read") || ctl_write(cfd[k], &wr, sizeof(wr)) < 0 ||
        ctl_acks(ack[0], 1, "revoke: write"))
      goto stop;
  }
  for (unsigned r = 0; r < total; r++) {
    struct rv_cmd chk = {.page = r * RV_STRIDE, .value = r + 1};
    if (ctl_write(cfd[0], &chk, sizeof(chk)) < 0 || ctl_acks(ack[0], 1, "revoke: check"))
      goto stop;
  }
  rc = 0;
stop:
  /* End of file on its control pipe stops a child: the writer then prints its figures. */
  for (unsigned i = 0; i < spawned; i++)
    close(cfd[i]);
  for (int i = 0; i < 2; i++)
    if (ack[i] >= 0)
      close(ack[i]);
  for (unsigned i = 0; i < spawned; i++)
    if (wait_child(kids[i], i < k ? "revoke reader" : "revoke writer"))
      rc = 1;
out:
  free(cfd);
  free(kids);
  return rc;
}

/* The control loop of a revocation child: attaches KEY (creating it if it is first), says
 * 'k', then answers every command with 'k' after doing it (store when write, else check). */
static int rv_child(key_t key, const struct shm_opts *o, int write) {
  const char *who = write ? "rv-writer" : "rv-reader";
  size_t npages = o->seg_bytes / BENCH_PAGE;
  int id = shmget(key, o->seg_bytes, IPC_CREAT | 0600), rc = 1;
  double *lat = calloc(o->rounds ? o->rounds : 1, sizeof(*lat));
  unsigned n = 0, seen = 0;
  if (id < 0 || !lat) {
    free(lat);
    return die_errno(who);
  }
  volatile uint64_t *w = shmat(id, NULL, write ? 0 : SHM_RDONLY);
  if (w == (void *)-1) {
    free(lat);
    return die_errno(who);
  }
  if (ctl_write(4, "k", 1) < 0)
    goto out;
  for (;;) {
    struct rv_cmd c;
    int got = ctl_read(3, &c, sizeof(c), -1);
    if (got == 0)
      break;
    if (got < 0 || c.page >= npages)
      goto out;
    size_t word = (size_t)c.page * (BENCH_PAGE / sizeof(uint64_t));
    if (write) {
      uint64_t t0 = bench_now_ns();
      w[word] = c.value;
      uint64_t t1 = bench_now_ns();
      if (seen++ >= RV_WARMUP && n < o->rounds)
        lat[n++] = (double)(t1 - t0) / 1e3;
    } else if (w[word] != c.value) {
      fprintf(stderr, "shm_bench: %s: page %u holds %" PRIu64 ", want %" PRIu64 "\n", who,
              c.page, (uint64_t)w[word], c.value);
      ctl_write(4, "e", 1);
      goto out;
    }
    if (ctl_write(4, "k", 1) < 0)
      goto out;
  }
  if (write)
    bench_print_lat("revoke_us", lat, n);
  rc = 0;
out:
  shmdt((const void *)w);
  if (write)
    shmctl(id, IPC_RMID, NULL);
  free(lat);
  return rc;
}

/* What a fetch client reports on its control pipe: once attached and primed (ready), then
 * once done (or failed). One write each, far below PIPE_BUF. */
struct fetch_report {
  int32_t state; /* FETCH_READY, FETCH_DONE, FETCH_FAILED */
  uint32_t client;
  uint64_t pages; /* FETCH_DONE: pages read */
  int64_t moved;  /* FETCH_DONE: pages that became resident in the view meanwhile, or -1 */
};

enum { FETCH_READY = 1, FETCH_DONE = 2, FETCH_FAILED = 3 };

#define FETCH_MAX_NS (5ull * 1000000000ull) /* a client stops after this, whatever is left */

/* Page fetches per second served to NPROC concurrent clients. The segment KEY exists, filled
 * (word i = i) by "fill" (under dshm on another host, whose last detach sent the pages home
 * to the server). NPROC fresh clients, each in the environment SHM_BENCH_CLIENT_ENV makes
 * for it (under dshm a host of its own, so an agent of its own: every fetch is a request the
 * server serves), take disjoint slices of SEG_BYTES / NPROC pages; each attaches, primes its
 * slice (below) and says so; once all are ready this process closes the barrier pipe, and
 * each reads one word of every page of its slice, checking it, for at most FETCH_MAX_NS.
 * The figure is the pages read by all of them over the time from the barrier to the last
 * report: pages delivered to clients per second, each page a fault of its own. */
static int cmd_fetch(key_t key, const struct shm_opts *o) {
  unsigned n = o->nproc, spawned = 0, ready = 0, done = 0;
  size_t slice = o->seg_bytes / BENCH_PAGE / (n ? n : 1);
  int go[2] = {-1, -1}, rep[2] = {-1, -1}, rc = 1;
  pid_t *kids = calloc(n ? n : 1, sizeof(*kids));
  uint64_t pages = 0, t0 = 0, t1 = 0, lo = UINT64_MAX, hi = 0;
  int64_t moved = 0;
  char a[NOPTS][32], num[16];
  char *argv[] = {"shm_bench", "fetch-client", OPTS_ARGV(a), num, NULL};

  fmt_opts(a, key, o);
  if (!kids) {
    die_errno("fetch: calloc");
    goto out;
  }
  if (n == 0 || slice < 2) {
    fprintf(stderr, "shm_bench: fetch: SEG_BYTES must hold at least 2 pages per client "
                    "(NPROC %u)\n", n);
    goto out;
  }
  if (pipe2(go, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
    die_errno("fetch: pipe");
    goto stop;
  }
  for (; spawned < n; spawned++) {
    snprintf(num, sizeof(num), "%u", spawned); /* the client's number, after the knobs */
    if (spawn_bench_env(&kids[spawned], argv, "SHM_BENCH_CLIENT_ENV", (int)spawned, go[0],
                        rep[1]) < 0) {
      die_errno("fetch: posix_spawn");
      goto stop;
    }
  }
  close(rep[1]);
  rep[1] = -1;
  while (ready + done < 2 * n) {
    struct fetch_report r;
    if (ctl_read(rep[0], &r, sizeof(r), CTL_MS) != 1) {
      fprintf(stderr, "shm_bench: fetch: a client died or did not report within %d ms "
                      "(%u ready, %u done)\n", CTL_MS, ready, done);
      goto stop;
    }
    if (r.state == FETCH_FAILED) {
      fprintf(stderr, "shm_bench: fetch: client %u failed\n", r.client);
      goto stop;
    }
    if (r.state == FETCH_READY && ++ready == n) {
      /* Everybody is attached and primed: the end of file on go is the start. */
      t0 = bench_now_ns();
      close(go[1]);
      go[1] = -1;
    } else if (r.state == FETCH_DONE) {
      done++;
      pages += r.pages;
      moved = moved < 0 || r.moved < 0 ? -1 : moved + r.moved;
      lo = r.pages < lo ? r.pages : lo;
      hi = r.pages > hi ? r.pages : hi;
      t1 = bench_now_ns();
    }
  }
  printf("result fetch_pps value=%.0f pages=%" PRIu64 " clients=%u seconds=%.3f "
         "client_min=%" PRIu64 " client_max=%" PRIu64 " resident_new=%" PRId64 "\n",
         (double)pages * 1e9 / (double)(t1 - t0), pages, n, (double)(t1 - t0) / 1e9, lo, hi,
         moved);
  rc = 0;
stop:
  for (int i = 0; i < 2; i++) {
    if (go[i] >= 0)
      close(go[i]);
    if (rep[i] >= 0)
      close(rep[i]);
  }
  if (rc)
    for (unsigned i = 0; i < spawned; i++)
      kill(kids[i], SIGTERM);
  for (unsigned i = 0; i < spawned; i++)
    if (wait_child(kids[i], "fetch client"))
      rc = 1;
out:
  free(kids);
  return rc;
}

static int fetch_say(unsigned client, int32_t state, uint64_t pages, int64_t moved) {
  struct fetch_report r = {.state = state, .client = client, .pages = pages, .moved = moved};
  return ctl_write(4, &r, sizeof(r));
}

/* The pages of the view [p, p + npages pages) resident in memory, or -1. mincore as a system
 * call: the libc function is one the shim interposes (it would bring every page in first).
 * Under dshm a view maps its host's copy, so this counts the pages the host has received;
 * natively the whole filled segment is resident. */
static int64_t resident_pages(const volatile void *p, size_t npages, unsigned char *vec) {
  int64_t n = 0;
  if (syscall(SYS_mincore, (void *)(uintptr_t)p, npages * BENCH_PAGE, vec) < 0)
    return -1;
  for (size_t i = 0; i < npages; i++)
    n += vec[i] & 1;
  return n;
}

/* One fetch client, number client of o->nproc. Its slice is read from the top down: the
 * agent reads ahead only over the following pages not held yet, so with the page above
 * already held every fault fetches exactly its own page. The top page itself is the primer,
 * read before the barrier and not counted (its read-ahead runs into the next slice, which
 * another host reads). The view's resident pages before the start and after the last read
 * say how many pages really arrived meanwhile (resident_pages). */
static int cmd_fetch_client(key_t key, const struct shm_opts *o, unsigned client) {
  size_t npages = o->seg_bytes / BENCH_PAGE, slice = npages / o->nproc;
  size_t base = client * slice, pg = base + slice - 1;
  size_t ra_last = pg + RA_PAGES - 1 < npages ? pg + RA_PAGES - 1 : npages - 1;
  const size_t wpp = BENCH_PAGE / sizeof(uint64_t);
  uint64_t pages = 0, deadline;
  int64_t res0, res1;
  unsigned char *vec = malloc(npages);
  const volatile uint64_t *w = (void *)-1;
  int id = shmget(key, 0, 0);
  char c;

  if (!vec || id < 0) {
    die_errno(vec ? "fetch-client: shmget" : "fetch-client: malloc");
    goto fail;
  }
  w = shmat(id, NULL, SHM_RDONLY);
  if (w == (void *)-1) {
    die_errno("fetch-client: shmat");
    goto fail;
  }
  /* The primer, then the last page of its read-ahead window: the agent answers the first
   * page's fault at once and installs the rest of the grant after, in order, so the count
   * below is taken once that has settled. */
  if (w[pg * wpp] != pg * wpp || w[ra_last * wpp] != ra_last * wpp)
    goto bad;
  res0 = resident_pages(w, npages, vec);
  if (fetch_say(client, FETCH_READY, 0, 0) < 0)
    goto bad;
  while (ctl_read(3, &c, 1, -1) > 0) /* until the end of file: the start */
    ;
  deadline = bench_now_ns() + FETCH_MAX_NS;
  while (pg-- > base) {
    if (w[pg * wpp] != pg * wpp)
      goto bad;
    pages++;
    if (pages % 64 == 0 && bench_now_ns() > deadline)
      break;
  }
  res1 = resident_pages(w, npages, vec);
  shmdt((const void *)w);
  free(vec);
  if (fetch_say(client, FETCH_DONE, pages, res0 < 0 || res1 < 0 ? -1 : res1 - res0) < 0)
    return die_errno("fetch-client: report");
  return 0;
bad:
  fprintf(stderr, "shm_bench: fetch-client %u: page %zu: wrong word or no report\n", client, pg);
fail:
  if (w != (void *)-1)
    shmdt((const void *)w);
  free(vec);
  fetch_say(client, FETCH_FAILED, 0, 0);
  return 1;
}

/* Every phase in its own process; this one never touches shared memory itself. */
static int cmd_all(key_t key, const struct shm_opts *o) {
  int rc = run_phase("fill", key, o);
  if (!rc)
    rc = run_phase("fault", key, o);
  if (!rc)
    rc = run_phase("seqread", key, o);
  if (!rc)
    rc = run_phase("calls", key, o);
  int rm = run_phase("rm", key, o);
  if (!rc)
    rc = run_phase("pingpong", key + 1, o);
  return rc ? rc : rm;
}

static void usage(void) {
  fprintf(stderr,
          "usage: shm_bench CMD [KEY [SEG_BYTES [STRIDE [ROUNDS [PP_ITERS [PP_WARMUP [NPROC]]]]]]]\n"
          "  all       fill, fault, seqread, calls, rm (segment KEY), pingpong (KEY+1),\n"
          "            each in a fresh process\n"
          "  fill | fault | seqread | calls | rm | pingpong   one of those phases\n"
          "  semop     a SysV semaphore set KEY (made and removed): uncontended semop -1, +1\n"
          "  semt      sem_t ping-pong: post/wait against a peer (SHM_BENCH_PEER_ENV) that\n"
          "            waits/posts; PP_ITERS rounds after PP_WARMUP\n"
          "  mutex     an uncontended process-shared pthread mutex in segment KEY: ns per\n"
          "            lock+unlock\n"
          "  mhandoff  a process-shared mutex handed over in strict turns with a peer\n"
          "            (SHM_BENCH_PEER_ENV), the waiter asleep in pthread_mutex_lock each\n"
          "            time: two handoffs per round; PP_ITERS rounds after PP_WARMUP\n"
          "  rwlock    an uncontended process-shared pthread rwlock in segment KEY: ns per\n"
          "            rdlock+unlock and per wrlock+unlock\n"
          "  touch     a holder fills KEY, a fresh process reads every STRIDE-th page once a\n"
          "            round (ROUNDS, the first a warm-up): first-touch time per page\n"
          "  sigsegv   SIGSEGV round trip on every STRIDE-th page of a private segment\n"
          "  mem       fill KEY, NPROC readers read every page; their Pss for the segment and\n"
          "            the VmRSS/Pss of SHM_BENCH_RSS=\"NAME=PID NAME=@PIDFILE_GLOB[|GLOB..] ...\"\n"
          "  revoke    NPROC readers read a page, a writer (in the peer's environment) stores\n"
          "            to it, timed; ROUNDS pages, %u apart (SEG_BYTES must hold them)\n"
          "  fetch     NPROC clients (each in the environment of SHM_BENCH_CLIENT_ENV, \"{}\"\n"
          "            replaced by its number) read one word of every page of a disjoint slice\n"
          "            of the filled segment KEY, from the top down (one page per fault),\n"
          "            started together: pages delivered per second\n"
          "SHM_BENCH_PEER_ENV=\"NAME=VALUE ...\": extra environment of pingpong's B side, of\n"
          "semt's and mhandoff's peer and of revoke's writer. Output lines start with \"result\".\n",
          RV_STRIDE);
}

static int parse_ul(const char *s, unsigned long long min, unsigned long long *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end || v < min)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  unsigned long long client = 0;
  /* fetch's clients: "fetch-client KEY ... NPROC CLIENT", all seven knobs and the number. */
  if (argc == 3 + NOPTS && !strcmp(argv[1], "fetch-client") &&
      parse_ul(argv[--argc], 0, &client) < 0) {
    usage();
    return 2;
  }
  if (argc < 2 || argc > 2 + NOPTS) {
    usage();
    return 2;
  }
  struct shm_opts o = shm_defaults;
  /* Default key: unlikely to collide with anything else on the machine. */
  key_t key = (key_t)(0x64730000u | ((unsigned)getpid() & 0xfffe));
  unsigned long long v[NOPTS];
  for (int i = 2; i < argc; i++)
    if (parse_ul(argv[i], i == 2 ? 0 : 1, &v[i - 2]) < 0) {
      usage();
      return 2;
    }
  if (argc > 2)
    key = (key_t)v[0];
  if (argc > 3)
    o.seg_bytes = v[1];
  if (argc > 4)
    o.stride = (unsigned)v[2];
  if (argc > 5)
    o.rounds = (unsigned)v[3];
  if (argc > 6)
    o.pp_iters = (unsigned)v[4];
  if (argc > 7)
    o.pp_warmup = (unsigned)v[5];
  if (argc > 8)
    o.nproc = (unsigned)v[6];
  if (o.seg_bytes % BENCH_PAGE || o.seg_bytes / BENCH_PAGE < o.stride) {
    fprintf(stderr, "shm_bench: SEG_BYTES must be a multiple of 4096 and >= STRIDE pages\n");
    return 2;
  }
  /* Line-buffered so results interleave sanely with the children's. */
  setvbuf(stdout, NULL, _IOLBF, 0);

  const char *cmd = argv[1];
  if (!strcmp(cmd, "all"))
    return cmd_all(key, &o);
  if (!strcmp(cmd, "fill"))
    return cmd_fill(key, &o);
  if (!strcmp(cmd, "fault"))
    return cmd_fault(key, &o);
  if (!strcmp(cmd, "seqread"))
    return cmd_seqread(key, &o);
  if (!strcmp(cmd, "pingpong"))
    return cmd_pingpong(key, &o);
  if (!strcmp(cmd, "pp-peer"))
    return cmd_pp_peer(key, &o);
  if (!strcmp(cmd, "rm"))
    return cmd_rm(key);
  if (!strcmp(cmd, "calls"))
    return cmd_calls(key);
  if (!strcmp(cmd, "semop"))
    return cmd_semop(key);
  if (!strcmp(cmd, "semt"))
    return cmd_semt(key, &o);
  if (!strcmp(cmd, "semt-peer"))
    return cmd_semt_peer(key, &o);
  if (!strcmp(cmd, "mutex"))
    return cmd_mutex(key);
  if (!strcmp(cmd, "mhandoff"))
    return cmd_mhandoff(key, &o);
  if (!strcmp(cmd, "mhandoff-peer"))
    return cmd_mhandoff_peer(key, &o);
  if (!strcmp(cmd, "rwlock"))
    return cmd_rwlock(key);
  if (!strcmp(cmd, "touch"))
    return cmd_touch(key, &o);
  if (!strcmp(cmd, "touch-peer"))
    return cmd_touch_peer(key, &o);
  if (!strcmp(cmd, "sigsegv"))
    return cmd_sigsegv(&o);
  if (!strcmp(cmd, "mem"))
    return cmd_mem(key, &o);
  if (!strcmp(cmd, "mem-reader"))
    return cmd_mem_reader(key, &o);
  if (!strcmp(cmd, "revoke"))
    return cmd_revoke(key, &o);
  if (!strcmp(cmd, "rv-reader"))
    return rv_child(key, &o, 0);
  if (!strcmp(cmd, "rv-writer"))
    return rv_child(key, &o, 1);
  if (!strcmp(cmd, "fetch"))
    return cmd_fetch(key, &o);
  if (!strcmp(cmd, "fetch-client"))
    return client < o.nproc ? cmd_fetch_client(key, &o, (unsigned)client) : 2;
  usage();
  return 2;
}
