/* Unit tests of the forwarding engine (vnet_datapath) on in-memory ports (tests/helpers/memport.c):
 * no root, no devices, no sockets. Each test builds one node (or two, for secure mode) as
 *
 *   mem:vN (virtual port) <-> datapath, VNI 100 <-> mem:uN (underlay)
 *
 * injects frames on either side, polls the datapath once, and checks what came out on each
 * port and that the counters moved by exactly what the test expects (every other drop reason
 * stays where it was).
 *
 * The node's world: this node A (10.0.0.1:4789, MAC MA, 10.1.0.1, fd00::a), peers B
 * (10.0.0.2, node 2, MAC MB, 10.1.0.2 and fd00::b in the table) and C (10.0.0.3, node 3, MAC MC),
 * a stranger X (10.0.0.9) that is no peer, and MU, a MAC nobody knows.
 */
#include "memport.h"

#include "vnet/crypto.h"
#include "vnet/datapath.h"
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/offload.h"
#include "vnet/switch_table.h"
#include "vnet/types.h"

#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VNI 100

static const struct vnet_mac MA = {{0x02, 0, 0, 0, 0, 0x0a}};
static const struct vnet_mac MB = {{0x02, 0, 0, 0, 0, 0x0b}};
static const struct vnet_mac MC = {{0x02, 0, 0, 0, 0, 0x0c}};
static const struct vnet_mac MD = {{0x02, 0, 0, 0, 0, 0x0d}};
static const struct vnet_mac MU = {{0x02, 0, 0, 0, 0, 0x0e}};
static const struct vnet_mac BCAST = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
static const struct vnet_mac MCAST = {{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};

static const uint8_t IP_A[4] = {10, 1, 0, 1};
static const uint8_t IP_B[4] = {10, 1, 0, 2};
static const uint8_t IP6_A[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a};
static const uint8_t IP6_B[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b};
static const uint8_t IP_C[4] = {10, 1, 0, 3};
static const uint8_t IP6_C[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0c};

#define ETHERTYPE_TEST 0x88b5 /* IEEE local experimental: a frame the datapath only forwards */

static struct vnet_endpoint ep(uint8_t last, uint16_t port)
{
    struct vnet_endpoint e;
    memset(&e, 0, sizeof(e));
    e.ip.family = VNET_AF_INET;
    e.ip.addr[0] = 10;
    e.ip.addr[3] = last;
    e.port = port;
    return e;
}

#define EP_A ep(1, 4789)
#define EP_B ep(2, 4789)
#define EP_C ep(3, 4789)
#define EP_X ep(9, 4789)

/* ---- frames ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static size_t eth(uint8_t *f, const struct vnet_mac *dst, const struct vnet_mac *src, uint16_t type)
{
    memcpy(f, dst->b, 6);
    memcpy(f + 6, src->b, 6);
    put16(f + 12, type);
    return 14;
}

/* An Ethernet frame of @len bytes with a recognisable payload. */
static size_t frame(uint8_t *f, const struct vnet_mac *dst, const struct vnet_mac *src, size_t len)
{
    eth(f, dst, src, ETHERTYPE_TEST);
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(i * 7 + 3);
    return len;
}

/* IPv4 from IP_A to IP_B (MA -> MB), UDP, @len bytes of frame, DF as asked. */
static size_t ipv4(uint8_t *f, size_t len, bool df)
{
    frame(f, &MB, &MA, len);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(len - 14));
    put16(ip + 6, df ? 0x4000 : 0);
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 12, IP_A, 4);
    memcpy(ip + 16, IP_B, 4);
    put16(ip + 10, vnet_csum(ip, 20));
    return len;
}

/* IPv6 from fd00::a to fd00::b (MA -> MB), next header UDP, @len bytes of frame. */
static size_t ipv6(uint8_t *f, size_t len)
{
    frame(f, &MB, &MA, len);
    put16(f + 12, 0x86dd);
    uint8_t *ip = f + 14;
    memset(ip, 0, 40);
    ip[0] = 0x60;
    put16(ip + 4, (uint16_t)(len - 14 - 40));
    ip[6] = 17;
    ip[7] = 64;
    memcpy(ip + 8, IP6_A, 16);
    memcpy(ip + 24, IP6_B, 16);
    return len;
}

/* ARP request from MA / IP_A for @tip, broadcast. */
static size_t arp_request(uint8_t *f, const uint8_t tip[4])
{
    eth(f, &BCAST, &MA, 0x0806);
    put16(f + 14, 1);
    put16(f + 16, 0x0800);
    f[18] = 6;
    f[19] = 4;
    put16(f + 20, 1);
    memcpy(f + 22, MA.b, 6);
    memcpy(f + 28, IP_A, 4);
    memset(f + 32, 0, 6);
    memcpy(f + 38, tip, 4);
    return 42;
}

/* Neighbour solicitation from MA for @target (from fd00::a, or from :: for a DAD probe). */
static size_t nd_solicit(uint8_t *f, const uint8_t target[16], bool dad)
{
    const struct vnet_mac sn = {{0x33, 0x33, 0xff, target[13], target[14], target[15]}};
    eth(f, &sn, &MA, 0x86dd);
    uint8_t *ip = f + 14;
    memset(ip, 0, 40);
    ip[0] = 0x60;
    put16(ip + 4, dad ? 24 : 32);
    ip[6] = 58;
    ip[7] = 255;
    if (!dad)
        memcpy(ip + 8, IP6_A, 16);
    const uint8_t snm[16] = {0xff, 2, 0, 0, 0,    0,          0,          0,
                             0,    0, 0, 1, 0xff, target[13], target[14], target[15]};
    memcpy(ip + 24, snm, 16);
    uint8_t *ns = ip + 40;
    memset(ns, 0, 32);
    ns[0] = 135;
    memcpy(ns + 8, target, 16);
    size_t icmp_len = 24;
    if (!dad) {
        ns[24] = 1; /* source link-layer address */
        ns[25] = 1;
        memcpy(ns + 26, MA.b, 6);
        icmp_len = 32;
    }
    uint32_t sum = vnet_csum_pseudo6(ip + 8, ip + 24, 58, (uint32_t)icmp_len);
    put16(ns + 2, vnet_csum_fold(vnet_csum_partial(ns, icmp_len, sum)));
    return 14 + 40 + icmp_len;
}

/* A VXLAN datagram (UDP payload) for @vni around the inner frame. */
static size_t vxlan(uint8_t *d, uint32_t vni, const uint8_t *inner, size_t len)
{
    vnet_vxlan_encode(d, vni);
    memcpy(d + VNET_VXLAN_HLEN, inner, len);
    return VNET_VXLAN_HLEN + len;
}

/* ---- one node on in-memory ports ---- */

struct node_opts {
    bool learn, no_arp_proxy, secure;
    uint32_t mtu;                /* cfg.mtu */
    uint32_t vport_mtu;          /* the virtual port's MTU (memport) */
    size_t utx_limit, vtx_limit; /* the tx FIFOs of the underlay and the virtual port */
    uint32_t vcaps, ucaps;       /* VNET_PORT_CAP_* of the virtual port and the underlay */
    const struct vnet_keypair *key;
    const uint8_t *nonce; /* cfg.nonce */
};

struct node {
    struct memport *vm, *um;
    struct vnet_port *vport, *uport;
    struct vnet_table *table;
    struct vnet_datapath *dp;
};

/* Up a node named @tag (ports mem:v@tag, mem:u@tag) with an empty table. */
static void node_up(struct node *n, const char *tag, const struct node_opts *o)
{
    char vname[16], uname[16], spec[24];
    memset(n, 0, sizeof(*n));
    snprintf(vname, sizeof(vname), "v%s", tag);
    snprintf(uname, sizeof(uname), "u%s", tag);
    ck_assert_int_eq(memport_register(), 0);
    struct memport_opts vo = {
        .name = vname, .mtu = o->vport_mtu, .caps = o->vcaps, .tx_limit = o->vtx_limit};
    struct memport_opts uo = {.name = uname, .tx_limit = o->utx_limit, .caps = o->ucaps};
    ck_assert_int_eq(memport_create(&vo, &n->vm), 0);
    ck_assert_int_eq(memport_create(&uo, &n->um), 0);
    snprintf(spec, sizeof(spec), "mem:%s", vname);
    ck_assert_int_eq(vnet_port_open(spec, NULL, &n->vport), 0);
    snprintf(spec, sizeof(spec), "mem:%s", uname);
    ck_assert_int_eq(vnet_port_open(spec, NULL, &n->uport), 0);
    ck_assert_int_eq(vnet_table_create(NULL, &n->table), 0);
    struct vnet_datapath_cfg cfg = {
        .table = n->table,
        .vport = n->vport,
        .uport = n->uport,
        .vni = VNI,
        .learn = o->learn,
        .no_arp_proxy = o->no_arp_proxy,
        .mtu = o->mtu,
        .secure = o->secure,
        .key = o->key,
        .nonce = o->nonce,
    };
    ck_assert_int_eq(vnet_datapath_create(&cfg, &n->dp), 0);
}

static void node_down(struct node *n)
{
    vnet_datapath_destroy(n->dp);
    vnet_port_close(n->vport);
    vnet_port_close(n->uport);
    ck_assert(!memport_is_open(n->vm) && !memport_is_open(n->um));
    memport_destroy(n->vm);
    memport_destroy(n->um);
    vnet_table_destroy(n->table);
}

static struct vnet_table_op put(const struct vnet_mac *mac, struct vnet_endpoint e,
                                uint32_t peer_id, uint8_t flags)
{
    struct vnet_table_op op;
    memset(&op, 0, sizeof(op));
    op.type = VNET_TABLE_PUT;
    op.vni = VNI;
    op.mac = *mac;
    op.ep = e;
    op.peer_id = peer_id;
    op.flags = flags;
    return op;
}

static struct vnet_table_op put_ip(const struct vnet_mac *mac, uint8_t family, const uint8_t *a)
{
    struct vnet_table_op op;
    memset(&op, 0, sizeof(op));
    op.type = VNET_TABLE_PUT_IP;
    op.vni = VNI;
    op.mac = *mac;
    op.ip.family = family;
    memcpy(op.ip.addr, a, family == VNET_AF_INET ? 4 : 16);
    return op;
}

/* Node A as the file's header describes it: its table, its peers B and C, its local MAC. */
static void node_a(struct node *n, const struct node_opts *o)
{
    node_up(n, "a", o);
    const struct vnet_table_op ops[] = {
        put(&MA, EP_A, 1, VNET_ENTRY_LOCAL),  put(&MB, EP_B, 2, VNET_ENTRY_STATIC),
        put(&MC, EP_C, 3, VNET_ENTRY_STATIC), put_ip(&MB, VNET_AF_INET, IP_B),
        put_ip(&MB, VNET_AF_INET6, IP6_B),
    };
    ck_assert_int_eq(vnet_table_apply(n->table, ops, sizeof(ops) / sizeof(ops[0]), 1), 0);
    const struct vnet_endpoint peers[] = {EP_B, EP_C};
    ck_assert_int_eq(vnet_datapath_set_peers(n->dp, peers, 2), 0);
    ck_assert_int_eq(vnet_datapath_add_local_mac(n->dp, &MA), 0);
}

/* Poll once; @handled packets must have been handled. */
static void poll_dp(struct node *n, int handled)
{
    ck_assert_int_eq(vnet_datapath_poll(n->dp, 0), handled);
}

static void inject_v(struct node *n, const uint8_t *f, size_t len)
{
    ck_assert_int_eq(memport_inject(n->vm, 0, f, len, NULL), 0);
}

static void inject_u(struct node *n, const uint8_t *d, size_t len, struct vnet_endpoint from)
{
    ck_assert_int_eq(memport_inject(n->um, 0, d, len, &from), 0);
}

/* A frame from @from carrying @inner in VXLAN for VNI. */
static void inject_vxlan(struct node *n, const uint8_t *inner, size_t len,
                         struct vnet_endpoint from)
{
    uint8_t d[2048];
    inject_u(n, d, vxlan(d, VNI, inner, len), from);
}

static struct memport_frame take(struct memport *m)
{
    struct memport_frame f;
    ck_assert_int_eq(memport_take(m, 0, &f), 0);
    return f;
}

static void expect_ep(const struct vnet_endpoint *got, struct vnet_endpoint want)
{
    char g[VNET_ENDPOINT_STRLEN], w[VNET_ENDPOINT_STRLEN];
    vnet_endpoint_format(got, g, sizeof(g));
    vnet_endpoint_format(&want, w, sizeof(w));
    ck_assert_str_eq(g, w);
}

/* @d must be a VXLAN header for VNI followed by exactly @inner. */
static void expect_vxlan_bytes(const uint8_t *d, const uint8_t *inner, size_t len)
{
    uint8_t hdr[8] = {VNET_VXLAN_FLAG_I}; /* flags, 3 reserved, VNI (24 bits), 1 reserved */
    hdr[4] = (uint8_t)(VNI >> 16);
    hdr[5] = (uint8_t)(VNI >> 8);
    hdr[6] = (uint8_t)VNI;
    ck_assert_mem_eq(d, hdr, 8);
    ck_assert_mem_eq(d + 8, inner, len);
}

/* What the node sent on the underlay must be exactly @inner in VXLAN for VNI, to @to. */
static void expect_vxlan(struct node *n, const uint8_t *inner, size_t len, struct vnet_endpoint to)
{
    struct memport_frame f = take(n->um);
    expect_ep(&f.peer, to);
    ck_assert_uint_eq(f.len, VNET_VXLAN_HLEN + len);
    expect_vxlan_bytes(f.data, inner, len);
    memport_frame_free(&f);
}

/* What the node handed its virtual port must be exactly @want. */
static void expect_virtual(struct node *n, const uint8_t *want, size_t len)
{
    struct memport_frame f = take(n->vm);
    ck_assert_uint_eq(f.len, len);
    ck_assert_mem_eq(f.data, want, len);
    memport_frame_free(&f);
}

static void expect_quiet(struct node *n)
{
    ck_assert_uint_eq(memport_tx_count(n->vm, 0), 0);
    ck_assert_uint_eq(memport_tx_count(n->um, 0), 0);
}

/* @f in VXLAN from @from reaches the virtual port as it was, and nothing else comes out. */
static void expect_delivered(struct node *n, const uint8_t *f, size_t len,
                             struct vnet_endpoint from)
{
    inject_vxlan(n, f, len, from);
    poll_dp(n, 1);
    expect_virtual(n, f, len);
    expect_quiet(n);
}

static struct vnet_datapath_stats stats(const struct node *n)
{
    struct vnet_datapath_stats s;
    vnet_datapath_get_stats(n->dp, &s);
    return s;
}

/* Between @a and @b, drop reason @why moved by @count and every other reason stayed. */
static void expect_drops(const struct vnet_datapath_stats *a, const struct vnet_datapath_stats *b,
                         enum vnet_dp_drop why, uint64_t count)
{
    for (int i = 0; i < VNET_DP_DROP__MAX; i++) {
        uint64_t want = i == (int)why ? count : 0;
        if (b->drops[i] - a->drops[i] != want)
            ck_abort_msg("drop %s moved by %llu, expected %llu", vnet_dp_drop_name(i),
                         (unsigned long long)(b->drops[i] - a->drops[i]), (unsigned long long)want);
    }
}

#define NO_DROPS VNET_DP_DROP__MAX

/* Poll once (@handled packets): nothing may come out of either port, and since *@since exactly
 * @count drops of @why (and no other drop) must have been counted; *@since is then updated. */
static void poll_dropped(struct node *n, int handled, struct vnet_datapath_stats *since,
                         enum vnet_dp_drop why, uint64_t count)
{
    ck_assert_int_eq(vnet_datapath_poll(n->dp, 0), handled);
    expect_quiet(n);
    struct vnet_datapath_stats now;
    vnet_datapath_get_stats(n->dp, &now);
    expect_drops(since, &now, why, count);
    *since = now;
}

#define DELTA(a, b, field) ((b).field - (a).field)

static bool fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static const struct node_opts DEFAULTS = {0};

/* ==== forwarding ==== */

START_TEST(unicast_to_the_tables_endpoint)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f1[100], f2[300];
    frame(f1, &MB, &MA, sizeof(f1));
    frame(f2, &MC, &MA, sizeof(f2));
    struct vnet_datapath_stats s0 = stats(&n);
    inject_v(&n, f1, sizeof(f1));
    inject_v(&n, f2, sizeof(f2));
    poll_dp(&n, 2);
    expect_vxlan(&n, f1, sizeof(f1), EP_B);
    expect_vxlan(&n, f2, sizeof(f2), EP_C);
    expect_quiet(&n);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, vport.rx_packets), 2);
    ck_assert_uint_eq(DELTA(s0, s1, vport.rx_bytes), 400);
    ck_assert_uint_eq(DELTA(s0, s1, uport.tx_packets), 2);
    ck_assert_uint_eq(DELTA(s0, s1, uport.tx_bytes), 400 + 2 * VNET_VXLAN_HLEN);
    ck_assert_uint_eq(DELTA(s0, s1, flooded), 0);
    struct vnet_dp_peer_stats ps[4];
    ck_assert_uint_eq(vnet_datapath_peer_stats(n.dp, ps, 4), 2);
    expect_ep(&ps[0].ep, EP_B);
    ck_assert_uint_eq(ps[0].tx_packets, 1);
    ck_assert_uint_eq(ps[1].tx_packets, 1);
    node_down(&n);
}
END_TEST

START_TEST(ingress_to_the_virtual_port)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[200];
    frame(f, &MA, &MB, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n);
    expect_delivered(&n, f, sizeof(f), EP_B);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, uport.rx_packets), 1);
    ck_assert_uint_eq(DELTA(s0, s1, uport.rx_bytes), sizeof(f) + VNET_VXLAN_HLEN);
    ck_assert_uint_eq(DELTA(s0, s1, vport.tx_packets), 1);
    ck_assert_uint_eq(DELTA(s0, s1, vport.tx_bytes), sizeof(f));
    struct vnet_dp_peer_stats ps[2];
    vnet_datapath_peer_stats(n.dp, ps, 2);
    ck_assert_uint_eq(ps[0].rx_packets, 1);
    ck_assert_uint_eq(ps[0].rx_bytes, sizeof(f));
    ck_assert_uint_eq(ps[1].rx_packets, 0);
    node_down(&n);
}
END_TEST

START_TEST(self_and_short_frames_dropped)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[64];
    frame(f, &MA, &MA, sizeof(f)); /* to this node's own MAC */
    struct vnet_datapath_stats s0 = stats(&n), s = s0;
    inject_v(&n, f, sizeof(f));
    poll_dropped(&n, 1, &s, VNET_DP_DROP_SELF, 1);
    inject_v(&n, f, 13); /* shorter than Ethernet */
    poll_dropped(&n, 1, &s, VNET_DP_DROP_SHORT, 1);
    node_down(&n);
}
END_TEST

START_TEST(fds_are_the_ports)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    int fds[2];
    ck_assert_int_eq(vnet_datapath_fds(n.dp, fds), 0);
    ck_assert(!fd_readable(fds[0]) && !fd_readable(fds[1]));
    uint8_t f[60], d[80];
    frame(f, &MB, &MA, sizeof(f));
    inject_v(&n, f, sizeof(f));
    ck_assert(fd_readable(fds[0]) && !fd_readable(fds[1]));
    frame(f, &MA, &MB, sizeof(f));
    inject_u(&n, d, vxlan(d, VNI, f, sizeof(f)), EP_B);
    ck_assert(fd_readable(fds[1]));
    /* Only the virtual side: the underlay's frame waits. */
    ck_assert_int_eq(vnet_datapath_poll_ports(n.dp, VNET_DP_VPORT, 0), 1);
    ck_assert(!fd_readable(fds[0]) && fd_readable(fds[1]));
    ck_assert_uint_eq(memport_tx_count(n.um, 0), 1);
    ck_assert_uint_eq(memport_tx_count(n.vm, 0), 0);
    ck_assert_int_eq(vnet_datapath_poll_ports(n.dp, VNET_DP_UPORT, 0), 1);
    ck_assert(!fd_readable(fds[1]));
    ck_assert_uint_eq(memport_tx_count(n.vm, 0), 1);
    poll_dp(&n, 0);
    node_down(&n);
}
END_TEST

START_TEST(underlay_full_counted)
{
    struct node_opts o = {.utx_limit = 1};
    struct node n;
    node_a(&n, &o);
    uint8_t f[100];
    frame(f, &BCAST, &MA, sizeof(f)); /* two copies; the underlay takes one */
    struct vnet_datapath_stats s0 = stats(&n);
    inject_v(&n, f, sizeof(f));
    poll_dp(&n, 1);
    ck_assert_uint_eq(memport_tx_count(n.um, 0), 1);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, VNET_DP_DROP_TX_UNDERLAY, 1);
    ck_assert_uint_eq(DELTA(s0, s1, uport.tx_packets), 1);
    node_down(&n);
}
END_TEST

START_TEST(virtual_port_full_counted)
{
    struct node_opts o = {.vtx_limit = 2};
    struct node n;
    node_a(&n, &o);
    uint8_t f[100];
    frame(f, &MA, &MB, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n);
    for (int i = 0; i < 3; i++)
        inject_vxlan(&n, f, sizeof(f), EP_B);
    poll_dp(&n, 3);
    ck_assert_uint_eq(memport_tx_count(n.vm, 0), 2);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, VNET_DP_DROP_TX_VIRTUAL, 1);
    ck_assert_uint_eq(DELTA(s0, s1, vport.tx_packets), 2);
    node_down(&n);
}
END_TEST

/* With multiqueue ports, one datapath per queue over one table: each serves its own queue of
 * both ports and nothing else. */
START_TEST(one_datapath_per_queue)
{
    ck_assert_int_eq(memport_register(), 0);
    struct memport *vm, *um;
    struct memport_opts vo = {.name = "vq", .queues = 2}, uo = {.name = "uq", .queues = 2};
    ck_assert_int_eq(memport_create(&vo, &vm), 0);
    ck_assert_int_eq(memport_create(&uo, &um), 0);
    struct vnet_port_cfg pcfg = {.queues = 2};
    struct vnet_port *vport, *uport;
    ck_assert_int_eq(vnet_port_open("mem:vq", &pcfg, &vport), 0);
    ck_assert_int_eq(vnet_port_open("mem:uq", &pcfg, &uport), 0);
    struct vnet_table *t;
    ck_assert_int_eq(vnet_table_create(NULL, &t), 0);
    const struct vnet_table_op ops[] = {put(&MB, EP_B, 2, VNET_ENTRY_STATIC)};
    ck_assert_int_eq(vnet_table_apply(t, ops, 1, 1), 0);
    struct vnet_datapath *dp[2];
    for (unsigned q = 0; q < 2; q++) {
        struct vnet_datapath_cfg cfg = {
            .table = t, .vport = vport, .uport = uport, .vni = VNI, .queue = q};
        ck_assert_int_eq(vnet_datapath_create(&cfg, &dp[q]), 0);
        const struct vnet_endpoint peers[] = {EP_B};
        ck_assert_int_eq(vnet_datapath_set_peers(dp[q], peers, 1), 0);
    }
    uint8_t f[100], g[110], d[200];
    frame(f, &MB, &MA, sizeof(f));
    frame(g, &MA, &MB, sizeof(g));
    ck_assert_int_eq(memport_inject(vm, 1, f, sizeof(f), NULL), 0);
    struct vnet_endpoint b = EP_B;
    ck_assert_int_eq(memport_inject(um, 0, d, vxlan(d, VNI, g, sizeof(g)), &b), 0);
    int fds[2];
    ck_assert_int_eq(vnet_datapath_fds(dp[1], fds), 0);
    ck_assert(fd_readable(fds[0]) && !fd_readable(fds[1]));

    ck_assert_int_eq(vnet_datapath_poll(dp[1], 0), 1); /* queue 1: the virtual port's frame */
    ck_assert_uint_eq(memport_tx_count(um, 0), 0);
    ck_assert_uint_eq(memport_tx_count(um, 1), 1);
    ck_assert_uint_eq(memport_rx_count(um, 0), 1);     /* not dp[1]'s to take */
    ck_assert_int_eq(vnet_datapath_poll(dp[0], 0), 1); /* queue 0: the underlay's */
    ck_assert_uint_eq(memport_tx_count(vm, 0), 1);
    ck_assert_uint_eq(memport_tx_count(vm, 1), 0);
    struct memport_frame o;
    ck_assert_int_eq(memport_take(um, 1, &o), 0);
    expect_ep(&o.peer, EP_B);
    ck_assert_uint_eq(o.len, VNET_VXLAN_HLEN + sizeof(f));
    ck_assert_mem_eq(o.data + VNET_VXLAN_HLEN, f, sizeof(f));
    memport_frame_free(&o);
    ck_assert_int_eq(memport_take(vm, 0, &o), 0);
    ck_assert_uint_eq(o.len, sizeof(g));
    ck_assert_mem_eq(o.data, g, sizeof(g));
    memport_frame_free(&o);
    struct vnet_datapath_stats s0, s1;
    vnet_datapath_get_stats(dp[0], &s0);
    vnet_datapath_get_stats(dp[1], &s1);
    ck_assert_uint_eq(s0.vport.rx_packets + s0.uport.tx_packets, 0);
    ck_assert_uint_eq(s0.uport.rx_packets, 1);
    ck_assert_uint_eq(s1.vport.rx_packets, 1);
    ck_assert_uint_eq(s1.uport.rx_packets, 0);
    for (unsigned q = 0; q < 2; q++)
        vnet_datapath_destroy(dp[q]);
    vnet_port_close(vport);
    vnet_port_close(uport);
    memport_destroy(vm);
    memport_destroy(um);
    vnet_table_destroy(t);
}
END_TEST

/* ==== flooding ==== */

/* @f, sent from the virtual port, goes out once to each of B and C, in the peer list's order,
 * and nowhere else. */
static void expect_flooded(struct node *n, const uint8_t *f, size_t len)
{
    inject_v(n, f, len);
    poll_dp(n, 1);
    expect_vxlan(n, f, len, EP_B);
    expect_vxlan(n, f, len, EP_C);
    expect_quiet(n);
}

START_TEST(broadcast_to_every_peer)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[120];
    frame(f, &BCAST, &MA, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n);
    expect_flooded(&n, f, sizeof(f)); /* and not back to the virtual port */
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, flooded), 1);
    ck_assert_uint_eq(DELTA(s0, s1, uport.tx_packets), 2);
    ck_assert_uint_eq(DELTA(s0, s1, vport.tx_packets), 0);
    node_down(&n);
}
END_TEST

START_TEST(unknown_unicast_and_multicast_flooded)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[80], g[90];
    frame(f, &MU, &MA, sizeof(f));
    frame(g, &MCAST, &MA, sizeof(g));
    struct vnet_datapath_stats s0 = stats(&n);
    expect_flooded(&n, f, sizeof(f));
    expect_flooded(&n, g, sizeof(g));
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, flooded), 2);
    ck_assert_uint_eq(DELTA(s0, s1, uport.tx_packets), 4);
    node_down(&n);
}
END_TEST

START_TEST(flood_without_peers_dropped)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    ck_assert_int_eq(vnet_datapath_set_peers(n.dp, NULL, 0), 0);
    uint8_t f[80];
    frame(f, &BCAST, &MA, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n), s = s0;
    inject_v(&n, f, sizeof(f));
    poll_dropped(&n, 1, &s, VNET_DP_DROP_NO_PEERS, 1);
    ck_assert_uint_eq(DELTA(s0, s, flooded), 0);
    node_down(&n);
}
END_TEST

START_TEST(received_broadcast_not_flooded_again)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[80];
    frame(f, &BCAST, &MB, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n);
    expect_delivered(&n, f, sizeof(f), EP_B);
    expect_quiet(&n); /* nothing back to B, nothing on to C */
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, flooded), 0);
    node_down(&n);
}
END_TEST

/* ==== learning ==== */

/* The entry for @mac (NULL if none); its endpoint in *out. */
static const struct vnet_entry *lookup(struct node *n, const struct vnet_mac *mac,
                                       struct vnet_endpoint *out)
{
    const struct vnet_entry *e = vnet_table_lookup(n->table, VNI, mac);
    if (e)
        vnet_entry_endpoint(e, out);
    return e;
}

START_TEST(learns_where_learning_is_on)
{
    struct node_opts o = {.learn = true};
    struct node n;
    node_a(&n, &o);
    uint8_t f[90];
    frame(f, &MA, &MU, sizeof(f));
    struct vnet_endpoint from_c = EP_C;
    from_c.port = 55555; /* senders pick a source port per flow: the peer's port is kept */
    struct vnet_datapath_stats s0 = stats(&n);
    expect_delivered(&n, f, sizeof(f), from_c);
    ck_assert(fd_readable(vnet_datapath_learn_fd(n.dp)));
    ck_assert_int_eq(vnet_datapath_learn_drain(n.dp), 1);
    ck_assert(!fd_readable(vnet_datapath_learn_fd(n.dp)));
    struct vnet_endpoint at;
    const struct vnet_entry *e = lookup(&n, &MU, &at);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(vnet_entry_flags(e), VNET_ENTRY_LEARNED);
    expect_ep(&at, EP_C);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, learned), 1);

    /* Now MU is unicast to C, not flooded. */
    uint8_t g[70];
    frame(g, &MU, &MA, sizeof(g));
    inject_v(&n, g, sizeof(g));
    poll_dp(&n, 1);
    expect_vxlan(&n, g, sizeof(g), EP_C);
    expect_quiet(&n);

    /* A learned MAC that moves to B follows it. */
    expect_delivered(&n, f, sizeof(f), EP_B);
    ck_assert_int_eq(vnet_datapath_learn_drain(n.dp), 1);
    lookup(&n, &MU, &at);
    expect_ep(&at, EP_B);
    /* Nothing new to learn from the same place again. */
    expect_delivered(&n, f, sizeof(f), EP_B);
    ck_assert_int_eq(vnet_datapath_learn_drain(n.dp), 0);
    struct vnet_datapath_stats s2 = stats(&n);
    expect_drops(&s0, &s2, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s2, learned), 2);
    ck_assert_uint_eq(DELTA(s0, s2, flooded), 0);
    node_down(&n);
}
END_TEST

/* Every frame of a burst from a new MAC reaches the learn queue before the writer drains it:
 * the MAC is still written once, at the place it was seen last. */
START_TEST(burst_from_new_mac_learned_once)
{
    struct node_opts o = {.learn = true};
    struct node n;
    node_a(&n, &o);
    uint8_t f[90];
    frame(f, &MA, &MU, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n);
    for (int i = 0; i < 5; i++)
        inject_vxlan(&n, f, sizeof(f), i < 4 ? EP_C : EP_B);
    poll_dp(&n, 5);
    ck_assert_uint_eq(memport_tx_count(n.vm, 0), 5);
    ck_assert_int_eq(vnet_datapath_learn_drain(n.dp), 1);
    struct vnet_endpoint at;
    ck_assert_ptr_nonnull(lookup(&n, &MU, &at));
    expect_ep(&at, EP_B);
    struct vnet_datapath_stats s1 = stats(&n);
    ck_assert_uint_eq(DELTA(s0, s1, learned), 1);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    node_down(&n);
}
END_TEST

START_TEST(no_learning_where_it_is_off)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[90], g[70];
    frame(f, &MA, &MU, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n);
    inject_vxlan(&n, f, sizeof(f), EP_C); /* a known peer's frame is delivered all the same */
    poll_dp(&n, 1);
    expect_virtual(&n, f, sizeof(f));
    ck_assert(!fd_readable(vnet_datapath_learn_fd(n.dp)));
    ck_assert_int_eq(vnet_datapath_learn_drain(n.dp), 0);
    struct vnet_endpoint at;
    ck_assert_ptr_null(lookup(&n, &MU, &at));
    frame(g, &MU, &MA, sizeof(g));
    expect_flooded(&n, g, sizeof(g));
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, learned), 0);
    node_down(&n);
}
END_TEST

/* A frame from C claiming B's MAC (static, controller-given): dropped, counted, never learned,
 * with or without learning. */
static void spoof_dropped(const struct node_opts *o)
{
    struct node n;
    node_a(&n, o);
    uint8_t f[90];
    frame(f, &MA, &MB, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n), s = s0;
    inject_vxlan(&n, f, sizeof(f), EP_C);
    poll_dropped(&n, 1, &s, VNET_DP_DROP_SPOOF, 1);
    ck_assert_int_eq(vnet_datapath_learn_drain(n.dp), 0);
    struct vnet_endpoint at;
    const struct vnet_entry *e = lookup(&n, &MB, &at);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(vnet_entry_flags(e), VNET_ENTRY_STATIC);
    expect_ep(&at, EP_B);

    /* A multicast source MAC is never valid; this node's own MAC from outside is "self". */
    frame(f, &MA, &MCAST, sizeof(f));
    inject_vxlan(&n, f, sizeof(f), EP_B);
    poll_dropped(&n, 1, &s, VNET_DP_DROP_SPOOF, 1);
    frame(f, &MB, &MA, sizeof(f));
    inject_vxlan(&n, f, sizeof(f), EP_B);
    poll_dropped(&n, 1, &s, VNET_DP_DROP_SELF, 1);
    expect_quiet(&n);
    /* The real B still gets through. */
    frame(f, &MA, &MB, sizeof(f));
    expect_delivered(&n, f, sizeof(f), EP_B);
    ck_assert_uint_eq(DELTA(s0, stats(&n), learned), 0);
    node_down(&n);
}

START_TEST(spoofed_source_dropped_learning_on)
{
    struct node_opts o = {.learn = true};
    spoof_dropped(&o);
}
END_TEST

START_TEST(spoofed_source_dropped_learning_off)
{
    spoof_dropped(&DEFAULTS);
}
END_TEST

/* The learn queue holds 1024 entries until the writer drains it: one more is counted (the
 * frame is still delivered), and the drain writes the 1024 in batches. */
START_TEST(learn_queue_full_counted)
{
    struct node_opts o = {.learn = true};
    struct node n;
    node_a(&n, &o);
    uint8_t f[64];
    struct vnet_datapath_stats s0 = stats(&n);
    for (unsigned i = 0; i < 1025; i++) {
        const struct vnet_mac src = {{0x02, 0x10, 0, 0, (uint8_t)(i >> 8), (uint8_t)i}};
        frame(f, &MA, &src, sizeof(f));
        inject_vxlan(&n, f, sizeof(f), EP_C);
    }
    int handled = 0, rc;
    while ((rc = vnet_datapath_poll(n.dp, 0)) > 0)
        handled += rc;
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(handled, 1025);
    ck_assert_uint_eq(memport_tx_count(n.vm, 0), 1025);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, VNET_DP_DROP_LEARN_FULL, 1);
    ck_assert_int_eq(vnet_datapath_learn_drain(n.dp), 1024);
    ck_assert_uint_eq(DELTA(s0, stats(&n), learned), 1024);
    ck_assert_uint_eq(vnet_table_count(n.table), 3 + 1024);
    node_down(&n);
}
END_TEST

START_TEST(nothing_learned_from_strangers)
{
    struct node_opts o = {.learn = true};
    struct node n;
    node_a(&n, &o);
    uint8_t f[90];
    frame(f, &MA, &MU, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n), s = s0;
    inject_vxlan(&n, f, sizeof(f), EP_X);
    poll_dropped(&n, 1, &s, VNET_DP_DROP_UNKNOWN_PEER, 1);
    ck_assert_int_eq(vnet_datapath_learn_drain(n.dp), 0);
    struct vnet_endpoint at;
    ck_assert_ptr_null(lookup(&n, &MU, &at));
    node_down(&n);
}
END_TEST

/* ==== ARP and ND proxy ==== */

START_TEST(arp_answered_from_the_table)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[42];
    arp_request(f, IP_B);
    struct vnet_datapath_stats s0 = stats(&n);
    inject_v(&n, f, sizeof(f));
    poll_dp(&n, 1);
    ck_assert_uint_eq(memport_tx_count(n.um, 0), 0);
    struct memport_frame r = take(n.vm);
    ck_assert_uint_eq(r.len, 60);
    uint8_t want[60];
    memset(want, 0, sizeof(want));
    eth(want, &MA, &MB, 0x0806);
    const uint8_t arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 2};
    memcpy(want + 14, arp_hdr, 8);
    memcpy(want + 22, MB.b, 6);
    memcpy(want + 28, IP_B, 4);
    memcpy(want + 32, MA.b, 6);
    memcpy(want + 38, IP_A, 4);
    ck_assert_mem_eq(r.data, want, 60);
    memport_frame_free(&r);
    expect_quiet(&n);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, arp_replies), 1);
    ck_assert_uint_eq(DELTA(s0, s1, flooded), 0);
    ck_assert_uint_eq(DELTA(s0, s1, vport.tx_packets), 1);
    node_down(&n);
}
END_TEST

START_TEST(arp_for_unknown_address_flooded)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[42];
    const uint8_t nobody[4] = {10, 1, 0, 99};
    arp_request(f, nobody);
    struct vnet_datapath_stats s0 = stats(&n);
    expect_flooded(&n, f, sizeof(f));
    struct vnet_datapath_stats s1 = stats(&n);
    ck_assert_uint_eq(DELTA(s0, s1, arp_replies), 0);
    ck_assert_uint_eq(DELTA(s0, s1, flooded), 1);
    node_down(&n);
}
END_TEST

START_TEST(no_proxy_when_turned_off)
{
    struct node_opts o = {.no_arp_proxy = true};
    struct node n;
    node_a(&n, &o);
    uint8_t f[42], g[128];
    arp_request(f, IP_B);
    size_t glen = nd_solicit(g, IP6_B, false);
    struct vnet_datapath_stats s0 = stats(&n);
    expect_flooded(&n, f, sizeof(f));
    expect_flooded(&n, g, glen);
    struct vnet_datapath_stats s1 = stats(&n);
    ck_assert_uint_eq(DELTA(s0, s1, arp_replies), 0);
    ck_assert_uint_eq(DELTA(s0, s1, nd_replies), 0);
    ck_assert_uint_eq(DELTA(s0, s1, flooded), 2);
    node_down(&n);
}
END_TEST

/* A neighbour advertisement for fd00::b at MB in @r, to @dst_mac / @dst_ip with @flags. */
static void expect_na(const struct memport_frame *r, const struct vnet_mac *dst_mac,
                      const uint8_t dst_ip[16], uint8_t flags)
{
    ck_assert_uint_eq(r->len, 14 + 40 + 32);
    const uint8_t *f = r->data, *ip = f + 14, *na = ip + 40;
    ck_assert_mem_eq(f, dst_mac->b, 6);
    ck_assert_mem_eq(f + 6, MB.b, 6);
    ck_assert_uint_eq(get16(f + 12), 0x86dd);
    ck_assert_uint_eq(ip[0] >> 4, 6);
    ck_assert_uint_eq(get16(ip + 4), 32);
    ck_assert_uint_eq(ip[6], 58);
    ck_assert_uint_eq(ip[7], 255);
    ck_assert_mem_eq(ip + 8, IP6_B, 16);
    ck_assert_mem_eq(ip + 24, dst_ip, 16);
    ck_assert_uint_eq(na[0], 136);
    ck_assert_uint_eq(na[1], 0);
    ck_assert_uint_eq(na[4], flags);
    ck_assert_mem_eq(na + 8, IP6_B, 16);
    const uint8_t opt[8] = {2, 1, MB.b[0], MB.b[1], MB.b[2], MB.b[3], MB.b[4], MB.b[5]};
    ck_assert_mem_eq(na + 24, opt, 8);
    uint32_t sum = vnet_csum_pseudo6(ip + 8, ip + 24, 58, 32);
    ck_assert_uint_eq(vnet_csum_fold(vnet_csum_partial(na, 32, sum)), 0);
}

START_TEST(nd_answered_from_the_table)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[128];
    size_t len = nd_solicit(f, IP6_B, false);
    struct vnet_datapath_stats s0 = stats(&n);
    inject_v(&n, f, len);
    poll_dp(&n, 1);
    ck_assert_uint_eq(memport_tx_count(n.um, 0), 0);
    struct memport_frame r = take(n.vm);
    expect_na(&r, &MA, IP6_A, 0x60); /* solicited + override */
    memport_frame_free(&r);

    /* A duplicate address probe (from ::) is answered to all nodes, not solicited. */
    len = nd_solicit(f, IP6_B, true);
    inject_v(&n, f, len);
    poll_dp(&n, 1);
    r = take(n.vm);
    const struct vnet_mac all_nodes = {{0x33, 0x33, 0, 0, 0, 1}};
    const uint8_t all_nodes6[16] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    expect_na(&r, &all_nodes, all_nodes6, 0x20);
    memport_frame_free(&r);
    expect_quiet(&n);

    /* Unknown target: flooded. */
    const uint8_t nobody[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99};
    len = nd_solicit(f, nobody, false);
    expect_flooded(&n, f, len);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, nd_replies), 2);
    ck_assert_uint_eq(DELTA(s0, s1, arp_replies), 0);
    ck_assert_uint_eq(DELTA(s0, s1, flooded), 1);
    node_down(&n);
}
END_TEST

/* ==== ingress checks ==== */

START_TEST(foreign_vni_dropped)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[80], d[100];
    frame(f, &MA, &MB, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n), s = s0;
    inject_u(&n, d, vxlan(d, VNI + 1, f, sizeof(f)), EP_B);
    poll_dropped(&n, 1, &s, VNET_DP_DROP_FOREIGN_VNI, 1);
    ck_assert_uint_eq(DELTA(s0, s, uport.rx_packets), 1);
    node_down(&n);
}
END_TEST

START_TEST(unknown_peer_dropped)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[80];
    frame(f, &MA, &MU, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n), s = s0;
    inject_vxlan(&n, f, sizeof(f), EP_X);
    poll_dropped(&n, 1, &s, VNET_DP_DROP_UNKNOWN_PEER, 1);
    /* A stranger claiming a known MAC is a spoof. */
    frame(f, &MA, &MC, sizeof(f));
    inject_vxlan(&n, f, sizeof(f), EP_X);
    poll_dropped(&n, 1, &s, VNET_DP_DROP_SPOOF, 1);
    node_down(&n);
}
END_TEST

START_TEST(malformed_counted_by_reason)
{
    struct node n;
    node_a(&n, &DEFAULTS);
    uint8_t f[80], d[100];
    frame(f, &MA, &MB, sizeof(f));
    size_t dlen = vxlan(d, VNI, f, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&n);
    inject_u(&n, d, 5, EP_B); /* shorter than the VXLAN header */
    uint8_t bad[100];
    memcpy(bad, d, dlen);
    bad[0] = 0; /* I flag clear */
    inject_u(&n, bad, dlen, EP_B);
    inject_u(&n, d, VNET_VXLAN_HLEN + 13, EP_B); /* inner shorter than Ethernet */
    inject_u(&n, d, dlen, EP_B);                 /* and forwarding goes on */
    poll_dp(&n, 4);
    expect_virtual(&n, f, sizeof(f));
    expect_quiet(&n);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, VNET_DP_DROP_DECAP, 3);
    for (int i = 0; i < VNET_DROP__MAX; i++) {
        uint64_t want = i == VNET_DROP_TRUNC_VXLAN || i == VNET_DROP_BAD_VXLAN_FLAGS ||
                                i == VNET_DROP_TRUNC_INNER
                            ? 1
                            : 0;
        ck_assert_msg(s1.decap[i] - s0.decap[i] == want, "decap %s",
                      vnet_drop_reason_name((enum vnet_drop_reason)i));
    }
    ck_assert_uint_eq(DELTA(s0, s1, uport.rx_packets), 4);
    ck_assert_uint_eq(DELTA(s0, s1, vport.tx_packets), 1);
    node_down(&n);
}
END_TEST

/* ==== MTU ==== */

/* Send @f (over the MTU, MA -> MB) from the virtual port: nothing may reach the underlay, one
 * too_big drop and one answer must be counted, and the answer (returned, for the caller to
 * check and free) goes back to the sender, from the destination's MAC, with @ethertype. */
static struct memport_frame too_big_answer(struct node *n, const uint8_t *f, size_t len,
                                           uint16_t ethertype)
{
    struct vnet_datapath_stats s0 = stats(n);
    inject_v(n, f, len);
    poll_dp(n, 1);
    ck_assert_uint_eq(memport_tx_count(n->um, 0), 0);
    struct memport_frame r = take(n->vm);
    expect_quiet(n);
    ck_assert_mem_eq(r.data, MA.b, 6);
    ck_assert_mem_eq(r.data + 6, MB.b, 6);
    ck_assert_uint_eq(get16(r.data + 12), ethertype);
    struct vnet_datapath_stats s1 = stats(n);
    expect_drops(&s0, &s1, VNET_DP_DROP_TOO_BIG, 1);
    ck_assert_uint_eq(DELTA(s0, s1, too_big_sent), 1);
    return r;
}

/* IPv4, DF set, over the MTU: dropped, and an ICMP "fragmentation needed" back to the sender. */
START_TEST(ipv4_too_big_answered)
{
    struct node_opts o = {.mtu = 1400};
    struct node n;
    node_a(&n, &o);
    static uint8_t f[1600];
    size_t len = ipv4(f, 14 + 1500, true);
    struct memport_frame r = too_big_answer(&n, f, len, 0x0800);
    const uint8_t *ip = r.data + 14, *ic = ip + 20;
    ck_assert_uint_eq(r.len, 14 + 20 + 8 + 548);
    ck_assert_uint_eq(ip[0], 0x45);
    ck_assert_uint_eq(get16(ip + 2), 20 + 8 + 548);
    ck_assert_uint_eq(ip[9], 1);
    ck_assert_mem_eq(ip + 12, IP_B, 4);
    ck_assert_mem_eq(ip + 16, IP_A, 4);
    ck_assert_uint_eq(vnet_csum(ip, 20), 0);
    ck_assert_uint_eq(ic[0], 3);
    ck_assert_uint_eq(ic[1], 4);
    ck_assert_uint_eq(get16(ic + 6), 1400);
    ck_assert_uint_eq(vnet_csum(ic, 8 + 548), 0);
    ck_assert_mem_eq(ic + 8, f + 14, 548); /* the original, from its IP header on */
    memport_frame_free(&r);
    node_down(&n);
}
END_TEST

START_TEST(ipv6_too_big_answered)
{
    struct node_opts o = {.mtu = 1400};
    struct node n;
    node_a(&n, &o);
    static uint8_t f[1600];
    size_t len = ipv6(f, 14 + 1500);
    struct memport_frame r = too_big_answer(&n, f, len, 0x86dd);
    const size_t quote = 1280 - 48;
    const uint8_t *ip = r.data + 14, *ic = ip + 40;
    ck_assert_uint_eq(r.len, 14 + 40 + 8 + quote);
    ck_assert_uint_eq(get16(ip + 4), 8 + quote);
    ck_assert_uint_eq(ip[6], 58);
    ck_assert_mem_eq(ip + 8, IP6_B, 16);
    ck_assert_mem_eq(ip + 24, IP6_A, 16);
    ck_assert_uint_eq(ic[0], 2);
    ck_assert_uint_eq(ic[1], 0);
    const uint8_t mtu[4] = {0, 0, 1400 >> 8, 1400 & 0xff};
    ck_assert_mem_eq(ic + 4, mtu, 4);
    uint32_t sum = vnet_csum_pseudo6(ip + 8, ip + 24, 58, (uint32_t)(8 + quote));
    ck_assert_uint_eq(vnet_csum_fold(vnet_csum_partial(ic, 8 + quote, sum)), 0);
    ck_assert_mem_eq(ic + 8, f + 14, quote);
    memport_frame_free(&r);
    node_down(&n);
}
END_TEST

/* At the limit: the MTU plus room for one VLAN tag passes, one byte more does not; without DF
 * nothing is answered. The limit is the virtual port's MTU when the config gives none. */
START_TEST(mtu_limit_exact)
{
    struct node_opts o = {.vport_mtu = 1450};
    struct node n;
    node_a(&n, &o);
    static uint8_t f[1600];
    struct vnet_datapath_stats s0 = stats(&n);
    size_t len = ipv4(f, 14 + 1450 + 4, true);
    inject_v(&n, f, len);
    poll_dp(&n, 1);
    expect_vxlan(&n, f, len, EP_B);
    len = ipv4(f, 14 + 1450 + 5, true);
    inject_v(&n, f, len);
    poll_dp(&n, 1);
    ck_assert_uint_eq(memport_tx_count(n.um, 0), 0);
    ck_assert_uint_eq(memport_tx_count(n.vm, 0), 1); /* the ICMP */
    memport_clear(n.vm);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, VNET_DP_DROP_TOO_BIG, 1);
    ck_assert_uint_eq(DELTA(s0, s1, too_big_sent), 1);
    len = ipv4(f, 14 + 1450 + 5, false);
    inject_v(&n, f, len);
    poll_dropped(&n, 1, &s1, VNET_DP_DROP_TOO_BIG, 1);
    ck_assert_uint_eq(DELTA(s0, s1, too_big_sent), 1); /* no second one */
    node_down(&n);
}
END_TEST

/* ==== offloads ==== */

#define MSS 1000

static uint8_t payload[3 * MSS];

static void fill_payload(void)
{
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 13 + 5);
}

#define TCP_ACK 0x10
#define TCP_PSH 0x08

/* A TCP/IPv4 frame (DF set) with valid checksums: @plen bytes of @data after the headers. */
static size_t tcp4(uint8_t *f, bool to_b, uint32_t seq, uint16_t id, uint8_t flags,
                   const uint8_t *data, size_t plen)
{
    eth(f, to_b ? &MB : &MA, to_b ? &MA : &MB, 0x0800);
    uint8_t *ip = f + 14, *tcp = ip + 20;
    memset(ip, 0, 40);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(40 + plen));
    put16(ip + 4, id);
    put16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, to_b ? IP_A : IP_B, 4);
    memcpy(ip + 16, to_b ? IP_B : IP_A, 4);
    put16(ip + 10, vnet_csum(ip, 20));
    put16(tcp, 40000);
    put16(tcp + 2, 5201);
    tcp[4] = (uint8_t)(seq >> 24);
    tcp[5] = (uint8_t)(seq >> 16);
    tcp[6] = (uint8_t)(seq >> 8);
    tcp[7] = (uint8_t)seq;
    tcp[11] = 77; /* ack number */
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    put16(tcp + 14, 512); /* window */
    memcpy(tcp + 20, data, plen);
    uint32_t sum = vnet_csum_pseudo4(ip + 12, ip + 16, 6, (uint16_t)(20 + plen));
    put16(tcp + 16, vnet_csum_fold(vnet_csum_partial(tcp, 20 + plen, sum)));
    return 54 + plen;
}

/* A TSO frame MA -> MB of 3 * MSS payload bytes, as a TAP hands it over (metadata included). */
static struct memport_frame tso_frame(void)
{
    static uint8_t f[54 + 3 * MSS];
    fill_payload();
    struct memport_frame in = {.data = f,
                               .gso_type = VNET_GSO_TCPV4,
                               .gso_size = MSS,
                               .hdr_len = 54,
                               .csum_flags = VNET_CSUM_PARTIAL,
                               .csum_start = 34,
                               .csum_offset = 16};
    in.len = tcp4(f, true, 1000, 100, TCP_ACK | TCP_PSH, payload, sizeof(payload));
    return in;
}

/* A TSO frame of 3 * MSS bytes from the virtual port leaves as three wire-sized frames, each
 * exactly what a sender would have built for that segment (seq, IP ID, PSH on the last,
 * checksums), behind its own VXLAN header: one datagram each, or one UDP GSO batch when the
 * underlay takes them. */
static void tso_out(uint32_t ucaps)
{
    struct node_opts o = {.ucaps = ucaps};
    struct node n;
    node_a(&n, &o);
    static uint8_t want[3][54 + MSS];
    struct memport_frame in = tso_frame();
    for (int k = 0; k < 3; k++)
        tcp4(want[k], true, 1000 + (uint32_t)k * MSS, (uint16_t)(100 + k),
             k == 2 ? TCP_ACK | TCP_PSH : TCP_ACK, payload + k * MSS, MSS);
    struct vnet_datapath_stats s0 = stats(&n);
    ck_assert_int_eq(memport_inject_frame(n.vm, 0, &in), 0);
    poll_dp(&n, 1);
    if (ucaps & VNET_PORT_CAP_UDP_GSO) {
        struct memport_frame d = take(n.um);
        const size_t stride = VNET_VXLAN_HLEN + sizeof(want[0]);
        expect_ep(&d.peer, EP_B);
        ck_assert_uint_eq(d.len, 3 * stride);
        ck_assert_uint_eq(d.gso_size, stride);
        for (int k = 0; k < 3; k++) {
            expect_vxlan_bytes(d.data + k * stride, want[k], sizeof(want[k]));
        }
        memport_frame_free(&d);
    } else {
        for (int k = 0; k < 3; k++)
            expect_vxlan(&n, want[k], sizeof(want[k]), EP_B);
    }
    expect_quiet(&n);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, gso_frames), 1);
    ck_assert_uint_eq(DELTA(s0, s1, uport.tx_packets), ucaps & VNET_PORT_CAP_UDP_GSO ? 1 : 3);
    node_down(&n);
}

START_TEST(tso_segmented)
{
    tso_out(0);
}
END_TEST

START_TEST(tso_segmented_into_udp_gso_batch)
{
    tso_out(VNET_PORT_CAP_UDP_GSO);
}
END_TEST

/* Three in-order segments from a peer reach a virtual port that takes TSO as one frame with
 * GSO metadata; a port that does not gets them as they came. */
static void gro_in(uint32_t vcaps)
{
    struct node_opts o = {.vcaps = vcaps};
    struct node n;
    node_a(&n, &o);
    fill_payload();
    static uint8_t seg[3][54 + MSS], merged[54 + 3 * MSS];
    size_t len = 0;
    for (int k = 0; k < 3; k++) {
        len = tcp4(seg[k], false, 1000 + (uint32_t)k * MSS, (uint16_t)(100 + k),
                   k == 2 ? TCP_ACK | TCP_PSH : TCP_ACK, payload + k * MSS, MSS);
        inject_vxlan(&n, seg[k], len, EP_B);
    }
    struct vnet_datapath_stats s0 = stats(&n);
    poll_dp(&n, 3);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(s0, s1, uport.rx_packets), 3);
    if (!(vcaps & VNET_PORT_CAP_TSO)) {
        for (int k = 0; k < 3; k++)
            expect_virtual(&n, seg[k], len);
        ck_assert_uint_eq(DELTA(s0, s1, gro_frames), 0);
        node_down(&n);
        return;
    }
    size_t mlen = tcp4(merged, false, 1000, 100, TCP_ACK | TCP_PSH, payload, sizeof(payload));
    struct memport_frame r = take(n.vm);
    ck_assert_uint_eq(r.len, mlen);
    ck_assert_uint_eq(r.gso_type, VNET_GSO_TCPV4);
    ck_assert_uint_eq(r.gso_size, MSS);
    ck_assert_uint_eq(r.csum_flags, VNET_CSUM_PARTIAL);
    ck_assert_uint_eq(r.csum_start, 34);
    ck_assert_uint_eq(r.csum_offset, 16);
    /* Completing the partial checksum gives the frame the sender would have sent in one. */
    struct vnet_pkt p = {.buf = r.data,
                         .cap = (uint32_t)r.len,
                         .len = (uint32_t)r.len,
                         .csum_flags = VNET_CSUM_PARTIAL,
                         .csum_start = r.csum_start,
                         .csum_offset = r.csum_offset};
    ck_assert_int_eq(vnet_csum_complete(&p), 0);
    ck_assert_mem_eq(r.data, merged, mlen);
    memport_frame_free(&r);
    expect_quiet(&n);
    ck_assert_uint_eq(DELTA(s0, s1, gro_frames), 1);
    ck_assert_uint_eq(DELTA(s0, s1, vport.tx_packets), 1);
    node_down(&n);
}

START_TEST(gro_merged_for_a_tso_port)
{
    gro_in(VNET_PORT_CAP_TSO | VNET_PORT_CAP_CSUM);
}
END_TEST

START_TEST(no_gro_without_tso)
{
    gro_in(0);
}
END_TEST

/* ==== secure mode ==== */

struct pair {
    struct vnet_keypair ka, kb;
    struct node a, b;
};

static struct vnet_peer dp_peer(struct vnet_endpoint e, uint64_t id, const uint8_t *pub)
{
    struct vnet_peer p;
    memset(&p, 0, sizeof(p));
    p.ep = e;
    p.id = id;
    p.has_pubkey = true;
    memcpy(p.pubkey, pub, VNET_KEY_LEN);
    return p;
}

static const uint8_t NONCE_A[VNET_SEAL_NONCE_LEN] = {0xa1, 1};
static const uint8_t NONCE_B1[VNET_SEAL_NONCE_LEN] = {0xb1, 1};
static const uint8_t NONCE_B2[VNET_SEAL_NONCE_LEN] = {0xb2, 2};

/* @pr with the per-boot nonce @nonce (NULL: none). */
static struct vnet_peer with_nonce(struct vnet_peer pr, const uint8_t *nonce)
{
    pr.has_nonce = nonce != NULL;
    if (nonce)
        memcpy(pr.nonce, nonce, VNET_SEAL_NONCE_LEN);
    return pr;
}

/* Node B of a pair (up, table, A as its peer with @a_nonce): also what a restart of B does. */
static void b_up(struct pair *p, uint32_t b_vcaps, const uint8_t *b_nonce, const uint8_t *a_nonce)
{
    struct node_opts ob = {.secure = true, .key = &p->kb, .vcaps = b_vcaps, .nonce = b_nonce};
    node_up(&p->b, "b", &ob);
    const struct vnet_table_op tb[] = {
        put(&MB, EP_B, 2, VNET_ENTRY_LOCAL),  put(&MA, EP_A, 1, VNET_ENTRY_STATIC),
        put(&MC, EP_C, 3, VNET_ENTRY_STATIC), put(&MD, ep(1, 4790), 4, VNET_ENTRY_STATIC),
        put_ip(&MA, VNET_AF_INET, IP_A),      put_ip(&MA, VNET_AF_INET6, IP6_A),
        put_ip(&MB, VNET_AF_INET, IP_B),      put_ip(&MB, VNET_AF_INET6, IP6_B),
        put_ip(&MC, VNET_AF_INET, IP_C),      put_ip(&MC, VNET_AF_INET6, IP6_C),
    };
    ck_assert_int_eq(vnet_table_apply(p->b.table, tb, sizeof(tb) / sizeof(tb[0]), 1), 0);
    struct vnet_peer to_a = with_nonce(dp_peer(EP_A, 1, p->ka.pub), a_nonce);
    ck_assert_int_eq(vnet_datapath_set_peer_list(p->b.dp, &to_a, 1), 0);
    ck_assert_int_eq(vnet_datapath_add_local_mac(p->b.dp, &MB), 0);
}

/* Nodes A (id 1) and B (id 2) in secure mode, each knowing the other's MAC and key. B's table
 * also holds MC at C (node 3) and MD of node 4 at A's address (another port). @b_pub_for_a:
 * the key A believes B has (NULL: B's own). @b_vcaps: capabilities of B's virtual port.
 * @na, @nb: the nodes' per-boot nonces (NULL: static keys only). */
static void pair_up_n(struct pair *p, const uint8_t *b_pub_for_a, uint32_t b_vcaps,
                      const uint8_t *na, const uint8_t *nb)
{
    ck_assert_int_eq(vnet_key_generate(&p->ka), 0);
    ck_assert_int_eq(vnet_key_generate(&p->kb), 0);
    struct node_opts oa = {.secure = true, .key = &p->ka, .nonce = na};
    node_up(&p->a, "a", &oa);
    const struct vnet_table_op ta[] = {
        put(&MA, EP_A, 1, VNET_ENTRY_LOCAL), put(&MB, EP_B, 2, VNET_ENTRY_STATIC),
        put_ip(&MB, VNET_AF_INET, IP_B),     put_ip(&MB, VNET_AF_INET6, IP6_B),
        put_ip(&MA, VNET_AF_INET, IP_A),     put_ip(&MA, VNET_AF_INET6, IP6_A),
    };
    ck_assert_int_eq(vnet_table_apply(p->a.table, ta, sizeof(ta) / sizeof(ta[0]), 1), 0);
    struct vnet_peer to_b = with_nonce(dp_peer(EP_B, 2, b_pub_for_a ? b_pub_for_a : p->kb.pub), nb);
    ck_assert_int_eq(vnet_datapath_set_peer_list(p->a.dp, &to_b, 1), 0);
    ck_assert_int_eq(vnet_datapath_add_local_mac(p->a.dp, &MA), 0);
    b_up(p, b_vcaps, nb, na);
}

static void pair_up(struct pair *p, const uint8_t *b_pub_for_a, uint32_t b_vcaps)
{
    pair_up_n(p, b_pub_for_a, b_vcaps, NULL, NULL);
}

static void pair_down(struct pair *p)
{
    node_down(&p->a);
    node_down(&p->b);
    vnet_key_wipe(&p->ka);
    vnet_key_wipe(&p->kb);
}

/* Send @f from @from's virtual port; return the sealed datagram its underlay sent to @to. */
static struct memport_frame seal_via(struct node *from, const uint8_t *f, size_t len,
                                     struct vnet_endpoint to)
{
    inject_v(from, f, len);
    poll_dp(from, 1);
    struct memport_frame d = take(from->um);
    expect_ep(&d.peer, to);
    ck_assert_uint_eq(d.len, len + VNET_SEAL_OVERHEAD);
    expect_quiet(from);
    return d;
}

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

START_TEST(sealed_frames_round_trip)
{
    struct pair p;
    pair_up(&p, NULL, 0);
    uint8_t f[300], g[200];
    frame(f, &MB, &MA, sizeof(f));
    frame(g, &MA, &MB, sizeof(g));
    struct vnet_datapath_stats a0 = stats(&p.a), b0 = stats(&p.b);

    struct memport_frame d = seal_via(&p.a, f, sizeof(f), EP_B);
    ck_assert(!contains(d.data, d.len, f + 14, 32)); /* no plaintext on the underlay */
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dp(&p.b, 1);
    expect_virtual(&p.b, f, sizeof(f));
    expect_quiet(&p.b);
    memport_frame_free(&d);

    d = seal_via(&p.b, g, sizeof(g), EP_A);
    inject_u(&p.a, d.data, d.len, EP_B);
    poll_dp(&p.a, 1);
    expect_virtual(&p.a, g, sizeof(g));
    memport_frame_free(&d);

    struct vnet_datapath_stats a1 = stats(&p.a), b1 = stats(&p.b);
    expect_drops(&a0, &a1, NO_DROPS, 0);
    expect_drops(&b0, &b1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(a0, a1, uport.tx_packets), 1);
    ck_assert_uint_eq(DELTA(a0, a1, vport.tx_packets), 1);
    ck_assert_uint_eq(DELTA(b0, b1, uport.tx_packets), 1);
    ck_assert_uint_eq(DELTA(b0, b1, vport.tx_packets), 1);
    pair_down(&p);
}
END_TEST

START_TEST(tampered_and_replayed_dropped)
{
    struct pair p;
    pair_up(&p, NULL, 0);
    uint8_t f[300], g[250];
    frame(f, &MB, &MA, sizeof(f));
    frame(g, &MB, &MA, sizeof(g));
    struct memport_frame d1 = seal_via(&p.a, f, sizeof(f), EP_B);
    struct memport_frame d2 = seal_via(&p.a, g, sizeof(g), EP_B);
    struct vnet_datapath_stats s0 = stats(&p.b), s = s0;

    inject_u(&p.b, d1.data, d1.len, EP_A);
    poll_dp(&p.b, 1);
    expect_virtual(&p.b, f, sizeof(f));
    inject_u(&p.b, d1.data, d1.len, EP_A); /* again */
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_REPLAY, 1);

    /* One flipped bit in the ciphertext, the tag, or the header; and a truncated copy. */
    const size_t at[] = {VNET_SEAL_HDR_LEN + 20, d2.len - 1, 2};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        d2.data[at[i]] ^= 0x01;
        inject_u(&p.b, d2.data, d2.len, EP_A);
        d2.data[at[i]] ^= 0x01;
    }
    inject_u(&p.b, d2.data, d2.len - 5, EP_A);
    poll_dropped(&p.b, 4, &s, VNET_DP_DROP_AUTH, 4);

    /* The forgeries did not use up d2's counter: the real one still opens. */
    inject_u(&p.b, d2.data, d2.len, EP_A);
    poll_dp(&p.b, 1);
    expect_virtual(&p.b, g, sizeof(g));
    /* A plain VXLAN frame does not authenticate either. */
    inject_vxlan(&p.b, g, sizeof(g), EP_A);
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_AUTH, 1);
    ck_assert_uint_eq(DELTA(s0, s, vport.tx_packets), 2);
    memport_frame_free(&d1);
    memport_frame_free(&d2);
    pair_down(&p);
}
END_TEST

/* A TSO frame in secure mode: each segment sealed on its own; B, whose virtual port takes
 * TSO, opens them and hands them on merged. */
START_TEST(sealed_tso_segments_merged)
{
    struct pair p;
    pair_up(&p, NULL, VNET_PORT_CAP_TSO | VNET_PORT_CAP_CSUM);
    static uint8_t seg[54 + MSS];
    struct memport_frame in = tso_frame();
    struct vnet_datapath_stats a0 = stats(&p.a), b0 = stats(&p.b);
    ck_assert_int_eq(memport_inject_frame(p.a.vm, 0, &in), 0);
    poll_dp(&p.a, 1);
    ck_assert_uint_eq(memport_tx_count(p.a.um, 0), 3);
    for (int k = 0; k < 3; k++) {
        struct memport_frame d = take(p.a.um);
        expect_ep(&d.peer, EP_B);
        ck_assert_uint_eq(d.len, sizeof(seg) + VNET_SEAL_OVERHEAD);
        tcp4(seg, true, 1000 + (uint32_t)k * MSS, (uint16_t)(100 + k),
             k == 2 ? TCP_ACK | TCP_PSH : TCP_ACK, payload + k * MSS, MSS);
        ck_assert(!contains(d.data, d.len, seg + 54, 32));
        inject_u(&p.b, d.data, d.len, EP_A);
        memport_frame_free(&d);
    }
    poll_dp(&p.b, 3);
    struct memport_frame r = take(p.b.vm);
    ck_assert_uint_eq(r.len, in.len);
    ck_assert_uint_eq(r.gso_type, VNET_GSO_TCPV4);
    ck_assert_uint_eq(r.gso_size, MSS);
    ck_assert_mem_eq(r.data + 54, payload, sizeof(payload));
    memport_frame_free(&r);
    expect_quiet(&p.b);
    struct vnet_datapath_stats a1 = stats(&p.a), b1 = stats(&p.b);
    expect_drops(&a0, &a1, NO_DROPS, 0);
    expect_drops(&b0, &b1, NO_DROPS, 0);
    ck_assert_uint_eq(DELTA(a0, a1, gso_frames), 1);
    ck_assert_uint_eq(DELTA(b0, b1, gro_frames), 1);
    pair_down(&p);
}
END_TEST

START_TEST(sealed_from_elsewhere_dropped)
{
    struct pair p;
    pair_up(&p, NULL, 0);
    uint8_t f[100];
    frame(f, &MB, &MA, sizeof(f));
    struct memport_frame d = seal_via(&p.a, f, sizeof(f), EP_B);
    struct vnet_datapath_stats s0 = stats(&p.b), s = s0;
    inject_u(&p.b, d.data, d.len, EP_X); /* A's packet, from a node B has no key for */
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_UNKNOWN_PEER, 1);
    memport_frame_free(&d);

    /* A, under its own key, claiming MC (node 3's MAC): a spoof. */
    frame(f, &MB, &MC, sizeof(f));
    d = seal_via(&p.a, f, sizeof(f), EP_B);
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_SPOOF, 1);
    memport_frame_free(&d);

    /* MD belongs to node 4, which shares A's underlay address (behind the same NAT, say): the
     * address matches, but A's key is not node 4's. */
    frame(f, &MB, &MD, sizeof(f));
    d = seal_via(&p.a, f, sizeof(f), EP_B);
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_SPOOF, 1);
    memport_frame_free(&d);
    pair_down(&p);
}
END_TEST

/* A destination whose node this one holds no key for: nothing leaves, in the clear or not. */
START_TEST(no_key_no_frame)
{
    struct pair p;
    pair_up(&p, NULL, 0);
    const struct vnet_table_op ops[] = {put(&MC, EP_C, 3, VNET_ENTRY_STATIC)};
    ck_assert_int_eq(vnet_table_apply(p.a.table, ops, 1, 2), 0);
    uint8_t f[100];
    frame(f, &MC, &MA, sizeof(f));
    struct vnet_datapath_stats s0 = stats(&p.a), s = s0;
    inject_v(&p.a, f, sizeof(f)); /* C is no peer of A's */
    poll_dropped(&p.a, 1, &s, VNET_DP_DROP_NO_KEY, 1);
    /* C a peer, but without a public key. */
    struct vnet_peer peers[2] = {dp_peer(EP_B, 2, p.kb.pub), dp_peer(EP_C, 3, p.kb.pub)};
    peers[1].has_pubkey = false;
    ck_assert_int_eq(vnet_datapath_set_peer_list(p.a.dp, peers, 2), 0);
    inject_v(&p.a, f, sizeof(f));
    poll_dropped(&p.a, 1, &s, VNET_DP_DROP_NO_KEY, 1);
    /* B, kept across the new peer list, still gets its frames. */
    frame(f, &MB, &MA, sizeof(f));
    struct memport_frame d = seal_via(&p.a, f, sizeof(f), EP_B);
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dp(&p.b, 1);
    expect_virtual(&p.b, f, sizeof(f));
    memport_frame_free(&d);
    pair_down(&p);
}
END_TEST

START_TEST(wrong_peer_key_does_not_open)
{
    struct vnet_keypair other;
    ck_assert_int_eq(vnet_key_generate(&other), 0);
    struct pair p;
    pair_up(&p, other.pub, 0); /* A seals for a key B does not hold */
    uint8_t f[100];
    frame(f, &MB, &MA, sizeof(f));
    struct memport_frame d = seal_via(&p.a, f, sizeof(f), EP_B);
    struct vnet_datapath_stats s0 = stats(&p.b), s = s0;
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_AUTH, 1);
    memport_frame_free(&d);
    pair_down(&p);
}
END_TEST

START_TEST(secure_flood_sealed_per_peer)
{
    struct pair p;
    pair_up(&p, NULL, 0);
    uint8_t f[120];
    frame(f, &BCAST, &MA, sizeof(f));
    struct vnet_datapath_stats a0 = stats(&p.a);
    struct memport_frame d = seal_via(&p.a, f, sizeof(f), EP_B);
    ck_assert_uint_eq(DELTA(a0, stats(&p.a), flooded), 1);
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dp(&p.b, 1);
    expect_virtual(&p.b, f, sizeof(f));
    memport_frame_free(&d);
    /* Over the MTU in secure mode: the same drop and answer as in the clear. */
    static uint8_t big[1600];
    size_t len = ipv4(big, 14 + 1505, true);
    struct vnet_datapath_stats a1 = stats(&p.a);
    inject_v(&p.a, big, len);
    poll_dp(&p.a, 1);
    ck_assert_uint_eq(memport_tx_count(p.a.um, 0), 0);
    ck_assert_uint_eq(memport_tx_count(p.a.vm, 0), 1);
    struct vnet_datapath_stats a2 = stats(&p.a);
    expect_drops(&a1, &a2, VNET_DP_DROP_TOO_BIG, 1);
    ck_assert_uint_eq(DELTA(a1, a2, too_big_sent), 1);
    pair_down(&p);
}
END_TEST

/* ==== the mem backend itself ==== */

/* Issue #12 item 9: node A (id 1, MA, 10.1.0.1, fd00::a) sends B frames, under its own key,
 * that claim node C's addresses (10.1.0.3, fd00::c) or addresses nobody registered. Each is
 * dropped and counted by its reason; A's own addresses pass. */
static void sealed_to_b(struct pair *p, const uint8_t *f, size_t len, bool pass,
                        struct vnet_datapath_stats *since, enum vnet_dp_drop why)
{
    struct memport_frame d = seal_via(&p->a, f, len, EP_B);
    inject_u(&p->b, d.data, d.len, EP_A);
    memport_frame_free(&d);
    if (pass) {
        poll_dp(&p->b, 1);
        expect_virtual(&p->b, f, len);
        expect_quiet(&p->b);
        struct vnet_datapath_stats now = stats(&p->b);
        expect_drops(since, &now, NO_DROPS, 0);
        *since = now;
    } else {
        poll_dropped(&p->b, 1, since, why, 1);
    }
}

static void nd_fix_csum(uint8_t *f, size_t len)
{
    uint8_t *ip = f + 14, *icmp = ip + 40;
    size_t ilen = len - 54;
    icmp[2] = icmp[3] = 0;
    uint32_t sum = vnet_csum_pseudo6(ip + 8, ip + 24, 58, (uint32_t)ilen);
    put16(icmp + 2, vnet_csum_fold(vnet_csum_partial(icmp, ilen, sum)));
}

/* A neighbour advertisement from MA (source @src) for @target with a target link-layer
 * address option @tll. */
static size_t nd_advert(uint8_t *f, const uint8_t src[16], const uint8_t target[16],
                        const struct vnet_mac *tll)
{
    eth(f, &MB, &MA, 0x86dd);
    uint8_t *ip = f + 14;
    memset(ip, 0, 40);
    ip[0] = 0x60;
    put16(ip + 4, 32);
    ip[6] = 58;
    ip[7] = 255;
    memcpy(ip + 8, src, 16);
    memcpy(ip + 24, IP6_B, 16);
    uint8_t *na = ip + 40;
    memset(na, 0, 32);
    na[0] = 136;
    na[4] = 0x60; /* solicited, override */
    memcpy(na + 8, target, 16);
    na[24] = 2;
    na[25] = 1;
    memcpy(na + 26, tll->b, 6);
    nd_fix_csum(f, 86);
    return 86;
}

START_TEST(secure_inner_ip_spoofing_dropped)
{
    struct pair p;
    pair_up(&p, NULL, 0);
    struct vnet_datapath_stats s = stats(&p.b);
    uint8_t f[200];
    static const uint8_t nobody4[4] = {10, 1, 0, 99};
    static const uint8_t any4[4] = {0};

    ipv4(f, 120, false);
    sealed_to_b(&p, f, 120, true, &s, NO_DROPS); /* A's own address */
    memcpy(f + 14 + 12, IP_C, 4);
    sealed_to_b(&p, f, 120, false, &s, VNET_DP_DROP_SPOOF_IP4); /* C's */
    memcpy(f + 14 + 12, nobody4, 4);
    sealed_to_b(&p, f, 120, false, &s, VNET_DP_DROP_SPOOF_IP4); /* nobody's */
    memcpy(f + 14 + 12, any4, 4);
    sealed_to_b(&p, f, 120, true, &s, NO_DROPS); /* 0.0.0.0 claims nothing */
    /* behind a VLAN tag the same rule */
    uint8_t t[204];
    ipv4(f, 120, false);
    memcpy(f + 14 + 12, IP_C, 4);
    memcpy(t, f, 12);
    put16(t + 12, 0x8100);
    put16(t + 14, 7);
    memcpy(t + 16, f + 12, 120 - 12);
    sealed_to_b(&p, t, 124, false, &s, VNET_DP_DROP_SPOOF_IP4);

    ipv6(f, 120);
    sealed_to_b(&p, f, 120, true, &s, NO_DROPS);
    memcpy(f + 14 + 8, IP6_C, 16);
    sealed_to_b(&p, f, 120, false, &s, VNET_DP_DROP_SPOOF_IP6);
    /* link-local addresses are not registered: they pass (docs/security.md) */
    static const uint8_t ll[16] = {0xfe, 0x80, 0,    0,    0,    0, 0, 0,
                                   0x54, 0x15, 0x4c, 0xff, 0xfe, 5, 6, 7};
    memcpy(f + 14 + 8, ll, 16);
    sealed_to_b(&p, f, 120, true, &s, NO_DROPS);
    pair_down(&p);
}
END_TEST

START_TEST(secure_arp_nd_spoofing_dropped)
{
    struct pair p;
    pair_up(&p, NULL, 0);
    struct vnet_datapath_stats s = stats(&p.b);
    uint8_t f[200];
    static const uint8_t any4[4] = {0};
    static const uint8_t nobody6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99};

    /* ARP: a request for an address B's table does not know (so it is not proxied) */
    static const uint8_t unknown4[4] = {10, 1, 0, 50};
    size_t n = arp_request(f, unknown4);
    sealed_to_b(&p, f, n, true, &s, NO_DROPS);
    memcpy(f + 28, IP_C, 4); /* sender IP: C's (a poisoning "who-has" or gratuitous ARP) */
    sealed_to_b(&p, f, n, false, &s, VNET_DP_DROP_SPOOF_ARP);
    n = arp_request(f, unknown4);
    memcpy(f + 22, MC.b, 6); /* sender hardware address: C's MAC in A's frame */
    sealed_to_b(&p, f, n, false, &s, VNET_DP_DROP_SPOOF_ARP);
    n = arp_request(f, unknown4);
    memcpy(f + 28, any4, 4); /* an address probe (RFC 5227) claims nothing */
    sealed_to_b(&p, f, n, true, &s, NO_DROPS);

    /* ND: advertisements of A's own address pass, of C's or nobody's do not */
    n = nd_advert(f, IP6_A, IP6_A, &MA);
    sealed_to_b(&p, f, n, true, &s, NO_DROPS);
    n = nd_advert(f, IP6_A, IP6_C, &MA);
    sealed_to_b(&p, f, n, false, &s, VNET_DP_DROP_SPOOF_ND);
    n = nd_advert(f, IP6_A, nobody6, &MA);
    sealed_to_b(&p, f, n, false, &s, VNET_DP_DROP_SPOOF_ND);
    n = nd_advert(f, IP6_A, IP6_A, &MC); /* A's address, C's MAC in the option */
    sealed_to_b(&p, f, n, false, &s, VNET_DP_DROP_SPOOF_ND);
    /* a solicitation (for an address B does not proxy) with another MAC in its option */
    n = nd_solicit(f, nobody6, false);
    sealed_to_b(&p, f, n, true, &s, NO_DROPS);
    memcpy(f + 14 + 40 + 26, MC.b, 6);
    nd_fix_csum(f, n);
    sealed_to_b(&p, f, n, false, &s, VNET_DP_DROP_SPOOF_ND);
    /* the advertisement hidden behind a hop-by-hop options header is found too */
    n = nd_advert(f, IP6_A, IP6_C, &MA);
    uint8_t h[200];
    memcpy(h, f, 54);
    h[14 + 6] = 0; /* hop-by-hop */
    put16(h + 14 + 4, 40);
    memset(h + 54, 0, 8);
    h[54] = 58;
    h[56] = 1; /* PadN, 4 bytes */
    h[57] = 4;
    memcpy(h + 62, f + 54, 32);
    sealed_to_b(&p, h, 94, false, &s, VNET_DP_DROP_SPOOF_ND);
    pair_down(&p);
}
END_TEST

/* Issue #12 item 3, at the datapath: 10 sealed frames A->B are captured and delivered while B
 * runs (a replay is dropped). B restarts (a new datapath, a new per-boot nonce, which the
 * controller hands to A): all 10 replayed frames are dropped as not authentic, none reaches
 * B's virtual port, and A's new traffic does. */
START_TEST(replay_after_receiver_restart_dropped)
{
    struct pair p;
    pair_up_n(&p, NULL, 0, NONCE_A, NONCE_B1);
    uint8_t f[10][120];
    struct memport_frame d[10];
    for (int i = 0; i < 10; i++) {
        frame(f[i], &MB, &MA, sizeof(f[i]));
        f[i][20] = (uint8_t)i;
        d[i] = seal_via(&p.a, f[i], sizeof(f[i]), EP_B);
        inject_u(&p.b, d[i].data, d[i].len, EP_A);
        poll_dp(&p.b, 1);
        expect_virtual(&p.b, f[i], sizeof(f[i]));
    }
    struct vnet_datapath_stats s = stats(&p.b);
    inject_u(&p.b, d[3].data, d[3].len, EP_A);
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_REPLAY, 1);

    node_down(&p.b); /* B restarts */
    b_up(&p, 0, NONCE_B2, NONCE_A);
    struct vnet_peer to_b = with_nonce(dp_peer(EP_B, 2, p.kb.pub), NONCE_B2);
    ck_assert_int_eq(vnet_datapath_set_peer_list(p.a.dp, &to_b, 1), 0);
    s = stats(&p.b);
    for (int i = 0; i < 10; i++) {
        inject_u(&p.b, d[i].data, d[i].len, EP_A);
        memport_frame_free(&d[i]);
    }
    poll_dropped(&p.b, 10, &s, VNET_DP_DROP_AUTH, 10);
    struct memport_frame n = seal_via(&p.a, f[0], sizeof(f[0]), EP_B);
    inject_u(&p.b, n.data, n.len, EP_A);
    poll_dp(&p.b, 1);
    expect_virtual(&p.b, f[0], sizeof(f[0]));
    memport_frame_free(&n);
    pair_down(&p);
}
END_TEST

/* Issue #12 item 3, the seal state recreated in one process: B's peer list loses A and gets
 * it back (the same key and nonce). Frames B already delivered stay replays. */
static void replay_after_peer_returns(const uint8_t *na, const uint8_t *nb)
{
    struct pair p;
    pair_up_n(&p, NULL, 0, na, nb);
    uint8_t f[120];
    frame(f, &MB, &MA, sizeof(f));
    struct memport_frame d = seal_via(&p.a, f, sizeof(f), EP_B);
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dp(&p.b, 1);
    expect_virtual(&p.b, f, sizeof(f));
    ck_assert_int_eq(vnet_datapath_set_peer_list(p.b.dp, NULL, 0), 0);
    struct vnet_datapath_stats s = stats(&p.b);
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_UNKNOWN_PEER, 1);
    struct vnet_peer to_a = with_nonce(dp_peer(EP_A, 1, p.ka.pub), na);
    ck_assert_int_eq(vnet_datapath_set_peer_list(p.b.dp, &to_a, 1), 0);
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_REPLAY, 1);
    memport_frame_free(&d);
    /* new traffic still flows */
    d = seal_via(&p.a, f, sizeof(f), EP_B);
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dp(&p.b, 1);
    expect_virtual(&p.b, f, sizeof(f));
    memport_frame_free(&d);
    pair_down(&p);
}

START_TEST(replay_after_peer_returns_dropped)
{
    replay_after_peer_returns(NULL, NULL);
    replay_after_peer_returns(NONCE_A, NONCE_B1);
}
END_TEST

/* With nonces, a peer whose nonce is not known yet gets no key: nothing is sealed for it
 * and nothing from it opens. */
START_TEST(peer_without_nonce_gets_no_key)
{
    struct pair p;
    pair_up_n(&p, NULL, 0, NONCE_A, NONCE_B1);
    uint8_t f[120];
    frame(f, &MB, &MA, sizeof(f));
    struct memport_frame d = seal_via(&p.a, f, sizeof(f), EP_B);
    struct vnet_peer to_a = dp_peer(EP_A, 1, p.ka.pub); /* no nonce */
    ck_assert_int_eq(vnet_datapath_set_peer_list(p.b.dp, &to_a, 1), 0);
    struct vnet_datapath_stats s = stats(&p.b);
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_UNKNOWN_PEER, 1);
    uint8_t g[120];
    frame(g, &MA, &MB, sizeof(g));
    inject_v(&p.b, g, sizeof(g));
    poll_dropped(&p.b, 1, &s, VNET_DP_DROP_NO_KEY, 1);
    memport_frame_free(&d);
    pair_down(&p);
}
END_TEST

START_TEST(mem_backend_contract)
{
    ck_assert_int_eq(memport_register(), 0);
    ck_assert_int_eq(memport_register(), 0); /* again: already there */
    struct memport *m, *dup;
    struct memport_opts mo = {.name = "m0", .queues = 2, .mtu = 9000};
    ck_assert_int_eq(memport_create(&mo, &m), 0);
    ck_assert_int_eq(memport_create(&mo, &dup), VNET_EEXIST);
    struct vnet_port *p, *q;
    ck_assert_int_eq(vnet_port_open("mem:nosuch", NULL, &p), VNET_ENOENT);
    struct vnet_port_cfg three = {.queues = 3};
    ck_assert_int_eq(vnet_port_open("mem:m0", &three, &p), VNET_ENOTSUP);
    ck_assert_int_eq(vnet_port_open("mem:m0", NULL, &p), 0);
    ck_assert_int_eq(vnet_port_open("mem:m0", NULL, &q), VNET_EBUSY);
    ck_assert(memport_is_open(m));
    struct vnet_port_info info;
    ck_assert_int_eq(vnet_port_get_info(p, &info), 0);
    ck_assert_str_eq(info.backend, "mem");
    ck_assert_str_eq(info.ifname, "m0");
    ck_assert_uint_eq(info.mtu, 9000);
    ck_assert_uint_eq(info.queues, 2);
    ck_assert_int_eq(vnet_port_fd(p, 2), VNET_EINVAL);

    /* rx: in order, with the sender; a frame too big for the buffer is dropped and counted. */
    uint8_t a[10] = {1}, b[20] = {2}, buf[2][32];
    struct vnet_endpoint from = EP_B;
    ck_assert_int_eq(memport_inject(m, 1, a, sizeof(a), &from), 0);
    ck_assert_int_eq(memport_inject(m, 1, buf, 40, NULL), 0);
    ck_assert_int_eq(memport_inject(m, 1, b, sizeof(b), NULL), 0);
    ck_assert(fd_readable(vnet_port_fd(p, 1)) && !fd_readable(vnet_port_fd(p, 0)));
    struct vnet_pkt pk[2] = {{.buf = buf[0], .cap = 32, .off = 8}, {.buf = buf[1], .cap = 32}};
    struct vnet_pkt *pp[2] = {&pk[0], &pk[1]};
    ck_assert_int_eq(vnet_port_rx_burst(p, 1, pp, 2), 2);
    ck_assert_uint_eq(pk[0].len, 10);
    ck_assert_mem_eq(buf[0] + 8, a, 10);
    expect_ep(&pk[0].peer, EP_B);
    ck_assert_uint_eq(pk[1].len, 20);
    ck_assert_uint_eq(pk[1].queue, 1);
    ck_assert_uint_eq(memport_rx_dropped(m), 1);
    ck_assert(!fd_readable(vnet_port_fd(p, 1)));
    ck_assert_int_eq(vnet_port_rx_burst(p, 1, pp, 2), 0);

    /* tx: copies, with the destination, taken oldest first. */
    pk[0].peer = EP_C;
    ck_assert_int_eq(vnet_port_tx_burst(p, 0, pp, 2), 2);
    buf[0][8] = 0xee; /* the port kept a copy */
    ck_assert_uint_eq(memport_tx_count(m, 0), 2);
    struct memport_frame f;
    ck_assert_int_eq(memport_take(m, 0, &f), 0);
    ck_assert_mem_eq(f.data, a, 10);
    expect_ep(&f.peer, EP_C);
    memport_frame_free(&f);
    ck_assert_int_eq(memport_take(m, 0, &f), 0);
    ck_assert_uint_eq(f.len, 20);
    memport_frame_free(&f);
    ck_assert_int_eq(memport_take(m, 0, &f), VNET_ENOENT);
    vnet_port_close(p);
    ck_assert(!memport_is_open(m));
    ck_assert_uint_eq(memport_open_count(m), 1);
    memport_destroy(m);
}
END_TEST

/* ==== the suite ==== */

/* ==== peer probes (RTT) ==== */

/* Node A (plain) whose peers are B (node 2, a controller's peer) and C (static: no id). */
static void node_a_probing(struct node *n, bool all_peers)
{
    node_a(n, &DEFAULTS);
    struct vnet_peer pl[2];
    memset(pl, 0, sizeof(pl));
    pl[0].ep = EP_B;
    pl[0].id = 2;
    pl[1].ep = EP_C;
    ck_assert_int_eq(vnet_datapath_set_peer_list(n->dp, pl, 2), 0);
    ck_assert_int_eq(vnet_datapath_set_probe(n->dp, 60000, all_peers), 0);
}

/* The datagram @d must be VXLAN for VNI carrying a probe: returned decoded. */
static struct vnet_probe expect_probe_dgram(const struct memport_frame *d)
{
    struct vnet_probe pr;
    ck_assert_uint_eq(d->len, VNET_VXLAN_HLEN + VNET_PROBE_LEN);
    uint8_t hdr[VNET_VXLAN_HLEN];
    vnet_vxlan_encode(hdr, VNI);
    ck_assert_mem_eq(d->data, hdr, VNET_VXLAN_HLEN);
    ck_assert_int_eq(vnet_probe_decode(d->data + VNET_VXLAN_HLEN, VNET_PROBE_LEN, &pr), 0);
    return pr;
}

static struct vnet_dp_peer_info peer_info(struct node *n, size_t i)
{
    struct vnet_dp_peer_info info[4];
    ck_assert_uint_gt(vnet_datapath_peer_info(n->dp, info, 4), i);
    return info[i];
}

START_TEST(probes_go_to_controller_peers_only)
{
    struct node n;
    node_a_probing(&n, false);
    struct vnet_datapath_stats s0 = stats(&n);
    ck_assert_int_ge(vnet_datapath_tick(n.dp), 1);
    ck_assert_uint_eq(memport_tx_count(n.um, 0), 1); /* B only: C may be a Linux vxlan */
    struct memport_frame d = take(n.um);
    expect_ep(&d.peer, EP_B);
    struct vnet_probe pr = expect_probe_dgram(&d);
    ck_assert_uint_eq(pr.type, VNET_PROBE_REQUEST);
    memport_frame_free(&d);
    expect_quiet(&n);
    /* Not due again before the interval. */
    ck_assert_int_gt(vnet_datapath_tick(n.dp), 1000 - 10);
    expect_quiet(&n);
    ck_assert_uint_eq(peer_info(&n, 0).probes_sent, 1);
    ck_assert_uint_eq(peer_info(&n, 1).probes_sent, 0);
    /* Probes are not the peer's data. */
    struct vnet_dp_peer_stats ps[2];
    vnet_datapath_peer_stats(n.dp, ps, 2);
    ck_assert_uint_eq(ps[0].tx_packets, 0);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    /* Opted in (static mode of libvnet nodes only): every peer. */
    ck_assert_int_eq(vnet_datapath_set_probe(n.dp, 60000, true), 0);
    vnet_datapath_tick(n.dp);
    ck_assert_uint_eq(memport_tx_count(n.um, 0), 2);
    memport_clear(n.um);
    /* Off: nothing. */
    ck_assert_int_eq(vnet_datapath_set_probe(n.dp, 0, false), 0);
    vnet_datapath_tick(n.dp);
    expect_quiet(&n);
    node_down(&n);
}
END_TEST

START_TEST(probe_answered_never_delivered)
{
    struct node n;
    node_a_probing(&n, false);
    uint8_t f[VNET_PROBE_LEN];
    struct vnet_probe rq = {.type = VNET_PROBE_REQUEST, .seq = 7, .ts = 0x0102030405060708ull};
    ck_assert_int_eq(vnet_probe_encode(f, sizeof(f), &rq), VNET_PROBE_LEN);
    struct vnet_datapath_stats s0 = stats(&n);
    /* From B, another source port: the answer goes to B's known endpoint (no reflection),
     * has the request's size (no amplification), echoes seq and time stamp. */
    inject_vxlan(&n, f, sizeof(f), ep(2, 5555));
    poll_dp(&n, 1);
    ck_assert_uint_eq(memport_tx_count(n.vm, 0), 0);
    struct memport_frame d = take(n.um);
    expect_ep(&d.peer, EP_B);
    struct vnet_probe rp = expect_probe_dgram(&d);
    ck_assert_uint_eq(rp.type, VNET_PROBE_REPLY);
    ck_assert_uint_eq(rp.seq, 7);
    ck_assert(rp.ts == rq.ts);
    memport_frame_free(&d);
    ck_assert_uint_eq(peer_info(&n, 0).probes_answered, 1);
    struct vnet_datapath_stats s1 = stats(&n);
    expect_drops(&s0, &s1, NO_DROPS, 0);
    /* From a stranger: a counted drop, no answer. */
    inject_vxlan(&n, f, sizeof(f), EP_X);
    poll_dropped(&n, 1, &s1, VNET_DP_DROP_UNKNOWN_PEER, 1);
    /* Malformed (a byte longer, or version 2): a counted drop, no answer. */
    uint8_t g[VNET_PROBE_LEN + 1];
    memcpy(g, f, sizeof(f));
    g[VNET_PROBE_LEN] = 0;
    inject_vxlan(&n, g, sizeof(g), EP_B);
    poll_dropped(&n, 1, &s1, VNET_DP_DROP_DECAP, 1);
    memcpy(g, f, sizeof(f));
    g[18] = 2;
    inject_vxlan(&n, g, sizeof(f), EP_B);
    poll_dropped(&n, 1, &s1, VNET_DP_DROP_DECAP, 1);
    /* From the virtual port: only the datapath speaks probes. */
    inject_v(&n, f, sizeof(f));
    poll_dropped(&n, 1, &s1, VNET_DP_DROP_SPOOF, 1);
    node_down(&n);
}
END_TEST

START_TEST(probe_reply_gives_rtt)
{
    struct node n;
    node_a_probing(&n, false);
    ck_assert_int_eq(peer_info(&n, 0).reply_age_ms, -1);
    vnet_datapath_tick(n.dp);
    struct memport_frame d = take(n.um);
    struct vnet_probe pr = expect_probe_dgram(&d);
    memport_frame_free(&d);
    struct vnet_probe bad = {.type = VNET_PROBE_REPLY, .seq = pr.seq + 1, .ts = pr.ts};
    struct vnet_probe good = {.type = VNET_PROBE_REPLY, .seq = pr.seq, .ts = pr.ts};
    uint8_t f[VNET_PROBE_LEN];
    /* A reply to no pending request: counted, no RTT. */
    vnet_probe_encode(f, sizeof(f), &bad);
    inject_vxlan(&n, f, sizeof(f), EP_B);
    poll_dp(&n, 1);
    expect_quiet(&n);
    ck_assert_uint_eq(peer_info(&n, 0).probes_unexpected, 1);
    ck_assert_uint_eq(peer_info(&n, 0).rtt_ns, 0);
    /* The reply from another peer (C) does not answer B's request. */
    vnet_probe_encode(f, sizeof(f), &good);
    inject_vxlan(&n, f, sizeof(f), EP_C);
    poll_dp(&n, 1);
    ck_assert_uint_eq(peer_info(&n, 0).rtt_ns, 0);
    ck_assert_uint_eq(peer_info(&n, 1).probes_unexpected, 1);
    /* The right one. */
    inject_vxlan(&n, f, sizeof(f), EP_B);
    poll_dp(&n, 1);
    expect_quiet(&n);
    struct vnet_dp_peer_info info = peer_info(&n, 0);
    ck_assert_uint_eq(info.probe_replies, 1);
    ck_assert_uint_gt(info.rtt_ns, 0);
    ck_assert_uint_lt(info.rtt_ns, 1000000000ull);
    ck_assert_int_ge(info.reply_age_ms, 0);
    /* Once: the same reply again is unexpected. */
    inject_vxlan(&n, f, sizeof(f), EP_B);
    poll_dp(&n, 1);
    ck_assert_uint_eq(peer_info(&n, 0).probes_unexpected, 2);
    ck_assert_uint_eq(peer_info(&n, 0).probe_replies, 1);
    node_down(&n);
}
END_TEST

START_TEST(secure_probe_round_trip)
{
    struct pair p;
    pair_up(&p, NULL, 0);
    ck_assert_int_eq(vnet_datapath_set_probe(p.a.dp, 60000, false), 0);
    struct vnet_datapath_stats a0 = stats(&p.a), b0 = stats(&p.b);
    vnet_datapath_tick(p.a.dp);
    struct memport_frame d = take(p.a.um);
    expect_ep(&d.peer, EP_B);
    ck_assert_uint_eq(d.len, VNET_PROBE_LEN + VNET_SEAL_OVERHEAD);
    ck_assert(!contains(d.data, d.len, (const uint8_t *)"VNPR", 4)); /* sealed like data */
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dp(&p.b, 1);
    ck_assert_uint_eq(memport_tx_count(p.b.vm, 0), 0);
    struct memport_frame r = take(p.b.um);
    expect_ep(&r.peer, EP_A);
    ck_assert_uint_eq(r.len, d.len);
    inject_u(&p.a, r.data, r.len, EP_B);
    poll_dp(&p.a, 1);
    expect_quiet(&p.a);
    struct vnet_dp_peer_info info = peer_info(&p.a, 0);
    ck_assert_uint_eq(info.probe_replies, 1);
    ck_assert_uint_gt(info.rtt_ns, 0);
    ck_assert_int_ge(info.tx_epoch_age_ms, 0); /* published by the tick */
    /* A replayed request is not answered twice. */
    inject_u(&p.b, d.data, d.len, EP_A);
    poll_dp(&p.b, 1);
    expect_quiet(&p.b);
    struct vnet_datapath_stats a1 = stats(&p.a), b1 = stats(&p.b);
    expect_drops(&a0, &a1, NO_DROPS, 0);
    expect_drops(&b0, &b1, VNET_DP_DROP_REPLAY, 1);
    memport_frame_free(&d);
    memport_frame_free(&r);
    pair_down(&p);
}
END_TEST

START_TEST(probe_codec)
{
    uint8_t f[VNET_PROBE_LEN + 4];
    struct vnet_probe in = {.type = VNET_PROBE_REQUEST, .seq = 0xdeadbeef, .ts = ~0ull - 5}, out;
    ck_assert_int_eq(vnet_probe_encode(f, VNET_PROBE_LEN - 1, &in), VNET_ENOSPC);
    struct vnet_probe odd = in;
    odd.type = 3;
    ck_assert_int_eq(vnet_probe_encode(f, sizeof(f), &odd), VNET_EINVAL);
    ck_assert_int_eq(vnet_probe_encode(f, sizeof(f), &in), VNET_PROBE_LEN);
    static const uint8_t head[20] = {0, 0, 0,    0,    0,   0,   0,   0,   0, 0,
                                     0, 0, 0x88, 0xb5, 'V', 'N', 'P', 'R', 1, 1};
    ck_assert_mem_eq(f, head, sizeof(head));
    ck_assert_int_eq(vnet_probe_decode(f, VNET_PROBE_LEN, &out), 0);
    ck_assert_uint_eq(out.type, in.type);
    ck_assert_uint_eq(out.seq, in.seq);
    ck_assert(out.ts == in.ts);
    ck_assert_int_eq(vnet_probe_decode(f, VNET_PROBE_LEN + 1, &out), VNET_EPROTO);
    ck_assert_int_eq(vnet_probe_decode(f, VNET_PROBE_LEN - 1, &out), VNET_EPROTO);
    ck_assert_int_eq(vnet_probe_decode(f, 17, &out), VNET_ENOENT);
    f[19] = 0;
    ck_assert_int_eq(vnet_probe_decode(f, VNET_PROBE_LEN, &out), VNET_EPROTO);
    f[19] = 1;
    f[17] = 'Q'; /* another magic: ordinary traffic of the experimental ethertype */
    ck_assert_int_eq(vnet_probe_decode(f, VNET_PROBE_LEN, &out), VNET_ENOENT);
}
END_TEST

Suite *vnet_datapath_suite(void);

Suite *vnet_datapath_suite(void)
{
    Suite *s = suite_create("vnet_datapath");
    TCase *tc = tcase_create("forwarding");
    tcase_add_test(tc, unicast_to_the_tables_endpoint);
    tcase_add_test(tc, ingress_to_the_virtual_port);
    tcase_add_test(tc, self_and_short_frames_dropped);
    tcase_add_test(tc, fds_are_the_ports);
    tcase_add_test(tc, underlay_full_counted);
    tcase_add_test(tc, virtual_port_full_counted);
    tcase_add_test(tc, one_datapath_per_queue);
    suite_add_tcase(s, tc);

    tc = tcase_create("flooding");
    tcase_add_test(tc, broadcast_to_every_peer);
    tcase_add_test(tc, unknown_unicast_and_multicast_flooded);
    tcase_add_test(tc, flood_without_peers_dropped);
    tcase_add_test(tc, received_broadcast_not_flooded_again);
    suite_add_tcase(s, tc);

    tc = tcase_create("learning");
    tcase_add_test(tc, learns_where_learning_is_on);
    tcase_add_test(tc, burst_from_new_mac_learned_once);
    tcase_add_test(tc, no_learning_where_it_is_off);
    tcase_add_test(tc, spoofed_source_dropped_learning_on);
    tcase_add_test(tc, spoofed_source_dropped_learning_off);
    tcase_add_test(tc, nothing_learned_from_strangers);
    tcase_add_test(tc, learn_queue_full_counted);
    suite_add_tcase(s, tc);

    tc = tcase_create("arp_nd_proxy");
    tcase_add_test(tc, arp_answered_from_the_table);
    tcase_add_test(tc, arp_for_unknown_address_flooded);
    tcase_add_test(tc, no_proxy_when_turned_off);
    tcase_add_test(tc, nd_answered_from_the_table);
    suite_add_tcase(s, tc);

    tc = tcase_create("ingress_checks");
    tcase_add_test(tc, foreign_vni_dropped);
    tcase_add_test(tc, unknown_peer_dropped);
    tcase_add_test(tc, malformed_counted_by_reason);
    suite_add_tcase(s, tc);

    tc = tcase_create("mtu");
    tcase_add_test(tc, ipv4_too_big_answered);
    tcase_add_test(tc, ipv6_too_big_answered);
    tcase_add_test(tc, mtu_limit_exact);
    suite_add_tcase(s, tc);

    tc = tcase_create("offload");
    tcase_add_test(tc, tso_segmented);
    tcase_add_test(tc, tso_segmented_into_udp_gso_batch);
    tcase_add_test(tc, gro_merged_for_a_tso_port);
    tcase_add_test(tc, no_gro_without_tso);
    suite_add_tcase(s, tc);

    tc = tcase_create("secure");
    tcase_add_test(tc, sealed_frames_round_trip);
    tcase_add_test(tc, tampered_and_replayed_dropped);
    tcase_add_test(tc, sealed_tso_segments_merged);
    tcase_add_test(tc, sealed_from_elsewhere_dropped);
    tcase_add_test(tc, wrong_peer_key_does_not_open);
    tcase_add_test(tc, no_key_no_frame);
    tcase_add_test(tc, secure_flood_sealed_per_peer);
    suite_add_tcase(s, tc);

    tc = tcase_create("secure_address_binding");
    tcase_add_test(tc, secure_inner_ip_spoofing_dropped);
    tcase_add_test(tc, secure_arp_nd_spoofing_dropped);
    suite_add_tcase(s, tc);

    tc = tcase_create("secure_replay_across_restarts");
    tcase_add_test(tc, replay_after_receiver_restart_dropped);
    tcase_add_test(tc, replay_after_peer_returns_dropped);
    tcase_add_test(tc, peer_without_nonce_gets_no_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("probes");
    tcase_add_test(tc, probe_codec);
    tcase_add_test(tc, probes_go_to_controller_peers_only);
    tcase_add_test(tc, probe_answered_never_delivered);
    tcase_add_test(tc, probe_reply_gives_rtt);
    tcase_add_test(tc, secure_probe_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("mem_backend");
    tcase_add_test(tc, mem_backend_contract);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vnet_datapath_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
