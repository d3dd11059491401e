/* boundary.h - where an interposed call returns to the application: the one place errno is set. */
#ifndef DSHM_SHIM_BOUNDARY_H
#define DSHM_SHIM_BOUNDARY_H

/* Marks an interposed entry point: the only symbols the version script lets out. */
#define SHIM_EXPORT __attribute__((visibility("default")))

/* rc >= 0 is returned as is; rc < 0 is -errno: sets errno = -rc and returns -1. */
long shim_ret(long rc);

#endif /* DSHM_SHIM_BOUNDARY_H */
