"""SPEC section 4, Session (cookie) mode: login, the current session, logout,
the session list, revoking one or all others, CSRF, fixation, the per-user cap,
login rate limiting, idle and absolute expiry."""

import re
import time

from harness import PASSWORD, Client, ServerTestCase, unique_name

EVIL = "https://evil.example"


class SessionTest(ServerTestCase):

    # ---- login ----

    def test_login_shape(self):
        name, uid = self.new_user()
        c = self.client()
        before = int(time.time())
        r = c.login(name)
        after = int(time.time())
        self.assertStatus(r, 200)
        self.assertCommonHeaders(r)
        b = r.json
        self.assertIsInstance(b, dict, r.describe())
        self.assertEqual(set(b), {"user", "session", "csrf_token"}, r.describe())
        self.assertEqual(b["user"]["id"], uid)
        self.assertEqual(b["user"]["username"], name)
        self.assertEqual(b["user"]["roles"], [])
        s = b["session"]
        for k in ("id", "created_at", "expires_at", "idle_expires_at"):
            self.assertIn(k, s, r.describe())
        self.assertIsInstance(s["id"], str)
        self.assertTrue(s["id"])
        for k in ("created_at", "expires_at", "idle_expires_at"):
            self.assertIsInstance(s[k], int, "%s must be integer Unix seconds" % k)
        self.assertTrue(before - 5 <= s["created_at"] <= after + 5, r.describe())
        # Defaults: absolute 24 h, idle 30 min.
        self.assertEqual(s["expires_at"] - s["created_at"], 86400, r.describe())
        self.assertEqual(s["idle_expires_at"] - s["created_at"], 1800, r.describe())
        self.assertIsInstance(b["csrf_token"], str)
        self.assertGreaterEqual(len(b["csrf_token"]), 16, "a CSRF token needs entropy")
        # The session id is a handle, not the secret.
        self.assertNotEqual(s["id"], c.session_cookie)
        self.assertNotIn(c.session_cookie, r.body.decode())
        self.assertNotEqual(b["csrf_token"], c.session_cookie)

    def test_login_set_cookie_attributes(self):
        name, _ = self.new_user()
        r = self.client().login(name)
        self.assertStatus(r, 200)
        cookies = r.headers_all("Set-Cookie")
        self.assertEqual(len(cookies), 1, r.describe())
        raw = cookies[0]
        cname, value, attrs = r.set_cookies()[0]
        self.assertEqual(cname, "__Host-tessera", raw)
        # 256 random bits: at least 43 base64url characters, cookie-safe.
        self.assertRegex(value, r"^[A-Za-z0-9_-]{43,}$", raw)
        self.assertEqual(attrs.get("path"), "/", raw)
        self.assertIs(attrs.get("httponly"), True, raw)
        self.assertIs(attrs.get("secure"), True, raw)
        self.assertEqual(attrs.get("samesite"), "Lax", raw)
        # __Host- cookies must not carry Domain; a session cookie has no Expires/Max-Age.
        self.assertEqual(set(attrs), {"path", "httponly", "secure", "samesite"},
                         "exactly Path=/; HttpOnly; Secure; SameSite=Lax: " + raw)

    def test_cookie_values_differ_per_login(self):
        name, _ = self.new_user()
        seen = set()
        for _ in range(3):
            c = self.client()
            self.assertStatus(c.login(name), 200)
            seen.add(c.session_cookie)
        self.assertEqual(len(seen), 3)

    def test_login_and_session_are_no_store(self):
        c, _ = self.logged_in()
        name, _ = self.new_user()
        r = self.client().login(name)
        self.assertNoStore(r)
        self.assertNoStore(c.session())

    def test_invalid_credentials_same_body(self):
        name, _ = self.new_user()
        unknown = self.client().login("nobody_" + unique_name(), PASSWORD)
        wrong = self.client().login(name, "wrong password!")
        self.assertProblem(unknown, 401, "invalid_credentials")
        self.assertProblem(wrong, 401, "invalid_credentials")
        self.assertEqual(unknown.json, wrong.json,
                         "unknown user and wrong password must answer the same body")
        self.assertEqual(unknown.set_cookies(), [])
        self.assertEqual(wrong.set_cookies(), [])
        # Same headers too, but for the ones that naturally vary.
        def shape(r):
            skip = {"date", "content-length"}
            return sorted((k.lower(), v) for k, v in r.header_list if k.lower() not in skip)
        self.assertEqual(shape(unknown), shape(wrong))

    def test_invalid_credentials_malformed_username(self):
        # A username that could never exist is still just invalid credentials (or a 400),
        # never a 5xx.
        for name in ("bad name", "x" * 65, ""):
            r = self.client().login(name, PASSWORD)
            self.assertNot5xx(r, repr(name))
            self.assertStatus(r, (400, 401), repr(name))

    def test_login_fixation_revokes_presented_cookie(self):
        name, _ = self.new_user()
        c = self.client()
        r1 = c.login(name)
        self.assertStatus(r1, 200)
        old = c.session_cookie
        r2 = c.login(name)  # the jar presents the old cookie
        self.assertStatus(r2, 200)
        new = c.session_cookie
        self.assertNotEqual(old, new, "a new session secret must be issued")
        self.assertNotEqual(r1.json["session"]["id"], r2.json["session"]["id"])
        self.assertSessionDead(old, msg="the cookie presented at login must be revoked")
        self.assertSessionAlive(new)
        # The old CSRF token does not fit the new session.
        r = c.logout(csrf=r1.json["csrf_token"])
        if r1.json["csrf_token"] != r2.json["csrf_token"]:
            self.assertProblem(r, 403, "csrf", "old CSRF token with the new cookie")

    def test_login_fixation_across_users(self):
        # A shared browser: user A's cookie is present when B logs in.
        c, _ = self.logged_in()
        old = c.session_cookie
        other, _ = self.new_user()
        self.assertStatus(c.login(other), 200)
        self.assertSessionDead(old)
        r = c.session()
        self.assertStatus(r, 200)
        self.assertEqual(r.json["user"]["username"], other)

    def test_login_foreign_origin(self):
        name, _ = self.new_user()
        for kw, why in (({"origin": EVIL}, "Origin: " + EVIL),
                        ({"origin": "null"}, "Origin: null"),
                        ({"origin": "http://127.0.0.1:1"}, "same host, other port"),
                        ({"sec_fetch_site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
                        ({"sec_fetch_site": "same-site"}, "Sec-Fetch-Site: same-site")):
            c = self.client()
            r = c.login(name, **kw)
            self.assertProblem(r, 403, "csrf", why)
            self.assertEqual(r.set_cookies(), [], why)

    def test_login_same_origin_allowed(self):
        name, _ = self.new_user()
        for kw in ({"origin": self.server.origin}, {"sec_fetch_site": "same-origin"},
                   {"sec_fetch_site": "none"},
                   {"origin": self.server.origin, "sec_fetch_site": "same-origin"}):
            r = self.client().login(name, **kw)
            self.assertStatus(r, 200, repr(kw))

    def test_login_bad_bodies(self):
        for raw in (b"{", b"[]", b"null", b"",
                    b'{"username":"a","username":"b","password":"xxxxxxxx"}',
                    b'{"username":"a","password":["xxxxxxxx"]}',
                    b'{"username":true,"password":"xxxxxxxx"}',
                    b'{"username":"a"}', b'{"password":"xxxxxxxx"}'):
            r = self.client().post("/v1/session/login", raw=raw)
            self.assertNot5xx(r, repr(raw))
            self.assertProblem(r, 400, "invalid_request", repr(raw))
            self.assertEqual(r.set_cookies(), [])

    # ---- GET /v1/session ----

    def test_session_get_shape(self):
        c, login = self.logged_in()
        r = c.session()
        self.assertStatus(r, 200)
        self.assertCommonHeaders(r)
        b = r.json
        self.assertEqual(set(b), {"user", "session", "csrf_token"}, r.describe())
        self.assertEqual(b["user"], login["user"])
        self.assertEqual(b["session"]["id"], login["session"]["id"])
        self.assertEqual(b["session"]["created_at"], login["session"]["created_at"])
        self.assertEqual(b["session"]["expires_at"], login["session"]["expires_at"])
        self.assertGreaterEqual(b["session"]["idle_expires_at"], login["session"]["idle_expires_at"])
        # The token it hands out is one that works.
        self.assertStatus(c.logout(csrf=b["csrf_token"]), 204)

    def test_session_get_unauthenticated(self):
        c = self.client()
        r = c.session()
        self.assertProblem(r, 401, "unauthenticated", "no cookie")
        self.assertCommonHeaders(r)
        name = self.server.cookie_name
        for value in ("x", "A" * 43, "A" * 44, "_" * 43, "%00", "a b", "A" * 5000,
                      "\u00e9".encode("utf-8").decode("latin-1")):
            r = c.session(cookie="%s=%s" % (name, value))
            self.assertNot5xx(r, "cookie %r" % value[:50])
            self.assertProblem(r, 401, "unauthenticated", "cookie %r" % value[:50])
        r = c.session(cookie="other=1; %s=; x=y" % name)
        self.assertProblem(r, 401, "unauthenticated", "empty cookie")

    def test_session_get_revoked_cookie(self):
        c, _ = self.logged_in()
        old = c.session_cookie
        self.assertStatus(c.logout(), 204)
        self.assertSessionDead(old)

    def test_other_cookies_do_not_confuse(self):
        c, _ = self.logged_in()
        hdr = "theme=dark; %s=%s; other=1" % (self.server.cookie_name, c.session_cookie)
        self.assertStatus(c.session(cookie=hdr), 200)

    # ---- logout and CSRF ----

    def test_logout_clears_cookie_and_kills_session(self):
        c, _ = self.logged_in()
        old = c.session_cookie
        r = c.logout(origin=self.server.origin)
        self.assertStatus(r, 204)
        self.assertCommonHeaders(r)
        cleared = [sc for sc in r.set_cookies() if sc[0] == self.server.cookie_name]
        self.assertEqual(len(cleared), 1, "logout must clear the cookie\n" + r.describe())
        _, value, attrs = cleared[0]
        self.assertEqual(attrs.get("max-age"), "0", r.describe())
        self.assertEqual(value, "", "the cleared cookie must not carry the secret")
        self.assertEqual(attrs.get("path"), "/", "clearing needs the same Path")
        self.assertIs(attrs.get("secure"), True, "a __Host- cookie is only replaced with Secure")
        self.assertIsNone(c.session_cookie)
        self.assertSessionDead(old, msg="the logged-out cookie")
        # Logging out again with the dead cookie: 401, not a crash.
        r = self.client().logout(cookie="%s=%s" % (self.server.cookie_name, old), csrf=c.csrf)
        self.assertProblem(r, 401, "unauthenticated")

    def test_logout_needs_csrf_token(self):
        c, _ = self.logged_in()
        for csrf, why in ((None, "no X-CSRF-Token"), ("", "empty X-CSRF-Token"),
                          ("wrong", "wrong X-CSRF-Token"),
                          (c.csrf[:-1] + ("A" if c.csrf[-1] != "A" else "B"), "one char off"),
                          (c.csrf + "x", "token plus a char"),
                          (c.session_cookie, "the cookie value as token")):
            r = c.post("/v1/session/logout", csrf=csrf)
            self.assertProblem(r, 403, "csrf", why)
            self.assertSessionAlive(c.session_cookie, msg="after a refused logout (%s)" % why)

    def test_logout_foreign_origin_with_right_token(self):
        c, _ = self.logged_in()
        for kw, why in (({"origin": EVIL}, "foreign Origin"),
                        ({"origin": "null"}, "Origin: null"),
                        ({"sec_fetch_site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
                        ({"origin": EVIL, "sec_fetch_site": "same-origin"}, "foreign Origin wins")):
            r = c.logout(**kw)
            self.assertProblem(r, 403, "csrf", why)
            self.assertSessionAlive(c.session_cookie, msg=why)
        self.assertStatus(c.logout(sec_fetch_site="same-origin"), 204)

    def test_logout_without_session(self):
        r = self.client().post("/v1/session/logout", csrf="anything")
        self.assertProblem(r, 401, "unauthenticated")

    def test_csrf_token_is_bound_to_its_session(self):
        a, _ = self.logged_in()
        b, _ = self.logged_in()
        r = b.logout(csrf=a.csrf)
        self.assertProblem(r, 403, "csrf", "A's token with B's cookie")
        self.assertSessionAlive(b.session_cookie)

    # ---- the session list ----

    def test_sessions_list_shape_and_current(self):
        name, uid = self.new_user()
        a, la = self.logged_in(username=name, user_agent="agent-A/1.0")
        b, lb = self.logged_in(username=name, user_agent="agent-B/2.0")
        other, lo = self.logged_in()
        r = a.get("/v1/sessions")
        self.assertStatus(r, 200)
        self.assertCommonHeaders(r)
        self.assertEqual(set(r.json), {"sessions"}, r.describe())
        sessions = r.json["sessions"]
        self.assertIsInstance(sessions, list)
        by_id = {s["id"]: s for s in sessions}
        self.assertEqual(set(by_id), {la["session"]["id"], lb["session"]["id"]}, r.describe())
        for s in sessions:
            for k in ("id", "kind", "created_at", "last_seen_at", "expires_at", "ip",
                      "user_agent", "current"):
                self.assertIn(k, s, "field %s\n%s" % (k, r.describe()))
            self.assertEqual(s["kind"], "cookie")
            self.assertIsInstance(s["current"], bool)
            for k in ("created_at", "last_seen_at", "expires_at"):
                self.assertIsInstance(s[k], int)
            self.assertEqual(s["ip"], "127.0.0.1")
        self.assertIs(by_id[la["session"]["id"]]["current"], True)
        self.assertIs(by_id[lb["session"]["id"]]["current"], False)
        self.assertEqual(by_id[la["session"]["id"]]["user_agent"], "agent-A/1.0")
        self.assertEqual(by_id[lb["session"]["id"]]["user_agent"], "agent-B/2.0")
        # From B's point of view, B is current.
        r = b.get("/v1/sessions")
        cur = [s["id"] for s in r.json["sessions"] if s["current"]]
        self.assertEqual(cur, [lb["session"]["id"]])
        self.assertNotIn(lo["session"]["id"], by_id, "another user's session leaked")
        # No secret in the listing.
        self.assertNotIn(a.session_cookie, r.body.decode())
        self.assertNotIn(b.session_cookie, r.body.decode())

    def test_sessions_list_unauthenticated(self):
        self.assertProblem(self.client().get("/v1/sessions"), 401, "unauthenticated")
        r = self.client().get("/v1/sessions", cookie="%s=nope" % self.server.cookie_name)
        self.assertProblem(r, 401, "unauthenticated")

    def test_delete_session_of_another_user_is_404(self):
        a, _ = self.logged_in()
        victim, lv = self.logged_in()
        r = a.delete("/v1/sessions/" + lv["session"]["id"], csrf=a.csrf)
        self.assertProblem(r, 404, msg="another user's session id")
        self.assertSessionAlive(victim.session_cookie, msg="the other user's session")
        self.assertSessionAlive(a.session_cookie)

    def test_delete_unknown_session_is_404(self):
        a, _ = self.logged_in()
        for sid in ("ses_doesnotexist000000000", "x", "A" * 200):
            r = a.delete("/v1/sessions/" + sid, csrf=a.csrf)
            self.assertNot5xx(r, sid)
            self.assertStatus(r, 404, sid)

    def test_delete_own_other_session(self):
        name, _ = self.new_user()
        a, _ = self.logged_in(username=name)
        b, lb = self.logged_in(username=name)
        r = a.delete("/v1/sessions/" + lb["session"]["id"], csrf=a.csrf)
        self.assertStatus(r, 204)
        self.assertSessionDead(b.session_cookie)
        self.assertSessionAlive(a.session_cookie)
        ids = [s["id"] for s in a.get("/v1/sessions").json["sessions"]]
        self.assertNotIn(lb["session"]["id"], ids)
        # Deleting it again: gone.
        r = a.delete("/v1/sessions/" + lb["session"]["id"], csrf=a.csrf)
        self.assertStatus(r, 404)

    def test_delete_own_current_session_by_id(self):
        a, la = self.logged_in()
        old = a.session_cookie
        r = a.delete("/v1/sessions/" + la["session"]["id"], csrf=a.csrf)
        self.assertStatus(r, 204)
        self.assertSessionDead(old)

    def test_delete_session_needs_csrf(self):
        name, _ = self.new_user()
        a, _ = self.logged_in(username=name)
        b, lb = self.logged_in(username=name)
        path = "/v1/sessions/" + lb["session"]["id"]
        for kw, why in (({}, "no token"), ({"csrf": "wrong"}, "wrong token"),
                        ({"csrf": a.csrf, "origin": EVIL}, "foreign Origin")):
            r = a.delete(path, **kw)
            self.assertProblem(r, 403, "csrf", why)
        self.assertSessionAlive(b.session_cookie)

    def test_delete_all_other_sessions(self):
        name, _ = self.new_user()
        a, la = self.logged_in(username=name)
        others = [self.logged_in(username=name)[0] for _ in range(3)]
        bystander, _ = self.logged_in()
        r = a.delete("/v1/sessions", csrf=a.csrf)
        self.assertStatus(r, 204)
        self.assertSessionAlive(a.session_cookie, msg="the current session survives")
        for o in others:
            self.assertSessionDead(o.session_cookie)
        self.assertSessionAlive(bystander.session_cookie, msg="another user's session")
        r = a.get("/v1/sessions")
        self.assertEqual([s["id"] for s in r.json["sessions"]], [la["session"]["id"]])
        self.assertIs(r.json["sessions"][0]["current"], True)

    def test_delete_all_other_sessions_needs_csrf(self):
        name, _ = self.new_user()
        a, _ = self.logged_in(username=name)
        b, _ = self.logged_in(username=name)
        for kw, why in (({}, "no token"), ({"csrf": "nope"}, "wrong token"),
                        ({"csrf": a.csrf, "sec_fetch_site": "cross-site"}, "cross-site")):
            self.assertProblem(a.delete("/v1/sessions", **kw), 403, "csrf", why)
        self.assertSessionAlive(b.session_cookie)
        self.assertProblem(self.client().delete("/v1/sessions", csrf="x"), 401, "unauthenticated")


class SessionCapTest(ServerTestCase):
    SERVER_ENV = {"TESSERA_SESSION_MAX_PER_USER": "2"}

    def test_third_login_evicts_the_oldest(self):
        name, _ = self.new_user()
        c1, l1 = self.logged_in(username=name)
        time.sleep(1.1)  # distinct created_at seconds, so "oldest" is unambiguous
        c2, l2 = self.logged_in(username=name)
        time.sleep(1.1)
        c3, l3 = self.logged_in(username=name)
        self.assertSessionDead(c1.session_cookie, msg="the oldest session beyond the cap")
        self.assertSessionAlive(c2.session_cookie)
        self.assertSessionAlive(c3.session_cookie)
        ids = {s["id"] for s in c3.get("/v1/sessions").json["sessions"]}
        self.assertEqual(ids, {l2["session"]["id"], l3["session"]["id"]})

    def test_cap_is_per_user(self):
        a, _ = self.logged_in()
        name, _ = self.new_user()
        for _ in range(3):
            self.logged_in(username=name)
        self.assertSessionAlive(a.session_cookie, msg="another user's logins evict nothing of A")


class RateLimitTest(ServerTestCase):
    SERVER_ENV = {"TESSERA_SECURITY_LOGIN_MAX_FAILURES": "3",
                  "TESSERA_SECURITY_LOGIN_WINDOW": "15m"}

    def test_failed_logins_then_429(self):
        name, _ = self.new_user()
        c = self.client()
        for i in range(3):
            r = c.login(name, "wrong password %d" % i)
            self.assertProblem(r, 401, "invalid_credentials", "failure %d of 3" % (i + 1))
        r = c.login(name, "wrong password again")
        self.assertProblem(r, 429, "rate_limited")
        self.assertCommonHeaders(r)
        ra = r.header("Retry-After")
        self.assertIsNotNone(ra, "429 needs Retry-After\n" + r.describe())
        self.assertRegex(ra, r"^[0-9]+$", "Retry-After in delta-seconds")
        self.assertTrue(1 <= int(ra) <= 15 * 60, ra)
        # The right password does not get through a limit either (no guessing oracle).
        r = c.login(name, PASSWORD)
        self.assertProblem(r, 429, "rate_limited", "correct password while limited")
        self.assertEqual(r.set_cookies(), [])
        # And the limit never turns into a 5xx under more pressure.
        for _ in range(5):
            self.assertStatus(c.login(name, "x" * 10), 429)


class RateLimitKeysTest(ServerTestCase):
    """Failures are counted per username and per client IP (SPEC security.login_*).
    Linux routes all of 127.0.0.0/8 to loopback: 127.0.0.x act as distinct clients."""

    SERVER_ENV = {"TESSERA_SECURITY_LOGIN_MAX_FAILURES": "3",
                  "TESSERA_SECURITY_LOGIN_WINDOW": "15m"}

    def test_per_username_across_ips(self):
        name, _ = self.new_user(self.server)
        for i in range(3):
            r = Client(self.server, source_ip="127.0.0.11").login(name, "wrong password %d" % i)
            self.assertProblem(r, 401, "invalid_credentials")
        # Another IP, the right password: the username is locked for everyone.
        r = Client(self.server, source_ip="127.0.0.12").login(name)
        self.assertProblem(r, 429, "rate_limited", "per-username limit from another IP")
        self.assertIsNotNone(r.header("Retry-After"))
        # Other users on the other IP are unaffected.
        other, _ = self.new_user(self.server)
        self.assertStatus(Client(self.server, source_ip="127.0.0.12").login(other), 200)

    def test_per_ip_across_usernames(self):
        users = [self.new_user(self.server)[0] for _ in range(4)]
        for name in users[:3]:
            r = Client(self.server, source_ip="127.0.0.21").login(name, "wrong password")
            self.assertProblem(r, 401, "invalid_credentials")
        # A fourth username from the same IP, right password: the IP is locked.
        r = Client(self.server, source_ip="127.0.0.21").login(users[3])
        self.assertProblem(r, 429, "rate_limited", "per-IP limit with a fresh username")
        self.assertIsNotNone(r.header("Retry-After"))
        # From another IP that user logs in fine; the session records the real peer.
        c = Client(self.server, source_ip="127.0.0.22")
        self.assertStatus(c.login(users[3]), 200)
        ips = [s["ip"] for s in c.get("/v1/sessions").json["sessions"] if s["current"]]
        self.assertEqual(ips, ["127.0.0.22"])

    def test_forwarded_headers_do_not_dodge_the_ip_limit(self):
        users = [self.new_user(self.server)[0] for _ in range(4)]
        for i, name in enumerate(users[:3]):
            r = Client(self.server, source_ip="127.0.0.31").login(
                name, "wrong password", headers={"X-Forwarded-For": "10.0.0.%d" % i,
                                                 "X-Real-IP": "10.0.0.%d" % i})
            self.assertProblem(r, 401, "invalid_credentials")
        r = Client(self.server, source_ip="127.0.0.31").login(
            users[3], headers={"X-Forwarded-For": "10.9.9.9", "X-Real-IP": "10.9.9.9"})
        self.assertProblem(r, 429, "rate_limited",
                           "X-Forwarded-For from a direct client must not reset the IP limit")


class IdleExpiryTest(ServerTestCase):
    SERVER_ENV = {"TESSERA_SESSION_IDLE_TTL": "3s", "TESSERA_SESSION_ABSOLUTE_TTL": "1h"}

    def test_login_reports_ttls(self):
        c, login = self.logged_in()
        s = login["session"]
        self.assertEqual(s["idle_expires_at"] - s["created_at"], 3)
        self.assertEqual(s["expires_at"] - s["created_at"], 3600)

    def test_idle_session_expires(self):
        c, login = self.logged_in()
        r = c.session()
        self.assertStatus(r, 200)
        _sleep_past(max(login["session"]["idle_expires_at"], r.json["session"]["idle_expires_at"]) + 1)
        r = c.session()
        self.assertProblem(r, 401, "unauthenticated", "idle past idle_ttl=3s")
        r = c.verify()
        self.assertStatus(r, 401)
        self.assertIn('error="invalid_token"', r.header("WWW-Authenticate") or "")
        self.assertProblem(c.get("/v1/sessions"), 401, "unauthenticated")

    def test_activity_slides_idle_expiry(self):
        # Used every second for more than two idle periods: still alive; SPEC says
        # GET /v1/session slides the idle expiry.
        c, login = self.logged_in()
        end = time.time() + 7.5
        n = 0
        while time.time() < end:
            time.sleep(1.0)
            r = c.session()
            n += 1
            self.assertStatus(r, 200, "request %d, %.1f s after login: an active session must not "
                              "idle out (idle_ttl=3s)" % (n, 7.5 - (end - time.time())))
        # Then idle: it dies.
        time.sleep(4.5)
        self.assertProblem(c.session(), 401, "unauthenticated", "idle after activity")


class AbsoluteExpiryTest(ServerTestCase):
    SERVER_ENV = {"TESSERA_SESSION_IDLE_TTL": "1h", "TESSERA_SESSION_ABSOLUTE_TTL": "3s"}

    def test_absolute_expiry_despite_activity(self):
        c, login = self.logged_in()
        s = login["session"]
        self.assertEqual(s["expires_at"] - s["created_at"], 3)
        self.assertLessEqual(s["idle_expires_at"], s["expires_at"] + 3600)
        deadline = s["expires_at"] + 1
        while time.time() < deadline:
            r = c.session()
            if time.time() < s["expires_at"] - 0.5:
                self.assertStatus(r, 200, "before the absolute expiry")
            time.sleep(0.5)
        _sleep_past(deadline)
        self.assertProblem(c.session(), 401, "unauthenticated", "past absolute_ttl=3s")
        self.assertStatus(c.verify(), 401)

    def test_relogin_after_absolute_expiry(self):
        name, _ = self.new_user()
        c, login = self.logged_in(username=name)
        _sleep_past(login["session"]["expires_at"] + 1)
        self.assertStatus(c.session(), 401)
        r = c.login(name)
        self.assertStatus(r, 200)
        self.assertStatus(c.session(), 200)


def _sleep_past(unix_ts):
    """Sleeps until the wall clock is a little past unix_ts (integer seconds)."""
    delay = unix_ts - time.time() + 0.3
    if delay > 0:
        time.sleep(delay)
