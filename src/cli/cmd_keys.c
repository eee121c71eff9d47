/* cmd_keys.c: `tessera keys generate` (a fresh private JWK or PKCS#8 PEM, written
 * to a new 0600 file or stdout) and `tessera keys public` (the public JWK or a
 * one-key JWKS of a key file). Private material goes only to the key file or
 * stdout, never to stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "jose/jose.h"

static const char keys_usage[] =
    "usage: tessera keys <subcommand> [options]\n"
    "\n"
    "subcommands:\n"
    "  generate --alg ALG [--out FILE] [--pem]   generate a signing key\n"
    "  public --key FILE [--alg ALG] [--jwks]    print the public JWK of a key\n"
    "\n"
    "Run 'tessera keys <subcommand> --help' for details.\n";

static const char generate_usage[] =
    "usage: tessera keys generate --alg ALG [--out FILE] [--pem]\n"
    "\n"
    "Generates a signing key and writes it as a private JWK (JSON) or, with --pem,\n"
    "as a PKCS#8 PEM. The key id (kid, its RFC 7638 thumbprint) is printed on stderr.\n"
    "\n"
    "  --alg ALG   HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512\n"
    "              ES256 ES384 ES512 EdDSA (RSA keys are 2048 bits)\n"
    "  --out FILE  write the key to FILE, created with mode 0600; an existing\n"
    "              file is never overwritten (default: stdout)\n"
    "  --pem       PKCS#8 PEM instead of a JWK (not for HS* keys)\n";

static const char public_usage[] =
    "usage: tessera keys public --key FILE [--alg ALG] [--jwks]\n"
    "\n"
    "Prints the public JWK of a private key (JWK, or PEM with --alg).\n"
    "HS* keys are symmetric and have no public part: they are refused.\n"
    "\n"
    "  --key FILE  the key file (JWK, or PEM starting with -----BEGIN)\n"
    "  --alg ALG   algorithm of a PEM key (required for PEM)\n"
    "  --jwks      print a key set {\"keys\":[...]} instead of a single JWK\n";

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
    const char *alg_s = NULL, *out_path = NULL;
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
            (const tsr_cli_opt[]){{"--alg", &alg_s}, {"--out", &out_path}, {NULL, NULL}});
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
    const char *key_path = NULL, *alg_s = NULL;
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
            (const tsr_cli_opt[]){{"--key", &key_path}, {"--alg", &alg_s}, {NULL, NULL}});
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

int tsr_cli_keys(int argc, char **argv)
{
    static const tsr_cli_sub subs[] = {
        {"generate", keys_generate}, {"public", keys_public}, {NULL, NULL}};
    return tsr_cli_dispatch(argc, argv, keys_usage, subs);
}
