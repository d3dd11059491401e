#!/bin/sh
# run.sh - model-checks verify/coherence.pml, verify/netwait.pml and every seeded mutant
# (docs/protocol.md, "The model"). Each run: spin -a, gcc, pan (safety: assertions, the swmr
# monitor (swmr, stored-latest), invalid end states; or liveness under weak fairness), one
# line printed. The configurations of the page protocol: alone (base, and with more accesses
# for migratory grants), host 1's connection lost (LOSS), host 1's process dying (PDEATH),
# the server crashing and restarting with --data-dir, its ghost owner and the grace period
# (RESTART), the server refusing a request (ERRS), two processes on one host (procs2), three
# hosts (three, three-live: -DNH=3, an INVALIDATE to two sharers at once); and
# the wait/wake across hosts (kind "wake": netwait.pml): alone, with two waiters
# (netwait-waiters: -DWAITERS=2), with the writer on the waiter's own host (netwait-local:
# -DLOCAL), with a timed waiter (netwait-timed: -DTIMED), with a waiter's process killed and
# the writer's process dying (netwait-pdeath: -DPDEATH), and with host B's connection lost
# once and forgotten by the server (netwait-loss: -DLOSS).
# The models must pass in each; every mutant must fail with a counter-example.
# Usage: sh verify/run.sh [WORKDIR]
# env: SPIN_DEFS (the base configuration), LOSS_DEFS, LOSS_LIVE_DEFS, PDEATH_DEFS,
#      PDEATH_LIVE_DEFS, RESTART_DEFS, RESTART_LIVE_DEFS, RESTART_MUT_DEFS, MIGR_DEFS,
#      ERRS_DEFS, ERRS_LIVE_DEFS, PROCS2_DEFS, THREE_DEFS, THREE_LIVE_DEFS, NETWAIT_DEFS,
#      NETWAIT_WAITERS_DEFS, NETWAIT_LOCAL_DEFS, NETWAIT_TIMED_DEFS, NETWAIT_PDEATH_DEFS,
#      NETWAIT_LOSS_DEFS, PAN_DEPTH, VERIFY_LIVENESS (0: no liveness runs),
#      VERIFY_JOBS (runs at once; default 1: on a 2-CPU machine two pan runs at once slow
#      each other down more than they gain).
# To read a counter-example: cd WORKDIR/NAME && spin -t -p $(cat defs) coherence.pml
# or netwait.pml (the trail is MODEL.pml.trail there, beside a copy of the model).
set -u
here=$(cd "$(dirname "$0")" && pwd)
pml=$here/coherence.pml
depth=${PAN_DEPTH:-2000}
safety="swmr,read-latest,stored-latest,ack-below-mode,no-invalid-end"
wake="no-lost-wake,sees-new"
live="granted(weak-fairness)"

# --one WORKDIR NAME DEFS MUTANT|- safety|live|wake: one run; writes WORKDIR/NAME/line and
# WORKDIR/NAME/verdict (0: no error, 1: a counter-example, 2: the run itself failed).
if [ "${1:-}" = --one ]; then
  work=$2 name=$3 defs=$4 mut=$5 kind=$6
  d=$work/$name
  rm -rf "$d"; mkdir -p "$d"
  mdef=""; [ "$mut" != - ] && mdef="-DMUTANT_$mut"
  [ "$kind" = wake ] && pml=$here/netwait.pml
  model=$(basename "$pml")
  if [ "$kind" = live ]; then
    props=$live; ldef=-DLIVENESS; cflags="-DCOLLAPSE -DNFAIR=3"; panflags="-a -f"
  elif [ "$kind" = wake ]; then
    props=$wake; ldef=""; cflags="-DSAFETY -DCOLLAPSE"; panflags=""
  else
    props=$safety; ldef=""; cflags="-DSAFETY -DCOLLAPSE"; panflags=""
  fi
  # A mutant's run stops at its first counter-example: compiling pan quickly pays more
  # than compiling it well (-O2 takes up to 15 s, -O0 3 s).
  opt=-O2; [ "$mut" != - ] && opt=-O0
  cp "$pml" "$d/$model"
  echo "$defs $mdef $ldef" >"$d/defs"
  fail() { echo "verify: $name: $1" >"$d/line"; echo 2 >"$d/verdict"; exit 0; }
  (cd "$d" && spin $defs $mdef $ldef -a "$model" >spin.log 2>&1 &&
     gcc $opt $cflags -o pan pan.c >gcc.log 2>&1) || fail "spin/gcc failed (see $d)"
  t0=$(date +%s.%N)
  (cd "$d" && ./pan $panflags -m"$depth" >pan.log 2>&1)
  t1=$(date +%s.%N)
  out=$d/pan.log
  grep -q "Full statespace search" "$out" || grep -q "errors:" "$out" ||
    fail "pan did not finish (see $out)"
  states=$(awk '/states, stored/ {print $1; exit}' "$out")
  mem=$(awk '/total actual memory usage/ {print $1; exit}' "$out")
  errs=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | head -1)
  secs=$(echo "$t1 $t0" | awk '{printf "%.1f", $1 - $2}')
  if grep -q "max search depth too small" "$out"; then trunc=" (depth-bounded at $depth)"; else trunc=""; fi
  if [ "${errs:-1}" = 0 ]; then res=ok; v=0; else
    why=$(grep -m1 -E "assertion violated|invalid end state|acceptance cycle" "$out" |
          sed 's/^pan:[0-9]*: *//; s/ (at depth.*//')
    case $kind$why in
      wake*"invalid end state"*) prop=no-lost-wake ;;
      wake*"assertion violated"*) prop=sees-new ;;
      *"view["*"<=keep"*|*"view["*"==0"*) prop=ack-below-mode ;;
      *"hdata[h]==latest"*) prop=read-latest ;;
      *"sdata==latest"*) prop=stored-latest ;;
      *"view["*"==2"*) prop=swmr ;;
      *"invalid end state"*) prop=no-invalid-end ;;
      *"acceptance cycle"*) prop=granted ;;
      *) prop="?" ;;
    esac
    res="counter-example ($prop), trail in $d"; v=1
  fi
  printf 'verify: %-34s props=%s states=%s mem=%sMB time=%ss%s: %s\n' \
    "$name" "$props" "$states" "$mem" "$secs" "$trunc" "$res" >"$d/line"
  echo $v >"$d/verdict"
  exit 0
fi

work=${1:-${TMPDIR:-/tmp}/dshm-verify.$$}
# The bounded configurations (docs/protocol.md, "The model", has why these).
# netwait.pml: 2 hold timeouts on host A, 2 spurious wake-ups; with two waiters fewer (its
# header has the bounds).
netwait=${NETWAIT_DEFS:--DMAXSKIP=2 -DMAXSPUR=2}
netwait_waiters=${NETWAIT_WAITERS_DEFS:--DWAITERS=2 -DMAXSKIP=1 -DMAXSPUR=0}
netwait_local=${NETWAIT_LOCAL_DEFS:--DLOCAL -DMAXSPUR=2}
netwait_timed=${NETWAIT_TIMED_DEFS:--DWAITERS=2 -DTIMED -DMAXSKIP=0 -DMAXSPUR=0}
netwait_pdeath=${NETWAIT_PDEATH_DEFS:--DWAITERS=2 -DPDEATH -DMAXSKIP=0 -DMAXSPUR=0}
netwait_loss=${NETWAIT_LOSS_DEFS:--DLOSS -DMAXSKIP=2 -DMAXSPUR=2}
base=${SPIN_DEFS:--DNH=2 -DNP=1 -DNOPS=2 -DMAXW=2 -DMAXREQ=2}
loss=${LOSS_DEFS:--DLOSS -DNH=2 -DNP=1 -DNOPS=1 -DMAXW=1 -DMAXREQ=2 -DMAXREQ0=1}
loss_live=${LOSS_LIVE_DEFS:--DLOSS -DNH=2 -DNP=1 -DNOPS=1 -DMAXW=1 -DMAXREQ=2 -DMAXREQ0=1 -DMAXFLUSH=0}
pdeath=${PDEATH_DEFS:--DPDEATH -DNH=2 -DNP=1 -DNOPS=2 -DMAXW=2 -DMAXREQ=2}
pdeath_live=${PDEATH_LIVE_DEFS:--DPDEATH -DNH=2 -DNP=1 -DNOPS=1 -DMAXW=1 -DMAXREQ=2}
# host 1 takes the page three times: a migratory grant, then a use of it that shows a mistake
migr=${MIGR_DEFS:--DNH=2 -DNP=1 -DNOPS=3 -DNOPS0=2 -DMAXW=2 -DMAXREQ=3 -DMAXREQ0=2}
errs=${ERRS_DEFS:--DERRS -DNH=2 -DNP=1 -DNOPS=2 -DMAXW=2 -DMAXREQ=2}
errs_live=${ERRS_LIVE_DEFS:--DERRS -DNH=2 -DNP=1 -DNOPS=2 -DNOPS0=1 -DMAXW=2 -DMAXREQ=2}
# two processes on host 0, one on host 1, one access each, one request per host
procs2=${PROCS2_DEFS:--DNH=2 -DNP=2 -DNP1=1 -DNOPS=1 -DMAXW=1 -DMAXREQ=1 -DMAXFLUSH=0}
# three hosts, hosts 0 and 2 only reading (READERS=5), one access each; host 1 two accesses,
# so that it can read, then write while both others hold copies: an INVALIDATE to two sharers,
# migratory_note with three; the liveness run with one access for host 1 too
three=${THREE_DEFS:--DNH=3 -DNP=1 -DNOPS=2 -DNOPS0=1 -DNOPS2=1 -DREADERS=5 -DMAXW=1 -DMAXREQ=2 -DMAXREQ0=1 -DMAXREQ2=1 -DMAXFLUSH=0}
three_live=${THREE_LIVE_DEFS:--DNH=3 -DNP=1 -DNOPS=1 -DREADERS=5 -DMAXW=1 -DMAXREQ=1 -DMAXFLUSH=0}
restart=${RESTART_DEFS:--DRESTART -DNH=2 -DNP=1 -DNOPS=1 -DMAXW=1 -DMAXREQ=2 -DMAXREQ0=1}
restart_live=${RESTART_LIVE_DEFS:--DRESTART -DNH=2 -DNP=1 -DNOPS=1 -DMAXW=1 -DMAXREQ=1 -DMAXREQ0=1 -DMAXFLUSH=0}
# its mutants without background write-back: the same counter-examples, found in half the time
restart_mut=${RESTART_MUT_DEFS:--DRESTART -DNH=2 -DNP=1 -DNOPS=1 -DMAXW=1 -DMAXREQ=2 -DMAXREQ0=1 -DMAXFLUSH=0}
liveness=${VERIFY_LIVENESS:-1}
jobs=${VERIFY_JOBS:-1}
mkdir -p "$work"

# The runs, one a line: NAME|DEFS|MUTANT or -|safety or live|model or mutant. The longest
# first, so that runs in parallel (VERIFY_JOBS) end together.
list=$work/runs
{
  [ "$liveness" = 1 ] && echo "coherence-live|$base|-|live|model"
  [ "$liveness" = 1 ] && echo "three-live|$three_live|-|live|model"
  echo "coherence|$base|-|safety|model"
  echo "loss|$loss|-|safety|model"
  echo "pdeath|$pdeath|-|safety|model"
  echo "procs2|$procs2|-|safety|model"
  echo "three|$three|-|safety|model"
  echo "migratory|$migr|-|safety|model"
  echo "errs|$errs|-|safety|model"
  echo "restart|$restart|-|safety|model"
  if [ "$liveness" = 1 ]; then
    echo "errs-live|$errs_live|-|live|model"
    echo "loss-live|$loss_live|-|live|model"
    echo "pdeath-live|$pdeath_live|-|live|model"
    echo "restart-live|$restart_live|-|live|model"
  fi
  for m in GRANT_EARLY ACK_EARLY NO_DEKKER WORD_FIRST NO_RECALL_SHARER NO_RECALL_DATA \
           NO_ACK_IF_NONE MIGR_RECALL_BY_OP; do
    echo "mutant-$m|$base|$m|safety|mutant"
  done
  echo "mutant-MIGR_BOOK_BY_OP|$migr|MIGR_BOOK_BY_OP|safety|mutant"
  echo "mutant-ACK_FIRST_ONLY|$procs2|ACK_FIRST_ONLY|safety|mutant"
  echo "mutant-INVAL_ONE_ACK|$three|INVAL_ONE_ACK|safety|mutant"
  for m in ERR_KEEPS_TXN ERR_DROPPED; do
    echo "mutant-$m|$errs|$m|safety|mutant"
  done
  for m in STALE_WRITEBACK DROP_QUEUED FORGET_KEEPS_RECALL NO_RELOWER RESYNC_KEEPS_VERSION; do
    echo "mutant-$m|$loss|$m|safety|mutant"
  done
  echo "mutant-NO_DETACH_WRITEBACK|$pdeath|NO_DETACH_WRITEBACK|safety|mutant"
  for m in GHOST_NOT_BLOCKING GHOST_WRITEBACK_ANY_VERSION GHOST_END_KEEPS_VERSION RESUMED_FIRST; do
    echo "mutant-$m|$restart_mut|$m|safety|mutant"
  done
  echo "netwait|$netwait|-|wake|model"
  for m in NO_WAKE WAKE_FIRST NO_WAIT_MARK NO_FETCH WORD_ALONE; do
    echo "mutant-$m|$netwait|$m|wake|mutant"
  done
  echo "netwait-waiters|$netwait_waiters|-|wake|model"
  echo "mutant-WAKE_ONE|$netwait_waiters|WAKE_ONE|wake|mutant"
  echo "netwait-local|$netwait_local|-|wake|model"
  for m in HOSTWORD_ALONE TRIM_NO_WAKE; do
    echo "mutant-$m|$netwait_local|$m|wake|mutant"
  done
  echo "netwait-timed|$netwait_timed|-|wake|model"
  echo "mutant-TIMEOUT_CLEARS_WAIT|$netwait_timed|TIMEOUT_CLEARS_WAIT|wake|mutant"
  echo "netwait-pdeath|$netwait_pdeath|-|wake|model"
  for m in PROC_GONE_NO_ACK DEATH_NO_WRITEBACK; do
    echo "mutant-$m|$netwait_pdeath|$m|wake|mutant"
  done
  echo "netwait-loss|$netwait_loss|-|wake|model"
  for m in LOWER_NO_WAKE FAULT_NO_ERR LOWER_DROPS_FETCH FORGET_KEEPS_REVOKE FORGET_KEEPS_QUEUED; do
    echo "mutant-$m|$netwait_loss|$m|wake|mutant"
  done
  if [ "$liveness" = 1 ]; then
    # the liveness check can fail too: a revocation never answered starves the request,
    # and so does a request dropped with another node's
    echo "mutant-NO_ACK_IF_NONE-live|$base|NO_ACK_IF_NONE|live|mutant"
    echo "mutant-DROP_QUEUED-live|$loss_live|DROP_QUEUED|live|mutant"
  fi
} >"$list"

t0=$(date +%s)
# xargs runs them, at most $jobs at once; each writes its own line and verdict.
cut -d'|' -f1-4 "$list" | tr '|' '\n' |
  xargs -d '\n' -n 4 -P "$jobs" sh "$0" --one "$work" 2>/dev/null || true
fail=0; caught=0; n=0; rc=0
while IFS='|' read -r name defs mut kind role; do
  d=$work/$name
  if [ -f "$d/line" ]; then cat "$d/line"; v=$(cat "$d/verdict"); else
    echo "verify: $name: did not run (see $d)"; v=2; fi
  if [ "$role" = model ]; then
    [ "$v" = 0 ] || rc=1
  else
    n=$((n + 1))
    if [ "$v" = 1 ]; then caught=$((caught + 1)); else
      echo "verify: mutant $mut ($kind) was NOT caught: a hole in the model or its properties"
      fail=1
    fi
  fi
done <"$list"
[ $rc = 0 ] || fail=1
[ $rc = 0 ] && verdict="model ok" || verdict="model FAILED"
echo "verify: $verdict, $caught/$n mutants caught ($(( $(date +%s) - t0 )) s, $jobs at once)"
exit $fail
