#!/bin/bash
# bench/solve-scale.sh — (d) solve cost against graph size: specs of about N vertices
# for N in BENCH_SOLVE_SIZES (default "1000 10000 100000"), in the shapes of
# BENCH_SOLVE_SHAPES (default "chain wide lattice"):
#
#   chain    v0 <- v1 <- ... <- v(N-1), each a `file` op on its predecessor with one
#            mkfile of its own data (every result a one-file tree: constant work a vertex);
#   wide     N `file` roots with a unique mkfile each, and one `merge` of all of them;
#   lattice  W = BENCH_LATTICE_W (100) columns, L = N / W layers: layer 0 are `file`
#            roots, vertex (l, j) is a `merge` of (l-1, j) and (l-1, (j+1) mod W), and
#            one final `merge` of the last layer.  Every vertex of a deep layer ends up
#            with inputs of equal content: the shape of converging toolchains;
#   fanin    N/2 `file` leaves joined pairwise by `merge` vertices into one root.
#
# Each (shape, N) gets a fresh STATE_DIR and daemon: the spec is submitted through
# jobs/new and timed to done ("fresh"); then the daemon is remounted on the same state
# and the spec submitted again ("cached": every vertex a cache hit).  For the lattice a
# third phase changes the data of root (0, 0) and submits again ("incremental": the
# vertices downstream of that root run again).  Executed and cached vertex counts come
# from the mount's metrics.  The daemon's peak RSS (VmHWM) is read after each run, its
# RSS right after the mount is the baseline.  Reported per vertex: time, and (peak -
# baseline) memory.  A job that does not end within BENCH_SOLVE_TIMEOUT seconds
# (default 1800) is cancelled and reported as such.
. "$(dirname "$0")/lib.sh"

SIZES=${BENCH_SOLVE_SIZES:-1000 10000 100000}
SHAPES=${BENCH_SOLVE_SHAPES:-chain wide lattice}
LATTICE_W=${BENCH_LATTICE_W:-100}
TMO=${BENCH_SOLVE_TIMEOUT:-1800}
MOUNT_OPTS=(-o spec_max=256M,max_vertices=1000000)
B=solve-scale
# shellcheck source=SCRIPTDIR/graphs.sh
. "$BENCH_DIR/graphs.sh"

# run_one SPEC: submit, wait (at most $TMO s), print "seconds" or "timeout"/"failed".
run_one() {
	local t0 t1 n st
	t0=$(now_ns)
	cat "$1" >"$MNT/jobs/new" || { echo "bench: spec rejected: $(cat "$MNT/jobs/latest/error" 2>/dev/null)" >&2; echo failed; return; }
	n=$(basename "$(readlink "$MNT/jobs/latest")")
	if ! st=$(timeout "$TMO" cat "$MNT/jobs/$n/wait"); then
		if ! kill -0 "$(sfs_daemon_pid)" 2>/dev/null; then
			echo "bench: the daemon died during job $n; its log ends:" >&2
			tail -n 5 "$LOG" >&2
			echo crashed
			return
		fi
		echo cancel >"$MNT/jobs/$n/ctl" 2>/dev/null
		timeout 60 cat "$MNT/jobs/$n/wait" >/dev/null 2>&1
		echo timeout
		return
	fi
	t1=$(now_ns)
	if [ "$st" != done ]; then
		echo "bench: job $n ended $st: $(head -c 500 "$MNT/jobs/$n/error" 2>/dev/null)" >&2
		echo failed
		return
	fi
	awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f\n", d / 1e9 }'
}

# per_vertex SECONDS N: microseconds per vertex.
per_vertex() {
	awk -v s="$1" -v n="$2" 'BEGIN { if (s ~ /^[0-9.]+$/) printf "%.0f\n", s * 1e6 / n; else print s }'
}

# counted_run SPEC: run_one, then "seconds executed cached cpu_seconds" (counts from
# the metrics, CPU time of the daemon).
counted_run() {
	local e0 c0 u0 t
	e0=$(metric solverfs_vertices_executed_total)
	c0=$(metric solverfs_vertices_cached_total)
	u0=$(daemon_cpu_us)
	t=$(run_one "$1")
	echo "$t $(($(metric solverfs_vertices_executed_total) - e0)) $(($(metric solverfs_vertices_cached_total) - c0)) $(awk -v a="$u0" -v b="$(daemon_cpu_us)" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')"
}

kib_per_vertex() {
	awk -v p="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f\n", (p - b) / n }'
}

echo "== solve-scale: time to done and peak RSS against the number of vertices"
for shape in $SHAPES; do
	for n in $SIZES; do
		spec=$DATA/$shape-$n.json
		"gen_$shape" "$n" >"$spec"
		nv=$(grep -o '"op":' "$spec" | wc -l)
		rm -rf "$STATE"
		bench_mount "${MOUNT_OPTS[@]}" || exit 1
		base=$(daemon_kb VmRSS)
		echo "  $shape $nv: running" >&2
		read -r fresh fresh_x fresh_c fresh_cpu < <(counted_run "$spec")
		hwm_fresh=$(daemon_kb VmHWM)
		bench_umount
		db_bytes=$(cat "$STATE"/solverfs.db "$STATE"/solverfs.db-wal 2>/dev/null | wc -c)
		bench_mount "${MOUNT_OPTS[@]}" || exit 1
		gc_settled
		base2=$(daemon_kb VmRSS)
		read -r cached cached_x cached_c cached_cpu < <(counted_run "$spec")
		hwm_cached=$(daemon_kb VmHWM)
		incr="" incr_x=""
		if [ "$shape" = lattice ]; then
			gen_lattice "$n" 1 >"$DATA/$shape-$n-incr.json"
			read -r incr incr_x _ incr_cpu < <(counted_run "$DATA/$shape-$n-incr.json")
		fi
		bench_umount
		sz=$(stat -c %s "$spec")
		echo "  $shape, $nv vertices (spec $((sz / 1024)) KiB): fresh ${fresh}s ($fresh_x executed), cached ${cached}s ($cached_c cached, $cached_x executed)${incr:+, incremental ${incr}s ($incr_x executed)}, peak RSS $((hwm_fresh / 1024)) / $((hwm_cached / 1024)) MiB (idle $((base / 1024)) MiB)"
		report $B "$shape $nv: fresh (s)" "$fresh"
		report $B "$shape $nv: fresh (us/vertex)" "$(per_vertex "$fresh" "$nv")" "<= 50"
		report $B "$shape $nv: fresh daemon CPU (us/vertex)" "$(per_vertex "$fresh_cpu" "$nv")"
		report $B "$shape $nv: fresh executed / cached" "$fresh_x / $fresh_c"
		report $B "$shape $nv: database after fresh (MiB)" "$(awk -v b="$db_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
		report $B "$shape $nv: cached (s)" "$cached"
		report $B "$shape $nv: cached (us/vertex)" "$(per_vertex "$cached" "$nv")" "<= 10"
		report $B "$shape $nv: cached daemon CPU (us/vertex)" "$(per_vertex "$cached_cpu" "$nv")"
		report $B "$shape $nv: cached executed / cached" "$cached_x / $cached_c"
		if [ -n "$incr" ]; then
			report $B "$shape $nv: incremental (s)" "$incr" "<= 5 at 100,000"
			report $B "$shape $nv: incremental executed" "$incr_x"
			report $B "$shape $nv: incremental daemon CPU (s)" "$incr_cpu"
		fi
		report $B "$shape $nv: peak RSS fresh (MiB)" "$((hwm_fresh / 1024))"
		report $B "$shape $nv: peak RSS fresh (KiB/vertex)" "$(kib_per_vertex "$hwm_fresh" "$base" "$nv")" "<= 1"
		report $B "$shape $nv: peak RSS cached (KiB/vertex)" "$(kib_per_vertex "$hwm_cached" "$base2" "$nv")"
	done
done
