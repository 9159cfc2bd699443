#!/bin/bash
# bench/profile.sh SHAPE N [PHASE] — a CPU profile of the daemon solving one spec of
# bench/solve-scale.sh's shapes (chain, wide, lattice, fanin): the spec is solved once
# on a fresh STATE_DIR, the daemon remounted, and PHASE (default "warm": the same spec
# again, all cached; "cold": the first run itself; "incremental", lattice only: the spec
# with root (0, 0)'s data changed, after the remount) runs under `perf record -g` attached
# to the daemon.  Prints the time of that run and the top of `perf report`; the data
# stays in $BENCH_PERF_DATA (default $TMPDIR/sfs-perf.data).  Build the binary with frame
# pointers for call graphs:
#   meson setup build-prof --buildtype=release -Dc_args=-fno-omit-frame-pointer
#   ninja -C build-prof && SOLVERFS=build-prof/fs/solverfs bench/profile.sh chain 10000
# Without perf (or where the kernel refuses it), BENCH_PROFILER=callgrind runs the
# daemon under valgrind --tool=callgrind instead.
. "$(dirname "$0")/lib.sh"

SHAPE=${1:?usage: profile.sh SHAPE N [warm|cold|incremental]}
N=${2:?usage: profile.sh SHAPE N [warm|cold|incremental]}
PHASE=${3:-warm}
LATTICE_W=${BENCH_LATTICE_W:-100}
OUT=${BENCH_PERF_DATA:-${TMPDIR:-/var/tmp}/sfs-perf.data}
MOUNT_OPTS=(-o spec_max=256M,max_vertices=1000000)
# shellcheck source=SCRIPTDIR/graphs.sh
. "$BENCH_DIR/graphs.sh"

spec=$DATA/$SHAPE-$N.json
"gen_$SHAPE" "$N" >"$spec" || exit 2
case $PHASE in
warm | cold) ;;
incremental)
	[ "$SHAPE" = lattice ] || { echo "profile.sh: incremental is a lattice phase" >&2; exit 2; }
	gen_lattice "$N" 1 >"$DATA/changed.json" || exit 2
	;;
*) echo "profile.sh: unknown phase $PHASE (warm, cold, incremental)" >&2; exit 2 ;;
esac

# profiled_run: the spec once, under the profiler attached to the daemon.
profiled_run() {
	local pid t0 t1 ppid
	pid=$(sfs_daemon_pid)
	perf record ${BENCH_PERF_ARGS:--g} -o "$OUT" -p "$pid" >/dev/null 2>&1 &
	ppid=$!
	sleep 1
	t0=$(now_ns)
	bench_run_spec "$spec" >/dev/null || { kill -INT "$ppid"; exit 1; }
	t1=$(now_ns)
	kill -INT "$ppid"
	wait "$ppid"
	awk -v d=$((t1 - t0)) -v n="$N" 'BEGIN { printf "  %s run: %.3f s, %.1f us a vertex\n", "'"$PHASE"'", d / 1e9, d / 1e3 / n }'
}

rm -rf "$STATE"
bench_mount "${MOUNT_OPTS[@]}" || exit 1
if [ "$PHASE" = cold ]; then
	profiled_run
else
	bench_run_spec "$spec" >/dev/null || exit 1
	bench_umount
	bench_mount "${MOUNT_OPTS[@]}" || exit 1
	[ "$PHASE" = incremental ] && spec=$DATA/changed.json
	profiled_run
fi
bench_umount
perf report -i "$OUT" --no-children --sort symbol -g none 2>/dev/null | grep -v '^#' | grep '%' | head -40
