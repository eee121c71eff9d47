/* test_cli.c: runs the real `tessera` binary (TSR_TESSERA_BIN) in a temporary
 * directory and checks its output and exit codes: help and usage errors, key
 * generation and key files, sign/verify round trips per algorithm, the
 * rejections (wrong iss/aud/typ/key, tampered, expired), `keys list|rotate` on a
 * temporary SQLite store, and `token verify --jwks URL` against a small HTTP
 * server running in a thread of this test. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

extern char **environ;

/* Extra "NAME=value" entries for the children (NULL-terminated), set by a test. */
static const char *extra_env[4];

/* The children's environment, built before fork (the HTTP server thread may hold
 * locks a forked child must not wait for): ours without proxy settings (the
 * fetch tests talk to 127.0.0.1 directly), plus extra_env. Free with free(). */
static char **child_environ(void)
{
    static const char *const drop[] = {
        "http_proxy=", "HTTP_PROXY=", "https_proxy=", "HTTPS_PROXY=", "all_proxy=", "ALL_PROXY="};
    size_t n = 0, k = 0;
    char **env;

    while (environ[n] != NULL)
        n++;
    env = calloc(n + sizeof extra_env / sizeof extra_env[0] + 1, sizeof *env);
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        for (size_t d = 0; d < sizeof drop / sizeof drop[0]; d++)
            if (strncmp(environ[i], drop[d], strlen(drop[d])) == 0)
                keep = 0;
        if (keep)
            env[k++] = environ[i];
    }
    for (size_t i = 0; i < sizeof extra_env / sizeof extra_env[0] && extra_env[i] != NULL; i++)
        env[k++] = (char *)extra_env[i];
    env[k] = NULL;
    return env;
}

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
    char **envp = child_environ();

    memset(r, 0, sizeof *r);
    r->code = -1;
    argv[argc++] = TSR_TESSERA_BIN;
    for (size_t i = 0; args[i] != NULL && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    if (envp == NULL || pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) {
        CHECK(!"pipe");
        free(envp);
        return;
    }
    pid = fork();
    if (pid < 0) {
        CHECK(!"fork");
        free(envp);
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
        execve(TSR_TESSERA_BIN, (char *const *)argv, envp);
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
    free(envp);
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
    static const char *const cmds[][6] = {
        {"--help"},
        {"help"},
        {"-h"},
        {"version", "--help"},
        {"keys", "--help"},
        {"keys", "generate", "--help"},
        {"keys", "public", "--help"},
        {"keys", "list", "--help"},
        {"keys", "rotate", "--help"},
        {"token", "--help"},
        {"token", "sign", "--help"},
        {"token", "verify", "--help"},
        {"token", "decode", "--help"},
        /* --help wins over other arguments, even bad ones. */
        {"keys", "generate", "--alg", "--help"},
        {"token", "verify", "--bogus", "--help"},
        {"keys", "rotate", "--alg", "none", "--help"},
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
        {"keys", "list", "--bogus"},
        {"keys", "list", "extra"},
        {"keys", "list", "--config"},
        {"keys", "rotate", "--alg", "none"},
        {"keys", "rotate", "--alg", "XS256"},
        {"keys", "rotate", "--alg"},
        {"keys", "rotate", "--alg", "ES256", "--alg", "ES256"},
        {"keys", "generate", "--alg", "ES256", "--config"},
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
        {"token", "verify", "--jwks", "ftp://x", "tok"},
        {"token", "decode", "--config"},
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

/* ---- a tiny HTTP/1.1 server for `token verify --jwks URL` ---- */

/* Serves, one connection at a time on 127.0.0.1 (port 0: the kernel picks):
 *   /jwks.json   200, srv_jwks              /oct.json     200, srv_oct
 *   /private.json 200, srv_priv (a set holding a private EC key)
 *   /discovery   200, an OpenID discovery document (not a key set)
 *   /big.json    200, 70000 bytes with Content-Length
 *   /big-chunked 200, 70000 bytes without Content-Length (connection close)
 *   /moved       302 to /jwks.json          /loop         302 to /loop
 *   /to-ftp      302 to ftp://127.0.0.1/x   anything else 404 */
typedef struct http_srv {
    int fd;
    int port;
    pthread_t th;
    atomic_int stop;
    atomic_int requests;
} http_srv;

static char *srv_jwks; /* bodies, set before the server starts */
static char *srv_oct;
static char *srv_priv;
#define BIG_BODY 70000

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the client gave up (e.g. body too large): fine */
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *location, const char *body, size_t n,
                    int with_length)
{
    char head[512];
    int w = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: application/json\r\n",
                     status,
                     status == 200   ? "OK"
                     : status == 302 ? "Found"
                                     : "Not Found");
    if (w < 0 || (size_t)w >= sizeof head)
        return;
    if (location != NULL)
        w += snprintf(head + w, sizeof head - (size_t)w, "Location: %s\r\n", location);
    if (with_length)
        w += snprintf(head + w, sizeof head - (size_t)w, "Content-Length: %zu\r\n", n);
    w += snprintf(head + w, sizeof head - (size_t)w, "\r\n");
    if (w < 0 || (size_t)w >= sizeof head)
        return;
    send_all(fd, head, (size_t)w);
    send_all(fd, body, n);
}

static void serve_one(int fd)
{
    char req[8192], path[256];
    size_t n = 0;

    /* The request head, up to its blank line. */
    while (n + 1 < sizeof req) {
        ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    req[n] = '\0';
    if (sscanf(req, "GET %255s HTTP/1.", path) != 1) {
        respond(fd, 404, NULL, "", 0, 1);
        return;
    }
    if (strcmp(path, "/jwks.json") == 0) {
        respond(fd, 200, NULL, srv_jwks, strlen(srv_jwks), 1);
    } else if (strcmp(path, "/oct.json") == 0) {
        respond(fd, 200, NULL, srv_oct, strlen(srv_oct), 1);
    } else if (strcmp(path, "/private.json") == 0) {
        respond(fd, 200, NULL, srv_priv, strlen(srv_priv), 1);
    } else if (strcmp(path, "/big.json") == 0 || strcmp(path, "/big-chunked") == 0) {
        char *big = malloc(BIG_BODY);
        if (big == NULL)
            return;
        memset(big, ' ', BIG_BODY);
        memcpy(big, srv_jwks, strlen(srv_jwks)); /* valid JSON, then blanks past the cap */
        respond(fd, 200, NULL, big, BIG_BODY, strcmp(path, "/big.json") == 0);
        free(big);
    } else if (strcmp(path, "/discovery") == 0) {
        static const char d[] = "{\"issuer\":\"http://127.0.0.1\",\"jwks_uri\":\"http://"
                                "127.0.0.1/jwks.json\"}";
        respond(fd, 200, NULL, d, sizeof d - 1, 1);
    } else if (strcmp(path, "/moved") == 0) {
        respond(fd, 302, "/jwks.json", "", 0, 1);
    } else if (strcmp(path, "/loop") == 0) {
        respond(fd, 302, "/loop", "", 0, 1);
    } else if (strcmp(path, "/to-ftp") == 0) {
        respond(fd, 302, "ftp://127.0.0.1/x", "", 0, 1);
    } else {
        static const char nf[] = "{\"error\":\"not found\"}";
        respond(fd, 404, NULL, nf, sizeof nf - 1, 1);
    }
}

static void *srv_main(void *arg)
{
    http_srv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        /* The timeout only bounds how long stopping takes. */
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        atomic_fetch_add(&s->requests, 1);
        serve_one(c);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

/* Binds 127.0.0.1:0 and returns the socket; *port gets the port. -1 on failure. */
static int listen_loopback(int *port)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int srv_start(http_srv *s)
{
    memset(s, 0, sizeof *s);
    atomic_init(&s->stop, 0);
    atomic_init(&s->requests, 0);
    s->fd = listen_loopback(&s->port);
    if (s->fd < 0)
        return -1;
    if (pthread_create(&s->th, NULL, srv_main, s) != 0) {
        close(s->fd);
        return -1;
    }
    return 0;
}

static void srv_stop(http_srv *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->fd);
}

static void url_of(char *buf, size_t cap, int port, const char *path)
{
    int w = snprintf(buf, cap, "http://127.0.0.1:%d%s", port, path);
    if (w < 0 || (size_t)w >= cap)
        buf[0] = '\0';
}

/* Runs `token verify --jwks URL tok` and checks the exit code; the token never
 * appears on stderr. Returns the stderr text (free()). */
static char *verify_url(const char *url, const char *tok, int want)
{
    run_res r;
    char *err;
    RUN(&r, NULL, "token", "verify", "--jwks", url, tok);
    CHECKF(r.code == want, "%s: exit %d, want %d; stderr: %s", url, r.code, want, r.err);
    CHECKF(strstr(r.err, tok) == NULL, "%s: token on stderr", url);
    if (want != 0)
        CHECKF(r.out_len == 0, "%s: output on failure", url);
    err = strdup(r.err);
    res_free(&r);
    return err;
}

static void verify_jwks_url(void)
{
    http_srv srv;
    char url[256], dead_url[256];
    char *err;
    int dead_port = 0, dead_fd;
    run_res r;

    make_key("ES256", "url.jwk", "url.jwks");
    make_key("HS256", "url-oct.jwk", NULL);
    srv_jwks = read_tmp("url.jwks", NULL);
    char *oct_key = read_tmp("url-oct.jwk", NULL);
    char *priv_key = read_tmp("url.jwk", NULL);
    size_t octn = oct_key ? strlen(oct_key) + 16 : 16;
    size_t privn = priv_key ? strlen(priv_key) + 16 : 16;
    srv_oct = malloc(octn);
    srv_priv = malloc(privn);
    CHECK(srv_jwks != NULL && oct_key != NULL && srv_oct != NULL);
    CHECK(priv_key != NULL && srv_priv != NULL);
    if (srv_jwks == NULL || oct_key == NULL || srv_oct == NULL || priv_key == NULL ||
        srv_priv == NULL)
        goto done_nosrv;
    snprintf(srv_oct, octn, "{\"keys\":[%s]}", oct_key);
    snprintf(srv_priv, privn, "{\"keys\":[%s]}", priv_key);
    CHECK(srv_start(&srv) == 0);
    char *tok = sign("url.jwk", CLAIMS, 0);
    if (tok == NULL)
        goto done;

    /* Valid token: exit 0 and the claims on stdout. */
    url_of(url, sizeof url, srv.port, "/jwks.json");
    RUN(&r, NULL, "token", "verify", "--jwks", url, "--iss", "https://issuer.test", "--aud", "api",
        tok);
    EXPECT_CODE(&r, 0);
    json_t *c = parse(r.out);
    CHECKF(c != NULL && json_str(c, "sub") && strcmp(json_str(c, "sub"), "alice") == 0, "%s",
           r.out);
    json_decref(c);
    res_free(&r);
    /* The same checks as with a file: a wrong audience is refused. */
    RUN(&r, NULL, "token", "verify", "--jwks", url, "--aud", "other", tok);
    EXPECT_CODE(&r, 1);
    CHECKF(strstr(r.err, "invalid token: token audience not accepted") != NULL, "%s", r.err);
    res_free(&r);

    /* Tampered signature: exit 1. */
    char *bad = strdup(tok);
    if (bad != NULL) {
        char *sig = strrchr(bad, '.') + 1;
        sig[5] = sig[5] == 'A' ? 'B' : 'A';
        free(verify_url(url, bad, 1));
        free(bad);
    }

    /* A redirect within http is followed. */
    url_of(url, sizeof url, srv.port, "/moved");
    free(verify_url(url, tok, 0));

    /* 404: exit 1, one line naming the URL and the status. */
    url_of(url, sizeof url, srv.port, "/missing.json");
    err = verify_url(url, tok, 1);
    CHECKF(err && strstr(err, url) != NULL && strstr(err, "404") != NULL, "%s", err);
    CHECKF(err && strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
    free(err);

    /* Oversized body, announced by Content-Length or not: exit 1. */
    url_of(url, sizeof url, srv.port, "/big.json");
    err = verify_url(url, tok, 1);
    CHECKF(err && strstr(err, "larger than 65536") != NULL, "%s", err);
    free(err);
    url_of(url, sizeof url, srv.port, "/big-chunked");
    err = verify_url(url, tok, 1);
    CHECKF(err && strstr(err, "larger than 65536") != NULL, "%s", err);
    free(err);

    /* Redirect loops stop after 3; a redirect to another scheme is not followed. */
    url_of(url, sizeof url, srv.port, "/loop");
    err = verify_url(url, tok, 1);
    CHECKF(err && strstr(err, "cannot fetch") != NULL, "%s", err);
    free(err);
    url_of(url, sizeof url, srv.port, "/to-ftp");
    err = verify_url(url, tok, 1);
    CHECKF(err && strstr(err, "cannot fetch") != NULL, "%s", err);
    free(err);

    /* A published symmetric key is refused (anyone could sign with it). */
    url_of(url, sizeof url, srv.port, "/oct.json");
    err = verify_url(url, tok, 1);
    CHECKF(err && strstr(err, "symmetric") != NULL, "%s", err);
    free(err);
    url_of(url, sizeof url, srv.port, "/discovery");
    err = verify_url(url, tok, 1);
    CHECKF(err && strstr(err, "discovery document") != NULL, "%s", err);
    free(err);
    url_of(url, sizeof url, srv.port, "/private.json");
    err = verify_url(url, tok, 1);
    CHECKF(err && strstr(err, "private key material") != NULL, "%s", err);
    free(err);

    /* The user name and password of a URL never appear in messages. */
    {
        char cred[256];
        int w = snprintf(cred, sizeof cred, "http://admin:s3cretpw@127.0.0.1:%d/missing", srv.port);
        CHECK(w > 0 && (size_t)w < sizeof cred);
        err = verify_url(cred, tok, 1);
        CHECKF(err && strstr(err, "s3cretpw") == NULL && strstr(err, "127.0.0.1") != NULL, "%s",
               err);
        free(err);
    }

    /* Nothing listening: exit 1 naming the URL. The port was bound, then freed. */
    dead_fd = listen_loopback(&dead_port);
    CHECK(dead_fd >= 0);
    if (dead_fd >= 0)
        close(dead_fd);
    url_of(dead_url, sizeof dead_url, dead_port, "/jwks.json");
    err = verify_url(dead_url, tok, 1);
    CHECKF(err && strstr(err, dead_url) != NULL, "%s", err);
    free(err);

    CHECK(atomic_load(&srv.requests) >= 10);
    free(tok);
done:
    srv_stop(&srv);
done_nosrv:
    free(oct_key);
    free(priv_key);
    free(srv_jwks);
    free(srv_oct);
    free(srv_priv);
    srv_jwks = srv_oct = srv_priv = NULL;
}

static void verify_jwks_url_other_schemes_are_usage_errors(void)
{
    /* Exit 2: the argument is wrong by its form, found before any I/O (like an
     * unknown --alg). Only http:// and https:// are fetched; a file is named by
     * its path, so file:// is refused too. */
    static const char *const urls[] = {"ftp://x", "file:///etc/passwd", "gopher://127.0.0.1/",
                                       "FTP://x/jwks", "http://exa mple/"};
    run_res r;
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        RUN(&r, NULL, "token", "verify", "--jwks", urls[i], "tok");
        CHECKF(r.code == 2, "%s: exit %d", urls[i], r.code);
        CHECKF(r.out_len == 0, "%s: output", urls[i]);
        CHECKF(strstr(r.err, i < 4 ? "only http:// and https://" : "malformed URL") != NULL,
               "%s: %s", urls[i], r.err);
        res_free(&r);
    }
}

/* ---- keys list and rotate on a store ---- */

/* `keys list --json` parsed; NULL (after a failed CHECK) on error. */
static json_t *list_keys(const char *config)
{
    run_res r;
    json_t *j;
    if (config != NULL)
        RUN(&r, NULL, "keys", "list", "--json", "--config", config);
    else
        RUN(&r, NULL, "keys", "list", "--json");
    EXPECT_CODE(&r, 0);
    j = parse(r.out);
    CHECKF(j != NULL && json_is_array(json_object_get(j, "keys")), "%s", r.out);
    /* Never private material: no JWK members at all, only the listed fields. */
    CHECKF(strstr(r.out, "\"d\"") == NULL && strstr(r.out, "\"k\"") == NULL &&
               strstr(r.out, "jwk") == NULL,
           "%s", r.out);
    res_free(&r);
    return j;
}

/* Number of keys in state; *kid (may be NULL) gets the last one's kid, *alg its alg. */
static size_t count_state(json_t *list, const char *state, const char **kid, const char **alg)
{
    size_t n = 0, i;
    json_t *k;
    json_array_foreach(json_object_get(list, "keys"), i, k)
    {
        if (json_str(k, "state") && strcmp(json_str(k, "state"), state) == 0) {
            n++;
            if (kid != NULL)
                *kid = json_str(k, "kid");
            if (alg != NULL)
                *alg = json_str(k, "alg");
        }
    }
    return n;
}

static int has_retired(json_t *list, const char *kid)
{
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(list, "keys"), i, k)
    {
        if (kid && json_str(k, "kid") && strcmp(json_str(k, "kid"), kid) == 0 &&
            strcmp(json_str(k, "state"), "retired") == 0 &&
            json_integer_value(json_object_get(k, "retired_at")) > 0 &&
            json_integer_value(json_object_get(k, "publish_until")) >=
                json_integer_value(json_object_get(k, "retired_at")))
            return 1;
    }
    return 0;
}

/* `keys rotate` with args; returns the kid printed (strdup) or NULL. */
static char *rotate(const char *config, const char *alg, int want)
{
    run_res r;
    char *kid = NULL;
    if (alg != NULL)
        RUN(&r, NULL, "keys", "rotate", "--config", config, "--alg", alg);
    else
        RUN(&r, NULL, "keys", "rotate", "--config", config);
    EXPECT_CODE(&r, want);
    if (r.code == 0) {
        kid = token_of(&r);
        CHECKF(kid != NULL && strlen(kid) >= 16 && strchr(r.out, '\n') == r.out + strlen(kid), "%s",
               r.out);
        CHECK(strstr(r.err, "pick the change up") != NULL);
    } else {
        CHECK(r.out_len == 0);
    }
    res_free(&r);
    return kid;
}

static void keys_rotate_and_list_on_sqlite(void)
{
    char ini[512];
    const char *kid = NULL, *alg = NULL;
    json_t *l;

    snprintf(ini, sizeof ini, "[store]\nurl = sqlite:%s/keys.db\n", tmpdir);
    CHECK(write_tmp("keys.ini", ini) == 0);

    /* A fresh store: nothing listed, and listing creates no key. */
    l = list_keys("keys.ini");
    CHECK(json_array_size(json_object_get(l, "keys")) == 0);
    json_decref(l);

    /* The first rotate makes the first keys, then rotates them. */
    char *k1 = rotate("keys.ini", NULL, 0);
    l = list_keys("keys.ini");
    CHECK(count_state(l, "active", &kid, &alg) == 1);
    CHECKF(k1 && kid && strcmp(k1, kid) == 0, "active %s, rotate said %s", kid, k1);
    CHECK(alg && strcmp(alg, "ES256") == 0); /* tokens.alg default */
    CHECK(count_state(l, "retired", NULL, NULL) == 1);
    const char *next = NULL;
    CHECK(count_state(l, "next", &next, NULL) == 1);
    char *n1 = next ? strdup(next) : NULL;
    json_decref(l);

    /* Again: the next key becomes active, the active one is retired. */
    char *k2 = rotate("keys.ini", NULL, 0);
    CHECKF(k2 && n1 && strcmp(k2, n1) == 0, "new active %s, previous next %s", k2, n1);
    l = list_keys("keys.ini");
    CHECK(count_state(l, "active", &kid, NULL) == 1);
    CHECK(k2 && kid && strcmp(k2, kid) == 0);
    CHECK(count_state(l, "next", NULL, NULL) == 1);
    CHECKF(has_retired(l, k1), "previous active %s not retired", k1);
    json_decref(l);

    /* alg none or unknown: usage error, nothing changed. */
    CHECK(rotate("keys.ini", "none", 2) == NULL);
    CHECK(rotate("keys.ini", "es256", 2) == NULL);
    l = list_keys("keys.ini");
    CHECK(count_state(l, "active", &kid, NULL) == 1);
    CHECK(k2 && kid && strcmp(k2, kid) == 0);
    json_decref(l);

    /* Another algorithm: a new RS256 key becomes active, and the next one too. */
    char *k3 = rotate("keys.ini", "RS256", 0);
    l = list_keys("keys.ini");
    CHECK(count_state(l, "active", &kid, &alg) == 1);
    CHECK(k3 && kid && strcmp(k3, kid) == 0);
    CHECKF(alg && strcmp(alg, "RS256") == 0, "active alg %s", alg);
    CHECK(count_state(l, "next", NULL, &alg) == 1);
    CHECKF(alg && strcmp(alg, "RS256") == 0, "next alg %s", alg);
    CHECK(has_retired(l, k2));
    json_decref(l);

    /* The table names every key with its state and UTC dates. */
    run_res r;
    RUN(&r, NULL, "keys", "list", "--config", "keys.ini");
    EXPECT_CODE(&r, 0);
    CHECK(strncmp(r.out, "KID ", 4) == 0);
    CHECK(k3 && strstr(r.out, k3) != NULL && k1 && strstr(r.out, k1) != NULL);
    CHECK(strstr(r.out, " active ") != NULL && strstr(r.out, " retired ") != NULL);
    CHECK(strstr(r.out, "Z  ") != NULL);
    res_free(&r);

    free(k1);
    free(k2);
    free(k3);
    free(n1);
}

static void keys_store_from_environment(void)
{
    char env[256];
    const char *alg = NULL;
    run_res r;

    snprintf(env, sizeof env, "TESSERA_STORE_URL=sqlite:%s/env.db", tmpdir);
    extra_env[0] = env;
    extra_env[1] = "TESSERA_TOKENS_ALG=EdDSA";
    RUN(&r, NULL, "keys", "rotate");
    EXPECT_CODE(&r, 0);
    res_free(&r);
    json_t *l = list_keys(NULL);
    CHECK(json_array_size(json_object_get(l, "keys")) == 3);
    CHECK(count_state(l, "active", NULL, &alg) == 1);
    CHECKF(alg && strcmp(alg, "EdDSA") == 0, "%s", alg);
    json_decref(l);
    extra_env[0] = extra_env[1] = NULL;
    CHECK(exists_tmp("env.db"));
    CHECK(!exists_tmp("var")); /* the default store was not touched */

    /* A bad config: exit 1, nothing else. */
    RUN(&r, NULL, "keys", "list", "--config", "missing.ini");
    EXPECT_CODE(&r, 1);
    CHECK(r.out_len == 0);
    res_free(&r);
}

static void offline_commands_take_config(void)
{
    run_res r;
    CHECK(write_tmp("off.ini", "[log]\nlevel = warn\n") == 0);
    CHECK(write_tmp("bad.ini", "[nosuch]\nkey = 1\n") == 0);
    RUN(&r, NULL, "keys", "generate", "--alg", "ES256", "--out", "cfg.jwk", "--config", "off.ini");
    EXPECT_CODE(&r, 0);
    res_free(&r);
    RUN(&r, NULL, "keys", "public", "--key", "cfg.jwk", "--jwks", "--config=off.ini");
    EXPECT_CODE(&r, 0);
    CHECK(write_tmp("cfg.jwks", r.out) == 0);
    res_free(&r);
    RUN(&r, NULL, "token", "sign", "--key", "cfg.jwk", "--claims", "{}", "--config", "off.ini");
    EXPECT_CODE(&r, 0);
    char *tok = token_of(&r);
    res_free(&r);
    RUN(&r, NULL, "token", "verify", "--jwks", "cfg.jwks", "--config", "off.ini", tok ? tok : "x");
    EXPECT_CODE(&r, 0);
    res_free(&r);
    RUN(&r, NULL, "token", "decode", "--config", "off.ini", tok ? tok : "x");
    EXPECT_CODE(&r, 0);
    res_free(&r);
    /* A file that does not load is a failure, before anything is done. */
    RUN(&r, NULL, "keys", "generate", "--alg", "ES256", "--out", "cfg2.jwk", "--config", "bad.ini");
    EXPECT_CODE(&r, 1);
    CHECK(!exists_tmp("cfg2.jwk"));
    res_free(&r);
    RUN(&r, NULL, "token", "verify", "--jwks", "cfg.jwks", "--config", "nope.ini", tok ? tok : "x");
    EXPECT_CODE(&r, 1);
    CHECK(r.out_len == 0);
    res_free(&r);
    free(tok);
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
    TSR_RUN(verify_jwks_url);
    TSR_RUN(verify_jwks_url_other_schemes_are_usage_errors);
    TSR_RUN(verify_accepts_single_jwk_as_jwks);
    TSR_RUN(decode_prints_claims);
    TSR_RUN(sign_reads_claims_from_stdin_and_file);
    TSR_RUN(keys_public_refuses_oct);
    TSR_RUN(pem_keys_sign_and_verify);
    TSR_RUN(key_files_refuse_symlinks);
    TSR_RUN(keys_rotate_and_list_on_sqlite);
    TSR_RUN(keys_store_from_environment);
    TSR_RUN(offline_commands_take_config);

    remove_tmpdir();
    return tsr_test_summary();
}
