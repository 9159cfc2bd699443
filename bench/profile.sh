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
# profiled mount's daemon under valgrind --tool=callgrind instead, collecting only
# during the profiled run (repeatable instruction counts); the output stays in
# $BENCH_CALLGRIND_OUT (default $TMPDIR/sfs-callgrind.out) for callgrind_annotate.
. "$(dirname "$0")/lib.sh"

SHAPE=${1:?usage: profile.sh SHAPE N [warm|cold|incremental]}
N=${2:?usage: profile.sh SHAPE N [warm|cold|incremental]}
PHASE=${3:-warm}
LATTICE_W=${BENCH_LATTICE_W:-100}
OUT=${BENCH_PERF_DATA:-${TMPDIR:-/var/tmp}/sfs-perf.data}
PROFILER=${BENCH_PROFILER:-perf}
CG_OUT=${BENCH_CALLGRIND_OUT:-${TMPDIR:-/var/tmp}/sfs-callgrind.out}
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

# callgrind_run: the spec once, with callgrind's collection on (the daemon runs under
# callgrind_mount's valgrind).
callgrind_run() {
	local pid t0 t1
	pid=$(sfs_daemon_pid)
	callgrind_control -i on "$pid" >/dev/null || exit 1
	t0=$(now_ns)
	bench_run_spec "$spec" >/dev/null || exit 1
	t1=$(now_ns)
	callgrind_control -i off "$pid" >/dev/null
	awk -v d=$((t1 - t0)) -v n="$N" 'BEGIN { printf "  %s run (callgrind): %.3f s, %.1f us a vertex\n", "'"$PHASE"'", d / 1e9, d / 1e3 / n }'
}

# profiled_mount: mount, under valgrind when the profiler is callgrind (a wrapper
# script as bench/massif.sh does; its exec keeps the pid sfs_mount records).
profiled_mount() {
	local real=$SOLVERFS
	if [ "$PROFILER" = callgrind ]; then
		SOLVERFS=$SCRATCH/solverfs-callgrind
		printf '#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=%s %s "$@"\n' "$CG_OUT" "$real" >"$SOLVERFS"
		chmod +x "$SOLVERFS"
	fi
	bench_mount "${MOUNT_OPTS[@]}" || exit 1
	SOLVERFS=$real
}

# profiled_run: the spec once, under the profiler attached to the daemon.
profiled_run() {
	[ "$PROFILER" = callgrind ] && { callgrind_run; return; }
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
if [ "$PHASE" = cold ]; then
	profiled_mount
	profiled_run
else
	bench_mount "${MOUNT_OPTS[@]}" || exit 1
	bench_run_spec "$spec" >/dev/null || exit 1
	bench_umount
	profiled_mount
	[ "$PHASE" = incremental ] && spec=$DATA/changed.json
	profiled_run
fi
bench_umount
if [ "$PROFILER" = callgrind ]; then
	callgrind_annotate --inclusive=yes "$CG_OUT" 2>/dev/null | head -60
	exit 0
fi
perf report -i "$OUT" --no-children --sort symbol -g none 2>/dev/null | grep -v '^#' | grep '%' | head -40
