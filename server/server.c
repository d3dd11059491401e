/* server.c - owns the server object: listener, signals, the node table and shutdown. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <sys/random.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "semcalls.h"

/* The directory's transport: node id -> connection. */
static int dir_send(void *opaque, uint32_t node, struct proto_msg *m) {
  struct srv_server *s = opaque;
  struct srv_conn *c = node < s->cfg->max_conns ? s->conns[node] : NULL;

  if (c == NULL)
    return -ENOTCONN;
  /* A grant says what it grants: a READ_DATA answered EXCLUSIVE is a migratory grant. */
  if ((m->h.flags & PROTO_F_REPLY) && m->h.status == 0 &&
      (m->h.opcode == PROTO_OP_READ_DATA || m->h.opcode == PROTO_OP_ACQUIRE))
    SRV_VLOG("node %u: <- %s reply reqid %u: pages %u+%u %s", node, proto_op_name(m->h.opcode),
             m->h.reqid, m->u.run.first, m->u.run.count,
             m->u.run.mode == PROTO_MODE_EXCLUSIVE ? "EXCLUSIVE" : "SHARED");
  else
    SRV_VLOG("node %u: <- %s%s reqid %u", node, proto_op_name(m->h.opcode),
             (m->h.flags & PROTO_F_REPLY) ? " reply" : "", m->h.reqid);
  return srv__conn_send(c, m);
}

static uint64_t dir_node_tag(void *opaque, uint32_t node) {
  struct srv_server *s = opaque;
  struct srv_conn *c = node < s->cfg->max_conns ? s->conns[node] : NULL;

  return c != NULL ? c->node_tag : 0;
}

/* The directory's count of node's held page requests: --max-pending. */
static void dir_pending(void *opaque, uint32_t node, int delta) {
  struct srv_server *s = opaque;
  struct srv_conn *c = node < s->cfg->max_conns ? s->conns[node] : NULL;

  if (c != NULL)
    srv__conn_pending(c, delta);
}

static const struct srv_dir_ops dir_ops = {
    .send = dir_send, .pending = dir_pending, .node_tag = dir_node_tag};

void srv__server_resume_paused(struct srv_server *s) {
  uint32_t i;

  if (s->resuming)
    return;
  s->resuming = 1;
  while (s->want_resume) {
    s->want_resume = 0;
    for (i = 0; i < s->cfg->max_conns; i++)
      if (s->conns[i] != NULL && s->conns[i]->paused)
        srv__conn_resume(s->conns[i]);
  }
  s->resuming = 0;
}

int srv_server_init(struct srv_server *s, uv_loop_t *loop, const struct srv_config *cfg) {
  int err;

  memset(s, 0, sizeof *s);
  srv_metrics_reset();
  {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s->start_time = (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
  }
  s->loop = loop;
  s->cfg = cfg;
  s->dirctx.ops = &dir_ops;
  s->dirctx.opaque = s;
  s->conns = calloc(cfg->max_conns, sizeof *s->conns);
  if (s->conns == NULL)
    return -ENOMEM;
  s->persist.dirfd = s->persist.lockfd = -1;
  err = srv_semtab_init(&s->sems, &cfg->semlim, srv__sem_done, s);
  if (err < 0) {
    free(s->conns);
    s->conns = NULL;
    return err;
  }
  err = srv_segtab_init(&s->segs, &cfg->lim, &s->dirctx);
  if (err == 0 && cfg->data_dir != NULL) {
    err = srv_persist_open(&s->persist, cfg->data_dir);
    if (err == 0)
      err = srv_persist_load(&s->persist, &s->segs);
    if (err < 0) {
      srv_segtab_fini(&s->segs);
      srv_persist_close(&s->persist);
    } else {
      memcpy(s->instance, s->persist.instance, sizeof s->instance);
    }
  } else if (err == 0 && getrandom(s->instance, sizeof s->instance, 0) != (ssize_t)sizeof s->instance) {
    err = -EIO;
    srv_segtab_fini(&s->segs);
  }
  if (err < 0) {
    srv_semtab_fini(&s->sems);
    free(s->conns);
    s->conns = NULL;
  }
  return err;
}

void srv__server_changed(struct srv_server *s) {
  if (s->persist.dirfd < 0 || s->segs.dirty == 0)
    return;
  /* Before the reply leaves: a client never sees a state a crash could take back. */
  (void)srv_persist_save(&s->persist, &s->segs);
}

void srv__server_node_resumed(struct srv_server *s, uint64_t tag) {
  uint64_t n = 0;
  uint32_t i;

  for (i = 0; i < s->segs.nslots; i++)
    if (s->segs.slot[i] != NULL)
      n += srv_dir_end_ghosts(s->segs.slot[i]->dir, tag);
  if (n > 0)
    srv_log(SRV_LOG_INFO, "a returning node released %llu page%s it held before the restart without "
            "writing %s back", (unsigned long long)n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
}

void srv__server_end_grace(struct srv_server *s) {
  uint64_t n = 0;
  uint32_t i;

  for (i = 0; i < s->segs.nslots; i++) {
    struct srv_seg *seg = s->segs.slot[i];
    if (seg == NULL)
      continue;
    n += srv_dir_end_ghosts(seg->dir, 0);
    srv_seg_reap(&s->segs, seg); /* removed while attached, and nobody came back */
  }
  if (n > 0)
    srv_log(SRV_LOG_INFO, "grace period over: %llu page%s held by clients that did not come back now "
            "serve their last written-back data", (unsigned long long)n, n == 1 ? "" : "s");
  srv__server_changed(s);
}

static void on_grace(uv_timer_t *t) {
  srv__server_end_grace(t->data);
}

static void on_handle_closed(uv_handle_t *h);

int srv__server_add_conn(struct srv_server *s, struct srv_conn *c) {
  uint32_t i;

  for (i = 0; i < s->cfg->max_conns; i++)
    if (s->conns[i] == NULL) {
      s->conns[i] = c;
      s->nconns++;
      return (int)i;
    }
  return -EMFILE;
}

void srv__server_del_conn(struct srv_server *s, uint32_t node) {
  if (node < s->cfg->max_conns && s->conns[node] != NULL) {
    s->conns[node] = NULL;
    s->nconns--;
  }
  /* The last connection of a shutdown is gone: nothing left to wait for. */
  if (s->stopping && s->nconns == 0 && s->drain_on) {
    s->drain_on = 0;
    uv_close((uv_handle_t *)&s->drain, on_handle_closed);
  }
}

static void on_connection(uv_stream_t *listener, int status) {
  struct srv_server *s = listener->data;

  if (status < 0) {
    srv_log(SRV_LOG_ERROR, "listen: %s", uv_strerror(status));
    return;
  }
  if (!s->stopping)
    srv_conn_accept(s, listener);
}

static void on_signal(uv_signal_t *h, int signum) {
  struct srv_server *s = h->data;

  srv_log(SRV_LOG_INFO, "%s: shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
  srv_server_stop(s);
}

/* The handles are embedded in the server, which outlives the loop: nothing to free. */
static void on_handle_closed(uv_handle_t *h) {
  (void)h;
}

/* Closes the connections past their HELLO or idle deadline. A sweep of the table a few
 * times per timeout: the table is small and it keeps a timer off every connection. */
static void on_sweep(uv_timer_t *t) {
  struct srv_server *s = t->data;
  uint64_t now = uv_now(s->loop);
  uint32_t i;

  for (i = 0; i < s->cfg->max_conns; i++)
    if (s->conns[i] != NULL)
      srv__conn_check_timeouts(s->conns[i], now);
}

/* Starts the sweep when a timeout is configured; its period is a quarter of the shortest
 * one, between 100 ms and 1 s. */
static int sweep_start(struct srv_server *s) {
  uint64_t a = s->cfg->hello_timeout_ms, b = s->cfg->idle_timeout_ms;
  uint64_t shortest = a == 0 ? b : b == 0 || a < b ? a : b, period;
  int err;

  if (shortest == 0)
    return 0;
  period = shortest / 4 < 100 ? 100 : shortest / 4 > 1000 ? 1000 : shortest / 4;
  err = uv_timer_init(s->loop, &s->sweep);
  if (err < 0)
    return err;
  s->sweep.data = s;
  s->sweep_on = 1;
  return uv_timer_start(&s->sweep, on_sweep, period, period);
}

/* The drain deadline: whatever is still queued is given up. */
static void on_drain(uv_timer_t *t) {
  struct srv_server *s = t->data;
  uint32_t i;

  for (i = 0; i < s->cfg->max_conns; i++)
    if (s->conns[i] != NULL)
      srv__conn_close(s->conns[i], "server shutting down (output not flushed in time)");
  if (s->drain_on) {
    s->drain_on = 0;
    uv_close((uv_handle_t *)&s->drain, on_handle_closed);
  }
}

/* Every request already read has been dispatched (dispatch is synchronous), so its reply,
 * or the directory's message, is queued: stop reading, let the queues drain, then close,
 * within SRV_DRAIN_MS. */
void srv_server_stop(struct srv_server *s) {
  uint32_t i;

  if (s->stopping)
    return;
  s->stopping = 1;
  if (s->tcp_on)
    uv_close((uv_handle_t *)&s->listener, on_handle_closed);
  if (s->unix_on)
    uv_close((uv_handle_t *)&s->ulistener, on_handle_closed);
  s->tcp_on = s->unix_on = 0; /* closing a bound pipe listener removes its socket file */
  uv_close((uv_handle_t *)&s->sigint, on_handle_closed);
  uv_close((uv_handle_t *)&s->sigterm, on_handle_closed);
  srv_httpd_stop(&s->httpd);
  if (s->sweep_on)
    uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
  s->sweep_on = 0;
  if (s->grace_on)
    uv_close((uv_handle_t *)&s->grace, on_handle_closed);
  s->grace_on = 0;
  if (s->nconns > 0 && uv_timer_init(s->loop, &s->drain) == 0) {
    s->drain.data = s;
    s->drain_on = 1;
    uv_timer_start(&s->drain, on_drain, SRV_DRAIN_MS, 0);
  }
  for (i = 0; i < s->cfg->max_conns; i++)
    if (s->conns[i] != NULL)
      srv__conn_drain(s->conns[i]);
  if (s->drain_on && s->nconns == 0) {
    s->drain_on = 0;
    uv_close((uv_handle_t *)&s->drain, on_handle_closed);
  }
}

/* After a restart with segments: the grace timer. */
static int timers_start(struct srv_server *s) {
  int err;

  if (s->persist.dirfd < 0 || s->segs.in_use == 0)
    return 0;
  err = uv_timer_init(s->loop, &s->grace);
  if (err < 0)
    return err;
  s->grace.data = s;
  s->grace_on = 1;
  return uv_timer_start(&s->grace, on_grace, s->cfg->grace_ms, 0);
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss) {
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  return -EINVAL;
}

/* Prints the line the tests and scripts wait for, with the port actually bound. */
static int announce(struct srv_server *s) {
  struct sockaddr_storage ss;
  int len = sizeof ss, err;
  char name[64];
  int port;

  err = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
  if (err < 0)
    return err;
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, name, sizeof name);
    port = ntohs(a->sin6_port);
    srv_log_stdout("listening on [%s]:%d", name, port);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    uv_ip4_name(a, name, sizeof name);
    port = ntohs(a->sin_port);
    srv_log_stdout("listening on %s:%d", name, port);
  }
  if (!s->cfg->auth && !srv_config_is_loopback(name))
    srv_log(SRV_LOG_WARN, "listening on %s without a token (--insecure): anyone who can reach "
            "this port can read and write every segment as any user (docs/security.md)",
            name);
  fflush(stdout);
  return 0;
}

/* A socket file left by a server that is gone is removed; one that a live server listens
 * on, or anything that is not a socket, is left alone and refused. 0 or -errno. */
static int clear_stale_socket(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  struct stat st;
  int fd, err;

  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : -errno;
  if (!S_ISSOCK(st.st_mode)) {
    srv_log(SRV_LOG_ERROR, "%s exists and is not a socket: not touching it", path);
    return -EEXIST;
  }
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  memcpy(a.sun_path, path, strlen(path) + 1); /* length checked by the configuration */
  err = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : -errno;
  close(fd);
  if (err == 0) {
    srv_log(SRV_LOG_ERROR, "another server is listening on %s", path);
    return -EADDRINUSE;
  }
  if (err != -ECONNREFUSED) {
    srv_log(SRV_LOG_ERROR, "cannot probe %s: %s", path, strerror(-err));
    return err;
  }
  if (unlink(path) < 0)
    return -errno;
  srv_log(SRV_LOG_INFO, "removed stale socket file %s", path);
  return 0;
}

/* Binds and listens on the Unix socket with the configured mode. 0 or -errno. */
static int listen_unix(struct srv_server *s) {
  const char *path = s->cfg->unix_path;
  int err;

  err = clear_stale_socket(path);
  if (err < 0)
    return err;
  err = uv_pipe_bind(&s->ulistener, path);
  if (err < 0)
    return err;
  /* Nobody can connect before listen: no window with the wrong mode. */
  if (chmod(path, s->cfg->unix_mode) < 0)
    return -errno;
  err = uv_listen((uv_stream_t *)&s->ulistener, 128, on_connection);
  if (err < 0)
    return err;
  srv_log_stdout("listening on unix:%s", path);
  return 0;
}

void srv__server_gauges(const struct srv_server *s, struct srv_gauges *g) {
  uint32_t i;

  memset(g, 0, sizeof *g);
  g->conns_max = s->cfg->max_conns;
  for (i = 0; i < s->cfg->max_conns; i++) {
    const struct srv_conn *c = s->conns[i];
    if (c == NULL)
      continue;
    g->conns_hello += c->state == SRV_CONN_HELLO;
    g->conns_auth += c->state == SRV_CONN_AUTH;
    g->conns_ready += c->state == SRV_CONN_READY;
    g->conns_closing += c->state == SRV_CONN_CLOSING || c->state == SRV_CONN_REJECTED;
    g->conns_paused += c->paused != 0;
    g->pending_page_reqs += c->npending;
    g->semops_waiting += c->nsemreqs;
    g->output_queued += c->wpending;
  }
  for (i = 0; i < s->segs.nslots; i++) {
    const struct srv_seg *seg = s->segs.slot[i];
    if (seg == NULL)
      continue;
    g->segments++;
    g->segment_bytes += seg->shm_segsz;
    g->segments_removed_attached += (seg->shm_perm.mode & SRV_SHM_DEST) != 0;
  }
  g->segment_pages = s->segs.shm_tot;
  g->sem_sets = s->sems.in_use;
  g->sems = s->sems.sem_tot;
  g->owner_questions = s->owners.n;
  g->metrics_clients = s->httpd.nclients;
  g->start_time = s->start_time;
}

/* The metrics endpoint's exposition: the figures and the gauges read now. */
static int render_metrics(void *opaque, struct srv_mbuf *b) {
  struct srv_gauges g;

  srv__server_gauges(opaque, &g);
  return srv_metrics_render(b, &g);
}

/* --metrics: listens and prints "metrics on http://ADDR:PORT/metrics" on stdout after the
 * listening lines, so that scripts reading the first line see what they always saw. */
static int metrics_start(struct srv_server *s) {
  struct sockaddr_storage ss;
  char name[80];
  int err;

  if (resolve(s->cfg->metrics_addr, s->cfg->metrics_port, &ss) < 0)
    return -EINVAL;
  err = srv_httpd_start(&s->httpd, s->loop, (struct sockaddr *)&ss, render_metrics, s, name,
                        sizeof name);
  if (err < 0) {
    srv_log(SRV_LOG_ERROR, "cannot listen for metrics on %s port %d: %s",
            s->cfg->metrics_addr, s->cfg->metrics_port, uv_strerror(err));
    return err;
  }
  srv_log_stdout("metrics on http://%s/metrics", name);
  if (!srv_config_is_loopback(s->cfg->metrics_addr))
    srv_log(SRV_LOG_WARN, "metrics on %s, not a loopback address: anyone who can reach it "
            "sees the server's figures (counts and rates, no data; docs/security.md)", name);
  return 0;
}

int srv_server_start(struct srv_server *s) {
  struct sockaddr_storage ss;
  int err;

  if (s->cfg->tcp && resolve(s->cfg->bind, s->cfg->port, &ss) < 0) {
    srv_log(SRV_LOG_ERROR, "cannot parse bind address '%s'", s->cfg->bind);
    return -EINVAL;
  }
  /* Once the signal handles exist, stop closes everything; before that, unwind by hand. */
  err = uv_signal_init(s->loop, &s->sigint);
  if (err < 0)
    goto fail;
  err = uv_signal_init(s->loop, &s->sigterm);
  if (err < 0)
    goto fail_sigint;
  s->sigint.data = s->sigterm.data = s;
  /* Signals first: a "listening on" line means SIGTERM already stops cleanly. */
  err = uv_signal_start(&s->sigint, on_signal, SIGINT);
  if (err == 0)
    err = uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  if (err == 0)
    err = sweep_start(s);
  if (err == 0)
    err = timers_start(s);
  if (err < 0) {
    srv_log(SRV_LOG_ERROR, "cannot start: %s", uv_strerror(err));
    goto fail_stop;
  }
  if (s->cfg->tcp) {
    err = uv_tcp_init(s->loop, &s->listener);
    s->tcp_on = err == 0;
    s->listener.data = s;
    if (err == 0)
      err = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (err == 0)
      err = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (err == 0)
      err = announce(s);
    if (err < 0) {
      srv_log(SRV_LOG_ERROR, "cannot listen on %s:%d: %s", s->cfg->bind, s->cfg->port, uv_strerror(err));
      goto fail_stop;
    }
  }
  if (s->cfg->unix_path[0] != '\0') {
    err = uv_pipe_init(s->loop, &s->ulistener, 0);
    s->unix_on = err == 0;
    s->ulistener.data = s;
    if (err == 0)
      err = listen_unix(s);
    if (err < 0) {
      srv_log(SRV_LOG_ERROR, "cannot listen on unix:%s: %s", s->cfg->unix_path, uv_strerror(err));
      goto fail_stop;
    }
  }
  if (s->cfg->metrics) {
    err = metrics_start(s);
    if (err < 0)
      goto fail_stop;
  }
  if (s->cfg->auth)
    srv_log(SRV_LOG_INFO, "clients must prove the token of %s", s->cfg->token_file);
  return 0;

fail_stop:
  srv_server_stop(s);
  return err;
fail_sigint:
  uv_close((uv_handle_t *)&s->sigint, on_handle_closed);
fail:
  srv_log(SRV_LOG_ERROR, "init: %s", uv_strerror(err));
  s->stopping = 1;
  return err;
}

int srv_server_fini(struct srv_server *s) {
  int err = 0;

  if (s->persist.dirfd >= 0) {
    err = srv_persist_flush(&s->persist, &s->segs);
    if (err == 0)
      srv_log(SRV_LOG_INFO, "data dir %s: segments flushed", s->persist.path);
  }
  srv_segtab_fini(&s->segs);
  srv_semtab_fini(&s->sems);
  srv_owners_fini(&s->owners);
  srv_persist_close(&s->persist);
  free(s->conns);
  s->conns = NULL;
  return err;
}
