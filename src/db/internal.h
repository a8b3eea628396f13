/* SPDX-License-Identifier: MIT */
/* Private to src/db: what the files of the database module share beyond include/gslb/db.h. */
#pragma once

#include <sqlite3.h>

#include "gslb/db.h"

/*
 * The SQLite connection behind db (borrowed, valid until db_close()), for
 * a file of src/db that keeps statements of its own (health_store.c).  The
 * same thread rules as for db apply.
 */
sqlite3 *db_sqlite(db_t *db);
