/* The SQLite store engine.
 *
 * One database file in WAL mode, so readers in other processes (a controller polling
 * vnet_store_last_change(), vnetctl listing) never wait for the writer and the writer never
 * waits for them. synchronous=NORMAL: a commit is in the WAL before the call returns, so it
 * survives a crash of the process; a power loss may lose the last commits but never leaves
 * a half-written one (docs/store.md).
 *
 * Every write is one BEGIN IMMEDIATE ... COMMIT: the write lock is taken first, so a busy
 * database fails at the start (after the busy timeout) rather than on the first UPDATE, and
 * every check sees the data it then writes to. Any error rolls the whole request back.
 *
 * The schema carries its version in PRAGMA user_version and is migrated on open by the steps
 * of `migrations` (a new file runs them all). The file carries application_id 'VNET' so that
 * another program's SQLite file is refused rather than written to.
 *
 * Statements are prepared once at open (SQLITE_PREPARE_PERSISTENT) and reset after each use.
 * IP assignment takes the lowest free address; to avoid rescanning a network's addresses for
 * every added node, the engine remembers per network and family an address below which all
 * are in use. The hint is only advanced after a commit, dropped when this handle removes a
 * node, and dropped when PRAGMA data_version shows that another connection committed.
 */
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/sys/store.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* ---- statements ---- */

#define NET_COLS "id, subscriber_id, name, vni, subnet4, subnet6, mtu, revision, mode"
#define NODE_COLS                                                                                  \
    "id, network_id, name, pubkey, mac, ip4, ip6, phys_ip, phys_port, observed_ip, "               \
    "observed_port, state, revision"
#define SUB_COLS "id, name, token_hash IS NOT NULL"

enum st {
    ST_BEGIN,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_DATA_VERSION,
    ST_SUB_GET,
    ST_SUB_BY_ID,
    ST_SUB_BY_NAME,
    ST_SUB_BY_TOKEN,
    ST_SUB_INSERT,
    ST_SUB_LIST,
    ST_SUB_SET_TOKEN,
    ST_SUB_DELETE,
    ST_SUB_NETS,
    ST_NET_BY_ID,
    ST_NET_BY_NAME,
    ST_NET_BY_NAME_ANY,
    ST_NET_BY_VNI,
    ST_NET_FREE_VNI,
    ST_NET_INSERT,
    ST_NET_LIST,
    ST_NET_LIST_SUB,
    ST_NET_SET_REV,
    ST_NET_DELETE,
    ST_NODE_BY_NAME,
    ST_NODE_BY_ID,
    ST_NODE_BY_MAC,
    ST_NODE_BY_IP4,
    ST_NODE_BY_IP6,
    ST_NODE_IP4_FROM,
    ST_NODE_IP6_FROM,
    ST_NODE_INSERT,
    ST_NODE_LIST,
    ST_NODE_SET_PHYS,
    ST_NODE_SET_OBSERVED,
    ST_NODE_DELETE,
    ST_NODE_BY_PUBKEY,
    ST_NODE_PUBKEY_USER,
    ST_NODE_SET_PUBKEY,
    ST_NODE_SET_TOKEN,
    ST_NODE_BY_TOKEN,
    ST_CHG_INSERT,
    ST_CHG_PRUNE,
    ST_CHG_DELETE_NET,
    ST_CHG_OLDEST,
    ST_CHG_SINCE,
    ST_CHG_LAST,
    ST_CHG_NETS,
    ST_COUNT
};

static const char *const st_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_SUB_GET] = "SELECT name FROM subscribers WHERE id = ?1",
    [ST_SUB_BY_ID] = "SELECT " SUB_COLS " FROM subscribers WHERE id = ?1",
    [ST_SUB_BY_NAME] = "SELECT " SUB_COLS " FROM subscribers WHERE name = ?1",
    [ST_SUB_BY_TOKEN] = "SELECT " SUB_COLS " FROM subscribers WHERE token_hash = ?1",
    [ST_SUB_INSERT] = "INSERT INTO subscribers (name, created, token_hash) "
                      "VALUES (?1, CAST(strftime('%s', 'now') AS INTEGER), ?2)",
    [ST_SUB_LIST] = "SELECT " SUB_COLS " FROM subscribers ORDER BY id",
    [ST_SUB_SET_TOKEN] = "UPDATE subscribers SET token_hash = ?2 WHERE id = ?1",
    [ST_SUB_DELETE] = "DELETE FROM subscribers WHERE id = ?1",
    [ST_SUB_NETS] = "SELECT name FROM networks WHERE subscriber_id = ?1 ORDER BY name LIMIT 1",
    [ST_NET_BY_ID] = "SELECT " NET_COLS " FROM networks WHERE id = ?1",
    [ST_NET_BY_NAME] = "SELECT " NET_COLS " FROM networks WHERE subscriber_id = ?1 AND name = ?2",
    [ST_NET_BY_NAME_ANY] = "SELECT " NET_COLS " FROM networks WHERE name = ?1 ORDER BY id LIMIT 1",
    [ST_NET_BY_VNI] = "SELECT name FROM networks WHERE vni = ?1",
    [ST_NET_FREE_VNI] = "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM networks WHERE vni = 1) "
                        "UNION ALL SELECT vni + 1 FROM networks a WHERE vni < 16777215 AND "
                        "NOT EXISTS (SELECT 1 FROM networks b WHERE b.vni = a.vni + 1) "
                        "ORDER BY 1 LIMIT 1",
    [ST_NET_INSERT] = "INSERT INTO networks (subscriber_id, name, vni, subnet4, subnet6, mtu, "
                      "revision, mode) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)",
    [ST_NET_LIST] = "SELECT " NET_COLS " FROM networks ORDER BY name, id",
    [ST_NET_LIST_SUB] = "SELECT " NET_COLS " FROM networks WHERE subscriber_id = ?1 ORDER BY name",
    [ST_NET_SET_REV] = "UPDATE networks SET revision = ?2 WHERE id = ?1",
    [ST_NET_DELETE] = "DELETE FROM networks WHERE id = ?1",
    [ST_NODE_BY_NAME] = "SELECT " NODE_COLS " FROM nodes WHERE network_id = ?1 AND name = ?2",
    [ST_NODE_BY_ID] = "SELECT " NODE_COLS " FROM nodes WHERE id = ?1",
    [ST_NODE_BY_MAC] = "SELECT name FROM nodes WHERE network_id = ?1 AND mac = ?2",
    [ST_NODE_BY_IP4] = "SELECT name FROM nodes WHERE network_id = ?1 AND ip4 = ?2",
    [ST_NODE_BY_IP6] = "SELECT name FROM nodes WHERE network_id = ?1 AND ip6 = ?2",
    [ST_NODE_IP4_FROM] = "SELECT ip4 FROM nodes WHERE network_id = ?1 AND ip4 >= ?2 ORDER BY ip4",
    [ST_NODE_IP6_FROM] = "SELECT ip6 FROM nodes WHERE network_id = ?1 AND ip6 >= ?2 ORDER BY ip6",
    [ST_NODE_INSERT] = "INSERT INTO nodes (network_id, name, pubkey, mac, ip4, ip6, phys_ip, "
                       "phys_port, observed_ip, observed_port, state, revision) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_NODE_LIST] = "SELECT " NODE_COLS " FROM nodes WHERE network_id = ?1 ORDER BY name",
    [ST_NODE_SET_PHYS] = "UPDATE nodes SET phys_ip = ?2, phys_port = ?3, revision = ?4 "
                         "WHERE id = ?1",
    [ST_NODE_SET_OBSERVED] = "UPDATE nodes SET observed_ip = ?2, observed_port = ?3, state = ?4, "
                             "revision = ?5 WHERE id = ?1",
    [ST_NODE_DELETE] = "DELETE FROM nodes WHERE id = ?1",
    [ST_NODE_BY_PUBKEY] = "SELECT " NODE_COLS " FROM nodes WHERE network_id = ?1 AND "
                          "pubkey = ?2 ORDER BY id LIMIT 2",
    [ST_NODE_PUBKEY_USER] = "SELECT name FROM nodes WHERE network_id = ?1 AND pubkey = ?2 AND "
                            "id != ?3 ORDER BY id LIMIT 1",
    /* Setting or clearing the key also cancels a pending join token. */
    [ST_NODE_SET_PUBKEY] = "UPDATE nodes SET pubkey = ?2, revision = ?3, join_token_hash = NULL, "
                           "join_token_expires = 0 WHERE id = ?1",
    [ST_NODE_SET_TOKEN] = "UPDATE nodes SET join_token_hash = ?2, join_token_expires = ?3 "
                          "WHERE id = ?1",
    [ST_NODE_BY_TOKEN] = "SELECT " NODE_COLS ", join_token_expires FROM nodes "
                         "WHERE join_token_hash = ?1",
    [ST_CHG_INSERT] = "INSERT INTO changes (network_id, revision, op, payload) "
                      "VALUES (?1, ?2, ?3, ?4)",
    [ST_CHG_PRUNE] = "DELETE FROM changes WHERE network_id = ?1 AND revision <= ?2",
    [ST_CHG_DELETE_NET] = "DELETE FROM changes WHERE network_id = ?1",
    [ST_CHG_OLDEST] = "SELECT min(revision) FROM changes WHERE network_id = ?1",
    [ST_CHG_SINCE] = "SELECT revision, op, payload FROM changes WHERE network_id = ?1 AND "
                     "revision > ?2 ORDER BY revision",
    [ST_CHG_LAST] = "SELECT coalesce(max(id), 0) FROM changes",
    [ST_CHG_NETS] = "SELECT DISTINCT network_id FROM changes WHERE id > ?1 ORDER BY network_id",
};

struct sq {
    sqlite3 *db;
    char *path;
    uint32_t retention;
    uint32_t busy_ms;
    sqlite3_stmt *st[ST_COUNT];
    /* IP assignment hint (see the top of the file): valid while data_version is dv. */
    int64_t dv;
    uint64_t hint_net; /* 0: none */
    bool hint_valid[2];
    struct vnet_ip hint_next[2]; /* all host addresses below are in use */
    /* set by a request, applied after its commit */
    bool pend_valid[2];
    struct vnet_ip pend_next[2];
};

/* ---- errors ---- */

/* Map an SQLite result to a VNET_E* code and describe it in @err, or log it when the call
 * has no error buffer. */
static int fail(struct sq *s, int rc, char *err, size_t errlen, const char *what)
{
    char buf[256];
    int code;
    const char *msg = sqlite3_errmsg(s->db);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = VNET_EBUSY;
        snprintf(buf, sizeof(buf), "%s: database %s is locked by another process (waited %u ms)",
                 what, s->path, s->busy_ms);
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        code = VNET_ECORRUPT;
        snprintf(buf, sizeof(buf), "%s: database %s is damaged or not a database: %s", what,
                 s->path, msg);
        break;
    case SQLITE_NOMEM:
        code = VNET_ENOMEM;
        snprintf(buf, sizeof(buf), "%s: out of memory", what);
        break;
    case SQLITE_READONLY:
        code = VNET_EPERM;
        snprintf(buf, sizeof(buf), "%s: database %s is read-only: %s", what, s->path, msg);
        break;
    case SQLITE_CONSTRAINT:
        code = (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) ? VNET_EEXIST
                                                                                      : VNET_EIO;
        snprintf(buf, sizeof(buf), "%s: %s", what, msg);
        break;
    default:
        code = VNET_EIO;
        snprintf(buf, sizeof(buf), "%s: %s (database %s)", what, msg, s->path);
        break;
    }
    if (err && errlen)
        snprintf(err, errlen, "%s", buf);
    else
        vnet_log(VNET_LOG_WARN, "store", "%s", buf);
    return code;
}

static int corrupt(struct sq *s, char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: database %s holds a malformed value", what, s->path);
    else
        vnet_log(VNET_LOG_WARN, "store", "%s: database %s holds a malformed value", what, s->path);
    return VNET_ECORRUPT;
}

/* ---- statement helpers ---- */

static sqlite3_stmt *use(struct sq *s, enum st id)
{
    sqlite3_stmt *st = s->st[id];
    sqlite3_reset(st);
    return st;
}

/* Step a statement that returns no row (or whose rows are ignored), then reset it. */
static int run(struct sq *s, sqlite3_stmt *st, char *err, size_t errlen, const char *what)
{
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE ? 0 : fail(s, rc, err, errlen, what);
    sqlite3_reset(st);
    return code;
}

static unsigned ip_len(uint8_t family)
{
    return family == VNET_AF_INET ? 4 : 16;
}

static void bind_ip(sqlite3_stmt *st, int idx, const struct vnet_ip *ip)
{
    if (ip->family == VNET_AF_NONE)
        sqlite3_bind_null(st, idx);
    else
        sqlite3_bind_blob(st, idx, ip->addr, (int)ip_len(ip->family), SQLITE_TRANSIENT);
}

static void bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

static void bind_u64(sqlite3_stmt *st, int idx, uint64_t v)
{
    sqlite3_bind_int64(st, idx, (sqlite3_int64)v);
}

static uint64_t col_u64(sqlite3_stmt *st, int col)
{
    return (uint64_t)sqlite3_column_int64(st, col);
}

static bool col_name(sqlite3_stmt *st, int col, char *dst)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (!t || n <= 0 || n >= VNET_NAME_MAX)
        return false;
    memcpy(dst, t, (size_t)n);
    dst[n] = '\0';
    return true;
}

/* An address column: NULL is family 0; otherwise 4 or 16 bytes (@family 0: either). */
static bool col_ip(sqlite3_stmt *st, int col, uint8_t family, struct vnet_ip *out)
{
    memset(out, 0, sizeof(*out));
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return true;
    const void *b = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (!b || !((n == 4 && family != VNET_AF_INET6) || (n == 16 && family != VNET_AF_INET)))
        return false;
    out->family = n == 4 ? VNET_AF_INET : VNET_AF_INET6;
    memcpy(out->addr, b, (size_t)n);
    return true;
}

static bool col_ep(sqlite3_stmt *st, int col, struct vnet_endpoint *out)
{
    if (!col_ip(st, col, VNET_AF_NONE, &out->ip))
        return false;
    int64_t port = sqlite3_column_int64(st, col + 1);
    if (out->ip.family == VNET_AF_NONE)
        return port == 0;
    out->port = (uint16_t)port;
    return port >= 1 && port <= 65535;
}

static bool col_prefix(sqlite3_stmt *st, int col, uint8_t family, struct vnet_prefix *out)
{
    memset(out, 0, sizeof(*out));
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return true;
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t && vnet_prefix_parse(t, out) == 0 && out->ip.family == family;
}

/* Read a row of NET_COLS. */
static bool row_network(sqlite3_stmt *st, struct vnet_network *n)
{
    memset(n, 0, sizeof(*n));
    n->id = col_u64(st, 0);
    n->subscriber_id = col_u64(st, 1);
    int64_t vni = sqlite3_column_int64(st, 3), mtu = sqlite3_column_int64(st, 6);
    n->vni = (uint32_t)vni;
    n->mtu = (uint32_t)mtu;
    n->revision = col_u64(st, 7);
    int64_t mode = sqlite3_column_int64(st, 8);
    n->mode = (uint8_t)mode;
    return col_name(st, 2, n->name) && col_prefix(st, 4, VNET_AF_INET, &n->subnet4) &&
           col_prefix(st, 5, VNET_AF_INET6, &n->subnet6) && vni >= 1 && vni <= VNET_VNI_MAX &&
           mtu > 0 && mtu <= UINT32_MAX && (mode == VNET_MODE_PLAIN || mode == VNET_MODE_SECURE);
}

/* Read a row of NODE_COLS. */
static bool row_node(sqlite3_stmt *st, struct vnet_node *n)
{
    memset(n, 0, sizeof(*n));
    n->id = col_u64(st, 0);
    n->network_id = col_u64(st, 1);
    if (!col_name(st, 2, n->name))
        return false;
    if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
        if (sqlite3_column_bytes(st, 3) != VNET_PUBKEY_LEN)
            return false;
        memcpy(n->pubkey, sqlite3_column_blob(st, 3), VNET_PUBKEY_LEN);
        n->has_pubkey = true;
    }
    if (sqlite3_column_bytes(st, 4) != 6)
        return false;
    memcpy(n->mac.b, sqlite3_column_blob(st, 4), 6);
    int64_t state = sqlite3_column_int64(st, 11);
    if (state < VNET_NODE_PENDING || state > VNET_NODE_ACTIVE)
        return false;
    n->state = (enum vnet_node_state)state;
    n->revision = col_u64(st, 12);
    return col_ip(st, 5, VNET_AF_INET, &n->ips[0]) && col_ip(st, 6, VNET_AF_INET6, &n->ips[1]) &&
           col_ep(st, 7, &n->phys) && col_ep(st, 9, &n->observed);
}

/* Step @st for one network row: 0, VNET_ENOENT, or an error. Resets @st. */
static int fetch_network(struct sq *s, sqlite3_stmt *st, struct vnet_network *out, char *err,
                         size_t errlen)
{
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW)
        code = row_network(st, out) ? 0 : corrupt(s, err, errlen, "reading a network");
    else if (rc == SQLITE_DONE)
        code = VNET_ENOENT;
    else
        code = fail(s, rc, err, errlen, "reading a network");
    sqlite3_reset(st);
    return code;
}

static int fetch_node(struct sq *s, sqlite3_stmt *st, struct vnet_node *out, char *err,
                      size_t errlen)
{
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW)
        code = row_node(st, out) ? 0 : corrupt(s, err, errlen, "reading a node");
    else if (rc == SQLITE_DONE)
        code = VNET_ENOENT;
    else
        code = fail(s, rc, err, errlen, "reading a node");
    sqlite3_reset(st);
    return code;
}

/* Step @st for one name column: 0 with the name in @name, VNET_ENOENT, or an error. */
static int fetch_name(struct sq *s, sqlite3_stmt *st, char *name, char *err, size_t errlen)
{
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW)
        code = col_name(st, 0, name) ? 0 : corrupt(s, err, errlen, "reading a name");
    else if (rc == SQLITE_DONE)
        code = VNET_ENOENT;
    else
        code = fail(s, rc, err, errlen, "reading a name");
    sqlite3_reset(st);
    return code;
}

static int network_by_id(struct sq *s, uint64_t id, struct vnet_network *out, char *err,
                         size_t errlen)
{
    sqlite3_stmt *st = use(s, ST_NET_BY_ID);
    bind_u64(st, 1, id);
    int rc = fetch_network(s, st, out, err, errlen);
    if (rc == VNET_ENOENT)
        vnet_store_seterr(err, errlen, "no network with id %" PRIu64, id);
    return rc;
}

static int node_by_name(struct sq *s, const struct vnet_network *net, const char *name,
                        struct vnet_node *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = use(s, ST_NODE_BY_NAME);
    bind_u64(st, 1, net->id);
    bind_text(st, 2, name);
    int rc = fetch_node(s, st, out, err, errlen);
    if (rc == VNET_ENOENT)
        vnet_store_seterr(err, errlen, "no node '%s' in network '%s'", name, net->name);
    return rc;
}

/* The name of the node of network @net_id other than @except_id whose key is @pub, in @name:
 * 0 when there is one, VNET_ENOENT when the key is free. */
static int pubkey_user(struct sq *s, uint64_t net_id, const uint8_t *pub, uint64_t except_id,
                       char *name, char *err, size_t errlen)
{
    sqlite3_stmt *st = use(s, ST_NODE_PUBKEY_USER);
    bind_u64(st, 1, net_id);
    sqlite3_bind_blob(st, 2, pub, VNET_PUBKEY_LEN, SQLITE_TRANSIENT);
    bind_u64(st, 3, except_id);
    return fetch_name(s, st, name, err, errlen);
}

/* Log what a call without an error buffer failed with, unless @rc is an answer (no such row,
 * a conflict) rather than a failure. */
static int log_failure(int rc, const char *err)
{
    if (rc && rc != VNET_ENOENT && rc != VNET_EEXIST && err[0])
        vnet_log(VNET_LOG_WARN, "store", "%s", err);
    return rc;
}

/* ---- transactions ---- */

static int tx_begin(struct sq *s, bool write, char *err, size_t errlen)
{
    int rc =
        run(s, use(s, write ? ST_BEGIN : ST_BEGIN_READ), err, errlen, "starting a transaction");
    if (rc || !write)
        return rc;
    s->pend_valid[0] = s->pend_valid[1] = false;
    sqlite3_stmt *st = use(s, ST_DATA_VERSION);
    int r = sqlite3_step(st);
    int64_t dv = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (dv != s->dv || dv < 0) { /* another connection committed: forget the hint */
        s->hint_net = 0;
        s->dv = dv;
    }
    return 0;
}

/* Commit when @rc is 0, else roll back; returns the request's result. */
static int tx_end(struct sq *s, int rc, char *err, size_t errlen)
{
    if (rc == 0) {
        rc = run(s, use(s, ST_COMMIT), err, errlen, "committing");
        if (rc == 0)
            return 0;
    }
    if (!sqlite3_get_autocommit(s->db)) /* some errors have rolled back already */
        run(s, use(s, ST_ROLLBACK), NULL, 0, "rolling back");
    return rc;
}

/* Bump @net's revision to @rev, append one change record and apply the retention. */
static int log_change(struct sq *s, uint64_t net_id, uint64_t rev, int op,
                      const struct vnet_node *node, char *err, size_t errlen)
{
    uint8_t buf[VNET_STORE_NODE_ENC_MAX];
    int len = 0;
    if (node) {
        len = vnet_store_node_encode(node, buf, sizeof(buf));
        if (len < 0) {
            vnet_store_seterr(err, errlen, "cannot encode node '%s' for the change log",
                              node->name);
            return VNET_EINVAL;
        }
    }
    sqlite3_stmt *st = use(s, ST_NET_SET_REV);
    bind_u64(st, 1, net_id);
    bind_u64(st, 2, rev);
    int rc = run(s, st, err, errlen, "updating the network revision");
    if (rc)
        return rc;
    st = use(s, ST_CHG_INSERT);
    bind_u64(st, 1, net_id);
    bind_u64(st, 2, rev);
    sqlite3_bind_int(st, 3, op);
    if (node)
        sqlite3_bind_blob(st, 4, buf, len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 4);
    rc = run(s, st, err, errlen, "appending to the change log");
    if (rc || rev <= s->retention)
        return rc;
    st = use(s, ST_CHG_PRUNE);
    bind_u64(st, 1, net_id);
    bind_u64(st, 2, rev - s->retention);
    return run(s, st, err, errlen, "pruning the change log");
}

/* ---- open / close ---- */

static int pragma_int(struct sq *s, const char *sql, int64_t *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            *out = 0;
            rc = SQLITE_OK;
        }
    }
    int code = rc == SQLITE_OK ? 0 : fail(s, rc, err, errlen, "opening the store");
    sqlite3_finalize(st);
    return code;
}

static int exec(struct sq *s, const char *sql, char *err, size_t errlen, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(s, rc, err, errlen, what);
}

static int set_wal(struct sq *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    char mode[16] = "";
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            snprintf(mode, sizeof(mode), "%s", t ? t : "");
            rc = SQLITE_OK;
        }
    }
    int code = rc == SQLITE_OK ? 0 : fail(s, rc, err, errlen, "switching to WAL mode");
    sqlite3_finalize(st);
    if (!code && strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0) {
        vnet_store_seterr(err, errlen, "database %s cannot use WAL mode (journal mode '%s')",
                          s->path, mode);
        code = VNET_EIO;
    }
    return code;
}

static int quick_check(struct sq *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
    int code = 0;
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!t || strcmp(t, "ok") != 0) {
            vnet_store_seterr(err, errlen, "database %s is damaged: %s", s->path,
                              t ? t : "quick_check failed");
            for (char *c = err; *c; c++) /* one line */
                if (*c == '\n')
                    *c = ' ';
            code = VNET_ECORRUPT;
        }
    } else {
        code = fail(s, rc, err, errlen, "checking the database");
    }
    sqlite3_finalize(st);
    return code;
}

/* Bring the schema from @from to VNET_STORE_SCHEMA_VERSION in one transaction. */
static int migrate(struct sq *s, char *err, size_t errlen)
{
    int64_t v;
    int rc = exec(s, "BEGIN IMMEDIATE", err, errlen, "migrating the schema");
    if (rc)
        return rc;
    rc = pragma_int(s, "PRAGMA user_version", &v, err, errlen); /* another process may have */
    if (!rc && v > VNET_STORE_SCHEMA_VERSION) {
        vnet_store_seterr(err, errlen,
                          "database %s has schema version %" PRId64
                          ", newer than this library's (%d)",
                          s->path, v, VNET_STORE_SCHEMA_VERSION);
        rc = VNET_EVERSION;
    }
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

static void sq_close(void *state)
{
    struct sq *s = state;
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

/* Check what the file holds before anything writes to it: an empty file, a vnet store of a
 * version we know, or a refusal. */
static int check_file(struct sq *s, bool read_only, int64_t *version, char *err, size_t errlen)
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
    if (v > VNET_STORE_SCHEMA_VERSION) {
        vnet_store_seterr(err, errlen,
                          "database %s has schema version %" PRId64
                          ", newer than this library's (%d)",
                          s->path, v, VNET_STORE_SCHEMA_VERSION);
        return VNET_EVERSION;
    }
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

static int sq_open(const char *path, const struct vnet_store_opts *o, void **state, char *err,
                   size_t errlen)
{
    struct stat sb;
    if (o->read_only && strcmp(path, ":memory:") != 0 && stat(path, &sb) != 0) {
        vnet_store_seterr(err, errlen, "cannot open store %s: %s", path, strerror(errno));
        return errno == ENOENT ? VNET_ENOENT : errno == EACCES ? VNET_EACCES : VNET_EIO;
    }
    struct sq *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return VNET_ENOMEM;
    }
    s->retention = o->retention;
    s->busy_ms = o->busy_timeout_ms;
    s->dv = -1;
    int flags = (o->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        int e = s->db ? sqlite3_system_errno(s->db) : 0;
        vnet_store_seterr(err, errlen, "cannot open store %s: %s%s%s", path,
                          s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), e ? ": " : "",
                          e ? strerror(e) : "");
        sq_close(s);
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
    for (int i = 0; !code && i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, st_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            code = fail(s, rc, err, errlen, "preparing statements");
            if (code == VNET_EIO) { /* a table or column missing: not our schema */
                vnet_store_seterr(err, errlen,
                                  "database %s does not have the expected schema (version %d): "
                                  "%s",
                                  path, VNET_STORE_SCHEMA_VERSION, sqlite3_errmsg(s->db));
                code = VNET_ECORRUPT;
            }
        }
    }
    if (code) {
        sq_close(s);
        return code;
    }
    *state = s;
    return 0;
}

/* ---- networks ---- */

static int network_create_tx(struct sq *s, const struct vnet_network_spec *sp,
                             struct vnet_network *out, char *err, size_t errlen)
{
    char name[VNET_NAME_MAX], sub[VNET_NAME_MAX];
    sqlite3_stmt *st = use(s, ST_SUB_GET);
    bind_u64(st, 1, sp->subscriber_id);
    int rc = fetch_name(s, st, sub, err, errlen);
    if (rc == VNET_ENOENT)
        vnet_store_seterr(err, errlen, "no subscriber with id %" PRIu64, sp->subscriber_id);
    if (rc)
        return rc;
    struct vnet_network n;
    st = use(s, ST_NET_BY_NAME);
    bind_u64(st, 1, sp->subscriber_id);
    bind_text(st, 2, sp->name);
    rc = fetch_network(s, st, &n, err, errlen);
    if (rc == 0) {
        vnet_store_seterr(err, errlen, "network '%s' already exists for subscriber '%s'", sp->name,
                          sub);
        return VNET_EEXIST;
    }
    if (rc != VNET_ENOENT)
        return rc;

    uint32_t vni = sp->vni;
    if (sp->has_vni) {
        st = use(s, ST_NET_BY_VNI);
        sqlite3_bind_int64(st, 1, vni);
        rc = fetch_name(s, st, name, err, errlen);
        if (rc == 0) {
            vnet_store_seterr(err, errlen, "VNI %u is used by network '%s'", vni, name);
            return VNET_EEXIST;
        }
        if (rc != VNET_ENOENT)
            return rc;
    } else {
        st = use(s, ST_NET_FREE_VNI);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            vni = (uint32_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc == SQLITE_DONE) {
            vnet_store_seterr(err, errlen, "no free VNI left");
            return VNET_ENOSPC;
        }
        if (rc != SQLITE_ROW)
            return fail(s, rc, err, errlen, "choosing a VNI");
    }

    char p4[VNET_PREFIX_STRLEN], p6[VNET_PREFIX_STRLEN];
    st = use(s, ST_NET_INSERT);
    bind_u64(st, 1, sp->subscriber_id);
    bind_text(st, 2, sp->name);
    sqlite3_bind_int64(st, 3, vni);
    if (sp->subnet4.ip.family && vnet_prefix_format(&sp->subnet4, p4, sizeof(p4)) > 0)
        bind_text(st, 4, p4);
    else
        sqlite3_bind_null(st, 4);
    if (sp->subnet6.ip.family && vnet_prefix_format(&sp->subnet6, p6, sizeof(p6)) > 0)
        bind_text(st, 5, p6);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, sp->mtu);
    sqlite3_bind_int(st, 7, sp->mode);
    rc = run(s, st, err, errlen, "creating the network");
    if (rc)
        return rc;
    memset(&n, 0, sizeof(n));
    n.id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    n.subscriber_id = sp->subscriber_id;
    snprintf(n.name, sizeof(n.name), "%s", sp->name);
    n.vni = vni;
    n.subnet4 = sp->subnet4;
    n.subnet6 = sp->subnet6;
    n.mtu = sp->mtu;
    n.revision = 1;
    n.mode = (uint8_t)sp->mode;
    rc = log_change(s, n.id, 1, VNET_CHANGE_NET_PUT, NULL, err, errlen);
    if (!rc)
        *out = n;
    return rc;
}

static int sq_network_create(void *state, const struct vnet_network_spec *spec,
                             struct vnet_network *out, char *err, size_t errlen)
{
    struct sq *s = state;
    int rc = tx_begin(s, true, err, errlen);
    if (rc)
        return rc;
    return tx_end(s, network_create_tx(s, spec, out, err, errlen), err, errlen);
}

static int sq_network_get(void *state, uint64_t subscriber_id, const char *name,
                          struct vnet_network *out)
{
    struct sq *s = state;
    sqlite3_stmt *st;
    if (subscriber_id) {
        st = use(s, ST_NET_BY_NAME);
        bind_u64(st, 1, subscriber_id);
        bind_text(st, 2, name);
    } else {
        st = use(s, ST_NET_BY_NAME_ANY);
        bind_text(st, 1, name);
    }
    return fetch_network(s, st, out, NULL, 0);
}

static int sq_network_get_by_id(void *state, uint64_t id, struct vnet_network *out)
{
    return network_by_id(state, id, out, NULL, 0);
}

/* Lists are read whole before the callbacks run, so a callback may call the store again. */
struct vec {
    void *items;
    size_t n, cap, size;
};

static void *vec_push(struct vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void *p = realloc(v->items, cap * v->size);
        if (!p)
            return NULL;
        v->items = p;
        v->cap = cap;
    }
    return (char *)v->items + v->size * v->n++;
}

static int sq_network_list(void *state, uint64_t subscriber_id, vnet_store_network_fn fn, void *arg)
{
    struct sq *s = state;
    struct vec v = {NULL, 0, 0, sizeof(struct vnet_network)};
    sqlite3_stmt *st = use(s, subscriber_id ? ST_NET_LIST_SUB : ST_NET_LIST);
    if (subscriber_id)
        bind_u64(st, 1, subscriber_id);
    int rc, code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct vnet_network *n = vec_push(&v);
        if (!n) {
            code = VNET_ENOMEM;
            break;
        }
        if (!row_network(st, n)) {
            code = corrupt(s, NULL, 0, "listing networks");
            break;
        }
    }
    if (!code && rc != SQLITE_DONE)
        code = fail(s, rc, NULL, 0, "listing networks");
    sqlite3_reset(st);
    for (size_t i = 0; !code && i < v.n; i++)
        code = fn((struct vnet_network *)v.items + i, arg);
    free(v.items);
    return code;
}

static int network_delete_tx(struct sq *s, uint64_t id, char *err, size_t errlen)
{
    struct vnet_network net;
    int rc = network_by_id(s, id, &net, err, errlen);
    if (rc)
        return rc;
    sqlite3_stmt *st = use(s, ST_CHG_DELETE_NET);
    bind_u64(st, 1, id);
    rc = run(s, st, err, errlen, "deleting the change log");
    if (rc)
        return rc;
    st = use(s, ST_NET_DELETE);
    bind_u64(st, 1, id);
    rc = run(s, st, err, errlen, "deleting the network");
    if (rc)
        return rc;
    /* The tombstone: it makes pollers of vnet_store_changed_networks() see the deletion. */
    st = use(s, ST_CHG_INSERT);
    bind_u64(st, 1, id);
    bind_u64(st, 2, net.revision + 1);
    sqlite3_bind_int(st, 3, VNET_STORE_CHANGE_NET_DEL);
    sqlite3_bind_null(st, 4);
    return run(s, st, err, errlen, "appending to the change log");
}

static int sq_network_delete(void *state, uint64_t network_id, char *err, size_t errlen)
{
    struct sq *s = state;
    int rc = tx_begin(s, true, err, errlen);
    if (rc)
        return rc;
    rc = tx_end(s, network_delete_tx(s, network_id, err, errlen), err, errlen);
    if (s->hint_net == network_id)
        s->hint_net = 0;
    return rc;
}

/* ---- subscribers ---- */

static bool row_subscriber(sqlite3_stmt *st, struct vnet_subscriber *out)
{
    memset(out, 0, sizeof(*out));
    out->id = col_u64(st, 0);
    out->admin = out->id == VNET_SUBSCRIBER_ADMIN;
    out->has_token = sqlite3_column_int(st, 2) != 0;
    return col_name(st, 1, out->name);
}

static int fetch_subscriber(struct sq *s, sqlite3_stmt *st, struct vnet_subscriber *out, char *err,
                            size_t errlen)
{
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW)
        code = row_subscriber(st, out) ? 0 : corrupt(s, err, errlen, "reading a subscriber");
    else if (rc == SQLITE_DONE)
        code = VNET_ENOENT;
    else
        code = fail(s, rc, err, errlen, "reading a subscriber");
    sqlite3_reset(st);
    return code;
}

/* The subscriber holding @hash, other than @except_id: 0 when there is one, VNET_ENOENT. */
static int token_user(struct sq *s, const uint8_t *hash, uint64_t except_id, char *err,
                      size_t errlen)
{
    struct vnet_subscriber sub;
    sqlite3_stmt *st = use(s, ST_SUB_BY_TOKEN);
    sqlite3_bind_blob(st, 1, hash, VNET_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
    int rc = fetch_subscriber(s, st, &sub, err, errlen);
    if (rc == 0 && sub.id == except_id)
        rc = VNET_ENOENT;
    return rc;
}

static void bind_hash(sqlite3_stmt *st, int idx, const uint8_t *hash)
{
    if (hash)
        sqlite3_bind_blob(st, idx, hash, VNET_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, idx);
}

static int subscriber_create_tx(struct sq *s, const char *name, const uint8_t *hash,
                                struct vnet_subscriber *out, char *err, size_t errlen)
{
    struct vnet_subscriber sub;
    sqlite3_stmt *st = use(s, ST_SUB_BY_NAME);
    bind_text(st, 1, name);
    int rc = fetch_subscriber(s, st, &sub, err, errlen);
    if (rc == 0) {
        vnet_store_seterr(err, errlen, "subscriber '%s' already exists", name);
        return VNET_EEXIST;
    }
    if (rc != VNET_ENOENT)
        return rc;
    if (hash) {
        rc = token_user(s, hash, 0, err, errlen);
        if (rc == 0) { /* a token is never shared: do not say whose it is */
            vnet_store_seterr(err, errlen, "subscriber '%s': the token is already in use", name);
            return VNET_EEXIST;
        }
        if (rc != VNET_ENOENT)
            return rc;
    }
    st = use(s, ST_SUB_INSERT);
    bind_text(st, 1, name);
    bind_hash(st, 2, hash);
    rc = run(s, st, err, errlen, "creating the subscriber");
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    out->id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->admin = out->id == VNET_SUBSCRIBER_ADMIN;
    out->has_token = hash != NULL;
    return 0;
}

static int sq_subscriber_create(void *state, const char *name, const uint8_t *token_hash,
                                struct vnet_subscriber *out, char *err, size_t errlen)
{
    struct sq *s = state;
    int rc = tx_begin(s, true, err, errlen);
    if (rc)
        return rc;
    return tx_end(s, subscriber_create_tx(s, name, token_hash, out, err, errlen), err, errlen);
}

static int sq_subscriber_get(void *state, const char *name, struct vnet_subscriber *out)
{
    struct sq *s = state;
    sqlite3_stmt *st = use(s, ST_SUB_BY_NAME);
    bind_text(st, 1, name);
    return fetch_subscriber(s, st, out, NULL, 0);
}

static int sq_subscriber_get_by_id(void *state, uint64_t id, struct vnet_subscriber *out)
{
    struct sq *s = state;
    sqlite3_stmt *st = use(s, ST_SUB_BY_ID);
    bind_u64(st, 1, id);
    return fetch_subscriber(s, st, out, NULL, 0);
}

static int sq_subscriber_by_token(void *state, const uint8_t *token_hash,
                                  struct vnet_subscriber *out)
{
    struct sq *s = state;
    sqlite3_stmt *st = use(s, ST_SUB_BY_TOKEN);
    sqlite3_bind_blob(st, 1, token_hash, VNET_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
    return fetch_subscriber(s, st, out, NULL, 0);
}

static int sq_subscriber_list(void *state, vnet_store_subscriber_fn fn, void *arg)
{
    struct sq *s = state;
    struct vec v = {NULL, 0, 0, sizeof(struct vnet_subscriber)};
    sqlite3_stmt *st = use(s, ST_SUB_LIST);
    int rc, code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct vnet_subscriber *sub = vec_push(&v);
        if (!sub) {
            code = VNET_ENOMEM;
            break;
        }
        if (!row_subscriber(st, sub)) {
            code = corrupt(s, NULL, 0, "listing subscribers");
            break;
        }
    }
    if (!code && rc != SQLITE_DONE)
        code = fail(s, rc, NULL, 0, "listing subscribers");
    sqlite3_reset(st);
    for (size_t i = 0; !code && i < v.n; i++)
        code = fn((struct vnet_subscriber *)v.items + i, arg);
    free(v.items);
    return code;
}

static int subscriber_set_token_tx(struct sq *s, uint64_t id, const uint8_t *hash, char *err,
                                   size_t errlen)
{
    struct vnet_subscriber sub;
    sqlite3_stmt *st = use(s, ST_SUB_BY_ID);
    bind_u64(st, 1, id);
    int rc = fetch_subscriber(s, st, &sub, err, errlen);
    if (rc)
        return rc;
    if (hash) {
        rc = token_user(s, hash, id, err, errlen);
        if (rc == 0) {
            vnet_store_seterr(err, errlen, "subscriber '%s': the token is already in use",
                              sub.name);
            return VNET_EEXIST;
        }
        if (rc != VNET_ENOENT)
            return rc;
    }
    st = use(s, ST_SUB_SET_TOKEN);
    bind_u64(st, 1, id);
    bind_hash(st, 2, hash);
    return run(s, st, err, errlen, "setting the subscriber's token");
}

static int sq_subscriber_set_token(void *state, uint64_t id, const uint8_t *token_hash)
{
    struct sq *s = state;
    char err[256] = "";
    int rc = tx_begin(s, true, err, sizeof(err));
    if (!rc)
        rc = tx_end(s, subscriber_set_token_tx(s, id, token_hash, err, sizeof(err)), err,
                    sizeof(err));
    return log_failure(rc, err);
}

#define OWNS_NETWORKS 1 /* private: subscriber_delete_tx's refusal, VNET_EBUSY to the caller */

static int subscriber_delete_tx(struct sq *s, uint64_t id, char *err, size_t errlen)
{
    char name[VNET_NAME_MAX];
    struct vnet_subscriber sub;
    sqlite3_stmt *st = use(s, ST_SUB_BY_ID);
    bind_u64(st, 1, id);
    int rc = fetch_subscriber(s, st, &sub, err, errlen);
    if (rc)
        return rc;
    st = use(s, ST_SUB_NETS);
    bind_u64(st, 1, id);
    rc = fetch_name(s, st, name, err, errlen);
    if (rc == 0)
        return OWNS_NETWORKS;
    if (rc != VNET_ENOENT)
        return rc;
    st = use(s, ST_SUB_DELETE);
    bind_u64(st, 1, id);
    return run(s, st, err, errlen, "deleting the subscriber");
}

static int sq_subscriber_delete(void *state, uint64_t id)
{
    struct sq *s = state;
    char err[256] = "";
    int rc = tx_begin(s, true, err, sizeof(err));
    if (!rc)
        rc = tx_end(s, subscriber_delete_tx(s, id, err, sizeof(err)), err, sizeof(err));
    if (rc == OWNS_NETWORKS)
        return VNET_EBUSY;
    return log_failure(rc, err);
}

/* ---- nodes ---- */

/* The name of the node of @net using @ip, in @name: 0 when used, VNET_ENOENT when free. */
static int ip_user(struct sq *s, uint64_t net_id, const struct vnet_ip *ip, char *name, char *err,
                   size_t errlen)
{
    sqlite3_stmt *st = use(s, ip->family == VNET_AF_INET ? ST_NODE_BY_IP4 : ST_NODE_BY_IP6);
    bind_u64(st, 1, net_id);
    bind_ip(st, 2, ip);
    return fetch_name(s, st, name, err, errlen);
}

static int mac_user(struct sq *s, uint64_t net_id, const struct vnet_mac *mac, char *name,
                    char *err, size_t errlen)
{
    sqlite3_stmt *st = use(s, ST_NODE_BY_MAC);
    bind_u64(st, 1, net_id);
    sqlite3_bind_blob(st, 2, mac->b, 6, SQLITE_TRANSIENT);
    return fetch_name(s, st, name, err, errlen);
}

/* The lowest free host address of @net's subnet of family slot @slot (0: IPv4, 1: IPv6). */
static int assign_ip(struct sq *s, const struct vnet_network *net, int slot, struct vnet_ip *out,
                     char *err, size_t errlen)
{
    const struct vnet_prefix *p = slot ? &net->subnet6 : &net->subnet4;
    struct vnet_ip cand, last;
    vnet_store_subnet_first(p, &cand);
    vnet_store_subnet_last(p, &last);
    if (s->hint_net == net->id && s->hint_valid[slot] &&
        vnet_store_ip_cmp(&s->hint_next[slot], &cand) > 0)
        cand = s->hint_next[slot];
    unsigned len = ip_len(cand.family);
    bool full = vnet_store_ip_cmp(&cand, &last) > 0;
    sqlite3_stmt *st = use(s, slot ? ST_NODE_IP6_FROM : ST_NODE_IP4_FROM);
    bind_u64(st, 1, net->id);
    bind_ip(st, 2, &cand);
    int rc = SQLITE_DONE;
    while (!full && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(st, 0);
        if (!b || (unsigned)sqlite3_column_bytes(st, 0) != len) {
            sqlite3_reset(st);
            return corrupt(s, err, errlen, "assigning an IP");
        }
        int c = memcmp(b, cand.addr, len);
        if (c > 0)
            break; /* a gap: cand is free */
        if (c == 0 && (vnet_store_ip_cmp(&cand, &last) >= 0 || !vnet_store_ip_inc(&cand)))
            full = true;
    }
    sqlite3_reset(st);
    if (!full && rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, rc, err, errlen, "assigning an IP");
    if (full) {
        char pbuf[VNET_PREFIX_STRLEN];
        vnet_prefix_format(p, pbuf, sizeof(pbuf));
        vnet_store_seterr(err, errlen, "no free %s address left in subnet %s of network '%s'",
                          slot ? "IPv6" : "IPv4", pbuf, net->name);
        return VNET_ENOSPC;
    }
    *out = cand;
    s->pend_next[slot] = cand;
    s->pend_valid[slot] = vnet_store_ip_inc(&s->pend_next[slot]);
    return 0;
}

static int node_add_tx(struct sq *s, uint64_t network_id, const struct vnet_node_spec *sp,
                       struct vnet_node *out, char *err, size_t errlen)
{
    char other[VNET_NAME_MAX], buf[VNET_IP_STRLEN];
    struct vnet_network net;
    struct vnet_node n;
    int rc = network_by_id(s, network_id, &net, err, errlen);
    if (rc)
        return rc;
    rc = node_by_name(s, &net, sp->name, &n, err, errlen);
    if (rc == 0) {
        vnet_store_seterr(err, errlen, "node '%s' already exists in network '%s'", sp->name,
                          net.name);
        return VNET_EEXIST;
    }
    if (rc != VNET_ENOENT)
        return rc;
    memset(&n, 0, sizeof(n));
    n.network_id = net.id;
    snprintf(n.name, sizeof(n.name), "%s", sp->name);
    if (sp->pubkey) {
        rc = pubkey_user(s, net.id, sp->pubkey, 0, other, err, errlen);
        if (rc == 0) {
            vnet_store_seterr(err, errlen, "the public key is used by node '%s' in network '%s'",
                              other, net.name);
            return VNET_EEXIST;
        }
        if (rc != VNET_ENOENT)
            return rc;
        memcpy(n.pubkey, sp->pubkey, VNET_PUBKEY_LEN);
        n.has_pubkey = true;
    }
    n.phys = sp->phys;
    n.state = VNET_NODE_PENDING;

    if (sp->has_mac) {
        n.mac = sp->mac;
        rc = mac_user(s, net.id, &n.mac, other, err, errlen);
        if (rc == 0) {
            vnet_mac_format(&n.mac, buf, sizeof(buf));
            vnet_store_seterr(err, errlen, "MAC %s is used by node '%s' in network '%s'", buf,
                              other, net.name);
            return VNET_EEXIST;
        }
        if (rc != VNET_ENOENT)
            return rc;
    } else {
        /* Locally administered unicast, 40 random bits: a collision is rare; retry it. */
        rc = 0;
        for (int tries = 0; tries < 32 && rc != VNET_ENOENT; tries++) {
            n.mac.b[0] = 0x02;
            sqlite3_randomness(5, n.mac.b + 1);
            rc = mac_user(s, net.id, &n.mac, other, err, errlen);
            if (rc && rc != VNET_ENOENT)
                return rc;
        }
        if (rc != VNET_ENOENT) {
            vnet_store_seterr(err, errlen, "could not pick a free MAC in network '%s'", net.name);
            return VNET_EIO;
        }
    }

    for (int slot = 0; slot < VNET_NODE_IPS; slot++) {
        const struct vnet_ip *ip = &sp->ips[slot];
        if (ip->family == VNET_AF_NONE) {
            const struct vnet_prefix *p = slot ? &net.subnet6 : &net.subnet4;
            if (p->ip.family && (rc = assign_ip(s, &net, slot, &n.ips[slot], err, errlen)))
                return rc;
            continue;
        }
        if ((rc = vnet_store_check_ip(&net, ip, err, errlen)))
            return rc;
        rc = ip_user(s, net.id, ip, other, err, errlen);
        if (rc == 0) {
            vnet_ip_format(ip, buf, sizeof(buf));
            vnet_store_seterr(err, errlen, "IP %s is used by node '%s' in network '%s'", buf, other,
                              net.name);
            return VNET_EEXIST;
        }
        if (rc != VNET_ENOENT)
            return rc;
        n.ips[slot] = *ip;
    }

    n.revision = net.revision + 1;
    sqlite3_stmt *st = use(s, ST_NODE_INSERT);
    bind_u64(st, 1, net.id);
    bind_text(st, 2, n.name);
    if (n.has_pubkey)
        sqlite3_bind_blob(st, 3, n.pubkey, VNET_PUBKEY_LEN, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_blob(st, 4, n.mac.b, 6, SQLITE_TRANSIENT);
    bind_ip(st, 5, &n.ips[0]);
    bind_ip(st, 6, &n.ips[1]);
    bind_ip(st, 7, &n.phys.ip);
    sqlite3_bind_int(st, 8, n.phys.port);
    sqlite3_bind_null(st, 9);
    sqlite3_bind_int(st, 10, 0);
    sqlite3_bind_int(st, 11, n.state);
    bind_u64(st, 12, n.revision);
    rc = run(s, st, err, errlen, "adding the node");
    if (rc)
        return rc;
    n.id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    rc = log_change(s, net.id, n.revision, VNET_CHANGE_NODE_PUT, &n, err, errlen);
    if (!rc)
        *out = n;
    return rc;
}

static int sq_node_add(void *state, uint64_t network_id, const struct vnet_node_spec *spec,
                       struct vnet_node *out, char *err, size_t errlen)
{
    struct sq *s = state;
    int rc = tx_begin(s, true, err, errlen);
    if (rc)
        return rc;
    rc = tx_end(s, node_add_tx(s, network_id, spec, out, err, errlen), err, errlen);
    if (rc == 0) {
        if (s->hint_net != network_id) {
            s->hint_net = network_id;
            s->hint_valid[0] = s->hint_valid[1] = false;
        }
        for (int i = 0; i < 2; i++) {
            if (s->pend_valid[i]) {
                s->hint_valid[i] = true;
                s->hint_next[i] = s->pend_next[i];
            }
        }
    }
    return rc;
}

static int sq_node_get(void *state, uint64_t network_id, const char *name, struct vnet_node *out)
{
    struct sq *s = state;
    sqlite3_stmt *st = use(s, ST_NODE_BY_NAME);
    bind_u64(st, 1, network_id);
    bind_text(st, 2, name);
    return fetch_node(s, st, out, NULL, 0);
}

static int sq_node_get_by_id(void *state, uint64_t node_id, struct vnet_node *out)
{
    struct sq *s = state;
    sqlite3_stmt *st = use(s, ST_NODE_BY_ID);
    bind_u64(st, 1, node_id);
    return fetch_node(s, st, out, NULL, 0);
}

static int sq_node_list(void *state, uint64_t network_id, vnet_store_node_fn fn, void *arg)
{
    struct sq *s = state;
    struct vec v = {NULL, 0, 0, sizeof(struct vnet_node)};
    struct vnet_network net;
    int rc = tx_begin(s, false, NULL, 0);
    if (rc)
        return rc;
    int code = network_by_id(s, network_id, &net, NULL, 0);
    sqlite3_stmt *st = use(s, ST_NODE_LIST);
    bind_u64(st, 1, network_id);
    rc = SQLITE_DONE;
    while (!code && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct vnet_node *n = vec_push(&v);
        if (!n)
            code = VNET_ENOMEM;
        else if (!row_node(st, n))
            code = corrupt(s, NULL, 0, "listing nodes");
    }
    if (!code && rc != SQLITE_DONE)
        code = fail(s, rc, NULL, 0, "listing nodes");
    sqlite3_reset(st);
    code = tx_end(s, code, NULL, 0);
    for (size_t i = 0; !code && i < v.n; i++)
        code = fn((struct vnet_node *)v.items + i, arg);
    free(v.items);
    return code;
}

static int node_move_tx(struct sq *s, uint64_t network_id, const char *name,
                        const struct vnet_endpoint *phys, struct vnet_node *out, char *err,
                        size_t errlen)
{
    struct vnet_network net;
    struct vnet_node n;
    int rc = network_by_id(s, network_id, &net, err, errlen);
    if (!rc)
        rc = node_by_name(s, &net, name, &n, err, errlen);
    if (rc)
        return rc;
    if (vnet_endpoint_eq(&n.phys, phys)) { /* nothing changes: no record */
        *out = n;
        return 0;
    }
    n.phys = *phys;
    n.revision = net.revision + 1;
    sqlite3_stmt *st = use(s, ST_NODE_SET_PHYS);
    bind_u64(st, 1, n.id);
    bind_ip(st, 2, &n.phys.ip);
    sqlite3_bind_int(st, 3, n.phys.port);
    bind_u64(st, 4, n.revision);
    rc = run(s, st, err, errlen, "moving the node");
    if (!rc)
        rc = log_change(s, net.id, n.revision, VNET_CHANGE_NODE_PUT, &n, err, errlen);
    if (!rc)
        *out = n;
    return rc;
}

static int sq_node_move(void *state, uint64_t network_id, const char *name,
                        const struct vnet_endpoint *phys, struct vnet_node *out, char *err,
                        size_t errlen)
{
    struct sq *s = state;
    int rc = tx_begin(s, true, err, errlen);
    if (rc)
        return rc;
    return tx_end(s, node_move_tx(s, network_id, name, phys, out, err, errlen), err, errlen);
}

static int node_set_observed_tx(struct sq *s, uint64_t node_id,
                                const struct vnet_endpoint *observed, struct vnet_node *out,
                                char *err, size_t errlen)
{
    struct vnet_network net;
    struct vnet_node n;
    sqlite3_stmt *st = use(s, ST_NODE_BY_ID);
    bind_u64(st, 1, node_id);
    int rc = fetch_node(s, st, &n, err, errlen);
    if (!rc)
        rc = network_by_id(s, n.network_id, &net, err, errlen);
    if (rc)
        return rc;
    if (vnet_endpoint_eq(&n.observed, observed) && n.state == VNET_NODE_ACTIVE) {
        *out = n;
        return 0;
    }
    n.observed = *observed;
    n.state = VNET_NODE_ACTIVE;
    n.revision = net.revision + 1;
    st = use(s, ST_NODE_SET_OBSERVED);
    bind_u64(st, 1, n.id);
    bind_ip(st, 2, &n.observed.ip);
    sqlite3_bind_int(st, 3, n.observed.port);
    sqlite3_bind_int(st, 4, n.state);
    bind_u64(st, 5, n.revision);
    rc = run(s, st, err, errlen, "recording the observed endpoint");
    if (!rc)
        rc = log_change(s, net.id, n.revision, VNET_CHANGE_NODE_PUT, &n, err, errlen);
    if (!rc)
        *out = n;
    return rc;
}

static int sq_node_set_observed(void *state, uint64_t node_id, const struct vnet_endpoint *observed,
                                struct vnet_node *out)
{
    struct sq *s = state;
    char err[256];
    int rc = tx_begin(s, true, NULL, 0);
    if (rc)
        return rc;
    err[0] = '\0';
    rc = tx_end(s, node_set_observed_tx(s, node_id, observed, out, err, sizeof(err)), err,
                sizeof(err));
    if (rc && rc != VNET_ENOENT && err[0])
        vnet_log(VNET_LOG_WARN, "store", "%s", err);
    return rc;
}

static int node_remove_tx(struct sq *s, uint64_t network_id, const char *name, uint64_t *revision,
                          char *err, size_t errlen)
{
    struct vnet_network net;
    struct vnet_node n;
    int rc = network_by_id(s, network_id, &net, err, errlen);
    if (!rc)
        rc = node_by_name(s, &net, name, &n, err, errlen);
    if (rc)
        return rc;
    sqlite3_stmt *st = use(s, ST_NODE_DELETE);
    bind_u64(st, 1, n.id);
    rc = run(s, st, err, errlen, "removing the node");
    if (rc)
        return rc;
    n.state = VNET_NODE_REMOVED;
    n.revision = net.revision + 1;
    rc = log_change(s, net.id, n.revision, VNET_CHANGE_NODE_DEL, &n, err, errlen);
    if (!rc)
        *revision = n.revision;
    return rc;
}

static int sq_node_remove(void *state, uint64_t network_id, const char *name, uint64_t *revision,
                          char *err, size_t errlen)
{
    struct sq *s = state;
    int rc = tx_begin(s, true, err, errlen);
    if (rc)
        return rc;
    rc = tx_end(s, node_remove_tx(s, network_id, name, revision, err, errlen), err, errlen);
    if (s->hint_net == network_id) /* its addresses are free again */
        s->hint_net = 0;
    return rc;
}

/* ---- node keys and enrolment ---- */

/* Set (@pub non-NULL) or clear node @n's key, cancel its join token; a change record when the
 * key changes. @n is updated. */
static int node_key_tx(struct sq *s, struct vnet_node *n, const uint8_t *pub, char *err,
                       size_t errlen)
{
    char other[VNET_NAME_MAX];
    struct vnet_network net;
    int rc = network_by_id(s, n->network_id, &net, err, errlen);
    if (rc)
        return rc;
    if (pub) {
        rc = pubkey_user(s, net.id, pub, n->id, other, err, errlen);
        if (rc == 0) {
            vnet_store_seterr(err, errlen, "the public key is used by node '%s' in network '%s'",
                              other, net.name);
            return VNET_EEXIST;
        }
        if (rc != VNET_ENOENT)
            return rc;
    }
    bool same =
        pub ? n->has_pubkey && memcmp(n->pubkey, pub, VNET_PUBKEY_LEN) == 0 : !n->has_pubkey;
    if (!same) {
        n->has_pubkey = pub != NULL;
        memset(n->pubkey, 0, VNET_PUBKEY_LEN);
        if (pub)
            memcpy(n->pubkey, pub, VNET_PUBKEY_LEN);
        n->revision = net.revision + 1;
    }
    sqlite3_stmt *st = use(s, ST_NODE_SET_PUBKEY);
    bind_u64(st, 1, n->id);
    if (n->has_pubkey)
        sqlite3_bind_blob(st, 2, n->pubkey, VNET_PUBKEY_LEN, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 2);
    bind_u64(st, 3, n->revision);
    rc = run(s, st, err, errlen, "setting the node's key");
    if (!rc && !same)
        rc = log_change(s, net.id, n->revision, VNET_CHANGE_NODE_PUT, n, err, errlen);
    return rc;
}

static int node_by_id_tx(struct sq *s, uint64_t node_id, struct vnet_node *n, char *err,
                         size_t errlen)
{
    sqlite3_stmt *st = use(s, ST_NODE_BY_ID);
    bind_u64(st, 1, node_id);
    int rc = fetch_node(s, st, n, err, errlen);
    if (rc == VNET_ENOENT)
        vnet_store_seterr(err, errlen, "no node with id %" PRIu64, node_id);
    return rc;
}

static int sq_node_set_pubkey(void *state, uint64_t node_id, const uint8_t *pub)
{
    struct sq *s = state;
    struct vnet_node n;
    char err[256] = "";
    int rc = tx_begin(s, true, err, sizeof(err));
    if (rc)
        return log_failure(rc, err);
    rc = node_by_id_tx(s, node_id, &n, err, sizeof(err));
    if (!rc)
        rc = node_key_tx(s, &n, pub, err, sizeof(err));
    return log_failure(tx_end(s, rc, err, sizeof(err)), err);
}

static int sq_node_revoke(void *state, uint64_t node_id)
{
    struct sq *s = state;
    struct vnet_node n;
    char err[256] = "";
    int rc = tx_begin(s, true, err, sizeof(err));
    if (rc)
        return log_failure(rc, err);
    rc = node_by_id_tx(s, node_id, &n, err, sizeof(err));
    if (!rc)
        rc = node_key_tx(s, &n, NULL, err, sizeof(err));
    return log_failure(tx_end(s, rc, err, sizeof(err)), err);
}

static int node_set_join_token_tx(struct sq *s, uint64_t node_id, const uint8_t *hash,
                                  uint64_t expires, char *err, size_t errlen)
{
    struct vnet_node n;
    int rc = node_by_id_tx(s, node_id, &n, err, errlen);
    if (rc)
        return rc;
    if (hash) {
        sqlite3_stmt *st = use(s, ST_NODE_BY_TOKEN);
        sqlite3_bind_blob(st, 1, hash, VNET_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
        struct vnet_node other;
        rc = fetch_node(s, st, &other, err, errlen);
        if (rc == 0 && other.id != node_id) {
            vnet_store_seterr(err, errlen, "node '%s': the join token is already in use", n.name);
            return VNET_EEXIST;
        }
        if (rc && rc != VNET_ENOENT)
            return rc;
    }
    sqlite3_stmt *st = use(s, ST_NODE_SET_TOKEN);
    bind_u64(st, 1, node_id);
    bind_hash(st, 2, hash);
    sqlite3_bind_int64(st, 3, expires > INT64_MAX ? INT64_MAX : (sqlite3_int64)expires);
    return run(s, st, err, errlen, "setting the node's join token");
}

static int sq_node_set_join_token(void *state, uint64_t node_id, const uint8_t *token_hash,
                                  uint64_t expires_unix)
{
    struct sq *s = state;
    char err[256] = "";
    int rc = tx_begin(s, true, err, sizeof(err));
    if (!rc)
        rc = tx_end(s,
                    node_set_join_token_tx(s, node_id, token_hash, expires_unix, err, sizeof(err)),
                    err, sizeof(err));
    return log_failure(rc, err);
}

static int node_join_tx(struct sq *s, const uint8_t *hash, const uint8_t *pub, uint64_t now,
                        struct vnet_node *out, char *err, size_t errlen)
{
    struct vnet_node n;
    sqlite3_stmt *st = use(s, ST_NODE_BY_TOKEN);
    sqlite3_bind_blob(st, 1, hash, VNET_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st), code = 0;
    uint64_t expires = 0;
    if (rc == SQLITE_ROW) {
        code = row_node(st, &n) ? 0 : corrupt(s, err, errlen, "reading a node");
        expires = col_u64(st, 13);
    } else if (rc == SQLITE_DONE) {
        code = VNET_ENOENT;
        vnet_store_seterr(err, errlen, "unknown or already used join token");
    } else {
        code = fail(s, rc, err, errlen, "reading a node");
    }
    sqlite3_reset(st);
    if (code)
        return code;
    if (expires && now >= expires) {
        vnet_store_seterr(err, errlen, "the join token of node '%s' expired", n.name);
        return VNET_ETIMEDOUT;
    }
    rc = node_key_tx(s, &n, pub, err, errlen); /* also consumes the token */
    if (!rc)
        *out = n;
    return rc;
}

static int sq_node_join(void *state, const uint8_t *token_hash, const uint8_t *pub,
                        uint64_t now_unix, struct vnet_node *out, char *err, size_t errlen)
{
    struct sq *s = state;
    int rc = tx_begin(s, true, err, errlen);
    if (rc)
        return rc;
    return tx_end(s, node_join_tx(s, token_hash, pub, now_unix, out, err, errlen), err, errlen);
}

static int sq_node_by_pubkey(void *state, uint64_t network_id, const uint8_t *pub,
                             struct vnet_node *out)
{
    struct sq *s = state;
    struct vnet_node n;
    sqlite3_stmt *st = use(s, ST_NODE_BY_PUBKEY);
    bind_u64(st, 1, network_id);
    sqlite3_bind_blob(st, 2, pub, VNET_PUBKEY_LEN, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st), code = 0;
    if (rc == SQLITE_ROW) {
        code = row_node(st, &n) ? 0 : corrupt(s, NULL, 0, "reading a node");
        rc = sqlite3_step(st);
        /* Two nodes with one key (only in files from before schema v3): neither is
         * authenticated, since the key does not say which node it is. */
        if (!code && rc == SQLITE_ROW) {
            vnet_log(VNET_LOG_WARN, "store",
                     "nodes %" PRIu64 " and %" PRIu64 " of network %" PRIu64
                     " share a public key: refusing it; revoke one",
                     n.id, col_u64(st, 0), network_id);
            code = VNET_EEXIST;
        } else if (!code && rc != SQLITE_DONE) {
            code = fail(s, rc, NULL, 0, "reading a node");
        }
    } else if (rc == SQLITE_DONE) {
        code = VNET_ENOENT;
    } else {
        code = fail(s, rc, NULL, 0, "reading a node");
    }
    sqlite3_reset(st);
    if (!code)
        *out = n;
    return code;
}

/* ---- change log ---- */

static int changes_read(struct sq *s, uint64_t network_id, uint64_t since, struct vec *v)
{
    struct vnet_network net;
    int rc = network_by_id(s, network_id, &net, NULL, 0);
    if (rc)
        return rc;
    if (since > net.revision)
        return VNET_ERANGE; /* the caller's state is not from this store's history */
    if (since == net.revision)
        return 0;
    sqlite3_stmt *st = use(s, ST_CHG_OLDEST);
    bind_u64(st, 1, network_id);
    rc = sqlite3_step(st);
    bool none = rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_NULL;
    uint64_t oldest = rc == SQLITE_ROW ? col_u64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return fail(s, rc, NULL, 0, "reading the change log");
    if (none || oldest > since + 1)
        return VNET_ERANGE;

    st = use(s, ST_CHG_SINCE);
    bind_u64(st, 1, network_id);
    bind_u64(st, 2, since);
    int code = 0;
    while (!code && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct vnet_change *c = vec_push(v);
        if (!c) {
            code = VNET_ENOMEM;
            break;
        }
        memset(c, 0, sizeof(*c));
        c->network_id = network_id;
        c->revision = col_u64(st, 0);
        int op = sqlite3_column_int(st, 1);
        c->op = (enum vnet_change_op)op;
        if (op == VNET_CHANGE_NODE_PUT || op == VNET_CHANGE_NODE_DEL) {
            const void *b = sqlite3_column_blob(st, 2);
            int n = sqlite3_column_bytes(st, 2);
            if (!b || vnet_store_node_decode(b, (size_t)n, &c->node) != 0)
                code = corrupt(s, NULL, 0, "reading the change log");
        } else if (op != VNET_CHANGE_NET_PUT) {
            code = corrupt(s, NULL, 0, "reading the change log");
        }
    }
    if (!code && rc != SQLITE_DONE)
        code = fail(s, rc, NULL, 0, "reading the change log");
    sqlite3_reset(st);
    return code;
}

static int sq_changes_since(void *state, uint64_t network_id, uint64_t since,
                            vnet_store_change_fn fn, void *arg)
{
    struct sq *s = state;
    struct vec v = {NULL, 0, 0, sizeof(struct vnet_change)};
    int rc = tx_begin(s, false, NULL, 0);
    if (rc)
        return rc;
    rc = tx_end(s, changes_read(s, network_id, since, &v), NULL, 0);
    for (size_t i = 0; !rc && i < v.n; i++)
        rc = fn((struct vnet_change *)v.items + i, arg);
    free(v.items);
    return rc;
}

static int sq_last_change(void *state, uint64_t *out)
{
    struct sq *s = state;
    sqlite3_stmt *st = use(s, ST_CHG_LAST);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = col_u64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : fail(s, rc, NULL, 0, "reading the change log");
}

static int sq_changed_networks(void *state, uint64_t since, vnet_store_id_fn fn, void *arg)
{
    struct sq *s = state;
    struct vec v = {NULL, 0, 0, sizeof(uint64_t)};
    sqlite3_stmt *st = use(s, ST_CHG_NETS);
    bind_u64(st, 1, since);
    int rc, code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t *id = vec_push(&v);
        if (!id) {
            code = VNET_ENOMEM;
            break;
        }
        *id = col_u64(st, 0);
    }
    if (!code && rc != SQLITE_DONE)
        code = fail(s, rc, NULL, 0, "reading the change log");
    sqlite3_reset(st);
    for (size_t i = 0; !code && i < v.n; i++)
        code = fn(((uint64_t *)v.items)[i], arg);
    free(v.items);
    return code;
}

const struct vnet_store_ops vnet_store_sqlite_ops = {
    .version = VNET_STORE_OPS_VERSION,
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .network_create = sq_network_create,
    .network_get = sq_network_get,
    .network_get_by_id = sq_network_get_by_id,
    .network_list = sq_network_list,
    .network_delete = sq_network_delete,
    .node_add = sq_node_add,
    .node_get = sq_node_get,
    .node_get_by_id = sq_node_get_by_id,
    .node_list = sq_node_list,
    .node_move = sq_node_move,
    .node_set_observed = sq_node_set_observed,
    .node_remove = sq_node_remove,
    .node_set_pubkey = sq_node_set_pubkey,
    .node_set_join_token = sq_node_set_join_token,
    .node_join = sq_node_join,
    .node_by_pubkey = sq_node_by_pubkey,
    .node_revoke = sq_node_revoke,
    .subscriber_create = sq_subscriber_create,
    .subscriber_get = sq_subscriber_get,
    .subscriber_get_by_id = sq_subscriber_get_by_id,
    .subscriber_by_token = sq_subscriber_by_token,
    .subscriber_list = sq_subscriber_list,
    .subscriber_set_token = sq_subscriber_set_token,
    .subscriber_delete = sq_subscriber_delete,
    .changes_since = sq_changes_since,
    .last_change = sq_last_change,
    .changed_networks = sq_changed_networks,
};
