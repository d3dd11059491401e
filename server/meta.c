/* meta.c - owns the metadata file format of --data-dir (docs/operations.md, "Persistence and
 * restarts"): big-endian fields, fixed-size records, a checksum, strict validation. */
#include "meta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "segments.h"

static uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  while (n-- > 0) {
    h ^= *p++;
    h *= UINT64_C(0x100000001b3);
  }
  return h;
}

size_t srv_meta_size(const struct srv_meta *m) {
  return SRV_META_HDR + (size_t)m->nsegs * SRV_META_REC + SRV_META_TRAILER;
}

void srv_meta_encode(uint8_t *buf, const struct srv_meta *m) {
  uint8_t *p = buf;
  uint32_t i;

  memcpy(p, SRV_META_MAGIC, 8);
  proto_put_u32(p + 8, SRV_META_VERSION);
  proto_put_u32(p + 12, m->nsegs);
  proto_put_u32(p + 16, m->seq);
  proto_put_u32(p + 20, (uint32_t)m->last_idx);
  memcpy(p + 24, m->instance, 16);
  p += SRV_META_HDR;
  for (i = 0; i < m->nsegs; i++, p += SRV_META_REC) {
    const struct srv_meta_seg *s = &m->segs[i];
    proto_put_u32(p, (uint32_t)s->shm_id);
    proto_put_u32(p + 4, (uint32_t)s->key);
    proto_put_u32(p + 8, s->uid);
    proto_put_u32(p + 12, s->gid);
    proto_put_u32(p + 16, s->cuid);
    proto_put_u32(p + 20, s->cgid);
    proto_put_u32(p + 24, s->mode);
    proto_put_u32(p + 28, s->seq);
    proto_put_u64(p + 32, s->segsz);
    proto_put_u64(p + 40, (uint64_t)s->atime);
    proto_put_u64(p + 48, (uint64_t)s->dtime);
    proto_put_u64(p + 56, (uint64_t)s->ctime);
    proto_put_u32(p + 64, s->cpid);
    proto_put_u32(p + 68, s->lpid);
  }
  proto_put_u64(p, fnv1a(buf, (size_t)(p - buf)));
}

/* The fields of one record that no server could have written. NULL if it is sane. */
static const char *bad_seg(const struct srv_meta_seg *s) {
  uint32_t seq = (uint32_t)s->shm_id / SRV_IPCMNI;

  if (s->shm_id < 0 || !(s->shm_id & SRV_ID_TAG) || seq < SRV_SEQ_TAG ||
      seq > SRV_SEQ_TAG + SRV_SEQ_MAX || s->seq != seq)
    return "a segment id is out of range";
  if (s->segsz == 0 || s->segsz > UINT64_MAX - PROTO_PAGE_SIZE)
    return "a segment size is out of range";
  if (s->mode & ~(0777u | SRV_SHM_DEST | SRV_SHM_LOCKED))
    return "a segment mode has unknown bits";
  if ((s->mode & SRV_SHM_DEST) && s->key != 0)
    return "a removed segment still has a key";
  return NULL;
}

int srv_meta_decode(const uint8_t *buf, size_t len, struct srv_meta *m, const char **why) {
  const uint8_t *p;
  uint32_t version, n, i, j;

  memset(m, 0, sizeof *m);
  *why = NULL;
  if (len < 12 || memcmp(buf, SRV_META_MAGIC, 8) != 0) {
    *why = "not a dshm metadata file (bad magic or truncated)";
    return -EBADMSG;
  }
  version = proto_get_u32(buf + 8);
  if (version > SRV_META_VERSION) {
    *why = "written by a newer dshm-server (format version too high)";
    return -EPROTONOSUPPORT;
  }
  if (version != SRV_META_VERSION) {
    *why = "unknown format version";
    return -EBADMSG;
  }
  if (len < SRV_META_HDR + SRV_META_TRAILER) {
    *why = "truncated header";
    return -EBADMSG;
  }
  n = proto_get_u32(buf + 12);
  /* Compare with what is there before trusting the count for anything. */
  if (n > SRV_IPCMNI || (len - SRV_META_HDR - SRV_META_TRAILER) / SRV_META_REC != n ||
      (len - SRV_META_HDR - SRV_META_TRAILER) % SRV_META_REC != 0) {
    *why = "length does not match the segment count (truncated?)";
    return -EBADMSG;
  }
  if (proto_get_u64(buf + len - SRV_META_TRAILER) != fnv1a(buf, len - SRV_META_TRAILER)) {
    *why = "checksum mismatch (corrupt)";
    return -EBADMSG;
  }
  m->nsegs = n;
  m->seq = proto_get_u32(buf + 16);
  m->last_idx = (int32_t)proto_get_u32(buf + 20);
  memcpy(m->instance, buf + 24, 16);
  if (m->seq > SRV_SEQ_MAX || m->last_idx < -1 || m->last_idx >= (int32_t)SRV_IPCMNI) {
    *why = "id sequence out of range";
    return -EBADMSG;
  }
  m->segs = calloc(n ? n : 1, sizeof *m->segs);
  if (m->segs == NULL) {
    *why = "out of memory";
    return -ENOMEM;
  }
  for (i = 0, p = buf + SRV_META_HDR; i < n; i++, p += SRV_META_REC) {
    struct srv_meta_seg *s = &m->segs[i];
    s->shm_id = (int32_t)proto_get_u32(p);
    s->key = (int32_t)proto_get_u32(p + 4);
    s->uid = proto_get_u32(p + 8);
    s->gid = proto_get_u32(p + 12);
    s->cuid = proto_get_u32(p + 16);
    s->cgid = proto_get_u32(p + 20);
    s->mode = proto_get_u32(p + 24);
    s->seq = proto_get_u32(p + 28);
    s->segsz = proto_get_u64(p + 32);
    s->atime = (int64_t)proto_get_u64(p + 40);
    s->dtime = (int64_t)proto_get_u64(p + 48);
    s->ctime = (int64_t)proto_get_u64(p + 56);
    s->cpid = proto_get_u32(p + 64);
    s->lpid = proto_get_u32(p + 68);
    if ((*why = bad_seg(s)) != NULL)
      goto bad;
    for (j = 0; j < i; j++) {
      if ((uint32_t)m->segs[j].shm_id % SRV_IPCMNI == (uint32_t)s->shm_id % SRV_IPCMNI) {
        *why = "two segments share a table index";
        goto bad;
      }
      if (s->key != 0 && m->segs[j].key == s->key) {
        *why = "two segments share a key";
        goto bad;
      }
    }
  }
  return 0;
bad:
  free(m->segs);
  m->segs = NULL;
  m->nsegs = 0;
  return -EBADMSG;
}
