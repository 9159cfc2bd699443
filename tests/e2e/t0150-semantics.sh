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
cat >"$DATA/shared.json" <<JSON
{"vertices": {"slow": {"op": "exec", "name": "slow",
  "args": ["sh", "-c", "echo run >>$RUNS.shared; sleep 2; echo $MARK > out/v"],
  "mounts": [{"dest": "out", "output": true}]}},
 "outputs": ["slow"]}
JSON
for d in d1 d2; do
	cat >"$DATA/merge-$d.json" <<JSON
{"vertices": {"src": {"op": "local", "path": "$DATA/$d"},
  "up": {"op": "exec", "name": "up",
         "args": ["sh", "-c", "echo run >>$RUNS.merge; sleep 2; tr a-z A-Z < in/f > out/f"],
         "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]}},
 "outputs": ["up"]}
JSON
done
cat >"$DATA/blob.json" <<JSON
{"vertices": {"mk": {"op": "exec", "name": "mk",
  "args": ["sh", "-c", "echo run >>$RUNS.blob; printf 'blob %s\\\\n' $MARK > out/b"],
  "mounts": [{"dest": "out", "output": true}]}},
 "outputs": ["mk"]}
JSON

# wait_lines FILE N: until FILE has N lines (10 s)
wait_lines() {
	for _ in $(seq 1 100); do
		[ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "$1 never reached $2 lines"
	return 1
}

sfs_mount -o sandbox=none || say "# mount failed; every case below will fail"

test_expect_success 'two running jobs with the same vertex share one execution' '
	A=$(sfs_submit "$DATA/shared.json") &&
	wait_lines "$RUNS.shared" 1 &&
	B=$(sfs_submit "$DATA/shared.json") &&
	expect_eq done "$(sfs_wait "$A")" &&
	expect_eq done "$(sfs_wait "$B")" &&
	expect_eq 1 "$(wc -l <"$RUNS.shared")" &&
	expect_eq "$(sfs_cat "$MNT/jobs/$A/result")" "$(sfs_cat "$MNT/jobs/$B/result")"
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
	A=$(sfs_submit "$DATA/merge-d1.json") &&
	wait_lines "$RUNS.merge" 1 &&
	B=$(sfs_submit "$DATA/merge-d2.json") &&
	expect_eq done "$(sfs_wait "$A")" &&
	expect_eq done "$(sfs_wait "$B")" &&
	expect_eq 1 "$(wc -l <"$RUNS.merge")" &&
	expect_eq "$(sfs_cat "$MNT/jobs/$A/result")" "$(sfs_cat "$MNT/jobs/$B/result")" &&
	expect_eq "SAME CONTENT" "$(cat "$(sfs_output "$B" up)/f")" &&
	expect_contains "merged" "$(sfs_cat "$MNT/jobs/$B/why")" &&
	echo "$B" >"$SCRATCH/merged-job"
'

# vdir N NAME: the vertices/<hex> dir of vertex NAME in job N
vdir() {
	local d
	for d in "$MNT/jobs/$1/vertices"/*; do
		[ "$(cat "$d/name")" = "$2" ] && { printf '%s\n' "$d"; return 0; }
	done
	return 1
}

# The merged source took the other's result and keys; it is saved under its own
# metadata key as well, so rebuilding it hits without reading its files.
test_expect_success 'a merged local source hits through its own metadata key next time' '
	B=$(cat "$SCRATCH/merged-job") &&
	C=$(sfs_run "$DATA/merge-d2.json") &&
	expect_eq CACHED "$(sfs_final "$C" up)" &&
	sfs_cat "$(vdir "$B" src)/keys" >merged-keys &&
	sfs_cat "$(vdir "$C" src)/keys" >rebuilt-keys &&
	test -s merged-keys && test -s rebuilt-keys &&
	expect_eq 1 "$(wc -l <rebuilt-keys)" &&
	key=$(cut -d" " -f2 rebuilt-keys) &&
	test -d "$MNT/cache/keys/${key#sha256:}" &&
	expect_not_contains "$key" "$(cat merged-keys)"
'

test_expect_success 'a deleted blob: the job still succeeds and the result is rebuilt' '
	N=$(sfs_run "$DATA/blob.json") &&
	out=$(sfs_output "$N" mk) &&
	content=$(cat "$out/b") &&
	hex=$(printf "%s\n" "$content" | sha256sum | cut -d" " -f1) &&
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
	N=$(sfs_run "$DATA/blob.json") &&
	out=$(sfs_output "$N" mk) &&
	content=$(cat "$out/b") &&
	hex=$(printf "%s\n" "$content" | sha256sum | cut -d" " -f1) &&
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
