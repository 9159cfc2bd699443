#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='a job history row holding its vertices in the JSON of earlier versions still shows them'
. "$(dirname "$0")/lib.sh"

. "$SFS_E2E_DIR/history-specs.sh" # $DATA/ok.json and $DATA/fail.json

# Rewrites every job's vertex list (solver/vinfo.c's binary form) as the JSON array
# the versions before it wrote; prints how many rows it rewrote.
to_json_rows() {
	python3 - "$STATE" <<'PY'
import json, os, sqlite3, sys
db = sqlite3.connect(os.path.join(sys.argv[1], "solverfs.db"))
NOT_NEEDED = "not needed: what uses it was found in the cache"
STATES = ["pending", "running", "cached", "done", "failed", "cancelled"]

class Cur:
    def __init__(self, b): self.b, self.i = b, 0
    def byte(self):
        self.i += 1
        return self.b[self.i - 1]
    def num(self):
        v, s = 0, 0
        while True:
            c = self.byte(); v |= (c & 0x7f) << s; s += 7
            if not c & 0x80: return v
    def raw(self):
        n = self.num(); self.i += n
        return self.b[self.i - n:self.i]
    def str(self): return self.raw().decode()
    def digest(self):
        k = self.byte()
        if k == 2: return ""
        if k == 0: return self.str()
        self.i += 32
        return "sha256:" + self.b[self.i - 32:self.i].hex()

n = 0
for jid, v in db.execute("SELECT id, vertices FROM jobs WHERE vertices IS NOT NULL").fetchall():
    assert v[:5] == b"\0SFV1", v[:5]
    c, out = Cur(v), []
    c.i = 5
    while c.i < len(v):
        o = {"digest": c.digest(), "name": c.str(), "op": c.str()}
        o["state"] = STATES[c.byte()]
        flags = c.byte()
        if flags & 1: o["log"] = c.str()
        o["inputs"] = [c.digest() for _ in range(c.num())]
        o["results"] = [c.digest() for _ in range(c.num())]
        o["why"] = NOT_NEEDED if flags & 2 else c.str()
        o["keys"] = c.str()
        if flags & 4: o["names"] = c.str()
        out.append(o)
    text = json.dumps(out, separators=(",", ":"), ensure_ascii=False)
    db.execute("UPDATE jobs SET vertices = ? WHERE id = ?", (text, jid))
    n += 1
db.commit()
db.close()
print(n)
PY
}

# show_vertices N: every file of every vertex of job N, the by-name links, why
show_vertices() {
	(cd "$MNT/jobs/$1/vertices" && for d in *; do
		echo "$d" && cat "$d/name" "$d/op" "$d/state" "$d/log" "$d/why" "$d/keys" "$d/jobs" &&
		ls -l "$d/inputs" "$d/results" | sed 1d | awk "{ print \$9, \$10, \$11 }" || exit 1
	done) && ls -l "$MNT/jobs/$1/by-name" | awk "{ print \$9, \$10, \$11 }" &&
	sfs_cat "$MNT/jobs/$1/why" && sfs_cat "$MNT/jobs/$1/graph.dot"
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'a job writes its vertex list in the binary form' '
	N=$(sfs_run "$DATA/ok.json") && echo "$N" >"$SCRATCH/ok" &&
	F=$(sfs_submit "$DATA/fail.json") && echo "$F" >"$SCRATCH/fail" &&
	expect_eq failed "$(sfs_wait "$F")" &&
	C=$(sfs_run "$DATA/ok.json") && echo "$C" >"$SCRATCH/cached" &&
	for j in "$N" "$F" "$C"; do show_vertices "$j" >"before-$j" || exit 1; done &&
	grep -q hello "before-$N" && grep -q "not needed" "before-$C" &&
	expect_eq 3 "$(sqlite3 -cmd ".timeout 10000" "$STATE/solverfs.db" "SELECT count(*) FROM jobs WHERE hex(substr(vertices, 1, 5)) = '"'"'0053465631'"'"'")"
'

test_expect_success 'the same rows rewritten as JSON show the same after a remount' '
	N=$(cat "$SCRATCH/ok") && F=$(cat "$SCRATCH/fail") && C=$(cat "$SCRATCH/cached") &&
	sfs_umount &&
	expect_eq 3 "$(to_json_rows)" &&
	expect_eq 3 "$(sqlite3 -cmd ".timeout 10000" "$STATE/solverfs.db" "SELECT count(*) FROM jobs WHERE substr(vertices, 1, 2) = '"'"'[{'"'"'")" &&
	sfs_mount &&
	for j in "$N" "$F" "$C"; do
		show_vertices "$j" >"after-$j" && cmp "before-$j" "after-$j" || exit 1
	done
'

test_expect_success 'a damaged vertex list shows no vertices, the rest of the job stays' '
	N=$(cat "$SCRATCH/ok") &&
	sfs_umount &&
	sqlite3 -cmd ".timeout 10000" "$STATE/solverfs.db" "UPDATE jobs SET vertices = X'"'"'0053465631FF'"'"' WHERE id = $N" &&
	sfs_mount &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$N/state")" &&
	expect_eq "" "$(ls "$MNT/jobs/$N/vertices")"
'

test_done
