#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='a job cache export: jobs/N/export is an OCI layout in BuildKit format'
. "$(dirname "$0")/lib.sh"

mkdir -p "$DATA/src"
printf 'hello\n' >"$DATA/src/a.txt"
for mode in min max; do
	cat >"$DATA/$mode.json" <<JSON
{"vertices": {"src": {"op": "local", "path": "$DATA/src"},
  "up": {"op": "exec", "args": ["sh", "-c", "tr a-z A-Z < in/a.txt > out/A.txt"],
         "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]},
  "pkg": {"op": "file", "base": "up", "actions": [{"mkfile": {"path": "V", "data": "1"}}]}},
 "outputs": ["pkg"], "export": {"mode": "$mode"}}
JSON
done
sed 's/"mode": "max"}/"mode": "max", "form": "manifest-list"}/' "$DATA/max.json" >"$DATA/list.json"
sed 's/, "export": {"mode": "max"}//' "$DATA/max.json" >"$DATA/none.json"

# check_layout DIR FORM: every blob the manifest names exists with its digest,
# the config is a BuildKit cacheconfig; prints "records layers-with-results".
check_layout() {
	python3 - "$1" "$2" <<-'PY'
	import hashlib, json, os, sys
	d, form = sys.argv[1], sys.argv[2]
	def blob(dg):
	    b = open(os.path.join(d, "blobs", "sha256", dg[len("sha256:"):]), "rb").read()
	    assert hashlib.sha256(b).hexdigest() == dg[len("sha256:"):], dg
	    return b
	assert json.load(open(os.path.join(d, "oci-layout")))["imageLayoutVersion"] == "1.0.0"
	idx = json.load(open(os.path.join(d, "index.json")))
	(m,) = idx["manifests"]
	assert m["annotations"]["org.opencontainers.image.ref.name"] == "latest"
	man = json.loads(blob(m["digest"]))
	if form == "image":
	    assert man["mediaType"] == "application/vnd.oci.image.manifest.v1+json", man
	    assert man["config"]["mediaType"] == "application/vnd.buildkit.cacheconfig.v0"
	    cfgd, layers = man["config"]["digest"], man["layers"]
	else:
	    assert man["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
	    assert man["manifests"][-1]["mediaType"] == "application/vnd.buildkit.cacheconfig.v0"
	    cfgd, layers = man["manifests"][-1]["digest"], man["manifests"][:-1]
	for l in layers:
	    assert len(blob(l["digest"])) == l["size"]
	cfg = json.loads(blob(cfgd))
	recs = cfg.get("records", [])
	print(len(recs), sum(1 for r in recs if r.get("layers")))
	PY
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'export min: the top record carries a result, the layout is complete' '
	N=$(sfs_run "$DATA/min.json") &&
	test -d "$MNT/jobs/$N/export" &&
	cp -r "$MNT/jobs/$N/export" "$SCRATCH/min" &&
	out=$(check_layout "$SCRATCH/min" image) &&
	expect_eq 1 "${out#* }" &&
	expect_contains "exporting cache" "$(sfs_cat "$MNT/jobs/$N/status")" &&
	expect_eq DONE "$(sfs_final "$N" export)" &&
	sfs_cat "$MNT/jobs/$N/status.json" >sj &&
	python3 -c "
import json, sys
done = [v for l in open(\"sj\") for v in json.loads(l).get(\"vertexes\", [])
        if v[\"name\"] == \"[export] exporting cache\" and v.get(\"completed\")]
sys.exit(0 if done else 1)"
'

test_expect_success 'export max: every non-root record carries a result' '
	N=$(sfs_run "$DATA/max.json") &&
	cp -r "$MNT/jobs/$N/export" "$SCRATCH/max" &&
	out=$(check_layout "$SCRATCH/max" image) &&
	expect_eq 2 "${out#* }"
'

test_expect_success 'equal trees give equal layer blobs: a second export has the same blobs' '
	N=$(sfs_run "$DATA/max.json") &&
	expect_eq "$(ls "$SCRATCH/max/blobs/sha256" | sort)" "$(ls "$MNT/jobs/$N/export/blobs/sha256" | sort)"
'

test_expect_success 'form manifest-list writes the BuildKit v0.7 form' '
	N=$(sfs_run "$DATA/list.json") &&
	cp -r "$MNT/jobs/$N/export" "$SCRATCH/list" &&
	check_layout "$SCRATCH/list" list >/dev/null
'

test_expect_success 'no export asked: no export directory; the export is read-only' '
	N=$(sfs_run "$DATA/none.json") &&
	test_must_fail test -e "$MNT/jobs/$N/export" &&
	test_must_fail touch "$MNT/jobs/1/export/x" 2>"$SCRATCH/touch.err" &&
	expect_contains "Read-only" "$(cat "$SCRATCH/touch.err")"
'

test_expect_success 'cache_from: a fresh state dir solves from a copied export, executing nothing' '
	sed "s|\"export\": {\"mode\": \"max\"}|\"cache_from\": [\"$SCRATCH/max\"]|" \
		"$DATA/max.json" >"$DATA/from.json" &&
	sfs_umount && rm -rf "$STATE" && sfs_mount &&
	N=$(sfs_run "$DATA/from.json") &&
	expect_eq CACHED "$(sfs_final "$N" pkg)" &&
	expect_contains "importing $SCRATCH/max" "$(sfs_cat "$MNT/jobs/$N/status")" &&
	sfs_cat "$MNT/jobs/$N/status" >st &&
	num=$(grep -m1 " importing $SCRATCH/max" st | cut -d" " -f1) &&
	grep -q "^$num DONE " st &&
	expect_eq "HELLO" "$(cat "$(sfs_output "$N" pkg)/A.txt")" &&
	M=$(sfs_run "$DATA/none.json") &&
	expect_eq CACHED "$(sfs_final "$M" pkg)"
'

test_expect_success 'discarding the job deletes its export' '
	N=$(sfs_run "$DATA/min.json") &&
	test -d "$STATE/exports/$N" &&
	echo discard >"$MNT/jobs/$N/ctl" &&
	test_must_fail test -e "$STATE/exports/$N"
'

test_done
