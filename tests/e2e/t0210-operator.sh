#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='operator failures: a second mount, a stale mount point, SIGTERM and unmount with running jobs, a full disk'
. "$(dirname "$0")/lib.sh"

SMALL=$SCRATCH/small # a tmpfs, for the full disk
mkdir -p "$SCRATCH/mnt2" "$SCRATCH/mnt3" "$SCRATCH/mnt4" "$SMALL"
export SMALL

# The extra mounts are unmounted whatever happens, before lib.sh removes the scratch dir.
t0210_cleanup() {
	local rc=$? m
	sfs_umount
	for m in "$SCRATCH/mnt2" "$SCRATCH/mnt3" "$SCRATCH/mnt4"; do
		sfs_is_mounted_at "$m" && fusermount3 -uz "$m" 2>/dev/null
	done
	sfs_is_mounted_at "$SMALL" && umount -l "$SMALL"
	(exit "$rc")
	sfs_cleanup
}
trap t0210_cleanup EXIT

# until_gone PID: until process PID has exited (a zombie counts as exited), 20 s.
until_gone() {
	local st
	for _ in $(seq 1 200); do
		st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
		case $st in Z*) return 0 ;; esac
		sleep 0.1
	done
	echo "pid $1 still running"
	return 1
}

# slow_spec MARK: an exec that sleeps until it is killed, MARK in its args.
slow_spec() {
	sfs_exec_spec slow slow "sleep 1000.$$; : $1"
}

sfs_file_spec s x 'small\n' >"$DATA/small.json"

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'a second mount of the same STATE_DIR fails naming the pid that holds it' '
	pid=$(cat "$PIDFILE") &&
	test_must_fail timeout 60 "$SOLVERFS" -f "$STATE" "$SCRATCH/mnt2" 2>err &&
	cat err &&
	expect_contains "$STATE in use by pid $pid" "$(cat err)" &&
	! sfs_is_mounted_at "$SCRATCH/mnt2"
'

test_expect_success 'in the background too, the pid named is the live daemon' '
	"$SOLVERFS" "$SCRATCH/state3" "$SCRATCH/mnt3" 2>err0 &&
	sfs_is_mounted_at "$SCRATCH/mnt3" &&
	test_must_fail timeout 60 "$SOLVERFS" -f "$SCRATCH/state3" "$SCRATCH/mnt2" 2>err &&
	cat err &&
	pid=$(sed -n "s/.* in use by pid \([0-9]*\)$/\1/p" err) &&
	test -n "$pid" &&
	expect_contains solverfs "$(tr "\0" " " </proc/$pid/cmdline)" &&
	expect_contains "$SCRATCH/mnt3" "$(tr "\0" " " </proc/$pid/cmdline)" &&
	fusermount3 -u "$SCRATCH/mnt3" &&
	until_gone "$pid"
'

# An unmount returns before the daemon has let go of STATE_DIR (it still cancels its
# jobs, ends their processes and saves them): a mount right after it waits for the lock.
# Done here, not in a case's subshell, so the daemon stays our child.
sfs_run "$DATA/small.json" >"$SCRATCH/quick-job"
slow_spec "sfs-quick-$$" >"$DATA/quick.json"
sfs_submit "$DATA/quick.json" >/dev/null
wait_for_proc "sfs-quick-$$" 20
cat "$PIDFILE" >"$SCRATCH/quick-old"
fusermount3 -u "$MNT"
sfs_mount 2>"$SCRATCH/quick-err"
echo "$?" >"$SCRATCH/quick-rc"

test_expect_success 'an unmount followed at once by a mount of the same STATE_DIR works' '
	cat "$SCRATCH/quick-err" &&
	expect_eq 0 "$(cat "$SCRATCH/quick-rc")" &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$(cat "$SCRATCH/quick-job")/state")" &&
	until_gone "$(cat "$SCRATCH/quick-old")"
'

test_expect_success 'a stale mount point is detected at start, with the command that recovers it' '
	"$SOLVERFS" -f "$SCRATCH/state4" "$SCRATCH/mnt4" 2>>"$LOG" &
	pid=$!
	sfs_until 20 sfs_is_mounted_at "$SCRATCH/mnt4"
	kill -9 "$pid"
	wait "$pid" || true
	test_must_fail stat "$SCRATCH/mnt4/jobs" 2>serr &&
	expect_contains "not connected" "$(cat serr)" &&
	test_must_fail timeout 20 "$SOLVERFS" -f "$SCRATCH/state4" "$SCRATCH/mnt4" 2>err &&
	cat err &&
	expect_contains "Transport endpoint is not connected" "$(cat err)" &&
	expect_contains "fusermount3 -uz $SCRATCH/mnt4" "$(cat err)" &&
	cmd=$(sed -n "s/.*unmount it with: //p" err) &&
	expect_eq "fusermount3 -uz $SCRATCH/mnt4" "$cmd" &&
	$cmd &&
	! sfs_is_mounted_at "$SCRATCH/mnt4" &&
	"$SOLVERFS" "$SCRATCH/state4" "$SCRATCH/mnt4" &&
	test -e "$SCRATCH/mnt4/jobs/new" &&
	fusermount3 -u "$SCRATCH/mnt4"
'

# SIGTERM and unmount: the daemon is this shell's child, so the signal and the reaping
# happen here, between the cases.
MARK_TERM="sfs-term-$$-$RANDOM"
MARK_UMOUNT="sfs-umount-$$-$RANDOM"
export MARK_TERM MARK_UMOUNT

test_expect_success 'a job with a running exec before SIGTERM' '
	slow_spec "$MARK_TERM" >"$DATA/term.json" &&
	N=$(sfs_submit "$DATA/term.json") && echo "$N" >"$SCRATCH/term-job" &&
	wait_for_proc "$MARK_TERM" 20 &&
	expect_eq running "$(sfs_cat "$MNT/jobs/$N/state")"
'
pid=$(cat "$PIDFILE")
kill -TERM "$pid"
for _ in $(seq 1 300); do
	st=$(ps -o stat= -p "$pid" 2>/dev/null) || break
	case $st in Z*) break ;; esac
	sleep 0.1
done
wait "$pid"
echo "$?" >"$SCRATCH/term-rc"
rm -f "$PIDFILE"

test_expect_success 'SIGTERM: the daemon exits cleanly, unmounted, and the exec is gone' '
	expect_eq 0 "$(cat "$SCRATCH/term-rc")" &&
	! sfs_is_mounted &&
	expect_eq "" "$(pgrep -af "$MARK_TERM" || true)" &&
	expect_eq ok "$(sqlite3 "$STATE/solverfs.db" "PRAGMA integrity_check")" &&
	test ! -s "$STATE/solverfs.db-wal"
'

sfs_mount || say "# remount failed"

test_expect_success 'after SIGTERM the job is cancelled: solverfs was unmounted' '
	N=$(cat "$SCRATCH/term-job") &&
	expect_eq cancelled "$(sfs_cat "$MNT/jobs/$N/state")" &&
	expect_eq "solverfs was unmounted" "$(sfs_cat "$MNT/jobs/$N/error")" &&
	expect_eq "" "$(ls -A "$STATE/tmp")"
'

test_expect_success 'unmount with a running exec: the daemon exits cleanly and the exec is gone' '
	slow_spec "$MARK_UMOUNT" >"$DATA/umount.json" &&
	N=$(sfs_submit "$DATA/umount.json") && echo "$N" >"$SCRATCH/umount-job" &&
	wait_for_proc "$MARK_UMOUNT" 20 &&
	pid=$(cat "$PIDFILE") &&
	fusermount3 -u "$MNT" &&
	until_gone "$pid" &&
	expect_eq "" "$(pgrep -af "$MARK_UMOUNT" || true)" &&
	expect_eq ok "$(sqlite3 "$STATE/solverfs.db" "PRAGMA integrity_check")"
'

sfs_remount || say "# remount failed"

test_expect_success 'after the unmount the job is cancelled: solverfs was unmounted' '
	N=$(cat "$SCRATCH/umount-job") &&
	expect_eq cancelled "$(sfs_cat "$MNT/jobs/$N/state")" &&
	expect_eq "solverfs was unmounted" "$(sfs_cat "$MNT/jobs/$N/error")"
'

# A sandbox a killed daemon left running: bwrap's processes work in /work inside the
# sandbox, so only their arguments (--bind STATE_DIR/tmp/exec-XXX/work /work) tell
# where they come from.  This stand-in has / as its cwd and the work dir as an argument.
MARK_ORPHAN="sfs-orphan-$$-$RANDOM"
(cd / && exec setsid bash -c 'sleep 1000.$$; : '"$MARK_ORPHAN" "$STATE/tmp/exec-orphan/work" \
	</dev/null >/dev/null 2>&1) &
orphan=$!
wait_for_proc "$MARK_ORPHAN" 20 >/dev/null
sfs_remount || say "# remount failed"

test_expect_success 'a mount kills a session whose arguments name an exec dir of tmp/ (a bwrap left running)' '
	wait_no_proc "$MARK_ORPHAN" &&
	wait_no_proc "sleep 1000.$$" &&
	expect_contains "left running in $STATE/tmp/" "$(cat "$LOG")"
'
kill -KILL -- "-$orphan" 2>/dev/null # its group, should the case above have failed
wait "$orphan" 2>/dev/null

# A full disk: STATE_DIR on an 8 MiB tmpfs.
sfs_umount
STATE=$SMALL/state
export STATE
mount -t tmpfs -o size=8m tmpfs "$SMALL" || say "# cannot mount a tmpfs on $SMALL"
sfs_mount || say "# mount on the tmpfs failed"

sfs_exec_spec big big "head -c 5000000 /dev/urandom > out/a" >"$DATA/big.json"

test_expect_success 'a full disk fails the job that hit it, naming the vertex' '
	N=$(sfs_submit "$DATA/big.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	err=$(sfs_cat "$MNT/jobs/$N/error") && echo "$err" &&
	expect_contains "No space left on device" "$err" &&
	expect_contains "vertex \"big\"" "$err"
'

test_expect_success 'the database stays consistent and the mount keeps serving' '
	expect_eq ok "$(sqlite3 "$STATE/solverfs.db" "PRAGMA integrity_check")" &&
	N=$(sfs_run "$DATA/small.json") &&
	expect_eq small "$(sfs_cat "$MNT/jobs/$N/outputs/s/x")"
'

test_expect_success 'a database that cannot grow: jobs/new fails with No space left on device, until space is freed' '
	{ head -c 20000000 /dev/zero >"$STATE/filler" 2>/dev/null || true; } &&
	test_must_fail sh -c "cat \"\$1\" >\"\$2\"" _ "$DATA/small.json" "$MNT/jobs/new" 2>err &&
	cat err &&
	expect_contains "No space left on device" "$(cat err)" &&
	rm -f "$STATE/filler" &&
	expect_eq ok "$(sqlite3 "$STATE/solverfs.db" "PRAGMA integrity_check")" &&
	sed "s/small/again/" "$DATA/small.json" >"$DATA/again.json" &&
	N=$(sfs_run "$DATA/again.json") &&
	expect_eq again "$(sfs_cat "$MNT/jobs/$N/outputs/s/x")"
'

test_done
