/* jwks.c: an immutable, refcounted set of keys looked up by kid.
 *
 * Sets are small (a few active and retired keys), so lookup is a linear scan of
 * kid lengths and bytes; kids are public, so a plain compare is fine. */
#include <stdlib.h>
#include <string.h>

#include "jose/jose_int.h"

struct tsr_jwks {
    atomic_int refs;
    size_t n;
    tsr_jwk *keys[];
};

tsr_err tsr_jwks_new(tsr_jwk *const *keys, size_t n, tsr_jwks **out)
{
    tsr_jwks *set;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if ((keys == NULL && n > 0) || n > TSR_JWKS_KEYS_MAX)
        return TSR_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        if (keys[i] == NULL)
            return TSR_ERR_INVALID;
        for (size_t j = 0; j < i; j++) {
            if (keys[i]->kid_len == keys[j]->kid_len &&
                memcmp(keys[i]->kid, keys[j]->kid, keys[i]->kid_len) == 0)
                return TSR_ERR_EXISTS;
        }
    }
    set = calloc(1, sizeof *set + n * sizeof set->keys[0]);
    if (set == NULL)
        return TSR_ERR_NOMEM;
    atomic_init(&set->refs, 1);
    set->n = n;
    for (size_t i = 0; i < n; i++)
        set->keys[i] = tsr_jwk_ref(keys[i]);
    *out = set;
    return TSR_OK;
}

tsr_jwks *tsr_jwks_ref(tsr_jwks *set)
{
    if (set != NULL)
        atomic_fetch_add(&set->refs, 1);
    return set;
}

void tsr_jwks_free(tsr_jwks *set)
{
    if (set == NULL || atomic_fetch_sub(&set->refs, 1) != 1)
        return;
    for (size_t i = 0; i < set->n; i++)
        tsr_jwk_free(set->keys[i]);
    free(set);
}

const tsr_jwk *tsr_jwks_find(const tsr_jwks *set, const char *kid, size_t kidlen)
{
    if (set == NULL || kid == NULL)
        return NULL;
    for (size_t i = 0; i < set->n; i++) {
        const tsr_jwk *k = set->keys[i];
        if (k->kid_len == kidlen && memcmp(k->kid, kid, kidlen) == 0)
            return k;
    }
    return NULL;
}

size_t tsr_jwks_count(const tsr_jwks *set)
{
    return set ? set->n : 0;
}

const tsr_jwk *tsr_jwks_get(const tsr_jwks *set, size_t i)
{
    return (set != NULL && i < set->n) ? set->keys[i] : NULL;
}

tsr_err tsr_jwks_parse(const char *json, size_t len, tsr_jwks **out)
{
    tsr_err rc = TSR_ERR_INVALID;
    json_t *doc = NULL, *arr;
    tsr_jwk *keys[TSR_JWKS_KEYS_MAX];
    size_t n = 0, i;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (len > TSR_JWK_MAX_BYTES)
        return TSR_ERR_TOO_LARGE;
    doc = tsr_jose_parse_object(json, len);
    if (doc == NULL)
        goto out;
    arr = json_object_get(doc, "keys");
    if (!json_is_array(arr))
        goto out;
    if (json_array_size(arr) > TSR_JWKS_KEYS_MAX) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        tsr_jwk *k = NULL;
        tsr_err krc = tsr_jwk_from_json(json_array_get(arr, i), TSR_ALG_INVALID, &k);
        if (krc == TSR_ERR_UNSUPPORTED)
            continue; /* another kty, curve, alg or use: not ours to judge */
        if (krc != TSR_OK) {
            rc = krc;
            goto out;
        }
        keys[n++] = k;
    }
    if (n == 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = tsr_jwks_new(keys, n, out);
out:
    for (i = 0; i < n; i++)
        tsr_jwk_free(keys[i]);
    json_decref(doc);
    return rc;
}

tsr_err tsr_jwks_to_json(const tsr_jwks *set, json_t **out)
{
    tsr_err rc = TSR_ERR_NOMEM;
    json_t *doc = NULL, *arr = NULL;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (set == NULL)
        return TSR_ERR_INVALID;
    doc = json_object();
    arr = json_array();
    if (doc == NULL || arr == NULL)
        goto out;
    for (size_t i = 0; i < set->n; i++) {
        json_t *k = NULL;
        if (tsr_key_kty(set->keys[i]->key) == TSR_KTY_OCT)
            continue; /* never publish a symmetric key */
        rc = tsr_jwk_to_json(set->keys[i], 0, &k);
        if (rc != TSR_OK)
            goto out;
        if (json_array_append_new(arr, k) != 0) {
            rc = TSR_ERR_NOMEM;
            goto out;
        }
    }
    if (json_object_set_new(doc, "keys", arr) != 0) {
        arr = NULL;
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    arr = NULL;
    *out = doc;
    doc = NULL;
    rc = TSR_OK;
out:
    json_decref(arr);
    json_decref(doc);
    return rc;
}
