#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='an exec holds no solverfs mount: an unmount during an exec ends the daemon at once'
. "$(dirname "$0")/lib.sh"

# The sandbox binds the host's /var (and /home, /mnt, ...) read-only, recursively, and an
# exec without it gets a copy of the daemon's mount namespace: a solverfs mount below
# them was copied into the exec's namespace, where it kept the mount's FUSE connection
# alive, so an unmount left its daemon waiting for the exec to end (docs/sandbox.md).
# So the mounts here are under /var/tmp, which the sandbox binds, not under $SCRATCH
# (TMPDIR, /tmp by default, which the sandbox replaces by an empty tmpfs).
command -v bwrap >/dev/null || say "# bwrap is missing: apt-get install -y bubblewrap" >&2
VT=$(mktemp -d /var/tmp/sfs-t0036.XXXXXX)
STATE=$VT/state
MNT=$VT/mnt
OTHER=$VT/other
mkdir -p "$MNT" "$OTHER"
export VT STATE MNT OTHER

t0036_cleanup() {
	local rc=$?
	sfs_umount
	sfs_is_mounted_at "$OTHER" && fusermount3 -uz "$OTHER" 2>/dev/null
	[ -f "$SCRATCH/other.pid" ] && kill "$(cat "$SCRATCH/other.pid")" 2>/dev/null
	rm -rf "$VT"
	(exit "$rc")
	sfs_cleanup
}
trap t0036_cleanup EXIT

# until_gone PID: until process PID has exited (a zombie counts as exited), 20 s.
until_gone() {
	local st
	for _ in $(seq 1 200); do
		st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
		case $st in Z*) return 0 ;; esac
		sleep 0.1
	done
	echo "process $1 still running 20 s after the unmount"
	return 1
}

# slow_spec MARK: an exec that sleeps until it is killed, MARK in its args.
slow_spec() {
	sfs_exec_spec slow slow "sleep 1000.$$; : $1"
}

# A second daemon's mount, on its own state: an exec of the first must not hold it either.
start_other() {
	sfs_is_mounted_at "$OTHER" && return 0
	"$SOLVERFS" -f "$VT/state2" "$OTHER" </dev/null >>"$LOG" 2>&1 &
	echo "$!" >"$SCRATCH/other.pid"
	sfs_until 20 sfs_is_mounted_at "$OTHER" || say "# the second mount failed"
}
start_other

# mount_check MODE: an exec lists the solverfs mounts its namespace has.
mount_check() {
	sfs_exec_spec m m "grep -c fuse.solverfs /proc/self/mountinfo > out/n || true; echo $1 >> out/n" \
		>"$DATA/mounts-$1.json" &&
	n=$(sfs_run "$DATA/mounts-$1.json") &&
	expect_eq "0 $1" "$(tr "\n" " " <"$(sfs_output "$n" m)/n" | sed "s/ $//")"
}

# unmount_during_exec MARK: with an exec of MARK running, unmount; the daemon exits at
# once and the exec with it.  At the top level: the daemon is this shell's child.
unmount_during_exec() {
	slow_spec "$1" >"$DATA/$1.json"
	sfs_submit "$DATA/$1.json" >"$SCRATCH/$1-job"
	wait_for_proc "$1" 20 >/dev/null
	cat "$PIDFILE" >"$SCRATCH/$1-pid"
	fusermount3 -u "$MNT"
	local pid
	pid=$(cat "$SCRATCH/$1-pid")
	until_gone "$pid" >"$SCRATCH/$1-gone" && echo gone >"$SCRATCH/$1-gone"
	kill -TERM "$pid" 2>/dev/null # still there: the case fails; end it for the next
	wait "$pid" 2>/dev/null
	rm -f "$PIDFILE"
}

for mode in bwrap none; do
	MARK="sfs-t0036-$mode-$$-$RANDOM"
	export mode MARK
	sfs_mount -o sandbox=$mode || say "# mount with sandbox=$mode failed"

	test_expect_success "sandbox=$mode: an exec's namespace has no solverfs mount" '
		mount_check "$mode"
	'

	unmount_during_exec "$MARK"

	test_expect_success "sandbox=$mode: an unmount during an exec ends the daemon and the exec" '
		expect_eq gone "$(cat "$SCRATCH/$MARK-gone")" &&
		expect_eq "" "$(pgrep -af "$MARK" || true)"
	'

	sfs_mount -o sandbox=$mode || say "# remount failed"

	test_expect_success "sandbox=$mode: the job is cancelled: solverfs was unmounted" '
		N=$(cat "$SCRATCH/$MARK-job") &&
		expect_eq cancelled "$(sfs_cat "$MNT/jobs/$N/state")" &&
		expect_eq "solverfs was unmounted" "$(sfs_cat "$MNT/jobs/$N/error")"
	'

	test_expect_success "sandbox=$mode: another daemon's unmount during an exec ends that daemon" '
		slow_spec "$MARK-other" >"$DATA/other-$mode.json" &&
		N=$(sfs_submit "$DATA/other-$mode.json") &&
		wait_for_proc "$MARK-other" 20 &&
		pid=$(cat "$SCRATCH/other.pid") &&
		fusermount3 -u "$OTHER" &&
		until_gone "$pid" &&
		echo cancel >"$MNT/jobs/$N/ctl" &&
		expect_eq cancelled "$(sfs_cat "$MNT/jobs/$N/wait")"
	'
	sfs_umount
	wait "$(cat "$SCRATCH/other.pid")" 2>/dev/null
	start_other
done

test_done
