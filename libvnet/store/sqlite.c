/* The SQLite store engine: SQL and row marshalling for the primitives of sys/store.h.
 *
 * One database file in WAL mode, so readers in other processes (a controller polling
 * vnet_store_last_change(), vnetctl listing) never wait for the writer and the writer never
 * waits for them. synchronous=NORMAL: a commit is in the WAL before the call returns, so it
 * survives a crash of the process; a power loss may lose the last commits but never leaves
 * a half-written one (docs/store.md).
 *
 * A write transaction is BEGIN IMMEDIATE: the write lock is taken first, so a busy database
 * fails at the start (after the busy timeout) rather than on the first UPDATE, and every check
 * the dispatcher makes sees the data it then writes to.
 *
 * Opening the file, checking what it holds and migrating its schema is sqlite_file.c.
 *
 * Statements are prepared once at open (SQLITE_PREPARE_PERSISTENT) and reset before each use.
 * node_free_ip() takes the lowest free address; to avoid rescanning a network's addresses for
 * every added node, the engine remembers per network and family an address below which all
 * are in use. The hint is only advanced after a commit, dropped when this handle deletes a
 * node or network, and dropped when PRAGMA data_version shows that another connection
 * committed.
 */
#include "sqlite_int.h"
#include "vnet/error.h"
#include "vnet/sys/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- statements ---- */

#define NET_COLS "id, subscriber_id, name, vni, subnet4, subnet6, mtu, revision, mode"
#define NODE_COLS                                                                                  \
    "id, network_id, name, pubkey, mac, ip4, ip6, phys_ip, phys_port, observed_ip, "               \
    "observed_port, state, revision"
#define SUB_COLS "id, name, token_hash IS NOT NULL"

/* clang-format off */
enum st {
    ST_BEGIN, ST_BEGIN_READ, ST_COMMIT, ST_ROLLBACK, ST_DATA_VERSION,
    ST_SUB_BY_ID, ST_SUB_BY_NAME, ST_SUB_BY_TOKEN, ST_SUB_LIST, ST_SUB_INSERT, ST_SUB_SET_TOKEN,
    ST_SUB_DELETE,
    ST_NET_BY_ID, ST_NET_BY_VNI, ST_NET_BY_NAME, ST_NET_LIST,
    ST_NET_FREE_VNI, ST_NET_INSERT, ST_NET_SET_REV, ST_NET_DELETE,
    ST_NODE_BY_ID, ST_NODE_BY_NAME, ST_NODE_BY_MAC, ST_NODE_BY_IP4, ST_NODE_BY_IP6,
    ST_NODE_BY_PUBKEY, ST_NODE_BY_TOKEN, ST_NODE_LIST, ST_NODE_IP4_FROM, ST_NODE_IP6_FROM,
    ST_NODE_INSERT, ST_NODE_UPDATE, ST_NODE_SET_TOKEN, ST_NODE_DELETE,
    ST_CHG_INSERT, ST_CHG_PRUNE, ST_CHG_OLDEST, ST_CHG_SINCE, ST_CHG_LAST, ST_CHG_NETS,
    ST_COUNT
};
/* clang-format on */

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
    /* ?1: the owner, 0 for any */
    [ST_NET_BY_NAME] = "SELECT " NET_COLS " FROM networks WHERE name = ?2 AND "
                       "(?1 = 0 OR subscriber_id = ?1) ORDER BY id LIMIT 1",
    [ST_NET_LIST] = "SELECT " NET_COLS " FROM networks WHERE ?1 = 0 OR subscriber_id = ?1 "
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
    struct vnet__sqlite c;
    char *path;
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

static int fail(struct sq *s, int rc, char *err, size_t errlen, const char *what)
{
    return vnet__sqlite_fail(&s->c, rc, err, errlen, what);
}

static int corrupt(struct sq *s, char *err, size_t errlen, const char *what)
{
    vnet_store_seterr(err, errlen, "%s: database %s holds a malformed value", what, s->c.path);
    return VNET_ECORRUPT;
}

/* ---- binding ---- */

static unsigned ip_len(uint8_t family)
{
    return family == VNET_AF_INET ? 4 : 16;
}

/* One statement parameter: an integer, a text or a blob (a NULL pointer binds SQL NULL). */
struct arg {
    char type; /* 'i', 't', 'b' */
    union {
        uint64_t u;
        const char *t;
        const void *p;
    };
    size_t len;
};

#define U(v)    ((struct arg){'i', {.u = (v)}, 0})
#define T(v)    ((struct arg){'t', {.t = (v)}, 0})
#define B(v, n) ((struct arg){'b', {.p = (v)}, (n)})
#define IP(ip)  B((ip)->family ? (ip)->addr : NULL, ip_len((ip)->family))
#define HASH(h) B((h), VNET_TOKEN_HASH_LEN)
#define ARGS(...)                                                                                  \
    (const struct arg[])                                                                           \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
#define NARGS(...) (sizeof(ARGS(__VA_ARGS__)) / sizeof(struct arg))

/* Statement @id, reset, with parameters 1..@n bound from @a. */
static sqlite3_stmt *prep_args(struct sq *s, enum st id, const struct arg *a, size_t n)
{
    sqlite3_stmt *st = s->st[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    for (int i = 1; i <= (int)n; i++, a++) {
        if (a->type == 'i')
            sqlite3_bind_int64(st, i, a->u > INT64_MAX ? INT64_MAX : (sqlite3_int64)a->u);
        else if (a->type == 't' && a->t)
            sqlite3_bind_text(st, i, a->t, -1, SQLITE_TRANSIENT);
        else if (a->type == 'b' && a->p)
            sqlite3_bind_blob(st, i, a->p, (int)a->len, SQLITE_TRANSIENT);
    }
    return st;
}

#define PREP(s, id, ...) prep_args((s), (id), ARGS(__VA_ARGS__), NARGS(__VA_ARGS__))
#define PREP0(s, id)     prep_args((s), (id), NULL, 0)

/* ---- reading ---- */

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
    struct vnet_node_info *n = out;
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

/* A row of NODE_COLS and the join token's expiry. */
struct node_token {
    struct vnet_node_info node;
    uint64_t expires;
};

static bool row_node_token(sqlite3_stmt *st, void *out)
{
    struct node_token *t = out;
    t->expires = col_u64(st, 13);
    return row_node(st, &t->node);
}

/* One integer column; NULL is no row. */
static bool row_u64(sqlite3_stmt *st, void *out)
{
    *(uint64_t *)out = col_u64(st, 0);
    return true;
}

/* ---- stepping ---- */

/* Step @st for at most one row, read by @row into @out: 0, VNET_ENOENT (no row, or a NULL
 * first column) or an error. */
static int get_row(struct sq *s, sqlite3_stmt *st, row_fn row, void *out, char *err, size_t errlen,
                   const char *what)
{
    int rc = sqlite3_step(st), code;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_NULL)
        code = VNET_ENOENT;
    else if (rc == SQLITE_ROW)
        code = row(st, out) ? 0 : corrupt(s, err, errlen, what);
    else
        code = rc == SQLITE_DONE ? VNET_ENOENT : fail(s, rc, err, errlen, what);
    sqlite3_reset(st);
    return code;
}

/* Step a statement that returns no row; with @must_change, VNET_ENOENT when it changed none. */
static int run(struct sq *s, sqlite3_stmt *st, bool must_change, char *err, size_t errlen,
               const char *what)
{
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE ? 0 : fail(s, rc, err, errlen, what);
    sqlite3_reset(st);
    return code || !must_change || sqlite3_changes(s->c.db) > 0 ? code : VNET_ENOENT;
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
    struct vnet_node_info x;
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

static void sq_close(void *state)
{
    struct sq *s = state;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close_v2(s->c.db);
    free(s->path);
    free(s);
}

static int sq_open(const char *path, const struct vnet_store_opts *o, void **state, char *err,
                   size_t errlen)
{
    struct sq *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return VNET_ENOMEM;
    }
    s->c.path = s->path;
    s->dv = -1;
    int code = vnet__sqlite_file_open(&s->c, path, o, err, errlen);
    for (int i = 0; !code && i < ST_COUNT; i++) {
        int rc =
            sqlite3_prepare_v3(s->c.db, st_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            code = fail(s, rc, err, errlen, "preparing statements");
            if (code == VNET_EIO) { /* a table or column missing: not our schema */
                vnet_store_seterr(err, errlen,
                                  "database %s does not have the expected schema (version %d): "
                                  "%s",
                                  path, VNET_STORE_SCHEMA_VERSION, sqlite3_errmsg(s->c.db));
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
    int rc = run(s, PREP0(s, write ? ST_BEGIN : ST_BEGIN_READ), false, err, errlen,
                 "starting a transaction");
    if (rc || !write)
        return rc;
    s->pend_net = 0;
    int64_t dv = -1;
    sqlite3_stmt *st = PREP0(s, ST_DATA_VERSION);
    if (sqlite3_step(st) == SQLITE_ROW)
        dv = sqlite3_column_int64(st, 0);
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
    int rc = run(s, PREP0(s, ST_COMMIT), false, err, errlen, "committing");
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
    if (!sqlite3_get_autocommit(s->c.db)) /* some errors have rolled back already */
        run(s, PREP0(s, ST_ROLLBACK), false, NULL, 0, "rolling back");
}

/* ---- subscribers ---- */

#define GET_SUB(s, st, out)                                                                        \
    get_row((s), (st), row_subscriber, (out), err, errlen, "reading a subscriber")

static int sq_subscriber_get(void *s, uint64_t id, struct vnet_subscriber *out, char *err,
                             size_t errlen)
{
    return GET_SUB(s, PREP(s, ST_SUB_BY_ID, U(id)), out);
}

static int sq_subscriber_by_name(void *s, const char *name, struct vnet_subscriber *out, char *err,
                                 size_t errlen)
{
    return GET_SUB(s, PREP(s, ST_SUB_BY_NAME, T(name)), out);
}

static int sq_subscriber_by_token(void *s, const uint8_t *hash, struct vnet_subscriber *out,
                                  char *err, size_t errlen)
{
    return GET_SUB(s, PREP(s, ST_SUB_BY_TOKEN, HASH(hash)), out);
}

static int sq_subscriber_list(void *s, vnet_store_subscriber_fn fn, void *arg, char *err,
                              size_t errlen)
{
    struct walk w = {.fn.sub = fn, .arg = arg};
    return walk(s, PREP0(s, ST_SUB_LIST), emit_sub, &w, err, errlen, "listing subscribers");
}

/* Run an INSERT and give the new row's id. */
static int insert(struct sq *s, sqlite3_stmt *st, uint64_t *id, char *err, size_t errlen,
                  const char *what)
{
    int rc = run(s, st, false, err, errlen, what);
    if (!rc)
        *id = (uint64_t)sqlite3_last_insert_rowid(s->c.db);
    return rc;
}

static int sq_subscriber_insert(void *s, const char *name, const uint8_t *hash, uint64_t *id,
                                char *err, size_t errlen)
{
    return insert(s, PREP(s, ST_SUB_INSERT, T(name), HASH(hash)), id, err, errlen,
                  "creating the subscriber");
}

static int sq_subscriber_set_token(void *s, uint64_t id, const uint8_t *hash, char *err,
                                   size_t errlen)
{
    return run(s, PREP(s, ST_SUB_SET_TOKEN, U(id), HASH(hash)), true, err, errlen,
               "setting the subscriber's token");
}

static int sq_subscriber_delete(void *s, uint64_t id, char *err, size_t errlen)
{
    return run(s, PREP(s, ST_SUB_DELETE, U(id)), true, err, errlen, "deleting the subscriber");
}

/* ---- networks ---- */

#define GET_NET(s, st, out) get_row((s), (st), row_network, (out), err, errlen, "reading a network")

static int sq_network_get(void *s, uint64_t id, struct vnet_network *out, char *err, size_t errlen)
{
    return GET_NET(s, PREP(s, ST_NET_BY_ID, U(id)), out);
}

static int sq_network_by_vni(void *s, uint32_t vni, struct vnet_network *out, char *err,
                             size_t errlen)
{
    return GET_NET(s, PREP(s, ST_NET_BY_VNI, U(vni)), out);
}

static int sq_network_by_name(void *s, uint64_t subscriber_id, const char *name,
                              struct vnet_network *out, char *err, size_t errlen)
{
    return GET_NET(s, PREP(s, ST_NET_BY_NAME, U(subscriber_id), T(name)), out);
}

static int sq_network_list(void *s, uint64_t subscriber_id, vnet_store_network_fn fn, void *arg,
                           char *err, size_t errlen)
{
    struct walk w = {.fn.net = fn, .arg = arg};
    return walk(s, PREP(s, ST_NET_LIST, U(subscriber_id)), emit_net, &w, err, errlen,
                "listing networks");
}

static int sq_network_free_vni(void *s, uint32_t *vni, char *err, size_t errlen)
{
    uint64_t v = 0;
    int rc = get_row(s, PREP0(s, ST_NET_FREE_VNI), row_u64, &v, err, errlen, "choosing a VNI");
    if (!rc)
        *vni = (uint32_t)v;
    return rc == VNET_ENOENT ? VNET_ENOSPC : rc;
}

static int sq_network_insert(void *s, struct vnet_network *n, char *err, size_t errlen)
{
    char p4[VNET_PREFIX_STRLEN] = "", p6[VNET_PREFIX_STRLEN] = "";
    if (n->subnet4.ip.family)
        vnet_prefix_format(&n->subnet4, p4, sizeof(p4));
    if (n->subnet6.ip.family)
        vnet_prefix_format(&n->subnet6, p6, sizeof(p6));
    return insert(s,
                  PREP(s, ST_NET_INSERT, U(n->subscriber_id), T(n->name), U(n->vni),
                       T(p4[0] ? p4 : NULL), T(p6[0] ? p6 : NULL), U(n->mtu), U(n->revision),
                       U(n->mode)),
                  &n->id, err, errlen, "creating the network");
}

static int sq_network_set_revision(void *s, uint64_t id, uint64_t revision, char *err,
                                   size_t errlen)
{
    return run(s, PREP(s, ST_NET_SET_REV, U(id), U(revision)), true, err, errlen,
               "updating the network revision");
}

static int sq_network_delete(void *state, uint64_t id, char *err, size_t errlen)
{
    struct sq *s = state;
    s->hint_net = 0;
    return run(s, PREP(s, ST_NET_DELETE, U(id)), true, err, errlen, "deleting the network");
}

/* ---- nodes ---- */

#define GET_NODE(s, st, out) get_row((s), (st), row_node, (out), err, errlen, "reading a node")

static int sq_node_get(void *s, uint64_t id, struct vnet_node_info *out, char *err, size_t errlen)
{
    return GET_NODE(s, PREP(s, ST_NODE_BY_ID, U(id)), out);
}

static int sq_node_by_name(void *s, uint64_t network_id, const char *name,
                           struct vnet_node_info *out, char *err, size_t errlen)
{
    return GET_NODE(s, PREP(s, ST_NODE_BY_NAME, U(network_id), T(name)), out);
}

static int sq_node_by_mac(void *s, uint64_t network_id, const struct vnet_mac *mac,
                          struct vnet_node_info *out, char *err, size_t errlen)
{
    return GET_NODE(s, PREP(s, ST_NODE_BY_MAC, U(network_id), B(mac->b, 6)), out);
}

static int sq_node_by_ip(void *s, uint64_t network_id, const struct vnet_ip *ip,
                         struct vnet_node_info *out, char *err, size_t errlen)
{
    enum st id = ip->family == VNET_AF_INET ? ST_NODE_BY_IP4 : ST_NODE_BY_IP6;
    return GET_NODE(s, PREP(s, id, U(network_id), IP(ip)), out);
}

static int sq_node_by_pubkey(void *s, uint64_t network_id, const uint8_t *pub, uint64_t after_id,
                             struct vnet_node_info *out, char *err, size_t errlen)
{
    return GET_NODE(
        s, PREP(s, ST_NODE_BY_PUBKEY, U(network_id), B(pub, VNET_PUBKEY_LEN), U(after_id)), out);
}

static int sq_node_by_join_token(void *s, const uint8_t *hash, struct vnet_node_info *out,
                                 uint64_t *expires, char *err, size_t errlen)
{
    struct node_token t;
    int rc = get_row(s, PREP(s, ST_NODE_BY_TOKEN, HASH(hash)), row_node_token, &t, err, errlen,
                     "reading a node");
    if (!rc) {
        *out = t.node;
        *expires = t.expires;
    }
    return rc;
}

static int sq_node_list(void *s, uint64_t network_id, vnet_store_node_fn fn, void *arg, char *err,
                        size_t errlen)
{
    struct walk w = {.fn.node = fn, .arg = arg};
    return walk(s, PREP(s, ST_NODE_LIST, U(network_id)), emit_node, &w, err, errlen,
                "listing nodes");
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
    sqlite3_stmt *st =
        PREP(s, slot ? ST_NODE_IP6_FROM : ST_NODE_IP4_FROM, U(network_id), IP(&cand));
    int rc = SQLITE_DONE, code = 0;
    while (!full && (rc = sqlite3_step(st)) == SQLITE_ROW) {
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
    if (s->pend_net != network_id) { /* one network per transaction is hinted */
        if (s->pend_net)
            return 0;
        s->pend_net = network_id;
        s->pend_valid[0] = s->pend_valid[1] = false;
    }
    s->pend_next[slot] = cand;
    s->pend_valid[slot] = vnet_store_ip_inc(&s->pend_next[slot]);
    return 0;
}

/* ST_NODE_INSERT and ST_NODE_UPDATE share parameters 1..12; the update's 13th is the id
 * (which the insert, having no parameter 13, ignores). */
static sqlite3_stmt *prep_node(struct sq *s, enum st id, const struct vnet_node_info *n)
{
    return PREP(s, id, U(n->network_id), T(n->name), B(n->mac.b, 6), IP(&n->ips[0]), IP(&n->ips[1]),
                B(n->has_pubkey ? n->pubkey : NULL, VNET_PUBKEY_LEN), IP(&n->phys.ip),
                U(n->phys.port), IP(&n->observed.ip), U(n->observed.port), U(n->state),
                U(n->revision), U(n->id));
}

static int sq_node_insert(void *s, struct vnet_node_info *n, char *err, size_t errlen)
{
    return insert(s, prep_node(s, ST_NODE_INSERT, n), &n->id, err, errlen, "adding the node");
}

static int sq_node_update(void *s, const struct vnet_node_info *n, char *err, size_t errlen)
{
    return run(s, prep_node(s, ST_NODE_UPDATE, n), true, err, errlen, "updating the node");
}

static int sq_node_set_join_token(void *s, uint64_t id, const uint8_t *hash, uint64_t expires,
                                  char *err, size_t errlen)
{
    return run(s, PREP(s, ST_NODE_SET_TOKEN, U(id), HASH(hash), U(expires)), true, err, errlen,
               "setting the node's join token");
}

static int sq_node_delete(void *state, uint64_t id, char *err, size_t errlen)
{
    struct sq *s = state;
    s->hint_net = 0; /* its addresses are free again */
    return run(s, PREP(s, ST_NODE_DELETE, U(id)), true, err, errlen, "removing the node");
}

/* ---- change log ---- */

static int sq_change_append(void *s, uint64_t network_id, uint64_t revision, int op,
                            const void *payload, size_t len, char *err, size_t errlen)
{
    return run(s, PREP(s, ST_CHG_INSERT, U(network_id), U(revision), U(op), B(payload, len)), false,
               err, errlen, "appending to the change log");
}

static int sq_change_prune(void *s, uint64_t network_id, uint64_t upto, char *err, size_t errlen)
{
    return run(s, PREP(s, ST_CHG_PRUNE, U(network_id), U(upto)), false, err, errlen,
               "pruning the change log");
}

static int sq_change_oldest(void *s, uint64_t network_id, uint64_t *revision, char *err,
                            size_t errlen)
{
    return get_row(s, PREP(s, ST_CHG_OLDEST, U(network_id)), row_u64, revision, err, errlen,
                   "reading the change log");
}

static int sq_change_list(void *s, uint64_t network_id, uint64_t since, vnet_store_change_row_fn fn,
                          void *arg, char *err, size_t errlen)
{
    struct walk w = {.fn.change = fn, .arg = arg};
    return walk(s, PREP(s, ST_CHG_SINCE, U(network_id), U(since)), emit_change, &w, err, errlen,
                "reading the change log");
}

static int sq_change_last(void *s, uint64_t *id, char *err, size_t errlen)
{
    return get_row(s, PREP0(s, ST_CHG_LAST), row_u64, id, err, errlen, "reading the change log");
}

static int sq_change_networks(void *s, uint64_t since, vnet_store_id_fn fn, void *arg, char *err,
                              size_t errlen)
{
    struct walk w = {.fn.id = fn, .arg = arg};
    return walk(s, PREP(s, ST_CHG_NETS, U(since)), emit_id, &w, err, errlen,
                "reading the change log");
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
