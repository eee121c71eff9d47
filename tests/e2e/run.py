#!/usr/bin/env python3
"""End-to-end tests of `tessera serve`: real processes, real HTTP on loopback.

usage: run.py BINARY [-v|-q] [-k PATTERN ...] [TEST ...]

  BINARY       the tessera executable (build/tessera or build-asan/tessera)
  -k PATTERN   only tests whose id contains PATTERN (may repeat; unittest -k)
  TEST         test names as unittest takes them, e.g. test_session.SessionTest
               or test_admin.AdminTest.test_delete_user. Without TEST, every
               test_*.py except test_cluster and test_nginx (PostgreSQL, Redis
               and nginx; the e2e_cluster entry names them)

Exit status 0 when every test passes, 1 otherwise, 2 on a usage error.
Environment: TESSERA_E2E_KEEP=1 keeps every server's temp dir (DB and logs);
TESSERA_E2E_START_TIMEOUT / _STOP_TIMEOUT / _HTTP_TIMEOUT (seconds) bound the
waits on the server. Python's standard library only; the interop tests also
run node with `jose` from tests/e2e/interop (installed by scripts/e2e-npm).
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

# Suites that need PostgreSQL, Redis and nginx and have their own ctest entry
# (e2e_cluster: run.py BINARY test_cluster test_nginx): named explicitly they
# run, the default discovery leaves them out so that no entry runs them twice.
SEPARATE_MODULES = ("test_cluster", "test_nginx")


def _without(suite, modules):
    """The suite minus every test (or failed import) of the named modules."""
    kept = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            sub = _without(t, modules)
            if sub.countTestCases():
                kept.addTest(sub)
        elif t.id().split(".")[0] not in modules and \
                t.id().split(".")[-1] not in modules:
            kept.addTest(t)
    return kept


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        return 2 if len(argv) < 2 else 0
    binary = os.path.abspath(argv[1])
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        sys.stderr.write("run.py: %s is not an executable file\n" % argv[1])
        return 2
    sys.path.insert(0, HERE)
    import harness

    harness.BINARY = binary
    os.environ["TESSERA_BIN"] = binary

    verbosity = 2
    patterns = []
    names = []
    args = argv[2:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-q":
            verbosity = 1
        elif a == "-v":
            verbosity = 2
        elif a == "-k" and i + 1 < len(args):
            patterns.append(args[i + 1])
            i += 1
        elif a.startswith("-"):
            sys.stderr.write("run.py: unknown option %s\n" % a)
            return 2
        else:
            names.append(a)
        i += 1

    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = ["*%s*" % p for p in patterns]
    if names:
        suite = loader.loadTestsFromNames(names)
    else:
        suite = _without(loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE),
                         SEPARATE_MODULES)
    if suite.countTestCases() == 0:
        sys.stderr.write("run.py: no tests selected\n")
        return 2
    sys.stdout.write("tessera e2e: %s, %d tests\n" % (binary, suite.countTestCases()))
    sys.stdout.flush()
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=verbosity,
                                     buffer=False).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
