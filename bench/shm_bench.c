/* shm_bench: a plain SysV shared-memory program that measures read faults, write ping-pong and cold sequential reads (run natively or under the dshm shim). */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
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
};

static const struct shm_opts shm_defaults = {
  .seg_bytes = 64u << 20,
  .stride = 64,
  .rounds = 9,
  .pp_iters = 2000,
  .pp_warmup = 200,
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
  return rc ? rc : run_faults(id, "fault_scattered_us", plan_scattered, o->rounds, o);
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

static int spawn_self(pid_t *pid, char *const argv[]) {
  int err = posix_spawn(pid, "/proc/self/exe", NULL, NULL, argv, environ);
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
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

static void fmt_opts(char buf[][32], key_t key, const struct shm_opts *o) {
  snprintf(buf[0], 32, "%#x", (unsigned)key);
  snprintf(buf[1], 32, "%zu", o->seg_bytes);
  snprintf(buf[2], 32, "%u", o->stride);
  snprintf(buf[3], 32, "%u", o->rounds);
  snprintf(buf[4], 32, "%u", o->pp_iters);
  snprintf(buf[5], 32, "%u", o->pp_warmup);
}

/* Runs "shm_bench CMD KEY opts..." as a fresh process (exec, never a bare fork:
 * under the shim a fork after shmat is not supported, and a fresh process is what
 * "cold" means anyway). */
static int run_phase(const char *cmd, key_t key, const struct shm_opts *o) {
  /* Says where a hung or failed run stopped. */
  fprintf(stderr, "shm_bench: phase %s\n", cmd);
  char a[6][32];
  fmt_opts(a, key, o);
  char *argv[] = {"shm_bench", (char *)cmd, a[0], a[1], a[2], a[3], a[4], a[5], NULL};
  pid_t pid;
  if (spawn_self(&pid, argv) < 0)
    return die_errno("posix_spawn");
  return wait_child(pid, cmd);
}

/* Side A: spawn B, then time A->B->A round trips on one shared word. */
static int cmd_pingpong(key_t key, const struct shm_opts *o) {
  char a[6][32];
  fmt_opts(a, key, o);
  char *argv[] = {"shm_bench", "pp-peer", a[0], a[1], a[2], a[3], a[4], a[5], NULL};
  pid_t pid;
  if (spawn_self(&pid, argv) < 0)
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

static int cmd_rm(key_t key) {
  int id = shmget(key, 0, 0);
  if (id < 0)
    return errno == ENOENT ? 0 : die_errno("rm: shmget");
  return shmctl(id, IPC_RMID, NULL) < 0 ? die_errno("rm: shmctl") : 0;
}

/* Every phase in its own process; this one never touches shared memory itself. */
static int cmd_all(key_t key, const struct shm_opts *o) {
  int rc = run_phase("fill", key, o);
  if (!rc)
    rc = run_phase("fault", key, o);
  if (!rc)
    rc = run_phase("seqread", key, o);
  int rm = run_phase("rm", key, o);
  if (!rc)
    rc = run_phase("pingpong", key + 1, o);
  return rc ? rc : rm;
}

static void usage(void) {
  fprintf(stderr,
          "usage: shm_bench all|fill|fault|seqread|pingpong|rm "
          "[KEY [SEG_BYTES [STRIDE [ROUNDS [PP_ITERS [PP_WARMUP]]]]]]\n"
          "  all runs fill, fault, seqread, rm (segment KEY) and pingpong (KEY+1),\n"
          "  each in a fresh process. Output lines start with \"result\".\n");
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
  if (argc < 2 || argc > 8) {
    usage();
    return 2;
  }
  struct shm_opts o = shm_defaults;
  /* Default key: unlikely to collide with anything else on the machine. */
  key_t key = (key_t)(0x64730000u | ((unsigned)getpid() & 0xfffe));
  unsigned long long v[6];
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
  usage();
  return 2;
}
