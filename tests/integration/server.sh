# server.sh - sourced by the shell tests: start_server SERVER LOG [FLAG...] starts dshm-server
# on a free loopback port (and the flags), its output in LOG; sets spid and port, or says why
# and exits 1. Waiting for the "listening on" line is the synchronisation: the port is known
# only from it.
start_server() {
  local bin=$1 log=$2
  shift 2
  "$bin" --port 0 "$@" >"$log" 2>&1 &
  spid=$!
  port=
  for _ in $(seq 100); do
    port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$log")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "dshm-server did not start: $(cat "$log")"
  exit 1
}
