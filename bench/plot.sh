#!/bin/bash
# plot.sh: draws the main rows of a bench run (dshm against the TCP floor and Redis: latencies, throughputs, 16-client fetches) from its raw result lines into one PNG with gnuplot.
#
# usage: bench/plot.sh RESULTS OUT.png
# RESULTS: the "PHASE NAME key=value ..." lines run.sh prints under "raw results" and keeps
# in BUILD_DIR/bench/results.txt (a whole saved run.sh output works too: other lines are
# skipped). A first line "# TEXT" becomes the plot's subtitle. A figure missing from the
# run is a missing bar. Needs gnuplot (Debian: gnuplot-nox).
set -u

die() { echo "plot.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 RESULTS OUT.png"
IN=$1 OUT=$2
[ -r "$IN" ] || die "cannot read $IN"
command -v gnuplot >/dev/null || die "gnuplot is not installed (Debian: apt-get install gnuplot-nox)"

TMP=$(mktemp -d /tmp/dshm-plot.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# The result lines only: every field after the second is key=value.
awk 'NF >= 3 && $1 ~ /^[a-z0-9-]+$/ && $2 ~ /^[A-Za-z0-9_]+$/ {
  for (i = 3; i <= NF; i++) if ($i !~ /^[A-Za-z0-9_]+=[^=]+$/) next
  print }' "$IN" >"$TMP/res"
[ -s "$TMP/res" ] || die "no result lines in $IN"
SUB=$(sed -n '1s/^# //p' "$IN")

# v PHASE NAME FIELD: the figure, or "?" (gnuplot's missing value).
v() {
  awk -v p="$1" -v n="$2" -v f="$3" 'BEGIN { r = "?" }
    $1 == p && $2 == n { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) r = kv[2] } }
    END { print r }' "$TMP/res"
}

# The delays of the delayed-link phases, in increasing order (d100-fault -> 100).
DELAYS=$(sed -nE 's/^d([0-9]+)-(fault|pp) .*/\1/p' "$TMP/res" | sort -nu | grep -vx 0)
dlabel() { awk -v d="$1" 'BEGIN { if (d >= 1000 && d % 1000 == 0) printf "%d ms", d / 1000; else printf "%d us", d }'; }

# Latencies (us, medians): label, dshm, TCP floor, Redis. At 0 us of delay the first table's
# figures (no relay); delayed, the floor is the raw round trip through a relay of that delay.
# lat_rows LABEL PHASE NAME REDIS_PHASE REDIS_NAME: the row without delay, then one per delay.
lat_rows() {
  printf '"%s\\nno delay" %s %s %s\n' "$1" "$(v "a2-$2" "$3" median)" \
    "$(v tcp tcp_rtt_us median)" "$(v "$4" "$5" median)"
  for d in $DELAYS; do
    printf '"%s\\n%s one-way" %s %s ?\n' "$1" "$(dlabel "$d")" "$(v "d$d-$2" "$3" median)" \
      "$(v "d$d-rtt" tcp_rtt_via_us median)"
  done
}
{
  lat_rows "1-page fault" fault fault_us redis redis_getrange_us
  lat_rows "ping-pong" pp pingpong_us redis redis_pingpong_us
} >"$TMP/lat.dat"

# Throughputs (MB/s): the floor is one 64 MiB TCP stream for both rows.
{
  printf '"cold sequential\\nread 64 MiB" %s %s %s\n' "$(v a2-seqread seqread_MBps value)" \
    "$(v tcp tcp_bulk_MBps value)" "$(v redis redis_bulk_MBps value)"
  printf '"fill 64 MiB\\n+ detach" %s %s %s\n' "$(v a2-fill fill_MBps value)" \
    "$(v tcp tcp_bulk_MBps value)" "$(v redis redis_fill_MBps value)"
} >"$TMP/thr.dat"

# 16 concurrent clients (thousands of 4 KiB pages or requests per second); no TCP floor.
printf '"16 clients,\\n4 KiB pages" %s ? %s\n' \
  "$(awk -v x="$(v f16-fetch fetch_pps value)" 'BEGIN { print x == "?" ? "?" : x / 1000 }')" \
  "$(awk -v x="$(v redis16 redis_getrange_c16_rps value)" 'BEGIN { print x == "?" ? "?" : x / 1000 }')" \
  >"$TMP/f16.dat"

# xtics FILE: gnuplot's tic list of a data file's rows, "LABEL" 0, "LABEL" 1, ... (each row's
# bars stand around its number).
xtics() { awk -F'" ' '{ printf "%s%s\" %d", (NR > 1 ? ", " : ""), $1, NR - 1 }' "$1"; }

# One panel: bars of the three series around each row's x, labelled with their values.
# panel FILE TITLE YLABEL LOG FORMAT
panel() {
  cat <<GP
set title "$2"
set ylabel "$3" offset 1, 0
$([ "$4" = log ] && echo 'set logscale y; set yrange [1:*]' || echo 'unset logscale y; set yrange [0:*]')
set xrange [-0.6:*]
set autoscale xfix
set autoscale yfixmax
set offsets 0, 0.15, graph 0.12, 0
set xtics ($(xtics "$1"))
plot "$1" using (\$0 - 0.27):2 with boxes title "dshm" lc rgb "#1f77b4", \\
     "" using (\$0):3 with boxes title "TCP floor" lc rgb "#7f7f7f", \\
     "" using (\$0 + 0.27):4 with boxes title "Redis" lc rgb "#d62728", \\
     "" using (\$0 - 0.27):2:(sprintf("$5", \$2)) with labels offset 0, 0.7 font ",8" notitle, \\
     "" using (\$0):3:(sprintf("$5", \$3)) with labels offset 0, 0.7 font ",8" notitle, \\
     "" using (\$0 + 0.27):4:(sprintf("$5", \$4)) with labels offset 0, 0.7 font ",8" notitle
GP
}

{
  cat <<GP
set terminal pngcairo size 1600,560 font "sans,10"
set output "$OUT"
set datafile missing "?"
set style fill solid 0.85 border -1
set boxwidth 0.26
set key top left horizontal
set grid ytics
set bmargin 4
set xtics nomirror scale 0 font ",9"
set multiplot title "dshm (two hosts, agent mode) against the TCP floor and Redis\\n{/*0.8 $SUB}"
set lmargin 11
set origin 0, 0
set size 0.56, 0.92
GP
  panel "$TMP/lat.dat" "latency, median (lower is better); floor: a 4 KiB TCP round trip" "microseconds (log scale)" log "%.0f"
  echo 'unset key; set origin 0.56, 0; set size 0.27, 0.92'
  panel "$TMP/thr.dat" "throughput (higher is better)" "MB/s" lin "%.0f"
  echo 'set origin 0.83, 0; set size 0.17, 0.92; set lmargin 8'
  panel "$TMP/f16.dat" "16 concurrent clients" "thousand per second" lin "%.1f"
  echo 'unset multiplot'
} >"$TMP/plot.gp"

gnuplot "$TMP/plot.gp" 2>"$TMP/gp.err" || die "gnuplot failed: $(head -n 5 "$TMP/gp.err")"
[ -s "$OUT" ] || die "gnuplot wrote no $OUT: $(head -n 5 "$TMP/gp.err")"
