/* Integration tests of the tap and udp port backends and the netdev helpers, in two private
 * network namespaces joined by a veth pair:
 *
 *   host A (ns_a): va 02:77:00:00:00:01 10.77.0.1/24 fd77::1/64
 *   host B (ns_b): vb 02:77:00:00:00:02 10.77.0.2/24 fd77::2/64, and the TAP devices
 *
 * Needs root (exit 77, a meson SKIP, otherwise). Everything it creates disappears with the
 * process. Namespaces belong to the calling thread, so the suite runs without forking
 * (CK_NOFORK) in the thread that did the setup, and each test enters the namespace it needs.
 */
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/netdev.h"
#include "vnet/port.h"
#include "vnet/types.h"
#include "nstest.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ns_a = -1, ns_b = -1;

/* ---- helpers ---- */

/* Log capture: errors and warnings go to stderr unless `quiet`; everything is kept in `logbuf`
 * so a test can check that a drop was reported. */
static char logbuf[16384];
static size_t loglen;
static int quiet;

static void log_capture(enum vnet_log_level level, const char *module, const char *msg, void *arg)
{
    (void)arg;
    int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s [%s]: %s\n",
                     vnet_log_level_name(level), module, msg);
    if (n > 0 && loglen + (size_t)n < sizeof(logbuf))
        loglen += (size_t)n;
    if (!quiet && level <= VNET_LOG_WARN)
        fprintf(stderr, "vnet %s [%s]: %s\n", vnet_log_level_name(level), module, msg);
}

static void log_reset(void)
{
    loglen = 0;
    logbuf[0] = '\0';
}

/* Packet buffers: big enough for a 64 KiB GSO/GRO batch. */
#define NPKT     128
#define BUFSZ    (65536 + 1024)
#define HEADROOM 64
static uint8_t *bufs[2][NPKT];
static struct vnet_pkt pool[2][NPKT];

/* Two pools, so that what was sent can be compared with what arrived. */
static void pool_reset(struct vnet_pkt **pk, int which)
{
    for (int i = 0; i < NPKT; i++) {
        struct vnet_pkt *p = &pool[which][i];
        memset(p, 0, sizeof(*p));
        p->buf = bufs[which][i];
        p->cap = BUFSZ;
        p->off = HEADROOM;
        pk[i] = p;
    }
}

static void pkts_reset(struct vnet_pkt **pk) /* receive buffers */
{
    pool_reset(pk, 0);
}

static void tx_reset(struct vnet_pkt **pk) /* send buffers */
{
    pool_reset(pk, 1);
}

static int wait_readable(struct vnet_port *p, unsigned q, int ms)
{
    struct pollfd pfd = {.fd = vnet_port_fd(p, q), .events = POLLIN};
    return poll(&pfd, 1, ms);
}

/* Receive until @want packets or @ms elapsed; returns the number received into pk[0..). */
static int rx_collect(struct vnet_port *p, unsigned q, struct vnet_pkt **pk, int max, int want,
                      int ms)
{
    int got = 0;
    long long end = now_ms() + ms;
    while (got < want) {
        long long left = end - now_ms();
        if (left <= 0)
            break;
        wait_readable(p, q, (int)left);
        int r = vnet_port_rx_burst(p, q, pk + got, max - got);
        ck_assert_int_ge(r, 0);
        got += r;
    }
    return got;
}

typedef bool (*frame_pred)(const struct vnet_pkt *p, void *arg);

/* Receive frames from a tap until one matches; its contents are copied to *out (buffer
 * included, into @outbuf). */
static bool tap_wait(struct vnet_port *p, frame_pred pred, void *arg, int ms, struct vnet_pkt *out,
                     uint8_t *outbuf)
{
    struct vnet_pkt *pk[NPKT];
    long long end = now_ms() + ms;
    for (;;) {
        long long left = end - now_ms();
        if (left <= 0)
            return false;
        wait_readable(p, 0, (int)left);
        pkts_reset(pk);
        int r = vnet_port_rx_burst(p, 0, pk, 16);
        ck_assert_int_ge(r, 0);
        for (int i = 0; i < r; i++) {
            if (pred(pk[i], arg)) {
                *out = *pk[i];
                memcpy(outbuf, pk[i]->buf, pk[i]->cap);
                out->buf = outbuf;
                return true;
            }
        }
    }
}

static struct vnet_mac mac_of(const char *s)
{
    struct vnet_mac m;
    ck_assert_int_eq(vnet_mac_parse(s, &m), 0);
    return m;
}

static struct vnet_ip ip_of(const char *s)
{
    struct vnet_ip ip;
    ck_assert_int_eq(vnet_ip_parse(s, &ip), 0);
    return ip;
}

static uint32_t sum16(const uint8_t *d, size_t n, uint32_t s)
{
    for (; n > 1; n -= 2, d += 2)
        s += rd16(d);
    if (n)
        s += (uint32_t)d[0] << 8;
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* Ethernet header */
static uint8_t *put_eth(uint8_t *f, const struct vnet_mac *dst, const struct vnet_mac *src,
                        uint16_t type)
{
    memcpy(f, dst->b, 6);
    memcpy(f + 6, src->b, 6);
    wr16(f + 12, type);
    return f + 14;
}

/* IPv4 header without options, checksum filled in */
static uint8_t *put_ip4(uint8_t *h, const struct vnet_ip *src, const struct vnet_ip *dst,
                        uint8_t proto, uint16_t payload)
{
    memset(h, 0, 20);
    h[0] = 0x45;
    wr16(h + 2, (uint16_t)(20 + payload));
    wr16(h + 6, 0x4000); /* DF */
    h[8] = 64;
    h[9] = proto;
    memcpy(h + 12, src->addr, 4);
    memcpy(h + 16, dst->addr, 4);
    wr16(h + 10, (uint16_t)~fold(sum16(h, 20, 0)));
    return h + 20;
}

static uint32_t pseudo4(const uint8_t *ip, uint8_t proto, uint32_t l4len)
{
    return sum16(ip + 12, 8, 0) + proto + l4len;
}

/* ---- netdev ---- */

START_TEST(t_netdev)
{
    enter(ns_b);
    ck_assert_int_eq(sh("ip link add n0 type veth peer name n1"), 0);
    int idx = vnet_netdev_ifindex("n0");
    ck_assert_int_gt(idx, 0);
    ck_assert_int_eq(vnet_netdev_ifindex("lo"), 1);
    ck_assert_int_eq(vnet_netdev_ifindex("nosuchdev"), VNET_ENOENT);
    ck_assert_int_eq(vnet_netdev_ifindex(""), VNET_EINVAL);
    ck_assert_int_eq(vnet_netdev_ifindex(NULL), VNET_EINVAL);
    ck_assert_int_eq(vnet_netdev_ifindex("abcdefghijklmnop"), VNET_EINVAL);

    struct vnet_mac m = mac_of("02:11:22:33:44:55"), got;
    ck_assert_int_eq(vnet_netdev_set_mac("n0", &m), 0);
    ck_assert_int_eq(vnet_netdev_get_mac("n0", &got), 0);
    ck_assert(vnet_mac_eq(&m, &got));
    struct vnet_mac mc = mac_of("01:00:5e:00:00:01"), zero = {{0}};
    ck_assert_int_eq(vnet_netdev_set_mac("n0", &mc), VNET_EINVAL);
    ck_assert_int_eq(vnet_netdev_set_mac("n0", &zero), VNET_EINVAL);
    ck_assert_int_eq(vnet_netdev_set_mac("nosuchdev", &m), VNET_ENOENT);
    ck_assert_int_eq(vnet_netdev_get_mac("nosuchdev", &got), VNET_ENOENT);

    uint32_t mtu = 0;
    ck_assert_int_eq(vnet_netdev_set_mtu("n0", 1400), 0);
    ck_assert_int_eq(vnet_netdev_get_mtu("n0", &mtu), 0);
    ck_assert_uint_eq(mtu, 1400);
    ck_assert_int_eq(vnet_netdev_set_mtu("n0", 0), VNET_EINVAL);
    ck_assert_int_eq(vnet_netdev_set_mtu("n0", 20), VNET_EINVAL); /* below veth's minimum */
    ck_assert_int_eq(vnet_netdev_get_mtu("n0", &mtu), 0);
    ck_assert_uint_eq(mtu, 1400);

    struct ifreq ifr;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "n0");
    ck_assert_int_eq(vnet_netdev_set_up("n0", true), 0);
    ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ck_assert(ifr.ifr_flags & IFF_UP);

    struct vnet_prefix p4, p6, bad;
    ck_assert_int_eq(vnet_prefix_parse("10.99.0.1/24", &p4), 0);
    ck_assert_int_eq(vnet_prefix_parse("fd99::1/64", &p6), 0);
    ck_assert_int_eq(vnet_netdev_add_addr("n0", &p4), 0);
    ck_assert_int_eq(vnet_netdev_add_addr("n0", &p4), 0); /* already there: success */
    ck_assert_int_eq(vnet_netdev_add_addr("n0", &p6), 0);
    ck_assert_int_eq(vnet_netdev_add_addr("n0", &p6), 0);
    bad = p4;
    bad.len = 33;
    ck_assert_int_eq(vnet_netdev_add_addr("n0", &bad), VNET_EINVAL);
    ck_assert_int_eq(vnet_netdev_add_addr("nosuchdev", &p4), VNET_ENOENT);
    ck_assert_int_eq(sh("ip -4 -o addr show dev n0 | grep -q 'inet 10.99.0.1/24'"), 0);
    ck_assert_int_eq(sh("ip -6 -o addr show dev n0 | grep -q 'inet6 fd99::1/64'"), 0);
    /* NODAD: usable at once, never tentative */
    ck_assert_int_eq(sh("ip -6 -o addr show dev n0 | grep fd99:: | grep -q tentative"), 1);

    ck_assert_int_eq(sh("ip neigh add 10.99.0.7 lladdr 02:00:00:00:00:07 dev n0 nud permanent && "
                        "ip -6 neigh add fd99::7 lladdr 02:00:00:00:00:77 dev n0 nud reachable && "
                        "ip neigh add 10.99.0.9 dev n0 nud incomplete"),
                     0);
    struct vnet_ip a4 = ip_of("10.99.0.7"), a6 = ip_of("fd99::7"), none = ip_of("10.99.0.8");
    struct vnet_ip inc = ip_of("10.99.0.9");
    ck_assert_int_eq(vnet_netdev_neigh_get(idx, &a4, &got), 0);
    ck_assert(vnet_mac_eq(&got, &(struct vnet_mac){{2, 0, 0, 0, 0, 7}}));
    ck_assert_int_eq(vnet_netdev_neigh_get(idx, &a6, &got), 0);
    ck_assert(vnet_mac_eq(&got, &(struct vnet_mac){{2, 0, 0, 0, 0, 0x77}}));
    ck_assert_int_eq(vnet_netdev_neigh_get(idx, &none, &got), VNET_ENOENT);
    ck_assert_int_eq(vnet_netdev_neigh_get(idx, &inc, &got), VNET_ENOENT);
    ck_assert_int_eq(vnet_netdev_neigh_get(999999, &a4, &got), VNET_ENOENT);
    ck_assert_int_eq(vnet_netdev_neigh_get(0, &a4, &got), VNET_EINVAL);

    ck_assert_int_eq(vnet_netdev_set_up("n0", false), 0);
    ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ck_assert(!(ifr.ifr_flags & IFF_UP));
    close(s);
    ck_assert_int_eq(sh("ip link del n0"), 0);
}
END_TEST

/* ---- spec parsing and open errors ---- */

START_TEST(t_specs)
{
    struct vnet_port *p = NULL;
    struct vnet_port_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    enter(ns_b);
    quiet = 1;
    static const struct {
        const char *spec;
        int rc;
    } bad[] = {
        {"udp:", VNET_EINVAL},
        {"udp:1.2.3.4:99999", VNET_EINVAL},
        {"udp:1.2.3.4:0", VNET_EINVAL},
        {"udp:1.2.3.4:", VNET_EINVAL},
        {"udp:1.2.3", VNET_EINVAL},
        {"udp:fd77::2", VNET_EINVAL}, /* IPv6 needs brackets */
        {"udp:[10.77.0.2]", VNET_EINVAL},
        {"udp:[fd77::2", VNET_EINVAL},
        {"udp:10.77.0.2:4789x", VNET_EINVAL},
        {"udp:10.123.0.1:4789", VNET_ENOENT}, /* not an address of this host */
        {"tap:", VNET_EINVAL},
        {"tap:abcdefghijklmnop", VNET_EINVAL}, /* 16 characters */
        {"tap:a/b", VNET_EINVAL},
        {"tap:a b", VNET_EINVAL},
        {"tap:lo", VNET_EINVAL}, /* exists and is not a TAP */
        {"nope:x", VNET_ENOENT},
        {"noprefix", VNET_EINVAL},
        {":x", VNET_EINVAL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = NULL;
        int rc = vnet_port_open(bad[i].spec, &cfg, &p);
        ck_assert_msg(rc == bad[i].rc, "%s: got %s, want %s", bad[i].spec, vnet_err_name(rc),
                      vnet_err_name(bad[i].rc));
        ck_assert_ptr_null(p);
    }
    ck_assert_int_eq(vnet_port_open(NULL, &cfg, &p), VNET_EINVAL);
    cfg.queues = 1000;
    ck_assert_int_eq(vnet_port_open("tap:vq", &cfg, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("udp:10.77.0.2:4000", &cfg, &p), VNET_EINVAL);
    quiet = 0;

    /* "udp:IP" means the VXLAN port; the NULL cfg is accepted */
    struct vnet_port_info info;
    ck_assert_int_eq(vnet_port_open("udp:10.77.0.2", NULL, &p), 0);
    ck_assert_int_eq(vnet_port_get_info(p, &info), 0);
    ck_assert_str_eq(info.backend, "udp");
    struct vnet_endpoint want = ep_of("10.77.0.2:4789");
    ck_assert(vnet_endpoint_eq(&info.local, &want));
    ck_assert_uint_eq(info.caps, 0);
    ck_assert_uint_eq(info.queues, 1);
    ck_assert_int_ge(vnet_port_fd(p, 0), 0);
    ck_assert_int_eq(vnet_port_fd(p, 1), VNET_EINVAL);
    vnet_port_close(p);
    ck_assert_int_eq(vnet_port_open("udp:[fd77::2]", NULL, &p), 0);
    ck_assert_int_eq(vnet_port_get_info(p, &info), 0);
    want = ep_of("[fd77::2]:4789");
    ck_assert(vnet_endpoint_eq(&info.local, &want));
    vnet_port_close(p);
    vnet_port_close(NULL);
}
END_TEST

/* ---- tap ---- */

static const char *TAP_MAC = "02:88:00:00:00:01";  /* the device */
static const char *PEER_MAC = "02:88:00:00:00:02"; /* the fake host behind it */

struct arp_want {
    struct vnet_mac tap, peer;
};

static bool is_arp_reply(const struct vnet_pkt *p, void *arg)
{
    const struct arp_want *w = arg;
    const uint8_t *f = vnet_pkt_data(p);
    if (p->len < 42 || rd16(f + 12) != 0x0806)
        return false;
    const uint8_t *a = f + 14;
    return rd16(a + 6) == 2 && memcmp(a + 8, w->tap.b, 6) == 0 &&
           memcmp(a + 14, (uint8_t[]){10, 88, 0, 1}, 4) == 0 && memcmp(a + 18, w->peer.b, 6) == 0;
}

static bool is_ethertype_88b5(const struct vnet_pkt *p, void *arg)
{
    (void)arg;
    return p->len >= 14 && rd16(vnet_pkt_data(p) + 12) == 0x88b5;
}

struct tcp_want {
    uint16_t dport;
    uint8_t flags; /* all of these set */
    uint32_t minlen;
};

static bool is_tcp(const struct vnet_pkt *p, void *arg)
{
    const struct tcp_want *w = arg;
    const uint8_t *f = vnet_pkt_data(p);
    if (p->len < 54 || rd16(f + 12) != 0x0800 || f[14 + 9] != 6)
        return false;
    const uint8_t *t = f + 14 + (f[14] & 15) * 4;
    return rd16(t + 2) == w->dport && (t[13] & w->flags) == w->flags && p->len >= w->minlen;
}

static void packet_inject(int ifindex, const uint8_t *frame, size_t len)
{
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = ifindex};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0);
    ck_assert_int_eq(send(s, frame, len, 0), (ssize_t)len);
    close(s);
}

/* Build a TCP/IPv4 segment from the fake peer 10.88.0.2 to the tap's 10.88.0.1 into @p. */
static void build_tcp(struct vnet_pkt *p, const struct vnet_mac *dst, const struct vnet_mac *src,
                      uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
                      const uint8_t *opt, size_t optlen, size_t paylen, bool partial)
{
    struct vnet_ip sip = ip_of("10.88.0.2"), dip = ip_of("10.88.0.1");
    uint8_t *f = vnet_pkt_data(p);
    size_t thl = 20 + optlen, l4 = thl + paylen;
    uint8_t *ip = put_eth(f, dst, src, 0x0800);
    uint8_t *t = put_ip4(ip, &sip, &dip, 6, (uint16_t)l4);
    memset(t, 0, thl);
    wr16(t, sport);
    wr16(t + 2, dport);
    wr32(t + 4, seq);
    wr32(t + 8, ack);
    t[12] = (uint8_t)((thl / 4) << 4);
    t[13] = flags;
    wr16(t + 14, 65535);
    if (optlen)
        memcpy(t + 20, opt, optlen);
    for (size_t i = 0; i < paylen; i++)
        t[thl + i] = (uint8_t)(i * 7 + i / 1400);
    uint32_t ph = pseudo4(ip, 6, (uint32_t)l4);
    if (partial) { /* the pseudo-header sum, to be completed by the kernel */
        wr16(t + 16, fold(ph));
        p->csum_flags = VNET_CSUM_PARTIAL;
        p->csum_start = (uint16_t)(t - f);
        p->csum_offset = 16;
    } else {
        wr16(t + 16, (uint16_t)~fold(sum16(t, l4, ph)));
        p->csum_flags = 0;
    }
    p->len = (uint32_t)(14 + 20 + l4);
}

START_TEST(t_tap)
{
    enter(ns_b);
    struct vnet_port *tap = NULL;
    struct vnet_port_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.offload = true;
    cfg.up = true;
    cfg.mtu = 9000;
    cfg.set_mac = true;
    cfg.mac = mac_of(TAP_MAC);
    ck_assert_int_eq(vnet_port_open("tap:vtap0", &cfg, &tap), 0);
    /* kernel IPv6 autoconfiguration traffic would only be noise here */
    ck_assert_int_eq(sh("echo 1 > /proc/sys/net/ipv6/conf/vtap0/disable_ipv6"), 0);

    struct vnet_port_info info;
    ck_assert_int_eq(vnet_port_get_info(tap, &info), 0);
    ck_assert_str_eq(info.backend, "tap");
    ck_assert_str_eq(info.ifname, "vtap0");
    ck_assert_int_eq(info.ifindex, vnet_netdev_ifindex("vtap0"));
    ck_assert(vnet_mac_eq(&info.mac, &cfg.mac));
    ck_assert_uint_eq(info.mtu, 9000);
    ck_assert_uint_eq(info.queues, 1);
    ck_assert_uint_eq(info.caps & (VNET_PORT_CAP_CSUM | VNET_PORT_CAP_TSO),
                      VNET_PORT_CAP_CSUM | VNET_PORT_CAP_TSO);
    ck_assert(!(info.caps & VNET_PORT_CAP_MULTIQUEUE));
    printf("tap caps 0x%x (USO %s)\n", info.caps, info.caps & VNET_PORT_CAP_USO ? "yes" : "no");
    ck_assert_int_ge(vnet_port_fd(tap, 0), 0);
    ck_assert_int_eq(vnet_port_fd(tap, 1), VNET_EINVAL);
    ck_assert_int_eq(sh("ip link show vtap0 | grep -q 'state UNKNOWN\\|state UP'"), 0);
    int ifindex = info.ifindex;

    /* a single-queue tap is taken: a second open is refused */
    struct vnet_port *dup = NULL;
    quiet = 1;
    ck_assert_int_eq(vnet_port_open("tap:vtap0", NULL, &dup), VNET_EBUSY);
    quiet = 0;

    struct vnet_prefix pfx;
    ck_assert_int_eq(vnet_prefix_parse("10.88.0.1/24", &pfx), 0);
    ck_assert_int_eq(vnet_netdev_add_addr("vtap0", &pfx), 0);

    /* drain whatever the kernel sent while the device came up */
    struct vnet_pkt *pk[NPKT];
    pkts_reset(pk);
    while (rx_collect(tap, 0, pk, NPKT, NPKT, 50) > 0)
        pkts_reset(pk);

    /* tx: an ARP request for the tap's address; the kernel's reply comes back on rx */
    struct vnet_mac tapmac = mac_of(TAP_MAC), peer = mac_of(PEER_MAC);
    struct vnet_mac bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    tx_reset(pk);
    uint8_t *f = vnet_pkt_data(pk[0]);
    uint8_t *a = put_eth(f, &bcast, &peer, 0x0806);
    static const uint8_t arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 1};
    memcpy(a, arp_hdr, 8);
    memcpy(a + 8, peer.b, 6);
    memcpy(a + 14, (uint8_t[]){10, 88, 0, 2}, 4);
    memset(a + 18, 0, 6);
    memcpy(a + 24, (uint8_t[]){10, 88, 0, 1}, 4);
    pk[0]->len = 42;
    ck_assert_int_eq(vnet_port_tx_burst(tap, 0, pk, 1), 1);
    struct arp_want aw = {tapmac, peer};
    static uint8_t keep[BUFSZ];
    struct vnet_pkt got;
    ck_assert_msg(tap_wait(tap, is_arp_reply, &aw, 2000, &got, keep), "no ARP reply");
    ck_assert_uint_eq(got.gso_type, VNET_GSO_NONE);
    ck_assert_uint_eq(got.queue, 0);
    /* the request taught the kernel the peer's address */
    struct vnet_ip pip = ip_of("10.88.0.2");
    struct vnet_mac nm;
    ck_assert_int_eq(vnet_netdev_neigh_get(ifindex, &pip, &nm), 0);
    ck_assert(vnet_mac_eq(&nm, &peer));

    /* rx: a frame written to the device (AF_PACKET) arrives whole */
    uint8_t frame[1000];
    uint8_t *pl = put_eth(frame, &peer, &tapmac, 0x88b5);
    for (size_t i = 0; pl + i < frame + sizeof(frame); i++)
        pl[i] = (uint8_t)(i * 13);
    packet_inject(ifindex, frame, 200);
    ck_assert(tap_wait(tap, is_ethertype_88b5, NULL, 2000, &got, keep));
    ck_assert_uint_eq(got.len, 200);
    ck_assert_uint_eq(got.off, HEADROOM);
    ck_assert_mem_eq(vnet_pkt_data(&got), frame, 200);
    ck_assert_uint_eq(got.gso_type, VNET_GSO_NONE);
    ck_assert_uint_eq(got.gso_size, 0);

    /* a frame larger than the buffer is dropped, not delivered cut */
    packet_inject(ifindex, frame, sizeof(frame));
    ck_assert_int_eq(wait_readable(tap, 0, 2000), 1);
    pkts_reset(pk);
    pk[0]->cap = HEADROOM + 500;
    int tr = vnet_port_rx_burst(tap, 0, pk, 1);
    ck_assert_int_eq(tr, 0);
    pkts_reset(pk);
    ck_assert_int_eq(vnet_port_rx_burst(tap, 0, pk, NPKT), 0);
    packet_inject(ifindex, frame, sizeof(frame));
    ck_assert(tap_wait(tap, is_ethertype_88b5, NULL, 2000, &got, keep));
    ck_assert_uint_eq(got.len, sizeof(frame));

    /* TCP through the tap: the kernel connects to the fake peer, we answer the handshake by
     * hand, then the kernel's bulk data comes out as TSO frames and ours goes in as one */
    ck_assert_int_eq(sh("ip neigh replace 10.88.0.2 lladdr %s dev vtap0 nud permanent", PEER_MAC),
                     0);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int sndbuf = 1 << 20;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(5001)};
    inet_pton(AF_INET, "10.88.0.2", &to.sin_addr);
    ck_assert_int_eq(connect(s, (struct sockaddr *)&to, sizeof(to)), -1);
    ck_assert_int_eq(errno, EINPROGRESS);
    struct tcp_want syn = {5001, 0x02, 0};
    ck_assert_msg(tap_wait(tap, is_tcp, &syn, 2000, &got, keep), "no SYN");
    const uint8_t *t = vnet_pkt_data(&got) + 34;
    uint16_t kport = rd16(t);
    uint32_t kisn = rd32(t + 4);
    /* checksum offload: the kernel leaves the TCP checksum for us to finish */
    ck_assert_uint_eq(got.csum_flags & VNET_CSUM_PARTIAL, VNET_CSUM_PARTIAL);
    ck_assert_uint_eq(got.csum_start, 34);
    ck_assert_uint_eq(got.csum_offset, 16);

    static const uint8_t mss1460[4] = {2, 4, 0x05, 0xb4};
    tx_reset(pk);
    build_tcp(pk[0], &tapmac, &peer, 5001, kport, 1000, kisn + 1, 0x12, mss1460, 4, 0, false);
    ck_assert_int_eq(vnet_port_tx_burst(tap, 0, pk, 1), 1);
    struct pollfd pfd = {.fd = s, .events = POLLOUT};
    ck_assert_int_eq(poll(&pfd, 1, 2000), 1);
    int soerr = -1;
    socklen_t sl = sizeof(soerr);
    getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    ck_assert_int_eq(soerr, 0);

    static uint8_t bulk[65536];
    ck_assert_int_gt(write(s, bulk, sizeof(bulk)), 14600);
    struct tcp_want data = {5001, 0x10, 1515};
    ck_assert_msg(tap_wait(tap, is_tcp, &data, 3000, &got, keep), "no frame above the MTU");
    ck_assert_uint_eq(got.gso_type, VNET_GSO_TCPV4);
    ck_assert_uint_eq(got.gso_size, 1460);
    ck_assert_uint_eq(got.csum_flags & VNET_CSUM_PARTIAL, VNET_CSUM_PARTIAL);
    printf("tap rx TSO frame: %u B, gso_size %u, hdr_len %u\n", got.len, got.gso_size, got.hdr_len);

    /* tx GSO: 4 x 1400 B of payload in one frame, checksum left partial */
    tx_reset(pk);
    build_tcp(pk[0], &tapmac, &peer, 5001, kport, 1001, kisn + 1, 0x18, NULL, 0, 5600, true);
    pk[0]->gso_type = VNET_GSO_TCPV4;
    pk[0]->gso_size = 1400;
    pk[0]->hdr_len = 54;
    ck_assert_int_eq(vnet_port_tx_burst(tap, 0, pk, 1), 1);
    uint8_t rbuf[8192];
    size_t rn = 0;
    long long end = now_ms() + 2000;
    while (rn < 5600 && now_ms() < end) {
        struct pollfd rp = {.fd = s, .events = POLLIN};
        poll(&rp, 1, 100);
        ssize_t r = read(s, rbuf + rn, sizeof(rbuf) - rn);
        if (r > 0)
            rn += (size_t)r;
    }
    ck_assert_uint_eq(rn, 5600);
    const uint8_t *sent = vnet_pkt_data(pk[0]) + 54;
    ck_assert_mem_eq(rbuf, sent, 5600);
    close(s);

    /* tx with a bad offload header: dropped, and the burst goes on */
    tx_reset(pk);
    build_tcp(pk[0], &tapmac, &peer, 5001, kport, 1, 1, 0x10, NULL, 0, 100, true);
    pk[0]->csum_offset = 60000; /* beyond the frame */
    memcpy(vnet_pkt_data(pk[1]), frame, 200);
    pk[1]->len = 200;
    ck_assert_int_eq(vnet_port_tx_burst(tap, 0, pk, 2), 2);
    vnet_port_close(tap);
    ck_assert_int_eq(vnet_netdev_ifindex("vtap0"), VNET_ENOENT); /* not persistent */

    /* without offload: no capabilities */
    cfg.offload = false;
    cfg.set_mac = false;
    cfg.mtu = 0;
    ck_assert_int_eq(vnet_port_open("tap:vtap1", &cfg, &tap), 0);
    ck_assert_int_eq(vnet_port_get_info(tap, &info), 0);
    ck_assert_uint_eq(info.caps, 0);
    vnet_port_close(tap);
}
END_TEST

/* "No permission" depends on the host: without udev /dev/net/tun is 0600 root and an
 * unprivileged open fails; with Debian's udev rule it is 0666, the open succeeds and TUNSETIFF
 * refuses for want of CAP_NET_ADMIN. Both are checked in every run, whatever mode the host's
 * device has, with a device node of our own on a tmpfs over /dev/net in a private mount
 * namespace (and none at all for the missing-device case). In a child process, so the suite
 * keeps its credentials and mounts. */
enum tun_case { TUN_MODE_0600, TUN_MODE_0666, TUN_MISSING };

static int child_open_tap(enum tun_case which)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("none", "/dev/net", "tmpfs", 0, "mode=0755") != 0)
            _exit(100);
        if (which != TUN_MISSING) {
            mode_t mode = which == TUN_MODE_0600 ? 0600 : 0666;
            if (mknod("/dev/net/tun", S_IFCHR | mode, makedev(10, 200)) != 0 ||
                chmod("/dev/net/tun", mode) != 0)
                _exit(101);
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(102);
        }
        quiet = 1;
        log_reset();
        struct vnet_port *p = NULL;
        int rc = vnet_port_open("tap:vperm", NULL, &p);
        int want = which == TUN_MISSING ? VNET_ENOENT : VNET_EPERM;
        /* the log line names what is missing: the device, its permissions, the capability */
        const char *need1 = "/dev/net/tun", *need2 = "tun module";
        if (which == TUN_MODE_0600)
            need2 = "mode 0600";
        else if (which == TUN_MODE_0666)
            need1 = "TUNSETIFF", need2 = "lacks CAP_NET_ADMIN";
        bool logged = strstr(logbuf, need1) && strstr(logbuf, need2);
        if (rc != want || p || !logged) {
            fprintf(stderr, "tun case %d: rc %d (want %d), log: %s", (int)which, rc, want, logbuf);
            _exit(1);
        }
        _exit(0);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

START_TEST(t_tap_errors)
{
    enter(ns_b);
    ck_assert_int_eq(child_open_tap(TUN_MODE_0600), 0);
    ck_assert_int_eq(child_open_tap(TUN_MODE_0666), 0);
    ck_assert_int_eq(child_open_tap(TUN_MISSING), 0);
}
END_TEST

START_TEST(t_tap_mq)
{
    enter(ns_b);
    struct vnet_port *tap = NULL;
    struct vnet_port_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.offload = true;
    cfg.queues = 2;
    ck_assert_int_eq(vnet_port_open("tap:vmq0", &cfg, &tap), 0);
    struct vnet_port_info info;
    ck_assert_int_eq(vnet_port_get_info(tap, &info), 0);
    ck_assert_uint_eq(info.queues, 2);
    ck_assert(info.caps & VNET_PORT_CAP_MULTIQUEUE);
    int fd0 = vnet_port_fd(tap, 0), fd1 = vnet_port_fd(tap, 1);
    ck_assert_int_ge(fd0, 0);
    ck_assert_int_ge(fd1, 0);
    ck_assert_int_ne(fd0, fd1);
    ck_assert_int_ge(fcntl(fd1, F_GETFL), 0);
    ck_assert(fcntl(fd1, F_GETFL) & O_NONBLOCK);
    ck_assert_int_eq(vnet_port_fd(tap, 2), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_rx_burst(tap, 2, NULL, 1), VNET_EINVAL);

    /* single-queue attach to a multi-queue device is refused */
    struct vnet_port *other = NULL;
    quiet = 1;
    ck_assert_int_eq(vnet_port_open("tap:vmq0", NULL, &other), VNET_EINVAL);
    quiet = 0;

    /* flows are spread over the queues; every frame arrives on one of them */
    ck_assert_int_eq(sh("echo 1 > /proc/sys/net/ipv6/conf/vmq0/disable_ipv6"), 0);
    ck_assert_int_eq(vnet_netdev_set_up("vmq0", true), 0);
    struct vnet_pkt *pk[NPKT];
    pkts_reset(pk);
    while (rx_collect(tap, 0, pk, NPKT, NPKT, 30) + rx_collect(tap, 1, pk, NPKT, NPKT, 30) > 0)
        pkts_reset(pk);
    struct vnet_mac dst = mac_of("02:99:00:00:00:02"), src = mac_of("02:99:00:00:00:01");
    struct vnet_ip s4 = ip_of("10.90.0.1"), d4 = ip_of("10.90.0.2");
    int ifindex = vnet_netdev_ifindex("vmq0");
    for (int i = 0; i < 32; i++) {
        uint8_t fr[14 + 20 + 8 + 10];
        uint8_t *u = put_ip4(put_eth(fr, &dst, &src, 0x0800), &s4, &d4, 17, 18);
        wr16(u, (uint16_t)(10000 + i * 7919));
        wr16(u + 2, 4789);
        wr16(u + 4, 18);
        wr16(u + 6, 0);
        memset(u + 8, i, 10);
        packet_inject(ifindex, fr, sizeof(fr));
    }
    int per[2] = {0, 0};
    long long end = now_ms() + 2000;
    while (per[0] + per[1] < 32 && now_ms() < end) {
        for (unsigned q = 0; q < 2; q++) {
            pkts_reset(pk);
            int r = vnet_port_rx_burst(tap, q, pk, NPKT);
            ck_assert_int_ge(r, 0);
            for (int i = 0; i < r; i++) {
                ck_assert_uint_eq(pk[i]->queue, q);
                if (pk[i]->len == 52 && rd16(vnet_pkt_data(pk[i]) + 12) == 0x0800)
                    per[q]++;
            }
        }
        usleep(1000);
    }
    printf("tap multiqueue: %d + %d frames on queues 0 and 1\n", per[0], per[1]);
    ck_assert_int_eq(per[0] + per[1], 32);
    vnet_port_close(tap);
}
END_TEST

/* ---- udp ---- */

static void fill_seq(struct vnet_pkt *p, uint32_t len, uint32_t tag)
{
    uint8_t *d = vnet_pkt_data(p);
    for (uint32_t i = 0; i < len; i++)
        d[i] = (uint8_t)(tag + i);
    wr32(d, tag);
    p->len = len;
}

static struct vnet_port *udp_open(const char *spec, bool offload, unsigned queues)
{
    struct vnet_port *p = NULL;
    struct vnet_port_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.offload = offload;
    cfg.queues = queues;
    int rc = vnet_port_open(spec, &cfg, &p);
    ck_assert_msg(rc == 0, "%s: %s", spec, vnet_err_name(rc));
    return p;
}

/* Expect @nseg datagrams of @seg bytes (the last @last bytes) tagged base+i, in order, from
 * @from, possibly coalesced. Returns how many rx packets carried them. */
static int expect_segments(struct vnet_port *rx, int nseg, uint32_t seg, uint32_t last,
                           uint32_t base, const struct vnet_endpoint *from)
{
    struct vnet_pkt *pk[NPKT];
    int seen = 0, npk = 0;
    long long end = now_ms() + 3000;
    while (seen < nseg && now_ms() < end) {
        pkts_reset(pk);
        int r = rx_collect(rx, 0, pk, NPKT, 1, (int)(end - now_ms()));
        for (int i = 0; i < r; i++, npk++) {
            const struct vnet_pkt *p = pk[i];
            ck_assert(vnet_endpoint_eq(&p->peer, from));
            ck_assert_uint_eq(p->queue, 0);
            uint32_t step = p->gso_size ? p->gso_size : p->len;
            ck_assert_uint_eq(p->gso_type, p->gso_size ? VNET_GSO_UDP_L4 : VNET_GSO_NONE);
            for (uint32_t o = 0; o < p->len; o += step, seen++) {
                ck_assert_int_lt(seen, nseg);
                uint32_t want = seen == nseg - 1 ? last : seg;
                uint32_t have = p->len - o < step ? p->len - o : step;
                ck_assert_uint_eq(have, want);
                const uint8_t *d = vnet_pkt_data(p) + o;
                ck_assert_uint_eq(rd32(d), base + (uint32_t)seen);
                ck_assert_uint_eq(d[have - 1], (uint8_t)(base + (uint32_t)seen + have - 1));
            }
        }
    }
    ck_assert_msg(seen == nseg, "seen %d of %d in %d packets, seg %u last %u", seen, nseg, npk, seg,
                  last);
    return npk;
}

static void udp_family(const char *a_ip, const char *b_ip)
{
    char spec[96], peer[96];
    enter(ns_a);
    snprintf(spec, sizeof(spec), "udp:%s:4789", a_ip);
    struct vnet_port *a = udp_open(spec, true, 1);
    snprintf(spec, sizeof(spec), "udp:%s:4791", a_ip);
    struct vnet_port *a_plain = udp_open(spec, false, 1);
    enter(ns_b);
    snprintf(spec, sizeof(spec), "udp:%s:4789", b_ip);
    struct vnet_port *b = udp_open(spec, true, 1);
    snprintf(spec, sizeof(spec), "udp:%s:4790", b_ip);
    struct vnet_port *b_plain = udp_open(spec, false, 1);

    struct vnet_port_info info;
    ck_assert_int_eq(vnet_port_get_info(b, &info), 0);
    ck_assert_uint_eq(info.caps & (VNET_PORT_CAP_UDP_GSO | VNET_PORT_CAP_UDP_GRO),
                      VNET_PORT_CAP_UDP_GSO | VNET_PORT_CAP_UDP_GRO);
    ck_assert_int_eq(vnet_port_get_info(b_plain, &info), 0);
    ck_assert_uint_eq(info.caps, 0);
    ck_assert_int_eq(vnet_port_get_info(a, &info), 0);
    struct vnet_endpoint a_ep = info.local, a_plain_ep;
    ck_assert_int_eq(vnet_port_get_info(a_plain, &info), 0);
    a_plain_ep = info.local;
    snprintf(spec, sizeof(spec), "%s:4789", a_ip);
    struct vnet_endpoint want_a = ep_of(spec);
    ck_assert(vnet_endpoint_eq(&a_ep, &want_a));
    snprintf(peer, sizeof(peer), "%s:4789", b_ip);
    struct vnet_endpoint to_b = ep_of(peer);
    snprintf(peer, sizeof(peer), "%s:4790", b_ip);
    struct vnet_endpoint to_b_plain = ep_of(peer);

    /* a burst of 64 datagrams of different sizes arrives in order */
    struct vnet_pkt *pk[NPKT];
    for (int round = 0; round < 3; round++) {
        tx_reset(pk);
        for (int i = 0; i < 64; i++) {
            fill_seq(pk[i], 100 + (uint32_t)i, 1000 + (uint32_t)i);
            pk[i]->peer = to_b;
        }
        ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 64), 64);
        struct vnet_pkt *rp[NPKT];
        pkts_reset(rp);
        int got = rx_collect(b, 0, rp, NPKT, 64, 3000);
        ck_assert_int_eq(got, 64);
        for (int i = 0; i < 64; i++) {
            ck_assert_uint_eq(rp[i]->len, 100 + (uint32_t)i);
            ck_assert_uint_eq(rd32(vnet_pkt_data(rp[i])), 1000 + (uint32_t)i);
            ck_assert(vnet_endpoint_eq(&rp[i]->peer, &a_ep));
            ck_assert_uint_eq(rp[i]->gso_size, 0);
        }
    }

    /* Coalescing: 20 x 150 B + 1 x 90 B to b go as one GSO message (b, with GRO, gets them
     * in one buffer); the same to the port without GRO arrives as 21 datagrams, in order. */
    for (int dest = 0; dest < 2; dest++) {
        tx_reset(pk);
        for (int i = 0; i < 21; i++) {
            fill_seq(pk[i], i == 20 ? 90 : 150, 2000 + (uint32_t)i);
            pk[i]->peer = dest ? to_b_plain : to_b;
        }
        ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 21), 21);
        int npk = expect_segments(dest ? b_plain : b, 21, 150, 90, 2000, &a_ep);
        ck_assert_int_eq(npk, dest ? 21 : 1);
    }
    /* Runs end at a shorter packet, a larger one and another destination; every datagram
     * arrives whole, in order per destination. */
    {
        static const uint32_t len[] = {150, 150, 90, 150, 150, 200, 200, 150, 150, 150};
        static const int to_plain[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 1};
        enum { N = sizeof(len) / sizeof(len[0]) };
        tx_reset(pk);
        for (int i = 0; i < N; i++) {
            fill_seq(pk[i], len[i], 3000 + (uint32_t)i);
            pk[i]->peer = to_plain[i] ? to_b_plain : to_b;
        }
        ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, N), N);
        for (int plain = 0; plain < 2; plain++) {
            int want = 0, seen = 0;
            for (int i = 0; i < N; i++)
                want += to_plain[i] == plain;
            struct vnet_pkt *rp[NPKT];
            long long end = now_ms() + 3000;
            int i = 0;
            while (seen < want && now_ms() < end) {
                pkts_reset(rp);
                int r = rx_collect(plain ? b_plain : b, 0, rp, NPKT, 1, (int)(end - now_ms()));
                for (int j = 0; j < r; j++) {
                    uint32_t step = rp[j]->gso_size ? rp[j]->gso_size : rp[j]->len;
                    for (uint32_t o = 0; o < rp[j]->len; o += step, seen++, i++) {
                        while (i < N && to_plain[i] != plain)
                            i++;
                        ck_assert_int_lt(i, N);
                        uint32_t have = rp[j]->len - o < step ? rp[j]->len - o : step;
                        ck_assert_uint_eq(have, len[i]);
                        ck_assert_uint_eq(rd32(vnet_pkt_data(rp[j]) + o), 3000 + (uint32_t)i);
                    }
                }
            }
            ck_assert_int_eq(seen, want);
        }
    }

    /* GSO: 40 x 1400 B in one send. GRO on: one buffer. GRO off: 40 datagrams */
    tx_reset(pk);
    for (int i = 0; i < 40; i++) /* datagram i: tag i, then bytes counting up from i */
        fill_seq(&(struct vnet_pkt){.buf = vnet_pkt_data(pk[0]) + i * 1400, .cap = 1400}, 1400,
                 (uint32_t)i);
    pk[0]->len = 40 * 1400;
    pk[0]->gso_size = 1400;
    pk[0]->gso_type = VNET_GSO_UDP_L4;
    pk[0]->peer = to_b;
    ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 1), 1);
    struct vnet_pkt *rp[NPKT];
    pkts_reset(rp);
    ck_assert_int_eq(rx_collect(b, 0, rp, NPKT, 1, 3000), 1);
    ck_assert_uint_eq(rp[0]->len, 40 * 1400);
    ck_assert_uint_eq(rp[0]->gso_size, 1400);
    ck_assert_uint_eq(rp[0]->gso_type, VNET_GSO_UDP_L4);
    ck_assert_mem_eq(vnet_pkt_data(rp[0]), vnet_pkt_data(pk[0]), 40 * 1400);

    /* same to the port without GRO: the kernel splits it back */
    pk[0]->peer = to_b_plain;
    ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 1), 1);
    ck_assert_int_eq(expect_segments(b_plain, 40, 1400, 1400, 0, &a_ep), 40);

    /* the last segment may be shorter; a sender without UDP_SEGMENT cuts in software */
    tx_reset(pk);
    for (int i = 0; i < 40; i++)
        fill_seq(&(struct vnet_pkt){.buf = vnet_pkt_data(pk[0]) + i * 1400, .cap = 1400},
                 i == 39 ? 900 : 1400, (uint32_t)i);
    pk[0]->len = 39 * 1400 + 900;
    pk[0]->gso_size = 1400;
    pk[0]->gso_type = VNET_GSO_UDP_L4;
    pk[0]->peer = to_b;
    ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 1), 1);
    ck_assert_int_eq(expect_segments(b, 40, 1400, 900, 0, &a_ep), 1); /* coalesced */
    pk[0]->peer = to_b_plain;
    ck_assert_int_eq(vnet_port_tx_burst(a_plain, 0, pk, 1), 1);
    ck_assert_int_eq(expect_segments(b_plain, 40, 1400, 900, 0, &a_plain_ep), 40);
    pk[0]->peer = to_b;
    ck_assert_int_eq(vnet_port_tx_burst(a_plain, 0, pk, 1), 1);
    expect_segments(b, 40, 1400, 900, 0,
                    &a_plain_ep); /* plain datagrams: not asserted either way */

    /* a GRO batch into a buffer too small for it: the whole datagrams that fit */
    pk[0]->peer = to_b;
    ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 1), 1);
    ck_assert_int_eq(wait_readable(b, 0, 2000), 1);
    pkts_reset(rp);
    rp[0]->cap = HEADROOM + 10000;
    ck_assert_int_eq(vnet_port_rx_burst(b, 0, rp, 1), 1);
    ck_assert_uint_eq(rp[0]->len, 7 * 1400);
    ck_assert_uint_eq(rp[0]->gso_size, 1400);
    ck_assert_mem_eq(vnet_pkt_data(rp[0]), vnet_pkt_data(pk[0]), 7 * 1400);

    /* oversize packets fail cleanly, one by one, and do not stop the burst */
    log_reset();
    vnet_log_set_level(VNET_LOG_DEBUG);
    tx_reset(pk);
    fill_seq(pk[0], 2000, 1);     /* above the veth MTU, DF: EMSGSIZE */
    fill_seq(pk[1], 65600, 2);    /* above the UDP maximum */
    fill_seq(pk[2], 3 * 1600, 3); /* GSO segments above the MTU: EINVAL */
    pk[2]->gso_size = 1600;
    fill_seq(pk[3], 65 * 100, 4); /* more than 64 segments */
    pk[3]->gso_size = 100;
    fill_seq(pk[4], 100, 5); /* a peer that is not an address (below) */
    pk[5]->len = 10;
    pk[5]->off = pk[5]->cap; /* does not fit its buffer */
    fill_seq(pk[6], 101, 6); /* fine */
    for (int i = 0; i < 7; i++)
        pk[i]->peer = to_b;
    pk[4]->peer.ip.family = 9; /* not an address */
    ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 7), 7);
    vnet_log_set_level(VNET_LOG_WARN);
    ck_assert_msg(strstr(logbuf, "Message too long") != NULL, "log: %s", logbuf);
    ck_assert_msg(strstr(logbuf, "Invalid argument") != NULL, "log: %s", logbuf);
    pkts_reset(rp);
    ck_assert_int_eq(rx_collect(b, 0, rp, NPKT, 2, 500), 1);
    ck_assert_uint_eq(rp[0]->len, 101);
    ck_assert_uint_eq(rd32(vnet_pkt_data(rp[0])), 6);

    /* a receive buffer too small for a plain datagram: its slot comes back empty, in place,
     * and the next datagram is delivered whole in the next slot */
    tx_reset(pk);
    fill_seq(pk[0], 1000, 7);
    fill_seq(pk[1], 100, 8);
    pk[0]->peer = pk[1]->peer = to_b_plain;
    ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 2), 2);
    usleep(20000);
    pkts_reset(rp);
    struct vnet_pkt *small = rp[0];
    rp[0]->cap = HEADROOM + 500;
    ck_assert_int_eq(vnet_port_rx_burst(b_plain, 0, rp, 2), 2);
    ck_assert_ptr_eq(rp[0], small);
    ck_assert_uint_eq(rp[0]->len, 0);
    ck_assert_uint_eq(rp[1]->len, 100);
    ck_assert_uint_eq(rd32(vnet_pkt_data(rp[1])), 8);

    /* nothing pending: both directions return 0 without blocking */
    pkts_reset(rp);
    ck_assert_int_eq(vnet_port_rx_burst(b, 0, rp, NPKT), 0);
    ck_assert_int_eq(vnet_port_rx_burst(b_plain, 0, rp, NPKT), 0);

    /* A coalesced message the kernel refuses (here: IPv4 without UDP checksums, SO_NO_CHECK,
     * where UDP GSO is EINVAL) goes again one packet per message: every datagram arrives. */
    if (a_ep.ip.family == VNET_AF_INET) {
        int one = 1, zero = 0, fd = vnet_port_fd(a, 0);
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)), 0);
        for (int round = 0; round < 2; round++) {
            tx_reset(pk);
            for (int i = 0; i < 21; i++) {
                fill_seq(pk[i], i == 20 ? 90 : 150, 4000 + (uint32_t)i);
                pk[i]->peer = to_b;
            }
            ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 21), 21);
            expect_segments(b, 21, 150, 90, 4000, &a_ep);
        }
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &zero, sizeof(zero)), 0);
    }

    vnet_port_close(a);
    vnet_port_close(a_plain);
    vnet_port_close(b);
    vnet_port_close(b_plain);
}

START_TEST(t_udp4)
{
    udp_family("10.77.0.1", "10.77.0.2");
}
END_TEST

START_TEST(t_udp6)
{
    udp_family("[fd77::1]", "[fd77::2]");
}
END_TEST

/* A dual-stack socket on [::] reports IPv4 peers as IPv4 and sends to them. Queues are
 * SO_REUSEPORT sockets. */
START_TEST(t_udp_dual_mq)
{
    enter(ns_a);
    struct vnet_port *a = udp_open("udp:10.77.0.1:4789", true, 1);
    struct vnet_port *a6 = udp_open("udp:[fd77::1]:4789", true, 1);
    enter(ns_b);
    struct vnet_port *b = udp_open("udp:[::]:4792", true, 2);
    struct vnet_port_info info;
    ck_assert_int_eq(vnet_port_get_info(b, &info), 0);
    ck_assert_uint_eq(info.queues, 2);
    ck_assert(info.caps & VNET_PORT_CAP_MULTIQUEUE);
    ck_assert_int_ne(vnet_port_fd(b, 0), vnet_port_fd(b, 1));
    struct vnet_endpoint want = ep_of("[::]:4792");
    ck_assert(vnet_endpoint_eq(&info.local, &want));

    struct vnet_pkt *pk[NPKT], *rp[NPKT];
    struct vnet_endpoint a_ep = ep_of("10.77.0.1:4789"), a6_ep = ep_of("[fd77::1]:4789");
    tx_reset(pk);
    for (int i = 0; i < 16; i++) {
        fill_seq(pk[i], 200, (uint32_t)i);
        pk[i]->peer = ep_of("10.77.0.2:4792");
        fill_seq(pk[16 + i], 200, 16 + (uint32_t)i);
        pk[16 + i]->peer = ep_of("[fd77::2]:4792");
    }
    ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 16), 16);
    ck_assert_int_eq(vnet_port_tx_burst(a6, 0, pk + 16, 16), 16);
    int got4 = 0, got6 = 0;
    long long end = now_ms() + 3000;
    while (got4 + got6 < 32 && now_ms() < end) {
        for (unsigned q = 0; q < 2; q++) {
            pkts_reset(rp);
            int r = vnet_port_rx_burst(b, q, rp, NPKT);
            ck_assert_int_ge(r, 0);
            for (int i = 0; i < r; i++) { /* count datagrams: a burst may come coalesced */
                ck_assert_uint_eq(rp[i]->queue, q);
                int nd = rp[i]->gso_size
                             ? (int)((rp[i]->len + rp[i]->gso_size - 1) / rp[i]->gso_size)
                             : 1;
                if (vnet_endpoint_eq(&rp[i]->peer, &a_ep))
                    got4 += nd;
                else if (vnet_endpoint_eq(&rp[i]->peer, &a6_ep))
                    got6 += nd;
                else
                    ck_abort_msg("unexpected peer");
            }
        }
        usleep(1000);
    }
    ck_assert_int_eq(got4, 16);
    ck_assert_int_eq(got6, 16);

    /* replies from queue 1 to both families */
    tx_reset(pk);
    fill_seq(pk[0], 300, 77);
    pk[0]->peer = a_ep;
    fill_seq(pk[1], 300, 78);
    pk[1]->peer = a6_ep;
    ck_assert_int_eq(vnet_port_tx_burst(b, 1, pk, 2), 2);
    pkts_reset(rp);
    ck_assert_int_eq(rx_collect(a, 0, rp, NPKT, 1, 2000), 1);
    ck_assert_uint_eq(rd32(vnet_pkt_data(rp[0])), 77);
    struct vnet_endpoint b4 = ep_of("10.77.0.2:4792"), b6 = ep_of("[fd77::2]:4792");
    ck_assert(vnet_endpoint_eq(&rp[0]->peer, &b4));
    pkts_reset(rp);
    ck_assert_int_eq(rx_collect(a6, 0, rp, NPKT, 1, 2000), 1);
    ck_assert_uint_eq(rd32(vnet_pkt_data(rp[0])), 78);
    ck_assert(vnet_endpoint_eq(&rp[0]->peer, &b6));

    /* an IPv4 socket cannot reach an IPv6 peer: dropped, counted as taken */
    tx_reset(pk);
    fill_seq(pk[0], 100, 1);
    pk[0]->peer = a6_ep;
    ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 1), 1);

    vnet_port_close(a);
    vnet_port_close(a6);
    vnet_port_close(b);
}
END_TEST

/* ---- setup ---- */

static int setup_namespaces(void)
{
    if (unshare(CLONE_NEWNET) != 0) {
        perror("unshare");
        return -1;
    }
    ns_a = open("/proc/self/ns/net", O_RDONLY); /* no O_CLOEXEC: ip(8) opens it by path */
    if (ns_a < 0 || unshare(CLONE_NEWNET) != 0) {
        perror("unshare");
        return -1;
    }
    ns_b = open("/proc/self/ns/net", O_RDONLY);
    if (ns_b < 0)
        return -1;
    /* host B, with static neighbours so no test waits for ARP/NDP */
    if (sh("ip link set lo up && "
           "ip link add vb address 02:77:00:00:00:02 type veth peer name va "
           "address 02:77:00:00:00:01 netns /proc/%d/fd/%d && "
           "ip addr add 10.77.0.2/24 dev vb && ip addr add fd77::2/64 dev vb nodad && "
           "ip link set vb up && "
           "ip neigh add 10.77.0.1 lladdr 02:77:00:00:00:01 dev vb nud permanent && "
           "ip neigh add fd77::1 lladdr 02:77:00:00:00:01 dev vb nud permanent",
           (int)getpid(), ns_a) != 0)
        return -1;
    /* host A, configured through the library */
    struct vnet_prefix p4, p6;
    if (setns(ns_a, CLONE_NEWNET) != 0 || vnet_netdev_set_up("lo", true) != 0 ||
        vnet_prefix_parse("10.77.0.1/24", &p4) != 0 || vnet_prefix_parse("fd77::1/64", &p6) != 0 ||
        vnet_netdev_add_addr("va", &p4) != 0 || vnet_netdev_add_addr("va", &p6) != 0 ||
        vnet_netdev_set_up("va", true) != 0)
        return -1;
    if (sh("ip neigh add 10.77.0.2 lladdr 02:77:00:00:00:02 dev va nud permanent && "
           "ip neigh add fd77::2 lladdr 02:77:00:00:00:02 dev va nud permanent") != 0)
        return -1;
    /* wait for the link (carrier, qdisc) before the first test sends */
    if (links_up("va", (const char *)NULL) != 0)
        return -1;
    return setns(ns_b, CLONE_NEWNET);
}

/* Issue #12 item 6, underlay port hijack: a process (the child, @owner_q queues) holds a
 * UDP port; a second process (this one, @thief_q queues) tries to take the same port, the
 * way a second vnet-node would. It must be refused with VNET_EBUSY and a log line, and the
 * owner must still receive what is sent to the port. */
static void hijack_once(unsigned owner_q, unsigned thief_q)
{
    const char *spec = "udp:10.77.0.2:4795";
    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        quiet = 1;
        struct vnet_port *p = NULL;
        struct vnet_port_cfg cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.queues = owner_q;
        char c = vnet_port_open(spec, &cfg, &p) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || c != 'y')
            _exit(2);
        if (read(go[0], &c, 1) != 1) /* the thief has tried, and sent one datagram */
            _exit(3);
        struct pollfd pfd[8];
        for (unsigned q = 0; q < owner_q; q++)
            pfd[q] = (struct pollfd){.fd = vnet_port_fd(p, q), .events = POLLIN};
        _exit(poll(pfd, owner_q, 3000) > 0 ? 0 : 4);
    }
    char c = 0;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    ck_assert_int_eq(c, 'y');
    log_reset();
    quiet = 1;
    struct vnet_port *thief = NULL;
    struct vnet_port_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.queues = thief_q;
    int rc = vnet_port_open(spec, &cfg, &thief);
    quiet = 0;
    ck_assert_msg(rc == VNET_EBUSY, "owner %u queues, thief %u: %s", owner_q, thief_q,
                  vnet_err_name(rc));
    ck_assert_ptr_null(thief);
    ck_assert_msg(strstr(logbuf, "another") != NULL, "no clear log line: %s", logbuf);
    /* the owner still gets the traffic */
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(4795)};
    inet_pton(AF_INET, "10.77.0.2", &to.sin_addr);
    ck_assert_int_eq(sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
    close(s);
    ck_assert_int_eq(write(go[1], "g", 1), 1);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
}

START_TEST(t_udp_hijack)
{
    enter(ns_b);
    hijack_once(1, 1);
    hijack_once(2, 2);
    hijack_once(1, 2);
    hijack_once(2, 1);
    /* the owner gone, the port is free again; queues of one process still share it */
    struct vnet_port *p = udp_open("udp:10.77.0.2:4795", false, 4);
    vnet_port_close(p);
}
END_TEST

int main(void)
{
    if (geteuid() != 0) {
        puts("SKIP: needs root (network namespaces, TAP devices)");
        return 77;
    }
    vnet_log_set_handler(log_capture, NULL);
    if (setup_namespaces() != 0) {
        fprintf(stderr, "namespace setup failed\n");
        return 1;
    }
    for (int i = 0; i < 2 * NPKT; i++) {
        bufs[i / NPKT][i % NPKT] = malloc(BUFSZ);
        if (!bufs[i / NPKT][i % NPKT])
            return 1;
    }

    Suite *s = suite_create("ports");
    TCase *tc = tcase_create("ports");
    tcase_add_test(tc, t_netdev);
    tcase_add_test(tc, t_specs);
    tcase_add_test(tc, t_tap);
    tcase_add_test(tc, t_tap_errors);
    tcase_add_test(tc, t_tap_mq);
    tcase_add_test(tc, t_udp4);
    tcase_add_test(tc, t_udp6);
    tcase_add_test(tc, t_udp_dual_mq);
    tcase_add_test(tc, t_udp_hijack);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    /* namespaces are per thread: run in this one, no fork */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int i = 0; i < 2 * NPKT; i++)
        free(bufs[i / NPKT][i % NPKT]);
    return failed ? 1 : 0;
}
