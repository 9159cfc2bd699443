#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='automatic GC: cache_max is a hard target after each job, least recently used first; kept jobs survive it and remounts; collected outputs dangle and say so; gc=off; gc_keep_duration'
. "$(dirname "$0")/lib.sh"

LIMIT=$((1 << 20)) # cache_max=1M

# job NAME SIZE: run an exec writing out/f, SIZE bytes of "NAME" lines; keep its number
# in $DATA/n.NAME.  Each job's content is its own: no two share a blob.
job() {
	sfs_exec_spec e "$1" "yes $1 | head -c $2 >out/f" >"$DATA/$1.json" &&
		sfs_run "$DATA/$1.json" >"$DATA/n.$1"
}
n() { cat "$DATA/n.$1"; }
metric() { awk -v m="$1" '$1 == m { print $2 }' "$MNT/metrics"; }
# the GC has had a pass after every job that ended since the mount
gc_caught_up() {
	local seen ended
	seen=$(metric solverfs_gc_jobs_seen) && ended=$(metric solverfs_jobs_ended_total) &&
		[ "$seen" -ge "$ended" ]
}
gc_settle() { sfs_until 60 gc_caught_up; }
# job NAME's output, read back against what it wrote
intact() {
	yes "$1" | head -c "$2" | cmp - "$(sfs_output "$(n "$1")" e)/f"
}
collected() {
	expect_contains " collected" "$(sfs_cat "$MNT/jobs/$(n "$1")/result")" &&
		readlink "$(sfs_output "$(n "$1")" e)" >/dev/null &&
		test_must_fail test -e "$(sfs_output "$(n "$1")" e)/f"
}
kept() {
	expect_not_contains collected "$(sfs_cat "$MNT/jobs/$(n "$1")/result")" && intact "$1" "$2"
}
# bytes of file data of every result the cache knows
data_bytes() {
	local t=0 s
	for s in "$MNT"/cache/results/*/size; do
		[ -e "$s" ] || continue
		t=$((t + $(cat "$s")))
	done
	echo "$t"
}

sfs_mount -o cache_max=1M || say "# mount failed; every case below will fail"

test_expect_success 'keep pins a finished job; ctl says so' '
	job A 400000 &&
	echo keep >"$MNT/jobs/$(n A)/ctl" &&
	expect_file_eq "ok: keep" "$MNT/jobs/$(n A)/ctl" &&
	expect_contains " kept" "$(sfs_cat "$MNT/jobs/$(n A)/result")" &&
	gc_settle && kept A 400000
'

test_expect_success 'keep refuses a pending job, unknown words are refused' '
	P=$(sfs_new) &&
	test_must_fail sh -c "echo keep >\"$MNT/jobs/$P/ctl\"" &&
	expect_contains "keep it once it has ended" "$(sfs_cat "$MNT/jobs/$P/ctl")" &&
	echo discard >"$MNT/jobs/$P/ctl" &&
	test_must_fail sh -c "echo keep-all >\"$MNT/jobs/$(n A)/ctl\""
'

test_expect_success 'past cache_max, GC deletes the least recently used after each job' '
	for j in B C D E; do job $j 300000 && gc_settle || exit 1; done &&
	collected B && collected C &&
	kept A 400000 && kept D 300000 && kept E 300000 &&
	used=$(metric solverfs_gc_used_bytes) &&
	test "$used" -le $LIMIT && test "$(data_bytes)" -le $LIMIT &&
	test "$(metric solverfs_gc_results_collected_total)" -ge 2
'

test_expect_success 'a collected output is a dangling link to results/' '
	l=$(readlink "$(sfs_output "$(n B)" e)") &&
	expect_contains "results/" "$l" &&
	test_must_fail test -e "$MNT/jobs/$(n B)/outputs/e" &&
	test_must_fail ls "$MNT/results/${l##*/}"
'

test_expect_success 'a kept job survives a remount and the GC after it; unkeep releases it' '
	sfs_remount -o cache_max=1M &&
	for j in F G; do job $j 300000 && gc_settle || exit 1; done &&
	collected D && collected E && kept A 400000 && kept F 300000 && kept G 300000 &&
	expect_contains " kept" "$(sfs_cat "$MNT/jobs/$(n A)/result")" &&
	echo unkeep >"$MNT/jobs/$(n A)/ctl" &&
	expect_not_contains kept "$(sfs_cat "$MNT/jobs/$(n A)/result")" &&
	job H 300000 && gc_settle &&
	collected A && kept G 300000 && kept H 300000
'

test_expect_success 'gc=off deletes nothing, however far past cache_max' '
	sfs_remount -o gc=off,cache_max=1M &&
	for j in I J K L; do job $j 300000 || exit 1; done &&
	for j in G H I J K L; do kept $j 300000 || exit 1; done &&
	test "$(data_bytes)" -gt $LIMIT &&
	expect_eq 0 "$(metric solverfs_gc_passes_total)"
'

test_expect_success 'the pass at mount brings a store that grew under gc=off back under' '
	sfs_remount -o cache_max=1M &&
	sfs_until 60 sh -c "test \"\$(awk '\''\$1 == \"solverfs_gc_passes_total\" { print \$2 }'\'' \"$MNT/metrics\")\" -ge 1" &&
	test "$(data_bytes)" -le $LIMIT &&
	collected G && collected H && kept L 300000
'

test_expect_success 'gc_keep_duration: results used within it are kept, older ones go' '
	# gc_min_free=100%: the disk is never free enough, so the age alone decides
	sfs_remount -o gc_max_used=1G,gc_reserved=0,gc_min_free=100%,gc_keep_duration=1h &&
	for j in M N; do job $j 1000 && gc_settle || exit 1; done &&
	kept M 1000 && kept N 1000 && kept L 300000 &&
	sfs_remount -o gc_max_used=1G,gc_reserved=0,gc_min_free=100%,gc_keep_duration=5s &&
	sleep 6 &&
	job O 1000 && gc_settle &&
	collected M && collected N && collected L && kept O 1000
'

test_done
