#!/bin/bash
# bench/read-large.sh — (a) sequential read of a large result file through the mount,
# warm, against the same bytes read from a native file on the same disk, also warm.
#
# A `local` vertex over a dir holding one BENCH_READ_MB (default 1024) MiB file of random
# bytes makes the result.  Each file is read once to warm the page cache, then read
# BENCH_REPEAT (default 3) more times with cat; the median is reported.  Goal: the mount
# reads at >= 0.9x native.
. "$(dirname "$0")/lib.sh"

SIZE_MB=${BENCH_READ_MB:-1024}
REPEAT=${BENCH_REPEAT:-3}
B=read-large

echo "== read-large: sequential read of a ${SIZE_MB} MiB result file (warm)"
mkdir -p "$DATA/big"
head -c "${SIZE_MB}M" /dev/urandom >"$DATA/big/blob"

bench_mount || exit 1
t0=$(now_ns)
dir=$(bench_local_result "$DATA/big") || exit 1
t1=$(now_ns)
sfs_file=$dir/blob
native=$DATA/big/blob
cmp -s "$sfs_file" "$native" || { echo "bench: result file differs from its source" >&2; exit 1; }

# cat reads what a user's cp/cat reads (128 KiB requests); warm both, then time.
cat "$native" >/dev/null
cat "$sfs_file" >/dev/null
t_native=$(for _ in $(seq 1 "$REPEAT"); do time_ms cat "$native"; done | median)
t_sfs=$(for _ in $(seq 1 "$REPEAT"); do time_ms cat "$sfs_file"; done | median)
mbps() { awk -v mb="$SIZE_MB" -v ms="$1" 'BEGIN { printf "%.0f\n", mb / (ms / 1000) }'; }

report $B "ingest ${SIZE_MB} MiB (local job, ms)" "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", d / 1e6 }')"
report $B "native warm read (MiB/s)" "$(mbps "$t_native")"
report $B "solverfs warm read (MiB/s)" "$(mbps "$t_sfs")"
report $B "solverfs / native throughput" "$(ratio "$t_native" "$t_sfs")" ">= 0.90"
