/* test_persist.c - the --data-dir pieces without sockets: the metadata format and its
 * corrupt-input handling, save/load of a segment table with data and page records, ghost
 * owners in the directory, the lock, stray files. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta.h"
#include "persist.h"
#include "segments.h"

#define PG PROTO_PAGE_SIZE

/* ---- the format ---- */

static struct srv_meta_seg rec_a = {
  .shm_id = (int32_t)((SRV_SEQ_TAG + 3) * SRV_IPCMNI + 5), .key = 0x1234, .uid = 1000,
  .gid = 100, .cuid = 1001, .cgid = 101, .mode = 0640 | SRV_SHM_LOCKED, .seq = SRV_SEQ_TAG + 3,
  .segsz = 5000, .atime = 111, .dtime = 222, .ctime = 333, .cpid = 44, .lpid = 55,
};
static struct srv_meta_seg rec_b = {
  .shm_id = (int32_t)((SRV_SEQ_TAG + 3) * SRV_IPCMNI + 6), .key = 0, .uid = 0, .gid = 0,
  .cuid = 0, .cgid = 0, .mode = 0600 | SRV_SHM_DEST, .seq = SRV_SEQ_TAG + 3, .segsz = 1,
};

static uint8_t *encode2(size_t *len) {
  struct srv_meta_seg segs[2] = {rec_a, rec_b};
  struct srv_meta m = {.seq = 3, .last_idx = 6, .nsegs = 2, .segs = segs};
  uint8_t *buf;

  memset(m.instance, 0xab, sizeof m.instance);
  *len = srv_meta_size(&m);
  buf = malloc(*len);
  ck_assert_ptr_nonnull(buf);
  srv_meta_encode(buf, &m);
  return buf;
}

/* Rewrites the trailing checksum after a deliberate edit, so that a test reaches the
 * validation behind it. */
static void reseal(uint8_t *buf, size_t len) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  size_t i;
  for (i = 0; i < len - 8; i++) {
    h ^= buf[i];
    h *= UINT64_C(0x100000001b3);
  }
  proto_put_u64(buf + len - 8, h);
}

static int decode(const uint8_t *buf, size_t len, const char **why) {
  struct srv_meta m;
  int err = srv_meta_decode(buf, len, &m, why);
  if (err == 0)
    free(m.segs);
  else
    ck_assert_ptr_nonnull(*why);
  return err;
}

START_TEST(meta_round_trip) {
  size_t len;
  uint8_t *buf = encode2(&len);
  struct srv_meta m;
  const char *why;

  ck_assert_uint_eq(len, SRV_META_HDR + 2 * SRV_META_REC + SRV_META_TRAILER);
  ck_assert_int_eq(srv_meta_decode(buf, len, &m, &why), 0);
  ck_assert_uint_eq(m.nsegs, 2);
  ck_assert_uint_eq(m.seq, 3);
  ck_assert_int_eq(m.last_idx, 6);
  ck_assert_uint_eq(m.instance[15], 0xab);
  ck_assert_mem_eq(&m.segs[0], &rec_a, sizeof rec_a);
  ck_assert_mem_eq(&m.segs[1], &rec_b, sizeof rec_b);
  free(m.segs);
  free(buf);
}
END_TEST

START_TEST(meta_every_truncation_fails) {
  size_t len, n;
  uint8_t *buf = encode2(&len);
  const char *why;

  for (n = 0; n < len; n++)
    ck_assert_int_eq(decode(buf, n, &why), -EBADMSG);
  free(buf);
}
END_TEST

START_TEST(meta_every_bit_flip_fails) {
  size_t len, i;
  uint8_t *buf = encode2(&len);
  const char *why;

  for (i = 0; i < len * 8; i++) {
    buf[i / 8] ^= (uint8_t)(1u << (i % 8));
    ck_assert_int_lt(decode(buf, len, &why), 0);
    buf[i / 8] ^= (uint8_t)(1u << (i % 8));
  }
  ck_assert_int_eq(decode(buf, len, &why), 0);
  free(buf);
}
END_TEST

START_TEST(meta_newer_version_is_refused) {
  size_t len;
  uint8_t *buf = encode2(&len);
  const char *why;

  proto_put_u32(buf + 8, SRV_META_VERSION + 1);
  reseal(buf, len);
  ck_assert_int_eq(decode(buf, len, &why), -EPROTONOSUPPORT);
  ck_assert_ptr_nonnull(strstr(why, "newer"));
  free(buf);
}
END_TEST

START_TEST(meta_bad_fields_are_refused) {
  size_t len;
  uint8_t *buf = encode2(&len);
  uint8_t *r1 = buf + SRV_META_HDR + SRV_META_REC;
  const char *why;

  /* Second record on the first one's index. */
  proto_put_u32(r1, (uint32_t)rec_a.shm_id);
  reseal(buf, len);
  ck_assert_int_eq(decode(buf, len, &why), -EBADMSG);
  ck_assert_ptr_nonnull(strstr(why, "index"));
  free(buf);

  buf = encode2(&len);
  r1 = buf + SRV_META_HDR + SRV_META_REC;
  proto_put_u32(r1 + 4, (uint32_t)rec_a.key); /* same key (and SHM_DEST with a key) */
  reseal(buf, len);
  ck_assert_int_eq(decode(buf, len, &why), -EBADMSG);
  free(buf);

  buf = encode2(&len);
  proto_put_u32(buf + SRV_META_HDR, 12345); /* an id without the tag */
  reseal(buf, len);
  ck_assert_int_eq(decode(buf, len, &why), -EBADMSG);
  free(buf);

  buf = encode2(&len);
  proto_put_u32(buf + SRV_META_HDR + 24, 01000000); /* unknown mode bit */
  reseal(buf, len);
  ck_assert_int_eq(decode(buf, len, &why), -EBADMSG);
  free(buf);

  buf = encode2(&len);
  proto_put_u32(buf + 12, 3); /* a count that lies */
  reseal(buf, len);
  ck_assert_int_eq(decode(buf, len, &why), -EBADMSG);
  free(buf);

  buf = encode2(&len);
  proto_put_u32(buf + 12, 0xffffffffu);
  reseal(buf, len);
  ck_assert_int_eq(decode(buf, len, &why), -EBADMSG);
  free(buf);
}
END_TEST

/* ---- the data directory ---- */

static int nsent;
static uint64_t tag_of_node[4] = {0, 0x1111, 0x2222, 0};

static int count_send(void *opaque, uint32_t node, struct proto_msg *m) {
  (void)opaque;
  (void)node;
  (void)m;
  nsent++;
  return 0;
}

static uint64_t fake_tag(void *opaque, uint32_t node) {
  (void)opaque;
  return node < 4 ? tag_of_node[node] : 0;
}

static const struct srv_dir_ops ops = {.send = count_send, .node_tag = fake_tag};
static struct srv_dirctx dctx = {.ops = &ops};
static struct srv_limits lim = {.shmmax = 64 * PG, .shmmin = 1, .shmall = 1000, .shmmni = 16};
static const struct srv_cred alice = {.pid = 11, .uid = 1000, .gid = 100};
static char dir[64];

static void dir_setup(void) {
  strcpy(dir, "/tmp/dshm_persist_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void dir_teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static void open_load(struct srv_persist *p, struct srv_segtab *t, int want) {
  ck_assert_int_eq(srv_segtab_init(t, &lim, &dctx), 0);
  ck_assert_int_eq(srv_persist_open(p, dir), 0);
  ck_assert_int_eq(srv_persist_load(p, t), want);
}

static void close_all(struct srv_persist *p, struct srv_segtab *t) {
  srv_segtab_fini(t);
  srv_persist_close(p);
}

static void run1(struct proto_run *r, int32_t id, uint32_t page, uint32_t mode, uint64_t v,
                 const uint8_t *data) {
  memset(r, 0, sizeof *r);
  r->shmid = id;
  r->first = page;
  r->count = 1;
  r->mode = mode;
  r->page[0].version = v;
  r->page[0].flags = data ? PROTO_PAGE_DATA : 0;
  r->page[0].data = data;
}

START_TEST(save_load_keeps_everything) {
  struct srv_persist p;
  struct srv_segtab t;
  struct srv_seg *s, *s2;
  struct proto_run r;
  struct srv_dpage_info pi;
  uint8_t page[PG];
  int id, id2, id3;

  open_load(&p, &t, 0);
  id = srv_seg_get(&t, &alice, 0x4242, 3 * PG, IPC_CREAT | 0640);
  ck_assert_int_ge(id, 0);
  ck_assert_int_eq(srv_persist_save(&p, &t), 0);
  s = srv_seg_lookup(&t, id);
  memset(s->store.base + PG, 0x5a, PG);
  /* Node 1 takes page 2 EXCLUSIVE: the record names it (a ghost after the restart). */
  run1(&r, id, 2, PROTO_MODE_EXCLUSIVE, 0, NULL);
  ck_assert_int_eq(srv_dir_request(s->dir, 1, 7, PROTO_OP_ACQUIRE, &r, 1), 0);
  ck_assert_uint_eq(s->store.rec[2].owner, 0x1111);
  ck_assert_uint_eq(s->store.rec[2].version, 2);
  id2 = srv_seg_get(&t, &alice, IPC_PRIVATE, 10, 0600);
  ck_assert_int_eq(srv_persist_flush(&p, &t), 0);
  close_all(&p, &t);

  open_load(&p, &t, 0);
  s2 = srv_seg_lookup(&t, id);
  ck_assert_ptr_nonnull(s2);
  ck_assert_int_eq(s2->shm_perm.key, 0x4242);
  ck_assert_uint_eq(s2->shm_perm.mode, 0640);
  ck_assert_uint_eq(s2->shm_segsz, 3 * PG);
  ck_assert_uint_eq(s2->shm_nattch, 0);
  ck_assert_uint_eq(s2->shm_cpid, 11);
  memset(page, 0x5a, PG);
  ck_assert_mem_eq(s2->store.base + PG, page, PG);
  ck_assert_ptr_nonnull(srv_seg_lookup(&t, id2));
  /* Ids go on from the saved sequence: no collision with a restored one. */
  id3 = srv_seg_get(&t, &alice, IPC_PRIVATE, 10, 0600);
  ck_assert_int_ne(id3, id);
  ck_assert_int_ne(id3, id2);
  ck_assert_int_eq(srv_seg_get(&t, &alice, 0x4242, 10, 0), id);
  /* Page 2 is a ghost of node 1: node 2's read waits... */
  ck_assert_int_eq(srv_dir_page_info(s2->dir, 2, &pi), 0);
  ck_assert_uint_eq(pi.owner, SRV_NODE_GHOST);
  ck_assert_uint_eq(pi.version, 2);
  nsent = 0;
  run1(&r, id, 2, PROTO_MODE_SHARED, 0, NULL);
  ck_assert_int_eq(srv_dir_request(s2->dir, 2, 8, PROTO_OP_READ_DATA, &r, 1), 0);
  ck_assert_int_eq(nsent, 1); /* only the recall to the ghost (which goes nowhere) */
  /* ... until node 1 writes back the version it was granted. */
  memset(page, 0x77, PG);
  run1(&r, id, 2, PROTO_MODE_INVALID, 2, page);
  ck_assert_int_eq(srv_dir_write(s2->dir, 1, &r), 0);
  ck_assert_int_eq(nsent, 2); /* the grant */
  ck_assert_mem_eq(s2->store.base + 2 * PG, page, PG);
  ck_assert_uint_eq(s2->store.rec[2].owner, 0);
  close_all(&p, &t);
}
END_TEST

START_TEST(ghost_ends_with_grace_or_wrong_version) {
  struct srv_persist p;
  struct srv_segtab t;
  struct srv_seg *s;
  struct proto_run r;
  struct srv_dpage_info pi;
  uint8_t page[PG];
  int id;

  open_load(&p, &t, 0);
  id = srv_seg_get(&t, &alice, IPC_PRIVATE, 4 * PG, 0600);
  s = srv_seg_lookup(&t, id);
  run1(&r, id, 0, PROTO_MODE_EXCLUSIVE, 0, NULL);
  ck_assert_int_eq(srv_dir_request(s->dir, 1, 7, PROTO_OP_ACQUIRE, &r, 1), 0);
  run1(&r, id, 3, PROTO_MODE_EXCLUSIVE, 0, NULL);
  ck_assert_int_eq(srv_dir_request(s->dir, 2, 7, PROTO_OP_ACQUIRE, &r, 1), 0);
  ck_assert_int_eq(srv_persist_flush(&p, &t), 0);
  close_all(&p, &t);

  open_load(&p, &t, 0);
  s = srv_seg_lookup(&t, id);
  /* A write-back of another version, or from another node, is not taken. */
  memset(page, 0x33, PG);
  run1(&r, id, 0, PROTO_MODE_INVALID, 1, page);
  ck_assert_int_eq(srv_dir_write(s->dir, 1, &r), 0);
  run1(&r, id, 0, PROTO_MODE_INVALID, 2, page);
  ck_assert_int_eq(srv_dir_write(s->dir, 2, &r), 0);
  ck_assert_uint_ne(s->store.base[0], 0x33);
  /* Node 2's ghost ends alone; page 0 stays node 1's. */
  ck_assert_uint_eq(srv_dir_end_ghosts(s->dir, 0x2222), 1);
  ck_assert_uint_eq(s->store.rec[3].owner, 0);
  ck_assert_uint_eq(s->store.rec[3].version, 3); /* bumped: its unsent data is lost */
  ck_assert_int_eq(srv_dir_page_info(s->dir, 0, &pi), 0);
  ck_assert_uint_eq(pi.owner, SRV_NODE_GHOST);
  ck_assert_uint_eq(srv_dir_end_ghosts(s->dir, 0), 1);
  ck_assert_int_eq(srv_dir_page_info(s->dir, 0, &pi), 0);
  ck_assert_uint_eq(pi.owner, SRV_NODE_NONE);
  ck_assert_uint_eq(pi.version, 3);
  close_all(&p, &t);
}
END_TEST

/* A ghost's write-back keeping SHARED makes its node a sharer without a request of the node
 * in this run of the server: forgetting the node (it detaches) must still remove it. */
START_TEST(ghost_write_back_sharer_is_forgotten) {
  struct srv_persist p;
  struct srv_segtab t;
  struct srv_seg *s;
  struct proto_run r;
  uint8_t page[PG];
  int id;

  open_load(&p, &t, 0);
  id = srv_seg_get(&t, &alice, IPC_PRIVATE, 4 * PG, 0600);
  s = srv_seg_lookup(&t, id);
  run1(&r, id, 1, PROTO_MODE_EXCLUSIVE, 0, NULL);
  ck_assert_int_eq(srv_dir_request(s->dir, 1, 7, PROTO_OP_ACQUIRE, &r, 1), 0);
  ck_assert_int_eq(srv_persist_flush(&p, &t), 0);
  close_all(&p, &t);

  open_load(&p, &t, 0);
  s = srv_seg_lookup(&t, id);
  memset(page, 0x44, PG);
  run1(&r, id, 1, PROTO_MODE_SHARED, 2, page);
  ck_assert_int_eq(srv_dir_write(s->dir, 1, &r), 0);
  ck_assert_int_eq(srv_dir_is_sharer(s->dir, 1, 1), 1);
  srv_dir_forget(s->dir, 1);
  ck_assert_int_eq(srv_dir_is_sharer(s->dir, 1, 1), 0);
  close_all(&p, &t);
}
END_TEST

START_TEST(second_server_is_refused) {
  struct srv_persist p, q;

  ck_assert_int_eq(srv_persist_open(&p, dir), 0);
  ck_assert_int_eq(srv_persist_open(&q, dir), -EBUSY);
  srv_persist_close(&p);
  ck_assert_int_eq(srv_persist_open(&q, dir), 0);
  srv_persist_close(&q);
}
END_TEST

static void write_file(const char *name, const void *b, size_t n) {
  char path[128];
  int fd;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, b, n), (ssize_t)n);
  close(fd);
}

START_TEST(corrupt_or_missing_files_refuse_to_load) {
  struct srv_persist p;
  struct srv_segtab t;
  char path[128], name[32];
  int id;

  open_load(&p, &t, 0);
  id = srv_seg_get(&t, &alice, 0x99, PG, IPC_CREAT | 0600);
  ck_assert_int_ge(id, 0);
  ck_assert_int_eq(srv_persist_save(&p, &t), 0);
  close_all(&p, &t);

  /* The segment file cut short. */
  srv_store_name(name, sizeof name, id);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  ck_assert_int_eq(truncate(path, 100), 0);
  open_load(&p, &t, -EBADMSG);
  close_all(&p, &t);
  ck_assert_int_eq(unlink(path), 0); /* and missing */
  open_load(&p, &t, -EBADMSG);
  close_all(&p, &t);

  write_file("meta", "garbage", 7);
  open_load(&p, &t, -EBADMSG);
  close_all(&p, &t);
  write_file("meta", "", 0);
  open_load(&p, &t, -EBADMSG);
  close_all(&p, &t);
}
END_TEST

START_TEST(strays_are_removed_and_destroy_removes_the_file) {
  struct srv_persist p;
  struct srv_segtab t;
  struct proto_shmctl q = {.cmd = IPC_RMID};
  struct proto_shmctl_reply out;
  char path[128], name[32];
  int id;

  open_load(&p, &t, 0);
  id = srv_seg_get(&t, &alice, IPC_PRIVATE, PG, 0600);
  srv_store_name(name, sizeof name, id);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  ck_assert_int_eq(access(path, F_OK), 0);
  q.shmid = id;
  ck_assert_int_eq(srv_seg_ctl(&t, &alice, &q, &out), 0);
  ck_assert_int_eq(access(path, F_OK), 0); /* until the metadata no longer lists it */
  ck_assert_int_eq(srv_persist_save(&p, &t), 0);
  ck_assert_int_eq(access(path, F_OK), -1);
  close_all(&p, &t);

  write_file("seg-40001234", "x", 1);
  write_file("meta.tmp", "x", 1);
  open_load(&p, &t, 0);
  close_all(&p, &t);
  snprintf(path, sizeof path, "%s/seg-40001234", dir);
  ck_assert_int_eq(access(path, F_OK), -1);
  snprintf(path, sizeof path, "%s/meta.tmp", dir);
  ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("persist");
  TCase *tc = tcase_create("meta");
  TCase *td = tcase_create("datadir");

  tcase_add_test(tc, meta_round_trip);
  tcase_add_test(tc, meta_every_truncation_fails);
  tcase_add_test(tc, meta_every_bit_flip_fails);
  tcase_add_test(tc, meta_newer_version_is_refused);
  tcase_add_test(tc, meta_bad_fields_are_refused);
  suite_add_tcase(s, tc);
  tcase_add_checked_fixture(td, dir_setup, dir_teardown);
  tcase_add_test(td, save_load_keeps_everything);
  tcase_add_test(td, ghost_ends_with_grace_or_wrong_version);
  tcase_add_test(td, ghost_write_back_sharer_is_forgotten);
  tcase_add_test(td, second_server_is_refused);
  tcase_add_test(td, corrupt_or_missing_files_refuse_to_load);
  tcase_add_test(td, strays_are_removed_and_destroy_removes_the_file);
  suite_add_tcase(s, td);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
