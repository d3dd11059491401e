#!/bin/bash
# agent-unit.sh SERVER PRELOAD AGENT SHMTOOL SOCKET_UNIT SERVICE_UNIT: the host agent as a
# socket-activated user unit (systemd/dshm-agent@.socket, .service; agent/activate.c), without
# a running systemd. Debian's systemd-socket-activate stands in for the socket unit: it
# listens at the path the library connects to and starts the agent with LISTEN_FDS on the
# first connect; a loop around it keeps the socket across the agent's runs, as systemd does.
#   1. the units pass systemd-analyze verify (with the build's agent in ExecStart);
#   2. programs under the shim (a real dshm-server, a token) are served by the activated
#      agent, and no agent is started on demand; the agent exits idle, its socket file stays,
#      and the next program's connect starts it again (the data still there);
#   3. refusals, each with its message and exit 1, the socket file left alone and the waiting
#      connection closed: a stream socket, a socket at another path, descriptor 3 not a
#      socket, --systemd without a socket, an instance name the library would not use;
#   4. the single-agent lock: an activated agent refuses while an on-demand agent runs, and
#      that agent, stopping, leaves the socket that replaced its own.
# Skips (77) without systemd-socket-activate or python3.
set -u
server=$(realpath "$1") preload=$(realpath "$2") agent=$(realpath "$3") shmtool=$(realpath "$4")
socket_unit=$(realpath "$5") service_unit=$(realpath "$6")
ssa=$(command -v systemd-socket-activate) || { echo "systemd-socket-activate not installed: skipped"; exit 77; }
py=$(command -v python3) || { echo "python3 not installed: skipped"; exit 77; }
T0=$(date +%s%N)

umask 077
tmp=$(mktemp -d /tmp/dshm-agent-unit.XXXXXX)
host=$tmp/host
dir=$host/dshm-$(id -u)
mkdir -m 700 "$host" "$dir"
spid= loop=
pids=()
cleanup() {
  local p
  [ -n "$loop" ] && kill "$loop" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  # Agents of this run only: their pid files are in our directory.
  for p in "$dir"/*.pid; do
    [ -s "$p" ] && kill "$(cat "$p")" 2>/dev/null
  done
  [ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$tmp"/*.log; do echo "--- $f"; tail -20 "$f"; done
  exit 1
}
say() { echo "agent-unit: $*"; }
# until DEADLINE_S CMD...: CMD until it succeeds, or fails after DEADLINE_S seconds.
until_ok() {
  local end=$(( $(date +%s%N) + $1 * 1000000000 ))
  shift
  until "$@"; do
    [ "$(date +%s%N)" -lt "$end" ] || return 1
    sleep 0.02
  done
}
# Whether a SOCK_SEQPACKET (type 0005) socket listens (flag __SO_ACCEPTCON) at PATH.
listening() { awk -v p="$1" '$8 == p && $5 == "0005" && $4 == "00010000" { f = 1 } END { exit !f }' /proc/net/unix; }
gone() { ! kill -0 "$1" 2>/dev/null; }
count() { grep -c -- "$1" "$2" 2>/dev/null; }

# --- the server, a token, the agent's name ---------------------------------------------------
# In the sanitizer build the server and the agents report their leaks (harness.c does the
# same); the programs under the shim get the shim's options (SHIM below).
export ASAN_OPTIONS=detect_leaks=1
. "$(dirname "$0")/server.sh"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/token"
start_server "$server" "$tmp/server.log" --token-file "$tmp/token"
srv="127.0.0.1:$port"
export DSHM_TOKEN_FILE=$tmp/token
unset DSHM_TOKEN
name=$("$agent" --print-name --server "$srv") || fail "dshm-agent --print-name"
[[ $name == agent-127.0.0.1_${port}-t???????? ]] || fail "unexpected name '$name'"
sock=$dir/$name.sock
say "server $srv, agent name $name"
# systemd-socket-activate gives its child an environment of its own, as systemd gives a unit
# its Environment= and EnvironmentFile=: the token setting and the sanitizers' options.
ssa_env=(-E DSHM_TOKEN_FILE -E ASAN_OPTIONS)
[ -n "${UBSAN_OPTIONS:-}" ] && ssa_env+=(-E UBSAN_OPTIONS)

# --- 1. the units -----------------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
  mkdir "$tmp/units" "$tmp/run"
  cp "$socket_unit" "$tmp/units/dshm-agent@.socket"
  # The build's agent in place of the installed one (verify checks it is executable).
  sed "s|^ExecStart=[^ ]*|ExecStart=$agent|" "$service_unit" >"$tmp/units/dshm-agent@.service"
  ln -s dshm-agent@.socket "$tmp/units/dshm-agent@$name.socket"
  ln -s dshm-agent@.service "$tmp/units/dshm-agent@$name.service"
  XDG_RUNTIME_DIR=$tmp/run systemd-analyze --user --man=no verify \
    "$tmp/units/dshm-agent@$name.socket" "$tmp/units/dshm-agent@$name.service" \
    >"$tmp/verify.log" 2>&1 || fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
  [ -s "$tmp/verify.log" ] && fail "systemd-analyze verify complained: $(cat "$tmp/verify.log")"
  grep -qx "ListenSequentialPacket=%t/dshm-%U/%i.sock" "$socket_unit" ||
    fail "the socket unit does not listen at %t/dshm-%U/%i.sock"
  grep -q -- "--systemd --dir %t/dshm-%U --name %i " "$service_unit" ||
    fail "the service does not start the agent with --systemd --dir %t/dshm-%U --name %i"
  say "systemd-analyze verify: clean"
else
  say "systemd-analyze is missing: the units are not verified"
fi

# --- 2. activated, idle exit, activated again ----------------------------------------------------
# On-demand starts would go through this: it leaves a mark, then runs the real agent.
cat >"$tmp/spawned.sh" <<EOF
#!/bin/sh
echo "\$*" >>"$tmp/spawned"
exec "$agent" "\$@"
EOF
chmod 700 "$tmp/spawned.sh"
SHIM=(env DSHM_SERVER="$srv" LD_PRELOAD="$preload" DSHM_AGENT_DIR="$host"
      DSHM_AGENT_BIN="$tmp/spawned.sh" DSHM_AGENT_IDLE_MS=300
      ASAN_OPTIONS=verify_asan_link_order=0:handle_segv=0:allow_user_segv_handler=1:detect_leaks=0)
# systemd's part: the socket, kept across the agent's runs. The outer systemd-socket-activate
# binds it and, on the first connect, runs the loop with it as descriptor 3; each turn hands
# it to an inner one (LISTEN_FDS) that waits for the next connect and execs the agent.
# Stopped (SIGTERM), it stops the turn it runs too, as systemd stops a socket's service.
cat >"$tmp/loop.sh" <<EOF
#!/bin/bash
trap 'kill \$turn 2>/dev/null; wait \$turn; exit 0' TERM
while :; do
  ( export LISTEN_PID=\$BASHPID LISTEN_FDS=1; unset LISTEN_FDNAMES
    exec "$ssa" --seqpacket ${ssa_env[*]} "$agent" --systemd --dir "$dir" --name "$name" --server "$srv" \
      --idle-ms 300 ) 2>>"$tmp/agent.log" &
  turn=\$!
  wait \$turn
  echo "agent exited \$?" >>"$tmp/agent.log"
done
EOF
chmod 700 "$tmp/loop.sh"
"$ssa" -l "$sock" --seqpacket "${ssa_env[@]}" "$tmp/loop.sh" 2>"$tmp/ssa.log" &
loop=$!
until_ok 5 listening "$sock" || fail "systemd-socket-activate does not listen at $sock"

key=$(printf '0x%x' $(( 0x5a700000 + ($$ & 0xffff) * 4 )))
hkey=$(printf '0x%x' $(( key + 1 )))
# A holder keeps one process attached, so that the writer and the reader share one agent.
"${SHIM[@]}" "$shmtool" hold "$hkey" >"$tmp/hold.out" 2>"$tmp/hold.log" &
holder=$!
pids+=("$holder")
until_ok 10 grep -q held "$tmp/hold.out" || fail "the holder did not attach"
"${SHIM[@]}" "$shmtool" fill "$key" 16384 7 >"$tmp/fill.log" 2>&1 || fail "fill under the shim"
"${SHIM[@]}" "$shmtool" verify "$key" 16384 7 >"$tmp/verify1.log" 2>&1 || fail "verify under the shim"
[ -e "$tmp/spawned" ] && fail "the library started an agent itself: $(cat "$tmp/spawned")"
[ "$(count 'socket from systemd' "$tmp/agent.log")" = 1 ] ||
  fail "expected one activated agent for the holder, the writer and the reader"
pid1=$(sed -nE 's/.*dshm-agent\[([0-9]+)\]: serving .*socket from systemd.*/\1/p' "$tmp/agent.log")
[ "$(cat "$dir/$name.pid")" = "$pid1" ] || fail "the pid file does not name the activated agent $pid1"
say "holder, writer and reader served by the activated agent (pid $pid1); none started on demand"

# The last process goes: the agent exits idle; systemd's socket file stays, still listening.
kill "$holder"
until_ok 10 gone "$pid1" || fail "the activated agent did not exit idle"
until_ok 5 grep -q "agent exited 0" "$tmp/agent.log" || fail "the agent's idle exit was not a success"
grep -q "dshm-agent\[$pid1\]: stopping: no local process left" "$tmp/agent.log" ||
  fail "no idle stop in the agent's log"
[ -S "$sock" ] || fail "the agent removed $sock, which systemd made"
until_ok 5 listening "$sock" || fail "nobody listens at $sock after the idle exit"

# The next program's connect starts it again; the segment is still at the server.
"${SHIM[@]}" "$shmtool" verify "$key" 16384 7 >"$tmp/verify2.log" 2>&1 || fail "verify after the restart"
[ -e "$tmp/spawned" ] && fail "the library started an agent itself: $(cat "$tmp/spawned")"
[ "$(count 'socket from systemd' "$tmp/agent.log")" = 2 ] || fail "the second connect did not start the agent again"
pid2=$(sed -nE 's/.*dshm-agent\[([0-9]+)\]: serving .*socket from systemd.*/\1/p' "$tmp/agent.log" | tail -1)
[ "$pid2" != "$pid1" ] || fail "the same agent?"
until_ok 10 gone "$pid2" || fail "the second agent did not exit idle"
grep -Eq "AddressSanitizer|LeakSanitizer|runtime error" "$tmp/agent.log" && fail "sanitizer report in the agent's log"
kill "$loop" 2>/dev/null
wait "$loop" 2>/dev/null
loop=
say "idle exit (pid $pid1), socket kept; the next connect started pid $pid2 and read the data"

# --- 3. refusals --------------------------------------------------------------------------------
# connect_eof PATH TYPE: connects (stream or seqpacket) and waits for the agent to close the
# connection; prints "eof" when it did, "timeout" when it was left waiting.
connect_eof() {
  "$py" - "$1" "$2" <<'EOF'
import socket, sys
t = socket.SOCK_STREAM if sys.argv[2] == "stream" else socket.SOCK_SEQPACKET
s = socket.socket(socket.AF_UNIX, t)
s.connect(sys.argv[1])
s.settimeout(10)
try:
    print("eof" if s.recv(16) == b"" else "data")
except socket.timeout:
    print("timeout")
except ConnectionResetError:
    print("eof")
EOF
}
# refused CASE MESSAGE PATH TYPE SSA_FLAGS AGENT_ARGS...: systemd-socket-activate at PATH
# (SSA_FLAGS) with the agent; a connect starts it; it must exit 1 with MESSAGE in its log,
# close the connection, and leave the socket file.
refused() {
  local case=$1 msg=$2 path=$3 type=$4 flags=$5 p out rc
  shift 5
  rm -f "$path"
  "$ssa" -l "$path" $flags "${ssa_env[@]}" "$agent" "$@" 2>"$tmp/$case.log" &
  p=$!
  pids+=("$p")
  until_ok 5 test -S "$path" || fail "$case: no socket at $path"
  out=$(connect_eof "$path" "$type")
  wait "$p"
  rc=$?
  [ "$rc" = 1 ] || fail "$case: the agent exited $rc, not 1"
  grep -qF -- "$msg" "$tmp/$case.log" || fail "$case: no '$msg' in its log: $(cat "$tmp/$case.log")"
  [ "$out" = eof ] || fail "$case: the waiting connection was not closed ($out)"
  [ -S "$path" ] || fail "$case: the agent removed $path, which it did not make"
  say "$case refused: $(grep -o 'cannot start: .*' "$tmp/$case.log" | head -1)"
}
args=(--systemd --dir "$dir" --name "$name" --server "$srv")
refused stream "is SOCK_STREAM (ListenStream=), not SOCK_SEQPACKET" "$sock" stream "" "${args[@]}"
refused otherpath "not at $sock where the library connects" "$dir/other.sock" seqpacket --seqpacket "${args[@]}"
refused badname "--name agent-bogus is not the library's name for DSHM_SERVER=$srv with DSHM_TOKEN_FILE: $name" \
  "$dir/agent-bogus.sock" seqpacket --seqpacket --systemd --dir "$dir" --name agent-bogus --server "$srv"
# Descriptor 3 a file, not a socket; and --systemd with nothing from systemd.
( export LISTEN_PID=$BASHPID LISTEN_FDS=1; exec "$agent" "${args[@]}" ) 3<"$tmp/token" 2>"$tmp/notsock.log"
rc=$?
[ "$rc" = 1 ] && grep -q "descriptor 3 from systemd is not a socket" "$tmp/notsock.log" ||
  fail "descriptor 3 a file: exit $rc, $(cat "$tmp/notsock.log")"
say "not a socket refused: $(grep -o 'cannot start: .*' "$tmp/notsock.log")"
"$agent" "${args[@]}" 2>"$tmp/nosock.log"
rc=$?
[ "$rc" = 1 ] && grep -q -- "--systemd: no socket from systemd" "$tmp/nosock.log" ||
  fail "--systemd without a socket: exit $rc, $(cat "$tmp/nosock.log")"
[ -e "$dir/$name.pid" ] && [ "$(cat "$dir/$name.pid")" != "$pid2" ] && fail "a refused agent wrote the pid file"
say "--systemd without a socket refused: $(grep -o 'cannot start: .*' "$tmp/nosock.log")"

# --- 4. the lock: an on-demand agent runs; a socket unit then takes the path ----------------------
rm -f "$tmp/spawned"
"${SHIM[@]}" "$shmtool" hold "$hkey" >"$tmp/hold2.out" 2>"$tmp/hold2.log" &
holder=$!
pids+=("$holder")
until_ok 10 grep -q held "$tmp/hold2.out" || fail "the second holder did not attach"
[ -e "$tmp/spawned" ] || fail "no agent was started on demand with nothing listening"
odpid=$(cat "$dir/$name.pid")
# systemd-socket-activate replaces the on-demand agent's socket file with its own.
refused locked "another agent runs for $sock" "$sock" seqpacket --seqpacket "${args[@]}"
kill "$holder"
until_ok 10 gone "$odpid" || fail "the on-demand agent did not exit idle"
[ -S "$sock" ] || fail "the on-demand agent, stopping, removed the socket file that replaced its own"
say "the lock held (activated agent refused); the on-demand agent left systemd's socket file"

say "passed in $(( ($(date +%s%N) - T0) / 1000000 )) ms"
