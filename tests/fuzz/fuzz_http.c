/* fuzz_http.c - libFuzzer target: any bytes through the metrics endpoint's request parser
 * (server/httpd.c). It must stay within the bytes given, answer need-more / a length / bad,
 * and be consistent across cuts: a complete head parses the same from any longer input,
 * every shorter cut of it needs more, and bytes found bad stay bad when more arrive. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A copy of exactly n bytes, so that ASan catches a read past them. */
static ssize_t parse_copy(const uint8_t *data, size_t n) {
  struct srv_http_req r;
  char *p = malloc(n ? n : 1);
  ssize_t got;

  if (p == NULL)
    abort();
  memcpy(p, data, n);
  got = srv_http_parse(p, n, &r);
  if (got > 0 && srv_http_status(&r) != 200 && srv_http_status(&r) != 404 &&
      srv_http_status(&r) != 405)
    abort();
  free(p);
  return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ssize_t all, cut;

  if (size > SRV_HTTP_MAX_REQ)
    size = SRV_HTTP_MAX_REQ; /* the endpoint never parses more */
  all = parse_copy(data, size);
  if (all != 0 && all != -EBADMSG && (all < 0 || (size_t)all > size))
    abort();
  if (all > 0) {
    if (parse_copy(data, (size_t)all) != all)
      abort();
    if (parse_copy(data, (size_t)all - 1) != 0)
      abort();
  }
  cut = parse_copy(data, size / 2);
  if (cut == -EBADMSG && all != -EBADMSG)
    abort();
  if (cut > 0 && all != cut)
    abort();
  return 0;
}
