#!/bin/sh
# run.sh - model-checks verify/coherence.pml and every seeded mutant (docs/protocol.md,
# "The model"). Each run: spin -a, gcc, pan (safety: assertions, the swmr monitor, invalid
# end states), one line printed. The model must pass; every mutant must fail with a
# counter-example. Usage: sh verify/run.sh [WORKDIR]   (env: SPIN_DEFS, PAN_DEPTH)
# To read a counter-example: cd WORKDIR/mutant-X && spin -t -p -DMUTANT_X SPIN_DEFS
# /path/to/verify/coherence.pml (the trail is coherence.pml.trail there).
set -u
here=$(cd "$(dirname "$0")" && pwd)
pml=$here/coherence.pml
work=${1:-${TMPDIR:-/tmp}/dshm-verify.$$}
defs=${SPIN_DEFS:--DNH=2 -DNP=1 -DNOPS=2 -DMAXW=2 -DMAXREQ=2}
depth=${PAN_DEPTH:-2000}
mutants="GRANT_EARLY ACK_EARLY NO_DEKKER WORD_FIRST NO_RECALL_SHARER NO_RECALL_DATA NO_ACK_IF_NONE"
safety="swmr,read-latest,ack-below-mode,no-invalid-end"
live="granted(weak-fairness)"
# VERIFY_LIVENESS=0 skips the liveness runs (the longest: about 40 s).
liveness=${VERIFY_LIVENESS:-1}
mkdir -p "$work"
fail=0

# run NAME MUTANT|"" safety|live: prints "NAME props states time memory result"; returns pan's verdict
# (0: no error, 1: a counter-example, 2: the run itself failed).
run() {
  d=$work/$1
  rm -rf "$d"; mkdir -p "$d"
  mdef=""; [ -n "$2" ] && mdef="-DMUTANT_$2"
  if [ "$3" = live ]; then
    props=$live; ldef=-DLIVENESS; cflags="-DCOLLAPSE -DNFAIR=3"; panflags="-a -f"
  else
    props=$safety; ldef=""; cflags="-DSAFETY -DCOLLAPSE"; panflags=""
  fi
  (cd "$d" && spin $defs $mdef $ldef -a "$pml" >spin.log 2>&1 &&
     gcc -O2 $cflags -o pan pan.c >gcc.log 2>&1) || {
    echo "verify: $1: spin/gcc failed (see $d)"; return 2; }
  t0=$(date +%s.%N)
  (cd "$d" && ./pan $panflags -m"$depth" >pan.log 2>&1)
  t1=$(date +%s.%N)
  out=$d/pan.log
  grep -q "Full statespace search" "$out" || grep -q "errors:" "$out" || {
    echo "verify: $1: pan did not finish (see $out)"; return 2; }
  states=$(awk '/states, stored/ {print $1; exit}' "$out")
  mem=$(awk '/total actual memory usage/ {print $1; exit}' "$out")
  errs=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | head -1)
  secs=$(echo "$t1 $t0" | awk '{printf "%.1f", $1 - $2}')
  if grep -q "max search depth too small" "$out"; then trunc=" (depth-bounded at $depth)"; else trunc=""; fi
  if [ "${errs:-1}" = 0 ]; then res=ok; else
    why=$(grep -m1 -E "assertion violated|invalid end state|acceptance cycle" "$out" |
          sed 's/^pan:[0-9]*: *//; s/ (at depth.*//')
    case $why in
      *"view["*"<=keep"*) prop=ack-below-mode ;;
      *"hdata[h]==latest"*) prop=read-latest ;;
      *"view["*"==2"*) prop=swmr ;;
      *"invalid end state"*) prop=no-invalid-end ;;
      *"acceptance cycle"*) prop=granted ;;
      *) prop="?" ;;
    esac
    res="counter-example ($prop), trail in $d"
  fi
  printf 'verify: %-26s props=%s states=%s mem=%sMB time=%ss%s: %s\n' \
    "$1" "$props" "$states" "$mem" "$secs" "$trunc" "$res"
  [ "${errs:-1}" = 0 ] && return 0 || return 1
}

run coherence "" safety; rc=$?
if [ "$liveness" = 1 ]; then run coherence-live "" live || rc=1; fi
[ $rc = 0 ] || fail=1
caught=0; n=0
# mutant NAME MUTANT KIND: the run must give a counter-example
mutant() {
  n=$((n + 1))
  run "$1" "$2" "$3"; r=$?
  if [ $r = 1 ]; then caught=$((caught + 1)); else
    echo "verify: mutant $2 ($3) was NOT caught: a hole in the model or its properties"; fail=1; fi
}
for m in $mutants; do mutant "mutant-$m" "$m" safety; done
# the liveness check can fail too: a revocation never answered starves the request
if [ "$liveness" = 1 ]; then mutant mutant-NO_ACK_IF_NONE-live NO_ACK_IF_NONE live; fi
[ $rc = 0 ] && verdict="model ok" || verdict="model FAILED"
echo "verify: $verdict, $caught/$n mutants caught"
exit $fail
