/* auth.c: the auth context (settings, store, rate limiter), input validation
 * (usernames, roles), random ids, and the admin API key: generated once, shown
 * once, stored and compared only as SHA-256. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "common/log.h"
#include "jose/jose.h"

tsr_err tsr_auth_opts_from_config(const tsr_config *c, tsr_auth_opts *out)
{
    tsr_err rc = TSR_ERR_INVALID;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (c == NULL)
        goto out;
    out->pw.memory_kib = c->security.argon2_memory_kib;
    out->pw.iterations = c->security.argon2_iterations;
    out->pw.parallelism = c->security.argon2_parallelism;
    out->idle_ttl = c->session.idle_ttl;
    out->absolute_ttl = c->session.absolute_ttl;
    out->max_per_user = c->session.max_per_user;
    out->login_max_failures = c->security.login_max_failures;
    out->login_window = c->security.login_window;
    out->alg = tsr_alg_from_name(c->tokens.alg, strlen(c->tokens.alg));
    if (out->alg == TSR_ALG_INVALID)
        goto out;
    if (snprintf(out->issuer, sizeof out->issuer, "%s", c->tokens.issuer) >=
            (int)sizeof out->issuer ||
        snprintf(out->audience, sizeof out->audience, "%s", c->tokens.audience) >=
            (int)sizeof out->audience)
        goto out;
    out->access_ttl = c->tokens.access_ttl;
    out->refresh_ttl = c->tokens.refresh_ttl;
    out->refresh_idle_ttl = c->tokens.refresh_idle_ttl;
    out->reuse_grace = c->tokens.reuse_grace > 0 ? c->tokens.reuse_grace : -1;
    out->key_rotation = c->tokens.key_rotation;
    out->bearer = c->verify.bearer;
    out->cache_entries = c->verify.cache_entries > 0 ? c->verify.cache_entries : SIZE_MAX;
    rc = tsr_password_params_check(&out->pw);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

/* Zero token fields take the SPEC defaults (so callers that predate token mode,
 * and tests, need not fill them). */
static void opts_defaults(tsr_auth_opts *o)
{
    if (o->alg == TSR_ALG_INVALID)
        o->alg = TSR_ALG_ES256;
    if (o->audience[0] == '\0')
        memcpy(o->audience, "tessera", sizeof "tessera");
    if (o->access_ttl == 0)
        o->access_ttl = 900;
    if (o->refresh_ttl == 0)
        o->refresh_ttl = 30 * 86400;
    if (o->refresh_idle_ttl == 0)
        o->refresh_idle_ttl = 7 * 86400;
    if (o->reuse_grace == 0)
        o->reuse_grace = 10;
    if (o->bearer == TSR_VERIFY_INVALID)
        o->bearer = TSR_VERIFY_REVOCATION_LIST;
    if (o->cache_entries == 0)
        o->cache_entries = 65536;
}

static tsr_err opts_check(const tsr_auth_opts *o)
{
    tsr_err rc = tsr_password_params_check(&o->pw);
    if (rc != TSR_OK)
        return rc;
    if (o->idle_ttl < 1 || o->idle_ttl > TSR_DURATION_MAX || o->absolute_ttl < 1 ||
        o->absolute_ttl > TSR_DURATION_MAX || o->login_max_failures < 1 ||
        o->login_window < 1 || o->login_window > TSR_DURATION_MAX)
        return TSR_ERR_INVALID;
    if (tsr_alg_name(o->alg) == NULL || o->access_ttl < 1 || o->access_ttl > TSR_DURATION_MAX ||
        o->refresh_ttl < 1 || o->refresh_ttl > TSR_DURATION_MAX || o->refresh_idle_ttl < 1 ||
        o->refresh_idle_ttl > TSR_DURATION_MAX || o->reuse_grace < -1 ||
        o->reuse_grace > TSR_DURATION_MAX || o->key_rotation < 0 ||
        o->key_rotation > TSR_DURATION_MAX || memchr(o->issuer, '\0', sizeof o->issuer) == NULL ||
        memchr(o->audience, '\0', sizeof o->audience) == NULL)
        return TSR_ERR_INVALID;
    return TSR_OK;
}

tsr_err tsr_auth_new(tsr_store *store, const tsr_auth_opts *opts, tsr_auth **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_auth *a = NULL;
    tsr_auth_opts o;
    int mu_ok = 0, tokens_ok = 0;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (store == NULL || opts == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    o = *opts;
    opts_defaults(&o);
    rc = opts_check(&o);
    if (rc != TSR_OK)
        goto out;
    a = calloc(1, sizeof *a);
    if (a == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    a->store = store;
    a->opts = o;
    rc = tsr_rand(a->salt, sizeof a->salt);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_rate_new(TSR_RATE_ENTRIES_MAX, &a->rate);
    if (rc != TSR_OK)
        goto out;
    if (pthread_mutex_init(&a->admin_mu, NULL) != 0) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    mu_ok = 1;
    rc = tsr_auth_tokens_init(a);
    if (rc != TSR_OK)
        goto out;
    tokens_ok = 1;
    /* Hash the dummy password now, so the first unknown-user login costs what
     * any other does. */
    tsr_password_dummy_verify(&a->opts.pw, "", 0);
    *out = a;
    a = NULL;
    rc = TSR_OK;
out:
    if (a != NULL) {
        if (tokens_ok)
            tsr_auth_tokens_fini(a);
        if (mu_ok)
            pthread_mutex_destroy(&a->admin_mu);
        tsr_rate_free(a->rate);
        tsr_wipe(a, sizeof *a);
        free(a);
    }
    return rc;
}

void tsr_auth_free(tsr_auth *a)
{
    if (a == NULL)
        return;
    tsr_auth_tokens_fini(a);
    tsr_rate_free(a->rate);
    pthread_mutex_destroy(&a->admin_mu);
    tsr_wipe(a, sizeof *a);
    free(a);
}

tsr_store *tsr_auth_get_store(const tsr_auth *a)
{
    return a != NULL ? a->store : NULL;
}

void tsr_auth_cred_wipe(tsr_auth_cred *c)
{
    if (c != NULL)
        tsr_wipe(c, sizeof *c);
}

/* ---- validation ---- */

tsr_err tsr_auth_username_check(const char *name, size_t n)
{
    if (name == NULL || n < 1 || n > TSR_USERNAME_MAX)
        return TSR_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '@' || c == '+' || c == '-';
        if (!ok)
            return TSR_ERR_INVALID;
    }
    return TSR_OK;
}

static int role_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

int tsr_auth_roles_has(const char *roles, const char *role, size_t rolelen)
{
    const char *p = roles;

    if (roles == NULL || role == NULL || rolelen == 0)
        return 0;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        if (n == rolelen && memcmp(p, role, n) == 0)
            return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Nonzero when the name at p (n bytes) already appears in roles before p. */
static int dup_before(const char *roles, const char *p, size_t n)
{
    const char *q = roles;
    while (q < p) {
        size_t m = strcspn(q, ",");
        if (m == n && memcmp(q, p, n) == 0)
            return 1;
        q += m + 1;
    }
    return 0;
}

tsr_err tsr_auth_roles_check(const char *roles)
{
    const char *p = roles;

    if (roles == NULL)
        return TSR_ERR_INVALID;
    if (strlen(roles) > TSR_ROLES_MAX)
        return TSR_ERR_INVALID;
    if (*p == '\0')
        return TSR_OK;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (n < 1 || n > TSR_ROLE_MAX)
            return TSR_ERR_INVALID;
        for (size_t i = 0; i < n; i++) {
            if (!role_char((unsigned char)p[i]))
                return TSR_ERR_INVALID;
        }
        /* Distinct: the same name must not appear earlier in the list. */
        if (dup_before(roles, p, n))
            return TSR_ERR_INVALID;
        p += n;
        if (*p == '\0')
            return TSR_OK;
        p++; /* the comma; a trailing one leaves an empty name, refused above */
    }
}

tsr_err tsr_auth_rand_id(const char *prefix, char out[TSR_ID_MAX + 1])
{
    tsr_err rc = TSR_ERR_INTERNAL;
    uint8_t rnd[16];
    size_t plen, n = 0;

    memset(out, 0, TSR_ID_MAX + 1);
    plen = strlen(prefix);
    if (plen + 23 > TSR_ID_MAX + 1)
        return TSR_ERR_INTERNAL;
    rc = tsr_rand(rnd, sizeof rnd);
    if (rc != TSR_OK)
        goto out;
    memcpy(out, prefix, plen);
    rc = tsr_b64url_encode(rnd, sizeof rnd, out + plen, TSR_ID_MAX + 1 - plen, &n);
    if (rc != TSR_OK || n != 22) {
        memset(out, 0, TSR_ID_MAX + 1);
        rc = rc != TSR_OK ? rc : TSR_ERR_INTERNAL;
        goto out;
    }
    rc = TSR_OK;
out:
    tsr_wipe(rnd, sizeof rnd);
    return rc;
}

void tsr_auth_copy_printable(char *dst, size_t cap, const char *src)
{
    size_t i = 0;

    if (dst == NULL || cap == 0)
        return;
    if (src != NULL) {
        for (; src[i] != '\0' && i + 1 < cap; i++) {
            unsigned char c = (unsigned char)src[i];
            dst[i] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
        }
    }
    memset(dst + i, 0, cap - i);
}

/* ---- admin key ---- */

static int is_hex64(const char *s)
{
    if (strlen(s) != TSR_SHA256_HEX_CHARS)
        return 0;
    for (size_t i = 0; i < TSR_SHA256_HEX_CHARS; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

tsr_err tsr_auth_admin_key_init(tsr_auth *a, const char *configured,
                                char generated[TSR_ADMIN_KEY_CHARS + 1], int *was_generated)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char hex[TSR_SHA256_HEX_CHARS + 1];
    char stored[TSR_META_MAX + 1];
    char key[TSR_ADMIN_KEY_CHARS + 1];
    uint8_t rnd[32];
    size_t n = 0;

    memset(hex, 0, sizeof hex);
    memset(stored, 0, sizeof stored);
    memset(key, 0, sizeof key);
    memset(rnd, 0, sizeof rnd);
    if (generated != NULL)
        memset(generated, 0, TSR_ADMIN_KEY_CHARS + 1);
    if (was_generated != NULL)
        *was_generated = 0;
    if (a == NULL || generated == NULL || was_generated == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }

    if (configured != NULL && configured[0] != '\0') {
        size_t klen = strlen(configured);
        if (klen < TSR_ADMIN_KEY_MIN_BYTES || klen > TSR_ADMIN_KEY_MAX_BYTES) {
            rc = TSR_ERR_WEAK_KEY;
            goto out;
        }
        rc = tsr_sha256_hex(configured, klen, hex);
        if (rc != TSR_OK)
            goto out;
        rc = tsr_store_meta_get(a->store, TSR_ADMIN_KEY_META, stored, sizeof stored);
        if (rc != TSR_OK && rc != TSR_ERR_NOT_FOUND)
            goto out;
        if (rc == TSR_ERR_NOT_FOUND || strcmp(stored, hex) != 0) {
            rc = tsr_store_meta_set(a->store, TSR_ADMIN_KEY_META, hex);
            if (rc != TSR_OK)
                goto out;
            tsr_log_event0(TSR_EV_ADMIN_KEY_SET);
        }
    } else {
        rc = tsr_store_meta_get(a->store, TSR_ADMIN_KEY_META, stored, sizeof stored);
        if (rc == TSR_OK) {
            if (!is_hex64(stored)) {
                tsr_log_msg(TSR_LOG_ERROR, "stored admin key hash is malformed");
                rc = TSR_ERR_INTERNAL;
                goto out;
            }
            memcpy(hex, stored, sizeof hex);
        } else if (rc == TSR_ERR_NOT_FOUND) {
            rc = tsr_rand(rnd, sizeof rnd);
            if (rc != TSR_OK)
                goto out;
            memcpy(key, TSR_ADMIN_KEY_PREFIX, sizeof TSR_ADMIN_KEY_PREFIX - 1);
            rc = tsr_b64url_encode(rnd, sizeof rnd, key + sizeof TSR_ADMIN_KEY_PREFIX - 1,
                                   sizeof key - (sizeof TSR_ADMIN_KEY_PREFIX - 1), &n);
            if (rc != TSR_OK)
                goto out;
            rc = tsr_sha256_hex(key, strlen(key), hex);
            if (rc != TSR_OK)
                goto out;
            /* Insert, never overwrite: of several instances starting on one new
             * store at once, only the first prints a key; the others use its hash. */
            rc = tsr_store_meta_insert(a->store, TSR_ADMIN_KEY_META, hex);
            if (rc == TSR_ERR_EXISTS) {
                rc = tsr_store_meta_get(a->store, TSR_ADMIN_KEY_META, stored, sizeof stored);
                if (rc != TSR_OK)
                    goto out;
                if (!is_hex64(stored)) {
                    rc = TSR_ERR_INTERNAL;
                    goto out;
                }
                memcpy(hex, stored, sizeof hex);
            } else if (rc != TSR_OK) {
                goto out;
            } else {
                memcpy(generated, key, sizeof key);
                *was_generated = 1;
                tsr_log_event0(TSR_EV_ADMIN_KEY_GENERATED);
            }
        } else {
            goto out;
        }
    }
    pthread_mutex_lock(&a->admin_mu);
    memcpy(a->admin_hash, hex, sizeof hex);
    pthread_mutex_unlock(&a->admin_mu);
    rc = TSR_OK;
out:
    tsr_wipe(key, sizeof key);
    tsr_wipe(rnd, sizeof rnd);
    tsr_wipe(stored, sizeof stored);
    tsr_wipe(hex, sizeof hex);
    return rc;
}

tsr_err tsr_auth_admin_key_verify(tsr_auth *a, const char *key, size_t n)
{
    tsr_err rc = TSR_ERR_UNAUTHENTICATED;
    char want[TSR_SHA256_HEX_CHARS + 1];
    char got[TSR_SHA256_HEX_CHARS + 1];

    memset(want, 0, sizeof want);
    memset(got, 0, sizeof got);
    if (a == NULL || key == NULL || n == 0 || n > TSR_ADMIN_KEY_MAX_BYTES)
        goto out;
    pthread_mutex_lock(&a->admin_mu);
    memcpy(want, a->admin_hash, sizeof want);
    pthread_mutex_unlock(&a->admin_mu);
    if (want[0] == '\0')
        goto out;
    if (tsr_sha256_hex(key, n, got) != TSR_OK)
        goto out;
    if (!tsr_ct_eq(want, got, TSR_SHA256_HEX_CHARS))
        goto out;
    rc = TSR_OK;
out:
    tsr_wipe(want, sizeof want);
    tsr_wipe(got, sizeof got);
    return rc;
}
