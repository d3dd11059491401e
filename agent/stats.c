/* stats.c - owns the host agent's figures and their file (stats.h). */
#include "stats.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hostseg.h"

struct agent_stats agent_stats;

static const char *const class_label[AGENT_RC_COUNT_] = {"read", "acquire", "sysv"};

void agent_stats_observe(unsigned cls, uint64_t t0) {
  uint64_t now = uv_hrtime();

  if (cls < AGENT_RC_COUNT_ && t0 != 0)
    dshm_hist_observe(&agent_stats.lat[cls], now > t0 ? now - t0 : 0);
}

static void write_hist(FILE *f) {
  fprintf(f, "# HELP dshm_agent_request_duration_seconds Time from sending a request to the "
             "server to its answer, by class.\n"
             "# TYPE dshm_agent_request_duration_seconds histogram\n");
  for (unsigned c = 0; c < AGENT_RC_COUNT_; c++) {
    const struct dshm_hist *h = &agent_stats.lat[c];
    uint64_t cum = 0;
    for (unsigned i = 0; i < DSHM_HIST_BUCKETS; i++) {
      cum += h->bucket[i];
      fprintf(f, "dshm_agent_request_duration_seconds_bucket{class=\"%s\",le=\"%.9g\"} %llu\n",
              class_label[c], dshm_hist_le(i), (unsigned long long)cum);
    }
    fprintf(f, "dshm_agent_request_duration_seconds_bucket{class=\"%s\",le=\"+Inf\"} %llu\n"
               "dshm_agent_request_duration_seconds_sum{class=\"%s\"} %.9f\n"
               "dshm_agent_request_duration_seconds_count{class=\"%s\"} %llu\n",
            class_label[c], (unsigned long long)h->count, class_label[c],
            (double)h->sum_ns * 1e-9, class_label[c], (unsigned long long)h->count);
  }
}

/* What the file holds: the counters and the gauges that matter for a change. */
struct snapshot {
  struct agent_stats s;
  uint64_t nprocs, nsegs, nexcl, npreq, nfwd, up;
};
static struct snapshot last;
static int written;

static struct snapshot snap(const struct agent *ag) {
  struct snapshot n;
  struct hseg *sg;

  memset(&n, 0, sizeof n);
  n.s = agent_stats;
  n.nprocs = ag->nprocs;
  n.npreq = ag->npreq;
  n.nfwd = ag->nfwd;
  n.up = ag->up_open && !ag->up_reconn && !ag->up_dead;
  TAILQ_FOREACH(sg, &ag->segs, link) {
    n.nsegs++;
    n.nexcl += sg->nexcl;
  }
  return n;
}

static void path_of(const struct agent *ag, char *out, size_t cap, const char *suffix) {
  snprintf(out, cap, "%.2000s/%.120s.prom%s", ag->cfg->dir, ag->cfg->name, suffix);
}

#define COUNTER(f, name, help, v)                                                           \
  fprintf(f, "# HELP dshm_agent_" name " " help "\n# TYPE dshm_agent_" name " counter\n"     \
             "dshm_agent_" name " %llu\n", (unsigned long long)(v))
#define GAUGE(f, name, help, v)                                                             \
  fprintf(f, "# HELP dshm_agent_" name " " help "\n# TYPE dshm_agent_" name " gauge\n"       \
             "dshm_agent_" name " %llu\n", (unsigned long long)(v))

static int write_file(struct agent *ag) {
  char tmp[2200], path[2200];
  const struct agent_stats *s = &agent_stats;
  uint64_t nsegs = 0, npages = 0, nexcl = 0;
  struct hseg *sg;
  FILE *f;
  int fd, ok;

  TAILQ_FOREACH(sg, &ag->segs, link) {
    nsegs++;
    npages += sg->npages;
    nexcl += sg->nexcl;
  }
  path_of(ag, tmp, sizeof tmp, ".tmp");
  path_of(ag, path, sizeof path, "");
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  fprintf(f, "# HELP dshm_agent_info The host agent: the server it serves.\n"
             "# TYPE dshm_agent_info gauge\ndshm_agent_info{server=\"%s\",pid=\"%d\"} 1\n",
          ag->cfg->spec, (int)getpid());
  GAUGE(f, "server_connected", "1 while the connection to the server is up.",
        ag->up_open && !ag->up_reconn && !ag->up_dead);
  GAUGE(f, "processes", "Local processes connected.", ag->nprocs);
  GAUGE(f, "segments", "Segments the host holds a copy of.", nsegs);
  GAUGE(f, "segment_pages", "Pages of those segments.", npages);
  GAUGE(f, "pages_exclusive", "Pages the host holds EXCLUSIVE.", nexcl);
  GAUGE(f, "page_requests_in_flight", "Page requests sent and not granted yet.", ag->npreq);
  GAUGE(f, "sysv_calls_in_flight", "SysV calls forwarded and not answered yet.", ag->nfwd);
  COUNTER(f, "faults_total", "Fault records from local processes.", s->faults);
  COUNTER(f, "page_requests_total", "READ_DATA and ACQUIRE requests sent.", s->page_requests);
  fprintf(f, "# HELP dshm_agent_grants_total Grants received, by mode.\n"
             "# TYPE dshm_agent_grants_total counter\n"
             "dshm_agent_grants_total{mode=\"shared\"} %llu\n"
             "dshm_agent_grants_total{mode=\"exclusive\"} %llu\n",
          (unsigned long long)s->grants_shared, (unsigned long long)s->grants_exclusive);
  COUNTER(f, "pages_granted_total", "Pages in those grants.", s->pages_granted);
  COUNTER(f, "recalls_total", "RECALLs from the server.", s->recalls);
  COUNTER(f, "invalidations_total", "INVALIDATEs from the server.", s->invalidations);
  COUNTER(f, "writeback_pages_total", "Pages written back to the server.", s->writeback_pages);
  COUNTER(f, "sysv_calls_total", "SysV calls forwarded for local processes.", s->sysv_calls);
  COUNTER(f, "received_bytes_total", "Bytes read from the server.", s->bytes_in);
  COUNTER(f, "sent_bytes_total", "Bytes written to the server.", s->bytes_out);
  COUNTER(f, "reconnects_total", "Connections to the server made again.", s->reconnects);
  write_hist(f);
  ok = fflush(f) == 0 && !ferror(f);
  fclose(f);
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

void agent_stats_tick(uv_timer_t *t) {
  struct agent *ag = t->data;
  struct snapshot now = snap(ag);

  if (written && memcmp(&last, &now, sizeof last) == 0)
    return;
  if (write_file(ag) == 0) {
    last = now;
    written = 1;
  }
}

void agent_stats_remove(struct agent *ag) {
  char path[2200];

  if (!written)
    return;
  path_of(ag, path, sizeof path, "");
  unlink(path);
  written = 0;
}
