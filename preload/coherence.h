/* coherence.h - the client side of the page protocol: fault requests, grants, recalls, write-back. */
#ifndef DSHM_SHIM_COHERENCE_H
#define DSHM_SHIM_COHERENCE_H

#include <stdatomic.h>

#include "cache.h"
#include "proto.h"
#include "session.h"

#define SHIM_READ_AHEAD  64  /* pages asked for after a read fault's page */
#define SHIM_WRITE_AHEAD 16  /* pages asked for after a write fault's page */
#define SHIM_WB_BATCH    8   /* WRITE_DATA runs in flight per write-back step */

/* Set while the process exits: a thread that faults then is parked, not killed. */
extern atomic_int shim__exiting;

/* I/O thread only. */
void shim__coh_fault(const struct shim_fault_rec *r);      /* a fault record from the pipe */
int shim__coh_reply(const struct proto_msg *m);            /* 1 if m answered a page request */
void shim__coh_server_request(const struct proto_msg *m);  /* INVALIDATE or RECALL */
/* The same with the cache lock held and no pin check (pin.c replays deferred ones). */
void shim__coh_server_request_locked(const struct proto_msg *m);
void shim__coh_dead(void);                                 /* the session is gone */
/* Reconnect, on the fresh blocking socket fd: re-registers every attached segment
 * (REATTACH; same_server 0 means the server is another instance and every segment is
 * lost), writes back what the server may miss and lowers readable pages to INVALID.
 * 0 or -errno (the socket failed). */
int shim__coh_resync(int fd, int same_server);
/* After a reconnect: asks again for the pages that were requested before the drop. */
void shim__coh_resume(void);
/* In the forked child (single thread): forgets the parent's requests in flight. */
void shim__coh_fork_child(void);

/* Writes back every EXCLUSIVE page of sg (WRITE_DATA, mode INVALID) and waits for the
 * replies. Application thread; the cache lock must NOT be held. 0 or -errno. */
int shim_coh_writeback(struct shim_seg *sg, int timeout_ms);

/* Writes back sg and DETACHes n of its attachments, each DETACH confirmed by its reply.
 * Replies come in order, so that also proves the server stored every earlier WRITE_DATA of
 * this connection, background ones (SHIM_MODE_CLEAN pages) included. If the connection
 * drops meanwhile, waits for the reconnect (whose resync writes back every page the server
 * may miss and registers sg's attachments again) and does it again. Application thread, no
 * lock held. 0 or -errno. */
int shim_coh_detach(struct shim_seg *sg, int shmid, int n);

/* Normal process exit: write back and detach everything still attached. */
void shim_coh_exit(void);

#endif /* DSHM_SHIM_COHERENCE_H */
