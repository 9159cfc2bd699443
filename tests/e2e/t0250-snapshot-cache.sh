#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='local snapshots and the stat cache: unchanged files are not read again, every change is seen (ctime, racy-clean), across a remount'
. "$(dirname "$0")/lib.sh"

# A tree of 20 files of 8 bytes each.
mkdir -p "$DATA/src/sub"
for i in $(seq -w 1 20); do
	printf 'file%s\n' "$i" >"$DATA/src/sub/f$i"
done
printf '{"vertices": {"src": {"op": "local", "path": "%s"}}, "outputs": ["src"]}\n' \
	"$DATA/src" >"$DATA/local.json"

# metric NAME: its value now.
metric() {
	sfs_cat "$MNT/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# counts: "READ REUSED" now.
counts() {
	echo "$(metric solverfs_snapshot_files_read_total) $(metric solverfs_snapshot_files_reused_total)"
}

# snap: snapshot the tree into out/ (a copy of the result) and print what the
# snapshot read and reused: "READ REUSED" since the previous counts in ./before.
snap() {
	local o b1 b2 a1 a2
	read -r b1 b2 <before
	o=$(sfs_run_output "$DATA/local.json" src) || return 1
	rm -rf out && mkdir out && cp -R "$o/." out || return 1
	read -r a1 a2 < <(counts)
	echo "$a1 $a2" >before
	echo "$((a1 - b1)) $((a2 - b2))"
}

# A file is remembered only when its ctime is 2 s older than the start of its read
# (docs/semantics.md §1.9): age lets what a case just wrote grow older than that,
# so that the snapshot after it remembers it.
age() {
	sleep 3
}
age
sfs_mount || say "# mount failed; every case below will fail"

test_expect_success 'a first snapshot reads every file and remembers them' '
	counts >before &&
	expect_eq "20 0" "$(snap)" &&
	expect_file_eq file07 out/sub/f07 &&
	expect_eq 20 "$(metric solverfs_snapshot_files_remembered)"
'

test_expect_success 'an untouched tree hits its metadata key: nothing is read' '
	counts >before &&
	expect_eq "0 0" "$(snap)" &&
	expect_file_eq file07 out/sub/f07
'

test_expect_success 'one file changed: only it is read, the 19 others reuse their digest' '
	counts >before &&
	printf "changed\n" >"$DATA/src/sub/f01" &&
	age &&
	expect_eq "1 19" "$(snap)" &&
	expect_file_eq changed out/sub/f01 &&
	expect_file_eq file02 out/sub/f02
'

test_expect_success 'same size and mtime (touch -d): ctime still tells, the new content is read' '
	counts >before &&
	f=$DATA/src/sub/f02 &&
	m=$(stat -c %y "$f") &&
	printf "FILE02\n" >"$f" &&
	touch -d "$m" "$f" &&
	expect_eq "$m" "$(stat -c %y "$f")" &&
	expect_eq 7 "$(stat -c %s "$f")" &&
	age &&
	expect_eq "1 19" "$(snap)" &&
	expect_file_eq FILE02 out/sub/f02
'

test_expect_success 'after a remount the daemon still remembers: one change reads one file' '
	sfs_remount &&
	expect_eq 20 "$(metric solverfs_snapshot_files_remembered)" &&
	counts >before &&
	printf "after remount\n" >"$DATA/src/sub/f05" &&
	age &&
	o=$(snap) &&
	expect_file_eq "after remount" out/sub/f05 &&
	expect_file_eq FILE02 out/sub/f02 &&
	expect_file_eq changed out/sub/f01 &&
	expect_eq "1 19" "$o"
'

test_expect_success 'a file replaced by another (new inode, same size and times) is read' '
	counts >before &&
	f=$DATA/src/sub/f06 &&
	m=$(stat -c %y "$f") &&
	printf "other6\n" >"$DATA/src/new6" && touch -d "$m" "$DATA/src/new6" &&
	mv "$DATA/src/new6" "$f" &&
	age &&
	expect_eq "1 19" "$(snap)" &&
	expect_file_eq other6 out/sub/f06
'

# The racy case: changed, read and changed again with equal size and mtime within
# one second.  A file that young is read at every snapshot, never trusted.
test_expect_success 'changed twice within the same second, same size and mtime: both seen' '
	counts >before &&
	f=$DATA/src/sub/f03 &&
	m=$(stat -c %y "$f") &&
	printf "one003\n" >"$f" && touch -d "$m" "$f" &&
	expect_eq "1 19" "$(snap)" &&
	expect_file_eq one003 out/sub/f03 &&
	printf "two003\n" >"$f" && touch -d "$m" "$f" &&
	o=$(snap) &&
	expect_file_eq two003 out/sub/f03 &&
	expect_eq "1 19" "$o" &&
	expect_eq 20 "$(ls out/sub | wc -l)"
'

test_done
