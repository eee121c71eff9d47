/* password.c: Argon2id password hashing through libsodium (crypto_pwhash_str_*),
 * the dummy verify that hides which usernames exist, and SHA-256 helpers for
 * comparing variable-length secrets (admin keys) in constant time. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"

#define ARGON2ID_PREFIX "$argon2id$"

_Static_assert(TSR_PWHASH_STR_BYTES == crypto_pwhash_STRBYTES, "libsodium hash string size");

tsr_err tsr_password_params_check(const tsr_pwparams *p)
{
    if (p == NULL)
        return TSR_ERR_INVALID;
    if (p->parallelism != 1)
        return TSR_ERR_UNSUPPORTED; /* libsodium's Argon2id has one lane */
    if (p->memory_kib < TSR_ARGON2_MEMORY_KIB_MIN || p->memory_kib > TSR_ARGON2_MEMORY_KIB_MAX)
        return TSR_ERR_INVALID;
    if (p->iterations < TSR_ARGON2_ITERATIONS_MIN || p->iterations > TSR_ARGON2_ITERATIONS_MAX)
        return TSR_ERR_INVALID;
    if ((size_t)p->memory_kib * 1024u < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
        (size_t)p->memory_kib * 1024u > crypto_pwhash_argon2id_MEMLIMIT_MAX ||
        p->iterations < crypto_pwhash_argon2id_OPSLIMIT_MIN)
        return TSR_ERR_INVALID;
    return TSR_OK;
}

tsr_err tsr_password_policy_check(const char *pw, size_t n)
{
    if (pw == NULL && n > 0)
        return TSR_ERR_INVALID;
    if (n < TSR_PASSWORD_MIN_BYTES || n > TSR_PASSWORD_MAX_BYTES)
        return TSR_ERR_WEAK_PASSWORD;
    return TSR_OK;
}

tsr_err tsr_password_hash(const tsr_pwparams *p, const char *pw, size_t n, char *out, size_t cap)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char tmp[crypto_pwhash_STRBYTES];

    if (out == NULL || cap < TSR_PWHASH_STR_BYTES)
        return TSR_ERR_BUFFER;
    memset(out, 0, cap);
    rc = tsr_password_params_check(p);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_password_policy_check(pw, n);
    if (rc != TSR_OK)
        goto out;
    memset(tmp, 0, sizeof tmp);
    if (crypto_pwhash_str_alg(tmp, pw, n, p->iterations, (size_t)p->memory_kib * 1024u,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        rc = TSR_ERR_NOMEM; /* libsodium fails only when the memory cannot be had */
        goto out;
    }
    if (strncmp(tmp, ARGON2ID_PREFIX, sizeof ARGON2ID_PREFIX - 1) != 0 ||
        memchr(tmp, '\0', sizeof tmp) == NULL) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    memcpy(out, tmp, strlen(tmp) + 1);
    rc = TSR_OK;
out:
    tsr_wipe(tmp, sizeof tmp);
    return rc;
}

/* A NUL-terminated Argon2id encoded string that fits libsodium's buffer. */
static int encoded_ok(const char *encoded)
{
    if (encoded == NULL)
        return 0;
    if (memchr(encoded, '\0', crypto_pwhash_STRBYTES) == NULL)
        return 0;
    return strncmp(encoded, ARGON2ID_PREFIX, sizeof ARGON2ID_PREFIX - 1) == 0;
}

tsr_err tsr_password_verify(const char *encoded, const char *pw, size_t n)
{
    char str[crypto_pwhash_STRBYTES];

    if (!encoded_ok(encoded))
        return TSR_ERR_INVALID;
    if (pw == NULL && n > 0)
        return TSR_ERR_INVALID;
    if (n > TSR_PASSWORD_MAX_BYTES)
        return TSR_ERR_INVALID_CREDENTIALS;
    /* libsodium reads the encoded string as an array of STRBYTES. */
    memset(str, 0, sizeof str);
    memcpy(str, encoded, strlen(encoded) + 1);
    if (crypto_pwhash_str_verify(str, pw != NULL ? pw : "", n) == 0)
        return TSR_OK;
    return TSR_ERR_INVALID_CREDENTIALS;
}

tsr_err tsr_password_needs_rehash(const char *encoded, const tsr_pwparams *p, int *needs)
{
    char str[crypto_pwhash_STRBYTES];

    if (needs == NULL)
        return TSR_ERR_INVALID;
    *needs = 1;
    if (tsr_password_params_check(p) != TSR_OK)
        return TSR_ERR_INVALID;
    if (!encoded_ok(encoded))
        return TSR_ERR_INVALID;
    memset(str, 0, sizeof str);
    memcpy(str, encoded, strlen(encoded) + 1);
    int r = crypto_pwhash_str_needs_rehash(str, p->iterations, (size_t)p->memory_kib * 1024u);
    if (r < 0)
        return TSR_ERR_INVALID;
    *needs = r != 0;
    return TSR_OK;
}

/* One cached hash of a random password per parameter set, for dummy verifies. */
static pthread_mutex_t dummy_mu = PTHREAD_MUTEX_INITIALIZER;
static tsr_pwparams dummy_params;
static char dummy_hash[crypto_pwhash_STRBYTES];

void tsr_password_dummy_verify(const tsr_pwparams *p, const char *pw, size_t n)
{
    char hash[crypto_pwhash_STRBYTES];
    uint8_t rnd[16];
    char rpw[2 * sizeof rnd + 1];

    memset(hash, 0, sizeof hash);
    memset(rnd, 0, sizeof rnd);
    memset(rpw, 0, sizeof rpw);
    if (tsr_password_params_check(p) != TSR_OK)
        return;
    pthread_mutex_lock(&dummy_mu);
    if (dummy_hash[0] != '\0' && dummy_params.memory_kib == p->memory_kib &&
        dummy_params.iterations == p->iterations)
        memcpy(hash, dummy_hash, sizeof hash);
    pthread_mutex_unlock(&dummy_mu);

    if (hash[0] == '\0') {
        /* A password nobody knows: the verify below can never succeed. */
        if (tsr_rand(rnd, sizeof rnd) != TSR_OK)
            goto out;
        for (size_t i = 0; i < sizeof rnd; i++) {
            static const char hex[] = "0123456789abcdef";
            rpw[2 * i] = hex[rnd[i] >> 4];
            rpw[2 * i + 1] = hex[rnd[i] & 15];
        }
        rpw[2 * sizeof rnd] = '\0';
        if (tsr_password_hash(p, rpw, 2 * sizeof rnd, hash, sizeof hash) != TSR_OK)
            goto out;
        pthread_mutex_lock(&dummy_mu);
        memcpy(dummy_hash, hash, sizeof hash);
        dummy_params = *p;
        pthread_mutex_unlock(&dummy_mu);
    }
    if (n > TSR_PASSWORD_MAX_BYTES)
        n = TSR_PASSWORD_MAX_BYTES;
    /* The result is meaningless; only the cost matters. */
    volatile int sink = crypto_pwhash_str_verify(hash, pw != NULL ? pw : "", pw != NULL ? n : 0);
    (void)sink;
out:
    tsr_wipe(rnd, sizeof rnd);
    tsr_wipe(rpw, sizeof rpw);
}

tsr_err tsr_sha256_hex(const void *data, size_t n, char out[TSR_SHA256_HEX_CHARS + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t h[TSR_SHA256_BYTES];
    tsr_err rc = TSR_ERR_INTERNAL;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, TSR_SHA256_HEX_CHARS + 1);
    rc = tsr_sha256(data, n, h);
    if (rc != TSR_OK)
        goto out;
    for (size_t i = 0; i < TSR_SHA256_BYTES; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[TSR_SHA256_HEX_CHARS] = '\0';
    rc = TSR_OK;
out:
    tsr_wipe(h, sizeof h);
    return rc;
}

int tsr_ct_eq_sha256(const void *a, size_t an, const void *b, size_t bn)
{
    uint8_t ha[TSR_SHA256_BYTES], hb[TSR_SHA256_BYTES];
    int eq = 0;

    if ((a == NULL && an > 0) || (b == NULL && bn > 0))
        return 0;
    if (tsr_sha256(a, an, ha) != TSR_OK || tsr_sha256(b, bn, hb) != TSR_OK)
        goto out;
    eq = tsr_ct_eq(ha, hb, sizeof ha);
out:
    tsr_wipe(ha, sizeof ha);
    tsr_wipe(hb, sizeof hb);
    return eq;
}
