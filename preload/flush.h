/* flush.h - the background write-back (DSHM_FLUSH_MS): owned pages written since their last write-back go to the server. */
#ifndef DSHM_SHIM_FLUSH_H
#define DSHM_SHIM_FLUSH_H

/* Most pages one period writes back (32 MiB); the rest waits for the next period. */
#define SHIM_FLUSH_MAX_PAGES 8192u

/* One period's work, run by the I/O thread (session.c) every DSHM_FLUSH_MS: every
 * EXCLUSIVE page that is not pinned for writing and has no request in flight becomes SHIM_MODE_CLEAN (views read-only) and its data leaves in a
 * WRITE_DATA with mode EXCLUSIVE (the node stays the owner). Cache lock NOT held.
 * Returns the pages written back. */
unsigned shim__flush_once(void);

#endif /* DSHM_SHIM_FLUSH_H */
