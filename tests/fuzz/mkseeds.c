/* mkseeds.c - writes the fuzzers' seed corpus: valid frames of every opcode (requests and
 * replies) for fuzz_proto, scripted multi-peer sessions for fuzz_server, and for fuzz_agent
 * scripts that drive a host agent from both sides (processes and server) into deep states.
 * Usage: mkseeds PROTO_DIR SERVER_DIR [AGENT_DIR] (they must exist). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
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

/* OWNER_ALIVE about thread tid of pid on the host with node tag tag. */
static struct proto_msg owner_q(uint32_t reqid, uint64_t tag, uint32_t pid, uint32_t tid) {
  struct proto_msg m = msg(PROTO_OP_OWNER_ALIVE, reqid);
  m.u.owner = (struct proto_owner){tag, pid, tid, 0};
  return m;
}

/* SEG_INFO of kind what about shmid (PROCS: of the host with tag). */
static struct proto_msg seginfo_q(uint32_t reqid, int32_t shmid, uint32_t what, uint32_t first,
                                  uint64_t tag) {
  struct proto_msg m = msg(PROTO_OP_SEG_INFO, reqid);
  m.u.seginfo = (struct proto_seginfo){cred, shmid, what, first, tag};
  return m;
}

/* A SEG_INFO reply with two entries of kind what (the entries of each kind, valid; kept
 * in a buffer per kind, so replies of different kinds can wait side by side). */
static struct proto_msg seginfo_a(uint32_t reqid, uint32_t what) {
  static uint8_t ebuf[4][2 * PROTO_SEGHOST_SIZE];
  uint8_t *e = ebuf[what & 3];
  struct proto_msg m = msg(PROTO_OP_SEG_INFO, reqid);

  m.h.flags = PROTO_F_REPLY;
  for (uint32_t i = 0; i < 2; i++) {
    if (what == PROTO_SEGINFO_HOSTS)
      proto_seghost_put(e + i * PROTO_SEGHOST_SIZE,
                        &(struct proto_seghost){.tag = 7 + i, .node = i, .nrw = 1, .name = "h"});
    else if (what == PROTO_SEGINFO_PAGES)
      proto_segrun_put(e + i * PROTO_SEGRUN_SIZE,
                       &(struct proto_segrun){i, 1, (uint8_t)i, 0, (uint16_t)i,
                                              {i ? 0 : PROTO_NO_NODE, PROTO_NO_NODE,
                                               PROTO_NO_NODE, PROTO_NO_NODE}});
    else
      proto_segproc_put(e + i * PROTO_SEGPROC_SIZE, &(struct proto_segproc){4242 + i, 1, i});
  }
  m.u.seginfo_reply = (struct proto_seginfo_reply){what, 3, 2, 2, e};
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
/* SysV semaphores: the wire forms of the values and operations (docs/protocol.md). */
static const uint8_t sem_vals[6] = {0, 1, 0, 2, 0x7f, 0xff};
static const uint8_t sem_ops[12] = {0, 0, 0xff, 0xff, 0, 0,      /* sem 0: -1 */
                                    0, 1, 0, 1, 0x10, 0};        /* sem 1: +1, SEM_UNDO */

static struct proto_msg semget_req(int32_t key, int32_t nsems, int32_t flg) {
  struct proto_msg m = msg(PROTO_OP_SEMGET, 40);

  m.u.semget = (struct proto_semget){cred, key, nsems, flg};
  return m;
}

static struct proto_msg semctl_req(int32_t semid, int32_t semnum, int32_t cmd, uint32_t nvals) {
  struct proto_msg m = msg(PROTO_OP_SEMCTL, 41);

  m.u.semctl.cred = cred;
  m.u.semctl.semid = semid;
  m.u.semctl.semnum = semnum;
  m.u.semctl.cmd = cmd;
  m.u.semctl.val = 1;
  m.u.semctl.mode = 0640;
  m.u.semctl.nvals = nvals;
  m.u.semctl.vals = nvals ? sem_vals : NULL;
  return m;
}

/* nsops 1: the decrement alone; 2: with the SEM_UNDO increment. timeout_ms < 0: none. */
static struct proto_msg semop_req(uint32_t reqid, int32_t semid, uint32_t nsops,
                                  int timeout_ms) {
  struct proto_msg m = msg(PROTO_OP_SEMOP, reqid);

  m.u.semop.cred = cred;
  m.u.semop.semid = semid;
  if (timeout_ms >= 0) {
    m.u.semop.flags = PROTO_SEMOP_TIMEOUT;
    m.u.semop.tv_nsec = (int64_t)timeout_ms * 1000000;
  }
  m.u.semop.nsops = nsops;
  m.u.semop.sops = sem_ops;
  return m;
}

static struct proto_msg sem_cancel(uint32_t reqid) {
  struct proto_msg m = msg(PROTO_OP_SEM_CANCEL, 0);

  m.u.sem_cancel.reqid = reqid;
  return m;
}

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
  struct proto_msg ms[48];
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
  ms[n++] = semget_req(0x5e11, 3, IPC_CREAT | 0600);
  ms[n] = msg(PROTO_OP_SEMGET, 40);
  ms[n].h.flags = PROTO_F_REPLY;
  ms[n++].u.semget_reply.semid = 1 << 30;
  ms[n++] = semctl_req(1 << 30, 0, SETALL, 3);
  ms[n] = msg(PROTO_OP_SEMCTL, 41);
  ms[n].h.flags = PROTO_F_REPLY;
  ms[n].u.semctl_reply.ds.nsems = 3;
  ms[n].u.semctl_reply.info.semmsl = 32000;
  ms[n].u.semctl_reply.nvals = 3;
  ms[n++].u.semctl_reply.vals = sem_vals;
  ms[n++] = semop_req(42, 1 << 30, 2, 250);
  ms[n++] = sem_cancel(42);
  ms[n] = msg(PROTO_OP_PROC_EXIT, 0);
  ms[n++].u.proc_exit.pid = 4242;
  ms[n] = owner_q(43, 7, 4242, 4243);
  ms[n++].h.flags = PROTO_F_REPLY;
  ms[n++] = owner_q(44, 7, 4242, 4243);
  ms[n++] = seginfo_q(45, 1 << 30, PROTO_SEGINFO_PAGES, 0, 0);
  ms[n++] = seginfo_a(45, PROTO_SEGINFO_HOSTS);
  ms[n++] = seginfo_a(46, PROTO_SEGINFO_PAGES);
  ms[n++] = seginfo_a(47, PROTO_SEGINFO_PROCS);
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

  /* Semaphores: two peers; a set made and filled, a semop that waits and one that times
   * out, a SEM_UNDO one, the waiter cancelled, one done by the other peer's increment, an
   * exit applying the undo, every semctl command, the set removed under a waiter. The first
   * set's id is 1 << 30. */
  cur.n = 0;
  rec(&cur, 0, hello());
  rec(&cur, 1, hello());
  rec(&cur, 0, semget_req(0x5e11, 3, rw));
  rec(&cur, 0, semctl_req(1 << 30, 0, SETALL, 3));
  rec(&cur, 1, semop_req(50, 1 << 30, 1, -1));
  rec(&cur, 1, semop_req(51, 1 << 30, 1, 1));
  rec(&cur, 0, semop_req(52, 1 << 30, 2, -1));
  rec(&cur, 1, sem_cancel(50));
  rec(&cur, 1, semop_req(53, 1 << 30, 1, -1));
  rec(&cur, 0, semctl_req(1 << 30, 0, SETVAL, 0));
  {
    struct proto_msg e = msg(PROTO_OP_PROC_EXIT, 0);
    e.u.proc_exit.pid = cred.pid;
    rec(&cur, 0, e);
  }
  for (int32_t cmd = 0; cmd <= 20; cmd++)
    if (cmd != IPC_RMID && cmd != SETALL)
      rec(&cur, 0, semctl_req(cmd == SEM_STAT || cmd == SEM_STAT_ANY ? 0 : 1 << 30, 1, cmd, 0));
  rec(&cur, 1, semop_req(54, 1 << 30, 1, -1));
  rec(&cur, 0, semctl_req(1 << 30, 0, IPC_RMID, 0));
  put_file(dir, "semaphores", &cur);

  /* OWNER_ALIVE: peer 1 asks about peer 0's host (relayed to peer 0, whose answer goes back),
   * about an unknown host (answered at once), and again before peer 0 hangs up without an
   * answer (answered "not alive"); an answer nobody asked for is ignored. */
  cur.n = 0;
  rec(&cur, 0, hello());
  rec(&cur, 0, node(0));
  rec(&cur, 1, hello());
  {
    struct proto_msg ans;
    uint8_t id[PROTO_NODE_ID];
    other = node(0);
    other.u.node.id[0] = 1;
    rec(&cur, 1, other);
    memset(id, 0xA5, sizeof id);
    rec(&cur, 1, owner_q(70, proto_node_tag(id), 4242, 4243));
    ans = owner_q(1, proto_node_tag(id), 4242, 4243);
    ans.h.flags = PROTO_F_REPLY;
    ans.u.owner.alive = 1;
    rec(&cur, 0, ans);
    rec(&cur, 0, ans); /* again: nobody waits for it */
    rec(&cur, 1, owner_q(71, 12345, 1, 1));
    rec(&cur, 1, owner_q(72, proto_node_tag(id), 4242, 4244));
  }
  put_file(dir, "owners", &cur);

  /* SEG_INFO: peer 0 (a host) makes a segment, takes a page, reads another; peer 1 asks
   * for the hosts, the pages (from the start and past the end), and peer 0's processes
   * (relayed to peer 0, whose answer goes back), then again before peer 0 hangs up. */
  cur.n = 0;
  rec(&cur, 0, hello());
  rec(&cur, 0, node(0));
  rec(&cur, 1, hello());
  rec(&cur, 0, create(IPC_PRIVATE, 8 * PROTO_PAGE_SIZE, IPC_CREAT | 0644));
  rec(&cur, 0, attach(1 << 30, 0));
  rec(&cur, 0, run(PROTO_OP_ACQUIRE, 20, 1 << 30, 0, 2, PROTO_MODE_EXCLUSIVE, 0));
  rec(&cur, 0, run(PROTO_OP_READ_DATA, 21, 1 << 30, 4, 1, PROTO_MODE_SHARED, 0));
  rec(&cur, 1, seginfo_q(80, 1 << 30, PROTO_SEGINFO_HOSTS, 0, 0));
  rec(&cur, 1, seginfo_q(81, 1 << 30, PROTO_SEGINFO_PAGES, 0, 0));
  rec(&cur, 1, seginfo_q(82, 1 << 30, PROTO_SEGINFO_PAGES, 9, 0));
  {
    uint8_t id[PROTO_NODE_ID];
    memset(id, 0xA5, sizeof id);
    rec(&cur, 1, seginfo_q(83, 1 << 30, PROTO_SEGINFO_PROCS, 0, proto_node_tag(id)));
    rec(&cur, 0, seginfo_a(1, PROTO_SEGINFO_PROCS));
    rec(&cur, 1, seginfo_q(84, 1 << 30, PROTO_SEGINFO_PROCS, 0, 12345));
    rec(&cur, 1, seginfo_q(85, 1 << 30, PROTO_SEGINFO_PROCS, 0, proto_node_tag(id)));
  }
  put_file(dir, "seginfo", &cur);
}

/* ---- fuzz_agent: records of the processes (P), the server (S) and events (EV) ---- */

#define P(pp)       ((uint8_t)(pp))                      /* process pp sends a message */
#define PM(pp, n)   ((uint8_t)(0x20 | (n) << 2 | (pp)))  /* ... answering the agent's nth latest */
#define PF(pp)      ((uint8_t)(0xC0 | (pp)))             /* ... with a descriptor */
#define S           ((uint8_t)0x40)                      /* the server sends bytes */
#define SM(n)       ((uint8_t)(0x60 | (n)))              /* ... a reply to the nth latest request */
#define EV(op, pp)  ((uint8_t)(0x80 | (op) << 2 | (pp))) /* an event */

enum { EV_HANGUP, EV_CONNECT, EV_PAUSE, EV_FLUSH, EV_SRV_HANGUP, EV_SRV_PAUSE, EV_STOP, EV_HOLD,
       EV_STORE };

/* Pid table indexes of fuzz_agent (INHERIT's child, EV_CONNECT's byte). */
enum { PID_SELF, PID_INIT, PID_ZOMBIE, PID_NONE, PID_GROUPS };

static void raw(struct buf *b, uint8_t sel, const void *p, size_t n) {
  b->b[b->n++] = sel;
  b->b[b->n++] = (uint8_t)(n >> 8);
  b->b[b->n++] = (uint8_t)n;
  memcpy(b->b + b->n, p, n);
  b->n += n;
}

static void ev(struct buf *b, uint8_t op, uint8_t pp, uint8_t a0, uint8_t a1, uint8_t a2,
               uint8_t a3) {
  uint8_t a[4] = {a0, a1, a2, a3};

  raw(b, EV(op, pp), a, sizeof a);
}

/* A reply of the server to the agent's latest request of its opcode: the page data is left
 * out of the record (the target pads the frame to the length its header says). */
static void reply(struct buf *b, struct proto_msg m) {
  struct buf *one = malloc(sizeof *one);
  size_t data = 0;

  m.h.flags |= PROTO_F_REPLY;
  if (m.h.status == 0 && (m.h.opcode == PROTO_OP_READ_DATA || m.h.opcode == PROTO_OP_ACQUIRE))
    for (uint32_t i = 0; i < m.u.run.count; i++)
      data += m.u.run.page[i].flags & PROTO_PAGE_DATA ? PROTO_PAGE_SIZE : 0;
  one->n = 0;
  frame(one, &m);
  raw(b, SM(0), one->b, one->n - data);
  free(one);
}

static struct proto_msg status(uint8_t op, int32_t st) {
  struct proto_msg m = msg(op, 0);

  m.h.flags = PROTO_F_REPLY;
  m.h.status = st;
  return m;
}

static struct proto_msg attach_reply(int32_t shmid, uint64_t segsz) {
  struct proto_msg m = status(PROTO_OP_ATTACH_SEGMENT, 0);

  m.u.attach_reply = (struct proto_attach_reply){shmid, segsz};
  return m;
}

/* A fault record, as the shim's signal handler sends it. */
static struct proto_msg fault(int32_t shmid, uint32_t pg, int write) {
  return run(write ? PROTO_OP_ACQUIRE : PROTO_OP_READ_DATA, 0, shmid, pg, 1,
             write ? PROTO_MODE_EXCLUSIVE : PROTO_MODE_SHARED, 0);
}

/* The shim's answer to an INVALIDATE or RECALL (INVALIDATE_ACK for both). */
static struct proto_msg lowered(int32_t shmid, uint32_t first, uint32_t count) {
  return range(PROTO_OP_INVALIDATE_ACK, 0, shmid, first, count, PROTO_MODE_INVALID);
}

/* The shim's word that it raised a fresh grant the agent holds a revocation for. */
static struct proto_msg raised(int32_t shmid, uint32_t pg) {
  return range(PROTO_OP_RAISED, 0, shmid, pg, 1, PROTO_MODE_INVALID);
}

static struct proto_msg child(int32_t shmid, uint32_t nrw, uint32_t nro, uint32_t pid) {
  struct proto_msg m = inherit(shmid, nrw, nro);

  m.u.inherit.child = pid;
  return m;
}

/* pp attaches shmid of npages through the server, maps it and holds every page. */
static void attached(struct buf *b, uint8_t pp, int32_t shmid, uint32_t npages, int flg) {
  rec(b, P(pp), attach(shmid, flg));
  reply(b, attach_reply(shmid, (uint64_t)npages * PROTO_PAGE_SIZE));
  ev(b, EV_HOLD, pp, 0, 0, 0, 0);
}

/* The server's grant of pages [first, first+count) at mode, with data and versions. */
static struct proto_msg grant(int32_t shmid, uint32_t first, uint32_t count, uint32_t mode) {
  struct proto_msg m = run(mode == PROTO_MODE_EXCLUSIVE ? PROTO_OP_ACQUIRE : PROTO_OP_READ_DATA,
                           0, shmid, first, count, mode, 1);

  for (uint32_t i = 0; i < count; i++)
    m.u.run.page[i].version = 100 + first + i;
  return m;
}

static void agent_seeds(const char *dir) {
  static const uint8_t garbage[] = "GET / HTTP/1.0\r\nHost: dshm\r\n\r\n"; /* > a header */
  static struct buf one;
  struct proto_msg m;

  /* One process through a page's life: create, attach, a read fault granted with data
   * (read-ahead), a write fault granted, a store and a background write-back (one page at
   * a time, then all), a RECALL that keeps SHARED and an INVALIDATE (each lowered by the
   * process), IPC_STAT, detach (write-back of the host's pages), remove; PINGs. */
  cur.n = 0;
  rec(&cur, P(0), hello());
  rec(&cur, P(0), create(0x1234, 3 * PROTO_PAGE_SIZE, IPC_CREAT | 0600));
  m = status(PROTO_OP_CREATE_SEGMENT, 0);
  m.u.create_reply.shmid = 7;
  reply(&cur, m);
  rec(&cur, P(0), attach(7, 0));
  reply(&cur, attach_reply(7, 3 * PROTO_PAGE_SIZE));
  ev(&cur, EV_HOLD, 0, 0, 0, 0, 0x40);
  rec(&cur, P(0), fault(7, 0, 0));
  reply(&cur, grant(7, 0, 3, PROTO_MODE_SHARED));
  rec(&cur, P(0), fault(7, 1, 1));
  reply(&cur, grant(7, 1, 2, PROTO_MODE_EXCLUSIVE));
  ev(&cur, EV_STORE, 0, 0, 1, 0, 0);
  ev(&cur, EV_STORE, 0, 0, 2, 0, 0);
  ev(&cur, EV_FLUSH, 0, 1, 0, 0, 0);
  ev(&cur, EV_FLUSH, 0, 0, 0, 0, 0);
  rec(&cur, S, range(PROTO_OP_RECALL, 900, 7, 1, 1, PROTO_MODE_SHARED));
  rec(&cur, PM(0, 0), lowered(7, 1, 1));
  rec(&cur, S, range(PROTO_OP_INVALIDATE, 901, 7, 0, 3, PROTO_MODE_INVALID));
  rec(&cur, PM(0, 0), lowered(7, 0, 3));
  rec(&cur, P(0), fault(7, 2, 1)); /* asked again after the recall */
  reply(&cur, grant(7, 2, 1, PROTO_MODE_EXCLUSIVE));
  rec(&cur, P(0), shmctl_req(7, IPC_STAT));
  m = status(PROTO_OP_SHMCTL, 0);
  m.u.shmctl_reply.ds.segsz = 3 * PROTO_PAGE_SIZE;
  m.u.shmctl_reply.ds.nattch = 1;
  reply(&cur, m);
  rec(&cur, P(0), segref(PROTO_OP_DETACH_SEGMENT, 7));
  reply(&cur, status(PROTO_OP_DETACH_SEGMENT, 0));
  rec(&cur, P(0), segref(PROTO_OP_REMOVE_SEGMENT, 7));
  reply(&cur, status(PROTO_OP_REMOVE_SEGMENT, 0));
  rec(&cur, S, ping());
  rec(&cur, P(0), ping());
  put_file(dir, "page-life", &cur);

  /* Two processes share a page; a RECALL goes to both, one answers, the other disappears
   * before it does (its hang-up completes the recall); one whose socket is full (a small
   * buffer, not read) gets its INVALIDATEs late; one hangs up while its ATTACH is at the
   * server (the success is undone); one hangs up in the same loop iteration as another's
   * call (read first). */
  cur.n = 0;
  rec(&cur, P(0), hello());
  rec(&cur, P(1), hello());
  attached(&cur, 0, 9, 2, 0);
  attached(&cur, 1, 9, 2, SHM_RDONLY);
  rec(&cur, P(0), fault(9, 0, 1));
  reply(&cur, grant(9, 0, 2, PROTO_MODE_EXCLUSIVE));
  rec(&cur, P(1), fault(9, 1, 0));
  rec(&cur, P(1), fault(9, 1, 1)); /* read-only: not asked */
  rec(&cur, S, range(PROTO_OP_RECALL, 902, 9, 0, 2, PROTO_MODE_INVALID));
  rec(&cur, PM(0, 0), lowered(9, 0, 2));
  ev(&cur, EV_HANGUP, 1, 0, 0, 0, 0);
  ev(&cur, EV_CONNECT, 2, 0x40 | PID_ZOMBIE, 0, 0, 0);
  attached(&cur, 2, 9, 2, 0);
  ev(&cur, EV_PAUSE, 2, 0, 0, 0, 0);
  for (uint32_t i = 0; i < 8; i++) {
    rec(&cur, P(2), fault(9, i & 1, 0));
    reply(&cur, grant(9, i & 1, 1, PROTO_MODE_SHARED));
    rec(&cur, S, range(PROTO_OP_INVALIDATE, 910 + i, 9, 0, 2, PROTO_MODE_INVALID));
  }
  ev(&cur, EV_PAUSE, 2, 0, 0, 0, 0);
  for (uint8_t i = 0; i < 8; i++)
    rec(&cur, PM(2, 7 - i), lowered(9, 0, 2));
  rec(&cur, P(3), attach(9, 0));
  ev(&cur, EV_HANGUP, 3, 0, 0, 0, 0);
  reply(&cur, attach_reply(9, 2 * PROTO_PAGE_SIZE));
  ev(&cur, EV_CONNECT, 1, PID_INIT, 0, 0, 0);
  attached(&cur, 1, 9, 2, 0);
  raw(&cur, EV(9, 0), "\2", 1);
  rec(&cur, P(0), shmctl_req(9, IPC_STAT));
  ev(&cur, EV_HANGUP, 1, 0, 0, 0, 0);
  reply(&cur, status(PROTO_OP_SHMCTL, PROTO_EIDRM));
  ev(&cur, EV_HANGUP, 0, 0, 0, 0, 0);
  ev(&cur, EV_HANGUP, 2, 0, 0, 0, 0);
  put_file(dir, "vanish-mid-recall", &cur);

  /* Fresh grants (proto/hosttab.h): a RECALL of a page granted for a process that has not
   * raised it yet is held until the process raises it (RAISED); a held INVALIDATE of a page
   * whose process hangs up goes on; one held at the last detach is answered then; RAISED
   * for no held revocation, for a segment not attached, and from a stranger are ignored. */
  cur.n = 0;
  rec(&cur, P(0), hello());
  attached(&cur, 0, 13, 2, 0);
  rec(&cur, P(0), fault(13, 0, 1));
  reply(&cur, grant(13, 0, 1, PROTO_MODE_EXCLUSIVE));
  rec(&cur, S, range(PROTO_OP_RECALL, 920, 13, 0, 1, PROTO_MODE_INVALID));
  ev(&cur, EV_HOLD, 0, 0, 0, 1, 0); /* raises page 0: RAISED */
  rec(&cur, PM(0, 0), lowered(13, 0, 1));
  rec(&cur, P(0), raised(13, 0));
  rec(&cur, P(1), raised(13, 0));
  rec(&cur, P(0), raised(99, 0));
  rec(&cur, P(0), fault(13, 0, 0));
  m = grant(13, 0, 1, PROTO_MODE_EXCLUSIVE); /* a migratory grant of a read */
  m.h.opcode = PROTO_OP_READ_DATA;
  reply(&cur, m);
  rec(&cur, S, range(PROTO_OP_RECALL, 921, 13, 0, 1, PROTO_MODE_INVALID));
  rec(&cur, P(0), segref(PROTO_OP_DETACH_SEGMENT, 13));
  reply(&cur, status(PROTO_OP_DETACH_SEGMENT, 0));
  rec(&cur, P(2), hello());
  attached(&cur, 2, 14, 1, 0);
  rec(&cur, P(2), fault(14, 0, 0));
  reply(&cur, grant(14, 0, 1, PROTO_MODE_SHARED));
  rec(&cur, S, range(PROTO_OP_INVALIDATE, 922, 14, 0, 1, PROTO_MODE_INVALID));
  ev(&cur, EV_HANGUP, 2, 0, 0, 0, 0);
  put_file(dir, "fresh-hold", &cur);

  /* A forked child's attachments: declared for a child that is alive and connects later
   * (init's pid), for one that is dead already (its pidfd fires at once), for a pid that
   * does not exist (ESRCH), on a segment the parent does not have (EINVAL); one the server
   * refuses. */
  cur.n = 0;
  attached(&cur, 0, 11, 1, 0);
  rec(&cur, P(0), child(11, 1, 0, PID_INIT));
  reply(&cur, status(PROTO_OP_INHERIT, 0));
  rec(&cur, P(0), child(11, 0, 2, PID_ZOMBIE));
  reply(&cur, status(PROTO_OP_INHERIT, 0));
  rec(&cur, P(0), child(11, 1, 0, PID_NONE));
  rec(&cur, P(0), child(12, 1, 0, PID_INIT));
  ev(&cur, EV_CONNECT, 1, PID_INIT, 0, 0, 0);
  rec(&cur, P(1), hello());
  rec(&cur, P(1), fault(11, 0, 1));
  reply(&cur, grant(11, 0, 1, PROTO_MODE_EXCLUSIVE));
  rec(&cur, P(1), segref(PROTO_OP_DETACH_SEGMENT, 11));
  reply(&cur, status(PROTO_OP_DETACH_SEGMENT, 0));
  rec(&cur, P(0), child(11, 1, 1, PID_INIT)); /* a second child with the same pid */
  reply(&cur, status(PROTO_OP_INHERIT, PROTO_ENOENT));
  ev(&cur, EV_HANGUP, 0, 0, 0, 0, 0);
  put_file(dir, "inherit", &cur);

  /* The server connection breaks (garbage) with a page EXCLUSIVE and a read in flight:
   * the host lowers its pages (calls made meanwhile wait), reconnects, re-registers the
   * segment and writes back what it gave up; the read is asked again. The connection
   * breaks again while the process detaches (the resync writes back, then detaches); the
   * server comes back as another instance (the segment is lost), then stays down (the agent
   * gives up and stops; the call that waited fails). */
  cur.n = 0;
  attached(&cur, 0, 13, 2, 0);
  attached(&cur, 1, 14, 1, 0);
  rec(&cur, P(0), fault(13, 0, 1));
  reply(&cur, grant(13, 0, 1, PROTO_MODE_EXCLUSIVE));
  rec(&cur, P(1), fault(14, 0, 1));
  reply(&cur, grant(14, 0, 1, PROTO_MODE_EXCLUSIVE));
  ev(&cur, EV_STORE, 0, 0, 0, 1, 0);
  rec(&cur, P(0), fault(13, 1, 0));
  ev(&cur, EV_CONNECT, 2, PID_GROUPS, 0, 0, 0); /* other groups: GROUPS before its calls */
  rec(&cur, P(2), create(0x98, PROTO_PAGE_SIZE, IPC_CREAT | 0600));
  reply(&cur, status(PROTO_OP_CREATE_SEGMENT, PROTO_ENOSPC));
  raw(&cur, S, garbage, sizeof garbage - 1);
  rec(&cur, P(0), shmctl_req(13, IPC_STAT));
  rec(&cur, P(2), create(0x97, PROTO_PAGE_SIZE, IPC_CREAT | 0600));
  rec(&cur, PM(0, 0), lowered(13, 0, 1));
  rec(&cur, PM(1, 0), lowered(14, 0, 1));
  reply(&cur, status(PROTO_OP_SHMCTL, PROTO_EIDRM));
  reply(&cur, grant(13, 1, 1, PROTO_MODE_SHARED));
  rec(&cur, P(1), fault(14, 0, 1));
  reply(&cur, grant(14, 0, 1, PROTO_MODE_EXCLUSIVE));
  rec(&cur, S, range(PROTO_OP_RECALL, 920, 14, 0, 1, PROTO_MODE_INVALID));
  rec(&cur, PM(1, 0), lowered(14, 0, 1));
  raw(&cur, S, garbage, sizeof garbage - 1);
  rec(&cur, P(1), segref(PROTO_OP_DETACH_SEGMENT, 14));
  rec(&cur, PM(0, 0), lowered(13, 1, 1));
  ev(&cur, EV_SRV_HANGUP, 0, 1 | 2, 0, 0, 0);
  rec(&cur, PM(0, 0), lowered(13, 0, 2));
  rec(&cur, P(0), fault(13, 0, 0));
  rec(&cur, P(0), segref(PROTO_OP_DETACH_SEGMENT, 13));
  ev(&cur, EV_SRV_HANGUP, 0, 4, 0, 0, 0);
  attached(&cur, 0, 15, 1, 0);
  ev(&cur, EV_SRV_HANGUP, 0, 8, 0, 0, 0);
  rec(&cur, P(0), create(0x99, PROTO_PAGE_SIZE, IPC_CREAT | 0600));
  put_file(dir, "reconnect", &cur);

  /* What the agent must refuse or survive: a reply-flagged message, an opcode processes do
   * not send, a descriptor, credentials of another process, a truncated message, an empty
   * one (with a descriptor too); from the server: error replies, a reply nobody waits for,
   * requests it never sends, revocations of unknown segments and out of range, a segment
   * too big and one of size 0. */
  cur.n = 0;
  rec(&cur, P(0), ping());
  m = ping();
  m.h.flags = PROTO_F_REPLY;
  rec(&cur, P(0), m);
  rec(&cur, P(1), node(0));
  rec(&cur, PF(2), hello());
  ev(&cur, EV_CONNECT, 3, 0x80 | PID_NONE, 0, 0, 0);
  rec(&cur, P(3), hello());
  ev(&cur, EV_CONNECT, 0, 0x80 | PID_SELF, 0, 0, 0);
  ev(&cur, EV_CONNECT, 1, PID_SELF, 0, 0, 0); /* the same pid twice: the older one goes */
  rec(&cur, P(1), hello());
  ev(&cur, EV_CONNECT, 0, 0x80 | PID_SELF, 0, 0, 0);
  rec(&cur, P(0), attach(15, 0));
  reply(&cur, attach_reply(15, (uint64_t)1 << 40)); /* 1 TiB: above the target's bound */
  rec(&cur, P(0), attach(15, 0));
  reply(&cur, attach_reply(15, 0));
  rec(&cur, P(0), attach(16, 0));
  reply(&cur, status(PROTO_OP_ATTACH_SEGMENT, PROTO_EACCES));
  rec(&cur, P(0), segref(PROTO_OP_DETACH_SEGMENT, 16));
  rec(&cur, P(0), segref(PROTO_OP_REMOVE_SEGMENT, 16));
  reply(&cur, status(PROTO_OP_REMOVE_SEGMENT, PROTO_EPERM));
  m = status(PROTO_OP_SHMCTL, PROTO_EINVAL);
  m.h.reqid = 77777;
  rec(&cur, S, m);
  rec(&cur, S, hello());
  rec(&cur, S, range(PROTO_OP_INVALIDATE, 904, 555, 0, 1, PROTO_MODE_INVALID));
  attached(&cur, 0, 17, 1, 0);
  rec(&cur, S, range(PROTO_OP_RECALL, 905, 17, 0, 256, PROTO_MODE_SHARED));
  rec(&cur, S, range(PROTO_OP_RECALL, 906, 17, 5, 1, PROTO_MODE_INVALID));
  rec(&cur, P(0), fault(17, 9, 0));
  m = run(PROTO_OP_ACQUIRE, 0, 17, 0, 1, PROTO_MODE_EXCLUSIVE, 0);
  one.n = 0;
  frame(&one, &m);
  proto_put_u32(one.b + PROTO_HDR_SIZE + 12, 3); /* a mode that does not exist */
  raw(&cur, P(0), one.b, one.n);
  rec(&cur, P(0), run(PROTO_OP_WRITE_DATA, 1, 17, 0, 1, PROTO_MODE_INVALID, 1)); /* too long */
  raw(&cur, P(1), "", 0);
  raw(&cur, PF(2), "", 0);
  put_file(dir, "violations", &cur);

  /* Write-back against a server that does not read: a 16-page write fault, stores, a
   * background write-back and the last detach queue up behind it; it reads again; then
   * the same, and it hangs up with the agent's writes pending; SIGTERM. */
  cur.n = 0;
  attached(&cur, 0, 19, 64, 0);
  rec(&cur, P(0), fault(19, 0, 1));
  reply(&cur, grant(19, 0, 16, PROTO_MODE_EXCLUSIVE));
  for (uint8_t pg = 0; pg < 16; pg += 3)
    ev(&cur, EV_STORE, 0, 0, pg, pg, 0);
  ev(&cur, EV_SRV_PAUSE, 0, 0, 0, 0, 0);
  ev(&cur, EV_FLUSH, 0, 0, 0, 0, 0);
  rec(&cur, P(0), segref(PROTO_OP_DETACH_SEGMENT, 19));
  ev(&cur, EV_SRV_PAUSE, 0, 0, 0, 0, 0);
  reply(&cur, status(PROTO_OP_DETACH_SEGMENT, 0));
  attached(&cur, 0, 20, 64, 0);
  rec(&cur, P(0), fault(20, 16, 1));
  reply(&cur, grant(20, 16, 16, PROTO_MODE_EXCLUSIVE));
  ev(&cur, EV_SRV_PAUSE, 0, 0, 0, 0, 0);
  for (uint8_t i = 0; i < 8; i++) {
    ev(&cur, EV_STORE, 0, 0, 16 + i, i, 0);
    ev(&cur, EV_FLUSH, 0, 0, 0, 0, 0);
  }
  ev(&cur, EV_SRV_HANGUP, 0, 0, 0, 0, 0);
  rec(&cur, PM(0, 0), lowered(20, 16, 16));
  ev(&cur, EV_STOP, 0, 0, 0, 0, 0);
  rec(&cur, P(0), hello());
  put_file(dir, "backpressure", &cur);

  /* Semaphores through the agent: semget, a SETALL, a semop that waits and is cancelled
   * (the server's EINTR), a SEM_UNDO semop, GETALL's reply with values, a waiter whose
   * process hangs up (its semop cancelled at the server, its exit watched). */
  cur.n = 0;
  rec(&cur, P(0), semget_req(0x5e11, 3, IPC_CREAT | 0600));
  m = status(PROTO_OP_SEMGET, 0);
  m.u.semget_reply.semid = 1 << 30;
  reply(&cur, m);
  rec(&cur, P(0), semctl_req(1 << 30, 0, SETALL, 3));
  reply(&cur, status(PROTO_OP_SEMCTL, 0));
  rec(&cur, P(0), semop_req(60, 1 << 30, 1, -1));
  rec(&cur, P(0), sem_cancel(60));
  reply(&cur, status(PROTO_OP_SEMOP, PROTO_EINTR));
  rec(&cur, P(1), semop_req(61, 1 << 30, 2, 100));
  reply(&cur, status(PROTO_OP_SEMOP, 0));
  rec(&cur, P(1), semctl_req(1 << 30, 0, GETALL, 0));
  m = status(PROTO_OP_SEMCTL, 0);
  m.u.semctl_reply.nvals = 3;
  m.u.semctl_reply.vals = sem_vals;
  reply(&cur, m);
  rec(&cur, P(1), semop_req(62, 1 << 30, 1, -1));
  ev(&cur, EV_HANGUP, 1, 0, 0, 0, 0);
  reply(&cur, status(PROTO_OP_SEMOP, PROTO_EINTR));
  rec(&cur, P(0), semop_req(63, 1 << 30, 1, 0));
  reply(&cur, status(PROTO_OP_SEMOP, PROTO_EAGAIN));
  ev(&cur, EV_STOP, 0, 0, 0, 0, 0);
  put_file(dir, "semaphores", &cur);

  /* OWNER_ALIVE: a process asks for its host's tag (answered by the agent), about a thread
   * of another host (forwarded; the server's answer goes back), and the server asks about a
   * thread of this host (answered from /proc). */
  cur.n = 0;
  rec(&cur, P(0), owner_q(80, 0, 0, 0));
  rec(&cur, P(0), owner_q(81, 77, 4242, 4243));
  m = status(PROTO_OP_OWNER_ALIVE, 0);
  m.u.owner = (struct proto_owner){77, 4242, 4243, 1};
  reply(&cur, m);
  one.n = 0;
  frame(&one, &(struct proto_msg){.h = {.opcode = PROTO_OP_OWNER_ALIVE, .reqid = 9},
                                  .u.owner = {1, 1, 1, 0}});
  raw(&cur, S, one.b, one.n);
  ev(&cur, EV_STOP, 0, 0, 0, 0, 0);
  put_file(dir, "owners", &cur);

  /* SEG_INFO: a process asks for the pages (forwarded; the reply with its entries goes
   * back) and for its own host's processes (tag 0); the server asks for this host's
   * processes of a segment (answered from the records) and for a kind only it answers. */
  cur.n = 0;
  attached(&cur, 0, 21, 4, 0);
  rec(&cur, P(0), seginfo_q(90, 21, PROTO_SEGINFO_PAGES, 0, 0));
  reply(&cur, seginfo_a(0, PROTO_SEGINFO_PAGES));
  rec(&cur, P(0), seginfo_q(91, 21, PROTO_SEGINFO_PROCS, 0, 0));
  reply(&cur, seginfo_a(0, PROTO_SEGINFO_PROCS));
  rec(&cur, S, seginfo_q(92, 21, PROTO_SEGINFO_PROCS, 0, 0));
  rec(&cur, S, seginfo_q(93, 21, PROTO_SEGINFO_HOSTS, 0, 0));
  ev(&cur, EV_STOP, 0, 0, 0, 0, 0);
  put_file(dir, "seginfo", &cur);
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: mkseeds PROTO_DIR SERVER_DIR [AGENT_DIR]\n");
    return 2;
  }
  memset(page, 0x5a, sizeof page);
  proto_seeds(argv[1]);
  server_seeds(argv[2]);
  if (argc == 4)
    agent_seeds(argv[3]);
  return 0;
}
