"""SPEC section 5, `tessera user ...` working on the store of a running server."""

import json
import subprocess

import harness
from harness import ServerTestCase, unique_name, PASSWORD


class CliUserTest(ServerTestCase):

    def cli(self, *args, stdin=""):
        env = self.server._env()
        p = subprocess.run([harness.BINARY, "user", *args], input=stdin.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_add_then_login_over_http_while_serving(self):
        name = unique_name("cli")
        code, out, err = self.cli("add", name, "--roles", "ops", stdin=PASSWORD + "\n")
        self.assertEqual(code, 0, err)
        self.assertNotIn(PASSWORD, out + err)
        c = self.server.client()
        r = c.login(name)
        self.assertStatus(r, 200)
        self.assertEqual(r.json["user"]["roles"], ["ops"])

    def test_show_list_disable_revoke_enable(self):
        name = unique_name("cli")
        c = self.server.client()
        self.assertStatus(c.signup(name), 201)
        self.assertStatus(c.login(name), 200)
        code, out, err = self.cli("show", name)
        self.assertEqual(code, 0, err)
        self.assertIn(name, out)
        code, out, err = self.cli("list", "--limit", "100")
        self.assertEqual(code, 0, err)
        self.assertIn(name, out)
        # revoke kills the live session at once
        self.assertEqual(self.cli("revoke", name)[0], 0)
        self.assertStatus(c.session(), 401)
        # a disabled user cannot log in; enabled again, they can
        self.assertEqual(self.cli("disable", name)[0], 0)
        self.assertStatus(c.login(name), 401)
        self.assertEqual(self.cli("enable", name)[0], 0)
        self.assertStatus(c.login(name), 200)

    def test_passwd_changes_password_and_revokes(self):
        name = unique_name("cli")
        c = self.server.client()
        self.assertStatus(c.signup(name), 201)
        self.assertStatus(c.login(name), 200)
        new = "another long passphrase"
        code, _, err = self.cli("passwd", name, stdin=new + "\n")
        self.assertEqual(code, 0, err)
        self.assertStatus(c.session(), 401)
        self.assertStatus(self.server.client().login(name), 401)
        self.assertStatus(self.server.client().login(name, password=new), 200)

    def test_errors_and_usage(self):
        self.assertEqual(self.cli("show", "usr_doesnotexist")[0], 1)
        self.assertEqual(self.cli("frobnicate")[0], 2)
        self.assertEqual(self.cli("add")[0], 2)
        code, _, _ = self.cli("add", unique_name("w"), stdin="short\n")
        self.assertEqual(code, 1)
        self.assertEqual(self.cli("--help")[0], 0)
