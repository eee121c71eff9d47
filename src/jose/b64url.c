/* b64url.c: strict base64url (RFC 4648 section 5) without padding.
 *
 * Decoding accepts exactly one spelling per value: no '=', no characters outside
 * the alphabet, no length that leaves 6 stray bits, and zero unused trailing bits,
 * so a token cannot be varied without changing its bytes. Table driven, branch
 * light, no allocation. */
#include <string.h>

#include "jose/jose.h"

static const char enc_table[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for alphabet characters, 0xff for everything else. */
static const uint8_t dec_table[256] = {
#define X 0xff
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  62, X,  X,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X,  X,  X,  X,  X,  X,
    X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X,  X,  X,  X,  63,
    X,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
#undef X
};

size_t tsr_b64url_encoded_len(size_t n)
{
    return (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t tsr_b64url_decoded_max(size_t n)
{
    return (n / 4) * 3 + (n % 4 == 0 ? 0 : n % 4 - 1 + (n % 4 == 1));
}

tsr_err tsr_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *outlen)
{
    size_t need, i = 0, w = 0;

    if (outlen == NULL)
        return TSR_ERR_INVALID;
    *outlen = 0;
    if (out == NULL || (in == NULL && n > 0))
        return TSR_ERR_INVALID;
    if (n > (SIZE_MAX / 4) * 3 - 3)
        return TSR_ERR_TOO_LARGE;
    need = tsr_b64url_encoded_len(n);
    if (cap < need + 1) {
        if (cap > 0)
            out[0] = '\0';
        return TSR_ERR_BUFFER;
    }
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[w++] = enc_table[v >> 18];
        out[w++] = enc_table[(v >> 12) & 63];
        out[w++] = enc_table[(v >> 6) & 63];
        out[w++] = enc_table[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[w++] = enc_table[v >> 18];
        out[w++] = enc_table[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[w++] = enc_table[v >> 18];
        out[w++] = enc_table[(v >> 12) & 63];
        out[w++] = enc_table[(v >> 6) & 63];
    }
    out[w] = '\0';
    *outlen = w;
    return TSR_OK;
}

tsr_err tsr_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    const uint8_t *s = (const uint8_t *)in;
    size_t i = 0, w = 0, rem = n % 4;

    if (outlen == NULL)
        return TSR_ERR_INVALID;
    *outlen = 0;
    if ((in == NULL && n > 0) || (out == NULL && cap > 0))
        return TSR_ERR_INVALID;
    if (rem == 1)
        return TSR_ERR_INVALID;
    if (cap < tsr_b64url_decoded_max(n))
        return TSR_ERR_BUFFER;
    for (; i + 4 <= n; i += 4) {
        uint32_t a = dec_table[s[i]], b = dec_table[s[i + 1]], c = dec_table[s[i + 2]],
                 d = dec_table[s[i + 3]];
        if ((a | b | c | d) & 0x80)
            goto bad;
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        out[w++] = (uint8_t)(v >> 16);
        out[w++] = (uint8_t)(v >> 8);
        out[w++] = (uint8_t)v;
    }
    if (rem == 2) {
        uint32_t a = dec_table[s[i]], b = dec_table[s[i + 1]];
        if ((a | b) & 0x80 || (b & 0x0f) != 0)
            goto bad;
        out[w++] = (uint8_t)(a << 2 | b >> 4);
    } else if (rem == 3) {
        uint32_t a = dec_table[s[i]], b = dec_table[s[i + 1]], c = dec_table[s[i + 2]];
        if ((a | b | c) & 0x80 || (c & 0x03) != 0)
            goto bad;
        uint32_t v = a << 18 | b << 12 | c << 6;
        out[w++] = (uint8_t)(v >> 16);
        out[w++] = (uint8_t)(v >> 8);
    }
    *outlen = w;
    return TSR_OK;
bad:
    memset(out, 0, w);
    return TSR_ERR_INVALID;
}
