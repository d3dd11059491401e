/* directory.h - the page directory of one segment: coherence state machine per page. */
#ifndef DSHM_SRV_DIRECTORY_H
#define DSHM_SRV_DIRECTORY_H

#include <stdint.h>

#include "proto.h"

#define SRV_NODE_NONE UINT32_MAX
/* Owner of a page granted EXCLUSIVE by an earlier run of the server (--data-dir) to a node
 * that has not come back yet: requests for the page wait. */
#define SRV_NODE_GHOST (UINT32_MAX - 1)

struct srv_prec;

/* How the directory reaches the nodes. The connection layer provides it; unit tests provide
 * fake nodes. send() encodes m for node (or records it) before returning, so m and the data
 * it points to need only live for the call. It must never call back into the directory: a
 * connection that cannot take the message is torn down later, and its teardown calls
 * srv_dir_forget(). Its return value is informative only. */
struct srv_dir_ops {
  int (*send)(void *opaque, uint32_t node, struct proto_msg *m);
  /* Optional: node's count of requests held by directories (queued or being served)
   * changes by delta (+1 when srv_dir_request accepts one, -1 when it is granted, failed
   * or dropped). Called in the middle of transitions: it must not call back either. */
  void (*pending)(void *opaque, uint32_t node, int delta);
  /* Optional: the node's persistent 64-bit tag (0 = none), recorded in the page records of
   * a persistent segment for every EXCLUSIVE grant. */
  uint64_t (*node_tag)(void *opaque, uint32_t node);
};

/* Shared by every segment's directory: the transport and the server-chosen reqids of
 * RECALL and INVALIDATE. */
struct srv_dirctx {
  const struct srv_dir_ops *ops;
  void *opaque;
  uint32_t next_reqid;
};

struct srv_dir;

/* What a test or a statistics request may see of one page. */
struct srv_dpage_info {
  uint64_t version;
  uint32_t owner;     /* SRV_NODE_NONE when nobody holds it EXCLUSIVE */
  uint32_t nsharers;
  const uint32_t *sharers; /* nsharers nodes, in no order; valid until the next change */
  int busy;           /* a transaction is in progress */
  uint32_t queued;    /* requests waiting behind it */
};

/* A directory for npages pages whose data lives at data (npages * PROTO_PAGE_SIZE bytes,
 * owned by the caller). NULL on allocation failure. Loop thread only, like all below. */
struct srv_dir *srv_dir_new(struct srv_dirctx *ctx, int32_t shmid, uint8_t *data,
                            uint64_t npages);

/* Gives the directory npages persisted records (store.h): versions and owners are read
 * from them as pages are first used and written at every change. An owner found there is
 * a ghost (SRV_NODE_GHOST) until srv_dir_end_ghosts or its node's write-back. Call right
 * after srv_dir_new. */
void srv_dir_set_records(struct srv_dir *d, struct srv_prec *rec);

/* Ends the ghost ownerships of the node with this tag (0: of everybody): its pages become
 * nobody's under a new version and the requests waiting for them go on. Returns how many.
 * A write-back (srv_dir_write) from the node of a page's ghost, at the version it was
 * granted, stores the data first; a request of its own for the page ends it too. */
uint64_t srv_dir_end_ghosts(struct srv_dir *d, uint64_t tag);

/* Frees the directory, its transactions and queued requests; sends nothing. */
void srv_dir_free(struct srv_dir *d);

/* READ_DATA (op PROTO_OP_READ_DATA, mode SHARED) or ACQUIRE (PROTO_OP_ACQUIRE, mode
 * EXCLUSIVE) from node. Returns 0 when the grant has been sent or will be sent later, or
 * -EINVAL / -ENOMEM and sends nothing: the caller answers with the error. The caller has
 * already checked that node has the segment attached (and attached writable for ACQUIRE);
 * writable says whether it is: only then may a READ_DATA of a migratory page be granted
 * EXCLUSIVE (its reply's run is then that one page at mode EXCLUSIVE). */
int srv_dir_request(struct srv_dir *d, uint32_t node, uint32_t reqid, uint8_t op,
                    const struct proto_run *run, int writable);

/* WRITE_DATA from node: stores the pages it owns and lowers them to run->mode (SHARED or
 * INVALID), or keeps them owned (EXCLUSIVE: a background write-back). Returns 0
 * (the caller sends the empty success reply), -EINVAL or -ENOMEM (nothing applied). */
int srv_dir_write(struct srv_dir *d, uint32_t node, const struct proto_run *run);

/* Acknowledgements. Acks that match no outstanding RECALL/INVALIDATE are ignored. */
void srv_dir_recall_ack(struct srv_dir *d, uint32_t node, uint32_t reqid,
                        const struct proto_run *run);
void srv_dir_invalidate_ack(struct srv_dir *d, uint32_t node, uint32_t reqid,
                            const struct proto_range *range);

/* node no longer has the segment attached (detach or disconnect): it stops being owner or
 * sharer of every page, acks it owes count as answered without data, its queued requests
 * are dropped, and transactions it blocked move on. */
void srv_dir_forget(struct srv_dir *d, uint32_t node);

/* Fills *out for page idx; -EINVAL past the end. */
int srv_dir_page_info(const struct srv_dir *d, uint64_t idx, struct srv_dpage_info *out);

/* 1 if node is a sharer of page idx, else 0. */
int srv_dir_is_sharer(const struct srv_dir *d, uint64_t idx, uint32_t node);

#endif
