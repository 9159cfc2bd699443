#!/bin/bash
# shellcheck disable=SC2015,SC2016,SC2034,SC1091,SC2317
test_description='the image op: an OCI layout'"'"'s root filesystem as a tree, and as an exec'"'"'s rootfs'
. "$(dirname "$0")/lib.sh"

. "$SFS_E2E_DIR/registry.sh"

for tool in umoci skopeo docker-registry curl bwrap busybox python3 setpriv useradd; do
	if ! command -v "$tool" >/dev/null; then
		say "# $tool is missing: apt-get install -y umoci skopeo docker-registry curl bubblewrap busybox-static python3 util-linux passwd" >&2
	fi
done

# on_b CMD...: CMD against a second machine: a mount of its own, STATE_DIR of its own.
on_b() {
	STATE=$SCRATCH/stateB MNT=$SCRATCH/mntB PIDFILE=$SCRATCH/daemonB.pid "$@"
}
mkdir -p "$SCRATCH/mntB"

t_cleanup() {
	local rc=$?
	on_b sfs_umount
	registry_stop
	(exit "$rc")
	sfs_cleanup
}
trap t_cleanup EXIT

# relayer TAG: the bundle unpacked again from TAG, so that the next repack adds a layer
# on top of TAG's (umoci diffs against what the bundle was unpacked from).
relayer() {
	rm -rf "$BUNDLE" && umoci unpack --rootless --image "$LAY:$1" "$BUNDLE" >/dev/null
}

# A small image without network: busybox-static and its sh link, in an OCI layout
# made by umoci (a gzip layer per repack).
LAY=$DATA/layout
BUNDLE=$SCRATCH/bundle
umoci init --layout "$LAY" &&
	umoci new --image "$LAY:v1" &&
	umoci unpack --rootless --image "$LAY:v1" "$BUNDLE" >/dev/null &&
	mkdir -p "$BUNDLE/rootfs/bin" "$BUNDLE/rootfs/etc" &&
	cp "$(command -v busybox)" "$BUNDLE/rootfs/bin/busybox" &&
	ln -s busybox "$BUNDLE/rootfs/bin/sh" &&
	echo one >"$BUNDLE/rootfs/etc/greeting" &&
	echo doomed >"$BUNDLE/rootfs/etc/doomed" &&
	chmod 0600 "$BUNDLE/rootfs/etc/doomed" &&
	umoci repack --image "$LAY:v1" "$BUNDLE" &&
	relayer v1 ||
	say "# building the layout failed; every case below will fail"

# tag_digest TAG: the manifest digest index.json gives TAG.
tag_digest() {
	python3 -c 'import json, sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]:
        print(m["digest"])' "$LAY/index.json" "$1"
}

# layers_of TAG: the layer digests of TAG's manifest in the layout, base first.
layers_of() {
	python3 -c 'import json, sys
for l in json.load(open(sys.argv[1]))["layers"]:
    print(l["digest"])' "$LAY/blobs/sha256/$(tag_digest "$1" | cut -c8-)"
}

# push TAG: the layout's TAG to the registry as img/busybox:TAG.
push() {
	skopeo copy --quiet --dest-tls-verify=false "oci:$LAY:$1" "docker://$REG/img/busybox:$1"
}

# repack TAG GREETING: the bundle with /etc/greeting changed, as one more layer, at TAG.
repack() {
	echo "$2" >"$BUNDLE/rootfs/etc/greeting" &&
		umoci repack --image "$LAY:$1" "$BUNDLE" &&
		relayer "$1"
}

# image_spec NAME REF [TOP] [OUTPUTS]: an image vertex and an exec on it as its rootfs;
# TOP is more top-level members, OUTPUTS the job's (default both).
image_spec() {
	local outputs='"run", "img"'
	[ $# -lt 4 ] || outputs=$4
	cat >"$DATA/$1.json" <<JSON
{"vertices": {"img": {"op": "image", "ref": "$2"},
  "run": {"op": "exec", "args": ["/bin/busybox", "sh", "-c",
    "cat /etc/greeting >out/greeting; busybox ls /etc >out/etc; echo \$0 from \$(busybox uname -s) >out/who"],
    "env": {"PATH": "/bin"}, "rootfs": "img",
    "mounts": [{"dest": "out", "output": true}]}},
 "outputs": [$outputs]${3:+, $3}}
JSON
}

registry_start || say "# the registry did not start; the docker:// cases will fail"
USERNAME=sfs-t0240
id -u "$USERNAME" >/dev/null 2>&1 || useradd -M -N -s /bin/sh "$USERNAME" 2>/dev/null
U=$(id -u "$USERNAME" 2>/dev/null || echo 65534)
G=$(id -g "$USERNAME" 2>/dev/null || echo 65534)
chmod 755 "$SCRATCH" "$DATA"

# submit_as_user SPEC: submits SPEC (read by root) as the test's user; prints the job.
submit_as_user() {
	setpriv --reuid "$U" --regid "$G" --clear-groups -- \
		sh -c 'cat >"$1/jobs/new" && basename "$(readlink "$1/jobs/latest")"' sh "$MNT" <"$1"
}

sfs_mount -o sandbox=bwrap,allow_other -o "insecure_registries=$REG" || say "# mount failed; every case below will fail"

image_spec v1 "oci:$LAY:v1"
test_expect_success 'an image from an oci: layout: its files, modes kept, owners dropped' '
	N=$(sfs_run "$DATA/v1.json") &&
	echo "$N" >"$SCRATCH/first" &&
	img=$(sfs_output "$N" img) &&
	cmp "$(command -v busybox)" "$img/bin/busybox" &&
	expect_eq busybox "$(readlink "$img/bin/sh")" &&
	expect_file_eq one "$img/etc/greeting" &&
	expect_mode 600 "$img/etc/doomed" &&
	expect_eq "0 0" "$(stat -c "%u %g" "$img/etc/greeting")"
'

test_expect_success 'an exec whose rootfs is the image runs its busybox sh' '
	o=$(sfs_output "$(cat "$SCRATCH/first")" run) &&
	expect_file_eq one "$o/greeting" &&
	expect_eq "doomed greeting" "$(tr "\n" " " <"$o/etc" | sed "s/ $//")" &&
	expect_file_eq "sh from Linux" "$o/who"
'

test_expect_success 'the job resolves the tag to its digest when it starts (progress)' '
	N=$(cat "$SCRATCH/first") &&
	expect_contains "resolve oci:$LAY:v1@$(tag_digest v1)" "$(sfs_cat "$MNT/jobs/$N/status")" &&
	expect_eq DONE "$(sfs_final "$N" img)" &&
	expect_eq DONE "$(sfs_final "$N" run)"
'

test_expect_success 'the same tag again is cached: resolved, never unpacked nor run again' '
	N=$(cat "$SCRATCH/first") &&
	M=$(sfs_run "$DATA/v1.json") &&
	expect_eq "$(sfs_cat "$MNT/jobs/$N/result")" "$(sfs_cat "$MNT/jobs/$M/result")" &&
	expect_contains "resolve oci:$LAY:v1@$(tag_digest v1)" "$(sfs_cat "$MNT/jobs/$M/status")" &&
	expect_eq CACHED "$(sfs_final "$M" run)" &&
	expect_eq cached "$(sfs_cat "$(sfs_vertex "$M" run)/state")" &&
	expect_eq cached "$(sfs_cat "$(sfs_vertex "$M" img)/state")"
'

test_expect_success 'a moved tag is a clean miss: repacked with a change (a whiteout too)' '
	old=$(tag_digest v1) &&
	echo two >"$BUNDLE/rootfs/etc/greeting" &&
	rm "$BUNDLE/rootfs/etc/doomed" &&
	umoci repack --image "$LAY:v1" "$BUNDLE" &&
	relayer v1 &&
	new=$(tag_digest v1) &&
	expect_eq 2 "$(layers_of v1 | wc -l)" &&
	test "$old" != "$new" &&
	N=$(sfs_run "$DATA/v1.json") &&
	expect_contains "resolve oci:$LAY:v1@$new" "$(sfs_cat "$MNT/jobs/$N/status")" &&
	expect_eq DONE "$(sfs_final "$N" run)" &&
	expect_contains "[img] executed: no record for this image (its manifest'"'"'s key)" \
		"$(sfs_cat "$MNT/jobs/$N/why")" &&
	o=$(sfs_output "$N" run) &&
	expect_file_eq two "$o/greeting" &&
	expect_file_eq greeting "$o/etc" &&
	test ! -e "$(sfs_output "$N" img)/etc/doomed"
'

test_expect_success 'two names of one image are one result (the digest is the key)' '
	umoci tag --image "$LAY:v1" v1-again &&
	image_spec again "oci:$LAY:v1-again" &&
	N=$(sfs_run "$DATA/again.json") &&
	expect_eq CACHED "$(sfs_final "$N" run)" &&
	expect_file_eq two "$(sfs_output "$N" run)/greeting"
'

test_expect_success 'docker://: the same image pushed to a registry is the same result, nothing fetched' '
	push v1 &&
	image_spec reg-v1 "docker://$REG/img/busybox:v1" &&
	mark=$(registry_lines) &&
	N=$(sfs_run "$DATA/reg-v1.json") &&
	expect_contains "resolve docker://$REG/img/busybox:v1@$(tag_digest v1)" \
		"$(sfs_cat "$MNT/jobs/$N/status")" &&
	expect_eq CACHED "$(sfs_final "$N" run)" &&
	expect_eq "" "$(registry_gets "$mark" img/busybox)"
'

test_expect_success 'docker://: a new image is pulled, each layer once with its bytes in progress, verified, and run' '
	repack v3 three &&
	push v3 &&
	image_spec reg-v3 "docker://$REG/img/busybox:v3" &&
	mark=$(registry_lines) &&
	N=$(sfs_run "$DATA/reg-v3.json") &&
	expect_eq DONE "$(sfs_final "$N" run)" &&
	expect_file_eq three "$(sfs_output "$N" run)/greeting" &&
	status=$(sfs_cat "$MNT/jobs/$N/status") &&
	for l in $(layers_of v3); do
		printf "%s\n" "$status" | grep -Eq "pull $l ([0-9]+) / \1 bytes done" || {
			say "# no completed pull status of $l" >&2
			return 1
		}
	done &&
	expect_eq "$(layers_of v3 | sort)" "$(registry_gets "$mark" img/busybox | sort)"
'

test_expect_success 'docker://: layers already in the store are not fetched again' '
	repack v4 four &&
	push v4 &&
	image_spec reg-v4 "docker://$REG/img/busybox:v4" &&
	expect_eq 4 "$(layers_of v4 | wc -l)" &&
	mark=$(registry_lines) &&
	N=$(sfs_run "$DATA/reg-v4.json") &&
	expect_file_eq four "$(sfs_output "$N" run)/greeting" &&
	expect_eq "$(layers_of v4 | tail -n 1)" "$(registry_gets "$mark" img/busybox)"
'

test_expect_success 'docker://: a digest reference is the image it names, cached' '
	image_spec reg-digest "docker://$REG/img/busybox@$(tag_digest v4)" &&
	mark=$(registry_lines) &&
	N=$(sfs_run "$DATA/reg-digest.json") &&
	expect_eq CACHED "$(sfs_final "$N" run)" &&
	expect_eq "" "$(registry_gets "$mark" img/busybox)"
'

test_expect_success 'docker://: a tag the registry does not have fails the job, naming it' '
	image_spec reg-nosuch "docker://$REG/img/busybox:nosuch" &&
	N=$(sfs_submit "$DATA/reg-nosuch.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "docker://$REG/img/busybox:nosuch" "$(sfs_cat "$MNT/jobs/$N/error")" &&
	expect_contains "not found" "$(sfs_cat "$MNT/jobs/$N/error")"
'

test_expect_success 'a second machine reuses image and exec from a registry cache, fetching no layer' '
	image_spec share-a "docker://$REG/img/busybox:v4" \
		"\"export\": {\"mode\": \"max\", \"to\": \"docker://$REG/cache/img:v4\"}" &&
	image_spec share-b "docker://$REG/img/busybox:v4" \
		"\"cache_from\": [\"docker://$REG/cache/img:v4\"]" "\"run\"" &&
	sfs_run "$DATA/share-a.json" >/dev/null &&
	on_b sfs_mount -o sandbox=bwrap -o "insecure_registries=$REG" &&
	mark=$(registry_lines) &&
	N=$(on_b sfs_run "$DATA/share-b.json") &&
	expect_eq CACHED "$(on_b sfs_final "$N" run)" &&
	expect_contains "resolve docker://$REG/img/busybox:v4@$(tag_digest v4)" \
		"$(on_b sfs_cat "$SCRATCH/mntB/jobs/$N/status")" &&
	expect_file_eq four "$SCRATCH/mntB/jobs/$N/outputs/run/greeting" &&
	expect_eq "" "$(registry_gets "$mark" img/busybox)"
'

test_expect_success 'an oci: layout is read as the submitter: a cached image is not served to who cannot read it' '
	N=$(submit_as_user "$DATA/v1.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "Permission denied" "$(sfs_cat "$MNT/jobs/$N/error")" &&
	cp -a "$LAY" "$DATA/readable" &&
	chmod -R a+rX "$DATA/readable" &&
	image_spec readable "oci:$DATA/readable:v1" &&
	N=$(submit_as_user "$DATA/readable.json") &&
	expect_eq done "$(sfs_wait "$N")" &&
	expect_eq CACHED "$(sfs_final "$N" run)"
'

# A layout written by hand (python's tarfile): a device node, a FIFO and a hardlink.
python3 - "$DATA/handmade" <<'PY' || say "# writing the hand-made layout failed"
import gzip, hashlib, io, json, os, sys, tarfile
root = sys.argv[1]
os.makedirs(root + "/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(root + "/blobs/sha256/" + d, "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    def add(name, kind, data=b"", link="", mode=0o644):
        i = tarfile.TarInfo(name); i.type = kind; i.mode = mode; i.uid = 1000; i.linkname = link
        i.size = len(data) if kind == tarfile.REGTYPE else 0
        if kind == tarfile.CHRTYPE: i.devmajor, i.devminor = 1, 3
        t.addfile(i, io.BytesIO(data) if i.size else None)
    add("dev", tarfile.DIRTYPE, mode=0o755)
    add("dev/null", tarfile.CHRTYPE, mode=0o666)
    add("dev/fifo", tarfile.FIFOTYPE)
    add("etc", tarfile.DIRTYPE, mode=0o755)
    add("etc/a", tarfile.REGTYPE, b"hard\n", mode=0o640)
    add("etc/b", tarfile.LNKTYPE, link="etc/a")
layer = blob(gzip.compress(buf.getvalue()))
layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
cfg = blob(json.dumps({"architecture": "amd64", "os": "linux"}).encode())
cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
man = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": cfg, "layers": [layer]}).encode())
man["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
man["annotations"] = {"org.opencontainers.image.ref.name": "dev"}
json.dump({"schemaVersion": 2, "manifests": [man]}, open(root + "/index.json", "w"))
open(root + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
PY

test_expect_success 'devices and FIFOs are dropped with a warning in progress, hardlinks are copies' '
	printf "{\"vertices\": {\"img\": {\"op\": \"image\", \"ref\": \"oci:%s:dev\"}}, \"outputs\": [\"img\"]}" \
		"$DATA/handmade" >"$DATA/handmade.json" &&
	N=$(sfs_run "$DATA/handmade.json") &&
	status=$(sfs_cat "$MNT/jobs/$N/status") &&
	expect_contains "warning: layer sha256:" "$status" &&
	expect_contains "\"dev/null\": not a dir, file or symlink; dropped" "$status" &&
	expect_contains "\"dev/fifo\": not a dir, file or symlink; dropped" "$status" &&
	img=$(sfs_output "$N" img) &&
	test -d "$img/dev" && test ! -e "$img/dev/null" && test ! -e "$img/dev/fifo" &&
	expect_file_eq hard "$img/etc/b" &&
	expect_mode 640 "$img/etc/b"
'

test_expect_success 'a tag the layout does not have fails the job, naming it' '
	image_spec nosuch "oci:$LAY:nosuch" &&
	N=$(sfs_submit "$DATA/nosuch.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "no image tagged \"nosuch\"" "$(sfs_cat "$MNT/jobs/$N/error")"
'

test_expect_success 'bad references and platforms are spec errors' '
	for ref in docker://ubuntu oci:relative/path "oci:$MNT/x:v1" nonsense; do
		printf "{\"vertices\": {\"i\": {\"op\": \"image\", \"ref\": \"%s\"}}, \"outputs\": [\"i\"]}" \
			"$ref" >"$DATA/bad.json" &&
		test_must_fail sfs_write "$DATA/bad.json" "$MNT/jobs/new" || return 1
	done &&
	printf "{\"vertices\": {\"i\": {\"op\": \"image\", \"ref\": \"oci:%s:v1\", \"platform\": \"amd64\"}}, \"outputs\": [\"i\"]}" \
		"$LAY" >"$DATA/badplat.json" &&
	test_must_fail sfs_write "$DATA/badplat.json" "$MNT/jobs/new"
'

test_expect_success 'a layer that does not match its digest fails the job, naming the blob' '
	repack corrupt five &&
	layer=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"layers\"][-1][\"digest\"])" \
		"$LAY/blobs/sha256/$(tag_digest corrupt | cut -c8-)") &&
	chmod u+w "$LAY/blobs/sha256/${layer#sha256:}" &&
	printf x | dd of="$LAY/blobs/sha256/${layer#sha256:}" bs=1 seek=100 conv=notrunc status=none &&
	image_spec corrupt "oci:$LAY:corrupt" &&
	N=$(sfs_submit "$DATA/corrupt.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "blob $layer does not match its digest" "$(sfs_cat "$MNT/jobs/$N/error")"
'

test_done
