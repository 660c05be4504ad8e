/* Fuzz the control protocol codec and the frame reader.
 *
 * Whatever decodes must encode, decode again to the same message and encode to the same bytes
 * (round-trip stability). The input is also fed to frame readers in pieces of pseudo-random
 * sizes: once wrapped in a length prefix (exactly that one frame must come out), and once as
 * a raw stream of frames under a small limit (every frame it yields is decoded). */
#include "vnet/error.h"
#include "vnet/proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort(); /* a fuzz finding, never reached on valid behaviour */                        \
    } while (0)

/* ---- seeds: valid frame bodies of every message type ---- */

static void seed_node(struct vnet_node_info *n, unsigned i)
{
    memset(n, 0, sizeof(*n));
    n->id = 1000 + i;
    n->network_id = 7;
    snprintf(n->name, sizeof(n->name), "node-%u", i);
    n->has_pubkey = i & 1;
    memset(n->pubkey, (int)i, sizeof(n->pubkey));
    n->mac.b[0] = 2;
    n->mac.b[5] = (uint8_t)i;
    n->ips[0].family = VNET_AF_INET;
    n->ips[0].addr[0] = 10;
    n->ips[0].addr[3] = (uint8_t)i;
    if (i % 3) {
        n->ips[1].family = VNET_AF_INET6;
        n->ips[1].addr[0] = 0xfd;
        n->ips[1].addr[15] = (uint8_t)i;
    }
    if (i % 2) {
        n->phys.ip.family = VNET_AF_INET;
        n->phys.ip.addr[0] = 192;
        n->phys.ip.addr[3] = (uint8_t)i;
        n->phys.port = 4789;
    }
    n->state = (enum vnet_node_state)(i % 3);
    n->revision = 100000 + i;
}

static void seed_network(struct vnet_network *n)
{
    memset(n, 0, sizeof(*n));
    n->id = 7;
    n->subscriber_id = 3;
    snprintf(n->name, sizeof(n->name), "net-a");
    n->vni = 4242;
    n->subnet4.ip.family = VNET_AF_INET;
    n->subnet4.ip.addr[0] = 10;
    n->subnet4.len = 24;
    n->subnet6.ip.family = VNET_AF_INET6;
    n->subnet6.ip.addr[0] = 0xfd;
    n->subnet6.len = 64;
    n->mtu = 1450;
    n->revision = 99;
}

/* A report with @np peers (at most 3) into @peers. */
static void seed_report(struct vnet_report *r, struct vnet_report_peer *peers, unsigned i,
                        unsigned np)
{
    memset(r, 0, sizeof(*r));
    r->virt = (struct vnet_report_counters){i, i * 1500ull, 2 * i, 3000ull * i};
    r->under = (struct vnet_report_counters){i + 1, 0x123456789ull, 7, 1u << 20};
    r->drops = i % 5;
    if (i % 5) {
        r->drop_reasons[i % VNET_REPORT_DROPS] = i % 5;
        r->drop_reasons[VNET_REPORT_DROPS - 1] = i % 3;
    }
    r->table_size = i % 17;
    for (unsigned k = 0; k < np; k++) {
        struct vnet_report_peer *p = &peers[k];
        memset(p, 0, sizeof(*p));
        p->node_id = k ? 1000 + k : 0;
        p->ep.ip.family = k % 2 ? VNET_AF_INET6 : VNET_AF_INET;
        p->ep.ip.addr[0] = 10;
        p->ep.ip.addr[3] = (uint8_t)k;
        p->ep.port = 4789;
        p->c = (struct vnet_report_counters){k, k * 100ull, i, i * 64ull};
        p->has_last_rx = (i + k) % 2;
        p->last_rx_ms = 250ull * k;
        p->reach = p->has_last_rx ? VNET_REACH_DIRECT : VNET_REACH_NONE;
        p->has_rtt = k == 2;
        p->rtt_us = 420;
    }
    r->peers = np ? peers : NULL;
    r->npeers = np;
}

size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    struct vnet_report_peer peers[3];
    struct vnet_buf rb = {0};
    struct vnet_msg m;
    struct vnet_node_info nodes[3];
    struct vnet_change changes[3];
    struct vnet_network nets[2];
    struct vnet_node_status status[2];
    memset(&m, 0, sizeof(m));
    m.type = (enum vnet_msg_type)(1 + i % 11);
    switch (m.type) {
    case VNET_MSG_HELLO:
        m.u.hello.version = VNET_PROTO_VERSION;
        m.u.hello.role = (i / 10) % 2 ? VNET_ROLE_CLIENT : VNET_ROLE_NODE;
        snprintf(m.u.hello.network, VNET_NAME_MAX, "net-a");
        snprintf(m.u.hello.node, VNET_NAME_MAX, "node-1");
        m.u.hello.revision = i;
        m.u.hello.auth_len = i % 40;
        memset(m.u.hello.auth, 0xa5, m.u.hello.auth_len);
        break;
    case VNET_MSG_WELCOME:
        m.u.welcome.version = VNET_PROTO_VERSION;
        seed_network(&m.u.welcome.network);
        seed_node(&m.u.welcome.node, i);
        m.u.welcome.report_ms = i % 2 ? 10000 : 0;
        break;
    case VNET_MSG_SNAPSHOT:
        seed_network(&m.u.snapshot.network);
        for (unsigned k = 0; k < 3; k++)
            seed_node(&nodes[k], i + k);
        m.u.snapshot.nodes = nodes;
        m.u.snapshot.nnodes = i % 4;
        break;
    case VNET_MSG_DELTA:
        m.u.delta.from = 10;
        m.u.delta.to = 13;
        for (unsigned k = 0; k < 3; k++) {
            memset(&changes[k], 0, sizeof(changes[k]));
            changes[k].op = (enum vnet_change_op)(1 + (i + k) % 3);
            changes[k].revision = 11 + k;
            changes[k].network_id = 7;
            if (changes[k].op != VNET_CHANGE_NET_PUT)
                seed_node(&changes[k].node, k);
        }
        m.u.delta.changes = changes;
        m.u.delta.nchanges = 3;
        break;
    case VNET_MSG_ACK:
        m.u.ack.revision = (uint64_t)i * 0x10001;
        break;
    case VNET_MSG_ENDPOINT:
        m.u.endpoint.ep.ip.family = VNET_AF_INET6;
        m.u.endpoint.ep.ip.addr[0] = 0x20;
        m.u.endpoint.ep.port = 4789;
        break;
    case VNET_MSG_KEEPALIVE:
        break;
    case VNET_MSG_ERROR:
        m.u.error.code = VNET_EPROTO;
        snprintf(m.u.error.text, VNET_MSG_TEXT_MAX, "bad frame %u", i);
        break;
    case VNET_MSG_REQUEST:
        m.u.request.id = i;
        m.u.request.op = (enum vnet_req_op)(1 + (i / 10) % 10);
        m.u.request.has = (i * 37) & 0x1ff;
        snprintf(m.u.request.network, VNET_NAME_MAX, "net-a");
        snprintf(m.u.request.node, VNET_NAME_MAX, "web-1");
        m.u.request.vni = 77;
        m.u.request.subnet4.ip.family = VNET_AF_INET;
        m.u.request.subnet4.len = 8;
        m.u.request.subnet6.ip.family = VNET_AF_INET6;
        m.u.request.subnet6.len = 48;
        m.u.request.mtu = 1400;
        m.u.request.ip4.family = VNET_AF_INET;
        m.u.request.ip6.family = VNET_AF_INET6;
        m.u.request.phys.ip.family = VNET_AF_INET;
        m.u.request.phys.port = 1;
        break;
    case VNET_MSG_REPLY:
        m.u.reply.id = i;
        seed_network(&nets[0]);
        seed_network(&nets[1]);
        seed_node(&nodes[0], i);
        seed_node(&status[0].node, i + 1);
        seed_node(&status[1].node, i + 2);
        status[0].acked = status[1].acked = 5;
        status[0].connected = 1;
        status[1].connected = 0;
        status[0].connected_since_ms = 1790000000000ull;
        status[1].connected_since_ms = 0;
        status[0].last_seen_ms = 1790000004000ull;
        status[1].last_seen_ms = i % 2 ? 0 : 1790000001000ull;
        memset(&status[0].session_from, 0, sizeof(status[0].session_from));
        status[1].session_from = nodes[0].phys;
        status[0].has_report = status[1].has_report = false;
        if (i % 2) {
            status[0].has_report = true;
            status[0].report_age_ms = 1234;
            seed_report(&status[0].report, peers, i, i % 4);
        }
        m.u.reply.networks = nets;
        m.u.reply.nnetworks = i % 3;
        m.u.reply.nodes = nodes;
        m.u.reply.nnodes = 1;
        m.u.reply.status = status;
        m.u.reply.nstatus = (i / 10) % 3;
        break;
    case VNET_MSG_REPORT: {
        struct vnet_report r;
        seed_report(&r, peers, i, (i / 11) % 4);
        if (vnet_report_encode(&r, &rb) != 0)
            return 0;
        m.u.report.body = rb.data;
        m.u.report.len = (uint32_t)rb.len;
        break;
    }
    }
    struct vnet_buf b = {0};
    size_t n = 0;
    if (vnet_msg_encode(&m, &b) == 0 && b.len - 4 <= cap) {
        n = b.len - 4;
        memcpy(buf, b.data + 4, n);
    }
    vnet_buf_free(&b);
    vnet_buf_free(&rb);
    return n;
}

/* ---- the target ---- */

static bool same_report(const struct vnet_report *a, const struct vnet_report *b)
{
    struct vnet_report x = *a, y = *b;
    x.peers = y.peers = NULL;
    return memcmp(&x, &y, sizeof(x)) == 0 &&
           (!a->npeers || memcmp(a->peers, b->peers, a->npeers * sizeof(*a->peers)) == 0);
}

static bool same_status(const struct vnet_node_status *a, const struct vnet_node_status *b,
                        uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct vnet_node_status x = a[i], y = b[i];
        memset(&x.report, 0, sizeof(x.report));
        memset(&y.report, 0, sizeof(y.report));
        if (memcmp(&x, &y, sizeof(x)) != 0 || !same_report(&a[i].report, &b[i].report))
            return false;
    }
    return true;
}

static bool same(const struct vnet_msg *a, const struct vnet_msg *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case VNET_MSG_SNAPSHOT:
        return memcmp(&a->u.snapshot.network, &b->u.snapshot.network,
                      sizeof(a->u.snapshot.network)) == 0 &&
               a->u.snapshot.nnodes == b->u.snapshot.nnodes &&
               (!a->u.snapshot.nnodes ||
                memcmp(a->u.snapshot.nodes, b->u.snapshot.nodes,
                       a->u.snapshot.nnodes * sizeof(struct vnet_node_info)) == 0);
    case VNET_MSG_DELTA:
        return a->u.delta.from == b->u.delta.from && a->u.delta.to == b->u.delta.to &&
               a->u.delta.nchanges == b->u.delta.nchanges &&
               (!a->u.delta.nchanges ||
                memcmp(a->u.delta.changes, b->u.delta.changes,
                       a->u.delta.nchanges * sizeof(struct vnet_change)) == 0);
    case VNET_MSG_REPLY: {
        const struct vnet_msg_reply *x = &a->u.reply, *y = &b->u.reply;
        return x->id == y->id && x->code == y->code && strcmp(x->text, y->text) == 0 &&
               x->nnetworks == y->nnetworks && x->nnodes == y->nnodes && x->nstatus == y->nstatus &&
               (!x->nnetworks ||
                memcmp(x->networks, y->networks, x->nnetworks * sizeof(*x->networks)) == 0) &&
               (!x->nnodes || memcmp(x->nodes, y->nodes, x->nnodes * sizeof(*x->nodes)) == 0) &&
               same_status(x->status, y->status, x->nstatus);
    }
    case VNET_MSG_REPORT:
        return a->u.report.len == b->u.report.len &&
               (!a->u.report.len ||
                memcmp(a->u.report.body, b->u.report.body, a->u.report.len) == 0);
    default:
        return memcmp(&a->u, &b->u, sizeof(a->u)) == 0;
    }
}

/* A REPORT's body: the same round trip through vnet_report_decode/encode. */
static void check_report(const uint8_t *data, size_t size)
{
    struct vnet_report r, r2;
    char err[128];
    if (vnet_report_decode(data, size, &r, err, sizeof(err)) != 0) {
        static const struct vnet_report zero;
        CHECK(memcmp(&r, &zero, sizeof(r)) == 0);
        CHECK(err[0] != '\0');
        return;
    }
    struct vnet_buf b = {0}, b2 = {0};
    CHECK(vnet_report_encode(&r, &b) == 0);
    CHECK(b.len <= size);
    CHECK(vnet_report_decode(b.data, b.len, &r2, err, sizeof(err)) == 0);
    CHECK(same_report(&r, &r2));
    CHECK(vnet_report_encode(&r2, &b2) == 0);
    CHECK(b.len == b2.len && (!b.len || memcmp(b.data, b2.data, b.len) == 0));
    vnet_buf_free(&b);
    vnet_buf_free(&b2);
    vnet_report_free(&r);
    vnet_report_free(&r2);
}

static void check_body(const uint8_t *data, size_t size)
{
    struct vnet_msg m, m2;
    char err[128];
    if (vnet_msg_decode(data, size, &m, err, sizeof(err)) != 0) {
        static const struct vnet_msg zero;
        CHECK(memcmp(&m, &zero, sizeof(m)) == 0); /* nothing left to free */
        CHECK(err[0] != '\0');
        return;
    }
    struct vnet_buf b = {0}, b2 = {0};
    CHECK(vnet_msg_encode(&m, &b) == 0);
    CHECK(b.len >= 4 && b.len - 4 <= size); /* never longer than what was decoded */
    CHECK(vnet_msg_decode(b.data + 4, b.len - 4, &m2, err, sizeof(err)) == 0);
    CHECK(same(&m, &m2));
    CHECK(vnet_msg_encode(&m2, &b2) == 0);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    if (m.type == VNET_MSG_REPORT)
        check_report(m.u.report.body, m.u.report.len);
    vnet_buf_free(&b);
    vnet_buf_free(&b2);
    vnet_msg_free(&m);
    vnet_msg_free(&m2);
}

static uint32_t piece_rng(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    check_body(data, size);

    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 16777619u;
    seed |= 1;

    /* 1: the input as one frame, fed in pieces of 1..64 bytes: exactly that frame comes out */
    uint8_t *stream = malloc(size + 4);
    if (!stream)
        return 0;
    stream[0] = (uint8_t)(size >> 24);
    stream[1] = (uint8_t)(size >> 16);
    stream[2] = (uint8_t)(size >> 8);
    stream[3] = (uint8_t)size;
    if (size)
        memcpy(stream + 4, data, size);
    struct vnet_frame_reader r;
    vnet_frame_reader_init(&r, 0);
    const uint8_t *body;
    size_t len;
    int frames = 0;
    for (size_t off = 0; off < size + 4;) {
        size_t n = 1 + piece_rng(&seed) % 64;
        if (n > size + 4 - off)
            n = size + 4 - off;
        CHECK(vnet_frame_reader_feed(&r, stream + off, n) == 0);
        off += n;
        int rc;
        while ((rc = vnet_frame_reader_next(&r, &body, &len)) == 1) {
            CHECK(off == size + 4 && len == size && memcmp(body, data, size) == 0);
            frames++;
        }
        CHECK(rc == 0);
    }
    CHECK(frames == 1);
    vnet_frame_reader_free(&r);
    free(stream);

    /* 2: the input as a stream of frames, limit 256 bytes: decode whatever comes out */
    vnet_frame_reader_init(&r, 256);
    int rc = 0;
    for (size_t off = 0; off < size && rc >= 0;) {
        size_t n = 1 + piece_rng(&seed) % 32;
        if (n > size - off)
            n = size - off;
        CHECK(vnet_frame_reader_feed(&r, data + off, n) == 0);
        off += n;
        while ((rc = vnet_frame_reader_next(&r, &body, &len)) == 1) {
            CHECK(len <= 256);
            check_body(body, len);
        }
        CHECK(rc == 0 || rc == VNET_EMSGSIZE);
    }
    vnet_frame_reader_free(&r);
    return 0;
}
