/* rxbuf.h - a byte stream's receive buffer, framed: reads go to its tail, whole frames are
 * taken from its head (proto_frame), and its size follows what is pending. The one framing
 * of a stream for the server's connections and the agent's link to the server. Pure: no
 * I/O, no libuv. */
#ifndef DSHM_PROTO_RXBUF_H
#define DSHM_PROTO_RXBUF_H

#include <stddef.h>
#include <stdint.h>

struct proto_rxbuf {
  uint8_t *p;
  size_t len;  /* bytes received and not taken yet */
  size_t cap;  /* always > len: there is room to read into */
  size_t base; /* the size kept between frames */
};

/* A buffer of base bytes (base >= 1). 0 or -ENOMEM. */
int proto_rxbuf_init(struct proto_rxbuf *b, size_t base);
void proto_rxbuf_free(struct proto_rxbuf *b);

static inline uint8_t *proto_rxbuf_tail(const struct proto_rxbuf *b) {
  return b->p + b->len;
}

static inline size_t proto_rxbuf_room(const struct proto_rxbuf *b) {
  return b->cap - b->len;
}

/* The first off bytes (whole frames) were taken: the rest moves to the head. */
void proto_rxbuf_shift(struct proto_rxbuf *b, size_t off);

/* Sizes the buffer for what comes next: need is the whole length of the frame whose header
 * is at the head (its header already checked against its opcode's cap), 0 if none is known.
 * It grows by doubling what has actually arrived, never straight to need, so a peer lying in
 * a length field pins no more than twice what it sent; it does not shrink while a frame
 * larger than base is coming, and between frames it goes back to base.
 * Keeps room for at least one more byte. 0 or -ENOMEM (the buffer is unchanged then). */
int proto_rxbuf_fit(struct proto_rxbuf *b, size_t need);

#endif /* DSHM_PROTO_RXBUF_H */
