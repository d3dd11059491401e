/* persist.c - SysV programs for the persistence and restart tests (no dshm headers).
 *
 *   make KEY SIZE SEED       create (IPC_EXCL, 0640), fill with a pattern, detach; "id N"
 *   stat KEY                 one line of IPC_STAT fields
 *   check KEY SIZE SEED      attach, verify the pattern; "ok"
 *   counter KEY N PARTIES GO atomic increments; "ready" once attached, "half" after N/2,
 *                            then waits for the file GO to exist; "done" at the end
 *   sum KEY PARTIES          "value V" (the counter's word)
 *   send KEY N GO / recv KEY N GO
 *                            flag/payload handoff of N messages (a payload page, then the
 *                            flag on another page); "ready", "half" and GO as for counter; recv
 *                            checks that every payload word matches the flag
 *   lose KEY GO              attach 128 pages, write page 0, "half", wait for GO (the server
 *                            restarts without --data-dir meanwhile); then IPC_STAT must fail
 *                            with EIDRM ("eidrm") and touching page 127 must raise SIGBUS
 *                            ("sigbus")
 * Exit status: 0 success, 1 a check failed (message on stderr), 2 usage.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#define PROG "persist"
#include "progs.h"

#define PAGE 4096
#define MSG_WORDS (PAGE / 8)

static key_t key_arg(const char *s) {
  return (key_t)strtol(s, NULL, 0);
}

static unsigned char pat(unsigned seed, size_t i) {
  return (unsigned char)(seed * 31u + i * 7u + i / PAGE);
}

/* Attached and past the start barrier: the test may kill the server from now on. */
static void ready(void) {
  printf("ready\n");
  fflush(stdout);
}

static void wait_go(const char *go) {
  printf("half\n");
  fflush(stdout);
  while (access(go, F_OK) != 0)
    usleep(1000); /* the test creates it once the server is down: a bounded poll */
}

static int cmd_make(key_t key, size_t size, unsigned seed) {
  int id = shmget(key, size, IPC_CREAT | IPC_EXCL | 0640);
  unsigned char *p;
  size_t i;

  if (id < 0)
    return fail("shmget");
  p = shmat(id, NULL, 0);
  if (p == (void *)-1)
    return fail("shmat");
  for (i = 0; i < size; i++)
    p[i] = pat(seed, i);
  if (shmdt(p) < 0)
    return fail("shmdt");
  printf("id %d\n", id);
  return 0;
}

static int cmd_stat(key_t key) {
  struct shmid_ds ds;
  int id = shmget(key, 0, 0);

  if (id < 0)
    return fail("shmget");
  if (shmctl(id, IPC_STAT, &ds) < 0)
    return fail("shmctl");
  printf("id %d key %d mode %o size %zu cpid %d lpid %d cuid %u cgid %u uid %u gid %u "
         "atime %ld dtime %ld ctime %ld nattch %lu\n",
         id, (int)ds.shm_perm.__key, ds.shm_perm.mode, (size_t)ds.shm_segsz, (int)ds.shm_cpid,
         (int)ds.shm_lpid, ds.shm_perm.cuid, ds.shm_perm.cgid, ds.shm_perm.uid,
         ds.shm_perm.gid, (long)ds.shm_atime, (long)ds.shm_dtime, (long)ds.shm_ctime,
         (unsigned long)ds.shm_nattch);
  return 0;
}

static int cmd_check(key_t key, size_t size, unsigned seed) {
  unsigned char *p = attach_flags(key, size, IPC_CREAT | 0666);
  size_t i;

  if (p == NULL)
    return 1;
  for (i = 0; i < size; i++)
    if (p[i] != pat(seed, i)) {
      fprintf(stderr, "persist: byte %zu is %u, want %u\n", i, p[i], pat(seed, i));
      return 1;
    }
  shmdt(p);
  printf("ok\n");
  return 0;
}

/* Word 0: the counter; word 1: the start barrier. */
static int cmd_counter(key_t key, long n, long parties, const char *go) {
  uint64_t *c = attach_flags(key, PAGE, IPC_CREAT | 0666);
  long i;

  if (c == NULL)
    return 1;
  __atomic_fetch_add(&c[1], 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&c[1], __ATOMIC_ACQUIRE) < (uint64_t)parties)
    sched_yield();
  ready();
  for (i = 0; i < n; i++) {
    if (i == n / 2)
      wait_go(go);
    __atomic_fetch_add(&c[0], 1, __ATOMIC_SEQ_CST);
  }
  shmdt(c);
  printf("done\n");
  return 0;
}

static int cmd_sum(key_t key) {
  uint64_t *c = attach_flags(key, PAGE, IPC_CREAT | 0666);

  if (c == NULL)
    return 1;
  printf("value %llu\n", (unsigned long long)c[0]);
  shmdt(c);
  return 0;
}

/* Page 0: the flag (word 0) and the ack (word 256); pages 1-2: the payload. */
static int cmd_send(key_t key, long n, const char *go) {
  uint64_t *m = attach_flags(key, 3 * PAGE, IPC_CREAT | 0666);
  long i, w;

  if (m == NULL)
    return 1;
  ready();
  for (i = 1; i <= n; i++) {
    if (i == n / 2)
      wait_go(go);
    for (w = 0; w < 2 * MSG_WORDS; w++)
      m[MSG_WORDS + w] = (uint64_t)i;
    __atomic_store_n(&m[0], (uint64_t)i, __ATOMIC_RELEASE);
    while (__atomic_load_n(&m[256], __ATOMIC_ACQUIRE) != (uint64_t)i)
      sched_yield();
  }
  shmdt(m);
  printf("done\n");
  return 0;
}

static int cmd_recv(key_t key, long n, const char *go) {
  uint64_t *m = attach_flags(key, 3 * PAGE, IPC_CREAT | 0666);
  long i, w;

  if (m == NULL)
    return 1;
  ready();
  for (i = 1; i <= n; i++) {
    if (i == n / 2)
      wait_go(go);
    while (__atomic_load_n(&m[0], __ATOMIC_ACQUIRE) != (uint64_t)i)
      sched_yield();
    for (w = 0; w < 2 * MSG_WORDS; w++)
      if (m[MSG_WORDS + w] != (uint64_t)i) {
        fprintf(stderr, "persist: message %ld: payload word %ld is %llu (stale)\n", i, w,
                (unsigned long long)m[MSG_WORDS + w]);
        return 1;
      }
    __atomic_store_n(&m[256], (uint64_t)i, __ATOMIC_RELEASE);
  }
  shmdt(m);
  printf("done\n");
  return 0;
}

static void on_bus(int sig) {
  (void)sig;
  static const char msg[] = "sigbus\n";
  if (write(1, msg, sizeof msg - 1) < 0)
    _exit(3);
  _exit(0);
}

static int cmd_lose(key_t key, const char *go) {
  volatile unsigned char *p = attach_flags(key, 128 * PAGE, IPC_CREAT | 0666); /* beyond any read/write-ahead */
  struct shmid_ds ds;
  int id = shmget(key, 0, 0);

  if (p == NULL)
    return 1;
  p[0] = 1;
  wait_go(go);
  if (shmctl(id, IPC_STAT, &ds) == 0 || errno != EIDRM)
    return fail("IPC_STAT after the restart did not fail with EIDRM");
  printf("eidrm\n");
  fflush(stdout);
  signal(SIGBUS, on_bus);
  p[127 * PAGE] = 1;
  fprintf(stderr, "persist: no SIGBUS\n");
  return 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 5 && strcmp(argv[1], "make") == 0)
    return cmd_make(key_arg(argv[2]), strtoul(argv[3], NULL, 0), (unsigned)atoi(argv[4]));
  if (argc == 3 && strcmp(argv[1], "stat") == 0)
    return cmd_stat(key_arg(argv[2]));
  if (argc == 5 && strcmp(argv[1], "check") == 0)
    return cmd_check(key_arg(argv[2]), strtoul(argv[3], NULL, 0), (unsigned)atoi(argv[4]));
  if (argc == 6 && strcmp(argv[1], "counter") == 0)
    return cmd_counter(key_arg(argv[2]), atol(argv[3]), atol(argv[4]), argv[5]);
  if (argc == 3 && strcmp(argv[1], "sum") == 0)
    return cmd_sum(key_arg(argv[2]));
  if (argc == 5 && strcmp(argv[1], "send") == 0)
    return cmd_send(key_arg(argv[2]), atol(argv[3]), argv[4]);
  if (argc == 5 && strcmp(argv[1], "recv") == 0)
    return cmd_recv(key_arg(argv[2]), atol(argv[3]), argv[4]);
  if (argc == 4 && strcmp(argv[1], "lose") == 0)
    return cmd_lose(key_arg(argv[2]), argv[3]);
  fprintf(stderr, "usage: persist make|stat|check|counter|sum|send|recv ...\n");
  return 2;
}
