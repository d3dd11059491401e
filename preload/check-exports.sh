#!/bin/sh
# check-exports.sh NM LIB MAP: fails unless LIB's defined dynamic symbols are exactly MAP's globals.
set -eu
nm=$1 lib=$2 map=$3
want=$(sed -n '/global:/,/local:/p' "$map" | tr -d ' \t;' | grep -v -e 'global:' -e 'local:' -e '^$' | sort)
# Defined, global dynamic symbols only (T/W/D/B...); the version node itself shows as 'A'.
have=$("$nm" -D --defined-only "$lib" | awk '$2 != "A" && $2 ~ /[A-Z]/ {print $3}' | sed 's/@.*//' | sort -u)
if [ "$want" != "$have" ]; then
  echo "exported symbols differ from $map:" >&2
  echo "--- wanted"; echo "$want"; echo "--- got"; echo "$have"
  exit 1
fi
echo "exports ok: $(echo $have)"
