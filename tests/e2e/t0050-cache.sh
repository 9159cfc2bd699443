#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='identity and caching: a second identical job executes nothing, also after a remount'
. "$(dirname "$0")/lib.sh"

sfs_words
printf 'untouched\n' >"$DATA/src/other"
cat >"$DATA/graph.json" <<JSON
{
  "vertices": {
$(sfs_upper_vertices),
    "meta": {"op": "file", "name": "meta", "actions": [{"mkfile": {"path": "v", "data": "1"}}]},
    "all": {"op": "merge", "name": "bundle", "inputs": ["up", "meta"]}
  },
  "outputs": ["all", "up"]
}
JSON
sed 's/"name": "upper",/"name": "upper", "ignore_cache": true,/' "$DATA/graph.json" >"$DATA/ignore.json"

# finals N: "name=FINAL" for the vertices that do work (not the local source).
finals() {
	for v in upper meta bundle; do
		printf '%s=%s\n' "$v" "$(sfs_final "$1" "$v")"
	done
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'the first job executes every vertex' '
	N=$(sfs_run "$DATA/graph.json") &&
	sfs_cat "$MNT/jobs/$N/result" >"$SCRATCH/result1" &&
	expect_eq "$(printf "upper=DONE\nmeta=DONE\nbundle=DONE")" "$(finals "$N")" &&
	expect_file_eq "$(printf "ONE\nTWO")" "$(sfs_output "$N" all)/WORDS"
'

test_expect_success 'a second identical job executes nothing and gives the same result ids' '
	N=$(sfs_run "$DATA/graph.json") &&
	expect_eq "$(cat "$SCRATCH/result1")" "$(sfs_cat "$MNT/jobs/$N/result")" &&
	expect_eq "$(printf "upper=CACHED\nmeta=CACHED\nbundle=CACHED")" "$(finals "$N")" &&
	sfs_cat "$MNT/jobs/$N/status" >status &&
	awk "\$2 == \"[source]\" { src = \$1 } \$2 == \"DONE\" && \$1 != src { print; bad = 1 } END { exit bad }" status
'

test_expect_success 'a touched but unchanged source still hits the cache' '
	touch "$DATA/src/words" &&
	N=$(sfs_run "$DATA/graph.json") &&
	expect_eq "$(cat "$SCRATCH/result1")" "$(sfs_cat "$MNT/jobs/$N/result")" &&
	expect_eq CACHED "$(sfs_final "$N" upper)"
'

test_expect_success 'a change outside the selected path does not re-run the exec' '
	printf "changed\n" >"$DATA/src/other" &&
	N=$(sfs_run "$DATA/graph.json") &&
	expect_eq CACHED "$(sfs_final "$N" upper)" &&
	expect_eq "$(cat "$SCRATCH/result1")" "$(sfs_cat "$MNT/jobs/$N/result")"
'

test_expect_success 'a change of the selected content re-runs the exec' '
	printf "three\n" >"$DATA/src/words" &&
	N=$(sfs_run "$DATA/graph.json") &&
	expect_eq DONE "$(sfs_final "$N" upper)" &&
	expect_eq CACHED "$(sfs_final "$N" meta)" &&
	expect_file_eq THREE "$(sfs_output "$N" up)/WORDS" &&
	sfs_words
'

test_expect_success 'ignore_cache executes the vertex again' '
	N=$(sfs_run "$DATA/ignore.json") &&
	expect_eq DONE "$(sfs_final "$N" upper)" &&
	expect_eq "$(grep "^up " "$SCRATCH/result1")" "$(grep "^up " "$MNT/jobs/$N/result")"
'

test_expect_success 'after an unmount and a remount the same job is still fully cached' '
	sfs_remount &&
	N=$(sfs_run "$DATA/graph.json") &&
	expect_eq "$(cat "$SCRATCH/result1")" "$(sfs_cat "$MNT/jobs/$N/result")" &&
	expect_eq "$(printf "upper=CACHED\nmeta=CACHED\nbundle=CACHED")" "$(finals "$N")"
'

test_expect_success 'the result tree is served again after the remount' '
	hex=$(sed -n "s/^all sha256://p" "$SCRATCH/result1") &&
	expect_file_eq "$(printf "ONE\nTWO")" "$MNT/results/$hex/WORDS" &&
	expect_file_eq 1 "$MNT/results/$hex/v"
'

test_expect_success 'vertex digests do not depend on names' '
	sed "s/\"name\": \"meta\"/\"name\": \"renamed\"/" "$DATA/graph.json" >"$DATA/renamed.json" &&
	N=$(sfs_run "$DATA/renamed.json") &&
	expect_eq CACHED "$(sfs_final "$N" renamed)" &&
	expect_eq "$(cat "$SCRATCH/result1")" "$(sfs_cat "$MNT/jobs/$N/result")"
'

test_done
