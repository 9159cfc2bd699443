#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='a STATE_DIR of the version before the blobs table mounts, its blob files read'
. "$(dirname "$0")/lib.sh"

# The store before issue 14 (commit 78129c3) kept every blob as a file under
# blobs/sha256/ and had no blobs table (schema version 1).  Such a state is made here from
# one of this version: every row of the blobs table is written out as the file the old
# version would have written (mode 0444), the table dropped and the version set back.
sfs_file_spec small f "small $$" >"$DATA/small.json"
sfs_exec_spec big big "yes big-$$ | head -c 100000 > out/b" >"$DATA/big.json"

to_old_format() {
	python3 - "$STATE" <<'PY'
import os, sqlite3, sys
state = sys.argv[1]
db = sqlite3.connect(os.path.join(state, "solverfs.db"))
n = 0
for hex, data in db.execute("SELECT hex, data FROM blobs"):
    p = os.path.join(state, "blobs", "sha256", hex)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, 0o444)
    n += 1
db.execute("DROP TABLE blobs")
db.execute("PRAGMA user_version = 1")
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
print(n)
PY
}

sfs_mount -o sandbox=none || say "# mount failed; every case below will fail"

test_expect_success 'a state with blobs as files only (the old format)' '
	S=$(sfs_run "$DATA/small.json") && B=$(sfs_run "$DATA/big.json") &&
	cp "$(sfs_output "$S" small)/f" "$DATA/small.out" &&
	cp "$(sfs_output "$B" big)/b" "$DATA/big.out" &&
	sfs_umount &&
	n=$(to_old_format) && test "$n" -gt 2 &&
	test "$(ls "$STATE/blobs/sha256" | wc -l)" -gt "$n"
'

test_expect_success 'mounts with this version: cached results read from the old blob files' '
	sfs_mount -o sandbox=none &&
	S=$(sfs_run "$DATA/small.json") && B=$(sfs_run "$DATA/big.json") &&
	expect_eq CACHED "$(sfs_final "$S" small)" &&
	expect_eq CACHED "$(sfs_final "$B" big)" &&
	cmp "$DATA/small.out" "$(sfs_output "$S" small)/f" &&
	cmp "$DATA/big.out" "$(sfs_output "$B" big)/b" &&
	hex=$(sha256sum <"$DATA/small.out" | cut -d" " -f1) &&
	test -f "$STATE/blobs/sha256/$hex"
'

test_expect_success 'new small blobs of the migrated state are rows' '
	sfs_file_spec more f "more $$" >"$DATA/more.json" &&
	M=$(sfs_run "$DATA/more.json") &&
	expect_eq DONE "$(sfs_final "$M" more)" &&
	hex=$(printf "more %s" "$$" | sha256sum | cut -d" " -f1) &&
	test ! -e "$STATE/blobs/sha256/$hex" &&
	expect_eq 1 "$(sqlite3 -cmd ".timeout 10000" "$STATE/solverfs.db" "SELECT count(*) FROM blobs WHERE hex = '"'"'$hex'"'"'")"
'

test_done
