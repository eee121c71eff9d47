// sign.mjs: the signing side of the interop tests, driven by tests/e2e (harness.py).
//
// Reads ONE JSON request on stdin, writes ONE JSON answer on stdout, exits 0; on
// any error writes {"error": message} and exits 1. Requests:
//
//   {"op":"keygen", "alg":"ES256", "kid":"k1"}
//       a fresh key pair from node `jose`: {"private": JWK, "public": JWK}, both
//       carrying kid, alg and use "sig".
//   {"op":"jwt", "jwk": private JWK, "header": {...}, "claims": {...}}
//       a compact JWS made by jose's SignJWT (the library's own path):
//       {"token": "..."}. header.alg defaults to jwk.alg.
//   {"op":"sign", "items":[{"jwk": private JWK, "alg": "ES256", "input": "h.p"}]}
//       raw signatures over arbitrary signing inputs (so that tests can shape
//       header and payload bytes freely: duplicate keys, crit, padding...), with
//       node's crypto: {"sigs": ["base64url", ...]}. alg "none" gives "".
//   {"op":"spki", "jwk": public JWK}
//       {"pem": SubjectPublicKeyInfo PEM, "der": base64url DER} of a public key
//       (the bytes an algorithm-confusion attacker would use as an HMAC secret).
import { createHmac, createPrivateKey, createPublicKey, sign as nodeSign, constants } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';

const HASH = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

function b64u(buf) {
  return Buffer.from(buf).toString('base64url');
}

function signRaw(jwk, alg, input) {
  const data = Buffer.from(input, 'latin1');
  if (alg === 'none') return '';
  const fam = alg.slice(0, 2);
  const bits = alg.slice(2);
  if (fam === 'HS') {
    if (jwk.kty !== 'oct') throw new Error('HS needs an oct JWK');
    return b64u(createHmac(HASH[bits], Buffer.from(jwk.k, 'base64url')).update(data).digest());
  }
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  if (alg === 'EdDSA' || alg === 'Ed25519') return b64u(nodeSign(null, data, key));
  if (fam === 'ES') return b64u(nodeSign(HASH[bits], data, { key, dsaEncoding: 'ieee-p1363' }));
  if (fam === 'RS') return b64u(nodeSign(HASH[bits], data, key));
  if (fam === 'PS') {
    return b64u(nodeSign(HASH[bits], data, {
      key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(bits) / 8,
    }));
  }
  throw new Error('unknown alg ' + alg);
}

async function handle(req) {
  switch (req.op) {
    case 'keygen': {
      const alg = req.alg || 'ES256';
      const opts = { extractable: true };
      if (alg.startsWith('RS') || alg.startsWith('PS')) opts.modulusLength = 2048;
      const { publicKey, privateKey } = await generateKeyPair(alg, opts);
      const extra = { kid: req.kid || 'interop-' + Date.now(), alg, use: 'sig' };
      return {
        private: { ...(await exportJWK(privateKey)), ...extra },
        public: { ...(await exportJWK(publicKey)), ...extra },
      };
    }
    case 'jwt': {
      const header = { ...(req.header || {}) };
      header.alg = header.alg || req.jwk.alg;
      const key = await importJWK(req.jwk, header.alg);
      const token = await new SignJWT(req.claims || {}).setProtectedHeader(header).sign(key);
      return { token };
    }
    case 'sign':
      return { sigs: req.items.map((it) => signRaw(it.jwk, it.alg || it.jwk.alg, it.input)) };
    case 'spki': {
      const key = createPublicKey({ key: req.jwk, format: 'jwk' });
      return {
        pem: key.export({ type: 'spki', format: 'pem' }),
        der: b64u(key.export({ type: 'spki', format: 'der' })),
      };
    }
    default:
      throw new Error('unknown op ' + req.op);
  }
}

async function main() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const out = await handle(req);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.message ? e.message : e) }) + '\n');
  process.exit(1);
});
