/* proto.c - encodes and decodes dshm frames; never reads or writes past the buffer given. */
#include "proto.h"

#include <errno.h>
#include <string.h>

/* Payload sizes of the fixed-size messages (docs/protocol.md). */
#define CRED_SIZE         12u
#define HELLO_FIXED       20u  /* pid, uid, gid, ngroups + name_len */
#define HELLO_REPLY_SIZE  12u
#define CREATE_SIZE       (CRED_SIZE + 20u)
#define CREATE_REPLY_SIZE 4u
#define ATTACH_SIZE       (CRED_SIZE + 8u)
#define ATTACH_REPLY_SIZE 12u
#define SEGREF_SIZE       (CRED_SIZE + 4u)
#define SHMCTL_SIZE       (CRED_SIZE + 28u)
#define DS_SIZE           76u
#define INFO_SIZE         72u
#define SHMCTL_REPLY_SIZE (4u + DS_SIZE + INFO_SIZE)
#define RANGE_SIZE        16u
#define PING_SIZE         8u
#define CHALLENGE_SIZE    (4u + PROTO_NONCE_SIZE)
#define AUTH_SIZE         (PROTO_NONCE_SIZE + PROTO_MAC_SIZE)
#define AUTH_REPLY_SIZE   PROTO_MAC_SIZE
#define REATTACH_SIZE     (CRED_SIZE + 12u)
#define INHERIT_SIZE      (CRED_SIZE + 16u)
#define SEMGET_SIZE       (CRED_SIZE + 12u)
#define SEMGET_REPLY_SIZE 4u
#define SEMCTL_FIXED      (CRED_SIZE + 32u)  /* + 2 per value */
#define SEMDS_SIZE        52u
#define SEMINFO_SIZE      40u
#define SEMCTL_REPLY_FIXED (4u + SEMDS_SIZE + SEMINFO_SIZE + 4u) /* + 2 per value */
#define SEMOP_FIXED       (CRED_SIZE + 28u)  /* + PROTO_SEMOP_SIZE per operation */
#define SEM_CANCEL_SIZE   4u
#define PROC_EXIT_SIZE    4u
#define OWNER_SIZE        20u
#define SEGINFO_SIZE      (CRED_SIZE + 20u)
#define SEGINFO_REPLY_FIXED 16u             /* + n entries of the kind's size */

static const uint32_t op_max[PROTO_OP_MAX_] = {
#define OP_MAX(name, code, max) [code] = (max),
  PROTO_OPCODES(OP_MAX)
#undef OP_MAX
};

static const char *const op_names[PROTO_OP_MAX_] = {
#define OP_NAME(name, code, max) [code] = #name,
  PROTO_OPCODES(OP_NAME)
#undef OP_NAME
};

void proto_put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

void proto_put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

void proto_put_u64(uint8_t *p, uint64_t v) {
  proto_put_u32(p, (uint32_t)(v >> 32));
  proto_put_u32(p + 4, (uint32_t)v);
}

uint16_t proto_get_u16(const uint8_t *p) {
  return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

uint32_t proto_get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t proto_get_u64(const uint8_t *p) {
  return (uint64_t)proto_get_u32(p) << 32 | proto_get_u32(p + 4);
}

uint64_t proto_node_tag(const uint8_t id[PROTO_NODE_ID]) {
  uint64_t t = proto_get_u64(id) ^ proto_get_u64(id + 8);
  return t != 0 ? t : 1;
}

const char *proto_op_name(unsigned opcode) {
  if (opcode >= PROTO_OP_MAX_ || op_names[opcode] == NULL)
    return "?";
  return op_names[opcode];
}

int proto_err_from_errno(int err) {
  if (err < 0)
    err = -err;
  switch (err) {
#define ERR_FROM(name, code, e) case e: return PROTO_##name;
    PROTO_ERRORS(ERR_FROM)
#undef ERR_FROM
  }
  return PROTO_EIO;
}

int proto_err_to_errno(int code) {
  switch (code) {
#define ERR_TO(name, c, e) case c: return e;
    PROTO_ERRORS(ERR_TO)
#undef ERR_TO
  }
  return EIO;
}

ssize_t proto_frame(const uint8_t *buf, size_t len, struct proto_hdr *h) {
  if (len < PROTO_HDR_SIZE)
    return 0;
  h->magic = proto_get_u32(buf);
  h->version = buf[4];
  h->opcode = buf[5];
  h->flags = proto_get_u16(buf + 6);
  h->reqid = proto_get_u32(buf + 8);
  h->status = (int32_t)proto_get_u32(buf + 12);
  h->length = proto_get_u32(buf + 16);
  if (h->magic != PROTO_MAGIC || (h->flags & ~PROTO_F_KNOWN) != 0)
    return -EBADMSG;
  if (h->version != PROTO_VERSION)
    return -EPROTONOSUPPORT;
  if (h->opcode == 0 || h->opcode >= PROTO_OP_MAX_ || op_max[h->opcode] == 0)
    return -EOPNOTSUPP;
  if (h->length > op_max[h->opcode])
    return -EMSGSIZE;
  /* length <= PROTO_MAX_PAYLOAD, so the sum cannot overflow. */
  if (len - PROTO_HDR_SIZE < h->length)
    return 0;
  return (ssize_t)(PROTO_HDR_SIZE + h->length);
}

/* Which payload a frame carries. A failed reply carries none. */
enum body {
  B_NONE,
  B_ERROR,
  B_HELLO,
  B_HELLO_REPLY,
  B_GROUPS,
  B_CREATE,
  B_CREATE_REPLY,
  B_ATTACH,
  B_ATTACH_REPLY,
  B_SEGREF,
  B_SHMCTL,
  B_SHMCTL_REPLY,
  B_RUN,
  B_RANGE,
  B_PING,
  B_CHALLENGE,
  B_AUTH,
  B_AUTH_REPLY,
  B_NODE,
  B_NODE_REPLY,
  B_REATTACH,
  B_INHERIT,
  B_SEMGET,
  B_SEMGET_REPLY,
  B_SEMCTL,
  B_SEMCTL_REPLY,
  B_SEMOP,
  B_SEM_CANCEL,
  B_PROC_EXIT,
  B_OWNER,
  B_SEGINFO,
  B_SEGINFO_REPLY,
};

static enum body body_of(const struct proto_hdr *h) {
  int reply = (h->flags & PROTO_F_REPLY) != 0;
  if (reply && h->status != 0)
    return B_ERROR;
  switch (h->opcode) {
  case PROTO_OP_HELLO:          return reply ? B_HELLO_REPLY : B_HELLO;
  case PROTO_OP_CREATE_SEGMENT: return reply ? B_CREATE_REPLY : B_CREATE;
  case PROTO_OP_ATTACH_SEGMENT: return reply ? B_ATTACH_REPLY : B_ATTACH;
  case PROTO_OP_DETACH_SEGMENT:
  case PROTO_OP_REMOVE_SEGMENT: return reply ? B_NONE : B_SEGREF;
  case PROTO_OP_SHMCTL:         return reply ? B_SHMCTL_REPLY : B_SHMCTL;
  case PROTO_OP_READ_DATA:
  case PROTO_OP_ACQUIRE:        return B_RUN;
  case PROTO_OP_WRITE_DATA:     return reply ? B_NONE : B_RUN;
  case PROTO_OP_RECALL_ACK:     return B_RUN;
  case PROTO_OP_INVALIDATE:
  case PROTO_OP_INVALIDATE_ACK:
  case PROTO_OP_RECALL:
  case PROTO_OP_RAISED:         return B_RANGE;
  case PROTO_OP_PING:           return B_PING;
  case PROTO_OP_GROUPS:         return reply ? B_NONE : B_GROUPS;
  case PROTO_OP_CHALLENGE:      return reply ? B_NONE : B_CHALLENGE;
  case PROTO_OP_AUTH:           return reply ? B_AUTH_REPLY : B_AUTH;
  case PROTO_OP_NODE:           return reply ? B_NODE_REPLY : B_NODE;
  case PROTO_OP_REATTACH:       return reply ? B_ATTACH_REPLY : B_REATTACH;
  case PROTO_OP_INHERIT:        return reply ? B_NONE : B_INHERIT;
  case PROTO_OP_SEMGET:         return reply ? B_SEMGET_REPLY : B_SEMGET;
  case PROTO_OP_SEMCTL:         return reply ? B_SEMCTL_REPLY : B_SEMCTL;
  case PROTO_OP_SEMOP:          return reply ? B_NONE : B_SEMOP;
  case PROTO_OP_SEM_CANCEL:     return reply ? B_NONE : B_SEM_CANCEL;
  case PROTO_OP_PROC_EXIT:      return reply ? B_NONE : B_PROC_EXIT;
  case PROTO_OP_OWNER_ALIVE:    return B_OWNER;
  case PROTO_OP_SEG_INFO:       return reply ? B_SEGINFO_REPLY : B_SEGINFO;
  }
  return B_ERROR; /* unreachable for a framed header; treated as "no payload" */
}

/* A cursor over a payload: every get checks the bytes left first (subtraction form). */
struct rd {
  const uint8_t *p;
  size_t left;
  int bad;
};

static const uint8_t *rd_take(struct rd *r, size_t n) {
  const uint8_t *p = r->p;
  if (r->bad || n > r->left) {
    r->bad = 1;
    return NULL;
  }
  r->p += n;
  r->left -= n;
  return p;
}

static uint32_t rd_u32(struct rd *r) {
  const uint8_t *p = rd_take(r, 4);
  return p ? proto_get_u32(p) : 0;
}

static uint64_t rd_u64(struct rd *r) {
  const uint8_t *p = rd_take(r, 8);
  return p ? proto_get_u64(p) : 0;
}

static int32_t rd_i32(struct rd *r) {
  return (int32_t)rd_u32(r);
}

static void rd_copy(struct rd *r, uint8_t *dst, size_t n) {
  const uint8_t *p = rd_take(r, n);
  if (p != NULL)
    memcpy(dst, p, n);
}

static void rd_cred(struct rd *r, struct proto_cred *c) {
  c->pid = rd_u32(r);
  c->uid = rd_u32(r);
  c->gid = rd_u32(r);
}

struct wr {
  uint8_t *p;
};

static void wr_u32(struct wr *w, uint32_t v) {
  proto_put_u32(w->p, v);
  w->p += 4;
}

static void wr_u64(struct wr *w, uint64_t v) {
  proto_put_u64(w->p, v);
  w->p += 8;
}

static void wr_bytes(struct wr *w, const void *src, size_t n) {
  memcpy(w->p, src, n);
  w->p += n;
}

static void wr_cred(struct wr *w, const struct proto_cred *c) {
  wr_u32(w, c->pid);
  wr_u32(w, c->uid);
  wr_u32(w, c->gid);
}

static int range_ok(uint32_t first, uint32_t count) {
  return count >= 1 && count <= PROTO_MAX_RUN && first <= UINT32_MAX - count;
}

static int mode_ok(uint32_t mode) {
  return mode <= PROTO_MODE_EXCLUSIVE;
}

/* REATTACH and INHERIT: 1 <= nrw + nro <= PROTO_MAX_REATTACH, without a wrapping sum. */
static int counts_ok(uint32_t nrw, uint32_t nro) {
  return nrw <= PROTO_MAX_REATTACH && nro <= PROTO_MAX_REATTACH - nrw && nrw + nro >= 1;
}

/* ---- SEG_INFO entries ---- */

size_t proto_seginfo_entry_size(uint32_t what) {
  switch (what) {
  case PROTO_SEGINFO_HOSTS: return PROTO_SEGHOST_SIZE;
  case PROTO_SEGINFO_PAGES: return PROTO_SEGRUN_SIZE;
  case PROTO_SEGINFO_PROCS: return PROTO_SEGPROC_SIZE;
  }
  return 0;
}

void proto_seghost_put(uint8_t *e, const struct proto_seghost *h) {
  size_t n = strnlen(h->name, PROTO_MAX_NAME);

  proto_put_u64(e, h->tag);
  proto_put_u32(e + 8, h->node);
  proto_put_u32(e + 12, h->nrw);
  proto_put_u32(e + 16, h->nro);
  memset(e + 20, 0, PROTO_MAX_NAME);
  memcpy(e + 20, h->name, n);
}

void proto_segrun_put(uint8_t *e, const struct proto_segrun *r) {
  proto_put_u32(e, r->first);
  proto_put_u32(e + 4, r->count);
  e[8] = r->mode;
  e[9] = r->flags;
  proto_put_u16(e + 10, r->nholders);
  for (uint32_t i = 0; i < PROTO_SEGINFO_HOLDERS; i++)
    proto_put_u32(e + 12 + 4 * i, r->holder[i]);
}

void proto_segproc_put(uint8_t *e, const struct proto_segproc *p) {
  proto_put_u32(e, p->pid);
  proto_put_u32(e + 4, p->nrw);
  proto_put_u32(e + 8, p->nro);
}

static const uint8_t *seg_entry(const struct proto_seginfo_reply *r, uint32_t i) {
  return r->entries + (size_t)i * proto_seginfo_entry_size(r->what);
}

void proto_seghost_get(const struct proto_seginfo_reply *r, uint32_t i, struct proto_seghost *h) {
  const uint8_t *e = seg_entry(r, i);

  h->tag = proto_get_u64(e);
  h->node = proto_get_u32(e + 8);
  h->nrw = proto_get_u32(e + 12);
  h->nro = proto_get_u32(e + 16);
  memcpy(h->name, e + 20, PROTO_MAX_NAME);
  h->name[PROTO_MAX_NAME] = '\0';
}

void proto_segrun_get(const struct proto_seginfo_reply *r, uint32_t i, struct proto_segrun *run) {
  const uint8_t *e = seg_entry(r, i);

  run->first = proto_get_u32(e);
  run->count = proto_get_u32(e + 4);
  run->mode = e[8];
  run->flags = e[9];
  run->nholders = proto_get_u16(e + 10);
  for (uint32_t k = 0; k < PROTO_SEGINFO_HOLDERS; k++)
    run->holder[k] = proto_get_u32(e + 12 + 4 * k);
}

void proto_segproc_get(const struct proto_seginfo_reply *r, uint32_t i, struct proto_segproc *p) {
  const uint8_t *e = seg_entry(r, i);

  p->pid = proto_get_u32(e);
  p->nrw = proto_get_u32(e + 4);
  p->nro = proto_get_u32(e + 8);
}

/* One entry as a reader may rely on it: a name printable and NUL-padded; a run of at least
 * one page that does not wrap, a known mode and flags, exactly min(nholders, HOLDERS)
 * holders named. */
static int seg_entry_ok(uint32_t what, const uint8_t *e) {
  uint32_t i, named;

  if (what == PROTO_SEGINFO_HOSTS) {
    const uint8_t *name = e + 20;
    for (i = 0; i < PROTO_MAX_NAME && name[i] != 0; i++)
      if (name[i] < 0x20 || name[i] >= 0x7f)
        return 0;
    for (; i < PROTO_MAX_NAME; i++)
      if (name[i] != 0)
        return 0;
    return 1;
  }
  if (what == PROTO_SEGINFO_PAGES) {
    uint32_t first = proto_get_u32(e), count = proto_get_u32(e + 4);
    uint16_t nholders = proto_get_u16(e + 10);
    if (count == 0 || first > UINT32_MAX - count || !mode_ok(e[8]) ||
        (e[9] & ~PROTO_SEGRUN_KNOWN) != 0)
      return 0;
    named = nholders < PROTO_SEGINFO_HOLDERS ? nholders : PROTO_SEGINFO_HOLDERS;
    for (i = 0; i < PROTO_SEGINFO_HOLDERS; i++)
      if ((proto_get_u32(e + 12 + 4 * i) == PROTO_NO_NODE) != (i >= named))
        return 0;
    return 1;
  }
  return what == PROTO_SEGINFO_PROCS;
}

static int seginfo_reply_ok(const struct proto_seginfo_reply *r) {
  size_t size = proto_seginfo_entry_size(r->what);

  if (size == 0 || r->n > PROTO_SEGINFO_MAX_ENTRIES || r->next > r->total ||
      (r->n > 0 && r->entries == NULL))
    return 0;
  for (uint32_t i = 0; i < r->n; i++)
    if (!seg_entry_ok(r->what, r->entries + (size_t)i * size))
      return 0;
  return 1;
}

static int decode_run(struct rd *r, struct proto_run *run) {
  const uint8_t *entries;
  uint32_t i, ndata = 0;

  run->shmid = rd_i32(r);
  run->first = rd_u32(r);
  run->count = rd_u32(r);
  run->mode = rd_u32(r);
  if (r->bad || !range_ok(run->first, run->count) || !mode_ok(run->mode))
    return -EBADMSG;
  entries = rd_take(r, (size_t)run->count * PROTO_RUN_ENTRY);
  if (entries == NULL)
    return -EBADMSG;
  for (i = 0; i < run->count; i++) {
    const uint8_t *e = entries + (size_t)i * PROTO_RUN_ENTRY;
    run->page[i].version = proto_get_u64(e);
    run->page[i].flags = proto_get_u32(e + 8);
    run->page[i].data = NULL;
    if ((run->page[i].flags & ~PROTO_PAGE_DATA) != 0 || proto_get_u32(e + 12) != 0)
      return -EBADMSG;
    ndata += run->page[i].flags & PROTO_PAGE_DATA;
  }
  /* Data blocks must be exactly what the flags announce: compare before pointing. */
  if (r->left != (size_t)ndata * PROTO_PAGE_SIZE)
    return -EBADMSG;
  for (i = 0; i < run->count; i++)
    if (run->page[i].flags & PROTO_PAGE_DATA)
      run->page[i].data = rd_take(r, PROTO_PAGE_SIZE);
  return 0;
}

static void decode_ds(struct rd *r, struct proto_ds *ds) {
  ds->key = rd_i32(r);
  ds->uid = rd_u32(r);
  ds->gid = rd_u32(r);
  ds->cuid = rd_u32(r);
  ds->cgid = rd_u32(r);
  ds->mode = rd_u32(r);
  ds->seq = rd_u32(r);
  ds->segsz = rd_u64(r);
  ds->atime = (int64_t)rd_u64(r);
  ds->dtime = (int64_t)rd_u64(r);
  ds->ctime = (int64_t)rd_u64(r);
  ds->cpid = rd_u32(r);
  ds->lpid = rd_u32(r);
  ds->nattch = rd_u64(r);
}

/* nvals big-endian u16 values at the cursor, left in place (vals points at them). */
static const uint8_t *rd_vals(struct rd *r, uint32_t nvals) {
  if (r->bad || nvals > PROTO_SEMMSL_MAX) {
    r->bad = 1;
    return NULL;
  }
  return rd_take(r, 2 * (size_t)nvals);
}

static void decode_semds(struct rd *r, struct proto_semds *ds) {
  ds->key = rd_i32(r);
  ds->uid = rd_u32(r);
  ds->gid = rd_u32(r);
  ds->cuid = rd_u32(r);
  ds->cgid = rd_u32(r);
  ds->mode = rd_u32(r);
  ds->seq = rd_u32(r);
  ds->otime = (int64_t)rd_u64(r);
  ds->ctime = (int64_t)rd_u64(r);
  ds->nsems = rd_u64(r);
}

static void decode_seminfo(struct rd *r, struct proto_seminfo *in) {
  in->semmap = rd_i32(r);
  in->semmni = rd_i32(r);
  in->semmns = rd_i32(r);
  in->semmnu = rd_i32(r);
  in->semmsl = rd_i32(r);
  in->semopm = rd_i32(r);
  in->semume = rd_i32(r);
  in->semusz = rd_i32(r);
  in->semvmx = rd_i32(r);
  in->semaem = rd_i32(r);
}

static void decode_info(struct rd *r, struct proto_info *in) {
  in->shmmax = rd_u64(r);
  in->shmmin = rd_u64(r);
  in->shmmni = rd_u64(r);
  in->shmseg = rd_u64(r);
  in->shmall = rd_u64(r);
  in->used_ids = rd_u64(r);
  in->shm_tot = rd_u64(r);
  in->shm_rss = rd_u64(r);
  in->shm_swp = rd_u64(r);
}

static int decode_hello(struct rd *r, struct proto_hello *he) {
  const uint8_t *name;
  uint32_t i;

  he->pid = rd_u32(r);
  he->uid = rd_u32(r);
  he->gid = rd_u32(r);
  he->ngroups = rd_u32(r);
  if (r->bad || he->ngroups > PROTO_MAX_GROUPS)
    return -EBADMSG;
  for (i = 0; i < he->ngroups; i++)
    he->groups[i] = rd_u32(r);
  he->name_len = rd_u32(r);
  if (r->bad || he->name_len > PROTO_MAX_NAME)
    return -EBADMSG;
  name = rd_take(r, he->name_len);
  if (name == NULL)
    return -EBADMSG;
  memcpy(he->name, name, he->name_len);
  he->name[he->name_len] = '\0';
  return 0;
}

int proto_decode(struct proto_msg *m, const uint8_t *payload, size_t len) {
  struct rd r = {payload, len, 0};
  int err = 0;

  if (len != m->h.length)
    return -EBADMSG;
  switch (body_of(&m->h)) {
  case B_NONE:
  case B_ERROR:
    break;
  case B_HELLO:
    err = decode_hello(&r, &m->u.hello);
    break;
  case B_GROUPS:
    m->u.groups.ngroups = rd_u32(&r);
    if (r.bad || m->u.groups.ngroups > PROTO_MAX_GROUPS) {
      err = -EBADMSG;
      break;
    }
    for (uint32_t i = 0; i < m->u.groups.ngroups; i++)
      m->u.groups.groups[i] = rd_u32(&r);
    break;
  case B_HELLO_REPLY:
    m->u.hello_reply.node = rd_u32(&r);
    m->u.hello_reply.page_size = rd_u32(&r);
    m->u.hello_reply.max_run = rd_u32(&r);
    break;
  case B_CREATE:
    rd_cred(&r, &m->u.create.cred);
    m->u.create.key = rd_i32(&r);
    m->u.create.size = rd_u64(&r);
    m->u.create.shmflg = rd_i32(&r);
    m->u.create.huge_err = rd_u32(&r);
    break;
  case B_CREATE_REPLY:
    m->u.create_reply.shmid = rd_i32(&r);
    break;
  case B_ATTACH:
    rd_cred(&r, &m->u.attach.cred);
    m->u.attach.shmid = rd_i32(&r);
    m->u.attach.shmflg = rd_i32(&r);
    break;
  case B_ATTACH_REPLY:
    m->u.attach_reply.shmid = rd_i32(&r);
    m->u.attach_reply.segsz = rd_u64(&r);
    break;
  case B_SEGREF:
    rd_cred(&r, &m->u.segref.cred);
    m->u.segref.shmid = rd_i32(&r);
    break;
  case B_SHMCTL:
    rd_cred(&r, &m->u.shmctl.cred);
    m->u.shmctl.shmid = rd_i32(&r);
    m->u.shmctl.cmd = rd_i32(&r);
    m->u.shmctl.uid = rd_u32(&r);
    m->u.shmctl.gid = rd_u32(&r);
    m->u.shmctl.mode = rd_u32(&r);
    m->u.shmctl.memlock = rd_u64(&r);
    break;
  case B_SHMCTL_REPLY:
    m->u.shmctl_reply.ret = rd_i32(&r);
    decode_ds(&r, &m->u.shmctl_reply.ds);
    decode_info(&r, &m->u.shmctl_reply.info);
    break;
  case B_RUN:
    err = decode_run(&r, &m->u.run);
    break;
  case B_RANGE:
    m->u.range.shmid = rd_i32(&r);
    m->u.range.first = rd_u32(&r);
    m->u.range.count = rd_u32(&r);
    m->u.range.mode = rd_u32(&r);
    if (!r.bad && (!range_ok(m->u.range.first, m->u.range.count) ||
                   !mode_ok(m->u.range.mode)))
      err = -EBADMSG;
    break;
  case B_PING:
    m->u.ping.cookie = rd_u64(&r);
    break;
  case B_CHALLENGE:
    m->u.challenge.alg = rd_u32(&r);
    rd_copy(&r, m->u.challenge.nonce, PROTO_NONCE_SIZE);
    break;
  case B_AUTH:
    rd_copy(&r, m->u.auth.nonce, PROTO_NONCE_SIZE);
    rd_copy(&r, m->u.auth.mac, PROTO_MAC_SIZE);
    break;
  case B_AUTH_REPLY:
    rd_copy(&r, m->u.auth_reply.mac, PROTO_MAC_SIZE);
    break;
  case B_NODE: {
    const uint8_t *id = rd_take(&r, PROTO_NODE_ID);
    if (id != NULL)
      memcpy(m->u.node.id, id, PROTO_NODE_ID);
    m->u.node.flags = rd_u32(&r);
    if (!r.bad && (m->u.node.flags & ~PROTO_NODE_KNOWN) != 0)
      err = -EBADMSG;
    break;
  }
  case B_NODE_REPLY: {
    const uint8_t *id = rd_take(&r, PROTO_NODE_ID);
    if (id != NULL)
      memcpy(m->u.node_reply.instance, id, PROTO_NODE_ID);
    break;
  }
  case B_REATTACH:
    rd_cred(&r, &m->u.reattach.cred);
    m->u.reattach.shmid = rd_i32(&r);
    m->u.reattach.nrw = rd_u32(&r);
    m->u.reattach.nro = rd_u32(&r);
    if (!r.bad && !counts_ok(m->u.reattach.nrw, m->u.reattach.nro))
      err = -EBADMSG;
    break;
  case B_INHERIT:
    rd_cred(&r, &m->u.inherit.cred);
    m->u.inherit.shmid = rd_i32(&r);
    m->u.inherit.nrw = rd_u32(&r);
    m->u.inherit.nro = rd_u32(&r);
    m->u.inherit.child = rd_u32(&r);
    if (!r.bad && !counts_ok(m->u.inherit.nrw, m->u.inherit.nro))
      err = -EBADMSG;
    break;
  case B_SEMGET:
    rd_cred(&r, &m->u.semget.cred);
    m->u.semget.key = rd_i32(&r);
    m->u.semget.nsems = rd_i32(&r);
    m->u.semget.semflg = rd_i32(&r);
    break;
  case B_SEMGET_REPLY:
    m->u.semget_reply.semid = rd_i32(&r);
    break;
  case B_SEMCTL:
    rd_cred(&r, &m->u.semctl.cred);
    m->u.semctl.semid = rd_i32(&r);
    m->u.semctl.semnum = rd_i32(&r);
    m->u.semctl.cmd = rd_i32(&r);
    m->u.semctl.val = rd_i32(&r);
    m->u.semctl.uid = rd_u32(&r);
    m->u.semctl.gid = rd_u32(&r);
    m->u.semctl.mode = rd_u32(&r);
    m->u.semctl.nvals = rd_u32(&r);
    m->u.semctl.vals = rd_vals(&r, m->u.semctl.nvals);
    break;
  case B_SEMCTL_REPLY:
    m->u.semctl_reply.ret = rd_i32(&r);
    decode_semds(&r, &m->u.semctl_reply.ds);
    decode_seminfo(&r, &m->u.semctl_reply.info);
    m->u.semctl_reply.nvals = rd_u32(&r);
    m->u.semctl_reply.vals = rd_vals(&r, m->u.semctl_reply.nvals);
    break;
  case B_SEMOP:
    rd_cred(&r, &m->u.semop.cred);
    m->u.semop.semid = rd_i32(&r);
    m->u.semop.flags = rd_u32(&r);
    m->u.semop.tv_sec = (int64_t)rd_u64(&r);
    m->u.semop.tv_nsec = (int64_t)rd_u64(&r);
    m->u.semop.nsops = rd_u32(&r);
    if (!r.bad && (m->u.semop.nsops < 1 || m->u.semop.nsops > PROTO_SEMOPM_MAX ||
                   (m->u.semop.flags & ~PROTO_SEMOP_TIMEOUT) != 0)) {
      err = -EBADMSG;
      break;
    }
    m->u.semop.sops = rd_take(&r, (size_t)m->u.semop.nsops * PROTO_SEMOP_SIZE);
    break;
  case B_SEM_CANCEL:
    m->u.sem_cancel.reqid = rd_u32(&r);
    break;
  case B_PROC_EXIT:
    m->u.proc_exit.pid = rd_u32(&r);
    break;
  case B_OWNER:
    m->u.owner.tag = rd_u64(&r);
    m->u.owner.pid = rd_u32(&r);
    m->u.owner.tid = rd_u32(&r);
    m->u.owner.alive = rd_u32(&r);
    if (!r.bad && m->u.owner.alive > 1)
      err = -EBADMSG;
    break;
  case B_SEGINFO:
    rd_cred(&r, &m->u.seginfo.cred);
    m->u.seginfo.shmid = rd_i32(&r);
    m->u.seginfo.what = rd_u32(&r);
    m->u.seginfo.first = rd_u32(&r);
    m->u.seginfo.tag = rd_u64(&r);
    if (!r.bad && proto_seginfo_entry_size(m->u.seginfo.what) == 0)
      err = -EBADMSG;
    break;
  case B_SEGINFO_REPLY: {
    struct proto_seginfo_reply *sr = &m->u.seginfo_reply;
    size_t size;
    sr->what = rd_u32(&r);
    sr->total = rd_u32(&r);
    sr->next = rd_u32(&r);
    sr->n = rd_u32(&r);
    size = proto_seginfo_entry_size(sr->what);
    if (r.bad || size == 0 || sr->n > PROTO_SEGINFO_MAX_ENTRIES) {
      err = -EBADMSG;
      break;
    }
    sr->entries = rd_take(&r, (size_t)sr->n * size);
    if (!r.bad && !seginfo_reply_ok(sr))
      err = -EBADMSG;
    break;
  }
  }
  if (err != 0 || r.bad || r.left != 0)
    return -EBADMSG;
  return 0;
}

static ssize_t run_size(const struct proto_run *run) {
  size_t n;
  uint32_t i;

  if (!range_ok(run->first, run->count) || !mode_ok(run->mode))
    return -EINVAL;
  n = PROTO_RUN_HDR + (size_t)run->count * PROTO_RUN_ENTRY;
  for (i = 0; i < run->count; i++) {
    const struct proto_page *pg = &run->page[i];
    if ((pg->flags & ~PROTO_PAGE_DATA) != 0)
      return -EINVAL;
    if (pg->flags & PROTO_PAGE_DATA) {
      if (pg->data == NULL)
        return -EINVAL;
      n += PROTO_PAGE_SIZE;
    }
  }
  return (ssize_t)n;
}

static ssize_t payload_size(const struct proto_msg *m) {
  switch (body_of(&m->h)) {
  case B_NONE:
  case B_ERROR:        return 0;
  case B_HELLO:
    if (m->u.hello.ngroups > PROTO_MAX_GROUPS || m->u.hello.name_len > PROTO_MAX_NAME)
      return -EINVAL;
    return HELLO_FIXED + 4 * (ssize_t)m->u.hello.ngroups + m->u.hello.name_len;
  case B_HELLO_REPLY:  return HELLO_REPLY_SIZE;
  case B_GROUPS:
    if (m->u.groups.ngroups > PROTO_MAX_GROUPS)
      return -EINVAL;
    return 4 + 4 * (ssize_t)m->u.groups.ngroups;
  case B_CREATE:       return CREATE_SIZE;
  case B_CREATE_REPLY: return CREATE_REPLY_SIZE;
  case B_ATTACH:       return ATTACH_SIZE;
  case B_ATTACH_REPLY: return ATTACH_REPLY_SIZE;
  case B_SEGREF:       return SEGREF_SIZE;
  case B_SHMCTL:       return SHMCTL_SIZE;
  case B_SHMCTL_REPLY: return SHMCTL_REPLY_SIZE;
  case B_RUN:          return run_size(&m->u.run);
  case B_RANGE:
    if (!range_ok(m->u.range.first, m->u.range.count) || !mode_ok(m->u.range.mode))
      return -EINVAL;
    return RANGE_SIZE;
  case B_PING:         return PING_SIZE;
  case B_CHALLENGE:    return CHALLENGE_SIZE;
  case B_AUTH:         return AUTH_SIZE;
  case B_AUTH_REPLY:   return AUTH_REPLY_SIZE;
  case B_NODE:
    if ((m->u.node.flags & ~PROTO_NODE_KNOWN) != 0)
      return -EINVAL;
    return PROTO_NODE_ID + 4;
  case B_NODE_REPLY:   return PROTO_NODE_ID;
  case B_REATTACH:
    if (!counts_ok(m->u.reattach.nrw, m->u.reattach.nro))
      return -EINVAL;
    return REATTACH_SIZE;
  case B_INHERIT:
    if (!counts_ok(m->u.inherit.nrw, m->u.inherit.nro))
      return -EINVAL;
    return INHERIT_SIZE;
  case B_SEMGET:       return SEMGET_SIZE;
  case B_SEMGET_REPLY: return SEMGET_REPLY_SIZE;
  case B_SEMCTL:
    if (m->u.semctl.nvals > PROTO_SEMMSL_MAX || (m->u.semctl.nvals && !m->u.semctl.vals))
      return -EINVAL;
    return SEMCTL_FIXED + 2 * (ssize_t)m->u.semctl.nvals;
  case B_SEMCTL_REPLY:
    if (m->u.semctl_reply.nvals > PROTO_SEMMSL_MAX ||
        (m->u.semctl_reply.nvals && !m->u.semctl_reply.vals))
      return -EINVAL;
    return SEMCTL_REPLY_FIXED + 2 * (ssize_t)m->u.semctl_reply.nvals;
  case B_SEMOP:
    if (m->u.semop.nsops < 1 || m->u.semop.nsops > PROTO_SEMOPM_MAX ||
        m->u.semop.sops == NULL || (m->u.semop.flags & ~PROTO_SEMOP_TIMEOUT) != 0)
      return -EINVAL;
    return SEMOP_FIXED + PROTO_SEMOP_SIZE * (ssize_t)m->u.semop.nsops;
  case B_SEM_CANCEL:   return SEM_CANCEL_SIZE;
  case B_PROC_EXIT:    return PROC_EXIT_SIZE;
  case B_OWNER:        return m->u.owner.alive > 1 ? -EINVAL : (ssize_t)OWNER_SIZE;
  case B_SEGINFO:
    return proto_seginfo_entry_size(m->u.seginfo.what) == 0 ? -EINVAL : (ssize_t)SEGINFO_SIZE;
  case B_SEGINFO_REPLY:
    if (!seginfo_reply_ok(&m->u.seginfo_reply))
      return -EINVAL;
    return SEGINFO_REPLY_FIXED +
           (ssize_t)(m->u.seginfo_reply.n * proto_seginfo_entry_size(m->u.seginfo_reply.what));
  }
  return -EINVAL;
}

ssize_t proto_encoded_size(const struct proto_msg *m) {
  ssize_t n;

  if (m->h.opcode == 0 || m->h.opcode >= PROTO_OP_MAX_ || (m->h.flags & ~PROTO_F_KNOWN))
    return -EINVAL;
  n = payload_size(m);
  if (n < 0)
    return n;
  if ((size_t)n > op_max[m->h.opcode])
    return -EINVAL;
  return (ssize_t)PROTO_HDR_SIZE + n;
}

static void encode_ds(struct wr *w, const struct proto_ds *ds) {
  wr_u32(w, (uint32_t)ds->key);
  wr_u32(w, ds->uid);
  wr_u32(w, ds->gid);
  wr_u32(w, ds->cuid);
  wr_u32(w, ds->cgid);
  wr_u32(w, ds->mode);
  wr_u32(w, ds->seq);
  wr_u64(w, ds->segsz);
  wr_u64(w, (uint64_t)ds->atime);
  wr_u64(w, (uint64_t)ds->dtime);
  wr_u64(w, (uint64_t)ds->ctime);
  wr_u32(w, ds->cpid);
  wr_u32(w, ds->lpid);
  wr_u64(w, ds->nattch);
}

static void encode_semds(struct wr *w, const struct proto_semds *ds) {
  wr_u32(w, (uint32_t)ds->key);
  wr_u32(w, ds->uid);
  wr_u32(w, ds->gid);
  wr_u32(w, ds->cuid);
  wr_u32(w, ds->cgid);
  wr_u32(w, ds->mode);
  wr_u32(w, ds->seq);
  wr_u64(w, (uint64_t)ds->otime);
  wr_u64(w, (uint64_t)ds->ctime);
  wr_u64(w, ds->nsems);
}

static void encode_seminfo(struct wr *w, const struct proto_seminfo *in) {
  const int32_t f[] = {in->semmap, in->semmni, in->semmns, in->semmnu, in->semmsl,
                       in->semopm, in->semume, in->semusz, in->semvmx, in->semaem};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    wr_u32(w, (uint32_t)f[i]);
}

static void encode_info(struct wr *w, const struct proto_info *in) {
  wr_u64(w, in->shmmax);
  wr_u64(w, in->shmmin);
  wr_u64(w, in->shmmni);
  wr_u64(w, in->shmseg);
  wr_u64(w, in->shmall);
  wr_u64(w, in->used_ids);
  wr_u64(w, in->shm_tot);
  wr_u64(w, in->shm_rss);
  wr_u64(w, in->shm_swp);
}

static void encode_run(struct wr *w, const struct proto_run *run) {
  uint32_t i;

  wr_u32(w, (uint32_t)run->shmid);
  wr_u32(w, run->first);
  wr_u32(w, run->count);
  wr_u32(w, run->mode);
  for (i = 0; i < run->count; i++) {
    wr_u64(w, run->page[i].version);
    wr_u32(w, run->page[i].flags);
    wr_u32(w, 0);
  }
  for (i = 0; i < run->count; i++)
    if (run->page[i].flags & PROTO_PAGE_DATA)
      wr_bytes(w, run->page[i].data, PROTO_PAGE_SIZE);
}

static void write_hdr(uint8_t *buf, const struct proto_hdr *h) {
  proto_put_u32(buf, PROTO_MAGIC);
  buf[4] = PROTO_VERSION;
  buf[5] = h->opcode;
  proto_put_u16(buf + 6, h->flags);
  proto_put_u32(buf + 8, h->reqid);
  proto_put_u32(buf + 12, (uint32_t)h->status);
  proto_put_u32(buf + 16, h->length);
}

ssize_t proto_encode(uint8_t *buf, size_t cap, struct proto_msg *m) {
  ssize_t size = proto_encoded_size(m);
  struct wr w;
  uint32_t i;

  if (size < 0)
    return size;
  if ((size_t)size > cap)
    return -ENOBUFS;
  m->h.magic = PROTO_MAGIC;
  m->h.version = PROTO_VERSION;
  m->h.length = (uint32_t)(size - PROTO_HDR_SIZE);
  write_hdr(buf, &m->h);
  w.p = buf + PROTO_HDR_SIZE;

  switch (body_of(&m->h)) {
  case B_NONE:
  case B_ERROR:
    break;
  case B_HELLO:
    wr_u32(&w, m->u.hello.pid);
    wr_u32(&w, m->u.hello.uid);
    wr_u32(&w, m->u.hello.gid);
    wr_u32(&w, m->u.hello.ngroups);
    for (i = 0; i < m->u.hello.ngroups; i++)
      wr_u32(&w, m->u.hello.groups[i]);
    wr_u32(&w, m->u.hello.name_len);
    wr_bytes(&w, m->u.hello.name, m->u.hello.name_len);
    break;
  case B_GROUPS:
    wr_u32(&w, m->u.groups.ngroups);
    for (i = 0; i < m->u.groups.ngroups; i++)
      wr_u32(&w, m->u.groups.groups[i]);
    break;
  case B_HELLO_REPLY:
    wr_u32(&w, m->u.hello_reply.node);
    wr_u32(&w, m->u.hello_reply.page_size);
    wr_u32(&w, m->u.hello_reply.max_run);
    break;
  case B_CREATE:
    wr_cred(&w, &m->u.create.cred);
    wr_u32(&w, (uint32_t)m->u.create.key);
    wr_u64(&w, m->u.create.size);
    wr_u32(&w, (uint32_t)m->u.create.shmflg);
    wr_u32(&w, m->u.create.huge_err);
    break;
  case B_CREATE_REPLY:
    wr_u32(&w, (uint32_t)m->u.create_reply.shmid);
    break;
  case B_ATTACH:
    wr_cred(&w, &m->u.attach.cred);
    wr_u32(&w, (uint32_t)m->u.attach.shmid);
    wr_u32(&w, (uint32_t)m->u.attach.shmflg);
    break;
  case B_ATTACH_REPLY:
    wr_u32(&w, (uint32_t)m->u.attach_reply.shmid);
    wr_u64(&w, m->u.attach_reply.segsz);
    break;
  case B_SEGREF:
    wr_cred(&w, &m->u.segref.cred);
    wr_u32(&w, (uint32_t)m->u.segref.shmid);
    break;
  case B_SHMCTL:
    wr_cred(&w, &m->u.shmctl.cred);
    wr_u32(&w, (uint32_t)m->u.shmctl.shmid);
    wr_u32(&w, (uint32_t)m->u.shmctl.cmd);
    wr_u32(&w, m->u.shmctl.uid);
    wr_u32(&w, m->u.shmctl.gid);
    wr_u32(&w, m->u.shmctl.mode);
    wr_u64(&w, m->u.shmctl.memlock);
    break;
  case B_SHMCTL_REPLY:
    wr_u32(&w, (uint32_t)m->u.shmctl_reply.ret);
    encode_ds(&w, &m->u.shmctl_reply.ds);
    encode_info(&w, &m->u.shmctl_reply.info);
    break;
  case B_RUN:
    encode_run(&w, &m->u.run);
    break;
  case B_RANGE:
    wr_u32(&w, (uint32_t)m->u.range.shmid);
    wr_u32(&w, m->u.range.first);
    wr_u32(&w, m->u.range.count);
    wr_u32(&w, m->u.range.mode);
    break;
  case B_PING:
    wr_u64(&w, m->u.ping.cookie);
    break;
  case B_CHALLENGE:
    wr_u32(&w, m->u.challenge.alg);
    wr_bytes(&w, m->u.challenge.nonce, PROTO_NONCE_SIZE);
    break;
  case B_AUTH:
    wr_bytes(&w, m->u.auth.nonce, PROTO_NONCE_SIZE);
    wr_bytes(&w, m->u.auth.mac, PROTO_MAC_SIZE);
    break;
  case B_AUTH_REPLY:
    wr_bytes(&w, m->u.auth_reply.mac, PROTO_MAC_SIZE);
    break;
  case B_NODE:
    wr_bytes(&w, m->u.node.id, PROTO_NODE_ID);
    wr_u32(&w, m->u.node.flags);
    break;
  case B_NODE_REPLY:
    wr_bytes(&w, m->u.node_reply.instance, PROTO_NODE_ID);
    break;
  case B_REATTACH:
    wr_cred(&w, &m->u.reattach.cred);
    wr_u32(&w, (uint32_t)m->u.reattach.shmid);
    wr_u32(&w, m->u.reattach.nrw);
    wr_u32(&w, m->u.reattach.nro);
    break;
  case B_INHERIT:
    wr_cred(&w, &m->u.inherit.cred);
    wr_u32(&w, (uint32_t)m->u.inherit.shmid);
    wr_u32(&w, m->u.inherit.nrw);
    wr_u32(&w, m->u.inherit.nro);
    wr_u32(&w, m->u.inherit.child);
    break;
  case B_SEMGET:
    wr_cred(&w, &m->u.semget.cred);
    wr_u32(&w, (uint32_t)m->u.semget.key);
    wr_u32(&w, (uint32_t)m->u.semget.nsems);
    wr_u32(&w, (uint32_t)m->u.semget.semflg);
    break;
  case B_SEMGET_REPLY:
    wr_u32(&w, (uint32_t)m->u.semget_reply.semid);
    break;
  case B_SEMCTL:
    wr_cred(&w, &m->u.semctl.cred);
    wr_u32(&w, (uint32_t)m->u.semctl.semid);
    wr_u32(&w, (uint32_t)m->u.semctl.semnum);
    wr_u32(&w, (uint32_t)m->u.semctl.cmd);
    wr_u32(&w, (uint32_t)m->u.semctl.val);
    wr_u32(&w, m->u.semctl.uid);
    wr_u32(&w, m->u.semctl.gid);
    wr_u32(&w, m->u.semctl.mode);
    wr_u32(&w, m->u.semctl.nvals);
    if (m->u.semctl.nvals)
      wr_bytes(&w, m->u.semctl.vals, 2 * (size_t)m->u.semctl.nvals);
    break;
  case B_SEMCTL_REPLY:
    wr_u32(&w, (uint32_t)m->u.semctl_reply.ret);
    encode_semds(&w, &m->u.semctl_reply.ds);
    encode_seminfo(&w, &m->u.semctl_reply.info);
    wr_u32(&w, m->u.semctl_reply.nvals);
    if (m->u.semctl_reply.nvals)
      wr_bytes(&w, m->u.semctl_reply.vals, 2 * (size_t)m->u.semctl_reply.nvals);
    break;
  case B_SEMOP:
    wr_cred(&w, &m->u.semop.cred);
    wr_u32(&w, (uint32_t)m->u.semop.semid);
    wr_u32(&w, m->u.semop.flags);
    wr_u64(&w, (uint64_t)m->u.semop.tv_sec);
    wr_u64(&w, (uint64_t)m->u.semop.tv_nsec);
    wr_u32(&w, m->u.semop.nsops);
    wr_bytes(&w, m->u.semop.sops, PROTO_SEMOP_SIZE * (size_t)m->u.semop.nsops);
    break;
  case B_SEM_CANCEL:
    wr_u32(&w, m->u.sem_cancel.reqid);
    break;
  case B_PROC_EXIT:
    wr_u32(&w, m->u.proc_exit.pid);
    break;
  case B_OWNER:
    wr_u64(&w, m->u.owner.tag);
    wr_u32(&w, m->u.owner.pid);
    wr_u32(&w, m->u.owner.tid);
    wr_u32(&w, m->u.owner.alive);
    break;
  case B_SEGINFO:
    wr_cred(&w, &m->u.seginfo.cred);
    wr_u32(&w, (uint32_t)m->u.seginfo.shmid);
    wr_u32(&w, m->u.seginfo.what);
    wr_u32(&w, m->u.seginfo.first);
    wr_u64(&w, m->u.seginfo.tag);
    break;
  case B_SEGINFO_REPLY:
    wr_u32(&w, m->u.seginfo_reply.what);
    wr_u32(&w, m->u.seginfo_reply.total);
    wr_u32(&w, m->u.seginfo_reply.next);
    wr_u32(&w, m->u.seginfo_reply.n);
    if (m->u.seginfo_reply.n)
      wr_bytes(&w, m->u.seginfo_reply.entries,
               m->u.seginfo_reply.n * proto_seginfo_entry_size(m->u.seginfo_reply.what));
    break;
  }
  return size;
}

size_t proto_encode_status(uint8_t *buf, uint8_t opcode, uint32_t reqid, int32_t status) {
  struct proto_hdr h = {
    .opcode = opcode, .flags = PROTO_F_REPLY, .reqid = reqid, .status = status, .length = 0,
  };
  write_hdr(buf, &h);
  return PROTO_HDR_SIZE;
}
