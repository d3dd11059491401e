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
 *   - with NH == 3 (the base protocol, no failures): what two hosts cannot show, an
 *     INVALIDATE to two sharers at once (invalidate_others) whose grant waits for both acks
 *     (advance, drop_pending), migratory_note with three copies about (nsh > 2: no mark, an
 *     unmark), two requests of different nodes queued behind a transaction (kick);
 *   - one FIFO channel per direction per connection: agent<->server (READ_DATA, ACQUIRE,
 *     WRITE_DATA, grants, RECALL/RECALL_ACK, INVALIDATE/INVALIDATE_ACK, DETACH_SEGMENT) and
 *     agent<->process (fault records, local INVALIDATE/RECALL, INVALIDATE_ACK);
 *   - the agent's background write-back (WRITE_DATA mode EXCLUSIVE, agent_seg_flush);
 *   - the Dekker handshake on the host page table (raise: set holders bit, then read word;
 *     revocation: store lower word, then read holders) and the bit re-check of `announce`;
 *   - migratory pages (migratory_note, docs/protocol.md "Migratory pages"): an ACQUIRE from a
 *     sharer after another node's write marks the page; a READ_DATA of a marked page owned by
 *     another node runs as an ACQUIRE and is answered EXCLUSIVE; a RECALL_ACK giving the data
 *     back unchanged unmarks it;
 *   - a raise maps the page at the host's mode (raise_page: shim_prot_of(hm)), so a read of a
 *     page the host holds EXCLUSIVE gets a writable view;
 *   - a ghost variable `latest`: the value of the latest write anywhere. Page contents are
 *     abstracted to that value (a write stores a value never written before), so "a read
 *     returns the latest write" is `hdata[h] == latest` at every read, and at every write (a
 *     write is a read-modify-write: an atomic, a lock word).
 *   - -DLOSS: host 1's connection breaks once, at any moment (up_lost): the agent forgets
 *     its request in flight (kept as a need), its revocation under way finishes locally,
 *     every page is lowered on the host (agent_seg_lower_all, again while a page is left
 *     readable); then it either gives up (give_up: its processes lose every view; the same,
 *     for the other host, as a host that dies) or reconnects on a new connection (a new
 *     node, 2) and resyncs (agent_seg_resync: WRITE_DATA mode INVALID of an owed page at its
 *     version, which then counts as never held). The server reads the close at any later
 *     moment, possibly after messages of the new connection (two TCP streams), and runs
 *     srv_dir_forget (it stops being owner or sharer, an INVALIDATE_ACK or RECALL_ACK it
 *     owes counts as answered without data, its queued requests are dropped, a transaction
 *     for its own request ends without a grant). Messages not read before the close are lost.
 *   - -DPDEATH: host 1's process dies once, at any moment between its steps (its views go
 *     with its address space); the agent's teardown (proc_gone: what it owed counts as
 *     answered; the host's last detach, agent_seg_detach: a revocation under way is answered
 *     now, an EXCLUSIVE page is written back with WRITE_DATA mode INVALID, then
 *     DETACH_SEGMENT, whose srv_att_detach runs srv_dir_forget at the server).
 *   - -DERRS: the server refuses one request (out of memory, send_error: the model's REFUSED),
 *     at any start before anything changed, or in advance after the RECALL (invalidate_others'
 *     malloc: the transaction ends); the agent sets the page's ERR bit (agent_seg_grant) and
 *     ends the request; the process's fault gets SIGBUS and its handler ends its accesses.
 *   - -DRESTART: the server crashes once, at any moment, and is restarted with --data-dir.
 *     What it had not read is lost; its memory (sharers, transaction, queue) goes; the
 *     segment's file keeps what the code keeps in it (below). A page whose record names an
 *     owner gets the ghost owner (SRV_NODE_GHOST, page_get): requests wait behind it as
 *     behind a RECALL until the ghost ends: (a) the write-back (WRITE_DATA) of the node with
 *     that tag at the version recorded takes the data (srv_dir_write, ghost_of, ghost_end
 *     without a bump); (b) that node's NODE RESUMED (srv_dir_end_ghosts(tag)) or its own
 *     request (srv_dir_request) ends it with a new version; (c) the grace period ends it
 *     the same way, at any moment (srv__server_end_grace, srv_dir_end_ghosts(0)). Each agent
 *     sees the close at any later moment, after reading any part of what had reached it
 *     (up_lost, as with LOSS, and what it sends meanwhile is lost), lowers the page
 *     (agent_seg_lower_all), reconnects as a new node, 2 + h for host h (node n is always
 *     host n % 2's: its NODE tag), and resyncs (agent_seg_resync: WRITE_DATA mode INVALID
 *     of an owed page at its version, then NODE RESUMED; a read copy keeps its version and
 *     is revalidated by it). RESTART does not combine with LOSS or PDEATH (an #error): the
 *     node numbering and the ghost's rules for lost writes are each written for one failure.
 *     What survives the crash: the file is a MAP_SHARED mapping of the data and of one
 *     record per page (store.c), so a crash of the server process (the machine stays up)
 *     keeps every store made before it: the data of every WRITE_DATA and RECALL_ACK the
 *     server stored, and the record (owner tag, version) that set_owner and bump_version
 *     write at each change, in the order they were made. The restarted server takes the
 *     version from the record (page_get; 1 when 0). Since the model's handlers are atomic
 *     the crash falls between two of them; in the code it can also fall between two stores
 *     of one handler, and none of those states differs in a way that matters: grant_page
 *     bumps the version before it records the owner (a crash between them leaves a newer
 *     version with no owner, which nobody holds: the next grant carries data), and
 *     srv_dir_recall_ack and srv_dir_write store the data before they clear the owner (the
 *     record still names the node at the same version, so its resync writes the same data
 *     back, and it is taken again). A power loss or kernel crash keeps only what the kernel
 *     had written to disk, in any order (no msync but at shutdown): the code promises
 *     nothing there (docs/operations.md, "What survives what"), and it is not modelled.
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
 *   - a lost host's writes: writes made on host 1 after the server forgot its connection
 *     (it read the close) and before the resync are lost by design (docs/design.md,
 *     "Losses"), and at the forget of an owner the ghost takes the server's data (its
 *     unsent changes are lost). Until the resync such a host's views are not counted by
 *     swmr and its reads are not checked: the protocol has no lease, so a host that has not
 *     yet lowered its views (or never learns of the close) can use them meanwhile;
 *   - the detach write-back is sent whether or not the page changed since the server last
 *     got it (the digest test of write_back_all only saves sending what the server has);
 *   - RESTART's writes: the protocol promises that a host back within the grace period
 *     loses nothing (docs/design.md "Reconnect" step 4, docs/shim.md): what it wrote to a
 *     page it held EXCLUSIVE, even after the crash and before it saw the close, is written
 *     back at its resync and taken from the ghost. So a host's writes count (move `latest`)
 *     while it is the page's ghost owner; the grace's end gives them up by design
 *     (docs/operations.md, "The grace period": `latest` takes the file's data), and from
 *     then until its resync its writes do not count. As with LOSS, from the crash until a
 *     host's resync its views are not counted by swmr and its reads are not checked: the
 *     restarted server knows no copy of the old connections (a sharer's read copy, unknown
 *     to it, stays readable until the agent sees the close);
 *   - RESTART leaves out: REATTACH (one segment, always known to the restarted server), an
 *     agent giving up (for the other host the same as one back after the grace), a second
 *     crash or a resync whose connection fails, and a crash inside a handler (above). Of a
 *     failed resync: agent_seg_resync dropped the owed page of a write-back that got no
 *     answer or ENOMEM, so the next try's RESUMED ended the ghost with the host's writes
 *     never taken; found reading the code for this model, fixed, and tested by
 *     tests/unit/test_resync.c;
 *   - NOT YET MODELLED (issue 13): pristine grants (a grant of a never-written page carries
 *     no data: the model's first grant carries it anyway, both mean zeros), a second loss
 *     or crash, 3 hosts with LOSS, PDEATH or RESTART (an #error: their node numbering and
 *     host LH are written for two). The wake-ups of the locks work are verify/netwait.pml,
 *     a model of their own.
 *     See docs/protocol.md, "The model".
 *   - A process re-sends its fault record while its host neither holds nor asked for the
 *     mode it needs (it reads the agent's `need`/`asked`): this stands for the shim's
 *     re-asking when the word's generation changed (`ask`, shim_agent_fault).
 *
 * Properties (see the Makefile's `verify` target and verify/run.sh):
 *   - swmr (monitor): at most one host has a writable view, and then no other host has any
 *     view: at most one writer across hosts and processes;
 *   - at every read: the data read is the latest written (ghost);
 *   - stored-latest (monitor): while the server knows no owner of the page (not even a
 *     ghost), its data is the latest write: no write handed back to the server is lost;
 *   - at every acknowledgement an agent sends (and at a resync): no local view above the
 *     mode kept;
 *   - no invalid end state: every process finishes its accesses (no deadlock);
 *   - granted (-DLIVENESS, pan -a -f): under weak fairness every READ_DATA/ACQUIRE an agent
 *     sends is eventually granted, or refused (-DERRS), or forgotten by its own agent at a
 *     loss or a last detach.
 *
 * Bounds: NH 2 or 3 (the server's receive, the swmr monitor and `granted` are written out
 * for each; 3 only without LOSS, PDEATH and RESTART), NP 1 or 2 (NP1: the processes of
 * hosts 1 and 2, fewer than NP; NOPS0, NOPS2: host 0's, host 2's accesses, fewer than NOPS;
 * READERS: a mask of hosts whose processes only read). A host sends at most MAXREQ requests
 * (host 0: MAXREQ0, host 2: MAXREQ2): without the fresh/HELD grants two hosts can take the
 * page from each other forever (versions grow without end); a process whose host may ask
 * no more stops, which is the bound's doing, not a deadlock of the code. verify/run.sh has
 * the configurations it checks (LOSS, PDEATH and RESTART with fewer accesses and writes;
 * three hosts with one writing host: docs/protocol.md, "The model").
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
 *   MIGR_RECALL_BY_OP  the RECALL of a migratory READ_DATA keeps the owner SHARED (the mode
 *                  to keep taken from the op, not from the mode to grant)
 *   MIGR_BOOK_BY_OP  a migratory grant booked as a READ_DATA's (the reader a sharer, the
 *                  owner gone) while the reply says EXCLUSIVE (caught with NOPS=3 for host 1)
 *   ACK_FIRST_ONLY the agent answers when the first told process acks (caught with NP=2)
 *   INVAL_ONE_ACK  the INVALIDATEs outstanding kept as one flag, not a list: the first
 *                  INVALIDATE_ACK ends the wait and the sharers asked go with it (caught
 *                  with NH=3 only: with two hosts a transaction asks one sharer at most)
 *   with -DERRS:
 *   ERR_KEEPS_TXN  the refusal in advance keeps the page's transaction
 *   ERR_DROPPED    the agent ignores a refused request (it stays in flight)
 *   with -DLOSS:
 *   STALE_WRITEBACK   srv_dir_write stores a write-back from a node that is not the owner
 *                  (a stale write-back after a newer grant or a forget)
 *   DROP_QUEUED    srv_dir_forget drops every queued request of the page, not only the
 *                  disconnecting node's own
 *   FORGET_KEEPS_RECALL  srv_dir_forget does not count the RECALL_ACK the node owes as
 *                  answered: the transaction it blocked never moves on
 *   NO_RELOWER     the resync starts once the revocations under way are done, without
 *                  lowering again a page a RECALL to SHARED left readable
 *   RESYNC_KEEPS_VERSION  the page written back at the resync keeps its version, and
 *                  srv_dir_forget does not bump the version of a page whose owner it
 *                  forgets: the lost writes pass for the server's data at the next grant.
 *                  Either rule alone suffices (each was checked alone: the model holds);
 *                  the code has both (tests/unit/test_directory.c,
 *                  forgotten_owner_copy_never_passes, for the server's)
 *   with -DPDEATH:
 *   NO_DETACH_WRITEBACK  the host's last detach sends DETACH without writing back its
 *                  EXCLUSIVE page
 *   with -DRESTART:
 *   GHOST_NOT_BLOCKING  a request for a ghost-owned page is granted at once from the file
 *                  (grantable takes the ghost for no owner): the other host reads the data
 *                  the old owner wrote over before the crash
 *   GHOST_WRITEBACK_ANY_VERSION  ghost_of takes the ghost node's write-back at any version:
 *                  host 1's EXCLUSIVE grant is lost in the crash, and its owed copy of an
 *                  earlier tenure, older than host 0's write since, is taken (stored-latest)
 *   GHOST_END_KEEPS_VERSION  ghost_end does not bump the version, and the page written
 *                  back at the resync keeps its version: after the grace the old owner's
 *                  copy, with the writes the grace gave up, is granted back without data as
 *                  current. Either rule alone suffices (each was checked alone: the model
 *                  holds), as for RESYNC_KEEPS_VERSION
 *   RESUMED_FIRST  the resync sends NODE RESUMED before the owed page's write-back: the
 *                  ghost ends with a new version, the write-back is ignored and the host's
 *                  writes are lost though it came back in time (stored-latest)
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
#ifndef NP1
#define NP1 NP        /* the processes of hosts 1 and 2 (a configuration may give fewer) */
#endif
#ifndef NOPS0
#define NOPS0 NOPS    /* host 0's processes' own bound (a configuration may give them fewer) */
#endif
#ifndef MAXW
#define MAXW 2        /* writes in all (the ghost's bound) */
#endif
#ifndef MAXREQ
#define MAXREQ 3      /* READ_DATA/ACQUIRE requests per agent (bounds the versions) */
#endif
#ifndef MAXREQ0
#define MAXREQ0 MAXREQ /* host 0's own bound (a configuration may give it fewer) */
#endif
#if NH == 3
#ifndef NOPS2
#define NOPS2 NOPS    /* host 2's processes' own bound (fewer, as NOPS0) */
#endif
#ifndef MAXREQ2
#define MAXREQ2 MAXREQ /* host 2's own bound (fewer, as MAXREQ0) */
#endif
#endif
#ifndef MAXERR
#define MAXERR 1      /* -DERRS: requests the server refuses, in all */
#endif
#ifndef MAXFLUSH
#define MAXFLUSH 1    /* background write-backs per agent */
#endif

#if NH != 2 && NH != 3
#error "the model is written out for NH == 2 or NH == 3"
#endif
#if NH == 3 && (defined(LOSS) || defined(PDEATH) || defined(RESTART))
#error "LOSS, PDEATH and RESTART are written out for NH == 2 (their node numbering, LH)"
#endif

#if defined(RESTART) && (defined(LOSS) || defined(PDEATH))
#error "RESTART is checked alone: it does not combine with LOSS or PDEATH"
#endif
#if defined(LOSS) || defined(RESTART)
#define RECONNECT     /* an agent reconnects and resyncs (agent_seg_lower_all, agent_seg_resync) */
#endif

/* Connections (server nodes): one per host (node h for host h); with LOSS host 1's second
 * one (node 2); with RESTART each host's connection to the restarted server (node 2 + h, so
 * node n is always host n % 2's: its NODE tag, the same across connections). LOSS and
 * RESTART come with NH == 2 only. */
#if defined(RESTART)
#define NN 4
#elif defined(LOSS)
#define NN 3
#else
#define NN NH
#endif
#define HOST(n) ((n) % 2)
#define LH 1          /* the host whose connection breaks (LOSS) or whose process dies (PDEATH) */

#define NONE 255
#define GHOST 254     /* SRV_NODE_GHOST: the owner recorded by the server's earlier run */
/* A node's view / the host's MODE: docs/protocol.md, "Coherence" and the word's MODE bits. */
#define INVALID   0
#define SHARED    1
#define EXCLUSIVE 2

/* Opcodes of docs/protocol.md, "Opcodes" (GRANT: the REPLY of READ_DATA or ACQUIRE). */
mtype = { READ_DATA, ACQUIRE, WRITE_DATA, GRANT, RECALL, RECALL_ACK, INVALIDATE, INVALIDATE_ACK,
          DETACH_SEGMENT, NODE_RESUMED, REFUSED };
/* REFUSED: the REPLY of READ_DATA or ACQUIRE with a status (send_error: -ENOMEM) */

/* agent -> server: op, mode, version, has-data, data */
chan toS[NN] = [4] of { mtype, byte, byte, bit, byte };
/* server -> agent: op, mode, version, has-data, data */
chan toA[NN] = [3] of { mtype, byte, byte, bit, byte };
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
bit sharer[NN];
bit txn = 0;               /* a transaction in progress (pg->txn) */
byte t_node, t_mode, t_ver;/* its request (t->req); t_node NONE once its node went away */
bit t_rd;                  /* it is a READ_DATA (t->req->op), whatever its mode */
byte recall_node = NONE;   /* t->recall_node */
bit inval[NN];             /* t->inval: INVALIDATE_ACKs outstanding */
bit inval_started = 0;     /* t->inval_started */
chan queue = [NN] of { byte, byte, byte };  /* pg->qhead..qtail: node, mode, version */
byte last_writer = NONE;   /* pg->last_writer: the node of the last EXCLUSIVE grant */
bit migratory = 0;         /* pg->migratory: nodes take the page in turn (migratory_note) */

/* ---- each host: agent state and the host page table ---- */
byte conn[NH];             /* the node (connection) the agent talks on */
byte hdata[NH];            /* the page in the segment's memfd */
byte hver[NH];             /* the version of that copy (0: never held) */
byte tab[NH];              /* the word's MODE (hosttab.h) */
byte holders[NH];          /* holders bits, bit p for local process p */
byte need[NH];             /* a fault noted, not yet asked (agent_seg_want, hp->want) */
byte asked[NH];            /* the mode of the request in flight (struct preq) */
byte budget[NH];           /* requests left (the bound MAXREQ, not in the code) */
byte view[NH * NP];        /* each process's view (its mprotect) */

#ifdef RECONNECT
bit owed[NH];              /* hpage.owed: given up from EXCLUSIVE since its last grant */
byte wcount = 0;           /* writes made (each stores a value never stored before) */
#endif
#ifdef LOSS
bit closed[NN];            /* the connection is gone (the agent's up_lost / close_stream) */
bit sclosed[NN];           /* the server read its close and forgot the node */
bit gaveup[NH];            /* give_up: the agent stopped, its processes lost every view */
/* Host h's views do not count while the server has forgotten its connection (see above). */
#define CUT(h) (sclosed[conn[h]])
#elif defined(RESTART)
bit crashed;               /* the server crashed and restarted (once) */
byte ghost_tag = NONE;     /* with owner GHOST: the host whose tag the page record names */
/* Host h's views do not count from the crash until its resync on the restarted server (the
 * same window as LOSS's: the new server knows no copy of the old connections'). */
#define CUT(h) (crashed && conn[h] < 2)
#else
#define CUT(h) 0
#endif
/* A write of host h counts (moves `latest`): with LOSS unless the server forgot the
 * connection; with RESTART also, while cut, as long as h is the page's ghost owner (its
 * resync write-back is then taken; the grace's end, which loses it, resets `latest`). */
#ifdef RESTART
#define KEPT(h) (!CUT(h) || owner == GHOST && ghost_tag == (h))
#else
#define KEPT(h) (!CUT(h))
#endif
#ifdef MUTANT_NO_RELOWER
bit relowered;             /* the mistake's: agent_seg_lower_all ran once, at up_lost */
#endif
#ifdef PDEATH
bit pdead;                 /* host LH's process 0 died */
bit torn;                  /* its agent tore it down (proc_gone) */
#endif

#ifdef ERRS
byte nerr = 0;             /* requests refused so far (the bound MAXERR) */
bit err[NH];               /* the word's ERR bit (tab_set(.., DSHM_HT_ERR)): sticky */
#define ERR(h) err[h]
#else
#define ERR(h) 0
#endif

bit refused;               /* the server's: this step refused the request (send_error) */

/* ---- the ghost ---- */
byte latest = 0;           /* value of the latest write, in the order of grants */

#define V(h, p) view[(h) * NP + (p)]

/* ---------------------------------------------------------------------------------------
 * Properties
 * ------------------------------------------------------------------------------------- */

/* swmr: at most one host with a writable view, and then no other host has a view
 * (written out for NH 2 or 3 and NP <= 2). */
#if NP == 1
#define HW(h) (V(h, 0) == EXCLUSIVE)
#define HR(h) (V(h, 0) != INVALID)
#else
#define HW(h) (V(h, 0) == EXCLUSIVE || V(h, 1) == EXCLUSIVE)
#define HR(h) (V(h, 0) != INVALID || V(h, 1) != INVALID)
#endif
#if NH == 2
#define SWMR (CUT(0) || CUT(1) || !(HW(0) && HR(1)) && !(HW(1) && HR(0)))
#else
/* (3 hosts: no LOSS or RESTART, nobody is cut) */
#define SWMR (!(HW(0) && (HR(1) || HR(2))) && !(HW(1) && (HR(0) || HR(2))) && \
              !(HW(2) && (HR(0) || HR(1))))
#endif
/* stored-latest: a page the server knows no owner of has the latest write stored (no write
 * handed back to the server, or kept at a ghost that wrote it back, is lost; the writes the
 * protocol gives up are those the ghost stops counting: see LOSS and RESTART) */
#define STORED (owner != NONE || sdata == latest)

/* The monitor can move in any state where a property is false: every reachable state is
 * checked. */
active proctype monitor() {
  end: atomic { !(SWMR && STORED) -> assert(SWMR); assert(STORED) }
}

/* ---------------------------------------------------------------------------------------
 * The server (server/directory.c). Each handler runs to completion: the server is one
 * event loop (srv_dir_* are called from it and never re-enter).
 * ------------------------------------------------------------------------------------- */

/* send_msg: a message to a connection whose agent end is gone is lost (with RESTART the
 * restarted server sends only to the new nodes, and the crashed one sends nothing) */
#ifdef LOSS
#define SEND(nd, o, a, b, c, d) if :: closed[nd] -> skip :: else -> toA[nd]!o(a, b, c, d) fi
#else
#define SEND(nd, o, a, b, c, d) toA[nd]!o(a, b, c, d)
#endif

/* grant_page + grant: the reply to READ_DATA / ACQUIRE */
inline grant(n, m, ver) {
  if
  :: m == SHARED ->
     sharer[n] = 1;
     if :: owner == n -> owner = NONE :: else -> skip fi;   /* "lost track of its copy" */
     SEND(n, GRANT, SHARED, version, ver != version, sdata)
  :: m == EXCLUSIVE && owner == n ->
     last_writer = n;
     SEND(n, GRANT, EXCLUSIVE, version, 0, sdata)            /* immediate, no data */
  :: m == EXCLUSIVE && owner != n ->
     hasdata = (sharer[n] == 0 && ver != version);
#ifdef MUTANT_MIGR_BOOK_BY_OP
     if
     :: rd -> sharer[n] = 1                  /* the mistake: a READ_DATA's bookkeeping */
     :: else ->
#endif
     for (si : 0 .. NN - 1) { sharer[si] = 0 }               /* sharers_clear */
     version++;                                              /* bump_version */
     owner = n;                                              /* set_owner */
#ifdef MUTANT_MIGR_BOOK_BY_OP
     fi;
#endif
     last_writer = n;
     SEND(n, GRANT, EXCLUSIVE, version, hasdata, sdata)
  fi
}

/* grantable: SHARED while nobody else owns it; EXCLUSIVE when held by nobody else (a ghost
 * owner is somebody else) */
#ifdef MUTANT_GHOST_NOT_BLOCKING
#define FREE(n) (owner == NONE || owner == (n) || owner == GHOST)  /* the mistake */
#else
#define FREE(n) (owner == NONE || owner == (n))
#endif
#define GRANTABLE(n, m) \
  ((m) == SHARED && FREE(n) || (m) == EXCLUSIVE && FREE(n) && held_by_others == 0)

inline others(n) {
  held_by_others = 0;
  for (si : 0 .. NN - 1) { if :: si != n && sharer[si] -> held_by_others = 1 :: else -> skip fi }
}

/* migratory_note, at a request's first start (the model's start is only ever its first:
 * advance grants directly): an ACQUIRE by a sharer while at most one other node has a copy
 * and another node wrote last marks the page; an ACQUIRE with more copies about unmarks it;
 * a READ_DATA of a marked page owned by another node runs as an ACQUIRE and is granted
 * EXCLUSIVE (the requester has the segment attached writable: the model's processes all
 * do). rd remembers the op (a READ_DATA), which the reply keeps. */
inline migratory_note(n, m) {
  rd = (m == SHARED);
  nsh = 0;
  for (si : 0 .. NN - 1) { nsh = nsh + sharer[si] }
  if
  :: m == EXCLUSIVE && sharer[n] && nsh <= 2 && last_writer != NONE && last_writer != n ->
     migratory = 1
  :: m == EXCLUSIVE && nsh > 2 -> migratory = 0
  :: m == SHARED && migratory && owner != n && owner != NONE && owner != GHOST -> m = EXCLUSIVE
  :: else -> skip
  fi
}

/* start: grant at once, or open a transaction and RECALL the owner */
inline start(n, m, ver) {
  migratory_note(n, m);
  others(n);
#ifdef ERRS
  /* out of memory (grant's page or sharer slot, the transaction's calloc): refused before
   * anything changed */
  if :: nerr < MAXERR -> nerr++; refused = 1; SEND(n, REFUSED, 0, 0, 0, 0) :: skip fi;
#endif
  if
  :: refused -> skip
  :: !refused && (GRANTABLE(n, m)) -> grant(n, m, ver)
  :: !refused && !(GRANTABLE(n, m)) ->
     txn = 1; t_node = n; t_mode = m; t_ver = ver; t_rd = rd; inval_started = 0;
     if
#ifdef RESTART
     /* the ghost's "RECALL" goes to no connection: the transaction waits for ghost_end */
#ifdef MUTANT_GHOST_NOT_BLOCKING
     :: owner == GHOST -> advance()
#else
     :: owner == GHOST -> recall_node = GHOST
#endif
#endif
     :: owner != NONE && owner != GHOST && owner != n ->
        recall_node = owner;
#ifdef MUTANT_MIGR_RECALL_BY_OP
        /* the mistake: the mode to keep from the op, not from the mode to grant */
        SEND(owner, RECALL, (rd -> SHARED : INVALID), 0, 0, 0)
#else
        SEND(owner, RECALL, (m == SHARED -> SHARED : INVALID), 0, 0, 0)  /* the mode to keep */
#endif
     :: else -> advance()
     fi
  fi
}

/* advance: after the recall, INVALIDATE the other sharers; grant when nothing is pending.
 * A request whose node went away (t_node NONE) is dropped instead (req_free). */
inline advance() {
  if
  :: recall_node != NONE -> skip
  :: else ->
     if
     :: t_mode == EXCLUSIVE && !inval_started ->             /* invalidate_others */
        inval_started = 1;
        nsh = 0;
        for (si : 0 .. NN - 1) { nsh = nsh + sharer[si] }
        if
        :: t_node != NONE && nsh > 0 ->                      /* nobody to grant to: nobody to ask */
#ifdef ERRS
           if
           /* its list's malloc fails: the request is refused, the transaction ends (after
            * the RECALL it may have made) */
           :: nerr < MAXERR -> nerr++; refused = 1
           :: true ->
#endif
           for (si : 0 .. NN - 1) {
             if :: si != t_node && sharer[si] -> inval[si] = 1; SEND(si, INVALIDATE, INVALID, 0, 0, 0)
                :: else -> skip fi
           }
#ifdef ERRS
           fi
#endif
        :: else -> skip
        fi
     :: else -> skip
     fi;
     pending = 0;
     for (si : 0 .. NN - 1) { pending = pending + inval[si] }
#ifdef MUTANT_GRANT_EARLY
     /* the mistake: grant without waiting for the INVALIDATE_ACKs; forget them */
     for (si : 0 .. NN - 1) { inval[si] = 0; sharer[si] = 0 }
     pending = 0;
#endif
     if
#ifdef ERRS
     :: refused ->
#ifndef MUTANT_ERR_KEEPS_TXN
        txn = 0;
#endif
        t_rd = 0; SEND(t_node, REFUSED, 0, 0, 0, 0)
#endif
     :: !refused && pending == 0 ->
        txn = 0; rd = t_rd; t_rd = 0;
        if
        :: t_node == NONE -> skip                             /* its node is gone: dropped */
        :: else ->
           others(t_node);
           assert(GRANTABLE(t_node, t_mode));    /* start re-checks rather than trusts it */
           grant(t_node, t_mode, t_ver)
        fi
     :: else -> skip
     fi
  fi
}

/* srv_dir_forget: node fn is gone (its connection closed: lost, or its last detach). */
inline forget(fn, lost) {
  /* its queued requests are dropped; the others keep their order */
  qn = len(queue);
  do
  :: qn > 0 -> queue?qa, qb, qc;
#ifdef MUTANT_DROP_QUEUED
     skip;                               /* the mistake: every queued request of the page goes */
#else
     if :: qa != fn -> queue!qa, qb, qc :: else -> skip fi;
#endif
     qn--
  :: else -> break
  od;
  if
  :: owner == fn ->
     owner = NONE;                       /* an owner's unsent changes are lost; the data stays */
#ifndef MUTANT_RESYNC_KEEPS_VERSION
     version++;                          /* bump_version: under a new version, since the
                                          * owner's copy at the old one may hold them */
#endif
     if :: lost -> latest = sdata :: else -> skip fi  /* (the ghost: they are lost by design) */
  :: else -> skip
  fi;
  if :: last_writer == fn -> last_writer = NONE :: else -> skip fi;
  sharer[fn] = 0;                        /* sharer_del */
  if
  :: txn ->
     if :: t_node == fn -> t_node = NONE :: else -> skip fi;
#ifndef MUTANT_FORGET_KEEPS_RECALL
     if :: recall_node == fn -> recall_node = NONE :: else -> skip fi;  /* answered, no data */
#endif
     inval[fn] = 0;                      /* drop_pending */
     adv = 1                             /* and the transaction moves on */
  :: else -> skip
  fi;
  qa = 0; qb = 0; qc = 0; qn = 0
}

#ifdef RESTART
/* ghost_end: the ghost owner is given up on (set_owner NONE: the record's owner becomes 0);
 * bump_version when its last data never came back, so that a copy at the old version never
 * passes for the server's; a transaction waiting for the ghost's "recall" moves on. */
inline ghost_end(bump) {
  owner = NONE; ghost_tag = NONE;
#ifndef MUTANT_GHOST_END_KEEPS_VERSION
  if :: bump -> version++ :: else -> skip fi;
#endif
  if :: txn && recall_node == GHOST -> recall_node = NONE; adv = 1 :: else -> skip fi
}

/* ghost_of: the write-back comes from the ghost's node (its tag), at the version granted */
#ifdef MUTANT_GHOST_WRITEBACK_ANY_VERSION
#define GHOST_OF(n, v) (owner == GHOST && ghost_tag == HOST(n))   /* the mistake */
#else
#define GHOST_OF(n, v) (owner == GHOST && ghost_tag == HOST(n) && (v) == version)
#endif
#endif

/* One message from node n, handled to completion. */
inline handle(n) {
    toS[n]?op, m, ver, hasdata, val;
    if
    :: op == READ_DATA || op == ACQUIRE ->                      /* srv_dir_request */
#ifdef RESTART
       /* the ghost's own node asks for the page: it has nothing newer */
       if :: owner == GHOST && ghost_tag == HOST(n) -> ghost_end(1) :: else -> skip fi;
#endif
       queue!n, m, ver
    :: op == WRITE_DATA ->                                      /* srv_dir_write */
       if
       :: owner == n ->
          sdata = val;
          if
          :: m == EXCLUSIVE -> skip           /* background write-back: stays the owner */
          :: m == SHARED -> owner = NONE; sharer[n] = 1   /* (not sent by the model's agents) */
          :: m == INVALID -> owner = NONE                 /* detach write-back */
          fi
#ifdef RESTART
       /* the ghost's node writes back (the resync's WRITE_DATA mode INVALID): its data is
        * newer than the file's; the version stays */
       :: GHOST_OF(n, ver) -> sdata = val; ghost_end(0)
#endif
#ifdef MUTANT_STALE_WRITEBACK
       :: else -> sdata = val                 /* the mistake: stored without the owner check */
#else
       :: else -> skip                        /* not the owner (a recall or a forget came
                                               * first): ignored */
#endif
       fi
    :: op == RECALL_ACK ->                                      /* srv_dir_recall_ack */
       if
       :: txn && recall_node == n ->
          if
          :: owner == n ->
             if
             :: hasdata ->
                if :: migratory && sdata == val -> migratory = 0   /* given back unchanged */
                   :: else -> skip fi;
                sdata = val
             :: else -> skip
             fi;
             owner = NONE;
#ifndef MUTANT_NO_RECALL_SHARER
             if :: t_mode == SHARED -> sharer[n] = 1 :: else -> skip fi;
#endif
          :: else -> skip
          fi;
          recall_node = NONE;
          adv = 1
       :: else -> skip
       fi
    :: op == INVALIDATE_ACK ->                                  /* srv_dir_invalidate_ack */
       if
#ifdef MUTANT_INVAL_ONE_ACK
       /* the mistake: the INVALIDATEs outstanding kept as one flag (not drop_pending's
        * list): the first INVALIDATE_ACK ends the wait, and the sharers asked go with it */
       :: txn && inval[n] ->
          for (si : 0 .. NN - 1) { if :: si != t_node -> inval[si] = 0; sharer[si] = 0 :: else -> skip fi };
          adv = 1
#else
       :: txn && inval[n] -> inval[n] = 0; sharer[n] = 0; adv = 1     /* drop_pending, sharer_del */
#endif
       :: else -> skip
       fi
    :: op == DETACH_SEGMENT -> forget(n, 0)   /* srv_att_detach: the node's last attachment */
#ifdef RESTART
    /* on_node with RESUMED -> srv__server_node_resumed -> srv_dir_end_ghosts(tag): the node
     * re-registered and wrote back; what it still holds as a ghost it has nothing newer of */
    :: op == NODE_RESUMED ->
       if :: owner == GHOST && ghost_tag == HOST(n) -> ghost_end(1) :: else -> skip fi
#endif
    fi;
    if :: adv -> advance() :: else -> skip fi   /* (one copy of advance in the handler) */
}

/* Locals are reset after each step so that dead values do not multiply the states. */
#define SRV_CLEAR n = 0; si = 0; m = 0; ver = 0; val = 0; pending = 0; held_by_others = 0; \
  hasdata = 0; op = 0; adv = 0; rd = 0; nsh = 0; refused = 0

#if NN == 4
#define RECEIVABLE (len(toS[0]) > 0 || len(toS[1]) > 0 || len(toS[2]) > 0 || len(toS[3]) > 0)
#elif NN == 3
#define RECEIVABLE (len(toS[0]) > 0 || len(toS[1]) > 0 || len(toS[2]) > 0)
#else
#define RECEIVABLE (len(toS[0]) > 0 || len(toS[1]) > 0)
#endif

proctype server() {
  byte n, si, m, ver, val, pending, held_by_others, qa, qb, qc, qn, nsh;
  bit hasdata, adv, rd;
  mtype op;
  end: do
  /* the next message of any connection (one copy of the handler: a smaller pan.c) */
  :: atomic { RECEIVABLE ->
       if
       :: len(toS[0]) > 0 -> n = 0
       :: len(toS[1]) > 0 -> n = 1
#if NN >= 3
       :: len(toS[2]) > 0 -> n = 2       /* host 2's, or LOSS's and RESTART's new nodes */
#endif
#if NN >= 4
       :: len(toS[3]) > 0 -> n = 3
#endif
       fi;
       handle(n); SRV_CLEAR }
#ifdef LOSS
  /* the close of node 1's connection is read (srv conn teardown -> srv_att_detach_all ->
   * srv_dir_forget); what it sent and was not read is lost */
  :: atomic { closed[1] && !sclosed[1] ->
       do :: nempty(toS[1]) -> toS[1]?op, m, ver, hasdata, val :: empty(toS[1]) -> break od;
       sclosed[1] = 1; n = 1; forget(n, 1);
       if :: adv -> advance() :: else -> skip fi;
       SRV_CLEAR }
#endif
#ifdef RESTART
  /* The server crashes once, at any moment (SIGKILL, a bug; the machine stays up), and is
   * restarted with --data-dir. What it had not read is lost, and both connections close
   * (each agent sees it later, after what had reached it: up_lost); its memory (sharers,
   * transaction, queue) goes. The segment's file is a MAP_SHARED mapping, so every store
   * survives: the data (every WRITE_DATA, RECALL_ACK store), and the page record, written by
   * set_owner and bump_version at each change: the version and the tag of the owner. The
   * restart (srv_persist_load, page_get) takes the version from the record and makes a
   * recorded owner the ghost. */
  :: atomic { !crashed -> crashed = 1;
       do :: nempty(toS[0]) -> toS[0]?op, m, ver, hasdata, val :: empty(toS[0]) -> break od;
       do :: nempty(toS[1]) -> toS[1]?op, m, ver, hasdata, val :: empty(toS[1]) -> break od;
       if :: owner != NONE -> ghost_tag = HOST(owner); owner = GHOST :: else -> skip fi;
       for (si : 0 .. NN - 1) { sharer[si] = 0; inval[si] = 0 };
       txn = 0; t_node = 0; t_mode = 0; t_ver = 0; recall_node = NONE; inval_started = 0;
       do :: nempty(queue) -> queue?qa, qb, qc :: empty(queue) -> break od;
       qa = 0; qb = 0; qc = 0; SRV_CLEAR }
  /* on_grace -> srv__server_end_grace -> srv_dir_end_ghosts(0), at any moment after the
   * restart: the ghost's host did not write the page back in time, its writes since its
   * last write-back are lost by design (`latest` takes the file's data) */
  :: atomic { owner == GHOST -> latest = sdata; ghost_end(1);
       if :: adv -> advance() :: else -> skip fi;
       SRV_CLEAR }
#endif
  /* kick: start queued requests while the page has no transaction */
  :: atomic { !txn && nempty(queue) -> queue?n, m, ver; start(n, m, ver); SRV_CLEAR }
  od
}

/* ---------------------------------------------------------------------------------------
 * The host agent (agent/hostseg.c)
 * ------------------------------------------------------------------------------------- */

/* agent_up_send: with RESTART, what the agent sends on its old connection after the crash
 * is lost (it has not seen the close yet) */
#ifdef RESTART
#define ASEND(h, o, a, b, c, d) \
  if :: crashed && conn[h] < 2 -> skip :: else -> toS[conn[h]]!o(a, b, c, d) fi
#else
#define ASEND(h, o, a, b, c, d) toS[conn[h]]!o(a, b, c, d)
#endif

/* revoke_finish: every told process answered: answer the server, the data copied now */
inline finish() {
    for (p : 0 .. NP - 1) { assert(V(h, p) <= keep) }  /* no view above the host's mode */
#ifdef RECONNECT
    if :: was_ex -> owed[h] = 1 :: else -> skip fi;     /* owed until the next grant */
    if
    :: local_only -> skip                               /* the connection is gone: nobody */
    :: else ->
#endif
    if
    :: rop == RECALL ->
#ifdef MUTANT_NO_RECALL_DATA
       ASEND(h, RECALL_ACK, keep, hver[h], 0, 0)
#else
       ASEND(h, RECALL_ACK, keep, hver[h], was_ex, hdata[h])
#endif
    :: else -> ASEND(h, INVALIDATE_ACK, INVALID, 0, 0, 0)
    fi;
#ifdef RECONNECT
    fi;
#endif
    /* after a revocation to INVALID the bits of the processes told are cleared */
    if :: keep == INVALID -> holders[h] = holders[h] & ~told :: else -> skip fi;
    revoking = 0; rop = 0; keep = 0; told = 0; was_ex = 0; p = 0; waiting = 0; local_only = 0
}

#ifdef PDEATH
#define ALIVE(h, p) (!(pdead && (h) == LH && (p) == 0 && torn))
#else
#define ALIVE(h, p) 1
#endif

/* revoke_go, after the word was lowered: read holders (a separate step: Dekker), then ask
 * every connected process whose bit was set; finish at once when none was */
inline revoke_go() {
     told = holders[h];
     atomic {
       waiting = 0;
       for (p : 0 .. NP - 1) {
         if :: (told & (1 << p)) && ALIVE(h, p) -> loc[h * NP + p]!rop, keep; waiting = waiting | (1 << p)
            :: else -> skip fi
       }
#ifdef MUTANT_ACK_EARLY
       /* the mistake: answer the server at once, local acks are not awaited */
       waiting = 0;
#endif
       p = 0;
#ifdef MUTANT_NO_ACK_IF_NONE
       /* the mistake: a revocation that told no process is never answered */
       if :: waiting == 0 && !local_only -> skip :: waiting == 0 && local_only -> finish() :: else -> skip fi
#else
       if :: waiting == 0 -> finish() :: else -> skip fi
#endif
     }
}

proctype agent(byte h) {
  byte m, ver, val, keep, told, waiting, p, flushes;
  bit hasdata, was_ex, revoking, local_only, reconn, dying;
  mtype op, rop;
  end: do
  /* agent_seg_grant / install: the data into the memfd, THEN the word's MODE */
  :: atomic { toA[conn[h]]?GRANT, m, ver, hasdata, val ->
#ifndef MUTANT_WORD_FIRST
       if :: hasdata -> hdata[h] = val :: else -> skip fi;
#endif
       hver[h] = ver;
#ifdef RECONNECT
       owed[h] = 0;                    /* granted after the server stored what we last sent */
#endif
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
#ifdef ERRS
  /* agent_seg_grant, a reply with a status: the page's word gets ERR (its faults get
   * SIGBUS); the request ends */
  :: atomic { toA[conn[h]]?REFUSED, m, ver, hasdata, val ->
#ifndef MUTANT_ERR_DROPPED
       err[h] = 1; asked[h] = 0; need[h] = 0;
#endif
       m = 0; ver = 0; hasdata = 0; val = 0 }
#endif
  /* agent_seg_revoke -> revoke_start -> revoke_go: store the lower word, THEN read holders */
  :: atomic { !revoking && (toA[conn[h]]?[RECALL] || toA[conn[h]]?[INVALIDATE]) ->
       toA[conn[h]]?rop, keep, ver, hasdata, val; ver = 0; hasdata = 0; val = 0;
       revoking = 1;
       was_ex = (tab[h] == EXCLUSIVE);
       if :: tab[h] > keep -> tab[h] = keep :: else -> skip fi };
     revoke_go()
  /* agent_seg_local_ack: a process's views are down */
#ifdef MUTANT_ACK_FIRST_ONLY
  :: atomic { lack[h]?p -> waiting = 0; p = 0;   /* the mistake: the first answer ends it */
#else
  :: atomic { lack[h]?p -> waiting = waiting & ~(1 << p); p = 0;
#endif
       if :: revoking && waiting == 0 -> finish() :: else -> skip fi }
  /* a fault record from a process (agent_seg_want notes the need) */
  :: atomic { rec[h]?p, m -> if :: m > need[h] -> need[h] = m :: else -> skip fi; p = 0; m = 0 }
  /* request: READ_DATA or ACQUIRE for what is needed, one request in flight */
  :: atomic { asked[h] == 0 && need[h] > tab[h] && budget[h] > 0 && !reconn && !dying && !ERR(h) ->
       budget[h]--; asked[h] = need[h]; need[h] = 0;
       if
       :: asked[h] == SHARED -> ASEND(h, READ_DATA, SHARED, hver[h], 0, 0)
       :: else -> ASEND(h, ACQUIRE, EXCLUSIVE, hver[h], 0, 0)
       fi }
  /* agent_seg_flush: background write-back of a page held EXCLUSIVE, the node keeps it */
  :: atomic { tab[h] == EXCLUSIVE && flushes < MAXFLUSH && !reconn && !dying ->
       flushes++; ASEND(h, WRITE_DATA, EXCLUSIVE, hver[h], 1, hdata[h]) }
#ifdef RECONNECT
  /* up_lost: the connection breaks (LOSS: host 1's, at any moment; RESTART: each host sees
   * the crashed server's close at any later moment). What the server sent and we did not
   * read is lost; the request in flight is kept as a need (agent_seg_lower_all); a
   * revocation under way can no longer be answered and finishes locally. */
#ifdef LOSS
  :: atomic { h == LH && conn[h] == 1 && !reconn && !dying ->
       closed[1] = 1; reconn = 1;
#else
  :: atomic { crashed && conn[h] < 2 && !reconn -> reconn = 1;
#endif
       do :: nempty(toA[conn[h]]) -> toA[conn[h]]?op, m, ver, hasdata, val
          :: empty(toA[conn[h]]) -> break od;
       if :: asked[h] > need[h] -> need[h] = asked[h] :: else -> skip fi;
       asked[h] = 0;
       if :: revoking -> local_only = 1 :: else -> skip fi;
#ifdef MUTANT_NO_RELOWER
       relowered = revoking;           /* that first pass skipped the page being revoked */
#endif
       op = 0; m = 0; ver = 0; hasdata = 0; val = 0 }
  /* agent_seg_lower_all (agent_up_resync_ready, again each time the revocations are done):
   * the page lowered to INVALID on the host, a revocation of our own (local_only) */
#ifdef MUTANT_NO_RELOWER
  :: atomic { reconn && !revoking && tab[h] != INVALID && !relowered -> relowered = 1;
#else
  :: atomic { reconn && !revoking && tab[h] != INVALID ->
#endif
       rop = INVALIDATE; keep = INVALID; local_only = 1; revoking = 1;
       was_ex = (tab[h] == EXCLUSIVE); tab[h] = INVALID };
     revoke_go()
  /* finish_reconnect -> agent_seg_resync, once every local view is down: WRITE_DATA (mode
   * INVALID) of an owed page at its version, then the page counts as never held; then
   * NODE RESUMED (with LOSS nothing to release: no restart, not modelled) and
   * agent_seg_resume. The calls wait for their replies in the code; the server reads them
   * in order before anything else of the connection, so sending them is the same. */
#ifdef MUTANT_NO_RELOWER
  :: atomic { reconn && !revoking && (tab[h] == INVALID || relowered) ->
#else
  :: atomic { reconn && !revoking && tab[h] == INVALID ->
#endif
       for (p : 0 .. NP - 1) { assert(V(h, p) == INVALID) };  /* every local view is down */
       p = 0;
       reconn = 0;
#ifdef LOSS
       conn[h] = 2;
#else
       conn[h] = 2 + h;
#ifdef MUTANT_RESUMED_FIRST
       toS[conn[h]]!NODE_RESUMED(0, 0, 0, 0);   /* the mistake: before the write-back */
#endif
#endif
       if
       :: owed[h] && hver[h] != 0 -> toS[conn[h]]!WRITE_DATA(INVALID, hver[h], 1, hdata[h]);
#if !defined(MUTANT_RESYNC_KEEPS_VERSION) && !defined(MUTANT_GHOST_END_KEEPS_VERSION)
          hver[h] = 0            /* the server may not have it: fetched whole next time */
#endif
       :: else -> skip
       fi;
#if defined(RESTART) && !defined(MUTANT_RESUMED_FIRST)
       toS[conn[h]]!NODE_RESUMED(0, 0, 0, 0);
#endif
       owed[h] = 0 }
#ifdef LOSS
  /* give_up: the reconnect window closed; the agent stops */
  :: atomic { reconn -> gaveup[h] = 1 }; break
#endif
#endif
#ifdef PDEATH
  /* proc_gone: the process's connection closed (after its last messages): what it owed
   * counts as answered (agent_seg_local_ack), then its detach, the host's last
   * (agent_seg_detach: a revocation under way is answered now, the EXCLUSIVE page written
   * back with WRITE_DATA mode INVALID, then DETACH_SEGMENT on the same FIFO) */
  :: atomic { h == LH && pdead && !torn && empty(lack[h]) && empty(rec[h]) -> torn = 1;
       do :: nempty(loc[h * NP]) -> loc[h * NP]?op, m :: empty(loc[h * NP]) -> break od;
       op = 0; m = 0;
       if
       :: revoking && (waiting & 1) -> waiting = waiting & ~1;
          if :: waiting == 0 -> finish() :: else -> skip fi
       :: else -> skip
       fi;
       if
       :: NP == 1 && !reconn ->
          dying = 1; asked[h] = 0; need[h] = 0;   /* its grant is dropped (seg_free) */
          if :: revoking -> finish() :: else -> skip fi;
#ifndef MUTANT_NO_DETACH_WRITEBACK
          if
          :: tab[h] == EXCLUSIVE ->                  /* write_back_all */
             tab[h] = INVALID; toS[conn[h]]!WRITE_DATA(INVALID, hver[h], 1, hdata[h])
          :: else -> skip
          fi;
#endif
          toS[conn[h]]!DETACH_SEGMENT(0, 0, 0, 0)
       :: else -> skip
       fi }
#endif
  od
}

/* ---------------------------------------------------------------------------------------
 * A local process (preload/agentpage.c): NOPS accesses, each a read or a write
 * ------------------------------------------------------------------------------------- */

proctype process(byte h; byte p) {
  byte ops, want, w, keep;
  mtype op;
#if NH == 2
  if :: h == 0 -> ops = NOPS - NOPS0 :: else -> skip fi;   /* (fewer for host 0: NOPS0) */
#else
  if :: h == 0 -> ops = NOPS - NOPS0 :: h == 2 -> ops = NOPS - NOPS2 :: else -> skip fi;
#endif
  do
  /* the next access: a read (SHARED) or a write (EXCLUSIVE) */
#ifdef READERS
  /* (a host in the mask READERS only reads: a bound of the 3-host runs) */
  :: ops < NOPS && want == 0 ->
     if :: want = SHARED :: ((READERS >> h) & 1) == 0 -> want = EXCLUSIVE fi
#else
  :: ops < NOPS && want == 0 -> if :: want = SHARED :: want = EXCLUSIVE fi
#endif
  :: ops == NOPS && want == 0 -> break
  /* the bound: its host may ask no more, the process stops (not a deadlock of the code) */
  :: want != 0 && V(h, p) < want && budget[h] == 0 && asked[h] == 0 -> break
  /* the access itself, on a view that allows it */
  :: atomic { want != 0 && V(h, p) >= want ->
       if
#ifdef RECONNECT
       :: want == SHARED -> assert(CUT(h) || hdata[h] == latest)  /* reads the latest write */
       :: want == EXCLUSIVE && wcount < MAXW ->
          assert(CUT(h) || hdata[h] == latest);  /* a write is a read-modify-write */
          wcount++; hdata[h] = wcount;
          if :: KEPT(h) -> latest = wcount :: else -> skip fi     /* a cut host's: lost */
#else
       :: want == SHARED -> assert(hdata[h] == latest)      /* reads the latest write */
       :: want == EXCLUSIVE && latest < MAXW ->
          assert(hdata[h] == latest);          /* a write is a read-modify-write */
          latest++; hdata[h] = latest
#endif
       :: else -> skip
       fi;
       ops++; want = 0 }
  /* shim_agent_fault -> send_record: a fault record (re-sent while nobody asked) */
  :: atomic { want != 0 && V(h, p) < want && tab[h] < want && need[h] < want &&
              asked[h] < want && nfull(rec[h]) && !ERR(h) -> rec[h]!p, want }
#ifdef ERRS
  /* shim_agent_fault finds ERR: SIGBUS; the program's handler ends its accesses (a process
   * killed by it is -DPDEATH's); it stays attached and answers revocations */
  :: want != 0 && V(h, p) < want && ERR(h) -> break
#endif
  /* shim_agent_page_ready -> raise_page / announce: the word allows it: raise the view */
  :: want != 0 && V(h, p) < want && tab[h] >= want && !ERR(h) ->
#ifdef MUTANT_NO_DEKKER
     w = tab[h];                                    /* the mistake: word before bit */
     holders[h] = holders[h] | (1 << p);
#else
     holders[h] = holders[h] | (1 << p);            /* set the bit, THEN read the word */
     w = tab[h];
#endif
     if
     :: (holders[h] & (1 << p)) == 0 -> skip        /* announce: bit cleared, start over */
     /* raise_page maps the page at the host's mode (shim_prot_of(hm)): a read fault on a
      * page the host holds EXCLUSIVE maps it writable */
     :: else -> if :: w > V(h, p) -> V(h, p) = w :: else -> skip fi
     fi;
     w = 0
  /* shim_agent_lower: a local INVALIDATE/RECALL: lower the view, then INVALIDATE_ACK */
  :: atomic { loc[h * NP + p]?op, keep ->
       if :: V(h, p) > keep -> V(h, p) = keep :: else -> skip fi;
       lack[h]!p; op = 0; keep = 0 }
#ifdef LOSS
  /* the agent gave up: every view goes, every access gets SIGBUS */
  :: atomic { gaveup[h] -> V(h, p) = INVALID }; break
#endif
#ifdef PDEATH
  /* death (exit, SIGKILL, a crash): the address space, so every view, goes first */
  :: atomic { h == LH && p == 0 && !pdead -> pdead = 1; V(h, p) = INVALID }; goto dead
#endif
  od;
  /* done: the connection stays open and answers every revocation */
  end: do
  :: atomic { loc[h * NP + p]?op, keep ->
       if :: V(h, p) > keep -> V(h, p) = keep :: else -> skip fi;
       lack[h]!p; op = 0; keep = 0 }
  od;
dead: skip
}

#ifdef LIVENESS
/* Every request an agent sends is eventually granted (under weak fairness: pan -a -f); a
 * request its own agent forgot (a loss, a last detach) clears `asked` too. */
#if NH == 2
ltl granted { [] ((asked[0] != 0 -> <> (asked[0] == 0)) && (asked[1] != 0 -> <> (asked[1] == 0))) }
#else
ltl granted { [] ((asked[0] != 0 -> <> (asked[0] == 0)) && (asked[1] != 0 -> <> (asked[1] == 0)) &&
                  (asked[2] != 0 -> <> (asked[2] == 0))) }
#endif
#endif

init {
  byte h, p;
  atomic {
    run server();
    for (h : 0 .. NH - 1) {
      conn[h] = h;
#if NH == 2
      budget[h] = (h == 0 -> MAXREQ0 : MAXREQ);
#else
      budget[h] = (h == 0 -> MAXREQ0 : (h == 2 -> MAXREQ2 : MAXREQ));
#endif
      run agent(h);
      for (p : 0 .. NP - 1) { if :: h == 0 || p < NP1 -> run process(h, p) :: else -> skip fi }
    }
  }
}
