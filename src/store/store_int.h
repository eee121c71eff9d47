/* store_int.h: what the store backends share (src/store/ only): the record checks
 * every backend makes before it writes, so that SQLite and PostgreSQL refuse the
 * same inputs, and the ASCII folding of usernames both compare with. */
#ifndef TSR_STORE_INT_H
#define TSR_STORE_INT_H

#include <stddef.h>

#include "store/store.h"

/* Nonzero when the fixed-size field holds a NUL-terminated string of 1..cap-1 chars. */
int tsr_store_field_ok(const char *f, size_t cap);
/* Nonzero when the fixed-size field is NUL-terminated (may be empty). */
int tsr_store_field_terminated(const char *f, size_t cap);
/* Nonzero for a look-up key of 1..max bytes: one that cannot name a stored row is
 * simply not found. */
int tsr_store_key_ok(const char *s, size_t max);
/* Usernames are ASCII [A-Za-z0-9._@+-] (validated by callers), so ASCII folding is
 * exact and matches SQL lower() under a "C" collation; no locale-dependent tolower(). */
void tsr_store_ascii_lower(const char *in, char *out /* OUT */, size_t cap);

/* TSR_OK, or TSR_ERR_INVALID for a record with an empty or unterminated required
 * field, an unterminated optional one, or (sessions) an unknown kind or a negative
 * generation. */
TSR_MUST_CHECK tsr_err tsr_store_check_user(const tsr_user *u);
TSR_MUST_CHECK tsr_err tsr_store_check_session(const tsr_session *ss);
TSR_MUST_CHECK tsr_err tsr_store_check_key(const tsr_key_record *k);

#endif
