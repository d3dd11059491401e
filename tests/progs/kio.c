/* kio.c - plain SysV programs where the kernel reads and writes segment memory (no dshm headers).
 *
 * Every subcommand runs natively (the kernel is the oracle) and under LD_PRELOAD and prints
 * normalized lines. Exit status: 0 success, 1 a check failed (message on stderr), 2 usage.
 *
 *   kio pipe KEY          read/pread/readv/write/writev/send/recv into and from pages in
 *                         every state, buffers straddling pages; prints what each returned
 *   kio rdonly KEY        the same calls on a SHM_RDONLY attachment (EFAULT as the kernel)
 *   kio hold KEY          writes a pattern into pages 0-7 and keeps them until released
 *   kio fromheld KEY      writes pages 0-7 held by `hold` to a pipe and a socket
 *   kio thief KEY         keeps writing pages 0 and 1 until told to stop
 *   kio dgram KEY N       receives N datagrams into pages 0-1 while `thief` steals them
 *   kio vmas KEY PAGES TOUCHES SEED ID PROCS [fill]
 *                         random reads and increments over a PAGES-page segment, as process
 *                         ID of PROCS; counts its mappings (/proc/self/maps) all along and
 *                         says whether they stayed within $KIO_MAX_MAPS more than before the
 *                         attach. `fill` first uses up all but ~300 of vm.max_map_count.
 *   kio vcheck KEY PAGES TOUCHES SEED PROCS   replays the vmas runs and checks every counter
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE 4096

static int fail(const char *what) {
  fprintf(stderr, "kio: %s: %s\n", what, strerror(errno));
  return 1;
}

static key_t key_arg(const char *s) {
  return (key_t)strtol(s, NULL, 0);
}

static uint8_t *attach(key_t key, size_t size, int shmflg) {
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
  return p;
}

static uint8_t pat(size_t i, unsigned seed) {
  return (uint8_t)(i * 31u + seed * 7u + (i >> 12));
}

static void fill(uint8_t *p, size_t n, size_t base, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = pat(base + i, seed);
}

static int check(const uint8_t *p, size_t n, size_t base, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pat(base + i, seed))
      return 0;
  return 1;
}

/* "name n" or "name -1 ERRNO": the kernel's answer, normalized. */
static void show(const char *name, ssize_t n, int ok) {
  if (n < 0)
    printf("%s -1 %s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  else
    printf("%s %zd%s\n", name, n, ok ? "" : " BAD-DATA");
}

/* Pushes n pattern bytes into a pipe, so a read can take them. */
static int feed(int fd, size_t n, unsigned seed) {
  uint8_t buf[16384];
  if (n > sizeof buf)
    return -1;
  fill(buf, n, 0, seed);
  return write(fd, buf, n) == (ssize_t)n ? 0 : -1;
}

static int cmd_pipe(key_t key) {
  uint8_t *s = attach(key, 100 * PAGE, 0), tmp[3 * PAGE], *t;
  int p[2], sv[2];
  char path[] = "/tmp/kio-XXXXXX";
  struct iovec iov[3];
  ssize_t n;
  int fd, nz = 0;

  if (s == NULL)
    return 1;
  if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    return fail("pipe");

  /* read() into an INVALID page. */
  feed(p[1], 3000, 1);
  n = read(p[0], s + 10 * PAGE + 100, 3000);
  show("read-invalid", n, check(s + 10 * PAGE + 100, 3000, 0, 1));

  /* Pages 0-63 SHARED, 64 onwards INVALID: straddle 62..65. Read from the top down: each
   * read is an isolated fault, fetched alone (the agent reads ahead only for runs). */
  for (int i = 63; i >= 0; i--)
    nz += s[(size_t)i * PAGE] != 0;
  feed(p[1], 3 * PAGE, 2);
  n = read(p[0], s + 62 * PAGE + 2048, 3 * PAGE);
  show("read-shared-invalid", n, check(s + 62 * PAGE + 2048, 3 * PAGE, 0, 2));

  /* Pages 81-96 EXCLUSIVE (written from the top down, each alone), 97 INVALID: without
   * pinning the kernel would copy into 96 and stop at 97, a silent short read. */
  for (int i = 96; i >= 81; i--)
    s[(size_t)i * PAGE] = 1;
  feed(p[1], 2 * PAGE, 8);
  n = read(p[0], s + 96 * PAGE + 10, 2 * PAGE);
  show("read-excl-invalid", n, check(s + 96 * PAGE + 10, 2 * PAGE, 0, 8));

  /* pread from a file into an INVALID page, then pwrite it back elsewhere. */
  fd = mkstemp(path);
  if (fd < 0)
    return fail("mkstemp");
  unlink(path);
  fill(tmp, sizeof tmp, 0, 3);
  if (write(fd, tmp, sizeof tmp) != (ssize_t)sizeof tmp)
    return fail("write file");
  n = pread(fd, s + 70 * PAGE + 7, 2 * PAGE, 0);
  show("pread", n, check(s + 70 * PAGE + 7, 2 * PAGE, 0, 3));
  n = pwrite(fd, s + 70 * PAGE + 7, 2 * PAGE, 3 * PAGE);
  memset(tmp, 0, sizeof tmp);
  show("pwrite", n, pread(fd, tmp, 2 * PAGE, 3 * PAGE) == 2 * PAGE && check(tmp, 2 * PAGE, 0, 3));

  /* readv across three pages of two different states, then writev them out again. */
  feed(p[1], 20 + 5000 + 10, 4);
  iov[0] = (struct iovec){s + 20 * PAGE - 10, 20};
  iov[1] = (struct iovec){s + 30 * PAGE + 100, 5000};
  iov[2] = (struct iovec){s + 5, 10};
  n = readv(p[0], iov, 3);
  show("readv", n, check(s + 20 * PAGE - 10, 20, 0, 4) && check(s + 30 * PAGE + 100, 5000, 20, 4) &&
                       check(s + 5, 10, 5020, 4));
  n = writev(p[1], iov, 3);
  memset(tmp, 0, sizeof tmp);
  show("writev", n, read(p[0], tmp, 5030) == 5030 && check(tmp, 5030, 0, 4));

  /* recv/send over a stream socket, and recvmsg into a buffer straddling pages. */
  fill(tmp, 6000, 0, 5);
  if (send(sv[1], tmp, 6000, 0) != 6000)
    return fail("send");
  t = s + 40 * PAGE + 4000;
  for (size_t got = 0; got < 6000; got += (size_t)n) {
    n = recv(sv[0], t + got, 6000 - got, 0);
    if (n <= 0)
      break;
  }
  show("recv", n < 0 ? n : 6000, check(t, 6000, 0, 5));
  n = send(sv[0], t, 6000, 0);
  memset(tmp, 0, sizeof tmp);
  {
    size_t got = 0;
    ssize_t m;
    while (got < 6000 && (m = recv(sv[1], tmp + got, 6000 - got, 0)) > 0)
      got += (size_t)m;
    show("send", n, got == 6000 && check(tmp, 6000, 0, 5));
  }
  {
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    fill(tmp, 2 * PAGE, 0, 6);
    if (write(sv[1], tmp, 2 * PAGE) != 2 * PAGE)
      return fail("write sock");
    iov[0] = (struct iovec){s + 50 * PAGE - 100, 2 * PAGE};
    mh.msg_iov = iov;
    mh.msg_iovlen = 1;
    n = recvmsg(sv[0], &mh, MSG_WAITALL);
    show("recvmsg", n, check(s + 50 * PAGE - 100, 2 * PAGE, 0, 6));
    n = sendmsg(sv[0], &mh, 0);
    memset(tmp, 0, sizeof tmp);
    show("sendmsg", n, recv(sv[1], tmp, 2 * PAGE, MSG_WAITALL) == 2 * PAGE && check(tmp, 2 * PAGE, 0, 6));
  }
  printf("zero-before %d\n", nz);
  return shmdt(s) < 0 ? fail("shmdt") : 0;
}

static int cmd_rdonly(key_t key) {
  uint8_t *rw = attach(key, 4 * PAGE, 0), *ro, tmp[PAGE];
  int p[2], u[2];
  ssize_t n;

  if (rw == NULL)
    return 1;
  fill(rw, 4 * PAGE, 0, 9);
  ro = attach(key, 4 * PAGE, SHM_RDONLY);
  if (ro == NULL || pipe(p) < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, u) < 0)
    return 1;
  feed(p[1], 100, 1);
  n = read(p[0], ro + PAGE, 100);
  show("read-rdonly", n, 1);
  n = read(p[0], tmp, sizeof tmp); /* the kernel consumed nothing */
  show("read-after", n, check(tmp, 100, 0, 1));
  n = send(u[1], "datagram", 8, 0);
  n = recv(u[0], ro + 2 * PAGE, 100, 0);
  show("recv-rdonly", n, 1);
  n = recv(u[0], tmp, sizeof tmp, MSG_DONTWAIT);
  show("recv-after", n, 1);
  n = write(p[1], ro + 3 * PAGE - 10, 30);
  show("write-from-rdonly", n, read(p[0], tmp, 30) == 30 && check(tmp, 30, 3 * PAGE - 10, 9));
  if (shmdt(ro) < 0 || shmdt(rw) < 0)
    return fail("shmdt");
  return 0;
}

/* Pages 0-7 written, then kept until page 9 says "done" (flag on page 8 says "ready"). */
static int cmd_hold(key_t key) {
  uint8_t *s = attach(key, 10 * PAGE, 0);
  volatile uint64_t *ready = (uint64_t *)(s + 8 * PAGE), *done = (uint64_t *)(s + 9 * PAGE);

  if (s == NULL)
    return 1;
  fill(s, 8 * PAGE, 0, 7);
  *ready = 1;
  while (!*done)
    sched_yield();
  printf("released\n");
  return 0;
}

static int cmd_fromheld(key_t key) {
  uint8_t *s = attach(key, 10 * PAGE, 0), tmp[4 * PAGE];
  volatile uint64_t *ready = (uint64_t *)(s + 8 * PAGE), *done = (uint64_t *)(s + 9 * PAGE);
  int p[2], u[2];
  ssize_t n;

  if (s == NULL || pipe(p) < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, u) < 0)
    return 1;
  while (!*ready)
    sched_yield();
  n = write(p[1], s + 100, 3 * PAGE);
  show("write-held", n, n == 3 * PAGE && read(p[0], tmp, 3 * PAGE) == 3 * PAGE && check(tmp, 3 * PAGE, 100, 7));
  n = send(u[1], s + 4 * PAGE - 8, 3 * PAGE, 0);
  show("send-held", n, n == 3 * PAGE && recv(u[0], tmp, sizeof tmp, 0) == 3 * PAGE && check(tmp, 3 * PAGE, 4 * PAGE - 8, 7));
  *done = 1;
  return shmdt(s) < 0 ? fail("shmdt") : 0;
}

/* Writes words at both ends of pages 0 and 1 (never the datagram buffer in between). */
static int cmd_thief(key_t key) {
  uint8_t *s = attach(key, 4 * PAGE, 0);
  volatile uint64_t *a, *b, *stop, *started;

  if (s == NULL)
    return 1;
  a = (uint64_t *)s;
  b = (uint64_t *)(s + 2 * PAGE - 8);
  stop = (uint64_t *)(s + 3 * PAGE);
  started = (uint64_t *)(s + 3 * PAGE + 8);
  __atomic_fetch_add(started, 1, __ATOMIC_SEQ_CST);
  while (!*stop) {
    __atomic_fetch_add(a, 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(b, 1, __ATOMIC_SEQ_CST);
    sched_yield();
  }
  printf("thief done\n");
  return 0;
}

struct dgram_job {
  int fd;
  struct sockaddr_in to;
  long n;
  volatile long acked;
};

/* Sends datagram i once datagram i-1 was received: the socket buffer never overflows, so
 * the kernel drops nothing and every loss would be ours. */
static void *dgram_sender(void *arg) {
  struct dgram_job *j = arg;
  uint8_t buf[1000];

  for (long i = 0; i < j->n; i++) {
    while (__atomic_load_n(&j->acked, __ATOMIC_ACQUIRE) < i)
      sched_yield();
    fill(buf, sizeof buf, 0, (unsigned)i);
    memcpy(buf, &i, sizeof i);
    if (sendto(j->fd, buf, sizeof buf, 0, (struct sockaddr *)&j->to, sizeof j->to) != sizeof buf)
      return (void *)1;
  }
  return NULL;
}

static int cmd_dgram(key_t key, long n) {
  uint8_t *s = attach(key, 4 * PAGE, 0), *buf;
  volatile uint64_t *stop, *started;
  struct sockaddr_in *from;
  socklen_t *flen;
  struct dgram_job job;
  socklen_t al = sizeof job.to;
  pthread_t th;
  int rfd, bad = 0;
  long got = 0;

  if (s == NULL)
    return 1;
  buf = s + PAGE - 500; /* straddles pages 0 and 1 */
  from = (struct sockaddr_in *)(s + PAGE + 600);
  flen = (socklen_t *)(s + PAGE + 700);
  stop = (uint64_t *)(s + 3 * PAGE);
  started = (uint64_t *)(s + 3 * PAGE + 8);
  rfd = socket(AF_INET, SOCK_DGRAM, 0);
  job.fd = socket(AF_INET, SOCK_DGRAM, 0);
  memset(&job.to, 0, sizeof job.to);
  job.to.sin_family = AF_INET;
  job.to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (rfd < 0 || job.fd < 0 || bind(rfd, (struct sockaddr *)&job.to, sizeof job.to) < 0 ||
      getsockname(rfd, (struct sockaddr *)&job.to, &al) < 0)
    return fail("socket");
  while (*started == 0)
    sched_yield();
  job.n = n;
  job.acked = 0;
  if (pthread_create(&th, NULL, dgram_sender, &job) != 0)
    return fail("pthread_create");
  for (long i = 0; i < n; i++) {
    ssize_t r;
    long seq = -1;
    if (i % 3 == 0) {
      r = recv(rfd, buf, 1000, 0);
    } else if (i % 3 == 1) {
      *flen = sizeof *from;
      r = recvfrom(rfd, buf, 1000, 0, (struct sockaddr *)from, flen);
      if (r >= 0 && (*flen != sizeof *from || from->sin_family != AF_INET))
        bad++;
    } else {
      struct iovec iov[2] = {{buf, 300}, {buf + 300, 700}};
      struct msghdr mh;
      memset(&mh, 0, sizeof mh);
      mh.msg_iov = iov;
      mh.msg_iovlen = 2;
      r = recvmsg(rfd, &mh, 0);
    }
    if (r != 1000) {
      fprintf(stderr, "kio: datagram %ld: %zd (%s)\n", i, r, strerror(errno));
      return 1;
    }
    memcpy(&seq, buf, sizeof seq);
    if (seq != i || !check(buf + sizeof seq, 1000 - sizeof seq, sizeof seq, (unsigned)i))
      bad++;
    got++;
    __atomic_store_n(&job.acked, i + 1, __ATOMIC_RELEASE);
  }
  *stop = 1;
  pthread_join(th, NULL);
  printf("received %ld in order, bad %d\n", got, bad);
  return bad ? 1 : 0;
}

static uint64_t rnd(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static uint64_t rnd_seed(unsigned seed, long id) {
  return 0x9e3779b97f4a7c15ull * (uint64_t)(seed + 1) + (uint64_t)id * 0x1000193ull + 1;
}

/* Lines of /proc/self/maps; with seg_only, only the segments' (kernel: "/SYSV...",
 * under the shim its memfd "dshm:..."), whatever else the process maps. */
static long count_maps_of(int seg_only) {
  static char buf[1 << 20];
  size_t len = 0;
  long lines = 0;
  ssize_t n;
  int fd = open("/proc/self/maps", O_RDONLY);
  char *line, *save = NULL;

  if (fd < 0)
    return -1;
  while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
    len += (size_t)n;
  close(fd);
  buf[len] = '\0';
  for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
    if (!seg_only || strstr(line, "SYSV") || strstr(line, "dshm:"))
      lines++;
  return lines;
}

static long count_maps(void) {
  return count_maps_of(0);
}

/* Uses up the process's mappings until only `left` remain below vm.max_map_count. */
static int fill_maps(long left) {
  char buf[32] = "";
  int fd = open("/proc/sys/vm/max_map_count", O_RDONLY);
  long max, have = count_maps(), i;

  if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
    return -1;
  close(fd);
  max = atol(buf);
  for (i = 0; have + i < max - left; i++) {
    /* Alternate protections so that neighbours never merge. */
    void *p = mmap(NULL, PAGE, (i & 1) ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      return -1;
  }
  return 0;
}

static int cmd_vmas(key_t key, long pages, long touches, unsigned seed, long id, long procs, int fill_first) {
  long limit = getenv("KIO_MAX_MAPS") ? atol(getenv("KIO_MAX_MAPS")) : 1;
  long base, top, m;
  uint64_t x = rnd_seed(seed, id), sum = 0;
  volatile uint64_t *w;
  uint8_t *s;

  if (fill_first && fill_maps(300) < 0)
    return fail("fill");
  base = count_maps_of(1);
  top = base;
  s = attach(key, (size_t)pages * PAGE, 0);
  if (s == NULL)
    return 1;
  w = (uint64_t *)s;
  __atomic_fetch_add(&w[0], 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&w[0], __ATOMIC_ACQUIRE) < (uint64_t)procs)
    sched_yield();
  for (long i = 0; i < touches; i++) {
    uint64_t r = rnd(&x);
    long pg = 1 + (long)(r % (uint64_t)(pages - 1));
    if ((r >> 40) & 1)
      __atomic_fetch_add(&w[pg * (PAGE / 8) + id], 1, __ATOMIC_SEQ_CST);
    else
      sum += w[pg * (PAGE / 8) + (long)((r >> 41) % 8)];
    if (i % 64 == 0 && (m = count_maps_of(1)) > top)
      top = m;
  }
  if ((m = count_maps_of(1)) > top)
    top = m;
  fprintf(stderr, "kio vmas %ld: segment mappings before %ld, most %ld, limit +%ld; all %ld (sum %llu)\n",
          id, base, top, limit, count_maps(), (unsigned long long)sum);
  printf("%s\n", top - base <= limit ? "maps within limit" : "maps over limit");
  return shmdt(s) < 0 ? fail("shmdt") : 0;
}

static int cmd_vcheck(key_t key, long pages, long touches, unsigned seed, long procs) {
  uint32_t *want = calloc((size_t)pages * (size_t)procs, sizeof *want);
  uint8_t *s = attach(key, (size_t)pages * PAGE, 0);
  volatile uint64_t *w = (uint64_t *)s;
  long bad = 0, checked = 0;
  uint64_t total = 0;

  if (want == NULL || s == NULL)
    return 1;
  for (long id = 0; id < procs; id++) {
    uint64_t x = rnd_seed(seed, id);
    for (long i = 0; i < touches; i++) {
      uint64_t r = rnd(&x);
      long pg = 1 + (long)(r % (uint64_t)(pages - 1));
      if ((r >> 40) & 1)
        want[pg * procs + id]++;
    }
  }
  for (long pg = 1; pg < pages; pg++)
    for (long id = 0; id < procs; id++)
      if (want[pg * procs + id] != 0) {
        checked++;
        total += want[pg * procs + id];
        if (w[pg * (PAGE / 8) + id] != want[pg * procs + id])
          bad++;
      }
  printf("counters %ld, increments %llu, wrong %ld\n", checked, (unsigned long long)total, bad);
  free(want);
  return bad ? 1 : 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 3 && strcmp(argv[1], "pipe") == 0)
    return cmd_pipe(key_arg(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "rdonly") == 0)
    return cmd_rdonly(key_arg(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "hold") == 0)
    return cmd_hold(key_arg(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "fromheld") == 0)
    return cmd_fromheld(key_arg(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "thief") == 0)
    return cmd_thief(key_arg(argv[2]));
  if (argc >= 4 && strcmp(argv[1], "dgram") == 0)
    return cmd_dgram(key_arg(argv[2]), atol(argv[3]));
  if (argc >= 8 && strcmp(argv[1], "vmas") == 0)
    return cmd_vmas(key_arg(argv[2]), atol(argv[3]), atol(argv[4]), (unsigned)atol(argv[5]),
                    atol(argv[6]), atol(argv[7]), argc >= 9 && strcmp(argv[8], "fill") == 0);
  if (argc >= 7 && strcmp(argv[1], "vcheck") == 0)
    return cmd_vcheck(key_arg(argv[2]), atol(argv[3]), atol(argv[4]), (unsigned)atol(argv[5]),
                      atol(argv[6]));
  fprintf(stderr, "usage: kio pipe|rdonly|hold|fromheld|thief KEY | dgram KEY N | vmas ... | vcheck ...\n");
  return 2;
}
