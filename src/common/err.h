/* err.h: the one error enum of tessera, its text and its problem+json code.
 *
 * Every fallible function returns tsr_err; TSR_OK is zero. Token verification
 * failures have their own values so that logs and WWW-Authenticate can say why
 * a token was refused; all of them map to the public code "invalid_token". */
#ifndef TSR_COMMON_ERR_H
#define TSR_COMMON_ERR_H

#define TSR_MUST_CHECK __attribute__((warn_unused_result))

typedef enum tsr_err {
    TSR_OK = 0,
    TSR_ERR_INTERNAL,      /* a bug or a library failure we cannot explain */
    TSR_ERR_NOMEM,         /* allocation failed */
    TSR_ERR_INVALID,       /* bad argument or malformed input */
    TSR_ERR_TOO_LARGE,     /* input over its cap */
    TSR_ERR_BUFFER,        /* caller's output buffer too small */
    TSR_ERR_UNSUPPORTED,   /* well-formed but not something we do (alg, kty, curve) */
    TSR_ERR_IO,            /* file or socket error */
    TSR_ERR_NOT_FOUND,     /* no such object */
    TSR_ERR_EXISTS,        /* object already exists */
    TSR_ERR_UNAVAILABLE,   /* a dependency is down: callers deny */
    TSR_ERR_WEAK_KEY,      /* key below the minimum strength */
    /* Key material. */
    TSR_ERR_KEY_INVALID,   /* key parsed but fails validation (off-curve point, mismatch) */
    /* Token verification: why a token was refused. */
    TSR_ERR_TOKEN_MALFORMED, /* not three strict base64url parts */
    TSR_ERR_TOKEN_TOO_LARGE, /* over TSR_JWT_MAX_BYTES */
    TSR_ERR_TOKEN_JSON,      /* header or claims not one strict JSON object (duplicates too) */
    TSR_ERR_TOKEN_ALG,       /* alg missing, "none", unknown, or not the key's alg */
    TSR_ERR_TOKEN_KID,       /* kid missing or not in our key set */
    TSR_ERR_TOKEN_CRIT,      /* crit header names an extension we do not understand */
    TSR_ERR_TOKEN_TYP,       /* typ is not the expected one */
    TSR_ERR_TOKEN_SIGNATURE, /* signature does not verify */
    TSR_ERR_TOKEN_EXPIRED,   /* exp in the past beyond leeway */
    TSR_ERR_TOKEN_NOT_YET,   /* nbf or iat in the future beyond leeway */
    TSR_ERR_TOKEN_ISSUER,    /* iss missing or not ours */
    TSR_ERR_TOKEN_AUDIENCE,  /* aud missing or does not contain ours */
    TSR_ERR_TOKEN_CLAIMS,    /* a registered claim has the wrong type or is missing */
    TSR_ERR_TOKEN_REVOKED,   /* its session (sid) or the token itself (jti) was revoked */
    /* Accounts and sessions (SPEC section 4 codes). */
    TSR_ERR_WEAK_PASSWORD,       /* password outside 8..256 bytes: "weak_password" */
    TSR_ERR_USERNAME_TAKEN,      /* username already registered: "username_taken" */
    TSR_ERR_INVALID_CREDENTIALS, /* unknown user, wrong password or disabled user, alike */
    TSR_ERR_UNAUTHENTICATED,     /* no, unknown, expired or revoked session or key */
    TSR_ERR_RATE_LIMITED,        /* too many failures: retry later */
    TSR_ERR_CSRF,                /* missing or wrong CSRF token, or a foreign origin */
    TSR_ERR_SIGNUP_CLOSED,       /* signup.open is false */
    TSR_ERR_FORBIDDEN,           /* authenticated but not allowed (missing role) */
    /* OAuth 2.0 token endpoint (RFC 6749 section 5.2 "error" values). */
    TSR_ERR_INVALID_GRANT,       /* bad credentials, unknown, spent or reused refresh token */
    TSR_ERR_UNSUPPORTED_GRANT,   /* grant_type we do not do: "unsupported_grant_type" */
    TSR_ERR_CONFLICT,            /* a compare-and-swap lost a race: re-read and decide again */
    TSR_ERR__COUNT
} tsr_err;

/* Short English text for logs; never contains input data. */
const char *tsr_err_text(tsr_err e);

/* The stable problem+json "code" of SPEC section 4 for this error. */
const char *tsr_err_code(tsr_err e);

/* Nonzero for the TSR_ERR_TOKEN_* family. */
int tsr_err_is_token(tsr_err e);

#endif
