#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='the whole cache: exported with cache/ctl into cache/exports/<hex>, imported
into a fresh STATE_DIR with cache/import, every spec then cached with the same result ids;
prune keeps only the newest export; a missing cache_from is a warning'
. "$(dirname "$0")/lib.sh"

mkdir -p "$DATA/src"
printf 'hello\n' >"$DATA/src/a.txt"
cat >"$DATA/s1.json" <<JSON
{"vertices": {"src": {"op": "local", "path": "$DATA/src"},
  "up": {"op": "exec", "args": ["sh", "-c", "tr a-z A-Z < in/a.txt > out/A.txt"],
         "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]},
  "pkg": {"op": "file", "base": "up", "actions": [{"mkfile": {"path": "V", "data": "1"}}]}},
 "outputs": ["pkg"]}
JSON
cat >"$DATA/s2.json" <<JSON
{"vertices": {"a": {"op": "file", "actions": [{"mkfile": {"path": "a", "data": "t0215"}}]},
  "b": {"op": "file", "base": "a", "actions": [{"mkdir": {"path": "d"}}]}},
 "outputs": ["b"]}
JSON
cat >"$DATA/s3.json" <<JSON
{"vertices": {"src": {"op": "local", "path": "$DATA/src"},
  "a": {"op": "file", "actions": [{"mkfile": {"path": "a", "data": "t0215"}}]},
  "b": {"op": "file", "base": "a", "actions": [{"mkdir": {"path": "d"}}]},
  "both": {"op": "merge", "inputs": ["b", "src"]},
  "sum": {"op": "exec", "args": ["sh", "-c", "ls in > out/list"],
          "mounts": [{"dest": "in", "input": "both"}, {"dest": "out", "output": true}]}},
 "outputs": ["sum", "both"]}
JSON
SPECS="s1 s2 s3"
# the vertices of each spec that are not sources: cached after the import
NONSRC_s1="up pkg"
NONSRC_s2="a b"
NONSRC_s3="a b both sum"

metric() {
	awk -v m="$1" '$1 == m { print $2 }' "$MNT/metrics"
}

# ctl CMD...: write a command to cache/ctl, wait until it has run, print the outcome.
ctl_done() { ! grep -q '^running:' "$MNT/cache/ctl"; }
ctl() {
	echo "$*" >"$MNT/cache/ctl" || return 1
	sfs_until 300 ctl_done || { echo "still running: $(cat "$MNT/cache/ctl")"; return 1; }
	cat "$MNT/cache/ctl"
}

# newest_export: the hex cache/export points at.
newest_export() {
	basename "$(readlink "$MNT/cache/export")"
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'several jobs build; their result lines are kept' '
	for s in $SPECS; do
		N=$(sfs_run "$DATA/$s.json") &&
		sfs_cat "$MNT/jobs/$N/result" >"$SCRATCH/want-$s" || exit 1
	done &&
	test -s "$SCRATCH/want-s3" &&
	test_must_fail test -e "$MNT/cache/export" &&
	expect_eq "" "$(ls "$MNT/cache/exports")"
'

test_expect_success 'export mode=max form=image writes cache/exports/<hex>, cache/export points at it' '
	out=$(ctl export mode=max form=image) &&
	hex=$(newest_export) &&
	expect_eq "ok: export mode=max form=image: exported cache/exports/$hex mode=max form=image" "$out" &&
	expect_eq "exports/$hex" "$(readlink "$MNT/cache/export")" &&
	expect_eq "$hex" "$(ls "$MNT/cache/exports")" &&
	test -f "$MNT/cache/export/index.json" &&
	test -f "$MNT/cache/exports/$hex/oci-layout" &&
	python3 - "$MNT/cache/export" <<-'PY' &&
	import hashlib, json, os, sys
	d = sys.argv[1]
	def blob(dg):
	    b = open(os.path.join(d, "blobs", "sha256", dg[7:]), "rb").read()
	    assert hashlib.sha256(b).hexdigest() == dg[7:], dg
	    return b
	(m,) = json.load(open(os.path.join(d, "index.json")))["manifests"]
	man = json.loads(blob(m["digest"]))
	assert man["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
	cfg = json.loads(blob(man["config"]["digest"]))
	for l in man["layers"]:
	    blob(l["digest"])
	with_result = [r for r in cfg["records"] if r.get("layers")]
	# up, pkg, b, both, sum: every record with inputs has its result (a, a file op
	# without a base, is a root: roots carry none, docs/export.md section 6)
	assert len(with_result) == 5, len(with_result)
	PY
	expect_eq "$hex" "$(basename "$(ls -d "$STATE"/exports/*/ | head -n 1)")" &&
	cp -rL "$MNT/cache/export" "$SCRATCH/whole" &&
	echo "$hex" >"$SCRATCH/hex1"
'

test_expect_success 'cache/stats counts the export' '
	sfs_cat "$MNT/cache/stats" >st &&
	expect_contains "exports 1" "$(cat st)" &&
	bytes=$(awk "\$1 == \"export_bytes\" { print \$2 }" st) &&
	du=$(du -sb "$STATE/exports/$(cat "$SCRATCH/hex1")" | cut -f1) &&
	expect_eq "$du" "$bytes"
'

# A fresh STATE_DIR: nothing in it but what cache/import brings.
sfs_umount
STATE=$SCRATCH/state2
sfs_mount || say "# the second mount failed; every case below will fail"

test_expect_success 'a fresh STATE_DIR imports it with cache/import: the outcome reads back' '
	test -s "$SCRATCH/hex1" &&
	expect_eq "" "$(ls "$MNT/cache/exports")" &&
	echo "$SCRATCH/whole" >"$MNT/cache/import" &&
	sfs_until 30 grep -q "^ok: " "$MNT/cache/import" &&
	expect_contains "ok: $SCRATCH/whole: " "$(sfs_cat "$MNT/cache/import")" &&
	expect_contains "records imported" "$(sfs_cat "$MNT/cache/import")"
'

test_expect_success 'every spec is then cached: nothing but sources executes, same result ids' '
	for s in $SPECS; do
		N=$(sfs_run "$DATA/$s.json") &&
		expect_file_eq "$(cat "$SCRATCH/want-$s")" "$MNT/jobs/$N/result" || exit 1
		eval "nonsrc=\$NONSRC_$s"
		for v in $nonsrc; do
			expect_eq CACHED "$(sfs_final "$N" "$v")" || exit 1
		done
	done &&
	# nothing executed since this mount (local reads are not executions); the
	# records loaded are the outputs pkg, b, both and sum, what they need is not needed
	expect_eq 0 "$(metric solverfs_vertices_executed_total)" &&
	expect_eq 0 "$(metric solverfs_cache_misses_total)" &&
	expect_eq 4 "$(metric solverfs_vertices_cached_total)"
'

test_expect_success 'cache/import refuses a bad path with EINVAL and says why' '
	test_must_fail sh -c "echo relative/path >\"$MNT/cache/import\"" &&
	expect_contains "not an absolute path" "$(sfs_cat "$MNT/cache/import")" &&
	test_must_fail sh -c "echo /nonexistent-t0215 >\"$MNT/cache/import\"" &&
	expect_contains "error: /nonexistent-t0215: not found" "$(sfs_cat "$MNT/cache/import")"
'

test_expect_success 'cache/import is the mount owner'"'"'s and root'"'"'s only' '
	if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
		test_must_fail setpriv --reuid=nobody --regid=nogroup --clear-groups \
			sh -c "echo $SCRATCH/whole >$MNT/cache/import"
	else
		expect_eq "$(id -u)" "$(stat -c %u "$MNT/cache/import")"
	fi
'

test_expect_success 'prune deletes an export that is no longer the newest' '
	expect_contains "ok: " "$(ctl export mode=max form=image)" &&
	first=$(newest_export) &&
	expect_contains "ok: " "$(ctl export mode=min form=manifest-list)" &&
	second=$(newest_export) &&
	test "$first" != "$second" &&
	expect_eq 2 "$(ls "$MNT/cache/exports" | wc -l)" &&
	expect_contains "; 1 older exports (" "$(ctl prune)" &&
	expect_eq "$second" "$(ls "$MNT/cache/exports")" &&
	expect_eq "$second" "$(newest_export)" &&
	test_must_fail test -e "$STATE/exports/$first" &&
	test -f "$MNT/cache/export/index.json"
'

test_expect_success 'export with a bad mode or form fails with EINVAL and the reason' '
	test_must_fail sh -c "echo export mode=huge >$MNT/cache/ctl" &&
	expect_contains "error: export mode=huge:" "$(cat "$MNT/cache/ctl")" &&
	test_must_fail sh -c "echo export form=tar >$MNT/cache/ctl" &&
	expect_contains "error: export form=tar:" "$(cat "$MNT/cache/ctl")"
'

test_expect_success 'a missing cache_from is a warning: the job builds and has no error' '
	sed "s|\"outputs\": \[\"b\"\]|\"outputs\": [\"b\"], \"cache_from\": [\"$SCRATCH/no-such-cache\"]|" \
		"$DATA/s2.json" >"$DATA/missing.json" &&
	grep -q no-such-cache "$DATA/missing.json" &&
	N=$(sfs_run "$DATA/missing.json") &&
	expect_contains "WARNING: local cache import at $SCRATCH/no-such-cache not found" \
		"$(sfs_cat "$MNT/jobs/$N/status")" &&
	expect_eq "" "$(sfs_cat "$MNT/jobs/$N/error")" &&
	sfs_cat "$MNT/jobs/$N/status" >st &&
	num=$(grep -m1 " importing $SCRATCH/no-such-cache" st | cut -d" " -f1) &&
	grep -q "^$num DONE " st &&
	test_must_fail grep -q ERROR st &&
	test -s "$MNT/jobs/$N/result"
'

test_expect_success 'a vertex-level missing cache_from too; an existing broken layout still fails' '
	cat >"$DATA/vmissing.json" <<-JSON &&
	{"vertices": {"v": {"op": "file", "cache_from": ["$SCRATCH/empty-dir"],
	  "actions": [{"mkfile": {"path": "v", "data": "t0215 v"}}]}}, "outputs": ["v"]}
	JSON
	mkdir -p "$SCRATCH/empty-dir" &&
	N=$(sfs_run "$DATA/vmissing.json") &&
	expect_contains "not found" "$(sfs_cat "$MNT/jobs/$N/status")" &&
	mkdir -p "$SCRATCH/broken" && echo "{not json" >"$SCRATCH/broken/index.json" &&
	sed "s|$SCRATCH/empty-dir|$SCRATCH/broken|" "$DATA/vmissing.json" >"$DATA/broken.json" &&
	N=$(sfs_submit "$DATA/broken.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "invalid JSON" "$(sfs_cat "$MNT/jobs/$N/error")"
'

test_done
