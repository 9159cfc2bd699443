#!/bin/bash
# bench/blob-store.sh — what storing one blob of S bytes costs as a file with fdatasync,
# without, with one syncfs per group of 64, and as a SQLite row 64 to a transaction
# (bench/blob-store.c); the figures chose CAS_ROW_MAX (cache/cas.h, bench/README.md).
# Runs in a scratch dir under $TMPDIR (default /var/tmp: the disk, not tmpfs); no mount.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${BENCH_BLOB_BIN:-$here/../build-bench/bench/sfs-bench-blob-store}
if [ ! -x "$bin" ]; then
	echo "bench: no $bin: meson setup build-bench --buildtype=release && ninja -C build-bench" >&2
	exit 2
fi
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/sfs-blob-store.XXXXXX")
trap 'rm -rf "$dir"' EXIT
echo "blob-store: µs per blob (count ${BENCH_BLOB_COUNT:-200} a size), in $dir"
"$bin" "$dir" "${BENCH_BLOB_COUNT:-200}" | column -t
