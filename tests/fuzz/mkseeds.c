/* mkseeds.c - writes the fuzzers' seed corpus: valid frames of every opcode (requests and
 * replies) for fuzz_proto, and scripted multi-peer sessions for fuzz_server.
 * Usage: mkseeds PROTO_DIR SERVER_DIR (both must exist). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "proto.h"

static uint8_t page[PROTO_PAGE_SIZE];

/* A growing byte buffer: one seed file. */
struct buf {
  uint8_t b[1 << 20];
  size_t n;
};

static struct buf cur;

static void put_file(const char *dir, const char *name, const struct buf *b) {
  char path[4096];
  FILE *f;

  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "wb");
  if (f == NULL || fwrite(b->b, 1, b->n, f) != b->n || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

/* Appends the encoding of m to b. */
static void frame(struct buf *b, struct proto_msg *m) {
  ssize_t n = proto_encode(b->b + b->n, sizeof b->b - b->n, m);

  if (n < 0) {
    fprintf(stderr, "mkseeds: cannot encode %s\n", proto_op_name(m->h.opcode));
    exit(1);
  }
  b->n += (size_t)n;
}

static struct proto_msg msg(uint8_t op, uint32_t reqid) {
  struct proto_msg m;

  memset(&m, 0, sizeof m);
  m.h.opcode = op;
  m.h.reqid = reqid;
  return m;
}

static const struct proto_cred cred = {.pid = 4242, .uid = 1000, .gid = 1000};

static struct proto_msg hello(void) {
  struct proto_msg m = msg(PROTO_OP_HELLO, 1);

  m.u.hello = (struct proto_hello){.pid = 4242, .uid = 1000, .gid = 1000, .ngroups = 2,
                                   .groups = {1000, 27}, .name_len = 9};
  memcpy(m.u.hello.name, "fuzz@seed", 9);
  return m;
}

static struct proto_msg create(int32_t key, uint64_t size, int32_t flg) {
  struct proto_msg m = msg(PROTO_OP_CREATE_SEGMENT, 2);

  m.u.create = (struct proto_create){.cred = cred, .key = key, .size = size, .shmflg = flg};
  return m;
}

static struct proto_msg attach(int32_t shmid, int32_t flg) {
  struct proto_msg m = msg(PROTO_OP_ATTACH_SEGMENT, 3);

  m.u.attach = (struct proto_attach){.cred = cred, .shmid = shmid, .shmflg = flg};
  return m;
}

static struct proto_msg segref(uint8_t op, int32_t shmid) {
  struct proto_msg m = msg(op, 4);

  m.u.segref = (struct proto_segref){.cred = cred, .shmid = shmid};
  return m;
}

static struct proto_msg shmctl_req(int32_t shmid, int32_t cmd) {
  struct proto_msg m = msg(PROTO_OP_SHMCTL, 5);

  m.u.shmctl = (struct proto_shmctl){.cred = cred, .shmid = shmid, .cmd = cmd,
                                     .uid = 1000, .gid = 1000, .mode = 0640};
  return m;
}

/* A run of count pages from first; data on every page when with_data. */
static struct proto_msg run(uint8_t op, uint32_t reqid, int32_t shmid, uint32_t first,
                            uint32_t count, uint32_t mode, int with_data) {
  struct proto_msg m = msg(op, reqid);
  uint32_t i;

  m.u.run.shmid = shmid;
  m.u.run.first = first;
  m.u.run.count = count;
  m.u.run.mode = mode;
  for (i = 0; i < count; i++) {
    m.u.run.page[i].version = with_data ? 0 : i;
    m.u.run.page[i].flags = with_data ? PROTO_PAGE_DATA : 0;
    m.u.run.page[i].data = with_data ? page : NULL;
  }
  return m;
}

static struct proto_msg range(uint8_t op, uint32_t reqid, int32_t shmid, uint32_t first,
                              uint32_t count, uint32_t mode) {
  struct proto_msg m = msg(op, reqid);

  m.u.range = (struct proto_range){.shmid = shmid, .first = first, .count = count,
                                   .mode = mode};
  return m;
}

static struct proto_msg ping(void) {
  struct proto_msg m = msg(PROTO_OP_PING, 6);

  m.u.ping.cookie = 0x0123456789abcdefULL;
  return m;
}

static struct proto_msg challenge(void) {
  struct proto_msg m = msg(PROTO_OP_CHALLENGE, 1);

  m.u.challenge.alg = PROTO_AUTH_ALG;
  memset(m.u.challenge.nonce, 0xa5, PROTO_NONCE_SIZE);
  return m;
}

/* An AUTH whose proof is not the token's: the fuzzer cannot forge one either. */
static struct proto_msg auth(void) {
  struct proto_msg m = msg(PROTO_OP_AUTH, 30);

  memset(m.u.auth.nonce, 0x11, PROTO_NONCE_SIZE);
  memset(m.u.auth.mac, 0x22, PROTO_MAC_SIZE);
  return m;
}

static struct proto_msg node(uint32_t flags) {
  struct proto_msg m = msg(PROTO_OP_NODE, 14);
  memset(m.u.node.id, 0xA5, PROTO_NODE_ID);
  m.u.node.flags = flags;
  return m;
}

static struct proto_msg reattach(int32_t shmid, uint32_t nrw, uint32_t nro) {
  struct proto_msg m = msg(PROTO_OP_REATTACH, 15);
  m.u.reattach.cred = (struct proto_cred){42, 0, 0};
  m.u.reattach.shmid = shmid;
  m.u.reattach.nrw = nrw;
  m.u.reattach.nro = nro;
  return m;
}

static struct proto_msg inherit(int32_t shmid, uint32_t nrw, uint32_t nro) {
  struct proto_msg m = msg(PROTO_OP_INHERIT, 16);
  m.u.inherit = (struct proto_inherit){.cred = cred, .shmid = shmid, .nrw = nrw, .nro = nro,
                                       .child = 4343};
  return m;
}

/* One record of fuzz_server: selector, length, the frame of m. */
static void rec(struct buf *b, uint8_t sel, struct proto_msg m) {
  struct buf *one = malloc(sizeof *one);

  one->n = 0;
  frame(one, &m);
  b->b[b->n++] = sel;
  b->b[b->n++] = (uint8_t)(one->n >> 8);
  b->b[b->n++] = (uint8_t)one->n;
  memcpy(b->b + b->n, one->b, one->n);
  b->n += one->n;
  free(one);
}

/* Every opcode once as a request and once as a reply, each in its own file and all in one
 * stream. */
static void proto_seeds(const char *dir) {
  static struct buf all;
  struct proto_msg ms[32];
  int n = 0, i;
  char name[64];

  ms[n++] = hello();
  ms[n] = msg(PROTO_OP_HELLO, 1);
  ms[n].h.flags = PROTO_F_REPLY;
  ms[n++].u.hello_reply = (struct proto_hello_reply){7, PROTO_PAGE_SIZE, PROTO_MAX_RUN};
  ms[n++] = create(0x1234, 3 * PROTO_PAGE_SIZE, IPC_CREAT | 0600);
  ms[n] = msg(PROTO_OP_CREATE_SEGMENT, 2);
  ms[n].h.flags = PROTO_F_REPLY;
  ms[n++].u.create_reply.shmid = 32769;
  ms[n++] = attach(0, SHM_RDONLY);
  ms[n] = msg(PROTO_OP_ATTACH_SEGMENT, 3);
  ms[n].h.flags = PROTO_F_REPLY;
  ms[n++].u.attach_reply = (struct proto_attach_reply){0, 3 * PROTO_PAGE_SIZE};
  ms[n++] = segref(PROTO_OP_DETACH_SEGMENT, 0);
  ms[n++] = segref(PROTO_OP_REMOVE_SEGMENT, 0);
  ms[n++] = run(PROTO_OP_READ_DATA, 9, 0, 0, 2, PROTO_MODE_SHARED, 0);
  ms[n++] = run(PROTO_OP_READ_DATA, 9, 0, 0, 2, PROTO_MODE_SHARED, 1);
  ms[n - 1].h.flags = PROTO_F_REPLY;
  ms[n++] = run(PROTO_OP_WRITE_DATA, 10, 0, 1, 1, PROTO_MODE_INVALID, 1);
  ms[n++] = shmctl_req(0, IPC_STAT);
  ms[n] = msg(PROTO_OP_SHMCTL, 5);
  ms[n].h.flags = PROTO_F_REPLY;
  ms[n].u.shmctl_reply.ret = 0;
  ms[n].u.shmctl_reply.ds.segsz = 12288;
  ms[n++].u.shmctl_reply.info.shmmni = 4096;
  ms[n++] = run(PROTO_OP_ACQUIRE, 11, 0, 2, 1, PROTO_MODE_EXCLUSIVE, 0);
  ms[n++] = range(PROTO_OP_INVALIDATE, 12, 0, 0, 1, PROTO_MODE_INVALID);
  ms[n++] = range(PROTO_OP_INVALIDATE_ACK, 12, 0, 0, 1, PROTO_MODE_INVALID);
  ms[n++] = range(PROTO_OP_RECALL, 13, 0, 0, 1, PROTO_MODE_SHARED);
  ms[n++] = run(PROTO_OP_RECALL_ACK, 13, 0, 0, 1, PROTO_MODE_SHARED, 1);
  ms[n++] = ping();
  ms[n] = msg(PROTO_OP_ATTACH_SEGMENT, 3); /* an error reply: no payload */
  ms[n].h.flags = PROTO_F_REPLY;
  ms[n++].h.status = PROTO_EACCES;
  ms[n++] = challenge();
  ms[n++] = auth();
  ms[n] = msg(PROTO_OP_AUTH, 30);
  ms[n].h.flags = PROTO_F_REPLY;
  memset(ms[n++].u.auth_reply.mac, 0x3c, PROTO_MAC_SIZE);
  ms[n++] = node(0);
  ms[n] = msg(PROTO_OP_NODE, 14);
  ms[n].h.flags = PROTO_F_REPLY;
  memset(ms[n++].u.node_reply.instance, 0x77, PROTO_NODE_ID);
  ms[n++] = reattach(0, 2, 1);
  ms[n] = msg(PROTO_OP_REATTACH, 15);
  ms[n].h.flags = PROTO_F_REPLY;
  ms[n++].u.attach_reply = (struct proto_attach_reply){0, 3 * PROTO_PAGE_SIZE};
  ms[n++] = inherit(0, 2, 1);
  ms[n] = msg(PROTO_OP_INHERIT, 16); /* a bare status reply: empty on success */
  ms[n++].h.flags = PROTO_F_REPLY;
  all.n = 0;
  for (i = 0; i < n; i++) {
    frame(&all, &ms[i]);
    cur.n = 0;
    frame(&cur, &ms[i]);
    snprintf(name, sizeof name, "%02d-%s%s", i, proto_op_name(ms[i].h.opcode),
             ms[i].h.flags & PROTO_F_REPLY ? "-reply" : "");
    put_file(dir, name, &cur);
  }
  put_file(dir, "all", &all);
  /* A truncated stream and a lying length field. */
  all.n = 37;
  put_file(dir, "truncated", &all);
  proto_put_u32(all.b + 16, PROTO_SMALL_MAX + 1);
  put_file(dir, "oversized", &all);
}

static void server_seeds(const char *dir) {
  const int rw = IPC_CREAT | 0666;

  /* One peer through every SysV call and the page protocol. */
  cur.n = 0;
  rec(&cur, 0, hello());
  rec(&cur, 0, create(0x1234, 3 * PROTO_PAGE_SIZE, rw));
  rec(&cur, 0, attach(0, 0));
  rec(&cur, 0, run(PROTO_OP_READ_DATA, 7, 0, 0, 2, PROTO_MODE_SHARED, 0));
  rec(&cur, 0, run(PROTO_OP_ACQUIRE, 8, 0, 0, 1, PROTO_MODE_EXCLUSIVE, 0));
  rec(&cur, 0, run(PROTO_OP_WRITE_DATA, 9, 0, 0, 1, PROTO_MODE_SHARED, 1));
  rec(&cur, 0, shmctl_req(0, IPC_STAT));
  rec(&cur, 0, shmctl_req(0, IPC_SET));
  rec(&cur, 0, shmctl_req(0, IPC_INFO));
  rec(&cur, 0, shmctl_req(0, SHM_INFO));
  rec(&cur, 0, ping());
  rec(&cur, 0, segref(PROTO_OP_REMOVE_SEGMENT, 0));
  rec(&cur, 0, segref(PROTO_OP_DETACH_SEGMENT, 0));
  put_file(dir, "single-peer", &cur);

  /* Two peers contending for a page: RECALL and INVALIDATE with their acks (the server's
   * reqids start at 1), then one peer vanishes in the middle of a transaction. */
  cur.n = 0;
  rec(&cur, 0, hello());
  rec(&cur, 1, hello());
  rec(&cur, 0, create(0x99, 2 * PROTO_PAGE_SIZE, rw));
  rec(&cur, 0, attach(0, 0));
  rec(&cur, 1, attach(0, 0));
  rec(&cur, 0, run(PROTO_OP_ACQUIRE, 20, 0, 0, 1, PROTO_MODE_EXCLUSIVE, 0));
  rec(&cur, 1, run(PROTO_OP_READ_DATA, 21, 0, 0, 1, PROTO_MODE_SHARED, 0));
  rec(&cur, 0, run(PROTO_OP_RECALL_ACK, 1, 0, 0, 1, PROTO_MODE_SHARED, 1));
  rec(&cur, 1, run(PROTO_OP_ACQUIRE, 22, 0, 0, 1, PROTO_MODE_EXCLUSIVE, 0));
  rec(&cur, 0, range(PROTO_OP_INVALIDATE_ACK, 2, 0, 0, 1, PROTO_MODE_INVALID));
  rec(&cur, 0, run(PROTO_OP_ACQUIRE, 23, 0, 0, 2, PROTO_MODE_EXCLUSIVE, 0));
  rec(&cur, 2, hello());
  rec(&cur, 2, attach(0, SHM_RDONLY));
  rec(&cur, 2, run(PROTO_OP_READ_DATA, 24, 0, 1, 1, PROTO_MODE_SHARED, 0));
  rec(&cur, 0x81, segref(PROTO_OP_REMOVE_SEGMENT, 0)); /* and peer 1 disconnects */
  rec(&cur, 0, run(PROTO_OP_ACQUIRE, 25, 0, 1, 1, PROTO_MODE_EXCLUSIVE, 0));
  put_file(dir, "two-peers", &cur);

  /* A background write-back (WRITE_DATA keeping the page) crossing a RECALL. */
  cur.n = 0;
  rec(&cur, 0, hello());
  rec(&cur, 1, hello());
  rec(&cur, 0, create(0x98, 2 * PROTO_PAGE_SIZE, rw));
  rec(&cur, 0, attach(0, 0));
  rec(&cur, 1, attach(0, 0));
  rec(&cur, 0, run(PROTO_OP_ACQUIRE, 30, 0, 0, 2, PROTO_MODE_EXCLUSIVE, 0));
  rec(&cur, 0, run(PROTO_OP_WRITE_DATA, 31, 0, 0, 2, PROTO_MODE_EXCLUSIVE, 1));
  rec(&cur, 1, run(PROTO_OP_READ_DATA, 32, 0, 0, 1, PROTO_MODE_SHARED, 0));
  rec(&cur, 0, run(PROTO_OP_WRITE_DATA, 33, 0, 0, 1, PROTO_MODE_EXCLUSIVE, 1));
  rec(&cur, 0, run(PROTO_OP_RECALL_ACK, 1, 0, 0, 1, PROTO_MODE_SHARED, 0));
  rec(&cur, 1, run(PROTO_OP_WRITE_DATA, 34, 0, 1, 1, PROTO_MODE_EXCLUSIVE, 1));
  put_file(dir, "flush-keep", &cur);

  /* Protocol violations: no HELLO first, a second HELLO, server-only opcodes, a reply. */
  cur.n = 0;
  rec(&cur, 0, ping());
  rec(&cur, 1, hello());
  rec(&cur, 1, hello());
  rec(&cur, 2, hello());
  rec(&cur, 2, range(PROTO_OP_RECALL, 1, 0, 0, 1, PROTO_MODE_SHARED));
  rec(&cur, 3, hello());
  struct proto_msg r = ping();
  r.h.flags = PROTO_F_REPLY;
  rec(&cur, 3, r);
  put_file(dir, "violations", &cur);

  /* A returning node: identity, reattach, write-back, resumed; a second identity. */
  cur.n = 0;
  rec(&cur, 0, hello());
  rec(&cur, 0, node(0));
  rec(&cur, 0, create(0x77, 2 * PROTO_PAGE_SIZE, rw));
  rec(&cur, 1, hello());
  rec(&cur, 1, node(0));
  rec(&cur, 1, reattach(0, 2, 1));
  rec(&cur, 1, run(PROTO_OP_ACQUIRE, 30, 0, 0, 1, PROTO_MODE_EXCLUSIVE, 0));
  rec(&cur, 1, run(PROTO_OP_WRITE_DATA, 31, 0, 0, 1, PROTO_MODE_INVALID, 1));
  rec(&cur, 1, node(PROTO_NODE_RESUMED));
  rec(&cur, 1, reattach(12345, 1, 0));
  rec(&cur, 1, segref(PROTO_OP_DETACH_SEGMENT, 0));
  struct proto_msg other = node(0);
  other.u.node.id[0] = 1;
  rec(&cur, 1, other);
  put_file(dir, "reconnect", &cur);

  /* A forked child's attachments (INHERIT): on the first segment of a fresh server, whose
   * id is (0x8000 + 0) * 32768 + 0 (server/segments.h), attached here; then on it once
   * removed (it must outlive IPC_RMID); from a connection without it (EINVAL); on an
   * unknown id; before HELLO (a violation); and a disconnect with inherited attachments
   * left, which destroys the removed segment. */
  const int32_t first = 0x40000000;
  cur.n = 0;
  rec(&cur, 0, hello());
  rec(&cur, 0, create(0x66, 2 * PROTO_PAGE_SIZE, rw));
  rec(&cur, 0, attach(first, 0));
  rec(&cur, 0, inherit(first, 2, 1));
  rec(&cur, 0, run(PROTO_OP_ACQUIRE, 40, first, 0, 1, PROTO_MODE_EXCLUSIVE, 0));
  rec(&cur, 1, hello());
  rec(&cur, 1, attach(first, SHM_RDONLY));
  rec(&cur, 1, inherit(first, 0, 3));
  rec(&cur, 1, run(PROTO_OP_READ_DATA, 41, first, 0, 1, PROTO_MODE_SHARED, 0));
  rec(&cur, 0, run(PROTO_OP_RECALL_ACK, 1, first, 0, 1, PROTO_MODE_SHARED, 1));
  rec(&cur, 0, segref(PROTO_OP_REMOVE_SEGMENT, first));
  rec(&cur, 0, inherit(first, 0, 1));
  rec(&cur, 2, hello());
  rec(&cur, 2, inherit(first, 1, 0));
  rec(&cur, 2, inherit(12345, 1, 0));
  rec(&cur, 3, inherit(first, 1, 0));
  rec(&cur, 0, segref(PROTO_OP_DETACH_SEGMENT, first));
  rec(&cur, 0x81, segref(PROTO_OP_DETACH_SEGMENT, first));
  rec(&cur, 0x80, segref(PROTO_OP_DETACH_SEGMENT, first));
  rec(&cur, 2, shmctl_req(first, IPC_STAT));
  put_file(dir, "inherit", &cur);

  /* Limits: segments until the table is full, too big, a zero-size one. */
  cur.n = 0;
  rec(&cur, 0, hello());
  for (int i = 0; i < 10; i++)
    rec(&cur, 0, create(0x500 + i, 40 * PROTO_PAGE_SIZE, rw));
  rec(&cur, 0, create(IPC_PRIVATE, 1u << 30, rw));
  rec(&cur, 0, create(IPC_PRIVATE, 0, rw));
  put_file(dir, "limits", &cur);

  /* Authentication (bit 6 of the first selector turns --token-file on): a wrong proof, a
   * request before AUTH, AUTH twice, and AUTH where none was asked. */
  cur.n = 0;
  rec(&cur, 0x40, hello());
  rec(&cur, 0, auth());
  rec(&cur, 1, hello());
  rec(&cur, 1, ping());
  rec(&cur, 2, auth());
  rec(&cur, 3, hello());
  rec(&cur, 3, auth());
  rec(&cur, 3, auth());
  put_file(dir, "auth", &cur);
  cur.n = 0;
  rec(&cur, 0, hello());
  rec(&cur, 0, auth());
  put_file(dir, "auth-unasked", &cur);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: mkseeds PROTO_DIR SERVER_DIR\n");
    return 2;
  }
  memset(page, 0x5a, sizeof page);
  proto_seeds(argv[1]);
  server_seeds(argv[2]);
  return 0;
}
