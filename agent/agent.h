/* agent.h - dshm-agent: the host's single node in the coherence protocol and the keeper of the
 * host's copy of every segment its local processes attach (docs/design.md, "The node is the
 * host"). The agent object ties the three parts together: upstream.c (the server), local.c
 * (the processes of this host) and hostseg.c (segments and pages). Loop thread only. */
#ifndef DSHM_AGENT_H
#define DSHM_AGENT_H

#include <limits.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

#include "auth.h"
#include "client.h"
#include "proto.h"
#include "rxbuf.h"

#define AGENT_DEFAULT_IDLE_MS 2000u
/* Longest a revocation of a fresh grant waits for the process it was for (hostseg.c, hold):
 * that process may have died or given up. */
#define AGENT_HOLD_MS 2u

struct agent_cfg {
  char dir[PATH_MAX / 2];   /* the host's directory: socket, lock, pid and log files */
  char name[128];           /* base name of those files, derived from the server address */
  char sock_path[PATH_MAX];
  char pid_path[PATH_MAX];
  char spec[256];           /* DSHM_SERVER as given */
  struct dshm_addr addr;    /* the server, parsed */
  int ready_fd;             /* spawner's pipe: "ok" or "err ERRNO message", then closed */
  uint32_t idle_ms;         /* exit this long after the last process is gone */
  uint32_t flush_ms;        /* DSHM_FLUSH_MS: background write-back period, 0 = off */
  uint32_t hold_ms;         /* longest a revocation of a fresh grant waits (hostseg.c) */
  uint64_t max_segsz;       /* larger segments are refused (0: any the page count allows) */
  uint32_t timeout_ms;      /* DSHM_TIMEOUT_MS: how long a lost server is tried again */
  uint32_t keepalive_ms;    /* DSHM_KEEPALIVE_MS: a silent server is lost after about this
                             * (auth/keepalive.h); 0 = the kernel's defaults */
  int have_key;
  struct dshm_auth_key key;
};

struct lproc;
struct hseg;
struct parked;

/* A SysV call forwarded to the server on behalf of a process, waiting for its reply. */
struct fwd {
  uint32_t reqid;           /* upstream */
  uint32_t proc;            /* lproc id (0: nobody waits; the reply is dropped) */
  uint32_t pid;             /* its pid: an ATTACH that succeeds after it died is undone */
  uint32_t lreqid;          /* the process's own reqid */
  uint8_t op;
  int32_t shmid;
  int32_t shmflg;           /* ATTACH: SHM_RDONLY decides the descriptor handed out */
  int host_last;            /* DETACH: the host's last: its reply releases the segment */
  uint32_t child, nrw, nro; /* INHERIT: counted for the child when the server accepts it */
  uint64_t t0;              /* sent (uv_hrtime): its latency */
};

/* A page request of the host (READ_DATA / ACQUIRE) in flight. */
struct preq {
  uint32_t reqid;
  int32_t shmid;
  uint32_t first, count, mode;
  uint64_t t0;              /* sent (uv_hrtime): its latency */
};

struct agent {
  uv_loop_t *loop;
  struct agent_cfg *cfg;
  /* upstream.c */
  union {
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } up;
  int up_open;
  int up_dead;              /* the server connection is gone: nothing more is served */
  int up_reconn;            /* the connection dropped: making it again (DSHM_TIMEOUT_MS) */
  uint64_t reconn_deadline; /* uv_now ms */
  uint32_t reconn_delay;
  uv_timer_t reconn;
  int reconn_fd;            /* connected and handshaken, waiting for the local lowering */
  uv_timer_t resync_step;   /* runs agent_up_resync_ready from the loop, never from a caller's
                             * middle (a resync may free a segment that caller still uses) */
  int up_closing;           /* the old stream's close callback has not run yet */
  int in_step, step_again;  /* resync_step is running / must run once more */
  uint32_t resync_pending;  /* resync revocations still waiting for local processes */
  uint8_t node_id[PROTO_NODE_ID];  /* the host's identity at the server, across reconnects */
  uint8_t instance[PROTO_NODE_ID]; /* the server's (NODE reply) */
  TAILQ_HEAD(, parked) parked;     /* SysV requests waiting for the reconnect */
  struct proto_rxbuf rx;    /* the server stream's framed input (proto/rxbuf.h) */
  uint32_t next_reqid;
  uint32_t max_run;
  struct fwd *fwd;
  size_t nfwd, capfwd;
  struct preq *preq;
  size_t npreq, cappreq;
  uint32_t ngroups_sent;    /* supplementary groups the server last heard of */
  uint32_t groups_sent[PROTO_MAX_GROUPS];
  int groups_known;
  /* local.c */
  uv_poll_t lpoll;          /* the SOCK_SEQPACKET listener (libuv has no seqpacket stream) */
  int lpoll_on;
  int listen_fd;
  TAILQ_HEAD(, lproc) procs;
  uint32_t nprocs;
  uint32_t next_proc_id;
  uint64_t slots_used;      /* slots 0..63 in use; beyond, slots alias (hosttab.h) */
  /* hostseg.c */
  TAILQ_HEAD(hsegs, hseg) segs;
  TAILQ_HEAD(, revoke) revokes;
  /* procexit.c */
  TAILQ_HEAD(, exitwatch) exitwatches;
  uv_timer_t hold;          /* revocations held for a fresh grant (hostseg.c, hold()) */
  uint32_t next_lreqid;     /* reqids of our INVALIDATE/RECALL to processes */
  /* main.c */
  uv_signal_t sigterm, sigint;
  uv_timer_t idle;
  uv_timer_t flush;
  uv_timer_t stats;         /* stats.c: the figures' file */
  int stopping;
};

/* main.c */
extern int agent_verbose; /* DSHM_AGENT_VERBOSE=1: per-page traffic in the log */
#define AGENT_VLOG(...)        \
  do {                         \
    if (agent_verbose)         \
      agent_log(__VA_ARGS__);  \
  } while (0)
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An agent of cfg on loop, with its signal and timer handles made (not started) and
 * nothing connected. */
void agent_init(struct agent *ag, uv_loop_t *loop, struct agent_cfg *cfg);
/* The number of local processes changed: arms or disarms the idle exit. */
void agent_procs_changed(struct agent *ag);
/* Stops accepting, closes everything; uv_run then returns. */
void agent_stop(struct agent *ag, const char *why);

#endif
