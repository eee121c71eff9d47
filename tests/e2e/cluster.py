"""Shared helpers for the scaled-out end-to-end tests (test_cluster, test_nginx).

A `Cluster` is one throw-away PostgreSQL, one throw-away Redis (both from
tests/support/services.py) and N `harness.Server`s sharing them through
TESSERA_STORE_URL / TESSERA_CACHE_URL, with one admin key and one public URL
(the token issuer) as instances behind one load balancer must have.
`Nginx` runs /usr/sbin/nginx as a foreground child in front of them with the
site config of docs/deploy/tessera.conf, rendered; `App` is the tiny upstream
application that answers JSON of the request headers it received.

Every process is started by these helpers and stopped by its PID in the
fixtures' tear-down, also when a test fails; a registry stops whatever is left
at interpreter exit or on SIGTERM (a ctest time-out), by PID as well.

Waits are bounded hang guards, never speed assertions.
"""

import atexit
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness
from harness import ADMIN_KEY, COOKIE_NAME, Client, Server, ServerTestCase, free_port, metric_value

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUPPORT = os.path.join(REPO, "tests", "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)
import services  # noqa: E402  (tests/support/services.py)

NGINX = os.environ.get("TESSERA_E2E_NGINX", "/usr/sbin/nginx")
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
SITE_TEMPLATE = os.path.join(REPO, "docs", "deploy", "tessera.conf")
DEPLOY_DOC = os.path.join(REPO, "docs", "deploy.md")

# Poll interval and bounds. FANOUT_BOUND guards a wait for a revocation to reach
# another instance (pub/sub: milliseconds); RECOVER_BOUND guards a wait for a
# reconnection to Redis or PostgreSQL (client back-off up to a few seconds).
POLL = 0.005
FANOUT_BOUND = float(os.environ.get("TESSERA_E2E_FANOUT_BOUND", "5"))
RECOVER_BOUND = float(os.environ.get("TESSERA_E2E_RECOVER_BOUND", "30"))

# Settings of every cluster instance, on top of harness.BASE_ENV (cheap Argon2,
# debug logs): few request threads, two cores are shared by everything here.
CLUSTER_ENV = {
    "TESSERA_SERVER_THREADS": "2",
}

NET_ERRORS = (ConnectionError, OSError, http.client.HTTPException)


# ---------------------------------------------------------------------------
# Last-resort clean-up of the processes we started (by PID).
# ---------------------------------------------------------------------------

_live_lock = threading.Lock()
_live = []          # objects with an emergency_stop() method
_handler = {"installed": False}


def _register(obj):
    with _live_lock:
        _live.append(obj)
        if not _handler["installed"]:
            _handler["installed"] = True
            atexit.register(_emergency_stop_all)
            try:
                if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                    signal.signal(signal.SIGTERM, _on_sigterm)
            except ValueError:
                pass  # not the main thread: atexit still covers a normal exit


def _unregister(obj):
    with _live_lock:
        if obj in _live:
            _live.remove(obj)


def _emergency_stop_all():
    with _live_lock:
        objs = list(reversed(_live))
        del _live[:]
    for o in objs:
        try:
            o.emergency_stop()
        except Exception:  # noqa: BLE001  (keep stopping the others)
            pass


def _on_sigterm(signum, _frame):
    _emergency_stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


class _ServerGuard:
    def __init__(self, server):
        self.server = server

    def emergency_stop(self):
        self.server.kill()


class _ServiceGuard:
    """PostgreSQL: SIGQUIT (immediate shutdown: the postmaster takes its backends
    down); Redis: SIGKILL."""

    def __init__(self, svc, sig):
        self.svc = svc
        self.sig = sig

    def emergency_stop(self):
        p = self.svc.proc
        if p is not None and p.poll() is None:
            p.send_signal(self.sig)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ---------------------------------------------------------------------------
# Small tools.
# ---------------------------------------------------------------------------

def eventually(check, what, bound=FANOUT_BOUND, interval=POLL):
    """Calls check() until it returns (True, detail); AssertionError with the last
    detail when `bound` seconds pass first. The bound is a hang guard."""
    deadline = time.monotonic() + bound
    n = 0
    while True:
        n += 1
        ok, detail = check()
        if ok:
            return detail
        if time.monotonic() > deadline:
            raise AssertionError("%s: still not the case after %.0f s and %d tries (a hang "
                                 "guard, not a speed limit); last: %s" % (what, bound, n, detail))
        time.sleep(interval)


def scrape(server):
    """GET /metrics of one instance -> (status, text)."""
    r = Client(server).get("/metrics", timeout=10)
    return r.status, r.body.decode("utf-8", "replace")


def gauge(server, name, labels=None):
    """The value of metric `name` on `server` (None when absent or not 200)."""
    status, text = scrape(server)
    if status != 200:
        return None
    return metric_value(text, "^%s$" % re.escape(name), labels or {})


def requests_served(server, route=None):
    """tessera_http_requests_total summed (optionally for one route pattern)."""
    status, text = scrape(server)
    if status != 200:
        raise AssertionError("/metrics of %s answered %d" % (server.name, status))
    return metric_value(text, r"^tessera_http_requests_total$",
                        {"route": route} if route else {}) or 0


def wait_gauges(servers, name, value, what=None, bound=RECOVER_BOUND, interval=0.05):
    """Waits until `name` reads `value` on every server. A metric that a 200
    /metrics answer does not contain at all fails at once (nothing to wait for)."""
    def check():
        got = {}
        for s in servers:
            try:
                status, text = scrape(s)
            except NET_ERRORS as e:
                got[s.name] = "error %r" % (e,)
                continue
            if status != 200:
                got[s.name] = "GET /metrics answered %d" % status
                continue
            v = metric_value(text, "^%s$" % re.escape(name), {})
            if v is None:
                raise AssertionError("%s does not export %s in GET /metrics" % (s.name, name))
            got[s.name] = v
        return all(v == value for v in got.values()), got
    return eventually(check, what or "%s == %s on %s" % (name, value, [s.name for s in servers]),
                      bound=bound, interval=interval)


def wait_subscribed(servers, bound=RECOVER_BOUND):
    """Every instance has a live Redis connection and revocation subscription."""
    wait_gauges(servers, "tessera_redis_up", 1, bound=bound)
    wait_gauges(servers, "tessera_revocation_subscribed", 1, bound=bound)


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------
# The cluster: PostgreSQL + Redis + N tessera instances.
# ---------------------------------------------------------------------------

class Cluster:
    """PostgreSQL, Redis and `n` tessera instances sharing them. `public_url`
    (the issuer) defaults to http://127.0.0.1:<a reserved port>; behind nginx
    it is nginx's URL. `concurrent` starts the instances at the same moment
    (a cold start race on an empty database)."""

    def __init__(self, n=2, env=None, name="cluster", public_url=None, concurrent=False):
        self.n = n
        self.extra_env = dict(env or {})
        self.name = name
        self.public_url = public_url or "http://127.0.0.1:%d" % free_port()
        self.concurrent = concurrent
        self.pg = None
        self.redis = None
        self.servers = []
        self._guards = []

    # ---- life cycle ----

    def start(self):
        try:
            self.pg = services.Postgres()
            self._guard(_ServiceGuard(self.pg, signal.SIGQUIT))
            self.pg.start()
            self.redis = services.Redis()
            self._guard(_ServiceGuard(self.redis, signal.SIGKILL))
            self.redis.start()
            self.servers = [self.new_server(chr(ord("A") + i)) for i in range(self.n)]
            if self.concurrent:
                errors = []

                def run(s):
                    try:
                        s.start()
                    except Exception as e:  # noqa: BLE001
                        errors.append(e)
                threads = [threading.Thread(target=run, args=(s,)) for s in self.servers]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                if errors:
                    raise errors[0]
            else:
                for s in self.servers:
                    s.start()
        except BaseException:
            self.close(check=False)
            raise
        return self

    def _guard(self, g):
        self._guards.append(g)
        _register(g)

    def env(self):
        env = dict(CLUSTER_ENV)
        env["TESSERA_STORE_URL"] = self.pg.url
        env["TESSERA_CACHE_URL"] = self.redis.url
        env["TESSERA_SERVER_PUBLIC_URL"] = self.public_url
        env.update(self.extra_env)
        return env

    def new_server(self, label):
        """One more instance on this cluster's PostgreSQL and Redis (not started)."""
        s = Server(env=self.env(), admin_key=ADMIN_KEY, name="%s.%s" % (self.name, label))
        self._guard(_ServerGuard(s))
        return s

    def close(self, check=True):
        """Stops every instance (SIGTERM; with check, one that does not exit 0
        is reported), then Redis and PostgreSQL. Always stops everything."""
        problems = []
        for s in self.servers:
            try:
                s.cleanup(check=check)
            except Exception as e:  # noqa: BLE001
                problems.append(str(e))
        for svc in (self.redis, self.pg):
            if svc is None:
                continue
            try:
                if problems or os.environ.get("TESSERA_E2E_KEEP"):
                    svc.stop()
                    sys.stderr.write("[e2e] kept %s\n" % svc.dir)
                else:
                    svc.close()
            except Exception as e:  # noqa: BLE001
                problems.append("%s: %r" % (type(svc).__name__, e))
        for g in self._guards:
            _unregister(g)
        if problems:
            raise harness.ServerError("\n".join(problems))

    # ---- access ----

    @property
    def a(self):
        return self.servers[0]

    @property
    def b(self):
        return self.servers[1]

    def ensure_running(self):
        """Brings PostgreSQL, Redis and every instance back up after a test that
        stopped one (instances restart on their previous port)."""
        if self.pg.proc is None:
            self.pg.start()
        if self.redis.proc is None:
            self.redis.start()
        for s in self.servers:
            if not s.alive():
                s.start(port=s.port)

    def log_tail(self):
        parts = [s.log_tail(40) for s in self.servers]
        if self.pg is not None:
            parts.append("---- postgres log ----\n"
                         + tail(os.path.join(self.pg.dir, "postgres.log"), 12))
        if self.redis is not None:
            parts.append("---- redis log ----\n" + tail(os.path.join(self.redis.dir, "redis.log"), 8))
        return "\n".join(parts)


# ---------------------------------------------------------------------------
# The upstream application and nginx.
# ---------------------------------------------------------------------------

class App:
    """A threading HTTP/1.1 server on a free loopback port that answers every
    request with JSON {"method", "path", "headers": [[name, value], ...]}."""

    def __init__(self):
        hits = self.hits = []
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                doc = {"method": self.command, "path": self.path,
                       "headers": [[k, v] for k, v in self.headers.items()]}
                with lock:
                    hits.append(doc)
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer  # noqa: N815

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def render_site(listen, tessera_a, tessera_b, app, cert, key):
    """docs/deploy/tessera.conf with its {{...}} placeholders filled in."""
    with open(SITE_TEMPLATE, encoding="utf-8") as f:
        text = f.read()
    values = {"LISTEN": listen, "TESSERA_A": tessera_a, "TESSERA_B": tessera_b,
              "APP": app, "CERT": cert, "KEY": key}
    for k, v in values.items():
        text = text.replace("{{%s}}" % k, v)
    left = re.findall(r"\{\{[A-Z_]+\}\}", text)
    if left:
        raise AssertionError("unfilled placeholders in %s: %s" % (SITE_TEMPLATE, left))
    return text


class Nginx:
    """nginx as a foreground child: `nginx -p DIR -c DIR/nginx.conf -g 'daemon off;
    pid ...; error_log ...;'`. DIR/nginx.conf is the minimal main context a
    distribution's nginx.conf gives (events, an http block with temp paths and
    an access log) and includes DIR/tessera.conf, the site config. As root its
    workers run as nobody:nogroup. HTTPS with a throw-away self-signed
    certificate; `endpoint()` gives harness.Client a server-like object."""

    def __init__(self, name="nginx"):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="tessera-nginx-")
        os.chmod(self.dir, 0o755)  # the workers (nobody) traverse it to their temp dirs
        self.port = free_port()
        self.proc = None
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self._guard = None

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def make_cert(self):
        r = subprocess.run(
            [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=60)
        if r.returncode != 0:
            raise harness.ServerError("openssl req failed:\n" + r.stdout.decode(errors="replace"))
        os.chmod(self.key, 0o600)   # read by the master (root) only

    def write_config(self, site_text):
        with open(os.path.join(self.dir, "tessera.conf"), "w", encoding="utf-8") as f:
            f.write(site_text)
        user = ""
        if os.geteuid() == 0:
            user = "user nobody nogroup;\n"
        d = self.dir
        main = (
            "%sworker_processes 1;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    access_log %s;\n"
            "    client_body_temp_path %s/tmp/body;\n"
            "    proxy_temp_path %s/tmp/proxy;\n"
            "    fastcgi_temp_path %s/tmp/fastcgi;\n"
            "    uwsgi_temp_path %s/tmp/uwsgi;\n"
            "    scgi_temp_path %s/tmp/scgi;\n"
            "    include %s/tessera.conf;\n"
            "}\n" % (user, self.access_log, d, d, d, d, d, d))
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        with open(os.path.join(d, "nginx.conf"), "w", encoding="utf-8") as f:
            f.write(main)

    def _cmd(self, *extra):
        return [NGINX, "-p", self.dir + "/", "-e", self.error_log,
                "-c", os.path.join(self.dir, "nginx.conf"),
                "-g", "daemon off; pid %s/nginx.pid; error_log %s;" % (self.dir, self.error_log)
                ] + list(extra)

    def start(self):
        t = subprocess.run(self._cmd("-t"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        if t.returncode != 0:
            raise harness.ServerError("nginx -t refused the config:\n%s"
                                      % t.stdout.decode(errors="replace"))
        out = open(os.path.join(self.dir, "stdout.log"), "wb")
        try:
            self.proc = subprocess.Popen(self._cmd(), cwd=self.dir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()
        self._guard = _ServiceGuard(self, signal.SIGTERM)
        _register(self._guard)
        deadline = time.monotonic() + harness.START_TIMEOUT
        ctx = self.ssl_context()
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise harness.ServerError("nginx exited with %d while starting\n%s"
                                          % (code, self.log_tail()))
            try:
                c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=2, context=ctx)
                try:
                    c.request("GET", "/nothing-here")
                    c.getresponse().read()
                    return self
                finally:
                    c.close()
            except (OSError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise harness.ServerError("nginx did not answer within %.0f s\n%s"
                                          % (harness.START_TIMEOUT, self.log_tail()))
            time.sleep(0.05)

    def stop(self):
        """SIGQUIT (graceful: the master stops its workers), SIGKILL after the
        harness's stop bound. Returns the exit code."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT)
            try:
                p.wait(timeout=harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.proc = None
        if self._guard is not None:
            _unregister(self._guard)
            self._guard = None
        return p.returncode

    def close(self):
        self.stop()
        if os.environ.get("TESSERA_E2E_KEEP"):
            sys.stderr.write("[e2e] kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False  # the certificate names IP 127.0.0.1; be lenient anyway
        return ctx

    def endpoint(self):
        return Endpoint(self.port, self.ssl_context(), self.name)

    def log_tail(self):
        return "---- nginx error.log ----\n%s\n---- nginx access.log ----\n%s" % (
            tail(self.error_log), tail(self.access_log, 20))


class Endpoint:
    """What harness.Client needs of a "server": a port, the cookie name, the
    admin key, and here a TLS context."""

    def __init__(self, port, ssl_context, name):
        self.port = port
        self.ssl_context = ssl_context
        self.name = name
        self.cookie_name = COOKIE_NAME
        self.admin_key = ADMIN_KEY

    @property
    def origin(self):
        return "https://127.0.0.1:%d" % self.port


# ---------------------------------------------------------------------------
# Test case base.
# ---------------------------------------------------------------------------

class ClusterTestCase(ServerTestCase):
    """One Cluster per test class (CLUSTER_SIZE instances, CLUSTER_ENV on top of
    cluster.CLUSTER_ENV). self.server is instance A, so the harness helpers
    default to it; self.a and self.b name the instances. On a failure the logs of
    every instance, PostgreSQL, Redis (and nginx, if any) are printed."""

    CLUSTER_SIZE = 2
    CLUSTER_ENV = {}
    CLUSTER_CONCURRENT = False
    cluster = None
    nginx = None

    @classmethod
    def setUpClass(cls):
        unittest.TestCase.setUpClass()
        cls.cluster = Cluster(n=cls.CLUSTER_SIZE, env=cls.CLUSTER_ENV, name=cls.__name__,
                              public_url=cls.public_url(), concurrent=cls.CLUSTER_CONCURRENT)
        cls.cluster.start()
        cls.server = cls.cluster.a
        cls.a = cls.cluster.a
        cls.b = cls.cluster.b if cls.CLUSTER_SIZE > 1 else None

    @classmethod
    def public_url(cls):
        return None

    @classmethod
    def tearDownClass(cls):
        c, cls.cluster, cls.server = cls.cluster, None, None
        unittest.TestCase.tearDownClass()
        if c is not None:
            c.close()

    def run(self, result=None):
        before = harness._bad_count(result)
        out = unittest.TestCase.run(self, result)
        if result is not None and harness._bad_count(result) > before:
            parts = []
            if self.cluster is not None:
                parts.append(self.cluster.log_tail())
            for s in getattr(self, "_extra_servers", []):
                parts.append(s.log_tail(40))
            if self.nginx is not None:
                parts.append(self.nginx.log_tail())
            sys.stderr.write("\n[e2e] %s failed; logs:\n%s\n" % (self.id(), "\n".join(parts)))
        return out

    # ---- helpers ----

    def both(self):
        return [self.a, self.b]

    def wait_subscribed(self, servers=None):
        wait_subscribed(servers or self.cluster.servers)

    def warm_cookie(self, cookie_value, servers=None, times=3):
        """Uses a live cookie on each instance a few times (fills every cache
        there is) and checks it is alive everywhere."""
        for s in servers or self.cluster.servers:
            for _ in range(times):
                self.assertSessionAlive(cookie_value, server=s, msg="live cookie on %s" % s.name)
                c = self.client(s)
                self.assertStatus(c.verify(cookie=c.cookie_header(cookie_value)), 200,
                                  "verify of a live cookie on %s" % s.name)

    def warm_bearer(self, token, servers=None, times=3):
        for s in servers or self.cluster.servers:
            for _ in range(times):
                self.assertBearerOk(token, server=s, msg="live token on %s" % s.name)

    def bearer_refused_eventually(self, token, server, what):
        """Polls GET /v1/verify with `token` on `server` every 5 ms until it is
        refused (FANOUT_BOUND hang guard), then checks the refusal's shape and
        that it stays refused."""
        def check():
            r = Client(server).bearer_verify(token)
            if r.status >= 500:
                raise AssertionError("%s: 5xx while polling\n%s" % (what, r.describe()))
            return r.status == 401, r.status
        eventually(check, "%s: bearer refused on %s" % (what, server.name))
        for _ in range(3):
            self.assertBearerRefused(token, server=server, msg=what)

    def assertCookieDeadEverywhere(self, cookie_value, what, servers=None):
        for s in servers or self.cluster.servers:
            self.assertSessionDead(cookie_value, server=s, msg="%s (on %s)" % (what, s.name))
