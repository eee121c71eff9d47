"""End-to-end harness: a real `tessera serve` process and a tiny HTTP client.

Standard library only. A `Server` starts the binary on a free loopback port with
a fresh temporary directory (SQLite store, logs), waits for /healthz, and stops
it by PID with SIGTERM (SIGKILL after a bounded wait). A `Client` speaks
HTTP/1.1 through http.client, sends JSON, keeps a cookie jar like a browser
would, and returns status, headers and the parsed body.

The binary path comes from run.py (harness.BINARY) or the TESSERA_BIN env var.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

BINARY = os.environ.get("TESSERA_BIN", "")

# Bounded waits (not assertions on speed): a process that does not come up or go
# down within these is broken. Sanitizer builds start slower, hence the margin.
START_TIMEOUT = float(os.environ.get("TESSERA_E2E_START_TIMEOUT", "20"))
STOP_TIMEOUT = float(os.environ.get("TESSERA_E2E_STOP_TIMEOUT", "15"))
HTTP_TIMEOUT = float(os.environ.get("TESSERA_E2E_HTTP_TIMEOUT", "30"))

ADMIN_KEY = "tsr_admin_e2e_" + secrets.token_urlsafe(24)
COOKIE_NAME = "__Host-tessera"
PASSWORD = "correct horse battery staple"

# Settings every test server gets unless a test class overrides them: cheap
# Argon2id so that the suite stays fast, and a login limit high enough that the
# failures other tests provoke from 127.0.0.1 never trip it.
BASE_ENV = {
    "TESSERA_SECURITY_ARGON2_MEMORY_KIB": "8",
    "TESSERA_SECURITY_ARGON2_ITERATIONS": "1",
    "TESSERA_SECURITY_LOGIN_MAX_FAILURES": "100000",
    "TESSERA_SERVER_THREADS": "4",
    "TESSERA_LOG_LEVEL": "debug",
}

_uniq_lock = threading.Lock()
_uniq_n = [0]


def unique_name(prefix="u"):
    """A username no other test uses: [A-Za-z0-9._@+-], well under 64 chars."""
    with _uniq_lock:
        _uniq_n[0] += 1
        n = _uniq_n[0]
    return "%s%d_%s" % (prefix, n, secrets.token_hex(3))


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class ServerError(Exception):
    pass


class Server:
    """One `tessera serve` process. Reusable: stop() then start() again keeps the
    same directory (and so the same SQLite database)."""

    def __init__(self, env=None, admin_key=ADMIN_KEY, name="server"):
        if not BINARY:
            raise ServerError("no tessera binary: run tests/e2e/run.py BINARY")
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="tessera-e2e-")
        self.db = os.path.join(self.dir, "tessera.db")
        self.admin_key = admin_key
        self.extra_env = dict(env or {})
        self.proc = None
        self.port = None
        self.runs = 0
        self.last_exit = None
        self.log_paths = []
        self.cookie_name = self.extra_env.get("TESSERA_SESSION_COOKIE_NAME", COOKIE_NAME)

    # ---- life cycle ----

    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        env.update(BASE_ENV)
        env["TESSERA_SERVER_LISTEN"] = "127.0.0.1:%d" % self.port
        env["TESSERA_STORE_URL"] = "sqlite:" + self.db
        if self.admin_key is not None:
            env["TESSERA_ADMIN_KEY"] = self.admin_key
        env.update(self.extra_env)
        return env

    def start(self, port=None):
        last = None
        for attempt in range(3):
            try:
                self._start_once(port)
                return self
            except ServerError as e:
                last = e
                # Another process may have taken the free port between our probe
                # and the bind: try another one, unless the caller pinned it.
                if port is not None or not self._looks_like_bind_failure():
                    raise
        raise last

    def _looks_like_bind_failure(self):
        text = self.stderr_text(self.runs).lower()
        return "address already in use" in text or "bind" in text

    def _start_once(self, port):
        self.port = port if port is not None else free_port()
        self.runs += 1
        out = os.path.join(self.dir, "stdout.%d.log" % self.runs)
        err = os.path.join(self.dir, "stderr.%d.log" % self.runs)
        self.log_paths.append((out, err))
        self._out = open(out, "wb")
        self._err = open(err, "wb")
        self.proc = subprocess.Popen(
            [BINARY, "serve"],
            cwd=self.dir,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            code = self.proc.poll()
            if code is not None:
                self._close_files()
                self.proc = None
                raise ServerError(
                    "%s exited with %d while starting\n%s" % (self.name, code, self.log_tail())
                )
            try:
                status = self._probe("/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(
                    "%s did not answer GET /healthz with 200 within %.0f s\n%s"
                    % (self.name, START_TIMEOUT, self.log_tail())
                )
            time.sleep(0.05)

    def _probe(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    def stop(self):
        """SIGTERM, wait, SIGKILL if still alive. Returns the exit code."""
        if self.proc is None:
            return self.last_exit
        p = self.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.last_exit = "did not stop within %.0f s of SIGTERM (SIGKILLed)" % STOP_TIMEOUT
                self.proc = None
                self._close_files()
                return self.last_exit
        self.last_exit = p.returncode
        self.proc = None
        self._close_files()
        return self.last_exit

    def kill(self):
        """SIGKILL now (a crash, as far as the server can tell)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.last_exit = self.proc.returncode
        self.proc = None
        self._close_files()

    def cleanup(self, check=True):
        """Stops the server if it runs and removes its directory. With check, a
        server that does not exit 0 on SIGTERM (a crash, a sanitizer report at
        exit, a hang) raises ServerError with its log."""
        was_running = self.alive()
        code = self.stop()
        problem = None
        if check and was_running and code != 0:
            problem = "%s exited with %r on SIGTERM (expected 0)\n%s" % (
                self.name, code, self.log_tail())
        if os.environ.get("TESSERA_E2E_KEEP") or problem:
            sys.stderr.write("[e2e] kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if problem:
            raise ServerError(problem)

    def _close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- logs ----

    def stdout_text(self, run=None):
        return self._read(0, run)

    def stderr_text(self, run=None):
        return self._read(1, run)

    def _read(self, which, run):
        if not self.log_paths:
            return ""
        idx = (run if run is not None else len(self.log_paths)) - 1
        try:
            with open(self.log_paths[idx][which], "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        parts = []
        for i, (out, err) in enumerate(self.log_paths, 1):
            for label, path in (("stdout", out), ("stderr", err)):
                try:
                    with open(path, "rb") as f:
                        text = f.read().decode("utf-8", "replace")
                except OSError:
                    continue
                if not text.strip():
                    continue
                tail = text.splitlines()[-lines:]
                parts.append("---- %s run %d %s (last %d lines) ----\n%s"
                             % (self.name, i, label, len(tail), "\n".join(tail)))
        return "\n".join(parts) if parts else "(%s wrote nothing)" % self.name

    # ---- URLs ----

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def client(self, **kw):
        return Client(self, **kw)


class Response:
    def __init__(self, method, path, status, reason, header_list, body):
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.header_list = header_list  # [(name, value)] as received
        self.body = body
        self.json = None
        if body:
            try:
                self.json = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                self.json = None

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.header_list:
            if k.lower() == name:
                return v
        return default

    def headers_all(self, name):
        name = name.lower()
        return [v for k, v in self.header_list if k.lower() == name]

    @property
    def code(self):
        return self.json.get("code") if isinstance(self.json, dict) else None

    def set_cookies(self):
        return [parse_set_cookie(v) for v in self.headers_all("Set-Cookie")]

    def describe(self):
        body = self.body[:600].decode("utf-8", "replace") if self.body else ""
        return "%s %s -> %d %s\n  headers: %s\n  body: %s" % (
            self.method, self.path, self.status, self.reason,
            "; ".join("%s: %s" % kv for kv in self.header_list), body)

    def __repr__(self):
        return "<Response %s %s %d>" % (self.method, self.path, self.status)


def parse_set_cookie(value):
    """'n=v; Path=/; HttpOnly' -> (name, value, {attr_lower: value_or_True})."""
    parts = [p.strip() for p in value.split(";")]
    name, _, val = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), val.strip(), attrs


class Client:
    """A browser-ish HTTP client: one cookie jar, explicit CSRF and origin headers.

    Each request uses its own connection, so that threads may share nothing but
    the server. `cookies=False` sends no cookie; `cookie=` sends exactly that
    Cookie header value."""

    def __init__(self, server, user_agent=None, source_ip=None):
        self.server = server
        self.jar = {}
        self.csrf = None
        self.user_agent = user_agent or "tessera-e2e/1 (%s)" % secrets.token_hex(4)
        # Any 127.0.0.0/8 address reaches the server on Linux: a second "client IP".
        self.source_ip = source_ip

    @property
    def session_cookie(self):
        return self.jar.get(self.server.cookie_name)

    def request(self, method, path, body=None, raw=None, headers=None, cookies=True,
                cookie=None, csrf=None, origin=None, sec_fetch_site=None, bearer=None,
                content_type="application/json", timeout=None):
        h = {"User-Agent": self.user_agent, "Accept": "application/json"}
        data = None
        if raw is not None:
            data = raw if isinstance(raw, (bytes, bytearray)) else raw.encode("utf-8")
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
        if data is not None and content_type:
            h["Content-Type"] = content_type
        if cookie is not None:
            h["Cookie"] = cookie
        elif cookies and self.jar:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.jar.items())
        if csrf is not None:
            h["X-CSRF-Token"] = csrf
        if origin is not None:
            h["Origin"] = origin
        if sec_fetch_site is not None:
            h["Sec-Fetch-Site"] = sec_fetch_site
        if bearer is not None:
            h["Authorization"] = "Bearer " + bearer
        if headers:
            h.update(headers)
        # A server object may carry an ssl.SSLContext (the nginx front of the
        # cluster tests speaks HTTPS); tessera's own test servers have none.
        ssl_context = getattr(self.server, "ssl_context", None)
        if ssl_context is not None:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.server.port, timeout=timeout or HTTP_TIMEOUT,
                source_address=(self.source_ip, 0) if self.source_ip else None,
                context=ssl_context)
        else:
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.server.port, timeout=timeout or HTTP_TIMEOUT,
                source_address=(self.source_ip, 0) if self.source_ip else None)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            resp = Response(method, path, r.status, r.reason, r.getheaders(), payload)
        finally:
            conn.close()
        if cookies and cookie is None:
            self._store_cookies(resp)
        return resp

    def _store_cookies(self, resp):
        for name, val, attrs in resp.set_cookies():
            max_age = attrs.get("max-age")
            if val == "" or (isinstance(max_age, str) and max_age.lstrip("-").isdigit()
                             and int(max_age) <= 0):
                self.jar.pop(name, None)
            else:
                self.jar[name] = val

    def cookie_header(self, value):
        return "%s=%s" % (self.server.cookie_name, value)

    # ---- the flows tests use over and over ----

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def signup(self, username, password=PASSWORD):
        return self.post("/v1/users", {"username": username, "password": password})

    def login(self, username, password=PASSWORD, **kw):
        r = self.post("/v1/session/login", {"username": username, "password": password}, **kw)
        if r.status == 200 and isinstance(r.json, dict):
            self.csrf = r.json.get("csrf_token")
        return r

    def session(self, **kw):
        return self.get("/v1/session", **kw)

    def logout(self, **kw):
        kw.setdefault("csrf", self.csrf)
        return self.post("/v1/session/logout", **kw)

    def verify(self, query="", **kw):
        return self.get("/v1/verify" + query, **kw)

    def admin(self, method, path, body=None, key=None, **kw):
        return self.request(method, path, body=body, cookies=False,
                            bearer=key if key is not None else self.server.admin_key, **kw)


class ServerTestCase(unittest.TestCase):
    """One server per test class (SERVER_ENV adds settings). Prints the
    server's log tail when a test of the class fails or errs."""

    SERVER_ENV = {}
    server = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = Server(env=cls.SERVER_ENV, name=cls.__name__)
        try:
            cls.server.start()
        except Exception:
            cls.server.cleanup(check=False)
            raise

    @classmethod
    def tearDownClass(cls):
        server, cls.server = cls.server, None
        super().tearDownClass()
        if server is not None:
            server.cleanup()  # raises when the server did not exit cleanly

    def run(self, result=None):
        before = _bad_count(result)
        out = super().run(result)
        if result is not None and _bad_count(result) > before:
            servers = list(getattr(self, "_extra_servers", []))
            if self.server is not None:
                servers.insert(0, self.server)
            for s in servers:
                sys.stderr.write("\n[e2e] %s failed; server log:\n%s\n" % (self.id(), s.log_tail()))
        return out

    def track(self, server):
        """Register a server created inside a test for log printing and cleanup."""
        if not hasattr(self, "_extra_servers"):
            self._extra_servers = []
        self._extra_servers.append(server)
        self.addCleanup(server.cleanup)
        return server

    # ---- helpers ----

    def client(self, server=None, **kw):
        return Client(server or self.server, **kw)

    def new_user(self, server=None, password=PASSWORD, prefix="u"):
        """Signs a new user up; returns (username, id)."""
        c = self.client(server)
        name = unique_name(prefix)
        r = c.signup(name, password)
        self.assertStatus(r, 201)
        return name, r.json["id"]

    def logged_in(self, server=None, password=PASSWORD, username=None, **kw):
        """A new user (or `username`) and a client logged in as them.
        Returns (client, login_body)."""
        if username is None:
            username, _ = self.new_user(server, password)
        c = self.client(server, **kw)
        r = c.login(username, password)
        self.assertStatus(r, 200)
        self.assertIsNotNone(c.session_cookie, "login set no %s cookie\n%s"
                             % ((server or self.server).cookie_name, r.describe()))
        return c, r.json

    def admin_user(self, roles, server=None, password=PASSWORD, prefix="a"):
        s = server or self.server
        name = unique_name(prefix)
        r = Client(s).admin("POST", "/v1/admin/users",
                            {"username": name, "password": password, "roles": roles})
        self.assertStatus(r, 201)
        return name, r.json["id"]

    # ---- assertions ----

    def assertStatus(self, r, status, msg=None):
        if isinstance(status, int):
            ok = r.status == status
        else:
            ok = r.status in status
        if not ok:
            self.fail("expected %s, got %d%s\n%s" % (status, r.status,
                                                      " (%s)" % msg if msg else "", r.describe()))

    def assertNot5xx(self, r, msg=None):
        if r.status >= 500:
            self.fail("bad input got a 5xx%s\n%s" % (" (%s)" % msg if msg else "", r.describe()))

    def assertProblem(self, r, status, code=None, msg=None):
        """RFC 9457 problem+json with the SPEC's stable code."""
        self.assertStatus(r, status, msg)
        ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
        self.assertEqual(ctype, "application/problem+json",
                         "problem response content type\n%s" % r.describe())
        self.assertIsInstance(r.json, dict, r.describe())
        for k in ("type", "title", "status", "code", "detail"):
            self.assertIn(k, r.json, "problem field %r missing\n%s" % (k, r.describe()))
        self.assertEqual(r.json["type"], "about:blank", r.describe())
        self.assertEqual(r.json["status"], status, r.describe())
        if code is not None:
            self.assertEqual(r.json["code"], code, "%s\n%s" % (msg or "", r.describe()))

    def assertCommonHeaders(self, r):
        self.assertEqual((r.header("X-Content-Type-Options") or "").lower(), "nosniff",
                         "X-Content-Type-Options\n%s" % r.describe())
        self.assertEqual((r.header("Referrer-Policy") or "").lower(), "no-referrer",
                         "Referrer-Policy\n%s" % r.describe())

    def assertNoStore(self, r):
        cc = (r.header("Cache-Control") or "").lower()
        self.assertIn("no-store", [p.strip() for p in cc.split(",")],
                      "Cache-Control: no-store missing\n%s" % r.describe())

    def assertSessionDead(self, cookie_value, server=None, msg=""):
        """The cookie value no longer authenticates: /v1/session and /v1/verify both 401."""
        c = self.client(server)
        r = c.session(cookie=c.cookie_header(cookie_value))
        self.assertProblem(r, 401, "unauthenticated", msg or "GET /v1/session with a dead cookie")
        r = c.verify(cookie=c.cookie_header(cookie_value))
        self.assertStatus(r, 401, msg or "GET /v1/verify with a dead cookie")

    def assertSessionAlive(self, cookie_value, server=None, msg=""):
        c = self.client(server)
        r = c.session(cookie=c.cookie_header(cookie_value))
        self.assertStatus(r, 200, msg or "GET /v1/session with a live cookie")
        return r


def _bad_count(result):
    if result is None:
        return 0
    return len(result.failures) + len(result.errors) + len(getattr(result, "unexpectedSuccesses", []))


def metric_value(text, name_re, labels):
    """Sum of the samples of metrics matching name_re whose labels include `labels`."""
    total = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m or not re.search(name_re, m.group(1)):
            continue
        got = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total = (total or 0) + float(m.group(4))
    return total


# ---------------------------------------------------------------------------
# Token and hybrid mode (SPEC section 4): form posts, OAuth grants, JWT
# helpers, the node `jose` interop peer and the server's own signing keys.
# ---------------------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INTEROP_DIR = os.path.join(REPO, "tests", "e2e", "interop")
E2E_NPM = os.path.join(REPO, "scripts", "e2e-npm")
NODE = os.environ.get("TESSERA_E2E_NODE", shutil.which("node") or "/usr/bin/node")
NODE_TIMEOUT = float(os.environ.get("TESSERA_E2E_NODE_TIMEOUT", "60"))

FORM = "application/x-www-form-urlencoded"


def b64url(data):
    """Unpadded base64url of bytes (or of a str's UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    """Lenient decoder for the tests' own reading (padding added back)."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token):
    """(header dict, claims dict) of a compact JWS, NOT verified."""
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))


def jwt_compact(header, claims):
    """The signing input 'b64(header).b64(claims)'. header and claims may be dicts
    (serialised compactly) or raw JSON strings (sent byte for byte)."""
    def enc(x):
        return b64url(x if isinstance(x, (str, bytes)) else
                      json.dumps(x, separators=(",", ":")))
    return enc(header) + "." + enc(claims)


def hs_sign(alg, secret, signing_input):
    """HMAC signature (base64url) with Python's stdlib, for HS forgeries."""
    h = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    return b64url(hmac.new(secret, signing_input.encode("ascii"), h).digest())


def form_encode(fields):
    """dict or [(k, v)] (repeats allowed) -> application/x-www-form-urlencoded."""
    items = list(fields.items()) if isinstance(fields, dict) else list(fields)
    return urllib.parse.urlencode(items)


def _client_form(self, path, fields, **kw):
    """POST an application/x-www-form-urlencoded body (RFC 6749 endpoints)."""
    kw.setdefault("content_type", FORM)
    return self.request("POST", path, raw=form_encode(fields), **kw)


def _client_oauth(self, path, fields, as_json=False, **kw):
    kw.setdefault("cookies", False)
    if as_json:
        return self.request("POST", path, body=dict(fields), **kw)
    return self.form(path, fields, **kw)


def _client_password_grant(self, username, password=PASSWORD, scope=None, as_json=False, **kw):
    f = [("grant_type", "password"), ("username", username), ("password", password)]
    if scope is not None:
        f.append(("scope", scope))
    return self.oauth("/v1/oauth/token", f, as_json=as_json, **kw)


def _client_refresh_grant(self, refresh_token, as_json=False, **kw):
    return self.oauth("/v1/oauth/token",
                      [("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
                      as_json=as_json, **kw)


def _client_oauth_revoke(self, token, hint=None, as_json=False, **kw):
    f = [("token", token)]
    if hint is not None:
        f.append(("token_type_hint", hint))
    return self.oauth("/v1/oauth/revoke", f, as_json=as_json, **kw)


def _client_introspect(self, token, key=None, as_json=False, **kw):
    """RFC 7662 with the admin key (key=None: the server's; key="": none)."""
    key = self.server.admin_key if key is None else key
    if key:
        kw["bearer"] = key
    return self.oauth("/v1/oauth/introspect", [("token", token)], as_json=as_json, **kw)


def _client_session_token(self, **kw):
    """POST /v1/session/token with this client's cookie and CSRF token."""
    kw.setdefault("csrf", self.csrf)
    return self.post("/v1/session/token", **kw)


def _client_bearer_verify(self, token, query="", **kw):
    """GET /v1/verify with only the bearer token (no cookie)."""
    return self.get("/v1/verify" + query, bearer=token, cookies=False, **kw)


Client.form = _client_form
Client.oauth = _client_oauth
Client.password_grant = _client_password_grant
Client.refresh_grant = _client_refresh_grant
Client.oauth_revoke = _client_oauth_revoke
Client.introspect = _client_introspect
Client.session_token = _client_session_token
Client.bearer_verify = _client_bearer_verify


def _tc_start_server(self, env=None, name=None):
    """A further server with BASE_ENV plus env, started, logged and cleaned up
    with the test."""
    s = Server(env=env, name=name or ("%s.extra" % type(self).__name__))
    self.track(s)
    s.start()
    return s


def _tc_grant(self, username=None, password=PASSWORD, server=None, scope=None):
    """Password grant for `username` (a new user when None). Returns
    (username, grant body, claims of its access token)."""
    if username is None:
        username, _ = self.new_user(server, password)
    r = self.client(server).password_grant(username, password, scope=scope)
    self.assertStatus(r, 200, "password grant for %s" % username)
    self.assertIsInstance(r.json, dict, r.describe())
    return username, r.json, jwt_parts(r.json["access_token"])[1]


def _tc_refresh(self, refresh_token, server=None, msg=None):
    r = self.client(server).refresh_grant(refresh_token)
    self.assertStatus(r, 200, msg or "refresh grant")
    return r.json


def _tc_assert_oauth_error(self, r, status, error, msg=None):
    """RFC 6749 5.2: {"error": .., "error_description"?: ..} as application/json."""
    self.assertStatus(r, status, msg)
    ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
    self.assertEqual(ctype, "application/json",
                     "OAuth errors are application/json (RFC 6749 5.2)%s\n%s"
                     % (" (%s)" % msg if msg else "", r.describe()))
    self.assertIsInstance(r.json, dict, r.describe())
    errs = (error,) if isinstance(error, str) else tuple(error)
    self.assertIn(r.json.get("error"), errs, "%s\n%s" % (msg or "", r.describe()))
    if "error_description" in r.json:
        self.assertIsInstance(r.json["error_description"], str, r.describe())
    self.assertNotIn("access_token", r.json, r.describe())
    self.assertNotIn("refresh_token", r.json, r.describe())


def _tc_assert_bearer_ok(self, token, server=None, msg=None):
    r = self.client(server).bearer_verify(token)
    self.assertStatus(r, 200, msg or "bearer verify of a live token")
    self.assertEqual(r.header("X-Auth-Method"), "bearer", r.describe())
    return r


def _tc_assert_bearer_refused(self, token, server=None, msg=None):
    """401 with WWW-Authenticate: Bearer realm="tessera", error="invalid_token"."""
    r = self.client(server).bearer_verify(token)
    self.assertNot5xx(r, msg)
    self.assertStatus(r, 401, msg or "bearer verify of a dead token")
    www = r.header("WWW-Authenticate") or ""
    self.assertTrue(www.lower().startswith("bearer "), "WWW-Authenticate %r\n%s"
                    % (www, r.describe()))
    self.assertIn('realm="tessera"', www, r.describe())
    self.assertIn('error="invalid_token"', www, r.describe())
    self.assertIsNone(r.header("X-Auth-Subject"), r.describe())
    return r


ServerTestCase.start_server = _tc_start_server
ServerTestCase.grant = _tc_grant
ServerTestCase.refresh = _tc_refresh
ServerTestCase.assertOAuthError = _tc_assert_oauth_error
ServerTestCase.assertBearerOk = _tc_assert_bearer_ok
ServerTestCase.assertBearerRefused = _tc_assert_bearer_refused


# ---- node `jose` (tests/e2e/interop) ----

_interop_lock = threading.Lock()
_interop_state = {"ready": False}


class InteropError(AssertionError):
    """The interop peer could not run: an AssertionError, so the test FAILS."""


def ensure_interop():
    """Makes sure tests/e2e/interop/node_modules is installed (runs
    scripts/e2e-npm once per process when it is absent). Raises InteropError
    when node or the packages cannot be had: such a test must fail, not skip."""
    with _interop_lock:
        if _interop_state["ready"]:
            return
        if not (NODE and os.path.isfile(NODE) and os.access(NODE, os.X_OK)):
            raise InteropError("node not found (set TESSERA_E2E_NODE or install nodejs)")
        if not os.path.isdir(os.path.join(INTEROP_DIR, "node_modules", "jose")):
            p = subprocess.run([E2E_NPM], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=600)
            if p.returncode != 0:
                raise InteropError("scripts/e2e-npm failed (%d):\n%s"
                                   % (p.returncode, p.stdout.decode("utf-8", "replace")))
            if not os.path.isdir(os.path.join(INTEROP_DIR, "node_modules", "jose")):
                raise InteropError("scripts/e2e-npm left no node_modules/jose in " + INTEROP_DIR)
        _interop_state["ready"] = True


def node_run(script, args=(), stdin=b""):
    """Runs `node tests/e2e/interop/SCRIPT ARGS` -> CompletedProcess (text)."""
    ensure_interop()
    if isinstance(stdin, str):
        stdin = stdin.encode("utf-8")
    return subprocess.run([NODE, os.path.join(INTEROP_DIR, script)] + list(args),
                          cwd=INTEROP_DIR, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=NODE_TIMEOUT)


def node_json(script, request):
    """One JSON request to an interop script (sign.mjs) -> its JSON answer."""
    p = node_run(script, stdin=json.dumps(request))
    out = p.stdout.decode("utf-8", "replace").strip()
    try:
        ans = json.loads(out.splitlines()[-1]) if out else None
    except ValueError:
        ans = None
    if p.returncode != 0 or not isinstance(ans, dict) or "error" in ans:
        raise InteropError("node %s %s failed (%d): %s %s" % (
            script, request.get("op"), p.returncode, out[-500:],
            p.stderr.decode("utf-8", "replace")[-1500:]))
    return ans


def node_keygen(alg="ES256", kid=None):
    """(private JWK, public JWK) of a fresh node `jose` key pair."""
    ans = node_json("sign.mjs", {"op": "keygen", "alg": alg,
                                 "kid": kid or "attacker-" + secrets.token_hex(6)})
    return ans["private"], ans["public"]


def node_sign_raw(items):
    """[(private JWK, alg, signing input)] -> [base64url signature] (node crypto)."""
    ans = node_json("sign.mjs", {"op": "sign", "items": [
        {"jwk": jwk, "alg": alg, "input": inp} for jwk, alg, inp in items]})
    return ans["sigs"]


def node_sign_jwt(jwk, header, claims):
    """A token made by node `jose`'s SignJWT."""
    return node_json("sign.mjs", {"op": "jwt", "jwk": jwk, "header": header,
                                  "claims": claims})["token"]


def node_spki(jwk):
    """{"pem", "der"} of a public JWK."""
    return node_json("sign.mjs", {"op": "spki", "jwk": jwk})


def node_verify(discovery_url, tokens, iss=None, aud=None):
    """node `jose` verifies tokens from the discovery document alone.
    Returns (exit code, [per-token result dicts], stderr)."""
    args = [discovery_url]
    if iss is not None:
        args += ["--iss", iss]
    if aud is not None:
        args += ["--aud", aud]
    p = node_run("verify.mjs", args, stdin="\n".join(tokens) + "\n")
    results = []
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line:
            try:
                results.append(json.loads(line))
            except ValueError:
                results.append({"ok": False, "message": "unparsable line: " + line[:200]})
    return p.returncode, results, p.stderr.decode("utf-8", "replace")


# ---- the server's own signing keys (white box, read from its SQLite file) ----

_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k", "oth")


def server_private_jwks(server):
    """Every private JWK stored in the server's SQLite database, as
    [(kid, alg, jwk dict)]. White box: the store keeps private JWKs (SPEC:
    keys live in the store) and the tests read them to sign tokens tessera
    TRUSTS, so that each verification rule is shown to refuse a token whose
    signature is good. Finds them without knowing the schema: any text column
    holding a JSON object with "kty" and a private member; kid and alg come
    from the JWK or from the row's other columns."""
    uri = "file:%s?mode=ro" % urllib.parse.quote(server.db)
    conn = sqlite3.connect(uri, uri=True, timeout=10)
    found = []
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            try:
                rows = conn.execute('SELECT * FROM "%s"' % t.replace('"', '""')).fetchall()
            except sqlite3.Error:
                continue
            for row in rows:
                texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                         for v in row]
                texts = [v for v in texts if isinstance(v, str)]
                for v in texts:
                    if not v.lstrip().startswith("{"):
                        continue
                    try:
                        j = json.loads(v)
                    except ValueError:
                        continue
                    if not (isinstance(j, dict) and "kty" in j
                            and any(m in j for m in _PRIVATE_MEMBERS)):
                        continue
                    j = dict(j)
                    others = [o for o in texts if o is not v]
                    if "alg" not in j:
                        algs = [o for o in others if re.fullmatch(
                            r"(HS|RS|PS|ES)(256|384|512)|EdDSA", o)]
                        if algs:
                            j["alg"] = algs[0]
                    if "kid" not in j:
                        kids = [o for o in others if 8 <= len(o) <= 128
                                and re.fullmatch(r"[A-Za-z0-9_.-]+", o)
                                and o != j.get("alg")]
                        if kids:
                            j["kid"] = kids[0]
                    found.append((j.get("kid"), j.get("alg"), j))
    finally:
        conn.close()
    return found


def server_private_jwk(server, kid):
    """The private JWK of `kid` from the server's store; AssertionError when it
    cannot be found (the test then fails, it does not skip)."""
    keys = server_private_jwks(server)
    for k, _, jwk in keys:
        if k == kid:
            return jwk
    raise AssertionError("private key %r not found in %s (found kids %r)"
                         % (kid, server.db, [k for k, _, _ in keys]))


def _tc_session_access(self, client, msg=None):
    """POST /v1/session/token for a logged-in client -> its access token."""
    r = client.session_token()
    self.assertStatus(r, 200, msg or "POST /v1/session/token")
    self.assertIsInstance(r.json, dict, r.describe())
    self.assertIn("access_token", r.json, r.describe())
    return r.json["access_token"]


ServerTestCase.session_access = _tc_session_access
