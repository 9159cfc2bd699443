#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='solverctl: build (exit codes, outputs, relative paths, Ctrl-C), the job commands, the tty display'
. "$(dirname "$0")/lib.sh"

sfs_find_solverctl

ctl() {
	timeout 60 "$SOLVERCTL" -m "$MNT" "$@"
}

# Unique per run, so pgrep finds only this test's processes.
MARK="sfs-ctl-$$-$RANDOM"
SLEEP="41.$$$RANDOM"
export MARK SLEEP

# A project whose spec names its sources relatively, as a user keeps it.
mkdir -p "$DATA/proj/src" "$DATA/elsewhere"
printf 'hello from solverctl\n' >"$DATA/proj/src/msg.txt"
cat >"$DATA/proj/spec.json" <<'JSON'
{"vertices": {
  "src": {"op": "local", "path": "./src"},
  "up": {"op": "exec", "name": "shout",
         "args": ["sh", "-c", "echo shouting; tr a-z A-Z < in/msg.txt > out/MSG.txt"],
         "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]},
  "meta": {"op": "file", "actions": [{"mkfile": {"path": "VERSION", "data": "1.0\n"}}]}},
 "outputs": ["up", "meta"]}
JSON
cat >"$DATA/bad.json" <<'JSON'
{"vertices": {"a": {"op": "exec", "argz": ["true"]}}, "outputs": ["a"]}
JSON
cat >"$DATA/fail.json" <<JSON
{"vertices": {"boom": {"op": "exec",
  "args": ["sh", "-c", "echo first-line; echo last-words-$MARK >&2; exit 3"],
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["boom"]}
JSON
cat >"$DATA/slow.json" <<JSON
{"vertices": {"slow": {"op": "exec", "name": "slow",
  "args": ["sh", "-c", "echo started-$MARK; sleep $SLEEP"],
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["slow"]}
JSON
# Prints a few lines while it runs, so the tty display has a log tail to show.
cat >"$DATA/ticks.json" <<JSON
{"vertices": {"ticks": {"op": "exec", "name": "ticker",
  "args": ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do echo tick-\$i; sleep 0.2; done; echo \$RANDOM > out/r"],
  "mounts": [{"dest": "out", "output": true}]},
  "f": {"op": "file", "actions": [{"mkfile": {"path": "x", "data": "x"}}]}},
 "outputs": ["ticks", "f"]}
JSON

sfs_mount || say "# mount failed; every case below will fail"

# expect_rc CODE OUT ERR CMD...: CMD, with stdout to OUT and stderr to ERR, exits CODE.
expect_rc() {
	local want=$1 out=$2 err=$3 rc=0
	shift 3
	"$@" >"$out" 2>"$err" || rc=$?
	expect_eq "exit $want" "exit $rc"
}

# job_of FILE: the job number from solverctl's "solverctl: job N" line in FILE.
job_of() {
	sed -n 's/^solverctl: job \([0-9]*\)$/\1/p' "$1" | head -n 1
}

test_expect_success 'build resolves relative local paths against the spec dir, prints the outputs, exits 0' '
	cd "$DATA/elsewhere" &&
	ctl build --progress=plain ../proj/spec.json >out 2>err &&
	N=$(job_of err) && test -n "$N" &&
	expect_eq 2 "$(wc -l <out)" &&
	expect_eq "$MNT/results/$(awk "\$1 == \"up\" { sub(\"sha256:\", \"\", \$2); print \$2 }" "$MNT/jobs/$N/result")" "$(head -n 1 out)" &&
	expect_file_eq "HELLO FROM SOLVERCTL" "$(head -n 1 out)/MSG.txt" &&
	expect_file_eq "1.0" "$(sed -n 2p out)/VERSION" &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$N/state")" &&
	expect_contains "\"path\":\"$DATA/proj/src\"" "$(sfs_cat "$MNT/jobs/$N/spec")" &&
	expect_contains "[shout] sh -c echo shouting" "$(cat err)" &&
	echo "$N" >"$SCRATCH/job-ok"
'

test_expect_success 'build - reads the spec from stdin, relative to the cwd' '
	cd "$DATA/proj" &&
	ctl build --progress=plain - <spec.json >out 2>err &&
	expect_file_eq "HELLO FROM SOLVERCTL" "$(head -n 1 out)/MSG.txt" &&
	cd "$DATA/elsewhere" &&
	test_must_fail ctl build --progress=plain - <"$DATA/proj/spec.json" >out2 2>err2 &&
	expect_contains "$DATA/elsewhere/src" "$(cat err2)"
'

test_expect_success 'a rejected spec exits 2 with the reason naming vertex and field, and its job number' '
	expect_rc 2 out err ctl build --progress=plain "$DATA/bad.json" &&
	N=$(job_of err) && test -n "$N" &&
	expect_contains "job $N: spec rejected: vertex \"a\": field \"argz\": unknown field" "$(cat err)" &&
	expect_not_contains "spec rejected: job" "$(cat err)" &&
	expect_eq "$N" "$(readlink "$MNT/jobs/last-rejected")" &&
	expect_eq "" "$(cat out)"
'

test_expect_success 'a failed job exits 1 with the error and the failing vertex'"'"'s last log lines; a spec with nothing to rewrite goes as it is' '
	expect_rc 1 out err ctl build --progress=tty "$DATA/fail.json" &&
	N=$(job_of err) &&
	expect_eq failed "$(sfs_cat "$MNT/jobs/$N/state")" &&
	cmp "$DATA/fail.json" "$MNT/jobs/$N/spec" &&
	expect_contains "job $N failed: vertex \"boom\": process" "$(cat err)" &&
	expect_contains "exit code: 3" "$(cat err)" &&
	expect_contains "last-words-$MARK" "$(cat err)" &&
	expect_contains "first-line" "$(cat err)" &&
	expect_eq "" "$(cat out)"
'

test_expect_success 'Ctrl-C (SIGINT) cancels the job and exits 130' '
	"$SOLVERCTL" -m "$MNT" build --progress=plain "$DATA/slow.json" >out 2>err </dev/null &
	pid=$! &&
	wait_for_proc "sleep $SLEEP" &&
	N=$(job_of err) &&
	expect_eq running "$(sfs_cat "$MNT/jobs/$N/state")" &&
	kill -INT "$pid" &&
	rc=0 && { wait "$pid" || rc=$?; } &&
	expect_eq 130 "$rc" &&
	expect_eq cancelled "$(SFS_WAIT_TIMEOUT=10 sfs_wait "$N")" &&
	expect_contains "job $N: cancelled" "$(cat err)" &&
	wait_no_proc "sleep $SLEEP"
'

test_expect_success 'Ctrl-C under the tty display cancels too' '
	"$SOLVERCTL" -m "$MNT" build --progress=tty "$DATA/slow.json" >out 2>err </dev/null &
	pid=$! &&
	wait_for_proc "sleep $SLEEP" &&
	N=$(job_of err) &&
	kill -INT "$pid" &&
	rc=0 && { wait "$pid" || rc=$?; } &&
	expect_eq 130 "$rc" &&
	expect_eq cancelled "$(SFS_WAIT_TIMEOUT=10 sfs_wait "$N")" &&
	wait_no_proc "sleep $SLEEP"
'

test_expect_success '--no-cache sets ignore_cache on the job and every vertex: nothing is CACHED' '
	cd "$DATA/proj" &&
	ctl build --progress=plain spec.json >/dev/null 2>err1 &&
	expect_contains CACHED "$(cat err1)" &&
	ctl build --progress=plain --no-cache spec.json >/dev/null 2>err2 &&
	N=$(job_of err2) &&
	expect_not_contains CACHED "$(cat err2)" &&
	expect_eq DONE "$(sfs_final "$N" shout)" &&
	python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
assert s[\"ignore_cache\"] is True
assert all(v[\"ignore_cache\"] is True for v in s[\"vertices\"].values())
" "$MNT/jobs/$N/spec"
'

test_expect_success '-o maps onto spec fields and refuses the rest (exit 2, nothing submitted)' '
	cd "$DATA/proj" &&
	before=$(ls "$MNT/jobs" | grep -c "^[0-9]") &&
	expect_rc 2 out err ctl build -o nonsense=1 spec.json &&
	expect_contains "-o nonsense: unknown option" "$(cat err)" &&
	expect_contains "export.mode" "$(cat err)" &&
	expect_rc 2 /dev/null err ctl build -o export.mode=most spec.json &&
	expect_eq "$before" "$(ls "$MNT/jobs" | grep -c "^[0-9]")" &&
	ctl build --progress=plain -o export.mode=max -o ignore_cache=true spec.json >out 2>err &&
	N=$(job_of err) &&
	expect_contains "\"export\":{\"mode\":\"max\"}" "$(sfs_cat "$MNT/jobs/$N/spec")" &&
	test -f "$MNT/jobs/$N/export/index.json"
'

test_expect_success '--export DIR asks for an export and copies it to DIR' '
	cd "$DATA/proj" &&
	ctl build --progress=plain --export "$SCRATCH/exp" spec.json >out 2>err &&
	test -f "$SCRATCH/exp/oci-layout" && test -f "$SCRATCH/exp/index.json" &&
	test -d "$SCRATCH/exp/blobs/sha256" &&
	N=$(job_of err) &&
	diff -r "$MNT/jobs/$N/export" "$SCRATCH/exp" &&
	ctl export "$N" "$SCRATCH/exp2" && diff -r "$SCRATCH/exp" "$SCRATCH/exp2"
'

test_expect_success 'rawjson prints status.json lines' '
	cd "$DATA/proj" &&
	ctl build --progress=rawjson spec.json >out 2>err &&
	grep "^{" err >lines &&
	json_check lines "\"vertexes\" in o or \"logs\" in o or \"statuses\" in o"
'

test_expect_success 'ls, status, why, graph of a job' '
	N=$(cat "$SCRATCH/job-ok") &&
	ctl ls >ls &&
	expect_contains "JOB" "$(head -n 1 ls)" &&
	awk -v n="$N" "\$1 == n && \$2 == \"done\" && \$NF == \"up,meta\" { f = 1 } END { exit !f }" ls &&
	ctl status "$N" >st && expect_contains "#" "$(cat st)" && expect_contains "[shout]" "$(cat st)" &&
	ctl why "$N" >why && expect_contains "[shout] executed" "$(cat why)" &&
	ctl graph "$N" >dot && expect_contains "digraph" "$(head -n 1 dot)"
'

test_expect_success 'logs by spec key, by name, and an unknown vertex' '
	N=$(cat "$SCRATCH/job-ok") &&
	expect_eq "$(ctl logs "$N" up)" "$(sfs_cat "$MNT/jobs/$N/by-name/up/log")" &&
	expect_contains shouting "$(ctl logs "$N" up)" &&
	expect_contains shouting "$(ctl logs "$N" shout)" &&
	expect_rc 1 out err ctl logs "$N" nosuch &&
	expect_contains "job $N has no vertex '"'"'nosuch'"'"'" "$(cat err)" &&
	expect_contains "shout" "$(cat err)"
'

test_expect_success 'a missing job, a finished job to cancel, a job without export' '
	expect_rc 1 /dev/null err ctl status 99999 && expect_contains "no job 99999 in $MNT" "$(cat err)" &&
	expect_rc 1 /dev/null err ctl logs 99999 up && expect_contains "no job 99999" "$(cat err)" &&
	N=$(cat "$SCRATCH/job-ok") &&
	expect_rc 1 /dev/null err ctl cancel "$N" && expect_contains "job $N: cancel: job $N is already done" "$(cat err)" &&
	expect_rc 1 /dev/null err ctl export "$N" "$SCRATCH/none" && expect_contains "has no cache export" "$(cat err)" &&
	expect_rc 1 /dev/null err ctl status abc && expect_contains "not a job number" "$(cat err)"
'

test_expect_success 'cancel N cancels a pending job' '
	N=$(sfs_new) &&
	ctl cancel "$N" &&
	expect_eq cancelled "$(sfs_cat "$MNT/jobs/$N/state")"
'

test_expect_success 'du reads cache/stats; -v lists the results' '
	ctl du >du && expect_contains "on disk" "$(cat du)" && expect_contains "records" "$(cat du)" &&
	ctl du -v >duv && expect_contains "disk_bytes" "$(cat duv)" &&
	N=$(cat "$SCRATCH/job-ok") &&
	hex=$(awk "NR == 1 { sub(\"sha256:\", \"\", \$2); print \$2 }" "$MNT/jobs/$N/result") &&
	expect_contains "$hex" "$(cat duv)"
'

# discovery_in_own_namespace: in a mount namespace of its own (so mounts of other
# suites running beside this one neither appear nor vanish), every other solverfs
# mount is detached: discovery finds $MNT alone; then a bind mount of $MNT makes two
# entries and solverctl names both and asks to choose.
discovery_in_own_namespace() {
	MNT=$MNT SOLVERCTL=$SOLVERCTL ALT=$SCRATCH/alt unshare -m --propagation private sh -c '
		awk "\$3 == \"fuse.solverfs\" && \$2 != \"$MNT\" { print \$2 }" /proc/self/mounts |
			while read -r m; do umount -l "$m" || exit 1; done
		n=$(awk "\$3 == \"fuse.solverfs\"" /proc/self/mounts | wc -l)
		[ "$n" -eq 1 ] || { echo "$n solverfs mounts left in the namespace"; exit 1; }
		env -u SOLVERFS_MOUNT timeout 10 "$SOLVERCTL" ls | grep -q JOB || { echo "discovery of the one mount failed"; exit 1; }
		mkdir -p "$ALT" && mount --bind "$MNT" "$ALT" || exit 1
		if env -u SOLVERFS_MOUNT timeout 10 "$SOLVERCTL" ls 2>err; then echo "two mounts, yet ls worked"; exit 1; fi
		grep -q "solverfs mounts; choose one" err && grep -q "$MNT" err && grep -q "$ALT" err ||
			{ echo "the error does not name both:"; cat err; exit 1; }
	'
}

test_expect_success 'the mount: -m not a mount, $SOLVERFS_MOUNT, discovery' '
	expect_rc 1 /dev/null err timeout 10 "$SOLVERCTL" -m "$DATA" ls && expect_contains "is not a solverfs mount" "$(cat err)" &&
	expect_rc 1 /dev/null err timeout 10 "$SOLVERCTL" -m "$SCRATCH/nonexistent" ls && expect_contains "No such file" "$(cat err)" &&
	SOLVERFS_MOUNT=$MNT timeout 10 "$SOLVERCTL" ls >ls && expect_contains "JOB" "$(cat ls)" &&
	discovery_in_own_namespace
'


# has FILE ERE / has_not FILE ERE: a line of FILE matches (does not match), said briefly.
has() {
	grep -qE -- "$2" "$1" || { say "no line of $1 matches: $2"; return 1; }
}
has_not() {
	! grep -qE -- "$2" "$1" || { say "a line of $1 matches: $2"; grep -E -m 3 -- "$2" "$1" | cat -v; return 1; }
}

test_expect_success 'the tty display in a pseudo-terminal: header, running vertex, log tail, summary' '
	TERM=xterm timeout 90 script -qefc "\"$SOLVERCTL\" -m \"$MNT\" build --no-cache \"$DATA/ticks.json\"" tty.out >/dev/null &&
	has tty.out "\[\+\] Building [0-9.]+s \([01]/2\)" &&
	has tty.out " => \[ticker\] sh -c .* [|/\\-] [0-9.]+s" &&
	has tty.out " => # tick-3" &&
	has tty.out "\[\+\] Building [0-9.]+s \(2/2\) FINISHED" &&
	has tty.out "FINISHED in [0-9.]+s: 2 executed, 0 cached, 0 failed" &&
	has tty.out "^$MNT/results/[0-9a-f]{64}" &&
	has tty.out "$(printf "\033")\[34m" &&
	has tty.out "$(printf "\033")\[[0-9]+A"
'

test_expect_success 'the tty display: NO_COLOR, CACHED marks, ERROR summary' '
	NO_COLOR=1 TERM=xterm timeout 60 script -qefc "\"$SOLVERCTL\" -m \"$MNT\" build \"$DATA/proj/spec.json\"" c.out >/dev/null &&
	has_not c.out "$(printf "\033")\[3[0-9]m" &&
	has c.out " => CACHED \[shout\]" &&
	has c.out "FINISHED in [0-9.]+s: 1 executed, 2 cached, 0 failed" &&
	expect_rc 1 /dev/null f.err env TERM=xterm timeout 60 script -qefc "\"$SOLVERCTL\" -m \"$MNT\" build \"$DATA/fail.json\"" f.out &&
	has f.out " => ERROR \[boom\]" &&
	has f.out "ERROR in [0-9.]+s: 0 executed, 0 cached, 1 failed" &&
	has f.out "failed: vertex \"boom\""
'

# solverctl reads only files, so a directory laid out like the mount drives the
# display with a status.json of our own: a step that reports bytes (`statuses`),
# which no op of the daemon sends yet.
test_expect_success 'the tty display draws a byte progress bar for a step with statuses' '
	fake=$SCRATCH/fake && mkdir -p "$fake/jobs/7" &&
	printf "7\n" >"$fake/jobs/new" && : >"$fake/jobs/7/spec" &&
	printf "%s\n" \
	  "{\"vertexes\":[{\"digest\":\"sha256:aa\",\"name\":\"[pull] fetch\",\"started\":\"2026-12-02T12:00:00.000000000Z\"}]}" \
	  "{\"statuses\":[{\"id\":\"blob\",\"vertex\":\"sha256:aa\",\"name\":\"copying blob\",\"current\":524288,\"total\":1048576}]}" \
	  >"$fake/jobs/7/status.json" &&
	echo done >"$fake/jobs/7/wait" && echo "pull sha256:$(printf %064d 0)" >"$fake/jobs/7/result" &&
	echo "{\"vertices\": {}}" >"$SCRATCH/empty.json" &&
	TERM=xterm timeout 30 script -qefc "\"$SOLVERCTL\" -m \"$fake\" build --progress=tty \"$SCRATCH/empty.json\"" bar.out >/dev/null &&
	has bar.out "solverctl: job 7" &&
	has bar.out "\[\+\] Building [0-9.]+s \(0/1\)" &&
	has bar.out " => => copying blob +\[==========          \] 512.0 KiB / 1.0 MiB" &&
	has bar.out "^$fake/results/0{64}"
'

# complete WORD...: what the bash completion offers for the last WORD.
complete_words() {
	bash -c '
		. /usr/share/bash-completion/bash_completion
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_solverctl solverctl "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}" 2>/dev/null
		printf "%s\n" "${COMPREPLY[@]}"
	' _ "$SFS_SRC_ROOT/tools/solverctl/solverctl.bash" "$@"
}

test_expect_success 'the bash completion offers commands, options, job numbers and vertex names' '
	N=$(cat "$SCRATCH/job-ok") &&
	expect_eq status "$(complete_words solverctl sta)" &&
	expect_contains "--progress=" "$(complete_words solverctl build --pro)" &&
	expect_eq "rawjson" "$(complete_words solverctl build --progress=r)" &&
	expect_contains "export.mode=" "$(complete_words solverctl build -o ex)" &&
	expect_contains "$N" "$(complete_words solverctl -m "$MNT" logs "")" &&
	expect_eq shout "$(complete_words solverctl -m "$MNT" logs "$N" sho)"
'

test_expect_success 'auto progress without a terminal is the plain format' '
	cd "$DATA/proj" &&
	ctl build spec.json >out 2>err &&
	expect_contains "#1 " "$(cat err)" &&
	expect_not_contains "[+] Building" "$(cat err)"
'

test_done
