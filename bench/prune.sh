#!/bin/bash
# bench/prune.sh — `echo prune > cache/ctl` over BENCH_PRUNE (default 100,000) results,
# each with its own key, record and manifest blob.  sfs-bench-prunefill (bench/prunefill.c,
# built next to solverfs) stores them into a fresh STATE_DIR before the mount.  Reports
# the dry run and the real prune in results (= records) per second, from the write until
# cache/ctl stops saying "running", and how long a cache/stats read takes during each
# (built on a thread of its own, fs/cachesnap.c: it waits for one unit of the prune at most).
. "$(dirname "$0")/lib.sh"

N=${BENCH_PRUNE:-100000}
FILL=${SFS_BENCH_PRUNEFILL:-$(dirname "$(dirname "$SOLVERFS")")/bench/sfs-bench-prunefill}
B=prune

echo "== prune: cache/ctl prune of $N results"
[ -x "$FILL" ] || { echo "bench: no $FILL (ninja -C build-bench bench/sfs-bench-prunefill)" >&2; exit 1; }
t0=$(now_ns)
"$FILL" "$STATE" "$N" || exit 1
t1=$(now_ns)
report $B "fill $N results (s, not through the mount)" "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1e9 }')"

bench_mount || exit 1
[ -e "$MNT/cache/ctl" ] || { echo "  no cache/ctl in this build"; report $B "prune (records/s)" "n/a"; exit 0; }

running() { grep -q '^running:' "$MNT/cache/ctl"; }
# prune_s CMD: run cache/ctl CMD to its end; print its seconds; the outcome in $SCRATCH/outcome
prune_s() {
	local t0 t1
	t0=$(now_ns)
	echo "$*" >"$MNT/cache/ctl" || return 1
	while running; do sleep 0.05; done
	t1=$(now_ns)
	cat "$MNT/cache/ctl" >"$SCRATCH/outcome"
	awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f\n", d / 1e9 }'
}
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "n/a" }'; }

# stats_reader NAME: cache/stats read twice a second into $SCRATCH/NAME-ms until
# $SCRATCH/NAME-done exists (stop_reader NAME)
stats_reader() {
	( while [ ! -e "$SCRATCH/$1-done" ]; do time_ms cat "$MNT/cache/stats"; sleep 0.5; done >"$SCRATCH/$1-ms" ) &
	reader=$!
}
stop_reader() { touch "$SCRATCH/$1-done"; wait "$reader"; }
slowest() { sort -g "$SCRATCH/$1-ms" | tail -n 1; }

stats_reader dry
s_dry=$(prune_s prune dry-run) || exit 1
stop_reader dry
echo "  $(cat "$SCRATCH/outcome")"
report $B "dry run (records/s)" "$(per_s "$N" "$s_dry")"
report $B "slowest cache/stats read during the dry run (ms)" "$(slowest dry)"

# cache/stats reads (two a second) while the prune runs: the slowest one
stats_reader real
s_real=$(prune_s prune) || exit 1
stop_reader real
echo "  $(cat "$SCRATCH/outcome")"
grep -q "freed $N results" "$SCRATCH/outcome" || echo "  note: not every result went: $(cat "$SCRATCH/outcome")"
report $B "prune (records/s)" "$(per_s "$N" "$s_real")"
report $B "prune of $N results (s)" "$s_real"
report $B "slowest cache/stats read meanwhile (ms)" "$(slowest real)"
