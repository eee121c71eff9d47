/* test_vcache.c: the verified-token cache: round trips, expiry with leeway,
 * replacement, clearing, bounded eviction, entries too big to cache, counters,
 * and threads putting and getting overlapping keys (a hit must be exactly what
 * was put for that key). No timing assertions. */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/vcache.h"
#include "crypto/crypto.h"
#include "harness.h"

static void key_of(uint8_t key[32], unsigned i)
{
    char buf[32];
    int k = snprintf(buf, sizeof buf, "token-%u", i);

    memset(key, 0, 32);
    if (k > 0 && (size_t)k < sizeof buf && tsr_sha256(buf, (size_t)k, key) != TSR_OK)
        memset(key, 0, 32);
}

__attribute__((format(printf, 3, 4))) static void fill(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= cap)
        dst[0] = '\0';
}

/* Claims of key i, variant v: every field differs between keys and variants. */
static void make_bearer(tsr_bearer *b, unsigned i, unsigned v)
{
    memset(b, 0, sizeof *b);
    fill(b->sub, sizeof b->sub, "usr_%u_%u", i, v);
    fill(b->sid, sizeof b->sid, "ses_%u_%u", i, v);
    fill(b->jti, sizeof b->jti, "jti_%u_%u_abcdefghijklmnop", i, v);
    fill(b->username, sizeof b->username, "user%u-%u", i, v);
    fill(b->roles, sizeof b->roles, v ? "admin,user,%u,%u" : "user,%u,%u", i, v);
    fill(b->scope, sizeof b->scope, "openid profile email %u %u", i, v);
    b->exp = 1000000 + 2 * (int64_t)i + v;
    b->iat = 500 + (int64_t)i + 7 * (int64_t)v;
}

static int same_claims(const tsr_bearer *a, const tsr_bearer *b)
{
    return strcmp(a->sub, b->sub) == 0 && strcmp(a->sid, b->sid) == 0 &&
           strcmp(a->jti, b->jti) == 0 && strcmp(a->username, b->username) == 0 &&
           strcmp(a->roles, b->roles) == 0 && strcmp(a->scope, b->scope) == 0 && a->exp == b->exp &&
           a->iat == b->iat;
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != 0)
            return 0;
    return 1;
}

static size_t entries_of(tsr_vcache *c)
{
    size_t n = 0;
    tsr_vcache_stats(c, NULL, NULL, &n);
    return n;
}

static void put_then_get_returns_the_claims(void)
{
    tsr_vcache *c = NULL;
    tsr_bearer b, got;
    uint8_t k[32], k2[32];

    CHECK(tsr_vcache_new(65536, &c) == TSR_OK);
    key_of(k, 1);
    key_of(k2, 2);
    make_bearer(&b, 1, 0);
    b.cached = 0;
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 100, 30, &got) == 1);
    CHECK(same_claims(&b, &got));
    CHECK(got.cached == 1);
    CHECK(tsr_vcache_get(c, k2, 100, 30, &got) == 0);
    /* A key differing in one bit (same shard, bucket and tag) misses. */
    k[31] ^= 1;
    CHECK(tsr_vcache_get(c, k, 100, 30, &got) == 0);
    CHECK(entries_of(c) == 1);
    tsr_vcache_free(c);
}

static void miss_zeroes_the_output(void)
{
    tsr_vcache *c = NULL;
    tsr_bearer got;
    uint8_t k[32];

    CHECK(tsr_vcache_new(16, &c) == TSR_OK);
    key_of(k, 1);
    memset(&got, 0x5a, sizeof got);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 0);
    CHECK(all_zero(&got, sizeof got));
    memset(&got, 0x5a, sizeof got);
    CHECK(tsr_vcache_get(NULL, k, 0, 0, &got) == 0);
    CHECK(all_zero(&got, sizeof got));
    tsr_vcache_free(c);
}

static void expiry_honours_leeway_and_drops_the_entry(void)
{
    tsr_vcache *c = NULL;
    tsr_bearer b, got;
    uint8_t k[32];

    CHECK(tsr_vcache_new(64, &c) == TSR_OK);
    key_of(k, 3);
    make_bearer(&b, 3, 0);
    b.exp = 100;
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 100, 0, &got) == 1);
    CHECK(tsr_vcache_get(c, k, 130, 30, &got) == 1);
    CHECK(tsr_vcache_get(c, k, 101, -5, &got) == 0); /* negative leeway counts as 0 */
    CHECK(all_zero(&got, sizeof got));
    CHECK(entries_of(c) == 0);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 0); /* dropped, not just refused */

    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 131, 30, &got) == 0);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 0);

    /* Extremes do not overflow. */
    b.exp = INT64_MAX;
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, INT64_MAX, INT64_MAX, &got) == 1);
    b.exp = INT64_MIN;
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, INT64_MAX, INT64_MAX, &got) == 0);
    b.exp = -10;
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 10, 20, &got) == 1);
    CHECK(got.exp == -10);
    tsr_vcache_free(c);
}

static void put_replaces_an_existing_key(void)
{
    tsr_vcache *c = NULL;
    tsr_bearer a, b, got;
    uint8_t k[32];

    CHECK(tsr_vcache_new(8, &c) == TSR_OK);
    key_of(k, 4);
    make_bearer(&a, 4, 0);
    make_bearer(&b, 4, 1);
    tsr_vcache_put(c, k, &a);
    tsr_vcache_put(c, k, &b);
    CHECK(entries_of(c) == 1);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 1);
    CHECK(same_claims(&b, &got));
    /* Shorter strings replace longer ones cleanly. */
    memset(&a, 0, sizeof a);
    a.exp = 5;
    tsr_vcache_put(c, k, &a);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 1);
    CHECK(same_claims(&a, &got));
    CHECK(got.sub[0] == '\0' && got.scope[0] == '\0');
    tsr_vcache_free(c);
}

static void clear_drops_everything(void)
{
    tsr_vcache *c = NULL;
    tsr_bearer b, got;
    uint8_t k[32];
    size_t found = 0;

    CHECK(tsr_vcache_new(1024, &c) == TSR_OK);
    for (unsigned i = 0; i < 100; i++) {
        key_of(k, i);
        make_bearer(&b, i, 0);
        tsr_vcache_put(c, k, &b);
    }
    CHECK(entries_of(c) > 0);
    tsr_vcache_clear(c);
    CHECK(entries_of(c) == 0);
    for (unsigned i = 0; i < 100; i++) {
        key_of(k, i);
        found += (size_t)tsr_vcache_get(c, k, 0, 0, &got);
    }
    CHECK(found == 0);
    key_of(k, 7);
    make_bearer(&b, 7, 1);
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 1);
    CHECK(same_claims(&b, &got));
    tsr_vcache_clear(NULL);
    tsr_vcache_free(c);
}

/* Inserts 10x capacity: entries never exceed the (rounded) capacity, and the
 * latest insert is always there. */
static void eviction_keeps_capacity_bounded(void)
{
    static const size_t caps[] = {1, 3, 8, 1000, 1024, 65536};

    for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
        tsr_vcache *c = NULL;
        tsr_bearer b, got;
        uint8_t k[32];
        size_t over = 0, lost_latest = 0, max_seen = 0, rounded = 1;

        while (rounded < caps[ci])
            rounded *= 2;
        CHECK(tsr_vcache_new(caps[ci], &c) == TSR_OK);
        if (c == NULL)
            continue;
        for (unsigned i = 0; i < 10 * caps[ci]; i++) {
            key_of(k, i);
            make_bearer(&b, i, 0);
            tsr_vcache_put(c, k, &b);
            if (!tsr_vcache_get(c, k, 0, 0, &got) || !same_claims(&b, &got))
                lost_latest++;
            size_t n = entries_of(c);
            if (n > max_seen)
                max_seen = n;
            if (n > rounded)
                over++;
        }
        CHECKF(over == 0 && max_seen <= rounded && rounded < 2 * caps[ci] + 1, "cap %zu: max %zu",
               caps[ci], max_seen);
        CHECKF(lost_latest == 0, "cap %zu", caps[ci]);
        tsr_vcache_free(c);
    }
}

/* With every slot filled once, most keys stay (set-associative placement loses
 * some to full buckets); printed for the notes. */
static void a_full_cache_keeps_most_keys(void)
{
    enum { N = 65536 };
    tsr_vcache *c = NULL;
    tsr_bearer b, got;
    uint8_t k[32];
    size_t found = 0, n = 0;

    CHECK(tsr_vcache_new(N, &c) == TSR_OK);
    for (unsigned i = 0; i < N; i++) {
        key_of(k, i);
        make_bearer(&b, i, 0);
        tsr_vcache_put(c, k, &b);
    }
    for (unsigned i = 0; i < N; i++) {
        key_of(k, i);
        found += (size_t)tsr_vcache_get(c, k, 0, 0, &got);
    }
    tsr_vcache_stats(c, NULL, NULL, &n);
    fprintf(stderr, "  %d distinct puts into %d slots: %zu held, %zu found\n", N, N, n, found);
    CHECK(n == found);
    CHECK(found >= N * 8 / 10);
    tsr_vcache_free(c);
}

static void recently_hit_entry_survives_an_eviction(void)
{
    tsr_vcache *c = NULL;
    tsr_bearer b, got;
    uint8_t k[32];

    /* 8 entries: one shard, one bucket of 8 ways. */
    CHECK(tsr_vcache_new(8, &c) == TSR_OK);
    for (unsigned i = 0; i < 8; i++) {
        key_of(k, i);
        make_bearer(&b, i, 0);
        tsr_vcache_put(c, k, &b);
    }
    CHECK(entries_of(c) == 8);
    key_of(k, 0);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 1);
    key_of(k, 8);
    make_bearer(&b, 8, 0);
    tsr_vcache_put(c, k, &b);
    CHECK(entries_of(c) == 8);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 1);
    key_of(k, 0);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 1);
    tsr_vcache_free(c);
}

static void oversized_or_unterminated_claims_are_not_cached(void)
{
    tsr_vcache *c = NULL;
    tsr_bearer b, got;
    uint8_t k[32];
    size_t used;

    CHECK(tsr_vcache_new(64, &c) == TSR_OK);
    key_of(k, 9);

    /* Total text over TSR_VCACHE_TEXT_MAX. */
    make_bearer(&b, 9, 0);
    memset(b.roles, 'r', 200);
    b.roles[200] = '\0';
    memset(b.scope, 's', 100);
    b.scope[100] = '\0';
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 0);
    CHECK(entries_of(c) == 0);

    /* Exactly TSR_VCACHE_TEXT_MAX fits and round-trips; one byte more does not. */
    make_bearer(&b, 9, 0);
    used = strlen(b.sub) + strlen(b.sid) + strlen(b.jti) + strlen(b.username) + strlen(b.roles);
    CHECK(used < TSR_VCACHE_TEXT_MAX && TSR_VCACHE_TEXT_MAX - used < sizeof b.scope);
    memset(b.scope, 'x', TSR_VCACHE_TEXT_MAX - used);
    b.scope[TSR_VCACHE_TEXT_MAX - used] = '\0';
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 1);
    CHECK(same_claims(&b, &got));
    tsr_vcache_clear(c);
    b.scope[TSR_VCACHE_TEXT_MAX - used] = 'x';
    b.scope[TSR_VCACHE_TEXT_MAX - used + 1] = '\0';
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 0);

    /* A field without its NUL (a caller's bug) is refused, not overread. */
    make_bearer(&b, 9, 0);
    memset(b.sub, 'a', sizeof b.sub);
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 0);
    make_bearer(&b, 9, 0);
    memset(b.scope, 'a', sizeof b.scope);
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 0);

    /* An oversized put does not disturb what is cached for the key. */
    make_bearer(&b, 9, 1);
    tsr_vcache_put(c, k, &b);
    memset(b.roles, 'r', 250);
    b.roles[250] = '\0';
    tsr_vcache_put(c, k, &b);
    CHECK(tsr_vcache_get(c, k, 0, 0, &got) == 1);
    CHECK(strcmp(got.roles, "admin,user,9,1") == 0);
    tsr_vcache_free(c);
}

static void stats_count_hits_misses_and_entries(void)
{
    tsr_vcache *c = NULL;
    tsr_bearer b, got;
    uint8_t k[32];
    uint64_t hits = 9, misses = 9;
    size_t n = 9;

    CHECK(tsr_vcache_new(256, &c) == TSR_OK);
    tsr_vcache_stats(c, &hits, &misses, &n);
    CHECK(hits == 0 && misses == 0 && n == 0);
    for (unsigned i = 0; i < 10; i++) {
        key_of(k, i);
        make_bearer(&b, i, 0);
        tsr_vcache_put(c, k, &b);
    }
    for (unsigned i = 0; i < 15; i++) {
        key_of(k, i);
        (void)tsr_vcache_get(c, k, 0, 0, &got);
    }
    tsr_vcache_stats(c, &hits, &misses, &n);
    CHECK(hits == 10 && misses == 5 && n == 10);
    tsr_vcache_clear(c);
    tsr_vcache_stats(c, &hits, &misses, &n);
    CHECK(hits == 10 && misses == 5 && n == 0);
    tsr_vcache_stats(NULL, &hits, &misses, &n);
    CHECK(hits == 0 && misses == 0 && n == 0);
    tsr_vcache_free(c);
}

static void rejects_bad_sizes(void)
{
    tsr_vcache *c = (tsr_vcache *)&c;
    tsr_bearer b;
    uint8_t k[32] = {0};

    CHECK(tsr_vcache_new(0, &c) == TSR_ERR_INVALID);
    CHECK(c == NULL);
    CHECK(tsr_vcache_new(TSR_VCACHE_MAX + 1, &c) == TSR_ERR_TOO_LARGE);
    CHECK(c == NULL);
    CHECK(tsr_vcache_new(16, NULL) == TSR_ERR_INVALID);
    CHECK(tsr_vcache_new(1, &c) == TSR_OK);
    tsr_vcache_put(c, NULL, &b);
    tsr_vcache_put(c, k, NULL);
    tsr_vcache_put(NULL, k, &b);
    CHECK(tsr_vcache_get(c, NULL, 0, 0, &b) == 0);
    CHECK(tsr_vcache_get(c, k, 0, 0, NULL) == 0);
    CHECK(entries_of(c) == 0);
    tsr_vcache_free(c);
    tsr_vcache_free(NULL);
}

/* ---- concurrency ---- */

#define MT_KEYS 256
#define MT_THREADS 4
#define MT_OPS 100000

static uint8_t mt_keys[MT_KEYS][32];
static tsr_bearer mt_claims[MT_KEYS][2];

typedef struct mt_ctx {
    tsr_vcache *c;
    atomic_size_t torn, hits, gets;
    atomic_size_t ready;
    atomic_int go;
    unsigned seed;
} mt_ctx;

static void *mt_worker(void *arg)
{
    mt_ctx *m = arg;
    uint64_t x = 0x9e3779b97f4a7c15ULL * (atomic_fetch_add(&m->ready, 1) + 1);
    tsr_bearer got;
    size_t torn = 0, hits = 0, gets = 0;

    while (!atomic_load(&m->go))
        sched_yield();
    for (int op = 0; op < MT_OPS; op++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned i = (unsigned)(x % MT_KEYS);
        if ((x >> 20) & 1) {
            tsr_vcache_put(m->c, mt_keys[i], &mt_claims[i][(x >> 21) & 1]);
            continue;
        }
        gets++;
        if (!tsr_vcache_get(m->c, mt_keys[i], 0, 0, &got))
            continue;
        hits++;
        if (got.cached != 1 ||
            (!same_claims(&got, &mt_claims[i][0]) && !same_claims(&got, &mt_claims[i][1])))
            torn++;
    }
    atomic_fetch_add(&m->torn, torn);
    atomic_fetch_add(&m->hits, hits);
    atomic_fetch_add(&m->gets, gets);
    return NULL;
}

static void concurrent_hits_are_never_torn(void)
{
    /* 64 slots: constant eviction and slot reuse by other keys; 65536: replacement. */
    static const size_t caps[] = {64, 65536};

    for (unsigned i = 0; i < MT_KEYS; i++) {
        key_of(mt_keys[i], i);
        make_bearer(&mt_claims[i][0], i, 0);
        make_bearer(&mt_claims[i][1], i, 1);
    }
    for (size_t ci = 0; ci < 2; ci++) {
        mt_ctx m;
        pthread_t th[MT_THREADS];
        size_t started = 0;
        uint64_t hits = 0, misses = 0;

        memset(&m, 0, sizeof m);
        CHECK(tsr_vcache_new(caps[ci], &m.c) == TSR_OK);
        for (; started < MT_THREADS; started++)
            if (pthread_create(&th[started], NULL, mt_worker, &m) != 0)
                break;
        CHECK(started == MT_THREADS);
        atomic_store(&m.go, 1);
        for (size_t t = 0; t < started; t++)
            pthread_join(th[t], NULL);
        CHECKF(atomic_load(&m.torn) == 0, "cap %zu: %zu torn", caps[ci], atomic_load(&m.torn));
        CHECK(atomic_load(&m.hits) > 0);
        tsr_vcache_stats(m.c, &hits, &misses, NULL);
        CHECK(hits == atomic_load(&m.hits));
        CHECK(hits + misses == atomic_load(&m.gets));
        CHECK(entries_of(m.c) <= caps[ci]);
        tsr_vcache_free(m.c);
    }
}

int main(void)
{
    if (tsr_crypto_init() != TSR_OK)
        return 1;
    TSR_RUN(put_then_get_returns_the_claims);
    TSR_RUN(miss_zeroes_the_output);
    TSR_RUN(expiry_honours_leeway_and_drops_the_entry);
    TSR_RUN(put_replaces_an_existing_key);
    TSR_RUN(clear_drops_everything);
    TSR_RUN(eviction_keeps_capacity_bounded);
    TSR_RUN(a_full_cache_keeps_most_keys);
    TSR_RUN(recently_hit_entry_survives_an_eviction);
    TSR_RUN(oversized_or_unterminated_claims_are_not_cached);
    TSR_RUN(stats_count_hits_misses_and_entries);
    TSR_RUN(rejects_bad_sizes);
    TSR_RUN(concurrent_hits_are_never_torn);
    return tsr_test_summary();
}
