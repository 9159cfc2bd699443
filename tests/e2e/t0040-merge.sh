#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='op merge: union of trees, later input wins, dirs merge recursively'
. "$(dirname "$0")/lib.sh"

cat >"$DATA/merge.json" <<'JSON'
{
  "vertices": {
    "a": {"op": "file", "actions": [
      {"mkdir": {"path": "d/sub", "parents": true}},
      {"mkfile": {"path": "same.txt", "data": "from a\n"}},
      {"mkfile": {"path": "only-a.txt", "data": "a\n"}},
      {"mkfile": {"path": "d/one", "data": "1\n"}},
      {"mkfile": {"path": "d/sub/deep-a", "data": "da\n"}},
      {"mkfile": {"path": "becomes-link", "data": "file\n"}},
      {"mkfile": {"path": "mode.sh", "data": "a\n", "mode": "0755"}}]},
    "b": {"op": "file", "actions": [
      {"mkdir": {"path": "d/sub", "parents": true}},
      {"mkfile": {"path": "same.txt", "data": "from b\n"}},
      {"mkfile": {"path": "d/two", "data": "2\n"}},
      {"mkfile": {"path": "d/sub/deep-b", "data": "db\n"}},
      {"symlink": {"target": "only-a.txt", "path": "becomes-link"}},
      {"mkfile": {"path": "mode.sh", "data": "b\n", "mode": "0644"}}]},
    "c": {"op": "file", "actions": [{"mkfile": {"path": "same.txt", "data": "from c\n"}}]},
    "ab": {"op": "merge", "inputs": ["a", "b"]},
    "ba": {"op": "merge", "inputs": ["b", "a"]},
    "abc": {"op": "merge", "inputs": ["a", "b", "c"]}
  },
  "outputs": ["ab", "ba", "abc"]
}
JSON

cat >"$DATA/one-input.json" <<'JSON'
{"vertices": {"a": {"op": "file", "actions": []}, "m": {"op": "merge", "inputs": ["a"]}}, "outputs": ["m"]}
JSON

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'merge holds the union of its inputs' '
	N=$(sfs_run "$DATA/merge.json") && echo "$N" >"$SCRATCH/job" &&
	o=$(sfs_output "$N" ab) &&
	expect_file_eq a "$o/only-a.txt" &&
	expect_file_eq 1 "$o/d/one" &&
	expect_file_eq 2 "$o/d/two"
'

test_expect_success 'for the same path a later input wins' '
	N=$(cat "$SCRATCH/job") &&
	expect_file_eq "from b" "$(sfs_output "$N" ab)/same.txt" &&
	expect_file_eq "from a" "$(sfs_output "$N" ba)/same.txt" &&
	expect_file_eq "from c" "$(sfs_output "$N" abc)/same.txt" &&
	expect_file_eq b "$(sfs_output "$N" ab)/mode.sh" &&
	expect_mode 644 "$(sfs_output "$N" ab)/mode.sh" &&
	expect_mode 755 "$(sfs_output "$N" ba)/mode.sh"
'

test_expect_success 'two dirs merge recursively' '
	N=$(cat "$SCRATCH/job") &&
	o=$(sfs_output "$N" ab) &&
	expect_file_eq da "$o/d/sub/deep-a" &&
	expect_file_eq db "$o/d/sub/deep-b"
'

test_expect_success 'a later symlink replaces a file, and the other way round' '
	N=$(cat "$SCRATCH/job") &&
	test -L "$(sfs_output "$N" ab)/becomes-link" &&
	expect_eq only-a.txt "$(readlink "$(sfs_output "$N" ab)/becomes-link")" &&
	test ! -L "$(sfs_output "$N" ba)/becomes-link" &&
	expect_file_eq file "$(sfs_output "$N" ba)/becomes-link"
'

test_expect_success 'merge of the same inputs in the same order gives the same result id' '
	N=$(cat "$SCRATCH/job") &&
	ab=$(grep "^ab " "$MNT/jobs/$N/result" | cut -d" " -f2) &&
	ba=$(grep "^ba " "$MNT/jobs/$N/result" | cut -d" " -f2) &&
	test -n "$ab" && test "$ab" != "$ba" &&
	M=$(sfs_run "$DATA/merge.json") &&
	expect_eq "$ab" "$(grep "^ab " "$MNT/jobs/$M/result" | cut -d" " -f2)"
'

test_expect_success 'merge needs at least two inputs' '
	N=$(sfs_new) &&
	test_must_fail sfs_write "$DATA/one-input.json" "$MNT/jobs/$N/spec" &&
	expect_contains inputs "$(sfs_cat "$MNT/jobs/$N/error")"
'

test_done
