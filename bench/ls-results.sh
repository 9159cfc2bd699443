#!/bin/bash
# bench/ls-results.sh — (b) `ls -l` of a result dir of BENCH_LS_FILES (default 10,000)
# files: the first listing after the job, the first after a remount (daemon caches cold,
# disk cache warm) and repeated listings (median of BENCH_REPEAT, default 5), against
# `ls -l` of the native source dir (warm: its dentries were just written, median of
# BENCH_REPEAT).  `ls -l DIR` stats every entry by its full path, so each stat also walks
# MNT/results/<hex>; the same listing run inside the dir (`cd DIR; ls -l`) is reported
# too, to separate the cost of those path walks from the listing itself.
# Goals: first <= 1.5x native, repeated <= 1.0x.
. "$(dirname "$0")/lib.sh"

NFILES=${BENCH_LS_FILES:-10000}
REPEAT=${BENCH_REPEAT:-5}
B=ls-results

echo "== ls-results: ls -l of a result dir of $NFILES files"
mkdir -p "$DATA/many"
(cd "$DATA/many" && for i in $(seq 1 "$NFILES"); do echo "file $i" >"f$i"; done)

bench_mount || exit 1
dir=$(bench_local_result "$DATA/many") || exit 1

t_first=$(time_ms ls -l "$dir")
got=$(ls "$dir" | wc -l)
[ "$got" -eq "$NFILES" ] || { echo "bench: the result lists $got entries, not $NFILES" >&2; exit 1; }
t_rep=$(for _ in $(seq 1 "$REPEAT"); do time_ms ls -l "$dir"; done | median)
t_inside=$(for _ in $(seq 1 "$REPEAT"); do (cd "$dir" && time_ms ls -l); done | median)
ls -l "$DATA/many" >/dev/null
t_native=$(for _ in $(seq 1 "$REPEAT"); do time_ms ls -l "$DATA/many"; done | median)

bench_umount
bench_mount || exit 1
t_remount=$(time_ms ls -l "$dir")

report $B "native ls -l (ms)" "$t_native"
report $B "solverfs first ls -l (ms)" "$t_first"
report $B "solverfs first ls -l after remount (ms)" "$t_remount"
report $B "solverfs repeated ls -l (ms)" "$t_rep"
report $B "repeated ls -l run inside the dir (ms)" "$t_inside"
report $B "first / native" "$(ratio "$t_first" "$t_native")" "<= 1.50"
report $B "first after remount / native" "$(ratio "$t_remount" "$t_native")" "<= 1.50"
report $B "repeated / native" "$(ratio "$t_rep" "$t_native")" "<= 1.00"
report $B "repeated inside the dir / native" "$(ratio "$t_inside" "$t_native")" "<= 1.00"
