#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='progress: status (buildctl --progress=plain) and status.json (SolveStatus lines)'
. "$(dirname "$0")/lib.sh"

mkdir -p "$DATA/src"
printf 'hi\n' >"$DATA/src/hi.txt"
cat >"$DATA/graph.json" <<JSON
{
  "vertices": {
    "src": {"op": "local", "name": "source", "path": "$DATA/src"},
    "say": {"op": "exec", "name": "talk",
            "args": ["sh", "-c", "echo said-one; echo said-two >&2; cp in/hi.txt out/"],
            "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]},
    "both": {"op": "merge", "name": "both of them", "inputs": ["src", "say"]}
  },
  "outputs": ["both"]
}
JSON
cat >"$DATA/fail.json" <<'JSON'
{"vertices": {"bad": {"op": "exec", "name": "breaks", "args": ["sh", "-c", "echo before-failure; exit 4"],
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["bad"]}
JSON
cat >"$DATA/slow.json" <<'JSON'
{"vertices": {"s": {"op": "exec", "name": "slowly", "args": ["sh", "-c", "echo tick; sleep 3; echo tock"],
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["s"]}
JSON

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'status shows a "#N [name] summary" block per vertex' '
	N=$(sfs_run "$DATA/graph.json") && echo "$N" >"$SCRATCH/job" &&
	sfs_cat "$MNT/jobs/$N/status" >status &&
	grep -Eq "^#[0-9]+ \[source\] local $DATA/src\$" status &&
	grep -Eq "^#[0-9]+ \[talk\] sh -c echo said-one; echo said-two >&2; cp in/hi.txt out/\$" status &&
	grep -Eq "^#[0-9]+ \[both of them\] merge 2 inputs\$" status
'

test_expect_success 'every vertex ends with a DONE line with its duration' '
	N=$(cat "$SCRATCH/job") &&
	for v in source talk "both of them"; do
		expect_eq DONE "$(sfs_final "$N" "$v")" || exit 1
	done &&
	sfs_cat "$MNT/jobs/$N/status" | grep -Eq "^#[0-9]+ DONE [0-9]+\.[0-9]s\$"
'

test_expect_success 'log lines of a vertex appear as "#N <seconds> text", stdout and stderr' '
	N=$(cat "$SCRATCH/job") &&
	sfs_cat "$MNT/jobs/$N/status" >status &&
	num=$(awk "\$2 == \"[talk]\" { print \$1; exit }" status) &&
	grep -Eq "^$num [0-9]+\.[0-9]+ said-one\$" status &&
	grep -Eq "^$num [0-9]+\.[0-9]+ said-two\$" status
'

test_expect_success 'blocks are separated by blank lines' '
	N=$(cat "$SCRATCH/job") &&
	sfs_cat "$MNT/jobs/$N/status" >status &&
	test "$(grep -c "^\$" status)" -ge 2
'

test_expect_success 'status.json lines are SolveStatus objects with vertex digests' '
	N=$(cat "$SCRATCH/job") &&
	sfs_cat "$MNT/jobs/$N/status.json" >status.json &&
	json_check status.json "set(o) <= {\"vertexes\", \"statuses\", \"logs\"}" &&
	python3 - status.json "$MNT/jobs/$N/vertices" <<-PY
	import json, os, re, sys
	digests, names, logs = set(), set(), []
	for line in open(sys.argv[1]):
	    o = json.loads(line)
	    for v in o.get("vertexes", []):
	        assert re.fullmatch("sha256:[0-9a-f]{64}", v["digest"]), v
	        for i in v.get("inputs", []):
	            assert re.fullmatch("sha256:[0-9a-f]{64}", i), v
	        digests.add(v["digest"]); names.add(v.get("name"))
	        for t in ("started", "completed"):
	            if t in v:
	                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", v[t]), v[t]
	    logs += o.get("logs", [])
	# BuildKit puts the whole title in Name ("[talk] sh -c ..."), the plain printer prints it.
	for n in ("source", "talk", "both of them"):
	    assert any(x == n or x.startswith("[%s] " % n) for x in names), names
	hexes = {"sha256:" + h for h in os.listdir(sys.argv[2])}
	assert hexes <= digests, (hexes, digests)
	import base64
	text = b"".join(base64.b64decode(l["data"]) for l in logs)
	assert b"said-one" in text, text
	PY
'

test_expect_success 'status.json marks every vertex completed' '
	N=$(cat "$SCRATCH/job") &&
	python3 - "$MNT/jobs/$N/status.json" <<-PY
	import json, sys
	done = {}
	for line in open(sys.argv[1]):
	    for v in json.loads(line).get("vertexes", []):
	        if v.get("completed"):
	            done[v["digest"]] = v
	assert len(done) == 3, done
	assert not any(v.get("error") for v in done.values())
	PY
'

test_expect_success 'a failure ends with ERROR and the summary block' '
	N=$(sfs_submit "$DATA/fail.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	sfs_cat "$MNT/jobs/$N/status" >status &&
	expect_eq ERROR "$(sfs_final "$N" breaks)" &&
	grep -Eq "^#[0-9]+ ERROR: process \"sh -c echo before-failure; exit 4\" did not complete successfully: exit code: 4" status &&
	grep -qx -- "------" status &&
	grep -Eq "^ > (\[breaks\].*|breaks):\$" status &&
	num=$(awk "\$2 == \"[breaks]\" { print \$1; exit }" status) &&
	if grep -q "^$num DONE" status; then echo "a failed vertex must not print DONE"; exit 1; fi &&
	grep -q "before-failure" status
'

test_expect_success 'the error of a failed vertex is in status.json' '
	N=$(basename "$(readlink "$MNT/jobs/latest")") &&
	grep -q "exit code: 4" "$MNT/jobs/$N/status.json" &&
	json_check "$MNT/jobs/$N/status.json"
'

test_expect_success 'a reader of a running job follows until it ends, then gets EOF' '
	N=$(sfs_submit "$DATA/slow.json") &&
	timeout 30 cat "$MNT/jobs/$N/status" >follow &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$N/state")" &&
	grep -q " tick\$" follow &&
	grep -q " tock\$" follow &&
	expect_eq DONE "$(awk "\$2 == \"DONE\" { print \$2 }" follow | tail -n 1)"
'

test_expect_success 'a non-blocking reader gets EAGAIN instead of waiting' '
	sed "s/sleep 3/sleep 5/; s/tock/tock2/" "$DATA/slow.json" >"$DATA/slow2.json" &&
	N=$(sfs_submit "$DATA/slow2.json") &&
	for _ in $(seq 1 100); do
		test "$(sfs_cat "$MNT/jobs/$N/state")" = running && break
		sleep 0.1
	done &&
	expect_eq running "$(sfs_cat "$MNT/jobs/$N/state")" &&
	# a reader that waited would be stopped by the timeout (exit 124), which test_must_fail rejects
	test_must_fail timeout 10 dd if="$MNT/jobs/$N/status" iflag=nonblock bs=65536 of=partial status=none 2>dd.err &&
	expect_contains "Resource temporarily unavailable" "$(cat dd.err)" &&
	sfs_wait "$N" >/dev/null
'

test_expect_success 'a finished job reads the whole history at once' '
	N=$(cat "$SCRATCH/job") &&
	a=$(timeout 5 cat "$MNT/jobs/$N/status") && b=$(timeout 5 cat "$MNT/jobs/$N/status") &&
	expect_eq "$a" "$b" && test -n "$a"
'

cat >"$DATA/chatty.json" <<'JSON'
{"vertices": {"c": {"op": "exec", "name": "chatty",
  "args": ["sh", "-c", "i=0; while [ $i -lt 6000 ]; do echo line-$i-of-a-long-progress-text; i=$((i + 1)); if [ $i = 3000 ]; then sleep 1; fi; done"],
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["c"]}
JSON

# Texts larger than what a job keeps in memory (64 KiB) move to a file while it
# runs and to the database when it ends: every byte must read back the same.
test_expect_success 'a long status reads the same while running, at the end and after a remount' '
	N=$(sfs_submit "$DATA/chatty.json") &&
	timeout 60 cat "$MNT/jobs/$N/status" >follow &&
	timeout 60 cat "$MNT/jobs/$N/status.json" >follow.json &&
	expect_eq done "$(sfs_wait "$N")" &&
	test "$(wc -c <follow)" -gt 200000 &&
	expect_eq 6000 "$(grep -c " line-[0-9]*-of-a-long-progress-text\$" follow)" &&
	grep -q " line-5999-of-a-long-progress-text\$" follow &&
	sfs_cat "$MNT/jobs/$N/status" >ended && cmp follow ended &&
	sfs_cat "$MNT/jobs/$N/status.json" >ended.json && cmp follow.json ended.json &&
	expect_eq "$(wc -c <ended)" "$(stat -c %s "$MNT/jobs/$N/status")" &&
	dd if="$MNT/jobs/$N/status" bs=1000 skip=100 count=3 status=none >window &&
	dd if=ended bs=1000 skip=100 count=3 status=none | cmp - window &&
	sfs_remount &&
	sfs_cat "$MNT/jobs/$N/status" >remounted && cmp follow remounted &&
	sfs_cat "$MNT/jobs/$N/status.json" >remounted.json && cmp follow.json remounted.json
'

test_done
