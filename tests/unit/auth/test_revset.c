/* test_revset.c: the revoked sid/jti set: membership, kinds, expiry, purge,
 * growth, bad input, a randomised comparison with a plain array model, and
 * readers probing while a writer adds and purges. No timing assertions. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/revset.h"
#include "crypto/crypto.h"
#include "harness.h"

#define FAR (((int64_t)1) << 60)

static int add_str(tsr_revset *rs, tsr_revocation_kind k, const char *v, int64_t exp)
{
    return tsr_revset_add(rs, k, v, strlen(v), exp) == TSR_OK;
}

static int has_str(tsr_revset *rs, tsr_revocation_kind k, const char *v, int64_t now)
{
    return tsr_revset_has(rs, k, v, strlen(v), now);
}

static size_t id_of(char *buf, size_t cap, const char *prefix, size_t i)
{
    int k = snprintf(buf, cap, "%s%zu", prefix, i);
    return k > 0 && (size_t)k < cap ? (size_t)k : 0;
}

static void empty_set_has_nothing(void)
{
    tsr_revset *rs = NULL;

    CHECK(tsr_revset_new(&rs) == TSR_OK);
    CHECK(rs != NULL);
    CHECK(tsr_revset_count(rs) == 0);
    CHECK(!has_str(rs, TSR_REVOKE_SID, "ses_x", 0));
    CHECK(!has_str(rs, TSR_REVOKE_JTI, "ses_x", 0));
    CHECK(tsr_revset_purge(rs, FAR) == 0);
    tsr_revset_free(rs);
    tsr_revset_free(NULL);
}

static void added_value_is_found(void)
{
    tsr_revset *rs = NULL;

    CHECK(tsr_revset_new(&rs) == TSR_OK);
    CHECK(add_str(rs, TSR_REVOKE_SID, "ses_abc", 100));
    CHECK(has_str(rs, TSR_REVOKE_SID, "ses_abc", 50));
    CHECK(!has_str(rs, TSR_REVOKE_SID, "ses_abd", 50));
    CHECK(!has_str(rs, TSR_REVOKE_SID, "ses_ab", 50));
    CHECK(!has_str(rs, TSR_REVOKE_SID, "ses_abcd", 50));
    CHECK(tsr_revset_count(rs) == 1);
    /* Adding again does not duplicate. */
    CHECK(add_str(rs, TSR_REVOKE_SID, "ses_abc", 100));
    CHECK(tsr_revset_count(rs) == 1);
    tsr_revset_free(rs);
}

static void kind_is_part_of_the_key(void)
{
    tsr_revset *rs = NULL;

    CHECK(tsr_revset_new(&rs) == TSR_OK);
    CHECK(add_str(rs, TSR_REVOKE_SID, "same", 100));
    CHECK(has_str(rs, TSR_REVOKE_SID, "same", 0));
    CHECK(!has_str(rs, TSR_REVOKE_JTI, "same", 0));
    CHECK(add_str(rs, TSR_REVOKE_JTI, "same", 10));
    CHECK(tsr_revset_count(rs) == 2);
    CHECK(has_str(rs, TSR_REVOKE_JTI, "same", 10));
    CHECK(!has_str(rs, TSR_REVOKE_JTI, "same", 11));
    CHECK(has_str(rs, TSR_REVOKE_SID, "same", 11));
    CHECK(tsr_revset_purge(rs, 11) == 1);
    CHECK(has_str(rs, TSR_REVOKE_SID, "same", 11));
    CHECK(!has_str(rs, TSR_REVOKE_JTI, "same", 0));
    tsr_revset_free(rs);
}

static void entry_expires_after_expires_at(void)
{
    tsr_revset *rs = NULL;

    CHECK(tsr_revset_new(&rs) == TSR_OK);
    CHECK(add_str(rs, TSR_REVOKE_JTI, "jti_1", 1000));
    CHECK(has_str(rs, TSR_REVOKE_JTI, "jti_1", 999));
    CHECK(has_str(rs, TSR_REVOKE_JTI, "jti_1", 1000)); /* expires_at >= now */
    CHECK(!has_str(rs, TSR_REVOKE_JTI, "jti_1", 1001));
    CHECK(tsr_revset_count(rs) == 1); /* until purged */
    tsr_revset_free(rs);
}

static void purge_removes_only_expired(void)
{
    tsr_revset *rs = NULL;
    char v[32];

    CHECK(tsr_revset_new(&rs) == TSR_OK);
    for (size_t i = 0; i < 100; i++) {
        size_t n = id_of(v, sizeof v, "ses_", i);
        CHECK(tsr_revset_add(rs, TSR_REVOKE_SID, v, n, (int64_t)i) == TSR_OK);
    }
    CHECK(tsr_revset_purge(rs, 0) == 0);   /* nothing below 0 */
    CHECK(tsr_revset_purge(rs, 50) == 50); /* 0..49 */
    CHECK(tsr_revset_count(rs) == 50);
    CHECK(tsr_revset_purge(rs, 50) == 0);
    for (size_t i = 0; i < 100; i++) {
        size_t n = id_of(v, sizeof v, "ses_", i);
        CHECKF(tsr_revset_has(rs, TSR_REVOKE_SID, v, n, 0) == (i >= 50), "%zu", i);
    }
    CHECK(tsr_revset_purge(rs, 1000) == 50);
    CHECK(tsr_revset_count(rs) == 0);
    CHECK(!has_str(rs, TSR_REVOKE_SID, "ses_99", 0));
    /* Usable again after emptying. */
    CHECK(add_str(rs, TSR_REVOKE_SID, "ses_99", 5));
    CHECK(has_str(rs, TSR_REVOKE_SID, "ses_99", 5));
    tsr_revset_free(rs);
}

static void existing_entry_keeps_later_expiry(void)
{
    tsr_revset *rs = NULL;

    CHECK(tsr_revset_new(&rs) == TSR_OK);
    CHECK(add_str(rs, TSR_REVOKE_SID, "ses_k", 100));
    CHECK(add_str(rs, TSR_REVOKE_SID, "ses_k", 50)); /* earlier: ignored */
    CHECK(has_str(rs, TSR_REVOKE_SID, "ses_k", 80));
    CHECK(has_str(rs, TSR_REVOKE_SID, "ses_k", 100));
    CHECK(add_str(rs, TSR_REVOKE_SID, "ses_k", 200)); /* later: kept */
    CHECK(has_str(rs, TSR_REVOKE_SID, "ses_k", 150));
    CHECK(tsr_revset_purge(rs, 150) == 0);
    CHECK(tsr_revset_count(rs) == 1);
    CHECK(tsr_revset_purge(rs, 201) == 1);
    tsr_revset_free(rs);
}

static void grows_to_200k_entries_and_shrinks(void)
{
    enum { N = 200000 };
    tsr_revset *rs = NULL;
    char v[32];
    size_t bad = 0;

    CHECK(tsr_revset_new(&rs) == TSR_OK);
    for (size_t i = 0; i < N; i++) {
        size_t n = id_of(v, sizeof v, "jti_", i);
        if (tsr_revset_add(rs, TSR_REVOKE_JTI, v, n, (int64_t)(i % 2 ? 1000 : 10)) != TSR_OK)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(tsr_revset_count(rs) == N);
    bad = 0;
    for (size_t i = 0; i < N; i++) {
        size_t n = id_of(v, sizeof v, "jti_", i);
        if (!tsr_revset_has(rs, TSR_REVOKE_JTI, v, n, 5))
            bad++;
        if (tsr_revset_has(rs, TSR_REVOKE_SID, v, n, 5))
            bad++;
        n = id_of(v, sizeof v, "jtx_", i);
        if (tsr_revset_has(rs, TSR_REVOKE_JTI, v, n, 5))
            bad++;
    }
    CHECK(bad == 0);
    CHECK(tsr_revset_purge(rs, 11) == N / 2);
    CHECK(tsr_revset_count(rs) == N / 2);
    bad = 0;
    for (size_t i = 0; i < N; i++) {
        size_t n = id_of(v, sizeof v, "jti_", i);
        if (tsr_revset_has(rs, TSR_REVOKE_JTI, v, n, 5) != (int)(i % 2))
            bad++;
    }
    CHECK(bad == 0);
    /* Down to a handful: the arrays shrink and still work. */
    CHECK(tsr_revset_purge(rs, 1001) == N / 2);
    CHECK(add_str(rs, TSR_REVOKE_JTI, "jti_7", 2000));
    CHECK(has_str(rs, TSR_REVOKE_JTI, "jti_7", 1500));
    CHECK(!has_str(rs, TSR_REVOKE_JTI, "jti_9", 1500));
    CHECK(tsr_revset_count(rs) == 1);
    tsr_revset_free(rs);
}

static void rejects_bad_kind_and_value(void)
{
    tsr_revset *rs = NULL;
    char v[TSR_ID_MAX + 2];

    memset(v, 'a', sizeof v);
    CHECK(tsr_revset_new(NULL) == TSR_ERR_INVALID);
    CHECK(tsr_revset_new(&rs) == TSR_OK);
    CHECK(tsr_revset_add(rs, TSR_REVOKE_INVALID, "x", 1, 10) == TSR_ERR_INVALID);
    CHECK(tsr_revset_add(rs, (tsr_revocation_kind)3, "x", 1, 10) == TSR_ERR_INVALID);
    CHECK(tsr_revset_add(rs, TSR_REVOKE_SID, NULL, 1, 10) == TSR_ERR_INVALID);
    CHECK(tsr_revset_add(rs, TSR_REVOKE_SID, "x", 0, 10) == TSR_ERR_INVALID);
    CHECK(tsr_revset_add(rs, TSR_REVOKE_SID, v, TSR_ID_MAX + 1, 10) == TSR_ERR_INVALID);
    CHECK(tsr_revset_add(NULL, TSR_REVOKE_SID, "x", 1, 10) == TSR_ERR_INVALID);
    CHECK(tsr_revset_count(rs) == 0);
    /* The longest value and arbitrary bytes are fine. */
    CHECK(tsr_revset_add(rs, TSR_REVOKE_SID, v, TSR_ID_MAX, 10) == TSR_OK);
    CHECK(tsr_revset_has(rs, TSR_REVOKE_SID, v, TSR_ID_MAX, 10));
    CHECK(!tsr_revset_has(rs, TSR_REVOKE_SID, v, TSR_ID_MAX - 1, 10));
    CHECK(!tsr_revset_has(rs, TSR_REVOKE_SID, v, TSR_ID_MAX + 1, 10));
    CHECK(tsr_revset_add(rs, TSR_REVOKE_JTI, "a\0b", 3, 10) == TSR_OK);
    CHECK(tsr_revset_has(rs, TSR_REVOKE_JTI, "a\0b", 3, 10));
    CHECK(!tsr_revset_has(rs, TSR_REVOKE_JTI, "a\0c", 3, 10));
    CHECK(!tsr_revset_has(rs, TSR_REVOKE_JTI, "a", 1, 10));
    CHECK(!tsr_revset_has(rs, TSR_REVOKE_INVALID, v, TSR_ID_MAX, 10));
    CHECK(!tsr_revset_has(rs, TSR_REVOKE_SID, NULL, 1, 10));
    CHECK(!tsr_revset_has(rs, TSR_REVOKE_SID, v, 0, 10));
    CHECK(!tsr_revset_has(NULL, TSR_REVOKE_SID, v, TSR_ID_MAX, 10));
    CHECK(tsr_revset_purge(NULL, 10) == 0);
    CHECK(tsr_revset_count(NULL) == 0);
    tsr_revset_free(rs);
}

/* Random adds, probes and purges against a plain array: the fast path must agree
 * with the obvious one. A small value space forces repeats and re-adds after
 * purges; short ids force many hash collisions within probe runs. */
static void agrees_with_a_plain_model(void)
{
    enum { VALUES = 300, OPS = 200000 };
    static int64_t model[2][VALUES]; /* expires_at, or INT64_MIN when absent */
    tsr_revset *rs = NULL;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int64_t now = 0;
    size_t bad = 0;
    char v[16];

    CHECK(tsr_revset_new(&rs) == TSR_OK);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < VALUES; i++)
            model[k][i] = INT64_MIN;
    for (size_t op = 0; op < OPS; op++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int k = (int)(x & 1);
        tsr_revocation_kind kind = k ? TSR_REVOKE_JTI : TSR_REVOKE_SID;
        size_t i = (size_t)(x >> 8) % VALUES;
        size_t n = id_of(v, sizeof v, "", i);
        unsigned what = (unsigned)(x >> 40) % 100;
        if (what < 40) {
            int64_t exp = now + (int64_t)((x >> 20) % 50);
            if (tsr_revset_add(rs, kind, v, n, exp) != TSR_OK)
                bad++;
            if (exp > model[k][i])
                model[k][i] = exp;
        } else if (what < 98) {
            int want = model[k][i] != INT64_MIN && model[k][i] >= now;
            if (tsr_revset_has(rs, kind, v, n, now) != want)
                bad++;
        } else {
            size_t want = 0, present = 0;
            now += (int64_t)((x >> 24) % 5);
            for (int kk = 0; kk < 2; kk++) {
                for (int j = 0; j < VALUES; j++) {
                    if (model[kk][j] == INT64_MIN)
                        continue;
                    if (model[kk][j] < now) {
                        model[kk][j] = INT64_MIN;
                        want++;
                    } else {
                        present++;
                    }
                }
            }
            if (tsr_revset_purge(rs, now) != want || tsr_revset_count(rs) != present)
                bad++;
        }
    }
    CHECK(bad == 0);
    tsr_revset_free(rs);
}

/* ---- concurrency ---- */

#define MT_FIXED 1000
#define MT_ROUNDS 300
#define MT_TEMP 300
#define MT_READERS 4

typedef struct mt_ctx {
    tsr_revset *rs;
    atomic_size_t published; /* keep-r entries added so far */
    atomic_int done;
    atomic_size_t ready; /* readers running */
    atomic_size_t failures;
    atomic_size_t probes;
} mt_ctx;

static void *mt_reader(void *arg)
{
    mt_ctx *m = arg;
    uint64_t x = (uint64_t)(uintptr_t)&x | 1;
    char v[32];

    atomic_fetch_add(&m->ready, 1);
    do {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t i = (size_t)(x % MT_FIXED);
        size_t n = id_of(v, sizeof v, "fixed_", i);
        if (!tsr_revset_has(m->rs, TSR_REVOKE_SID, v, n, 1000000))
            atomic_fetch_add(&m->failures, 1);
        if (tsr_revset_has(m->rs, TSR_REVOKE_JTI, v, n, 0))
            atomic_fetch_add(&m->failures, 1);
        n = id_of(v, sizeof v, "never_", i);
        if (tsr_revset_has(m->rs, TSR_REVOKE_SID, v, n, 0))
            atomic_fetch_add(&m->failures, 1);
        size_t pub = atomic_load(&m->published);
        if (pub > 0) {
            n = id_of(v, sizeof v, "keep_", (size_t)(x >> 32) % pub);
            if (!tsr_revset_has(m->rs, TSR_REVOKE_JTI, v, n, 1000000))
                atomic_fetch_add(&m->failures, 1);
        }
        atomic_fetch_add(&m->probes, 1);
    } while (!atomic_load(&m->done));
    return NULL;
}

static void readers_see_stable_entries_while_writer_churns(void)
{
    mt_ctx m;
    pthread_t th[MT_READERS];
    size_t started = 0, writer_bad = 0;
    char v[48];

    memset(&m, 0, sizeof m);
    CHECK(tsr_revset_new(&m.rs) == TSR_OK);
    for (size_t i = 0; i < MT_FIXED; i++) {
        size_t n = id_of(v, sizeof v, "fixed_", i);
        CHECK(tsr_revset_add(m.rs, TSR_REVOKE_SID, v, n, FAR) == TSR_OK);
    }
    for (; started < MT_READERS; started++)
        if (pthread_create(&th[started], NULL, mt_reader, &m) != 0)
            break;
    CHECK(started == MT_READERS);
    while (atomic_load(&m.ready) < started)
        sched_yield();
    for (size_t r = 1; r <= MT_ROUNDS; r++) {
        char pfx[24];
        int k = snprintf(pfx, sizeof pfx, "tmp_%zu_", r);
        if (k < 0 || (size_t)k >= sizeof pfx)
            writer_bad++;
        for (size_t i = 0; i < MT_TEMP; i++) {
            size_t n = id_of(v, sizeof v, pfx, i);
            if (tsr_revset_add(m.rs, TSR_REVOKE_JTI, v, n, (int64_t)r) != TSR_OK)
                writer_bad++;
        }
        size_t n = id_of(v, sizeof v, "keep_", r - 1);
        if (tsr_revset_add(m.rs, TSR_REVOKE_JTI, v, n, FAR) != TSR_OK)
            writer_bad++;
        atomic_store(&m.published, r);
        /* Drops round r-1's temporaries (expires_at r-1 < r). */
        if (r > 1 && tsr_revset_purge(m.rs, (int64_t)r) != MT_TEMP)
            writer_bad++;
    }
    atomic_store(&m.done, 1);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    CHECK(writer_bad == 0);
    CHECK(atomic_load(&m.failures) == 0);
    CHECK(atomic_load(&m.probes) > 0);
    CHECK(tsr_revset_count(m.rs) == MT_FIXED + MT_ROUNDS + MT_TEMP);
    tsr_revset_free(m.rs);
}

int main(void)
{
    if (tsr_crypto_init() != TSR_OK)
        return 1;
    TSR_RUN(empty_set_has_nothing);
    TSR_RUN(added_value_is_found);
    TSR_RUN(kind_is_part_of_the_key);
    TSR_RUN(entry_expires_after_expires_at);
    TSR_RUN(purge_removes_only_expired);
    TSR_RUN(existing_entry_keeps_later_expiry);
    TSR_RUN(grows_to_200k_entries_and_shrinks);
    TSR_RUN(rejects_bad_kind_and_value);
    TSR_RUN(agrees_with_a_plain_model);
    TSR_RUN(readers_see_stable_entries_while_writer_churns);
    return tsr_test_summary();
}
