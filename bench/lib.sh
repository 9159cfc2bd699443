# shellcheck shell=bash
# bench/lib.sh — shared helpers of the benchmarks: find the binary, mount solverfs on a
# scratch dir, time commands, submit specs, print figures.
#
# A benchmark prints figures and never asserts timings: it fails only when the mount or a
# job does not work.  Every script gets its own scratch dir ($BENCH_SCRATCH or a fresh
# mktemp under $TMPDIR); a trap on EXIT, INT and TERM unmounts whatever bench_mount
# mounted and signals only the daemon pid it started (tests/e2e/mount.sh, the harness
# the end-to-end tests mount with).  BENCH_KEEP=1 keeps the scratch dir.
#
# Figures are also appended to $BENCH_RESULTS (when set) as tab-separated lines
# "benchmark<TAB>metric<TAB>value<TAB>goal", which bench/run turns into its table.

set -u

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_SRC_ROOT=$(cd "$BENCH_DIR/.." && pwd)

if [ -z "${SOLVERFS:-}" ]; then
	SOLVERFS=$BENCH_SRC_ROOT/build-bench/fs/solverfs
fi
case $SOLVERFS in
*/*) SOLVERFS=$(realpath "$SOLVERFS") ;;
esac
if [ ! -x "$SOLVERFS" ]; then
	echo "bench: no solverfs binary at $SOLVERFS" >&2
	echo "bench: meson setup build-bench --buildtype=release && ninja -C build-bench" >&2
	exit 2
fi
export SOLVERFS

if [ -n "${BENCH_SCRATCH:-}" ]; then
	mkdir -p "$BENCH_SCRATCH"
	SCRATCH=$(cd "$BENCH_SCRATCH" && pwd)
else
	SCRATCH=$(mktemp -d "${TMPDIR:-/var/tmp}/sfs-bench.XXXXXX")
fi
MNT=$SCRATCH/mnt
DATA=$SCRATCH/data
mkdir -p "$MNT" "$DATA"
STATE=$SCRATCH/state
LOG=$SCRATCH/daemon.log
PIDFILE=$SCRATCH/daemon.pid
export LC_ALL=C

# The mount harness of the end-to-end tests (sfs_mount, sfs_umount, sfs_is_mounted):
# the same mount, unmount and "signal only our pid" code.  A big state can take a
# while to close, so the unmount waits 30 s.
SFS_MSG=bench:
SFS_UMOUNT_WAIT=30
# shellcheck source=SCRIPTDIR/../tests/e2e/mount.sh
. "$BENCH_SRC_ROOT/tests/e2e/mount.sh"
if no_fuse=$(sfs_fuse_missing); then
	echo "bench: this host cannot mount FUSE: $no_fuse" >&2
	exit 2
fi

# bench_mount [OPTION...]: mount $STATE on $MNT in the foreground daemon we start; on
# failure, show the end of its log.
bench_mount() {
	sfs_mount "$@" && return 0
	tail -n 5 "$LOG" >&2
	return 1
}

bench_umount() {
	sfs_umount
}

bench_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	sfs_umount
	sfs_remove_scratch "$SCRATCH" "${BENCH_KEEP:-}"
	exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bench_run_spec FILE [TIMEOUT]: submit FILE through jobs/new, wait for the job, print
# its number; fails (with the job's error) unless it ends done.
bench_run_spec() {
	local n st
	cat "$1" >"$MNT/jobs/new" || { echo "bench: spec rejected: $(cat "$MNT/jobs/latest/error" 2>/dev/null)" >&2; return 1; }
	n=$(basename "$(readlink "$MNT/jobs/latest")")
	st=$(timeout "${2:-3600}" cat "$MNT/jobs/$n/wait") || { echo "bench: job $n: wait failed" >&2; return 1; }
	if [ "$st" != done ]; then
		echo "bench: job $n ended $st: $(head -c 2000 "$MNT/jobs/$n/error" 2>/dev/null)" >&2
		return 1
	fi
	printf '%s\n' "$n"
}

# bench_result_dir N [REF]: the results/<hex> dir of job N's output REF (default: all).
bench_result_dir() {
	local hex
	hex=$(awk -v r="${2:-all}" '$1 == r { sub("^sha256:", "", $2); print $2 }' "$MNT/jobs/$1/result")
	[ -n "$hex" ] || { echo "bench: job $1 has no output ${2:-all}" >&2; return 1; }
	printf '%s\n' "$MNT/results/$hex"
}

# bench_local_result DIR: run a job of one local vertex over DIR (the spec in
# $DATA/local.json) and print the results/<hex> dir of its result.
bench_local_result() {
	local n
	printf '{"vertices":{"src":{"op":"local","path":"%s"}},"outputs":["src"]}\n' "$1" >"$DATA/local.json"
	n=$(bench_run_spec "$DATA/local.json") || return 1
	bench_result_dir "$n" src
}

# now_ns: wall clock in nanoseconds.
now_ns() {
	date +%s%N
}

# time_ms CMD...: run CMD (output discarded), print its wall time in ms (3 decimals).
time_ms() {
	local t0 t1
	t0=$(now_ns)
	"$@" >/dev/null || return 1
	t1=$(now_ns)
	awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f\n", d / 1e6 }'
}

# median: the median of the numbers on stdin.
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B: A / B with 2 decimals.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "n/a" }'
}

# report BENCH METRIC VALUE [GOAL]: print a figure, and record it for bench/run.
report() {
	printf '  %-44s %14s   %s\n' "$2" "$3" "${4:-}"
	if [ -n "${BENCH_RESULTS:-}" ]; then
		printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$BENCH_RESULTS"
	fi
}

# metric NAME: the value of a counter of the mount's metrics file.
metric() {
	awk -v m="$1" '$1 == m { print $2 }' "$MNT/metrics"
}

# gc_settled: wait (at most 120 s) for the GC pass a mount starts to finish: its
# measure, and over a target its scan of blob_refs and its deletions, would
# otherwise be counted as the next run's CPU time.
gc_settled() {
	local i
	for i in $(seq 1 1200); do
		[ "$(metric solverfs_gc_passes_total)" -ge 1 ] 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench: the GC pass at mount did not finish in 120 s" >&2
}

# daemon_kb FIELD: a field of our daemon's /proc status in kB (VmHWM, VmRSS).
daemon_kb() {
	awk -v f="$1:" '$1 == f { print $2 }' "/proc/$(sfs_daemon_pid)/status" 2>/dev/null || echo 0
}

# daemon_cpu_us: the CPU time (user + system, all threads) our daemon used so far, in
# microseconds: unlike wall time, it does not count what other work on the machine took.
daemon_cpu_us() {
	local tck
	tck=$(getconf CLK_TCK)
	# the fields after the command, whose name is in parentheses: utime is the 12th
	sed 's/.*) //' "/proc/$(sfs_daemon_pid)/stat" 2>/dev/null |
		awk -v t="$tck" '{ printf "%.0f\n", ($12 + $13) * 1e6 / t }' || echo 0
}
