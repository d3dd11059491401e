/* sems.c - owns SysV semaphore semantics: the set table, semget/semctl/semop checks and their
 * errno order, the queues of blocked semops and SEM_UNDO, as Linux ipc/sem.c implements them. */
#include "sems.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>

#include "log.h"

#ifndef IPC_64
#define IPC_64 0x0100
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif

#define S_IRUGO 0444
#define S_IWUGO 0222
#define S_IRWXUGO 0777

/* What IPC_INFO reports for the kernel's unused compile-time constants (uapi/linux/sem.h):
 * SEMMNU and SEMMAP are SEMMNS, SEMUME is SEMOPM, all at their defaults, whatever the limits
 * in force; SEMUSZ is "sizeof struct sem_undo". */
#define K_SEMMNU 1024000000
#define K_SEMMAP 1024000000
#define K_SEMUME 500
#define K_SEMUSZ 20

#define NSEC_PER_SEC 1000000000

/* One semaphore's queues of blocked one-operation semops. */
struct semq {
  struct srv_semwait_q alter; /* decrements (an increment never waits) */
  struct srv_semwait_q zero;  /* wait-for-zero */
};

/* The kernel's sem_array around the public set. While a semop of several operations waits
 * (complex_count > 0) the one-operation decrements wait in pending_alter too, in one list
 * with the complex ones ("merged"); otherwise each waits in its semaphore's queue. */
struct semarr {
  struct srv_semset set;
  struct semq *q;                     /* nsems entries */
  struct srv_semwait_q pending_alter; /* complex semops that alter (and merged decrements) */
  struct srv_semwait_q pending_const; /* complex semops that only wait for zero */
  uint32_t complex_count;             /* queued semops of more than one operation */
  struct srv_semundo_q undos;         /* the undo records of this set, newest first */
};

/* A process's adjustments for one set (the kernel's sem_undo). */
struct srv_semundo {
  TAILQ_ENTRY(srv_semundo) proc_link; /* t->undo, most recently used first */
  TAILQ_ENTRY(srv_semundo) set_link;  /* its set's undos */
  struct semarr *arr;
  uint32_t owner, pid;
  int16_t semadj[];                   /* nsems */
};

static struct semarr *arr_of(struct srv_semset *s) {
  return (struct semarr *)(void *)((char *)s - offsetof(struct semarr, set));
}

static uint32_t nslots(const struct srv_semtab *t) {
  /* At least one slot so that a zero SEMMNI (nothing may be created) needs no special case. */
  return t->lim.semmni ? t->lim.semmni : 1;
}

int srv_semtab_init(struct srv_semtab *t, const struct srv_sem_limits *lim,
                    srv_sem_done_fn done, void *done_arg) {
  memset(t, 0, sizeof *t);
  TAILQ_INIT(&t->undo);
  TAILQ_INIT(&t->wakeq);
  if (lim->semmni > SRV_IPCMNI || lim->semmsl > PROTO_SEMMSL_MAX ||
      lim->semopm > PROTO_SEMOPM_MAX)
    return -EINVAL;
  t->lim = *lim;
  t->done = done;
  t->done_arg = done_arg;
  t->slot = calloc(nslots(t), sizeof *t->slot);
  if (t->slot == NULL)
    return -ENOMEM;
  t->last_idx = -1;
  return 0;
}

struct srv_semset *srv_sem_lookup(const struct srv_semtab *t, int32_t semid) {
  uint32_t idx;
  struct srv_semset *s;

  if (semid < 0 || t->slot == NULL)
    return NULL;
  idx = (uint32_t)semid % SRV_IPCMNI;
  if (idx >= nslots(t))
    return NULL;
  s = t->slot[idx];
  /* The seq part of the id must match too: a stale id of a reused index is not this one. */
  return s != NULL && s->id == semid ? s : NULL;
}

/* ---- the queues: do_smart_update() and its helpers, with the kernel's order ---- */

/* The semop ends with status; its done call comes from flush_wakeups, once the table is
 * consistent (the kernel's wake_q). */
static void wake(struct srv_semtab *t, struct srv_semwait *w, int status) {
  w->status = status;
  w->head = &t->wakeq;
  TAILQ_INSERT_TAIL(&t->wakeq, w, qlink);
}

/* unlink_queue(): w leaves its pending list and the set's list of waiters. */
static void unlink_wait(struct semarr *a, struct srv_semwait *w) {
  TAILQ_REMOVE(w->head, w, qlink);
  TAILQ_REMOVE(&a->set.waits, w, link);
  w->head = NULL;
  if (w->nsops > 1)
    a->complex_count--;
}

/* Every done call that is due, oldest first. A done callback may call into the table: what
 * such a nested call ends is delivered by this same loop. */
static void flush_wakeups(struct srv_semtab *t) {
  struct srv_semwait *w;

  if (t->waking)
    return;
  t->waking = 1;
  while ((w = TAILQ_FIRST(&t->wakeq)) != NULL) {
    TAILQ_REMOVE(&t->wakeq, w, qlink);
    w->head = NULL;
    if (t->done != NULL)
      t->done(t->done_arg, w, w->status);
    free(w);
  }
  t->waking = 0;
}

/* merge_queues(): a complex semop is about to wait; the per-semaphore decrements move to
 * pending_alter, the queue of the highest semaphore first (the kernel splices each one in
 * front of the list, from semaphore 0 up). */
static void merge_queues(struct semarr *a) {
  struct srv_semwait_q all;
  struct srv_semwait *w;
  uint32_t i;

  TAILQ_INIT(&all);
  for (i = a->set.nsems; i-- > 0;)
    TAILQ_CONCAT(&all, &a->q[i].alter, qlink);
  TAILQ_CONCAT(&all, &a->pending_alter, qlink);
  TAILQ_CONCAT(&a->pending_alter, &all, qlink);
  TAILQ_FOREACH(w, &a->pending_alter, qlink)
    w->head = &a->pending_alter;
}

/* unmerge_queues(): the kernel's sem_unlock() of the whole set. With no complex semop left,
 * the decrements go back to their semaphores' queues in their order. Every operation on a set
 * ends with it. */
static void unmerge_queues(struct semarr *a) {
  struct srv_semwait *w;

  if (a->complex_count > 0)
    return;
  while ((w = TAILQ_FIRST(&a->pending_alter)) != NULL) {
    TAILQ_REMOVE(&a->pending_alter, w, qlink);
    w->head = &a->q[w->sops[0].num].alter;
    TAILQ_INSERT_TAIL(w->head, w, qlink);
  }
}

/* The queue a semop that must wait joins, as do_semtimedop() chooses it. */
static void enqueue(struct semarr *a, struct srv_semwait *w, int alter) {
  if (w->nsops == 1) {
    struct semq *q = &a->q[w->sops[0].num];
    w->head = !alter ? &q->zero : a->complex_count > 0 ? &a->pending_alter : &q->alter;
  } else {
    if (a->complex_count == 0)
      merge_queues(a);
    w->head = alter ? &a->pending_alter : &a->pending_const;
    a->complex_count++;
  }
  TAILQ_INSERT_TAIL(w->head, w, qlink);
  TAILQ_INSERT_TAIL(&a->set.waits, w, link);
}

/* perform_atomic_semop(): the operations in their order, each on the values the ones before
 * it left (what the kernel's two variants amount to), all or none. 0: applied, every
 * semaphore named gets sempid; 1: must wait on operation *blocking; -EAGAIN: that operation
 * has IPC_NOWAIT; -ERANGE: a value above SEMVMX or an adjustment outside [-SEMAEM-1, SEMAEM]. */
static int try_ops(struct srv_semset *s, const struct srv_semop_one *sops, uint32_t nsops,
                   struct srv_semundo *un, uint32_t pid, uint32_t *blocking) {
  uint32_t i;
  int r;

  for (i = 0; i < nsops; i++) {
    struct srv_sem *sem = &s->sem[sops[i].num];
    int32_t op = sops[i].op;
    int32_t v = (int32_t)sem->semval + op;

    if ((op == 0 && sem->semval != 0) || v < 0) {
      *blocking = i;
      r = (sops[i].flg & IPC_NOWAIT) ? -EAGAIN : 1;
      goto revert;
    }
    if (v > SRV_SEMVMX) {
      r = -ERANGE;
      goto revert;
    }
    if (sops[i].flg & SEM_UNDO) {
      int32_t adj = un->semadj[sops[i].num] - op;
      if (adj < -SRV_SEMAEM - 1 || adj > SRV_SEMAEM) {
        r = -ERANGE;
        goto revert;
      }
      un->semadj[sops[i].num] = (int16_t)adj;
    }
    sem->semval = (uint16_t)v;
  }
  for (i = 0; i < nsops; i++)
    s->sem[sops[i].num].sempid = pid;
  return 0;

revert:
  while (i-- > 0) {
    s->sem[sops[i].num].semval = (uint16_t)(s->sem[sops[i].num].semval - sops[i].op);
    if (sops[i].flg & SEM_UNDO)
      un->semadj[sops[i].num] = (int16_t)(un->semadj[sops[i].num] + sops[i].op);
  }
  return r;
}

static int retry(struct semarr *a, struct srv_semwait *w) {
  return try_ops(&a->set, w->sops, w->nsops, w->undo, w->pid, &w->blocking);
}

/* wake_const_ops(): the wait-for-zero semops of one list that can run now, or fail. 1 if one
 * of them completed. */
static int wake_zero_list(struct srv_semtab *t, struct semarr *a, struct srv_semwait_q *l) {
  struct srv_semwait *w, *next;
  int completed = 0;

  for (w = TAILQ_FIRST(l); w != NULL; w = next) {
    int r;

    next = TAILQ_NEXT(w, qlink);
    r = retry(a, w);
    if (r > 0)
      continue;
    unlink_wait(a, w);
    wake(t, w, r);
    if (r == 0)
      completed = 1;
  }
  return completed;
}

/* do_smart_wakeup_zero(): after the operations sops changed the set (NULL: any semaphore may
 * have), the wait-for-zero semops of each semaphore now 0, then the complex ones. */
static int wakeup_zero(struct srv_semtab *t, struct semarr *a, const struct srv_semop_one *sops,
                       uint32_t nsops) {
  int completed = 0, got_zero = 0;
  uint32_t i, n = sops != NULL ? nsops : a->set.nsems;

  for (i = 0; i < n; i++) {
    uint32_t num = sops != NULL ? sops[i].num : i;
    if (a->set.sem[num].semval == 0) {
      got_zero = 1;
      completed |= wake_zero_list(t, a, &a->q[num].zero);
    }
  }
  if (got_zero)
    completed |= wake_zero_list(t, a, &a->pending_const);
  return completed;
}

/* update_queue(): the altering semops of one semaphore's queue (semnum) or of pending_alter
 * (-1), oldest first. After one that completed, the scan starts over unless the kernel's
 * check_restart() shows that nothing older can have become possible. 1 if one completed. */
static int update_queue(struct srv_semtab *t, struct semarr *a, int64_t semnum) {
  struct srv_semwait_q *l = semnum < 0 ? &a->pending_alter : &a->q[semnum].alter;
  struct srv_semwait *w, *next;
  int completed = 0;

again:
  for (w = TAILQ_FIRST(l); w != NULL; w = next) {
    int r, restart = 0;

    next = TAILQ_NEXT(w, qlink);
    /* Only decrements wait in a semaphore's queue: none can run while it is 0. */
    if (semnum >= 0 && a->set.sem[semnum].semval == 0)
      break;
    r = retry(a, w);
    if (r > 0)
      continue;
    unlink_wait(a, w);
    if (r == 0) {
      completed = 1;
      wakeup_zero(t, a, w->sops, w->nsops);
      restart = !TAILQ_EMPTY(&a->pending_alter) || w->nsops > 1;
    }
    wake(t, w, r);
    if (restart)
      goto again;
  }
  return completed;
}

/* do_smart_update(): after a change to the set (sops, or NULL for SETVAL, SETALL and undo at
 * exit), every blocked semop that can now run does; otime moves if one did (or if otime). */
static void smart_update(struct srv_semtab *t, struct semarr *a, const struct srv_semop_one *sops,
                         uint32_t nsops, int otime, int64_t now) {
  uint32_t i;

  otime |= wakeup_zero(t, a, sops, nsops);
  if (!TAILQ_EMPTY(&a->pending_alter)) {
    otime |= update_queue(t, a, -1);
  } else if (sops == NULL) {
    for (i = 0; i < a->set.nsems; i++)
      otime |= update_queue(t, a, i);
  } else {
    /* Without complex semops only decrements wait: only an increment can let one run. */
    for (i = 0; i < nsops; i++)
      if (sops[i].op > 0)
        otime |= update_queue(t, a, sops[i].num);
  }
  if (otime)
    a->set.otime = now;
}

/* ---- undo records ---- */

static struct srv_semundo *undo_find(struct semarr *a, uint32_t owner, uint32_t pid) {
  struct srv_semundo *un;

  TAILQ_FOREACH(un, &a->undos, set_link)
    if (un->owner == owner && un->pid == pid)
      return un;
  return NULL;
}

/* find_alloc_undo(): the process's record for this set, made on its first SEM_UNDO semop
 * (kept even if that semop fails, as the kernel keeps it). It moves to the front of the
 * table's list: exit applies a process's records most recently used first. NULL: no memory. */
static struct srv_semundo *undo_get(struct srv_semtab *t, struct semarr *a, uint32_t owner,
                                    uint32_t pid) {
  struct srv_semundo *un = undo_find(a, owner, pid);

  if (un != NULL) {
    TAILQ_REMOVE(&t->undo, un, proc_link);
  } else {
    /* nsems <= SEMMSL <= PROTO_SEMMSL_MAX */
    un = calloc(1, offsetof(struct srv_semundo, semadj) + a->set.nsems * sizeof un->semadj[0]);
    if (un == NULL)
      return NULL;
    un->arr = a;
    un->owner = owner;
    un->pid = pid;
    TAILQ_INSERT_HEAD(&a->undos, un, set_link);
  }
  TAILQ_INSERT_HEAD(&t->undo, un, proc_link);
  return un;
}

static void undo_free(struct srv_semtab *t, struct srv_semundo *un) {
  TAILQ_REMOVE(&t->undo, un, proc_link);
  TAILQ_REMOVE(&un->arr->undos, un, set_link);
  free(un);
}

/* ---- sets ---- */

static void arr_free(struct semarr *a) {
  free(a->q);
  free(a->set.sem);
  free(a);
}

/* The blocked semops of one list end with -EIDRM; their set is going. */
static void end_all(struct srv_semtab *t, struct semarr *a, struct srv_semwait_q *l) {
  struct srv_semwait *w;

  while ((w = TAILQ_FIRST(l)) != NULL) {
    unlink_wait(a, w);
    w->set = NULL;
    wake(t, w, -EIDRM);
  }
}

/* freeary(): the undo records go, blocked semops end with -EIDRM (their done calls follow
 * in the caller's flush_wakeups), the id is free. */
static void set_destroy(struct srv_semtab *t, struct semarr *a) {
  struct srv_semundo *un;
  struct srv_semwait *w;
  uint32_t i;

  while ((un = TAILQ_FIRST(&a->undos)) != NULL)
    undo_free(t, un);
  end_all(t, a, &a->pending_const);
  end_all(t, a, &a->pending_alter);
  for (i = 0; i < a->set.nsems; i++) {
    end_all(t, a, &a->q[i].zero);
    end_all(t, a, &a->q[i].alter);
  }
  /* Ended semops whose done calls are still due must not point at it either. */
  TAILQ_FOREACH(w, &t->wakeq, qlink)
    if (w->set == &a->set)
      w->set = NULL;
  t->slot[(uint32_t)a->set.id % SRV_IPCMNI] = NULL;
  t->in_use--;
  t->sem_tot -= a->set.nsems;
  arr_free(a);
}

void srv_semtab_fini(struct srv_semtab *t) {
  uint32_t i;

  if (t->slot == NULL)
    return;
  for (i = 0; i < nslots(t); i++)
    if (t->slot[i] != NULL)
      set_destroy(t, arr_of(t->slot[i]));
  flush_wakeups(t);
  free(t->slot);
  t->slot = NULL;
}

static struct srv_semset *find_key(const struct srv_semtab *t, int32_t key) {
  uint32_t i;
  for (i = 0; i < nslots(t); i++)
    if (t->slot[i] != NULL && t->slot[i]->perm.key == key)
      return t->slot[i];
  return NULL;
}

/* newary(): nsems 0, SEMMNS, SEMMNI, then the allocations. */
static int set_new(struct srv_semtab *t, const struct srv_cred *c, int32_t key, uint32_t nsems,
                   int32_t semflg, int64_t now) {
  struct semarr *a;
  uint32_t idx, i;

  if (nsems == 0)
    return -EINVAL;
  if (t->sem_tot + nsems > t->lim.semmns)
    return -ENOSPC;
  if (t->in_use >= t->lim.semmni) /* ipc_addid(), after the memory in the kernel */
    return -ENOSPC;
  for (idx = 0; t->slot[idx] != NULL; idx++) /* in_use < semmni: a free slot exists */
    ;
  a = calloc(1, sizeof *a);
  if (a == NULL)
    return -ENOMEM;
  /* nsems <= SEMMSL <= PROTO_SEMMSL_MAX (srv_sem_get) */
  a->set.sem = calloc(nsems, sizeof *a->set.sem);
  a->q = calloc(nsems, sizeof *a->q);
  if (a->set.sem == NULL || a->q == NULL) {
    arr_free(a);
    return -ENOMEM;
  }
  for (i = 0; i < nsems; i++) {
    TAILQ_INIT(&a->q[i].alter);
    TAILQ_INIT(&a->q[i].zero);
  }
  TAILQ_INIT(&a->pending_alter);
  TAILQ_INIT(&a->pending_const);
  TAILQ_INIT(&a->undos);
  TAILQ_INIT(&a->set.waits);
  /* The kernel's id, as segments.c makes it: the index plus a sequence number that moves on
   * whenever an index at or below the last one is handed out. */
  if ((int64_t)idx <= t->last_idx && ++t->seq > SRV_SEQ_MAX)
    t->seq = 0;
  t->last_idx = idx;
  a->set.id = (int32_t)((SRV_SEQ_TAG + t->seq) * SRV_IPCMNI + idx);
  a->set.perm.key = key;
  a->set.perm.uid = a->set.perm.cuid = c->uid;
  a->set.perm.gid = a->set.perm.cgid = c->gid;
  a->set.perm.mode = (uint32_t)semflg & S_IRWXUGO;
  a->set.perm.seq = SRV_SEQ_TAG + t->seq;
  a->set.ctime = now;
  a->set.nsems = nsems;
  t->slot[idx] = &a->set;
  t->in_use++;
  t->sem_tot += nsems;
  SRV_VLOG("semaphore set %d created: key %#x, %u semaphores, mode %03o, uid %u", a->set.id,
           (unsigned)key, nsems, a->set.perm.mode, c->uid);
  return a->set.id;
}

int srv_sem_get(struct srv_semtab *t, const struct srv_cred *c, int32_t key, int32_t nsems,
                int32_t semflg, int64_t now) {
  struct srv_semset *s;

  if (nsems < 0 || (uint32_t)nsems > t->lim.semmsl)
    return -EINVAL;
  if (key == IPC_PRIVATE)
    return set_new(t, c, key, (uint32_t)nsems, semflg, now);
  s = find_key(t, key);
  if (s == NULL)
    return (semflg & IPC_CREAT) ? set_new(t, c, key, (uint32_t)nsems, semflg, now) : -ENOENT;
  /* ipcget_public(): EEXIST, then sem_more_checks (nsems), then ipcperms. */
  if ((semflg & IPC_CREAT) && (semflg & IPC_EXCL))
    return -EEXIST;
  if ((uint32_t)nsems > s->nsems)
    return -EINVAL;
  if (srv_ipc_perms(&s->perm, c, semflg) < 0)
    return -EACCES;
  return s->id;
}

/* ---- semop ---- */

int srv_sem_op(struct srv_semtab *t, const struct srv_cred *c, uint32_t owner, int32_t semid,
               const struct srv_semop_one *sops, uint32_t nsops, const int64_t *timeout,
               int64_t now, struct srv_semwait **wait) {
  struct srv_semset *s;
  struct semarr *a;
  struct srv_semundo *un = NULL;
  struct srv_semwait *w;
  uint32_t i, max = 0, blocking = 0;
  int undos = 0, alter = 0, r;

  *wait = NULL;
  /* do_semtimedop(), then __do_semtimedop(). */
  if (nsops > t->lim.semopm)
    return -E2BIG;
  if (nsops < 1 || semid < 0)
    return -EINVAL;
  if (timeout != NULL && (timeout[0] < 0 || timeout[1] < 0 || timeout[1] >= NSEC_PER_SEC))
    return -EINVAL;
  for (i = 0; i < nsops; i++) {
    if (sops[i].num > max)
      max = sops[i].num;
    if (sops[i].flg & SEM_UNDO)
      undos = 1;
    if (sops[i].op != 0)
      alter = 1;
  }
  s = srv_sem_lookup(t, semid);
  if (s == NULL)
    return -EINVAL;
  a = arr_of(s);
  /* find_alloc_undo() comes before the checks below in the kernel. */
  if (undos && (un = undo_get(t, a, owner, c->pid)) == NULL)
    return -ENOMEM;
  if (max >= s->nsems)
    return -EFBIG;
  if (srv_ipc_perms(&s->perm, c, alter ? S_IWUGO : S_IRUGO) < 0)
    return -EACCES;

  r = try_ops(s, sops, nsops, un, c->pid, &blocking);
  if (r == 0) {
    if (alter)
      smart_update(t, a, sops, nsops, 1, now);
    else
      s->otime = now;
    unmerge_queues(a);
    flush_wakeups(t);
    return 0;
  }
  if (r < 0)
    return r;

  /* nsops <= SEMOPM <= PROTO_SEMOPM_MAX */
  w = malloc(offsetof(struct srv_semwait, sops) + nsops * sizeof w->sops[0]);
  if (w == NULL)
    return -ENOMEM;
  memset(w, 0, offsetof(struct srv_semwait, sops));
  memcpy(w->sops, sops, nsops * sizeof w->sops[0]);
  w->set = s;
  w->owner = owner;
  w->pid = c->pid;
  w->nsops = nsops;
  w->blocking = blocking;
  w->undo = un;
  enqueue(a, w, alter);
  *wait = w;
  return 1;
}

void srv_sem_cancel(struct srv_semtab *t, struct srv_semwait *w) {
  struct semarr *a;

  if (w->head == NULL) /* from its own done call: the table frees it after that */
    return;
  if (w->head == &t->wakeq) { /* ended, its done call still due */
    TAILQ_REMOVE(&t->wakeq, w, qlink);
    free(w);
    return;
  }
  a = arr_of(w->set);
  unlink_wait(a, w);
  unmerge_queues(a);
  free(w);
}

/* ---- process exit ---- */

void srv_sem_exit(struct srv_semtab *t, uint32_t owner, uint32_t pid, int64_t now) {
  struct srv_semundo *un, *next;
  uint32_t i;

  /* A semop of the process still queued ended with it (its cancel has not come yet). */
  for (i = 0; i < nslots(t); i++) {
    struct srv_semset *s = t->slot[i];
    struct srv_semwait *w, *wnext;

    if (s == NULL)
      continue;
    for (w = TAILQ_FIRST(&s->waits); w != NULL; w = wnext) {
      wnext = TAILQ_NEXT(w, link);
      if (w->owner == owner && w->pid == pid) {
        unlink_wait(arr_of(s), w);
        wake(t, w, -EINTR);
      }
    }
    unmerge_queues(arr_of(s));
  }
  /* exit_sem(): each record, most recently used first. Records of removed sets are gone. */
  for (un = TAILQ_FIRST(&t->undo); un != NULL; un = next) {
    struct semarr *a = un->arr;

    next = TAILQ_NEXT(un, proc_link);
    if (un->owner != owner || un->pid != pid)
      continue;
    for (i = 0; i < a->set.nsems; i++) {
      struct srv_sem *sem = &a->set.sem[i];
      int32_t v;

      if (un->semadj[i] == 0)
        continue;
      /* Linux clamps the result to [0, SEMVMX]. */
      v = (int32_t)sem->semval + un->semadj[i];
      sem->semval = (uint16_t)(v < 0 ? 0 : v > SRV_SEMVMX ? SRV_SEMVMX : v);
      sem->sempid = pid;
    }
    undo_free(t, un);
    smart_update(t, a, NULL, 0, 1, now);
    unmerge_queues(a);
  }
  flush_wakeups(t);
}

void srv_sem_owner_gone(struct srv_semtab *t, uint32_t owner, int64_t now) {
  for (;;) {
    struct srv_semundo *un;

    TAILQ_FOREACH(un, &t->undo, proc_link)
      if (un->owner == owner)
        break;
    if (un == NULL)
      return;
    srv_sem_exit(t, owner, un->pid, now); /* drops every record of that pid */
  }
}

/* ---- semctl commands: one function each, dispatched from SRV_SEMCTL_CMDS ---- */

struct ctl_args {
  const struct srv_cred *c;
  const struct proto_semctl *req;
  int cmd;                       /* without IPC_64 */
  struct proto_semctl_reply *out;
  uint16_t *vals;
  int64_t now;
};

static void fill_ds(const struct srv_semset *s, struct proto_semds *ds) {
  ds->key = s->perm.key;
  ds->uid = s->perm.uid;
  ds->gid = s->perm.gid;
  ds->cuid = s->perm.cuid;
  ds->cgid = s->perm.cgid;
  ds->mode = s->perm.mode;
  ds->seq = s->perm.seq;
  ds->otime = s->otime;
  ds->ctime = s->ctime;
  ds->nsems = s->nsems;
}

/* IPC_STAT by id; SEM_STAT and SEM_STAT_ANY by table index (Linux masks the id to one),
 * returning the set's id. SEM_STAT_ANY needs no read permission. */
static int ctl_stat(struct srv_semtab *t, const struct ctl_args *x) {
  struct srv_semset *s;

  if (x->cmd == IPC_STAT) {
    s = srv_sem_lookup(t, x->req->semid);
  } else {
    uint32_t idx = (uint32_t)x->req->semid % SRV_IPCMNI;
    s = idx < nslots(t) ? t->slot[idx] : NULL;
  }
  if (s == NULL)
    return -EINVAL;
  if (x->cmd != SEM_STAT_ANY && srv_ipc_perms(&s->perm, x->c, S_IRUGO) < 0)
    return -EACCES;
  fill_ds(s, &x->out->ds);
  return x->cmd == IPC_STAT ? 0 : s->id;
}

/* ipc_get_maxidx(): the highest index in use, or 0 when the table is empty (the kernel's -1
 * becomes 0 in semctl). */
static int max_idx(const struct srv_semtab *t) {
  uint32_t i;

  for (i = nslots(t); i > 0; i--)
    if (t->slot[i - 1] != NULL)
      return (int)(i - 1);
  return 0;
}

static int32_t clamp_int(uint64_t v) {
  return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

/* semctl_info(): the limits; SEM_INFO puts the sets in use in semusz and the semaphores in
 * semaem, IPC_INFO the kernel's constants. */
static int ctl_info(struct srv_semtab *t, const struct ctl_args *x) {
  struct proto_seminfo *in = &x->out->info;

  in->semmni = clamp_int(t->lim.semmni);
  in->semmns = clamp_int(t->lim.semmns);
  in->semmsl = clamp_int(t->lim.semmsl);
  in->semopm = clamp_int(t->lim.semopm);
  in->semvmx = SRV_SEMVMX;
  in->semmnu = K_SEMMNU;
  in->semmap = K_SEMMAP;
  in->semume = K_SEMUME;
  if (x->cmd == SEM_INFO) {
    in->semusz = clamp_int(t->in_use);
    in->semaem = clamp_int(t->sem_tot);
  } else {
    in->semusz = K_SEMUSZ;
    in->semaem = SRV_SEMAEM;
  }
  return max_idx(t);
}

/* count_semcnt(): each blocked semop counts once, for the operation it waits on. */
static int count_waiting(const struct srv_semset *s, uint32_t semnum, int zero) {
  const struct srv_semwait *w;
  int n = 0;

  TAILQ_FOREACH(w, &s->waits, link) {
    const struct srv_semop_one *op = &w->sops[w->blocking];
    if (op->num == semnum && (zero ? op->op == 0 : op->op < 0))
      n++;
  }
  return n;
}

/* GETVAL, GETPID, GETNCNT, GETZCNT: semctl_main() checks read permission before semnum. */
static int ctl_getone(struct srv_semtab *t, const struct ctl_args *x) {
  struct srv_semset *s = srv_sem_lookup(t, x->req->semid);
  uint32_t n;

  if (s == NULL)
    return -EINVAL;
  if (srv_ipc_perms(&s->perm, x->c, S_IRUGO) < 0)
    return -EACCES;
  if (x->req->semnum < 0 || (uint32_t)x->req->semnum >= s->nsems)
    return -EINVAL;
  n = (uint32_t)x->req->semnum;
  switch (x->cmd) {
  case GETVAL:
    return s->sem[n].semval;
  case GETPID:
    return (int)s->sem[n].sempid;
  case GETNCNT:
    return count_waiting(s, n, 0);
  default: /* GETZCNT */
    return count_waiting(s, n, 1);
  }
}

static int ctl_getall(struct srv_semtab *t, const struct ctl_args *x) {
  struct srv_semset *s = srv_sem_lookup(t, x->req->semid);
  uint32_t i;

  if (s == NULL)
    return -EINVAL;
  if (srv_ipc_perms(&s->perm, x->c, S_IRUGO) < 0)
    return -EACCES;
  if (x->vals == NULL)
    return -EFAULT;
  for (i = 0; i < s->nsems; i++) /* nsems <= lim.semmsl: the room the caller gives */
    x->vals[i] = s->sem[i].semval;
  x->out->nvals = s->nsems;
  return 0;
}

/* semctl_setval(): the range first, then the id, semnum, and alter permission. */
static int ctl_setval(struct srv_semtab *t, const struct ctl_args *x) {
  struct srv_semset *s;
  struct semarr *a;
  struct srv_semundo *un;
  uint32_t n;

  if (x->req->val < 0 || x->req->val > SRV_SEMVMX)
    return -ERANGE;
  s = srv_sem_lookup(t, x->req->semid);
  if (s == NULL)
    return -EINVAL;
  if (x->req->semnum < 0 || (uint32_t)x->req->semnum >= s->nsems)
    return -EINVAL;
  if (srv_ipc_perms(&s->perm, x->c, S_IWUGO) < 0)
    return -EACCES;
  a = arr_of(s);
  n = (uint32_t)x->req->semnum;
  TAILQ_FOREACH(un, &a->undos, set_link)
    un->semadj[n] = 0;
  s->sem[n].semval = (uint16_t)x->req->val;
  s->sem[n].sempid = x->c->pid;
  s->ctime = x->now;
  smart_update(t, a, NULL, 0, 0, x->now);
  unmerge_queues(a);
  return 0;
}

/* SETALL: alter permission, then the values (exactly nsems, each <= SEMVMX). */
static int ctl_setall(struct srv_semtab *t, const struct ctl_args *x) {
  struct srv_semset *s = srv_sem_lookup(t, x->req->semid);
  struct semarr *a;
  struct srv_semundo *un;
  uint32_t i;

  if (s == NULL)
    return -EINVAL;
  if (srv_ipc_perms(&s->perm, x->c, S_IWUGO) < 0)
    return -EACCES;
  /* Where the kernel would fault on a short array. */
  if (x->req->nvals != s->nsems || x->req->vals == NULL)
    return -EINVAL;
  for (i = 0; i < s->nsems; i++)
    if (proto_get_u16(x->req->vals + 2 * i) > SRV_SEMVMX)
      return -ERANGE;
  a = arr_of(s);
  for (i = 0; i < s->nsems; i++) {
    s->sem[i].semval = proto_get_u16(x->req->vals + 2 * i);
    s->sem[i].sempid = x->c->pid;
  }
  TAILQ_FOREACH(un, &a->undos, set_link)
    memset(un->semadj, 0, s->nsems * sizeof un->semadj[0]);
  s->ctime = x->now;
  smart_update(t, a, NULL, 0, 0, x->now);
  unmerge_queues(a);
  return 0;
}

/* IPC_SET: owner, creator or root; then ipc_update_perm()'s id check. */
static int ctl_set(struct srv_semtab *t, const struct ctl_args *x) {
  struct srv_semset *s = srv_sem_lookup(t, x->req->semid);

  if (s == NULL)
    return -EINVAL;
  if (!srv_ipc_may_change(&s->perm, x->c))
    return -EPERM;
  /* (uid_t)-1 and (gid_t)-1 are not valid ids. */
  if (x->req->uid == UINT32_MAX || x->req->gid == UINT32_MAX)
    return -EINVAL;
  s->perm.uid = x->req->uid;
  s->perm.gid = x->req->gid;
  s->perm.mode = (s->perm.mode & ~(uint32_t)S_IRWXUGO) | (x->req->mode & S_IRWXUGO);
  s->ctime = x->now;
  return 0;
}

static int ctl_rmid(struct srv_semtab *t, const struct ctl_args *x) {
  struct srv_semset *s = srv_sem_lookup(t, x->req->semid);

  if (s == NULL)
    return -EINVAL;
  if (!srv_ipc_may_change(&s->perm, x->c))
    return -EPERM;
  SRV_VLOG("semaphore set %d removed by uid %u", s->id, x->c->uid);
  set_destroy(t, arr_of(s));
  return 0;
}

/* X(cmd, handler): one function per semctl command. */
#define SRV_SEMCTL_CMDS(X)      \
  X(IPC_RMID, ctl_rmid)         \
  X(IPC_SET, ctl_set)           \
  X(IPC_STAT, ctl_stat)         \
  X(SEM_STAT, ctl_stat)         \
  X(SEM_STAT_ANY, ctl_stat)     \
  X(IPC_INFO, ctl_info)         \
  X(SEM_INFO, ctl_info)         \
  X(GETVAL, ctl_getone)         \
  X(GETPID, ctl_getone)         \
  X(GETNCNT, ctl_getone)        \
  X(GETZCNT, ctl_getone)        \
  X(GETALL, ctl_getall)         \
  X(SETVAL, ctl_setval)         \
  X(SETALL, ctl_setall)

int srv_sem_ctl(struct srv_semtab *t, const struct srv_cred *c, const struct proto_semctl *req,
                struct proto_semctl_reply *out, uint16_t *vals, int64_t now) {
  struct ctl_args x = {c, req, req->cmd & ~IPC_64, out, vals, now};
  int ret;

  memset(out, 0, sizeof *out);
  /* ksys_semctl(): the id's sign first, whatever the command. */
  if (req->semid < 0 || req->cmd < 0)
    return -EINVAL;
  switch (x.cmd) {
#define SRV__CTL_CASE(name, fn) \
  case name:                    \
    ret = fn(t, &x);            \
    break;
    SRV_SEMCTL_CMDS(SRV__CTL_CASE)
#undef SRV__CTL_CASE
  default:
    return -EINVAL;
  }
  flush_wakeups(t);
  if (ret >= 0)
    out->ret = ret;
  return ret;
}
