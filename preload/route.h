/* route.h - what is networked: DSHM_KEYS (keys to the server or the kernel), id tags, DSHM_FTOK. */
#ifndef DSHM_SHIM_ROUTE_H
#define DSHM_SHIM_ROUTE_H

#include <sys/types.h>

/* Every id the server hands out has this bit set (server/segments.h, SRV_ID_TAG). */
#define SHIM_ID_TAG 0x40000000

/* Reads DSHM_KEYS and DSHM_FTOK. Called once from the library's init; never fails (a bad
 * value is reported on stderr and the default kept). */
void shim_route_load(void);

/* 1 if shmget(key, ...) goes to the server, 0 if to the kernel. */
int shim_route_key(key_t key);

/* 1 if the id-less shmctl commands (IPC_INFO, SHM_INFO, SHM_STAT, SHM_STAT_ANY) describe the
 * server's table: whenever any key is networked. */
int shim_route_tables(void);

/* 1 if ftok(path, ...) must give the host-independent key (DSHM_FTOK covers path). */
int shim_route_ftok(const char *path);

/* The host-independent key of (path, proj_id): see docs/compatibility.md, "ftok". */
key_t shim_ftok_key(const char *path, int proj_id);

#endif /* DSHM_SHIM_ROUTE_H */
