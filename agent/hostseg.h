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
  uint8_t revoking;         /* revocations under way (waiting for local processes) */
  uint8_t owed;             /* given up from EXCLUSIVE, not granted since: the server may
                             * have died before storing it (written back at a resync) */
};

/* A run of requests that follow each other (read-ahead that adapts, hostseg.c ahead()). */
#define HSEG_STREAMS 4
struct hstream {
  uint32_t first, next;     /* the last request's run asked for [first, next) */
  uint32_t window;          /* its length */
  uint32_t mode;
  uint32_t prefetch;        /* first page of its prefetched run in flight, or UINT32_MAX */
  uint64_t used;            /* when last matched, for replacement */
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
  uint32_t nexcl;           /* pages the table says EXCLUSIVE (tab_set keeps it) */
  int dying;                /* its last local attachment went: nothing new is asked */
  int lost;                 /* the server does not have it any more (restart) */
  uint32_t flush_cursor;    /* where the next background write-back goes on */
  struct hstream streams[HSEG_STREAMS];
  uint64_t nrequests;       /* the clock of streams[].used */
};

struct hseg *agent_seg_find(struct agent *ag, int32_t shmid);
/* The segment for shmid, created (memfd, table, all INVALID) if the host has none. */
int agent_seg_get(struct agent *ag, int32_t shmid, uint64_t segsz, struct hseg **out);
/* A local attachment less. On the last one, writes back every EXCLUSIVE page and returns 1:
 * the caller's DETACH is the host's last, and its reply frees the segment
 * (agent_seg_release). Else 0. */
int agent_seg_detach(struct agent *ag, struct hseg *s);
/* The reply to the host's last DETACH of shmid came: the server has everything. */
void agent_seg_release(struct agent *ag, int32_t shmid);

/* A process asks for page at mode (a fault record). */
void agent_seg_want(struct agent *ag, struct hseg *s, uint32_t page, uint32_t mode);
/* The server's answer to a page request (m is the reply). */
void agent_seg_grant(struct agent *ag, const struct preq *q, const struct proto_msg *m);
/* INVALIDATE or RECALL from the server. */
void agent_seg_revoke(struct agent *ag, const struct proto_msg *m);
/* A process acknowledged our INVALIDATE/RECALL reqid (or went away: reqid 0, all of its). */
void agent_seg_local_ack(struct agent *ag, uint32_t proc, uint32_t reqid);
/* A local process raised page of shmid, a fresh grant (RAISED): a revocation held for it goes
 * on. */
void agent_seg_raised(struct agent *ag, int32_t shmid, uint32_t page);
/* Every held revocation goes on now (the agent is stopping: its hold timer closes). */
void agent_seg_unhold_all(struct agent *ag);
/* The hold timer (ag->hold): revocations held longer than their limit go on. */
void agent_seg_hold_expired(uv_timer_t *t);
/* Background write-back (DSHM_FLUSH_MS): sends the EXCLUSIVE pages whose content changed
 * since the server last got it, keeping them (WRITE_DATA mode EXCLUSIVE), looking at most
 * at max_pages pages in all. Returns how many it sent. */
uint32_t agent_seg_flush(struct agent *ag, uint32_t max_pages);
/* The server connection dropped: every page of the host is lowered to INVALID in every
 * local process (resync revocations, counted in ag->resync_pending), requests in flight are
 * forgotten (asked again after the resync). */
void agent_seg_lower_all(struct agent *ag);
/* The new connection (blocking fd): REATTACH of every segment with the local attachment
 * counts, write-back of every owed page. Segments the server does not know are lost.
 * 0 or -errno (the socket failed). */
int agent_seg_resync(struct agent *ag, int fd);
/* After the resync: the needs that waited are asked for. */
void agent_seg_resume(struct agent *ag);
/* The server is another instance (restarted without --data-dir): every segment is lost. */
void agent_seg_lose_all(struct agent *ag);
/* The server is gone: every page of every segment fails. */
void agent_seg_fail_all(struct agent *ag);
void agent_seg_free_all(struct agent *ag);

#endif
