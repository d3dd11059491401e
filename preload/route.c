/* route.c - owns DSHM_KEYS and DSHM_FTOK: which keys, ids and ftok paths dshm takes over. */
#include "route.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <unistd.h>

#include "config.h"

#define ROUTE_MAX_RANGES 64
#define ROUTE_MAX_PREFIXES 16

struct key_range {
  uint32_t lo, hi; /* inclusive, keys as unsigned 32-bit values */
};

static struct {
  int all;                 /* every key (the default) */
  int private_;            /* IPC_PRIVATE is networked */
  int nranges;
  struct key_range r[ROUTE_MAX_RANGES];
  int ftok_all;            /* DSHM_FTOK=1 */
  int nprefixes;
  char prefix[ROUTE_MAX_PREFIXES][PATH_MAX];
} R = {.all = 1, .private_ = 1};

/* One key: decimal, 0x hex or 0 octal, optionally negative (key_t is an int); 0 or -1. */
static int parse_key(const char *s, const char *end, uint32_t *out) {
  char buf[32], *e;
  long long v;
  size_t n = (size_t)(end - s);

  if (n == 0 || n >= sizeof buf)
    return -1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  errno = 0;
  v = strtoll(buf, &e, 0);
  if (errno != 0 || *e != '\0' || v < INT32_MIN || v > UINT32_MAX)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

/* "all" | "none" | item{,item}: item = KEY | KEY-KEY | "private". 0 or -1. */
static int parse_keys(const char *s) {
  const char *p = s;

  if (strcmp(s, "all") == 0) {
    R.all = R.private_ = 1;
    return 0;
  }
  R.all = R.private_ = 0;
  R.nranges = 0;
  if (strcmp(s, "none") == 0)
    return 0;
  while (*p != '\0') {
    const char *end = strchr(p, ','), *dash;
    struct key_range kr;

    if (end == NULL)
      end = p + strlen(p);
    /* A dash after the first character separates a range ("-5" alone is one key). */
    dash = memchr(p + 1, '-', end > p + 1 ? (size_t)(end - p - 1) : 0);
    if ((size_t)(end - p) == 7 && strncmp(p, "private", 7) == 0) {
      R.private_ = 1;
    } else if (R.nranges == ROUTE_MAX_RANGES) {
      return -1;
    } else if (dash != NULL) {
      if (parse_key(p, dash, &kr.lo) < 0 || parse_key(dash + 1, end, &kr.hi) < 0 ||
          kr.lo > kr.hi)
        return -1;
      R.r[R.nranges++] = kr;
    } else {
      if (parse_key(p, end, &kr.lo) < 0)
        return -1;
      kr.hi = kr.lo;
      R.r[R.nranges++] = kr;
    }
    p = *end == ',' ? end + 1 : end;
  }
  return 0;
}

static int parse_ftok(const char *s) {
  const char *p = s;

  if (strcmp(s, "1") == 0) {
    R.ftok_all = 1;
    return 0;
  }
  while (*p != '\0') {
    const char *end = strchr(p, ':');
    size_t n;

    if (end == NULL)
      end = p + strlen(p);
    n = (size_t)(end - p);
    if (n == 0 || n >= PATH_MAX || R.nprefixes == ROUTE_MAX_PREFIXES)
      return -1;
    memcpy(R.prefix[R.nprefixes], p, n);
    /* "/dir/" and "/dir" name the same tree. */
    while (n > 1 && R.prefix[R.nprefixes][n - 1] == '/')
      n--;
    R.prefix[R.nprefixes++][n] = '\0';
    p = *end == ':' ? end + 1 : end;
  }
  return 0;
}

void shim_route_load(void) {
  const char *k = getenv("DSHM_KEYS");
  const char *f = getenv("DSHM_FTOK");

  if (k != NULL && *k != '\0' && parse_keys(k) < 0) {
    shim_log("DSHM_KEYS='%s' is not a list of keys, ranges and 'private': every key is "
             "networked", k);
    R.all = R.private_ = 1;
    R.nranges = 0;
  }
  if (f != NULL && *f != '\0' && strcmp(f, "0") != 0 && parse_ftok(f) < 0) {
    shim_log("DSHM_FTOK='%s' is not 1 or a ':'-separated list of paths: ignored", f);
    R.ftok_all = 0;
    R.nprefixes = 0;
  }
}

int shim_route_key(key_t key) {
  int i;

  if (key == IPC_PRIVATE)
    return R.private_;
  if (R.all)
    return 1;
  for (i = 0; i < R.nranges; i++)
    if ((uint32_t)key >= R.r[i].lo && (uint32_t)key <= R.r[i].hi)
      return 1;
  return 0;
}

int shim_route_tables(void) {
  return R.all || R.private_ || R.nranges > 0;
}

/* Lexical normalization into out (PATH_MAX): absolute (relative paths are taken from the
 * current directory), no "//", no "." components, ".." removes the previous component.
 * Symbolic links are not resolved: the path string is what counts. 0 or -1. */
static int normalize(const char *path, char *out) {
  char tmp[PATH_MAX];
  const char *p;
  size_t n = 0;

  if (path[0] != '/') {
    if (getcwd(tmp, sizeof tmp) == NULL || strlen(tmp) + 1 + strlen(path) >= sizeof tmp)
      return -1;
    strcat(tmp, "/");
    strcat(tmp, path);
  } else {
    if (strlen(path) >= sizeof tmp)
      return -1;
    strcpy(tmp, path);
  }
  out[0] = '\0';
  for (p = tmp; *p != '\0';) {
    const char *e;
    size_t len;

    while (*p == '/')
      p++;
    e = strchr(p, '/');
    len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0)
      break;
    if (len == 1 && p[0] == '.') {
      /* skip */
    } else if (len == 2 && p[0] == '.' && p[1] == '.') {
      while (n > 0 && out[n - 1] != '/')
        n--;
      if (n > 0)
        n--;
      out[n] = '\0';
    } else {
      if (n + 1 + len >= PATH_MAX)
        return -1;
      out[n++] = '/';
      memcpy(out + n, p, len);
      n += len;
      out[n] = '\0';
    }
    p += len;
  }
  if (n == 0)
    strcpy(out, "/");
  return 0;
}

int shim_route_ftok(const char *path) {
  char norm[PATH_MAX];
  int i;

  if (R.ftok_all)
    return 1;
  if (R.nprefixes == 0 || path == NULL || normalize(path, norm) < 0)
    return 0;
  for (i = 0; i < R.nprefixes; i++) {
    size_t n = strlen(R.prefix[i]);
    if (strncmp(norm, R.prefix[i], n) == 0 &&
        (norm[n] == '\0' || norm[n] == '/' || (n == 1 && R.prefix[i][0] == '/')))
      return 1;
  }
  return 0;
}

/* FNV-1a over the normalized path: low 24 bits, and the low 8 bits of proj_id on top as
 * the kernel's ftok puts them. Never IPC_PRIVATE. */
key_t shim_ftok_key(const char *path, int proj_id) {
  char norm[PATH_MAX];
  const unsigned char *p;
  uint32_t h = 2166136261u, key;

  if (normalize(path, norm) < 0)
    snprintf(norm, sizeof norm, "%s", path);
  for (p = (const unsigned char *)norm; *p != '\0'; p++)
    h = (h ^ *p) * 16777619u;
  key = ((uint32_t)(proj_id & 0xff) << 24) | (h & 0xffffffu);
  if (key == 0)
    key = 1;
  return (key_t)key;
}
