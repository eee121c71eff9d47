/* revset.h: the live in-memory set of revoked sid and jti values, probed twice by
 * every bearer verification. Internal to src/auth/ (tokens.c feeds it from the
 * store's revocation rows and asks it per token).
 *
 * Many threads probe at once (a shared read lock; an empty set is one atomic
 * load); adds and purges are rare and take the lock alone. A value is the pair
 * (kind, bytes): a sid and a jti with the same text are different entries. Each
 * entry lives until its expires_at (seconds); tsr_revset_purge drops the expired
 * ones and frees their room. Values are public ids, not secrets: compared with
 * memcmp. Allocates on add and purge only, never on a probe. */
#ifndef TSR_AUTH_REVSET_H
#define TSR_AUTH_REVSET_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

#define TSR_REVSET_MAX ((size_t)16 * 1024 * 1024) /* entries; beyond: TSR_ERR_TOO_LARGE */

typedef struct tsr_revset tsr_revset;

/* A new empty set; its hash key is drawn from tsr_rand. TSR_ERR_NOMEM, or
 * tsr_rand's error. Thread-safe from here on; free it once no thread uses it. */
TSR_MUST_CHECK tsr_err tsr_revset_new(tsr_revset **out /* OUT */);

/* Frees the set. NULL is a no-op. */
void tsr_revset_free(tsr_revset *rs);

/* Adds value (1..TSR_ID_MAX bytes, any bytes) of kind (TSR_REVOKE_SID or
 * TSR_REVOKE_JTI) alive until expires_at; an existing entry keeps the later
 * expiry. TSR_ERR_INVALID for bad kind/value, TSR_ERR_NOMEM (the set is then
 * unchanged). Grows as needed, no fixed cap, but refuses a new value beyond
 * TSR_REVSET_MAX entries with TSR_ERR_TOO_LARGE. */
TSR_MUST_CHECK tsr_err tsr_revset_add(tsr_revset *rs, tsr_revocation_kind kind, const char *value,
                                      size_t n, int64_t expires_at);

/* Nonzero when the value of that kind is in the set and expires_at >= now. A bad
 * kind or value is never in the set (0). Fails closed: should the lock itself
 * fail, it answers nonzero. Allocates nothing. */
int tsr_revset_has(tsr_revset *rs, tsr_revocation_kind kind, const char *value, size_t n,
                   int64_t now);

/* Removes entries with expires_at < now; returns how many. Cheap (no scan) when
 * nothing can have expired yet, so it may run on every sync. May shrink the set. */
size_t tsr_revset_purge(tsr_revset *rs, int64_t now);

/* Entries in the set, expired-but-not-purged ones included (for /metrics). */
size_t tsr_revset_count(tsr_revset *rs);

#endif
