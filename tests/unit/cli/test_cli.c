/* test_cli.c: runs the real `tessera` binary (TSR_TESSERA_BIN) in a temporary
 * directory and checks its output and exit codes: help and usage errors, key
 * generation and key files, sign/verify round trips per algorithm, and the
 * rejections (wrong iss/aud/typ/key, tampered, expired). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"

#ifndef TSR_TESSERA_BIN
#error "TSR_TESSERA_BIN must name the tessera binary"
#endif

#define CLAIMS "{\"sub\":\"alice\",\"iss\":\"https://issuer.test\",\"aud\":\"api\"}"

static char tmpdir[64];

typedef struct run_res {
    int code; /* exit status, or 128 + signal */
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
} run_res;

static void res_free(run_res *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Appends what fd has to *buf; returns 0 at EOF, 1 when more may come, -1 on error. */
static int drain(int fd, char **buf, size_t *len)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -1;
    if (n == 0)
        return 0;
    char *nb = realloc(*buf, *len + (size_t)n + 1);
    if (nb == NULL)
        return -1;
    memcpy(nb + *len, chunk, (size_t)n);
    *len += (size_t)n;
    nb[*len] = '\0';
    *buf = nb;
    return 1;
}

/* Runs tessera with args (NULL-terminated) in tmpdir, feeding input (may be NULL)
 * on stdin. out and err are always NUL-terminated strings afterwards. */
static void run_v(run_res *r, const char *input, const char *const *args)
{
    int in[2], out[2], err[2];
    const char *argv[32];
    size_t argc = 0, in_len = input ? strlen(input) : 0, in_off = 0;
    pid_t pid;
    int status = 0;

    memset(r, 0, sizeof *r);
    r->code = -1;
    argv[argc++] = TSR_TESSERA_BIN;
    for (size_t i = 0; args[i] != NULL && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) {
        CHECK(!"pipe");
        return;
    }
    pid = fork();
    if (pid < 0) {
        CHECK(!"fork");
        return;
    }
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        if (chdir(tmpdir) != 0)
            _exit(126);
        execv(TSR_TESSERA_BIN, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    if (in_len == 0) {
        close(in[1]);
        in[1] = -1;
    }
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    int out_open = 1, err_open = 1;
    while (out_open || err_open) {
        struct pollfd p[3] = {{out_open ? out[0] : -1, POLLIN, 0},
                              {err_open ? err[0] : -1, POLLIN, 0},
                              {in[1], POLLOUT, 0}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents != 0 && drain(out[0], &r->out, &r->out_len) <= 0)
            out_open = 0;
        if (p[1].revents != 0 && drain(err[0], &r->err, &r->err_len) <= 0)
            err_open = 0;
        if (in[1] >= 0 && p[2].revents != 0) {
            ssize_t w =
                (p[2].revents & POLLOUT) ? write(in[1], input + in_off, in_len - in_off) : -1;
            if (w > 0)
                in_off += (size_t)w;
            if (w < 0 && errno == EAGAIN)
                continue;
            if (w <= 0 || in_off == in_len) {
                close(in[1]);
                in[1] = -1;
            }
        }
    }
    if (in[1] >= 0)
        close(in[1]);
    close(out[0]);
    close(err[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define RUN(r, input, ...) run_v((r), (input), (const char *const[]){__VA_ARGS__, NULL})

/* CHECKs the exit code, printing the child's stderr when it differs. */
#define EXPECT_CODE(r, want)                                                                       \
    CHECKF((r)->code == (want), "exit %d, want %d; stderr: %s", (r)->code, (want),                 \
           (r)->err ? (r)->err : "")

static void tpath(char *buf, size_t cap, const char *name)
{
    int w = snprintf(buf, cap, "%s/%s", tmpdir, name);
    if (w < 0 || (size_t)w >= cap)
        buf[0] = '\0';
}

static int write_tmp(const char *name, const char *data)
{
    char p[256];
    FILE *f;
    tpath(p, sizeof p, name);
    f = fopen(p, "wb");
    if (f == NULL)
        return -1;
    size_t n = strlen(data);
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static char *read_tmp(const char *name, size_t *len)
{
    char p[256];
    tpath(p, sizeof p, name);
    return tsr_test_read_file(p, len);
}

static int exists_tmp(const char *name)
{
    char p[256];
    struct stat st;
    tpath(p, sizeof p, name);
    return lstat(p, &st) == 0;
}

/* Strips the trailing newline of a token printed by `token sign`. */
static char *token_of(run_res *r)
{
    char *t = strdup(r->out ? r->out : "");
    if (t == NULL)
        return NULL;
    t[strcspn(t, "\n")] = '\0';
    return t;
}

static const char *json_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *parse(const char *s)
{
    return json_loads(s ? s : "", JSON_REJECT_DUPLICATES, NULL);
}

/* ---- tests ---- */

static void version_prints_version(void)
{
    run_res r;
    RUN(&r, NULL, "version");
    EXPECT_CODE(&r, 0);
    CHECK(strncmp(r.out, "tessera ", 8) == 0);
    CHECK(r.out_len > 9 && r.out[r.out_len - 1] == '\n');
    res_free(&r);
    RUN(&r, NULL, "version", "extra");
    EXPECT_CODE(&r, 2);
    CHECK(r.out_len == 0);
    res_free(&r);
}

static void help_on_every_command_exits_zero(void)
{
    static const char *const cmds[][5] = {
        {"--help"},
        {"help"},
        {"-h"},
        {"version", "--help"},
        {"keys", "--help"},
        {"keys", "generate", "--help"},
        {"keys", "public", "--help"},
        {"token", "--help"},
        {"token", "sign", "--help"},
        {"token", "verify", "--help"},
        {"token", "decode", "--help"},
        /* --help wins over other arguments, even bad ones. */
        {"keys", "generate", "--alg", "--help"},
        {"token", "verify", "--bogus", "--help"},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        run_res r;
        run_v(&r, NULL, cmds[i]);
        CHECKF(r.code == 0, "%s %s: exit %d", cmds[i][0], cmds[i][1] ? cmds[i][1] : "", r.code);
        CHECKF(strstr(r.out, "usage") != NULL, "%s: no usage on stdout", cmds[i][0]);
        res_free(&r);
    }
}

static void unknown_command_and_bad_usage_exit_2(void)
{
    static const char *const cmds[][10] = {
        {"frobnicate"},
        {"serve", "--bogus"}, /* unknown option */
        {"keys"},
        {"keys", "frob"},
        {"keys", "generate"},
        {"keys", "generate", "--alg", "ES256", "--bogus"},
        {"keys", "generate", "--alg", "ES256", "--alg", "ES256"},
        {"keys", "public"},
        {"token"},
        {"token", "frob"},
        {"token", "sign"},
        {"token", "sign", "--key", "k", "--exp-in", "0"},
        {"token", "sign", "--key", "k", "--exp-in", "1x"},
        {"token", "sign", "--key", "k", "--exp-in", " 5"},
        {"token", "sign", "--key", "k", "--claims", "{}", "--claims-file", "c"},
        {"token", "verify", "tok"},
        {"token", "verify", "--jwks", "a", "--key", "b", "tok"},
        {"token", "verify", "--jwks", "a"},
        {"token", "verify", "--jwks", "a", "--now", "-1", "tok"},
        {"token", "verify", "--jwks", "a", "--now", "12abc", "tok"},
        {"token", "verify", "--jwks", "a", "--typ", "JWT", "--any-typ", "tok"},
        {"token", "verify", "--jwks", "a", "t1", "t2"},
        {"token", "decode"},
    };
    run_res r;
    RUN(&r, NULL, "frobnicate");
    EXPECT_CODE(&r, 2);
    CHECK(r.out_len == 0);
    CHECK(strstr(r.err, "usage") != NULL);
    CHECK(strstr(r.err, "frobnicate") == NULL); /* arguments are not echoed */
    res_free(&r);
    {
        const char *const none[] = {NULL};
        run_v(&r, NULL, none);
        EXPECT_CODE(&r, 2);
        CHECK(r.out_len == 0);
        res_free(&r);
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        run_v(&r, NULL, cmds[i]);
        CHECKF(r.code == 2, "%s %s %s: exit %d", cmds[i][0], cmds[i][1] ? cmds[i][1] : "",
               cmds[i][1] && cmds[i][2] ? cmds[i][2] : "", r.code);
        CHECKF(r.out_len == 0, "%s: wrote to stdout", cmds[i][0]);
        res_free(&r);
    }
}

static const char *const all_algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                       "RS512", "PS256", "PS384", "PS512", "ES256",
                                       "ES384", "ES512", "EdDSA"};

static void keys_generate_every_alg_writes_0600_and_refuses_overwrite(void)
{
    for (size_t i = 0; i < sizeof all_algs / sizeof all_algs[0]; i++) {
        char name[64], p[256];
        struct stat st;
        size_t len = 0, len2 = 0;
        run_res r;
        const char *alg = all_algs[i];

        snprintf(name, sizeof name, "gen-%s.jwk", alg);
        RUN(&r, NULL, "keys", "generate", "--alg", alg, "--out", name);
        CHECKF(r.code == 0, "%s: exit %d: %s", alg, r.code, r.err);
        CHECKF(r.out_len == 0, "%s: key echoed on stdout", alg);
        CHECKF(strncmp(r.err, "kid: ", 5) == 0, "%s: no kid on stderr", alg);
        CHECKF(strchr(r.err, '{') == NULL, "%s: JSON on stderr", alg);
        res_free(&r);

        tpath(p, sizeof p, name);
        CHECKF(lstat(p, &st) == 0 && S_ISREG(st.st_mode), "%s: not a file", alg);
        CHECKF((st.st_mode & 0777) == 0600, "%s: mode %o", alg, (unsigned)(st.st_mode & 0777));
        char *before = read_tmp(name, &len);
        json_t *j = parse(before);
        CHECKF(j != NULL, "%s: not JSON", alg);
        CHECKF(json_str(j, "alg") && strcmp(json_str(j, "alg"), alg) == 0, "%s: alg", alg);
        CHECKF(json_object_get(j, alg[0] == 'H' ? "k" : "d") != NULL, "%s: no private part", alg);
        json_decref(j);

        RUN(&r, NULL, "keys", "generate", "--alg", alg, "--out", name);
        CHECKF(r.code == 1, "%s: overwrite exit %d", alg, r.code);
        CHECKF(strstr(r.err, "exists") != NULL, "%s: %s", alg, r.err);
        res_free(&r);
        char *after = read_tmp(name, &len2);
        CHECKF(before && after && len == len2 && memcmp(before, after, len) == 0,
               "%s: file changed", alg);
        free(before);
        free(after);
    }
}

static void keys_generate_pem_and_stdout(void)
{
    static const char *const algs[] = {"ES256", "EdDSA", "RS256", "PS384", "ES512"};
    run_res r;
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        char name[64], p[256];
        struct stat st;
        snprintf(name, sizeof name, "gen-%s.pem", algs[i]);
        RUN(&r, NULL, "keys", "generate", "--alg", algs[i], "--pem", "--out", name);
        CHECKF(r.code == 0, "%s: exit %d: %s", algs[i], r.code, r.err);
        res_free(&r);
        tpath(p, sizeof p, name);
        CHECK(lstat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
        char *pem = read_tmp(name, NULL);
        CHECKF(pem && strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0, "%s: not PKCS#8",
               algs[i]);
        free(pem);
    }
    RUN(&r, NULL, "keys", "generate", "--alg", "HS256", "--pem", "--out", "hs.pem");
    EXPECT_CODE(&r, 2);
    CHECK(!exists_tmp("hs.pem"));
    res_free(&r);

    RUN(&r, NULL, "keys", "generate", "--alg", "EdDSA");
    EXPECT_CODE(&r, 0);
    json_t *j = parse(r.out);
    CHECK(j != NULL && strcmp(json_str(j, "kty"), "OKP") == 0);
    CHECK(j != NULL && json_str(j, "d") != NULL);
    CHECK(j != NULL && strstr(r.err, json_str(j, "kid")) != NULL);
    json_decref(j);
    res_free(&r);
}

static void keys_generate_rejects_alg_none(void)
{
    static const char *const bad[] = {"none", "None", "NONE", "XS256", "hs256", "", "ES256 "};
    run_res r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        RUN(&r, NULL, "keys", "generate", "--alg", bad[i], "--out", "none.jwk");
        CHECKF(r.code == 2, "'%s': exit %d", bad[i], r.code);
        CHECKF(r.out_len == 0, "'%s': output", bad[i]);
        res_free(&r);
        CHECK(!exists_tmp("none.jwk"));
    }
}

/* Generates a key and, for asymmetric algorithms, its JWKS with `keys public --jwks`. */
static void make_key(const char *alg, const char *key, const char *jwks)
{
    run_res r;
    RUN(&r, NULL, "keys", "generate", "--alg", alg, "--out", key);
    CHECKF(r.code == 0, "%s: generate exit %d: %s", alg, r.code, r.err);
    res_free(&r);
    if (jwks == NULL)
        return;
    RUN(&r, NULL, "keys", "public", "--key", key, "--jwks");
    CHECKF(r.code == 0, "%s: public exit %d: %s", alg, r.code, r.err);
    json_t *j = parse(r.out);
    json_t *k0 = json_array_get(json_object_get(j, "keys"), 0);
    CHECKF(json_array_size(json_object_get(j, "keys")) == 1, "%s: not a one-key set", alg);
    CHECKF(k0 != NULL && json_object_get(k0, "d") == NULL && json_object_get(k0, "p") == NULL,
           "%s: private member published", alg);
    json_decref(j);
    CHECK(write_tmp(jwks, r.out) == 0);
    res_free(&r);
}

static char *sign(const char *key, const char *claims, int want)
{
    run_res r;
    char *tok = NULL;
    RUN(&r, NULL, "token", "sign", "--key", key, "--claims", claims);
    CHECKF(r.code == want, "sign with %s: exit %d: %s", key, r.code, r.err);
    if (r.code == 0)
        tok = token_of(&r);
    res_free(&r);
    return tok;
}

static void round_trip(const char *alg)
{
    char key[64], jwks[64];
    const char *flag;
    const char *verifier;
    run_res r;
    int hs = alg[0] == 'H';

    snprintf(key, sizeof key, "rt-%s.jwk", alg);
    snprintf(jwks, sizeof jwks, "rt-%s.jwks", alg);
    make_key(alg, key, hs ? NULL : jwks);
    flag = hs ? "--key" : "--jwks";
    verifier = hs ? key : jwks;

    char *tok = sign(key, CLAIMS, 0);
    if (tok == NULL)
        return;
    CHECKF(strchr(tok, '.') && strchr(strchr(tok, '.') + 1, '.'), "%s: not compact", alg);

    RUN(&r, NULL, "token", "verify", flag, verifier, "--iss", "https://issuer.test", "--aud", "api",
        tok);
    CHECKF(r.code == 0, "%s: verify exit %d: %s", alg, r.code, r.err);
    json_t *c = parse(r.out);
    CHECKF(c != NULL && json_str(c, "sub") && strcmp(json_str(c, "sub"), "alice") == 0,
           "%s: claims %s", alg, r.out);
    CHECK(json_integer_value(json_object_get(c, "exp")) -
              json_integer_value(json_object_get(c, "iat")) ==
          900);
    CHECK(json_str(c, "jti") != NULL && strlen(json_str(c, "jti")) == 22);
    json_decref(c);
    res_free(&r);

    /* TOKEN "-" reads stdin. */
    char *line = malloc(strlen(tok) + 2);
    if (line != NULL) {
        memcpy(line, tok, strlen(tok));
        memcpy(line + strlen(tok), "\n", 2);
        RUN(&r, line, "token", "verify", flag, verifier, "-");
        CHECKF(r.code == 0, "%s: stdin verify exit %d: %s", alg, r.code, r.err);
        res_free(&r);
        free(line);
    }

    RUN(&r, NULL, "token", "verify", flag, verifier, "--aud", "other", tok);
    EXPECT_CODE(&r, 1);
    CHECK(r.out_len == 0);
    CHECKF(strstr(r.err, "invalid token: token audience not accepted") != NULL, "%s", r.err);
    CHECK(strstr(r.err, tok) == NULL);
    res_free(&r);

    RUN(&r, NULL, "token", "verify", flag, verifier, "--iss", "https://evil.test", tok);
    EXPECT_CODE(&r, 1);
    CHECKF(strstr(r.err, "invalid token: token issuer not accepted") != NULL, "%s", r.err);
    res_free(&r);

    /* Tampered: one character changed in the signature, then in the payload. */
    size_t n = strlen(tok);
    char *sig = strrchr(tok, '.') + 1;
    size_t mid = (size_t)(sig - tok) + (n - (size_t)(sig - tok)) / 2;
    char *bad = strdup(tok);
    CHECK(bad != NULL);
    if (bad != NULL) {
        bad[mid] = bad[mid] == 'A' ? 'B' : 'A';
        RUN(&r, NULL, "token", "verify", flag, verifier, bad);
        EXPECT_CODE(&r, 1);
        CHECKF(strstr(r.err, "invalid token: ") != NULL, "%s", r.err);
        res_free(&r);
        memcpy(bad, tok, n);
        size_t pmid = (size_t)(strchr(tok, '.') - tok) + 10;
        bad[pmid] = bad[pmid] == 'A' ? 'B' : 'A';
        RUN(&r, NULL, "token", "verify", flag, verifier, bad);
        EXPECT_CODE(&r, 1);
        res_free(&r);
        free(bad);
    }
    free(tok);
}

static void sign_verify_round_trip_es256(void)
{
    round_trip("ES256");
}

static void sign_verify_round_trip_hs256(void)
{
    round_trip("HS256");
}

static void sign_verify_round_trip_rs256(void)
{
    round_trip("RS256");
}

static void sign_verify_round_trip_eddsa(void)
{
    round_trip("EdDSA");
}

static void sign_verify_round_trip_other_algs(void)
{
    round_trip("PS256");
    round_trip("ES384");
    round_trip("ES512");
    round_trip("HS512");
}

static void verify_rejects_expired_and_future(void)
{
    char now_s[32], late[32];
    run_res r;
    time_t now = time(NULL);
    make_key("ES256", "exp.jwk", "exp.jwks");
    snprintf(now_s, sizeof now_s, "%lld", (long long)now);
    snprintf(late, sizeof late, "%lld", (long long)now + 100000);

    RUN(&r, NULL, "token", "sign", "--key", "exp.jwk", "--claims", "{\"sub\":\"a\"}", "--exp-in",
        "1");
    EXPECT_CODE(&r, 0);
    char *tok = token_of(&r);
    res_free(&r);
    if (tok == NULL)
        return;
    RUN(&r, NULL, "token", "verify", "--jwks", "exp.jwks", "--now", now_s, tok);
    EXPECT_CODE(&r, 0);
    res_free(&r);
    RUN(&r, NULL, "token", "verify", "--jwks", "exp.jwks", "--now", late, tok);
    EXPECT_CODE(&r, 1);
    CHECKF(strstr(r.err, "invalid token: token expired") != NULL, "%s", r.err);
    res_free(&r);
    /* Before iat (beyond the leeway): not yet valid. */
    RUN(&r, NULL, "token", "verify", "--jwks", "exp.jwks", "--now", "1000", tok);
    EXPECT_CODE(&r, 1);
    CHECKF(strstr(r.err, "invalid token: token not yet valid") != NULL, "%s", r.err);
    res_free(&r);
    free(tok);

    /* An exp from the claims is kept, and --exp-in may not contradict it. */
    tok = sign("exp.jwk", "{\"sub\":\"a\",\"exp\":4102444800}", 0);
    RUN(&r, NULL, "token", "verify", "--jwks", "exp.jwks", tok ? tok : "x");
    EXPECT_CODE(&r, 0);
    json_t *c = parse(r.out);
    CHECK(json_integer_value(json_object_get(c, "exp")) == 4102444800LL);
    json_decref(c);
    res_free(&r);
    free(tok);
    RUN(&r, NULL, "token", "sign", "--key", "exp.jwk", "--claims", "{\"exp\":4102444800}",
        "--exp-in", "60");
    EXPECT_CODE(&r, 2);
    res_free(&r);
}

static void verify_checks_typ_and_key(void)
{
    run_res r;
    make_key("ES256", "typ.jwk", "typ.jwks");
    make_key("ES256", "other.jwk", "other.jwks");

    RUN(&r, NULL, "token", "sign", "--key", "typ.jwk", "--typ", "JWT", "--claims", "{}");
    EXPECT_CODE(&r, 0);
    char *tok = token_of(&r);
    res_free(&r);
    if (tok == NULL)
        return;
    RUN(&r, NULL, "token", "verify", "--jwks", "typ.jwks", tok);
    EXPECT_CODE(&r, 1);
    CHECKF(strstr(r.err, "invalid token: token type not accepted") != NULL, "%s", r.err);
    res_free(&r);
    RUN(&r, NULL, "token", "verify", "--jwks", "typ.jwks", "--any-typ", tok);
    EXPECT_CODE(&r, 0);
    res_free(&r);
    RUN(&r, NULL, "token", "verify", "--jwks", "typ.jwks", "--typ", "JWT", tok);
    EXPECT_CODE(&r, 0);
    res_free(&r);
    /* Another key's set: the kid is unknown. */
    RUN(&r, NULL, "token", "verify", "--jwks", "other.jwks", "--any-typ", tok);
    EXPECT_CODE(&r, 1);
    CHECKF(strstr(r.err, "invalid token: ") != NULL, "%s", r.err);
    res_free(&r);
    /* Another key given alone (kid not needed to pick it): still refused. */
    RUN(&r, NULL, "token", "verify", "--key", "other.jwk", "--any-typ", tok);
    EXPECT_CODE(&r, 1);
    res_free(&r);
    free(tok);
}

static void verify_jwks_url_not_supported(void)
{
    run_res r;
    RUN(&r, NULL, "token", "verify", "--jwks", "https://example.com/.well-known/jwks.json", "tok");
    EXPECT_CODE(&r, 2);
    CHECKF(strstr(r.err, "not supported") != NULL, "%s", r.err);
    res_free(&r);
    RUN(&r, NULL, "token", "verify", "--jwks", "http://example.com/jwks", "tok");
    EXPECT_CODE(&r, 2);
    res_free(&r);
}

static void verify_accepts_single_jwk_as_jwks(void)
{
    run_res r;
    make_key("EdDSA", "single.jwk", NULL);
    RUN(&r, NULL, "keys", "public", "--key", "single.jwk");
    EXPECT_CODE(&r, 0);
    CHECK(write_tmp("single.pub", r.out) == 0);
    json_t *j = parse(r.out);
    CHECK(j != NULL && json_str(j, "x") != NULL && json_object_get(j, "d") == NULL);
    json_decref(j);
    res_free(&r);
    char *tok = sign("single.jwk", CLAIMS, 0);
    RUN(&r, NULL, "token", "verify", "--jwks", "single.pub", tok ? tok : "x");
    EXPECT_CODE(&r, 0);
    res_free(&r);
    /* The public key cannot sign. */
    RUN(&r, NULL, "token", "sign", "--key", "single.pub", "--claims", "{}");
    EXPECT_CODE(&r, 1);
    CHECK(r.out_len == 0);
    res_free(&r);
    free(tok);
}

static void decode_prints_claims(void)
{
    run_res r;
    make_key("ES256", "dec.jwk", NULL);
    char *tok = sign("dec.jwk", CLAIMS, 0);
    if (tok == NULL)
        return;
    RUN(&r, NULL, "token", "decode", tok);
    EXPECT_CODE(&r, 0);
    json_t *j = parse(r.out);
    json_t *h = json_object_get(j, "header"), *c = json_object_get(j, "claims");
    CHECK(h != NULL && json_str(h, "alg") && strcmp(json_str(h, "alg"), "ES256") == 0);
    CHECK(h != NULL && json_str(h, "typ") && strcmp(json_str(h, "typ"), "at+jwt") == 0);
    CHECK(c != NULL && json_str(c, "sub") && strcmp(json_str(c, "sub"), "alice") == 0);
    CHECK(strstr(r.err, "NOT verified") != NULL);
    json_decref(j);
    res_free(&r);

    RUN(&r, tok, "token", "decode", "-");
    EXPECT_CODE(&r, 0);
    res_free(&r);

    RUN(&r, NULL, "token", "decode", "not.a.token");
    EXPECT_CODE(&r, 1);
    CHECK(r.out_len == 0);
    res_free(&r);
    free(tok);
}

static void sign_reads_claims_from_stdin_and_file(void)
{
    run_res r;
    make_key("HS256", "cl.jwk", NULL);
    RUN(&r, "{\"sub\":\"stdin-user\"}", "token", "sign", "--key", "cl.jwk");
    EXPECT_CODE(&r, 0);
    char *tok = token_of(&r);
    res_free(&r);
    RUN(&r, NULL, "token", "verify", "--key", "cl.jwk", tok ? tok : "x");
    EXPECT_CODE(&r, 0);
    CHECK(strstr(r.out, "stdin-user") != NULL);
    res_free(&r);
    free(tok);

    CHECK(write_tmp("claims.json", "{\"sub\":\"file-user\",\"jti\":\"fixed\"}") == 0);
    RUN(&r, NULL, "token", "sign", "--key", "cl.jwk", "--claims-file", "claims.json");
    EXPECT_CODE(&r, 0);
    tok = token_of(&r);
    res_free(&r);
    RUN(&r, NULL, "token", "verify", "--key", "cl.jwk", tok ? tok : "x");
    EXPECT_CODE(&r, 0);
    json_t *c = parse(r.out);
    CHECK(c != NULL && json_str(c, "jti") && strcmp(json_str(c, "jti"), "fixed") == 0);
    json_decref(c);
    res_free(&r);
    free(tok);

    static const char *const bad[] = {"[1,2]", "{\"a\":1,\"a\":2}", "{", "\"sub\"", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        RUN(&r, NULL, "token", "sign", "--key", "cl.jwk", "--claims", bad[i]);
        CHECKF(r.code == 1, "claims '%s': exit %d", bad[i], r.code);
        CHECK(r.out_len == 0);
        res_free(&r);
    }
    RUN(&r, NULL, "token", "sign", "--key", "missing.jwk", "--claims", "{}");
    EXPECT_CODE(&r, 1);
    res_free(&r);
}

static void keys_public_refuses_oct(void)
{
    run_res r;
    make_key("HS256", "oct.jwk", NULL);
    char *key = read_tmp("oct.jwk", NULL);
    json_t *j = parse(key);
    const char *k = json_str(j, "k");
    CHECK(k != NULL && strlen(k) >= 43);
    RUN(&r, NULL, "keys", "public", "--key", "oct.jwk", "--jwks");
    EXPECT_CODE(&r, 1);
    CHECK(r.out_len == 0);
    CHECK(k == NULL || strstr(r.err, k) == NULL);
    res_free(&r);
    RUN(&r, NULL, "keys", "public", "--key", "oct.jwk");
    EXPECT_CODE(&r, 1);
    CHECK(k == NULL || strstr(r.out, k) == NULL);
    res_free(&r);
    json_decref(j);
    free(key);
}

static void pem_keys_sign_and_verify(void)
{
    run_res r;
    RUN(&r, NULL, "keys", "generate", "--alg", "ES256", "--pem", "--out", "p.pem");
    EXPECT_CODE(&r, 0);
    res_free(&r);
    /* A PEM carries no algorithm. */
    RUN(&r, NULL, "token", "sign", "--key", "p.pem", "--claims", "{}");
    EXPECT_CODE(&r, 1);
    CHECKF(strstr(r.err, "--alg") != NULL, "%s", r.err);
    res_free(&r);
    RUN(&r, NULL, "token", "sign", "--key", "p.pem", "--alg", "ES256", "--claims", CLAIMS);
    EXPECT_CODE(&r, 0);
    char *tok = token_of(&r);
    res_free(&r);
    RUN(&r, NULL, "keys", "public", "--key", "p.pem", "--alg", "ES256", "--jwks");
    EXPECT_CODE(&r, 0);
    CHECK(write_tmp("p.jwks", r.out) == 0);
    res_free(&r);
    RUN(&r, NULL, "token", "verify", "--jwks", "p.jwks", "--aud", "api", tok ? tok : "x");
    EXPECT_CODE(&r, 0);
    res_free(&r);
    RUN(&r, NULL, "token", "verify", "--key", "p.pem", "--alg", "ES256", tok ? tok : "x");
    EXPECT_CODE(&r, 0);
    res_free(&r);
    /* The key pins the algorithm: the same PEM as ES384 is refused. */
    RUN(&r, NULL, "token", "verify", "--key", "p.pem", "--alg", "ES384", tok ? tok : "x");
    EXPECT_CODE(&r, 1);
    res_free(&r);
    free(tok);
}

static void key_files_refuse_symlinks(void)
{
    char target[256], link[256];
    run_res r;
    make_key("ES256", "real.jwk", NULL);
    tpath(target, sizeof target, "real.jwk");
    tpath(link, sizeof link, "link.jwk");
    CHECK(symlink(target, link) == 0);
    RUN(&r, NULL, "token", "sign", "--key", "link.jwk", "--claims", "{}");
    EXPECT_CODE(&r, 1);
    CHECKF(strstr(r.err, "symbolic link") != NULL, "%s", r.err);
    res_free(&r);

    /* --out through a dangling symlink creates nothing. */
    tpath(target, sizeof target, "dangling-target");
    tpath(link, sizeof link, "dangling.jwk");
    CHECK(symlink(target, link) == 0);
    RUN(&r, NULL, "keys", "generate", "--alg", "ES256", "--out", "dangling.jwk");
    EXPECT_CODE(&r, 1);
    CHECK(!exists_tmp("dangling-target"));
    res_free(&r);
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int w = snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (w > 0 && (size_t)w < sizeof p)
            unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    int w = snprintf(tmpdir, sizeof tmpdir, "%s/tsr-cli-XXXXXX",
                     base != NULL && base[0] != '\0' && strlen(base) < 40 ? base : "/tmp");
    if (w < 0 || (size_t)w >= sizeof tmpdir || mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    TSR_RUN(version_prints_version);
    TSR_RUN(help_on_every_command_exits_zero);
    TSR_RUN(unknown_command_and_bad_usage_exit_2);
    TSR_RUN(keys_generate_every_alg_writes_0600_and_refuses_overwrite);
    TSR_RUN(keys_generate_pem_and_stdout);
    TSR_RUN(keys_generate_rejects_alg_none);
    TSR_RUN(sign_verify_round_trip_es256);
    TSR_RUN(sign_verify_round_trip_hs256);
    TSR_RUN(sign_verify_round_trip_rs256);
    TSR_RUN(sign_verify_round_trip_eddsa);
    TSR_RUN(sign_verify_round_trip_other_algs);
    TSR_RUN(verify_rejects_expired_and_future);
    TSR_RUN(verify_checks_typ_and_key);
    TSR_RUN(verify_jwks_url_not_supported);
    TSR_RUN(verify_accepts_single_jwk_as_jwks);
    TSR_RUN(decode_prints_claims);
    TSR_RUN(sign_reads_claims_from_stdin_and_file);
    TSR_RUN(keys_public_refuses_oct);
    TSR_RUN(pem_keys_sign_and_verify);
    TSR_RUN(key_files_refuse_symlinks);

    remove_tmpdir();
    return tsr_test_summary();
}
