/* sig.c: JWS signatures: prepare a key's verifier, sign, verify.
 *
 * Verify is the hot path. It allocates nothing after a thread's first call on a
 * key: the message is hashed with the allocation-free SHA-2 of sha2.c, HMAC uses
 * the key's prepared pads, Ed25519 goes to libsodium, and RSA/ECDSA use an
 * EVP_PKEY_CTX initialised once per thread and key and reused (a small per-thread
 * cache keyed by the key's never-reused id). ECDSA's raw R||S is re-encoded as DER
 * into a stack buffer. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "crypto/crypto_int.h"

#define TL_SLOTS 16

typedef struct tl_slot {
    uint64_t key_id;
    EVP_PKEY_CTX *ctx;
} tl_slot;

typedef struct tl_cache {
    tl_slot slot[TL_SLOTS];
    unsigned next;
} tl_cache;

static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static int tl_key_ok;
static _Thread_local tl_cache *tl;

static void tl_destroy(void *p)
{
    tl_cache *c = p;
    if (c == NULL)
        return;
    for (int i = 0; i < TL_SLOTS; i++)
        EVP_PKEY_CTX_free(c->slot[i].ctx);
    free(c);
}

static void tl_make_key(void)
{
    tl_key_ok = pthread_key_create(&tl_key, tl_destroy) == 0;
}

void tsr_crypto_thread_cleanup(void)
{
    if (tl == NULL)
        return;
    if (tl_key_ok)
        (void)pthread_setspecific(tl_key, NULL);
    tl_destroy(tl);
    tl = NULL;
}

static int is_pss(tsr_alg alg)
{
    return alg == TSR_ALG_PS256 || alg == TSR_ALG_PS384 || alg == TSR_ALG_PS512;
}

/* Sets padding and digest on a sign or verify context of an RSA or EC key. */
static int ctx_configure(const tsr_key *k, EVP_PKEY_CTX *ctx, int set_md)
{
    if (set_md && EVP_PKEY_CTX_set_signature_md(ctx, k->md) != 1)
        return 0;
    if (k->kty == TSR_KTY_RSA) {
        if (is_pss(k->alg)) {
            /* RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash. */
            if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, k->md) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1)
                return 0;
        } else if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
            return 0;
        }
    }
    return 1;
}

tsr_err tsr_key_finish(tsr_key *k)
{
    (void)pthread_once(&tl_once, tl_make_key);
    switch (k->kty) {
    case TSR_KTY_OCT:
        tsr_hmac_prepare(k->hash, k->secret, k->secret_len, k->pads);
        return TSR_OK;
    case TSR_KTY_RSA:
    case TSR_KTY_EC:
        k->md = tsr_hash_md(k->hash);
        return k->md != NULL ? TSR_OK : TSR_ERR_INTERNAL; /* tsr_crypto_init not called */
    case TSR_KTY_OKP:
        return TSR_OK;
    default:
        return TSR_ERR_INVALID;
    }
}

/* This thread's verify context for key k, created on first use. NULL on failure. */
static EVP_PKEY_CTX *tl_verify_ctx(const tsr_key *k)
{
    if (tl == NULL) {
        tl = calloc(1, sizeof *tl);
        if (tl == NULL)
            return NULL;
        if (tl_key_ok)
            (void)pthread_setspecific(tl_key, tl);
    }
    for (int i = 0; i < TL_SLOTS; i++) {
        if (tl->slot[i].key_id == k->id && tl->slot[i].ctx != NULL)
            return tl->slot[i].ctx;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (ctx == NULL)
        return NULL;
    if (EVP_PKEY_verify_init(ctx) != 1 || !ctx_configure(k, ctx, 1)) {
        EVP_PKEY_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    tl_slot *s = &tl->slot[tl->next];
    tl->next = (tl->next + 1) % TL_SLOTS;
    EVP_PKEY_CTX_free(s->ctx);
    s->ctx = ctx;
    s->key_id = k->id;
    return ctx;
}

/* DER INTEGER of a big-endian unsigned value; returns bytes written. */
static size_t der_uint(const uint8_t *v, size_t n, uint8_t *out)
{
    size_t i = 0, w = 0;
    while (i + 1 < n && v[i] == 0)
        i++;
    int pad = (v[i] & 0x80) != 0;
    out[w++] = 0x02;
    out[w++] = (uint8_t)(n - i + (size_t)pad);
    if (pad)
        out[w++] = 0x00;
    memcpy(out + w, v + i, n - i);
    return w + n - i;
}

/* Raw R||S (2*cl bytes, cl <= 66) to a DER ECDSA-Sig-Value. */
static size_t ecdsa_raw_to_der(const uint8_t *sig, size_t cl, uint8_t *out)
{
    uint8_t body[2 * (3 + 66)];
    size_t blen = der_uint(sig, cl, body);
    blen += der_uint(sig + cl, cl, body + blen);
    size_t w = 0;
    out[w++] = 0x30;
    if (blen >= 0x80)
        out[w++] = 0x81;
    out[w++] = (uint8_t)blen;
    memcpy(out + w, body, blen);
    return w + blen;
}

tsr_err tsr_key_verify(const tsr_key *k, const uint8_t *msg, size_t n, const uint8_t *sig,
                       size_t siglen)
{
    uint8_t h[TSR_HASH_MAX_BYTES];
    uint8_t der[8 + 2 * (3 + 66)];
    const uint8_t *s = sig;
    size_t slen = siglen;
    EVP_PKEY_CTX *ctx;
    int ok;

    if (k == NULL || sig == NULL || (msg == NULL && n > 0) || siglen != k->sig_len)
        return TSR_ERR_TOKEN_SIGNATURE;
    switch (k->kty) {
    case TSR_KTY_OCT:
        tsr_hmac_compute(k->hash, k->pads, msg, n, h);
        ok = tsr_ct_eq(h, sig, siglen);
        tsr_wipe(h, sizeof h);
        return ok ? TSR_OK : TSR_ERR_TOKEN_SIGNATURE;
    case TSR_KTY_OKP:
        return crypto_sign_ed25519_verify_detached(sig, msg, n, k->ed_pub) == 0
                   ? TSR_OK
                   : TSR_ERR_TOKEN_SIGNATURE;
    case TSR_KTY_EC:
        slen = ecdsa_raw_to_der(sig, siglen / 2, der);
        s = der;
        break;
    case TSR_KTY_RSA:
        break;
    default:
        return TSR_ERR_TOKEN_SIGNATURE;
    }
    ctx = tl_verify_ctx(k);
    if (ctx == NULL)
        return TSR_ERR_TOKEN_SIGNATURE; /* fail closed */
    tsr_sha2_digest(k->hash, msg, n, h);
    ok = EVP_PKEY_verify(ctx, s, slen, h, tsr_hash_len(k->hash)) == 1;
    if (!ok)
        ERR_clear_error();
    return ok ? TSR_OK : TSR_ERR_TOKEN_SIGNATURE;
}

/* DER ECDSA-Sig-Value to raw R||S of cl bytes each. */
static tsr_err ecdsa_der_to_raw(const uint8_t *der, size_t n, size_t cl, uint8_t *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    const uint8_t *p = der;
    const BIGNUM *r, *s;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    if (es == NULL)
        goto out;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, out, (int)cl) != (int)cl || BN_bn2binpad(s, out + cl, (int)cl) != (int)cl)
        goto out;
    rc = TSR_OK;
out:
    ECDSA_SIG_free(es);
    return rc;
}

tsr_err tsr_key_sign(const tsr_key *k, const uint8_t *msg, size_t n, uint8_t *sig, size_t cap,
                     size_t *siglen)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t der[TSR_SIG_MAX_BYTES + 16];
    size_t dlen = sizeof der;

    if (siglen == NULL)
        return TSR_ERR_INVALID;
    *siglen = 0;
    if (k == NULL || sig == NULL || (msg == NULL && n > 0))
        return TSR_ERR_INVALID;
    if (!k->has_private)
        return TSR_ERR_INVALID;
    if (cap < k->sig_len)
        return TSR_ERR_BUFFER;
    if (k->kty == TSR_KTY_OCT) {
        tsr_hmac_compute(k->hash, k->pads, msg, n, sig);
        *siglen = k->sig_len;
        return TSR_OK;
    }
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL)
        return TSR_ERR_NOMEM;
    if (EVP_DigestSignInit_ex(mctx, &pctx, k->md != NULL ? EVP_MD_get0_name(k->md) : NULL, NULL,
                              NULL, k->pkey, NULL) != 1)
        goto out;
    if (k->kty != TSR_KTY_OKP && !ctx_configure(k, pctx, 0))
        goto out;
    if (EVP_DigestSign(mctx, der, &dlen, msg, n) != 1)
        goto out;
    if (k->kty == TSR_KTY_EC) {
        rc = ecdsa_der_to_raw(der, dlen, k->sig_len / 2, sig);
        if (rc != TSR_OK)
            goto out;
    } else {
        if (dlen != k->sig_len)
            goto out;
        memcpy(sig, der, dlen);
    }
    *siglen = k->sig_len;
    rc = TSR_OK;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(mctx);
    return rc;
}
