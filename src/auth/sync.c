/* sync.c: keeps this process in step with the store: new revocation rows into
 * the in-memory revoked set, key changes into the keyring, automatic key
 * rotation and purges, from a background thread and on demand. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "auth/revset.h"
#include "auth/vcache.h"
#include "common/log.h"

#define REVOCATION_PAGE 512
#define KEYS_CHECK_INTERVAL 1   /* seconds between key-list reads */
#define PURGE_INTERVAL 60       /* seconds between purges of expired rows */

/* How long a revoked sid must stay: the longest access token issued before the
 * revocation, plus the leeway verifiers give exp. */
static int64_t sid_lifetime(const tsr_auth *a)
{
    return a->opts.access_ttl + TSR_JWT_DEFAULT_LEEWAY;
}

static tsr_err read_revocations(tsr_auth *a, int64_t now)
{
    tsr_revocation *rows = calloc(REVOCATION_PAGE, sizeof *rows);
    tsr_err rc = TSR_OK;
    size_t n;

    uint64_t mine = atomic_fetch_add_explicit(&a->sync_begun, 1, memory_order_acq_rel) + 1;

    if (rows == NULL)
        return TSR_ERR_NOMEM;
    do {
        n = 0;
        rc = tsr_store_revocation_since(a->store, a->revoked_seq, now - sid_lifetime(a), rows,
                                        REVOCATION_PAGE, &n);
        if (rc != TSR_OK)
            break;
        for (size_t i = 0; i < n; i++) {
            const tsr_revocation *r = &rows[i];
            int64_t until = r->kind == TSR_REVOKE_JTI ? r->expires_at + TSR_JWT_DEFAULT_LEEWAY
                                                      : r->revoked_at + sid_lifetime(a);
            if (until >= now) {
                rc = tsr_revset_add(a->revset, r->kind, r->value, strlen(r->value), until);
                if (rc != TSR_OK && rc != TSR_ERR_INVALID)
                    break;
                rc = TSR_OK;
                tsr_auth_hot_note(a, r, until, now);
            }
            a->revoked_seq = r->seq;
            atomic_fetch_add_explicit(&a->revocations_read, 1, memory_order_relaxed);
        }
    } while (rc == TSR_OK && n == REVOCATION_PAGE);
    free(rows);
    if (rc == TSR_OK)
        atomic_store_explicit(&a->sync_done, mine, memory_order_release);
    else
        atomic_store_explicit(&a->sync_failed, mine, memory_order_release);
    return rc;
}

tsr_err tsr_auth_sync_revocations(tsr_auth *a, int64_t now)
{
    tsr_err rc;

    pthread_mutex_lock(&a->sync_mu);
    rc = read_revocations(a, now);
    pthread_mutex_unlock(&a->sync_mu);
    return rc;
}

tsr_err tsr_auth_revocations_fresh(tsr_auth *a, int64_t now)
{
    uint64_t arrived;
    tsr_err rc = TSR_OK;

    if (a->redis == NULL || atomic_load_explicit(&a->feed_live, memory_order_acquire))
        return TSR_OK;
    arrived = atomic_load_explicit(&a->sync_begun, memory_order_acquire);
    pthread_mutex_lock(&a->sync_mu);
    /* A sync numbered above `arrived` began after this request did; if one has
     * finished, everything committed before the request is in the set. */
    if (atomic_load_explicit(&a->sync_done, memory_order_acquire) > arrived)
        rc = TSR_OK;
    else if (atomic_load_explicit(&a->sync_failed, memory_order_acquire) > arrived)
        rc = TSR_ERR_UNAVAILABLE; /* one that began after us failed: so would we, now */
    else
        rc = read_revocations(a, now);
    pthread_mutex_unlock(&a->sync_mu);
    return rc == TSR_OK ? TSR_OK : TSR_ERR_UNAVAILABLE;
}

void tsr_auth_revocations_changed(tsr_auth *a)
{
    tsr_err rc;

    pthread_mutex_lock(&a->sync_mu);
    rc = read_revocations(a, (int64_t)time(NULL));
    /* Tell the other instances (and drop their cached sessions) before answering. */
    tsr_auth_hot_publish_pending(a);
    pthread_mutex_unlock(&a->sync_mu);
    if (rc != TSR_OK)
        tsr_log(TSR_LOG_WARN, "revocation sync failed; the background sync retries",
                TSR_F_ERR(rc));
}

static void purge(tsr_auth *a, int64_t now)
{
    size_t purged = 0;
    tsr_err rc = tsr_store_revocation_purge(a->store, now - sid_lifetime(a), &purged);
    if (rc != TSR_OK)
        tsr_log(TSR_LOG_WARN, "purge of old revocations failed", TSR_F_ERR(rc));
    rc = tsr_store_purge_expired(a->store, now, &purged);
    if (rc != TSR_OK)
        tsr_log(TSR_LOG_WARN, "purge of expired sessions failed", TSR_F_ERR(rc));
    else if (purged > 0)
        tsr_log(TSR_LOG_INFO, "expired sessions purged", TSR_F_INT("count", purged));
}

tsr_err tsr_auth_sync(tsr_auth *a, int64_t now)
{
    tsr_err rc, krc = TSR_OK;
    int64_t activated_at = 0;
    int do_purge = 0;
    uint64_t resync;

    if (a == NULL)
        return TSR_ERR_INVALID;
    pthread_mutex_lock(&a->sync_mu);
    resync = atomic_load_explicit(&a->resync_pending, memory_order_acquire);
    rc = read_revocations(a, now);
    if (rc == TSR_OK && resync != 0)
        tsr_auth_hot_resync_done(a, resync); /* the resubscribe's own read had failed */
    tsr_auth_hot_expire_pending(a, now);
    if (now - a->revset_purged_at >= KEYS_CHECK_INTERVAL) {
        (void)tsr_revset_purge(a->revset, now);
        a->revset_purged_at = now;
    }
    if (now - a->keys_checked_at >= KEYS_CHECK_INTERVAL && a->keys != NULL) {
        a->keys_checked_at = now;
        krc = tsr_auth_keys_reload(a, now, 0);
        if (krc == TSR_OK && a->opts.key_rotation > 0) {
            pthread_rwlock_rdlock(&a->keys_rw);
            activated_at = a->keys != NULL ? a->keys->activated_at : 0;
            pthread_rwlock_unlock(&a->keys_rw);
            if (activated_at > 0 && now - activated_at >= a->opts.key_rotation) {
                krc = tsr_auth_keys_rotate(a, a->opts.alg, now, NULL);
                if (krc == TSR_ERR_CONFLICT)
                    krc = TSR_OK; /* another instance rotated first */
            }
        }
    }
    if (now - a->purged_at >= PURGE_INTERVAL) {
        a->purged_at = now;
        do_purge = 1;
    }
    pthread_mutex_unlock(&a->sync_mu);
    if (do_purge)
        purge(a, now);
    return rc != TSR_OK ? rc : krc;
}

static void *sync_main(void *arg)
{
    tsr_auth *a = arg;
    int logged = 0;

    pthread_mutex_lock(&a->stop_mu);
    while (!a->stop) {
        struct timespec ts;
        tsr_err rc;
        pthread_mutex_unlock(&a->stop_mu);
        rc = tsr_auth_sync(a, (int64_t)time(NULL));
        if (rc != TSR_OK && !logged)
            tsr_log(TSR_LOG_WARN, "background sync failed", TSR_F_ERR(rc));
        logged = rc != TSR_OK;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)TSR_SYNC_INTERVAL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec += 1;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&a->stop_mu);
        if (!a->stop)
            (void)pthread_cond_timedwait(&a->stop_cv, &a->stop_mu, &ts);
    }
    pthread_mutex_unlock(&a->stop_mu);
    tsr_crypto_thread_cleanup();
    return NULL;
}

tsr_err tsr_auth_sync_start(tsr_auth *a)
{
    if (a == NULL)
        return TSR_ERR_INVALID;
    if (a->sync_running)
        return TSR_OK;
    if (pthread_create(&a->sync_thread, NULL, sync_main, a) != 0)
        return TSR_ERR_INTERNAL;
    a->sync_running = 1;
    return TSR_OK;
}

int tsr_auth_is_revoked(tsr_auth *a, const char *sid, const char *jti, int64_t now)
{
    if (a == NULL)
        return 0;
    return (sid != NULL && tsr_revset_has(a->revset, TSR_REVOKE_SID, sid, strlen(sid), now)) ||
           (jti != NULL && tsr_revset_has(a->revset, TSR_REVOKE_JTI, jti, strlen(jti), now));
}

uint64_t tsr_auth_revocations_read(tsr_auth *a)
{
    return a != NULL ? atomic_load_explicit(&a->revocations_read, memory_order_relaxed) : 0;
}

size_t tsr_auth_revoked_count(tsr_auth *a)
{
    return a != NULL ? tsr_revset_count(a->revset) : 0;
}

tsr_err tsr_auth_tokens_init(tsr_auth *a)
{
    tsr_err rc;
    size_t entries;

    if (pthread_rwlock_init(&a->keys_rw, NULL) != 0)
        return TSR_ERR_INTERNAL;
    if (pthread_mutex_init(&a->reload_mu, NULL) != 0) {
        pthread_rwlock_destroy(&a->keys_rw);
        return TSR_ERR_INTERNAL;
    }
    if (pthread_mutex_init(&a->sync_mu, NULL) != 0)
        goto fail_sync;
    if (pthread_mutex_init(&a->stop_mu, NULL) != 0)
        goto fail_stop;
    if (pthread_cond_init(&a->stop_cv, NULL) != 0)
        goto fail_cond;
    rc = tsr_revset_new(&a->revset);
    if (rc != TSR_OK)
        goto fail_all;
    entries = a->opts.cache_entries;
    if (entries != SIZE_MAX) {
        rc = tsr_vcache_new(entries, &a->vcache);
        if (rc != TSR_OK) {
            tsr_revset_free(a->revset);
            a->revset = NULL;
            goto fail_all;
        }
    }
    return TSR_OK;
fail_all:
    pthread_cond_destroy(&a->stop_cv);
    pthread_mutex_destroy(&a->stop_mu);
    pthread_mutex_destroy(&a->sync_mu);
    pthread_rwlock_destroy(&a->keys_rw);
    pthread_mutex_destroy(&a->reload_mu);
    return rc;
fail_cond:
    pthread_mutex_destroy(&a->stop_mu);
fail_stop:
    pthread_mutex_destroy(&a->sync_mu);
fail_sync:
    pthread_rwlock_destroy(&a->keys_rw);
    pthread_mutex_destroy(&a->reload_mu);
    return TSR_ERR_INTERNAL;
}

void tsr_auth_tokens_fini(tsr_auth *a)
{
    if (a->sync_running) {
        pthread_mutex_lock(&a->stop_mu);
        a->stop = 1;
        pthread_cond_signal(&a->stop_cv);
        pthread_mutex_unlock(&a->stop_mu);
        pthread_join(a->sync_thread, NULL);
        a->sync_running = 0;
    }
    tsr_keyring_free(a->keys);
    a->keys = NULL;
    free(a->pending);
    a->pending = NULL;
    tsr_wipe(a->cache_key, sizeof a->cache_key);
    tsr_vcache_free(a->vcache);
    tsr_revset_free(a->revset);
    pthread_cond_destroy(&a->stop_cv);
    pthread_mutex_destroy(&a->stop_mu);
    pthread_mutex_destroy(&a->sync_mu);
    pthread_rwlock_destroy(&a->keys_rw);
    pthread_mutex_destroy(&a->reload_mu);
}
