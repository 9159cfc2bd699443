#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='op build (sub-builds): the inner spec solves as part of the job, is cached, and is exported'
. "$(dirname "$0")/lib.sh"

# The inner spec lives in a local dir, as a Dockerfile frontend's would.
mkdir -p "$DATA/proj" "$DATA/bad"
cat >"$DATA/proj/solverfs.json" <<'JSON'
{"vertices": {
  "base": {"op": "file", "actions": [{"mkfile": {"path": "greeting", "data": "hello\n"}}]},
  "more": {"op": "file", "base": "base", "actions": [{"mkfile": {"path": "name", "data": "inner\n"}}]}},
 "outputs": ["more"]}
JSON
cat >"$DATA/bad/solverfs.json" <<'JSON'
{"vertices": {"boom": {"op": "exec", "args": ["sh", "-c", "echo inner-failure >&2; exit 7"],
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["boom"]}
JSON
for d in proj bad; do
	cat >"$DATA/outer-$d.json" <<JSON
{"vertices": {
  "src": {"op": "local", "path": "$DATA/$d"},
  "sub": {"op": "build", "input": "src"},
  "use": {"op": "file", "base": "sub", "actions": [{"mkfile": {"path": "outer", "data": "outer\\n"}}]}},
 "outputs": ["use"],
 "export": {"mode": "max"}}
JSON
done

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'the inner spec builds inside the job and its output is the build vertex result' '
	N=$(sfs_run "$DATA/outer-proj.json") && echo "$N" >"$SCRATCH/job" &&
	out=$(sfs_output "$N" use) &&
	expect_eq hello "$(cat "$out/greeting")" &&
	expect_eq inner "$(cat "$out/name")" &&
	expect_eq outer "$(cat "$out/outer")" &&
	expect_eq DONE "$(sfs_final "$N" sub)"
'

test_expect_success 'the inner vertices show in the job status and vertices' '
	N=$(cat "$SCRATCH/job") &&
	sfs_cat "$MNT/jobs/$N/status" >status &&
	grep -q "\[base\] file mkfile" status &&
	grep -q "\[more\] file mkfile" status &&
	(cd "$MNT/jobs/$N/vertices" && cat ./*/name) >names &&
	grep -qx "base" names && grep -qx "more" names && grep -qx "sub" names &&
	grep -q "^\[more\] executed" "$MNT/jobs/$N/why" &&
	for d in "$MNT/jobs/$N/vertices"/*; do
		test "$(cat "$d/name")" = more || continue
		expect_eq done "$(cat "$d/state")" &&
		test -L "$d/results/0" || exit 1
	done
'

test_expect_success 'a second run is cached, the sub-build included' '
	N=$(sfs_run "$DATA/outer-proj.json") &&
	expect_eq CACHED "$(sfs_final "$N" use)" &&
	expect_eq "$(sfs_cat "$MNT/jobs/$(cat "$SCRATCH/job")/result")" "$(sfs_cat "$MNT/jobs/$N/result")"
'

test_expect_success 'a changed inner spec builds again' '
	sed -i "s/inner/changed/" "$DATA/proj/solverfs.json" &&
	N=$(sfs_run "$DATA/outer-proj.json") &&
	expect_eq changed "$(cat "$(sfs_output "$N" use)/name")" &&
	expect_eq DONE "$(sfs_final "$N" use)"
'

# A record's digest is rootKey(key digest, output) of one of the vertex's cache keys
# (cache/export.c), so the keys of base and more (vertices/<hex>/keys, then
# cache/keys/<id>/digest and output; a root key's dir is named by its hex) name their
# records.  Roots carry no result
# (BuildKit v0.7.2); more's record carries its whole tree as a layer.
test_expect_success 'the export holds the inner chain: a record for each inner vertex' '
	N=$(cat "$SCRATCH/job") &&
	cp -r "$MNT/jobs/$N/export" "$SCRATCH/exp" &&
	for d in "$MNT/jobs/$N/vertices"/*; do
		name=$(cat "$d/name") &&
		case $name in base | more) ;; *) continue ;; esac &&
		while read -r _ id; do
			k=$MNT/cache/keys/${id#sha256:} &&
			echo "$name $(sfs_cat "$k/digest") $(sfs_cat "$k/output")" || exit 1
		done <"$d/keys" || exit 1
	done >keys &&
	python3 - "$SCRATCH/exp" keys <<-\EOF
	import hashlib, json, sys, tarfile
	d = sys.argv[1]
	def blob(digest):
	    return d + "/blobs/sha256/" + digest.split(":")[1]
	idx = json.load(open(d + "/index.json"))
	man = json.load(open(blob(idx["manifests"][0]["digest"])))
	cfg = json.load(open(blob(man["config"]["digest"])))
	recs = cfg["records"]
	at = {r["digest"]: i for i, r in enumerate(recs)}
	mine = {"base": set(), "more": set()}
	for line in open(sys.argv[2]):
	    name, digest, output = line.split()
	    root = "sha256:" + hashlib.sha256(("%s@%s" % (digest, output)).encode()).hexdigest()
	    if root in at:
	        mine[name].add(at[root])
	print("# %d records; base: %s, more: %s" % (len(recs), sorted(mine["base"]), sorted(mine["more"])))
	assert mine["base"], "no record of a key of base"
	assert mine["more"], "no record of a key of more"
	def files(rec):
	    layer = cfg["layers"][rec["layers"][0]["layer"]]
	    out = {}
	    with tarfile.open(blob(layer["blob"])) as t:
	        for m in t.getmembers():
	            if m.isfile():
	                out[m.name[2:] if m.name.startswith("./") else m.name] = t.extractfile(m).read().decode()
	    return out
	for i in mine["more"]:
	    r = recs[i]
	    assert r.get("layers"), "the record of more has no result"
	    assert files(r) == {"greeting": "hello\n", "name": "inner\n"}, files(r)
	    links = {l["link"] for group in r.get("inputs", []) for l in group}
	    assert links & mine["base"], "the record of more links to no record of base"
	EOF
'

test_expect_success 'an inner failure fails the job and names the build and the inner vertex' '
	N=$(sfs_submit "$DATA/outer-bad.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	err=$(sfs_cat "$MNT/jobs/$N/error") &&
	expect_contains "build solverfs.json" "$err" &&
	expect_contains "boom" "$err" &&
	expect_contains "inner-failure" "$(sfs_cat "$MNT/jobs/$N/status")"
'

test_done
