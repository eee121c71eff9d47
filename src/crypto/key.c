/* key.c: building, validating, generating, importing and exporting keys.
 *
 * Every constructor ends in key_new_from_pkey / key_new_oct, which check that the
 * key fits its algorithm (type, curve, size) and hand it to tsr_key_finish to
 * prepare the verifier. Nothing here runs per request. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "crypto/crypto_int.h"

#define TSR_PEM_MAX_BYTES 65536
#define TSR_OCT_MAX_BYTES 1024

static atomic_uint_fast64_t next_key_id = 1;

static const char *curve_group(tsr_curve c)
{
    switch (c) {
    case TSR_CURVE_P256: return "P-256";
    case TSR_CURVE_P384: return "P-384";
    case TSR_CURVE_P521: return "P-521";
    default: return NULL;
    }
}

static tsr_key *key_alloc(tsr_alg alg)
{
    tsr_key *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    atomic_init(&k->refs, 1);
    k->id = atomic_fetch_add(&next_key_id, 1);
    k->alg = alg;
    k->kty = tsr_alg_kty(alg);
    k->crv = tsr_alg_curve(alg);
    k->hash = tsr_alg_hash(alg);
    return k;
}

tsr_key *tsr_key_ref(tsr_key *k)
{
    if (k != NULL)
        atomic_fetch_add(&k->refs, 1);
    return k;
}

void tsr_key_free(tsr_key *k)
{
    if (k == NULL || atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    EVP_PKEY_free(k->pkey);
    tsr_secure_free(k->secret);
    tsr_secure_free(k->pads);
    tsr_wipe(k, sizeof *k);
    free(k);
}

tsr_alg tsr_key_alg(const tsr_key *k) { return k ? k->alg : TSR_ALG_INVALID; }
tsr_kty tsr_key_kty(const tsr_key *k) { return k ? k->kty : TSR_KTY_INVALID; }
tsr_curve tsr_key_curve(const tsr_key *k) { return k ? k->crv : TSR_CURVE_NONE; }
int tsr_key_has_private(const tsr_key *k) { return k ? k->has_private : 0; }
unsigned tsr_key_bits(const tsr_key *k) { return k ? k->bits : 0; }
size_t tsr_key_sig_len(const tsr_key *k) { return k ? k->sig_len : 0; }

/* Does the private part exist? OpenSSL 3 exposes it as a parameter. */
static int pkey_has_private(const EVP_PKEY *pkey)
{
    if (EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "EC")) {
        BIGNUM *d = NULL;
        const char *name = EVP_PKEY_is_a(pkey, "RSA") ? OSSL_PKEY_PARAM_RSA_D
                                                       : OSSL_PKEY_PARAM_PRIV_KEY;
        int has = EVP_PKEY_get_bn_param(pkey, name, &d) == 1 && d != NULL;
        BN_clear_free(d);
        return has;
    }
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        size_t len = 0;
        return EVP_PKEY_get_raw_private_key(pkey, NULL, &len) == 1 && len == 32;
    }
    return 0;
}

static int rsa_has_factors(const EVP_PKEY *pkey)
{
    BIGNUM *p = NULL;
    int has = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, &p) == 1 && p != NULL;
    BN_clear_free(p);
    ERR_clear_error();
    return has;
}

/* Signs and verifies a fixed message: the private part matches the public one. */
static tsr_err sign_verify_selftest(const tsr_key *k)
{
    static const uint8_t msg[] = "tessera key self-test";
    uint8_t sig[TSR_SIG_MAX_BYTES];
    size_t n = 0;
    tsr_err rc = tsr_key_sign(k, msg, sizeof msg, sig, sizeof sig, &n);
    if (rc == TSR_OK)
        rc = tsr_key_verify(k, msg, sizeof msg, sig, n);
    tsr_crypto_thread_cleanup(); /* drop the context this check cached on this thread */
    return rc == TSR_OK ? TSR_OK : TSR_ERR_KEY_INVALID;
}

/* Checks that pkey suits alg, validates it, and wraps it. Takes pkey on success
 * and on failure. */
static tsr_err key_new_from_pkey(tsr_alg alg, EVP_PKEY *pkey, tsr_key **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_key *k = NULL;
    EVP_PKEY_CTX *check = NULL;

    *out = NULL;
    k = key_alloc(alg);
    if (k == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    k->pkey = pkey;
    pkey = NULL;
    switch (k->kty) {
    case TSR_KTY_RSA:
        if (!EVP_PKEY_is_a(k->pkey, "RSA")) {
            rc = TSR_ERR_UNSUPPORTED;
            goto out;
        }
        k->bits = (unsigned)EVP_PKEY_get_bits(k->pkey);
        if (k->bits < TSR_RSA_MIN_BITS) {
            rc = TSR_ERR_WEAK_KEY;
            goto out;
        }
        if (k->bits > TSR_RSA_MAX_BITS) {
            rc = TSR_ERR_UNSUPPORTED;
            goto out;
        }
        k->sig_len = (size_t)EVP_PKEY_get_size(k->pkey);
        break;
    case TSR_KTY_EC: {
        char group[32];
        size_t glen = 0;
        if (!EVP_PKEY_is_a(k->pkey, "EC") ||
            EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof group, &glen) != 1) {
            rc = TSR_ERR_UNSUPPORTED;
            goto out;
        }
        int nid = OBJ_txt2nid(group);
        int want = k->crv == TSR_CURVE_P256   ? NID_X9_62_prime256v1
                   : k->crv == TSR_CURVE_P384 ? NID_secp384r1
                                              : NID_secp521r1;
        if (nid != want) {
            rc = TSR_ERR_UNSUPPORTED;
            goto out;
        }
        k->bits = (unsigned)EVP_PKEY_get_bits(k->pkey);
        k->sig_len = 2 * tsr_curve_coord_len(k->crv);
        break;
    }
    case TSR_KTY_OKP: {
        size_t len = sizeof k->ed_pub;
        if (!EVP_PKEY_is_a(k->pkey, "ED25519") ||
            EVP_PKEY_get_raw_public_key(k->pkey, k->ed_pub, &len) != 1 || len != 32) {
            rc = TSR_ERR_UNSUPPORTED;
            goto out;
        }
        /* Canonical encoding of a point of the prime-order subgroup, not of small order. */
        if (crypto_core_ed25519_is_valid_point(k->ed_pub) != 1) {
            rc = TSR_ERR_KEY_INVALID;
            goto out;
        }
        k->bits = 256;
        k->sig_len = 64;
        break;
    }
    default:
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }

    k->has_private = pkey_has_private(k->pkey);
    check = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (check == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    /* Public check: RSA modulus and exponent sanity (SP 800-56B), EC point on the
     * curve and in the subgroup. Pairwise check: the private part matches. */
    if (k->kty != TSR_KTY_OKP && EVP_PKEY_public_check(check) != 1) {
        rc = TSR_ERR_KEY_INVALID;
        goto out;
    }
    /* OpenSSL's RSA pair-wise check needs the CRT factors; an RSA key given as n, e, d
     * alone (RFC 7518 6.3.2 allows it) is checked by a signature round trip below. */
    int rsa_no_crt = k->kty == TSR_KTY_RSA && k->has_private && !rsa_has_factors(k->pkey);
    if (k->has_private && !rsa_no_crt && EVP_PKEY_pairwise_check(check) != 1) {
        rc = TSR_ERR_KEY_INVALID;
        goto out;
    }
    rc = tsr_key_finish(k);
    if (rc != TSR_OK)
        goto out;
    if (rsa_no_crt) {
        rc = sign_verify_selftest(k);
        if (rc != TSR_OK)
            goto out;
    }
    *out = k;
    k = NULL;
    rc = TSR_OK;
out:
    ERR_clear_error();
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_free(pkey);
    tsr_key_free(k);
    return rc;
}

static tsr_err key_new_oct(tsr_alg alg, const uint8_t *secret, size_t n, tsr_key **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_key *k = NULL;

    *out = NULL;
    if (tsr_alg_kty(alg) != TSR_KTY_OCT) {
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    /* RFC 7518 3.2: a key at least as long as the hash output. */
    if (n < tsr_hash_len(tsr_alg_hash(alg))) {
        rc = TSR_ERR_WEAK_KEY;
        goto out;
    }
    if (n > TSR_OCT_MAX_BYTES) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    k = key_alloc(alg);
    if (k == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    k->secret = tsr_secure_alloc(n);
    k->pads = tsr_secure_alloc(sizeof *k->pads);
    if (k->secret == NULL || k->pads == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    memcpy(k->secret, secret, n);
    k->secret_len = n;
    k->has_private = 1;
    k->bits = (unsigned)(n * 8);
    k->sig_len = tsr_hash_len(k->hash);
    rc = tsr_key_finish(k);
    if (rc != TSR_OK)
        goto out;
    *out = k;
    k = NULL;
    rc = TSR_OK;
out:
    tsr_key_free(k);
    return rc;
}

static int bytes_ok(const tsr_bytes *b)
{
    return b->p != NULL && b->n > 0 && b->n <= TSR_KEY_COMPONENT_MAX_BYTES;
}

static int bytes_absent(const tsr_bytes *b)
{
    return b->p == NULL && b->n == 0;
}

/* Adds a big-endian unsigned integer parameter (private ones from secure memory). */
static int bld_push_bn(OSSL_PARAM_BLD *bld, const char *name, const tsr_bytes *b, int secret,
                       BIGNUM **keep)
{
    BIGNUM *bn = secret ? BN_secure_new() : BN_new();
    if (bn == NULL)
        return 0;
    if (BN_bin2bn(b->p, (int)b->n, bn) == NULL || !OSSL_PARAM_BLD_push_BN(bld, name, bn)) {
        BN_clear_free(bn);
        return 0;
    }
    *keep = bn; /* the builder refers to bn until the params are built */
    return 1;
}

static tsr_err pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, int with_private,
                             EVP_PKEY **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;

    *out = NULL;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    if (EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, with_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          params) != 1) {
        rc = TSR_ERR_KEY_INVALID;
        goto out;
    }
    rc = TSR_OK;
out:
    ERR_clear_error();
    OSSL_PARAM_free(params); /* OSSL_PARAM_free clears private values it built */
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

static tsr_err rsa_from_parts(const tsr_key_parts *pp, EVP_PKEY **out)
{
    tsr_err rc = TSR_ERR_INVALID;
    OSSL_PARAM_BLD *bld = NULL;
    BIGNUM *bn[8] = {0};
    int has_d = !bytes_absent(&pp->d);
    int has_crt = !bytes_absent(&pp->p);
    const tsr_bytes *crt[5] = {&pp->p, &pp->q, &pp->dp, &pp->dq, &pp->qi};
    static const char *crt_names[5] = {
        OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};

    *out = NULL;
    if (!bytes_ok(&pp->n) || !bytes_ok(&pp->e) || pp->e.n > 8 || (has_d && !bytes_ok(&pp->d)))
        goto out;
    /* RFC 7518 6.3.1: n and e in the minimum number of octets. */
    if (pp->n.p[0] == 0 || pp->e.p[0] == 0)
        goto out;
    /* RFC 7518 6.3.2: the CRT members come all together, and only with d. */
    for (int i = 0; i < 5; i++) {
        if (has_crt ? !bytes_ok(crt[i]) : !bytes_absent(crt[i]))
            goto out;
    }
    if (has_crt && !has_d)
        goto out;
    rc = TSR_ERR_NOMEM;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL)
        goto out;
    if (!bld_push_bn(bld, OSSL_PKEY_PARAM_RSA_N, &pp->n, 0, &bn[0]) ||
        !bld_push_bn(bld, OSSL_PKEY_PARAM_RSA_E, &pp->e, 0, &bn[1]))
        goto out;
    if (has_d && !bld_push_bn(bld, OSSL_PKEY_PARAM_RSA_D, &pp->d, 1, &bn[2]))
        goto out;
    for (int i = 0; has_crt && i < 5; i++) {
        if (!bld_push_bn(bld, crt_names[i], crt[i], 1, &bn[3 + i]))
            goto out;
    }
    rc = pkey_fromdata("RSA", bld, has_d, out);
out:
    for (int i = 0; i < 8; i++)
        BN_clear_free(bn[i]);
    OSSL_PARAM_BLD_free(bld);
    return rc;
}

static tsr_err ec_from_parts(tsr_curve crv, const tsr_key_parts *pp, EVP_PKEY **out)
{
    tsr_err rc = TSR_ERR_INVALID;
    OSSL_PARAM_BLD *bld = NULL;
    BIGNUM *d = NULL;
    uint8_t point[1 + 2 * 66];
    size_t cl = tsr_curve_coord_len(crv);
    int has_d = !bytes_absent(&pp->d);

    *out = NULL;
    /* RFC 7518 6.2.1.2/6.2.2.1: coordinates and d are exactly the full size. */
    if (cl == 0 || pp->x.p == NULL || pp->y.p == NULL || pp->x.n != cl || pp->y.n != cl)
        goto out;
    if (has_d && (pp->d.p == NULL || pp->d.n != cl))
        goto out;
    point[0] = 0x04;
    memcpy(point + 1, pp->x.p, cl);
    memcpy(point + 1 + cl, pp->y.p, cl);
    rc = TSR_ERR_NOMEM;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL)
        goto out;
    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve_group(crv), 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * cl))
        goto out;
    if (has_d && !bld_push_bn(bld, OSSL_PKEY_PARAM_PRIV_KEY, &pp->d, 1, &d))
        goto out;
    rc = pkey_fromdata("EC", bld, has_d, out);
out:
    BN_clear_free(d);
    OSSL_PARAM_BLD_free(bld);
    return rc;
}

static tsr_err okp_from_parts(const tsr_key_parts *pp, EVP_PKEY **out)
{
    tsr_err rc = TSR_ERR_INVALID;
    EVP_PKEY *pkey = NULL;
    uint8_t pub[32];
    size_t len = sizeof pub;

    *out = NULL;
    if (pp->crv != TSR_CURVE_ED25519 || pp->x.p == NULL || pp->x.n != 32)
        goto out;
    if (!bytes_absent(&pp->d)) {
        if (pp->d.p == NULL || pp->d.n != 32)
            goto out;
        pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, pp->d.p, 32);
        if (pkey == NULL) {
            rc = TSR_ERR_KEY_INVALID;
            goto out;
        }
        /* The public key given must be the one the private key derives. */
        if (EVP_PKEY_get_raw_public_key(pkey, pub, &len) != 1 || len != 32 ||
            !tsr_ct_eq(pub, pp->x.p, 32)) {
            rc = TSR_ERR_KEY_INVALID;
            goto out;
        }
    } else {
        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pp->x.p, 32);
        if (pkey == NULL) {
            rc = TSR_ERR_KEY_INVALID;
            goto out;
        }
    }
    *out = pkey;
    pkey = NULL;
    rc = TSR_OK;
out:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    return rc;
}

tsr_err tsr_key_from_parts(tsr_alg alg, const tsr_key_parts *parts, tsr_key **out)
{
    tsr_err rc = TSR_ERR_INVALID;
    EVP_PKEY *pkey = NULL;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (parts == NULL || tsr_alg_kty(alg) == TSR_KTY_INVALID)
        goto out;
    if (parts->kty != tsr_alg_kty(alg)) {
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    switch (parts->kty) {
    case TSR_KTY_OCT:
        if (parts->k.p == NULL || parts->k.n == 0)
            goto out;
        rc = key_new_oct(alg, parts->k.p, parts->k.n, out);
        goto out;
    case TSR_KTY_RSA:
        rc = rsa_from_parts(parts, &pkey);
        break;
    case TSR_KTY_EC:
        if (parts->crv != tsr_alg_curve(alg)) {
            rc = TSR_ERR_UNSUPPORTED;
            goto out;
        }
        rc = ec_from_parts(parts->crv, parts, &pkey);
        break;
    case TSR_KTY_OKP:
        rc = okp_from_parts(parts, &pkey);
        break;
    default:
        goto out;
    }
    if (rc != TSR_OK)
        goto out;
    rc = key_new_from_pkey(alg, pkey, out);
    pkey = NULL;
out:
    EVP_PKEY_free(pkey);
    return rc;
}

tsr_err tsr_key_from_pem(tsr_alg alg, const char *pem, size_t len, tsr_key **out)
{
    tsr_err rc = TSR_ERR_INVALID;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (pem == NULL || len == 0 || tsr_alg_kty(alg) == TSR_KTY_INVALID)
        goto out;
    if (tsr_alg_kty(alg) == TSR_KTY_OCT) {
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    if (len > TSR_PEM_MAX_BYTES) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    /* A private key (PKCS#8 or traditional) first, else a public key (SPKI). The
     * password callback refuses encrypted PEM instead of prompting. */
    pkey = PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, (void *)"", NULL, NULL);
    if (pkey == NULL) {
        ERR_clear_error();
        if (BIO_reset(bio) != 1)
            goto out;
        pkey = PEM_read_bio_PUBKEY_ex(bio, NULL, NULL, NULL, NULL, NULL);
    }
    if (pkey == NULL)
        goto out;
    rc = key_new_from_pkey(alg, pkey, out);
    pkey = NULL;
out:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return rc;
}

tsr_err tsr_key_generate(tsr_alg alg, unsigned bits, tsr_key **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    EVP_PKEY *pkey = NULL;
    uint8_t secret[64];

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    switch (tsr_alg_kty(alg)) {
    case TSR_KTY_OCT: {
        size_t n = tsr_hash_len(tsr_alg_hash(alg));
        rc = tsr_rand(secret, n);
        if (rc != TSR_OK)
            goto out;
        rc = key_new_oct(alg, secret, n, out);
        goto out;
    }
    case TSR_KTY_RSA:
        if (bits == 0)
            bits = TSR_RSA_MIN_BITS;
        if (bits < TSR_RSA_MIN_BITS || bits > TSR_RSA_MAX_BITS) {
            rc = TSR_ERR_WEAK_KEY;
            goto out;
        }
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
        break;
    case TSR_KTY_EC:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve_group(tsr_alg_curve(alg)));
        break;
    case TSR_KTY_OKP:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    default:
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (pkey == NULL)
        goto out;
    rc = key_new_from_pkey(alg, pkey, out);
    pkey = NULL;
out:
    ERR_clear_error();
    tsr_wipe(secret, sizeof secret);
    EVP_PKEY_free(pkey);
    return rc;
}

/* ---- export ---- */

/* A growing arena for exported components; one heap block freed with a wipe. */
typedef struct exp_buf {
    uint8_t *base;
    size_t used, cap;
} exp_buf;

static int exp_bn(exp_buf *b, const EVP_PKEY *pkey, const char *name, size_t pad,
                  tsr_bytes *dst)
{
    BIGNUM *bn = NULL;
    int ok = 0;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1 || bn == NULL)
        goto out;
    size_t n = (size_t)BN_num_bytes(bn);
    if (pad > 0) {
        if (n > pad)
            goto out;
        n = pad;
    }
    if (n == 0)
        n = 1;
    if (b->used + n > b->cap)
        goto out;
    if (BN_bn2binpad(bn, b->base + b->used, (int)n) != (int)n)
        goto out;
    dst->p = b->base + b->used;
    dst->n = n;
    b->used += n;
    ok = 1;
out:
    BN_clear_free(bn);
    return ok;
}

void tsr_key_parts_buf_free(void *buf)
{
    if (buf == NULL)
        return;
    size_t cap;
    memcpy(&cap, buf, sizeof cap);
    tsr_wipe(buf, cap);
    free(buf);
}

tsr_err tsr_key_export(const tsr_key *k, int with_private, tsr_key_parts *parts, void **buf)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    exp_buf b = {0};
    size_t total = 16 + 8 * (TSR_KEY_COMPONENT_MAX_BYTES + 8);

    if (parts == NULL || buf == NULL)
        return TSR_ERR_INVALID;
    memset(parts, 0, sizeof *parts);
    *buf = NULL;
    if (k == NULL)
        return TSR_ERR_INVALID;
    b.base = calloc(1, total);
    if (b.base == NULL)
        return TSR_ERR_NOMEM;
    memcpy(b.base, &total, sizeof total); /* header: size, for the wiping free */
    b.used = 16;
    b.cap = total;
    parts->kty = k->kty;
    parts->crv = k->crv;
    with_private = with_private && k->has_private;
    switch (k->kty) {
    case TSR_KTY_OCT:
        if (!with_private) {
            rc = TSR_ERR_UNSUPPORTED; /* a symmetric key has no public part */
            goto out;
        }
        if (k->secret_len > b.cap - b.used)
            goto out;
        memcpy(b.base + b.used, k->secret, k->secret_len);
        parts->k.p = b.base + b.used;
        parts->k.n = k->secret_len;
        break;
    case TSR_KTY_RSA:
        if (!exp_bn(&b, k->pkey, OSSL_PKEY_PARAM_RSA_N, 0, &parts->n) ||
            !exp_bn(&b, k->pkey, OSSL_PKEY_PARAM_RSA_E, 0, &parts->e))
            goto out;
        if (with_private) {
            if (!exp_bn(&b, k->pkey, OSSL_PKEY_PARAM_RSA_D, 0, &parts->d))
                goto out;
            /* CRT members when the key has them (keys built from n, e, d alone do not). */
            tsr_key_parts crt = {0};
            if (exp_bn(&b, k->pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, 0, &crt.p) &&
                exp_bn(&b, k->pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, 0, &crt.q) &&
                exp_bn(&b, k->pkey, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0, &crt.dp) &&
                exp_bn(&b, k->pkey, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0, &crt.dq) &&
                exp_bn(&b, k->pkey, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0, &crt.qi)) {
                parts->p = crt.p;
                parts->q = crt.q;
                parts->dp = crt.dp;
                parts->dq = crt.dq;
                parts->qi = crt.qi;
            }
            ERR_clear_error();
        }
        break;
    case TSR_KTY_EC: {
        size_t cl = tsr_curve_coord_len(k->crv), plen = 0;
        uint8_t point[1 + 2 * 66];
        if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                            sizeof point, &plen) != 1 ||
            plen != 1 + 2 * cl || point[0] != 0x04)
            goto out;
        memcpy(b.base + b.used, point + 1, 2 * cl);
        parts->x.p = b.base + b.used;
        parts->x.n = cl;
        parts->y.p = b.base + b.used + cl;
        parts->y.n = cl;
        b.used += 2 * cl;
        if (with_private && !exp_bn(&b, k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, cl, &parts->d))
            goto out;
        break;
    }
    case TSR_KTY_OKP: {
        size_t len = 32;
        memcpy(b.base + b.used, k->ed_pub, 32);
        parts->x.p = b.base + b.used;
        parts->x.n = 32;
        b.used += 32;
        if (with_private) {
            if (EVP_PKEY_get_raw_private_key(k->pkey, b.base + b.used, &len) != 1 || len != 32)
                goto out;
            parts->d.p = b.base + b.used;
            parts->d.n = 32;
            b.used += 32;
        }
        break;
    }
    default:
        rc = TSR_ERR_INVALID;
        goto out;
    }
    *buf = b.base;
    b.base = NULL;
    rc = TSR_OK;
out:
    ERR_clear_error();
    if (b.base != NULL) {
        memset(parts, 0, sizeof *parts);
        tsr_key_parts_buf_free(b.base);
    }
    return rc;
}

tsr_err tsr_key_to_pem(const tsr_key *k, int with_private, char **pem, size_t *len)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    BIO *bio = NULL;
    char *data = NULL;
    long n;

    if (pem == NULL || len == NULL)
        return TSR_ERR_INVALID;
    *pem = NULL;
    *len = 0;
    if (k == NULL)
        return TSR_ERR_INVALID;
    if (k->kty == TSR_KTY_OCT)
        return TSR_ERR_UNSUPPORTED;
    if (with_private && !k->has_private)
        return TSR_ERR_INVALID;
    bio = BIO_new(BIO_s_secmem());
    if (bio == NULL)
        return TSR_ERR_NOMEM;
    if (with_private ? PEM_write_bio_PKCS8PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1
                     : PEM_write_bio_PUBKEY(bio, k->pkey) != 1)
        goto out;
    n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || data == NULL)
        goto out;
    *pem = malloc((size_t)n + 1);
    if (*pem == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    memcpy(*pem, data, (size_t)n);
    (*pem)[n] = '\0';
    *len = (size_t)n;
    rc = TSR_OK;
out:
    ERR_clear_error();
    BIO_free(bio);
    return rc;
}

void tsr_key_pem_free(char *pem, size_t len)
{
    if (pem == NULL)
        return;
    tsr_wipe(pem, len);
    free(pem);
}
