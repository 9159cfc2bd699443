#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='op build (sub-builds): the inner spec solves as part of the job, is cached, and is exported'
. "$(dirname "$0")/lib.sh"

# The inner spec lives in a local dir, as a Dockerfile frontend's would.
mkdir -p "$DATA/proj" "$DATA/bad"
cat >"$DATA/proj/solverfs.json" <<'JSON'
{"vertices": {
  "base": {"op": "file", "actions": [{"mkfile": {"path": "greeting", "data": "hello\n"}}]},
  "more": {"op": "file", "base": "base", "actions": [{"mkfile": {"path": "name", "data": "inner\n"}}]}},
 "outputs": ["more"]}
JSON
cat >"$DATA/bad/solverfs.json" <<'JSON'
{"vertices": {"boom": {"op": "exec", "args": ["sh", "-c", "echo inner-failure >&2; exit 7"],
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["boom"]}
JSON
for d in proj bad; do
	cat >"$DATA/outer-$d.json" <<JSON
{"vertices": {
  "src": {"op": "local", "path": "$DATA/$d"},
  "sub": {"op": "build", "input": "src"},
  "use": {"op": "file", "base": "sub", "actions": [{"mkfile": {"path": "outer", "data": "outer\\n"}}]}},
 "outputs": ["use"],
 "export": {"mode": "max"}}
JSON
done

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'the inner spec builds inside the job and its output is the build vertex result' '
	N=$(sfs_run "$DATA/outer-proj.json") && echo "$N" >"$SCRATCH/job" &&
	out=$(sfs_output "$N" use) &&
	expect_eq hello "$(cat "$out/greeting")" &&
	expect_eq inner "$(cat "$out/name")" &&
	expect_eq outer "$(cat "$out/outer")" &&
	expect_eq DONE "$(sfs_final "$N" sub)"
'

test_expect_success 'the inner vertices show in the job status and vertices' '
	N=$(cat "$SCRATCH/job") &&
	sfs_cat "$MNT/jobs/$N/status" >status &&
	grep -q "\[base\] file mkfile" status &&
	grep -q "\[more\] file mkfile" status &&
	(cd "$MNT/jobs/$N/vertices" && cat ./*/name) >names &&
	grep -qx "base" names && grep -qx "more" names && grep -qx "sub" names &&
	grep -q "^\[more\] executed" "$MNT/jobs/$N/why" &&
	for d in "$MNT/jobs/$N/vertices"/*; do
		test "$(cat "$d/name")" = more || continue
		expect_eq done "$(cat "$d/state")" &&
		test -L "$d/results/0" || exit 1
	done
'

test_expect_success 'a second run is cached, the sub-build included' '
	N=$(sfs_run "$DATA/outer-proj.json") &&
	expect_eq CACHED "$(sfs_final "$N" use)" &&
	expect_eq "$(sfs_cat "$MNT/jobs/$(cat "$SCRATCH/job")/result")" "$(sfs_cat "$MNT/jobs/$N/result")"
'

test_expect_success 'a changed inner spec builds again' '
	sed -i "s/inner/changed/" "$DATA/proj/solverfs.json" &&
	N=$(sfs_run "$DATA/outer-proj.json") &&
	expect_eq changed "$(cat "$(sfs_output "$N" use)/name")" &&
	expect_eq DONE "$(sfs_final "$N" use)"
'

test_expect_success 'the export holds the inner chain: a record for each inner vertex' '
	N=$(cat "$SCRATCH/job") &&
	cp -r "$MNT/jobs/$N/export" "$SCRATCH/exp" &&
	cfg=$(python3 -c "
import json, sys
idx = json.load(open(sys.argv[1] + \"/index.json\"))
man = idx[\"manifests\"][0][\"digest\"].split(\":\")[1]
m = json.load(open(sys.argv[1] + \"/blobs/sha256/\" + man))
print(m[\"config\"][\"digest\"].split(\":\")[1])" "$SCRATCH/exp") &&
	n=$(python3 -c "import json, sys; print(len(json.load(open(sys.argv[1]))[\"records\"]))" "$SCRATCH/exp/blobs/sha256/$cfg") &&
	say "# $n records" &&
	test "$n" -ge 5
'

test_expect_success 'an inner failure fails the job and names the build and the inner vertex' '
	N=$(sfs_submit "$DATA/outer-bad.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	err=$(sfs_cat "$MNT/jobs/$N/error") &&
	expect_contains "build solverfs.json" "$err" &&
	expect_contains "boom" "$err" &&
	expect_contains "inner-failure" "$(sfs_cat "$MNT/jobs/$N/status")"
'

test_done
