/* httpd.h - the metrics endpoint (--metrics): a minimal HTTP/1.x responder on the server's
 * loop that answers GET /metrics with the exposition and closes every connection after one
 * response. */
#ifndef DSHM_SRV_HTTPD_H
#define DSHM_SRV_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <uv.h>

#include "metrics.h"

#define SRV_HTTP_MAX_REQ     8192u  /* a request head longer than this gets 431 and a close */
#define SRV_HTTP_MAX_CLIENTS 16u    /* more at once get 503 and a close */
#define SRV_HTTP_TIMEOUT_MS  5000u  /* from accept to the response written, or closed */

enum srv_http_method { SRV_HTTP_GET, SRV_HTTP_HEAD, SRV_HTTP_OTHER };

struct srv_http_req {
  enum srv_http_method method;
  int metrics;   /* the target is /metrics (a query string is ignored) */
  int minor;     /* HTTP/1.minor */
};

/* Parses a request head (request line and header lines, CRLF or LF, up to the blank line)
 * from p[0..n). Returns its length (> 0), 0 if more bytes are needed, or -EBADMSG as soon as
 * a byte that cannot belong to a valid head is seen. Reads nothing past n; pure. A body is
 * never read: the caller answers and closes. */
ssize_t srv_http_parse(const char *p, size_t n, struct srv_http_req *r);

/* The status for a parsed request: 200, 404 (another target) or 405 (another method). */
int srv_http_status(const struct srv_http_req *r);

/* Fills b with the exposition; 0 or -errno. */
typedef int (*srv_httpd_render_fn)(void *opaque, struct srv_mbuf *b);

struct srv_hclient;

struct srv_httpd {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int on;                   /* the listener is open */
  uint32_t nclients;
  srv_httpd_render_fn render;
  void *opaque;
  TAILQ_HEAD(srv_hclient_q, srv_hclient) clients;
};

/* Binds and listens on addr; name receives the address bound ("127.0.0.1:9464", IPv6 in
 * brackets). 0 or -errno (nothing left open). Loop thread only, like all below. */
int srv_httpd_start(struct srv_httpd *d, uv_loop_t *loop, const struct sockaddr *addr,
                    srv_httpd_render_fn render, void *opaque, char *name, size_t cap);

/* Closes the listener and every client; the loop frees them. Idempotent. */
void srv_httpd_stop(struct srv_httpd *d);

#endif
