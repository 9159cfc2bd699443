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

# run_blob: a job of blob.json; sets content to its file b and hex to the blob of it.
run_blob() {
	local n
	n=$(sfs_run "$DATA/blob.json") &&
	content=$(cat "$(sfs_output "$n" mk)/b") &&
	hex=$(printf "%s\n" "$content" | sha256sum | cut -d" " -f1)
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

test_expect_success 'a deleted blob: the job still succeeds and the result is rebuilt' '
	run_blob &&
	test -f "$STATE/blobs/sha256/$hex" &&
	chmod u+w "$STATE/blobs/sha256/$hex" && rm -f "$STATE/blobs/sha256/$hex" &&
	M=$(sfs_run "$DATA/blob.json") &&
	expect_eq DONE "$(sfs_final "$M" mk)" &&
	expect_eq 2 "$(wc -l <"$RUNS.blob")" &&
	expect_eq "$content" "$(cat "$(sfs_output "$M" mk)/b")" &&
	test -f "$STATE/blobs/sha256/$hex"
'

# A blob with the right size and the wrong bytes: the load checks small blobs'
# hashes, falls back to executing, and the execution writes the blob again.
test_expect_success 'a corrupt blob: the job still succeeds and the store is healed' '
	run_blob &&
	runs=$(wc -l <"$RUNS.blob") &&
	chmod u+w "$STATE/blobs/sha256/$hex" &&
	printf "%s\n" "$content" | tr a-z A-Z >"$STATE/blobs/sha256/$hex" &&
	M=$(sfs_run "$DATA/blob.json") &&
	expect_eq DONE "$(sfs_final "$M" mk)" &&
	expect_eq $((runs + 1)) "$(wc -l <"$RUNS.blob")" &&
	expect_contains "corrupt" "$(sfs_cat "$MNT/jobs/$M/status")" &&
	expect_eq "$hex" "$(sha256sum <"$STATE/blobs/sha256/$hex" | cut -d" " -f1)" &&
	K=$(sfs_run "$DATA/blob.json") &&
	expect_eq CACHED "$(sfs_final "$K" mk)"
'

test_done
