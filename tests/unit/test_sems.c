/* test_sems.c - the SysV semaphore table: every errno path of semget/semctl/semop, ids, the
 * queues of blocked semops and their order, GETNCNT/GETZCNT, SEM_UNDO and exit; then the
 * kernel as the oracle: the same calls on real sets (and real blocked processes), compared
 * result for result and value for value. */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sems.h"

#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif

#define NOW 1000
#define NW IPC_NOWAIT
#define UN SEM_UNDO

/* An array of operations and its length, for the helpers' (sops, n) parameters. */
#define OPS(...)                                \
  ((const struct srv_semop_one[]){__VA_ARGS__}), \
      (uint32_t)(sizeof((const struct srv_semop_one[]){__VA_ARGS__}) / sizeof(struct srv_semop_one))

static struct srv_semtab tab;
static const struct srv_sem_limits lim = {.semmsl = 8, .semmns = 20, .semopm = 10, .semmni = 4};

/* Credentials: an owner, a stranger, a group member, root. */
static const uint32_t groups_200[] = {300, 200};
static const struct srv_cred alice = {.pid = 11, .uid = 1000, .gid = 100};
static const struct srv_cred bob = {.pid = 22, .uid = 2000, .gid = 2000};
static const struct srv_cred carol = {.pid = 33, .uid = 3000, .gid = 100}; /* alice's gid */
static const struct srv_cred dave = {.pid = 44, .uid = 4000, .gid = 4000,
                                     .ngroups = 2, .groups = groups_200};
static const struct srv_cred root = {.pid = 1, .uid = 0, .gid = 0};

/* The done calls, in order: the waiter's ctx as a tag, its result, whether its set was gone. */
static struct {
  int tag, result, set_gone;
} dlog[256];
static int ndone;

static void on_done(void *arg, struct srv_semwait *w, int result) {
  (void)arg;
  ck_assert_int_lt(ndone, 256);
  dlog[ndone].tag = (int)(intptr_t)w->ctx;
  dlog[ndone].result = result;
  dlog[ndone].set_gone = w->set == NULL;
  ndone++;
}

static void setup(void) {
  ndone = 0;
  ck_assert_int_eq(srv_semtab_init(&tab, &lim, on_done, NULL), 0);
}

static void teardown(void) {
  srv_semtab_fini(&tab);
}

static int get(const struct srv_cred *c, int32_t key, int32_t nsems, int32_t flg) {
  return srv_sem_get(&tab, c, key, nsems, flg, NOW);
}

static int ctlv(const struct srv_cred *c, int id, int semnum, int cmd, int val) {
  struct proto_semctl q = {.semid = id, .semnum = semnum, .cmd = cmd, .val = val};
  struct proto_semctl_reply r;
  uint16_t vals[8];
  int ret = srv_sem_ctl(&tab, c, &q, &r, vals, NOW);
  if (ret >= 0)
    ck_assert_int_eq(r.ret, ret);
  return ret;
}

static int val(int id, int n) {
  return ctlv(&root, id, n, GETVAL, 0);
}

static int ncnt(int id, int n) {
  return ctlv(&root, id, n, GETNCNT, 0);
}

static int zcnt(int id, int n) {
  return ctlv(&root, id, n, GETZCNT, 0);
}

static int setall_n(const struct srv_cred *c, int id, const uint16_t *v, uint32_t n) {
  uint8_t buf[2 * 8];
  struct proto_semctl q = {.semid = id, .cmd = SETALL, .nvals = n, .vals = buf};
  struct proto_semctl_reply r;

  for (uint32_t i = 0; i < n; i++)
    proto_put_u16(buf + 2 * i, v[i]);
  return srv_sem_ctl(&tab, c, &q, &r, NULL, NOW);
}

static struct proto_semds stat_of(const struct srv_cred *c, int id) {
  struct proto_semctl q = {.semid = id, .cmd = IPC_STAT};
  struct proto_semctl_reply r;
  ck_assert_int_eq(srv_sem_ctl(&tab, c, &q, &r, NULL, NOW), 0);
  return r.ds;
}

static int set_perm(const struct srv_cred *c, int id, uint32_t uid, uint32_t gid, uint32_t mode) {
  struct proto_semctl q = {.semid = id, .cmd = IPC_SET, .uid = uid, .gid = gid, .mode = mode};
  struct proto_semctl_reply r;
  return srv_sem_ctl(&tab, c, &q, &r, NULL, NOW);
}

/* A semop that must not wait (owner 1). */
static int sop(const struct srv_cred *c, int id, const struct srv_semop_one *s, uint32_t n) {
  struct srv_semwait *w = (void *)1;
  int r = srv_sem_op(&tab, c, 1, id, s, n, NULL, NOW, &w);
  ck_assert_int_ne(r, 1);
  ck_assert_ptr_null(w);
  return r;
}

/* A semop that must wait; its ctx is tag. */
static struct srv_semwait *wop(const struct srv_cred *c, uint32_t owner, int id,
                               const struct srv_semop_one *s, uint32_t n, int tag) {
  struct srv_semwait *w = NULL;
  ck_assert_int_eq(srv_sem_op(&tab, c, owner, id, s, n, NULL, NOW, &w), 1);
  ck_assert_ptr_nonnull(w);
  w->ctx = (void *)(intptr_t)tag;
  return w;
}

static void expect_done(int n, const int *tags, const int *results) {
  ck_assert_int_eq(ndone, n);
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq(dlog[i].tag, tags[i]);
    ck_assert_int_eq(dlog[i].result, results[i]);
  }
}

/* ---- semget ---- */

START_TEST(create_private_fills_ds) {
  int id = get(&alice, IPC_PRIVATE, 3, 0640 | 01000);
  struct proto_semds ds;
  struct srv_semset *s;

  ck_assert_int_ge(id, 0);
  ck_assert_int_ne(id & SRV_ID_TAG, 0);
  ds = stat_of(&alice, id);
  ck_assert_int_eq(ds.key, IPC_PRIVATE);
  ck_assert_uint_eq(ds.uid, 1000);
  ck_assert_uint_eq(ds.cuid, 1000);
  ck_assert_uint_eq(ds.gid, 100);
  ck_assert_uint_eq(ds.cgid, 100);
  ck_assert_uint_eq(ds.mode, 0640); /* semflg & 0777 */
  ck_assert_uint_eq(ds.seq, (uint32_t)id / SRV_IPCMNI);
  ck_assert_uint_eq(ds.nsems, 3);
  ck_assert_int_eq(ds.otime, 0);
  ck_assert_int_eq(ds.ctime, NOW);
  s = srv_sem_lookup(&tab, id);
  ck_assert_ptr_nonnull(s);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(val(id, i), 0);
    ck_assert_int_eq(ctlv(&alice, id, i, GETPID, 0), 0);
  }
  ck_assert_uint_eq(tab.in_use, 1);
  ck_assert_uint_eq(tab.sem_tot, 3);
  ck_assert_int_ne(get(&alice, IPC_PRIVATE, 1, 0600), id); /* two private sets are distinct */
}
END_TEST

START_TEST(get_nsems_einval) {
  ck_assert_int_eq(get(&alice, IPC_PRIVATE, -1, 0600), -EINVAL);
  ck_assert_int_eq(get(&alice, IPC_PRIVATE, 9, 0600), -EINVAL); /* > semmsl */
  ck_assert_int_eq(get(&alice, IPC_PRIVATE, 0, 0600), -EINVAL); /* creating needs one */
  ck_assert_int_eq(get(&alice, 5, 0, IPC_CREAT | 0600), -EINVAL);
  ck_assert_int_eq(get(&alice, 5, 9, 0600), -EINVAL);           /* before the key lookup */
  ck_assert_int_ge(get(&alice, IPC_PRIVATE, 8, 0600), 0);
  ck_assert_uint_eq(tab.in_use, 1);
}
END_TEST

START_TEST(get_existing_key) {
  int id = get(&alice, 1234, 3, IPC_CREAT | 0600);

  ck_assert_int_ge(id, 0);
  ck_assert_int_eq(get(&alice, 1234, 3, 0600), id);
  ck_assert_int_eq(get(&alice, 1234, 0, 0), id);        /* nsems 0: any */
  ck_assert_int_eq(get(&alice, 1234, 2, IPC_CREAT), id);
  ck_assert_int_eq(get(&alice, 1234, 3, IPC_CREAT | IPC_EXCL), -EEXIST);
  ck_assert_int_eq(get(&alice, 1234, 4, 0600), -EINVAL); /* more than it has */
  ck_assert_int_eq(get(&alice, 4321, 3, 0600), -ENOENT);
  ck_assert_int_eq(get(&alice, 4321, 3, IPC_EXCL | 0600), -ENOENT);
  ck_assert_uint_eq(tab.in_use, 1);
}
END_TEST

START_TEST(get_errno_order_follows_kernel) {
  /* ipcget_public: EEXIST first, then sem_more_checks (nsems), then ipcperms. */
  ck_assert_int_ge(get(&alice, 77, 2, IPC_CREAT | 0600), 0);
  ck_assert_int_eq(get(&bob, 77, 9, 0600), -EINVAL);  /* semmsl before anything */
  ck_assert_int_eq(get(&bob, 77, 3, IPC_CREAT | IPC_EXCL | 0600), -EEXIST);
  ck_assert_int_eq(get(&bob, 77, 3, 0600), -EINVAL);
  ck_assert_int_eq(get(&bob, 77, 2, 0600), -EACCES);
}
END_TEST

START_TEST(get_permissions) {
  ck_assert_int_ge(get(&alice, 1, 1, IPC_CREAT | 0640), 0);
  ck_assert_int_ge(get(&alice, 1, 1, 0600), 0);
  ck_assert_int_eq(get(&alice, 1, 1, 0700), -EACCES); /* x not granted */
  ck_assert_int_ge(get(&bob, 1, 1, 0), 0);            /* nothing asked */
  ck_assert_int_eq(get(&bob, 1, 1, 0400), -EACCES);   /* other: --- */
  ck_assert_int_eq(get(&bob, 1, 1, 0004), -EACCES);   /* any class bit */
  ck_assert_int_ge(get(&carol, 1, 1, 0440), 0);       /* group: r-- */
  ck_assert_int_eq(get(&carol, 1, 1, 0660), -EACCES);
  ck_assert_int_ge(get(&root, 1, 1, 0777), 0);        /* root bypasses */

  /* Supplementary groups count; the owner's gid counts as the group too. */
  ck_assert_int_ge(get(&root, 2, 1, IPC_CREAT | 0060), 0);
  ck_assert_int_eq(set_perm(&root, get(&root, 2, 0, 0), 0, 200, 0060), 0);
  ck_assert_int_ge(get(&dave, 2, 1, 0600), 0);
  ck_assert_int_eq(get(&bob, 2, 1, 0400), -EACCES);

  /* The owner class wins even when it grants less than group or other. */
  ck_assert_int_ge(get(&alice, 3, 1, IPC_CREAT | 0066), 0);
  ck_assert_int_eq(get(&alice, 3, 1, 0400), -EACCES);
  ck_assert_int_ge(get(&bob, 3, 1, 0600), 0);
}
END_TEST

START_TEST(semmni_enospc) {
  for (int i = 0; i < 4; i++)
    ck_assert_int_ge(get(&alice, IPC_PRIVATE, 1, 0600), 0);
  ck_assert_int_eq(get(&alice, IPC_PRIVATE, 1, 0600), -ENOSPC);
  ck_assert_int_eq(get(&alice, 99, 1, IPC_CREAT | 0600), -ENOSPC);
  ck_assert_int_eq(get(&alice, 99, 1, 0600), -ENOENT);
  ck_assert_int_eq(get(&alice, IPC_PRIVATE, 0, 0600), -EINVAL); /* nsems 0 comes first */
  ck_assert_uint_eq(tab.in_use, 4);
}
END_TEST

START_TEST(semmns_enospc) {
  int a = get(&alice, IPC_PRIVATE, 8, 0600);

  ck_assert_int_ge(a, 0);
  ck_assert_int_ge(get(&alice, IPC_PRIVATE, 8, 0600), 0);
  ck_assert_int_eq(get(&alice, IPC_PRIVATE, 5, 0600), -ENOSPC); /* 16 + 5 > 20 */
  ck_assert_int_ge(get(&alice, IPC_PRIVATE, 4, 0600), 0);       /* exactly 20 */
  ck_assert_int_eq(get(&alice, IPC_PRIVATE, 1, 0600), -ENOSPC);
  ck_assert_uint_eq(tab.sem_tot, 20);
  ck_assert_int_eq(ctlv(&alice, a, 0, IPC_RMID, 0), 0);
  ck_assert_uint_eq(tab.sem_tot, 12);
  ck_assert_int_ge(get(&alice, IPC_PRIVATE, 8, 0600), 0);
}
END_TEST

START_TEST(semmni_zero_creates_nothing) {
  struct srv_semtab t2;
  struct srv_sem_limits none = lim;

  none.semmni = 0;
  ck_assert_int_eq(srv_semtab_init(&t2, &none, on_done, NULL), 0);
  ck_assert_int_eq(srv_sem_get(&t2, &alice, IPC_PRIVATE, 1, 0600, NOW), -ENOSPC);
  ck_assert_ptr_null(srv_sem_lookup(&t2, 0));
  srv_semtab_fini(&t2);
}
END_TEST

START_TEST(init_checks_limits) {
  struct srv_semtab t2;
  struct srv_sem_limits l = lim;

  l.semmni = SRV_IPCMNI + 1;
  ck_assert_int_eq(srv_semtab_init(&t2, &l, on_done, NULL), -EINVAL);
  l = lim;
  l.semmsl = PROTO_SEMMSL_MAX + 1;
  ck_assert_int_eq(srv_semtab_init(&t2, &l, on_done, NULL), -EINVAL);
  l = lim;
  l.semopm = PROTO_SEMOPM_MAX + 1;
  ck_assert_int_eq(srv_semtab_init(&t2, &l, on_done, NULL), -EINVAL);
}
END_TEST

START_TEST(ids_are_not_reused_at_once) {
  int a = get(&alice, IPC_PRIVATE, 1, 0600);
  int b;

  ck_assert_int_eq(ctlv(&alice, a, 0, IPC_RMID, 0), 0);
  b = get(&alice, IPC_PRIVATE, 1, 0600);
  ck_assert_int_ge(b, 0);
  ck_assert_int_ne(a, b);
  ck_assert_int_eq(a % SRV_IPCMNI, b % SRV_IPCMNI); /* same slot, new sequence */
  ck_assert_ptr_null(srv_sem_lookup(&tab, a));      /* the old id is dead */
  ck_assert_int_eq(val(a, 0), -EINVAL);
  ck_assert_uint_eq(stat_of(&alice, b).seq, (uint32_t)b / SRV_IPCMNI);
  /* A higher index keeps the sequence; a lower one moves it on; it wraps in the tag. */
  ck_assert_int_eq(get(&alice, IPC_PRIVATE, 1, 0600) / SRV_IPCMNI, b / SRV_IPCMNI);
  tab.seq = SRV_SEQ_MAX;
  ck_assert_int_eq(ctlv(&alice, b, 0, IPC_RMID, 0), 0);
  b = get(&alice, IPC_PRIVATE, 1, 0600);
  ck_assert_int_eq(b, (int)(SRV_SEQ_TAG * SRV_IPCMNI)); /* seq 0, index 0 */
  ck_assert_int_ne(b & SRV_ID_TAG, 0);
}
END_TEST

/* ---- semctl ---- */

START_TEST(ctl_bad_ids_and_commands) {
  int id = get(&alice, IPC_PRIVATE, 2, 0600);

  ck_assert_int_eq(ctlv(&alice, -1, 0, IPC_STAT, 0), -EINVAL);
  ck_assert_int_eq(ctlv(&alice, -1, 0, IPC_INFO, 0), -EINVAL); /* the sign first */
  ck_assert_int_eq(ctlv(&alice, id, 0, 99, 0), -EINVAL);
  ck_assert_int_eq(ctlv(&alice, id, 0, -1, 0), -EINVAL);
  ck_assert_int_eq(ctlv(&alice, id + 1, 0, GETVAL, 0), -EINVAL);
  ck_assert_int_eq(ctlv(&alice, id + SRV_IPCMNI, 0, GETVAL, 0), -EINVAL); /* other seq */
  ck_assert_int_eq(ctlv(&alice, id + 1, 0, IPC_RMID, 0), -EINVAL);
  ck_assert_int_eq(ctlv(&alice, id + 1, 0, SETALL, 0), -EINVAL);
  ck_assert_int_eq(ctlv(&alice, id, 0, GETVAL | 0x100, 0), 0); /* glibc's IPC_64 */
  ck_assert_int_eq(ctlv(&alice, id, 0, SETVAL | 0x100, 3), 0);
  ck_assert_int_eq(val(id, 0), 3);
}
END_TEST

START_TEST(ctl_semnum_range) {
  int id = get(&alice, IPC_PRIVATE, 2, 0600);

  for (int cmd = GETPID; cmd <= SETVAL; cmd++) {
    if (cmd == GETALL)
      continue;
    ck_assert_int_eq(ctlv(&alice, id, 2, cmd, 0), -EINVAL);
    ck_assert_int_eq(ctlv(&alice, id, -1, cmd, 0), -EINVAL);
    ck_assert_int_ge(ctlv(&alice, id, 1, cmd, 0), 0);
  }
  /* GETALL and the set-wide commands ignore semnum. */
  ck_assert_int_eq(ctlv(&alice, id, 7, GETALL, 0), 0);
  ck_assert_int_eq(ctlv(&alice, id, -7, IPC_STAT, 0), 0);
}
END_TEST

START_TEST(ctl_permission_order) {
  int id = get(&alice, IPC_PRIVATE, 2, 0640);

  /* semctl_main: read permission before semnum. */
  ck_assert_int_eq(ctlv(&bob, id, 5, GETVAL, 0), -EACCES);
  ck_assert_int_eq(ctlv(&bob, id, 0, GETPID, 0), -EACCES);
  ck_assert_int_eq(ctlv(&bob, id, 0, GETNCNT, 0), -EACCES);
  ck_assert_int_eq(ctlv(&bob, id, 0, GETZCNT, 0), -EACCES);
  ck_assert_int_eq(ctlv(&bob, id, 0, GETALL, 0), -EACCES);
  ck_assert_int_eq(ctlv(&bob, id, 0, IPC_STAT, 0), -EACCES);
  /* semctl_setval: range, id, semnum, then alter permission. */
  ck_assert_int_eq(ctlv(&carol, id, 5, SETVAL, 1), -EINVAL);
  ck_assert_int_eq(ctlv(&carol, id, 0, SETVAL, 1), -EACCES);
  ck_assert_int_eq(ctlv(&carol, id, 0, SETVAL, -1), -ERANGE);
  ck_assert_int_eq(ctlv(&carol, id + 1, 0, SETVAL, 32768), -ERANGE);
  ck_assert_int_eq(setall_n(&carol, id, (uint16_t[]){1, 1}, 2), -EACCES);
  ck_assert_int_eq(setall_n(&carol, id, (uint16_t[]){1, 40000}, 2), -EACCES);
  /* The group may read. */
  ck_assert_int_eq(ctlv(&carol, id, 1, GETVAL, 0), 0);
  ck_assert_int_eq(ctlv(&carol, id, 0, GETALL, 0), 0);
  /* Root bypasses; the owner's mode bits bind the owner. */
  ck_assert_int_eq(ctlv(&root, id, 0, SETVAL, 1), 0);
  ck_assert_int_eq(set_perm(&alice, id, 1000, 100, 0200), 0);
  ck_assert_int_eq(ctlv(&alice, id, 0, GETVAL, 0), -EACCES);
  ck_assert_int_eq(ctlv(&alice, id, 0, SETVAL, 2), 0);
}
END_TEST

START_TEST(setval_getval_getpid) {
  int id = get(&alice, IPC_PRIVATE, 3, 0666);
  struct proto_semds ds;

  ck_assert_int_eq(ctlv(&bob, id, 1, SETVAL, 32767), 0);
  ck_assert_int_eq(ctlv(&bob, id, 2, SETVAL, 0), 0);
  ck_assert_int_eq(ctlv(&alice, id, 1, SETVAL, 32768), -ERANGE);
  ck_assert_int_eq(val(id, 1), 32767);
  ck_assert_int_eq(ctlv(&alice, id, 1, GETPID, 0), 22);
  ck_assert_int_eq(ctlv(&alice, id, 2, GETPID, 0), 22);
  ck_assert_int_eq(ctlv(&alice, id, 0, GETPID, 0), 0);
  ds = stat_of(&alice, id);
  ck_assert_int_eq(ds.otime, 0); /* semctl is no semop */
  ck_assert_int_eq(ds.ctime, NOW);
}
END_TEST

START_TEST(setall_getall) {
  int id = get(&alice, IPC_PRIVATE, 3, 0600);
  struct proto_semctl q = {.semid = id, .cmd = GETALL};
  struct proto_semctl_reply r;
  uint16_t vals[8] = {0};

  ck_assert_int_eq(setall_n(&alice, id, (uint16_t[]){1, 32767, 5}, 3), 0);
  ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, vals, NOW), 0);
  ck_assert_uint_eq(r.nvals, 3);
  ck_assert_ptr_null(r.vals);
  ck_assert_uint_eq(vals[0], 1);
  ck_assert_uint_eq(vals[1], 32767);
  ck_assert_uint_eq(vals[2], 5);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(ctlv(&alice, id, i, GETPID, 0), 11);
  /* All or nothing: one value out of range changes none. */
  ck_assert_int_eq(setall_n(&alice, id, (uint16_t[]){7, 7, 32768}, 3), -ERANGE);
  ck_assert_int_eq(val(id, 0), 1);
  /* Exactly nsems values. */
  ck_assert_int_eq(setall_n(&alice, id, (uint16_t[]){7, 7}, 2), -EINVAL);
  ck_assert_int_eq(setall_n(&alice, id, (uint16_t[]){7, 7, 7, 7}, 4), -EINVAL);
  ck_assert_int_eq(val(id, 0), 1);
}
END_TEST

START_TEST(ipc_set_and_rmid_permissions) {
  int id = get(&alice, IPC_PRIVATE, 1, 0666);
  struct proto_semds ds;

  ck_assert_int_eq(set_perm(&bob, id, 2000, 2000, 0666), -EPERM); /* rw for all: not enough */
  ck_assert_int_eq(ctlv(&bob, id, 0, IPC_RMID, 0), -EPERM);
  ck_assert_int_eq(set_perm(&alice, id, UINT32_MAX, 100, 0666), -EINVAL);
  ck_assert_int_eq(set_perm(&bob, id, UINT32_MAX, 100, 0666), -EPERM); /* EPERM first */
  ck_assert_int_eq(set_perm(&alice, id, 2000, 2001, 07777), 0);
  ds = stat_of(&alice, id); /* alice is still the creator */
  ck_assert_uint_eq(ds.uid, 2000);
  ck_assert_uint_eq(ds.gid, 2001);
  ck_assert_uint_eq(ds.cuid, 1000);
  ck_assert_uint_eq(ds.cgid, 100);
  ck_assert_uint_eq(ds.mode, 0777);
  ck_assert_int_eq(set_perm(&bob, id, 2000, 2000, 0400), 0); /* bob owns it now */
  ck_assert_uint_eq(stat_of(&bob, id).mode, 0400);
  ck_assert_int_eq(ctlv(&carol, id, 0, IPC_RMID, 0), -EPERM);
  ck_assert_int_eq(ctlv(&alice, id, 0, IPC_RMID, 0), 0);      /* the creator may */
  ck_assert_int_eq(ctlv(&alice, id, 0, IPC_STAT, 0), -EINVAL);
  ck_assert_uint_eq(tab.in_use, 0);
  ck_assert_uint_eq(tab.sem_tot, 0);
  id = get(&alice, IPC_PRIVATE, 1, 0600);
  ck_assert_int_eq(ctlv(&root, id, 0, IPC_RMID, 0), 0);
  /* The key is free at once. */
  id = get(&alice, 55, 1, IPC_CREAT | 0600);
  ck_assert_int_eq(ctlv(&alice, id, 0, IPC_RMID, 0), 0);
  ck_assert_int_eq(get(&alice, 55, 1, 0600), -ENOENT);
}
END_TEST

START_TEST(ipc_set_moves_ctime) {
  struct proto_semctl q;
  struct proto_semctl_reply r;
  int id = get(&alice, IPC_PRIVATE, 1, 0600);

  q = (struct proto_semctl){.semid = id, .cmd = IPC_SET, .uid = 1000, .gid = 100, .mode = 0644};
  ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW + 5), 0);
  ck_assert_int_eq(stat_of(&alice, id).ctime, NOW + 5);
  q = (struct proto_semctl){.semid = id, .cmd = SETVAL, .val = 1};
  ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW + 7), 0);
  ck_assert_int_eq(stat_of(&alice, id).ctime, NOW + 7);
  q = (struct proto_semctl){.semid = id, .cmd = GETVAL};
  ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW + 9), 1);
  ck_assert_int_eq(stat_of(&alice, id).ctime, NOW + 7);
}
END_TEST

START_TEST(info_commands) {
  struct proto_semctl q = {.semid = 0, .cmd = IPC_INFO};
  struct proto_semctl_reply r;
  int a, b;

  ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW), 0); /* empty: 0 */
  ck_assert_int_eq(r.info.semmni, 4);
  ck_assert_int_eq(r.info.semmns, 20);
  ck_assert_int_eq(r.info.semmsl, 8);
  ck_assert_int_eq(r.info.semopm, 10);
  ck_assert_int_eq(r.info.semvmx, 32767);
  ck_assert_int_eq(r.info.semmnu, 1024000000);
  ck_assert_int_eq(r.info.semmap, 1024000000);
  ck_assert_int_eq(r.info.semume, 500);
  ck_assert_int_eq(r.info.semusz, 20);
  ck_assert_int_eq(r.info.semaem, 32767);
  a = get(&alice, IPC_PRIVATE, 3, 0600);
  b = get(&alice, IPC_PRIVATE, 2, 0600);
  q.cmd = SEM_INFO;
  q.semid = 12345; /* ignored */
  ck_assert_int_eq(srv_sem_ctl(&tab, &bob, &q, &r, NULL, NOW), b % SRV_IPCMNI);
  ck_assert_int_eq(r.ret, 1);
  ck_assert_int_eq(r.info.semusz, 2);
  ck_assert_int_eq(r.info.semaem, 5);
  ck_assert_int_eq(r.info.semmni, 4);
  ck_assert_int_eq(ctlv(&alice, a, 0, IPC_RMID, 0), 0);
  ck_assert_int_eq(srv_sem_ctl(&tab, &bob, &q, &r, NULL, NOW), 1); /* highest index */
  ck_assert_int_eq(r.info.semusz, 1);
}
END_TEST

START_TEST(sem_stat_by_index) {
  int a = get(&alice, IPC_PRIVATE, 2, 0600);
  int b = get(&alice, 9, 3, IPC_CREAT | 0200);
  struct proto_semctl q = {.semid = 1, .cmd = SEM_STAT};
  struct proto_semctl_reply r;

  ck_assert_int_eq(b % SRV_IPCMNI, 1);
  ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW), -EACCES);
  q.cmd = SEM_STAT_ANY;
  ck_assert_int_eq(srv_sem_ctl(&tab, &bob, &q, &r, NULL, NOW), b);
  ck_assert_int_eq(r.ret, b);
  ck_assert_int_eq(r.ds.key, 9);
  ck_assert_uint_eq(r.ds.nsems, 3);
  q.cmd = SEM_STAT;
  q.semid = 0;
  ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW), a);
  q.semid = a; /* an id works too: Linux masks it to its index */
  ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW), a);
  q.semid = 2;
  ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW), -EINVAL);
  q.semid = 7; /* beyond the table */
  q.cmd = SEM_STAT_ANY;
  ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW), -EINVAL);
  q.cmd = IPC_STAT;
  q.semid = 1; /* IPC_STAT wants an id */
  ck_assert_int_eq(srv_sem_ctl(&tab, &root, &q, &r, NULL, NOW), -EINVAL);
}
END_TEST

/* ---- semop: checks and application ---- */

START_TEST(semop_errno_order) {
  int id = get(&alice, IPC_PRIVATE, 2, 0644);
  struct srv_semop_one many[11] = {{0}};
  struct srv_semwait *w;
  int64_t bad_sec[2] = {-1, 0}, bad_nsec[2] = {0, 1000000000}, neg_nsec[2] = {0, -1};
  int64_t ok_ts[2] = {0, 999999999};

  ck_assert_int_eq(srv_sem_op(&tab, &alice, 1, -1, many, 11, NULL, NOW, &w), -E2BIG);
  ck_assert_int_eq(srv_sem_op(&tab, &alice, 1, id, many, 0, NULL, NOW, &w), -EINVAL);
  ck_assert_int_eq(srv_sem_op(&tab, &alice, 1, -1, many, 1, NULL, NOW, &w), -EINVAL);
  ck_assert_int_eq(srv_sem_op(&tab, &alice, 1, id, many, 1, bad_sec, NOW, &w), -EINVAL);
  ck_assert_int_eq(srv_sem_op(&tab, &alice, 1, id, many, 1, bad_nsec, NOW, &w), -EINVAL);
  ck_assert_int_eq(srv_sem_op(&tab, &alice, 1, id, many, 1, neg_nsec, NOW, &w), -EINVAL);
  ck_assert_int_eq(srv_sem_op(&tab, &alice, 1, id, many, 1, ok_ts, NOW, &w), 0);
  ck_assert_int_eq(srv_sem_op(&tab, &alice, 1, id, many, 10, ok_ts, NOW, &w), 0);
  ck_assert_int_eq(sop(&alice, id + 1, OPS({0, 0, 0})), -EINVAL);
  ck_assert_int_eq(sop(&alice, id + 1, OPS({0, 0, UN})), -EINVAL);
  /* EFBIG before EACCES; alter needs w, waiting for zero needs r. */
  ck_assert_int_eq(sop(&bob, id, OPS({0, 1, 0}, {2, 0, 0})), -EFBIG);
  ck_assert_int_eq(sop(&bob, id, OPS({0, 1, 0})), -EACCES);
  ck_assert_int_eq(sop(&bob, id, OPS({0, 0, NW}, {1, 0, 0})), 0);
  ck_assert_int_eq(sop(&bob, id, OPS({0, 0, 0}, {1, -1, NW})), -EACCES);
  ck_assert_int_eq(set_perm(&alice, id, 1000, 100, 0602), 0);
  ck_assert_int_eq(sop(&bob, id, OPS({0, 0, 0})), -EACCES);
  ck_assert_int_eq(sop(&bob, id, OPS({0, 1, 0})), 0);
  ck_assert_int_eq(val(id, 0), 1);
}
END_TEST

START_TEST(semop_applies_atomically) {
  int id = get(&alice, IPC_PRIVATE, 3, 0600);
  struct proto_semds ds;

  ck_assert_int_eq(sop(&alice, id, OPS({0, 2, 0}, {1, 5, 0})), 0);
  ck_assert_int_eq(val(id, 0), 2);
  ck_assert_int_eq(val(id, 1), 5);
  ds = stat_of(&alice, id);
  ck_assert_int_eq(ds.otime, NOW);
  /* One operation that cannot go changes nothing. */
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, 0}, {1, -1, 0}, {2, -1, NW})), -EAGAIN);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, 0}, {1, 32763, 0})), -ERANGE);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, 0}, {2, 0, 0}, {1, 0, NW})), -EAGAIN);
  ck_assert_int_eq(val(id, 0), 2);
  ck_assert_int_eq(val(id, 1), 5);
  ck_assert_int_eq(val(id, 2), 0);
  /* sempid: every semaphore named, a wait-for-zero one too. */
  ck_assert_int_eq(sop(&bob, id, OPS({2, 0, 0})), -EACCES);
  ck_assert_int_eq(set_perm(&alice, id, 1000, 100, 0666), 0);
  ck_assert_int_eq(sop(&bob, id, OPS({2, 0, 0}, {0, -1, 0})), 0);
  ck_assert_int_eq(ctlv(&alice, id, 2, GETPID, 0), 22);
  ck_assert_int_eq(ctlv(&alice, id, 0, GETPID, 0), 22);
  ck_assert_int_eq(ctlv(&alice, id, 1, GETPID, 0), 11);
  /* The largest value, and one more. */
  ck_assert_int_eq(sop(&alice, id, OPS({2, 32767, 0})), 0);
  ck_assert_int_eq(sop(&alice, id, OPS({2, 1, NW})), -ERANGE);
  ck_assert_int_eq(val(id, 2), 32767);
}
END_TEST

START_TEST(semop_operations_run_in_order) {
  int id = get(&alice, IPC_PRIVATE, 2, 0600);

  /* Each operation sees what the ones before it left (the kernel's "dupsop" path). */
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, 0}, {0, -1, 0})), 0);
  ck_assert_int_eq(sop(&alice, id, OPS({0, -1, NW}, {0, 1, 0})), -EAGAIN);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 2, 0}, {0, -1, 0}, {0, -1, 0}, {0, 0, 0})), 0);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, 0}, {0, 0, NW})), -EAGAIN);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 32767, 0}, {0, -1, 0}, {0, 1, 0})), 0);
  ck_assert_int_eq(val(id, 0), 32767);
  ck_assert_int_eq(sop(&alice, id, OPS({0, -1, 0}, {0, 1, 0}, {0, 1, 0})), -ERANGE);
  ck_assert_int_eq(val(id, 0), 32767);
}
END_TEST

START_TEST(semop_undo_range) {
  int id = get(&alice, IPC_PRIVATE, 1, 0600);

  /* semadj -= sem_op, within [-(SEMAEM + 1), SEMAEM]. */
  ck_assert_int_eq(sop(&alice, id, OPS({0, 32767, UN})), 0);  /* semadj -32767 */
  ck_assert_int_eq(sop(&alice, id, OPS({0, -32767, 0})), 0);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, UN})), 0);      /* -32768 */
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, UN})), -ERANGE); /* -32769 */
  ck_assert_int_eq(val(id, 0), 1);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, 0})), 0);        /* others: no record limit */
  ck_assert_int_eq(sop(&bob, id, OPS({0, 1, UN})), -EACCES);
  /* The other bound, for another process. */
  ck_assert_int_eq(sop(&root, id, OPS({0, 32765, 0})), 0);     /* 32767 */
  ck_assert_int_eq(sop(&root, id, OPS({0, -32767, UN})), 0);   /* semadj 32767 */
  ck_assert_int_eq(sop(&root, id, OPS({0, 32767, 0})), 0);
  ck_assert_int_eq(sop(&root, id, OPS({0, -1, UN})), -ERANGE); /* 32768 */
  ck_assert_int_eq(sop(&root, id, OPS({0, -1, 0}, {0, -1, UN})), -ERANGE);
  ck_assert_int_eq(val(id, 0), 32767);
}
END_TEST

/* ---- blocked semops ---- */

START_TEST(waiters_complete_in_kernel_order) {
  int id = get(&alice, IPC_PRIVATE, 3, 0600);

  wop(&alice, 1, id, OPS({0, -2, 0}), 1);
  wop(&alice, 1, id, OPS({0, -1, 0}), 2);
  ck_assert_int_eq(ctlv(&alice, id, 1, SETVAL, 1), 0);
  wop(&alice, 1, id, OPS({1, 0, 0}), 3);
  ck_assert_int_eq(ndone, 0);
  ck_assert_int_eq(ncnt(id, 0), 2);
  ck_assert_int_eq(zcnt(id, 1), 1);
  /* sem1 reaches 0: its wait-for-zero first; then sem0's queue: 1 needs 2, 2 goes (no
   * starvation protection, as in Linux). */
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, 0}, {1, -1, 0})), 0);
  expect_done(2, (int[]){3, 2}, (int[]){0, 0});
  ck_assert_int_eq(val(id, 0), 0);
  ck_assert_int_eq(ncnt(id, 0), 1);
  ck_assert_int_eq(zcnt(id, 1), 0);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 3, 0})), 0);
  expect_done(3, (int[]){3, 2, 1}, (int[]){0, 0, 0});
  ck_assert_int_eq(val(id, 0), 1);
  ck_assert_int_eq(ncnt(id, 0), 0);
}
END_TEST

START_TEST(completed_waiters_set_pid_and_otime) {
  int id = get(&alice, IPC_PRIVATE, 2, 0666);
  struct srv_semop_one one = {0, 1, 0};
  struct srv_semwait *w;

  wop(&bob, 2, id, OPS({0, -1, 0}, {1, 0, 0}), 1);
  ck_assert_int_eq(stat_of(&alice, id).otime, 0);
  ck_assert_int_eq(srv_sem_op(&tab, &alice, 1, id, &one, 1, NULL, NOW + 3, &w), 0);
  expect_done(1, (int[]){1}, (int[]){0});
  ck_assert_int_eq(ctlv(&alice, id, 0, GETPID, 0), 22); /* the waiter's pid */
  ck_assert_int_eq(ctlv(&alice, id, 1, GETPID, 0), 22);
  ck_assert_int_eq(stat_of(&alice, id).otime, NOW + 3);
  /* A SETVAL that completes a waiter moves otime; one that does not, does not. */
  wop(&bob, 2, id, OPS({1, -1, 0}), 2);
  {
    struct proto_semctl q = {.semid = id, .semnum = 0, .cmd = SETVAL, .val = 4};
    struct proto_semctl_reply r;
    ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW + 5), 0);
    ck_assert_int_eq(stat_of(&alice, id).otime, NOW + 3);
    q.semnum = 1;
    ck_assert_int_eq(srv_sem_ctl(&tab, &alice, &q, &r, NULL, NOW + 6), 0);
    ck_assert_int_eq(stat_of(&alice, id).otime, NOW + 6);
  }
  expect_done(2, (int[]){1, 2}, (int[]){0, 0});
  ck_assert_int_eq(val(id, 1), 3);
}
END_TEST

START_TEST(complex_completion_rescans_the_queue) {
  int id = get(&alice, IPC_PRIVATE, 2, 0600);

  wop(&alice, 1, id, OPS({0, -1, 0}), 1);
  wop(&alice, 1, id, OPS({1, -1, 0}, {0, 1, 0}), 2);
  /* 2 runs and gives sem0 the unit that 1 (older, already passed over) waits for. */
  ck_assert_int_eq(sop(&alice, id, OPS({1, 1, 0})), 0);
  expect_done(2, (int[]){2, 1}, (int[]){0, 0});
  ck_assert_int_eq(val(id, 0), 0);
  ck_assert_int_eq(val(id, 1), 0);
}
END_TEST

START_TEST(merged_queue_order) {
  int id = get(&alice, IPC_PRIVATE, 2, 0600);

  /* When a complex semop must wait the kernel merges the per-semaphore queues, the highest
   * semaphore's first: 2, 1, then 3. */
  wop(&alice, 1, id, OPS({0, -1, 0}), 1);
  wop(&alice, 1, id, OPS({1, -1, 0}), 2);
  wop(&alice, 1, id, OPS({0, -1, 0}, {1, -1, 0}), 3);
  ck_assert_int_eq(setall_n(&alice, id, (uint16_t[]){1, 1}, 2), 0);
  expect_done(2, (int[]){2, 1}, (int[]){0, 0});
  ck_assert_int_eq(ncnt(id, 0), 1);
  ck_assert_int_eq(setall_n(&alice, id, (uint16_t[]){1, 1}, 2), 0);
  expect_done(3, (int[]){2, 1, 3}, (int[]){0, 0, 0});
}
END_TEST

START_TEST(ncnt_zcnt_follow_the_blocking_operation) {
  int id = get(&alice, IPC_PRIVATE, 3, 0600);

  wop(&alice, 1, id, OPS({0, -1, 0}, {1, -1, 0}), 1);
  ck_assert_int_eq(ncnt(id, 0), 1);
  ck_assert_int_eq(ncnt(id, 1), 0);
  wop(&alice, 1, id, OPS({1, -1, 0}), 2);
  ck_assert_int_eq(ncnt(id, 1), 1);
  ck_assert_int_eq(ctlv(&alice, id, 2, SETVAL, 1), 0);
  wop(&alice, 1, id, OPS({2, 0, 0}), 3);
  wop(&alice, 1, id, OPS({2, 0, 0}, {0, 0, 0}), 4);
  ck_assert_int_eq(zcnt(id, 2), 2);
  ck_assert_int_eq(zcnt(id, 0), 0);
  /* sem0 goes to 1: the first waits on sem1 now. */
  ck_assert_int_eq(ctlv(&alice, id, 0, SETVAL, 1), 0);
  ck_assert_int_eq(ndone, 0);
  ck_assert_int_eq(ncnt(id, 0), 0);
  ck_assert_int_eq(ncnt(id, 1), 2);
  /* sem2 goes to 0: 3 completes; 4 now waits for sem0 to be 0. */
  ck_assert_int_eq(sop(&alice, id, OPS({2, -1, 0})), 0);
  expect_done(1, (int[]){3}, (int[]){0});
  ck_assert_int_eq(zcnt(id, 2), 0);
  ck_assert_int_eq(zcnt(id, 0), 1);
  ck_assert_int_eq(ncnt(id, 2), 0);
}
END_TEST

START_TEST(retried_waiters_can_fail) {
  int id = get(&alice, IPC_PRIVATE, 3, 0600);

  /* IPC_NOWAIT on the operation it now blocks on: EAGAIN; a value out of range: ERANGE. */
  wop(&alice, 1, id, OPS({0, -1, 0}, {1, -1, NW}), 1);
  wop(&alice, 1, id, OPS({2, -1, 0}, {1, 32767, 0}), 2);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, 0})), 0);
  expect_done(1, (int[]){1}, (int[]){-EAGAIN});
  ck_assert_int_eq(val(id, 0), 1); /* nothing of it stayed */
  ck_assert_int_eq(ctlv(&alice, id, 1, SETVAL, 1), 0);
  ck_assert_int_eq(ctlv(&alice, id, 2, SETVAL, 1), 0);
  expect_done(2, (int[]){1, 2}, (int[]){-EAGAIN, -ERANGE});
  ck_assert_int_eq(val(id, 2), 1);
  ck_assert_int_eq(ncnt(id, 2), 0);
}
END_TEST

START_TEST(rmid_ends_waiters_with_eidrm) {
  int id = get(&alice, IPC_PRIVATE, 2, 0600);
  int other = get(&alice, IPC_PRIVATE, 1, 0600);

  ck_assert_int_eq(ctlv(&alice, id, 1, SETVAL, 1), 0);
  wop(&alice, 1, id, OPS({0, -1, UN}), 1);
  wop(&alice, 1, id, OPS({1, 0, 0}), 2);
  wop(&alice, 1, other, OPS({0, -1, 0}), 9);
  wop(&alice, 1, id, OPS({0, -1, 0}, {1, -1, 0}), 3);
  wop(&alice, 1, id, OPS({0, 0, 0}, {1, 0, 0}), 4);
  ck_assert_int_eq(ctlv(&bob, id, 0, IPC_RMID, 0), -EPERM);
  ck_assert_int_eq(ndone, 0);
  ck_assert_int_eq(ctlv(&alice, id, 0, IPC_RMID, 0), 0);
  /* freeary's order: complex wait-for-zero, pending_alter (merged), then per semaphore. */
  expect_done(4, (int[]){4, 1, 3, 2}, (int[]){-EIDRM, -EIDRM, -EIDRM, -EIDRM});
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(dlog[i].set_gone, 1);
  ck_assert_int_eq(ncnt(other, 0), 1);
  ck_assert_int_eq(sop(&alice, other, OPS({0, 1, 0})), 0);
  ck_assert_int_eq(ndone, 5);
  ck_assert_int_eq(dlog[4].tag, 9);
  ck_assert_int_eq(dlog[4].set_gone, 0);
}
END_TEST

START_TEST(cancel_takes_a_waiter_off) {
  int id = get(&alice, IPC_PRIVATE, 2, 0600);
  struct srv_semwait *a, *b, *c;

  a = wop(&alice, 1, id, OPS({0, -1, 0}), 1);
  b = wop(&alice, 1, id, OPS({0, -1, 0}, {1, -1, 0}), 2);
  c = wop(&alice, 1, id, OPS({0, -1, 0}), 3);
  ck_assert_int_eq(ncnt(id, 0), 3);
  srv_sem_cancel(&tab, a);
  srv_sem_cancel(&tab, b);
  ck_assert_int_eq(ncnt(id, 0), 1);
  ck_assert_int_eq(ncnt(id, 1), 0);
  ck_assert_int_eq(ndone, 0);
  wop(&alice, 1, id, OPS({0, -1, 0}), 4);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, 0})), 0);
  expect_done(1, (int[]){3}, (int[]){0});
  c = wop(&alice, 1, id, OPS({1, -1, 0}, {0, 0, 0}), 5);
  srv_sem_cancel(&tab, c);
  ck_assert_int_eq(ctlv(&alice, id, 0, IPC_RMID, 0), 0);
  expect_done(2, (int[]){3, 4}, (int[]){0, -EIDRM});
}
END_TEST

/* ---- SEM_UNDO and exit ---- */

START_TEST(exit_applies_and_clamps_undo) {
  int id = get(&alice, IPC_PRIVATE, 4, 0666);
  struct proto_semds ds;

  ck_assert_int_eq(ctlv(&alice, id, 1, SETVAL, 5), 0);
  ck_assert_int_eq(ctlv(&alice, id, 3, SETVAL, 1), 0);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 3, UN}, {1, -1, UN}, {2, 5, UN})), 0);
  ck_assert_int_eq(sop(&alice, id, OPS({3, -1, UN})), 0);
  ck_assert_int_eq(sop(&bob, id, OPS({2, -4, 0}, {3, 32767, 0})), 0);
  ck_assert_int_eq(sop(&bob, id, OPS({0, 1, UN})), 0);
  srv_sem_exit(&tab, 1, 11, NOW + 9);
  ck_assert_int_eq(val(id, 0), 1);     /* 4 - 3 */
  ck_assert_int_eq(val(id, 1), 5);     /* 4 + 1 */
  ck_assert_int_eq(val(id, 2), 0);     /* 1 - 5, clamped */
  ck_assert_int_eq(val(id, 3), 32767); /* 32767 + 1, clamped */
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(ctlv(&alice, id, i, GETPID, 0), 11);
  ds = stat_of(&alice, id);
  ck_assert_int_eq(ds.otime, NOW + 9);
  /* Its records are gone; bob's stays. */
  srv_sem_exit(&tab, 1, 11, NOW + 10);
  ck_assert_int_eq(val(id, 0), 1);
  srv_sem_exit(&tab, 1, 22, NOW + 11);
  ck_assert_int_eq(val(id, 0), 0);
  ck_assert_int_eq(ctlv(&alice, id, 0, GETPID, 0), 22);
  ck_assert_int_eq(ctlv(&alice, id, 1, GETPID, 0), 11); /* no adjustment: untouched */
  ck_assert_ptr_null(TAILQ_FIRST(&tab.undo));
}
END_TEST

START_TEST(exit_moves_otime_even_without_adjustment) {
  int id = get(&alice, IPC_PRIVATE, 1, 0600);

  /* A failed SEM_UNDO semop leaves a record of zeros, as the kernel does. */
  ck_assert_int_eq(sop(&alice, id, OPS({0, -1, UN | NW})), -EAGAIN);
  ck_assert_int_eq(stat_of(&alice, id).otime, 0);
  srv_sem_exit(&tab, 1, 11, NOW + 4);
  ck_assert_int_eq(stat_of(&alice, id).otime, NOW + 4);
  ck_assert_int_eq(ctlv(&alice, id, 0, GETPID, 0), 0);
  srv_sem_exit(&tab, 1, 22, NOW + 8); /* no record: nothing */
  ck_assert_int_eq(stat_of(&alice, id).otime, NOW + 4);
}
END_TEST

START_TEST(exit_wakes_waiters) {
  int id = get(&alice, IPC_PRIVATE, 2, 0666);

  ck_assert_int_eq(sop(&alice, id, OPS({0, 2, UN}, {1, 1, 0})), 0);
  wop(&bob, 1, id, OPS({0, 0, 0}), 1);
  wop(&bob, 1, id, OPS({1, -2, 0}), 2);
  srv_sem_exit(&tab, 1, 11, NOW);
  expect_done(1, (int[]){1}, (int[]){0});
  ck_assert_int_eq(ncnt(id, 1), 1);
}
END_TEST

START_TEST(setval_and_setall_clear_undo) {
  int id = get(&alice, IPC_PRIVATE, 3, 0600);

  ck_assert_int_eq(sop(&alice, id, OPS({0, 2, UN}, {1, 2, UN}, {2, 2, UN})), 0);
  ck_assert_int_eq(ctlv(&root, id, 0, SETVAL, 5), 0);
  srv_sem_exit(&tab, 1, 11, NOW);
  ck_assert_int_eq(val(id, 0), 5);
  ck_assert_int_eq(val(id, 1), 0);
  ck_assert_int_eq(ctlv(&root, id, 0, GETPID, 0), 1);
  ck_assert_int_eq(sop(&alice, id, OPS({0, 2, UN}, {1, 2, UN}, {2, 1, UN})), 0);
  ck_assert_int_eq(setall_n(&root, id, (uint16_t[]){3, 3, 3}, 3), 0);
  srv_sem_exit(&tab, 1, 11, NOW);
  ck_assert_int_eq(val(id, 0), 3);
  ck_assert_int_eq(val(id, 1), 3);
  ck_assert_int_eq(val(id, 2), 3);
}
END_TEST

START_TEST(queued_undo_counts_when_it_completes) {
  int id = get(&alice, IPC_PRIVATE, 1, 0666);

  wop(&alice, 1, id, OPS({0, -1, UN}), 1);
  srv_sem_exit(&tab, 1, 11, NOW); /* nothing applied yet: a record of zeros */
  expect_done(1, (int[]){1}, (int[]){-EINTR}); /* the process is gone */
  wop(&alice, 1, id, OPS({0, -1, UN}), 2);
  ck_assert_int_eq(sop(&bob, id, OPS({0, 2, 0})), 0);
  expect_done(2, (int[]){1, 2}, (int[]){-EINTR, 0});
  ck_assert_int_eq(val(id, 0), 1);
  srv_sem_exit(&tab, 1, 11, NOW);
  ck_assert_int_eq(val(id, 0), 2);
}
END_TEST

START_TEST(exit_skips_removed_sets) {
  int a = get(&alice, IPC_PRIVATE, 1, 0600);
  int b = get(&alice, IPC_PRIVATE, 1, 0600);

  ck_assert_int_eq(sop(&alice, a, OPS({0, 1, UN})), 0);
  ck_assert_int_eq(sop(&alice, b, OPS({0, 1, UN})), 0);
  ck_assert_int_eq(ctlv(&alice, a, 0, IPC_RMID, 0), 0);
  a = get(&alice, IPC_PRIVATE, 1, 0600); /* the same slot again */
  ck_assert_int_eq(sop(&alice, a, OPS({0, 3, 0})), 0);
  srv_sem_exit(&tab, 1, 11, NOW);
  ck_assert_int_eq(val(a, 0), 3);
  ck_assert_int_eq(val(b, 0), 0);
}
END_TEST

START_TEST(owner_gone_exits_its_processes) {
  int id = get(&alice, IPC_PRIVATE, 3, 0666);
  struct srv_semwait *w;
  const struct srv_semop_one up0 = {0, 1, UN}, up1 = {1, 1, UN}, up2 = {2, 1, UN};
  const struct srv_cred p100 = {.pid = 100, .uid = 1000, .gid = 100};
  const struct srv_cred p101 = {.pid = 101, .uid = 1000, .gid = 100};

  ck_assert_int_eq(srv_sem_op(&tab, &p100, 7, id, &up0, 1, NULL, NOW, &w), 0);
  ck_assert_int_eq(srv_sem_op(&tab, &p101, 7, id, &up1, 1, NULL, NOW, &w), 0);
  ck_assert_int_eq(srv_sem_op(&tab, &p100, 8, id, &up2, 1, NULL, NOW, &w), 0); /* other host */
  srv_sem_owner_gone(&tab, 7, NOW);
  ck_assert_int_eq(val(id, 0), 0);
  ck_assert_int_eq(val(id, 1), 0);
  ck_assert_int_eq(val(id, 2), 1);
  srv_sem_owner_gone(&tab, 8, NOW);
  ck_assert_int_eq(val(id, 2), 0);
  ck_assert_ptr_null(TAILQ_FIRST(&tab.undo));
}
END_TEST

START_TEST(rmid_drops_undo_records) {
  int id = get(&alice, IPC_PRIVATE, 1, 0600);

  ck_assert_int_eq(sop(&alice, id, OPS({0, 1, UN})), 0);
  ck_assert_ptr_nonnull(TAILQ_FIRST(&tab.undo));
  ck_assert_int_eq(ctlv(&alice, id, 0, IPC_RMID, 0), 0);
  ck_assert_ptr_null(TAILQ_FIRST(&tab.undo));
}
END_TEST

/* ---- the done callback calling back in ---- */

static struct srv_semtab *cb_tab;
static struct srv_semwait *cb_victim;
static int cb_id;

static void reentrant_done(void *arg, struct srv_semwait *w, int result) {
  struct srv_semwait *nw;
  struct srv_semop_one up = {1, 1, 0};

  on_done(arg, w, result);
  if ((intptr_t)w->ctx == 1) {
    srv_sem_cancel(cb_tab, cb_victim); /* its done call is due: dropped */
    /* A nested semop that lets 3 run: its done call comes from the outer loop. */
    ck_assert_int_eq(srv_sem_op(cb_tab, &alice, 1, cb_id, &up, 1, NULL, NOW, &nw), 0);
    ck_assert_int_eq(ndone, 1);
  }
  if ((intptr_t)w->ctx == 3)
    srv_sem_cancel(cb_tab, w); /* its own: no effect, the table frees it after this call */
}

START_TEST(done_may_call_back_in) {
  struct srv_semtab t2;
  struct srv_semwait *w;
  struct srv_semop_one a = {0, -1, 0}, b = {1, -1, 0}, up = {0, 2, 0};

  cb_tab = &t2;
  ck_assert_int_eq(srv_semtab_init(&t2, &lim, reentrant_done, NULL), 0);
  cb_id = srv_sem_get(&t2, &alice, IPC_PRIVATE, 2, 0600, NOW);
  ck_assert_int_eq(srv_sem_op(&t2, &alice, 1, cb_id, &a, 1, NULL, NOW, &w), 1);
  w->ctx = (void *)1;
  ck_assert_int_eq(srv_sem_op(&t2, &alice, 1, cb_id, &a, 1, NULL, NOW, &w), 1);
  w->ctx = (void *)2;
  cb_victim = w;
  ck_assert_int_eq(srv_sem_op(&t2, &alice, 1, cb_id, &b, 1, NULL, NOW, &w), 1);
  w->ctx = (void *)3;
  /* 1 and 2 end here; 1's callback cancels 2 before its turn, and its semop ends 3. */
  ck_assert_int_eq(srv_sem_op(&t2, &alice, 1, cb_id, &up, 1, NULL, NOW, &w), 0);
  expect_done(2, (int[]){1, 3}, (int[]){0, 0});
  srv_semtab_fini(&t2);
}
END_TEST

START_TEST(fini_ends_waiters) {
  struct srv_semtab t2;
  struct srv_semwait *w;
  struct srv_semop_one a = {0, -1, UN};

  ck_assert_int_eq(srv_semtab_init(&t2, &lim, on_done, NULL), 0);
  int id = srv_sem_get(&t2, &alice, IPC_PRIVATE, 2, 0600, NOW);
  ck_assert_int_eq(srv_sem_op(&t2, &alice, 1, id, &a, 1, NULL, NOW, &w), 1);
  w->ctx = (void *)5;
  srv_semtab_fini(&t2);
  expect_done(1, (int[]){5}, (int[]){-EIDRM});
  ck_assert_int_eq(dlog[0].set_gone, 1);
  srv_semtab_fini(&t2); /* twice is harmless */
  /* teardown frees a set with a waiter and undo records too; LeakSanitizer checks. */
  id = get(&alice, IPC_PRIVATE, 2, 0600);
  wop(&alice, 1, id, OPS({0, -1, UN}, {1, -1, 0}), 6);
}
END_TEST

/* ======== the kernel as the oracle ======== */

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
  struct seminfo *__buf;
};

static int nbad; /* mismatches seen */

static void same_(long k, long m, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void same_(long k, long m, int line, const char *fmt, ...) {
  va_list ap;

  if (k == m)
    return;
  nbad++;
  if (nbad > 20)
    return;
  fprintf(stderr, "test_sems.c:%d: kernel %ld, dshm %ld: ", line, k, m);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}
#define SAME(k, m, ...) same_((k), (m), __LINE__, __VA_ARGS__)

static int kerr(int r) {
  return r < 0 ? -errno : r;
}

static int k_ctl(int id, int num, int cmd, int v) {
  union semun u = {.val = v};
  return kerr(semctl(id, num, cmd, u));
}

static int k_ctl_buf(int id, int num, int cmd, void *p) {
  union semun u;
  u.buf = p;
  return kerr(semctl(id, num, cmd, u));
}

static int k_op(int id, const struct srv_semop_one *s, uint32_t n, const struct timespec *ts) {
  struct sembuf b[16];
  for (uint32_t i = 0; i < n && i < 16; i++) {
    b[i].sem_num = s[i].num;
    b[i].sem_op = s[i].op;
    b[i].sem_flg = s[i].flg;
  }
  return kerr(ts != NULL ? semtimedop(id, b, n, ts) : semop(id, b, n));
}

/* What the kernel tests make. A failed check ends a test's process at once (_exit), so:
 * the sets are listed in memory shared with Check's runner, whose teardown removes what is
 * left, and each child dies with its test's process (PR_SET_PDEATHSIG). */
#define KSETS 64
static int *k_sets; /* KSETS ids, -1: free */
static pid_t k_kids[16];
static int nk_kids;

static void kernel_up(void) {
  k_sets = mmap(NULL, KSETS * sizeof *k_sets, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                -1, 0);
  ck_assert_ptr_ne(k_sets, MAP_FAILED);
  for (int i = 0; i < KSETS; i++)
    k_sets[i] = -1;
}

static void kernel_down(void) {
  for (int i = 0; i < KSETS; i++)
    if (k_sets[i] >= 0)
      semctl(k_sets[i], 0, IPC_RMID);
  munmap(k_sets, KSETS * sizeof *k_sets);
}

static void kernel_setup(void) {
  nk_kids = 0;
}

/* The set is gone (removed by the test): its id may be another's soon. */
static void k_forget(int id) {
  for (int i = 0; i < KSETS; i++)
    if (k_sets[i] == id)
      k_sets[i] = -1;
}

static void k_rmid(int id) {
  semctl(id, 0, IPC_RMID);
  k_forget(id);
}

static int k_semget(key_t key, int nsems, int flg) {
  int id = semget(key, nsems, flg);
  for (int i = 0; id >= 0 && i < KSETS; i++) {
    if (k_sets[i] < 0) {
      k_sets[i] = id;
      break;
    }
  }
  return id;
}

/* The test's children are killed and reaped; its sets removed. */
static void k_cleanup(void) {
  for (int i = 0; i < nk_kids; i++) {
    if (k_kids[i] > 0) {
      kill(k_kids[i], SIGKILL);
      waitpid(k_kids[i], NULL, 0);
    }
  }
  nk_kids = 0;
  for (int i = 0; i < KSETS; i++)
    if (k_sets[i] >= 0)
      k_rmid(k_sets[i]);
}

/* A child that dies with this process and leaves only with _exit. A child that changes its
 * credentials must ask for PR_SET_PDEATHSIG again. */
static pid_t k_fork(void) {
  pid_t parent = getpid(), pid = fork();

  if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
    _exit(127);
  if (pid > 0 && nk_kids < 16)
    k_kids[nk_kids++] = pid;
  return pid;
}

/* waitpid, after which the pid may be another's. */
static pid_t k_reap(pid_t pid, int *status) {
  pid_t r = waitpid(pid, status, 0);
  for (int i = 0; i < nk_kids; i++)
    if (k_kids[i] == pid)
      k_kids[i] = -1;
  return r;
}

/* The kernel's limits, as the module is given them (capped where the wire caps them). */
static struct srv_sem_limits klim;
static int klim_exact;

static void read_klim(void) {
  FILE *f = fopen("/proc/sys/kernel/sem", "r");
  unsigned msl = 0, mns = 0, opm = 0, mni = 0;

  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fscanf(f, "%u %u %u %u", &msl, &mns, &opm, &mni), 4);
  fclose(f);
  klim_exact = msl <= PROTO_SEMMSL_MAX && opm <= PROTO_SEMOPM_MAX && mni <= SRV_IPCMNI;
  klim.semmsl = msl <= PROTO_SEMMSL_MAX ? msl : PROTO_SEMMSL_MAX;
  klim.semmns = mns;
  klim.semopm = opm <= PROTO_SEMOPM_MAX ? opm : PROTO_SEMOPM_MAX;
  klim.semmni = mni <= SRV_IPCMNI ? mni : SRV_IPCMNI;
}

static gid_t my_groups[64];

/* Who the module is told the caller is: this process, as the kernel sees it. */
static struct srv_cred me(void) {
  int n = getgroups(64, my_groups);
  struct srv_cred c = {.pid = (uint32_t)getpid(), .uid = geteuid(), .gid = getegid()};

  c.ngroups = n > 0 ? (uint32_t)n : 0;
  c.groups = (const uint32_t *)my_groups;
  return c;
}

static int m_ctl(struct srv_semtab *m, const struct srv_cred *c, int id, int num, int cmd,
                 int v) {
  struct proto_semctl q = {.semid = id, .semnum = num, .cmd = cmd, .val = v};
  struct proto_semctl_reply r;
  uint16_t vals[PROTO_SEMMSL_MAX];
  return srv_sem_ctl(m, c, &q, &r, vals, NOW);
}

static int m_op(struct srv_semtab *m, const struct srv_cred *c, int id,
                const struct srv_semop_one *s, uint32_t n, const int64_t *ts) {
  struct srv_semwait *w;
  int r = srv_sem_op(m, c, 1, id, s, n, ts, NOW, &w);
  if (r == 1) { /* not expected here: note it and take it back */
    nbad++;
    srv_sem_cancel(m, w);
  }
  return r;
}

static int m_setall(struct srv_semtab *m, const struct srv_cred *c, int id, const uint16_t *v,
                    uint32_t n) {
  uint8_t buf[2 * 16];
  struct proto_semctl q = {.semid = id, .cmd = SETALL, .nvals = n, .vals = buf};
  struct proto_semctl_reply r;

  for (uint32_t i = 0; i < n; i++)
    proto_put_u16(buf + 2 * i, v[i]);
  return srv_sem_ctl(m, c, &q, &r, NULL, NOW);
}

static int k_setall(int id, const uint16_t *v, uint32_t n) {
  unsigned short a[16];
  union semun u;

  for (uint32_t i = 0; i < n; i++)
    a[i] = v[i];
  u.array = a;
  return kerr(semctl(id, 0, SETALL, u));
}

/* Both results are the id of the set in question, or the same error. */
static void same_id(int k, int kid, int m, int mid, int line, const char *what) {
  same_(k < 0 ? k : k == kid, m < 0 ? m : m == mid, line, "%s", what);
}
#define SAME_ID(k, kid, m, mid, what) same_id((k), (kid), (m), (mid), __LINE__, (what))

/* Values and pids of both sets alike. */
static void same_state(int kid, struct srv_semtab *m, int mid, uint32_t n, int line,
                       const char *what) {
  for (uint32_t i = 0; i < n; i++) {
    same_(k_ctl(kid, (int)i, GETVAL, 0), m_ctl(m, &(struct srv_cred){0}, mid, (int)i, GETVAL, 0),
          line, "%s: semval %u", what, i);
    same_(k_ctl(kid, (int)i, GETPID, 0), m_ctl(m, &(struct srv_cred){0}, mid, (int)i, GETPID, 0),
          line, "%s: sempid %u", what, i);
    same_(k_ctl(kid, (int)i, GETNCNT, 0),
          m_ctl(m, &(struct srv_cred){0}, mid, (int)i, GETNCNT, 0), line, "%s: semncnt %u",
          what, i);
    same_(k_ctl(kid, (int)i, GETZCNT, 0),
          m_ctl(m, &(struct srv_cred){0}, mid, (int)i, GETZCNT, 0), line, "%s: semzcnt %u",
          what, i);
  }
}

/* The index of a kernel set, found with SEM_STAT_ANY (its id layout is the kernel's). */
static int k_index(int kid) {
  struct seminfo si;
  struct semid_ds ds;
  int max = k_ctl_buf(0, 0, SEM_INFO, &si);

  for (int i = 0; i <= max; i++)
    if (k_ctl_buf(i, 0, SEM_STAT_ANY, &ds) == kid)
      return i;
  return -1;
}

/* Every errno of the three calls, in the kernel's order, made by this process on real sets
 * and on the module with this process's credentials. foreign_k/foreign_m: a set of another
 * user (mode 0666), or -1. Returns the mismatches. */
static int errno_table(int foreign_k, int foreign_m, struct srv_semtab *m) {
  struct srv_cred c = me();
  int kA, mA, kZ, mZ, kR, mR, kK, mK, k, r;
  key_t key = (key_t)(0x5e000000 | (getpid() & 0xffffff));
  struct srv_semop_one s[4];
  struct semid_ds kds;
  struct proto_semctl_reply rep;
  unsigned short kall[3];
  uint16_t mall[3];
  struct timespec ts;
  int64_t mts[2];

  nbad = 0;
  k = semget(key, 0, 0); /* left by an earlier run that died: not ours to compare */
  if (k >= 0)
    semctl(k, 0, IPC_RMID);
  /* semget */
  SAME(kerr(semget(IPC_PRIVATE, -1, 0600)), srv_sem_get(m, &c, 0, -1, 0600, NOW), "nsems -1");
  if (klim_exact)
    SAME(kerr(semget(IPC_PRIVATE, (int)klim.semmsl + 1, 0600)),
         srv_sem_get(m, &c, 0, (int)klim.semmsl + 1, 0600, NOW), "nsems > semmsl");
  SAME(kerr(semget(IPC_PRIVATE, 0, 0600)), srv_sem_get(m, &c, 0, 0, 0600, NOW), "nsems 0");
  SAME(kerr(semget(key, 0, 0)), srv_sem_get(m, &c, key, 0, 0, NOW), "no key");
  SAME(kerr(semget(key, 2, IPC_EXCL | 0600)), srv_sem_get(m, &c, key, 2, IPC_EXCL | 0600, NOW),
       "no key, IPC_EXCL");
  SAME(kerr(semget(key, 0, IPC_CREAT | 0600)), srv_sem_get(m, &c, key, 0, IPC_CREAT | 0600, NOW),
       "create with 0");
  kK = k_semget(key, 2, IPC_CREAT | 0600);
  mK = srv_sem_get(m, &c, key, 2, IPC_CREAT | 0600, NOW);
  if (kK < 0 || mK < 0) {
    fprintf(stderr, "semget(key): kernel %d (%s), dshm %d\n", kK, strerror(errno), mK);
    return nbad + 1;
  }
  SAME_ID(kerr(semget(key, 2, IPC_CREAT | IPC_EXCL | 0600)), kK,
          srv_sem_get(m, &c, key, 2, IPC_CREAT | IPC_EXCL | 0600, NOW), mK, "EEXIST");
  SAME_ID(kerr(semget(key, 3, 0600)), kK, srv_sem_get(m, &c, key, 3, 0600, NOW), mK, "more");
  SAME_ID(kerr(semget(key, 1, 0600)), kK, srv_sem_get(m, &c, key, 1, 0600, NOW), mK, "fewer");
  SAME_ID(kerr(semget(key, 0, 0)), kK, srv_sem_get(m, &c, key, 0, 0, NOW), mK, "any");
  memset(&kds, 0, sizeof kds);
  kds.sem_perm.uid = geteuid();
  kds.sem_perm.gid = getegid();
  kds.sem_perm.mode = 0;
  SAME(k_ctl_buf(kK, 0, IPC_SET, &kds),
       srv_sem_ctl(m, &c, &(struct proto_semctl){.semid = mK, .cmd = IPC_SET, .uid = c.uid,
                                                 .gid = c.gid, .mode = 0},
                   &rep, NULL, NOW),
       "IPC_SET mode 0");
  SAME_ID(kerr(semget(key, 3, 0600)), kK, srv_sem_get(m, &c, key, 3, 0600, NOW), mK,
          "more, no access: the count first");
  SAME_ID(kerr(semget(key, 2, 0600)), kK, srv_sem_get(m, &c, key, 2, 0600, NOW), mK, "no access");
  SAME_ID(kerr(semget(key, 2, 0)), kK, srv_sem_get(m, &c, key, 2, 0, NOW), mK, "asks nothing");
  SAME_ID(kerr(semget(key, 2, IPC_CREAT | IPC_EXCL)), kK,
          srv_sem_get(m, &c, key, 2, IPC_CREAT | IPC_EXCL, NOW), mK, "EEXIST, no access");
  kds.sem_perm.uid = (uid_t)-1;
  SAME(k_ctl_buf(kK, 0, IPC_SET, &kds),
       srv_sem_ctl(m, &c, &(struct proto_semctl){.semid = mK, .cmd = IPC_SET, .uid = UINT32_MAX,
                                                 .gid = c.gid},
                   &rep, NULL, NOW),
       "IPC_SET uid -1");
  SAME(k_ctl(kK, 0, IPC_RMID, 0), m_ctl(m, &c, mK, 0, IPC_RMID, 0), "IPC_RMID");
  k_forget(kK);
  SAME(kerr(semget(key, 0, 0)), srv_sem_get(m, &c, key, 0, 0, NOW), "key gone");

  kA = k_semget(IPC_PRIVATE, 3, 0600);
  kZ = k_semget(IPC_PRIVATE, 3, 0000);
  kR = k_semget(IPC_PRIVATE, 3, 0400);
  mA = srv_sem_get(m, &c, 0, 3, 0600, NOW);
  mZ = srv_sem_get(m, &c, 0, 3, 0000, NOW);
  mR = srv_sem_get(m, &c, 0, 3, 0400, NOW);
  if (kA < 0 || kZ < 0 || kR < 0 || mA < 0 || mZ < 0 || mR < 0) {
    fprintf(stderr, "semget: kernel %d %d %d, dshm %d %d %d\n", kA, kZ, kR, mA, mZ, mR);
    nbad++;
    goto out;
  }

  /* semctl */
  SAME(k_ctl(-1, 0, IPC_STAT, 0), m_ctl(m, &c, -1, 0, IPC_STAT, 0), "semid -1");
  SAME(k_ctl(-1, 0, IPC_INFO, 0), m_ctl(m, &c, -1, 0, IPC_INFO, 0), "IPC_INFO semid -1");
  SAME(k_ctl(kA, 0, 99, 0), m_ctl(m, &c, mA, 0, 99, 0), "unknown command");
  SAME(k_ctl(kA, 0, -3, 0), m_ctl(m, &c, mA, 0, -3, 0), "negative command");
  SAME(k_ctl_buf(kZ, 0, IPC_STAT, &kds), m_ctl(m, &c, mZ, 0, IPC_STAT, 0), "IPC_STAT, no access");
  k = k_index(kZ);
  SAME_ID(k < 0 ? -1 : k_ctl_buf(k, 0, SEM_STAT, &kds), kZ,
          m_ctl(m, &c, mZ % SRV_IPCMNI, 0, SEM_STAT, 0), mZ, "SEM_STAT, no access");
  SAME_ID(k < 0 ? -1 : k_ctl_buf(k, 0, SEM_STAT_ANY, &kds), kZ,
          m_ctl(m, &c, mZ % SRV_IPCMNI, 0, SEM_STAT_ANY, 0), mZ, "SEM_STAT_ANY");
  for (int cmd = GETPID; cmd <= GETZCNT; cmd++) {
    if (cmd == GETALL)
      continue;
    SAME(k_ctl(kZ, 0, cmd, 0), m_ctl(m, &c, mZ, 0, cmd, 0), "cmd %d, no access", cmd);
    SAME(k_ctl(kZ, 7, cmd, 0), m_ctl(m, &c, mZ, 7, cmd, 0), "cmd %d, semnum 7, no access", cmd);
    SAME(k_ctl(kA, 3, cmd, 0), m_ctl(m, &c, mA, 3, cmd, 0), "cmd %d, semnum 3", cmd);
    SAME(k_ctl(kA, -1, cmd, 0), m_ctl(m, &c, mA, -1, cmd, 0), "cmd %d, semnum -1", cmd);
    SAME(k_ctl(kR, 1, cmd, 0), m_ctl(m, &c, mR, 1, cmd, 0), "cmd %d, read-only", cmd);
  }
  {
    struct proto_semctl q = {.semid = mZ, .cmd = GETALL};
    union semun u = {.array = kall};
    SAME(kerr(semctl(kZ, 0, GETALL, u)), srv_sem_ctl(m, &c, &q, &rep, mall, NOW),
         "GETALL, no access");
    q.semid = mR;
    SAME(kerr(semctl(kR, 0, GETALL, u)), srv_sem_ctl(m, &c, &q, &rep, mall, NOW),
         "GETALL, read-only");
  }
  SAME(k_ctl(kZ, 7, SETVAL, 1), m_ctl(m, &c, mZ, 7, SETVAL, 1), "SETVAL semnum 7, no access");
  SAME(k_ctl(kZ, 0, SETVAL, 1), m_ctl(m, &c, mZ, 0, SETVAL, 1), "SETVAL, no access");
  SAME(k_ctl(kR, 0, SETVAL, 1), m_ctl(m, &c, mR, 0, SETVAL, 1), "SETVAL, read-only");
  SAME(k_ctl(kA, 0, SETVAL, -1), m_ctl(m, &c, mA, 0, SETVAL, -1), "SETVAL -1");
  SAME(k_ctl(kA, 0, SETVAL, 32768), m_ctl(m, &c, mA, 0, SETVAL, 32768), "SETVAL 32768");
  SAME(k_ctl(kA, 9, SETVAL, 32768), m_ctl(m, &c, mA, 9, SETVAL, 32768), "SETVAL both bad");
  SAME(k_ctl(kK, 0, SETVAL, 40000), m_ctl(m, &c, mK, 0, SETVAL, 40000), "SETVAL, removed set");
  SAME(k_ctl(kK, 0, GETVAL, 0), m_ctl(m, &c, mK, 0, GETVAL, 0), "GETVAL, removed set");
  SAME(k_ctl(kK, 0, IPC_RMID, 0), m_ctl(m, &c, mK, 0, IPC_RMID, 0), "IPC_RMID, removed set");
  SAME(k_ctl(kA, 2, SETVAL, 32767), m_ctl(m, &c, mA, 2, SETVAL, 32767), "SETVAL 32767");
  SAME(k_setall(kZ, (uint16_t[]){1, 2, 3}, 3), m_setall(m, &c, mZ, (uint16_t[]){1, 2, 3}, 3),
       "SETALL, no access");
  SAME(k_setall(kR, (uint16_t[]){1, 2, 40000}, 3),
       m_setall(m, &c, mR, (uint16_t[]){1, 2, 40000}, 3), "SETALL, read-only, out of range");
  SAME(k_setall(kA, (uint16_t[]){1, 40000, 3}, 3),
       m_setall(m, &c, mA, (uint16_t[]){1, 40000, 3}, 3), "SETALL out of range");
  SAME(k_setall(kA, (uint16_t[]){1, 2, 32767}, 3),
       m_setall(m, &c, mA, (uint16_t[]){1, 2, 32767}, 3), "SETALL");
  same_state(kA, m, mA, 3, __LINE__, "after SETALL");

  /* semop */
  s[0] = (struct srv_semop_one){0, 0, NW};
  SAME(kerr(semop(kA, NULL, 0)), m_op(m, &c, mA, s, 0, NULL), "nsops 0");
  SAME(k_op(-1, s, 1, NULL), m_op(m, &c, -1, s, 1, NULL), "semid -1");
  if (klim_exact && klim.semopm < 4096) {
    uint32_t n = klim.semopm + 1;
    struct sembuf *kb = calloc(n, sizeof *kb);
    struct srv_semop_one *mb = calloc(n, sizeof *mb);
    ck_assert_ptr_nonnull(kb);
    ck_assert_ptr_nonnull(mb);
    for (uint32_t i = 0; i < n; i++) {
      kb[i].sem_flg = IPC_NOWAIT;
      mb[i].flg = NW;
    }
    SAME(kerr(semop(-1, kb, n)), m_op(m, &c, -1, mb, n, NULL), "E2BIG before semid");
    SAME(kerr(semop(kA, kb, n - 1)), m_op(m, &c, mA, mb, n - 1, NULL), "semopm operations");
    free(kb);
    free(mb);
  }
  ts = (struct timespec){-1, 0};
  mts[0] = -1, mts[1] = 0;
  SAME(k_op(kK, s, 1, &ts), m_op(m, &c, mK, s, 1, mts), "tv_sec -1, removed set");
  SAME(k_op(kA, s, 1, &ts), m_op(m, &c, mA, s, 1, mts), "tv_sec -1");
  ts = (struct timespec){0, 1000000000};
  mts[0] = 0, mts[1] = 1000000000;
  SAME(k_op(kA, s, 1, &ts), m_op(m, &c, mA, s, 1, mts), "tv_nsec 1e9");
  ts = (struct timespec){0, -1};
  mts[0] = 0, mts[1] = -1;
  SAME(k_op(kA, s, 1, &ts), m_op(m, &c, mA, s, 1, mts), "tv_nsec -1");
  ts = (struct timespec){0, 999999999};
  mts[0] = 0, mts[1] = 999999999;
  s[0] = (struct srv_semop_one){0, -1, NW};
  SAME(k_op(kA, s, 1, &ts), m_op(m, &c, mA, s, 1, mts), "a valid timeout");
  s[0] = (struct srv_semop_one){3, 1, NW};
  SAME(k_op(kZ, s, 1, NULL), m_op(m, &c, mZ, s, 1, NULL), "EFBIG before EACCES");
  s[0] = (struct srv_semop_one){1, -1, NW | UN};
  SAME(k_op(kZ, s, 1, NULL), m_op(m, &c, mZ, s, 1, NULL), "alter, no access");
  s[0] = (struct srv_semop_one){1, 0, NW};
  SAME(k_op(kZ, s, 1, NULL), m_op(m, &c, mZ, s, 1, NULL), "read, no access");
  SAME(k_op(kR, s, 1, NULL), m_op(m, &c, mR, s, 1, NULL), "read, read-only");
  s[1] = (struct srv_semop_one){2, 1, NW};
  SAME(k_op(kR, s, 2, NULL), m_op(m, &c, mR, s, 2, NULL), "alter, read-only");
  s[0] = (struct srv_semop_one){2, 1, NW};
  SAME(k_op(kA, s, 1, NULL), m_op(m, &c, mA, s, 1, NULL), "above SEMVMX");
  s[0] = (struct srv_semop_one){0, 32767, NW | UN};
  SAME(k_op(kK, s, 1, NULL), m_op(m, &c, mK, s, 1, NULL), "SEM_UNDO, removed set");
  SAME(k_op(kA, s, 1, NULL), m_op(m, &c, mA, s, 1, NULL), "semadj -32767"); /* 1 + 32767 */
  s[0] = (struct srv_semop_one){1, 32765, NW | UN};
  SAME(k_op(kA, s, 1, NULL), m_op(m, &c, mA, s, 1, NULL), "semadj -32765");
  s[0] = (struct srv_semop_one){0, -32767, NW};
  SAME(k_op(kA, s, 1, NULL), m_op(m, &c, mA, s, 1, NULL), "down again");
  s[0] = (struct srv_semop_one){0, 1, NW | UN};
  SAME(k_op(kA, s, 1, NULL), m_op(m, &c, mA, s, 1, NULL), "semadj -32768");
  SAME(k_op(kA, s, 1, NULL), m_op(m, &c, mA, s, 1, NULL), "semadj -32769");
  s[0] = (struct srv_semop_one){1, -32767, NW | UN};
  SAME(k_op(kA, s, 1, NULL), m_op(m, &c, mA, s, 1, NULL), "semadj +2");
  same_state(kA, m, mA, 3, __LINE__, "after the semops");
  r = k_ctl(kA, 0, SETVAL, 0); /* clears the adjustments: the exit changes nothing */
  SAME(r, m_ctl(m, &c, mA, 0, SETVAL, 0), "SETVAL 0");
  SAME(k_ctl(kA, 1, SETVAL, 0), m_ctl(m, &c, mA, 1, SETVAL, 0), "SETVAL 0");

  /* Another user's set. */
  if (foreign_k >= 0) {
    memset(&kds, 0, sizeof kds);
    kds.sem_perm.mode = 0666;
    SAME(k_ctl_buf(foreign_k, 0, IPC_SET, &kds),
         srv_sem_ctl(m, &c, &(struct proto_semctl){.semid = foreign_m, .cmd = IPC_SET,
                                                   .mode = 0666},
                     &rep, NULL, NOW),
         "IPC_SET, not the owner");
    SAME(k_ctl(foreign_k, 0, IPC_RMID, 0), m_ctl(m, &c, foreign_m, 0, IPC_RMID, 0),
         "IPC_RMID, not the owner");
    SAME(k_ctl(foreign_k, 0, SETVAL, 3), m_ctl(m, &c, foreign_m, 0, SETVAL, 3), "SETVAL 0666");
    s[0] = (struct srv_semop_one){0, -1, NW | UN};
    SAME(k_op(foreign_k, s, 1, NULL), m_op(m, &c, foreign_m, s, 1, NULL), "semop 0666");
    SAME(k_ctl(foreign_k, 0, GETVAL, 0), m_ctl(m, &c, foreign_m, 0, GETVAL, 0), "GETVAL 0666");
  }

out:
  if (kA >= 0)
    k_rmid(kA);
  if (kZ >= 0)
    k_rmid(kZ);
  if (kR >= 0)
    k_rmid(kR);
  return nbad;
}

START_TEST(kernel_errno_table) {
  struct srv_semtab m;

  read_klim();
  ck_assert_int_eq(srv_semtab_init(&m, &klim, on_done, NULL), 0);
  ck_assert_int_eq(errno_table(-1, -1, &m), 0);
  srv_semtab_fini(&m);
}
END_TEST

/* As root, the same table again as nobody, with a set of root's to be refused. */
START_TEST(kernel_errno_table_unprivileged) {
  struct srv_semtab m;
  int kF, mF, status;
  pid_t pid;

  if (geteuid() != 0)
    return; /* kernel_errno_table ran unprivileged already */
  read_klim();
  ck_assert_int_eq(srv_semtab_init(&m, &klim, on_done, NULL), 0);
  kF = k_semget(IPC_PRIVATE, 2, 0666);
  ck_assert_int_ge(kF, 0);
  mF = srv_sem_get(&m, &root, IPC_PRIVATE, 2, 0666, NOW);
  ck_assert_int_ge(mF, 0);
  pid = k_fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0 ||
        prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
      _exit(2);
    _exit(errno_table(kF, mF, &m) == 0 ? 0 : 1);
  }
  ck_assert_int_eq(k_reap(pid, &status), pid);
  k_rmid(kF);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  srv_semtab_fini(&m);
}
END_TEST

START_TEST(kernel_info) {
  struct srv_semtab m;
  struct seminfo ki;
  struct proto_semctl q = {.cmd = IPC_INFO};
  struct proto_semctl_reply r;

  read_klim();
  if (!klim_exact)
    return;
  ck_assert_int_eq(srv_semtab_init(&m, &klim, on_done, NULL), 0);
  ck_assert_int_ge(k_ctl_buf(0, 0, IPC_INFO, &ki), 0);
  ck_assert_int_ge(srv_sem_ctl(&m, &root, &q, &r, NULL, NOW), 0);
  ck_assert_int_eq(r.info.semmap, ki.semmap);
  ck_assert_int_eq(r.info.semmni, ki.semmni);
  ck_assert_int_eq(r.info.semmns, ki.semmns);
  ck_assert_int_eq(r.info.semmnu, ki.semmnu);
  ck_assert_int_eq(r.info.semmsl, ki.semmsl);
  ck_assert_int_eq(r.info.semopm, ki.semopm);
  ck_assert_int_eq(r.info.semume, ki.semume);
  ck_assert_int_eq(r.info.semusz, ki.semusz);
  ck_assert_int_eq(r.info.semvmx, ki.semvmx);
  ck_assert_int_eq(r.info.semaem, ki.semaem);
  q.cmd = SEM_INFO;
  ck_assert_int_ge(k_ctl_buf(0, 0, SEM_INFO, &ki), 0);
  ck_assert_int_ge(srv_sem_ctl(&m, &root, &q, &r, NULL, NOW), 0);
  ck_assert_int_eq(r.info.semmni, ki.semmni);
  ck_assert_int_eq(r.info.semume, ki.semume);
  ck_assert_int_eq(r.info.semusz, 0); /* the module's own usage */
  ck_assert_int_eq(r.info.semaem, 0);
  srv_semtab_fini(&m);
}
END_TEST

/* ---- seeded random sequences: no waiting, SEM_UNDO, and the exit of the process ---- */

#define RN 4        /* semaphores */
#define RSTEPS 200  /* per process */

struct rstep {
  int kind; /* 0 semop, 1 SETVAL, 2 SETALL, 3 a GET command */
  uint32_t nsops;
  struct srv_semop_one sops[3];
  int num, cmd, val;
  uint16_t all[RN];
};

struct rrec {
  int ret;
  int vals[RN], pids[RN];
};

static uint32_t rnd_state;

static uint32_t rnd(void) {
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 17;
  rnd_state ^= rnd_state << 5;
  return rnd_state;
}

static int16_t rnd_op(void) {
  static const int16_t big[] = {32767, -32767, 20000, -20000, 16384, -3};
  uint32_t r = rnd() % 20;
  if (r < 4)
    return 0;
  if (r < 10)
    return (int16_t)(-1 - (int)(rnd() % 2));
  if (r < 16)
    return (int16_t)(1 + rnd() % 2);
  return big[rnd() % 6];
}

static void gen_step(struct rstep *s) {
  uint32_t r = rnd() % 100;

  memset(s, 0, sizeof *s);
  if (r < 72) {
    s->kind = 0;
    s->nsops = 1 + rnd() % 3;
    for (uint32_t i = 0; i < s->nsops; i++) {
      s->sops[i].num = (uint16_t)(rnd() % 24 == 0 ? RN : rnd() % RN);
      s->sops[i].op = rnd_op();
      s->sops[i].flg = (int16_t)(NW | (rnd() % 2 ? UN : 0));
    }
  } else if (r < 80) {
    static const int odd[] = {-1, 32767, 32768, 0};
    s->kind = 1;
    s->num = rnd() % 16 == 0 ? RN : (int)(rnd() % RN);
    s->val = rnd() % 5 == 0 ? odd[rnd() % 4] : (int)(rnd() % 4);
  } else if (r < 84) {
    s->kind = 2;
    for (int i = 0; i < RN; i++)
      s->all[i] = (uint16_t)(rnd() % 12 == 0 ? 32768 + rnd() % 5 : rnd() % 4);
  } else {
    static const int cmds[] = {GETVAL, GETPID, GETNCNT, GETZCNT};
    s->kind = 3;
    s->cmd = cmds[rnd() % 4];
    s->num = rnd() % 10 == 0 ? (rnd() % 2 ? -1 : RN) : (int)(rnd() % RN);
  }
}

static int k_step(int kid, const struct rstep *s) {
  switch (s->kind) {
  case 0:
    return k_op(kid, s->sops, s->nsops, NULL);
  case 1:
    return k_ctl(kid, s->num, SETVAL, s->val);
  case 2:
    return k_setall(kid, s->all, RN);
  default:
    return k_ctl(kid, s->num, s->cmd, 0);
  }
}

static int m_step(struct srv_semtab *m, const struct srv_cred *c, int mid, const struct rstep *s) {
  switch (s->kind) {
  case 0:
    return m_op(m, c, mid, s->sops, s->nsops, NULL);
  case 1:
    return m_ctl(m, c, mid, s->num, SETVAL, s->val);
  case 2:
    return m_setall(m, c, mid, s->all, RN);
  default:
    return m_ctl(m, c, mid, s->num, s->cmd, 0);
  }
}

START_TEST(kernel_random_sequences_and_exit) {
  struct rstep *steps = calloc(2 * RSTEPS, sizeof *steps);
  struct rrec *rec = mmap(NULL, 2 * RSTEPS * sizeof *rec, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  struct srv_semtab m;
  struct semid_ds kds;
  int seed = _i;

  ck_assert_ptr_nonnull(steps);
  ck_assert_ptr_ne(rec, MAP_FAILED);
  read_klim();
  ck_assert_int_eq(srv_semtab_init(&m, &klim, on_done, NULL), 0);
  rnd_state = 0x9e3779b9u * (uint32_t)(seed + 1);
  for (int i = 0; i < 2 * RSTEPS; i++)
    gen_step(&steps[i]);
  int kid = k_semget(IPC_PRIVATE, RN, 0600);
  ck_assert_int_ge(kid, 0);
  struct srv_cred owner = me();
  int mid = srv_sem_get(&m, &owner, IPC_PRIVATE, RN, 0600, NOW);
  ck_assert_int_ge(mid, 0);
  nbad = 0;

  /* Two processes one after the other, each with its own steps; each exits with its
   * SEM_UNDO adjustments, after this process has moved the values to the ends of their range
   * (so that the exit clamps) and made itself their sempid. */
  for (int p = 0; p < 2; p++) {
    struct srv_cred c = me(), parent = me();
    int status, done_p[2], go_p[2];
    char x = 0;
    pid_t pid;

    ck_assert_int_eq(pipe(done_p), 0);
    ck_assert_int_eq(pipe(go_p), 0);
    pid = k_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      for (int i = p * RSTEPS; i < (p + 1) * RSTEPS; i++) {
        rec[i].ret = k_step(kid, &steps[i]);
        for (int j = 0; j < RN; j++) {
          rec[i].vals[j] = k_ctl(kid, j, GETVAL, 0);
          rec[i].pids[j] = k_ctl(kid, j, GETPID, 0);
        }
      }
      if (write(done_p[1], &x, 1) != 1 || read(go_p[0], &x, 1) != 1)
        _exit(3);
      _exit(0);
    }
    ck_assert_int_eq(read(done_p[0], &x, 1), 1);
    c.pid = (uint32_t)pid;
    for (int i = p * RSTEPS; i < (p + 1) * RSTEPS; i++) {
      SAME(rec[i].ret, m_step(&m, &c, mid, &steps[i]), "seed %d step %d (kind %d)", seed, i,
           steps[i].kind);
      for (int j = 0; j < RN; j++) {
        SAME(rec[i].vals[j], m_ctl(&m, &root, mid, j, GETVAL, 0), "seed %d step %d semval %d",
             seed, i, j);
        SAME(rec[i].pids[j], m_ctl(&m, &root, mid, j, GETPID, 0), "seed %d step %d sempid %d",
             seed, i, j);
      }
    }
    for (int j = 0; j < RN; j++) {
      static const int targets[] = {0, 32767, -1};
      int v = k_ctl(kid, j, GETVAL, 0), to = targets[rnd() % 3];
      struct srv_semop_one mv[2] = {{(uint16_t)j, (int16_t)(to - v), NW}, {0, 0, 0}};
      uint32_t nmv = 1;

      if (to < 0 || to == v) { /* touch it only */
        mv[0].op = (int16_t)(v > 0 ? -1 : 1);
        mv[1] = (struct srv_semop_one){(uint16_t)j, (int16_t)-mv[0].op, NW};
        nmv = 2;
      }
      SAME(k_op(kid, mv, nmv, NULL), m_op(&m, &parent, mid, mv, nmv, NULL),
           "seed %d before exit %d: semop on %d", seed, p, j);
    }
    ck_assert_int_eq(write(go_p[1], &x, 1), 1);
    ck_assert_int_eq(k_reap(pid, &status), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(done_p[0]);
    close(done_p[1]);
    close(go_p[0]);
    close(go_p[1]);
    srv_sem_exit(&m, 1, (uint32_t)pid, NOW);
    for (int j = 0; j < RN; j++) {
      SAME(k_ctl(kid, j, GETVAL, 0), m_ctl(&m, &root, mid, j, GETVAL, 0),
           "seed %d after exit %d: semval %d", seed, p, j);
      SAME(k_ctl(kid, j, GETPID, 0), m_ctl(&m, &root, mid, j, GETPID, 0),
           "seed %d after exit %d: sempid %d", seed, p, j);
    }
    ck_assert_int_eq(k_ctl_buf(kid, 0, IPC_STAT, &kds), 0);
    SAME(kds.sem_otime != 0, srv_sem_lookup(&m, mid)->otime != 0,
         "seed %d after exit %d: otime set", seed, p);
  }
  k_rmid(kid);
  srv_semtab_fini(&m);
  munmap(rec, 2 * RSTEPS * sizeof *rec);
  free(steps);
  ck_assert_int_eq(nbad, 0);
}
END_TEST

/* A SEM_UNDO semop that fails still leaves its process a record (find_alloc_undo comes before
 * the checks), and exit_sem moves otime for every record: the process's exit shows it. */
START_TEST(kernel_failed_undo_and_exit) {
  static const struct {
    uint16_t num;
    int16_t op, flg;
    int val, mode, nobody;
  } v[] = {
    {0, -1, UN | NW, 0, 0600, 0},     /* EAGAIN */
    {2, 1, UN | NW, 0, 0600, 0},      /* EFBIG */
    {0, 1, UN | NW, 32767, 0600, 0},  /* ERANGE */
    {0, 1, UN | NW, 0, 0444, 1},      /* EACCES, as nobody */
    {0, -1, NW, 0, 0600, 0},          /* no SEM_UNDO: no record */
  };
  int i = _i, kid, mid, status, kret;
  struct srv_semtab m;
  struct srv_cred c = me();
  struct srv_semop_one op = {v[i].num, v[i].op, v[i].flg};
  struct semid_ds kds;
  pid_t pid;

  if (v[i].nobody && geteuid() != 0)
    return;
  read_klim();
  nbad = 0;
  ck_assert_int_eq(srv_semtab_init(&m, &klim, on_done, NULL), 0);
  kid = k_semget(IPC_PRIVATE, 2, v[i].mode);
  ck_assert_int_ge(kid, 0);
  mid = srv_sem_get(&m, &c, IPC_PRIVATE, 2, v[i].mode, NOW);
  ck_assert_int_eq(k_ctl(kid, 0, SETVAL, v[i].val), 0);
  ck_assert_int_eq(m_ctl(&m, &c, mid, 0, SETVAL, v[i].val), 0);
  pid = k_fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (v[i].nobody && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
      _exit(255);
    _exit(-k_op(kid, &op, 1, NULL));
  }
  ck_assert_int_eq(k_reap(pid, &status), pid);
  ck_assert(WIFEXITED(status));
  kret = -WEXITSTATUS(status);
  c.pid = (uint32_t)pid;
  if (v[i].nobody)
    c = (struct srv_cred){.pid = (uint32_t)pid, .uid = 65534, .gid = 65534};
  SAME(kret, m_op(&m, &c, mid, &op, 1, NULL), "variant %d: semop", i);
  srv_sem_exit(&m, 1, (uint32_t)pid, NOW);
  ck_assert_int_eq(k_ctl_buf(kid, 0, IPC_STAT, &kds), 0);
  SAME(kds.sem_otime != 0, srv_sem_lookup(&m, mid)->otime != 0, "variant %d: otime", i);
  k_rmid(kid);
  srv_semtab_fini(&m);
  ck_assert_int_lt(kret, 0);
  ck_assert_int_eq(nbad, 0);
}
END_TEST

/* ---- seeded random queues: real processes blocked in semop, woken by later calls ---- */

#define QW 6  /* waiters at most */
#define QT 8  /* triggers at most */
#define QPENDING (-1000)

struct qwait {
  uint32_t nsops;
  struct srv_semop_one sops[3];
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A waiter's process: its result in *slot (0 or an errno), then it stays, so that its exit
 * (and SEM_UNDO) comes only with k_cleanup; nothing it does outlives a stuck test by long. */
static void k_waiter(int kid, const struct srv_semop_one *s, uint32_t n, volatile int *slot) {
  struct timespec ts = {60, 0};

  *slot = -k_op(kid, s, n, &ts);
  sleep(120);
  _exit(0);
}

static int k_waiting(int kid, int n) {
  int total = 0;
  for (int i = 0; i < n; i++)
    total += k_ctl(kid, i, GETNCNT, 0) + k_ctl(kid, i, GETZCNT, 0);
  return total;
}

/* Until the first nw of the kernel's processes have reported as many results as the module
 * has, and as many of them wait; then a little longer, for any result the module does not
 * expect. */
static void q_settle(volatile int *kres, const int *mres, int nw, int kid, int n) {
  int64_t until = now_ms() + 3000;
  for (;;) {
    int kdone = 0, mdone = 0, mwait = 0;
    for (int i = 0; i < nw; i++) {
      kdone += kres[i] != QPENDING;
      mdone += mres[i] != QPENDING;
      mwait += mres[i] == QPENDING;
    }
    if ((kdone >= mdone && k_waiting(kid, n) == mwait) || now_ms() > until)
      break;
    usleep(500);
  }
  usleep(5000);
}

static void q_collect(int *mres, int from) {
  for (int i = from; i < ndone; i++)
    mres[dlog[i].tag] = -dlog[i].result;
}

START_TEST(kernel_random_queues) {
  volatile int *kres = mmap(NULL, QW * sizeof(int), PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  struct srv_semtab m;
  struct qwait wt[QW];
  struct rstep tr[QT];
  pid_t kids[QW];
  int mres[QW];
  int seed = _i, n, nw, nt, kid, mid, seen;
  uint16_t init[4];
  struct srv_cred parent = me();

  ck_assert_ptr_ne((void *)kres, MAP_FAILED);
  read_klim();
  ndone = 0;
  nbad = 0;
  ck_assert_int_eq(srv_semtab_init(&m, &klim, on_done, NULL), 0);
  rnd_state = 0x85ebca6bu * (uint32_t)(seed + 7);
  n = 2 + (int)(rnd() % 3);
  nw = 2 + (int)(rnd() % (QW - 1));
  nt = 3 + (int)(rnd() % (QT - 2));
  for (int i = 0; i < n; i++)
    init[i] = (uint16_t)(rnd() % 3);
  for (int i = 0; i < nw; i++) {
    static const int16_t ops[] = {-1, -1, -2, 0, 0, 1, -1, 0};
    wt[i].nsops = rnd() % 2 ? 1 : 2 + rnd() % 2;
    for (uint32_t j = 0; j < wt[i].nsops; j++) {
      wt[i].sops[j].num = (uint16_t)(rnd() % (uint32_t)n);
      wt[i].sops[j].op = ops[rnd() % 8];
      wt[i].sops[j].flg = (int16_t)((rnd() % 7 == 0 ? NW : 0) | (rnd() % 4 == 0 ? UN : 0));
    }
    if (rnd() % 10 == 0)
      wt[i].sops[rnd() % wt[i].nsops].op = 32000; /* an ERANGE in waiting */
  }
  for (int i = 0; i < nt; i++) {
    uint32_t r = rnd() % 10;
    memset(&tr[i], 0, sizeof tr[i]);
    if (r < 6) {
      static const int16_t ops[] = {1, 1, 2, 1, -1, 0, 3};
      tr[i].kind = 0;
      tr[i].nsops = 1 + rnd() % 2;
      for (uint32_t j = 0; j < tr[i].nsops; j++)
        tr[i].sops[j] = (struct srv_semop_one){(uint16_t)(rnd() % (uint32_t)n), ops[rnd() % 7], NW};
    } else if (r < 8) {
      tr[i].kind = 1;
      tr[i].num = (int)(rnd() % (uint32_t)n);
      tr[i].val = (int)(rnd() % 4);
    } else {
      tr[i].kind = 2;
      for (int j = 0; j < RN; j++)
        tr[i].all[j] = (uint16_t)(rnd() % 3);
    }
  }

  kid = k_semget(IPC_PRIVATE, n, 0600);
  ck_assert_int_ge(kid, 0);
  mid = srv_sem_get(&m, &parent, IPC_PRIVATE, n, 0600, NOW);
  ck_assert_int_ge(mid, 0);
  ck_assert_int_eq(k_setall(kid, init, (uint32_t)n), 0);
  ck_assert_int_eq(m_setall(&m, &parent, mid, init, (uint32_t)n), 0);
  for (int i = 0; i < QW; i++) {
    kres[i] = QPENDING;
    mres[i] = QPENDING;
    kids[i] = -1;
  }

  /* The waiters, one process each, in order: each is in its queue before the next comes. */
  for (int i = 0; i < nw; i++) {
    struct srv_cred c = me();
    struct srv_semwait *w;
    int r;

    seen = ndone;
    kids[i] = k_fork();
    ck_assert_int_ge(kids[i], 0);
    if (kids[i] == 0)
      k_waiter(kid, wt[i].sops, wt[i].nsops, &kres[i]);
    c.pid = (uint32_t)kids[i];
    r = srv_sem_op(&m, &c, 1, mid, wt[i].sops, wt[i].nsops, NULL, NOW, &w);
    if (r == 1)
      w->ctx = (void *)(intptr_t)i;
    else
      mres[i] = -r;
    q_collect(mres, seen);
    q_settle(kres, mres, i + 1, kid, n);
    for (int j = 0; j <= i; j++)
      SAME(kres[j], mres[j], "seed %d waiter %d: result of waiter %d", seed, i, j);
    same_state(kid, &m, mid, (uint32_t)n, __LINE__, "after a waiter");
    if (nbad > 0) /* one difference is enough; the rest would only wait */
      goto out;
  }
  /* Calls that let them run. */
  for (int i = 0; i < nt; i++) {
    seen = ndone;
    if (tr[i].kind == 2) {
      SAME(k_setall(kid, tr[i].all, (uint32_t)n), m_setall(&m, &parent, mid, tr[i].all, (uint32_t)n),
           "seed %d trigger %d", seed, i);
    } else {
      SAME(k_step(kid, &tr[i]), m_step(&m, &parent, mid, &tr[i]), "seed %d trigger %d", seed, i);
    }
    q_collect(mres, seen);
    q_settle(kres, mres, nw, kid, n);
    for (int j = 0; j < nw; j++)
      SAME(kres[j], mres[j], "seed %d trigger %d: result of waiter %d", seed, i, j);
    same_state(kid, &m, mid, (uint32_t)n, __LINE__, "after a trigger");
    if (nbad > 0)
      goto out;
  }
  /* IPC_RMID ends the rest. */
  seen = ndone;
  SAME(k_ctl(kid, 0, IPC_RMID, 0), m_ctl(&m, &root, mid, 0, IPC_RMID, 0), "IPC_RMID");
  k_forget(kid);
  q_collect(mres, seen);
  q_settle(kres, mres, nw, kid, 0);
  for (int j = 0; j < nw; j++)
    SAME(kres[j], mres[j], "seed %d after IPC_RMID: result of waiter %d", seed, j);
out:
  k_cleanup(); /* the waiters (and the set, if it is still there) */
  srv_semtab_fini(&m);
  munmap((void *)kres, QW * sizeof(int));
  ck_assert_int_eq(nbad, 0);
}
END_TEST

/* The scenarios of the targeted tests above, on the kernel: the same results. */
START_TEST(kernel_scenarios) {
  static const struct {
    int n;
    uint16_t init[3];
    int nw;
    struct qwait w[4];
    int nt;
    struct srv_semop_one t[3][2];
  } sc[] = {
    /* no starvation protection */
    {1, {0}, 2, {{1, {{0, -2, 0}}}, {1, {{0, -1, 0}}}}, 2, {{{0, 1, NW}}, {{0, 3, NW}}}},
    /* the rescan after a complex semop */
    {2, {0}, 2, {{1, {{0, -1, 0}}}, {2, {{1, -1, 0}, {0, 1, 0}}}}, 1, {{{1, 1, NW}}}},
    /* the blocking operation moves on */
    {3, {0, 0, 1}, 3, {{2, {{0, -1, 0}, {1, -1, 0}}}, {1, {{2, 0, 0}}}, {2, {{2, 0, 0}, {0, 0, 0}}}},
     2, {{{0, 1, NW}}, {{2, -1, NW}}}},
    /* EAGAIN and ERANGE in waiting */
    {3, {0}, 2, {{2, {{0, -1, 0}, {1, -1, NW}}}, {2, {{2, -1, 0}, {1, 32767, 0}}}}, 3,
     {{{0, 1, NW}}, {{1, 1, NW}}, {{2, 1, NW}}}},
  };
  volatile int *kres = mmap(NULL, 4 * sizeof(int), PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int i = _i;
  struct srv_semtab m;
  struct srv_cred parent = me();
  int mres[4], kid, mid, seen;
  pid_t kids[4];

  ck_assert_ptr_ne((void *)kres, MAP_FAILED);
  read_klim();
  ndone = 0;
  nbad = 0;
  ck_assert_int_eq(srv_semtab_init(&m, &klim, on_done, NULL), 0);
  kid = k_semget(IPC_PRIVATE, sc[i].n, 0600);
  ck_assert_int_ge(kid, 0);
  mid = srv_sem_get(&m, &parent, IPC_PRIVATE, sc[i].n, 0600, NOW);
  ck_assert_int_eq(k_setall(kid, sc[i].init, (uint32_t)sc[i].n), 0);
  ck_assert_int_eq(m_setall(&m, &parent, mid, sc[i].init, (uint32_t)sc[i].n), 0);
  for (int j = 0; j < 4; j++)
    kres[j] = mres[j] = QPENDING;
  for (int j = 0; j < sc[i].nw; j++) {
    struct srv_cred c = me();
    struct srv_semwait *w;

    kids[j] = k_fork();
    ck_assert_int_ge(kids[j], 0);
    if (kids[j] == 0)
      k_waiter(kid, sc[i].w[j].sops, sc[i].w[j].nsops, &kres[j]);
    c.pid = (uint32_t)kids[j];
    ck_assert_int_eq(srv_sem_op(&m, &c, 1, mid, sc[i].w[j].sops, sc[i].w[j].nsops, NULL, NOW, &w),
                     1);
    w->ctx = (void *)(intptr_t)j;
    q_settle(kres, mres, j + 1, kid, sc[i].n);
  }
  for (int t = 0; t < sc[i].nt; t++) {
    uint32_t nops = sc[i].t[t][1].flg ? 2 : 1;
    seen = ndone;
    SAME(k_op(kid, sc[i].t[t], nops, NULL), m_op(&m, &parent, mid, sc[i].t[t], nops, NULL),
         "scenario %d trigger %d", i, t);
    q_collect(mres, seen);
    q_settle(kres, mres, sc[i].nw, kid, sc[i].n);
    for (int j = 0; j < sc[i].nw; j++)
      SAME(kres[j], mres[j], "scenario %d trigger %d: waiter %d", i, t, j);
    same_state(kid, &m, mid, (uint32_t)sc[i].n, __LINE__, "scenario");
    if (nbad > 0)
      break;
  }
  k_cleanup(); /* the set and the waiters */
  srv_semtab_fini(&m);
  munmap((void *)kres, 4 * sizeof(int));
  ck_assert_int_eq(nbad, 0);
}
END_TEST

static Suite *sems_suite(void) {
  Suite *s = suite_create("sems");
  TCase *tc = tcase_create("sems");
  TCase *tk = tcase_create("kernel");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, create_private_fills_ds);
  tcase_add_test(tc, get_nsems_einval);
  tcase_add_test(tc, get_existing_key);
  tcase_add_test(tc, get_errno_order_follows_kernel);
  tcase_add_test(tc, get_permissions);
  tcase_add_test(tc, semmni_enospc);
  tcase_add_test(tc, semmns_enospc);
  tcase_add_test(tc, semmni_zero_creates_nothing);
  tcase_add_test(tc, init_checks_limits);
  tcase_add_test(tc, ids_are_not_reused_at_once);
  tcase_add_test(tc, ctl_bad_ids_and_commands);
  tcase_add_test(tc, ctl_semnum_range);
  tcase_add_test(tc, ctl_permission_order);
  tcase_add_test(tc, setval_getval_getpid);
  tcase_add_test(tc, setall_getall);
  tcase_add_test(tc, ipc_set_and_rmid_permissions);
  tcase_add_test(tc, ipc_set_moves_ctime);
  tcase_add_test(tc, info_commands);
  tcase_add_test(tc, sem_stat_by_index);
  tcase_add_test(tc, semop_errno_order);
  tcase_add_test(tc, semop_applies_atomically);
  tcase_add_test(tc, semop_operations_run_in_order);
  tcase_add_test(tc, semop_undo_range);
  tcase_add_test(tc, waiters_complete_in_kernel_order);
  tcase_add_test(tc, completed_waiters_set_pid_and_otime);
  tcase_add_test(tc, complex_completion_rescans_the_queue);
  tcase_add_test(tc, merged_queue_order);
  tcase_add_test(tc, ncnt_zcnt_follow_the_blocking_operation);
  tcase_add_test(tc, retried_waiters_can_fail);
  tcase_add_test(tc, rmid_ends_waiters_with_eidrm);
  tcase_add_test(tc, cancel_takes_a_waiter_off);
  tcase_add_test(tc, exit_applies_and_clamps_undo);
  tcase_add_test(tc, exit_moves_otime_even_without_adjustment);
  tcase_add_test(tc, exit_wakes_waiters);
  tcase_add_test(tc, setval_and_setall_clear_undo);
  tcase_add_test(tc, queued_undo_counts_when_it_completes);
  tcase_add_test(tc, exit_skips_removed_sets);
  tcase_add_test(tc, owner_gone_exits_its_processes);
  tcase_add_test(tc, rmid_drops_undo_records);
  tcase_add_test(tc, done_may_call_back_in);
  tcase_add_test(tc, fini_ends_waiters);
  suite_add_tcase(s, tc);

  tcase_add_unchecked_fixture(tk, kernel_up, kernel_down);
  tcase_add_checked_fixture(tk, kernel_setup, NULL);
  tcase_set_timeout(tk, 60);
  tcase_add_test(tk, kernel_errno_table);
  tcase_add_test(tk, kernel_errno_table_unprivileged);
  tcase_add_test(tk, kernel_info);
  tcase_add_loop_test(tk, kernel_failed_undo_and_exit, 0, 5);
  tcase_add_loop_test(tk, kernel_random_sequences_and_exit, 0, 12);
  tcase_add_loop_test(tk, kernel_random_queues, 0, 40);
  tcase_add_loop_test(tk, kernel_scenarios, 0, 4);
  suite_add_tcase(s, tk);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(sems_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
