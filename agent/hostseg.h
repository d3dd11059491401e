/* hostseg.h - the host's segments: the memfd every local process maps, the host page table
 * (proto/hosttab.h), and the host's half of the page protocol with the server: one request per
 * page for all local waiters, grants installed once, revocations fanned out to the local
 * processes that may hold the page and acknowledged only when all of them lowered it. */
#ifndef DSHM_AGENT_HOSTSEG_H
#define DSHM_AGENT_HOSTSEG_H

#include <stdint.h>

#include "agent.h"
#include "hosttab.h"

struct hpage {
  uint64_t version;         /* of the data in the memfd (0 = none) */
  uint64_t sum;             /* EXCLUSIVE pages: hash of what the server last got of it */
  uint8_t fetching;         /* mode asked of the server and not granted yet, or 0 */
  uint8_t want;             /* highest mode local processes asked for meanwhile */
  uint8_t revoking;         /* waiting for local processes to lower it */
};

struct hseg {
  TAILQ_ENTRY(hseg) link;
  int32_t shmid;
  uint64_t segsz;
  uint32_t npages;
  int memfd;                /* the host's copy */
  uint8_t *data;            /* the agent's read-write mapping of it */
  int tabfd;
  struct dshm_hostpage *tab;
  struct hpage *pg;
  uint32_t nattach;         /* local attachments (the agent's count at the server) */
  int dying;                /* its last local attachment went: nothing new is asked */
  uint32_t flush_cursor;    /* where the next background write-back goes on */
};

struct hseg *agent_seg_find(struct agent *ag, int32_t shmid);
/* The segment for shmid, created (memfd, table, all INVALID) if the host has none. */
int agent_seg_get(struct agent *ag, int32_t shmid, uint64_t segsz, struct hseg **out);
/* A local attachment less. On the last one, writes back every EXCLUSIVE page and frees the
 * segment; returns 1 then (the caller's DETACH is the host's last), else 0. */
int agent_seg_detach(struct agent *ag, struct hseg *s);

/* A process asks for page at mode (a fault record). */
void agent_seg_want(struct agent *ag, struct hseg *s, uint32_t page, uint32_t mode);
/* The server's answer to a page request (m is the reply). */
void agent_seg_grant(struct agent *ag, const struct preq *q, const struct proto_msg *m);
/* INVALIDATE or RECALL from the server. */
void agent_seg_revoke(struct agent *ag, const struct proto_msg *m);
/* A process acknowledged our INVALIDATE/RECALL reqid (or went away: reqid 0, all of its). */
void agent_seg_local_ack(struct agent *ag, uint32_t proc, uint32_t reqid);
/* Background write-back (DSHM_FLUSH_MS): sends the EXCLUSIVE pages whose content changed
 * since the server last got it, keeping them (WRITE_DATA mode EXCLUSIVE), looking at most
 * at max_pages pages in all. Returns how many it sent. */
uint32_t agent_seg_flush(struct agent *ag, uint32_t max_pages);
/* The server is gone: every page of every segment fails. */
void agent_seg_fail_all(struct agent *ag);
void agent_seg_free_all(struct agent *ag);

#endif
