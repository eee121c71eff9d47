/* cli.h: what the `tessera` command-line files share: exit codes, subcommand entry
 * points, the small helpers of util.c (bounded file reads, key-file creation,
 * strict option and integer parsing, key loading, opening the configured store)
 * and the HTTP fetch of fetch.c. Internal to src/cli/. */
#ifndef TSR_CLI_H
#define TSR_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/err.h"
#include "jose/jose.h"

/* Exit codes of SPEC section 5. */
#define TSR_CLI_OK 0
#define TSR_CLI_FAIL 1
#define TSR_CLI_USAGE 2

#define TSR_CLI_FILE_MAX (1024 * 1024) /* largest file or stdin we read */

/* Subcommands. argv[0] is the command's own name ("keys", "token"); each returns
 * an exit code. */
int tsr_cli_keys(int argc, char **argv);
int tsr_cli_token(int argc, char **argv);
int tsr_cli_serve(int argc, char **argv);
int tsr_cli_user(int argc, char **argv);

/* A subcommand: its name and its entry point (argv[0] is the subcommand's name). */
typedef struct tsr_cli_sub {
    const char *name;
    int (*run)(int argc, char **argv);
} tsr_cli_sub;

/* Runs the subcommand argv[1] names from a table ended by {NULL, NULL}: usage on
 * stdout for --help (exit 0), on stderr when it is missing or unknown (exit 2). */
int tsr_cli_dispatch(int argc, char **argv, const char *usage, const tsr_cli_sub *subs);

/* Prints "tessera: <msg>\n" on stderr. Never pass secret data. */
void tsr_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports an unknown option (its name only, never a value after '=') or an
 * unexpected argument (not echoed: it may be a token) as a usage error. */
void tsr_cli_bad_arg(const char *a);

/* Nonzero when a is "--help" or "-h". */
int tsr_cli_is_help(const char *a);

/* Nonzero when any argument after argv[0] and before "--" asks for help: --help
 * wins over everything else on the line, even a malformed one. */
int tsr_cli_wants_help(int argc, char **argv);

/* Matches argv[*i] against an option that takes a value, given as "--name VALUE"
 * or "--name=VALUE". Returns 1 and sets *val (advancing *i past the value) when
 * it matched, 0 when argv[*i] is another option, and -1 after printing a usage
 * error when the value is missing or the option was already given (*val not NULL). */
int tsr_cli_opt_value(int argc, char **argv, int *i, const char *name, const char **val);

/* One option that takes a value, for tsr_cli_opts: its name and where its value goes. */
typedef struct tsr_cli_opt {
    const char *name;
    const char **val;
} tsr_cli_opt;

/* tsr_cli_opt_value against each option of a table ended by {NULL, NULL}: the first
 * match's result (1 or -1), or 0 when argv[*i] is none of them. */
int tsr_cli_opts(int argc, char **argv, int *i, const tsr_cli_opt *opts);

/* Strict decimal integer in [min, max]: no blanks, no '+', no trailing text.
 * TSR_ERR_INVALID otherwise; *out is 0 on failure. */
TSR_MUST_CHECK tsr_err tsr_cli_parse_i64(const char *s, int64_t min, int64_t max,
                                         int64_t *out /* OUT */);

/* Algorithm by its JWS name; TSR_ALG_INVALID for "none" or anything unknown. */
tsr_alg tsr_cli_alg(const char *name);

/* Reads a whole file ("-" is stdin) of at most max bytes into a NUL-terminated heap
 * buffer. With nofollow the file is opened O_NOFOLLOW (key files) and must be a
 * regular file. TSR_ERR_TOO_LARGE over max, TSR_ERR_IO otherwise (errno kept).
 * Free with tsr_cli_buf_free, which wipes. */
TSR_MUST_CHECK tsr_err tsr_cli_read_file(const char *path, size_t max, int nofollow,
                                         char **out /* OUT */, size_t *len /* OUT */);
void tsr_cli_buf_free(char *buf, size_t len);

/* Creates path O_EXCL|O_NOFOLLOW with mode 0600 and writes len bytes to it, synced.
 * TSR_ERR_EXISTS when it exists (never overwritten); a partial file is removed. */
TSR_MUST_CHECK tsr_err tsr_cli_write_new_file(const char *path, const void *data, size_t len);

/* Writes len bytes to stdout and flushes. TSR_ERR_IO on failure. */
TSR_MUST_CHECK tsr_err tsr_cli_write_stdout(const void *data, size_t len);

/* Loads one key from a file holding a JWK or, when it starts with "-----BEGIN", a
 * PEM (SPKI or PKCS#8; alg required). alg, when not TSR_ALG_INVALID, must match the
 * JWK's. The file buffer is wiped. Prints why on failure. */
TSR_MUST_CHECK tsr_err tsr_cli_load_jwk(const char *path, tsr_alg alg, tsr_jwk **out /* OUT */);

/* Loads a key set from a file holding a JWKS {"keys":[...]}, a single JWK or a PEM
 * (one-key sets). Prints why on failure. */
TSR_MUST_CHECK tsr_err tsr_cli_load_jwks(const char *path, tsr_alg alg, tsr_jwks **out /* OUT */);

/* The same from len bytes already in memory (buf[len] must be NUL); name says
 * where they came from in messages (a file, or a URL without its userinfo). */
TSR_MUST_CHECK tsr_err tsr_cli_parse_jwks(const char *name, const char *buf, size_t len,
                                          tsr_alg alg, tsr_jwks **out /* OUT */);

/* Prints a JSON value indented, with a newline, on stdout. */
TSR_MUST_CHECK tsr_err tsr_cli_print_json(const struct json_t *v);

/* Loads the --config file (NULL: nothing to check) with the TESSERA_* environment
 * and drops it: the offline commands take --config like every subcommand but use
 * no setting, so a bad file or value is still reported. Prints why on failure. */
TSR_MUST_CHECK tsr_err tsr_cli_config_check(const char *path);

/* What the store commands (user, keys list|rotate) open from --config: the
 * settings, the store they name and an auth context on it. */
struct tsr_store;
struct tsr_auth;
typedef struct tsr_cli_env {
    tsr_config cfg;
    int cfg_ok;
    struct tsr_store *store;
    struct tsr_auth *auth;
} tsr_cli_env;

/* Loads the config (NULL: defaults and the environment), opens the store and
 * the auth context. Prints why on failure (never the store URL: it may hold a
 * password) and leaves e closed. Builds with the server only. */
TSR_MUST_CHECK tsr_err tsr_cli_env_open(tsr_cli_env *e /* OUT */, const char *config_path);
void tsr_cli_env_close(tsr_cli_env *e); /* a zeroed or closed e is a no-op */

/* ---- fetch.c: the only user of libcurl ---- */

/* Nonzero when s starts like a URL ("scheme://"), whatever the scheme. */
int tsr_cli_is_url(const char *s);

/* Checks a URL given on the command line: TSR_OK for a well-formed http:// or
 * https:// URL; TSR_ERR_UNSUPPORTED for any other scheme, TSR_ERR_INVALID when
 * malformed. Prints why on failure. */
TSR_MUST_CHECK tsr_err tsr_cli_url_check(const char *url);

#define TSR_CLI_URL_SHOWN_MAX 256 /* bytes of a URL shown in a message, with NUL */

/* The URL as messages show it: normalised, without user name and password,
 * control bytes replaced by '?', at most cap - 1 bytes. Never fails (a URL curl
 * cannot parse shows as "(malformed URL)"). */
void tsr_cli_url_display(const char *url, char *out /* OUT */, size_t cap);

/* GETs url (http:// or https:// only) into a NUL-terminated heap buffer of at
 * most max bytes (free with tsr_cli_buf_free): TLS verified against the system
 * CA bundle, at most 3 redirects (never to another scheme, nor from https to
 * http), 10 s in all, status 200 only, transfer aborted past max bytes. Prints
 * one line naming the URL on failure: TSR_ERR_INVALID (URL refused),
 * TSR_ERR_TOO_LARGE, TSR_ERR_UNAVAILABLE (network, TLS, timeout, status). */
TSR_MUST_CHECK tsr_err tsr_cli_fetch(const char *url, size_t max, char **out /* OUT */,
                                     size_t *len /* OUT */);

#endif
