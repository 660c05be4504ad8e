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
    ST_SUB_BY_ID,
    ST_SUB_BY_NAME,
    ST_SUB_BY_TOKEN,
    ST_SUB_LIST,
    ST_SUB_INSERT,
    ST_SUB_SET_TOKEN,
    ST_SUB_DELETE,
    ST_NET_BY_ID,
    ST_NET_BY_VNI,
    ST_NET_BY_NAME,
    ST_NET_BY_NAME_ANY,
    ST_NET_LIST,
    ST_NET_LIST_SUB,
    ST_NET_FREE_VNI,
    ST_NET_INSERT,
    ST_NET_SET_REV,
    ST_NET_DELETE,
    ST_NODE_BY_ID,
    ST_NODE_BY_NAME,
    ST_NODE_BY_MAC,
    ST_NODE_BY_IP4,
    ST_NODE_BY_IP6,
    ST_NODE_BY_PUBKEY,
    ST_NODE_BY_TOKEN,
    ST_NODE_LIST,
    ST_NODE_IP4_FROM,
    ST_NODE_IP6_FROM,
    ST_NODE_INSERT,
    ST_NODE_UPDATE,
    ST_NODE_SET_TOKEN,
    ST_NODE_DELETE,
    ST_CHG_INSERT,
    ST_CHG_PRUNE,
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
    [ST_SUB_BY_ID] = "SELECT " SUB_COLS " FROM subscribers WHERE id = ?1",
    [ST_SUB_BY_NAME] = "SELECT " SUB_COLS " FROM subscribers WHERE name = ?1",
    [ST_SUB_BY_TOKEN] = "SELECT " SUB_COLS " FROM subscribers WHERE token_hash = ?1",
    [ST_SUB_LIST] = "SELECT " SUB_COLS " FROM subscribers ORDER BY id",
    [ST_SUB_INSERT] = "INSERT INTO subscribers (name, created, token_hash) "
                      "VALUES (?1, CAST(strftime('%s', 'now') AS INTEGER), ?2)",
    [ST_SUB_SET_TOKEN] = "UPDATE subscribers SET token_hash = ?2 WHERE id = ?1",
    [ST_SUB_DELETE] = "DELETE FROM subscribers WHERE id = ?1",
    [ST_NET_BY_ID] = "SELECT " NET_COLS " FROM networks WHERE id = ?1",
    [ST_NET_BY_VNI] = "SELECT " NET_COLS " FROM networks WHERE vni = ?1",
    [ST_NET_BY_NAME] = "SELECT " NET_COLS " FROM networks WHERE subscriber_id = ?1 AND name = ?2",
    [ST_NET_BY_NAME_ANY] = "SELECT " NET_COLS " FROM networks WHERE name = ?2 ORDER BY id LIMIT 1",
    [ST_NET_LIST] = "SELECT " NET_COLS " FROM networks ORDER BY name, id",
    [ST_NET_LIST_SUB] = "SELECT " NET_COLS " FROM networks WHERE subscriber_id = ?1 "
                        "ORDER BY name, id",
    [ST_NET_FREE_VNI] = "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM networks WHERE vni = 1) "
                        "UNION ALL SELECT vni + 1 FROM networks a WHERE vni < 16777215 AND "
                        "NOT EXISTS (SELECT 1 FROM networks b WHERE b.vni = a.vni + 1) "
                        "ORDER BY 1 LIMIT 1",
    [ST_NET_INSERT] = "INSERT INTO networks (subscriber_id, name, vni, subnet4, subnet6, mtu, "
                      "revision, mode) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_NET_SET_REV] = "UPDATE networks SET revision = ?2 WHERE id = ?1",
    [ST_NET_DELETE] = "DELETE FROM networks WHERE id = ?1",
    [ST_NODE_BY_ID] = "SELECT " NODE_COLS " FROM nodes WHERE id = ?1",
    [ST_NODE_BY_NAME] = "SELECT " NODE_COLS " FROM nodes WHERE network_id = ?1 AND name = ?2",
    [ST_NODE_BY_MAC] = "SELECT " NODE_COLS " FROM nodes WHERE network_id = ?1 AND mac = ?2",
    [ST_NODE_BY_IP4] = "SELECT " NODE_COLS " FROM nodes WHERE network_id = ?1 AND ip4 = ?2",
    [ST_NODE_BY_IP6] = "SELECT " NODE_COLS " FROM nodes WHERE network_id = ?1 AND ip6 = ?2",
    [ST_NODE_BY_PUBKEY] = "SELECT " NODE_COLS " FROM nodes WHERE network_id = ?1 AND "
                          "pubkey = ?2 AND id > ?3 ORDER BY id LIMIT 1",
    [ST_NODE_BY_TOKEN] = "SELECT " NODE_COLS ", join_token_expires FROM nodes "
                         "WHERE join_token_hash = ?1",
    [ST_NODE_LIST] = "SELECT " NODE_COLS " FROM nodes WHERE network_id = ?1 ORDER BY name",
    [ST_NODE_IP4_FROM] = "SELECT ip4 FROM nodes WHERE network_id = ?1 AND ip4 >= ?2 ORDER BY ip4",
    [ST_NODE_IP6_FROM] = "SELECT ip6 FROM nodes WHERE network_id = ?1 AND ip6 >= ?2 ORDER BY ip6",
    /* node_insert and node_update share the parameter numbers (bind_node()). */
    [ST_NODE_INSERT] = "INSERT INTO nodes (network_id, name, mac, ip4, ip6, pubkey, phys_ip, "
                       "phys_port, observed_ip, observed_port, state, revision) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_NODE_UPDATE] = "UPDATE nodes SET pubkey = ?6, phys_ip = ?7, phys_port = ?8, "
                       "observed_ip = ?9, observed_port = ?10, state = ?11, revision = ?12 "
                       "WHERE id = ?13",
    [ST_NODE_SET_TOKEN] = "UPDATE nodes SET join_token_hash = ?2, join_token_expires = ?3 "
                          "WHERE id = ?1",
    [ST_NODE_DELETE] = "DELETE FROM nodes WHERE id = ?1",
    [ST_CHG_INSERT] = "INSERT INTO changes (network_id, revision, op, payload) "
                      "VALUES (?1, ?2, ?3, ?4)",
    [ST_CHG_PRUNE] = "DELETE FROM changes WHERE network_id = ?1 AND revision <= ?2",
    [ST_CHG_OLDEST] = "SELECT min(revision) FROM changes WHERE network_id = ?1",
    [ST_CHG_SINCE] = "SELECT revision, op, payload FROM changes WHERE network_id = ?1 AND "
                     "revision > ?2 ORDER BY revision",
    [ST_CHG_LAST] = "SELECT coalesce(max(id), 0) FROM changes",
    [ST_CHG_NETS] = "SELECT DISTINCT network_id FROM changes WHERE id > ?1 ORDER BY network_id",
};

struct sq {
    sqlite3 *db;
    char *path;
    uint32_t busy_ms;
    sqlite3_stmt *st[ST_COUNT];
    /* IP assignment hint (see the top of the file): valid while data_version is dv. */
    int64_t dv;
    uint64_t hint_net; /* 0: none */
    bool hint_valid[2];
    struct vnet_ip hint_next[2]; /* all host addresses below are in use */
    /* set by node_free_ip(), applied after the transaction's commit */
    uint64_t pend_net;
    bool pend_valid[2];
    struct vnet_ip pend_next[2];
};

/* ---- errors ---- */

/* Map an SQLite result to a VNET_E* code and describe it in @err. */
static int fail(struct sq *s, int rc, char *err, size_t errlen, const char *what)
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

static int corrupt(struct sq *s, char *err, size_t errlen, const char *what)
{
    vnet_store_seterr(err, errlen, "%s: database %s holds a malformed value", what, s->path);
    return VNET_ECORRUPT;
}

/* ---- binding and reading ---- */

static sqlite3_stmt *use(struct sq *s, enum st id)
{
    sqlite3_stmt *st = s->st[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static unsigned ip_len(uint8_t family)
{
    return family == VNET_AF_INET ? 4 : 16;
}

static void bind_blob(sqlite3_stmt *st, int idx, const void *p, size_t len)
{
    if (p)
        sqlite3_bind_blob(st, idx, p, (int)len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, idx);
}

static void bind_ip(sqlite3_stmt *st, int idx, const struct vnet_ip *ip)
{
    bind_blob(st, idx, ip->family ? ip->addr : NULL, ip_len(ip->family));
}

static void bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

static void bind_u64(sqlite3_stmt *st, int idx, uint64_t v)
{
    sqlite3_bind_int64(st, idx, v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v);
}

static void bind_prefix(sqlite3_stmt *st, int idx, const struct vnet_prefix *p)
{
    char buf[VNET_PREFIX_STRLEN];
    if (p->ip.family && vnet_prefix_format(p, buf, sizeof(buf)) > 0)
        bind_text(st, idx, buf);
    else
        sqlite3_bind_null(st, idx);
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
    memset(out, 0, sizeof(*out));
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

/* Row readers: false when the row holds a value the library never writes. */
typedef bool (*row_fn)(sqlite3_stmt *st, void *out);

/* A row of NET_COLS. */
static bool row_network(sqlite3_stmt *st, void *out)
{
    struct vnet_network *n = out;
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

/* A row of NODE_COLS. */
static bool row_node(sqlite3_stmt *st, void *out)
{
    struct vnet_node *n = out;
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

/* A row of SUB_COLS. */
static bool row_subscriber(sqlite3_stmt *st, void *out)
{
    struct vnet_subscriber *sub = out;
    memset(sub, 0, sizeof(*sub));
    sub->id = col_u64(st, 0);
    sub->admin = sub->id == VNET_SUBSCRIBER_ADMIN;
    sub->has_token = sqlite3_column_int(st, 2) != 0;
    return col_name(st, 1, sub->name);
}

/* Step @st for at most one row, read by @row into @out: 0, VNET_ENOENT or an error. */
static int get_row(struct sq *s, sqlite3_stmt *st, row_fn row, void *out, char *err, size_t errlen,
                   const char *what)
{
    int rc = sqlite3_step(st), code;
    if (rc == SQLITE_ROW)
        code = row(st, out) ? 0 : corrupt(s, err, errlen, what);
    else
        code = rc == SQLITE_DONE ? VNET_ENOENT : fail(s, rc, err, errlen, what);
    sqlite3_reset(st);
    return code;
}

/* Step a statement that returns no row. VNET_ENOENT when it is an UPDATE that changed none. */
static int run(struct sq *s, sqlite3_stmt *st, char *err, size_t errlen, const char *what)
{
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE ? 0 : fail(s, rc, err, errlen, what);
    sqlite3_reset(st);
    return code;
}

static int run_update(struct sq *s, sqlite3_stmt *st, char *err, size_t errlen, const char *what)
{
    int rc = run(s, st, err, errlen, what);
    return rc ? rc : sqlite3_changes(s->db) > 0 ? 0 : VNET_ENOENT;
}

/* Walks: @emit reads the current row and calls the caller's function. */
struct walk {
    union {
        vnet_store_subscriber_fn sub;
        vnet_store_network_fn net;
        vnet_store_node_fn node;
        vnet_store_id_fn id;
        vnet_store_change_row_fn change;
    } fn;
    void *arg;
    bool bad; /* a row could not be read */
};

typedef int (*emit_fn)(sqlite3_stmt *st, struct walk *w);

static int walk(struct sq *s, sqlite3_stmt *st, emit_fn emit, struct walk *w, char *err,
                size_t errlen, const char *what)
{
    int rc, code = 0;
    while (!code && (rc = sqlite3_step(st)) == SQLITE_ROW)
        code = emit(st, w);
    if (w->bad)
        code = corrupt(s, err, errlen, what);
    else if (!code && rc != SQLITE_DONE)
        code = fail(s, rc, err, errlen, what);
    sqlite3_reset(st);
    return code;
}

static int emit_sub(sqlite3_stmt *st, struct walk *w)
{
    struct vnet_subscriber x;
    w->bad = !row_subscriber(st, &x);
    return w->bad ? -1 : w->fn.sub(&x, w->arg);
}

static int emit_net(sqlite3_stmt *st, struct walk *w)
{
    struct vnet_network x;
    w->bad = !row_network(st, &x);
    return w->bad ? -1 : w->fn.net(&x, w->arg);
}

static int emit_node(sqlite3_stmt *st, struct walk *w)
{
    struct vnet_node x;
    w->bad = !row_node(st, &x);
    return w->bad ? -1 : w->fn.node(&x, w->arg);
}

static int emit_id(sqlite3_stmt *st, struct walk *w)
{
    return w->fn.id(col_u64(st, 0), w->arg);
}

static int emit_change(sqlite3_stmt *st, struct walk *w)
{
    struct vnet_store_change_row r;
    r.revision = col_u64(st, 0);
    r.op = sqlite3_column_int(st, 1);
    r.payload = sqlite3_column_blob(st, 2);
    r.payload_len = (size_t)sqlite3_column_bytes(st, 2);
    return w->fn.change(&r, w->arg);
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

/* ---- transactions ---- */

static int sq_begin(void *state, bool write, char *err, size_t errlen)
{
    struct sq *s = state;
    int rc =
        run(s, use(s, write ? ST_BEGIN : ST_BEGIN_READ), err, errlen, "starting a transaction");
    if (rc || !write)
        return rc;
    s->pend_net = 0;
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

static int sq_commit(void *state, char *err, size_t errlen)
{
    struct sq *s = state;
    int rc = run(s, use(s, ST_COMMIT), err, errlen, "committing");
    if (rc || !s->pend_net)
        return rc;
    if (s->hint_net != s->pend_net) {
        s->hint_net = s->pend_net;
        s->hint_valid[0] = s->hint_valid[1] = false;
    }
    for (int i = 0; i < 2; i++) {
        if (s->pend_valid[i]) {
            s->hint_valid[i] = true;
            s->hint_next[i] = s->pend_next[i];
        }
    }
    s->pend_net = 0;
    return 0;
}

static void sq_rollback(void *state)
{
    struct sq *s = state;
    s->pend_net = 0;
    if (!sqlite3_get_autocommit(s->db)) /* some errors have rolled back already */
        run(s, use(s, ST_ROLLBACK), NULL, 0, "rolling back");
}

/* ---- subscribers ---- */

static int sub_get(struct sq *s, sqlite3_stmt *st, struct vnet_subscriber *out, char *err,
                   size_t errlen)
{
    return get_row(s, st, row_subscriber, out, err, errlen, "reading a subscriber");
}

static int sq_subscriber_get(void *state, uint64_t id, struct vnet_subscriber *out, char *err,
                             size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_SUB_BY_ID);
    bind_u64(st, 1, id);
    return sub_get(state, st, out, err, errlen);
}

static int sq_subscriber_by_name(void *state, const char *name, struct vnet_subscriber *out,
                                 char *err, size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_SUB_BY_NAME);
    bind_text(st, 1, name);
    return sub_get(state, st, out, err, errlen);
}

static int sq_subscriber_by_token(void *state, const uint8_t *hash, struct vnet_subscriber *out,
                                  char *err, size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_SUB_BY_TOKEN);
    bind_blob(st, 1, hash, VNET_TOKEN_HASH_LEN);
    return sub_get(state, st, out, err, errlen);
}

static int sq_subscriber_list(void *state, vnet_store_subscriber_fn fn, void *arg, char *err,
                              size_t errlen)
{
    struct walk w = {.fn.sub = fn, .arg = arg};
    return walk(state, use(state, ST_SUB_LIST), emit_sub, &w, err, errlen, "listing subscribers");
}

static int sq_subscriber_insert(void *state, const char *name, const uint8_t *hash, uint64_t *id,
                                char *err, size_t errlen)
{
    struct sq *s = state;
    sqlite3_stmt *st = use(s, ST_SUB_INSERT);
    bind_text(st, 1, name);
    bind_blob(st, 2, hash, VNET_TOKEN_HASH_LEN);
    int rc = run(s, st, err, errlen, "creating the subscriber");
    if (!rc)
        *id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int sq_subscriber_set_token(void *state, uint64_t id, const uint8_t *hash, char *err,
                                   size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_SUB_SET_TOKEN);
    bind_u64(st, 1, id);
    bind_blob(st, 2, hash, VNET_TOKEN_HASH_LEN);
    return run_update(state, st, err, errlen, "setting the subscriber's token");
}

/* Statements that take one id and change rows. */
static int run_id(struct sq *s, enum st id_st, uint64_t id, char *err, size_t errlen,
                  const char *what)
{
    sqlite3_stmt *st = use(s, id_st);
    bind_u64(st, 1, id);
    return run_update(s, st, err, errlen, what);
}

static int sq_subscriber_delete(void *state, uint64_t id, char *err, size_t errlen)
{
    return run_id(state, ST_SUB_DELETE, id, err, errlen, "deleting the subscriber");
}

/* ---- networks ---- */

static int net_get(struct sq *s, sqlite3_stmt *st, struct vnet_network *out, char *err,
                   size_t errlen)
{
    return get_row(s, st, row_network, out, err, errlen, "reading a network");
}

static int sq_network_get(void *state, uint64_t id, struct vnet_network *out, char *err,
                          size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_NET_BY_ID);
    bind_u64(st, 1, id);
    return net_get(state, st, out, err, errlen);
}

static int sq_network_by_vni(void *state, uint32_t vni, struct vnet_network *out, char *err,
                             size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_NET_BY_VNI);
    sqlite3_bind_int64(st, 1, vni);
    return net_get(state, st, out, err, errlen);
}

static int sq_network_by_name(void *state, uint64_t subscriber_id, const char *name,
                              struct vnet_network *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = use(state, subscriber_id ? ST_NET_BY_NAME : ST_NET_BY_NAME_ANY);
    if (subscriber_id)
        bind_u64(st, 1, subscriber_id);
    bind_text(st, 2, name);
    return net_get(state, st, out, err, errlen);
}

static int sq_network_list(void *state, uint64_t subscriber_id, vnet_store_network_fn fn, void *arg,
                           char *err, size_t errlen)
{
    struct walk w = {.fn.net = fn, .arg = arg};
    sqlite3_stmt *st = use(state, subscriber_id ? ST_NET_LIST_SUB : ST_NET_LIST);
    if (subscriber_id)
        bind_u64(st, 1, subscriber_id);
    return walk(state, st, emit_net, &w, err, errlen, "listing networks");
}

static int sq_network_free_vni(void *state, uint32_t *vni, char *err, size_t errlen)
{
    struct sq *s = state;
    sqlite3_stmt *st = use(s, ST_NET_FREE_VNI);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *vni = (uint32_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW    ? 0
           : rc == SQLITE_DONE ? VNET_ENOSPC
                               : fail(s, rc, err, errlen, "choosing a VNI");
}

static int sq_network_insert(void *state, struct vnet_network *n, char *err, size_t errlen)
{
    struct sq *s = state;
    sqlite3_stmt *st = use(s, ST_NET_INSERT);
    bind_u64(st, 1, n->subscriber_id);
    bind_text(st, 2, n->name);
    sqlite3_bind_int64(st, 3, n->vni);
    bind_prefix(st, 4, &n->subnet4);
    bind_prefix(st, 5, &n->subnet6);
    sqlite3_bind_int64(st, 6, n->mtu);
    bind_u64(st, 7, n->revision);
    sqlite3_bind_int(st, 8, n->mode);
    int rc = run(s, st, err, errlen, "creating the network");
    if (!rc)
        n->id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int sq_network_set_revision(void *state, uint64_t id, uint64_t revision, char *err,
                                   size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_NET_SET_REV);
    bind_u64(st, 1, id);
    bind_u64(st, 2, revision);
    return run_update(state, st, err, errlen, "updating the network revision");
}

static int sq_network_delete(void *state, uint64_t id, char *err, size_t errlen)
{
    struct sq *s = state;
    s->hint_net = 0;
    return run_id(s, ST_NET_DELETE, id, err, errlen, "deleting the network");
}

/* ---- nodes ---- */

static int node_get(struct sq *s, sqlite3_stmt *st, struct vnet_node *out, char *err, size_t errlen)
{
    return get_row(s, st, row_node, out, err, errlen, "reading a node");
}

/* The node lookups by network and one key column. */
static int node_by(struct sq *s, enum st id, uint64_t network_id, const void *key, size_t len,
                   struct vnet_node *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = use(s, id);
    bind_u64(st, 1, network_id);
    if (id == ST_NODE_BY_NAME)
        bind_text(st, 2, key);
    else
        bind_blob(st, 2, key, len);
    return node_get(s, st, out, err, errlen);
}

static int sq_node_get(void *state, uint64_t id, struct vnet_node *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_NODE_BY_ID);
    bind_u64(st, 1, id);
    return node_get(state, st, out, err, errlen);
}

static int sq_node_by_name(void *state, uint64_t network_id, const char *name,
                           struct vnet_node *out, char *err, size_t errlen)
{
    return node_by(state, ST_NODE_BY_NAME, network_id, name, 0, out, err, errlen);
}

static int sq_node_by_mac(void *state, uint64_t network_id, const struct vnet_mac *mac,
                          struct vnet_node *out, char *err, size_t errlen)
{
    return node_by(state, ST_NODE_BY_MAC, network_id, mac->b, 6, out, err, errlen);
}

static int sq_node_by_ip(void *state, uint64_t network_id, const struct vnet_ip *ip,
                         struct vnet_node *out, char *err, size_t errlen)
{
    return node_by(state, ip->family == VNET_AF_INET ? ST_NODE_BY_IP4 : ST_NODE_BY_IP6, network_id,
                   ip->addr, ip_len(ip->family), out, err, errlen);
}

static int sq_node_by_pubkey(void *state, uint64_t network_id, const uint8_t *pub,
                             uint64_t after_id, struct vnet_node *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_NODE_BY_PUBKEY);
    bind_u64(st, 1, network_id);
    bind_blob(st, 2, pub, VNET_PUBKEY_LEN);
    bind_u64(st, 3, after_id);
    return node_get(state, st, out, err, errlen);
}

struct node_token {
    struct vnet_node node;
    uint64_t expires;
};

static bool row_node_token(sqlite3_stmt *st, void *out)
{
    struct node_token *t = out;
    t->expires = col_u64(st, 13);
    return row_node(st, &t->node);
}

static int sq_node_by_join_token(void *state, const uint8_t *hash, struct vnet_node *out,
                                 uint64_t *expires, char *err, size_t errlen)
{
    struct node_token t;
    sqlite3_stmt *st = use(state, ST_NODE_BY_TOKEN);
    bind_blob(st, 1, hash, VNET_TOKEN_HASH_LEN);
    int rc = get_row(state, st, row_node_token, &t, err, errlen, "reading a node");
    if (!rc) {
        *out = t.node;
        *expires = t.expires;
    }
    return rc;
}

static int sq_node_list(void *state, uint64_t network_id, vnet_store_node_fn fn, void *arg,
                        char *err, size_t errlen)
{
    struct walk w = {.fn.node = fn, .arg = arg};
    sqlite3_stmt *st = use(state, ST_NODE_LIST);
    bind_u64(st, 1, network_id);
    return walk(state, st, emit_node, &w, err, errlen, "listing nodes");
}

/* Walk the used addresses upwards from @first (or the hint, when it is higher) to the first
 * gap. */
static int sq_node_free_ip(void *state, uint64_t network_id, const struct vnet_ip *first,
                           const struct vnet_ip *last, struct vnet_ip *out, char *err,
                           size_t errlen)
{
    struct sq *s = state;
    int slot = first->family == VNET_AF_INET6;
    struct vnet_ip cand = *first;
    if (s->hint_net == network_id && s->hint_valid[slot] &&
        vnet_store_ip_cmp(&s->hint_next[slot], &cand) > 0)
        cand = s->hint_next[slot];
    unsigned len = ip_len(cand.family);
    bool full = vnet_store_ip_cmp(&cand, last) > 0;
    sqlite3_stmt *st = use(s, slot ? ST_NODE_IP6_FROM : ST_NODE_IP4_FROM);
    bind_u64(st, 1, network_id);
    bind_ip(st, 2, &cand);
    int rc = SQLITE_DONE, code = 0;
    while (!full && !code && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(st, 0);
        if (!b || (unsigned)sqlite3_column_bytes(st, 0) != len) {
            code = corrupt(s, err, errlen, "assigning an IP");
            break;
        }
        int c = memcmp(b, cand.addr, len);
        if (c > 0)
            break; /* a gap: cand is free */
        if (c == 0 && (vnet_store_ip_cmp(&cand, last) >= 0 || !vnet_store_ip_inc(&cand)))
            full = true;
    }
    sqlite3_reset(st);
    if (!code && !full && rc != SQLITE_ROW && rc != SQLITE_DONE)
        code = fail(s, rc, err, errlen, "assigning an IP");
    if (code || full)
        return code ? code : VNET_ENOSPC;
    *out = cand;
    if (!s->pend_net || s->pend_net == network_id) {
        if (s->pend_net != network_id)
            s->pend_valid[0] = s->pend_valid[1] = false;
        s->pend_net = network_id;
        s->pend_next[slot] = cand;
        s->pend_valid[slot] = vnet_store_ip_inc(&s->pend_next[slot]);
    }
    return 0;
}

/* Parameters 1..12 of ST_NODE_INSERT and ST_NODE_UPDATE. */
static void bind_node(sqlite3_stmt *st, const struct vnet_node *n)
{
    bind_u64(st, 1, n->network_id);
    bind_text(st, 2, n->name);
    bind_blob(st, 3, n->mac.b, 6);
    bind_ip(st, 4, &n->ips[0]);
    bind_ip(st, 5, &n->ips[1]);
    bind_blob(st, 6, n->has_pubkey ? n->pubkey : NULL, VNET_PUBKEY_LEN);
    bind_ip(st, 7, &n->phys.ip);
    sqlite3_bind_int(st, 8, n->phys.port);
    bind_ip(st, 9, &n->observed.ip);
    sqlite3_bind_int(st, 10, n->observed.port);
    sqlite3_bind_int(st, 11, n->state);
    bind_u64(st, 12, n->revision);
}

static int sq_node_insert(void *state, struct vnet_node *n, char *err, size_t errlen)
{
    struct sq *s = state;
    sqlite3_stmt *st = use(s, ST_NODE_INSERT);
    bind_node(st, n);
    int rc = run(s, st, err, errlen, "adding the node");
    if (!rc)
        n->id = (uint64_t)sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int sq_node_update(void *state, const struct vnet_node *n, char *err, size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_NODE_UPDATE);
    bind_node(st, n);
    bind_u64(st, 13, n->id);
    return run_update(state, st, err, errlen, "updating the node");
}

static int sq_node_set_join_token(void *state, uint64_t id, const uint8_t *hash, uint64_t expires,
                                  char *err, size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_NODE_SET_TOKEN);
    bind_u64(st, 1, id);
    bind_blob(st, 2, hash, VNET_TOKEN_HASH_LEN);
    bind_u64(st, 3, expires);
    return run_update(state, st, err, errlen, "setting the node's join token");
}

static int sq_node_delete(void *state, uint64_t id, char *err, size_t errlen)
{
    struct sq *s = state;
    s->hint_net = 0; /* its addresses are free again */
    return run_id(s, ST_NODE_DELETE, id, err, errlen, "removing the node");
}

/* ---- change log ---- */

static int sq_change_append(void *state, uint64_t network_id, uint64_t revision, int op,
                            const void *payload, size_t len, char *err, size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_CHG_INSERT);
    bind_u64(st, 1, network_id);
    bind_u64(st, 2, revision);
    sqlite3_bind_int(st, 3, op);
    bind_blob(st, 4, payload, len);
    return run(state, st, err, errlen, "appending to the change log");
}

static int sq_change_prune(void *state, uint64_t network_id, uint64_t upto, char *err,
                           size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_CHG_PRUNE);
    bind_u64(st, 1, network_id);
    bind_u64(st, 2, upto);
    return run(state, st, err, errlen, "pruning the change log");
}

/* One integer of a one-row query: VNET_ENOENT when it is NULL. */
static int get_u64(struct sq *s, sqlite3_stmt *st, uint64_t *out, char *err, size_t errlen)
{
    int rc = sqlite3_step(st), code = 0;
    if (rc != SQLITE_ROW)
        code = fail(s, rc, err, errlen, "reading the change log");
    else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        code = VNET_ENOENT;
    else
        *out = col_u64(st, 0);
    sqlite3_reset(st);
    return code;
}

static int sq_change_oldest(void *state, uint64_t network_id, uint64_t *revision, char *err,
                            size_t errlen)
{
    sqlite3_stmt *st = use(state, ST_CHG_OLDEST);
    bind_u64(st, 1, network_id);
    return get_u64(state, st, revision, err, errlen);
}

static int sq_change_list(void *state, uint64_t network_id, uint64_t since,
                          vnet_store_change_row_fn fn, void *arg, char *err, size_t errlen)
{
    struct walk w = {.fn.change = fn, .arg = arg};
    sqlite3_stmt *st = use(state, ST_CHG_SINCE);
    bind_u64(st, 1, network_id);
    bind_u64(st, 2, since);
    return walk(state, st, emit_change, &w, err, errlen, "reading the change log");
}

static int sq_change_last(void *state, uint64_t *id, char *err, size_t errlen)
{
    return get_u64(state, use(state, ST_CHG_LAST), id, err, errlen);
}

static int sq_change_networks(void *state, uint64_t since, vnet_store_id_fn fn, void *arg,
                              char *err, size_t errlen)
{
    struct walk w = {.fn.id = fn, .arg = arg};
    sqlite3_stmt *st = use(state, ST_CHG_NETS);
    bind_u64(st, 1, since);
    return walk(state, st, emit_id, &w, err, errlen, "reading the change log");
}

const struct vnet_store_ops vnet_store_sqlite_ops = {
    .version = VNET_STORE_OPS_VERSION,
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .subscriber_get = sq_subscriber_get,
    .subscriber_by_name = sq_subscriber_by_name,
    .subscriber_by_token = sq_subscriber_by_token,
    .subscriber_list = sq_subscriber_list,
    .subscriber_insert = sq_subscriber_insert,
    .subscriber_set_token = sq_subscriber_set_token,
    .subscriber_delete = sq_subscriber_delete,
    .network_get = sq_network_get,
    .network_by_vni = sq_network_by_vni,
    .network_by_name = sq_network_by_name,
    .network_list = sq_network_list,
    .network_free_vni = sq_network_free_vni,
    .network_insert = sq_network_insert,
    .network_set_revision = sq_network_set_revision,
    .network_delete = sq_network_delete,
    .node_get = sq_node_get,
    .node_by_name = sq_node_by_name,
    .node_by_mac = sq_node_by_mac,
    .node_by_ip = sq_node_by_ip,
    .node_by_pubkey = sq_node_by_pubkey,
    .node_by_join_token = sq_node_by_join_token,
    .node_list = sq_node_list,
    .node_free_ip = sq_node_free_ip,
    .node_insert = sq_node_insert,
    .node_update = sq_node_update,
    .node_set_join_token = sq_node_set_join_token,
    .node_delete = sq_node_delete,
    .change_append = sq_change_append,
    .change_prune = sq_change_prune,
    .change_oldest = sq_change_oldest,
    .change_list = sq_change_list,
    .change_last = sq_change_last,
    .change_networks = sq_change_networks,
};
