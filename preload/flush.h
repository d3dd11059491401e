/* flush.h - the background write-back (DSHM_FLUSH_MS): owned pages written since their last write-back go to the server. */
#ifndef DSHM_SHIM_FLUSH_H
#define DSHM_SHIM_FLUSH_H

/* Most pages one period writes back (32 MiB); the rest waits for the next period. */
#define SHIM_FLUSH_MAX_PAGES 8192u

/* Starts this process's write-back thread if DSHM_FLUSH_MS is not 0 and it has none yet (a
 * forked child starts its own). Called when the session opens, next to the I/O thread's
 * creation: a thread created at an arbitrary later moment could race with another
 * thread's fork, which the sanitizers' runtimes do not survive. No lock held. */
void shim_flush_ensure(void);

/* One period's work: every EXCLUSIVE page that is not pinned for writing and has no
 * request in flight becomes SHIM_MODE_CLEAN (views read-only) and its data leaves in a
 * WRITE_DATA with mode EXCLUSIVE (the node stays the owner). Cache lock NOT held.
 * Returns the pages written back. Exposed for the flush thread only. */
unsigned shim__flush_once(void);

#endif /* DSHM_SHIM_FLUSH_H */
