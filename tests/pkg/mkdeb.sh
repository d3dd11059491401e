#!/bin/sh
# mkdeb.sh - builds the Debian package of the tree SRC in a temporary copy, so that nothing is
# left in the tree, and puts dshm_*.deb, .changes and .buildinfo into OUT (`make deb`).
#   sh tests/pkg/mkdeb.sh SRC OUT
# The tree is copied as git sees it (tracked and untracked files, not the ignored build
# directories); outside a git checkout, everything but build*/ and debian/.debhelper.
set -eu
[ $# -eq 2 ] || { echo "usage: mkdeb.sh SRC OUT" >&2; exit 2; }
src=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dshm-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/dshm"

if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -co --exclude-standard |
    while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done |
    tar -cf - -T -) | tar -C "$tmp/dshm" -xf -
else
  (cd "$src" && tar -cf - --exclude='./build*' --exclude=./debian/.debhelper .) |
    tar -C "$tmp/dshm" -xf -
fi

# The package's version is the project's: one place to bump (meson.build), checked here.
cd "$tmp/dshm"
want=$(sed -n "s/^  version: '\([^']*\)',\$/\1/p" meson.build)
have=$(dpkg-parsechangelog -S Version)
if [ "$want" != "$have" ]; then
  echo "mkdeb: debian/changelog says $have, meson.build says $want: add a changelog entry" >&2
  exit 1
fi

# nocheck: the suites run in `make check`, not here (debian/rules says why).
DEB_BUILD_OPTIONS="nocheck${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}" \
  dpkg-buildpackage -us -uc -b
rm -f "$out"/dshm_* "$out"/dshm-dbgsym_*
mv "$tmp"/dshm_*.deb "$tmp"/dshm-dbgsym_*.deb "$tmp"/dshm_*.changes "$tmp"/dshm_*.buildinfo "$out"/
ls -l "$out"/dshm_* "$out"/dshm-dbgsym_*
