#!/bin/bash
# bench/image.sh — the cost of an `image` op against extracting the same layer by hand.
#
# A tree of BENCH_IMAGE_FILES (default 10,000) files of random data, BENCH_IMAGE_MB
# (default 256) MiB in all, 100 to a directory, is made into an OCI layout of one gzip
# layer by umoci (no network).  Then:
#   (1) `tar -xzf` of that layer blob into an empty dir (warm page cache): the floor;
#   (2) a job of one `image` vertex from `oci:` on a fresh STATE_DIR (cold: the layout's
#       manifest and layer are checked against their digests, the layer applied, every
#       file stored in the content store);
#   (3) the same job again (cached: the tag is resolved, nothing is read);
#   (4) again after a remount.
. "$(dirname "$0")/lib.sh"

FILES=${BENCH_IMAGE_FILES:-10000}
MB=${BENCH_IMAGE_MB:-256}
B=image
LAY=$DATA/layout
BUNDLE=$SCRATCH/bundle

make_image() {
	local kb=$((MB * 1024 / FILES))
	[ "$kb" -ge 1 ] || kb=1
	umoci init --layout "$LAY" && umoci new --image "$LAY:v1" &&
		umoci unpack --rootless --image "$LAY:v1" "$BUNDLE" >/dev/null || return 1
	python3 - "$BUNDLE/rootfs" "$FILES" "$kb" <<'PY'
import os, sys
root, n, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(kb * 1024))
PY
	umoci repack --image "$LAY:v1" "$BUNDLE" && rm -rf "$BUNDLE"
}

# layer_blob: the path of the image's one layer.
layer_blob() {
	python3 -c 'import json, sys
ix = json.load(open(sys.argv[1] + "/index.json"))
m = json.load(open(sys.argv[1] + "/blobs/sha256/" + ix["manifests"][0]["digest"][7:]))
print(sys.argv[1] + "/blobs/sha256/" + m["layers"][-1]["digest"][7:])' "$LAY"
}

untar() {
	rm -rf "$SCRATCH/untar" && mkdir "$SCRATCH/untar" && tar -xzf "$1" -C "$SCRATCH/untar"
}

image_job() {
	bench_run_spec "$DATA/image.json" >/dev/null
}

echo "== image: an oci: image of $FILES files, $MB MiB (one gzip layer), against tar -xzf"
make_image || exit 1
blob=$(layer_blob)
cat "$blob" >/dev/null
tar_ms=$(time_ms untar "$blob")
rm -rf "$SCRATCH/untar"
printf '{"vertices":{"img":{"op":"image","ref":"oci:%s:v1"}},"outputs":["img"]}\n' "$LAY" \
	>"$DATA/image.json"
bench_mount || exit 1
cold=$(time_ms image_job) || exit 1
again=$(time_ms image_job) || exit 1
bench_umount
bench_mount || exit 1
remount=$(time_ms image_job) || exit 1
bench_umount
report $B "layer size (MiB)" "$(awk -v b="$(stat -c %s "$blob")" 'BEGIN { printf "%.1f\n", b / 1048576 }')"
report $B "tar -xzf of the layer (ms)" "$tar_ms"
report $B "image op, cold (ms)" "$cold"
report $B "image op, cold / tar -xzf" "$(ratio "$cold" "$tar_ms")"
report $B "image op, cached, same daemon (ms)" "$again"
report $B "image op, cached, after remount (ms)" "$remount"
