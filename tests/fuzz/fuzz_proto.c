/* fuzz_proto.c - libFuzzer target: any byte stream through proto_frame and proto_decode,
 * and every message that decodes must re-encode to exactly the bytes it came from. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[PROTO_MAX_FRAME];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;

  while (off < size) {
    struct proto_hdr h;
    struct proto_msg m;
    ssize_t n = proto_frame(data + off, size - off, &h), e;

    if (n <= 0)
      break; /* need more or bad frame: a connection would wait or close here */
    if ((size_t)n > size - off || (size_t)n != PROTO_HDR_SIZE + h.length)
      abort(); /* framing promised bytes that are not there */
    memset(&m, 0xA5, sizeof m); /* decode must not depend on what was there before */
    m.h = h;
    if (proto_decode(&m, data + off + PROTO_HDR_SIZE, h.length) == 0) {
      /* The wire format is canonical: decode then encode gives back the same frame. */
      e = proto_encoded_size(&m);
      if (e != n)
        abort();
      e = proto_encode(out, sizeof out, &m);
      if (e != n || memcmp(out, data + off, (size_t)n) != 0)
        abort();
      /* Too small a buffer is refused, never overrun. */
      if (proto_encode(out, (size_t)n - 1, &m) != -ENOBUFS)
        abort();
    }
    off += (size_t)n;
  }
  return 0;
}
