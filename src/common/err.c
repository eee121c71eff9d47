/* err.c: the table from tsr_err to its text and its public code. */
#include "common/err.h"

#include <stddef.h>

static const struct {
    const char *text;
    const char *code;
} err_table[TSR_ERR__COUNT] = {
    [TSR_OK] = {"ok", "ok"},
    [TSR_ERR_INTERNAL] = {"internal error", "internal"},
    [TSR_ERR_NOMEM] = {"out of memory", "internal"},
    [TSR_ERR_INVALID] = {"invalid input", "invalid_request"},
    [TSR_ERR_TOO_LARGE] = {"input too large", "too_large"},
    [TSR_ERR_BUFFER] = {"output buffer too small", "internal"},
    [TSR_ERR_UNSUPPORTED] = {"unsupported", "invalid_request"},
    [TSR_ERR_IO] = {"i/o error", "internal"},
    [TSR_ERR_NOT_FOUND] = {"not found", "not_found"},
    [TSR_ERR_EXISTS] = {"already exists", "conflict"},
    [TSR_ERR_UNAVAILABLE] = {"dependency unavailable", "unavailable"},
    [TSR_ERR_WEAK_KEY] = {"key too weak", "invalid_request"},
    [TSR_ERR_KEY_INVALID] = {"key failed validation", "invalid_request"},
    [TSR_ERR_TOKEN_MALFORMED] = {"token malformed", "invalid_token"},
    [TSR_ERR_TOKEN_TOO_LARGE] = {"token too large", "invalid_token"},
    [TSR_ERR_TOKEN_JSON] = {"token JSON invalid", "invalid_token"},
    [TSR_ERR_TOKEN_ALG] = {"token algorithm not allowed", "invalid_token"},
    [TSR_ERR_TOKEN_KID] = {"token key id unknown", "invalid_token"},
    [TSR_ERR_TOKEN_CRIT] = {"token has unknown critical header", "invalid_token"},
    [TSR_ERR_TOKEN_TYP] = {"token type not accepted", "invalid_token"},
    [TSR_ERR_TOKEN_SIGNATURE] = {"token signature invalid", "invalid_token"},
    [TSR_ERR_TOKEN_EXPIRED] = {"token expired", "invalid_token"},
    [TSR_ERR_TOKEN_NOT_YET] = {"token not yet valid", "invalid_token"},
    [TSR_ERR_TOKEN_ISSUER] = {"token issuer not accepted", "invalid_token"},
    [TSR_ERR_TOKEN_AUDIENCE] = {"token audience not accepted", "invalid_token"},
    [TSR_ERR_TOKEN_CLAIMS] = {"token claims invalid", "invalid_token"},
    [TSR_ERR_TOKEN_REVOKED] = {"token revoked", "invalid_token"},
    [TSR_ERR_WEAK_PASSWORD] = {"password too short or too long", "weak_password"},
    [TSR_ERR_USERNAME_TAKEN] = {"username already taken", "username_taken"},
    [TSR_ERR_INVALID_CREDENTIALS] = {"invalid username or password", "invalid_credentials"},
    [TSR_ERR_UNAUTHENTICATED] = {"not authenticated", "unauthenticated"},
    [TSR_ERR_RATE_LIMITED] = {"too many attempts", "rate_limited"},
    [TSR_ERR_CSRF] = {"CSRF check failed", "csrf"},
    [TSR_ERR_SIGNUP_CLOSED] = {"signup is closed", "signup_closed"},
    [TSR_ERR_FORBIDDEN] = {"forbidden", "forbidden"},
    [TSR_ERR_INVALID_GRANT] = {"invalid grant", "invalid_grant"},
    [TSR_ERR_UNSUPPORTED_GRANT] = {"unsupported grant type", "unsupported_grant_type"},
    [TSR_ERR_CONFLICT] = {"changed concurrently", "conflict"},
};

const char *tsr_err_text(tsr_err e)
{
    if ((unsigned)e >= TSR_ERR__COUNT || err_table[e].text == NULL)
        return "unknown error";
    return err_table[e].text;
}

const char *tsr_err_code(tsr_err e)
{
    if ((unsigned)e >= TSR_ERR__COUNT || err_table[e].code == NULL)
        return "internal";
    return err_table[e].code;
}

int tsr_err_is_token(tsr_err e)
{
    return e >= TSR_ERR_TOKEN_MALFORMED && e <= TSR_ERR_TOKEN_REVOKED;
}
