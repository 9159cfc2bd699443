#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='the mount'"'"'s own error paths: a rejected spec stays findable, ctl says what it did, a job joining a running vertex sees it all, what never ran ends cancelled, a bad command line creates nothing, by-name'
. "$(dirname "$0")/lib.sh"

printf '%s\n' '{"vertices": {"ok": {"op": "file", "actions": [{"mkfile": {"path": "f", "data": "fine"}}]}}, "outputs": ["ok"]}' >"$DATA/good.json"
printf '%s\n' '{"vertices": {"vx": {"op": "file", "actions": [], "colour": "red"}}, "outputs": ["vx"]}' >"$DATA/bad.json"

sfs_mount || say "# mount failed; every case below will fail"

# ---------------------------------------------------------------- 1. rejected specs

test_expect_success 'before any rejection there is no jobs/last-rejected' '
	N=$(sfs_run "$DATA/good.json") && echo "$N" >"$SCRATCH/good-job" &&
	test ! -e "$MNT/jobs/last-rejected" && test ! -L "$MNT/jobs/last-rejected" &&
	expect_not_contains last-rejected "$(ls "$MNT/jobs")"
'

test_expect_success 'a spec rejected through jobs/new: last-rejected points at its job, latest does not move' '
	G=$(cat "$SCRATCH/good-job") &&
	test_must_fail sfs_write "$DATA/bad.json" "$MNT/jobs/new" 2>write.err &&
	expect_contains "Invalid argument" "$(cat write.err)" &&
	R=$(readlink "$MNT/jobs/last-rejected") &&
	expect_eq "$G" "$(readlink "$MNT/jobs/latest")" &&
	test "$R" -gt "$G" &&
	expect_eq pending "$(sfs_cat "$MNT/jobs/last-rejected/state")" &&
	expect_contains last-rejected "$(ls "$MNT/jobs")" &&
	echo "$R" >"$SCRATCH/rejected-job"
'

test_expect_success 'its error and the daemon log name the job number, the vertex and the field' '
	R=$(cat "$SCRATCH/rejected-job") &&
	err=$(sfs_cat "$MNT/jobs/$R/error") && echo "$err" &&
	expect_contains "job $R: spec rejected: " "$err" &&
	expect_contains "vertex \"vx\"" "$err" && expect_contains colour "$err" &&
	grep "job $R: spec rejected: " "$LOG" | grep -q colour
'

test_expect_success 'a spec rejected through jobs/N/spec moves last-rejected to N' '
	N=$(sfs_new) &&
	test_must_fail sfs_write "$DATA/bad.json" "$MNT/jobs/$N/spec" &&
	expect_eq "$N" "$(readlink "$MNT/jobs/last-rejected")" &&
	expect_contains "job $N: spec rejected: " "$(sfs_cat "$MNT/jobs/$N/error")" &&
	echo "$N" >"$SCRATCH/rejected-job"
'

test_expect_success 'a corrected spec for that job is accepted: last-rejected goes, latest comes' '
	N=$(cat "$SCRATCH/rejected-job") &&
	sfs_write "$DATA/good.json" "$MNT/jobs/$N/spec" &&
	expect_eq done "$(sfs_wait "$N")" &&
	expect_eq "" "$(sfs_cat "$MNT/jobs/$N/error")" &&
	expect_eq "$N" "$(readlink "$MNT/jobs/latest")" &&
	test ! -L "$MNT/jobs/last-rejected" &&
	expect_not_contains last-rejected "$(ls "$MNT/jobs")"
'

test_expect_success 'a rejected job that is cancelled is no longer the last rejected one' '
	N=$(sfs_new) &&
	test_must_fail sfs_write "$DATA/bad.json" "$MNT/jobs/$N/spec" &&
	expect_eq "$N" "$(readlink "$MNT/jobs/last-rejected")" &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	test ! -L "$MNT/jobs/last-rejected"
'

# ---------------------------------------------------------------- 2. ctl errors

cat >"$DATA/slow.json" <<JSON
{"vertices": {"slow": {"op": "exec", "args": ["sh", "-c", "sleep 30.$$"],
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["slow"]}
JSON

# ctl_fails N TEXT: writing TEXT to jobs/N/ctl fails with EINVAL or EBUSY.
ctl_fails() {
	test_must_fail bash -c 'echo "$2" >"$1"' _ "$MNT/jobs/$1/ctl" "$2" 2>ctl.err
	cat ctl.err
}

test_expect_success 'ctl reads back the last command: a cancel of a finished job, and why' '
	G=$(cat "$SCRATCH/good-job") &&
	expect_mode 644 "$MNT/jobs/$G/ctl" &&
	expect_eq "" "$(sfs_cat "$MNT/jobs/$G/ctl")" &&
	expect_contains "Invalid argument" "$(ctl_fails "$G" cancel)" &&
	expect_eq "error: cancel: job $G is already done" "$(sfs_cat "$MNT/jobs/$G/ctl")" &&
	expect_eq "ctl: cancel: job $G is already done" "$(sfs_cat "$MNT/jobs/$G/error")"
'

test_expect_success 'an unknown command and a command with an argument read back, and add to error' '
	G=$(cat "$SCRATCH/good-job") &&
	ctl_fails "$G" frobnicate &&
	expect_eq "error: frobnicate: unknown command (cancel, discard, keep, unkeep)" "$(sfs_cat "$MNT/jobs/$G/ctl")" &&
	ctl_fails "$G" "cancel now" &&
	expect_eq "error: cancel now: cancel takes no argument" "$(sfs_cat "$MNT/jobs/$G/ctl")" &&
	printf "%s\n" "ctl: cancel: job $G is already done" \
		"ctl: frobnicate: unknown command (cancel, discard, keep, unkeep)" \
		"ctl: cancel now: cancel takes no argument" >want &&
	sfs_cat "$MNT/jobs/$G/error" >got && diff want got &&
	grep -q "job $G: ctl: frobnicate: unknown command" "$LOG"
'

test_expect_success 'a command that works reads back ok, and adds nothing to error' '
	N=$(sfs_new) &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	expect_eq "ok: cancel" "$(sfs_cat "$MNT/jobs/$N/ctl")" &&
	expect_eq cancelled "$(sfs_cat "$MNT/jobs/$N/error")"
'

test_expect_success 'a refused discard of a running job stays in its error after the job ends' '
	S=$(sfs_submit "$DATA/slow.json") &&
	expect_contains "Device or resource busy" "$(ctl_fails "$S" discard)" &&
	expect_eq "error: discard: job $S is running" "$(sfs_cat "$MNT/jobs/$S/ctl")" &&
	expect_eq "ctl: discard: job $S is running" "$(sfs_cat "$MNT/jobs/$S/error")" &&
	echo cancel >"$MNT/jobs/$S/ctl" &&
	expect_eq cancelled "$(sfs_wait "$S")" &&
	printf "%s\n" cancelled "ctl: discard: job $S is running" >want &&
	sfs_cat "$MNT/jobs/$S/error" >got && diff want got &&
	echo "$S" >"$SCRATCH/slow-job"
'

test_expect_success 'error keeps the newest 16 refused commands' '
	N=$(sfs_run "$DATA/good.json") && echo "$N" >"$SCRATCH/many-job" &&
	for i in $(seq 1 20); do ctl_fails "$N" "bad$i" >/dev/null || exit 1; done &&
	sfs_cat "$MNT/jobs/$N/error" >got && cat got &&
	expect_eq 16 "$(wc -l <got)" &&
	expect_eq "ctl: bad5: unknown command (cancel, discard, keep, unkeep)" "$(head -n 1 got)" &&
	expect_eq "ctl: bad20: unknown command (cancel, discard, keep, unkeep)" "$(tail -n 1 got)"
'

# The exec below waits for a file of the test: on the host (sandbox=none), since the
# sandbox has a /tmp of its own.
sfs_remount -o sandbox=none || say "# remount failed"

test_expect_success 'the refused commands are kept with the job history across a remount' '
	G=$(cat "$SCRATCH/good-job") && S=$(cat "$SCRATCH/slow-job") && M=$(cat "$SCRATCH/many-job") &&
	expect_eq 3 "$(sfs_cat "$MNT/jobs/$G/error" | grep -c "^ctl: ")" &&
	expect_contains "ctl: discard: job $S is running" "$(sfs_cat "$MNT/jobs/$S/error")" &&
	expect_eq 16 "$(sfs_cat "$MNT/jobs/$M/error" | wc -l)"
'

# ---------------------------------------------------------------- 3. joining a running vertex

MARK="sfs-join-$$-$RANDOM"
cat >"$DATA/shared.json" <<JSON
{"vertices": {"base": {"op": "file", "actions": [{"mkfile": {"path": "f", "data": "$MARK"}}]},
  "sh": {"op": "exec", "name": "shared", "mounts": [{"dest": "in", "input": "base"}, {"dest": "out", "output": true}],
         "args": ["sh", "-c", "echo first-$MARK; while [ ! -e '$DATA/go' ]; do sleep 0.1; done; echo second-$MARK; cp in/f out/"]}},
 "outputs": ["sh"]}
JSON

# plain_of N: job N's plain status lines of its [shared] vertex (#num replaced by #).
plain_of() {
	sfs_cat "$MNT/jobs/$1/status" >"st-$1" &&
	num=$(awk '$2 == "[shared]" { print $1; exit }' "st-$1") &&
	awk -v n="$num" '$1 == n { $1 = "#"; print }' "st-$1"
}

# started_of N: the started time status.json gives the [shared] vertex of job N.
started_of() {
	python3 -c '
import json, sys
t = ""
for line in open(sys.argv[1]):
    for v in json.loads(line).get("vertexes", []):
        if v["name"].startswith("[shared]") and v.get("started"):
            t = v["started"]
print(t)' "$MNT/jobs/$1/status.json"
}

test_expect_success 'a job that joins a running exec sees its whole log and its real start and duration' '
	A=$(sfs_submit "$DATA/shared.json") &&
	for _ in $(seq 1 300); do
		grep -qs "first-$MARK" "$MNT"/jobs/"$A"/vertices/*/log && break; sleep 0.1
	done &&
	B=$(sfs_submit "$DATA/shared.json") &&
	expect_eq running "$(sfs_cat "$MNT/jobs/$B/state")" &&
	touch "$DATA/go" &&
	expect_eq done "$(sfs_wait "$B")" && expect_eq done "$(sfs_wait "$A")" &&
	plain_of "$A" >a.txt && plain_of "$B" >b.txt &&
	cat a.txt b.txt &&
	grep -q "first-$MARK" b.txt && grep -q "second-$MARK" b.txt &&
	grep -q "^# DONE" b.txt &&
	expect_not_contains "DONE 0.0s" "$(grep "^# DONE" b.txt)" &&
	tail -n +2 a.txt >a.body && tail -n +2 b.txt >b.body && diff a.body b.body &&
	expect_eq "$(started_of "$A")" "$(started_of "$B")" &&
	test -n "$(started_of "$B")"
'

test_expect_success 'its status.json carries the log written before it joined' '
	B=$(readlink "$MNT/jobs/latest") &&
	sfs_cat "$MNT/jobs/$B/status.json" >b.json &&
	python3 - b.json "$MARK" <<-EOF
	import base64, json, sys
	data = b""
	for line in open(sys.argv[1]):
	    for l in json.loads(line).get("logs", []):
	        data += base64.b64decode(l["data"])
	mark = sys.argv[2].encode()
	assert b"first-" + mark in data and b"second-" + mark in data, data
	EOF
'

# ---------------------------------------------------------------- 4. what never ran

# vstates N: "name state | why" for each vertex of job N, sorted.
vstates() {
	for d in "$MNT/jobs/$1/vertices"/*; do
		printf '%s %s | %s\n' "$(sfs_cat "$d/name")" "$(sfs_cat "$d/state")" "$(sfs_cat "$d/why")"
	done | sort
}

# dot_state N NAME: the state graph.dot gives vertex NAME of job N (its tooltip).
dot_state() {
	sfs_cat "$MNT/jobs/$1/graph.dot" | sed -n "s/.*label=\"$2\", fillcolor=\([a-z]*\), tooltip=\"\([a-z]*\) .*/\1 \2/p"
}

cat >"$DATA/fails.json" <<JSON
{"vertices": {"src": {"op": "file", "actions": [{"mkfile": {"path": "f", "data": "$MARK"}}]},
  "bad": {"op": "exec", "args": ["sh", "-c", "echo failing; exit 3"],
          "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]},
  "after": {"op": "exec", "args": ["sh", "-c", "cp in/* out/"],
            "mounts": [{"dest": "in", "input": "bad"}, {"dest": "out", "output": true}]},
  "later": {"op": "file", "base": "after", "actions": [{"mkdir": {"path": "d"}}]},
  "hang": {"op": "exec", "args": ["sh", "-c", "while [ ! -e '$DATA/never' ]; do sleep 0.1; done"],
           "mounts": [{"dest": "out", "output": true}]}},
 "outputs": ["later", "hang"]}
JSON

test_expect_success 'after a failure, what never ran is cancelled in state, graph.dot and why, never cached' '
	N=$(sfs_submit "$DATA/fails.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	vstates "$N" >states && cat states && sfs_cat "$MNT/jobs/$N/why" >why && cat why &&
	expect_not_contains pending "$(cat states)" &&
	grep -qx "after cancelled | not run: the job failed first" states &&
	grep -qx "later cancelled | not run: the job failed first" states &&
	grep -q "^hang cancelled | " states &&
	grep -q "^bad failed | executed: " states &&
	grep -qx "\[after\] not run: the job failed first" why &&
	expect_not_contains "found in the cache" "$(cat why)" &&
	expect_eq "grey cancelled" "$(dot_state "$N" after)" &&
	expect_eq "grey cancelled" "$(dot_state "$N" later)" &&
	expect_eq "salmon failed" "$(dot_state "$N" bad)"
'

cat >"$DATA/cancel.json" <<JSON
{"vertices": {"wait": {"op": "exec", "args": ["sh", "-c", "echo waiting-$MARK; while [ ! -e '$DATA/never' ]; do sleep 0.1; done"],
          "mounts": [{"dest": "out", "output": true}]},
  "next": {"op": "file", "base": "wait", "actions": [{"mkdir": {"path": "d"}}]}},
 "outputs": ["next"]}
JSON

test_expect_success 'after a cancel, the running vertex and what waited for it are cancelled' '
	N=$(sfs_submit "$DATA/cancel.json") &&
	for _ in $(seq 1 300); do
		grep -qs "waiting-$MARK" "$MNT"/jobs/"$N"/vertices/*/log && break; sleep 0.1
	done &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	expect_eq cancelled "$(sfs_wait "$N")" &&
	vstates "$N" >states && cat states &&
	grep -q "^wait cancelled | executed: " states &&
	grep -qx "next cancelled | not run: the job was cancelled first" states &&
	grep -qx "\[next\] not run: the job was cancelled first" "$MNT/jobs/$N/why" &&
	expect_eq "grey cancelled" "$(dot_state "$N" next)"
'

# chain.json, and chain-bad.json: the same with a failing vertex as a second output.
CHAIN='"src": {"op": "file", "actions": [{"mkfile": {"path": "f", "data": "chain"}}]},
  "mid": {"op": "exec", "args": ["sh", "-c", "cp in/f out/"],
          "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]},
  "top": {"op": "file", "base": "mid", "actions": [{"mkdir": {"path": "d"}}]}'
printf '{"vertices": {%s}, "outputs": ["top"]}\n' "$CHAIN" >"$DATA/chain.json"
printf '{"vertices": {%s, "bad": {"op": "exec", "mounts": [{"dest": "out", "output": true}],
  "args": ["sh", "-c", "while [ ! -e %s ]; do sleep 0.1; done; exit 3"]}},
 "outputs": ["top", "bad"]}\n' "$CHAIN" "'$DATA/fail-now'" >"$DATA/chain-bad.json"

test_expect_success 'in a failed job, inputs a cached vertex made unnecessary are cached, as its status says' '
	sfs_run "$DATA/chain.json" >/dev/null &&
	N=$(sfs_submit "$DATA/chain-bad.json") &&
	for _ in $(seq 1 300); do
		vstates "$N" | grep -q "^top cached" && break; sleep 0.1
	done &&
	touch "$DATA/fail-now" &&
	expect_eq failed "$(sfs_wait "$N")" &&
	vstates "$N" >states && cat states &&
	grep -q "^top cached | cached: key " states &&
	grep -qx "mid cached | not needed: what uses it was found in the cache" states &&
	grep -qx "src cached | not needed: what uses it was found in the cache" states &&
	expect_eq CACHED "$(sfs_final "$N" mid)" && expect_eq CACHED "$(sfs_final "$N" src)"
'

sfs_remount -o max_running=1 || say "# remount failed"

test_expect_success 'past max_running a spec is refused with EAGAIN, and its error says why' '
	S=$(sfs_submit "$DATA/slow.json") &&
	expect_eq running "$(sfs_cat "$MNT/jobs/$S/state")" &&
	N=$(sfs_new) &&
	test_must_fail sfs_write "$DATA/good.json" "$MNT/jobs/$N/spec" 2>write.err &&
	expect_contains "Resource temporarily unavailable" "$(cat write.err)" &&
	expect_eq pending "$(sfs_cat "$MNT/jobs/$N/state")" &&
	expect_contains "job $N: spec rejected: too many running jobs (max_running=1)" \
		"$(sfs_cat "$MNT/jobs/$N/error")" &&
	expect_eq "$N" "$(readlink "$MNT/jobs/last-rejected")" &&
	echo cancel >"$MNT/jobs/$S/ctl" &&
	expect_eq cancelled "$(sfs_wait "$S")" &&
	sfs_write "$DATA/good.json" "$MNT/jobs/$N/spec" &&
	expect_eq done "$(sfs_wait "$N")"
'

# ---------------------------------------------------------------- 5. a bad command line

mkdir -p "$SCRATCH/mnt5" "$SCRATCH/empty"

# refused WHAT -- ARGS...: solverfs -f ARGS fails at once, mounts nothing, and
# neither creates $SCRATCH/st5 nor puts anything in $SCRATCH/empty or mnt5.
refused() {
	test_must_fail timeout 20 "$SOLVERFS" -f "$@" >refused.err 2>&1 &&
	cat refused.err &&
	test -s refused.err &&
	! mountpoint -q "$SCRATCH/mnt5" &&
	test ! -e "$SCRATCH/st5" &&
	expect_eq "" "$(ls -A "$SCRATCH/empty")$(ls -A "$SCRATCH/mnt5")"
}

test_expect_success 'an unknown FUSE option fails before STATE_DIR is created' '
	refused -o bogus_option=1 "$SCRATCH/st5" "$SCRATCH/mnt5" &&
	expect_contains "bogus_option" "$(cat refused.err)"
'

test_expect_success 'a bad value of a FUSE option fails before STATE_DIR is created' '
	refused -o max_read=lots "$SCRATCH/st5" "$SCRATCH/mnt5"
'

test_expect_success 'a bad value of a solverfs option fails before STATE_DIR is created' '
	refused -o workers=many "$SCRATCH/st5" "$SCRATCH/mnt5" &&
	refused -o log_max=1Q "$SCRATCH/st5" "$SCRATCH/mnt5"
'

test_expect_success 'a missing MOUNTPOINT fails before STATE_DIR is created' '
	refused "$SCRATCH/st5" "$SCRATCH/no-such-mnt" &&
	expect_contains "bad MOUNTPOINT" "$(cat refused.err)"
'

test_expect_success 'a STATE_DIR inside MOUNTPOINT is refused without being created' '
	refused "$SCRATCH/mnt5/state" "$SCRATCH/mnt5" &&
	expect_contains "must not be inside MOUNTPOINT" "$(cat refused.err)"
'

test_expect_success 'an existing STATE_DIR stays untouched (no lock file, no database)' '
	refused -o bogus_option=1 "$SCRATCH/empty" "$SCRATCH/mnt5" &&
	refused -o sandbox=sometimes "$SCRATCH/empty" "$SCRATCH/mnt5"
'

test_expect_success 'a STATE_DIR with .. and . in it is created where it says' '
	"$SOLVERFS" -f "$SCRATCH/st5/../st6/./x" "$SCRATCH/mnt5" </dev/null >>"$LOG" 2>&1 &
	pid=$! &&
	for _ in $(seq 1 100); do mountpoint -q "$SCRATCH/mnt5" && break; sleep 0.1; done &&
	rc=0 && { mountpoint -q "$SCRATCH/mnt5" && test -f "$SCRATCH/st6/x/lock" &&
		test ! -e "$SCRATCH/st5"; } || rc=1 &&
	{ fusermount3 -u "$SCRATCH/mnt5" 2>/dev/null || kill "$pid"; } &&
	wait "$pid" && exit "$rc"
'

# ---------------------------------------------------------------- 6. by-name

cat >"$DATA/named.json" <<JSON
{"vertices": {"src": {"op": "file", "actions": [{"mkfile": {"path": "f", "data": "named"}}]},
  "twin": {"op": "file", "actions": [{"mkfile": {"path": "f", "data": "named"}}]},
  "compile": {"op": "exec", "name": "the compile step", "args": ["sh", "-c", "echo compiling-$MARK; cp in/f out/"],
              "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]},
  "fresh": {"op": "file", "base": "compile", "ignore_cache": true, "actions": [{"mkdir": {"path": "d"}}]}},
 "outputs": ["fresh", "twin"]}
JSON

# by_name_ok N: jobs/N/by-name has a link per spec key to the job's vertex of it.
by_name_ok() {
	expect_eq "compile fresh src twin" "$(ls "$MNT/jobs/$1/by-name" | tr '\n' ' ' | sed 's/ $//')" &&
	for k in compile fresh src twin; do
		l=$(readlink "$MNT/jobs/$1/by-name/$k") &&
		case $l in ../vertices/[0-9a-f]*) ;; *) echo "$k -> $l"; exit 1 ;; esac &&
		test -d "$MNT/jobs/$1/by-name/$k/" || exit 1
	done &&
	expect_eq "$(readlink "$MNT/jobs/$1/by-name/src")" "$(readlink "$MNT/jobs/$1/by-name/twin")" &&
	expect_eq "the compile step" "$(sfs_cat "$MNT/jobs/$1/by-name/compile/name")" &&
	expect_eq "compiling-$MARK" "$(sfs_cat "$MNT/jobs/$1/by-name/compile/log" | grep compiling)" &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$1/by-name/fresh/state")" &&
	test_must_fail readlink "$MNT/jobs/$1/by-name/nosuch"
}

sfs_remount || say "# remount failed"

test_expect_success 'jobs/N/by-name has a symlink per spec key to its vertex dir' '
	N=$(sfs_run "$DATA/named.json") && echo "$N" >"$SCRATCH/named-job" &&
	by_name_ok "$N" &&
	expect_contains by-name "$(ls "$MNT/jobs/$N")"
'

test_expect_success 'a pending job has an empty by-name/' '
	N=$(sfs_new) &&
	test -d "$MNT/jobs/$N/by-name" &&
	expect_eq "" "$(ls -A "$MNT/jobs/$N/by-name")"
'

sfs_remount || say "# remount failed"

test_expect_success 'by-name is kept with the job history across a remount' '
	by_name_ok "$(cat "$SCRATCH/named-job")"
'

test_done
