"""SPEC section 4, Administration: the user rows, behind the admin API key."""

from harness import PASSWORD, Client, ServerTestCase, unique_name


class AdminTest(ServerTestCase):

    def admin(self, method, path, body=None, **kw):
        return Client(self.server).admin(method, path, body, **kw)

    def _routes(self, uid):
        return [("GET", "/v1/admin/users", None),
                ("GET", "/v1/admin/users/" + uid, None),
                ("POST", "/v1/admin/users",
                 {"username": unique_name(), "password": PASSWORD, "roles": ["admin"]}),
                ("PATCH", "/v1/admin/users/" + uid, {"roles": ["admin"]}),
                ("POST", "/v1/admin/users/%s/revoke" % uid, None),
                ("DELETE", "/v1/admin/users/" + uid, None)]

    def test_needs_admin_key(self):
        name, uid = self.new_user()
        user, _ = self.logged_in(username=name)
        user_cookie = user.session_cookie
        for method, path, body in self._routes(uid):
            what = "%s %s" % (method, path)
            # No credential at all.
            r = self.client().request(method, path, body=body)
            self.assertProblem(r, 401, msg="no admin key: " + what)
            # A wrong key, and a prefix of the right one.
            for key in ("wrong", "tsr_admin_" + "A" * 43, self.server.admin_key[:-1],
                        self.server.admin_key + "x"):
                r = self.client().request(method, path, body=body, bearer=key)
                self.assertProblem(r, 401, msg="bad admin key %r: %s" % (key[:16], what))
            # A logged-in user's cookie (and its CSRF token) is not the admin key.
            r = user.request(method, path, body=body, csrf=user.csrf)
            self.assertProblem(r, 401, msg="a user's cookie: " + what)
            # Nor is the cookie value as a bearer token.
            r = self.client().request(method, path, body=body, bearer=user_cookie)
            self.assertProblem(r, 401, msg="a user's cookie as bearer: " + what)
            # The key in another scheme.
            r = self.client().request(method, path, body=body,
                                      headers={"Authorization": "Basic " + self.server.admin_key})
            self.assertProblem(r, 401, msg="Basic scheme: " + what)
        # None of those requests changed anything.
        r = self.admin("GET", "/v1/admin/users/" + uid)
        self.assertStatus(r, 200)
        self.assertEqual(r.json["roles"], [])
        self.assertIs(r.json["disabled"], False)
        self.assertSessionAlive(user_cookie)

    def test_create_user_with_roles(self):
        name = unique_name("adm")
        r = self.admin("POST", "/v1/admin/users",
                       {"username": name, "password": PASSWORD, "roles": ["admin", "ops"]})
        self.assertStatus(r, 201)
        self.assertCommonHeaders(r)
        u = r.json
        self.assertIsInstance(u.get("id"), str)
        self.assertEqual(u.get("username"), name)
        self.assertEqual(sorted(u.get("roles")), ["admin", "ops"])
        self.assertNoSecrets(r)
        c = self.client()
        r = c.login(name)
        self.assertStatus(r, 200)
        self.assertEqual(sorted(r.json["user"]["roles"]), ["admin", "ops"])
        self.assertEqual(r.json["user"]["id"], u["id"])

    def test_create_user_without_roles(self):
        name = unique_name()
        r = self.admin("POST", "/v1/admin/users", {"username": name, "password": PASSWORD})
        self.assertStatus(r, 201)
        self.assertEqual(r.json.get("roles"), [])

    def test_create_user_errors(self):
        name, _ = self.new_user()
        r = self.admin("POST", "/v1/admin/users",
                       {"username": name.upper(), "password": PASSWORD, "roles": []})
        self.assertProblem(r, 409, "username_taken")
        r = self.admin("POST", "/v1/admin/users",
                       {"username": unique_name(), "password": "short", "roles": []})
        self.assertProblem(r, 400, "weak_password")
        r = self.admin("POST", "/v1/admin/users",
                       {"username": "bad name", "password": PASSWORD, "roles": []})
        self.assertProblem(r, 400, "invalid_request")
        for roles in ("admin", [1], {"a": 1}, [None], True):
            r = self.admin("POST", "/v1/admin/users",
                           {"username": unique_name(), "password": PASSWORD, "roles": roles})
            self.assertNot5xx(r, repr(roles))
            self.assertProblem(r, 400, "invalid_request", "roles %r" % (roles,))
        for raw in (b"{", b"[]", b'{"username":"a","username":"b","password":"xxxxxxxxxx"}',
                    b'{"password":"xxxxxxxxxx"}', b'{"username":5,"password":"xxxxxxxxxx"}'):
            r = self.admin("POST", "/v1/admin/users", raw=raw)
            self.assertNot5xx(r, repr(raw))
            self.assertProblem(r, 400, "invalid_request", repr(raw))

    def test_show_user(self):
        name, uid = self.new_user()
        r = self.admin("GET", "/v1/admin/users/" + uid)
        self.assertStatus(r, 200)
        self.assertCommonHeaders(r)
        u = r.json
        self.assertEqual(u["id"], uid)
        self.assertEqual(u["username"], name)
        self.assertEqual(u["roles"], [])
        self.assertIs(u["disabled"], False)
        self.assertIsInstance(u["created_at"], int)
        self.assertNoSecrets(r)

    def test_show_unknown_user(self):
        for uid in ("usr_doesnotexist00000000", "nope"):
            r = self.admin("GET", "/v1/admin/users/" + uid)
            self.assertProblem(r, 404, msg=uid)

    def test_list_paged(self):
        created = {self.new_user()[1] for _ in range(5)}
        seen, pages, after = [], 0, None
        while True:
            path = "/v1/admin/users?limit=2" + ("&after=" + after if after else "")
            r = self.admin("GET", path)
            self.assertStatus(r, 200)
            self.assertEqual(set(r.json), {"users", "next"}, r.describe())
            users = r.json["users"]
            self.assertLessEqual(len(users), 2, r.describe())
            for u in users:
                for k in ("id", "username", "roles", "disabled", "created_at"):
                    self.assertIn(k, u, r.describe())
                self.assertNoSecrets(r)
            seen.extend(u["id"] for u in users)
            pages += 1
            self.assertLess(pages, 1000, "paging does not terminate")
            nxt = r.json["next"]
            if nxt is None:
                break
            self.assertIsInstance(nxt, str)
            self.assertEqual(len(users), 2, "a page short of the limit is the last: next must be null")
            after = nxt
        self.assertEqual(len(seen), len(set(seen)), "a user appeared on two pages")
        self.assertTrue(created <= set(seen), "paging lost users")
        # One big page has the same users, with next null.
        r = self.admin("GET", "/v1/admin/users?limit=1000")
        self.assertStatus(r, 200)
        self.assertEqual({u["id"] for u in r.json["users"]}, set(seen))
        self.assertIsNone(r.json["next"])
        # Past the end: empty, null.
        r = self.admin("GET", "/v1/admin/users?limit=2&after=" + max(seen))
        self.assertStatus(r, 200)
        if r.json["users"] == []:
            self.assertIsNone(r.json["next"])
        # Default page works too.
        self.assertStatus(self.admin("GET", "/v1/admin/users"), 200)

    def test_list_bad_query(self):
        for q in ("limit=0", "limit=-1", "limit=abc", "limit=99999999999999999999",
                  "after=%00", "after=" + "x" * 5000, "limit=1e3"):
            r = self.admin("GET", "/v1/admin/users?" + q)
            self.assertNot5xx(r, q)
            self.assertStatus(r, (200, 400), q)
        self.assertProblem(self.admin("GET", "/v1/admin/users?limit=abc"), 400, "invalid_request")

    def test_patch_roles(self):
        name, uid = self.new_user()
        c, _ = self.logged_in(username=name)
        r = self.admin("PATCH", "/v1/admin/users/" + uid, {"roles": ["editor", "admin"]})
        self.assertStatus(r, 200)
        self.assertEqual(sorted(r.json["roles"]), ["admin", "editor"])
        self.assertEqual(r.json["id"], uid)
        r = self.admin("GET", "/v1/admin/users/" + uid)
        self.assertEqual(sorted(r.json["roles"]), ["admin", "editor"])
        # The change reaches the live session.
        self.assertEqual(sorted(c.session().json["user"]["roles"]), ["admin", "editor"])
        self.assertStatus(c.verify("?role=editor"), 200)
        r = self.admin("PATCH", "/v1/admin/users/" + uid, {"roles": []})
        self.assertStatus(r, 200)
        self.assertEqual(r.json["roles"], [])
        self.assertStatus(c.verify("?role=editor"), 403)

    def test_patch_bad_input(self):
        _, uid = self.new_user()
        for body in ({"disabled": "yes"}, {"disabled": 1}, {"roles": "admin"},
                     {"roles": [1]}, {"roles": None}, {"roles": [""]}):
            r = self.admin("PATCH", "/v1/admin/users/" + uid, body)
            self.assertNot5xx(r, repr(body))
            self.assertProblem(r, 400, "invalid_request", repr(body))
        for raw in (b"{", b"[]", b'{"disabled":true,"disabled":false}'):
            r = self.admin("PATCH", "/v1/admin/users/" + uid, raw=raw)
            self.assertProblem(r, 400, "invalid_request", repr(raw))
        r = self.admin("GET", "/v1/admin/users/" + uid)
        self.assertIs(r.json["disabled"], False)
        r = self.admin("PATCH", "/v1/admin/users/usr_doesnotexist00000000", {"disabled": True})
        self.assertProblem(r, 404)

    def test_role_names_cannot_inject_roles(self):
        # X-Auth-Roles is comma-separated: a role "x,admin" must not read as admin.
        name, uid = self.new_user()
        c, _ = self.logged_in(username=name)
        r = self.admin("PATCH", "/v1/admin/users/" + uid, {"roles": ["x,admin"]})
        self.assertNot5xx(r)
        if r.status == 200:
            v = c.verify()
            self.assertStatus(v, 200)
            self.assertNotIn("admin", [x.strip() for x in (v.header("X-Auth-Roles") or "").split(",")])
            self.assertStatus(c.verify("?role=admin"), 403)
        else:
            self.assertProblem(r, 400, "invalid_request")

    def test_disable_kills_sessions_and_login(self):
        name, uid = self.new_user()
        a, _ = self.logged_in(username=name)
        b, _ = self.logged_in(username=name)
        bystander, _ = self.logged_in()
        r = self.admin("PATCH", "/v1/admin/users/" + uid, {"disabled": True})
        self.assertStatus(r, 200)
        self.assertIs(r.json["disabled"], True)
        self.assertSessionDead(a.session_cookie, msg="a disabled user's session")
        self.assertSessionDead(b.session_cookie, msg="a disabled user's session")
        self.assertSessionAlive(bystander.session_cookie)
        r = self.client().login(name)
        self.assertProblem(r, 401, "invalid_credentials", "a disabled user logs in")
        self.assertEqual(r.set_cookies(), [])
        # Enabling again lets them log in anew (old sessions stay dead).
        r = self.admin("PATCH", "/v1/admin/users/" + uid, {"disabled": False})
        self.assertStatus(r, 200)
        self.assertIs(r.json["disabled"], False)
        self.assertSessionDead(a.session_cookie, msg="re-enabling resurrects nothing")
        self.assertStatus(self.client().login(name), 200)

    def test_revoke_kills_every_session(self):
        name, uid = self.new_user()
        sessions = [self.logged_in(username=name)[0] for _ in range(3)]
        bystander, _ = self.logged_in()
        r = self.admin("POST", "/v1/admin/users/%s/revoke" % uid)
        self.assertStatus(r, 204)
        for s in sessions:
            self.assertSessionDead(s.session_cookie)
        self.assertSessionAlive(bystander.session_cookie)
        # The account itself is fine.
        c = self.client()
        self.assertStatus(c.login(name), 200)
        self.assertStatus(c.session(), 200)
        r = self.admin("POST", "/v1/admin/users/usr_doesnotexist00000000/revoke")
        self.assertProblem(r, 404)

    def test_delete_user(self):
        name, uid = self.new_user()
        a, _ = self.logged_in(username=name)
        b, _ = self.logged_in(username=name)
        bystander, _ = self.logged_in()
        r = self.admin("DELETE", "/v1/admin/users/" + uid)
        self.assertStatus(r, 204)
        self.assertProblem(self.admin("GET", "/v1/admin/users/" + uid), 404)
        self.assertSessionDead(a.session_cookie)
        self.assertSessionDead(b.session_cookie)
        self.assertSessionAlive(bystander.session_cookie)
        self.assertProblem(self.client().login(name), 401, "invalid_credentials")
        r = self.admin("GET", "/v1/admin/users?limit=1000")
        self.assertNotIn(uid, [u["id"] for u in r.json["users"]])
        self.assertProblem(self.admin("DELETE", "/v1/admin/users/" + uid), 404)

    def assertNoSecrets(self, r):
        text = r.body.decode("utf-8", "replace")
        self.assertNotIn(PASSWORD, text)
        self.assertNotIn("$argon2", text, "password hash in an admin response")
        self.assertNotIn(self.server.admin_key, text)
        if isinstance(r.json, dict):
            for u in r.json.get("users", [r.json]):
                for k in u:
                    self.assertNotIn("hash", k.lower(), r.describe())
                    self.assertNotIn("password", k.lower(), r.describe())


class AdminPagingTest(ServerTestCase):
    """A server holding exactly four users, so that page boundaries are known:
    `next` is null on the last page, also when that page happens to be full."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ids = []
        for i in range(4):
            r = Client(cls.server).admin("POST", "/v1/admin/users",
                                         {"username": "page%d" % i, "password": PASSWORD})
            if r.status != 201:
                raise AssertionError(r.describe())
            cls.ids.append(r.json["id"])

    def pages(self, limit):
        out, after = [], None
        for _ in range(10):
            path = "/v1/admin/users?limit=%d" % limit + ("&after=" + after if after else "")
            r = Client(self.server).admin("GET", path)
            self.assertStatus(r, 200)
            out.append(([u["id"] for u in r.json["users"]], r.json["next"]))
            after = r.json["next"]
            if after is None:
                return out
        self.fail("paging did not end: %r" % out)

    def test_pages_of_two(self):
        p = self.pages(2)
        self.assertEqual([len(ids) for ids, _ in p], [2, 2],
                         "4 users, limit=2: two pages, the second with next=null; got %r" % p)
        self.assertIsInstance(p[0][1], str)
        self.assertIsNone(p[1][1])
        self.assertEqual(sorted(p[0][0] + p[1][0]), sorted(self.ids))

    def test_pages_of_three(self):
        p = self.pages(3)
        self.assertEqual([len(ids) for ids, _ in p], [3, 1], repr(p))
        self.assertEqual(sorted(p[0][0] + p[1][0]), sorted(self.ids))

    def test_one_page_holds_everything(self):
        for limit in (4, 5, 1000):
            p = self.pages(limit)
            self.assertEqual(len(p), 1, "limit=%d holds all 4 users: next must be null; got %r"
                             % (limit, p))
            self.assertEqual(sorted(p[0][0]), sorted(self.ids))

    def test_pages_of_one(self):
        p = self.pages(1)
        self.assertEqual([len(ids) for ids, _ in p], [1, 1, 1, 1], repr(p))
        self.assertEqual(sorted(i for ids, _ in p for i in ids), sorted(self.ids))
