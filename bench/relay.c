/* relay: a TCP relay on 127.0.0.1 that delivers every chunk it reads a fixed time after
 * reading it, in both directions: a link with a one-way delay, for a VM without netem.
 *
 * usage: relay LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_US
 * LISTEN_PORT 0 lets the kernel choose; "listening on 127.0.0.1:PORT" is printed (and
 * flushed) once connections are accepted. Each accepted connection gets its own connection
 * to the target, and per direction a reader thread (stamps each chunk read with its due
 * time, CLOCK_MONOTONIC + DELAY_US, into a FIFO of at most RELAY_QUEUE_MAX bytes: the
 * reader blocks while it is full) and a writer thread (sleeps until the head chunk is due,
 * TIMER_ABSTIME, and writes it). Order is kept; an EOF is passed on (shutdown SHUT_WR)
 * after the data before it; an error on either side ends the whole connection. Runs until
 * killed. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RELAY_CHUNK (64u << 10)
#define RELAY_QUEUE_MAX ((size_t)64 << 20) /* queued bytes per direction */

struct chunk {
  struct chunk *next;
  struct timespec due;
  size_t len;
  char data[];
};

/* One direction of one connection: bytes read from src, written to dst. */
struct dir {
  struct conn *conn;
  int src, dst;
  pthread_mutex_t lock;
  pthread_cond_t cond; /* queue changed: not empty, not full, EOF or failure */
  struct chunk *head, *tail;
  size_t queued;
  int eof;  /* the reader saw EOF (or a read error: then conn->failed too) */
};

struct conn {
  int client, target;
  uint64_t delay_ns;
  _Atomic int failed; /* either side broke: both directions stop */
  struct dir d[2];    /* 0: client -> target, 1: target -> client */
};

static const char *target_host, *target_port;
static uint64_t delay_ns;

static void warn_errno(const char *what) {
  fprintf(stderr, "relay: %s: %s\n", what, strerror(errno));
}

static void warn_err(const char *what, int err) {
  fprintf(stderr, "relay: %s: %s\n", what, strerror(err));
}

static void timespec_add_ns(struct timespec *t, uint64_t ns) {
  uint64_t nsec = (uint64_t)t->tv_nsec + ns % 1000000000u;
  t->tv_sec += (time_t)(ns / 1000000000u + nsec / 1000000000u);
  t->tv_nsec = (long)(nsec % 1000000000u);
}

static void lock(pthread_mutex_t *m) {
  int err = pthread_mutex_lock(m);
  if (err) {
    warn_err("pthread_mutex_lock", err);
    abort();
  }
}

static void unlock(pthread_mutex_t *m) {
  int err = pthread_mutex_unlock(m);
  if (err) {
    warn_err("pthread_mutex_unlock", err);
    abort();
  }
}

static void wait_cond(struct dir *d) {
  int err = pthread_cond_wait(&d->cond, &d->lock);
  if (err) {
    warn_err("pthread_cond_wait", err);
    abort();
  }
}

/* Ends the connection: unblocks both readers (their recv returns) and both writers. */
static void conn_fail(struct conn *c) {
  c->failed = 1;
  for (int i = 0; i < 2; i++) {
    /* ENOTCONN after the peer went away is expected: nothing to undo. */
    if (shutdown(i ? c->target : c->client, SHUT_RDWR) < 0 && errno != ENOTCONN)
      warn_errno("shutdown");
    lock(&c->d[i].lock);
    pthread_cond_broadcast(&c->d[i].cond);
    unlock(&c->d[i].lock);
  }
}

static void *reader_main(void *arg) {
  struct dir *d = arg;
  struct conn *c = d->conn;
  char *buf = malloc(RELAY_CHUNK);
  if (!buf) {
    warn_errno("malloc");
    conn_fail(c);
  }
  while (buf && !c->failed) {
    ssize_t n = recv(d->src, buf, RELAY_CHUNK, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n < 0 && !c->failed && errno != ECONNRESET)
        warn_errno("recv");
      if (n < 0)
        conn_fail(c);
      break;
    }
    struct chunk *ch = malloc(sizeof(*ch) + (size_t)n);
    if (!ch) {
      warn_errno("malloc");
      conn_fail(c);
      break;
    }
    if (clock_gettime(CLOCK_MONOTONIC, &ch->due) < 0) {
      warn_errno("clock_gettime");
      free(ch);
      conn_fail(c);
      break;
    }
    timespec_add_ns(&ch->due, c->delay_ns);
    ch->next = NULL;
    ch->len = (size_t)n;
    memcpy(ch->data, buf, (size_t)n);
    lock(&d->lock);
    /* A chunk larger than what is left still goes in when the queue is empty. */
    while (!c->failed && d->queued && d->queued + ch->len > RELAY_QUEUE_MAX)
      wait_cond(d);
    if (c->failed) {
      unlock(&d->lock);
      free(ch);
      break;
    }
    if (d->tail)
      d->tail->next = ch;
    else
      d->head = ch;
    d->tail = ch;
    d->queued += ch->len;
    pthread_cond_broadcast(&d->cond);
    unlock(&d->lock);
  }
  free(buf);
  lock(&d->lock);
  d->eof = 1;
  pthread_cond_broadcast(&d->cond);
  unlock(&d->lock);
  return NULL;
}

static int send_all(int fd, const char *p, size_t len) {
  while (len) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static void *writer_main(void *arg) {
  struct dir *d = arg;
  struct conn *c = d->conn;
  /* The default 50 us timer slack would add up to 50 us to every delay. */
  if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) < 0)
    warn_errno("prctl(PR_SET_TIMERSLACK)");
  for (;;) {
    lock(&d->lock);
    while (!c->failed && !d->head && !d->eof)
      wait_cond(d);
    struct chunk *ch = c->failed ? NULL : d->head;
    unlock(&d->lock);
    if (!ch) {
      /* EOF with nothing left to send: pass the EOF on. */
      if (!c->failed && shutdown(d->dst, SHUT_WR) < 0 && errno != ENOTCONN) {
        warn_errno("shutdown");
        conn_fail(c);
      }
      return NULL;
    }
    /* Only this thread removes chunks, so ch stays the head while unlocked. */
    int err;
    while ((err = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ch->due, NULL)) == EINTR)
      ;
    if (err) {
      warn_err("clock_nanosleep", err);
      conn_fail(c);
      return NULL;
    }
    if (send_all(d->dst, ch->data, ch->len) < 0) {
      if (!c->failed && errno != EPIPE && errno != ECONNRESET)
        warn_errno("send");
      conn_fail(c);
      return NULL;
    }
    lock(&d->lock);
    d->head = ch->next;
    if (!d->head)
      d->tail = NULL;
    d->queued -= ch->len;
    pthread_cond_broadcast(&d->cond);
    unlock(&d->lock);
    free(ch);
  }
}

static void conn_free(struct conn *c, int ndirs) {
  for (int i = 0; i < ndirs; i++) {
    struct chunk *ch = c->d[i].head;
    while (ch) {
      struct chunk *next = ch->next;
      free(ch);
      ch = next;
    }
    pthread_cond_destroy(&c->d[i].cond);
    pthread_mutex_destroy(&c->d[i].lock);
  }
  if (close(c->client) < 0)
    warn_errno("close");
  if (close(c->target) < 0)
    warn_errno("close");
  free(c);
}

/* Runs one connection: its four threads, then the cleanup. Detached. */
static void *conn_main(void *arg) {
  struct conn *c = arg;
  pthread_t t[4];
  int started = 0;
  for (int i = 0; i < 4; i++) {
    int err = pthread_create(&t[i], NULL, i % 2 ? writer_main : reader_main, &c->d[i / 2]);
    if (err) {
      warn_err("pthread_create", err);
      conn_fail(c);
      /* A direction whose reader did not start never sees EOF: mark it. */
      for (int j = i / 2; j < 2; j++) {
        lock(&c->d[j].lock);
        c->d[j].eof = 1;
        pthread_cond_broadcast(&c->d[j].cond);
        unlock(&c->d[j].lock);
      }
      break;
    }
    started++;
  }
  for (int i = 0; i < started; i++) {
    int err = pthread_join(t[i], NULL);
    if (err)
      warn_err("pthread_join", err);
  }
  conn_free(c, 2);
  return NULL;
}

static int set_nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
    warn_errno("setsockopt(TCP_NODELAY)");
    return -1;
  }
  return 0;
}

static int connect_target(void) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
  int err = getaddrinfo(target_host, target_port, &hints, &res);
  if (err) {
    fprintf(stderr, "relay: %s:%s: %s\n", target_host, target_port, gai_strerror(err));
    return -1;
  }
  int fd = -1;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      warn_errno("socket");
      continue;
    }
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
      break;
    fprintf(stderr, "relay: connect %s:%s: %s\n", target_host, target_port, strerror(errno));
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd >= 0 && set_nodelay(fd) < 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* Sets up one accepted connection (takes cfd); on failure closes it. */
static void start_conn(int cfd) {
  int tfd = set_nodelay(cfd) < 0 ? -1 : connect_target();
  if (tfd < 0) {
    close(cfd);
    return;
  }
  struct conn *c = calloc(1, sizeof(*c));
  if (!c) {
    warn_errno("calloc");
    close(cfd);
    close(tfd);
    return;
  }
  c->client = cfd;
  c->target = tfd;
  c->delay_ns = delay_ns;
  int ndirs = 0, err = 0;
  for (; ndirs < 2; ndirs++) {
    struct dir *d = &c->d[ndirs];
    d->conn = c;
    d->src = ndirs ? tfd : cfd;
    d->dst = ndirs ? cfd : tfd;
    if ((err = pthread_mutex_init(&d->lock, NULL)))
      break;
    if ((err = pthread_cond_init(&d->cond, NULL))) {
      pthread_mutex_destroy(&d->lock);
      break;
    }
  }
  pthread_attr_t attr;
  pthread_t t;
  if (!err && (err = pthread_attr_init(&attr)) == 0) {
    err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!err)
      err = pthread_create(&t, &attr, conn_main, c);
    pthread_attr_destroy(&attr);
  }
  if (err) {
    warn_err("connection setup", err);
    conn_free(c, ndirs);
  }
}

static int parse_u(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || v > max)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  unsigned long lport, tport, delay_us;
  if (argc != 5 || parse_u(argv[1], 65535, &lport) < 0 || parse_u(argv[3], 65535, &tport) < 0 ||
      tport == 0 || parse_u(argv[4], 10000000, &delay_us) < 0) {
    fprintf(stderr, "usage: relay LISTEN_PORT(0=any) TARGET_HOST TARGET_PORT DELAY_US\n"
                    "  forwards 127.0.0.1:LISTEN_PORT <-> TARGET_HOST:TARGET_PORT, each chunk\n"
                    "  DELAY_US (at most 10 s) after it was read, both ways.\n");
    return 2;
  }
  target_host = argv[2];
  target_port = argv[3];
  delay_ns = (uint64_t)delay_us * 1000u;
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
    warn_errno("signal");
    return 1;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) {
    warn_errno("socket");
    return 1;
  }
  int one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)lport),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof(a);
  if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 64) < 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
    warn_errno("listen");
    close(lfd);
    return 1;
  }
  if (printf("listening on 127.0.0.1:%u\n", (unsigned)ntohs(a.sin_port)) < 0 ||
      fflush(stdout) == EOF) {
    warn_errno("stdout");
    close(lfd);
    return 1;
  }
  for (;;) {
    int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE ||
          errno == ENOBUFS || errno == ENOMEM) {
        if (errno != EINTR && errno != ECONNABORTED) {
          warn_errno("accept");
          usleep(10000);
        }
        continue;
      }
      warn_errno("accept");
      close(lfd);
      return 1;
    }
    start_conn(cfd);
  }
}
