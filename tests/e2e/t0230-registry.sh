#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='a registry as a shared cache: machine A pushes with export.to, machine B
builds from it with cache_from, fetching only the layers it loads; TLS, htpasswd auth,
concurrent pushes to one tag'
. "$(dirname "$0")/lib.sh"

# The registry: Debian's docker-registry on 127.0.0.1 (registry.sh), over TLS with a
# self-signed certificate and behind htpasswd auth for one user made here.
. "$SFS_E2E_DIR/registry.sh"
PASSWORD=pw-$RANDOM$RANDOM-secret
REG_TLS=1 REG_USER=ci REG_PASSWORD=$PASSWORD registry_start || say "# the registry did not start"

# The daemons read their credentials from the containers auth file.
mkdir -p "$DATA/auth"
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG" "$(printf 'ci:%s' "$PASSWORD" | base64 -w0)" \
	>"$DATA/auth/auth.json"
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG" "$(printf 'ci:wrong-%s' "$PASSWORD" | base64 -w0)" \
	>"$DATA/auth/bad.json"
export REGISTRY_AUTH_FILE=$DATA/auth/auth.json

# on M CMD...: CMD against machine M's mount (A is lib.sh's own; B and C beside it).
# All daemons append to one $LOG, which test_done checks for sanitizer reports.
on() {
	local m=$1
	shift
	if [ "$m" = A ]; then
		"$@"
	else
		STATE=$SCRATCH/state$m MNT=$SCRATCH/mnt$m PIDFILE=$SCRATCH/daemon$m.pid "$@"
	fi
}
mkdir -p "$SCRATCH/mntB" "$SCRATCH/mntC"

t_cleanup() {
	local rc=$?
	on B sfs_umount
	on C sfs_umount
	registry_stop
	(exit "$rc")
	sfs_cleanup
}
trap t_cleanup EXIT

OPTS=(-o "registry_ca=$REG_CA" -o registry_timeout=20s)
sfs_mount "${OPTS[@]}" || say "# mount A failed"
on B sfs_mount "${OPTS[@]}" || say "# mount B failed"

mkdir -p "$DATA/src"
printf 'hello\n' >"$DATA/src/a.txt"
# spec TAG KEYWORD [DATA] [OUTPUT]: the build; KEYWORD is export (push to TAG) or
# from (cache_from TAG).
spec() {
	local tail
	if [ "$2" = export ]; then
		tail="\"export\": {\"mode\": \"max\", \"to\": \"docker://$REG/ci/cache:$1\"}"
	else
		tail="\"cache_from\": [\"docker://$REG/ci/cache:$1\"]"
	fi
	cat <<JSON
{"vertices": {"src": {"op": "local", "path": "$DATA/src"},
  "up": {"op": "exec", "args": ["sh", "-c", "tr a-z A-Z < in/a.txt > out/A.txt; head -c 300000 /dev/urandom > out/noise"],
         "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]},
  "pkg": {"op": "file", "base": "up", "actions": [{"mkfile": {"path": "V", "data": "${3:-1}"}}]}},
 "outputs": ["${4:-pkg}"], $tail}
JSON
}

# reg_count MARK WORD: requests of method WORD since MARK.
reg_count() {
	tail -n +"$(($1 + 1))" "$REG_LOG" | grep -c "\"$2 /v2/ci/cache/" || true
}
# manifest TAG: the manifest the registry holds for TAG (with the test's credentials).
manifest() {
	curl -sf --cacert "$REG_CA" -u "ci:$PASSWORD" \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"https://$REG/v2/ci/cache/manifests/$1"
}
manifest_of() {
	curl -sf --cacert "$REG_CA" -u "ci:$PASSWORD" \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"https://$REG/v2/ci/$1/manifests/$2"
}
# layers_of_manifest: the layer digests of the manifest on stdin.
layers_of_manifest() {
	python3 -c 'import json, sys; [print(l["digest"]) for l in json.load(sys.stdin)["layers"]]'
}

test_expect_success 'machine A builds and pushes its cache export to the registry' '
	spec main export >a.json &&
	N=$(sfs_run a.json) &&
	echo "$N" >"$SCRATCH/a.job" &&
	sfs_cat "$MNT/jobs/$N/status" >st &&
	expect_contains "exporting cache to docker://$REG/ci/cache:main" "$(cat st)" &&
	grep -Eq "push sha256:[0-9a-f]{64} ([0-9]+) / \1 bytes done" st &&
	grep -q "\"statuses\"" "$MNT/jobs/$N/status.json" &&
	manifest main >m.json &&
	python3 -c "
import json; m = json.load(open(\"m.json\"))
assert m[\"config\"][\"mediaType\"] == \"application/vnd.buildkit.cacheconfig.v0\", m
assert len(m[\"layers\"]) == 2, m" &&
	sfs_cat "$MNT/jobs/$N/result" >"$SCRATCH/a.result"
'

test_expect_success 'a second push of the same export uploads no blob again' '
	spec main export >a.json &&
	mark=$(registry_lines) &&
	N=$(sfs_run a.json) &&
	expect_eq 0 "$(reg_count "$mark" POST)" &&
	expect_eq 0 "$(reg_count "$mark" PATCH)" &&
	test "$(reg_count "$mark" HEAD)" -ge 3 &&
	expect_eq 1 "$(reg_count "$mark" PUT)"
'

test_expect_success 'machine B builds from the registry: nothing executed, identical results' '
	spec main from >b.json &&
	mark=$(registry_lines) &&
	N=$(on B sfs_run b.json) &&
	expect_eq CACHED "$(on B sfs_final "$N" up)" &&
	expect_eq CACHED "$(on B sfs_final "$N" pkg)" &&
	expect_contains "importing docker://$REG/ci/cache:main" "$(on B sfs_cat "$SCRATCH/mntB/jobs/$N/status")" &&
	expect_eq "$(cat "$SCRATCH/a.result")" "$(sfs_cat "$SCRATCH/mntB/jobs/$N/result")" &&
	expect_eq HELLO "$(cat "$SCRATCH/mntB/jobs/$N/outputs/pkg/A.txt")" &&
	registry_gets "$mark" ci/cache >gets &&
	test -z "$(sort gets | uniq -d)" &&
	manifest main >m.json &&
	cfg=$(python3 -c "import json; print(json.load(open(\"m.json\"))[\"config\"][\"digest\"])") &&
	{ echo "$cfg"; layers_of_manifest <m.json; } | sort >want &&
	sort gets >got &&
	expect_eq "$(cat want)" "$(cat got)"
'

test_expect_success 'B pushes to another repository: the layers are mounted from cache_from' '
	spec main from | sed "s|\"cache_from\"|\"export\": {\"mode\": \"max\", \"to\": \"docker://$REG/ci/branch:b1\"}, \"cache_from\"|" >b1.json &&
	mark=$(registry_lines) &&
	N=$(on B sfs_run b1.json) &&
	tail -n +"$((mark + 1))" "$REG_LOG" >log &&
	mounted=$(grep -c "\"POST /v2/ci/branch/blobs/uploads/?mount=sha256:[0-9a-f]*&from=ci/cache HTTP/[0-9.]*\" 201" log || true) &&
	test "$mounted" -ge 2 &&
	test "$(grep -c "\"PATCH /v2/ci/branch/" log || true)" -le 1 &&
	manifest_of branch b1 >/dev/null
'

test_expect_success 'a build that needs only the exec result fetches only its layer' '
	on C sfs_mount "${OPTS[@]}" &&
	spec main from 1 up >c.json &&
	mark=$(registry_lines) &&
	N=$(on C sfs_run c.json) &&
	expect_eq CACHED "$(on C sfs_final "$N" up)" &&
	expect_eq HELLO "$(cat "$SCRATCH/mntC/jobs/$N/outputs/up/A.txt")" &&
	manifest main >m.json &&
	registry_gets "$mark" ci/cache >gets &&
	layers_of_manifest <m.json | sort >all &&
	expect_eq 2 "$(wc -l <all)" &&
	expect_eq 1 "$(sort gets | comm -12 - all | wc -l)" &&
	expect_eq 2 "$(wc -l <gets)" &&
	on C sfs_umount
'

test_expect_success 'a missing tag or an unreachable registry is a warning; the job builds' '
	spec no-such-tag from >missing.json &&
	N=$(on B sfs_run missing.json) &&
	sfs_cat "$SCRATCH/mntB/jobs/$N/status" >st &&
	grep -q "WARNING: cache_from docker://$REG/ci/cache:no-such-tag: .*not found.*building without it" st &&
	sed "s|$REG|127.0.0.1:1|" missing.json >away.json &&
	N=$(on B sfs_run away.json) &&
	sfs_cat "$SCRATCH/mntB/jobs/$N/status" >st &&
	grep -q "WARNING: cache_from docker://127.0.0.1:1/.*building without it" st
'

test_expect_success 'without the registry CA the push fails with a certificate error' '
	on C sfs_mount &&
	spec tls export 2 >tls.json &&
	N=$(on C sfs_submit tls.json) &&
	expect_eq failed "$(on C sfs_wait "$N")" &&
	err=$(sfs_cat "$SCRATCH/mntC/jobs/$N/error") &&
	expect_contains "pushing to docker://$REG/ci/cache:tls" "$err" &&
	expect_contains "certificate" "$err" &&
	on C sfs_umount
'

test_expect_success 'a wrong password: authentication refused, the password written nowhere' '
	REGISTRY_AUTH_FILE=$DATA/auth/bad.json on C sfs_mount "${OPTS[@]}" &&
	spec auth export 3 >auth.json &&
	N=$(on C sfs_submit auth.json) &&
	expect_eq failed "$(on C sfs_wait "$N")" &&
	err=$(sfs_cat "$SCRATCH/mntC/jobs/$N/error") &&
	expect_contains "authentication required or refused (HTTP 401)" "$err" &&
	on C sfs_cat "$SCRATCH/mntC/jobs/$N/status" "$SCRATCH/mntC/jobs/$N/status.json" >texts &&
	on C sfs_umount &&
	for m in A B; do on $m sfs_cat "$SCRATCH/mnt$m/jobs/1/status" "$SCRATCH/mnt$m/jobs/1/status.json" >>texts; done &&
	test_must_fail grep -rqa -e "$PASSWORD" texts "$LOG" "$STATE" "$SCRATCH/stateB" "$SCRATCH/stateC" &&
	b64=$(printf "ci:wrong-%s" "$PASSWORD" | base64 -w0) &&
	test_must_fail grep -rqa -e "$b64" -e "wrong-$PASSWORD" texts "$LOG" "$SCRATCH/stateC"
'

test_expect_success 'A and B push different exports to one tag at once: it names one whole export' '
	spec shared export from-A >pa.json &&
	spec shared export from-B >pb.json &&
	NA=$(sfs_submit pa.json) &&
	NB=$(on B sfs_submit pb.json) &&
	expect_eq done "$(sfs_wait "$NA")" &&
	expect_eq done "$(on B sfs_wait "$NB")" &&
	manifest shared >m.json &&
	got=sha256:$(sha256sum <m.json | cut -d" " -f1) &&
	python3 - "$MNT/jobs/$NA/export" "$SCRATCH/mntB/jobs/$NB/export" >which <<-PY &&
	import json, sys
	for name, d in zip("AB", sys.argv[1:]):
	    (m,) = json.load(open(d + "/index.json"))["manifests"]
	    if m["digest"] == "$got":
	        print(name)
	PY
	w=$(cat which) &&
	case $w in A|B) ;; *) echo "the tag names neither export: $got"; false ;; esac &&
	for d in $(layers_of_manifest <m.json) $(python3 -c "import json; print(json.load(open(\"m.json\"))[\"config\"][\"digest\"])"); do
		curl -sf --cacert "$REG_CA" -u "ci:$PASSWORD" "https://$REG/v2/ci/cache/blobs/$d" |
			sha256sum | grep -q "^${d#sha256:} " || { echo "blob $d missing or wrong"; false; }
	done &&
	echo "$w" >"$SCRATCH/winner"
'

test_expect_success 'a third machine imports the tag: the winner'\''s build is all cached' '
	w=$(cat "$SCRATCH/winner") &&
	rm -rf "$SCRATCH/stateC" &&
	on C sfs_mount "${OPTS[@]}" &&
	spec shared from "from-$w" >pc.json &&
	N=$(on C sfs_run pc.json) &&
	expect_eq CACHED "$(on C sfs_final "$N" up)" &&
	expect_eq CACHED "$(on C sfs_final "$N" pkg)" &&
	expect_eq "from-$w" "$(cat "$SCRATCH/mntC/jobs/$N/outputs/pkg/V")" &&
	on C sfs_umount
'

test_expect_success 'a tag that moves is read again by the next job of the same mount' '
	spec moving export move-1 >m1.json && sfs_run m1.json >/dev/null &&
	spec moving from move-1 >f1.json && N=$(on B sfs_run f1.json) &&
	expect_eq CACHED "$(on B sfs_final "$N" pkg)" &&
	spec moving export move-2 >m2.json && sfs_run m2.json >/dev/null &&
	spec moving from move-2 >f2.json && N=$(on B sfs_run f2.json) &&
	expect_eq CACHED "$(on B sfs_final "$N" pkg)" &&
	expect_eq move-2 "$(cat "$SCRATCH/mntB/jobs/$N/outputs/pkg/V")"
'

test_expect_success 'a bad reference in the spec is EINVAL with the reason' '
	printf "{\"vertices\": {\"f\": {\"op\": \"file\", \"actions\": [{\"mkfile\": {\"path\": \"x\", \"data\": \"1\"}}]}}, \"outputs\": [\"f\"], \"export\": {\"to\": \"docker://Upper/x\"}}" >bad.json &&
	N=$(sfs_new) &&
	test_must_fail sfs_write bad.json "$MNT/jobs/$N/spec" 2>err &&
	expect_contains "registry host" "$(sfs_cat "$MNT/jobs/$N/error")" &&
	sed "s|docker://Upper/x|docker://$REG/ci/cache:x\", \"form\": \"manifest-list|" bad.json >list.json &&
	N=$(sfs_new) &&
	test_must_fail sfs_write list.json "$MNT/jobs/$N/spec" 2>err &&
	expect_contains "image" "$(sfs_cat "$MNT/jobs/$N/error")"
'

on B sfs_umount
test_done
