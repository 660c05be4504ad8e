/* Unit tests of the node (include/vnet/node.h), without root: the virtual side is a small
 * in-memory port backend ("nodemem") registered here, the underlay a UDP socket on loopback,
 * and the "other node" a plain UDP socket of the test. Covers the option checks, the underlay
 * spec parser, a static node forwarding both ways on the caller's loop, on its own worker
 * threads and with two queues, closing, and managed-mode key handling (load, enrolment, loose
 * permissions, a pinned key that differs from the join token's). */
#include "vnet/node.h"

#include "../../libvnet/node_util_int.h"

#include "vnet/crypto.h"
#include "vnet/error.h"
#include "vnet/sys/port.h"
#include "vnet/token.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the in-memory virtual port: frames in (to the datapath) and out, per queue ---- */

#define MQ_SLOTS  32
#define MQ_FRAME  2048
#define MQ_QUEUES 2

struct mq {
    int efd; /* readable while frames wait */
    unsigned n;
    uint16_t len[MQ_SLOTS];
    uint8_t data[MQ_SLOTS][MQ_FRAME];
};

static struct {
    pthread_mutex_t mu;
    unsigned nq;
    struct mq in[MQ_QUEUES], out[MQ_QUEUES];
} mem = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int mem_open(const char *arg, const struct vnet_port_cfg *cfg, void **state)
{
    (void)arg;
    unsigned nq = cfg && cfg->queues > 1 ? cfg->queues : 1;
    if (nq > MQ_QUEUES)
        return VNET_ENOTSUP;
    mem.nq = nq;
    for (unsigned q = 0; q < MQ_QUEUES; q++) {
        mem.in[q].n = mem.out[q].n = 0;
        mem.in[q].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        mem.out[q].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    }
    *state = &mem;
    return 0;
}

static void mem_close(void *state)
{
    (void)state;
    for (unsigned q = 0; q < MQ_QUEUES; q++) {
        close(mem.in[q].efd);
        close(mem.out[q].efd);
    }
}

static void mq_push(struct mq *m, const uint8_t *f, size_t len)
{
    pthread_mutex_lock(&mem.mu);
    ck_assert_uint_lt(m->n, MQ_SLOTS);
    ck_assert_uint_le(len, MQ_FRAME);
    memcpy(m->data[m->n], f, len);
    m->len[m->n++] = (uint16_t)len;
    uint64_t one = 1;
    ck_assert_int_eq(write(m->efd, &one, sizeof(one)), sizeof(one));
    pthread_mutex_unlock(&mem.mu);
}

static int mem_rx(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    (void)state;
    struct mq *m = &mem.in[queue];
    pthread_mutex_lock(&mem.mu);
    int k = 0;
    while (k < n && (unsigned)k < m->n) {
        struct vnet_pkt *p = pkts[k];
        memcpy(p->buf + p->off, m->data[k], m->len[k]);
        p->len = m->len[k];
        p->gso_type = p->csum_flags = 0;
        p->gso_size = p->hdr_len = p->csum_start = p->csum_offset = 0;
        p->queue = (uint16_t)queue;
        k++;
    }
    memmove(m->len, m->len + k, (m->n - (unsigned)k) * sizeof(m->len[0]));
    memmove(m->data, m->data + k, (m->n - (unsigned)k) * sizeof(m->data[0]));
    m->n -= (unsigned)k;
    uint64_t v;
    if (m->n == 0 && read(m->efd, &v, sizeof(v)) < 0)
        v = 0; /* already clear */
    pthread_mutex_unlock(&mem.mu);
    return k;
}

static int mem_tx(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    (void)state;
    for (int i = 0; i < n; i++)
        mq_push(&mem.out[queue], vnet_pkt_data(pkts[i]), pkts[i]->len);
    return n;
}

static int mem_fd(void *state, unsigned queue)
{
    (void)state;
    return queue < mem.nq ? mem.in[queue].efd : VNET_EINVAL;
}

static int mem_info(void *state, struct vnet_port_info *out)
{
    (void)state;
    memset(out, 0, sizeof(*out));
    out->backend = "nodemem";
    snprintf(out->ifname, sizeof(out->ifname), "mem0");
    out->mtu = 1500;
    out->queues = mem.nq;
    return 0;
}

static const struct vnet_port_ops mem_ops = {.version = VNET_PORT_OPS_VERSION,
                                             .name = "nodemem",
                                             .open = mem_open,
                                             .close = mem_close,
                                             .rx_burst = mem_rx,
                                             .tx_burst = mem_tx,
                                             .fd = mem_fd,
                                             .get_info = mem_info};

/* ---- fixture: the backend, a loop, the "other node" socket, a free underlay port ---- */

static uv_loop_t loop;
static int peer_fd = -1;
static struct vnet_endpoint peer_ep;
static char underlay[64];
static const uint32_t VNI = 4242;
static struct vnet_mac node_mac = {{0x02, 0, 0, 0, 0, 0x01}};
static char tmpdir[64];

static int udp_socket(struct vnet_endpoint *ep)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    ck_assert_int_eq(vnet_endpoint_from_sockaddr((struct sockaddr *)&sa, ep), 0);
    return fd;
}

static void setup(void)
{
    int rc = vnet_port_register(&mem_ops);
    ck_assert(rc == 0 || rc == VNET_EEXIST);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    peer_fd = udp_socket(&peer_ep);
    struct vnet_endpoint free_ep; /* a port nobody uses now, for the node's underlay */
    close(udp_socket(&free_ep));
    snprintf(underlay, sizeof(underlay), "udp:127.0.0.1:%u", (unsigned)free_ep.port);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vnet-node-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    close(peer_fd);
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0); /* the node left no handle behind */
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void static_options(struct vnet_node_options *o)
{
    vnet_node_options_init(o);
    o->dev = "nodemem:vm";
    o->underlay = underlay;
    o->offload = false;
    o->vni = VNI;
    o->mac = node_mac;
    o->peers = &peer_ep;
    o->npeers = 1;
}

static int closed;
static void on_closed(void *arg)
{
    ck_assert_ptr_eq(arg, &closed);
    closed++;
}

/* Close @n and run the loop until its callback came (once, and not before the loop ran). */
static void close_node(struct vnet_node *n)
{
    closed = 0;
    vnet_node_close(n, on_closed, &closed);
    ck_assert_int_eq(closed, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(closed, 1);
}

/* Run the loop until @fd is readable; false after 5 s. */
static bool wait_readable(int fd)
{
    for (int i = 0; i < 500; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) == 1)
            return true;
    }
    return false;
}

static size_t frame(uint8_t *f, const struct vnet_mac *dst, uint8_t src_last, uint8_t tag)
{
    memcpy(f, dst->b, 6);
    static const uint8_t src[5] = {0x02, 0, 0, 0, 0};
    memcpy(f + 6, src, 5);
    f[11] = src_last;
    f[12] = 0x88, f[13] = 0xb5; /* local experimental ethertype: no ARP/ND proxy involved */
    memset(f + 14, tag, 46);
    return 60;
}

/* A broadcast from the virtual side on @queue reaches the peer as VXLAN with our VNI; a VXLAN
 * datagram from the peer to our MAC comes out of the virtual side (some queue). */
static void check_both_ways(struct vnet_node *n, unsigned queue, uint8_t tag)
{
    static const struct vnet_mac bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    uint8_t f[64], got[256];
    size_t len = frame(f, &bcast, 0x01, tag);
    memcpy(f + 6, node_mac.b, 6); /* from the node's own MAC */
    mq_push(&mem.in[queue], f, len);
    ck_assert_msg(wait_readable(peer_fd), "no VXLAN datagram reached the peer");
    ssize_t r = recv(peer_fd, got, sizeof(got), 0);
    ck_assert_int_eq(r, 8 + (ssize_t)len);
    ck_assert_uint_eq(got[0], 0x08); /* VNI present */
    ck_assert_uint_eq(((uint32_t)got[4] << 16) | ((uint32_t)got[5] << 8) | got[6], VNI);
    ck_assert_mem_eq(got + 8, f, len);

    len = frame(f, &node_mac, 0x77, tag);
    uint8_t dgram[8 + 64] = {0x08,         0, 0, 0, (uint8_t)(VNI >> 16), (uint8_t)(VNI >> 8),
                             (uint8_t)VNI, 0};
    memcpy(dgram + 8, f, len);
    struct vnet_endpoint to;
    ck_assert_int_eq(vnet_endpoint_parse(underlay + 4, &to), 0);
    struct sockaddr_storage ss;
    int sl = vnet_endpoint_to_sockaddr(&to, &ss);
    ck_assert_int_gt(sl, 0);
    ck_assert_int_eq(sendto(peer_fd, dgram, 8 + len, 0, (struct sockaddr *)&ss, (socklen_t)sl),
                     (ssize_t)(8 + len));
    struct pollfd p[MQ_QUEUES];
    for (unsigned q = 0; q < mem.nq; q++)
        p[q] = (struct pollfd){.fd = mem.out[q].efd, .events = POLLIN};
    bool seen = false;
    for (int i = 0; i < 500 && !seen; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        seen = poll(p, mem.nq, 10) > 0;
    }
    ck_assert_msg(seen, "the peer's frame never came out of the virtual port");
    pthread_mutex_lock(&mem.mu);
    unsigned total = 0;
    for (unsigned q = 0; q < mem.nq; q++) {
        for (unsigned i = 0; i < mem.out[q].n; i++) {
            ck_assert_uint_eq(mem.out[q].len[i], len);
            ck_assert_mem_eq(mem.out[q].data[i], f, len);
        }
        total += mem.out[q].n;
        mem.out[q].n = 0;
        uint64_t v;
        if (read(mem.out[q].efd, &v, sizeof(v)) < 0)
            v = 0;
    }
    pthread_mutex_unlock(&mem.mu);
    ck_assert_uint_eq(total, 1);
    (void)n;
}

/* ---- options ---- */

static void expect_check(const struct vnet_node_options *o, const char *want)
{
    char err[256] = "";
    ck_assert_int_eq(vnet_node_options_check(o, err, sizeof(err)), want ? VNET_EINVAL : 0);
    if (want)
        ck_assert_msg(strstr(err, want), "got \"%s\", want \"%s\"", err, want);
}

START_TEST(t_options)
{
    struct vnet_node_options o;
    vnet_node_options_init(&o);
    ck_assert_uint_eq(o.version, VNET_NODE_OPTIONS_VERSION);
    ck_assert_uint_eq(o.queues, 1);
    ck_assert(o.offload && o.arp_proxy && !o.learn && !o.threads);
    o.label_prefix = "--";
    expect_check(&o, "--dev is required");
    o.dev = "tap:x";
    expect_check(&o, "--underlay is required");
    o.underlay = "tcp:1.2.3.4:5";
    expect_check(&o, "--mac is required");
    o.mac = node_mac;
    expect_check(&o, "bad --underlay 'tcp:1.2.3.4:5'");
    o.underlay = "udp:10.0.0.1:4789";
    expect_check(&o, NULL);
    o.mac.b[0] = 0x01;
    expect_check(&o, "multicast");
    o.mac = node_mac;
    o.queues = 17;
    expect_check(&o, "bad --queues 17");
    o.queues = 0;
    expect_check(&o, "bad --queues 0");
    o.queues = 16;
    o.npeers = 1;
    expect_check(&o, "array is NULL");
    o.npeers = 0;
    o.nips = VNET_NODE_MAX_IPS + 1;
    expect_check(&o, "too many --ip");
    o.nips = 0;
    o.network = "n";
    expect_check(&o, "managed mode needs --controller, --network and --name");
    o.controller = "127.0.0.1";
    o.name = "a";
    expect_check(&o, "bad --controller '127.0.0.1'");
    o.controller = "127.0.0.1:1";
    o.name = "";
    expect_check(&o, "bad --network or --name");
    o.name = "a";
    memset(&o.mac, 0, sizeof(o.mac)); /* comes from the controller */
    expect_check(&o, NULL);
    o.join = "x";
    expect_check(&o, "--join and --controller-key need --key FILE");
    o.join = NULL;
    o.key_file = "/k"; /* alone: the controller key pinned at enrolment, read at create */
    expect_check(&o, NULL);
    o.controller = "ctl.example.org:7700";
    expect_check(&o, NULL);
    o.controller = "ctl_example:7700";
    expect_check(&o, "bad --controller 'ctl_example:7700': want IP:PORT, [IPv6]:PORT or HOST:PORT");
    o.label_prefix = NULL;
    expect_check(&o, "bad controller 'ctl_example:7700'");
    o.controller = "127.0.0.1:1";
    o.underlay = "raw:eth0";
    expect_check(&o, NULL); /* its address is looked up at create */
    o.underlay = "raw:eth0,mtu=9000";
    expect_check(&o, "bad underlay 'raw:eth0,mtu=9000'");
    o.underlay = "udp:10.0.0.1:4789";
    o.version = 0;
    expect_check(&o, "options version 0");
}
END_TEST

START_TEST(t_underlay_local)
{
    static const struct {
        const char *spec, *want; /* want NULL: refused */
    } cases[] = {
        {"udp:10.0.0.1:5000", "10.0.0.1:5000"},
        {"udp:10.0.0.1", "10.0.0.1:4789"},
        {"udp:[2001:db8::1]:99", "[2001:db8::1]:99"},
        {"udp:2001:db8::1", "[2001:db8::1]:4789"},
        {"raw:eth0,local=10.1.2.3", "10.1.2.3:4789"},
        {"xdp:eth0,local=[fd00::2]:7000", "[fd00::2]:7000"},
        {"raw:nosuchif0", NULL}, /* without local=: the interface's address, when it exists */
        {"tap:vn0", NULL},
        {"udp:", NULL},
        {"udp:10.0.0.1:99999", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vnet_endpoint ep;
        int rc = vnet_node_underlay_local(cases[i].spec, &ep);
        int want_rc = cases[i].want                       ? 0
                      : strstr(cases[i].spec, "nosuchif") ? VNET_ENOENT
                                                          : VNET_EINVAL;
        ck_assert_msg(rc == want_rc, "%s: rc %d", cases[i].spec, rc);
        if (!cases[i].want)
            continue;
        char buf[VNET_ENDPOINT_STRLEN];
        vnet_endpoint_format(&ep, buf, sizeof(buf));
        ck_assert_str_eq(buf, cases[i].want);
    }
    ck_assert_int_eq(vnet_node_underlay_local(NULL, NULL), VNET_EINVAL);
}
END_TEST

/* ---- a static node ---- */

static void run_static(bool threads, unsigned queues, uint32_t busy_poll_us)
{
    struct vnet_node_options o;
    static_options(&o);
    o.threads = threads;
    o.queues = queues;
    o.busy_poll_us = busy_poll_us;
    struct vnet_node *n = NULL;
    char err[256] = "";
    ck_assert_msg(vnet_node_create(&o, &loop, &n, err, sizeof(err)) == 0, "create: %s", err);
    ck_assert_str_eq(vnet_node_ifname(n), "mem0");
    ck_assert_uint_eq(vnet_node_queue_count(n), queues);
    /* the table holds the node's own MAC */
    ck_assert_uint_eq(vnet_table_count(vnet_node_table(n)), 1);
    struct vnet_agent_stats as;
    ck_assert_int_eq(vnet_node_get_agent_stats(n, &as), VNET_ENOENT);
    ck_assert_int_eq(vnet_node_start(n), 0);
    ck_assert_int_eq(vnet_node_start(n), VNET_ESTATE);
    for (unsigned q = 0; q < queues; q++)
        check_both_ways(n, q, (uint8_t)(0x40 + q));
    /* A worker counts a frame just after handing it over: wait (bounded) for the counts. */
    struct vnet_datapath_stats st, sum;
    for (int i = 0; i < 500; i++) {
        memset(&sum, 0, sizeof(sum));
        for (unsigned q = 0; q < queues; q++) {
            ck_assert_int_eq(vnet_node_get_stats(n, q, &st), 0);
            sum.vport.tx_packets += st.vport.tx_packets;
        }
        if (sum.vport.tx_packets >= queues)
            break;
        poll(NULL, 0, 10);
    }
    memset(&sum, 0, sizeof(sum));
    for (unsigned q = 0; q < queues; q++) {
        ck_assert_int_eq(vnet_node_get_stats(n, q, &st), 0);
        ck_assert_uint_eq(st.vport.rx_packets, 1); /* each queue got its one broadcast */
        ck_assert_uint_eq(st.flooded, 1);
        sum.uport.rx_packets += st.uport.rx_packets;
        sum.vport.tx_packets += st.vport.tx_packets;
        struct vnet_dp_peer_stats ps[2];
        ck_assert_uint_eq(vnet_node_peer_stats(n, q, ps, 2), 1);
        ck_assert(vnet_endpoint_eq(&ps[0].ep, &peer_ep));
    }
    ck_assert_uint_eq(sum.uport.rx_packets, queues);
    ck_assert_uint_eq(sum.vport.tx_packets, queues);
    ck_assert_int_eq(vnet_node_get_stats(n, queues, &st), VNET_ENOENT);
    ck_assert_uint_eq(vnet_node_peer_stats(n, queues, NULL, 0), 0);
    close_node(n);
}

START_TEST(t_static_on_loop)
{
    run_static(false, 1, 0);
}
END_TEST

START_TEST(t_static_worker)
{
    run_static(true, 1, 0);
}
END_TEST

START_TEST(t_static_busy_poll)
{
    run_static(false, 1, 200); /* busy polling implies a worker */
}
END_TEST

START_TEST(t_static_two_queues)
{
    run_static(false, 2, 0); /* two queues imply workers */
}
END_TEST

START_TEST(t_close_unstarted)
{
    struct vnet_node_options o;
    static_options(&o);
    struct vnet_node *n = NULL;
    ck_assert_int_eq(vnet_node_create(&o, &loop, &n, NULL, 0), 0);
    close_node(n);
    vnet_node_close(NULL, on_closed, &closed); /* ignored */
    ck_assert_int_eq(closed, 1);
}
END_TEST

START_TEST(t_create_errors)
{
    struct vnet_node_options o;
    static_options(&o);
    struct vnet_node *n = NULL;
    char err[256] = "";
    o.dev = "nosuchbackend:x";
    o.label_prefix = "--";
    ck_assert_int_eq(vnet_node_create(&o, &loop, &n, err, sizeof(err)), VNET_ENOENT);
    char want[128];
    snprintf(want, sizeof(want), "--dev nosuchbackend:x: %s", vnet_strerror(VNET_ENOENT));
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(n);
    o.dev = "nodemem:vm";
    o.queues = 3; /* the backend has two */
    ck_assert_int_eq(vnet_node_create(&o, &loop, &n, err, sizeof(err)), VNET_ENOTSUP);
    ck_assert_ptr_nonnull(strstr(err, "--dev nodemem:vm: "));
    ck_assert_int_eq(vnet_node_create(NULL, &loop, &n, err, sizeof(err)), VNET_EINVAL);
    ck_assert_int_eq(vnet_node_create(&o, NULL, &n, err, sizeof(err)), VNET_EINVAL);
    ck_assert_ptr_null(n);
}
END_TEST

/* ---- managed mode: keys (nothing is started: no controller needed) ---- */

static void managed_options(struct vnet_node_options *o, const char *key)
{
    vnet_node_options_init(o);
    o->dev = "nodemem:vm";
    o->underlay = underlay;
    o->label_prefix = "--";
    o->controller = "127.0.0.1:1";
    o->network = "net";
    o->name = "a";
    o->key_file = key;
}

START_TEST(t_managed_keys)
{
    char key[128], err[512] = "", tok[256], pub[VNET_PUBKEY_STRLEN], other[VNET_PUBKEY_STRLEN];
    snprintf(key, sizeof(key), "%s/node.key", tmpdir);
    struct vnet_keypair ctl, ctl2;
    ck_assert_int_eq(vnet_key_generate(&ctl), 0);
    ck_assert_int_eq(vnet_key_generate(&ctl2), 0);
    vnet_pubkey_format(ctl.pub, pub, sizeof(pub));
    vnet_pubkey_format(ctl2.pub, other, sizeof(other));
    uint8_t secret[VNET_JOIN_SECRET_LEN];
    memset(secret, 7, sizeof(secret));
    ck_assert_int_ge(vnet_join_token_format(ctl.pub, secret, tok, sizeof(tok)), 0);
    struct vnet_node_options o;
    struct vnet_node *n = NULL;

    /* A pinned key alone needs an existing key file. */
    managed_options(&o, key);
    o.controller_key = pub;
    ck_assert_int_eq(vnet_node_create(&o, &loop, &n, err, sizeof(err)), VNET_ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "--key "));
    struct stat st;
    ck_assert_int_ne(stat(key, &st), 0);

    /* A join token that names another controller than the pinned key. */
    o.controller_key = other;
    o.join = tok;
    ck_assert_int_eq(vnet_node_create(&o, &loop, &n, err, sizeof(err)), VNET_EINVAL);
    ck_assert_str_eq(err, "--controller-key and the key in --join differ");

    /* Enrolling makes the key, mode 0600. */
    o.controller_key = pub;
    ck_assert_msg(vnet_node_create(&o, &loop, &n, err, sizeof(err)) == 0, "create: %s", err);
    ck_assert_int_eq(stat(key, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_uint_eq(vnet_node_queue_count(n), 0); /* no datapath before the welcome */
    close_node(n);
    n = NULL;

    /* Loaded the next time; refused once others may read it. */
    o.join = NULL;
    ck_assert_msg(vnet_node_create(&o, &loop, &n, err, sizeof(err)) == 0, "create: %s", err);
    close_node(n);
    n = NULL;
    ck_assert_int_eq(chmod(key, 0644), 0);
    ck_assert_int_eq(vnet_node_create(&o, &loop, &n, err, sizeof(err)), VNET_EPERM);
    char want[400];
    snprintf(want, sizeof(want),
             "--key %s: key file %s is readable by others (mode 0644); chmod 600 it", key, key);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(n);
}
END_TEST

/* ---- node_util: the controller's address, the pin file, the primary address ---- */

START_TEST(t_hostport)
{
    static const struct {
        const char *s, *host; /* host NULL: refused */
        unsigned port;
    } cases[] = {
        {"10.0.0.1:7700", "10.0.0.1", 7700},
        {"[fd00::1]:1", "fd00::1", 1},
        {"ctl.example.org:7700", "ctl.example.org", 7700},
        {"ctl:65535", "ctl", 65535},
        {"a-b.c.:80", "a-b.c.", 80},
        {"nohost", NULL, 0},
        {"nohost:", NULL, 0},
        {"nohost:0", NULL, 0},
        {"nohost:65536", NULL, 0},
        {"nohost:+80", NULL, 0},
        {"no_host:80", NULL, 0},
        {"-bad:80", NULL, 0},
        {"bad-.x:80", NULL, 0},
        {"a..b:80", NULL, 0},
        {":80", NULL, 0},
        {"10.0.0.300:80", NULL, 0}, /* digits and dots: a mistyped address, not a name */
        {"fd00::1:80", NULL, 0},    /* IPv6 needs brackets */
        {"[10.0.0.1]:80", NULL, 0},
        {"[fd00::1]80", NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[VNET__HOST_MAX] = "unchanged";
        uint16_t port = 0;
        int rc = vnet__hostport_split(cases[i].s, host, &port);
        ck_assert_msg(rc == (cases[i].host ? 0 : VNET_EINVAL), "%s: rc %d", cases[i].s, rc);
        if (!cases[i].host) {
            ck_assert_str_eq(host, "unchanged");
            continue;
        }
        ck_assert_str_eq(host, cases[i].host);
        ck_assert_uint_eq(port, cases[i].port);
    }
    char label[80];
    memset(label, 'a', 64);
    memcpy(label + 64, ":80", 4); /* a label of 64 characters */
    char host[VNET__HOST_MAX];
    uint16_t port;
    ck_assert_int_eq(vnet__hostport_split(label, host, &port), VNET_EINVAL);
    label[63] = '.';
    ck_assert_int_eq(vnet__hostport_split(label, host, &port), 0);
}
END_TEST

START_TEST(t_primary_addr)
{
    struct vnet_prefix v[3];
    memset(v, 0, sizeof(v));
    ck_assert_int_eq(vnet_prefix_parse("fd00::5/64", &v[0]), 0);
    ck_assert_int_eq(vnet_prefix_parse("10.0.0.9/24", &v[1]), 0);
    ck_assert_int_eq(vnet_prefix_parse("10.0.0.8/24", &v[2]), 0);
    struct vnet_ip ip;
    char buf[VNET_IP_STRLEN];
    ck_assert_int_eq(vnet__primary_addr(v, 3, &ip), 0); /* the first IPv4 one */
    vnet_ip_format(&ip, buf, sizeof(buf));
    ck_assert_str_eq(buf, "10.0.0.9");
    ck_assert_int_eq(vnet__primary_addr(v, 1, &ip), 0); /* else the first IPv6 one */
    vnet_ip_format(&ip, buf, sizeof(buf));
    ck_assert_str_eq(buf, "fd00::5");
    ck_assert_int_eq(vnet__primary_addr(v, 0, &ip), VNET_ENOENT);
}
END_TEST

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(t_pin_file)
{
    char path[160], err[512] = "";
    snprintf(path, sizeof(path), "%s/node.key.controller", tmpdir);
    char kp[128];
    snprintf(kp, sizeof(kp), "%s/node.key", tmpdir);
    char want[200];
    ck_assert_int_eq(vnet__pin_path(kp, want, sizeof(want)), 0);
    ck_assert_str_eq(want, path);
    ck_assert_int_eq(vnet__pin_path(kp, want, 10), VNET_EINVAL);

    struct vnet__pin pin, got;
    randombytes_buf(&pin, sizeof(pin));
    ck_assert_int_eq(vnet__pin_read(path, &got, err, sizeof(err)), VNET_ENOENT);
    ck_assert_int_eq(vnet__pin_write(path, &pin, err, sizeof(err)), 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(vnet__pin_read(path, &got, err, sizeof(err)), 0);
    ck_assert_mem_eq(&got, &pin, sizeof(pin));
    /* Replaced whole (rename), no join hash written as "-". */
    memset(pin.join_hash, 0, sizeof(pin.join_hash));
    ck_assert_int_eq(vnet__pin_write(path, &pin, err, sizeof(err)), 0);
    FILE *f = fopen(path, "r");
    char line[256] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    fclose(f);
    ck_assert_ptr_nonnull(strstr(line, " -\n"));
    ck_assert_int_eq(vnet__pin_read(path, &got, err, sizeof(err)), 0);
    ck_assert_mem_eq(&got, &pin, sizeof(pin));
    /* A file others may change could redirect the node to another controller: refused. */
    ck_assert_int_eq(chmod(path, 0664), 0);
    ck_assert_int_eq(vnet__pin_read(path, &got, err, sizeof(err)), VNET_EPERM);
    ck_assert_ptr_nonnull(strstr(err, "writable by group") ? err : strstr(err, "readable by"));
    /* Anything but the one line. */
    static const char *bad[] = {"", "vnet-pin-v1\n", "vnet-pin-v2 a b c\n", "vnet-pin-v1 x y z\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_text(path, bad[i], 0600);
        ck_assert_int_eq(vnet__pin_read(path, &got, err, sizeof(err)), VNET_EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "not a line"));
    }
    ck_assert_int_eq(vnet__pin_write(path, &pin, err, sizeof(err)), 0);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    fclose(f);
    line[strlen(line) - 1] = '\0'; /* no final newline */
    write_text(path, line, 0600);
    ck_assert_int_eq(vnet__pin_read(path, &got, err, sizeof(err)), VNET_EINVAL);
    strcat(line, " extra\n");
    write_text(path, line, 0600);
    ck_assert_int_eq(vnet__pin_read(path, &got, err, sizeof(err)), VNET_EINVAL);
}
END_TEST

/* A node started with --key alone uses the controller key pinned for that key, and refuses to
 * start without one. */
START_TEST(t_managed_pin)
{
    char key[128], pinpath[160], err[512] = "";
    snprintf(key, sizeof(key), "%s/node.key", tmpdir);
    snprintf(pinpath, sizeof(pinpath), "%s.controller", key);
    struct vnet_keypair kp, other, ctl;
    ck_assert_int_eq(vnet_key_generate(&kp), 0);
    ck_assert_int_eq(vnet_key_generate(&other), 0);
    ck_assert_int_eq(vnet_key_generate(&ctl), 0);
    ck_assert_int_eq(vnet_key_save(key, &kp, err, sizeof(err)), 0);
    struct vnet_node_options o;
    struct vnet_node *n = NULL;
    managed_options(&o, key);
    ck_assert_int_eq(vnet_node_create(&o, &loop, &n, err, sizeof(err)), VNET_EINVAL);
    ck_assert_msg(strstr(err, "no --controller-key or --join given, and no controller key "
                              "pinned for this key in"),
                  "%s", err);
    /* A pin written for another node key does not count. */
    struct vnet__pin pin;
    memset(&pin, 0, sizeof(pin));
    memcpy(pin.node_pub, other.pub, VNET_KEY_LEN);
    memcpy(pin.ctl_pub, ctl.pub, VNET_KEY_LEN);
    ck_assert_int_eq(vnet__pin_write(pinpath, &pin, err, sizeof(err)), 0);
    ck_assert_int_eq(vnet_node_create(&o, &loop, &n, err, sizeof(err)), VNET_EINVAL);
    memcpy(pin.node_pub, kp.pub, VNET_KEY_LEN);
    ck_assert_int_eq(vnet__pin_write(pinpath, &pin, err, sizeof(err)), 0);
    ck_assert_msg(vnet_node_create(&o, &loop, &n, err, sizeof(err)) == 0, "create: %s", err);
    close_node(n);
    n = NULL;
    /* A loose pin file is refused with its reason. */
    ck_assert_int_eq(chmod(pinpath, 0646), 0);
    ck_assert_int_eq(vnet_node_create(&o, &loop, &n, err, sizeof(err)), VNET_EPERM);
    ck_assert_ptr_nonnull(strstr(err, "pinned key file"));
}
END_TEST

static Suite *vnet_node_suite(void)
{
    Suite *s = suite_create("node");
    TCase *tc = tcase_create("options");
    tcase_add_test(tc, t_options);
    tcase_add_test(tc, t_underlay_local);
    tcase_add_test(tc, t_hostport);
    tcase_add_test(tc, t_primary_addr);
    suite_add_tcase(s, tc);
    tc = tcase_create("static");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_static_on_loop);
    tcase_add_test(tc, t_static_worker);
    tcase_add_test(tc, t_static_busy_poll);
    tcase_add_test(tc, t_static_two_queues);
    tcase_add_test(tc, t_close_unstarted);
    tcase_add_test(tc, t_create_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("managed_keys");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_managed_keys);
    tcase_add_test(tc, t_pin_file);
    tcase_add_test(tc, t_managed_pin);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vnet_node_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
