/* segstat.c - `dshm stat`'s hosts, processes and page states (segstat.h). Everything comes
 * from SEG_INFO (docs/protocol.md, "Segment details"), a reply at a time, through
 * dshm__seg_info of the preloaded library (preload/seginfo.c). */
#include "segstat.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

typedef int seg_info_fn(int shmid, unsigned what, uint32_t first, uint64_t tag,
                        struct proto_seginfo_reply *out, uint8_t *entries, size_t cap);

static seg_info_fn *seg_info;
static uint8_t ebuf[PROTO_SEGINFO_MAX_ENTRIES * PROTO_SEGHOST_SIZE];

struct host {
  struct proto_seghost h;
  struct proto_segproc *procs;
  uint32_t nprocs;
  int err;                  /* asking for its processes failed: -errno */
};

/* Every entry of one kind, asked again from next until the last: calls fn for each entry of
 * each reply. 0 or -errno. */
static int each(int shmid, unsigned what, uint64_t tag,
                void (*fn)(const struct proto_seginfo_reply *, uint32_t, void *), void *arg) {
  struct proto_seginfo_reply r;
  uint32_t first = 0;

  for (;;) {
    int err = seg_info(shmid, what, first, tag, &r, ebuf, sizeof ebuf);
    if (err < 0)
      return err;
    for (uint32_t i = 0; i < r.n; i++)
      fn(&r, i, arg);
    if (r.next >= r.total)
      return 0;
    if (r.next <= first)
      return -EPROTO; /* no progress: a server that loops would keep us here */
    first = r.next;
  }
}

struct hosts {
  struct host *v;
  uint32_t n, cap;
  int err;
};

static void add_host(const struct proto_seginfo_reply *r, uint32_t i, void *arg) {
  struct hosts *hs = arg;

  if (hs->n == hs->cap) {
    uint32_t cap = hs->cap ? 2 * hs->cap : 8;
    struct host *v = realloc(hs->v, cap * sizeof *v);
    if (v == NULL) {
      hs->err = -ENOMEM;
      return;
    }
    hs->v = v;
    hs->cap = cap;
  }
  memset(&hs->v[hs->n], 0, sizeof hs->v[hs->n]);
  proto_seghost_get(r, i, &hs->v[hs->n++].h);
}

static void add_proc(const struct proto_seginfo_reply *r, uint32_t i, void *arg) {
  struct host *h = arg;
  struct proto_segproc *v = realloc(h->procs, (h->nprocs + 1) * sizeof *v);

  if (v == NULL) {
    h->err = -ENOMEM;
    return;
  }
  h->procs = v;
  proto_segproc_get(r, i, &h->procs[h->nprocs++]);
}

static const struct host *host_of(const struct hosts *hs, uint32_t node) {
  for (uint32_t i = 0; i < hs->n; i++)
    if (hs->v[i].h.node == node)
      return &hs->v[i];
  return NULL;
}

/* A JSON string: names are printable ASCII (proto_decode checks), but may hold " or \. */
static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      putchar('\\');
    putchar(*s);
  }
  putchar('"');
}

struct pages {
  const struct hosts *hs;
  int json;
  int count;                /* runs printed (JSON: a comma before all but the first) */
  int pending;              /* run is one not printed yet */
  struct proto_segrun run;
};

static const char *mode_name(const struct proto_segrun *r) {
  return r->mode == PROTO_MODE_EXCLUSIVE ? "exclusive"
         : r->mode == PROTO_MODE_SHARED  ? "shared"
                                         : "server";
}

static void print_one(struct pages *pp, const struct proto_segrun *run) {
  uint32_t named = run->nholders < PROTO_SEGINFO_HOLDERS ? run->nholders : PROTO_SEGINFO_HOLDERS;
  char range[32];

  if (pp->json) {
    printf("%s\n    {\"first\": %u, \"count\": %u, \"state\": \"%s\", \"ghost\": %s, "
           "\"busy\": %s, \"nholders\": %u, \"holders\": [",
           pp->count++ ? "," : "", run->first, run->count, mode_name(run),
           (run->flags & PROTO_SEGRUN_GHOST) ? "true" : "false",
           (run->flags & PROTO_SEGRUN_BUSY) ? "true" : "false", run->nholders);
    for (uint32_t k = 0; k < named; k++) {
      const struct host *h = host_of(pp->hs, run->holder[k]);
      printf("%s\"%016" PRIx64 "\"", k ? ", " : "", h ? h->h.tag : 0);
    }
    printf("]}");
    return;
  }
  if (run->count == 1)
    snprintf(range, sizeof range, "%u", run->first);
  else
    snprintf(range, sizeof range, "%u-%u", run->first, run->first + run->count - 1);
  printf("  %-17s %-10s", range, mode_name(run));
  if (run->flags & PROTO_SEGRUN_GHOST)
    printf(" a host not back since the server restarted");
  for (uint32_t k = 0; k < named; k++) {
    const struct host *h = host_of(pp->hs, run->holder[k]);
    if (h != NULL)
      printf("%s %s [%08" PRIx64 "]", k ? "," : "", h->h.name, h->h.tag >> 32);
    else
      printf("%s node %u", k ? "," : "", run->holder[k]);
  }
  if (run->nholders > named)
    printf(" and %u more", run->nholders - named);
  if (run->flags & PROTO_SEGRUN_BUSY)
    printf(" (moving)");
  printf("\n");
}

/* Runs come a reply at a time; one that the server cut where a reply ended (it looks at
 * 2^20 pages at most) is joined again before it is printed. */
static void print_run(const struct proto_seginfo_reply *r, uint32_t i, void *arg) {
  struct pages *pp = arg;
  struct proto_segrun run;

  proto_segrun_get(r, i, &run);
  if (pp->pending && pp->run.first + pp->run.count == run.first && pp->run.mode == run.mode &&
      pp->run.flags == run.flags && pp->run.nholders == run.nholders &&
      memcmp(pp->run.holder, run.holder, sizeof run.holder) == 0 &&
      run.nholders <= PROTO_SEGINFO_HOLDERS) {
    pp->run.count += run.count;
    return;
  }
  if (pp->pending)
    print_one(pp, &pp->run);
  pp->run = run;
  pp->pending = 1;
}

static void print_hosts(const struct hosts *hs, int json) {
  uint32_t nprocs = 0;

  for (uint32_t i = 0; i < hs->n; i++)
    nprocs += hs->v[i].nprocs;
  if (json) {
    printf(",\n  \"hosts\": [");
    for (uint32_t i = 0; i < hs->n; i++) {
      const struct host *h = &hs->v[i];
      printf("%s\n    {\"name\": ", i ? "," : "");
      json_str(h->h.name);
      printf(", \"tag\": \"%016" PRIx64 "\", \"nrw\": %u, \"nro\": %u, \"processes\": ",
             h->h.tag, h->h.nrw, h->h.nro);
      if (h->err < 0) {
        printf("null, \"error\": \"%s\"}", strerror(-h->err));
        continue;
      }
      printf("[");
      for (uint32_t k = 0; k < h->nprocs; k++)
        printf("%s{\"pid\": %u, \"nrw\": %u, \"nro\": %u}", k ? ", " : "", h->procs[k].pid,
               h->procs[k].nrw, h->procs[k].nro);
      printf("]}");
    }
    printf("%s]", hs->n ? "\n  " : "");
    return;
  }
  printf("Attached: %u host%s, %u process%s\n", hs->n, hs->n == 1 ? "" : "s", nprocs,
         nprocs == 1 ? "" : "es");
  for (uint32_t i = 0; i < hs->n; i++) {
    const struct host *h = &hs->v[i];
    printf("  host %s [%08" PRIx64 "]: %u read-write, %u read-only\n", h->h.name,
           h->h.tag >> 32, h->h.nrw, h->h.nro);
    if (h->err < 0)
      printf("    (its processes cannot be listed: %s)\n", strerror(-h->err));
    for (uint32_t k = 0; k < h->nprocs; k++)
      printf("    pid %-10u %u read-write, %u read-only\n", h->procs[k].pid, h->procs[k].nrw,
             h->procs[k].nro);
  }
}

int dshm_segstat(int shmid, int json) {
  struct hosts hs = {0};
  struct pages pp = {&hs, json, 0, 0, {0}};
  int err;

  seg_info = (seg_info_fn *)dlsym(RTLD_DEFAULT, "dshm__seg_info");
  if (seg_info == NULL) {
    fprintf(stderr, "dshm: the preloaded library cannot tell hosts and pages (no "
                    "dshm__seg_info): an older libdshm_preload.so?\n");
    return 1;
  }
  err = each(shmid, PROTO_SEGINFO_HOSTS, 0, add_host, &hs);
  if (err == 0)
    err = hs.err;
  if (err < 0) {
    fprintf(stderr, "dshm: cannot list the hosts of segment %d: %s\n", shmid, strerror(-err));
    free(hs.v);
    return 1;
  }
  for (uint32_t i = 0; i < hs.n; i++) {
    struct host *h = &hs.v[i];
    int e = each(shmid, PROTO_SEGINFO_PROCS, h->h.tag, add_proc, h);
    if (e < 0 || h->err < 0)
      h->err = e < 0 ? e : h->err;
  }
  print_hosts(&hs, json);
  if (json)
    printf(",\n  \"pages\": [");
  else
    printf("Pages:\n  %-17s %-10s %s\n", "pages", "state", "holders");
  err = each(shmid, PROTO_SEGINFO_PAGES, 0, print_run, &pp);
  if (pp.pending)
    print_one(&pp, &pp.run);
  if (json)
    printf("%s]", pp.count ? "\n  " : "");
  for (uint32_t i = 0; i < hs.n; i++)
    free(hs.v[i].procs);
  free(hs.v);
  if (err < 0) {
    fflush(stdout);
    fprintf(stderr, "dshm: cannot list the pages of segment %d: %s\n", shmid, strerror(-err));
    return 1;
  }
  return 0;
}
