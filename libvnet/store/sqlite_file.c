/* The SQLite engine's database file: open it, check what it holds, switch it to WAL mode and
 * migrate its schema (the steps of `migrations`, one per schema version). The primitives are
 * in sqlite.c.
 *
 * Nothing is ever reset or recreated: a file that is not an SQLite database, belongs to another
 * application, has a newer schema or is damaged is refused at open (docs/store.md). At open,
 * PRAGMA quick_check reads the whole file once, so that damage is reported here rather than in
 * the middle of a later request.
 */
#include "sqlite_int.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/sys/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define APPLICATION_ID 1447970132 /* 'VNET' */

/* ---- schema ---- */

struct migration {
    int version; /* the user_version after this step */
    const char *sql;
};

static const struct migration migrations[] = {
    {1, "CREATE TABLE subscribers (\n"
        "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "    name TEXT NOT NULL UNIQUE,\n"
        "    created INTEGER NOT NULL\n"
        ") STRICT;\n"
        "INSERT INTO subscribers (id, name, created)\n"
        "    VALUES (1, 'admin', CAST(strftime('%s', 'now') AS INTEGER));\n"
        "CREATE TABLE networks (\n"
        "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),\n"
        "    name TEXT NOT NULL,\n"
        "    vni INTEGER NOT NULL UNIQUE CHECK (vni BETWEEN 1 AND 16777215),\n"
        "    subnet4 TEXT,\n"
        "    subnet6 TEXT,\n"
        "    mtu INTEGER NOT NULL,\n"
        "    revision INTEGER NOT NULL,\n"
        "    UNIQUE (subscriber_id, name)\n"
        ") STRICT;\n"
        "CREATE TABLE nodes (\n"
        "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "    network_id INTEGER NOT NULL REFERENCES networks (id) ON DELETE CASCADE,\n"
        "    name TEXT NOT NULL,\n"
        "    pubkey BLOB CHECK (pubkey IS NULL OR length(pubkey) = 32),\n"
        "    mac BLOB NOT NULL CHECK (length(mac) = 6),\n"
        "    ip4 BLOB CHECK (ip4 IS NULL OR length(ip4) = 4),\n"
        "    ip6 BLOB CHECK (ip6 IS NULL OR length(ip6) = 16),\n"
        "    phys_ip BLOB CHECK (phys_ip IS NULL OR length(phys_ip) IN (4, 16)),\n"
        "    phys_port INTEGER NOT NULL DEFAULT 0,\n"
        "    observed_ip BLOB CHECK (observed_ip IS NULL OR length(observed_ip) IN (4, 16)),\n"
        "    observed_port INTEGER NOT NULL DEFAULT 0,\n"
        "    state INTEGER NOT NULL DEFAULT 0,\n"
        "    revision INTEGER NOT NULL,\n"
        "    UNIQUE (network_id, name),\n"
        "    UNIQUE (network_id, mac),\n"
        "    UNIQUE (network_id, ip4),\n"
        "    UNIQUE (network_id, ip6)\n"
        ") STRICT;\n"
        "CREATE TABLE changes (\n"
        "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "    network_id INTEGER NOT NULL,\n"
        "    revision INTEGER NOT NULL,\n"
        "    op INTEGER NOT NULL,\n"
        "    payload BLOB\n"
        ") STRICT;\n"
        "CREATE INDEX changes_network_revision ON changes (network_id, revision);\n"
        "PRAGMA application_id = 1447970132;\n"},
    /* Secrets for authenticating subscribers and node joins (stored hashed), looked up by
     * hash. */
    {2, "ALTER TABLE subscribers ADD COLUMN token_hash BLOB;\n"
        "ALTER TABLE nodes ADD COLUMN join_token_hash BLOB;\n"
        "CREATE UNIQUE INDEX subscribers_token_hash ON subscribers (token_hash)\n"
        "    WHERE token_hash IS NOT NULL;\n"
        "CREATE UNIQUE INDEX nodes_join_token_hash ON nodes (join_token_hash)\n"
        "    WHERE join_token_hash IS NOT NULL;\n"},
    /* The data-plane mode per network: networks from before it are plain VXLAN (0), the
     * library writes secure (1) by default. Join tokens expire. Nodes are found by public key;
     * the index is not UNIQUE because v2 did not check and a v2 file may hold a key twice in a
     * network (the library refuses new duplicates, and refuses to authenticate ambiguous
     * keys). */
    {3, "ALTER TABLE networks ADD COLUMN mode INTEGER NOT NULL DEFAULT 0 CHECK (mode IN (0, 1));\n"
        "ALTER TABLE nodes ADD COLUMN join_token_expires INTEGER NOT NULL DEFAULT 0;\n"
        "CREATE INDEX nodes_network_pubkey ON nodes (network_id, pubkey)\n"
        "    WHERE pubkey IS NOT NULL;\n"},
};

#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(NMIGRATIONS == VNET_STORE_SCHEMA_VERSION, "one migration step per version");

/* ---- errors ---- */

/* Map an SQLite result to a VNET_E* code and describe it in @err. */
int vnet__sqlite_fail(const struct vnet__sqlite *s, int rc, char *err, size_t errlen,
                      const char *what)
{
    const char *msg = sqlite3_errmsg(s->db);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        vnet_store_seterr(err, errlen,
                          "%s: database %s is locked by another process (waited %u ms)", what,
                          s->path, s->busy_ms);
        return VNET_EBUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        vnet_store_seterr(err, errlen, "%s: database %s is damaged or not a database: %s", what,
                          s->path, msg);
        return VNET_ECORRUPT;
    case SQLITE_NOMEM:
        vnet_store_seterr(err, errlen, "%s: out of memory", what);
        return VNET_ENOMEM;
    case SQLITE_READONLY:
        vnet_store_seterr(err, errlen, "%s: database %s is read-only: %s", what, s->path, msg);
        return VNET_EPERM;
    case SQLITE_CONSTRAINT:
        vnet_store_seterr(err, errlen, "%s: %s", what, msg);
        return (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) ? VNET_EEXIST
                                                                                      : VNET_EIO;
    default:
        vnet_store_seterr(err, errlen, "%s: %s (database %s)", what, msg, s->path);
        return VNET_EIO;
    }
}

/* ---- opening ---- */

/* Run one statement outside the prepared set and keep the first column of its first row (0
 * and "" when there is none). */
static int query1(struct vnet__sqlite *s, const char *sql, int64_t *num, char *text, size_t textlen,
                  char *err, size_t errlen, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    const char *t = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    *num = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (text)
        snprintf(text, textlen, "%s", t ? t : "");
    int code =
        rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : vnet__sqlite_fail(s, rc, err, errlen, what);
    sqlite3_finalize(st);
    return code;
}

static int pragma_int(struct vnet__sqlite *s, const char *sql, int64_t *out, char *err,
                      size_t errlen)
{
    return query1(s, sql, out, NULL, 0, err, errlen, "opening the store");
}

static int exec(struct vnet__sqlite *s, const char *sql, char *err, size_t errlen, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : vnet__sqlite_fail(s, rc, err, errlen, what);
}

static int set_wal(struct vnet__sqlite *s, char *err, size_t errlen)
{
    char mode[16];
    int64_t n;
    int rc = query1(s, "PRAGMA journal_mode = WAL", &n, mode, sizeof(mode), err, errlen,
                    "switching to WAL mode");
    if (!rc && strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0) {
        vnet_store_seterr(err, errlen, "database %s cannot use WAL mode (journal mode '%s')",
                          s->path, mode);
        rc = VNET_EIO;
    }
    return rc;
}

static int quick_check(struct vnet__sqlite *s, char *err, size_t errlen)
{
    char res[200];
    int64_t n;
    int rc = query1(s, "PRAGMA quick_check(1)", &n, res, sizeof(res), err, errlen,
                    "checking the database");
    if (!rc && strcmp(res, "ok") != 0) {
        for (char *c = res; *c; c++) /* one line */
            if (*c == '\n')
                *c = ' ';
        vnet_store_seterr(err, errlen, "database %s is damaged: %s", s->path,
                          res[0] ? res : "quick_check failed");
        rc = VNET_ECORRUPT;
    }
    return rc;
}

static int too_new(struct vnet__sqlite *s, int64_t v, char *err, size_t errlen)
{
    vnet_store_seterr(err, errlen,
                      "database %s has schema version %" PRId64 ", newer than this library's (%d)",
                      s->path, v, VNET_STORE_SCHEMA_VERSION);
    return VNET_EVERSION;
}

/* Bring the schema to VNET_STORE_SCHEMA_VERSION in one transaction. */
static int migrate(struct vnet__sqlite *s, char *err, size_t errlen)
{
    int64_t v;
    int rc = exec(s, "BEGIN IMMEDIATE", err, errlen, "migrating the schema");
    if (rc)
        return rc;
    rc = pragma_int(s, "PRAGMA user_version", &v, err, errlen); /* another process may have */
    if (!rc && v > VNET_STORE_SCHEMA_VERSION)
        rc = too_new(s, v, err, errlen);
    for (size_t i = 0; !rc && i < NMIGRATIONS; i++) {
        if (migrations[i].version <= v)
            continue;
        char what[64];
        snprintf(what, sizeof(what), "migrating the schema to version %d", migrations[i].version);
        rc = exec(s, migrations[i].sql, err, errlen, what);
    }
    if (!rc && v < VNET_STORE_SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", VNET_STORE_SCHEMA_VERSION);
        rc = exec(s, sql, err, errlen, "migrating the schema");
    }
    if (!rc)
        rc = exec(s, "COMMIT", err, errlen, "migrating the schema");
    if (rc && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (!rc && v < VNET_STORE_SCHEMA_VERSION && v > 0)
        vnet_log(VNET_LOG_INFO, "store", "migrated %s from schema version %" PRId64 " to %d",
                 s->path, v, VNET_STORE_SCHEMA_VERSION);
    return rc;
}

/* Check what the file holds before anything writes to it: an empty file, a vnet store of a
 * version we know, or a refusal. */
static int check_file(struct vnet__sqlite *s, bool read_only, int64_t *version, char *err,
                      size_t errlen)
{
    int64_t v, app, nobjects;
    int rc = pragma_int(s, "PRAGMA user_version", &v, err, errlen);
    if (!rc)
        rc = pragma_int(s, "PRAGMA application_id", &app, err, errlen);
    if (!rc)
        rc = pragma_int(s, "SELECT count(*) FROM sqlite_schema", &nobjects, err, errlen);
    if (rc)
        return rc;
    if (v == 0 && app == 0 && nobjects > 0) {
        vnet_store_seterr(err, errlen,
                          "database %s is not a vnet store: it has tables but no schema version "
                          "(another application's database?)",
                          s->path);
        return VNET_ECORRUPT;
    }
    if ((app != 0 || v > 0) && app != APPLICATION_ID) {
        vnet_store_seterr(err, errlen,
                          "database %s belongs to another application (application_id %" PRId64
                          ", user_version %" PRId64 ")",
                          s->path, app, v);
        return VNET_ECORRUPT;
    }
    if (v > VNET_STORE_SCHEMA_VERSION)
        return too_new(s, v, err, errlen);
    if (read_only && v < VNET_STORE_SCHEMA_VERSION) {
        vnet_store_seterr(err, errlen,
                          "database %s has schema version %" PRId64
                          ", older than this library's (%d): open it read-write once to migrate",
                          s->path, v, VNET_STORE_SCHEMA_VERSION);
        return VNET_EVERSION;
    }
    *version = v;
    return 0;
}

/* A new database file is created here, not by SQLite: mode 0600 (it holds token hashes, keys
 * and the topology), and its directory 0700 when that does not exist either (one level).
 * SQLite gives the -wal and -shm files the database file's mode. */
static int create_private(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0 || stat(path, &sb) == 0)
        return 0;
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char dir[4096];
        size_t n = (size_t)(slash - path);
        if (n >= sizeof(dir)) {
            vnet_store_seterr(err, errlen, "cannot open store %s: path too long", path);
            return VNET_EINVAL;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
        if (stat(dir, &sb) != 0 && errno == ENOENT && mkdir(dir, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            vnet_store_seterr(err, errlen, "cannot create the store's directory %s: %s%s", dir,
                              strerror(e),
                              e == ENOENT ? " (its parent does not exist: only the last level "
                                            "is made)"
                                          : "");
            errno = e;
            return errno == EACCES ? VNET_EACCES : VNET_EIO;
        }
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST) { /* EEXIST: another process just created it */
        vnet_store_seterr(err, errlen, "cannot create store %s: %s", path, strerror(errno));
        return errno == ENOENT ? VNET_ENOENT : errno == EACCES ? VNET_EACCES : VNET_EIO;
    }
    if (fd >= 0)
        close(fd); /* an empty file is a new, empty database */
    return 0;
}

/* Read-write needs the file and its directory writable (SQLite creates PATH-wal and PATH-shm
 * beside it): say so, rather than SQLite's "attempt to write a readonly database". */
static int check_writable(const char *path, char *err, size_t errlen)
{
    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return 0;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash ? (slash == path ? 1 : (int)(slash - path)) : 1,
             slash ? path : ".");
    const char *who = access(path, R_OK | W_OK) != 0  ? path
                      : access(dir, W_OK | X_OK) != 0 ? dir
                                                      : NULL;
    if (!who || errno != EACCES)
        return 0; /* other failures: SQLite's own message */
    vnet_store_seterr(err, errlen,
                      "cannot open store %s: permission denied: %s %s is not writable by this "
                      "user (uid %u)%s",
                      path, who == path ? "the file" : "its directory", who, (unsigned)geteuid(),
                      who == path ? "" : "; SQLite keeps its -wal and -shm files there");
    return VNET_EACCES;
}

int vnet__sqlite_file_open(struct vnet__sqlite *s, const char *path,
                           const struct vnet_store_opts *o, char *err, size_t errlen)
{
    struct stat sb;
    if (o->read_only && strcmp(path, ":memory:") != 0 && stat(path, &sb) != 0) {
        vnet_store_seterr(err, errlen, "cannot open store %s: %s", path, strerror(errno));
        return errno == ENOENT ? VNET_ENOENT : errno == EACCES ? VNET_EACCES : VNET_EIO;
    }
    if (!o->read_only) {
        int rc = create_private(path, err, errlen);
        if (!rc)
            rc = check_writable(path, err, errlen);
        if (rc)
            return rc;
    }
    s->busy_ms = o->busy_timeout_ms;
    int flags = (o->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        int e = s->db ? sqlite3_system_errno(s->db) : 0;
        vnet_store_seterr(err, errlen, "cannot open store %s: %s%s%s", path,
                          s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), e ? ": " : "",
                          e ? strerror(e) : "");
        return rc == SQLITE_NOMEM ? VNET_ENOMEM
               : e == ENOENT      ? VNET_ENOENT
               : e == EACCES      ? VNET_EACCES
                                  : VNET_EIO;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, (int)(s->busy_ms > INT32_MAX ? INT32_MAX : s->busy_ms));

    int64_t version = 0;
    int code = check_file(s, o->read_only, &version, err, errlen);
    if (!code && !o->read_only)
        code = set_wal(s, err, errlen);
    if (!code)
        code = exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", err, errlen,
                    "opening the store");
    if (!code && version > 0)
        code = quick_check(s, err, errlen);
    if (!code && version < VNET_STORE_SCHEMA_VERSION)
        code = migrate(s, err, errlen);
    return code;
}
