#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='op exec: mounts, selectors, env, cwd, outputs, failures'
. "$(dirname "$0")/lib.sh"

mkdir -p "$DATA/src/sub" "$DATA/src/other"
printf 'x\n' >"$DATA/src/sub/x"
printf 'y\n' >"$DATA/src/sub/y"
printf 'z\n' >"$DATA/src/other/z"
printf 'top\n' >"$DATA/src/top.txt"

# spec NAME JSON-VERTICES OUTPUTS
spec() {
	printf '{"vertices": {%s}, "outputs": [%s]}\n' "$2" "$3" >"$DATA/$1.json"
}
SRC='"src": {"op": "local", "path": "'"$DATA"'/src"}'

spec out '"e": {"op": "exec", "args": ["sh", "-c", "echo made >out/made.txt; mkdir out/d; ln -s made.txt out/l; chmod 755 out/made.txt"],
	"mounts": [{"dest": "out", "output": true}]}' '"e"'
spec readonly "$SRC"', "e": {"op": "exec", "args": ["sh", "-c", "if echo x >in/new 2>/dev/null || rm -f in/top.txt 2>/dev/null; then echo writable; else echo readonly; fi >out/r; test -f in/top.txt && echo present >>out/r"],
	"mounts": [{"dest": "in", "input": "src"}, {"dest": "out", "output": true}]}' '"e"'
spec selector "$SRC"', "e": {"op": "exec", "args": ["sh", "-c", "ls -A sel >out/ls-sel; cat one >out/one; ls -A >out/ls-root"],
	"mounts": [{"dest": "sel", "input": "src", "selector": "sub"},
	           {"dest": "one", "input": "src", "selector": "top.txt"},
	           {"dest": "out", "output": true}]}' '"e"'
spec env '"e": {"op": "exec", "args": ["sh", "-c", "tr \"\\\\0\" \"\\\\n\" </proc/$$/environ | sort >out/env"],
	"env": {"FOO": "bar", "LANG": "C", "EMPTY": ""},
	"mounts": [{"dest": "out", "output": true}]}' '"e"'
spec env-path '"e": {"op": "exec", "args": ["sh", "-c", "tr \"\\\\0\" \"\\\\n\" </proc/$$/environ | sort >out/env"],
	"env": {"PATH": "/bin:/usr/bin"},
	"mounts": [{"dest": "out", "output": true}]}' '"e"'
spec cwd '"e": {"op": "exec", "args": ["sh", "-c", "pwd >../../out/pwd; echo here >here.txt"], "cwd": "work/dir",
	"mounts": [{"dest": "out", "output": true}, {"dest": "work/dir", "output": true}]}' '"e:0"'
spec stdin '"e": {"op": "exec", "args": ["sh", "-c", "cat >out/stdin; echo rc=$? >>out/stdin"],
	"mounts": [{"dest": "out", "output": true}]}' '"e"'
spec from-input "$SRC"', "e": {"op": "exec", "args": ["sh", "-c", "echo new >io/new.txt; rm io/top.txt"],
	"mounts": [{"dest": "io", "input": "src", "output": true}]}' '"e"'
spec two-outputs '"e": {"op": "exec", "args": ["sh", "-c", "echo first >a/f; echo second >b/f"],
	"mounts": [{"dest": "a", "output": true}, {"dest": "b", "output": true}]}' '"e:0", "e:1"'
spec exit3 '"e": {"op": "exec", "args": ["sh", "-c", "exit 3"], "mounts": [{"dest": "out", "output": true}]}' '"e"'
spec tail '"e": {"op": "exec", "name": "noisy", "args": ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line-$i; done; exit 7"],
	"mounts": [{"dest": "out", "output": true}]}' '"e"'
spec timeout '"e": {"op": "exec", "args": ["sh", "-c", "sleep 20"], "timeout": 1, "mounts": [{"dest": "out", "output": true}]}' '"e"'
spec bgkill '"e": {"op": "exec", "args": ["sh", "-c", "(sleep 27.31; echo late >out/late) & echo started >out/started"],
	"mounts": [{"dest": "out", "output": true}]}' '"e"'

sfs_mount -o sandbox=bwrap || say "# mount failed; every case below will fail"

test_expect_success 'an output mount is collected as the result, modes and symlinks kept' '
	o=$(sfs_run_output "$DATA/out.json" e) &&
	expect_file_eq made "$o/made.txt" &&
	expect_mode 755 "$o/made.txt" &&
	test -d "$o/d" &&
	expect_eq made.txt "$(readlink "$o/l")"
'

test_expect_success 'inputs are read-only in the work dir' '
	N=$(sfs_run "$DATA/readonly.json") &&
	expect_file_eq "$(printf "readonly\npresent")" "$(sfs_output "$N" e)/r"
'

test_expect_success 'a selector mounts only that path of its input' '
	o=$(sfs_run_output "$DATA/selector.json" e) &&
	expect_file_eq "$(printf "x\ny")" "$o/ls-sel" &&
	expect_file_eq top "$o/one" &&
	ls=$(sfs_cat "$o/ls-root") &&
	expect_not_contains other "$ls" &&
	expect_not_contains top.txt "$ls"
'

test_expect_success 'env is exactly the spec env plus the default PATH, HOME and PWD' '
	N=$(sfs_run "$DATA/env.json") &&
	printf "%s\n" EMPTY= FOO=bar HOME=/work LANG=C "PATH=$SFS_DEFAULT_PATH" PWD=/work |
		sort >expected &&
	sfs_cat "$(sfs_output "$N" e)/env" >actual &&
	diff -u expected actual
'

test_expect_success 'a PATH in env replaces the default' '
	N=$(sfs_run "$DATA/env-path.json") &&
	printf "%s\n" HOME=/work PATH=/bin:/usr/bin PWD=/work >expected &&
	diff -u expected "$(sfs_output "$N" e)/env"
'

test_expect_success 'cwd is relative to the work dir' '
	o=$(sfs_run_output "$DATA/cwd.json" e) &&
	pwd=$(sfs_cat "$o/pwd") &&
	case $pwd in */work/dir) ;; *) echo "pwd: $pwd"; exit 1;; esac
'

test_expect_success 'stdin is /dev/null' '
	N=$(sfs_run "$DATA/stdin.json") &&
	expect_file_eq rc=0 "$(sfs_output "$N" e)/stdin"
'

test_expect_success 'an output mount with an input starts as a copy of it' '
	o=$(sfs_run_output "$DATA/from-input.json" e) &&
	expect_file_eq new "$o/new.txt" &&
	test ! -e "$o/top.txt" &&
	expect_file_eq x "$o/sub/x" &&
	expect_file_eq top "$DATA/src/top.txt"
'

test_expect_success 'several output mounts give outputs in mount order, key:0 is "key", key:N is shown as key@N' '
	N=$(sfs_run "$DATA/two-outputs.json") &&
	expect_file_eq first "$MNT/jobs/$N/outputs/e/f" &&
	expect_file_eq second "$MNT/jobs/$N/outputs/e@1/f" &&
	sfs_cat "$MNT/jobs/$N/result" >result &&
	grep -Eq "^e:1 sha256:[0-9a-f]{64}$" result
'

test_expect_success 'a non-zero exit fails the vertex and the job with the exit code' '
	N=$(sfs_submit "$DATA/exit3.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "process \"sh -c exit 3\" did not complete successfully: exit code: 3" \
		"$(sfs_cat "$MNT/jobs/$N/error")" &&
	expect_eq failed "$(sfs_cat "$MNT/jobs/$N/state")"
'

test_expect_success 'the failure reason carries the tail of the output' '
	N=$(sfs_submit "$DATA/tail.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	err=$(sfs_cat "$MNT/jobs/$N/error") &&
	expect_contains "exit code: 7" "$err" &&
	expect_contains line-12 "$err" &&
	expect_contains line-3 "$err" &&
	expect_not_contains line-2 "$(echo "$err" | grep -v "^.*did not complete")"
'

test_expect_success 'the failed vertex is marked failed with its log' '
	N=$(basename "$(readlink "$MNT/jobs/latest")") &&
	for v in "$MNT/jobs/$N/vertices"/*; do
		if [ "$(sfs_cat "$v/name")" = noisy ]; then
			expect_eq failed "$(sfs_cat "$v/state" | head -n 1)" &&
			expect_contains line-12 "$(sfs_cat "$v/log")" &&
			exit 0
		fi
	done
	echo "no vertex named noisy"; exit 1
'

test_expect_success 'timeout fails the vertex with "timeout after 1s"' '
	N=$(sfs_submit "$DATA/timeout.json") &&
	expect_eq failed "$(SFS_WAIT_TIMEOUT=15 sfs_wait "$N")" &&
	expect_contains "timeout after 1s" "$(sfs_cat "$MNT/jobs/$N/error")"
'

test_expect_success 'processes left behind by the main process are killed' '
	N=$(sfs_run "$DATA/bgkill.json") &&
	expect_file_eq started "$(sfs_output "$N" e)/started" &&
	test ! -e "$(sfs_output "$N" e)/late" &&
	wait_no_proc "sleep 27.31"
'

test_done
