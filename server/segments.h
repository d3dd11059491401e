/* segments.h - the SysV segment table: keys, ids, permissions, nattch, deferred destroy. */
#ifndef DSHM_SRV_SEGMENTS_H
#define DSHM_SRV_SEGMENTS_H

#include <stdint.h>

#include "directory.h"
#include "ipcperm.h"
#include "proto.h"
#include "store.h"

#define SRV_SHM_DEST   01000u  /* mode bit Linux shows in IPC_STAT after IPC_RMID */
#define SRV_SHM_LOCKED 02000u

/* Linux defaults (include/uapi/linux/shm.h): effectively unlimited size, 4096 ids. */
#define SRV_SHMMAX_DEFAULT (UINT64_C(0xffffffffffffffff) - (UINT64_C(1) << 24))
#define SRV_SHMALL_DEFAULT SRV_SHMMAX_DEFAULT
#define SRV_SHMMNI_DEFAULT 4096u
#define SRV_SHMMIN         1u

struct srv_limits {
  uint64_t shmmax;   /* bytes */
  uint64_t shmmin;   /* bytes */
  uint64_t shmall;   /* pages, all segments together */
  uint64_t shmmni;   /* segments, <= SRV_IPCMNI */
};

struct srv_seg {
  int32_t shm_id;
  struct srv_ipc_perm shm_perm;
  uint64_t shm_segsz;  /* exactly as asked */
  int64_t shm_atime, shm_dtime, shm_ctime;
  uint32_t shm_cpid, shm_lpid;
  uint64_t shm_nattch;
  uint64_t npages;     /* storage, rounded up */
  uint32_t lock_uid;   /* SHM_LOCKED: who locked it; its pages count against that user's
                        * RLIMIT_MEMLOCK (after a restart with --data-dir: the owner) */
  struct srv_store store;
  struct srv_dir *dir;
};

/* What changed since the metadata was last saved (--data-dir). */
#define SRV_DIRTY_META  1u  /* a segment created, destroyed, or its perms/flags changed */
#define SRV_DIRTY_TIMES 2u  /* only attach/detach times and lpid */

struct srv_meta_seg;

struct srv_segtab {
  struct srv_limits lim;
  int dirfd;              /* --data-dir: segment files live there; -1: anonymous memory */
  uint32_t dirty;         /* SRV_DIRTY_* */
  int32_t *gone;          /* destroyed segments whose files go once the metadata is saved */
  uint32_t ngone, capgone;
  struct srv_dirctx *dirctx;
  struct srv_seg **slot;  /* lim.shmmni entries, indexed by id % SRV_IPCMNI */
  uint32_t nslots;
  uint32_t in_use;
  int64_t last_idx;       /* like the kernel: seq moves on when an index is reused */
  uint32_t seq;
  uint64_t shm_tot;       /* pages in use */
};

/* All functions: loop thread only; return >= 0 or -errno as the kernel would. */

int srv_segtab_init(struct srv_segtab *t, const struct srv_limits *lim,
                    struct srv_dirctx *dirctx);

/* Frees every segment, attached or not (shutdown). Files of a persistent table stay. */
void srv_segtab_fini(struct srv_segtab *t);

/* Makes the table persistent: segments get files in dirfd (not owned). Before any use. */
void srv_segtab_set_dir(struct srv_segtab *t, int dirfd);

/* Restores a segment saved by an earlier run (its file must exist with the right size):
 * same id, key, perms, size, times; nattch 0. 0, -EBADMSG (inconsistent with the table or
 * the limits, or the file's size), or -errno. *why says what is wrong. */
int srv_seg_restore(struct srv_segtab *t, const struct srv_meta_seg *m, const char **why);

/* Fills one record for the metadata file. */
void srv_seg_save(const struct srv_seg *s, struct srv_meta_seg *m);

/* Destroys s if srv_seg_may_destroy (the grace period after a restart ended and nobody
 * re-registered an attachment of a segment that was removed while attached). */
void srv_seg_reap(struct srv_segtab *t, struct srv_seg *s);

/* shmget(key, size, shmflg): the shmid. A new segment with SHM_HUGETLB is refused with
 * ENOMEM (dshm cannot back a segment with huge pages). */
int srv_seg_get(struct srv_segtab *t, const struct srv_cred *c, int32_t key, uint64_t size,
                int32_t shmflg);

/* The same with huge_err, the caller's host's answer to SHM_HUGETLB for a new segment
 * (-EINVAL, -EPERM, -ENOMEM, ...; 0 unknown): returned where the kernel checks the huge
 * page pool, after the size checks and before the id is allocated. */
int srv_seg_get_huge(struct srv_segtab *t, const struct srv_cred *c, int32_t key,
                     uint64_t size, int32_t shmflg, int huge_err);

/* shmat's checks and accounting: nattch++, atime, lpid. *out is the segment. */
int srv_seg_attach(struct srv_segtab *t, const struct srv_cred *c, int32_t shmid,
                   int32_t shmflg, struct srv_seg **out);

/* A reconnecting node's existing attachments (REATTACH): the same checks as shmat
 * (read, and write when nrw > 0), nattch += nrw + nro; times and lpid do not move (no new
 * shmat happened). *out is the segment. */
int srv_seg_reattach(struct srv_segtab *t, const struct srv_cred *c, int32_t shmid,
                     uint32_t nrw, uint32_t nro, struct srv_seg **out);

/* A forked child's inherited attachments (INHERIT): nattch += n, atime now, lpid = pid
 * (the parent's: fork counts them in the parent's context). No permission check, and s may
 * be marked SHM_DEST. Only srv_att_inherit() calls this, so that each attachment counted
 * here is recorded on a connection and dropped through the one detach path. */
void srv_seg_inherit(struct srv_segtab *t, struct srv_seg *s, uint32_t pid, uint32_t n);

/* shmdt's accounting: nattch--, dtime, lpid; destroys the segment if srv_seg_may_destroy.
 * Only srv_att_detach() calls this, so that every detach path is the same. */
void srv__seg_detach(struct srv_segtab *t, struct srv_seg *s, uint32_t pid);

/* The one deferred-destroy predicate. */
int srv_seg_may_destroy(const struct srv_seg *s);

/* shmctl(shmid, cmd, ...): fills *out (ret, ds, info) and returns ret. cmd may carry
 * IPC_64. Unsupported commands: -EINVAL. */
int srv_seg_ctl(struct srv_segtab *t, const struct srv_cred *c, const struct proto_shmctl *req,
                struct proto_shmctl_reply *out);

/* The live segment with this id, or NULL. */
struct srv_seg *srv_seg_lookup(const struct srv_segtab *t, int32_t shmid);

#endif
