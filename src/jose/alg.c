/* alg.c: JWS algorithm names (RFC 7518 section 3.1, RFC 8037). No "none". */
#include <string.h>

#include "jose/jose.h"

static const char *const alg_names[TSR_ALG__COUNT] = {
    [TSR_ALG_HS256] = "HS256", [TSR_ALG_HS384] = "HS384", [TSR_ALG_HS512] = "HS512",
    [TSR_ALG_RS256] = "RS256", [TSR_ALG_RS384] = "RS384", [TSR_ALG_RS512] = "RS512",
    [TSR_ALG_PS256] = "PS256", [TSR_ALG_PS384] = "PS384", [TSR_ALG_PS512] = "PS512",
    [TSR_ALG_ES256] = "ES256", [TSR_ALG_ES384] = "ES384", [TSR_ALG_ES512] = "ES512",
    [TSR_ALG_EDDSA] = "EdDSA",
};

const char *tsr_alg_name(tsr_alg alg)
{
    return (unsigned)alg < TSR_ALG__COUNT ? alg_names[alg] : NULL;
}

tsr_alg tsr_alg_from_name(const char *s, size_t n)
{
    if (s == NULL)
        return TSR_ALG_INVALID;
    for (int a = TSR_ALG_INVALID + 1; a < TSR_ALG__COUNT; a++) {
        if (strlen(alg_names[a]) == n && memcmp(alg_names[a], s, n) == 0)
            return (tsr_alg)a;
    }
    return TSR_ALG_INVALID;
}
