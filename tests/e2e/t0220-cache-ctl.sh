#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='cache/ctl prune (each op filter, dry-run equal to the prune, keep-bytes, keep-duration), cache/du (reclaimable sums a full prune frees), EINVAL and EACCES, cache/stats against du -sb'
. "$(dirname "$0")/lib.sh"

# A second user reaches the mount (allow_other; the scratch dir traversable) but is
# not its owner.
U=65534
G=65534
chmod 755 "$SCRATCH" "$DATA"
as_nobody() {
	setpriv --reuid "$U" --regid "$G" --clear-groups -- "$@"
}

# spec R: a round of every op kind whose results are cached, its content unique to R
# (a local tree, a file op, an exec on the local tree, a merge of the two, a build of
# an inner spec), plus a "common" file equal in every round: one blob shared by the
# local results of all rounds.
spec() {
	local r=$1
	mkdir -p "$DATA/src-$r" "$DATA/proj-$r"
	head -c 300000 /dev/zero | tr '\0' "$(printf '\\%03o' $((97 + r)))" >"$DATA/src-$r/big"
	echo "common to every round" >"$DATA/src-$r/common"
	cat >"$DATA/proj-$r/solverfs.json" <<JSON
{"vertices": {"inner": {"op": "file", "actions": [{"mkfile": {"path": "inner", "data": "inner $r\\n"}}]}},
 "outputs": ["inner"]}
JSON
	cat >"$DATA/spec-$r.json" <<JSON
{"vertices": {
  "src": {"op": "local", "name": "source $r", "path": "$DATA/src-$r"},
  "f": {"op": "file", "name": "made $r", "actions": [{"mkfile": {"path": "made", "data": "made in round $r\\n"}}]},
  "e": {"op": "exec", "name": "count $r",
        "args": ["sh", "-c", "wc -c <in/big >out/count; seq 1 $((20000 + r)) >out/seq"],
        "mounts": [{"dest": "in/big", "input": "src", "selector": "big"}, {"dest": "out", "output": true}]},
  "m": {"op": "merge", "name": "both $r", "inputs": ["f", "e"]},
  "p": {"op": "local", "name": "project $r", "path": "$DATA/proj-$r"},
  "b": {"op": "build", "name": "sub $r", "input": "p"}},
 "outputs": ["m", "b", "src"]}
JSON
	sfs_run "$DATA/spec-$r.json" >"$DATA/job-$r"
}

# ctl CMD...: write a command, wait until it has run, print the outcome.
ctl_done() { ! grep -q '^running:' "$MNT/cache/ctl"; }
ctl() {
	echo "$*" >"$MNT/cache/ctl" || return 1
	sfs_until 120 ctl_done || { echo "still running: $(cat "$MNT/cache/ctl")"; return 1; }
	cat "$MNT/cache/ctl"
}
# bytes OUTCOME: the bytes an "ok: ...: freed|would free ... N bytes" outcome names
bytes() { sed -n 's/.* \([0-9]*\) bytes$/\1/p' <<<"$1"; }
results_of() { sed -n 's/.*free[d]* \([0-9]*\) results,.*/\1/p' <<<"$1"; }
du_rows() { grep -v '^#' "$MNT/cache/du"; }
du_total() { sed -n 's/^# total .* results, \([0-9]*\) bytes, .*/\1/p' "$MNT/cache/du"; }
du_reclaimable() { sed -n 's/^# total .* bytes, \([0-9]*\) reclaimable.*/\1/p' "$MNT/cache/du"; }
# every row's op is one of the words given
du_ops() { du_rows | cut -f7 | tr , '\n' | sort -u | tr '\n' ' '; }
# the rows one of whose ops is $1 (a result two vertices made lists both: "build,file")
rows_of() { awk -F "\t" -v op="$1" '{ n = split($7, o, ","); for (i = 1; i <= n; i++) if (o[i] == op) print }'; }

# integrity: every record a key names is there, and each result still reads
integrity() {
	local k line rec res
	for k in "$MNT"/cache/keys/*; do
		[ -e "$k/results" ] || continue
		while read -r rec res _; do
			res=${res#sha256:}
			[ -d "$MNT/cache/results/$res" ] || { echo "$k names $rec -> missing $res"; return 1; }
			grep -qx "$rec" "$MNT/cache/results/$res/records" ||
				{ echo "$res does not list $rec"; return 1; }
			find "$MNT/results/$res/" -type f -exec cat {} + >/dev/null ||
				{ echo "$res does not read"; return 1; }
		done <"$k/results"
	done
}

# stats_match: disk_bytes of cache/stats within 1 % of du -sb STATE_DIR
stats_match() {
	local s d
	s=$(awk '$1 == "disk_bytes" { print $2 }' "$MNT/cache/stats") &&
		d=$(du -sb "$STATE" | cut -f1) &&
		echo "stats $s du $d" &&
		[ $((s > d ? s - d : d - s)) -le $((d / 100)) ]
}

sfs_mount -o allow_other || say "# mount failed; every case below will fail"

test_expect_success 'two rounds of every op kind are cached; cache/du has a line for each result' '
	spec 1 && spec 2 &&
	du_rows >"$SCRATCH/du" && cat "$MNT/cache/du" &&
	expect_eq "$(ls "$MNT/cache/results" | wc -l)" "$(wc -l <"$SCRATCH/du")" &&
	expect_eq "build exec file local merge " "$(du_ops)" &&
	grep -q "	exec	[0-9a-f]*	count 1: sh -c wc -c" "$SCRATCH/du" &&
	grep -q "	local	[0-9a-f]*	source 2: local " "$SCRATCH/du" &&
	sort -t "	" -k1,1nr -s "$SCRATCH/du" | cmp - "$SCRATCH/du"
'

test_expect_success 'du: size and reclaimable per line, shared where a blob is in two results' '
	awk -F "\t" "\$2 > \$1 { exit 1 } (\$2 < \$1) != (\$3 == \"shared\") { exit 1 }" "$SCRATCH/du" &&
	grep -q "	local	.*	source 1:" "$SCRATCH/du" &&
	grep "	source 1:" "$SCRATCH/du" | cut -f3 | grep -qx shared &&
	for hex in $(cut -f8 "$SCRATCH/du"); do
		grep -q "^$hex	" "$SCRATCH/du" && return 1
		expect_eq "$(sfs_cat "$MNT/cache/results/$hex/created")" \
			"$(grep "	$hex	" "$SCRATCH/du" | cut -f5)" || return 1
	done &&
	du_rows | cut -f6 | sort -u | grep -qx -- -
'

test_expect_success 'cache/stats counts what is on disk: within 1 % of du -sb STATE_DIR' '
	cat "$MNT/cache/stats" && stats_match
'

test_expect_success 'bad commands fail with EINVAL and read back the reason' '
	for bad in "bogus" "prune now" "prune keep-bytes=lots" "prune keep-duration=soon" \
		"prune filter=op=image2" "prune filter=name=x" "prune dry-run dry-run" \
		"prune keep-bytes=1M keep-bytes=2M" ""; do
		test_must_fail env printf "%s\n" "$bad" >"$MNT/cache/ctl" 2>err &&
		expect_contains "Invalid argument" "$(cat err)" &&
		expect_contains "error: " "$(cat "$MNT/cache/ctl")" || return 1
	done &&
	test_must_fail sh -c "echo prune filter=op=nope >\"$MNT/cache/ctl\"" &&
	expect_eq "error: prune filter=op=nope: filter=op=nope: op is one of exec, local, file, merge, build" \
		"$(cat "$MNT/cache/ctl")" &&
	expect_eq "$(cat "$SCRATCH/du")" "$(du_rows)"
'

test_expect_success 'another user reads cache/ctl but may not write it: EACCES' '
	as_nobody cat "$MNT/cache/ctl" >/dev/null &&
	as_nobody cat "$MNT/cache/du" >/dev/null &&
	test_must_fail as_nobody sh -c "echo prune >\"$MNT/cache/ctl\"" 2>err &&
	cat err && expect_contains "Permission denied" "$(cat err)" &&
	expect_eq "$(cat "$SCRATCH/du")" "$(du_rows)"
'

test_expect_success 'keep-duration spares everything used within it' '
	out=$(ctl prune keep-duration=1h) && echo "$out" &&
	expect_eq "ok: prune keep-duration=1h: freed 0 results, 0 records, 0 blobs, 0 bytes" "$out" &&
	expect_eq "$(cat "$SCRATCH/du")" "$(du_rows)"
'

for op in exec build file merge local; do
	test_expect_success "prune filter=op=$op: the dry run says what the prune then frees, only $op results go" '
		before=$(du_rows) &&
		dry=$(ctl prune dry-run filter=op='$op') && echo "$dry" &&
		expect_eq "$before" "$(du_rows)" &&
		real=$(ctl prune filter=op='$op') && echo "$real" &&
		expect_eq "$(bytes "$dry")" "$(bytes "$real")" &&
		expect_eq "${dry#*would free}" "${real#*freed}" &&
		test "$(results_of "$real")" -gt 0 &&
		expect_eq "$(rows_of '$op' <<<"$before" | wc -l)" "$(results_of "$real")" &&
		expect_eq "" "$(du_rows | rows_of '$op')" &&
		expect_eq "$(grep -vxFf <(rows_of '$op' <<<"$before") <<<"$before" | cut -f8 | sort)" \
			"$(du_rows | cut -f8 | sort)" &&
		integrity
	'
done

test_expect_success 'the cache is empty of all those; stats still match du -sb' '
	expect_eq "" "$(du_rows)" && stats_match
'

test_expect_success 'rebuilt: the pruned results execute again and read back' '
	spec 1 && spec 2 && spec 3 &&
	out=$(sfs_output "$(cat "$DATA/job-3")" m) &&
	expect_eq 300000 "$(cat "$out/count")" &&
	expect_eq "made in round 3" "$(cat "$out/made")"
'

test_expect_success 'keep-bytes: the store is brought under the size, least recently used first' '
	total=$(du_total) && keep=$((total / 2)) &&
	out=$(ctl prune keep-bytes=$keep) && echo "$out" &&
	test "$(du_total)" -le "$keep" &&
	test "$(du_total)" -gt 0 &&
	integrity
'

test_expect_success 'a full prune frees what du says is reclaimable, and spares a kept job' '
	spec 1 && spec 2 && spec 3 &&
	echo keep >"$MNT/jobs/$(cat "$DATA/job-2")/ctl" &&
	du_rows | grep -q "	pinned	" &&
	cat "$MNT/cache/du" &&
	want=$(du_reclaimable) && sum=$(du_rows | grep -v "	pinned	" | awk -F "\t" "{ s += \$2 } END { print s }") &&
	echo "reclaimable: total $want, lines $sum" &&
	test "$sum" -le "$want" &&
	test "$sum" -lt "$want" &&
	pinned=$(du_rows | grep "	pinned	" | cut -f8 | sort) &&
	dry=$(ctl prune dry-run) && expect_eq "$want" "$(bytes "$dry")" &&
	real=$(ctl prune) && echo "$real" &&
	expect_eq "$want" "$(bytes "$real")" &&
	expect_eq "$pinned" "$(du_rows | cut -f8 | sort)" &&
	expect_eq 0 "$(du_reclaimable)" &&
	out=$(sfs_output "$(cat "$DATA/job-2")" m) &&
	expect_eq "made in round 2" "$(cat "$out/made")" &&
	integrity && stats_match
'

test_expect_success 'the daemon log has one line per command run' '
	grep "cache/ctl ok: prune filter=op=exec: freed" "$LOG" &&
	grep "cache/ctl ok: prune dry-run: would free" "$LOG"
'

test_done
