#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='dynamic files are never stale: stat, cat and tail -f follow a running job'
. "$(dirname "$0")/lib.sh"

MARK="sfs-fresh-$$-$RANDOM"
sfs_exec_spec slow slow "echo first-$MARK; sleep 1.5; echo second-$MARK; sleep 34.$$" >"$DATA/slow.json"
export MARK

# has_vertices N: job N lists a vertex (re-read on each try of sfs_until)
has_vertices() {
	[ -n "$(ls "$MNT/jobs/$1/vertices")" ]
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'tail -f of a running vertex log shows output as it comes' '
	N=$(sfs_submit "$DATA/slow.json") && echo "$N" >"$SCRATCH/job" &&
	sfs_until 10 has_vertices "$N" &&
	hex=$(ls "$MNT/jobs/$N/vertices") && echo "$hex" >"$SCRATCH/hex" &&
	sfs_until 10 grep -q "first-$MARK" "$MNT/vertices/$hex/log" &&
	s1=$(stat -c %s "$MNT/vertices/$hex/log") &&
	expect_eq "$(printf "first-%s\n" "$MARK" | wc -c)" "$s1" &&
	{ timeout 5 tail -n +1 -f "$MNT/vertices/$hex/log" >tailed || true; } &&
	grep -q "^first-$MARK$" tailed &&
	grep -q "^second-$MARK$" tailed &&
	expect_eq "$(sfs_cat "$MNT/vertices/$hex/log" | wc -c)" "$(stat -c %s "$MNT/vertices/$hex/log")"
'

test_expect_success 'stat follows the state file as the job ends' '
	N=$(cat "$SCRATCH/job") &&
	expect_eq 8 "$(stat -c %s "$MNT/jobs/$N/state")" &&
	expect_eq running "$(sfs_cat "$MNT/jobs/$N/state")" &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	expect_eq cancelled "$(SFS_WAIT_TIMEOUT=10 sfs_wait "$N")" &&
	expect_eq 10 "$(stat -c %s "$MNT/jobs/$N/state")" &&
	expect_eq cancelled "$(sfs_cat "$MNT/jobs/$N/state")" &&
	expect_eq "$(sfs_cat "$MNT/jobs/$N/error" | wc -c)" "$(stat -c %s "$MNT/jobs/$N/error")"
'

test_expect_success 'the vertex leaves vertices/ at once when its job ends' '
	hex=$(cat "$SCRATCH/hex") &&
	test_must_fail stat "$MNT/vertices/$hex" &&
	expect_eq "" "$(ls "$MNT/vertices")"
'

test_done
