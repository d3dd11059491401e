/* net_bench: the loopback TCP floor (4 KiB round trip, bulk throughput) and a RESP client timing Redis GETRANGE/SETRANGE. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_stats.h"

#define NB_PAGE 4096u
#define NB_CHUNK (1u << 20)

/* The same shapes as shm_bench: 64 MiB of words holding their own index; faults
 * (here: GETRANGEs) on every 64th page. */
struct nb_opts {
  size_t bulk_bytes;
  unsigned iters;  /* measured round trips */
  unsigned warmup; /* unmeasured round trips before them */
  unsigned reps;   /* measured bulk transfers (median reported), after one warm-up */
};

static const struct nb_opts nb_defaults = {
  .bulk_bytes = 64u << 20,
  .iters = 2000,
  .warmup = 200,
  .reps = 5,
};

static int fail(const char *what) {
  fprintf(stderr, "net_bench: %s: %s\n", what, strerror(errno));
  return 1;
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      return -ECONNRESET;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A listening socket on 127.0.0.1 with a kernel-chosen port. */
static int listen_any(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof(a);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

static int connect_local(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  nodelay(fd);
  return fd;
}

/* Pins the calling process to the index-th CPU it may run on (no-op when there are
 * not that many). Used by the TCP floor, whose figure on a VM depends mostly on
 * whether a wake-up crosses CPUs. */
static void pin_nth_cpu(int index) {
  cpu_set_t cur, one;
  if (sched_getaffinity(0, sizeof(cur), &cur) < 0 || CPU_COUNT(&cur) <= index)
    return;
  for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &cur) || seen++ != index)
      continue;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof(one), &one);
    return;
  }
}

/* Prints a port that was free a moment ago (for starting redis-server). */
static int cmd_free_port(void) {
  uint16_t port;
  int fd = listen_any(&port);
  if (fd < 0) {
    errno = -fd;
    return fail("listen");
  }
  close(fd);
  printf("%u\n", port);
  return 0;
}

/* Child side of the TCP floor: echo SIZE-byte messages, or answer each one-byte
 * request with BYTES of data. Exits when the parent closes. */
static void tcp_server(int lfd, size_t echo_size, size_t bulk_bytes) {
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0)
    _exit(1);
  nodelay(fd);
  size_t bufsz = echo_size ? echo_size : NB_CHUNK;
  char *buf = calloc(1, bufsz);
  if (!buf)
    _exit(1);
  for (;;) {
    if (echo_size) {
      if (read_all(fd, buf, echo_size) < 0 || write_all(fd, buf, echo_size) < 0)
        _exit(0);
      continue;
    }
    char req;
    if (read_all(fd, &req, 1) < 0)
      _exit(0);
    for (size_t off = 0; off < bulk_bytes; off += NB_CHUNK) {
      size_t n = bulk_bytes - off < NB_CHUNK ? bulk_bytes - off : NB_CHUNK;
      if (write_all(fd, buf, n) < 0)
        _exit(0);
    }
  }
}

/* Forks the peer before anything is connected; returns the client socket. */
static int tcp_pair(pid_t *pid, size_t echo_size, size_t bulk_bytes) {
  uint16_t port;
  int lfd = listen_any(&port);
  if (lfd < 0)
    return lfd;
  *pid = fork();
  if (*pid < 0) {
    int err = -errno;
    close(lfd);
    return err;
  }
  if (*pid == 0)
    tcp_server(lfd, echo_size, bulk_bytes);
  close(lfd);
  return connect_local(port);
}

static int reap(pid_t pid) {
  int st;
  return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

/* cross: client and echo server pinned to different CPUs; otherwise both to one. */
static int cmd_tcp_rtt(const struct nb_opts *o, int cross) {
  pid_t pid;
  pin_nth_cpu(cross);
  int fd = tcp_pair(&pid, NB_PAGE, 0);
  pin_nth_cpu(0);
  if (fd < 0) {
    errno = -fd;
    return fail("tcp-rtt: connect");
  }
  char buf[NB_PAGE];
  memset(buf, 0x5a, sizeof(buf));
  double *lat = calloc(o->iters, sizeof(*lat));
  int rc = 1;
  if (!lat)
    goto out;
  for (unsigned i = 0; i < o->warmup + o->iters; i++) {
    uint64_t t0 = bench_now_ns();
    if (write_all(fd, buf, sizeof(buf)) < 0 || read_all(fd, buf, sizeof(buf)) < 0) {
      fail("tcp-rtt: io");
      goto out;
    }
    uint64_t t1 = bench_now_ns();
    if (i >= o->warmup)
      lat[i - o->warmup] = (double)(t1 - t0) / 1e3;
  }
  bench_print_lat(cross ? "tcp_rtt_xcpu_us" : "tcp_rtt_us", lat, o->iters);
  rc = 0;
out:
  close(fd);
  free(lat);
  return reap(pid) || rc;
}

/* The floor through a relay: an echo server of 4 KiB messages on a kernel-chosen port,
 * one connection at a time, until killed. Prints "listening on 127.0.0.1:PORT". */
static int cmd_echo_server(void) {
  uint16_t port;
  int lfd = listen_any(&port);
  if (lfd < 0) {
    errno = -lfd;
    return fail("echo-server: listen");
  }
  printf("listening on 127.0.0.1:%u\n", port);
  if (fflush(stdout) == EOF) {
    close(lfd);
    return fail("echo-server: stdout");
  }
  char buf[NB_PAGE];
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
      continue;
    if (fd < 0) {
      close(lfd);
      return fail("echo-server: accept");
    }
    nodelay(fd);
    while (read_all(fd, buf, sizeof(buf)) == 0 && write_all(fd, buf, sizeof(buf)) == 0)
      ;
    close(fd);
  }
}

/* The 4 KiB round trip of tcp-rtt to a given port (an echo-server, usually behind a relay),
 * unpinned: the relay's threads run where the scheduler puts them, as the agents do. */
static int cmd_tcp_rtt_to(uint16_t port, const struct nb_opts *o) {
  int fd = connect_local(port);
  if (fd < 0) {
    errno = -fd;
    return fail("tcp-rtt-to: connect");
  }
  char buf[NB_PAGE], want[NB_PAGE];
  double *lat = calloc(o->iters, sizeof(*lat));
  int rc = 1;
  if (!lat)
    goto out;
  for (unsigned i = 0; i < o->warmup + o->iters; i++) {
    memset(want, (int)(i & 0xff), sizeof(want));
    uint64_t t0 = bench_now_ns();
    if (write_all(fd, want, sizeof(want)) < 0 || read_all(fd, buf, sizeof(buf)) < 0) {
      fail("tcp-rtt-to: io");
      goto out;
    }
    uint64_t t1 = bench_now_ns();
    if (memcmp(buf, want, sizeof(buf))) {
      fprintf(stderr, "net_bench: tcp-rtt-to: round trip %u came back altered\n", i);
      goto out;
    }
    if (i >= o->warmup)
      lat[i - o->warmup] = (double)(t1 - t0) / 1e3;
  }
  bench_print_lat("tcp_rtt_via_us", lat, o->iters);
  rc = 0;
out:
  close(fd);
  free(lat);
  return rc;
}

static int cmd_tcp_bulk(const struct nb_opts *o) {
  pid_t pid;
  int fd = tcp_pair(&pid, 0, o->bulk_bytes);
  if (fd < 0) {
    errno = -fd;
    return fail("tcp-bulk: connect");
  }
  char *buf = malloc(NB_CHUNK);
  double *mbps = calloc(o->reps, sizeof(*mbps));
  int rc = 1;
  if (!buf || !mbps)
    goto out;
  for (unsigned r = 0; r <= o->reps; r++) {
    uint64_t t0 = bench_now_ns();
    if (write_all(fd, "g", 1) < 0) {
      fail("tcp-bulk: request");
      goto out;
    }
    for (size_t off = 0; off < o->bulk_bytes; off += NB_CHUNK) {
      size_t n = o->bulk_bytes - off < NB_CHUNK ? o->bulk_bytes - off : NB_CHUNK;
      if (read_all(fd, buf, n) < 0) {
        fail("tcp-bulk: read");
        goto out;
      }
    }
    uint64_t t1 = bench_now_ns();
    if (r > 0)
      mbps[r - 1] = bench_mbps(o->bulk_bytes, t1 - t0);
  }
  printf("result tcp_bulk_MBps value=%.1f bytes=%zu reps=%u\n", bench_median(mbps, o->reps),
         o->bulk_bytes, o->reps);
  rc = 0;
out:
  close(fd);
  free(buf);
  free(mbps);
  return reap(pid) || rc;
}

/* ---- A minimal RESP client: commands as arrays of bulk strings, replies parsed
 * just enough for what this benchmark sends. ---- */

struct resp {
  int fd;
  size_t off, len;  /* unread bytes are in[off..len) */
  char in[65536];
  char *out;        /* request being built */
  size_t out_len, out_cap;
};

static int resp_put(struct resp *c, const void *p, size_t n) {
  if (n > c->out_cap - c->out_len) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap - c->out_len < n)
      cap *= 2;
    char *nb = realloc(c->out, cap);
    if (!nb)
      return -ENOMEM;
    c->out = nb;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  return 0;
}

/* Sends one command of argc arguments, each given as pointer + length. */
static int resp_send(struct resp *c, int argc, const void *const *argv, const size_t *lens) {
  char hdr[48];
  c->out_len = 0;
  int err = resp_put(c, hdr, (size_t)snprintf(hdr, sizeof(hdr), "*%d\r\n", argc));
  for (int i = 0; i < argc && !err; i++) {
    err = resp_put(c, hdr, (size_t)snprintf(hdr, sizeof(hdr), "$%zu\r\n", lens[i]));
    if (!err)
      err = resp_put(c, argv[i], lens[i]);
    if (!err)
      err = resp_put(c, "\r\n", 2);
  }
  return err ? err : write_all(c->fd, c->out, c->out_len);
}

static int resp_fill(struct resp *c) {
  if (c->off == c->len)
    c->off = c->len = 0;
  if (c->len == sizeof(c->in)) {
    memmove(c->in, c->in + c->off, c->len - c->off);
    c->len -= c->off;
    c->off = 0;
  }
  ssize_t n;
  do
    n = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  if (n == 0)
    return -ECONNRESET;
  c->len += (size_t)n;
  return 0;
}

/* Reads one "\r\n"-terminated line (without it) into line[cap]. */
static int resp_line(struct resp *c, char *line, size_t cap) {
  size_t k = 0;
  for (;;) {
    while (c->off < c->len) {
      char ch = c->in[c->off++];
      if (ch == '\n' && k > 0 && line[k - 1] == '\r') {
        line[k - 1] = 0;
        return 0;
      }
      if (k + 1 >= cap)
        return -EPROTO;
      line[k++] = ch;
    }
    int err = resp_fill(c);
    if (err)
      return err;
  }
}

static int resp_take(struct resp *c, char *dst, size_t n) {
  size_t have = c->len - c->off < n ? c->len - c->off : n;
  memcpy(dst, c->in + c->off, have);
  c->off += have;
  /* Large remainders go straight from the socket into the caller's buffer. */
  return have == n ? 0 : read_all(c->fd, dst + have, n - have);
}

/* Reads one reply. A bulk string is copied into dst[cap] and its length returned;
 * status and integer replies return 0; an error reply or anything unexpected is
 * -EPROTO (the error text goes to stderr). */
static ssize_t resp_reply(struct resp *c, char *dst, size_t cap) {
  char line[512];
  int err = resp_line(c, line, sizeof(line));
  if (err)
    return err;
  switch (line[0]) {
  case '+':
  case ':':
    return 0;
  case '$': {
    char *end;
    long long n = strtoll(line + 1, &end, 10);
    if (*end || n < 0 || (unsigned long long)n > cap)
      return -EPROTO;
    char crlf[2];
    if ((err = resp_take(c, dst, (size_t)n)) || (err = resp_take(c, crlf, 2)))
      return err;
    return (ssize_t)n;
  }
  default:
    fprintf(stderr, "net_bench: redis replied: %s\n", line);
    return -EPROTO;
  }
}

/* One command, one reply: the only way this client talks (no pipelining, as a
 * straightforward user would). Arguments come in (pointer, length) pairs. */
static ssize_t resp_call(struct resp *c, char *dst, size_t cap, int argc, ...) {
  const void *argv[8];
  size_t lens[8];
  va_list ap;
  va_start(ap, argc);
  for (int i = 0; i < argc && i < 8; i++) {
    argv[i] = va_arg(ap, const void *);
    lens[i] = va_arg(ap, size_t);
  }
  va_end(ap);
  int err = resp_send(c, argc, argv, lens);
  return err ? err : resp_reply(c, dst, cap);
}

#define S(str) (str), strlen(str)

static int resp_open(struct resp *c, uint16_t port) {
  c->off = c->len = 0;
  c->out = NULL;
  c->out_len = c->out_cap = 0;
  c->fd = connect_local(port);
  return c->fd < 0 ? c->fd : 0;
}

static void resp_close(struct resp *c) {
  close(c->fd);
  free(c->out);
}

struct redis_keys {
  char data[64], turn[64];
};

/* SETRANGE the 64 MiB value in 1 MiB chunks (word i = i, like shm_bench fill). */
static int redis_fill(struct resp *c, const struct redis_keys *k, const struct nb_opts *o,
                      uint64_t *chunk) {
  /* Size the value first, untimed, as shmget sizes a segment: growing it 1 MiB at a
   * time would make Redis reallocate and copy it 64 times. */
  char last[32];
  snprintf(last, sizeof(last), "%zu", o->bulk_bytes - 1);
  if (resp_call(c, NULL, 0, 4, S("SETRANGE"), S(k->data), S(last), S("\xff")) < 0)
    return -EPROTO;
  uint64_t t0 = bench_now_ns();
  for (size_t off = 0; off < o->bulk_bytes; off += NB_CHUNK) {
    size_t n = o->bulk_bytes - off < NB_CHUNK ? o->bulk_bytes - off : NB_CHUNK;
    for (size_t i = 0; i < n / 8; i++)
      chunk[i] = off / 8 + i;
    char offs[32];
    snprintf(offs, sizeof(offs), "%zu", off);
    if (resp_call(c, NULL, 0, 4, S("SETRANGE"), S(k->data), S(offs), (const void *)chunk,
                  n) < 0)
      return -EPROTO;
  }
  uint64_t t1 = bench_now_ns();
  printf("result redis_fill_MBps value=%.1f bytes=%zu\n", bench_mbps(o->bulk_bytes, t1 - t0),
         o->bulk_bytes);
  return 0;
}

/* GETRANGE of one 4 KiB page, pages visited with a stride of 64 like the fault test. */
static int redis_getrange(struct resp *c, const struct redis_keys *k, const struct nb_opts *o) {
  size_t npages = o->bulk_bytes / NB_PAGE;
  double *lat = calloc(o->iters, sizeof(*lat));
  uint64_t page[NB_PAGE / 8];
  if (!lat)
    return -ENOMEM;
  int err = 0;
  for (unsigned i = 0; i < o->warmup + o->iters; i++) {
    size_t pg = ((size_t)i * 64 + i / (npages / 64)) % npages;
    char a[32], b[32];
    snprintf(a, sizeof(a), "%zu", pg * NB_PAGE);
    snprintf(b, sizeof(b), "%zu", pg * NB_PAGE + NB_PAGE - 1);
    uint64_t t0 = bench_now_ns();
    ssize_t n = resp_call(c, (char *)page, sizeof(page), 4, S("GETRANGE"), S(k->data), S(a),
                          S(b));
    uint64_t t1 = bench_now_ns();
    if (n != NB_PAGE || page[0] != pg * NB_PAGE / 8) {
      fprintf(stderr, "net_bench: GETRANGE page %zu: bad reply (%zd)\n", pg, n);
      err = -EPROTO;
      break;
    }
    if (i >= o->warmup)
      lat[i - o->warmup] = (double)(t1 - t0) / 1e3;
  }
  if (!err)
    bench_print_lat("redis_getrange_us", lat, o->iters);
  free(lat);
  return err;
}

/* Polls GETRANGE turn 0 0 until it reads want. */
static int redis_wait(struct resp *c, const char *turn, char want) {
  uint64_t deadline = bench_now_ns() + 10ull * 1000000000ull;
  for (;;) {
    char v = 0;
    ssize_t n = resp_call(c, &v, 1, 4, S("GETRANGE"), S(turn), S("0"), S("0"));
    if (n < 0)
      return (int)n;
    if (n == 1 && v == want)
      return 0;
    if (bench_now_ns() > deadline)
      return -ETIMEDOUT;
  }
}

/* The Redis rendering of shm_bench pingpong: A SETRANGEs "1" and polls for "0",
 * B polls for "1" and SETRANGEs "0"; one round trip = A->B->A. */
static int redis_pingpong(uint16_t port, struct resp *c, const struct redis_keys *k,
                          const struct nb_opts *o) {
  if (resp_call(c, NULL, 0, 3, S("SET"), S(k->turn), S("0")) < 0)
    return -EPROTO;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0)
    return -errno;
  if (pid == 0) {
    struct resp pc;
    if (resp_open(&pc, port) < 0)
      _exit(1);
    for (unsigned i = 0; i < o->warmup + o->iters; i++)
      if (redis_wait(&pc, k->turn, '1') < 0 ||
          resp_call(&pc, NULL, 0, 4, S("SETRANGE"), S(k->turn), S("0"), S("0")) < 0)
        _exit(1);
    resp_close(&pc);
    _exit(0);
  }
  double *lat = calloc(o->iters, sizeof(*lat));
  int err = lat ? 0 : -ENOMEM;
  for (unsigned i = 0; i < o->warmup + o->iters && !err; i++) {
    uint64_t t0 = bench_now_ns();
    if (resp_call(c, NULL, 0, 4, S("SETRANGE"), S(k->turn), S("0"), S("1")) < 0 ||
        redis_wait(c, k->turn, '0') < 0) {
      err = -EPROTO;
      break;
    }
    uint64_t t1 = bench_now_ns();
    if (i >= o->warmup)
      lat[i - o->warmup] = (double)(t1 - t0) / 1e3;
  }
  if (err)
    kill(pid, SIGTERM);
  if (reap(pid) && !err)
    err = -EPROTO;
  if (!err)
    bench_print_lat("redis_pingpong_us", lat, o->iters);
  free(lat);
  return err;
}

/* Reads the whole value back with GETRANGE in 1 MiB chunks, one request at a time. */
static int redis_bulk(struct resp *c, const struct redis_keys *k, const struct nb_opts *o,
                      uint64_t *chunk) {
  double *mbps = calloc(o->reps, sizeof(*mbps));
  if (!mbps)
    return -ENOMEM;
  for (unsigned r = 0; r <= o->reps; r++) {
    uint64_t t0 = bench_now_ns();
    for (size_t off = 0; off < o->bulk_bytes; off += NB_CHUNK) {
      size_t n = o->bulk_bytes - off < NB_CHUNK ? o->bulk_bytes - off : NB_CHUNK;
      char a[32], b[32];
      snprintf(a, sizeof(a), "%zu", off);
      snprintf(b, sizeof(b), "%zu", off + n - 1);
      ssize_t got = resp_call(c, (char *)chunk, NB_CHUNK, 4, S("GETRANGE"), S(k->data), S(a),
                              S(b));
      if (got != (ssize_t)n || chunk[n / 8 - 1] != (off + n) / 8 - 1) {
        fprintf(stderr, "net_bench: GETRANGE bulk at %zu: bad reply\n", off);
        free(mbps);
        return -EPROTO;
      }
    }
    uint64_t t1 = bench_now_ns();
    if (r > 0)
      mbps[r - 1] = bench_mbps(o->bulk_bytes, t1 - t0);
  }
  printf("result redis_bulk_MBps value=%.1f bytes=%zu reps=%u\n", bench_median(mbps, o->reps),
         o->bulk_bytes, o->reps);
  free(mbps);
  return 0;
}

static int cmd_redis(uint16_t port, const struct nb_opts *o) {
  struct resp *c = malloc(sizeof(*c));
  uint64_t *chunk = malloc(NB_CHUNK);
  struct redis_keys k;
  snprintf(k.data, sizeof(k.data), "dshm-bench:%d:data", (int)getpid());
  snprintf(k.turn, sizeof(k.turn), "dshm-bench:%d:turn", (int)getpid());
  int err = c && chunk ? resp_open(c, port) : -ENOMEM;
  if (err) {
    errno = -err;
    free(c);
    free(chunk);
    return fail("redis: connect");
  }
  if (!err)
    err = redis_fill(c, &k, o, chunk);
  if (!err)
    err = redis_getrange(c, &k, o);
  if (!err)
    err = redis_pingpong(port, c, &k, o);
  if (!err)
    err = redis_bulk(c, &k, o, chunk);
  resp_call(c, NULL, 0, 3, S("DEL"), S(k.data), S(k.turn));
  resp_close(c);
  free(c);
  free(chunk);
  if (err)
    fprintf(stderr, "net_bench: redis: %s\n", strerror(-err));
  return err ? 1 : 0;
}

static void usage(void) {
  fprintf(stderr, "usage: net_bench free-port | tcp-rtt | tcp-rtt-xcpu | tcp-bulk | redis PORT\n"
                  "       | echo-server | tcp-rtt-to PORT [ITERS [WARMUP]]\n"
                  "  echo-server: echoes 4 KiB messages on a free port (printed), until killed;\n"
                  "  tcp-rtt-to: tcp-rtt's round trip to PORT (an echo-server or a relay to one).\n"
                  "  output lines start with \"result\".\n");
}

int main(int argc, char **argv) {
  struct nb_opts o = nb_defaults;
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  if (argc == 2 && !strcmp(argv[1], "free-port"))
    return cmd_free_port();
  if (argc == 2 && !strcmp(argv[1], "tcp-rtt"))
    return cmd_tcp_rtt(&o, 0);
  if (argc == 2 && !strcmp(argv[1], "tcp-rtt-xcpu"))
    return cmd_tcp_rtt(&o, 1);
  if (argc == 2 && !strcmp(argv[1], "tcp-bulk"))
    return cmd_tcp_bulk(&o);
  if (argc == 2 && !strcmp(argv[1], "echo-server"))
    return cmd_echo_server();
  if (argc >= 3 && argc <= 5 && !strcmp(argv[1], "tcp-rtt-to")) {
    unsigned long v[3] = {0, o.iters, o.warmup};
    for (int i = 2; i < argc; i++) {
      char *end;
      errno = 0;
      v[i - 2] = strtoul(argv[i], &end, 10);
      if (errno || *end || end == argv[i] || v[i - 2] > 1000000) {
        usage();
        return 2;
      }
    }
    if (v[0] == 0 || v[0] > 65535 || v[1] == 0) {
      usage();
      return 2;
    }
    o.iters = (unsigned)v[1];
    o.warmup = (unsigned)v[2];
    return cmd_tcp_rtt_to((uint16_t)v[0], &o);
  }
  if (argc == 3 && !strcmp(argv[1], "redis")) {
    char *end;
    unsigned long port = strtoul(argv[2], &end, 10);
    if (*end || port == 0 || port > 65535) {
      usage();
      return 2;
    }
    return cmd_redis((uint16_t)port, &o);
  }
  usage();
  return 2;
}
