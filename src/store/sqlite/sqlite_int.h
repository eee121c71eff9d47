/* sqlite_int.h: the SQLite backend's entry point, for store.c only.
 *
 * sqlite3.h is deliberately not included here: only src/store/sqlite/ sees it. */
#ifndef TSR_STORE_SQLITE_INT_H
#define TSR_STORE_SQLITE_INT_H

#include "store/store.h"

/* Opens (creating when missing, with its parent folders at mode 0700 and the file at
 * 0600) the SQLite database at path, switches it to WAL and applies the schema
 * migrations in one transaction. TSR_ERR_INVALID for an empty or ambiguous path
 * (":memory:", "file:" URIs, "//x", a trailing slash), TSR_ERR_IO when a folder or
 * the file cannot be created, TSR_ERR_UNSUPPORTED for a database written by a newer
 * tessera (or a SQLite without WAL or foreign keys), TSR_ERR_UNAVAILABLE when SQLite
 * cannot open the file or it stays locked past the busy timeout. Allocates; free
 * with tsr_store_close. */
TSR_MUST_CHECK tsr_err tsr_store_sqlite_open(const char *path, tsr_store **out /* OUT */);

#endif
