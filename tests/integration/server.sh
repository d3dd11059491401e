# server.sh - sourced by the shell tests: start_server SERVER LOG starts dshm-server on a free
# loopback port, its output in LOG; sets spid and port, or says why and exits 1. Waiting for
# the "listening on" line is the synchronisation: the port is known only from it.
start_server() {
  "$1" --port 0 >"$2" 2>&1 &
  spid=$!
  port=
  for _ in $(seq 100); do
    port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$2")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "dshm-server did not start: $(cat "$2")"
  exit 1
}
