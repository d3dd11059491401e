/* meta.h - the data directory's metadata file format: encode and validate, no I/O. */
#ifndef DSHM_SRV_META_H
#define DSHM_SRV_META_H

#include <stddef.h>
#include <stdint.h>

#define SRV_META_MAGIC    "DSHMMETA"
#define SRV_META_VERSION  1u
#define SRV_META_HDR      40u  /* magic 8, version 4, nsegs 4, seq 4, last_idx 4, instance 16 */
#define SRV_META_REC      72u  /* one segment */
#define SRV_META_TRAILER  8u   /* FNV-1a 64 of everything before it */

/* One segment as stored: every field of its shmid_ds but nattch (nobody is attached to a
 * server that just started). */
struct srv_meta_seg {
  int32_t shm_id;
  int32_t key;
  uint32_t uid, gid, cuid, cgid;
  uint32_t mode;            /* low 9 bits, SRV_SHM_DEST, SRV_SHM_LOCKED */
  uint32_t seq;
  uint64_t segsz;
  int64_t atime, dtime, ctime;
  uint32_t cpid, lpid;
};

struct srv_meta {
  uint32_t seq;             /* the id sequence: new ids never collide with restored ones */
  int32_t last_idx;
  uint8_t instance[16];     /* the server's identity, kept across restarts */
  uint32_t nsegs;
  struct srv_meta_seg *segs;
};

/* Bytes the encoding of m takes. */
size_t srv_meta_size(const struct srv_meta *m);

/* Encodes m into buf (srv_meta_size bytes). */
void srv_meta_encode(uint8_t *buf, const struct srv_meta *m);

/* Decodes and validates a whole file. Returns 0 (m->segs allocated: free it), or
 * -EPROTONOSUPPORT (a newer format), -EBADMSG (not ours, truncated, checksum, inconsistent
 * fields), -ENOMEM; *why then says what is wrong, for the operator. */
int srv_meta_decode(const uint8_t *buf, size_t len, struct srv_meta *m, const char **why);

#endif
