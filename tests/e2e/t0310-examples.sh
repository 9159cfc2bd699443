#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='examples/: every example builds with solverctl from its own directory and makes what its README says'
. "$(dirname "$0")/lib.sh"

sfs_find_solverctl
EX=$SFS_SRC_ROOT/examples
export EX

ctl() {
	timeout 120 "$SOLVERCTL" -m "$MNT" "$@"
}

# build NAME [OPTION...]: solverctl build examples/NAME/spec.json from $DATA (so only the
# spec's own directory can give its relative paths a meaning); stdout (the result paths)
# to $SCRATCH/NAME.out, stderr to NAME.err, the job number to NAME.job; marks NAME built.
build() {
	local name=$1
	shift
	(cd "$DATA" && ctl build --progress=plain "$@" "$EX/$name/spec.json") \
		>"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" ||
		{ cat "$SCRATCH/$name.err"; return 1; }
	sed -n 's/^solverctl: job \([0-9]*\)$/\1/p' "$SCRATCH/$name.err" | head -n 1 >"$SCRATCH/$name.job"
	echo "$name" >>"$SCRATCH/built"
}

# vstate N NAME: the state of job N's vertex named NAME (one line per such vertex).
vstate() {
	local v
	for v in "$MNT/jobs/$1/vertices"/*/; do
		[ "$(sfs_cat "$v/name")" = "$2" ] && sfs_cat "$v/state"
	done
	return 0
}

# expect_states N STATE NAME...: each NAME is one vertex of job N, in STATE.
expect_states() {
	local n=$1 want=$2 name
	shift 2
	for name in "$@"; do
		expect_eq "$name $want" "$name $(vstate "$n" "$name" | tr '\n' ' ' | sed 's/ $//')" || return 1
	done
}

executed_total() {
	sfs_cat "$MNT/metrics" | awk '$1 == "solverfs_vertices_executed_total" { print $2 }'
}

# out NAME I: the I-th result path solverctl printed for example NAME.
out() {
	sed -n "$2p" "$SCRATCH/$1.out"
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'every example is a directory with a README.md and a spec whose local paths are relative' '
	n=0 &&
	for d in "$EX"/*/; do
		test -s "$d/README.md" && test -s "$d/spec.json" &&
		python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
for k, v in s[\"vertices\"].items():
    if v[\"op\"] == \"local\":
        assert not v[\"path\"].startswith(\"/\"), (sys.argv[1], k, v[\"path\"])
" "$d/spec.json" &&
		n=$((n + 1)) || exit 1
	done &&
	test "$n" -ge 5 &&
	expect_eq "" "$(grep -rl @EXAMPLES@ "$EX" || true)"
'

test_expect_success 'hello: local -> exec and file -> merge; a second build reads src and caches the rest' '
	build hello &&
	N=$(cat "$SCRATCH/hello.job") &&
	expect_eq 1 "$(wc -l <"$SCRATCH/hello.out")" &&
	r=$(out hello 1) &&
	expect_file_eq "$(printf "hello, world\nhello, solver\nhello, filesystem")" "$r/greetings.txt" &&
	expect_file_eq "$(printf "WORLD\nSOLVER\nFILESYSTEM")" "$r/WORDS.txt" &&
	expect_file_eq 1.0 "$r/doc/VERSION" &&
	expect_eq doc/VERSION "$(readlink "$r/VERSION")" &&
	expect_mode 755 "$r/bin/hello" &&
	cp -r "$r" "$DATA/hello-copy" &&
	expect_eq "$(cat "$r/greetings.txt")" "$("$DATA/hello-copy/bin/hello")" &&
	expect_contains "\"path\":\"$EX/hello/src\"" "$(sfs_cat "$MNT/jobs/$N/spec")" &&
	expect_states "$N" done src shout metadata bundle &&
	build hello &&
	N2=$(cat "$SCRATCH/hello.job") &&
	expect_eq "$r" "$(out hello 1)" &&
	expect_states "$N2" done src &&
	expect_states "$N2" cached shout metadata bundle
'

test_expect_success 'c-program: three compiles, a link and a test run that checks the binary' '
	build c-program &&
	N=$(cat "$SCRATCH/c-program.job") &&
	expect_eq 2 "$(wc -l <"$SCRATCH/c-program.out")" &&
	bin=$(out c-program 1) && report=$(out c-program 2) &&
	expect_eq rpn "$(ls "$bin")" &&
	expect_eq 14 "$("$bin/rpn" "3 4 + 2 *")" &&
	test_must_fail "$bin/rpn" "1 +" &&
	expect_eq 6 "$(grep -c "^ok " "$report/report.txt")" &&
	expect_eq 0 "$(grep -c "^not ok" "$report/report.txt" || true)" &&
	expect_contains "ok 2 - 3 4 + 2 * = 14" "$(cat "$report/report.txt")" &&
	expect_contains "ok 5 - 2 3 4 * - = -10" "$(cat "$report/report.txt")" &&
	expect_contains "ok 2 - 3 4 + 2 * = 14" "$(ctl logs "$N" "test rpn")" &&
	expect_states "$N" done src "compile main.c" "compile stack.c" "compile eval.c" "link rpn" "test rpn" &&
	echo "$bin $report" >"$SCRATCH/c-program.results"
'

# The rest works on a copy, so the checkout is never written to.
test_expect_success 'c-program: editing the README rebuilds nothing (selectors), editing eval.c rebuilds only its chain' '
	cp -r "$EX/c-program" "$DATA/c-program" &&
	spec=$DATA/c-program/spec.json &&
	ctl build --progress=plain "$spec" >o0 2>e0 &&
	expect_eq "$(cat "$SCRATCH/c-program.results")" "$(tr "\n" " " <o0 | sed "s/ $//")" &&
	echo "one more line" >>"$DATA/c-program/README.md" &&
	ctl build --progress=plain "$spec" >o1 2>e1 &&
	N=$(sed -n "s/^solverctl: job \([0-9]*\)$/\1/p" e1) &&
	expect_eq "$(cat "$SCRATCH/c-program.results")" "$(tr "\n" " " <o1 | sed "s/ $//")" &&
	expect_states "$N" done src &&
	expect_states "$N" cached "link rpn" "test rpn" "compile main.c" "compile stack.c" "compile eval.c" &&
	expect_contains "[src] executed: no record for this content" "$(sfs_cat "$MNT/jobs/$N/why")" &&
	sed -i "s/stack underflow/too few values/" "$DATA/c-program/src/eval.c" &&
	ctl build --progress=plain "$spec" >o2 2>e2 &&
	N=$(sed -n "s/^solverctl: job \([0-9]*\)$/\1/p" e2) &&
	expect_states "$N" done src "compile eval.c" "link rpn" "test rpn" &&
	expect_states "$N" cached "compile main.c" "compile stack.c" &&
	expect_eq "rpn: 1 +: too few values" "$("$(head -n 1 o2)/rpn" "1 +" 2>&1 || true)"
'

test_expect_success 'c-program: a wrong expected value fails the test step and the job' '
	cp -r "$EX/c-program" "$DATA/c-program-bad" &&
	sed -i "s/	14$/	15/" "$DATA/c-program-bad/test/cases.txt" &&
	rc=0 && ctl build --progress=plain "$DATA/c-program-bad/spec.json" >o 2>e || rc=$? &&
	expect_eq 1 "$rc" &&
	N=$(sed -n "s/^solverctl: job \([0-9]*\)$/\1/p" e) &&
	expect_eq failed "$(sfs_cat "$MNT/jobs/$N/state")" &&
	expect_states "$N" failed "test rpn" &&
	expect_states "$N" cached "link rpn" &&
	expect_contains "not ok 2 - 3 4 + 2 *: expected 15, got 14" "$(cat e)"
'

test_expect_success 'diamond: the shared vertex runs once and both branches see its one result' '
	before=$(executed_total) &&
	build diamond &&
	N=$(cat "$SCRATCH/diamond.job") &&
	join=$(out diamond 1) && seed=$(out diamond 2) &&
	token=$(cat "$seed/token") &&
	expect_eq 16 "${#token}" &&
	expect_file_eq "left saw $token" "$join/left.txt" &&
	expect_file_eq "right saw $token" "$join/right.txt" &&
	expect_states "$N" done seed left right join &&
	sfs_cat "$MNT/jobs/$N/status" >status &&
	num=$(sed -n "s/^\(#[0-9]*\) \[seed\] .*/\1/p" status | sort -u) &&
	expect_eq 1 "$(echo "$num" | wc -l)" &&
	expect_eq 1 "$(grep -c "^$num DONE" status)" &&
	expect_eq 1 "$(ctl logs "$N" seed | grep -c "seed runs once")" &&
	expect_eq 4 "$(($(executed_total) - before))" &&
	build diamond &&
	N2=$(cat "$SCRATCH/diamond.job") &&
	expect_states "$N2" cached seed left right join &&
	expect_eq "$token" "$(cat "$(out diamond 2)/token")" &&
	expect_eq 4 "$(($(executed_total) - before))"
'

test_expect_success 'two-outputs: both outputs of the exec are outputs of the job, and the merge keeps both' '
	build two-outputs &&
	N=$(cat "$SCRATCH/two-outputs.job") &&
	expect_eq 3 "$(wc -l <"$SCRATCH/two-outputs.out")" &&
	evens=$(out two-outputs 1) && odds=$(out two-outputs 2) && both=$(out two-outputs 3) &&
	expect_file_eq even "$evens/README" && expect_file_eq "$(seq 2 2 10)" "$evens/list" &&
	expect_file_eq odd "$odds/README" && expect_file_eq "$(seq 1 2 9)" "$odds/list" &&
	expect_file_eq "$(seq 2 2 10)" "$both/evens/list" && expect_file_eq even "$both/evens/README" &&
	expect_file_eq "$(seq 1 2 9)" "$both/odds/list" && expect_file_eq odd "$both/odds/README" &&
	expect_eq "both split split@1" "$(ls "$MNT/jobs/$N/outputs" | tr "\n" " " | sed "s/ $//")" &&
	expect_eq "$odds" "$(realpath "$MNT/jobs/$N/outputs/split@1")"
'

test_expect_success 'export-import: the first build exports its cache' '
	build export-import --export "$DATA/poem-cache" &&
	N=$(cat "$SCRATCH/export-import.job") &&
	r=$(out export-import 1) &&
	expect_file_eq 1.0 "$r/VERSION" &&
	expect_eq "      6 the" "$(head -n 1 "$r/counts.txt")" &&
	test -f "$DATA/poem-cache/oci-layout" && test -f "$DATA/poem-cache/index.json" &&
	diff -r "$MNT/jobs/$N/export" "$DATA/poem-cache" &&
	echo "$r" >"$SCRATCH/export-import.result"
'

# A fresh STATE_DIR on the same mountpoint: nothing in its cache but what cache_from brings.
sfs_umount
STATE=$SCRATCH/state-fresh
sfs_mount || say "# the second mount failed; the case below will fail"

test_expect_success 'export-import: a fresh STATE_DIR importing it with cache_from executes nothing' '
	expect_eq 0 "$(awk "\$1 == \"records\" { print \$2 }" "$MNT/cache/stats")" &&
	expect_eq 0 "$(executed_total)" &&
	build export-import -o cache_from="$DATA/poem-cache" &&
	N=$(cat "$SCRATCH/export-import.job") &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$N/state")" &&
	expect_contains "[cache_from] importing $DATA/poem-cache" "$(sfs_cat "$MNT/jobs/$N/status")" &&
	r=$(out export-import 1) &&
	expect_eq "$(basename "$(cat "$SCRATCH/export-import.result")")" "$(basename "$r")" &&
	expect_eq "      6 the" "$(head -n 1 "$r/counts.txt")" &&
	n=0 &&
	for v in "$MNT/jobs/$N/vertices"/*/; do
		case $(sfs_cat "$v/op") in
		*"\"op\":\"local\""*) expect_eq done "$(sfs_cat "$v/state")" ;;
		*) expect_eq "$(sfs_cat "$v/name") cached" "$(sfs_cat "$v/name") $(sfs_cat "$v/state")" && n=$((n + 1)) ;;
		esac || exit 1
	done &&
	expect_eq 4 "$n" &&
	expect_states "$N" cached "split words" "count words" metadata report &&
	expect_eq 0 "$(executed_total)"
'

test_expect_success 'every example was built' '
	for d in "$EX"/*/; do
		name=$(basename "$d") &&
		grep -qx "$name" "$SCRATCH/built" || { say "example $name was never built"; exit 1; }
	done
'

test_done
