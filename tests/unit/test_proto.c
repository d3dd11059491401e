/* test_proto.c - every message round-trips; every malformed frame is rejected in bounds. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "rxbuf.h"

static uint8_t frame[PROTO_MAX_FRAME];

/* Decodes a frame from a heap copy of exactly its size, so the sanitizer build catches
 * any read past what the decoder was given. The copy stays alive until the next call so
 * decoded data pointers remain usable. Returns proto_frame's or proto_decode's error,
 * -EAGAIN for "need more" and -E2BIG when the header announces a different size. */
static uint8_t *held;

static int decode_exact(const uint8_t *buf, size_t len, struct proto_msg *out) {
  ssize_t n;

  free(held);
  held = malloc(len ? len : 1);
  ck_assert_ptr_nonnull(held);
  memcpy(held, buf, len);
  n = proto_frame(held, len, &out->h);
  if (n < 0)
    return (int)n;
  if (n == 0)
    return -EAGAIN;
  if ((size_t)n != len)
    return -E2BIG;
  return proto_decode(out, held + PROTO_HDR_SIZE, len - PROTO_HDR_SIZE);
}

static size_t encode_ok(struct proto_msg *m) {
  ssize_t n = proto_encode(frame, sizeof frame, m);
  ck_assert_int_gt(n, 0);
  ck_assert_int_eq(n, proto_encoded_size(m));
  return (size_t)n;
}

static struct proto_msg msg(uint8_t op, uint16_t flags) {
  struct proto_msg m;
  memset(&m, 0, sizeof m);
  m.h.opcode = op;
  m.h.flags = flags;
  m.h.reqid = 0xA1B2C3D4u;
  return m;
}

START_TEST(test_byte_order) {
  uint8_t b[8];
  proto_put_u32(b, 0x01020304u);
  ck_assert_int_eq(b[0], 1);
  ck_assert_int_eq(b[3], 4);
  proto_put_u64(b, 0x0102030405060708ull);
  ck_assert_int_eq(b[0], 1);
  ck_assert_int_eq(b[7], 8);
  ck_assert_uint_eq(proto_get_u64(b), 0x0102030405060708ull);
  proto_put_u16(b, 0xBEEF);
  ck_assert_uint_eq(proto_get_u16(b), 0xBEEF);
}
END_TEST

START_TEST(test_hello_roundtrip) {
  struct proto_msg m = msg(PROTO_OP_HELLO, 0), d;
  size_t n;
  m.u.hello.pid = 1234;
  m.u.hello.uid = 1000;
  m.u.hello.gid = 100;
  m.u.hello.ngroups = 3;
  m.u.hello.groups[0] = 4;
  m.u.hello.groups[1] = 27;
  m.u.hello.groups[2] = 0xFFFFFFFEu;
  m.u.hello.name_len = 5;
  memcpy(m.u.hello.name, "hostA", 5);
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 20 + 12 + 5);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.h.reqid, 0xA1B2C3D4u);
  ck_assert_uint_eq(d.u.hello.pid, 1234);
  ck_assert_uint_eq(d.u.hello.uid, 1000);
  ck_assert_uint_eq(d.u.hello.gid, 100);
  ck_assert_uint_eq(d.u.hello.ngroups, 3);
  ck_assert_uint_eq(d.u.hello.groups[2], 0xFFFFFFFEu);
  ck_assert_str_eq(d.u.hello.name, "hostA");

  m = msg(PROTO_OP_HELLO, PROTO_F_REPLY);
  m.u.hello_reply.node = 7;
  m.u.hello_reply.page_size = PROTO_PAGE_SIZE;
  m.u.hello_reply.max_run = PROTO_MAX_RUN;
  n = encode_ok(&m);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.hello_reply.node, 7);
  ck_assert_uint_eq(d.u.hello_reply.page_size, PROTO_PAGE_SIZE);
  ck_assert_uint_eq(d.u.hello_reply.max_run, PROTO_MAX_RUN);
}
END_TEST

START_TEST(test_groups_roundtrip) {
  struct proto_msg m = msg(PROTO_OP_GROUPS, 0), d;
  uint8_t bad[PROTO_HDR_SIZE + 8];
  size_t n;

  m.u.groups.ngroups = 2;
  m.u.groups.groups[0] = 5000;
  m.u.groups.groups[1] = 0xFFFFFFFEu;
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 4 + 8);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.groups.ngroups, 2);
  ck_assert_uint_eq(d.u.groups.groups[0], 5000);
  ck_assert_uint_eq(d.u.groups.groups[1], 0xFFFFFFFEu);
  /* None at all is fine. */
  m.u.groups.ngroups = 0;
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 4);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.groups.ngroups, 0);
  /* Too many to encode; a count past the cap or past the payload does not decode. */
  m.u.groups.ngroups = PROTO_MAX_GROUPS + 1;
  ck_assert_int_eq(proto_encode(frame, sizeof frame, &m), -EINVAL);
  m.u.groups.ngroups = 1;
  n = encode_ok(&m);
  memcpy(bad, frame, n);
  proto_put_u32(bad + PROTO_HDR_SIZE, PROTO_MAX_GROUPS + 1);
  ck_assert_int_eq(decode_exact(bad, n, &d), -EBADMSG);
  proto_put_u32(bad + PROTO_HDR_SIZE, 2);
  ck_assert_int_eq(decode_exact(bad, n, &d), -EBADMSG);
  /* The reply is empty. */
  m = msg(PROTO_OP_GROUPS, PROTO_F_REPLY);
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
}
END_TEST

START_TEST(test_sysv_roundtrip) {
  struct proto_msg m, d;
  struct proto_cred cred = {42, 1001, 1002};
  size_t n;

  m = msg(PROTO_OP_CREATE_SEGMENT, 0);
  m.u.create.cred = cred;
  m.u.create.key = -5;
  m.u.create.size = 0x123456789ull;
  m.u.create.shmflg = 01000 | 0640;
  m.u.create.huge_err = PROTO_EPERM;
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 32);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.create.huge_err, PROTO_EPERM);
  ck_assert_uint_eq(d.u.create.cred.pid, 42);
  ck_assert_uint_eq(d.u.create.cred.uid, 1001);
  ck_assert_uint_eq(d.u.create.cred.gid, 1002);
  ck_assert_int_eq(d.u.create.key, -5);
  ck_assert_uint_eq(d.u.create.size, 0x123456789ull);
  ck_assert_int_eq(d.u.create.shmflg, 01000 | 0640);

  m = msg(PROTO_OP_CREATE_SEGMENT, PROTO_F_REPLY);
  m.u.create_reply.shmid = 98304;
  n = encode_ok(&m);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_int_eq(d.u.create_reply.shmid, 98304);

  m = msg(PROTO_OP_ATTACH_SEGMENT, 0);
  m.u.attach.cred = cred;
  m.u.attach.shmid = 7;
  m.u.attach.shmflg = 010000;
  n = encode_ok(&m);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_int_eq(d.u.attach.shmid, 7);
  ck_assert_int_eq(d.u.attach.shmflg, 010000);

  m = msg(PROTO_OP_ATTACH_SEGMENT, PROTO_F_REPLY);
  m.u.attach_reply.shmid = 7;
  m.u.attach_reply.segsz = 1ull << 40;
  n = encode_ok(&m);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.attach_reply.segsz, 1ull << 40);

  for (uint8_t op = PROTO_OP_DETACH_SEGMENT; op <= PROTO_OP_REMOVE_SEGMENT; op++) {
    m = msg(op, 0);
    m.u.segref.cred = cred;
    m.u.segref.shmid = 99;
    n = encode_ok(&m);
    ck_assert_int_eq(decode_exact(frame, n, &d), 0);
    ck_assert_int_eq(d.u.segref.shmid, 99);
    ck_assert_uint_eq(d.u.segref.cred.uid, 1001);
    m = msg(op, PROTO_F_REPLY);
    n = encode_ok(&m);
    ck_assert_uint_eq(n, PROTO_HDR_SIZE);
    ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  }
}
END_TEST

START_TEST(test_shmctl_roundtrip) {
  struct proto_msg m = msg(PROTO_OP_SHMCTL, 0), d;
  size_t n;

  m.u.shmctl.cred.uid = 5;
  m.u.shmctl.shmid = 3;
  m.u.shmctl.cmd = 1;
  m.u.shmctl.uid = 10;
  m.u.shmctl.gid = 11;
  m.u.shmctl.mode = 0600;
  m.u.shmctl.memlock = PROTO_MEMLOCK_INFINITY - 1;
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 40);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.shmctl.memlock, PROTO_MEMLOCK_INFINITY - 1);
  ck_assert_int_eq(d.u.shmctl.cmd, 1);
  ck_assert_uint_eq(d.u.shmctl.mode, 0600);
  ck_assert_uint_eq(d.u.shmctl.gid, 11);

  m = msg(PROTO_OP_SHMCTL, PROTO_F_REPLY);
  m.u.shmctl_reply.ret = 0;
  m.u.shmctl_reply.ds = (struct proto_ds){
    .key = 0x1234, .uid = 1, .gid = 2, .cuid = 3, .cgid = 4, .mode = 01600, .seq = 9,
    .segsz = 4097, .atime = -1, .dtime = 1700000000, .ctime = 1800000000, .cpid = 77,
    .lpid = 78, .nattch = 3,
  };
  m.u.shmctl_reply.info = (struct proto_info){1, 2, 3, 4, 5, 6, 7, 8, 9};
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 152);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_int_eq(d.u.shmctl_reply.ds.key, 0x1234);
  ck_assert_uint_eq(d.u.shmctl_reply.ds.mode, 01600);
  ck_assert_uint_eq(d.u.shmctl_reply.ds.segsz, 4097);
  ck_assert_int_eq(d.u.shmctl_reply.ds.atime, -1);
  ck_assert_int_eq(d.u.shmctl_reply.ds.ctime, 1800000000);
  ck_assert_uint_eq(d.u.shmctl_reply.ds.lpid, 78);
  ck_assert_uint_eq(d.u.shmctl_reply.ds.nattch, 3);
  ck_assert_uint_eq(d.u.shmctl_reply.info.shmmax, 1);
  ck_assert_uint_eq(d.u.shmctl_reply.info.shm_swp, 9);
}
END_TEST

static uint8_t pages[3][PROTO_PAGE_SIZE];

static struct proto_msg run_msg(uint8_t op, uint16_t flags) {
  struct proto_msg m = msg(op, flags);
  m.u.run.shmid = 65536;
  m.u.run.first = 10;
  m.u.run.count = 3;
  m.u.run.mode = PROTO_MODE_SHARED;
  for (int i = 0; i < 3; i++) {
    memset(pages[i], 'a' + i, sizeof pages[i]);
    m.u.run.page[i].version = 100 + (uint64_t)i;
  }
  /* Pages 0 and 2 carry data, page 1 is "unchanged". */
  m.u.run.page[0].flags = PROTO_PAGE_DATA;
  m.u.run.page[0].data = pages[0];
  m.u.run.page[2].flags = PROTO_PAGE_DATA;
  m.u.run.page[2].data = pages[2];
  return m;
}

START_TEST(test_run_roundtrip) {
  static const uint8_t ops[] = {PROTO_OP_READ_DATA, PROTO_OP_ACQUIRE, PROTO_OP_WRITE_DATA,
                                PROTO_OP_RECALL_ACK};
  for (size_t k = 0; k < sizeof ops; k++) {
    uint16_t fl = (ops[k] == PROTO_OP_READ_DATA || ops[k] == PROTO_OP_ACQUIRE) ? PROTO_F_REPLY : 0;
    struct proto_msg m = run_msg(ops[k], fl), d;
    size_t n = encode_ok(&m);
    ck_assert_uint_eq(n, PROTO_HDR_SIZE + 16 + 3 * 16 + 2 * PROTO_PAGE_SIZE);
    /* Decode in place here so data pointers can be compared against the frame. */
    ck_assert_int_eq(proto_frame(frame, n, &d.h), (ssize_t)n);
    ck_assert_int_eq(proto_decode(&d, frame + PROTO_HDR_SIZE, n - PROTO_HDR_SIZE), 0);
    ck_assert_int_eq(d.u.run.shmid, 65536);
    ck_assert_uint_eq(d.u.run.first, 10);
    ck_assert_uint_eq(d.u.run.count, 3);
    ck_assert_uint_eq(d.u.run.mode, PROTO_MODE_SHARED);
    ck_assert_uint_eq(d.u.run.page[1].version, 101);
    ck_assert_ptr_null(d.u.run.page[1].data);
    ck_assert_ptr_nonnull(d.u.run.page[0].data);
    ck_assert_ptr_nonnull(d.u.run.page[2].data);
    ck_assert(d.u.run.page[0].data >= frame && d.u.run.page[2].data + PROTO_PAGE_SIZE <= frame + n);
    ck_assert_int_eq(memcmp(d.u.run.page[0].data, pages[0], PROTO_PAGE_SIZE), 0);
    ck_assert_int_eq(memcmp(d.u.run.page[2].data, pages[2], PROTO_PAGE_SIZE), 0);
    ck_assert_int_eq(decode_exact(frame, n, &d), 0);
    ck_assert_int_eq(memcmp(d.u.run.page[2].data, pages[2], PROTO_PAGE_SIZE), 0);
  }
}
END_TEST

START_TEST(test_run_max) {
  static uint8_t page[PROTO_PAGE_SIZE];
  struct proto_msg m = msg(PROTO_OP_RECALL_ACK, 0), d;
  size_t n;

  m.u.run.first = UINT32_MAX - PROTO_MAX_RUN;
  m.u.run.count = PROTO_MAX_RUN;
  m.u.run.mode = PROTO_MODE_INVALID;
  for (uint32_t i = 0; i < PROTO_MAX_RUN; i++) {
    m.u.run.page[i].flags = PROTO_PAGE_DATA;
    m.u.run.page[i].data = page;
  }
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_MAX_FRAME);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.run.count, PROTO_MAX_RUN);

  m.u.run.count = PROTO_MAX_RUN + 1;
  ck_assert_int_eq(proto_encode(frame, sizeof frame, &m), -EINVAL);
  m.u.run.count = PROTO_MAX_RUN;
  m.u.run.first = UINT32_MAX - PROTO_MAX_RUN + 1; /* first + count overflows */
  ck_assert_int_eq(proto_encode(frame, sizeof frame, &m), -EINVAL);
  m.u.run.first = 0;
  m.u.run.page[5].data = NULL; /* DATA without data */
  ck_assert_int_eq(proto_encode(frame, sizeof frame, &m), -EINVAL);
  m.u.run.page[5].data = page;
  ck_assert_int_eq(proto_encode(frame, 100, &m), -ENOBUFS);
}
END_TEST

START_TEST(test_range_ping_roundtrip) {
  static const uint8_t ops[] = {PROTO_OP_INVALIDATE, PROTO_OP_INVALIDATE_ACK, PROTO_OP_RECALL};
  struct proto_msg m, d;
  size_t n;
  for (size_t k = 0; k < sizeof ops; k++) {
    m = msg(ops[k], 0);
    m.u.range = (struct proto_range){.shmid = -1, .first = 5, .count = 2, .mode = 1};
    n = encode_ok(&m);
    ck_assert_int_eq(decode_exact(frame, n, &d), 0);
    ck_assert_int_eq(d.h.opcode, ops[k]);
    ck_assert_int_eq(d.u.range.shmid, -1);
    ck_assert_uint_eq(d.u.range.first, 5);
    ck_assert_uint_eq(d.u.range.count, 2);
    ck_assert_uint_eq(d.u.range.mode, 1);
  }
  m = msg(PROTO_OP_PING, PROTO_F_REPLY);
  m.u.ping.cookie = 0xDEADBEEFCAFEull;
  n = encode_ok(&m);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.ping.cookie, 0xDEADBEEFCAFEull);
}
END_TEST

START_TEST(test_error_reply) {
  struct proto_msg d;
  size_t n = proto_encode_status(frame, PROTO_OP_SHMCTL, 77, PROTO_EACCES);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.h.reqid, 77);
  ck_assert_int_eq(d.h.status, PROTO_EACCES);
  ck_assert_int_eq(proto_err_to_errno(d.h.status), EACCES);
  /* A failed reply with a payload is malformed. */
  proto_put_u32(frame + 16, 4);
  ck_assert_int_eq(decode_exact(frame, n + 4, &d), -EBADMSG);
}
END_TEST

START_TEST(test_errno_map) {
  static const int errs[] = {EPERM, ENOENT, EIO, ENOMEM, EACCES, EFAULT, EEXIST, EINVAL,
                             ENOSPC, EIDRM, EOVERFLOW, EPROTO, ENOSYS, EBUSY, EAGAIN,
                             ENFILE, EMFILE, E2BIG, ERANGE, ETIMEDOUT, EBADMSG};
  for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
    int code = proto_err_from_errno(errs[i]);
    ck_assert_int_ne(code, 0);
    ck_assert_int_eq(proto_err_to_errno(code), errs[i]);
    ck_assert_int_eq(proto_err_from_errno(-errs[i]), code);
  }
  ck_assert_int_eq(proto_err_from_errno(0), PROTO_OK);
  ck_assert_int_eq(proto_err_from_errno(EXDEV), PROTO_EIO);
  ck_assert_int_eq(proto_err_to_errno(9999), EIO);
  ck_assert_int_eq(proto_err_to_errno(-3), EIO);
  ck_assert_str_eq(proto_op_name(PROTO_OP_RECALL_ACK), "RECALL_ACK");
  ck_assert_str_eq(proto_op_name(PROTO_OP_INHERIT), "INHERIT");
  ck_assert_int_eq(PROTO_OP_INHERIT, 20);
  ck_assert_str_eq(proto_op_name(PROTO_OP_MAX_), "?");
  ck_assert_str_eq(proto_op_name(0), "?");
  ck_assert_str_eq(proto_op_name(200), "?");
}
END_TEST

/* A valid small frame to damage. */
static size_t attach_frame(void) {
  struct proto_msg m = msg(PROTO_OP_ATTACH_SEGMENT, 0);
  m.u.attach.shmid = 1;
  return encode_ok(&m);
}

START_TEST(test_frame_truncated) {
  struct proto_msg d;
  size_t n = attach_frame();
  for (size_t len = 0; len < n; len++) {
    ck_assert_int_eq(proto_frame(frame, len, &d.h), 0);
  }
  ck_assert_int_eq(proto_frame(frame, n, &d.h), (ssize_t)n);
  ck_assert_int_eq(proto_frame(frame, n + 10, &d.h), (ssize_t)n);
}
END_TEST

START_TEST(test_frame_bad_header) {
  struct proto_hdr h;
  size_t n = attach_frame();

  /* Version 8 (SEG_INFO) on the wire; a version 7 peer is refused at its first
   * frame. */
  ck_assert_uint_eq(PROTO_VERSION, 8);
  ck_assert_uint_eq(frame[4], 8);
  ck_assert_int_eq(proto_frame(frame, n, &h), (ssize_t)n);
  frame[4] = 7;
  ck_assert_int_eq(proto_frame(frame, n, &h), -EPROTONOSUPPORT);
  frame[4] = PROTO_VERSION;
  frame[0] ^= 0xFF;
  ck_assert_int_eq(proto_frame(frame, n, &h), -EBADMSG);
  frame[0] ^= 0xFF;
  frame[4] = PROTO_VERSION + 1;
  ck_assert_int_eq(proto_frame(frame, n, &h), -EPROTONOSUPPORT);
  frame[4] = PROTO_VERSION - 1; /* an older peer: refused too */
  ck_assert_int_eq(proto_frame(frame, n, &h), -EPROTONOSUPPORT);
  frame[4] = PROTO_VERSION;
  frame[5] = 0;
  ck_assert_int_eq(proto_frame(frame, n, &h), -EOPNOTSUPP);
  frame[5] = PROTO_OP_MAX_;
  ck_assert_int_eq(proto_frame(frame, n, &h), -EOPNOTSUPP);
  frame[5] = 255;
  ck_assert_int_eq(proto_frame(frame, n, &h), -EOPNOTSUPP);
  frame[5] = PROTO_OP_ATTACH_SEGMENT;
  proto_put_u16(frame + 6, 0x8000);
  ck_assert_int_eq(proto_frame(frame, n, &h), -EBADMSG);
  proto_put_u16(frame + 6, 0);
  /* Oversized lengths are refused from the header alone, before any payload arrives. */
  proto_put_u32(frame + 16, PROTO_SMALL_MAX + 1);
  ck_assert_int_eq(proto_frame(frame, PROTO_HDR_SIZE, &h), -EMSGSIZE);
  proto_put_u32(frame + 16, UINT32_MAX);
  ck_assert_int_eq(proto_frame(frame, PROTO_HDR_SIZE, &h), -EMSGSIZE);
  frame[5] = PROTO_OP_READ_DATA;
  proto_put_u32(frame + 16, PROTO_RUN_MAX_PAYLOAD + 1);
  ck_assert_int_eq(proto_frame(frame, PROTO_HDR_SIZE, &h), -EMSGSIZE);
  proto_put_u32(frame + 16, PROTO_RUN_MAX_PAYLOAD);
  ck_assert_int_eq(proto_frame(frame, PROTO_HDR_SIZE, &h), 0);
}
END_TEST

START_TEST(test_payload_wrong_size) {
  struct proto_msg d;
  size_t n = attach_frame();
  /* One byte short and one byte long, with the header length telling the truth. */
  proto_put_u32(frame + 16, (uint32_t)(n - PROTO_HDR_SIZE - 1));
  ck_assert_int_eq(decode_exact(frame, n - 1, &d), -EBADMSG);
  n = attach_frame();
  frame[n] = 0;
  proto_put_u32(frame + 16, (uint32_t)(n - PROTO_HDR_SIZE + 1));
  ck_assert_int_eq(decode_exact(frame, n + 1, &d), -EBADMSG);
  /* Header length disagreeing with the bytes handed to proto_decode. */
  n = attach_frame();
  ck_assert_int_eq(proto_frame(frame, n, &d.h), (ssize_t)n);
  ck_assert_int_eq(proto_decode(&d, frame + PROTO_HDR_SIZE, n - PROTO_HDR_SIZE - 4), -EBADMSG);
}
END_TEST

START_TEST(test_run_malformed) {
  struct proto_msg m = run_msg(PROTO_OP_WRITE_DATA, 0), d;
  size_t n = encode_ok(&m);
  uint8_t *p = frame + PROTO_HDR_SIZE;

  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  /* count 0, count above the cap, count pointing past the payload */
  proto_put_u32(p + 8, 0);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 8, PROTO_MAX_RUN + 1);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 8, 4);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 8, 200);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 8, 3);
  /* first + count overflowing */
  proto_put_u32(p + 4, UINT32_MAX - 1);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 4, 10);
  /* bad mode */
  proto_put_u32(p + 12, 3);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 12, PROTO_MODE_SHARED);
  /* a DATA flag more than the data blocks present */
  proto_put_u32(p + 16 + 16 + 8, PROTO_PAGE_DATA);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 16 + 16 + 8, 0);
  /* a DATA flag fewer */
  proto_put_u32(p + 16 + 8, 0);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 16 + 8, PROTO_PAGE_DATA);
  /* unknown page flags, non-zero reserved word */
  proto_put_u32(p + 16 + 8, PROTO_PAGE_DATA | 0x10);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 16 + 8, PROTO_PAGE_DATA);
  proto_put_u32(p + 16 + 12, 1);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 16 + 12, 0);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  /* a payload cut inside the page entries */
  proto_put_u32(frame + 16, 20);
  ck_assert_int_eq(decode_exact(frame, PROTO_HDR_SIZE + 20, &d), -EBADMSG);
}
END_TEST

START_TEST(test_hello_malformed) {
  struct proto_msg m = msg(PROTO_OP_HELLO, 0), d;
  uint8_t *p = frame + PROTO_HDR_SIZE;
  size_t n;

  m.u.hello.ngroups = 1;
  m.u.hello.name_len = 2;
  memcpy(m.u.hello.name, "ab", 2);
  n = encode_ok(&m);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  proto_put_u32(p + 12, PROTO_MAX_GROUPS + 1);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 12, 50); /* groups run past the payload */
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 12, 1);
  proto_put_u32(p + 20, PROTO_MAX_NAME + 1);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 20, 3); /* name past the payload */
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 20, 1); /* name shorter than the payload */
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);

  m.u.hello.ngroups = PROTO_MAX_GROUPS + 1;
  ck_assert_int_eq(proto_encode(frame, sizeof frame, &m), -EINVAL);
}
END_TEST

START_TEST(test_range_malformed) {
  struct proto_msg m = msg(PROTO_OP_RECALL, 0), d;
  uint8_t *p = frame + PROTO_HDR_SIZE;
  size_t n;

  m.u.range = (struct proto_range){.shmid = 1, .first = 0, .count = 1, .mode = 0};
  n = encode_ok(&m);
  proto_put_u32(p + 8, 0);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 8, PROTO_MAX_RUN + 1);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(p + 8, 1);
  proto_put_u32(p + 12, 7);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
}
END_TEST

/* Random damage to valid frames: whatever the bytes, the decoder answers in bounds
 * (the sanitizer build turns any overread into a failure) and a frame it accepts
 * re-encodes to the same bytes. */
START_TEST(test_random_damage) {
  static uint8_t again[PROTO_MAX_FRAME];
  unsigned seed = 12345;
  int accepted = 0, rejected = 0;

  for (int iter = 0; iter < 20000; iter++) {
    struct proto_msg m = run_msg(iter % 2 ? PROTO_OP_RECALL_ACK : PROTO_OP_READ_DATA,
                                 iter % 2 ? 0 : PROTO_F_REPLY), d;
    size_t n = encode_ok(&m);
    int flips = 1 + (int)(rand_r(&seed) % 4);
    for (int k = 0; k < flips; k++) {
      size_t at = (size_t)rand_r(&seed) % (PROTO_HDR_SIZE + 16 + 48);
      frame[at] ^= (uint8_t)(1u << (rand_r(&seed) % 8));
    }
    size_t len = (rand_r(&seed) % 4) == 0 ? (size_t)rand_r(&seed) % n : n;
    int rc = decode_exact(frame, len, &d);
    if (rc == 0) {
      ssize_t e = proto_encode(again, sizeof again, &d);
      ck_assert_int_eq(e, (ssize_t)len);
      ck_assert_int_eq(memcmp(again, frame, len), 0);
      accepted++;
    } else {
      rejected++;
    }
  }
  ck_assert_int_gt(rejected, 0);
  ck_assert_int_gt(accepted, 0);
}
END_TEST


START_TEST(test_auth_roundtrip) {
  struct proto_msg m = msg(PROTO_OP_CHALLENGE, 0), d;
  uint8_t bad[PROTO_HDR_SIZE + 128];
  size_t n, i;

  m.u.challenge.alg = PROTO_AUTH_ALG;
  for (i = 0; i < PROTO_NONCE_SIZE; i++)
    m.u.challenge.nonce[i] = (uint8_t)(i * 7 + 1);
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 4 + PROTO_NONCE_SIZE);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.challenge.alg, PROTO_AUTH_ALG);
  ck_assert_mem_eq(d.u.challenge.nonce, m.u.challenge.nonce, PROTO_NONCE_SIZE);
  /* One byte short or long: rejected. */
  memcpy(bad, frame, n);
  proto_put_u32(bad + 16, (uint32_t)(n - PROTO_HDR_SIZE - 1));
  ck_assert_int_eq(decode_exact(bad, n - 1, &d), -EBADMSG);
  bad[n] = 0;
  proto_put_u32(bad + 16, (uint32_t)(n - PROTO_HDR_SIZE + 1));
  ck_assert_int_eq(decode_exact(bad, n + 1, &d), -EBADMSG);

  m = msg(PROTO_OP_AUTH, 0);
  for (i = 0; i < PROTO_NONCE_SIZE; i++)
    m.u.auth.nonce[i] = (uint8_t)(0xF0 ^ i);
  for (i = 0; i < PROTO_MAC_SIZE; i++)
    m.u.auth.mac[i] = (uint8_t)(i + 100);
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + PROTO_NONCE_SIZE + PROTO_MAC_SIZE);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_mem_eq(d.u.auth.nonce, m.u.auth.nonce, PROTO_NONCE_SIZE);
  ck_assert_mem_eq(d.u.auth.mac, m.u.auth.mac, PROTO_MAC_SIZE);
  memcpy(bad, frame, n);
  proto_put_u32(bad + 16, (uint32_t)(n - PROTO_HDR_SIZE - 1));
  ck_assert_int_eq(decode_exact(bad, n - 1, &d), -EBADMSG);

  m = msg(PROTO_OP_AUTH, PROTO_F_REPLY);
  for (i = 0; i < PROTO_MAC_SIZE; i++)
    m.u.auth_reply.mac[i] = (uint8_t)(255 - i);
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + PROTO_MAC_SIZE);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_mem_eq(d.u.auth_reply.mac, m.u.auth_reply.mac, PROTO_MAC_SIZE);
  /* A refused AUTH is a bare EACCES reply. */
  n = proto_encode_status(frame, PROTO_OP_AUTH, 9, PROTO_EACCES);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_int_eq(proto_err_to_errno(d.h.status), EACCES);
  /* An empty AUTH request does not decode. */
  m = msg(PROTO_OP_AUTH, 0);
  n = encode_ok(&m);
  memcpy(bad, frame, PROTO_HDR_SIZE);
  proto_put_u32(bad + 16, 0);
  ck_assert_int_eq(decode_exact(bad, PROTO_HDR_SIZE, &d), -EBADMSG);
  ck_assert_str_eq(proto_op_name(PROTO_OP_CHALLENGE), "CHALLENGE");
  ck_assert_str_eq(proto_op_name(PROTO_OP_AUTH), "AUTH");
}
END_TEST

/* NODE (18) and REATTACH (19): round trips, replies, and every malformed form. */
START_TEST(test_node_reattach) {
  struct proto_msg m = msg(PROTO_OP_NODE, 0), d;
  uint8_t bad[PROTO_HDR_SIZE + 64];
  size_t n;
  int i;

  for (i = 0; i < (int)PROTO_NODE_ID; i++)
    m.u.node.id[i] = (uint8_t)(0xF0 + i);
  m.u.node.flags = PROTO_NODE_RESUMED;
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 20);
  ck_assert_uint_eq(frame[PROTO_HDR_SIZE], 0xF0); /* the id first, as bytes */
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_mem_eq(d.u.node.id, m.u.node.id, PROTO_NODE_ID);
  ck_assert_uint_eq(d.u.node.flags, PROTO_NODE_RESUMED);
  /* Unknown flag bits: not encoded, not decoded. */
  m.u.node.flags = 2;
  ck_assert_int_eq(proto_encode(frame, sizeof frame, &m), -EINVAL);
  m.u.node.flags = 0;
  n = encode_ok(&m);
  memcpy(bad, frame, n);
  proto_put_u32(bad + PROTO_HDR_SIZE + 16, 0x80000000u);
  ck_assert_int_eq(decode_exact(bad, n, &d), -EBADMSG);
  /* Short payload. */
  proto_put_u32(bad + 16, 19);
  ck_assert_int_eq(decode_exact(bad, n - 1, &d), -EBADMSG);
  /* The reply: the instance id. */
  m = msg(PROTO_OP_NODE, PROTO_F_REPLY);
  memset(m.u.node_reply.instance, 0x5C, PROTO_NODE_ID);
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 16);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.node_reply.instance[15], 0x5C);

  m = msg(PROTO_OP_REATTACH, 0);
  m.u.reattach.cred = (struct proto_cred){7, 1000, 100};
  m.u.reattach.shmid = 0x40008001;
  m.u.reattach.nrw = 2;
  m.u.reattach.nro = 1;
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 24);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.reattach.cred.uid, 1000);
  ck_assert_int_eq(d.u.reattach.shmid, 0x40008001);
  ck_assert_uint_eq(d.u.reattach.nrw, 2);
  ck_assert_uint_eq(d.u.reattach.nro, 1);
  /* Zero attachments, or more than the cap (also through a wrapping sum). */
  memcpy(bad, frame, n);
  proto_put_u32(bad + PROTO_HDR_SIZE + 16, 0);
  proto_put_u32(bad + PROTO_HDR_SIZE + 20, 0);
  ck_assert_int_eq(decode_exact(bad, n, &d), -EBADMSG);
  proto_put_u32(bad + PROTO_HDR_SIZE + 16, PROTO_MAX_REATTACH);
  proto_put_u32(bad + PROTO_HDR_SIZE + 20, 1);
  ck_assert_int_eq(decode_exact(bad, n, &d), -EBADMSG);
  proto_put_u32(bad + PROTO_HDR_SIZE + 16, 0xFFFFFFFFu);
  proto_put_u32(bad + PROTO_HDR_SIZE + 20, 2);
  ck_assert_int_eq(decode_exact(bad, n, &d), -EBADMSG);
  m.u.reattach.nrw = m.u.reattach.nro = 0;
  ck_assert_int_eq(proto_encode(frame, sizeof frame, &m), -EINVAL);
  /* The reply is an attach reply. */
  m = msg(PROTO_OP_REATTACH, PROTO_F_REPLY);
  m.u.attach_reply.shmid = 0x40008001;
  m.u.attach_reply.segsz = 12345;
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 12);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.attach_reply.segsz, 12345);
}
END_TEST

/* INHERIT (20): round trip, its empty reply, and every malformed form. */
START_TEST(test_inherit) {
  struct proto_msg m = msg(PROTO_OP_INHERIT, 0), d;
  uint8_t bad[PROTO_HDR_SIZE + 64];
  uint8_t *p = bad + PROTO_HDR_SIZE;
  size_t n;

  m.u.inherit.cred = (struct proto_cred){4242, 1000, 100};
  m.u.inherit.shmid = 0x40008001;
  m.u.inherit.nrw = 2;
  m.u.inherit.nro = 1;
  m.u.inherit.child = 0xFFFFFFFEu;
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE + 28);
  ck_assert_uint_eq(frame[5], 20);
  /* Field order on the wire: cred, shmid, nrw, nro, child. */
  ck_assert_uint_eq(proto_get_u32(frame + PROTO_HDR_SIZE), 4242);
  ck_assert_uint_eq(proto_get_u32(frame + PROTO_HDR_SIZE + 12), 0x40008001);
  ck_assert_uint_eq(proto_get_u32(frame + PROTO_HDR_SIZE + 16), 2);
  ck_assert_uint_eq(proto_get_u32(frame + PROTO_HDR_SIZE + 20), 1);
  ck_assert_uint_eq(proto_get_u32(frame + PROTO_HDR_SIZE + 24), 0xFFFFFFFEu);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.inherit.cred.pid, 4242);
  ck_assert_uint_eq(d.u.inherit.cred.uid, 1000);
  ck_assert_uint_eq(d.u.inherit.cred.gid, 100);
  ck_assert_int_eq(d.u.inherit.shmid, 0x40008001);
  ck_assert_uint_eq(d.u.inherit.nrw, 2);
  ck_assert_uint_eq(d.u.inherit.nro, 1);
  ck_assert_uint_eq(d.u.inherit.child, 0xFFFFFFFEu);
  /* The bounds of the counts: one attachment, and the cap split either way. */
  m.u.inherit.nrw = 0;
  m.u.inherit.nro = 1;
  n = encode_ok(&m);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  m.u.inherit.nrw = PROTO_MAX_REATTACH;
  m.u.inherit.nro = 0;
  n = encode_ok(&m);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_uint_eq(d.u.inherit.nrw, PROTO_MAX_REATTACH);
  m.u.inherit.nrw = 1;
  m.u.inherit.nro = PROTO_MAX_REATTACH - 1;
  n = encode_ok(&m);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  /* Counts out of range are not encoded... */
  m.u.inherit.nrw = m.u.inherit.nro = 0;
  ck_assert_int_eq(proto_encode(frame, sizeof frame, &m), -EINVAL);
  m.u.inherit.nrw = PROTO_MAX_REATTACH;
  m.u.inherit.nro = 1;
  ck_assert_int_eq(proto_encode(frame, sizeof frame, &m), -EINVAL);
  m.u.inherit.nrw = 0;
  m.u.inherit.nro = PROTO_MAX_REATTACH + 1;
  ck_assert_int_eq(proto_encode(frame, sizeof frame, &m), -EINVAL);
  /* ...nor decoded: zero, above the cap, and a sum that wraps 32 bits. */
  m.u.inherit.nrw = 2;
  m.u.inherit.nro = 1;
  n = encode_ok(&m);
  memcpy(bad, frame, n);
  proto_put_u32(p + 16, 0);
  proto_put_u32(p + 20, 0);
  ck_assert_int_eq(decode_exact(bad, n, &d), -EBADMSG);
  proto_put_u32(p + 16, PROTO_MAX_REATTACH);
  proto_put_u32(p + 20, 1);
  ck_assert_int_eq(decode_exact(bad, n, &d), -EBADMSG);
  proto_put_u32(p + 16, 0);
  proto_put_u32(p + 20, PROTO_MAX_REATTACH + 1);
  ck_assert_int_eq(decode_exact(bad, n, &d), -EBADMSG);
  proto_put_u32(p + 16, 0xFFFFFFFFu);
  proto_put_u32(p + 20, 2);
  ck_assert_int_eq(decode_exact(bad, n, &d), -EBADMSG);
  proto_put_u32(p + 16, 2);
  proto_put_u32(p + 20, 1);
  ck_assert_int_eq(decode_exact(bad, n, &d), 0);
  /* Exact length: one byte short, one byte long, REATTACH's 24 bytes, and none at all. */
  proto_put_u32(bad + 16, 27);
  ck_assert_int_eq(decode_exact(bad, n - 1, &d), -EBADMSG);
  bad[n] = 0;
  proto_put_u32(bad + 16, 29);
  ck_assert_int_eq(decode_exact(bad, n + 1, &d), -EBADMSG);
  proto_put_u32(bad + 16, 24);
  ck_assert_int_eq(decode_exact(bad, n - 4, &d), -EBADMSG);
  proto_put_u32(bad + 16, 0);
  ck_assert_int_eq(decode_exact(bad, PROTO_HDR_SIZE, &d), -EBADMSG);
  /* Above the small-message cap: refused from the header alone. */
  proto_put_u32(bad + 16, PROTO_SMALL_MAX + 1);
  ck_assert_int_eq(proto_frame(bad, PROTO_HDR_SIZE, &d.h), -EMSGSIZE);
  /* The reply is a bare status: empty on success, and a payload makes it malformed. */
  m = msg(PROTO_OP_INHERIT, PROTO_F_REPLY);
  n = encode_ok(&m);
  ck_assert_uint_eq(n, PROTO_HDR_SIZE);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_int_eq(d.h.status, 0);
  memcpy(bad, frame, n);
  proto_put_u32(bad + 16, 4);
  memset(bad + n, 0, 4);
  ck_assert_int_eq(decode_exact(bad, n + 4, &d), -EBADMSG);
  n = proto_encode_status(frame, PROTO_OP_INHERIT, 5, PROTO_EINVAL);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  ck_assert_int_eq(proto_err_to_errno(d.h.status), EINVAL);
}
END_TEST

/* The receive buffer's size follows what is pending: a frame announced as 1 MiB with 100
 * bytes sent pins 8 KiB (the base), not 1 MiB; it grows by doubling what arrived, reaches
 * exactly the frame's length, and goes back to the base once the frame is taken. */
/* The semaphore messages: every field and the variable parts (values, operations) at both
 * ends of their ranges. */
START_TEST(test_sem_roundtrip) {
  static uint8_t vals[2 * PROTO_SEMMSL_MAX];
  uint8_t sops[2 * PROTO_SEMOP_SIZE];
  struct proto_msg m = msg(PROTO_OP_SEMGET, 0), d;

  m.u.semget = (struct proto_semget){{7, 1000, 1001}, 0x1234, 17, 01600};
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
  ck_assert_int_eq(d.u.semget.cred.uid, 1000);
  ck_assert_int_eq(d.u.semget.key, 0x1234);
  ck_assert_int_eq(d.u.semget.nsems, 17);
  ck_assert_int_eq(d.u.semget.semflg, 01600);

  for (uint32_t i = 0; i < PROTO_SEMMSL_MAX; i++)
    proto_put_u16(vals + 2 * i, (uint16_t)(i * 7));
  m = msg(PROTO_OP_SEMCTL, 0);
  m.u.semctl = (struct proto_semctl){{7, 1, 2}, 1 << 30, 3, 17 /* SETALL */, -5, 10, 11,
                                     0600, PROTO_SEMMSL_MAX, vals};
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
  ck_assert_int_eq(d.u.semctl.semid, 1 << 30);
  ck_assert_int_eq(d.u.semctl.semnum, 3);
  ck_assert_int_eq(d.u.semctl.cmd, 17);
  ck_assert_int_eq(d.u.semctl.val, -5);
  ck_assert_uint_eq(d.u.semctl.mode, 0600);
  ck_assert_uint_eq(d.u.semctl.nvals, PROTO_SEMMSL_MAX);
  ck_assert_uint_eq(proto_get_u16(d.u.semctl.vals + 2 * 31999), (uint16_t)(31999 * 7));

  m = msg(PROTO_OP_SEMCTL, PROTO_F_REPLY);
  m.u.semctl_reply.ret = 9;
  m.u.semctl_reply.ds = (struct proto_semds){-1, 1, 2, 3, 4, 0640, 5, -6, 7, 8};
  m.u.semctl_reply.info.semmni = 32000;
  m.u.semctl_reply.info.semaem = 32767;
  m.u.semctl_reply.nvals = 2;
  m.u.semctl_reply.vals = vals;
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
  ck_assert_int_eq(d.u.semctl_reply.ret, 9);
  ck_assert_int_eq(d.u.semctl_reply.ds.key, -1);
  ck_assert_int_eq(d.u.semctl_reply.ds.otime, -6);
  ck_assert_uint_eq(d.u.semctl_reply.ds.nsems, 8);
  ck_assert_int_eq(d.u.semctl_reply.info.semmni, 32000);
  ck_assert_int_eq(d.u.semctl_reply.info.semaem, 32767);
  ck_assert_uint_eq(proto_get_u16(d.u.semctl_reply.vals + 2), 7);

  proto_put_u16(sops, 4);
  proto_put_u16(sops + 2, (uint16_t)-3);
  proto_put_u16(sops + 4, 0x1800);
  memcpy(sops + PROTO_SEMOP_SIZE, sops, PROTO_SEMOP_SIZE);
  m = msg(PROTO_OP_SEMOP, 0);
  m.u.semop = (struct proto_semop){{7, 1, 2}, 5, PROTO_SEMOP_TIMEOUT, 3, 999999999, 2, sops};
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
  ck_assert_uint_eq(d.u.semop.flags, PROTO_SEMOP_TIMEOUT);
  ck_assert_int_eq(d.u.semop.tv_sec, 3);
  ck_assert_int_eq(d.u.semop.tv_nsec, 999999999);
  ck_assert_uint_eq(d.u.semop.nsops, 2);
  ck_assert_int_eq((int16_t)proto_get_u16(d.u.semop.sops + PROTO_SEMOP_SIZE + 2), -3);

  m = msg(PROTO_OP_SEM_CANCEL, 0);
  m.u.sem_cancel.reqid = 77;
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
  ck_assert_uint_eq(d.u.sem_cancel.reqid, 77);
  m = msg(PROTO_OP_PROC_EXIT, 0);
  m.u.proc_exit.pid = 4242;
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
  ck_assert_uint_eq(d.u.proc_exit.pid, 4242);

  /* OWNER_ALIVE: the same body both ways; alive is 0 or 1, anything else is refused. */
  for (int reply = 0; reply < 2; reply++) {
    size_t on;
    m = msg(PROTO_OP_OWNER_ALIVE, reply ? PROTO_F_REPLY : 0);
    m.u.owner = (struct proto_owner){0x0123456789abcdefull, 4242, 4243, (uint32_t)reply};
    ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
    ck_assert_uint_eq(d.u.owner.tag, 0x0123456789abcdefull);
    ck_assert_uint_eq(d.u.owner.pid, 4242);
    ck_assert_uint_eq(d.u.owner.tid, 4243);
    ck_assert_uint_eq(d.u.owner.alive, (uint32_t)reply);
    m.u.owner.alive = 2;
    ck_assert_int_lt(proto_encoded_size(&m), 0);
    m.u.owner.alive = 1;
    on = encode_ok(&m);
    frame[on - 1] = 2; /* alive 2 on the wire */
    ck_assert_int_eq(decode_exact(frame, on, &d), -EBADMSG);
  }
}
END_TEST

/* SEG_INFO: the request, and replies of each kind entry by entry, the largest one included. */
START_TEST(test_seginfo_roundtrip) {
  static uint8_t e[PROTO_SEGINFO_MAX_ENTRIES * PROTO_SEGHOST_SIZE];
  struct proto_msg m = msg(PROTO_OP_SEG_INFO, 0), d;
  struct proto_seghost h;
  struct proto_segrun r;
  struct proto_segproc p;

  m.u.seginfo = (struct proto_seginfo){{7, 1, 2}, 0x40000005, PROTO_SEGINFO_PROCS, 9,
                                       0x0123456789abcdefull};
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
  ck_assert_int_eq(d.u.seginfo.shmid, 0x40000005);
  ck_assert_uint_eq(d.u.seginfo.what, PROTO_SEGINFO_PROCS);
  ck_assert_uint_eq(d.u.seginfo.first, 9);
  ck_assert_uint_eq(d.u.seginfo.tag, 0x0123456789abcdefull);
  ck_assert_uint_eq(d.u.seginfo.cred.uid, 1);

  /* 256 hosts, names up to the full 64 bytes: the largest payload there is. */
  for (uint32_t i = 0; i < PROTO_SEGINFO_MAX_ENTRIES; i++) {
    memset(&h, 0, sizeof h);
    h = (struct proto_seghost){.tag = 1000 + i, .node = i, .nrw = i, .nro = 2 * i};
    memset(h.name, 'a' + (int)(i % 26), i % (PROTO_MAX_NAME + 1));
    proto_seghost_put(e + (size_t)i * PROTO_SEGHOST_SIZE, &h);
  }
  m = msg(PROTO_OP_SEG_INFO, PROTO_F_REPLY);
  m.u.seginfo_reply = (struct proto_seginfo_reply){PROTO_SEGINFO_HOSTS, 300,
                                                   PROTO_SEGINFO_MAX_ENTRIES,
                                                   PROTO_SEGINFO_MAX_ENTRIES, e};
  ck_assert_int_eq(proto_encoded_size(&m), PROTO_HDR_SIZE + PROTO_SEGINFO_MAX_PAYLOAD);
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
  ck_assert_uint_eq(d.u.seginfo_reply.total, 300);
  ck_assert_uint_eq(d.u.seginfo_reply.n, PROTO_SEGINFO_MAX_ENTRIES);
  proto_seghost_get(&d.u.seginfo_reply, PROTO_MAX_NAME, &h);
  ck_assert_uint_eq(h.tag, 1000 + PROTO_MAX_NAME);
  ck_assert_uint_eq(h.nro, 2 * PROTO_MAX_NAME);
  ck_assert_uint_eq(strlen(h.name), PROTO_MAX_NAME);
  proto_seghost_get(&d.u.seginfo_reply, 3, &h);
  ck_assert_str_eq(h.name, "ddd");

  r = (struct proto_segrun){7, 100, PROTO_MODE_SHARED, PROTO_SEGRUN_BUSY, 6,
                            {4, 5, 6, 7}};
  proto_segrun_put(e, &r);
  r = (struct proto_segrun){107, 1, PROTO_MODE_EXCLUSIVE, PROTO_SEGRUN_GHOST, 0,
                            {PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE}};
  proto_segrun_put(e + PROTO_SEGRUN_SIZE, &r);
  m.u.seginfo_reply = (struct proto_seginfo_reply){PROTO_SEGINFO_PAGES, 200, 108, 2, e};
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
  proto_segrun_get(&d.u.seginfo_reply, 0, &r);
  ck_assert_uint_eq(r.count, 100);
  ck_assert_uint_eq(r.nholders, 6);
  ck_assert_uint_eq(r.holder[3], 7);
  ck_assert_uint_eq(r.flags, PROTO_SEGRUN_BUSY);
  proto_segrun_get(&d.u.seginfo_reply, 1, &r);
  ck_assert_uint_eq(r.first, 107);
  ck_assert_uint_eq(r.flags, PROTO_SEGRUN_GHOST);

  proto_segproc_put(e, &(struct proto_segproc){4242, 1, 3});
  m.u.seginfo_reply = (struct proto_seginfo_reply){PROTO_SEGINFO_PROCS, 1, 1, 1, e};
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
  proto_segproc_get(&d.u.seginfo_reply, 0, &p);
  ck_assert_uint_eq(p.pid, 4242);
  ck_assert_uint_eq(p.nro, 3);
  /* An empty reply: nothing (left) to list. */
  m.u.seginfo_reply = (struct proto_seginfo_reply){PROTO_SEGINFO_PROCS, 0, 0, 0, NULL};
  ck_assert_int_eq(decode_exact(frame, encode_ok(&m), &d), 0);
}
END_TEST

/* What a reader of SEG_INFO relies on, refused on both sides: an unknown kind, more entries
 * than a reply may hold or than the payload has, next past total, a name that is not
 * printable or not NUL-padded, an empty or wrapping run, an unknown mode or flag, holder
 * slots that disagree with nholders. */
START_TEST(test_seginfo_malformed) {
  static uint8_t e[(PROTO_SEGINFO_MAX_ENTRIES + 1) * PROTO_SEGHOST_SIZE];
  struct proto_msg m = msg(PROTO_OP_SEG_INFO, 0), d;
  struct proto_segrun good = {0, 1, PROTO_MODE_SHARED, 0, 2,
                              {1, 2, PROTO_NO_NODE, PROTO_NO_NODE}};
  struct proto_seghost h = {.tag = 1, .name = "ok"};
  size_t n;

  m.u.seginfo.what = 0;
  ck_assert_int_eq(proto_encoded_size(&m), -EINVAL);
  m.u.seginfo.what = PROTO_SEGINFO_HOSTS;
  n = encode_ok(&m);
  proto_put_u32(frame + PROTO_HDR_SIZE + 16, 4); /* what */
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);

  m = msg(PROTO_OP_SEG_INFO, PROTO_F_REPLY);
  m.u.seginfo_reply = (struct proto_seginfo_reply){PROTO_SEGINFO_HOSTS, 1000,
                                                   PROTO_SEGINFO_MAX_ENTRIES + 1,
                                                   PROTO_SEGINFO_MAX_ENTRIES + 1, e};
  for (uint32_t i = 0; i <= PROTO_SEGINFO_MAX_ENTRIES; i++)
    proto_seghost_put(e + (size_t)i * PROTO_SEGHOST_SIZE, &h);
  ck_assert_int_eq(proto_encoded_size(&m), -EINVAL);
  m.u.seginfo_reply.n = 1;
  m.u.seginfo_reply.next = 1001;
  ck_assert_int_eq(proto_encoded_size(&m), -EINVAL);
  m.u.seginfo_reply.next = 1;
  n = encode_ok(&m);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  proto_put_u32(frame + PROTO_HDR_SIZE + 12, 2); /* n says two, the payload has one */
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(frame + PROTO_HDR_SIZE + 12, 1);
  frame[PROTO_HDR_SIZE + 16 + 20 + 1] = '\n'; /* "o\n": not printable */
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  frame[PROTO_HDR_SIZE + 16 + 20 + 1] = 'k';
  frame[PROTO_HDR_SIZE + 16 + 20 + 5] = 'x'; /* after the NUL */
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);

  m.u.seginfo_reply = (struct proto_seginfo_reply){PROTO_SEGINFO_PAGES, 10, 10, 1, e};
  {
    struct proto_segrun bad[] = {
      {0, 0, PROTO_MODE_SHARED, 0, 0, {PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE}},
      {UINT32_MAX, 2, PROTO_MODE_INVALID, 0, 0, {PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE}},
      {0, 1, 3, 0, 0, {PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE}},
      {0, 1, PROTO_MODE_SHARED, 0x4, 0, {PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE}},
      {0, 1, PROTO_MODE_SHARED, 0, 2, {1, PROTO_NO_NODE, PROTO_NO_NODE, PROTO_NO_NODE}},
      {0, 1, PROTO_MODE_SHARED, 0, 1, {1, 2, PROTO_NO_NODE, PROTO_NO_NODE}},
      {0, 1, PROTO_MODE_SHARED, 0, 9, {1, 2, 3, PROTO_NO_NODE}},
    };
    proto_segrun_put(e, &good);
    n = encode_ok(&m);
    ck_assert_int_eq(decode_exact(frame, n, &d), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      proto_segrun_put(e, &bad[i]);
      ck_assert_msg(proto_encoded_size(&m) == -EINVAL, "bad run %zu encodes", i);
      memcpy(frame + PROTO_HDR_SIZE + 16, e, PROTO_SEGRUN_SIZE); /* the same on the wire */
      ck_assert_msg(decode_exact(frame, n, &d) == -EBADMSG, "bad run %zu decodes", i);
    }
  }
}
END_TEST

/* Counts beyond the caps and counts that disagree with the payload are refused on both
 * sides, and the SEMOP flags this version does not know. */
START_TEST(test_sem_malformed) {
  static uint8_t vals[2 * (PROTO_SEMMSL_MAX + 1)];
  uint8_t sops[PROTO_SEMOP_SIZE] = {0};
  struct proto_msg m = msg(PROTO_OP_SEMCTL, 0), d;
  size_t n;

  m.u.semctl.nvals = PROTO_SEMMSL_MAX + 1;
  m.u.semctl.vals = vals;
  ck_assert_int_eq(proto_encoded_size(&m), -EINVAL);
  m.u.semctl.nvals = 1;
  m.u.semctl.vals = NULL;
  ck_assert_int_eq(proto_encoded_size(&m), -EINVAL);

  /* nvals says 3, the payload holds 2 values. */
  m.u.semctl.nvals = 2;
  m.u.semctl.vals = vals;
  n = encode_ok(&m);
  proto_put_u32(frame + n - 4 - 4, 3);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  /* nvals far beyond the cap. */
  proto_put_u32(frame + n - 4 - 4, 0xffffffffu);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);

  m = msg(PROTO_OP_SEMOP, 0);
  m.u.semop.nsops = 0;
  m.u.semop.sops = sops;
  ck_assert_int_eq(proto_encoded_size(&m), -EINVAL);
  m.u.semop.nsops = PROTO_SEMOPM_MAX + 1;
  ck_assert_int_eq(proto_encoded_size(&m), -EINVAL);
  m.u.semop.nsops = 1;
  m.u.semop.flags = 2;
  ck_assert_int_eq(proto_encoded_size(&m), -EINVAL);
  m.u.semop.flags = 0;
  n = encode_ok(&m);
  /* nsops 0, 2 (more than the payload) and an unknown flag, as a peer could send them. */
  proto_put_u32(frame + n - PROTO_SEMOP_SIZE - 4, 0);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(frame + n - PROTO_SEMOP_SIZE - 4, 2);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
  proto_put_u32(frame + n - PROTO_SEMOP_SIZE - 4, 1);
  ck_assert_int_eq(decode_exact(frame, n, &d), 0);
  proto_put_u32(frame + PROTO_HDR_SIZE + 16, 2);
  ck_assert_int_eq(decode_exact(frame, n, &d), -EBADMSG);
}
END_TEST

START_TEST(test_rxbuf_sizes) {
  struct proto_rxbuf b;
  const size_t base = 8192, need = 1u << 20;

  ck_assert_int_eq(proto_rxbuf_init(&b, base), 0);
  ck_assert_uint_eq(proto_rxbuf_room(&b), base);
  memset(proto_rxbuf_tail(&b), 0xab, 100);
  b.len = 100;
  ck_assert_int_eq(proto_rxbuf_fit(&b, need), 0);
  ck_assert_uint_eq(b.cap, base); /* a lying length pins nothing more */
  b.len = base - 1;
  ck_assert_int_eq(proto_rxbuf_fit(&b, need), 0);
  ck_assert_uint_eq(b.cap, 2 * (base - 1));
  b.len = need / 2 + 1;
  b.cap = need / 2 + 2; /* as if it had grown so far */
  b.p = realloc(b.p, b.cap);
  ck_assert_ptr_nonnull(b.p);
  ck_assert_int_eq(proto_rxbuf_fit(&b, need), 0);
  ck_assert_uint_eq(b.cap, need);
  ck_assert_uint_gt(proto_rxbuf_room(&b), 0);
  /* The frame is taken with 30 bytes of the next one behind it, whose header says 64 KiB:
   * the buffer keeps its size under it (a burst of large frames is not reallocated). */
  b.len = need;
  b.p[need - 30] = 0x5a;
  proto_rxbuf_shift(&b, need - 30);
  ck_assert_uint_eq(b.len, 30);
  ck_assert_uint_eq(b.p[0], 0x5a);
  ck_assert_int_eq(proto_rxbuf_fit(&b, 65536), 0);
  ck_assert_uint_eq(b.cap, need);
  /* That one taken too, 10 bytes of a header behind it: between frames, back to base. */
  b.len = 10;
  ck_assert_int_eq(proto_rxbuf_fit(&b, 0), 0);
  ck_assert_uint_eq(b.cap, base);
  proto_rxbuf_free(&b);
}
END_TEST

static Suite *proto_suite(void) {
  Suite *s = suite_create("proto");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_byte_order);
  tcase_add_test(tc, test_hello_roundtrip);
  tcase_add_test(tc, test_groups_roundtrip);
  tcase_add_test(tc, test_auth_roundtrip);
  tcase_add_test(tc, test_sysv_roundtrip);
  tcase_add_test(tc, test_shmctl_roundtrip);
  tcase_add_test(tc, test_run_roundtrip);
  tcase_add_test(tc, test_run_max);
  tcase_add_test(tc, test_range_ping_roundtrip);
  tcase_add_test(tc, test_error_reply);
  tcase_add_test(tc, test_errno_map);
  tcase_add_test(tc, test_frame_truncated);
  tcase_add_test(tc, test_frame_bad_header);
  tcase_add_test(tc, test_payload_wrong_size);
  tcase_add_test(tc, test_run_malformed);
  tcase_add_test(tc, test_hello_malformed);
  tcase_add_test(tc, test_range_malformed);
  tcase_add_test(tc, test_random_damage);
  tcase_add_test(tc, test_node_reattach);
  tcase_add_test(tc, test_inherit);
  tcase_add_test(tc, test_sem_roundtrip);
  tcase_add_test(tc, test_sem_malformed);
  tcase_add_test(tc, test_seginfo_roundtrip);
  tcase_add_test(tc, test_seginfo_malformed);
  tcase_add_test(tc, test_rxbuf_sizes);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(proto_suite());
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
