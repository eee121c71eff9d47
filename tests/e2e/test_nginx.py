"""nginx in front of two tessera instances on PostgreSQL + Redis, with the site
config of docs/deploy.md (docs/deploy/tessera.conf, its placeholders filled in).

nginx (the Debian package) runs as a foreground child on a free port with a
throw-away certificate; an upstream application (cluster.App) answers JSON of
the headers it got, so that the tests see what nginx passed on. Checked:
forward auth with `auth_request` for cookies and bearer tokens, 401/403 passed
through, the X-Auth-* headers the application sees (and that client-sent ones
never reach it), logout and revocation through nginx, requests spread over both
instances, the issuer being nginx's URL, and an instance going down and coming
back behind nginx.
"""

import http.client
import json

from cluster import (DEPLOY_DOC, SITE_TEMPLATE, App, ClusterTestCase, Nginx, eventually,
                     render_site, requests_served)
from harness import Client, jwt_parts, unique_name

AUTH_HEADERS = ("X-Auth-Subject", "X-Auth-Username", "X-Auth-Roles", "X-Auth-Session",
                "X-Auth-Method")


def app_headers(r):
    """The headers the application received, from its JSON answer:
    {lower-case name: [values]}."""
    if r.status != 200 or not isinstance(r.json, dict) or "headers" not in r.json:
        raise AssertionError("not an answer of the application:\n" + r.describe())
    out = {}
    for k, v in r.json["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


class NginxTestCase(ClusterTestCase):
    """Cluster (A, B on PostgreSQL + Redis) + App + nginx. self.front is nginx
    as a harness "server" (HTTPS); the issuer is nginx's URL."""

    front = None
    app = None

    @classmethod
    def setUpClass(cls):
        cls.nginx = Nginx(name=cls.__name__ + ".nginx")
        cls.app = None
        try:
            cls.nginx.make_cert()
            super().setUpClass()
            cls.app = App()
            site = render_site(listen="127.0.0.1:%d" % cls.nginx.port,
                               tessera_a="127.0.0.1:%d" % cls.a.port,
                               tessera_b="127.0.0.1:%d" % cls.b.port,
                               app=cls.app.address, cert=cls.nginx.cert, key=cls.nginx.key)
            cls.nginx.write_config(site)
            cls.nginx.start()
            cls.front = cls.nginx.endpoint()
        except BaseException:
            cls._close_front()
            if cls.cluster is not None:
                c, cls.cluster = cls.cluster, None
                c.close(check=False)
            raise

    @classmethod
    def public_url(cls):
        return cls.nginx.url

    @classmethod
    def _close_front(cls):
        try:
            if cls.nginx is not None:
                cls.nginx.close()
        finally:
            if cls.app is not None:
                cls.app.close()

    @classmethod
    def tearDownClass(cls):
        try:
            cls._close_front()
        finally:
            super().tearDownClass()

    # ---- helpers ----

    def fc(self, **kw):
        """A client of nginx."""
        return Client(self.front, **kw)

    def app_get(self, client, path="/app/", **kw):
        return client.get(path, **kw)

    def assertAppSees(self, r, subject, username, session, method, roles=None):
        """200 from the application, with exactly these X-Auth-* values (one of
        each; X-Auth-Roles absent when roles is empty)."""
        self.assertStatus(r, 200, "through nginx to the application")
        h = app_headers(r)
        want = {"x-auth-subject": subject, "x-auth-username": username,
                "x-auth-session": session, "x-auth-method": method}
        for k, v in want.items():
            self.assertEqual(h.get(k), [v], "%s as the application saw it\n%s" % (k, r.describe()))
        if roles:
            self.assertEqual(len(h.get("x-auth-roles", [])), 1, r.describe())
            self.assertEqual(sorted(h["x-auth-roles"][0].split(",")), sorted(roles), r.describe())
        else:
            self.assertNotIn("x-auth-roles", h, "a user without roles\n" + r.describe())
        return h

    def assertDenied(self, r, status=401, msg=None):
        """nginx passed tessera's refusal on; the application saw nothing."""
        self.assertStatus(r, status, msg)
        if isinstance(r.json, dict):
            self.assertNotIn("headers", r.json, "the application answered\n" + r.describe())

    def login_front(self, username=None, roles=None):
        """A user (new, or with roles through the admin API) logged in through
        nginx -> (client, login body, username, id)."""
        if roles:
            username, uid = self.admin_user(roles, server=self.front)
        elif username is None:
            username, uid = self.new_user(self.front)
        c = self.fc()
        r = c.login(username)
        self.assertStatus(r, 200, "login through nginx")
        self.assertIsNotNone(c.session_cookie, r.describe())
        return c, r.json, username, r.json["user"]["id"]


class NginxTest(NginxTestCase):

    def test_doc_shows_the_tested_config(self):
        with open(SITE_TEMPLATE, encoding="utf-8") as f:
            site = f.read()
        with open(DEPLOY_DOC, encoding="utf-8") as f:
            doc = f.read()
        self.assertIn("```nginx\n" + site + "```\n", doc,
                      "docs/deploy.md must show docs/deploy/tessera.conf verbatim "
                      "(the config these tests run)")

    def test_unauthenticated_is_refused(self):
        hits = len(self.app.hits)
        for path in ("/app/", "/app/x?y=1", "/admin/"):
            r = self.fc().get(path, cookies=False)
            self.assertDenied(r, 401, path)
            self.assertIn('Bearer realm="tessera"', r.header("WWW-Authenticate") or "",
                          "nginx passes tessera's WWW-Authenticate on\n" + r.describe())
        self.assertDenied(self.fc().get("/app/", bearer="not-a-token"), 401, "garbage bearer")
        self.assertDenied(self.fc().get("/app/", cookie="__Host-tessera=" + "A" * 43), 401,
                          "unknown cookie")
        r = self.fc().request("POST", "/app/form", raw="a=1", content_type="text/plain",
                              cookies=False)
        self.assertDenied(r, 401, "a POST without credentials")
        self.assertEqual(len(self.app.hits), hits, "the application got a request")

    def test_cookie_login_through_nginx(self):
        name, uid = self.new_user(self.front)
        c = self.fc()
        r = c.login(name)
        self.assertStatus(r, 200)
        sid = r.json["session"]["id"]
        for path in ("/app/", "/app/page?q=1"):
            r = c.get(path)
            self.assertAppSees(r, uid, name, sid, "cookie")
            self.assertEqual(r.json["path"], path, "the application gets the original URI")
        r = c.request("POST", "/app/form", raw="a=1", content_type="text/plain")
        self.assertAppSees(r, uid, name, sid, "cookie")
        self.assertEqual(r.json["method"], "POST")
        self.assertStatus(c.session(), 200, "GET /v1/session through nginx")

    def test_bearer_through_nginx(self):
        name, uid = self.new_user(self.front)
        r = self.fc().password_grant(name)
        self.assertStatus(r, 200, "password grant through nginx")
        tok = r.json["access_token"]
        claims = jwt_parts(tok)[1]
        self.assertEqual(claims["iss"], self.nginx.url, "the issuer is the public URL")
        self.assertAppSees(self.fc().get("/app/", bearer=tok, cookies=False),
                           uid, name, claims["sid"], "bearer")
        c, login, name2, uid2 = self.login_front()
        r = c.session_token()
        self.assertStatus(r, 200, "POST /v1/session/token through nginx")
        self.assertAppSees(self.fc().get("/app/", bearer=r.json["access_token"], cookies=False),
                           uid2, name2, login["session"]["id"], "bearer")

    def test_roles_and_the_admin_location(self):
        c, login, name, uid = self.login_front(roles=["admin", "ops"])
        sid = login["session"]["id"]
        self.assertAppSees(c.get("/app/"), uid, name, sid, "cookie", roles=["admin", "ops"])
        self.assertAppSees(c.get("/admin/"), uid, name, sid, "cookie", roles=["admin", "ops"])
        g = self.fc().password_grant(name).json
        self.assertAppSees(self.fc().get("/admin/x", bearer=g["access_token"], cookies=False),
                           uid, name, jwt_parts(g["access_token"])[1]["sid"], "bearer",
                           roles=["admin", "ops"])
        hits = len(self.app.hits)
        c2, _, _, _ = self.login_front(roles=["ops"])
        self.assertDenied(c2.get("/admin/"), 403, "/admin/ without the admin role")
        c3, _, _, _ = self.login_front()
        self.assertDenied(c3.get("/admin/"), 403, "/admin/ without any role")
        self.assertEqual(len(self.app.hits), hits, "the application got a refused request")

    def test_spoofed_auth_headers_never_reach_the_app(self):
        c, login, name, uid = self.login_front()   # a user without roles
        sid = login["session"]["id"]
        forged = {"X-Auth-Subject": "usr_forgedforgedforged00", "X-Auth-Username": "root",
                  "X-Auth-Roles": "admin", "X-Auth-Session": "ses_forgedforgedforged00",
                  "X-Auth-Method": "forged"}
        r = c.get("/app/", headers=forged)
        self.assertAppSees(r, uid, name, sid, "cookie", roles=None)
        r = c.get("/admin/", headers=forged)
        self.assertDenied(r, 403, "a forged X-Auth-Roles: admin does not open /admin/")
        # Repeated and differently cased names, sent raw.
        hdrs = [("x-auth-subject", "usr_forged1"), ("X-AUTH-SUBJECT", "usr_forged2"),
                ("X-Auth-Roles", "admin"), ("x-auth-roles", "root"),
                ("X-Auth-Username", "root"), ("X-Auth-Method", "forged"),
                # CGI/WSGI map X_Auth_Roles to the same HTTP_X_AUTH_ROLES as
                # X-Auth-Roles: nginx drops names with underscores by default.
                ("X_Auth_Roles", "admin"), ("X_Auth_Subject", "usr_forged3"),
                ("Cookie", "%s=%s" % (self.front.cookie_name, c.session_cookie))]
        status, body = self.raw_get("/app/", hdrs)
        self.assertEqual(status, 200, body)
        h = {}
        for k, v in json.loads(body)["headers"]:
            h.setdefault(k.lower(), []).append(v)
        self.assertEqual(h.get("x-auth-subject"), [uid], body)
        self.assertEqual(h.get("x-auth-username"), [name], body)
        self.assertEqual(h.get("x-auth-method"), ["cookie"], body)
        self.assertNotIn("x-auth-roles", h, body)
        self.assertNotIn("x_auth_roles", h, body)
        self.assertNotIn("x_auth_subject", h, body)
        # Without a credential, forged headers get nothing through.
        hits = len(self.app.hits)
        self.assertDenied(self.fc().get("/app/", headers=forged, cookies=False), 401)
        self.assertEqual(len(self.app.hits), hits)

    def raw_get(self, path, headers):
        conn = http.client.HTTPSConnection("127.0.0.1", self.front.port, timeout=30,
                                           context=self.front.ssl_context)
        try:
            conn.putrequest("GET", path)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def test_logout_through_nginx(self):
        c, login, name, uid = self.login_front()
        cookie = c.session_cookie
        for _ in range(4):
            self.assertAppSees(c.get("/app/"), uid, name, login["session"]["id"], "cookie")
        r = c.logout()
        self.assertStatus(r, 204, "logout through nginx")
        # At once, whichever instance nginx picks (several requests reach both).
        for i in range(8):
            r = self.fc().get("/app/", cookie="%s=%s" % (self.front.cookie_name, cookie))
            self.assertDenied(r, 401, "request %d after the logout" % (i + 1))

    def test_revoked_token_through_nginx(self):
        name, _ = self.new_user(self.front)
        g = self.fc().password_grant(name).json
        tok = g["access_token"]
        for _ in range(4):
            self.assertStatus(self.fc().get("/app/", bearer=tok, cookies=False), 200)
        r = self.fc().oauth_revoke(g["refresh_token"])
        self.assertStatus(r, 200, "RFC 7009 revoke through nginx")
        # The instance that revoked refuses at once, the other within pub/sub's
        # delay: wait on each directly, then every request through nginx is refused.
        for s in self.both():
            self.bearer_refused_eventually(tok, s, "family revoked through nginx")
        for i in range(8):
            self.assertDenied(self.fc().get("/app/", bearer=tok, cookies=False), 401,
                              "request %d after the revocation" % (i + 1))

    def test_requests_alternate_between_instances(self):
        c, login, name, uid = self.login_front()
        before = [requests_served(s, "/v1/verify") for s in self.both()]
        n = 20
        for _ in range(n):
            self.assertAppSees(c.get("/app/"), uid, name, login["session"]["id"], "cookie")
        after = [requests_served(s, "/v1/verify") for s in self.both()]
        served = [y - x for x, y in zip(before, after)]
        self.assertGreaterEqual(sum(served), n, "every /app/ request was verified: %r" % served)
        for s, k in zip(self.both(), served):
            self.assertGreater(k, 0, "%s verified none of %d requests (%r)" % (s.name, n, served))

    def test_discovery_and_what_is_not_proxied(self):
        r = self.fc().get("/.well-known/openid-configuration")
        self.assertStatus(r, 200)
        self.assertEqual(r.json["issuer"], self.nginx.url, r.describe())
        r = self.fc().get("/.well-known/jwks.json")
        self.assertStatus(r, 200)
        self.assertTrue(r.json["keys"], r.describe())
        for path in ("/metrics", "/healthz", "/readyz", "/_tessera_verify",
                     "/_tessera_verify_admin"):
            r = self.fc().get(path)
            self.assertStatus(r, 404, "%s is not reachable through nginx" % path)

    def test_browser_origin_checks_use_the_public_url(self):
        name, _ = self.new_user(self.front)
        c = self.fc()
        r = c.login(name, origin=self.front.origin, sec_fetch_site="same-origin")
        self.assertStatus(r, 200, "login from the public URL's origin")
        r = c.logout(origin=self.front.origin)
        self.assertStatus(r, 204, "logout from the public URL's origin")
        r = self.fc().login(name, origin="https://evil.example", sec_fetch_site="cross-site")
        self.assertProblem(r, 403, "csrf", "login from a foreign origin")


class NginxFailoverTest(NginxTestCase):
    """One instance dies behind nginx; the other serves; it comes back."""

    def test_one_instance_down_then_back(self):
        c, login, name, uid = self.login_front()
        sid = login["session"]["id"]
        g = self.fc().password_grant(name).json
        self.b.kill()
        try:
            for i in range(6):
                self.assertAppSees(c.get("/app/"), uid, name, sid, "cookie")
                r = self.fc().get("/app/", bearer=g["access_token"], cookies=False)
                self.assertStatus(r, 200, "bearer with B down, request %d" % (i + 1))
                n = unique_name("fo")
                self.assertStatus(self.fc().signup(n), 201, "signup with B down")
                self.assertStatus(self.fc().login(n), 200, "login with B down")
            c2, _, _, _ = self.login_front()
            cookie2 = c2.session_cookie
            self.assertStatus(c2.logout(), 204, "logout with B down")
        finally:
            self.b.start(port=self.b.port)
        # B is back on its port: nginx uses it again (after fail_timeout).
        before = requests_served(self.b, "/v1/verify")

        def b_serves():
            self.assertAppSees(c.get("/app/"), uid, name, sid, "cookie")
            return requests_served(self.b, "/v1/verify") > before, "B not used yet"
        eventually(b_serves, "nginx sends requests to B again", bound=30, interval=0.2)
        for _ in range(6):
            self.assertDenied(self.fc().get("/app/", cookie="%s=%s" % (self.front.cookie_name,
                                                                      cookie2)), 401,
                              "a logout done while B was down, seen by B too")
