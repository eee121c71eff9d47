/* cmd_keys.c: `tessera keys generate` (a fresh private JWK or PKCS#8 PEM, written
 * to a new 0600 file or stdout), `tessera keys public` (the public JWK or a
 * one-key JWKS of a key file), and on the configured store `tessera keys list`
 * (ids, algorithms, states, dates) and `tessera keys rotate`. Private material
 * goes only to the key file or stdout, never to stderr; list and rotate never
 * print it at all. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "jose/jose.h"

#ifdef TSR_HAVE_SERVER
#include "auth/tokens.h"
#endif

static const char keys_usage[] =
    "usage: tessera keys <subcommand> [options]\n"
    "\n"
    "subcommands:\n"
    "  generate --alg ALG [--out FILE] [--pem]   generate a signing key (offline)\n"
    "  public --key FILE [--alg ALG] [--jwks]    print the public JWK of a key (offline)\n"
    "  list [--json]                             list the server's signing keys\n"
    "  rotate [--alg ALG]                        rotate the server's signing keys\n"
    "\n"
    "Every subcommand takes --config FILE (list and rotate use the store it names).\n"
    "Run 'tessera keys <subcommand> --help' for details.\n";

static const char generate_usage[] =
    "usage: tessera keys generate --alg ALG [--out FILE] [--pem] [--config FILE]\n"
    "\n"
    "Generates a signing key and writes it as a private JWK (JSON) or, with --pem,\n"
    "as a PKCS#8 PEM. The key id (kid, its RFC 7638 thumbprint) is printed on stderr.\n"
    "\n"
    "  --alg ALG      HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512\n"
    "                 ES256 ES384 ES512 EdDSA (RSA keys are 2048 bits)\n"
    "  --out FILE     write the key to FILE, created with mode 0600; an existing\n"
    "                 file is never overwritten (default: stdout)\n"
    "  --pem          PKCS#8 PEM instead of a JWK (not for HS* keys)\n"
    "  --config FILE  settings file: checked, but generating uses no setting\n";

static const char public_usage[] =
    "usage: tessera keys public --key FILE [--alg ALG] [--jwks] [--config FILE]\n"
    "\n"
    "Prints the public JWK of a private key (JWK, or PEM with --alg).\n"
    "HS* keys are symmetric and have no public part: they are refused.\n"
    "\n"
    "  --key FILE     the key file (JWK, or PEM starting with -----BEGIN)\n"
    "  --alg ALG      algorithm of a PEM key (required for PEM)\n"
    "  --jwks         print a key set {\"keys\":[...]} instead of a single JWK\n"
    "  --config FILE  settings file: checked, but this command uses no setting\n";

/* Writes the private key as JWK or PEM into a new file or stdout. */
static tsr_err write_private(const tsr_jwk *k, int pem, const char *out_path)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char *s = NULL, *pem_s = NULL;
    size_t pem_len = 0;
    const char *data = NULL;
    size_t len = 0;
    char *text = NULL;
    size_t text_len = 0;

    if (pem) {
        rc = tsr_key_to_pem(tsr_jwk_key(k), 1, &pem_s, &pem_len);
        if (rc != TSR_OK) {
            tsr_cli_error("cannot encode the key as PEM: %s", tsr_err_text(rc));
            goto out;
        }
        data = pem_s;
        len = pem_len;
    } else {
        rc = tsr_jwk_dump(k, 1, &s);
        if (rc != TSR_OK) {
            tsr_cli_error("cannot encode the key as JWK: %s", tsr_err_text(rc));
            goto out;
        }
        data = s;
        len = strlen(s);
    }
    /* One buffer ending in a newline, so the file is written in one go. */
    text_len = len + (len > 0 && data[len - 1] == '\n' ? 0 : 1);
    text = malloc(text_len);
    if (text == NULL) {
        rc = TSR_ERR_NOMEM;
        tsr_cli_error("out of memory");
        goto out;
    }
    memcpy(text, data, len);
    text[text_len - 1] = '\n';
    if (out_path != NULL) {
        rc = tsr_cli_write_new_file(out_path, text, text_len);
        if (rc == TSR_ERR_EXISTS) {
            tsr_cli_error("%s already exists: refusing to overwrite it", out_path);
            goto out;
        }
        if (rc != TSR_OK) {
            tsr_cli_error("cannot write %s: %s", out_path, strerror(errno));
            goto out;
        }
    } else {
        rc = tsr_cli_write_stdout(text, text_len);
        if (rc != TSR_OK) {
            tsr_cli_error("cannot write to stdout");
            goto out;
        }
    }
    rc = TSR_OK;
out:
    tsr_cli_buf_free(text, text_len);
    tsr_jwk_string_free(s);
    if (pem_s != NULL)
        tsr_key_pem_free(pem_s, pem_len);
    return rc;
}

static int keys_generate(int argc, char **argv)
{
    int code = TSR_CLI_USAGE;
    const char *alg_s = NULL, *out_path = NULL, *config = NULL;
    int pem = 0;
    tsr_alg alg = TSR_ALG_INVALID;
    tsr_jwk *k = NULL;
    tsr_err rc = TSR_ERR_INTERNAL;

    if (tsr_cli_wants_help(argc, argv)) {
        fputs(generate_usage, stdout);
        code = TSR_CLI_OK;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        int m;
        m = tsr_cli_opts(
            argc, argv, &i,
            (const tsr_cli_opt[]){
                {"--alg", &alg_s}, {"--out", &out_path}, {"--config", &config}, {NULL, NULL}});
        if (m < 0)
            goto usage;
        if (m > 0)
            continue;
        if (strcmp(argv[i], "--pem") == 0) {
            pem = 1;
            continue;
        }
        tsr_cli_bad_arg(argv[i]);
        goto usage;
    }
    if (alg_s == NULL) {
        tsr_cli_error("--alg is required");
        goto usage;
    }
    alg = tsr_cli_alg(alg_s);
    if (alg == TSR_ALG_INVALID) {
        tsr_cli_error("unknown or forbidden algorithm (use HS256..HS512, RS256..RS512, "
                      "PS256..PS512, ES256..ES512 or EdDSA)");
        goto usage;
    }
    if (pem && tsr_alg_kty(alg) == TSR_KTY_OCT) {
        tsr_cli_error("--pem is not available for %s keys (symmetric secrets have no PEM)",
                      tsr_alg_name(alg));
        goto usage;
    }
    if (out_path != NULL && out_path[0] == '\0') {
        tsr_cli_error("--out needs a file name");
        goto usage;
    }

    code = TSR_CLI_FAIL;
    rc = tsr_cli_config_check(config);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_jwk_generate(alg, &k);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot generate a %s key: %s", tsr_alg_name(alg), tsr_err_text(rc));
        goto out;
    }
    rc = write_private(k, pem, out_path);
    if (rc != TSR_OK)
        goto out;
    fprintf(stderr, "kid: %s\n", tsr_jwk_kid(k));
    code = TSR_CLI_OK;
    goto out;
usage:
    fputs(generate_usage, stderr);
out:
    tsr_jwk_free(k);
    return code;
}

static int keys_public(int argc, char **argv)
{
    int code = TSR_CLI_USAGE;
    const char *key_path = NULL, *alg_s = NULL, *config = NULL;
    int jwks = 0;
    tsr_alg alg = TSR_ALG_INVALID;
    tsr_jwk *k = NULL;
    tsr_jwks *set = NULL;
    json_t *j = NULL;
    tsr_err rc = TSR_ERR_INTERNAL;

    if (tsr_cli_wants_help(argc, argv)) {
        fputs(public_usage, stdout);
        code = TSR_CLI_OK;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        int m;
        m = tsr_cli_opts(
            argc, argv, &i,
            (const tsr_cli_opt[]){
                {"--key", &key_path}, {"--alg", &alg_s}, {"--config", &config}, {NULL, NULL}});
        if (m < 0)
            goto usage;
        if (m > 0)
            continue;
        if (strcmp(argv[i], "--jwks") == 0) {
            jwks = 1;
            continue;
        }
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

    code = TSR_CLI_FAIL;
    rc = tsr_cli_config_check(config);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_cli_load_jwk(key_path, alg, &k);
    if (rc != TSR_OK)
        goto out;
    if (tsr_key_kty(tsr_jwk_key(k)) == TSR_KTY_OCT) {
        tsr_cli_error("%s keys are symmetric: they have no public part and are never "
                      "published",
                      tsr_alg_name(tsr_jwk_alg(k)));
        goto out;
    }
    if (jwks) {
        rc = tsr_jwks_new(&k, 1, &set);
        if (rc == TSR_OK)
            rc = tsr_jwks_to_json(set, &j);
    } else {
        rc = tsr_jwk_to_json(k, 0, &j);
    }
    if (rc != TSR_OK) {
        tsr_cli_error("cannot encode the public key: %s", tsr_err_text(rc));
        goto out;
    }
    rc = tsr_cli_print_json(j);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot write to stdout");
        goto out;
    }
    code = TSR_CLI_OK;
    goto out;
usage:
    fputs(public_usage, stderr);
out:
    json_decref(j);
    tsr_jwks_free(set);
    tsr_jwk_free(k);
    return code;
}

#ifdef TSR_HAVE_SERVER

static const char list_usage[] =
    "usage: tessera keys list [--json] [--config FILE]\n"
    "\n"
    "Lists the signing keys in the store the settings name, oldest first: kid,\n"
    "algorithm, state and dates (UTC). Never any private material.\n"
    "States: next (published, signs nothing yet), active (signs new tokens),\n"
    "retired (published until the last token it signed has expired).\n"
    "\n"
    "  --json         print {\"keys\":[{kid, alg, state, created_at, activated_at,\n"
    "                 retired_at, publish_until}]}: Unix seconds, null when unset\n"
    "  --config FILE  settings file (the one `tessera serve` uses; TESSERA_*\n"
    "                 environment variables apply too)\n";

static const char rotate_usage[] =
    "usage: tessera keys rotate [--alg ALG] [--config FILE]\n"
    "\n"
    "Rotates the signing keys in the store the settings name: the next key becomes\n"
    "active (or, when ALG differs from its algorithm, a new ALG key does), the\n"
    "active key is retired but stays published until the tokens it signed have\n"
    "expired, and a new next key is made. A store without keys first gets an\n"
    "active and a next key. Prints the new active kid on stdout.\n"
    "\n"
    "Safe while the server runs: running servers pick the new keys up by\n"
    "themselves (their background sync re-reads the keys from the store), and\n"
    "tokens signed before the rotation stay valid until they expire.\n"
    "\n"
    "  --alg ALG      HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512\n"
    "                 ES256 ES384 ES512 EdDSA (default: tokens.alg, ES256);\n"
    "                 HS* keys are never published in the JWKS\n"
    "  --config FILE  settings file (the one `tessera serve` uses)\n";

/* "2025-01-02T03:04:05Z" in UTC, or "-" for an unset (zero) time. */
static void fmt_time(int64_t t, char *out, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        memcpy(out, "-", 2);
}

static json_t *time_json(int64_t t)
{
    return t > 0 ? json_integer((json_int_t)t) : json_null();
}

static const char *state_name(const tsr_key_info *k)
{
    return k->state != NULL ? k->state : "unknown";
}

static tsr_err print_keys_json(const tsr_key_info *keys, size_t n)
{
    tsr_err rc = TSR_ERR_NOMEM;
    json_t *arr = json_array(), *doc = NULL;

    if (arr == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const tsr_key_info *k = &keys[i];
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "kid", k->kid, "alg", k->alg, "state",
                      state_name(k), "created_at", time_json(k->created_at), "activated_at",
                      time_json(k->activated_at), "retired_at", time_json(k->retired_at),
                      "publish_until", time_json(k->publish_until));
        if (o == NULL || json_array_append_new(arr, o) != 0)
            goto out;
    }
    doc = json_pack("{s:O}", "keys", arr);
    if (doc == NULL)
        goto out;
    rc = tsr_cli_print_json(doc);
out:
    json_decref(doc);
    json_decref(arr);
    return rc;
}

/* One line per key, columns aligned on the longest kid. */
static tsr_err print_keys_table(const tsr_key_info *keys, size_t n)
{
    enum { TIME_CHARS = 21 };
    char t[4][TIME_CHARS];
    int w = 3;

    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(keys[i].kid);
        if (l > (size_t)w)
            w = (int)l;
    }
    printf("%-*s  %-5s  %-7s  %-20s  %-20s  %-20s  %s\n", w, "KID", "ALG", "STATE", "CREATED",
           "ACTIVATED", "RETIRED", "PUBLISHED UNTIL");
    for (size_t i = 0; i < n; i++) {
        const tsr_key_info *k = &keys[i];
        fmt_time(k->created_at, t[0], sizeof t[0]);
        fmt_time(k->activated_at, t[1], sizeof t[1]);
        fmt_time(k->retired_at, t[2], sizeof t[2]);
        fmt_time(k->publish_until, t[3], sizeof t[3]);
        printf("%-*s  %-5s  %-7s  %-20s  %-20s  %-20s  %s\n", w, k->kid, k->alg, state_name(k),
               t[0], t[1], t[2], t[3]);
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? TSR_OK : TSR_ERR_IO;
}

/* Parses "[--config FILE] [--NAME VALUE] [--FLAG]" (name and flag may be NULL).
 * Returns 0, or -1 after a usage error. */
static int store_args(int argc, char **argv, const char **config, const char *name,
                      const char **val, const char *flag, int *flag_set)
{
    for (int i = 1; i < argc; i++) {
        int m = tsr_cli_opt_value(argc, argv, &i, "--config", config);
        if (m == 0 && name != NULL)
            m = tsr_cli_opt_value(argc, argv, &i, name, val);
        if (m < 0)
            return -1;
        if (m > 0)
            continue;
        if (flag != NULL && strcmp(argv[i], flag) == 0) {
            *flag_set = 1;
            continue;
        }
        tsr_cli_bad_arg(argv[i]);
        return -1;
    }
    return 0;
}

static int keys_list(int argc, char **argv)
{
    int code = TSR_CLI_USAGE;
    const char *config = NULL;
    int as_json = 0;
    tsr_cli_env e;
    tsr_key_info *keys = NULL;
    size_t n = 0;
    tsr_err rc = TSR_ERR_INTERNAL;

    memset(&e, 0, sizeof e);
    if (tsr_cli_wants_help(argc, argv)) {
        fputs(list_usage, stdout);
        code = TSR_CLI_OK;
        goto out;
    }
    if (store_args(argc, argv, &config, NULL, NULL, "--json", &as_json) != 0)
        goto usage;

    code = TSR_CLI_FAIL;
    keys = calloc(TSR_KEYS_MAX, sizeof *keys);
    if (keys == NULL) {
        tsr_cli_error("out of memory");
        goto out;
    }
    rc = tsr_cli_env_open(&e, config);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_auth_keys_list(e.auth, keys, TSR_KEYS_MAX, &n);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot list the signing keys: %s", tsr_err_text(rc));
        goto out;
    }
    rc = as_json ? print_keys_json(keys, n) : print_keys_table(keys, n);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot write to stdout");
        goto out;
    }
    if (n == 0 && !as_json)
        tsr_cli_error("no signing keys yet: `tessera serve` or `tessera keys rotate` makes them");
    code = TSR_CLI_OK;
    goto out;
usage:
    fputs(list_usage, stderr);
out:
    free(keys);
    tsr_cli_env_close(&e);
    return code;
}

/* The kid and alg of the key in state (the first one listed), or "" when none. */
static void find_key(tsr_auth *a, const char *state, tsr_key_info *keys, tsr_key_info *out)
{
    size_t n = 0;

    memset(out, 0, sizeof *out);
    if (tsr_auth_keys_list(a, keys, TSR_KEYS_MAX, &n) != TSR_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        if (keys[i].state != NULL && strcmp(keys[i].state, state) == 0) {
            *out = keys[i];
            return;
        }
    }
}

static int keys_rotate(int argc, char **argv)
{
    int code = TSR_CLI_USAGE;
    const char *config = NULL, *alg_s = NULL;
    tsr_alg alg = TSR_ALG_INVALID;
    tsr_cli_env e;
    tsr_key_info *keys = NULL, before, after;
    char kid[TSR_KID_STORE_MAX + 1];
    tsr_err rc = TSR_ERR_INTERNAL;

    memset(&e, 0, sizeof e);
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    kid[0] = '\0';
    if (tsr_cli_wants_help(argc, argv)) {
        fputs(rotate_usage, stdout);
        code = TSR_CLI_OK;
        goto out;
    }
    if (store_args(argc, argv, &config, "--alg", &alg_s, NULL, NULL) != 0)
        goto usage;
    if (alg_s != NULL) {
        alg = tsr_cli_alg(alg_s);
        if (alg == TSR_ALG_INVALID) {
            tsr_cli_error("unknown or forbidden algorithm (use HS256..HS512, RS256..RS512, "
                          "PS256..PS512, ES256..ES512 or EdDSA)");
            goto usage;
        }
    }

    code = TSR_CLI_FAIL;
    keys = calloc(TSR_KEYS_MAX, sizeof *keys);
    if (keys == NULL) {
        tsr_cli_error("out of memory");
        goto out;
    }
    rc = tsr_cli_env_open(&e, config);
    if (rc != TSR_OK)
        goto out;
    /* A fresh store gets its first keys, as `tessera serve` would make them. */
    rc = tsr_auth_keys_init(e.auth, (int64_t)time(NULL));
    if (rc != TSR_OK) {
        tsr_cli_error("cannot load the signing keys: %s", tsr_err_text(rc));
        goto out;
    }
    /* Another rotation (a server's automatic one, another admin) may win the
     * compare-and-swap: the keyring is then reloaded, and one retry rotates
     * from the new state. */
    for (int attempt = 0; attempt < 2; attempt++) {
        find_key(e.auth, "active", keys, &before);
        rc = tsr_auth_keys_rotate(e.auth, alg, (int64_t)time(NULL), kid);
        if (rc != TSR_ERR_CONFLICT)
            break;
    }
    if (rc == TSR_ERR_CONFLICT) {
        tsr_cli_error("another rotation changed the keys at the same time, twice: see "
                      "`tessera keys list` before trying again");
        goto out;
    }
    if (rc != TSR_OK) {
        tsr_cli_error("cannot rotate the signing keys: %s", tsr_err_text(rc));
        goto out;
    }
    printf("%s\n", kid);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        tsr_cli_error("cannot write to stdout");
        goto out;
    }
    find_key(e.auth, "active", keys, &after);
    fprintf(stderr, "active key: %s (%s)", kid, after.alg[0] != '\0' ? after.alg : "?");
    if (before.kid[0] != '\0')
        fprintf(stderr, "; retired: %s, published until its tokens expire", before.kid);
    fputs("\nrunning servers pick the change up by themselves (background key sync)\n", stderr);
    code = TSR_CLI_OK;
    goto out;
usage:
    fputs(rotate_usage, stderr);
out:
    free(keys);
    tsr_cli_env_close(&e);
    return code;
}

#else

static int keys_store_missing(int argc, char **argv)
{
    tsr_cli_error("this build has no key store");
    return TSR_CLI_FAIL;
}

static int keys_list(int argc, char **argv)
{
    return keys_store_missing(argc, argv);
}

static int keys_rotate(int argc, char **argv)
{
    return keys_store_missing(argc, argv);
}

#endif

int tsr_cli_keys(int argc, char **argv)
{
    static const tsr_cli_sub subs[] = {{"generate", keys_generate},
                                       {"public", keys_public},
                                       {"list", keys_list},
                                       {"rotate", keys_rotate},
                                       {NULL, NULL}};
    return tsr_cli_dispatch(argc, argv, keys_usage, subs);
}
