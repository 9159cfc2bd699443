# shellcheck shell=bash disable=SC2016
# tests/e2e/lib.sh — the harness of the end-to-end tests (git's t/test-lib.sh in spirit).
#
# A test script is a user's session against a real mount:
#
#   #!/bin/bash
#   test_description='what this script covers'
#   . "$(dirname "$0")/lib.sh"
#   sfs_mount
#   test_expect_success 'a job can be submitted' '
#           N=$(sfs_submit "$DATA/spec.json") &&
#           expect_eq done "$(sfs_wait "$N")"
#   '
#   test_done
#
# Every script gets its own scratch dir ($SCRATCH, or $SFS_SCRATCH when the caller made
# one): $STATE is the daemon's STATE_DIR, $MNT its mountpoint, $DATA a place for host
# files (specs, `local` sources), $LOG the daemon's stderr.  A trap on EXIT, INT and TERM
# always unmounts and removes the scratch dir, even when a case or the script fails.
#
# A case body runs in a subshell with `set -e`, so any failing command fails the case and
# variables set in one case do not leak into the next (pass values through files).  Use
# test_must_fail for commands that must fail: `! cmd` does not trip `set -e`.
#
# Output, one line per case: "ok N - title", "not ok N - title" (followed by the case's
# output and the tail of the daemon log), "ok N # skip title (reason)"; the last line is
# "# NAME: N passed, N failed, N skipped", which tools/test adds up.

set -u

# ---------------------------------------------------------------- setup

SFS_TEST_NAME=$(basename "$0" .sh)
SFS_E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SFS_SRC_ROOT=$(cd "$SFS_E2E_DIR/../.." && pwd)
# shellcheck source=SCRIPTDIR/mount.sh
. "$SFS_E2E_DIR/mount.sh"

# Without FUSE no case can run: exit 77, meson's "skipped" (tools/test counts it as a
# failure, with this line).
if sfs_no_fuse=$(sfs_fuse_missing); then
	printf '# SKIP %s: this host cannot mount FUSE: %s\n' "$SFS_TEST_NAME" "$sfs_no_fuse"
	exit 77
fi

if [ -z "${SOLVERFS:-}" ]; then
	for b in build-asan build-test build; do
		if [ -x "$SFS_SRC_ROOT/$b/fs/solverfs" ]; then
			SOLVERFS=$SFS_SRC_ROOT/$b/fs/solverfs
			break
		fi
	done
fi
: "${SOLVERFS:=solverfs}"
# Cases run in $SCRATCH: a relative path must not change meaning there.
case $SOLVERFS in
*/*) SOLVERFS=$(realpath "$SOLVERFS") ;;
esac
export SOLVERFS

# The daemon is built with ASan/UBSan by default (tools/test): report, never abort, so a
# finding shows up in its log (checked by test_done) instead of killing the mount.
export ASAN_OPTIONS="${SFS_DAEMON_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

if [ -n "${SFS_SCRATCH:-}" ]; then
	SCRATCH=$SFS_SCRATCH
	mkdir -p "$SCRATCH"
else
	SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/sfs-$SFS_TEST_NAME.XXXXXX")
fi
SCRATCH=$(cd "$SCRATCH" && pwd)
STATE=$SCRATCH/state
MNT=$SCRATCH/mnt
DATA=$SCRATCH/data
LOG=$SCRATCH/daemon.log
PIDFILE=$SCRATCH/daemon.pid
mkdir -p "$MNT" "$DATA"
: >"$LOG"
export SCRATCH STATE MNT DATA LOG PIDFILE

# The default PATH an exec op gets when its env has none (docs/spec.md §2.3, docs/sandbox.md).
export SFS_DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

sfs_n_case=0
sfs_n_pass=0
sfs_n_fail=0
sfs_n_skip=0

say() {
	printf '%s\n' "$*"
}

# ---------------------------------------------------------------- mounting

# sfs_is_mounted, sfs_mount [OPTION...], sfs_umount, sfs_remount [OPTION...]: in
# mount.sh, shared with bench/.  A mount the host refuses (no FUSE in this container,
# say) before any case passed skips the script: at once at the top level, after the
# case when a case mounted (its subshell leaves the reason in $SCRATCH/no-fuse).
sfs_skip_no_fuse() {
	[ "$sfs_n_pass" -eq 0 ] || return 0
	if [ "$BASHPID" = "$$" ]; then
		say "# SKIP $SFS_TEST_NAME: this host cannot mount FUSE: $1"
		exit 77
	fi
	printf '%s\n' "$1" >"$SCRATCH/no-fuse"
}
# shellcheck disable=SC2034 # read by mount.sh
SFS_ON_REFUSED=sfs_skip_no_fuse

sfs_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	sfs_umount
	sfs_remove_scratch "$SCRATCH" "${SFS_KEEP:-}"
	exit "$rc"
}
trap sfs_cleanup EXIT
trap 'say "# interrupted" >&2; exit 130' INT
trap 'say "# terminated" >&2; exit 143' TERM

# sfs_find_solverctl: set and export SOLVERCTL (unless set) to the solverctl built next to
# the solverfs under test, else the one in PATH.
sfs_find_solverctl() {
	local d
	if [ -z "${SOLVERCTL:-}" ]; then
		for d in "${SFS_BUILD_DIR:-}" "$(dirname "$SOLVERFS")/.."; do
			if [ -n "$d" ] && [ -x "$d/tools/solverctl/solverctl" ]; then
				SOLVERCTL=$(realpath "$d/tools/solverctl/solverctl")
				break
			fi
		done
	fi
	: "${SOLVERCTL:=solverctl}"
	export SOLVERCTL
}

# ---------------------------------------------------------------- using the mount

# sfs_submit FILE: submit FILE in one step through jobs/new, print the job number
# (from jobs/latest).  Fails if the close of jobs/new fails.
sfs_submit() {
	cat "$1" >"$MNT/jobs/new" || return 1
	basename "$(readlink "$MNT/jobs/latest")"
}

# sfs_new: allocate a pending job, print its number.
sfs_new() {
	local n
	n=$(timeout 10 cat "$MNT/jobs/new") || return 1
	case $n in
	'' | *[!0-9]*) say "# jobs/new read as '$n', not a number" >&2; return 1 ;;
	esac
	printf '%s\n' "$n"
}

# sfs_write FILE DEST: cat FILE > DEST; fails when the write or the close fails.
sfs_write() {
	timeout 30 sh -c 'cat "$1" >"$2"' _ "$1" "$2"
}

# sfs_wait N: block until job N ends, print its final state.
sfs_wait() {
	timeout "${SFS_WAIT_TIMEOUT:-60}" cat "$MNT/jobs/$1/wait"
}

# sfs_run FILE: submit FILE, wait for it, print the job number; fails unless it is done.
sfs_run() {
	local n st
	n=$(sfs_submit "$1") || return 1
	st=$(sfs_wait "$n") || { say "# job $n: wait failed" >&2; return 1; }
	if [ "$st" != "done" ]; then
		say "# job $n ended $st: $(cat "$MNT/jobs/$n/error" 2>/dev/null)" >&2
		return 1
	fi
	printf '%s\n' "$n"
}

# sfs_cat FILE...: cat that cannot hang a test.
sfs_cat() {
	timeout 30 cat "$@"
}

# sfs_output N REF: print the path of job N's output REF (through the outputs/ symlink).
sfs_output() {
	printf '%s\n' "$MNT/jobs/$1/outputs/$2"
}

# sfs_run_output FILE REF: run FILE (sfs_run), print the path of its output REF.
sfs_run_output() {
	local n
	n=$(sfs_run "$1") && sfs_output "$n" "$2"
}

# sfs_final N NAME: the final line word of vertex NAME in job N's plain status:
# DONE, CACHED, ERROR or CANCELED (empty if the vertex is not there).  NAME may hold
# spaces: the vertex's first line is "#N [NAME]...".
sfs_final() {
	sfs_cat "$MNT/jobs/$1/status" | awk -v name="[$2]" '
		!num && substr($0, length($1) + 2, length(name)) == name { num = $1 }
		num && $1 == num && ($2 == "DONE" || $2 == "CACHED" || $2 == "ERROR:" || $2 == "CANCELED") {
			last = $2
		}
		END { sub(":$", "", last); print last }'
}

# sfs_vertex N NAME: the jobs/N/vertices/<hex> dir of the vertex named NAME.
sfs_vertex() {
	local d
	for d in "$MNT/jobs/$1/vertices"/*; do
		if [ "$(cat "$d/name")" = "$2" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	echo "no vertex named $2 in job $1" >&2
	return 1
}

# ---------------------------------------------------------------- specs
#
# The specs many scripts submit.  What they take is JSON string text, written into the
# spec as it stands: a double quote or a backslash in it must already be escaped.

# sfs_exec_spec KEY NAME CMD: one exec vertex KEY named NAME that runs `sh -c CMD` with
# an output dir out, the spec's output.
sfs_exec_spec() {
	printf '{"vertices": {"%s": {"op": "exec", "name": "%s", "args": ["sh", "-c", "%s"],\n' \
		"$1" "$2" "$3"
	printf '  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["%s"]}\n' "$1"
}

# sfs_file_spec KEY PATH DATA: one file vertex KEY that makes the file PATH holding DATA,
# the spec's output.
sfs_file_spec() {
	printf '{"vertices": {"%s": {"op": "file", "actions": [{"mkfile": {"path": "%s", "data": "%s"}}]}},\n' \
		"$1" "$2" "$3"
	printf ' "outputs": ["%s"]}\n' "$1"
}

# sfs_words: the source dir $DATA/src of sfs_upper_vertices, holding words ("one", "two").
sfs_words() {
	mkdir -p "$DATA/src" && printf 'one\ntwo\n' >"$DATA/src/words"
}

# sfs_upper_vertices [CMD]: the members "src" and "up" of a spec's "vertices": the local
# source "source" of $DATA/src and the exec "upper" that runs `sh -c CMD` (by default
# `tr a-z A-Z <in/words >out/WORDS`) with src's words at in/words and an output dir out.
sfs_upper_vertices() {
	cat <<JSON
    "src": {"op": "local", "name": "source", "path": "$DATA/src"},
    "up": {"op": "exec", "name": "upper",
           "args": ["sh", "-c", "${1:-tr a-z A-Z <in/words >out/WORDS}"],
           "mounts": [{"dest": "in/words", "input": "src", "selector": "words"}, {"dest": "out", "output": true}]}
JSON
}

# ---------------------------------------------------------------- assertions

# sfs_until SECONDS CMD...: run CMD (its output discarded) every 0.1 s until it
# succeeds; fails when it has not within SECONDS.
sfs_until() {
	local tries=$(($1 * 10))
	shift
	for _ in $(seq 1 "$tries"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

sfs_no_proc() {
	! pgrep -f "$1"
}

# wait_for_proc PATTERN [SECONDS]: until pgrep -f PATTERN finds a process (10 s)
wait_for_proc() {
	sfs_until "${2:-10}" pgrep -f "$1" && return 0
	echo "no process matches $1"
	return 1
}

# wait_no_proc PATTERN: until no process matches (5 s)
wait_no_proc() {
	sfs_until 5 sfs_no_proc "$1" && return 0
	echo "still running:"; pgrep -af "$1"
	return 1
}

expect_eq() {
	if [ "$1" != "$2" ]; then
		say "expected: '$1'"
		say "     got: '$2'"
		return 1
	fi
}

expect_contains() {
	case $2 in
	*"$1"*) return 0 ;;
	esac
	say "expected to contain: '$1'"
	say "                got: '$2'"
	return 1
}

expect_not_contains() {
	case $2 in
	*"$1"*)
		say "expected not to contain: '$1'"
		say "                    got: '$2'"
		return 1
		;;
	esac
	return 0
}

# expect_file_eq CONTENT FILE
expect_file_eq() {
	expect_eq "$1" "$(sfs_cat "$2")"
}

# expect_mode MODE PATH (octal as stat %a prints it, e.g. 644)
expect_mode() {
	expect_eq "$1" "$(stat -c %a "$2")"
}

# test_must_fail CMD...: CMD must fail normally (exit 1..125, not a signal, not a timeout).
test_must_fail() {
	local rc=0
	"$@" || rc=$?
	if [ "$rc" -eq 0 ]; then
		say "test_must_fail: command succeeded: $*"
		return 1
	elif [ "$rc" -gt 125 ] || [ "$rc" -eq 124 ]; then
		say "test_must_fail: command died (exit $rc): $*"
		return 1
	fi
	return 0
}

# json_check FILE: every line of FILE is a JSON object; runs an optional python3
# expression EXPR over each parsed line as `o` (it must be true).
json_check() {
	python3 - "$@" <<'EOF'
import json, sys
path = sys.argv[1]
expr = sys.argv[2] if len(sys.argv) > 2 else "True"
n = 0
for i, line in enumerate(open(path, encoding="utf-8"), 1):
    if not line.strip():
        continue
    o = json.loads(line)
    if not isinstance(o, dict):
        sys.exit("line %d is not an object" % i)
    if not eval(expr, {"o": o}):
        sys.exit("line %d fails %s: %s" % (i, expr, line.strip()[:300]))
    n += 1
if n == 0:
    sys.exit("no JSON lines in " + path)
EOF
}

# ---------------------------------------------------------------- cases

# Prerequisites a case may name (comma-separated): ROOT, CC.  A missing prerequisite
# skips the case (counted neither passed nor failed); a broken mount is a failure, never
# a reason to skip.
test_have_prereq() {
	local p
	for p in $(printf '%s' "$1" | tr ',' ' '); do
		case $p in
		ROOT) [ "$(id -u)" -eq 0 ] || { sfs_skip_reason="needs root"; return 1; } ;;
		CC) command -v cc >/dev/null || { sfs_skip_reason="no C compiler"; return 1; } ;;
		*) sfs_skip_reason="unknown prerequisite $p"; return 1 ;;
		esac
	done
	return 0
}

test_skip() {
	sfs_n_case=$((sfs_n_case + 1))
	sfs_n_skip=$((sfs_n_skip + 1))
	say "ok $sfs_n_case # skip $1 ($2)"
}

# The daemon log lines already shown: a failure report shows only what is new since.
sfs_log_shown=0

sfs_fail_report() {
	local n
	sed 's/^/#   /' "$1"
	n=$(wc -l <"$LOG")
	if [ "$n" -gt "$sfs_log_shown" ]; then
		say "#   --- daemon log (new lines, at most the last 20) ---"
		tail -n +"$((sfs_log_shown + 1))" "$LOG" | tail -n 20 | sed 's/^/#   | /'
		sfs_log_shown=$n
	fi
}

# test_expect_success [PREREQ] TITLE BODY
test_expect_success() {
	local prereq="" title body out rc=0
	if [ $# -eq 3 ]; then
		prereq=$1
		shift
	fi
	title=$1
	body=$2
	if [ -n "$prereq" ] && ! test_have_prereq "$prereq"; then
		test_skip "$title" "$sfs_skip_reason"
		return 0
	fi
	sfs_n_case=$((sfs_n_case + 1))
	out=$SCRATCH/case-$sfs_n_case.out
	(
		set -e
		cd "$SCRATCH"
		eval "$body"
	) </dev/null >"$out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		sfs_n_pass=$((sfs_n_pass + 1))
		say "ok $sfs_n_case - $title"
		[ -n "${SFS_VERBOSE:-}" ] && sed 's/^/#   /' "$out"
	else
		sfs_n_fail=$((sfs_n_fail + 1))
		say "not ok $sfs_n_case - $title (exit $rc)"
		sfs_fail_report "$out"
	fi
	rm -f "$out"
	if [ -s "$SCRATCH/no-fuse" ]; then
		say "# SKIP $SFS_TEST_NAME: this host cannot mount FUSE: $(cat "$SCRATCH/no-fuse")"
		exit 77
	fi
	return 0
}

# test_done: unmount, check the daemon left no sanitizer report, print the totals,
# exit non-zero if any case failed.
test_done() {
	local san
	sfs_umount
	san=$(grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)' "$LOG" | head -n 5)
	sfs_n_case=$((sfs_n_case + 1))
	if [ -z "$san" ]; then
		sfs_n_pass=$((sfs_n_pass + 1))
		say "ok $sfs_n_case - the daemon logged no sanitizer report"
	else
		sfs_n_fail=$((sfs_n_fail + 1))
		say "not ok $sfs_n_case - the daemon logged no sanitizer report"
		grep -E -B2 -A30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOG" |
			head -n 60 | sed 's/^/#   | /'
	fi
	say "# $SFS_TEST_NAME: $sfs_n_pass passed, $sfs_n_fail failed, $sfs_n_skip skipped"
	[ "$sfs_n_fail" -eq 0 ]
	exit $?
}
