# shellcheck shell=bash
# tests/e2e/mount.sh — one solverfs daemon on a scratch mountpoint: the mount harness
# that the end-to-end tests (tests/e2e/lib.sh) and the benchmarks (bench/lib.sh) share.
#
# The caller sets SOLVERFS (the binary), STATE (its STATE_DIR), MNT (the mountpoint),
# LOG (the daemon's stderr, appended to) and PIDFILE (where the daemon's pid is kept),
# and optionally:
#   SFS_MSG          what messages start with: "#" (the default, a TAP comment) or "bench:"
#   SFS_UMOUNT_WAIT  seconds sfs_umount waits for the daemon to exit (default 15)
#   SFS_ON_REFUSED   a function sfs_mount calls when the host refused the mount itself
# It signals only the pid it started, never a process found by name.

# sfs_fuse_missing: succeeds (printing the reason and its fix) when this host cannot
# mount FUSE at all, so a caller can skip instead of failing every case.
sfs_fuse_missing() {
	if [ ! -c /dev/fuse ]; then
		echo "/dev/fuse does not exist: load the fuse module (modprobe fuse) or, in a container, pass the device (docker run --device /dev/fuse --cap-add SYS_ADMIN)"
	elif [ ! -r /dev/fuse ] || [ ! -w /dev/fuse ]; then
		echo "/dev/fuse is not readable and writable by uid $(id -u): run as root or make it 0666 (chmod 0666 /dev/fuse)"
	elif [ "$(id -u)" -ne 0 ] && ! command -v fusermount3 >/dev/null; then
		echo "fusermount3 is missing: sudo apt-get install -y --no-install-recommends fuse3"
	else
		return 1
	fi
	return 0
}

# What libfuse and fusermount3 print when the kernel or the host refuses any FUSE
# mount (not a fault of solverfs): sfs_mount then calls $SFS_ON_REFUSED with that line.
SFS_REFUSED_RE='fuse: device not found|failed to open /dev/fuse|fusermount3?: .*(not permitted|Permission denied)|mount failed: (Operation not permitted|Permission denied)'

# sfs_is_mounted_at DIR: is something mounted on DIR?  From /proc/self/mounts, not
# mountpoint(1): a crashed daemon leaves a mount whose stat fails with ENOTCONN, and
# that one must be unmounted too.
sfs_is_mounted_at() {
	awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

sfs_is_mounted() {
	sfs_is_mounted_at "$MNT"
}

# sfs_daemon_pid: the pid of the daemon sfs_mount started (empty when none).
sfs_daemon_pid() {
	[ -f "$PIDFILE" ] && cat "$PIDFILE"
}

# sfs_mount [OPTION...]: start "$SOLVERFS -f [OPTION...] $STATE $MNT" in the background
# (stderr to $LOG) and wait until the mount is live.  Returns non-zero if the daemon
# exits or the mount does not appear within 20 s.
sfs_mount() {
	local pid
	"$SOLVERFS" -f "$@" "$STATE" "$MNT" </dev/null >>"$LOG" 2>&1 &
	pid=$!
	echo "$pid" >"$PIDFILE"
	for _ in $(seq 1 200); do
		if sfs_is_mounted; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "${SFS_MSG:-#} solverfs exited before the mount was live" >&2
			rm -f "$PIDFILE"
			if [ -n "${SFS_ON_REFUSED:-}" ] && grep -Eq "$SFS_REFUSED_RE" "$LOG"; then
				"$SFS_ON_REFUSED" "$(grep -E "$SFS_REFUSED_RE" "$LOG" | tail -n 1)"
			fi
			return 1
		fi
		sleep 0.1
	done
	echo "${SFS_MSG:-#} solverfs did not mount $MNT within 20 s" >&2
	return 1
}

# sfs_umount: unmount $MNT, then wait for the daemon we started to exit; only if it
# lingers, signal that pid (and no other process).
sfs_umount() {
	local pid wait=$((${SFS_UMOUNT_WAIT:-15} * 10))
	pid=$(sfs_daemon_pid)
	if sfs_is_mounted; then
		fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" 2>/dev/null ||
			fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null ||
			echo "${SFS_MSG:-#} could not unmount $MNT" >&2
	fi
	[ -n "$pid" ] || return 0
	for _ in $(seq 1 "$wait"); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "${SFS_MSG:-#} solverfs (pid $pid) still running ${SFS_UMOUNT_WAIT:-15} s after unmount; sending SIGTERM" >&2
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$PIDFILE"
	# Reap it when it is our child; harmless otherwise.
	wait "$pid" 2>/dev/null
	sfs_is_mounted && { fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; }
	return 0
}

sfs_remount() {
	sfs_umount && sfs_mount "$@"
}

# sfs_remove_scratch DIR KEEP: at exit, after sfs_umount: remove DIR unless it is still
# mounted or KEEP is non-empty (then say where it is).
sfs_remove_scratch() {
	if sfs_is_mounted; then
		echo "${SFS_MSG:-#} $MNT is still mounted; leaving $1 in place" >&2
	elif [ -z "$2" ]; then
		chmod -R u+rwx "$1" 2>/dev/null
		rm -rf --one-file-system "$1"
	else
		echo "${SFS_MSG:-#} scratch dir kept: $1" >&2
	fi
}
