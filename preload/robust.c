/* robust.c - owns robust process-shared mutexes that live in networked segments: their lock,
 * trylock, unlock and consistent, and the test that finds their owner dead (EOWNERDEAD).
 *
 * The kernel frees a dead thread's robust mutexes through the robust list glibc keeps for it,
 * by writing the lock word through the dead process's own mapping at exit. For a mutex in a
 * networked segment that does not work: that mapping may be read-only or gone at that moment
 * (another host read the page), the waiters may sleep on another host, and a host that dies
 * takes its kernel with it. So these mutexes get an algorithm of the shim's own in every
 * process (they all run under the shim: the segment is networked), never entered in glibc's
 * robust list:
 *
 * - the lock word is glibc's (owner tid | FUTEX_WAITERS | FUTEX_OWNER_DIED), and __owner,
 *   __count, __nusers are kept as glibc keeps them (PTHREAD_MUTEX_INCONSISTENT after
 *   EOWNERDEAD until pthread_mutex_consistent, PTHREAD_MUTEX_NOTRECOVERABLE after an unlock
 *   without it);
 * - the owner's identity beyond the tid, its host's node tag, its pid and tid, is kept in the
 *   mutex's __list (unused here: no robust list), written after the lock word is taken and
 *   cleared before it is released;
 * - a locker that finds the mutex taken sleeps through shim_netwait (an unlock on another
 *   host takes the page, which wakes it), in slices of POLL_MS, and at the end of each slice
 *   asks whether the owner lives: on its own host by /proc, on another host through the
 *   agents (OWNER_ALIVE: the server relays the question to the owner's host, and answers
 *   "not alive" itself for a host that has no connection). A dead owner's word gets
 *   FUTEX_OWNER_DIED, as the kernel would have set it, and the next locker takes it with
 *   EOWNERDEAD.
 *
 * Robust mutexes that are not process-shared, or priority-inheritance/protect ones, stay
 * glibc's, as does every mutex outside networked segments. */
#include "robust.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "boundary.h"
#include "cache.h"
#include "mutexabi.h"
#include "netwait.h"
#include "proto.h"
#include "real.h"
#include "self.h"
#include "session.h"
#include "threadalive.h"

#define POLL_MS 100 /* how often a sleeping locker asks whether the owner lives */

/* The owner's identity, in the mutex's __list (16 bytes, 8-aligned on every glibc ABI that
 * has it): its host's tag, then pid << 32 | tid (0: being taken or released). */
struct owner_rec {
  _Atomic uint64_t tag;
  _Atomic uint64_t who;
};
_Static_assert(sizeof(((pthread_mutex_t *)0)->__data.__list) >= sizeof(struct owner_rec),
               "no room for the owner record in pthread_mutex_t");
_Static_assert(offsetof(pthread_mutex_t, __data.__list) % 8 == 0,
               "the owner record would be misaligned");

static struct owner_rec *rec_of(pthread_mutex_t *m) {
  return (struct owner_rec *)(void *)&m->__data.__list;
}

static _Atomic unsigned *word_of(pthread_mutex_t *m) {
  return (_Atomic unsigned *)&m->__data.__lock;
}

/* glibc's own trylock, unlock and consistent, looked up on first use: the shim's own locks
 * come through the wrappers below, from inside its init too. */
static _Atomic(void *) real_trylock, real_unlock, real_consistent;

int shim_robust_ours(pthread_mutex_t *m) {
  int kind = m->__data.__kind;

  return (kind & (KIND_ROBUST | KIND_PSHARED | KIND_PI | KIND_PP)) ==
             (KIND_ROBUST | KIND_PSHARED) &&
         atomic_load(&shim__nviews) != 0 && shim_netwait_covers(m);
}

/* This host's node tag (asked of the agent once), 0 if it cannot be had. */
static _Atomic uint64_t host_tag;

static int ask_owner(uint64_t tag, pid_t pid, pid_t tid, struct proto_owner *out) {
  struct proto_msg req, rep;
  int err = shim_session_ensure();

  if (err < 0)
    return err;
  memset(&req, 0, sizeof req);
  req.h.opcode = PROTO_OP_OWNER_ALIVE;
  req.u.owner = (struct proto_owner){tag, (uint32_t)pid, (uint32_t)tid, 0};
  err = shim_session_call(&req, &rep);
  if (err == 0)
    *out = rep.u.owner;
  return err;
}

static uint64_t my_tag(void) {
  uint64_t t = atomic_load(&host_tag);
  struct proto_owner o;

  if (t == 0 && ask_owner(0, 0, 0, &o) == 0) {
    t = o.tag;
    atomic_store(&host_tag, t);
  }
  return t;
}

static void rec_set(pthread_mutex_t *m, pid_t tid) {
  struct owner_rec *r = rec_of(m);

  atomic_store_explicit(&r->tag, my_tag(), memory_order_relaxed);
  atomic_store_explicit(&r->who, (uint64_t)(uint32_t)shim_self_pid() << 32 | (uint32_t)tid,
                        memory_order_release);
}

static void rec_clear(pthread_mutex_t *m) {
  atomic_store_explicit(&rec_of(m)->who, 0, memory_order_release);
}

/* Whether this thread owns m (its tid in the word, and its process and host in the record:
 * a thread of another host may have the same tid). */
static int mine(pthread_mutex_t *m, unsigned w, pid_t tid) {
  struct owner_rec *r = rec_of(m);

  return (w & FUTEX_TID_MASK) == (unsigned)tid &&
         atomic_load_explicit(&r->who, memory_order_acquire) ==
             ((uint64_t)(uint32_t)shim_self_pid() << 32 | (uint32_t)tid) &&
         atomic_load_explicit(&r->tag, memory_order_relaxed) == my_tag();
}

/* 1 if the owner of word value w is known dead, 0 if it lives or cannot be told (its record
 * does not match the word: it is being taken or released right now). */
static int owner_dead(pthread_mutex_t *m, unsigned w) {
  struct owner_rec *r = rec_of(m);
  uint64_t who, who2, tag;
  struct proto_owner o;
  pid_t pid, tid;

  who = atomic_load_explicit(&r->who, memory_order_acquire);
  tag = atomic_load_explicit(&r->tag, memory_order_relaxed);
  who2 = atomic_load_explicit(&r->who, memory_order_acquire);
  tid = (pid_t)(w & FUTEX_TID_MASK);
  if (who != who2 || tid == 0 || (uint32_t)who != (uint32_t)tid || tag == 0 ||
      atomic_load(word_of(m)) != w)
    return 0;
  pid = (pid_t)(who >> 32);
  if (tag == my_tag())
    return !dshm_thread_alive(pid, tid);
  if (ask_owner(tag, pid, tid, &o) < 0)
    return 0; /* no answer: never take a lock from an owner that may live */
  return o.alive == 0 && atomic_load(word_of(m)) == w;
}

static void wake_one(pthread_mutex_t *m) {
  syscall(SYS_futex, (unsigned *)word_of(m), FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Gives the word up (it is ours): no owner record first, then the word, then a waiter. */
static void release(pthread_mutex_t *m) {
  rec_clear(m);
  if (atomic_exchange_explicit(word_of(m), 0, memory_order_release) & FUTEX_WAITERS)
    wake_one(m);
}

static struct timespec after_poll(clockid_t clock) {
  struct timespec t;

  clock_gettime(clock, &t);
  t.tv_nsec += (POLL_MS % 1000) * 1000000L;
  t.tv_sec += POLL_MS / 1000 + t.tv_nsec / 1000000000L;
  t.tv_nsec %= 1000000000L;
  return t;
}

static int before(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int passed(clockid_t clock, const struct timespec *t) {
  struct timespec now;

  clock_gettime(clock, &now);
  return !before(&now, t);
}

/* A failed trylock looks at the owner at most once per POLL_MS in a process: a loop of
 * trylocks must not become a loop of questions. */
static int try_may_check(void) {
  static _Atomic int64_t next_ms;
  struct timespec now;
  int64_t ms, due;

  clock_gettime(CLOCK_MONOTONIC, &now);
  ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
  due = atomic_load(&next_ms);
  return ms >= due && atomic_compare_exchange_strong(&next_ms, &due, ms + POLL_MS);
}

/* The lock word is ours (newly): the fields glibc keeps, and its answer. */
static int taken(pthread_mutex_t *m, int type, pid_t tid, int owner_died) {
  rec_set(m, tid);
  if (owner_died) {
    if (type == KIND_RECURSIVE)
      m->__data.__count = 1;
    m->__data.__owner = OWNER_INCONSISTENT;
    ++m->__data.__nusers;
    return EOWNERDEAD;
  }
  if (m->__data.__owner == OWNER_NOTRECOVERABLE) {
    release(m);
    return ENOTRECOVERABLE;
  }
  if (type == KIND_RECURSIVE)
    m->__data.__count = 1;
  m->__data.__owner = tid;
  ++m->__data.__nusers;
  return 0;
}

/* Blocks while the owner lives, or fails at once with try; then as pthread_mutex_clocklock.
 * The owner is looked at every POLL_MS of sleep (by the clock of the wait: a deadline that
 * no wake moves). Slept means the word may have other waiters: it is taken with
 * FUTEX_WAITERS, so that its unlock wakes the next. */
static int lock(pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime, int try) {
  _Atomic unsigned *word = word_of(m);
  int type = m->__data.__kind & KIND_TYPE_MASK;
  pid_t tid = shim_self_tid();
  int slept = 0, try_checked = 0;
  struct timespec check_at;

  for (;;) {
    unsigned w = atomic_load_explicit(word, memory_order_acquire);
    struct timespec until;
    int rc, due;

    if (w & FUTEX_OWNER_DIED) {
      if (atomic_compare_exchange_strong(word, &w, (unsigned)tid | (w & FUTEX_WAITERS)))
        return taken(m, type, tid, 1);
      continue;
    }
    if ((w & FUTEX_TID_MASK) == 0) {
      if (atomic_compare_exchange_strong(word, &w,
                                         (unsigned)tid | (slept ? FUTEX_WAITERS : 0) |
                                             (w & FUTEX_WAITERS)))
        return taken(m, type, tid, 0);
      continue;
    }
    if (mine(m, w, tid)) {
      if (type == KIND_ERRORCHECK)
        return EDEADLK;
      if (type == KIND_RECURSIVE) {
        if (m->__data.__count + 1u == 0)
          return EAGAIN;
        ++m->__data.__count;
        return 0;
      }
      if (try)
        return EBUSY; /* a normal mutex relocked deadlocks, as glibc's does */
    }
    due = try ? !try_checked && try_may_check() : slept && passed(clock, &check_at);
    if (due) {
      try_checked = 1;
      if (owner_dead(m, w)) {
        /* As the kernel marks a dead owner's word: the waiters bit stays. */
        atomic_compare_exchange_strong(word, &w, (w & FUTEX_WAITERS) | FUTEX_OWNER_DIED);
        continue;
      }
      check_at = after_poll(clock);
    }
    if (try)
      return EBUSY;
    if (abstime != NULL && (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000L))
      return EINVAL;
    if (!(w & FUTEX_WAITERS) &&
        !atomic_compare_exchange_strong(word, &w, w | FUTEX_WAITERS))
      continue;
    if (!slept)
      check_at = after_poll(clock);
    slept = 1;
    until = abstime != NULL && before(abstime, &check_at) ? *abstime : check_at;
    rc = shim_netwait((const uint32_t *)word, w | FUTEX_WAITERS, 0, clock, &until);
    if (rc == 1)
      return -1; /* not networked any more: glibc's lock */
    if (rc == -ETIMEDOUT && abstime != NULL && passed(clock, abstime))
      return ETIMEDOUT;
  }
}

int shim_robust_lock(pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime) {
  return shim_robust_ours(m) ? lock(m, clock, abstime, 0) : -1;
}

SHIM_EXPORT int pthread_mutex_trylock(pthread_mutex_t *m) {
  if ((m->__data.__kind & KIND_ROBUST) && shim_robust_ours(m))
    return lock(m, CLOCK_REALTIME, NULL, 1);
  return shim_real_mutex_call(&real_trylock, "pthread_mutex_trylock", m);
}

SHIM_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m) {
  unsigned w;
  pid_t tid;

  if (!(m->__data.__kind & KIND_ROBUST) || !shim_robust_ours(m))
    return shim_real_mutex_call(&real_unlock, "pthread_mutex_unlock", m);
  w = atomic_load(word_of(m));
  tid = shim_self_tid();
  if (!mine(m, w, tid))
    return EPERM;
  /* A recursive one still held after this unlock: glibc says ENOTRECOVERABLE while it is
   * inconsistent (and makes it so at the last unlock). */
  if ((m->__data.__kind & KIND_TYPE_MASK) == KIND_RECURSIVE && --m->__data.__count != 0)
    return m->__data.__owner == OWNER_INCONSISTENT ? ENOTRECOVERABLE : 0;
  /* Unlocked without pthread_mutex_consistent after EOWNERDEAD: not recoverable. */
  m->__data.__owner = m->__data.__owner == OWNER_INCONSISTENT ? OWNER_NOTRECOVERABLE : 0;
  --m->__data.__nusers;
  release(m);
  return 0;
}

SHIM_EXPORT int pthread_mutex_consistent(pthread_mutex_t *m) {
  if (!(m->__data.__kind & KIND_ROBUST) || !shim_robust_ours(m))
    return shim_real_mutex_call(&real_consistent, "pthread_mutex_consistent", m);
  if (m->__data.__owner != OWNER_INCONSISTENT)
    return EINVAL;
  m->__data.__owner = shim_self_tid();
  return 0;
}
