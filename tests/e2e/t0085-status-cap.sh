#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='status_max: a job that prints far more than the limit keeps a capped status and status.json that say they were clipped'
. "$(dirname "$0")/lib.sh"

# 8 MB of output against log_max=1M (per vertex) and status_max=64K (per job text)
sfs_exec_spec loud loud "yes status-line-of-a-loud-build | head -c 8000000; echo last-words >&2" >"$DATA/loud.json"
sfs_file_spec q f q >"$DATA/quiet.json"
LIMIT=65536

sfs_mount -o log_max=1M,status_max=64K || say "# mount failed; every case below will fail"

test_expect_success 'solverfs --help lists status_max with its default' '
	"$SOLVERFS" --help >help.txt 2>&1 || true
	grep -E "status_max=SIZE .*default: 16M" help.txt
'

test_expect_success 'the loud job is done' '
	N=$(sfs_run "$DATA/loud.json") &&
	echo "$N" >"$SCRATCH/loud"
'

test_expect_success 'status stays within status_max and says it was clipped' '
	N=$(cat "$SCRATCH/loud") &&
	sfs_cat "$MNT/jobs/$N/status" >status &&
	size=$(wc -c <status) && echo "status: $size bytes" &&
	test "$size" -le $((LIMIT + 4096)) &&
	test "$size" -eq "$(stat -c %s "$MNT/jobs/$N/status")" &&
	grep -q "\[output clipped, status limit of 65536 bytes reached (status_max)\]" status &&
	test "$(grep -c "output clipped, status limit" status)" -eq 1 &&
	grep -Eq "^#[0-9]+ DONE [0-9.]+s\$" status
'

test_expect_success 'status.json stays within status_max, valid lines, one log says it was clipped' '
	N=$(cat "$SCRATCH/loud") &&
	sfs_cat "$MNT/jobs/$N/status.json" >status.json &&
	size=$(wc -c <status.json) && echo "status.json: $size bytes" &&
	test "$size" -le $((LIMIT + 4096)) &&
	json_check status.json &&
	python3 - status.json <<-\PY
	import base64, json, sys
	clipped = 0
	done = False
	for line in open(sys.argv[1]):
	    o = json.loads(line)
	    for l in o.get("logs", []):
	        if b"output clipped, status limit of 65536 bytes" in base64.b64decode(l["data"]):
	            clipped += 1
	    for v in o.get("vertexes", []):
	        done = done or ("completed" in v and "error" not in v)
	assert clipped == 1, clipped
	assert done
	PY
'

test_expect_success 'the vertex log keeps up to log_max, more than the status' '
	N=$(cat "$SCRATCH/loud") &&
	log=$(ls -d "$MNT/jobs/$N/vertices/"*/log | head -n 1) &&
	test "$(wc -c <"$log")" -gt $((LIMIT * 4))
'

test_expect_success 'the history row is capped too: status reads the same after a remount' '
	N=$(cat "$SCRATCH/loud") &&
	sfs_cat "$MNT/jobs/$N/status" >before &&
	sfs_remount -o log_max=1M,status_max=64K &&
	sfs_cat "$MNT/jobs/$N/status" >after &&
	cmp before after
'

test_expect_success 'a quiet job afterwards is not clipped' '
	N=$(sfs_run "$DATA/quiet.json") &&
	! grep -q "output clipped" "$MNT/jobs/$N/status"
'

test_expect_success 'a bad status_max is refused at mount' '
	test_must_fail "$SOLVERFS" -f -o status_max=lots "$STATE" "$SCRATCH/nowhere" 2>err.txt &&
	grep -q "status_max" err.txt
'

test_done
