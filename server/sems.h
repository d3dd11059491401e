/* sems.h - the SysV semaphore table: keys, ids, permissions, values, the queue of blocked
 * semops, SEM_UNDO adjustments. The kernel's ipc/sem.c semantics, errno for errno.
 *
 * Pure state: no I/O, no libuv, no clock of its own (callers pass the time). A semop that
 * must wait is queued here and finished later through the table's done callback; timers,
 * signals and connections are the caller's (server/dispatch.c), which cancels a wait with
 * srv_sem_cancel. Owners: every process is named by (owner, pid), owner being the caller's
 * node (one per connection), so that SEM_UNDO and waits of a lost host can be found.
 */
#ifndef DSHM_SRV_SEMS_H
#define DSHM_SRV_SEMS_H

#include <stdint.h>
#include <sys/queue.h>

#include "proto.h"
#include "ipcperm.h" /* struct srv_cred, struct srv_ipc_perm, SRV_ID_TAG, SRV_IPCMNI */

/* Linux's defaults (include/uapi/linux/sem.h, since 3.19) and fixed values. */
#define SRV_SEMMSL_DEFAULT 32000u      /* semaphores per set */
#define SRV_SEMMNS_DEFAULT 1024000000u /* semaphores, all sets */
#define SRV_SEMOPM_DEFAULT 500u        /* operations per semop */
#define SRV_SEMMNI_DEFAULT 32000u      /* sets; at most SRV_IPCMNI */
#define SRV_SEMVMX         32767       /* largest semval */
#define SRV_SEMAEM         SRV_SEMVMX  /* largest |semadj| */

struct srv_sem_limits {
  uint32_t semmsl;  /* <= PROTO_SEMMSL_MAX */
  uint32_t semmns;
  uint32_t semopm;  /* <= PROTO_SEMOPM_MAX */
  uint32_t semmni;  /* <= SRV_IPCMNI */
};

struct srv_sem {
  uint16_t semval;
  uint32_t sempid;     /* pid of the last semop (or SETVAL/SETALL: the kernel sets it) */
};

struct srv_semwait;
TAILQ_HEAD(srv_semwait_q, srv_semwait);

struct srv_semset {
  int32_t id;
  struct srv_ipc_perm perm;  /* mode: low 9 bits */
  int64_t otime, ctime;      /* seconds */
  uint32_t nsems;
  struct srv_sem *sem;       /* nsems entries */
  struct srv_semwait_q waits; /* blocked semops, oldest first */
};

/* One semop: submitted by srv_sem_op; while blocked, owned by the table's queue. */
struct srv_semop_one {
  uint16_t num;
  int16_t op;
  int16_t flg;             /* IPC_NOWAIT, SEM_UNDO */
};

struct srv_semundo; /* per (owner, pid, set): the semadj array; private to sems.c */
TAILQ_HEAD(srv_semundo_q, srv_semundo);

struct srv_semwait {
  TAILQ_ENTRY(srv_semwait) link;
  struct srv_semset *set;  /* NULL once the set is gone (result -EIDRM) */
  uint32_t owner, pid;
  uint32_t nsops;
  uint32_t blocking;       /* index of the operation it waits on (GETNCNT/GETZCNT) */
  void *ctx;               /* the caller's, untouched here */
  /* Private to sems.c: the kernel's pending list it sits on (or the table's list of ended
   * semops whose done call is due), its undo record, and its result. */
  TAILQ_ENTRY(srv_semwait) qlink;
  struct srv_semwait_q *head;
  struct srv_semundo *undo;
  int status;
  struct srv_semop_one sops[]; /* nsops */
};

/* Called when a queued semop ends without srv_sem_cancel, with the result the kernel would
 * give the sleeper: 0 (applied), -EIDRM (its set was removed), -EAGAIN or -ERANGE (retried
 * once other operations ran, it failed as semop would: IPC_NOWAIT on the operation it now
 * waits on, or a value or adjustment out of range), -EINTR (its process exited: see
 * srv_sem_exit). w is off every queue; after the call the table frees w. The callback may call
 * into the table; semops that such a call ends are reported after it returns. */
typedef void (*srv_sem_done_fn)(void *arg, struct srv_semwait *w, int result);

struct srv_semtab {
  struct srv_sem_limits lim;
  srv_sem_done_fn done;
  void *done_arg;
  struct srv_semset **slot;  /* lim.semmni entries, indexed by id % SRV_IPCMNI */
  uint32_t in_use;           /* sets */
  uint64_t sem_tot;          /* semaphores in all sets */
  int64_t last_idx;          /* like the kernel: seq moves on when an index is reused */
  uint32_t seq;
  struct srv_semundo_q undo; /* private to sems.c: all records, most recently used first */
  struct srv_semwait_q wakeq; /* private: ended semops whose done call is due */
  int waking;                /* private: done calls under way */
};

/* All functions: loop thread only; return >= 0 or -errno as the kernel would. `now` is
 * the wall-clock time in seconds (otime, ctime). */

int srv_semtab_init(struct srv_semtab *t, const struct srv_sem_limits *lim,
                    srv_sem_done_fn done, void *done_arg);

/* Frees every set and every undo record; blocked semops end with done(-EIDRM). */
void srv_semtab_fini(struct srv_semtab *t);

/* semget(key, nsems, semflg): the semid. */
int srv_sem_get(struct srv_semtab *t, const struct srv_cred *c, int32_t key, int32_t nsems,
                int32_t semflg, int64_t now);

/* semctl(semid, semnum, cmd, ...): fills *out and returns out->ret (or -errno). cmd may carry
 * IPC_64. SETALL takes req->vals (req->nvals must equal the set's nsems, else -EINVAL: the
 * shim sends exactly nsems); GETALL fills vals (room for lim.semmsl entries) and
 * out->nvals. Changes that let blocked semops run finish them (done callback) before this
 * returns; IPC_RMID ends them with -EIDRM. */
int srv_sem_ctl(struct srv_semtab *t, const struct srv_cred *c, const struct proto_semctl *req,
                struct proto_semctl_reply *out, uint16_t *vals, int64_t now);

/* semop / semtimedop(semid, sops, nsops, timeout): 0 done, -errno as the kernel checks them
 * (timeout, when not NULL, is {tv_sec, tv_nsec} as the caller passed it: -EINVAL where the
 * kernel says so), or 1: must wait, *wait queued (the caller sets its ctx right after, arms
 * its timer, and either gets the done callback or cancels it). Operations that let blocked
 * semops run finish them (done callback) before this returns. */
int srv_sem_op(struct srv_semtab *t, const struct srv_cred *c, uint32_t owner, int32_t semid,
               const struct srv_semop_one *sops, uint32_t nsops, const int64_t *timeout,
               int64_t now, struct srv_semwait **wait);

/* Takes a blocked semop off its queue without applying it (timeout, signal, connection
 * gone) and frees it; no done call. From a done callback it may name a semop that has ended
 * but whose done call is still due (dropped, no call), or the one being reported (no effect:
 * the table frees it after the call). */
void srv_sem_cancel(struct srv_semtab *t, struct srv_semwait *w);

/* A process ended (exit, kill): its SEM_UNDO adjustments are applied, as the kernel's
 * exit_sem does (each clamped to [0, SEMVMX], sets removed meanwhile skipped; sempid and
 * otime move), and blocked semops that can now run are finished. A semop of that process
 * still queued (its cancel has not come yet) ends first, with done(-EINTR). */
void srv_sem_exit(struct srv_semtab *t, uint32_t owner, uint32_t pid, int64_t now);

/* A host is lost: srv_sem_exit for every process of owner that has undo records. Its
 * blocked semops are the caller's to cancel first. */
void srv_sem_owner_gone(struct srv_semtab *t, uint32_t owner, int64_t now);

/* The live set with this id, or NULL. */
struct srv_semset *srv_sem_lookup(const struct srv_semtab *t, int32_t semid);

#endif
