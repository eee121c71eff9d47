/* ratelimit.c: the in-memory login limiter: one token bucket per key (a salted
 * SHA-256 of a username or an IP), holding `max` failures and refilled evenly
 * over `window` seconds. Buckets live in a chained hash table under one mutex,
 * bounded by a cap: when full, fully refilled buckets are dropped first, then the
 * stalest of the target chain. Only failures create buckets. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "auth/auth_int.h"

#define RL_BUCKETS 4096

typedef struct rl_entry {
    uint8_t key[TSR_RATE_KEY_BYTES];
    double tokens;
    int64_t last;
    struct rl_entry *next;
} rl_entry;

struct tsr_rate {
    pthread_mutex_t mu;
    rl_entry *buckets[RL_BUCKETS];
    size_t count, cap;
};

tsr_err tsr_rate_new(size_t cap, tsr_rate **out)
{
    tsr_rate *r;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (cap == 0)
        return TSR_ERR_INVALID;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return TSR_ERR_NOMEM;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return TSR_ERR_INTERNAL;
    }
    r->cap = cap;
    *out = r;
    return TSR_OK;
}

static void clear_locked(tsr_rate *r)
{
    for (size_t i = 0; i < RL_BUCKETS; i++) {
        rl_entry *e = r->buckets[i];
        while (e != NULL) {
            rl_entry *next = e->next;
            free(e);
            e = next;
        }
        r->buckets[i] = NULL;
    }
    r->count = 0;
}

void tsr_rate_free(tsr_rate *r)
{
    if (r == NULL)
        return;
    clear_locked(r);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static size_t slot(const uint8_t key[TSR_RATE_KEY_BYTES])
{
    return ((size_t)key[0] | ((size_t)key[1] << 8)) % RL_BUCKETS;
}

/* Tokens after refilling to now (never above max; time going back refills nothing). */
static double refilled(const rl_entry *e, uint32_t max, int64_t window, int64_t now)
{
    double t = e->tokens;
    if (now > e->last)
        t += (double)(now - e->last) * (double)max / (double)window;
    return t > (double)max ? (double)max : t;
}

static rl_entry *find(tsr_rate *r, const uint8_t key[TSR_RATE_KEY_BYTES], rl_entry ***link)
{
    rl_entry **pp = &r->buckets[slot(key)];
    for (; *pp != NULL; pp = &(*pp)->next) {
        if (memcmp((*pp)->key, key, TSR_RATE_KEY_BYTES) == 0) {
            if (link != NULL)
                *link = pp;
            return *pp;
        }
    }
    return NULL;
}

tsr_err tsr_rate_check(tsr_rate *r, const uint8_t key[TSR_RATE_KEY_BYTES], uint32_t max,
                       int64_t window, int64_t now, int64_t *retry_after)
{
    tsr_err rc = TSR_OK;

    if (retry_after != NULL)
        *retry_after = 0;
    if (r == NULL || key == NULL || max == 0 || window <= 0)
        return TSR_ERR_INVALID;
    pthread_mutex_lock(&r->mu);
    rl_entry *e = find(r, key, NULL);
    if (e != NULL) {
        double t = refilled(e, max, window, now);
        if (t < 1.0) {
            double wait = (1.0 - t) * (double)window / (double)max;
            int64_t w = (int64_t)wait; /* at most two windows: tokens >= -max */
            if ((double)w < wait)
                w++; /* round up: never invite a retry that is still refused */
            if (w < 1)
                w = 1;
            if (retry_after != NULL)
                *retry_after = w;
            rc = TSR_ERR_RATE_LIMITED;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Makes room for one entry: drops fully refilled buckets, then the stalest entry
 * of the chain at s (or of the first non-empty chain after it). */
static void make_room_locked(tsr_rate *r, size_t s, uint32_t max, int64_t window, int64_t now)
{
    for (size_t i = 0; i < RL_BUCKETS; i++) {
        rl_entry **pp = &r->buckets[i];
        while (*pp != NULL) {
            rl_entry *e = *pp;
            if (refilled(e, max, window, now) >= (double)max) {
                *pp = e->next;
                free(e);
                r->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    for (size_t k = 0; r->count >= r->cap && k < RL_BUCKETS; k++) {
        rl_entry **chain = &r->buckets[(s + k) % RL_BUCKETS];
        rl_entry **oldest = NULL;
        for (rl_entry **pp = chain; *pp != NULL; pp = &(*pp)->next) {
            if (oldest == NULL || (*pp)->last < (*oldest)->last)
                oldest = pp;
        }
        if (oldest != NULL) {
            rl_entry *e = *oldest;
            *oldest = e->next;
            free(e);
            r->count--;
        }
    }
}

void tsr_rate_fail(tsr_rate *r, const uint8_t key[TSR_RATE_KEY_BYTES], uint32_t max,
                   int64_t window, int64_t now)
{
    if (r == NULL || key == NULL || max == 0 || window <= 0)
        return;
    pthread_mutex_lock(&r->mu);
    rl_entry *e = find(r, key, NULL);
    if (e == NULL) {
        if (r->count >= r->cap)
            make_room_locked(r, slot(key), max, window, now);
        e = calloc(1, sizeof *e);
        if (e == NULL)
            goto out; /* out of memory: this failure goes uncounted */
        memcpy(e->key, key, TSR_RATE_KEY_BYTES);
        e->tokens = (double)max;
        e->last = now;
        e->next = r->buckets[slot(key)];
        r->buckets[slot(key)] = e;
        r->count++;
    }
    e->tokens = refilled(e, max, window, now) - 1.0;
    /* Failures racing past a check cost at most one more window. */
    if (e->tokens < -(double)max)
        e->tokens = -(double)max;
    if (now > e->last)
        e->last = now;
out:
    pthread_mutex_unlock(&r->mu);
}

void tsr_rate_clear(tsr_rate *r, const uint8_t key[TSR_RATE_KEY_BYTES])
{
    rl_entry **link = NULL;

    if (r == NULL || key == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    rl_entry *e = find(r, key, &link);
    if (e != NULL) {
        *link = e->next;
        free(e);
        r->count--;
    }
    pthread_mutex_unlock(&r->mu);
}

void tsr_rate_clear_all(tsr_rate *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    clear_locked(r);
    pthread_mutex_unlock(&r->mu);
}

/* ---- keys ---- */

#define RL_INPUT_MAX 256

static tsr_err salted_key(const tsr_auth *a, char tag, const uint8_t *data, size_t n,
                          uint8_t out[TSR_RATE_KEY_BYTES])
{
    uint8_t buf[sizeof a->salt + 1 + RL_INPUT_MAX];
    tsr_err rc;

    if (n > RL_INPUT_MAX)
        n = RL_INPUT_MAX; /* longer inputs are malformed anyway */
    memcpy(buf, a->salt, sizeof a->salt);
    buf[sizeof a->salt] = (uint8_t)tag;
    if (n > 0)
        memcpy(buf + sizeof a->salt + 1, data, n);
    rc = tsr_sha256(buf, sizeof a->salt + 1 + n, out);
    tsr_wipe(buf, sizeof buf);
    return rc;
}

tsr_err tsr_auth_rate_key_user(const tsr_auth *a, const char *username, size_t ulen,
                               uint8_t out[TSR_RATE_KEY_BYTES])
{
    uint8_t low[RL_INPUT_MAX];

    if (a == NULL || out == NULL || (username == NULL && ulen > 0))
        return TSR_ERR_INVALID;
    memset(out, 0, TSR_RATE_KEY_BYTES);
    if (ulen > RL_INPUT_MAX)
        ulen = RL_INPUT_MAX;
    for (size_t i = 0; i < ulen; i++)
        low[i] = (uint8_t)tolower((unsigned char)username[i]);
    return salted_key(a, 'u', low, ulen, out);
}

tsr_err tsr_auth_rate_key_ip(const tsr_auth *a, const char *ip, uint8_t out[TSR_RATE_KEY_BYTES])
{
    struct in6_addr a6;
    size_t n;

    if (a == NULL || out == NULL || ip == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, TSR_RATE_KEY_BYTES);
    n = strlen(ip);
    /* One IPv6 host owns a /64: count the whole prefix as one client. */
    if (n < 64 && strchr(ip, ':') != NULL && inet_pton(AF_INET6, ip, &a6) == 1 &&
        !IN6_IS_ADDR_V4MAPPED(&a6))
        return salted_key(a, '6', a6.s6_addr, 8, out);
    return salted_key(a, 'i', (const uint8_t *)ip, n, out);
}

/* A per-process random salt for log fingerprints: people type passwords into the
 * username field, and an unsalted hash of it in a log could be guessed offline.
 * Fingerprints still correlate the lines of one process run. */
static uint8_t fp_salt[16];
static int fp_salt_ok;
static pthread_once_t fp_once = PTHREAD_ONCE_INIT;

static void fp_salt_init(void)
{
    fp_salt_ok = tsr_rand(fp_salt, sizeof fp_salt) == TSR_OK;
}

void tsr_auth_user_fingerprint(const char *username, size_t ulen, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t low[sizeof fp_salt + RL_INPUT_MAX];
    uint8_t h[TSR_SHA256_BYTES];

    memset(out, 0, 17);
    (void)pthread_once(&fp_once, fp_salt_init);
    if (!fp_salt_ok)
        return; /* no fingerprint rather than an unsalted one */
    if (username == NULL)
        ulen = 0;
    if (ulen > RL_INPUT_MAX)
        ulen = RL_INPUT_MAX;
    memcpy(low, fp_salt, sizeof fp_salt);
    for (size_t i = 0; i < ulen; i++)
        low[sizeof fp_salt + i] = (uint8_t)tolower((unsigned char)username[i]);
    if (tsr_sha256(low, sizeof fp_salt + ulen, h) != TSR_OK) {
        tsr_wipe(low, sizeof low);
        return;
    }
    for (size_t i = 0; i < 8; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    tsr_wipe(low, sizeof low);
}
