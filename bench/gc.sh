#!/bin/bash
# bench/gc.sh — (g) the automatic GC's cost to a running job: a fresh `wide` job of
# BENCH_GC_VERTICES (default 10,000) vertices, timed to done on a store that already
# holds BENCH_GC_FILL (default 4) older jobs of the same size (their results the GC's
# candidates), mounted two ways:
#
#   off  -o gc=off: nothing collects;
#   gc   -o cache_max=BENCH_GC_CACHE_MAX (default 1M): the pass at mount starts
#        deleting the old results, least recently used first, and goes on while the
#        job runs (64 results per database unit), the job's own results held.
#
# Both start from a copy of one filled STATE_DIR, BENCH_GC_ROUNDS (default 3) times
# each, alternating; the medians are reported, with the slowdown (goal: <= 10 %) and how
# many results the GC deleted while the job ran (from the metrics), so a GC that was
# done before the job started would show.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/graphs.sh"

N=${BENCH_GC_VERTICES:-10000}
FILL=${BENCH_GC_FILL:-4}
ROUNDS=${BENCH_GC_ROUNDS:-3}
LIMIT=${BENCH_GC_CACHE_MAX:-1M}
OPTS=spec_max=256M,max_vertices=1000000
B=gc

# timed SPEC: run it, print "seconds collected-while-it-ran".
timed() {
	local c0 t0 t1
	c0=$(metric solverfs_gc_results_collected_total)
	t0=$(now_ns)
	bench_run_spec "$1" >/dev/null || return 1
	t1=$(now_ns)
	echo "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f\n", d / 1e9 }') $(($(metric solverfs_gc_results_collected_total) - c0))"
}

echo "== gc: a $N-vertex job with the automatic GC off, and collecting $FILL older jobs' results meanwhile"
gen_wide "$N" target >"$DATA/target.json"
rm -rf "$STATE"
bench_mount -o "gc=off,$OPTS" || exit 1
for i in $(seq 1 "$FILL"); do
	gen_wide "$N" "fill$i" >"$DATA/fill.json"
	bench_run_spec "$DATA/fill.json" >/dev/null || exit 1
done
filled=$(metric solverfs_cache_results)
bench_umount
cp -a "$STATE" "$SCRATCH/filled"
echo "  filled: $filled results" >&2

: >"$DATA/off" && : >"$DATA/gc" && : >"$DATA/collected"
for r in $(seq 1 "$ROUNDS"); do
	for mode in off gc; do
		rm -rf "$STATE" && cp -a "$SCRATCH/filled" "$STATE"
		if [ $mode = off ]; then
			bench_mount -o "gc=off,$OPTS" || exit 1
		else
			bench_mount -o "cache_max=$LIMIT,$OPTS" || exit 1
		fi
		read -r secs coll < <(timed "$DATA/target.json") || exit 1
		[ -n "$secs" ] || exit 1
		echo "$secs" >>"$DATA/$mode"
		[ $mode = gc ] && echo "$coll" >>"$DATA/collected"
		echo "  round $r, $mode: ${secs}s${coll:+, $coll results collected meanwhile}" >&2
		bench_umount
	done
done
off=$(median <"$DATA/off")
gc=$(median <"$DATA/gc")
coll=$(median <"$DATA/collected")
slow=$(awk -v a="$gc" -v b="$off" 'BEGIN { printf "%.1f\n", (a / b - 1) * 100 }')
report $B "$N vertices, gc off (s)" "$off"
report $B "$N vertices, gc collecting (s)" "$gc"
report $B "slowdown with gc collecting (%)" "$slow" "<= 10"
report $B "results collected while the job ran (of $filled)" "$coll"
