#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='jobs/new held open while jobs/ is listed: the write and the close still succeed'
. "$(dirname "$0")/lib.sh"

printf '%s\n' '{"vertices": {"ok": {"op": "file", "actions": [{"mkfile": {"path": "f", "data": "fine"}}]}}, "outputs": ["ok"]}' >"$DATA/good.json"

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'ls jobs between the open and the write of jobs/new' '
	exec 3>"$MNT/jobs/new" &&
	ls "$MNT/jobs" >/dev/null &&
	ls -l "$MNT/jobs" >/dev/null &&
	cat "$DATA/good.json" >&3 &&
	exec 3>&- &&
	N=$(basename "$(readlink "$MNT/jobs/latest")") &&
	expect_eq done "$(sfs_wait "$N")" &&
	expect_file_eq fine "$(sfs_output "$N" ok)/f"
'

test_expect_success 'ls -l jobs between the write and the close of jobs/new' '
	exec 3>"$MNT/jobs/new" &&
	cat "$DATA/good.json" >&3 &&
	ls -l "$MNT/jobs" >/dev/null &&
	exec 3>&- &&
	N=$(basename "$(readlink "$MNT/jobs/latest")") &&
	expect_eq done "$(sfs_wait "$N")"
'

# python reports the errno of the close itself (the shell does not)
test_expect_success 'the close reports success, so a script does not submit twice' '
	python3 - "$MNT" "$DATA/good.json" <<-\PY
	import os, sys
	mnt, spec = sys.argv[1], sys.argv[2]
	before = set(os.listdir(mnt + "/jobs"))
	fd = os.open(mnt + "/jobs/new", os.O_RDWR)
	n = os.read(fd, 32).decode().strip()
	os.listdir(mnt + "/jobs")
	for name in os.listdir(mnt + "/jobs"):
	    os.lstat(mnt + "/jobs/" + name)
	os.write(fd, open(spec, "rb").read())
	os.close(fd)  # raises on EIO
	print("job", n)
	PY
'

test_expect_success 'a stat of jobs/new meanwhile does not spoil the handle' '
	exec 3>"$MNT/jobs/new" &&
	stat "$MNT/jobs/new" >/dev/null &&
	ls -l "$MNT/jobs/new" >/dev/null &&
	cat "$DATA/good.json" >&3 &&
	exec 3>&-
'

test_done
