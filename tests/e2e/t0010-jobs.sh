#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='the job flow: jobs/new, spec, state, wait, result, outputs, vertices'
. "$(dirname "$0")/lib.sh"

cat >"$DATA/simple.json" <<'JSON'
{
  "vertices": {
    "files": {"op": "file", "name": "make-files",
              "actions": [{"mkdir": {"path": "bin"}},
                          {"mkfile": {"path": "bin/run", "data": "#!/bin/sh\necho run\n", "mode": "0755"}},
                          {"mkfile": {"path": "note.txt", "data": "plain\n"}},
                          {"symlink": {"target": "bin/run", "path": "run"}}]}
  },
  "outputs": ["files"]
}
JSON

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'reading jobs/new allocates a new pending job each time' '
	a=$(sfs_new) && b=$(sfs_new) &&
	test "$b" -gt "$a" &&
	expect_eq pending "$(sfs_cat "$MNT/jobs/$a/state")" &&
	expect_eq pending "$(sfs_cat "$MNT/jobs/$b/state")" &&
	echo "$b" >"$SCRATCH/pending-job"
'

test_expect_success 'writing a spec into jobs/N/spec starts job N, wait ends with done' '
	N=$(cat "$SCRATCH/pending-job") &&
	sfs_write "$DATA/simple.json" "$MNT/jobs/$N/spec" &&
	expect_eq done "$(sfs_wait "$N")" &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$N/state")"
'

test_expect_success 'jobs/latest is a relative symlink to the newest accepted job' '
	N=$(cat "$SCRATCH/pending-job") &&
	l=$(readlink "$MNT/jobs/latest") &&
	expect_eq "$N" "$(basename "$l")" &&
	case $l in /*) echo "absolute: $l"; exit 1;; esac &&
	expect_eq done "$(sfs_cat "$MNT/jobs/latest/state")"
'

test_expect_success 'an accepted spec cannot be written again (EBUSY)' '
	N=$(cat "$SCRATCH/pending-job") &&
	test_must_fail sfs_write "$DATA/simple.json" "$MNT/jobs/$N/spec" 2>err &&
	expect_contains "busy" "$(cat err)"
'

test_expect_success 'jobs/N/spec reads back the submitted spec' '
	N=$(cat "$SCRATCH/pending-job") &&
	python3 -c "import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(a!=b)" \
		"$DATA/simple.json" "$MNT/jobs/$N/spec" &&
	expect_eq "$(wc -c <"$DATA/simple.json")" "$(stat -c %s "$MNT/jobs/$N/spec")" &&
	cmp "$DATA/simple.json" "$MNT/jobs/$N/spec"
'

test_expect_success 'writing a spec to jobs/new submits it in one step' '
	before=$(basename "$(readlink "$MNT/jobs/latest")") &&
	cat "$DATA/simple.json" >"$MNT/jobs/new" &&
	N=$(basename "$(readlink "$MNT/jobs/latest")") &&
	test "$N" -gt "$before" &&
	expect_eq done "$(sfs_wait "$N")" &&
	echo "$N" >"$SCRATCH/job"
'

test_expect_success 'result lists "<ref> sha256:<hex>" per output' '
	N=$(cat "$SCRATCH/job") &&
	sfs_cat "$MNT/jobs/$N/result" >result &&
	test "$(wc -l <result)" -eq 1 &&
	grep -Eqx "files sha256:[0-9a-f]{64}" result
'

test_expect_success 'outputs/<ref> is a relative symlink into results/<hex>' '
	N=$(cat "$SCRATCH/job") &&
	hex=$(sed -n "s/^files sha256://p" <"$MNT/jobs/$N/result") &&
	l=$(readlink "$MNT/jobs/$N/outputs/files") &&
	case $l in /*) echo "absolute: $l"; exit 1;; esac &&
	expect_eq "$hex" "$(basename "$l")" &&
	expect_eq "$(readlink -f "$MNT/results/$hex")" "$(readlink -f "$MNT/jobs/$N/outputs/files")" &&
	test -d "$MNT/results/$hex"
'

test_expect_success 'the result tree has the content, modes and symlinks the spec made' '
	N=$(cat "$SCRATCH/job") &&
	o=$(sfs_output "$N" files) &&
	expect_file_eq "plain" "$o/note.txt" &&
	expect_file_eq "$(printf "#!/bin/sh\necho run")" "$o/bin/run" &&
	expect_mode 755 "$o/bin/run" &&
	expect_mode 644 "$o/note.txt" &&
	expect_mode 755 "$o/bin" &&
	test -L "$o/run" &&
	expect_eq bin/run "$(readlink "$o/run")" &&
	expect_eq run "$("$o/run")"
'

test_expect_success 'results/ is read-only (EROFS)' '
	N=$(cat "$SCRATCH/job") &&
	o=$(sfs_output "$N" files) &&
	test_must_fail touch "$o/new-file" 2>err &&
	expect_contains "Read-only file system" "$(cat err)" &&
	test_must_fail sh -c "echo x >>\"\$1\"" _ "$o/note.txt" &&
	test_must_fail mkdir "$o/newdir" &&
	test_must_fail rm -f "$o/note.txt" &&
	expect_file_eq "plain" "$o/note.txt"
'

test_expect_success 'files cannot be created under jobs/ (EPERM)' '
	test -d "$MNT/jobs" &&
	test_must_fail touch "$MNT/jobs/not-a-job" 2>err &&
	expect_contains "Operation not permitted" "$(cat err)" &&
	test_must_fail mkdir "$MNT/jobs/999999" &&
	test ! -e "$MNT/jobs/not-a-job"
'

test_expect_success 'jobs/N/vertices/<hex>/ holds name, op, state and log' '
	N=$(cat "$SCRATCH/job") &&
	ls "$MNT/jobs/$N/vertices" >v &&
	test "$(wc -l <v)" -eq 1 &&
	hex=$(cat v) &&
	echo "$hex" | grep -Eqx "[0-9a-f]{64}" &&
	d=$MNT/jobs/$N/vertices/$hex &&
	expect_file_eq make-files "$d/name" &&
	st=$(sfs_cat "$d/state" | head -n 1) &&
	case $st in done | cached) ;; *) echo "state: $st"; exit 1;; esac &&
	test -e "$d/log" &&
	expect_contains "\"op\":\"file\"" "$(sfs_cat "$d/op")"
'

test_expect_success 'a vertex digest is the sha256 of its op bytes' '
	N=$(cat "$SCRATCH/job") &&
	hex=$(ls "$MNT/jobs/$N/vertices") &&
	expect_eq "$hex" "$(sfs_cat "$MNT/jobs/$N/vertices/$hex/op" | sha256sum | cut -d" " -f1)"
'

test_expect_success 'no name in the mounted tree contains a colon' '
	timeout 60 find "$MNT" >all &&
	grep -q "/results/[0-9a-f]\{64\}/note.txt\$" all &&
	grep -q "/jobs/[0-9]*/vertices/[0-9a-f]\{64\}\$" all &&
	if grep ":" all; then exit 1; fi &&
	timeout 60 ls -R "$MNT" >/dev/null
'

test_expect_success 'the job history survives a remount' '
	N=$(cat "$SCRATCH/job") &&
	res=$(sfs_cat "$MNT/jobs/$N/result") &&
	sfs_remount &&
	expect_eq done "$(sfs_cat "$MNT/jobs/$N/state")" &&
	expect_eq "$res" "$(sfs_cat "$MNT/jobs/$N/result")" &&
	expect_file_eq plain "$(sfs_output "$N" files)/note.txt" &&
	hex=$(ls "$MNT/jobs/$N/vertices") &&
	test -n "$hex" &&
	expect_file_eq make-files "$MNT/jobs/$N/vertices/$hex/name"
'

test_expect_success 'job numbers are not reused after a remount' '
	N=$(cat "$SCRATCH/job") &&
	M=$(sfs_new) &&
	test "$M" -gt "$N"
'

test_done
