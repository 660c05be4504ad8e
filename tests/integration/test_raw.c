/* Integration tests of the "raw" (AF_PACKET) port backend, in three private network
 * namespaces:
 *
 *   guest G (ns_g): vg1 02:99:00:00:00:02 10.9.0.2/24; it believes 10.9.0.1 is at
 *                   02:99:00:00:00:aa (a static neighbour, not vg0's MAC)
 *   host A  (ns_a): vg0 (peer of vg1, no address: the virtual side "raw:vg0")
 *                   ua 02:88:00:00:00:01 10.8.0.1/24 fd08::1/64 (underlay "raw:ua,local=...")
 *   host B  (ns_b): ub 02:88:00:00:00:02 10.8.0.2/24 fd08::2/64, with a "udp" port
 *
 * Needs root (exit 77, a meson SKIP, otherwise). Everything disappears with the process.
 * Namespaces belong to the calling thread, so the suite runs without forking (CK_NOFORK) and
 * each test enters the namespace it needs; ports and sockets stay in the namespace they were
 * created in.
 */
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/netdev.h"
#include "vnet/offload.h"
#include "vnet/port.h"
#include "vnet/types.h"
#include "nstest.h"

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ns_a = -1, ns_b = -1, ns_g = -1;

#define NPKT     64
#define BUFSZ    (65536 + 1024)
#define HEADROOM 128
static uint8_t *bufs[NPKT];
static struct vnet_pkt pool[NPKT];

static void pkts_reset(struct vnet_pkt **pk)
{
    for (int i = 0; i < NPKT; i++) {
        memset(&pool[i], 0, sizeof(pool[i]));
        pool[i].buf = bufs[i];
        pool[i].cap = BUFSZ;
        pool[i].off = HEADROOM;
        pk[i] = &pool[i];
    }
}

static struct vnet_port *open_port(const char *spec, bool offload, unsigned queues)
{
    struct vnet_port_cfg cfg;
    struct vnet_port *p = NULL;
    memset(&cfg, 0, sizeof(cfg));
    cfg.offload = offload;
    cfg.queues = queues;
    int rc = vnet_port_open(spec, &cfg, &p);
    ck_assert_msg(rc == 0, "open %s: %s", spec, vnet_strerror(rc));
    return p;
}

/* A frame matcher, and a loop that receives from one queue until it matches. */
typedef bool (*frame_pred)(const struct vnet_pkt *p, const void *arg);

static int wait_match(struct vnet_port *port, unsigned q, frame_pred pred, const void *arg, int ms,
                      struct vnet_pkt **pk, int *others)
{
    long long end = now_ms() + ms;
    for (;;) {
        long long left = end - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = vnet_port_fd(port, q), .events = POLLIN};
        poll(&pfd, 1, (int)left);
        pkts_reset(pk);
        int r = vnet_port_rx_burst(port, q, pk, NPKT);
        ck_assert_int_ge(r, 0);
        for (int i = 0; i < r; i++) {
            if (pred(pk[i], arg))
                return i;
            if (others)
                (*others)++;
        }
    }
}

/* UDP checksum of a frame (Ethernet, optional tag, IPv4 or IPv6) verifies */
static bool udp_csum_ok(const uint8_t *f, size_t len, size_t l3)
{
    uint32_t s = 0;
    size_t l4;
    if (rd16(f + l3 - 2) == 0x0800) {
        l4 = l3 + (size_t)(f[l3] & 0xf) * 4;
        s = vnet_csum_pseudo4(f + l3 + 12, f + l3 + 16, 17, rd16(f + l4 + 4));
    } else {
        l4 = l3 + 40;
        s = vnet_csum_pseudo6(f + l3 + 8, f + l3 + 24, 17, rd16(f + l4 + 4));
    }
    (void)len;
    return vnet_csum_fold(vnet_csum_partial(f + l4, rd16(f + l4 + 4), s)) == 0;
}

/* An IPv4/UDP frame (possibly tagged) to @port carrying @arg (a string). */
struct udp_match {
    uint16_t dport;
    const char *payload;
    bool tagged;
};

static bool is_udp_to(const struct vnet_pkt *p, const void *arg)
{
    const struct udp_match *m = arg;
    const uint8_t *f = vnet_pkt_data(p);
    size_t l3 = m->tagged ? 18 : 14, plen = strlen(m->payload);
    if (p->len < l3 + 28 + plen || rd16(f + l3 - 2) != 0x0800 || f[l3 + 9] != 17)
        return false;
    if (m->tagged && rd16(f + 12) != 0x8100)
        return false;
    const uint8_t *u = f + l3 + 20;
    return rd16(u + 2) == m->dport && memcmp(u + 8, m->payload, plen) == 0;
}

static int udp_socket_send(const char *ip, uint16_t port, const char *payload)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &sin.sin_addr);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(sendto(s, payload, strlen(payload), 0, (struct sockaddr *)&sin, sizeof(sin)),
                     (ssize_t)strlen(payload));
    return s; /* left open so the source port stays unique */
}

/* ---- specs ---- */

START_TEST(t_specs)
{
    struct vnet_port *p = NULL;
    struct vnet_port_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    enter(ns_a);
    ck_assert_int_eq(vnet_port_open("raw:", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("raw:nosuch0", NULL, &p), VNET_ENOENT);
    ck_assert_int_eq(vnet_port_open("raw:ua/x", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("raw:averylongifname0", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("raw:ua,foo=1", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("raw:ua,local=", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("raw:ua,local=junk", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("raw:ua,local=10.8.0.1:0", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("raw:ua,local=0.0.0.0:4789", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("raw:ua,local=[::]:4789", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("raw:ua,local=fd08::1", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("raw:ua,local=10.8.0.99", NULL, &p), VNET_EINVAL);
    cfg.queues = 1000;
    ck_assert_int_eq(vnet_port_open("raw:vg0", &cfg, &p), VNET_EINVAL);
    ck_assert_ptr_null(p);

    /* default port, info */
    p = open_port("raw:ua,local=[fd08::1]", false, 0);
    struct vnet_port_info info;
    ck_assert_int_eq(vnet_port_get_info(p, &info), 0);
    ck_assert_str_eq(info.backend, "raw");
    ck_assert_str_eq(info.ifname, "ua");
    ck_assert_int_eq(info.ifindex, vnet_netdev_ifindex("ua"));
    ck_assert_int_eq(info.local.port, 4789);
    ck_assert_int_eq(info.local.ip.family, VNET_AF_INET6);
    ck_assert_uint_eq(info.mtu, 1500);
    ck_assert_uint_eq(info.caps, 0);
    /* the endpoint is claimed */
    struct vnet_port *p2 = NULL;
    ck_assert_int_eq(vnet_port_open("raw:ua,local=[fd08::1]:4789", NULL, &p2), VNET_EBUSY);
    vnet_port_close(p);

    p = open_port("raw:vg0", true, 2);
    ck_assert_int_eq(vnet_port_get_info(p, &info), 0);
    ck_assert_uint_eq(info.queues, 2);
    ck_assert_uint_eq(info.caps, VNET_PORT_CAP_MULTIQUEUE | VNET_PORT_CAP_CSUM | VNET_PORT_CAP_TSO |
                                     VNET_PORT_CAP_USO);
    ck_assert_int_ge(vnet_port_fd(p, 1), 0);
    ck_assert_int_lt(vnet_port_fd(p, 2), 0);
    vnet_port_close(p);
}
END_TEST

/* ---- virtual side ---- */

START_TEST(t_virtual_rx)
{
    struct vnet_pkt *pk[NPKT];
    enter(ns_a);
    struct vnet_port *p = open_port("raw:vg0", false, 0);
    /* to a MAC that is not vg0's: only seen in promiscuous mode */
    enter(ns_g);
    int s = udp_socket_send("10.9.0.1", 5000, "hello-raw");
    enter(ns_a);
    struct udp_match m = {5000, "hello-raw", false};
    int i = wait_match(p, 0, is_udp_to, &m, 3000, pk, NULL);
    ck_assert_int_ge(i, 0);
    const uint8_t *f = vnet_pkt_data(pk[i]);
    ck_assert_int_eq(f[0], 0x02);
    ck_assert_int_eq(f[5], 0xaa);
    /* the kernel left it CHECKSUM_PARTIAL; without offload the port finished it */
    ck_assert(!(pk[i]->csum_flags & VNET_CSUM_PARTIAL));
    ck_assert(udp_csum_ok(f, pk[i]->len, 14));
    close(s);
    vnet_port_close(p);

    /* with offload the partial checksum is handed over as such */
    p = open_port("raw:vg0", true, 0);
    enter(ns_g);
    s = udp_socket_send("10.9.0.1", 5001, "hello-offload");
    enter(ns_a);
    struct udp_match m2 = {5001, "hello-offload", false};
    i = wait_match(p, 0, is_udp_to, &m2, 3000, pk, NULL);
    ck_assert_int_ge(i, 0);
    ck_assert(pk[i]->csum_flags & VNET_CSUM_PARTIAL);
    {
        ck_assert_uint_eq(pk[i]->csum_start, 34);
        ck_assert_uint_eq(pk[i]->csum_offset, 6);
        ck_assert_int_eq(vnet_csum_complete(pk[i]), 0);
    }
    ck_assert(udp_csum_ok(vnet_pkt_data(pk[i]), pk[i]->len, 14));
    close(s);
    vnet_port_close(p);
}
END_TEST

/* A VLAN-tagged frame from the guest (sent raw: no 8021q module needed). The receiving veth
 * moves the tag into the skb's metadata; the port puts it back. */
START_TEST(t_virtual_vlan)
{
    struct vnet_pkt *pk[NPKT];
    uint8_t f[64];
    memset(f, 0, sizeof(f));
    static const uint8_t dst[6] = {0x02, 0x99, 0, 0, 0, 0xaa}, src[6] = {0x02, 0x99, 0, 0, 0, 2};
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    wr16(f + 12, 0x8100);
    wr16(f + 14, 0x2005); /* PCP 1, VID 5 */
    wr16(f + 16, 0x0800);
    uint8_t *ip = f + 18, *udp = ip + 20;
    ip[0] = 0x45;
    wr16(ip + 2, 20 + 8 + 6);
    ip[8] = 64;
    ip[9] = 17;
    static const uint8_t sip[4] = {10, 9, 5, 2}, dip[4] = {10, 9, 5, 1};
    memcpy(ip + 12, sip, 4);
    memcpy(ip + 16, dip, 4);
    wr16(ip + 10, vnet_csum(ip, 20));
    wr16(udp, 1234);
    wr16(udp + 2, 5005);
    wr16(udp + 4, 14);
    memcpy(udp + 8, "tagged", 6);
    wr16(udp + 6, vnet_csum_fold(vnet_csum_partial(udp, 14, vnet_csum_pseudo4(sip, dip, 17, 14))));
    size_t flen = 18 + 20 + 14;

    enter(ns_a);
    struct vnet_port *p = open_port("raw:vg0", false, 0);
    enter(ns_g);
    int s = socket(AF_PACKET, SOCK_RAW, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET, .sll_ifindex = vnet_netdev_ifindex("vg1"), .sll_halen = 6};
    memcpy(sll.sll_addr, dst, 6);
    ck_assert_int_eq(sendto(s, f, flen, 0, (struct sockaddr *)&sll, sizeof(sll)), (ssize_t)flen);
    close(s);
    enter(ns_a);
    struct udp_match m = {5005, "tagged", true};
    int i = wait_match(p, 0, is_udp_to, &m, 3000, pk, NULL);
    ck_assert_int_ge(i, 0);
    ck_assert_uint_eq(pk[i]->len, flen);
    ck_assert_mem_eq(vnet_pkt_data(pk[i]), f, flen);
    ck_assert(udp_csum_ok(vnet_pkt_data(pk[i]), pk[i]->len, 18));
    vnet_port_close(p);
}
END_TEST

static bool is_arp_reply(const struct vnet_pkt *p, const void *arg)
{
    (void)arg;
    const uint8_t *f = vnet_pkt_data(p);
    return p->len >= 42 && rd16(f + 12) == 0x0806 && rd16(f + 20) == 2;
}

static bool is_our_arp_request(const struct vnet_pkt *p, const void *arg)
{
    (void)arg;
    const uint8_t *f = vnet_pkt_data(p);
    return p->len >= 42 && rd16(f + 12) == 0x0806 && rd16(f + 20) == 1 && f[11] == 0xaa;
}

START_TEST(t_virtual_tx)
{
    struct vnet_pkt *pk[NPKT];
    static const uint8_t mine[6] = {0x02, 0x99, 0, 0, 0, 0xaa};
    enter(ns_a);
    struct vnet_port *p = open_port("raw:vg0", false, 0);
    pkts_reset(pk);
    uint8_t *f = vnet_pkt_data(pk[0]);
    memset(f, 0xff, 6);
    memcpy(f + 6, mine, 6);
    wr16(f + 12, 0x0806);
    static const uint8_t arp[] = {0, 1, 8, 0, 6, 4, 0, 1};
    memcpy(f + 14, arp, sizeof(arp));
    memcpy(f + 22, mine, 6);
    static const uint8_t sip[4] = {10, 9, 0, 1}, tip[4] = {10, 9, 0, 2};
    memcpy(f + 28, sip, 4);
    memset(f + 32, 0, 6);
    memcpy(f + 38, tip, 4);
    pk[0]->len = 42;
    ck_assert_int_eq(vnet_port_tx_burst(p, 0, pk, 1), 1);
    /* the guest's kernel answers; our own request is not echoed back */
    int others = 0;
    int i = wait_match(p, 0, is_arp_reply, NULL, 3000, pk, &others);
    ck_assert_int_ge(i, 0);
    const uint8_t *r = vnet_pkt_data(pk[i]);
    ck_assert_mem_eq(r, mine, 6);
    ck_assert_mem_eq(r + 28, tip, 4);
    ck_assert_uint_eq(r[11], 0x02); /* from the guest's MAC */
    ck_assert_int_lt(wait_match(p, 0, is_our_arp_request, NULL, 50, pk, NULL), 0);
    vnet_port_close(p);
}
END_TEST

static bool is_fanout_udp(const struct vnet_pkt *p, const void *arg)
{
    (void)arg;
    const uint8_t *f = vnet_pkt_data(p);
    return p->len >= 42 && rd16(f + 12) == 0x0800 && f[23] == 17 && rd16(f + 36) == 6000;
}

START_TEST(t_fanout)
{
    struct vnet_pkt *pk[NPKT];
    enum { FLOWS = 32 };
    int socks[FLOWS];
    enter(ns_a);
    struct vnet_port *p = open_port("raw:vg0", false, 2);
    enter(ns_g);
    for (int k = 0; k < FLOWS; k++)
        socks[k] = udp_socket_send("10.9.0.1", 6000, "flow");
    enter(ns_a);
    int per[2] = {0, 0};
    long long end = now_ms() + 3000;
    while (per[0] + per[1] < FLOWS && now_ms() < end) {
        struct pollfd pfd[2] = {{.fd = vnet_port_fd(p, 0), .events = POLLIN},
                                {.fd = vnet_port_fd(p, 1), .events = POLLIN}};
        poll(pfd, 2, 100);
        for (unsigned q = 0; q < 2; q++) {
            pkts_reset(pk);
            int r = vnet_port_rx_burst(p, q, pk, NPKT);
            ck_assert_int_ge(r, 0);
            for (int i = 0; i < r; i++) {
                ck_assert_uint_eq(pk[i]->queue, q);
                per[q] += is_fanout_udp(pk[i], NULL);
            }
        }
    }
    ck_assert_int_eq(per[0] + per[1], FLOWS);
    ck_assert_int_gt(per[0], 0);
    ck_assert_int_gt(per[1], 0);
    for (int k = 0; k < FLOWS; k++)
        close(socks[k]);
    vnet_port_close(p);
}
END_TEST

/* ---- underlay side ---- */

static void fill(struct vnet_pkt *p, uint32_t len, uint8_t seed, const char *peer)
{
    uint8_t *d = vnet_pkt_data(p);
    for (uint32_t k = 0; k < len; k++)
        d[k] = (uint8_t)(seed + k * 7);
    p->len = len;
    p->peer = ep_of(peer);
}

static bool check_fill(const struct vnet_pkt *p, uint32_t len, uint8_t seed, uint32_t skip)
{
    const uint8_t *d = vnet_pkt_data(p);
    if (p->len != len)
        return false;
    for (uint32_t k = 0; k < len; k++)
        if (d[k] != (uint8_t)(seed + (k + skip) * 7))
            return false;
    return true;
}

static int rx_n(struct vnet_port *p, struct vnet_pkt **pk, int want, int ms)
{
    int got = 0;
    long long end = now_ms() + ms;
    pkts_reset(pk);
    while (got < want && now_ms() < end) {
        struct pollfd pfd = {.fd = vnet_port_fd(p, 0), .events = POLLIN};
        poll(&pfd, 1, (int)(end - now_ms()));
        int r = vnet_port_rx_burst(p, 0, pk + got, NPKT - got);
        ck_assert_int_ge(r, 0);
        got += r;
    }
    return got;
}

static long snmp(const char *proto, const char *field)
{
    char line1[2048], line2[2048];
    FILE *f = fopen("/proc/thread-self/net/snmp", "r");
    ck_assert_ptr_nonnull(f);
    long v = -1;
    while (v < 0 && fgets(line1, sizeof(line1), f) && fgets(line2, sizeof(line2), f)) {
        size_t pl = strlen(proto);
        if (strncmp(line1, proto, pl) != 0 || line1[pl] != ':')
            continue;
        char *s1, *s2;
        char *a = strtok_r(line1, " \n", &s1), *b = strtok_r(line2, " \n", &s2);
        while ((a = strtok_r(NULL, " \n", &s1)) && (b = strtok_r(NULL, " \n", &s2)))
            if (strcmp(a, field) == 0)
                v = atol(b);
    }
    fclose(f);
    return v;
}

/* raw in A <-> udp in B, both directions; A's next hop is resolved on first send. */
static void underlay_pair(const char *a_spec, const char *a_ep, const char *b_spec,
                          const char *b_ep, const char *b_ip)
{
    struct vnet_pkt *pk[NPKT];
    enter(ns_b);
    ck_assert_int_eq(sh("ip neigh flush dev ub"), 0);
    struct vnet_port *b = open_port(b_spec, false, 0);
    enter(ns_a);
    ck_assert_int_eq(sh("ip neigh flush dev ua"), 0);
    struct vnet_port *a = open_port(a_spec, false, 0);
    long unreach0 = snmp("Icmp", "OutDestUnreachs");
    ck_assert_int_ge(unreach0, 0);

    /* A -> B. Nothing is known about B yet: the first send is dropped and starts resolution */
    struct vnet_ip bip;
    struct vnet_mac mac;
    ck_assert_int_eq(vnet_ip_parse(b_ip, &bip), 0);
    ck_assert_int_eq(vnet_netdev_neigh_get(vnet_netdev_ifindex("ua"), &bip, &mac), VNET_ENOENT);
    int seq = 0, got = 0;
    long long end = now_ms() + 3000;
    while (!got && now_ms() < end) {
        enter(ns_a);
        pkts_reset(pk);
        fill(pk[0], 200, (uint8_t)seq, b_ep);
        ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 1), 1);
        seq++;
        enter(ns_b);
        got = rx_n(b, pk, 1, 20);
    }
    enter(ns_a);
    ck_assert_int_eq(got, 1);
    ck_assert_int_gt(seq, 1); /* the first one waited for the neighbour */
    ck_assert(check_fill(pk[0], 200, (uint8_t)(seq - 1), 0));
    struct vnet_endpoint aep = ep_of(a_ep), bep = ep_of(b_ep);
    ck_assert(vnet_endpoint_eq(&pk[0]->peer, &aep));
    ck_assert_int_eq(vnet_netdev_neigh_get(vnet_netdev_ifindex("ua"), &bip, &mac), 0);
    ck_assert_uint_eq(mac.b[5], 0x02);

    /* A -> B, a UDP GSO batch: one datagram per segment */
    pkts_reset(pk);
    fill(pk[0], 1300, 9, b_ep);
    pk[0]->gso_size = 500;
    fill(pk[1], 77, 10, b_ep);
    ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 2), 2);
    enter(ns_b);
    ck_assert_int_eq(rx_n(b, pk, 4, 2000), 4);
    ck_assert(check_fill(pk[0], 500, 9, 0));
    ck_assert(check_fill(pk[1], 500, 9, 500));
    ck_assert(check_fill(pk[2], 300, 9, 1000));
    ck_assert(check_fill(pk[3], 77, 10, 0));

    /* B -> A */
    pkts_reset(pk);
    fill(pk[0], 333, 42, a_ep);
    ck_assert_int_eq(vnet_port_tx_burst(b, 0, pk, 1), 1);
    enter(ns_a);
    ck_assert_int_eq(rx_n(a, pk, 1, 2000), 1);
    ck_assert(check_fill(pk[0], 333, 42, 0));
    ck_assert(vnet_endpoint_eq(&pk[0]->peer, &bep));

    /* B -> A as one GSO skb (veth passes it whole): split into datagrams */
    vnet_port_close(b);
    enter(ns_b);
    b = open_port(b_spec, true, 0);
    pkts_reset(pk);
    fill(pk[0], 1000, 3, a_ep);
    pk[0]->gso_size = 400;
    ck_assert_int_eq(vnet_port_tx_burst(b, 0, pk, 1), 1);
    enter(ns_a);
    ck_assert_int_eq(rx_n(a, pk, 3, 2000), 3);
    ck_assert(check_fill(pk[0], 400, 3, 0));
    ck_assert(check_fill(pk[1], 400, 3, 400));
    ck_assert(check_fill(pk[2], 200, 3, 800));

    /* ... or handed up as a batch with offload */
    vnet_port_close(a);
    a = open_port(a_spec, true, 0);
    enter(ns_b);
    pkts_reset(pk);
    fill(pk[0], 1000, 4, a_ep);
    pk[0]->gso_size = 400;
    ck_assert_int_eq(vnet_port_tx_burst(b, 0, pk, 1), 1);
    enter(ns_a);
    got = rx_n(a, pk, 1, 2000);
    ck_assert_int_ge(got, 1);
    ck_assert_uint_ne(pk[0]->gso_size, 0);
    { /* the skb came whole */
        ck_assert_int_eq(got, 1);
        ck_assert_uint_eq(pk[0]->gso_size, 400);
        ck_assert(check_fill(pk[0], 1000, 4, 0));
    }

    /* A -> B with offload: a GSO batch leaves as one GSO frame, and datagrams of one size to
     * one place are coalesced into one; B (UDP_GRO) gets each whole, in order */
    enter(ns_a);
    pkts_reset(pk);
    fill(pk[0], 1300, 11, b_ep);
    pk[0]->gso_size = 500;
    for (int i = 1; i <= 21; i++)
        fill(pk[i], i == 21 ? 90 : 150, (uint8_t)(20 + i), b_ep);
    ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 22), 22);
    enter(ns_b);
    int frames = 0, dgrams = 0;
    end = now_ms() + 2000;
    while (dgrams < 3 + 21 && now_ms() < end) {
        got = rx_n(b, pk, 1, (int)(end - now_ms()));
        for (int i = 0; i < got; i++, frames++) {
            uint32_t step = pk[i]->gso_size ? pk[i]->gso_size : pk[i]->len;
            for (uint32_t o = 0; o < pk[i]->len; o += step, dgrams++) {
                struct vnet_pkt one = *pk[i];
                one.off += o;
                one.len = pk[i]->len - o < step ? pk[i]->len - o : step;
                if (dgrams < 3)
                    ck_assert(
                        check_fill(&one, dgrams == 2 ? 300 : 500, 11, (uint32_t)dgrams * 500));
                else
                    ck_assert(check_fill(&one, dgrams == 23 ? 90 : 150, (uint8_t)(18 + dgrams), 0));
            }
        }
    }
    ck_assert_int_eq(dgrams, 24);
    ck_assert_int_eq(frames, 2); /* the batch, and the 21 coalesced datagrams */
    enter(ns_a);

    /* the host's stack saw all of it and stayed quiet */
    ck_assert_int_eq(snmp("Icmp", "OutDestUnreachs"), unreach0);
    vnet_port_close(a);
    vnet_port_close(b);
}

START_TEST(t_underlay4)
{
    underlay_pair("raw:ua,local=10.8.0.1:4789", "10.8.0.1:4789", "udp:10.8.0.2:4789",
                  "10.8.0.2:4789", "10.8.0.2");
}
END_TEST

START_TEST(t_underlay6)
{
    underlay_pair("raw:ua,local=[fd08::1]:4789", "[fd08::1]:4789", "udp:[fd08::2]:4789",
                  "[fd08::2]:4789", "fd08::2");
}
END_TEST

/* Only UDP to the local endpoint passes the filter. */
START_TEST(t_filter)
{
    struct vnet_pkt *pk[NPKT];
    enter(ns_a);
    struct vnet_port *a = open_port("raw:ua,local=10.8.0.1:4789", false, 0);
    enter(ns_b);
    ck_assert_int_eq(sh("ping -c 1 -W 2 -q 10.8.0.1 >/dev/null"), 0);
    ck_assert_int_eq(sh("ping -6 -c 1 -W 2 -q fd08::1 >/dev/null"), 0);
    int s1 = udp_socket_send("10.8.0.1", 4790, "other port");
    int s2 = udp_socket_send("10.8.0.1", 4789, "marker");
    enter(ns_a);
    ck_assert_int_eq(rx_n(a, pk, NPKT, 200), 1);
    ck_assert_uint_eq(pk[0]->len, 6);
    ck_assert_mem_eq(vnet_pkt_data(pk[0]), "marker", 6);
    close(s1);
    close(s2);
    vnet_port_close(a);
}
END_TEST

/* ---- setup ---- */

static int setup_namespaces(void)
{
    int *fds[3] = {&ns_a, &ns_b, &ns_g};
    for (int i = 0; i < 3; i++) {
        if (unshare(CLONE_NEWNET) != 0) {
            perror("unshare");
            return -1;
        }
        *fds[i] = open("/proc/self/ns/net", O_RDONLY); /* no O_CLOEXEC: ip(8) opens it */
        if (*fds[i] < 0 || sh("ip link set lo up") != 0)
            return -1;
    }
    int pid = (int)getpid();
    /* now in G */
    if (sh("ip link add vg1 address 02:99:00:00:00:02 type veth peer name vg0 "
           "address 02:99:00:00:00:01 netns /proc/%d/fd/%d && "
           "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
           "ip addr add 10.9.0.2/24 dev vg1 && ip link set vg1 up && "
           "ip neigh add 10.9.0.1 lladdr 02:99:00:00:00:aa dev vg1 nud permanent",
           pid, ns_a) != 0)
        return -1;
    if (setns(ns_b, CLONE_NEWNET) != 0 ||
        sh("ip link add ub address 02:88:00:00:00:02 type veth peer name ua "
           "address 02:88:00:00:00:01 netns /proc/%d/fd/%d && "
           "ip addr add 10.8.0.2/24 dev ub && ip addr add fd08::2/64 dev ub nodad && "
           "ip link set ub up",
           pid, ns_a) != 0)
        return -1;
    if (setns(ns_a, CLONE_NEWNET) != 0 ||
        sh("ip link set vg0 up && ip addr add 10.8.0.1/24 dev ua && "
           "ip addr add fd08::1/64 dev ua nodad && ip link set ua up") != 0)
        return -1;
    return links_up("ua", "vg0", (const char *)NULL);
}

int main(void)
{
    if (geteuid() != 0) {
        puts("SKIP: needs root (network namespaces, AF_PACKET)");
        return 77;
    }
    if (setup_namespaces() != 0) {
        fprintf(stderr, "namespace setup failed\n");
        return 1;
    }
    for (int i = 0; i < NPKT; i++)
        if (!(bufs[i] = malloc(BUFSZ)))
            return 1;

    Suite *s = suite_create("raw");
    TCase *tc = tcase_create("raw");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, t_specs);
    tcase_add_test(tc, t_virtual_rx);
    tcase_add_test(tc, t_virtual_vlan);
    tcase_add_test(tc, t_virtual_tx);
    tcase_add_test(tc, t_fanout);
    tcase_add_test(tc, t_underlay4);
    tcase_add_test(tc, t_underlay6);
    tcase_add_test(tc, t_filter);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int i = 0; i < NPKT; i++)
        free(bufs[i]);
    return failed ? 1 : 0;
}
