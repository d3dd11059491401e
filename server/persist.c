/* persist.c - owns the data directory of --data-dir: its lock, the metadata file (written
 * atomically: temp, fsync, rename, fsync of the directory) and the segment files' lifetime.
 * The format is meta.c's; the segment files are store.c's. */
#include "persist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "meta.h"

#define META_NAME "meta"
#define META_TMP  "meta.tmp"
#define LOCK_NAME "lock"
#define META_MAX  (SRV_META_HDR + SRV_IPCMNI * SRV_META_REC + SRV_META_TRAILER)

int srv_persist_open(struct srv_persist *p, const char *dir) {
  int err;

  p->dirfd = p->lockfd = -1;
  if (strlen(dir) >= sizeof p->path) {
    srv_log(SRV_LOG_ERROR, "data dir: path too long");
    return -ENAMETOOLONG;
  }
  strcpy(p->path, dir);
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    err = -errno;
    srv_log(SRV_LOG_ERROR, "data dir %s: cannot create: %s", dir, strerror(-err));
    return err;
  }
  p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (p->dirfd < 0) {
    err = -errno;
    srv_log(SRV_LOG_ERROR, "data dir %s: cannot open: %s", dir, strerror(-err));
    return err;
  }
  p->lockfd = openat(p->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (p->lockfd < 0 || flock(p->lockfd, LOCK_EX | LOCK_NB) < 0) {
    err = errno == EWOULDBLOCK ? -EBUSY : -errno;
    if (err == -EBUSY)
      srv_log(SRV_LOG_ERROR, "data dir %s is in use by another dshm-server (%s/lock is locked)", dir, dir);
    else
      srv_log(SRV_LOG_ERROR, "data dir %s: cannot lock: %s", dir, strerror(-err));
    srv_persist_close(p);
    return err;
  }
  return 0;
}

void srv_persist_close(struct srv_persist *p) {
  if (p->lockfd >= 0)
    close(p->lockfd); /* releases the flock */
  if (p->dirfd >= 0)
    close(p->dirfd);
  p->lockfd = p->dirfd = -1;
}

/* Reads DIR/meta whole into *buf. 0, -ENOENT (a new directory), -EFBIG or -errno. */
static int read_meta(struct srv_persist *p, uint8_t **buf, size_t *len) {
  struct stat sb;
  size_t off = 0;
  int fd = openat(p->dirfd, META_NAME, O_RDONLY | O_CLOEXEC), err = 0;

  *buf = NULL;
  if (fd < 0)
    return -errno;
  if (fstat(fd, &sb) < 0)
    err = -errno;
  else if (sb.st_size > (off_t)META_MAX)
    err = -EFBIG;
  else if ((*buf = malloc((size_t)sb.st_size + 1)) == NULL)
    err = -ENOMEM;
  while (err == 0 && off < (size_t)sb.st_size) {
    ssize_t n = read(fd, *buf + off, (size_t)sb.st_size - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      err = n < 0 ? -errno : -EIO;
      break;
    }
    off += (size_t)n;
  }
  close(fd);
  *len = off;
  if (err < 0) {
    free(*buf);
    *buf = NULL;
  }
  return err;
}

/* Removes what the metadata does not list: segment files of a create or destroy cut short
 * by a crash, and a temp file. Each is logged. */
static void remove_strays(struct srv_persist *p, const struct srv_segtab *t) {
  int fd = openat(p->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  struct dirent *e;

  if (d == NULL) {
    if (fd >= 0)
      close(fd);
    return;
  }
  while ((e = readdir(d)) != NULL) {
    unsigned id;
    char tail;
    if (strcmp(e->d_name, META_TMP) == 0 ||
        (sscanf(e->d_name, "seg-%8x%c", &id, &tail) == 1 &&
         srv_seg_lookup(t, (int32_t)id) == NULL)) {
      srv_log(SRV_LOG_WARN, "data dir %s: removing %s (not in the metadata: a crash cut its creation or "
              "removal short)", p->path, e->d_name);
      unlinkat(p->dirfd, e->d_name, 0);
    }
  }
  closedir(d);
}

int srv_persist_load(struct srv_persist *p, struct srv_segtab *t) {
  struct srv_meta m;
  const char *why = NULL;
  uint8_t *buf = NULL;
  size_t len = 0;
  uint32_t i;
  int err;

  srv_segtab_set_dir(t, p->dirfd);
  err = read_meta(p, &buf, &len);
  if (err == -ENOENT) {
    /* A new directory: a fresh identity, saved at once. */
    if (getrandom(p->instance, sizeof p->instance, 0) != (ssize_t)sizeof p->instance) {
      srv_log(SRV_LOG_ERROR, "data dir %s: getrandom: %s", p->path, strerror(errno));
      return -EIO;
    }
    remove_strays(p, t);
    srv_log(SRV_LOG_INFO, "data dir %s: new, no segments", p->path);
    return srv_persist_save(p, t);
  }
  if (err < 0) {
    srv_log(SRV_LOG_ERROR, "data dir %s: cannot read %s: %s", p->path, META_NAME,
            err == -EFBIG ? "larger than any valid metadata (corrupt)" : strerror(-err));
    return err;
  }
  err = srv_meta_decode(buf, len, &m, &why);
  free(buf);
  if (err < 0) {
    srv_log(SRV_LOG_ERROR, "data dir %s: %s/%s is unusable: %s; refusing to start (move the directory "
            "away to start empty)", p->path, p->path, META_NAME, why);
    return err;
  }
  memcpy(p->instance, m.instance, sizeof p->instance);
  t->seq = m.seq;
  t->last_idx = m.last_idx;
  for (i = 0; i < m.nsegs; i++) {
    err = srv_seg_restore(t, &m.segs[i], &why);
    if (err < 0) {
      srv_log(SRV_LOG_ERROR, "data dir %s: segment %d: %s; refusing to start", p->path, m.segs[i].shm_id,
              why ? why : strerror(-err));
      free(m.segs);
      return err == -EBADMSG ? err : err;
    }
  }
  free(m.segs);
  remove_strays(p, t);
  t->dirty = 0;
  srv_log(SRV_LOG_INFO, "data dir %s: restored %u segment%s", p->path, m.nsegs, m.nsegs == 1 ? "" : "s");
  return 0;
}

static int write_all(int fd, const uint8_t *b, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

int srv_persist_save(struct srv_persist *p, struct srv_segtab *t) {
  struct srv_meta m;
  uint8_t *buf = NULL;
  size_t size;
  uint32_t i;
  int fd = -1, err = 0;

  memset(&m, 0, sizeof m);
  m.seq = t->seq;
  m.last_idx = (int32_t)t->last_idx;
  memcpy(m.instance, p->instance, sizeof m.instance);
  m.segs = calloc(t->in_use ? t->in_use : 1, sizeof *m.segs);
  if (m.segs == NULL) {
    err = -ENOMEM;
    goto out;
  }
  for (i = 0; i < t->nslots && m.nsegs < t->in_use; i++)
    if (t->slot[i] != NULL)
      srv_seg_save(t->slot[i], &m.segs[m.nsegs++]);
  size = srv_meta_size(&m);
  buf = malloc(size);
  if (buf == NULL) {
    err = -ENOMEM;
    goto out;
  }
  srv_meta_encode(buf, &m);
  fd = openat(p->dirfd, META_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    err = -errno;
  if (err == 0)
    err = write_all(fd, buf, size);
  if (err == 0 && fsync(fd) < 0)
    err = -errno;
  if (fd >= 0 && close(fd) < 0 && err == 0)
    err = -errno;
  if (err == 0 && renameat(p->dirfd, META_TMP, p->dirfd, META_NAME) < 0)
    err = -errno;
  if (err == 0 && fsync(p->dirfd) < 0)
    err = -errno;
  if (err == 0) {
    /* Only now may the files of destroyed segments go. */
    for (i = 0; i < t->ngone; i++) {
      char name[32];
      srv_store_name(name, sizeof name, t->gone[i]);
      unlinkat(p->dirfd, name, 0);
    }
    t->ngone = 0;
    t->dirty = 0;
  }
out:
  if (err < 0)
    srv_log(SRV_LOG_ERROR, "data dir %s: cannot save the metadata: %s", p->path, strerror(-err));
  free(buf);
  free(m.segs);
  return err;
}

int srv_persist_flush(struct srv_persist *p, struct srv_segtab *t) {
  uint32_t i;
  int err = 0, e;

  for (i = 0; i < t->nslots; i++)
    if (t->slot[i] != NULL && (e = srv_store_sync(&t->slot[i]->store)) < 0) {
      srv_log(SRV_LOG_ERROR, "data dir %s: segment %d: msync: %s", p->path, t->slot[i]->shm_id,
              strerror(-e));
      if (err == 0)
        err = e;
    }
  e = srv_persist_save(p, t);
  return err < 0 ? err : e;
}
