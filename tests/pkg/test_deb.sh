#!/usr/bin/env bash
# test_deb.sh - the Debian package end to end: built as `make deb` builds it, checked by
# lintian, installed with dpkg -i, its unit's ExecStart run (systemd may not run here) and
# answering two hosts' programs under the installed library, then removed and purged.
#   bash tests/pkg/test_deb.sh SRC OUT      (meson: meson test -C build --suite pkg)
# Exit 0 passed, 1 failed, 77 skipped (not root, a tool missing, dshm already installed).
# It installs into /usr: a trap purges the package and stops what it started, whatever
# happens; it never touches a dshm that was installed before it ran.
set -uo pipefail

SRC=$(cd "${1:?usage: test_deb.sh SRC OUT}" && pwd)
OUT=${2:?usage: test_deb.sh SRC OUT}
T0=$SECONDS

say() { printf 'test_deb: %s\n' "$*"; }
fail() { printf 'test_deb: FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf 'test_deb: SKIP: %s\n' "$*"; exit 77; }
step() { printf '\ntest_deb: == %s (%ds)\n' "$*" $((SECONDS - T0)); }

# --- preconditions: anything missing is a visible skip, never a silent pass ---------------
[ "$(id -u)" = 0 ] || skip "needs root (dpkg -i installs into /usr)"
for tool in dpkg dpkg-deb dpkg-buildpackage dpkg-architecture dh lintian cc setpriv; do
  command -v "$tool" >/dev/null || skip "$tool is missing (make deb-deps installs it)"
done
dpkg-query -W -f='${Status}' build-essential 2>/dev/null | grep -q 'ok installed' ||
  skip "build-essential is missing (make deb-deps installs it)"
# Any trace of a dshm package (installed, or removed with its state kept) is left alone:
# the test's purge would replace it, or remove the segments it kept in /var/lib.
if dpkg-query -W -f='${Status}' dshm 2>/dev/null | grep -qv 'not-installed'; then
  skip "dpkg knows a dshm package here ($(dpkg-query -W -f='${Status}' dshm)): the test would replace and purge it"
fi
for d in /var/lib/dshm /var/lib/private/dshm; do
  [ -e "$d" ] || [ -L "$d" ] && skip "$d exists (a dshm service's data): the test's purge would remove it"
done
id nobody >/dev/null 2>&1 || skip "no user nobody to run the server and a client as"
NOGROUP=$(id -gn nobody)

MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
BIN=/usr/bin/dshm-server
LIB=/usr/lib/$MA/dshm/libdshm_preload.so
AGENT=/usr/lib/$MA/dshm/dshm-agent
UNIT=/lib/systemd/system/dshm-server.service
ASOCKET=/usr/lib/systemd/user/dshm-agent@.socket
ASERVICE=/usr/lib/systemd/user/dshm-agent@.service
FILES=("$BIN" "$LIB" "$AGENT" "$UNIT" "$ASOCKET" "$ASERVICE"
       /usr/share/man/man8/dshm-server.8.gz /usr/share/man/man7/libdshm_preload.7.gz
       /usr/bin/dshm /usr/share/man/man1/dshm.1.gz)

TMP=$(mktemp -d /tmp/dshm-test-deb.XXXXXX)
chmod 755 "$TMP" # the server runs as nobody below
SERVER_PID=""
ASSA_PID=""
INSTALLED=0

# Whatever happened: stop our server and our agents (by pid), purge the package if this
# run installed it, remove the temporary directory.
cleanup() {
  local rc=$? pidfile pid
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  [ -n "$ASSA_PID" ] && kill -TERM "$ASSA_PID" 2>/dev/null
  for pidfile in "$TMP"/host*/dshm-*/agent-*.pid "$TMP"/run/dshm-*/agent-*.pid; do
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # Only an agent of ours: its pid file is in our directory and it runs the installed agent.
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$AGENT" ]; then
      kill -TERM "$pid" 2>/dev/null
    fi
  done
  if [ "$INSTALLED" = 1 ] && dpkg-query -W -f='${Status}' dshm 2>/dev/null | grep -q installed; then
    say "cleanup: purging the dshm package"
    dpkg --purge dshm >/dev/null 2>&1 || say "cleanup: dpkg --purge dshm FAILED: remove it by hand"
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# --- 1. the package, as `make deb` builds it ------------------------------------------------
step "building the package (tests/pkg/mkdeb.sh, as make deb)"
t=$SECONDS
sh "$SRC/tests/pkg/mkdeb.sh" "$SRC" "$OUT" >"$TMP/mkdeb.log" 2>&1 ||
  { tail -40 "$TMP/mkdeb.log" >&2; fail "the package build failed"; }
say "built in $((SECONDS - t)) s"
shopt -s nullglob
debs=("$OUT"/dshm_*.deb)
changes=("$OUT"/dshm_*.changes)
shopt -u nullglob
[ ${#debs[@]} = 1 ] && [ ${#changes[@]} = 1 ] || fail "expected one dshm_*.deb and one .changes in $OUT"
DEB=${debs[0]}
for left in "$SRC"/obj-* "$SRC"/debian/.debhelper "$SRC"/debian/dshm "$SRC"/debian/files; do
  [ -e "$left" ] && fail "the package build left $left in the source tree"
done

step "lintian --fail-on error,warning"
lintian --fail-on error,warning "${changes[0]}" >"$TMP/lintian.log" 2>&1
lrc=$?
grep -v 'running with root privileges' "$TMP/lintian.log"
[ $lrc = 0 ] || fail "lintian reported errors or warnings (exit $lrc)"
say "lintian: no error, no warning"

step "package contents"
dpkg-deb -c "$DEB" >"$TMP/contents" || fail "dpkg-deb -c $DEB"
for f in "${FILES[@]}"; do
  grep -q " \.$f\$" "$TMP/contents" || fail "$f is not in the package"
done

# --- 2. install ----------------------------------------------------------------------------
step "dpkg -i"
INSTALLED=1
dpkg -i "$DEB" >"$TMP/dpkg-i.log" 2>&1 || { cat "$TMP/dpkg-i.log" >&2; fail "dpkg -i failed"; }
dpkg-query -W -f='${Status}\n' dshm | grep -qx 'install ok installed' || fail "dshm is not installed"
for f in "${FILES[@]}"; do
  [ -e "$f" ] || fail "$f is missing after dpkg -i"
done
[ -x "$BIN" ] && [ -x "$AGENT" ] || fail "the server or the agent is not executable"
"$BIN" --version | grep -q '^dshm-server ' || fail "$BIN --version"
if [ -d /run/systemd/system ]; then
  # A machine that runs systemd started the service on install (127.0.0.1:8080).
  if systemctl is-active --quiet dshm-server.service; then
    say "systemd runs here: dshm-server.service is active"
  else
    systemctl status dshm-server.service --no-pager >&2
    fail "systemd runs here but dshm-server.service did not start (is 127.0.0.1:8080 taken?)"
  fi
else
  say "systemd does not run here: the unit is started through its ExecStart line below"
fi
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$UNIT" >"$TMP/verify.log" 2>&1 ||
    { cat "$TMP/verify.log" >&2; fail "systemd-analyze verify $UNIT"; }
  [ -s "$TMP/verify.log" ] && { cat "$TMP/verify.log" >&2; fail "systemd-analyze verify complained"; }
  # The agent's user units: templates, verified through an instance (a user manager needs a
  # runtime directory).
  mkdir -m 700 "$TMP/verify-run" "$TMP/verify-units"
  ln -s "$ASOCKET" "$TMP/verify-units/dshm-agent@agent-127.0.0.1_8080.socket"
  ln -s "$ASERVICE" "$TMP/verify-units/dshm-agent@agent-127.0.0.1_8080.service"
  XDG_RUNTIME_DIR=$TMP/verify-run systemd-analyze --user verify \
    "$TMP/verify-units/dshm-agent@agent-127.0.0.1_8080.socket" \
    "$TMP/verify-units/dshm-agent@agent-127.0.0.1_8080.service" >"$TMP/verify-user.log" 2>&1 ||
    { cat "$TMP/verify-user.log" >&2; fail "systemd-analyze --user verify of the agent's units"; }
  [ -s "$TMP/verify-user.log" ] && { cat "$TMP/verify-user.log" >&2; fail "systemd-analyze --user verify complained"; }
  say "systemd-analyze verify: clean (the server's unit, the agent's user units)"
else
  say "systemd-analyze is missing: the unit is not verified"
fi

# --- 3. the unit's ExecStart, as systemd would run it ----------------------------------------
step "the server through the unit's ExecStart"
mapfile -t execs < <(sed -n 's/^ExecStart=//p' "$UNIT")
[ ${#execs[@]} = 1 ] || fail "expected one ExecStart= line in $UNIT, found ${#execs[@]}"
cmd=${execs[0]}
cmd=${cmd#[-@:+!]}
state=$(sed -n 's/^StateDirectory=//p' "$UNIT")
[ "$state" = dshm ] || fail "StateDirectory= is '$state', expected dshm"
[[ $cmd == *"--data-dir %S/$state"* ]] || fail "ExecStart does not keep its data in %S/$state: $cmd"
# systemd's %S is /var/lib for a system unit, where it makes StateDirectory= (mode 0700, owned
# by the dynamic user): here a directory of ours, owned by nobody, which stands in for the
# dynamic user. The environment is empty but for what an EnvironmentFile would give.
mkdir -m 0755 "$TMP/state" && mkdir -m 0700 "$TMP/state/$state"
chown nobody:"$NOGROUP" "$TMP/state/$state"
cmd=${cmd//%S/$TMP/state}
[[ $cmd == *%* ]] && fail "ExecStart has a specifier this test does not know: $cmd"
read -r -a argv <<<"$cmd"
[ "${argv[0]}" = "$BIN" ] || fail "ExecStart runs ${argv[0]}, not $BIN"
say "running as nobody, no capabilities, no new privileges: ${argv[*]}"
setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups --no-new-privs \
  --inh-caps=-all --bounding-set=-all \
  env -i PATH=/usr/bin:/bin DSHM_PORT=0 "${argv[@]}" >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
PORT=""
for _ in $(seq 100); do
  PORT=$(sed -n 's/^dshm-server: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TMP/server.out")
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$TMP/server.err" >&2; fail "the server did not say it listens"; }
say "listening on 127.0.0.1:$PORT"

# --- 4. two hosts' programs under the installed library ---------------------------------------
step "a writer and a reader on two hosts under $LIB"
cc -O1 -o "$TMP/writer" "$SRC/examples/writer.c" || fail "cc writer.c"
cc -O1 -o "$TMP/reader" "$SRC/examples/reader.c" || fail "cc reader.c"
chmod 755 "$TMP/writer" "$TMP/reader"
mkdir -m 1777 "$TMP/hostA" "$TMP/hostB"
KEY=$(printf '0x%x' $((0x7d500000 + RANDOM)))
WORD="installed-$RANDOM-$$"
# Every DSHM_* of the caller out of the way: the agent must be found in the installed layout
# (not through DSHM_AGENT_BIN, nor the build tree's).
client() {
  local host=$1
  shift
  env -u DSHM_AGENT_BIN -u DSHM_TOKEN -u DSHM_TOKEN_FILE -u DSHM_KEYS -u DSHM_AGENT_IDLE_MS \
    DSHM_SERVER="127.0.0.1:$PORT" DSHM_AGENT_DIR="$TMP/$host" LD_PRELOAD="$LIB" "$@"
}
client hostA "$TMP/writer" "$KEY" "$WORD" >"$TMP/writer.out" 2>&1 ||
  { cat "$TMP/writer.out" >&2; fail "the writer failed"; }
cat "$TMP/writer.out"
agent_pid=$(cat "$TMP/hostA/dshm-0/agent-127.0.0.1_$PORT.pid" 2>/dev/null)
[ -n "$agent_pid" ] || fail "no host agent pid file in $TMP/hostA/dshm-0"
exe=$(readlink "/proc/$agent_pid/exe" 2>/dev/null)
[ "$exe" = "$AGENT" ] || fail "host A's agent runs '$exe', not the installed $AGENT"
say "host A's agent is the installed one, found beside the library ($exe)"
# The reader as nobody, on another host: the data went through the server.
setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups \
  env -u DSHM_AGENT_BIN DSHM_SERVER="127.0.0.1:$PORT" DSHM_AGENT_DIR="$TMP/hostB" \
  LD_PRELOAD="$LIB" "$TMP/reader" "$KEY" >"$TMP/reader.out" 2>&1 ||
  { cat "$TMP/reader.out" >&2; fail "the reader failed"; }
cat "$TMP/reader.out"
grep -q "read \"$WORD (written by pid" "$TMP/reader.out" || fail "the reader did not read '$WORD'"
if ipcs -m 2>/dev/null | grep -qi "^$KEY "; then
  fail "key $KEY is a kernel segment: the library did not send it to the server"
fi
grep -q 'hello from dshm-agent@' "$TMP/server.err" || fail "the server saw no host agent"
say "host B read what host A wrote, through the server; the kernel has no such segment"
# The installed dshm command, with no LD_PRELOAD and no DSHM_PRELOAD_LIB: it must find the
# installed library itself and list the writer's segment, as ipcs would.
[ -x /usr/bin/dshm ] || fail "/usr/bin/dshm is not installed"
env -u LD_PRELOAD -u DSHM_PRELOAD_LIB -u DSHM_AGENT_BIN DSHM_SERVER="127.0.0.1:$PORT" \
  DSHM_AGENT_DIR="$TMP/hostA" /usr/bin/dshm ls -m >"$TMP/dshm-ls.out" 2>&1 ||
  { cat "$TMP/dshm-ls.out" >&2; fail "dshm ls failed"; }
grep -qi "^$(printf '0x%08x' "$KEY") " "$TMP/dshm-ls.out" ||
  { cat "$TMP/dshm-ls.out" >&2; fail "dshm ls does not list $KEY"; }
man -w dshm >/dev/null 2>&1 || [ -f /usr/share/man/man1/dshm.1.gz ] || fail "no dshm(1) installed"
say "the installed dshm command lists the segment (library found in its installed place)"

# --- 4b. the agent's user units, systemd-socket-activate standing in for systemd --------------
# The socket unit's path and the service's ExecStart with the specifiers a user's manager
# gives them (%t the runtime directory, %U the uid, %i the instance: the agent's name), then a
# reader under the installed library with only XDG_RUNTIME_DIR to find its agent: it must be
# served by the activated one (DSHM_AGENT_BIN names nothing, so it cannot start its own).
step "the agent's user units (systemd-socket-activate as the socket unit)"
if command -v systemd-socket-activate >/dev/null; then
  RUNDIR=$TMP/run
  mkdir -m 700 "$RUNDIR"
  ANAME=$(env -u DSHM_TOKEN -u DSHM_TOKEN_FILE "$AGENT" --print-name --server "127.0.0.1:$PORT")
  [ "$ANAME" = "agent-127.0.0.1_$PORT" ] || fail "dshm-agent --print-name says '$ANAME'"
  spec() { local v=$1; v=${v//%t/$RUNDIR}; v=${v//%U/$(id -u)}; v=${v//%i/$ANAME}; printf '%s' "$v"; }
  mapfile -t listens < <(sed -n 's/^ListenSequentialPacket=//p' "$ASOCKET")
  [ ${#listens[@]} = 1 ] || fail "expected one ListenSequentialPacket= in $ASOCKET"
  ASOCK=$(spec "${listens[0]}")
  [ "$ASOCK" = "$RUNDIR/dshm-$(id -u)/$ANAME.sock" ] || fail "the socket unit listens at $ASOCK"
  mapfile -t aexecs < <(sed -n 's/^ExecStart=//p' "$ASERVICE")
  [ ${#aexecs[@]} = 1 ] || fail "expected one ExecStart= line in $ASERVICE"
  acmd=$(spec "${aexecs[0]}")
  acmd=${acmd//'${DSHM_SERVER}'/127.0.0.1:$PORT}
  acmd=${acmd//'${DSHM_AGENT_IDLE_MS}'/300}
  [[ $acmd == *[%$]* ]] && fail "the agent's ExecStart has a specifier this test does not know: $acmd"
  read -r -a aargv <<<"$acmd"
  [ "${aargv[0]}" = "$AGENT" ] || fail "the agent's ExecStart runs ${aargv[0]}, not $AGENT"
  mkdir -m 700 "$RUNDIR/dshm-$(id -u)" # the socket unit's DirectoryMode=0700
  systemd-socket-activate -l "$ASOCK" --seqpacket "${aargv[@]}" >"$TMP/unit-agent.log" 2>&1 &
  ASSA_PID=$!
  for _ in $(seq 100); do [ -S "$ASOCK" ] && break; sleep 0.05; done
  [ -S "$ASOCK" ] || fail "systemd-socket-activate does not listen at $ASOCK"
  env -u DSHM_AGENT_DIR -u DSHM_TOKEN -u DSHM_TOKEN_FILE -u DSHM_AGENT_IDLE_MS \
    DSHM_AGENT_BIN=/nonexistent/dshm-agent XDG_RUNTIME_DIR="$RUNDIR" \
    DSHM_SERVER="127.0.0.1:$PORT" LD_PRELOAD="$LIB" "$TMP/reader" "$KEY" >"$TMP/reader2.out" 2>&1 ||
    { cat "$TMP/reader2.out" "$TMP/unit-agent.log" >&2; fail "the reader served by the unit's agent failed"; }
  grep -q "read \"$WORD (written by pid" "$TMP/reader2.out" || fail "the unit's agent's reader did not read '$WORD'"
  grep -q "socket from systemd" "$TMP/unit-agent.log" || fail "the agent does not say it was activated"
  # It exits idle (--idle-ms 300 here) with success, and leaves the socket file to systemd.
  wait "$ASSA_PID"
  arc=$?
  ASSA_PID=""
  [ $arc = 0 ] || { cat "$TMP/unit-agent.log" >&2; fail "the activated agent exited $arc"; }
  [ -S "$ASOCK" ] || fail "the activated agent removed the socket file systemd made"
  say "the reader, finding its agent through XDG_RUNTIME_DIR alone, was served by the unit's agent"
else
  say "systemd-socket-activate is missing: the agent's units are not run"
fi

# --- 5. stop the server as systemd would (KillSignal=SIGTERM) -----------------------------------
step "SIGTERM"
# The agents exit by themselves DSHM_AGENT_IDLE_MS (2 s) after their last process.
for _ in $(seq 100); do
  alive=0
  [ -n "$ASSA_PID" ] && kill -TERM "$ASSA_PID" 2>/dev/null
  for pidfile in "$TMP"/host*/dshm-*/agent-*.pid "$TMP"/run/dshm-*/agent-*.pid; do
    pid=$(cat "$pidfile" 2>/dev/null)
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$AGENT" ] && alive=1
  done
  [ $alive = 0 ] && break
  sleep 0.1
done
[ $alive = 0 ] || fail "a host agent did not exit by itself"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
src=$?
SERVER_PID=""
[ $src = 0 ] || { cat "$TMP/server.err" >&2; fail "the server exited $src on SIGTERM"; }
grep -q 'exited cleanly' "$TMP/server.err" || fail "no 'exited cleanly' in the server's log"
[ -s "$TMP/state/$state/meta" ] || fail "no segment table in the state directory"
say "stopped cleanly (exit 0); the segment is kept in the state directory"

# --- 6. remove and purge --------------------------------------------------------------------
step "dpkg -r, dpkg --purge"
dpkg -r dshm >"$TMP/dpkg-r.log" 2>&1 || { cat "$TMP/dpkg-r.log" >&2; fail "dpkg -r failed"; }
for f in "${FILES[@]}"; do
  [ -e "$f" ] && fail "$f is still there after dpkg -r"
done
[ -d "/usr/lib/$MA/dshm" ] && fail "/usr/lib/$MA/dshm is still there after dpkg -r"
dpkg --purge dshm >"$TMP/dpkg-purge.log" 2>&1 || { cat "$TMP/dpkg-purge.log" >&2; fail "dpkg --purge failed"; }
dpkg-query -W -f='${Status}' dshm 2>/dev/null | grep -q installed && fail "dshm is still known to dpkg"
for f in /etc/systemd/system/multi-user.target.wants/dshm-server.service \
         /var/lib/systemd/deb-systemd-helper-enabled/dshm-server.service.dsh-also \
         /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/dshm-server.service; do
  [ -e "$f" ] && fail "$f is left after the purge"
done
[ -e /var/lib/dshm ] || [ -L /var/lib/dshm ] || [ -e /var/lib/private/dshm ] &&
  fail "the state directory is left after the purge"
INSTALLED=0
say "removed and purged: nothing of the package is left"

step "passed"
say "passed in $((SECONDS - T0)) s"
