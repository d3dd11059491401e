/* conn_bench: the dshm-server's memory per idle connection: N connections that complete a host agent's handshake (HELLO, NODE) and then stay idle, the server's Pss, private memory and RSS before and after. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth.h"
#include "client.h"
#include "proto.h"

#define CONN_MAX 4096u /* most connections one run opens */

/* The server's memory as /proc says it, in KiB: smaps_rollup's Pss, Private_Clean +
 * Private_Dirty and Rss. */
struct srv_mem {
  long pss, priv, rss;
};

static int fail(const char *what, int err) {
  fprintf(stderr, "conn_bench: %s: %s\n", what, strerror(err));
  return 1;
}

/* The values of smaps_rollup; -ENOENT when the server is gone. */
static int read_mem(pid_t pid, struct srv_mem *m) {
  char path[64], line[256];
  long v;
  int seen = 0;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
  f = fopen(path, "r");
  if (!f)
    return -errno;
  *m = (struct srv_mem){0, 0, 0};
  while (fgets(line, sizeof(line), f)) {
    if (sscanf(line, "Pss: %ld kB", &v) == 1) {
      m->pss = v;
      seen |= 1;
    } else if (sscanf(line, "Rss: %ld kB", &v) == 1) {
      m->rss = v;
      seen |= 2;
    } else if (sscanf(line, "Private_Clean: %ld kB", &v) == 1 ||
               sscanf(line, "Private_Dirty: %ld kB", &v) == 1) {
      m->priv += v;
      seen |= 4;
    }
  }
  fclose(f);
  return seen == 7 ? 0 : -EPROTO;
}

/* The key of DSHM_TOKEN or DSHM_TOKEN_FILE, as the agent reads them: 1 with a key, 0
 * without, -1 on a bad token (said on stderr). */
static int token_key(struct dshm_auth_key *key) {
  const char *tok = getenv("DSHM_TOKEN"), *file = getenv("DSHM_TOKEN_FILE");
  char why[512];

  if (!tok && (!file || !*file))
    return 0;
  if (dshm_auth_init() < 0) {
    fprintf(stderr, "conn_bench: libsodium did not initialise\n");
    return -1;
  }
  if (tok && dshm_auth_key_from_token(key, tok, strlen(tok)) < 0) {
    fprintf(stderr, "conn_bench: DSHM_TOKEN is empty or longer than 4096 bytes\n");
    return -1;
  }
  if (!tok && dshm_auth_key_from_file(key, file, why, sizeof(why)) < 0) {
    fprintf(stderr, "conn_bench: DSHM_TOKEN_FILE: %s\n", why);
    return -1;
  }
  return 1;
}

/* One connection as a fresh dshm-agent makes it (agent/upstream.c, handshake): HELLO with
 * our credentials and a name, the token's CHALLENGE answered if there is one, then NODE
 * with an identity of its own. Returns the socket, or -errno with *why set when the server
 * gave a reason. */
static int agent_connect(const struct dshm_addr *a, const struct dshm_auth_key *key,
                         unsigned i, struct proto_msg *m, const char **why) {
  const char *reason = NULL;
  int fd = dshm_client_connect(a, &reason), err;
  uint32_t node = (uint32_t)getpid();

  if (fd < 0) {
    *why = reason;
    return fd;
  }
  /* A reply that never comes must not hang the run. */
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  memset(m, 0, sizeof(*m));
  m->h.opcode = PROTO_OP_HELLO;
  m->h.reqid = 1;
  m->u.hello.pid = (uint32_t)getpid();
  m->u.hello.uid = (uint32_t)geteuid();
  m->u.hello.gid = (uint32_t)getegid();
  snprintf(m->u.hello.name, sizeof(m->u.hello.name), "conn_bench#%u", i);
  m->u.hello.name_len = (uint32_t)strlen(m->u.hello.name);
  err = dshm_client_hello(fd, m, key, 2, &reason);
  if (err == 0) {
    memset(m, 0, 2 * sizeof(*m));
    m->h.opcode = PROTO_OP_NODE;
    m->h.reqid = 3;
    memcpy(m->u.node.id, &node, sizeof(node));
    memcpy(m->u.node.id + sizeof(node), &i, sizeof(i));
    memcpy(m->u.node.id + 8, "connbnch", 8);
    err = dshm_client_call(fd, &m[0], &m[1]);
  }
  if (err < 0) {
    close(fd);
    *why = reason;
    return err;
  }
  return fd;
}

static void usage(void) {
  fprintf(stderr, "usage: conn_bench PORT SERVER_PID [N]\n"
                  "  opens N (default 256, at most %u) connections to the dshm-server on\n"
                  "  127.0.0.1:PORT, each with a host agent's handshake (HELLO, NODE; the token\n"
                  "  of DSHM_TOKEN or DSHM_TOKEN_FILE if set), keeps them idle and prints the\n"
                  "  growth of SERVER_PID's Pss, private memory and RSS per connection\n"
                  "  (/proc/PID/smaps_rollup) as a \"result\" line.\n",
          CONN_MAX);
}

static int parse_num(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || end == s || v == 0 || v > max)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  unsigned long port, pid, n = 256;
  struct dshm_auth_key key;
  struct dshm_addr addr;
  struct srv_mem m0, m1;
  struct proto_msg *msg = calloc(2, sizeof(*msg));
  int *fds = NULL, have_key = 0, err, rc = 1;
  unsigned opened = 0;

  if (argc < 3 || argc > 4 || parse_num(argv[1], 65535, &port) < 0 ||
      parse_num(argv[2], 0x7fffffff, &pid) < 0 ||
      (argc == 4 && parse_num(argv[3], CONN_MAX, &n) < 0)) {
    usage();
    free(msg);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  fds = calloc(n, sizeof(*fds));
  if (!msg || !fds) {
    fail("calloc", ENOMEM);
    goto out;
  }
  have_key = token_key(&key);
  if (have_key < 0)
    goto out;
  snprintf(addr.host, sizeof(addr.host), "127.0.0.1");
  snprintf(addr.port, sizeof(addr.port), "%lu", port);
  addr.unix_path[0] = 0;
  if ((err = read_mem((pid_t)pid, &m0)) < 0) {
    fprintf(stderr, "conn_bench: /proc/%lu/smaps_rollup: %s (is the server running?)\n", pid,
            strerror(-err));
    goto out;
  }
  for (; opened < n; opened++) {
    const char *why = NULL;
    fds[opened] = agent_connect(&addr, have_key ? &key : NULL, opened, msg, &why);
    if (fds[opened] < 0) {
      fprintf(stderr, "conn_bench: connection %u of %lu to 127.0.0.1:%lu: %s\n", opened + 1, n,
              port, why ? why : strerror(-fds[opened]));
      goto close;
    }
  }
  /* Every handshake's replies are in: the server has done all it does for a connection until
   * the connection speaks again. A moment more for anything it finishes after replying. */
  usleep(200 * 1000);
  if ((err = read_mem((pid_t)pid, &m1)) < 0) {
    fprintf(stderr, "conn_bench: /proc/%lu/smaps_rollup after %lu connections: %s\n", pid, n,
            strerror(-err));
    goto close;
  }
  printf("result server_conn_kib value=%.2f pss_kib=%.2f private_kib=%.2f rss_kib=%.2f "
         "conns=%lu pss0_kib=%ld pss1_kib=%ld rss0_kib=%ld rss1_kib=%ld\n",
         (double)(m1.pss - m0.pss) / (double)n, (double)(m1.pss - m0.pss) / (double)n,
         (double)(m1.priv - m0.priv) / (double)n, (double)(m1.rss - m0.rss) / (double)n, n,
         m0.pss, m1.pss, m0.rss, m1.rss);
  rc = 0;
close:
  for (unsigned i = 0; i < opened; i++)
    close(fds[i]);
  if (have_key > 0)
    dshm_auth_key_wipe(&key);
out:
  free(fds);
  free(msg);
  return rc;
}
