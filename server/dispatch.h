/* dispatch.h - what the server does with each decoded client message. */
#ifndef DSHM_SRV_DISPATCH_H
#define DSHM_SRV_DISPATCH_H

#include "conn.h"

/* Handles one decoded message from c, replying through srv__conn_send. Returns 0, or
 * -errno when the peer broke the protocol: the caller then closes the connection (why is
 * set to a static description). Loop thread only. */
int srv__dispatch(struct srv_conn *c, struct proto_msg *m, const char **why);

/* Who makes a request (the claimed cred, or the kernel's ids for a peer it vouches for). */
struct srv_cred srv__cred_of(const struct srv_conn *c, const struct proto_cred *pc);

/* A reply's header for request m: its opcode and reqid, REPLY, status 0. */
void srv__reply_init(struct proto_msg *r, const struct proto_msg *m);

#endif
