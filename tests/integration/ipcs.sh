#!/bin/bash
# ipcs.sh SERVER PRELOAD AGENT DSHM: util-linux's ipcs and ipcrm, and the dshm command, on
# networked segments and semaphore sets (issue 12). The kernel is the oracle: the same objects
# are made natively and under the shim (a fresh dshm-server), and ipcs -m, ipcs -s, ipcs -m -i
# and ipcrm (by id, by key, errors) must print the same, ids and times aside; then dshm ls,
# stat and rm must print what ipcs and ipcrm print under the shim. Skips (77) without ipcs,
# ipcrm or python3, and in the sanitizer build (ipcs is not instrumented: see stress-ng.sh).
set -u
server=$(realpath "$1") preload=$(realpath "$2") agent=$(realpath "$3") dshm=$(realpath "$4")
for t in ipcs ipcrm python3; do
  command -v $t >/dev/null || { echo "$t not installed: skipped"; exit 77; }
done
if nm -D --undefined-only "$preload" 2>/dev/null | grep -q "__asan_"; then
  echo "sanitizer build of the shim: ipcs is not instrumented; skipped (the release build runs it)"
  exit 77
fi
tmp=$(mktemp -d /tmp/dshm-ipcs.XXXXXX)
mkdir -m 700 "$tmp/host"
mkfifo "$tmp/keep.fifo"
k0=$(( (0x5e800000 + ($$ & 0xffff) * 16) ))
key() { printf '0x%08x' $((k0 + $1)); }
K1=$(key 1) K2=$(key 2) K3=$(key 3) NOKEY=$(key 9)
spid= wpid= rpid=
cleanup() {
  # The processes that keep segment attachments, blocked on their fifos.
  for p in $wpid $rpid; do kill "$p" 2>/dev/null; done
  # Native objects of this run, whatever happened.
  for k in $K1 $K2; do ipcrm -M "$k" 2>/dev/null; done
  ipcrm -S "$K3" 2>/dev/null
  [ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

. "$(dirname "$0")/server.sh"
start_server "$server" "$tmp/server.log" --metrics 127.0.0.1:0
mport=
for _ in $(seq 50); do
  mport=$(sed -nE 's/.*metrics on http:\/\/127\.0\.0\.1:([0-9]+).*/\1/p' "$tmp/server.log")
  [ -n "$mport" ] && break
  sleep 0.1
done
[ -n "$mport" ] || fail "no metrics address in the server's log: $(cat "$tmp/server.log")"
SHIM=(env DSHM_SERVER="127.0.0.1:$port" LD_PRELOAD="$preload" DSHM_PRELOAD_LIB="$preload"
      DSHM_AGENT_DIR="$tmp/host" DSHM_AGENT_BIN="$agent" DSHM_AGENT_IDLE_MS=200)
NATIVE=(env -u LD_PRELOAD)

# The objects: two segments and a set, made by two processes; prints their ids.
make_objects() {
  local one two
  one=$("$@" python3 -c "
import ctypes, sys
l = ctypes.CDLL(None, use_errno=True)
i = l.shmget($K1, 10000, 0o1640)
sys.exit('shmget: errno %d' % ctypes.get_errno()) if i < 0 else print(i)") || return 1
  two=$("$@" python3 -c "
import ctypes, sys
l = ctypes.CDLL(None, use_errno=True)
ids = [l.shmget($K2, 4096, 0o1600), l.semget($K3, 4, 0o1600)]
sys.exit('shmget/semget: errno %d' % ctypes.get_errno()) if min(ids) < 0 else print(*ids)") ||
    return 1
  echo "$one $two"
}

# Lines of a listing for our keys, the id column (2nd) replaced.
ours() { grep -E "^($K1|$K2|$K3) " | awk '{ $2 = "ID"; print }'; }
# ipcs -i output with the id, cpid and change time masked.
masked() { sed -E 's/(shmid|semid)=[0-9]+/\1=ID/; s/cpid=[0-9]+/cpid=P/; s/^(change_time|ctime)( = |=).*/\1\2T/'; }

# One side (native or shim): listings and removals; writes $tmp/$side.*
side() {
  local side=$1; shift
  read -r id1 id2 sid < <(make_objects "$@") || fail "$side: objects not made"
  [ -n "$sid" ] || fail "$side: objects not made"
  "$@" ipcs -m | ours >"$tmp/$side.m" || fail "$side: ipcs -m"
  "$@" ipcs -s | ours >"$tmp/$side.s" || fail "$side: ipcs -s"
  "$@" ipcs -m -i "$id1" | masked >"$tmp/$side.mi" || fail "$side: ipcs -m -i"
  "$@" ipcs -s -i "$sid" | masked >"$tmp/$side.si" || fail "$side: ipcs -s -i"
  # Errors: an id that names nothing (the kernel's and the server's unused ones), a key.
  local bad=2147483000
  [ "$side" = shim ] && bad=$((0x40000000 + 123456))
  { "$@" ipcrm -m "$bad"; echo "rc=$?"; "$@" ipcrm -M "$NOKEY"; echo "rc=$?"
    "$@" ipcrm -s "$bad"; echo "rc=$?"; } 2>&1 | sed "s/$bad/BAD/" >"$tmp/$side.err"
  { "$@" ipcrm -M "$K1"; echo "rc=$?"; "$@" ipcrm -m "$id2"; echo "rc=$?"
    "$@" ipcrm -S "$K3"; echo "rc=$?"; } >"$tmp/$side.rm" 2>&1
  "$@" ipcs -a | ours >"$tmp/$side.after"
  echo "$id1 $id2 $sid"
}

side native "${NATIVE[@]}" >/dev/null
side shim "${SHIM[@]}" >"$tmp/shim.ids"
for f in m s mi si err rm after; do
  if ! diff -u "$tmp/native.$f" "$tmp/shim.$f"; then
    fail "ipcs/ipcrm under the shim differ from the kernel's ($f: native first)"
  fi
done
[ -s "$tmp/native.m" ] && [ -s "$tmp/native.s" ] && [ -s "$tmp/native.mi" ] ||
  fail "the native listings are empty: the comparison proves nothing"
[ ! -s "$tmp/native.after" ] || fail "ipcrm left objects natively: $(cat "$tmp/native.after")"
grep -q '^0x' "$tmp/shim.ids" && fail "ids: $(cat "$tmp/shim.ids")"
read -r sid1 _ _ <"$tmp/shim.ids"
(( sid1 & 0x40000000 )) || fail "the shim's segment id $sid1 is not the server's"

# dshm against ipcs and ipcrm under the shim: the same lines, ids included.
read -r id1 id2 sid < <(make_objects "${SHIM[@]}")
"${SHIM[@]}" ipcs -m | grep -E "^($K1|$K2) " >"$tmp/ipcs.m"
"${SHIM[@]}" "$dshm" ls -m | grep -E "^($K1|$K2) " >"$tmp/dshm.m"
diff -u "$tmp/ipcs.m" "$tmp/dshm.m" || fail "dshm ls -m differs from ipcs -m"
[ "$(wc -l <"$tmp/dshm.m")" = 2 ] || fail "dshm ls -m: $(cat "$tmp/dshm.m")"
"${SHIM[@]}" ipcs -s | grep -E "^$K3 " >"$tmp/ipcs.s"
# Without LD_PRELOAD: dshm runs itself again under the library.
env -u LD_PRELOAD DSHM_SERVER="127.0.0.1:$port" DSHM_PRELOAD_LIB="$preload" \
  DSHM_AGENT_DIR="$tmp/host" DSHM_AGENT_BIN="$agent" "$dshm" ls -s | grep -E "^$K3 " >"$tmp/dshm.s"
diff -u "$tmp/ipcs.s" "$tmp/dshm.s" || fail "dshm ls -s differs from ipcs -s"
"${SHIM[@]}" ipcs -m -i "$id1" >"$tmp/ipcs.mi"
"${SHIM[@]}" "$dshm" stat "$id1" >"$tmp/dshm.mi" || fail "dshm stat: $(cat "$tmp/dshm.mi")"
# ipcs -i's lines first, exactly; then what ipcs cannot show (checked below).
head -n "$(wc -l <"$tmp/ipcs.mi")" "$tmp/dshm.mi" | diff -u "$tmp/ipcs.mi" - ||
  fail "dshm stat differs from ipcs -m -i"
grep -q "^Attached: 0 hosts, 0 processes$" "$tmp/dshm.mi" || fail "dshm stat: $(cat "$tmp/dshm.mi")"
"${SHIM[@]}" ipcs -s -i "$sid" >"$tmp/ipcs.si"
"${SHIM[@]}" "$dshm" stat -s "$sid" >"$tmp/dshm.si"
diff -u "$tmp/ipcs.si" "$tmp/dshm.si" || fail "dshm stat -s differs from ipcs -s -i"

# dshm stat's hosts, processes and pages: a writer on host A (pages 0 and 2), a reader on
# host B (page 0, after the write), both kept attached; what the grants imply must be
# listed, and the counts must add up to ipcs's nattch (the kernel's field, the server's
# count) and to the processes each host's agent knows.
mkdir -m 700 "$tmp/hostb"
mkfifo "$tmp/w.fifo" "$tmp/r.fifo"
"${SHIM[@]}" python3 -c "
import ctypes
l = ctypes.CDLL(None, use_errno=True); l.shmat.restype = ctypes.c_void_p
p = l.shmat($id1, None, 0)
ctypes.memmove(p, b'w', 1); ctypes.memmove(p + 8192, b'x', 1)
print('ready', flush=True); open('$tmp/w.fifo').read()" >"$tmp/w.out" &
wpid=$!
for _ in $(seq 100); do grep -q ready "$tmp/w.out" && break; sleep 0.1; done
grep -q ready "$tmp/w.out" || fail "the writer did not start"
"${SHIM[@]}" DSHM_AGENT_DIR="$tmp/hostb" python3 -c "
import ctypes
l = ctypes.CDLL(None, use_errno=True); l.shmat.restype = ctypes.c_void_p
p = l.shmat($id1, None, 0o10000)
assert ctypes.string_at(p, 1) == b'w'
print('ready', flush=True); open('$tmp/r.fifo').read()" >"$tmp/r.out" &
rpid=$!
for _ in $(seq 100); do grep -q ready "$tmp/r.out" && break; sleep 0.1; done
grep -q ready "$tmp/r.out" || fail "the reader did not start"
"${SHIM[@]}" "$dshm" stat "$id1" >"$tmp/dshm.st" || fail "dshm stat: $(cat "$tmp/dshm.st")"
grep -q "^Attached: 2 hosts, 2 processes$" "$tmp/dshm.st" || fail "dshm stat: $(cat "$tmp/dshm.st")"
"${SHIM[@]}" ipcs -m -i "$id1" >"$tmp/ipcs.st"
"${SHIM[@]}" "$dshm" stat --json "$id1" | python3 -c "
import json, re, sys
d = json.load(sys.stdin)
nattch = int(re.search(r'nattch=(\d+)', open('$tmp/ipcs.st').read()).group(1))
hosts = d['hosts']
bad = []
if d['segment']['shmid'] != $id1: bad.append('shmid')
if len(hosts) != 2 or len({h['tag'] for h in hosts}) != 2: bad.append('two hosts')
byproc = {p['pid']: (h['tag'], p['nrw'], p['nro']) for h in hosts for p in h['processes']}
if set(byproc) != {$wpid, $rpid}: bad.append('processes %s' % byproc)
a, b = byproc.get($wpid, (0,))[0], byproc.get($rpid, (0,))[0]
if byproc.get($wpid, (0, 0, 0))[1:] != (1, 0) or byproc.get($rpid, (0, 0, 0))[1:] != (0, 1):
  bad.append('counts %s' % byproc)
if sum(h['nrw'] + h['nro'] for h in hosts) != nattch or nattch != 2: bad.append('nattch %d' % nattch)
for h in hosts:
  if (h['nrw'], h['nro']) != (sum(p['nrw'] for p in h['processes']), sum(p['nro'] for p in h['processes'])):
    bad.append('host %s counts' % h['tag'])
page = {}
nxt = 0
for r in d['pages']:
  if r['first'] != nxt: bad.append('run at %d' % r['first'])
  nxt = r['first'] + r['count']
  for p in range(r['first'], nxt): page[p] = (r['state'], set(r['holders']))
if nxt != 3: bad.append('pages %d' % nxt)
if page.get(0) != ('shared', {a, b}): bad.append('page 0 %s' % (page.get(0),))
if page.get(2) != ('exclusive', {a}): bad.append('page 2 %s' % (page.get(2),))
sys.exit('dshm stat --json: %s\n%s' % (bad, d) if bad else 0)" || fail "dshm stat --json"
echo >"$tmp/w.fifo"; echo >"$tmp/r.fifo"
wait "$wpid" "$rpid"
"${SHIM[@]}" "$dshm" ls --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
keys = {s['key'] for s in d['segments']} | {s['key'] for s in d['semaphores']}
want = {$K1, $K2, $K3}
sys.exit(0 if want <= keys else 'dshm ls --json: %s' % d)" || fail "dshm ls --json"
# dshm status: the server's figures, through its metrics endpoint, and this host's agent's,
# from its file, against what is there now.
ST=(env DSHM_AGENT_DIR="$tmp/host" "$dshm" status)
# A process that keeps host A's agent up meanwhile (an idle agent exits, its file with it).
"${SHIM[@]}" python3 -c "
import ctypes, sys
l = ctypes.CDLL(None)
if l.shmat(l.shmget($K1, 0, 0), None, 0) in (-1, 2**64 - 1): sys.exit(1)
print('attached', flush=True)
sys.stdin.read()" <"$tmp/keep.fifo" >"$tmp/keep.out" &
keeper=$!
exec 7>"$tmp/keep.fifo"
for _ in $(seq 100); do grep -q attached "$tmp/keep.out" && break; sleep 0.1; done
grep -q attached "$tmp/keep.out" || fail "the keeper did not attach"
"${ST[@]}" --metrics "127.0.0.1:$mport" >"$tmp/status" || fail "dshm status: $(cat "$tmp/status")"
grep -q "^segments   2 " "$tmp/status" || fail "dshm status: $(cat "$tmp/status")"
grep -q "^semaphores 1 sets (4 semaphores)" "$tmp/status" || fail "dshm status: $(cat "$tmp/status")"
# The agent rewrites its file once a second while its figures move: wait for the keeper in it.
for _ in $(seq 50); do
  grep -q "^agent      127.0.0.1:$port .*: connected, 1 processes" "$tmp/status" && break
  sleep 0.1
  "${ST[@]}" --metrics "127.0.0.1:$mport" >"$tmp/status"
done
grep -q "^agent      127.0.0.1:$port .*: connected, 1 processes" "$tmp/status" ||
  fail "dshm status shows no connected agent with the keeper: $(cat "$tmp/status")"
grep -qE "^  latency    sysv +[0-9]+ requests, p50 .*, p99 " "$tmp/status" ||
  fail "dshm status shows no latency of the agent's calls: $(cat "$tmp/status")"
DSHM_METRICS="127.0.0.1:$mport" "${ST[@]}" --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
s = d['series']
want = {'dshm_server_segments': 2, 'dshm_server_semaphore_sets': 1, 'dshm_server_semaphores': 4,
        'dshm_server_segment_bytes': 10000 + 4096}
bad = {k: (s.get(k), v) for k, v in want.items() if s.get(k) != v}
a = [x['series'] for x in d['agents']]
if not a or a[0].get('dshm_agent_server_connected') != 1 or a[0].get('dshm_agent_sysv_calls_total', 0) < 2:
    bad['agents'] = a
# The agent's latency histogram: the keeper's calls counted, buckets cumulative up to +Inf.
h = a[0] if a else {}
pre = 'dshm_agent_request_duration_seconds_'
n = h.get(pre + 'count{class=\"sysv\"}', 0)
les = sorted((float(k.split('le=\"')[1].rstrip('\"}')), v) for k, v in h.items()
             if k.startswith(pre + 'bucket{class=\"sysv\"'))
if n < 2 or not les or les[-1] != (float('inf'), n) or any(x[1] > y[1] for x, y in zip(les, les[1:])):
    bad['agent latency'] = (n, les)
sys.exit('dshm status --json: %s' % bad if bad else 0)" 2>&1 || fail "dshm status --json"
"${ST[@]}" --metrics 127.0.0.1:1 >/dev/null 2>&1 && fail "dshm status with no server answered 0"
exec 7>&-
wait "$keeper"
mkdir -m 700 "$tmp/nohost"
env DSHM_AGENT_DIR="$tmp/nohost" "$dshm" status >/dev/null 2>&1
[ $? = 2 ] || fail "dshm status with no address and no agent is not a usage error"
bad=$((0x40000000 + 123456))
{ "${SHIM[@]}" ipcrm -m "$bad" -M "$NOKEY"; echo "rc=$?"; } 2>&1 | sed 's/^ipcrm:/X:/' >"$tmp/ipcrm.err"
{ "${SHIM[@]}" "$dshm" rm -m "$bad" -M "$NOKEY"; echo "rc=$?"; } 2>&1 | sed 's/^dshm:/X:/' >"$tmp/dshm.err"
diff -u "$tmp/ipcrm.err" "$tmp/dshm.err" || fail "dshm rm's errors differ from ipcrm's"
"${SHIM[@]}" "$dshm" rm -M "$K1" -m "$id2" -S "$K3" || fail "dshm rm"
left=$("${SHIM[@]}" ipcs -a | grep -E "^($K1|$K2|$K3) ")
[ -z "$left" ] || fail "dshm rm left: $left"
# dshm run: the library in front of an existing LD_PRELOAD, DSHM_SERVER from --server.
out=$(env LD_PRELOAD=libother.so DSHM_PRELOAD_LIB="$preload" "$dshm" run --server 10.9.8.7:1 \
  sh -c 'echo "$LD_PRELOAD $DSHM_SERVER"' 2>/dev/null)
[ "$out" = "$preload:libother.so 10.9.8.7:1" ] || fail "dshm run: $out"
echo "ipcs, ipcrm and dshm ls/stat/rm/run agree with the kernel's; dshm status with the server's"
