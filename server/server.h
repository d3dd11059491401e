/* server.h - the server object: loop, listener, signals, connection table, segment table. */
#ifndef DSHM_SRV_SERVER_H
#define DSHM_SRV_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "directory.h"
#include "httpd.h"
#include "owners.h"
#include "persist.h"
#include "segments.h"
#include "sems.h"

#define SRV_DRAIN_MS       2000u  /* shutdown: longest wait for queued replies to leave */

struct srv_conn;

struct srv_server {
  uv_loop_t *loop;
  const struct srv_config *cfg;
  uv_tcp_t listener;         /* open when tcp_on */
  uv_pipe_t ulistener;      /* --unix; open when unix_on */
  int tcp_on;
  int unix_on;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  uv_timer_t sweep;         /* HELLO and idle timeouts; running when sweep_on */
  int sweep_on;
  struct srv_conn **conns;  /* cfg->max_conns slots; the index is the node id */
  uint32_t nconns;
  struct srv_segtab segs;
  struct srv_semtab sems;   /* in memory only, as the kernel's (not in --data-dir) */
  struct srv_owners owners; /* OWNER_ALIVE questions relayed to host agents */
  struct srv_dirctx dirctx;
  struct srv_persist persist;  /* dirfd -1 without --data-dir */
  uint8_t instance[PROTO_NODE_ID]; /* NODE reply: kept in the data dir, else random */
  uv_timer_t grace;         /* after a restart: ends the ghosts of nodes that did not return */
  int grace_on;
  uv_timer_t drain;         /* shutdown deadline for queued output */
  int drain_on;
  struct srv_httpd httpd;   /* --metrics; open when httpd.on */
  double start_time;        /* wall clock at init: dshm_server_start_time_seconds */
  int stopping;
  int want_resume;          /* a paused connection fell below --max-pending */
  int resuming;
};

/* Sets up the tables; nothing is opened yet. Returns 0 or -errno. */
int srv_server_init(struct srv_server *s, uv_loop_t *loop, const struct srv_config *cfg);

/* Binds, listens, installs the signal handlers and prints the "listening on" line to
 * stdout. Returns 0 or -errno (a message is logged). */
int srv_server_start(struct srv_server *s);

/* Stops accepting and closes every connection and handle; uv_run then returns. Idempotent.
 * Loop thread only. */
void srv_server_stop(struct srv_server *s);

/* Reads the gauges of the figures from the tables (metrics.h). Loop thread only. */
void srv__server_gauges(const struct srv_server *s, struct srv_gauges *g);

/* Frees what is left (segments, tables) after uv_run has returned; with --data-dir first
 * msyncs every segment file and saves the metadata. 0, or -errno if that failed. */
int srv_server_fini(struct srv_server *s);

/* After anything that may have changed the segment table (a request, a disconnect):
 * with --data-dir, saves the metadata if it changed, before any reply leaves. */
void srv__server_changed(struct srv_server *s);

/* A returning node is done re-registering and writing back: the pages it held before the
 * restart and did not write back are released. */
void srv__server_node_resumed(struct srv_server *s, uint64_t tag);

/* Ends the grace period now: every ghost owner is given up on, and segments removed while
 * attached that nobody re-registered are destroyed. */
void srv__server_end_grace(struct srv_server *s);

/* Registers a connection in the first free slot: its node id, or -EMFILE when full. */
int srv__server_add_conn(struct srv_server *s, struct srv_conn *c);
void srv__server_del_conn(struct srv_server *s, uint32_t node);

/* Resumes the paused connections that fell below --max-pending (want_resume). Called by
 * the connection layer once a message or a teardown is fully handled, never from inside
 * a directory transition; does nothing when nested. Loop thread only. */
void srv__server_resume_paused(struct srv_server *s);

#endif
