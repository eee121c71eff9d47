/* redis.h: tessera's Redis client (hiredis), for hot data shared by instances:
 * the session cache, the login rate-limit buckets, and the pub/sub channel that
 * carries revocations to every instance. hiredis is included under
 * src/store/redis/ only.
 *
 * Redis is never the source of truth: every caller has a path without it. So
 * this client never blocks a request for long: each command has a short timeout
 * (TSR_REDIS_TIMEOUT_MS), and after a failure it stops trying for a backoff
 * period (50 ms doubling to 2 s), answering TSR_ERR_UNAVAILABLE at once until
 * then, so that a dead Redis costs requests nothing but the fallback.
 *
 * Commands run on a pool of blocking connections (at most pool_max, opened
 * lazily, one per concurrent caller; when all are busy a caller waits up to
 * TSR_REDIS_TIMEOUT_MS, then gets TSR_ERR_UNAVAILABLE without a backoff, as that
 * is local contention); pub/sub runs on a thread of its own with
 * its own connection. Every function is thread-safe, except that tsr_redis_free
 * must not overlap another call on the same client. Keys and values are binary
 * safe (pointer + length); keys are 1..1024 bytes (else TSR_ERR_INVALID). Any
 * failure (no connection, timeout, closed connection, an error reply such as
 * WRONGTYPE) answers TSR_ERR_UNAVAILABLE and starts the backoff. The process need
 * not ignore SIGPIPE (writes run with it blocked). Nothing here logs a key or a
 * value. docs/internals/redis.md has the design. */
#ifndef TSR_STORE_REDIS_H
#define TSR_STORE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define TSR_REDIS_TIMEOUT_MS 250      /* connect and per-command timeout */
#define TSR_REDIS_VALUE_MAX 4096      /* largest value tsr_redis_get returns */
#define TSR_REDIS_MESSAGE_MAX 1024    /* largest pub/sub message delivered */

typedef struct tsr_redis tsr_redis;

/* Parses url "redis://HOST:PORT/DB" (HOST a name or an IPv4 address, or an IPv6
 * address in brackets; PORT default 6379; /DB optional, 0..15, default 0) and
 * returns a client. Connects lazily: Redis need not be up yet. pool_max: most
 * command connections at once (0: 16, at most 4096). TSR_ERR_INVALID for a
 * malformed url (userinfo, query, fragment, another scheme, port 0 or over 65535,
 * leading zeros, DB over 15, trailing bytes). Allocates; free with tsr_redis_free. */
TSR_MUST_CHECK tsr_err tsr_redis_new(const char *url, size_t pool_max, tsr_redis **out /* OUT */);
/* Stops the subscriber (joins its thread), closes every connection. NULL no-op. */
void tsr_redis_free(tsr_redis *r);

/* PING. TSR_OK, or TSR_ERR_UNAVAILABLE (down, or backing off). */
TSR_MUST_CHECK tsr_err tsr_redis_ping(tsr_redis *r);

/* Nonzero while commands are not in backoff (for /readyz and metrics). */
int tsr_redis_up(tsr_redis *r);

/* ---- keys ---- */

/* GET into buf (cap bytes). TSR_OK with *len, TSR_ERR_NOT_FOUND for a missing
 * key, TSR_ERR_INVALID when the value is over cap or over TSR_REDIS_VALUE_MAX
 * (treat as a miss), TSR_ERR_UNAVAILABLE when Redis is down. */
TSR_MUST_CHECK tsr_err tsr_redis_get(tsr_redis *r, const void *key, size_t klen, void *buf,
                                     size_t cap, size_t *len /* OUT */);
/* SET key value PX ttl_ms (ttl_ms 1 ms .. ten years, vlen at most
 * TSR_REDIS_VALUE_MAX, else TSR_ERR_INVALID). TSR_ERR_UNAVAILABLE when down. */
TSR_MUST_CHECK tsr_err tsr_redis_set(tsr_redis *r, const void *key, size_t klen, const void *val,
                                     size_t vlen, int64_t ttl_ms);
/* DEL of n keys in one command (n 0: TSR_OK without a round trip; at most 1024).
 * *deleted (may be NULL) counts the keys that existed. TSR_ERR_UNAVAILABLE when
 * down. */
TSR_MUST_CHECK tsr_err tsr_redis_del(tsr_redis *r, const void *const *keys, const size_t *klens,
                                     size_t n, size_t *deleted /* OUT */);

/* ---- token buckets (login rate limits shared by every instance) ----
 * A bucket holds up to max tokens and refills max tokens evenly over window
 * seconds; it is stored as a hash {t: tokens, l: last refill second} that
 * expires 2 windows after its last change. A missing bucket is full.
 * Times are the caller's Unix seconds (instances' clocks should agree to a
 * second or so). Take runs as one Lua script (EVALSHA, loaded on first use and
 * again after NOSCRIPT), so concurrent takes from many instances never lose one;
 * peek is a plain HMGET whose refill is computed in C exactly as the script does.
 * The refill adds (now - last) * max / window, capped at max; a now earlier than
 * the last refill adds nothing (and does not move it back). max >= 1,
 * window 1 s .. 366 days, now >= 0, else TSR_ERR_INVALID. */

/* *tokens: the bucket's level after refilling to now (max when missing); reads
 * only. TSR_ERR_UNAVAILABLE when down. */
TSR_MUST_CHECK tsr_err tsr_redis_bucket_peek(tsr_redis *r, const void *key, size_t klen,
                                             uint32_t max, int64_t window, int64_t now,
                                             double *tokens /* OUT */);
/* Refills to now, then takes one token, never going below -max; *tokens (may be
 * NULL) gets the level after. TSR_ERR_UNAVAILABLE when down. */
TSR_MUST_CHECK tsr_err tsr_redis_bucket_take(tsr_redis *r, const void *key, size_t klen,
                                             uint32_t max, int64_t window, int64_t now,
                                             double *tokens /* OUT */);

/* ---- pub/sub ---- */

/* PUBLISH channel msg (channel 1..128 bytes, len at most TSR_REDIS_MESSAGE_MAX,
 * else TSR_ERR_INVALID). *receivers (may be NULL) gets Redis's count of
 * subscribers that got it. TSR_ERR_UNAVAILABLE when down. */
TSR_MUST_CHECK tsr_err tsr_redis_publish(tsr_redis *r, const char *channel, const void *msg,
                                         size_t len, long long *receivers /* OUT */);

/* Called on the subscriber thread for each message of the channel (messages
 * over TSR_REDIS_MESSAGE_MAX are dropped and counted in tsr_redis_stats). */
typedef void (*tsr_redis_message_fn)(void *ctx, const char *msg, size_t len);
/* Called on the subscriber thread: subscribed 1 once SUBSCRIBE is confirmed
 * (first time and after every reconnect: messages published while it was 0 are
 * lost, so the callee re-syncs from the store), 0 when the connection is lost
 * (before the reconnect attempts start). Never called twice in a row with the
 * same value; the callee starts as "not subscribed", so the first call is always
 * 1 (a Redis down from the start reports nothing until it is up). Not called
 * while tsr_redis_free stops the thread. */
typedef void (*tsr_redis_state_fn)(void *ctx, int subscribed);

/* Starts the subscriber thread: connect, SUBSCRIBE channel, deliver messages;
 * on any failure close, report 0, reconnect with backoff (50 ms doubling to
 * 2 s, reset after a confirmed SUBSCRIBE). Keepalive: a PING on the subscribed
 * connection every second; no answer within TSR_REDIS_TIMEOUT_MS counts as lost
 * (so a Redis that hangs or a cut network is noticed within ~1.25 s). Callbacks
 * must not call tsr_redis_free. channel: 1..128 bytes; on_state may be NULL.
 * TSR_ERR_INVALID when already started. */
TSR_MUST_CHECK tsr_err tsr_redis_subscribe_start(tsr_redis *r, const char *channel,
                                                 tsr_redis_message_fn on_message,
                                                 tsr_redis_state_fn on_state, void *ctx);

/* Nonzero while the subscription is confirmed and alive. */
int tsr_redis_subscribed(tsr_redis *r);

typedef struct tsr_redis_stats {
    uint64_t commands;          /* commands sent (SELECT and SCRIPT LOAD too) */
    uint64_t failures;          /* commands or connects that failed (then backoff) */
    uint64_t skipped;           /* calls answered UNAVAILABLE during backoff */
    uint64_t messages;          /* pub/sub messages delivered */
    uint64_t dropped;           /* pub/sub messages over the cap */
    uint64_t resubscribes;      /* confirmed SUBSCRIBEs after the first */
} tsr_redis_stats;
void tsr_redis_get_stats(tsr_redis *r, tsr_redis_stats *out /* OUT */);

#endif
