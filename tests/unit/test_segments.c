/* test_segments.c - the SysV segment table: every errno path of shmget/shmat/shmdt/shmctl,
 * ids, times, deferred destroy, and the one detach path. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>

#include "attach.h"
#include "segments.h"

#define PG PROTO_PAGE_SIZE

static int nsent;

static int count_send(void *opaque, uint32_t node, struct proto_msg *m) {
  (void)opaque;
  (void)node;
  (void)m;
  nsent++;
  return 0;
}

static const struct srv_dir_ops ops = {.send = count_send};
static struct srv_dirctx dctx = {.ops = &ops};
static struct srv_segtab tab;
static struct srv_limits lim = {
  .shmmax = 64 * PG, .shmmin = 1, .shmall = 100, .shmmni = 8,
};

/* Credentials: an owner, a stranger, a group member, root. */
static const uint32_t groups_200[] = {300, 200};
static const struct srv_cred alice = {.pid = 11, .uid = 1000, .gid = 100};
static const struct srv_cred bob = {.pid = 22, .uid = 2000, .gid = 2000};
static const struct srv_cred carol = {.pid = 33, .uid = 3000, .gid = 100};   /* alice's gid */
static const struct srv_cred dave = {.pid = 44, .uid = 4000, .gid = 4000,
                                     .ngroups = 2, .groups = groups_200};
static const struct srv_cred root = {.pid = 1, .uid = 0, .gid = 0};

static void setup(void) {
  nsent = 0;
  ck_assert_int_eq(srv_segtab_init(&tab, &lim, &dctx), 0);
}

static void teardown(void) {
  srv_segtab_fini(&tab);
}

static struct proto_ds stat_of(const struct srv_cred *c, int id) {
  struct proto_shmctl q = {.shmid = id, .cmd = IPC_STAT};
  struct proto_shmctl_reply r;
  ck_assert_int_eq(srv_seg_ctl(&tab, c, &q, &r), 0);
  ck_assert_int_eq(r.ret, 0);
  return r.ds;
}

static int ctl(const struct srv_cred *c, int id, int cmd, uint32_t uid, uint32_t gid,
               uint32_t mode) {
  struct proto_shmctl q = {.shmid = id, .cmd = cmd, .uid = uid, .gid = gid, .mode = mode};
  struct proto_shmctl_reply r;
  return srv_seg_ctl(&tab, c, &q, &r);
}

/* ---- shmget ---- */

START_TEST(create_private_fills_ds) {
  time_t before = time(NULL);
  int id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 5000, 0640);
  struct proto_ds ds;
  struct srv_seg *s;

  ck_assert_int_ge(id, 0);
  ds = stat_of(&alice, id);
  ck_assert_int_eq(ds.key, IPC_PRIVATE);
  ck_assert_uint_eq(ds.uid, 1000);
  ck_assert_uint_eq(ds.cuid, 1000);
  ck_assert_uint_eq(ds.gid, 100);
  ck_assert_uint_eq(ds.cgid, 100);
  ck_assert_uint_eq(ds.mode, 0640);
  ck_assert_uint_eq(ds.segsz, 5000);  /* exactly as asked */
  ck_assert_uint_eq(ds.cpid, 11);
  ck_assert_uint_eq(ds.lpid, 0);
  ck_assert_uint_eq(ds.nattch, 0);
  ck_assert_int_eq(ds.atime, 0);
  ck_assert_int_eq(ds.dtime, 0);
  ck_assert_int_ge(ds.ctime, before);
  s = srv_seg_lookup(&tab, id);
  ck_assert_ptr_nonnull(s);
  ck_assert_uint_eq(s->npages, 2);   /* storage rounded up */
  ck_assert_uint_eq(s->store.len, 2 * PG);
  ck_assert_uint_eq(s->store.base[2 * PG - 1], 0);
  ck_assert_uint_eq(tab.shm_tot, 2);
  /* Two private segments are distinct. */
  ck_assert_int_ne(srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600), id);
}
END_TEST

START_TEST(create_size_limits_einval) {
  ck_assert_int_eq(srv_seg_get(&tab, &alice, IPC_PRIVATE, 0, 0600), -EINVAL);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 1234, 0, IPC_CREAT | 0600), -EINVAL);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, IPC_PRIVATE, 64 * PG + 1, 0600), -EINVAL);
  ck_assert_int_ge(srv_seg_get(&tab, &alice, IPC_PRIVATE, 64 * PG, 0600), 0);
}
END_TEST

START_TEST(get_missing_key_enoent) {
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 1234, 100, 0600), -ENOENT);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 1234, 100, IPC_EXCL | 0600), -ENOENT);
}
END_TEST

START_TEST(get_existing_key) {
  int id = srv_seg_get(&tab, &alice, 1234, 100, IPC_CREAT | 0600);

  ck_assert_int_ge(id, 0);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 1234, 100, 0600), id);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 1234, 0, 0), id);        /* size 0: any */
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 1234, 50, IPC_CREAT), id);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 1234, 100, IPC_CREAT | IPC_EXCL), -EEXIST);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 1234, 101, 0600), -EINVAL);  /* bigger */
}
END_TEST

START_TEST(get_errno_order_follows_kernel) {
  /* ipcget_public: EEXIST first, then the size check, then permissions. */
  ck_assert_int_ge(srv_seg_get(&tab, &alice, 77, 100, IPC_CREAT | 0600), 0);
  ck_assert_int_eq(srv_seg_get(&tab, &bob, 77, 999, IPC_CREAT | IPC_EXCL | 0600), -EEXIST);
  ck_assert_int_eq(srv_seg_get(&tab, &bob, 77, 999, 0600), -EINVAL);
  ck_assert_int_eq(srv_seg_get(&tab, &bob, 77, 100, 0600), -EACCES);
}
END_TEST

START_TEST(get_permissions) {
  ck_assert_int_ge(srv_seg_get(&tab, &alice, 1, 100, IPC_CREAT | 0640), 0);
  ck_assert_int_ge(srv_seg_get(&tab, &alice, 1, 100, 0600), 0);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 1, 100, 0700), -EACCES); /* x not granted */
  ck_assert_int_ge(srv_seg_get(&tab, &bob, 1, 100, 0), 0);           /* nothing asked */
  ck_assert_int_eq(srv_seg_get(&tab, &bob, 1, 100, 0400), -EACCES);  /* other: --- */
  ck_assert_int_eq(srv_seg_get(&tab, &bob, 1, 100, 0004), -EACCES);  /* any class bit */
  ck_assert_int_ge(srv_seg_get(&tab, &carol, 1, 100, 0440), 0);      /* group: r-- */
  ck_assert_int_eq(srv_seg_get(&tab, &carol, 1, 100, 0660), -EACCES);
  ck_assert_int_ge(srv_seg_get(&tab, &root, 1, 100, 0777), 0);       /* root bypasses */

  /* Supplementary groups count; creator's gid counts as the group too. */
  ck_assert_int_ge(srv_seg_get(&tab, &root, 2, 100, IPC_CREAT | 0060), 0);
  ck_assert_int_eq(ctl(&root, srv_seg_get(&tab, &root, 2, 0, 0), IPC_SET, 0, 200, 0060), 0);
  ck_assert_int_ge(srv_seg_get(&tab, &dave, 2, 100, 0600), 0);
  ck_assert_int_eq(srv_seg_get(&tab, &bob, 2, 100, 0400), -EACCES);

  /* The owner class wins even when it grants less than group or other. */
  ck_assert_int_ge(srv_seg_get(&tab, &alice, 3, 100, IPC_CREAT | 0066), 0);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 3, 100, 0400), -EACCES);
  ck_assert_int_ge(srv_seg_get(&tab, &bob, 3, 100, 0600), 0);
}
END_TEST

START_TEST(shmmni_enospc) {
  for (int i = 0; i < 8; i++)
    ck_assert_int_ge(srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600), 0);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600), -ENOSPC);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 99, 1, IPC_CREAT | 0600), -ENOSPC);
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 99, 1, 0600), -ENOENT);
}
END_TEST

START_TEST(shmall_enospc) {
  ck_assert_int_ge(srv_seg_get(&tab, &alice, IPC_PRIVATE, 60 * PG, 0600), 0);
  ck_assert_int_ge(srv_seg_get(&tab, &alice, IPC_PRIVATE, 40 * PG, 0600), 0); /* 100 pages */
  ck_assert_int_eq(srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600), -ENOSPC);
  ck_assert_uint_eq(tab.shm_tot, 100);
}
END_TEST

START_TEST(huge_limits_guard_rounding) {
  struct srv_limits big = {.shmmax = UINT64_MAX, .shmmin = 1, .shmall = UINT64_MAX,
                           .shmmni = 4};
  struct srv_segtab t2;

  ck_assert_int_eq(srv_segtab_init(&t2, &big, &dctx), 0);
  /* Rounding UINT64_MAX up to pages would wrap: refused, not mapped small. */
  ck_assert_int_eq(srv_seg_get(&t2, &alice, IPC_PRIVATE, UINT64_MAX, 0600), -ENOSPC);
  /* Fits the arithmetic but not the address space. */
  ck_assert_int_eq(srv_seg_get(&t2, &alice, IPC_PRIVATE, UINT64_MAX - 2 * PG, 0600), -ENOMEM);
  ck_assert_uint_eq(t2.in_use, 0);
  ck_assert_uint_eq(t2.shm_tot, 0);
  srv_segtab_fini(&t2);
  ck_assert_int_eq(srv_segtab_init(&t2, &(struct srv_limits){.shmmni = SRV_IPCMNI + 1}, &dctx),
                   -EINVAL);
}
END_TEST

START_TEST(ids_are_not_reused_at_once) {
  int a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  int b;

  ck_assert_int_eq(ctl(&alice, a, IPC_RMID, 0, 0, 0), 0);
  b = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  ck_assert_int_ge(b, 0);
  ck_assert_int_ne(a, b);
  ck_assert_int_eq(a % SRV_IPCMNI, b % SRV_IPCMNI); /* same slot, new sequence */
  ck_assert_ptr_null(srv_seg_lookup(&tab, a));     /* the old id is dead */
  ck_assert_int_eq(stat_of(&alice, b).seq, (uint32_t)b / SRV_IPCMNI);
}
END_TEST

/* ---- shmat / shmdt ---- */

START_TEST(attach_checks_and_counts) {
  int id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 100, 0604);
  struct srv_seg *s;
  struct proto_ds ds;

  ck_assert_int_eq(srv_seg_attach(&tab, &alice, -1, 0, &s), -EINVAL);
  ck_assert_int_eq(srv_seg_attach(&tab, &alice, id + 1, 0, &s), -EINVAL);
  ck_assert_int_eq(srv_seg_attach(&tab, &alice, id + SRV_IPCMNI, 0, &s), -EINVAL); /* seq */
  ck_assert_int_eq(srv_seg_attach(&tab, &bob, id, 0, &s), -EACCES);   /* rw on r-- */
  ck_assert_int_eq(srv_seg_attach(&tab, &bob, id, SHM_RDONLY, &s), 0);
  ck_assert_int_eq(srv_seg_attach(&tab, &alice, id, 0, &s), 0);
  ck_assert_int_eq(srv_seg_attach(&tab, &root, id, 0, &s), 0);
  ds = stat_of(&alice, id);
  ck_assert_uint_eq(ds.nattch, 3);
  ck_assert_uint_eq(ds.lpid, root.pid);
  ck_assert_int_ne(ds.atime, 0);
  /* Write-only other bits do not allow a read-only attach. */
  id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 100, 0602);
  ck_assert_int_eq(srv_seg_attach(&tab, &bob, id, SHM_RDONLY, &s), -EACCES);
}
END_TEST

START_TEST(detach_path_counts_and_times) {
  int id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 100, 0600);
  struct srv_atts atts = {0};
  struct srv_seg *s;
  struct srv_att *at;
  struct proto_ds ds;

  ck_assert_int_eq(srv_att_detach(&atts, &tab, 1, id, 11), -EINVAL); /* not attached */
  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, id, 0, &s), 0);
  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, id, SHM_RDONLY, &s), 0);
  at = srv_att_find(&atts, id);
  ck_assert_ptr_nonnull(at);
  ck_assert_uint_eq(at->nrw, 1);
  ck_assert_uint_eq(at->nro, 1);
  ck_assert_int_eq(srv_att_add(&atts, &tab, &bob, id, 0, &s), -EACCES);
  ck_assert_uint_eq(at->nrw + at->nro, 2); /* a refused attach records nothing */
  ck_assert_int_eq(srv_att_detach(&atts, &tab, 1, id, 55), 0);
  ds = stat_of(&alice, id);
  ck_assert_uint_eq(ds.nattch, 1);
  ck_assert_uint_eq(ds.lpid, 55);
  ck_assert_int_ne(ds.dtime, 0);
  at = srv_att_find(&atts, id);
  ck_assert_uint_eq(at->nrw, 1); /* the read-only one went first */
  ck_assert_int_eq(srv_att_detach(&atts, &tab, 1, id, 55), 0);
  ck_assert_ptr_null(srv_att_find(&atts, id));
  ck_assert_uint_eq(stat_of(&alice, id).nattch, 0);
  ck_assert_ptr_nonnull(srv_seg_lookup(&tab, id)); /* not marked: stays */
  srv_att_detach_all(&atts, &tab, 1, 0);
}
END_TEST

START_TEST(detach_all_on_disconnect) {
  int a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 100, 0600);
  int b = srv_seg_get(&tab, &alice, IPC_PRIVATE, 100, 0600);
  struct srv_atts atts = {0}, other = {0};
  struct srv_seg *s;

  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, a, 0, &s), 0);
  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, a, 0, &s), 0);
  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, b, 0, &s), 0);
  ck_assert_int_eq(srv_att_add(&other, &tab, &alice, b, 0, &s), 0);
  ck_assert_int_eq(ctl(&alice, b, IPC_RMID, 0, 0, 0), 0);
  srv_att_detach_all(&atts, &tab, 1, 11);
  ck_assert_uint_eq(stat_of(&alice, a).nattch, 0);
  ck_assert_uint_eq(stat_of(&alice, b).nattch, 1); /* the other connection still has it */
  ck_assert_ptr_null(atts.v);
  srv_att_detach_all(&other, &tab, 2, 22);
  ck_assert_ptr_null(srv_seg_lookup(&tab, b));     /* marked and unused: destroyed */
  ck_assert_ptr_nonnull(srv_seg_lookup(&tab, a));
}
END_TEST

START_TEST(detach_leaves_directory) {
  int id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 4 * PG, 0600);
  struct srv_atts atts = {0};
  struct srv_seg *s;
  struct proto_run run = {.shmid = id, .first = 0, .count = 1, .mode = PROTO_MODE_EXCLUSIVE};
  struct srv_dpage_info pi;

  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, id, 0, &s), 0);
  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, id, 0, &s), 0);
  ck_assert_int_eq(srv_dir_request(s->dir, 5, 1, PROTO_OP_ACQUIRE, &run, 1), 0);
  ck_assert_int_eq(nsent, 1);
  ck_assert_int_eq(srv_dir_page_info(s->dir, 0, &pi), 0);
  ck_assert_uint_eq(pi.owner, 5);
  ck_assert_int_eq(srv_att_detach(&atts, &tab, 5, id, 11), 0);
  ck_assert_int_eq(srv_dir_page_info(s->dir, 0, &pi), 0);
  ck_assert_uint_eq(pi.owner, 5);           /* still attached once */
  ck_assert_int_eq(srv_att_detach(&atts, &tab, 5, id, 11), 0);
  ck_assert_int_eq(srv_dir_page_info(s->dir, 0, &pi), 0);
  ck_assert_uint_eq(pi.owner, SRV_NODE_NONE);
  srv_att_detach_all(&atts, &tab, 5, 11);
}
END_TEST

/* ---- INHERIT: a forked child's attachments, counted as fork counts them ---- */

START_TEST(inherit_counts_like_fork) {
  int id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 100, 0600);
  struct srv_atts atts = {0};
  struct srv_seg *s;
  struct srv_att *at;
  struct proto_ds ds;
  time_t before;

  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, id, 0, &s), 0);
  /* Fork checks no permission: not even read is left to the owner here. */
  ck_assert_int_eq(ctl(&alice, id, IPC_SET, 1000, 100, 0), 0);
  s->shm_atime = 0;
  tab.dirty = 0;
  before = time(NULL);
  ck_assert_int_eq(srv_att_inherit(&atts, &tab, 77, id, 2, 1), 0);
  ds = stat_of(&root, id);
  ck_assert_uint_eq(ds.nattch, 4);
  ck_assert_uint_eq(ds.lpid, 77);          /* the parent's pid, as fork leaves it */
  ck_assert_int_ge(ds.atime, before);
  ck_assert_int_eq(ds.dtime, 0);
  ck_assert_uint_eq(tab.dirty, SRV_DIRTY_TIMES);
  at = srv_att_find(&atts, id);
  ck_assert_ptr_nonnull(at);
  ck_assert_uint_eq(at->nrw, 3);
  ck_assert_uint_eq(at->nro, 1);
  /* Each one is a real attachment: four detaches to reach 0. */
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(srv_att_detach(&atts, &tab, 1, id, 88), 0);
  ck_assert_uint_eq(stat_of(&root, id).nattch, 1);
  ck_assert_uint_eq(srv_att_find(&atts, id)->nrw, 1); /* read-only ones went first */
  ck_assert_int_eq(srv_att_detach(&atts, &tab, 1, id, 88), 0);
  ck_assert_ptr_null(srv_att_find(&atts, id));
  ck_assert_uint_eq(stat_of(&root, id).nattch, 0);
  srv_att_detach_all(&atts, &tab, 1, 0);
}
END_TEST

START_TEST(inherit_needs_an_attachment_here) {
  int id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 100, 0600);
  int other_id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 100, 0600);
  struct srv_atts atts = {0}, other = {0};
  struct srv_seg *s;
  struct srv_att *at;

  /* Nothing attached on this connection: not even an existing segment. */
  ck_assert_int_eq(srv_att_inherit(&atts, &tab, 11, id, 1, 0), -EINVAL);
  ck_assert_int_eq(srv_att_inherit(&atts, &tab, 11, -1, 1, 0), -EINVAL);
  /* Attached by another connection only, or this one has another segment: still EINVAL. */
  ck_assert_int_eq(srv_att_add(&other, &tab, &alice, id, 0, &s), 0);
  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, other_id, 0, &s), 0);
  ck_assert_int_eq(srv_att_inherit(&atts, &tab, 11, id, 1, 0), -EINVAL);
  ck_assert_int_eq(srv_att_inherit(&atts, &tab, 11, id + SRV_IPCMNI, 1, 0), -EINVAL);
  ck_assert_uint_eq(stat_of(&alice, id).nattch, 1);
  ck_assert_uint_eq(stat_of(&alice, id).lpid, 11);
  ck_assert_ptr_null(srv_att_find(&atts, id));
  ck_assert_uint_eq(atts.n, 1);
  /* Counts that would wrap the record are refused and change nothing. */
  at = srv_att_find(&other, id);
  at->nro = UINT32_MAX - 1;
  ck_assert_int_eq(srv_att_inherit(&other, &tab, 99, id, 0, 2), -EOVERFLOW);
  at->nro = 0;
  at->nrw = UINT32_MAX;
  ck_assert_int_eq(srv_att_inherit(&other, &tab, 99, id, 1, 0), -EOVERFLOW);
  at->nrw = 1;
  ck_assert_uint_eq(stat_of(&alice, id).nattch, 1);
  ck_assert_uint_eq(stat_of(&alice, id).lpid, 11);
  srv_att_detach_all(&atts, &tab, 1, 0);
  srv_att_detach_all(&other, &tab, 2, 0);
  ck_assert_uint_eq(stat_of(&alice, id).nattch, 0);
}
END_TEST

/* shmget, shmat, IPC_RMID, fork: the child's attachments keep the segment alive. */
START_TEST(inherit_keeps_a_removed_segment) {
  int id = srv_seg_get(&tab, &alice, 4321, 100, IPC_CREAT | 0600);
  struct srv_atts atts = {0};
  struct srv_seg *s;

  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, id, 0, &s), 0);
  ck_assert_int_eq(ctl(&alice, id, IPC_RMID, 0, 0, 0), 0);
  ck_assert_uint_eq(stat_of(&alice, id).mode, 0600 | SRV_SHM_DEST);
  ck_assert_int_eq(srv_att_inherit(&atts, &tab, 11, id, 1, 1), 0);
  ck_assert_uint_eq(stat_of(&alice, id).nattch, 3);
  /* The parent detaches, then the child's read-only and read-write attachments go. */
  ck_assert_int_eq(srv_att_detach(&atts, &tab, 1, id, 11), 0);
  ck_assert_ptr_nonnull(srv_seg_lookup(&tab, id));
  ck_assert_int_eq(srv_att_detach(&atts, &tab, 1, id, 12), 0);
  ck_assert_ptr_nonnull(srv_seg_lookup(&tab, id));
  ck_assert_uint_eq(stat_of(&alice, id).nattch, 1);
  ck_assert_int_eq(srv_att_detach(&atts, &tab, 1, id, 12), 0);
  ck_assert_ptr_null(srv_seg_lookup(&tab, id));   /* the last one: destroyed */
  ck_assert_ptr_null(srv_att_find(&atts, id));
  ck_assert_uint_eq(tab.in_use, 0);
  ck_assert_uint_eq(tab.shm_tot, 0);
  /* Same through a disconnect: every inherited attachment goes with the connection. */
  id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 100, 0600);
  ck_assert_int_eq(srv_att_add(&atts, &tab, &alice, id, SHM_RDONLY, &s), 0);
  ck_assert_int_eq(ctl(&alice, id, IPC_RMID, 0, 0, 0), 0);
  ck_assert_int_eq(srv_att_inherit(&atts, &tab, 11, id, 0, 5), 0);
  ck_assert_uint_eq(stat_of(&alice, id).nattch, 6);
  srv_att_detach_all(&atts, &tab, 1, 11);
  ck_assert_ptr_null(srv_seg_lookup(&tab, id));
  ck_assert_uint_eq(tab.in_use, 0);
}
END_TEST

/* ---- shmctl ---- */

START_TEST(rmid_permissions_and_deferred_destroy) {
  int id = srv_seg_get(&tab, &alice, 4321, 100, IPC_CREAT | 0666);
  struct srv_atts atts = {0};
  struct srv_seg *s;
  struct proto_ds ds;
  int again;

  ck_assert_int_eq(ctl(&bob, id, IPC_RMID, 0, 0, 0), -EPERM);  /* rw for all is not enough */
  ck_assert_int_eq(ctl(&bob, -1, IPC_RMID, 0, 0, 0), -EINVAL);
  ck_assert_int_eq(ctl(&bob, id + 1, IPC_RMID, 0, 0, 0), -EINVAL);
  ck_assert_int_eq(srv_att_add(&atts, &tab, &bob, id, 0, &s), 0);
  ck_assert_int_eq(ctl(&alice, id, IPC_RMID, 0, 0, 0), 0);
  ds = stat_of(&bob, id);                 /* the id still works while attached */
  ck_assert_uint_eq(ds.mode, 0666 | SRV_SHM_DEST);
  ck_assert_int_eq(ds.key, IPC_PRIVATE);
  ck_assert_uint_eq(ds.nattch, 1);
  /* The key is free at once. */
  ck_assert_int_eq(srv_seg_get(&tab, &alice, 4321, 100, 0600), -ENOENT);
  again = srv_seg_get(&tab, &alice, 4321, 100, IPC_CREAT | IPC_EXCL | 0600);
  ck_assert_int_ge(again, 0);
  ck_assert_int_ne(again, id);
  /* Linux allows attaching a segment marked for destruction. */
  ck_assert_int_eq(srv_att_add(&atts, &tab, &bob, id, 0, &s), 0);
  ck_assert_int_eq(srv_att_detach(&atts, &tab, 1, id, 22), 0);
  ck_assert_ptr_nonnull(srv_seg_lookup(&tab, id));
  ck_assert_int_eq(srv_att_detach(&atts, &tab, 1, id, 22), 0);
  ck_assert_ptr_null(srv_seg_lookup(&tab, id));  /* destroyed at nattch 0 */
  ck_assert_int_eq(ctl(&alice, id, IPC_STAT, 0, 0, 0), -EINVAL);
  ck_assert_uint_eq(tab.in_use, 1);
  ck_assert_uint_eq(tab.shm_tot, 1);
  srv_att_detach_all(&atts, &tab, 1, 22);
}
END_TEST

START_TEST(rmid_by_creator_root_and_owner) {
  int a = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  int b = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  int c = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);

  ck_assert_int_eq(ctl(&root, a, IPC_RMID, 0, 0, 0), 0);
  ck_assert_ptr_null(srv_seg_lookup(&tab, a)); /* unattached: destroyed at once */
  /* Ownership given to bob: both the creator (alice) and the owner (bob) may remove. */
  ck_assert_int_eq(ctl(&alice, b, IPC_SET, 2000, 2000, 0600), 0);
  ck_assert_int_eq(ctl(&alice, b, IPC_RMID, 0, 0, 0), 0);
  ck_assert_int_eq(ctl(&alice, c, IPC_SET, 2000, 2000, 0600), 0);
  ck_assert_int_eq(ctl(&bob, c, IPC_RMID, 0, 0, 0), 0);
  ck_assert_uint_eq(tab.in_use, 0);
}
END_TEST

START_TEST(ipc_set_changes_perm) {
  int id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);
  struct proto_ds ds;

  ck_assert_int_eq(ctl(&bob, id, IPC_SET, 2000, 2000, 0666), -EPERM);
  ck_assert_int_eq(ctl(&alice, id, IPC_SET, UINT32_MAX, 100, 0666), -EINVAL);
  ck_assert_int_eq(ctl(&alice, id, IPC_SET, 2000, 2001, 07777), 0);
  ds = stat_of(&alice, id); /* alice is still the creator */
  ck_assert_uint_eq(ds.uid, 2000);
  ck_assert_uint_eq(ds.gid, 2001);
  ck_assert_uint_eq(ds.cuid, 1000);
  ck_assert_uint_eq(ds.cgid, 100);
  ck_assert_uint_eq(ds.mode, 0777); /* only the low 9 bits */
  ck_assert_int_ne(ds.ctime, 0);
  ck_assert_int_eq(ctl(&bob, id, IPC_SET, 2000, 2000, 0400), 0); /* bob owns it now */
  ck_assert_uint_eq(stat_of(&bob, id).mode, 0400);
  ck_assert_int_eq(ctl(&root, id, IPC_SET, 0, 0, 0), 0);
  ck_assert_int_eq(ctl(&alice, id + 1, IPC_SET, 0, 0, 0), -EINVAL);
}
END_TEST

START_TEST(ipc_stat_needs_read) {
  int id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0200);

  ck_assert_int_eq(ctl(&alice, id, IPC_STAT, 0, 0, 0), -EACCES);
  ck_assert_int_eq(ctl(&bob, id, IPC_STAT, 0, 0, 0), -EACCES);
  ck_assert_int_eq(ctl(&root, id, IPC_STAT, 0, 0, 0), 0);
  ck_assert_int_eq(ctl(&root, id + 1, IPC_STAT, 0, 0, 0), -EINVAL);
  ck_assert_int_eq(ctl(&root, id, IPC_STAT | 0x100, 0, 0, 0), 0); /* glibc's IPC_64 */
}
END_TEST

START_TEST(unsupported_commands_einval) {
  int id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 1, 0600);

  ck_assert_int_eq(ctl(&alice, id, -1, 0, 0, 0), -EINVAL);
  ck_assert_int_eq(ctl(&alice, -5, IPC_STAT, 0, 0, 0), -EINVAL);
  ck_assert_int_eq(ctl(&alice, id, 99, 0, 0, 0), -EINVAL);
  ck_assert_int_eq(ctl(&alice, id + 1, SHM_LOCK, 0, 0, 0), -EINVAL); /* no such id */
}
END_TEST

START_TEST(shmmni_zero_creates_nothing) {
  struct srv_segtab t2;
  struct srv_limits none = lim;

  none.shmmni = 0;
  ck_assert_int_eq(srv_segtab_init(&t2, &none, &dctx), 0);
  ck_assert_int_eq(srv_seg_get(&t2, &alice, IPC_PRIVATE, 1, 0600), -ENOSPC);
  ck_assert_ptr_null(srv_seg_lookup(&t2, 0));
  srv_segtab_fini(&t2);
}
END_TEST

START_TEST(fini_frees_attached_segments) {
  int id = srv_seg_get(&tab, &alice, IPC_PRIVATE, 3 * PG, 0600);
  struct srv_seg *s;

  ck_assert_int_eq(srv_seg_attach(&tab, &alice, id, 0, &s), 0);
  s->store.base[0] = 1;
  /* teardown's srv_segtab_fini unmaps and frees it; LeakSanitizer checks. */
}
END_TEST

static Suite *segments_suite(void) {
  Suite *s = suite_create("segments");
  TCase *tc = tcase_create("segments");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, create_private_fills_ds);
  tcase_add_test(tc, create_size_limits_einval);
  tcase_add_test(tc, get_missing_key_enoent);
  tcase_add_test(tc, get_existing_key);
  tcase_add_test(tc, get_errno_order_follows_kernel);
  tcase_add_test(tc, get_permissions);
  tcase_add_test(tc, shmmni_enospc);
  tcase_add_test(tc, shmall_enospc);
  tcase_add_test(tc, huge_limits_guard_rounding);
  tcase_add_test(tc, ids_are_not_reused_at_once);
  tcase_add_test(tc, attach_checks_and_counts);
  tcase_add_test(tc, detach_path_counts_and_times);
  tcase_add_test(tc, detach_all_on_disconnect);
  tcase_add_test(tc, detach_leaves_directory);
  tcase_add_test(tc, inherit_counts_like_fork);
  tcase_add_test(tc, inherit_needs_an_attachment_here);
  tcase_add_test(tc, inherit_keeps_a_removed_segment);
  tcase_add_test(tc, rmid_permissions_and_deferred_destroy);
  tcase_add_test(tc, rmid_by_creator_root_and_owner);
  tcase_add_test(tc, ipc_set_changes_perm);
  tcase_add_test(tc, ipc_stat_needs_read);
  tcase_add_test(tc, unsupported_commands_einval);
  tcase_add_test(tc, shmmni_zero_creates_nothing);
  tcase_add_test(tc, fini_frees_attached_segments);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(segments_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
