/* session.h - the connection to the host agent: lazy connect and HELLO, the I/O thread,
 * replies. */
#ifndef DSHM_SHIM_SESSION_H
#define DSHM_SHIM_SESSION_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "proto.h"

/* A record the fault handler writes to the I/O thread's pipe. Fixed size and far below
 * PIPE_BUF, so each write is atomic and reads never split a record. */
struct shim_fault_rec {
  uint32_t kind; /* SHIM_REC_* */
  uint32_t seg;  /* slot in shim__segs */
  uint32_t gen;  /* the slot's generation when the handler looked it up */
  uint32_t page;
};
#define SHIM_REC_WAKE  0u /* only wakes the I/O thread (queued output) */
#define SHIM_REC_TRIM  3u /* the views passed the mapping budget (vma.c) */

/* What the transport reports, and to whom: the page engine's entry points (agentpage.c
 * fills this in; lifecycle.c registers it before any session opens). The transport only
 * connects, frames, queues and matches replies; it never touches a page. All I/O thread. */
struct shim_session_ops {
  void (*request)(const struct proto_msg *m);    /* the agent's INVALIDATE or RECALL */
  void (*record)(const struct shim_fault_rec *r); /* a record from the pipe (not WAKE) */
  void (*turn)(void);                             /* every turn, before reading: deferred work */
  void (*lost)(void);                             /* the agent is gone, for good */
};
void shim_session_set_ops(const struct shim_session_ops *ops);

/* A thread waiting for the reply to one request. */
struct shim_waiter {
  struct shim_waiter *next;
  uint32_t reqid;
  int done;
  int err;                 /* 0, or -errno if the reply will never come */
  struct proto_hdr hdr;    /* the reply's header */
  struct proto_msg *reply; /* if not NULL, receives the whole decoded reply */
  int fds[2];              /* descriptors that came with the reply, or -1 */
  pthread_cond_t cond;
  int intr;                /* waited for by shim_session_wait_intr (shim_session_intr_begin) */
  int efd;                 /* ... an eventfd the reply makes readable, or -1 (a futex on done) */
  sigset_t oldmask;        /* ... the caller's signal mask, restored when the wait ends */
  uint8_t *vals;           /* SEMCTL GETALL: room for the reply's values (vals_cap bytes); */
  size_t vals_cap;         /* the reply's vals then point here, not into the I/O buffer */
};

/* Set once the session is lost (or while a forked child has none yet): faults get SIGBUS. */
extern atomic_int shim__dead;

/* Connects (first call, again after a failed attempt, or in a forked child) and says
 * HELLO. 0 or -errno. */
int shim_session_ensure(void);

/* Synchronous request: assigns req->h.reqid, sends, waits for the reply at most
 * DSHM_TIMEOUT_MS. Returns 0, -ENOTCONN (session lost), -ETIMEDOUT, or -errno of a failed
 * reply status. reply may be NULL. */
int shim_session_call(struct proto_msg *req, struct proto_msg *reply);
/* The same, keeping the descriptors that came with the reply in fds (-1 for none; the
 * caller closes them). */
int shim_session_call_fds(struct proto_msg *req, struct proto_msg *reply, int fds[2]);
/* The same for a SEMCTL whose reply may carry values (GETALL): they are copied into vals
 * (cap bytes), and the reply's vals point there. */
int shim_session_call_vals(struct proto_msg *req, struct proto_msg *reply, uint8_t *vals,
                           size_t cap);

/* The two halves of shim_session_call, for callers that must queue under another lock
 * and wait after releasing it. timeout_ms < 0 waits forever. wait destroys the waiter, and
 * so does a submit that fails (there is nothing to wait for then). */
void shim_session_waiter_init(struct shim_waiter *w, struct proto_msg *reply);
int shim_session_submit(struct proto_msg *req, struct shim_waiter *w);
int shim_session_wait(struct shim_waiter *w, int timeout_ms);
/* Makes w a waiter that shim_session_wait_intr can wait for (before its submit): signals
 * other than the synchronous ones are blocked in this thread from now until the wait ends, so
 * that one arriving before the wait is asleep still interrupts it (they are let in only while
 * it sleeps, atomically: ppoll with the caller's mask). */
void shim_session_intr_begin(struct shim_waiter *w);
/* Ends what shim_session_intr_begin started, for a waiter whose submit failed (the wait does
 * it itself). */
void shim_session_intr_end(struct shim_waiter *w);
/* Waits without a deadline for a request of a waiter made with shim_session_intr_begin (a
 * semop that may block for ever), but returns 1 as soon as a signal handler has run in this
 * thread (the reply still comes: wait again), or 0 once done (then as shim_session_wait, and
 * the caller's signal mask is back). */
int shim_session_wait_intr(struct shim_waiter *w, int *err);

/* Queues a message that expects no reply (acks, and the I/O thread's own requests).
 * Any thread; messages leave in the order they were queued. 0 or -errno. */
int shim__session_enqueue(struct proto_msg *m);
uint32_t shim__session_reqid(void);
/* 1 if the session is up and was opened by this process (not a vfork child sharing it). */
int shim_session_mine(void);
/* 1 in a forked child that has not opened its own session yet. */
int shim_session_forked(void);

/* A record for the I/O thread (the fault handler's mapping-budget trim): async-signal-safe
 * (one write(2)). 0 or -errno. */
int shim_session_post_fault(const struct shim_fault_rec *r);

/* pthread_atfork hooks (lifecycle.c orders them with the cache lock). */
void shim_session_atfork_prepare(void);
void shim_session_atfork_parent(void);
void shim_session_atfork_child(void);

#endif /* DSHM_SHIM_SESSION_H */
