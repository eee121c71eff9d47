/* crypto.c: start-up, randomness, constant-time compare, wiping, SHA-256, secure
 * memory and the algorithm tables. */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "crypto/crypto_int.h"

static const EVP_MD *hash_mds[4];

static const struct {
    tsr_kty kty;
    tsr_curve crv;
    tsr_hash hash;
    size_t sig_len; /* 0: depends on the key (RSA) */
} alg_table[TSR_ALG__COUNT] = {
    [TSR_ALG_HS256] = {TSR_KTY_OCT, TSR_CURVE_NONE, TSR_HASH_SHA256, 32},
    [TSR_ALG_HS384] = {TSR_KTY_OCT, TSR_CURVE_NONE, TSR_HASH_SHA384, 48},
    [TSR_ALG_HS512] = {TSR_KTY_OCT, TSR_CURVE_NONE, TSR_HASH_SHA512, 64},
    [TSR_ALG_RS256] = {TSR_KTY_RSA, TSR_CURVE_NONE, TSR_HASH_SHA256, 0},
    [TSR_ALG_RS384] = {TSR_KTY_RSA, TSR_CURVE_NONE, TSR_HASH_SHA384, 0},
    [TSR_ALG_RS512] = {TSR_KTY_RSA, TSR_CURVE_NONE, TSR_HASH_SHA512, 0},
    [TSR_ALG_PS256] = {TSR_KTY_RSA, TSR_CURVE_NONE, TSR_HASH_SHA256, 0},
    [TSR_ALG_PS384] = {TSR_KTY_RSA, TSR_CURVE_NONE, TSR_HASH_SHA384, 0},
    [TSR_ALG_PS512] = {TSR_KTY_RSA, TSR_CURVE_NONE, TSR_HASH_SHA512, 0},
    [TSR_ALG_ES256] = {TSR_KTY_EC, TSR_CURVE_P256, TSR_HASH_SHA256, 64},
    [TSR_ALG_ES384] = {TSR_KTY_EC, TSR_CURVE_P384, TSR_HASH_SHA384, 96},
    [TSR_ALG_ES512] = {TSR_KTY_EC, TSR_CURVE_P521, TSR_HASH_SHA512, 132},
    [TSR_ALG_EDDSA] = {TSR_KTY_OKP, TSR_CURVE_ED25519, TSR_HASH_INVALID, 64},
};

tsr_err tsr_crypto_init(void)
{
    static const char *names[4] = {NULL, "SHA2-256", "SHA2-384", "SHA2-512"};

    if (sodium_init() < 0)
        return TSR_ERR_INTERNAL;
    for (int i = 1; i < 4; i++) {
        if (hash_mds[i] != NULL)
            continue;
        hash_mds[i] = EVP_MD_fetch(NULL, names[i], NULL);
        if (hash_mds[i] == NULL)
            return TSR_ERR_INTERNAL;
    }
    return TSR_OK;
}

tsr_err tsr_rand(void *buf, size_t n)
{
    if (n == 0)
        return TSR_OK;
    if (buf == NULL || n > INT32_MAX)
        return TSR_ERR_INVALID;
    if (RAND_bytes(buf, (int)n) != 1) {
        memset(buf, 0, n);
        return TSR_ERR_INTERNAL;
    }
    return TSR_OK;
}

int tsr_ct_eq(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void tsr_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

tsr_err tsr_sha256(const void *data, size_t n, uint8_t out[TSR_SHA256_BYTES])
{
    if (data == NULL && n > 0)
        return TSR_ERR_INVALID;
    tsr_sha2_digest(TSR_HASH_SHA256, data, n, out);
    return TSR_OK;
}

void *tsr_secure_alloc(size_t n)
{
    return sodium_malloc(n);
}

void tsr_secure_free(void *p)
{
    if (p != NULL)
        sodium_free(p); /* wipes before unmapping */
}

tsr_kty tsr_alg_kty(tsr_alg alg)
{
    return (unsigned)alg < TSR_ALG__COUNT ? alg_table[alg].kty : TSR_KTY_INVALID;
}

tsr_curve tsr_alg_curve(tsr_alg alg)
{
    return (unsigned)alg < TSR_ALG__COUNT ? alg_table[alg].crv : TSR_CURVE_NONE;
}

size_t tsr_alg_fixed_sig_len(tsr_alg alg)
{
    return (unsigned)alg < TSR_ALG__COUNT ? alg_table[alg].sig_len : 0;
}

tsr_hash tsr_alg_hash(tsr_alg alg)
{
    return (unsigned)alg < TSR_ALG__COUNT ? alg_table[alg].hash : TSR_HASH_INVALID;
}

size_t tsr_hash_len(tsr_hash h)
{
    switch (h) {
    case TSR_HASH_SHA256: return 32;
    case TSR_HASH_SHA384: return 48;
    case TSR_HASH_SHA512: return 64;
    default: return 0;
    }
}

const EVP_MD *tsr_hash_md(tsr_hash h)
{
    return (h > TSR_HASH_INVALID && h <= TSR_HASH_SHA512) ? hash_mds[h] : NULL;
}

size_t tsr_curve_coord_len(tsr_curve c)
{
    switch (c) {
    case TSR_CURVE_P256: return 32;
    case TSR_CURVE_P384: return 48;
    case TSR_CURVE_P521: return 66;
    case TSR_CURVE_ED25519: return 32;
    default: return 0;
    }
}

tsr_err tsr_mac(const uint8_t key[TSR_MAC_KEY_BYTES], const void *data, size_t n,
                uint8_t out[TSR_MAC_BYTES])
{
    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, TSR_MAC_BYTES);
    if (key == NULL || (data == NULL && n > 0))
        return TSR_ERR_INVALID;
    if (crypto_auth_hmacsha256(out, (const unsigned char *)data, (unsigned long long)n, key) != 0)
        return TSR_ERR_INTERNAL;
    return TSR_OK;
}
