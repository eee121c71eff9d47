/* vcache.h: the bounded cache of verified bearer tokens. Internal to src/auth/
 * (tokens.c asks it before checking a signature and fills it after one).
 *
 * Keyed by the 32-byte SHA-256 of a token (the caller computes it); the value is
 * what verification produced (a tsr_bearer, its `cached` flag aside). Sharded by
 * key bytes, each shard with its own mutex and set-associative buckets with CLOCK
 * replacement, so many threads rarely meet on one lock. Every call is safe from
 * any thread. Memory is allocated once, in tsr_vcache_new; nothing afterwards.
 *
 * Entries are compact: sub, sid, jti, username, roles and scope share one
 * TSR_VCACHE_TEXT_MAX-byte area; a bearer whose strings (without their NULs)
 * do not fit is simply not cached, and is verified in full every time. */
#ifndef TSR_AUTH_VCACHE_H
#define TSR_AUTH_VCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "auth/tokens.h"
#include "common/err.h"

#define TSR_VCACHE_MAX ((size_t)1 << 22) /* entries; beyond: TSR_ERR_TOO_LARGE */
#define TSR_VCACHE_TEXT_MAX 264          /* bytes of all six strings of one entry */
#define TSR_VCACHE_ENTRY_BYTES 320       /* sizeof one slot: 65,536 entries = 20 MiB */

typedef struct tsr_vcache tsr_vcache;

/* A cache of about `entries` tokens: >= 1, rounded up to a power of two (so never
 * 2x or more). TSR_ERR_INVALID for 0, TSR_ERR_TOO_LARGE above TSR_VCACHE_MAX,
 * TSR_ERR_NOMEM. Allocates every slot now (TSR_VCACHE_ENTRY_BYTES each, plus
 * about 8 bytes of bucket index per slot). */
TSR_MUST_CHECK tsr_err tsr_vcache_new(size_t entries, tsr_vcache **out /* OUT */);

/* Frees the cache. NULL is a no-op. */
void tsr_vcache_free(tsr_vcache *c);

/* 1 and *out filled (out->cached = 1) when key is present and now <= exp + leeway
 * (a negative leeway counts as 0); an expired entry is dropped and 0 returned.
 * 0 on a miss. *out is zeroed first either way. */
int tsr_vcache_get(tsr_vcache *c, const uint8_t key[32], int64_t now, int64_t leeway,
                   tsr_bearer *out /* OUT */);

/* Inserts or replaces the claims of key (b->cached is not stored); evicts the
 * bucket's least recently useful entry when its bucket is full. A bearer whose
 * strings are not NUL-terminated in their arrays, or do not fit
 * TSR_VCACHE_TEXT_MAX together, is not cached. */
void tsr_vcache_put(tsr_vcache *c, const uint8_t key[32], const tsr_bearer *b);

/* Drops every entry (after a key-set change). Counters are kept. */
void tsr_vcache_clear(tsr_vcache *c);

/* Lookups answered, lookups missed (expired ones included) and entries held.
 * Any pointer may be NULL. Each shard's figures are read at a slightly different
 * moment: good for metrics, not for invariants under concurrent use. */
void tsr_vcache_stats(tsr_vcache *c, uint64_t *hits /* OUT */, uint64_t *misses /* OUT */,
                      size_t *entries /* OUT */);

#endif
