#!/usr/bin/env python3
"""services.py: throw-away PostgreSQL and Redis servers for tests, on free
loopback ports, in temporary folders, stopped (by the PIDs we started) at the end.

As a wrapper:
    python3 tests/support/services.py [--pg] [--redis] -- CMD ARGS...
runs CMD with TSR_TEST_PG_URL and/or TSR_TEST_REDIS_URL exported, then stops the
servers and exits with CMD's status.

From Python:
    import services
    with services.Postgres() as pg, services.Redis() as rd:
        pg.url, rd.url; rd.stop(); rd.start()   # a restart on the same port

PostgreSQL refuses to run as root, so when we are root the cluster is created and
run as the unprivileged user `nobody` (its folder is handed to that user); the
database `tessera` and superuser role `tessera` use trust auth on 127.0.0.1 only,
with no Unix socket outside the cluster's own folder.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    """A port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, proc, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


def _as_unprivileged():
    """(preexec_fn, owner uid, gid): drop to `nobody` when we are root."""
    if os.geteuid() != 0:
        return None, None, None
    import pwd
    pw = pwd.getpwnam("nobody")
    uid, gid = pw.pw_uid, pw.pw_gid

    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return drop, uid, gid


class Postgres:
    """One PostgreSQL cluster; start() again after stop() reuses folder and port."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="tsr-pg-")
        self.data = os.path.join(self.dir, "data")
        self.proc = None
        self.url = f"postgresql://tessera@127.0.0.1:{self.port}/tessera"
        self._drop, uid, gid = _as_unprivileged()
        if uid is not None:
            os.chown(self.dir, uid, gid)
        env = dict(os.environ, LC_ALL="C", LANG="C")
        r = subprocess.run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust",
                            "-U", "tessera", "-E", "UTF8", "--no-sync"],
                           preexec_fn=self._drop, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, cwd=self.dir)
        if r.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError("initdb failed:\n" + r.stdout.decode(errors="replace"))
        self._created_db = False

    def start(self):
        if self.proc is not None:
            return self
        log = open(os.path.join(self.dir, "postgres.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port),
             "-k", self.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on",
             "-c", "max_connections=200", "-c", "shared_buffers=128MB"],
            preexec_fn=self._drop, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
            env=dict(os.environ, LC_ALL="C", LANG="C"))
        log.close()
        try:
            self._wait_ready()
        except Exception:
            self.stop()
            raise
        if not self._created_db:
            self.psql("CREATE DATABASE tessera", db="postgres")
            self._created_db = True
        return self

    def _wait_ready(self, timeout=30.0):
        _wait_port(self.port, self.proc, "postgres", timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-h", "127.0.0.1",
                                "-p", str(self.port), "-U", "tessera", "-d", "postgres"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("postgres not ready")

    def psql(self, sql, db="tessera"):
        """Runs SQL with psql; returns its stdout (unaligned, tuples only)."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", "tessera",
                            "-d", db, "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError("psql failed: " + r.stderr.decode(errors="replace"))
        return r.stdout.decode()

    def stop(self, kill=False):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # SIGINT: fast shutdown (rolls back open transactions); SIGKILL on request.
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class Redis:
    """One redis-server without persistence; start() after stop() reuses the port."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="tsr-redis-")
        self.proc = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        if self.proc is not None:
            return self
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", self.dir, "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        try:
            _wait_port(self.port, self.proc, "redis-server")
        except Exception:
            self.stop()
            raise
        return self

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return r.stdout.decode()

    def stop(self, kill=False):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def main(argv):
    want_pg = want_redis = False
    i = 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] == "--pg":
            want_pg = True
        elif argv[i] == "--redis":
            want_redis = True
        else:
            print(f"services.py: unknown option {argv[i]}", file=sys.stderr)
            return 2
        i += 1
    cmd = argv[i + 1:]
    if not cmd:
        print("usage: services.py [--pg] [--redis] -- CMD ARGS...", file=sys.stderr)
        return 2
    env = dict(os.environ)
    started = []
    try:
        if want_pg:
            pg = Postgres()
            started.append(pg)
            pg.start()
            env["TSR_TEST_PG_URL"] = pg.url
        if want_redis:
            rd = Redis()
            started.append(rd)
            rd.start()
            env["TSR_TEST_REDIS_URL"] = rd.url
        # Forward SIGTERM/SIGINT (ctest timeouts) so servers are still stopped.
        proc = subprocess.Popen(cmd, env=env)

        def forward(sig, _frame):
            proc.send_signal(sig)
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return proc.wait()
    finally:
        for s in reversed(started):
            s.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
