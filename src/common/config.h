/* config.h: tessera's settings (SPEC section 3): defaults, the INI file, and
 * TESSERA_<SECTION>_<KEY> environment overrides, parsed strictly.
 *
 * Load order: defaults, then the file (when a path is given), then the
 * environment (env wins). Every key of the table is known; an unknown section
 * or key in the file, or an unknown TESSERA_<KNOWN SECTION>_* variable, is an
 * error that names it (typo protection). Durations are integer seconds or a
 * number with a unit suffix s, m, h, d ("90", "15m", "2h", "7d"); booleans are
 * true/false/1/0/yes/no/on/off; integers are decimal with a range check.
 * Error messages name the key and the reason, never the value (it may be a key).
 *
 * Strings are heap copies owned by the struct and never NULL after a successful
 * load ("" when unset); tsr_config_reset frees them and wipes admin.key. */
#ifndef TSR_COMMON_CONFIG_H
#define TSR_COMMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"
#include "common/log.h"

#define TSR_CONFIG_FILE_MAX (256 * 1024) /* largest config file we read */
#define TSR_CONFIG_ERR_MAX 256            /* a good errbuf size */
#define TSR_DURATION_MAX ((int64_t)3650 * 86400) /* ten years, in seconds */

typedef enum tsr_same_site {
    TSR_SAME_SITE_INVALID = 0,
    TSR_SAME_SITE_LAX,
    TSR_SAME_SITE_STRICT
} tsr_same_site;

typedef enum tsr_verify_mode {
    TSR_VERIFY_INVALID = 0,
    TSR_VERIFY_STATELESS,
    TSR_VERIFY_REVOCATION_LIST,
    TSR_VERIFY_STATEFUL
} tsr_verify_mode;

/* Every key of SPEC section 3. Durations are seconds. */
typedef struct tsr_config {
    struct {
        char *listen;              /* "127.0.0.1:8080"; parse with tsr_listen_parse */
        char *public_url;          /* "" by default: the server derives it from the bound address */
        unsigned threads;          /* default: number of online cores (at least 1) */
        char *tls_cert, *tls_key;  /* "" unset; both set or neither (checked at load) */
        int allow_insecure_http;   /* 0 */
    } server;
    struct {
        char *url;                 /* "sqlite:./var/tessera.db" */
    } store;
    struct {
        char *url;                 /* "memory" */
    } cache;
    struct {
        char *cookie_name;         /* "__Host-tessera"; an RFC 6265 token */
        tsr_same_site same_site;   /* Lax */
        int64_t idle_ttl;          /* 30m, >= 1 s */
        int64_t absolute_ttl;      /* 24h, >= 1 s */
        size_t max_per_user;       /* 100; 0 means no cap */
    } session;
    struct {
        char *alg;                 /* "ES256"; one of the JWS names, never "none" */
        char *issuer;              /* "": the public URL */
        char *audience;            /* "tessera" */
        int64_t access_ttl;        /* 15m */
        int64_t refresh_ttl;       /* 30d */
        int64_t refresh_idle_ttl;  /* 7d */
        int64_t reuse_grace;       /* 10s, may be 0 */
        int64_t key_rotation;      /* 0: off */
    } tokens;
    struct {
        tsr_verify_mode bearer;    /* revocation-list */
        size_t cache_entries;      /* 65536; 0 turns the cache off */
    } verify;
    struct {
        uint32_t argon2_memory_kib;   /* 19456; 8 .. 4194304 */
        uint32_t argon2_iterations;   /* 2; 1 .. 64 */
        uint32_t argon2_parallelism;  /* 1; libsodium's Argon2id only does 1 */
        uint32_t login_max_failures;  /* 10; 1 .. 1000000 */
        int64_t login_window;         /* 15m, >= 1 s */
        char *allowed_origins;        /* "": comma-separated extra origins */
    } security;
    struct {
        int open;                  /* 1 */
    } signup;
    struct {
        char *key;                 /* "": generated on first start; SECRET, wiped by reset */
    } admin;
    struct {
        tsr_log_level level;       /* info */
    } log;
} tsr_config;

/* Fills out with the defaults (heap strings). On failure out is zeroed. */
TSR_MUST_CHECK tsr_err tsr_config_defaults(tsr_config *out /* OUT */);

/* Defaults, then the INI file at path (NULL: no file), then the process
 * environment. TSR_ERR_INVALID for a bad file (the message in errbuf names the
 * file line, section and key), TSR_ERR_IO when the file cannot be read,
 * TSR_ERR_TOO_LARGE over TSR_CONFIG_FILE_MAX. On failure out is zeroed (nothing
 * to reset) and errbuf holds one line of English; on success errbuf is "".
 * errbuf may be NULL when errcap is 0. */
TSR_MUST_CHECK tsr_err tsr_config_load(const char *path, tsr_config *out /* OUT */,
                                       char *errbuf /* OUT */, size_t errcap);

/* The same with an explicit environment (NULL-terminated "NAME=value" array, as
 * environ; NULL: none). For tests. */
TSR_MUST_CHECK tsr_err tsr_config_load_env(const char *path, char *const *envp,
                                           tsr_config *out /* OUT */, char *errbuf /* OUT */,
                                           size_t errcap);

/* Sets one key from its text form, as the file and the environment do
 * ("session", "idle_ttl", "15m"). TSR_ERR_NOT_FOUND for an unknown section or
 * key, TSR_ERR_INVALID for a bad value; errbuf says which. Checks across keys
 * (tls_cert with tls_key) happen in tsr_config_check. */
TSR_MUST_CHECK tsr_err tsr_config_set(tsr_config *c, const char *section, const char *key,
                                      const char *value, char *errbuf /* OUT */,
                                      size_t errcap);

/* Checks that hold across keys: tls_cert and tls_key both set or neither, a
 * parseable listen address. Called by tsr_config_load. */
TSR_MUST_CHECK tsr_err tsr_config_check(const tsr_config *c, char *errbuf /* OUT */,
                                        size_t errcap);

/* Frees the strings (wiping admin.key) and zeroes c. NULL is a no-op. */
void tsr_config_reset(tsr_config *c);

/* Strict parsers used above, public for the CLI and tests. Outputs are 0 on failure.
 * Duration: "0".."N" seconds or N followed by s/m/h/d; no sign, blanks, or
 * fractions; result <= TSR_DURATION_MAX. TSR_ERR_INVALID otherwise. */
TSR_MUST_CHECK tsr_err tsr_config_parse_duration(const char *s, int64_t *out /* OUT */);
/* true/false, 1/0, yes/no, on/off (case-insensitive). */
TSR_MUST_CHECK tsr_err tsr_config_parse_bool(const char *s, int *out /* OUT */);
/* Decimal integer in [min, max]: digits only with an optional leading '-'. */
TSR_MUST_CHECK tsr_err tsr_config_parse_int(const char *s, int64_t min, int64_t max,
                                            int64_t *out /* OUT */);

/* A parsed listen address. */
#define TSR_HOST_MAX 63
typedef struct tsr_listen_addr {
    char host[TSR_HOST_MAX + 1];   /* numeric, IPv6 without brackets: "::1" */
    uint16_t port;                 /* 1..65535 (0 refused) */
    int family;                    /* AF_INET or AF_INET6 */
    struct sockaddr_storage sa;    /* ready for bind() */
    socklen_t salen;
} tsr_listen_addr;

/* Parses "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80", "[::]:443"; "localhost:N"
 * means 127.0.0.1. Hosts must be numeric (no DNS at start-up). TSR_ERR_INVALID
 * otherwise; out zeroed on failure. */
TSR_MUST_CHECK tsr_err tsr_listen_parse(const char *s, tsr_listen_addr *out /* OUT */);

/* Nonzero for a loopback host: 127.0.0.0/8, ::1, ::ffff:127.x.y.z, "localhost".
 * Accepts the IPv6 form with or without brackets. */
int tsr_config_is_loopback(const char *host);

#endif
