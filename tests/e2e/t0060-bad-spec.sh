#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='bad specs: the close of spec fails with EINVAL, error says what and where, the job stays pending'
. "$(dirname "$0")/lib.sh"

good='{"vertices": {"ok": {"op": "file", "actions": [{"mkfile": {"path": "f", "data": "fine"}}]}}, "outputs": ["ok"]}'
printf '%s\n' "$good" >"$DATA/good.json"

bad() {
	printf '%s\n' "$2" >"$DATA/bad-$1.json"
}
bad json '{"vertices": {"v": {"op": "file", "actions": []}}, "outputs": ["v"]'
bad unknown-op '{"vertices": {"vtx1": {"op": "frobnicate"}}, "outputs": ["vtx1"]}'
bad unknown-field '{"vertices": {"vtx1": {"op": "file", "actions": [], "colour": "red"}}, "outputs": ["vtx1"]}'
bad unknown-action-field '{"vertices": {"vtx1": {"op": "file", "actions": [{"mkdir": {"path": "a", "owner": "me"}}]}}, "outputs": ["vtx1"]}'
bad unknown-job-field '{"vertices": {"vtx1": {"op": "file", "actions": []}}, "outputs": ["vtx1"], "speed": "fast"}'
bad missing-input '{"vertices": {"vtx1": {"op": "file", "base": "nosuchvertex", "actions": []}}, "outputs": ["vtx1"]}'
bad missing-output '{"vertices": {"vtx1": {"op": "file", "actions": []}}, "outputs": ["nosuchvertex"]}'
bad cycle '{"vertices": {"loopA": {"op": "file", "base": "loopB", "actions": []}, "loopB": {"op": "file", "base": "loopA", "actions": []}}, "outputs": ["loopA"]}'
bad self-cycle '{"vertices": {"loopA": {"op": "merge", "inputs": ["loopA", "loopA"]}}, "outputs": ["loopA"]}'
bad output-index '{"vertices": {"vtx1": {"op": "file", "actions": []}}, "outputs": ["vtx1:3"]}'
bad input-index '{"vertices": {"src": {"op": "file", "actions": []}, "vtx1": {"op": "exec", "args": ["true"], "mounts": [{"dest": "in", "input": "src:1"}]}}, "outputs": ["vtx1"]}'
bad dotdot '{"vertices": {"vtx1": {"op": "file", "actions": [{"mkdir": {"path": "a/../b"}}]}}, "outputs": ["vtx1"]}'
bad absolute '{"vertices": {"vtx1": {"op": "file", "actions": [{"mkfile": {"path": "/etc/passwd", "data": "x"}}]}}, "outputs": ["vtx1"]}'
bad dest-dotdot '{"vertices": {"vtx1": {"op": "exec", "args": ["true"], "mounts": [{"dest": "../escape", "output": true}]}}, "outputs": ["vtx1"]}'
bad relative-local '{"vertices": {"vtx1": {"op": "local", "path": "relative/dir"}}, "outputs": ["vtx1"]}'
bad vertex-name '{"vertices": {"bad name!": {"op": "file", "actions": []}}, "outputs": ["bad name!"]}'
bad empty-args '{"vertices": {"vtx1": {"op": "exec", "args": [], "mounts": [{"dest": "o", "output": true}]}}, "outputs": ["vtx1"]}'
bad bad-mode '{"vertices": {"vtx1": {"op": "file", "actions": [{"mkdir": {"path": "a", "mode": "rwx"}}]}}, "outputs": ["vtx1"]}'
bad no-outputs '{"vertices": {"vtx1": {"op": "file", "actions": []}}, "outputs": []}'

sfs_mount || say "# mount failed; every case below will fail"

# check_bad KIND WORD...: a fresh job rejects bad-KIND.json, stays pending, and its error
# contains every WORD; the daemon still answers.
check_bad() {
	local kind=$1 n err w
	shift
	n=$(sfs_new) || return 1
	test_must_fail sfs_write "$DATA/bad-$kind.json" "$MNT/jobs/$n/spec" 2>write.err || return 1
	expect_contains "Invalid argument" "$(cat write.err)" || return 1
	expect_eq pending "$(sfs_cat "$MNT/jobs/$n/state")" || return 1
	err=$(sfs_cat "$MNT/jobs/$n/error") || return 1
	test -n "$err" || { echo "error is empty"; return 1; }
	for w in "$@"; do
		expect_contains "$w" "$err" || return 1
	done
	echo "$n" >"$SCRATCH/last-bad"
}

test_expect_success 'invalid JSON is rejected' 'check_bad json'
test_expect_success 'an unknown op is rejected naming the vertex and field' 'check_bad unknown-op vtx1 op'
test_expect_success 'an unknown vertex field is rejected naming it' 'check_bad unknown-field vtx1 colour'
test_expect_success 'an unknown action field is rejected naming it' 'check_bad unknown-action-field vtx1 owner'
test_expect_success 'an unknown job field is rejected naming it' 'check_bad unknown-job-field speed'
test_expect_success 'a missing input is rejected naming the vertex and field' 'check_bad missing-input vtx1 base nosuchvertex'
test_expect_success 'a missing output vertex is rejected' 'check_bad missing-output outputs nosuchvertex'
test_expect_success 'a cycle is rejected' 'check_bad cycle loop'
test_expect_success 'a vertex that is its own input is rejected' 'check_bad self-cycle loopA'
test_expect_success 'an output index out of range is rejected' 'check_bad output-index vtx1'
test_expect_success 'an input index out of range is rejected' 'check_bad input-index vtx1 input'
test_expect_success 'a path with .. is rejected naming the vertex and field' 'check_bad dotdot vtx1 path'
test_expect_success 'an absolute tree path is rejected naming the vertex and field' 'check_bad absolute vtx1 path'
test_expect_success 'an exec dest with .. is rejected' 'check_bad dest-dotdot vtx1 dest'
test_expect_success 'a relative local path is rejected' 'check_bad relative-local vtx1 path'
test_expect_success 'a bad vertex name is rejected naming it' 'check_bad vertex-name "bad name!"'
test_expect_success 'empty exec args are rejected' 'check_bad empty-args vtx1 args'
test_expect_success 'a mode that is not octal is rejected' 'check_bad bad-mode vtx1 mode'
test_expect_success 'an empty outputs list is rejected' 'check_bad no-outputs outputs'

test_expect_success 'a corrected spec written to the same pending job is accepted' '
	N=$(cat "$SCRATCH/last-bad") &&
	sfs_write "$DATA/good.json" "$MNT/jobs/$N/spec" &&
	expect_eq done "$(sfs_wait "$N")" &&
	expect_file_eq fine "$(sfs_output "$N" ok)/f"
'

test_expect_success 'a bad spec written to jobs/new fails the close' '
	test_must_fail sfs_write "$DATA/bad-cycle.json" "$MNT/jobs/new"
'

test_expect_success 'the daemon keeps serving after the rejections' '
	N=$(sfs_run "$DATA/good.json") &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$N/state")" &&
	test -s "$MNT/README"
'

test_done
