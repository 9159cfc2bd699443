#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='limits on what a user controls: parked status readers (max_parked), a
1 GiB exec log (log_max), 10,000-level deep trees from local and from an exec'
. "$(dirname "$0")/lib.sh"

PARKED=200

# An exec that runs until it is cancelled, so its job stays running while readers park.
sfs_exec_spec s sleepy "echo sleepy-start; sleep 120; echo never > out/x" >"$DATA/sleepy.json"
sfs_exec_spec loud loud "yes a-line-of-a-gigabyte-of-output | head -c 1073741824; echo done > out/x" \
	>"$DATA/loud.json"

# One perl process makes the 10,000 levels (perl-base is essential in Debian): a shell
# loop of 10,000 mkdirs forks 10,000 times, which took over 300 s on a loaded 2-core
# machine, and dash cannot cd below PATH_MAX of logical path.
cat >"$DATA/deep-exec.json" <<'JSON'
{"vertices": {"deep": {"op": "exec", "name": "deep",
  "args": ["perl", "-e", "chdir q(out) or die; for (1 .. 10000) { mkdir q(d) or die; chdir q(d) or die } open(my $f, q(>), q(f)) or die"],
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["deep"]}
JSON

sfs_file_spec q f "still serving" >"$DATA/quiet.json"

daemon_threads() {
	awk '/^Threads:/ { print $2 }' "/proc/$(cat "$PIDFILE")/status"
}

still_serving() {
	N=$(sfs_run "$DATA/quiet.json") &&
	expect_eq "still serving" "$(sfs_cat "$(sfs_output "$N" q)/f")"
}

sfs_mount -o max_parked=$PARKED || say "# mount failed; every case below will fail"

test_expect_success "$PARKED readers of a running job's status park on a few threads and all get the end" '
	N=$(sfs_submit "$DATA/sleepy.json") &&
	before=$(daemon_threads) &&
	pids="" &&
	for i in $(seq 1 $PARKED); do
		timeout 120 cat "$MNT/jobs/$N/status" >"reader.$i" 2>"reader.$i.err" &
		pids="$pids $!"
	done &&
	for _ in $(seq 1 200); do
		p=$(sfs_cat "$MNT/metrics" | awk "/^solverfs_parked_readers / { print \$2 }")
		[ "$p" = "$PARKED" ] && break
		sleep 0.1
	done &&
	echo "parked: $p; daemon threads: $before before, $(daemon_threads) with them parked" &&
	expect_eq "$PARKED" "$p" &&
	test "$(daemon_threads)" -lt $((before + 16)) &&
	test_must_fail timeout 10 cat "$MNT/jobs/$N/status" >over 2>over.err &&
	expect_contains "Resource temporarily unavailable" "$(cat over.err)" &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	for p in $pids; do wait "$p"; done &&
	expect_eq cancelled "$(sfs_wait "$N")" &&
	sfs_cat "$MNT/jobs/$N/status" >final &&
	for i in $(seq 1 $PARKED); do
		test ! -s "reader.$i.err" && cmp -s final "reader.$i" || {
			echo "reader $i:"; cat "reader.$i" "reader.$i.err"; exit 1; }
	done
'

test_expect_success 'after the readers are answered none is left parked' '
	expect_eq 0 "$(sfs_cat "$MNT/metrics" | awk "/^solverfs_parked_readers / { print \$2 }")"
'

test_expect_success 'an exec printing 1 GiB keeps log_max on disk and says it truncated' '
	N=$(SFS_WAIT_TIMEOUT=300 sfs_run "$DATA/loud.json") &&
	log=$(ls -d "$MNT"/jobs/"$N"/vertices/*/log | head -n 1) &&
	size=$(stat -c %s "$log") && echo "log: $size bytes" &&
	test "$size" -le $((64 * 1024 * 1024 + 4096)) &&
	test "$size" -ge $((64 * 1024 * 1024)) &&
	tail -c 200 "$log" | grep -q "output clipped, log limit reached" &&
	timeout 300 cat "$MNT/jobs/$N/status" >loud.status &&
	grep -q "output clipped, status limit" loud.status &&
	status=$(stat -c %s loud.status) && echo "status: $status bytes" &&
	test "$status" -le $((16 * 1024 * 1024 + 4096)) &&
	du_log=$(du -sk "$STATE" | cut -f1) && echo "STATE_DIR: $du_log KiB" &&
	test "$du_log" -lt $((400 * 1024))
'

test_expect_success 'a local dir 10,000 levels deep is refused with a message, no crash' '
	python3 - "$DATA/deep" <<-\PY &&
	import os, sys
	os.mkdir(sys.argv[1])
	fd = os.open(sys.argv[1], os.O_RDONLY)
	for _ in range(10000):
	    os.mkdir("d", dir_fd=fd)
	    nfd = os.open("d", os.O_RDONLY, dir_fd=fd)
	    os.close(fd)
	    fd = nfd
	os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
	PY
	printf "{\"vertices\": {\"src\": {\"op\": \"local\", \"path\": \"%s\"}}, \"outputs\": [\"src\"]}\n" \
		"$DATA/deep" >deep-local.json &&
	N=$(sfs_submit deep-local.json) &&
	expect_eq failed "$(sfs_wait "$N")" &&
	err=$(sfs_cat "$MNT/jobs/$N/error") && echo "$err" &&
	expect_contains "too deep" "$err" &&
	still_serving
'

test_expect_success 'an exec output 10,000 levels deep fails its vertex; its run dir is removed' '
	N=$(SFS_WAIT_TIMEOUT=300 sfs_submit "$DATA/deep-exec.json") &&
	expect_eq failed "$(SFS_WAIT_TIMEOUT=300 sfs_wait "$N")" &&
	err=$(sfs_cat "$MNT/jobs/$N/error") && echo "$err" &&
	expect_contains "levels of directories" "$err" &&
	expect_contains deep "$err" &&
	left=$(find "$STATE/tmp" -mindepth 1 -maxdepth 1 | wc -l) &&
	expect_eq 0 "$left" &&
	still_serving
'

# refused N FILE ERRNO-TEXT WORD...: FILE written into a pending job's spec fails at close
# with ERRNO-TEXT, the job stays pending and its error holds every WORD.
refused() {
	local file=$1 errtext=$2 n err w
	shift 2
	n=$(sfs_new) &&
	test_must_fail sfs_write "$file" "$MNT/jobs/$n/spec" 2>write.err &&
	expect_contains "$errtext" "$(cat write.err)" &&
	expect_eq pending "$(sfs_cat "$MNT/jobs/$n/state")" &&
	err=$(sfs_cat "$MNT/jobs/$n/error") && echo "error: $err" &&
	for w in "$@"; do expect_contains "$w" "$err" || return 1; done
}

test_expect_success 'path_max, name_max and inline_max are mount options the spec obeys' '
	sfs_remount -o path_max=64,name_max=16,inline_max=1K &&
	long=$(printf "p%.0s" $(seq 1 65)) &&
	printf "{\"vertices\": {\"f\": {\"op\": \"file\", \"actions\": [{\"mkdir\": {\"path\": \"%s\"}}]}}, \"outputs\": [\"f\"]}\n" "$long" >path.json &&
	refused path.json "Invalid argument" "vertex \"f\"" path "longer than 64 bytes" path_max &&
	printf "{\"vertices\": {\"f\": {\"op\": \"file\", \"name\": \"%s\", \"actions\": [{\"mkdir\": {\"path\": \"d\"}}]}}, \"outputs\": [\"f\"]}\n" "a-name-of-17-byte" >name.json &&
	refused name.json "Invalid argument" "vertex \"f\"" name "longer than 16 bytes" name_max &&
	data=$(head -c 1025 /dev/zero | tr "\\0" x) &&
	printf "{\"vertices\": {\"f\": {\"op\": \"file\", \"actions\": [{\"mkfile\": {\"path\": \"x\", \"data\": \"%s\"}}]}}, \"outputs\": [\"f\"]}\n" "$data" >inline.json &&
	refused inline.json "File too large" "vertex \"f\"" data "larger than 1024 bytes" inline_max &&
	data=$(head -c 1025 /dev/zero | tr "\\0" x | base64 -w0) &&
	printf "{\"vertices\": {\"f\": {\"op\": \"file\", \"actions\": [{\"mkfile\": {\"path\": \"x\", \"data_base64\": \"%s\"}}]}}, \"outputs\": [\"f\"]}\n" "$data" >inline64.json &&
	refused inline64.json "File too large" data_base64 inline_max &&
	sed "s/p\{65\}/pppp/" path.json >ok.json && sfs_run ok.json >/dev/null &&
	still_serving
'

test_expect_success 'a bad value of each of them refuses the mount with its name' '
	for o in path_max=0 name_max=x inline_max=0; do
		test_must_fail "$SOLVERFS" -f -o "$o" "$STATE.x" "$MNT.x" 2>bad.err &&
		expect_contains "${o%%=*}" "$(cat bad.err)" || exit 1
	done
'

test_done
