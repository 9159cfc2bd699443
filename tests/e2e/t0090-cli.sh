#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='the command line: --help, --version, options, mount -t fuse.solverfs'
. "$(dirname "$0")/lib.sh"

VERSION=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$SFS_SRC_ROOT/meson.build" | head -n 1)
export VERSION
printf '{"vertices": {"f": {"op": "file", "actions": [{"mkfile": {"path": "x", "data": "cli"}}]}}, "outputs": ["f"]}\n' >"$DATA/tiny.json"

test_expect_success '--help lists the usage and every solverfs option with its default' '
	timeout 10 "$SOLVERFS" --help >help 2>&1 &&
	h=$(cat help) &&
	expect_contains "STATE_DIR" "$h" && expect_contains "MOUNTPOINT" "$h" &&
	for o in workers= cache_max= sandbox= jobs_keep= -f -d -o; do
		expect_contains "$o" "$h" || exit 1
	done &&
	{ expect_contains "$(nproc)" "$h" || expect_contains "nproc" "$h"; }
'

test_expect_success '--version prints the version' '
	timeout 10 "$SOLVERFS" --version >version 2>&1 &&
	expect_contains "$VERSION" "$(cat version)"
'

test_expect_success 'missing operands are an error with a usage hint' '
	test_must_fail timeout 10 "$SOLVERFS" >usage 2>&1 &&
	test -s usage
'

test_expect_success '-s is refused' '
	test_must_fail timeout 10 "$SOLVERFS" -f -s "$STATE" "$MNT" >single 2>&1 &&
	if mountpoint -q "$MNT"; then fusermount3 -u "$MNT"; exit 1; fi
'

test_expect_success 'an unknown solverfs option value is refused' '
	test_must_fail timeout 10 "$SOLVERFS" -f -o sandbox=maybe "$STATE" "$MNT" >badopt 2>&1 &&
	if mountpoint -q "$MNT"; then fusermount3 -u "$MNT"; exit 1; fi &&
	expect_contains sandbox "$(cat badopt)"
'

test_expect_success 'options after the operands are accepted (as mount.fuse3 passes them)' '
	"$SOLVERFS" "$STATE" "$MNT" -f -o workers=1,sandbox=none </dev/null >>"$LOG" 2>&1 &
	echo $! >"$PIDFILE" &&
	for _ in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.1; done &&
	mountpoint -q "$MNT" &&
	N=$(sfs_run "$DATA/tiny.json") &&
	expect_file_eq cli "$(sfs_output "$N" f)/x" &&
	sfs_umount
'

test_expect_success 'a missing state dir is created' '
	test ! -e "$SCRATCH/newstate" &&
	"$SOLVERFS" -f "$SCRATCH/newstate" "$MNT" </dev/null >>"$LOG" 2>&1 &
	echo $! >"$PIDFILE" &&
	for _ in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.1; done &&
	mountpoint -q "$MNT" &&
	test -d "$SCRATCH/newstate" &&
	sfs_umount
'

test_expect_success 'in the background (no -f) it daemonizes and unmounts cleanly' '
	timeout 20 "$SOLVERFS" "$STATE" "$MNT" </dev/null >>"$LOG" 2>&1 &&
	mountpoint -q "$MNT" &&
	N=$(sfs_run "$DATA/tiny.json") &&
	fusermount3 -u "$MNT" &&
	for _ in $(seq 1 100); do flock -n "$STATE/lock" true && break; sleep 0.1; done &&
	flock -n "$STATE/lock" true
'

# mount -t fuse.solverfs needs solverfs on PATH for mount.fuse3: install it, but only
# where that is wanted (CI as root, or SFS_ALLOW_INSTALL=1).
if [ "$(id -u)" -eq 0 ] && { [ "${CI:-}" = true ] || [ -n "${SFS_ALLOW_INSTALL:-}" ]; } &&
	[ -n "${SFS_BUILD_DIR:-}" ] && command -v mount.fuse3 >/dev/null; then
	test_expect_success 'after meson install, mount -t fuse.solverfs STATE MNT works' '
		meson install -C "$SFS_BUILD_DIR" --no-rebuild >install.log 2>&1 &&
		command -v solverfs &&
		timeout 30 mount -t fuse.solverfs -o workers=2 "$STATE" "$MNT" &&
		mountpoint -q "$MNT" &&
		grep " $MNT fuse.solverfs " /proc/self/mounts &&
		N=$(sfs_run "$DATA/tiny.json") &&
		expect_file_eq cli "$(sfs_output "$N" f)/x" &&
		umount "$MNT" &&
		for _ in $(seq 1 100); do flock -n "$STATE/lock" true && break; sleep 0.1; done &&
		flock -n "$STATE/lock" true
	'
else
	test_skip 'after meson install, mount -t fuse.solverfs STATE MNT works' \
		'needs root and CI=true or SFS_ALLOW_INSTALL=1, because it installs into the default prefix'
fi

test_done
