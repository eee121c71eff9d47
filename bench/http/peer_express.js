// peer_express.js: the session-cookie peer of bench/http/run.sh.
//
// express + express-session, the way the express-session README sets it up, with
// either connect-redis (a real redis-server) or express-session's default
// MemoryStore:
//
//   node peer_express.js --port P --store redis --redis redis://127.0.0.1:R
//   node peer_express.js --port P --store memory
//
// POST /login {username, password}  -> 200 and Set-Cookie connect.sid=... (the
//                                      session holds the user; no password check:
//                                      the bench compares verify, not hashing)
// GET  /verify                       -> 200 {user} when req.session.user, else 401
//
// Settings: resave false, saveUninitialized false (nothing stored for anonymous
// requests), cookie maxAge 30 min like tessera's idle TTL. With those, express-session
// on every verify reads the session from the store and, as the session was not
// modified, calls the store's touch (connect-redis: EXPIRE) to slide the expiry:
// the same read + slide tessera does (tessera writes the slide at most once a minute).
// One process (node is single-threaded); stops on SIGTERM/SIGINT.
"use strict";

const express = require("express");
const session = require("express-session");

function arg(name, dflt) {
  const i = process.argv.indexOf("--" + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

async function main() {
  const port = Number(arg("port", "0"));
  const storeKind = arg("store", "memory");
  let store; // undefined: express-session's MemoryStore
  let client = null;

  if (storeKind === "redis") {
    const { createClient } = require("redis");
    const { RedisStore } = require("connect-redis");
    client = createClient({ url: arg("redis", "redis://127.0.0.1:6379") });
    client.on("error", (e) => console.error("redis:", e.message));
    await client.connect();
    store = new RedisStore({ client, prefix: "sess:" });
  } else if (storeKind !== "memory") {
    throw new Error("--store must be redis or memory");
  }

  const app = express();
  app.disable("x-powered-by");
  app.use(
    session({
      store,
      secret: "bench-secret-not-for-production-0123456789",
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: "lax", maxAge: 30 * 60 * 1000 },
    }),
  );

  app.post("/login", express.json({ limit: "64kb" }), (req, res, next) => {
    const b = req.body || {};
    if (typeof b.username !== "string" || typeof b.password !== "string") {
      return res.status(400).json({ error: "invalid_request" });
    }
    // a new session id at login (fixation defence), as tessera does
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = { id: "u-" + b.username, username: b.username, roles: [] };
      req.session.save((err2) => {
        if (err2) return next(err2);
        res.json({ user: req.session.user });
      });
    });
  });

  app.get("/verify", (req, res) => {
    const u = req.session && req.session.user;
    if (!u) return res.status(401).json({ error: "unauthenticated" });
    res.set("X-Auth-Subject", u.id);
    res.set("X-Auth-Username", u.username);
    res.json({ sub: u.id, method: "cookie" });
  });

  const server = app.listen(port, "127.0.0.1", () => {
    console.error(`peer_express: ${storeKind} store on 127.0.0.1:${server.address().port}`);
  });
  server.keepAliveTimeout = 65000;

  const stop = () => {
    server.close();
    server.closeAllConnections();
    if (client) client.quit().catch(() => {});
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  console.error("peer_express:", e);
  process.exit(1);
});
