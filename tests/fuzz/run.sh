#!/bin/sh
# run.sh - runs each libFuzzer target of the fuzz build for a bounded time, starting from the
# checked-in seeds; any crash, leak, sanitizer report or timeout fails (exit status != 0).
# Usage: run.sh FUZZ_BUILD_DIR SECONDS_PER_TARGET
set -eu
build=$1
secs=$2
src=$(dirname "$0")
# UBSan findings are fatal here (the sanitizer default is to report and go on).
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
for t in proto server agent http; do
  corpus=$build/fuzz-corpus/$t
  artifacts=$build/fuzz-artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz: $t for ${secs}s (corpus $corpus, crashes in $artifacts)"
  # New inputs go to the first directory; the seeds are only read. stderr of the target
  # (the server's log lines) is closed; libFuzzer and the sanitizers still report.
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -max_len=16384 -close_fd_mask=2 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$src/seeds/$t"
done
