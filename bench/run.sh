#!/bin/bash
# run.sh: runs native shm, dshm (between two hosts and on one), the loopback TCP floor and Redis in one go and prints them side by side with ratios.
#
# usage: bench/run.sh BUILD_DIR
# Builds nothing: expects BUILD_DIR/bench/{shm_bench,net_bench}, BUILD_DIR/bench/relay
# for the delayed-link table (a relay with a fixed one-way delay: the VM has no netem),
# and for the dshm columns BUILD_DIR/server/dshm-server, BUILD_DIR/preload/libdshm_preload.so and
# BUILD_DIR/agent/dshm-agent. Starts its own dshm-server and redis-server on free
# loopback ports and stops them; two host directories (DSHM_AGENT_DIR) stand for two
# hosts, and their agents are stopped at the end too. dshm is agent mode, the shim's only
# mode since direct mode (DSHM_AGENT=0) was removed. Native segments use keys derived
# from this script's pid and are removed at the end whatever happened. The 16-client
# phase adds 16 host directories (16 agents, stopped right after it), the memory per
# connection a second, fresh dshm-server (BUILD_DIR/bench/conn_bench against it), Redis
# at 16 connections redis-benchmark. Writes the raw results to BUILD_DIR/bench/results.txt
# and, with gnuplot, the plot bench/plot.sh draws from them to BUILD_DIR/bench/bench.png.
set -u

die() { echo "run.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 BUILD_DIR"
B=$(cd "$1" 2>/dev/null && pwd) || die "no build directory $1"
SHM=$B/bench/shm_bench
NET=$B/bench/net_bench
SERVER=$B/server/dshm-server
SHIM=$B/preload/libdshm_preload.so
AGENT=$B/agent/dshm-agent
RELAY=$B/bench/relay
CONN=$B/bench/conn_bench
[ -x "$SHM" ] && [ -x "$NET" ] || die "build the bench first: ninja -C $B"

TMP=$(mktemp -d /tmp/dshm-bench.XXXXXX)
HOST_A=$TMP/hostA # one DSHM_AGENT_DIR per "host"
HOST_B=$TMP/hostB
mkdir -m 700 "$HOST_A" "$HOST_B"
HOST_DIRS=("$HOST_A" "$HOST_B") # every host directory of the run (the delayed link adds some)
PIDS=()

# Keys of this run: KEY0 + 0..63 (natively they are removed by number at the end).
KEY0=$((0x64000000 | (($$ & 0xffff) << 8)))
key() { printf '%#x' $((KEY0 + $1)); }

# The agents of our host directories (they detach from us: found by their pid files, and
# killed only if that pid is still a dshm-agent serving one of our directories). With
# arguments, those of the directories given; without, of every one in HOST_DIRS.
stop_agents() {
  local f pid i live d pidfiles=()
  [ $# -gt 0 ] || set -- "${HOST_DIRS[@]}"
  for d in "$@"; do pidfiles+=("$d/*.pid" "$d/*/*.pid"); done
  for i in $(seq 30); do
    live=0
    for f in ${pidfiles[@]}; do
      [ -f "$f" ] || continue
      pid=$(head -c 16 "$f" | tr -dc 0-9)
      [ -n "$pid" ] && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null |
        grep -q "dshm-agent.*$TMP" || continue
      live=1
      kill "$pid" 2>/dev/null
    done
    [ $live -eq 0 ] && return 0
    sleep 0.1
  done
  note "a dshm-agent of $TMP did not stop"
}

cleanup() {
  stop_agents
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for i in $(seq 0 63); do ipcrm -M "$(key "$i")" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NOTES=()
TIMES=() # "phase seconds", for the footer
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

T_START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg) # the VM is shared: say how busy it was
BUDGET=170 # s: the whole run stays within about three minutes

# Every phase is bounded (a normal one takes seconds, PHASE_S at most): a wedged peer
# must not hang the run, and no phase starts or runs past the run's budget.
PHASE_S=45
phase() {
  local out=$1; shift
  local left=$((T_START + BUDGET - $(date +%s)))
  if [ $left -lt 5 ]; then
    note "$out skipped: the run is past its ${BUDGET} s budget"
    return 1
  fi
  echo "run.sh: $out ..." >&2
  local t0=$(date +%s) rc=0
  timeout $((left < PHASE_S ? left : PHASE_S)) "$@" >"$TMP/$out" 2>"$TMP/$out.err" || rc=$?
  TIMES+=("$out $(($(date +%s) - t0))")
  [ $rc -eq 0 ] && return 0
  note "$out failed (exit $rc$([ $rc -eq 124 ] && echo ', timed out')): $(tail -n 3 "$TMP/$out.err" | tr '\n' ' ')"
  return 1
}

# start_listener NAME CMD...: starts CMD in the background (its pid in BG_PID and PIDS, its
# output in $TMP/NAME.log) and writes the port of its "listening on" line to $TMP/NAME.port;
# fails without one. (Not called as $(...): BG_PID and PIDS must be set in this shell.)
BG_PID=
start_listener() {
  local name=$1 line
  shift
  "$@" >"$TMP/$name.log" 2>&1 &
  BG_PID=$!
  PIDS+=($BG_PID)
  line=$(await_line "$TMP/$name.log" 'listening on') || return 1
  sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' <<<"$line" >"$TMP/$name.port"
  [ -s "$TMP/$name.port" ]
}

# The delayed link: one-way delays (us), the shape of its phases (SEG_BYTES STRIDE ROUNDS
# PP_ITERS PP_WARMUP: 16 MiB, 5 fault rounds after the warm-up, 200 round trips after 20)
# and the floor's round trips (tcp-rtt-to ITERS WARMUP).
DELAYS="100 1000"
DL_SHAPE=($((16 << 20)) 64 3 200 20)
DL_RTT=(500 50)
EPORT= # the echo server of the floors, started on first use

# delay_floor D: the raw 4 KiB round trip through a relay of D us to the echo server.
delay_floor() {
  local rp rc=0
  if [ -z "$EPORT" ]; then
    start_listener echo "$NET" echo-server || { note "net_bench echo-server did not start"; return 1; }
    EPORT=$(cat "$TMP/echo.port")
  fi
  if ! start_listener erelay$1 "$RELAY" 0 127.0.0.1 "$EPORT" "$1"; then
    note "relay at $1 us did not start: $(tail -n 3 "$TMP/erelay$1.log" | tr '\n' ' ')"
    return 1
  fi
  rp=$(cat "$TMP/erelay$1.port")
  phase d$1-rtt "$NET" tcp-rtt-to "$rp" "${DL_RTT[@]}" || rc=1
  kill "$BG_PID" 2>/dev/null
  return $rc
}

phase tcp "$NET" tcp-rtt && phase tcp-x "$NET" tcp-rtt-xcpu && cat "$TMP/tcp-x" >>"$TMP/tcp" &&
  phase tcp-b "$NET" tcp-bulk && cat "$TMP/tcp-b" >>"$TMP/tcp"

# The shapes of the agent-mode tests (shm_bench's usage says what each knob is).
TOUCH_BYTES=$((16 << 20)) # first touch: 4096 pages, each touched once a round, 2 rounds timed
MEM_BYTES=$((256 << 20))  # one segment read by MEM_READERS processes of one host
MEM_READERS=4
RV_ROUNDS=200             # revocation samples per K, one fresh page each (64 pages apart)
RV_BYTES=$(((RV_ROUNDS + 2) * 64 * 4096))
RV_KS="1 2 4 8"
F16_N=16                  # concurrent fetch clients, each a host of its own
F16_BYTES=$((64 << 20))   # the segment they share out: 1024 pages each
R16_REQS=100000           # redis-benchmark -c 16 requests
CONN_N=256                # idle connections to a fresh server
# Mutex handoff (SEG_BYTES STRIDE ROUNDS PP_ITERS PP_WARMUP): one page, 200 rounds after 20.
# Each turn holds the lock a few handoffs long (shm_bench says why): 4-5 s between hosts.
MH_SHAPE=(4096 1 1 200 20)

phase native "$SHM" all "$(key 0)"
phase native-semop "$SHM" semop "$(key 5)" # the kernel's SysV semaphores
phase native-mutex "$SHM" mutex "$(key 6)"  # an uncontended process-shared mutex
phase native-rwlock "$SHM" rwlock "$(key 8)" # an uncontended process-shared rwlock
phase native-semt "$SHM" semt "$(key 7)"    # sem_t ping-pong, two processes
phase native-mhandoff "$SHM" mhandoff "$(key 9)" "${MH_SHAPE[@]}" # mutex handoff, two processes
PHASE_S=90 phase native-mem "$SHM" mem "$(key 3)" $MEM_BYTES 64 9 2000 200 $MEM_READERS

# A failed dshm phase: whether the server still runs, what it and the agents logged last.
agent_note() {
  local f
  note "$1: dshm-server $(kill -0 "$spid" 2>/dev/null && echo 'still running' ||
    echo 'had exited'); its log ends: $(tail -n 5 "$TMP/server.log" | tr '\n' ' ')"
  for f in "$HOST_A"/*.log "$HOST_B"/*.log "$HOST_A"/*/*.log "$HOST_B"/*/*.log; do
    [ -f "$f" ] && note "$1: ${f#"$TMP"/} ends: $(tail -n 3 "$f" | tr '\n' ' ')"
  done
}

# dshm: the same program, the same arguments, with the shim preloaded; agent mode between
# two hosts (the first table: segment filled on HOST_A, read on HOST_B; ping-pong's B side
# and revoke's writer on HOST_B) and on one (HOST_A), all against one server.
if [ -x "$SERVER" ] && [ -f "$SHIM" ] && [ -x "$AGENT" ]; then
  "$SERVER" --port 0 >"$TMP/server.log" 2>&1 &
  PIDS+=($!)
  spid=$!
  line=$(await_line "$TMP/server.log" 'listening on') || true
  port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' <<<"$line")
  if [ -n "$port" ]; then
    DSHM=(DSHM_SERVER="127.0.0.1:$port" LD_PRELOAD="$SHIM" DSHM_AGENT_BIN="$AGENT"
      DSHM_AGENT_IDLE_MS=1000)
    ON_A=("${DSHM[@]}" DSHM_AGENT_DIR="$HOST_A")
    ON_B=("${DSHM[@]}" DSHM_AGENT_DIR="$HOST_B")
    PEER_ON_B="SHM_BENCH_PEER_ENV=DSHM_AGENT_DIR=$HOST_B" # pingpong's B, revoke's writer
    # Two hosts: the phases of "all", the segment filled on A and read on B.
    a=$(key 10)
    ok=1
    if phase a2-fill env "${ON_A[@]}" "$SHM" fill "$a"; then
      phase a2-fault env "${ON_B[@]}" "$SHM" fault "$a" || ok=0
      phase a2-seqread env "${ON_B[@]}" "$SHM" seqread "$a" || ok=0
      phase a2-calls env "${ON_B[@]}" "$SHM" calls "$a" || ok=0
    else
      ok=0
    fi
    phase a2-rm env "${ON_A[@]}" "$SHM" rm "$a" || ok=0
    # The same calls on a one-page segment: their cost must not depend on the size.
    a=$(key 13)
    if phase a2-fill1 env "${ON_A[@]}" "$SHM" fill "$a" 4096 1; then
      phase a2-calls1 env "${ON_B[@]}" "$SHM" calls "$a" 4096 1 || ok=0
    else
      ok=0
    fi
    phase a2-rm1 env "${ON_A[@]}" "$SHM" rm "$a" || ok=0
    phase a2-pp env "${ON_A[@]}" "$PEER_ON_B" "$SHM" pingpong "$(key 11)" || ok=0
    # A networked SysV semaphore set (issue 11): semop through host B's agent to the server.
    phase a2-semop env "${ON_B[@]}" "$SHM" semop "$(key 15)" || ok=0
    # Futex-based primitives in a segment (issue 11): an uncontended mutex and rwlock on one
    # host, sem_t ping-pong on one host and between two (every wake crosses hosts), and a
    # mutex handed over in turns between two hosts (every waiter asleep in the lock).
    phase a1-mutex env "${ON_A[@]}" "$SHM" mutex "$(key 16)" || ok=0
    phase a1-rwlock env "${ON_A[@]}" "$SHM" rwlock "$(key 19)" || ok=0
    phase a1-semt env "${ON_A[@]}" "SHM_BENCH_PEER_ENV=DSHM_AGENT_DIR=$HOST_A" "$SHM" semt \
      "$(key 17)" || ok=0
    phase a2-semt env "${ON_A[@]}" "$PEER_ON_B" "$SHM" semt "$(key 18)" || ok=0
    phase a2-mhandoff env "${ON_A[@]}" "$PEER_ON_B" "$SHM" mhandoff "$(key 21)" \
      "${MH_SHAPE[@]}" || ok=0
    cat "$TMP"/a2-{fill,fault,seqread,calls,pp} >"$TMP/dshm2" 2>/dev/null
    # One host. Each agent figure right after its native counterpart: on this shared VM
    # the load moves within a run, and the spinning ping-pong is bimodal with it.
    phase native-pp "$SHM" pingpong "$(key 2)"
    phase a1-pp env "${ON_A[@]}" "$SHM" pingpong "$(key 12)" || ok=0
    phase native-touch "$SHM" touch "$(key 4)" $TOUCH_BYTES 1 3
    phase native-sigsegv "$SHM" sigsegv 0 $TOUCH_BYTES 1 3
    phase a1-touch env "${ON_A[@]}" "$SHM" touch "$(key 13)" $TOUCH_BYTES 1 3 || ok=0
    PHASE_S=90 phase a1-mem env "${ON_A[@]}" \
      SHM_BENCH_RSS="agent=@$HOST_A/*.pid|$HOST_A/*/*.pid server=$spid" \
      "$SHM" mem "$(key 14)" $MEM_BYTES 64 9 2000 200 $MEM_READERS || ok=0
    [ $ok -eq 1 ] || agent_note "dshm"
    # Revocations, native and dshm of one K together: K readers (on A), the writer (on B).
    ok=1
    for k in $RV_KS; do
      rv=($RV_BYTES 64 $RV_ROUNDS 2000 200 $k)
      phase native-rv$k "$SHM" revoke "$(key $((16 + k)))" "${rv[@]}"
      phase a2-rv$k env "${ON_A[@]}" "$PEER_ON_B" "$SHM" revoke "$(key $((32 + k)))" \
        "${rv[@]}" || ok=0
    done
    [ $ok -eq 1 ] || agent_note "dshm, revocations"
    # Page fetches served to F16_N concurrent clients (issue 10): the segment filled on A
    # (its last detach sends the pages home), then F16_N clients, each on a host directory
    # of its own (so an agent of its own: every fetch is a request the server serves), read
    # one word of every page of a disjoint slice, top down (one page per fault), together.
    ok=1
    f16=()
    for i in $(seq 0 $((F16_N - 1))); do f16+=("$TMP/f16-host$i"); done
    mkdir -m 700 "${f16[@]}"
    HOST_DIRS+=("${f16[@]}")
    a=$(key 50)
    if phase f16-fill env "${ON_A[@]}" "$SHM" fill "$a" $F16_BYTES; then
      phase f16-fetch env "${ON_A[@]}" "SHM_BENCH_CLIENT_ENV=DSHM_AGENT_DIR=$TMP/f16-host{}" \
        "$SHM" fetch "$a" $F16_BYTES 64 9 2000 200 $F16_N || ok=0
    else
      ok=0
    fi
    phase f16-rm env "${ON_A[@]}" "$SHM" rm "$a" || ok=0
    [ $ok -eq 1 ] || agent_note "dshm, $F16_N clients"
    stop_agents "${f16[@]}" # sixteen idle agents would weigh on the phases after
    # Two hosts over a delayed link (issue 10; the VM has no netem): a relay with a fixed
    # one-way delay between the agents and the server, fresh host directories (so fresh
    # agents, connected through it), the two-host fault and ping-pong, smaller than above
    # (a round trip costs 2 ms at 1 ms), and the raw 4 KiB round trip through a relay of the
    # same delay to an echo server: the floor of that link.
    if [ -x "$RELAY" ]; then
      ok=1
      i=0
      delay_floor 0 || ok=0 # the relay's own cost, for reference
      for d in $DELAYS; do
        dA=$TMP/d$d-hostA dB=$TMP/d$d-hostB
        mkdir -m 700 "$dA" "$dB"
        HOST_DIRS+=("$dA" "$dB")
        if ! start_listener relay$d "$RELAY" 0 127.0.0.1 "$port" "$d"; then
          note "relay at $d us did not start: $(tail -n 3 "$TMP/relay$d.log" | tr '\n' ' ')"
          ok=0
          continue
        fi
        rpid=$BG_PID rp=$(cat "$TMP/relay$d.port")
        DL=(DSHM_SERVER="127.0.0.1:$rp" LD_PRELOAD="$SHIM" DSHM_AGENT_BIN="$AGENT"
          DSHM_AGENT_IDLE_MS=1000)
        a=$(key $((40 + 2 * i))) pk=$(key $((41 + 2 * i)))
        if phase d$d-fill env "${DL[@]}" DSHM_AGENT_DIR="$dA" "$SHM" fill "$a" "${DL_SHAPE[@]}"
        then
          phase d$d-fault env "${DL[@]}" DSHM_AGENT_DIR="$dB" "$SHM" fault "$a" \
            "${DL_SHAPE[@]}" || ok=0
        else
          ok=0
        fi
        phase d$d-rm env "${DL[@]}" DSHM_AGENT_DIR="$dA" "$SHM" rm "$a" || ok=0
        phase d$d-pp env "${DL[@]}" DSHM_AGENT_DIR="$dA" "SHM_BENCH_PEER_ENV=DSHM_AGENT_DIR=$dB" \
          "$SHM" pingpong "$pk" "${DL_SHAPE[@]}" || ok=0
        stop_agents "$dA" "$dB"
        kill "$rpid" 2>/dev/null
        delay_floor "$d" || ok=0
        i=$((i + 1))
      done
      [ $ok -eq 1 ] || agent_note "dshm, delayed link"
    else
      note "delayed link not measured: $RELAY not built"
    fi
  else
    note "dshm-server did not report a port: $(tail -n 3 "$TMP/server.log" | tr '\n' ' ')"
  fi
  stop_agents
  kill $spid 2>/dev/null
  # The server's memory per idle connection (issue 10): a fresh server, CONN_N connections
  # that complete a host agent's handshake and stay idle, its Pss before and after.
  if [ ! -x "$CONN" ]; then
    note "server memory per connection not measured: $CONN not built"
  elif start_listener cserver "$SERVER" --port 0; then
    phase conn "$CONN" "$(cat "$TMP/cserver.port")" "$BG_PID" $CONN_N ||
      note "conn: the fresh server's log ends: $(tail -n 3 "$TMP/cserver.log" | tr '\n' ' ')"
    kill "$BG_PID" 2>/dev/null
  else
    note "a fresh dshm-server did not start: $(tail -n 3 "$TMP/cserver.log" | tr '\n' ' ')"
  fi
else
  note "dshm not measured: $SERVER, $SHIM or $AGENT not built"
fi

# Redis at 16 connections (the 16-client row): redis-benchmark -c 16, GETRANGE of a 4 KiB
# value, one request in flight per connection (no -P); its --csv line becomes a result line.
redis_c16() {
  local k=dshm-bench:page
  if ! command -v redis-benchmark >/dev/null || ! command -v redis-cli >/dev/null; then
    note "Redis at 16 clients not measured: redis-benchmark or redis-cli not installed"
    return
  fi
  if ! redis-cli -h 127.0.0.1 -p "$rport" SETRANGE $k 4095 x >"$TMP/redis16.set" 2>&1 ||
    ! grep -qx 4096 "$TMP/redis16.set"; then
    note "Redis at 16 clients: SETRANGE $k failed: $(head -c 200 "$TMP/redis16.set")"
    return
  fi
  phase redis16-csv redis-benchmark -h 127.0.0.1 -p "$rport" -c $F16_N -n $R16_REQS --csv \
    GETRANGE $k 0 4095 || return
  # "test","rps","avg_latency_ms",...: the header names the fields of the line after it.
  awk -F, -v c=$F16_N -v n=$R16_REQS '{ gsub(/"/, "") }
    NR == 1 { for (i = 2; i <= NF; i++) h[i] = $i; next }
    $1 ~ /^GETRANGE/ { l = "result redis_getrange_c16_rps value=" $2 " clients=" c " requests=" n
      for (i = 3; i <= NF; i++) { f = h[i]; sub(/_latency_ms$/, "_ms", f); l = l " " f "=" $i }
      print l }' "$TMP/redis16-csv" >"$TMP/redis16"
  [ -s "$TMP/redis16" ] ||
    note "Redis at 16 clients: no GETRANGE line in redis-benchmark's output: $(head -c 300 "$TMP/redis16-csv")"
}

if command -v redis-server >/dev/null; then
  rport=$("$NET" free-port)
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    >"$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  if await_line "$TMP/redis.log" 'Ready to accept connections' >/dev/null; then
    phase redis "$NET" redis "$rport"
    redis_c16
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

TITLE="dshm benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores,\
 $(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n1), Linux $(uname -r)"
echo
echo "$TITLE"
echo "all traffic on 127.0.0.1; latencies in microseconds (us), throughput in MB/s (10^6 B/s)"
echo "load average (1, 5, 15 min): $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
# The first table's dshm column: the two-host phases a2-fill/fault/seqread/calls/pp.
echo "dshm: two hosts, agent mode (segment filled on host A, faulted and read on host B;"
echo "  ping-pong A on host A, B on host B)"
row "" "native shm" "dshm" "TCP floor" "Redis"
row "read fault, 1 page, median (us)" "$(cell native fault_us median)" "$(cell dshm2 fault_us median)" \
  "$(cell tcp tcp_rtt_us median)" "$(cell redis redis_getrange_us median)"
row "read fault, 1 page, p99 (us)" "$(cell native fault_us p99)" "$(cell dshm2 fault_us p99)" \
  "$(cell tcp tcp_rtt_us p99)" "$(cell redis redis_getrange_us p99)"
row "scattered read fault, median (us)" "$(cell native fault_scattered_us median)" \
  "$(cell dshm2 fault_scattered_us median)" "-" "-"
row "scattered read fault, p99 (us)" "$(cell native fault_scattered_us p99)" \
  "$(cell dshm2 fault_scattered_us p99)" "-" "-"
row "write ping-pong A->B->A, median (us)" "$(cell native pingpong_us median)" \
  "$(cell dshm2 pingpong_us median)" "$(cell tcp tcp_rtt_us median)" \
  "$(cell redis redis_pingpong_us median)"
row "write ping-pong A->B->A, p99 (us)" "$(cell native pingpong_us p99)" \
  "$(cell dshm2 pingpong_us p99)" "$(cell tcp tcp_rtt_us p99)" "$(cell redis redis_pingpong_us p99)"
row "cold sequential read 64 MiB (MB/s)" "$(cell native seqread_MBps value)" \
  "$(cell dshm2 seqread_MBps value)" "$(cell tcp tcp_bulk_MBps value)" \
  "$(cell redis redis_bulk_MBps value)"
row "sequential fill 64 MiB + detach (MB/s)" "$(cell native fill_MBps value)" \
  "$(cell dshm2 fill_MBps value)" "$(cell tcp tcp_bulk_MBps value)" \
  "$(cell redis redis_fill_MBps value)"
row "SysV semop, uncontended, median (us)" "$(cell native-semop semop_us median)" \
  "$(cell a2-semop semop_us median)" "$(cell tcp tcp_rtt_us median)" \
  "$(cell redis redis_getrange_us median)"
row "SysV semop, uncontended, p99 (us)" "$(cell native-semop semop_us p99)" \
  "$(cell a2-semop semop_us p99)" "$(cell tcp tcp_rtt_us p99)" \
  "$(cell redis redis_getrange_us p99)"
row "sem_t ping-pong A->B->A, median (us)" "$(cell native-semt semt_pingpong_us median)" \
  "$(cell a2-semt semt_pingpong_us median)" "$(cell tcp tcp_rtt_us median)" "-"
row "mutex handoff A->B->A, median (us)" "$(cell native-mhandoff mhandoff_us median)" \
  "$(cell a2-mhandoff mhandoff_us median)" "$(cell tcp tcp_rtt_us median)" "-"
row "mutex handoff A->B->A, p99 (us)" "$(cell native-mhandoff mhandoff_us p99)" \
  "$(cell a2-mhandoff mhandoff_us p99)" "$(cell tcp tcp_rtt_us p99)" "-"
echo
cat <<'TXT'
read fault, 1 page: a fault that fetches exactly one 4 KiB page (the next page is
  already held, so no read-ahead). scattered: every 64th page, so under dshm each
  fault also fetches the shim's read-ahead (the following pages not held yet).
dshm: the shim's agent mode (its only mode since direct mode was removed on 2026-12-01),
  each "host" an agent directory of its own; one-host figures and more rows follow.
TCP floor: a 4 KiB echo round trip between two processes pinned to one CPU (all
  latency rows; the same pinned to two CPUs is below) and one 64 MiB stream.
Redis: GETRANGE of one 4 KiB page; ping-pong = SETRANGE + polling GETRANGE;
  bulk = GETRANGE/SETRANGE in 1 MiB chunks, one request at a time.
SysV semop: semop -1 then +1 on a set of one semaphore (each timed), by a process on host B;
  natively a system call, under dshm a round trip through the host agent to the server
  (the Redis column: one request, GETRANGE, for scale).
sem_t ping-pong: two process-shared semaphores in a segment; A posts one and sleeps on the
  other, B the reverse (sem_wait: both sleep every round); under dshm A and B on two hosts.
mutex handoff: a process-shared mutex that A and B take in strict turns (a turn word beside
  it), each holding it long enough that the other is asleep in pthread_mutex_lock when it is
  unlocked; a round is two handoffs, each from the holder's unlock to the waiter's return
  from lock (holds excluded); under dshm A and B on two hosts. Turns that found the lock
  held (trylock said EBUSY, so A waited in pthread_mutex_lock), of A's turns:
TXT
echo "  native $(cell native-mhandoff mhandoff_turns contended) of" \
  "$(cell native-mhandoff mhandoff_turns turns), dshm $(cell a2-mhandoff mhandoff_turns contended)" \
  "of $(cell a2-mhandoff mhandoff_turns turns) (${MH_SHAPE[3]} rounds after ${MH_SHAPE[4]})."
echo

echo "TCP 4 KiB round trip across two CPUs: median $(cell tcp tcp_rtt_xcpu_us median) us," \
  "p99 $(cell tcp tcp_rtt_xcpu_us p99) us"
echo

d_f=$(get dshm2 fault_us median); d_p=$(get dshm2 pingpong_us median)
d_s=$(get dshm2 seqread_MBps value)
printf '%-38s %12s %12s %12s\n' "ratios (dshm two hosts / other)" "vs native" "vs TCP" "vs Redis"
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

# ---- the agent-mode tables ----
# trow LABEL CELL...: one row, 12 characters a cell, without the blanks of empty cells.
trow() {
  local l
  l=$(printf '%-38s' "$1")
  shift
  l="$l$(printf ' %12s' "$@")"
  echo "${l%"${l##*[! ]}"}"
}
# num A B: A/B as a plain number, empty when either is missing.
num() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b + 0 != 0) printf "%.4f", a / b }'
}
# sum A B: A+B, empty when either is missing.
sum() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "") printf "%.2f", a + b }'; }
# mib KIB: KiB as MiB, "-" when missing.
mib() { awk -v k="$1" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }'; }
# met RATIO GOAL: yes/no/-.
met() { awk -v r="$1" -v g="$2" 'BEGIN { print (r == "" ? "-" : r + 0 <= g + 0 ? "yes" : "no") }'; }
# met_ge VALUE GOAL: yes/no/- for a goal that is a floor.
met_ge() { awk -v r="$1" -v g="$2" 'BEGIN { print (r == "" ? "-" : r + 0 >= g + 0 ? "yes" : "no") }'; }
or_dash() { printf '%s' "${1:--}"; }
# int0 X: X rounded to an integer, "-" when missing.
int0() { awk -v x="$1" 'BEGIN { if (x == "") print "-"; else printf "%.0f", x }'; }

# The native side of the first-touch goal: a minor fault plus a SIGSEGV round trip.
n_touch=$(sum "$(get native-touch touch_us median)" "$(get native-sigsegv sigsegv_us median)")
n_touch99=$(sum "$(get native-touch touch_us p99)" "$(get native-sigsegv sigsegv_us p99)")
# Host memory: the readers' Pss of the segment, plus the agent.
n_pss=$(get native-mem mem_readers pss_seg_kib)
a_pss=$(get a1-mem mem_readers pss_seg_kib)
a_arss=$(get a1-mem mem_agent rss_kib)
a_apss=$(get a1-mem mem_agent pss_kib)
a_host=$(sum "$a_pss" "$a_arss")
a_host_pss=$(sum "$a_pss" "$a_apss")

r_pp=$(num "$(get a1-pp pingpong_us median)" "$(get native-pp pingpong_us median)")
r_touch=$(num "$(get a1-touch touch_us median)" "$n_touch")
r_mem=$(num "$a_host" "$n_pss")
r_mem_pss=$(num "$a_host_pss" "$n_pss")

echo
echo "dshm, one host: the processes share one dshm-agent"
trow "" "native shm" "agent" "agent/native" "goal"
trow "write ping-pong A->B->A, median (us)" "$(cell native-pp pingpong_us median)" \
  "$(cell a1-pp pingpong_us median)" "$(ratio "$r_pp" 1)" "<= 2x"
trow "write ping-pong A->B->A, p99 (us)" "$(cell native-pp pingpong_us p99)" \
  "$(cell a1-pp pingpong_us p99)" \
  "$(ratio "$(get a1-pp pingpong_us p99)" "$(get native-pp pingpong_us p99)")" ""
trow "first touch, host-held page, med (us)" "$(or_dash "$n_touch")" \
  "$(cell a1-touch touch_us median)" "$(ratio "$r_touch" 1)" "<= 3x"
trow "first touch, host-held page, p99 (us)" "$(or_dash "$n_touch99")" \
  "$(cell a1-touch touch_us p99)" "$(ratio "$(get a1-touch touch_us p99)" "$n_touch99")" ""
trow "  native minor fault, median (us)" "$(cell native-touch touch_us median)" "" "" ""
trow "  native SIGSEGV round trip, med (us)" "$(cell native-sigsegv sigsegv_us median)" "" "" ""
trow "$MEM_READERS readers, $((MEM_BYTES >> 20)) MiB: host memory (MiB)" "$(mib "$n_pss")" \
  "$(mib "$a_host")" "$(ratio "$r_mem" 1)" "<= 1.1x"
trow "  readers' Pss of the segment (MiB)" "$(mib "$n_pss")" "$(mib "$a_pss")" "" ""
trow "  agent RSS (MiB)" "-" "$(mib "$a_arss")" "" ""
trow "  host memory with agent Pss (MiB)" "$(mib "$n_pss")" "$(mib "$a_host_pss")" \
  "$(ratio "$r_mem_pss" 1)" "<= 1.1x"
trow "  server RSS growth (MiB)" "-" "$(mib "$(get a1-mem mem_server growth_kib)")" "" ""
cat <<TXT
ping-pong: native and agent measured one after the other.
first touch: a process reads each page of a ${TOUCH_BYTES} B segment once (2 timed rounds,
  each on a fresh attach) while another process of the host holds it. Native: the sum of
  a minor fault (the same test on kernel shm) and a SIGSEGV round trip (the handler
  mprotects the page back; the retried load finds it mapped).
host memory: the readers' Pss of their mappings of the segment, all attached, plus the
  agent's RSS (the brief's measure; the agent maps none of the pages it moves) or its
  Pss. Native: the readers' Pss.
TXT

echo
echo "dshm, two hosts (segment filled on A, read on B; ping-pong A on A, B on B)"
trow "" "native shm" "agent"
# rem LABEL FIELD NAME: one row of the two-host table.
rem() { trow "$1" "$(cell native "$2" "$3")" "$(cell dshm2 "$2" "$3")"; }
rem "read fault, 1 page, median (us)" fault_us median
rem "read fault, 1 page, p99 (us)" fault_us p99
rem "read fault, 1 page, settled, med (us)" fault_settled_us median
rem "read fault, 1 page, settled, p99 (us)" fault_settled_us p99
rem "scattered read fault, median (us)" fault_scattered_us median
rem "scattered read fault, p99 (us)" fault_scattered_us p99
rem "write ping-pong A->B->A, median (us)" pingpong_us median
rem "write ping-pong A->B->A, p99 (us)" pingpong_us p99
rem "cold sequential read 64 MiB (MB/s)" seqread_MBps value
rem "sequential fill 64 MiB + detach (MB/s)" fill_MBps value
rem "shmget of a key, median (us)" shmget_us median
rem "shmat 64 MiB, median (us)" shmat_us median
rem "shmctl IPC_STAT, median (us)" ipcstat_us median
rem "shmdt 64 MiB, median (us)" shmdt_us median
echo "(the agent column's first rows are the first table's dshm column)"

echo
echo "revocation: a process on host B writes a page that K processes on host A have read;"
echo "B's write-fault latency (us)."
trow "" "native shm" "agent"
for k in $RV_KS; do
  for f in median p99; do
    trow "K = $k, $f" "$(cell native-rv$k revoke_us $f)" "$(cell a2-rv$k revoke_us $f)"
  done
done
# per_holder PREFIX: the least-squares slope of the median over K (us per further holder).
per_holder() {
  local k v pts=""
  for k in $RV_KS; do
    v=$(get "$1$k" revoke_us median)
    pts="$pts $k ${v:-NA}"
  done
  awk -v pts="$pts" 'BEGIN {
    n = split(pts, v, " "); m = 0
    for (i = 1; i + 1 <= n; i += 2) if (v[i + 1] != "NA") { x[++m] = v[i]; y[m] = v[i + 1] }
    if (m < 2) { print "-"; exit }
    for (i = 1; i <= m; i++) { sx += x[i]; sy += y[i] }
    for (i = 1; i <= m; i++) { num += (x[i] - sx / m) * (y[i] - sy / m); den += (x[i] - sx / m) ^ 2 }
    printf "%.1f", num / den }'
}
echo "each further holder adds (least-squares slope of the medians over K = ${RV_KS// /, }):"
echo "  agent $(per_holder a2-rv) us per local process"
echo
echo "two hosts over a delayed link: a relay with a fixed one-way delay between the agents"
echo "and the server (segment filled on A, faulted on B; ping-pong A on A, B on B)"
# dcol D: a column title (us or ms).
dcol() { awk -v d="$1" 'BEGIN { if (d >= 1000 && d % 1000 == 0) printf "%d ms", d / 1000; else printf "%d us", d }'; }
dl_f=("$(get dshm2 fault_us median)") dl_p=("$(get dshm2 pingpong_us median)")
dl_r=("$(get tcp tcp_rtt_us median)") dl_t=("$(dcol 0)")
for d in $DELAYS; do
  dl_f+=("$(get d$d-fault fault_us median)")
  dl_p+=("$(get d$d-pp pingpong_us median)")
  dl_r+=("$(get d$d-rtt tcp_rtt_via_us median)")
  dl_t+=("$(dcol "$d")")
done
dl_rf=() dl_rp=()
for j in "${!dl_t[@]}"; do
  dl_rf+=("$(ratio "${dl_f[$j]}" "${dl_r[$j]}")")
  dl_rp+=("$(ratio "${dl_p[$j]}" "${dl_r[$j]}")")
  dl_f[$j]=$(or_dash "${dl_f[$j]}") dl_p[$j]=$(or_dash "${dl_p[$j]}") dl_r[$j]=$(or_dash "${dl_r[$j]}")
done
trow "one-way delay" "${dl_t[@]}"
trow "read fault, 1 page, median (us)" "${dl_f[@]}"
trow "write ping-pong A->B->A, median (us)" "${dl_p[@]}"
trow "raw 4 KiB RTT through the relay (us)" "${dl_r[@]}"
trow "1-page fault / raw RTT" "${dl_rf[@]}"
trow "ping-pong / raw RTT" "${dl_rp[@]}"
cat <<TXT
0 us: the first table's dshm figures (no relay) and its TCP floor (no relay either).
  Delayed: ${DL_SHAPE[0]} B segment, $((2 * DL_SHAPE[2] - 2)) timed fault rounds, ${DL_SHAPE[3]} ping-pong round trips;
  raw RTT: net_bench tcp-rtt-to through a relay of that delay to an echo server, unpinned,
  ${DL_RTT[0]} round trips. The relay itself (0 us of delay) costs: RTT $(cell d0-rtt tcp_rtt_via_us median) us median.
goals (issue 10): fault/RTT <= 2.0 on loopback, <= 1.2 at >= 200 us RTT; ping-pong/RTT <= 6
  on loopback, <= 4.5 at >= 200 us RTT.
TXT

echo
# The 16-client row and the server's memory per idle connection (issue 10).
f16_pps=$(get f16-fetch fetch_pps value)
r16_rps=$(get redis16 redis_getrange_c16_rps value)
r_f16=$(num "$f16_pps" "$r16_rps")
conn_kib=$(get conn server_conn_kib value)
f16_check="equal: one page moved per fault"
[ "$(get f16-fetch fetch_pps resident_new)" = "$(get f16-fetch fetch_pps pages)" ] ||
  f16_check="NOT equal to the pages read: the figure counts pages read, not pages moved"
echo "$F16_N concurrent clients, 4 KiB pages per second (dshm: each client a host of its own)"
trow "" "dshm" "Redis" "dshm/Redis" "goal"
trow "$F16_N-client page fetches/s" "$(int0 "$f16_pps")" "$(int0 "$r16_rps")" \
  "$(ratio "$r_f16" 1)" ">= 1.5x"
cat <<TXT
dshm: a $((F16_BYTES >> 20)) MiB segment filled on host A; $F16_N clients, each with a
  DSHM_AGENT_DIR (so an agent) of its own, read one word of every page of a disjoint slice
  ($((F16_BYTES / 4096 / F16_N)) pages each) from the top down, started together: the agent reads ahead only
  over following pages not held, so every fault fetches exactly its own page from the
  server. Counted: pages delivered to the clients (slices' top pages, read before the
  start, excepted) over the time from the start to the last client's finish.
  $(cell f16-fetch fetch_pps pages) pages read in $(cell f16-fetch fetch_pps seconds) s; pages that arrived in the clients' hosts meanwhile
  (the views' resident pages, mincore): $(cell f16-fetch fetch_pps resident_new) ($f16_check).
Redis: redis-benchmark -c $F16_N -n $R16_REQS GETRANGE of a 4096-byte value (0 4095), requests/s.
TXT
echo
echo "server memory per idle connection: Pss $(or_dash "$conn_kib") KiB, private" \
  "$(cell conn server_conn_kib private_kib) KiB, RSS $(cell conn server_conn_kib rss_kib) KiB"
cat <<TXT
  the growth of a fresh dshm-server's /proc/PID/smaps_rollup over $(cell conn server_conn_kib conns) connections that
  completed a host agent's handshake (HELLO, NODE) and stay idle, divided by their number
  (the kernel's socket buffers are not in it).
TXT

echo
printf '%-44s %10s %8s %5s\n' "goals (agent mode)" "measured" "goal" "met"
printf '%-44s %10s %8s %5s\n' "local ping-pong / native" "$(ratio "$r_pp" 1)" "<= 2x" \
  "$(met "$r_pp" 2)"
printf '%-44s %10s %8s %5s\n' "first touch / (minor fault + SIGSEGV)" "$(ratio "$r_touch" 1)" \
  "<= 3x" "$(met "$r_touch" 3)"
printf '%-44s %10s %8s %5s\n' "host memory / native (Pss + agent RSS)" "$(ratio "$r_mem" 1)" \
  "<= 1.1x" "$(met "$r_mem" 1.1)"
printf '%-44s %10s %8s %5s\n' "host memory / native (Pss + agent Pss)" "$(ratio "$r_mem_pss" 1)" \
  "<= 1.1x" "$(met "$r_mem_pss" 1.1)"

# Issue 10's goals, every one as a ratio of two medians of this run (two hosts).
echo
g10() { printf '%-52s %9s %9s %5s\n' "$1" "$(ratio "$2" 1)" "$3" "$4"; }
printf '%-52s %9s %9s %5s\n' "goals (issue 10: between hosts)" "measured" "goal" "met"
rtt0=$(get tcp tcp_rtt_us median) bulk=$(get tcp tcp_bulk_MBps value)
f1=$(get dshm2 fault_us median)
# g10_links LABEL PHASE NAME GOAL: LABEL / raw RTT on each delayed link of >= 200 us RTT.
g10_links() {
  local d rtt r
  for d in $DELAYS; do
    rtt=$(get "d$d-rtt" tcp_rtt_via_us median)
    r=$(num "$(get "d$d-$2" "$3" median)" "$rtt")
    if awk -v x="$rtt" 'BEGIN { exit !(x != "" && x + 0 >= 200) }'; then
      g10 "$1 / raw RTT, link of $(int0 "$rtt") us RTT" "$r" "<= $4x" "$(met "$r" "$4")"
    fi
  done
}
r=$(num "$f1" "$rtt0"); g10 "1-page fault / raw 4 KiB RTT, loopback" "$r" "<= 2x" "$(met "$r" 2)"
g10_links "1-page fault" fault fault_us 1.2
r=$(num "$(get dshm2 fault_scattered_us median)" "$f1")
g10 "scattered fault / 1-page fault" "$r" "<= 1.3x" "$(met "$r" 1.3)"
r=$(num "$(get dshm2 pingpong_us median)" "$rtt0")
g10 "ping-pong (two handoffs) / raw RTT, loopback" "$r" "<= 6x" "$(met "$r" 6)"
g10_links "ping-pong" pp pingpong_us 4.5
r=$(num "$(get dshm2 seqread_MBps value)" "$bulk")
g10 "cold sequential read / raw TCP bulk" "$r" ">= 0.5x" "$(met_ge "$r" 0.5)"
r=$(num "$(get dshm2 fill_MBps value)" "$bulk")
g10 "sequential fill + detach / raw TCP bulk" "$r" ">= 0.4x" "$(met_ge "$r" 0.4)"
for c in shmget shmat ipcstat shmdt; do
  r=$(num "$(get dshm2 ${c}_us median)" "$rtt0")
  g10 "$c (64 MiB segment) / raw RTT" "$r" "~1x" "$(met "$r" 1.5)"
  r=$(num "$(get dshm2 ${c}_us median)" "$(get a2-calls1 ${c}_us median)")
  g10 "$c, 64 MiB / 4 KiB segment" "$r" "~1x" "$(met "$r" 1.2)"
done
g10 "$F16_N-client page fetches/s / Redis -c $F16_N" "$r_f16" ">= 1.5x" "$(met_ge "$r_f16" 1.5)"
printf '%-52s %9s %9s %5s\n' "server memory per idle connection" \
  "$(awk -v k="$conn_kib" 'BEGIN { if (k == "") print "-"; else printf "%.1f KiB", k }')" \
  "<= 16 KiB" "$(met "$conn_kib" 16)"
echo "(~1x: met when within 1.5x of one round trip, or 1.2x of the one-page segment's call)"
echo
printf '%-52s %9s %9s %5s\n' "goals (issue 11: waits across hosts)" "measured" "goal" "met"
r=$(num "$(get a1-mutex mutex_ns value)" "$(get native-mutex mutex_ns value)")
g10 "mutex lock+unlock, uncontended, one host / native" "$r" "<= 1.5x" "$(met "$r" 1.5)"
r=$(num "$(get a1-rwlock rwlock_rd_ns value)" "$(get native-rwlock rwlock_rd_ns value)")
g10 "rwlock rdlock+unlock, uncontended, one host / native" "$r" "<= 1.5x" "$(met "$r" 1.5)"
r=$(num "$(get a1-rwlock rwlock_wr_ns value)" "$(get native-rwlock rwlock_wr_ns value)")
g10 "rwlock wrlock+unlock, uncontended, one host / native" "$r" "<= 1.5x" "$(met "$r" 1.5)"
r=$(num "$(get a1-semt semt_pingpong_us median)" "$(get native-semt semt_pingpong_us median)")
g10 "sem_t ping-pong, one host / native" "$r" "-" "-"
r=$(num "$(get a2-semt semt_pingpong_us median)" "$(get dshm2 pingpong_us median)")
g10 "sem_t ping-pong, two hosts / page ping-pong" "$r" "<= 2x" "$(met "$r" 2)"
r=$(num "$(get a2-mhandoff mhandoff_us median)" "$(get dshm2 pingpong_us median)")
g10 "mutex handoff, two hosts / page ping-pong" "$r" "<= 2x" "$(met "$r" 2)"
r=$(num "$(get a2-semop semop_us median)" "$rtt0")
g10 "semop, uncontended / raw RTT" "$r" "~1x" "$(met "$r" 1.5)"

if [ ${#NOTES[@]} -gt 0 ]; then
  echo
  printf 'note: %s\n' "${NOTES[@]}"
fi
echo
echo "seconds per phase: ${TIMES[*]/ /=}" | fold -s -w 90 | sed 's/ *$//'
echo "raw results ($(($(date +%s) - T_START)) s):"
# "PHASE NAME key=value ...": every result line of the run, also kept in the build directory
# (RESULTS) for bench/plot.sh.
for f in tcp native native-semop native-mutex native-rwlock native-semt native-mhandoff native-mem \
  a2-fill a2-fault a2-seqread a2-calls a2-calls1 a2-pp a2-semop a1-mutex a1-rwlock a1-semt a2-semt \
  a2-mhandoff native-pp a1-pp \
  native-touch native-sigsegv a1-touch a1-mem \
  $(for k in $RV_KS; do echo native-rv$k a2-rv$k; done) \
  f16-fill f16-fetch conn redis redis16 \
  d0-rtt $(for d in $DELAYS; do echo d$d-fill d$d-fault d$d-pp d$d-rtt; done); do
  [ -f "$TMP/$f" ] && sed -n "s/^result /$f /p" "$TMP/$f"
done >"$TMP/raw"
cat "$TMP/raw"

# The plot of the main rows (bench/plot.sh, gnuplot): into the build directory with the raw
# results it is drawn from.
RESULTS=$B/bench/results.txt PNG=$B/bench/bench.png
if { echo "# $TITLE"; cat "$TMP/raw"; } >"$RESULTS" 2>"$TMP/results.err"; then
  echo "raw results saved in $RESULTS"
  if ! command -v gnuplot >/dev/null; then
    echo "run.sh: no plot: gnuplot is not installed (make bench-deps installs gnuplot-nox)"
  elif bash "$(dirname "${BASH_SOURCE[0]}")/plot.sh" "$RESULTS" "$PNG" 2>"$TMP/plot.err"; then
    echo "plot: $PNG"
  else
    echo "run.sh: no plot: bench/plot.sh failed: $(tail -n 3 "$TMP/plot.err" | tr '\n' ' ')"
  fi
else
  echo "run.sh: raw results not saved in $RESULTS: $(tr '\n' ' ' <"$TMP/results.err")"
fi
exit 0
