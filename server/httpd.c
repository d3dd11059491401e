/* httpd.c - owns the metrics endpoint: its listener, its clients (one request, one response,
 * then closed) and the parsing of their request heads. */
#include "httpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- the request head (pure) ---- */

/* RFC 9110 tchar: the characters of a method or a header name. */
static int tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

#define NEED_MORE (-2)

/* The end of the line starting at i: the index of its LF (a CR just before it is not part
 * of the line), NEED_MORE if p[i..n) holds no LF yet, or -EBADMSG on a CR not followed by
 * LF. */
static ssize_t line_end(const char *p, size_t n, size_t i) {
  for (; i < n; i++) {
    if (p[i] == '\n')
      return (ssize_t)i;
    if (p[i] == '\r' && i + 1 < n && p[i + 1] != '\n')
      return -EBADMSG;
  }
  return NEED_MORE;
}

/* Checks the request line p[0..len) (without its line ending). */
static int request_line(const char *p, size_t len, struct srv_http_req *r) {
  size_t i = 0, m, t0, tlen;

  while (i < len && tchar((unsigned char)p[i]))
    i++;
  m = i;
  if (m == 0 || m > 16 || i >= len || p[i] != ' ')
    return -EBADMSG;
  r->method = m == 3 && memcmp(p, "GET", 3) == 0    ? SRV_HTTP_GET
              : m == 4 && memcmp(p, "HEAD", 4) == 0 ? SRV_HTTP_HEAD
                                                    : SRV_HTTP_OTHER;
  t0 = ++i;
  while (i < len && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
    i++;
  tlen = i - t0;
  if (tlen == 0 || i >= len || p[i] != ' ')
    return -EBADMSG;
  r->metrics = tlen >= 8 && memcmp(p + t0, "/metrics", 8) == 0 &&
               (tlen == 8 || p[t0 + 8] == '?');
  i++;
  if (len - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 || p[i + 7] < '0' || p[i + 7] > '9')
    return -EBADMSG;
  r->minor = p[i + 7] - '0';
  return 0;
}

/* Checks a header line p[0..len): a name, a colon, a value without control characters. */
static int header_line(const char *p, size_t len) {
  size_t i = 0;

  while (i < len && tchar((unsigned char)p[i]))
    i++;
  if (i == 0 || i >= len || p[i] != ':')
    return -EBADMSG; /* also rejects obsolete line folding (a leading space) */
  for (i++; i < len; i++)
    if (((unsigned char)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
      return -EBADMSG;
  return 0;
}

/* Checks the bytes of a line seen so far (no line end yet) so that garbage is refused
 * without waiting for a newline that may never come. */
static int partial_ok(const char *p, size_t len, int first) {
  size_t i;

  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch == '\r' && i + 1 == len)
      break; /* its LF may follow */
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f || (first && ch == '\t'))
      return -EBADMSG;
    if (first && i == 0 && !tchar(ch))
      return -EBADMSG;
  }
  return 0;
}

ssize_t srv_http_parse(const char *p, size_t n, struct srv_http_req *r) {
  size_t i = 0;
  int first = 1;

  memset(r, 0, sizeof *r);
  for (;;) {
    ssize_t e = line_end(p, n, i);
    size_t len;

    if (e == NEED_MORE) /* unless what is there is already wrong */
      return partial_ok(p + i, n - i, first) < 0 ? -EBADMSG : 0;
    if (e < 0)
      return -EBADMSG;
    len = (size_t)e - i;
    if (len > 0 && p[e - 1] == '\r')
      len--;
    if (first) {
      if (request_line(p + i, len, r) < 0)
        return -EBADMSG;
      first = 0;
    } else if (len == 0) {
      return (ssize_t)e + 1; /* the blank line: the head is complete */
    } else if (header_line(p + i, len) < 0) {
      return -EBADMSG;
    }
    i = (size_t)e + 1;
  }
}

int srv_http_status(const struct srv_http_req *r) {
  if (r->method == SRV_HTTP_OTHER)
    return 405;
  return r->metrics ? 200 : 404;
}

/* ---- clients ---- */

struct srv_hclient {
  uv_tcp_t tcp;             /* freed with the client once both handles are closed */
  uv_timer_t timer;         /* the deadline of the whole exchange */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  struct srv_httpd *d;
  TAILQ_ENTRY(srv_hclient) link;
  int open;                 /* handles not yet closed */
  int closing;
  int answered;             /* a status was counted */
  int lingering;            /* response sent: input is read and dropped until EOF */
  char *resp;               /* the response being written */
  size_t len;               /* bytes of buf read */
  char buf[SRV_HTTP_MAX_REQ];
};

static void on_client_closed(uv_handle_t *h) {
  struct srv_hclient *k = h->data;

  if (--k->open > 0)
    return;
  TAILQ_REMOVE(&k->d->clients, k, link);
  k->d->nclients--;
  free(k->resp);
  free(k);
}

static void client_close(struct srv_hclient *k) {
  if (k->closing)
    return;
  k->closing = 1;
  if (!k->answered)
    srv_metrics_inc(SRV_M_HTTP_CLOSED);
  uv_close((uv_handle_t *)&k->tcp, on_client_closed);
  uv_close((uv_handle_t *)&k->timer, on_client_closed);
}

static void on_timeout(uv_timer_t *t) {
  client_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status; /* the peer's EOF, an error or the deadline closes */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* The response is out: a lingering close, as web servers do. Closing with unread input
 * (the rest of an oversized head, a body) would reset the connection, and the peer could
 * lose the response; so the write side is shut and input is dropped until the peer's EOF,
 * within the deadline. */
static void on_written(uv_write_t *req, int status) {
  struct srv_hclient *k = req->data;

  if (k->closing)
    return;
  k->lingering = 1;
  if (status < 0 || uv_shutdown(&k->sreq, (uv_stream_t *)&k->tcp, on_shutdown) < 0 ||
      uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read) < 0)
    client_close(k);
}

static const char *reason(int code) {
  switch (code) {
  case 200: return "OK";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 431: return "Request Header Fields Too Large";
  default:  return "Service Unavailable";
  }
}

static enum srv_counter code_counter(int code) {
  switch (code) {
  case 200: return SRV_M_HTTP_200;
  case 400: return SRV_M_HTTP_400;
  case 404: return SRV_M_HTTP_404;
  case 405: return SRV_M_HTTP_405;
  case 431: return SRV_M_HTTP_431;
  default:  return SRV_M_HTTP_503;
  }
}

/* Writes the response (headers, and the body unless head_only) and closes after it. */
static void respond(struct srv_hclient *k, int code, const char *ctype, const char *body,
                    size_t blen, int head_only) {
  struct srv_mbuf b = {0};
  uv_buf_t ub;

  uv_read_stop((uv_stream_t *)&k->tcp);
  k->answered = 1;
  srv_metrics_inc(code_counter(code));
  srv_mbuf_printf(&b,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                  "Connection: close\r\n\r\n",
                  code, reason(code), ctype, blen,
                  code == 405 ? "Allow: GET, HEAD\r\n" : "");
  if (!head_only)
    srv_mbuf_append(&b, body, blen);
  if (b.err) {
    srv_mbuf_free(&b);
    client_close(k);
    return;
  }
  k->resp = b.p;
  ub = uv_buf_init(k->resp, (unsigned)b.len);
  k->wreq.data = k;
  if (uv_write(&k->wreq, (uv_stream_t *)&k->tcp, &ub, 1, on_written) < 0)
    client_close(k);
}

static void respond_text(struct srv_hclient *k, int code, const char *text) {
  respond(k, code, "text/plain; charset=utf-8", text, strlen(text), 0);
}

static void serve(struct srv_hclient *k, const struct srv_http_req *r) {
  struct srv_mbuf b = {0};
  int code = srv_http_status(r);

  if (code == 404) {
    respond_text(k, 404, "not found: the figures are at /metrics\n");
    return;
  }
  if (code == 405) {
    respond_text(k, 405, "method not allowed: GET or HEAD\n");
    return;
  }
  if (k->d->render(k->d->opaque, &b) < 0) {
    srv_mbuf_free(&b);
    respond_text(k, 503, "out of memory\n");
    return;
  }
  /* The body is copied behind the headers: a few tens of KiB, once per scrape. */
  respond(k, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len,
          r->method == SRV_HTTP_HEAD);
  srv_mbuf_free(&b);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct srv_hclient *k = h->data;

  (void)suggested;
  /* Never more than the cap: a full buffer without a complete head is answered 431.
   * Lingering, what comes is dropped. */
  if (k->lingering)
    *buf = uv_buf_init(k->buf, (unsigned)sizeof k->buf);
  else
    *buf = uv_buf_init(k->buf + k->len, (unsigned)(sizeof k->buf - k->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct srv_hclient *k = s->data;
  struct srv_http_req r;
  ssize_t n;

  (void)buf;
  if (nread == 0 || k->closing)
    return;
  if (nread < 0) {
    client_close(k);
    return;
  }
  if (k->lingering)
    return;
  k->len += (size_t)nread;
  n = srv_http_parse(k->buf, k->len, &r);
  if (n > 0)
    serve(k, &r);
  else if (n < 0)
    respond_text(k, 400, "bad request\n");
  else if (k->len == sizeof k->buf)
    respond_text(k, 431, "request head too large\n");
}

static void on_connection(uv_stream_t *listener, int status) {
  struct srv_httpd *d = listener->data;
  struct srv_hclient *k;

  if (status < 0)
    return;
  k = calloc(1, sizeof *k);
  if (k == NULL || uv_tcp_init(d->loop, &k->tcp) < 0) {
    free(k);
    return; /* the connection waits in the backlog; the next one may find memory */
  }
  k->d = d;
  k->tcp.data = k;
  k->open = 1;
  TAILQ_INSERT_TAIL(&d->clients, k, link);
  d->nclients++;
  if (uv_timer_init(d->loop, &k->timer) < 0) {
    k->closing = 1;
    uv_close((uv_handle_t *)&k->tcp, on_client_closed);
    return;
  }
  k->timer.data = k;
  k->open = 2;
  if (uv_accept(listener, (uv_stream_t *)&k->tcp) < 0) {
    k->answered = 1;
    client_close(k);
    return;
  }
  /* The deadline first: it also bounds the write of a refusal to a peer that never reads. */
  if (uv_timer_start(&k->timer, on_timeout, SRV_HTTP_TIMEOUT_MS, 0) < 0)
    client_close(k);
  else if (d->nclients > SRV_HTTP_MAX_CLIENTS)
    respond_text(k, 503, "too many scrapers at once\n");
  else if (uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read) < 0)
    client_close(k);
}

static void on_listener_closed(uv_handle_t *h) {
  (void)h; /* embedded in the server */
}

int srv_httpd_start(struct srv_httpd *d, uv_loop_t *loop, const struct sockaddr *addr,
                    srv_httpd_render_fn render, void *opaque, char *name, size_t cap) {
  struct sockaddr_storage ss;
  int len = sizeof ss, err;
  char host[64] = "?";

  memset(d, 0, sizeof *d);
  TAILQ_INIT(&d->clients);
  d->loop = loop;
  d->render = render;
  d->opaque = opaque;
  err = uv_tcp_init(loop, &d->listener);
  if (err < 0)
    return err;
  d->on = 1;
  d->listener.data = d;
  err = uv_tcp_bind(&d->listener, addr, 0);
  if (err == 0)
    err = uv_listen((uv_stream_t *)&d->listener, 16, on_connection);
  if (err == 0)
    err = uv_tcp_getsockname(&d->listener, (struct sockaddr *)&ss, &len);
  if (err < 0) {
    srv_httpd_stop(d);
    return err;
  }
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
    snprintf(name, cap, "[%s]:%d", host, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
    snprintf(name, cap, "%s:%d", host, ntohs(((struct sockaddr_in *)&ss)->sin_port));
  }
  return 0;
}

void srv_httpd_stop(struct srv_httpd *d) {
  struct srv_hclient *k;

  if (d->on)
    uv_close((uv_handle_t *)&d->listener, on_listener_closed);
  d->on = 0;
  TAILQ_FOREACH(k, &d->clients, link)
    client_close(k);
}
