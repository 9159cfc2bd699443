# shellcheck shell=bash
# tests/e2e/registry.sh — a docker-registry on 127.0.0.1 for a test script (sourced
# after lib.sh): plain HTTP by default; with REG_TLS=1 over HTTPS with a self-signed
# certificate made here ($REG_CA, for registry_ca= and curl --cacert), and with
# REG_USER/REG_PASSWORD set, behind htpasswd basic auth for that one user.
#
#   . "$SFS_E2E_DIR/registry.sh"
#   registry_start || say "# ..."     # sets REG (127.0.0.1:PORT), REG_URL, REG_LOG, REG_PID
#   ... mount with -o insecure_registries=$REG (or registry_ca=$REG_CA) ...
#   registry_stop                     # in the script's EXIT trap, before sfs_cleanup
#
# Storage, config and log live in $SCRATCH/registry; only the pid started here is
# killed.

# registry_start: starts docker-registry on a free port and waits until it answers.
registry_start() {
	REG_DIR=$SCRATCH/registry
	REG_LOG=$REG_DIR/registry.log
	mkdir -p "$REG_DIR/store"
	local port
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1
	REG=127.0.0.1:$port
	REG_URL=http://$REG
	registry_config >"$REG_DIR/config.yml" || return 1
	/usr/bin/docker-registry serve "$REG_DIR/config.yml" >"$REG_LOG" 2>&1 &
	REG_PID=$!
	export REG REG_URL REG_LOG REG_PID
	sfs_until 30 registry_answers || {
		say "# the registry did not start: $(tail -5 "$REG_LOG")" >&2
		return 1
	}
}

# registry_config: the registry's config.yml (and its certificate and htpasswd file).
registry_config() {
	cat <<YAML
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $REG_DIR/store
http:
  addr: $REG
YAML
	if [ "${REG_TLS:-0}" = 1 ]; then
		REG_CA=$REG_DIR/cert.pem
		REG_URL=https://$REG
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$REG_DIR/key.pem" -out "$REG_CA" \
			-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null || return 1
		printf '  tls:\n    certificate: %s\n    key: %s\n' "$REG_CA" "$REG_DIR/key.pem"
	fi
	if [ -n "${REG_USER:-}" ]; then
		htpasswd -Bbn "$REG_USER" "$REG_PASSWORD" >"$REG_DIR/htpasswd" || return 1
		printf 'auth:\n  htpasswd:\n    realm: solverfs-test\n    path: %s\n' "$REG_DIR/htpasswd"
	fi
}

registry_answers() {
	curl -s -o /dev/null ${REG_CA:+--cacert "$REG_CA"} "$REG_URL/v2/"
}

# registry_stop: kills the registry registry_start started (if it did).
registry_stop() {
	if [ -n "${REG_PID:-}" ]; then
		kill "$REG_PID" 2>/dev/null
		wait "$REG_PID" 2>/dev/null
		REG_PID=
	fi
	return 0
}

# registry_gets MARK REPO: the blob digests GET from REPO since line MARK of the log.
registry_gets() {
	tail -n +"$(($1 + 1))" "$REG_LOG" | grep -o "\"GET /v2/$2/blobs/sha256:[0-9a-f]*" |
		sed 's|.*/blobs/||'
}

# registry_lines: a mark for registry_gets.
registry_lines() {
	wc -l <"$REG_LOG"
}
