/* test_redis.c: the Redis client (src/store/redis.h) against a real redis-server.
 *
 * Needs TSR_TEST_REDIS_URL (python3 tests/support/services.py --redis -- CMD exports
 * it); without it this test FAILS, it does not skip. Keys and channels carry the
 * pid, so runs may share a server. The outage tests start redis-server children of
 * their own on free loopback ports (fork/exec, killed by PID with SIGKILL, stopped
 * with SIGSTOP to play a hung server). Nothing asserts a duration: every wait polls
 * with a generous bound. A few raw RESP commands (SCRIPT FLUSH, PTTL, HGET, an
 * oversized PUBLISH) go over a plain socket so that hiredis stays in src/store/redis. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "harness.h"
#include "store/redis.h"

#define NOW ((int64_t)1700000000)

/* ---- helpers ------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ok = cond became true within bound_ms (polled every 10 ms). Not a timing check:
 * the bound only keeps a broken client from hanging the test. */
#define WAIT_FOR(ok, cond, bound_ms)                                                               \
    do {                                                                                           \
        int64_t wf_end_ = now_ms() + (bound_ms);                                                   \
        (ok) = 0;                                                                                  \
        for (;;) {                                                                                 \
            if (cond) {                                                                            \
                (ok) = 1;                                                                          \
                break;                                                                             \
            }                                                                                      \
            if (now_ms() > wf_end_)                                                                \
                break;                                                                             \
            sleep_ms(10);                                                                          \
        }                                                                                          \
    } while (0)

static char g_host[256];
static int g_port;

/* Reads host and port out of TSR_TEST_REDIS_URL ("redis://HOST:PORT[/DB]").
 * 0 (and a failed CHECK) when unset or unreadable. */
static int test_server(void)
{
    const char *url = getenv("TSR_TEST_REDIS_URL");
    const char *p, *colon;
    size_t hlen;
    char *end = NULL;
    long port;

    CHECKF(url != NULL && url[0] != '\0', "TSR_TEST_REDIS_URL is not set (run under "
                                          "tests/support/services.py --redis)");
    if (url == NULL || strncmp(url, "redis://", 8) != 0)
        return 0;
    p = url + 8;
    colon = strchr(p, ':');
    if (colon == NULL || (size_t)(colon - p) >= sizeof g_host) {
        CHECK(!"TSR_TEST_REDIS_URL has no HOST:PORT");
        return 0;
    }
    hlen = (size_t)(colon - p);
    memcpy(g_host, p, hlen);
    g_host[hlen] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (port <= 0 || port > 65535 || (*end != '\0' && *end != '/')) {
        CHECK(!"TSR_TEST_REDIS_URL has a bad port");
        return 0;
    }
    g_port = (int)port;
    return 1;
}

static void url_for(char *buf, size_t cap, const char *host, int port, int db)
{
    int w = snprintf(buf, cap, "redis://%s:%d/%d", host, port, db);
    CHECK(w > 0 && (size_t)w < cap);
}

/* A client on the test server (db 0 unless told). NULL after a failed CHECK. */
static tsr_redis *client(int db, size_t pool_max)
{
    char url[320];
    tsr_redis *r = NULL;
    if (!test_server())
        return NULL;
    url_for(url, sizeof url, g_host, g_port, db);
    CHECK(tsr_redis_new(url, pool_max, &r) == TSR_OK);
    return r;
}

/* "tsrtest:<pid>:<name>": keys, buckets and channels of this run. */
static size_t key(char *buf, size_t cap, const char *name)
{
    int w = snprintf(buf, cap, "tsrtest:%ld:%s", (long)getpid(), name);
    CHECK(w > 0 && (size_t)w < cap);
    return w > 0 ? (size_t)w : 0;
}

/* ---- raw RESP over a socket (test-side checks only) ----------------------------- */

static int raw_connect(const char *host, int port)
{
    struct addrinfo hints, *res = NULL;
    char ps[8];
    int fd = -1;
    struct timeval tv = {5, 0};

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &res) != 0)
        return -1;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

/* Sends one command; reads one simple, integer, error or bulk reply into out
 * (NUL-terminated, CRLFs included). Returns its length, or -1. */
static long raw_cmd(const char *host, int port, char *out, size_t cap, int argc,
                    const char *const *argv, const size_t *lens)
{
    size_t need = 32, n = 0, have = 0, want = 0;
    char *req;
    long rc = -1;
    int fd = raw_connect(host, port);

    if (fd < 0 || cap < 8)
        goto done;
    for (int i = 0; i < argc; i++)
        need += lens[i] + 32;
    req = malloc(need);
    if (req == NULL)
        goto done;
    n = (size_t)snprintf(req, need, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        n += (size_t)snprintf(req + n, need - n, "$%zu\r\n", lens[i]);
        memcpy(req + n, argv[i], lens[i]);
        n += lens[i];
        memcpy(req + n, "\r\n", 2);
        n += 2;
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, req + off, n - off);
        if (w <= 0) {
            free(req);
            goto done;
        }
        off += (size_t)w;
    }
    free(req);
    for (;;) {
        ssize_t got;
        char *eol;
        if (want != 0 && have >= want)
            break;
        if (have + 1 >= cap)
            goto done;
        got = read(fd, out + have, cap - 1 - have);
        if (got <= 0)
            goto done;
        have += (size_t)got;
        out[have] = '\0';
        eol = strstr(out, "\r\n");
        if (want == 0 && eol != NULL) {
            size_t line = (size_t)(eol - out) + 2;
            if (out[0] == '$') {
                long bl = strtol(out + 1, NULL, 10);
                want = bl < 0 ? line : line + (size_t)bl + 2;
            } else {
                want = line;
            }
        }
    }
    rc = (long)have;
done:
    if (fd >= 0)
        close(fd);
    return rc;
}

static long raw1(const char *host, int port, char *out, size_t cap, const char *a0)
{
    const char *argv[1] = {a0};
    size_t lens[1] = {strlen(a0)};
    return raw_cmd(host, port, out, cap, 1, argv, lens);
}

static long raw2(const char *host, int port, char *out, size_t cap, const char *a0, const char *a1,
                 size_t l1)
{
    const char *argv[2] = {a0, a1};
    size_t lens[2] = {strlen(a0), l1};
    return raw_cmd(host, port, out, cap, 2, argv, lens);
}

/* ---- redis-server children ------------------------------------------------------ */

typedef struct child_srv {
    pid_t pid;
    int port;
    char dir[64];
} child_srv;

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    int port = 0, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int child_ping(const child_srv *s)
{
    char out[64];
    return raw1("127.0.0.1", s->port, out, sizeof out, "PING") > 0 && strncmp(out, "+PONG", 5) == 0;
}

/* Starts redis-server on s->port and waits until it answers PING. */
static int child_start(child_srv *s)
{
    char port[8];
    int ok;
    snprintf(port, sizeof port, "%d", s->port);
    char *const argv[] = {"redis-server", "--port", port,           "--bind", "127.0.0.1",
                          "--save",       "",       "--appendonly", "no",     "--daemonize",
                          "no",           "--dir",  s->dir,         NULL};
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        /* Dies with the test, whatever happens to it. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            (void)dup2(fd, 0);
            (void)dup2(fd, 1);
            (void)dup2(fd, 2);
        }
        execvp("redis-server", argv);
        _exit(127);
    }
    s->pid = pid;
    WAIT_FOR(ok, child_ping(s) || waitpid(pid, NULL, WNOHANG) == pid, 20000);
    if (!ok || !child_ping(s)) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        s->pid = 0;
        return 0;
    }
    return 1;
}

static int child_new(child_srv *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/tsr-redis-XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        return 0;
    for (int tries = 0; tries < 5; tries++) {
        s->port = free_port();
        if (s->port != 0 && child_start(s))
            return 1;
    }
    return 0;
}

static void child_kill(child_srv *s)
{
    if (s->pid > 0) {
        (void)kill(s->pid, SIGCONT);
        (void)kill(s->pid, SIGKILL);
        (void)waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static void child_done(child_srv *s)
{
    child_kill(s);
    if (s->dir[0] != '\0')
        (void)rmdir(s->dir);
}

/* ---- a pub/sub recorder --------------------------------------------------------- */

typedef struct rec {
    pthread_mutex_t mu;
    int states[64];
    int n_states;
    int repeated; /* the same state reported twice in a row */
    int n_msgs;
    char last[TSR_REDIS_MESSAGE_MAX + 1];
    size_t last_len;
} rec;

static void rec_init(rec *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
}

static void rec_on_message(void *ctx, const char *msg, size_t len)
{
    rec *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->n_msgs++;
    c->last_len = len <= TSR_REDIS_MESSAGE_MAX ? len : 0;
    memcpy(c->last, msg, c->last_len);
    pthread_mutex_unlock(&c->mu);
}

static void rec_on_state(void *ctx, int subscribed)
{
    rec *c = ctx;
    pthread_mutex_lock(&c->mu);
    if (c->n_states > 0 && c->states[c->n_states - 1] == subscribed)
        c->repeated = 1;
    if (c->n_states < 64)
        c->states[c->n_states++] = subscribed;
    pthread_mutex_unlock(&c->mu);
}

/* The last reported state, -1 before any report. */
static int rec_state(rec *c)
{
    int s;
    pthread_mutex_lock(&c->mu);
    s = c->n_states > 0 ? c->states[c->n_states - 1] : -1;
    pthread_mutex_unlock(&c->mu);
    return s;
}

static int rec_msgs(rec *c)
{
    int n;
    pthread_mutex_lock(&c->mu);
    n = c->n_msgs;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* Nonzero when the last message is exactly (m, n). */
static int rec_last_is(rec *c, const void *m, size_t n)
{
    int eq;
    pthread_mutex_lock(&c->mu);
    eq = c->last_len == n && (n == 0 || memcmp(c->last, m, n) == 0);
    pthread_mutex_unlock(&c->mu);
    return eq;
}

/* ---- log capture ---------------------------------------------------------------- */

static char log_path[64];

static void log_capture_begin(void)
{
    int fd;
    snprintf(log_path, sizeof log_path, "/tmp/tsr-redis-log-XXXXXX");
    fd = mkstemp(log_path);
    CHECK(fd >= 0);
    tsr_log_set_fd(fd);
}

/* Stops capturing; returns the captured text (free()), "" when none. */
static char *log_capture_end(void)
{
    size_t n = 0;
    char *text;
    tsr_log_set_fd(2);
    text = tsr_test_read_file(log_path, &n);
    (void)unlink(log_path);
    if (text == NULL)
        text = calloc(1, 1);
    return text;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    size_t nl = strlen(needle);
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + nl, needle))
        n++;
    return n;
}

/* Occurrences of needle in what was captured so far. */
static int log_count(const char *needle)
{
    size_t n = 0;
    char *text = tsr_test_read_file(log_path, &n);
    int c = text != NULL ? count_of(text, needle) : 0;
    free(text);
    return c;
}

/* ---- tests: url ----------------------------------------------------------------- */

static void redis_url_is_set(void)
{
    (void)test_server();
}

static void url_accepts_good_and_rejects_each_bad_twin(void)
{
    static const char *const pairs[][2] = {
        {"redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6379/0"},
        {"redis://localhost", "redis://user:pw@localhost"},
        {"redis://localhost:6380", "redis://localhost:6380?timeout=1"},
        {"redis://localhost:1", "redis://localhost:0"},
        {"redis://localhost:65535", "redis://localhost:65536"},
        {"redis://localhost/15", "redis://localhost/16"},
        {"redis://localhost:6379/3", "redis://localhost:6379/3x"},
        {"redis://[::1]:6379/2", "redis://[::1:6379/2"},
        {"redis://[::1]", "redis://::1"},
        {"redis://[::ffff:127.0.0.1]", "redis://[fe80::1%eth0]"},
        {"redis://cache-1.internal:6379", "redis://cache_1.internal:6379"},
        {"redis://h:6379/0", "redis://h:6379/"},
        {"redis://h:6379", "redis://h:"},
        {"redis://h:80", "redis://h:080"},
        {"redis://h:6379", "redis://h:+6379"},
        {"redis://h/0", "redis://h/00"},
        {"redis://h", "redis://"},
        {"redis://h", "REDIS://h"},
        {"redis://h", "redis://h#frag"},
        {"redis://h/1", "redis://h/1/2"},
        {"redis://h:6379", "redis://h:6379 "},
        {"redis://h", "redis:/h"},
        {"redis://h", "redis://-h"},
        {"redis://h:6379/1", "redis://h:6379/-1"},
    };
    char longhost[300], url[400];
    tsr_redis *r;

    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        r = NULL;
        CHECKF(tsr_redis_new(pairs[i][0], 0, &r) == TSR_OK && r != NULL, "good %s", pairs[i][0]);
        tsr_redis_free(r);
        r = (tsr_redis *)&r; /* must come back NULL */
        CHECKF(tsr_redis_new(pairs[i][1], 0, &r) == TSR_ERR_INVALID && r == NULL, "bad %s",
               pairs[i][1]);
    }
    /* Host length: 253 is the cap. */
    memset(longhost, 'a', sizeof longhost);
    longhost[253] = '\0';
    snprintf(url, sizeof url, "redis://%s:6379", longhost);
    r = NULL;
    CHECK(tsr_redis_new(url, 0, &r) == TSR_OK && r != NULL);
    tsr_redis_free(r);
    longhost[253] = 'a';
    longhost[254] = '\0';
    snprintf(url, sizeof url, "redis://%s:6379", longhost);
    r = NULL;
    CHECK(tsr_redis_new(url, 0, &r) == TSR_ERR_INVALID && r == NULL);
    /* NULL url, absurd pool. */
    CHECK(tsr_redis_new(NULL, 0, &r) == TSR_ERR_INVALID && r == NULL);
    CHECK(tsr_redis_new("redis://h", 4097, &r) == TSR_ERR_INVALID && r == NULL);
    CHECK(tsr_redis_new("redis://h", 1540, &r) == TSR_OK && r != NULL); /* serve, 1024 threads */
    tsr_redis_free(r);
    r = NULL;
    CHECK(tsr_redis_new("redis://h", 0, NULL) == TSR_ERR_INVALID);
    tsr_redis_free(NULL);
}

/* ---- tests: keys ---------------------------------------------------------------- */

static void ping_answers_and_counts_commands(void)
{
    tsr_redis_stats st;
    tsr_redis *r = client(0, 0);
    if (r == NULL)
        return;
    CHECK(tsr_redis_up(r));
    CHECK(tsr_redis_ping(r) == TSR_OK);
    CHECK(tsr_redis_ping(r) == TSR_OK);
    tsr_redis_get_stats(r, &st);
    CHECK(st.commands == 2);
    CHECK(st.failures == 0 && st.skipped == 0);
    CHECK(tsr_redis_up(r));
    tsr_redis_free(r);
}

static void get_set_del_round_trip_binary_values(void)
{
    static const unsigned char val[] = {'a', 0, 'b', 0xff, 0, 0x80, '\r', '\n', 0};
    unsigned char buf[64];
    char k2[64], k3[64], kmiss[64];
    char kbin[64];
    size_t kbl, len = 99, deleted = 99;
    tsr_redis *r = client(0, 0);
    if (r == NULL)
        return;
    /* A key with a NUL and high bytes in it. */
    kbl = key(kbin, sizeof kbin, "bin");
    kbin[kbl++] = '\0';
    kbin[kbl++] = (char)0xfe;
    size_t l2 = key(k2, sizeof k2, "two"), l3 = key(k3, sizeof k3, "three");
    size_t lm = key(kmiss, sizeof kmiss, "missing");

    CHECK(tsr_redis_set(r, kbin, kbl, val, sizeof val, 600000) == TSR_OK);
    CHECK(tsr_redis_get(r, kbin, kbl, buf, sizeof buf, &len) == TSR_OK);
    CHECK(len == sizeof val && memcmp(buf, val, sizeof val) == 0);
    /* The key without its tail is another key. */
    CHECK(tsr_redis_get(r, kbin, kbl - 2, buf, sizeof buf, &len) == TSR_ERR_NOT_FOUND);
    CHECK(len == 0);
    /* Overwrite with a shorter value, then the empty value. */
    CHECK(tsr_redis_set(r, kbin, kbl, "x", 1, 600000) == TSR_OK);
    CHECK(tsr_redis_get(r, kbin, kbl, buf, sizeof buf, &len) == TSR_OK && len == 1 &&
          buf[0] == 'x');
    CHECK(tsr_redis_set(r, kbin, kbl, "", 0, 600000) == TSR_OK);
    len = 99;
    CHECK(tsr_redis_get(r, kbin, kbl, buf, sizeof buf, &len) == TSR_OK && len == 0);

    CHECK(tsr_redis_set(r, k2, l2, "2", 1, 600000) == TSR_OK);
    CHECK(tsr_redis_get(r, kmiss, lm, buf, sizeof buf, &len) == TSR_ERR_NOT_FOUND);
    {
        const void *keys[4] = {kbin, k2, k3, kmiss};
        size_t klens[4] = {kbl, l2, l3, lm};
        CHECK(tsr_redis_del(r, keys, klens, 4, &deleted) == TSR_OK);
        CHECK(deleted == 2);
        CHECK(tsr_redis_del(r, keys, klens, 4, &deleted) == TSR_OK);
        CHECK(deleted == 0);
        CHECK(tsr_redis_del(r, keys, klens, 2, NULL) == TSR_OK);
    }
    CHECK(tsr_redis_get(r, kbin, kbl, buf, sizeof buf, &len) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_redis_get(r, k2, l2, buf, sizeof buf, &len) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_redis_del(r, NULL, NULL, 0, &deleted) == TSR_OK && deleted == 0);
    tsr_redis_free(r);
}

static void value_over_cap_and_bad_arguments_are_invalid(void)
{
    static unsigned char big[TSR_REDIS_VALUE_MAX + 1];
    static unsigned char buf[TSR_REDIS_VALUE_MAX * 2];
    char k[64];
    size_t kl, len = 99;
    tsr_redis_stats st;
    tsr_redis *r = client(0, 0);
    if (r == NULL)
        return;
    kl = key(k, sizeof k, "cap");
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    CHECK(tsr_redis_set(r, k, kl, big, 100, 600000) == TSR_OK);
    CHECK(tsr_redis_get(r, k, kl, buf, 99, &len) == TSR_ERR_INVALID);
    CHECK(len == 0);
    CHECK(tsr_redis_get(r, k, kl, buf, 100, &len) == TSR_OK && len == 100);
    CHECK(memcmp(buf, big, 100) == 0);
    /* The largest value, read with a larger buffer; one more byte is refused. */
    CHECK(tsr_redis_set(r, k, kl, big, TSR_REDIS_VALUE_MAX, 600000) == TSR_OK);
    CHECK(tsr_redis_get(r, k, kl, buf, sizeof buf, &len) == TSR_OK && len == TSR_REDIS_VALUE_MAX &&
          memcmp(buf, big, len) == 0);
    CHECK(tsr_redis_set(r, k, kl, big, TSR_REDIS_VALUE_MAX + 1, 600000) == TSR_ERR_INVALID);
    /* The value left behind is the previous one. */
    CHECK(tsr_redis_get(r, k, kl, buf, sizeof buf, &len) == TSR_OK && len == TSR_REDIS_VALUE_MAX);
    /* Bad arguments never reach Redis and never start a backoff. */
    CHECK(tsr_redis_set(r, k, kl, "v", 1, 0) == TSR_ERR_INVALID);
    CHECK(tsr_redis_set(r, k, kl, "v", 1, -5) == TSR_ERR_INVALID);
    CHECK(tsr_redis_set(r, k, 0, "v", 1, 1000) == TSR_ERR_INVALID);
    CHECK(tsr_redis_get(r, k, 0, buf, sizeof buf, &len) == TSR_ERR_INVALID);
    CHECK(tsr_redis_publish(r, "c", big, TSR_REDIS_MESSAGE_MAX + 1, NULL) == TSR_ERR_INVALID);
    CHECK(tsr_redis_publish(r, "", "m", 1, NULL) == TSR_ERR_INVALID);
    {
        double t = 1;
        CHECK(tsr_redis_bucket_peek(r, k, kl, 0, 60, NOW, &t) == TSR_ERR_INVALID && t == 0);
        CHECK(tsr_redis_bucket_take(r, k, kl, 5, 0, NOW, NULL) == TSR_ERR_INVALID);
        CHECK(tsr_redis_bucket_take(r, k, kl, 5, 60, -1, NULL) == TSR_ERR_INVALID);
    }
    tsr_redis_get_stats(r, &st);
    CHECK(st.failures == 0 && st.skipped == 0);
    CHECK(tsr_redis_up(r));
    {
        const void *keys[1] = {k};
        size_t klens[1] = {kl};
        CHECK(tsr_redis_del(r, keys, klens, 1, NULL) == TSR_OK);
    }
    tsr_redis_free(r);
}

static void ttl_expires_the_key(void)
{
    char k[64], out[64];
    unsigned char buf[16];
    size_t kl, len;
    long pttl;
    int gone;
    tsr_redis *r = client(0, 0);
    if (r == NULL)
        return;
    kl = key(k, sizeof k, "ttl");
    CHECK(tsr_redis_set(r, k, kl, "v", 1, 600000) == TSR_OK);
    CHECK(tsr_redis_get(r, k, kl, buf, sizeof buf, &len) == TSR_OK);
    /* PX went through: a positive TTL of at most what we asked. */
    CHECK(raw2(g_host, g_port, out, sizeof out, "PTTL", k, kl) > 0 && out[0] == ':');
    pttl = strtol(out + 1, NULL, 10);
    CHECK(pttl > 0 && pttl <= 600000);
    CHECK(tsr_redis_set(r, k, kl, "v", 1, 30) == TSR_OK);
    WAIT_FOR(gone, tsr_redis_get(r, k, kl, buf, sizeof buf, &len) == TSR_ERR_NOT_FOUND, 10000);
    CHECK(gone);
    tsr_redis_free(r);
}

static void db_number_selects_the_database(void)
{
    char k[64];
    unsigned char buf[16];
    size_t kl, len;
    tsr_redis *r0 = client(0, 0), *r3 = client(3, 0);
    if (r0 == NULL || r3 == NULL)
        goto out;
    kl = key(k, sizeof k, "db");
    CHECK(tsr_redis_set(r3, k, kl, "3", 1, 600000) == TSR_OK);
    CHECK(tsr_redis_get(r3, k, kl, buf, sizeof buf, &len) == TSR_OK && len == 1 && buf[0] == '3');
    CHECK(tsr_redis_get(r0, k, kl, buf, sizeof buf, &len) == TSR_ERR_NOT_FOUND);
    {
        const void *keys[1] = {k};
        size_t klens[1] = {kl}, deleted = 0;
        CHECK(tsr_redis_del(r0, keys, klens, 1, &deleted) == TSR_OK && deleted == 0);
        CHECK(tsr_redis_del(r3, keys, klens, 1, &deleted) == TSR_OK && deleted == 1);
    }
out:
    tsr_redis_free(r0);
    tsr_redis_free(r3);
}

/* ---- tests: buckets ------------------------------------------------------------- */

static void bucket_missing_is_full_and_take_decrements(void)
{
    char k[64], out[128];
    size_t kl;
    double t = -1;
    long pttl;
    tsr_redis *r = client(0, 0);
    if (r == NULL)
        return;
    kl = key(k, sizeof k, "bucket-basic");
    CHECK(tsr_redis_bucket_peek(r, k, kl, 5, 60, NOW, &t) == TSR_OK && t == 5.0);
    /* Peek wrote nothing. */
    CHECK(raw2(g_host, g_port, out, sizeof out, "EXISTS", k, kl) > 0 &&
          strncmp(out, ":0\r\n", 4) == 0);
    CHECK(tsr_redis_bucket_take(r, k, kl, 5, 60, NOW, &t) == TSR_OK && t == 4.0);
    CHECK(tsr_redis_bucket_peek(r, k, kl, 5, 60, NOW, &t) == TSR_OK && t == 4.0);
    CHECK(tsr_redis_bucket_take(r, k, kl, 5, 60, NOW, NULL) == TSR_OK);
    CHECK(tsr_redis_bucket_peek(r, k, kl, 5, 60, NOW, &t) == TSR_OK && t == 3.0);
    /* Stored as a hash {t, l} that expires two windows after the change. */
    {
        const char *argv[3] = {"HGET", k, "t"};
        size_t lens[3] = {4, kl, 1};
        CHECK(raw_cmd(g_host, g_port, out, sizeof out, 3, argv, lens) > 0 &&
              strcmp(out, "$1\r\n3\r\n") == 0);
        argv[2] = "l";
        CHECK(raw_cmd(g_host, g_port, out, sizeof out, 3, argv, lens) > 0 &&
              strcmp(out, "$10\r\n1700000000\r\n") == 0);
    }
    CHECK(raw2(g_host, g_port, out, sizeof out, "PTTL", k, kl) > 0 && out[0] == ':');
    pttl = strtol(out + 1, NULL, 10);
    CHECK(pttl > 60000 && pttl <= 120000);
    {
        const void *keys[1] = {k};
        size_t klens[1] = {kl};
        CHECK(tsr_redis_del(r, keys, klens, 1, NULL) == TSR_OK);
    }
    tsr_redis_free(r);
}

static void bucket_take_clamps_at_minus_max(void)
{
    static const double want[] = {2, 1, 0, -1, -2, -3, -3, -3, -3, -3};
    char k[64];
    size_t kl;
    double t;
    tsr_redis *r = client(0, 0);
    if (r == NULL)
        return;
    kl = key(k, sizeof k, "bucket-clamp");
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        t = 99;
        CHECK(tsr_redis_bucket_take(r, k, kl, 3, 60, NOW, &t) == TSR_OK);
        CHECKF(t == want[i], "take %zu: %.17g", i, t);
    }
    CHECK(tsr_redis_bucket_peek(r, k, kl, 3, 60, NOW, &t) == TSR_OK && t == -3.0);
    /* Refilling from -max takes 2 windows to be full again. */
    CHECK(tsr_redis_bucket_peek(r, k, kl, 3, 60, NOW + 60, &t) == TSR_OK && t == 0.0);
    CHECK(tsr_redis_bucket_peek(r, k, kl, 3, 60, NOW + 120, &t) == TSR_OK && t == 3.0);
    {
        const void *keys[1] = {k};
        size_t klens[1] = {kl};
        CHECK(tsr_redis_del(r, keys, klens, 1, NULL) == TSR_OK);
    }
    tsr_redis_free(r);
}

static void bucket_refills_later_and_never_backwards(void)
{
    char k[64], kf[64];
    size_t kl, kfl;
    double t = 0, e1, e2;
    tsr_redis *r = client(0, 0);
    if (r == NULL)
        return;
    kl = key(k, sizeof k, "bucket-refill");
    for (int i = 0; i < 5; i++)
        CHECK(tsr_redis_bucket_take(r, k, kl, 10, 10, NOW, &t) == TSR_OK);
    CHECK(t == 5.0);
    CHECK(tsr_redis_bucket_peek(r, k, kl, 10, 10, NOW + 2, &t) == TSR_OK && t == 7.0);
    CHECK(tsr_redis_bucket_take(r, k, kl, 10, 10, NOW + 2, &t) == TSR_OK && t == 6.0);
    /* Time going backwards refills nothing, and does not move the refill point back. */
    CHECK(tsr_redis_bucket_peek(r, k, kl, 10, 10, NOW, &t) == TSR_OK && t == 6.0);
    CHECK(tsr_redis_bucket_take(r, k, kl, 10, 10, NOW + 1, &t) == TSR_OK && t == 5.0);
    CHECK(tsr_redis_bucket_peek(r, k, kl, 10, 10, NOW + 3, &t) == TSR_OK && t == 6.0);
    /* Capped at max however long it rested. */
    CHECK(tsr_redis_bucket_peek(r, k, kl, 10, 10, NOW + 100000, &t) == TSR_OK && t == 10.0);
    CHECK(tsr_redis_bucket_take(r, k, kl, 10, 10, NOW + 100000, &t) == TSR_OK && t == 9.0);

    /* Fractional levels: the script (Lua doubles, stored as %.17g) and peek (C
     * doubles) agree to the bit with the same arithmetic done here. */
    kfl = key(kf, sizeof kf, "bucket-frac");
    CHECK(tsr_redis_bucket_take(r, kf, kfl, 3, 10, NOW, &t) == TSR_OK && t == 2.0);
    e1 = (2.0 + (1.0 * 3.0) / 10.0) - 1.0;
    CHECK(tsr_redis_bucket_take(r, kf, kfl, 3, 10, NOW + 1, &t) == TSR_OK);
    CHECKF(t == e1, "%.17g vs %.17g", t, e1);
    e2 = e1 + (2.0 * 3.0) / 10.0;
    CHECK(tsr_redis_bucket_peek(r, kf, kfl, 3, 10, NOW + 3, &t) == TSR_OK);
    CHECKF(t == e2, "%.17g vs %.17g", t, e2);
    e2 = (e2 > 3.0 ? 3.0 : e2) - 1.0;
    CHECK(tsr_redis_bucket_take(r, kf, kfl, 3, 10, NOW + 3, &t) == TSR_OK);
    CHECKF(t == e2, "%.17g vs %.17g", t, e2);
    {
        const void *keys[2] = {k, kf};
        size_t klens[2] = {kl, kfl};
        CHECK(tsr_redis_del(r, keys, klens, 2, NULL) == TSR_OK);
    }
    tsr_redis_free(r);
}

#define TAKERS 4
#define TAKES 200
#define BUCKET_MAX 1000

typedef struct taker {
    tsr_redis *r;
    const char *k;
    size_t kl;
    double got[TAKES];
    int n;
    int errors;
} taker;

static void *taker_main(void *arg)
{
    taker *t = arg;
    int retries = 0;
    while (t->n < TAKES) {
        double v = 0;
        tsr_err rc = tsr_redis_bucket_take(t->r, t->k, t->kl, BUCKET_MAX, 86400, NOW, &v);
        if (rc == TSR_OK) {
            t->got[t->n++] = v;
        } else if (rc == TSR_ERR_UNAVAILABLE && retries++ < 1000) {
            /* Only the pool being busy (pool_max 2 for 4 threads) should get here. */
            sleep_ms(2);
        } else {
            t->errors++;
            break;
        }
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) ? -1 : (x > y) ? 1 : 0;
}

static void bucket_concurrent_takes_never_lose_one(void)
{
    static taker tk[TAKERS];
    static double all[TAKERS * TAKES];
    pthread_t th[TAKERS];
    char k[64];
    size_t kl, n = 0;
    double t = 0;
    int started[TAKERS] = {0};
    tsr_redis_stats st;
    tsr_redis *r = client(0, 2);
    if (r == NULL)
        return;
    kl = key(k, sizeof k, "bucket-race");
    for (int i = 0; i < TAKERS; i++) {
        memset(&tk[i], 0, sizeof tk[i]);
        tk[i].r = r;
        tk[i].k = k;
        tk[i].kl = kl;
        started[i] = pthread_create(&th[i], NULL, taker_main, &tk[i]) == 0;
        CHECK(started[i]);
    }
    for (int i = 0; i < TAKERS; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        CHECK(tk[i].errors == 0 && tk[i].n == TAKES);
        for (int j = 0; j < tk[i].n; j++)
            all[n++] = tk[i].got[j];
    }
    CHECK(n == TAKERS * TAKES);
    /* Every take saw a different level: 999, 998, ..., 200, each exactly once. */
    qsort(all, n, sizeof all[0], cmp_double);
    for (size_t i = 0; i < n; i++)
        CHECKF(all[i] == (double)(BUCKET_MAX - TAKERS * TAKES + (int)i), "level %zu: %.17g", i,
               all[i]);
    CHECK(tsr_redis_bucket_peek(r, k, kl, BUCKET_MAX, 86400, NOW, &t) == TSR_OK);
    CHECK(t == (double)(BUCKET_MAX - TAKERS * TAKES));
    tsr_redis_get_stats(r, &st);
    CHECK(st.failures == 0);
    {
        const void *keys[1] = {k};
        size_t klens[1] = {kl};
        CHECK(tsr_redis_del(r, keys, klens, 1, NULL) == TSR_OK);
    }
    tsr_redis_free(r);
}

static void bucket_take_reloads_the_script_after_noscript(void)
{
    char k[64], out[64];
    size_t kl;
    double t = 0;
    tsr_redis_stats st;
    tsr_redis *r = client(0, 0);
    if (r == NULL)
        return;
    kl = key(k, sizeof k, "bucket-noscript");
    CHECK(tsr_redis_bucket_take(r, k, kl, 5, 60, NOW, &t) == TSR_OK && t == 4.0);
    /* Redis forgets every script; our cached SHA now answers NOSCRIPT. */
    CHECK(raw2(g_host, g_port, out, sizeof out, "SCRIPT", "FLUSH", 5) > 0 &&
          strncmp(out, "+OK", 3) == 0);
    CHECK(tsr_redis_bucket_take(r, k, kl, 5, 60, NOW, &t) == TSR_OK && t == 3.0);
    CHECK(tsr_redis_bucket_take(r, k, kl, 5, 60, NOW, &t) == TSR_OK && t == 2.0);
    tsr_redis_get_stats(r, &st);
    CHECK(st.failures == 0 && st.skipped == 0);
    CHECK(tsr_redis_up(r));
    {
        const void *keys[1] = {k};
        size_t klens[1] = {kl};
        CHECK(tsr_redis_del(r, keys, klens, 1, NULL) == TSR_OK);
    }
    tsr_redis_free(r);
}

/* ---- tests: pub/sub ------------------------------------------------------------- */

static void publish_subscribe_delivers_messages_intact(void)
{
    static const char m1[] = {'r', 'e', 'v', 0, 'o', 'k', (char)0xff, '\n'};
    static char big[TSR_REDIS_MESSAGE_MAX + 1];
    static rec c;
    char ch[64], out[64];
    long long receivers = -1;
    tsr_redis_stats st;
    int ok;
    tsr_redis *r = client(0, 0);
    if (r == NULL)
        return;
    rec_init(&c);
    key(ch, sizeof ch, "chan");
    CHECK(!tsr_redis_subscribed(r));
    CHECK(tsr_redis_subscribe_start(r, ch, rec_on_message, rec_on_state, &c) == TSR_OK);
    CHECK(tsr_redis_subscribe_start(r, ch, rec_on_message, rec_on_state, &c) == TSR_ERR_INVALID);
    WAIT_FOR(ok, rec_state(&c) == 1, 10000);
    CHECK(ok);
    CHECK(c.states[0] == 1 && c.n_states == 1);
    CHECK(tsr_redis_subscribed(r));

    CHECK(tsr_redis_publish(r, ch, m1, sizeof m1, &receivers) == TSR_OK);
    CHECK(receivers == 1);
    WAIT_FOR(ok, rec_msgs(&c) == 1, 10000);
    CHECK(ok && rec_last_is(&c, m1, sizeof m1));

    /* The empty message is a message. */
    CHECK(tsr_redis_publish(r, ch, NULL, 0, NULL) == TSR_OK);
    WAIT_FOR(ok, rec_msgs(&c) == 2, 10000);
    CHECK(ok && rec_last_is(&c, "", 0));

    /* One byte over the cap, published by someone else: dropped and counted. */
    memset(big, 'z', sizeof big);
    {
        const char *argv[3] = {"PUBLISH", ch, big};
        size_t lens[3] = {7, strlen(ch), sizeof big};
        CHECK(raw_cmd(g_host, g_port, out, sizeof out, 3, argv, lens) > 0 &&
              strncmp(out, ":1\r\n", 4) == 0);
    }
    WAIT_FOR(ok, (tsr_redis_get_stats(r, &st), st.dropped == 1), 10000);
    CHECK(ok);
    /* Exactly at the cap: delivered, and after the dropped one. */
    CHECK(tsr_redis_publish(r, ch, big, TSR_REDIS_MESSAGE_MAX, NULL) == TSR_OK);
    WAIT_FOR(ok, rec_msgs(&c) == 3, 10000);
    CHECK(ok && rec_last_is(&c, big, TSR_REDIS_MESSAGE_MAX));
    tsr_redis_get_stats(r, &st);
    CHECK(st.messages == 3 && st.dropped == 1 && st.resubscribes == 0);
    CHECK(c.n_states == 1 && !c.repeated);
    tsr_redis_free(r);
    pthread_mutex_destroy(&c.mu);
}

/* ---- tests: SIGPIPE ------------------------------------------------------------- */

/* A fake server: answers one PING, closes its side (FIN), then resets (RST). A socket
 * reset in CLOSE_WAIT holds EPIPE: the next write(2) on it raises SIGPIPE. */
typedef struct fake {
    int lfd;
    int ok;
} fake;

static void *fake_main(void *arg)
{
    fake *f = arg;
    char buf[256];
    size_t have = 0;
    struct linger lg = {1, 0};
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    while (have < sizeof buf - 1) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "PING\r\n") != NULL) {
            f->ok = write(fd, "+PONG\r\n", 7) == 7;
            break;
        }
    }
    (void)shutdown(fd, SHUT_WR);
    sleep_ms(20);
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    return NULL;
}

/* hiredis writes with write(2): on a connection the peer reset, that raises SIGPIPE,
 * which would kill this process (the harness leaves SIGPIPE at its default). */
static void reset_connection_does_not_raise_sigpipe(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    fake f = {-1, 0};
    pthread_t th;
    char url[64];
    sigset_t mask, pend;
    tsr_redis *r = NULL;

    f.lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(f.lfd >= 0 && bind(f.lfd, (struct sockaddr *)&a, sizeof a) == 0 &&
          listen(f.lfd, 4) == 0 && getsockname(f.lfd, (struct sockaddr *)&a, &al) == 0);
    CHECK(pthread_create(&th, NULL, fake_main, &f) == 0);
    url_for(url, sizeof url, "127.0.0.1", ntohs(a.sin_port), 0);
    CHECK(tsr_redis_new(url, 1, &r) == TSR_OK);
    CHECK(tsr_redis_ping(r) == TSR_OK);
    pthread_join(th, NULL);
    CHECK(f.ok);
    sleep_ms(50); /* let FIN and RST land; were they late, the read would fail instead */
    /* The pooled connection was reset: the write fails, the process lives on. */
    CHECK(tsr_redis_ping(r) == TSR_ERR_UNAVAILABLE);
    /* ... and the caller's signal state is as it was. */
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0 && sigismember(&mask, SIGPIPE) == 0);
    CHECK(sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE) == 0);
    tsr_redis_free(r);
    close(f.lfd);
}

/* ---- tests: outages ------------------------------------------------------------- */

static void down_redis_answers_unavailable_and_skips_during_backoff(void)
{
    static rec c;
    char url[64], k[64], *logs;
    unsigned char buf[16];
    size_t kl, len;
    double t;
    tsr_redis_stats st;
    int port = free_port(), saw_down = 0, calls = 0, ok;
    tsr_redis *r = NULL;

    CHECK(port != 0);
    rec_init(&c);
    url_for(url, sizeof url, "127.0.0.1", port, 0);
    log_capture_begin();
    CHECK(tsr_redis_new(url, 0, &r) == TSR_OK); /* lazy: nothing listens there */
    if (r == NULL)
        goto out;
    kl = key(k, sizeof k, "never-logged-key");
    CHECK(tsr_redis_ping(r) == TSR_ERR_UNAVAILABLE);
    tsr_redis_get_stats(r, &st);
    CHECK(st.failures == 1);
    /* Calls during the backoff are answered at once, without the network. */
    for (int64_t end = now_ms() + 10000; now_ms() < end;) {
        calls++;
        CHECK(tsr_redis_get(r, k, kl, buf, sizeof buf, &len) == TSR_ERR_UNAVAILABLE);
        CHECK(tsr_redis_set(r, k, kl, "v", 1, 1000) == TSR_ERR_UNAVAILABLE);
        CHECK(tsr_redis_bucket_take(r, k, kl, 5, 60, NOW, &t) == TSR_ERR_UNAVAILABLE);
        CHECK(tsr_redis_bucket_peek(r, k, kl, 5, 60, NOW, &t) == TSR_ERR_UNAVAILABLE);
        CHECK(tsr_redis_publish(r, "c", "m", 1, NULL) == TSR_ERR_UNAVAILABLE);
        if (!tsr_redis_up(r))
            saw_down = 1;
        tsr_redis_get_stats(r, &st);
        if (st.skipped >= 10 && st.failures >= 3 && saw_down)
            break;
        sleep_ms(1);
    }
    tsr_redis_get_stats(r, &st);
    CHECK(saw_down);
    CHECK(st.skipped >= 10);
    CHECK(st.failures >= 3);
    CHECK(st.failures + st.skipped == (uint64_t)calls * 5 + 1);
    CHECK(st.commands == 0);

    /* The subscriber on a dead server: no state report (the first one is always 1),
     * one log line however many attempts, and tsr_redis_free returns while it retries. */
    CHECK(tsr_redis_subscribe_start(r, "tsrtest-chan", rec_on_message, rec_on_state, &c) == TSR_OK);
    WAIT_FOR(ok, log_count("\"msg\":\"redis subscription lost\"") >= 1, 10000);
    CHECK(ok);
    sleep_ms(500); /* a few more attempts (50, 100, 200 ms apart) */
    CHECK(rec_state(&c) == -1);
    CHECK(!tsr_redis_subscribed(r));
    tsr_redis_free(r);
    r = NULL;
out:
    logs = log_capture_end();
    CHECK(count_of(logs, "\"msg\":\"redis unavailable\"") == 1);
    CHECK(count_of(logs, "\"msg\":\"redis subscription lost\"") == 1);
    CHECK(count_of(logs, "\"msg\":\"redis available\"") == 0);
    CHECK(count_of(logs, "\"msg\":\"redis subscribed\"") == 0);
    CHECK(strstr(logs, "never-logged-key") == NULL);
    tsr_redis_free(r);
    pthread_mutex_destroy(&c.mu);
    free(logs);
}

/* A client and its subscriber on a redis-server child of ours. */
typedef struct outage {
    child_srv s;
    tsr_redis *r;
    rec c;
    char ch[64];
} outage;

static int outage_begin(outage *o)
{
    char url[64];
    int ok;
    memset(o, 0, sizeof *o);
    rec_init(&o->c);
    CHECK(child_new(&o->s));
    if (o->s.pid <= 0)
        return 0;
    url_for(url, sizeof url, "127.0.0.1", o->s.port, 0);
    CHECK(tsr_redis_new(url, 4, &o->r) == TSR_OK);
    if (o->r == NULL)
        return 0;
    key(o->ch, sizeof o->ch, "outage");
    CHECK(tsr_redis_subscribe_start(o->r, o->ch, rec_on_message, rec_on_state, &o->c) == TSR_OK);
    WAIT_FOR(ok, rec_state(&o->c) == 1, 10000);
    CHECK(ok);
    return ok;
}

static void outage_end(outage *o)
{
    tsr_redis_free(o->r);
    o->r = NULL;
    child_done(&o->s);
    pthread_mutex_destroy(&o->c.mu);
}

/* Publishes msg once subscribed and waits until it is the n-th message received. */
static int publish_arrives(outage *o, const char *msg, int n)
{
    long long receivers = 0;
    int ok;
    CHECK(tsr_redis_publish(o->r, o->ch, msg, strlen(msg), &receivers) == TSR_OK);
    CHECK(receivers == 1);
    WAIT_FOR(ok, rec_msgs(&o->c) == n, 10000);
    CHECK(ok && rec_last_is(&o->c, msg, strlen(msg)));
    return ok;
}

static void restart_is_survived_by_commands_subscriber_and_script(void)
{
    static outage o;
    char k[64], *logs;
    unsigned char buf[16];
    size_t kl, len;
    double t = 0;
    uint64_t skipped0;
    tsr_redis_stats st;
    int ok;

    log_capture_begin();
    if (!outage_begin(&o))
        goto out;
    kl = key(k, sizeof k, "restart-key");
    CHECK(tsr_redis_set(o.r, k, kl, "v", 1, 600000) == TSR_OK);
    /* A key of another type: the error reply (WRONGTYPE) counts as a failure. */
    CHECK(tsr_redis_bucket_take(o.r, k, kl, 5, 60, NOW, &t) == TSR_ERR_UNAVAILABLE);
    tsr_redis_get_stats(o.r, &st);
    CHECK(st.failures == 1);
    WAIT_FOR(ok, tsr_redis_up(o.r), 10000);
    CHECK(ok);
    kl = key(k, sizeof k, "restart-bucket");
    CHECK(tsr_redis_bucket_take(o.r, k, kl, 5, 60, NOW, &t) == TSR_OK && t == 4.0);
    publish_arrives(&o, "before", 1);

    child_kill(&o.s);
    WAIT_FOR(ok, rec_state(&o.c) == 0, 10000);
    CHECK(ok);
    CHECK(!tsr_redis_subscribed(o.r));
    WAIT_FOR(ok, tsr_redis_ping(o.r) == TSR_ERR_UNAVAILABLE, 10000);
    CHECK(ok);
    /* While it is down, calls in a backoff are skipped. */
    tsr_redis_get_stats(o.r, &st);
    skipped0 = st.skipped;
    WAIT_FOR(ok,
             (tsr_redis_get(o.r, k, kl, buf, sizeof buf, &len) == TSR_ERR_UNAVAILABLE &&
              (tsr_redis_get_stats(o.r, &st), st.skipped > skipped0)),
             10000);
    CHECK(ok);

    /* Same port, empty server: no data, no scripts. */
    CHECK(child_start(&o.s));
    WAIT_FOR(ok, tsr_redis_ping(o.r) == TSR_OK, 20000);
    CHECK(ok);
    CHECK(tsr_redis_up(o.r));
    /* Our cached SHA meets an empty script cache: the NOSCRIPT path. */
    CHECK(tsr_redis_bucket_take(o.r, k, kl, 5, 60, NOW, &t) == TSR_OK && t == 4.0);
    WAIT_FOR(ok, rec_state(&o.c) == 1, 20000);
    CHECK(ok);
    CHECK(tsr_redis_subscribed(o.r));
    publish_arrives(&o, "after", 2);
    pthread_mutex_lock(&o.c.mu);
    CHECK(o.c.n_states == 3 && o.c.states[0] == 1 && o.c.states[1] == 0 && o.c.states[2] == 1 &&
          !o.c.repeated);
    pthread_mutex_unlock(&o.c.mu);
    tsr_redis_get_stats(o.r, &st);
    CHECK(st.resubscribes == 1);
    CHECK(st.messages == 2);
out:
    outage_end(&o);
    logs = log_capture_end();
    /* One line per change of state, not one per failed attempt. */
    CHECK(count_of(logs, "\"msg\":\"redis unavailable\"") == 2);
    CHECK(count_of(logs, "\"msg\":\"redis available\"") == 2);
    CHECK(count_of(logs, "\"msg\":\"redis subscription lost\"") == 1);
    CHECK(count_of(logs, "\"msg\":\"redis subscribed\"") == 2);
    CHECK(strstr(logs, "restart-") == NULL);
    free(logs);
}

typedef struct pinger {
    tsr_redis *r;
    pthread_barrier_t *go;
    int errors;
} pinger;

static void *pinger_main(void *arg)
{
    pinger *p = arg;
    pthread_barrier_wait(p->go);
    for (int i = 0; i < 100; i++)
        if (tsr_redis_ping(p->r) != TSR_OK)
            p->errors++;
    return NULL;
}

/* After a failure the other idle connections (likely dead alike) are closed too, so
 * the first call after the backoff does not fail again on a stale one. */
static void failure_closes_the_other_idle_connections(void)
{
    static outage o;
    pinger pg[4];
    pthread_t th[4];
    pthread_barrier_t go;
    char out[64];
    tsr_redis_stats st;
    int ok;

    if (!outage_begin(&o))
        goto out;
    /* Open several pooled connections at once. */
    CHECK(pthread_barrier_init(&go, NULL, 4) == 0);
    for (int i = 0; i < 4; i++) {
        pg[i] = (pinger){o.r, &go, 0};
        CHECK(pthread_create(&th[i], NULL, pinger_main, &pg[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(pg[i].errors == 0);
    }
    pthread_barrier_destroy(&go);
    /* The server closes every command connection (not the subscriber's). */
    {
        const char *argv[6] = {"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"};
        size_t lens[6] = {6, 4, 4, 6, 6, 3};
        CHECK(raw_cmd("127.0.0.1", o.s.port, out, sizeof out, 6, argv, lens) > 0);
        CHECKF(out[0] == ':' && strtol(out + 1, NULL, 10) >= 2, "killed %s", out);
    }
    CHECK(tsr_redis_ping(o.r) == TSR_ERR_UNAVAILABLE);
    WAIT_FOR(ok, tsr_redis_up(o.r), 10000);
    CHECK(ok);
    CHECK(tsr_redis_ping(o.r) == TSR_OK);
    tsr_redis_get_stats(o.r, &st);
    CHECK(st.failures == 1);
    CHECK(rec_state(&o.c) == 1);
out:
    outage_end(&o);
}

static void hung_redis_is_noticed_and_free_returns(void)
{
    static outage o;
    int ok;
    int64_t t0;

    if (!outage_begin(&o))
        goto out;
    publish_arrives(&o, "one", 1);
    /* A stopped process: connections are accepted by the kernel, nothing answers. */
    CHECK(kill(o.s.pid, SIGSTOP) == 0);
    WAIT_FOR(ok, rec_state(&o.c) == 0, 15000);
    CHECK(ok);
    WAIT_FOR(ok, tsr_redis_ping(o.r) == TSR_ERR_UNAVAILABLE, 10000);
    CHECK(ok);
    CHECK(kill(o.s.pid, SIGCONT) == 0);
    WAIT_FOR(ok, tsr_redis_ping(o.r) == TSR_OK, 20000);
    CHECK(ok);
    WAIT_FOR(ok, rec_state(&o.c) == 1, 20000);
    CHECK(ok);
    publish_arrives(&o, "two", 2);
    pthread_mutex_lock(&o.c.mu);
    CHECK(o.c.n_states == 3 && !o.c.repeated);
    pthread_mutex_unlock(&o.c.mu);

    /* Hung again: tsr_redis_free stops the subscriber and returns. */
    CHECK(kill(o.s.pid, SIGSTOP) == 0);
    sleep_ms(100);
    t0 = now_ms();
    tsr_redis_free(o.r);
    o.r = NULL;
    printf("     (free with a hung redis took %lld ms)\n", (long long)(now_ms() - t0));
out:
    outage_end(&o);
}

static void free_returns_with_the_subscriber_running_on_a_dead_redis(void)
{
    static outage o;
    int ok;
    int64_t t0;

    if (!outage_begin(&o))
        goto out;
    child_kill(&o.s);
    WAIT_FOR(ok, rec_state(&o.c) == 0, 10000);
    CHECK(ok);
    sleep_ms(400); /* well into the reconnect backoff */
    t0 = now_ms();
    tsr_redis_free(o.r);
    o.r = NULL;
    printf("     (free with a dead redis took %lld ms)\n", (long long)(now_ms() - t0));
out:
    outage_end(&o);
}

int main(void)
{
    TSR_RUN(redis_url_is_set);
    TSR_RUN(url_accepts_good_and_rejects_each_bad_twin);
    TSR_RUN(ping_answers_and_counts_commands);
    TSR_RUN(get_set_del_round_trip_binary_values);
    TSR_RUN(value_over_cap_and_bad_arguments_are_invalid);
    TSR_RUN(ttl_expires_the_key);
    TSR_RUN(db_number_selects_the_database);
    TSR_RUN(bucket_missing_is_full_and_take_decrements);
    TSR_RUN(bucket_take_clamps_at_minus_max);
    TSR_RUN(bucket_refills_later_and_never_backwards);
    TSR_RUN(bucket_concurrent_takes_never_lose_one);
    TSR_RUN(bucket_take_reloads_the_script_after_noscript);
    TSR_RUN(publish_subscribe_delivers_messages_intact);
    TSR_RUN(reset_connection_does_not_raise_sigpipe);
    TSR_RUN(down_redis_answers_unavailable_and_skips_during_backoff);
    TSR_RUN(restart_is_survived_by_commands_subscriber_and_script);
    TSR_RUN(failure_closes_the_other_idle_connections);
    TSR_RUN(hung_redis_is_noticed_and_free_returns);
    TSR_RUN(free_returns_with_the_subscriber_running_on_a_dead_redis);
    return tsr_test_summary();
}
