"""SPEC section 4, Keys and discovery, and the admin key routes: the JWKS,
both discovery documents, key states and rotation (to other algorithms too),
and interop with node `jose` both ways: node verifies tessera's access tokens
from the discovery document alone, and `tessera token verify` verifies tokens
node signed with a key tessera was given as a JWKS file."""

import json
import os
import subprocess
import tempfile
import time

import harness
from harness import (Client, ServerTestCase, b64url, jwt_parts, node_keygen, node_sign_jwt,
                     node_sign_raw, node_verify, server_private_jwk)

PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
ASYM_ALGS = {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384",
             "PS512", "EdDSA"}
DISCOVERY = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")
DISCOVERY_FIELDS = ("issuer", "jwks_uri", "token_endpoint", "revocation_endpoint",
                    "introspection_endpoint", "grant_types_supported",
                    "token_endpoint_auth_methods_supported",
                    "access_token_signing_alg_values_supported")
KTY = {"ES": "EC", "RS": "RSA", "PS": "RSA", "Ed": "OKP"}


def private_members(obj, path=""):
    """Paths of members that look like private key material, anywhere in obj."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in PRIVATE or "private" in k.lower() or k.lower() in ("jwk", "secret", "pem"):
                found.append(path + "/" + k)
            found += private_members(v, path + "/" + k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += private_members(v, "%s/%d" % (path, i))
    return found


class KeysTestCase(ServerTestCase):

    def jwks(self, server=None):
        r = self.client(server).get("/.well-known/jwks.json")
        self.assertStatus(r, 200)
        return r

    def admin_keys(self, server=None):
        r = Client(server or self.server).admin("GET", "/v1/admin/keys")
        self.assertStatus(r, 200)
        self.assertIsInstance(r.json, dict, r.describe())
        self.assertIsInstance(r.json.get("keys"), list, r.describe())
        return r.json["keys"]

    def by_state(self, keys):
        out = {"next": [], "active": [], "retired": []}
        for k in keys:
            self.assertIn(k.get("state"), out, k)
            out[k["state"]].append(k)
        return out

    def discovery(self, path=DISCOVERY[0], server=None):
        r = self.client(server).get(path)
        self.assertStatus(r, 200)
        self.assertIsInstance(r.json, dict, r.describe())
        return r.json

    def rotate(self, alg=None, server=None, body=True):
        b = {} if alg is None else {"alg": alg}
        r = Client(server or self.server).admin("POST", "/v1/admin/keys/rotate",
                                                b if body else None)
        self.assertStatus(r, 201, "rotate to %s" % alg)
        self.assertIsInstance(r.json, dict, r.describe())
        self.assertIsInstance(r.json.get("kid"), str, r.describe())
        return r.json["kid"]

    def assertJwksPublicOnly(self, r):
        self.assertCommonHeaders(r)
        cc = [p.strip() for p in (r.header("Cache-Control") or "").lower().split(",")]
        self.assertIn("max-age=300", cc, r.describe())
        ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
        self.assertIn(ctype, ("application/json", "application/jwk-set+json"), r.describe())
        keys = r.json.get("keys")
        self.assertIsInstance(keys, list, r.describe())
        kids = [k.get("kid") for k in keys]
        self.assertEqual(len(kids), len(set(kids)), "kids are unique: %r" % kids)
        for k in keys:
            self.assertNotEqual(k.get("kty"), "oct", "a symmetric key is never published")
            self.assertIn(k.get("kty"), ("EC", "RSA", "OKP"), k)
            self.assertEqual(private_members(k), [], "private material in the JWKS: %r" % k)
            self.assertIsInstance(k.get("kid"), str, k)
            self.assertIn(k.get("alg"), ASYM_ALGS, k)
            self.assertIn(k.get("use", "sig"), ("sig",), k)
        return keys

    def assertDiscoveryConsistent(self, server=None):
        s = server or self.server
        keys = self.jwks(s).json["keys"]
        algs = {k["alg"] for k in keys}
        docs = [self.discovery(p, s) for p in DISCOVERY]
        for d in docs:
            self.assertEqual(set(d["access_token_signing_alg_values_supported"]), algs,
                             "discovery algs follow the published keys")
            self.assertEqual(len(d["access_token_signing_alg_values_supported"]), len(algs),
                             "no duplicates: %r" % d["access_token_signing_alg_values_supported"])
        return docs[0], keys


class JwksDiscoveryTest(KeysTestCase):

    def test_jwks_public_keys_only(self):
        r = self.jwks()
        keys = self.assertJwksPublicOnly(r)
        self.assertGreaterEqual(len(keys), 1)
        _, g, _ = self.grant()
        h = jwt_parts(g["access_token"])[0]
        ours = [k for k in keys if k["kid"] == h["kid"]]
        self.assertEqual(len(ours), 1, "the token's kid is published")
        self.assertEqual(ours[0]["alg"], h["alg"])
        self.assertEqual(ours[0]["kty"], "EC")
        self.assertEqual(ours[0]["crv"], "P-256")
        # The private half (white box: read from the store) never shows.
        priv = server_private_jwk(self.server, h["kid"])
        self.assertNotIn(priv["d"], r.body.decode())
        # HEAD answers too (caches revalidate with it).
        self.assertStatus(self.client().request("HEAD", "/.well-known/jwks.json"), 200)

    def test_jwks_publishes_next_and_active(self):
        keys = self.jwks().json["keys"]
        states = self.by_state(self.admin_keys())
        self.assertEqual(len(states["active"]), 1, states)
        self.assertEqual(len(states["next"]), 1, "a next key is made with the active one")
        self.assertEqual({k["kid"] for k in keys},
                         {k["kid"] for k in states["active"] + states["next"] + states["retired"]},
                         "JWKS = next + active + retired (still published)")

    def test_discovery_documents(self):
        _, g, c = self.grant()
        base = self.server.origin
        docs = []
        for path in DISCOVERY:
            r = self.client().get(path)
            self.assertStatus(r, 200, path)
            self.assertCommonHeaders(r)
            ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
            self.assertEqual(ctype, "application/json", r.describe())
            d = r.json
            for f in DISCOVERY_FIELDS:
                self.assertIn(f, d, "%s lacks %s\n%s" % (path, f, r.describe()))
            self.assertEqual(d["issuer"], c["iss"], "issuer = the tokens' iss")
            self.assertEqual(d["issuer"], base, "default issuer: the public URL")
            self.assertEqual(d["jwks_uri"], base + "/.well-known/jwks.json")
            self.assertEqual(d["token_endpoint"], base + "/v1/oauth/token")
            self.assertEqual(d["revocation_endpoint"], base + "/v1/oauth/revoke")
            self.assertEqual(d["introspection_endpoint"], base + "/v1/oauth/introspect")
            for f in ("grant_types_supported", "token_endpoint_auth_methods_supported",
                      "access_token_signing_alg_values_supported"):
                self.assertIsInstance(d[f], list, f)
                self.assertTrue(d[f], "%s is empty" % f)
                for x in d[f]:
                    self.assertIsInstance(x, str, f)
            self.assertIn("password", d["grant_types_supported"])
            self.assertIn("refresh_token", d["grant_types_supported"])
            self.assertEqual(d["access_token_signing_alg_values_supported"], ["ES256"])
            self.assertNotIn("none", d["access_token_signing_alg_values_supported"])
            docs.append(d)
        for f in DISCOVERY_FIELDS:
            self.assertEqual(docs[0][f], docs[1][f], "both documents agree on %s" % f)
        # Every URL in them answers (on this server).
        for f in ("jwks_uri",):
            path = docs[0][f][len(base):]
            self.assertStatus(self.client().get(path), 200, f)
        for f in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
            path = docs[0][f][len(base):]
            r = self.client().form(path, [])
            self.assertStatus(r, (400, 401), "%s exists (an empty POST is not a 404)" % f)
        self.assertDiscoveryConsistent()

    def test_admin_keys_list(self):
        keys = self.admin_keys()
        self.assertEqual(private_members(keys), [], "no private material: %r" % keys)
        st = self.by_state(keys)
        self.assertEqual(len(st["active"]), 1)
        for k in keys:
            self.assertIsInstance(k.get("kid"), str, k)
            self.assertIn(k.get("alg"), ASYM_ALGS | {"HS256", "HS384", "HS512"}, k)
            self.assertIsInstance(k.get("created_at"), int, k)
            self.assertTrue(abs(k["created_at"] - time.time()) < 3600, k)
        r = Client(self.server).admin("GET", "/v1/admin/keys")
        for kid, _, jwk in harness.server_private_jwks(self.server):
            for m in PRIVATE & set(jwk):
                self.assertNotIn(jwk[m], r.body.decode(), "private member %s of %s" % (m, kid))

    def test_admin_key_routes_need_admin_key(self):
        _, g, _ = self.grant()
        for method, path, body in (("GET", "/v1/admin/keys", None),
                                   ("POST", "/v1/admin/keys/rotate", {})):
            r = self.client().request(method, path, body=body, cookies=False)
            self.assertProblem(r, 401, msg="no key: %s %s" % (method, path))
            r = self.client().request(method, path, body=body, cookies=False,
                                      bearer=g["access_token"])
            self.assertProblem(r, 401, msg="a user's access token: %s %s" % (method, path))
        self.assertEqual(len(self.by_state(self.admin_keys())["retired"]), 0,
                         "nothing was rotated")

    def test_rotate_bad_alg(self):
        before = self.by_state(self.admin_keys())["active"][0]["kid"]
        for alg in ("none", "None", "NONE", "XX999", "", "HS1", "ES256K", "RSA-OAEP",
                    "A128KW", "dir", 5, ["ES256"]):
            r = Client(self.server).admin("POST", "/v1/admin/keys/rotate", {"alg": alg})
            self.assertProblem(r, 400, "invalid_request", "alg %r" % (alg,))
        for raw in ("{", '{"alg":"ES256","alg":"RS256"}', "[]"):
            r = Client(self.server).admin("POST", "/v1/admin/keys/rotate", raw=raw)
            self.assertProblem(r, 400, "invalid_request", raw)
        self.assertEqual(self.by_state(self.admin_keys())["active"][0]["kid"], before,
                         "a refused rotation changes nothing")


class KeyRotationTest(KeysTestCase):

    def test_rotate_keeps_old_tokens(self):
        st = self.by_state(self.admin_keys())
        old_active = st["active"][0]["kid"]
        old_next = st["next"][0]["kid"]
        _, g0, c0 = self.grant()
        self.assertEqual(jwt_parts(g0["access_token"])[0]["kid"], old_active)
        kid = self.rotate(body=False)
        self.assertNotEqual(kid, old_active)
        self.assertEqual(kid, old_next, "rotation activates the published next key")
        st = self.by_state(self.admin_keys())
        self.assertEqual([k["kid"] for k in st["active"]], [kid])
        self.assertIn(old_active, [k["kid"] for k in st["retired"]])
        self.assertEqual(len(st["next"]), 1)
        self.assertNotIn(st["next"][0]["kid"], (kid, old_active))
        retired = [k for k in st["retired"] if k["kid"] == old_active][0]
        for f in ("retired_at", "publish_until"):
            self.assertIsInstance(retired.get(f), int, retired)
        self.assertGreaterEqual(retired["publish_until"] - retired["retired_at"], 900,
                                "published until its tokens expire (access_ttl)")
        # The old token still verifies, its kid is still published.
        self.assertBearerOk(g0["access_token"], msg="token signed before the rotation")
        kids = {k["kid"] for k in self.assertJwksPublicOnly(self.jwks())}
        self.assertIn(old_active, kids)
        self.assertIn(kid, kids)
        self.assertIn(st["next"][0]["kid"], kids)
        # New tokens carry the new kid; refreshing an old family too.
        _, g1, _ = self.grant()
        self.assertEqual(jwt_parts(g1["access_token"])[0]["kid"], kid)
        b = self.refresh(g0["refresh_token"])
        self.assertEqual(jwt_parts(b["access_token"])[0]["kid"], kid)
        self.assertBearerOk(g1["access_token"])
        # A second rotation (with an empty JSON body).
        kid2 = self.rotate()
        self.assertNotEqual(kid2, kid)
        self.assertBearerOk(g0["access_token"], msg="two rotations later")
        self.assertBearerOk(g1["access_token"])
        self.assertDiscoveryConsistent()

    def test_next_key_signs_tokens_that_verify(self):
        # An instance that rotated first signs with what is "next" here: it must verify.
        _, g, c = self.grant()
        st = self.by_state(self.admin_keys())
        nxt = st["next"][0]
        jwk = server_private_jwk(self.server, nxt["kid"])
        h = {"alg": nxt["alg"], "typ": "at+jwt", "kid": nxt["kid"]}
        inp = b64url(json.dumps(h)) + "." + b64url(json.dumps(c))
        tok = inp + "." + node_sign_raw([(jwk, nxt["alg"], inp)])[0]
        self.assertBearerOk(tok, msg="token signed by the next key")

    def test_rotate_to_other_algs(self):
        tokens = []
        _, g, _ = self.grant()
        tokens.append(g["access_token"])
        for alg in ("RS256", "PS256", "EdDSA", "ES384", "ES512", "RS512", "ES256"):
            kid = self.rotate(alg)
            st = self.by_state(self.admin_keys())
            self.assertEqual(st["active"][0]["kid"], kid)
            self.assertEqual(st["active"][0]["alg"], alg)
            self.assertEqual([k["alg"] for k in st["next"]], [alg], "the next key follows")
            _, g, _ = self.grant()
            h = jwt_parts(g["access_token"])[0]
            self.assertEqual((h["alg"], h["kid"]), (alg, kid))
            keys = self.assertJwksPublicOnly(self.jwks())
            k = [x for x in keys if x["kid"] == kid]
            self.assertEqual(len(k), 1, "the new key is published")
            self.assertEqual(k[0]["alg"], alg)
            self.assertEqual(k[0]["kty"], KTY[alg[:2]], k[0])
            if alg == "EdDSA":
                self.assertEqual(k[0].get("crv"), "Ed25519")
            tokens.append(g["access_token"])
            for i, t in enumerate(tokens):
                self.assertBearerOk(t, msg="token %d after the rotation to %s" % (i, alg))
            d, _ = self.assertDiscoveryConsistent()
            self.assertIn(alg, d["access_token_signing_alg_values_supported"])
            self.assertIn("ES256", d["access_token_signing_alg_values_supported"],
                          "the first ES256 key is still published (retired)")


class KeyRotationHsTest(KeysTestCase):
    """HS keys sign and verify but are never published."""

    def test_rotate_to_hs256(self):
        _, g0, _ = self.grant()
        kid = self.rotate("HS256")
        _, g, _ = self.grant()
        h = jwt_parts(g["access_token"])[0]
        self.assertEqual((h["alg"], h["kid"]), ("HS256", kid))
        self.assertBearerOk(g["access_token"], msg="an HS256 token")
        self.assertBearerOk(g0["access_token"], msg="the ES256 token from before")
        keys = self.assertJwksPublicOnly(self.jwks())
        self.assertNotIn(kid, [k["kid"] for k in keys])
        d, _ = self.assertDiscoveryConsistent()
        self.assertNotIn("HS256", d["access_token_signing_alg_values_supported"])
        self.assertIn("HS256", [k["alg"] for k in self.admin_keys() if k["kid"] == kid])
        self.assertEqual(private_members(self.admin_keys()), [])


class KeyConfigEdDSATest(KeysTestCase):
    SERVER_ENV = {"TESSERA_TOKENS_ALG": "EdDSA"}

    def test_configured_alg(self):
        _, g, _ = self.grant()
        h = jwt_parts(g["access_token"])[0]
        self.assertEqual(h["alg"], "EdDSA")
        keys = self.assertJwksPublicOnly(self.jwks())
        self.assertEqual({(k["kty"], k.get("crv"), k["alg"]) for k in keys},
                         {("OKP", "Ed25519", "EdDSA")})
        d, _ = self.assertDiscoveryConsistent()
        self.assertEqual(d["access_token_signing_alg_values_supported"], ["EdDSA"])
        self.assertBearerOk(g["access_token"])


class KeyConfigHsTest(KeysTestCase):
    SERVER_ENV = {"TESSERA_TOKENS_ALG": "HS256"}

    def test_configured_hs(self):
        _, g, _ = self.grant()
        self.assertEqual(jwt_parts(g["access_token"])[0]["alg"], "HS256")
        self.assertBearerOk(g["access_token"])
        r = self.jwks()
        self.assertEqual(self.assertJwksPublicOnly(r), [], "no HS key is ever published")


# ---- interop with node `jose` ----

class NodeInteropTest(KeysTestCase):
    """node `jose` verifies tessera's access tokens from the discovery URL alone."""

    @classmethod
    def setUpClass(cls):
        harness.ensure_interop()  # fails the class (not skips) without node/jose
        super().setUpClass()

    def node_ok(self, tokens, path=DISCOVERY[0], **kw):
        rc, res, err = node_verify(self.server.origin + path, tokens, **kw)
        self.assertEqual(len(res), len(tokens), "node answered %r\n%s" % (res, err))
        for i, r in enumerate(res):
            self.assertTrue(r.get("ok"), "node jose refused token %d: %r\n%s" % (i, r, err))
        self.assertEqual(rc, 0, err)
        return res

    def node_refuses(self, tokens, path=DISCOVERY[0], **kw):
        rc, res, err = node_verify(self.server.origin + path, tokens, **kw)
        self.assertEqual(len(res), len(tokens), "node answered %r\n%s" % (res, err))
        for i, r in enumerate(res):
            self.assertFalse(r.get("ok"), "node jose accepted token %d: %r" % (i, r))
        self.assertEqual(rc, 1, err)
        return res

    def test_es256_from_discovery(self):
        name, uid = self.new_user()
        _, g, c = self.grant(name)
        cc, login = self.logged_in(username=name)
        st = self.session_access(cc)
        for path in DISCOVERY:
            res = self.node_ok([g["access_token"], st], path)
            self.assertEqual(res[0]["payload"]["sub"], uid)
            self.assertEqual(res[0]["payload"]["sid"], c["sid"])
            self.assertEqual(res[0]["header"]["typ"], "at+jwt")
            self.assertEqual(res[1]["payload"]["sid"], login["session"]["id"])
        # jose's own checks bite too: another audience, another issuer, tampering.
        self.node_refuses([g["access_token"]], aud="someone-else")
        self.node_refuses([g["access_token"]], iss="https://evil.example")
        h, p, s = g["access_token"].split(".")
        forged = dict(c, sub="usr_someoneelse")
        self.node_refuses([h + "." + b64url(json.dumps(forged)) + "." + s])

    def test_after_rotations(self):
        tokens = []
        _, g, _ = self.grant()
        tokens.append(g["access_token"])
        for alg in ("RS256", "PS256", "EdDSA", "ES256"):
            kid = self.rotate(alg)
            _, g, _ = self.grant()
            self.assertEqual(jwt_parts(g["access_token"])[0]["kid"], kid)
            tokens.append(g["access_token"])
            res = self.node_ok(tokens)
            self.assertEqual(res[-1]["header"]["alg"], alg)
            self.assertEqual(res[-1]["header"]["kid"], kid)


class CliTokenVerifyTest(KeysTestCase):
    """`tessera token verify --jwks FILE --iss X --aud Y TOKEN` on tokens node
    `jose` signed (and on tessera's own, with its published JWKS)."""

    ISS = "https://issuer.interop.example"
    AUD = "interop-api"

    @classmethod
    def setUpClass(cls):
        harness.ensure_interop()
        super().setUpClass()

    def cli(self, *args, stdin=None):
        p = subprocess.run([harness.BINARY, "token", "verify"] + list(args),
                           input=stdin.encode() if stdin is not None else None,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                           stdin=None if stdin is not None else subprocess.DEVNULL)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8",
                                                                                  "replace")

    def jwks_file(self, keys):
        fd, path = tempfile.mkstemp(prefix="tessera-e2e-jwks-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"keys": keys}, f)
        self.addCleanup(os.unlink, path)
        return path

    def node_token(self, priv, **over):
        now = int(time.time())
        claims = {"iss": self.ISS, "aud": self.AUD, "sub": "usr_interop", "iat": now,
                  "nbf": now, "exp": now + 600, "jti": b64url(os.urandom(12)),
                  "sid": "ses_interop", "roles": ["a"], "scope": ""}
        claims.update(over.pop("claims", {}))
        header = {"alg": priv["alg"], "typ": "at+jwt", "kid": priv["kid"]}
        header.update(over.pop("header", {}))
        return node_sign_jwt(priv, header, claims)

    def test_node_signed_tokens(self):
        for alg in ("ES256", "RS256", "PS256", "EdDSA", "ES384"):
            priv, pub = node_keygen(alg, kid="interop-" + alg.lower())
            path = self.jwks_file([pub])
            tok = self.node_token(priv)
            args = ["--jwks", path, "--iss", self.ISS, "--aud", self.AUD]
            rc, out, err = self.cli(*(args + [tok]))
            self.assertEqual(rc, 0, "%s: valid node token refused: %s" % (alg, err))
            claims = json.loads(out)
            self.assertEqual(claims["sub"], "usr_interop")
            self.assertNotIn(tok, err)
            rc, out, _ = self.cli(*(args + ["-"]), stdin=tok + "\n")
            self.assertEqual(rc, 0, "%s: token on stdin" % alg)
            # Tampered payload, wrong iss/aud, expired, typ JWT, other key: exit 1.
            h, p, s = tok.split(".")
            c = json.loads(harness.b64url_decode(p))
            c["sub"] = "usr_admin"
            bad = {
                "tampered payload": h + "." + b64url(json.dumps(c)) + "." + s,
                "tampered signature": h + "." + p + "." + s[:-6] + ("A" if s[-6] != "A"
                                                                     else "B") + s[-5:],
                "expired": self.node_token(priv, claims={"exp": int(time.time()) - 3600,
                                                         "iat": int(time.time()) - 4000,
                                                         "nbf": int(time.time()) - 4000}),
                "typ JWT": self.node_token(priv, header={"typ": "JWT"}),
                "unknown kid": self.node_token(dict(priv, kid="other-kid")),
            }
            other, _ = node_keygen(alg, kid=priv["kid"])
            bad["same kid, other key"] = self.node_token(other)
            for what, t in bad.items():
                rc, out, err = self.cli(*(args + [t]))
                self.assertEqual(rc, 1, "%s %s: exit %d, stdout %r" % (alg, what, rc, out[:200]))
                self.assertIn("invalid token", err)
            for what, a in (("wrong iss", ["--jwks", path, "--iss", self.ISS + "/x",
                                           "--aud", self.AUD]),
                            ("wrong aud", ["--jwks", path, "--iss", self.ISS,
                                           "--aud", "other"])):
                rc, _, _ = self.cli(*(a + [tok]))
                self.assertEqual(rc, 1, "%s %s" % (alg, what))

    def test_usage(self):
        rc, _, _ = self.cli("some.token.here")
        self.assertEqual(rc, 2, "no --jwks/--key is a usage error")
        rc, out, _ = self.cli("--help")
        self.assertEqual(rc, 0)
        self.assertIn("--jwks", out)

    def test_tessera_tokens_with_published_jwks(self):
        _, g, c = self.grant()
        path = self.jwks_file(self.jwks().json["keys"])
        rc, out, err = self.cli("--jwks", path, "--iss", self.server.origin, "--aud", "tessera",
                                g["access_token"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["sid"], c["sid"])
        rc, _, _ = self.cli("--jwks", path, "--iss", "https://evil.example", g["access_token"])
        self.assertEqual(rc, 1)
        # The same with the JWKS URL from discovery, fetched by the CLI.
        url = self.discovery()["jwks_uri"]
        rc, out, err = self.cli("--jwks", url, "--iss", self.server.origin, "--aud", "tessera",
                                g["access_token"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["sub"], c["sub"])
        rc, _, _ = self.cli("--jwks", url, "--aud", "other", g["access_token"])
        self.assertEqual(rc, 1, "wrong audience with the JWKS URL")
