/* conn.c - owns a client connection's life: accept, read buffer and framing, owned output
 * buffers, and the one teardown that detaches it from everything. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>


#include "dispatch.h"
#include "keepalive.h"
#include "log.h"
#include "metrics.h"
#include "owners.h"
#include "peercred.h"
#include "semcalls.h"
#include "server.h"

/* One queued write: the request, its length and the encoded frame in one allocation. */
struct wreq {
  uv_write_t req;
  struct srv_conn *conn;
  size_t len;
  uint8_t buf[];
};

static struct srv_conn *conn_of(uv_handle_t *h) {
  return (struct srv_conn *)((char *)h - offsetof(struct srv_conn, h));
}

/* The one teardown: every attachment goes through srv_att_detach (which makes the node
 * leave each directory), then the node id is released, then the memory. */
static void on_close(uv_handle_t *h) {
  struct srv_conn *c = conn_of(h);
  struct srv_server *s = c->srv;

  if (s->stopping && s->persist.dirfd >= 0) {
    /* Shutdown with --data-dir: the node is not gone, the server is. Its page records
     * (who holds what EXCLUSIVE) must survive for the restart; segments are freed whole. */
    free(c->atts.v);
  } else {
    srv_att_detach_all(&c->atts, &s->segs, c->node, c->peer.pid);
    srv__server_changed(s);
  }
  srv__sem_conn_gone(c); /* its waits end; its processes' SEM_UNDO applies */
  srv__owner_conn_gone(c); /* questions about its processes: not alive */
  srv__server_del_conn(s, c->node);
  proto_rxbuf_free(&c->rx);
  free(c);
  srv__server_resume_paused(s); /* the detaches may have completed others' requests */
}

/* Closes c, counting the close under the reason class cls (SRV_M_CLOSED_*): peers that
 * leave, or a server shutdown, are routine (info); anything else is worth a look (warn). */
static void close_as(struct srv_conn *c, enum srv_counter cls, const char *why) {
  if (c->state == SRV_CONN_CLOSING)
    return;
  srv_metrics_inc(cls);
  srv_log(cls == SRV_M_CLOSED_DISCONNECT || cls == SRV_M_CLOSED_SHUTDOWN ||
                  cls == SRV_M_CLOSED_TIMEOUT
              ? SRV_LOG_INFO
              : SRV_LOG_WARN,
          "node %u (%s pid %u, %s) closed%s: %s", c->node,
          c->peer.name[0] ? c->peer.name : "-", c->peer.pid, c->addr[0] ? c->addr : "-",
          c->state == SRV_CONN_AUTH ? " before completing authentication" : "", why);
  c->state = SRV_CONN_CLOSING;
  uv_read_stop(&c->h.stream);
  /* Pending writes complete with UV_ECANCELED before on_close runs. */
  uv_close(&c->h.handle, on_close);
}

void srv__conn_close(struct srv_conn *c, const char *why) {
  close_as(c, c->srv->stopping ? SRV_M_CLOSED_SHUTDOWN : SRV_M_CLOSED_ERROR, why);
}

static void on_write(uv_write_t *req, int status) {
  struct wreq *w = (struct wreq *)req;
  struct srv_conn *c = w->conn;

  c->wpending -= w->len;
  if (status == 0)
    srv_metrics_add(SRV_M_BYTES_OUT, w->len);
  free(w);
  if (status < 0 && status != UV_ECANCELED)
    close_as(c, SRV_M_CLOSED_ERROR, uv_strerror(status));
  else if (c->state == SRV_CONN_REJECTED && c->wpending == 0)
    close_as(c, SRV_M_CLOSED_AUTH, "authentication failed (refusal sent)");
  else if (c->draining && c->wpending == 0)
    close_as(c, SRV_M_CLOSED_SHUTDOWN, "server shutting down");
}

void srv__conn_drain(struct srv_conn *c) {
  if (c->state == SRV_CONN_CLOSING)
    return;
  c->draining = 1;
  uv_read_stop(&c->h.stream);
  if (c->wpending == 0)
    close_as(c, SRV_M_CLOSED_SHUTDOWN, "server shutting down");
}

static int queue_write(struct srv_conn *c, struct wreq *w) {
  uv_buf_t b = uv_buf_init((char *)w->buf, (unsigned)w->len);
  int err;

  if (c->discard_output) {
    free(w);
    return 0;
  }
  w->conn = c;
  /* Nothing queued: write now. A queued uv_write costs two epoll_ctl calls (POLLOUT on,
   * then off) on top of the write, a few us per message on a VM. What the socket does not
   * take, and any error, goes the usual way (errors then come from on_write, as before). */
  if (c->wpending == 0 && uv_stream_get_write_queue_size(&c->h.stream) == 0) {
    int done = uv_try_write(&c->h.stream, &b, 1);
    if (done == (int)b.len) {
      srv_metrics_add(SRV_M_BYTES_OUT, w->len);
      free(w);
      if (c->state == SRV_CONN_REJECTED)
        close_as(c, SRV_M_CLOSED_AUTH, "authentication failed (refusal sent)");
      else if (c->draining)
        close_as(c, SRV_M_CLOSED_SHUTDOWN, "server shutting down");
      return 0;
    }
    if (done > 0) {
      b.base += done;
      b.len -= (size_t)done;
    }
  }
  err = uv_write(&w->req, &c->h.stream, &b, 1, on_write);
  if (err < 0) {
    free(w);
    close_as(c, SRV_M_CLOSED_ERROR, uv_strerror(err));
    return err;
  }
  c->wpending += w->len;
  return 0;
}

/* A write buffer of len bytes, or NULL (and the connection closing) when it may not have
 * one. */
static struct wreq *wreq_new(struct srv_conn *c, size_t len) {
  struct wreq *w;

  if (c->state == SRV_CONN_CLOSING)
    return NULL;
  if (c->wpending > c->srv->cfg->max_output || len > c->srv->cfg->max_output - c->wpending) {
    close_as(c, SRV_M_CLOSED_LIMIT, "peer does not read its replies (output limit)");
    return NULL;
  }
  w = malloc(sizeof *w + len);
  if (w == NULL) {
    close_as(c, SRV_M_CLOSED_ERROR, "out of memory for output");
    return NULL;
  }
  w->len = len;
  return w;
}

int srv__conn_send(struct srv_conn *c, struct proto_msg *m) {
  ssize_t n = proto_encoded_size(m);
  struct wreq *w;

  if (n < 0) {
    srv_log(SRV_LOG_ERROR, "node %u: cannot encode %s (%s)", c->node, proto_op_name(m->h.opcode),
            strerror((int)-n));
    return (int)n;
  }
  w = wreq_new(c, (size_t)n);
  if (w == NULL)
    return -ECONNRESET;
  n = proto_encode(w->buf, w->len, m);
  if (n < 0) { /* cannot happen after proto_encoded_size; keep the state sane anyway */
    free(w);
    return (int)n;
  }
  return queue_write(c, w);
}

int srv__conn_send_status(struct srv_conn *c, uint8_t opcode, uint32_t reqid, int err) {
  struct wreq *w = wreq_new(c, PROTO_HDR_SIZE);

  if (w == NULL)
    return -ECONNRESET;
  proto_encode_status(w->buf, opcode, reqid, err ? proto_err_from_errno(err) : 0);
  return queue_write(c, w);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct srv_conn *c = conn_of(h);

  (void)suggested;
  /* proto_rxbuf keeps room to read into. */
  *buf = uv_buf_init((char *)proto_rxbuf_tail(&c->rx), (unsigned)proto_rxbuf_room(&c->rx));
}

/* Frames, decodes and dispatches every complete message in the buffer. */
static void conn_input(struct srv_conn *c) {
  size_t off = 0, need = 0;
  struct proto_msg m;

  /* What the figures date this input's requests from (a paused connection's buffered
   * requests count the time they waited too). */
  srv_metrics.rx_ns = c->rx_ns;
  while (c->state != SRV_CONN_CLOSING && c->state != SRV_CONN_REJECTED) {
    struct proto_hdr h;
    const char *why = NULL;
    ssize_t n = proto_frame(c->rx.p + off, c->rx.len - off, &h);
    char msg[96];

    if (n < 0) {
      snprintf(msg, sizeof msg, "bad frame (%s)", strerror((int)-n));
      close_as(c, SRV_M_CLOSED_PROTOCOL, msg);
      return;
    }
    if (c->rx.len - off >= PROTO_HDR_SIZE &&
        PROTO_HDR_SIZE + (uint64_t)h.length > c->srv->cfg->max_frame) {
      snprintf(msg, sizeof msg, "frame of %llu bytes above --max-frame",
               (unsigned long long)(PROTO_HDR_SIZE + (uint64_t)h.length));
      close_as(c, SRV_M_CLOSED_LIMIT, msg);
      return;
    }
    if (n == 0) {
      if (c->rx.len - off >= PROTO_HDR_SIZE)
        need = PROTO_HDR_SIZE + (size_t)h.length;
      break;
    }
    /* Back-pressure (--max-pending): a page request over the cap stays in the buffer and
     * the socket is not read until some of this connection's requests are done. */
    if ((h.opcode == PROTO_OP_READ_DATA || h.opcode == PROTO_OP_ACQUIRE) &&
        c->npending >= c->srv->cfg->max_pending) {
      if (!c->paused) {
        c->paused = 1;
        if (!c->discard_output)
          uv_read_stop(&c->h.stream);
        SRV_VLOG("node %u: %u page requests held, not reading (--max-pending)", c->node,
                 c->npending);
      }
      break;
    }
    m.h = h;
    if (proto_decode(&m, c->rx.p + off + PROTO_HDR_SIZE, h.length) < 0) {
      snprintf(msg, sizeof msg, "malformed %s payload", proto_op_name(h.opcode));
      close_as(c, SRV_M_CLOSED_PROTOCOL, msg);
      return;
    }
    off += (size_t)n;
    if (srv__dispatch(c, &m, &why) < 0) {
      close_as(c, SRV_M_CLOSED_PROTOCOL, why ? why : "protocol violation");
      return;
    }
  }
  if (c->state == SRV_CONN_CLOSING || c->state == SRV_CONN_REJECTED)
    return;
  proto_rxbuf_shift(&c->rx, off);
  /* Paused, the buffer may hold several frames: it is resized when they are processed. */
  if (c->paused)
    return;
  if (proto_rxbuf_fit(&c->rx, need) < 0)
    close_as(c, SRV_M_CLOSED_ERROR, "out of memory for input");
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  struct srv_conn *c = conn_of((uv_handle_t *)stream);

  (void)buf;
  if (nread < 0) {
    char why[128];
    /* The kernel gave up on a peer that stopped answering (--keepalive-ms): it reports the
     * last ICMP or neighbour error it saw, else ETIMEDOUT. */
    int silent = nread == UV_ETIMEDOUT || nread == UV_EHOSTUNREACH || nread == UV_ENETUNREACH;
    snprintf(why, sizeof why, "%s%s", silent ? "the peer stopped answering (--keepalive-ms): " : "",
             nread == UV_EOF ? "disconnected" : uv_strerror((int)nread));
    close_as(c, nread == UV_EOF || nread == UV_ECONNRESET ? SRV_M_CLOSED_DISCONNECT : SRV_M_CLOSED_ERROR,
             why);
    return;
  }
  c->rx.len += (size_t)nread;
  c->last_rx_ms = uv_now(c->srv->loop);
  c->rx_ns = srv_metrics_now_ns();
  srv_metrics_add(SRV_M_BYTES_IN, (uint64_t)nread);
  conn_input(c);
  srv__server_resume_paused(c->srv);
}

void srv__conn_feed(struct srv_conn *c, const uint8_t *p, size_t n) {
  /* A paused connection reads nothing: the rest of the input is dropped, as unread. */
  while (n > 0 && c->state != SRV_CONN_CLOSING && c->state != SRV_CONN_REJECTED &&
         !c->paused) {
    size_t take = proto_rxbuf_room(&c->rx) < n ? proto_rxbuf_room(&c->rx) : n;

    memcpy(proto_rxbuf_tail(&c->rx), p, take);
    c->rx.len += take;
    c->rx_ns = srv_metrics_now_ns();
    p += take;
    n -= take;
    conn_input(c);
    srv__server_resume_paused(c->srv);
  }
}

void srv__conn_reject(struct srv_conn *c, uint32_t reqid, const char *why) {
  srv_log(SRV_LOG_WARN, "node %u (%s): authentication failed: %s", c->node, c->addr[0] ? c->addr : "-", why);
  (void)srv__conn_send_status(c, PROTO_OP_AUTH, reqid, -EACCES);
  if (c->state == SRV_CONN_CLOSING)
    return;
  c->state = SRV_CONN_REJECTED;
  uv_read_stop(&c->h.stream);
  if (c->discard_output || c->wpending == 0)
    close_as(c, SRV_M_CLOSED_AUTH, "authentication failed");
}

void srv__conn_pending(struct srv_conn *c, int delta) {
  if (delta > 0)
    c->npending++;
  else if (c->npending > 0)
    c->npending--;
  if (c->paused && c->npending < c->srv->cfg->max_pending)
    c->srv->want_resume = 1;
}

void srv__conn_resume(struct srv_conn *c) {
  int err;

  if (!c->paused || c->draining || c->state == SRV_CONN_CLOSING ||
      c->npending >= c->srv->cfg->max_pending)
    return;
  c->paused = 0;
  SRV_VLOG("node %u: reading again (%u page requests held)", c->node, c->npending);
  /* What was buffered first: it may pause the connection again before any read. */
  conn_input(c);
  if (c->paused || c->discard_output || c->state == SRV_CONN_CLOSING ||
      c->state == SRV_CONN_REJECTED)
    return;
  err = uv_read_start(&c->h.stream, on_alloc, on_read);
  if (err < 0)
    close_as(c, SRV_M_CLOSED_ERROR, uv_strerror(err));
}

void srv__conn_check_timeouts(struct srv_conn *c, uint64_t now_ms) {
  const struct srv_config *cfg = c->srv->cfg;

  if (c->state != SRV_CONN_READY && c->state != SRV_CONN_CLOSING &&
      cfg->hello_timeout_ms != 0 && now_ms - c->since_ms >= cfg->hello_timeout_ms)
    close_as(c, SRV_M_CLOSED_TIMEOUT, c->state == SRV_CONN_HELLO ? "no HELLO in time (--hello-timeout)"
                                                  : "no AUTH in time (--hello-timeout)");
  else if (c->state == SRV_CONN_READY && cfg->idle_timeout_ms != 0 && c->atts.n == 0 &&
           c->nsemreqs == 0 &&
           c->wpending == 0 && now_ms - c->last_rx_ms >= cfg->idle_timeout_ms)
    close_as(c, SRV_M_CLOSED_TIMEOUT, "idle with nothing attached (--idle-timeout)");
}

/* A new connection object with its handle initialised; accept (or nothing, for the test
 * seam) comes next. NULL after logging on failure. */
static struct srv_conn *conn_new(struct srv_server *s, int is_unix) {
  struct srv_conn *c = calloc(1, sizeof *c);
  int err;

  if (c == NULL) {
    srv_log(SRV_LOG_ERROR, "accept: out of memory");
    return NULL;
  }
  c->srv = s;
  c->node = SRV_NODE_NONE;
  TAILQ_INIT(&c->semreqs);
  c->is_unix = is_unix;
  err = is_unix ? uv_pipe_init(s->loop, &c->h.pipe, 0) : uv_tcp_init(s->loop, &c->h.tcp);
  if (err < 0) {
    srv_log(SRV_LOG_ERROR, "accept: %s", uv_strerror(err));
    free(c);
    return NULL;
  }
  c->state = SRV_CONN_HELLO;
  c->since_ms = c->last_rx_ms = uv_now(s->loop);
  return c;
}

/* Gives c its read buffer and its node id; on failure closes it (after a log line) and
 * returns -errno. */
static int conn_register(struct srv_server *s, struct srv_conn *c, int err) {
  if (err == 0) {
    err = proto_rxbuf_init(&c->rx, SRV_CONN_RBASE);
    if (err == 0)
      err = srv__server_add_conn(s, c);
  }
  if (err < 0) {
    c->state = SRV_CONN_CLOSING;
    srv_log(SRV_LOG_WARN, "accept: %s", err == -EMFILE ? "connection table full (--max-conns)"
                                         : uv_strerror(err));
    uv_close(&c->h.handle, on_close);
    return err;
  }
  c->node = (uint32_t)err;
  return 0;
}

struct srv_conn *srv__conn_new_detached(struct srv_server *s) {
  struct srv_conn *c = conn_new(s, 0);

  if (c == NULL)
    return NULL;
  c->discard_output = 1;
  return conn_register(s, c, 0) < 0 ? NULL : c;
}

/* Names a socket address "address:port" (IPv6 in brackets) for the log lines. */
static void name_addr(const struct sockaddr_storage *ss, char *out, size_t cap) {
  char name[64] = "?";

  if (ss->ss_family == AF_INET6) {
    uv_ip6_name((const struct sockaddr_in6 *)ss, name, sizeof name);
    snprintf(out, cap, "[%s]:%d", name, ntohs(((const struct sockaddr_in6 *)ss)->sin6_port));
  } else {
    uv_ip4_name((const struct sockaddr_in *)ss, name, sizeof name);
    snprintf(out, cap, "%s:%d", name, ntohs(((const struct sockaddr_in *)ss)->sin_port));
  }
}

/* A TCP peer: named for the log lines and, when the connection is on this host (a loopback
 * address at either end), the owner of its socket asked of the kernel (docs/security.md,
 * "Who the server believes"): root may claim any identity, anyone else is its own uid, its
 * gid and groups read at HELLO. Any other peer is believed (with the token, if any). 0, or
 * -errno after a log line: the connection is refused rather than its claims believed. */
static int tcp_peer(struct srv_conn *c) {
  struct sockaddr_storage ours, peer;
  int len = sizeof peer, err;
  uint32_t uid, ino;

  err = uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&peer, &len);
  if (err == 0) {
    len = sizeof ours;
    err = uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ours, &len);
  }
  if (err < 0) {
    srv_log(SRV_LOG_WARN, "node %u: cannot read the connection's addresses: %s", c->node, uv_strerror(err));
    return err;
  }
  name_addr(&peer, c->addr, sizeof c->addr);
  if (!srv_peercred_tcp_is_local((struct sockaddr *)&ours, (struct sockaddr *)&peer))
    return 0;
  err = srv_peercred_tcp_owner((struct sockaddr *)&ours, (struct sockaddr *)&peer, &uid, &ino);
  if (err < 0) {
    srv_log(SRV_LOG_WARN, "node %u (%s): cannot tell who owns the local peer's socket (sock_diag: %s): "
            "refusing it rather than believing its claims", c->node, c->addr, strerror(-err));
    return err;
  }
  if (uid == 0) {
    c->kernel_root = 1; /* root could become anyone: as on the Unix socket */
    return 0;
  }
  c->kernel_ids = 1;
  c->peer.uid = uid;
  c->owner_ino = ino;
  return 0;
}

/* A Unix peer's identity from the kernel, taken at connect (docs/security.md): uid, gid
 * (and the pid, for the log lines) from SO_PEERCRED, groups from SO_PEERGROUPS. Root may
 * claim any identity; any other peer's claims are ignored. 0, or -errno (refused). */
static int unix_peer(struct srv_conn *c) {
  struct srv_peercred pc;
  uv_os_fd_t fd;
  int err;

  if (uv_fileno(&c->h.handle, &fd) < 0)
    return -EBADF;
  err = srv_peercred_unix(fd, &pc);
  if (err < 0)
    return err;
  snprintf(c->addr, sizeof c->addr, "unix pid %u uid %u", pc.pid, pc.uid);
  c->peer.uid = pc.uid;
  c->peer.gid = pc.gid;
  if (pc.uid == 0) {
    c->kernel_root = 1;
    return 0;
  }
  c->peer.ngroups = pc.ngroups;
  memcpy(c->peer.groups, pc.groups, pc.ngroups * sizeof pc.groups[0]);
  c->kernel_ids = 1;
  return 0;
}

/* A TCP peer that stops answering (host down, network cut, firewall dropping packets) is
 * dropped after about --keepalive-ms, idle or not: its pages are forgotten (on_close) and
 * the requests waiting on it are served. 0, or -errno. */
static int keepalive(struct srv_conn *c) {
  uv_os_fd_t fd;

  if (uv_fileno(&c->h.handle, &fd) < 0)
    return -EBADF;
  return dshm_keepalive_set(fd, c->srv->cfg->keepalive_ms);
}

void srv_conn_accept(struct srv_server *s, uv_stream_t *listener) {
  struct srv_conn *c = conn_new(s, listener->type == UV_NAMED_PIPE);
  int err;

  if (c == NULL)
    return;
  /* From here on the handle exists: every exit goes through uv_close and on_close. */
  err = uv_accept(listener, &c->h.stream);
  if (err == 0)
    srv_metrics_inc(SRV_M_CONN_ACCEPTED);
  if (conn_register(s, c, err) < 0) {
    if (err == 0) /* accepted, then refused: counted as closed too */
      srv_metrics_inc(s->nconns >= s->cfg->max_conns ? SRV_M_CLOSED_LIMIT : SRV_M_CLOSED_ERROR);
    return;
  }
  if (c->is_unix) {
    err = unix_peer(c);
    if (err < 0) {
      close_as(c, SRV_M_CLOSED_AUTH, err == -ERANGE ? "peer has more than 64 supplementary groups"
                                        : "cannot read the peer's credentials");
      return;
    }
  } else {
    err = tcp_peer(c);
    if (err < 0) {
      close_as(c, SRV_M_CLOSED_AUTH, "the kernel cannot vouch for the local peer (refused)");
      return;
    }
    uv_tcp_nodelay(&c->h.tcp, 1); /* request/reply traffic: latency over batching */
    err = keepalive(c);
    if (err < 0)
      srv_log(SRV_LOG_WARN, "node %u (%s): cannot bound a silent peer (--keepalive-ms %u): %s",
              c->node, c->addr, s->cfg->keepalive_ms, strerror(-err));
  }
  err = uv_read_start(&c->h.stream, on_alloc, on_read);
  if (err < 0)
    close_as(c, SRV_M_CLOSED_ERROR, uv_strerror(err));
  else
    SRV_VLOG("node %u: accepted from %s", c->node, c->addr);
}
