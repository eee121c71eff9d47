/* crypto.h: every use of OpenSSL and libsodium in tessera goes through here.
 *
 * Randomness, constant-time comparison, wiping, hashing, and keys that sign and
 * verify JWS signatures. A tsr_key is bound to exactly one algorithm when it is
 * created (the key pins the algorithm); once built it is immutable and may be
 * shared by any number of threads for verify and sign. */
#ifndef TSR_CRYPTO_H
#define TSR_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define TSR_SHA256_BYTES 32
#define TSR_SIG_MAX_BYTES 512   /* RSA-4096 */
#define TSR_RSA_MIN_BITS 2048
#define TSR_RSA_MAX_BITS 8192
#define TSR_KEY_COMPONENT_MAX_BYTES 1024 /* one RSA/EC/OKP component, raw bytes */

/* Call once at start-up, before threads: initialises libsodium and OpenSSL. */
TSR_MUST_CHECK tsr_err tsr_crypto_init(void);

/* Fills buf with n bytes from OpenSSL's CSPRNG. */
TSR_MUST_CHECK tsr_err tsr_rand(void *buf, size_t n);

/* CT: nonzero when the n bytes at a and b are equal; time depends on n only. */
int tsr_ct_eq(const void *a, const void *b, size_t n);

/* Wipes n bytes at p (not elided by the compiler). p may be NULL when n is 0. */
void tsr_wipe(void *p, size_t n);

/* SHA-256 of n bytes into out. */
TSR_MUST_CHECK tsr_err tsr_sha256(const void *data, size_t n,
                                  uint8_t out[TSR_SHA256_BYTES] /* OUT */);

/* Guarded, locked memory for long-lived secrets (sodium_malloc). NULL on failure.
 * tsr_secure_free wipes; NULL is a no-op. */
/* Authenticated encryption of a small secret (XChaCha20-Poly1305, random nonce):
 * out = nonce || ciphertext || tag, TSR_SEAL_OVERHEAD bytes longer than in. ad
 * (may be NULL with adlen 0) is bound but not encrypted. TSR_ERR_BUFFER when cap
 * is short. */
#define TSR_SEAL_KEY_BYTES 32
#define TSR_SEAL_OVERHEAD (24 + 16)
TSR_MUST_CHECK tsr_err tsr_seal(const uint8_t key[TSR_SEAL_KEY_BYTES], const uint8_t *ad,
                                size_t adlen, const uint8_t *in, size_t n, uint8_t *out /* OUT */,
                                size_t cap, size_t *outlen /* OUT */);
/* The inverse: TSR_ERR_INVALID when the key, ad or data do not match (nothing
 * written then). */
TSR_MUST_CHECK tsr_err tsr_unseal(const uint8_t key[TSR_SEAL_KEY_BYTES], const uint8_t *ad,
                                  size_t adlen, const uint8_t *in, size_t n,
                                  uint8_t *out /* OUT */, size_t cap, size_t *outlen /* OUT */);

void *tsr_secure_alloc(size_t n);
void tsr_secure_free(void *p);

/* JWS algorithms (RFC 7518, RFC 8037). There is no "none". */
typedef enum tsr_alg {
    TSR_ALG_INVALID = 0,
    TSR_ALG_HS256,
    TSR_ALG_HS384,
    TSR_ALG_HS512,
    TSR_ALG_RS256,
    TSR_ALG_RS384,
    TSR_ALG_RS512,
    TSR_ALG_PS256,
    TSR_ALG_PS384,
    TSR_ALG_PS512,
    TSR_ALG_ES256,
    TSR_ALG_ES384,
    TSR_ALG_ES512,
    TSR_ALG_EDDSA,
    TSR_ALG__COUNT
} tsr_alg;

typedef enum tsr_kty {
    TSR_KTY_INVALID = 0,
    TSR_KTY_OCT,
    TSR_KTY_RSA,
    TSR_KTY_EC,
    TSR_KTY_OKP
} tsr_kty;

typedef enum tsr_curve {
    TSR_CURVE_NONE = 0,
    TSR_CURVE_P256,
    TSR_CURVE_P384,
    TSR_CURVE_P521,
    TSR_CURVE_ED25519
} tsr_curve;

/* The key type an algorithm needs, and for ES* the curve. */
tsr_kty tsr_alg_kty(tsr_alg alg);
tsr_curve tsr_alg_curve(tsr_alg alg);
/* Bytes of a signature or tag of this algorithm; for RS and PS it depends on the key. */
size_t tsr_alg_fixed_sig_len(tsr_alg alg);
/* Byte length of one EC coordinate (32, 48, 66) or of an Ed25519 key (32). */
size_t tsr_curve_coord_len(tsr_curve c);

typedef struct tsr_key tsr_key;

/* Key components as raw big-endian bytes (borrowed). Unused fields are {NULL,0}. */
typedef struct tsr_bytes {
    const uint8_t *p;
    size_t n;
} tsr_bytes;

typedef struct tsr_key_parts {
    tsr_kty kty;
    tsr_curve crv;      /* EC and OKP */
    tsr_bytes k;        /* oct secret */
    tsr_bytes n, e;     /* RSA public */
    tsr_bytes d;        /* RSA private exponent, EC private scalar, OKP private key */
    tsr_bytes p, q, dp, dq, qi; /* RSA CRT: all present or all absent */
    tsr_bytes x, y;     /* EC point (each exactly the coordinate length), OKP public */
} tsr_key_parts;

/* Builds a key bound to alg from parts, after validating them: RSA >= 2048 bits,
 * EC point on the curve, private part matching the public one, HMAC secret at
 * least the hash output long. The caller keeps parts (and wipes them). Allocates. */
TSR_MUST_CHECK tsr_err tsr_key_from_parts(tsr_alg alg, const tsr_key_parts *parts,
                                          tsr_key **out /* OUT */);

/* Imports a PEM (SPKI public key or PKCS#8 private key) bound to alg. */
TSR_MUST_CHECK tsr_err tsr_key_from_pem(tsr_alg alg, const char *pem, size_t len,
                                        tsr_key **out /* OUT */);

/* Generates a fresh key for alg (RSA: bits, 0 means 2048; ignored otherwise). */
TSR_MUST_CHECK tsr_err tsr_key_generate(tsr_alg alg, unsigned bits, tsr_key **out /* OUT */);

/* Adds a reference (keys are shared read-only); tsr_key_free drops one. NULL is a no-op. */
tsr_key *tsr_key_ref(tsr_key *k);
void tsr_key_free(tsr_key *k);

tsr_alg tsr_key_alg(const tsr_key *k);
tsr_kty tsr_key_kty(const tsr_key *k);
tsr_curve tsr_key_curve(const tsr_key *k);
int tsr_key_has_private(const tsr_key *k); /* oct keys count as private */
unsigned tsr_key_bits(const tsr_key *k);
/* Exact signature length this key produces and accepts. */
size_t tsr_key_sig_len(const tsr_key *k);

/* Exports the components. Public only unless with_private. The bytes live in
 * *buf (heap, secret when private: free with tsr_key_parts_buf_free); parts
 * points into it. */
TSR_MUST_CHECK tsr_err tsr_key_export(const tsr_key *k, int with_private,
                                      tsr_key_parts *parts /* OUT */, void **buf /* OUT */);
void tsr_key_parts_buf_free(void *buf);

/* PEM of the public key (SPKI) or, with with_private, PKCS#8 private key.
 * Heap string in *pem (free with tsr_key_pem_free, which wipes). oct keys have no PEM. */
TSR_MUST_CHECK tsr_err tsr_key_to_pem(const tsr_key *k, int with_private, char **pem /* OUT */,
                                      size_t *len /* OUT */);
void tsr_key_pem_free(char *pem, size_t len);

/* Signs msg with the key's algorithm; sig receives exactly tsr_key_sig_len(k) bytes
 * (JWS form: raw R||S for ECDSA). Needs the private part. */
TSR_MUST_CHECK tsr_err tsr_key_sign(const tsr_key *k, const uint8_t *msg, size_t n,
                                    uint8_t *sig /* OUT */, size_t cap, size_t *siglen /* OUT */);

/* Verifies a JWS signature over msg. TSR_OK only for a valid signature of the exact
 * length; TSR_ERR_TOKEN_SIGNATURE otherwise. CT for HMAC. Thread-safe; allocates
 * nothing after the first call on a thread. */
TSR_MUST_CHECK tsr_err tsr_key_verify(const tsr_key *k, const uint8_t *msg, size_t n,
                                      const uint8_t *sig, size_t siglen);

/* Releases this thread's cached verification contexts (optional; also at thread exit). */
void tsr_crypto_thread_cleanup(void);

/* ---- passwords: Argon2id through libsodium (password.c) ----
 *
 * Hashes are libsodium's encoded strings ("$argon2id$v=19$m=...,t=...,p=1$...").
 * libsodium's Argon2id always uses one lane: parallelism must be 1 (anything
 * else is TSR_ERR_UNSUPPORTED). Hashing costs memory_kib KiB and real time: run
 * it off the request threads (common/pool.h). Passwords are bytes (any UTF-8),
 * 8..256 of them (NIST SP 800-63B) for a new password; the caller wipes them. */

#define TSR_PASSWORD_MIN_BYTES 8
#define TSR_PASSWORD_MAX_BYTES 256
#define TSR_PWHASH_STR_BYTES 128          /* crypto_pwhash_STRBYTES, NUL included */
#define TSR_ARGON2_MEMORY_KIB_MIN 8       /* crypto_pwhash_MEMLIMIT_MIN is 8192 bytes */
#define TSR_ARGON2_MEMORY_KIB_MAX 4194304 /* 4 GiB */
#define TSR_ARGON2_ITERATIONS_MIN 1
#define TSR_ARGON2_ITERATIONS_MAX 64
#define TSR_SHA256_HEX_CHARS 64

typedef struct tsr_pwparams {
    uint32_t memory_kib;   /* default 19456 (19 MiB) */
    uint32_t iterations;   /* default 2 */
    uint32_t parallelism;  /* must be 1 */
} tsr_pwparams;

/* TSR_OK when p is within the bounds above; TSR_ERR_INVALID or, for
 * parallelism != 1, TSR_ERR_UNSUPPORTED. */
TSR_MUST_CHECK tsr_err tsr_password_params_check(const tsr_pwparams *p);

/* TSR_OK for 8..256 bytes, else TSR_ERR_WEAK_PASSWORD. pw may hold NULs. */
TSR_MUST_CHECK tsr_err tsr_password_policy_check(const char *pw, size_t n);

/* Hashes a new password (policy checked first: TSR_ERR_WEAK_PASSWORD) into out,
 * NUL-terminated; cap >= TSR_PWHASH_STR_BYTES. TSR_ERR_NOMEM when the memory cost
 * cannot be allocated. out is "" on failure. */
TSR_MUST_CHECK tsr_err tsr_password_hash(const tsr_pwparams *p, const char *pw, size_t n,
                                         char *out /* OUT */, size_t cap);

/* CT: TSR_OK when pw matches the encoded Argon2id hash, TSR_ERR_INVALID_CREDENTIALS
 * when it does not (or pw is over 256 bytes), TSR_ERR_INVALID for an encoded
 * string that is not Argon2id, TSR_ERR_NOMEM when its memory cost cannot be met. */
TSR_MUST_CHECK tsr_err tsr_password_verify(const char *encoded, const char *pw, size_t n);

/* *needs = 1 when the encoded hash was made with other parameters than p (or is
 * not Argon2id) and should be replaced after a successful verify; 0 otherwise.
 * TSR_ERR_INVALID for a malformed string (then *needs is 1). */
TSR_MUST_CHECK tsr_err tsr_password_needs_rehash(const char *encoded, const tsr_pwparams *p,
                                                 int *needs /* OUT */);

/* CT: costs what a real tsr_password_verify with params p costs, and always
 * fails; for unknown usernames, so timing does not reveal which accounts exist.
 * The first call with new params hashes a random password once (cached). */
void tsr_password_dummy_verify(const tsr_pwparams *p, const char *pw, size_t n);

/* HMAC-SHA-256 of n bytes under a 32-byte key (libsodium), to authenticate our
 * own data kept where others could write it (cached session records in Redis). */
#define TSR_MAC_KEY_BYTES 32
#define TSR_MAC_BYTES 32
TSR_MUST_CHECK tsr_err tsr_mac(const uint8_t key[TSR_MAC_KEY_BYTES], const void *data, size_t n,
                               uint8_t out[TSR_MAC_BYTES] /* OUT */);

/* SHA-256 of n bytes as 64 lower-case hex characters and a NUL. */
TSR_MUST_CHECK tsr_err tsr_sha256_hex(const void *data, size_t n,
                                      char out[TSR_SHA256_HEX_CHARS + 1] /* OUT */);

/* CT: nonzero when the two byte strings are equal, compared by their SHA-256 so
 * that time depends on neither content nor length (admin keys, any secret of
 * variable length). */
int tsr_ct_eq_sha256(const void *a, size_t an, const void *b, size_t bn);

#endif
