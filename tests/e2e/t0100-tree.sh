#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='vertex directories: name, op, state, inputs, keys, results, log, jobs, why; graph.dot; vertices/ of running jobs'
. "$(dirname "$0")/lib.sh"

sfs_words
cat >"$DATA/graph.json" <<JSON
{
  "vertices": {
$(sfs_upper_vertices "seq 1 100000; tr a-z A-Z <in/words >out/WORDS"),
    "meta": {"op": "file", "name": "meta \"quoted\"", "actions": [{"mkfile": {"path": "v", "data": "1"}}]},
    "all": {"op": "merge", "name": "bundle", "inputs": ["up", "meta"]}
  },
  "outputs": ["all"]
}
JSON

MARK="sfs-tree-$$-$RANDOM"
sfs_exec_spec slow slow "echo $MARK; sleep 33.$$" >"$DATA/slow.json"
export MARK

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'a vertex dir lists every file' '
	N=$(sfs_run "$DATA/graph.json") && echo "$N" >"$SCRATCH/job" &&
	d=$(sfs_vertex "$N" upper) &&
	expect_eq "inputs jobs keys log name op results state why" "$(ls "$d" | tr "\n" " " | sed "s/ $//")" &&
	expect_eq done "$(sfs_cat "$d/state")" &&
	test -d "$d/inputs" && test -d "$d/results"
'

test_expect_success 'inputs/<i> are relative symlinks to the input vertices' '
	N=$(cat "$SCRATCH/job") &&
	d=$(sfs_vertex "$N" bundle) &&
	expect_eq "0 1" "$(ls "$d/inputs" | tr "\n" " " | sed "s/ $//")" &&
	l=$(readlink "$d/inputs/0") &&
	case $l in ../../[0-9a-f]*) ;; *) echo "bad target $l"; exit 1;; esac &&
	expect_eq upper "$(sfs_cat "$d/inputs/0/name")" &&
	expect_eq "meta \"quoted\"" "$(sfs_cat "$d/inputs/1/name")" &&
	expect_eq source "$(sfs_cat "$(sfs_vertex "$N" upper)/inputs/0/name")" &&
	expect_eq "" "$(ls "$(sfs_vertex "$N" source)/inputs")"
'

test_expect_success 'results/<N> are relative symlinks into results/' '
	N=$(cat "$SCRATCH/job") &&
	d=$(sfs_vertex "$N" upper) &&
	l=$(readlink "$d/results/0") &&
	expect_eq "../../../../../results/" "${l%%[0-9a-f][0-9a-f][0-9a-f]*}" &&
	expect_file_eq "$(printf "ONE\nTWO")" "$d/results/0/WORDS" &&
	hex=$(sed -n "s/^all sha256://p" "$MNT/jobs/$N/result") &&
	expect_eq "../../../../../results/$hex" "$(readlink "$(sfs_vertex "$N" bundle)/results/0")"
'

test_expect_success 'keys names the cache keys, each one under cache/keys/' '
	N=$(cat "$SCRATCH/job") &&
	d=$(sfs_vertex "$N" upper) &&
	sfs_cat "$d/keys" >keys &&
	test -s keys &&
	while read -r out id; do
		expect_eq 0 "$out" &&
		name=${id#sha256:} &&
		test -d "$MNT/cache/keys/$name" || exit 1
	done <keys
'

test_expect_success 'log holds the whole output of the exec' '
	N=$(cat "$SCRATCH/job") &&
	d=$(sfs_vertex "$N" upper) &&
	seq 1 100000 >expected &&
	sfs_cat "$d/log" >log &&
	cmp expected log &&
	expect_eq "$(stat -c %s expected)" "$(stat -c %s "$d/log")"
'

test_expect_success 'why says the first run executed; jobs is empty in history' '
	N=$(cat "$SCRATCH/job") &&
	d=$(sfs_vertex "$N" upper) &&
	expect_contains "executed:" "$(sfs_cat "$d/why")" &&
	expect_eq 1 "$(sfs_cat "$d/why" | wc -l)" &&
	expect_eq "" "$(sfs_cat "$d/jobs")"
'

test_expect_success 'sizes in ls -l match what cat reads' '
	N=$(cat "$SCRATCH/job") &&
	d=$(sfs_vertex "$N" bundle) &&
	for f in name op state keys why jobs; do
		expect_eq "$(sfs_cat "$d/$f" | wc -c)" "$(stat -c %s "$d/$f")" || exit 1
	done &&
	for f in why graph.dot result state; do
		expect_eq "$(sfs_cat "$MNT/jobs/$N/$f" | wc -c)" "$(stat -c %s "$MNT/jobs/$N/$f")" || exit 1
	done
'

test_expect_success 'vertex files are read-only' '
	N=$(cat "$SCRATCH/job") &&
	d=$(sfs_vertex "$N" upper) &&
	test_must_fail sh -c "echo x >\"$d/why\"" &&
	test_must_fail ln -s x "$d/inputs/9"
'

test_expect_success 'jobs/N/why has one line per vertex' '
	N=$(cat "$SCRATCH/job") &&
	sfs_cat "$MNT/jobs/$N/why" >why &&
	expect_eq "$(ls "$MNT/jobs/$N/vertices" | wc -l)" "$(wc -l <why)" &&
	grep -q "upper.*executed" why
'

test_expect_success 'graph.dot: a digraph with one node per vertex and one edge per input' '
	N=$(cat "$SCRATCH/job") &&
	sfs_cat "$MNT/jobs/$N/graph.dot" >g.dot &&
	head -n 1 g.dot | grep -q "^digraph \"job $N\" {$" &&
	expect_eq "}" "$(tail -n 1 g.dot)" &&
	expect_eq 4 "$(grep -c "^  \"[0-9a-f]\{64\}\" \[label=" g.dot)" &&
	expect_eq 3 "$(grep -c "^  \"[0-9a-f]\{64\}\" -> \"[0-9a-f]\{64\}\";$" g.dot)" &&
	for h in $(ls "$MNT/jobs/$N/vertices"); do grep -q "^  \"$h\" \[label=" g.dot || exit 1; done &&
	grep -q "label=\"meta \\\\\"quoted\\\\\"\"" g.dot &&
	grep "label=\"upper\"" g.dot | grep -q fillcolor=palegreen &&
	up=$(basename "$(sfs_vertex "$N" upper)") && all=$(basename "$(sfs_vertex "$N" bundle)") &&
	grep -q "^  \"$up\" -> \"$all\";$" g.dot &&
	awk "/{\$/ { o++ } /^}\$/ { c++ } END { exit !(o == 1 && c == 1) }" g.dot &&
	if command -v dot >/dev/null; then dot -Tsvg g.dot >/dev/null; fi
'

test_expect_success 'a second run: the cached vertex is coloured as cached' '
	N=$(sfs_run "$DATA/graph.json") &&
	sfs_cat "$MNT/jobs/$N/graph.dot" | grep "label=\"bundle\"" | grep -q fillcolor=lightblue &&
	expect_eq cached "$(sfs_cat "$(sfs_vertex "$N" bundle)/state")"
'

test_expect_success 'vertices/ shows the vertices of a running job with its number in jobs' '
	N=$(sfs_submit "$DATA/slow.json") && echo "$N" >"$SCRATCH/slow" &&
	wait_for_proc "sleep 33.$$" &&
	hex=$(ls "$MNT/jobs/$N/vertices") &&
	test -d "$MNT/vertices/$hex" &&
	expect_eq slow "$(sfs_cat "$MNT/vertices/$hex/name")" &&
	expect_eq running "$(sfs_cat "$MNT/vertices/$hex/state")" &&
	expect_eq "$N" "$(sfs_cat "$MNT/vertices/$hex/jobs")" &&
	expect_eq "$hex" "$(sfs_cat "$MNT/vertices/$hex/op" | sha256sum | cut -d" " -f1)" &&
	sfs_cat "$MNT/jobs/$N/graph.dot" | grep -q fillcolor=gold &&
	sfs_until 5 grep -q "$MARK" "$MNT/vertices/$hex/log" &&
	expect_eq "$MARK" "$(sfs_cat "$MNT/vertices/$hex/log")" &&
	test_must_fail sh -c "echo x >\"$MNT/vertices/$hex/name\" 2>err" &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	expect_eq cancelled "$(SFS_WAIT_TIMEOUT=10 sfs_wait "$N")"
'

test_expect_success 'a finished job leaves vertices/; its history keeps them' '
	N=$(cat "$SCRATCH/slow") &&
	hex=$(ls "$MNT/jobs/$N/vertices") &&
	test ! -e "$MNT/vertices/$hex" &&
	expect_eq slow "$(sfs_cat "$MNT/jobs/$N/vertices/$hex/name")" &&
	expect_eq "" "$(sfs_cat "$MNT/jobs/$N/vertices/$hex/jobs")"
'

test_done
