/* pg_int.h: the PostgreSQL backend's entry point, for store.c only.
 *
 * libpq-fe.h is deliberately not included here: only src/store/pg/ sees it. */
#ifndef TSR_STORE_PG_INT_H
#define TSR_STORE_PG_INT_H

#include <stddef.h>

#include "store/store.h"

/* Opens a PostgreSQL store from a libpq connection URI ("postgresql://..." or
 * "postgres://..."; parameters such as options=-csearch_path%3Dname or
 * application_name pass through to libpq), with a pool of at most max_conns
 * connections (0: 16), opened lazily; connects once to check the server and
 * applies the schema migrations in the connection's current schema (serialised
 * between instances by an advisory lock). TSR_ERR_INVALID for a URI libpq cannot
 * parse (or a non-numeric port), TSR_ERR_UNAVAILABLE when the server cannot be
 * reached or refuses the connection, TSR_ERR_UNSUPPORTED for a schema written by
 * a newer tessera or a server older than PostgreSQL 12. The URI is kept (wiped at
 * close: it may hold a password) and never logged. Allocates; free with
 * tsr_store_close. */
TSR_MUST_CHECK tsr_err tsr_store_pg_open(const char *url, size_t max_conns,
                                         tsr_store **out /* OUT */);

#endif
