/* sha2.c: SHA-2 digests and HMAC with no allocation, for the verify hot path.
 *
 * OpenSSL 3's EVP digests allocate a provider context per init or copy; the
 * low-level SHA256_/SHA512_ functions work on plain structs that can be copied
 * with memcpy, which lets an HMAC key keep its inner and outer pad states
 * prepared once and reuse them on every call. Those functions are deprecated in
 * OpenSSL 3 but still built in (same assembly, SHA-NI included); this file is
 * their only user. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <string.h>

#include <openssl/sha.h>

#include "crypto/crypto_int.h"

_Static_assert(sizeof(SHA512_CTX) <= sizeof(((tsr_sha2_state *)0)->opaque), "sha2 state size");
_Static_assert(sizeof(SHA256_CTX) <= sizeof(((tsr_sha2_state *)0)->opaque), "sha2 state size");

static size_t block_len(tsr_hash h)
{
    return h == TSR_HASH_SHA256 ? 64 : 128;
}

static void st_init(tsr_hash h, tsr_sha2_state *st)
{
    switch (h) {
    case TSR_HASH_SHA256: SHA256_Init((SHA256_CTX *)st->opaque); break;
    case TSR_HASH_SHA384: SHA384_Init((SHA512_CTX *)st->opaque); break;
    default: SHA512_Init((SHA512_CTX *)st->opaque); break;
    }
}

static void st_update(tsr_hash h, tsr_sha2_state *st, const uint8_t *p, size_t n)
{
    switch (h) {
    case TSR_HASH_SHA256: SHA256_Update((SHA256_CTX *)st->opaque, p, n); break;
    case TSR_HASH_SHA384: SHA384_Update((SHA512_CTX *)st->opaque, p, n); break;
    default: SHA512_Update((SHA512_CTX *)st->opaque, p, n); break;
    }
}

static void st_final(tsr_hash h, tsr_sha2_state *st, uint8_t *out)
{
    switch (h) {
    case TSR_HASH_SHA256: SHA256_Final(out, (SHA256_CTX *)st->opaque); break;
    case TSR_HASH_SHA384: SHA384_Final(out, (SHA512_CTX *)st->opaque); break;
    default: SHA512_Final(out, (SHA512_CTX *)st->opaque); break;
    }
}

void tsr_sha2_digest(tsr_hash h, const uint8_t *msg, size_t n, uint8_t *out)
{
    tsr_sha2_state st;
    st_init(h, &st);
    st_update(h, &st, msg, n);
    st_final(h, &st, out);
    tsr_wipe(&st, sizeof st);
}

void tsr_hmac_prepare(tsr_hash h, const uint8_t *key, size_t keylen, tsr_hmac_pads *pads)
{
    uint8_t k0[TSR_SHA2_BLOCK_MAX], pad[TSR_SHA2_BLOCK_MAX];
    size_t bl = block_len(h);

    memset(k0, 0, sizeof k0);
    if (keylen > bl)
        tsr_sha2_digest(h, key, keylen, k0);
    else
        memcpy(k0, key, keylen);
    for (size_t i = 0; i < bl; i++)
        pad[i] = k0[i] ^ 0x36;
    st_init(h, &pads->inner);
    st_update(h, &pads->inner, pad, bl);
    for (size_t i = 0; i < bl; i++)
        pad[i] = k0[i] ^ 0x5c;
    st_init(h, &pads->outer);
    st_update(h, &pads->outer, pad, bl);
    tsr_wipe(k0, sizeof k0);
    tsr_wipe(pad, sizeof pad);
}

void tsr_hmac_compute(tsr_hash h, const tsr_hmac_pads *pads, const uint8_t *msg, size_t n,
                      uint8_t *out)
{
    tsr_sha2_state st;
    uint8_t inner[TSR_HASH_MAX_BYTES];

    memcpy(&st, &pads->inner, sizeof st);
    st_update(h, &st, msg, n);
    st_final(h, &st, inner);
    memcpy(&st, &pads->outer, sizeof st);
    st_update(h, &st, inner, tsr_hash_len(h));
    st_final(h, &st, out);
    tsr_wipe(&st, sizeof st);
    tsr_wipe(inner, sizeof inner);
}
