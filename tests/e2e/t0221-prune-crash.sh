#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='kill -9 during a large prune, at random moments: the next mount finishes it, every key names a loadable record, every kept result reads, no orphan blob is left'
. "$(dirname "$0")/lib.sh"

N=2000 # file vertices, each a result of its own, and one merge of them all
ROUNDS=5

# The spec: N file vertices, vertex i making f-i holding "data i", and their merge, all
# outputs: a run after a prune makes every pruned result again.
{
	printf '{"vertices": {\n'
	for i in $(seq 1 "$N"); do
		printf '  "v%d": {"op": "file", "actions": [{"mkfile": {"path": "f-%d", "data": "data %d\\n"}}]},\n' \
			"$i" "$i" "$i"
	done
	printf '  "all": {"op": "merge", "inputs": ['
	seq -f '"v%g"' 1 "$N" | paste -sd, | tr -d '\n'
	printf ']}},\n "outputs": ["all", '
	seq -f '"v%g"' 1 "$N" | paste -sd, | tr -d '\n'
	printf ']}\n'
} >"$DATA/many.json"

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$MNT/cache/stats"; }

# integrity: the checks of the description, through the mount
integrity() {
	local results records
	results=$(ls "$MNT/cache/results") &&
	# every record a key names is a record of a result that is there
	cat "$MNT"/cache/keys/*/results 2>/dev/null | awk '{ print $1, $2 }' | sort -u >"$SCRATCH/named" &&
	for h in $results; do
		sed "s/\$/ sha256:$h/" "$MNT/cache/results/$h/records"
	done | sort -u >"$SCRATCH/records" &&
	comm -23 "$SCRATCH/named" "$SCRATCH/records" >"$SCRATCH/dangling" &&
	{ [ ! -s "$SCRATCH/dangling" ] || { echo "records named but not there:"; head "$SCRATCH/dangling"; return 1; }; } &&
	# every kept result reads back what its vertex wrote
	for h in $results; do
		find "$MNT/results/$h/" -type f
	done >"$SCRATCH/files" &&
	xargs -d "\n" -r grep -H . <"$SCRATCH/files" |
		awk -F: '{ n = $1; sub(/.*\/f-/, "", n); if ($2 != "data " n) { print "bad: " $0; bad = 1 } } END { exit bad }' &&
	# no orphan: the store holds exactly the blobs the results reference
	echo "blobs $(stat_of blobs) referenced $(stat_of referenced_blobs)" &&
	expect_eq "$(stat_of referenced_blobs)" "$(stat_of blobs)" &&
	expect_eq "$(stat_of referenced_bytes)" "$(stat_of blob_bytes)" &&
	grep -c . <<<"$results" || true
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success "a job of $N results and their merge is cached" '
	SFS_WAIT_TIMEOUT=600 sfs_run "$DATA/many.json" >/dev/null &&
	test "$(ls "$MNT/cache/results" | wc -l)" -gt "$N" &&
	integrity
'

# crash_round R DELAY: rebuild what the last round pruned, start a full prune, kill -9
# the daemon DELAY seconds in, and mount again.  Here, not in a case's subshell, so
# each daemon is this script's child.
crash_round() {
	local pid
	SFS_WAIT_TIMEOUT=600 sfs_run "$DATA/many.json" >/dev/null || echo "rebuild failed" >"$SCRATCH/round-$1"
	ls "$MNT/cache/results" | wc -l >"$SCRATCH/before-$1"
	echo prune >"$MNT/cache/ctl" || echo "prune refused" >>"$SCRATCH/round-$1"
	sleep "$2"
	grep -q "^ok: prune: freed" "$MNT/cache/ctl" && echo "the prune had ended" >>"$SCRATCH/round-$1.note"
	pid=$(sfs_daemon_pid)
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	fusermount3 -uz "$MNT"
	rm -f "$PIDFILE"
	sfs_mount || echo "remount failed" >>"$SCRATCH/round-$1"
}

for round in $(seq 1 "$ROUNDS"); do
	# a random moment within the prune's first 0.6 s (it takes about that long here)
	delay=$(printf '0.%03d' $((RANDOM % 600)))
	crash_round "$round" "$delay"
	test_expect_success "round $round: kill -9 ${delay}s into a full prune, remount, all is whole" '
		{ [ ! -s "$SCRATCH/round-'"$round"'" ] || { cat "$SCRATCH/round-'"$round"'"; false; }; } &&
		{ cat "$SCRATCH/round-'"$round"'.note" 2>/dev/null || true; } &&
		integrity >"$SCRATCH/after" 2>&1 || { cat "$SCRATCH/after"; false; } &&
		cat "$SCRATCH/after" && left=$(tail -n 1 "$SCRATCH/after") &&
		echo "results: $(cat "$SCRATCH/before-'"$round"'") before the prune, $left after the kill" &&
		test "$left" -le "$(cat "$SCRATCH/before-'"$round"'")"
	'
done

test_expect_success 'after the rounds a prune still runs to its end and empties the cache' '
	echo prune >"$MNT/cache/ctl" &&
	sfs_until 300 sh -c "! grep -q ^running: \"$MNT/cache/ctl\"" &&
	cat "$MNT/cache/ctl" &&
	expect_contains "ok: prune: freed" "$(cat "$MNT/cache/ctl")" &&
	expect_eq 0 "$(ls "$MNT/cache/results" | wc -l)" &&
	expect_eq 0 "$(stat_of blobs)"
'

test_done
