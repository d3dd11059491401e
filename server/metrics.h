/* metrics.h - the server's figures: counters, page-state gauges and latency histograms that
 * the other modules bump with the inline functions below, and their Prometheus text
 * exposition (docs/operations.md, "Metrics"). Loop thread only: plain increments, no locks. */
#ifndef DSHM_SRV_METRICS_H
#define DSHM_SRV_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hist.h"
#include "proto.h"

/* X(id, name, labels, help): the counters, each exposed as dshm_server_<name>_total with
 * the constant labels given. Rows of one name are adjacent: the exposition writes HELP and
 * TYPE once per name. */
#define SRV_COUNTERS(X)                                                                     \
  X(CONN_ACCEPTED, "connections_accepted", "", "Client connections accepted (TCP and Unix)") \
  X(CLOSED_DISCONNECT, "connections_closed", "reason=\"disconnect\"",                       \
    "Client connections closed, by reason class")                                           \
  X(CLOSED_ERROR, "connections_closed", "reason=\"error\"", "")                             \
  X(CLOSED_PROTOCOL, "connections_closed", "reason=\"protocol\"", "")                       \
  X(CLOSED_AUTH, "connections_closed", "reason=\"auth\"", "")                               \
  X(CLOSED_TIMEOUT, "connections_closed", "reason=\"timeout\"", "")                         \
  X(CLOSED_LIMIT, "connections_closed", "reason=\"limit\"", "")                             \
  X(CLOSED_SHUTDOWN, "connections_closed", "reason=\"shutdown\"", "")                       \
  X(BYTES_IN, "received_bytes", "", "Bytes read from client sockets")                       \
  X(BYTES_OUT, "sent_bytes", "", "Bytes of frames written to client sockets")               \
  X(GRANTS_SHARED, "page_grants", "mode=\"shared\"",                                        \
    "READ_DATA and ACQUIRE replies granting pages, by the mode granted")                    \
  X(GRANTS_EXCLUSIVE, "page_grants", "mode=\"exclusive\"", "")                              \
  X(GRANTED_SHARED, "pages_granted", "mode=\"shared\"",                                     \
    "Pages in those grants (a grant covers its page and read-ahead pages)")                 \
  X(GRANTED_EXCLUSIVE, "pages_granted", "mode=\"exclusive\"", "")                           \
  X(GRANT_DATA_PAGES, "grant_data_pages", "",                                               \
    "Granted pages whose data travelled with the grant")                                    \
  X(MIGRATORY_GRANTS, "migratory_grants", "",                                               \
    "READ_DATA requests granted EXCLUSIVE because the page is migratory")                   \
  X(PAGE_REQ_ERRORS, "page_request_errors", "",                                             \
    "READ_DATA and ACQUIRE requests the directory answered with an error")                  \
  X(RECALLS, "recalls_sent", "", "RECALL messages sent to a page's owner")                  \
  X(INVALIDATIONS, "invalidations_sent", "", "INVALIDATE messages sent to a page's sharers") \
  X(WRITEBACKS, "writebacks", "", "WRITE_DATA requests accepted")                           \
  X(WRITEBACK_PAGES, "writeback_pages", "", "Pages stored from WRITE_DATA requests")        \
  X(OWNER_RELAYED, "owner_alive_relayed", "",                                               \
    "OWNER_ALIVE questions relayed to the host agent of the owner")                         \
  X(OWNER_LOCAL, "owner_alive_answered", "",                                                \
    "OWNER_ALIVE questions answered by the server (the owner's host is not connected)")     \
  X(SEMOP_WAITS, "semop_waits", "", "SEMOP requests that had to wait at the server")        \
  X(HTTP_200, "metrics_requests", "code=\"200\"",                                           \
    "Requests to the metrics endpoint, by status code (closed: no request in time)")        \
  X(HTTP_400, "metrics_requests", "code=\"400\"", "")                                       \
  X(HTTP_404, "metrics_requests", "code=\"404\"", "")                                       \
  X(HTTP_405, "metrics_requests", "code=\"405\"", "")                                       \
  X(HTTP_431, "metrics_requests", "code=\"431\"", "")                                       \
  X(HTTP_503, "metrics_requests", "code=\"503\"", "")                                       \
  X(HTTP_CLOSED, "metrics_requests", "code=\"closed\"", "")                                 \
  X(LOG_ERROR, "log_lines", "level=\"error\"", "Log lines written, by level")               \
  X(LOG_WARN, "log_lines", "level=\"warn\"", "")                                            \
  X(LOG_INFO, "log_lines", "level=\"info\"", "")                                            \
  X(LOG_DEBUG, "log_lines", "level=\"debug\"", "")

enum srv_counter {
#define SRV__COUNTER_ENUM(id, name, labels, help) SRV_M_##id,
  SRV_COUNTERS(SRV__COUNTER_ENUM)
#undef SRV__COUNTER_ENUM
  SRV_M_COUNT_
};

/* X(id, label, help): the request classes of the latency histogram. */
#define SRV_REQ_CLASSES(X)                                            \
  X(READ, "read", "READ_DATA, until its grant")                       \
  X(ACQUIRE, "acquire", "ACQUIRE, until its grant")                   \
  X(WRITE, "write", "WRITE_DATA")                                     \
  X(SHM, "shm", "segment calls: create, attach, detach, shmctl, seg_info")     \
  X(SEM, "sem", "semaphore calls: semget, semctl, semop (until queued), cancel, exit") \
  X(SESSION, "session", "HELLO, AUTH, GROUPS, NODE, PING, OWNER_ALIVE")

enum srv_req_class {
#define SRV__CLASS_ENUM(id, label, help) SRV_RC_##id,
  SRV_REQ_CLASSES(SRV__CLASS_ENUM)
#undef SRV__CLASS_ENUM
  SRV_RC_COUNT_,
  SRV_RC_NONE = 0xff /* acks and replies: not requests */
};

/* Latency buckets: proto/hist.h, shared with the host agents. */
#define SRV_HIST_BUCKETS DSHM_HIST_BUCKETS

struct srv_metrics {
  uint64_t c[SRV_M_COUNT_];
  uint64_t rx_ops[PROTO_OP_MAX_];   /* messages received, by opcode */
  struct dshm_hist lat[SRV_RC_COUNT_];
  /* Pages of every directory, and those SHARED (sharers, no owner) or EXCLUSIVE (an owner,
   * a node or a ghost of an earlier run): kept by directory.c on every transition. */
  int64_t dir_pages, pages_shared, pages_exclusive;
  uint64_t rx_ns;                   /* when the input being handled was read (CLOCK_MONOTONIC) */
};

/* The one instance: the server is one loop thread. */
extern struct srv_metrics srv_metrics;

/* The class of a request opcode, or SRV_RC_NONE. */
extern const uint8_t srv__op_class[PROTO_OP_MAX_];

static inline void srv_metrics_inc(enum srv_counter id) {
  srv_metrics.c[id]++;
}

static inline void srv_metrics_add(enum srv_counter id, uint64_t n) {
  srv_metrics.c[id] += n;
}

static inline uint64_t srv_metrics_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Counts one message received with this opcode (checked by the decoder: < PROTO_OP_MAX_). */
static inline void srv_metrics_rx(unsigned opcode) {
  if (opcode < PROTO_OP_MAX_)
    srv_metrics.rx_ops[opcode]++;
}

/* One request of class cls took ns nanoseconds. */
static inline void srv_metrics_observe(unsigned cls, uint64_t ns) {
  if (cls < SRV_RC_COUNT_)
    dshm_hist_observe(&srv_metrics.lat[cls], ns);
}

/* A page moved from state before to state after (0 invalid, 1 shared, 2 exclusive). */
static inline void srv_metrics_page_moved(int before, int after) {
  srv_metrics.pages_shared += (after == 1) - (before == 1);
  srv_metrics.pages_exclusive += (after == 2) - (before == 2);
}

/* What the server's tables say at scrape time (gauges read, not kept). */
struct srv_gauges {
  uint32_t conns_hello, conns_auth, conns_ready, conns_closing;
  uint32_t conns_max;
  uint32_t conns_paused;          /* not read: at --max-pending */
  uint64_t pending_page_reqs;     /* page requests held by directories */
  uint64_t semops_waiting;
  uint64_t owner_questions;       /* OWNER_ALIVE questions in flight */
  uint64_t output_queued;         /* bytes handed to the sockets, not yet written */
  uint64_t segments, segment_bytes, segment_pages;
  uint64_t segments_removed_attached; /* IPC_RMID, waiting for their last detach */
  uint64_t sem_sets, sems;
  uint32_t metrics_clients;
  double start_time;              /* seconds since the epoch */
};

/* A growing text buffer; err is set (and appends stop) when memory runs out. */
struct srv_mbuf {
  char *p;
  size_t len, cap;
  int err;
};

void srv_mbuf_printf(struct srv_mbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void srv_mbuf_append(struct srv_mbuf *b, const void *p, size_t n);
void srv_mbuf_free(struct srv_mbuf *b);

/* Appends the exposition (text format 0.0.4) of the figures and of g to b. 0 or -ENOMEM. */
int srv_metrics_render(struct srv_mbuf *b, const struct srv_gauges *g);

/* Zeroes every figure (server start; unit tests). */
void srv_metrics_reset(void);

#endif
