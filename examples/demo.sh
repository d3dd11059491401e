#!/bin/sh
# demo.sh - starts dshm-server on a free loopback port and runs plain SysV programs under the shim.
set -eu
build=${1:-build}
server="$build/server/dshm-server"
shim="$(cd "$build/preload" && pwd)/libdshm_preload.so"
ex="$build/examples"
out=$(mktemp)
trap 'kill "$spid" 2>/dev/null || true; rm -f "$out"' EXIT

"$server" --port 0 >"$out" 2>/dev/null &
spid=$!
# The server prints its address once it listens.
for _ in $(seq 1 100); do
  grep -q "listening on" "$out" && break
  kill -0 "$spid" 2>/dev/null || { echo "demo: dshm-server failed to start" >&2; exit 1; }
  sleep 0.1
done
addr=$(sed -n 's/^dshm-server: listening on //p' "$out")
[ -n "$addr" ] || { echo "demo: dshm-server did not report its address" >&2; exit 1; }
echo "== dshm-server listening on $addr"
run() { DSHM_SERVER="$addr" LD_PRELOAD="$shim" "$@"; }

key=$(( ($$ % 30000) + 0x1000 ))
echo "== one process writes, another (started later) reads"
run "$ex/writer" "$key" "hello through dshm"
run "$ex/reader" "$key"

ckey=$((key + 1))
echo "== four processes increment one counter 25000 times each, at the same time"
run "$ex/counter" "$ckey" 25000 & p1=$!
run "$ex/counter" "$ckey" 25000 & p2=$!
run "$ex/counter" "$ckey" 25000 & p3=$!
run "$ex/counter" "$ckey" 25000 & p4=$!
wait $p1 $p2 $p3 $p4
total=$(run "$ex/counter" "$ckey" 0)
echo "$total"
if [ "$total" = "counter: total is 100000" ]; then
  echo "== exact: 4 x 25000 = 100000"
else
  echo "== WRONG: expected 100000" >&2
  exit 1
fi
kill -TERM "$spid"
wait "$spid" && echo "== dshm-server stopped cleanly"
