/* test_segctl.c - the shmctl commands beyond STAT/SET/RMID: IPC_INFO, SHM_INFO, SHM_STAT,
 * SHM_STAT_ANY, SHM_LOCK/SHM_UNLOCK, IPC_64 masking, and the tagged id format. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "segments.h"

#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#define PG PROTO_PAGE_SIZE

static int no_send(void *opaque, uint32_t node, struct proto_msg *m) {
  (void)opaque;
  (void)node;
  (void)m;
  return 0;
}

static const struct srv_dir_ops ops = {.send = no_send};
static struct srv_dirctx dctx = {.ops = &ops};
static struct srv_segtab tab;
static const struct srv_limits lim = {
  .shmmax = 64 * PG, .shmmin = 1, .shmall = 100, .shmmni = 8,
};
static const struct srv_cred alice = {.pid = 11, .uid = 1000, .gid = 100};
static const struct srv_cred bob = {.pid = 22, .uid = 2000, .gid = 2000};
static const struct srv_cred root = {.pid = 1, .uid = 0, .gid = 0};

static void setup(void) {
  ck_assert_int_eq(srv_segtab_init(&tab, &lim, &dctx), 0);
}

static void teardown(void) {
  srv_segtab_fini(&tab);
}

static int ctl(const struct srv_cred *c, int id, int cmd, uint32_t mode,
               struct proto_shmctl_reply *r) {
  struct proto_shmctl q = {.shmid = id, .cmd = cmd, .mode = mode};
  struct proto_shmctl_reply tmp;
  return srv_seg_ctl(&tab, c, &q, r ? r : &tmp);
}

START_TEST(ids_carry_the_tag) {
  int a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  int b = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  struct proto_shmctl_reply r;

  ck_assert_int_ge(a, 0);
  ck_assert_int_ne(a & SRV_ID_TAG, 0);
  ck_assert_int_ne(b & SRV_ID_TAG, 0);
  ck_assert_int_eq(ctl(&alice, a, IPC_STAT, 0, &r), 0);
  ck_assert_uint_eq(r.ds.seq, (uint32_t)a / SRV_IPCMNI);
  /* The sequence wraps inside the tagged range. */
  tab.seq = SRV_SEQ_MAX;
  ck_assert_int_eq(ctl(&alice, a, IPC_RMID, 0, NULL), 0);
  a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  ck_assert_int_ge(a, 0);
  ck_assert_int_ne(a & SRV_ID_TAG, 0);
  ck_assert_int_eq(a / (int)SRV_IPCMNI, (int)SRV_SEQ_TAG);
}
END_TEST

START_TEST(ipc_info_reports_limits_and_max_index) {
  struct proto_shmctl_reply r;
  int a, b;

  ck_assert_int_eq(ctl(&bob, 0, IPC_INFO, 0, &r), 0); /* empty table: 0 */
  ck_assert_uint_eq(r.info.shmmax, 64 * PG);
  ck_assert_uint_eq(r.info.shmmin, 1);
  ck_assert_uint_eq(r.info.shmmni, 8);
  ck_assert_uint_eq(r.info.shmseg, 8);
  ck_assert_uint_eq(r.info.shmall, 100);
  a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  b = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  ck_assert_int_eq(ctl(&bob, 12345, IPC_INFO | 0x100, 0, &r), b % (int)SRV_IPCMNI);
  ck_assert_int_eq(r.ret, b % (int)SRV_IPCMNI);
  ck_assert_int_eq(ctl(&alice, b, IPC_RMID, 0, NULL), 0);
  ck_assert_int_eq(ctl(&bob, 0, IPC_INFO, 0, &r), a % (int)SRV_IPCMNI);
  ck_assert_int_eq(ctl(&bob, -1, IPC_INFO, 0, &r), -EINVAL); /* shmid < 0 first */
}
END_TEST

START_TEST(shm_info_counts_usage) {
  struct proto_shmctl_reply r;
  int a;

  ck_assert_int_eq(ctl(&bob, 0, SHM_INFO, 0, &r), 0);
  ck_assert_uint_eq(r.info.used_ids, 0);
  ck_assert_uint_eq(r.info.shm_tot, 0);
  a = srv_seg_get(&tab, &alice, IPC_PRIVATE, PG + 1, 0600);
  (void)srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  ck_assert_int_eq(ctl(&bob, 0, SHM_INFO, 0, &r), 1);
  ck_assert_uint_eq(r.info.used_ids, 2);
  ck_assert_uint_eq(r.info.shm_tot, 3);
  ck_assert_uint_eq(r.info.shm_swp, 0);
  ck_assert_int_eq(ctl(&alice, a, IPC_RMID, 0, NULL), 0);
  ck_assert_int_eq(ctl(&bob, 0, SHM_INFO, 0, &r), 1);
  ck_assert_uint_eq(r.info.used_ids, 1);
  ck_assert_uint_eq(r.info.shm_tot, 1);
}
END_TEST

START_TEST(shm_stat_by_index) {
  struct proto_shmctl_reply r;
  int a = srv_seg_get(&tab, &alice, 77, 3 * PG, IPC_CREAT | 0600);
  int idx = a % (int)SRV_IPCMNI;

  ck_assert_int_eq(ctl(&alice, idx, SHM_STAT, 0, &r), a);
  ck_assert_int_eq(r.ret, a);
  ck_assert_int_eq(r.ds.key, 77);
  ck_assert_uint_eq(r.ds.segsz, 3 * PG);
  ck_assert_uint_eq(r.ds.uid, alice.uid);
  ck_assert_int_eq(ctl(&bob, idx, SHM_STAT, 0, &r), -EACCES);
  ck_assert_int_eq(ctl(&bob, idx, SHM_STAT_ANY, 0, &r), a);
  ck_assert_uint_eq(r.ds.mode, 0600);
  ck_assert_int_eq(ctl(&root, idx, SHM_STAT | 0x100, 0, &r), a);
  ck_assert_int_eq(ctl(&alice, idx + 1, SHM_STAT, 0, &r), -EINVAL);
  ck_assert_int_eq(ctl(&alice, 7, SHM_STAT_ANY, 0, &r), -EINVAL);
  ck_assert_int_eq(ctl(&alice, 9999, SHM_STAT_ANY, 0, &r), -EINVAL); /* past the table */
  /* Linux masks the argument to an index: a full id works too. */
  ck_assert_int_eq(ctl(&alice, a, SHM_STAT, 0, &r), a);
}
END_TEST

START_TEST(shm_lock_permissions_and_bit) {
  struct proto_shmctl_reply r;
  int a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0666);

  ck_assert_int_eq(ctl(&bob, a, SHM_LOCK, 0, NULL), -EPERM);
  ck_assert_int_eq(ctl(&alice, a, SHM_LOCK, SRV_LOCK_NO_MEMLOCK, NULL), -EPERM);
  ck_assert_int_eq(ctl(&alice, a + 1, SHM_LOCK, 0, NULL), -EINVAL);
  ck_assert_int_eq(ctl(&alice, a, SHM_LOCK, 0, NULL), 0);
  ck_assert_int_eq(ctl(&alice, a, IPC_STAT, 0, &r), 0);
  ck_assert_uint_eq(r.ds.mode, 0666 | SRV_SHM_LOCKED);
  ck_assert_int_eq(ctl(&bob, a, SHM_UNLOCK, 0, NULL), -EPERM);
  /* SHM_UNLOCK needs no memlock limit; root needs neither ownership nor a limit. */
  ck_assert_int_eq(ctl(&alice, a, SHM_UNLOCK, SRV_LOCK_NO_MEMLOCK, NULL), 0);
  ck_assert_int_eq(ctl(&alice, a, IPC_STAT, 0, &r), 0);
  ck_assert_uint_eq(r.ds.mode, 0666);
  ck_assert_int_eq(ctl(&root, a, SHM_LOCK, SRV_LOCK_NO_MEMLOCK, NULL), 0);
  ck_assert_int_eq(ctl(&root, a, SHM_LOCK, 0, NULL), 0); /* twice is fine */
  ck_assert_int_eq(ctl(&alice, a, IPC_RMID, 0, NULL), 0);
}
END_TEST

START_TEST(unknown_commands_einval) {
  int a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0666);

  ck_assert_int_eq(ctl(&alice, a, 4, 0, NULL), -EINVAL);
  ck_assert_int_eq(ctl(&alice, a, 16, 0, NULL), -EINVAL);
  ck_assert_int_eq(ctl(&alice, a, 0x100 | 16, 0, NULL), -EINVAL);
  ck_assert_int_eq(ctl(&alice, a, -2, 0, NULL), -EINVAL);
}
END_TEST

START_TEST(shm_exec_needs_execute_permission) {
  struct srv_seg *s;
  int a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0666);
  int b = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0777);

  ck_assert_int_eq(srv_seg_attach(&tab, &bob, a, SHM_EXEC, &s), -EACCES);
  ck_assert_int_eq(srv_seg_attach(&tab, &bob, a, SHM_EXEC | SHM_RDONLY, &s), -EACCES);
  ck_assert_int_eq(srv_seg_attach(&tab, &bob, a, 0, &s), 0);
  ck_assert_int_eq(srv_seg_attach(&tab, &bob, b, SHM_EXEC, &s), 0);
  ck_assert_int_eq(srv_seg_attach(&tab, &root, a, SHM_EXEC, &s), 0);
}
END_TEST

static Suite *segctl_suite(void) {
  Suite *s = suite_create("segctl");
  TCase *tc = tcase_create("segctl");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, ids_carry_the_tag);
  tcase_add_test(tc, ipc_info_reports_limits_and_max_index);
  tcase_add_test(tc, shm_info_counts_usage);
  tcase_add_test(tc, shm_stat_by_index);
  tcase_add_test(tc, shm_lock_permissions_and_bit);
  tcase_add_test(tc, unknown_commands_einval);
  tcase_add_test(tc, shm_exec_needs_execute_permission);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(segctl_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
