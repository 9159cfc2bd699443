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


# scenario "flaky": pushes.  Uploads by id -> bytes kept, blobs and manifests pushed.
UPLOADS, PATCHED, PUSHED, MANIFESTS = {}, set(), {}, {}


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

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        self.note()
        self.body()
        if not self.authorized("flaky"):
            return
        uid = hashlib.sha256(os.urandom(8)).hexdigest()[:12]
        UPLOADS[uid] = b""
        self.send(202, extra=[("Location", "/v2/flaky/cache/blobs/uploads/" + uid),
                              ("Range", "0-0")])

    def upload_id(self):
        return self.path.split("?")[0].rsplit("/", 1)[-1]

    def do_PATCH(self):
        """The first PATCH of each upload keeps half of its bytes and fails (a 500
        after a partial write); the client must ask where it stands and go on."""
        self.note()
        data = self.body()
        if not self.authorized("flaky"):
            return
        uid = self.upload_id()
        if uid not in UPLOADS:
            return self.send(404, b"{}", "application/json")
        start = int(self.headers.get("Content-Range", "0-0").split("-")[0])
        if start != len(UPLOADS[uid]):
            return self.send(416, b"{}", "application/json")
        if uid not in PATCHED and len(data) > 1:
            PATCHED.add(uid)
            UPLOADS[uid] += data[: len(data) // 2]
            return self.send(500, b"{}", "application/json")
        UPLOADS[uid] += data
        self.send(202, extra=[("Location", "/v2/flaky/cache/blobs/uploads/" + uid),
                              ("Range", "0-%d" % (len(UPLOADS[uid]) - 1))])

    def do_PUT(self):
        self.note()
        data = self.body()
        if not self.authorized("flaky"):
            return
        parts = self.path.split("?")[0].split("/")
        if parts[4] == "manifests":
            m = json.loads(data)
            for d in [m["config"]] + m["layers"]:
                if d["digest"] not in PUSHED:
                    return self.send(400, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', "application/json")
            MANIFESTS[parts[5]] = data
            with open(LOGFILE, "a") as f:
                f.write("manifest %s accepted, %d blobs\n" % (parts[5], 1 + len(m["layers"])))
            return self.send(201)
        uid = self.upload_id()
        digest = self.path.split("digest=")[-1]
        blob = UPLOADS.pop(uid, b"") + data
        if "sha256:" + hashlib.sha256(blob).hexdigest() != digest:
            return self.send(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}', "application/json")
        PUSHED[digest] = blob
        self.send(201, extra=[("Docker-Content-Digest", digest)])

    def route(self):
        parts = self.path.split("?")[0].split("/")
        if self.path.startswith("/token"):
            if self.headers.get("Authorization") != BASIC:
                return self.send(401, b"{}", "application/json")
            return self.send(200, json.dumps({"token": TOKEN}).encode(), "application/json")
        if len(parts) == 7 and parts[2:6] == ["flaky", "cache", "blobs", "uploads"]:
            if not self.authorized("flaky"):
                return
            have = len(UPLOADS.get(self.upload_id(), b""))
            return self.send(204, extra=[("Range", "0-%d" % max(have - 1, 0))])
        # /v2/SCENARIO/cache/(manifests|blobs)/REF
        if len(parts) != 6 or parts[1] != "v2" or parts[3] != "cache":
            return self.send(404, b"{}", "application/json")
        scenario, kind, ref = parts[2], parts[4], parts[5]
        if scenario != "redirected" and not self.authorized(scenario):
            return
        if scenario == "flaky" and kind == "blobs":
            if ref not in PUSHED:
                return self.send(404, b"{}", "application/json")
            return self.send(200, PUSHED[ref])
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
