/* metrics.c - owns the server's figures and their Prometheus text exposition (format 0.0.4). */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "dshm_server_"

struct srv_metrics srv_metrics;

const uint8_t srv__op_class[PROTO_OP_MAX_] = {
  [0] = SRV_RC_NONE,
  [PROTO_OP_HELLO] = SRV_RC_SESSION,
  [PROTO_OP_CREATE_SEGMENT] = SRV_RC_SHM,
  [PROTO_OP_ATTACH_SEGMENT] = SRV_RC_SHM,
  [PROTO_OP_DETACH_SEGMENT] = SRV_RC_SHM,
  [PROTO_OP_REMOVE_SEGMENT] = SRV_RC_SHM,
  [PROTO_OP_READ_DATA] = SRV_RC_READ,
  [PROTO_OP_WRITE_DATA] = SRV_RC_WRITE,
  [PROTO_OP_SHMCTL] = SRV_RC_SHM,
  [PROTO_OP_ACQUIRE] = SRV_RC_ACQUIRE,
  [PROTO_OP_INVALIDATE] = SRV_RC_NONE,
  [PROTO_OP_INVALIDATE_ACK] = SRV_RC_NONE,
  [PROTO_OP_RECALL] = SRV_RC_NONE,
  [PROTO_OP_RECALL_ACK] = SRV_RC_NONE,
  [PROTO_OP_PING] = SRV_RC_SESSION,
  [PROTO_OP_GROUPS] = SRV_RC_SESSION,
  [PROTO_OP_CHALLENGE] = SRV_RC_NONE,
  [PROTO_OP_AUTH] = SRV_RC_SESSION,
  [PROTO_OP_NODE] = SRV_RC_SESSION,
  [PROTO_OP_REATTACH] = SRV_RC_SHM,
  [PROTO_OP_INHERIT] = SRV_RC_SHM,
  [PROTO_OP_RAISED] = SRV_RC_NONE,
  [PROTO_OP_SEMGET] = SRV_RC_SEM,
  [PROTO_OP_SEMCTL] = SRV_RC_SEM,
  [PROTO_OP_SEMOP] = SRV_RC_SEM,
  [PROTO_OP_SEM_CANCEL] = SRV_RC_SEM,
  [PROTO_OP_PROC_EXIT] = SRV_RC_SEM,
  [PROTO_OP_OWNER_ALIVE] = SRV_RC_SESSION,
  [PROTO_OP_SEG_INFO] = SRV_RC_SHM,
};

static const struct {
  const char *name, *labels, *help;
} counters[SRV_M_COUNT_] = {
#define ROW(id, name, labels, help) [SRV_M_##id] = {name, labels, help},
  SRV_COUNTERS(ROW)
#undef ROW
};

static const char *const class_label[SRV_RC_COUNT_] = {
#define ROW(id, label, help) [SRV_RC_##id] = label,
  SRV_REQ_CLASSES(ROW)
#undef ROW
};

void srv_metrics_reset(void) {
  memset(&srv_metrics, 0, sizeof srv_metrics);
}

void srv_mbuf_printf(struct srv_mbuf *b, const char *fmt, ...) {
  va_list ap;
  int n;

  if (b->err)
    return;
  for (;;) {
    size_t room = b->cap - b->len;
    va_start(ap, fmt);
    n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->err = -EINVAL;
      return;
    }
    if ((size_t)n < room) {
      b->len += (size_t)n;
      return;
    }
    /* Grow: our own text, a few tens of KiB; doubling stays far from any overflow. */
    size_t cap = b->cap ? b->cap * 2 : 16384;
    while (cap - b->len <= (size_t)n)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->err = -ENOMEM;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
}

void srv_mbuf_append(struct srv_mbuf *b, const void *p, size_t n) {
  size_t cap = b->cap ? b->cap : 16384;
  char *q;

  if (b->err)
    return;
  if (n > SIZE_MAX / 4 - b->len) {
    b->err = -ENOMEM;
    return;
  }
  while (cap - b->len <= n)
    cap *= 2;
  if (cap != b->cap) {
    q = realloc(b->p, cap);
    if (q == NULL) {
      b->err = -ENOMEM;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void srv_mbuf_free(struct srv_mbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void head(struct srv_mbuf *b, const char *name, const char *type, const char *help) {
  srv_mbuf_printf(b, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", name, help, name,
                  type);
}

static void gauge(struct srv_mbuf *b, const char *name, const char *help, uint64_t v) {
  head(b, name, "gauge", help);
  srv_mbuf_printf(b, PREFIX "%s %llu\n", name, (unsigned long long)v);
}

static void render_counters(struct srv_mbuf *b) {
  const char *prev = "";
  int i;

  for (i = 0; i < SRV_M_COUNT_; i++) {
    if (strcmp(prev, counters[i].name) != 0)
      head(b, counters[i].name, "counter", counters[i].help);
    prev = counters[i].name;
    srv_mbuf_printf(b, PREFIX "%s_total%s%s%s %llu\n", counters[i].name,
                    *counters[i].labels ? "{" : "", counters[i].labels,
                    *counters[i].labels ? "}" : "", (unsigned long long)srv_metrics.c[i]);
  }
  head(b, "messages_received", "counter", "Messages received from clients, by opcode");
  for (i = 1; i < PROTO_OP_MAX_; i++)
    srv_mbuf_printf(b, PREFIX "messages_received_total{op=\"%s\"} %llu\n", proto_op_name(i),
                    (unsigned long long)srv_metrics.rx_ops[i]);
}

static void render_hist(struct srv_mbuf *b) {
  int c, i;

  head(b, "request_duration_seconds", "histogram",
       "Time from reading a request to queueing its reply (page requests: to the grant), "
       "by class");
  for (c = 0; c < SRV_RC_COUNT_; c++) {
    const struct dshm_hist *h = &srv_metrics.lat[c];
    uint64_t cum = 0;
    for (i = 0; i < SRV_HIST_BUCKETS; i++) {
      cum += h->bucket[i];
      /* 2^i microseconds, written exactly: %.9g of a value below 2^26 * 1e-6. */
      srv_mbuf_printf(b, PREFIX "request_duration_seconds_bucket{class=\"%s\",le=\"%.9g\"} %llu\n",
                      class_label[c], dshm_hist_le((unsigned)i), (unsigned long long)cum);
    }
    srv_mbuf_printf(b, PREFIX "request_duration_seconds_bucket{class=\"%s\",le=\"+Inf\"} %llu\n",
                    class_label[c], (unsigned long long)h->count);
    srv_mbuf_printf(b, PREFIX "request_duration_seconds_sum{class=\"%s\"} %.9f\n",
                    class_label[c], (double)h->sum_ns * 1e-9);
    srv_mbuf_printf(b, PREFIX "request_duration_seconds_count{class=\"%s\"} %llu\n",
                    class_label[c], (unsigned long long)h->count);
  }
}

static void render_gauges(struct srv_mbuf *b, const struct srv_gauges *g) {
  const struct srv_metrics *m = &srv_metrics;
  int64_t invalid = m->dir_pages - m->pages_shared - m->pages_exclusive;

  head(b, "info", "gauge", "Always 1; the version in a label");
  srv_mbuf_printf(b, PREFIX "info{version=\"%s\"} 1\n", DSHM_VERSION);
  head(b, "start_time_seconds", "gauge", "When the server started, seconds since the epoch");
  srv_mbuf_printf(b, PREFIX "start_time_seconds %.3f\n", g->start_time);
  head(b, "connections", "gauge", "Client connections open, by state");
  srv_mbuf_printf(b,
                  PREFIX "connections{state=\"hello\"} %u\n" PREFIX
                  "connections{state=\"auth\"} %u\n" PREFIX "connections{state=\"ready\"} %u\n" PREFIX
                  "connections{state=\"closing\"} %u\n",
                  g->conns_hello, g->conns_auth, g->conns_ready, g->conns_closing);
  gauge(b, "connections_limit", "Most client connections at once (--max-conns)", g->conns_max);
  gauge(b, "nodes", "Nodes (host agents) connected: connections past HELLO", g->conns_ready);
  gauge(b, "connections_paused", "Connections not read: at --max-pending", g->conns_paused);
  gauge(b, "pending_page_requests", "READ_DATA and ACQUIRE requests held by directories",
        g->pending_page_reqs);
  gauge(b, "semops_waiting", "SEMOP requests waiting at the server", g->semops_waiting);
  gauge(b, "owner_alive_in_flight", "OWNER_ALIVE questions relayed and not yet answered",
        g->owner_questions);
  gauge(b, "output_queued_bytes", "Bytes queued to client sockets, not yet written",
        g->output_queued);
  gauge(b, "segments", "Shared memory segments", g->segments);
  gauge(b, "segment_bytes", "Sizes (shm_segsz) of all segments", g->segment_bytes);
  gauge(b, "segment_pages", "Pages of all segments (the kernel's shm_tot)", g->segment_pages);
  gauge(b, "segments_removed_attached", "Segments removed (IPC_RMID) and still attached",
        g->segments_removed_attached);
  gauge(b, "semaphore_sets", "Semaphore sets", g->sem_sets);
  gauge(b, "semaphores", "Semaphores in all sets", g->sems);
  head(b, "pages", "gauge",
       "Pages of all segments by directory state: exclusive (one node may write), shared "
       "(nodes may read), invalid (no node holds it)");
  srv_mbuf_printf(b,
                  PREFIX "pages{state=\"invalid\"} %lld\n" PREFIX "pages{state=\"shared\"} %lld\n" PREFIX
                  "pages{state=\"exclusive\"} %lld\n",
                  (long long)invalid, (long long)m->pages_shared, (long long)m->pages_exclusive);
  gauge(b, "metrics_clients", "Connections to the metrics endpoint", g->metrics_clients);
}

int srv_metrics_render(struct srv_mbuf *b, const struct srv_gauges *g) {
  render_gauges(b, g);
  render_counters(b);
  render_hist(b);
  return b->err;
}
