/* crypto_int.h: internals shared by the files of src/crypto/ only. */
#ifndef TSR_CRYPTO_INT_H
#define TSR_CRYPTO_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "crypto/crypto.h"

#define TSR_HASH_MAX_BYTES 64
#define TSR_SHA2_BLOCK_MAX 128

/* Hashes of the JWS algorithms: SHA-256, SHA-384, SHA-512. */
typedef enum tsr_hash {
    TSR_HASH_INVALID = 0,
    TSR_HASH_SHA256,
    TSR_HASH_SHA384,
    TSR_HASH_SHA512
} tsr_hash;

/* A SHA-2 state that can be copied with memcpy (prepared HMAC pads). Opaque storage
 * large enough for SHA512_CTX; see sha2.c. */
typedef struct tsr_sha2_state {
    _Alignas(16) uint8_t opaque[256];
} tsr_sha2_state;

/* Prepared HMAC: the inner and outer states after absorbing key^ipad and key^opad.
 * Secret: lives in sodium_malloc memory inside the key. */
typedef struct tsr_hmac_pads {
    tsr_sha2_state inner, outer;
} tsr_hmac_pads;

struct tsr_key {
    atomic_int refs;
    uint64_t id;            /* unique per process, never reused: thread caches key on it */
    tsr_alg alg;
    tsr_kty kty;
    tsr_curve crv;
    tsr_hash hash;
    unsigned bits;
    size_t sig_len;
    int has_private;
    EVP_PKEY *pkey;         /* RSA, EC, Ed25519 */
    const EVP_MD *md;       /* fetched once; NULL for Ed25519 and HMAC */
    uint8_t ed_pub[32];     /* Ed25519 public key, for libsodium verify */
    uint8_t *secret;        /* oct secret (sodium_malloc) */
    size_t secret_len;
    tsr_hmac_pads *pads;    /* oct: prepared pads (sodium_malloc) */
};

size_t tsr_hash_len(tsr_hash h);
tsr_hash tsr_alg_hash(tsr_alg alg);
const EVP_MD *tsr_hash_md(tsr_hash h);  /* fetched at init, never freed while running */

/* sha2.c: allocation-free SHA-2 and HMAC on the prepared pads. */
void tsr_sha2_digest(tsr_hash h, const uint8_t *msg, size_t n, uint8_t *out);
void tsr_hmac_prepare(tsr_hash h, const uint8_t *key, size_t keylen, tsr_hmac_pads *pads);
void tsr_hmac_compute(tsr_hash h, const tsr_hmac_pads *pads, const uint8_t *msg, size_t n,
                      uint8_t *out);

/* sig.c: prepares the per-key part of the verifier after a key is built. */
TSR_MUST_CHECK tsr_err tsr_key_finish(tsr_key *k);

#endif
