"""Concurrency and durability: parallel logins with parallel verifies, racing
signups, and nothing acknowledged lost across a SIGTERM restart or a kill -9."""

import http.client
import threading
import time

from harness import PASSWORD, Client, Server, ServerTestCase, unique_name

NET_ERRORS = (ConnectionError, http.client.HTTPException, OSError)


def run_threads(targets):
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return [t for t in threads if t.is_alive()]


class ConcurrencyTest(ServerTestCase):

    def test_parallel_logins_with_parallel_verifies(self):
        users = [self.new_user() for _ in range(8)]
        watcher, wlogin = self.logged_in()
        wcookie = watcher.session_cookie
        lock = threading.Lock()
        problems = []
        counts = {"login": 0, "verify": 0}

        def note(msg):
            with lock:
                problems.append(msg)

        def login_worker(name, uid):
            try:
                for i in range(5):
                    c = Client(self.server)
                    r = c.login(name)
                    if r.status != 200:
                        note("login %s #%d: %s" % (name, i, r.describe()))
                        continue
                    with lock:
                        counts["login"] += 1
                    for _ in range(5):
                        v = c.verify()
                        if v.status != 200 or v.header("X-Auth-Subject") != uid:
                            note("verify after login %s: %s" % (name, v.describe()))
                        else:
                            with lock:
                                counts["verify"] += 1
            except NET_ERRORS as e:
                note("login worker %s: %r" % (name, e))

        def verify_worker():
            try:
                c = Client(self.server)
                for _ in range(60):
                    v = c.verify(cookie="%s=%s" % (self.server.cookie_name, wcookie))
                    if v.status != 200 or v.header("X-Auth-Session") != wlogin["session"]["id"]:
                        note("parallel verify: %s" % v.describe())
                    else:
                        with lock:
                            counts["verify"] += 1
            except NET_ERRORS as e:
                note("verify worker: %r" % (e,))

        stuck = run_threads([lambda n=n, u=u: login_worker(n, u) for n, u in users]
                            + [verify_worker for _ in range(4)])
        self.assertEqual(stuck, [], "worker threads did not finish")
        self.assertEqual(problems, [], "\n".join(problems[:10]))
        self.assertEqual(counts["login"], 8 * 5)
        self.assertEqual(counts["verify"], 8 * 5 * 5 + 4 * 60)
        self.assertStatus(self.client().get("/healthz"), 200)

    def test_racing_signups_of_one_name(self):
        base = "Race" + unique_name()
        variants = [base, base.lower(), base.upper(), base.swapcase()] * 3
        results = []
        lock = threading.Lock()

        def worker(name, pw):
            try:
                r = Client(self.server).signup(name, pw)
                with lock:
                    results.append((name, pw, r))
            except NET_ERRORS as e:
                with lock:
                    results.append((name, pw, e))

        stuck = run_threads([lambda n=n, i=i: worker(n, "password-%02d" % i)
                             for i, n in enumerate(variants)])
        self.assertEqual(stuck, [])
        errors = [x for x in results if not hasattr(x[2], "status")]
        self.assertEqual(errors, [], "network errors")
        statuses = sorted(r.status for _, _, r in results)
        self.assertEqual(statuses.count(201), 1, "exactly one signup of a name wins: %r" % statuses)
        for _, _, r in results:
            if r.status != 201:
                self.assertProblem(r, 409, "username_taken")
        winner = [(n, pw) for n, pw, r in results if r.status == 201][0]
        self.assertStatus(self.client().login(base, winner[1]), 200)

    def test_parallel_session_revocations(self):
        name, _ = self.new_user()
        main, _ = self.logged_in(username=name)
        others = [self.logged_in(username=name) for _ in range(6)]
        statuses = []
        lock = threading.Lock()

        def revoke(sid):
            r = main.delete("/v1/sessions/" + sid, csrf=main.csrf)
            with lock:
                statuses.append(r.status)

        def revoke_all():
            r = main.delete("/v1/sessions", csrf=main.csrf)
            with lock:
                statuses.append(r.status)

        stuck = run_threads([lambda s=l["session"]["id"]: revoke(s) for _, l in others]
                            + [revoke_all, revoke_all])
        self.assertEqual(stuck, [])
        self.assertTrue(all(s in (204, 404) for s in statuses), statuses)
        for c, _ in others:
            self.assertSessionDead(c.session_cookie)
        self.assertSessionAlive(main.session_cookie)


class DurabilityTest(ServerTestCase):
    """Each test runs its own server, which it stops and starts again."""

    @classmethod
    def setUpClass(cls):
        cls.server = None

    def test_sigterm_restart_keeps_users_and_sessions(self):
        s = self.track(Server(name="durability-sigterm"))
        s.start()
        n1, id1 = self.new_user(s)
        c1, l1 = self.logged_in(s, username=n1)
        n2, id2 = self.admin_user(["ops"], server=s)
        c2, l2 = self.logged_in(s, username=n2)
        c3, _ = self.logged_in(s, username=n1)
        dead = c3.session_cookie
        self.assertStatus(c3.logout(), 204)
        r = Client(s).admin("PATCH", "/v1/admin/users/" + id2, {"roles": ["ops", "admin"]})
        self.assertStatus(r, 200)
        code = s.stop()
        self.assertEqual(code, 0, "SIGTERM must stop the server cleanly (exit 0)")
        s.start()
        r = c1.session()
        self.assertStatus(r, 200, "a session from before the restart")
        self.assertEqual(r.json["session"]["id"], l1["session"]["id"])
        self.assertEqual(r.json["user"]["id"], id1)
        v = c2.verify("?role=admin")
        self.assertStatus(v, 200, "roles changed before the restart")
        self.assertEqual(v.header("X-Auth-Subject"), id2)
        self.assertSessionDead(dead, server=s, msg="a session revoked before the restart")
        r = Client(s).admin("GET", "/v1/admin/users/" + id2)
        self.assertStatus(r, 200)
        self.assertEqual(sorted(r.json["roles"]), ["admin", "ops"])
        self.assertStatus(Client(s).login(n1), 200)
        self.assertStatus(Client(s).login(n2), 200)
        # The CSRF token of a pre-restart session still works (it is not process state).
        self.assertStatus(c1.logout(), 204)

    def test_kill9_mid_load_loses_nothing_acknowledged(self):
        self._stop_under_load("kill9", lambda s: s.kill())

    def test_sigterm_mid_load_loses_nothing_acknowledged(self):
        codes = []
        self._stop_under_load("sigterm", lambda s: codes.append(s.stop()))
        self.assertEqual(codes, [0], "SIGTERM under load must still exit 0")

    def _stop_under_load(self, label, stop_server):
        # A cap high enough that the login worker never evicts its own sessions.
        s = self.track(Server(name="durability-" + label,
                              env={"TESSERA_SESSION_MAX_PER_USER": "100000"}))
        s.start()
        pre_name, _ = self.new_user(s)
        pre, _ = self.logged_in(s, username=pre_name)
        lock = threading.Lock()
        acked_users = []     # (name, id) answered 201
        acked_sessions = []  # (cookie, session id) answered 200
        stop = threading.Event()
        weird = []

        def signup_worker():
            while not stop.is_set():
                name = unique_name("k")
                try:
                    r = Client(s).signup(name)
                except NET_ERRORS:
                    return  # the server is gone
                if r.status == 201:
                    with lock:
                        acked_users.append((name, r.json["id"]))
                elif r.status >= 500 and r.status != 503:
                    with lock:
                        weird.append(r.describe())

        def login_worker():
            while not stop.is_set():
                c = Client(s)
                try:
                    r = c.login(pre_name)
                except NET_ERRORS:
                    return
                if r.status == 200:
                    with lock:
                        acked_sessions.append((c.session_cookie, r.json["session"]["id"]))
                        if len(acked_sessions) >= 200:
                            return

        threads = [threading.Thread(target=signup_worker, daemon=True) for _ in range(4)]
        threads.append(threading.Thread(target=login_worker, daemon=True))
        for t in threads:
            t.start()
        # Let the load run until a good number of writes was acknowledged, then crash
        # the server in the middle of it (bounded, not a speed check).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and s.alive():
            with lock:
                if len(acked_users) >= 40 and len(acked_sessions) >= 10:
                    break
            time.sleep(0.05)
        stop_server(s)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(weird, [], "5xx during the load")
        self.assertGreaterEqual(len(acked_users), 40, "too few signups acknowledged to test anything")
        s.start()
        self.assertStatus(Client(s).get("/readyz"), 200, "ready after a crash")
        lost = []
        for name, uid in acked_users:
            r = Client(s).login(name)
            if r.status != 200 or r.json["user"]["id"] != uid:
                lost.append("%s: %s" % (name, r.describe()))
        self.assertEqual(lost, [], "acknowledged signups lost (%s):\n%s" % (label, "\n".join(lost[:5])))
        lost = []
        for cookie, sid in acked_sessions:
            r = Client(s).session(cookie="%s=%s" % (s.cookie_name, cookie))
            if r.status != 200 or r.json["session"]["id"] != sid:
                lost.append("%s: %s" % (sid, r.describe()))
        self.assertEqual(lost, [], "acknowledged logins lost (%s):\n%s" % (label, "\n".join(lost[:5])))
        self.assertSessionAlive(pre.session_cookie, server=s, msg="a session from before the load")
        r = Client(s).admin("GET", "/v1/admin/users?limit=1000")
        self.assertStatus(r, 200)
        ids = {u["id"] for u in r.json["users"]}
        self.assertTrue({uid for _, uid in acked_users} <= ids)
        self.assertEqual(s.stop(), 0)
