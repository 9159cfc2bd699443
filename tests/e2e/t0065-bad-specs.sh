#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='malformed specs: each is refused at close with EINVAL and an error naming the vertex and field, and the daemon serves on'
# LeakSanitizer on in the daemon: a rejected spec must leave nothing behind.
export SFS_DAEMON_ASAN_OPTIONS=${SFS_DAEMON_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
. "$(dirname "$0")/lib.sh"

# Every spec below is one case: bad TITLE SPEC WORD...  SPEC is written to a fresh
# pending job's spec; the close must fail with EINVAL, the job stay pending and its
# error contain every WORD.  bad_file TITLE FILE WORD... takes the bytes from FILE.
ncase=0
bad_file() {
	local title=$1 file=$2
	shift 2
	ncase=$((ncase + 1))
	cp "$file" "$DATA/bad-$ncase.json"
	printf '%s\n' "$@" >"$DATA/bad-$ncase.words"
	test_expect_success "bad spec $ncase: $title" "check_bad $ncase"
}
bad() {
	local title=$1 spec=$2
	shift 2
	printf '%s\n' "$spec" >"$DATA/spec.tmp"
	bad_file "$title" "$DATA/spec.tmp" "$@"
}

# check_bad N: bad-N.json is refused with EINVAL at close; error holds bad-N.words.
check_bad() {
	local n w err
	n=$(sfs_new)
	test_must_fail sfs_write "$DATA/bad-$1.json" "$MNT/jobs/$n/spec" 2>write.err
	expect_contains "Invalid argument" "$(cat write.err)"
	expect_eq pending "$(sfs_cat "$MNT/jobs/$n/state")"
	err=$(sfs_cat "$MNT/jobs/$n/error")
	echo "error: $err"
	while IFS= read -r w; do
		expect_contains "$w" "$err"
	done <"$DATA/bad-$1.words"
}

# Vertex "vx" is the one at fault; "src" is a good one-output vertex to refer to.
SRC='"src": {"op": "file", "actions": [{"mkfile": {"path": "f", "data": "x"}}]}'
# v SPEC_OF_VX: a job of src and vx, building vx.
v() {
	printf '{"vertices": {%s, "vx": %s}, "outputs": ["vx"]}' "$SRC" "$1"
}
# act ACTION: vx is a file op with that one action.
act() {
	v "{\"op\": \"file\", \"actions\": [$1]}"
}
# mnt MOUNT: vx is an exec with that mount and an output.
mnt() {
	v "{\"op\": \"exec\", \"args\": [\"true\"], \"mounts\": [$1, {\"dest\": \"out\", \"output\": true}]}"
}
# ex FIELDS: vx is an exec with one output and FIELDS added.
ex() {
	v "{\"op\": \"exec\", \"args\": [\"true\"], \"mounts\": [{\"dest\": \"out\", \"output\": true}], $1}"
}
# job FIELDS: a good vertex vx, FIELDS at the top level.
job() {
	printf '{"vertices": {"vx": {"op": "file"}}, %s}' "$1"
}
VX='vertex "vx"'

sfs_mount -o max_vertices=8 || say "# mount failed; every case below will fail"

# ---- the bytes: JSON syntax, UTF-8, depth, duplicates
bad 'truncated JSON' '{"vertices": {"vx": {"op": "file"}}, "outputs": ["vx"]' 'invalid JSON' 'end of file'
bad 'garbage after the object' '{"vertices": {"vx": {"op": "file"}}, "outputs": ["vx"]} x' 'invalid JSON'
bad 'only whitespace' '   ' 'invalid JSON'
printf '{"vertices": {"vx": {"op": "file", "name": "caf\xff"}}, "outputs": ["vx"]}' >"$DATA/raw"
bad_file 'a byte that is not UTF-8 in a string' "$DATA/raw" 'invalid JSON' 'UTF-8'
printf '{"vertices": {"vx": {"op": "file", "name": "\xc0\xaf"}}, "outputs": ["vx"]}' >"$DATA/raw"
bad_file 'an overlong UTF-8 sequence' "$DATA/raw" 'invalid JSON' 'UTF-8'
printf '{"vertices": {"v\xe9": {"op": "file"}}, "outputs": ["vx"]}' >"$DATA/raw"
bad_file 'invalid UTF-8 in a vertex key' "$DATA/raw" 'invalid JSON' 'UTF-8'
bad 'a lone UTF-16 surrogate escape' '{"vertices": {"vx": {"op": "file", "name": "\ud800"}}, "outputs": ["vx"]}' 'invalid JSON'
printf '{"vertices": {"vx": {"op": "file", "name": "a\0b"}}, "outputs": ["vx"]}' >"$DATA/raw"
bad_file 'a raw NUL byte in the text' "$DATA/raw" 'invalid JSON'
bad 'NUL escaped in an object key' '{"vertices": {"vx": {"op": "file", "a\u0000b": 1}}, "outputs": ["vx"]}' 'invalid JSON' 'NUL'
{
	printf '{"vertices": {"vx": {"op": "file", "description": '
	head -c 100000 /dev/zero | tr '\0' '['
	head -c 100000 /dev/zero | tr '\0' ']'
	printf '}}, "outputs": ["vx"]}'
} >"$DATA/raw"
bad_file 'arrays nested 100,000 deep' "$DATA/raw" 'invalid JSON' 'depth'
bad 'a number too large for a double' "$(ex '"timeout": 1e400')" 'invalid JSON'
bad 'an integer too large' "$(ex '"timeout": 99999999999999999999')" 'invalid JSON'
bad 'a vertex key given twice' '{"vertices": {"vx": {"op": "file"}, "vx": {"op": "file"}}, "outputs": ["vx"]}' 'invalid JSON' 'duplicate' 'vx'
bad 'a field given twice in a vertex' '{"vertices": {"vx": {"op": "file", "op": "merge"}}, "outputs": ["vx"]}' 'invalid JSON' 'duplicate' 'op'
bad 'a top-level field given twice' '{"vertices": {"vx": {"op": "file"}}, "outputs": ["vx"], "outputs": ["vx"]}' 'invalid JSON' 'duplicate' 'outputs'
bad 'the spec is an array' '[{"vertices": {}}]' 'must be a JSON object'

# ---- the job's own fields
bad 'an unknown top-level field' "$(job '"outputs": ["vx"], "Outputs": ["vx"]')" 'field "Outputs"' 'unknown field'
bad 'vertices missing' '{"outputs": ["vx"]}' 'field "vertices"' 'required'
bad 'vertices is an array' '{"vertices": [{"op": "file"}], "outputs": ["vx"]}' 'field "vertices"'
bad 'outputs is a string' "$(job '"outputs": "vx"')" 'field "outputs"'
bad 'an output is a number' "$(job '"outputs": [0]')" 'field "outputs[0]"'
bad 'an output out of range (vx:5 of a one-output vertex)' "$(job '"outputs": ["vx:5"]')" 'field "outputs[0]"' 'no output 5'
bad 'an output index with a leading zero (vx:00)' "$(job '"outputs": ["vx:00"]')" 'field "outputs[0]"'
bad 'export is a string' "$(job '"outputs": ["vx"], "export": "min"')" 'field "export"'
bad 'an unknown export field' "$(job '"outputs": ["vx"], "export": {"mode": "min", "compress": true}')" 'field "export.compress"' 'unknown field'
bad 'export.mode is a number' "$(job '"outputs": ["vx"], "export": {"mode": 1}')" 'field "export.mode"'
bad 'export.mode is not a mode' "$(job '"outputs": ["vx"], "export": {"mode": "all"}')" 'field "export.mode"'
bad 'export.form is not a form' "$(job '"outputs": ["vx"], "export": {"form": "tar"}')" 'field "export.form"'
bad 'job cache_from is a string' "$(job '"outputs": ["vx"], "cache_from": "/tmp"')" 'field "cache_from"'
bad 'a job cache_from entry is relative' "$(job '"outputs": ["vx"], "cache_from": ["cache"]')" 'field "cache_from[0]"'
bad 'a job cache_from entry holds NUL' "$(job '"outputs": ["vx"], "cache_from": ["/tmp/a\u0000b"]')" 'field "cache_from[0]"' 'NUL'
bad 'job ignore_cache is a string' "$(job '"outputs": ["vx"], "ignore_cache": "yes"')" 'field "ignore_cache"'
bad 'an output ref holds NUL' "$(job '"outputs": ["vx\u0000:0"]')" 'field "outputs[0]"' 'NUL'
bad 'more vertices than max_vertices=8' "{\"vertices\": {$(for i in 1 2 3 4 5 6 7 8 9; do printf '"v%s": {"op": "file"}, ' "$i"; done)\"vx\": {\"op\": \"file\"}}, \"outputs\": [\"vx\"]}" 'field "vertices"' 'more than 8'

# ---- vertex fields every op has
bad 'a vertex name with a space' '{"vertices": {"v x": {"op": "file"}}, "outputs": ["v x"]}' 'vertex "v x"' 'invalid name'
bad 'a vertex name of 129 characters' "{\"vertices\": {\"$(printf 'a%.0s' $(seq 129))\": {\"op\": \"file\"}}, \"outputs\": [\"a\"]}" 'invalid name'
bad 'a vertex that is a string' "$(v '"file"')" "$VX" 'must be an object'
bad 'op missing' "$(v '{"name": "x"}')" "$VX" 'field "op"' 'required'
bad 'op is a number' "$(v '{"op": 1}')" "$VX" 'field "op"'
bad 'op holds NUL' "$(v '{"op": "file\u0000"}')" "$VX" 'field "op"' 'NUL'
bad 'name is a number' "$(v '{"op": "file", "name": 7}')" "$VX" 'field "name"'
bad 'name holds NUL' "$(v '{"op": "file", "name": "a\u0000b"}')" "$VX" 'field "name"' 'NUL'
bad 'description is a string' "$(v '{"op": "file", "description": "x"}')" "$VX" 'field "description"'
bad 'a description value is a number' "$(v '{"op": "file", "description": {"k": 1}}')" "$VX" 'field "description.k"'
bad 'ignore_cache is a string' "$(v '{"op": "file", "ignore_cache": "yes"}')" "$VX" 'field "ignore_cache"'
bad 'export_cache is a number' "$(v '{"op": "file", "export_cache": 1}')" "$VX" 'field "export_cache"'
bad 'vertex cache_from is a string' "$(v '{"op": "file", "cache_from": "/tmp"}')" "$VX" 'field "cache_from"'
bad 'an unknown vertex field' "$(v '{"op": "file", "colour": "red"}')" "$VX" 'field "colour"' 'unknown field'
bad 'a field of another op (args on a file op)' "$(v '{"op": "file", "args": ["true"]}')" "$VX" 'field "args"' 'unknown field'

# ---- local
bad 'local path is a number' "$(v '{"op": "local", "path": 1}')" "$VX" 'field "path"'
bad 'local path is relative' "$(v '{"op": "local", "path": "src"}')" "$VX" 'field "path"'
bad 'local path holds NUL' "$(v '{"op": "local", "path": "/tmp\u0000/x"}')" "$VX" 'field "path"' 'NUL'
bad 'local include is a string' "$(v '{"op": "local", "path": "/tmp", "include": "*.c"}')" "$VX" 'field "include"'
bad 'a local exclude pattern is a number' "$(v '{"op": "local", "path": "/tmp", "exclude": [1]}')" "$VX" 'field "exclude"'
bad 'an unknown local field' "$(v '{"op": "local", "path": "/tmp", "follow": true}')" "$VX" 'field "follow"' 'unknown field'

# ---- file: base and actions
bad 'base is a number' "$(v '{"op": "file", "base": 1}')" "$VX" 'field "base"'
bad 'base out of range (src:5 of a one-output vertex)' "$(v '{"op": "file", "base": "src:5"}')" "$VX" 'field "base"' 'no output 5'
bad 'base index with a leading zero (src:01)' "$(v '{"op": "file", "base": "src:01"}')" "$VX" 'field "base"'
bad 'base index with a leading zero (src:00)' "$(v '{"op": "file", "base": "src:00"}')" "$VX" 'field "base"'
bad 'base index with a sign (src:+0)' "$(v '{"op": "file", "base": "src:+0"}')" "$VX" 'field "base"'
bad 'base index empty (src:)' "$(v '{"op": "file", "base": "src:"}')" "$VX" 'field "base"'
bad 'base index past int (src:99999999999)' "$(v '{"op": "file", "base": "src:99999999999"}')" "$VX" 'field "base"'
bad 'base holds NUL' "$(v '{"op": "file", "base": "src\u0000x"}')" "$VX" 'field "base"' 'NUL'
bad 'actions is an object' "$(v '{"op": "file", "actions": {"mkdir": {"path": "a"}}}')" "$VX" 'field "actions"'
bad 'an action is a string' "$(act '"mkdir"')" "$VX" 'field "actions[0]"'
bad 'an action with two names' "$(act '{"mkdir": {"path": "a"}, "rm": {"path": "a"}}')" "$VX" 'field "actions[0]"'
bad 'an unknown action' "$(act '{"chmod": {"path": "a"}}')" "$VX" 'field "actions[0].chmod"' 'unknown action'
bad 'an action body is an array' "$(act '{"mkdir": ["a"]}')" "$VX" 'field "actions[0].mkdir"'
bad 'an unknown mkdir field' "$(act '{"mkdir": {"path": "a", "owner": "me"}}')" "$VX" 'field "actions[0].mkdir.owner"' 'unknown field'
bad 'an unknown mkfile field' "$(act '{"mkfile": {"path": "a", "uid": 0}}')" "$VX" 'field "actions[0].mkfile.uid"' 'unknown field'
bad 'an unknown copy field' "$(act '{"copy": {"from": "src", "follow_symlinks": true}}')" "$VX" 'field "actions[0].copy.follow_symlinks"' 'unknown field'
bad 'an unknown rm field' "$(act '{"rm": {"path": "a", "recursive": true}}')" "$VX" 'field "actions[0].rm.recursive"' 'unknown field'
bad 'an unknown symlink field' "$(act '{"symlink": {"path": "a", "target": "b", "hard": true}}')" "$VX" 'field "actions[0].symlink.hard"' 'unknown field'
bad 'mkdir path is a number' "$(act '{"mkdir": {"path": 1}}')" "$VX" 'field "actions[0].mkdir.path"'
bad 'mkdir parents is a string' "$(act '{"mkdir": {"path": "a", "parents": "yes"}}')" "$VX" 'field "actions[0].mkdir.parents"'
bad 'mode is a number' "$(act '{"mkdir": {"path": "a", "mode": 493}}')" "$VX" 'field "actions[0].mkdir.mode"'
bad 'mode over 07777' "$(act '{"mkdir": {"path": "a", "mode": "10000"}}')" "$VX" 'field "actions[0].mkdir.mode"'
bad 'mode of eight 7s' "$(act '{"mkfile": {"path": "a", "mode": "77777777"}}')" "$VX" 'field "actions[0].mkfile.mode"'
bad 'mode empty' "$(act '{"mkfile": {"path": "a", "mode": ""}}')" "$VX" 'field "actions[0].mkfile.mode"'
bad 'mode negative' "$(act '{"mkfile": {"path": "a", "mode": "-644"}}')" "$VX" 'field "actions[0].mkfile.mode"'
bad 'mode with an 8' "$(act '{"mkfile": {"path": "a", "mode": "0648"}}')" "$VX" 'field "actions[0].mkfile.mode"'
bad 'mode with a 0o prefix' "$(act '{"mkfile": {"path": "a", "mode": "0o644"}}')" "$VX" 'field "actions[0].mkfile.mode"'
bad 'mkfile data is a number' "$(act '{"mkfile": {"path": "a", "data": 1}}')" "$VX" 'field "actions[0].mkfile.data"'
bad 'mkfile data and data_base64 both' "$(act '{"mkfile": {"path": "a", "data": "x", "data_base64": "eA=="}}')" "$VX" 'field "actions[0].mkfile.data"'
bad 'data_base64 outside the alphabet' "$(act '{"mkfile": {"path": "a", "data_base64": "@@@@"}}')" "$VX" 'field "actions[0].mkfile.data_base64"' 'base64'
bad 'data_base64 without padding' "$(act '{"mkfile": {"path": "a", "data_base64": "eA"}}')" "$VX" 'field "actions[0].mkfile.data_base64"' 'base64'
bad 'data_base64 with a space' "$(act '{"mkfile": {"path": "a", "data_base64": "eA= ="}}')" "$VX" 'field "actions[0].mkfile.data_base64"' 'base64'
bad 'data_base64 with data after the padding' "$(act '{"mkfile": {"path": "a", "data_base64": "eA==eA=="}}')" "$VX" 'field "actions[0].mkfile.data_base64"' 'base64'
bad 'data_base64 url-safe alphabet' "$(act '{"mkfile": {"path": "a", "data_base64": "-_-_"}}')" "$VX" 'field "actions[0].mkfile.data_base64"' 'base64'
bad 'data_base64 is a number' "$(act '{"mkfile": {"path": "a", "data_base64": 1}}')" "$VX" 'field "actions[0].mkfile.data_base64"'
bad 'data_base64 holds NUL' "$(act '{"mkfile": {"path": "a", "data_base64": "eA==\u0000"}}')" "$VX" 'field "actions[0].mkfile.data_base64"'
bad 'copy from missing' "$(act '{"copy": {"src": "f"}}')" "$VX" 'field "actions[0].copy.from"' 'required'
bad 'copy from is a number' "$(act '{"copy": {"from": 0}}')" "$VX" 'field "actions[0].copy.from"'
bad 'copy from out of range (src:1)' "$(act '{"copy": {"from": "src:1"}}')" "$VX" 'field "actions[0].copy.from"' 'no output 1'
bad 'copy from with a leading zero (src:00)' "$(act '{"copy": {"from": "src:00"}}')" "$VX" 'field "actions[0].copy.from"'
bad 'copy include is a string' "$(act '{"copy": {"from": "src", "include": "*"}}')" "$VX" 'field "actions[0].copy.include"'
bad 'a copy exclude pattern is absolute' "$(act '{"copy": {"from": "src", "exclude": ["/etc"]}}')" "$VX" 'field "actions[0].copy.exclude"'
bad 'rm allow_not_found is a string' "$(act '{"rm": {"path": "a", "allow_not_found": "no"}}')" "$VX" 'field "actions[0].rm.allow_not_found"'
bad 'symlink target empty' "$(act '{"symlink": {"path": "a", "target": ""}}')" "$VX" 'field "actions[0].symlink.target"'
bad 'symlink target is a number' "$(act '{"symlink": {"path": "a", "target": 1}}')" "$VX" 'field "actions[0].symlink.target"'
bad 'symlink target holds NUL' "$(act '{"symlink": {"path": "a", "target": "b\u0000c"}}')" "$VX" 'field "actions[0].symlink.target"' 'NUL'

# ---- tree paths: path, src, dest, selector, cwd
# NAME|MAKER TEMPLATE|FIELD: the same five bad values (@) in each path field.
for p in \
	'mkdir.path|act {"mkdir": {"path": "@"}}|actions[0].mkdir.path' \
	'mkfile.path|act {"mkfile": {"path": "@"}}|actions[0].mkfile.path' \
	'rm.path|act {"rm": {"path": "@"}}|actions[0].rm.path' \
	'symlink.path|act {"symlink": {"path": "@", "target": "t"}}|actions[0].symlink.path' \
	'copy.src|act {"copy": {"from": "src", "src": "@"}}|actions[0].copy.src' \
	'copy.dest|act {"copy": {"from": "src", "dest": "@"}}|actions[0].copy.dest' \
	'mounts.dest|mnt {"dest": "@", "input": "src"}|mounts[0].dest' \
	'mounts.selector|mnt {"dest": "in", "input": "src", "selector": "@"}|mounts[0].selector' \
	'exec cwd|ex "cwd": "@"|cwd' \
	'build path|v {"op": "build", "input": "src", "path": "@"}|path'; do
	name=${p%%|*}
	rest=${p#*|}
	maker=${rest%%|*}
	field=${rest#*|}
	fn=${maker%% *}
	tmpl=${maker#* }
	for val in '..|a/../b|a . or .. component' '/|/etc/passwd|relative' 'empty component|a//b|empty component' \
		'NUL|a\u0000b|NUL' 'trailing slash|a/|empty component'; do
		what=${val%%|*}
		rest2=${val#*|}
		bytes=${rest2%%|*}
		word=${rest2#*|}
		bad "$name with $what" "$($fn "${tmpl//@/"$bytes"}")" "$VX" "field \"$field\"" "$word"
	done
done
bad 'mkdir path empty' "$(act '{"mkdir": {"path": ""}}')" "$VX" 'field "actions[0].mkdir.path"' 'empty'
bad 'a path of 4097 bytes' "$(act "{\"mkdir\": {\"path\": \"$(head -c 4097 /dev/zero | tr '\0' a)\"}}")" "$VX" 'field "actions[0].mkdir.path"' 'longer than 4096'
bad 'a path component of 256 bytes' "$(act "{\"mkdir\": {\"path\": \"a/$(head -c 256 /dev/zero | tr '\0' b)\"}}")" "$VX" 'field "actions[0].mkdir.path"' '255'

# ---- exec
bad 'args missing' "$(v '{"op": "exec", "mounts": [{"dest": "out", "output": true}]}')" "$VX" 'field "args"' 'required'
bad 'args is a string' "$(v '{"op": "exec", "args": "true", "mounts": [{"dest": "out", "output": true}]}')" "$VX" 'field "args"'
bad 'an arg is a number' "$(v '{"op": "exec", "args": ["echo", 1], "mounts": [{"dest": "out", "output": true}]}')" "$VX" 'field "args"'
bad 'an arg holds NUL' "$(v '{"op": "exec", "args": ["echo", "a\u0000b"], "mounts": [{"dest": "out", "output": true}]}')" "$VX" 'field "args[1]"' 'NUL'
bad 'env is an array' "$(ex '"env": ["A=1"]')" "$VX" 'field "env"'
bad 'an env value is a number' "$(ex '"env": {"A": 1}')" "$VX" 'field "env.A"'
bad 'an env name with =' "$(ex '"env": {"A=B": "1"}')" "$VX" 'field "env.A=B"'
bad 'an env value holds NUL' "$(ex '"env": {"A": "1\u00002"}')" "$VX" 'field "env.A"' 'NUL'
bad 'cwd is a number' "$(ex '"cwd": 1')" "$VX" 'field "cwd"'
bad 'timeout is a string' "$(ex '"timeout": "10"')" "$VX" 'field "timeout"'
bad 'timeout is negative' "$(ex '"timeout": -1')" "$VX" 'field "timeout"'
bad 'timeout is a fraction' "$(ex '"timeout": 1.5')" "$VX" 'field "timeout"'
bad 'timeout past int' "$(ex '"timeout": 4294967296')" "$VX" 'field "timeout"'
bad 'network is a string' "$(ex '"network": "yes"')" "$VX" 'field "network"'
bad 'an unknown exec field' "$(ex '"user": "root"')" "$VX" 'field "user"' 'unknown field'
bad 'mounts is an object' "$(v '{"op": "exec", "args": ["true"], "mounts": {"dest": "out"}}')" "$VX" 'field "mounts"'
bad 'a mount is a string' "$(mnt '"in"')" "$VX" 'field "mounts[0]"'
bad 'an unknown mount field' "$(mnt '{"dest": "in", "input": "src", "type": "tmpfs"}')" "$VX" 'field "mounts[0].type"' 'unknown field'
bad 'a mount without dest' "$(mnt '{"input": "src"}')" "$VX" 'field "mounts[0].dest"' 'required'
bad 'mount dest is a number' "$(mnt '{"dest": 1, "input": "src"}')" "$VX" 'field "mounts[0].dest"'
bad 'mount input is a number' "$(mnt '{"dest": "in", "input": 1}')" "$VX" 'field "mounts[0].input"'
bad 'mount input out of range (src:5)' "$(mnt '{"dest": "in", "input": "src:5"}')" "$VX" 'field "mounts[0].input"' 'no output 5'
bad 'mount input with a leading zero (src:01)' "$(mnt '{"dest": "in", "input": "src:01"}')" "$VX" 'field "mounts[0].input"'
bad 'mount selector is a number' "$(mnt '{"dest": "in", "input": "src", "selector": 1}')" "$VX" 'field "mounts[0].selector"'
bad 'a selector without an input' "$(mnt '{"dest": "in", "selector": "f"}')" "$VX" 'field "mounts[0].selector"'
bad 'mount readonly is a string' "$(mnt '{"dest": "in", "input": "src", "readonly": "true"}')" "$VX" 'field "mounts[0].readonly"'
bad 'mount output is a number' "$(mnt '{"dest": "in", "input": "src", "output": 1}')" "$VX" 'field "mounts[0].output"'
bad 'an output mount that is read-only' "$(mnt '{"dest": "in", "output": true, "readonly": true}')" "$VX" 'field "mounts[0].readonly"'
bad 'two mounts with one dest' "$(mnt '{"dest": "out", "input": "src"}')" "$VX" 'field "mounts[1].dest"'
bad 'a ref to an exec output that does not exist (e:1)' \
	'{"vertices": {"e": {"op": "exec", "args": ["true"], "mounts": [{"dest": "o", "output": true}]}, "vx": {"op": "merge", "inputs": ["e", "e:1"]}}, "outputs": ["vx"]}' \
	"$VX" 'field "inputs[1]"' 'no output 1'

# ---- merge and build
bad 'merge inputs missing' "$(v '{"op": "merge"}')" "$VX" 'field "inputs"' 'required'
bad 'merge of one input' "$(v '{"op": "merge", "inputs": ["src"]}')" "$VX" 'field "inputs"' '2 or more'
bad 'merge inputs is a string' "$(v '{"op": "merge", "inputs": "src"}')" "$VX" 'field "inputs"'
bad 'a merge input is a number' "$(v '{"op": "merge", "inputs": ["src", 1]}')" "$VX" 'field "inputs[1]"'
bad 'a merge input out of range (src:5)' "$(v '{"op": "merge", "inputs": ["src", "src:5"]}')" "$VX" 'field "inputs[1]"' 'no output 5'
bad 'a merge input with a leading zero (src:01)' "$(v '{"op": "merge", "inputs": ["src", "src:01"]}')" "$VX" 'field "inputs[1]"'
bad 'an unknown merge field' "$(v '{"op": "merge", "inputs": ["src", "src"], "strategy": "ours"}')" "$VX" 'field "strategy"' 'unknown field'
bad 'build input missing' "$(v '{"op": "build"}')" "$VX" 'field "input"' 'required'
bad 'build input is a number' "$(v '{"op": "build", "input": 1}')" "$VX" 'field "input"'
bad 'build path is a number' "$(v '{"op": "build", "input": "src", "path": 1}')" "$VX" 'field "path"'
bad 'build output is a number' "$(v '{"op": "build", "input": "src", "output": 1}')" "$VX" 'field "output"'
bad 'build output with a leading zero (x:01)' "$(v '{"op": "build", "input": "src", "output": "x:01"}')" "$VX" 'field "output"'
bad 'build output holds NUL' "$(v '{"op": "build", "input": "src", "output": "x\u0000"}')" "$VX" 'field "output"' 'NUL'
bad 'an unknown build field' "$(v '{"op": "build", "input": "src", "args": []}')" "$VX" 'field "args"' 'unknown field'

# ---- cycles
bad 'a cycle through base' '{"vertices": {"vx": {"op": "file", "base": "vy"}, "vy": {"op": "file", "base": "vx"}}, "outputs": ["vx"]}' "$VX" 'field "base"' 'dependency cycle'
bad 'a cycle through copy.from' '{"vertices": {"vx": {"op": "file", "actions": [{"copy": {"from": "vy"}}]}, "vy": {"op": "file", "actions": [{"copy": {"from": "vx"}}]}}, "outputs": ["vx"]}' "$VX" 'field "actions"' 'dependency cycle'
bad 'a cycle through mounts' '{"vertices": {"vx": {"op": "exec", "args": ["true"], "mounts": [{"dest": "i", "input": "vy"}, {"dest": "o", "output": true}]}, "vy": {"op": "exec", "args": ["true"], "mounts": [{"dest": "i", "input": "vx"}, {"dest": "o", "output": true}]}}, "outputs": ["vx"]}' "$VX" 'field "mounts"' 'dependency cycle'
bad 'a cycle through merge' '{"vertices": {"vx": {"op": "merge", "inputs": ["vy", "vy"]}, "vy": {"op": "merge", "inputs": ["vx", "vx"]}}, "outputs": ["vx"]}' "$VX" 'field "inputs"' 'dependency cycle'
bad 'an exec mounting its own output' '{"vertices": {"vx": {"op": "exec", "args": ["true"], "mounts": [{"dest": "o", "input": "vx", "output": true}]}}, "outputs": ["vx"]}' "$VX" 'field "mounts"' 'dependency cycle'
bad 'a cycle of three through base, copy and merge' '{"vertices": {"vx": {"op": "file", "base": "vy"}, "vy": {"op": "file", "actions": [{"copy": {"from": "vz"}}]}, "vz": {"op": "merge", "inputs": ["vx", "vx"]}}, "outputs": ["vx"]}' "$VX" 'field "base"' 'vx -> vy -> vz -> vx'
bad 'a cycle through build input' '{"vertices": {"vx": {"op": "build", "input": "vx"}}, "outputs": ["vx"]}' "$VX" 'field "input"' 'dependency cycle'

# ---- over the size limit (spec_max, 16 MiB by default)
# writer.py FILE: copies stdin to FILE until a write fails; prints the errno names of
# the write and of the close ("ok" when they succeed).
cat >"$DATA/writer.py" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
werr = "ok"
while werr == "ok":
    b = sys.stdin.buffer.read1(1 << 16)
    if not b:
        break
    try:
        while b:
            b = b[os.write(fd, b):]
    except OSError as e:
        werr = errno.errorcode[e.errno]
try:
    os.close(fd)
    cerr = "ok"
except OSError as e:
    cerr = errno.errorcode[e.errno]
print("write", werr)
print("close", cerr)
EOF
# huge TARGET: a spec whose name is 1 GiB of "a", streamed into TARGET.
huge() {
	{
		printf '{"vertices": {"vx": {"op": "file", "name": "'
		head -c 1073741824 /dev/zero | tr '\0' a
		printf '"}}, "outputs": ["vx"]}'
	} | python3 "$DATA/writer.py" "$1"
}

test_expect_success 'a 1 GiB string: EFBIG at write, EFBIG at close, error says the limit' '
	n=$(sfs_new) &&
	huge "$MNT/jobs/$n/spec" >res &&
	cat res &&
	expect_eq "write EFBIG
close EFBIG" "$(cat res)" &&
	expect_eq pending "$(sfs_cat "$MNT/jobs/$n/state")" &&
	err=$(sfs_cat "$MNT/jobs/$n/error") &&
	expect_contains "larger than 16777216 bytes" "$err" &&
	expect_contains "spec_max" "$err" &&
	expect_not_contains "invalid JSON" "$err" &&
	echo "$n" >"$SCRATCH/huge-job"
'

test_expect_success 'the same through jobs/new' '
	huge "$MNT/jobs/new" >res &&
	expect_eq "write EFBIG
close EFBIG" "$(cat res)" &&
	last=$(ls "$MNT/jobs" | grep -E "^[0-9]+\$" | sort -n | tail -n 1) &&
	expect_contains "larger than 16777216 bytes" "$(sfs_cat "$MNT/jobs/$last/error")"
'

test_expect_success 'a good spec written to the job refused as too large is accepted' '
	n=$(cat "$SCRATCH/huge-job") &&
	printf "%s\n" "{\"vertices\": {\"ok\": {\"op\": \"file\"}}, \"outputs\": [\"ok\"]}" >good1.json &&
	sfs_write good1.json "$MNT/jobs/$n/spec" &&
	expect_eq done "$(sfs_wait "$n")"
'

# ---- what the daemon does meanwhile
good='{"vertices": {"ok": {"op": "file", "actions": [{"mkfile": {"path": "f", "data": "fine"}}]}}, "outputs": ["ok"]}'
printf '%s\n' "$good" >"$DATA/good.json"

test_expect_success 'after every rejection a good spec still runs' '
	N=$(sfs_run "$DATA/good.json") &&
	expect_file_eq fine "$(sfs_output "$N" ok)/f"
'

test_expect_success 'every rejected job is still pending with its error' '
	n=0
	for j in $(ls "$MNT/jobs" | grep -E "^[0-9]+\$"); do
		st=$(sfs_cat "$MNT/jobs/$j/state")
		if [ "$st" = pending ]; then
			test -s "$MNT/jobs/$j/error" || { echo "job $j: no error"; exit 1; }
			n=$((n + 1))
		fi
	done
	echo "$n pending" &&
	test "$n" -ge '"$ncase"'
'

test_done
