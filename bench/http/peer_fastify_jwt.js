// peer_fastify_jwt.js: the bearer-token peer of bench/http/run.sh named by SPEC §6:
// fastify + @fastify/jwt (which verifies with fast-jwt), set up the way its README does
// (register the plugin with the key, `await request.jwtVerify()` in the route).
//
//   node peer_fastify_jwt.js --alg HS256 --port P [--workers 1|2] --iss URL --aud tessera \
//        --secret-file FILE
//   node peer_fastify_jwt.js --alg ES256 --port P [--workers 1|2] --iss URL --aud tessera \
//        --jwks FILE [--kid KID] [--cache N]
//
// GET /v1/verify with `Authorization: Bearer <JWT>` checks what tessera's /v1/verify
// checks in its stateless mode, as far as the library can: the signature with the one
// configured key (HS256: the secret's bytes; ES256: the JWKS key of --kid, or the only
// key of that alg, as a PEM), the algorithm pinned, typ "at+jwt", iss, aud, exp
// required, exp/nbf with 30 s of clock tolerance. 200 with a small JSON body
// {sub, sid, method, roles, exp} and X-Auth-* headers, as tessera answers; else 401
// with WWW-Authenticate. Any other path: 404.
//
// --workers 2 runs a node:cluster of 2 worker processes sharing the port (the primary
// only forks and restarts nothing); 1 (the default) is one plain process.
// --cache N turns on fast-jwt's own verified-token cache (N entries; off by default,
// as in the plugin's defaults): for information only.
// Stops on SIGTERM/SIGINT (the primary passes it on to its workers).
"use strict";

const cluster = require("node:cluster");
const fs = require("node:fs");
const crypto = require("node:crypto");

function arg(name, dflt) {
  const i = process.argv.indexOf("--" + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const ALG = arg("alg", "HS256");
const PORT = Number(arg("port", "0"));
const WORKERS = Number(arg("workers", "1"));
const ISS = arg("iss", "");
const AUD = arg("aud", "tessera");
const CACHE = Number(arg("cache", "0"));

function fail(msg) {
  console.error("peer_fastify_jwt: " + msg);
  process.exit(2);
}

if (ALG !== "HS256" && ALG !== "ES256") fail("--alg must be HS256 or ES256");
if (!(PORT > 0 && PORT < 65536)) fail("--port is required");
if (WORKERS !== 1 && WORKERS !== 2) fail("--workers must be 1 or 2");
if (!ISS) fail("--iss is required");

// The verification key, as @fastify/jwt takes it: a secret, or { public: PEM }.
function loadKey() {
  if (ALG === "HS256") {
    const f = arg("secret-file", "");
    if (!f) fail("HS256 needs --secret-file");
    const s = fs.readFileSync(f, "utf8").trim();
    if (s.length < 32) fail("the secret is too short");
    return s;
  }
  const f = arg("jwks", "");
  if (!f) fail("ES256 needs --jwks");
  const kid = arg("kid", "");
  const keys = (JSON.parse(fs.readFileSync(f, "utf8")).keys || []).filter(
    (k) => k.kty === "EC" && k.crv === "P-256" && (!kid || k.kid === kid),
  );
  if (keys.length !== 1) fail(`the JWKS has ${keys.length} P-256 key(s)${kid ? " of kid " + kid : ""}; pass --kid`);
  const jwk = { kty: "EC", crv: "P-256", x: keys[0].x, y: keys[0].y };
  const pem = crypto.createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "pem" });
  return { public: pem };
}

async function serve() {
  const fastify = require("fastify")({ logger: false });
  const verify = {
    algorithms: [ALG],
    allowedIss: ISS,
    allowedAud: AUD,
    requiredClaims: ["exp"],
    checkTyp: "at+jwt",
    clockTolerance: 30000,
  };
  if (CACHE > 0) verify.cache = CACHE;
  fastify.register(require("@fastify/jwt"), { secret: loadKey(), verify });

  fastify.get("/v1/verify", async (request, reply) => {
    let t;
    try {
      t = await request.jwtVerify();
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

  await fastify.listen({ port: PORT, host: "127.0.0.1" });
  const stop = () => fastify.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (WORKERS > 1 && cluster.isPrimary) {
  let stopping = false;
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  cluster.on("exit", (w, code) => {
    if (!stopping) {
      console.error(`peer_fastify_jwt: worker ${w.process.pid} died (${code}); stopping`);
      stopping = true;
      for (const id in cluster.workers) cluster.workers[id].kill("SIGTERM");
      process.exitCode = 1;
    }
    if (Object.keys(cluster.workers).length === 0) process.exit();
  });
  const stop = () => {
    stopping = true;
    for (const id in cluster.workers) cluster.workers[id].kill("SIGTERM");
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  serve().catch((e) => fail(e.stack || String(e)));
}
