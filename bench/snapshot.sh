#!/bin/bash
# bench/snapshot.sh — the cost of a `local` snapshot against reading the same files.
#
# A tree of BENCH_SNAP_FILES (default 10,000) files of random data, BENCH_SNAP_MB
# (default 1024) MiB in all, 100 to a directory, is
#   (1) hashed with `sha256sum` (warm page cache: read once before): the floor;
#   (2) snapshotted by a job of one `local` vertex on a fresh STATE_DIR (cold);
#   (3) snapshotted again, untouched, by a new job (the metadata digest, map 0, hits);
#   (4) snapshotted after one file's content changed (map 0 misses: the tree is
#       ingested again, but the daemon's stat cache, cache/statcache.h, remembers
#       the files whose inode, size, mtime and ctime are unchanged: only one is read);
#   (5) snapshotted again, untouched, after a remount (map 0 with a cold daemon);
#   (6) snapshotted after another file changed, after a remount: the stat cache's
#       rows (kept in the database) still spare the unchanged files.
# Goals (issue 14): (2) ≤ 1.2 × (1); (3) to (6) ≤ 5 % of (1).
. "$(dirname "$0")/lib.sh"

FILES=${BENCH_SNAP_FILES:-10000}
MB=${BENCH_SNAP_MB:-1024}
B=snapshot
TREE=$DATA/tree

make_tree() {
	local kb=$((MB * 1024 / FILES)) d
	[ "$kb" -ge 1 ] || kb=1
	python3 - "$TREE" "$FILES" "$kb" <<'PY'
import os, sys
root, n, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(kb * 1024))
PY
}

# snap_ms: wall time of one local job over $TREE, in ms.
snap_ms() {
	time_ms bench_local_result "$TREE"
}

echo "== snapshot: local of $FILES files, $MB MiB, against sha256sum"
make_tree
(cd "$TREE" && find . -type f -print0 | xargs -0 cat >/dev/null)
hash_ms=$(time_ms sh -c "cd '$TREE' && find . -type f -print0 | sort -z | xargs -0 sha256sum")
# The stat cache trusts a file only when its ctime is 2 s older than its read.
sleep 3
bench_mount || exit 1
cold=$(snap_ms) || exit 1
again=$(snap_ms) || exit 1
head -c 4096 /dev/urandom >"$TREE/d000/f00000"
sleep 3 # old enough to be remembered by this snapshot (for (6))
one=$(snap_ms) || exit 1
bench_umount
bench_mount || exit 1
remount=$(snap_ms) || exit 1
bench_umount
head -c 4096 /dev/urandom >"$TREE/d001/f00100"
sleep 3
bench_mount || exit 1
one_remount=$(snap_ms) || exit 1
reused=$(awk '$1 == "solverfs_snapshot_files_reused_total" { print $2 }' "$MNT/metrics")
bench_umount
report $B "sha256sum of the tree (ms)" "$hash_ms"
report $B "local, cold (ms)" "$cold"
report $B "local, cold / sha256sum" "$(ratio "$cold" "$hash_ms")" "<= 1.2"
report $B "local, untouched, same daemon (ms)" "$again"
report $B "local, untouched, after remount (ms)" "$remount"
report $B "untouched after remount / sha256sum" "$(ratio "$remount" "$hash_ms")" "<= 0.05"
report $B "local, one file changed (ms)" "$one"
report $B "one file changed / sha256sum" "$(ratio "$one" "$hash_ms")"
report $B "local, one file changed, after remount (ms)" "$one_remount"
report $B "one changed after remount / sha256sum" "$(ratio "$one_remount" "$hash_ms")" "<= 0.05"
report $B "files reused (not read) after remount" "$reused" "$((FILES - 1))"
