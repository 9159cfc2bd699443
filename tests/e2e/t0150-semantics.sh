#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='sharing between jobs, merging of equal content, a lost blob'
. "$(dirname "$0")/lib.sh"

MARK="sfs-sem-$$-$RANDOM"
RUNS="$DATA/runs"
mkdir -p "$DATA/d1" "$DATA/d2"
printf 'same content\n' >"$DATA/d1/f"
printf 'same content\n' >"$DATA/d2/f"

# An exec that counts its runs in a host file, then waits a little so a second
# job can arrive while it runs.  Writing the host is what the sandbox forbids,
# so this script mounts with sandbox=none: what it checks is how the solver
# shares and merges work, the same with or without the sandbox (t0035 covers it).
sfs_exec_spec slow slow "echo run >>$RUNS.shared; sleep 2; echo $MARK > out/v" >"$DATA/shared.json"
for d in d1 d2; do
	cat >"$DATA/merge-$d.json" <<JSON
{"vertices": {"src": {"op": "local", "path": "$DATA/$d"},
  "up": {"op": "exec", "name": "up",
         "args": ["sh", "-c", "echo run >>$RUNS.merge; sleep 2; tr a-z A-Z < in/f > out/f"],
         "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]}},
 "outputs": ["up"]}
JSON
done
sfs_exec_spec mk mk "echo run >>$RUNS.blob; printf 'blob %s\\\\n' $MARK > out/b" >"$DATA/blob.json"
# a blob bigger than the store's rows (64 KiB, cache/cas.h): a file under blobs/
sfs_exec_spec mk mk "echo run >>$RUNS.big; yes big-$MARK | head -c 100000 > out/b" >"$DATA/big.json"

# sql SQL: runs SQL on the mounted state's database (the daemon has it open: wait for
# its write lock rather than fail)
sql() {
	sqlite3 -cmd ".timeout 10000" "$STATE/solverfs.db" "$1"
}

# wait_lines FILE N: until FILE has N lines (10 s)
wait_lines() {
	for _ in $(seq 1 100); do
		[ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "$1 never reached $2 lines"
	return 1
}

# run_both SPEC1 SPEC2 RUNS: SPEC2 submitted while the job of SPEC1 runs (once its exec
# logged a run in RUNS); both end done, from that one run, with the same result.  Sets
# A and B to the job numbers.
run_both() {
	A=$(sfs_submit "$1") &&
	wait_lines "$3" 1 &&
	B=$(sfs_submit "$2") &&
	expect_eq "done" "$(sfs_wait "$A")" &&
	expect_eq "done" "$(sfs_wait "$B")" &&
	expect_eq 1 "$(wc -l <"$3")" &&
	expect_eq "$(sfs_cat "$MNT/jobs/$A/result")" "$(sfs_cat "$MNT/jobs/$B/result")"
}

# run_blob [SPEC]: a job of SPEC (blob.json); sets out to a copy of its file b and hex to
# the blob of it.
run_blob() {
	local n
	n=$(sfs_run "$DATA/${1:-blob}.json") &&
	cp "$(sfs_output "$n" mk)/b" "$DATA/out" && out=$DATA/out &&
	hex=$(sha256sum <"$out" | cut -d" " -f1)
}

# row_count HEX: 1 when blob HEX is a row of the blobs table, 0 when not
row_count() {
	sql "SELECT count(*) FROM blobs WHERE hex = '$1'"
}

sfs_mount -o sandbox=none || say "# mount failed; every case below will fail"

test_expect_success 'two running jobs with the same vertex share one execution' '
	run_both "$DATA/shared.json" "$DATA/shared.json" "$RUNS.shared"
'

test_expect_success 'while both run, the shared vertex lists both jobs' '
	rm -f "$RUNS.shared" &&
	sed "s/sleep 2/sleep 3/" "$DATA/shared.json" >"$DATA/shared3.json" &&
	A=$(sfs_submit "$DATA/shared3.json") &&
	wait_lines "$RUNS.shared" 1 &&
	B=$(sfs_submit "$DATA/shared3.json") &&
	hex=$(ls "$MNT/jobs/$A/vertices") &&
	expect_eq "$(printf "%s\n%s" "$A" "$B")" "$(sfs_cat "$MNT/vertices/$hex/jobs" | sort -n)" &&
	sfs_wait "$A" >/dev/null && sfs_wait "$B" >/dev/null
'

test_expect_success 'two local dirs with equal content merge: their users run once' '
	run_both "$DATA/merge-d1.json" "$DATA/merge-d2.json" "$RUNS.merge" &&
	expect_eq "SAME CONTENT" "$(cat "$(sfs_output "$B" up)/f")" &&
	expect_contains "merged" "$(sfs_cat "$MNT/jobs/$B/why")" &&
	echo "$B" >"$SCRATCH/merged-job"
'

# The merged source took the other's result and keys; it is saved under its own
# metadata key as well, so rebuilding it hits without reading its files.
test_expect_success 'a merged local source hits through its own metadata key next time' '
	B=$(cat "$SCRATCH/merged-job") &&
	C=$(sfs_run "$DATA/merge-d2.json") &&
	expect_eq CACHED "$(sfs_final "$C" up)" &&
	sfs_cat "$(sfs_vertex "$B" src)/keys" >merged-keys &&
	sfs_cat "$(sfs_vertex "$C" src)/keys" >rebuilt-keys &&
	test -s merged-keys && test -s rebuilt-keys &&
	expect_eq 1 "$(wc -l <rebuilt-keys)" &&
	key=$(cut -d" " -f2 rebuilt-keys) &&
	test -d "$MNT/cache/keys/${key#sha256:}" &&
	expect_not_contains "$key" "$(cat merged-keys)"
'

test_expect_success 'a small blob is a row of the database, not a file' '
	run_blob &&
	expect_eq 1 "$(row_count "$hex")" &&
	test ! -e "$STATE/blobs/sha256/$hex"
'

test_expect_success 'a deleted small blob (a row): the job still succeeds and the result is rebuilt' '
	run_blob &&
	runs=$(wc -l <"$RUNS.blob") &&
	sql "DELETE FROM blobs WHERE hex = '"'"'$hex'"'"'" &&
	expect_eq 0 "$(row_count "$hex")" &&
	M=$(sfs_run "$DATA/blob.json") &&
	expect_eq DONE "$(sfs_final "$M" mk)" &&
	expect_eq $((runs + 1)) "$(wc -l <"$RUNS.blob")" &&
	cmp "$out" "$(sfs_output "$M" mk)/b" &&
	expect_eq 1 "$(row_count "$hex")"
'

# A blob with the right size and the wrong bytes: the load checks small blobs'
# hashes, falls back to executing, and the execution writes the blob again.
test_expect_success 'a corrupt small blob (a row): the job still succeeds and the store is healed' '
	run_blob &&
	runs=$(wc -l <"$RUNS.blob") &&
	tr a-z A-Z <"$out" >"$DATA/upper" &&
	sql "UPDATE blobs SET data = readfile('"'"'$DATA/upper'"'"') WHERE hex = '"'"'$hex'"'"'" &&
	M=$(sfs_run "$DATA/blob.json") &&
	expect_eq DONE "$(sfs_final "$M" mk)" &&
	expect_eq $((runs + 1)) "$(wc -l <"$RUNS.blob")" &&
	expect_contains "corrupt" "$(sfs_cat "$MNT/jobs/$M/status")" &&
	sql "SELECT writefile('"'"'$DATA/healed'"'"', data) FROM blobs WHERE hex = '"'"'$hex'"'"'" &&
	cmp "$out" "$DATA/healed" &&
	K=$(sfs_run "$DATA/blob.json") &&
	expect_eq CACHED "$(sfs_final "$K" mk)"
'

test_expect_success 'a big blob is a file, not a row' '
	run_blob big &&
	expect_eq 100000 "$(stat -c %s "$out")" &&
	test -f "$STATE/blobs/sha256/$hex" &&
	expect_eq 0 "$(row_count "$hex")"
'

test_expect_success 'a deleted big blob (a file): the job still succeeds and the result is rebuilt' '
	run_blob big &&
	runs=$(wc -l <"$RUNS.big") &&
	chmod u+w "$STATE/blobs/sha256/$hex" && rm -f "$STATE/blobs/sha256/$hex" &&
	M=$(sfs_run "$DATA/big.json") &&
	expect_eq DONE "$(sfs_final "$M" mk)" &&
	expect_eq $((runs + 1)) "$(wc -l <"$RUNS.big")" &&
	cmp "$out" "$(sfs_output "$M" mk)/b" &&
	test -f "$STATE/blobs/sha256/$hex"
'

# Big blobs are not hashed at a load (too slow), but their sizes are checked.
test_expect_success 'a truncated big blob (a file): the job still succeeds and the store is healed' '
	run_blob big &&
	runs=$(wc -l <"$RUNS.big") &&
	chmod u+w "$STATE/blobs/sha256/$hex" && truncate -s 3 "$STATE/blobs/sha256/$hex" &&
	M=$(sfs_run "$DATA/big.json") &&
	expect_eq DONE "$(sfs_final "$M" mk)" &&
	expect_eq $((runs + 1)) "$(wc -l <"$RUNS.big")" &&
	expect_eq "$hex" "$(sha256sum <"$STATE/blobs/sha256/$hex" | cut -d" " -f1)" &&
	K=$(sfs_run "$DATA/big.json") &&
	expect_eq CACHED "$(sfs_final "$K" mk)"
'

test_done
