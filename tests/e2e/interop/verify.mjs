// verify.mjs: a relying party built on node `jose` and nothing but tessera's
// discovery document, the way SPEC section 4 ("Keys and discovery") promises
// any standard library can verify tessera's access tokens.
//
// usage: node verify.mjs DISCOVERY_URL [--iss ISS] [--aud AUD] < tokens
//
// Fetches DISCOVERY_URL, takes its jwks_uri (createRemoteJWKSet), its issuer
// (unless --iss overrides it) and its access_token_signing_alg_values_supported
// (the only algorithms accepted), and verifies every token on stdin (one a
// line) with jwtVerify: signature, typ at+jwt, iss, aud (default "tessera"),
// exp/nbf. Prints one JSON line per token: {"ok":true,"header":..,"payload":..}
// or {"ok":false,"code":..,"message":..}. Exit 0 when every token verified, 1
// when one did not, 2 when the set-up failed (usage, discovery, no tokens).
import { createRemoteJWKSet, jwtVerify } from 'jose';

function usage(msg) {
  process.stderr.write('verify.mjs: ' + msg + '\n');
  process.exit(2);
}

async function main() {
  const args = process.argv.slice(2);
  let url = null;
  let iss = null;
  let aud = 'tessera';
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--iss' && i + 1 < args.length) iss = args[++i];
    else if (args[i] === '--aud' && i + 1 < args.length) aud = args[++i];
    else if (!args[i].startsWith('--') && url === null) url = args[i];
    else usage('bad argument ' + args[i]);
  }
  if (url === null) usage('no discovery URL');

  const res = await fetch(url, { headers: { accept: 'application/json' } });
  if (res.status !== 200) usage('discovery answered ' + res.status);
  const disco = await res.json();
  if (typeof disco.jwks_uri !== 'string') usage('discovery has no jwks_uri');
  if (typeof disco.issuer !== 'string') usage('discovery has no issuer');
  const algs = disco.access_token_signing_alg_values_supported;
  if (!Array.isArray(algs) || algs.length === 0) {
    usage('discovery has no access_token_signing_alg_values_supported');
  }
  const jwks = createRemoteJWKSet(new URL(disco.jwks_uri));

  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const tokens = Buffer.concat(chunks).toString('utf8').split('\n').map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (tokens.length === 0) usage('no tokens on stdin');

  let bad = 0;
  for (const token of tokens) {
    try {
      const { payload, protectedHeader } = await jwtVerify(token, jwks, {
        issuer: iss === null ? disco.issuer : iss,
        audience: aud,
        typ: 'at+jwt',
        algorithms: algs,
      });
      process.stdout.write(JSON.stringify({ ok: true, header: protectedHeader, payload }) + '\n');
    } catch (e) {
      bad++;
      process.stdout.write(JSON.stringify({ ok: false, code: e.code || null,
        message: String(e.message || e) }) + '\n');
    }
  }
  process.exit(bad === 0 ? 0 : 1);
}

main().catch((e) => usage(String(e && e.message ? e.message : e)));
