#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='metrics in the Prometheus text format; job history across remounts, trimmed by jobs_keep'
. "$(dirname "$0")/lib.sh"

. "$SFS_E2E_DIR/history-specs.sh" # $DATA/ok.json and $DATA/fail.json

# metric NAME[{LABELS}]: the value of one sample
metric() {
	sfs_cat "$MNT/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'metrics: every line is a HELP, a TYPE or a sample of the exposition format' '
	N=$(sfs_run "$DATA/ok.json") && echo "$N" >"$SCRATCH/ok" &&
	F=$(sfs_submit "$DATA/fail.json") && echo "$F" >"$SCRATCH/fail" &&
	expect_eq failed "$(sfs_wait "$F")" &&
	sfs_cat "$MNT/metrics" >m &&
	name="[a-zA-Z_:][a-zA-Z0-9_:]*" &&
	bad=$(grep -Ev "^# HELP $name .+$|^# TYPE $name (counter|gauge|histogram|summary|untyped)$|^$name(\{$name=\"[^\"]*\"(,$name=\"[^\"]*\")*\})? -?[0-9.e+]+([Ee][-+]?[0-9]+)?$|^$name\{le=\"\+Inf\"\} [0-9]+$" m || true) &&
	expect_eq "" "$bad" &&
	awk "/^# TYPE/ { t[\$3] = 1 } /^[a-z]/ { n = \$1; sub(/\{.*/, \"\", n); b = n; sub(/_(bucket|sum|count)$/, \"\", b); if (!(n in t) && !(b in t)) { print \"no TYPE for \" n; bad = 1 } } END { exit bad }" m
'

test_expect_success 'metrics: jobs by state, executed and cached vertices, hits and misses, the store' '
	expect_eq 1 "$(metric "solverfs_jobs{state=\"done\"}")" &&
	expect_eq 1 "$(metric "solverfs_jobs{state=\"failed\"}")" &&
	expect_eq 0 "$(metric "solverfs_jobs{state=\"running\"}")" &&
	test "$(metric solverfs_vertices_executed_total)" -ge 2 &&
	expect_eq 0 "$(metric solverfs_cache_hits_total)" &&
	sfs_run "$DATA/ok.json" >/dev/null &&
	expect_eq 1 "$(metric solverfs_cache_hits_total)" &&
	expect_eq 1 "$(metric solverfs_vertices_cached_total)" &&
	expect_eq "$(metric solverfs_vertices_executed_total)" "$(metric solverfs_cache_misses_total)" &&
	test "$(metric solverfs_store_blobs)" -gt 0 &&
	test "$(metric solverfs_store_bytes)" -gt 0 &&
	grep -Eq "^# TYPE solverfs_vertices_executed_total counter$" "$MNT/metrics" &&
	grep -Eq "^# TYPE solverfs_jobs gauge$" "$MNT/metrics"
'

test_expect_success 'metrics: the solve duration histogram counts the finished jobs' '
	sfs_cat "$MNT/metrics" >m &&
	grep -q "^# TYPE solverfs_solve_duration_seconds histogram$" m &&
	expect_eq 3 "$(metric solverfs_solve_duration_seconds_count)" &&
	expect_eq 3 "$(metric "solverfs_solve_duration_seconds_bucket{le=\"+Inf\"}")" &&
	grep "^solverfs_solve_duration_seconds_bucket" m | awk "{ if (\$2 < last) exit 1; last = \$2 }" &&
	grep -q "^solverfs_solve_duration_seconds_sum [0-9.e+-]*$" m
'

test_expect_success 'a remount keeps the history: spec, state, error, result, status, vertices' '
	N=$(cat "$SCRATCH/ok") && F=$(cat "$SCRATCH/fail") &&
	for f in spec state error result status why graph.dot; do
		sfs_cat "$MNT/jobs/$N/$f" >"before-$f" && sfs_cat "$MNT/jobs/$F/$f" >"fbefore-$f" || exit 1
	done &&
	(cd "$MNT/jobs/$N/vertices" && for d in *; do cat "$d/name" "$d/state" "$d/log" "$d/why" "$d/keys"; ls "$d/inputs" "$d/results"; done) >before-v &&
	sfs_remount &&
	for f in spec state error result status why graph.dot; do
		cmp "before-$f" <(sfs_cat "$MNT/jobs/$N/$f") && cmp "fbefore-$f" <(sfs_cat "$MNT/jobs/$F/$f") || { echo "$f differs"; exit 1; }
	done &&
	(cd "$MNT/jobs/$N/vertices" && for d in *; do cat "$d/name" "$d/state" "$d/log" "$d/why" "$d/keys"; ls "$d/inputs" "$d/results"; done) >after-v &&
	cmp before-v after-v &&
	grep -q hello after-v &&
	expect_eq failed "$(sfs_cat "$MNT/jobs/$F/state")" &&
	test -s "$MNT/jobs/$F/error" &&
	expect_eq 2 "$(metric "solverfs_jobs{state=\"done\"}")" &&
	expect_eq 3 "$(metric solverfs_solve_duration_seconds_count)"
'

test_expect_success 'jobs_keep=N keeps only the newest N finished jobs' '
	sfs_remount -o jobs_keep=2 &&
	for i in 1 2 3; do sfs_run "$DATA/ok.json" >/dev/null || exit 1; done &&
	L=$(basename "$(readlink "$MNT/jobs/latest")") &&
	expect_eq "$((L - 1)) $L" "$(ls "$MNT/jobs" | grep -E "^[0-9]+$" | sort -n | tr "\n" " " | sed "s/ $//")" &&
	test_must_fail ls "$MNT/jobs/$(cat "$SCRATCH/ok")" &&
	expect_eq 2 "$(metric solverfs_solve_duration_seconds_count)"
'

test_expect_success 'jobs_keep also holds across a remount' '
	L=$(basename "$(readlink "$MNT/jobs/latest")") &&
	sfs_remount -o jobs_keep=2 &&
	expect_eq "$((L - 1)) $L" "$(ls "$MNT/jobs" | grep -E "^[0-9]+$" | sort -n | tr "\n" " " | sed "s/ $//")" &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$L/state")"
'

awk 'BEGIN {
	printf "{\"vertices\":{"
	for (i = 0; i < 200; i++)
		printf "%s\"v%d\":{\"op\":\"file\",%s\"actions\":[{\"mkfile\":{\"path\":\"f\",\"data\":\"%d\\n\"}}]}", i ? "," : "", i, i ? sprintf("\"base\":\"v%d\",", i - 1) : "", i
	printf "},\"outputs\":[\"v199\"]}\n"
}' >"$DATA/chain.json"

test_expect_success 'metrics: the saves of many vertices share database commits' '
	c0=$(metric solverfs_db_commits_total) && e0=$(metric solverfs_vertices_executed_total) &&
	grep -q "^# TYPE solverfs_db_commits_total counter$" "$MNT/metrics" &&
	sfs_run "$DATA/chain.json" >/dev/null &&
	c1=$(metric solverfs_db_commits_total) && e1=$(metric solverfs_vertices_executed_total) &&
	expect_eq 200 $((e1 - e0)) &&
	say "# 200 vertices executed in $((c1 - c0)) commits" &&
	test $((c1 - c0)) -gt 0 && test $((c1 - c0)) -lt 200
'

# A finished job's vertex list is read from the database when looked at, and
# only the last few jobs looked at keep it loaded: looking at more of them and
# coming back must give the same listing.
test_expect_success 'finished jobs show their vertices after many others were looked at' '
	sfs_remount -o jobs_keep=50 &&
	for i in $(seq 1 10); do
		sed "s/echo hello/echo hello-$i/" "$DATA/ok.json" >"$DATA/ok-$i.json" &&
		sfs_run "$DATA/ok-$i.json" >>jobs-run || exit 1
	done &&
	expect_eq 12 "$(ls "$MNT/jobs" | grep -c "^[0-9]")" &&
	first=$(head -n 1 jobs-run) &&
	(cd "$MNT/jobs/$first/vertices" && for d in *; do cat "$d/name" "$d/state"; done) >first-before &&
	test -s first-before &&
	while read -r n; do ls "$MNT/jobs/$n/vertices" >/dev/null || exit 1; done <jobs-run &&
	(cd "$MNT/jobs/$first/vertices" && for d in *; do cat "$d/name" "$d/state"; done) >first-after &&
	cmp first-before first-after &&
	grep -q "^show$" first-after
'

test_done
