#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='hostile cache_from layouts: each is refused or skipped with a message in
the job status, nothing lands outside the store, and the daemon keeps serving'
. "$(dirname "$0")/lib.sh"

# The layouts are written by a Python helper (tarfile, gzip, json) into $DATA.
cat >"$DATA/mk.py" <<'PY'
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import zlib

CACHECONFIG = "application/vnd.buildkit.cacheconfig.v0"
IMAGE = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
RECORD = "sha256:" + hashlib.sha256(b"t0180 record").hexdigest()


def put_blob(d, data):
    os.makedirs(os.path.join(d, "blobs", "sha256"), exist_ok=True)
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(d, "blobs", "sha256", h), "wb") as f:
        f.write(data)
    return "sha256:" + h


def blob_path(d, digest):
    return os.path.join(d, "blobs", "sha256", digest[len("sha256:"):])


def tar_layer(entries):
    """entries: (name, kind, data) with kind f, d, l (data = target), h (hardlink),
    c (char device), p (fifo)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = 0o755 if kind == "d" else 0o644
            ti.type = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE,
                       "h": tarfile.LNKTYPE, "c": tarfile.CHRTYPE, "p": tarfile.FIFOTYPE}[kind]
            if kind in ("l", "h"):
                ti.linkname = data
            if kind == "c":
                ti.devmajor, ti.devminor = 1, 3
            body = data.encode() if kind == "f" else b""
            ti.size = len(body)
            t.addfile(ti, io.BytesIO(body) if body else None)
    return gzip.compress(buf.getvalue(), mtime=0)


def layout(d, layers, config=None, chains=None):
    """layers: list of blob bytes, base first, each the parent of the next."""
    digests = [put_blob(d, b) for b in layers]
    if config is None:
        config = {"layers": [{"blob": g, "parent": i - 1} for i, g in enumerate(digests)],
                  "records": [{"digest": RECORD}]}
        if digests:
            config["records"][0]["layers"] = [{"layer": len(digests) - 1}]
        if chains is not None:
            config["records"][0].pop("layers", None)
            config["records"][0]["chains"] = [{"layers": c} for c in chains]
    cfg = config if isinstance(config, bytes) else json.dumps(config).encode()
    cfg_d = put_blob(d, cfg)
    manifest = {"schemaVersion": 2, "mediaType": IMAGE,
                "config": {"mediaType": CACHECONFIG, "digest": cfg_d, "size": len(cfg)},
                "layers": [{"mediaType": LAYER, "digest": g, "size": len(b)}
                           for g, b in zip(digests, layers)]}
    put_index(d, put_blob(d, json.dumps(manifest).encode()))
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return digests, cfg_d


def put_index(d, manifest_digest, entry=None):
    if entry is None:
        entry = {"mediaType": IMAGE, "digest": manifest_digest,
                 "annotations": {"org.opencontainers.image.ref.name": "latest"}}
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [entry]}, f)


def member(data):
    """One gzip member; members concatenate into one valid gzip stream."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    return z.compress(data) + z.flush()


def tar_header(name, size):
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o644
    return ti.tobuf(format=tarfile.GNU_FORMAT)


def bomb_declared(total):
    """A tar of one file of `total` zero bytes, as gzip members of 1 MiB zeros each:
    about 1 KiB of blob per MiB of file."""
    mib = member(b"\0" * (1 << 20))
    return member(tar_header("bomb", total)) + mib * (total >> 20) + member(b"\0" * 1024)


def bomb_streamed(nfiles):
    """nfiles files of 1 MiB zeros each, every header and body a gzip member."""
    mib = member(b"\0" * (1 << 20))
    one = b"".join(member(tar_header("f%d" % i, 1 << 20)) + mib for i in range(nfiles))
    return one + member(b"\0" * 1024)


def main():
    case, d = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else ""
    os.makedirs(d, exist_ok=True)
    ok = tar_layer([("a", "f", "a\n")])
    if case == "dotdot":
        layout(d, [tar_layer([("a", "f", "a"), ("d/../../" + arg, "f", "evil")])])
    elif case == "absolute":
        layout(d, [tar_layer([(arg, "f", "evil")])])
    elif case == "symlink-then-file":
        layout(d, [tar_layer([("link", "l", arg), ("link/evil", "f", "evil")])])
    elif case == "hardlink-out":
        layout(d, [tar_layer([("h", "h", "../../../../etc/passwd")])])
    elif case == "devices":
        layout(d, [tar_layer([("a", "f", "a"), ("null", "c", ""), ("fifo", "p", "")])])
    elif case == "bad-digest":
        (g,), _ = layout(d, [ok])
        with open(blob_path(d, g), "ab") as f:
            f.write(b"tampered")
    elif case == "missing-blob":
        (g,), _ = layout(d, [ok])
        os.unlink(blob_path(d, g))
    elif case == "looping-records":
        layout(d, [], config={"records": [
            {"digest": RECORD, "inputs": [[{"link": 1}]]},
            {"digest": "sha256:" + "1" * 64, "inputs": [[{"link": 0}]]}]})
    elif case == "huge-config":
        pad = b" " * (100 << 20)
        layout(d, [], config=b'{"records":[]' + pad + b"}")
    elif case == "bomb-declared":
        layout(d, [bomb_declared(10 << 30)])
    elif case == "bomb-streamed":
        layout(d, [bomb_streamed(int(arg))])
    elif case == "many-entries":
        layout(d, [tar_layer([("f%d" % i, "d", "") for i in range(int(arg))])])
    elif case == "whiteout-out":
        layout(d, [ok, tar_layer([(".wh..", "f", "")])])
    elif case == "whiteout-dotdot":
        layout(d, [ok, tar_layer([("../.wh.x", "f", "")])])
    elif case == "index-no-digest":
        layout(d, [ok])
        put_index(d, None, entry={"mediaType": IMAGE})
    elif case == "record-no-digest":
        layout(d, [], config={"records": [{"inputs": []}]})
    elif case == "layer-no-blob":
        layout(d, [], config={"layers": [{"parent": -1}],
                              "records": [{"digest": RECORD, "layers": [{"layer": 0}]}]})
    elif case == "fifo-index":
        layout(d, [ok])
        os.unlink(os.path.join(d, "index.json"))
        os.mkfifo(os.path.join(d, "index.json"))
    elif case == "fifo-blob":
        (g,), _ = layout(d, [ok])
        os.unlink(blob_path(d, g))
        os.mkfifo(blob_path(d, g))
    elif case == "blobs-symlink":
        layout(d, [ok])
        os.rename(os.path.join(d, "blobs"), os.path.join(d, "elsewhere"))
        os.symlink("elsewhere", os.path.join(d, "blobs"))
    elif case == "chain-repeats":
        layout(d, [ok], chains=[[0] * int(arg)])
    elif case == "deep-chain":
        n, nres = (int(x) for x in arg.split(","))
        g = put_blob(d, ok)
        layout(d, [], config={
            "layers": [{"blob": g, "parent": i - 1} for i in range(n)],
            "records": [{"digest": RECORD, "layers": [{"layer": n - 1}] * nres}]})
    elif case == "blob-file":
        with open(arg, "rb") as f:
            layout(d, [f.read()])
    elif case == "slow":
        # A chain of the allowed length over a layer of many files: long to unpack.
        n = int(arg)
        layout(d, [tar_layer([("f%d" % i, "f", "x") for i in range(n)])], chains=[[0] * 1000])
    else:
        sys.exit("unknown case " + case)


main()
PY

mk() {
	python3 "$DATA/mk.py" "$@"
}

# job_from DIR: submit a one-vertex job with cache_from DIR, wait, print "N STATE".
job_from() {
	local spec n
	spec=$DATA/spec-$(basename "$1").json
	cat >"$spec" <<-JSON
	{"vertices": {"a": {"op": "file", "actions": [{"mkfile": {"path": "x", "data": "$(basename "$1")"}}]}},
	 "outputs": ["a"], "cache_from": ["$1"]}
	JSON
	n=$(sfs_submit "$spec") || return 1
	printf '%s %s\n' "$n" "$(sfs_wait "$n")"
}

# refused DIR MESSAGE: the job reading DIR fails and its status says MESSAGE.
refused() {
	local out
	out=$(job_from "$1") || return 1
	expect_eq failed "${out#* }" &&
		expect_contains "$2" "$(sfs_cat "$MNT/jobs/${out% *}/status")"
}

# skipped DIR MESSAGE: the job reading DIR is done and its status says MESSAGE.
skipped() {
	local out
	out=$(job_from "$1") || return 1
	expect_eq done "${out#* }" &&
		expect_contains "$2" "$(sfs_cat "$MNT/jobs/${out% *}/status")"
}

H=$SCRATCH/hostile
# Small limits so small layouts prove the caps; one worker, so a worker an import keeps
# busy would hold up every later job.
sfs_mount -o import_layer_max=16M,import_entries_max=5000,workers=1 ||
	say "# mount failed; every case below will fail"

test_expect_success 'tar entries with ".." or an absolute name are refused, nothing escapes' '
	mk dotdot "$H/dotdot" escaped-dotdot &&
	refused "$H/dotdot" "absolute or \"..\" name" &&
	mk absolute "$H/absolute" "$SCRATCH/escaped-abs" &&
	refused "$H/absolute" "absolute or \"..\" name" &&
	test_must_fail test -e "$SCRATCH/escaped-abs" &&
	test_must_fail test -e "$SCRATCH/escaped-dotdot" &&
	test_must_fail test -e "$STATE/escaped-dotdot" &&
	test_must_fail test -e /escaped-dotdot
'

test_expect_success 'a symlink followed by a file through it is refused, nothing written there' '
	mkdir -p "$SCRATCH/outside" &&
	mk symlink-then-file "$H/symlink" "$SCRATCH/outside" &&
	refused "$H/symlink" "path under a non-directory" &&
	expect_eq "" "$(ls "$SCRATCH/outside")"
'

test_expect_success 'a hardlink out of the tree is refused' '
	mk hardlink-out "$H/hardlink" &&
	refused "$H/hardlink" "hardlink to a missing file"
'

test_expect_success 'device nodes and fifos in a layer are dropped with a warning in the status' '
	mk devices "$H/devices" &&
	out=$(job_from "$H/devices") &&
	expect_eq done "${out#* }" &&
	st=$(sfs_cat "$MNT/jobs/${out% *}/status") &&
	expect_contains "\"null\": not a dir, file or symlink; dropped" "$st" &&
	expect_contains "\"fifo\": not a dir, file or symlink; dropped" "$st"
'

test_expect_success 'a blob whose bytes do not match its digest is refused' '
	mk bad-digest "$H/bad-digest" &&
	refused "$H/bad-digest" "content does not match its digest"
'

test_expect_success 'a missing blob skips its result with a warning' '
	mk missing-blob "$H/missing-blob" &&
	skipped "$H/missing-blob" "a layer blob is not in the layout; a result of 1 layers is skipped"
'

test_expect_success 'records that loop are refused' '
	mk looping-records "$H/loop" &&
	refused "$H/loop" "invalid looping record"
'

test_expect_success 'a 100 MiB JSON config is refused by its size (import_config_max)' '
	mk huge-config "$H/huge-config" &&
	refused "$H/huge-config" "bytes (mount option import_config_max)"
'

test_expect_success 'gzip bombs stop at import_layer_max: a 10 GiB file, 1 MiB files adding up' '
	mk bomb-declared "$H/bomb-declared" &&
	test "$(du -sk "$H/bomb-declared" | cut -f1)" -lt 20000 &&
	refused "$H/bomb-declared" "bytes uncompressed (mount option import_layer_max)" &&
	mk bomb-streamed "$H/bomb-streamed" 10240 &&
	refused "$H/bomb-streamed" "bytes uncompressed (mount option import_layer_max)"
'

test_expect_success 'a layer of more entries than import_entries_max is refused' '
	mk many-entries "$H/many-entries" 6000 &&
	refused "$H/many-entries" "(mount option import_entries_max)"
'

test_expect_success 'whiteouts that reach outside the tree are refused' '
	mk whiteout-out "$H/wh-out" &&
	refused "$H/wh-out" "invalid whiteout" &&
	mk whiteout-dotdot "$H/wh-dotdot" &&
	refused "$H/wh-dotdot" "absolute or \"..\" name"
'

test_expect_success 'a descriptor, record or layer without a digest is refused (no crash)' '
	mk index-no-digest "$H/index-no-digest" &&
	refused "$H/index-no-digest" "manifest digest is not sha256:<hex>" &&
	mk record-no-digest "$H/record-no-digest" &&
	refused "$H/record-no-digest" "record 0 has no digest" &&
	mk layer-no-blob "$H/layer-no-blob" &&
	refused "$H/layer-no-blob" "layer 0 is invalid"
'

test_expect_success 'a FIFO as index.json or as a layer blob is refused at once' '
	mk fifo-index "$H/fifo-index" &&
	refused "$H/fifo-index" "index.json: not a regular file" &&
	mk fifo-blob "$H/fifo-blob" &&
	refused "$H/fifo-blob" "not a regular file"
'

test_expect_success 'blobs/ as a symlink is refused, not followed' '
	mk blobs-symlink "$H/blobs-symlink" &&
	refused "$H/blobs-symlink" "blobs: is a symlink"
'

test_expect_success 'a sparse tar entry is refused, not imported empty' '
	mkdir -p "$SCRATCH/sparse" &&
	truncate -s 4M "$SCRATCH/sparse/holes" && printf data >>"$SCRATCH/sparse/holes" &&
	tar --sparse --format=pax -czf "$SCRATCH/sparse.tgz" -C "$SCRATCH/sparse" holes &&
	mk blob-file "$H/sparse" "$SCRATCH/sparse.tgz" &&
	refused "$H/sparse" "a sparse file (not supported)"
'

test_expect_success 'long chains are refused: 100,000 repeats of a layer, 100,000 parents under 600,000 results' '
	mk chain-repeats "$H/chain-repeats" 100000 &&
	refused "$H/chain-repeats" "a layer chain longer than 1024 layers" &&
	mk deep-chain "$H/deep-chain" 100000,600000 &&
	refused "$H/deep-chain" "a layer chain longer than 1024 layers"
'

test_expect_success 'cancelling a job stops its import: the one worker is free for the next job' '
	mk slow "$H/slow" 4000 &&
	cat >"$DATA/slow.json" <<-JSON &&
	{"vertices": {"a": {"op": "file", "actions": [{"mkfile": {"path": "x", "data": "slow"}}]}},
	 "outputs": ["a"], "cache_from": ["$H/slow"]}
	JSON
	N=$(sfs_submit "$DATA/slow.json") &&
	for _ in $(seq 1 30); do
		# the status follows the running job: read what is there for a second
		timeout 1 cat "$MNT/jobs/$N/status" | grep -q "importing $H/slow" && break
	done &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	expect_eq cancelled "$(sfs_wait "$N")" &&
	mk devices "$H/after-cancel" &&
	out=$(job_from "$H/after-cancel") &&
	expect_eq done "${out#* }"
'

test_expect_success 'after all of them a normal job and a real import still work' '
	mkdir -p "$DATA/src" && printf "hello\n" >"$DATA/src/a.txt" &&
	cat >"$DATA/export.json" <<-JSON &&
	{"vertices": {"src": {"op": "local", "path": "$DATA/src"},
	  "pkg": {"op": "file", "base": "src", "actions": [{"mkfile": {"path": "V", "data": "1"}}]}},
	 "outputs": ["pkg"], "export": {"mode": "max"}}
	JSON
	N=$(sfs_run "$DATA/export.json") &&
	cp -r "$MNT/jobs/$N/export" "$H/real" &&
	sed "s|\"export\": {\"mode\": \"max\"}|\"cache_from\": [\"$H/real\"]|" \
		"$DATA/export.json" >"$DATA/from.json" &&
	M=$(sfs_run "$DATA/from.json") &&
	sfs_cat "$MNT/jobs/$M/status" >st &&
	num=$(grep -m1 " importing $H/real" st | cut -d" " -f1) &&
	grep -q "^$num DONE " st &&
	expect_eq CACHED "$(sfs_final "$M" pkg)"
'

test_expect_success 'the daemon stayed small: its peak resident memory is under 1 GiB' '
	hwm=$(awk "/^VmHWM:/ { print \$2 }" "/proc/$(cat "$PIDFILE")/status") &&
	say "daemon VmHWM ${hwm} kB" &&
	test "$hwm" -lt 1048576
'

test_done
