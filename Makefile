# Makefile - a thin front-end over meson/ninja: make, debug, check, demo, install, deb, deps, bench.
BUILD       ?= build
DEBUG_BUILD ?= build-debug
FUZZ_BUILD  ?= build-fuzz
FUZZ_SECONDS ?= 30
PREFIX      ?= /usr/local
MESON_FLAGS ?= -Dwerror=true
# What building and testing need, as Debian/Ubuntu package names.
DEB_PKGS    ?= gcc meson ninja-build pkg-config libuv1-dev check python3 clang libclang-rt-14-dev libsodium-dev fakeroot stress-ng python3-prometheus-client spin
BENCH_PKGS  ?= redis-server gnuplot-nox
# What `make deb` and `make test-pkg` need besides DEB_PKGS (debian/control's Build-Depends are
# in DEB_PKGS; dpkg-buildpackage checks build-essential too).
DEB_BUILD_PKGS ?= build-essential debhelper dpkg-dev lintian
# Where `make deb` puts dshm_VERSION_ARCH.deb, .changes and .buildinfo.
DEB_OUT     ?= build-deb

.PHONY: all release debug check test test-release test-debug test-pkg fuzz deps bench-deps deb-deps \
  demo bench install deb clean verify

all release: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release --prefix=$(PREFIX) $(MESON_FLAGS)

# Debug build with AddressSanitizer and UBSan. b_lundef=false: the shim is a shared library
# that gets its sanitizer runtime from the program it is preloaded into.
debug: deps $(DEBUG_BUILD)/build.ninja
	ninja -C $(DEBUG_BUILD)

$(DEBUG_BUILD)/build.ninja:
	meson setup $(DEBUG_BUILD) --buildtype=debug -Db_sanitize=address,undefined \
	  -Db_lundef=false --prefix=$(PREFIX) $(MESON_FLAGS)

# libFuzzer targets (clang, ASan + UBSan), each run FUZZ_SECONDS from the seeds in tests/fuzz.
fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) tests/fuzz/fuzz_proto tests/fuzz/fuzz_server tests/fuzz/fuzz_agent tests/fuzz/fuzz_http
	sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debug -Dfuzz=true \
	  -Db_sanitize=address,undefined -Db_lundef=false $(MESON_FLAGS)

# Installs whatever of DEB_PKGS is missing; a no-op when everything is there.
deps:
	@DEB_PKGS="$(DEB_PKGS)" sh tests/deps.sh

bench-deps:
	@DEB_PKGS="$(BENCH_PKGS)" sh tests/deps.sh

deb-deps:
	@DEB_PKGS="$(DEB_PKGS) $(DEB_BUILD_PKGS)" sh tests/deps.sh

test-release: all
	meson test -C $(BUILD) --print-errorlogs --num-processes 2

test-debug: debug
	meson test -C $(DEBUG_BUILD) --print-errorlogs --num-processes 2

# The Debian package end to end (tests/pkg/test_deb.sh: build, lintian, dpkg -i, the unit's
# ExecStart, dpkg --purge); skipped (exit 77) when not root. Its own log, pkglog.
test-pkg: all deb-deps
	meson test -C $(BUILD) --suite pkg --print-errorlogs --logbase pkglog

# Every suite in the release build, then the package test, then the same suites under the
# sanitizers, then the fuzzers for FUZZ_SECONDS each.
check test: deps
	$(MAKE) test-release
	$(MAKE) test-pkg
	$(MAKE) test-debug
	$(MAKE) fuzz
	$(MAKE) verify
	@python3 tests/summary.py $(BUILD) $(BUILD):pkglog $(DEBUG_BUILD)

# The page protocol and the wait/wake across hosts model-checked (verify/coherence.pml,
# verify/netwait.pml, docs/protocol.md "The model"): the models must pass (safety, and
# liveness under weak fairness) and every seeded mutant must give a counter-example. Bounded
# configurations (2 or 3 hosts, 1 or 2 processes each; with and without a lost connection, a
# dying process, a server restart with its ghost owner or a refused request); pan's depth
# VERIFY_DEPTH. About 8 to 11 minutes; VERIFY_LIVENESS=0 skips the liveness runs (then about
# 5).
VERIFY_DEPTH ?= 2000
VERIFY_LIVENESS ?= 1
verify: deps
	PAN_DEPTH=$(VERIFY_DEPTH) VERIFY_LIVENESS=$(VERIFY_LIVENESS) sh verify/run.sh $(BUILD)/verify

demo: all
	sh examples/demo.sh $(BUILD)

bench: all bench-deps
	bash bench/run.sh $(BUILD)

install: all
	meson install -C $(BUILD)

# A Debian package built in a copy of the tree (nothing is left in it), then lintian, which
# must find no error and no warning (docs/operations.md, "Installing").
deb: deb-deps
	sh tests/pkg/mkdeb.sh . $(DEB_OUT)
	lintian --fail-on error,warning $(DEB_OUT)/dshm_*.changes

clean:
	rm -rf $(BUILD) $(DEBUG_BUILD) $(FUZZ_BUILD) $(DEB_OUT)
