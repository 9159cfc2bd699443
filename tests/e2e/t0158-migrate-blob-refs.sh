#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='a STATE_DIR of schema 2 (blob_refs by result id and hex) migrates at mount: du, stats, prune say what they said before; a failed migration leaves the old schema'
. "$(dirname "$0")/lib.sh"

# Schema 2 (before issue 14's integer owners) had results(id TEXT PRIMARY KEY, ...) with an
# implicit rowid and blob_refs(owner TEXT = the result id, blob TEXT = the hex).  Such a
# state is made here from one of this version, as that version wrote it: the two tables
# rewritten, their indexes as they were, the version set back.
to_schema_2() {
	python3 - "$STATE" <<'PY'
import os, sqlite3, sys
db = sqlite3.connect(os.path.join(sys.argv[1], "solverfs.db"))
db.executescript("""
BEGIN;
CREATE TABLE results_old(id TEXT PRIMARY KEY, size INTEGER NOT NULL,
  created INTEGER NOT NULL, last_used INTEGER NOT NULL);
INSERT INTO results_old SELECT id, size, created, last_used FROM results ORDER BY num;
CREATE TABLE blob_refs_old(owner TEXT NOT NULL, blob TEXT NOT NULL,
  size INTEGER NOT NULL, PRIMARY KEY(owner, blob)) WITHOUT ROWID;
INSERT INTO blob_refs_old SELECT r.id, lower(hex(b.blob)), b.size FROM blob_refs b
  JOIN results r ON r.num = b.owner;
DROP TABLE blob_refs; DROP TABLE results;
ALTER TABLE results_old RENAME TO results; ALTER TABLE blob_refs_old RENAME TO blob_refs;
CREATE INDEX blob_refs_by_blob ON blob_refs(blob);
CREATE INDEX results_by_last_used ON results(last_used, id);
PRAGMA user_version = 2;
COMMIT;
""")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(db.execute("SELECT count(*) FROM blob_refs WHERE typeof(owner) = 'text'"
                 " AND length(blob) = 64").fetchone()[0])
db.close()
PY
}
q() { sqlite3 -cmd ".timeout 10000" "$STATE/solverfs.db" "$1"; }

# spec R: a local tree (a big file unique to R and a file common to every round), a file
# op, an exec over the big file and a merge: results that share blobs across rounds.
spec() {
	local r=$1
	mkdir -p "$DATA/src-$r"
	head -c 200000 /dev/zero | tr '\0' "$(printf '\\%03o' $((97 + r)))" >"$DATA/src-$r/big"
	echo "common to every round" >"$DATA/src-$r/common"
	cat >"$DATA/spec-$r.json" <<JSON
{"vertices": {
  "src": {"op": "local", "name": "source-$r", "path": "$DATA/src-$r"},
  "f": {"op": "file", "name": "made-$r", "actions": [{"mkfile": {"path": "made", "data": "made in round $r\\n"}}]},
  "e": {"op": "exec", "name": "count-$r",
        "args": ["sh", "-c", "wc -c <in/big >out/count; seq 1 $((30000 + r)) >out/seq"],
        "mounts": [{"dest": "in/big", "input": "src", "selector": "big"}, {"dest": "out", "output": true}]},
  "m": {"op": "merge", "name": "both-$r", "inputs": ["f", "e", "src"]}},
 "outputs": ["m"]}
JSON
	sfs_run "$DATA/spec-$r.json" >"$DATA/job-$r"
}
ctl_done() { ! grep -q '^running:' "$MNT/cache/ctl"; }
ctl() {
	echo "$*" >"$MNT/cache/ctl" || return 1
	sfs_until 120 ctl_done || { echo "still running: $(cat "$MNT/cache/ctl")"; return 1; }
	cat "$MNT/cache/ctl"
}
# figures FILE: what du, stats and a dry-run prune say (the parts a migration keeps)
figures() {
	{
		cat "$MNT/cache/du"
		grep -E '^(referenced_blobs|referenced_bytes|results|records|keys) ' "$MNT/cache/stats"
		ctl prune dry-run
		ctl prune dry-run filter=op=exec
		ctl prune dry-run keep-bytes=700000
	} >"$1"
}

sfs_mount -o sandbox=none || say "# mount failed; every case below will fail"

test_expect_success 'three rounds cached; their figures taken; the state rewritten as schema 2' '
	spec 1 && spec 2 && spec 3 &&
	sfs_umount && sfs_mount -o sandbox=none &&
	figures "$DATA/before" && cat "$DATA/before" &&
	grep -q "would free [1-9][0-9]* results" "$DATA/before" &&
	q "SELECT count(*) FROM blob_refs" >"$DATA/rows" && test "$(cat "$DATA/rows")" -gt 10 &&
	sfs_umount &&
	expect_eq "$(cat "$DATA/rows")" "$(to_schema_2)" &&
	expect_eq 2 "$(q "PRAGMA user_version")"
'

test_expect_success 'a migration that fails leaves the old schema whole: the mount fails' '
	q "CREATE TABLE results_v2(x)" &&
	test_must_fail sfs_mount -o sandbox=none &&
	grep -q "results_v2" "$LOG" &&
	expect_eq 2 "$(q "PRAGMA user_version")" &&
	expect_eq "$(cat "$DATA/rows")" "$(q "SELECT count(*) FROM blob_refs WHERE typeof(owner) = '"'"'text'"'"'")" &&
	q "DROP TABLE results_v2"
'

test_expect_success 'the next mount migrates: integer owners, 32-byte blobs, the old tables gone' '
	sfs_mount -o sandbox=none &&
	grep -q "blob references migrated to schema 3" "$LOG" &&
	sed -n "/blob references migrated/,\$p" "$LOG" >"$DATA/recovery" && cat "$DATA/recovery" &&
	! grep -q "mount: .* blob references rebuilt" "$DATA/recovery" &&
	expect_eq 3 "$(q "PRAGMA user_version")" &&
	expect_eq "$(cat "$DATA/rows")" "$(q "SELECT count(*) FROM blob_refs")" &&
	expect_eq 0 "$(q "SELECT count(*) FROM blob_refs WHERE typeof(owner) <> '"'"'integer'"'"' OR length(blob) <> 32")" &&
	expect_eq 0 "$(q "SELECT count(*) FROM blob_refs b WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.num = b.owner)")" &&
	expect_eq 0 "$(q "SELECT count(*) FROM sqlite_master WHERE name LIKE '"'"'%_v2'"'"'")"
'

test_expect_success 'du, stats and the dry-run prunes say what they said before' '
	figures "$DATA/after" &&
	diff "$DATA/before" "$DATA/after"
'

test_expect_success 'the cached results read; a new round adds rows with a larger owner' '
	for r in 1 2 3; do
		n=$(sfs_run "$DATA/spec-$r.json") &&
		expect_eq CACHED "$(sfs_final "$n" "both-$r")" &&
		expect_eq CACHED "$(sfs_final "$n" "count-$r")" &&
		expect_eq 200000 "$(cat "$(sfs_output "$n" m)/count")" || return 1
	done &&
	old=$(q "SELECT max(owner) FROM blob_refs") &&
	spec 4 &&
	test "$(q "SELECT max(owner) FROM blob_refs")" -gt "$old"
'

test_expect_success 'a full prune frees what its dry run says; what is left is pinned or nothing' '
	dry=$(ctl prune dry-run) && echo "$dry" &&
	real=$(ctl prune) && echo "$real" &&
	expect_eq "${dry#*would free}" "${real#*freed}" &&
	expect_eq 0 "$(q "SELECT count(*) FROM blob_refs")" &&
	expect_eq "referenced_bytes 0" "$(grep "^referenced_bytes " "$MNT/cache/stats")"
'

test_done
