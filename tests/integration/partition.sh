#!/bin/bash
# partition.sh SERVER PRELOAD AGENT: a host cut off from the server by a network partition is
# dropped by both ends within a bounded time (--keepalive-ms, DSHM_KEEPALIVE_MS), so that the
# pages it held serve the other hosts again. Host A runs in a network namespace made here,
# joined to the server's by a veth pair with private addresses (10.231.x.y/30); it writes
# page 0 (EXCLUSIVE) and stays attached, idle. Its end of the veth is then set down: packets
# vanish, nothing answers, no RST. Host B (the root namespace, a directory of its own)
# reads page 0: with the setting at 2000 ms it must get the page (host A's write-back) well
# within 15 s, the server must log host A's connection as timed out, and host A's agent must
# see its connection lost. With DSHM_TEST_KEEPALIVE_MS=0 (the feature off) B still waits
# after 15 s, and the test fails: the evidence that it can; with only
# DSHM_TEST_AGENT_KEEPALIVE_MS=0 (the agents' half off) it fails at host A's agent. Skips (77) without `ip`,
# python3, or the right to make a network namespace, and in the sanitizer build.
set -u
server=$(realpath "$1") preload=$(realpath "$2") agent=$(realpath "$3")
ka=${DSHM_TEST_KEEPALIVE_MS:-2000}        # the server's, and the agents' unless:
ka_agent=${DSHM_TEST_AGENT_KEEPALIVE_MS:-$ka} # 0 here shows the agent's half can fail alone
bound=15 # seconds, from the cut
command -v ip >/dev/null || { echo "no ip command (iproute2): skipped"; exit 77; }
command -v python3 >/dev/null || { echo "python3 not installed: skipped"; exit 77; }
if nm -D --undefined-only "$preload" 2>/dev/null | grep -q "__asan_"; then
  echo "sanitizer build of the shim: python3 is not instrumented; skipped (the release build runs it)"
  exit 77
fi
ns=dshm-part-$$ vr=dshmr$$ vn=dshmn$$
net=10.231.$((($$ >> 6) & 255)) low=$((($$ & 63) * 4))
srv_ip=$net.$((low + 1)) host_ip=$net.$((low + 2))
tmp=$(mktemp -d /tmp/dshm-partition.XXXXXX)
mkdir -m 700 "$tmp/a" "$tmp/b"
mkfifo "$tmp/a.fifo"
K=$(printf '0x%08x' $((0x5ea00000 + ($$ & 0xffff) * 16)))
spid= wpid= rpid= made_ns= made_link=
cleanup() {
  local f
  for p in $rpid $wpid; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for f in "$tmp"/a/dshm-*/agent-*.pid "$tmp"/b/dshm-*/agent-*.pid; do
    [ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
  done
  [ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
  [ -n "$made_ns" ] && ip netns del "$ns" 2>/dev/null
  [ -n "$made_link" ] && ip link del "$vr" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- server log"; tail -n 30 "$tmp/server.log"
  for f in "$tmp"/a/dshm-*/agent-*.log; do [ -f "$f" ] && { echo "--- host A's agent"; cat "$f"; }; done
  exit 1
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$@"; }
# wait_for FILE PATTERN SECONDS: polls for a line matching PATTERN in FILE.
wait_for() {
  local end=$(($(date +%s) + $3))
  while [ "$(date +%s)" -le "$end" ]; do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# --- the partitionable network: our own namespace and veth pair, private addresses ------
if ip -o -4 addr show | grep -qE "inet ($srv_ip|$host_ip)/"; then
  echo "$srv_ip or $host_ip is already in use here: skipped"
  exit 77
fi
if ! ip netns add "$ns" 2>"$tmp/ip.err"; then
  echo "cannot make a network namespace (needs CAP_NET_ADMIN): $(cat "$tmp/ip.err"); skipped"
  exit 77
fi
made_ns=1
ip link add "$vr" type veth peer name "$vn" netns "$ns" || fail "cannot make a veth pair"
made_link=1
ip addr add "$srv_ip/30" dev "$vr" && ip link set "$vr" up &&
  ip -n "$ns" addr add "$host_ip/30" dev "$vn" && ip -n "$ns" link set "$vn" up &&
  ip -n "$ns" link set lo up || fail "cannot set up the veth pair"
for _ in $(seq 100); do
  ip -n "$ns" link show "$vn" | grep -q "state UP" && ip link show "$vr" | grep -q "state UP" && break
  sleep 0.05
done

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/token"
chmod 600 "$tmp/token"
. "$(dirname "$0")/server.sh"
start_server "$server" "$tmp/server.log" --bind "$srv_ip" --token-file "$tmp/token" \
  --keepalive-ms "$ka" --verbose
SHIM=(env DSHM_SERVER="$srv_ip:$port" LD_PRELOAD="$preload" DSHM_AGENT_BIN="$agent"
      DSHM_TOKEN_FILE="$tmp/token" DSHM_KEEPALIVE_MS="$ka_agent" DSHM_AGENT_IDLE_MS=200
      DSHM_TIMEOUT_MS=60000)
PY="import ctypes, sys, time
l = ctypes.CDLL(None, use_errno=True); l.shmat.restype = ctypes.c_void_p
i = l.shmget($K, 4 * 4096, 0o1666)
p = l.shmat(i, None, 0)
if i < 0 or p in (None, 2**64 - 1): sys.exit('shmget/shmat: errno %d' % ctypes.get_errno())
"

# Host A, in the namespace: page 0 written (EXCLUSIVE), the writer stays attached, idle.
exec_a() { exec ip netns exec "$ns" "${SHIM[@]}" DSHM_AGENT_DIR="$tmp/a" python3 -c "$PY
ctypes.memmove(p, b'A', 1)
print('ready', flush=True); open('$tmp/a.fifo').read()"; }
exec_a >"$tmp/a.out" 2>&1 &
wpid=$!
wait_for "$tmp/a.out" ready 20 || fail "host A's writer did not start: $(cat "$tmp/a.out")"
node_a=$(sed -nE "s/.*node ([0-9]+): hello from .*\\($host_ip:.*/\\1/p" "$tmp/server.log" | head -1)
[ -n "$node_a" ] || fail "host A's agent did not connect from $host_ip"
# Its background write-back has reached the server: what B must read.
wait_for "$tmp/server.log" "node $node_a: WRITE_DATA shm [0-9-]+ pages 0\\+1" 10 ||
  fail "host A's write-back of page 0 never reached the server"

# The cut: host A's end goes down; nothing it sends leaves, nothing sent to it arrives.
ip -n "$ns" link set "$vn" down || fail "cannot cut the link"
t_cut=$(now)

# Host B reads page 0, which the server must take back from host A first.
"${SHIM[@]}" DSHM_AGENT_DIR="$tmp/b" python3 -c "$PY
print('faulting', flush=True)
print('read', ctypes.string_at(p, 1).decode(), flush=True)" >"$tmp/b.out" 2>&1 &
rpid=$!
if ! wait_for "$tmp/b.out" "^read " $bound; then
  fail "host B still waits for the page host A held, $bound s after the cut (keepalive $ka ms):" \
    "the server did not drop the cut-off host ($(tr '\n' ' ' <"$tmp/b.out"))"
fi
t_read=$(now)
wait "$rpid" || fail "host B's reader: $(cat "$tmp/b.out")"
rpid=
grep -q "^read A$" "$tmp/b.out" || fail "host B read '$(cat "$tmp/b.out")', not host A's write-back"
grep -qE "node $node_a \\(.*\\) closed: the peer stopped answering" "$tmp/server.log" ||
  fail "the server does not say why host A's node $node_a was dropped"
alog=$(ls "$tmp"/a/dshm-*/agent-*.log 2>/dev/null | head -1)
# The kernel reports the last ICMP or neighbour error it saw, else ETIMEDOUT.
wait_for "${alog:-/nonexistent}" \
  "lost: (connection timed out|host is unreachable|network is unreachable); reconnecting" $bound ||
  fail "host A's agent did not notice the partition within $bound s (DSHM_KEEPALIVE_MS=$ka_agent)"
t_agent=$(now)
echo "keepalive $ka ms (agents $ka_agent ms): host B got the page $(since "$t_cut" "$t_read") s after the cut;" \
  "host A's agent saw the loss by $(since "$t_cut" "$t_agent") s"
echo >"$tmp/a.fifo"
echo "a partitioned host is dropped by the server and by its agent within a bounded time"
