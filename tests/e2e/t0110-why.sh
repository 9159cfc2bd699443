#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='why: a hit, a definition miss and a content miss, in jobs/N/why and the vertex why files'
. "$(dirname "$0")/lib.sh"

sfs_words
# graph ARGS: the graph with the exec's shell command ARGS
graph() {
	cat <<JSON
{
  "vertices": {
$(sfs_upper_vertices "$1")
  },
  "outputs": ["up"]
}
JSON
}
graph "tr a-z A-Z <in/words >out/WORDS" >"$DATA/graph.json"
graph "tr a-z A-Z <in/words >out/WORDS; true" >"$DATA/changed.json"

# vwhy N NAME: the why file of the vertex NAME of job N
vwhy() {
	local d
	d=$(sfs_vertex "$1" "$2") && sfs_cat "$d/why"
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'the first run executes: jobs/N/why has a line per vertex' '
	N=$(sfs_run "$DATA/graph.json") &&
	sfs_cat "$MNT/jobs/$N/why" >why &&
	expect_eq 2 "$(wc -l <why)" &&
	grep -q "^\[upper\] executed: " why &&
	expect_contains "executed: " "$(vwhy "$N" upper)"
'

test_expect_success 'a hit: "cached: key ..., record ... saved ... ago"' '
	N=$(sfs_run "$DATA/graph.json") &&
	w=$(vwhy "$N" upper) &&
	echo "$w" | grep -Eq "^cached: key [^ ]+, record [^ ]+ saved [0-9]+[smhd]([0-9]+[smh])? ago$" &&
	grep -Fqx "[upper] $w" "$MNT/jobs/$N/why" &&
	key=$(echo "$w" | sed -E "s/^cached: key ([^,]+),.*/\1/") &&
	rec=$(echo "$w" | sed -E "s/.* record ([^ ]+) saved.*/\1/") &&
	grep -q "^$rec sha256:[0-9a-f]\{64\} " "$MNT/cache/keys/${key#sha256:}/results"
'

test_expect_success 'each vertex why file is one line' '
	N=$(sfs_run "$DATA/graph.json") &&
	expect_eq 1 "$(vwhy "$N" upper | wc -l)"
'

test_expect_success 'a definition miss: the exec args changed' '
	N=$(sfs_run "$DATA/changed.json") &&
	w=$(vwhy "$N" upper) &&
	echo "$w" | grep -Eq "^executed: no record for this op digest sha256:[0-9a-f]{64}$" &&
	grep -Fqx "[upper] $w" "$MNT/jobs/$N/why"
'

test_expect_success 'a content miss: the local source file changed' '
	printf "three\n" >"$DATA/src/words" &&
	N=$(sfs_run "$DATA/graph.json") &&
	w=$(vwhy "$N" upper) &&
	echo "$w" | grep -Eq "^executed: input 0 \"source\" changed: now content sha256:[0-9a-f]{64}, the closest record used content sha256:[0-9a-f]{64}$" &&
	now=$(echo "$w" | sed -E "s/.*now content (sha256:[0-9a-f]+),.*/\1/") &&
	was=$(echo "$w" | sed -E "s/.*used content (sha256:[0-9a-f]+)$/\1/") &&
	test "$now" != "$was"
'

test_expect_success 'why survives a remount' '
	N=$(basename "$(readlink "$MNT/jobs/latest")") &&
	sfs_cat "$MNT/jobs/$N/why" >before &&
	sfs_remount &&
	sfs_cat "$MNT/jobs/$N/why" >after &&
	cmp before after &&
	expect_contains "changed: now content" "$(vwhy "$N" upper)"
'

test_done
