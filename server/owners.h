/* owners.h - the server's end of OWNER_ALIVE: is the owner of a robust mutex (thread tid of
 * process pid on the host with node tag tag) alive? The server knows which hosts are
 * connected; only a host's own agent knows its processes, so a question about a connected
 * host is relayed to that host's agent and the answer relayed back. This module owns the
 * questions in flight. */
#ifndef DSHM_SRV_OWNERS_H
#define DSHM_SRV_OWNERS_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* A question relayed to a host agent, waiting for its answer. */
struct srv_owner_q {
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

/* The answer (an OWNER_ALIVE reply) of host agent c to a relayed question: passed on to the
 * asker if it is still there. An answer nobody asked for is ignored. */
void srv__owner_answer(struct srv_conn *c, const struct proto_msg *m);

/* Part of a connection's teardown: questions it was asked are answered "not alive" (the
 * host is gone), questions it asked are forgotten. */
void srv__owner_conn_gone(struct srv_conn *c);

void srv_owners_fini(struct srv_owners *o);

#endif
