/* pg_int.h: the PostgreSQL backend's entry point, for store.c only.
 *
 * libpq-fe.h is deliberately not included here: only src/store/pg/ sees it. */
#ifndef TSR_STORE_PG_INT_H
#define TSR_STORE_PG_INT_H

#include <stddef.h>

#include "store/store.h"

/* Opens a PostgreSQL store from a libpq connection URI ("postgresql://..." or
 * "postgres://..."), with a pool of at most max_conns connections (0: 16),
 * opened lazily; connects once to check the server and applies the schema
 * migrations (serialised between instances by an advisory lock).
 * TSR_ERR_INVALID for a URI libpq cannot parse, TSR_ERR_UNAVAILABLE when the
 * server cannot be reached, TSR_ERR_UNSUPPORTED for a schema written by a newer
 * tessera. Allocates; free with tsr_store_close. */
TSR_MUST_CHECK tsr_err tsr_store_pg_open(const char *url, size_t max_conns,
                                         tsr_store **out /* OUT */);

#endif
