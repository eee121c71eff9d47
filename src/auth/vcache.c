/* vcache.c: the verified-token cache (see vcache.h).
 *
 * Geometry: slots = entries rounded up to a power of two, split into up to 64
 * shards of buckets of up to 8 ways. The key is already a uniform hash, so its
 * bytes pick the shard and bucket (bytes 0..7) and give a 32-bit tag (bytes
 * 8..11). A bucket is one cache line: the ways' tags plus valid/ref bitmasks and
 * the CLOCK hand; a lookup reads it and touches an entry only on a tag match.
 * Entries are 320 bytes: key, exp, iat, six string lengths and one text area.
 *
 * Each shard has a mutex; its hit/miss/entry counters are relaxed atomics that
 * only the lock holder writes (a plain load+store, no locked instruction) and
 * tsr_vcache_stats reads without the lock. Readers copy out under the lock, so a
 * hit can never see half of one put and half of another. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "auth/vcache.h"

#define VC_WAYS_MAX 8u
#define VC_SHARDS_MAX 64u
#define VC_FIELDS 6
#define VC_LINE 64

typedef struct vc_entry {
    uint8_t key[32];
    int64_t exp, iat;
    uint8_t len[VC_FIELDS]; /* sub, sid, jti, username, roles, scope */
    uint8_t pad[2];
    char text[TSR_VCACHE_TEXT_MAX]; /* the six strings back to back, no NULs */
} vc_entry;

typedef struct vc_bucket {
    _Alignas(VC_LINE) uint32_t tag[VC_WAYS_MAX];
    uint8_t valid; /* bit w: way w holds an entry */
    uint8_t ref;   /* bit w: way w was hit since the hand passed */
    uint8_t hand;  /* CLOCK hand */
} vc_bucket;

typedef struct vc_shard {
    _Alignas(VC_LINE) pthread_mutex_t mu;
    _Atomic uint64_t hits, misses;
    _Atomic size_t count;
} vc_shard;

_Static_assert(sizeof(vc_entry) == TSR_VCACHE_ENTRY_BYTES, "entry layout");
_Static_assert(sizeof(vc_bucket) == VC_LINE, "a bucket is one cache line");
_Static_assert(sizeof(((tsr_bearer *)0)->roles) <= 256 && sizeof(((tsr_bearer *)0)->scope) <= 256,
               "string lengths fit a uint8_t");

struct tsr_vcache {
    vc_shard *shards;
    vc_bucket *buckets;       /* nshards * nbuckets, shard-major */
    vc_entry *entries;        /* one per (bucket, way); uninitialised until used */
    size_t nshards, nbuckets; /* powers of two; nbuckets per shard */
    unsigned ways;            /* a power of two <= 8 */
};

tsr_err tsr_vcache_new(size_t entries, tsr_vcache **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_vcache *c = NULL;
    size_t slots = 1, rest, inited = 0;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (entries == 0)
        return TSR_ERR_INVALID;
    if (entries > TSR_VCACHE_MAX)
        return TSR_ERR_TOO_LARGE;
    while (slots < entries)
        slots *= 2;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return TSR_ERR_NOMEM;
    c->ways = slots < VC_WAYS_MAX ? (unsigned)slots : VC_WAYS_MAX;
    rest = slots / c->ways;
    c->nshards = rest < VC_SHARDS_MAX ? rest : VC_SHARDS_MAX;
    c->nbuckets = rest / c->nshards;

    /* aligned_alloc wants a size that is a multiple of the alignment: all are. */
    c->shards = aligned_alloc(VC_LINE, c->nshards * sizeof *c->shards);
    c->buckets = aligned_alloc(VC_LINE, c->nshards * c->nbuckets * sizeof *c->buckets);
    c->entries = aligned_alloc(VC_LINE, slots * sizeof *c->entries);
    if (c->shards == NULL || c->buckets == NULL || c->entries == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    memset(c->buckets, 0, c->nshards * c->nbuckets * sizeof *c->buckets);
    memset(c->shards, 0, c->nshards * sizeof *c->shards);
    for (inited = 0; inited < c->nshards; inited++) {
        vc_shard *s = &c->shards[inited];
        if (pthread_mutex_init(&s->mu, NULL) != 0)
            goto out;
        atomic_init(&s->hits, 0);
        atomic_init(&s->misses, 0);
        atomic_init(&s->count, 0);
    }
    *out = c;
    c = NULL;
    rc = TSR_OK;
out:
    if (c != NULL) {
        for (size_t i = 0; i < inited; i++)
            pthread_mutex_destroy(&c->shards[i].mu);
        free(c->shards);
        free(c->buckets);
        free(c->entries);
        free(c);
    }
    return rc;
}

void tsr_vcache_free(tsr_vcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nshards; i++)
        pthread_mutex_destroy(&c->shards[i].mu);
    free(c->shards);
    free(c->buckets);
    free(c->entries);
    free(c);
}

/* The key's shard, its bucket (global index) and tag. */
static vc_shard *locate(const tsr_vcache *c, const uint8_t key[32], size_t *bucket, uint32_t *tag)
{
    uint64_t w;
    size_t shard;

    memcpy(&w, key, sizeof w);
    memcpy(tag, key + 8, sizeof *tag);
    shard = (size_t)w & (c->nshards - 1);
    *bucket = shard * c->nbuckets + ((size_t)(w >> 32) & (c->nbuckets - 1));
    return &c->shards[shard];
}

/* The way of bucket b holding key, or -1. The key is SHA-256 of a token the
 * caller already holds, so memcmp is fine: learning how many leading bytes of
 * some cached token's hash match gives nothing that makes a token (a hit needs
 * the whole hash, i.e. a preimage). */
static int find_way(const tsr_vcache *c, size_t b, const uint8_t key[32], uint32_t tag)
{
    const vc_bucket *bk = &c->buckets[b];

    for (unsigned w = 0; w < c->ways; w++) {
        if (!(bk->valid & (1u << w)) || bk->tag[w] != tag)
            continue;
        if (memcmp(c->entries[b * c->ways + w].key, key, 32) == 0)
            return (int)w;
    }
    return -1;
}

/* Adds one to a counter only the shard's lock holder writes. */
static void bump64(_Atomic uint64_t *n)
{
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void set_count(vc_shard *s, size_t n)
{
    atomic_store_explicit(&s->count, n, memory_order_relaxed);
}

static size_t get_count(vc_shard *s)
{
    return atomic_load_explicit(&s->count, memory_order_relaxed);
}

/* now <= exp + leeway, without overflow. */
static int fresh(int64_t exp, int64_t now, int64_t leeway)
{
    if (now <= exp)
        return 1;
    if (leeway < 0)
        leeway = 0;
    return (uint64_t)now - (uint64_t)exp <= (uint64_t)leeway;
}

static void unpack(const vc_entry *e, tsr_bearer *out)
{
    char *dst[VC_FIELDS] = {out->sub, out->sid, out->jti, out->username, out->roles, out->scope};
    size_t off = 0;

    for (int i = 0; i < VC_FIELDS; i++) {
        memcpy(dst[i], e->text + off, e->len[i]);
        dst[i][e->len[i]] = '\0';
        off += e->len[i];
    }
    out->exp = e->exp;
    out->iat = e->iat;
    out->cached = 1;
}

int tsr_vcache_get(tsr_vcache *c, const uint8_t key[32], int64_t now, int64_t leeway,
                   tsr_bearer *out)
{
    size_t b;
    uint32_t tag;
    vc_shard *s;
    int w, hit = 0;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (c == NULL || key == NULL || out == NULL)
        return 0;
    s = locate(c, key, &b, &tag);
    if (pthread_mutex_lock(&s->mu) != 0)
        return 0; /* a miss only costs a full verification */
    w = find_way(c, b, key, tag);
    if (w >= 0) {
        vc_bucket *bk = &c->buckets[b];
        const vc_entry *e = &c->entries[b * c->ways + (unsigned)w];
        uint8_t bit = (uint8_t)(1u << w);
        if (fresh(e->exp, now, leeway)) {
            unpack(e, out);
            bk->ref |= bit;
            hit = 1;
        } else {
            bk->valid &= (uint8_t)~bit;
            bk->ref &= (uint8_t)~bit;
            set_count(s, get_count(s) - 1);
        }
    }
    bump64(hit ? &s->hits : &s->misses);
    pthread_mutex_unlock(&s->mu);
    return hit;
}

/* Packs b into e; the bytes of e to copy, or 0 when b does not fit. */
static size_t pack(const tsr_bearer *b, const uint8_t key[32], vc_entry *e)
{
    const char *src[VC_FIELDS] = {b->sub, b->sid, b->jti, b->username, b->roles, b->scope};
    const size_t cap[VC_FIELDS] = {sizeof b->sub,      sizeof b->sid,   sizeof b->jti,
                                   sizeof b->username, sizeof b->roles, sizeof b->scope};
    size_t off = 0;

    for (int i = 0; i < VC_FIELDS; i++) {
        size_t n = strnlen(src[i], cap[i]);
        if (n == cap[i] || n > sizeof e->text - off)
            return 0;
        memcpy(e->text + off, src[i], n);
        e->len[i] = (uint8_t)n;
        off += n;
    }
    memcpy(e->key, key, sizeof e->key);
    e->exp = b->exp;
    e->iat = b->iat;
    e->pad[0] = e->pad[1] = 0;
    return offsetof(vc_entry, text) + off;
}

/* CLOCK: the first way from the hand not hit since the hand last passed it. */
static unsigned victim(vc_bucket *bk, unsigned ways)
{
    for (;;) {
        unsigned w = bk->hand;
        uint8_t bit = (uint8_t)(1u << w);
        bk->hand = (uint8_t)((w + 1) & (ways - 1));
        if (!(bk->ref & bit))
            return w;
        bk->ref &= (uint8_t)~bit;
    }
}

void tsr_vcache_put(tsr_vcache *c, const uint8_t key[32], const tsr_bearer *b)
{
    vc_entry e;
    size_t len, bi;
    uint32_t tag;
    vc_shard *s;
    vc_bucket *bk;
    int w;

    if (c == NULL || key == NULL || b == NULL)
        return;
    len = pack(b, key, &e);
    if (len == 0)
        return;
    s = locate(c, key, &bi, &tag);
    bk = &c->buckets[bi];
    if (pthread_mutex_lock(&s->mu) != 0)
        return;
    w = find_way(c, bi, key, tag);
    if (w < 0 && bk->valid != (uint8_t)((1u << c->ways) - 1)) {
        for (w = 0; bk->valid & (1u << w); w++)
            ;
        set_count(s, get_count(s) + 1);
    }
    if (w < 0)
        w = (int)victim(bk, c->ways);
    memcpy(&c->entries[bi * c->ways + (unsigned)w], &e, len);
    bk->tag[w] = tag;
    bk->valid |= (uint8_t)(1u << w);
    bk->ref &= (uint8_t) ~(1u << w);
    pthread_mutex_unlock(&s->mu);
}

void tsr_vcache_clear(tsr_vcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nshards; i++) {
        vc_shard *s = &c->shards[i];
        if (pthread_mutex_lock(&s->mu) != 0)
            continue;
        memset(&c->buckets[i * c->nbuckets], 0, c->nbuckets * sizeof *c->buckets);
        set_count(s, 0);
        pthread_mutex_unlock(&s->mu);
    }
}

void tsr_vcache_stats(tsr_vcache *c, uint64_t *hits, uint64_t *misses, size_t *entries)
{
    uint64_t h = 0, m = 0;
    size_t n = 0;

    if (c != NULL) {
        for (size_t i = 0; i < c->nshards; i++) {
            h += atomic_load_explicit(&c->shards[i].hits, memory_order_relaxed);
            m += atomic_load_explicit(&c->shards[i].misses, memory_order_relaxed);
            n += atomic_load_explicit(&c->shards[i].count, memory_order_relaxed);
        }
    }
    if (hits != NULL)
        *hits = h;
    if (misses != NULL)
        *misses = m;
    if (entries != NULL)
        *entries = n;
}
