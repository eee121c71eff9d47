// revocation_delay.js: how long an access token (or a session cookie) keeps being
// accepted by GET /v1/verify after its session (or the token itself) was revoked,
// measured from the client's side: on one tessera instance (bench/http/run.sh), or
// across two (bench/http/cluster.sh: revoked on --url, verified on --verify-url).
//
//   node revocation_delay.js --url http://127.0.0.1:P --username U --password PW
//        [--verify-url http://127.0.0.1:Q] [--kind refresh|access|cookie|session]
//        [--n 200] [--window-ms 2000] [--jitter-ms 0] [--label L]
//
// --url is where tokens are issued and revoked (instance A); --verify-url (default:
// --url) is where GET /v1/verify is sent (instance B). Both must be instances of one
// deployment (same store, same tokens.issuer).
//
// Each of the n iterations:
//   1. gets a fresh access token:
//        refresh: POST /v1/oauth/token grant_type=password (a new refresh family,
//                 i.e. a new session and sid, every time);
//        access:  one password grant, then a refresh grant per iteration (the same
//                 family; a new access token with a new jti each time);
//        cookie:  POST /v1/session/login, then POST /v1/session/token (hybrid: an
//                 access token bound to the cookie session's sid);
//        session: POST /v1/session/login; the credential verified is the cookie itself
//                 (GET /v1/verify with Cookie, no token);
//   2. verifies it twice (both must answer 200; the second is normally answered from
//      the verified-token cache when it is on: revocation has to beat the cache), and
//      keeps the second round trip as the verify RTT of this iteration;
//   3. waits a random 0..jitter-ms (uniform; default 0: no wait), so that the revokes
//      do not fall in step with a periodic process on the server (the 100 ms
//      revocation-log sync of cache.url=memory: without it, each iteration ends right
//      after a sync and the next revoke lands at the same phase of the next period);
//      then revokes, and notes the instant its answer was fully read (t0):
//        refresh: POST /v1/oauth/revoke token=<refresh token> (RFC 7009; ends the
//                 family: the token client's logout; the sid joins the revoked set)
//        access:  POST /v1/oauth/revoke token=<access token> (its jti joins the set)
//        cookie, session: POST /v1/session/logout with the cookie and X-CSRF-Token
//   4. sends GET /v1/verify with the old access token (session: the old cookie), one
//      request at a time, until one answers 401 (t1) or window-ms passes. Every 200
//      answered in between is a stale accept.
// delay = t1 - t0: it includes the one verify round trip that observes the refusal,
// so a revocation that is in force when the revoke call returns shows up as one RTT
// (the verify RTT column), not as 0. Revoke calls and verifies go over two separate
// keep-alive connections, as a client and a reverse proxy would (with --verify-url,
// to two different instances).
//
// Prints a human summary on stderr and one line for run.sh and cluster.sh on stdout:
//   RESULT label=.. kind=.. n=.. refused=.. never=.. stale=.. p50_ms=.. p99_ms=..
//          max_ms=.. rtt_p50_ms=.. rtt_p99_ms=..
// never = iterations in which no verify refused the token within window-ms (expected
// in stateless mode only); p50/p99/max are over the refused iterations. Exit status 0
// when it could measure (whatever it measured), 1 when a step failed.
"use strict";

const http = require("node:http");

function arg(name, dflt) {
  const i = process.argv.indexOf("--" + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
function fail(msg) {
  console.error("revocation_delay: " + msg);
  process.exit(1);
}

const BASE = new URL(arg("url", ""));
const VERIFY_BASE = new URL(arg("verify-url", arg("url", "")));
const USERNAME = arg("username", "");
const PASSWORD = arg("password", "");
const KIND = arg("kind", "refresh");
const N = Number(arg("n", "200"));
const WINDOW_MS = Number(arg("window-ms", "2000"));
const LABEL = arg("label", KIND);
const JITTER_MS = Number(arg("jitter-ms", "0"));
if (!USERNAME || !PASSWORD) fail("--username and --password are required");
if (!["refresh", "access", "cookie", "session"].includes(KIND))
  fail("--kind must be refresh, access, cookie or session");
if (!(N > 0) || !(WINDOW_MS > 0)) fail("--n and --window-ms must be positive");
if (!(JITTER_MS >= 0)) fail("--jitter-ms must be 0 or more");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const authAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const verifyAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

// One request to BASE (or to base when given); resolves {status, headers, body, t}
// with t = hrtime (ns) when the whole answer has been read.
function request(agent, method, path, headers, body, base = BASE) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: base.hostname, port: base.port, method, path, headers, agent, timeout: 10000 },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
            t: process.hrtime.bigint(),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const form = (o) => new URLSearchParams(o).toString();
const FORM = { "Content-Type": "application/x-www-form-urlencoded" };
const JSONH = { "Content-Type": "application/json" };

async function passwordGrant() {
  const r = await request(authAgent, "POST", "/v1/oauth/token", FORM,
    form({ grant_type: "password", username: USERNAME, password: PASSWORD }));
  if (r.status !== 200) fail(`password grant answered ${r.status}: ${r.body.slice(0, 200)}`);
  const j = JSON.parse(r.body);
  if (!j.access_token || !j.refresh_token) fail("password grant: no access_token or refresh_token");
  return j;
}

async function refreshGrant(rt) {
  const r = await request(authAgent, "POST", "/v1/oauth/token", FORM,
    form({ grant_type: "refresh_token", refresh_token: rt }));
  if (r.status !== 200) fail(`refresh grant answered ${r.status}: ${r.body.slice(0, 200)}`);
  const j = JSON.parse(r.body);
  if (!j.access_token || !j.refresh_token) fail("refresh grant: no access_token or refresh_token");
  return j;
}

async function cookieLogin(wantToken = true) {
  const r = await request(authAgent, "POST", "/v1/session/login", JSONH,
    JSON.stringify({ username: USERNAME, password: PASSWORD }));
  if (r.status !== 200) fail(`login answered ${r.status}: ${r.body.slice(0, 200)}`);
  const sc = [].concat(r.headers["set-cookie"] || []);
  const c = sc.length ? sc[sc.length - 1].split(";")[0] : "";
  if (!c) fail("login set no cookie");
  const csrf = JSON.parse(r.body).csrf_token;
  if (!wantToken) return { cookie: c, csrf, access_token: null };
  const t = await request(authAgent, "POST", "/v1/session/token",
    { Cookie: c, "X-CSRF-Token": csrf, "Content-Length": 0 }, "");
  if (t.status !== 200) fail(`POST /v1/session/token answered ${t.status}: ${t.body.slice(0, 200)}`);
  return { cookie: c, csrf, access_token: JSON.parse(t.body).access_token };
}

// tok: an access token (sent as a bearer token), or {cookie} (sent as the Cookie header)
const verify = (tok) =>
  request(verifyAgent, "GET", "/v1/verify",
    typeof tok === "string" ? { Authorization: "Bearer " + tok } : { Cookie: tok.cookie },
    undefined, VERIFY_BASE);

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const ms = (ns) => Number(ns) / 1e6;

async function main() {
  const delays = [];
  const rtts = [];
  let stale = 0;
  let never = 0;
  let familyRefresh = null; // kind access: the family's current refresh token
  const deadline = Date.now() + Math.max(60000, N * (WINDOW_MS + JITTER_MS + 500)); // bounded in all cases

  for (let i = 0; i < N; i++) {
    if (Date.now() > deadline) fail(`gave up after ${i} iterations (time bound)`);
    let access, revoke;
    if (KIND === "cookie" || KIND === "session") {
      const s = await cookieLogin(KIND === "cookie");
      access = KIND === "cookie" ? s.access_token : { cookie: s.cookie };
      revoke = () => request(authAgent, "POST", "/v1/session/logout",
        { Cookie: s.cookie, "X-CSRF-Token": s.csrf, "Content-Length": 0 }, "");
    } else if (KIND === "refresh") {
      const g = await passwordGrant();
      access = g.access_token;
      revoke = () => request(authAgent, "POST", "/v1/oauth/revoke", FORM,
        form({ token: g.refresh_token, token_type_hint: "refresh_token" }));
    } else {
      // access: one family for all iterations, a new access token (new jti) from a
      // refresh grant each time, so that no password is hashed per iteration
      const g = familyRefresh ? await refreshGrant(familyRefresh) : await passwordGrant();
      familyRefresh = g.refresh_token;
      access = g.access_token;
      revoke = () => request(authAgent, "POST", "/v1/oauth/revoke", FORM,
        form({ token: g.access_token, token_type_hint: "access_token" }));
    }
    const v1 = await verify(access);
    const t1 = process.hrtime.bigint();
    const v2 = await verify(access);
    if (v1.status !== 200 || v2.status !== 200) fail(`a fresh token did not verify (${v1.status}, ${v2.status})`);
    rtts.push(ms(v2.t - t1));

    if (JITTER_MS > 0) await sleep(Math.random() * JITTER_MS);
    const r = await revoke();
    if (r.status !== 200 && r.status !== 204) fail(`the revoke call answered ${r.status}: ${r.body.slice(0, 200)}`);
    const t0 = r.t;
    let refusedAt = null;
    for (;;) {
      const v = await verify(access);
      if (v.status === 401) { refusedAt = v.t; break; }
      if (v.status !== 200) fail(`verify after revoke answered ${v.status}`);
      stale++;
      if (ms(v.t - t0) > WINDOW_MS) break;
    }
    if (refusedAt === null) never++;
    else delays.push(ms(refusedAt - t0));
  }
  if (familyRefresh) {
    const a = await request(authAgent, "POST", "/v1/oauth/revoke", FORM,
      form({ token: familyRefresh, token_type_hint: "refresh_token" }));
    if (a.status !== 200) fail(`revoking the refresh token answered ${a.status}`);
  }
  authAgent.destroy();
  verifyAgent.destroy();

  delays.sort((a, b) => a - b);
  rtts.sort((a, b) => a - b);
  const f = (x) => (Number.isNaN(x) ? "nan" : x.toFixed(3));
  console.error(
    `revocation_delay ${LABEL}: ${N} revocations (${KIND}); refused within ${WINDOW_MS} ms: ${delays.length}, ` +
      `never: ${never}; stale accepts: ${stale}; delay p50 ${f(pct(delays, 50))} ms, p99 ${f(pct(delays, 99))} ms, ` +
      `max ${f(delays[delays.length - 1] ?? NaN)} ms; verify RTT p50 ${f(pct(rtts, 50))} ms, p99 ${f(pct(rtts, 99))} ms`,
  );
  console.log(
    `RESULT label=${LABEL} kind=${KIND} n=${N} refused=${delays.length} never=${never} stale=${stale} ` +
      `p50_ms=${f(pct(delays, 50))} p99_ms=${f(pct(delays, 99))} max_ms=${f(delays[delays.length - 1] ?? NaN)} ` +
      `rtt_p50_ms=${f(pct(rtts, 50))} rtt_p99_ms=${f(pct(rtts, 99))}`,
  );
}

main().catch((e) => fail(e.stack || String(e)));
