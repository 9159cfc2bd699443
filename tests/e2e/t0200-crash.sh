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

# What a kill in the middle of an export leaves, made by hand: the next mount removes a
# half-written export and the export of a job that is not done, and keeps the others.
test_expect_success 'a mount removes half-written exports and exports of jobs not done' '
	hang=$(cat "$CR/round-hang") &&
	expect_eq cancelled "$(sfs_cat "$MNT/jobs/$hang/state")" &&
	kept=$(ls "$STATE/exports" | head -n 1) && test -n "$kept" &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$kept/state")" &&
	before=$(cd "$STATE/exports/$kept" && find . | sort | md5sum) &&
	ls -A "$STATE/exports" >done-exports &&
	sfs_umount &&
	mkdir -p "$STATE/exports/$kept.tmp/blobs" "$STATE/exports/$hang/blobs" "$STATE/exports/99999" &&
	echo "{}" >"$STATE/exports/$hang/index.json" &&
	echo half >"$STATE/exports/$kept.tmp/blobs/x" &&
	sfs_mount &&
	ls -A "$STATE/exports" >left &&
	cmp done-exports left &&
	expect_eq "$before" "$(cd "$STATE/exports/$kept" && find . | sort | md5sum)" &&
	test -s "$MNT/jobs/$kept/export/index.json" &&
	test_must_fail ls "$MNT/jobs/$hang/export" 2>/dev/null
'

test_done
