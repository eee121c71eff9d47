/* test_jwt_threads.c: one shared key set verified from several threads at once;
 * every thread sees the same verdicts as a single thread does. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "jose/jose.h"

#define THREADS 4
#define ROUNDS 200
#define NOW 1700000000

static const tsr_alg algs[] = {TSR_ALG_HS256, TSR_ALG_RS256, TSR_ALG_PS256,
                               TSR_ALG_ES256, TSR_ALG_EDDSA};
#define NALGS (sizeof algs / sizeof algs[0])

static tsr_jwks *set;
static char *good[NALGS], *bad[NALGS];
static size_t good_len[NALGS], bad_len[NALGS];

static void *worker(void *arg)
{
    long *errors = arg;
    tsr_jwt_policy pol = tsr_jwt_policy_access("https://auth.example.com", "tessera");
    tsr_jwt *jwt = malloc(sizeof *jwt);
    if (jwt == NULL) {
        (*errors)++;
        return NULL;
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < NALGS; i++) {
            if (tsr_jwt_verify(set, &pol, NOW, good[i], good_len[i], jwt) != TSR_OK ||
                jwt->sub == NULL || strcmp(jwt->sub, "usr_1") != 0)
                (*errors)++;
            if (tsr_jwt_verify(set, &pol, NOW, bad[i], bad_len[i], jwt) != TSR_ERR_TOKEN_SIGNATURE)
                (*errors)++;
        }
    }
    free(jwt);
    tsr_crypto_thread_cleanup();
    return NULL;
}

static void verifies_concurrently_with_shared_keys(void)
{
    tsr_jwk *keys[NALGS] = {0};
    json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "iss", "https://auth.example.com",
                               "sub", "usr_1", "aud", "tessera", "exp", (json_int_t)NOW + 900,
                               "iat", (json_int_t)NOW, "sid", "ses_1", "jti", "j1");
    CHECK(claims != NULL);
    for (size_t i = 0; i < NALGS; i++) {
        CHECK(tsr_jwk_generate(algs[i], &keys[i]) == TSR_OK);
        CHECK(tsr_jwt_sign(keys[i], "at+jwt", claims, &good[i], &good_len[i]) == TSR_OK);
        bad[i] = malloc(good_len[i] + 1);
        CHECK(bad[i] != NULL);
        memcpy(bad[i], good[i], good_len[i] + 1);
        bad_len[i] = good_len[i];
        /* Change a signature character to another one that keeps the length canonical. */
        size_t dot = (size_t)(strrchr(bad[i], '.') - bad[i]);
        bad[i][dot + 1] = bad[i][dot + 1] == 'A' ? 'B' : 'A';
    }
    CHECK(tsr_jwks_new(keys, NALGS, &set) == TSR_OK);

    pthread_t th[THREADS];
    long errors[THREADS] = {0};
    for (int t = 0; t < THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, worker, &errors[t]) == 0);
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(th[t], NULL) == 0);
        CHECKF(errors[t] == 0, "thread %d: %ld wrong verdicts", t, errors[t]);
    }
    tsr_jwks_free(set);
    for (size_t i = 0; i < NALGS; i++) {
        tsr_jwk_free(keys[i]);
        free(good[i]);
        free(bad[i]);
    }
    json_decref(claims);
}

int main(void)
{
    TSR_RUN(verifies_concurrently_with_shared_keys);
    return tsr_test_summary();
}
