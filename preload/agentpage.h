/* agentpage.h - the page engine: this process's views of the host's pages. A process raises its
 * own views up to what the host holds (no message), asks the agent for what the host lacks,
 * and lowers its views when the agent asks (docs/design.md, "The node is the host"). */
#ifndef DSHM_SHIM_AGENTPAGE_H
#define DSHM_SHIM_AGENTPAGE_H

#include <stdatomic.h>
#include <stdint.h>

#include "cache.h"
#include "proto.h"
#include "session.h"

/* The agent connection, for fault records sent straight from the fault handler (-1: none),
 * and this process's slot (its bit in the holders of the host page table). */
extern atomic_int shim__agent_fd;
extern atomic_uint shim__agent_slot;

/* Called from the SIGSEGV handler (no locks, no malloc): brings page hit->page to what a
 * read or write needs, in the faulting view. Releases the hit's inflight reference (it is
 * dropped while sleeping and taken again by looking addr up). 0: retry the instruction;
 * -1: SIGBUS. */
int shim_agent_fault(struct shim_hit *hit, uintptr_t addr, int write);

/* Cache lock held (dropped while waiting): brings page pg of sg to mode in every view of
 * the segment, for a pinned I/O buffer. gen is the slot's generation when the pin was
 * taken. 0, or -EFAULT if that can never happen. */
int shim_agent_page_ready(int slot, unsigned gen, uint32_t pg, int write);

/* Cache lock held: lowers pages [first, first+count) of sg to keep in every view (the
 * agent's INVALIDATE/RECALL, or the DSHM_MAX_MAPS budget dropping cold pages). */
void shim_agent_lower(struct shim_seg *sg, uint32_t first, uint32_t count, uint32_t keep);

/* After views of pages [first, first+count) went down while their host words stayed (the
 * budget's trim, the agent's death): wakes every thread asleep in shim_netwait on one of
 * those words (WAIT set), in any process of the host. A wake its waker's FUTEX_WAKE could
 * not deliver (its own view gone: EFAULT), or that nothing else will send now, is not lost:
 * woken, a waiter looks again. */
void shim_agent_wake_waiters(struct shim_seg *sg, uint32_t first, uint32_t count);

/* I/O thread: an INVALIDATE or RECALL of the agent: lower, then answer. Pages pinned by an
 * I/O call keep their mode until it returns (pin.c defers the request and replays it with
 * shim__agent_request_locked, cache lock held). */
void shim_agent_request(const struct proto_msg *m);
void shim__agent_request_locked(const struct proto_msg *m);

/* The engine's side of the transport (session.h), registered by lifecycle.c. */
extern const struct shim_session_ops shim_page_engine;

/* I/O thread: the agent is gone. The host's memory is no longer kept coherent with
 * anything, so every view goes down and every access gets SIGBUS, as the processes of a
 * crashed host would die (docs/shim.md); threads asleep on a lock in a segment are woken to
 * find that out. */
void shim_agent_dead(void);

#endif /* DSHM_SHIM_AGENTPAGE_H */
