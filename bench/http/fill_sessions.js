// fill_sessions.js: writes the SQL that grows tessera's SQLite sessions table to a
// given number of rows, for the session look-up cost part of bench/http/run.sh.
//
//   node fill_sessions.js --have H --to N --known K --cookies FILE [--cookie-name NAME] [--slides]
//        | sqlite3 tessera.db
//
// H is the current row count (run.sh asks sqlite3), N the wanted one. The N - H new
// rows are live cookie sessions (kind 1, expiring in a day) of filler users, at most
// 50 sessions per user (under the default per-user cap of 100), users created as
// needed. K of the new rows (default 1000) get a secret generated here: their cookies
// ("NAME=<43 base64url chars>", one a line) go to FILE so that wrk can present them;
// secret_hash is SHA-256 of the 32-byte secret, exactly as tessera stores it.
// Their last_seen_at decides whether verifying them writes: tessera slides the idle
// expiry (one UPDATE) when last_seen_at is a minute old or more. By default it is an
// hour ahead, so that no verify during the bench writes and the figure is the look-up
// alone. With --slides it is spread over the past minute (row i: now - i mod 60): each
// known session then gets its slide within the next minute, at a steady 1000/60 writes
// per second as on a live site (not one burst of 1000), and again a minute later. The other
// rows get randomblob(32) hashes (nobody knows their secret, which changes nothing for a
// look-up). The known rows are spread evenly through the new rows, so that they sit all
// over the table, not in one corner of it; the hashes are random, so their index entries
// are spread over the whole secret_hash index anyway.
//
// Columns are named explicitly (src/store/sqlite/sqlite.c, migration 1): later
// migrations that add columns with defaults do not break it. The server must be
// stopped while it runs (run.sh does so); the script ends with a WAL checkpoint.
"use strict";

const crypto = require("crypto");
const fs = require("fs");

function arg(name, dflt) {
  const i = process.argv.indexOf("--" + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const have = Number(arg("have", "0"));
const to = Number(arg("to", "0"));
const cookieName = arg("cookie-name", "__Host-tessera");
const cookiesFile = arg("cookies", "");
const add = Math.max(0, to - have);
const known = Math.min(add, Number(arg("known", "1000")));
const slides = process.argv.includes("--slides");
const PER_USER = 50;

if (!Number.isInteger(have) || !Number.isInteger(to) || to < 0 || cookiesFile === "") {
  console.error("usage: fill_sessions.js --have H --to N [--known K] --cookies FILE");
  process.exit(2);
}

const now = Math.floor(Date.now() / 1000);
const exp = now + 86400;
const out = [];
const cookies = [];
const w = (s) => out.push(s);

w("PRAGMA synchronous=OFF;");
w("PRAGMA cache_size=-262144;"); // 256 MiB: random-key index inserts stay in memory
w("BEGIN;");
// Filler users fill_u_0 .. fill_u_{M-1}, M = ceil(to / PER_USER); existing ones are kept.
const users = Math.max(1, Math.ceil(to / PER_USER));
w(
  "WITH RECURSIVE u(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM u WHERE n + 1 < " + users + ") " +
    "INSERT OR IGNORE INTO users (id, username, username_lc, pwhash, roles, disabled, created_at, updated_at) " +
    "SELECT 'usr_fill_' || n, 'fill_u_' || n, 'fill_u_' || n, '!bench-filler-no-login', '', 0, " +
    now + ", " + now + " FROM u;",
);

const cols =
  "INSERT INTO sessions (id, secret_hash, user_id, kind, created_at, last_seen_at, expires_at, " +
  "idle_expires_at, ip, user_agent) ";
// Row k of this fill (0-based, global index have + k) belongs to user (have + k) / PER_USER.
function fillerRange(start, count) {
  if (count <= 0) return;
  w(
    "WITH RECURSIVE s(n) AS (SELECT " + start + " UNION ALL SELECT n + 1 FROM s WHERE n + 1 < " +
      (start + count) + ") " + cols +
      "SELECT 'ses_fill' || lower(hex(randomblob(12))), randomblob(32), 'usr_fill_' || (n / " +
      PER_USER + "), 1, " + now + ", " + now + ", " + exp + ", " + exp +
      ", '127.0.0.1', 'bench-fill' FROM s;",
  );
}

let pos = have;
const stride = known > 0 ? add / known : add;
for (let i = 0; i < known; i++) {
  // the known row sits at the start of its stride; fillers up to the next one
  const secret = crypto.randomBytes(32);
  const hash = crypto.createHash("sha256").update(secret).digest("hex");
  cookies.push(cookieName + "=" + secret.toString("base64url"));
  w(
    cols + "VALUES ('ses_fillk" + crypto.randomBytes(10).toString("hex") + "', X'" + hash +
      "', 'usr_fill_" + Math.floor(pos / PER_USER) + "', 1, " + now + ", " +
      (slides ? now - (i % 60) : now + 3600) + ", " + exp + ", " + exp +
      ", '127.0.0.1', 'bench-fill-known');",
  );
  pos++;
  const next = have + Math.round((i + 1) * stride);
  fillerRange(pos, next - pos);
  pos = next;
}
fillerRange(pos, have + add - pos);
w("COMMIT;");
w("PRAGMA wal_checkpoint(TRUNCATE);");

fs.writeFileSync(cookiesFile, cookies.join("\n") + (cookies.length ? "\n" : ""));
process.stdout.write(out.join("\n") + "\n");
