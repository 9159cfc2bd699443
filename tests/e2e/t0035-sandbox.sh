#!/bin/bash
# shellcheck disable=SC2016,SC2034,SC1091,SC2317
test_description='hermetic execs: the bubblewrap sandbox, the submitter'"'"'s credentials, rootfs'
. "$(dirname "$0")/lib.sh"

# Everything here needs bwrap and a second user: missing tools fail with the
# line that installs them (tools/test installs them when run as root).
for tool in bwrap busybox setpriv useradd python3 cc; do
	if ! command -v "$tool" >/dev/null; then
		say "# $tool is missing: apt-get install -y bubblewrap busybox-static util-linux passwd python3 gcc" >&2
	fi
done

MARK="sfs-sbx-$$-$RANDOM"
USERNAME=sfs-t0035
id -u "$USERNAME" >/dev/null 2>&1 || useradd -M -N -s /bin/sh "$USERNAME" 2>/dev/null
U=$(id -u "$USERNAME" 2>/dev/null || echo 65534)
G=$(id -g "$USERNAME" 2>/dev/null || echo 65534)
chmod 755 "$SCRATCH" "$DATA"

# as_user CMD...: run CMD as the test's unprivileged user.
as_user() {
	setpriv --reuid "$U" --regid "$G" --clear-groups -- "$@"
}

# submit_as_user SPEC: submits SPEC (read by root) as the user; prints the job.
submit_as_user() {
	as_user sh -c 'cat >"$1/jobs/new" && basename "$(readlink "$1/jobs/latest")"' sh "$MNT" <"$1"
}

# exec_spec NAME ARGS-JSON [EXTRA-FIELDS]: a one-exec spec writing out/.
exec_spec() {
	cat >"$DATA/$1.json" <<JSON
{"vertices": {"e": {"op": "exec", "args": $2,
  "mounts": [{"dest": "out", "output": true}]${3:+, $3}}}, "outputs": ["e"]}
JSON
}

sfs_mount -o sandbox=bwrap,allow_other || say "# mount failed; every case below will fail"

test_expect_success 'the mount says it runs execs in bubblewrap' '
	expect_contains "sandbox /" "$(cat "$LOG")" &&
	expect_contains "bwrap" "$(cat "$LOG")"
'

exec_spec inside '["sh", "-c", "pwd >out/pwd; echo $HOME >out/home; hostname >out/host; id -u >out/uid; ls -A /tmp >out/tmp; ls / >out/root"]'
test_expect_success 'inside: /work, HOME=/work, hostname solverfs, a private empty /tmp' '
	o=$(sfs_run_output "$DATA/inside.json" e) &&
	expect_file_eq /work "$o/pwd" &&
	expect_file_eq /work "$o/home" &&
	expect_file_eq solverfs "$o/host" &&
	expect_file_eq 0 "$o/uid" &&
	expect_file_eq "" "$o/tmp" &&
	grep -qx work "$o/root" && grep -qx usr "$o/root"
'

exec_spec hostwrites '["sh", "-c", "for p in /tmp/'"$MARK"' '"$STATE"'/'"$MARK"' '"$MNT"'/'"$MARK"' /usr/'"$MARK"' /'"$MARK"'; do if touch $p 2>/dev/null; then echo $p >>out/private; else echo $p >>out/refused; fi; done; cat '"$STATE"'/solverfs.db >/dev/null 2>&1 && echo db >>out/leak; ls -A '"$STATE"' '"$MNT"' >out/hidden 2>&1; true"]'
test_expect_success 'writes to the host /tmp, STATE_DIR, the mount and / leave nothing on the host' '
	o=$(sfs_run_output "$DATA/hostwrites.json" e) &&
	test ! -e "/tmp/$MARK" && test ! -e "$STATE/$MARK" && test ! -e "$MNT/$MARK" &&
	test ! -e "/usr/$MARK" && test ! -e "/$MARK" &&
	grep -qx "/usr/$MARK" "$o/refused" && grep -qx "/$MARK" "$o/refused" &&
	test ! -e "$o/leak" &&
	expect_not_contains solverfs.db "$(cat "$o/hidden")" &&
	expect_not_contains jobs "$(cat "$o/hidden")"
'

cat >"$DATA/input-writes.json" <<JSON
{"vertices": {"f": {"op": "file", "actions": [{"mkfile": {"path": "x", "data": "orig\n", "mode": "0644"}}]},
  "e": {"op": "exec", "args": ["sh", "-c",
    "for t in 'echo w >in/x' 'chmod 666 in/x' 'truncate -s 0 in/x' 'ln in/x in/y' 'rm in/x' 'exec 3<in/x; echo w >/proc/self/fd/3' 'touch in/new'; do if sh -c \"\$t\" 2>/dev/null; then echo \"\$t\" >>out/worked; fi; done; cat in/x >out/x"],
  "mounts": [{"dest": "in", "input": "f"}, {"dest": "out", "output": true}]}},
 "outputs": ["e", "f"]}
JSON
test_expect_success 'an input cannot be changed: write, chmod, truncate, ln, rm, /proc/self/fd all fail' '
	N=$(sfs_run "$DATA/input-writes.json") &&
	o=$(sfs_output "$N" e) &&
	test ! -e "$o/worked" &&
	expect_file_eq orig "$o/x" &&
	expect_file_eq orig "$(sfs_output "$N" f)/x"
'

# A listener of the test on 127.0.0.1, stopped by its pid.
python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"hello\n"); c.close()
' >"$DATA/port" &
LISTENER=$!
for _ in $(seq 1 50); do test -s "$DATA/port" && break; sleep 0.1; done
PORT=$(cat "$DATA/port")
NET="import socket; s=socket.create_connection(('127.0.0.1', $PORT), 2); open('out/got','wb').write(s.recv(5))"
cat >"$DATA/net-off.json" <<JSON
{"vertices": {"e": {"op": "exec", "args": ["sh", "-c", "python3 -c \\"$NET\\" 2>/dev/null || echo refused >out/refused"],
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["e"]}
JSON
cat >"$DATA/net-on.json" <<JSON
{"vertices": {"e": {"op": "exec", "args": ["python3", "-c", "$NET"], "network": true,
  "mounts": [{"dest": "out", "output": true}]}}, "outputs": ["e"]}
JSON
test_expect_success 'no network without network: true; the host network with it' '
	N=$(sfs_run "$DATA/net-off.json") &&
	expect_file_eq refused "$(sfs_output "$N" e)/refused" &&
	test ! -e "$(sfs_output "$N" e)/got" &&
	M=$(sfs_run "$DATA/net-on.json") &&
	expect_file_eq hello "$(sfs_output "$M" e)/got"
'
kill "$LISTENER" 2>/dev/null
wait "$LISTENER" 2>/dev/null

exec_spec whoami '["sh", "-c", "id -u >out/uid; id -g >out/gid; cat /root/.profile >out/leak 2>/dev/null; true"]'
test_expect_success 'an exec runs as its submitter, who owns its outputs' '
	N=$(submit_as_user "$DATA/whoami.json") &&
	expect_eq done "$(sfs_wait "$N")" &&
	o=$(sfs_output "$N" e) &&
	expect_file_eq "$U" "$o/uid" &&
	expect_file_eq "$G" "$o/gid"
'

# The set-uid probe: a file op makes a 4755 copy of id(1); the user's exec runs it.
ID_B64=$(base64 -w0 "$(command -v id)")
cat >"$DATA/setuid.json" <<JSON
{"vertices": {"f": {"op": "file", "actions": [{"mkfile": {"path": "id", "data_base64": "$ID_B64", "mode": "4755"}}]},
  "e": {"op": "exec", "args": ["sh", "-c", "./in/id -u >out/euid; stat -c %a in/id >out/mode"],
  "mounts": [{"dest": "in", "input": "f"}, {"dest": "out", "output": true}]}},
 "outputs": ["e"]}
JSON
test_expect_success 'a set-uid input runs with the submitter'"'"'s uid, and carries no set-uid bit' '
	N=$(submit_as_user "$DATA/setuid.json") &&
	expect_eq done "$(sfs_wait "$N")" &&
	o=$(sfs_output "$N" e) &&
	expect_file_eq "$U" "$o/euid" &&
	expect_file_eq 555 "$o/mode"
'

VICTIM=/tmp/$MARK-victim
mkdir -p "$VICTIM" && chmod 700 "$VICTIM" && echo keep >"$VICTIM/planted"
cat >"$DATA/symlink-dest.json" <<JSON
{"vertices": {"a": {"op": "file", "actions": [{"symlink": {"target": "$VICTIM", "path": "l"}}]},
  "b": {"op": "file", "actions": [{"mkfile": {"path": "p", "data": "evil", "mode": "4755"}}]},
  "e": {"op": "exec", "args": ["true"],
  "mounts": [{"dest": "a", "input": "a"}, {"dest": "a/l/planted", "input": "b"},
             {"dest": "out", "output": true}]}},
 "outputs": ["e"]}
JSON
test_expect_success 'a dest through another mount'"'"'s symlink is refused, and nothing outside is touched' '
	N=$(submit_as_user "$DATA/symlink-dest.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "passes through a symlink" "$(sfs_cat "$MNT/jobs/$N/error")" &&
	expect_file_eq keep "$VICTIM/planted" &&
	expect_eq planted "$(ls "$VICTIM")"
'
cat >"$DATA/symlink-cwd.json" <<JSON
{"vertices": {"a": {"op": "file", "actions": [{"symlink": {"target": "$VICTIM", "path": "l"}}]},
  "e": {"op": "exec", "args": ["true"], "cwd": "a/l/sub",
  "mounts": [{"dest": "a", "input": "a", "output": true}]}},
 "outputs": ["e"]}
JSON
test_expect_success 'a cwd through a symlink is refused' '
	N=$(sfs_submit "$DATA/symlink-cwd.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "cwd \"a/l/sub\" passes through a symlink" "$(sfs_cat "$MNT/jobs/$N/error")" &&
	test ! -e "$VICTIM/sub"
'

mkdir -p "$DATA/rootonly" && echo secret >"$DATA/rootonly/s" && chmod 700 "$DATA/rootonly"
cat >"$DATA/local-secret.json" <<JSON
{"vertices": {"l": {"op": "local", "path": "$DATA/rootonly"}}, "outputs": ["l"]}
JSON
test_expect_success 'a user cannot read a root-only dir through local; root can' '
	N=$(submit_as_user "$DATA/local-secret.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "Permission denied" "$(sfs_cat "$MNT/jobs/$N/error")" &&
	M=$(sfs_run "$DATA/local-secret.json") &&
	expect_file_eq secret "$(sfs_output "$M" l)/s"
'

exec_spec slow '["sh", "-c", "sleep 30 # '"$MARK"'-slow"]'
test_expect_success 'a user can neither read nor cancel root'"'"'s job' '
	N=$(sfs_submit "$DATA/slow.json") &&
	test_must_fail as_user cat "$MNT/jobs/$N/spec" &&
	test_must_fail as_user sh -c "echo cancel >\"\$1\"" sh "$MNT/jobs/$N/ctl" &&
	expect_eq running "$(sfs_cat "$MNT/jobs/$N/state")" &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	expect_eq cancelled "$(sfs_wait "$N")"
'

test_expect_success 'a user'"'"'s cache_from is skipped with a warning' '
	sed "s|\"outputs\"|\"cache_from\": [\"$DATA\"], \"outputs\"|" "$DATA/whoami.json" >"$DATA/cf.json" &&
	N=$(submit_as_user "$DATA/cf.json") &&
	expect_eq done "$(sfs_wait "$N")" &&
	expect_contains "cache_from skipped" "$(sfs_cat "$MNT/jobs/$N/status")"
'

# Each long-lived process carries the marker in its command line: sh -c 'sleep; true' MARK.
exec_spec escape '["sh", "-c", "setsid sh -c \"sleep 300; true\" '"$MARK"'-escape </dev/null >/dev/null 2>&1 & sleep 1; pgrep -f '"$MARK"'-escape >out/seen"]'
test_expect_success 'a setsid child does not outlive its exec' '
	N=$(sfs_run "$DATA/escape.json") &&
	test -s "$(sfs_output "$N" e)/seen" &&
	wait_no_proc "$MARK-escape"
'

exec_spec forktree '["sh", "-c", "for i in $(seq 1 100); do sh -c \"sleep 300; true\" '"$MARK"'-tree & done; wait"]'
test_expect_success 'cancelling a 100-process fork tree leaves nothing behind' '
	N=$(sfs_submit "$DATA/forktree.json") &&
	for _ in $(seq 1 200); do
		[ "$(pgrep -fc -- "$MARK-tree" || true)" -ge 100 ] && break
		sleep 0.1
	done &&
	[ "$(pgrep -fc -- "$MARK-tree")" -ge 100 ] &&
	echo cancel >"$MNT/jobs/$N/ctl" &&
	expect_eq cancelled "$(sfs_wait "$N")" &&
	wait_no_proc "$MARK-tree"
'

exec_spec timeout '["sh", "-c", "sh -c \"sleep 300; true\" '"$MARK"'-timeout & sleep 300"]' '"timeout": 1'
test_expect_success 'a timeout kills every process of the exec' '
	N=$(sfs_submit "$DATA/timeout.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "timeout after 1s" "$(sfs_cat "$MNT/jobs/$N/error")" &&
	wait_no_proc "$MARK-timeout"
'

# A rootfs made in the spec: busybox-static and its applet links.
mkdir -p "$DATA/bb/bin"
cp "$(command -v busybox)" "$DATA/bb/bin/busybox"
for a in sh ls id cat; do ln -sf busybox "$DATA/bb/bin/$a"; done
cat >"$DATA/rootfs.json" <<JSON
{"vertices": {"bb": {"op": "local", "path": "$DATA/bb"},
  "e": {"op": "exec", "args": ["/bin/busybox", "sh", "-c", "ls / >out/root; id -u >out/uid; ls /usr >out/usr 2>&1; true"],
  "env": {"PATH": "/bin"}, "rootfs": "bb",
  "mounts": [{"dest": "out", "output": true}]}},
 "outputs": ["e"]}
JSON
test_expect_success 'rootfs: an input'"'"'s tree is /, and nothing of the host' '
	N=$(sfs_run "$DATA/rootfs.json") &&
	o=$(sfs_output "$N" e) &&
	expect_eq "bin dev proc tmp work" "$(tr "\n" " " <"$o/root" | sed "s/ $//")" &&
	expect_file_eq 0 "$o/uid" &&
	expect_contains "No such file" "$(cat "$o/usr")"
'

mkdir -p "$DATA/csrc" && printf 'int answer(void) { return 42; }\n' >"$DATA/csrc/a.c"
cat >"$DATA/repro.json" <<JSON
{"vertices": {"src": {"op": "local", "path": "$DATA/csrc"},
  "cc": {"op": "exec", "ignore_cache": true,
         "args": ["sh", "-c", "cc -g -c -o out/a.o src/a.c && echo \$SOURCE_DATE_EPOCH >out/epoch"],
         "env": {"SOURCE_DATE_EPOCH": "1700000000"},
         "mounts": [{"dest": "src", "input": "src"}, {"dest": "out", "output": true}]}},
 "outputs": ["cc"]}
JSON
test_expect_success 'the same exec twice gives the same result id (cc -g, ignore_cache)' '
	N=$(sfs_run "$DATA/repro.json") &&
	M=$(sfs_run "$DATA/repro.json") &&
	expect_eq "$(sfs_cat "$MNT/jobs/$N/result")" "$(sfs_cat "$MNT/jobs/$M/result")" &&
	expect_contains "#2 DONE" "$(sfs_cat "$MNT/jobs/$M/status")"
'

exec_spec big '["sh", "-c", "head -c 2097152 /dev/zero >out/big"]'
exec_spec small '["sh", "-c", "head -c 524288 /dev/zero >out/small"]'
test_expect_success 'output_max: a larger exec output fails the vertex, naming the output' '
	sfs_umount &&
	sfs_mount -o output_max=1M &&
	N=$(sfs_submit "$DATA/big.json") &&
	expect_eq failed "$(sfs_wait "$N")" &&
	expect_contains "output \"out\" holds more than output_max (1048576 bytes)" \
		"$(sfs_cat "$MNT/jobs/$N/error")" &&
	M=$(sfs_run "$DATA/small.json") &&
	expect_eq 524288 "$(stat -c %s "$(sfs_output "$M" e)/small")"
'

test_expect_success 'sandbox=none still runs execs, and says so in the log' '
	sfs_umount &&
	sfs_mount -o sandbox=none &&
	sed "s/pwd >out/pwd >out/" "$DATA/inside.json" >"$DATA/inside-none.json" &&
	sed -i "s/\"e\": {/\"e\": {\"ignore_cache\": true, /" "$DATA/inside-none.json" &&
	N=$(sfs_run "$DATA/inside-none.json") &&
	expect_contains "no sandbox (sandbox=none)" "$(sfs_cat "$MNT/jobs/$N/status")" &&
	expect_contains "sandbox none" "$(cat "$LOG")"
'

rm -rf "$VICTIM"
test_done
