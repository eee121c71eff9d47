"""SPEC section 4, Verification for reverse proxies and services: GET /v1/verify
with `Authorization: Bearer <access token>`, and every verification rule shown
by a forged token that must be refused.

Forgeries come in two kinds. Attacker-key forgeries (alg none, HS256 keyed with
our public key, embedded jwk/jku/x5u/x5c keys) need nothing but the public JWKS.
Rule forgeries are signed with a key tessera TRUSTS, read (white box) from the
server's own SQLite store, so that each refusal is the rule's doing and not a
bad signature; each family has a positive control built the same way with the
right value, which must be accepted. Signatures come from node's crypto
(tests/e2e/interop/sign.mjs), HMAC ones from Python's stdlib."""

import http.server
import json
import threading
import time

from harness import (PASSWORD, Client, ServerTestCase, b64url, b64url_decode, free_port,
                     hs_sign, jwt_compact, jwt_parts, node_keygen, node_sign_raw,
                     node_spki, server_private_jwk, unique_name)

REALM = 'Bearer realm="tessera"'


class _Drop:
    """Marks a header member or claim to leave out of a forged token."""

    def __repr__(self):
        return "<drop>"


_DROP = _Drop()


def auth_params(value):
    value = (value or "").strip()
    scheme, _, rest = value.partition(" ")
    params = {}
    for part in rest.split(","):
        k, eq, v = part.strip().partition("=")
        if eq:
            params[k.strip().lower()] = v.strip().strip('"')
    return scheme.lower(), params


class BearerVerifyTest(ServerTestCase):

    def test_ok_headers_and_body(self):
        name, uid = self.admin_user(["admin", "ops"])
        _, g, c = self.grant(name)
        r = self.client().bearer_verify(g["access_token"])
        self.assertStatus(r, 200)
        self.assertCommonHeaders(r)
        self.assertEqual(r.header("X-Auth-Subject"), uid)
        self.assertEqual(r.header("X-Auth-Username"), name)
        self.assertEqual(sorted((r.header("X-Auth-Roles") or "").split(",")), ["admin", "ops"])
        self.assertEqual(r.header("X-Auth-Session"), c["sid"])
        self.assertEqual(r.header("X-Auth-Method"), "bearer")
        b = r.json
        self.assertIsInstance(b, dict, r.describe())
        self.assertEqual(b.get("sub"), uid)
        self.assertEqual(b.get("sid"), c["sid"])
        self.assertEqual(b.get("method"), "bearer")
        self.assertEqual(sorted(b.get("roles") or []), ["admin", "ops"])
        self.assertEqual(b.get("exp"), c["exp"])
        self.assertNotIn(g["access_token"], r.body.decode())
        # Again (the verified-token cache answers): the same answer.
        r2 = self.client().bearer_verify(g["access_token"])
        self.assertStatus(r2, 200)
        self.assertEqual(r2.json, b)
        for h in ("X-Auth-Subject", "X-Auth-Username", "X-Auth-Roles", "X-Auth-Session"):
            self.assertEqual(r2.header(h), r.header(h), h)

    def test_user_without_roles(self):
        name, uid = self.new_user()
        _, g, _ = self.grant(name)
        r = self.assertBearerOk(g["access_token"])
        self.assertEqual(r.json["roles"], [])
        self.assertIn(r.header("X-Auth-Roles"), (None, ""))
        self.assertEqual(r.header("X-Auth-Username"), name)

    def test_role_required(self):
        _, g, _ = self.grant()
        r = self.client().bearer_verify(g["access_token"], "?role=admin")
        self.assertStatus(r, 403, "bearer without the role")
        self.assertIsNone(r.header("X-Auth-Subject"), r.describe())
        name, _ = self.admin_user(["admin"])
        _, ga, _ = self.grant(name)
        self.assertStatus(self.client().bearer_verify(ga["access_token"], "?role=admin"), 200)
        self.assertStatus(self.client().bearer_verify(ga["access_token"], "?role=ops"), 403)
        self.assertStatus(self.client().bearer_verify(ga["access_token"], "?role=ADMIN"), 403)
        self.assertStatus(self.client().bearer_verify(ga["access_token"], "?role=adm"), 403)
        # A bad token with ?role= is still 401, not 403.
        r = self.client().bearer_verify("garbage", "?role=admin")
        self.assertStatus(r, 401)

    def test_no_credential(self):
        r = self.client().verify(cookies=False)
        self.assertStatus(r, 401)
        self.assertEqual(r.header("WWW-Authenticate"), REALM, r.describe())
        r = self.client().verify(cookies=False, headers={"Authorization": "Basic dXNlcjpwdw=="})
        self.assertStatus(r, 401, "a Basic credential is no bearer token")
        self.assertNot5xx(r)

    def test_bad_token_header(self):
        for tok in ("garbage", "a.b.c", "a.b", "a.b.c.d", "...", "x" * 9000,
                    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
            r = self.client().bearer_verify(tok)
            self.assertNot5xx(r, tok[:20])
            self.assertStatus(r, 401, tok[:20])
            scheme, params = auth_params(r.header("WWW-Authenticate"))
            self.assertEqual(scheme, "bearer", r.describe())
            self.assertEqual(params.get("realm"), "tessera", r.describe())
            self.assertEqual(params.get("error"), "invalid_token", r.describe())

    def test_scheme_is_case_insensitive(self):
        # RFC 7235 2.1: the auth-scheme is case-insensitive.
        _, g, _ = self.grant()
        for scheme in ("bearer", "BEARER"):
            r = self.client().verify(cookies=False,
                                     headers={"Authorization": scheme + " " + g["access_token"]})
            self.assertStatus(r, 200, scheme)

    def test_head(self):
        _, g, _ = self.grant()
        r = self.client().request("HEAD", "/v1/verify", bearer=g["access_token"], cookies=False)
        self.assertStatus(r, 200)
        self.assertEqual(r.header("X-Auth-Method"), "bearer")

    def test_session_token_bearer(self):
        c, login = self.logged_in()
        tok = self.session_access(c)
        r = self.assertBearerOk(tok)
        self.assertEqual(r.header("X-Auth-Session"), login["session"]["id"])
        self.assertEqual(r.json["sid"], login["session"]["id"])


class _AttackerJwks:
    """A loopback HTTP server serving the attacker's JWKS at any path, counting
    the requests it gets: tessera must never fetch it."""

    def __init__(self, jwks):
        body = json.dumps(jwks).encode()
        hits = self.hits = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/jwks.json" % self.port

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


class ForgeryTest(ServerTestCase):
    """Every SPEC verification rule, each with a positive control."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls._prepare()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def _prepare(cls):
        c = Client(cls.server)
        name = unique_name("forge")
        r = c.signup(name, PASSWORD)
        if r.status != 201:
            raise AssertionError("signup failed\n" + r.describe())
        r = c.password_grant(name)
        if r.status != 200:
            raise AssertionError("password grant failed\n" + r.describe())
        cls.grant_body = r.json
        cls.real = r.json["access_token"]
        cls.real_header, cls.real_claims = jwt_parts(cls.real)
        cls.kid = cls.real_header["kid"]
        cls.alg = cls.real_header["alg"]
        r = c.get("/.well-known/jwks.json")
        if r.status != 200:
            raise AssertionError("JWKS\n" + r.describe())
        ours = [k for k in r.json["keys"] if k.get("kid") == cls.kid]
        if len(ours) != 1:
            raise AssertionError("kid %r not once in the JWKS: %r" % (cls.kid, r.json))
        cls.public_jwk = ours[0]
        cls.trusted = server_private_jwk(cls.server, cls.kid)
        cls.attacker, cls.attacker_pub = node_keygen("ES256")

    # ---- building tokens ----

    def header(self, **over):
        h = {"alg": self.alg, "typ": "at+jwt", "kid": self.kid}
        for k, v in over.items():
            if v is _DROP:
                h.pop(k, None)
            else:
                h[k] = v
        return h

    def claims(self, **over):
        c = dict(self.real_claims)
        for k, v in over.items():
            if v is _DROP:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def sign(self, parts, key=None, alg=None):
        """[(header, claims) or raw signing input] -> tokens signed by key (the
        trusted key by default) with alg (the header's alg, else the key's)."""
        key = key or self.trusted
        inputs = [p if isinstance(p, str) else jwt_compact(*p) for p in parts]
        algs = []
        for p in parts:
            a = alg
            if a is None and not isinstance(p, str) and isinstance(p[0], dict):
                a = p[0].get("alg")
            if a not in ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256",
                         "PS384", "PS512", "EdDSA"):
                a = key.get("alg") or self.alg
            algs.append(a)
        sigs = node_sign_raw([(key, a, i) for a, i in zip(algs, inputs)])
        return [i + "." + s for i, s in zip(inputs, sigs)]

    def accepted(self, tokens, what):
        for i, t in enumerate(tokens):
            self.assertBearerOk(t, msg="%s #%d must be ACCEPTED (positive control)" % (what, i))

    def refused(self, tokens, what):
        for i, t in enumerate(tokens):
            self.assertBearerRefused(t, msg="%s #%d must be refused" % (what, i))

    # ---- controls ----

    def test_controls(self):
        self.assertBearerOk(self.real, msg="the real token")
        twin, reordered = self.sign([
            (self.header(), self.claims()),
            (dict(reversed(list(self.header().items()))),
             dict(reversed(list(self.claims().items())))),
        ])
        self.accepted([twin, reordered], "a token we signed with the trusted key")

    # ---- signature and algorithm ----

    def test_alg_none(self):
        h, p, s = self.real.split(".")
        toks = []
        for none in ("none", "None", "NONE", "nOnE"):
            for hdr in (self.header(alg=none), self.header(alg=none, kid=_DROP)):
                hp = jwt_compact(hdr, self.claims())
                toks += [hp + ".", hp + "." + s]
        self.refused(toks, "alg none")
        self.assertBearerOk(self.real, msg="control")

    def test_alg_confusion_hs_with_public_key(self):
        spki = node_spki(self.public_jwk)
        secrets_ = [spki["pem"], spki["pem"].strip(), b64url_decode(spki["der"]),
                    json.dumps(self.public_jwk), json.dumps(self.public_jwk,
                                                            separators=(",", ":"))]
        if self.public_jwk.get("kty") == "EC":
            xy = b64url_decode(self.public_jwk["x"]) + b64url_decode(self.public_jwk["y"])
            secrets_ += [xy, b"\x04" + xy]
        toks = []
        for hs in ("HS256", "HS384", "HS512"):
            for sec in secrets_:
                inp = jwt_compact(self.header(alg=hs), self.claims())
                toks.append(inp + "." + hs_sign(hs, sec, inp))
        self.refused(toks, "HS with the public key as secret")
        self.accepted(self.sign([(self.header(), self.claims())]), "control")

    def test_alg_must_equal_key_alg(self):
        # Our key, a good signature made with another hash: the header's alg is
        # not the key's, so the token is refused (alg pinned by the key).
        toks = []
        if self.public_jwk.get("kty") == "EC":
            for other in ("ES384", "ES512"):
                toks += self.sign([(self.header(alg=other), self.claims())], alg=other)
        toks += self.sign([(self.header(alg="RS256"), self.claims())], alg=self.alg)
        toks += self.sign([(self.header(alg="EdDSA"), self.claims())], alg=self.alg)
        self.refused(toks, "alg other than the key's")
        self.accepted(self.sign([(self.header(), self.claims())]), "control")

    def test_signature_tampering(self):
        h, p, s = self.real.split(".")
        claims = self.claims(sub="usr_someoneelse")
        other = self.sign([(self.header(), self.claims(jti="other-jti"))])[0]
        toks = [
            h + "." + b64url(json.dumps(claims, separators=(",", ":"))) + "." + s,
            h + "." + p + ".",
            h + "." + p + "." + s[:-4],
            h + "." + p + "." + s + "AAAA",
            h + "." + p + "." + other.split(".")[2],
            h + "." + p + "." + b64url(b"\x00" * len(b64url_decode(s))),
        ]
        self.refused(toks, "tampered signature")
        self.assertBearerOk(self.real, msg="control")

    def test_attacker_key(self):
        akid = self.attacker["kid"]
        toks = self.sign([(self.header(kid=akid), self.claims()),
                          (self.header(), self.claims()),
                          (self.header(kid=_DROP), self.claims())], key=self.attacker,
                         alg="ES256")
        self.refused(toks, "signed by an attacker key")

    # ---- kid ----

    def test_kid_unknown_or_missing(self):
        toks = self.sign([
            (self.header(kid="nope"), self.claims()),
            (self.header(kid=self.kid.upper() if self.kid.upper() != self.kid
                         else self.kid.lower() + "x"), self.claims()),
            (self.header(kid=self.kid + "x"), self.claims()),
            (self.header(kid=""), self.claims()),
            (self.header(kid=_DROP), self.claims()),
            (self.header(kid=None), self.claims()),
            (self.header(kid=[self.kid]), self.claims()),
            (self.header(kid=self.attacker["kid"]), self.claims()),
        ])
        self.refused(toks, "kid unknown, missing or of the wrong type")
        self.accepted(self.sign([(self.header(), self.claims())]), "control")

    # ---- embedded keys and key URLs ----

    def test_embedded_keys_attacker_signed(self):
        srv = _AttackerJwks({"keys": [self.attacker_pub]})
        self.addCleanup(srv.close)
        akid = self.attacker["kid"]
        apub = self.attacker_pub
        parts = [
            (self.header(kid=akid, jwk=apub), self.claims()),
            (self.header(kid=_DROP, jwk=apub), self.claims()),
            (self.header(jwk=apub), self.claims()),
            (self.header(kid=akid, jku=srv.url), self.claims()),
            (self.header(kid=_DROP, jku=srv.url), self.claims()),
            (self.header(jku=srv.url), self.claims()),
            (self.header(kid=akid, x5u=srv.url), self.claims()),
            (self.header(kid=akid, x5c=["MIIBszCCAVmgAwIBAgIUQm9ndXM="]), self.claims()),
            (self.header(x5c=["MIIBszCCAVmgAwIBAgIUQm9ndXM="]), self.claims()),
        ]
        self.refused(self.sign(parts, key=self.attacker, alg="ES256"),
                     "attacker-signed with an embedded key or key URL")
        self.assertEqual(srv.hits, [], "tessera fetched the attacker's jku/x5u")

    def test_embedded_key_headers_ignored_with_our_signature(self):
        # Positive control of the family: the headers are IGNORED, so our own
        # signature with our kid still verifies, and nothing is fetched.
        srv = _AttackerJwks({"keys": [self.attacker_pub]})
        self.addCleanup(srv.close)
        toks = self.sign([
            (self.header(jku=srv.url), self.claims()),
            (self.header(x5u=srv.url), self.claims()),
            (self.header(x5c=["MIIBszCCAVmgAwIBAgIUQm9ndXM="]), self.claims()),
        ])
        self.accepted(toks, "our token with jku/x5u/x5c headers")
        self.assertEqual(srv.hits, [], "tessera fetched a jku/x5u URL")

    # ---- crit ----

    def test_crit_unknown(self):
        toks = self.sign([
            (self.header(crit=["exp"], exp=self.real_claims["exp"]), self.claims()),
            (self.header(crit=["http://example.invalid/ext"],
                         **{"http://example.invalid/ext": True}), self.claims()),
            (self.header(crit=["b64"], b64=False), self.claims()),
            (self.header(crit=["nope"]), self.claims()),
            (self.header(crit=[]), self.claims()),
            (self.header(crit="exp"), self.claims()),
        ])
        self.refused(toks, "crit")
        self.accepted(self.sign([(self.header(), self.claims())]), "control")

    # ---- claims: exp, nbf, iss, aud ----

    def test_exp_beyond_leeway(self):
        now = int(time.time())
        self.refused(self.sign([
            (self.header(), self.claims(exp=now - 120, iat=now - 1000, nbf=now - 1000)),
            (self.header(), self.claims(exp=now - 3600, iat=now - 4500, nbf=now - 4500)),
            (self.header(), self.claims(exp=_DROP)),
            (self.header(), self.claims(exp=str(now + 600))),
        ]), "exp in the past beyond the 30 s leeway, missing or a string")
        self.accepted(self.sign([
            (self.header(), self.claims(exp=now - 5, iat=now - 905, nbf=now - 905)),
        ]), "exp 5 s ago is within the 30 s leeway")

    def test_nbf_in_future(self):
        now = int(time.time())
        self.refused(self.sign([
            (self.header(), self.claims(nbf=now + 300)),
            (self.header(), self.claims(nbf=now + 3600, exp=now + 4000)),
        ]), "nbf in the future beyond the leeway")
        self.accepted(self.sign([(self.header(), self.claims(nbf=now + 5))]),
                      "nbf 5 s ahead is within the leeway")

    def test_iss(self):
        iss = self.real_claims["iss"]
        self.refused(self.sign([
            (self.header(), self.claims(iss="https://evil.example")),
            (self.header(), self.claims(iss=iss + "/")),
            (self.header(), self.claims(iss=iss.upper())),
            (self.header(), self.claims(iss="")),
            (self.header(), self.claims(iss=_DROP)),
            (self.header(), self.claims(iss=[iss])),
        ]), "wrong or missing iss")
        self.accepted(self.sign([(self.header(), self.claims(iss=iss))]), "control")

    def test_aud(self):
        self.refused(self.sign([
            (self.header(), self.claims(aud="other")),
            (self.header(), self.claims(aud=["other"])),
            (self.header(), self.claims(aud="Tessera")),
            (self.header(), self.claims(aud=[])),
            (self.header(), self.claims(aud=_DROP)),
        ]), "wrong or missing aud")
        self.accepted(self.sign([
            (self.header(), self.claims(aud="tessera")),
            (self.header(), self.claims(aud=["tessera"])),
            (self.header(), self.claims(aud=["other", "tessera"])),
        ]), "aud tessera (alone or a member of the array)")

    # ---- typ ----

    def test_typ(self):
        self.refused(self.sign([
            (self.header(typ=_DROP), self.claims()),
            (self.header(typ="JWT"), self.claims()),
            (self.header(typ="jwt"), self.claims()),
            (self.header(typ="application/jwt"), self.claims()),
            (self.header(typ=""), self.claims()),
            (self.header(typ="at+jwt "), self.claims()),
            (self.header(typ=1), self.claims()),
        ]), "typ missing or not at+jwt")
        self.accepted(self.sign([(self.header(typ="at+jwt"), self.claims())]), "control")

    # ---- size ----

    def test_over_8_kib(self):
        def with_pad(target):
            base = len(self.sign([(self.header(), self.claims(pad=""))])[0])
            # 4 base64url chars per 3 bytes of padding claim.
            n = max(0, (target - base) * 3 // 4)
            return self.sign([(self.header(), self.claims(pad="x" * n))])[0]
        small = with_pad(8000)
        big = with_pad(8400)
        self.assertLess(len(small), 8192)
        self.assertGreater(len(big), 8192)
        self.accepted([small], "a token just under 8 KiB")
        self.refused([big], "a token over 8 KiB")

    # ---- base64url strictness ----

    def test_base64url_padding(self):
        h = b64url(json.dumps(self.header(), separators=(",", ":")))
        # Claims whose encoding needs padding (length not a multiple of 3).
        c = self.claims(pad="")
        while len(json.dumps(c, separators=(",", ":"))) % 3 == 0:
            c["pad"] += "x"
        p = b64url(json.dumps(c, separators=(",", ":")))
        twin = self.sign([h + "." + p])[0]
        self.accepted([twin], "control: the same parts unpadded")
        sig = twin.split(".")[2]
        pad_p = "=" * (-len(p) % 4)
        self.assertTrue(pad_p)
        toks = self.sign([h + "." + p + pad_p, h + "==." + p, h + "." + p + "="])
        toks.append(h + "." + p + "." + sig + "=" * (-len(sig) % 4 or 2))
        toks.append(h + "." + p + "." + sig + "==")
        self.refused(toks, "'=' padding")

    def test_base64url_stray_characters(self):
        # Claims whose base64url has '-' and '_': the standard alphabet's '+'
        # and '/' in their place (signed as sent, so only strictness refuses).
        c = self.claims(pad=">>>???")
        h = b64url(json.dumps(self.header(), separators=(",", ":")))
        p = b64url(json.dumps(c, separators=(",", ":")))
        while "-" not in p or "_" not in p:
            c["pad"] += ">?"
            p = b64url(json.dumps(c, separators=(",", ":")))
        self.assertTrue("-" in p or "_" in p, p)
        std = p.replace("-", "+").replace("_", "/")
        twin = self.sign([h + "." + p])[0]
        self.accepted([twin], "control")
        sig = twin.split(".")[2]
        inputs = [h + "." + std, h + "." + p[:10] + " " + p[10:], h + "." + p[:10] + "\t" + p[10:],
                  h + "." + p + "!", "." + h + "." + p, h + ".." + p, h + "." + p + "\x00"]
        toks = self.sign(inputs)
        toks += [twin + ".", twin + "." + sig, h + "." + p + "." + sig + "!",
                 h + "." + p + "." + sig[:20] + "*" + sig[21:],
                 h + " ." + p + "." + sig]
        # Non-canonical last character: same bytes, unused low bits set.
        if len(sig) % 4 in (2, 3):
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            last = alphabet.index(sig[-1])
            unused = 4 if len(sig) % 4 == 2 else 2
            mask = (1 << unused) - 1
            if last & mask == 0:
                toks.append(h + "." + p + "." + sig[:-1] + alphabet[last | 1])
        self.refused(toks, "stray characters or non-canonical base64url")

    # ---- JSON strictness ----

    def test_json_duplicate_keys(self):
        c = self.claims()
        hdr = '{"alg":"%s","typ":"at+jwt","kid":"%s"}' % (self.alg, self.kid)
        body = json.dumps(c, separators=(",", ":"))
        ok = self.sign([b64url(hdr) + "." + b64url(body)])
        self.accepted(ok, "control: hand-written header, same claims")
        dup_claims = [
            body[:-1] + ',"sub":"usr_someoneelse"}',
            body[:-1] + ',"exp":%d}' % (c["exp"] + 86400),
            body[:-1] + ',"aud":"tessera"}',
            '{"sub":"usr_first",' + body[1:],
        ]
        dup_headers = [
            '{"alg":"%s","typ":"JWT","typ":"at+jwt","kid":"%s"}' % (self.alg, self.kid),
            '{"alg":"%s","typ":"at+jwt","kid":"%s","kid":"%s"}' % (self.alg, self.kid, self.kid),
            '{"alg":"none","alg":"%s","typ":"at+jwt","kid":"%s"}' % (self.alg, self.kid),
            '{"alg":"%s","typ":"at+jwt","kid":"%s","\\u0074yp":"JWT"}' % (self.alg, self.kid),
        ]
        inputs = [b64url(hdr) + "." + b64url(x) for x in dup_claims]
        inputs += [b64url(x) + "." + b64url(body) for x in dup_headers]
        self.refused(self.sign(inputs, alg=self.alg), "duplicate JSON keys")

    def test_json_not_strict(self):
        c = self.claims()
        hdr = '{"alg":"%s","typ":"at+jwt","kid":"%s"}' % (self.alg, self.kid)
        body = json.dumps(c, separators=(",", ":"))
        bad_bodies = [body + "x", body + "{}", "[" + body + "]", body[:-1], "null",
                      body[:-1] + ',}', "\ufeff" + body]
        inputs = [b64url(hdr) + "." + b64url(x) for x in bad_bodies]
        inputs.append(b64url(hdr) + "." + b64url(body.encode()[:-1] + b'"\xff\xfe":1}'))
        inputs.append(b64url(hdr[:-1]) + "." + b64url(body))
        self.refused(self.sign(inputs, alg=self.alg), "malformed JSON")
        self.accepted(self.sign([b64url(hdr) + "." + b64url(body)]), "control")

    # ---- introspection of forged tokens ----

    def test_introspect_expired_and_forged(self):
        now = int(time.time())
        expired, live = self.sign([
            (self.header(), self.claims(exp=now - 120, iat=now - 1000, nbf=now - 1000)),
            (self.header(), self.claims()),
        ])
        r = self.client().introspect(expired)
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"active": False}, "expired access token\n" + r.describe())
        r = self.client().introspect(live)
        self.assertIs(r.json.get("active"), True, "control\n" + r.describe())
        h, p, _ = live.split(".")
        r = self.client().introspect(h + "." + p + ".")
        self.assertEqual(r.json, {"active": False}, r.describe())


class ForgeryStatelessTest(ForgeryTest):
    SERVER_ENV = {"TESSERA_VERIFY_BEARER": "stateless"}


class ForgeryStatefulTest(ForgeryTest):
    SERVER_ENV = {"TESSERA_VERIFY_BEARER": "stateful"}
