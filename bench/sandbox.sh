#!/bin/bash
# bench/sandbox.sh — the cost of the exec sandbox (docs/sandbox.md).
#
#   (1) a trivial exec (`true`) through the mount with sandbox=bwrap and sandbox=none:
#       the vertex's own time (completed - started in status.json), median of
#       BENCH_REPEAT (default 20) jobs, one at a time;
#   (2) the same bwrap command line run by hand (host / bound entry by entry, private
#       /tmp /run /dev /proc, a work dir): median wall time;
#   (3) an exec of `true` with a BENCH_INPUT_MB (default 256) MiB input mounted, minus
#       (1): what materialising the input costs (a copy on ext4; a reflink where the
#       filesystem shares extents).
# Goal: (1) bwrap ≤ 1.5 × (2).
. "$(dirname "$0")/lib.sh"

REPEAT=${BENCH_REPEAT:-20}
INPUT_MB=${BENCH_INPUT_MB:-256}
B=sandbox
command -v bwrap >/dev/null || { echo "bench: bwrap is missing (apt-get install bubblewrap)" >&2; exit 1; }

# vertex_ms N: the exec vertex's completed - started of job N, in ms.
vertex_ms() {
	python3 - "$MNT/jobs/$1/status.json" <<'PY'
import json, sys
from datetime import datetime
def t(s):
    s = s.rstrip("Z"); base, frac = (s.split(".") + ["0"])[:2]; frac = frac[:6]
    return datetime.fromisoformat(base).timestamp() + float("0." + frac)
best = {}
for line in open(sys.argv[1]):
    for v in json.loads(line).get("vertexes", []):
        if v.get("name", "").startswith("[e] ") and v.get("started") and v.get("completed"):
            best = v
print("%.2f" % ((t(best["completed"]) - t(best["started"])) * 1000))
PY
}

# trivial_ms MODE: median vertex time of a `true` exec under sandbox=MODE.
trivial_ms() {
	bench_mount -o "sandbox=$1" || return 1
	for i in $(seq 1 "$REPEAT"); do
		printf '{"vertices": {"e": {"op": "exec", "args": ["true", "%s-%s"], "ignore_cache": true, "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["e"]}' "$1" "$i" >"$DATA/t.json"
		n=$(bench_run_spec "$DATA/t.json") || return 1
		vertex_ms "$n"
	done | median
	bench_umount
}

by_hand_ms() {
	local args=(bwrap --die-with-parent --unshare-all --hostname solverfs) e
	for e in /*; do
		case ${e#/} in proc | dev | tmp | run | work) continue ;; esac
		if [ -L "$e" ]; then args+=(--symlink "$(readlink "$e")" "$e"); else args+=(--ro-bind "$e" "$e"); fi
	done
	mkdir -p "$DATA/work"
	args+=(--tmpfs /run --dev /dev --proc /proc --tmpfs /tmp --bind "$DATA/work" /work
		--remount-ro / --chdir /work -- true)
	for _ in $(seq 1 "$REPEAT"); do time_ms "${args[@]}"; done | median
}

echo "== sandbox: a trivial exec, $REPEAT runs each"
t_bwrap=$(trivial_ms bwrap) || exit 1
t_none=$(trivial_ms none) || exit 1
t_hand=$(by_hand_ms)
report $B "exec true, sandbox=bwrap (ms)" "$t_bwrap" "<= 1.5x by hand"
report $B "exec true, sandbox=none (ms)" "$t_none"
report $B "the same bwrap by hand (ms)" "$t_hand"
report $B "sandbox=bwrap / by hand" "$(awk -v a="$t_bwrap" -v b="$t_hand" 'BEGIN { printf "%.2f", a / b }')" "<= 1.5"

echo "== sandbox: an exec with a $INPUT_MB MiB input"
mkdir -p "$DATA/big" && head -c "$((INPUT_MB << 20))" /dev/urandom >"$DATA/big/blob"
bench_mount -o sandbox=bwrap || exit 1
cat >"$DATA/in.json" <<JSON
{"vertices": {"src": {"op": "local", "path": "$DATA/big"},
  "e": {"op": "exec", "args": ["true"], "ignore_cache": true,
        "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]}}, "outputs": ["e"]}
JSON
t_in=$(for _ in 1 2 3; do n=$(bench_run_spec "$DATA/in.json") && vertex_ms "$n"; done | median)
bench_umount
report $B "exec true with a $INPUT_MB MiB input (ms)" "$t_in"
report $B "materialising the input (ms, minus exec true)" "$(awk -v a="$t_in" -v b="$t_bwrap" 'BEGIN { printf "%.1f", a - b }')" "no copy where a reflink serves"
