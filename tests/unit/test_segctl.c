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

/* SHM_LOCK / SHM_UNLOCK as the caller's host reports it: limit in bytes, CAP_IPC_LOCK. */
static int lk(const struct srv_cred *c, int id, int cmd, int cap, uint64_t memlock) {
  struct proto_shmctl q = {.shmid = id, .cmd = cmd, .memlock = memlock,
                           .mode = cap ? PROTO_LOCK_CAP_IPC_LOCK : 0};
  struct proto_shmctl_reply r;
  return srv_seg_ctl(&tab, c, &q, &r);
}

#define BIG (64 * PG) /* a limit no test segment reaches */

START_TEST(shm_lock_permissions_and_bit) {
  struct proto_shmctl_reply r;
  int a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0666);

  ck_assert_int_eq(lk(&bob, a, SHM_LOCK, 0, BIG), -EPERM);
  ck_assert_int_eq(lk(&alice, a, SHM_LOCK, 0, 0), -EPERM); /* RLIMIT_MEMLOCK 0 */
  ck_assert_int_eq(lk(&alice, a + 1, SHM_LOCK, 0, BIG), -EINVAL);
  ck_assert_int_eq(lk(&alice, a, SHM_LOCK, 0, BIG), 0);
  ck_assert_int_eq(ctl(&alice, a, IPC_STAT, 0, &r), 0);
  ck_assert_uint_eq(r.ds.mode, 0666 | SRV_SHM_LOCKED);
  ck_assert_int_eq(lk(&bob, a, SHM_UNLOCK, 0, BIG), -EPERM);
  /* SHM_UNLOCK needs no memlock limit; CAP_IPC_LOCK needs neither ownership nor a limit,
   * and uid 0 without it is anyone. */
  ck_assert_int_eq(lk(&alice, a, SHM_UNLOCK, 0, 0), 0);
  ck_assert_int_eq(ctl(&alice, a, IPC_STAT, 0, &r), 0);
  ck_assert_uint_eq(r.ds.mode, 0666);
  ck_assert_int_eq(lk(&root, a, SHM_LOCK, 0, BIG), -EPERM);
  ck_assert_int_eq(lk(&bob, a, SHM_LOCK, 1, 0), 0);
  ck_assert_int_eq(lk(&root, a, SHM_LOCK, 1, 0), 0); /* twice is fine */
  ck_assert_int_eq(ctl(&alice, a, IPC_RMID, 0, NULL), 0);
}
END_TEST

/* user_shm_lock(): the user's locked pages plus the segment's must fit the caller's limit
 * (pages rounded up, the limit rounded down); counted once per segment, released by
 * SHM_UNLOCK and by the segment's destruction (deferred while attached), not by IPC_RMID
 * alone. */
START_TEST(shm_lock_counts_per_user) {
  struct srv_seg *s;
  int a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 8 * PG, 0600);
  int b = srv_seg_get(&tab, &alice, IPC_PRIVATE, 8 * PG, 0600);
  int c = srv_seg_get(&tab, &alice, IPC_PRIVATE, PG + 1, 0600); /* 2 pages */
  int d = srv_seg_get(&tab, &bob, IPC_PRIVATE, 8 * PG, 0600);
  int mlim = 16 * PG + PG - 1; /* 16 pages */

  ck_assert_int_eq(lk(&alice, a, SHM_LOCK, 0, mlim), 0);
  ck_assert_int_eq(lk(&alice, a, SHM_LOCK, 0, mlim), 0);
  ck_assert_int_eq(lk(&alice, b, SHM_LOCK, 0, mlim), 0);  /* 16: the limit itself */
  ck_assert_int_eq(lk(&alice, c, SHM_LOCK, 0, mlim), -ENOMEM);
  ck_assert_int_eq(lk(&alice, c, SHM_LOCK, 0, PROTO_MEMLOCK_INFINITY), 0);
  ck_assert_int_eq(lk(&alice, c, SHM_UNLOCK, 0, 0), 0);
  ck_assert_int_eq(lk(&bob, d, SHM_LOCK, 0, 8 * PG), 0); /* bob's own count */
  ck_assert_int_eq(lk(&alice, c, SHM_LOCK, 1, mlim), 0);  /* CAP_IPC_LOCK: 18, counted */
  ck_assert_int_eq(lk(&alice, c, SHM_UNLOCK, 0, 0), 0);
  ck_assert_int_eq(lk(&alice, b, SHM_UNLOCK, 0, 0), 0);  /* 8 */
  ck_assert_int_eq(lk(&alice, c, SHM_LOCK, 0, mlim), 0);  /* 10 */
  ck_assert_int_eq(lk(&alice, b, SHM_LOCK, 0, mlim), -ENOMEM);
  /* Removed while attached: counted until the last detach destroys it. */
  ck_assert_int_eq(srv_seg_attach(&tab, &alice, a, 0, &s), 0);
  ck_assert_int_eq(ctl(&alice, a, IPC_RMID, 0, NULL), 0);
  ck_assert_int_eq(lk(&alice, b, SHM_LOCK, 0, mlim), -ENOMEM);
  srv__seg_detach(&tab, s, 11);
  ck_assert_int_eq(lk(&alice, b, SHM_LOCK, 0, mlim), 0);  /* 10 */
  /* Whoever locks it pays, whoever owns it: bob locks alice's with CAP_IPC_LOCK. */
  ck_assert_int_eq(lk(&alice, b, SHM_UNLOCK, 0, 0), 0);
  ck_assert_int_eq(lk(&bob, b, SHM_LOCK, 1, 0), 0);
  ck_assert_int_eq(lk(&bob, c, SHM_UNLOCK, 1, 0), 0);    /* alice's 2 pages released */
  ck_assert_int_eq(lk(&bob, d, SHM_UNLOCK, 0, 0), 0);
  ck_assert_int_eq(lk(&bob, d, SHM_LOCK, 0, 15 * PG), -ENOMEM); /* bob: b 8 + d 8 */
  ck_assert_int_eq(lk(&alice, c, SHM_LOCK, 0, 2 * PG), 0);      /* alice: 2 */
}
END_TEST

/* SHM_HUGETLB: the host's answer where the kernel checks the pool (after the size and
 * SHMALL checks, before SHMMNI); ENOMEM without one, even where the kernel would create the
 * segment; an existing key is found as always. */
START_TEST(hugetlb_is_refused) {
  int k = srv_seg_get(&tab, &alice, 42, PG, IPC_CREAT | 0600);

  ck_assert_int_ge(k, 0);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, IPC_PRIVATE, PG, SHM_HUGETLB | 0600), -ENOMEM);
  ck_assert_int_eq(srv_seg_get_huge(&tab, &alice, IPC_PRIVATE, PG, SHM_HUGETLB, -EPERM), -EPERM);
  ck_assert_int_eq(srv_seg_get_huge(&tab, &alice, IPC_PRIVATE, PG, SHM_HUGETLB, -EINVAL),
                   -EINVAL);
  ck_assert_int_eq(srv_seg_get_huge(&tab, &alice, IPC_PRIVATE, PG, SHM_HUGETLB, -EIO), -ENOMEM);
  ck_assert_int_eq(srv_seg_get_huge(&tab, &alice, IPC_PRIVATE, 0, SHM_HUGETLB, -EPERM), -EINVAL);
  ck_assert_int_eq(srv_seg_get_huge(&tab, &alice, IPC_PRIVATE, 101 * PG, SHM_HUGETLB, -EPERM),
                   -EINVAL); /* above shmmax */
  ck_assert_int_eq(srv_seg_get_huge(&tab, &alice, 42, PG, SHM_HUGETLB | IPC_CREAT, -EPERM), k);
  ck_assert_int_eq(srv_seg_get_huge(&tab, &alice, 43, PG, SHM_HUGETLB, -EPERM), -ENOENT);
  ck_assert_int_eq(srv_seg_get_huge(&tab, &alice, 43, PG, SHM_HUGETLB | IPC_CREAT, -EPERM),
                   -EPERM);
  for (int i = 1; i < 8; i++)
    ck_assert_int_ge(srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600), 0);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600), -ENOSPC);
  ck_assert_int_eq(srv_seg_get_huge(&tab, &alice, IPC_PRIVATE, 1, SHM_HUGETLB, -EPERM), -EPERM);
  ck_assert_int_eq(tab.in_use, 8);
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
  tcase_add_test(tc, shm_lock_counts_per_user);
  tcase_add_test(tc, hugetlb_is_refused);
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
