/* vnet-embed: libvnet embedded in a (toy) hypervisor.
 *
 *   vnet-embed --underlay udp:IP:PORT --vni N --mac MAC --ip ADDR [--peer IP:PORT]...
 *              [--static MAC=IP:PORT]... [--ping ADDR] [--count N] [--duration S]
 *
 * The program plays a hypervisor with one VM attached to a libvnet overlay:
 *
 *  - It registers its own port backend, "vmq", with vnet_port_register(): an in-memory queue
 *    pair standing for the VM's virtio ring. rx_burst takes the frames the VM transmitted;
 *    tx_burst hands frames to the VM. The port's fd is an eventfd the VM side signals when it
 *    queues frames (a virtio "kick"); a second eventfd tells the VM that frames wait for it
 *    (a virtio "call"). (vmq is kept small to show the ops table; tests/helpers/memport.c is a
 *    fuller in-memory backend, with queues, underlay endpoints and offload metadata, that the
 *    unit tests drive the datapath with.)
 *  - It drives the datapath from its own epoll loop: the fds from vnet_datapath_fds(), and
 *    vnet_datapath_poll(dp, budget) when one is readable. No thread, no libuv of its own.
 *  - The "VM", in the same loop, is a tiny IPv4 stack: it resolves --ping's address with ARP,
 *    sends --count ICMP echo requests (one every 200 ms) and counts the replies, and answers
 *    ARP requests and echo requests for its own --ip.
 *
 * The main thread is the switch table's writer (the static entries, learn_drain) and the only
 * thread that polls the datapath. On SIGINT/SIGTERM or after --duration seconds it prints the
 * VM's counters and the datapath's and exits: 0 when --ping got at least one reply (or was not
 * asked for), 1 otherwise, 2 on a usage error. docs/embedding.md walks through this file.
 */
#include <vnet/datapath.h>
#include <vnet/error.h>
#include <vnet/log.h>
#include <vnet/port.h>
#include <vnet/switch_table.h>
#include <vnet/sys/port.h>
#include <vnet/types.h>

#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "vnet-embed";

/* ---- the VM's queue pair: what a virtio ring would be ---- */

#define VMQ_SLOTS 256
#define VMQ_FRAME 2048 /* longest frame a slot holds (MTU 1500 + Ethernet header fits) */

struct vmq_ring {
    unsigned head, tail; /* head: next to read; tail: next to write; head == tail: empty */
    uint16_t len[VMQ_SLOTS];
    uint8_t data[VMQ_SLOTS][VMQ_FRAME];
};

struct vmq {
    char name[16];
    struct vnet_mac mac;
    uint32_t mtu;
    int kick_fd;              /* VM -> host: readable while to_host holds frames; the port's fd */
    int call_fd;              /* host -> VM: signalled when to_guest gets frames */
    struct vmq_ring to_host;  /* frames the VM transmitted */
    struct vmq_ring to_guest; /* frames for the VM */
    uint64_t host_drops;      /* to_guest full or frame too long */
    bool open;
};

static bool ring_empty(const struct vmq_ring *r)
{
    return r->head == r->tail;
}

static bool ring_full(const struct vmq_ring *r)
{
    return r->tail - r->head == VMQ_SLOTS;
}

static int ring_push(struct vmq_ring *r, const uint8_t *frame, size_t len)
{
    if (ring_full(r) || len > VMQ_FRAME)
        return -1;
    unsigned i = r->tail % VMQ_SLOTS;
    memcpy(r->data[i], frame, len);
    r->len[i] = (uint16_t)len;
    r->tail++;
    return 0;
}

static void signal_fd(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof(one)) < 0) {
        /* an eventfd write fails only when the counter would overflow: already signalled */
    }
}

static void clear_fd(int fd)
{
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing was signalled */
    }
}

/* One VM for this program; a real hypervisor would keep a table of them. */
static struct vmq *the_vm;

/* ---- the "vmq" port backend ---- */

static int vmq_open(const char *arg, const struct vnet_port_cfg *cfg, void **state)
{
    struct vmq *q = the_vm;
    if (!q || strcmp(arg, q->name) != 0)
        return VNET_ENOENT;
    if (q->open)
        return VNET_EBUSY;
    if (cfg && cfg->queues > 1)
        return VNET_ENOTSUP;
    if (cfg && cfg->mtu)
        q->mtu = cfg->mtu;
    q->open = true;
    *state = q;
    return 0;
}

static void vmq_close(void *state)
{
    struct vmq *q = state;
    q->open = false; /* the memory is the VM's, not the port's */
}

/* Frames the VM transmitted, into the datapath's buffers. */
static int vmq_rx_burst(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct vmq *q = state;
    struct vmq_ring *r = &q->to_host;
    int got = 0;
    while (got < n && !ring_empty(r)) {
        unsigned i = r->head++ % VMQ_SLOTS;
        struct vnet_pkt *p = pkts[got];
        if (p->off + r->len[i] > p->cap)
            continue; /* cannot happen with VMQ_FRAME below the datapath's buffers */
        memcpy(p->buf + p->off, r->data[i], r->len[i]);
        p->len = r->len[i];
        p->gso_type = VNET_GSO_NONE;
        p->csum_flags = 0;
        p->gso_size = p->hdr_len = p->csum_start = p->csum_offset = 0;
        p->queue = (uint16_t)queue;
        got++;
    }
    /* Level-triggered: the fd stays readable while frames are left for the next poll. */
    if (ring_empty(r))
        clear_fd(q->kick_fd);
    return got;
}

/* Frames for the VM. Never blocks: a full ring takes nothing more. */
static int vmq_tx_burst(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct vmq *q = state;
    int taken = 0;
    for (; taken < n; taken++) {
        const struct vnet_pkt *p = pkts[taken];
        if (ring_full(&q->to_guest))
            break; /* the rest is not taken: the datapath counts it (tx_virtual) */
        if (ring_push(&q->to_guest, vnet_pkt_data(p), p->len) != 0)
            q->host_drops++; /* too long for a slot: taken and dropped */
    }
    if (taken)
        signal_fd(q->call_fd); /* the virtio "call" */
    (void)queue;               /* one queue: vmq_open refused more */
    return taken;
}

static int vmq_fd(void *state, unsigned queue)
{
    const struct vmq *q = state;
    return queue == 0 ? q->kick_fd : VNET_EINVAL;
}

static int vmq_get_info(void *state, struct vnet_port_info *out)
{
    const struct vmq *q = state;
    memset(out, 0, sizeof(*out));
    out->backend = "vmq";
    snprintf(out->ifname, sizeof(out->ifname), "%s", q->name);
    out->mac = q->mac;
    out->mtu = q->mtu;
    out->caps = 0; /* no offloads: the datapath hands over plain, checksummed frames */
    out->queues = 1;
    return 0;
}

static const struct vnet_port_ops vmq_ops = {
    .version = VNET_PORT_OPS_VERSION,
    .name = "vmq",
    .open = vmq_open,
    .close = vmq_close,
    .rx_burst = vmq_rx_burst,
    .tx_burst = vmq_tx_burst,
    .fd = vmq_fd,
    .get_info = vmq_get_info,
};

/* ---- the VM: a tiny IPv4 stack (ARP, ICMP echo) ---- */

struct guest {
    struct vmq *q;
    struct vnet_mac mac;
    uint8_t ip[4], target[4];
    bool ping, target_known;
    struct vnet_mac target_mac;
    unsigned count;
    uint16_t seq;
    uint64_t arp_sent, arp_replies, echo_sent, echo_replies, echo_answered, arp_answered;
};

static uint16_t csum(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        s += (uint32_t)(p[len - 1] << 8);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void guest_send(struct guest *g, const uint8_t *frame, size_t len)
{
    if (ring_push(&g->q->to_host, frame, len) == 0)
        signal_fd(g->q->kick_fd); /* the virtio "kick" */
}

static void send_arp(struct guest *g, uint16_t op, const struct vnet_mac *dst, const uint8_t tip[4])
{
    uint8_t f[42];
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memcpy(f, op == 1 ? bcast : dst->b, 6);
    memcpy(f + 6, g->mac.b, 6);
    put16(f + 12, 0x0806);
    put16(f + 14, 1);      /* Ethernet */
    put16(f + 16, 0x0800); /* IPv4 */
    f[18] = 6;
    f[19] = 4;
    put16(f + 20, op);
    memcpy(f + 22, g->mac.b, 6);
    memcpy(f + 28, g->ip, 4);
    if (op == 1)
        memset(f + 32, 0, 6);
    else
        memcpy(f + 32, dst->b, 6);
    memcpy(f + 38, tip, 4);
    guest_send(g, f, sizeof(f));
}

/* An ICMP echo (type 8 request, 0 reply) with @payload. */
static void send_icmp(struct guest *g, const struct vnet_mac *dst, const uint8_t dip[4],
                      uint8_t type, uint16_t id, uint16_t seq, const uint8_t *payload, size_t plen)
{
    uint8_t f[VMQ_FRAME];
    if (plen > sizeof(f) - 42)
        return;
    memcpy(f, dst->b, 6);
    memcpy(f + 6, g->mac.b, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + 8 + plen));
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = 1; /* ICMP */
    memcpy(ip + 12, g->ip, 4);
    memcpy(ip + 16, dip, 4);
    put16(ip + 10, csum(ip, 20));
    uint8_t *icmp = ip + 20;
    icmp[0] = type;
    icmp[1] = 0;
    put16(icmp + 2, 0);
    put16(icmp + 4, id);
    put16(icmp + 6, seq);
    memcpy(icmp + 8, payload, plen);
    put16(icmp + 2, csum(icmp, 8 + plen));
    guest_send(g, f, 14 + 20 + 8 + plen);
}

#define PING_ID 0x7e57

/* Every 200 ms: resolve the target, then one echo request per tick until --count. */
static void guest_tick(struct guest *g)
{
    if (!g->ping)
        return;
    if (!g->target_known) {
        send_arp(g, 1, NULL, g->target);
        g->arp_sent++;
        return;
    }
    if (g->echo_sent >= g->count)
        return;
    uint8_t payload[56];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)i;
    send_icmp(g, &g->target_mac, g->target, 8, PING_ID, ++g->seq, payload, sizeof(payload));
    g->echo_sent++;
}

static void guest_frame(struct guest *g, const uint8_t *f, size_t len)
{
    if (len < 14)
        return;
    uint16_t type = get16(f + 12);
    if (type == 0x0806 && len >= 42) {
        uint16_t op = get16(f + 20);
        struct vnet_mac sha;
        memcpy(sha.b, f + 22, 6);
        if (op == 1 && memcmp(f + 38, g->ip, 4) == 0) { /* who has my address? */
            send_arp(g, 2, &sha, f + 28);
            g->arp_answered++;
        } else if (op == 2 && g->ping && memcmp(f + 28, g->target, 4) == 0) {
            if (!g->target_known) {
                char m[VNET_MAC_STRLEN];
                vnet_mac_format(&sha, m, sizeof(m));
                printf("vm: %u.%u.%u.%u is at %s\n", g->target[0], g->target[1], g->target[2],
                       g->target[3], m);
            }
            g->target_mac = sha;
            g->target_known = true;
            g->arp_replies++;
        }
        return;
    }
    if (type != 0x0800 || len < 14 + 20 + 8)
        return;
    const uint8_t *ip = f + 14;
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    size_t tot = get16(ip + 2);
    if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl + 8 || 14 + tot > len || ip[9] != 1 ||
        memcmp(ip + 16, g->ip, 4) != 0)
        return;
    const uint8_t *icmp = ip + ihl;
    size_t ilen = tot - ihl;
    if (csum(icmp, ilen) != 0)
        return; /* corrupted on the way */
    struct vnet_mac src;
    memcpy(src.b, f + 6, 6);
    if (icmp[0] == 8) { /* echo request for us: answer it */
        send_icmp(g, &src, ip + 12, 0, get16(icmp + 4), get16(icmp + 6), icmp + 8, ilen - 8);
        g->echo_answered++;
    } else if (icmp[0] == 0 && get16(icmp + 4) == PING_ID) {
        g->echo_replies++;
        printf("vm: echo reply from %u.%u.%u.%u seq=%u (%llu of %u)\n", ip[12], ip[13], ip[14],
               ip[15], get16(icmp + 6), (unsigned long long)g->echo_replies, g->count);
        fflush(stdout);
    }
}

/* The VM's side of the "call": take every frame the host queued. */
static void guest_rx(struct guest *g)
{
    clear_fd(g->q->call_fd);
    struct vmq_ring *r = &g->q->to_guest;
    while (!ring_empty(r)) {
        unsigned i = r->head % VMQ_SLOTS;
        guest_frame(g, r->data[i], r->len[i]);
        r->head++;
    }
}

/* ---- the hypervisor ---- */

struct opts {
    const char *underlay;
    uint32_t vni;
    struct vnet_mac mac;
    struct vnet_ip ip, ping;
    bool has_mac, has_ip, has_ping;
    struct vnet_endpoint peers[16];
    int npeers;
    struct vnet_table_op statics[16];
    int nstatics;
    unsigned count, duration;
};

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr,
            "%s: %s '%s'\n"
            "usage: %s --underlay udp:IP:PORT --vni N --mac MAC --ip ADDR [--peer IP:PORT]...\n"
            "          [--static MAC=IP:PORT]... [--ping ADDR] [--count N] [--duration S]\n",
            prog, what, arg ? arg : "", prog);
    return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"underlay", required_argument, NULL, 'u'}, {"vni", required_argument, NULL, 'v'},
        {"mac", required_argument, NULL, 'm'},      {"ip", required_argument, NULL, 'i'},
        {"peer", required_argument, NULL, 'p'},     {"static", required_argument, NULL, 's'},
        {"ping", required_argument, NULL, 'P'},     {"count", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0},
    };
    int c;
    o->count = 5;
    o->duration = 10;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'u':
            o->underlay = optarg;
            break;
        case 'v':
            if (vnet_vni_parse(optarg, &o->vni))
                return usage_error("bad --vni", optarg);
            break;
        case 'm':
            if (vnet_mac_parse(optarg, &o->mac) || vnet_mac_is_multicast(&o->mac))
                return usage_error("bad --mac", optarg);
            o->has_mac = true;
            break;
        case 'i':
        case 'P': {
            struct vnet_ip *ip = c == 'i' ? &o->ip : &o->ping;
            if (vnet_ip_parse(optarg, ip) || ip->family != VNET_AF_INET)
                return usage_error("bad IPv4 address", optarg);
            *(c == 'i' ? &o->has_ip : &o->has_ping) = true;
            break;
        }
        case 'p':
            if (o->npeers == 16 || vnet_endpoint_parse(optarg, &o->peers[o->npeers]))
                return usage_error("bad --peer", optarg);
            o->npeers++;
            break;
        case 's': {
            char mac[VNET_MAC_STRLEN];
            const char *eq = strchr(optarg, '=');
            struct vnet_table_op *op = &o->statics[o->nstatics];
            if (o->nstatics == 16 || !eq || (size_t)(eq - optarg) >= sizeof(mac))
                return usage_error("bad --static", optarg);
            memcpy(mac, optarg, (size_t)(eq - optarg));
            mac[eq - optarg] = '\0';
            memset(op, 0, sizeof(*op));
            if (vnet_mac_parse(mac, &op->mac) || vnet_endpoint_parse(eq + 1, &op->ep))
                return usage_error("bad --static", optarg);
            op->type = VNET_TABLE_PUT;
            op->flags = VNET_ENTRY_STATIC;
            o->nstatics++;
            break;
        }
        case 'c':
        case 'd': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (!*optarg || *end || v == 0 || v > 100000)
                return usage_error("bad number", optarg);
            *(c == 'c' ? &o->count : &o->duration) = (unsigned)v;
            break;
        }
        default:
            return usage_error("bad option", argv[optind - 1]);
        }
    }
    if (!o->underlay || strncmp(o->underlay, "udp:", 4) != 0)
        return usage_error("need --underlay udp:IP:PORT", o->underlay);
    if (!o->has_mac || !o->has_ip || !o->vni)
        return usage_error("need --vni, --mac and --ip", "");
    return 0;
}

static void log_handler(enum vnet_log_level level, const char *module, const char *msg, void *arg)
{
    (void)arg;
    fprintf(stderr, "%s: libvnet %s [%s]: %s\n", prog, vnet_log_level_name(level), module, msg);
}

static int add_fd(int ep, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

enum { TAG_VPORT, TAG_UPORT, TAG_GUEST, TAG_TICK, TAG_SIGNAL, TAG_LEARN };

static void print_stats(const struct guest *g, const struct vnet_datapath *dp)
{
    struct vnet_datapath_stats st;
    vnet_datapath_get_stats(dp, &st);
    printf("vm: sent %llu ARP requests, got %llu ARP replies; sent %llu echo requests, got %llu "
           "echo replies; answered %llu ARP and %llu echo requests\n",
           (unsigned long long)g->arp_sent, (unsigned long long)g->arp_replies,
           (unsigned long long)g->echo_sent, (unsigned long long)g->echo_replies,
           (unsigned long long)g->arp_answered, (unsigned long long)g->echo_answered);
    printf("datapath: vport rx %llu tx %llu, uport rx %llu tx %llu, flooded %llu, arp_replies "
           "%llu, vmq drops %llu\n",
           (unsigned long long)st.vport.rx_packets, (unsigned long long)st.vport.tx_packets,
           (unsigned long long)st.uport.rx_packets, (unsigned long long)st.uport.tx_packets,
           (unsigned long long)st.flooded, (unsigned long long)st.arp_replies,
           (unsigned long long)g->q->host_drops);
    for (int i = 0; i < VNET_DP_DROP__MAX; i++)
        if (st.drops[i])
            printf("datapath: dropped %llu %s\n", (unsigned long long)st.drops[i],
                   vnet_dp_drop_name((enum vnet_dp_drop)i));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof(o));
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc;
    struct vnet_endpoint local;
    if (vnet_endpoint_parse(o.underlay + 4, &local))
        return usage_error("bad --underlay", o.underlay);
    vnet_log_set_handler(log_handler, NULL);

    /* Signals arrive through a signalfd in the loop, like every other event. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigprocmask(SIG_BLOCK, &sigs, NULL);

    int status = 1, ep = -1, sfd = -1, tfd = -1;
    struct vnet_table *table = NULL;
    struct vnet_port *vport = NULL, *uport = NULL;
    struct vnet_datapath *dp = NULL;
    struct guest g;
    memset(&g, 0, sizeof(g));

    /* The VM and its queue pair, then the backend that serves it. */
    struct vmq *q = calloc(1, sizeof(*q));
    if (!q)
        return 1;
    snprintf(q->name, sizeof(q->name), "vm0");
    q->mac = o.mac;
    q->mtu = 1500;
    q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    q->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    the_vm = q;
    g.q = q;
    g.mac = o.mac;
    memcpy(g.ip, o.ip.addr, 4);
    g.ping = o.has_ping;
    memcpy(g.target, o.ping.addr, 4);
    g.count = o.count;
    if (q->kick_fd < 0 || q->call_fd < 0) {
        perror("eventfd");
        goto out;
    }
    if ((rc = vnet_port_register(&vmq_ops)) != 0) {
        fprintf(stderr, "%s: register vmq: %s\n", prog, vnet_strerror(rc));
        goto out;
    }

    /* Table, ports, datapath: the same calls vnet-node makes, with "vmq:vm0" as the virtual
     * port. The inner MTU leaves room for VXLAN in a 1500-byte underlay. */
    uint32_t mtu = 1500 - (local.ip.family == VNET_AF_INET6 ? 70 : 50);
    struct vnet_port_cfg vcfg = {.mtu = mtu};
    struct vnet_port_cfg ucfg = {.offload = true};
    if ((rc = vnet_table_create(NULL, &table)) != 0 ||
        (rc = vnet_port_open("vmq:vm0", &vcfg, &vport)) != 0 ||
        (rc = vnet_port_open(o.underlay, &ucfg, &uport)) != 0) {
        fprintf(stderr, "%s: setup: %s\n", prog, vnet_strerror(rc));
        goto out;
    }
    /* The VM's own MAC is local; the statics are the other VMs'. One batch, revision 1. */
    for (int i = 0; i < o.nstatics; i++)
        o.statics[i].vni = o.vni;
    struct vnet_table_op *self = &o.statics[o.nstatics];
    memset(self, 0, sizeof(*self));
    self->type = VNET_TABLE_PUT;
    self->vni = o.vni;
    self->mac = o.mac;
    self->ep = local;
    self->flags = VNET_ENTRY_LOCAL;
    struct vnet_datapath_cfg dcfg = {
        .table = table, .vport = vport, .uport = uport, .vni = o.vni, .mtu = mtu};
    if ((rc = vnet_table_apply(table, o.statics, (size_t)o.nstatics + 1, 1)) != 0 ||
        (rc = vnet_datapath_create(&dcfg, &dp)) != 0 ||
        (rc = vnet_datapath_set_peers(dp, o.peers, (size_t)o.npeers)) != 0 ||
        (rc = vnet_datapath_add_local_mac(dp, &o.mac)) != 0) {
        fprintf(stderr, "%s: datapath: %s\n", prog, vnet_strerror(rc));
        goto out;
    }

    /* One epoll set for everything: the datapath's two fds, the VM's "call" eventfd, the VM's
     * timer, signals and the learn queue. */
    int fds[2];
    vnet_datapath_fds(dp, fds);
    ep = epoll_create1(EPOLL_CLOEXEC);
    sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_interval = {0, 200000000}, .it_value = {0, 200000000}};
    if (ep < 0 || sfd < 0 || tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) != 0 ||
        add_fd(ep, fds[0], TAG_VPORT) || add_fd(ep, fds[1], TAG_UPORT) ||
        add_fd(ep, q->call_fd, TAG_GUEST) || add_fd(ep, tfd, TAG_TICK) ||
        add_fd(ep, sfd, TAG_SIGNAL) || add_fd(ep, vnet_datapath_learn_fd(dp), TAG_LEARN)) {
        perror("epoll");
        goto out;
    }
    char ubuf[VNET_ENDPOINT_STRLEN];
    vnet_endpoint_format(&local, ubuf, sizeof(ubuf));
    printf("up: vmq:vm0 <-> udp %s, vni %u, %d peers\n", ubuf, o.vni, o.npeers);
    fflush(stdout);

    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool quit = false;
    while (!quit) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, 100);
        for (int i = 0; i < n; i++) {
            switch (evs[i].data.u64) {
            case TAG_VPORT:
            case TAG_UPORT:
                /* Bounded work per wake-up: at most 64 packets from each port, then back to
                 * epoll, so the VM and the timer get their turn. Level-triggered epoll
                 * brings us back while packets are left. */
                if ((rc = vnet_datapath_poll(dp, 64)) < 0)
                    fprintf(stderr, "%s: poll: %s\n", prog, vnet_strerror(rc));
                break;
            case TAG_GUEST:
                guest_rx(&g);
                break;
            case TAG_TICK:
                clear_fd(tfd);
                guest_tick(&g);
                break;
            case TAG_LEARN:
                vnet_datapath_learn_drain(dp); /* we are the table's writer thread */
                break;
            case TAG_SIGNAL:
                quit = true;
                break;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= (time_t)o.duration)
            quit = true;
    }
    print_stats(&g, dp);
    status = !o.has_ping || g.echo_replies > 0 ? 0 : 1;
out:
    vnet_datapath_destroy(dp);
    vnet_port_close(uport);
    vnet_port_close(vport);
    vnet_table_destroy(table);
    int all[] = {ep, sfd, tfd, q->kick_fd, q->call_fd};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i] >= 0)
            close(all[i]);
    free(q);
    return status;
}
