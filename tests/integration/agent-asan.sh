#!/bin/sh
# agent-asan.sh - starts the dshm-agent of the build under test (DSHM_TEST_AGENT_REAL) with
# the server's sanitizer options: the shim hands the agent the environment of the process
# that starts it, whose ASAN_OPTIONS switch leak detection off; the agent's own leaks must
# be reported (in its log, which test_agent.c reads). No effect without the sanitizers.
ASAN_OPTIONS=detect_leaks=1 exec "$DSHM_TEST_AGENT_REAL" "$@"
