-- cluster_fill_pg.sql: grows tessera's PostgreSQL sessions table to :to rows, for the
-- session look-up cost part of bench/http/cluster.sh (the PostgreSQL twin of
-- fill_sessions.js, all in SQL, no client-side loop).
--
--   psql -X -q -At -v ON_ERROR_STOP=1 -v have=H -v to=N -v known=K -v now=UNIX_SECONDS \
--        -v salt=RANDOM_TEXT -v cookie_name=__Host-tessera -f cluster_fill_pg.sql URL >cookies.txt
--
-- H is the current row count (cluster.sh asks), N the wanted one, 1 <= K <= N - H. The
-- N - H new rows are live cookie sessions (kind 1, expiring in a day) of filler users
-- fill_u_<n / 50> (50 sessions per user, under the default per-user cap of 100; users
-- created as needed, existing ones kept). Row n (H <= n < N) has the secret
-- S(n) = SHA-256(salt || n) (32 bytes) and, exactly as tessera stores it,
-- secret_hash = SHA-256(S(n)); nobody needs the secrets of most rows, but every one is
-- derivable, so the K known rows are simply K values of n spread evenly over [H, N)
-- (every (N - H) / K-th row, so that they sit all over the table and its indexes), and
-- their cookies ("NAME=<43 base64url chars>", one a line) are the only output.
-- last_seen_at is an hour ahead: verifying these sessions never slides their idle expiry
-- (one UPDATE at most once a minute), so the figure is the look-up alone, as in
-- run.sh's part 6.
--
-- The rows go in with one INSERT ... SELECT FROM generate_series in one transaction
-- (synchronous_commit off for it: a bench fill, nothing to lose), then ANALYZE and a
-- CHECKPOINT, so that neither autovacuum's first analyze nor the fill's dirty pages land
-- in the measured rounds. Columns are named explicitly, as the backend's migrations 1
-- and 2 create them (src/store/pg/pg.c): later columns with defaults do not break it;
-- ord (an identity column) and scope, generation, sealed take their defaults. The tables
-- are the connection's search_path's, as for tessera. tessera may run meanwhile (the
-- fill is one transaction), but cluster.sh fills a database no instance is connected to.
\set ON_ERROR_STOP 1
SET synchronous_commit = off;
SET client_min_messages = warning;
BEGIN;
INSERT INTO users (id, username, pwhash, roles, disabled, created_at, updated_at)
SELECT 'usr_fill_' || u, 'fill_u_' || u, '!bench-filler-no-login', '', 0, :now, :now
FROM generate_series(:have / 50, (:to - 1) / 50) AS u
ON CONFLICT DO NOTHING;
INSERT INTO sessions (id, secret_hash, user_id, kind, created_at, last_seen_at, expires_at,
                      idle_expires_at, ip, user_agent)
SELECT 'ses_fill_' || n, sha256(sha256(convert_to(:'salt' || n, 'UTF8'))), 'usr_fill_' || (n / 50),
       1, :now, :now + 3600, :now + 86400, :now + 86400, '127.0.0.1', 'bench-fill'
FROM generate_series(:have::bigint, :to::bigint - 1) AS n;
COMMIT;
ANALYZE users;
ANALYZE sessions;
CHECKPOINT;
-- the K known cookies: base64url without padding of S(n)
SELECT :'cookie_name' || '=' ||
       rtrim(translate(encode(sha256(convert_to(:'salt' || n, 'UTF8')), 'base64'), '+/', '-_'), '=')
FROM (SELECT :have::bigint + (i * (:to::bigint - :have::bigint)) / :known AS n
      FROM generate_series(0, :known - 1) AS i) AS k;
