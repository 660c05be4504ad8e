/* Unit tests of the store and its SQLite engine: every request and validation rule, address
 * assignment, the change log and its retention, transactions that fail whole, migration from
 * schemas v1 and v2, damaged, foreign, locked and newer files, read-only opens, subscribers and
 * their tokens, network ownership and mode, node keys, enrolment and revocation, and the
 * node_add rate.
 *
 * The TCase "api" (and "perf") goes through the public API only, on stores opened by URI from
 * the template in VNET_TEST_STORE_URI ("%s" becomes the test's store name; the default is
 * "sqlite:DIR/%s.db" in a directory made by main() under /tmp and removed at the end), so
 * another engine runs the same tests by setting that variable. Transactions that fail whole
 * are tested through a wrapping engine ("fault:URI") that fails change-log appends on demand.
 * Checks of what the SQLite file holds run only on SQLite URIs. The TCase "sqlite" tests what
 * is particular to SQLite files (migration, damaged, foreign, locked and read-only files); a
 * second, raw sqlite3 connection plays the other process where one is needed. */
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/store.h"
#include "vnet/sys/store.h"

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];
static char uri_template[PATH_MAX + 64]; /* VNET_TEST_STORE_URI */
static bool on_sqlite;                   /* the template names the SQLite engine */

static const char *path_of(const char *name)
{
    static char buf[PATH_MAX + 64];
    snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
    return buf;
}

/* The URI of the store named @name for the engine under test. */
static const char *store_uri(const char *name)
{
    static char buf[2 * PATH_MAX];
    const char *pct = strstr(uri_template, "%s");
    ck_assert_msg(pct != NULL, "VNET_TEST_STORE_URI has no %%s");
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(pct - uri_template), uri_template, name, pct + 2);
    return buf;
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static struct vnet_store *open_ok(const char *path, uint32_t retention)
{
    struct vnet_store_opts o = {retention, 100, false};
    struct vnet_store *s = NULL;
    char err[256] = "";
    int rc = vnet_store_open(path, &o, &s, err, sizeof(err));
    ck_assert_msg(rc == 0, "open %s: %s (%s)", path, vnet_err_name(rc), err);
    return s;
}

/* ---- a wrapping engine that fails on demand ----
 *
 * "fault:URI" opens URI with its own engine and passes every call through, except that
 * change-log appends fail while fail_appends is set: a request that fails after it has written
 * rows. Tests use one handle at a time, so the state is global. */

static const struct vnet_store_ops *fault_base;
static bool fail_appends;
static struct vnet_store_ops fault_ops;

static int fault_open(const char *arg, const struct vnet_store_opts *opts, void **state, char *err,
                      size_t errlen)
{
    const char *colon = strchr(arg, ':');
    char scheme[32];
    snprintf(scheme, sizeof(scheme), "%.*s", colon ? (int)(colon - arg) : 0, arg);
    fault_base = vnet_store_engine(colon ? scheme : "sqlite");
    ck_assert_msg(fault_base != NULL, "no engine for %s", arg);
    return fault_base->open(colon ? colon + 1 : arg, opts, state, err, errlen);
}

static int fault_change_append(void *state, uint64_t network_id, uint64_t revision, int op,
                               const void *payload, size_t len, char *err, size_t errlen)
{
    if (fail_appends) {
        vnet_store_seterr(err, errlen, "appending to the change log: injected failure");
        return VNET_EIO;
    }
    return fault_base->change_append(state, network_id, revision, op, payload, len, err, errlen);
}

static void fault_close(void *state)
{
    fault_base->close(state);
}

/* Open the store @name of the engine under test through the fault engine. */
static struct vnet_store *open_fault(const char *name)
{
    if (!fault_ops.open) {
        const char *colon = strchr(uri_template, ':');
        char scheme[32] = "sqlite"; /* a plain path */
        if (colon)
            snprintf(scheme, sizeof(scheme), "%.*s", (int)(colon - uri_template), uri_template);
        ck_assert_msg(vnet_store_engine(scheme) != NULL, "no engine '%s'", scheme);
        fault_ops = *vnet_store_engine(scheme); /* every member of the engine under test */
        fault_ops.scheme = "fault";
        fault_ops.open = fault_open;
        fault_ops.close = fault_close;
        fault_ops.change_append = fault_change_append;
        ck_assert_int_eq(vnet_store_register(&fault_ops), 0);
    }
    char uri[2 * PATH_MAX + 8];
    snprintf(uri, sizeof(uri), "fault:%s", store_uri(name));
    return open_ok(uri, 0);
}

/* ---- raw SQLite, the "other process" ---- */

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    if (strncmp(path, "sqlite:", 7) == 0)
        path += 7;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    return db;
}

static void raw_exec_db(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    raw_exec_db(db, sql);
    sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ---- values ---- */

static struct vnet_prefix pfx(const char *s)
{
    struct vnet_prefix p;
    ck_assert_msg(vnet_prefix_parse(s, &p) == 0, "prefix %s", s);
    return p;
}

static struct vnet_ip ip(const char *s)
{
    struct vnet_ip a;
    ck_assert_msg(vnet_ip_parse(s, &a) == 0, "ip %s", s);
    return a;
}

static struct vnet_endpoint ep(const char *s)
{
    struct vnet_endpoint e;
    memset(&e, 0, sizeof(e));
    ck_assert_msg(vnet_endpoint_parse(s, &e) == 0, "endpoint %s", s);
    return e;
}

static struct vnet_mac mac(const char *s)
{
    struct vnet_mac m;
    ck_assert_msg(vnet_mac_parse(s, &m) == 0, "mac %s", s);
    return m;
}

static const char *ipstr(const struct vnet_ip *a)
{
    static char buf[4][VNET_IP_STRLEN];
    static int i;
    char *b = buf[i++ % 4];
    if (vnet_ip_format(a, b, VNET_IP_STRLEN) < 0)
        snprintf(b, VNET_IP_STRLEN, "(family %u)", a->family);
    return b;
}

static bool node_eq(const struct vnet_node_info *a, const struct vnet_node_info *b)
{
    return a->id == b->id && a->network_id == b->network_id && strcmp(a->name, b->name) == 0 &&
           a->has_pubkey == b->has_pubkey &&
           (!a->has_pubkey || memcmp(a->pubkey, b->pubkey, VNET_PUBKEY_LEN) == 0) &&
           vnet_mac_eq(&a->mac, &b->mac) && a->ips[0].family == b->ips[0].family &&
           (!a->ips[0].family || vnet_ip_eq(&a->ips[0], &b->ips[0])) &&
           a->ips[1].family == b->ips[1].family &&
           (!a->ips[1].family || vnet_ip_eq(&a->ips[1], &b->ips[1])) &&
           a->phys.ip.family == b->phys.ip.family &&
           (!a->phys.ip.family || vnet_endpoint_eq(&a->phys, &b->phys)) &&
           a->observed.ip.family == b->observed.ip.family &&
           (!a->observed.ip.family || vnet_endpoint_eq(&a->observed, &b->observed)) &&
           a->state == b->state && a->revision == b->revision;
}

static bool net_eq(const struct vnet_network *a, const struct vnet_network *b)
{
    return a->id == b->id && a->subscriber_id == b->subscriber_id &&
           strcmp(a->name, b->name) == 0 && a->vni == b->vni && a->mtu == b->mtu &&
           a->revision == b->revision && a->mode == b->mode &&
           a->subnet4.ip.family == b->subnet4.ip.family && a->subnet4.len == b->subnet4.len &&
           (!a->subnet4.ip.family || vnet_ip_eq(&a->subnet4.ip, &b->subnet4.ip)) &&
           a->subnet6.ip.family == b->subnet6.ip.family && a->subnet6.len == b->subnet6.len &&
           (!a->subnet6.ip.family || vnet_ip_eq(&a->subnet6.ip, &b->subnet6.ip));
}

static struct vnet_network_spec net_spec(const char *name, const char *s4, const char *s6)
{
    struct vnet_network_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.name = name;
    if (s4)
        sp.subnet4 = pfx(s4);
    if (s6)
        sp.subnet6 = pfx(s6);
    return sp;
}

static struct vnet_node_spec node_spec(const char *name)
{
    struct vnet_node_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.name = name;
    return sp;
}

static struct vnet_network mknet(struct vnet_store *s, const char *name, const char *s4,
                                 const char *s6)
{
    struct vnet_network_spec sp = net_spec(name, s4, s6);
    struct vnet_network n;
    char err[256] = "";
    int rc = vnet_store_network_create(s, &sp, &n, err, sizeof(err));
    ck_assert_msg(rc == 0, "network %s: %s (%s)", name, vnet_err_name(rc), err);
    return n;
}

static struct vnet_node_info mknode(struct vnet_store *s, uint64_t net, const char *name)
{
    struct vnet_node_spec sp = node_spec(name);
    struct vnet_node_info n;
    char err[256] = "";
    int rc = vnet_store_node_add(s, net, &sp, &n, err, sizeof(err));
    ck_assert_msg(rc == 0, "node %s: %s (%s)", name, vnet_err_name(rc), err);
    return n;
}

static uint64_t revision_of(struct vnet_store *s, uint64_t net)
{
    struct vnet_network n;
    ck_assert_int_eq(vnet_store_network_get_by_id(s, net, &n), 0);
    return n.revision;
}

static uint64_t last_change(struct vnet_store *s)
{
    uint64_t v = 0;
    ck_assert_int_eq(vnet_store_last_change(s, &v), 0);
    return v;
}

#define ERR_HAS(err, text)                                                                         \
    ck_assert_msg(strstr((err), (text)) != NULL, "error '%s' lacks '%s'", (err), (text))

/* Expect @call (which writes @err) to fail with @code and name @text. */
#define REFUSED(code, text, call)                                                                  \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        int rc_ = (call);                                                                          \
        ck_assert_msg(rc_ == (code), "%s: got %s, want %s (%s)", #call, vnet_err_name(rc_),        \
                      vnet_err_name(code), err);                                                   \
        ERR_HAS(err, text);                                                                        \
        if (getenv("VNET_TEST_VERBOSE"))                                                           \
            printf("refused %s: %s\n", vnet_err_name(rc_), err);                                   \
    } while (0)

/* ---- collectors ---- */

struct changes {
    struct vnet_change c[64];
    int n;
    int stop_at; /* return 7 at this call (1-based), 0: never */
};

static int collect_change(const struct vnet_change *c, void *arg)
{
    struct changes *cs = arg;
    if (cs->n < 64)
        cs->c[cs->n] = *c;
    cs->n++;
    return cs->stop_at && cs->n == cs->stop_at ? 7 : 0;
}

static int changes_since(struct vnet_store *s, uint64_t net, uint64_t since, struct changes *cs)
{
    memset(cs, 0, sizeof(*cs));
    return vnet_store_changes_since(s, net, since, collect_change, cs);
}

static int count_cb(const void *x, void *arg)
{
    (void)x;
    ++*(int *)arg;
    return 0;
}

static int count_net(const struct vnet_network *n, void *arg)
{
    return count_cb(n, arg);
}

static int count_node(const struct vnet_node_info *n, void *arg)
{
    return count_cb(n, arg);
}

struct names {
    char v[16][VNET_NAME_MAX];
    uint64_t ids[16];
    int n;
};

static int collect_net(const struct vnet_network *n, void *arg)
{
    struct names *ns = arg;
    if (ns->n < 16) {
        snprintf(ns->v[ns->n], VNET_NAME_MAX, "%s", n->name);
        ns->ids[ns->n] = n->id;
    }
    ns->n++;
    return 0;
}

static int collect_node(const struct vnet_node_info *n, void *arg)
{
    struct names *ns = arg;
    if (ns->n < 16) {
        snprintf(ns->v[ns->n], VNET_NAME_MAX, "%s", n->name);
        ns->ids[ns->n] = n->id;
    }
    ns->n++;
    return 0;
}

static int collect_id(uint64_t id, void *arg)
{
    struct names *ns = arg;
    if (ns->n < 16)
        ns->ids[ns->n] = id;
    ns->n++;
    return 0;
}

struct nested {
    struct vnet_store *s;
    int nodes;
};

/* Calls the store from inside a walk, as the header allows. */
static int nested_cb(const struct vnet_network *n, void *arg)
{
    struct nested *x = arg;
    return vnet_store_node_list(x->s, n->id, count_node, &x->nodes);
}

static int stop_cb(const struct vnet_network *n, void *arg)
{
    (void)n;
    (void)arg;
    return 5;
}

/* ---- tests ---- */

START_TEST(t_name_valid)
{
    char long63[64], long64[65];
    memset(long63, 'a', 63);
    long63[63] = '\0';
    memset(long64, 'b', 64);
    long64[64] = '\0';
    static const char *good[] = {"a", "Z", "0", "a.b_c-d", "9lives", "node-1.rack_2"};
    static const char *bad[] = {"", ".a", "-a", "_a", "a b", "a/b", "a:b", "caf\xc3\xa9", "a\n"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(vnet_name_valid(good[i]), "refused '%s'", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!vnet_name_valid(bad[i]), "accepted '%s'", bad[i]);
    ck_assert(vnet_name_valid(long63));
    ck_assert(!vnet_name_valid(long64));
    ck_assert(!vnet_name_valid(NULL));
}
END_TEST

START_TEST(t_open_reopen)
{
    /* SQLite: first by plain path, then by "sqlite:" URI */
    char path[2 * PATH_MAX], uri[2 * PATH_MAX], err[256];
    snprintf(uri, sizeof(uri), "%s", store_uri("reopen"));
    snprintf(path, sizeof(path), "%s", on_sqlite ? uri + 7 : uri);
    struct vnet_store *s = NULL;
    ck_assert_int_eq(vnet_store_open(path, NULL, &s, err, sizeof(err)), 0);
    if (on_sqlite) {
        ck_assert(file_exists(path));
        ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), VNET_STORE_SCHEMA_VERSION);
        ck_assert_int_eq(raw_int(path, "PRAGMA application_id"), 0x564E4554);
        ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM subscribers WHERE id = 1 AND "
                                       "name = 'admin'"),
                         1);
        sqlite3 *db = raw_open(path);
        sqlite3_stmt *st;
        ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    struct vnet_subscriber admin;
    ck_assert_int_eq(vnet_store_subscriber_get_by_id(s, VNET_SUBSCRIBER_ADMIN, &admin), 0);
    ck_assert_str_eq(admin.name, "admin");
    ck_assert(admin.admin && !admin.has_token);

    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", "fd00::/64");
    ck_assert_uint_eq(blue.subscriber_id, VNET_SUBSCRIBER_ADMIN);
    uint8_t key[VNET_PUBKEY_LEN];
    for (int i = 0; i < VNET_PUBKEY_LEN; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    struct vnet_node_spec sp = node_spec("a");
    sp.pubkey = key;
    sp.phys = ep("192.0.2.1:4789");
    struct vnet_node_info a, b, got;
    ck_assert_int_eq(vnet_store_node_add(s, blue.id, &sp, &a, err, sizeof(err)), 0);
    b = mknode(s, blue.id, "b");
    struct vnet_endpoint obs = ep("[2001:db8::7]:4790");
    ck_assert_int_eq(vnet_store_node_set_observed(s, a.id, &obs, &a), 0);
    vnet_store_close(s);

    s = NULL;
    ck_assert_int_eq(vnet_store_open(uri, NULL, &s, err, sizeof(err)), 0);
    struct vnet_network n;
    ck_assert_int_eq(vnet_store_network_get(s, VNET_SUBSCRIBER_ADMIN, "blue", &n), 0);
    blue.revision = 4;
    ck_assert(net_eq(&n, &blue));
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "a", &got), 0);
    ck_assert(node_eq(&got, &a));
    ck_assert(got.has_pubkey && memcmp(got.pubkey, key, sizeof(key)) == 0);
    ck_assert_int_eq(got.state, VNET_NODE_ACTIVE);
    ck_assert_int_eq(vnet_store_node_get_by_id(s, b.id, &got), 0);
    ck_assert(node_eq(&got, &b));
    ck_assert(!got.has_pubkey);
    int count = 0;
    ck_assert_int_eq(vnet_store_node_list(s, blue.id, count_node, &count), 0);
    ck_assert_int_eq(count, 2);
    struct changes cs;
    ck_assert_int_eq(changes_since(s, blue.id, 0, &cs), 0);
    ck_assert_int_eq(cs.n, 4);
    ck_assert(node_eq(&cs.c[3].node, &a));
    struct nested x = {s, 0};
    ck_assert_int_eq(vnet_store_network_list(s, 0, nested_cb, &x), 0);
    ck_assert_int_eq(x.nodes, 2);

    /* a second handle on the same store at the same time */
    struct vnet_store *s2 = open_ok(uri, 0);
    ck_assert_int_eq(vnet_store_node_get(s2, blue.id, "b", &got), 0);
    vnet_store_close(s2);
    vnet_store_close(s);
    vnet_store_close(NULL);
}
END_TEST

static const char *dummy_arg;
static int dummy_open(const char *arg, const struct vnet_store_opts *opts, void **state, char *err,
                      size_t errlen)
{
    static char keep[64];
    snprintf(keep, sizeof(keep), "%s", arg);
    dummy_arg = keep;
    ck_assert_uint_eq(opts->retention, VNET_STORE_RETENTION_DEFAULT);
    ck_assert_uint_eq(opts->busy_timeout_ms, VNET_STORE_BUSY_MS_DEFAULT);
    vnet_store_seterr(err, errlen, "dummy refuses %s", arg);
    return VNET_ENOTSUP;
}

START_TEST(t_uri_and_register)
{
    char err[256];
    struct vnet_store *s = NULL;
    REFUSED(VNET_EINVAL, "names no database", vnet_store_open("sqlite:", NULL, &s, err, 256));
    REFUSED(VNET_EINVAL, "names no database", vnet_store_open("", NULL, &s, err, 256));
    REFUSED(VNET_EINVAL, "no store URI", vnet_store_open(NULL, NULL, &s, err, 256));
    ck_assert_int_eq(vnet_store_open("x.db", NULL, NULL, NULL, 0), VNET_EINVAL);
    REFUSED(VNET_ENOTSUP, "postgres",
            vnet_store_open("postgres://db.example/vnet", NULL, &s, err, 256));
    /* a colon in a plain path is not a scheme */
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s", path_of("x:y.db"));
    s = open_ok(p, 0);
    vnet_store_close(s);
    ck_assert(file_exists(p));
    s = open_ok(":memory:", 0);
    mknode(s, mknet(s, "mem", "10.0.0.0/24", NULL).id, "n");
    vnet_store_close(s);

    ck_assert_int_eq(vnet_store_register(NULL), VNET_EINVAL);
    struct vnet_store_ops ops = vnet_store_sqlite_ops;
    ck_assert_int_eq(vnet_store_register(&ops), VNET_EEXIST);
    ops.version = 99;
    ck_assert_int_eq(vnet_store_register(&ops), VNET_EINVAL);
    ops.version = VNET_STORE_OPS_VERSION;
    ops.scheme = "Bad!";
    ck_assert_int_eq(vnet_store_register(&ops), VNET_EINVAL);
    ops.scheme = "dummy";
    ops.node_insert = NULL;
    ck_assert_int_eq(vnet_store_register(&ops), VNET_EINVAL);
    ops.node_insert = vnet_store_sqlite_ops.node_insert;
    ops.change_networks = NULL; /* every member is required, the last one too */
    ck_assert_int_eq(vnet_store_register(&ops), VNET_EINVAL);
    ops.change_networks = vnet_store_sqlite_ops.change_networks;
    ops.begin = NULL;
    ck_assert_int_eq(vnet_store_register(&ops), VNET_EINVAL);
    ops.begin = vnet_store_sqlite_ops.begin;
    ops.subscriber_delete = NULL;
    ck_assert_int_eq(vnet_store_register(&ops), VNET_EINVAL);
    ops.subscriber_delete = vnet_store_sqlite_ops.subscriber_delete;
    ops.open = dummy_open;
    ck_assert_int_eq(vnet_store_register(&ops), 0);
    REFUSED(VNET_ENOTSUP, "dummy refuses //h/x",
            vnet_store_open("dummy://h/x", NULL, &s, err, 256));
    ck_assert_str_eq(dummy_arg, "//h/x");
}
END_TEST

START_TEST(t_network_create)
{
    const char *p = store_uri("net");
    char err[256];
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_network_spec sp = net_spec("blue", "10.0.0.7/24", NULL);
    struct vnet_network blue, n;
    uint64_t lc0 = last_change(s);
    REFUSED(VNET_EINVAL, "subnet 10.0.0.7/24 has host bits set: did you mean 10.0.0.0/24?",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp = net_spec("blue", NULL, "fd00:1::1/64");
    REFUSED(VNET_EINVAL, "subnet fd00:1::1/64 has host bits set: did you mean fd00:1::/64?",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp = net_spec("blue", "10.0.0.1/31", NULL); /* the length is judged first */
    REFUSED(VNET_EINVAL, "bad IPv4 subnet 10.0.0.1/31",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    ck_assert_int_eq(last_change(s), lc0);
    sp = net_spec("blue", "10.0.0.0/24", NULL);
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &blue, err, sizeof(err)), 0);
    ck_assert_uint_eq(blue.vni, 1);
    ck_assert_uint_eq(blue.revision, 1);
    ck_assert_uint_eq(blue.mtu, 1450);
    ck_assert_uint_eq(blue.subscriber_id, 1);
    ck_assert(vnet_ip_eq(&blue.subnet4.ip, &(struct vnet_ip){4, {10, 0, 0, 0}}));
    ck_assert_uint_eq(blue.subnet4.len, 24);
    ck_assert_int_eq(blue.subnet6.ip.family, 0);
    ck_assert_int_eq(vnet_store_network_get_by_id(s, blue.id, &n), 0);
    ck_assert(net_eq(&n, &blue));
    struct changes cs;
    ck_assert_int_eq(changes_since(s, blue.id, 0, &cs), 0);
    ck_assert_int_eq(cs.n, 1);
    ck_assert_int_eq(cs.c[0].op, VNET_CHANGE_NET_PUT);
    ck_assert_uint_eq(cs.c[0].revision, 1);
    ck_assert_uint_eq(cs.c[0].network_id, blue.id);

    sp = net_spec("red", NULL, "fd00:1::/64");
    sp.vni = 42;
    sp.has_vni = true;
    sp.mtu = 9216;
    struct vnet_network red;
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &red, err, sizeof(err)), 0);
    ck_assert_uint_eq(red.vni, 42);
    ck_assert_uint_eq(red.mtu, 9216);
    struct vnet_network green = mknet(s, "green", NULL, NULL);
    ck_assert_uint_eq(green.vni, 2); /* lowest free */
    uint64_t lc = last_change(s);

    sp = net_spec("x", NULL, NULL);
    sp.vni = 42;
    REFUSED(VNET_EEXIST, "VNI 42 is used by network 'red'",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp.vni = 0;
    sp.has_vni = true;
    REFUSED(VNET_EINVAL, "VNI 0 is reserved",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp.vni = VNET_VNI_MAX + 1;
    REFUSED(VNET_EINVAL, "VNI 16777216", vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp = net_spec("blue", NULL, NULL);
    REFUSED(VNET_EEXIST, "network 'blue' already exists for subscriber 'admin'",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp = net_spec("-bad", NULL, NULL);
    REFUSED(VNET_EINVAL, "invalid network name '-bad'",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp = net_spec("x", NULL, NULL);
    sp.subscriber_id = 77;
    REFUSED(VNET_ENOENT, "no subscriber with id 77",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp = net_spec("x", "fd00::/64", NULL);
    REFUSED(VNET_EINVAL, "bad IPv4 subnet", vnet_store_network_create(s, &sp, NULL, err, 256));
    sp = net_spec("x", "10.0.0.0/31", NULL);
    REFUSED(VNET_EINVAL, "10.0.0.0/31", vnet_store_network_create(s, &sp, NULL, err, 256));
    sp = net_spec("x", "0.0.0.0/0", NULL);
    REFUSED(VNET_EINVAL, "bad IPv4 subnet", vnet_store_network_create(s, &sp, NULL, err, 256));
    sp = net_spec("x", NULL, "fd00::1/128");
    REFUSED(VNET_EINVAL, "bad IPv6 subnet", vnet_store_network_create(s, &sp, NULL, err, 256));
    sp = net_spec("x", NULL, NULL);
    sp.mtu = 500;
    REFUSED(VNET_EINVAL, "MTU 500", vnet_store_network_create(s, &sp, NULL, err, 256));
    sp.mtu = 9217;
    REFUSED(VNET_EINVAL, "MTU 9217", vnet_store_network_create(s, &sp, NULL, err, 256));
    sp = net_spec("x", NULL, "fd00::/64");
    sp.mtu = 1000;
    REFUSED(VNET_EINVAL, "IPv6 needs 1280", vnet_store_network_create(s, &sp, NULL, err, 256));
    ck_assert_int_eq(vnet_store_network_create(s, NULL, NULL, NULL, 0), VNET_EINVAL);
    ck_assert_int_eq(last_change(s), lc); /* refusals leave no trace */

    /* the name is unique per subscriber, not in the store */
    struct vnet_subscriber acme;
    ck_assert_int_eq(vnet_store_subscriber_create(s, "acme", NULL, &acme, err, sizeof(err)), 0);
    sp = net_spec("blue", NULL, NULL);
    sp.subscriber_id = acme.id;
    struct vnet_network blue2;
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &blue2, err, sizeof(err)), 0);
    ck_assert_uint_eq(blue2.vni, 3);
    ck_assert_int_eq(vnet_store_network_get(s, 0, "blue", &n), 0);
    ck_assert_uint_eq(n.id, blue.id);
    ck_assert_int_eq(vnet_store_network_get(s, acme.id, "blue", &n), 0);
    ck_assert_uint_eq(n.id, blue2.id);
    ck_assert_int_eq(vnet_store_network_get(s, acme.id, "red", &n), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_network_get(s, 0, "nosuch", &n), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_network_get(s, 0, "bad name", &n), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_network_get_by_id(s, 999, &n), VNET_ENOENT);

    struct names ns = {0};
    ck_assert_int_eq(vnet_store_network_list(s, 0, collect_net, &ns), 0);
    ck_assert_int_eq(ns.n, 4);
    ck_assert_str_eq(ns.v[0], "blue");
    ck_assert_str_eq(ns.v[1], "blue");
    ck_assert_str_eq(ns.v[2], "green");
    ck_assert_str_eq(ns.v[3], "red");
    memset(&ns, 0, sizeof(ns));
    ck_assert_int_eq(vnet_store_network_list(s, 2, collect_net, &ns), 0);
    ck_assert_int_eq(ns.n, 1);
    ck_assert_uint_eq(ns.ids[0], blue2.id);
    ck_assert_int_eq(vnet_store_network_list(s, 0, stop_cb, NULL), 5);
    ck_assert_int_eq(vnet_store_network_list(s, 0, NULL, NULL), VNET_EINVAL);

    /* VNI 1 freed is the lowest free again; the network id is not reused */
    ck_assert_int_eq(vnet_store_network_delete(s, blue.id, err, sizeof(err)), 0);
    struct vnet_network again = mknet(s, "blue", NULL, NULL);
    ck_assert_uint_eq(again.vni, 1);
    ck_assert_uint_gt(again.id, blue2.id);
    sp = net_spec("top", NULL, NULL);
    sp.vni = VNET_VNI_MAX;
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &n, err, sizeof(err)), 0);
    vnet_store_close(s);
}
END_TEST

START_TEST(t_node_add)
{
    const char *p = store_uri("node");
    char err[256];
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", "fd00::/64");
    /* red has blue's IPv4 subnet: another subscriber's (one subscriber's do not overlap) */
    struct vnet_subscriber other;
    ck_assert_int_eq(vnet_store_subscriber_create(s, "other", NULL, &other, err, sizeof(err)), 0);
    struct vnet_network_spec rsp = net_spec("red", "10.0.0.0/24", NULL);
    struct vnet_network red;
    rsp.subscriber_id = other.id;
    ck_assert_int_eq(vnet_store_network_create(s, &rsp, &red, err, sizeof(err)), 0);

    struct vnet_node_spec sp = node_spec("n1");
    sp.mac = mac("02:00:00:00:00:01");
    sp.has_mac = true;
    sp.phys = ep("192.0.2.1:4789");
    struct vnet_node_info n1, n, got;
    ck_assert_int_eq(vnet_store_node_add(s, blue.id, &sp, &n1, err, sizeof(err)), 0);
    ck_assert_uint_eq(n1.revision, 2);
    ck_assert_uint_eq(n1.network_id, blue.id);
    ck_assert_int_eq(n1.state, VNET_NODE_PENDING);
    ck_assert_str_eq(ipstr(&n1.ips[0]), "10.0.0.1");
    ck_assert_str_eq(ipstr(&n1.ips[1]), "fd00::1");
    ck_assert(vnet_endpoint_eq(&n1.phys, &sp.phys));
    ck_assert_int_eq(n1.observed.ip.family, 0);
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "n1", &got), 0);
    ck_assert(node_eq(&got, &n1));
    struct changes cs;
    ck_assert_int_eq(changes_since(s, blue.id, 1, &cs), 0);
    ck_assert_int_eq(cs.n, 1);
    ck_assert_int_eq(cs.c[0].op, VNET_CHANGE_NODE_PUT);
    ck_assert(node_eq(&cs.c[0].node, &n1));

    /* explicit addresses in either slot order */
    sp = node_spec("n2");
    sp.ips[0] = ip("fd00::99");
    sp.ips[1] = ip("10.0.0.5");
    ck_assert_int_eq(vnet_store_node_add(s, blue.id, &sp, &n, err, sizeof(err)), 0);
    ck_assert_str_eq(ipstr(&n.ips[0]), "10.0.0.5");
    ck_assert_str_eq(ipstr(&n.ips[1]), "fd00::99");
    ck_assert_int_eq(n.mac.b[0], 0x02); /* assigned: locally administered unicast */
    sp = node_spec("n3");
    sp.ips[0] = ip("fd00::ffff:ffff:ffff:ffff"); /* IPv6 has no broadcast address */
    ck_assert_int_eq(vnet_store_node_add(s, blue.id, &sp, &n, err, sizeof(err)), 0);
    ck_assert_str_eq(ipstr(&n.ips[0]), "10.0.0.2");

    uint64_t rev = revision_of(s, blue.id), lc = last_change(s);
    sp = node_spec("n1");
    REFUSED(VNET_EEXIST, "node 'n1' already exists in network 'blue'",
            vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)));
    sp = node_spec("x");
    sp.mac = mac("02:00:00:00:00:01");
    sp.has_mac = true;
    REFUSED(VNET_EEXIST, "MAC 02:00:00:00:00:01 is used by node 'n1' in network 'blue'",
            vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)));
    sp.mac = mac("01:00:5e:00:00:01");
    REFUSED(VNET_EINVAL, "MAC 01:00:5e:00:00:01 is multicast",
            vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)));
    sp.mac = mac("ff:ff:ff:ff:ff:ff");
    REFUSED(VNET_EINVAL, "broadcast", vnet_store_node_add(s, blue.id, &sp, NULL, err, 256));
    sp.mac = mac("00:00:00:00:00:00");
    REFUSED(VNET_EINVAL, "zero", vnet_store_node_add(s, blue.id, &sp, NULL, err, 256));
    static const struct {
        const char *ip;
        int code;
        const char *text;
    } bad_ips[] = {
        {"10.0.0.5", VNET_EEXIST, "IP 10.0.0.5 is used by node 'n2' in network 'blue'"},
        {"fd00::99", VNET_EEXIST, "IP fd00::99 is used by node 'n2' in network 'blue'"},
        {"10.0.1.5", VNET_EINVAL, "IP 10.0.1.5 is not in subnet 10.0.0.0/24 of network 'blue'"},
        {"10.0.0.0", VNET_EINVAL, "IP 10.0.0.0 is the network address of subnet 10.0.0.0/24"},
        {"10.0.0.255", VNET_EINVAL, "IP 10.0.0.255 is the broadcast address of subnet 10.0.0.0/24"},
        {"fd00::", VNET_EINVAL, "IP fd00:: is the network address of subnet fd00::/64"},
        {"fd01::1", VNET_EINVAL, "not in subnet fd00::/64"},
    };
    sp = node_spec("x");
    for (size_t i = 0; i < sizeof(bad_ips) / sizeof(bad_ips[0]); i++) {
        sp.ips[0] = ip(bad_ips[i].ip);
        REFUSED(bad_ips[i].code, bad_ips[i].text,
                vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)));
    }
    sp.ips[0] = ip("10.0.0.9");
    sp.ips[1] = ip("10.0.0.10");
    REFUSED(VNET_EINVAL, "at most one IPv4",
            vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)));
    sp.ips[1].family = 9;
    REFUSED(VNET_EINVAL, "unknown family 9",
            vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)));
    sp = node_spec("x");
    sp.phys.ip.family = 4;
    REFUSED(VNET_EINVAL, "bad physical endpoint",
            vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)));
    sp.phys.ip.family = 5;
    sp.phys.port = 80;
    REFUSED(VNET_EINVAL, "bad physical endpoint",
            vnet_store_node_add(s, blue.id, &sp, NULL, err, 256));
    sp = node_spec("a b");
    REFUSED(VNET_EINVAL, "invalid node name 'a b'",
            vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)));
    sp = node_spec("x");
    REFUSED(VNET_ENOENT, "no network with id 999",
            vnet_store_node_add(s, 999, &sp, NULL, err, sizeof(err)));
    ck_assert_int_eq(vnet_store_node_add(s, blue.id, NULL, NULL, NULL, 0), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_node_add(NULL, blue.id, &sp, NULL, NULL, 0), VNET_EINVAL);
    /* a network without an IPv6 subnet takes no IPv6 address */
    sp = node_spec("x");
    sp.ips[0] = ip("fd00::5");
    REFUSED(VNET_EINVAL, "IP fd00::5: network 'red' has no IPv6 subnet",
            vnet_store_node_add(s, red.id, &sp, NULL, err, sizeof(err)));
    ck_assert_uint_eq(revision_of(s, blue.id), rev);
    ck_assert_uint_eq(last_change(s), lc);
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "x", &got), VNET_ENOENT);

    /* names, MACs and IPs are unique per network only */
    sp = node_spec("n1");
    sp.mac = mac("02:00:00:00:00:01");
    sp.has_mac = true;
    sp.ips[0] = ip("10.0.0.5");
    ck_assert_int_eq(vnet_store_node_add(s, red.id, &sp, &n, err, sizeof(err)), 0);
    ck_assert_int_eq(n.ips[1].family, 0);
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "nosuch", &got), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "bad/name", &got), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_node_get_by_id(s, 12345, &got), VNET_ENOENT);

    /* assigned MACs: locally administered, unicast, distinct */
    struct vnet_mac macs[40];
    for (int i = 0; i < 40; i++) {
        char name[24];
        snprintf(name, sizeof(name), "m%d", i);
        n = mknode(s, red.id, name);
        macs[i] = n.mac;
        ck_assert_int_eq(n.mac.b[0], 0x02);
        for (int j = 0; j < i; j++)
            ck_assert(!vnet_mac_eq(&macs[i], &macs[j]));
    }
    struct names ns = {0};
    ck_assert_int_eq(vnet_store_node_list(s, blue.id, collect_node, &ns), 0);
    ck_assert_int_eq(ns.n, 3);
    ck_assert_str_eq(ns.v[0], "n1");
    ck_assert_str_eq(ns.v[2], "n3");
    ck_assert_int_eq(vnet_store_node_list(s, 999, collect_node, &ns), VNET_ENOENT);
    vnet_store_close(s);
}
END_TEST

START_TEST(t_assign)
{
    const char *p = store_uri("assign");
    char err[256];
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_network tiny = mknet(s, "tiny", "10.9.0.0/30", "fd09::/126");
    struct vnet_node_info a = mknode(s, tiny.id, "a"), b = mknode(s, tiny.id, "b");
    ck_assert_str_eq(ipstr(&a.ips[0]), "10.9.0.1");
    ck_assert_str_eq(ipstr(&b.ips[0]), "10.9.0.2");
    ck_assert_str_eq(ipstr(&a.ips[1]), "fd09::1");
    ck_assert_str_eq(ipstr(&b.ips[1]), "fd09::2");
    uint64_t rev = revision_of(s, tiny.id);
    struct vnet_node_spec sp = node_spec("c");
    REFUSED(VNET_ENOSPC, "no free IPv4 address left in subnet 10.9.0.0/30 of network 'tiny'",
            vnet_store_node_add(s, tiny.id, &sp, NULL, err, sizeof(err)));
    ck_assert_uint_eq(revision_of(s, tiny.id), rev);
    /* removing frees the address, and the lowest free one is taken again */
    ck_assert_int_eq(vnet_store_node_remove(s, tiny.id, "a", NULL, err, sizeof(err)), 0);
    struct vnet_node_info c = mknode(s, tiny.id, "c");
    ck_assert_str_eq(ipstr(&c.ips[0]), "10.9.0.1");
    ck_assert_str_eq(ipstr(&c.ips[1]), "fd09::1");
    struct vnet_network other = mknet(s, "other", "10.7.0.0/24", NULL);

    /* IPv6 /126: ::1 ::2 ::3 (no broadcast), then full */
    struct vnet_network v6 = mknet(s, "v6", NULL, "fd0a::/126");
    ck_assert_str_eq(ipstr(&mknode(s, v6.id, "a").ips[1]), "fd0a::1");
    ck_assert_str_eq(ipstr(&mknode(s, v6.id, "b").ips[1]), "fd0a::2");
    struct vnet_node_info d = mknode(s, v6.id, "c");
    ck_assert_str_eq(ipstr(&d.ips[1]), "fd0a::3");
    ck_assert_int_eq(d.ips[0].family, 0);
    sp = node_spec("d");
    REFUSED(VNET_ENOSPC, "no free IPv6 address left in subnet fd0a::/126 of network 'v6'",
            vnet_store_node_add(s, v6.id, &sp, NULL, err, sizeof(err)));

    /* gaps are filled lowest first, explicit addresses are skipped */
    struct vnet_network mid = mknet(s, "mid", "10.8.0.0/24", NULL);
    sp = node_spec("e3");
    sp.ips[0] = ip("10.8.0.3");
    ck_assert_int_eq(vnet_store_node_add(s, mid.id, &sp, NULL, err, sizeof(err)), 0);
    ck_assert_str_eq(ipstr(&mknode(s, mid.id, "a1").ips[0]), "10.8.0.1");
    ck_assert_str_eq(ipstr(&mknode(s, mid.id, "a2").ips[0]), "10.8.0.2");
    ck_assert_str_eq(ipstr(&mknode(s, mid.id, "a4").ips[0]), "10.8.0.4");
    sp = node_spec("e6");
    sp.ips[0] = ip("10.8.0.6");
    ck_assert_int_eq(vnet_store_node_add(s, mid.id, &sp, NULL, err, sizeof(err)), 0);
    ck_assert_str_eq(ipstr(&mknode(s, mid.id, "a5").ips[0]), "10.8.0.5");
    ck_assert_str_eq(ipstr(&mknode(s, mid.id, "a7").ips[0]), "10.8.0.7");
    /* another process frees an address: this handle must see it */
    if (on_sqlite) {
        raw_exec(p, "DELETE FROM nodes WHERE name = 'a2'");
        ck_assert_str_eq(ipstr(&mknode(s, mid.id, "b2").ips[0]), "10.8.0.2");
    }
    ck_assert_str_eq(ipstr(&mknode(s, mid.id, "a8").ips[0]), "10.8.0.8");
    /* a second handle removes one: the first handle must see it too */
    struct vnet_store *s2 = open_ok(p, 0);
    ck_assert_int_eq(vnet_store_node_remove(s2, mid.id, "a4", NULL, err, sizeof(err)), 0);
    vnet_store_close(s2);
    ck_assert_str_eq(ipstr(&mknode(s, mid.id, "b4").ips[0]), "10.8.0.4");
    ck_assert_str_eq(ipstr(&mknode(s, mid.id, "a9").ips[0]), "10.8.0.9");
    /* switching networks and back keeps the answers right */
    ck_assert_str_eq(ipstr(&mknode(s, other.id, "x").ips[0]), "10.7.0.1");
    ck_assert_str_eq(ipstr(&mknode(s, mid.id, "a10").ips[0]), "10.8.0.10");
    vnet_store_close(s);
}
END_TEST

START_TEST(t_move_observed)
{
    const char *p = store_uri("move");
    char err[256];
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", NULL);
    struct vnet_node_info a = mknode(s, blue.id, "a"), got;
    uint64_t rev = a.revision;
    struct vnet_endpoint e1 = ep("192.0.2.1:4789"), e6 = ep("[2001:db8::1]:4789"), none;
    memset(&none, 0, sizeof(none));
    struct vnet_node_info m;
    ck_assert_int_eq(vnet_store_node_move(s, blue.id, "a", &e1, &m, err, sizeof(err)), 0);
    ck_assert_uint_eq(m.revision, rev + 1);
    ck_assert(vnet_endpoint_eq(&m.phys, &e1));
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "a", &got), 0);
    ck_assert(node_eq(&got, &m));
    struct changes cs;
    ck_assert_int_eq(changes_since(s, blue.id, rev, &cs), 0);
    ck_assert_int_eq(cs.n, 1);
    ck_assert_int_eq(cs.c[0].op, VNET_CHANGE_NODE_PUT);
    ck_assert(node_eq(&cs.c[0].node, &m));
    /* the same endpoint again: nothing changes */
    ck_assert_int_eq(vnet_store_node_move(s, blue.id, "a", &e1, &m, err, sizeof(err)), 0);
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 1);
    ck_assert_int_eq(vnet_store_node_move(s, blue.id, "a", &e6, &m, err, sizeof(err)), 0);
    ck_assert(vnet_endpoint_eq(&m.phys, &e6));
    ck_assert_int_eq(vnet_store_node_move(s, blue.id, "a", &none, &m, err, sizeof(err)), 0);
    ck_assert_int_eq(m.phys.ip.family, 0);
    ck_assert_uint_eq(m.revision, rev + 3);
    REFUSED(VNET_ENOENT, "no node 'zz' in network 'blue'",
            vnet_store_node_move(s, blue.id, "zz", &e1, NULL, err, sizeof(err)));
    REFUSED(VNET_ENOENT, "no network with id 999",
            vnet_store_node_move(s, 999, "a", &e1, NULL, err, sizeof(err)));
    struct vnet_endpoint bad = e1;
    bad.port = 0;
    REFUSED(VNET_EINVAL, "bad physical endpoint",
            vnet_store_node_move(s, blue.id, "a", &bad, NULL, err, sizeof(err)));
    ck_assert_int_eq(vnet_store_node_move(s, blue.id, "a", NULL, NULL, NULL, 0), VNET_EINVAL);
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 3);

    /* observed endpoints */
    struct vnet_endpoint o1 = ep("198.51.100.1:5555"), o2 = ep("198.51.100.1:5556");
    ck_assert_int_eq(vnet_store_node_set_observed(s, a.id, &o1, &m), 0);
    ck_assert_int_eq(m.state, VNET_NODE_ACTIVE);
    ck_assert(vnet_endpoint_eq(&m.observed, &o1));
    ck_assert_uint_eq(m.revision, rev + 4);
    ck_assert_int_eq(vnet_store_node_set_observed(s, a.id, &o1, &m), 0);
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 4); /* unchanged: no record */
    ck_assert_uint_eq(m.revision, rev + 4);
    ck_assert_int_eq(vnet_store_node_set_observed(s, a.id, &o2, NULL), 0);
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 5);
    ck_assert_int_eq(changes_since(s, blue.id, rev + 3, &cs), 0);
    ck_assert_int_eq(cs.n, 2);
    ck_assert(vnet_endpoint_eq(&cs.c[1].node.observed, &o2));
    ck_assert_int_eq(cs.c[1].node.state, VNET_NODE_ACTIVE);
    ck_assert_int_eq(vnet_store_node_set_observed(s, 999, &o1, NULL), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_node_set_observed(s, a.id, &none, NULL), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_node_set_observed(s, a.id, NULL, NULL), VNET_EINVAL);
    vnet_store_close(s);
}
END_TEST

START_TEST(t_remove)
{
    const char *p = store_uri("remove");
    char err[256];
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", "fd00::/64");
    struct vnet_node_info a = mknode(s, blue.id, "a"), b = mknode(s, blue.id, "b"), got;
    struct vnet_endpoint o = ep("198.51.100.1:5555");
    ck_assert_int_eq(vnet_store_node_set_observed(s, b.id, &o, &b), 0);
    uint64_t rev = 0;
    ck_assert_int_eq(vnet_store_node_remove(s, blue.id, "b", &rev, err, sizeof(err)), 0);
    ck_assert_uint_eq(rev, b.revision + 1);
    ck_assert_uint_eq(revision_of(s, blue.id), rev);
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "b", &got), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_node_get_by_id(s, b.id, &got), VNET_ENOENT);
    struct changes cs;
    ck_assert_int_eq(changes_since(s, blue.id, rev - 1, &cs), 0);
    ck_assert_int_eq(cs.n, 1);
    ck_assert_int_eq(cs.c[0].op, VNET_CHANGE_NODE_DEL);
    struct vnet_node_info last = b;
    last.state = VNET_NODE_REMOVED;
    last.revision = rev;
    ck_assert(node_eq(&cs.c[0].node, &last));
    REFUSED(VNET_ENOENT, "no node 'b' in network 'blue'",
            vnet_store_node_remove(s, blue.id, "b", NULL, err, sizeof(err)));
    REFUSED(VNET_EINVAL, "invalid node name",
            vnet_store_node_remove(s, blue.id, "", NULL, err, sizeof(err)));
    ck_assert_uint_eq(revision_of(s, blue.id), rev);
    /* ids are never reused, even for the highest one */
    struct vnet_node_info c = mknode(s, blue.id, "c");
    ck_assert_uint_gt(c.id, b.id);
    ck_assert_str_eq(ipstr(&c.ips[0]), ipstr(&b.ips[0]));
    ck_assert_uint_ne(c.id, a.id);
    vnet_store_close(s);
}
END_TEST

START_TEST(t_changes)
{
    const char *p = store_uri("changes");
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", NULL);
    struct vnet_network red = mknet(s, "red", "10.1.0.0/24", NULL);
    struct vnet_node_info nodes[6];
    for (int i = 0; i < 6; i++) {
        char name[24];
        snprintf(name, sizeof(name), "n%d", i);
        nodes[i] = mknode(s, i % 2 ? red.id : blue.id, name);
    }
    struct changes cs;
    ck_assert_int_eq(changes_since(s, blue.id, 0, &cs), 0);
    ck_assert_int_eq(cs.n, 4);
    for (int i = 0; i < cs.n; i++) {
        ck_assert_uint_eq(cs.c[i].revision, (uint64_t)i + 1);
        ck_assert_uint_eq(cs.c[i].network_id, blue.id);
    }
    ck_assert(node_eq(&cs.c[1].node, &nodes[0]));
    ck_assert(node_eq(&cs.c[2].node, &nodes[2]));
    ck_assert(node_eq(&cs.c[3].node, &nodes[4]));
    ck_assert_int_eq(changes_since(s, blue.id, 2, &cs), 0);
    ck_assert_int_eq(cs.n, 2);
    ck_assert_uint_eq(cs.c[0].revision, 3);
    ck_assert_int_eq(changes_since(s, blue.id, 4, &cs), 0);
    ck_assert_int_eq(cs.n, 0);
    ck_assert_int_eq(changes_since(s, blue.id, 5, &cs), VNET_ERANGE);
    ck_assert_int_eq(changes_since(s, 999, 0, &cs), VNET_ENOENT);
    memset(&cs, 0, sizeof(cs));
    cs.stop_at = 2;
    ck_assert_int_eq(vnet_store_changes_since(s, red.id, 0, collect_change, &cs), 7);
    ck_assert_int_eq(cs.n, 2);
    ck_assert_int_eq(vnet_store_changes_since(s, red.id, 0, NULL, NULL), VNET_EINVAL);
    vnet_store_close(s);
}
END_TEST

START_TEST(t_retention)
{
    const char *p = store_uri("retention");
    struct vnet_store *s = open_ok(p, 5);
    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", NULL);
    struct vnet_network red = mknet(s, "red", "10.1.0.0/24", NULL);
    for (int i = 0; i < 9; i++) {
        char name[24];
        snprintf(name, sizeof(name), "n%d", i);
        mknode(s, blue.id, name);
    }
    ck_assert_uint_eq(revision_of(s, blue.id), 10);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM changes WHERE network_id = %llu",
             (unsigned long long)blue.id);
    if (on_sqlite)
        ck_assert_int_eq(raw_int(p, sql), 5); /* revisions 6..10 */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM changes WHERE network_id = %llu",
             (unsigned long long)red.id);
    if (on_sqlite)
        ck_assert_int_eq(raw_int(p, sql), 1); /* other networks keep theirs */
    struct changes cs;
    ck_assert_int_eq(changes_since(s, blue.id, 5, &cs), 0);
    ck_assert_int_eq(cs.n, 5);
    ck_assert_uint_eq(cs.c[0].revision, 6);
    ck_assert_uint_eq(cs.c[4].revision, 10);
    ck_assert_int_eq(changes_since(s, blue.id, 4, &cs), VNET_ERANGE);
    ck_assert_int_eq(cs.n, 0);
    ck_assert_int_eq(changes_since(s, blue.id, 0, &cs), VNET_ERANGE);
    ck_assert_int_eq(changes_since(s, blue.id, 9, &cs), 0);
    ck_assert_int_eq(cs.n, 1);
    ck_assert_int_eq(changes_since(s, blue.id, 10, &cs), 0);
    ck_assert_int_eq(changes_since(s, blue.id, 11, &cs), VNET_ERANGE);
    vnet_store_close(s);
}
END_TEST

START_TEST(t_poll_and_delete)
{
    const char *p = store_uri("poll");
    char err[256];
    struct vnet_store *a = open_ok(p, 0), *b = open_ok(p, 0);
    uint64_t l0 = last_change(b);
    ck_assert_uint_eq(l0, 0);
    struct vnet_network blue = mknet(a, "blue", "10.0.0.0/24", NULL);
    mknode(a, blue.id, "n1");
    uint64_t l1 = last_change(b); /* b sees a's commits */
    ck_assert_uint_gt(l1, l0);
    struct names ns = {0};
    ck_assert_int_eq(vnet_store_changed_networks(b, l0, collect_id, &ns), 0);
    ck_assert_int_eq(ns.n, 1);
    ck_assert_uint_eq(ns.ids[0], blue.id);
    struct vnet_network red = mknet(a, "red", NULL, NULL);
    mknode(a, red.id, "r1");
    mknode(a, red.id, "r2");
    memset(&ns, 0, sizeof(ns));
    ck_assert_int_eq(vnet_store_changed_networks(b, l1, collect_id, &ns), 0);
    ck_assert_int_eq(ns.n, 1);
    ck_assert_uint_eq(ns.ids[0], red.id);
    memset(&ns, 0, sizeof(ns));
    ck_assert_int_eq(vnet_store_changed_networks(b, l0, collect_id, &ns), 0);
    ck_assert_int_eq(ns.n, 2);
    uint64_t l2 = last_change(b);
    memset(&ns, 0, sizeof(ns));
    ck_assert_int_eq(vnet_store_changed_networks(b, l2, collect_id, &ns), 0);
    ck_assert_int_eq(ns.n, 0);

    /* delete: nodes and log go, the id is reported once more */
    struct vnet_node_info n1;
    ck_assert_int_eq(vnet_store_node_get(b, blue.id, "n1", &n1), 0);
    ck_assert_int_eq(vnet_store_network_delete(a, blue.id, err, sizeof(err)), 0);
    ck_assert_uint_gt(last_change(b), l2);
    memset(&ns, 0, sizeof(ns));
    ck_assert_int_eq(vnet_store_changed_networks(b, l2, collect_id, &ns), 0);
    ck_assert_int_eq(ns.n, 1);
    ck_assert_uint_eq(ns.ids[0], blue.id);
    struct vnet_network n;
    ck_assert_int_eq(vnet_store_network_get_by_id(b, blue.id, &n), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_node_get_by_id(b, n1.id, NULL), VNET_ENOENT);
    struct changes cs;
    ck_assert_int_eq(changes_since(b, blue.id, 0, &cs), VNET_ENOENT);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM nodes WHERE network_id = %llu",
             (unsigned long long)blue.id);
    if (on_sqlite)
        ck_assert_int_eq(raw_int(p, sql), 0);
    REFUSED(VNET_ENOENT, "no network with id",
            vnet_store_network_delete(a, blue.id, err, sizeof(err)));
    ck_assert_int_eq(vnet_store_last_change(a, NULL), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_changed_networks(a, 0, NULL, NULL), VNET_EINVAL);
    vnet_store_close(a);
    vnet_store_close(b);
}
END_TEST

/* A request that fails after it has written rows leaves nothing behind. */
START_TEST(t_atomic)
{
    char err[256];
    struct vnet_store *s = open_fault("atomic");
    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", NULL);
    mknode(s, blue.id, "a");
    uint64_t rev = revision_of(s, blue.id), lc = last_change(s);
    fail_appends = true;
    struct vnet_node_spec sp = node_spec("b");
    REFUSED(VNET_EIO, "injected failure", vnet_store_node_add(s, blue.id, &sp, NULL, err, 256));
    struct vnet_node_info got;
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "b", &got), VNET_ENOENT);
    ck_assert_uint_eq(revision_of(s, blue.id), rev);
    ck_assert_uint_eq(last_change(s), lc);
    struct vnet_endpoint e = ep("192.0.2.9:4789");
    REFUSED(VNET_EIO, "injected failure",
            vnet_store_node_move(s, blue.id, "a", &e, NULL, err, sizeof(err)));
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "a", &got), 0);
    ck_assert_int_eq(got.phys.ip.family, 0);
    REFUSED(VNET_EIO, "injected failure",
            vnet_store_node_remove(s, blue.id, "a", NULL, err, sizeof(err)));
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "a", &got), 0);
    REFUSED(VNET_EIO, "injected failure", vnet_store_network_delete(s, blue.id, err, 256));
    ck_assert_uint_eq(revision_of(s, blue.id), rev);
    struct vnet_network_spec ns = net_spec("red", NULL, NULL);
    REFUSED(VNET_EIO, "injected failure", vnet_store_network_create(s, &ns, NULL, err, 256));
    struct vnet_network n;
    ck_assert_int_eq(vnet_store_network_get(s, 0, "red", &n), VNET_ENOENT);
    ck_assert_uint_eq(last_change(s), lc);
    fail_appends = false;
    struct vnet_node_info b = mknode(s, blue.id, "b");
    ck_assert_uint_eq(b.revision, rev + 1);
    ck_assert_str_eq(ipstr(&b.ips[0]), "10.0.0.2"); /* the failed add's address is free */
    vnet_store_close(s);
}
END_TEST

/* Schema version 1 as the first release wrote it. Kept here, not taken from the library, so
 * the test checks migration of what v1 files really hold. */
static const char schema_v1[] =
    "CREATE TABLE subscribers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
    " created INTEGER NOT NULL) STRICT;"
    "INSERT INTO subscribers (id, name, created) VALUES (1, 'admin', 0);"
    "CREATE TABLE networks (id INTEGER PRIMARY KEY AUTOINCREMENT, subscriber_id INTEGER NOT NULL"
    " REFERENCES subscribers (id), name TEXT NOT NULL, vni INTEGER NOT NULL UNIQUE CHECK (vni"
    " BETWEEN 1 AND 16777215), subnet4 TEXT, subnet6 TEXT, mtu INTEGER NOT NULL, revision"
    " INTEGER NOT NULL, UNIQUE (subscriber_id, name)) STRICT;"
    "CREATE TABLE nodes (id INTEGER PRIMARY KEY AUTOINCREMENT, network_id INTEGER NOT NULL"
    " REFERENCES networks (id) ON DELETE CASCADE, name TEXT NOT NULL, pubkey BLOB CHECK (pubkey"
    " IS NULL OR length(pubkey) = 32), mac BLOB NOT NULL CHECK (length(mac) = 6), ip4 BLOB CHECK"
    " (ip4 IS NULL OR length(ip4) = 4), ip6 BLOB CHECK (ip6 IS NULL OR length(ip6) = 16),"
    " phys_ip BLOB CHECK (phys_ip IS NULL OR length(phys_ip) IN (4, 16)), phys_port INTEGER NOT"
    " NULL DEFAULT 0, observed_ip BLOB CHECK (observed_ip IS NULL OR length(observed_ip) IN (4,"
    " 16)), observed_port INTEGER NOT NULL DEFAULT 0, state INTEGER NOT NULL DEFAULT 0, revision"
    " INTEGER NOT NULL, UNIQUE (network_id, name), UNIQUE (network_id, mac), UNIQUE (network_id,"
    " ip4), UNIQUE (network_id, ip6)) STRICT;"
    "CREATE TABLE changes (id INTEGER PRIMARY KEY AUTOINCREMENT, network_id INTEGER NOT NULL,"
    " revision INTEGER NOT NULL, op INTEGER NOT NULL, payload BLOB) STRICT;"
    "CREATE INDEX changes_network_revision ON changes (network_id, revision);"
    "PRAGMA application_id = 1447970132;"
    "PRAGMA user_version = 1;";

static void make_v1(const char *p, struct vnet_node_info *old)
{
    sqlite3 *db = raw_open(p);
    raw_exec_db(db, schema_v1);
    raw_exec_db(db, "INSERT INTO networks VALUES (5, 1, 'legacy', 7, '10.1.0.0/24', NULL, 1400, 2);"
                    "INSERT INTO nodes (id, network_id, name, mac, ip4, phys_ip, phys_port, state,"
                    " revision) VALUES (3, 5, 'old', x'020000000a0b', x'0a010001', x'c0000201',"
                    " 4789, 0, 2);"
                    "INSERT INTO changes (network_id, revision, op, payload) VALUES (5, 1, 3, "
                    "NULL);");
    memset(old, 0, sizeof(*old));
    old->id = 3;
    old->network_id = 5;
    snprintf(old->name, sizeof(old->name), "old");
    old->mac = mac("02:00:00:00:0a:0b");
    old->ips[0] = ip("10.1.0.1");
    old->phys = ep("192.0.2.1:4789");
    old->revision = 2;
    uint8_t buf[VNET_STORE_NODE_ENC_MAX];
    int len = vnet_store_node_encode(old, buf, sizeof(buf));
    ck_assert_int_gt(len, 0);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "INSERT INTO changes (network_id, revision, op, "
                                        "payload) VALUES (5, 2, 1, ?1)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(st, 1, buf, len, SQLITE_TRANSIENT);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

START_TEST(t_migrate_v1)
{
    const char *p = path_of("v1.db");
    char err[256];
    struct vnet_node_info old, got;
    make_v1(p, &old);
    ck_assert_int_eq(raw_int(p, "PRAGMA user_version"), 1);
    /* read-only cannot migrate: refused, file untouched */
    struct vnet_store_opts ro = {0, 100, true};
    struct vnet_store *s = NULL;
    REFUSED(VNET_EVERSION, "open it read-write once to migrate",
            vnet_store_open(p, &ro, &s, err, sizeof(err)));
    ck_assert_int_eq(raw_int(p, "PRAGMA user_version"), 1);

    s = open_ok(p, 0);
    ck_assert_int_eq(raw_int(p, "PRAGMA user_version"), VNET_STORE_SCHEMA_VERSION);
    ck_assert_int_eq(raw_int(p, "SELECT count(*) FROM pragma_table_info('subscribers') WHERE "
                                "name = 'token_hash'"),
                     1);
    ck_assert_int_eq(raw_int(p, "SELECT count(*) FROM pragma_table_info('nodes') WHERE "
                                "name = 'join_token_hash'"),
                     1);
    ck_assert_int_eq(raw_int(p, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                                "name = 'nodes_join_token_hash'"),
                     1);
    struct vnet_network n;
    ck_assert_int_eq(vnet_store_network_get(s, 0, "legacy", &n), 0);
    ck_assert_uint_eq(n.id, 5);
    ck_assert_uint_eq(n.vni, 7);
    ck_assert_uint_eq(n.mtu, 1400);
    ck_assert_uint_eq(n.revision, 2);
    ck_assert_uint_eq(n.mode, VNET_MODE_PLAIN); /* made before encryption existed */
    ck_assert_int_eq(vnet_store_node_get(s, 5, "old", &got), 0);
    ck_assert(node_eq(&got, &old));
    struct changes cs;
    ck_assert_int_eq(changes_since(s, 5, 0, &cs), 0);
    ck_assert_int_eq(cs.n, 2);
    ck_assert(node_eq(&cs.c[1].node, &old));
    struct vnet_node_info nn = mknode(s, 5, "new");
    ck_assert_str_eq(ipstr(&nn.ips[0]), "10.1.0.2");
    ck_assert_uint_eq(nn.revision, 3);
    ck_assert_uint_gt(nn.id, 3);
    vnet_store_close(s);
    /* opening again does not migrate again */
    s = open_ok(p, 0);
    ck_assert_int_eq(vnet_store_node_get(s, 5, "new", &got), 0);
    vnet_store_close(s);
}
END_TEST

/* Schema version 2: v1 plus this step, as the second release wrote it (kept here too). */
static const char schema_v2_step[] =
    "ALTER TABLE subscribers ADD COLUMN token_hash BLOB;"
    "ALTER TABLE nodes ADD COLUMN join_token_hash BLOB;"
    "CREATE UNIQUE INDEX subscribers_token_hash ON subscribers (token_hash)"
    " WHERE token_hash IS NOT NULL;"
    "CREATE UNIQUE INDEX nodes_join_token_hash ON nodes (join_token_hash)"
    " WHERE join_token_hash IS NOT NULL;"
    "PRAGMA user_version = 2;";

/* Fill 32 bytes with @v: test keys and token hashes. */
static const uint8_t *fill32(uint8_t *b, int v)
{
    memset(b, v, 32);
    return b;
}

static struct vnet_subscriber mksub(struct vnet_store *s, const char *name, const uint8_t *hash)
{
    struct vnet_subscriber sub;
    char err[256] = "";
    int rc = vnet_store_subscriber_create(s, name, hash, &sub, err, sizeof(err));
    ck_assert_msg(rc == 0, "subscriber %s: %s (%s)", name, vnet_err_name(rc), err);
    return sub;
}

/* Issue 13: one subscriber's subnets do not overlap (the other network is named); other
 * subscribers' may; a deleted network frees its subnet; names say which characters they may
 * hold. */
START_TEST(t_subnet_rules)
{
    char err[256];
    struct vnet_store *s = open_ok(store_uri("overlap"), 0);
    struct vnet_network blue = mknet(s, "blue", "10.20.0.0/16", "fd20::/48");
    uint64_t lc = last_change(s);
    struct vnet_network_spec sp = net_spec("red", "10.20.5.0/24", NULL); /* inside blue's */
    REFUSED(VNET_EEXIST, "subnet 10.20.5.0/24 overlaps subnet 10.20.0.0/16 of network 'blue'",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp = net_spec("red", "10.0.0.0/8", NULL); /* around blue's */
    REFUSED(VNET_EEXIST, "subnet 10.0.0.0/8 overlaps subnet 10.20.0.0/16 of network 'blue'",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp = net_spec("red", "10.21.0.0/16", "fd20:0:0:7::/64"); /* IPv6 overlaps */
    REFUSED(VNET_EEXIST, "subnet fd20:0:0:7::/64 overlaps subnet fd20::/48 of network 'blue'",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    ck_assert_int_eq(last_change(s), lc); /* refusals leave no trace */
    struct vnet_network red = mknet(s, "red", "10.21.0.0/16", "fd21::/48"); /* adjacent */
    mknet(s, "green", NULL, NULL); /* no subnet overlaps nothing */
    mknet(s, "v6only", NULL, "fd22::/64");

    /* another subscriber chooses its addresses on its own */
    uint8_t h[32];
    memset(h, 9, sizeof(h));
    struct vnet_subscriber acme = mksub(s, "acme", h);
    sp = net_spec("blue", "10.20.0.0/16", "fd20::/48");
    sp.subscriber_id = acme.id;
    ck_assert_int_eq(vnet_store_network_create(s, &sp, NULL, err, sizeof(err)), 0);
    sp.name = "red";
    sp.subnet6 = pfx("fd23::/48");
    REFUSED(VNET_EEXIST, "subnet 10.20.0.0/16 overlaps subnet 10.20.0.0/16 of network 'blue'",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));

    /* a deleted network's subnet is free again */
    ck_assert_int_eq(vnet_store_network_delete(s, red.id, err, sizeof(err)), 0);
    mknet(s, "red2", "10.21.128.0/17", NULL);
    (void)blue;

    /* names: which characters, for every kind of name */
    sp = net_spec("a b", NULL, NULL);
    REFUSED(VNET_EINVAL, "invalid network name 'a b': " VNET_NAME_RULE,
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp = net_spec("caf\xc3\xa9", NULL, NULL);
    REFUSED(VNET_EINVAL, "A-Z a-z 0-9 . _ -",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    struct vnet_node_spec nsp = node_spec("node 1");
    REFUSED(VNET_EINVAL, "invalid node name 'node 1': " VNET_NAME_RULE,
            vnet_store_node_add(s, blue.id, &nsp, NULL, err, sizeof(err)));
    REFUSED(VNET_EINVAL, "invalid subscriber name 'x/y': " VNET_NAME_RULE,
            vnet_store_subscriber_create(s, "x/y", NULL, NULL, err, sizeof(err)));
    ck_assert(vnet_name_valid("blue-1.x_2") && !vnet_name_valid("a b") && !vnet_name_valid(".x") &&
              !vnet_name_valid(""));
    vnet_store_close(s);
}
END_TEST

START_TEST(t_migrate_v2)
{
    const char *p = path_of("v2.db");
    char err[256];
    struct vnet_node_info legacy_old;
    make_v1(p, &legacy_old); /* network 5 'legacy', node 3 'old' */
    raw_exec(p, schema_v2_step);
    /* what a v2 library could have written: a subscriber with a token, a node with a key, a
     * node with a join token (v2 had no expiry), and one key twice in a network */
    raw_exec(
        p, "INSERT INTO subscribers (id, name, created, token_hash) VALUES (2, 'acme', 0,"
           " CAST(zeroblob(31) || x'01' AS BLOB));"
           "INSERT INTO networks VALUES (6, 2, 'dup', 8, NULL, NULL, 1450, 3);"
           "INSERT INTO nodes (id, network_id, name, pubkey, mac, state, revision) VALUES"
           " (10, 5, 'keyed', CAST(zeroblob(31) || x'0a' AS BLOB), x'02000000000a', 0, 2),"
           " (11, 5, 'joining', NULL, x'02000000000b', 0, 2),"
           " (12, 6, 'd1', CAST(zeroblob(31) || x'0d' AS BLOB), x'02000000000c', 0, 2),"
           " (13, 6, 'd2', CAST(zeroblob(31) || x'0d' AS BLOB), x'02000000000d', 0, 3);"
           "UPDATE nodes SET join_token_hash = CAST(zeroblob(31) || x'0b' AS BLOB) WHERE id = 11;");
    ck_assert_int_eq(raw_int(p, "PRAGMA user_version"), 2);

    struct vnet_store *s = open_ok(p, 0);
    ck_assert_int_eq(raw_int(p, "PRAGMA user_version"), 3);
    ck_assert_int_eq(raw_int(p, "SELECT count(*) FROM pragma_table_info('networks') WHERE "
                                "name = 'mode'"),
                     1);
    ck_assert_int_eq(raw_int(p, "SELECT count(*) FROM pragma_table_info('nodes') WHERE "
                                "name = 'join_token_expires'"),
                     1);
    ck_assert_int_eq(raw_int(p, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                                "name = 'nodes_network_pubkey'"),
                     1);
    /* existing networks are plain, new ones secure */
    struct vnet_network n;
    ck_assert_int_eq(vnet_store_network_get_by_id(s, 5, &n), 0);
    ck_assert_uint_eq(n.mode, VNET_MODE_PLAIN);
    ck_assert_uint_eq(n.revision, 2);
    ck_assert_int_eq(vnet_store_network_get(s, 2, "dup", &n), 0);
    ck_assert_uint_eq(n.mode, VNET_MODE_PLAIN);
    ck_assert_uint_eq(mknet(s, "fresh", NULL, NULL).mode, VNET_MODE_SECURE);
    /* the v2 data is there and usable */
    uint8_t h[32], k[32];
    h[31] = 0;
    struct vnet_subscriber sub;
    memset(h, 0, 32);
    h[31] = 1;
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, h, &sub), 0);
    ck_assert_str_eq(sub.name, "acme");
    ck_assert(sub.has_token && !sub.admin);
    struct vnet_node_info got;
    memset(k, 0, 32);
    k[31] = 0x0a;
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, 5, k, &got), 0);
    ck_assert_str_eq(got.name, "keyed");
    ck_assert_int_eq(vnet_store_node_get(s, 5, "old", &got), 0);
    ck_assert(node_eq(&got, &legacy_old));
    /* a v2 join token has no expiry */
    memset(h, 0, 32);
    h[31] = 0x0b;
    fill32(k, 0x5b);
    ck_assert_int_eq(vnet_store_node_join(s, h, k, UINT64_MAX, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got.id, 11);
    ck_assert_uint_eq(got.revision, 3);
    /* a key held twice (v2 did not check) authenticates neither node */
    memset(k, 0, 32);
    k[31] = 0x0d;
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, 6, k, &got), VNET_EEXIST);
    ck_assert_int_eq(vnet_store_node_revoke(s, 13), 0);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, 6, k, &got), 0);
    ck_assert_uint_eq(got.id, 12);
    struct changes cs;
    ck_assert_int_eq(changes_since(s, 5, 0, &cs), 0);
    ck_assert_int_eq(cs.n, 3);
    ck_assert_uint_eq(cs.c[2].node.id, 11);
    vnet_store_close(s);
}
END_TEST

static int collect_sub(const struct vnet_subscriber *sub, void *arg)
{
    struct names *ns = arg;
    if (ns->n < 16) {
        snprintf(ns->v[ns->n], VNET_NAME_MAX, "%s", sub->name);
        ns->ids[ns->n] = sub->id;
    }
    ns->n++;
    return 0;
}

START_TEST(t_subscribers)
{
    const char *p = store_uri("subs");
    char err[256];
    uint8_t h1[32], h2[32], h3[32], zero[32] = {0};
    fill32(h1, 1);
    fill32(h2, 2);
    fill32(h3, 3);
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_subscriber sub;

    /* the admin is there from the start, without a token */
    ck_assert_int_eq(vnet_store_subscriber_get(s, "admin", &sub), 0);
    ck_assert_uint_eq(sub.id, VNET_SUBSCRIBER_ADMIN);
    ck_assert(sub.admin && !sub.has_token);
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, h1, &sub), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, zero, &sub), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, NULL, &sub), VNET_EINVAL);

    struct vnet_subscriber acme = mksub(s, "acme", h1);
    ck_assert_uint_eq(acme.id, 2);
    ck_assert(!acme.admin && acme.has_token);
    ck_assert_str_eq(acme.name, "acme");
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, h1, &sub), 0);
    ck_assert_uint_eq(sub.id, acme.id);
    ck_assert_int_eq(vnet_store_subscriber_get(s, "acme", &sub), 0);
    ck_assert(sub.id == acme.id && sub.has_token);
    ck_assert_int_eq(vnet_store_subscriber_get_by_id(s, acme.id, &sub), 0);
    ck_assert_str_eq(sub.name, "acme");
    ck_assert_int_eq(vnet_store_subscriber_get(s, "nosuch", &sub), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_subscriber_get(s, "bad name", &sub), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_subscriber_get_by_id(s, 99, &sub), VNET_ENOENT);
    /* only the hash is stored */
    if (on_sqlite)
        ck_assert_int_eq(raw_int(p,
                                 "SELECT count(*) FROM subscribers WHERE name = 'acme' AND "
                                 "token_hash = x'"
                                 "0101010101010101010101010101010101010101010101010101010101010101"
                                 "'"),
                         1);

    REFUSED(VNET_EEXIST, "subscriber 'acme' already exists",
            vnet_store_subscriber_create(s, "acme", h2, NULL, err, sizeof(err)));
    REFUSED(VNET_EEXIST, "subscriber 'admin' already exists",
            vnet_store_subscriber_create(s, "admin", NULL, NULL, err, sizeof(err)));
    REFUSED(VNET_EEXIST, "the token is already in use",
            vnet_store_subscriber_create(s, "globex", h1, NULL, err, sizeof(err)));
    ck_assert_msg(!strstr(err, "acme"), "the refusal names the token's owner: %s", err);
    REFUSED(VNET_EINVAL, "invalid subscriber name",
            vnet_store_subscriber_create(s, "-x", h2, NULL, err, sizeof(err)));
    REFUSED(VNET_EINVAL, "all zeros",
            vnet_store_subscriber_create(s, "globex", zero, NULL, err, sizeof(err)));
    ck_assert_int_eq(vnet_store_subscriber_create(NULL, "x", NULL, NULL, NULL, 0), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_subscriber_get(s, "globex", NULL), VNET_ENOENT);

    struct vnet_subscriber nokey = mksub(s, "nokey", NULL);
    ck_assert(!nokey.has_token);
    struct names ns = {0};
    ck_assert_int_eq(vnet_store_subscriber_list(s, collect_sub, &ns), 0);
    ck_assert_int_eq(ns.n, 3);
    ck_assert_str_eq(ns.v[0], "admin");
    ck_assert_str_eq(ns.v[1], "acme");
    ck_assert_str_eq(ns.v[2], "nokey");
    ck_assert_int_eq(vnet_store_subscriber_list(s, NULL, NULL), VNET_EINVAL);

    /* rotation: the old token stops working at once */
    ck_assert_int_eq(vnet_store_subscriber_set_token(s, acme.id, h2), 0);
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, h1, &sub), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, h2, &sub), 0);
    ck_assert_uint_eq(sub.id, acme.id);
    ck_assert_int_eq(vnet_store_subscriber_set_token(s, acme.id, h2), 0); /* the same again */
    ck_assert_int_eq(vnet_store_subscriber_set_token(s, nokey.id, h2), VNET_EEXIST);
    ck_assert_int_eq(vnet_store_subscriber_get(s, "nokey", &sub), 0);
    ck_assert(!sub.has_token);
    ck_assert_int_eq(vnet_store_subscriber_set_token(s, 99, h3), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_subscriber_set_token(s, acme.id, zero), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_subscriber_set_token(s, acme.id, NULL), 0); /* cleared */
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, h2, &sub), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_subscriber_get(s, "acme", &sub), 0);
    ck_assert(!sub.has_token);
    /* h1 is free again */
    ck_assert_int_eq(vnet_store_subscriber_set_token(s, nokey.id, h1), 0);
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, h1, &sub), 0);
    ck_assert_uint_eq(sub.id, nokey.id);

    /* the admin's token */
    ck_assert_int_eq(vnet_store_admin_token_set(s, h1), VNET_EEXIST);
    ck_assert_int_eq(vnet_store_admin_token_set(s, h3), 0);
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, h3, &sub), 0);
    ck_assert(sub.admin && sub.has_token && sub.id == VNET_SUBSCRIBER_ADMIN);

    /* deletion: not while it owns networks, never the admin, ids never reused */
    struct vnet_network_spec sp = net_spec("blue", NULL, NULL);
    sp.subscriber_id = acme.id;
    struct vnet_network blue;
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &blue, err, sizeof(err)), 0);
    ck_assert_int_eq(vnet_store_subscriber_delete(s, acme.id), VNET_EBUSY);
    ck_assert_int_eq(vnet_store_subscriber_get(s, "acme", &sub), 0);
    ck_assert_int_eq(vnet_store_network_delete(s, blue.id, err, sizeof(err)), 0);
    ck_assert_int_eq(vnet_store_subscriber_delete(s, acme.id), 0);
    ck_assert_int_eq(vnet_store_subscriber_get(s, "acme", &sub), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_subscriber_delete(s, acme.id), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_subscriber_delete(s, VNET_SUBSCRIBER_ADMIN), VNET_EPERM);
    ck_assert_int_eq(vnet_store_subscriber_get(s, "admin", &sub), 0);
    sp.name = "red";
    REFUSED(VNET_ENOENT, "no subscriber with id 2",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    struct vnet_subscriber again = mksub(s, "acme", NULL);
    ck_assert_uint_gt(again.id, nokey.id);
    vnet_store_close(s);

    /* everything persists */
    s = open_ok(p, 0);
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, h3, &sub), 0);
    ck_assert(sub.admin);
    ck_assert_int_eq(vnet_store_subscriber_by_token(s, h1, &sub), 0);
    ck_assert_str_eq(sub.name, "nokey");
    vnet_store_close(s);
}
END_TEST

START_TEST(t_ownership)
{
    char err[256];
    uint8_t h[32];
    struct vnet_store *s = open_ok(store_uri("own"), 0);
    struct vnet_subscriber acme = mksub(s, "acme", fill32(h, 1));
    struct vnet_subscriber globex = mksub(s, "globex", fill32(h, 2));
    struct vnet_network_spec sp = net_spec("blue", "10.0.0.0/24", NULL);
    struct vnet_network ablue, gblue, gred, n;
    sp.subscriber_id = acme.id;
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &ablue, err, sizeof(err)), 0);
    sp.subscriber_id = globex.id;
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &gblue, err, sizeof(err)), 0);
    ck_assert_uint_ne(ablue.id, gblue.id);
    ck_assert_uint_ne(ablue.vni, gblue.vni);
    ck_assert_uint_eq(gblue.subscriber_id, globex.id);
    REFUSED(VNET_EEXIST, "network 'blue' already exists for subscriber 'globex'",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp.name = "red";
    sp.subnet4 = pfx("10.1.0.0/24"); /* one subscriber's subnets do not overlap */
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &gred, err, sizeof(err)), 0);

    /* each subscriber sees its own */
    ck_assert_int_eq(vnet_store_network_get(s, acme.id, "blue", &n), 0);
    ck_assert(net_eq(&n, &ablue));
    ck_assert_int_eq(vnet_store_network_get(s, globex.id, "blue", &n), 0);
    ck_assert(net_eq(&n, &gblue));
    ck_assert_int_eq(vnet_store_network_get(s, acme.id, "red", &n), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_network_get(s, VNET_SUBSCRIBER_ADMIN, "blue", &n), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_network_get(s, 0, "red", &n), 0); /* 0: any subscriber */
    ck_assert(net_eq(&n, &gred));
    struct names ns = {0};
    ck_assert_int_eq(vnet_store_network_list(s, acme.id, collect_net, &ns), 0);
    ck_assert_int_eq(ns.n, 1);
    ck_assert_uint_eq(ns.ids[0], ablue.id);
    memset(&ns, 0, sizeof(ns));
    ck_assert_int_eq(vnet_store_network_list(s, globex.id, collect_net, &ns), 0);
    ck_assert_int_eq(ns.n, 2);
    ck_assert_uint_eq(ns.ids[0], gblue.id);
    ck_assert_uint_eq(ns.ids[1], gred.id);
    /* by id there is no owner check: the caller compares subscriber_id */
    ck_assert_int_eq(vnet_store_network_get_by_id(s, gred.id, &n), 0);
    ck_assert_uint_eq(n.subscriber_id, globex.id);
    vnet_store_close(s);
}
END_TEST

START_TEST(t_mode)
{
    const char *p = store_uri("mode");
    char err[256];
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_network n, got;
    struct vnet_network_spec sp = net_spec("zeroed", NULL, NULL); /* mode 0, has_mode false */
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n.mode, VNET_MODE_SECURE);
    sp = net_spec("dflt", NULL, NULL);
    sp.mode = -1;
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n.mode, VNET_MODE_SECURE);
    sp = net_spec("sec", NULL, NULL);
    sp.mode = VNET_MODE_SECURE;
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n.mode, VNET_MODE_SECURE);
    sp = net_spec("plain", NULL, NULL);
    sp.mode = VNET_MODE_PLAIN;
    sp.has_mode = true;
    struct vnet_network plain;
    ck_assert_int_eq(vnet_store_network_create(s, &sp, &plain, err, sizeof(err)), 0);
    ck_assert_uint_eq(plain.mode, VNET_MODE_PLAIN);
    ck_assert_int_eq(vnet_store_network_get_by_id(s, plain.id, &got), 0);
    ck_assert(net_eq(&got, &plain));
    sp = net_spec("bad", NULL, NULL);
    sp.mode = 2;
    REFUSED(VNET_EINVAL, "unknown data plane mode 2",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    sp.mode = -2;
    sp.has_mode = true;
    REFUSED(VNET_EINVAL, "unknown data plane mode -2",
            vnet_store_network_create(s, &sp, NULL, err, sizeof(err)));
    vnet_store_close(s);
    if (on_sqlite)
        ck_assert_int_eq(raw_int(p, "SELECT count(*) FROM networks WHERE mode = 1"), 3);
    s = open_ok(p, 0);
    ck_assert_int_eq(vnet_store_network_get(s, 0, "plain", &got), 0);
    ck_assert(net_eq(&got, &plain));
    ck_assert_int_eq(vnet_store_network_get(s, 0, "zeroed", &got), 0);
    ck_assert_uint_eq(got.mode, VNET_MODE_SECURE);
    vnet_store_close(s);
    /* a value the library never writes is damage, found at open */
    if (!on_sqlite)
        return;
    raw_exec(p, "PRAGMA ignore_check_constraints = 1; UPDATE networks SET mode = 7 WHERE "
                "name = 'plain'");
    s = NULL;
    REFUSED(VNET_ECORRUPT, "damaged", vnet_store_open(p, NULL, &s, err, sizeof(err)));
}
END_TEST

START_TEST(t_node_keys)
{
    const char *p = store_uri("keys");
    char err[256];
    uint8_t k1[32], k2[32], zero[32] = {0};
    fill32(k1, 0x41);
    fill32(k2, 0x42);
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", NULL);
    struct vnet_network red = mknet(s, "red", "10.1.0.0/24", NULL);
    struct vnet_node_info a = mknode(s, blue.id, "a"), b = mknode(s, blue.id, "b"), got;
    uint64_t rev = revision_of(s, blue.id);
    struct changes cs;

    ck_assert_int_eq(vnet_store_node_set_pubkey(s, a.id, k1), 0);
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 1);
    ck_assert_int_eq(changes_since(s, blue.id, rev, &cs), 0);
    ck_assert_int_eq(cs.n, 1); /* the other nodes learn the key */
    ck_assert_int_eq(cs.c[0].op, VNET_CHANGE_NODE_PUT);
    ck_assert(cs.c[0].node.has_pubkey && memcmp(cs.c[0].node.pubkey, k1, 32) == 0);
    ck_assert_uint_eq(cs.c[0].node.revision, rev + 1);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k1, &got), 0);
    ck_assert_uint_eq(got.id, a.id);
    ck_assert(node_eq(&got, &cs.c[0].node));
    /* the same key again: nothing changes */
    ck_assert_int_eq(vnet_store_node_set_pubkey(s, a.id, k1), 0);
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 1);

    /* one key per network */
    ck_assert_int_eq(vnet_store_node_set_pubkey(s, b.id, k1), VNET_EEXIST);
    struct vnet_node_spec sp = node_spec("c");
    sp.pubkey = k1;
    REFUSED(VNET_EEXIST, "the public key is used by node 'a' in network 'blue'",
            vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)));
    sp.pubkey = zero;
    REFUSED(VNET_EINVAL, "all zeros", vnet_store_node_add(s, blue.id, &sp, NULL, err, 256));
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 1);
    /* another network may hold the same key */
    sp.pubkey = k1;
    struct vnet_node_info c;
    ck_assert_int_eq(vnet_store_node_add(s, red.id, &sp, &c, err, sizeof(err)), 0);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, red.id, k1, &got), 0);
    ck_assert_uint_eq(got.id, c.id);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k1, &got), 0);
    ck_assert_uint_eq(got.id, a.id);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k2, &got), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, zero, &got), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, NULL, &got), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, 999, k1, &got), VNET_ENOENT);

    ck_assert_int_eq(vnet_store_node_set_pubkey(s, a.id, zero), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_node_set_pubkey(s, a.id, NULL), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_node_set_pubkey(s, 999, k2), VNET_ENOENT);
    /* a new key replaces the old one */
    ck_assert_int_eq(vnet_store_node_set_pubkey(s, a.id, k2), 0);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k1, &got), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k2, &got), 0);
    ck_assert_uint_eq(got.id, a.id);
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 2);

    /* revocation: a change record without the key; the key no longer authenticates */
    ck_assert_int_eq(vnet_store_node_revoke(s, a.id), 0);
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 3);
    ck_assert_int_eq(changes_since(s, blue.id, rev + 2, &cs), 0);
    ck_assert_int_eq(cs.n, 1);
    ck_assert_int_eq(cs.c[0].op, VNET_CHANGE_NODE_PUT);
    ck_assert_uint_eq(cs.c[0].node.id, a.id);
    ck_assert(!cs.c[0].node.has_pubkey);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k2, &got), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_node_get_by_id(s, a.id, &got), 0);
    ck_assert(!got.has_pubkey);
    ck_assert_int_eq(vnet_store_node_revoke(s, a.id), 0); /* again: no record */
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 3);
    ck_assert_int_eq(vnet_store_node_revoke(s, 999), VNET_ENOENT);
    /* its key is free for another node */
    ck_assert_int_eq(vnet_store_node_set_pubkey(s, b.id, k2), 0);
    vnet_store_close(s);

    /* persisted */
    s = open_ok(p, 0);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k2, &got), 0);
    ck_assert_uint_eq(got.id, b.id);
    vnet_store_close(s);
}
END_TEST

START_TEST(t_join)
{
    const char *p = store_uri("join");
    char err[256];
    uint8_t t1[32], t2[32], t3[32], k1[32], k2[32], k3[32], zero[32] = {0};
    fill32(t1, 0x71);
    fill32(t2, 0x72);
    fill32(t3, 0x73);
    fill32(k1, 0x61);
    fill32(k2, 0x62);
    fill32(k3, 0x63);
    struct vnet_store *s = open_fault("join");
    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", NULL);
    struct vnet_node_info a = mknode(s, blue.id, "a"), b = mknode(s, blue.id, "b"), got;
    uint64_t rev = revision_of(s, blue.id), lc = last_change(s);
    struct changes cs;

    /* issuing a token is not a change of the network */
    ck_assert_int_eq(vnet_store_node_set_join_token(s, a.id, t1, 1000), 0);
    ck_assert_uint_eq(revision_of(s, blue.id), rev);
    ck_assert_uint_eq(last_change(s), lc);
    if (on_sqlite)
        ck_assert_int_eq(raw_int(p, "SELECT join_token_expires FROM nodes WHERE name = 'a'"), 1000);
    ck_assert_int_eq(vnet_store_node_set_join_token(s, b.id, t1, 1000), VNET_EEXIST);
    ck_assert_int_eq(vnet_store_node_set_join_token(s, a.id, t1, 1000), 0); /* same node */
    ck_assert_int_eq(vnet_store_node_set_join_token(s, a.id, zero, 1000), VNET_EINVAL);
    ck_assert_int_eq(vnet_store_node_set_join_token(s, 999, t2, 1000), VNET_ENOENT);

    /* enrolment: key set, token consumed, one change record */
    ck_assert_int_eq(vnet_store_node_join(s, t1, k1, 999, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got.id, a.id);
    ck_assert(got.has_pubkey && memcmp(got.pubkey, k1, 32) == 0);
    ck_assert_uint_eq(got.revision, rev + 1);
    ck_assert_int_eq(changes_since(s, blue.id, rev, &cs), 0);
    ck_assert_int_eq(cs.n, 1);
    ck_assert(node_eq(&cs.c[0].node, &got));
    if (on_sqlite)
        ck_assert_int_eq(raw_int(p, "SELECT count(*) FROM nodes WHERE join_token_hash IS NOT NULL"),
                         0);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k1, &got), 0);
    ck_assert_uint_eq(got.id, a.id);
    REFUSED(VNET_ENOENT, "unknown or already used join token",
            vnet_store_node_join(s, t1, k2, 999, NULL, err, sizeof(err)));
    REFUSED(VNET_ENOENT, "unknown", vnet_store_node_join(s, t3, k2, 1, NULL, err, sizeof(err)));

    /* expiry: exclusive, the token stays until replaced */
    ck_assert_int_eq(vnet_store_node_set_join_token(s, b.id, t2, 1000), 0);
    REFUSED(VNET_ETIMEDOUT, "the join token of node 'b' expired",
            vnet_store_node_join(s, t2, k2, 1000, NULL, err, sizeof(err)));
    ck_assert_int_eq(vnet_store_node_get_by_id(s, b.id, &got), 0);
    ck_assert(!got.has_pubkey);
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 1);
    /* a key already used in the network: refused, the token is not consumed */
    REFUSED(VNET_EEXIST, "the public key is used by node 'a'",
            vnet_store_node_join(s, t2, k1, 999, NULL, err, sizeof(err)));
    ck_assert_int_eq(vnet_store_node_join(s, t2, k2, 999, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got.id, b.id);

    /* no expiry */
    struct vnet_node_info c = mknode(s, blue.id, "c");
    ck_assert_int_eq(vnet_store_node_set_join_token(s, c.id, t3, 0), 0);
    ck_assert_int_eq(vnet_store_node_join(s, t3, k3, UINT64_MAX, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got.id, c.id);

    /* cancelled: by NULL, by setting the key, by revocation */
    struct vnet_node_info d = mknode(s, blue.id, "d");
    uint8_t t4[32], k4[32];
    fill32(t4, 0x74);
    fill32(k4, 0x64);
    ck_assert_int_eq(vnet_store_node_set_join_token(s, d.id, t4, 0), 0);
    ck_assert_int_eq(vnet_store_node_set_join_token(s, d.id, NULL, 0), 0);
    REFUSED(VNET_ENOENT, "unknown", vnet_store_node_join(s, t4, k4, 1, NULL, err, 256));
    ck_assert_int_eq(vnet_store_node_set_join_token(s, d.id, t4, 0), 0);
    ck_assert_int_eq(vnet_store_node_set_pubkey(s, d.id, k4), 0);
    REFUSED(VNET_ENOENT, "unknown", vnet_store_node_join(s, t4, k4, 1, NULL, err, 256));
    ck_assert_int_eq(vnet_store_node_set_join_token(s, d.id, t4, 0), 0);
    ck_assert_int_eq(vnet_store_node_revoke(s, d.id), 0);
    REFUSED(VNET_ENOENT, "unknown", vnet_store_node_join(s, t4, k4, 1, NULL, err, 256));

    /* re-enrolment replaces the key */
    ck_assert_int_eq(vnet_store_node_set_join_token(s, a.id, t4, 0), 0);
    uint8_t k5[32];
    fill32(k5, 0x65);
    ck_assert_int_eq(vnet_store_node_join(s, t4, k5, 1, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got.id, a.id);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k1, NULL), VNET_ENOENT);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k5, NULL), 0);

    /* arguments */
    REFUSED(VNET_EINVAL, "join token", vnet_store_node_join(s, zero, k1, 1, NULL, err, 256));
    REFUSED(VNET_EINVAL, "join token", vnet_store_node_join(s, NULL, k1, 1, NULL, err, 256));
    REFUSED(VNET_EINVAL, "public key", vnet_store_node_join(s, t1, zero, 1, NULL, err, 256));
    REFUSED(VNET_EINVAL, "public key", vnet_store_node_join(s, t1, NULL, 1, NULL, err, 256));
    ck_assert_int_eq(vnet_store_node_join(NULL, t1, k1, 1, NULL, NULL, 0), VNET_EINVAL);

    /* one transaction: a failed change-log append leaves the token and the key as they were */
    ck_assert_int_eq(vnet_store_node_set_join_token(s, d.id, t1, 0), 0);
    rev = revision_of(s, blue.id);
    fail_appends = true;
    REFUSED(VNET_EIO, "injected failure", vnet_store_node_join(s, t1, k1, 1, NULL, err, 256));
    ck_assert_int_eq(vnet_store_node_set_pubkey(s, b.id, k1), VNET_EIO);
    ck_assert_int_eq(vnet_store_node_revoke(s, b.id), VNET_EIO);
    fail_appends = false;
    ck_assert_uint_eq(revision_of(s, blue.id), rev);
    ck_assert_int_eq(vnet_store_node_get_by_id(s, d.id, &got), 0);
    ck_assert(!got.has_pubkey);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k2, &got), 0); /* b kept its key */
    ck_assert_uint_eq(got.id, b.id);
    ck_assert_int_eq(vnet_store_node_join(s, t1, k1, 1, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got.id, d.id);
    ck_assert_uint_eq(got.revision, rev + 1);

    /* a removed node's token is gone with it */
    ck_assert_int_eq(vnet_store_node_set_join_token(s, c.id, t2, 0), 0);
    ck_assert_int_eq(vnet_store_node_remove(s, blue.id, "c", NULL, err, sizeof(err)), 0);
    REFUSED(VNET_ENOENT, "unknown", vnet_store_node_join(s, t2, k2, 1, NULL, err, 256));
    vnet_store_close(s);
}
END_TEST

static void write_file(const char *p, const void *data, size_t len)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static size_t read_file(const char *p, void *buf, size_t len)
{
    int fd = open(p, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, len);
    close(fd);
    ck_assert_int_ge(n, 0);
    return (size_t)n;
}

/* A closed store with some pages of data. */
static size_t make_store(const char *p, int nodes)
{
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_network net = mknet(s, "blue", "10.0.0.0/16", "fd00::/64");
    for (int i = 0; i < nodes; i++) {
        char name[24];
        snprintf(name, sizeof(name), "node-%d", i);
        mknode(s, net.id, name);
    }
    vnet_store_close(s);
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    return (size_t)sb.st_size;
}

START_TEST(t_bad_files)
{
    char err[256], p[PATH_MAX + 64];
    struct vnet_store *s = NULL;
    static char garbage[8192], back[8192];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (char)("garbage!"[i % 8] ^ (i / 8));

    snprintf(p, sizeof(p), "%s", path_of("garbage.db"));
    write_file(p, garbage, sizeof(garbage));
    REFUSED(VNET_ECORRUPT, "not a database", vnet_store_open(p, NULL, &s, err, sizeof(err)));
    ck_assert_uint_eq(read_file(p, back, sizeof(back)), sizeof(garbage));
    ck_assert(memcmp(back, garbage, sizeof(garbage)) == 0); /* never reset */
    struct vnet_store_opts ro = {0, 100, true};
    REFUSED(VNET_ECORRUPT, "not a database", vnet_store_open(p, &ro, &s, err, sizeof(err)));

    /* pages of a real store overwritten */
    snprintf(p, sizeof(p), "%s", path_of("corrupt.db"));
    size_t size = make_store(p, 300);
    ck_assert_uint_gt(size, 8 * 4096);
    int fd = open(p, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    for (off_t off = 2 * 4096; off + 4096 <= (off_t)size; off += 3 * 4096)
        ck_assert_int_eq(pwrite(fd, garbage, 4096, off), 4096);
    close(fd);
    REFUSED(VNET_ECORRUPT, "damaged", vnet_store_open(p, NULL, &s, err, sizeof(err)));
    ck_assert_msg(!strchr(err, '\n'), "not one line: %s", err);

    /* truncated */
    snprintf(p, sizeof(p), "%s", path_of("truncated.db"));
    size = make_store(p, 300);
    ck_assert_int_eq(truncate(p, (off_t)(size / 2 + 100)), 0);
    REFUSED(VNET_ECORRUPT, "damaged", vnet_store_open(p, NULL, &s, err, sizeof(err)));
    ck_assert_int_eq(truncate(p, 50), 0); /* not even a header */
    REFUSED(VNET_ECORRUPT, "not a database", vnet_store_open(p, NULL, &s, err, sizeof(err)));

    /* another program's database */
    snprintf(p, sizeof(p), "%s", path_of("foreign.db"));
    raw_exec(p, "CREATE TABLE t (x)");
    REFUSED(VNET_ECORRUPT, "is not a vnet store", vnet_store_open(p, NULL, &s, err, 256));
    raw_exec(p, "PRAGMA application_id = 1234; PRAGMA user_version = 2");
    REFUSED(VNET_ECORRUPT, "belongs to another application (application_id 1234",
            vnet_store_open(p, NULL, &s, err, 256));
    ck_assert_int_eq(raw_int(p, "SELECT count(*) FROM sqlite_schema"), 1);

    /* newer schema */
    snprintf(p, sizeof(p), "%s", path_of("newer.db"));
    make_store(p, 1);
    raw_exec(p, "PRAGMA user_version = 99");
    REFUSED(VNET_EVERSION, "schema version 99, newer than this library's (3)",
            vnet_store_open(p, NULL, &s, err, sizeof(err)));
    REFUSED(VNET_EVERSION, "newer", vnet_store_open(p, &ro, &s, err, sizeof(err)));
    ck_assert_int_eq(raw_int(p, "PRAGMA user_version"), 99);

    /* right version, wrong tables */
    snprintf(p, sizeof(p), "%s", path_of("wrong.db"));
    make_store(p, 1);
    raw_exec(p, "ALTER TABLE nodes DROP COLUMN observed_port");
    REFUSED(VNET_ECORRUPT, "expected schema", vnet_store_open(p, NULL, &s, err, sizeof(err)));

    /* a directory */
    REFUSED(VNET_EIO, "cannot open", vnet_store_open(tmpdir, NULL, &s, err, sizeof(err)));
}
END_TEST

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(t_locked)
{
    char err[256], p[PATH_MAX + 64];
    struct vnet_store *s = NULL;
    struct vnet_store_opts o = {0, 100, false};

    /* rollback journal, exclusive lock: even reading waits, then EBUSY */
    snprintf(p, sizeof(p), "%s", path_of("locked.db"));
    make_store(p, 1);
    raw_exec(p, "PRAGMA journal_mode = DELETE");
    sqlite3 *db = raw_open(p);
    raw_exec_db(db, "BEGIN EXCLUSIVE");
    double t0 = now();
    REFUSED(VNET_EBUSY, "is locked by another process (waited 100 ms)",
            vnet_store_open(p, &o, &s, err, sizeof(err)));
    double dt = now() - t0;
    ck_assert_msg(dt >= 0.09 && dt < 3.0, "waited %.3f s", dt);
    raw_exec_db(db, "COMMIT");
    s = open_ok(p, 0); /* back to WAL */
    vnet_store_close(s);

    /* WAL: a writer elsewhere holds the write lock; readers go on, writers wait then fail */
    s = open_ok(p, 0);
    struct vnet_network blue;
    ck_assert_int_eq(vnet_store_network_get(s, 0, "blue", &blue), 0);
    raw_exec_db(db, "BEGIN IMMEDIATE");
    struct vnet_node_spec sp = node_spec("late");
    t0 = now();
    REFUSED(VNET_EBUSY, "is locked by another process",
            vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)));
    dt = now() - t0;
    ck_assert_msg(dt >= 0.09 && dt < 3.0, "waited %.3f s", dt);
    struct vnet_endpoint e = ep("192.0.2.1:1");
    struct vnet_node_info n;
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "node-0", &n), 0);
    ck_assert_int_eq(vnet_store_node_set_observed(s, n.id, &e, NULL), VNET_EBUSY);
    ck_assert_int_eq(vnet_store_network_get(s, 0, "blue", &blue), 0);
    int count = 0;
    ck_assert_int_eq(vnet_store_node_list(s, blue.id, count_node, &count), 0);
    ck_assert_int_eq(count, 1);
    raw_exec_db(db, "COMMIT");
    ck_assert_int_eq(vnet_store_node_add(s, blue.id, &sp, NULL, err, sizeof(err)), 0);
    vnet_store_close(s);
    sqlite3_close(db);
}
END_TEST

START_TEST(t_read_only)
{
    char err[256], p[PATH_MAX + 64];
    struct vnet_store *s = NULL;
    struct vnet_store_opts ro = {0, 100, true};
    snprintf(p, sizeof(p), "%s", path_of("missing.db"));
    REFUSED(VNET_ENOENT, "missing.db", vnet_store_open(p, &ro, &s, err, sizeof(err)));
    ck_assert(!file_exists(p));
    snprintf(p, sizeof(p), "%s", path_of("missing.db-wal"));
    ck_assert(!file_exists(p));

    snprintf(p, sizeof(p), "%s", path_of("ro.db"));
    make_store(p, 2);
    ck_assert_int_eq(vnet_store_open(p, &ro, &s, err, sizeof(err)), 0);
    struct vnet_network blue;
    ck_assert_int_eq(vnet_store_network_get(s, 0, "blue", &blue), 0);
    int count = 0;
    ck_assert_int_eq(vnet_store_node_list(s, blue.id, count_node, &count), 0);
    ck_assert_int_eq(count, 2);
    count = 0;
    ck_assert_int_eq(vnet_store_network_list(s, 0, count_net, &count), 0);
    ck_assert_int_eq(count, 1);
    struct changes cs;
    ck_assert_int_eq(changes_since(s, blue.id, 0, &cs), 0);
    ck_assert_int_eq(cs.n, 3);
    uint64_t lc = last_change(s);
    struct vnet_node_spec sp = node_spec("x");
    struct vnet_network_spec ns = net_spec("x", NULL, NULL);
    struct vnet_endpoint e = ep("192.0.2.1:1");
    struct vnet_node_info n;
    ck_assert_int_eq(vnet_store_node_get(s, blue.id, "node-0", &n), 0);
    REFUSED(VNET_EPERM, "read-only", vnet_store_node_add(s, blue.id, &sp, NULL, err, 256));
    REFUSED(VNET_EPERM, "read-only", vnet_store_network_create(s, &ns, NULL, err, 256));
    REFUSED(VNET_EPERM, "read-only", vnet_store_network_delete(s, blue.id, err, 256));
    REFUSED(VNET_EPERM, "read-only",
            vnet_store_node_move(s, blue.id, "node-0", &e, NULL, err, 256));
    REFUSED(VNET_EPERM, "read-only", vnet_store_node_remove(s, blue.id, "node-0", NULL, err, 256));
    ck_assert_int_eq(vnet_store_node_set_observed(s, n.id, &e, NULL), VNET_EPERM);
    uint8_t k[VNET_PUBKEY_LEN], h[VNET_TOKEN_HASH_LEN];
    memset(k, 0x11, sizeof(k));
    memset(h, 0x22, sizeof(h));
    REFUSED(VNET_EPERM, "read-only", vnet_store_subscriber_create(s, "acme", h, NULL, err, 256));
    ck_assert_int_eq(vnet_store_subscriber_set_token(s, VNET_SUBSCRIBER_ADMIN, h), VNET_EPERM);
    ck_assert_int_eq(vnet_store_admin_token_set(s, h), VNET_EPERM);
    ck_assert_int_eq(vnet_store_subscriber_delete(s, 2), VNET_EPERM);
    ck_assert_int_eq(vnet_store_node_set_pubkey(s, n.id, k), VNET_EPERM);
    ck_assert_int_eq(vnet_store_node_set_join_token(s, n.id, h, 0), VNET_EPERM);
    REFUSED(VNET_EPERM, "read-only", vnet_store_node_join(s, h, k, 1, NULL, err, 256));
    ck_assert_int_eq(vnet_store_node_revoke(s, n.id), VNET_EPERM);
    struct vnet_subscriber sub; /* reads work */
    ck_assert_int_eq(vnet_store_subscriber_get(s, "admin", &sub), 0);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, k, NULL), VNET_ENOENT);
    ck_assert_uint_eq(last_change(s), lc);
    ck_assert_int_eq(raw_int(p, "SELECT count(*) FROM subscribers WHERE token_hash IS NOT NULL"),
                     0);
    vnet_store_close(s);
}
END_TEST

START_TEST(t_codec)
{
    struct vnet_node_info n, m;
    memset(&n, 0, sizeof(n));
    n.id = 0x0102030405060708ull;
    n.network_id = 77;
    snprintf(n.name, sizeof(n.name), "node.one");
    for (int i = 0; i < VNET_PUBKEY_LEN; i++)
        n.pubkey[i] = (uint8_t)(0xa0 + i);
    n.has_pubkey = true;
    n.mac = mac("02:11:22:33:44:55");
    n.ips[0] = ip("10.0.0.1");
    n.ips[1] = ip("fd00::1");
    n.phys = ep("[2001:db8::1]:4789");
    n.observed = ep("203.0.113.9:65535");
    n.state = VNET_NODE_REMOVED;
    n.revision = 1ull << 40;
    uint8_t buf[VNET_STORE_NODE_ENC_MAX];
    int len = vnet_store_node_encode(&n, buf, sizeof(buf));
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(vnet_store_node_decode(buf, (size_t)len, &m), 0);
    ck_assert(node_eq(&n, &m));
    for (int i = 0; i < len; i++)
        ck_assert_int_eq(vnet_store_node_decode(buf, (size_t)i, &m), VNET_ECORRUPT);
    uint8_t big[VNET_STORE_NODE_ENC_MAX + 1];
    memcpy(big, buf, (size_t)len);
    big[len] = 0;
    ck_assert_int_eq(vnet_store_node_decode(big, (size_t)len + 1, &m), VNET_ECORRUPT);
    big[0] = 2;
    ck_assert_int_eq(vnet_store_node_decode(big, (size_t)len, &m), VNET_ECORRUPT);
    ck_assert_int_eq(vnet_store_node_encode(&n, buf, (size_t)len - 1), VNET_ENOSPC);
    /* the smallest node */
    memset(&n, 0, sizeof(n));
    n.name[0] = 'x';
    len = vnet_store_node_encode(&n, buf, sizeof(buf));
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(vnet_store_node_decode(buf, (size_t)len, &m), 0);
    ck_assert(node_eq(&n, &m));
    n.ips[0].family = 5;
    ck_assert_int_eq(vnet_store_node_encode(&n, buf, sizeof(buf)), VNET_EINVAL);
    n.ips[0].family = 0;
    n.name[0] = '\0';
    ck_assert_int_eq(vnet_store_node_encode(&n, buf, sizeof(buf)), VNET_EINVAL);
}
END_TEST

START_TEST(t_perf)
{
    const char *p = store_uri("perf");
    char err[256];
    struct vnet_store *s = open_ok(p, 0);
    struct vnet_network net = mknet(s, "big", "10.0.0.0/16", "fd00::/64");
    const int N = 10000;
    struct vnet_node_info n;
    double t0 = now();
    for (int i = 0; i < N; i++) {
        char name[24];
        struct vnet_node_spec sp = node_spec(name);
        snprintf(name, sizeof(name), "n%05d", i);
        int rc = vnet_store_node_add(s, net.id, &sp, &n, err, sizeof(err));
        ck_assert_msg(rc == 0, "node %d: %s", i, err);
    }
    double dt = now() - t0;
    printf("store: %d node_add in %.2f s: %.0f/s\n", N, dt, N / dt);
    ck_assert_msg(dt < 120, "%d node_add took %.1f s", N, dt);
    ck_assert_str_eq(ipstr(&n.ips[0]), "10.0.39.16");
    ck_assert_str_eq(ipstr(&n.ips[1]), "fd00::2710");
    ck_assert_uint_eq(n.revision, (uint64_t)N + 1);
    int count = 0;
    ck_assert_int_eq(vnet_store_node_list(s, net.id, count_node, &count), 0);
    ck_assert_int_eq(count, N);
    /* the default retention keeps the last 10,000 records: revision 1 is gone */
    struct changes cs;
    ck_assert_int_eq(changes_since(s, net.id, 0, &cs), VNET_ERANGE);
    ck_assert_int_eq(changes_since(s, net.id, N - 10, &cs), 0);
    ck_assert_int_eq(cs.n, 11);
    vnet_store_close(s);
    t0 = now();
    s = open_ok(p, 0);
    printf("store: reopen with quick_check of a %d-node store: %.1f ms\n", N, (now() - t0) * 1e3);
    vnet_store_close(s);
}
END_TEST

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void quiet_log(enum vnet_log_level level, const char *module, const char *msg, void *arg)
{
    (void)level;
    (void)module;
    (void)msg;
    (void)arg;
}

/* ---- #12: what the controller relies on against a member node or a stolen token ---- */

/* A join with another node's token registers nothing and leaves the token to its node. */
START_TEST(t_join_other_node)
{
    char err[256];
    uint8_t t1[32], k1[32], kx[32];
    fill32(t1, 0x91);
    fill32(k1, 0x81);
    fill32(kx, 0x8f);
    struct vnet_store *s = open_ok(store_uri("joinas"), 0);
    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", NULL);
    struct vnet_node_info a = mknode(s, blue.id, "a"), b = mknode(s, blue.id, "b"), got;
    ck_assert_int_eq(vnet_store_node_set_join_token(s, b.id, t1, 0), 0);
    uint64_t rev = revision_of(s, blue.id), lc = last_change(s);
    /* a presents b's token: refused before anything is written */
    REFUSED(VNET_EACCES, "the token belongs to another node",
            vnet_store_node_join_as(s, a.id, t1, kx, 1, NULL, err, sizeof(err)));
    ck_assert_uint_eq(revision_of(s, blue.id), rev);
    ck_assert_uint_eq(last_change(s), lc);
    ck_assert_int_eq(vnet_store_node_get_by_id(s, a.id, &got), 0);
    ck_assert(!got.has_pubkey);
    ck_assert_int_eq(vnet_store_node_get_by_id(s, b.id, &got), 0);
    ck_assert(!got.has_pubkey);
    ck_assert_int_eq(vnet_store_node_by_pubkey(s, blue.id, kx, NULL), VNET_ENOENT);
    /* the token still works for b */
    ck_assert_int_eq(vnet_store_node_join_as(s, b.id, t1, k1, 1, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got.id, b.id);
    ck_assert(got.has_pubkey && memcmp(got.pubkey, k1, 32) == 0);
    ck_assert_uint_eq(revision_of(s, blue.id), rev + 1);
    vnet_store_close(s);
}
END_TEST

/* A node reporting an endpoint another node has (reported or configured) is refused; the first
 * keeps it. */
START_TEST(t_endpoint_unique)
{
    char err[256];
    struct vnet_store *s = open_ok(store_uri("epuniq"), 0);
    struct vnet_network blue = mknet(s, "blue", "10.0.0.0/24", NULL),
                        red = mknet(s, "red", "10.1.0.0/24", NULL);
    struct vnet_node_info a = mknode(s, blue.id, "a"), b = mknode(s, blue.id, "b"),
                          c = mknode(s, blue.id, "c"), r = mknode(s, red.id, "r"), got;
    struct vnet_endpoint ea = ep("192.0.2.1:4789"), eb = ep("192.0.2.2:4789"),
                         ec = ep("192.0.2.3:4789");
    ck_assert_int_eq(vnet_store_node_set_observed(s, a.id, &ea, NULL), 0);
    ck_assert_int_eq(vnet_store_node_set_observed(s, b.id, &eb, NULL), 0);
    ck_assert_int_eq(vnet_store_node_move(s, blue.id, "c", &ec, NULL, err, sizeof(err)), 0);
    uint64_t rev = revision_of(s, blue.id);
    ck_assert_int_eq(vnet_store_node_set_observed(s, b.id, &ea, NULL), VNET_EEXIST);
    ck_assert_int_eq(vnet_store_node_set_observed(s, b.id, &ec, NULL), VNET_EEXIST); /* phys */
    ck_assert_uint_eq(revision_of(s, blue.id), rev);
    ck_assert_int_eq(vnet_store_node_get_by_id(s, a.id, &got), 0);
    ck_assert(vnet_endpoint_eq(&got.observed, &ea));
    ck_assert_int_eq(vnet_store_node_get_by_id(s, b.id, &got), 0);
    ck_assert(vnet_endpoint_eq(&got.observed, &eb));
    /* its own endpoint again, a free one, and another network's are fine */
    ck_assert_int_eq(vnet_store_node_set_observed(s, a.id, &ea, NULL), 0);
    ck_assert_int_eq(vnet_store_node_set_observed(s, c.id, &ec, NULL), 0);
    ck_assert_int_eq(vnet_store_node_set_observed(s, r.id, &ea, NULL), 0);
    /* once a moves away, b may take its old endpoint */
    struct vnet_endpoint ea2 = ep("192.0.2.11:4789");
    ck_assert_int_eq(vnet_store_node_set_observed(s, a.id, &ea2, NULL), 0);
    ck_assert_int_eq(vnet_store_node_set_observed(s, b.id, &ea, NULL), 0);
    vnet_store_close(s);
}
END_TEST

/* The database holds token hashes and keys: a new file is 0600 (so are -wal and -shm), a
 * directory libvnet creates for it 0700, whatever the umask. */
START_TEST(t_file_modes)
{
    char dir[PATH_MAX + 16], path[PATH_MAX + 32], side[PATH_MAX + 48];
    snprintf(dir, sizeof(dir), "%s/private", tmpdir);
    snprintf(path, sizeof(path), "%s/v.db", dir);
    mode_t old = umask(022);
    struct vnet_store *s = open_ok(path, 0);
    umask(old);
    mknet(s, "blue", "10.0.0.0/24", NULL); /* a write: the -wal and -shm files exist */
    struct stat sb;
    ck_assert_int_eq(stat(dir, &sb), 0);
    ck_assert_msg((sb.st_mode & 0777) == 0700, "dir mode %o", sb.st_mode & 0777);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_msg((sb.st_mode & 0777) == 0600, "db mode %o", sb.st_mode & 0777);
    static const char *const sfx[] = {"-wal", "-shm"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(side, sizeof(side), "%s%s", path, sfx[i]);
        ck_assert_msg(stat(side, &sb) == 0, "%s: %s", side, strerror(errno));
        ck_assert_msg((sb.st_mode & 0777) == 0600, "%s mode %o", side, sb.st_mode & 0777);
    }
    vnet_store_close(s);
    /* an existing file keeps the mode its owner gave it */
    ck_assert_int_eq(chmod(path, 0640), 0);
    s = open_ok(path, 0);
    vnet_store_close(s);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0640);
}
END_TEST

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vnet-store-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *env = getenv("VNET_TEST_STORE_URI");
    if (env && env[0])
        snprintf(uri_template, sizeof(uri_template), "%s", env);
    else
        snprintf(uri_template, sizeof(uri_template), "sqlite:%s/%%s.db", tmpdir);
    on_sqlite = strncmp(uri_template, "sqlite:", 7) == 0;
    vnet_log_set_handler(quiet_log, NULL); /* the damaged-file tests log on purpose */
    Suite *su = suite_create("store");
    /* Through the public API only: for every engine (VNET_TEST_STORE_URI). */
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, t_name_valid);
    tcase_add_test(tc, t_open_reopen);
    tcase_add_test(tc, t_network_create);
    tcase_add_test(tc, t_subnet_rules);
    tcase_add_test(tc, t_node_add);
    tcase_add_test(tc, t_assign);
    tcase_add_test(tc, t_move_observed);
    tcase_add_test(tc, t_remove);
    tcase_add_test(tc, t_changes);
    tcase_add_test(tc, t_retention);
    tcase_add_test(tc, t_poll_and_delete);
    tcase_add_test(tc, t_atomic);
    tcase_add_test(tc, t_subscribers);
    tcase_add_test(tc, t_ownership);
    tcase_add_test(tc, t_mode);
    tcase_add_test(tc, t_node_keys);
    tcase_add_test(tc, t_join);
    tcase_add_test(tc, t_join_other_node);
    tcase_add_test(tc, t_endpoint_unique);
    tcase_add_test(tc, t_codec);
    suite_add_tcase(su, tc);
    if (on_sqlite) { /* SQLite URIs and files */
        TCase *sq = tcase_create("sqlite");
        tcase_set_timeout(sq, 300);
        tcase_add_test(sq, t_uri_and_register);
        tcase_add_test(sq, t_migrate_v1);
        tcase_add_test(sq, t_migrate_v2);
        tcase_add_test(sq, t_bad_files);
        tcase_add_test(sq, t_locked);
        tcase_add_test(sq, t_read_only);
        tcase_add_test(sq, t_file_modes);
        suite_add_tcase(su, sq);
    }
    TCase *perf = tcase_create("perf"); /* CK_RUN_CASE=api skips it */
    tcase_set_timeout(perf, 300);
    tcase_add_test(perf, t_perf);
    suite_add_tcase(su, perf);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
