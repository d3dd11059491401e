/* persist.h - the data directory (--data-dir): lock, load at start, save metadata, flush. */
#ifndef DSHM_SRV_PERSIST_H
#define DSHM_SRV_PERSIST_H

#include <stdint.h>

#include "segments.h"

struct srv_persist {
  int dirfd;              /* -1: no data directory */
  int lockfd;
  char path[4096];
  uint8_t instance[16];   /* kept in the metadata: the same across restarts */
};

/* All below: loop thread only (or before the loop runs). */

/* Creates dir if missing, opens it and takes its lock (flock on DIR/lock). 0, -EBUSY when
 * another server holds it, or -errno; a line is logged either way. */
int srv_persist_open(struct srv_persist *p, const char *dir);

/* Loads DIR/meta into the empty table t (which becomes persistent): every segment with its
 * id, key, perms, size and times, the id sequence and the instance id. A directory without
 * metadata is a new one. Stray files (a crash between a segment file's creation and the
 * metadata, or the reverse for a destroy) are removed. Returns 0 or -errno after logging
 * a line that says what is wrong (corrupt, truncated, newer format, missing file). */
int srv_persist_load(struct srv_persist *p, struct srv_segtab *t);

/* Writes the metadata atomically (DIR/meta.tmp, fsync, rename, fsync of DIR), then removes
 * the files of the segments destroyed since. Clears t->dirty. 0 or -errno (logged). */
int srv_persist_save(struct srv_persist *p, struct srv_segtab *t);

/* Shutdown: msync every segment file, then save. 0 or the first -errno. */
int srv_persist_flush(struct srv_persist *p, struct srv_segtab *t);

/* Releases the lock and the descriptors. */
void srv_persist_close(struct srv_persist *p);

#endif
