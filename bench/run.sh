#!/bin/bash
# run.sh: runs native shm, dshm, the loopback TCP floor and Redis in one go and prints them side by side with ratios.
#
# usage: bench/run.sh BUILD_DIR
# Builds nothing: expects BUILD_DIR/bench/{shm_bench,net_bench}, and for the dshm
# column BUILD_DIR/server/dshm-server and BUILD_DIR/preload/libdshm_preload.so.
# Starts its own dshm-server and redis-server on free loopback ports and stops them.
set -u

die() { echo "run.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 BUILD_DIR"
B=$(cd "$1" 2>/dev/null && pwd) || die "no build directory $1"
SHM=$B/bench/shm_bench
NET=$B/bench/net_bench
SERVER=$B/server/dshm-server
SHIM=$B/preload/libdshm_preload.so
[ -x "$SHM" ] && [ -x "$NET" ] || die "build the bench first: ninja -C $B"

TMP=$(mktemp -d /tmp/dshm-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NOTES=()
note() { NOTES+=("$*"); echo "run.sh: $*" >&2; }

# Waits up to 10 s for a line matching $2 in file $1; prints the line.
await_line() {
  local i
  for i in $(seq 100); do
    if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# Every phase is bounded (a normal one takes seconds): a wedged peer must not hang
# the run past its two-minute budget.
phase() {
  local out=$1; shift
  echo "run.sh: $out ..." >&2
  timeout 45 "$@" >"$TMP/$out" 2>"$TMP/$out.err" && return 0
  local rc=$?
  note "$out failed (exit $rc$([ $rc -eq 124 ] && echo ', timed out')): $(tail -n 3 "$TMP/$out.err" | tr '\n' ' ')"
  return 1
}

T_START=$(date +%s)

phase tcp "$NET" tcp-rtt && phase tcp-x "$NET" tcp-rtt-xcpu && cat "$TMP/tcp-x" >>"$TMP/tcp" &&
  phase tcp-b "$NET" tcp-bulk && cat "$TMP/tcp-b" >>"$TMP/tcp"

phase native "$SHM" all

# dshm: the same program, the same arguments, with the shim preloaded.
if [ -x "$SERVER" ] && [ -f "$SHIM" ]; then
  "$SERVER" --port 0 >"$TMP/server.log" 2>&1 &
  PIDS+=($!)
  line=$(await_line "$TMP/server.log" 'listening on') || true
  port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' <<<"$line")
  if [ -n "$port" ]; then
    phase dshm env DSHM_SERVER="127.0.0.1:$port" LD_PRELOAD="$SHIM" "$SHM" all ||
      note "dshm-server $(kill -0 "${PIDS[-1]}" 2>/dev/null && echo 'still running' ||
        echo 'had exited'); its log ends: $(tail -n 5 "$TMP/server.log" | tr '\n' ' ')"
  else
    note "dshm-server did not report a port: $(tail -n 3 "$TMP/server.log" | tr '\n' ' ')"
  fi
  kill "${PIDS[-1]}" 2>/dev/null
else
  note "dshm not measured: $SERVER or $SHIM not built"
fi

if command -v redis-server >/dev/null; then
  rport=$("$NET" free-port)
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    >"$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  if await_line "$TMP/redis.log" 'Ready to accept connections' >/dev/null; then
    phase redis "$NET" redis "$rport"
  else
    note "redis-server did not start: $(tail -n 3 "$TMP/redis.log" | tr '\n' ' ')"
  fi
  kill "${PIDS[-1]}" 2>/dev/null
else
  note "Redis not measured: redis-server not installed"
fi

# get FILE NAME FIELD: a figure from "result NAME FIELD=VALUE ..." lines, or empty.
get() {
  [ -f "$TMP/$1" ] || return 0
  awk -v n="$2" -v f="$3" '$1 == "result" && $2 == n {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$TMP/$1"
}
cell() { local v; v=$(get "$@"); printf '%s' "${v:--}"; }

row() { printf '%-38s %12s %12s %12s %12s\n' "$@"; }

# ratio A B: A/B to two significant-ish places, "-" when either is missing.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "" || b == "" || b + 0 == 0) { print "-"; exit }
    r = a / b; printf (r >= 10 ? "%.0fx" : r >= 1 ? "%.1fx" : "%.2fx"), r }'
}

echo
echo "dshm benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
  "$(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n1), Linux $(uname -r)"
echo "all traffic on 127.0.0.1; latencies in microseconds (us), throughput in MB/s (10^6 B/s)"
echo
row "" "native shm" "dshm" "TCP floor" "Redis"
row "read fault, 1 page, median (us)" "$(cell native fault_us median)" "$(cell dshm fault_us median)" \
  "$(cell tcp tcp_rtt_us median)" "$(cell redis redis_getrange_us median)"
row "read fault, 1 page, p99 (us)" "$(cell native fault_us p99)" "$(cell dshm fault_us p99)" \
  "$(cell tcp tcp_rtt_us p99)" "$(cell redis redis_getrange_us p99)"
row "scattered read fault, median (us)" "$(cell native fault_scattered_us median)" \
  "$(cell dshm fault_scattered_us median)" "-" "-"
row "scattered read fault, p99 (us)" "$(cell native fault_scattered_us p99)" \
  "$(cell dshm fault_scattered_us p99)" "-" "-"
row "write ping-pong A->B->A, median (us)" "$(cell native pingpong_us median)" \
  "$(cell dshm pingpong_us median)" "$(cell tcp tcp_rtt_us median)" \
  "$(cell redis redis_pingpong_us median)"
row "write ping-pong A->B->A, p99 (us)" "$(cell native pingpong_us p99)" \
  "$(cell dshm pingpong_us p99)" "$(cell tcp tcp_rtt_us p99)" "$(cell redis redis_pingpong_us p99)"
row "cold sequential read 64 MiB (MB/s)" "$(cell native seqread_MBps value)" \
  "$(cell dshm seqread_MBps value)" "$(cell tcp tcp_bulk_MBps value)" \
  "$(cell redis redis_bulk_MBps value)"
row "sequential fill 64 MiB + detach (MB/s)" "$(cell native fill_MBps value)" \
  "$(cell dshm fill_MBps value)" "$(cell tcp tcp_bulk_MBps value)" \
  "$(cell redis redis_fill_MBps value)"
echo
cat <<'TXT'
read fault, 1 page: a fault that fetches exactly one 4 KiB page (the next page is
  already held, so no read-ahead). scattered: every 64th page, so under dshm each
  fault also fetches the shim's read-ahead (the following pages not held yet).
TCP floor: a 4 KiB echo round trip between two processes pinned to one CPU (all
  latency rows; the same pinned to two CPUs is below) and one 64 MiB stream.
Redis: GETRANGE of one 4 KiB page; ping-pong = SETRANGE + polling GETRANGE;
  bulk = GETRANGE/SETRANGE in 1 MiB chunks, one request at a time.
TXT
echo

echo "TCP 4 KiB round trip across two CPUs: median $(cell tcp tcp_rtt_xcpu_us median) us," \
  "p99 $(cell tcp tcp_rtt_xcpu_us p99) us"
echo

d_f=$(get dshm fault_us median); d_p=$(get dshm pingpong_us median); d_s=$(get dshm seqread_MBps value)
printf '%-38s %12s %12s %12s\n' "ratios (dshm / other)" "vs native" "vs TCP" "vs Redis"
printf '%-38s %12s %12s %12s\n' "read fault, 1 page (median)" \
  "$(ratio "$d_f" "$(get native fault_us median)")" "$(ratio "$d_f" "$(get tcp tcp_rtt_us median)")" \
  "$(ratio "$d_f" "$(get redis redis_getrange_us median)")"
printf '%-38s %12s %12s %12s\n' "ping-pong latency (median)" \
  "$(ratio "$d_p" "$(get native pingpong_us median)")" \
  "$(ratio "$d_p" "$(get tcp tcp_rtt_us median)")" \
  "$(ratio "$d_p" "$(get redis redis_pingpong_us median)")"
printf '%-38s %12s %12s %12s\n' "cold sequential read throughput" \
  "$(ratio "$d_s" "$(get native seqread_MBps value)")" \
  "$(ratio "$d_s" "$(get tcp tcp_bulk_MBps value)")" \
  "$(ratio "$d_s" "$(get redis redis_bulk_MBps value)")"
echo "(latency: >1x means dshm is slower; throughput: <1x means dshm is slower)"

if [ ${#NOTES[@]} -gt 0 ]; then
  echo
  printf 'note: %s\n' "${NOTES[@]}"
fi
echo
echo "raw results ($(($(date +%s) - T_START)) s):"
for f in tcp native dshm redis; do
  [ -f "$TMP/$f" ] && sed "s/^result /$f /" "$TMP/$f"
done
exit 0
