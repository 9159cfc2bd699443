#!/bin/bash
# bench/warm-pairs.sh BIN_A BIN_B [ROUNDS] — the warm path of two builds, alternated:
# for each shape of BENCH_SOLVE_SHAPES (default "chain wide lattice") at
# BENCH_SOLVE_SIZES (default 10000) vertices, one STATE_DIR is solved once (by BIN_A),
# then ROUNDS (default 3) times each of BIN_A and BIN_B in turn mounts it and submits
# the same spec again (every vertex cached, as solve-scale.sh's "cached" row; the GC
# pass at mount is waited for first).  Prints the daemon's CPU time and the wall time
# of each warm run in µs a vertex.  Alternating on one state makes a pair's figures
# comparable on a loaded machine, where two solve-scale.sh runs minutes apart are not.
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/graphs.sh
. "$BENCH_DIR/graphs.sh"

A=$(realpath "${1:?usage: warm-pairs.sh BIN_A BIN_B [ROUNDS]}")
B=$(realpath "${2:?usage: warm-pairs.sh BIN_A BIN_B [ROUNDS]}")
ROUNDS=${3:-3}
SIZES=${BENCH_SOLVE_SIZES:-10000}
SHAPES=${BENCH_SOLVE_SHAPES:-chain wide lattice}
LATTICE_W=${BENCH_LATTICE_W:-100}
MOUNT_OPTS=(-o spec_max=256M,max_vertices=1000000)

# cpu_ns: the run time of the daemon's threads, in ns (schedstat: finer than the
# clock ticks of daemon_cpu_us; its threads live as long as the mount).
cpu_ns() {
	cat /proc/"$(sfs_daemon_pid)"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# warm_run BIN SPEC N: "cpu_us_a_vertex wall_us_a_vertex" of one warm run by BIN.
warm_run() {
	local u0 u1 t0 t1
	SOLVERFS=$1
	bench_mount "${MOUNT_OPTS[@]}" || exit 1
	gc_settled
	u0=$(cpu_ns)
	t0=$(now_ns)
	bench_run_spec "$2" >/dev/null || exit 1
	t1=$(now_ns)
	u1=$(cpu_ns)
	bench_umount
	awk -v c=$((u1 - u0)) -v w=$((t1 - t0)) -v n="$3" 'BEGIN { printf "%.1f %.1f\n", c / 1e3 / n, w / 1e3 / n }'
}

for shape in $SHAPES; do
	for n in $SIZES; do
		spec=$DATA/$shape-$n.json
		"gen_$shape" "$n" >"$spec"
		nv=$(grep -o '"op":' "$spec" | wc -l)
		rm -rf "$STATE"
		SOLVERFS=$A
		bench_mount "${MOUNT_OPTS[@]}" || exit 1
		bench_run_spec "$spec" >/dev/null || exit 1
		bench_umount
		for r in $(seq 1 "$ROUNDS"); do
			read -r ca wa < <(warm_run "$A" "$spec" "$nv")
			read -r cb wb < <(warm_run "$B" "$spec" "$nv")
			echo "  $shape $nv round $r: A cpu $ca wall $wa, B cpu $cb wall $wb (us a vertex)"
		done
	done
done
