/* test_b64url.c: strict base64url (RFC 4648 section 5, no padding).
 *
 * Known answers, random round trips, every rejection rule (padding, the standard
 * alphabet, whitespace, NUL, length mod 4 == 1, non-canonical trailing bits), small
 * output buffers, mutated twins of accepted inputs, every prefix of valid strings,
 * and random strings checked against a plain reference decoder written here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "harness.h"
#include "jose/jose.h"

#define MAX_BYTES 300
#define MAX_CHARS 400 /* tsr_b64url_encoded_len(MAX_BYTES) */

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Characters that must never be accepted anywhere in an input. */
static const char BAD_CHARS[] = {'=',  '+', '/', ' ', '\t',   '\n',   '\r',
                                 '\0', '.', '~', '"', '\x7f', '\x80', '\xff'};

static const struct {
    const char *raw;
    const char *enc;
} RFC4648[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

/* Printable form of n input chars for failure messages (static buffer). */
static const char *show(const char *s, size_t n)
{
    static char buf[4 * MAX_CHARS + 16];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < sizeof buf; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x21 && ch < 0x7f && ch != '\\') {
            buf[o++] = (char)ch;
        } else {
            int w = snprintf(buf + o, sizeof buf - o, "\\x%02x", ch);
            if (w < 0 || (size_t)w >= sizeof buf - o)
                break;
            o += (size_t)w;
        }
    }
    buf[o] = '\0';
    return buf;
}

static int alpha_index(unsigned char ch)
{
    const char *p = ch != '\0' ? memchr(ALPHABET, ch, 64) : NULL;
    return p ? (int)(p - ALPHABET) : -1;
}

/* Plain reference decoder: the decoded length, or -1 where the strict rules reject. */
static long ref_decode(const char *in, size_t n, uint8_t *out)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = alpha_index((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = ((acc << 6) | (uint32_t)v) & 0xffffu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1u)) != 0)
        return -1;
    return (long)o;
}

/* Decodes with an ample buffer; 1 when accepted. Checks the failure contract. */
static int decodes(const char *in, size_t n, uint8_t *out, size_t *outlen)
{
    uint8_t buf[MAX_CHARS];
    size_t len = 12345;
    tsr_err rc = tsr_b64url_decode(in, n, buf, sizeof buf, &len);
    if (rc != TSR_OK) {
        CHECKF(rc == TSR_ERR_INVALID, "\"%s\": rejected with %s, want %s", show(in, n),
               tsr_err_text(rc), tsr_err_text(TSR_ERR_INVALID));
        CHECKF(len == 0, "\"%s\": failed decode left outlen %zu", show(in, n), len);
        return 0;
    }
    CHECKF(len <= tsr_b64url_decoded_max(n), "\"%s\": %zu bytes over decoded_max %zu", show(in, n),
           len, tsr_b64url_decoded_max(n));
    if (out != NULL)
        memcpy(out, buf, len);
    if (outlen != NULL)
        *outlen = len;
    return 1;
}

static void expect_rejected(const char *in, size_t n)
{
    CHECKF(!decodes(in, n, NULL, NULL), "\"%s\" (%zu chars) accepted", show(in, n), n);
}

static size_t rand_below(size_t bound)
{
    uint32_t r = 0;
    CHECK(tsr_rand(&r, sizeof r) == TSR_OK);
    return bound ? (size_t)r % bound : 0;
}

/* Encodes n bytes; checks length, NUL and alphabet. Returns the length (0 on failure). */
static size_t encode_checked(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t len = 12345;
    tsr_err rc = tsr_b64url_encode(in, n, out, cap, &len);
    CHECKF(rc == TSR_OK, "encode of %zu bytes: %s", n, tsr_err_text(rc));
    if (rc != TSR_OK)
        return 0;
    CHECKF(len == tsr_b64url_encoded_len(n), "encode of %zu bytes: %zu chars, encoded_len %zu", n,
           len, tsr_b64url_encoded_len(n));
    CHECKF(len < cap && out[len] == '\0', "encode of %zu bytes: not NUL-terminated", n);
    CHECKF(strspn(out, ALPHABET) == len, "encode of %zu bytes: \"%s\" off the alphabet", n,
           show(out, len));
    return len;
}

/* Twins of an accepted string: a bad char at pos, a changed length, a non-canonical tail. */
static void check_twins_at(const char *s, size_t n, size_t pos)
{
    char t[MAX_CHARS + 2];
    if (n > MAX_CHARS)
        return;
    for (size_t b = 0; b < sizeof BAD_CHARS && pos < n; b++) {
        memcpy(t, s, n);
        t[pos] = BAD_CHARS[b];
        expect_rejected(t, n);
    }
    memcpy(t, s, n);
    if (n % 4 == 0) {
        t[n] = 'A'; /* length now 1 mod 4 */
        expect_rejected(t, n + 1);
    } else {
        /* A tail of 2 or 3 chars: setting the lowest unused bit makes it non-canonical. */
        int v = alpha_index((unsigned char)t[n - 1]);
        t[n - 1] = ALPHABET[v | 1];
        expect_rejected(t, n);
    }
    if (n % 4 == 2) {
        memcpy(t, s, n);
        expect_rejected(t, n - 1); /* drop a char: length 1 mod 4 */
    }
}

static void encodes_rfc4648_vectors(void)
{
    char out[32];
    for (size_t i = 0; i < sizeof RFC4648 / sizeof RFC4648[0]; i++) {
        size_t n = strlen(RFC4648[i].raw);
        size_t len = encode_checked((const uint8_t *)RFC4648[i].raw, n, out, sizeof out);
        CHECKF(len == strlen(RFC4648[i].enc) && strcmp(out, RFC4648[i].enc) == 0,
               "\"%s\" encoded to \"%s\", want \"%s\"", RFC4648[i].raw, out, RFC4648[i].enc);
    }
}

static void decodes_rfc4648_vectors(void)
{
    for (size_t i = 0; i < sizeof RFC4648 / sizeof RFC4648[0]; i++) {
        const char *enc = RFC4648[i].enc;
        uint8_t out[32];
        size_t len = 0;
        CHECKF(decodes(enc, strlen(enc), out, &len), "\"%s\" rejected", enc);
        CHECKF(len == strlen(RFC4648[i].raw) && memcmp(out, RFC4648[i].raw, len) == 0,
               "\"%s\" decoded wrong", enc);
        check_twins_at(enc, strlen(enc), 0);
        check_twins_at(enc, strlen(enc), strlen(enc) / 2);
    }
}

static void uses_url_alphabet_for_62_and_63(void)
{
    static const struct {
        uint8_t raw[3];
        size_t n;
        const char *enc;
    } v[] = {
        {{0xfb, 0xef, 0xbe}, 3, "----"},
        {{0xff, 0xff, 0xff}, 3, "____"},
        {{0xfb, 0xff}, 2, "-_8"},
        {{0xff}, 1, "_w"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char out[8];
        uint8_t dec[4];
        size_t len = 0;
        encode_checked(v[i].raw, v[i].n, out, sizeof out);
        CHECKF(strcmp(out, v[i].enc) == 0, "got \"%s\", want \"%s\"", out, v[i].enc);
        CHECKF(decodes(v[i].enc, strlen(v[i].enc), dec, &len), "\"%s\" rejected", v[i].enc);
        CHECKF(len == v[i].n && memcmp(dec, v[i].raw, len) == 0, "\"%s\" decoded wrong", v[i].enc);
    }
}

static void lengths_match_formulas(void)
{
    for (size_t n = 0; n <= 3 * MAX_BYTES; n++) {
        size_t want = n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
        CHECKF(tsr_b64url_encoded_len(n) == want, "encoded_len(%zu) = %zu, want %zu", n,
               tsr_b64url_encoded_len(n), want);
        CHECKF(tsr_b64url_decoded_max(want) >= n, "decoded_max(%zu) = %zu < %zu", want,
               tsr_b64url_decoded_max(want), n);
    }
}

static void round_trips_random_lengths_0_to_300(void)
{
    uint8_t raw[MAX_BYTES], dec[MAX_BYTES];
    char enc[MAX_CHARS + 1];
    for (size_t n = 0; n <= MAX_BYTES; n++) {
        CHECK(tsr_rand(raw, sizeof raw) == TSR_OK);
        size_t len = encode_checked(raw, n, enc, tsr_b64url_encoded_len(n) + 1);
        size_t dlen = 0;
        /* Exactly the decoded size is enough room. */
        tsr_err rc = tsr_b64url_decode(enc, len, dec, n, &dlen);
        CHECKF(rc == TSR_OK, "%zu bytes: decode into exact buffer: %s", n, tsr_err_text(rc));
        CHECKF(rc == TSR_OK && dlen == n && memcmp(dec, raw, n) == 0,
               "%zu bytes: round trip differs (\"%s\")", n, show(enc, len));
        if (len > 0)
            check_twins_at(enc, len, rand_below(len));
    }
}

static void encode_reports_small_buffer(void)
{
    uint8_t raw[MAX_BYTES];
    char enc[MAX_CHARS + 1];
    CHECK(tsr_rand(raw, sizeof raw) == TSR_OK);
    for (size_t n = 0; n <= 64; n++) {
        size_t need = tsr_b64url_encoded_len(n) + 1;
        for (size_t cap = 0; cap < need; cap++) {
            size_t len = 12345;
            tsr_err rc = tsr_b64url_encode(raw, n, enc, cap, &len);
            CHECKF(rc == TSR_ERR_BUFFER, "%zu bytes, cap %zu (need %zu): %s", n, cap, need,
                   tsr_err_text(rc));
            CHECKF(len == 0, "%zu bytes, cap %zu: failed encode left outlen %zu", n, cap, len);
        }
    }
}

static void decode_reports_small_buffer(void)
{
    uint8_t raw[MAX_BYTES], dec[MAX_BYTES];
    char enc[MAX_CHARS + 1];
    CHECK(tsr_rand(raw, sizeof raw) == TSR_OK);
    for (size_t n = 1; n <= 64; n++) {
        size_t len = encode_checked(raw, n, enc, sizeof enc);
        for (size_t cap = 0; cap < n; cap++) {
            size_t dlen = 12345;
            tsr_err rc = tsr_b64url_decode(enc, len, dec, cap, &dlen);
            CHECKF(rc == TSR_ERR_BUFFER, "%zu bytes, cap %zu: %s", n, cap, tsr_err_text(rc));
            CHECKF(dlen == 0, "%zu bytes, cap %zu: failed decode left outlen %zu", n, cap, dlen);
        }
    }
}

static void rejects_padding(void)
{
    static const char *const v[] = {"Zg==", "Zg=", "Zm8=",  "Zm9vYg==", "Zm9vYmE=", "====",
                                    "=",    "==",  "Zm9v=", "Zm9v====", "Z=g",      "=Zg"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        expect_rejected(v[i], strlen(v[i]));
}

static void rejects_standard_alphabet_plus_and_slash(void)
{
    static const char *const v[] = {"++++", "////", "+/8", "/w", "Zm9v+A", "Zm9v/w", "a+b/"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        expect_rejected(v[i], strlen(v[i]));
}

static void rejects_whitespace(void)
{
    static const char *const v[] = {" Zm9v",      "Zm9v ",    "Zm 9v",  "Zm9v\n",
                                    "\nZm9v",     "Zm\r\n9v", "Zm\t9v", "Zm9v\r",
                                    "Zm9vYmFy\n", " ",        "\t\t"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        expect_rejected(v[i], strlen(v[i]));
}

static void rejects_embedded_nul(void)
{
    expect_rejected("Zm\0v", 4);
    expect_rejected("\0Zm9v", 5);
    expect_rejected("Zm9v\0", 5);
    expect_rejected("Zm9v\0\0\0\0", 8);
    expect_rejected("Zg\0", 3);
    expect_rejected("\0\0", 2);
}

static void rejects_length_mod_4_equal_1(void)
{
    char s[MAX_CHARS + 1];
    for (size_t n = 1; n <= MAX_CHARS; n += 4) {
        for (size_t i = 0; i < n; i++)
            s[i] = 'A';
        expect_rejected(s, n); /* all-zero bits: only the length is wrong */
        for (size_t i = 0; i < n; i++)
            s[i] = ALPHABET[rand_below(64)];
        expect_rejected(s, n);
    }
}

/* A 2-char tail holds 8 bits in 12: the last char's low 4 bits must be zero. */
static void rejects_noncanonical_two_char_tail(void)
{
    char s[6] = "Zm9v";
    long accepted = 0;
    for (int a = 0; a < 64; a++) {
        for (int b = 0; b < 64; b++) {
            s[0] = ALPHABET[a];
            s[1] = ALPHABET[b];
            int want = (b & 0x0f) == 0;
            uint8_t out[2];
            size_t len = 0;
            int got = decodes(s, 2, out, &len);
            CHECKF(got == want, "\"%s\": %s", show(s, 2), want ? "rejected" : "accepted");
            if (got && want) {
                accepted++;
                CHECKF(len == 1 && out[0] == (uint8_t)(a << 2 | b >> 4), "\"%s\" decoded wrong",
                       show(s, 2));
            }
            /* The same tail after a full block. */
            memcpy(s, "Zm9v", 4);
            s[4] = ALPHABET[a];
            s[5] = ALPHABET[b];
            got = decodes(s, 6, NULL, NULL);
            CHECKF(got == want, "\"%s\": %s", show(s, 6), want ? "rejected" : "accepted");
        }
    }
    CHECK(accepted == 256);
    expect_rejected("Zh", 2); /* "Zg" is the one encoding of "f" */
}

/* A 3-char tail holds 16 bits in 18: the last char's low 2 bits must be zero. */
static void rejects_noncanonical_three_char_tail(void)
{
    char s[7];
    long accepted = 0;
    for (int a = 0; a < 64; a++) {
        for (int b = 0; b < 64; b++) {
            for (int c = 0; c < 64; c++) {
                s[0] = ALPHABET[a];
                s[1] = ALPHABET[b];
                s[2] = ALPHABET[c];
                int want = (c & 0x03) == 0;
                uint8_t out[2];
                size_t len = 0;
                int got = decodes(s, 3, out, &len);
                CHECKF(got == want, "\"%s\": %s", show(s, 3), want ? "rejected" : "accepted");
                if (got && want) {
                    accepted++;
                    uint32_t bits = (uint32_t)a << 12 | (uint32_t)b << 6 | (uint32_t)c;
                    CHECKF(len == 2 && out[0] == (uint8_t)(bits >> 10) &&
                               out[1] == (uint8_t)(bits >> 2),
                           "\"%s\" decoded wrong", show(s, 3));
                }
            }
        }
    }
    CHECK(accepted == 65536);
    for (int c = 0; c < 64; c++) {
        memcpy(s, "Zm9vZm", 6);
        s[6] = ALPHABET[c];
        CHECKF(decodes(s, 7, NULL, NULL) == ((c & 0x03) == 0), "\"%s\"", show(s, 7));
    }
    expect_rejected("Zm9", 3); /* "Zm8" is the one encoding of "fo" */
}

/* A string whose every prefix of length != 1 mod 4 is canonical: positions 1 and 2
 * mod 4 use chars whose unused low bits are zero. */
static size_t make_prefix_canonical(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t v = rand_below(64);
        if (i % 4 == 1)
            v &= ~(size_t)0x0f;
        else if (i % 4 == 2)
            v &= ~(size_t)0x03;
        s[i] = ALPHABET[v];
    }
    s[n] = '\0';
    return n;
}

static void decodes_every_prefix_as_expected(void)
{
    char s[MAX_CHARS + 1];
    uint8_t full[MAX_BYTES], part[MAX_BYTES];
    for (int round = 0; round < 8; round++) {
        size_t n = make_prefix_canonical(s, (size_t)round * 48 + 8);
        size_t flen = 0;
        CHECKF(decodes(s, n, full, &flen), "\"%s\" rejected", show(s, n));
        for (size_t i = 0; i <= n; i++) {
            size_t plen = 0;
            int got = decodes(s, i, part, &plen);
            if (i % 4 == 1) {
                CHECKF(!got, "prefix %zu of \"%s\" accepted", i, show(s, n));
            } else {
                CHECKF(got, "prefix %zu of \"%s\" rejected", i, show(s, n));
                CHECKF(!got || (plen == i * 6 / 8 && memcmp(part, full, plen) == 0),
                       "prefix %zu of \"%s\" decoded wrong", i, show(s, n));
            }
        }
    }
    /* Any valid string: every prefix agrees with the reference decoder. */
    uint8_t raw[MAX_BYTES];
    CHECK(tsr_rand(raw, sizeof raw) == TSR_OK);
    for (size_t m = 0; m <= 64; m++) {
        size_t n = encode_checked(raw, m, s, sizeof s);
        for (size_t i = 0; i <= n; i++) {
            uint8_t ref[MAX_BYTES];
            size_t plen = 0;
            long rlen = ref_decode(s, i, ref);
            int got = decodes(s, i, part, &plen);
            CHECKF(got == (rlen >= 0), "prefix %zu of \"%s\": %s", i, show(s, n),
                   got ? "accepted, reference rejects" : "rejected, reference accepts");
            CHECKF(!got || rlen < 0 || ((size_t)rlen == plen && memcmp(part, ref, plen) == 0),
                   "prefix %zu of \"%s\" differs from reference", i, show(s, n));
        }
    }
}

static void decodes_halves_split_at_block_boundaries(void)
{
    uint8_t raw[MAX_BYTES], a[MAX_BYTES], b[MAX_BYTES];
    char s[MAX_CHARS + 1];
    CHECK(tsr_rand(raw, sizeof raw) == TSR_OK);
    size_t n = encode_checked(raw, 200, s, sizeof s);
    for (size_t i = 0; i <= n; i += 4) {
        size_t alen = 0, blen = 0;
        int ga = decodes(s, i, a, &alen);
        int gb = decodes(s + i, n - i, b, &blen);
        CHECKF(ga && gb, "split at %zu rejected", i);
        CHECKF(alen == i / 4 * 3 && alen + blen == 200 && memcmp(a, raw, alen) == 0 &&
                   memcmp(b, raw + alen, blen) == 0,
               "split at %zu decoded wrong", i);
    }
}

static void matches_reference_on_random_strings(void)
{
    /* Mostly the alphabet, sometimes a bad char, so both outcomes occur. */
    char s[64];
    long acc = 0, rej = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = rand_below(sizeof s + 1);
        for (size_t i = 0; i < n; i++) {
            size_t r = rand_below(200);
            s[i] = r < 198 ? ALPHABET[r % 64] : BAD_CHARS[rand_below(sizeof BAD_CHARS)];
        }
        uint8_t ref[64], out[64];
        size_t len = 0;
        long rlen = ref_decode(s, n, ref);
        int got = decodes(s, n, out, &len);
        CHECKF(got == (rlen >= 0), "\"%s\": %s", show(s, n),
               got ? "accepted, reference rejects" : "rejected, reference accepts");
        CHECKF(!got || rlen < 0 || ((size_t)rlen == len && memcmp(out, ref, len) == 0),
               "\"%s\" differs from reference", show(s, n));
        if (rlen >= 0) {
            acc++;
            if (n > 0)
                check_twins_at(s, n, rand_below(n));
        } else {
            rej++;
        }
    }
    CHECK(acc > 1000 && rej > 1000);
}

int main(void)
{
    TSR_RUN(encodes_rfc4648_vectors);
    TSR_RUN(decodes_rfc4648_vectors);
    TSR_RUN(uses_url_alphabet_for_62_and_63);
    TSR_RUN(lengths_match_formulas);
    TSR_RUN(round_trips_random_lengths_0_to_300);
    TSR_RUN(encode_reports_small_buffer);
    TSR_RUN(decode_reports_small_buffer);
    TSR_RUN(rejects_padding);
    TSR_RUN(rejects_standard_alphabet_plus_and_slash);
    TSR_RUN(rejects_whitespace);
    TSR_RUN(rejects_embedded_nul);
    TSR_RUN(rejects_length_mod_4_equal_1);
    TSR_RUN(rejects_noncanonical_two_char_tail);
    TSR_RUN(rejects_noncanonical_three_char_tail);
    TSR_RUN(decodes_every_prefix_as_expected);
    TSR_RUN(decodes_halves_split_at_block_boundaries);
    TSR_RUN(matches_reference_on_random_strings);
    return tsr_test_summary();
}
