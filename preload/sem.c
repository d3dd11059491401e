/* sem.c - owns the interposed semget/semop/semtimedop/semctl: SysV semaphore sets of the
 * networked keys live at the server (through the host agent), the others stay the kernel's.
 * The semantics are the server's (server/sems.c); this file moves arguments across. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <time.h>
#include <unistd.h>

#include "boundary.h"
#include "lifecycle.h"
#include "real.h"
#include "route.h"
#include "session.h"
#include "usercopy.h"

#define SHIM_IPC_64 0x0100
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#define SHIM_IPCMNI 32768 /* ids are (tag + seq) * IPCMNI + index (server/segments.h) */

/* semctl's fourth argument (semctl(2): the caller defines it). */
union shim_semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
  struct seminfo *info;
};

/* "Not the server's: ask the kernel" (never a semctl result nor a -errno). */
#define SHIM_ASK_KERNEL INT_MIN

static int sem_id_is_ours(int semid) {
  return semid >= 0 && (semid & SHIM_ID_TAG) != 0 && shim_route_tables();
}

static struct proto_cred cred_now(void) {
  return (struct proto_cred){(uint32_t)getpid(), (uint32_t)geteuid(), (uint32_t)getegid()};
}

/* One request through the agent; vals (may be NULL) receives GETALL's values. */
static int call(struct proto_msg *req, struct proto_msg *reply, uint8_t *vals, size_t cap) {
  int err = shim_session_ensure();

  return err < 0 ? err : shim_session_call_vals(req, reply, vals, cap);
}

static int do_semget(key_t key, int nsems, int semflg) {
  struct proto_msg *m = calloc(2, sizeof *m);
  int rc;

  if (m == NULL)
    return -ENOMEM;
  m[0].h.opcode = PROTO_OP_SEMGET;
  m[0].u.semget = (struct proto_semget){cred_now(), key, nsems, semflg};
  rc = call(&m[0], &m[1], NULL, 0);
  if (rc == 0)
    rc = m[1].u.semget_reply.semid;
  free(m);
  return rc;
}

SHIM_EXPORT int semget(key_t key, int nsems, int semflg) {
  int err = shim_init();

  if (err == 0 && !shim_route_key(key))
    return shim_real.semget ? shim_real.semget(key, nsems, semflg) : (int)shim_ret(-ENOSYS);
  return (int)shim_ret(err < 0 ? err : do_semget(key, nsems, semflg));
}

/* A semop that may wait for ever: interruptible as the kernel's is (EINTR after a signal
 * handler, SA_RESTART or not), but only the server knows whether it was done meanwhile, so
 * the interruption asks it to cancel, and its answer decides. */
static int wait_semop(struct proto_msg *req) {
  struct shim_waiter w;
  int err = shim_session_ensure(), cancelled = 0;

  if (err < 0)
    return err;
  shim_session_waiter_init(&w, NULL);
  shim_session_intr_begin(&w);
  err = shim_session_submit(req, &w);
  if (err < 0) {
    shim_session_intr_end(&w);
    return err;
  }
  while (shim_session_wait_intr(&w, &err) == 1) {
    struct proto_msg c;
    if (cancelled)
      continue;
    memset(&c, 0, sizeof c);
    c.h.opcode = PROTO_OP_SEM_CANCEL;
    c.h.reqid = shim__session_reqid();
    c.u.sem_cancel.reqid = w.reqid;
    cancelled = shim__session_enqueue(&c) == 0;
  }
  return err;
}

/* The server's --semopm (IPC_INFO), or -errno. */
static int semopm_now(void) {
  struct proto_msg *m = calloc(2, sizeof *m);
  int rc;

  if (m == NULL)
    return -ENOMEM;
  m[0].h.opcode = PROTO_OP_SEMCTL;
  m[0].u.semctl.cred = cred_now();
  m[0].u.semctl.cmd = IPC_INFO;
  rc = call(&m[0], &m[1], NULL, 0);
  if (rc == 0)
    rc = m[1].u.semctl_reply.info.semopm;
  free(m);
  return rc;
}

static int do_semtimedop(int semid, struct sembuf *sops, size_t nsops,
                         const struct timespec *timeout) {
  struct proto_msg *m = NULL;
  uint8_t *wire = NULL;
  struct sembuf one;
  struct timespec ts;
  int rc;

  /* The kernel's order: the timeout is copied first, then the counts are checked, then the
   * operations are copied (the server checks the rest). The server's --semopm is at most
   * PROTO_SEMOPM_MAX: beyond that the answer is E2BIG without asking. */
  if (timeout != NULL && (rc = shim_copy_from_user(&ts, timeout, sizeof ts)) < 0)
    return rc;
  if (nsops < 1 || semid < 0)
    return -EINVAL;
  if (nsops > PROTO_SEMOPM_MAX)
    return -E2BIG;
  wire = malloc(PROTO_SEMOP_SIZE * nsops);
  m = calloc(1, sizeof *m);
  if (wire == NULL || m == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < nsops; i++) {
    if ((rc = shim_copy_from_user(&one, &sops[i], sizeof one)) < 0) {
      /* The kernel checks SEMOPM before it copies: only the server knows it. */
      int opm = semopm_now();
      if (opm > 0 && nsops > (size_t)opm)
        rc = -E2BIG;
      goto out;
    }
    proto_put_u16(wire + i * PROTO_SEMOP_SIZE, one.sem_num);
    proto_put_u16(wire + i * PROTO_SEMOP_SIZE + 2, (uint16_t)one.sem_op);
    proto_put_u16(wire + i * PROTO_SEMOP_SIZE + 4, (uint16_t)one.sem_flg);
  }
  m->h.opcode = PROTO_OP_SEMOP;
  m->u.semop.cred = cred_now();
  m->u.semop.semid = semid;
  if (timeout != NULL) {
    m->u.semop.flags = PROTO_SEMOP_TIMEOUT;
    m->u.semop.tv_sec = ts.tv_sec;
    m->u.semop.tv_nsec = ts.tv_nsec;
  }
  m->u.semop.nsops = (uint32_t)nsops;
  m->u.semop.sops = wire;
  rc = wait_semop(m);
  /* A tagged id the server does not know may be a kernel one. */
  if (rc == -EINVAL)
    rc = SHIM_ASK_KERNEL;
out:
  free(m);
  free(wire);
  return rc;
}

SHIM_EXPORT int semtimedop(int semid, struct sembuf *sops, size_t nsops,
                           const struct timespec *timeout) {
  int rc = shim_init() == 0 && sem_id_is_ours(semid)
               ? do_semtimedop(semid, sops, nsops, timeout) : SHIM_ASK_KERNEL;

  if (rc == SHIM_ASK_KERNEL)
    return shim_real.semtimedop ? shim_real.semtimedop(semid, sops, nsops, timeout)
                                : (int)shim_ret(-ENOSYS);
  return (int)shim_ret(rc);
}

SHIM_EXPORT int semop(int semid, struct sembuf *sops, size_t nsops) {
  int rc = shim_init() == 0 && sem_id_is_ours(semid)
               ? do_semtimedop(semid, sops, nsops, NULL) : SHIM_ASK_KERNEL;

  if (rc == SHIM_ASK_KERNEL)
    return shim_real.semop ? shim_real.semop(semid, sops, nsops) : (int)shim_ret(-ENOSYS);
  return (int)shim_ret(rc);
}

static void to_semid_ds(const struct proto_semds *ds, struct semid_ds *buf) {
  memset(buf, 0, sizeof *buf);
  buf->sem_perm.__key = ds->key;
  buf->sem_perm.uid = ds->uid;
  buf->sem_perm.gid = ds->gid;
  buf->sem_perm.cuid = ds->cuid;
  buf->sem_perm.cgid = ds->cgid;
  buf->sem_perm.mode = (unsigned short)ds->mode;
  buf->sem_perm.__seq = (unsigned short)ds->seq;
  buf->sem_otime = (time_t)ds->otime;
  buf->sem_ctime = (time_t)ds->ctime;
  buf->sem_nsems = (unsigned long)ds->nsems;
}

static void to_seminfo(const struct proto_seminfo *in, struct seminfo *si) {
  memset(si, 0, sizeof *si);
  si->semmap = in->semmap;
  si->semmni = in->semmni;
  si->semmns = in->semmns;
  si->semmnu = in->semmnu;
  si->semmsl = in->semmsl;
  si->semopm = in->semopm;
  si->semume = in->semume;
  si->semusz = in->semusz;
  si->semvmx = in->semvmx;
  si->semaem = in->semaem;
}

/* SETALL carries one value per semaphore, and only the server knows how many: the set's
 * size is asked first with SEM_STAT_ANY on its index (no permission needed, as the kernel's
 * SEM_STAT_ANY). 0 with *n, or -errno; a different set at that index leaves *n 0 and the
 * SETALL that follows gets the server's error for the id. */
static int set_size(int semid, struct proto_msg *m, uint32_t *n) {
  int rc;

  memset(&m[0], 0, sizeof m[0]);
  m[0].h.opcode = PROTO_OP_SEMCTL;
  m[0].u.semctl.cred = cred_now();
  m[0].u.semctl.semid = semid % SHIM_IPCMNI;
  m[0].u.semctl.cmd = SEM_STAT_ANY;
  rc = call(&m[0], &m[1], NULL, 0);
  *n = 0;
  if (rc == 0 && m[1].u.semctl_reply.ret == semid)
    *n = (uint32_t)m[1].u.semctl_reply.ds.nsems;
  return rc == -EINVAL ? 0 : rc;
}

static int do_semctl(int semid, int semnum, int cmd, union shim_semun arg) {
  struct proto_msg *m;
  uint8_t *vals = NULL;
  size_t cap = 0;
  uint32_t n = 0;
  int id_less, rc;

  if (semid < 0 || cmd < 0)
    return -EINVAL;
  cmd &= ~SHIM_IPC_64;
  id_less = cmd == IPC_INFO || cmd == SEM_INFO || cmd == SEM_STAT || cmd == SEM_STAT_ANY;
  if (shim_init() < 0 || (id_less ? !shim_route_tables() : !sem_id_is_ours(semid)))
    return SHIM_ASK_KERNEL;
  m = calloc(2, sizeof *m);
  if (m == NULL)
    return -ENOMEM;
  if (cmd == GETALL || cmd == SETALL) {
    cap = 2 * (size_t)PROTO_SEMMSL_MAX;
    if ((vals = malloc(cap)) == NULL) {
      rc = -ENOMEM;
      goto out;
    }
  }
  if (cmd == SETALL) {
    if ((rc = set_size(semid, m, &n)) < 0)
      goto out;
    for (uint32_t i = 0; i < n; i++) {
      unsigned short v;
      if ((rc = shim_copy_from_user(&v, &arg.array[i], sizeof v)) < 0)
        goto out;
      proto_put_u16(vals + 2 * i, v);
    }
  }
  memset(&m[0], 0, sizeof m[0]);
  m[0].h.opcode = PROTO_OP_SEMCTL;
  m[0].u.semctl.cred = cred_now();
  m[0].u.semctl.semid = semid;
  m[0].u.semctl.semnum = semnum;
  m[0].u.semctl.cmd = cmd;
  if (cmd == SETVAL)
    m[0].u.semctl.val = arg.val;
  if (cmd == SETALL) {
    m[0].u.semctl.nvals = n;
    m[0].u.semctl.vals = n > 0 ? vals : NULL;
  }
  if (cmd == IPC_SET) {
    struct semid_ds in;
    if ((rc = shim_copy_from_user(&in, arg.buf, sizeof in)) < 0)
      goto out;
    m[0].u.semctl.uid = in.sem_perm.uid;
    m[0].u.semctl.gid = in.sem_perm.gid;
    m[0].u.semctl.mode = in.sem_perm.mode;
  }
  rc = call(&m[0], &m[1], vals, cap);
  if (rc < 0)
    goto out;
  rc = m[1].u.semctl_reply.ret;
  switch (cmd) {
  case IPC_STAT:
  case SEM_STAT:
  case SEM_STAT_ANY: {
    struct semid_ds ds;
    to_semid_ds(&m[1].u.semctl_reply.ds, &ds);
    if (shim_copy_to_user(arg.buf, &ds, sizeof ds) < 0)
      rc = -EFAULT;
    break;
  }
  case IPC_INFO:
  case SEM_INFO: {
    struct seminfo si;
    to_seminfo(&m[1].u.semctl_reply.info, &si);
    if (shim_copy_to_user(arg.info, &si, sizeof si) < 0)
      rc = -EFAULT;
    break;
  }
  case GETALL:
    for (uint32_t i = 0; i < m[1].u.semctl_reply.nvals; i++) {
      unsigned short v = proto_get_u16(m[1].u.semctl_reply.vals + 2 * i);
      if (shim_copy_to_user(&arg.array[i], &v, sizeof v) < 0) {
        rc = -EFAULT;
        break;
      }
    }
    break;
  default:
    break;
  }
out:
  free(vals);
  free(m);
  if (rc == -EINVAL && !id_less)
    rc = SHIM_ASK_KERNEL;
  return rc;
}

SHIM_EXPORT int semctl(int semid, int semnum, int cmd, ...) {
  union shim_semun arg = {0};
  int rc;

  /* The fourth argument exists only for the commands that take one (glibc reads it so). */
  switch (cmd & ~SHIM_IPC_64) {
  case SETVAL:
  case IPC_STAT:
  case IPC_SET:
  case GETALL:
  case SETALL:
  case IPC_INFO:
  case SEM_INFO:
  case SEM_STAT:
  case SEM_STAT_ANY: {
    va_list ap;
    va_start(ap, cmd);
    arg = va_arg(ap, union shim_semun);
    va_end(ap);
    break;
  }
  default:
    break;
  }
  rc = do_semctl(semid, semnum, cmd, arg);
  if (rc == SHIM_ASK_KERNEL)
    return shim_real.semctl ? shim_real.semctl(semid, semnum, cmd, arg)
                            : (int)shim_ret(-ENOSYS);
  return (int)shim_ret(rc);
}
