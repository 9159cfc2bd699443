#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='crash safety: 10 rounds of kill -9 at a random moment, remount, nothing done lost'
. "$(dirname "$0")/lib.sh"

# The rounds are tests/crash-rounds.sh's (run it by hand with ROUNDS=50); a short version here.
ROUNDS=${ROUNDS:-10}
JOBS_PER_ROUND=${JOBS_PER_ROUND:-2}
SMALL_FILES=${SMALL_FILES:-100}
. "$SFS_SRC_ROOT/tests/crash-rounds.sh"

crash_rounds_run
test_done
