#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='mounting and unmounting: the tree appears, the state dir is locked'
. "$(dirname "$0")/lib.sh"

test_expect_success 'solverfs mounts a fresh state dir' '
	sfs_mount &&
	mountpoint -q "$MNT" &&
	test -d "$STATE"
'

test_expect_success 'the mount is a fuse.solverfs filesystem' '
	line=$(grep " $MNT " /proc/self/mounts) &&
	expect_contains "fuse.solverfs" "$line" &&
	expect_contains "nosuid" "$line" &&
	expect_contains "nodev" "$line"
'

test_expect_success 'the root holds README, jobs, vertices, cache, results' '
	ls "$MNT" >ls.out &&
	for n in README jobs vertices cache results; do
		grep -qx "$n" ls.out || { echo "missing $n"; cat ls.out; exit 1; }
	done &&
	test -s "$MNT/README" &&
	test -d "$MNT/jobs" && test -d "$MNT/results"
'

test_expect_success 'README says what the tree is' '
	readme=$(sfs_cat "$MNT/README") &&
	expect_contains "jobs/" "$readme"
'

test_expect_success 'a second mount of the same state dir waits, then fails with "in use by pid"' '
	mkdir -p "$SCRATCH/mnt2" &&
	pid=$(cat "$PIDFILE") &&
	test_must_fail timeout 60 "$SOLVERFS" "$STATE" "$SCRATCH/mnt2" >second.log 2>&1 &&
	if mountpoint -q "$SCRATCH/mnt2"; then fusermount3 -u "$SCRATCH/mnt2"; echo "mounted twice"; exit 1; fi &&
	cat second.log &&
	expect_contains "is in use: waiting up to 30 s for its daemon to exit" "$(cat second.log)" &&
	expect_contains "in use by pid $pid" "$(cat second.log)"
'

test_expect_success 'the first mount still serves after the refused second one' '
	ls "$MNT/jobs" >/dev/null &&
	test -s "$MNT/README"
'

test_expect_success 'unmounting ends the daemon and releases the state dir' '
	pid=$(cat "$PIDFILE") &&
	sfs_umount &&
	! mountpoint -q "$MNT" &&
	! kill -0 "$pid" 2>/dev/null
'

test_expect_success 'the same state dir mounts again after an unmount' '
	sfs_mount &&
	test -d "$MNT/jobs"
'

test_expect_success 'a mountpoint inside the state dir is refused' '
	mkdir -p "$SCRATCH/st2/sub" &&
	rc=0
	test_must_fail timeout 20 "$SOLVERFS" "$SCRATCH/st2" "$SCRATCH/st2/sub" >nested.log 2>&1 || rc=1
	if mountpoint -q "$SCRATCH/st2/sub"; then
		fusermount3 -u "$SCRATCH/st2/sub"
		echo "mounted a mountpoint inside its own state dir"
		exit 1
	fi
	cat nested.log
	test "$rc" -eq 0 && test -s nested.log
'

test_done
