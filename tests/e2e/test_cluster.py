"""Scaled out (SPEC sections 1 and 3, docs/deploy.md): several `tessera serve`
processes on one PostgreSQL (store.url) and one Redis (cache.url) behave as one.

Real processes throughout: a throw-away PostgreSQL and Redis from
tests/support/services.py, and instances A and B (harness.Server) sharing them,
one admin key and one public URL. What is checked:

- a cookie or a token issued by A is accepted by B, with the same identity;
- cookie revocations on B (logout, DELETE /v1/sessions..., admin revoke or
  disable, password change) are refused by A at once: the store is the truth;
- revocations on B reach bearer tokens on A through Redis pub/sub (polled
  every 5 ms, 5 s hang guard), also RFC 7009 revocation of one access token;
- /metrics shows tessera_redis_up and tessera_revocation_subscribed;
- login rate limits are shared; Redis holds nothing the store does not;
- Redis down: everything keeps working on PostgreSQL, no 5xx, and revocation
  stays correct at once; Redis back on the same port: subscriptions return;
- a Redis stall does not let a stale cache entry bring a revoked cookie back;
- kill -9 of an instance under load loses nothing acknowledged;
- a PostgreSQL restart is survived;
- two instances starting at once on an empty database agree on one key set.
"""

import re
import threading
import time

from cluster import (NET_ERRORS, RECOVER_BOUND, ClusterTestCase, eventually,
                     gauge, scrape, wait_gauges)
from harness import PASSWORD, Client, jwt_parts, unique_name


def on(client, server):
    """A client for `server` holding the same cookie jar and CSRF token."""
    c = Client(server, user_agent=client.user_agent)
    c.jar = dict(client.jar)
    c.csrf = client.csrf
    return c


class ClusterTest(ClusterTestCase):
    """Two instances on PostgreSQL + Redis: one service."""

    CLUSTER_ENV = {"TESSERA_SECURITY_LOGIN_MAX_FAILURES": "4",
                   "TESSERA_SECURITY_LOGIN_WINDOW": "15m"}

    # ---- metrics (contract 5) ----

    def test_metrics_redis_and_subscription(self):
        for s in self.both():
            status, text = scrape(s)
            self.assertEqual(status, 200, "GET /metrics on %s" % s.name)
            for name in ("tessera_redis_up", "tessera_revocation_subscribed"):
                self.assertTrue(re.search(r"(?m)^# TYPE %s gauge$" % name, text),
                                "GET /metrics on %s has no gauge %s" % (s.name, name))
                self.assertIn(gauge(s, name), (0.0, 1.0), "%s on %s" % (name, s.name))
        self.wait_subscribed()
        for s in self.both():
            self.assertEqual(gauge(s, "tessera_redis_up"), 1.0, s.name)
            self.assertEqual(gauge(s, "tessera_revocation_subscribed"), 1.0, s.name)
            self.assertEqual(gauge(s, "tessera_store_up"), 1.0, s.name)
            r = Client(s).get("/readyz")
            self.assertStatus(r, 200, "readyz on %s" % s.name)
            self.assertEqual(r.json.get("cache"), "ok", r.describe())

    # ---- one key set, one issuer ----

    def test_same_keys_and_issuer(self):
        def jwks(s):
            r = Client(s).get("/.well-known/jwks.json")
            self.assertStatus(r, 200)
            return sorted(r.json["keys"], key=lambda k: k["kid"])
        self.assertEqual(jwks(self.a), jwks(self.b), "both instances publish the same JWKS")
        for s in self.both():
            r = Client(s).get("/.well-known/openid-configuration")
            self.assertStatus(r, 200)
            self.assertEqual(r.json["issuer"], self.cluster.public_url, r.describe())
        _, _, claims = self.grant(server=self.b)
        self.assertEqual(claims["iss"], self.cluster.public_url)

    # ---- sessions and tokens are shared (contract 1, 2) ----

    def test_cookie_login_on_a_works_on_b(self):
        name, uid = self.new_user(self.a)
        c, login = self.logged_in(self.a, username=name)
        sid = login["session"]["id"]
        r = self.assertSessionAlive(c.session_cookie, server=self.b, msg="A's cookie on B")
        self.assertEqual(r.json["user"]["id"], uid, r.describe())
        self.assertEqual(r.json["user"]["username"], name, r.describe())
        self.assertEqual(r.json["session"]["id"], sid, r.describe())
        self.assertEqual(r.json["csrf_token"], login["csrf_token"], "one CSRF token for one cookie")
        cb = on(c, self.b)
        r = cb.verify()
        self.assertStatus(r, 200, "GET /v1/verify on B with A's cookie")
        self.assertEqual(r.header("X-Auth-Subject"), uid, r.describe())
        self.assertEqual(r.header("X-Auth-Username"), name, r.describe())
        self.assertEqual(r.header("X-Auth-Session"), sid, r.describe())
        self.assertEqual(r.header("X-Auth-Method"), "cookie", r.describe())
        r = cb.get("/v1/sessions")
        self.assertStatus(r, 200)
        self.assertEqual([s["id"] for s in r.json["sessions"] if s["current"]], [sid], r.describe())
        # And the other way round: an account made on B logs in on A at once.
        name2, uid2 = self.new_user(self.b)
        c2, login2 = self.logged_in(self.a, username=name2)
        self.assertEqual(login2["user"]["id"], uid2)

    def test_csrf_token_from_a_is_good_on_b(self):
        c, _ = self.logged_in(self.a)
        cb = on(c, self.b)
        r = cb.session_token(csrf="x" * 43)
        self.assertProblem(r, 403, "csrf", "a wrong CSRF token on B")
        tok = self.session_access(cb, "POST /v1/session/token on B with A's cookie and CSRF token")
        self.assertBearerOk(tok, server=self.a)

    def test_token_on_a_verifies_on_b(self):
        name, uid = self.new_user(self.a)
        _, g, claims = self.grant(name, server=self.a)
        r = self.assertBearerOk(g["access_token"], server=self.b, msg="A's access token on B")
        self.assertEqual(r.header("X-Auth-Subject"), uid)
        self.assertEqual(r.header("X-Auth-Session"), claims["sid"])
        self.assertEqual(r.header("X-Auth-Username"), name)
        # A hybrid token from a cookie session on A.
        c, login = self.logged_in(self.a)
        tok = self.session_access(c)
        r = self.assertBearerOk(tok, server=self.b, msg="A's hybrid token on B")
        self.assertEqual(r.header("X-Auth-Session"), login["session"]["id"])
        # A's refresh token refreshes on B; the new access token verifies on A.
        g2 = self.refresh(g["refresh_token"], server=self.b, msg="A's refresh token on B")
        self.assertEqual(jwt_parts(g2["access_token"])[1]["sid"], claims["sid"])
        self.assertBearerOk(g2["access_token"], server=self.a)

    def test_refresh_rotation_is_shared(self):
        _, g, _ = self.grant(server=self.a)
        g1 = self.refresh(g["refresh_token"], server=self.b, msg="first refresh, on B")
        self.assertNotEqual(g1["refresh_token"], g["refresh_token"])
        # The spent token again, on A, within the reuse grace: B's successor.
        g1b = self.refresh(g["refresh_token"], server=self.a, msg="the same refresh token on A")
        self.assertEqual(g1b["refresh_token"], g1["refresh_token"],
                         "A knows the successor B issued (the family lives in the store)")
        g2 = self.refresh(g1["refresh_token"], server=self.a, msg="the successor, on A")
        self.assertBearerOk(g2["access_token"], server=self.b)

    # ---- cookie revocation on B is refused on A at once (contract 3) ----

    def test_logout_on_b_refuses_the_cookie_on_a_at_once(self):
        c, _ = self.logged_in(self.a)
        cookie = c.session_cookie
        self.warm_cookie(cookie)
        r = on(c, self.b).logout()
        self.assertStatus(r, 204, "logout on B with A's cookie")
        self.assertCookieDeadEverywhere(cookie, "cookie logged out on B")

    def test_session_deletes_on_b_refuse_cookies_on_a_at_once(self):
        name, _ = self.new_user(self.a)
        c1, _ = self.logged_in(self.a, username=name)
        c2, l2 = self.logged_in(self.a, username=name)
        c3, _ = self.logged_in(self.a, username=name)
        for c in (c1, c2, c3):
            self.warm_cookie(c.session_cookie)
        r = on(c1, self.b).delete("/v1/sessions/" + l2["session"]["id"], csrf=c1.csrf)
        self.assertStatus(r, 204, "DELETE /v1/sessions/{id} on B")
        self.assertCookieDeadEverywhere(c2.session_cookie, "session deleted on B")
        self.assertSessionAlive(c1.session_cookie, server=self.a)
        self.assertSessionAlive(c3.session_cookie, server=self.a)
        r = on(c1, self.b).delete("/v1/sessions", csrf=c1.csrf)
        self.assertStatus(r, 204, "DELETE /v1/sessions (all others) on B")
        self.assertCookieDeadEverywhere(c3.session_cookie, "other sessions deleted on B")
        self.assertSessionAlive(c1.session_cookie, server=self.a)

    def test_admin_revoke_on_b_refuses_cookies_on_a_at_once(self):
        name, uid = self.new_user(self.a)
        cs = [self.logged_in(self.a, username=name)[0] for _ in range(2)]
        for c in cs:
            self.warm_cookie(c.session_cookie)
        r = Client(self.b).admin("POST", "/v1/admin/users/%s/revoke" % uid)
        self.assertStatus(r, 204, "admin revoke on B")
        for c in cs:
            self.assertCookieDeadEverywhere(c.session_cookie, "admin revoke on B")
        self.assertStatus(Client(self.a).login(name), 200, "a new login after the revoke")

    def test_admin_disable_on_b_refuses_cookies_on_a_at_once(self):
        name, uid = self.new_user(self.a)
        c, _ = self.logged_in(self.a, username=name)
        self.warm_cookie(c.session_cookie)
        r = Client(self.b).admin("PATCH", "/v1/admin/users/" + uid, {"disabled": True})
        self.assertStatus(r, 200, "admin disable on B")
        self.assertCookieDeadEverywhere(c.session_cookie, "user disabled on B")
        self.assertProblem(Client(self.a).login(name), 401, "invalid_credentials",
                           "a disabled user logging in on A")
        r = Client(self.b).admin("PATCH", "/v1/admin/users/" + uid, {"disabled": False})
        self.assertStatus(r, 200)
        self.assertStatus(Client(self.a).login(name), 200, "enabled again on B, login on A")

    def test_password_change_on_b_refuses_other_cookies_on_a_at_once(self):
        name, _ = self.new_user(self.a)
        c1, _ = self.logged_in(self.a, username=name)
        c2, _ = self.logged_in(self.a, username=name)
        old1 = c1.session_cookie
        for c in (c1, c2):
            self.warm_cookie(c.session_cookie)
        cb = on(c1, self.b)
        r = cb.post("/v1/users/me/password", {"current_password": PASSWORD,
                                              "new_password": PASSWORD + " 2"}, csrf=c1.csrf)
        self.assertStatus(r, 204, "password change on B")
        self.assertCookieDeadEverywhere(c2.session_cookie, "other session after a password change")
        self.assertCookieDeadEverywhere(old1, "the replaced cookie after a password change")
        self.assertSessionAlive(cb.session_cookie, server=self.a, msg="the new cookie on A")
        self.assertStatus(Client(self.a).login(name, PASSWORD + " 2"), 200)

    # ---- bearer revocation on B reaches A through pub/sub (contract 4) ----

    def test_logout_on_b_reaches_a_hybrid_token_on_a(self):
        self.wait_subscribed()
        c, _ = self.logged_in(self.a)
        tok = self.session_access(c)
        self.warm_bearer(tok)
        self.assertStatus(on(c, self.b).logout(), 204, "logout on B")
        self.bearer_refused_eventually(tok, self.a, "hybrid token after a logout on B")
        self.assertBearerRefused(tok, server=self.b)

    def test_refresh_revoke_on_b_reaches_tokens_on_a(self):
        self.wait_subscribed()
        _, g, _ = self.grant(server=self.a)
        self.warm_bearer(g["access_token"])
        r = Client(self.b).oauth_revoke(g["refresh_token"], "refresh_token")
        self.assertStatus(r, 200, "RFC 7009 revoke of the refresh token on B")
        self.bearer_refused_eventually(g["access_token"], self.a, "family revoked on B")
        self.assertBearerRefused(g["access_token"], server=self.b)
        r = Client(self.a).refresh_grant(g["refresh_token"])
        self.assertOAuthError(r, 400, "invalid_grant", "the revoked refresh token on A")

    def test_admin_disable_on_b_reaches_tokens_on_a(self):
        self.wait_subscribed()
        name, uid = self.new_user(self.a)
        _, g, _ = self.grant(name, server=self.a)
        c, _ = self.logged_in(self.a, username=name)
        tok = self.session_access(c)
        self.warm_bearer(g["access_token"])
        self.warm_bearer(tok)
        r = Client(self.b).admin("PATCH", "/v1/admin/users/" + uid, {"disabled": True})
        self.assertStatus(r, 200, "admin disable on B")
        self.bearer_refused_eventually(g["access_token"], self.a, "password-grant token, user disabled on B")
        self.bearer_refused_eventually(tok, self.a, "hybrid token, user disabled on B")

    def test_admin_revoke_on_b_reaches_tokens_on_a(self):
        self.wait_subscribed()
        name, uid = self.new_user(self.a)
        toks = [self.grant(name, server=self.a)[1]["access_token"] for _ in range(2)]
        for t in toks:
            self.warm_bearer(t)
        self.assertStatus(Client(self.b).admin("POST", "/v1/admin/users/%s/revoke" % uid), 204)
        for t in toks:
            self.bearer_refused_eventually(t, self.a, "admin revoke-all on B")

    def test_access_token_revoke_on_b_reaches_a(self):
        self.wait_subscribed()
        _, g, claims = self.grant(server=self.a)
        g2 = self.refresh(g["refresh_token"], server=self.a)
        t1, t2 = g["access_token"], g2["access_token"]
        self.assertEqual(jwt_parts(t2)[1]["sid"], claims["sid"])
        self.warm_bearer(t1)
        self.warm_bearer(t2)
        r = Client(self.b).oauth_revoke(t1, "access_token")
        self.assertStatus(r, 200, "RFC 7009 revoke of an access token on B")
        self.bearer_refused_eventually(t1, self.a, "access token revoked by jti on B")
        self.assertBearerRefused(t1, server=self.b)
        # Only that jti: the session's other access token lives on, on both.
        self.assertBearerOk(t2, server=self.a, msg="another token of the same session on A")
        self.assertBearerOk(t2, server=self.b, msg="another token of the same session on B")

    # ---- Redis is shared state, never the only copy ----

    def test_login_rate_limit_is_shared(self):
        # login_max_failures = 4 for this class: two failures on each instance
        # use the username's allowance up; the next attempt is refused on both.
        name, _ = self.new_user(self.a)
        for i, s in enumerate((self.a, self.b, self.a, self.b)):
            r = Client(s, source_ip="127.0.0.41").login(name, "wrong password %d" % i)
            self.assertProblem(r, 401, "invalid_credentials", "failure %d of 4, on %s" % (i + 1, s.name))
        for s in self.both():
            r = Client(s, source_ip="127.0.0.42").login(name)
            self.assertProblem(r, 429, "rate_limited",
                               "the username's bucket is shared: right password on %s" % s.name)
            self.assertIsNotNone(r.header("Retry-After"), r.describe())

    def test_redis_flush_loses_nothing(self):
        c, login = self.logged_in(self.a)
        _, g, _ = self.grant(server=self.a)
        self.warm_cookie(c.session_cookie)
        self.warm_bearer(g["access_token"])
        self.assertEqual(self.cluster.redis.cli("FLUSHALL").strip(), "OK")
        for s in self.both():
            r = self.assertSessionAlive(c.session_cookie, server=s, msg="cookie after FLUSHALL")
            self.assertEqual(r.json["session"]["id"], login["session"]["id"])
            self.assertBearerOk(g["access_token"], server=s, msg="token after FLUSHALL")
        self.refresh(g["refresh_token"], server=self.b, msg="refresh after FLUSHALL")
        self.assertStatus(on(c, self.b).logout(), 204)
        self.assertCookieDeadEverywhere(c.session_cookie, "logout after FLUSHALL")


class ColdStartTest(ClusterTestCase):
    """Two instances started at the same moment on an empty database (both
    create the schema, the signing keys and the admin key hash)."""

    CLUSTER_CONCURRENT = True

    def test_concurrent_first_start_agrees_on_one_key_set(self):
        keys = []
        for s in self.both():
            r = Client(s).get("/.well-known/jwks.json")
            self.assertStatus(r, 200)
            keys.append(sorted(r.json["keys"], key=lambda k: k["kid"]))
        self.assertEqual(keys[0], keys[1], "one key set in the store")
        r = Client(self.a).admin("GET", "/v1/admin/keys")
        self.assertStatus(r, 200)
        for x, y in ((self.a, self.b), (self.b, self.a)):
            _, g, _ = self.grant(server=x)
            self.assertBearerOk(g["access_token"], server=y,
                                msg="token of %s verified by %s" % (x.name, y.name))
            self.assertStatus(Client(y).admin("GET", "/v1/admin/users?limit=1"), 200,
                              "the shared admin key on %s" % y.name)


class RedisOutageTest(ClusterTestCase):
    """Redis killed and restarted on the same port (contract 6), and a Redis
    stall during a revocation."""

    def setUp(self):
        self.cluster.ensure_running()
        self.wait_subscribed()

    def _no_5xx(self, responses, what):
        bad = [r.describe() for r in responses if r.status >= 500]
        self.assertEqual(bad, [], "%s: 5xx answers" % what)

    def test_redis_down_then_back(self):
        a, b = self.a, self.b
        seen = []

        def keep(r):
            seen.append(r)
            return r

        # Before: a cookie and a token from A, used on both.
        name1, uid1 = self.new_user(a)
        c1, _ = self.logged_in(a, username=name1)
        _, g1, _ = self.grant(name1, server=a)
        name2, uid2 = self.new_user(a)
        _, g2, _ = self.grant(name2, server=a)
        g2b = self.refresh(g2["refresh_token"], server=a)
        self.warm_cookie(c1.session_cookie)
        for t in (g1["access_token"], g2["access_token"], g2b["access_token"]):
            self.warm_bearer(t)

        self.cluster.redis.stop(kill=True)
        # Both instances notice (bounded); /metrics keeps answering 200.
        wait_gauges(self.both(), "tessera_revocation_subscribed", 0,
                    "both instances report the lost subscription")

        # Everything keeps working on PostgreSQL alone.
        name3 = unique_name("rd")
        self.assertStatus(keep(Client(b).signup(name3)), 201, "signup on B, Redis down")
        c3 = Client(a)
        self.assertStatus(keep(c3.login(name3)), 200, "login on A, Redis down")
        for s in self.both():
            self.assertStatus(keep(on(c3, s).session()), 200, "new cookie on %s, Redis down" % s.name)
            self.assertStatus(keep(on(c1, s).verify()), 200, "old cookie on %s, Redis down" % s.name)
            for t in (g1["access_token"], g2["access_token"]):
                keep(self.assertBearerOk(t, server=s, msg="token on %s, Redis down" % s.name))
            # Redis is a cache: an instance without it is still ready (a load
            # balancer must not take every instance out when Redis dies).
            self.assertStatus(keep(Client(s).get("/readyz")), 200, "readyz on %s, Redis down" % s.name)
        _, g3, _ = self.grant(name3, server=b)
        keep(self.assertBearerOk(g3["access_token"], server=a, msg="B's new token on A, Redis down"))
        g3b = self.refresh(g3["refresh_token"], server=a, msg="refresh on A, Redis down")
        keep(self.assertBearerOk(g3b["access_token"], server=b))
        r = keep(Client(b, source_ip="127.0.0.51").login(name3, "wrong password"))
        self.assertProblem(r, 401, "invalid_credentials", "a failed login, Redis down")

        # Revocation stays correct, at once (no polling): the instance without a
        # subscription reads the store's revocations before it answers.
        r = keep(on(c1, b).logout())
        self.assertStatus(r, 204, "logout on B, Redis down")
        self.assertCookieDeadEverywhere(c1.session_cookie, "cookie logged out on B, Redis down")
        r = keep(Client(b).oauth_revoke(g1["refresh_token"]))
        self.assertStatus(r, 200)
        self.assertBearerRefused(g1["access_token"], server=a,
                                 msg="family revoked on B while Redis is down: refused on A at once")
        r = keep(Client(b).oauth_revoke(g2["access_token"]))
        self.assertStatus(r, 200)
        self.assertBearerRefused(g2["access_token"], server=a,
                                 msg="jti revoked on B while Redis is down: refused on A at once")
        self.assertBearerOk(g2b["access_token"], server=a, msg="the other token of that session")
        r = keep(Client(b).admin("PATCH", "/v1/admin/users/" + uid2, {"disabled": True}))
        self.assertStatus(r, 200)
        self.assertBearerRefused(g2b["access_token"], server=a,
                                 msg="user disabled on B while Redis is down: refused on A at once")
        self._no_5xx(seen, "Redis down")
        # And /metrics says so (an operator's alert on tessera_redis_up == 0 must
        # fire while Redis is down, with or without traffic).
        wait_gauges(self.both(), "tessera_redis_up", 0, "both instances report Redis down")

        # Redis back on the same port: subscriptions return, fan-out works again.
        self.cluster.redis.start()
        wait_gauges(self.both(), "tessera_redis_up", 1, "Redis up again on both")
        wait_gauges(self.both(), "tessera_revocation_subscribed", 1, "subscribed again on both")
        _, g4, _ = self.grant(server=a)
        self.warm_bearer(g4["access_token"])
        self.assertStatus(Client(b).oauth_revoke(g4["refresh_token"]), 200)
        self.bearer_refused_eventually(g4["access_token"], a, "fan-out after Redis came back")
        c4, _ = self.logged_in(a)
        self.warm_cookie(c4.session_cookie)
        self.assertStatus(on(c4, b).logout(), 204)
        self.assertCookieDeadEverywhere(c4.session_cookie, "logout on B after Redis came back")
        for s in self.both():
            self.assertSessionDead(c1.session_cookie, server=s,
                                   msg="logged out while Redis was down, still dead")
            self.assertBearerRefused(g1["access_token"], server=s)
            self.assertBearerRefused(g2b["access_token"], server=s)

    def test_revocation_during_redis_stall_is_not_undone(self):
        # Redis stops answering (CLIENT PAUSE) while B revokes: B can neither
        # delete the cache entry nor publish. When Redis answers again, the stale
        # entry it still holds must not bring the revoked cookie or token back.
        a, b = self.a, self.b
        c, _ = self.logged_in(a)
        tok = self.session_access(c)
        _, g, _ = self.grant(server=a)
        self.warm_cookie(c.session_cookie)
        self.warm_bearer(tok)
        self.warm_bearer(g["access_token"])
        pause_ms = 3000
        self.assertEqual(self.cluster.redis.cli("CLIENT", "PAUSE", str(pause_ms), "ALL").strip(), "OK")
        r = on(c, b).logout()
        self.assertStatus(r, 204, "logout on B while Redis stalls")
        r = Client(b).oauth_revoke(g["refresh_token"])
        self.assertStatus(r, 200, "revoke on B while Redis stalls")
        self.assertCookieDeadEverywhere(c.session_cookie, "cookie logged out during the stall")
        self.bearer_refused_eventually(tok, a, "hybrid token, logout during the stall")
        self.bearer_refused_eventually(g["access_token"], a, "family revoked during the stall")
        # Wait for the pause to end (redis-cli blocks until Redis answers), then
        # for both instances to use Redis again.
        self.assertEqual(self.cluster.redis.cli("PING").strip(), "PONG")
        wait_gauges(self.both(), "tessera_redis_up", 1, "Redis answers again")
        self.wait_subscribed()
        for _ in range(3):
            self.assertCookieDeadEverywhere(c.session_cookie, "revoked during the stall, after it")
            for s in self.both():
                self.assertBearerRefused(tok, server=s, msg="after the stall")
                self.assertBearerRefused(g["access_token"], server=s, msg="after the stall")


class CrashTest(ClusterTestCase):
    """kill -9 of an instance under load (contract 7), a PostgreSQL restart
    (contract 8)."""

    CLUSTER_ENV = {"TESSERA_SESSION_MAX_PER_USER": "100000"}

    def setUp(self):
        self.cluster.ensure_running()

    def test_kill9_under_load_loses_nothing_acknowledged(self):
        a, b = self.a, self.b
        pre = {s.name: self.new_user(s)[0] for s in self.both()}
        lock = threading.Lock()
        users = []      # (server name, username, id) answered 201
        sessions = []   # [cookie, session id, state]: "live", "out" (204), "unknown"
        weird = []
        stop = threading.Event()

        def note_weird(r, s):
            if r.status >= 500 and r.status != 503:
                with lock:
                    weird.append("%s: %s" % (s.name, r.describe()))

        def signup_worker(s):
            while not stop.is_set():
                name = unique_name("k9")
                try:
                    r = Client(s).signup(name)
                except NET_ERRORS:
                    if s is a:
                        return  # A is gone
                    continue
                if r.status == 201:
                    with lock:
                        users.append((s.name, name, r.json["id"]))
                note_weird(r, s)

        def login_worker(s):
            n = 0
            while not stop.is_set():
                c = Client(s)
                try:
                    r = c.login(pre[s.name])
                except NET_ERRORS:
                    if s is a:
                        return
                    continue
                note_weird(r, s)
                if r.status != 200:
                    continue
                entry = [c.session_cookie, r.json["session"]["id"], "live"]
                with lock:
                    sessions.append(entry)
                n += 1
                if n % 3 == 0:
                    try:
                        r = c.logout()
                    except NET_ERRORS:
                        entry[2] = "unknown"
                        if s is a:
                            return
                        continue
                    note_weird(r, s)
                    if r.status == 204:
                        entry[2] = "out"
                    elif r.status >= 500:
                        entry[2] = "unknown"

        threads = [threading.Thread(target=signup_worker, args=(a,), daemon=True),
                   threading.Thread(target=signup_worker, args=(a,), daemon=True),
                   threading.Thread(target=signup_worker, args=(b,), daemon=True),
                   threading.Thread(target=login_worker, args=(a,), daemon=True),
                   threading.Thread(target=login_worker, args=(b,), daemon=True)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with lock:
                    na = sum(1 for u in users if u[0] == a.name)
                    ns = len(sessions)
                if na >= 30 and ns >= 12:
                    break
                time.sleep(0.02)
            a.kill()   # kill -9 in the middle of the load
            time.sleep(0.3)  # B keeps serving its share meanwhile
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        self.assertFalse(any(t.is_alive() for t in threads), "a load thread hung")
        self.assertEqual(weird, [], "5xx (other than 503) during the load")
        with lock:
            users_a = [u for u in users if u[0] == a.name]
            snapshot_users = list(users)
            snapshot_sessions = [list(e) for e in sessions]
        self.assertGreaterEqual(len(users_a), 30, "too few signups acknowledged by A to test anything")
        self.assertTrue(b.alive(), "B survived A's death")
        lost = []
        for where, name, uid in snapshot_users:
            r = Client(b).login(name)
            if r.status != 200 or r.json["user"]["id"] != uid:
                lost.append("%s (acknowledged by %s): %s" % (name, where, r.describe()))
        self.assertEqual(lost, [], "acknowledged signups missing on B:\n" + "\n".join(lost[:5]))
        lost = []
        for cookie, sid, state in snapshot_sessions:
            if state == "unknown":
                continue
            r = Client(b).session(cookie="%s=%s" % (b.cookie_name, cookie))
            if state == "live" and (r.status != 200 or r.json["session"]["id"] != sid):
                lost.append("login %s lost: %s" % (sid, r.describe()))
            if state == "out" and r.status != 401:
                lost.append("logout of %s lost: %s" % (sid, r.describe()))
        self.assertEqual(lost, [], "acknowledged logins/logouts not seen on B:\n" + "\n".join(lost[:5]))
        # A comes back and agrees.
        a.start(port=a.port)
        self.assertStatus(Client(a).get("/readyz"), 200, "A ready after kill -9")
        for _, name, uid in snapshot_users[:10]:
            r = Client(a).login(name)
            self.assertStatus(r, 200, "an acknowledged signup, on A after its restart")

    def test_postgres_restart_is_survived(self):
        a, b = self.a, self.b
        name, _ = self.new_user(a)
        c, _ = self.logged_in(a, username=name)
        _, g, _ = self.grant(name, server=a)
        self.cluster.pg.stop()
        try:
            # Down: answers are honest (503 where the store is needed), never a crash.
            def readyz_503():
                st = [Client(s).get("/readyz").status for s in self.both()]
                return all(x == 503 for x in st), st
            eventually(readyz_503, "/readyz 503 on both with PostgreSQL down",
                       bound=RECOVER_BOUND, interval=0.05)
            seen = [Client(a).signup(unique_name("pg")), Client(b).login(name),
                    on(c, a).session(), on(c, b).verify(),
                    Client(b).bearer_verify(g["access_token"]),
                    Client(a).get("/healthz"), Client(b).get("/metrics")]
            bad = [r.describe() for r in seen if r.status >= 500 and r.status != 503]
            self.assertEqual(bad, [], "PostgreSQL down: only 503 may report it")
            self.assertStatus(seen[4], 200, "with Redis up, a bearer check needs no store "
                              "in revocation-list mode (docs/deploy.md)")
            self.assertStatus(seen[-2], 200, "/healthz does not need the store")
            self.assertStatus(seen[-1], 200, "/metrics does not need the store")
            self.assertTrue(a.alive() and b.alive(), "both instances still run")
        finally:
            self.cluster.pg.start()

        def works_again():
            st = []
            for s in self.both():
                r = Client(s).signup(unique_name("pg"))
                st.append(r.status)
                if r.status >= 500 and r.status != 503:
                    raise AssertionError("after the restart: " + r.describe())
            return all(x == 201 for x in st), st
        eventually(works_again, "signups on both after the PostgreSQL restart",
                   bound=RECOVER_BOUND, interval=0.1)
        for s in self.both():
            self.assertStatus(Client(s).get("/readyz"), 200, "readyz on %s" % s.name)
            self.assertSessionAlive(c.session_cookie, server=s, msg="cookie from before the restart")
            self.assertBearerOk(g["access_token"], server=s)
            self.assertStatus(Client(s).login(name), 200)
        self.assertStatus(on(c, b).logout(), 204)
        self.assertCookieDeadEverywhere(c.session_cookie, "logout after the PostgreSQL restart")
        self.assertTrue(a.alive() and b.alive())
