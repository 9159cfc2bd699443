#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='a hostile registry as cache_from: wrong digests, truncated and endless
bodies, a 10 GiB Content-Length, redirects, slow drips give clear errors and warnings,
the build still succeeds, the store stays consistent, memory and time stay bounded;
the Bearer token flow and a legitimate redirect to another host work'
. "$(dirname "$0")/lib.sh"

SRV_LOG=$SCRATCH/hostile.log
: >"$SRV_LOG"
SRV_PID=

t_cleanup() {
	local rc=$?
	[ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
	(exit "$rc")
	sfs_cleanup
}
trap t_cleanup EXIT

mkdir -p "$DATA/src"
printf 'hello\n' >"$DATA/src/a.txt"
# spec [TAIL]: the build (an exec and a file op over a local source), with TAIL
# (export or cache_from) after its outputs.
spec() {
	cat <<JSON
{"vertices": {"src": {"op": "local", "path": "$DATA/src"},
  "up": {"op": "exec", "args": ["sh", "-c", "tr a-z A-Z < in/a.txt > out/A.txt; head -c 200000 /dev/zero > out/zeros"],
         "mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]},
  "pkg": {"op": "file", "base": "up", "actions": [{"mkfile": {"path": "V", "data": "1"}}]}},
 "outputs": ["pkg"]$1}
JSON
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'an export to serve, and the hostile registry serving it' '
	spec ", \"export\": {\"mode\": \"max\"}" >export.json &&
	N=$(sfs_run export.json) &&
	cp -r "$MNT/jobs/$N/export" "$DATA/layout"
'
python3 "$SFS_E2E_DIR/hostile-registry.py" "$DATA/layout" "$SCRATCH/port" "$SRV_LOG" \
	>"$SCRATCH/hostile.out" 2>&1 &
SRV_PID=$!
sfs_until 20 test -s "$SCRATCH/port" || say "# the hostile registry did not start"
PORT=$(cat "$SCRATCH/port" 2>/dev/null)
REG=127.0.0.1:$PORT
mkdir -p "$DATA/auth"
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG" "$(printf user:pw | base64 -w0)" >"$DATA/auth/auth.json"
export REGISTRY_AUTH_FILE=$DATA/auth/auth.json

# fresh: a new STATE_DIR on the same mountpoint, speaking plain http to the test server.
fresh() {
	sfs_umount && rm -rf "$STATE" &&
		sfs_mount -o "insecure_registries=$REG" -o registry_timeout=2s
}
# from SCENARIO: run the build with cache_from the scenario's repository, print its number.
from() {
	spec ", \"cache_from\": [\"docker://$REG/$1/cache:latest\"]" >"from-$1.json" &&
		sfs_run "from-$1.json"
}
# store_ok: every blob of the store is named by its digest; no partial download is left.
store_ok() {
	local f bad=0
	for f in "$STATE"/blobs/sha256/*; do
		[ "$(sha256sum <"$f" | cut -d" " -f1)" = "$(basename "$f")" ] || { echo "bad blob $f"; bad=1; }
	done
	if ls "$STATE/tmp" | grep -q '^pull-'; then
		echo "a partial download is left in tmp/"
		bad=1
	fi
	return $bad
}
# loaded_nothing N WORD: job N executed up and pkg, each after a failed load saying WORD.
loaded_nothing() {
	local st
	st=$(sfs_cat "$MNT/jobs/$1/status") &&
		expect_eq DONE "$(sfs_final "$1" up)" &&
		expect_eq DONE "$(sfs_final "$1" pkg)" &&
		expect_eq HELLO "$(cat "$MNT/jobs/$1/outputs/pkg/A.txt")" &&
		printf '%s\n' "$st" | grep "cache load of record .* failed" >loads &&
		grep -q -e "$2" loads || { cat loads; echo "no failed load says: $2"; return 1; }
	head -n 1 loads
}
# warned N WORD: job N built without the source, warning WORD.
warned() {
	local st
	st=$(sfs_cat "$MNT/jobs/$1/status") &&
		expect_eq DONE "$(sfs_final "$1" up)" &&
		printf '%s\n' "$st" | grep "WARNING: cache_from docker://$REG/" >warn &&
		grep -q -e "$2" warn || { printf '%s\n' "$st"; echo "no warning says: $2"; return 1; }
	cat warn
}

test_expect_success 'sanity: an honest answer gives a fully cached build' '
	fresh && N=$(from honest) &&
	expect_eq CACHED "$(sfs_final "$N" pkg)" &&
	grep -q "GET /v2/honest/cache/manifests/latest host=$REG auth=yes" "$SRV_LOG"
'

test_expect_success 'the registry token flow: a Bearer token from the realm, asked with the credentials' '
	fresh && N=$(from token) &&
	expect_eq CACHED "$(sfs_final "$N" pkg)" &&
	grep -q "GET /token?service=hostile&scope=repository%3Atoken%2Fcache%3Apull host=$REG auth=yes" "$SRV_LOG"
'

test_expect_success 'a redirect to another host is followed without the credentials, the blob verified' '
	fresh && N=$(from redirect) &&
	expect_eq CACHED "$(sfs_final "$N" pkg)" &&
	grep -q "GET /v2/redirected/cache/blobs/sha256:[0-9a-f]* host=localhost:$PORT auth=no" "$SRV_LOG" &&
	test_must_fail grep -q "/v2/redirected/.*auth=yes" "$SRV_LOG" &&
	store_ok
'

test_expect_success 'a missing manifest is a warning' '
	fresh && N=$(from nomanifest) && warned "$N" "not found"
'

test_expect_success 'a cache config that does not match its digest is a warning' '
	fresh && N=$(from badconfig) && warned "$N" "does not match its digest" && store_ok
'

test_expect_success 'a manifest announced as 10 GiB is refused before its body' '
	fresh && N=$(from bigmanifest) && warned "$N" "longer than the [0-9]* bytes allowed"
'

test_expect_success 'a manifest dripped a byte a second times out (registry_timeout)' '
	fresh && N=$(from dripmanifest) && warned "$N" "timed out"
'

test_expect_success 'a layer with wrong content: the load fails, nothing stored, the build runs' '
	fresh && N=$(from badlayer) && loaded_nothing "$N" "does not match its digest" && store_ok
'

test_expect_success 'a truncated layer: the load fails, nothing stored' '
	fresh && N=$(from truncated) && loaded_nothing "$N" "registry $REG/truncated/cache" && store_ok
'

test_expect_success 'a layer announced as 10 GiB is refused; memory stays bounded' '
	fresh && N=$(from biglayer) && loaded_nothing "$N" "longer than the [0-9]* bytes allowed" && store_ok &&
	hwm=$(awk "/^VmHWM/ {print \$2}" "/proc/$(sfs_daemon_pid)/status") &&
	echo "daemon peak RSS: $hwm kB" &&
	test "$hwm" -lt 2000000
'

test_expect_success 'an endless layer body stops at the size its descriptor gives' '
	fresh && N=$(from longlayer) && loaded_nothing "$N" "longer than the [0-9]* bytes allowed" && store_ok
'

test_expect_success 'a layer dripped a byte a second times out' '
	fresh && N=$(from driplayer) && loaded_nothing "$N" "timed out" && store_ok
'

test_expect_success 'a redirect to a file: URL is refused' '
	fresh && N=$(from fileredirect) && loaded_nothing "$N" "registry $REG/fileredirect/cache" && store_ok &&
	test_must_fail grep -rqa "root:x:0:0" "$STATE/blobs"
'

test_expect_success 'a push whose chunk fails half-written resumes where the registry stands' '
	fresh &&
	spec ", \"export\": {\"mode\": \"max\", \"to\": \"docker://$REG/flaky/cache:t\"}" >push.json &&
	N=$(sfs_run push.json) &&
	grep -q "manifest t accepted, 3 blobs" "$SRV_LOG" &&
	test "$(grep -c "^PATCH /v2/flaky/cache/blobs/uploads/" "$SRV_LOG")" -ge 6 &&
	test "$(grep -c "^GET /v2/flaky/cache/blobs/uploads/" "$SRV_LOG")" -ge 3 &&
	expect_contains "resuming the upload" "$(cat "$LOG")"
'

test_done
