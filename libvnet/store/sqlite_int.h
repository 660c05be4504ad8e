/* Private to the SQLite engine: what sqlite.c (the primitives) and sqlite_file.c (opening,
 * checking and migrating a database file) share. */
#ifndef VNET_STORE_SQLITE_INT_H
#define VNET_STORE_SQLITE_INT_H

#include "vnet/store.h"

#include <sqlite3.h>

/* An open database. */
struct vnet__sqlite {
    sqlite3 *db;
    const char *path; /* for messages */
    uint32_t busy_ms;
};

/* Map an SQLite result @rc to a VNET_E* code and describe it in @err as "@what: ...". */
int vnet__sqlite_fail(const struct vnet__sqlite *s, int rc, char *err, size_t errlen,
                      const char *what);

/* Open the database file @path (@s->path) as a vnet store: refuse what is not one (or is
 * damaged, or newer), switch it to WAL mode and migrate its schema to
 * VNET_STORE_SCHEMA_VERSION unless @o->read_only. Errors as vnet_store_open(), with @err set.
 * @s->db may be set even on failure: the caller closes it. */
int vnet__sqlite_file_open(struct vnet__sqlite *s, const char *path,
                           const struct vnet_store_opts *o, char *err, size_t errlen);

#endif
