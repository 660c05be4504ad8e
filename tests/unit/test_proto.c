/* Unit tests of the control protocol codec and the frame reader: every message round-trips,
 * malformed input of every kind is refused cleanly, frames reassemble across any split. */
#include "vnet/error.h"
#include "vnet/proto.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---- */

static void ip4(struct vnet_ip *ip, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    memset(ip, 0, sizeof(*ip));
    ip->family = VNET_AF_INET;
    ip->addr[0] = a;
    ip->addr[1] = b;
    ip->addr[2] = c;
    ip->addr[3] = d;
}

static void ip6(struct vnet_ip *ip, uint16_t first, uint32_t last)
{
    memset(ip, 0, sizeof(*ip));
    ip->family = VNET_AF_INET6;
    ip->addr[0] = (uint8_t)(first >> 8);
    ip->addr[1] = (uint8_t)first;
    ip->addr[12] = (uint8_t)(last >> 24);
    ip->addr[13] = (uint8_t)(last >> 16);
    ip->addr[14] = (uint8_t)(last >> 8);
    ip->addr[15] = (uint8_t)last;
}

static void fill_network(struct vnet_network *n)
{
    memset(n, 0, sizeof(*n));
    n->id = 7;
    n->subscriber_id = 300;
    snprintf(n->name, sizeof(n->name), "net-a");
    n->vni = VNET_VNI_MAX;
    ip4(&n->subnet4.ip, 10, 0, 0, 1);
    n->subnet4.len = 24;
    ip6(&n->subnet6.ip, 0xfd00, 1);
    n->subnet6.len = 64;
    n->mtu = 1450;
    n->revision = 1ull << 40;
}

static void fill_node(struct vnet_node_info *n, uint64_t i)
{
    memset(n, 0, sizeof(*n));
    n->id = i + 1;
    n->network_id = 7;
    snprintf(n->name, sizeof(n->name), "node-%llu", (unsigned long long)i);
    if (i % 2) {
        n->has_pubkey = true;
        for (int j = 0; j < VNET_PUBKEY_LEN; j++)
            n->pubkey[j] = (uint8_t)(i + (uint64_t)j);
    }
    uint8_t mac[6] = {2, 0, (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    memcpy(n->mac.b, mac, 6);
    ip4(&n->ips[0], 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
    if (i % 3)
        ip6(&n->ips[1], 0xfd00, (uint32_t)i);
    if (i % 4) {
        ip4(&n->phys.ip, 192, 0, 2, (uint8_t)i);
        n->phys.port = 4789;
    }
    if (i % 5 == 1) {
        ip6(&n->observed.ip, 0x2001, (uint32_t)i);
        n->observed.port = (uint16_t)(1 + i % 65535);
    }
    n->state = (enum vnet_node_state)(i % 3);
    n->revision = 1000000000000ull + i;
}

/* Encodes @m, checks the length prefix, and returns an exact-size heap copy of the body. */
static uint8_t *encode_body(const struct vnet_msg *m, size_t *len)
{
    struct vnet_buf b = {0};
    int rc = vnet_msg_encode(m, &b);
    ck_assert_msg(rc == 0, "encode %s: %s", vnet_msg_type_name(m->type), vnet_err_name(rc));
    ck_assert_uint_ge(b.len, 5);
    size_t n = ((size_t)b.data[0] << 24) | ((size_t)b.data[1] << 16) | ((size_t)b.data[2] << 8) |
               b.data[3];
    ck_assert_uint_eq(n, b.len - 4);
    uint8_t *body = malloc(n);
    ck_assert_ptr_nonnull(body);
    memcpy(body, b.data + 4, n);
    vnet_buf_free(&b);
    *len = n;
    return body;
}

/* Field by field: struct vnet_subscriber has padding after its bools. */
static bool subscribers_eq(const struct vnet_subscriber *a, const struct vnet_subscriber *b,
                           uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i].id != b[i].id || strcmp(a[i].name, b[i].name) != 0 || a[i].admin != b[i].admin ||
            a[i].has_token != b[i].has_token)
            return false;
    return true;
}

static void fill_subscriber(struct vnet_subscriber *s, uint64_t id, const char *name)
{
    memset(s, 0, sizeof(*s));
    s->id = id;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->admin = id == VNET_SUBSCRIBER_ADMIN;
    s->has_token = id % 2 == 1;
}

static bool report_eq(const struct vnet_report *a, const struct vnet_report *b)
{
    struct vnet_report x = *a, y = *b;
    x.peers = y.peers = NULL;
    return memcmp(&x, &y, sizeof(x)) == 0 &&
           (!a->npeers || memcmp(a->peers, b->peers, a->npeers * sizeof(*a->peers)) == 0);
}

/* Entry by entry: each carries a report whose peers are a pointer. */
static bool status_eq(const struct vnet_node_status *a, const struct vnet_node_status *b,
                      uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct vnet_node_status x = a[i], y = b[i];
        memset(&x.report, 0, sizeof(x.report));
        memset(&y.report, 0, sizeof(y.report));
        if (memcmp(&x, &y, sizeof(x)) != 0 || !report_eq(&a[i].report, &b[i].report))
            return false;
    }
    return true;
}

static bool msg_eq(const struct vnet_msg *a, const struct vnet_msg *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case VNET_MSG_SNAPSHOT:
        return memcmp(&a->u.snapshot.network, &b->u.snapshot.network,
                      sizeof(a->u.snapshot.network)) == 0 &&
               a->u.snapshot.nnodes == b->u.snapshot.nnodes &&
               (a->u.snapshot.nnodes == 0 ||
                memcmp(a->u.snapshot.nodes, b->u.snapshot.nodes,
                       a->u.snapshot.nnodes * sizeof(struct vnet_node_info)) == 0);
    case VNET_MSG_DELTA:
        return a->u.delta.from == b->u.delta.from && a->u.delta.to == b->u.delta.to &&
               a->u.delta.nchanges == b->u.delta.nchanges &&
               (a->u.delta.nchanges == 0 ||
                memcmp(a->u.delta.changes, b->u.delta.changes,
                       a->u.delta.nchanges * sizeof(struct vnet_change)) == 0);
    case VNET_MSG_REPLY: {
        const struct vnet_msg_reply *x = &a->u.reply, *y = &b->u.reply;
        return x->id == y->id && x->code == y->code && strcmp(x->text, y->text) == 0 &&
               x->nnetworks == y->nnetworks && x->nnodes == y->nnodes && x->nstatus == y->nstatus &&
               (!x->nnetworks ||
                memcmp(x->networks, y->networks, x->nnetworks * sizeof(*x->networks)) == 0) &&
               (!x->nnodes || memcmp(x->nodes, y->nodes, x->nnodes * sizeof(*x->nodes)) == 0) &&
               status_eq(x->status, y->status, x->nstatus) && strcmp(x->token, y->token) == 0 &&
               x->nsubscribers == y->nsubscribers &&
               subscribers_eq(x->subscribers, y->subscribers, x->nsubscribers);
    }
    case VNET_MSG_REPORT:
        return a->u.report.len == b->u.report.len &&
               (!a->u.report.len ||
                memcmp(a->u.report.body, b->u.report.body, a->u.report.len) == 0);
    default:
        return memcmp(&a->u, &b->u, sizeof(a->u)) == 0;
    }
}

static void roundtrip(const struct vnet_msg *m)
{
    size_t len;
    uint8_t *body = encode_body(m, &len);
    struct vnet_msg out;
    char err[128];
    int rc = vnet_msg_decode(body, len, &out, err, sizeof(err));
    ck_assert_msg(rc == 0, "decode %s: %s", vnet_msg_type_name(m->type), err);
    ck_assert_msg(msg_eq(m, &out), "%s differs after a round trip", vnet_msg_type_name(m->type));
    /* and the decoded message encodes to the same bytes */
    size_t len2;
    uint8_t *body2 = encode_body(&out, &len2);
    ck_assert_uint_eq(len, len2);
    ck_assert(memcmp(body, body2, len) == 0);
    free(body2);
    vnet_msg_free(&out);
    free(body);
}

/* The full request for @op with the fields of @has filled and the rest zero. */
static void make_request(struct vnet_msg *m, enum vnet_req_op op, uint32_t has)
{
    memset(m, 0, sizeof(*m));
    m->type = VNET_MSG_REQUEST;
    struct vnet_msg_request *r = &m->u.request;
    r->id = 0x12345678;
    r->op = op;
    r->has = has;
    if (op != VNET_REQ_NETWORK_LIST)
        snprintf(r->network, sizeof(r->network), "prod.eu-1");
    if (op >= VNET_REQ_NODE_ADD && op != VNET_REQ_NODE_LIST)
        snprintf(r->node, sizeof(r->node), "web_01");
    if (has & VNET_REQ_HAS_VNI)
        r->vni = 4096;
    if (has & VNET_REQ_HAS_SUBNET4) {
        ip4(&r->subnet4.ip, 172, 16, 0, 0);
        r->subnet4.len = 12;
    }
    if (has & VNET_REQ_HAS_SUBNET6) {
        ip6(&r->subnet6.ip, 0xfd12, 0);
        r->subnet6.len = 48;
    }
    if (has & VNET_REQ_HAS_MTU)
        r->mtu = 9000;
    if (has & VNET_REQ_HAS_MAC) {
        uint8_t mac[6] = {2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
        memcpy(r->mac.b, mac, 6);
    }
    if (has & VNET_REQ_HAS_IP4)
        ip4(&r->ip4, 172, 16, 0, 9);
    if (has & VNET_REQ_HAS_IP6)
        ip6(&r->ip6, 0xfd12, 9);
    if (has & VNET_REQ_HAS_PHYS) {
        ip6(&r->phys.ip, 0x2001, 0xdb8);
        r->phys.port = 65535;
    }
    if (has & VNET_REQ_HAS_PUBKEY)
        memset(r->pubkey, 0x5a, sizeof(r->pubkey));
}

/* One message of each type, with arrays (freed with vnet_msg_free). */
#define NSAMPLES 13
static void make_samples(struct vnet_msg s[NSAMPLES])
{
    memset(s, 0, NSAMPLES * sizeof(*s));
    s[0].type = VNET_MSG_HELLO;
    s[0].u.hello.version = VNET_PROTO_VERSION;
    s[0].u.hello.role = VNET_ROLE_NODE;
    snprintf(s[0].u.hello.network, VNET_NAME_MAX, "net-a");
    snprintf(s[0].u.hello.node, VNET_NAME_MAX, "node-1");
    s[0].u.hello.revision = 41;
    s[0].u.hello.auth_len = 300;
    for (int i = 0; i < 300; i++)
        s[0].u.hello.auth[i] = (uint8_t)i;

    s[1].type = VNET_MSG_WELCOME;
    s[1].u.welcome.version = VNET_PROTO_VERSION;
    fill_network(&s[1].u.welcome.network);
    fill_node(&s[1].u.welcome.node, 1);
    s[1].u.welcome.auth_len = 3;
    memcpy(s[1].u.welcome.auth, "abc", 3);

    s[2].type = VNET_MSG_SNAPSHOT;
    fill_network(&s[2].u.snapshot.network);
    s[2].u.snapshot.nnodes = 6;
    s[2].u.snapshot.nodes = calloc(6, sizeof(struct vnet_node_info));
    for (uint64_t i = 0; i < 6; i++)
        fill_node(&s[2].u.snapshot.nodes[i], i * 1000 + i);

    s[3].type = VNET_MSG_DELTA;
    s[3].u.delta.from = 10;
    s[3].u.delta.to = 13;
    s[3].u.delta.nchanges = 3;
    s[3].u.delta.changes = calloc(3, sizeof(struct vnet_change));
    for (int i = 0; i < 3; i++) {
        struct vnet_change *c = &s[3].u.delta.changes[i];
        c->network_id = 7;
        c->revision = 11 + (uint64_t)i;
        c->op = (enum vnet_change_op)(i + 1);
        if (c->op != VNET_CHANGE_NET_PUT)
            fill_node(&c->node, (uint64_t)i + 3);
    }

    s[4].type = VNET_MSG_ACK;
    s[4].u.ack.revision = UINT64_MAX;

    s[5].type = VNET_MSG_ENDPOINT;
    ip4(&s[5].u.endpoint.ep.ip, 198, 51, 100, 7);
    s[5].u.endpoint.ep.port = 4789;

    s[6].type = VNET_MSG_KEEPALIVE;

    s[7].type = VNET_MSG_ERROR;
    s[7].u.error.code = VNET_EVERSION;
    snprintf(s[7].u.error.text, VNET_MSG_TEXT_MAX, "unsupported protocol version 9 (é)");

    make_request(&s[8], VNET_REQ_NODE_ADD, 0x1f0);

    s[9].type = VNET_MSG_REPLY;
    s[9].u.reply.id = 99;
    s[9].u.reply.nnetworks = 2;
    s[9].u.reply.networks = calloc(2, sizeof(struct vnet_network));
    fill_network(&s[9].u.reply.networks[0]);
    fill_network(&s[9].u.reply.networks[1]);
    s[9].u.reply.networks[1].id = 8;
    memset(&s[9].u.reply.networks[1].subnet6, 0, sizeof(struct vnet_prefix));
    s[9].u.reply.nnodes = 2;
    s[9].u.reply.nodes = calloc(2, sizeof(struct vnet_node_info));
    fill_node(&s[9].u.reply.nodes[0], 5);
    fill_node(&s[9].u.reply.nodes[1], 6);
    s[9].u.reply.nstatus = 2;
    s[9].u.reply.status = calloc(2, sizeof(struct vnet_node_status));
    fill_node(&s[9].u.reply.status[0].node, 7);
    s[9].u.reply.status[0].acked = 12;
    s[9].u.reply.status[0].connected = 1;
    s[9].u.reply.status[0].connected_since_ms = 1790000000000ull;
    fill_node(&s[9].u.reply.status[1].node, 8);
    snprintf(s[9].u.reply.token, VNET_MSG_TEXT_MAX, "vnetapi1-x");
    s[9].u.reply.nsubscribers = 2;
    s[9].u.reply.subscribers = calloc(2, sizeof(struct vnet_subscriber));
    fill_subscriber(&s[9].u.reply.subscribers[0], 1, "admin");
    fill_subscriber(&s[9].u.reply.subscribers[1], 1ull << 40, "tenant.a-1");

    s[10].type = VNET_MSG_REPLY;
    s[10].u.reply.id = 100;
    s[10].u.reply.code = VNET_ENOENT;
    snprintf(s[10].u.reply.text, VNET_MSG_TEXT_MAX, "no network 'x'");

    make_request(&s[11], VNET_REQ_NETWORK_CREATE, 0x0f);

    s[12].type = VNET_MSG_HELLO;
    s[12].u.hello.version = VNET_PROTO_VERSION;
    s[12].u.hello.role = VNET_ROLE_CLIENT;
}

static void free_samples(struct vnet_msg s[NSAMPLES])
{
    for (int i = 0; i < NSAMPLES; i++)
        vnet_msg_free(&s[i]);
}

/* Decodes an exact-size heap copy; on failure checks that nothing is left to free. */
static int decode_copy(const uint8_t *data, size_t len, struct vnet_msg *out, char *err,
                       size_t errlen)
{
    uint8_t *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, data, len);
    int rc = vnet_msg_decode(copy, len, out, err, errlen);
    free(copy);
    if (rc != 0) {
        static const struct vnet_msg zero;
        ck_assert(memcmp(out, &zero, sizeof(zero)) == 0);
    }
    return rc;
}

/* Bytes from hex text ("93 01 c0"); returns the length. */
static size_t hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        unsigned v;
        ck_assert(sscanf(s, "%2x", &v) == 1);
        ck_assert(n < cap);
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static int decode_hex(const char *h, char *err, size_t errlen)
{
    uint8_t b[1024];
    size_t n = hex(h, b, sizeof(b));
    struct vnet_msg m;
    int rc = decode_copy(b, n, &m, err, errlen);
    vnet_msg_free(&m);
    return rc;
}

#define ACCEPT(h)                                                                                  \
    do {                                                                                           \
        char e_[160];                                                                              \
        int r_ = decode_hex(h, e_, sizeof(e_));                                                    \
        ck_assert_msg(r_ == 0, "refused %s: %s", h, e_);                                           \
    } while (0)

#define REJECT(h)                                                                                  \
    do {                                                                                           \
        char e_[160];                                                                              \
        int r_ = decode_hex(h, e_, sizeof(e_));                                                    \
        if (getenv("PROTO_VERBOSE"))                                                               \
            printf("%d: %s\n", __LINE__, e_);                                                      \
        ck_assert_msg(r_ == VNET_EPROTO, "accepted %s", h);                                        \
        ck_assert_msg(e_[0] != '\0', "no reason for %s", h);                                       \
    } while (0)

/* A report with @np peers (malloc'd: vnet_report_free), every field away from zero. */
static void fill_report(struct vnet_report *r, uint32_t np)
{
    memset(r, 0, sizeof(*r));
    r->virt = (struct vnet_report_counters){1, 1500, 2, 3000};
    r->under = (struct vnet_report_counters){UINT64_MAX, 1ull << 40, 7, 0};
    r->drop_reasons[0] = 1;
    r->drop_reasons[3] = 1000;
    r->drop_reasons[VNET_REPORT_DROPS - 1] = UINT64_MAX - 1001;
    r->drops = UINT64_MAX;
    r->table_size = 123456;
    r->npeers = np;
    r->peers = np ? calloc(np, sizeof(*r->peers)) : NULL;
    for (uint32_t k = 0; k < np; k++) {
        struct vnet_report_peer *p = &r->peers[k];
        p->node_id = k ? 1000 + k : 0;
        if (k % 2)
            ip6(&p->ep.ip, 0xfd20, k);
        else
            ip4(&p->ep.ip, 10, 200, 0, (uint8_t)k);
        p->ep.port = (uint16_t)(4789 + k);
        p->c = (struct vnet_report_counters){k, 100ull * k, k + 1, UINT64_MAX - k};
        p->has_last_rx = k % 3 != 0;
        p->last_rx_ms = p->has_last_rx ? 250ull * k : 0;
        p->reach = p->has_last_rx && k % 2 ? VNET_REACH_DIRECT : VNET_REACH_NONE;
        p->has_rtt = k == 2;
        p->rtt_us = p->has_rtt ? UINT32_MAX : 0;
    }
}

/* ---- names ---- */

/* ---- reports ---- */

START_TEST(t_report_roundtrip)
{
    for (uint32_t np = 0; np < 6; np++) {
        struct vnet_report r, r2;
        struct vnet_buf b = {0}, b2 = {0};
        char err[160];
        fill_report(&r, np);
        ck_assert_int_eq(vnet_report_encode(&r, &b), 0);
        ck_assert_int_eq(vnet_report_decode(b.data, b.len, &r2, err, sizeof(err)), 0);
        ck_assert_msg(report_eq(&r, &r2), "report of %u peers differs after a round trip", np);
        ck_assert_int_eq(vnet_report_encode(&r2, &b2), 0);
        ck_assert(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);

        /* inside a REPORT, and per node in a network.status reply */
        struct vnet_msg m;
        memset(&m, 0, sizeof(m));
        m.type = VNET_MSG_REPORT;
        m.u.report.body = b.data;
        m.u.report.len = (uint32_t)b.len;
        roundtrip(&m);
        memset(&m, 0, sizeof(m));
        m.type = VNET_MSG_REPLY;
        m.u.reply.nstatus = 2;
        m.u.reply.status = calloc(2, sizeof(struct vnet_node_status));
        fill_node(&m.u.reply.status[0].node, 1);
        fill_node(&m.u.reply.status[1].node, 2);
        m.u.reply.status[0].has_report = true;
        m.u.reply.status[0].report_age_ms = 1234;
        m.u.reply.status[0].report = r;
        m.u.reply.status[0].last_seen_ms = 1790000000000ull;
        ip4(&m.u.reply.status[0].session_from.ip, 10, 200, 0, 1);
        m.u.reply.status[0].session_from.port = 40000;
        roundtrip(&m);
        vnet_msg_free(&m); /* frees r's peers too */
        vnet_report_free(&r2);
        vnet_buf_free(&b);
        vnet_buf_free(&b2);
    }
    /* a zero report: the smallest encoding */
    struct vnet_report z;
    memset(&z, 0, sizeof(z));
    struct vnet_buf b = {0};
    ck_assert_int_eq(vnet_report_encode(&z, &b), 0);
    uint8_t want[32];
    size_t n = hex("96 94 00 00 00 00 94 00 00 00 00 00 90 00 90", want, sizeof(want));
    ck_assert_uint_eq(b.len, n);
    ck_assert(memcmp(b.data, want, n) == 0);
    vnet_buf_free(&b);
}
END_TEST

static int report_hex(const char *h, char *err, size_t errlen)
{
    uint8_t b[1024];
    size_t n = hex(h, b, sizeof(b));
    struct vnet_report r;
    int rc = vnet_report_decode(b, n, &r, err, errlen);
    if (rc) {
        static const struct vnet_report zero;
        ck_assert(memcmp(&r, &zero, sizeof(r)) == 0); /* nothing left to free */
    }
    vnet_report_free(&r);
    return rc;
}

#define R_ACCEPT(h)                                                                                \
    do {                                                                                           \
        char e_[160];                                                                              \
        int r_ = report_hex(h, e_, sizeof(e_));                                                    \
        ck_assert_msg(r_ == 0, "refused %s: %s", h, e_);                                           \
    } while (0)
#define R_REJECT(h)                                                                                \
    do {                                                                                           \
        char e_[160];                                                                              \
        int r_ = report_hex(h, e_, sizeof(e_));                                                    \
        ck_assert_msg(r_ == VNET_EPROTO, "accepted %s", h);                                        \
        ck_assert_msg(e_[0] != '\0', "no reason for %s", h);                                       \
    } while (0)

/* Malformed reports: each refused with a reason, nothing left allocated. */
START_TEST(t_report_malformed)
{
#define C0   "94 00 00 00 00"
#define PEER "99 01 92 c4 04 0a 00 00 02 cd 12 b5 94 01 02 03 04 05 01 c0"
    R_ACCEPT("96 " C0 " " C0 " 00 90 00 90");
    R_ACCEPT("96 " C0 " " C0 " 03 92 92 00 01 92 1f 02 05 91 " PEER);
    R_REJECT("");
    R_REJECT("c0");
    R_REJECT("95 " C0 " " C0 " 00 90 00");                      /* 5 fields */
    R_REJECT("97 " C0 " " C0 " 00 90 00 90 00");                /* 7 fields */
    R_REJECT("96 93 00 00 00 " C0 " 00 90 00 90");              /* counters of 3 */
    R_REJECT("96 " C0 " " C0 " d0 ff 90 00 90");                /* negative drops */
    R_REJECT("96 " C0 " " C0 " 00 91 92 20 01 00 90");          /* reason 32 */
    R_REJECT("96 " C0 " " C0 " 00 92 92 03 01 92 02 01 00 90"); /* out of order */
    R_REJECT("96 " C0 " " C0 " 00 92 92 03 01 92 03 01 00 90"); /* twice */
    R_REJECT("96 " C0 " " C0 " 00 91 92 03 00 00 90");          /* zero count */
    R_REJECT("96 " C0 " " C0 " 00 91 93 03 01 01 00 90");       /* a triple */
    R_REJECT("96 " C0 " " C0 " 00 90 00 91 c0");                /* nil peer */
    R_REJECT("96 " C0 " " C0 " 00 90 00 dd 00 01 00 00 " PEER); /* 65536 peers in a few bytes */
    R_REJECT("96 " C0 " " C0 " 00 90 00 91 "
             "99 01 92 c4 04 0a 00 00 02 cd 12 b5 94 01 02 03 04 05 02 c0"); /* reach 2 */
    R_REJECT("96 " C0 " " C0 " 00 90 00 91 "
             "98 01 92 c4 04 0a 00 00 02 cd 12 b5 94 01 02 03 04 05 01"); /* peer of 8 */
    R_REJECT("96 " C0 " " C0 " 00 90 00 91 "
             "99 01 92 c4 04 0a 00 00 02 00 94 01 02 03 04 05 01 c0"); /* port 0 */
    R_REJECT("96 " C0 " " C0 " 00 90 00 91 "
             "99 01 c0 94 01 02 03 04 05 01 c0"); /* no endpoint */
    R_REJECT("96 " C0 " " C0 " 00 90 00 91 "
             "99 01 92 c4 04 0a 00 00 02 cd 12 b5 94 01 02 03 04 05 01 cf 00 00 00 01 00 00 00 00");
    /* rtt over uint32 */
    R_REJECT("96 " C0 " " C0 " 00 90 00 90 c0"); /* trailing byte */

    /* every truncation of a valid report */
    uint8_t full[256];
    size_t n = hex("96 " C0 " " C0 " 03 92 92 00 01 92 1f 02 05 91 " PEER, full, sizeof(full));
    for (size_t cut = 0; cut < n; cut++) {
        struct vnet_report r;
        char err[160];
        ck_assert_int_eq(vnet_report_decode(full, cut, &r, err, sizeof(err)), VNET_EPROTO);
        ck_assert(err[0] != '\0');
    }

    /* REPORT: a bin, at most VNET_REPORT_MAX bytes; its content is not judged by the codec */
    ACCEPT("92 0b c4 00");
    ACCEPT("92 0b c4 02 c0 c0");
    REJECT("92 0b a1 61"); /* str */
    REJECT("92 0b c0");
    REJECT("91 0b");
    REJECT("93 0b c4 00 c4 00");
    size_t big = VNET_REPORT_MAX + 1;
    uint8_t *frame = calloc(1, big + 8);
    memcpy(frame, "\x92\x0b\xc6\x00\x01\x00\x00", 7); /* bin 32 of 65536 bytes */
    struct vnet_msg m;
    char err[160];
    ck_assert_int_eq(decode_copy(frame, 7 + big, &m, err, sizeof(err)), VNET_EPROTO);
    ck_assert(strstr(err, "at most") != NULL);
    memcpy(frame, "\x92\x0b\xc5\xff\xff", 5); /* the largest: 65535 */
    ck_assert_int_eq(decode_copy(frame, 5 + VNET_REPORT_MAX, &m, err, sizeof(err)), 0);
    ck_assert_uint_eq(m.u.report.len, VNET_REPORT_MAX);
    vnet_msg_free(&m);
    free(frame);

    /* a status entry: the age and the report come together or not at all */
    struct vnet_buf b = {0};
    struct vnet_msg r;
    memset(&r, 0, sizeof(r));
    r.type = VNET_MSG_REPLY;
    r.u.reply.nstatus = 1;
    r.u.reply.status = calloc(1, sizeof(struct vnet_node_status));
    fill_node(&r.u.reply.status[0].node, 1);
    ck_assert_int_eq(vnet_msg_encode(&r, &b), 0);
    vnet_msg_free(&r);
    /* the reply ends with the entry's session_from, age and report (nil, nil, nil), then the
     * token (a0) and the subscribers (90) */
    ck_assert(b.len > 8 && memcmp(b.data + b.len - 5, "\xc0\xc0\xc0\xa0\x90", 5) == 0);
    ck_assert_int_eq(decode_copy(b.data + 4, b.len - 4, &r, err, sizeof(err)), 0);
    vnet_msg_free(&r);
    b.data[b.len - 4] = 0x05; /* an age without a report */
    ck_assert_int_eq(decode_copy(b.data + 4, b.len - 4, &r, err, sizeof(err)), VNET_EPROTO);
    b.data[b.len - 4] = 0xc0;
    b.data[b.len - 3] = 0x90; /* a report (even a short one) without an age */
    ck_assert_int_eq(decode_copy(b.data + 4, b.len - 4, &r, err, sizeof(err)), VNET_EPROTO);
    ck_assert(strstr(err, "status.report") != NULL);
    vnet_buf_free(&b);
#undef C0
#undef PEER
}
END_TEST

/* The encoder: a bad reach is refused, too many peers for VNET_REPORT_MAX is VNET_EMSGSIZE. */
START_TEST(t_report_encode_limits)
{
    struct vnet_report r;
    struct vnet_buf b = {0};
    fill_report(&r, 3);
    r.peers[1].reach = 2;
    ck_assert_int_eq(vnet_report_encode(&r, &b), VNET_EINVAL);
    ck_assert_uint_eq(b.len, 0);
    r.peers[1].reach = 0;
    r.peers[1].ep.port = 0;
    ck_assert_int_eq(vnet_report_encode(&r, &b), VNET_EINVAL);
    vnet_report_free(&r);
    fill_report(&r, 4000);
    ck_assert_int_eq(vnet_report_encode(&r, &b), VNET_EMSGSIZE);
    ck_assert_uint_eq(b.len, 0);
    r.npeers = 500;
    ck_assert_int_eq(vnet_report_encode(&r, &b), 0);
    ck_assert_uint_le(b.len, VNET_REPORT_MAX);
    vnet_report_free(&r);
    vnet_buf_free(&b);
    vnet_report_free(NULL);
    ck_assert_int_eq(vnet_report_encode(NULL, &b), VNET_EINVAL);
    ck_assert_int_eq(vnet_report_decode(NULL, 3, &r, NULL, 0), VNET_EINVAL);
}
END_TEST

START_TEST(t_names)
{
    ck_assert_str_eq(vnet_msg_type_name(VNET_MSG_HELLO), "hello");
    ck_assert_str_eq(vnet_msg_type_name(VNET_MSG_REPLY), "reply");
    ck_assert_str_eq(vnet_msg_type_name((enum vnet_msg_type)0), "unknown");
    ck_assert_str_eq(vnet_msg_type_name(VNET_MSG_REPORT), "report");
    ck_assert_str_eq(vnet_msg_type_name((enum vnet_msg_type)12), "unknown");
    ck_assert_str_eq(vnet_req_op_name(VNET_REQ_NETWORK_CREATE), "network.create");
    ck_assert_str_eq(vnet_req_op_name(VNET_REQ_NODE_REMOVE), "node.remove");
    ck_assert_int_eq(VNET_REQ_SUBSCRIBER_CREATE, 11);
    ck_assert_int_eq(VNET_REQ_SUBSCRIBER_TOKEN, 14);
    ck_assert_str_eq(vnet_req_op_name(VNET_REQ_SUBSCRIBER_CREATE), "subscriber.create");
    ck_assert_str_eq(vnet_req_op_name(VNET_REQ_SUBSCRIBER_LIST), "subscriber.list");
    ck_assert_str_eq(vnet_req_op_name(VNET_REQ_SUBSCRIBER_DELETE), "subscriber.delete");
    ck_assert_str_eq(vnet_req_op_name(VNET_REQ_SUBSCRIBER_TOKEN), "subscriber.token");
    ck_assert_str_eq(vnet_req_op_name(VNET_REQ_NODE_REVOKE), "node.revoke");
    ck_assert_int_eq(VNET_REQ_NODE_REVOKE, 15);
    ck_assert_str_eq(vnet_req_op_name((enum vnet_req_op)16), "unknown");
    ck_assert_str_eq(vnet_req_op_name((enum vnet_req_op)0), "unknown");
    for (int op = VNET_REQ_NETWORK_CREATE; op <= VNET_REQ_NODE_REVOKE; op++) {
        enum vnet_req_op got = 0;
        ck_assert_int_eq(vnet_req_op_parse(vnet_req_op_name((enum vnet_req_op)op), &got), 0);
        ck_assert_int_eq(got, op);
    }
    enum vnet_req_op keep = VNET_REQ_NODE_ADD;
    ck_assert_int_eq(vnet_req_op_parse("network", &keep), VNET_EINVAL);
    ck_assert_int_eq(vnet_req_op_parse("", &keep), VNET_EINVAL);
    ck_assert_int_eq(vnet_req_op_parse(NULL, &keep), VNET_EINVAL);
    ck_assert_int_eq(keep, VNET_REQ_NODE_ADD);
}
END_TEST

/* ---- round trips ---- */

START_TEST(t_roundtrip_samples)
{
    struct vnet_msg s[NSAMPLES];
    make_samples(s);
    for (int i = 0; i < NSAMPLES; i++)
        roundtrip(&s[i]);
    free_samples(s);
}
END_TEST

START_TEST(t_roundtrip_extremes)
{
    struct vnet_msg m;
    /* maximal strings, auth and integers */
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = UINT32_MAX;
    m.u.hello.role = VNET_ROLE_NODE;
    memset(m.u.hello.network, 'n', VNET_NAME_MAX - 1);
    memset(m.u.hello.node, '~', VNET_NAME_MAX - 1);
    m.u.hello.revision = UINT64_MAX;
    m.u.hello.auth_len = VNET_AUTH_MAX;
    memset(m.u.hello.auth, 0xff, VNET_AUTH_MAX);
    roundtrip(&m);

    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ERROR;
    m.u.error.code = INT32_MIN;
    memset(m.u.error.text, 'x', VNET_MSG_TEXT_MAX - 1);
    roundtrip(&m);
    int32_t codes[] = {0, -1, -32, -33, -128, -129, -32768, -32769, 1, 127, 128, INT32_MAX};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        m.u.error.code = codes[i];
        memset(m.u.error.text, 0, sizeof(m.u.error.text));
        memset(m.u.error.text, 'y', i * 20);
        roundtrip(&m);
    }

    /* every integer width */
    uint64_t revs[] = {0, 127, 128, 255, 256, 65535, 65536, 0xffffffffull, 0x100000000ull};
    for (size_t i = 0; i < sizeof(revs) / sizeof(revs[0]); i++) {
        memset(&m, 0, sizeof(m));
        m.type = VNET_MSG_ACK;
        m.u.ack.revision = revs[i];
        roundtrip(&m);
    }

    /* a zeroed WELCOME (what a client gets) and an endpoint on IPv6 */
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_WELCOME;
    roundtrip(&m);
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ENDPOINT;
    ip6(&m.u.endpoint.ep.ip, 0x2001, 1);
    m.u.endpoint.ep.port = 1;
    roundtrip(&m);
    m.u.endpoint.has_nonce = true; /* with the data-plane nonce */
    for (int i = 0; i < VNET_DP_NONCE_LEN; i++)
        m.u.endpoint.nonce[i] = (uint8_t)(i * 13 + 1);
    roundtrip(&m);

    /* node records with and without the data-plane nonce, side by side */
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_SNAPSHOT;
    fill_network(&m.u.snapshot.network);
    struct vnet_node_info nn[2];
    fill_node(&nn[0], 7);
    fill_node(&nn[1], 8);
    nn[1].has_dp_nonce = true;
    memset(nn[1].dp_nonce, 0x5a, sizeof(nn[1].dp_nonce));
    m.u.snapshot.nodes = nn;
    m.u.snapshot.nnodes = 2;
    roundtrip(&m);

    /* empty snapshot and delta, prefixes of length 0 and full length */
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_SNAPSHOT;
    fill_network(&m.u.snapshot.network);
    m.u.snapshot.network.subnet4.len = 32;
    m.u.snapshot.network.subnet6.len = 0;
    roundtrip(&m);
    m.u.snapshot.network.subnet6.len = 128;
    roundtrip(&m);
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_DELTA;
    roundtrip(&m);
}
END_TEST

START_TEST(t_roundtrip_snapshot_10000)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_SNAPSHOT;
    fill_network(&m.u.snapshot.network);
    m.u.snapshot.nnodes = 10000;
    m.u.snapshot.nodes = calloc(10000, sizeof(struct vnet_node_info));
    ck_assert_ptr_nonnull(m.u.snapshot.nodes);
    for (uint64_t i = 0; i < 10000; i++)
        fill_node(&m.u.snapshot.nodes[i], i);
    roundtrip(&m);
    vnet_msg_free(&m);
}
END_TEST

START_TEST(t_roundtrip_delta)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_DELTA;
    m.u.delta.from = 100;
    m.u.delta.to = 400;
    m.u.delta.nchanges = 300;
    m.u.delta.changes = calloc(300, sizeof(struct vnet_change));
    for (uint32_t i = 0; i < 300; i++) {
        struct vnet_change *c = &m.u.delta.changes[i];
        c->network_id = 7;
        c->revision = 101 + i;
        c->op = (enum vnet_change_op)(1 + i % 3);
        if (c->op != VNET_CHANGE_NET_PUT) {
            fill_node(&c->node, i);
            if (c->op == VNET_CHANGE_NODE_DEL)
                c->node.state = VNET_NODE_REMOVED;
        }
    }
    roundtrip(&m);
    vnet_msg_free(&m);
}
END_TEST

START_TEST(t_roundtrip_requests)
{
    /* every op with every combination of the nine optional fields */
    for (int op = VNET_REQ_NETWORK_CREATE; op <= VNET_REQ_NODE_REVOKE; op++) {
        for (uint32_t has = 0; has <= 0x1ff; has++) {
            struct vnet_msg m;
            make_request(&m, (enum vnet_req_op)op, has);
            roundtrip(&m);
        }
    }
}
END_TEST

START_TEST(t_roundtrip_replies)
{
    struct vnet_msg m;
    for (uint32_t n = 0; n < 20; n += 3) {
        memset(&m, 0, sizeof(m));
        m.type = VNET_MSG_REPLY;
        m.u.reply.id = n;
        m.u.reply.nnetworks = n;
        m.u.reply.networks = n ? calloc(n, sizeof(struct vnet_network)) : NULL;
        m.u.reply.nnodes = n + 1;
        m.u.reply.nodes = calloc(n + 1, sizeof(struct vnet_node_info));
        m.u.reply.nstatus = n / 2;
        m.u.reply.status = n / 2 ? calloc(n / 2, sizeof(struct vnet_node_status)) : NULL;
        for (uint32_t i = 0; i < n; i++) {
            fill_network(&m.u.reply.networks[i]);
            m.u.reply.networks[i].id = i;
        }
        for (uint32_t i = 0; i < n + 1; i++)
            fill_node(&m.u.reply.nodes[i], i * 7);
        for (uint32_t i = 0; i < n / 2; i++) {
            fill_node(&m.u.reply.status[i].node, i);
            m.u.reply.status[i].connected = i % 2;
            m.u.reply.status[i].acked = i;
            m.u.reply.status[i].connected_since_ms = i % 2 ? 1790000000000ull + i : 0;
        }
        m.u.reply.nsubscribers = n;
        m.u.reply.subscribers = n ? calloc(n, sizeof(struct vnet_subscriber)) : NULL;
        for (uint32_t i = 0; i < n; i++) {
            char name[VNET_NAME_MAX];
            snprintf(name, sizeof(name), "sub-%u", i);
            fill_subscriber(&m.u.reply.subscribers[i], i + 1, name);
        }
        if (n % 2)
            snprintf(m.u.reply.token, VNET_MSG_TEXT_MAX,
                     "vnetapi1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        roundtrip(&m);
        vnet_msg_free(&m);
    }
}
END_TEST

/* ---- malformed input ---- */

START_TEST(t_truncated)
{
    struct vnet_msg s[NSAMPLES];
    make_samples(s);
    for (int i = 0; i < NSAMPLES; i++) {
        size_t len;
        uint8_t *body = encode_body(&s[i], &len);
        for (size_t cut = 0; cut < len; cut++) {
            struct vnet_msg m;
            char err[128];
            int rc = decode_copy(body, cut, &m, err, sizeof(err));
            ck_assert_msg(rc == VNET_EPROTO, "%s cut at %zu/%zu decoded",
                          vnet_msg_type_name(s[i].type), cut, len);
        }
        free(body);
    }
    free_samples(s);
}
END_TEST

START_TEST(t_trailing)
{
    struct vnet_msg s[NSAMPLES];
    make_samples(s);
    static const uint8_t junk[] = {0x00, 0xc0, 0x90, 0xff};
    for (int i = 0; i < NSAMPLES; i++) {
        size_t len;
        uint8_t *body = encode_body(&s[i], &len);
        uint8_t *longer = malloc(len + 2);
        memcpy(longer, body, len);
        for (size_t j = 0; j < sizeof(junk); j++) {
            struct vnet_msg m;
            char err[128];
            longer[len] = junk[j];
            ck_assert_int_eq(decode_copy(longer, len + 1, &m, err, sizeof(err)), VNET_EPROTO);
            ck_assert(strstr(err, "trailing") != NULL);
            longer[len + 1] = junk[j];
            ck_assert_int_eq(decode_copy(longer, len + 2, &m, err, sizeof(err)), VNET_EPROTO);
        }
        /* two messages back to back in one body */
        uint8_t *twice = malloc(2 * len);
        memcpy(twice, body, len);
        memcpy(twice + len, body, len);
        struct vnet_msg m;
        ck_assert_int_eq(decode_copy(twice, 2 * len, &m, NULL, 0), VNET_EPROTO);
        free(twice);
        free(longer);
        free(body);
    }
    free_samples(s);
}
END_TEST

/* Every byte of every sample replaced by type bytes of every other kind: each result either
 * fails cleanly or is a valid message that round-trips. */
START_TEST(t_mutations)
{
    static const uint8_t subst[] = {0xc0, 0xc2, 0xc3, 0x00, 0x7f, 0xff, 0xa0, 0xbf,
                                    0x90, 0x9f, 0x80, 0xc4, 0xca, 0xcb, 0xd4, 0xd9,
                                    0xdc, 0xdd, 0xc1, 0xcf, 0xd3, 0xde, 0xc7};
    struct vnet_msg s[NSAMPLES];
    make_samples(s);
    unsigned accepted = 0, refused = 0;
    for (int i = 0; i < NSAMPLES; i++) {
        size_t len;
        uint8_t *body = encode_body(&s[i], &len);
        uint8_t *mut = malloc(len);
        for (size_t pos = 0; pos < len; pos++) {
            for (size_t j = 0; j < sizeof(subst); j++) {
                if (body[pos] == subst[j])
                    continue;
                memcpy(mut, body, len);
                mut[pos] = subst[j];
                struct vnet_msg m;
                if (decode_copy(mut, len, &m, NULL, 0) == 0) {
                    accepted++;
                    roundtrip(&m);
                    vnet_msg_free(&m);
                } else {
                    refused++;
                }
            }
        }
        free(mut);
        free(body);
    }
    free_samples(s);
    ck_assert_uint_gt(refused, 0);
    ck_assert_uint_gt(accepted, 0);
}
END_TEST

START_TEST(t_reject_types)
{
    /* Valid baselines, so each REJECT below differs from an accepted frame in one place. */
    ACCEPT("91 07");                                        /* keepalive */
    ACCEPT("92 05 2a");                                     /* ack 42 */
    ACCEPT("92 05 cf 00 00 00 00 00 00 00 2a");             /* non-minimal integers are fine */
    ACCEPT("92 05 d0 2a");                                  /* as are signed formats >= 0 */
    ACCEPT("dc 00 02 05 2a");                               /* and array16 */
    ACCEPT("97 01 01 01 a1 61 a1 62 00 c4 00");             /* hello */
    ACCEPT("97 01 01 01 d9 01 61 a0 00 c5 00 00");          /* str8 name, bin16 auth */
    ACCEPT("93 08 d2 ff ff ff ff a0");                      /* error -1 */
    ACCEPT("92 06 92 c4 04 c0 00 02 01 cd 12 b5");          /* endpoint 192.0.2.1:4789 */
    ACCEPT("94 04 01 02 91 94 03 02 07 c0");                /* delta NET_PUT */
    REJECT("");                                             /* empty body */
    REJECT("90");                                           /* empty array */
    REJECT("c0");                                           /* nil */
    REJECT("81 07 c0");                                     /* map */
    REJECT("07");                                           /* not an array */
    REJECT("91 00");                                        /* type 0 */
    REJECT("91 0b");                                        /* type 11 */
    REJECT("91 ff");                                        /* type -1 */
    REJECT("91 cc ff");                                     /* type 255 */
    REJECT("91 ca 40 e0 00 00");                            /* float type */
    REJECT("92 07 c0");                                     /* keepalive with a field */
    REJECT("93 05 2a 2a");                                  /* ack with an extra field */
    REJECT("91 05");                                        /* ack without its field */
    REJECT("92 05 ff");                                     /* negative revision */
    REJECT("92 05 d3 ff ff ff ff ff ff ff ff");             /* negative int64 */
    REJECT("92 05 a1 31");                                  /* revision as str */
    REJECT("92 05 c3");                                     /* revision as bool */
    REJECT("92 05 cb 40 45 00 00 00 00 00 00");             /* revision as float64 */
    REJECT("92 05 c1");                                     /* never-used byte */
    REJECT("92 05 d4 01 2a");                               /* fixext */
    REJECT("98 01 01 01 a1 61 a1 62 00 c4 00 c0");          /* hello with an extra field */
    REJECT("96 01 01 01 a1 61 a1 62 00");                   /* hello without auth */
    REJECT("97 01 01 03 a1 61 a1 62 00 c4 00");             /* role 3 */
    REJECT("97 01 01 00 a1 61 a1 62 00 c4 00");             /* role 0 */
    ACCEPT("97 01 ce 00 00 00 01 01 a1 61 a1 62 00 c4 00"); /* version as uint32 */
    REJECT("97 01 cf 00 00 00 01 00 00 00 00 01 a1 61 a1 62 00 c4 00"); /* version over uint32 */
}
END_TEST

START_TEST(t_reject_values)
{
    char name63[300], name64[300], text255[1000], text256[1000], buf[1024];
    /* names: 63 bytes accepted, 64 refused; NUL, space, control and non-ASCII refused */
    strcpy(name63, "d9 3f");
    strcpy(name64, "d9 40");
    for (int i = 0; i < 64; i++) {
        if (i < 63)
            strcat(name63, " 61");
        strcat(name64, " 61");
    }
    snprintf(buf, sizeof(buf), "97 01 01 01 %s a0 00 c4 00", name63);
    ACCEPT(buf);
    snprintf(buf, sizeof(buf), "97 01 01 01 %s a0 00 c4 00", name64);
    REJECT(buf);
    REJECT("97 01 01 01 a2 61 00 a0 00 c4 00");    /* NUL */
    REJECT("97 01 01 01 a2 61 20 a0 00 c4 00");    /* space */
    REJECT("97 01 01 01 a2 61 0a a0 00 c4 00");    /* newline */
    REJECT("97 01 01 01 a2 c3 a9 a0 00 c4 00");    /* non-ASCII */
    REJECT("97 01 01 01 c4 01 61 a0 00 c4 00");    /* name as bin */
    REJECT("97 01 01 01 a1 61 a1 62 00 a0");       /* auth as str */
    REJECT("97 01 01 01 a1 61 a1 62 00 c0");       /* auth nil */
    REJECT("97 01 01 01 a1 61 a1 62 00 c4 05 00"); /* auth longer than the frame */
    /* auth: 512 accepted, 513 refused */
    uint8_t big[600];
    size_t n = hex("97 01 01 01 a0 a0 00 c5 02 00", big, sizeof(big));
    memset(big + n, 0xab, 512);
    struct vnet_msg m;
    ck_assert_int_eq(decode_copy(big, n + 512, &m, NULL, 0), 0);
    ck_assert_uint_eq(m.u.hello.auth_len, 512);
    vnet_msg_free(&m);
    n = hex("97 01 01 01 a0 a0 00 c5 02 01", big, sizeof(big));
    memset(big + n, 0xab, 513);
    ck_assert_int_eq(decode_copy(big, n + 513, &m, NULL, 0), VNET_EPROTO);
    /* text: 255 accepted, 256 refused, NUL refused */
    strcpy(text255, "93 08 00 d9 ff");
    strcpy(text256, "93 08 00 da 01 00");
    for (int i = 0; i < 256; i++) {
        if (i < 255)
            strcat(text255, " 41");
        strcat(text256, " 41");
    }
    ACCEPT(text255);
    REJECT(text256);
    REJECT("93 08 00 a3 41 00 41");
    REJECT("93 08 ce 80 00 00 00 a0"); /* code over int32 */
    REJECT("93 08 d3 ff ff ff ff 7f ff ff ff a0");
    ACCEPT("93 08 d2 80 00 00 00 a0"); /* INT32_MIN */
    /* endpoints */
    REJECT("92 06 c0");                                  /* nil endpoint */
    REJECT("92 06 92 c4 04 c0 00 02 01 00");             /* port 0 */
    REJECT("92 06 92 c4 04 c0 00 02 01 ce 00 01 00 00"); /* port 65536 */
    ACCEPT("92 06 92 c4 04 c0 00 02 01 cd ff ff");
    REJECT("92 06 92 c4 05 c0 00 02 01 00 01"); /* 5-byte address */
    REJECT("92 06 92 c4 00 01");                /* 0-byte address */
    REJECT("92 06 93 c4 04 c0 00 02 01 01 01"); /* extra field */
    REJECT("92 06 91 c4 04 c0 00 02 01");       /* missing port */
    REJECT("92 06 92 a4 c0 00 02 01 01");       /* address as str */
    /* delta changes: op range, node presence by op */
    REJECT("94 04 01 02 91 94 00 02 07 c0");    /* op 0 */
    REJECT("94 04 01 02 91 94 04 02 07 c0");    /* op 4 */
    REJECT("94 04 01 02 91 94 01 02 07 c0");    /* NODE_PUT without a node */
    REJECT("94 04 01 02 91 94 03 02 07 90");    /* NET_PUT with something */
    REJECT("94 04 01 02 91 95 03 02 07 c0 c0"); /* change with an extra field */
}
END_TEST

/* Node and network fields, each changed in one place from a valid WELCOME. */
START_TEST(t_reject_model)
{
    /* WELCOME: [2, version, network, node, auth, report_ms]
     * network: [id, sub, name, vni, subnet4, subnet6, mtu, rev, mode]
     * node: [id, nid, name, pubkey, mac, [ip, ip], phys, observed, state, rev] */
#define NET_OK  "99 01 02 a1 6e ce 00 ff ff ff 92 c4 04 0a 00 00 00 18 c0 cd 05 aa 03 00"
#define NODE_OK "9a 01 01 a1 6d c0 c4 06 02 00 00 00 00 01 92 c4 04 0a 00 00 01 c0 c0 c0 01 03"
    ACCEPT("96 02 01 " NET_OK " " NODE_OK " c4 00 00");
    /* VNI 2^24 */
    REJECT(
        "96 02 01 99 01 02 a1 6e ce 01 00 00 00 92 c4 04 0a 00 00 00 18 c0 cd 05 aa 03 00 " NODE_OK
        " c4 00 00");
    /* prefix length 33 */
    REJECT("96 02 01 99 01 02 a1 6e 05 92 c4 04 0a 00 00 00 21 c0 cd 05 aa 03 00 " NODE_OK
           " c4 00 00");
    /* IPv6 prefix in subnet4 */
    REJECT("96 02 01 99 01 02 a1 6e 05 92 c4 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
           "18 c0 cd 05 aa 03 00 " NODE_OK " c4 00 00");
    /* IPv6 prefix length 129 in subnet6, then 128 */
    REJECT("96 02 01 99 01 02 a1 6e 05 c0 92 c4 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
           "cc 81 cd 05 aa 03 00 " NODE_OK " c4 00 00");
    ACCEPT("96 02 01 99 01 02 a1 6e 05 c0 92 c4 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
           "cc 80 cd 05 aa 03 00 " NODE_OK " c4 00 00");
    /* mtu over uint32 */
    REJECT("96 02 01 99 01 02 a1 6e 05 c0 c0 cf 00 00 00 01 00 00 00 00 03 " NODE_OK " c4 00 00");
    /* network with 7 and 9 fields */
    REJECT("96 02 01 97 01 02 a1 6e 05 c0 c0 03 " NODE_OK " c4 00 00");
    REJECT("96 02 01 99 01 02 a1 6e 05 c0 c0 03 03 03 " NODE_OK " c4 00 00");
    /* node: MAC of 5 and 7 bytes */
    REJECT("96 02 01 " NET_OK
           " 9a 01 01 a1 6d c0 c4 05 02 00 00 00 00 92 c0 c0 c0 c0 01 03 c4 00 00");
    REJECT("96 02 01 " NET_OK
           " 9a 01 01 a1 6d c0 c4 07 02 00 00 00 00 01 01 92 c0 c0 c0 c0 01 03 c4 00 00");
    ACCEPT("96 02 01 " NET_OK
           " 9a 01 01 a1 6d c0 c4 06 02 00 00 00 00 01 92 c0 c0 c0 c0 01 03 c4 00 00");
    /* MAC nil, as str */
    REJECT("96 02 01 " NET_OK " 9a 01 01 a1 6d c0 c0 92 c0 c0 c0 c0 01 03 c4 00 00");
    REJECT("96 02 01 " NET_OK
           " 9a 01 01 a1 6d c0 a6 02 00 00 00 00 01 92 c0 c0 c0 c0 01 03 c4 00 00");
    /* pubkey of 31 bytes; 32 accepted */
    REJECT(
        "96 02 01 " NET_OK
        " 9a 01 01 a1 6d c4 1f 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
        "00 00 00 00 00 00 00 00 00 c4 06 02 00 00 00 00 01 92 c0 c0 c0 c0 01 03 c4 00 00");
    ACCEPT(
        "96 02 01 " NET_OK
        " 9a 01 01 a1 6d c4 20 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
        "00 00 00 00 00 00 00 00 00 00 c4 06 02 00 00 00 00 01 92 c0 c0 c0 c0 01 03 c4 00 00");
    /* ips: 1 or 3 slots, IP of 15 bytes */
    REJECT("96 02 01 " NET_OK
           " 9a 01 01 a1 6d c0 c4 06 02 00 00 00 00 01 91 c0 c0 c0 01 03 c4 00 00");
    REJECT("96 02 01 " NET_OK
           " 9a 01 01 a1 6d c0 c4 06 02 00 00 00 00 01 93 c0 c0 c0 c0 c0 01 03 c4 00 00");
    REJECT(
        "96 02 01 " NET_OK
        " 9a 01 01 a1 6d c0 c4 06 02 00 00 00 00 01 92 c4 0f 00 00 00 00 00 00 00 00 00 00 00 00 "
        "00 00 00 c0 c0 c0 01 03 c4 00 00");
    /* state 3 */
    REJECT("96 02 01 " NET_OK
           " 9a 01 01 a1 6d c0 c4 06 02 00 00 00 00 01 92 c0 c0 c0 c0 03 03 c4 00 00");
    /* node with 9 fields */
    REJECT("96 02 01 " NET_OK
           " 99 01 01 a1 6d c0 c4 06 02 00 00 00 00 01 92 c0 c0 c0 c0 01 c4 00 00");
    /* nested junk instead of the node: deep arrays */
    char junk[4096] = "96 02 01 " NET_OK;
    for (int i = 0; i < 300; i++)
        strcat(junk, " 91");
    strcat(junk, " c0 c4 00 00");
    REJECT(junk);
#undef NET_OK
#undef NODE_OK
}
END_TEST

START_TEST(t_reject_request)
{
    /* [9, id, op, network, node, vni, subnet4, subnet6, mtu, mac, ip4, ip6, phys, pubkey, mode] */
    ACCEPT("9f 09 01 01 a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0");
    ACCEPT("9f 09 01 0a a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0");
    ACCEPT("9f 09 01 01 a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 01");             /* mode secure */
    REJECT("9f 09 01 01 a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 02");             /* mode 2 */
    REJECT("9f 09 01 00 a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0");             /* op 0 */
    ACCEPT("9f 09 01 0b a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0");             /* op 11 */
    ACCEPT("9f 09 01 0e a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0");             /* op 14 */
    ACCEPT("9f 09 01 0f a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0");             /* op 15 */
    REJECT("9f 09 01 10 a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0");             /* op 16 */
    REJECT("9e 09 01 01 a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0");                /* 14 elements */
    REJECT("dc 00 10 09 01 01 a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0");    /* 16 */
    REJECT("9f 09 01 01 a1 6e a0 ce 01 00 00 00 c0 c0 c0 c0 c0 c0 c0 c0 c0"); /* vni 2^24 */
    ACCEPT("9f 09 01 01 a1 6e a0 ce 00 ff ff ff c0 c0 c0 c0 c0 c0 c0 c0 c0");
    REJECT("9f 09 01 01 a1 6e a0 c0 c0 c0 c0 c0 c4 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
           "00 c0 c0 c0 c0");                                                    /* 16-byte ip4 */
    REJECT("9f 09 01 01 a1 6e a0 c0 c0 c0 c0 c0 c0 c4 04 01 02 03 04 c0 c0 c0"); /* 4-byte ip6 */
    ACCEPT("9f 09 01 01 a1 6e a0 c0 c0 c0 c0 c0 c4 04 01 02 03 04 c0 c0 c0 c0");
    REJECT("9f 09 01 01 a1 6e a0 c0 c0 c0 c0 c4 06 01 02 03 04 05 c0 c0 c0 c0 c0"); /* mac as ip4 */
    REJECT("9f 09 01 01 a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c4 00 c0");                /* 0-byte key */
    REJECT("9f 09 ff 01 a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0");                   /* id < 0 */
    REJECT("9f 09 cf 00 00 00 01 00 00 00 00 01 a1 6e a0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0"); /* >u32 */
}
END_TEST

START_TEST(t_reject_reply_subscribers)
{
    /* [10, id, code, text, networks, nodes, status, token, subscribers] with subscribers of
     * [id, name, admin (bool), has_token (bool)] */
#define R "99 0a 01 00 a0 90 90 90 a0 "
    ACCEPT(R "90");
    ACCEPT(R "91 94 02 a5 61 6c 69 63 65 c2 c3");
    ACCEPT(R "92 94 01 a5 61 64 6d 69 6e c3 c3 94 cf 00 00 00 00 00 00 00 02 a1 62 c2 c2");
    REJECT("98 0a 01 00 a0 90 90 90 a0");            /* 8 elements: no list */
    REJECT(R "c0");                                  /* nil, not a list */
    REJECT(R "91 93 02 a5 61 6c 69 63 65 c2");       /* 3 fields */
    REJECT(R "91 95 02 a5 61 6c 69 63 65 c2 c3 c2"); /* 5 fields */
    REJECT(R "91 94 02 a5 61 6c 69 63 65 00 c3");    /* admin as an integer */
    REJECT(R "91 94 02 a5 61 6c 69 63 65 c2 c0");    /* has_token nil */
    REJECT(R "91 94 ff a5 61 6c 69 63 65 c2 c3");    /* id -1 */
    REJECT(R "91 94 02 a5 61 20 69 63 65 c2 c3");    /* space in the name */
    REJECT(R "91 94 02 c4 05 61 6c 69 63 65 c2 c3"); /* name as bin */
    REJECT(R "dd ff ff ff ff 94 02 a1 61 c2 c3");    /* 2^32-1 of them */
    REJECT(R "92 94 02 a1 61 c2 c3");                /* one of two */
    REJECT(R "91 94 02 a1 61 c2 c3 c0");             /* trailing byte */
#undef R
}
END_TEST

START_TEST(t_huge_counts)
{
    /* A snapshot claiming 2^32-1 nodes in a 20-byte frame: refused before any allocation
     * (under ASan a calloc of that size would abort the test). */
    REJECT("93 03 98 00 00 a0 00 c0 c0 00 00 dd ff ff ff ff");
    REJECT("94 04 00 00 dd ff ff ff ff 00 00 00");
    REJECT("97 0a 00 00 a0 dd ff ff ff ff 90 90");
    REJECT("97 0a 00 00 a0 90 dd 00 01 00 00 90");
    REJECT("97 0a 00 00 a0 90 90 dc ff ff");
    /* a count that fits the bytes left but not at a node's smallest size (20 bytes) */
    char buf[1200] = "93 03 98 00 00 a0 00 c0 c0 00 00 9f";
    for (int i = 0; i < 15 * 19; i++)
        strcat(buf, " 00");
    REJECT(buf);
    /* 16 MiB of nested arrays: refused at the first byte that is not a field, no allocation */
    size_t big = 16u << 20;
    uint8_t *p = malloc(big);
    memset(p, 0x9f, big);
    struct vnet_msg m;
    char err[128];
    ck_assert_int_eq(decode_copy(p, big, &m, err, sizeof(err)), VNET_EPROTO);
    p[0] = 0x93;
    p[1] = 0x03;
    ck_assert_int_eq(decode_copy(p, big, &m, err, sizeof(err)), VNET_EPROTO);
    free(p);
}
END_TEST

/* ---- encoder errors ---- */

START_TEST(t_encode_invalid)
{
    struct vnet_buf b = {0};
    struct vnet_msg m;
    /* a frame already in the buffer stays, a failed one leaves nothing */
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_KEEPALIVE;
    ck_assert_int_eq(vnet_msg_encode(&m, &b), 0);
    ck_assert_uint_eq(b.len, 6);

#define BAD(code, setup)                                                                           \
    do {                                                                                           \
        memset(&m, 0, sizeof(m));                                                                  \
        setup;                                                                                     \
        ck_assert_int_eq(vnet_msg_encode(&m, &b), code);                                           \
        ck_assert_uint_eq(b.len, 6);                                                               \
    } while (0)

    BAD(VNET_EINVAL, m.type = (enum vnet_msg_type)0);
    BAD(VNET_EINVAL, m.type = (enum vnet_msg_type)12);
    BAD(VNET_EINVAL, (m.type = VNET_MSG_HELLO, m.u.hello.role = (enum vnet_role)0));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_HELLO, m.u.hello.role = VNET_ROLE_NODE,
                      memset(m.u.hello.network, 'a', VNET_NAME_MAX)));
    BAD(VNET_EINVAL,
        (m.type = VNET_MSG_HELLO, m.u.hello.role = VNET_ROLE_NODE, strcpy(m.u.hello.node, "a b")));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_HELLO, m.u.hello.role = VNET_ROLE_NODE,
                      m.u.hello.auth_len = VNET_AUTH_MAX + 1));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_ERROR, memset(m.u.error.text, 'x', VNET_MSG_TEXT_MAX)));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_ENDPOINT)); /* no endpoint */
    BAD(VNET_EINVAL, (m.type = VNET_MSG_ENDPOINT, ip4(&m.u.endpoint.ep.ip, 1, 2, 3, 4)));
    BAD(VNET_EINVAL,
        (m.type = VNET_MSG_ENDPOINT, m.u.endpoint.ep.ip.family = 5, m.u.endpoint.ep.port = 1));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_WELCOME, m.u.welcome.network.vni = VNET_VNI_MAX + 1));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_WELCOME, ip6(&m.u.welcome.network.subnet4.ip, 1, 1)));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_WELCOME, ip4(&m.u.welcome.network.subnet4.ip, 1, 1, 1, 1),
                      m.u.welcome.network.subnet4.len = 33));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_WELCOME, m.u.welcome.node.state = (enum vnet_node_state)3));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_WELCOME, m.u.welcome.node.ips[1].family = 1));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_SNAPSHOT, m.u.snapshot.nnodes = 1)); /* NULL array */
    BAD(VNET_EMSGSIZE, (m.type = VNET_MSG_SNAPSHOT, m.u.snapshot.nnodes = 1u << 30));
    BAD(VNET_EMSGSIZE, (m.type = VNET_MSG_DELTA, m.u.delta.nchanges = UINT32_MAX));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_REQUEST, m.u.request.op = (enum vnet_req_op)0));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_REQUEST, m.u.request.op = (enum vnet_req_op)16));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_REPLY, m.u.reply.nsubscribers = 1)); /* NULL array */
    BAD(VNET_EMSGSIZE, (m.type = VNET_MSG_REPLY, m.u.reply.nsubscribers = UINT32_MAX));
    BAD(VNET_EINVAL,
        (m.type = VNET_MSG_REQUEST, m.u.request.op = VNET_REQ_NODE_ADD, m.u.request.has = 0x400));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_REQUEST, m.u.request.op = VNET_REQ_NODE_ADD,
                      m.u.request.has = VNET_REQ_HAS_IP4, ip6(&m.u.request.ip4, 1, 1)));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_REQUEST, m.u.request.op = VNET_REQ_NODE_ADD,
                      m.u.request.has = VNET_REQ_HAS_SUBNET6));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_REQUEST, m.u.request.op = VNET_REQ_NODE_ADD,
                      m.u.request.has = VNET_REQ_HAS_PHYS));
    BAD(VNET_EINVAL, (m.type = VNET_MSG_REQUEST, m.u.request.op = VNET_REQ_NETWORK_CREATE,
                      m.u.request.has = VNET_REQ_HAS_VNI, m.u.request.vni = 1u << 24));
#undef BAD

    /* a change with a bad op */
    struct vnet_change c;
    memset(&c, 0, sizeof(c));
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_DELTA;
    m.u.delta.changes = &c;
    m.u.delta.nchanges = 1;
    ck_assert_int_eq(vnet_msg_encode(&m, &b), VNET_EINVAL);
    c.op = VNET_CHANGE_NET_PUT;
    ck_assert_int_eq(vnet_msg_encode(&m, &b), 0);

    ck_assert_int_eq(vnet_msg_encode(NULL, &b), VNET_EINVAL);
    ck_assert_int_eq(vnet_msg_encode(&m, NULL), VNET_EINVAL);
    vnet_buf_free(&b);
    vnet_buf_free(&b);
    ck_assert_ptr_null(b.data);

    /* a snapshot over VNET_FRAME_MAX: 150,000 nodes of ~160 bytes */
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_SNAPSHOT;
    m.u.snapshot.nnodes = 150000;
    m.u.snapshot.nodes = calloc(150000, sizeof(struct vnet_node_info));
    for (uint32_t i = 0; i < 150000; i++) {
        fill_node(&m.u.snapshot.nodes[i], i);
        m.u.snapshot.nodes[i].has_pubkey = true;
        memset(m.u.snapshot.nodes[i].name, 'z', VNET_NAME_MAX - 1);
    }
    ck_assert_int_eq(vnet_msg_encode(&m, &b), VNET_EMSGSIZE);
    ck_assert_uint_eq(b.len, 0);
    vnet_msg_free(&m);
    vnet_buf_free(&b);
}
END_TEST

START_TEST(t_free_safe)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    vnet_msg_free(&m);
    vnet_msg_free(&m);
    vnet_msg_free(NULL);
    for (int t = 1; t <= VNET_MSG_REPLY; t++) {
        memset(&m, 0, sizeof(m));
        m.type = (enum vnet_msg_type)t;
        vnet_msg_free(&m);
        ck_assert_int_eq(m.type, 0);
    }
    /* decoded messages are freed by roundtrip(); decode failures leave a zeroed message */
    uint8_t junk[] = {0x93, 0x03};
    m.type = VNET_MSG_REPLY;
    ck_assert_int_eq(vnet_msg_decode(junk, sizeof(junk), &m, NULL, 0), VNET_EPROTO);
    ck_assert_int_eq(m.type, 0);
    vnet_msg_free(&m);
    ck_assert_int_eq(vnet_msg_decode(NULL, 0, &m, NULL, 0), VNET_EPROTO);
    /* a failure after arrays were allocated (third node broken) leaks nothing under LSan */
    struct vnet_msg s[NSAMPLES];
    make_samples(s);
    size_t len;
    uint8_t *body = encode_body(&s[9], &len);
    body[len - 1] = 0xc1;
    ck_assert_int_eq(decode_copy(body, len, &m, NULL, 0), VNET_EPROTO);
    free(body);
    free_samples(s);
}
END_TEST

/* ---- frame reader ---- */

static struct vnet_buf sample_stream(struct vnet_msg s[NSAMPLES])
{
    struct vnet_buf b = {0};
    make_samples(s);
    for (int i = 0; i < NSAMPLES; i++)
        ck_assert_int_eq(vnet_msg_encode(&s[i], &b), 0);
    return b;
}

/* Takes every complete frame from @r, checking it against s[*next]. */
static void drain(struct vnet_frame_reader *r, struct vnet_msg s[NSAMPLES], int *next)
{
    const uint8_t *body;
    size_t len;
    int rc;
    while ((rc = vnet_frame_reader_next(r, &body, &len)) == 1) {
        struct vnet_msg m;
        ck_assert_int_lt(*next, NSAMPLES);
        ck_assert_int_eq(vnet_msg_decode(body, len, &m, NULL, 0), 0);
        ck_assert(msg_eq(&s[*next], &m));
        vnet_msg_free(&m);
        (*next)++;
    }
    ck_assert_int_eq(rc, 0);
}

START_TEST(t_reader_splits)
{
    struct vnet_msg s[NSAMPLES];
    struct vnet_buf b = sample_stream(s);
    struct vnet_frame_reader r;

    /* everything in one feed */
    int next = 0;
    vnet_frame_reader_init(&r, 0);
    ck_assert_uint_eq(r.max, VNET_FRAME_MAX);
    ck_assert_int_eq(vnet_frame_reader_feed(&r, b.data, b.len), 0);
    drain(&r, s, &next);
    ck_assert_int_eq(next, NSAMPLES);
    vnet_frame_reader_free(&r);

    /* split in two at every byte */
    for (size_t cut = 0; cut <= b.len; cut++) {
        next = 0;
        vnet_frame_reader_init(&r, 1 << 20);
        ck_assert_int_eq(vnet_frame_reader_feed(&r, b.data, cut), 0);
        drain(&r, s, &next);
        ck_assert_int_eq(vnet_frame_reader_feed(&r, b.data + cut, b.len - cut), 0);
        drain(&r, s, &next);
        ck_assert_int_eq(next, NSAMPLES);
        vnet_frame_reader_free(&r);
    }

    /* one byte at a time, then pieces of 1..37 bytes */
    for (size_t step = 1; step < 38; step++) {
        next = 0;
        vnet_frame_reader_init(&r, 0);
        for (size_t off = 0; off < b.len; off += step) {
            size_t n = b.len - off < step ? b.len - off : step;
            ck_assert_int_eq(vnet_frame_reader_feed(&r, b.data + off, n), 0);
            drain(&r, s, &next);
        }
        ck_assert_int_eq(next, NSAMPLES);
        vnet_frame_reader_free(&r);
    }
    vnet_buf_free(&b);
    free_samples(s);
}
END_TEST

START_TEST(t_reader_limits)
{
    struct vnet_frame_reader r;
    const uint8_t *body;
    size_t len;

    /* a zero-length frame is returned and fails to decode */
    vnet_frame_reader_init(&r, 0);
    uint8_t zero[] = {0, 0, 0, 0, 0, 0, 0, 1, 0x07};
    ck_assert_int_eq(vnet_frame_reader_next(&r, &body, &len), 0);
    ck_assert_int_eq(vnet_frame_reader_feed(&r, zero, sizeof(zero)), 0);
    ck_assert_int_eq(vnet_frame_reader_next(&r, &body, &len), 1);
    ck_assert_uint_eq(len, 0);
    struct vnet_msg m;
    char err[128];
    ck_assert_int_eq(vnet_msg_decode(body, len, &m, err, sizeof(err)), VNET_EPROTO);
    ck_assert_int_eq(vnet_frame_reader_next(&r, &body, &len), 1);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(body[0], 0x07);
    ck_assert_int_eq(vnet_frame_reader_next(&r, &body, &len), 0);
    vnet_frame_reader_free(&r);

    /* over the limit: a 101-byte frame with a limit of 100, and 2^32-1 with the default */
    vnet_frame_reader_init(&r, 100);
    uint8_t big[] = {0, 0, 0, 101};
    ck_assert_int_eq(vnet_frame_reader_feed(&r, big, 3), 0);
    ck_assert_int_eq(vnet_frame_reader_next(&r, &body, &len), 0);
    ck_assert_int_eq(vnet_frame_reader_feed(&r, big + 3, 1), 0);
    ck_assert_int_eq(vnet_frame_reader_next(&r, &body, &len), VNET_EMSGSIZE);
    ck_assert_int_eq(vnet_frame_reader_next(&r, &body, &len), VNET_EMSGSIZE);
    vnet_frame_reader_free(&r);
    vnet_frame_reader_init(&r, 100);
    uint8_t ok[104] = {0, 0, 0, 100};
    ck_assert_int_eq(vnet_frame_reader_feed(&r, ok, sizeof(ok)), 0);
    ck_assert_int_eq(vnet_frame_reader_next(&r, &body, &len), 1);
    ck_assert_uint_eq(len, 100);
    vnet_frame_reader_free(&r);
    vnet_frame_reader_init(&r, 0);
    uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(vnet_frame_reader_feed(&r, huge, 4), 0);
    ck_assert_int_eq(vnet_frame_reader_next(&r, &body, &len), VNET_EMSGSIZE);
    vnet_frame_reader_free(&r);
    vnet_frame_reader_init(&r, 0);
    uint8_t just_over[] = {0x01, 0x00, 0x00, 0x01};
    ck_assert_int_eq(vnet_frame_reader_feed(&r, just_over, 4), 0);
    ck_assert_int_eq(vnet_frame_reader_next(&r, &body, &len), VNET_EMSGSIZE);
    vnet_frame_reader_free(&r);
    vnet_frame_reader_free(&r);

    /* many small frames per feed, interleaved with consumption, and a large one */
    vnet_frame_reader_init(&r, 0);
    struct vnet_buf b = {0};
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ACK;
    for (int i = 0; i < 5000; i++) {
        m.u.ack.revision = (uint64_t)i;
        ck_assert_int_eq(vnet_msg_encode(&m, &b), 0);
    }
    uint64_t want = 0;
    for (size_t off = 0; off < b.len; off += 1000) {
        size_t n = b.len - off < 1000 ? b.len - off : 1000;
        ck_assert_int_eq(vnet_frame_reader_feed(&r, b.data + off, n), 0);
        int rc;
        while ((rc = vnet_frame_reader_next(&r, &body, &len)) == 1) {
            ck_assert_int_eq(vnet_msg_decode(body, len, &m, NULL, 0), 0);
            ck_assert_uint_eq(m.u.ack.revision, want++);
        }
        ck_assert_int_eq(rc, 0);
    }
    ck_assert_uint_eq(want, 5000);
    vnet_buf_free(&b);
    vnet_frame_reader_free(&r);
}
END_TEST

/* ---- the worked examples in docs/protocol.md ---- */

static void print_frame(const char *what, const struct vnet_msg *m, const char *expect)
{
    struct vnet_buf b = {0};
    ck_assert_int_eq(vnet_msg_encode(m, &b), 0);
    char line[2048] = "";
    for (size_t i = 0; i < b.len && 3 * i + 4 < sizeof(line); i++)
        snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%02x", i ? " " : "",
                 b.data[i]);
    printf("%s: %s\n", what, line);
    ck_assert_str_eq(line, expect);
    vnet_buf_free(&b);
}

START_TEST(t_examples)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_KEEPALIVE;
    print_frame("KEEPALIVE", &m, "00 00 00 02 91 07");
    m.type = VNET_MSG_ACK;
    m.u.ack.revision = 1000;
    print_frame("ACK 1000", &m, "00 00 00 05 92 05 cd 03 e8");
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = VNET_PROTO_VERSION;
    m.u.hello.role = VNET_ROLE_NODE;
    strcpy(m.u.hello.network, "lab");
    strcpy(m.u.hello.node, "n1");
    m.u.hello.revision = 42;
    print_frame("HELLO", &m, "00 00 00 0e 97 01 03 01 a3 6c 61 62 a2 6e 31 2a c4 00");
    memset(&m, 0, sizeof(m));
    {
        struct vnet_report zero;
        struct vnet_buf rb = {0};
        memset(&zero, 0, sizeof(zero));
        ck_assert_int_eq(vnet_report_encode(&zero, &rb), 0);
        m.type = VNET_MSG_REPORT;
        m.u.report.body = rb.data;
        m.u.report.len = (uint32_t)rb.len;
        print_frame("REPORT", &m,
                    "00 00 00 13 92 0b c4 0f 96 94 00 00 00 00 94 00 00 00 00 00 90 00 90");
        vnet_buf_free(&rb);
    }
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ENDPOINT;
    ip4(&m.u.endpoint.ep.ip, 192, 0, 2, 1);
    m.u.endpoint.ep.port = 4789;
    print_frame("ENDPOINT", &m, "00 00 00 0c 92 06 92 c4 04 c0 00 02 01 cd 12 b5");
    /* with the per-boot data-plane nonce: a third element, bin 32 */
    m.u.endpoint.has_nonce = true;
    memset(m.u.endpoint.nonce, 0xab, sizeof(m.u.endpoint.nonce));
    char want[512] = "00 00 00 2e 93 06 92 c4 04 c0 00 02 01 cd 12 b5 c4 20";
    for (int i = 0; i < 32; i++)
        strcat(want, " ab");
    print_frame("ENDPOINT+nonce", &m, want);
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ERROR;
    m.u.error.code = VNET_EPROTO;
    strcpy(m.u.error.text, "bad frame");
    print_frame("ERROR", &m, "00 00 00 0e 93 08 d0 b9 a9 62 61 64 20 66 72 61 6d 65");
    struct vnet_change c;
    memset(&c, 0, sizeof(c));
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_DELTA;
    m.u.delta.from = 41;
    m.u.delta.to = 42;
    m.u.delta.changes = &c;
    m.u.delta.nchanges = 1;
    c.op = VNET_CHANGE_NODE_PUT;
    c.revision = 42;
    c.network_id = 1;
    c.node.id = 5;
    c.node.network_id = 1;
    strcpy(c.node.name, "n1");
    uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x05};
    memcpy(c.node.mac.b, mac, 6);
    ip4(&c.node.ips[0], 10, 0, 0, 5);
    ip4(&c.node.phys.ip, 192, 0, 2, 1);
    c.node.phys.port = 4789;
    c.node.state = VNET_NODE_ACTIVE;
    c.node.revision = 42;
    print_frame("DELTA", &m,
                "00 00 00 2d 94 04 29 2a 91 94 01 2a 01 9a 05 01 a2 6e 31 c0 c4 06 02 00 00 00 "
                "00 05 92 c4 04 0a 00 00 05 c0 92 c4 04 c0 00 02 01 cd 12 b5 c0 01 2a");
}
END_TEST

/* ---- speed ---- */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

START_TEST(t_speed)
{
    struct vnet_change c;
    fill_node(&c.node, 12345);
    c.op = VNET_CHANGE_NODE_PUT;
    c.revision = 77;
    c.network_id = 7;
    struct vnet_msg m, out;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_DELTA;
    m.u.delta.from = 76;
    m.u.delta.to = 77;
    m.u.delta.changes = &c;
    m.u.delta.nchanges = 1;
    struct vnet_buf b = {0};
    enum { N = 200000 };
    double t0 = now_ns();
    int bad = 0;
    for (int i = 0; i < N; i++) {
        b.len = 0;
        bad |= vnet_msg_encode(&m, &b);
    }
    double t1 = now_ns();
    for (int i = 0; i < N; i++) {
        bad |= vnet_msg_decode(b.data + 4, b.len - 4, &out, NULL, 0);
        vnet_msg_free(&out);
    }
    double t2 = now_ns();
    ck_assert_int_eq(bad, 0);
    printf("delta of 1 change (%zu bytes): encode %.0f ns, decode+free %.0f ns\n", b.len,
           (t1 - t0) / N, (t2 - t1) / N);

    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_SNAPSHOT;
    fill_network(&m.u.snapshot.network);
    m.u.snapshot.nnodes = 10000;
    m.u.snapshot.nodes = calloc(10000, sizeof(struct vnet_node_info));
    for (uint64_t i = 0; i < 10000; i++)
        fill_node(&m.u.snapshot.nodes[i], i);
    b.len = 0;
    t0 = now_ns();
    for (int i = 0; i < 20; i++) {
        b.len = 0;
        ck_assert_int_eq(vnet_msg_encode(&m, &b), 0);
    }
    t1 = now_ns();
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(vnet_msg_decode(b.data + 4, b.len - 4, &out, NULL, 0), 0);
        vnet_msg_free(&out);
    }
    t2 = now_ns();
    printf("snapshot of 10000 nodes (%zu bytes): encode %.2f ms, decode+free %.2f ms\n", b.len,
           (t1 - t0) / 20 / 1e6, (t2 - t1) / 20 / 1e6);
    vnet_msg_free(&m);
    vnet_buf_free(&b);
}
END_TEST

static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_names);
    tcase_add_test(tc, t_roundtrip_samples);
    tcase_add_test(tc, t_roundtrip_extremes);
    tcase_add_test(tc, t_roundtrip_snapshot_10000);
    tcase_add_test(tc, t_roundtrip_delta);
    tcase_add_test(tc, t_roundtrip_requests);
    tcase_add_test(tc, t_roundtrip_replies);
    tcase_add_test(tc, t_truncated);
    tcase_add_test(tc, t_trailing);
    tcase_add_test(tc, t_mutations);
    tcase_add_test(tc, t_reject_types);
    tcase_add_test(tc, t_reject_values);
    tcase_add_test(tc, t_reject_model);
    tcase_add_test(tc, t_reject_request);
    tcase_add_test(tc, t_reject_reply_subscribers);
    tcase_add_test(tc, t_huge_counts);
    tcase_add_test(tc, t_report_roundtrip);
    tcase_add_test(tc, t_report_malformed);
    tcase_add_test(tc, t_report_encode_limits);
    tcase_add_test(tc, t_encode_invalid);
    tcase_add_test(tc, t_free_safe);
    tcase_add_test(tc, t_examples);
    tcase_add_test(tc, t_speed);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("reader");
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, t_reader_splits);
    tcase_add_test(tr, t_reader_limits);
    suite_add_tcase(s, tr);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proto_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
