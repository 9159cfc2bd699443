#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
# tests/crash-rounds.sh — crash safety: ROUNDS times (default 50), mount, submit jobs that
# write many small and some large files through exec, file and merge ops, kill -9 the
# daemon at a random moment, lazily unmount, remount the same STATE_DIR and check that
# nothing reported done was lost (docs: README.md "Reliability").
#
#   ROUNDS=50 tests/crash-rounds.sh          # by hand; SOLVERFS=build-x/fs/solverfs to pick a build
#   tests/e2e/t0200-crash.sh                 # the suite's short version (10 rounds of 2 jobs), same code
#
# JOBS_PER_ROUND (3) and SMALL_FILES (200) size a round.
#
# Each round is three cases (submit and kill; the state on disk after the kill; the
# remount), and after the last round the script prints how many rounds passed.
#
# What a round checks after the kill:
#   - PRAGMA integrity_check is ok (sqlite3 CLI);
#   - every record, result row, done job's result and layer names a manifest blob that
#     is there, and every file and link blob of that tree is there with its size and
#     its sha256 (each blob hashed once over all rounds);
# and after the remount:
#   - STATE_DIR/tmp/ is empty, and no process of an interrupted exec still runs (each
#     round has a job whose exec sleeps until the kill);
#   - every job seen done before the kill is done, with the same result ids, and each
#     file of its results reads back through the mount with the hash recorded then;
#   - every other job of the round is done or cancelled with "solverfs was restarted",
#     and a job left pending without a spec is gone;
#   - STATE_DIR/exports/ holds only whole exports of done jobs (no half-written one);
#   - the interrupted specs solve again (done).
#
# The kill moment varies from round to round: a random sleep after the submissions,
# right after the first job is done, or once a job's status has N lines.

if [ -z "${SFS_E2E_DIR:-}" ]; then
	. "$(dirname "${BASH_SOURCE[0]}")/e2e/lib.sh"
fi

ROUNDS=${ROUNDS:-50}
JOBS_PER_ROUND=${JOBS_PER_ROUND:-3}
SMALL_FILES=${SMALL_FILES:-200}
CR=$SCRATCH/crash # per-round records
mkdir -p "$CR"
DB=$STATE/solverfs.db
MARK="sfs-crash-$$-$RANDOM"
export ROUNDS JOBS_PER_ROUND SMALL_FILES CR DB MARK

# crash_spec ROUND JOB: a spec that does new work every round.
#   small: an exec writing SMALL_FILES (200) small files; large: an exec writing 2 files of 0.25-1.25 MiB;
#   meta: a file op; all: a merge of the three; sum: an exec reading the merge, then
#   sleeping (the salt in every exec's args lets pgrep find what survived a kill); the
#   job ends with a cache export (mode max).
crash_spec() {
	local salt="$MARK-$1-$2" big=$((256 + (RANDOM % 1024))) nap="0.$((RANDOM % 8))"
	cat <<JSON
{
  "vertices": {
    "small": {"op": "exec", "name": "small-$salt",
              "args": ["sh", "-c", "i=0; while [ \$i -lt $SMALL_FILES ]; do i=\$((i+1)); echo $salt \$i > out/s\$i.txt; done; mkdir out/d; echo x > out/d/leaf"],
              "mounts": [{"dest": "out", "output": true}]},
    "large": {"op": "exec", "name": "large-$salt",
              "args": ["sh", "-c", "for n in 1 2; do head -c \$(($big * 1024 + n)) /dev/urandom > out/big\$n; done; echo $salt > out/id"],
              "mounts": [{"dest": "out", "output": true}]},
    "meta": {"op": "file", "name": "meta-$salt",
             "actions": [{"mkdir": {"path": "etc"}},
                         {"mkfile": {"path": "etc/salt", "data": "$salt\\n"}},
                         {"mkfile": {"path": "etc/run", "data": "#!/bin/sh\\necho $salt\\n", "mode": "0755"}},
                         {"symlink": {"target": "etc/salt", "path": "SALT"}}]},
    "all": {"op": "merge", "name": "all-$salt", "inputs": ["small", "large", "meta"]},
    "sum": {"op": "exec", "name": "sum-$salt",
            "args": ["sh", "-c", "cd in && find . -type f | sort | xargs cat | wc -c > ../out/bytes; sleep $nap; : $salt"],
            "mounts": [{"dest": "in", "input": "all"}, {"dest": "out", "output": true}]}
  },
  "outputs": ["all", "sum"],
  "export": {"mode": "max"}
}
JSON
}

# tree_hashes DIR: one line per entry of DIR: the sha256 of a file, the target of a link
# or "dir", then its path.
tree_hashes() {
	(
		set -o pipefail
		cd "$1" && {
			find . -mindepth 1 -type f -print0 | xargs -0 -r sha256sum &&
				find . -mindepth 1 -type l -printf 'link %l  %p\n' &&
				find . -mindepth 1 -type d -printf 'dir  %p\n'
		} | LC_ALL=C sort
	)
}

# hang_spec ROUND: an exec that runs until it is killed.
hang_spec() {
	cat <<JSON
{"vertices": {"hang": {"op": "exec", "name": "hang-$MARK-$1",
   "args": ["sh", "-c", "sleep $(hang_sleep "$1"); : $MARK-$1-hang"],
   "mounts": [{"dest": "out", "output": true}]}},
 "outputs": ["hang"]}
JSON
}

# hang_sleep ROUND: the unique argument of that exec's sleep.
hang_sleep() {
	echo "1000.$1$$"
}

# record_done N: when job N ends done, write what it was into $CR/done/N (result and the
# hash of every file of every result), atomically: a job with a record was done before
# the kill.
record_done() {
	local n=$1 st res
	st=$(cat "$MNT/jobs/$n/wait" 2>/dev/null) || return 0
	[ "$st" = done ] || return 0
	res=$(cat "$MNT/jobs/$n/result") || return 0
	{
		printf '%s\n' "$res"
		printf '%s\n' "$res" | while read -r _ id; do
			echo "== $id"
			tree_hashes "$MNT/results/${id#sha256:}" || exit 1
		done
	} >"$CR/done/$n.tmp" 2>/dev/null && mv "$CR/done/$n.tmp" "$CR/done/$n"
}

# kill_moment ROUND: waits for this round's moment to kill.
kill_moment() {
	local first
	first=$(head -n 1 "$CR/round-jobs")
	case $(($1 % 3)) in
	0) # a random sleep: 0 to 0.9 s after the submissions
		sleep "0.$((RANDOM % 10))" ;;
	1) # once the first job is done and recorded (or ended otherwise), plus 0-0.4 s
		timeout 60 cat "$MNT/jobs/$first/wait" >/dev/null 2>&1 || true
		for _ in $(seq 1 300); do
			[ -e "$CR/done/$first" ] && break
			[ "$(cat "$MNT/jobs/$first/state" 2>/dev/null)" = done ] || break
			sleep 0.05
		done
		sleep "0.$((RANDOM % 5))" ;;
	2) # once the first job's status has N lines (2-12)
		python3 - "$MNT/jobs/$first/status" "$((2 + RANDOM % 11))" <<'EOF' || true
import os, sys, time
path, want = sys.argv[1], int(sys.argv[2])
data, deadline = b"", time.monotonic() + 60
fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
while data.count(b"\n") < want and time.monotonic() < deadline:
    try:
        chunk = os.read(fd, 65536)
        if not chunk:
            break  # the job ended: EOF
        data += chunk
    except BlockingIOError:
        time.sleep(0.02)
EOF
		;;
	esac
}

# crash_submit_and_kill ROUND: the body of a round's first case.
crash_submit_and_kill() {
	local k=$1 n pid
	mkdir -p "$CR/done" "$CR/specs"
	: >"$CR/round-jobs"
	for i in $(seq 1 "$JOBS_PER_ROUND"); do
		crash_spec "$k" "$i" >"$CR/specs/$k-$i.json"
		n=$(sfs_submit "$CR/specs/$k-$i.json")
		echo "$n" >>"$CR/round-jobs"
		cp "$CR/specs/$k-$i.json" "$CR/specs/job-$n.json"
		record_done "$n" &
	done
	# a job that never gets a spec: gone after the restart
	sfs_new >"$CR/round-pending"
	# a job whose processes run until the kill, and must not outlive it
	hang_spec "$k" >"$CR/specs/hang-$k.json"
	sfs_submit "$CR/specs/hang-$k.json" >"$CR/round-hang"
	for _ in $(seq 1 100); do
		pgrep -f "sleep $(hang_sleep "$k")" >/dev/null && break
		sleep 0.1
	done
	kill_moment "$k"
	pid=$(cat "$PIDFILE")
	kill -9 "$pid"
	echo "killed pid $pid; jobs $(tr '\n' ' ' <"$CR/round-jobs")"
	fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"
	wait # the recorders: their reads fail with ENOTCONN now
	rm -f "$CR"/done/*.tmp
	echo "recorded done before the kill: $(cd "$CR/done" && ls | tr '\n' ' ')"
}

# The store after a crash: every tree a record, a result row, a done job or a layer names
# is there in full, as a row of the blobs table (small blobs) or a file (big ones).  Blobs already hashed in an earlier round are listed in $CR/hashed.
crash_check_store() {
	local ok
	ok=$(sqlite3 "$DB" 'PRAGMA integrity_check')
	expect_eq ok "$ok"
	{
		sqlite3 "$DB" "SELECT 'tree', result FROM records UNION SELECT 'tree', id FROM results"
		sqlite3 "$DB" "SELECT 'jobresult', replace(result, char(10), ' ') FROM jobs WHERE state = 'done'"
		sqlite3 "$DB" "SELECT 'blob', blob FROM layers"
	} >"$CR/refs"
	touch "$CR/hashed"
	python3 - "$STATE/blobs/sha256" "$CR/refs" "$CR/hashed" "$DB" <<'EOF'
import hashlib, os, sqlite3, sys
blobs, refs, hashed_path, db = sys.argv[1:5]
hashed = set(open(hashed_path).read().split())
bad = []
rows = sqlite3.connect("file:%s?mode=ro" % db, uri=True)

def read(hex):
    row = rows.execute("SELECT data FROM blobs WHERE hex = ?", (hex,)).fetchone()
    if row is not None:
        return bytes(row[0])
    try:
        with open(os.path.join(blobs, hex), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None

def blob(hex, size, what):
    data = read(hex)
    if data is None:
        bad.append("%s: blob %s is missing" % (what, hex)); return None
    if size is not None and len(data) != size:
        bad.append("%s: blob %s has %d bytes, not %d" % (what, hex, len(data), size)); return None
    if hex not in hashed:
        if hashlib.sha256(data).hexdigest() != hex:
            bad.append("%s: blob %s holds other bytes" % (what, hex)); return None
        hashed.add(hex)
    return data

trees = set()
for line in open(refs):
    kind, _, val = line.rstrip("\n").partition("|")
    if kind == "blob":
        blob(val.removeprefix("sha256:"), None, "layer")
    elif kind == "tree":
        trees.add(val)
    elif kind == "jobresult":
        trees.update(w for w in val.split() if w.startswith("sha256:"))
for t in sorted(trees):
    hex = t.removeprefix("sha256:")
    m = blob(hex, None, "tree " + t)
    if m is None:
        continue
    f = m.split(b"\0")
    for i in range(0, len(f) - 4, 5):
        typ, mode, size, h, path = f[i:i + 5]
        if typ in (b"f", b"l"):
            blob(h.decode(), int(size), "tree %s, %s" % (hex[:12], path.decode(errors="replace")))
open(hashed_path, "w").write("\n".join(sorted(hashed)) + "\n")
if bad:
    print("\n".join(bad[:20]))
    sys.exit(1)
print("%d trees checked" % len(trees))
EOF
}

# crash_check_exports: STATE_DIR/exports holds no half-written export, only exports of
# done jobs, and every done job of the round has its export whole: each digest that
# descriptor of index.json and of the JSON blobs it leads to names a blob that hashes to it.
crash_check_exports() {
	local n
	while read -r n; do
		[ "$(sfs_cat "$MNT/jobs/$n/state")" = done ] && echo "$n"
	done <"$CR/round-jobs" >"$CR/round-done"
	for n in $(ls "$STATE/exports" 2>/dev/null); do
		case $n in
		*[!0-9]*) echo "exports/$n: not a job's export (left by the kill?)"; exit 1 ;;
		esac
		expect_eq done "$(sfs_cat "$MNT/jobs/$n/state")"
	done
	python3 - "$MNT/jobs" "$CR/round-done" <<'EOF'
import hashlib, json, os, sys
jobs, done = sys.argv[1], open(sys.argv[2]).read().split()
def digests(v):
    if isinstance(v, dict):
        if isinstance(v.get("digest"), str) and "mediaType" in v:
            yield v["digest"]  # a descriptor (a record's "digest" is a cache key)
        for x in v.values():
            yield from digests(x)
    elif isinstance(v, list):
        for x in v:
            yield from digests(x)
for n in done:
    d = os.path.join(jobs, n, "export")
    todo, seen = list(digests(json.load(open(os.path.join(d, "index.json"))))), set()
    while todo:
        g = todo.pop()
        if g in seen:
            continue
        seen.add(g)
        data = open(os.path.join(d, "blobs", "sha256", g.removeprefix("sha256:")), "rb").read()
        if "sha256:" + hashlib.sha256(data).hexdigest() != g:
            sys.exit("job %s: export blob %s holds other bytes" % (n, g))
        if data[:1] == b"{":
            try:
                todo.extend(digests(json.loads(data)))
            except ValueError:
                pass
    print("job %s: export of %d blobs whole" % (n, len(seen)))
EOF
}

# crash_check_remount ROUND: the body of a round's last case (the mount is live again).
crash_check_remount() {
	local k=$1 n st want left cancelled=0 done=0 recorded=0 resolved=0
	left=$(ls -A "$STATE/tmp")
	expect_eq "" "$left"
	if pgrep -f "$MARK-$k-|sleep $(hang_sleep "$k")" >/dev/null; then
		echo "processes of round $k still run:"; pgrep -af "$MARK-$k-|sleep $(hang_sleep "$k")"
		exit 1
	fi
	n=$(cat "$CR/round-hang")
	expect_eq cancelled "$(sfs_cat "$MNT/jobs/$n/state")"
	expect_eq "solverfs was restarted" "$(sfs_cat "$MNT/jobs/$n/error")"
	# every job recorded done, from this round and the earlier ones, is still done with
	# the same results; this round's are read back file by file
	for f in "$CR"/done/*; do
		[ -e "$f" ] || continue
		n=$(basename "$f")
		expect_eq done "$(sfs_cat "$MNT/jobs/$n/state")"
		want=$(sed '/^== /,$d' "$f")
		expect_eq "$want" "$(sfs_cat "$MNT/jobs/$n/result")"
		if grep -qx "$n" "$CR/round-jobs"; then
			recorded=$((recorded + 1))
			{
				printf '%s\n' "$want"
				printf '%s\n' "$want" | while read -r _ id; do
					echo "== $id"
					tree_hashes "$MNT/results/${id#sha256:}"
				done
			} >"$CR/readback"
			cmp "$f" "$CR/readback" || { diff "$f" "$CR/readback" | head -n 20; exit 1; }
		fi
	done
	# the other jobs of the round ended done in the last moment, or were interrupted
	: >"$CR/interrupted"
	while read -r n; do
		st=$(sfs_cat "$MNT/jobs/$n/state")
		case $st in
		done) done=$((done + 1)) ;;
		cancelled)
			expect_eq "solverfs was restarted" "$(sfs_cat "$MNT/jobs/$n/error")"
			echo "$n" >>"$CR/interrupted"
			cancelled=$((cancelled + 1)) ;;
		*) echo "job $n is $st after the restart: $(sfs_cat "$MNT/jobs/$n/error")"; exit 1 ;;
		esac
	done <"$CR/round-jobs"
	n=$(cat "$CR/round-pending")
	test_must_fail stat "$MNT/jobs/$n" 2>/dev/null
	crash_check_exports
	# the interrupted specs solve again
	while read -r n; do
		n=$(sfs_run "$CR/specs/job-$n.json")
		resolved=$((resolved + 1))
		record_done "$n"
		test -e "$CR/done/$n"
	done <"$CR/interrupted"
	echo "round $k: $recorded done before the kill and kept, $((done - recorded)) done in the last moment, $cancelled interrupted -> cancelled, $resolved solved again" |
		tee "$CR/summary"
}

crash_rounds_run() {
	local k pid t0 t1 t2 t3 fails_before rounds_ok=0 rounds_bad=0 sum_done=0 sum_cancel=0
	# a worker for the sleeping exec, and two for the rest
	CRASH_MOUNT_OPTS=(-o workers=3)
	sfs_mount "${CRASH_MOUNT_OPTS[@]}" || say "# mount failed; every case below will fail"
	for k in $(seq 1 "$ROUNDS"); do
		fails_before=$sfs_n_fail
		t0=$(date +%s.%N)
		rm -f "$CR/summary"
		pid=$(cat "$PIDFILE" 2>/dev/null)
		# (stderr: the shell's "Killed" notice for its child, the daemon)
		test_expect_success "round $k: jobs submitted, the daemon killed -9 at a random moment" "
			crash_submit_and_kill $k
		" 2>/dev/null
		# the daemon is our child: reap it
		[ -n "$pid" ] && { kill -9 "$pid"; wait "$pid"; } 2>/dev/null
		rm -f "$PIDFILE"
		t1=$(date +%s.%N)
		sfs_is_mounted && { fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"; }
		test_expect_success "round $k: after the kill the database is intact and every tree complete" '
			crash_check_store
		'
		t2=$(date +%s.%N)
		sfs_mount "${CRASH_MOUNT_OPTS[@]}" || say "# remount failed"
		t3=$(date +%s.%N)
		test_expect_success "round $k: after the remount nothing done was lost, the rest was cancelled and solves again" "
			crash_check_remount $k
		"
		if [ "$sfs_n_fail" = "$fails_before" ]; then
			rounds_ok=$((rounds_ok + 1))
			say "# $(cat "$CR/summary" 2>/dev/null) ($(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$(date +%s.%N)" \
				'BEGIN { printf "%.1f s: run %.1f, check %.1f, mount %.1f, after %.1f", e - a, b - a, c - b, d - c, e - d }'))"
		else
			rounds_bad=$((rounds_bad + 1))
			say "# round $k failed"
		fi
	done
	say "# crash rounds: $ROUNDS rounds, $rounds_ok passed, $rounds_bad failed"
}

# Run by hand (not sourced by the e2e script): run the rounds and finish.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	crash_rounds_run
	test_done
fi
