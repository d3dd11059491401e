/* shmtool.c - plain SysV shared-memory workloads for the integration tests (no dshm headers).
 *
 * The same binary runs natively (the kernel is the oracle) and under LD_PRELOAD; every
 * subcommand prints normalized lines (no raw ids, pids or times) so outputs can be compared.
 * Exit status: 0 success, 1 a check failed (message on stderr), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#define PAGE 4096

static int fail(const char *what) {
  fprintf(stderr, "shmtool: %s: %s\n", what, strerror(errno));
  return 1;
}

static key_t key_arg(const char *s) {
  return (key_t)strtol(s, NULL, 0);
}

static void *attach(key_t key, size_t size, int shmflg, int *idp) {
  int id = shmget(key, size, IPC_CREAT | 0666);
  void *p;
  if (id < 0) {
    fail("shmget");
    return NULL;
  }
  p = shmat(id, NULL, shmflg);
  if (p == (void *)-1) {
    fail("shmat");
    return NULL;
  }
  if (idp)
    *idp = id;
  return p;
}

/* Waits until `parties` processes have arrived at the word, so that the work after it
 * overlaps in time instead of running one process after the other. */
static void barrier(uint64_t *word, long parties) {
  __atomic_fetch_add(word, 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(word, __ATOMIC_ACQUIRE) < (uint64_t)parties)
    sched_yield();
}

struct counter_job {
  uint64_t *c;
  long n;
};

static void *count_loop(void *arg) {
  struct counter_job *job = arg;
  for (long i = 0; i < job->n; i++)
    __atomic_fetch_add(job->c, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* counter KEY N [PARTIES [THREADS]]: N atomic increments of the first word by each of
 * THREADS threads, after a barrier of PARTIES processes on the next page. */
static int cmd_counter(key_t key, long n, long parties, long threads) {
  uint64_t *c = attach(key, 2 * PAGE, 0, NULL);
  pthread_t tid[64];
  struct counter_job job;
  if (c == NULL)
    return 1;
  if (threads < 1 || threads > 64)
    return 2;
  barrier(c + PAGE / 8, parties);
  job.c = c;
  job.n = n;
  for (long t = 1; t < threads; t++)
    if (pthread_create(&tid[t], NULL, count_loop, &job) != 0)
      return fail("pthread_create");
  count_loop(&job);
  for (long t = 1; t < threads; t++)
    pthread_join(tid[t], NULL);
  if (shmdt(c) != 0)
    return fail("shmdt");
  return 0;
}

/* get KEY: prints the first word. */
static int cmd_get(key_t key) {
  uint64_t *c = attach(key, PAGE, SHM_RDONLY, NULL);
  if (c == NULL)
    return 1;
  printf("value %" PRIu64 "\n", __atomic_load_n(c, __ATOMIC_SEQ_CST));
  return shmdt(c) == 0 ? 0 : fail("shmdt");
}

/* fill KEY SIZE SEED: writes a seed-dependent pattern over SIZE bytes, then detaches. */
static unsigned char pattern(size_t i, unsigned seed) {
  return (unsigned char)((i * 2654435761u >> 7) ^ seed);
}

static int cmd_fill(key_t key, size_t size, unsigned seed, int detach) {
  unsigned char *p = attach(key, size, 0, NULL);
  if (p == NULL)
    return 1;
  for (size_t i = 0; i < size; i++)
    p[i] = pattern(i, seed);
  if (detach && shmdt(p) != 0)
    return fail("shmdt");
  printf("filled %zu\n", size);
  return 0; /* without detach, exit() must write the data back */
}

/* verify KEY SIZE SEED: checks the pattern. */
static int cmd_verify(key_t key, size_t size, unsigned seed) {
  unsigned char *p = attach(key, size, SHM_RDONLY, NULL);
  if (p == NULL)
    return 1;
  for (size_t i = 0; i < size; i++) {
    if (p[i] != pattern(i, seed)) {
      fprintf(stderr, "shmtool: byte %zu is %u, expected %u\n", i, p[i], pattern(i, seed));
      return 1;
    }
  }
  printf("verified %zu\n", size);
  return shmdt(p) == 0 ? 0 : fail("shmdt");
}

/* Message passing across pages: page 0 holds the flag and the ack, page 1 the payload.
 * The receiver must never see a flag without the payload written before it. */
struct mailbox {
  uint64_t flag;
  uint64_t ack;
  char pad[PAGE - 16];
  uint64_t payload[PAGE / 8];
};

static void spin_until(uint64_t *word, uint64_t want) {
  while (__atomic_load_n(word, __ATOMIC_ACQUIRE) != want)
    sched_yield();
}

static int cmd_send(key_t key, long rounds) {
  struct mailbox *mb = attach(key, sizeof *mb, 0, NULL);
  if (mb == NULL)
    return 1;
  for (long r = 1; r <= rounds; r++) {
    for (size_t i = 0; i < PAGE / 8; i++)
      mb->payload[i] = (uint64_t)r * 1000003u + i;
    __atomic_store_n(&mb->flag, (uint64_t)r, __ATOMIC_RELEASE);
    spin_until(&mb->ack, (uint64_t)r);
  }
  printf("sent %ld\n", rounds);
  return shmdt(mb) == 0 ? 0 : fail("shmdt");
}

static int cmd_recv(key_t key, long rounds) {
  struct mailbox *mb = attach(key, sizeof *mb, 0, NULL);
  if (mb == NULL)
    return 1;
  for (long r = 1; r <= rounds; r++) {
    spin_until(&mb->flag, (uint64_t)r);
    for (size_t i = 0; i < PAGE / 8; i++) {
      if (mb->payload[i] != (uint64_t)r * 1000003u + i) {
        fprintf(stderr, "shmtool: round %ld: stale payload word %zu\n", r, i);
        return 1;
      }
    }
    __atomic_store_n(&mb->ack, (uint64_t)r, __ATOMIC_RELEASE);
  }
  printf("received %ld\n", rounds);
  return shmdt(mb) == 0 ? 0 : fail("shmdt");
}

/* rdonly-write KEY: reads through a SHM_RDONLY attachment, then writes: the kernel kills
 * the process with SIGSEGV; reaching the end is a failure. */
static int cmd_rdonly_write(key_t key) {
  volatile uint64_t *c = attach(key, PAGE, SHM_RDONLY, NULL);
  if (c == NULL)
    return 1;
  printf("read %" PRIu64 "\n", c[0]);
  fflush(stdout);
  c[0] = 42;
  fprintf(stderr, "shmtool: write to a SHM_RDONLY attachment succeeded\n");
  return 1;
}

/* hold KEY: takes the first page exclusively (writes 7), says "held", waits to be killed. */
static int cmd_hold(key_t key) {
  volatile uint64_t *c = attach(key, PAGE, 0, NULL);
  if (c == NULL)
    return 1;
  c[0] = 7;
  printf("held\n");
  fflush(stdout);
  for (;;)
    pause();
}

static void print_stat(int id) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) {
    printf("stat: %s\n", strerror(errno));
    return;
  }
  printf("stat: segsz=%zu nattch=%lu mode=%04o dest=%d private=%d\n", (size_t)ds.shm_segsz,
         (unsigned long)ds.shm_nattch, (unsigned)(ds.shm_perm.mode & 0777),
         (ds.shm_perm.mode & SHM_DEST) != 0, ds.shm_perm.__key == IPC_PRIVATE);
}

/* nattch KEY: prints the segment's attach count seen by a fresh attacher (itself included). */
static int cmd_nattch(key_t key) {
  int id;
  volatile uint64_t *c = attach(key, PAGE, 0, &id);
  if (c == NULL)
    return 1;
  print_stat(id);
  c[0] += 1; /* the page a killed holder owned must be writable */
  printf("value %" PRIu64 "\n", (uint64_t)c[0]);
  return shmdt((void *)c) == 0 ? 0 : fail("shmdt");
}

/* Prints a call's outcome; errno is read only after the call returned. */
static void report(const char *what, int rc) {
  int err = errno;
  printf("%s: %s\n", what, rc < 0 ? strerror(err) : "ok");
}

/* rmid KEY: the IPC_RMID-while-attached scenario, printed step by step. */
static int cmd_rmid(key_t key) {
  int id = shmget(key, 10000, IPC_CREAT | IPC_EXCL | 0640);
  char *a, *b;
  if (id < 0)
    return fail("shmget");
  a = shmat(id, NULL, 0);
  b = shmat(id, NULL, 0);
  if (a == (void *)-1 || b == (void *)-1)
    return fail("shmat");
  strcpy(a, "hello");
  printf("second view sees: %s\n", b);
  print_stat(id);
  printf("rmid: %d\n", shmctl(id, IPC_RMID, NULL));
  print_stat(id);
  report("shmget after rmid", shmget(key, 10000, 0));
  strcpy(a + 5000, "still usable");
  printf("after rmid: %s %s\n", b, b + 5000);
  printf("shmdt a: %d\n", shmdt(a));
  print_stat(id);
  printf("shmdt b: %d\n", shmdt(b));
  report("stat after last detach", shmctl(id, IPC_STAT, &(struct shmid_ds){0}));
  report("shmdt again", shmdt(b));
  return 0;
}

/* errors KEY: shmget's error paths for one key. */
static int cmd_errors(key_t key) {
  int id;
#define TRY(expr) report(#expr, (expr))
  TRY(shmget(key, 4096, 0600));
  TRY(shmget(key, 0, IPC_CREAT | 0600));
  TRY(id = shmget(key, 8192, IPC_CREAT | 0600));
  TRY(shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600));
  TRY(shmget(key, 8193, 0600));
  TRY(shmget(key, 100, 0600));
  TRY(shmctl(id, IPC_RMID, NULL));
  TRY(shmctl(id, IPC_RMID, NULL));
  TRY(shmctl(-1, IPC_STAT, &(struct shmid_ds){0}));
#undef TRY
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: shmtool counter KEY N [PARTIES [THREADS]] | get KEY | fill KEY SIZE SEED [nodt] |\n"
                  "       verify KEY SIZE SEED | send KEY ROUNDS | recv KEY ROUNDS |\n"
                  "       rdonly-write KEY | hold KEY | nattch KEY | rmid KEY | errors KEY\n");
  return 2;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3)
    return usage();
  const char *cmd = argv[1];
  key_t key = key_arg(argv[2]);
  if (!strcmp(cmd, "counter") && argc >= 4)
    return cmd_counter(key, atol(argv[3]), argc > 4 ? atol(argv[4]) : 1,
                       argc > 5 ? atol(argv[5]) : 1);
  if (!strcmp(cmd, "get"))
    return cmd_get(key);
  if (!strcmp(cmd, "fill") && argc >= 5)
    return cmd_fill(key, strtoul(argv[3], NULL, 0), (unsigned)atoi(argv[4]),
                    !(argc == 6 && !strcmp(argv[5], "nodt")));
  if (!strcmp(cmd, "verify") && argc == 5)
    return cmd_verify(key, strtoul(argv[3], NULL, 0), (unsigned)atoi(argv[4]));
  if (!strcmp(cmd, "send") && argc == 4)
    return cmd_send(key, atol(argv[3]));
  if (!strcmp(cmd, "recv") && argc == 4)
    return cmd_recv(key, atol(argv[3]));
  if (!strcmp(cmd, "rdonly-write"))
    return cmd_rdonly_write(key);
  if (!strcmp(cmd, "hold"))
    return cmd_hold(key);
  if (!strcmp(cmd, "nattch"))
    return cmd_nattch(key);
  if (!strcmp(cmd, "rmid"))
    return cmd_rmid(key);
  if (!strcmp(cmd, "errors"))
    return cmd_errors(key);
  return usage();
}
