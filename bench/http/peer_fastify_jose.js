// peer_fastify_jose.js: the second bearer-token peer of bench/http/run.sh: fastify with
// a route that verifies with `jose` (panva), the library SPEC §4 names as the one any
// client must be able to verify tessera's tokens with.
//
//   node peer_fastify_jose.js --alg HS256 --port P [--workers 1|2] --iss URL --aud tessera \
//        --secret-file FILE
//   node peer_fastify_jose.js --alg ES256 --port P [--workers 1|2] --iss URL --aud tessera \
//        --jwks FILE
//
// GET /v1/verify with `Authorization: Bearer <JWT>`: jose's jwtVerify with the
// algorithm pinned, typ "at+jwt", issuer, audience, exp required, 30 s of clock
// tolerance; the key is the secret's bytes (HS256) or createLocalJWKSet over tessera's
// JWKS document (ES256: the kid picks the key, imported once and kept by jose). 200 with
// {sub, sid, method, roles, exp} and X-Auth-* headers, as tessera answers; else 401 with
// WWW-Authenticate. Any other path: 404. --workers 2: a node:cluster of 2 processes.
//
// Also the HS256 twin maker of run.sh (tessera never publishes an HMAC secret, so the
// HS256 peers verify an equivalent token, not tessera's own):
//
//   node peer_fastify_jose.js --sign-like --secret-file FILE < tessera-token
//
// prints a token with the same protected header (alg HS256, typ, kid) and the same
// claims (same values: iss, sub, aud, exp, iat, nbf, jti, sid, scope, roles), signed by
// jose's SignJWT with the secret; an HMAC-SHA256 tag is as long as any other, so the
// twin has tessera's token's size (give or take the JSON spacing of the two encoders).
"use strict";

const cluster = require("node:cluster");
const fs = require("node:fs");

function arg(name, dflt) {
  const i = process.argv.indexOf("--" + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const has = (name) => process.argv.includes("--" + name);

function fail(msg) {
  console.error("peer_fastify_jose: " + msg);
  process.exit(2);
}

function readSecret() {
  const f = arg("secret-file", "");
  if (!f) fail("HS256 needs --secret-file");
  const s = fs.readFileSync(f, "utf8").trim();
  if (s.length < 32) fail("the secret is too short");
  return new TextEncoder().encode(s);
}

async function signLike() {
  const jose = await import("jose");
  const token = fs.readFileSync(0, "utf8").trim();
  const parts = token.split(".");
  if (parts.length !== 3) fail("--sign-like: stdin is not a compact JWS");
  const header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
  const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
  const h = { alg: "HS256" };
  if (header.typ) h.typ = header.typ;
  if (header.kid) h.kid = header.kid;
  const twin = await new jose.SignJWT(claims).setProtectedHeader(h).sign(readSecret());
  process.stdout.write(twin + "\n");
}

async function serve(alg, port, iss, aud) {
  const jose = await import("jose");
  let key;
  if (alg === "HS256") {
    key = readSecret();
  } else {
    const f = arg("jwks", "");
    if (!f) fail("ES256 needs --jwks");
    key = jose.createLocalJWKSet(JSON.parse(fs.readFileSync(f, "utf8")));
  }
  const opts = {
    algorithms: [alg],
    issuer: iss,
    audience: aud,
    typ: "at+jwt",
    requiredClaims: ["exp"],
    clockTolerance: 30,
  };

  const fastify = require("fastify")({ logger: false });
  fastify.get("/v1/verify", async (request, reply) => {
    const h = request.headers.authorization;
    let t;
    try {
      if (typeof h !== "string" || h.slice(0, 7).toLowerCase() !== "bearer ") throw new Error("no bearer");
      t = (await jose.jwtVerify(h.slice(7).trim(), key, opts)).payload;
    } catch (e) {
      reply.code(401);
      reply.header("WWW-Authenticate", 'Bearer realm="peer", error="invalid_token"');
      reply.header("Cache-Control", "no-store");
      return { error: "invalid_token" };
    }
    const roles = Array.isArray(t.roles) ? t.roles : [];
    reply.header("Cache-Control", "no-store");
    reply.header("X-Auth-Subject", t.sub);
    if (roles.length) reply.header("X-Auth-Roles", roles.join(","));
    reply.header("X-Auth-Session", t.sid);
    reply.header("X-Auth-Method", "bearer");
    return { sub: t.sub, sid: t.sid, method: "bearer", roles, exp: t.exp };
  });

  await fastify.listen({ port, host: "127.0.0.1" });
  const stop = () => fastify.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

function main() {
  if (has("sign-like")) return signLike().catch((e) => fail(e.stack || String(e)));

  const alg = arg("alg", "HS256");
  const port = Number(arg("port", "0"));
  const workers = Number(arg("workers", "1"));
  const iss = arg("iss", "");
  const aud = arg("aud", "tessera");
  if (alg !== "HS256" && alg !== "ES256") fail("--alg must be HS256 or ES256");
  if (!(port > 0 && port < 65536)) fail("--port is required");
  if (workers !== 1 && workers !== 2) fail("--workers must be 1 or 2");
  if (!iss) fail("--iss is required");

  if (workers > 1 && cluster.isPrimary) {
    let stopping = false;
    const stopAll = () => {
      stopping = true;
      for (const id in cluster.workers) cluster.workers[id].kill("SIGTERM");
    };
    for (let i = 0; i < workers; i++) cluster.fork();
    cluster.on("exit", (w, code) => {
      if (!stopping) {
        console.error(`peer_fastify_jose: worker ${w.process.pid} died (${code}); stopping`);
        process.exitCode = 1;
        stopAll();
      }
      if (Object.keys(cluster.workers).length === 0) process.exit();
    });
    process.on("SIGTERM", stopAll);
    process.on("SIGINT", stopAll);
    return;
  }
  serve(alg, port, iss, aud).catch((e) => fail(e.stack || String(e)));
}

main();
