"""SPEC section 4 conventions and Operations: /healthz, /readyz, /metrics,
unknown routes, bad input of every kind (never a 5xx), 64 KiB body limit,
common response headers, logs without secrets, the generated admin key."""

import http.client
import json
import os
import re
import socket

from harness import (PASSWORD, Client, Server, ServerTestCase, metric_value, unique_name)

LIMIT = 64 * 1024


def body_of_size(n, username="big_user"):
    """A JSON signup/login body of exactly n bytes (the password absorbs the rest)."""
    head = '{"username":"%s","password":"' % username
    tail = '"}'
    pad = n - len(head) - len(tail)
    assert pad >= 0
    raw = (head + "p" * pad + tail).encode()
    assert len(raw) == n
    return raw


class OpsTest(ServerTestCase):

    def test_healthz(self):
        r = self.client().get("/healthz")
        self.assertStatus(r, 200)
        self.assertCommonHeaders(r)

    def test_readyz(self):
        r = self.client().get("/readyz")
        self.assertStatus(r, 200)
        self.assertCommonHeaders(r)

    def test_metrics_text_with_request_counters(self):
        c = self.client()
        for _ in range(3):
            self.assertStatus(c.get("/healthz"), 200)
        r = c.get("/metrics")
        self.assertStatus(r, 200)
        self.assertCommonHeaders(r)
        self.assertTrue((r.header("Content-Type") or "").startswith("text/plain"), r.describe())
        text = r.body.decode()
        self.assertIn("# TYPE", text)
        # Requests by route and status: find the /healthz 200 counter.
        v1 = self._healthz_count(text)
        self.assertIsNotNone(v1, "no request counter with route and status labels for /healthz:\n"
                             + text[:3000])
        self.assertGreaterEqual(v1, 3)
        for _ in range(4):
            c.get("/healthz")
        v2 = self._healthz_count(c.get("/metrics").body.decode())
        self.assertGreaterEqual(v2, v1 + 4, "the counter must count")
        # Every sample line is well formed Prometheus text.
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEInfa]+$', line)

    def _healthz_count(self, text):
        for line in text.splitlines():
            if line.startswith("#") or "healthz" not in line:
                continue
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}\s+(\S+)', line)
            if not m or "request" not in m.group(1) or m.group(1).endswith(("_bucket", "_sum", "_count")):
                continue
            labels = dict(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', m.group(2)))
            if "status" in labels and labels["status"] == "200" and any(
                    "healthz" in v for v in labels.values()):
                return float(m.group(3))
        return None

    def test_metrics_count_logins(self):
        name, _ = self.new_user()
        c = self.client()
        before = metric_value(c.get("/metrics").body.decode(), r"login", {})
        self.assertIsNotNone(before, "no login metric")
        self.assertStatus(c.login(name), 200)
        self.assertStatus(self.client().login(name, "wrong password"), 401)
        after = metric_value(c.get("/metrics").body.decode(), r"login", {})
        self.assertGreaterEqual(after, before + 2, "logins ok and failed are counted")

    def test_unknown_routes_404(self):
        c = self.client()
        for path in ("/v1/nope", "/", "/v2/session", "/v1/sessionx", "/V1/session",
                     "/v1/admin/users/x/y", "/.well-known/nothing", "/healthz/x"):
            r = c.get(path)
            self.assertNot5xx(r, path)
            self.assertStatus(r, 404, path)
            self.assertCommonHeaders(r)
            self.assertEqual(r.set_cookies(), [])
        for path in ("/v1/session/../users", "/v1//session", "/%2e%2e/etc/passwd",
                     "/v1/admin/users/%00", "/v1/admin/users/" + "a" * 3000, "/v1/sessions/..",
                     "/v1/verify/../admin/users"):
            r = c.get(path)
            self.assertNot5xx(r, path)
            self.assertStatus(r, (400, 404, 414), path)

    def test_wrong_method(self):
        c = self.client()
        for method, path in (("PUT", "/v1/session"), ("GET", "/v1/session/login"),
                             ("DELETE", "/v1/users"), ("PATCH", "/healthz"),
                             ("GET", "/v1/users/me/password")):
            r = c.request(method, path)
            self.assertNot5xx(r, method + " " + path)
            self.assertStatus(r, (404, 405), method + " " + path)
            self.assertCommonHeaders(r)

    def test_common_headers_on_every_kind_of_response(self):
        name, _ = self.new_user()
        c, _ = self.logged_in()
        anon = self.client()
        responses = [
            anon.get("/healthz"), anon.get("/readyz"), anon.get("/metrics"),
            anon.signup(unique_name()),                           # 201
            anon.signup(name),                                    # 409
            anon.signup(unique_name(), "short"),                  # 400
            anon.login(name, "wrong password"),                   # 401
            anon.login(name, origin="https://evil.example"),      # 403
            anon.get("/v1/nope"),                                 # 404
            anon.request("PUT", "/v1/session"),                   # 405
            anon.post("/v1/users", raw=body_of_size(LIMIT + 1)),  # 413
            c.session(), c.get("/v1/sessions"), c.verify(), anon.verify(),
            c.logout(),                                           # 204
            Client(self.server).admin("GET", "/v1/admin/users"),
            Client(self.server).admin("GET", "/v1/admin/users", key="nope"),
        ]
        for r in responses:
            self.assertCommonHeaders(r)

    def test_body_over_64k_is_413(self):
        c = self.client()
        raw = body_of_size(LIMIT + 1)
        for path in ("/v1/users", "/v1/session/login"):
            r = c.post(path, raw=raw)
            self.assertStatus(r, 413, path)
            self.assertCommonHeaders(r)
        r = Client(self.server).admin("POST", "/v1/admin/users", raw=raw)
        self.assertStatus(r, 413, "admin create")
        r = c.post("/v1/users", raw=b"{" + b" " * (4 * LIMIT) + b"}")
        self.assertStatus(r, 413, "256 KiB of whitespace")

    def test_body_of_exactly_64k_is_not_413(self):
        r = self.client().post("/v1/users", raw=body_of_size(LIMIT, unique_name()))
        self.assertNot5xx(r)
        self.assertProblem(r, 400, "weak_password", "64 KiB exactly is not over the limit")

    def test_body_over_64k_chunked_is_413(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            chunks = (b"x" * 8192 for _ in range(16))  # 128 KiB, no Content-Length
            conn.request("POST", "/v1/users", body=chunks,
                         headers={"Content-Type": "application/json"}, encode_chunked=True)
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 413, "chunked body over 64 KiB")
        except (ConnectionResetError, BrokenPipeError):
            # Refusing by closing the connection mid-body is acceptable, if rude.
            pass
        finally:
            conn.close()
        self.assertStatus(self.client().get("/healthz"), 200)

    def test_declared_huge_content_length_is_413(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=30)
        try:
            s.sendall(b"POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            status_line = data.split(b"\r\n", 1)[0]
            self.assertRegex(status_line.decode("latin-1"), r"^HTTP/1\.[01] 413 ",
                             "a 1 GB Content-Length must be refused from the headers")
        finally:
            s.close()

    def test_nasty_json_never_5xx(self):
        c = self.client()
        cases = [
            b"[" * 30000 + b"]" * 30000,
            b'{"a":' * 10000 + b"1" + b"}" * 10000,
            b'{"username":"' + b"\\u0000" * 100 + b'","password":"xxxxxxxxxx"}',
            b'{"username":"\\ud800","password":"xxxxxxxxxx"}',
            b'{"username":"a","password":"xxxxxxxxxx","extra":' + b"1" * 50000 + b"}",
            json.dumps({"k%d" % i: i for i in range(3000)}).encode(),
            b'{"username":1e999,"password":"xxxxxxxxxx"}',
            b"\xef\xbb\xbf{}",
            b"\x00" * 100,
            b'{"username":"ok","password":"xxxxxxxxxx"}\x00',
        ]
        for path in ("/v1/users", "/v1/session/login"):
            for raw in cases:
                r = c.post(path, raw=raw)
                self.assertNot5xx(r, "%s %r" % (path, raw[:40]))
                self.assertProblem(r, 400, "invalid_request", "%s %r" % (path, raw[:40]))
        self.assertStatus(c.get("/healthz"), 200)

    def test_unknown_fields_or_wrong_content_type_never_5xx(self):
        c = self.client()
        for ctype in ("text/plain", "application/x-www-form-urlencoded", None, "application/json; charset=utf-8"):
            r = c.post("/v1/users", {"username": unique_name(), "password": PASSWORD},
                       content_type=ctype)
            self.assertNot5xx(r, repr(ctype))
            self.assertLess(r.status, 500)

    def test_malformed_http_does_not_hurt(self):
        for raw in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
                    b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                    b"POST /v1/users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",
                    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64):
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
            try:
                try:
                    s.sendall(raw)
                    data = s.recv(4096)
                except (ConnectionResetError, BrokenPipeError, socket.timeout):
                    # Closing, or waiting for the rest until the idle timeout, is fine.
                    data = b""
                if data.startswith(b"HTTP/"):
                    code = int(data.split(b" ", 2)[1])
                    if code != 505:  # HTTP Version Not Supported is the right answer to 9.9
                        self.assertLess(code, 500, "%r -> %r" % (raw[:40], data[:80]))
            finally:
                s.close()
            self.assertStatus(self.client().get("/healthz"), 200, "after %r" % raw[:40])

    def test_huge_cookie_header(self):
        c = self.client()
        try:
            r = c.session(cookie="%s=%s" % (self.server.cookie_name, "A" * 60000))
            self.assertNot5xx(r)
            self.assertGreaterEqual(r.status, 400)
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            pass
        self.assertStatus(c.get("/healthz"), 200)


class LogHygieneTest(ServerTestCase):
    """Logs: one JSON object per line on stderr, never a password, token or cookie."""

    def test_logs_are_json_lines_without_secrets(self):
        secrets_seen = [self.server.admin_key]
        name = unique_name()
        pw = "log-hygiene-password-1"
        new_pw = "log-hygiene-password-2"
        secrets_seen += [pw, new_pw]
        c = self.client()
        self.assertStatus(c.signup(name, pw), 201)
        self.assertStatus(self.client().login(name, "log-hygiene-wrong-pw"), 401)
        secrets_seen.append("log-hygiene-wrong-pw")
        r = c.login(name, pw)
        self.assertStatus(r, 200)
        secrets_seen += [c.session_cookie, c.csrf]
        self.assertStatus(c.verify(), 200)
        r = c.post("/v1/users/me/password", {"current_password": pw, "new_password": new_pw},
                   csrf=c.csrf)
        self.assertStatus(r, 204)
        secrets_seen.append(c.session_cookie)
        c.csrf = c.session().json["csrf_token"]
        secrets_seen.append(c.csrf)
        self.assertStatus(c.logout(), 204)
        apw = "log-hygiene-admin-pw"
        secrets_seen.append(apw)
        r = Client(self.server).admin("POST", "/v1/admin/users",
                                      {"username": unique_name(), "password": apw, "roles": ["x"]})
        self.assertStatus(r, 201)
        self.client().verify(cookie="%s=%s" % (self.server.cookie_name, "Z" * 43))
        secrets_seen.append("Z" * 43)
        # Stop the server so that everything is flushed.
        code = self.server.stop()
        text = self.server.stderr_text()
        self.assertTrue(text.strip(), "the server logged nothing")
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                self.fail("stderr line %d is not JSON: %r" % (i, line[:200]))
            self.assertIsInstance(obj, dict, "line %d" % i)
        for s in secrets_seen:
            self.assertTrue(s)
            self.assertNotIn(s, text, "a secret (%s...) appears in the log" % s[:6])
            self.assertNotIn(s, self.server.stdout_text())
        self.assertEqual(code, 0, "SIGTERM must stop the server cleanly (exit 0)")


class GeneratedAdminKeyTest(ServerTestCase):
    """Without admin.key the first start prints a generated key once; only its hash
    is kept, so later starts print nothing and the key keeps working."""

    @classmethod
    def setUpClass(cls):
        cls.server = None  # started by the test itself

    def test_admin_key_printed_once_and_works(self):
        s = self.track(Server(admin_key=None, name="generated-admin-key"))
        s.start()
        out = s.stdout_text()
        keys = re.findall(r"^admin key: (\S+)\s*$", out, re.M)
        self.assertEqual(len(keys), 1, "expected one 'admin key: ...' line on stdout, got %r" % out)
        key = keys[0]
        self.assertGreaterEqual(len(key), 32, "a generated key needs entropy")
        c = Client(s)
        self.assertStatus(c.admin("GET", "/v1/admin/users", key=key), 200)
        self.assertStatus(c.admin("GET", "/v1/admin/users", key=key + "x"), 401)
        self.assertNotIn(key, s.stderr_text(), "the admin key must not be logged")
        self.assertEqual(s.stop(), 0)
        s.start()
        self.assertNotIn("admin key:", s.stdout_text(), "printed again on the second start")
        self.assertStatus(c.admin("GET", "/v1/admin/users", key=key), 200)
        s.stop()
        for fn in os.listdir(s.dir):
            if fn.startswith(os.path.basename(s.db)):
                with open(os.path.join(s.dir, fn), "rb") as f:
                    self.assertNotIn(key.encode(), f.read(), "the admin key is stored in clear")
