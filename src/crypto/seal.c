/* seal.c: small-secret authenticated encryption (XChaCha20-Poly1305 through
 * libsodium), used to keep a refresh token's successor recoverable only by the
 * holder of the token it replaced. */
#include <string.h>

#include <sodium.h>

#include "crypto/crypto_int.h"

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

_Static_assert(NONCE_BYTES + TAG_BYTES == TSR_SEAL_OVERHEAD, "seal overhead");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == TSR_SEAL_KEY_BYTES, "seal key");

tsr_err tsr_seal(const uint8_t key[TSR_SEAL_KEY_BYTES], const uint8_t *ad, size_t adlen,
                 const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    unsigned long long clen = 0;

    if (outlen != NULL)
        *outlen = 0;
    if (key == NULL || (in == NULL && n > 0) || out == NULL || outlen == NULL ||
        (ad == NULL && adlen > 0))
        return TSR_ERR_INVALID;
    if (n > cap || cap - n < TSR_SEAL_OVERHEAD)
        return TSR_ERR_BUFFER;
    if (tsr_rand(out, NONCE_BYTES) != TSR_OK)
        return TSR_ERR_INTERNAL;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE_BYTES, &clen, in, n, ad, adlen,
                                                   NULL, out, key) != 0)
        return TSR_ERR_INTERNAL;
    *outlen = NONCE_BYTES + (size_t)clen;
    return TSR_OK;
}

tsr_err tsr_unseal(const uint8_t key[TSR_SEAL_KEY_BYTES], const uint8_t *ad, size_t adlen,
                   const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    unsigned long long mlen = 0;

    if (outlen != NULL)
        *outlen = 0;
    if (key == NULL || in == NULL || out == NULL || outlen == NULL || (ad == NULL && adlen > 0))
        return TSR_ERR_INVALID;
    if (n < TSR_SEAL_OVERHEAD)
        return TSR_ERR_INVALID;
    if (n - TSR_SEAL_OVERHEAD > cap)
        return TSR_ERR_BUFFER;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, in + NONCE_BYTES,
                                                   n - NONCE_BYTES, ad, adlen, in, key) != 0)
        return TSR_ERR_INVALID;
    *outlen = (size_t)mlen;
    return TSR_OK;
}
