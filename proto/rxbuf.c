/* rxbuf.c - a byte stream's receive buffer (rxbuf.h). */
#include "rxbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int proto_rxbuf_init(struct proto_rxbuf *b, size_t base) {
  b->p = malloc(base);
  b->len = 0;
  b->cap = b->p != NULL ? base : 0;
  b->base = base;
  return b->p != NULL ? 0 : -ENOMEM;
}

void proto_rxbuf_free(struct proto_rxbuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

void proto_rxbuf_shift(struct proto_rxbuf *b, size_t off) {
  memmove(b->p, b->p + off, b->len - off);
  b->len -= off;
}

int proto_rxbuf_fit(struct proto_rxbuf *b, size_t need) {
  size_t cap = b->base;
  uint8_t *p;

  if (need > cap) {
    cap = b->len < need / 2 ? 2 * b->len : need;
    if (cap < b->base)
      cap = b->base;
    /* Never smaller under a frame that is coming: what the previous frame earned (twice what
     * was sent, at most) stays until the stream is between frames, so a burst of large
     * frames is not reallocated (and its fresh pages faulted in) frame after frame. */
    if (cap < b->cap)
      cap = b->cap;
  }
  if (cap <= b->len)
    cap = b->len + 1; /* never reached by a caller that took every whole frame */
  if (cap == b->cap)
    return 0;
  p = realloc(b->p, cap);
  if (p == NULL)
    return -ENOMEM;
  b->p = p;
  b->cap = cap;
  return 0;
}
