#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='ops local and file: every field and action'
. "$(dirname "$0")/lib.sh"

# A host tree for `local`.
mkdir -p "$DATA/src/sub" "$DATA/src/.git" "$DATA/src/skip"
printf 'A\n' >"$DATA/src/a.c"
printf 'B\n' >"$DATA/src/b.h"
printf 'C\n' >"$DATA/src/sub/c.c"
printf 'D\n' >"$DATA/src/sub/d.txt"
printf 'E\n' >"$DATA/src/skip/e.c"
printf 'git\n' >"$DATA/src/.git/HEAD"
printf '#!/bin/sh\necho tool\n' >"$DATA/src/tool.sh"
chmod 0755 "$DATA/src/tool.sh"
chmod 0600 "$DATA/src/b.h"
ln -s sub/c.c "$DATA/src/link"
printf 'single\n' >"$DATA/one.txt"

# spec NAME JSON-VERTICES OUTPUTS: write $DATA/NAME.json
spec() {
	printf '{"vertices": {%s}, "outputs": [%s]}\n' "$2" "$3" >"$DATA/$1.json"
}

spec local-all '"src": {"op": "local", "path": "'"$DATA"'/src", "exclude": [".git"]}' '"src"'
spec local-filter '"src": {"op": "local", "path": "'"$DATA"'/src", "include": ["*.c", "**/*.c"], "exclude": ["skip/*"]}' '"src"'
spec local-file '"one": {"op": "local", "path": "'"$DATA"'/one.txt"}' '"one"'
spec actions '"f": {"op": "file", "actions": [
	{"mkdir": {"path": "a/b/c", "parents": true, "mode": "0700"}},
	{"mkdir": {"path": "plain"}},
	{"mkfile": {"path": "a/data.txt", "data": "hello\n"}},
	{"mkfile": {"path": "b64.bin", "data_base64": "AAECAwRoaQo=", "mode": "0600"}},
	{"mkfile": {"path": "gone.txt", "data": "x"}},
	{"rm": {"path": "gone.txt"}},
	{"rm": {"path": "never-there", "allow_not_found": true}},
	{"symlink": {"target": "../a/data.txt", "path": "plain/link"}},
	{"symlink": {"target": "/no/such/absolute", "path": "dangling"}}]}' '"f"'
spec copy '"src": {"op": "local", "path": "'"$DATA"'/src"},
	"c": {"op": "file", "actions": [
	{"copy": {"from": "src", "src": "sub", "dest": "whole"}},
	{"copy": {"from": "src", "src": "a.c", "dest": "deep/er/x.c"}},
	{"copy": {"from": "src", "src": "skip", "dest": "filtered", "include": ["*.c"]}},
	{"copy": {"from": "src", "src": "sub", "dest": "nodtxt", "exclude": ["*.txt"]}},
	{"copy": {"from": "src", "src": "tool.sh", "dest": "tool.sh"}},
	{"copy": {"from": "src", "src": "link", "dest": "link"}}]}' '"c"'
spec base '"src": {"op": "local", "path": "'"$DATA"'/src", "include": ["a.c"]},
	"f": {"op": "file", "base": "src", "actions": [{"mkfile": {"path": "added", "data": "1"}}, {"rm": {"path": "a.c"}}]}' '"f"'
spec rm-missing '"f": {"op": "file", "actions": [{"rm": {"path": "not-there"}}]}' '"f"'
spec empty '"f": {"op": "file", "actions": []}' '"f"'

sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'local copies a host dir, excluding .git' '
	o=$(sfs_run_output "$DATA/local-all.json" src) &&
	expect_file_eq A "$o/a.c" &&
	expect_file_eq C "$o/sub/c.c" &&
	test ! -e "$o/.git" &&
	test -e "$o/skip/e.c"
'

test_expect_success 'local keeps file modes and symlinks' '
	o=$(sfs_run_output "$DATA/local-all.json" src) &&
	expect_mode 755 "$o/tool.sh" &&
	expect_mode 600 "$o/b.h" &&
	expect_mode 644 "$o/a.c" &&
	test -L "$o/link" &&
	expect_eq sub/c.c "$(readlink "$o/link")"
'

test_expect_success 'local include and exclude select paths by glob' '
	o=$(sfs_run_output "$DATA/local-filter.json" src) &&
	test -f "$o/a.c" && test -f "$o/sub/c.c" &&
	test ! -e "$o/b.h" && test ! -e "$o/sub/d.txt" && test ! -e "$o/tool.sh" &&
	test ! -e "$o/skip/e.c"
'

test_expect_success 'local of a single file gives a tree holding that file' '
	o=$(sfs_run_output "$DATA/local-file.json" one) &&
	expect_eq one.txt "$(ls "$o")" &&
	expect_file_eq single "$o/one.txt"
'

test_expect_success 'local sees changed host files in the next job' '
	printf "A2\n" >"$DATA/src/a.c" &&
	N=$(sfs_run "$DATA/local-all.json") &&
	expect_file_eq A2 "$(sfs_output "$N" src)/a.c" &&
	printf "A\n" >"$DATA/src/a.c"
'

test_expect_success 'file actions run in order: mkdir, mkfile, rm, symlink' '
	o=$(sfs_run_output "$DATA/actions.json" f) &&
	test -d "$o/a/b/c" &&
	expect_mode 700 "$o/a/b/c" &&
	expect_mode 755 "$o/plain" &&
	expect_file_eq hello "$o/a/data.txt" &&
	expect_mode 644 "$o/a/data.txt" &&
	expect_eq "00010203046869" "$(od -An -tx1 "$o/b64.bin" | tr -d " \n" | cut -c1-14)" &&
	expect_mode 600 "$o/b64.bin" &&
	test ! -e "$o/gone.txt" &&
	expect_eq ../a/data.txt "$(readlink "$o/plain/link")" &&
	expect_file_eq hello "$o/plain/link" &&
	expect_eq /no/such/absolute "$(readlink "$o/dangling")"
'

test_expect_success 'copy of a dir copies its contents; of a file replaces dest, creating parents' '
	o=$(sfs_run_output "$DATA/copy.json" c) &&
	expect_file_eq C "$o/whole/c.c" &&
	expect_file_eq D "$o/whole/d.txt" &&
	test ! -e "$o/whole/sub" &&
	expect_file_eq A "$o/deep/er/x.c" &&
	expect_mode 755 "$o/tool.sh" &&
	expect_eq sub/c.c "$(readlink "$o/link")"
'

test_expect_success 'copy include and exclude filter relative to src' '
	o=$(sfs_run_output "$DATA/copy.json" c) &&
	expect_file_eq E "$o/filtered/e.c" &&
	expect_file_eq C "$o/nodtxt/c.c" &&
	test ! -e "$o/nodtxt/d.txt"
'

test_expect_success 'file with a base starts from the base tree' '
	o=$(sfs_run_output "$DATA/base.json" f) &&
	expect_file_eq 1 "$o/added" &&
	test ! -e "$o/a.c"
'

test_expect_success 'an empty action list gives an empty tree' '
	N=$(sfs_run "$DATA/empty.json") &&
	expect_eq "" "$(ls -A "$(sfs_output "$N" f)")"
'

test_expect_success 'rm of a missing path fails the job and says which path' '
	N=$(sfs_submit "$DATA/rm-missing.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "not-there" "$(sfs_cat "$MNT/jobs/$N/error")"
'

test_done
