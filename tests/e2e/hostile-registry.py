#!/usr/bin/python3
"""hostile-registry.py LAYOUT PORTFILE LOGFILE — a registry that misbehaves on purpose,
for t0235-hostile-registry.sh.

It serves the cache export in the OCI layout LAYOUT under /v2/SCENARIO/cache/, where the
first path component chooses how it lies (see blob() and manifest_of()).  It listens on
127.0.0.1 on a free port (written to PORTFILE) and appends one line per request to
LOGFILE: "METHOD PATH host=HOST auth=yes|no".  Every request but the token's wants the
credentials user:pw (Basic), except under token/, which wants a Bearer token from /token.
"""
import base64, hashlib, json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAYOUT, PORTFILE, LOGFILE = sys.argv[1:4]
BASIC = "Basic " + base64.b64encode(b"user:pw").decode()
TOKEN = "tok-" + hashlib.sha256(os.urandom(8)).hexdigest()[:16]


def read(rel):
    with open(os.path.join(LAYOUT, rel), "rb") as f:
        return f.read()


INDEX = json.loads(read("index.json"))
MDIGEST = INDEX["manifests"][0]["digest"]
MANIFEST = read("blobs/sha256/" + MDIGEST[7:])
M = json.loads(MANIFEST)
CONFIG = M["config"]["digest"]


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def note(self):
        with open(LOGFILE, "a") as f:
            f.write("%s %s host=%s auth=%s\n" % (self.command, self.path,
                    self.headers.get("Host"), "yes" if self.headers.get("Authorization") else "no"))

    def send(self, code, body=b"", ctype="application/octet-stream", length=None, extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drip(self, body, ctype="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for b in body:
            self.wfile.write(bytes([b]))
            self.wfile.flush()
            time.sleep(1)

    def endless(self, length=None):
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        chunk = b"\0" * 65536
        while True:
            self.wfile.write(chunk)

    def authorized(self, scenario):
        got = self.headers.get("Authorization", "")
        if scenario == "token":
            if got == "Bearer " + TOKEN:
                return True
            realm = "http://127.0.0.1:%d/token" % self.server.server_port
            self.send(401, b"{}", "application/json", extra=[("WWW-Authenticate",
                      'Bearer realm="%s",service="hostile",scope="repository:token/cache:pull"' % realm)])
            return False
        if got == BASIC:
            return True
        self.send(401, b"{}", "application/json", extra=[("WWW-Authenticate", 'Basic realm="hostile"')])
        return False

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.note()
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route(self):
        parts = self.path.split("?")[0].split("/")
        if self.path.startswith("/token"):
            if self.headers.get("Authorization") != BASIC:
                return self.send(401, b"{}", "application/json")
            return self.send(200, json.dumps({"token": TOKEN}).encode(), "application/json")
        # /v2/SCENARIO/cache/(manifests|blobs)/REF
        if len(parts) != 6 or parts[1] != "v2" or parts[3] != "cache":
            return self.send(404, b"{}", "application/json")
        scenario, kind, ref = parts[2], parts[4], parts[5]
        if scenario != "redirected" and not self.authorized(scenario):
            return
        if kind == "manifests":
            return self.manifest(scenario)
        if kind == "blobs":
            return self.blob(scenario, ref)
        return self.send(404, b"{}", "application/json")

    def manifest(self, s):
        mt = M["mediaType"]
        if s == "bigmanifest":
            return self.endless(10 << 30)
        if s == "dripmanifest":
            return self.drip(MANIFEST, mt)
        if s == "nomanifest":
            return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', "application/json")
        return self.send(200, MANIFEST, mt)

    def blob(self, s, digest):
        try:
            body = read("blobs/sha256/" + digest[7:])
        except (OSError, ValueError):
            return self.send(404, b"{}", "application/json")
        if digest == CONFIG:
            if s == "badconfig":
                return self.send(200, body[:-1] + bytes([body[-1] ^ 1]))
            return self.send(200, body)
        # a layer
        if s == "truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            return
        if s == "biglayer":
            return self.endless(10 << 30)
        if s == "longlayer":
            return self.endless()
        if s == "badlayer":
            return self.send(200, body[:-1] + bytes([body[-1] ^ 1]))
        if s == "driplayer":
            return self.drip(body)
        if s == "redirect":
            where = "http://localhost:%d/v2/redirected/cache/blobs/%s" % (self.server.server_port, digest)
            return self.send(307, b"", extra=[("Location", where)])
        if s == "fileredirect":
            return self.send(302, b"", extra=[("Location", "file:///etc/passwd")])
        return self.send(200, body)


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_port))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
