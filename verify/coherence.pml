/*
 * coherence.pml - the page protocol of dshm for ONE page, model-checked with SPIN.
 *
 * What is modelled (names are those of docs/protocol.md; each comment names the code):
 *   - the server's directory entry of one page (server/directory.c, struct dpage): data,
 *     version, owner, sharers, at most one transaction (struct dtxn: the request, the node
 *     RECALLed, the INVALIDATEs outstanding) and the FIFO queue of requests;
 *   - NH hosts, each an agent (agent/hostseg.c) with its copy of the page (the memfd), its
 *     version, the host page table's word MODE and holders bits (proto/hosttab.h), and NP
 *     local processes (preload/agentpage.c) each with its view (mprotect) of the page;
 *   - one FIFO channel per direction per connection: agent<->server (READ_DATA, ACQUIRE,
 *     WRITE_DATA, grants, RECALL/RECALL_ACK, INVALIDATE/INVALIDATE_ACK) and agent<->process
 *     (fault records, local INVALIDATE/RECALL, INVALIDATE_ACK);
 *   - the agent's background write-back (WRITE_DATA mode EXCLUSIVE, agent_seg_flush);
 *   - the Dekker handshake on the host page table (raise: set holders bit, then read word;
 *     revocation: store lower word, then read holders) and the bit re-check of `announce`;
 *   - a ghost variable `latest`: the value of the latest write anywhere. Page contents are
 *     abstracted to that value (a write stores latest+1), so "a read returns the latest
 *     write" is `hdata[h] == latest` at every read.
 *
 * What is abstracted, and why that is safe for these properties:
 *   - one page, runs of count 1: every rule of the protocol is per page (read-ahead pages are
 *     granted only when idle and unqueued, i.e. exactly as a head page with no transaction);
 *   - page contents are one small integer (the ghost value), bounded by MAXW writes;
 *   - BUSY per page in a process is the proctype's own sequentiality: a process raises and
 *     lowers one at a time, as BUSY makes it do; threads of one process are one proctype;
 *   - fresh/HELD grants (`hold`, AGENT_HOLD_MS) are left out: a held revocation has lowered
 *     nothing yet, it only delays the acknowledgement, which the model already lets happen
 *     at any later time;
 *   - NOT YET MODELLED (issue 13): migratory grants, disconnects/srv_dir_forget, reconnect
 *     and ghost owners, process death and slots, detach write-backs (WRITE_DATA mode
 *     INVALID/SHARED), pristine grants, errors, locks/wake-ups. See docs/protocol.md,
 *     "The model".
 *   - A process re-sends its fault record while its host neither holds nor asked for the
 *     mode it needs (it reads the agent's `need`/`asked`): this stands for the shim's
 *     re-asking when the word's generation changed (`ask`, shim_agent_fault).
 *
 * Properties (see the Makefile's `verify` target and verify/run.sh):
 *   - swmr (monitor): at most one host has a writable view, and then no other host has any
 *     view: at most one writer across hosts and processes;
 *   - at every read: the data read is the latest written (ghost);
 *   - at every acknowledgement an agent sends: no local view above the mode kept;
 *   - no invalid end state: every process finishes its accesses (no deadlock);
 *   - granted (-DLIVENESS, pan -a -f): under weak fairness every READ_DATA/ACQUIRE an agent
 *     sends is eventually granted.
 *
 * Bounds: NH must be 2 (the server's receive and the swmr monitor are written out for two
 * hosts), NP 1 or 2. A host sends at most MAXREQ requests: without the fresh/HELD grants two
 * hosts can take the page from each other forever (versions grow without end); a process
 * whose host may ask no more stops, which is the bound's doing, not a deadlock of the code.
 *
 * Mutants (spin -DMUTANT_X), each a known protocol mistake the checker must catch:
 *   GRANT_EARLY    the server grants EXCLUSIVE before every INVALIDATE_ACK arrived
 *   ACK_EARLY      the agent acknowledges before its local processes lowered their views
 *   NO_DEKKER      a raising process reads the word before it sets its holders bit
 *   WORD_FIRST     a grant raises the word before the data is in the memfd
 *   NO_RECALL_SHARER  a RECALL to SHARED does not make the old owner a sharer
 *   NO_RECALL_DATA the agent's RECALL_ACK carries no data for a page it held EXCLUSIVE
 *   NO_ACK_IF_NONE the agent never answers a revocation that told no local process
 *                  (docs/protocol.md: "A node answers every RECALL and INVALIDATE")
 */

#ifndef NH
#define NH 2          /* hosts */
#endif
#ifndef NP
#define NP 1          /* local processes per host */
#endif
#ifndef NOPS
#define NOPS 2        /* accesses per process */
#endif
#ifndef MAXW
#define MAXW 2        /* writes in all (the ghost's bound) */
#endif
#ifndef MAXREQ
#define MAXREQ 3      /* READ_DATA/ACQUIRE requests per agent (bounds the versions) */
#endif
#ifndef MAXFLUSH
#define MAXFLUSH 1    /* background write-backs per agent */
#endif

#if NH != 2
#error "the model is written out for NH == 2"
#endif

#define NONE 255
/* A node's view / the host's MODE: docs/protocol.md, "Coherence" and the word's MODE bits. */
#define INVALID   0
#define SHARED    1
#define EXCLUSIVE 2

/* Opcodes of docs/protocol.md, "Opcodes" (GRANT: the REPLY of READ_DATA or ACQUIRE). */
mtype = { READ_DATA, ACQUIRE, WRITE_DATA, GRANT, RECALL, RECALL_ACK, INVALIDATE, INVALIDATE_ACK };

/* agent -> server: op, mode, version, has-data, data */
chan toS[NH] = [3] of { mtype, byte, byte, bit, byte };
/* server -> agent: op, mode, version, has-data, data */
chan toA[NH] = [3] of { mtype, byte, byte, bit, byte };
/* process -> agent fault records (READ_DATA/ACQUIRE of the local protocol): proc, mode */
chan rec[NH] = [2 * NP] of { byte, byte };
/* agent -> process: local INVALIDATE/RECALL, the mode to keep */
chan loc[NH * NP] = [1] of { mtype, byte };
/* process -> agent: local INVALIDATE_ACK */
chan lack[NH] = [NP] of { byte };

/* ---- the server's directory entry (server/directory.c, struct dpage / struct dtxn) ---- */
byte sdata = 0;            /* the page's data at the server */
byte version = 1;          /* starts at 1, incremented at every EXCLUSIVE grant (bump_version) */
byte owner = NONE;
bit sharer[NH];
bit txn = 0;               /* a transaction in progress (pg->txn) */
byte t_node, t_mode, t_ver;/* its request (t->req) */
byte recall_node = NONE;   /* t->recall_node */
bit inval[NH];             /* t->inval: INVALIDATE_ACKs outstanding */
bit inval_started = 0;     /* t->inval_started */
chan queue = [NH] of { byte, byte, byte };  /* pg->qhead..qtail: node, mode, version */

/* ---- each host: agent state and the host page table ---- */
byte hdata[NH];            /* the page in the segment's memfd */
byte hver[NH];             /* the version of that copy (0: never held) */
byte tab[NH];              /* the word's MODE (hosttab.h) */
byte holders[NH];          /* holders bits, bit p for local process p */
byte need[NH];             /* a fault noted, not yet asked (agent_seg_want) */
byte asked[NH];            /* the mode of the request in flight (struct preq) */
byte budget[NH];           /* requests left (the bound MAXREQ, not in the code) */
byte view[NH * NP];        /* each process's view (its mprotect) */

/* ---- the ghost ---- */
byte latest = 0;           /* value of the latest write, in the order of grants */

#define V(h, p) view[(h) * NP + (p)]

/* ---------------------------------------------------------------------------------------
 * Properties
 * ------------------------------------------------------------------------------------- */

/* swmr: at most one host with a writable view, and then no other host has a view
 * (written out for NH == 2 and NP <= 2). */
#if NP == 1
#define HW(h) (V(h, 0) == EXCLUSIVE)
#define HR(h) (V(h, 0) != INVALID)
#else
#define HW(h) (V(h, 0) == EXCLUSIVE || V(h, 1) == EXCLUSIVE)
#define HR(h) (V(h, 0) != INVALID || V(h, 1) != INVALID)
#endif
#define SWMR (!(HW(0) && HR(1)) && !(HW(1) && HR(0)))

/* The monitor can move in any state where SWMR is false: every reachable state is checked. */
active proctype monitor() {
  end: atomic { !SWMR -> assert(SWMR) }
}

/* ---------------------------------------------------------------------------------------
 * The server (server/directory.c). Each handler runs to completion: the server is one
 * event loop (srv_dir_* are called from it and never re-enter).
 * ------------------------------------------------------------------------------------- */

/* grant_page + grant: the reply to READ_DATA / ACQUIRE */
inline grant(n, m, ver) {
  if
  :: m == SHARED ->
     sharer[n] = 1;
     if :: owner == n -> owner = NONE :: else -> skip fi;   /* "lost track of its copy" */
     toA[n]!GRANT(SHARED, version, ver != version, sdata)
  :: m == EXCLUSIVE && owner == n ->
     toA[n]!GRANT(EXCLUSIVE, version, 0, sdata)             /* immediate, no data */
  :: m == EXCLUSIVE && owner != n ->
     hasdata = (sharer[n] == 0 && ver != version);
     for (si : 0 .. NH - 1) { sharer[si] = 0 }               /* sharers_clear */
     version++;                                              /* bump_version */
     owner = n;                                              /* set_owner */
     toA[n]!GRANT(EXCLUSIVE, version, hasdata, sdata)
  fi
}

/* grantable: SHARED while nobody else owns it; EXCLUSIVE when held by nobody else */
#define GRANTABLE(n, m) \
  ((m) == SHARED && (owner == NONE || owner == (n)) || \
   (m) == EXCLUSIVE && (owner == NONE || owner == (n)) && held_by_others == 0)

inline others(n) {
  held_by_others = 0;
  for (si : 0 .. NH - 1) { if :: si != n && sharer[si] -> held_by_others = 1 :: else -> skip fi }
}

/* start: grant at once, or open a transaction and RECALL the owner */
inline start(n, m, ver) {
  others(n);
  if
  :: GRANTABLE(n, m) -> grant(n, m, ver)
  :: else ->
     txn = 1; t_node = n; t_mode = m; t_ver = ver; inval_started = 0;
     if
     :: owner != NONE && owner != n ->
        recall_node = owner;
        toA[owner]!RECALL((m == SHARED -> SHARED : INVALID), 0, 0, 0)  /* the mode to keep */
     :: else -> advance()
     fi
  fi
}

/* advance: after the recall, INVALIDATE the other sharers; grant when nothing is pending */
inline advance() {
  if
  :: recall_node != NONE -> skip
  :: else ->
     if
     :: t_mode == EXCLUSIVE && !inval_started ->             /* invalidate_others */
        inval_started = 1;
        for (si : 0 .. NH - 1) {
          if :: si != t_node && sharer[si] -> inval[si] = 1; toA[si]!INVALIDATE(INVALID, 0, 0, 0)
             :: else -> skip fi
        }
     :: else -> skip
     fi;
     pending = 0;
     for (si : 0 .. NH - 1) { pending = pending + inval[si] }
#ifdef MUTANT_GRANT_EARLY
     /* the mistake: grant without waiting for the INVALIDATE_ACKs; forget them */
     for (si : 0 .. NH - 1) { inval[si] = 0; sharer[si] = 0 }
     pending = 0;
#endif
     if
     :: pending == 0 ->
        txn = 0;
        others(t_node);
        assert(GRANTABLE(t_node, t_mode));    /* start re-checks rather than trusts it */
        grant(t_node, t_mode, t_ver)
     :: else -> skip
     fi
  fi
}

/* One message from node n, handled to completion. */
inline handle(n) {
    toS[n]?op, m, ver, hasdata, val;
    if
    :: op == READ_DATA || op == ACQUIRE -> queue!n, m, ver      /* srv_dir_request */
    :: op == WRITE_DATA ->                                      /* srv_dir_write */
       if
       :: owner == n ->
          sdata = val;
          if
          :: m == EXCLUSIVE -> skip           /* background write-back: stays the owner */
          :: m == SHARED -> owner = NONE; sharer[n] = 1   /* (not sent by the model's agents) */
          :: m == INVALID -> owner = NONE                 /* (not sent by the model's agents) */
          fi
       :: else -> skip                        /* a recall crossed it: ignored */
       fi
    :: op == RECALL_ACK ->                                      /* srv_dir_recall_ack */
       if
       :: txn && recall_node == n ->
          if
          :: owner == n ->
             if :: hasdata -> sdata = val :: else -> skip fi;
             owner = NONE;
#ifndef MUTANT_NO_RECALL_SHARER
             if :: t_mode == SHARED -> sharer[n] = 1 :: else -> skip fi;
#endif
          :: else -> skip
          fi;
          recall_node = NONE;
          advance()
       :: else -> skip
       fi
    :: op == INVALIDATE_ACK ->                                  /* srv_dir_invalidate_ack */
       if
       :: txn && inval[n] -> inval[n] = 0; sharer[n] = 0; advance()
       :: else -> skip
       fi
    fi
}

/* Locals are reset after each step so that dead values do not multiply the states. */
#define SRV_CLEAR n = 0; si = 0; m = 0; ver = 0; val = 0; pending = 0; held_by_others = 0; \
  hasdata = 0; op = 0

proctype server() {
  byte n, si, m, ver, val, pending, held_by_others;
  bit hasdata;
  mtype op;
  end: do
  :: atomic { nempty(toS[0]) -> n = 0; handle(n); SRV_CLEAR }
  :: atomic { nempty(toS[1]) -> n = 1; handle(n); SRV_CLEAR }
  /* kick: start queued requests while the page has no transaction */
  :: atomic { !txn && nempty(queue) -> queue?n, m, ver; start(n, m, ver); SRV_CLEAR }
  od
}

/* ---------------------------------------------------------------------------------------
 * The host agent (agent/hostseg.c)
 * ------------------------------------------------------------------------------------- */

/* revoke_finish: every told process answered: answer the server, the data copied now */
inline finish() {
    for (p : 0 .. NP - 1) { assert(V(h, p) <= keep) }  /* no view above the host's mode */
    if
    :: rop == RECALL ->
#ifdef MUTANT_NO_RECALL_DATA
       toS[h]!RECALL_ACK(keep, hver[h], 0, 0)
#else
       toS[h]!RECALL_ACK(keep, hver[h], was_ex, hdata[h])
#endif
    :: else -> toS[h]!INVALIDATE_ACK(INVALID, 0, 0, 0)
    fi;
    /* after a revocation to INVALID the bits of the processes told are cleared */
    if :: keep == INVALID -> holders[h] = holders[h] & ~told :: else -> skip fi;
    revoking = 0; rop = 0; keep = 0; told = 0; was_ex = 0; p = 0
}

proctype agent(byte h) {
  byte m, ver, val, keep, told, pending, p, flushes;
  bit hasdata, was_ex, revoking;
  mtype op, rop;
  end: do
  /* agent_seg_grant / install: the data into the memfd, THEN the word's MODE */
  :: atomic { toA[h]?GRANT, m, ver, hasdata, val ->
#ifndef MUTANT_WORD_FIRST
       if :: hasdata -> hdata[h] = val :: else -> skip fi;
#endif
       hver[h] = ver;
       tab[h] = m;
       asked[h] = 0;
#ifndef MUTANT_WORD_FIRST
       m = 0; ver = 0; hasdata = 0; val = 0
#endif
     };
#ifdef MUTANT_WORD_FIRST
     /* the mistake: the word is raised before the data is written */
     if :: hasdata -> hdata[h] = val :: else -> skip fi;
     m = 0; ver = 0; hasdata = 0; val = 0
#endif
  /* agent_seg_revoke -> revoke_start -> revoke_go: store the lower word, THEN read holders */
  :: atomic { !revoking && (toA[h]?[RECALL] || toA[h]?[INVALIDATE]) ->
       toA[h]?rop, keep, ver, hasdata, val; ver = 0; hasdata = 0; val = 0;
       revoking = 1;
       was_ex = (tab[h] == EXCLUSIVE);
       if :: tab[h] > keep -> tab[h] = keep :: else -> skip fi };
     told = holders[h];                                /* a separate step: Dekker */
     atomic {
       pending = 0;
       for (p : 0 .. NP - 1) {
         if :: told & (1 << p) -> loc[h * NP + p]!rop, keep; pending++ :: else -> skip fi
       }
#ifdef MUTANT_ACK_EARLY
       /* the mistake: answer the server at once, local acks are not awaited */
       pending = 0;
#endif
       p = 0;
#ifdef MUTANT_NO_ACK_IF_NONE
       /* the mistake: a revocation that told no process is never answered */
       if :: pending == 0 -> skip :: else -> skip fi
#else
       if :: pending == 0 -> finish() :: else -> skip fi
#endif
     }
  /* agent_seg_local_ack: a process's views are down */
  :: atomic { lack[h]?p -> p = 0;
       pending--;
       if :: pending == 0 -> finish() :: else -> skip fi }
  /* a fault record from a process (agent_seg_want notes the need) */
  :: atomic { rec[h]?p, m -> if :: m > need[h] -> need[h] = m :: else -> skip fi; p = 0; m = 0 }
  /* request: READ_DATA or ACQUIRE for what is needed, one request in flight */
  :: atomic { asked[h] == 0 && need[h] > tab[h] && budget[h] > 0 ->
       budget[h]--; asked[h] = need[h]; need[h] = 0;
       if
       :: asked[h] == SHARED -> toS[h]!READ_DATA(SHARED, hver[h], 0, 0)
       :: else -> toS[h]!ACQUIRE(EXCLUSIVE, hver[h], 0, 0)
       fi }
  /* agent_seg_flush: background write-back of a page held EXCLUSIVE, the node keeps it */
  :: atomic { tab[h] == EXCLUSIVE && flushes < MAXFLUSH ->
       flushes++; toS[h]!WRITE_DATA(EXCLUSIVE, hver[h], 1, hdata[h]) }
  od
}

/* ---------------------------------------------------------------------------------------
 * A local process (preload/agentpage.c): NOPS accesses, each a read or a write
 * ------------------------------------------------------------------------------------- */

proctype process(byte h; byte p) {
  byte ops, want, w, keep;
  mtype op;
  do
  /* the next access: a read (SHARED) or a write (EXCLUSIVE) */
  :: ops < NOPS && want == 0 -> if :: want = SHARED :: want = EXCLUSIVE fi
  :: ops == NOPS && want == 0 -> break
  /* the bound: its host may ask no more, the process stops (not a deadlock of the code) */
  :: want != 0 && V(h, p) < want && budget[h] == 0 && asked[h] == 0 -> break
  /* the access itself, on a view that allows it */
  :: atomic { want != 0 && V(h, p) >= want ->
       if
       :: want == SHARED -> assert(hdata[h] == latest)      /* reads the latest write */
       :: want == EXCLUSIVE && latest < MAXW -> latest++; hdata[h] = latest
       :: else -> skip
       fi;
       ops++; want = 0 }
  /* shim_agent_fault -> send_record: a fault record (re-sent while nobody asked) */
  :: atomic { want != 0 && V(h, p) < want && tab[h] < want && need[h] < want &&
              asked[h] < want && nfull(rec[h]) -> rec[h]!p, want }
  /* shim_agent_page_ready -> raise_page / announce: the word allows it: raise the view */
  :: want != 0 && V(h, p) < want && tab[h] >= want ->
#ifdef MUTANT_NO_DEKKER
     w = tab[h];                                    /* the mistake: word before bit */
     holders[h] = holders[h] | (1 << p);
#else
     holders[h] = holders[h] | (1 << p);            /* set the bit, THEN read the word */
     w = tab[h];
#endif
     if
     :: (holders[h] & (1 << p)) == 0 -> skip        /* announce: bit cleared, start over */
     :: else -> if :: w > V(h, p) -> V(h, p) = (w < want -> w : want) :: else -> skip fi
     fi;
     w = 0
  /* shim_agent_lower: a local INVALIDATE/RECALL: lower the view, then INVALIDATE_ACK */
  :: atomic { loc[h * NP + p]?op, keep ->
       if :: V(h, p) > keep -> V(h, p) = keep :: else -> skip fi;
       lack[h]!p; op = 0; keep = 0 }
  od;
  /* done: the connection stays open and answers every revocation */
  end: do
  :: atomic { loc[h * NP + p]?op, keep ->
       if :: V(h, p) > keep -> V(h, p) = keep :: else -> skip fi;
       lack[h]!p; op = 0; keep = 0 }
  od
}

#ifdef LIVENESS
/* Every request an agent sends is eventually granted (under weak fairness: pan -a -f). */
ltl granted { [] ((asked[0] != 0 -> <> (asked[0] == 0)) && (asked[1] != 0 -> <> (asked[1] == 0))) }
#endif

init {
  byte h, p;
  atomic {
    run server();
    for (h : 0 .. NH - 1) {
      budget[h] = MAXREQ;
      run agent(h);
      for (p : 0 .. NP - 1) { run process(h, p) }
    }
  }
}
