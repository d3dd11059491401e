/* store.c - owns segment memory: an anonymous private mapping per segment, or with
 * --data-dir a shared mapping of the segment's file (data, then the page records). */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"

void srv_store_name(char *buf, size_t cap, int32_t id) {
  snprintf(buf, cap, "seg-%08x", (unsigned)id);
}

/* The file's size for npages: data, then the records rounded up to a page. 0 on overflow. */
static size_t file_size(uint64_t npages) {
  uint64_t data = npages * PROTO_PAGE_SIZE, rec = npages * sizeof(struct srv_prec);

  rec = (rec + PROTO_PAGE_SIZE - 1) / PROTO_PAGE_SIZE * PROTO_PAGE_SIZE;
  if (data > SIZE_MAX - rec || data + rec > (uint64_t)INT64_MAX)
    return 0;
  return (size_t)(data + rec);
}

static int map_file(struct srv_store *st, uint64_t npages, int dirfd, int32_t id, int create) {
  size_t size = file_size(npages);
  struct stat sb;
  char name[32];
  void *p;
  int fd, err = 0;

  if (size == 0)
    return -ENOMEM;
  srv_store_name(name, sizeof name, id);
  fd = openat(dirfd, name, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
  if (fd < 0)
    return -errno;
  if (create ? ftruncate(fd, (off_t)size) < 0 : fstat(fd, &sb) < 0)
    err = -errno;
  else if (!create && (uint64_t)sb.st_size != size)
    err = -EBADMSG;
  if (err < 0) {
    close(fd);
    if (create)
      unlinkat(dirfd, name, 0);
    return err;
  }
  p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  err = p == MAP_FAILED ? -errno : 0;
  close(fd); /* the mapping keeps the file */
  if (err < 0) {
    if (create)
      unlinkat(dirfd, name, 0);
    return err;
  }
  st->base = p;
  st->len = (size_t)npages * PROTO_PAGE_SIZE;
  st->rec = (struct srv_prec *)(st->base + st->len);
  st->maplen = size;
  return 0;
}

int srv_store_init(struct srv_store *st, uint64_t npages, int dirfd, int32_t id, int create) {
  void *p;

  st->base = NULL;
  st->len = st->maplen = 0;
  st->rec = NULL;
  /* Guard the page multiplication: a segsz near SHMMAX must fail, not wrap to a tiny map. */
  if (npages == 0 || npages > SIZE_MAX / PROTO_PAGE_SIZE)
    return -ENOMEM;
  if (dirfd >= 0)
    return map_file(st, npages, dirfd, id, create);
  /* NORESERVE: a huge, mostly untouched segment costs only what is written to it. */
  p = mmap(NULL, (size_t)npages * PROTO_PAGE_SIZE, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return -errno;
  st->base = p;
  st->len = st->maplen = (size_t)npages * PROTO_PAGE_SIZE;
  return 0;
}

int srv_store_sync(struct srv_store *st) {
  if (st->base == NULL || st->rec == NULL)
    return 0;
  return msync(st->base, st->maplen, MS_SYNC) < 0 ? -errno : 0;
}

void srv_store_fini(struct srv_store *st) {
  if (st->base != NULL)
    munmap(st->base, st->maplen);
  st->base = NULL;
  st->rec = NULL;
  st->len = st->maplen = 0;
}
