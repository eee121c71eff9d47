/* test_config.c: defaults, the INI file, environment overrides, strict values,
 * typo protection, listen addresses and loopback detection. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "harness.h"

static char tmp_path[64];

/* Writes text to a fresh temporary file; returns its path (static). */
static const char *write_ini(const char *text)
{
    int k = snprintf(tmp_path, sizeof tmp_path, "/tmp/tsr_test_config_XXXXXX");
    if (k < 0 || (size_t)k >= sizeof tmp_path)
        return NULL;
    int fd = mkstemp(tmp_path);
    if (fd < 0)
        return NULL;
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n) {
        close(fd);
        return NULL;
    }
    close(fd);
    return tmp_path;
}

static void unlink_ini(void)
{
    if (tmp_path[0] != '\0')
        unlink(tmp_path);
    tmp_path[0] = '\0';
}

static char *const no_env[] = {NULL};

static void defaults_match_spec(void)
{
    tsr_config c;
    char err[TSR_CONFIG_ERR_MAX];

    CHECK(tsr_config_load_env(NULL, no_env, &c, err, sizeof err) == TSR_OK);
    CHECK(err[0] == '\0');
    CHECK(strcmp(c.server.listen, "127.0.0.1:8080") == 0);
    CHECK(strcmp(c.server.public_url, "") == 0);
    CHECK(c.server.threads >= 1);
    CHECK(c.server.threads == (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    CHECK(strcmp(c.server.tls_cert, "") == 0 && strcmp(c.server.tls_key, "") == 0);
    CHECK(c.server.allow_insecure_http == 0);
    CHECK(strcmp(c.store.url, "sqlite:./var/tessera.db") == 0);
    CHECK(strcmp(c.cache.url, "memory") == 0);
    CHECK(strcmp(c.session.cookie_name, "__Host-tessera") == 0);
    CHECK(c.session.same_site == TSR_SAME_SITE_LAX);
    CHECK(c.session.idle_ttl == 1800);
    CHECK(c.session.absolute_ttl == 86400);
    CHECK(c.session.max_per_user == 100);
    CHECK(strcmp(c.tokens.alg, "ES256") == 0);
    CHECK(strcmp(c.tokens.issuer, "") == 0);
    CHECK(strcmp(c.tokens.audience, "tessera") == 0);
    CHECK(c.tokens.access_ttl == 900);
    CHECK(c.tokens.refresh_ttl == 30 * 86400);
    CHECK(c.tokens.refresh_idle_ttl == 7 * 86400);
    CHECK(c.tokens.reuse_grace == 10);
    CHECK(c.tokens.key_rotation == 0);
    CHECK(c.verify.bearer == TSR_VERIFY_REVOCATION_LIST);
    CHECK(c.verify.cache_entries == 65536);
    CHECK(c.security.argon2_memory_kib == 19456);
    CHECK(c.security.argon2_iterations == 2);
    CHECK(c.security.argon2_parallelism == 1);
    CHECK(c.security.login_max_failures == 10);
    CHECK(c.security.login_window == 900);
    CHECK(strcmp(c.security.allowed_origins, "") == 0);
    CHECK(c.signup.open == 1);
    CHECK(strcmp(c.admin.key, "") == 0);
    CHECK(c.log.level == TSR_LOG_INFO);
    tsr_config_reset(&c);
    CHECK(c.server.listen == NULL);
    tsr_config_reset(NULL);
}

static void reads_every_section_from_a_file(void)
{
    tsr_config c;
    char err[TSR_CONFIG_ERR_MAX];
    const char *path = write_ini(
        "; tessera test config\n"
        "[server]\n"
        "listen = [::1]:9090\n"
        "public_url = https://auth.example.com\n"
        "threads = 3\n"
        "tls_cert = /etc/cert.pem\n"
        "tls_key = /etc/key.pem\n"
        "allow_insecure_http = yes\n"
        "[store]\nurl = sqlite:/tmp/x.db\n"
        "[cache]\nurl = redis://127.0.0.1:6379/0\n"
        "[session]\ncookie_name = sid\nsame_site = Strict\nidle_ttl = 10m\n"
        "absolute_ttl = 2h\nmax_per_user = 5\n"
        "[tokens]\nalg = EdDSA\nissuer = https://iss\naudience = api\naccess_ttl = 60\n"
        "refresh_ttl = 7d\nrefresh_idle_ttl = 1d\nreuse_grace = 0\nkey_rotation = 30d\n"
        "[verify]\nbearer = stateful\ncache_entries = 0\n"
        "[security]\nargon2_memory_kib = 8\nargon2_iterations = 1\nargon2_parallelism = 1\n"
        "login_max_failures = 3\nlogin_window = 90s\n"
        "allowed_origins = https://a.example.com, http://localhost:3000\n"
        "[signup]\nopen = false\n"
        "[admin]\nkey = file-admin-key-0123456789\n"
        "[log]\nlevel = debug\n");
    CHECK(path != NULL);
    CHECK(tsr_config_load_env(path, no_env, &c, err, sizeof err) == TSR_OK);
    CHECKF(err[0] == '\0', "%s", err);
    CHECK(strcmp(c.server.listen, "[::1]:9090") == 0);
    CHECK(strcmp(c.server.public_url, "https://auth.example.com") == 0);
    CHECK(c.server.threads == 3);
    CHECK(strcmp(c.server.tls_cert, "/etc/cert.pem") == 0);
    CHECK(c.server.allow_insecure_http == 1);
    CHECK(strcmp(c.store.url, "sqlite:/tmp/x.db") == 0);
    CHECK(strcmp(c.cache.url, "redis://127.0.0.1:6379/0") == 0);
    CHECK(strcmp(c.session.cookie_name, "sid") == 0);
    CHECK(c.session.same_site == TSR_SAME_SITE_STRICT);
    CHECK(c.session.idle_ttl == 600);
    CHECK(c.session.absolute_ttl == 7200);
    CHECK(c.session.max_per_user == 5);
    CHECK(strcmp(c.tokens.alg, "EdDSA") == 0);
    CHECK(strcmp(c.tokens.issuer, "https://iss") == 0);
    CHECK(strcmp(c.tokens.audience, "api") == 0);
    CHECK(c.tokens.access_ttl == 60);
    CHECK(c.tokens.refresh_ttl == 7 * 86400);
    CHECK(c.tokens.refresh_idle_ttl == 86400);
    CHECK(c.tokens.reuse_grace == 0);
    CHECK(c.tokens.key_rotation == 30 * 86400);
    CHECK(c.verify.bearer == TSR_VERIFY_STATEFUL);
    CHECK(c.verify.cache_entries == 0);
    CHECK(c.security.argon2_memory_kib == 8);
    CHECK(c.security.argon2_iterations == 1);
    CHECK(c.security.login_max_failures == 3);
    CHECK(c.security.login_window == 90);
    CHECK(strcmp(c.security.allowed_origins, "https://a.example.com, http://localhost:3000") == 0);
    CHECK(c.signup.open == 0);
    CHECK(strcmp(c.admin.key, "file-admin-key-0123456789") == 0);
    CHECK(c.log.level == TSR_LOG_DEBUG);
    tsr_config_reset(&c);
    unlink_ini();
}

static void env_overrides_file(void)
{
    tsr_config c;
    char err[TSR_CONFIG_ERR_MAX];
    const char *path = write_ini("[server]\nlisten = 127.0.0.1:7000\n[admin]\nkey = from-the-file-0123\n");
    char *env[] = {"PATH=/bin", "TESSERA_SERVER_LISTEN=0.0.0.0:80",
                   "TESSERA_ADMIN_KEY=from-the-env-0123456", "TESSERA_SESSION_IDLE_TTL=2h",
                   "TESSERA_SIGNUP_OPEN=0", "TESSERA_BIN=/usr/bin/tessera", NULL};

    CHECK(path != NULL);
    CHECK(tsr_config_load_env(path, env, &c, err, sizeof err) == TSR_OK);
    CHECKF(err[0] == '\0', "%s", err);
    CHECK(strcmp(c.server.listen, "0.0.0.0:80") == 0);
    CHECK(strcmp(c.admin.key, "from-the-env-0123456") == 0);
    CHECK(c.session.idle_ttl == 7200);
    CHECK(c.signup.open == 0);
    tsr_config_reset(&c);
    unlink_ini();
}

static void env_works_without_a_file(void)
{
    tsr_config c;
    char err[TSR_CONFIG_ERR_MAX];
    char *env[] = {"TESSERA_LOG_LEVEL=error", "TESSERA_VERIFY_BEARER=stateless", NULL};

    CHECK(tsr_config_load_env(NULL, env, &c, err, sizeof err) == TSR_OK);
    CHECK(c.log.level == TSR_LOG_ERROR);
    CHECK(c.verify.bearer == TSR_VERIFY_STATELESS);
    tsr_config_reset(&c);

    /* tsr_config_load reads the real environment. */
    CHECK(setenv("TESSERA_SERVER_THREADS", "7", 1) == 0);
    CHECK(tsr_config_load(NULL, &c, err, sizeof err) == TSR_OK);
    CHECK(c.server.threads == 7);
    tsr_config_reset(&c);
    CHECK(unsetenv("TESSERA_SERVER_THREADS") == 0);
}

static void env_typo_in_known_section_is_rejected(void)
{
    tsr_config c;
    char err[TSR_CONFIG_ERR_MAX];
    char *env[] = {"TESSERA_SERVER_LISEN=0.0.0.0:80", NULL};

    CHECK(tsr_config_load_env(NULL, env, &c, err, sizeof err) == TSR_ERR_INVALID);
    CHECKF(strstr(err, "TESSERA_SERVER_LISEN") != NULL, "%s", err);
    CHECK(c.server.listen == NULL); /* zeroed on failure */
}

static void durations_parse_strictly(void)
{
    static const struct {
        const char *s;
        int64_t v;
    } good[] = {{"0", 0},         {"90", 90},     {"15m", 900},  {"2h", 7200},
                {"7d", 604800},   {"45s", 45},    {"1d", 86400}, {"3650d", 3650LL * 86400}};
    static const char *const bad[] = {"",     "m",    "15M", "1.5h", "-5",   "+5",   " 5",
                                      "5 ",   "5mm",  "1w",  "0x10", "15 m", "3651d",
                                      "99999999999999999999", "1e3", "h5"};
    int64_t v = 0;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECKF(tsr_config_parse_duration(good[i].s, &v) == TSR_OK && v == good[i].v, "%s",
               good[i].s);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 123;
        CHECKF(tsr_config_parse_duration(bad[i], &v) == TSR_ERR_INVALID && v == 0, "'%s'",
               bad[i]);
    }
}

static void booleans_and_integers_parse_strictly(void)
{
    int b = -1;
    int64_t v = 0;

    CHECK(tsr_config_parse_bool("true", &b) == TSR_OK && b == 1);
    CHECK(tsr_config_parse_bool("YES", &b) == TSR_OK && b == 1);
    CHECK(tsr_config_parse_bool("1", &b) == TSR_OK && b == 1);
    CHECK(tsr_config_parse_bool("no", &b) == TSR_OK && b == 0);
    CHECK(tsr_config_parse_bool("0", &b) == TSR_OK && b == 0);
    CHECK(tsr_config_parse_bool("False", &b) == TSR_OK && b == 0);
    CHECK(tsr_config_parse_bool("2", &b) == TSR_ERR_INVALID);
    CHECK(tsr_config_parse_bool("", &b) == TSR_ERR_INVALID);
    CHECK(tsr_config_parse_bool("truee", &b) == TSR_ERR_INVALID);

    CHECK(tsr_config_parse_int("42", 0, 100, &v) == TSR_OK && v == 42);
    CHECK(tsr_config_parse_int("-3", -5, 5, &v) == TSR_OK && v == -3);
    CHECK(tsr_config_parse_int("101", 0, 100, &v) == TSR_ERR_INVALID && v == 0);
    CHECK(tsr_config_parse_int("4x", 0, 100, &v) == TSR_ERR_INVALID);
    CHECK(tsr_config_parse_int(" 4", 0, 100, &v) == TSR_ERR_INVALID);
    CHECK(tsr_config_parse_int("+4", 0, 100, &v) == TSR_ERR_INVALID);
    CHECK(tsr_config_parse_int("", 0, 100, &v) == TSR_ERR_INVALID);
    CHECK(tsr_config_parse_int("99999999999999999999", 0, INT64_MAX, &v) == TSR_ERR_INVALID);
}

/* Each bad file fails with a message naming the problem (and never the value). */
static void bad_values_are_rejected_with_a_message(void)
{
    static const struct {
        const char *ini;
        const char *must_mention;
    } cases[] = {
        {"[session]\nidle_ttl = 15 minutes\n", "idle_ttl"},
        {"[session]\nidle_ttl = 0\n", "idle_ttl"},
        {"[session]\nsame_site = None\n", "same_site"},
        {"[session]\ncookie_name = a b\n", "cookie_name"},
        {"[server]\nthreads = 0\n", "threads"},
        {"[server]\nthreads = many\n", "threads"},
        {"[server]\nallow_insecure_http = maybe\n", "allow_insecure_http"},
        {"[server]\nlisten = localhost\n", "listen"},
        {"[server]\nlisten = 127.0.0.1:99999\n", "listen"},
        {"[server]\ntls_cert = /c.pem\n", "tls_key"},
        {"[server]\npublic_url = ftp://x\n", "public_url"},
        {"[tokens]\nalg = none\n", "alg"},
        {"[tokens]\naudience =\n", "audience"},
        {"[verify]\nbearer = sometimes\n", "bearer"},
        {"[security]\nargon2_parallelism = 4\n", "argon2_parallelism"},
        {"[security]\nargon2_memory_kib = 4\n", "argon2_memory_kib"},
        {"[security]\nallowed_origins = example.com\n", "allowed_origins"},
        {"[log]\nlevel = verbose\n", "level"},
        {"[store]\nurl =\n", "url"},
        {"[server]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n", "twice"},
        {"listen = 127.0.0.1:1\n", "outside"},
        {"[server]\nthis is not ini\n", "line 2"},
    };
    char err[TSR_CONFIG_ERR_MAX];
    tsr_config c;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = write_ini(cases[i].ini);
        CHECK(path != NULL);
        tsr_err rc = tsr_config_load_env(path, no_env, &c, err, sizeof err);
        CHECKF(rc == TSR_ERR_INVALID, "case %zu rc %d", i, (int)rc);
        CHECKF(strstr(err, cases[i].must_mention) != NULL, "case %zu: '%s'", i, err);
        CHECK(c.server.listen == NULL);
        unlink_ini();
    }
    /* The same through the environment. */
    char *env[] = {"TESSERA_SESSION_ABSOLUTE_TTL=1y", NULL};
    CHECK(tsr_config_load_env(NULL, env, &c, err, sizeof err) == TSR_ERR_INVALID);
    CHECKF(strstr(err, "TESSERA_SESSION_ABSOLUTE_TTL") != NULL && strstr(err, "absolute_ttl"),
           "%s", err);
}

static void secret_values_never_appear_in_messages(void)
{
    char err[TSR_CONFIG_ERR_MAX];
    tsr_config c;
    const char *path = write_ini("[server]\nthreads = s3cr3t-value\n");
    CHECK(tsr_config_load_env(path, no_env, &c, err, sizeof err) == TSR_ERR_INVALID);
    CHECK(strstr(err, "s3cr3t") == NULL);
    unlink_ini();
}

static void unknown_section_or_key_is_rejected(void)
{
    char err[TSR_CONFIG_ERR_MAX];
    tsr_config c;
    const char *path = write_ini("[server]\nlisen = 127.0.0.1:1\n");

    CHECK(tsr_config_load_env(path, no_env, &c, err, sizeof err) == TSR_ERR_INVALID);
    CHECKF(strstr(err, "unknown key") != NULL && strstr(err, "lisen") != NULL, "%s", err);
    unlink_ini();

    path = write_ini("[sever]\nlisten = 127.0.0.1:1\n");
    CHECK(tsr_config_load_env(path, no_env, &c, err, sizeof err) == TSR_ERR_INVALID);
    CHECKF(strstr(err, "unknown section") != NULL && strstr(err, "sever") != NULL, "%s", err);
    unlink_ini();

    CHECK(tsr_config_defaults(&c) == TSR_OK);
    CHECK(tsr_config_set(&c, "session", "idle", "1m", err, sizeof err) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_config_set(&c, "session", "idle_ttl", "1m", err, sizeof err) == TSR_OK);
    CHECK(c.session.idle_ttl == 60);
    tsr_config_reset(&c);
}

static void missing_file_is_an_io_error(void)
{
    char err[TSR_CONFIG_ERR_MAX];
    tsr_config c;
    CHECK(tsr_config_load_env("/nonexistent/tessera.ini", no_env, &c, err, sizeof err) ==
          TSR_ERR_IO);
    CHECK(strstr(err, "/nonexistent/tessera.ini") != NULL);
}

static void overlong_line_is_rejected_not_split(void)
{
    char err[TSR_CONFIG_ERR_MAX];
    tsr_config c;
    char ini[600];
    int k = snprintf(ini, sizeof ini, "[security]\nallowed_origins = https://%0300d.example\n", 0);
    CHECK(k > 0 && (size_t)k < sizeof ini);
    const char *path = write_ini(ini);
    CHECK(tsr_config_load_env(path, no_env, &c, err, sizeof err) == TSR_ERR_INVALID);
    CHECKF(strstr(err, "line 2") != NULL, "%s", err);
    unlink_ini();
}

static void listen_addresses_parse(void)
{
    tsr_listen_addr la;

    CHECK(tsr_listen_parse("127.0.0.1:8080", &la) == TSR_OK);
    CHECK(la.family == AF_INET && la.port == 8080 && strcmp(la.host, "127.0.0.1") == 0);
    CHECK(la.salen == sizeof(struct sockaddr_in));
    CHECK(ntohs(((struct sockaddr_in *)&la.sa)->sin_port) == 8080);

    CHECK(tsr_listen_parse("[::1]:8080", &la) == TSR_OK);
    CHECK(la.family == AF_INET6 && la.port == 8080 && strcmp(la.host, "::1") == 0);
    CHECK(la.salen == sizeof(struct sockaddr_in6));

    CHECK(tsr_listen_parse("0.0.0.0:80", &la) == TSR_OK);
    CHECK(la.family == AF_INET && la.port == 80 && strcmp(la.host, "0.0.0.0") == 0);

    CHECK(tsr_listen_parse("[::]:443", &la) == TSR_OK && la.family == AF_INET6);
    CHECK(tsr_listen_parse("localhost:3000", &la) == TSR_OK);
    CHECK(strcmp(la.host, "127.0.0.1") == 0 && la.port == 3000);

    static const char *const bad[] = {"",          "127.0.0.1",     "127.0.0.1:",
                                      ":8080",     "127.0.0.1:0",   "127.0.0.1:65536",
                                      "::1:8080",  "[::1]8080",     "[::1]",
                                      "[]:80",     "1.2.3:80",      "example.com:80",
                                      "127.0.0.1:08080", "127.0.0.1:-1", "[1.2.3.4]:80",
                                      "127.0.0.1:80x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        la.port = 1;
        CHECKF(tsr_listen_parse(bad[i], &la) == TSR_ERR_INVALID && la.port == 0 &&
                   la.family == 0,
               "'%s'", bad[i]);
    }
}

static void loopback_is_detected(void)
{
    CHECK(tsr_config_is_loopback("127.0.0.1"));
    CHECK(tsr_config_is_loopback("127.1.2.3"));
    CHECK(tsr_config_is_loopback("::1"));
    CHECK(tsr_config_is_loopback("[::1]"));
    CHECK(tsr_config_is_loopback("::ffff:127.0.0.1"));
    CHECK(tsr_config_is_loopback("localhost"));
    CHECK(!tsr_config_is_loopback("0.0.0.0"));
    CHECK(!tsr_config_is_loopback("::"));
    CHECK(!tsr_config_is_loopback("10.0.0.1"));
    CHECK(!tsr_config_is_loopback("128.0.0.1"));
    CHECK(!tsr_config_is_loopback("::ffff:10.0.0.1"));
    CHECK(!tsr_config_is_loopback("example.com"));
    CHECK(!tsr_config_is_loopback(""));
    CHECK(!tsr_config_is_loopback(NULL));
}

int main(void)
{
    TSR_RUN(defaults_match_spec);
    TSR_RUN(reads_every_section_from_a_file);
    TSR_RUN(env_overrides_file);
    TSR_RUN(env_works_without_a_file);
    TSR_RUN(env_typo_in_known_section_is_rejected);
    TSR_RUN(durations_parse_strictly);
    TSR_RUN(booleans_and_integers_parse_strictly);
    TSR_RUN(bad_values_are_rejected_with_a_message);
    TSR_RUN(secret_values_never_appear_in_messages);
    TSR_RUN(unknown_section_or_key_is_rejected);
    TSR_RUN(missing_file_is_an_io_error);
    TSR_RUN(overlong_line_is_rejected_not_split);
    TSR_RUN(listen_addresses_parse);
    TSR_RUN(loopback_is_detected);
    return tsr_test_summary();
}
