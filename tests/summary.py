#!/usr/bin/env python3
"""summary.py - prints one closing line for every meson test run of `make check`.

Arguments: build directories, each optionally with :LOGBASE (meson test --logbase; default
testlog) for a run that kept its own log."""
import json
import sys

passed = failed = skipped = 0
for arg in sys.argv[1:]:
    build, _, logbase = arg.partition(":")
    try:
        with open(f"{build}/meson-logs/{logbase or 'testlog'}.json") as f:
            for line in f:
                result = json.loads(line).get("result")
                if result in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif result == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    except FileNotFoundError:
        print(f"check: no test log {logbase or 'testlog'} in {build}", file=sys.stderr)
        failed += 1
print(f"check: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
