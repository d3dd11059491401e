/* owners.h - questions about a host's processes, relayed to that host's agent: OWNER_ALIVE
 * (is the owner of a robust mutex, thread tid of process pid on the host with node tag tag,
 * alive?) and SEG_INFO's PROCS (which of its processes have a segment attached?). The server
 * knows which hosts are connected; only a host's own agent knows its processes, so the
 * question goes to that agent and its answer back to the asker. This module owns the
 * questions in flight. */
#ifndef DSHM_SRV_OWNERS_H
#define DSHM_SRV_OWNERS_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* A question relayed to a host agent, waiting for its answer. */
struct srv_owner_q {
  uint8_t op;               /* PROTO_OP_OWNER_ALIVE or PROTO_OP_SEG_INFO */
  uint32_t sreqid;          /* the server's reqid of the relayed request */
  uint32_t target;          /* the node asked */
  uint32_t asker;           /* the node that asked, and its reqid */
  uint32_t areqid;
};

struct srv_owners {
  struct srv_owner_q *q;
  size_t n, cap;
  uint32_t next_reqid;
};

/* Handler for srv__dispatch: OWNER_ALIVE from a host agent. A host that has no connection
 * is answered "not alive" at once (a host whose connection closed is lost, as its pages
 * are); otherwise the question goes on to that host's agent. */
int srv__owner_alive(struct srv_conn *c, struct proto_msg *m, const char **why);

/* Relays request m of c (SEG_INFO PROCS) to the agent of the host with this tag; its
 * answer goes back to c. ENOTCONN at once for a host without a connection. Returns 0. */
int srv__relay(struct srv_conn *c, struct proto_msg *m, uint64_t tag);

/* The answer (an OWNER_ALIVE or SEG_INFO reply) of host agent c to a relayed question: passed on to the
 * asker if it is still there. An answer nobody asked for is ignored. */
void srv__owner_answer(struct srv_conn *c, const struct proto_msg *m);

/* Part of a connection's teardown: questions it was asked are answered "not alive" (the
 * host is gone) or ENOTCONN, questions it asked are forgotten. */
void srv__owner_conn_gone(struct srv_conn *c);

void srv_owners_fini(struct srv_owners *o);

#endif
