/* status.c - owns `dshm status`: the server's health and figures, read from its metrics
 * endpoint (dshm-server --metrics, docs/operations.md "Metrics"), and this host's agents',
 * read from the files they keep (agent/stats.h), summed up for a person or passed on whole
 * with --json. */
#include "status.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (1u << 20) /* an exposition is a few KiB; anything past this is refused */
#define MAX_SERIES 1024

struct series {
  char *name; /* "metric{labels}" as exposed */
  double value;
};

/* One exposition, parsed: the server's, or an agent's. */
struct table {
  struct series s[MAX_SERIES];
  size_t n;
};

static struct table server_tab, agent_tab;

/* "[ADDR:]PORT" or "[V6]:PORT" into host and port (loopback when only a port). 0 or -1. */
static int split_addr(const char *spec, char *host, size_t cap, char *port, size_t pcap) {
  const char *colon = strrchr(spec, ':');

  if (colon == NULL) {
    snprintf(host, cap, "127.0.0.1");
    snprintf(port, pcap, "%s", spec);
  } else if (spec[0] == '[') {
    const char *end = strchr(spec, ']');
    if (end == NULL || end + 1 != colon)
      return -1;
    snprintf(host, cap, "%.*s", (int)(end - spec - 1), spec + 1);
    snprintf(port, pcap, "%s", colon + 1);
  } else {
    snprintf(host, cap, "%.*s", (int)(colon - spec), spec);
    snprintf(port, pcap, "%s", colon + 1);
  }
  return *host && *port ? 0 : -1;
}

/* GET /metrics from spec; the body in *out (malloc'd, NUL-terminated). 0 or -1 (said why). */
static int fetch(const char *spec, char **out) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
  struct timeval tv = {5, 0};
  char host[256], port[32], *buf = NULL, *body;
  size_t len = 0, cap = 0;
  int fd = -1, rc;
  ssize_t n;

  if (split_addr(spec, host, sizeof host, port, sizeof port) < 0) {
    fprintf(stderr, "dshm: status: bad metrics address '%s' (ADDR:PORT)\n", spec);
    return -1;
  }
  rc = getaddrinfo(host, port, &hints, &ai);
  if (rc != 0) {
    fprintf(stderr, "dshm: status: %s: %s\n", spec, gai_strerror(rc));
    return -1;
  }
  fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
      connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
    fprintf(stderr, "dshm: status: cannot reach the server's metrics at %s: %s\n", spec,
            strerror(errno));
    goto fail;
  }
  dprintf(fd, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", host);
  for (;;) {
    if (len + 4096 + 1 > cap) {
      char *nb;
      if (cap >= MAX_BODY) {
        fprintf(stderr, "dshm: status: the answer from %s is over %u bytes\n", spec, MAX_BODY);
        goto fail;
      }
      cap = cap ? cap * 2 : 16384;
      nb = realloc(buf, cap);
      if (nb == NULL)
        goto fail;
      buf = nb;
    }
    n = read(fd, buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      fprintf(stderr, "dshm: status: reading from %s: %s\n", spec, strerror(errno));
      goto fail;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  body = strstr(buf, "\r\n\r\n");
  if (strncmp(buf, "HTTP/1.", 7) != 0 || strlen(buf) < 12 || strncmp(buf + 9, "200", 3) != 0 ||
      body == NULL) {
    fprintf(stderr, "dshm: status: %s answered '%.*s'\n", spec, (int)strcspn(buf, "\r\n"), buf);
    goto fail;
  }
  memmove(buf, body + 4, strlen(body + 4) + 1);
  *out = buf;
  close(fd);
  freeaddrinfo(ai);
  return 0;
fail:
  free(buf);
  if (fd >= 0)
    close(fd);
  freeaddrinfo(ai);
  return -1;
}

/* Every "name{labels} value" line of the exposition into t (pointing into body). */
static void parse(struct table *t, char *body) {
  char *save = NULL;

  t->n = 0;
  for (char *line = strtok_r(body, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    char *sp;
    if (line[0] == '#' || t->n == MAX_SERIES)
      continue;
    sp = strrchr(line, ' ');
    if (sp == NULL)
      continue;
    *sp = '\0';
    t->s[t->n].name = line;
    t->s[t->n].value = strtod(sp + 1, NULL);
    t->n++;
  }
}

static double tget(const struct table *t, const char *name) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->s[i].name, name) == 0)
      return t->s[i].value;
  return NAN;
}

static double get(const char *name) {
  return tget(&server_tab, name);
}

/* The smallest bucket bound under which q of the observations of class fall in histogram
 * PREFIX_request_duration_seconds of table t, in seconds; NAN when it has none. */
static double quantile(const struct table *t, const char *prefix, const char *cls, double q) {
  char name[256];
  double total, best = NAN;
  size_t plen;

  snprintf(name, sizeof name, "%s_request_duration_seconds_count{class=\"%s\"}", prefix, cls);
  total = tget(t, name);
  if (!(total > 0))
    return NAN;
  snprintf(name, sizeof name, "%s_request_duration_seconds_bucket{class=\"%s\",le=\"", prefix,
           cls);
  plen = strlen(name);
  for (size_t i = 0; i < t->n; i++) {
    const struct series *e = &t->s[i];
    double le;
    if (strncmp(e->name, name, plen) != 0 || e->value < q * total)
      continue;
    le = strtod(e->name + plen, NULL); /* "+Inf" gives inf */
    if (isnan(best) || le < best)
      best = le;
  }
  return best;
}

static void human_bytes(char *out, size_t cap, double b) {
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;

  while (b >= 1024 && u < 4) {
    b /= 1024;
    u++;
  }
  snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

static void human_time(char *out, size_t cap, double s) {
  if (isnan(s))
    snprintf(out, cap, "-");
  else if (isinf(s))
    snprintf(out, cap, "> 33 s");
  else if (s < 1e-3)
    snprintf(out, cap, "<= %.0f us", s * 1e6);
  else if (s < 1)
    snprintf(out, cap, "<= %.1f ms", s * 1e3);
  else
    snprintf(out, cap, "<= %.1f s", s);
}

/* A line per class with requests: how many, p50 and p99 (upper bounds: the buckets'). */
static void latency_lines(const struct table *t, const char *prefix, const char *const *classes,
                          size_t n, const char *indent) {
  char a[32], b[32], name[128];

  for (size_t i = 0; i < n; i++) {
    double count;
    snprintf(name, sizeof name, "%s_request_duration_seconds_count{class=\"%s\"}", prefix,
             classes[i]);
    count = tget(t, name);
    if (!(count > 0))
      continue;
    human_time(a, sizeof a, quantile(t, prefix, classes[i], 0.5));
    human_time(b, sizeof b, quantile(t, prefix, classes[i], 0.99));
    printf("%slatency    %-8s %8.0f requests, p50 %s, p99 %s\n", indent, classes[i], count, a,
           b);
  }
}

static void print_text(const char *spec) {
  static const char *const classes[] = {"read", "acquire", "write", "shm", "sem", "session"};
  char a[32], b[32];
  double up = (double)time(NULL) - get("dshm_server_start_time_seconds");
  double ready = get("dshm_server_connections{state=\"ready\"}");
  double conns = ready + get("dshm_server_connections{state=\"hello\"}") +
                 get("dshm_server_connections{state=\"auth\"}") +
                 get("dshm_server_connections{state=\"closing\"}");

  printf("server     up %.0fh%02.0fm, metrics at %s\n", floor(up / 3600),
         fmod(floor(up / 60), 60), spec);
  printf("clients    %.0f connections (%.0f ready, %.0f paused), %.0f host agents\n", conns,
         ready, get("dshm_server_connections_paused"), get("dshm_server_nodes"));
  human_bytes(a, sizeof a, get("dshm_server_segment_bytes"));
  printf("segments   %.0f (%s in %.0f pages: %.0f shared, %.0f exclusive, %.0f at the server "
         "only), %.0f marked for removal\n",
         get("dshm_server_segments"), a, get("dshm_server_segment_pages"),
         get("dshm_server_pages{state=\"shared\"}"),
         get("dshm_server_pages{state=\"exclusive\"}"),
         get("dshm_server_pages{state=\"invalid\"}"),
         get("dshm_server_segments_removed_attached"));
  printf("semaphores %.0f sets (%.0f semaphores), %.0f semops waiting\n",
         get("dshm_server_semaphore_sets"), get("dshm_server_semaphores"),
         get("dshm_server_semops_waiting"));
  human_bytes(a, sizeof a, get("dshm_server_received_bytes_total"));
  human_bytes(b, sizeof b, get("dshm_server_sent_bytes_total"));
  printf("pages      %.0f read and %.0f write grants, %.0f recalls, %.0f invalidations, "
         "%.0f write-backs, %.0f requests waiting\n",
         get("dshm_server_page_grants_total{mode=\"shared\"}"),
         get("dshm_server_page_grants_total{mode=\"exclusive\"}"),
         get("dshm_server_recalls_sent_total"), get("dshm_server_invalidations_sent_total"),
         get("dshm_server_writebacks_total"), get("dshm_server_pending_page_requests"));
  printf("traffic    %s in, %s out\n", a, b);
  latency_lines(&server_tab, "dshm_server", classes, sizeof classes / sizeof classes[0], "");
}

static void json_string(const char *p) {
  putchar('"');
  for (; *p; p++)
    printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
  putchar('"');
}

/* A table as one JSON object, the names as exposed (labels included). */
static void json_series(const struct table *t, const char *indent) {
  printf("{");
  for (size_t i = 0; i < t->n; i++) {
    printf("%s\n%s  ", i ? "," : "", indent);
    json_string(t->s[i].name);
    if (isnan(t->s[i].value) || isinf(t->s[i].value))
      printf(": null");
    else
      printf(": %.17g", t->s[i].value);
  }
  printf("\n%s}", indent);
}

/* This host's agents of this user: DSHM_AGENT_DIR (else XDG_RUNTIME_DIR, else /tmp), as
 * the library finds them; each keeps DIR/dshm-EUID/agent-*.prom. */
static int agent_files(glob_t *g) {
  const char *dir = getenv("DSHM_AGENT_DIR");
  char pat[4200];

  if (dir == NULL || !*dir)
    dir = getenv("XDG_RUNTIME_DIR");
  if (dir == NULL || !*dir)
    dir = "/tmp";
  snprintf(pat, sizeof pat, "%.4000s/dshm-%u/*.prom", dir, (unsigned)geteuid());
  return glob(pat, 0, NULL, g) == 0 ? (int)g->gl_pathc : 0;
}

/* Reads path (bounded) and parses it into agent_tab; the text, to free, or NULL. */
static char *read_agent(const char *path) {
  char *buf = malloc(65536);
  ssize_t n;
  int fd;

  if (buf == NULL)
    return NULL;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  n = fd >= 0 ? read(fd, buf, 65535) : -1;
  if (fd >= 0)
    close(fd);
  if (n < 0) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  parse(&agent_tab, buf);
  return buf;
}

static const char *const agent_classes[] = {"read", "acquire", "sysv"};

static void agent_line(const char *path) {
  const struct table *t = &agent_tab;
  const char *server = "?";
  char srv[256] = "?";

  for (size_t i = 0; i < t->n; i++)
    if (!strncmp(t->s[i].name, "dshm_agent_info{server=\"", 24)) {
      server = t->s[i].name + 24;
      snprintf(srv, sizeof srv, "%.*s", (int)strcspn(server, "\""), server);
    }
  printf("agent      %s (%s): %s, %.0f processes, %.0f segments (%.0f pages, %.0f exclusive), "
         "%.0f faults, %.0f page requests, %.0f+%.0f grants (%.0f pages), %.0f recalls, "
         "%.0f invalidations, %.0f pages written back, %.0f reconnects\n",
         srv, path, tget(t, "dshm_agent_server_connected") == 1 ? "connected" : "not connected",
         tget(t, "dshm_agent_processes"), tget(t, "dshm_agent_segments"),
         tget(t, "dshm_agent_segment_pages"), tget(t, "dshm_agent_pages_exclusive"),
         tget(t, "dshm_agent_faults_total"), tget(t, "dshm_agent_page_requests_total"),
         tget(t, "dshm_agent_grants_total{mode=\"shared\"}"),
         tget(t, "dshm_agent_grants_total{mode=\"exclusive\"}"),
         tget(t, "dshm_agent_pages_granted_total"), tget(t, "dshm_agent_recalls_total"),
         tget(t, "dshm_agent_invalidations_total"), tget(t, "dshm_agent_writeback_pages_total"),
         tget(t, "dshm_agent_reconnects_total"));
  latency_lines(t, "dshm_agent", agent_classes, sizeof agent_classes / sizeof agent_classes[0],
                "  ");
}

int dshm_status(int argc, char **argv) {
  const char *spec = getenv("DSHM_METRICS");
  char *body = NULL;
  int json = 0, nagents, rc = 0;
  glob_t g;

  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--metrics") && i + 1 < argc)
      spec = argv[++i];
    else if (!strncmp(argv[i], "--metrics=", 10))
      spec = argv[i] + 10;
    else {
      fprintf(stderr, "usage: dshm status [--metrics [ADDR:]PORT] [--json]\n");
      return 2;
    }
  }
  nagents = agent_files(&g);
  if ((spec == NULL || !*spec) && nagents == 0) {
    fprintf(stderr, "dshm: status: no metrics address for the server (--metrics [ADDR:]PORT "
                    "or DSHM_METRICS: the server's --metrics) and no host agent of this user "
                    "here\n");
    return 2;
  }
  if (spec != NULL && *spec) {
    if (fetch(spec, &body) < 0) {
      rc = 1;
    } else {
      parse(&server_tab, body);
      if (isnan(get("dshm_server_start_time_seconds"))) {
        fprintf(stderr, "dshm: status: %s does not look like a dshm-server's metrics\n", spec);
        rc = 1;
      }
    }
  }
  if (json) {
    printf("{\n  \"metrics_address\": ");
    if (spec != NULL && *spec)
      json_string(spec);
    else
      printf("null");
    printf(",\n  \"series\": ");
    json_series(&server_tab, "  ");
    printf(",\n  \"agents\": [");
  } else if (rc == 0 && body != NULL) {
    print_text(spec);
  } else if (spec == NULL || !*spec) {
    printf("server     no metrics address (--metrics, DSHM_METRICS)\n");
  }
  for (int i = 0; i < nagents; i++) {
    char *text = read_agent(g.gl_pathv[i]);
    if (text == NULL)
      continue;
    if (json) {
      printf("%s\n    {\"file\": ", i ? "," : "");
      json_string(g.gl_pathv[i]);
      printf(", \"series\": ");
      json_series(&agent_tab, "    ");
      printf("}");
    } else {
      agent_line(g.gl_pathv[i]);
    }
    free(text);
  }
  if (json)
    printf("%s]\n}\n", nagents ? "\n  " : "");
  if (nagents)
    globfree(&g);
  free(body);
  return rc;
}
