/*
 * netwait.pml - the wait/wake of the locks work across hosts, model-checked with SPIN: a
 * waiter whose futex word changed on another host is woken (docs/design.md, "Waiting across
 * hosts"; docs/protocol.md, "The model").
 *
 * What is modelled (names are those of docs/protocol.md and docs/design.md; each comment
 * names the code):
 *   - one futex word in one page of a networked segment; two hosts, A and B;
 *   - on host B one waiter thread running shim_netwait (preload/netwait.c) step by step: the
 *     host page table word read; the fetch when the host does not hold the page
 *     (shim_agent_fault); WAIT marked by a CAS on the word just read; the futex word read
 *     through the process's view (faulted in when the view is lowered); futex_waitv on
 *     {futex word == expected, host page table word == what was read}; its answers 0 (woken),
 *     EAGAIN (a compare failed: the word is read again) and EFAULT (the view was lowered:
 *     retry); and its caller (a mutex, semaphore or condvar wait loop: it reads the word again
 *     after a wake and waits again while it is still the expected value);
 *   - the kernel's futexes, faithfully: futex_waitv compares both words and queues the waiter
 *     in one atomic step (under the hash-bucket locks), and fails with EFAULT when the view
 *     of the futex word is not readable; FUTEX_WAKE wakes the waiters queued on the word it
 *     names; a queued waiter stays asleep until woken (its compare is never repeated, so
 *     lowering a view under a sleeper does nothing); a spurious wake-up may end a sleep
 *     (MAXSPUR of them: a local futex_wake on the word, a signal);
 *   - host B's agent (agent/hostseg.c): a revocation (revoke_go: tab_set to INVALID, which
 *     moves the generation, clears WAIT and, when WAIT was set, does FUTEX_WAKE on the word;
 *     then the local processes told lower their views; then revoke_finish answers the
 *     server, with the data when the host held the page EXCLUSIVE), a grant (install: the
 *     data into the memfd, then tab_set to SHARED, with its wake) and a fault record
 *     (agent_seg_want: READ_DATA unless held or asked);
 *   - the server (server/directory.c) as one transaction at a time over a FIFO queue of
 *     requests: host A's ACQUIRE takes the page from host B (INVALIDATE or RECALL, waits for
 *     the answer, grants A EXCLUSIVE with the data); host B's READ_DATA RECALLs A to SHARED
 *     and grants B SHARED with the data;
 *   - on host A one writer that changes the word once (0, the waiter's expected value, to 1):
 *     it needs the page EXCLUSIVE first (a fault: ACQUIRE through its agent);
 *   - with -DLOSS, host B's connection to the server breaks once, between two steps of its
 *     agent (up_lost, agent/upstream.c): agent_seg_lower_all lowers the page the host holds
 *     (revoke_start, local_only: revoke_go's tab_set to INVALID with its wake, then the views);
 *     then either the resync succeeds (the page is fetched again at the next fault) or the
 *     segment is lost (seg_lose: REATTACH refused or another server instance; or give_up ->
 *     agent_seg_fail_all): tab_set(mode, ERR), with its wake, and B's agent serves the page no
 *     more. A waiter that finds ERR ends its call (shim_agent_fault returns -1: shim_netwait
 *     returns 1, the plain path; a load gets SIGBUS): the label lost.
 *
 * What is abstracted, and why that is safe for this property:
 *   - the page protocol itself is taken as correct (verify/coherence.pml checks it): the
 *     server's transaction, host A's agent and its revocation are a few atomic steps; a read
 *     through a readable view returns the host's copy, which is the latest write (read-latest
 *     there), and a write happens only while the host holds the page EXCLUSIVE and every
 *     other host's views are lowered (swmr there). Host B's agent is written out in the
 *     order the code does its steps, because the waiter races with exactly those steps;
 *   - the Dekker handshake of a raise (holders bit, then the word) with revoke_go (the word,
 *     then holders) is one atomic "raise if the word's mode allows it" (coherence.pml checks
 *     the handshake: its NO_DEKKER mutant);
 *   - the shim's fault (shim_agent_fault): it asks its agent once per generation of the word
 *     (ask, sent_gen) and sleeps until the word moves (its futex_wait on the word, with a
 *     timeout slice in the code); that the page then comes is coherence.pml's liveness;
 *   - the agent's deferred need (hp->want while a revocation or a fetch is under way, settle)
 *     is the fault record waiting in the agent's channel while the agent finishes a step
 *     sequence; a fault record for a page held or already asked is dropped, as in the code;
 *   - fresh/HELD grants on host A (hold(), AGENT_HOLD_MS): a RECALL of A's grant waits until
 *     the writer used it, except MAXSKIP times (the hold's timeout); host B's grants are not
 *     held (more interleavings, not fewer). The bounds make every run finite: the writer
 *     writes once, so the page moves a bounded number of times;
 *   - the word's generation is a byte that never wraps in these bounds (24 bits in the code);
 *   - only the waiter's process on host B (other processes of B would only add local wakes);
 *   - LOSS: B's requests in flight at the loss stay in flight (the code asks again after the
 *     resync, hp->want: the same grant, later); the server's record of B's copy is kept (a
 *     stale record only adds a REVOKE, which B answers; every copy of B is lowered first);
 *     once the segment is lost, a REVOKE still in flight is answered as the server takes a
 *     lost host's copies back and a GRANT is dropped, while host A may still write (more
 *     interleavings: a host that gave up while the others go on); the shim_agent_fault sleep
 *     is a guard on the word's generation, not a futex with a timeout slice;
 *     glibc's futex_wake by the writer on host A reaches host A's kernel only: left out.
 *
 * Properties (verify/run.sh, kind "wake"):
 *   - no lost wake-up: no invalid end state (the waiter must finish: a waiter asleep forever
 *     while the writer has changed the word is a state in which nothing can move);
 *   - the waiter's caller returns only once it has read the new value (an assertion).
 *
 * Bounds: MAXSKIP hold timeouts on host A (1), MAXSPUR spurious wake-ups (1), one loss
 * (LOSS); the initial
 * state is any of: B EXCLUSIVE, both SHARED, A EXCLUSIVE, neither (the server's), with B's
 * view raised or not where B holds the page.
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
 * and with -DLOSS:
 *   LOWER_NO_WAKE  agent_seg_lower_all moves the word (INVALID, WAIT cleared) by a plain
 *               store instead of through revoke_start/tab_set: no FUTEX_WAKE
 *   FAULT_NO_ERR  shim_agent_fault (preload/agentpage.c) does not look at ERR: the waiter asks
 *               for a page its host will never get again (in the code: until DSHM_TIMEOUT_MS)
 */

#ifndef MAXSKIP
#define MAXSKIP 1     /* hold timeouts on host A: a RECALL takes A's grant before its write */
#endif
#ifndef MAXSPUR
#define MAXSPUR 1     /* spurious wake-ups of the waiter */
#endif

#define INVALID   0
#define SHARED    1
#define EXCLUSIVE 2

#define EXPECTED 0    /* the waiter's expected value: the word before the write */

mtype = { READ_DATA, ACQUIRE, GRANT, REVOKE, ACK, FAULT };

chan toS = [2] of { mtype };            /* requests to the server (its FIFO queue, pg->qhead) */
chan toB = [2] of { mtype, byte };      /* server -> B's agent: REVOKE, GRANT with its data */
chan ackB = [1] of { mtype, bit, byte };/* B's agent -> server: RECALL_ACK/INVALIDATE_ACK, data */
chan recB = [2] of { mtype };           /* B's process -> its agent: fault records */

/* ---- the server's directory entry (server/directory.c) ---- */
byte sdata = EXPECTED;     /* the page's data at the server */
bit sA_owner;              /* host A owns the page (EXCLUSIVE) */
bit sB;                    /* host B holds the page (owner or sharer) */
byte skips = 0;            /* hold timeouts used */

/* ---- host A: its agent's word mode and memfd copy, the writer ---- */
byte amode = INVALID;
byte adata = EXPECTED;
bit afresh;                /* tab[].fresh: granted, not yet used by the writer (hold()) */
bit afetching;             /* its ACQUIRE in flight */
bit written;               /* ghost: the writer changed the word */

/* ---- host B: the host page table word, the memfd copy, the waiter's view ---- */
byte bmode = INVALID;      /* the word's MODE bits (proto/hosttab.h) */
bit bwait;                 /* its DSHM_HT_WAIT bit */
byte bgen = 0;             /* its generation (>> DSHM_HT_GEN_SHIFT) */
byte bdata = EXPECTED;     /* the futex word in B's memfd */
bit bview;                 /* the waiter's process's view of the page is readable (mprotect) */
bit bfetching;             /* B's READ_DATA in flight (hp->fetching) */
bit berr;                  /* its DSHM_HT_ERR bit (LOSS: the segment lost, or the server gone) */
bit bgone;                 /* LOSS: B's agent serves the segment no more (s->lost, up_dead) */
bit lossdone;              /* LOSS: B's connection broke (once) */

/* ---- the kernel's futex queues on host B ---- */
#define AWAKE    0
#define ON_BOTH  1         /* queued by futex_waitv on the futex word and the host word */
#define ON_WORD  2         /* queued on the futex word alone (MUTANT_WORD_ALONE) */
byte sleeping = AWAKE;

/* FUTEX_WAKE(host page table word): wakes the waiters queued on it (futex_wake). */
inline wake_hostword() {
  atomic { if :: sleeping == ON_BOTH -> sleeping = AWAKE :: else fi }
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
  atomic { bmode = m; bwait = 0; bgen++; berr = berr | e }
#else
  atomic { ow = bwait; bmode = m; bwait = 0; bgen++; berr = berr | e };
#ifndef MUTANT_NO_WAKE
  if :: ow -> wake_hostword() :: else fi
#endif
#endif
}

/* ---- the server, with host A's agent folded in (abstracted: coherence.pml) ---- */
proctype server() {
  mtype op;
  bit x;
  byte d;
end:
  do
  :: toS?op ->
     if
     :: op == ACQUIRE ->
        /* srv_dir_request for A: INVALIDATE (sharer) or RECALL to INVALID (owner) of B,
         * then the grant once it answered (srv_dir_recall_ack / srv_dir_inval_ack) */
        if
        :: sB -> toB!REVOKE, 0; ackB?ACK, x, d;
           if :: x -> sdata = d :: else fi;
           sB = 0
        :: else
        fi;
        /* the grant, installed by A's agent (agent_seg_grant: data, then the word) */
        atomic { if :: amode == INVALID -> adata = sdata :: else fi;
                 amode = EXCLUSIVE; afresh = 1; afetching = 0; sA_owner = 1 }
     :: op == READ_DATA ->
        /* srv_dir_request for B: RECALL of A to SHARED when A owns the page. A's agent
         * holds it until the writer used its grant (hold()), or until the hold times out. */
        if
        :: sA_owner ->
           if
           :: !afresh
           :: afresh && skips < MAXSKIP -> skips++
           fi;
           /* A's revocation (revoke_go, revoke_finish) and the RECALL_ACK with the data */
           atomic { amode = SHARED; afresh = 0; sdata = adata; sA_owner = 0 }
        :: else
        fi;
        sB = 1;
        toB!GRANT, sdata
     fi
  od
}

/* ---- host A's writer: a store to the word, which needs the page EXCLUSIVE ---- */
proctype writer() {
  do
  /* the store through a writable view (coherence.pml: only while A holds it EXCLUSIVE) */
  :: atomic { amode == EXCLUSIVE -> adata = 1; afresh = 0; written = 1; break }
  /* the fault: shim_agent_fault, agent_seg_want, ACQUIRE */
  :: atomic { amode != EXCLUSIVE && !afetching -> afetching = 1; toS!ACQUIRE }
  od
  /* glibc's futex_wake here reaches host A's kernel only: nothing on host B */
}

/* ---- host B's agent (agent/hostseg.c), its steps in the code's order ---- */
proctype bagent() {
  mtype op;
  byte d;
  bit wasx, ow;
end:
  do
  :: !bgone && nempty(toB) -> toB?op, d ->
     if
     :: op == REVOKE ->
        /* revoke_go: the word first (tab_set, with its FUTEX_WAKE) */
        wasx = (bmode == EXCLUSIVE);
        tab_set(INVALID);
        /* then holders: the processes told lower their views (local INVALIDATE, their
         * INVALIDATE_ACK) */
        bview = 0;
        /* revoke_finish: the answer, with the data of a page held EXCLUSIVE */
        ackB!ACK, wasx, bdata
     :: op == GRANT ->
        /* agent_seg_grant / install: the data into the memfd, then the word */
        bdata = d;
        if :: bmode < SHARED -> tab_set(SHARED) :: else fi;
        bfetching = 0
     fi
  :: recB?op ->
     /* agent_seg_want: nothing to do if held or asked, else READ_DATA */
     if
     :: bmode >= SHARED || bfetching || bgone
     :: else -> bfetching = 1; toS!READ_DATA
     fi
#ifdef LOSS
  :: !lossdone ->
     /* up_lost (agent/upstream.c), between two steps of the agent's loop: the connection
      * broke. agent_up_resync_ready -> agent_seg_lower_all: every page the host holds is
      * lowered by a local INVALIDATE (revoke_start, local_only: revoke_go's tab_set to
      * INVALID with its wake, then the holders lower their views). The requests in flight
      * are asked again after the resync (hp->want): here they stay in flight. */
     lossdone = 1;
     if
     :: bmode != INVALID ->
#ifdef MUTANT_LOWER_NO_WAKE
        atomic { bmode = INVALID; bwait = 0; bgen++ };
#else
        tab_set(INVALID);
#endif
        bview = 0
     :: else
     fi;
     if
     :: skip  /* reconnected: agent_seg_resync re-registers the segment; the page is fetched
               * again at the next fault */
     :: /* or lost: agent_seg_resync's REATTACH refused, or another server instance
         * (agent_seg_lose_all), -> seg_lose; or the reconnect timed out (give_up ->
         * agent_seg_fail_all): tab_set(mode, ERR) on every page, all INVALID by now */
        bgone = 1;
        tab_set_err(bmode, 1)
     fi
  :: bgone && nempty(toB) -> toB?op, d ->
     /* the server's messages for a host or a segment it no longer has: none would come; a
      * REVOKE in flight is answered as the server takes a lost host's copies back */
     if :: op == REVOKE -> ackB!ACK, 0, 0 :: else fi
#endif
  od
}

/* shim_agent_fault for a read: raise the view if the host holds the page (raise_view,
 * atomic here: the Dekker handshake), else ask (once per generation of the word) and wait
 * for the word to move. */
inline fault() {
  sent = 255;
  do
#ifndef MUTANT_FAULT_NO_ERR
  /* the word has ERR: return -1 (the caller's error path: SIGBUS for a load, the plain
   * futex path for shim_netwait) */
  :: atomic { berr -> goto lost }
#endif
  :: atomic { bmode >= SHARED && !berr -> bview = 1; break }
  :: atomic { bmode == INVALID && bgen != sent -> sent = bgen; recB!FAULT }
  od
}

/* A load of the futex word through the view: a fault first if the view is lowered. */
inline load_word(val) {
  do
  :: atomic { bview -> val = bdata; break }
  :: !bview -> fault()
  od
}

/* ---- host B's waiter: shim_netwait (preload/netwait.c) and its caller ---- */
#define EAGAIN 1
#define EFAULT 2
proctype waiter() {
  byte hm, hg, v, sent, r, spur = 0;
  bit hw, ok;

  do /* the caller: waits while the word is the expected value */
  :: 
again: /* shim_netwait's loop */
     atomic { hm = bmode; hw = bwait; hg = bgen };     /* h = atomic_load(hw) */
#ifndef MUTANT_NO_FETCH
     if
     :: hm == INVALID -> fault(); goto again            /* shim_agent_fault; continue */
     :: else
     fi;
#endif
#ifndef MUTANT_NO_WAIT_MARK
     if
     :: !hw ->                                          /* CAS(hw, h, h | WAIT) */
        atomic { ok = (bmode == hm && bwait == hw && bgen == hg); if :: ok -> bwait = 1 :: else fi };
        if :: !ok -> goto again :: else fi;
        hw = 1
     :: else
     fi;
#endif
     load_word(v);                                      /* v = __atomic_load_n(addr) */
     if :: v != EXPECTED -> goto changed :: else fi;    /* return -EAGAIN */
     /* futex_waitv({addr, expected}, {hw, h}): compare both and queue, atomically */
     atomic {
       if
       :: !bview -> r = EFAULT
       :: else ->
          if
          :: bdata != EXPECTED -> r = EAGAIN
#ifndef MUTANT_WORD_ALONE
          :: bdata == EXPECTED && !(bmode == hm && bwait == hw && bgen == hg) -> r = EAGAIN
          :: bdata == EXPECTED && bmode == hm && bwait == hw && bgen == hg -> r = 0; sleeping = ON_BOTH
#else
          :: bdata == EXPECTED -> r = 0; sleeping = ON_WORD
#endif
          fi
       fi
     };
     if
     :: r == 0 ->
        if
        :: sleeping == AWAKE                             /* woken by a FUTEX_WAKE */
        :: atomic { sleeping != AWAKE && spur < MAXSPUR -> spur++; sleeping = AWAKE }
        fi
        /* return 0: the caller looks at the word again */
     :: r == EAGAIN ->
        load_word(v);
        if :: v != EXPECTED -> goto changed :: else -> goto again fi
     :: r == EFAULT -> goto again                        /* the load above faults it in */
     fi;
     load_word(v);                                       /* the caller's own look */
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
}

init {
  atomic {
    /* where the page is when the waiter starts */
    if
    :: bmode = EXCLUSIVE; sB = 1                        /* B owns it (B made the lock) */
    :: bmode = SHARED; amode = SHARED; sB = 1           /* both share it */
    :: amode = EXCLUSIVE; sA_owner = 1                  /* A owns it */
    :: skip                                             /* the server's alone */
    fi;
    if :: bmode != INVALID -> if :: bview = 1 :: skip fi :: else fi;
    run server(); run bagent(); run writer(); run waiter()
  }
}
