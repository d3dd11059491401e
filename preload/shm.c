/* shm.c - owns the interposed shmget/shmat/shmdt/shmctl: SysV semantics on top of the session. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/stat.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "boundary.h"
#include "cache.h"
#include "config.h"
#include "detach.h"
#include "hostlimits.h"
#include "lifecycle.h"
#include "real.h"
#include "route.h"
#include "session.h"
#include "usercopy.h"

#define SHIM_IPC_64 0x0100 /* the kernel's "new layout" bit; glibc never passes it to us */
#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif

/* The result of a real (kernel) call in the shim's convention: >= 0 or -errno. */
static long real_rc(long r) {
  return r < 0 ? -(long)errno : r;
}

/* Ids: the server's all carry SHIM_ID_TAG; an untagged id is the kernel's. A tagged id the
 * server does not know (EINVAL) may still be a kernel id: the caller falls back. With no
 * key networked at all, everything is the kernel's. */
static int id_is_ours(int shmid) {
  return shmid >= 0 && (shmid & SHIM_ID_TAG) != 0 && shim_route_tables();
}

static struct proto_cred cred_now(void) {
  /* The caller's ids at the time of each call: a process may setuid between calls. */
  return (struct proto_cred){(uint32_t)getpid(), (uint32_t)geteuid(), (uint32_t)getegid()};
}

/* Connects if needed and runs one request. reply may be NULL; fds (may be NULL) receive the
 * descriptors of an agent's reply. 0 or -errno. */
static int call_fds(struct proto_msg *req, struct proto_msg *reply, int fds[2]) {
  int err = shim_init();

  if (err == 0)
    err = shim_session_ensure();
  /* The agent reads our groups from the kernel at each call. */
  if (err == 0)
    err = shim_session_call_fds(req, reply, fds);
  return err;
}

static int call(struct proto_msg *req, struct proto_msg *reply) {
  return call_fds(req, reply, NULL);
}

/* Two messages (request, reply) on the heap: each is ~6 KiB. */
static struct proto_msg *msgs(void) {
  return calloc(2, sizeof(struct proto_msg));
}

static int do_shmget(key_t key, size_t size, int shmflg) {
  static atomic_int told;
  struct proto_msg *m = msgs();
  int rc, kernel_would, huge = shim_hugetlb_answer(size, shmflg, &kernel_would);

  if (m == NULL)
    return -ENOMEM;
  m[0].h.opcode = PROTO_OP_CREATE_SEGMENT;
  m[0].u.create.cred = cred_now();
  m[0].u.create.key = key;
  m[0].u.create.size = size;
  m[0].u.create.shmflg = shmflg;
  /* The huge page pools and the privilege are this host's: the server applies the answer
   * where the kernel checks them, if the call gets that far (a new segment). */
  m[0].u.create.huge_err = (uint32_t)proto_err_from_errno(huge);
  rc = call(&m[0], &m[1]);
  if (rc == 0)
    rc = m[1].u.create_reply.shmid;
  if (rc == -ENOMEM && kernel_would && !atomic_exchange(&told, 1))
    shim_log("shmget: SHM_HUGETLB: the kernel would back this segment with huge pages; dshm "
             "cannot (its coherence unit is the 4 KiB page), so it fails with ENOMEM");
  free(m);
  return rc;
}

SHIM_EXPORT int shmget(key_t key, size_t size, int shmflg) {
  int err = shim_init();

  if (err == 0 && !shim_route_key(key))
    return shim_real.shmget ? shim_real.shmget(key, size, shmflg) : (int)shim_ret(-ENOSYS);
  return (int)shim_ret(do_shmget(key, size, shmflg));
}

static int send_detach(int shmid) {
  struct proto_msg *m = msgs();
  int rc;

  if (m == NULL)
    return -ENOMEM;
  m[0].h.opcode = PROTO_OP_DETACH_SEGMENT;
  m[0].u.segref.cred = cred_now();
  m[0].u.segref.shmid = shmid;
  rc = call(&m[0], NULL);
  free(m);
  return rc;
}

/* Finds or creates the cache of shmid and maps a view. fds are the agent's memfd (read-only
 * for SHM_RDONLY) and host page table. Takes the cache lock. */
static int map_view(int shmid, uint64_t segsz, const int fds[2], void *addr, int fixed,
                    int vflags, void **out) {
  struct timespec ts = {0, 1000000};
  size_t len = (size_t)((segsz + SHIM_PAGE - 1) / SHIM_PAGE) * SHIM_PAGE;
  struct shim_seg *sg;
  int created = 0, rc;

  if (addr != NULL) {
    void *r;
    /* SHM_REMAP over views of ours: the kernel's MAP_FIXED replaces them, which detaches
     * them (nattch drops; a later shmdt there finds the new attachment). */
    if (fixed)
      shim_views_gone((uintptr_t)addr, len);
    /* The range is taken first (an anonymous reservation), so that the segment's own
     * bookkeeping, mapped anywhere, cannot land in it: a segment that fits a hole exactly
     * would otherwise find its hole used. The view then goes over the reservation. */
    r = shim_sys_mmap(addr, len, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                          (fixed ? MAP_FIXED : MAP_FIXED_NOREPLACE), -1, 0);
    if (r == MAP_FAILED)
      return errno == EEXIST ? -EINVAL : -errno; /* shmat reports an occupied range so */
    if (r != addr) {
      shim_sys_munmap(r, len); /* a kernel older than 4.17 ignores MAP_FIXED_NOREPLACE */
      return -EINVAL;
    }
    fixed = 1;
  }
  pthread_mutex_lock(&shim__cache_lock);
  /* A segment whose last view is being detached is going: wait for it, so one shmid never
   * has two caches. */
  while ((sg = shim_cache_seg_find(shmid, 1)) != NULL && atomic_load(&sg->dying)) {
    pthread_mutex_unlock(&shim__cache_lock);
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&shim__cache_lock);
  }
  if (sg == NULL) {
    rc = shim_cache_seg_new(shmid, segsz, fds[1], &sg);
    if (rc < 0)
      goto out;
    created = 1;
  }
  rc = shim_cache_view_add(sg, fds[0], addr, fixed, vflags, out);
  if (rc < 0 && created) {
    atomic_store(&sg->dying, 1);
    shim_cache_seg_free(sg); /* never published: no handler can hold it */
  }
out:
  pthread_mutex_unlock(&shim__cache_lock);
  if (rc < 0 && addr != NULL)
    shim_sys_munmap(addr, len); /* the reservation (SHM_REMAP: what was there is gone) */
  return rc < 0 ? rc : 0;
}

/* 0 (attached, *out set), -errno, or 1: the id is the kernel's, call the real shmat. */
static int do_shmat(int shmid, const void *shmaddr, int shmflg, void **out) {
  struct proto_msg *m;
  uintptr_t addr = (uintptr_t)shmaddr;
  int vflags = 0, rc, fds[2] = {-1, -1};

  /* Address checks first, as the kernel does them before looking the id up. */
  if (addr != 0) {
    if (addr & (SHMLBA - 1)) {
      if (!(shmflg & SHM_RND))
        return -EINVAL;
      addr &= ~(uintptr_t)(SHMLBA - 1);
      if (addr == 0)
        return -EINVAL; /* rounded down to 0 (Linux: EINVAL when SHM_REMAP or below page) */
    }
  } else if (shmflg & SHM_REMAP) {
    return -EINVAL;
  }
  if (shmflg & SHM_RDONLY)
    vflags |= SHIM_VIEW_RDONLY;
  if (shmflg & SHM_EXEC)
    vflags |= SHIM_VIEW_EXEC;

  if (shim_init() < 0 || !id_is_ours(shmid))
    return 1; /* the kernel's */
  m = msgs();
  if (m == NULL)
    return -ENOMEM;
  m[0].h.opcode = PROTO_OP_ATTACH_SEGMENT;
  m[0].u.attach.cred = cred_now();
  m[0].u.attach.shmid = shmid;
  m[0].u.attach.shmflg = shmflg;
  rc = call_fds(&m[0], &m[1], fds);
  if (rc == 0 && (fds[0] < 0 || fds[1] < 0))
    rc = -EPROTO; /* the agent hands its memory over with every attach */
  if (rc == 0) {
    rc = map_view(shmid, m[1].u.attach_reply.segsz, fds, (void *)addr,
                  (shmflg & SHM_REMAP) != 0, vflags, out);
    if (rc < 0)
      send_detach(shmid); /* undo the server's nattch++; the mapping error is what counts */
  } else if (rc == -EINVAL) {
    rc = 1; /* not the server's: maybe a kernel id that happens to carry the tag */
  }
  for (int i = 0; i < 2; i++) /* the mappings keep what they need */
    if (fds[i] >= 0)
      close(fds[i]);
  free(m);
  return rc;
}

SHIM_EXPORT void *shmat(int shmid, const void *shmaddr, int shmflg) {
  void *addr = NULL;
  int rc = do_shmat(shmid, shmaddr, shmflg, &addr);

  if (rc == 1)
    return shim_real.shmat ? shim_real.shmat(shmid, shmaddr, shmflg)
                           : (shim_ret(-ENOSYS), (void *)-1);
  if (rc < 0) {
    shim_ret(rc);
    return (void *)-1;
  }
  return addr;
}

/* Cache lock held on entry, released on return: view v of sg goes (unmapped, or for
 * gone_len > 0 taken over by the application: shim_cache_view_remove), then its DETACH, and
 * after the segment's last view the segment. */
static void detach_view(int v, struct shim_seg *sg, uintptr_t gone, size_t gone_len) {
  int shmid = sg->shmid, last, rc;

  shim_cache_view_remove(v, gone, gone_len);
  last = sg->nviews == 0;
  if (last)
    atomic_store(&sg->dying, 1); /* no new shmat shares it; handlers give up */
  pthread_mutex_unlock(&shim__cache_lock);

  /* The host keeps the data: nothing to send but the DETACH (a segment a restarted server
   * lost is the agent's to know about: agent/hostseg.c). */
  rc = send_detach(shmid);
  if (last) {
    pthread_mutex_lock(&shim__cache_lock);
    shim_cache_seg_kill(sg);
    pthread_mutex_unlock(&shim__cache_lock);
    shim_cache_seg_quiesce(sg);
    pthread_mutex_lock(&shim__cache_lock);
    shim_cache_seg_free(sg);
    pthread_mutex_unlock(&shim__cache_lock);
  }
  /* The mapping is gone whatever the server said; like the kernel, shmdt then succeeds.
   * A failed detach is reported, not returned (only EINVAL is shmdt's). */
  if (rc < 0)
    shim_debug("detach of segment %d: %s", shmid, strerror(-rc));
}

void shim_views_gone(uintptr_t p, size_t len) {
  struct shim_seg *sg;
  int v;

  if (!shim_cache_overlaps(p, len))
    return;
  for (;;) {
    pthread_mutex_lock(&shim__cache_lock);
    v = shim_cache_view_overlapping(p, len, &sg);
    if (v < 0) {
      pthread_mutex_unlock(&shim__cache_lock);
      return;
    }
    detach_view(v, sg, p, len);
  }
}

static int do_shmdt(const void *shmaddr) {
  struct shim_seg *sg;
  int v;

  if (shim_init() < 0)
    return shim_real.shmdt ? real_rc(shim_real.shmdt(shmaddr)) : -EINVAL;
  pthread_mutex_lock(&shim__cache_lock);
  v = shim_cache_view_find(shmaddr, &sg);
  if (v < 0) {
    pthread_mutex_unlock(&shim__cache_lock);
    /* Not one of ours: a kernel attachment, or nothing (the kernel says EINVAL). */
    return shim_real.shmdt ? real_rc(shim_real.shmdt(shmaddr)) : -EINVAL;
  }
  detach_view(v, sg, 0, 0);
  return 0;
}

SHIM_EXPORT int shmdt(const void *shmaddr) {
  return (int)shim_ret(do_shmdt(shmaddr));
}

static void ds_to_shmid_ds(const struct proto_ds *ds, struct shmid_ds *buf) {
  memset(buf, 0, sizeof *buf);
  buf->shm_perm.__key = ds->key;
  buf->shm_perm.uid = ds->uid;
  buf->shm_perm.gid = ds->gid;
  buf->shm_perm.cuid = ds->cuid;
  buf->shm_perm.cgid = ds->cgid;
  buf->shm_perm.mode = (unsigned short)ds->mode;
  buf->shm_perm.__seq = (unsigned short)ds->seq;
  buf->shm_segsz = (size_t)ds->segsz;
  buf->shm_atime = (time_t)ds->atime;
  buf->shm_dtime = (time_t)ds->dtime;
  buf->shm_ctime = (time_t)ds->ctime;
  buf->shm_cpid = (pid_t)ds->cpid;
  buf->shm_lpid = (pid_t)ds->lpid;
  buf->shm_nattch = (shmatt_t)ds->nattch;
}

/* do_shmctl's "not the server's: ask the kernel". Not a value shmctl returns (an index,
 * an id or 0) nor a -errno: IPC_INFO's highest index may well be 1. */
#define SHIM_ASK_KERNEL INT_MIN

/* Runs a command on the server, or SHIM_ASK_KERNEL. */
static int do_shmctl(int shmid, int cmd, struct shmid_ds *buf) {
  struct proto_msg *m;
  struct shmid_ds in;
  int id_less, rc;

  /* ksys_shmctl(): negative arguments first, then the command's own checks. */
  if (shmid < 0 || cmd < 0)
    return -EINVAL;
  cmd &= ~SHIM_IPC_64;
  id_less = cmd == IPC_INFO || cmd == SHM_INFO || cmd == SHM_STAT || cmd == SHM_STAT_ANY;
  if (shim_init() < 0 || (id_less ? !shim_route_tables() : !id_is_ours(shmid)))
    return SHIM_ASK_KERNEL;
  if (cmd == IPC_SET) {
    rc = shim_copy_from_user(&in, buf, sizeof in); /* before the id is looked at */
    if (rc < 0)
      return rc;
  }
  m = msgs();
  if (m == NULL)
    return -ENOMEM;
  if (cmd == IPC_RMID) {
    m[0].h.opcode = PROTO_OP_REMOVE_SEGMENT;
    m[0].u.segref.cred = cred_now();
    m[0].u.segref.shmid = shmid;
    rc = call(&m[0], NULL);
    goto out;
  }
  m[0].h.opcode = PROTO_OP_SHMCTL;
  m[0].u.shmctl.cred = cred_now();
  m[0].u.shmctl.shmid = shmid;
  m[0].u.shmctl.cmd = cmd;
  if (cmd == IPC_SET) {
    m[0].u.shmctl.uid = in.shm_perm.uid;
    m[0].u.shmctl.gid = in.shm_perm.gid;
    m[0].u.shmctl.mode = in.shm_perm.mode;
  } else if (cmd == SHM_LOCK) {
    /* The server cannot see our limit and capability: user_shm_lock() needs both. */
    m[0].u.shmctl.memlock = shim_memlock_limit();
    m[0].u.shmctl.mode = shim_cap_ipc_lock() ? PROTO_LOCK_CAP_IPC_LOCK : 0;
  } else if (cmd == SHM_UNLOCK) {
    m[0].u.shmctl.mode = shim_cap_ipc_lock() ? PROTO_LOCK_CAP_IPC_LOCK : 0;
  }
  rc = call(&m[0], &m[1]);
  if (rc < 0)
    goto out;
  rc = m[1].u.shmctl_reply.ret;
  switch (cmd) {
  case IPC_STAT:
  case SHM_STAT:
  case SHM_STAT_ANY: {
    struct shmid_ds ds;
    ds_to_shmid_ds(&m[1].u.shmctl_reply.ds, &ds);
    if (shim_copy_to_user(buf, &ds, sizeof ds) < 0)
      rc = -EFAULT;
    break;
  }
  case IPC_INFO: {
    struct shminfo si;
    const struct proto_info *pi = &m[1].u.shmctl_reply.info;
    memset(&si, 0, sizeof si);
    si.shmmax = pi->shmmax;
    si.shmmin = pi->shmmin;
    si.shmmni = pi->shmmni;
    si.shmseg = pi->shmseg;
    si.shmall = pi->shmall;
    if (shim_copy_to_user(buf, &si, sizeof si) < 0)
      rc = -EFAULT;
    break;
  }
  case SHM_INFO: {
    struct shm_info si;
    const struct proto_info *pi = &m[1].u.shmctl_reply.info;
    memset(&si, 0, sizeof si);
    si.used_ids = (int)pi->used_ids;
    si.shm_tot = pi->shm_tot;
    si.shm_rss = pi->shm_rss;
    si.shm_swp = pi->shm_swp;
    if (shim_copy_to_user(buf, &si, sizeof si) < 0)
      rc = -EFAULT;
    break;
  }
  default:
    break;
  }
out:
  free(m);
  /* A tagged id the server does not know may be a kernel one. */
  if (rc == -EINVAL && !id_less)
    rc = SHIM_ASK_KERNEL;
  return rc;
}

SHIM_EXPORT int shmctl(int shmid, int cmd, struct shmid_ds *buf) {
  int rc = do_shmctl(shmid, cmd, buf);

  if (rc == SHIM_ASK_KERNEL)
    return shim_real.shmctl ? shim_real.shmctl(shmid, cmd, buf) : (int)shim_ret(-ENOSYS);
  return (int)shim_ret(rc);
}

/* ftok(3): with DSHM_FTOK covering the path, a key from the path string instead of the
 * inode, so every host computes the same one. The file must still exist, as for ftok. */
SHIM_EXPORT key_t ftok(const char *path, int proj_id) {
  struct stat st;

  if (shim_init() == 0 && path != NULL && shim_route_ftok(path)) {
    if (stat(path, &st) < 0)
      return -1; /* errno from stat, as glibc's ftok */
    return shim_ftok_key(path, proj_id);
  }
  return shim_real.ftok ? shim_real.ftok(path, proj_id) : (key_t)shim_ret(-ENOSYS);
}
