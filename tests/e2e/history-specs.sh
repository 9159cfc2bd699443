# shellcheck shell=bash
# tests/e2e/history-specs.sh — the two jobs the history tests (t0130, t0133) run, written
# into $DATA when sourced (after lib.sh): ok.json (a file vertex and an exec that logs
# and reads it) and fail.json (an exec that logs and exits 3).
cat >"$DATA/ok.json" <<'JSON'
{
  "vertices": {
    "f": {"op": "file", "name": "files", "actions": [{"mkfile": {"path": "a", "data": "A\n"}}]},
    "x": {"op": "exec", "name": "show", "args": ["sh", "-c", "echo hello; cat in/a >out/b"],
          "mounts": [{"dest": "in", "input": "f"}, {"dest": "out", "output": true}]}
  },
  "outputs": ["x"]
}
JSON
cat >"$DATA/fail.json" <<'JSON'
{
  "vertices": {
    "x": {"op": "exec", "name": "boom", "args": ["sh", "-c", "echo dying; exit 3"],
          "mounts": [{"dest": "out", "output": true}]}
  },
  "outputs": ["x"]
}
JSON
