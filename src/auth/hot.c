/* hot.c: auth's side of Redis (cache.url = redis://...): the session cache, the
 * login buckets shared by every instance, and the revocation fan-out.
 *
 * The store stays the source of truth; Redis only makes it faster and makes
 * revocations travel in milliseconds. The rules (docs/internals/auth.md):
 * - Revocation fan-out: every revocation row this process reads right after a
 *   change of its own is published on TSR_HOT_CHANNEL; every instance adds what it
 *   receives to its revoked set. The store's log is still read every 100 ms.
 * - While the subscription is not confirmed (Redis down, connection lost, not yet
 *   subscribed), a bearer check first syncs from the store (coalesced: a sync
 *   that began after the request arrived is enough), so a token revoked on another
 *   instance is never accepted meanwhile; and the session cache is not used.
 * - Session cache: cookie look-ups (by the secret's SHA-256) and stateful bearer
 *   look-ups (by sid) are answered from Redis when present and their sid is not in
 *   the revoked set; misses read the store and fill the cache for at most
 *   TSR_HOT_TTL seconds. The instance that revokes deletes the entries of every
 *   revoked sid before it answers, so another instance's next look-up misses and
 *   reads the store.
 * - Login buckets live in Redis, keyed by the same salted hashes as the local
 *   limiter, with the salt shared through the store's meta table. When Redis
 *   fails, the local limiter (always kept up to date too) answers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "auth/revset.h"
#include "common/log.h"

#define HOT_SALT_META "ratelimit_salt"
#define HOT_KEY_MAX 96
#define HOT_FIELDS 19   /* 17 of the record, its expiry, its MAC */
#define HOT_MAC_META "cache_mac_key"

/* ---- keys ---- */

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_decode(const char *in, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) {
        char c = in[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return in[2 * n] == '\0';
}

/* As hex_decode, for 2n characters not followed by a NUL. */
static int hex_decode_n(const char *in, uint8_t *out, size_t n)
{
    char tmp[2 * TSR_MAC_BYTES + 1];
    if (n > TSR_MAC_BYTES)
        return 0;
    memcpy(tmp, in, 2 * n);
    tmp[2 * n] = '\0';
    return hex_decode(tmp, out, n);
}

/* "tsr:h:<hex hash>": a cookie session by its secret's SHA-256. */
static size_t key_hash(const uint8_t hash[TSR_HASH_BYTES], char out[HOT_KEY_MAX])
{
    memcpy(out, "tsr:h:", 6);
    hex_encode(hash, TSR_HASH_BYTES, out + 6);
    return 6 + 2 * TSR_HASH_BYTES;
}

/* "tsr:<tag>:<sid>": 'i' a session by sid (stateful bearer), 'x' the hex hash of
 * the cookie entry of that sid (so a revocation by sid finds it). */
static size_t key_sid(char tag, const char *sid, char out[HOT_KEY_MAX])
{
    int n = snprintf(out, HOT_KEY_MAX, "tsr:%c:%s", tag, sid);
    return n > 0 && n < HOT_KEY_MAX ? (size_t)n : 0;
}

/* MAC of (key, record): HMAC-SHA-256 under the cache key shared by instances. */
static tsr_err record_mac(tsr_auth *a, const char *key, size_t klen, const char *rec, size_t n,
                          uint8_t mac[TSR_MAC_BYTES])
{
    char buf[HOT_KEY_MAX + 1 + TSR_HOT_RECORD_MAX];
    tsr_err rc;

    if (klen > HOT_KEY_MAX || n > TSR_HOT_RECORD_MAX)
        return TSR_ERR_INVALID;
    memcpy(buf, key, klen);
    buf[klen] = '\n';
    memcpy(buf + klen + 1, rec, n);
    rc = tsr_mac(a->cache_key, buf, klen + 1 + n, mac);
    tsr_wipe(buf, sizeof buf);
    return rc;
}

/* ---- the cached record: a session and its user, tab-separated ----
 * Every text field is printable ASCII without tabs (ids, usernames, roles are
 * restricted; ip and user agent were cleaned by tsr_auth_copy_printable), so a
 * tab never occurs inside a field. The first field is a format version. */

/* The record, its last second of validity, and a MAC over the Redis key and all
 * that: whoever can write to Redis can delete entries, but cannot make one up,
 * move one to another key (a cookie hash of their choosing) or replay one past its
 * validity (by then the revoked set has any revocation of its sid). */
static size_t encode(tsr_auth *a, const char *key, size_t klen, const tsr_session *s,
                     const tsr_user *u, int64_t valid_until, char *out, size_t cap)
{
    uint8_t mac[TSR_MAC_BYTES];
    char hex[2 * TSR_MAC_BYTES + 1];
    int n = snprintf(out, cap,
                     "1\t%s\t%s\t%d\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
                     "\t%s\t%s\t%s\t%" PRId64 "\t%s\t%s\t%d\t%" PRId64 "\t%s\t%" PRId64,
                     s->id, s->user_id, (int)s->kind, s->created_at, s->last_seen_at,
                     s->expires_at, s->idle_expires_at, s->ip, s->user_agent, s->scope,
                     s->generation, u->id, u->username, u->disabled ? 1 : 0, u->created_at,
                     u->roles, valid_until);
    size_t len;

    if (n <= 0 || (size_t)n + 1 + 2 * TSR_MAC_BYTES >= cap)
        return 0;
    len = (size_t)n;
    if (record_mac(a, key, klen, out, len, mac) != TSR_OK)
        return 0;
    hex_encode(mac, sizeof mac, hex);
    out[len] = '\t';
    memcpy(out + len + 1, hex, 2 * TSR_MAC_BYTES + 1);
    return len + 1 + 2 * TSR_MAC_BYTES;
}

static int put_text(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        return 0;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 1;
}

static int put_int(int64_t *dst, const char *src, size_t n)
{
    int64_t v = 0;
    int neg = n > 0 && src[0] == '-';
    if (n == (size_t)neg || n > 20)
        return 0;
    for (size_t i = (size_t)neg; i < n; i++) {
        if (src[i] < '0' || src[i] > '9' || v > (INT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (src[i] - '0');
    }
    *dst = neg ? -v : v;
    return 1;
}

/* Strict: exactly HOT_FIELDS fields, each within its cap; else 0 (a miss). */
static int decode(tsr_auth *a, const char *key, size_t klen, const char *buf, size_t len,
                  int64_t now, tsr_session *s, tsr_user *u)
{
    const char *f[HOT_FIELDS];
    size_t fl[HOT_FIELDS], nf = 0, start = 0;
    int64_t kind = 0, disabled = 0, valid_until = 0;
    uint8_t mac[TSR_MAC_BYTES], want[TSR_MAC_BYTES];

    memset(s, 0, sizeof *s);
    memset(u, 0, sizeof *u);
    for (size_t i = 0; i <= len; i++) {
        if (i == len || buf[i] == '\t') {
            if (nf == HOT_FIELDS)
                return 0;
            f[nf] = buf + start;
            fl[nf++] = i - start;
            start = i + 1;
        } else if (buf[i] == '\0') {
            return 0;
        }
    }
    if (nf != HOT_FIELDS || fl[0] != 1 || f[0][0] != '1')
        return 0;
    /* The MAC first: nothing else of a record we did not write is looked at. */
    if (fl[18] != 2 * TSR_MAC_BYTES || f[18] - buf < 1 || !hex_decode_n(f[18], mac, TSR_MAC_BYTES) ||
        record_mac(a, key, klen, buf, (size_t)(f[18] - buf) - 1, want) != TSR_OK ||
        !tsr_ct_eq(mac, want, TSR_MAC_BYTES))
        return 0;
    if (!put_int(&valid_until, f[17], fl[17]) || now >= valid_until)
        return 0;
    return put_text(s->id, sizeof s->id, f[1], fl[1]) &&
           put_text(s->user_id, sizeof s->user_id, f[2], fl[2]) && put_int(&kind, f[3], fl[3]) &&
           (kind == TSR_SESSION_COOKIE || kind == TSR_SESSION_REFRESH) &&
           put_int(&s->created_at, f[4], fl[4]) && put_int(&s->last_seen_at, f[5], fl[5]) &&
           put_int(&s->expires_at, f[6], fl[6]) && put_int(&s->idle_expires_at, f[7], fl[7]) &&
           put_text(s->ip, sizeof s->ip, f[8], fl[8]) &&
           put_text(s->user_agent, sizeof s->user_agent, f[9], fl[9]) &&
           put_text(s->scope, sizeof s->scope, f[10], fl[10]) &&
           put_int(&s->generation, f[11], fl[11]) && put_text(u->id, sizeof u->id, f[12], fl[12]) &&
           put_text(u->username, sizeof u->username, f[13], fl[13]) &&
           put_int(&disabled, f[14], fl[14]) && (disabled == 0 || disabled == 1) &&
           put_int(&u->created_at, f[15], fl[15]) &&
           put_text(u->roles, sizeof u->roles, f[16], fl[16]) &&
           (s->kind = (tsr_session_kind)kind, u->disabled = (int)disabled, 1) &&
           strcmp(s->user_id, u->id) == 0;
}

int tsr_auth_hot_live(tsr_auth *a)
{
    return a->redis != NULL && atomic_load_explicit(&a->feed_live, memory_order_acquire);
}

/* Seconds an entry may live: at most TSR_HOT_TTL, never past the session's end,
 * and never longer than the revoked set keeps a sid (so a replayed entry of a
 * revoked session is refused by the set for as long as it is valid). */
static int64_t hot_ttl(const tsr_auth *a, const tsr_session *s, int64_t now)
{
    int64_t until = s->expires_at < s->idle_expires_at ? s->expires_at : s->idle_expires_at;
    int64_t ttl = until - now;
    int64_t keep = a->opts.access_ttl + TSR_JWT_DEFAULT_LEEWAY - 1;
    if (ttl > TSR_HOT_TTL)
        ttl = TSR_HOT_TTL;
    if (ttl > keep)
        ttl = keep;
    return ttl;
}

static int hot_get(tsr_auth *a, const char *key, size_t klen, int64_t now, tsr_session *s,
                   tsr_user *u)
{
    char buf[TSR_HOT_RECORD_MAX];
    size_t len = 0;
    tsr_err rc;
    int ok = 0;

    rc = tsr_redis_get(a->redis, key, klen, buf, sizeof buf, &len);
    if (rc == TSR_OK)
        ok = decode(a, key, klen, buf, len, now, s, u);
    tsr_wipe(buf, sizeof buf);
    if (ok)
        atomic_fetch_add_explicit(&a->hot_hits, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&a->hot_misses, 1, memory_order_relaxed);
    return ok;
}

int tsr_auth_hot_session_get(tsr_auth *a, const uint8_t hash[TSR_HASH_BYTES], int64_t now,
                             tsr_session *s, tsr_user *u)
{
    char key[HOT_KEY_MAX];
    size_t klen;

    if (!tsr_auth_hot_live(a))
        return 0;
    klen = key_hash(hash, key);
    if (!hot_get(a, key, klen, now, s, u))
        return 0;
    memcpy(s->secret_hash, hash, TSR_HASH_BYTES);
    if (tsr_auth_is_revoked(a, s->id, NULL, now)) {
        memset(s, 0, sizeof *s);
        tsr_wipe(u, sizeof *u);
        return 0;
    }
    return 1;
}

void tsr_auth_hot_session_put(tsr_auth *a, const uint8_t hash[TSR_HASH_BYTES],
                              const tsr_session *s, const tsr_user *u, int64_t now)
{
    char key[HOT_KEY_MAX], xkey[HOT_KEY_MAX], val[TSR_HOT_RECORD_MAX];
    char hex[2 * TSR_HASH_BYTES + 1];
    size_t klen, xlen, vlen;
    int64_t ttl = hot_ttl(a, s, now);

    if (!tsr_auth_hot_live(a) || ttl <= 0)
        return;
    klen = key_hash(hash, key);
    vlen = encode(a, key, klen, s, u, now + ttl, val, sizeof val);
    xlen = key_sid('x', s->id, xkey);
    if (vlen == 0 || xlen == 0)
        return;
    hex_encode(hash, TSR_HASH_BYTES, hex);
    /* The sid -> hash link first: a revocation that reads it finds the entry. */
    if (tsr_redis_set(a->redis, xkey, xlen, hex, strlen(hex), ttl * 1000) == TSR_OK &&
        tsr_redis_set(a->redis, key, klen, val, vlen, ttl * 1000) != TSR_OK)
        tsr_log(TSR_LOG_DEBUG, "session cache fill failed");
    tsr_wipe(val, sizeof val);
}

int tsr_auth_hot_sid_get(tsr_auth *a, const char *sid, int64_t now, tsr_session *s, tsr_user *u)
{
    char key[HOT_KEY_MAX];
    size_t klen;

    if (!tsr_auth_hot_live(a))
        return 0;
    klen = key_sid('i', sid, key);
    if (klen == 0 || !hot_get(a, key, klen, now, s, u))
        return 0;
    if (strcmp(s->id, sid) != 0 || tsr_auth_is_revoked(a, sid, NULL, now)) {
        memset(s, 0, sizeof *s);
        tsr_wipe(u, sizeof *u);
        return 0;
    }
    return 1;
}

void tsr_auth_hot_sid_put(tsr_auth *a, const tsr_session *s, const tsr_user *u, int64_t now)
{
    char key[HOT_KEY_MAX], val[TSR_HOT_RECORD_MAX];
    size_t klen, vlen = 0;
    int64_t ttl = hot_ttl(a, s, now);

    if (!tsr_auth_hot_live(a) || ttl <= 0)
        return;
    klen = key_sid('i', s->id, key);
    if (klen > 0)
        vlen = encode(a, key, klen, s, u, now + ttl, val, sizeof val);
    if (klen > 0 && vlen > 0 &&
        tsr_redis_set(a->redis, key, klen, val, vlen, ttl * 1000) != TSR_OK)
        tsr_log(TSR_LOG_DEBUG, "session cache fill failed");
    tsr_wipe(val, sizeof val);
}

/* Deletes every cache entry of the session sid (both look-ups). */
static void forget_sid(tsr_auth *a, const char *sid)
{
    char ikey[HOT_KEY_MAX], xkey[HOT_KEY_MAX], hkey[HOT_KEY_MAX], hex[2 * TSR_HASH_BYTES + 1];
    uint8_t hash[TSR_HASH_BYTES];
    const void *keys[3];
    size_t klens[3], n = 0, len = 0;

    klens[0] = key_sid('i', sid, ikey);
    klens[1] = key_sid('x', sid, xkey);
    if (klens[0] == 0 || klens[1] == 0)
        return;
    keys[0] = ikey;
    keys[1] = xkey;
    n = 2;
    if (tsr_redis_get(a->redis, xkey, klens[1], hex, sizeof hex - 1, &len) == TSR_OK &&
        len == 2 * TSR_HASH_BYTES) {
        hex[len] = '\0';
        if (hex_decode(hex, hash, TSR_HASH_BYTES)) {
            klens[2] = key_hash(hash, hkey);
            keys[2] = hkey;
            n = 3;
        }
    }
    /* A failure leaves entries that the revoked set refuses until they expire. */
    if (tsr_redis_del(a->redis, keys, klens, n, NULL) != TSR_OK)
        tsr_log(TSR_LOG_DEBUG, "session cache delete failed");
}

void tsr_auth_hot_forget_user(tsr_auth *a, const char *user_id, int64_t now)
{
    tsr_session *list;
    size_t n = 0;

    if (a->redis == NULL)
        return;
    list = calloc(TSR_HOT_USER_SESSIONS_MAX, sizeof *list);
    if (list == NULL)
        return;
    if (tsr_store_session_list(a->store, user_id, now, list, TSR_HOT_USER_SESSIONS_MAX, &n) ==
        TSR_OK) {
        for (size_t i = 0; i < n; i++)
            forget_sid(a, list[i].id);
    }
    free(list);
}

/* ---- revocation fan-out ---- */

void tsr_auth_hot_note(tsr_auth *a, const tsr_revocation *r, int64_t until, int64_t now)
{
    tsr_hot_pending *p;

    if (a->redis == NULL)
        return;
    if (a->npending == TSR_HOT_PENDING_MAX) {
        memmove(a->pending, a->pending + 1, (TSR_HOT_PENDING_MAX - 1) * sizeof *a->pending);
        a->npending--;
    }
    p = &a->pending[a->npending++];
    p->kind = r->kind;
    p->until = until;
    p->read_at = now;
    memcpy(p->value, r->value, sizeof p->value);
}

void tsr_auth_hot_expire_pending(tsr_auth *a, int64_t now)
{
    size_t keep = 0;

    for (size_t i = 0; i < a->npending; i++) {
        if (now - a->pending[i].read_at <= TSR_HOT_PENDING_AGE)
            a->pending[keep++] = a->pending[i];
    }
    a->npending = keep;
}

/* Called with sync_mu held, right after a local change was read in. */
void tsr_auth_hot_publish_pending(tsr_auth *a)
{
    char msg[TSR_HOT_MESSAGE_MAX];

    if (a->redis == NULL)
        return;
    for (size_t i = 0; i < a->npending; i++) {
        const tsr_hot_pending *p = &a->pending[i];
        uint8_t mac[TSR_MAC_BYTES];
        int n = snprintf(msg, sizeof msg, "1 %d %" PRId64 " %s", (int)p->kind, p->until, p->value);
        if (p->kind == TSR_REVOKE_SID)
            forget_sid(a, p->value);
        /* " <hex MAC>" over the channel name and the text: only instances speak. */
        if (n > 0 && (size_t)n + 1 + 2 * TSR_MAC_BYTES < sizeof msg &&
            record_mac(a, TSR_HOT_CHANNEL, strlen(TSR_HOT_CHANNEL), msg, (size_t)n, mac) == TSR_OK) {
            msg[n] = ' ';
            hex_encode(mac, sizeof mac, msg + n + 1);
            n += 1 + 2 * TSR_MAC_BYTES;
        } else {
            n = -1;
        }
        if (n > 0 &&
            tsr_redis_publish(a->redis, TSR_HOT_CHANNEL, msg, (size_t)n, NULL) == TSR_OK)
            atomic_fetch_add_explicit(&a->hot_published, 1, memory_order_relaxed);
    }
    a->npending = 0;
}

/* "1 KIND UNTIL VALUE MAC", strictly: a message whose MAC (under the key the
 * instances share through the store) does not verify is dropped, so a writer to
 * Redis cannot feed the revoked set; UNTIL is capped at the longest any real
 * revocation needs (plus a minute for clocks), so nothing lingers or piles up. */
static void on_message(void *ctx, const char *msg, size_t len)
{
    tsr_auth *a = ctx;
    char buf[TSR_HOT_MESSAGE_MAX];
    uint8_t mac[TSR_MAC_BYTES], want[TSR_MAC_BYTES];
    char *p, *end, *sp;
    long kind;
    long long until, now = (long long)time(NULL), cap;
    size_t vlen, body;

    if (len >= sizeof buf || len < 2 + 2 * TSR_MAC_BYTES)
        return;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL)
        return;
    body = len - 1 - 2 * TSR_MAC_BYTES;
    if (buf[body] != ' ' || !hex_decode(buf + body + 1, mac, TSR_MAC_BYTES) ||
        record_mac(a, TSR_HOT_CHANNEL, strlen(TSR_HOT_CHANNEL), buf, body, want) != TSR_OK ||
        !tsr_ct_eq(mac, want, TSR_MAC_BYTES))
        return;
    buf[body] = '\0';
    if (strncmp(buf, "1 ", 2) != 0)
        return;
    p = buf + 2;
    kind = strtol(p, &end, 10);
    if (end == p || *end != ' ' || (kind != TSR_REVOKE_SID && kind != TSR_REVOKE_JTI))
        return;
    p = end + 1;
    until = strtoll(p, &end, 10);
    if (end == p || *end != ' ' || until <= 0)
        return;
    p = end + 1;
    vlen = strlen(p);
    sp = strchr(p, ' ');
    if (vlen == 0 || vlen > TSR_ID_MAX || sp != NULL)
        return;
    if (until < now)
        return;
    cap = now + a->opts.access_ttl + TSR_JWT_DEFAULT_LEEWAY + TSR_HOT_CLOCK_SLACK;
    if (until > cap)
        until = cap;
    if (tsr_revset_add(a->revset, (tsr_revocation_kind)kind, p, vlen, (int64_t)until) == TSR_OK)
        atomic_fetch_add_explicit(&a->hot_received, 1, memory_order_relaxed);
}

static void on_state(void *ctx, int subscribed)
{
    tsr_auth *a = ctx;
    uint64_t g;

    if (!subscribed) {
        atomic_store_explicit(&a->resync_pending, 0, memory_order_release);
        atomic_store_explicit(&a->feed_live, 0, memory_order_release);
        tsr_log(TSR_LOG_WARN, "revocation feed lost; bearer checks read the store until it is back");
        return;
    }
    /* Messages published while we were away are lost: read the log first, then
     * trust the feed again. */
    g = atomic_fetch_add_explicit(&a->resync_gen, 1, memory_order_acq_rel) + 1;
    atomic_store_explicit(&a->resync_pending, g, memory_order_release);
    if (tsr_auth_sync_revocations(a, (int64_t)time(NULL)) != TSR_OK) {
        /* The background sync retries and turns the feed on once a read that
         * began after this subscription succeeds (tsr_auth_hot_resync_done). */
        tsr_log(TSR_LOG_WARN, "revocation sync after resubscribe failed; staying on the store");
        return;
    }
    tsr_auth_hot_resync_done(a, g);
}

/* After a store read succeeded that began when resync_pending was g (nonzero):
 * the log is caught up with everything before that subscription, so the feed is
 * trusted again, unless a newer subscription has come (or gone) since. */
void tsr_auth_hot_resync_done(tsr_auth *a, uint64_t g)
{
    uint_fast64_t expect = g;

    if (a->redis == NULL || g == 0 || !tsr_redis_subscribed(a->redis))
        return;
    if (!atomic_compare_exchange_strong_explicit(&a->resync_pending, &expect, 0,
                                                 memory_order_acq_rel, memory_order_acquire))
        return;
    atomic_store_explicit(&a->feed_live, 1, memory_order_release);
    tsr_log(TSR_LOG_INFO, "revocation feed live");
}

/* ---- shared login buckets ---- */

static size_t key_rate(const uint8_t key[TSR_RATE_KEY_BYTES], char out[HOT_KEY_MAX])
{
    memcpy(out, "tsr:r:", 6);
    hex_encode(key, TSR_RATE_KEY_BYTES, out + 6);
    return 6 + 2 * TSR_RATE_KEY_BYTES;
}

tsr_err tsr_auth_hot_rate_check(tsr_auth *a, const uint8_t key[TSR_RATE_KEY_BYTES], int64_t now,
                                int64_t *retry_after)
{
    char k[HOT_KEY_MAX];
    size_t klen = key_rate(key, k);
    double t = 0;
    tsr_err rc;

    *retry_after = 0;
    rc = tsr_redis_bucket_peek(a->redis, k, klen, a->opts.login_max_failures,
                               a->opts.login_window, now, &t);
    if (rc != TSR_OK)
        return rc;
    if (t < 1.0) {
        double wait, lo = -(double)a->opts.login_max_failures;
        int64_t w;
        if (!(t >= lo)) /* also NaN: a bucket written by someone else */
            t = lo;
        wait = (1.0 - t) * (double)a->opts.login_window / (double)a->opts.login_max_failures;
        w = (int64_t)wait; /* at most two windows */
        if ((double)w < wait)
            w++;
        *retry_after = w < 1 ? 1 : w;
        return TSR_ERR_RATE_LIMITED;
    }
    return TSR_OK;
}

tsr_err tsr_auth_hot_rate_record(tsr_auth *a, const uint8_t key[TSR_RATE_KEY_BYTES], int ok,
                                 int64_t now)
{
    char k[HOT_KEY_MAX];
    size_t klen = key_rate(key, k);
    const void *keys[1] = {k};

    if (ok)
        return tsr_redis_del(a->redis, keys, &klen, 1, NULL);
    return tsr_redis_bucket_take(a->redis, k, klen, a->opts.login_max_failures,
                                 a->opts.login_window, now, NULL);
}

/* ---- attach ---- */

/* A random secret of n bytes shared by every instance through the store's meta
 * table: the first instance to insert it wins, the others read it. */
static tsr_err shared_secret(tsr_auth *a, const char *name, uint8_t *out, size_t n)
{
    char hex[2 * TSR_MAC_KEY_BYTES + 1];
    uint8_t fresh[TSR_MAC_KEY_BYTES];
    tsr_err rc;

    if (n > sizeof fresh)
        return TSR_ERR_INVALID;
    rc = tsr_store_meta_get(a->store, name, hex, sizeof hex);
    if (rc == TSR_ERR_NOT_FOUND) {
        rc = tsr_rand(fresh, n);
        if (rc != TSR_OK)
            return rc;
        hex_encode(fresh, n, hex);
        tsr_wipe(fresh, sizeof fresh);
        rc = tsr_store_meta_insert(a->store, name, hex);
        if (rc == TSR_ERR_EXISTS)
            rc = tsr_store_meta_get(a->store, name, hex, sizeof hex);
    }
    if (rc == TSR_OK && (strlen(hex) != 2 * n || !hex_decode(hex, out, n)))
        rc = TSR_ERR_INTERNAL;
    tsr_wipe(hex, sizeof hex);
    return rc;
}

tsr_err tsr_auth_attach_redis(tsr_auth *a, tsr_redis *r)
{
    tsr_err rc;

    if (a == NULL || r == NULL || a->redis != NULL)
        return TSR_ERR_INVALID;
    rc = shared_secret(a, HOT_SALT_META, a->salt, sizeof a->salt);
    if (rc == TSR_OK)
        rc = shared_secret(a, HOT_MAC_META, a->cache_key, sizeof a->cache_key);
    if (rc != TSR_OK)
        return rc;
    a->pending = calloc(TSR_HOT_PENDING_MAX, sizeof *a->pending);
    if (a->pending == NULL)
        return TSR_ERR_NOMEM;
    a->redis = r;
    rc = tsr_redis_subscribe_start(r, TSR_HOT_CHANNEL, on_message, on_state, a);
    if (rc != TSR_OK) {
        a->redis = NULL;
        free(a->pending);
        a->pending = NULL;
    }
    return rc;
}

void tsr_auth_hot_stats_get(tsr_auth *a, tsr_auth_hot_stats *out)
{
    memset(out, 0, sizeof *out);
    if (a == NULL || a->redis == NULL)
        return;
    out->attached = 1;
    /* A PING per scrape (answered at once while backing off): "up" means Redis
     * answers now, not merely that nothing has failed lately. */
    out->redis_up = tsr_redis_ping(a->redis) == TSR_OK;
    out->subscribed = atomic_load_explicit(&a->feed_live, memory_order_acquire);
    out->session_hits = atomic_load_explicit(&a->hot_hits, memory_order_relaxed);
    out->session_misses = atomic_load_explicit(&a->hot_misses, memory_order_relaxed);
    out->published = atomic_load_explicit(&a->hot_published, memory_order_relaxed);
    out->received = atomic_load_explicit(&a->hot_received, memory_order_relaxed);
}
