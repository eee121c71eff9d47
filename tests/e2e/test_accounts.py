"""SPEC section 4, Accounts: POST /v1/users and POST /v1/users/me/password."""

import time

from harness import PASSWORD, Client, ServerTestCase, unique_name


class SignupTest(ServerTestCase):

    def test_signup_created_shape(self):
        c = self.client()
        name = unique_name()
        before = int(time.time())
        r = c.signup(name)
        after = int(time.time())
        self.assertStatus(r, 201)
        self.assertCommonHeaders(r)
        self.assertEqual((r.header("Content-Type") or "").split(";")[0].strip(), "application/json")
        self.assertIsInstance(r.json, dict, r.describe())
        self.assertIsInstance(r.json.get("id"), str, r.describe())
        self.assertTrue(r.json["id"], "empty id")
        self.assertEqual(r.json.get("username"), name)
        self.assertIsInstance(r.json.get("created_at"), int, "created_at must be integer Unix seconds")
        self.assertNotIsInstance(r.json.get("created_at"), bool)
        # A clock sanity check, not a speed check: the stamp is the server's now.
        self.assertTrue(before - 5 <= r.json["created_at"] <= after + 5, r.describe())
        text = r.body.decode("utf-8", "replace").lower()
        self.assertNotIn(PASSWORD, text)
        self.assertNotIn("argon2", text, "the password hash leaked into the response")
        self.assertNotIn("password", r.json)
        # Signup does not log in: no session cookie.
        self.assertEqual(r.set_cookies(), [], r.describe())

    def test_signup_ids_are_distinct(self):
        _, a = self.new_user()
        _, b = self.new_user()
        self.assertNotEqual(a, b)

    def test_signup_then_login_works(self):
        name, uid = self.new_user()
        c = self.client()
        r = c.login(name)
        self.assertStatus(r, 200)
        self.assertEqual(r.json["user"]["id"], uid)

    def test_weak_password_7_bytes(self):
        r = self.client().signup(unique_name(), "1234567")
        self.assertProblem(r, 400, "weak_password")

    def test_weak_password_257_bytes(self):
        r = self.client().signup(unique_name(), "p" * 257)
        self.assertProblem(r, 400, "weak_password")

    def test_weak_password_empty(self):
        r = self.client().signup(unique_name(), "")
        self.assertProblem(r, 400, "weak_password")

    def test_password_bounds_8_and_256_bytes_accepted(self):
        for pw in ("12345678", "q" * 256):
            name = unique_name()
            r = self.client().signup(name, pw)
            self.assertStatus(r, 201, "password of %d bytes" % len(pw))
            r = self.client().login(name, pw)
            self.assertStatus(r, 200, "login with a %d-byte password" % len(pw))

    def test_password_length_counts_bytes_not_characters(self):
        # "é" is 2 bytes in UTF-8: 4 of them are 8 bytes (ok), 129 are 258 bytes (too long).
        name = unique_name()
        r = self.client().signup(name, "\u00e9" * 4)
        self.assertStatus(r, 201, "8 bytes in 4 characters")
        self.assertStatus(self.client().login(name, "\u00e9" * 4), 200)
        r = self.client().signup(unique_name(), "\u00e9" * 129)
        self.assertProblem(r, 400, "weak_password", "258 bytes in 129 characters")
        r = self.client().signup(unique_name(), "\u00e9" * 3)
        self.assertProblem(r, 400, "weak_password", "6 bytes")

    def test_username_invalid_characters(self):
        bad = ["bad name", "a/b", "a,b", "a;b", "<script>", "caf\u00e9", "a\tb", "a:b",
               "a\"b", "a\\b", "a\u0000b", "", "\u202ebidi"]
        for name in bad:
            r = self.client().signup(name)
            self.assertNot5xx(r, repr(name))
            self.assertProblem(r, 400, "invalid_request", "username %r" % name)

    def test_username_all_allowed_characters(self):
        name = "Az09._@+-" + unique_name()
        r = self.client().signup(name)
        self.assertStatus(r, 201)
        self.assertEqual(r.json["username"], name)
        self.assertStatus(self.client().login(name), 200)

    def test_username_length_64_ok_65_refused(self):
        base = unique_name("L")
        r = self.client().signup(base + "x" * (64 - len(base)))
        self.assertStatus(r, 201, "64-character username")
        r = self.client().signup(base + "y" * (65 - len(base)))
        self.assertProblem(r, 400, "invalid_request", "65-character username")
        r = self.client().signup("a")
        self.assertStatus(r, (201, 409), "1-character username")

    def test_username_taken_case_insensitively(self):
        name = "Mixed" + unique_name()
        self.assertStatus(self.client().signup(name), 201)
        for other in (name, name.lower(), name.upper(), name.swapcase()):
            r = self.client().signup(other, "another password 1")
            self.assertProblem(r, 409, "username_taken", "signing up %r after %r" % (other, name))

    def test_username_taken_keeps_first_password(self):
        name = unique_name()
        self.assertStatus(self.client().signup(name, "first password"), 201)
        self.assertStatus(self.client().signup(name.upper(), "second password"), 409)
        self.assertStatus(self.client().login(name, "first password"), 200)
        self.assertProblem(self.client().login(name, "second password"), 401, "invalid_credentials")

    def test_login_is_case_insensitive_on_username(self):
        name = "CaSe" + unique_name()
        self.assertStatus(self.client().signup(name), 201)
        r = self.client().login(name.lower())
        self.assertStatus(r, 200, "usernames are compared case-insensitively")

    def test_signup_bad_bodies(self):
        cases = [
            b"{", b"not json", b"[]", b'"str"', b"null", b"42", b"",
            b'{"username":"a","username":"b","password":"xxxxxxxxxx"}',
            b'{"username":1,"password":"xxxxxxxxxx"}',
            b'{"username":"ok_name","password":12345678}',
            b'{"username":null,"password":"xxxxxxxxxx"}',
            b'{"username":["a"],"password":"xxxxxxxxxx"}',
            b'{"username":"ok_name"}',
            b'{"password":"xxxxxxxxxx"}',
            b"{}",
            b'{"username":"\xff\xfe","password":"xxxxxxxxxx"}',
            b'{"username":"ok_name","password":"xxxxxxxxxx"} trailing',
        ]
        for raw in cases:
            r = self.client().post("/v1/users", raw=raw)
            self.assertNot5xx(r, repr(raw))
            self.assertProblem(r, 400, "invalid_request", "body %r" % raw)


class PasswordChangeTest(ServerTestCase):

    def _change(self, c, current, new, **kw):
        kw.setdefault("csrf", c.csrf)
        return c.post("/v1/users/me/password",
                      {"current_password": current, "new_password": new}, **kw)

    def test_success_revokes_others_and_renews_current(self):
        name, uid = self.new_user()
        a, la = self.logged_in(username=name)
        b, lb = self.logged_in(username=name)
        old_a = a.session_cookie
        old_b = b.session_cookie
        r = self._change(a, PASSWORD, "a brand new password")
        self.assertStatus(r, 204)
        self.assertNoStore(r)
        # The current session gets a new id: a new cookie comes back.
        cookies = [sc for sc in r.set_cookies() if sc[0] == self.server.cookie_name]
        self.assertEqual(len(cookies), 1, "password change must set a new session cookie\n" + r.describe())
        self.assertNotEqual(cookies[0][1], old_a, "the cookie value must change")
        self.assertNotEqual(a.session_cookie, old_a)
        # The new cookie works, with a new session id; the old value does not.
        r = a.session()
        self.assertStatus(r, 200, "the renewed cookie")
        self.assertEqual(r.json["user"]["id"], uid)
        self.assertNotEqual(r.json["session"]["id"], la["session"]["id"], "the session id must change")
        self.assertSessionDead(old_a, msg="the cookie value from before the change")
        # Every other session of the user is gone.
        self.assertSessionDead(old_b, msg="another session of the user")
        # The password itself changed.
        self.assertProblem(self.client().login(name, PASSWORD), 401, "invalid_credentials")
        self.assertStatus(self.client().login(name, "a brand new password"), 200)
        # The renewed session carries a working CSRF token (GET /v1/session gives it).
        a.csrf = a.session().json["csrf_token"]
        self.assertStatus(a.logout(), 204, "logout with the renewed session")

    def test_other_users_sessions_untouched(self):
        a, _ = self.logged_in()
        other, _ = self.logged_in()
        self.assertStatus(self._change(a, PASSWORD, "another new password"), 204)
        self.assertSessionAlive(other.session_cookie, msg="a different user's session")

    def test_wrong_current_password(self):
        name, _ = self.new_user()
        a, _ = self.logged_in(username=name)
        b, _ = self.logged_in(username=name)
        r = self._change(a, "not the password", "a brand new password")
        self.assertStatus(r, 401)
        self.assertProblem(r, 401)
        # Nothing changed.
        self.assertSessionAlive(a.session_cookie)
        self.assertSessionAlive(b.session_cookie)
        self.assertStatus(self.client().login(name, PASSWORD), 200)

    def test_weak_new_password(self):
        name, _ = self.new_user()
        a, _ = self.logged_in(username=name)
        for new in ("short", "1234567", "z" * 257):
            r = self._change(a, PASSWORD, new)
            self.assertProblem(r, 400, "weak_password", "new password of %d bytes" % len(new))
        self.assertSessionAlive(a.session_cookie)
        self.assertStatus(self.client().login(name, PASSWORD), 200)

    def test_needs_session(self):
        r = self.client().post("/v1/users/me/password",
                               {"current_password": PASSWORD, "new_password": "whatever new pw"})
        self.assertProblem(r, 401, "unauthenticated")
        r = self.client().post("/v1/users/me/password",
                               {"current_password": PASSWORD, "new_password": "whatever new pw"},
                               cookie="__Host-tessera=garbage", csrf="garbage")
        self.assertProblem(r, 401, "unauthenticated")

    def test_needs_csrf_token(self):
        name, _ = self.new_user()
        a, _ = self.logged_in(username=name)
        for kw, why in (({"csrf": None}, "no X-CSRF-Token"),
                        ({"csrf": "wrong-token"}, "wrong X-CSRF-Token"),
                        ({"origin": "https://evil.example"}, "foreign Origin"),
                        ({"sec_fetch_site": "cross-site"}, "Sec-Fetch-Site: cross-site")):
            r = a.post("/v1/users/me/password",
                       {"current_password": PASSWORD, "new_password": "hijacked password"},
                       **dict({"csrf": a.csrf}, **kw))
            self.assertProblem(r, 403, "csrf", why)
        self.assertStatus(self.client().login(name, PASSWORD), 200, "the password must be unchanged")
        self.assertSessionAlive(a.session_cookie)

    def test_bad_bodies(self):
        a, _ = self.logged_in()
        for raw in (b"{", b"[]", b'{"current_password":"%s"}' % PASSWORD.encode(),
                    b'{"new_password":"xxxxxxxxxxxx"}',
                    b'{"current_password":1,"new_password":"xxxxxxxxxxxx"}',
                    b'{"current_password":"a","current_password":"b","new_password":"xxxxxxxxxxxx"}'):
            r = a.post("/v1/users/me/password", raw=raw, csrf=a.csrf)
            self.assertNot5xx(r, repr(raw))
            self.assertProblem(r, 400, "invalid_request", repr(raw))
        self.assertSessionAlive(a.session_cookie)


class SignupClosedTest(ServerTestCase):
    """signup.open=false, plus a custom cookie name and SameSite=Strict."""

    SERVER_ENV = {
        "TESSERA_SIGNUP_OPEN": "false",
        "TESSERA_SESSION_COOKIE_NAME": "__Host-custom",
        "TESSERA_SESSION_SAME_SITE": "Strict",
    }

    def test_signup_closed(self):
        r = self.client().signup(unique_name())
        self.assertProblem(r, 403, "signup_closed")
        self.assertCommonHeaders(r)

    def test_admin_can_still_create_users(self):
        name, uid = self.admin_user([])
        c = self.client()
        r = c.login(name)
        self.assertStatus(r, 200)
        self.assertEqual(r.json["user"]["id"], uid)

    def test_cookie_name_and_same_site_from_config(self):
        name, _ = self.admin_user([])
        c = self.client()
        r = c.login(name)
        self.assertStatus(r, 200)
        cookies = r.set_cookies()
        self.assertEqual([n for n, _, _ in cookies], ["__Host-custom"], r.describe())
        self.assertEqual(cookies[0][2].get("samesite"), "Strict", r.describe())
        self.assertStatus(c.session(), 200)
        # The default name means nothing to this server.
        r = Client(self.server).session(cookie="__Host-tessera=" + c.session_cookie)
        self.assertProblem(r, 401, "unauthenticated")
