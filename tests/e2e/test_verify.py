"""SPEC section 4, GET /v1/verify (forward auth) with the session cookie."""

import time

from harness import ServerTestCase

REALM = 'Bearer realm="tessera"'


def auth_params(value):
    """'Bearer realm="x", error="y"' -> ('bearer', {'realm': 'x', 'error': 'y'})."""
    value = (value or "").strip()
    scheme, _, rest = value.partition(" ")
    params = {}
    for part in rest.split(","):
        k, eq, v = part.strip().partition("=")
        if eq:
            params[k.strip().lower()] = v.strip().strip('"')
    return scheme.lower(), params


class VerifyTest(ServerTestCase):

    def test_cookie_ok_headers_and_body(self):
        name, uid = self.admin_user(["admin", "ops"])
        c, login = self.logged_in(username=name)
        r = c.verify()
        self.assertStatus(r, 200)
        self.assertCommonHeaders(r)
        self.assertEqual(r.header("X-Auth-Subject"), uid)
        self.assertEqual(r.header("X-Auth-Username"), name)
        self.assertEqual(sorted((r.header("X-Auth-Roles") or "").split(",")), ["admin", "ops"])
        self.assertEqual(r.header("X-Auth-Session"), login["session"]["id"])
        self.assertEqual(r.header("X-Auth-Method"), "cookie")
        b = r.json
        self.assertIsInstance(b, dict, r.describe())
        self.assertEqual(b["sub"], uid)
        self.assertEqual(b["sid"], login["session"]["id"])
        self.assertEqual(b["method"], "cookie")
        self.assertEqual(sorted(b["roles"]), ["admin", "ops"])
        self.assertIsInstance(b["exp"], int)
        self.assertGreater(b["exp"], int(time.time()) - 5)
        self.assertLessEqual(b["exp"], login["session"]["expires_at"])
        # No secret goes back to the proxy.
        self.assertNotIn(c.session_cookie, r.body.decode())

    def test_cookie_ok_user_without_roles(self):
        name, uid = self.new_user()
        c, _ = self.logged_in(username=name)
        r = c.verify()
        self.assertStatus(r, 200)
        self.assertEqual(r.header("X-Auth-Subject"), uid)
        self.assertEqual(r.json["roles"], [])
        self.assertIn(r.header("X-Auth-Roles"), (None, ""), "no roles: empty or absent")

    def test_verify_needs_no_csrf_and_changes_nothing(self):
        c, _ = self.logged_in()
        for _ in range(3):
            self.assertStatus(c.verify(), 200)
        self.assertStatus(c.session(), 200)

    def test_role_required(self):
        name, _ = self.new_user()
        user, _ = self.logged_in(username=name)
        r = user.verify("?role=admin")
        self.assertStatus(r, 403, "a non-admin asking for ?role=admin")
        self.assertNot5xx(r)
        aname, _ = self.admin_user(["admin"])
        admin, _ = self.logged_in(username=aname)
        self.assertStatus(admin.verify("?role=admin"), 200)
        self.assertStatus(admin.verify("?role=superuser"), 403)
        # Role names match exactly, not by prefix or case.
        self.assertStatus(admin.verify("?role=adm"), 403)
        self.assertStatus(admin.verify("?role=ADMIN"), 403)

    def test_no_credential(self):
        r = self.client().verify()
        self.assertStatus(r, 401)
        self.assertCommonHeaders(r)
        self.assertEqual(r.header("WWW-Authenticate"), REALM, r.describe())
        self.assertIsNone(r.header("X-Auth-Subject"))
        r = self.client().verify("?role=admin")
        self.assertStatus(r, 401, "no credential with ?role: 401 before 403")

    def test_bad_cookie(self):
        name = self.server.cookie_name
        for value in ("garbage", "A" * 43, "A" * 4000, "!!!"):
            r = self.client().verify(cookie="%s=%s" % (name, value))
            self.assertNot5xx(r, value[:20])
            self.assertStatus(r, 401, value[:20])
            scheme, params = auth_params(r.header("WWW-Authenticate"))
            self.assertEqual(scheme, "bearer", r.describe())
            self.assertEqual(params.get("realm"), "tessera", r.describe())
            self.assertEqual(params.get("error"), "invalid_token", r.describe())

    def test_revoked_cookie(self):
        c, _ = self.logged_in()
        old = c.session_cookie
        self.assertStatus(c.verify(), 200)
        self.assertStatus(c.logout(), 204)
        r = self.client().verify(cookie="%s=%s" % (self.server.cookie_name, old))
        self.assertStatus(r, 401)
        self.assertEqual(auth_params(r.header("WWW-Authenticate"))[1].get("error"), "invalid_token")

    def test_bad_bearer(self):
        for tok in ("garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
            r = self.client().verify(bearer=tok)
            self.assertNot5xx(r, tok)
            self.assertStatus(r, 401, tok)
            self.assertEqual(auth_params(r.header("WWW-Authenticate"))[1].get("error"),
                             "invalid_token", r.describe())

    def test_verify_other_methods(self):
        # Reverse proxies forward the original method; HEAD at least must answer like GET.
        c, _ = self.logged_in()
        r = c.request("HEAD", "/v1/verify")
        self.assertStatus(r, 200)
        self.assertIsNotNone(r.header("X-Auth-Subject"))
        r = self.client().request("HEAD", "/v1/verify")
        self.assertStatus(r, 401)
