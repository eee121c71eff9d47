/* util.c: helpers shared by the tessera subcommands: bounded reads of files and
 * stdin (wiped when freed, since they may hold keys), key files created O_EXCL
 * with mode 0600, strict option and integer parsing, loading JWK, JWKS and PEM
 * key files, and opening the configured store. Messages name files and reasons,
 * never file contents. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/config.h"
#include "common/log.h"
#include "crypto/crypto.h"

#ifdef TSR_HAVE_SERVER
#include "auth/auth.h"
#include "store/store.h"
#endif

void tsr_cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("tessera: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void tsr_cli_bad_arg(const char *a)
{
    if (a[0] == '-' && a[1] != '\0') {
        size_t n = strcspn(a, "=");
        if (n > 64)
            n = 64;
        tsr_cli_error("unknown option %.*s", (int)n, a);
    } else {
        tsr_cli_error("unexpected argument");
    }
}

int tsr_cli_dispatch(int argc, char **argv, const char *usage, const tsr_cli_sub *subs)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return TSR_CLI_USAGE;
    }
    if (tsr_cli_is_help(argv[1])) {
        fputs(usage, stdout);
        return TSR_CLI_OK;
    }
    for (; subs->name != NULL; subs++) {
        if (strcmp(argv[1], subs->name) == 0)
            return subs->run(argc - 1, argv + 1);
    }
    /* argv[0] is our own command name; the unknown word itself is not echoed. */
    tsr_cli_error("unknown %s subcommand", argv[0]);
    fputs(usage, stderr);
    return TSR_CLI_USAGE;
}

int tsr_cli_is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

int tsr_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (tsr_cli_is_help(argv[i]))
            return 1;
    }
    return 0;
}

int tsr_cli_opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t nl = strlen(name);
    const char *v = NULL;

    if (strncmp(a, name, nl) != 0)
        return 0;
    if (a[nl] == '=') {
        v = a + nl + 1;
    } else if (a[nl] == '\0') {
        if (*i + 1 >= argc) {
            tsr_cli_error("option %s needs a value", name);
            return -1;
        }
        *i += 1;
        v = argv[*i];
    } else {
        return 0; /* a longer option sharing the prefix */
    }
    if (*val != NULL) {
        tsr_cli_error("option %s given twice", name);
        return -1;
    }
    *val = v;
    return 1;
}

int tsr_cli_opts(int argc, char **argv, int *i, const tsr_cli_opt *opts)
{
    for (; opts->name != NULL; opts++) {
        int m = tsr_cli_opt_value(argc, argv, i, opts->name, opts->val);
        if (m != 0)
            return m;
    }
    return 0;
}

tsr_err tsr_cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    tsr_err rc = TSR_ERR_INVALID;
    char *end = NULL;
    long long v;

    *out = 0;
    /* strtoll would accept leading blanks and '+': only digits with an optional '-'. */
    if (s == NULL || !((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
        goto out;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        goto out;
    if (v < min || v > max)
        goto out;
    *out = (int64_t)v;
    rc = TSR_OK;
out:
    return rc;
}

tsr_alg tsr_cli_alg(const char *name)
{
    if (name == NULL)
        return TSR_ALG_INVALID;
    return tsr_alg_from_name(name, strlen(name));
}

void tsr_cli_buf_free(char *buf, size_t len)
{
    if (buf == NULL)
        return;
    tsr_wipe(buf, len);
    free(buf);
}

/* Grows *buf from cap to ncap bytes; the old block is wiped before it is freed
 * (realloc could leave key bytes behind). */
static tsr_err grow(char **buf, size_t used, size_t cap, size_t ncap)
{
    char *nb = malloc(ncap);
    if (nb == NULL)
        return TSR_ERR_NOMEM;
    if (*buf != NULL) {
        memcpy(nb, *buf, used);
        tsr_wipe(*buf, cap);
        free(*buf);
    }
    *buf = nb;
    return TSR_OK;
}

tsr_err tsr_cli_read_file(const char *path, size_t max, int nofollow, char **out, size_t *len)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    int fd = -1, saved = 0;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    struct stat st;

    *out = NULL;
    *len = 0;
    if (strcmp(path, "-") == 0) {
        fd = STDIN_FILENO;
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0));
        if (fd < 0) {
            saved = errno;
            rc = TSR_ERR_IO;
            goto out;
        }
        if (fstat(fd, &st) != 0) {
            saved = errno;
            rc = TSR_ERR_IO;
            goto out;
        }
        if (nofollow && !S_ISREG(st.st_mode)) {
            saved = EINVAL;
            rc = TSR_ERR_IO;
            goto out;
        }
    }
    for (;;) {
        ssize_t r;
        if (n + 1 >= cap) {
            /* Room for max bytes, one more to detect an oversize input, and the NUL. */
            size_t ncap = cap == 0 ? 4096 : cap * 2;
            if (ncap > max + 2)
                ncap = max + 2;
            if (ncap <= cap) {
                rc = TSR_ERR_TOO_LARGE;
                goto out;
            }
            rc = grow(&buf, n, cap, ncap);
            if (rc != TSR_OK)
                goto out;
            cap = ncap;
        }
        r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            saved = errno;
            rc = TSR_ERR_IO;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            rc = TSR_ERR_TOO_LARGE;
            goto out;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = TSR_OK;
out:
    tsr_cli_buf_free(buf, cap);
    if (fd >= 0 && fd != STDIN_FILENO)
        close(fd);
    if (saved != 0)
        errno = saved;
    return rc;
}

tsr_err tsr_cli_write_new_file(const char *path, const void *data, size_t len)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    const unsigned char *p = data;
    size_t off = 0;
    int fd = -1, created = 0, saved = 0;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        saved = errno;
        rc = saved == EEXIST ? TSR_ERR_EXISTS : TSR_ERR_IO;
        goto out;
    }
    created = 1;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            saved = errno;
            rc = TSR_ERR_IO;
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        saved = errno;
        rc = TSR_ERR_IO;
        goto out;
    }
    rc = close(fd) == 0 ? TSR_OK : TSR_ERR_IO;
    if (rc != TSR_OK)
        saved = errno;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    if (rc != TSR_OK && created)
        unlink(path);
    if (saved != 0)
        errno = saved;
    return rc;
}

tsr_err tsr_cli_write_stdout(const void *data, size_t len)
{
    if (len > 0 && fwrite(data, 1, len, stdout) != len)
        return TSR_ERR_IO;
    if (fflush(stdout) != 0)
        return TSR_ERR_IO;
    return TSR_OK;
}

tsr_err tsr_cli_print_json(const json_t *v)
{
    if (json_dumpf(v, stdout, JSON_INDENT(2)) != 0)
        return TSR_ERR_IO;
    if (fputc('\n', stdout) == EOF || fflush(stdout) != 0)
        return TSR_ERR_IO;
    return TSR_OK;
}

static int is_pem(const char *buf, size_t len)
{
    size_t i = 0;
    static const char begin[] = "-----BEGIN";
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    return len - i >= sizeof begin - 1 && memcmp(buf + i, begin, sizeof begin - 1) == 0;
}

/* Reads a key file and reports why it could not. */
static tsr_err read_key_file(const char *path, int nofollow, char **buf, size_t *len)
{
    tsr_err rc = tsr_cli_read_file(path, TSR_CLI_FILE_MAX, nofollow, buf, len);
    if (rc == TSR_ERR_IO)
        tsr_cli_error("cannot read %s: %s", path,
                      errno == ELOOP    ? "is a symbolic link (refused for key files)"
                      : errno == EINVAL ? "not a regular file"
                                        : strerror(errno));
    else if (rc != TSR_OK)
        tsr_cli_error("cannot read %s: %s", path, tsr_err_text(rc));
    return rc;
}

static tsr_err jwk_from_pem(const char *path, tsr_alg alg, const char *buf, size_t len,
                            tsr_jwk **out)
{
    tsr_err rc = TSR_ERR_INVALID;
    if (alg == TSR_ALG_INVALID) {
        tsr_cli_error("%s is a PEM key: --alg is required", path);
        goto out;
    }
    rc = tsr_jwk_from_pem(alg, buf, len, NULL, out);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot load PEM key %s as %s: %s", path, tsr_alg_name(alg),
                      tsr_err_text(rc));
        goto out;
    }
out:
    return rc;
}

static tsr_err check_alg(const char *path, const tsr_jwk *k, tsr_alg alg)
{
    if (alg != TSR_ALG_INVALID && tsr_jwk_alg(k) != alg) {
        tsr_cli_error("key %s is for %s, not %s", path, tsr_alg_name(tsr_jwk_alg(k)),
                      tsr_alg_name(alg));
        return TSR_ERR_INVALID;
    }
    return TSR_OK;
}

tsr_err tsr_cli_load_jwk(const char *path, tsr_alg alg, tsr_jwk **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char *buf = NULL;
    size_t len = 0;
    tsr_jwk *k = NULL;

    *out = NULL;
    rc = read_key_file(path, 1, &buf, &len);
    if (rc != TSR_OK)
        goto out;
    if (is_pem(buf, len)) {
        rc = jwk_from_pem(path, alg, buf, len, &k);
        if (rc != TSR_OK)
            goto out;
    } else {
        rc = tsr_jwk_parse(buf, len, alg, &k);
        if (rc != TSR_OK) {
            tsr_cli_error("cannot load JWK %s: %s", path, tsr_err_text(rc));
            goto out;
        }
    }
    rc = check_alg(path, k, alg);
    if (rc != TSR_OK)
        goto out;
    *out = k;
    k = NULL;
    rc = TSR_OK;
out:
    tsr_jwk_free(k);
    tsr_cli_buf_free(buf, len);
    return rc;
}

tsr_err tsr_cli_parse_jwks(const char *name, const char *buf, size_t len, tsr_alg alg,
                           tsr_jwks **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    json_t *root = NULL;
    json_error_t jerr;
    tsr_jwk *k = NULL;

    *out = NULL;
    if (is_pem(buf, len)) {
        rc = jwk_from_pem(name, alg, buf, len, &k);
        if (rc != TSR_OK)
            goto out;
    } else {
        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL || !json_is_object(root)) {
            /* jerr.text may quote the input: not printed. */
            tsr_cli_error("%s is not a JSON object (JWK or JWKS)", name);
            rc = TSR_ERR_INVALID;
            goto out;
        }
        if (json_object_get(root, "keys") != NULL) {
            rc = tsr_jwks_parse(buf, len, out);
            if (rc != TSR_OK) {
                tsr_cli_error("cannot load JWKS %s: %s", name,
                              rc == TSR_ERR_NOT_FOUND ? "no usable signing key" : tsr_err_text(rc));
                goto out;
            }
            rc = TSR_OK;
            goto out;
        }
        if (json_object_get(root, "jwks_uri") != NULL) {
            tsr_cli_error("%s is a discovery document, not a key set: pass its jwks_uri", name);
            rc = TSR_ERR_INVALID;
            goto out;
        }
        rc = tsr_jwk_from_json(root, alg, &k);
        if (rc != TSR_OK) {
            tsr_cli_error("cannot load JWK %s: %s", name, tsr_err_text(rc));
            goto out;
        }
    }
    rc = check_alg(name, k, alg);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_jwks_new(&k, 1, out);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot build a key set from %s: %s", name, tsr_err_text(rc));
        goto out;
    }
    rc = TSR_OK;
out:
    tsr_jwk_free(k);
    json_decref(root);
    return rc;
}

tsr_err tsr_cli_load_jwks(const char *path, tsr_alg alg, tsr_jwks **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char *buf = NULL;
    size_t len = 0;

    *out = NULL;
    /* A set may hold an HS* secret: read it like any key file. */
    rc = read_key_file(path, 1, &buf, &len);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_cli_parse_jwks(path, buf, len, alg, out);
out:
    tsr_cli_buf_free(buf, len);
    return rc;
}

tsr_err tsr_cli_config_check(const char *path)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char err[TSR_CONFIG_ERR_MAX];
    tsr_config cfg;

    if (path == NULL)
        return TSR_OK;
    rc = tsr_config_load(path, &cfg, err, sizeof err);
    if (rc != TSR_OK) {
        tsr_cli_error("config: %s", err);
        return rc;
    }
    tsr_config_reset(&cfg);
    return TSR_OK;
}

#ifdef TSR_HAVE_SERVER

tsr_err tsr_cli_env_open(tsr_cli_env *e, const char *config_path)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char err[TSR_CONFIG_ERR_MAX];
    tsr_auth_opts opts;

    memset(e, 0, sizeof *e);
    rc = tsr_config_load(config_path, &e->cfg, err, sizeof err);
    if (rc != TSR_OK) {
        tsr_cli_error("config: %s", err);
        goto out;
    }
    e->cfg_ok = 1;
    tsr_log_set_level(e->cfg.log.level);
    rc = tsr_auth_opts_from_config(&e->cfg, &opts);
    if (rc != TSR_OK) {
        tsr_cli_error("config: unusable settings: %s", tsr_err_text(rc));
        goto out;
    }
    rc = tsr_store_open(e->cfg.store.url, &e->store);
    if (rc != TSR_OK) {
        /* The URL may carry a database password: not printed. */
        tsr_cli_error("cannot open the store: %s", tsr_err_text(rc));
        goto out;
    }
    rc = tsr_auth_new(e->store, &opts, &e->auth);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot start: %s", tsr_err_text(rc));
        goto out;
    }
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        tsr_cli_env_close(e);
    return rc;
}

void tsr_cli_env_close(tsr_cli_env *e)
{
    tsr_auth_free(e->auth);
    tsr_store_close(e->store);
    if (e->cfg_ok)
        tsr_config_reset(&e->cfg);
    memset(e, 0, sizeof *e);
}

#endif
