/*
 * netwait.pml - the wait/wake of the locks work across hosts, model-checked with SPIN: a
 * waiter whose futex word changed on another host is woken (docs/design.md, "Waiting across
 * hosts"; docs/protocol.md, "The model").
 *
 * What is modelled (names are those of docs/protocol.md and docs/design.md; each comment
 * names the code):
 *   - one futex word in one page of a networked segment; two hosts, A and B;
 *   - on host B one waiter thread (WAITERS=2: two, each in a process of its own, sharing the
 *     host word and its WAIT bit) running shim_netwait (preload/netwait.c) step by step: the
 *     host page table word read; the fetch when the host does not hold the page
 *     (shim_agent_fault); WAIT marked by a CAS on the word just read (it fails if another
 *     waiter marked it or the agent moved the word meanwhile; a waiter that finds WAIT set
 *     skips it); the futex word read through its process's view (faulted in when lowered);
 *     futex_waitv on {futex word == expected, host page table word == what was read}; its
 *     answers 0 (woken), EAGAIN (a compare failed: the word is read again) and EFAULT (the
 *     view was lowered: retry); and its caller (a mutex, semaphore or condvar wait loop: it
 *     reads the word again after a wake and waits again while it is still the expected
 *     value);
 *   - the kernel's futexes, faithfully: futex_waitv compares both words and queues the waiter
 *     in one atomic step (under the hash-bucket locks), and fails with EFAULT when the view
 *     of the futex word is not readable; FUTEX_WAKE wakes the waiters queued on the word it
 *     names (tab_set's: INT_MAX of them); a FUTEX_WAKE of a shared futex through a view not
 *     readable fails with EFAULT (get_futex_key) and wakes nobody; a queued waiter stays
 *     asleep until woken (its compare is never repeated, so lowering a view under a sleeper
 *     does nothing); a spurious wake-up may end a sleep (MAXSPUR per waiter: a signal);
 *   - host B's agent (agent/hostseg.c): a revocation (revoke_go: tab_set to INVALID, which
 *     moves the generation, clears WAIT and, when WAIT was set, does FUTEX_WAKE(INT_MAX) on
 *     the word; then the processes in holders are told to lower their views, each lowering
 *     and answering as a step of its own; then revoke_finish, once every told process
 *     answered, answers the server with the data when the page was EXCLUSIVE and clears
 *     holders), a grant (install: the data into the memfd, then tab_set, with its wake) and
 *     a fault record (agent_seg_want: READ_DATA or ACQUIRE unless held or asked);
 *   - the server (server/directory.c) as one transaction at a time over a FIFO queue of
 *     requests: host A's ACQUIRE takes the page from host B (INVALIDATE or RECALL, waits for
 *     the answer, grants A EXCLUSIVE with the data); host B's READ_DATA RECALLs A to SHARED
 *     and grants B SHARED with the data; host B's ACQUIRE (LOCAL) takes A's copy back and
 *     grants B EXCLUSIVE;
 *   - on host A one writer that changes the word once (0, the waiters' expected value, to
 *     1): it needs the page EXCLUSIVE first (a fault: ACQUIRE through its agent);
 *   - LOCAL: the writer is instead a thread of another process of host B (glibc's unlock,
 *     sem_post, broadcast, none of them interposed): it faults the page in EXCLUSIVE (ACQUIRE
 *     by B's agent), stores, then FUTEX_WAKEs the futex word through its own view (a shared
 *     futex: its key is the memfd page, the waiters' too). Between the store and the wake the
 *     shim's I/O thread may lower that view for the mapping budget (preload/vma.c, trim ->
 *     drop: the host keeps the page, its word does not move): the wake then fails with
 *     EFAULT, and drop's FUTEX_WAKE of the host word (when WAIT is set) is what wakes the
 *     waiters;
 *   - TIMED: waiter 0's sleeps may end with ETIMEDOUT (its abstime), MAXTMO times; its call
 *     then returns ETIMEDOUT and the program gives up, or calls again. The WAIT it marked
 *     stays (only tab_set clears it): the other waiter may be asleep on it;
 *   - PDEATH: waiter 1's process is killed at any moment (its futex wait and its views go
 *     with it; the agent reads the hang-up later: proc_gone in agent/local.c, whose
 *     agent_seg_local_ack counts a lowering it was told to do as done); and host A's
 *     writer's process may die right after its write, the host's last attachment (proc_gone
 *     -> agent_seg_detach -> write_back_all: the page goes home, then DETACH);
 *   - LOSS: host B's connection to the server breaks once, between two steps of its agent
 *     (up_lost, agent/upstream.c): agent_seg_lower_all keeps the request in flight as a need
 *     (fetching -> hp->want), makes a revocation under way local_only (answered to nobody),
 *     and lowers the page the host holds by a local revocation (revoke_start, local_only:
 *     revoke_go's tab_set to INVALID with its wake, then the holders' lowerings); nothing
 *     sent on the lost connection is read any more. Once the revocations are done
 *     (resync_pending), either the resync succeeds (a new connection: a new node at the
 *     server; agent_seg_resume -> settle asks again what was kept) or the segment is lost
 *     (seg_lose: REATTACH refused or another server instance; or give_up ->
 *     agent_seg_fail_all): tab_set(mode, ERR), with its wake, and B's agent serves the page
 *     no more. A waiter that finds ERR ends its call (shim_agent_fault returns -1:
 *     shim_netwait returns 1, the plain path; a load gets SIGBUS): the label lost. The
 *     server reads the close of B's old connection at any time after the loss (after the
 *     answers B sent before it) and forgets that node (srv_dir_forget): its copy record
 *     goes, its queued requests are dropped, and a transaction waiting for its answer goes
 *     on as if it had answered without data, while host A's ACQUIRE may be queued or under
 *     way and B's new node may already have asked.
 *
 * What is abstracted, and why that is safe for this property:
 *   - the page protocol itself is taken as correct (verify/coherence.pml checks it): the
 *     server's transaction, host A's agent and its revocation are a few atomic steps; a read
 *     through a readable view returns the host's copy, which is the latest write (read-latest
 *     there), and a write happens only while the host holds the page EXCLUSIVE and every
 *     other host's views are lowered (swmr there). Host B's agent is written out in the
 *     order the code does its steps, because the waiters race with exactly those steps;
 *   - the Dekker handshake of a raise (holders bit, then the word) with revoke_go (the word,
 *     then holders) is one atomic "raise if the word's mode allows it" (coherence.pml checks
 *     the handshake: its NO_DEKKER mutant);
 *   - the shim's fault (shim_agent_fault): it asks its agent once per generation of the word
 *     (ask, sent_gen) and sleeps until the word moves (its futex_wait on the word, with a
 *     timeout slice in the code); that the page then comes is coherence.pml's liveness. Its
 *     sleep is a guard on the word's generation, not a futex: a fault that would only end
 *     at its deadline (DSHM_TIMEOUT_MS) counts as asleep forever;
 *   - the agent's deferred need while a request is in flight (hp->want, settle) is the fault
 *     record dropped: the process asks again when the grant moves the word (a fault record
 *     for a page held or already asked is dropped, as in the code); only the need kept
 *     across a loss (agent_seg_lower_all, agent_seg_resume) is written out;
 *   - fresh/HELD grants on host A (hold(), AGENT_HOLD_MS): a RECALL of A's grant waits until
 *     the writer used it, except MAXSKIP times (the hold's timeout); host B's grants are not
 *     held (more interleavings, not fewer). The bounds make every run finite: the word is
 *     written once, so the page moves a bounded number of times;
 *   - the word's generation is a byte that never wraps in these bounds (24 bits in the code);
 *   - glibc's futex_wake by the writer on host A reaches host A's kernel only: left out. The
 *     local writer (LOCAL) wakes INT_MAX (a broadcast, a barrier, an rwlock); a wake of one
 *     (a mutex unlock, sem_post) wakes one waiter as the kernel does, whose own unlock or
 *     post wakes the next: the caller's protocol, not the shim's;
 *   - the mapping budget's trim may lower a view at any moment; it matters only between a
 *     store and its FUTEX_WAKE (a trim before the store is undone by the store's fault, and
 *     a waiter's own view going down under its sleep does nothing), so only there;
 *   - TIMED: a timeout is an early end of the sleep; the timeouts of shim_agent_fault (its
 *     DSHM_TIMEOUT_MS deadline, not the caller's abstime) and EINTR (which ends the call as
 *     ETIMEDOUT does) are not written out;
 *   - PDEATH: one death of a waiter's process and one of the writer's; a dead process's
 *     holders bit stays (as in the code, until a revocation to INVALID clears it); the
 *     write-back and DETACH of host A reach the server as one step (coherence.pml's PDEATH,
 *     NO_DETACH_WRITEBACK, checks that exchange);
 *   - LOSS: host B never writes there, so its copy is always the server's data and the
 *     resync's write-back of an owed page (the same data) is left out; the loss's decision
 *     (reconnected or lost) comes after the revocations under way ended; once the segment is
 *     lost host A may still write (a host that gave up while the others go on).
 *
 * Properties (verify/run.sh, kind "wake"):
 *   - no lost wake-up: no invalid end state (every waiter must finish: a waiter asleep
 *     forever while the word has changed is a state in which nothing can move);
 *   - a waiter's caller returns only once it has read the new value (an assertion).
 *
 * Bounds: MAXSKIP hold timeouts on host A (1), MAXSPUR spurious wake-ups per waiter (1),
 * MAXTMO timeouts (TIMED, 1), WAITERS waiters (1 or 2), one loss (LOSS), one death of each
 * kind (PDEATH); the initial state is any of: B EXCLUSIVE, both SHARED, A EXCLUSIVE, neither
 * (the server's), with each waiter's view raised or not where B holds the page. verify/run.sh
 * uses fewer hold timeouts and spurious wake-ups with two waiters (the state space grows
 * about a hundredfold per waiter).
 *
 * Mutants (spin -DMUTANT_X), each a mistake the code could make, each must be caught:
 *   NO_WAKE     tab_set moves the word but does no FUTEX_WAKE (agent/hostseg.c, tab_set)
 *   WAKE_FIRST  tab_set wakes before its CAS moves the word (tab_set's two steps swapped)
 *   NO_WAIT_MARK  the waiter sleeps without marking WAIT in the word (shim_netwait's CAS), so
 *               tab_set's `old & DSHM_HT_WAIT` skips the wake
 *   NO_FETCH    the waiter sleeps on an INVALID word instead of fetching the page first
 *               (shim_netwait's fetch): the view it reads may be lowered only a moment later
 *   WORD_ALONE  the waiter sleeps on the futex word alone, without the host page table word
 *               (shim_netwait's second futex_waitv entry)
 * with WAITERS=2:
 *   WAKE_ONE    tab_set's FUTEX_WAKE wakes 1 instead of INT_MAX: the other waiter, asleep on
 *               the same word, sleeps on
 * with LOCAL:
 *   HOSTWORD_ALONE  the waiter sleeps on the host word alone, without the futex word: the
 *               local writer's FUTEX_WAKE finds nobody (the host word does not move)
 *   TRIM_NO_WAKE  preload/vma.c's drop lowers the views and does not wake the host word
 *               (the code before this model found it): the local writer's FUTEX_WAKE through
 *               its lowered view fails with EFAULT, and the waiter sleeps on
 * with TIMED:
 *   TIMEOUT_CLEARS_WAIT  a waiter that timed out takes back the WAIT it marked (a CAS of the
 *               word it slept on to the word without WAIT, to spare the agent a wake): the
 *               other waiter, asleep on it, is not woken by the next tab_set
 * with PDEATH:
 *   PROC_GONE_NO_ACK  proc_gone does not count the dead process's lowerings as done
 *               (agent_seg_local_ack(ag, p->id, 0) left out): the revocation never ends, host
 *               A never gets the page, the other waiter sleeps on
 *   DEATH_NO_WRITEBACK  the last detach on host A (agent_seg_detach) drops the written page
 *               without its write-back: host B is granted the old data and sleeps again
 * with LOSS:
 *   LOWER_NO_WAKE  agent_seg_lower_all moves the word (INVALID, WAIT cleared) by a plain
 *               store instead of through revoke_start/tab_set: no FUTEX_WAKE
 *   FAULT_NO_ERR  shim_agent_fault (preload/agentpage.c) does not look at ERR: the waiter asks
 *               for a page its host will never get again (in the code: until DSHM_TIMEOUT_MS)
 *   LOWER_DROPS_FETCH  agent_seg_lower_all forgets the request in flight instead of keeping
 *               it as a need (hp->want): its answer was on the lost connection, nothing asks
 *               again (the word did not move), and the waiter's fault waits until its deadline
 *   FORGET_KEEPS_REVOKE  srv_dir_forget does not end the transaction waiting for the
 *               forgotten node's answer (t->recall_node, drop_pending): host A's ACQUIRE never
 *               ends
 *   FORGET_KEEPS_QUEUED  srv_dir_forget keeps the forgotten node's queued requests: one
 *               served after the forget records a copy at a node gone, whose REVOKE nobody
 *               will answer
 */

#ifndef MAXSKIP
#define MAXSKIP 1     /* hold timeouts on host A: a RECALL takes A's grant before its write */
#endif
#ifndef MAXSPUR
#define MAXSPUR 1     /* spurious wake-ups of each waiter */
#endif
#ifndef WAITERS
#define WAITERS 1     /* waiter threads on host B, each in a process of its own */
#endif
#ifndef MAXTMO
#define MAXTMO 1      /* TIMED: timeouts of waiter 0 */
#endif
#if WAITERS > 2 || WAITERS < 1
#error "WAITERS is 1 or 2"
#endif
#if defined(PDEATH) && WAITERS < 2
#error "PDEATH kills waiter 1's process: WAITERS=2"
#endif
#if defined(LOCAL) && defined(LOSS)
#error "LOCAL and LOSS are separate configurations"
#endif

#define INVALID   0
#define SHARED    1
#define EXCLUSIVE 2

#define EXPECTED 0    /* the waiters' expected value: the word before the write */

/* host B's processes: the waiters' (0 .. WAITERS-1), then LOCAL's writer's */
#ifdef LOCAL
#define NPROC (WAITERS + 1)
#define WPROC WAITERS
#else
#define NPROC WAITERS
#endif

/* nodes of the server: host B's connection before its loss (0), after it (1), host A (2) */
#define NB0 0
#define NB1 1
#define NA  2
#define NNONE 3   /* B between the loss and the reconnect */

mtype = { READ_DATA, ACQUIRE, GRANT, GRANTX, REVOKE, ACK, FAULT, FAULTW };

chan toS = [3] of { mtype, byte };      /* requests to the server (its FIFO queue, pg->qhead),
                                         * with the node that asked */
chan toB = [2] of { mtype, byte, byte };/* server -> B's agent: REVOKE, GRANT(X), node, data */
chan ackB = [1] of { mtype, byte, bit, byte }; /* B's agent -> server: RECALL_ACK or
                                         * INVALIDATE_ACK, node, with data?, data */
chan recB = [3] of { mtype };           /* B's processes -> its agent: fault records */

/* ---- the server's directory entry (server/directory.c) ---- */
byte sdata = EXPECTED;     /* the page's data at the server */
bit sA_owner;              /* host A owns the page (EXCLUSIVE) */
bit sB[2];                 /* host B's node (before, after the loss) holds the page */
byte skips = 0;            /* hold timeouts used */
bit forgot;                /* LOSS: srv_dir_forget of B's old node done */

/* ---- host A: its agent's word mode and memfd copy, the writer ---- */
byte amode = INVALID;
byte adata = EXPECTED;
bit afresh;                /* tab[].fresh: granted, not yet used by the writer (hold()) */
bit afetching;             /* its ACQUIRE in flight */
bit written;               /* ghost: the word was changed */

/* ---- host B: the host page table word, the memfd copy, its processes' views ---- */
byte bmode = INVALID;      /* the word's MODE bits (proto/hosttab.h) */
bit bwait;                 /* its DSHM_HT_WAIT bit */
byte bgen = 0;             /* its generation (>> DSHM_HT_GEN_SHIFT) */
byte bdata = EXPECTED;     /* the futex word in B's memfd */
byte bview[NPROC];         /* each process's view of the page: INVALID, SHARED (readable)
                            * or EXCLUSIVE (writable) (its mprotect) */
bit holders[NPROC];        /* tab[].holders: the process raised the page */
bit told[NPROC];           /* revoke_go told it to lower; its INVALIDATE_ACK not yet read */
bit palive[NPROC];         /* PDEATH: the process is alive */
bit pgone[NPROC];          /* PDEATH: the agent ran proc_gone for it */
bit brevoking;             /* a revocation under way (hp->revoking) */
bit blocal;                /* ... answered to nobody (local_only) */
bit bwasx;                 /* ... of a page held EXCLUSIVE (rv->was_excl) */
byte brvnode;              /* ... for this node's REVOKE */
bit bfetching;             /* B's request in flight (hp->fetching) */
byte bwant;                /* LOSS: a need kept for after the resync (hp->want) */
byte bconn = NB0;          /* B's connection to the server (its node there) */
bit berr;                  /* its DSHM_HT_ERR bit (LOSS: the segment lost, or the server gone) */
bit bgone;                 /* LOSS: B's agent serves the segment no more (s->lost, up_dead) */
bit lossdone;              /* LOSS: B's connection broke (once) */
bit resynced;              /* LOSS: the resync ended (reconnected or lost) */

/* ---- the kernel's futex queues on host B, one entry per waiter ---- */
#define AWAKE    0
#define ON_BOTH  1         /* queued by futex_waitv on the futex word and the host word */
#define ON_WORD  2         /* queued on the futex word alone (MUTANT_WORD_ALONE) */
#define ON_HOST  3         /* queued on the host word alone (MUTANT_HOSTWORD_ALONE) */
byte sleeping[WAITERS];

#define ON_HOSTWORD(s) ((s) == ON_BOTH || (s) == ON_HOST)
#define ON_FUTEXWORD(s) ((s) == ON_BOTH || (s) == ON_WORD)

/* FUTEX_WAKE(host page table word, INT_MAX) (tab_set): wakes every waiter queued on it.
 * MUTANT_WAKE_ONE: FUTEX_WAKE(.., 1), one of them. */
inline wake_hostword() {
  atomic {
#ifdef MUTANT_WAKE_ONE
    if
    :: ON_HOSTWORD(sleeping[0]) -> sleeping[0] = AWAKE
#if WAITERS > 1
    :: ON_HOSTWORD(sleeping[1]) -> sleeping[1] = AWAKE
#endif
    :: else
    fi
#else
    if :: ON_HOSTWORD(sleeping[0]) -> sleeping[0] = AWAKE :: else fi;
#if WAITERS > 1
    if :: ON_HOSTWORD(sleeping[1]) -> sleeping[1] = AWAKE :: else fi;
#endif
    skip
#endif
  }
}

/* FUTEX_WAKE(futex word, INT_MAX) by a process of host B (LOCAL): glibc's unlock, sem_post,
 * broadcast, through the process's own view. A shared futex's key is the memfd page,
 * found through the view (get_futex_key): a view not readable fails it with EFAULT, and
 * nobody is woken (glibc does not look at the answer). */
inline wake_futexword(p) {
  atomic {
    if
    :: bview[p] != INVALID ->
       if :: ON_FUTEXWORD(sleeping[0]) -> sleeping[0] = AWAKE :: else fi;
#if WAITERS > 1
       if :: ON_FUTEXWORD(sleeping[1]) -> sleeping[1] = AWAKE :: else fi;
#endif
       skip
    :: else  /* EFAULT */
    fi
  }
}

/* tab_set (agent/hostseg.c): the CAS loop moves the generation, sets the mode and clears
 * WAIT in one atomic step; FUTEX_WAKE follows when the old word had WAIT. */
inline tab_set(m) {
  tab_set_err(m, 0)
}
inline tab_set_err(m, e) {
#ifdef MUTANT_WAKE_FIRST
  ow = bwait;
  if :: ow -> wake_hostword() :: else fi;
  atomic { bmode = m; bwait = 0; bgen++; berr = berr | e; ow = 0 }
#else
  atomic { ow = bwait; bmode = m; bwait = 0; bgen++; berr = berr | e };
#ifndef MUTANT_NO_WAKE
  if :: ow -> wake_hostword() :: else fi;
#endif
  ow = 0
#endif
}

/* ---- the server, with host A's agent folded in (abstracted: coherence.pml) ---- */

/* srv_dir_forget (server/directory.c) of B's node before the loss, once the server read its
 * connection's close (after all it had sent: its acknowledgements first): its record of B's
 * copy goes, its queued requests are dropped (below, as the server reaches them), and a
 * transaction waiting for its answer goes on as if it had answered without data. */
#define CAN_FORGET (lossdone && !forgot && empty(ackB))

/* The INVALIDATE or RECALL to INVALID of node k of host B (srv_dir_request) and the wait
 * for its answer (srv_dir_recall_ack / srv_dir_inval_ack). */
inline revoke_b(k) {
  if
  :: sB[k] ->
     toB!REVOKE, k, 0;
     do
     :: ackB?ACK, eval(k), x, d -> if :: x -> sdata = d :: else fi; x = 0; d = 0; break
#ifdef LOSS
#ifndef MUTANT_FORGET_KEEPS_REVOKE
     :: atomic { k == NB0 && CAN_FORGET -> forgot = 1; break }
#endif
#endif
     od;
     sB[k] = 0
  :: else
  fi
}

proctype server() {
  mtype op;
  bit x;
  byte n, d;
end:
  do
  :: toS?op, n ->
     if
#ifndef MUTANT_FORGET_KEEPS_QUEUED
     :: n == NB0 && forgot -> skip    /* dropped by srv_dir_forget */
#endif
     :: else ->
        if
        :: op == ACQUIRE && n == NA ->
           /* srv_dir_request for A: B's nodes first, then the grant once they answered */
           revoke_b(NB0);
           revoke_b(NB1);
           /* the grant, installed by A's agent (agent_seg_grant: data, then the word) */
           atomic { if :: amode == INVALID -> adata = sdata :: else fi;
                    amode = EXCLUSIVE; afresh = 1; afetching = 0; sA_owner = 1; x = 0; d = 0 }
        :: op == ACQUIRE && n != NA ->
           /* LOCAL: B's ACQUIRE. A's copy is taken back (A never writes then: no hold) */
           atomic { if :: sA_owner -> sdata = adata :: else fi; amode = INVALID; sA_owner = 0 };
           sB[n] = 1;
           toB!GRANTX, n, sdata
        :: op == READ_DATA ->
           /* srv_dir_request for B: RECALL of A to SHARED when A owns the page. A's agent
            * holds it until the writer used its grant (hold()), or until the hold times
            * out. */
           if
           :: sA_owner ->
              if
              :: !afresh
              :: afresh && skips < MAXSKIP -> skips++
              fi;
              /* A's revocation (revoke_go, revoke_finish) and the RECALL_ACK with the data
               * (PDEATH: A's copy may have gone home meanwhile) */
              atomic { if :: sA_owner -> amode = SHARED; afresh = 0; sdata = adata; sA_owner = 0
                          :: else fi }
           :: else
           fi;
           sB[n] = 1;
           toB!GRANT, n, sdata
        fi
     fi;
     op = 0; n = 0
#ifdef LOSS
  :: atomic { CAN_FORGET -> forgot = 1; sB[NB0] = 0 }
#endif
  od
}

#ifndef LOCAL
/* ---- host A's writer: a store to the word, which needs the page EXCLUSIVE ---- */
proctype writer() {
  do
  /* the store through a writable view (coherence.pml: only while A holds it EXCLUSIVE) */
  :: atomic { amode == EXCLUSIVE -> adata = 1; afresh = 0; written = 1; break }
  /* the fault: shim_agent_fault, agent_seg_want, ACQUIRE */
  :: atomic { amode != EXCLUSIVE && !afetching -> afetching = 1; toS!ACQUIRE, NA }
  od;
  /* glibc's futex_wake here reaches host A's kernel only: nothing on host B */
#ifdef PDEATH
  /* PDEATH: the writer's process dies now, host A's last attachment of the segment:
   * proc_gone -> agent_seg_detach -> write_back_all (the page, changed, goes home in a
   * WRITE_DATA; tab_set to INVALID), then DETACH; the server stores it and forgets A
   * (coherence.pml's PDEATH checks that exchange) */
  if
  :: skip
  :: atomic {
       amode = INVALID; afresh = 0;
#ifndef MUTANT_DEATH_NO_WRITEBACK
       if :: sA_owner -> sdata = adata :: else fi;
#endif
       sA_owner = 0 }
  fi
#endif
}
#endif

/* agent_seg_want (agent/hostseg.c): nothing to do if held well enough or asked; before the
 * resync, the need is kept (hp->want); else READ_DATA or ACQUIRE. */
inline want(m) {
  if
  :: bmode >= m || bfetching || bgone
  :: else ->
     if
     :: lossdone && !resynced -> bwant = m     /* !ag->up_open */
     :: else -> bfetching = 1;
        if :: m == EXCLUSIVE -> toS!ACQUIRE, bconn :: else -> toS!READ_DATA, bconn fi
     fi
  fi
}

/* revoke_go's told processes: those in holders the agent still knows (proc_gone not run). */
inline tell() {
  if :: holders[0] && !pgone[0] -> told[0] = 1 :: else fi;
#if NPROC > 1
  if :: holders[1] && !pgone[1] -> told[1] = 1 :: else fi;
#endif
#if NPROC > 2
  if :: holders[2] && !pgone[2] -> told[2] = 1 :: else fi;
#endif
  skip
}

#if NPROC == 1
#define NONE_TOLD (!told[0])
#elif NPROC == 2
#define NONE_TOLD (!told[0] && !told[1])
#else
#define NONE_TOLD (!told[0] && !told[1] && !told[2])
#endif

/* A process's lowering (shim__agent_request_locked: shim_agent_lower, then its
 * INVALIDATE_ACK, read by the agent: agent_seg_local_ack). */
inline lower(p) {
  atomic { told[p] && palive[p] -> bview[p] = INVALID; told[p] = 0 }
}

/* ---- host B's agent (agent/hostseg.c), its steps in the code's order ---- */
proctype bagent() {
  mtype op;
  byte n, d;
  bit ow;
end:
  do
  :: toB?op, n, d ->
     if
     :: n != bconn || bgone -> skip  /* LOSS: sent on the connection lost: never read */
     :: else ->
        if
        :: op == REVOKE ->
           /* revoke_start, revoke_go: the word first (tab_set, with its FUTEX_WAKE), then
            * the holders told lower their views */
           bwasx = (bmode == EXCLUSIVE);
           if :: bmode != INVALID -> tab_set(INVALID) :: else fi;
           atomic { tell(); brevoking = 1; blocal = 0; brvnode = n }
        :: op == GRANT || op == GRANTX ->
           /* agent_seg_grant / install: the data into the memfd, then the word */
           bdata = d;
           if
           :: op == GRANT && bmode < SHARED -> tab_set(SHARED)
           :: op == GRANTX && bmode < EXCLUSIVE -> tab_set(EXCLUSIVE)
           :: else
           fi;
           bfetching = 0
        fi
     fi;
     op = 0; n = 0; d = 0
  /* the told processes lower and answer, or are gone */
  :: lower(0)
#if NPROC > 1
  :: lower(1)
#endif
#if NPROC > 2
  :: lower(2)
#endif
#ifdef PDEATH
  /* proc_gone (agent/local.c) for the dead process, when the agent reads its hang-up:
   * agent_seg_local_ack(ag, p->id, 0) counts its lowerings as done */
  :: atomic { !palive[1] && !pgone[1] -> pgone[1] = 1;
#ifndef MUTANT_PROC_GONE_NO_ACK
       told[1] = 0
#endif
     }
#endif
  /* revoke_finish: every told process answered; the answer, with the data of a page held
   * EXCLUSIVE (none for a local_only revocation); the holders cleared (kept INVALID) */
  :: atomic { brevoking && NONE_TOLD ->
       if :: !blocal -> ackB!ACK, brvnode, bwasx, bdata :: else fi;
       holders[0] = 0;
#if NPROC > 1
       holders[1] = 0;
#endif
#if NPROC > 2
       holders[2] = 0;
#endif
       brevoking = 0; blocal = 0; bwasx = 0; brvnode = 0 }
  :: recB?op ->
     if :: op == FAULT -> want(SHARED) :: else -> want(EXCLUSIVE) fi;
     op = 0
#ifdef LOSS
  :: !lossdone ->
     /* up_lost (agent/upstream.c), between two steps of the agent's loop: the connection
      * broke. agent_seg_lower_all: the request in flight is kept as a need (fetching ->
      * want); a revocation under way will be answered to nobody (local_only); the page
      * the host holds is lowered by a local INVALIDATE (revoke_start, local_only:
      * revoke_go's tab_set to INVALID with its wake, then the holders lower their views). */
     lossdone = 1;
     bconn = NNONE;
#ifndef MUTANT_LOWER_DROPS_FETCH
     if :: bfetching -> bwant = (bwant > SHARED -> bwant : SHARED) :: else fi;
#endif
     bfetching = 0;
     if
     :: brevoking -> blocal = 1
     :: !brevoking && bmode != INVALID ->
#ifdef MUTANT_LOWER_NO_WAKE
        atomic { bmode = INVALID; bwait = 0; bgen++ };
#else
        tab_set(INVALID);
#endif
        atomic { tell(); brevoking = 1; blocal = 1 }
     :: else
     fi
  :: lossdone && !resynced && !brevoking ->
     /* agent_seg_resync, once the revocations under way are done (resync_pending) */
     resynced = 1;
     if
     :: /* reconnected: a new connection (a new node at the server); agent_seg_resync
         * re-registers the segment, agent_seg_resume -> settle asks again what was kept */
        bconn = NB1;
        if :: bwant != 0 -> d = bwant; bwant = 0; want(d); d = 0 :: else fi
     :: /* or lost: agent_seg_resync's REATTACH refused, or another server instance
         * (agent_seg_lose_all), -> seg_lose; or the reconnect timed out (give_up ->
         * agent_seg_fail_all): tab_set(mode, ERR) on every page, all INVALID by now */
        bgone = 1;
        tab_set_err(bmode, 1)
     fi
#endif
  od
}

/* shim_agent_fault for a read by process p: raise the view if the host holds the page
 * (raise_view, atomic here: the Dekker handshake), else ask (once per generation of the
 * word) and wait for the word to move. */
inline fault(p) {
  do
#ifndef MUTANT_FAULT_NO_ERR
  /* the word has ERR: return -1 (the caller's error path: SIGBUS for a load, the plain
   * futex path for shim_netwait) */
  :: atomic { berr -> goto lost }
#endif
  :: atomic { bmode >= SHARED && !berr -> bview[p] = SHARED; holders[p] = 1; sent = 255; break }
  :: atomic { bmode == INVALID && bgen != sent -> sent = bgen; recB!FAULT }
  od
}

/* A load of the futex word through process p's view: a fault first if the view is
 * lowered. */
inline load_word(p, val) {
  do
  :: atomic { bview[p] != INVALID -> val = bdata; break }
  :: bview[p] == INVALID -> fault(p)
  od
}

/* ---- host B's waiters: shim_netwait (preload/netwait.c) and its caller ---- */
#define EAGAIN 1
#define EFAULT 2
#define ETIMEDOUT 3
proctype waiter(byte me) {
  byte hm, hg, v, sent = 255, r, spur = 0, tmo = 0;  /* sent: 255 outside fault() */
  bit hw;

  {
  do /* the caller: waits while the word is the expected value */
  :: atomic { hm = bmode; hw = bwait; hg = bgen };  /* h = atomic_load(hw) */
     goto look;
again: /* shim_netwait's loop */
     atomic { hm = bmode; hw = bwait; hg = bgen };
look:
#ifndef MUTANT_NO_FETCH
     if
     :: hm == INVALID -> fault(me); goto again          /* shim_agent_fault; continue */
     :: else
     fi;
#endif
#ifndef MUTANT_NO_WAIT_MARK
     if
     :: !hw ->                                          /* CAS(hw, h, h | WAIT) */
        atomic { if :: bmode == hm && bwait == hw && bgen == hg -> bwait = 1; hw = 1
                    :: else -> goto again fi }
     :: else
     fi;
#endif
     load_word(me, v);                                  /* v = __atomic_load_n(addr) */
     if :: v != EXPECTED -> goto changed :: else fi;    /* return -EAGAIN */
     /* futex_waitv({addr, expected}, {hw, h}): compare both and queue, atomically */
     atomic {
       if
       :: bview[me] == INVALID -> r = EFAULT
       :: else ->
          if
          :: bdata != EXPECTED -> r = EAGAIN
#if defined(MUTANT_WORD_ALONE)
          :: bdata == EXPECTED -> r = 0; sleeping[me] = ON_WORD
#elif defined(MUTANT_HOSTWORD_ALONE)
          :: bdata == EXPECTED && !(bmode == hm && bwait == hw && bgen == hg) -> r = EAGAIN
          :: bdata == EXPECTED && bmode == hm && bwait == hw && bgen == hg -> r = 0; sleeping[me] = ON_HOST
#else
          :: bdata == EXPECTED && !(bmode == hm && bwait == hw && bgen == hg) -> r = EAGAIN
          :: bdata == EXPECTED && bmode == hm && bwait == hw && bgen == hg -> r = 0; sleeping[me] = ON_BOTH
#endif
          fi
       fi
     };
     if
     :: r == 0 ->
        if
        :: atomic { sleeping[me] == AWAKE -> skip }     /* woken by a FUTEX_WAKE */
        :: atomic { sleeping[me] != AWAKE && spur < MAXSPUR -> spur++; sleeping[me] = AWAKE }
#ifdef TIMED
        /* TIMED: waiter 0's abstime passes (futex_waitv's ETIMEDOUT), MAXTMO times */
        :: atomic { me == 0 && sleeping[me] != AWAKE && tmo < MAXTMO ->
                    tmo++; sleeping[me] = AWAKE; r = ETIMEDOUT }
#endif
        fi;
#ifdef TIMED
        if
        :: r == ETIMEDOUT ->
#ifdef MUTANT_TIMEOUT_CLEARS_WAIT
           /* takes back the WAIT it marked, if the word is still the one it slept on */
           atomic { if :: bmode == hm && bwait && bgen == hg -> bwait = 0 :: else fi };
#endif
           /* shim_netwait returns -ETIMEDOUT: the call returns ETIMEDOUT (lll_wait,
            * wait_slow); the program gives up, or calls again (below: it looks first) */
           if :: goto done :: skip fi
        :: else
        fi
#endif
        /* return 0: the caller looks at the word again */
        atomic { r = 0; hm = 0; hw = 0; hg = 0 }        /* (dead values, for the state space) */
     :: r == EAGAIN ->
        atomic { r = 0; hm = 0; hw = 0; hg = 0 };
        load_word(me, v);
        if :: v != EXPECTED -> goto changed :: else -> goto again fi
     :: r == EFAULT -> atomic { r = 0; goto again }      /* the load above faults it in */
     fi;
     load_word(me, v);                                   /* the caller's own look */
     if :: v != EXPECTED -> goto changed :: else fi
  od;
changed:
  assert(v != EXPECTED && written);
  goto done;
lost:
  /* shim_agent_fault returned -1: shim_netwait returns 1 and shim_netwait_own's plain
   * FUTEX_WAIT on a view not readable fails with EFAULT (returns 0), or a load gets SIGBUS:
   * either way the call ends */
  assert(berr);
done:
  skip
  } unless { !palive[me] }  /* PDEATH: killed (the process's threads stop) */
}

#ifdef PDEATH
/* PDEATH: waiter 1's process is killed, at any moment, once: the kernel drops its queued
 * futex wait and its mappings; the agent reads the hang-up later (proc_gone). */
proctype killer() {
  atomic { palive[1] = 0; bview[1] = INVALID; sleeping[1] = AWAKE }
}
#endif

#ifdef LOCAL
/* ---- LOCAL: the writer is a thread of another process of host B ---- */
proctype lwriter() {
  byte sent = 255;
  do
  /* the store through its view, raised EXCLUSIVE (the first of glibc's unlock / sem_post) */
  :: atomic { bview[WPROC] == EXCLUSIVE -> bdata = 1; written = 1; break }
  /* shim_agent_fault for a write: raise the view, or ask ACQUIRE (once per generation) */
  :: atomic { bview[WPROC] != EXCLUSIVE && bmode == EXCLUSIVE ->
              bview[WPROC] = EXCLUSIVE; holders[WPROC] = 1 }
  :: atomic { bmode != EXCLUSIVE && bgen != sent -> sent = bgen; recB!FAULTW }
  od;
  /* the mapping budget (preload/vma.c, trim -> drop): the I/O thread may lower this
   * process's view of the page to INVALID at any moment (the host keeps the page: its
   * word does not move), here between the store and the wake */
  if
  :: skip
  :: atomic { bview[WPROC] = INVALID;
#ifndef MUTANT_TRIM_NO_WAKE
       /* drop's wake of the host word's sleepers (DSHM_HT_WAIT) after lowering */
       if :: bwait -> wake_hostword() :: else fi
#endif
     }
  fi;
  /* the second half: FUTEX_WAKE on the futex word, through its view */
  wake_futexword(WPROC)
}
#endif

init {
  atomic {
    /* where the page is when the waiters start */
    if
    :: bmode = EXCLUSIVE; sB[NB0] = 1                   /* B owns it (B made the lock) */
    :: bmode = SHARED; amode = SHARED; sB[NB0] = 1      /* both share it */
    :: amode = EXCLUSIVE; sA_owner = 1                  /* A owns it */
    :: skip                                             /* the server's alone */
    fi;
    palive[0] = 1;
    if :: bmode != INVALID -> if :: bview[0] = SHARED; holders[0] = 1 :: skip fi :: else fi;
#if NPROC > 1
    palive[1] = 1;
    if :: bmode != INVALID -> if :: bview[1] = SHARED; holders[1] = 1 :: skip fi :: else fi;
#endif
#if NPROC > 2
    palive[2] = 1;
#endif
    run server(); run bagent(); run waiter(0);
#if WAITERS > 1
    run waiter(1);
#endif
#ifdef LOCAL
    run lwriter();
#else
    run writer();
#endif
#ifdef PDEATH
    run killer();
#endif
  }
}
