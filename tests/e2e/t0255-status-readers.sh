#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='200 concurrent status readers: each gets the whole status, blocked reads are parked requests, not threads'
. "$(dirname "$0")/lib.sh"

READERS=200

# A job that runs until the test lets it go: an exec (on the host: sandbox=none) that
# waits for a file, then two file vertices after it.
cat >"$DATA/spec.json" <<JSON
{"vertices": {
  "gate": {"op": "exec", "args": ["sh", "-c", "while [ ! -e $DATA/go ]; do sleep 0.1; done; echo through"],
           "ignore_cache": true, "mounts": [{"dest": "out", "output": true}]},
  "f1": {"op": "file", "base": "gate", "actions": [{"mkfile": {"path": "a", "data": "1"}}]},
  "f2": {"op": "file", "base": "f1", "actions": [{"mkfile": {"path": "b", "data": "2"}}]}},
 "outputs": ["f2"]}
JSON

threads() {
	awk '$1 == "Threads:" { print $2 }' "/proc/$(sfs_daemon_pid)/status"
}

metric() {
	sfs_cat "$MNT/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# all_parked: every reader is blocked in the daemon.
all_parked() {
	[ "$(metric solverfs_parked_readers)" -ge "$READERS" ]
}

sfs_mount -o sandbox=none || say "# mount failed; every case below will fail"

# One case: the readers are children of the shell that waits for them.
test_expect_success "$READERS readers block with bounded threads, then all get the whole final status" '
	mkdir -p "$DATA/readers" &&
	n=$(sfs_submit "$DATA/spec.json") &&
	before=$(threads) &&
	pids="" &&
	for i in $(seq 1 $READERS); do
		timeout 120 cat "$MNT/jobs/$n/status" >"$DATA/readers/$i" 2>"$DATA/readers/$i.err" &
		pids="$pids $!"
	done &&
	sfs_until 30 all_parked &&
	during=$(threads) &&
	say "# daemon threads: $before before, $during with $READERS parked readers" &&
	test "$during" -le 100 &&
	expect_eq running "$(sfs_cat "$MNT/jobs/$n/state")" &&
	: >"$DATA/go" &&
	expect_eq done "$(sfs_wait "$n")" &&
	for p in $pids; do wait "$p" || { echo "a reader failed"; exit 1; }; done &&
	sfs_cat "$MNT/jobs/$n/status" >final &&
	grep -q "f2" final &&
	bad=0 &&
	for i in $(seq 1 $READERS); do
		cmp -s final "$DATA/readers/$i" || { bad=$((bad + 1)); say "# reader $i differs"; }
		test ! -s "$DATA/readers/$i.err" || { bad=$((bad + 1)); cat "$DATA/readers/$i.err"; }
	done &&
	expect_eq 0 "$bad" &&
	expect_eq 0 "$(metric solverfs_parked_readers)"
'

test_expect_success 'the threads that served them are bounded after the job too' '
	test "$(threads)" -le 100
'

test_done
