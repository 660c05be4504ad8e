/* Unit tests of the controller's subscriber API (libvnet/controller_api.c) called directly: a
 * request and a caller identity in, a reply out, over a temporary SQLite store. No sockets, no
 * loop: the hooks the controller would supply are recorded here instead. */
#include "../../libvnet/controller_api_int.h"
#include "vnet/crypto.h"
#include "vnet/error.h"
#include "vnet/proto.h"
#include "vnet/store.h"
#include "vnet/types.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dbpath[PATH_MAX];
static struct vnet_store *store;

/* What the hooks heard. */
static struct {
    unsigned committed, node_gone, sub_gone, status;
    uint64_t last_net, last_node, last_sub;
    int last_code;
} heard;

static void h_committed(void *arg, uint64_t network_id)
{
    (void)arg;
    heard.committed++;
    heard.last_net = network_id;
}

static void h_node_gone(void *arg, uint64_t node_id, int code, const char *why)
{
    (void)arg;
    (void)why;
    heard.node_gone++;
    heard.last_node = node_id;
    heard.last_code = code;
}

static void h_sub_gone(void *arg, uint64_t sub_id, const char *why)
{
    (void)arg;
    (void)why;
    heard.sub_gone++;
    heard.last_sub = sub_id;
}

static void h_status(void *arg, struct vnet_node_status *st)
{
    (void)arg;
    heard.status++;
    st->connected = 1;
    st->acked = 7;
}

/* The status hook with a node report of status_peers peers (as the controller fills it from
 * the node's last REPORT): the reply owns the peers. */
static uint32_t status_peers;

static void h_status_report(void *arg, struct vnet_node_status *st)
{
    h_status(arg, st);
    st->last_seen_ms = 1790000000000ull + st->node.id;
    st->session_from.ip.family = VNET_AF_INET;
    st->session_from.ip.addr[0] = 10;
    st->session_from.ip.addr[3] = (uint8_t)st->node.id;
    st->session_from.port = 40000;
    st->has_report = true;
    st->report_age_ms = 500;
    st->report.virt.rx_bytes = 1000 * st->node.id;
    st->report.drops = 3;
    st->report.drop_reasons[2] = 3;
    st->report.table_size = 9;
    st->report.npeers = status_peers;
    st->report.peers = calloc(status_peers ? status_peers : 1, sizeof(*st->report.peers));
    ck_assert_ptr_nonnull(st->report.peers);
    for (uint32_t k = 0; k < status_peers; k++) {
        struct vnet_report_peer *p = &st->report.peers[k];
        p->node_id = k + 1;
        p->ep.ip.family = VNET_AF_INET6;
        p->ep.ip.addr[0] = 0xfd;
        p->ep.ip.addr[15] = (uint8_t)k;
        p->ep.port = 4789;
        p->c = (struct vnet_report_counters){UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX};
        p->has_last_rx = true;
        p->last_rx_ms = UINT64_MAX;
        p->reach = VNET_REACH_DIRECT;
        p->has_rtt = true;
        p->rtt_us = UINT32_MAX;
    }
}

static struct vnet__api_env env;
static const struct vnet__api_caller admin = {.admin = true, .sub_id = VNET_SUBSCRIBER_ADMIN};

static void setup(void)
{
    static int seq;
    snprintf(dbpath, sizeof(dbpath), "/tmp/vnet-api-test-%d-%d.db", (int)getpid(), seq++);
    unlink(dbpath);
    char err[256] = "";
    int rc = vnet_store_open(dbpath, NULL, &store, err, sizeof(err));
    ck_assert_msg(rc == 0, "store open: %s (%s)", vnet_err_name(rc), err);
    memset(&heard, 0, sizeof(heard));
    memset(&env, 0, sizeof(env));
    env.store = store;
    env.committed = h_committed;
    env.node_gone = h_node_gone;
    env.subscriber_gone = h_sub_gone;
    env.node_status = h_status;
}

static void teardown(void)
{
    vnet_store_close(store);
    store = NULL;
    char p[PATH_MAX + 8];
    unlink(dbpath);
    snprintf(p, sizeof(p), "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", dbpath);
    unlink(p);
}

static struct vnet_msg_request req(enum vnet_req_op op, const char *network, const char *node)
{
    static uint32_t id;
    struct vnet_msg_request q;
    memset(&q, 0, sizeof(q));
    q.id = ++id;
    q.op = op;
    if (network)
        snprintf(q.network, sizeof(q.network), "%s", network);
    if (node)
        snprintf(q.node, sizeof(q.node), "%s", node);
    return q;
}

/* Call the API; check the reply is a REPLY for @q whose code is the return value and, on error,
 * has a reason. The caller frees @m. */
static int call(const struct vnet__api_caller *who, const struct vnet_msg_request *q,
                struct vnet_msg *m)
{
    int rc = vnet__api_handle(&env, who, q, m);
    ck_assert_int_eq(m->type, VNET_MSG_REPLY);
    ck_assert_uint_eq(m->u.reply.id, q->id);
    ck_assert_int_eq(m->u.reply.code, rc);
    if (rc)
        ck_assert_msg(m->u.reply.text[0], "error %s without a reason", vnet_err_name(rc));
    return rc;
}

/* Call and expect @want; on error the reason must contain @text (if given). */
static void expect(const struct vnet__api_caller *who, const struct vnet_msg_request *q, int want,
                   const char *text)
{
    struct vnet_msg m;
    int rc = call(who, q, &m);
    ck_assert_msg(rc == want, "%s: got %s (%s), want %s", vnet_req_op_name(q->op),
                  vnet_err_name(rc), m.u.reply.text, vnet_err_name(want));
    if (text)
        ck_assert_msg(strstr(m.u.reply.text, text), "reason '%s' lacks '%s'", m.u.reply.text, text);
    vnet_msg_free(&m);
}

static struct vnet_network net_create(const struct vnet__api_caller *who, const char *name,
                                      uint32_t vni)
{
    struct vnet_msg_request q = req(VNET_REQ_NETWORK_CREATE, name, NULL);
    if (vni) {
        q.has |= VNET_REQ_HAS_VNI;
        q.vni = vni;
    }
    struct vnet_msg m;
    int rc = call(who, &q, &m);
    ck_assert_msg(rc == 0, "create %s: %s (%s)", name, vnet_err_name(rc), m.u.reply.text);
    ck_assert_uint_eq(m.u.reply.nnetworks, 1);
    struct vnet_network n = m.u.reply.networks[0];
    vnet_msg_free(&m);
    return n;
}

static struct vnet_node_info node_add(const struct vnet__api_caller *who, const char *net,
                                      const char *name, char *token, size_t toklen)
{
    struct vnet_msg_request q = req(VNET_REQ_NODE_ADD, net, name);
    struct vnet_msg m;
    int rc = call(who, &q, &m);
    ck_assert_msg(rc == 0, "node add %s: %s (%s)", name, vnet_err_name(rc), m.u.reply.text);
    ck_assert_uint_eq(m.u.reply.nnodes, 1);
    struct vnet_node_info n = m.u.reply.nodes[0];
    if (token)
        snprintf(token, toklen, "%s", m.u.reply.token);
    vnet_msg_free(&m);
    return n;
}

static struct vnet_subscriber sub_create(const char *name)
{
    struct vnet_msg_request q = req(VNET_REQ_SUBSCRIBER_CREATE, name, NULL);
    struct vnet_msg m;
    int rc = call(&admin, &q, &m);
    ck_assert_msg(rc == 0, "subscriber create %s: %s (%s)", name, vnet_err_name(rc),
                  m.u.reply.text);
    ck_assert_uint_eq(m.u.reply.nsubscribers, 1);
    ck_assert_msg(strncmp(m.u.reply.token, "vnetapi1-", 9) == 0, "token '%s'", m.u.reply.token);
    struct vnet_subscriber s = m.u.reply.subscribers[0];
    vnet_msg_free(&m);
    return s;
}

static bool list_has(const struct vnet__api_caller *who, const char *name, uint32_t vni)
{
    struct vnet_msg_request q = req(VNET_REQ_NETWORK_LIST, NULL, NULL);
    struct vnet_msg m;
    ck_assert_int_eq(call(who, &q, &m), 0);
    bool found = false;
    for (uint32_t i = 0; i < m.u.reply.nnetworks; i++)
        found |= strcmp(m.u.reply.networks[i].name, name) == 0 &&
                 (!vni || m.u.reply.networks[i].vni == vni);
    vnet_msg_free(&m);
    return found;
}

/* ---- network create ---- */

START_TEST(t_network_create)
{
    struct vnet_network n = net_create(&admin, "blue", 100);
    ck_assert_str_eq(n.name, "blue");
    ck_assert_uint_eq(n.vni, 100);
    ck_assert_uint_eq(heard.committed, 1);
    ck_assert_uint_eq(heard.last_net, n.id);
    /* Without a controller key, the default is plain (secure needs node keys). */
    ck_assert_int_eq(n.mode, VNET_MODE_PLAIN);
    ck_assert(list_has(&admin, "blue", 100));

    /* Show gives it back with its (no) nodes. */
    struct vnet_msg_request q = req(VNET_REQ_NETWORK_SHOW, "blue", NULL);
    struct vnet_msg m;
    ck_assert_int_eq(call(&admin, &q, &m), 0);
    ck_assert_uint_eq(m.u.reply.nnetworks, 1);
    ck_assert_uint_eq(m.u.reply.networks[0].id, n.id);
    ck_assert_uint_eq(m.u.reply.nnodes, 0);
    vnet_msg_free(&m);

    /* With a key, secure is the default and its MTU leaves room for the header. */
    struct vnet_keypair key;
    ck_assert_int_eq(vnet_key_generate(&key), 0);
    env.key = &key;
    struct vnet_network s = net_create(&admin, "green", 0);
    ck_assert_int_eq(s.mode, VNET_MODE_SECURE);
    ck_assert_uint_eq(s.mtu, 1400);
    vnet_key_wipe(&key);
}
END_TEST

/* ---- node add ---- */

START_TEST(t_node_add)
{
    struct vnet_network n = net_create(&admin, "blue", 0);
    unsigned commits = heard.committed;
    char token[VNET_MSG_TEXT_MAX];
    struct vnet_node_info a = node_add(&admin, "blue", "a", token, sizeof(token));
    ck_assert_str_eq(a.name, "a");
    ck_assert_uint_eq(a.network_id, n.id);
    ck_assert_uint_eq(heard.committed, commits + 1);
    ck_assert_str_eq(token, ""); /* no controller key: no join token */

    struct vnet_msg_request q = req(VNET_REQ_NODE_LIST, "blue", NULL);
    struct vnet_msg m;
    ck_assert_int_eq(call(&admin, &q, &m), 0);
    ck_assert_uint_eq(m.u.reply.nnodes, 1);
    ck_assert_uint_eq(m.u.reply.nodes[0].id, a.id);
    vnet_msg_free(&m);

    /* With a key and no node key given, the reply carries the node's join token. */
    struct vnet_keypair key;
    ck_assert_int_eq(vnet_key_generate(&key), 0);
    env.key = &key;
    node_add(&admin, "blue", "b", token, sizeof(token));
    ck_assert_msg(token[0], "no join token with a controller key");
    vnet_key_wipe(&key);
    env.key = NULL;

    /* Status asks the controller about each node. */
    q = req(VNET_REQ_NETWORK_STATUS, "blue", NULL);
    ck_assert_int_eq(call(&admin, &q, &m), 0);
    ck_assert_uint_eq(m.u.reply.nstatus, 2);
    ck_assert_uint_eq(heard.status, 2);
    ck_assert_uint_eq(m.u.reply.status[0].connected, 1);
    ck_assert_uint_eq(m.u.reply.status[0].acked, 7);
    vnet_msg_free(&m);

    /* Removing and revoking tell the controller which session to close, and why. */
    q = req(VNET_REQ_NODE_REVOKE, "blue", "b");
    ck_assert_int_eq(call(&admin, &q, &m), 0);
    vnet_msg_free(&m);
    ck_assert_uint_eq(heard.node_gone, 1);
    ck_assert_int_eq(heard.last_code, VNET_EACCES);
    q = req(VNET_REQ_NODE_REMOVE, "blue", "a");
    ck_assert_int_eq(call(&admin, &q, &m), 0);
    vnet_msg_free(&m);
    ck_assert_uint_eq(heard.node_gone, 2);
    ck_assert_uint_eq(heard.last_node, a.id);
    ck_assert_int_eq(heard.last_code, VNET_ENOENT);
}
END_TEST

/* ---- network status ---- */

/* Status carries what the controller knows of each node (its session and last report), and
 * the reply always fits one frame: with too many peers in the reports, their peer lists are
 * left out (the counters stay) and the text says so. */
START_TEST(t_status)
{
    net_create(&admin, "blue", 0);
    for (int i = 0; i < 10; i++) {
        char name[8];
        snprintf(name, sizeof(name), "n%d", i);
        node_add(&admin, "blue", name, NULL, 0);
    }
    env.node_status = h_status_report;
    struct vnet_msg_request q = req(VNET_REQ_NETWORK_STATUS, "blue", NULL);
    struct vnet_msg m;
    struct vnet_buf b = {0};

    status_peers = 3;
    ck_assert_int_eq(call(&admin, &q, &m), 0);
    ck_assert_uint_eq(m.u.reply.nstatus, 10);
    ck_assert_str_eq(m.u.reply.text, "");
    for (uint32_t i = 0; i < 10; i++) {
        const struct vnet_node_status *st = &m.u.reply.status[i];
        ck_assert(st->has_report);
        ck_assert_uint_eq(st->report.npeers, 3);
        ck_assert_uint_eq(st->report.virt.rx_bytes, 1000 * st->node.id);
        ck_assert_uint_eq(st->last_seen_ms, 1790000000000ull + st->node.id);
        ck_assert_uint_eq(st->session_from.port, 40000);
    }
    ck_assert_int_eq(vnet_msg_encode(&m, &b), 0);
    vnet_msg_free(&m);
    vnet_buf_free(&b);

    /* 10 nodes x 12,000 peers at their largest encoding: over half a frame */
    status_peers = 12000;
    ck_assert_int_eq(call(&admin, &q, &m), 0);
    ck_assert_uint_eq(m.u.reply.nstatus, 10);
    ck_assert_msg(strstr(m.u.reply.text, "peers left out"), "text '%s'", m.u.reply.text);
    for (uint32_t i = 0; i < 10; i++) {
        const struct vnet_node_status *st = &m.u.reply.status[i];
        ck_assert(st->has_report);
        ck_assert_uint_eq(st->report.npeers, 0);
        ck_assert_ptr_null(st->report.peers);
        ck_assert_uint_eq(st->report.drops, 3);
    }
    ck_assert_int_eq(vnet_msg_encode(&m, &b), 0);
    vnet_msg_free(&m);
    vnet_buf_free(&b);
    status_peers = 0;
}
END_TEST

/* ---- conflicts ---- */

START_TEST(t_conflicts)
{
    net_create(&admin, "blue", 100);
    struct vnet_msg_request q = req(VNET_REQ_NETWORK_CREATE, "blue", NULL);
    expect(&admin, &q, VNET_EEXIST, NULL);
    q = req(VNET_REQ_NETWORK_CREATE, "red", NULL);
    q.has = VNET_REQ_HAS_VNI;
    q.vni = 100;
    expect(&admin, &q, VNET_EEXIST, "VNI");
    node_add(&admin, "blue", "a", NULL, 0);
    q = req(VNET_REQ_NODE_ADD, "blue", "a");
    expect(&admin, &q, VNET_EEXIST, NULL);
    sub_create("acme");
    q = req(VNET_REQ_SUBSCRIBER_CREATE, "acme", NULL);
    expect(&admin, &q, VNET_EEXIST, NULL);
    /* A subscriber that owns networks cannot be deleted. */
    q = req(VNET_REQ_NETWORK_CREATE, "acme/blue", NULL);
    expect(&admin, &q, 0, NULL);
    q = req(VNET_REQ_SUBSCRIBER_DELETE, "acme", NULL);
    expect(&admin, &q, VNET_EBUSY, "owns networks");
}
END_TEST

/* ---- subscriber isolation ---- */

START_TEST(t_isolation)
{
    struct vnet_subscriber acme = sub_create("acme"), beta = sub_create("beta");
    const struct vnet__api_caller ca = {.sub_id = acme.id}, cb = {.sub_id = beta.id};
    net_create(&ca, "blue", 200);
    node_add(&ca, "blue", "a", NULL, 0);
    net_create(&admin, "admins", 300);

    /* Each sees its own only; the admin sees all. */
    ck_assert(list_has(&ca, "blue", 200));
    ck_assert(!list_has(&ca, "admins", 0));
    ck_assert(!list_has(&cb, "blue", 0));
    ck_assert(list_has(&admin, "blue", 200));

    /* Another's network is "no network" for every request, the same as one that is not. */
    static const enum vnet_req_op ops[] = {
        VNET_REQ_NETWORK_SHOW, VNET_REQ_NETWORK_STATUS, VNET_REQ_NODE_ADD,      VNET_REQ_NODE_LIST,
        VNET_REQ_NODE_SHOW,    VNET_REQ_NODE_REMOVE,    VNET_REQ_NETWORK_DELETE};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        struct vnet_msg_request q = req(ops[i], "blue", "a");
        expect(&cb, &q, VNET_ENOENT, "no network 'blue'");
        q = req(ops[i], "admins", "a");
        expect(&ca, &q, VNET_ENOENT, "no network 'admins'");
    }
    /* A VNI taken by another is refused without saying whose. */
    struct vnet_msg_request q = req(VNET_REQ_NETWORK_CREATE, "mine", NULL);
    q.has = VNET_REQ_HAS_VNI;
    q.vni = 200;
    expect(&cb, &q, VNET_EEXIST, "VNI 200 is not available");
    /* The same name in two subscribers is two networks. */
    net_create(&cb, "blue", 201);
    ck_assert(list_has(&cb, "blue", 201));
    ck_assert(!list_has(&cb, "blue", 200));
    /* Subscribers manage no subscribers. */
    q = req(VNET_REQ_SUBSCRIBER_LIST, NULL, NULL);
    expect(&ca, &q, VNET_EPERM, "only the admin");
    q = req(VNET_REQ_SUBSCRIBER_TOKEN, "beta", NULL);
    expect(&ca, &q, VNET_EPERM, NULL);
    ck_assert_uint_eq(heard.sub_gone, 0);
    /* The admin names theirs as SUBSCRIBER/NAME, and an ambiguous plain name is refused. */
    q = req(VNET_REQ_NODE_LIST, "acme/blue", NULL);
    expect(&admin, &q, 0, NULL);
    q = req(VNET_REQ_NODE_LIST, "blue", NULL);
    expect(&admin, &q, VNET_EINVAL, "SUBSCRIBER/blue");
    /* A new token closes the subscriber's other sessions. */
    q = req(VNET_REQ_SUBSCRIBER_TOKEN, "beta", NULL);
    expect(&admin, &q, 0, NULL);
    ck_assert_uint_eq(heard.sub_gone, 1);
    ck_assert_uint_eq(heard.last_sub, beta.id);
}
END_TEST

/* ---- bad requests ---- */

START_TEST(t_bad_requests)
{
    struct vnet_msg_request q = req(VNET_REQ_NODE_LIST, "nowhere", NULL);
    expect(&admin, &q, VNET_ENOENT, "no network 'nowhere'");
    net_create(&admin, "blue", 0);
    q = req((enum vnet_req_op)999, "blue", NULL);
    expect(&admin, &q, VNET_EINVAL, "unknown request");
    q = req(VNET_REQ_NODE_SHOW, "blue", "ghost");
    expect(&admin, &q, VNET_ENOENT, "ghost");
    q = req(VNET_REQ_NODE_MOVE, "blue", "ghost");
    expect(&admin, &q, VNET_EINVAL, "physical endpoint");
    q = req(VNET_REQ_NETWORK_CREATE, "bad name!", NULL);
    expect(&admin, &q, VNET_EINVAL, NULL);
    q = req(VNET_REQ_SUBSCRIBER_CREATE, "bad name!", NULL);
    expect(&admin, &q, VNET_EINVAL, "invalid subscriber name");
    q = req(VNET_REQ_SUBSCRIBER_DELETE, "nobody", NULL);
    expect(&admin, &q, VNET_ENOENT, "no subscriber 'nobody'");
    q = req(VNET_REQ_NETWORK_CREATE, "nobody/net", NULL);
    expect(&admin, &q, VNET_ENOENT, "no subscriber 'nobody'");
    /* Secure asked of a controller without a key. */
    q = req(VNET_REQ_NETWORK_CREATE, "sec", NULL);
    q.has = VNET_REQ_HAS_MODE;
    q.mode = VNET_MODE_SECURE;
    expect(&admin, &q, VNET_ENOTSUP, "--key");
    /* Nothing that failed was reported as a commit. */
    ck_assert_uint_eq(heard.committed, 1);
}
END_TEST

static Suite *controller_api_suite(void)
{
    Suite *s = suite_create("controller_api");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_network_create);
    tcase_add_test(tc, t_node_add);
    tcase_add_test(tc, t_status);
    tcase_add_test(tc, t_conflicts);
    tcase_add_test(tc, t_isolation);
    tcase_add_test(tc, t_bad_requests);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(controller_api_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
