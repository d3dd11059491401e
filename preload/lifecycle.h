/* lifecycle.h - library init (once, from the constructor or the first wrapper), fork. */
#ifndef DSHM_SHIM_LIFECYCLE_H
#define DSHM_SHIM_LIFECYCLE_H

/* Runs the one-time init if it has not run yet (every wrapper calls this first: other
 * libraries' constructors may call us before ours ran). Returns 0 if the shim can serve
 * shm calls, or -errno why not. */
int shim_init(void);

#endif /* DSHM_SHIM_LIFECYCLE_H */
