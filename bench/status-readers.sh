#!/bin/bash
# bench/status-readers.sh — what blocked `cat jobs/N/status` readers cost a job.
#
# A wide spec of BENCH_SR_VERTICES (default 10,000) `file` roots and one merge
# (bench/solve-scale.sh's shape), each run with a seed of its own so that every run
# executes all of it, is timed from submit to `done`:
#   (1) alone;
#   (2) with BENCH_SR_READERS (default 200) `cat jobs/N/status` started on the
#       pending job before its spec is written, each following the job to its end (a blocked read is a parked
#       request, fs/stream.c, not a thread);
# median of BENCH_REPEAT (default 3) runs each, alternated.  Also the daemon's
# largest thread count seen while the readers were blocked (/proc/PID/status).
# Goal (issue 14): (2) ≤ 1.1 × (1), with a bounded number of threads.
. "$(dirname "$0")/lib.sh"

N=${BENCH_SR_VERTICES:-10000}
READERS=${BENCH_SR_READERS:-200}
REPEAT=${BENCH_REPEAT:-3}
B=status-readers

gen_wide() {
	awk -v n="$1" -v seed="$2" 'BEGIN {
		printf "{\"vertices\":{"
		for (i = 0; i < n; i++)
			printf "%s\"r%d\":{\"op\":\"file\",\"actions\":[{\"mkfile\":{\"path\":\"f%d\",\"data\":\"%s %d\\n\"}}]}", i ? "," : "", i, i, seed, i
		printf ",\"all\":{\"op\":\"merge\",\"inputs\":["
		for (i = 0; i < n; i++)
			printf "%s\"r%d\"", i ? "," : "", i
		printf "]}},\"outputs\":[\"all\"]}\n"
	}'
}

threads() {
	awk '$1 == "Threads:" { print $2 }' "/proc/$(sfs_daemon_pid)/status" 2>/dev/null || echo 0
}

# one_run SEED READERS: ms from submit to done; the max thread count goes to $DATA/thr.
one_run() {
	local t0 t1 n pids=() max=0 t
	gen_wide "$N" "$1" >"$DATA/spec.json"
	# The readers block on the pending job first: starting 200 processes is not
	# what is measured.
	n=$(timeout 10 cat "$MNT/jobs/new") || return 1
	for _ in $(seq 1 "$2"); do
		cat "$MNT/jobs/$n/status" >/dev/null &
		pids+=($!)
	done
	sleep 1
	t0=$(now_ms_)
	cat "$DATA/spec.json" >"$MNT/jobs/$n/spec" || return 1
	while case $(cat "$MNT/jobs/$n/state" 2>/dev/null) in pending | running) true ;; *) false ;; esac; do
		t=$(threads)
		[ "$t" -gt "$max" ] && max=$t
		sleep 0.2
	done
	[ "$(timeout 3600 cat "$MNT/jobs/$n/wait")" = done ] || { echo "bench: job $n failed" >&2; return 1; }
	t1=$(now_ms_)
	[ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"
	echo "$max" >"$DATA/thr"
	echo $((t1 - t0))
}

now_ms_() {
	echo $(($(date +%s%N) / 1000000))
}

echo "== status-readers: a wide job of $N vertices, alone and with $READERS status readers"
bench_mount -o spec_max=256M,max_vertices=1000000 || exit 1
alone=() with=() maxthr=0
for i in $(seq 1 "$REPEAT"); do
	a=$(one_run "a$i" 0) || exit 1
	alone+=("$a")
	w=$(one_run "w$i" "$READERS") || exit 1
	with+=("$w")
	t=$(cat "$DATA/thr")
	[ "$t" -gt "$maxthr" ] && maxthr=$t
done
base_thr=$(threads)
bench_umount
t_alone=$(printf '%s\n' "${alone[@]}" | median)
t_with=$(printf '%s\n' "${with[@]}" | median)
report $B "wide $N alone (ms)" "$t_alone"
report $B "wide $N with $READERS readers (ms)" "$t_with"
report $B "with readers / alone" "$(ratio "$t_with" "$t_alone")" "<= 1.10"
report $B "daemon threads, most seen with readers" "$maxthr" "bounded (64 FUSE + workers)"
report $B "daemon threads after the runs" "$base_thr"
