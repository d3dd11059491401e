#!/bin/bash
# stress-ng.sh SERVER PRELOAD AGENT: stress-ng --shm-sysv --verify (Debian's stress-ng, a
# third-party SysV shm torture test: create, attach with SHM_REMAP and SHM_RDONLY, write and
# verify patterns, detach, remove) under the shim against a real dshm-server, with 2 and 4
# instances and several --shm-sysv-segs values. Fails on any stress-ng failure or
# verification error; skips (exit 77) when stress-ng is not installed.
set -u
server=$(realpath "$1") preload=$(realpath "$2") agent=$(realpath "$3")
command -v stress-ng >/dev/null || { echo "stress-ng not installed: skipped"; exit 77; }
tmp=$(mktemp -d /tmp/dshm-stressng.XXXXXX)
mkdir -m 700 "$tmp/host"
spid=
cleanup() { [ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }; rm -rf "$tmp"; }
trap cleanup EXIT
. "$(dirname "$0")/server.sh"
start_server "$server" "$tmp/server.log"
# A sanitizer build of the shim takes its runtime from the program, and stress-ng has none:
# preloading libasan ahead of it aborts in stress-ng's own start-up (an interceptor runs
# while the runtime initialises), so the sanitizer build skips this test visibly; the
# release build runs it.
if nm -D --undefined-only "$preload" 2>/dev/null | grep -q "__asan_"; then
  echo "sanitizer build of the shim: stress-ng is not instrumented; skipped (the release build runs it)"
  exit 77
fi
pre=$preload
rc=0
for run in "2 8" "4 4" "2 32"; do
  set -- $run
  # stress-ng writes temporary files in the current directory.
  out=$(cd "$tmp" && env DSHM_SERVER="127.0.0.1:$port" LD_PRELOAD="$pre" \
    DSHM_AGENT_DIR="$tmp/host" DSHM_AGENT_BIN="$agent" DSHM_AGENT_IDLE_MS=200 \
    stress-ng --shm-sysv "$1" --shm-sysv-segs "$2" --shm-sysv-bytes 1M --verify -t 3s \
      --metrics-brief 2>&1)
  st=$?
  echo "--- --shm-sysv $1 --shm-sysv-segs $2: exit $st"
  echo "$out" | grep -E "shm-sysv|fail|error|successful" | head -20
  if [ $st -ne 0 ] || echo "$out" | grep -qiE "fail(ed|ure)|verif.*error"; then
    echo "$out" | tail -30
    rc=1
  fi
done
# The runs above must have gone through dshm: the agent said hello to this server.
grep -q "hello from dshm-agent" "$tmp/server.log" || {
  echo "no host agent ever reached the server: the shim was not in use"
  rc=1
}
exit $rc
