#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='cache/keys/<id>/, cache/results/<hex>/, cache/stats (ctl and du: t0220); ls cache/keys with 100,000 keys'
. "$(dirname "$0")/lib.sh"

sfs_words
cat >"$DATA/graph.json" <<JSON
{
  "vertices": {
$(sfs_upper_vertices)
  },
  "outputs": ["up"]
}
JSON

RFC3339='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z'

# upper_key N: the cache key id of the exec of job N (from its vertex keys file)
upper_key() {
	local d
	d=$(sfs_vertex "$1" upper) && awk "NR == 1 { print \$2 }" "$d/keys"
}

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'cache/ holds ctl, du, exports, import, keys, results and stats' '
	expect_eq "ctl du exports import keys results stats" "$(ls "$MNT/cache" | tr "\n" " " | sed "s/ $//")" &&
	expect_eq "" "$(ls "$MNT/cache/keys")" &&
	expect_eq "" "$(ls "$MNT/cache/results")"
'

test_expect_success 'a key dir: digest, output, results with RFC 3339 times' '
	N=$(sfs_run "$DATA/graph.json") && echo "$N" >"$SCRATCH/job" &&
	id=$(upper_key "$N") && echo "$id" >"$SCRATCH/key" &&
	case $id in *:*) echo "id with a colon: $id"; exit 1;; esac &&
	test -d "$MNT/cache/keys/$id" &&
	expect_eq "backlinks digest links output results" "$(ls "$MNT/cache/keys/$id" | tr "\n" " " | sed "s/ $//")" &&
	grep -Eqx "sha256:[0-9a-f]{64}" "$MNT/cache/keys/$id/digest" &&
	expect_file_eq 0 "$MNT/cache/keys/$id/output" &&
	sfs_cat "$MNT/cache/keys/$id/results" >results &&
	expect_eq 1 "$(wc -l <results)" &&
	grep -Eqx "[0-9a-z]+ sha256:[0-9a-f]{64} $RFC3339" results &&
	res=$(awk "{ print \$2 }" results) &&
	expect_eq "up $res" "$(sfs_cat "$MNT/jobs/$N/result")"
'

test_expect_success 'links and backlinks: tab-separated input output digest selector key' '
	id=$(cat "$SCRATCH/key") &&
	sfs_cat "$MNT/cache/keys/$id/backlinks" >bl &&
	test -s bl &&
	awk -F "\t" "NF != 5 { exit 1 }" bl &&
	grep -Eq "^0	0	sha256:[0-9a-f]{64}	(-|sha256:[0-9a-f]{64})	[0-9a-z]+$" bl &&
	src=$(awk -F "\t" "NR == 1 { print \$5 }" bl) &&
	test -d "$MNT/cache/keys/$src" &&
	sfs_cat "$MNT/cache/keys/$src/links" >links &&
	awk -F "\t" -v id="$id" "\$5 == id { f = 1 } NF != 5 { exit 1 } END { exit !f }" links
'

test_expect_success 'root keys are named by their bare hex' '
	ls "$MNT/cache/keys" >names &&
	grep -Eqx "[0-9a-f]{64}" names &&
	test_must_fail ls "$MNT/cache/keys/sha256:$(grep -Ex "[0-9a-f]{64}" names | head -n 1)" &&
	test_must_fail ls "$MNT/cache/keys/nosuchkey"
'

test_expect_success 'a result dir: size, created, last_used, records, keys' '
	N=$(cat "$SCRATCH/job") && id=$(cat "$SCRATCH/key") &&
	hex=$(sed -n "s/^up sha256://p" "$MNT/jobs/$N/result") &&
	ls "$MNT/cache/results" | grep -qx "$hex" &&
	d=$MNT/cache/results/$hex &&
	expect_eq "created keys last_used records size" "$(ls "$d" | tr "\n" " " | sed "s/ $//")" &&
	expect_file_eq 8 "$d/size" &&
	grep -Eqx "$RFC3339" "$d/created" &&
	grep -Eqx "$RFC3339" "$d/last_used" &&
	rec=$(awk "{ print \$1 }" "$MNT/cache/keys/$id/results") &&
	grep -qx "$rec" "$d/records" &&
	grep -qx "$id" "$d/keys" &&
	test_must_fail ls "$MNT/cache/results/$(printf "%064d" 0)"
'

test_expect_success 'cache/ is read-only' '
	id=$(cat "$SCRATCH/key") &&
	test_must_fail sh -c "echo x >\"$MNT/cache/keys/$id/digest\"" &&
	test_must_fail sh -c "echo x >\"$MNT/cache/stats\"" &&
	test_must_fail mkdir "$MNT/cache/keys/new"
'

test_expect_success 'cache/stats counts what is on disk, keys, records, results, hits and misses' '
	sfs_cat "$MNT/cache/stats" >s1 &&
	for f in disk_bytes blobs blob_bytes db_bytes logs log_bytes keys records results result_bytes hits misses; do
		grep -Eq "^$f [0-9]+$" s1 || { echo "no $f"; cat s1; exit 1; }
	done &&
	get() { awk -v k="$1" "\$1 == k { print \$2 }" "$2"; } &&
	test "$(get blobs s1)" -gt 0 && test "$(get db_bytes s1)" -gt 0 &&
	expect_eq "$(ls "$MNT/cache/keys" | wc -l)" "$(get keys s1)" &&
	expect_eq "$(ls "$MNT/cache/results" | wc -l)" "$(get results s1)" &&
	expect_eq "$(( $(get blob_bytes s1) + $(get db_bytes s1) + $(get log_bytes s1) + $(get other_bytes s1) ))" "$(get disk_bytes s1)" &&
	sfs_run "$DATA/graph.json" >/dev/null &&
	sfs_cat "$MNT/cache/stats" >s2 &&
	expect_eq "$(( $(get hits s1) + 1 ))" "$(get hits s2)" &&
	expect_eq "$(get misses s1)" "$(get misses s2)" &&
	expect_eq "$(sfs_cat "$MNT/cache/stats" | wc -c)" "$(stat -c %s "$MNT/cache/stats")"
'

# How fast is for bench/ (bench/README.md); this case checks the listing is whole.
test_expect_success 'ls cache/keys lists 100,000 keys' '
	sfs_umount &&
	python3 - "$STATE/solverfs.db" <<PY &&
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executemany("INSERT INTO key_records(key, record) VALUES(?, ?)",
              (("k%024d" % i, "r%024d" % i) for i in range(100000)))
c.commit()
PY
	sfs_mount &&
	ls "$MNT/cache/keys" >all &&
	test "$(wc -l <all)" -ge 100000 &&
	grep -qx k000000000000000000000000 all &&
	test -d "$MNT/cache/keys/k000000000000000000099999"
'

test_done
