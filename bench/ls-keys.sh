#!/bin/bash
# bench/ls-keys.sh — (c) `ls cache/keys` with BENCH_KEYS (default 100,000) keys in the
# cache.  sfs-bench-keys (bench/keys.c, built next to solverfs) saves the keys through
# the cache manager into a fresh STATE_DIR before the mount.  Reports the first listing
# and the median of BENCH_REPEAT (default 3) repeated ones.  Goal: under 1 s.
. "$(dirname "$0")/lib.sh"

NKEYS=${BENCH_KEYS:-100000}
REPEAT=${BENCH_REPEAT:-3}
FILL=${SFS_BENCH_KEYS:-$(dirname "$(dirname "$SOLVERFS")")/bench/sfs-bench-keys}
B=ls-keys

echo "== ls-keys: ls cache/keys with $NKEYS keys"
[ -x "$FILL" ] || { echo "bench: no $FILL (ninja -C build-bench bench/sfs-bench-keys)" >&2; exit 1; }
t0=$(now_ns)
"$FILL" "$STATE" "$NKEYS" || exit 1
t1=$(now_ns)
report $B "fill $NKEYS keys (s, not through the mount)" "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1e9 }')"

bench_mount || exit 1
if [ ! -d "$MNT/cache/keys" ]; then
	echo "  cache/keys does not exist in this build: nothing to measure"
	report $B "ls cache/keys (ms)" "n/a" "< 1000"
	exit 0
fi
t_first=$(time_ms ls "$MNT/cache/keys") || exit 1
got=$(ls "$MNT/cache/keys" | wc -l)
t_rep=$(for _ in $(seq 1 "$REPEAT"); do time_ms ls "$MNT/cache/keys"; done | median)
[ "$got" -ge "$NKEYS" ] || echo "  note: cache/keys lists $got entries, fewer than $NKEYS"
report $B "entries listed" "$got"
report $B "first ls cache/keys (ms)" "$t_first" "< 1000"
report $B "repeated ls cache/keys (ms)" "$t_rep" "< 1000"
