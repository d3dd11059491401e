/* segments.c - owns SysV shared memory semantics: the id table, shmget/shmat/shmdt/shmctl
 * checks and their errno order, as Linux ipc/shm.c and ipc/util.c implement them. */
#include "segments.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "meta.h"

#ifndef IPC_64
#define IPC_64 0x0100
#endif
#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif

#define S_IRUGO 0444
#define S_IWUGO 0222
#define S_IRWXUGO 0777
#define S_IXUGO 0111

int srv_segtab_init(struct srv_segtab *t, const struct srv_limits *lim,
                    struct srv_dirctx *dirctx) {
  memset(t, 0, sizeof *t);
  if (lim->shmmni > SRV_IPCMNI)
    return -EINVAL;
  t->lim = *lim;
  t->dirctx = dirctx;
  /* At least one slot so that a zero SHMMNI (nothing may be created) needs no special case. */
  t->nslots = lim->shmmni ? (uint32_t)lim->shmmni : 1;
  t->slot = calloc(t->nslots, sizeof *t->slot);
  if (t->slot == NULL)
    return -ENOMEM;
  t->last_idx = -1;
  t->dirfd = -1;
  return 0;
}

void srv_segtab_set_dir(struct srv_segtab *t, int dirfd) {
  t->dirfd = dirfd;
}

static void seg_free(struct srv_segtab *t, struct srv_seg *s) {
  uint32_t idx = (uint32_t)s->shm_id % SRV_IPCMNI;

  t->slot[idx] = NULL;
  t->in_use--;
  t->shm_tot -= s->npages;
  srv_dir_free(s->dir);
  srv_store_fini(&s->store);
  free(s);
}

/* The segment is gone for good: its file goes after the metadata no longer lists it (a
 * crash in between leaves an unlisted file, which the next start removes). */
static void seg_destroy(struct srv_segtab *t, struct srv_seg *s) {
  SRV_VLOG("segment %d destroyed", s->shm_id);
  if (t->dirfd >= 0) {
    if (t->ngone == t->capgone) {
      uint32_t cap = t->capgone ? t->capgone * 2 : 8;
      int32_t *v = realloc(t->gone, cap * sizeof *v);
      if (v != NULL) {
        t->gone = v;
        t->capgone = cap;
      }
    }
    if (t->ngone < t->capgone)
      t->gone[t->ngone++] = s->shm_id;
    t->dirty |= SRV_DIRTY_META;
  }
  seg_free(t, s);
}

void srv_segtab_fini(struct srv_segtab *t) {
  uint32_t i;

  for (i = 0; t->slot != NULL && i < t->nslots; i++)
    if (t->slot[i] != NULL)
      seg_free(t, t->slot[i]);
  free(t->slot);
  t->slot = NULL;
  free(t->gone);
  t->gone = NULL;
  t->ngone = t->capgone = 0;
}

struct srv_seg *srv_seg_lookup(const struct srv_segtab *t, int32_t shmid) {
  uint32_t idx;
  struct srv_seg *s;

  if (shmid < 0)
    return NULL;
  idx = (uint32_t)shmid % SRV_IPCMNI;
  if (idx >= t->nslots)
    return NULL;
  s = t->slot[idx];
  /* The seq part of the id must match too: a stale id of a reused index is not this one. */
  return s != NULL && s->shm_id == shmid ? s : NULL;
}

static int ipcperms(const struct srv_seg *s, const struct srv_cred *c, int flag) {
  return srv_ipc_perms(&s->shm_perm, c, flag);
}

static int may_change(const struct srv_seg *s, const struct srv_cred *c) {
  return srv_ipc_may_change(&s->shm_perm, c);
}

static struct srv_seg *find_key(const struct srv_segtab *t, int32_t key) {
  uint32_t i;
  for (i = 0; i < t->nslots; i++)
    if (t->slot[i] != NULL && t->slot[i]->shm_perm.key == key)
      return t->slot[i];
  return NULL;
}

/* What SHM_HUGETLB gets: the errors the kernel's hugetlb_file_setup() can give, as the
 * caller's host found them; anything else (or nothing) is ENOMEM. Even where the kernel
 * would create the segment, dshm cannot: its coherence unit is the 4 KiB page, and a
 * segment must never pretend to be backed by huge pages (docs/compatibility.md). */
static int huge_refusal(int huge_err) {
  switch (huge_err) {
  case -EINVAL: /* no pool of that page size on the host */
  case -EPERM:  /* neither CAP_IPC_LOCK nor vm.hugetlb_shm_group */
  case -ENOENT: /* no internal hugetlbfs mount for that size */
  case -ENOSPC:
  case -ENOMEM: /* the pool cannot reserve the pages */
    return huge_err;
  default:
    return -ENOMEM;
  }
}

/* newseg(): size limits, page rounding, SHMALL, the huge page checks, SHMMNI, then the
 * allocations. */
static int seg_new(struct srv_segtab *t, const struct srv_cred *c, int32_t key, uint64_t size,
                   int32_t shmflg, int huge_err) {
  uint64_t npages;
  struct srv_seg *s;
  uint32_t idx;
  int err;

  if (size < t->lim.shmmin || size > t->lim.shmmax)
    return -EINVAL;
  npages = size / PROTO_PAGE_SIZE + (size % PROTO_PAGE_SIZE != 0);
  if (npages > UINT64_MAX / PROTO_PAGE_SIZE) /* only with a raised SHMMAX: as the kernel */
    return -ENOSPC;
  if (t->shm_tot + npages < t->shm_tot || t->shm_tot + npages > t->lim.shmall)
    return -ENOSPC;
  if (shmflg & SHM_HUGETLB)
    return huge_refusal(huge_err);
  if (t->in_use >= t->lim.shmmni) /* ipc_addid(), after the memory in the kernel */
    return -ENOSPC;
  for (idx = 0; t->slot[idx] != NULL; idx++) /* in_use < shmmni: a free slot exists */
    ;
  s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  /* The kernel's id: the index plus a sequence number that moves on whenever an index at or
   * below the last one is handed out, so that a freed id is not reused soon. */
  if ((int64_t)idx <= t->last_idx && ++t->seq > SRV_SEQ_MAX)
    t->seq = 0;
  s->shm_id = (int32_t)((SRV_SEQ_TAG + t->seq) * SRV_IPCMNI + idx);
  err = srv_store_init(&s->store, npages, t->dirfd, s->shm_id, 1);
  if (err < 0) {
    srv_log(SRV_LOG_ERROR, "segment %d: cannot create its memory: %s", s->shm_id, strerror(-err));
    goto fail_seg;
  }
  s->dir = srv_dir_new(t->dirctx, s->shm_id, s->store.base, npages);
  if (s->dir == NULL) {
    err = -ENOMEM;
    goto fail_store;
  }
  srv_dir_set_records(s->dir, s->store.rec);
  t->last_idx = idx;
  s->shm_perm.key = key;
  s->shm_perm.uid = s->shm_perm.cuid = c->uid;
  s->shm_perm.gid = s->shm_perm.cgid = c->gid;
  s->shm_perm.mode = (uint32_t)shmflg & S_IRWXUGO;
  s->shm_perm.seq = SRV_SEQ_TAG + t->seq;
  s->shm_segsz = size;
  s->shm_ctime = time(NULL);
  s->shm_cpid = c->pid;
  s->npages = npages;
  t->slot[idx] = s;
  t->in_use++;
  t->shm_tot += npages;
  t->dirty |= SRV_DIRTY_META;
  SRV_VLOG("segment %d created: key %#x, %llu bytes, mode %03o, uid %u", s->shm_id,
           (unsigned)key, (unsigned long long)size, s->shm_perm.mode, c->uid);
  return s->shm_id;

fail_store:
  srv_store_fini(&s->store);
  if (t->dirfd >= 0) {
    char name[32];
    srv_store_name(name, sizeof name, s->shm_id);
    unlinkat(t->dirfd, name, 0);
  }
fail_seg:
  free(s);
  return err;
}

int srv_seg_get_huge(struct srv_segtab *t, const struct srv_cred *c, int32_t key,
                     uint64_t size, int32_t shmflg, int huge_err) {
  struct srv_seg *s;

  if (key == IPC_PRIVATE)
    return seg_new(t, c, key, size, shmflg, huge_err);
  s = find_key(t, key);
  if (s == NULL)
    return (shmflg & IPC_CREAT) ? seg_new(t, c, key, size, shmflg, huge_err) : -ENOENT;
  /* ipcget_public(): EEXIST, then shm_more_checks (size), then ipcperms. */
  if ((shmflg & IPC_CREAT) && (shmflg & IPC_EXCL))
    return -EEXIST;
  if (s->shm_segsz < size)
    return -EINVAL;
  if (ipcperms(s, c, shmflg) < 0)
    return -EACCES;
  return s->shm_id;
}

int srv_seg_get(struct srv_segtab *t, const struct srv_cred *c, int32_t key, uint64_t size,
                int32_t shmflg) {
  return srv_seg_get_huge(t, c, key, size, shmflg, 0);
}

int srv_seg_attach(struct srv_segtab *t, const struct srv_cred *c, int32_t shmid,
                   int32_t shmflg, struct srv_seg **out) {
  struct srv_seg *s = srv_seg_lookup(t, shmid);

  /* Linux lets a process attach a segment already marked SHM_DEST; so do we. */
  if (s == NULL)
    return -EINVAL;
  /* do_shmat(): read, write unless SHM_RDONLY, execute with SHM_EXEC. */
  if (ipcperms(s, c, ((shmflg & SHM_RDONLY) ? S_IRUGO : S_IRUGO | S_IWUGO) |
                         ((shmflg & SHM_EXEC) ? S_IXUGO : 0)) < 0)
    return -EACCES;
  s->shm_nattch++;
  s->shm_atime = time(NULL);
  s->shm_lpid = c->pid;
  t->dirty |= SRV_DIRTY_TIMES;
  *out = s;
  return 0;
}

int srv_seg_reattach(struct srv_segtab *t, const struct srv_cred *c, int32_t shmid,
                     uint32_t nrw, uint32_t nro, struct srv_seg **out) {
  struct srv_seg *s = srv_seg_lookup(t, shmid);

  if (s == NULL)
    return -EINVAL;
  if (ipcperms(s, c, nrw > 0 ? S_IRUGO | S_IWUGO : S_IRUGO) < 0)
    return -EACCES;
  s->shm_nattch += (uint64_t)nrw + nro;
  *out = s;
  return 0;
}

void srv_seg_inherit(struct srv_segtab *t, struct srv_seg *s, uint32_t pid, uint32_t n) {
  /* __shm_open() as fork's dup_mmap runs it, in the parent: nattch, atime and the parent's
   * pid, with no ipcperms and whether or not the segment is marked SHM_DEST. */
  s->shm_nattch += n;
  s->shm_atime = time(NULL);
  s->shm_lpid = pid;
  t->dirty |= SRV_DIRTY_TIMES;
}

int srv_seg_may_destroy(const struct srv_seg *s) {
  return s->shm_nattch == 0 && (s->shm_perm.mode & SRV_SHM_DEST) != 0;
}

void srv__seg_detach(struct srv_segtab *t, struct srv_seg *s, uint32_t pid) {
  s->shm_lpid = pid;
  s->shm_dtime = time(NULL);
  s->shm_nattch--;
  t->dirty |= SRV_DIRTY_TIMES;
  if (srv_seg_may_destroy(s))
    seg_destroy(t, s);
}

void srv_seg_reap(struct srv_segtab *t, struct srv_seg *s) {
  if (srv_seg_may_destroy(s))
    seg_destroy(t, s);
}

void srv_seg_save(const struct srv_seg *s, struct srv_meta_seg *m) {
  m->shm_id = s->shm_id;
  m->key = s->shm_perm.key;
  m->uid = s->shm_perm.uid;
  m->gid = s->shm_perm.gid;
  m->cuid = s->shm_perm.cuid;
  m->cgid = s->shm_perm.cgid;
  m->mode = s->shm_perm.mode;
  m->seq = s->shm_perm.seq;
  m->segsz = s->shm_segsz;
  m->atime = s->shm_atime;
  m->dtime = s->shm_dtime;
  m->ctime = s->shm_ctime;
  m->cpid = s->shm_cpid;
  m->lpid = s->shm_lpid;
}

int srv_seg_restore(struct srv_segtab *t, const struct srv_meta_seg *m, const char **why) {
  uint32_t idx = (uint32_t)m->shm_id % SRV_IPCMNI;
  uint64_t npages = m->segsz / PROTO_PAGE_SIZE + (m->segsz % PROTO_PAGE_SIZE != 0);
  struct srv_seg *s;
  int err;

  *why = NULL;
  if (idx >= t->nslots || t->in_use >= t->lim.shmmni) {
    *why = "more segments, or a higher index, than --shmmni allows";
    return -EBADMSG;
  }
  if (t->slot[idx] != NULL || (m->key != IPC_PRIVATE && find_key(t, m->key) != NULL)) {
    *why = "a segment index or key is used twice";
    return -EBADMSG;
  }
  if (m->segsz > t->lim.shmmax || t->shm_tot + npages < t->shm_tot ||
      t->shm_tot + npages > t->lim.shmall) {
    *why = "segments larger than --shmmax or --shmall allow";
    return -EBADMSG;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  err = srv_store_init(&s->store, npages, t->dirfd, m->shm_id, 0);
  if (err < 0) {
    *why = err == -EBADMSG ? "a segment file has the wrong size"
           : err == -ENOENT ? "a segment file is missing"
                            : "a segment file cannot be mapped";
    free(s);
    return err == -ENOENT ? -EBADMSG : err;
  }
  s->dir = srv_dir_new(t->dirctx, m->shm_id, s->store.base, npages);
  if (s->dir == NULL) {
    srv_store_fini(&s->store);
    free(s);
    return -ENOMEM;
  }
  srv_dir_set_records(s->dir, s->store.rec);
  s->shm_id = m->shm_id;
  s->shm_perm = (struct srv_ipc_perm){m->key, m->uid, m->gid, m->cuid, m->cgid, m->mode, m->seq};
  s->shm_segsz = m->segsz;
  s->shm_atime = m->atime;
  s->shm_dtime = m->dtime;
  s->shm_ctime = m->ctime;
  s->shm_cpid = m->cpid;
  s->shm_lpid = m->lpid;
  s->npages = npages;
  s->lock_uid = m->uid; /* who locked it is not saved: its owner, who usually did */
  t->slot[idx] = s;
  t->in_use++;
  t->shm_tot += npages;
  return 0;
}

/* ---- shmctl commands: one function each, dispatched from SRV_SHMCTL_CMDS ---- */

static int ctl_stat(struct srv_segtab *t, const struct srv_cred *c,
                    const struct proto_shmctl *req, struct proto_shmctl_reply *out) {
  struct srv_seg *s = srv_seg_lookup(t, req->shmid);
  struct proto_ds *ds = &out->ds;

  if (s == NULL)
    return -EINVAL;
  if (ipcperms(s, c, S_IRUGO) < 0)
    return -EACCES;
  ds->key = s->shm_perm.key;
  ds->uid = s->shm_perm.uid;
  ds->gid = s->shm_perm.gid;
  ds->cuid = s->shm_perm.cuid;
  ds->cgid = s->shm_perm.cgid;
  ds->mode = s->shm_perm.mode;
  ds->seq = s->shm_perm.seq;
  ds->segsz = s->shm_segsz;
  ds->atime = s->shm_atime;
  ds->dtime = s->shm_dtime;
  ds->ctime = s->shm_ctime;
  ds->cpid = s->shm_cpid;
  ds->lpid = s->shm_lpid;
  ds->nattch = s->shm_nattch;
  return 0;
}

static int ctl_set(struct srv_segtab *t, const struct srv_cred *c,
                   const struct proto_shmctl *req, struct proto_shmctl_reply *out) {
  struct srv_seg *s = srv_seg_lookup(t, req->shmid);

  (void)out;
  if (s == NULL)
    return -EINVAL;
  if (!may_change(s, c))
    return -EPERM;
  /* ipc_update_perm(): (uid_t)-1 and (gid_t)-1 are not valid ids. */
  if (req->uid == UINT32_MAX || req->gid == UINT32_MAX)
    return -EINVAL;
  s->shm_perm.uid = req->uid;
  s->shm_perm.gid = req->gid;
  s->shm_perm.mode = (s->shm_perm.mode & ~(uint32_t)S_IRWXUGO) | (req->mode & S_IRWXUGO);
  s->shm_ctime = time(NULL);
  t->dirty |= SRV_DIRTY_META;
  return 0;
}

static int ctl_rmid(struct srv_segtab *t, const struct srv_cred *c,
                    const struct proto_shmctl *req, struct proto_shmctl_reply *out) {
  struct srv_seg *s = srv_seg_lookup(t, req->shmid);

  (void)out;
  if (s == NULL)
    return -EINVAL;
  if (!may_change(s, c))
    return -EPERM;
  /* do_shm_rmid(): the key is freed at once, the memory when the last user detaches. */
  s->shm_perm.mode |= SRV_SHM_DEST;
  s->shm_perm.key = IPC_PRIVATE;
  t->dirty |= SRV_DIRTY_META;
  SRV_VLOG("segment %d removed by uid %u (nattch %llu)", s->shm_id, c->uid,
           (unsigned long long)s->shm_nattch);
  if (srv_seg_may_destroy(s))
    seg_destroy(t, s);
  return 0;
}

/* ipc_get_maxidx(): the highest index in use, or 0 when the table is empty (the kernel's -1
 * becomes 0 in shmctl). */
static int max_idx(const struct srv_segtab *t) {
  uint32_t i;

  for (i = t->nslots; i > 0; i--)
    if (t->slot[i - 1] != NULL)
      return (int)(i - 1);
  return 0;
}

/* IPC_INFO: the limits (struct shminfo); shmseg is SHMMNI as on Linux. */
static int ctl_ipc_info(struct srv_segtab *t, const struct srv_cred *c,
                        const struct proto_shmctl *req, struct proto_shmctl_reply *out) {
  (void)c;
  (void)req;
  out->info.shmmax = t->lim.shmmax;
  out->info.shmmin = t->lim.shmmin;
  out->info.shmmni = t->lim.shmmni;
  out->info.shmseg = t->lim.shmmni;
  out->info.shmall = t->lim.shmall;
  return max_idx(t);
}

/* SHM_INFO: usage (struct shm_info). Every page of a segment lives in the store's mapping,
 * so resident is reported as the total and nothing is ever swapped by us. */
static int ctl_shm_info(struct srv_segtab *t, const struct srv_cred *c,
                        const struct proto_shmctl *req, struct proto_shmctl_reply *out) {
  (void)c;
  (void)req;
  out->info.used_ids = t->in_use;
  out->info.shm_tot = t->shm_tot;
  out->info.shm_rss = t->shm_tot;
  out->info.shm_swp = 0;
  return max_idx(t);
}

/* SHM_STAT and SHM_STAT_ANY: shmid is a table index (Linux masks it to one); the return
 * value is the segment's id. SHM_STAT needs read permission, SHM_STAT_ANY does not. */
static int ctl_stat_idx(struct srv_segtab *t, const struct srv_cred *c,
                        const struct proto_shmctl *req, struct proto_shmctl_reply *out) {
  uint32_t idx = (uint32_t)req->shmid % SRV_IPCMNI;
  struct srv_seg *s = idx < t->nslots ? t->slot[idx] : NULL;
  struct proto_shmctl q = *req;
  int err;

  if (s == NULL)
    return -EINVAL;
  if ((req->cmd & ~IPC_64) == SHM_STAT && ipcperms(s, c, S_IRUGO) < 0)
    return -EACCES;
  q.shmid = s->shm_id;
  err = ctl_stat(t, &(struct srv_cred){.uid = 0}, &q, out); /* already checked */
  return err < 0 ? err : s->shm_id;
}

/* The pages that uid has locked: user_shm_lock()'s per-user count. SHM_LOCK is rare, so it
 * is counted from the table when asked; SHM_UNLOCK and the destruction of a locked segment
 * then release its pages with no bookkeeping of their own to keep right. */
static uint64_t locked_pages(const struct srv_segtab *t, uint32_t uid) {
  uint64_t n = 0;

  for (uint32_t i = 0; i < t->nslots; i++) {
    const struct srv_seg *s = t->slot[i];
    if (s != NULL && (s->shm_perm.mode & SRV_SHM_LOCKED) && s->lock_uid == uid)
      n += s->npages;
  }
  return n;
}

/* SHM_LOCK / SHM_UNLOCK: shmctl_do_lock() and shmem_lock(). The caller's host reports its
 * CAP_IPC_LOCK (mode, PROTO_LOCK_CAP_IPC_LOCK) and RLIMIT_MEMLOCK (memlock): without the
 * capability only the owner or creator may, SHM_LOCK needs a non-zero limit (EPERM), and
 * the pages of the segment plus those the caller's user has locked must fit the limit
 * (ENOMEM), counted once per segment for whoever locked it. Pages are never swapped out
 * by the store, so the bit and the count are all there is to it. */
static int ctl_lock(struct srv_segtab *t, const struct srv_cred *c,
                    const struct proto_shmctl *req, struct proto_shmctl_reply *out) {
  struct srv_seg *s = srv_seg_lookup(t, req->shmid);
  int lock = (req->cmd & ~IPC_64) == SHM_LOCK, cap = (req->mode & PROTO_LOCK_CAP_IPC_LOCK) != 0;
  uint64_t limit = req->memlock / PROTO_PAGE_SIZE;

  (void)out;
  if (s == NULL)
    return -EINVAL;
  if (!cap) {
    if (c->uid != s->shm_perm.uid && c->uid != s->shm_perm.cuid)
      return -EPERM;
    if (lock && req->memlock == 0)
      return -EPERM;
  }
  if (!lock) {
    s->shm_perm.mode &= ~(uint32_t)SRV_SHM_LOCKED;
    t->dirty |= SRV_DIRTY_META;
    return 0;
  }
  if (s->shm_perm.mode & SRV_SHM_LOCKED)
    return 0;
  /* locked + npages cannot wrap: both are within shm_tot. */
  if (!cap && req->memlock != PROTO_MEMLOCK_INFINITY &&
      locked_pages(t, c->uid) + s->npages > limit)
    return -ENOMEM;
  s->shm_perm.mode |= SRV_SHM_LOCKED;
  s->lock_uid = c->uid;
  t->dirty |= SRV_DIRTY_META;
  return 0;
}

/* X(cmd, handler): one function per shmctl command. */
#define SRV_SHMCTL_CMDS(X)         \
  X(IPC_RMID, ctl_rmid)            \
  X(IPC_SET, ctl_set)              \
  X(IPC_STAT, ctl_stat)            \
  X(IPC_INFO, ctl_ipc_info)        \
  X(SHM_INFO, ctl_shm_info)        \
  X(SHM_STAT, ctl_stat_idx)        \
  X(SHM_STAT_ANY, ctl_stat_idx)    \
  X(SHM_LOCK, ctl_lock)            \
  X(SHM_UNLOCK, ctl_lock)

int srv_seg_ctl(struct srv_segtab *t, const struct srv_cred *c, const struct proto_shmctl *req,
                struct proto_shmctl_reply *out) {
  int cmd = req->cmd & ~IPC_64; /* glibc adds IPC_64; the layout is ours either way */
  int ret;

  memset(out, 0, sizeof *out);
  if (req->cmd < 0 || req->shmid < 0)
    return -EINVAL;
  switch (cmd) {
#define SRV__CTL_CASE(name, fn) \
  case name:                    \
    ret = fn(t, c, req, out);   \
    break;
    SRV_SHMCTL_CMDS(SRV__CTL_CASE)
#undef SRV__CTL_CASE
  default:
    return -EINVAL;
  }
  if (ret >= 0)
    out->ret = ret;
  return ret;
}
