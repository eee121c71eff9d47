// token_sizes.js: credential sizes for bench/http/run.sh, as a Markdown table.
//
//   node token_sizes.js FILE
//
// FILE is JSON written by run.sh from real tessera answers:
//   { "cookie":  "__Host-tessera=<secret>",           // the Cookie header value
//     "refresh": "<refresh token>",                    // from POST /v1/oauth/token
//     "tokens":  { "HS256": "<access token>", ... },   // one per algorithm
//     "twins":   { "HS256 (peers' twin)": "<token>" }  // optional: the peers' HS256 token
//   }
// For each credential: the bytes of the value, the bytes the client sends for it on
// every request (the whole header line with its CRLF: "Cookie: ...\r\n" or
// "Authorization: Bearer ...\r\n"), and for a JWT the base64url lengths of its three
// parts plus the decoded header and claim names. Prints sizes and names only, never a
// credential's value.
"use strict";

const fs = require("node:fs");

function fail(msg) {
  console.error("token_sizes: " + msg);
  process.exit(2);
}

const file = process.argv[2];
if (!file) fail("usage: node token_sizes.js FILE");
const input = JSON.parse(fs.readFileSync(file, "utf8"));

const rows = [];
function jwtRow(label, tok) {
  const p = tok.split(".");
  if (p.length !== 3) fail(`${label}: not a compact JWS`);
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(p[0], "base64url").toString("utf8"));
    claims = JSON.parse(Buffer.from(p[1], "base64url").toString("utf8"));
  } catch (e) {
    fail(`${label}: undecodable header or claims`);
  }
  rows.push({
    label,
    kind: "access token (JWT)",
    value: tok.length,
    wire: Buffer.byteLength(`Authorization: Bearer ${tok}\r\n`),
    parts: `${p[0].length} + ${p[1].length} + ${p[2].length}`,
    what: `header {${Object.keys(header).join(",")}}, claims {${Object.keys(claims).join(",")}}`,
  });
}

if (typeof input.cookie === "string" && input.cookie) {
  const eq = input.cookie.indexOf("=");
  rows.push({
    label: "cookie mode",
    kind: "session cookie",
    value: input.cookie.length,
    wire: Buffer.byteLength(`Cookie: ${input.cookie}\r\n`),
    parts: "-",
    what: `name ${input.cookie.slice(0, eq)} (${eq} B) + an opaque secret of ${input.cookie.length - eq - 1} chars`,
  });
}
for (const [alg, tok] of Object.entries(input.tokens || {})) jwtRow(`token mode, ${alg}`, tok);
for (const [label, tok] of Object.entries(input.twins || {})) jwtRow(label, tok);
if (typeof input.refresh === "string" && input.refresh) {
  rows.push({
    label: "token mode, refresh token",
    kind: "opaque (sent to /v1/oauth/token only)",
    value: input.refresh.length,
    wire: Buffer.byteLength(`grant_type=refresh_token&refresh_token=${input.refresh}`),
    parts: "-",
    what: "form body of a refresh, not sent on verify",
  });
}
if (rows.length === 0) fail("nothing to measure");

const out = [];
out.push("| credential | kind | value B | sent per request B | JWT parts (b64url chars) | what it holds |");
out.push("|---|---|---:|---:|---|---|");
for (const r of rows) out.push(`| ${r.label} | ${r.kind} | ${r.value} | ${r.wire} | ${r.parts} | ${r.what} |`);
process.stdout.write(out.join("\n") + "\n");
