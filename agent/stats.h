/* stats.h - the host agent's figures: counters the other modules bump (loop thread only, plain
 * increments) and a Prometheus text file, DIR/NAME.prom beside the agent's log, rewritten
 * whole (a temporary file renamed over it) once a second while they change, and removed when
 * the agent exits. `dshm status` reads it; so can node_exporter's textfile collector. */
#ifndef DSHM_AGENT_STATS_H
#define DSHM_AGENT_STATS_H

#include <stdint.h>

#include "agent.h"
#include "hist.h"

/* Request classes of the agent's latency histogram (its .prom file's `class` label). */
enum agent_req_class {
  AGENT_RC_READ,              /* READ_DATA sent until its grant */
  AGENT_RC_ACQUIRE,           /* ACQUIRE sent until its grant */
  AGENT_RC_SYSV,              /* a SysV call forwarded until its reply (SEMOP aside: it may
                               * wait as long as the program likes) */
  AGENT_RC_COUNT_
};

struct agent_stats {
  uint64_t faults;            /* fault records from local processes */
  uint64_t page_requests;     /* READ_DATA / ACQUIRE sent to the server */
  uint64_t grants_shared, grants_exclusive; /* grants received, by mode */
  uint64_t pages_granted;
  uint64_t recalls, invalidations;          /* received from the server */
  uint64_t writeback_pages;   /* pages sent back with WRITE_DATA or RECALL_ACK data */
  uint64_t sysv_calls;        /* SysV calls forwarded for local processes */
  uint64_t bytes_in, bytes_out; /* on the server connection */
  uint64_t reconnects;
  struct dshm_hist lat[AGENT_RC_COUNT_];
};

extern struct agent_stats agent_stats;

#define AGENT_STATS_MS 1000u

/* One request of class cls, sent at t0 (uv_hrtime), was answered now. */
void agent_stats_observe(unsigned cls, uint64_t t0);

/* The timer's work: writes the file if a figure moved since the last write (or never was). */
void agent_stats_tick(uv_timer_t *t);

/* The agent is stopping: the file goes (its figures would be stale). */
void agent_stats_remove(struct agent *ag);

#endif
