#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='cancelling a running job kills its processes'
. "$(dirname "$0")/lib.sh"

# Unique per run, so pgrep finds only this test's processes.
MARK="sfs-cancel-$$-$RANDOM"
SLEEP="31.$$$RANDOM"
sfs_exec_spec slow slow "echo starting; sleep $SLEEP; echo $MARK" >"$DATA/slow.json"
cat >"$DATA/pending.json" <<'JSON'
{"vertices": {"f": {"op": "file", "actions": []}}, "outputs": ["f"]}
JSON
export MARK SLEEP

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'a running exec is cancelled within seconds through ctl' '
	N=$(sfs_submit "$DATA/slow.json") && echo "$N" >"$SCRATCH/job" &&
	wait_for_proc "sleep $SLEEP" &&
	expect_eq running "$(sfs_cat "$MNT/jobs/$N/state")" &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	expect_eq cancelled "$(SFS_WAIT_TIMEOUT=10 sfs_wait "$N")" &&
	expect_eq cancelled "$(sfs_cat "$MNT/jobs/$N/state")"
'

test_expect_success 'the cancelled processes are gone' '
	wait_no_proc "sleep $SLEEP" &&
	wait_no_proc "$MARK"
'

test_expect_success 'the status of a cancelled job ends with CANCELED for the vertex' '
	N=$(cat "$SCRATCH/job") &&
	expect_eq CANCELED "$(sfs_final "$N" slow)"
'

test_expect_success 'a cancelled job has no result and no outputs' '
	N=$(cat "$SCRATCH/job") &&
	expect_eq "" "$(sfs_cat "$MNT/jobs/$N/result")" &&
	expect_eq "" "$(ls "$MNT/jobs/$N/outputs" 2>/dev/null)"
'

test_expect_success 'cancelled work is not cached: the same spec runs again' '
	sed "s/sleep $SLEEP/sleep 0.1/" "$DATA/slow.json" >"$DATA/again.json" &&
	N=$(sfs_run "$DATA/again.json") &&
	expect_eq DONE "$(sfs_final "$N" slow)"
'

test_expect_success 'a pending job can be cancelled' '
	N=$(sfs_new) &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	expect_eq cancelled "$(sfs_cat "$MNT/jobs/$N/state")" &&
	test_must_fail sfs_write "$DATA/pending.json" "$MNT/jobs/$N/spec"
'

# Two jobs share one running exec: cancelling one leaves the exec to the other,
# which gets its result; the process ran once (the sandbox hides the host, so
# its start shows in the log and its runs in the executed-vertices metric).
sfs_exec_spec s shared "echo started-$MARK; sleep 3; echo shared-done-$MARK >out/r" >"$DATA/shared.json"

executed() {
	awk '$1 == "solverfs_vertices_executed_total" { print $2 }' "$MNT/metrics"
}

# Globs re-read on each try: the vertex dirs appear while sfs_until waits.
shared_started() {
	grep -qs "started-$MARK" "$MNT"/vertices/*/log
}

# shared_joined N: job N is among the jobs of a vertex
shared_joined() {
	grep -qsx "$1" "$MNT"/vertices/*/jobs
}

test_expect_success 'cancelling one of two jobs that share an exec leaves it to the other' '
	before=$(executed) &&
	A=$(sfs_submit "$DATA/shared.json") &&
	sfs_until 10 shared_started &&
	B=$(sfs_submit "$DATA/shared.json") &&
	sfs_until 10 shared_joined "$B" &&
	echo cancel >"$MNT/jobs/$A/ctl" &&
	expect_eq cancelled "$(sfs_wait "$A")" &&
	expect_eq done "$(sfs_wait "$B")" &&
	expect_eq "shared-done-$MARK" "$(cat "$(sfs_output "$B" s)/r")" &&
	grep -q "started-$MARK" "$MNT/jobs/$B/status" &&
	expect_eq $((before + 1)) "$(executed)"
'

test_expect_success 'unmounting cancels running jobs and kills their processes' '
	N=$(sfs_submit "$DATA/slow.json") && echo "$N" >"$SCRATCH/job2" &&
	wait_for_proc "sleep $SLEEP" &&
	sfs_umount &&
	wait_no_proc "sleep $SLEEP" &&
	wait_no_proc "$MARK"
'

test_expect_success 'after the remount the interrupted job is cancelled' '
	sfs_mount &&
	N=$(cat "$SCRATCH/job2") &&
	expect_eq cancelled "$(sfs_cat "$MNT/jobs/$N/state")"
'

test_done
