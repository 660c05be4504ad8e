/* Integration tests of the "xdp" (AF_XDP) port backend, in two private network namespaces
 * joined by two veth pairs:
 *
 *   A (ns_a): va 02:77:00:00:00:01 (no address: the virtual side "xdp:va")
 *             ua 02:88:00:00:00:01 10.8.0.1/24 fd08::1/64 (underlay "xdp:ua,local=...")
 *   B (ns_b): vb 02:77:00:00:00:02 10.7.0.2/24 (the peer kernel of the virtual side)
 *             ub 02:88:00:00:00:02 10.8.0.2/24 fd08::2/64, with a "udp" port; TX checksum
 *             offload off (a veth peer otherwise sends partial UDP checksums, see afxdp.c)
 *
 * Needs root and AF_XDP (exit 77, a meson SKIP, otherwise). Everything disappears with the
 * process. Namespaces belong to the calling thread: the suite runs without forking
 * (CK_NOFORK) and each test enters the namespace it needs.
 */
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/port.h"
#include "vnet/types.h"
#include "nstest.h"

#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ns_a = -1, ns_b = -1;

#define NPKT     64
#define BUFSZ    4096
#define HEADROOM 64
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

static struct vnet_port *open_port(const char *spec)
{
    struct vnet_port *p = NULL;
    int rc = vnet_port_open(spec, NULL, &p);
    ck_assert_msg(rc == 0, "open %s: %s", spec, vnet_strerror(rc));
    return p;
}

typedef bool (*frame_pred)(const struct vnet_pkt *p, const void *arg);

/* Receive from queue 0 until a packet matches; its index, or -1 after @ms. */
static int wait_match(struct vnet_port *port, frame_pred pred, const void *arg, int ms,
                      struct vnet_pkt **pk)
{
    long long end = now_ms() + ms;
    for (;;) {
        long long left = end - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = vnet_port_fd(port, 0), .events = POLLIN};
        poll(&pfd, 1, left > 50 ? 50 : (int)left);
        pkts_reset(pk);
        int r = vnet_port_rx_burst(port, 0, pk, NPKT);
        ck_assert_int_ge(r, 0);
        for (int i = 0; i < r; i++)
            if (pred(pk[i], arg))
                return i;
    }
}

/* ---- specs ---- */

START_TEST(t_specs)
{
    struct vnet_port *p = NULL;
    enter(ns_a);
    ck_assert_int_eq(vnet_port_open("xdp:", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("xdp:nosuch0", NULL, &p), VNET_ENOENT);
    ck_assert_int_eq(vnet_port_open("xdp:ua,foo=1", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("xdp:ua,local=junk", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("xdp:ua,local=10.8.0.1:0", NULL, &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_port_open("xdp:ua,local=10.8.0.9:4789", NULL, &p), VNET_EINVAL);
    /* one XDP program per interface: a second port on it is refused */
    struct vnet_port *a = open_port("xdp:ua,local=10.8.0.1:4789");
    ck_assert_int_eq(vnet_port_open("xdp:ua,local=10.8.0.1:4790", NULL, &p), VNET_EBUSY);
    struct vnet_port_info info;
    ck_assert_int_eq(vnet_port_get_info(a, &info), 0);
    ck_assert_str_eq(info.backend, "xdp");
    ck_assert_str_eq(info.ifname, "ua");
    ck_assert_uint_eq(info.local.port, 4789);
    vnet_port_close(a);
    /* closed: the program is gone and the interface free again, every time, on either side
     * (the kernel lets go of the queue after close() returns: open waits for it) */
    for (int i = 0; i < 20; i++) {
        a = open_port(i % 2 ? "xdp:ua" : "xdp:ua,local=10.8.0.1:4789");
        vnet_port_close(a);
    }
}
END_TEST

/* ---- virtual side ---- */

/* An ARP packet of @op with target protocol address @tpa (IPv4, 4 bytes). */
struct arp_match {
    uint16_t op;
    uint8_t tpa[4];
};

static bool is_arp(const struct vnet_pkt *p, const void *arg)
{
    const struct arp_match *m = arg;
    const uint8_t *f = vnet_pkt_data(p);
    return p->len >= 42 && rd16(f + 12) == 0x0806 && rd16(f + 20) == m->op &&
           memcmp(f + 38, m->tpa, 4) == 0;
}

/* Frames from B arrive at @v (in A) and frames sent on @v reach B. */
static void virtual_exchange(struct vnet_port *v)
{
    struct vnet_pkt *pk[NPKT];
    /* frames from B arrive: B's kernel asks for 10.7.0.1 */
    enter(ns_b);
    ck_assert_int_eq(
        sh("ip neigh flush dev vb; (ping -c 3 -i 0.3 -W 1 10.7.0.1 >/dev/null 2>&1 &)"), 0);
    enter(ns_a);
    struct arp_match req = {.op = 1, .tpa = {10, 7, 0, 1}};
    int i = wait_match(v, is_arp, &req, 3000, pk);
    ck_assert_msg(i >= 0, "no ARP request from the peer arrived");
    const uint8_t *f = vnet_pkt_data(pk[i]);
    static const uint8_t vb_mac[6] = {0x02, 0x77, 0, 0, 0, 0x02};
    ck_assert_mem_eq(f + 6, vb_mac, 6);

    /* frames sent appear there: an ARP request for B's address is answered by B's kernel */
    static const uint8_t me[6] = {0x02, 0x77, 0, 0, 0, 0xaa};
    uint8_t arp[42];
    memset(arp, 0xff, 6);
    memcpy(arp + 6, me, 6);
    arp[12] = 0x08, arp[13] = 0x06;
    static const uint8_t hdr[8] = {0, 1, 8, 0, 6, 4, 0, 1};
    memcpy(arp + 14, hdr, 8);
    memcpy(arp + 22, me, 6);
    static const uint8_t spa[4] = {10, 7, 0, 1}, tpa[4] = {10, 7, 0, 2};
    memcpy(arp + 28, spa, 4);
    memset(arp + 32, 0, 6);
    memcpy(arp + 38, tpa, 4);
    struct arp_match rep = {.op = 2, .tpa = {10, 7, 0, 1}};
    int got = -1;
    for (int t = 0; t < 5 && got < 0; t++) {
        pkts_reset(pk);
        memcpy(vnet_pkt_data(pk[0]), arp, sizeof(arp));
        pk[0]->len = sizeof(arp);
        ck_assert_int_eq(vnet_port_tx_burst(v, 0, pk, 1), 1);
        got = wait_match(v, is_arp, &rep, 500, pk);
    }
    ck_assert_msg(got >= 0, "no ARP reply from the peer");
    f = vnet_pkt_data(pk[got]);
    ck_assert_mem_eq(f, me, 6);          /* to us */
    ck_assert_mem_eq(f + 22, vb_mac, 6); /* B's MAC for 10.7.0.2 */
}

START_TEST(t_virtual)
{
    enter(ns_a);
    struct vnet_port *v = open_port("xdp:va");
    virtual_exchange(v);
    vnet_port_close(v);
}
END_TEST

/* ---- underlay side ---- */

static bool is_payload(const struct vnet_pkt *p, const void *arg)
{
    const char *s = arg;
    return p->len == strlen(s) && memcmp(vnet_pkt_data(p), s, p->len) == 0;
}

static void underlay_pair(const char *aspec, const char *bspec, const char *a_ep, const char *b_ep,
                          const char *ping)
{
    struct vnet_pkt *pk[NPKT];
    enter(ns_a);
    struct vnet_port *a = open_port(aspec);
    enter(ns_b);
    struct vnet_port *b = open_port(bspec);
    struct vnet_endpoint aep = ep_of(a_ep), bep = ep_of(b_ep);

    /* B -> A: a udp port's datagrams reach the xdp port, with the right source */
    for (int k = 0; k < 3; k++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "to-a-%d", k);
        pkts_reset(pk);
        memcpy(vnet_pkt_data(pk[0]), msg, strlen(msg));
        pk[0]->len = (uint32_t)strlen(msg);
        pk[0]->peer = aep;
        ck_assert_int_eq(vnet_port_tx_burst(b, 0, pk, 1), 1);
        enter(ns_a);
        int i = wait_match(a, is_payload, msg, 3000, pk);
        ck_assert_msg(i >= 0, "%s: datagram %d from B did not arrive", aspec, k);
        ck_assert(vnet_endpoint_eq(&pk[i]->peer, &bep));
        enter(ns_b);
    }

    /* a burst B -> A */
    pkts_reset(pk);
    for (int k = 0; k < NPKT; k++) {
        snprintf((char *)vnet_pkt_data(pk[k]), 16, "bursa-%02d", k);
        pk[k]->len = 8;
        pk[k]->peer = aep;
    }
    int bsent = 0;
    for (int t = 0; t < 100 && bsent < NPKT; t++)
        bsent += vnet_port_tx_burst(b, 0, pk + bsent, NPKT - bsent);
    ck_assert_int_eq(bsent, NPKT);
    enter(ns_a);
    int brcvd = 0;
    long long bend = now_ms() + 2000;
    while (brcvd < NPKT && now_ms() < bend) {
        struct pollfd pfd = {.fd = vnet_port_fd(a, 0), .events = POLLIN};
        poll(&pfd, 1, 50);
        pkts_reset(pk);
        int r = vnet_port_rx_burst(a, 0, pk, 16); /* small bursts: the ring keeps the rest */
        ck_assert_int_ge(r, 0);
        for (int k = 0; k < r; k++)
            brcvd += pk[k]->len == 8 && memcmp(vnet_pkt_data(pk[k]), "bursa-", 6) == 0;
    }
    ck_assert_int_eq(brcvd, NPKT);

    /* A -> B: the xdp port builds the frames (the first ones may wait for the neighbour) */
    enter(ns_a);
    int got = -1;
    for (int t = 0; t < 40 && got < 0; t++) {
        pkts_reset(pk);
        memcpy(vnet_pkt_data(pk[0]), "to-b", 4);
        pk[0]->len = 4;
        pk[0]->peer = bep;
        ck_assert_int_eq(vnet_port_tx_burst(a, 0, pk, 1), 1);
        got = wait_match(b, is_payload, "to-b", 100, pk);
    }
    ck_assert_msg(got >= 0, "%s: datagram to B did not arrive", aspec);
    ck_assert(vnet_endpoint_eq(&pk[got]->peer, &aep));
    /* a burst, both ways counted */
    pkts_reset(pk);
    for (int k = 0; k < NPKT; k++) {
        snprintf((char *)vnet_pkt_data(pk[k]), 16, "burst-%02d", k);
        pk[k]->len = 8;
        pk[k]->peer = bep;
    }
    int sent = 0;
    for (int t = 0; t < 100 && sent < NPKT; t++)
        sent += vnet_port_tx_burst(a, 0, pk + sent, NPKT - sent);
    ck_assert_int_eq(sent, NPKT);
    int rcvd = 0;
    long long end = now_ms() + 2000;
    while (rcvd < NPKT && now_ms() < end) {
        struct pollfd pfd = {.fd = vnet_port_fd(b, 0), .events = POLLIN};
        poll(&pfd, 1, 50);
        struct vnet_pkt *rk[NPKT];
        static struct vnet_pkt rpool[NPKT];
        static uint8_t rbuf[NPKT][256];
        for (int k = 0; k < NPKT; k++) {
            memset(&rpool[k], 0, sizeof(rpool[k]));
            rpool[k].buf = rbuf[k];
            rpool[k].cap = sizeof(rbuf[k]);
            rk[k] = &rpool[k];
        }
        int r = vnet_port_rx_burst(b, 0, rk, NPKT);
        ck_assert_int_ge(r, 0);
        for (int k = 0; k < r; k++)
            rcvd += rk[k]->len == 8 && memcmp(rk[k]->buf, "burst-", 6) == 0;
    }
    ck_assert_int_eq(rcvd, NPKT);

    /* everything else still reaches A's kernel */
    enter(ns_b);
    ck_assert_msg(sh("%s >/dev/null 2>&1", ping) == 0, "%s failed with the port open", ping);
    vnet_port_close(b);
    enter(ns_a);
    vnet_port_close(a);
}

START_TEST(t_underlay4)
{
    underlay_pair("xdp:ua,local=10.8.0.1:4789", "udp:10.8.0.2:4789", "10.8.0.1:4789",
                  "10.8.0.2:4789", "ping -c 2 -i 0.2 -W 2 10.8.0.1");
}
END_TEST

START_TEST(t_underlay6)
{
    underlay_pair("xdp:ua,local=[fd08::1]:4789", "udp:[fd08::2]:4789", "[fd08::1]:4789",
                  "[fd08::2]:4789", "ping -6 -c 2 -i 0.2 -W 2 fd08::1");
}
END_TEST

/* ---- generic mode ---- */

/* A bridge has no native XDP: the port falls back to generic (SKB) mode. With va as the
 * bridge's port, B's frames reach the bridge device, and frames sent there go out va. */
START_TEST(t_generic)
{
    enter(ns_a);
    ck_assert_int_eq(sh("ip link add br0 address 02:77:00:00:00:0b type bridge && "
                        "ip link set va master br0 && ip link set br0 up"),
                     0);
    for (int i = 0; i < 300 && sh("ip link show br0 | grep -q 'state UP'") != 0; i++)
        usleep(10000);
    struct vnet_port *v = open_port("xdp:br0");
    virtual_exchange(v);
    vnet_port_close(v);
    ck_assert_int_eq(sh("ip link del br0"), 0);
}
END_TEST

/* ---- setup ---- */

static int setup_namespaces(void)
{
    int *fds[2] = {&ns_a, &ns_b};
    for (int i = 0; i < 2; i++) {
        if (unshare(CLONE_NEWNET) != 0) {
            perror("unshare");
            return -1;
        }
        *fds[i] = open("/proc/self/ns/net", O_RDONLY); /* no O_CLOEXEC: ip(8) opens it */
        if (*fds[i] < 0 || sh("ip link set lo up") != 0)
            return -1;
    }
    int pid = (int)getpid();
    /* now in B */
    if (sh("ip link add vb address 02:77:00:00:00:02 type veth peer name va "
           "address 02:77:00:00:00:01 netns /proc/%d/fd/%d && "
           "ip addr add 10.7.0.2/24 dev vb && ip link set vb up && "
           "ip link add ub address 02:88:00:00:00:02 type veth peer name ua "
           "address 02:88:00:00:00:01 netns /proc/%d/fd/%d && "
           "ip addr add 10.8.0.2/24 dev ub && ip addr add fd08::2/64 dev ub nodad && "
           "ip link set ub up && ethtool -K ub tx off >/dev/null",
           pid, ns_a, pid, ns_a) != 0)
        return -1;
    if (setns(ns_a, CLONE_NEWNET) != 0 ||
        sh("ip link set va up && ip addr add 10.8.0.1/24 dev ua && "
           "ip addr add fd08::1/64 dev ua nodad && ip link set ua up") != 0)
        return -1;
    return links_up("ua", "va", (const char *)NULL);
}

int main(void)
{
    if (geteuid() != 0) {
        puts("SKIP: needs root (network namespaces, XDP)");
        return 77;
    }
    if (setup_namespaces() != 0) {
        fprintf(stderr, "namespace setup failed\n");
        return 1;
    }
    enum vnet_log_level lvl;
    const char *env = getenv("VNET_TEST_LOG");
    if (env && vnet_log_level_parse(env, &lvl) == 0)
        vnet_log_set_level(lvl);
    /* AF_XDP and XDP at all? */
    struct vnet_port *probe = NULL;
    int rc = vnet_port_open("xdp:va", NULL, &probe);
    if (rc == VNET_ENOTSUP || rc == VNET_EPERM || rc == VNET_ENOENT) {
        printf("SKIP: AF_XDP unavailable: %s\n", vnet_strerror(rc));
        return 77;
    }
    if (rc != 0) {
        fprintf(stderr, "xdp:va: %s\n", vnet_strerror(rc));
        return 1;
    }
    vnet_port_close(probe);
    for (int i = 0; i < NPKT; i++)
        if (!(bufs[i] = malloc(BUFSZ)))
            return 1;

    Suite *s = suite_create("xdp");
    TCase *tc = tcase_create("xdp");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, t_specs);
    tcase_add_test(tc, t_virtual);
    tcase_add_test(tc, t_underlay4);
    tcase_add_test(tc, t_underlay6);
    tcase_add_test(tc, t_generic);
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
