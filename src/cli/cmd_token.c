/* cmd_token.c: `tessera token sign|verify|decode`, offline. sign fills in iat, exp
 * and jti when the claims lack them; verify applies the access-token policy
 * (typ at+jwt, exp and kid required, 30 s leeway) against a key file, a JWKS
 * file or a JWKS fetched from an http(s) URL, and exits 0 only for a valid
 * token; decode prints a token's parts without checking anything. Tokens are
 * bearer credentials: they are printed only on stdout, and never in errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "jose/jose.h"

#define TSR_CLI_DEFAULT_TTL 900        /* seconds, SPEC tokens.access_ttl */
#define TSR_CLI_EXP_IN_MAX 315360000   /* ten years */
#define TSR_CLI_NOW_MAX 253402300799LL /* 9999-12-31T23:59:59Z */
#define TSR_CLI_JTI_BYTES 16

static const char token_usage[] =
    "usage: tessera token <subcommand> [options]\n"
    "\n"
    "subcommands:\n"
    "  sign     sign a JWT with a private key\n"
    "  verify   verify a JWT against a JWKS or a key and print its claims\n"
    "  decode   print a JWT's header and claims WITHOUT verifying it\n"
    "\n"
    "Run 'tessera token <subcommand> --help' for details.\n";

static const char sign_usage[] =
    "usage: tessera token sign --key FILE [--alg ALG] [--typ TYP]\n"
    "                          [--claims JSON | --claims-file FILE] [--exp-in SECONDS]\n"
    "                          [--config FILE]\n"
    "\n"
    "Signs the claims (a JSON object; read from stdin when neither --claims nor\n"
    "--claims-file is given) and prints the compact JWT. Missing iat is set to now,\n"
    "missing exp to now + 900 s (or --exp-in), missing jti to 16 random bytes.\n"
    "\n"
    "  --key FILE          private key: a JWK, or a PKCS#8 PEM (then --alg is required)\n"
    "  --alg ALG           the key's algorithm (checked against a JWK's own alg)\n"
    "  --typ TYP           header typ (default at+jwt)\n"
    "  --claims JSON       the claims as a JSON object\n"
    "  --claims-file FILE  read the claims from FILE ('-' for stdin)\n"
    "  --exp-in SECONDS    lifetime when the claims have no exp (default 900)\n"
    "  --config FILE       settings file: checked, but signing uses no setting\n";

static const char verify_usage[] =
    "usage: tessera token verify (--jwks FILE|URL | --key FILE) [--alg ALG] [--iss ISS]\n"
    "                            [--aud AUD] [--typ TYP | --any-typ] [--now UNIX]\n"
    "                            [--config FILE] TOKEN\n"
    "\n"
    "Verifies TOKEN ('-' reads it from stdin) and prints its claims. Exits 0 only for\n"
    "a valid token; otherwise prints 'invalid token: <reason>' and exits 1.\n"
    "Checks: signature with the key the token's kid names, alg pinned by that key,\n"
    "typ at+jwt, exp required, exp/nbf/iat with 30 s leeway, iss and aud when given.\n"
    "\n"
    "  --jwks FILE    key set {\"keys\":[...]} or a single public JWK (kid required)\n"
    "  --jwks URL     the same fetched over http:// or https:// (e.g. a server's\n"
    "                 /.well-known/jwks.json): TLS verified, at most 3 redirects and\n"
    "                 64 KiB, 10 s, status 200 only; symmetric keys refused\n"
    "  --key FILE     one key: JWK or PEM (a kid-less token is accepted)\n"
    "  --alg ALG      algorithm of a PEM key (required for PEM)\n"
    "  --iss ISS      required issuer (exact match)\n"
    "  --aud AUD      required audience (a member of aud)\n"
    "  --typ TYP      required typ instead of at+jwt\n"
    "  --any-typ      do not check typ\n"
    "  --now UNIX     verify as of this time (Unix seconds) instead of the clock\n"
    "  --config FILE  settings file: checked, but verifying uses no setting\n";

static const char decode_usage[] =
    "usage: tessera token decode [--config FILE] TOKEN\n"
    "\n"
    "Prints {\"header\":...,\"claims\":...} of TOKEN ('-' reads stdin) WITHOUT\n"
    "verifying its signature or claims. Never trust its output.\n"
    "\n"
    "  --config FILE  settings file: checked, but decoding uses no setting\n";

/* The token argument, or stdin for "-" (trimmed of surrounding blanks). *buf holds
 * what was read (wipe with tsr_cli_buf_free). */
static tsr_err get_token(const char *arg, char **buf, size_t *buflen, const char **tok,
                         size_t *toklen)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    size_t s = 0, e = 0;

    *buf = NULL;
    *buflen = 0;
    *tok = NULL;
    *toklen = 0;
    if (strcmp(arg, "-") != 0) {
        *tok = arg;
        *toklen = strlen(arg);
        rc = TSR_OK;
        goto out;
    }
    rc = tsr_cli_read_file("-", TSR_CLI_FILE_MAX, 0, buf, buflen);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot read the token from stdin: %s", tsr_err_text(rc));
        goto out;
    }
    e = *buflen;
    while (s < e && strchr(" \t\r\n", (*buf)[s]) != NULL)
        s++;
    while (e > s && strchr(" \t\r\n", (*buf)[e - 1]) != NULL)
        e--;
    *tok = *buf + s;
    *toklen = e - s;
    rc = TSR_OK;
out:
    return rc;
}

/* Reads the claims object from --claims, --claims-file or stdin. */
static tsr_err load_claims(const char *inline_json, const char *file, json_t **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char *buf = NULL;
    size_t len = 0;
    const char *text = inline_json;
    const char *from = "--claims";
    json_error_t jerr;
    json_t *j = NULL;

    *out = NULL;
    if (text == NULL) {
        from = file != NULL && strcmp(file, "-") != 0 ? file : "stdin";
        rc = tsr_cli_read_file(file != NULL ? file : "-", TSR_CLI_FILE_MAX, 0, &buf, &len);
        if (rc != TSR_OK) {
            tsr_cli_error("cannot read the claims from %s: %s", from, tsr_err_text(rc));
            goto out;
        }
        text = buf;
    } else {
        len = strlen(text);
    }
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL || !json_is_object(j)) {
        tsr_cli_error("the claims from %s are not a JSON object (line %d, column %d)", from,
                      j == NULL ? jerr.line : 0, j == NULL ? jerr.column : 0);
        rc = TSR_ERR_INVALID;
        goto out;
    }
    *out = j;
    j = NULL;
    rc = TSR_OK;
out:
    json_decref(j);
    tsr_cli_buf_free(buf, len);
    return rc;
}

/* Sets iat, exp and jti when absent. */
static tsr_err complete_claims(json_t *claims, int64_t now, int64_t exp_in)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    uint8_t rnd[TSR_CLI_JTI_BYTES];
    char jti[TSR_CLI_JTI_BYTES * 2];
    size_t jti_len = 0;

    if (json_object_get(claims, "iat") == NULL &&
        json_object_set_new(claims, "iat", json_integer((json_int_t)now)) != 0) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    if (json_object_get(claims, "exp") == NULL &&
        json_object_set_new(claims, "exp", json_integer((json_int_t)(now + exp_in))) != 0) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    if (json_object_get(claims, "jti") == NULL) {
        rc = tsr_rand(rnd, sizeof rnd);
        if (rc != TSR_OK)
            goto out;
        rc = tsr_b64url_encode(rnd, sizeof rnd, jti, sizeof jti, &jti_len);
        if (rc != TSR_OK)
            goto out;
        if (json_object_set_new(claims, "jti", json_stringn(jti, jti_len)) != 0) {
            rc = TSR_ERR_NOMEM;
            goto out;
        }
    }
    rc = TSR_OK;
out:
    tsr_wipe(rnd, sizeof rnd);
    return rc;
}

static int token_sign(int argc, char **argv)
{
    int code = TSR_CLI_USAGE;
    const char *key_path = NULL, *alg_s = NULL, *typ = NULL, *claims_s = NULL;
    const char *claims_file = NULL, *exp_in_s = NULL, *config = NULL;
    int64_t exp_in = TSR_CLI_DEFAULT_TTL;
    tsr_alg alg = TSR_ALG_INVALID;
    tsr_jwk *k = NULL;
    json_t *claims = NULL;
    char *tok = NULL;
    size_t tok_len = 0;
    tsr_err rc = TSR_ERR_INTERNAL;

    if (tsr_cli_wants_help(argc, argv)) {
        fputs(sign_usage, stdout);
        code = TSR_CLI_OK;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        int m;
        m = tsr_cli_opts(argc, argv, &i,
                         (const tsr_cli_opt[]){{"--key", &key_path},
                                               {"--alg", &alg_s},
                                               {"--typ", &typ},
                                               {"--claims", &claims_s},
                                               {"--claims-file", &claims_file},
                                               {"--exp-in", &exp_in_s},
                                               {"--config", &config},
                                               {NULL, NULL}});
        if (m < 0)
            goto usage;
        if (m > 0)
            continue;
        tsr_cli_bad_arg(argv[i]);
        goto usage;
    }
    if (key_path == NULL) {
        tsr_cli_error("--key is required");
        goto usage;
    }
    if (alg_s != NULL) {
        alg = tsr_cli_alg(alg_s);
        if (alg == TSR_ALG_INVALID) {
            tsr_cli_error("unknown or forbidden algorithm");
            goto usage;
        }
    }
    if (typ == NULL)
        typ = "at+jwt";
    if (typ[0] == '\0') {
        tsr_cli_error("--typ needs a value");
        goto usage;
    }
    if (claims_s != NULL && claims_file != NULL) {
        tsr_cli_error("--claims and --claims-file are mutually exclusive");
        goto usage;
    }
    if (exp_in_s != NULL) {
        rc = tsr_cli_parse_i64(exp_in_s, 1, TSR_CLI_EXP_IN_MAX, &exp_in);
        if (rc != TSR_OK) {
            tsr_cli_error("--exp-in must be a whole number of seconds from 1 to %d",
                          TSR_CLI_EXP_IN_MAX);
            goto usage;
        }
    }

    code = TSR_CLI_FAIL;
    rc = tsr_cli_config_check(config);
    if (rc != TSR_OK)
        goto out;
    rc = load_claims(claims_s, claims_file, &claims);
    if (rc != TSR_OK)
        goto out;
    if (exp_in_s != NULL && json_object_get(claims, "exp") != NULL) {
        tsr_cli_error("--exp-in conflicts with the exp of the claims");
        code = TSR_CLI_USAGE;
        goto out;
    }
    rc = tsr_cli_load_jwk(key_path, alg, &k);
    if (rc != TSR_OK)
        goto out;
    if (!tsr_key_has_private(tsr_jwk_key(k))) {
        tsr_cli_error("%s holds a public key: signing needs the private key", key_path);
        goto out;
    }
    rc = complete_claims(claims, (int64_t)time(NULL), exp_in);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot complete the claims: %s", tsr_err_text(rc));
        goto out;
    }
    rc = tsr_jwt_sign(k, typ, claims, &tok, &tok_len);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot sign: %s", tsr_err_text(rc));
        goto out;
    }
    rc = tsr_cli_write_stdout(tok, tok_len);
    if (rc == TSR_OK)
        rc = tsr_cli_write_stdout("\n", 1);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot write to stdout");
        goto out;
    }
    code = TSR_CLI_OK;
    goto out;
usage:
    fputs(sign_usage, stderr);
out:
    if (tok != NULL) {
        tsr_wipe(tok, tok_len);
        free(tok);
    }
    json_decref(claims);
    tsr_jwk_free(k);
    return code;
}

/* Fetches the key set at url and parses it like a file. A symmetric or private
 * key is refused: a secret anyone can download lets anyone sign, so a set that
 * publishes one proves nothing. */
static tsr_err fetch_jwks(const char *url, tsr_alg alg, tsr_jwks **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char shown[TSR_CLI_URL_SHOWN_MAX];
    char *buf = NULL;
    size_t len = 0;
    tsr_jwks *set = NULL;

    *out = NULL;
    rc = tsr_cli_fetch(url, TSR_JWK_MAX_BYTES, &buf, &len);
    if (rc != TSR_OK)
        goto out;
    tsr_cli_url_display(url, shown, sizeof shown);
    rc = tsr_cli_parse_jwks(shown, buf, len, alg, &set);
    if (rc != TSR_OK)
        goto out;
    for (size_t i = 0; i < tsr_jwks_count(set); i++) {
        const tsr_key *k = tsr_jwk_key(tsr_jwks_get(set, i));
        const char *what = tsr_key_kty(k) == TSR_KTY_OCT ? "a symmetric (HS*) key"
                           : tsr_key_has_private(k)      ? "private key material"
                                                         : NULL;
        if (what != NULL) {
            tsr_cli_error("the key set at %s holds %s: refused (a published secret lets "
                          "anyone sign)",
                          shown, what);
            rc = TSR_ERR_INVALID;
            goto out;
        }
    }
    *out = set;
    set = NULL;
    rc = TSR_OK;
out:
    tsr_jwks_free(set);
    tsr_cli_buf_free(buf, len);
    return rc;
}

static int token_verify(int argc, char **argv)
{
    int code = TSR_CLI_USAGE;
    const char *jwks_path = NULL, *key_path = NULL, *alg_s = NULL, *iss = NULL, *aud = NULL;
    const char *typ = NULL, *now_s = NULL, *tok_arg = NULL, *config = NULL;
    int any_typ = 0, end_of_opts = 0, jwks_url = 0;
    int64_t now = 0;
    tsr_alg alg = TSR_ALG_INVALID;
    tsr_jwks *set = NULL;
    tsr_jwt_policy pol;
    tsr_jwt *jwt = NULL; /* large (holds the payload): on the heap */
    json_t *claims = NULL;
    char *buf = NULL;
    size_t buflen = 0;
    const char *tok = NULL;
    size_t toklen = 0;
    tsr_err rc = TSR_ERR_INTERNAL;

    if (tsr_cli_wants_help(argc, argv)) {
        fputs(verify_usage, stdout);
        code = TSR_CLI_OK;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        int m;
        const char *a = argv[i];
        if (!end_of_opts && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                end_of_opts = 1;
                continue;
            }
            if (strcmp(a, "--any-typ") == 0) {
                any_typ = 1;
                continue;
            }
            m = tsr_cli_opts(argc, argv, &i,
                             (const tsr_cli_opt[]){{"--jwks", &jwks_path},
                                                   {"--key", &key_path},
                                                   {"--alg", &alg_s},
                                                   {"--iss", &iss},
                                                   {"--aud", &aud},
                                                   {"--typ", &typ},
                                                   {"--now", &now_s},
                                                   {"--config", &config},
                                                   {NULL, NULL}});
            if (m < 0)
                goto usage;
            if (m > 0)
                continue;
            tsr_cli_bad_arg(a);
            goto usage;
        }
        if (tok_arg != NULL) {
            tsr_cli_error("only one TOKEN may be given");
            goto usage;
        }
        tok_arg = a;
    }
    if ((jwks_path == NULL) == (key_path == NULL)) {
        tsr_cli_error("give exactly one of --jwks and --key");
        goto usage;
    }
    /* A URL of another scheme (ftp://, file://) is a usage error, found before
     * any I/O: only http(s) is fetched, and a file is named by its path. */
    if (jwks_path != NULL && tsr_cli_is_url(jwks_path)) {
        if (tsr_cli_url_check(jwks_path) != TSR_OK)
            goto usage;
        jwks_url = 1;
    }
    if (tok_arg == NULL) {
        tsr_cli_error("TOKEN is required ('-' reads it from stdin)");
        goto usage;
    }
    if (typ != NULL && any_typ) {
        tsr_cli_error("--typ and --any-typ are mutually exclusive");
        goto usage;
    }
    if (typ != NULL && typ[0] == '\0') {
        tsr_cli_error("--typ needs a value");
        goto usage;
    }
    if (alg_s != NULL) {
        alg = tsr_cli_alg(alg_s);
        if (alg == TSR_ALG_INVALID) {
            tsr_cli_error("unknown or forbidden algorithm");
            goto usage;
        }
    }
    if (now_s != NULL) {
        rc = tsr_cli_parse_i64(now_s, 0, TSR_CLI_NOW_MAX, &now);
        if (rc != TSR_OK) {
            tsr_cli_error("--now must be a Unix time in seconds");
            goto usage;
        }
    } else {
        now = (int64_t)time(NULL);
    }

    code = TSR_CLI_FAIL;
    rc = tsr_cli_config_check(config);
    if (rc != TSR_OK)
        goto out;
    if (jwks_url)
        rc = fetch_jwks(jwks_path, alg, &set);
    else
        rc = tsr_cli_load_jwks(jwks_path != NULL ? jwks_path : key_path, alg, &set);
    if (rc != TSR_OK)
        goto out;
    rc = get_token(tok_arg, &buf, &buflen, &tok, &toklen);
    if (rc != TSR_OK)
        goto out;
    pol = tsr_jwt_policy_access(iss, aud);
    pol.leeway = TSR_JWT_DEFAULT_LEEWAY;
    if (typ != NULL)
        pol.typ = typ;
    if (any_typ)
        pol.typ = NULL;
    /* One explicit key needs no kid to pick it; a set does. */
    if (key_path != NULL)
        pol.require_kid = 0;
    jwt = calloc(1, sizeof *jwt);
    if (jwt == NULL) {
        tsr_cli_error("out of memory");
        goto out;
    }
    rc = tsr_jwt_verify(set, &pol, now, tok, toklen, jwt);
    if (rc != TSR_OK) {
        fprintf(stderr, "invalid token: %s\n", tsr_err_text(rc));
        goto out;
    }
    rc = tsr_jwt_claims_json(jwt, &claims);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot read the claims: %s", tsr_err_text(rc));
        goto out;
    }
    rc = tsr_cli_print_json(claims);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot write to stdout");
        goto out;
    }
    code = TSR_CLI_OK;
    goto out;
usage:
    fputs(verify_usage, stderr);
out:
    json_decref(claims);
    if (jwt != NULL) {
        tsr_jwt_reset(jwt);
        free(jwt);
    }
    tsr_jwks_free(set);
    tsr_cli_buf_free(buf, buflen);
    return code;
}

static int token_decode(int argc, char **argv)
{
    int code = TSR_CLI_USAGE;
    const char *tok_arg = NULL, *config = NULL;
    int end_of_opts = 0;
    char *buf = NULL;
    size_t buflen = 0;
    const char *tok = NULL;
    size_t toklen = 0;
    json_t *header = NULL, *claims = NULL, *both = NULL;
    tsr_err rc = TSR_ERR_INTERNAL;

    if (tsr_cli_wants_help(argc, argv)) {
        fputs(decode_usage, stdout);
        code = TSR_CLI_OK;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!end_of_opts && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                end_of_opts = 1;
                continue;
            }
            int m = tsr_cli_opt_value(argc, argv, &i, "--config", &config);
            if (m < 0)
                goto usage;
            if (m > 0)
                continue;
            tsr_cli_bad_arg(a);
            goto usage;
        }
        if (tok_arg != NULL) {
            tsr_cli_error("only one TOKEN may be given");
            goto usage;
        }
        tok_arg = a;
    }
    if (tok_arg == NULL) {
        tsr_cli_error("TOKEN is required ('-' reads it from stdin)");
        goto usage;
    }

    code = TSR_CLI_FAIL;
    rc = tsr_cli_config_check(config);
    if (rc != TSR_OK)
        goto out;
    rc = get_token(tok_arg, &buf, &buflen, &tok, &toklen);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_jwt_decode_unverified(tok, toklen, &header, &claims);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot decode the token: %s", tsr_err_text(rc));
        goto out;
    }
    both = json_object();
    if (both == NULL || json_object_set(both, "header", header) != 0 ||
        json_object_set(both, "claims", claims) != 0) {
        tsr_cli_error("out of memory");
        goto out;
    }
    rc = tsr_cli_print_json(both);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot write to stdout");
        goto out;
    }
    tsr_cli_error("signature NOT verified: do not trust these claims");
    code = TSR_CLI_OK;
    goto out;
usage:
    fputs(decode_usage, stderr);
out:
    json_decref(both);
    json_decref(header);
    json_decref(claims);
    tsr_cli_buf_free(buf, buflen);
    return code;
}

int tsr_cli_token(int argc, char **argv)
{
    static const tsr_cli_sub subs[] = {
        {"sign", token_sign}, {"verify", token_verify}, {"decode", token_decode}, {NULL, NULL}};
    return tsr_cli_dispatch(argc, argv, token_usage, subs);
}
