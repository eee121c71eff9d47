/* cmd_serve.c: `tessera serve`: loads the config, opens the store, sets up
 * the admin key (printing a generated one once), starts the hashing pool and
 * the signing keys and the revoked set (auth's sync thread then keeps them
 * current and purges expired rows), the HTTP server, and on SIGTERM or
 * SIGINT stops gracefully: no new connections, in-flight requests finish,
 * then the pool, the auth context and the store are closed in that order. */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef TSR_HAVE_SERVER

#include <pthread.h>

#include "auth/auth.h"
#include "auth/tokens.h"
#include "common/config.h"
#include "common/log.h"
#include "common/pool.h"
#include "crypto/crypto.h"
#include "http/http.h"
#include "store/store.h"

#define HASH_QUEUE_PER_THREAD 32   /* waiting hash jobs per hashing thread */
#define HASH_QUEUE_MIN 32

static const char serve_usage[] =
    "usage: tessera serve [--config FILE]\n"
    "\n"
    "Runs the tessera HTTP server until SIGTERM or SIGINT.\n"
    "\n"
    "options:\n"
    "  --config FILE   INI settings (every key also as TESSERA_SECTION_KEY)\n"
    "  -h, --help      print this help\n"
    "\n"
    "With no config it listens on 127.0.0.1:8080 with SQLite at ./var/tessera.db.\n"
    "On first start it generates the admin API key and prints it once on stdout.\n";

/* Blocks the stop signals in this thread and every thread started after it,
 * so that only the sigwait below receives them. */
static int block_signals(sigset_t *set)
{
    struct sigaction ign;

    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &ign, NULL) != 0)
        return -1;
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    return pthread_sigmask(SIG_BLOCK, set, NULL) == 0 ? 0 : -1;
}

/* Waits for SIGTERM or SIGINT. Purges and syncs run on auth's sync thread. */
static int wait_for_stop(const sigset_t *set)
{
    for (;;) {
        int sig = 0;
        int rc = sigwait(set, &sig);
        if (rc != 0)
            return -1;
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
    }
}

int tsr_cli_serve(int argc, char **argv)
{
    int code = TSR_CLI_FAIL;
    const char *config_path = NULL;
    tsr_config cfg;
    char errbuf[TSR_CONFIG_ERR_MAX > TSR_HTTP_ERR_MAX ? TSR_CONFIG_ERR_MAX : TSR_HTTP_ERR_MAX];
    char generated[TSR_ADMIN_KEY_CHARS + 1];
    int was_generated = 0;
    tsr_store *inner = NULL, *store = NULL;
    tsr_auth *auth = NULL;
    tsr_auth_opts opts;
    tsr_pool *pool = NULL;
    tsr_http_server *srv = NULL;
    tsr_redis *redis = NULL;
    sigset_t set;
    size_t hash_threads;
    int sig;
    tsr_err rc;

    memset(&cfg, 0, sizeof cfg);
    generated[0] = '\0';
    if (tsr_cli_wants_help(argc, argv)) {
        fputs(serve_usage, stdout);
        return TSR_CLI_OK;
    }
    for (int i = 1; i < argc; i++) {
        int m = tsr_cli_opt_value(argc, argv, &i, "--config", &config_path);
        if (m == 1)
            continue;
        if (m == 0)
            tsr_cli_bad_arg(argv[i]);
        fputs(serve_usage, stderr);
        return TSR_CLI_USAGE;
    }
    if (block_signals(&set) != 0) {
        tsr_cli_error("cannot set up signal handling");
        goto out;
    }
    rc = tsr_config_load(config_path, &cfg, errbuf, sizeof errbuf);
    if (rc != TSR_OK) {
        tsr_cli_error("config: %s", errbuf);
        goto out;
    }
    tsr_log_set_level(cfg.log.level);
    rc = tsr_http_check_config(&cfg, errbuf, sizeof errbuf);
    if (rc != TSR_OK) {
        tsr_cli_error("%s", errbuf);
        goto out;
    }

    hash_threads = cfg.server.threads / 2 > 0 ? cfg.server.threads / 2 : 1;
    if (strcmp(cfg.cache.url, "memory") != 0) {
        rc = tsr_redis_new(cfg.cache.url, cfg.server.threads + hash_threads + 4, &redis);
        if (rc != TSR_OK) {
            tsr_cli_error("cache.url must be \"memory\" or redis://HOST:PORT/DB");
            goto out;
        }
    }
    /* Connections: one per request and hashing thread, and a few for the sync and
     * subscriber threads; PostgreSQL's max_connections is shared by every instance. */
    rc = tsr_store_open_pool(cfg.store.url, cfg.server.threads + hash_threads + 4, &inner);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot open the store named by store.url: %s", tsr_err_text(rc));
        goto out;
    }
    rc = tsr_http_store_metered_new(inner, &store);
    if (rc != TSR_OK)
        goto fail_rc;
    rc = tsr_auth_opts_from_config(&cfg, &opts);
    if (rc != TSR_OK) {
        tsr_cli_error("the security.argon2_* settings are not usable: %s", tsr_err_text(rc));
        goto out;
    }
    rc = tsr_auth_new(store, &opts, &auth);
    if (rc != TSR_OK)
        goto fail_rc;
    rc = tsr_auth_admin_key_init(auth, cfg.admin.key, generated, &was_generated);
    if (rc != TSR_OK) {
        tsr_cli_error("admin key: %s", rc == TSR_ERR_WEAK_KEY
                                           ? "admin.key is too short (at least 16 bytes)"
                                           : tsr_err_text(rc));
        goto out;
    }
    if (was_generated) {
        /* Printed once: only its hash is kept. */
        if (printf("admin key: %s\n", generated) < 0 || fflush(stdout) != 0) {
            tsr_cli_error("cannot print the generated admin key");
            goto out;
        }
    }
    tsr_wipe(generated, sizeof generated);
    rc = tsr_auth_keys_init(auth, (int64_t)time(NULL));
    if (rc != TSR_OK) {
        tsr_cli_error("cannot load or create the signing keys: %s", tsr_err_text(rc));
        goto out;
    }
    if (redis != NULL) {
        /* Redis may be down now: the feed comes up when it does (bearer checks read
         * the store meanwhile). */
        rc = tsr_auth_attach_redis(auth, redis);
        if (rc != TSR_OK)
            goto fail_rc;
    }
    /* The revoked set is complete before the first request is answered. */
    rc = tsr_auth_sync(auth, (int64_t)time(NULL));
    if (rc != TSR_OK)
        goto fail_rc;
    rc = tsr_auth_sync_start(auth);
    if (rc != TSR_OK)
        goto fail_rc;
    /* Only the hash is needed from here on: drop the plaintext from the config and
     * from the environment, where a later crash dump or child could see it. */
    if (cfg.admin.key != NULL)
        tsr_wipe(cfg.admin.key, strlen(cfg.admin.key));
    (void)unsetenv("TESSERA_ADMIN_KEY");

    rc = tsr_pool_new(hash_threads,
                      hash_threads * HASH_QUEUE_PER_THREAD > HASH_QUEUE_MIN
                          ? hash_threads * HASH_QUEUE_PER_THREAD
                          : HASH_QUEUE_MIN,
                      &pool);
    if (rc != TSR_OK)
        goto fail_rc;
    rc = tsr_http_server_start(&cfg, auth, pool, &srv, errbuf, sizeof errbuf);
    if (rc != TSR_OK) {
        tsr_cli_error("%s", errbuf[0] != '\0' ? errbuf : tsr_err_text(rc));
        goto out;
    }
    sig = wait_for_stop(&set);
    tsr_log(TSR_LOG_INFO, "shutting down", TSR_F_STR("signal", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "error"));
    tsr_http_server_stop(srv, TSR_HTTP_GRACE_SECONDS);
    srv = NULL;
    code = sig > 0 ? TSR_CLI_OK : TSR_CLI_FAIL;
    goto out;
fail_rc:
    tsr_cli_error("cannot start: %s", tsr_err_text(rc));
out:
    tsr_wipe(generated, sizeof generated);
    tsr_http_server_stop(srv, 0);
    tsr_pool_free(pool);
    tsr_redis_free(redis); /* first: its subscriber thread calls into auth */
    tsr_auth_free(auth);
    tsr_store_close(store);
    tsr_store_close(inner);
    tsr_config_reset(&cfg);
    return code;
}

#else

int tsr_cli_serve(int argc, char **argv)
{
    tsr_cli_error("this build has no HTTP server");
    return TSR_CLI_FAIL;
}

#endif
