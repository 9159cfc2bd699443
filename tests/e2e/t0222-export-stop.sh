#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='an unmount stops a whole-cache export (cache/ctl export) between its keys and blobs: the daemon ends, no temporary layout or latest is left, and the next mount exports cleanly'
. "$(dirname "$0")/lib.sh"

N=2000 # file vertices on one base: each result a layer of its own to make and copy

{
	printf '{"vertices": {\n  "base": {"op": "file", "actions": [{"mkdir": {"path": "d"}}]},\n'
	for i in $(seq 1 "$N"); do
		printf '  "v%d": {"op": "file", "base": "base", "actions": [{"mkfile": {"path": "d/f-%d", "data": "data %d\\n"}}]},\n' \
			"$i" "$i" "$i"
	done
	printf '  "last": {"op": "file", "base": "base", "actions": [{"mkfile": {"path": "d/last", "data": "x"}}]}},\n'
	printf ' "outputs": ['
	seq -f '"v%g"' 1 "$N" | paste -sd, | tr -d '\n'
	printf ', "last"]}\n'
} >"$DATA/many.json"

running() { grep -q '^running: export' "$MNT/cache/ctl"; }
ctl_done() { ! grep -q '^running:' "$MNT/cache/ctl"; }

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success "a job of $N results on one base is cached" '
	SFS_WAIT_TIMEOUT=600 sfs_run "$DATA/many.json" >/dev/null &&
	test "$(ls "$MNT/cache/results" | wc -l)" -gt "$N"
'

# Here, not in a case's subshell: the daemon is this script's child.
echo export >"$MNT/cache/ctl" 2>"$SCRATCH/write-err" || echo "export refused" >"$SCRATCH/refused"
running && touch "$SCRATCH/was-running"
sfs_umount 2>"$SCRATCH/umount-err"
rm -f "$PIDFILE"

test_expect_success 'the unmount came while the export ran, and the export stopped for it' '
	test ! -e "$SCRATCH/refused" &&
	test -e "$SCRATCH/was-running" &&
	test_must_fail sfs_is_mounted &&
	grep "cache/ctl error: export: .*stopped by the unmount" "$LOG"
'

test_expect_success 'no layout was left: neither its temporary directory nor latest nor an export' '
	ls -A "$STATE/exports" >"$SCRATCH/left" 2>/dev/null || true &&
	cat "$SCRATCH/left" &&
	test_must_fail grep -E "^\.whole-|^latest$|^[0-9a-f]{64}$" "$SCRATCH/left"
'

sfs_mount || say "# remount failed"

test_expect_success 'the next mount has no export, and an export then completes' '
	test_must_fail test -e "$MNT/cache/export" &&
	expect_eq "" "$(ls "$MNT/cache/exports")" &&
	echo export >"$MNT/cache/ctl" &&
	sfs_until 280 ctl_done &&
	grep "^ok: export: exported cache/exports/" "$MNT/cache/ctl" &&
	hex=$(basename "$(readlink "$MNT/cache/export")") &&
	test -f "$MNT/cache/exports/$hex/index.json"
'

test_done
