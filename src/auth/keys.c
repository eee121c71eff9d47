/* keys.c: the signing-key lifecycle (next, active, retired) kept in the store,
 * and the in-memory keyring built from it: the verify set, the active signing
 * key and the published JWKS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/auth_int.h"
#include "auth/vcache.h"
#include "common/log.h"

static const char *state_name(tsr_key_state s)
{
    switch (s) {
    case TSR_KEY_STATE_NEXT:
        return "next";
    case TSR_KEY_STATE_ACTIVE:
        return "active";
    case TSR_KEY_STATE_RETIRED:
        return "retired";
    default:
        return "invalid";
    }
}

/* A retired key stays until the last token it signed has expired. */
static int key_live(const tsr_key_record *r, int64_t now)
{
    return r->state != TSR_KEY_STATE_RETIRED || r->publish_until >= now;
}

static tsr_err list_keys(tsr_auth *a, tsr_key_record **out, size_t *n)
{
    tsr_key_record *recs = calloc(TSR_KEYS_MAX, sizeof *recs);
    tsr_err rc;

    *out = NULL;
    *n = 0;
    if (recs == NULL)
        return TSR_ERR_NOMEM;
    rc = tsr_store_key_list(a->store, recs, TSR_KEYS_MAX, n);
    if (rc != TSR_OK) {
        tsr_wipe(recs, TSR_KEYS_MAX * sizeof *recs);
        free(recs);
        return rc;
    }
    *out = recs;
    return TSR_OK;
}

static void free_keys(tsr_key_record *recs)
{
    if (recs == NULL)
        return;
    tsr_wipe(recs, TSR_KEYS_MAX * sizeof *recs);
    free(recs);
}

/* SHA-256 over what the keyring depends on: kid, state and publish_until of
 * every live key. The private JWK never changes for a kid. */
static tsr_err fingerprint(const tsr_key_record *recs, size_t n, int64_t now,
                           uint8_t out[TSR_SHA256_BYTES])
{
    char line[TSR_KID_STORE_MAX + 64];
    char *buf = calloc(TSR_KEYS_MAX, sizeof line);
    size_t used = 0;
    tsr_err rc;

    if (buf == NULL)
        return TSR_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        int m;
        if (!key_live(&recs[i], now))
            continue;
        m = snprintf(line, sizeof line, "%s|%d|%lld\n", recs[i].kid, (int)recs[i].state,
                     (long long)recs[i].publish_until);
        if (m < 0 || (size_t)m >= sizeof line) {
            free(buf);
            return TSR_ERR_INTERNAL;
        }
        memcpy(buf + used, line, (size_t)m);
        used += (size_t)m;
    }
    rc = tsr_sha256(buf, used, out);
    free(buf);
    return rc;
}

void tsr_keyring_free(tsr_keyring *k)
{
    if (k == NULL)
        return;
    tsr_jwks_free(k->verify);
    tsr_jwk_free(k->active);
    free(k->jwks_json);
    free(k);
}

static int has_alg(const tsr_keyring *k, const char *name)
{
    for (size_t i = 0; i < k->nalgs; i++)
        if (strcmp(k->algs[i], name) == 0)
            return 1;
    return 0;
}

static tsr_err build_keyring(const tsr_key_record *recs, size_t n, int64_t now,
                             tsr_keyring **out)
{
    tsr_jwk *jwks[TSR_KEYS_MAX] = {0};
    tsr_jwk *pub[TSR_KEYS_MAX] = {0};
    size_t nj = 0, np = 0;
    tsr_keyring *k = calloc(1, sizeof *k);
    tsr_jwks *pubset = NULL;
    json_t *doc = NULL;
    tsr_err rc = TSR_ERR_NOMEM;

    *out = NULL;
    if (k == NULL)
        return TSR_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const tsr_key_record *r = &recs[i];
        tsr_alg alg = tsr_alg_from_name(r->alg, strlen(r->alg));
        tsr_jwk *j = NULL;
        if (!key_live(r, now))
            continue;
        rc = tsr_jwk_parse(r->jwk, strlen(r->jwk), alg, &j);
        if (rc != TSR_OK || tsr_jwk_alg(j) != alg || strcmp(tsr_jwk_kid(j), r->kid) != 0) {
            tsr_jwk_free(j);
            tsr_log(TSR_LOG_ERROR, "stored signing key is unusable", TSR_F_STR("kid", r->kid),
                    TSR_F_ERR(rc));
            rc = rc != TSR_OK ? rc : TSR_ERR_KEY_INVALID;
            goto out;
        }
        jwks[nj++] = j;
        if (r->state == TSR_KEY_STATE_ACTIVE) {
            k->active = tsr_jwk_ref(j);
            k->activated_at = r->activated_at;
        }
        if (r->state == TSR_KEY_STATE_RETIRED &&
            (k->next_expiry == 0 || r->publish_until < k->next_expiry))
            k->next_expiry = r->publish_until;
        if (tsr_alg_kty(alg) != TSR_KTY_OCT) {
            pub[np++] = j;
            if (!has_alg(k, r->alg))
                k->algs[k->nalgs++] = tsr_alg_name(alg);
        }
    }
    rc = tsr_jwks_new(jwks, nj, &k->verify);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_jwks_new(pub, np, &pubset);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_jwks_to_json(pubset, &doc);
    if (rc != TSR_OK)
        goto out;
    k->jwks_json = json_dumps(doc, JSON_COMPACT);
    if (k->jwks_json == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    k->jwks_len = strlen(k->jwks_json);
    rc = fingerprint(recs, n, now, k->fingerprint);
    if (rc != TSR_OK)
        goto out;
    *out = k;
    k = NULL;
out:
    for (size_t i = 0; i < nj; i++)
        tsr_jwk_free(jwks[i]);
    json_decref(doc);
    tsr_jwks_free(pubset);
    tsr_keyring_free(k);
    return rc;
}

static void swap_keyring(tsr_auth *a, tsr_keyring *fresh)
{
    tsr_keyring *old;

    pthread_rwlock_wrlock(&a->keys_rw);
    old = a->keys;
    a->keys = fresh;
    pthread_rwlock_unlock(&a->keys_rw);
    tsr_keyring_free(old);
}

tsr_err tsr_auth_keys_reload(tsr_auth *a, int64_t now, int force)
{
    tsr_key_record *recs = NULL;
    size_t n = 0;
    uint8_t fp[TSR_SHA256_BYTES];
    tsr_keyring *fresh = NULL;
    tsr_err rc;
    int same = 0;

    /* One reload at a time, list to swap: otherwise a reload that listed the keys
     * before a rotation committed could swap its stale ring in after the rotation's
     * own reload, and new tokens would be signed with the retired key for up to a
     * second. */
    pthread_mutex_lock(&a->reload_mu);
    rc = list_keys(a, &recs, &n);
    if (rc != TSR_OK) {
        pthread_mutex_unlock(&a->reload_mu);
        return rc;
    }
    if (!force) {
        rc = fingerprint(recs, n, now, fp);
        if (rc != TSR_OK)
            goto out;
        pthread_rwlock_rdlock(&a->keys_rw);
        same = a->keys != NULL && memcmp(a->keys->fingerprint, fp, sizeof fp) == 0;
        pthread_rwlock_unlock(&a->keys_rw);
        if (same)
            goto out;
    }
    rc = build_keyring(recs, n, now, &fresh);
    if (rc != TSR_OK)
        goto out;
    if (fresh->active == NULL) {
        tsr_keyring_free(fresh);
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    swap_keyring(a, fresh);
    if (a->vcache != NULL)
        tsr_vcache_clear(a->vcache);
    tsr_log(TSR_LOG_INFO, "signing keys loaded", TSR_F_INT("keys", n));
out:
    pthread_mutex_unlock(&a->reload_mu);
    free_keys(recs);
    return rc;
}

static tsr_err new_record(tsr_alg alg, int64_t now, tsr_key_record *r)
{
    tsr_jwk *j = NULL;
    char *dump = NULL;
    size_t len;
    tsr_err rc;

    memset(r, 0, sizeof *r);
    rc = tsr_jwk_generate(alg, &j);
    if (rc != TSR_OK)
        return rc;
    rc = tsr_jwk_dump(j, 1, &dump);
    if (rc != TSR_OK)
        goto out;
    len = strlen(dump);
    if (len > TSR_KEY_JWK_MAX || strlen(tsr_jwk_kid(j)) > TSR_KID_STORE_MAX) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    memcpy(r->jwk, dump, len + 1);
    snprintf(r->kid, sizeof r->kid, "%s", tsr_jwk_kid(j));
    snprintf(r->alg, sizeof r->alg, "%s", tsr_alg_name(alg));
    r->created_at = now;
out:
    if (dump != NULL)
        tsr_jwk_string_free(dump);
    tsr_jwk_free(j);
    if (rc != TSR_OK)
        tsr_wipe(r, sizeof *r);
    return rc;
}

/* The rotation itself; *active_kid (may be NULL) gets the new active kid. */
static tsr_err rotate(tsr_auth *a, tsr_alg alg, int64_t now, int only_if_none,
                      char kid[TSR_KID_STORE_MAX + 1])
{
    tsr_key_record *recs = NULL, *fresh = NULL;
    const tsr_key_record *active = NULL, *next = NULL;
    tsr_key_record *new_active = NULL, *new_next = NULL;
    size_t n = 0;
    tsr_err rc;

    rc = list_keys(a, &recs, &n);
    if (rc != TSR_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].state == TSR_KEY_STATE_ACTIVE)
            active = &recs[i];
        else if (recs[i].state == TSR_KEY_STATE_NEXT)
            next = &recs[i];
    }
    if (only_if_none && active != NULL) {
        rc = TSR_OK;
        goto out;
    }
    fresh = calloc(2, sizeof *fresh);
    if (fresh == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    new_next = &fresh[1];
    if (next == NULL || active == NULL || strcmp(next->alg, tsr_alg_name(alg)) != 0) {
        new_active = &fresh[0];
        rc = new_record(alg, now, new_active);
        if (rc != TSR_OK)
            goto out;
    }
    rc = new_record(alg, now, new_next);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_store_key_rotate(a->store, active != NULL ? active->kid : "", new_active, new_next,
                              now, now + a->opts.access_ttl + TSR_JWT_DEFAULT_LEEWAY);
    if (rc != TSR_OK)
        goto out;
    if (kid != NULL)
        snprintf(kid, TSR_KID_STORE_MAX + 1, "%s", new_active != NULL ? new_active->kid : next->kid);
    tsr_log_event(TSR_EV_KEY_ROTATED, TSR_F_STR("alg", tsr_alg_name(alg)),
                  TSR_F_STR("kid", new_active != NULL ? new_active->kid : next->kid));
out:
    if (fresh != NULL) {
        tsr_wipe(fresh, 2 * sizeof *fresh);
        free(fresh);
    }
    free_keys(recs);
    return rc;
}

tsr_err tsr_auth_keys_init(tsr_auth *a, int64_t now)
{
    tsr_err rc;

    if (a == NULL)
        return TSR_ERR_INVALID;
    rc = rotate(a, a->opts.alg, now, 1, NULL);
    /* Another instance created the first keys at the same moment: use theirs. */
    if (rc == TSR_ERR_CONFLICT || rc == TSR_ERR_EXISTS)
        rc = TSR_OK;
    if (rc != TSR_OK)
        return rc;
    rc = tsr_auth_keys_reload(a, now, 1);
    if (rc != TSR_OK)
        return rc;
    pthread_rwlock_rdlock(&a->keys_rw);
    if (tsr_jwk_alg(a->keys->active) != a->opts.alg)
        tsr_log(TSR_LOG_WARN, "the active signing key's alg is not tokens.alg: it applies to "
                              "new keys; rotate to switch",
                TSR_F_STR("active_alg", tsr_alg_name(tsr_jwk_alg(a->keys->active))),
                TSR_F_STR("tokens_alg", tsr_alg_name(a->opts.alg)));
    pthread_rwlock_unlock(&a->keys_rw);
    return TSR_OK;
}

tsr_err tsr_auth_keys_rotate(tsr_auth *a, tsr_alg alg, int64_t now, char kid[TSR_KID_STORE_MAX + 1])
{
    tsr_err rc, rc2;

    if (kid != NULL)
        kid[0] = '\0';
    if (a == NULL)
        return TSR_ERR_INVALID;
    if (alg == TSR_ALG_INVALID)
        alg = a->opts.alg;
    if (tsr_alg_name(alg) == NULL)
        return TSR_ERR_INVALID;
    rc = rotate(a, alg, now, 0, kid);
    if (rc == TSR_ERR_EXISTS)
        rc = TSR_ERR_CONFLICT;
    rc2 = tsr_auth_keys_reload(a, now, 0);
    if (rc == TSR_OK && rc2 != TSR_OK)
        tsr_log(TSR_LOG_WARN, "keyring reload after rotation failed", TSR_F_ERR(rc2));
    return rc;
}

tsr_err tsr_auth_keys_list(tsr_auth *a, tsr_key_info *out, size_t max, size_t *n)
{
    tsr_key_record *recs = NULL;
    size_t total = 0;
    tsr_err rc;

    if (n != NULL)
        *n = 0;
    if (a == NULL || out == NULL || n == NULL)
        return TSR_ERR_INVALID;
    rc = list_keys(a, &recs, &total);
    if (rc != TSR_OK)
        return rc;
    for (size_t i = 0; i < total && *n < max; i++) {
        tsr_key_info *k = &out[(*n)++];
        memset(k, 0, sizeof *k);
        snprintf(k->kid, sizeof k->kid, "%s", recs[i].kid);
        snprintf(k->alg, sizeof k->alg, "%s", recs[i].alg);
        k->state = state_name(recs[i].state);
        k->created_at = recs[i].created_at;
        k->activated_at = recs[i].activated_at;
        k->retired_at = recs[i].retired_at;
        k->publish_until = recs[i].publish_until;
    }
    free_keys(recs);
    return TSR_OK;
}

tsr_err tsr_auth_jwks_json(tsr_auth *a, char **out, size_t *len)
{
    tsr_err rc = TSR_ERR_NOT_FOUND;

    if (out != NULL)
        *out = NULL;
    if (len != NULL)
        *len = 0;
    if (a == NULL || out == NULL || len == NULL)
        return TSR_ERR_INVALID;
    pthread_rwlock_rdlock(&a->keys_rw);
    if (a->keys != NULL) {
        *out = malloc(a->keys->jwks_len + 1);
        if (*out == NULL) {
            rc = TSR_ERR_NOMEM;
        } else {
            memcpy(*out, a->keys->jwks_json, a->keys->jwks_len + 1);
            *len = a->keys->jwks_len;
            rc = TSR_OK;
        }
    }
    pthread_rwlock_unlock(&a->keys_rw);
    return rc;
}

size_t tsr_auth_published_algs(tsr_auth *a, const char **out, size_t max)
{
    size_t n = 0;

    if (a == NULL || out == NULL)
        return 0;
    pthread_rwlock_rdlock(&a->keys_rw);
    if (a->keys != NULL)
        for (; n < a->keys->nalgs && n < max; n++)
            out[n] = a->keys->algs[n];
    pthread_rwlock_unlock(&a->keys_rw);
    return n;
}
