/* revset.c: the live set of revoked sid/jti values (see revset.h).
 *
 * Entries (value, kind, expiry and their hash: 64 bytes) sit in a dense array. An
 * open-addressing index of 8-byte slots (32 bits of the hash as a tag, and the
 * entry's position + 1; 0 is empty) with linear probing points into it, kept at
 * most half full. A probe that misses, the common case, reads one or two slots,
 * usually one cache line, and touches an entry only on a tag match. Purge compacts
 * the dense array and rebuilds the index, so there are no tombstones; it is
 * skipped outright while no entry can have expired (min_exp).
 *
 * The hash is SipHash-1-3 of (kind, value) under a key drawn from tsr_rand when
 * the set is made, so nobody can aim values at one probe run. One rwlock: probes
 * share it, add and purge hold it alone. count is also an atomic so that probing
 * an empty set takes no lock at all.
 *
 * glibc's default rwlock prefers readers: with threads probing back to back, an
 * add (the sync thread publishing a revocation) was measured waiting seconds.
 * The lock is made writer-preferring (a GNU extension, hence _GNU_SOURCE): new
 * probes queue behind a waiting writer, which holds the lock for microseconds. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "auth/revset.h"
#include "crypto/crypto.h"

#define RS_MIN_SLOTS ((size_t)64) /* index slots, a power of two */
#define RS_MIN_ENTRIES ((size_t)32)

typedef struct rs_entry {
    uint64_t hash;
    int64_t expires_at;
    uint8_t kind;
    uint8_t len;
    char value[TSR_ID_MAX + 1]; /* NUL-terminated too, for debugging */
} rs_entry;

typedef struct rs_slot {
    uint32_t tag; /* the hash's high half */
    uint32_t pos; /* entry index + 1; 0 = empty */
} rs_slot;

_Static_assert(TSR_REVSET_MAX < UINT32_MAX, "pos must fit an rs_slot");

struct tsr_revset {
    pthread_rwlock_t lock;
    uint64_t k0, k1; /* SipHash key */
    rs_slot *slots;
    size_t mask; /* index slots - 1 */
    rs_entry *entries;
    size_t cap;           /* entries allocated */
    _Atomic size_t count; /* written under the write lock only */
    int64_t min_exp;      /* <= every entry's expires_at; INT64_MAX when empty */
};

/* ---- SipHash-1-3 ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t load64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t siphash13(uint64_t k0, uint64_t k1, const uint8_t *in, size_t n)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = k1 ^ 0x7465646279746573ULL;
    size_t full = n & ~(size_t)7;
    uint64_t b = (uint64_t)n << 56;

    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load64le(in + i);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < (n & 7); i++)
        b |= (uint64_t)in[full + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static int kind_ok(tsr_revocation_kind kind)
{
    return kind == TSR_REVOKE_SID || kind == TSR_REVOKE_JTI;
}

static int value_ok(const char *value, size_t n)
{
    return value != NULL && n >= 1 && n <= TSR_ID_MAX;
}

static uint64_t hash_of(const tsr_revset *rs, tsr_revocation_kind kind, const char *value, size_t n)
{
    uint8_t buf[1 + TSR_ID_MAX];

    buf[0] = (uint8_t)kind;
    memcpy(buf + 1, value, n);
    return siphash13(rs->k0, rs->k1, buf, n + 1);
}

/* ---- the index (callers hold the lock) ---- */

/* Position + 1 of the entry (kind, value), or 0. Ends: the index is never full. */
static size_t find(const tsr_revset *rs, uint64_t h, tsr_revocation_kind kind, const char *value,
                   size_t n)
{
    uint32_t tag = (uint32_t)(h >> 32);

    for (size_t i = (size_t)h & rs->mask;; i = (i + 1) & rs->mask) {
        const rs_slot *s = &rs->slots[i];
        if (s->pos == 0)
            return 0;
        if (s->tag != tag)
            continue;
        const rs_entry *e = &rs->entries[s->pos - 1];
        /* memcmp: sids and jtis are public ids, not secrets. */
        if (e->kind == (uint8_t)kind && e->len == n && memcmp(e->value, value, n) == 0)
            return s->pos;
    }
}

static void index_put(rs_slot *slots, size_t mask, uint64_t h, size_t pos)
{
    size_t i = (size_t)h & mask;

    while (slots[i].pos != 0)
        i = (i + 1) & mask;
    slots[i].tag = (uint32_t)(h >> 32);
    slots[i].pos = (uint32_t)pos;
}

/* Refills slots (nslots entries, zeroed by the caller) from the first n entries. */
static void index_fill(tsr_revset *rs, rs_slot *slots, size_t nslots, size_t n)
{
    for (size_t i = 0; i < n; i++)
        index_put(slots, nslots - 1, rs->entries[i].hash, i + 1);
    rs->slots = slots;
    rs->mask = nslots - 1;
}

/* Smallest power of two >= RS_MIN_SLOTS holding n entries at most half full. */
static size_t slots_for(size_t n)
{
    size_t s = RS_MIN_SLOTS;

    while (s < 2 * n)
        s *= 2;
    return s;
}

/* Makes room for n entries: both arrays, before anything changes. */
static tsr_err reserve(tsr_revset *rs, size_t n)
{
    if (n > rs->cap) {
        size_t cap = rs->cap * 2;
        if (cap > TSR_REVSET_MAX)
            cap = TSR_REVSET_MAX;
        rs_entry *e = realloc(rs->entries, cap * sizeof *e);
        if (e == NULL)
            return TSR_ERR_NOMEM;
        rs->entries = e;
        rs->cap = cap;
    }
    if (2 * n > rs->mask + 1) {
        size_t nslots = slots_for(n);
        rs_slot *s = calloc(nslots, sizeof *s);
        if (s == NULL)
            return TSR_ERR_NOMEM;
        free(rs->slots);
        index_fill(rs, s, nslots, atomic_load_explicit(&rs->count, memory_order_relaxed));
    }
    return TSR_OK;
}

/* ---- API ---- */

tsr_err tsr_revset_new(tsr_revset **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_revset *rs = NULL;
    pthread_rwlockattr_t attr;
    uint8_t seed[16];
    int lock_ok = 0;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    rs = calloc(1, sizeof *rs);
    if (rs == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    rc = tsr_rand(seed, sizeof seed);
    if (rc != TSR_OK)
        goto out;
    rs->k0 = load64le(seed);
    rs->k1 = load64le(seed + 8);
    rs->slots = calloc(RS_MIN_SLOTS, sizeof *rs->slots);
    rs->entries = calloc(RS_MIN_ENTRIES, sizeof *rs->entries);
    if (rs->slots == NULL || rs->entries == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    rs->mask = RS_MIN_SLOTS - 1;
    rs->cap = RS_MIN_ENTRIES;
    rs->min_exp = INT64_MAX;
    atomic_init(&rs->count, 0);
    rc = TSR_ERR_INTERNAL;
    if (pthread_rwlockattr_init(&attr) != 0)
        goto out;
#if defined(__GLIBC__)
    if (pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) != 0) {
        pthread_rwlockattr_destroy(&attr);
        goto out;
    }
#endif
    lock_ok = pthread_rwlock_init(&rs->lock, &attr) == 0;
    pthread_rwlockattr_destroy(&attr);
    if (!lock_ok)
        goto out;
    *out = rs;
    rs = NULL;
    rc = TSR_OK;
out:
    tsr_wipe(seed, sizeof seed);
    if (rs != NULL) {
        if (lock_ok)
            pthread_rwlock_destroy(&rs->lock);
        free(rs->slots);
        free(rs->entries);
        free(rs);
    }
    return rc;
}

void tsr_revset_free(tsr_revset *rs)
{
    if (rs == NULL)
        return;
    pthread_rwlock_destroy(&rs->lock);
    free(rs->slots);
    free(rs->entries);
    tsr_wipe(rs, sizeof *rs); /* the hash key */
    free(rs);
}

tsr_err tsr_revset_add(tsr_revset *rs, tsr_revocation_kind kind, const char *value, size_t n,
                       int64_t expires_at)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    size_t pos, count;
    uint64_t h;

    if (rs == NULL || !kind_ok(kind) || !value_ok(value, n))
        return TSR_ERR_INVALID;
    h = hash_of(rs, kind, value, n);
    if (pthread_rwlock_wrlock(&rs->lock) != 0)
        return TSR_ERR_INTERNAL;
    pos = find(rs, h, kind, value, n);
    if (pos != 0) {
        rs_entry *e = &rs->entries[pos - 1];
        if (expires_at > e->expires_at)
            e->expires_at = expires_at; /* min_exp stays a valid lower bound */
        rc = TSR_OK;
        goto out;
    }
    count = atomic_load_explicit(&rs->count, memory_order_relaxed);
    if (count >= TSR_REVSET_MAX) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    rc = reserve(rs, count + 1);
    if (rc != TSR_OK)
        goto out;
    rs_entry *e = &rs->entries[count];
    memset(e, 0, sizeof *e);
    e->hash = h;
    e->expires_at = expires_at;
    e->kind = (uint8_t)kind;
    e->len = (uint8_t)n;
    memcpy(e->value, value, n);
    index_put(rs->slots, rs->mask, h, count + 1);
    if (expires_at < rs->min_exp)
        rs->min_exp = expires_at;
    atomic_store_explicit(&rs->count, count + 1, memory_order_release);
    rc = TSR_OK;
out:
    pthread_rwlock_unlock(&rs->lock);
    return rc;
}

int tsr_revset_has(tsr_revset *rs, tsr_revocation_kind kind, const char *value, size_t n,
                   int64_t now)
{
    size_t pos;
    uint64_t h;
    int hit;

    if (rs == NULL || !kind_ok(kind) || !value_ok(value, n))
        return 0;
    if (atomic_load_explicit(&rs->count, memory_order_acquire) == 0)
        return 0;
    h = hash_of(rs, kind, value, n);
    if (pthread_rwlock_rdlock(&rs->lock) != 0)
        return 1; /* revocation never fails open */
    pos = find(rs, h, kind, value, n);
    hit = pos != 0 && rs->entries[pos - 1].expires_at >= now;
    pthread_rwlock_unlock(&rs->lock);
    return hit;
}

/* After a purge left n entries: smaller arrays when they are 4x too big. A failed
 * allocation only keeps the bigger arrays. */
static void shrink(tsr_revset *rs, size_t n)
{
    size_t nslots = slots_for(n);

    if (rs->cap > RS_MIN_ENTRIES && rs->cap / 4 > n) {
        size_t cap = 2 * n < RS_MIN_ENTRIES ? RS_MIN_ENTRIES : 2 * n;
        rs_entry *e = realloc(rs->entries, cap * sizeof *e);
        if (e != NULL) {
            rs->entries = e;
            rs->cap = cap;
        }
    }
    if ((rs->mask + 1) / 4 >= nslots) {
        rs_slot *s = calloc(nslots, sizeof *s);
        if (s != NULL) {
            free(rs->slots);
            index_fill(rs, s, nslots, n);
            return;
        }
    }
    memset(rs->slots, 0, (rs->mask + 1) * sizeof *rs->slots);
    index_fill(rs, rs->slots, rs->mask + 1, n);
}

size_t tsr_revset_purge(tsr_revset *rs, int64_t now)
{
    size_t count, keep = 0;
    int64_t min = INT64_MAX;

    if (rs == NULL)
        return 0;
    if (pthread_rwlock_wrlock(&rs->lock) != 0)
        return 0;
    count = atomic_load_explicit(&rs->count, memory_order_relaxed);
    if (count == 0 || rs->min_exp >= now) {
        pthread_rwlock_unlock(&rs->lock);
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        const rs_entry *e = &rs->entries[i];
        if (e->expires_at < now)
            continue;
        if (e->expires_at < min)
            min = e->expires_at;
        if (keep != i)
            rs->entries[keep] = *e;
        keep++;
    }
    rs->min_exp = min;
    if (keep != count) {
        shrink(rs, keep);
        atomic_store_explicit(&rs->count, keep, memory_order_release);
    }
    pthread_rwlock_unlock(&rs->lock);
    return count - keep;
}

size_t tsr_revset_count(tsr_revset *rs)
{
    if (rs == NULL)
        return 0;
    return atomic_load_explicit(&rs->count, memory_order_acquire);
}
