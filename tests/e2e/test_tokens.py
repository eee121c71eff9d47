"""SPEC section 4, Token and hybrid mode (OAuth 2.0 shaped): the password and
refresh_token grants, refresh rotation with its reuse grace and reuse detection,
concurrent refreshes, POST /v1/session/token, the sessions a grant opens, RFC
7009 revoke, RFC 7662 introspection, and every revocation path reaching the
access tokens issued before it in the three verify.bearer modes."""

import threading
import time

from harness import (FORM, PASSWORD, Client, ServerTestCase, form_encode, jwt_parts,
                     unique_name)

REFRESH_RE = r"^[A-Za-z0-9_-]{43}$"
GRANT_KEYS = {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
EVIL = "https://evil.example"


def sid_of(token):
    return jwt_parts(token)[1]["sid"]


def jti_of(token):
    return jwt_parts(token)[1]["jti"]


class TokenTestCase(ServerTestCase):
    """Helpers shared by the classes below."""

    def assertGrant(self, r, uid=None, scope=None, ttl=900, refresh=True):
        """A successful token response: shape, headers and the access token's
        header and claims (RFC 9068 profile, SPEC section 4)."""
        self.assertStatus(r, 200)
        self.assertCommonHeaders(r)
        self.assertNoStore(r)
        ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
        self.assertEqual(ctype, "application/json", r.describe())
        b = r.json
        self.assertIsInstance(b, dict, r.describe())
        want = GRANT_KEYS if refresh else {"access_token", "token_type", "expires_in"}
        self.assertTrue(want <= set(b), "missing %s\n%s" % (want - set(b), r.describe()))
        if not refresh:
            self.assertIn(b.get("refresh_token"), (None, ""),
                          "no refresh token here\n" + r.describe())
        self.assertEqual(b["token_type"], "Bearer", r.describe())
        self.assertIsInstance(b["expires_in"], int, r.describe())
        self.assertEqual(b["expires_in"], ttl, r.describe())
        if refresh:
            self.assertRegex(b["refresh_token"], REFRESH_RE,
                             "refresh tokens are 43 base64url chars (256 bits)")
            self.assertIsInstance(b["scope"], str, r.describe())
            if scope is not None:
                self.assertEqual(b["scope"], scope, r.describe())
        tok = b["access_token"]
        self.assertIsInstance(tok, str)
        self.assertRegex(tok, r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
                         "compact JWS, unpadded base64url")
        h, c = jwt_parts(tok)
        self.assertEqual(h.get("typ"), "at+jwt", h)
        self.assertIsInstance(h.get("kid"), str, h)
        self.assertTrue(h["kid"], h)
        self.assertNotIn(h.get("alg"), (None, "none"), h)
        for k in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "scope", "roles"):
            self.assertIn(k, c, "claim %r missing: %r" % (k, c))
        self.assertEqual(c["iss"], self.server.origin, "default issuer: the public URL")
        aud = c["aud"] if isinstance(c["aud"], list) else [c["aud"]]
        self.assertIn("tessera", aud, c)
        for k in ("exp", "iat", "nbf"):
            self.assertIsInstance(c[k], int, "%s: %r" % (k, c))
        self.assertEqual(c["exp"] - c["iat"], ttl, c)
        self.assertLessEqual(c["nbf"], c["iat"] + 1, c)
        self.assertTrue(abs(c["iat"] - time.time()) < 120, "iat is now: %r" % c)
        self.assertIsInstance(c["roles"], list, c)
        self.assertIsInstance(c["sid"], str, c)
        self.assertIsInstance(c["jti"], str, c)
        self.assertTrue(c["sid"] and c["jti"], c)
        if uid is not None:
            self.assertEqual(c["sub"], uid, c)
        if refresh:
            self.assertEqual(c["scope"], b["scope"], c)
            self.assertNotIn(b["refresh_token"], tok)
        return b, h, c

    def cookie_user_session(self, username=None):
        """(client logged in with a cookie, login body)."""
        return self.logged_in(username=username)

    def sessions_of(self, client=None, bearer=None):
        if bearer is not None:
            r = self.client().get("/v1/sessions", bearer=bearer, cookies=False)
        else:
            r = client.get("/v1/sessions")
        self.assertStatus(r, 200)
        return r.json["sessions"]


class PasswordGrantTest(TokenTestCase):

    def test_form_encoded_shape(self):
        name, uid = self.new_user()
        r = self.client().password_grant(name)
        b, h, c = self.assertGrant(r, uid)
        self.assertEqual(h["alg"], "ES256", "default tokens.alg")
        self.assertEqual(c["roles"], [])
        self.assertNotIn(PASSWORD, r.body.decode())
        # No cookie: token mode does not open a browser session.
        self.assertEqual(r.set_cookies(), [])

    def test_json_body_accepted(self):
        name, uid = self.new_user()
        r = self.client().password_grant(name, as_json=True)
        self.assertGrant(r, uid)

    def test_charset_parameter_and_plus_encoding(self):
        # "application/x-www-form-urlencoded; charset=UTF-8" is what browsers
        # send; '+' is a space in that format, %20 too.
        name, uid = self.new_user()
        body = form_encode([("grant_type", "password"), ("username", name),
                            ("password", PASSWORD), ("scope", "read write")])
        self.assertIn("read+write", body)
        r = self.client().request("POST", "/v1/oauth/token", raw=body,
                                  content_type=FORM + "; charset=UTF-8", cookies=False)
        self.assertGrant(r, uid, scope="read write")
        body = body.replace("read+write", "read%20write").replace("+", "%20")
        r = self.client().request("POST", "/v1/oauth/token", raw=body, content_type=FORM,
                                  cookies=False)
        self.assertGrant(r, uid, scope="read write")

    def test_scope(self):
        name, uid = self.new_user()
        r = self.client().password_grant(name, scope="read write")
        b, _, c = self.assertGrant(r, uid, scope="read write")
        self.assertEqual(c["scope"], "read write")
        # Refreshing keeps the family's scope.
        r = self.client().refresh_grant(b["refresh_token"])
        self.assertGrant(r, uid, scope="read write")
        for bad in ('a"b', "a\\b", "a  b", " a", "x" * 300):
            r = self.client().password_grant(name, scope=bad)
            self.assertNot5xx(r, repr(bad))
            self.assertOAuthError(r, 400, ("invalid_scope", "invalid_request"),
                                  "scope %r" % bad[:20])

    def test_roles_claim(self):
        name, uid = self.admin_user(["admin", "ops"])
        _, _, c = self.grant(name)
        self.assertEqual(sorted(c["roles"]), ["admin", "ops"])
        self.assertEqual(c["sub"], uid)

    def test_username_case_insensitive(self):
        name, uid = self.new_user()
        r = self.client().password_grant(name.upper())
        self.assertGrant(r, uid)

    def test_each_grant_new_family(self):
        name, _ = self.new_user()
        _, g1, c1 = self.grant(name)
        _, g2, c2 = self.grant(name)
        self.assertNotEqual(c1["sid"], c2["sid"])
        self.assertNotEqual(c1["jti"], c2["jti"])
        self.assertNotEqual(g1["refresh_token"], g2["refresh_token"])

    def test_wrong_password_invalid_grant(self):
        name, _ = self.new_user()
        wrong = self.client().password_grant(name, "wrong password!")
        unknown = self.client().password_grant("nobody_" + unique_name(), PASSWORD)
        self.assertOAuthError(wrong, 400, "invalid_grant", "wrong password")
        self.assertOAuthError(unknown, 400, "invalid_grant", "unknown user")
        self.assertEqual(wrong.json, unknown.json,
                         "unknown user and wrong password answer the same body")
        self.assertNot5xx(self.client().password_grant("bad name!", PASSWORD))

    def test_unsupported_grant_type(self):
        name, _ = self.new_user()
        for gt in ("client_credentials", "authorization_code", "implicit",
                   "urn:ietf:params:oauth:grant-type:jwt-bearer", "PASSWORD", "foo"):
            r = self.client().oauth("/v1/oauth/token", [("grant_type", gt),
                                                        ("username", name),
                                                        ("password", PASSWORD)])
            self.assertOAuthError(r, 400, "unsupported_grant_type", gt)
            r = self.client().oauth("/v1/oauth/token", {"grant_type": gt, "username": name,
                                                        "password": PASSWORD}, as_json=True)
            self.assertOAuthError(r, 400, "unsupported_grant_type", "JSON " + gt)

    def test_missing_params(self):
        name, _ = self.new_user()
        cases = [
            [],
            [("username", name), ("password", PASSWORD)],
            [("grant_type", "password"), ("password", PASSWORD)],
            [("grant_type", "password"), ("username", name)],
            [("grant_type", "refresh_token")],
        ]
        for fields in cases:
            r = self.client().oauth("/v1/oauth/token", fields)
            self.assertOAuthError(r, 400, "invalid_request", "form %r" % fields)
            r = self.client().oauth("/v1/oauth/token", fields, as_json=True)
            self.assertOAuthError(r, 400, "invalid_request", "JSON %r" % fields)
        r = self.client().request("POST", "/v1/oauth/token", raw="", content_type=FORM,
                                  cookies=False)
        self.assertOAuthError(r, 400, "invalid_request", "empty body")

    def test_duplicate_params(self):
        # RFC 6749 3.1: parameters MUST NOT be included more than once.
        name, _ = self.new_user()
        base = [("grant_type", "password"), ("username", name), ("password", PASSWORD)]
        for dup in (("grant_type", "password"), ("username", name),
                    ("password", PASSWORD), ("password", "other password"),
                    ("scope", "a"), ("username", "someone_else")):
            fields = base + [dup]
            if dup[0] == "scope":
                fields = base + [dup, dup]
            r = self.client().oauth("/v1/oauth/token", fields)
            self.assertOAuthError(r, 400, "invalid_request", "duplicate %s" % dup[0])
        _, g, _ = self.grant(name)
        rt = g["refresh_token"]
        r = self.client().oauth("/v1/oauth/token", [("grant_type", "refresh_token"),
                                                    ("refresh_token", rt),
                                                    ("refresh_token", rt)])
        self.assertOAuthError(r, 400, "invalid_request", "duplicate refresh_token")
        # JSON with a duplicate key.
        raw = ('{"grant_type":"password","username":"%s","password":"%s","password":"x"}'
               % (name, PASSWORD))
        r = self.client().request("POST", "/v1/oauth/token", raw=raw, cookies=False)
        self.assertOAuthError(r, 400, "invalid_request", "JSON duplicate key")
        # The rejected duplicate did not consume the refresh token.
        self.refresh(rt, msg="a refused request changes nothing")

    def test_bad_bodies(self):
        name, _ = self.new_user()
        c = self.client()
        for raw in ("{", "[]", '"x"', "null", '{"grant_type":1}',
                    '{"grant_type":"password","username":["%s"],"password":"%s"}'
                    % (name, PASSWORD),
                    '{"grant_type":"password","username":"%s","password":null}' % name):
            r = c.request("POST", "/v1/oauth/token", raw=raw, cookies=False)
            self.assertNot5xx(r, raw)
            self.assertOAuthError(r, 400, "invalid_request", raw)
        for raw in ("grant_type=password&username=%ZZ&password=x",
                    "grant_type=password&&&username", "=&=", "%00=%00"):
            r = c.request("POST", "/v1/oauth/token", raw=raw, content_type=FORM,
                          cookies=False)
            self.assertNot5xx(r, raw)
            self.assertStatus(r, 400, raw)
        r = c.request("POST", "/v1/oauth/token", raw="grant_type=password", content_type="text/plain",
                      cookies=False)
        self.assertNot5xx(r)
        self.assertStatus(r, (400, 415), "unsupported content type")
        r = c.request("POST", "/v1/oauth/token",
                      raw="grant_type=password&username=" + "a" * 70000, content_type=FORM,
                      cookies=False)
        self.assertStatus(r, 413, "bodies over 64 KiB")

    def test_method_not_allowed(self):
        r = self.client().get("/v1/oauth/token")
        self.assertStatus(r, 405)
        self.assertIn("POST", r.header("Allow") or "", r.describe())


class PasswordGrantRateLimitTest(TokenTestCase):
    SERVER_ENV = {"TESSERA_SECURITY_LOGIN_MAX_FAILURES": "3",
                  "TESSERA_SECURITY_LOGIN_WINDOW": "15m"}

    # Failures count per username AND per client IP: each test uses its own
    # 127.0.0.x so that one test's failures do not limit the other's.

    def test_failures_then_429(self):
        name, _ = self.new_user()
        c = self.client(source_ip="127.0.0.41")
        for i in range(3):
            r = c.password_grant(name, "wrong password %d" % i)
            self.assertOAuthError(r, 400, "invalid_grant", "failure %d of 3" % (i + 1))
        r = c.password_grant(name, "wrong again!")
        self.assertStatus(r, 429)
        self.assertCommonHeaders(r)
        ra = r.header("Retry-After")
        self.assertIsNotNone(ra, "429 needs Retry-After\n" + r.describe())
        self.assertRegex(ra, r"^[0-9]+$")
        self.assertTrue(1 <= int(ra) <= 15 * 60, ra)
        self.assertIsInstance(r.json, dict, "a JSON error body\n" + r.describe())
        # The right password does not get through either, nor via the cookie login
        # (one limiter for both doors).
        r = c.password_grant(name)
        self.assertStatus(r, 429, "right password while limited")
        self.assertNotIn("access_token", r.json or {})
        r = self.client(source_ip="127.0.0.43").login(name)
        self.assertProblem(r, 429, "rate_limited", "cookie login of the limited username")

    def test_cookie_failures_limit_the_grant(self):
        name, _ = self.new_user()
        for i in range(3):
            self.assertProblem(self.client(source_ip="127.0.0.42").login(
                name, "wrong password %d" % i), 401, "invalid_credentials")
        r = self.client(source_ip="127.0.0.44").password_grant(name)
        self.assertStatus(r, 429, "password grant after 3 failed cookie logins")
        self.assertIsNotNone(r.header("Retry-After"))


class GrantSessionsTest(TokenTestCase):
    """A password grant opens a session of kind "refresh" (the family)."""

    def test_listed_for_bearer_and_cookie(self):
        name, uid = self.new_user()
        _, g, c = self.grant(name)
        sid = c["sid"]
        # With the bearer access token itself.
        ss = self.sessions_of(bearer=g["access_token"])
        mine = [s for s in ss if s["id"] == sid]
        self.assertEqual(len(mine), 1, ss)
        s = mine[0]
        self.assertEqual(s["kind"], "refresh", s)
        self.assertIs(s["current"], True, "the bearer's own family is current: %r" % s)
        for k in ("created_at", "last_seen_at", "expires_at", "ip", "user_agent"):
            self.assertIn(k, s)
        self.assertEqual(s["ip"], "127.0.0.1")
        # 30 d absolute lifetime by default.
        self.assertEqual(s["expires_at"] - s["created_at"], 30 * 86400, s)
        # With a cookie session of the same user: both kinds, the cookie current.
        cc, login = self.logged_in(username=name)
        ss = self.sessions_of(cc)
        kinds = {s["id"]: (s["kind"], s["current"]) for s in ss}
        self.assertEqual(kinds.get(sid), ("refresh", False), ss)
        self.assertEqual(kinds.get(login["session"]["id"]), ("cookie", True), ss)
        # And the bearer sees the cookie session as not current.
        ss = self.sessions_of(bearer=g["access_token"])
        kinds = {s["id"]: (s["kind"], s["current"]) for s in ss}
        self.assertEqual(kinds.get(login["session"]["id"]), ("cookie", False), ss)
        self.assertEqual(kinds.get(sid), ("refresh", True), ss)
        # No secret in the listing.
        body = self.client().get("/v1/sessions", bearer=g["access_token"], cookies=False).body
        self.assertNotIn(g["refresh_token"].encode(), body)

    def test_revoked_by_cookie_delete(self):
        name, _ = self.new_user()
        _, g, c = self.grant(name)
        self.assertBearerOk(g["access_token"])
        cc, _ = self.logged_in(username=name)
        r = cc.delete("/v1/sessions/" + c["sid"], csrf=cc.csrf)
        self.assertStatus(r, 204)
        self.assertBearerRefused(g["access_token"], msg="access token of a deleted family")
        r = self.client().refresh_grant(g["refresh_token"])
        self.assertOAuthError(r, 400, "invalid_grant", "refresh token of a deleted family")
        self.assertNotIn(c["sid"], [s["id"] for s in self.sessions_of(cc)])
        self.assertSessionAlive(cc.session_cookie)

    def test_revoked_by_bearer_delete_of_itself(self):
        name, _ = self.new_user()
        _, g, c = self.grant(name)
        r = self.client().delete("/v1/sessions/" + c["sid"], bearer=g["access_token"],
                                 cookies=False)
        self.assertStatus(r, 204, "a bearer needs no CSRF token")
        self.assertBearerRefused(g["access_token"])
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant")

    def test_other_users_family_404(self):
        _, g, c = self.grant()
        other, _ = self.logged_in()
        r = other.delete("/v1/sessions/" + c["sid"], csrf=other.csrf)
        self.assertProblem(r, 404)
        _, g2, _ = self.grant()
        r = self.client().delete("/v1/sessions/" + c["sid"], bearer=g2["access_token"],
                                 cookies=False)
        self.assertProblem(r, 404)
        self.assertBearerOk(g["access_token"])
        self.refresh(g["refresh_token"])

    def test_sessions_without_credential(self):
        r = self.client().get("/v1/sessions", bearer="not-a-token", cookies=False)
        self.assertProblem(r, 401)


class RefreshGraceTest(TokenTestCase):
    """Rotation within the default 10 s reuse grace."""

    def test_new_refresh_token_each_use(self):
        name, uid = self.new_user()
        _, g0, c0 = self.grant(name)
        seen = {g0["refresh_token"]}
        jtis = {c0["jti"]}
        rt = g0["refresh_token"]
        for i in range(4):
            r = self.client().refresh_grant(rt)
            b, _, c = self.assertGrant(r, uid)
            self.assertNotIn(b["refresh_token"], seen, "rotation %d reused a token" % i)
            self.assertEqual(c["sid"], c0["sid"], "the family keeps its sid")
            self.assertNotIn(c["jti"], jtis)
            seen.add(b["refresh_token"])
            jtis.add(c["jti"])
            self.assertBearerOk(b["access_token"])
            rt = b["refresh_token"]
        # JSON body works for the refresh grant too.
        r = self.client().refresh_grant(rt, as_json=True)
        self.assertGrant(r, uid)

    def test_spent_within_grace_returns_identical_successor(self):
        name, uid = self.new_user()
        _, g0, c0 = self.grant(name)
        rt0 = g0["refresh_token"]
        tab1 = self.client().refresh_grant(rt0)
        b1, _, c1 = self.assertGrant(tab1, uid)
        # A second tab presents the same (now spent) token within the grace.
        tab2 = self.client().refresh_grant(rt0)
        b2, _, c2 = self.assertGrant(tab2, uid)
        self.assertEqual(b2["refresh_token"], b1["refresh_token"],
                         "within the grace: the IDENTICAL successor")
        self.assertNotEqual(b2["access_token"], b1["access_token"], "a fresh access token")
        self.assertNotEqual(c2["jti"], c1["jti"])
        self.assertEqual(c2["sid"], c0["sid"])
        self.assertEqual(c1["sid"], c0["sid"])
        # A third time still the same; the family lives on.
        b3 = self.refresh(rt0)
        self.assertEqual(b3["refresh_token"], b1["refresh_token"])
        for tok in (g0["access_token"], b1["access_token"], b2["access_token"],
                    b3["access_token"]):
            self.assertBearerOk(tok)
        b4 = self.refresh(b1["refresh_token"], msg="the successor works")
        self.assertNotEqual(b4["refresh_token"], b1["refresh_token"])

    def test_older_spent_token_is_reuse_even_within_grace(self):
        # Only the LATEST spent token gets its successor back: rt0 -> rt1 -> rt2,
        # then rt0 again is reuse, the family dies.
        name, _ = self.new_user()
        _, g0, _ = self.grant(name)
        b1 = self.refresh(g0["refresh_token"])
        b2 = self.refresh(b1["refresh_token"])
        r = self.client().refresh_grant(g0["refresh_token"])
        self.assertOAuthError(r, 400, "invalid_grant", "an older spent refresh token")
        self.assertOAuthError(self.client().refresh_grant(b2["refresh_token"]), 400,
                              "invalid_grant", "the family's current token after reuse")
        for tok in (g0["access_token"], b1["access_token"], b2["access_token"]):
            self.assertBearerRefused(tok, msg="access token of a family killed by reuse")

    def test_garbage_and_unknown_refresh_tokens(self):
        for tok in ("garbage", "A" * 43, "A" * 42, "A" * 44, "!" * 43, "", "a.b.c",
                    "x" * 5000):
            r = self.client().refresh_grant(tok)
            self.assertNot5xx(r, tok[:20])
            self.assertOAuthError(r, 400, ("invalid_grant", "invalid_request"), tok[:20])
        # An access token is not a refresh token, nor is a cookie.
        _, g, _ = self.grant()
        self.assertOAuthError(self.client().refresh_grant(g["access_token"]), 400,
                              ("invalid_grant", "invalid_request"))
        c, _ = self.logged_in()
        self.assertOAuthError(self.client().refresh_grant(c.session_cookie), 400,
                              "invalid_grant", "a cookie session secret as refresh token")
        self.assertSessionAlive(c.session_cookie)

    def test_concurrent_refresh_one_successor(self):
        name, uid = self.new_user()
        _, g0, c0 = self.grant(name)
        rt0 = g0["refresh_token"]
        n = 12
        barrier = threading.Barrier(n)
        results = [None] * n

        def worker(i):
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
            try:
                results[i] = self.client().refresh_grant(rt0)
            except Exception as e:  # reported below
                results[i] = e

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        successors = set()
        jtis = set()
        for i, r in enumerate(results):
            self.assertNotIsInstance(r, Exception, "thread %d: %r" % (i, r))
            self.assertIsNotNone(r, "thread %d did not finish" % i)
            b, _, c = self.assertGrant(r, uid)
            successors.add(b["refresh_token"])
            jtis.add(c["jti"])
            self.assertEqual(c["sid"], c0["sid"])
        self.assertEqual(len(successors), 1,
                         "%d racing refreshes of one token gave %d different successors"
                         % (n, len(successors)))
        self.assertEqual(len(jtis), n, "every response carries its own access token")
        rt1 = successors.pop()
        b = self.refresh(rt1, msg="the one successor works")
        self.refresh(b["refresh_token"])
        self.assertEqual(len([s for s in self.sessions_of(bearer=b["access_token"])
                              if s["kind"] == "refresh"]), 1, "still one family")


    def test_revoke_racing_refreshes_leaves_family_revoked(self):
        # SPEC: "a revoke racing a refresh leaves the family revoked".
        name, _ = self.new_user()
        _, g0, c0 = self.grant(name)
        rt0 = g0["refresh_token"]
        n = 8
        barrier = threading.Barrier(n + 1)
        results = [None] * (n + 1)

        def worker(i):
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
            try:
                if i == n:
                    results[i] = self.client().oauth_revoke(rt0, "refresh_token")
                else:
                    results[i] = self.client().refresh_grant(rt0)
            except Exception as e:  # reported below
                results[i] = e

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n + 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for i, r in enumerate(results):
            self.assertNotIsInstance(r, Exception, "thread %d: %r" % (i, r))
            self.assertIsNotNone(r, "thread %d did not finish" % i)
            self.assertNot5xx(r)
        self.assertStatus(results[n], 200, "the revoke")
        successors = set()
        access = [g0["access_token"]]
        for r in results[:n]:
            if r.status == 200:
                successors.add(r.json["refresh_token"])
                access.append(r.json["access_token"])
            else:
                self.assertOAuthError(r, 400, "invalid_grant", "a refresh that lost the race")
        self.assertLessEqual(len(successors), 1, "one successor at most")
        # Whatever the interleaving, the family is revoked now.
        for rt in [rt0] + list(successors):
            self.assertOAuthError(self.client().refresh_grant(rt), 400, "invalid_grant",
                                  "refresh after the revoke won or lost the race")
        for tok in access:
            self.assertBearerRefused(tok, msg="access token of the revoked family")
        r = self.client().introspect(rt0)
        self.assertEqual(r.json, {"active": False}, r.describe())


class RefreshReuseTest(TokenTestCase):
    """After the grace a spent refresh token is reuse: the family dies."""
    SERVER_ENV = {"TESSERA_TOKENS_REUSE_GRACE": "1s"}

    def test_reuse_after_grace_kills_family(self):
        name, _ = self.new_user()
        _, g0, c0 = self.grant(name)
        b1 = self.refresh(g0["refresh_token"])
        b2 = self.refresh(g0["refresh_token"], msg="within the 1 s grace")
        self.assertEqual(b2["refresh_token"], b1["refresh_token"])
        cc, _ = self.logged_in(username=name)
        self.assertIn(c0["sid"], [s["id"] for s in self.sessions_of(cc)])
        time.sleep(2.2)
        r = self.client().refresh_grant(g0["refresh_token"])
        self.assertOAuthError(r, 400, "invalid_grant", "spent token after the grace")
        # The whole family is dead: its current refresh token too...
        r = self.client().refresh_grant(b1["refresh_token"])
        self.assertOAuthError(r, 400, "invalid_grant", "current token of a reused family")
        # ...and every access token of its sid, at once (revocation-list default).
        for tok in (g0["access_token"], b1["access_token"], b2["access_token"]):
            self.assertBearerRefused(tok, msg="access token of a reused family")
        self.assertNotIn(c0["sid"], [s["id"] for s in self.sessions_of(cc)])
        r = self.client().introspect(b1["refresh_token"])
        self.assertStatus(r, 200)
        self.assertIs(r.json.get("active"), False, r.describe())
        # Other families and the cookie session of the user are untouched.
        self.assertSessionAlive(cc.session_cookie)

    def test_reuse_of_current_token_is_fine(self):
        # The current (unspent) token may be used at any time; a token spent
        # after the grace is what counts as reuse.
        name, _ = self.new_user()
        _, g0, _ = self.grant(name)
        time.sleep(1.5)
        b1 = self.refresh(g0["refresh_token"], msg="first use after the grace length")
        self.refresh(b1["refresh_token"])


class RefreshExpiryTest(TokenTestCase):
    SERVER_ENV = {"TESSERA_TOKENS_REFRESH_TTL": "2s"}

    def test_expired_family(self):
        name, _ = self.new_user()
        _, g, _ = self.grant(name)
        r = self.client().introspect(g["refresh_token"])
        self.assertIs(r.json.get("active"), True, r.describe())
        time.sleep(3)
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant", "refresh token of an expired family")
        r = self.client().introspect(g["refresh_token"])
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"active": False}, r.describe())


class RefreshIdleTest(TokenTestCase):
    SERVER_ENV = {"TESSERA_TOKENS_REFRESH_IDLE_TTL": "2s", "TESSERA_TOKENS_REFRESH_TTL": "1h"}

    def test_idle_family_expires(self):
        name, _ = self.new_user()
        _, g, _ = self.grant(name)
        b = self.refresh(g["refresh_token"], msg="used at once")
        time.sleep(3.2)
        self.assertOAuthError(self.client().refresh_grant(b["refresh_token"]), 400,
                              "invalid_grant", "a family idle past refresh_idle_ttl")


class FamilyCapTest(TokenTestCase):
    """Refresh families count in the per-user session cap; eviction revokes."""
    SERVER_ENV = {"TESSERA_SESSION_MAX_PER_USER": "2"}

    def test_oldest_family_evicted(self):
        name, _ = self.new_user()
        _, g1, c1 = self.grant(name)
        _, g2, _ = self.grant(name)
        self.assertBearerOk(g1["access_token"])
        _, g3, _ = self.grant(name)
        self.assertOAuthError(self.client().refresh_grant(g1["refresh_token"]), 400,
                              "invalid_grant", "the evicted (oldest) family")
        self.assertBearerRefused(g1["access_token"], msg="access token of an evicted family")
        for g in (g2, g3):
            self.assertBearerOk(g["access_token"])
            self.refresh(g["refresh_token"])
        ids = [s["id"] for s in self.sessions_of(bearer=g3["access_token"])]
        self.assertEqual(len(ids), 2, ids)
        self.assertNotIn(c1["sid"], ids)


class SessionTokenTest(TokenTestCase):
    """Hybrid: POST /v1/session/token turns a cookie session into access tokens."""

    def test_token_for_cookie_session(self):
        name, uid = self.admin_user(["ops"])
        c, login = self.logged_in(username=name)
        r = c.session_token()
        b, h, cl = self.assertGrant(r, uid, refresh=False)
        self.assertEqual(cl["sid"], login["session"]["id"], "sid is the cookie session's id")
        self.assertEqual(cl["roles"], ["ops"])
        r = self.assertBearerOk(b["access_token"])
        self.assertEqual(r.header("X-Auth-Session"), login["session"]["id"])
        self.assertEqual(r.header("X-Auth-Subject"), uid)
        # Each call a new token of the same session.
        tok2 = self.session_access(c)
        self.assertNotEqual(jti_of(tok2), cl["jti"])
        self.assertEqual(sid_of(tok2), cl["sid"])
        # The session is still a cookie session, and no refresh family appeared.
        ss = self.sessions_of(c)
        self.assertEqual([s["kind"] for s in ss], ["cookie"], ss)

    def test_csrf_required(self):
        c, _ = self.logged_in()
        r = c.session_token(csrf="")
        self.assertProblem(r, 403, "csrf", "no X-CSRF-Token")
        r = c.post("/v1/session/token")
        self.assertProblem(r, 403, "csrf", "no X-CSRF-Token header at all")
        r = c.session_token(csrf="A" * 43)
        self.assertProblem(r, 403, "csrf", "wrong X-CSRF-Token")
        r = c.session_token(origin=EVIL)
        self.assertProblem(r, 403, "csrf", "foreign Origin")
        self.assertNotIn("access_token", r.json)

    def test_needs_cookie(self):
        r = self.client().post("/v1/session/token", csrf="x")
        self.assertProblem(r, 401, "unauthenticated")
        _, g, _ = self.grant()
        r = self.client().post("/v1/session/token", bearer=g["access_token"], cookies=False)
        self.assertStatus(r, (401, 403), "a bearer token does not mint more tokens here")
        self.assertNot5xx(r)

    def test_refused_after_logout(self):
        c, _ = self.logged_in()
        tok = self.session_access(c)
        self.assertBearerOk(tok)
        self.assertStatus(c.logout(), 204)
        self.assertBearerRefused(tok, msg="token of a logged-out cookie session")
        r = self.client().introspect(tok)
        self.assertEqual(r.json, {"active": False}, r.describe())


class OAuthRevokeTest(TokenTestCase):
    """RFC 7009."""

    def test_unknown_and_garbage_200(self):
        for tok in ("garbage", "A" * 43, "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 5000,
                    "\u00e9t\u00e9"):
            for hint in (None, "access_token", "refresh_token"):
                r = self.client().oauth_revoke(tok, hint)
                self.assertStatus(r, 200, "revoke %r hint %r" % (tok[:20], hint))
                self.assertCommonHeaders(r)

    def test_missing_token_400(self):
        r = self.client().oauth("/v1/oauth/revoke", [])
        self.assertOAuthError(r, 400, "invalid_request", "no token")
        r = self.client().oauth("/v1/oauth/revoke", [("token_type_hint", "access_token")])
        self.assertOAuthError(r, 400, "invalid_request", "hint only")
        r = self.client().oauth("/v1/oauth/revoke", {}, as_json=True)
        self.assertOAuthError(r, 400, "invalid_request", "JSON without token")
        r = self.client().oauth("/v1/oauth/revoke", [("token", "a"), ("token", "b")])
        self.assertOAuthError(r, 400, "invalid_request", "duplicate token")

    def test_revoke_refresh_token_ends_family(self):
        name, _ = self.new_user()
        _, g, c = self.grant(name)
        _, other, _ = self.grant(name)
        self.assertStatus(self.client().oauth_revoke(g["refresh_token"], "refresh_token"), 200)
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant")
        self.assertBearerRefused(g["access_token"])
        # Only that family: "revoke ends the current session only".
        self.assertBearerOk(other["access_token"])
        self.refresh(other["refresh_token"])
        # Twice is fine.
        self.assertStatus(self.client().oauth_revoke(g["refresh_token"]), 200)

    def test_revoke_with_wrong_hint_still_works(self):
        _, g, _ = self.grant()
        self.assertStatus(self.client().oauth_revoke(g["refresh_token"], "access_token"), 200)
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant", "hint only orders the attempts")
        _, g, _ = self.grant()
        self.assertStatus(self.client().oauth_revoke(g["access_token"], "refresh_token"), 200)
        self.assertBearerRefused(g["access_token"])

    def test_revoke_spent_refresh_token_ends_family(self):
        _, g, _ = self.grant()
        b1 = self.refresh(g["refresh_token"])
        self.assertStatus(self.client().oauth_revoke(g["refresh_token"]), 200)
        self.assertOAuthError(self.client().refresh_grant(b1["refresh_token"]), 400,
                              "invalid_grant", "family of a revoked spent token")
        self.assertBearerRefused(b1["access_token"])

    def test_revoke_access_token_kills_only_its_jti(self):
        _, g, c = self.grant()
        b1 = self.refresh(g["refresh_token"])
        self.assertEqual(sid_of(b1["access_token"]), c["sid"])
        r = self.client().oauth_revoke(g["access_token"], "access_token", as_json=True)
        self.assertStatus(r, 200)
        self.assertBearerRefused(g["access_token"], msg="the revoked access token")
        self.assertBearerOk(b1["access_token"], msg="another access token of the same session")
        self.refresh(b1["refresh_token"], msg="the family lives on")

    def test_revoke_needs_no_auth_and_no_csrf(self):
        # A cookie-holding browser posting revoke without CSRF cannot do harm
        # beyond the token it names; the endpoint takes the token as credential.
        _, g, _ = self.grant()
        c, _ = self.logged_in()
        r = c.form("/v1/oauth/revoke", [("token", g["refresh_token"])])
        self.assertStatus(r, 200)
        self.assertSessionAlive(c.session_cookie, msg="revoke of a token leaves the cookie")


class IntrospectTest(TokenTestCase):
    """RFC 7662 behind the admin key."""

    def test_needs_admin_key(self):
        name, _ = self.new_user()
        _, g, _ = self.grant(name)
        c, _ = self.logged_in(username=name)
        for what, kw in (("no key", {"key": ""}),
                         ("wrong key", {"key": "wrong"}),
                         ("own access token", {"key": g["access_token"]}),
                         ("own refresh token", {"key": g["refresh_token"]})):
            r = self.client().introspect(g["access_token"], **kw)
            self.assertStatus(r, 401, what)
            self.assertNotIn("active", r.json or {}, what)
        r = c.form("/v1/oauth/introspect", [("token", g["access_token"])], csrf=c.csrf)
        self.assertStatus(r, 401, "a cookie session")

    def test_live_access_token(self):
        name, uid = self.new_user()
        _, g, c = self.grant(name, scope="read")
        r = self.client().introspect(g["access_token"])
        self.assertStatus(r, 200)
        self.assertNoStore(r)
        b = r.json
        self.assertIs(b.get("active"), True, r.describe())
        self.assertEqual(b.get("token_type"), "access_token")
        self.assertEqual(b.get("sub"), uid)
        self.assertEqual(b.get("sid"), c["sid"])
        self.assertEqual(b.get("exp"), c["exp"])
        self.assertEqual(b.get("iat"), c["iat"])
        self.assertEqual(b.get("scope"), "read")
        r = self.client().introspect(g["access_token"], as_json=True)
        self.assertIs(r.json.get("active"), True, "JSON body")

    def test_live_refresh_token(self):
        name, uid = self.new_user()
        _, g, c = self.grant(name, scope="read write")
        r = self.client().introspect(g["refresh_token"])
        self.assertStatus(r, 200)
        b = r.json
        self.assertIs(b.get("active"), True, r.describe())
        self.assertEqual(b.get("token_type"), "refresh_token")
        self.assertEqual(b.get("sub"), uid)
        self.assertEqual(b.get("sid"), c["sid"])
        self.assertEqual(b.get("scope"), "read write")
        self.assertIsInstance(b.get("exp"), int)
        self.assertIsInstance(b.get("iat"), int)
        self.assertGreater(b["exp"], time.time() + 86400, "a refresh family lives days")
        # Introspection does not rotate or spend it.
        self.refresh(g["refresh_token"])

    def test_inactive(self):
        _, g, _ = self.grant()
        b1 = self.refresh(g["refresh_token"])
        r = self.client().introspect(g["refresh_token"])
        self.assertEqual(r.json, {"active": False}, "a spent refresh token\n" + r.describe())
        # Revoked access token (jti), revoked family, garbage.
        self.assertStatus(self.client().oauth_revoke(b1["access_token"]), 200)
        r = self.client().introspect(b1["access_token"])
        self.assertEqual(r.json, {"active": False}, r.describe())
        self.assertStatus(self.client().oauth_revoke(b1["refresh_token"]), 200)
        for tok in (g["access_token"], b1["refresh_token"], "garbage", "A" * 43, "a.b.c"):
            r = self.client().introspect(tok)
            self.assertStatus(r, 200)
            self.assertEqual(r.json, {"active": False}, "%s\n%s" % (tok[:20], r.describe()))

    def test_missing_token(self):
        r = self.client().oauth("/v1/oauth/introspect", [], bearer=self.server.admin_key)
        self.assertOAuthError(r, 400, "invalid_request")


class DisabledUserTest(TokenTestCase):

    def test_disabled_user(self):
        name, uid = self.new_user()
        _, g, _ = self.grant(name)
        self.assertBearerOk(g["access_token"])
        admin = Client(self.server)
        self.assertStatus(admin.admin("PATCH", "/v1/admin/users/" + uid, {"disabled": True}), 200)
        self.assertBearerRefused(g["access_token"], msg="disabled user's access token")
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant", "refresh for a disabled user")
        self.assertOAuthError(self.client().password_grant(name), 400, "invalid_grant",
                              "password grant for a disabled user")
        # Re-enabling does not bring the revoked family back.
        self.assertStatus(admin.admin("PATCH", "/v1/admin/users/" + uid, {"disabled": False}),
                          200)
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant", "family revoked by the disable")
        self.assertBearerRefused(g["access_token"])
        self.grant(name)


# ---- every revocation path, in every verify.bearer mode ----

class RevocationMatrix:
    """Mixed into one class per verify.bearer mode. ACCEPT_REVOKED: stateless
    mode checks signature and claims only, so a token issued before a
    revocation is still accepted until it expires (SPEC's documented trade-off);
    the other two modes refuse it right after the revoking request returns."""

    ACCEPT_REVOKED = False

    def assertAfterRevocation(self, token, what):
        if self.ACCEPT_REVOKED:
            self.assertBearerOk(token, msg="stateless mode still accepts it: " + what)
        else:
            self.assertBearerRefused(token, msg="refused at once: " + what)

    def test_logout(self):
        c, _ = self.logged_in()
        tok = self.session_access(c)
        self.assertBearerOk(tok)
        self.assertStatus(c.logout(), 204)
        self.assertAfterRevocation(tok, "logout")

    def test_delete_session_by_id(self):
        name, _ = self.new_user()
        _, g, c = self.grant(name)
        self.assertBearerOk(g["access_token"])
        cc, _ = self.logged_in(username=name)
        self.assertStatus(cc.delete("/v1/sessions/" + c["sid"], csrf=cc.csrf), 204)
        self.assertAfterRevocation(g["access_token"], "DELETE /v1/sessions/{id}")
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant")

    def test_delete_other_sessions(self):
        name, _ = self.new_user()
        _, keep, _ = self.grant(name)
        _, gone, _ = self.grant(name)
        cc, _ = self.logged_in(username=name)
        cookie_tok = self.session_access(cc)
        r = self.client().delete("/v1/sessions", bearer=keep["access_token"], cookies=False)
        self.assertStatus(r, 204)
        self.assertAfterRevocation(gone["access_token"], "DELETE /v1/sessions (other family)")
        self.assertAfterRevocation(cookie_tok, "DELETE /v1/sessions (cookie session)")
        self.assertBearerOk(keep["access_token"], msg="the current family stays")
        self.refresh(keep["refresh_token"])
        self.assertOAuthError(self.client().refresh_grant(gone["refresh_token"]), 400,
                              "invalid_grant")
        self.assertSessionDead(cc.session_cookie)

    def test_rfc7009_refresh_token(self):
        _, g, _ = self.grant()
        self.assertBearerOk(g["access_token"])
        self.assertStatus(self.client().oauth_revoke(g["refresh_token"]), 200)
        self.assertAfterRevocation(g["access_token"], "RFC 7009 revoke of the refresh token")
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant")

    def test_rfc7009_access_token(self):
        _, g, _ = self.grant()
        b1 = self.refresh(g["refresh_token"])
        self.assertBearerOk(g["access_token"])
        self.assertStatus(self.client().oauth_revoke(g["access_token"]), 200)
        self.assertAfterRevocation(g["access_token"], "RFC 7009 revoke of the access token")
        self.assertBearerOk(b1["access_token"], msg="another jti of the same session")

    def test_refresh_reuse(self):
        _, g, _ = self.grant()
        b1 = self.refresh(g["refresh_token"])
        self.assertBearerOk(g["access_token"])
        # Past the 1 s grace: times are whole seconds, so wait over 2 s.
        time.sleep(2.2)
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant")
        self.assertAfterRevocation(g["access_token"], "refresh reuse (first token)")
        self.assertAfterRevocation(b1["access_token"], "refresh reuse (latest token)")
        self.assertOAuthError(self.client().refresh_grant(b1["refresh_token"]), 400,
                              "invalid_grant")

    def test_admin_revoke(self):
        name, uid = self.new_user()
        _, g, _ = self.grant(name)
        cc, _ = self.logged_in(username=name)
        ct = self.session_access(cc)
        r = Client(self.server).admin("POST", "/v1/admin/users/%s/revoke" % uid)
        self.assertStatus(r, 204)
        self.assertAfterRevocation(g["access_token"], "admin revoke (family)")
        self.assertAfterRevocation(ct, "admin revoke (cookie session)")
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant")
        self.grant(name)  # the user may log in again

    def test_admin_disable(self):
        name, uid = self.new_user()
        _, g, _ = self.grant(name)
        self.assertBearerOk(g["access_token"])
        r = Client(self.server).admin("PATCH", "/v1/admin/users/" + uid, {"disabled": True})
        self.assertStatus(r, 200)
        self.assertAfterRevocation(g["access_token"], "admin disable")
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant")

    def test_password_change(self):
        name, _ = self.new_user()
        _, g, _ = self.grant(name)
        cc, _ = self.logged_in(username=name)
        before = self.session_access(cc)
        r = cc.post("/v1/users/me/password",
                    {"current_password": PASSWORD, "new_password": "a brand new password"},
                    csrf=cc.csrf)
        self.assertStatus(r, 204)
        self.assertAfterRevocation(g["access_token"], "password change (other family)")
        self.assertAfterRevocation(before, "password change (the renewed session's old id)")
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant")
        cc.csrf = cc.session().json["csrf_token"]
        after = cc.session_token()
        self.assertStatus(after, 200)
        self.assertBearerOk(after.json["access_token"], msg="token of the renewed session")

    def test_admin_delete(self):
        name, uid = self.new_user()
        _, g, _ = self.grant(name)
        self.assertBearerOk(g["access_token"])
        r = Client(self.server).admin("DELETE", "/v1/admin/users/" + uid)
        self.assertStatus(r, 204)
        self.assertAfterRevocation(g["access_token"], "admin delete")
        self.assertOAuthError(self.client().refresh_grant(g["refresh_token"]), 400,
                              "invalid_grant")


class RevocationListModeTest(RevocationMatrix, TokenTestCase):
    SERVER_ENV = {"TESSERA_VERIFY_BEARER": "revocation-list",
                  "TESSERA_TOKENS_REUSE_GRACE": "1s"}


class StatefulModeTest(RevocationMatrix, TokenTestCase):
    SERVER_ENV = {"TESSERA_VERIFY_BEARER": "stateful",
                  "TESSERA_TOKENS_REUSE_GRACE": "1s"}

    def test_roles_from_store(self):
        # Stateful mode reads the user: a role change shows at once.
        name, uid = self.admin_user(["ops"])
        _, g, _ = self.grant(name)
        r = self.assertBearerOk(g["access_token"])
        self.assertEqual(r.header("X-Auth-Roles"), "ops")
        self.assertStatus(Client(self.server).admin("PATCH", "/v1/admin/users/" + uid,
                                                    {"roles": ["admin"]}), 200)
        r = self.assertBearerOk(g["access_token"])
        self.assertEqual(r.header("X-Auth-Roles"), "admin", "stateful: roles from the store")


class StatelessModeTest(RevocationMatrix, TokenTestCase):
    SERVER_ENV = {"TESSERA_VERIFY_BEARER": "stateless",
                  "TESSERA_TOKENS_REUSE_GRACE": "1s"}
    ACCEPT_REVOKED = True


class AccessTtlTest(TokenTestCase):
    SERVER_ENV = {"TESSERA_TOKENS_ACCESS_TTL": "2m"}

    def test_configured_lifetime(self):
        name, uid = self.new_user()
        r = self.client().password_grant(name)
        b, _, _ = self.assertGrant(r, uid, ttl=120)
        r = self.client().refresh_grant(b["refresh_token"])
        self.assertGrant(r, uid, ttl=120)
        c, _ = self.logged_in(username=name)
        self.assertGrant(c.session_token(), uid, ttl=120, refresh=False)
