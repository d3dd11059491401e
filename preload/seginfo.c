/* seginfo.c - dshm__seg_info: the dshm command's way to SEG_INFO (cli/dshm.c, `dshm stat`,
 * finds it with dlsym when it runs itself under this library). Not an interposed call and
 * not an API: one request through this process's agent, with this process's rights. */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "session.h"

__attribute__((visibility("default"))) int
dshm__seg_info(int shmid, unsigned what, uint32_t first, uint64_t tag,
               struct proto_seginfo_reply *out, uint8_t *entries, size_t cap);

/* 0 and *out (its n entries copied to entries, room for cap bytes), or -errno: the
 * server's answer (EINVAL, EACCES, ENOTCONN for a host gone), or the session's. */
int dshm__seg_info(int shmid, unsigned what, uint32_t first, uint64_t tag,
                   struct proto_seginfo_reply *out, uint8_t *entries, size_t cap) {
  struct proto_msg req, rep;
  int err = shim_session_ensure();

  if (err < 0)
    return err;
  memset(&req, 0, sizeof req);
  req.h.opcode = PROTO_OP_SEG_INFO;
  req.u.seginfo = (struct proto_seginfo){{0, 0, 0}, shmid, what, first, tag};
  err = shim_session_call_vals(&req, &rep, entries, cap);
  if (err == 0 && rep.u.seginfo_reply.what != what)
    err = -EPROTO;
  if (err == 0)
    *out = rep.u.seginfo_reply;
  return err;
}
