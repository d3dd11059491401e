#!/bin/bash
# dropped-request.sh SERVER PRELOAD AGENT: a host's page request that the server drops when
# the host's last attachment goes (srv_dir_forget) gets no answer, by design; the agent must
# end it then, not keep it in flight. Host A holds page 0 EXCLUSIVE with its agent stopped
# (SIGSTOP: the RECALL stays unanswered); a process of host B faults on page 0 and is
# SIGKILLed while it waits; its detach is the host's last. Host B's agent, kept up by a
# process attached to another segment, must show no page request in flight afterwards (its
# figures' file, agent/stats.c), and the segment must still work for both hosts. Skips (77)
# without python3, and in the sanitizer build.
set -u
server=$(realpath "$1") preload=$(realpath "$2") agent=$(realpath "$3")
command -v python3 >/dev/null || { echo "python3 not installed: skipped"; exit 77; }
if nm -D --undefined-only "$preload" 2>/dev/null | grep -q "__asan_"; then
  echo "sanitizer build of the shim: python3 is not instrumented; skipped (the release build runs it)"
  exit 77
fi
tmp=$(mktemp -d /tmp/dshm-dropped.XXXXXX)
mkdir -m 700 "$tmp/a" "$tmp/b"
mkfifo "$tmp/a.fifo" "$tmp/keep.fifo"
k0=$(( (0x5e900000 + ($$ & 0xffff) * 16) ))
K1=$(printf '0x%08x' $((k0 + 1))) K2=$(printf '0x%08x' $((k0 + 2)))
spid= apid= wpid= kpid= vpid=
cleanup() {
  [ -n "$apid" ] && kill -CONT "$apid" 2>/dev/null
  for p in $vpid $wpid $kpid; do kill -9 "$p" 2>/dev/null; done
  [ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
. "$(dirname "$0")/server.sh"
start_server "$server" "$tmp/server.log"
SHIM=(env DSHM_SERVER="127.0.0.1:$port" LD_PRELOAD="$preload" DSHM_AGENT_BIN="$agent"
      DSHM_AGENT_IDLE_MS=200)
# wait_for FILE PATTERN: up to 10 s for a line matching PATTERN in FILE.
wait_for() {
  for _ in $(seq 100); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
# A python process under the shim on host $1 (the rest: its program); exec, so that the
# caller's $! (always a subshell: & or $(...)) is the program itself.
py() { local h=$1; shift; exec "${SHIM[@]}" DSHM_AGENT_DIR="$tmp/$h" python3 -c "
import ctypes, sys
l = ctypes.CDLL(None, use_errno=True); l.shmat.restype = ctypes.c_void_p
def seg(key, flg=0o1666):
    i = l.shmget(key, 4 * 4096, flg)
    p = l.shmat(i, None, 0)
    if i < 0 or p in (None, 2**64 - 1): sys.exit('shmget/shmat: errno %d' % ctypes.get_errno())
    return p
$*"; }

# Host A: page 0 written (EXCLUSIVE), the writer stays attached.
py a "p = seg($K1)
ctypes.memmove(p, b'A', 1)
print('ready', flush=True); open('$tmp/a.fifo').read()" >"$tmp/w.out" &
wpid=$!
wait_for "$tmp/w.out" ready || fail "host A's writer did not start"
apid=$(cat "$tmp"/a/dshm-*/agent-*.pid 2>/dev/null | head -1)
[ -n "$apid" ] && kill -0 "$apid" || fail "no agent on host A"
# Host B: a keeper on another segment keeps its agent up.
py b "seg($K2)
print('ready', flush=True); open('$tmp/keep.fifo').read()" >"$tmp/k.out" &
kpid=$!
wait_for "$tmp/k.out" ready || fail "host B's keeper did not start"
prom=$(ls "$tmp"/b/dshm-*/agent-*.prom 2>/dev/null | head -1)
wait_for "${prom:-/nonexistent}" "^dshm_agent_processes 1$" || fail "no figures for host B's agent"
prom=$(ls "$tmp"/b/dshm-*/agent-*.prom)

kill -STOP "$apid"
# Host B: a process faults on page 0 and waits (host A's agent cannot answer the RECALL).
py b "p = seg($K1)
print('faulting', flush=True)
print(ctypes.string_at(p, 1), flush=True)" >"$tmp/v.out" &
vpid=$!
wait_for "$tmp/v.out" faulting || fail "host B's reader did not attach"
wait_for "$prom" "^dshm_agent_page_requests_in_flight 1$" ||
  fail "host B's request is not in flight: $(grep in_flight "$prom")"
kill -9 "$vpid"; wait "$vpid" 2>/dev/null; vpid=
# Its detach, the host's last of that segment, is answered: B holds only the keeper's.
wait_for "$prom" "^dshm_agent_segments 1$" || fail "host B still holds the segment"
kill -CONT "$apid"; apid=
wait_for "$prom" "^dshm_agent_page_requests_in_flight 0$" ||
  fail "the dropped request stays in flight at host B's agent: $(grep in_flight "$prom")"
# Nothing wedged: host B reads page 0 (A's write), host A goes on.
out=$(py b "p = seg($K1)
print(ctypes.string_at(p, 1).decode())") || fail "host B's second reader"
[ "$out" = A ] || fail "host B read '$out', not host A's write"
echo >"$tmp/a.fifo"; wait "$wpid" || fail "host A's writer"; wpid=
echo >"$tmp/keep.fifo"; wait "$kpid"; kpid=
echo "a page request dropped by the host's last detach ends at its agent"
