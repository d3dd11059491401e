/* netwait.h - futex waits on words in networked segments: the one place a waiting thread
 * learns that another host changed the word (docs/design.md, "Waiting across hosts"). */
#ifndef DSHM_SHIM_NETWAIT_H
#define DSHM_SHIM_NETWAIT_H

#include <stdint.h>
#include <time.h>

/* Sleeps while *addr == expected, like FUTEX_WAIT (shared, or private when private_ is
 * set, as the object's own futex calls are made), until abstime on clock (NULL: no limit).
 * Also wakes when this host loses the word's page (its host page table word changes): a
 * write on another host always takes the page away first, so no wake is lost, and the
 * caller re-checks after every return, as futex callers must.
 *
 * Returns 0 (woken, or something changed: look again), -EAGAIN (*addr != expected),
 * -ETIMEDOUT, -EINTR (a signal handler ran), or 1: addr is not in a networked view (the
 * caller waits as it would have). Never fails with EFAULT: a view taken away meanwhile is
 * faulted in again. */
int shim_netwait(const uint32_t *addr, uint32_t expected, int private_, clockid_t clock,
                 const struct timespec *abstime);

/* As shim_netwait, for the shim's own algorithms (rwlock.c, barrier.c), whose state no
 * glibc function could take over midway: a word that is not (or no longer) in a networked
 * view gets a plain futex wait on clock instead of the answer 1. Returns 0, -EAGAIN,
 * -ETIMEDOUT or -EINTR. */
int shim_netwait_own(const uint32_t *addr, uint32_t expected, int private_, clockid_t clock,
                     const struct timespec *abstime);

/* 1 if p lies in a view of a networked segment (now). */
int shim_netwait_covers(const void *p);

#endif
