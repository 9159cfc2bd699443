#!/bin/bash
# bench/massif.sh [SHAPE [N]]: the daemon's heap under valgrind massif for a spec of
# bench/graphs.sh (default chain 10000): the spec runs once without valgrind, then the
# daemon is remounted under massif on the same state and the spec runs again (all
# cached, as solve-scale.sh's "cached" phase), or only under massif with BENCH_MASSIF_FRESH=1.
# Prints the heap peak (massif's mem_heap_B) and keeps the massif file for ms_print
# ($BENCH_MASSIF_OUT, default massif.SHAPE.N.out in the current directory).
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/graphs.sh
. "$BENCH_DIR/graphs.sh"

shape=${1:-chain}
n=${2:-10000}
out=${BENCH_MASSIF_OUT:-$PWD/massif.$shape.$n.out}
MOUNT_OPTS=(-o spec_max=256M,max_vertices=1000000)

run_spec() {
	local j
	cat "$DATA/spec.json" >"$MNT/jobs/new" || { echo "bench: spec rejected" >&2; exit 1; }
	j=$(basename "$(readlink "$MNT/jobs/latest")")
	[ "$(cat "$MNT/jobs/$j/wait")" = done ] || { echo "bench: job $j failed" >&2; exit 1; }
}

"gen_$shape" "$n" >"$DATA/spec.json"
phase=fresh
if [ -z "${BENCH_MASSIF_FRESH:-}" ]; then
	phase=cached
	bench_mount "${MOUNT_OPTS[@]}" || exit 1
	run_spec
	bench_umount
fi
real=$SOLVERFS
SOLVERFS=$SCRATCH/solverfs-massif
printf '#!/bin/sh\nexec valgrind --tool=massif --massif-out-file=%s %s "$@"\n' "$out" "$real" >"$SOLVERFS"
chmod +x "$SOLVERFS"
bench_mount "${MOUNT_OPTS[@]}" || exit 1
run_spec
bench_umount
echo "massif $shape $n $phase: heap peak $(sed -n 's/^mem_heap_B=//p' "$out" | sort -n | tail -1) B ($out)"
