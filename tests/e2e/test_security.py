"""Regression tests for findings of the security review of the server."""

import threading

from harness import ServerTestCase


class PasswordChangeGuessingTest(ServerTestCase):
    """A burst of concurrent wrong current_password guesses on one cookie is
    limited like logins are: the limit is checked again on the hashing thread."""

    SERVER_ENV = {
        "TESSERA_SECURITY_LOGIN_MAX_FAILURES": "3",
        "TESSERA_SERVER_THREADS": "2",  # one hashing thread: guesses are serialised
    }

    def test_concurrent_wrong_current_passwords_are_rate_limited(self):
        c, _ = self.logged_in()
        statuses = []
        lock = threading.Lock()

        def guess(i):
            r = c.post("/v1/users/me/password",
                       {"current_password": "wrong guess %02d" % i,
                        "new_password": "a brand new passphrase"},
                       csrf=c.csrf)
            with lock:
                statuses.append(r.status)

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(statuses), 12)
        self.assertTrue(all(s in (401, 429) for s in statuses), statuses)
        # At most the limit of guesses is evaluated (the old code evaluated all 12).
        self.assertLessEqual(statuses.count(401), 3, statuses)
        self.assertGreaterEqual(statuses.count(429), 9, statuses)
