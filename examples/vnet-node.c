/* vnet-node: one node of a libvnet overlay.
 *
 * Managed mode: the management daemon keeps a session with the controller, which provides
 * the network's VNI and MTU, this node's MAC and addresses, and every other node:
 *
 *   vnet-node --controller ADDR:PORT --network NAME --name NODE \
 *             --dev tap:NAME --underlay udp:LOCAL_IP:PORT
 *
 * Static mode (no controller): the peers and fixed table entries come from the command line.
 *
 *   vnet-node --dev tap:NAME --underlay udp:LOCAL_IP:PORT --vni N \
 *             --mac MAC --ip ADDR/PREFIX --peer REMOTE_IP:PORT [--peer ...] \
 *             [--static MAC=REMOTE_IP:PORT ...] [--arp IP=MAC ...] [--learn] [--mtu N]
 *
 * Either side may also be raw:IFNAME (AF_PACKET) or xdp:IFNAME (AF_XDP); with --fallback raw an
 * xdp: port that AF_XDP cannot serve here (no permission, no kernel support, the interface has
 * an XDP program already) is opened as raw: instead.
 *
 * It runs in the foreground, logs to stderr, prints its counters on SIGUSR1 and at exit, and
 * exits cleanly on SIGINT/SIGTERM. Exit status: 0 after a clean stop, 1 when setup failed,
 * 2 for a usage error.
 */
#include <sodium.h>
#include <vnet/agent.h>
#include <vnet/crypto.h>
#include <vnet/token.h>
#include <vnet/datapath.h>
#include <vnet/encap.h>
#include <vnet/error.h>
#include <vnet/log.h>
#include <vnet/netdev.h>
#include <vnet/port.h>
#include <vnet/store.h>
#include <vnet/switch_table.h>
#include <vnet/types.h>
#include <vnet/version.h>
#include <vnet/vnet.h>

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MAX_ITEMS  256
#define MAX_QUEUES 16

static const char *prog = "vnet-node";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --controller ADDR:PORT --network NAME --name NODE\n"
            "          [--key FILE (--controller-key KEY | --join TOKEN)]\n"
            "          --dev tap:NAME --underlay udp:LOCAL_IP:PORT [--learn] [--no-offload]\n"
            "          [--fallback raw|none]\n"
            "   or: %s --dev tap:NAME --underlay udp:LOCAL_IP:PORT --vni N --mac MAC\n"
            "          [--ip ADDR/PREFIX ...] --peer REMOTE_IP:PORT [--peer ...]\n"
            "          [--static MAC=REMOTE_IP:PORT ...] [--arp IP=MAC ...] [--learn]\n"
            "          [--mtu N] [--no-arp-proxy] [--no-offload] [--busy-poll US]\n"
            "          [--queues N] [--fallback raw|none]\n"
            "          [--log-level error|warn|info|debug]\n"
            "\n"
            "  --controller the controller's node address (managed mode)\n"
            "  --key        this node's key file (managed mode: authenticated, encrypted session)\n"
            "  --controller-key  the controller's public key, pinned\n"
            "  --join       a join token from 'vnetctl node add': enrols --key (created if\n"
            "               missing) once; it also carries the controller's key\n"
            "  --genkey FILE  write a new key file (mode 0600), print its public key, exit\n"
            "  --pubkey FILE  print the public key of a key file, exit\n"
            "  --network    the network this node belongs to (managed mode)\n"
            "  --name       this node's name in it (managed mode)\n"
            "  --dev        the virtual side: tap:NAME creates (or attaches to) a TAP device;\n"
            "               raw:IFNAME attaches to an existing interface (a VM's, a bridge port);\n"
            "               xdp:IFNAME does the same with AF_XDP\n"
            "  --underlay   the physical side: udp:IP:PORT binds the VXLAN socket there;\n"
            "               raw:IFNAME,local=IP:PORT sends and receives whole frames on IFNAME;\n"
            "               xdp:IFNAME,local=IP:PORT does the same with AF_XDP\n"
            "  --fallback   raw: open an xdp: --dev or --underlay as raw: (AF_PACKET) when\n"
            "               AF_XDP is not permitted, not supported by the kernel, or the\n"
            "               interface has an XDP program already; none (default): that is\n"
            "               an error\n"
            "  --vni        the network's 24-bit VXLAN network identifier\n"
            "  --mac        the TAP's virtual MAC\n"
            "  --ip         an address for the TAP (repeatable; IPv4 or IPv6 with prefix)\n"
            "  --peer       another node's underlay endpoint: gets broadcast and unknown\n"
            "               unicast (repeatable)\n"
            "  --static     a fixed switch-table entry (repeatable); never moved by learning\n"
            "  --arp        answer ARP/ND for IP with MAC locally (repeatable)\n"
            "  --learn      learn MAC -> endpoint from frames of known peers\n"
            "  --mtu        the TAP's MTU (default: 1500 minus the encapsulation overhead)\n"
            "  --no-offload no TSO/checksum offload on the TAP, no UDP GSO/GRO (slower;\n"
            "               for debugging and for kernels without them)\n"
            "  --queues     static mode: N TAP queues and N UDP sockets, one worker thread\n"
            "               each (default 1: one thread does everything)\n"
            "  --busy-poll  keep polling this many microseconds after the last packet\n"
            "               before sleeping (default 0: sleep at once; spinning only pays\n"
            "               with a core to spare)\n",
            prog, prog);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s --help'.\n", prog);
    return 2;
}

struct opts {
    const char *dev, *underlay;
    const char *controller, *network, *name;
    const char *key_file, *controller_key, *join, *genkey, *pubkey_file;
    uint32_t vni;
    bool have_vni, have_mac, learn, no_arp_proxy, no_offload;
    bool fallback_raw; /* --fallback raw */
    struct vnet_mac mac;
    struct vnet_prefix ips[16];
    int nips;
    struct vnet_endpoint peers[MAX_ITEMS];
    int npeers;
    struct vnet_table_op statics[MAX_ITEMS * 2];
    int nstatics;
    uint32_t mtu;
    uint32_t busy_poll_us;
    unsigned queues;
};

static int parse_pair(const char *arg, char *left, size_t leftlen, const char **right)
{
    const char *eq = strchr(arg, '=');
    if (!eq || (size_t)(eq - arg) >= leftlen)
        return -1;
    memcpy(left, arg, (size_t)(eq - arg));
    left[eq - arg] = '\0';
    *right = eq + 1;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    enum {
        O_STATIC = 256,
        O_ARP,
        O_LEARN,
        O_MTU,
        O_NOARP,
        O_LOG,
        O_VERSION,
        O_NOOFF,
        O_BUSY,
        O_CTRL,
        O_NET,
        O_NAME,
        O_QUEUES,
        O_KEY,
        O_CTLKEY,
        O_JOIN,
        O_GENKEY,
        O_PUBKEY,
        O_FALLBACK
    };
    static const struct option longopts[] = {
        {"dev", required_argument, NULL, 'd'},
        {"underlay", required_argument, NULL, 'u'},
        {"vni", required_argument, NULL, 'n'},
        {"mac", required_argument, NULL, 'm'},
        {"ip", required_argument, NULL, 'i'},
        {"peer", required_argument, NULL, 'p'},
        {"static", required_argument, NULL, O_STATIC},
        {"arp", required_argument, NULL, O_ARP},
        {"learn", no_argument, NULL, O_LEARN},
        {"mtu", required_argument, NULL, O_MTU},
        {"no-arp-proxy", no_argument, NULL, O_NOARP},
        {"no-offload", no_argument, NULL, O_NOOFF},
        {"busy-poll", required_argument, NULL, O_BUSY},
        {"controller", required_argument, NULL, O_CTRL},
        {"network", required_argument, NULL, O_NET},
        {"name", required_argument, NULL, O_NAME},
        {"queues", required_argument, NULL, O_QUEUES},
        {"key", required_argument, NULL, O_KEY},
        {"controller-key", required_argument, NULL, O_CTLKEY},
        {"join", required_argument, NULL, O_JOIN},
        {"genkey", required_argument, NULL, O_GENKEY},
        {"pubkey", required_argument, NULL, O_PUBKEY},
        {"fallback", required_argument, NULL, O_FALLBACK},
        {"log-level", required_argument, NULL, O_LOG},
        {"version", no_argument, NULL, O_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char left[64];
    const char *right;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->dev = optarg;
            break;
        case 'u':
            o->underlay = optarg;
            break;
        case 'n':
            if (vnet_vni_parse(optarg, &o->vni))
                return usage_error("bad --vni '%s': want 0..16777215", optarg);
            o->have_vni = true;
            break;
        case 'm':
            if (vnet_mac_parse(optarg, &o->mac))
                return usage_error("bad --mac '%s': want xx:xx:xx:xx:xx:xx", optarg);
            if (vnet_mac_is_multicast(&o->mac))
                return usage_error("bad --mac '%s': a multicast address", optarg);
            o->have_mac = true;
            break;
        case 'i':
            if (o->nips == 16)
                return usage_error("too many --ip (max 16): '%s'", optarg);
            if (vnet_prefix_parse(optarg, &o->ips[o->nips]))
                return usage_error("bad --ip '%s': want ADDR/PREFIX", optarg);
            o->nips++;
            break;
        case 'p':
            if (o->npeers == MAX_ITEMS)
                return usage_error("too many --peer: '%s'", optarg);
            if (vnet_endpoint_parse(optarg, &o->peers[o->npeers]))
                return usage_error("bad --peer '%s': want IP:PORT or [IPv6]:PORT", optarg);
            o->npeers++;
            break;
        case O_STATIC: {
            struct vnet_table_op *op = &o->statics[o->nstatics];
            if (o->nstatics == MAX_ITEMS * 2)
                return usage_error("too many --static/--arp: '%s'", optarg);
            memset(op, 0, sizeof(*op));
            op->type = VNET_TABLE_PUT;
            op->flags = VNET_ENTRY_STATIC;
            if (parse_pair(optarg, left, sizeof(left), &right) || vnet_mac_parse(left, &op->mac) ||
                vnet_endpoint_parse(right, &op->ep))
                return usage_error("bad --static '%s': want MAC=IP:PORT", optarg);
            o->nstatics++;
            break;
        }
        case O_ARP: {
            struct vnet_table_op *op = &o->statics[o->nstatics];
            if (o->nstatics == MAX_ITEMS * 2)
                return usage_error("too many --static/--arp: '%s'", optarg);
            memset(op, 0, sizeof(*op));
            op->type = VNET_TABLE_PUT_IP;
            if (parse_pair(optarg, left, sizeof(left), &right) || vnet_ip_parse(left, &op->ip) ||
                vnet_mac_parse(right, &op->mac))
                return usage_error("bad --arp '%s': want IP=MAC", optarg);
            o->nstatics++;
            break;
        }
        case O_LEARN:
            o->learn = true;
            break;
        case O_MTU: {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end || v < 576 || v > 65000)
                return usage_error("bad --mtu '%s': want 576..65000", optarg);
            o->mtu = (uint32_t)v;
            break;
        }
        case O_NOARP:
            o->no_arp_proxy = true;
            break;
        case O_NOOFF:
            o->no_offload = true;
            break;
        case O_CTRL: {
            struct vnet_endpoint ep;
            if (vnet_endpoint_parse(optarg, &ep))
                return usage_error("bad --controller '%s': want IP:PORT or [IPv6]:PORT", optarg);
            o->controller = optarg;
            break;
        }
        case O_KEY:
            o->key_file = optarg;
            break;
        case O_CTLKEY: {
            uint8_t pub[VNET_KEY_LEN];
            if (vnet_pubkey_parse(optarg, pub))
                return usage_error("bad --controller-key '%s': want the 43 characters that "
                                   "vnet-controller --pubkey prints",
                                   optarg);
            o->controller_key = optarg;
            break;
        }
        case O_JOIN: {
            uint8_t pub[VNET_KEY_LEN], sec[VNET_JOIN_SECRET_LEN];
            if (vnet_join_token_parse(optarg, pub, sec))
                return usage_error("bad --join '%s': want the token vnetctl node add printed",
                                   optarg);
            o->join = optarg;
            break;
        }
        case O_GENKEY:
            o->genkey = optarg;
            break;
        case O_PUBKEY:
            o->pubkey_file = optarg;
            break;
        case O_QUEUES: {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (!optarg[0] || *end || v < 1 || v > MAX_QUEUES)
                return usage_error("bad --queues '%s': 1..16", optarg);
            o->queues = (unsigned)v;
            break;
        }
        case O_NET:
        case O_NAME:
            if (!optarg[0] || strlen(optarg) >= VNET_NAME_MAX)
                return usage_error("bad name '%s': 1 to 63 characters", optarg);
            if (c == O_NET)
                o->network = optarg;
            else
                o->name = optarg;
            break;
        case O_BUSY: {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end || v > 1000000)
                return usage_error("bad --busy-poll '%s': want 0..1000000 (microseconds)", optarg);
            o->busy_poll_us = (uint32_t)v;
            break;
        }
        case O_FALLBACK:
            if (strcmp(optarg, "raw") != 0 && strcmp(optarg, "none") != 0)
                return usage_error("bad --fallback '%s': want raw or none", optarg);
            o->fallback_raw = strcmp(optarg, "raw") == 0;
            break;
        case O_LOG: {
            enum vnet_log_level l;
            if (vnet_log_level_parse(optarg, &l))
                return usage_error("bad --log-level '%s': error, warn, info or debug", optarg);
            vnet_log_set_level(l);
            break;
        }
        case O_VERSION:
            printf("vnet-node %s\n", vnet_version());
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (o->genkey || o->pubkey_file)
        return 0; /* key management: nothing else needed */
    if (!o->dev)
        return usage_error("%s", "--dev is required (tap:NAME)");
    if (!o->underlay)
        return usage_error("%s", "--underlay is required (udp:IP:PORT)");
    if (o->controller || o->network || o->name) {
        if (!o->controller || !o->network || !o->name)
            return usage_error("%s", "managed mode needs --controller, --network and --name");
        if (o->queues > 1)
            return usage_error("%s", "--queues is for static mode (managed mode runs one queue)");
        if ((o->join || o->controller_key) && !o->key_file)
            return usage_error("%s", "--join and --controller-key need --key FILE");
        if (o->key_file && !o->join && !o->controller_key)
            return usage_error("%s", "--key needs --controller-key KEY (or --join TOKEN)");
        if (o->have_vni || o->have_mac || o->npeers || o->nstatics || o->nips)
            return usage_error("%s", "--vni, --mac, --ip, --peer, --static and --arp come from "
                                     "the controller in managed mode");
        return 0;
    }
    if (!o->have_vni)
        return usage_error("%s", "--vni is required");
    if (!o->have_mac)
        return usage_error("%s", "--mac is required");
    return 0;
}

static void print_stats(struct vnet_datapath *dp, struct vnet_table *t)
{
    struct vnet_datapath_stats st;
    vnet_datapath_get_stats(dp, &st);
    vnet_log(VNET_LOG_WARN, "node",
             "virtual rx %llu pkts %llu B, tx %llu pkts %llu B; underlay rx %llu pkts %llu B, "
             "tx %llu pkts %llu B; flooded %llu, arp %llu, nd %llu, learned %llu, too_big %llu, "
             "gso %llu, gro %llu, table %zu",
             (unsigned long long)st.vport.rx_packets, (unsigned long long)st.vport.rx_bytes,
             (unsigned long long)st.vport.tx_packets, (unsigned long long)st.vport.tx_bytes,
             (unsigned long long)st.uport.rx_packets, (unsigned long long)st.uport.rx_bytes,
             (unsigned long long)st.uport.tx_packets, (unsigned long long)st.uport.tx_bytes,
             (unsigned long long)st.flooded, (unsigned long long)st.arp_replies,
             (unsigned long long)st.nd_replies, (unsigned long long)st.learned,
             (unsigned long long)st.too_big_sent, (unsigned long long)st.gso_frames,
             (unsigned long long)st.gro_frames, vnet_table_count(t));
    char line[1024];
    size_t off = 0;
    line[0] = '\0';
    for (int i = 0; i < VNET_DP_DROP__MAX; i++)
        if (st.drops[i] && off < sizeof(line))
            off += (size_t)snprintf(line + off, sizeof(line) - off, " %s=%llu",
                                    vnet_dp_drop_name((enum vnet_dp_drop)i),
                                    (unsigned long long)st.drops[i]);
    for (int i = 1; i < VNET_DROP__MAX && i < 32; i++)
        if (st.decap[i] && off < sizeof(line))
            off += (size_t)snprintf(line + off, sizeof(line) - off, " decap_%s=%llu",
                                    vnet_drop_reason_name((enum vnet_drop_reason)i),
                                    (unsigned long long)st.decap[i]);
    vnet_log(VNET_LOG_WARN, "node", "drops:%s", off ? line : " none");
    struct vnet_dp_peer_stats ps[64];
    size_t n = vnet_datapath_peer_stats(dp, ps, 64);
    for (size_t i = 0; i < n && i < 64; i++) {
        char ep[VNET_ENDPOINT_STRLEN];
        vnet_endpoint_format(&ps[i].ep, ep, sizeof(ep));
        vnet_log(VNET_LOG_WARN, "node", "peer %s: tx %llu pkts %llu B, rx %llu pkts %llu B", ep,
                 (unsigned long long)ps[i].tx_packets, (unsigned long long)ps[i].tx_bytes,
                 (unsigned long long)ps[i].rx_packets, (unsigned long long)ps[i].rx_bytes);
    }
}

/* Opens the port of --dev or --underlay (what) and logs why when it cannot. With --fallback raw,
 * an xdp: spec that AF_XDP cannot serve here is opened as raw: (AF_PACKET), which takes the same
 * IFNAME[,local=IP:PORT]: VNET_EPERM (no CAP_BPF/CAP_NET_ADMIN), VNET_ENOTSUP (no AF_XDP or XDP
 * in the kernel), VNET_EBUSY (the interface has an XDP program already). Other errors (a bad
 * spec, no such interface) stay errors: raw would fail the same way. */
static int open_port(const char *what, const char *spec, const struct vnet_port_cfg *cfg,
                     bool fallback_raw, struct vnet_port **out)
{
    char raw[256];
    int rc = vnet_port_open(spec, cfg, out);
    if ((rc == VNET_EPERM || rc == VNET_ENOTSUP || rc == VNET_EBUSY) && fallback_raw &&
        strncmp(spec, "xdp:", 4) == 0 &&
        (size_t)snprintf(raw, sizeof(raw), "raw:%s", spec + 4) < sizeof(raw)) {
        vnet_log(VNET_LOG_WARN, "node", "%s %s: %s: falling back to %s", what, spec,
                 vnet_strerror(rc), raw);
        spec = raw;
        rc = vnet_port_open(spec, cfg, out);
    }
    if (rc)
        vnet_log(VNET_LOG_ERROR, "node", "%s %s: %s", what, spec, vnet_strerror(rc));
    return rc;
}

/* ---- managed mode ---- */

struct managed {
    struct opts *o;
    uv_loop_t loop;
    struct vnet_table *table;
    struct vnet_port *vport, *uport;
    struct vnet_datapath *dp;
    struct vnet_agent *agent;
    uv_poll_t pv, pu, pl;
    uv_signal_t sig[3];
    bool polling;
    char ifname[16];
    struct vnet_endpoint local;
    int status;
    bool has_kp;
    struct vnet_keypair kp; /* this node's key: the data plane's, in a secure network */
};

static void on_port(uv_poll_t *h, int status, int events)
{
    struct managed *m = h->data;
    (void)events;
    if (status < 0 || !m->dp)
        return;
    unsigned which = h == &m->pv ? VNET_DP_VPORT : VNET_DP_UPORT;
    int n = vnet_datapath_poll_ports(m->dp, which, 0);
    if (n < 0)
        vnet_log(VNET_LOG_WARN, "node", "datapath: %s", vnet_strerror(n));
}

static void on_learn(uv_poll_t *h, int status, int events)
{
    struct managed *m = h->data;
    (void)events;
    if (status == 0 && m->dp) {
        int n = vnet_datapath_learn_drain(m->dp);
        if (n < 0)
            vnet_log(VNET_LOG_WARN, "node", "learning: %s", vnet_strerror(n));
    }
}

static void on_welcome(void *arg, const struct vnet_network *net, const struct vnet_node *self)
{
    struct managed *m = arg;
    char mac[VNET_MAC_STRLEN];
    vnet_mac_format(&self->mac, mac, sizeof(mac));
    int rc = vnet_netdev_set_mtu(m->ifname, net->mtu);
    if (rc)
        vnet_log(VNET_LOG_WARN, "node", "MTU %u on %s: %s", net->mtu, m->ifname, vnet_strerror(rc));
    rc = vnet_netdev_set_mac(m->ifname, &self->mac);
    if (rc)
        vnet_log(VNET_LOG_WARN, "node", "MAC %s on %s: %s", mac, m->ifname, vnet_strerror(rc));
    for (int i = 0; i < VNET_NODE_IPS; i++) {
        if (!self->ips[i].family)
            continue;
        struct vnet_prefix p = {.ip = self->ips[i]};
        const struct vnet_prefix *sub =
            self->ips[i].family == VNET_AF_INET ? &net->subnet4 : &net->subnet6;
        p.len = sub->ip.family ? sub->len : (self->ips[i].family == VNET_AF_INET ? 32 : 128);
        rc = vnet_netdev_add_addr(m->ifname, &p);
        if (rc)
            vnet_log(VNET_LOG_WARN, "node", "address on %s: %s", m->ifname, vnet_strerror(rc));
    }
    vnet_netdev_set_up(m->ifname, true);
    if (!m->dp) {
        struct vnet_datapath_cfg dcfg = {.table = m->table,
                                         .vport = m->vport,
                                         .uport = m->uport,
                                         .vni = net->vni,
                                         .learn = m->o->learn,
                                         .mtu = net->mtu};
        if (net->mode == VNET_MODE_SECURE) {
            if (!m->has_kp) {
                vnet_log(VNET_LOG_ERROR, "node",
                         "network %s is secure: vnet-node needs --key to take part", net->name);
                return;
            }
            dcfg.secure = true;
            dcfg.key = &m->kp;
        }
        rc = vnet_datapath_create(&dcfg, &m->dp);
        if (rc) {
            vnet_log(VNET_LOG_ERROR, "node", "datapath: %s", vnet_strerror(rc));
            return;
        }
        int fds[2];
        vnet_datapath_fds(m->dp, fds);
        uv_poll_init(&m->loop, &m->pv, fds[0]);
        uv_poll_init(&m->loop, &m->pu, fds[1]);
        uv_poll_init(&m->loop, &m->pl, vnet_datapath_learn_fd(m->dp));
        m->pv.data = m->pu.data = m->pl.data = m;
        uv_poll_start(&m->pv, UV_READABLE, on_port);
        uv_poll_start(&m->pu, UV_READABLE, on_port);
        uv_poll_start(&m->pl, UV_READABLE, on_learn);
        m->polling = true;
    }
    vnet_datapath_add_local_mac(m->dp, &self->mac);
    vnet_log(VNET_LOG_WARN, "node", "up: %s in network %s (vni %u, mtu %u, %s) as %s, mac %s",
             m->ifname, net->name, net->vni, net->mtu,
             net->mode == VNET_MODE_SECURE ? vnet_seal_suite_name(vnet_seal_suite_auto()) : "plain",
             self->name, mac);
}

static void on_peers(void *arg, const struct vnet_agent_peer *peers, size_t n)
{
    struct managed *m = arg;
    if (!m->dp)
        return;
    struct vnet_dp_peer *v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        v[i].ep = peers[i].ep;
        v[i].id = peers[i].id;
        v[i].has_pubkey = peers[i].has_pubkey;
        memcpy(v[i].pubkey, peers[i].pubkey, sizeof(v[i].pubkey));
    }
    int rc = vnet_datapath_set_peer_list(m->dp, v, n);
    if (rc)
        vnet_log(VNET_LOG_WARN, "node", "peers: %s", vnet_strerror(rc));
    free(v);
}

static void on_state(void *arg, int connected)
{
    (void)arg;
    vnet_log(VNET_LOG_WARN, "node", "controller %s", connected ? "connected" : "disconnected");
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct managed *m = h->data;
    if (signum == SIGUSR1) {
        if (m->dp)
            print_stats(m->dp, m->table);
        struct vnet_agent_stats as;
        vnet_agent_get_stats(m->agent, &as);
        vnet_log(VNET_LOG_WARN, "node",
                 "controller: %s, revision %llu, %llu connects, %llu snapshots, %llu deltas",
                 as.connected ? "connected" : "disconnected", (unsigned long long)as.revision,
                 (unsigned long long)as.connects, (unsigned long long)as.snapshots,
                 (unsigned long long)as.deltas);
        return;
    }
    if (m->dp)
        print_stats(m->dp, m->table);
    vnet_agent_destroy(m->agent);
    m->agent = NULL;
    uv_walk(&m->loop, close_walk, NULL); /* the loop ends when every handle is closed */
}

static int run_managed(struct opts *o, const struct vnet_endpoint *local)
{
    struct managed m;
    memset(&m, 0, sizeof(m));
    m.o = o;
    m.local = *local;
    m.status = 1;
    uv_loop_init(&m.loop);
    int rc = vnet_table_create(NULL, &m.table);
    struct vnet_port_cfg vcfg = {.up = true, .offload = !o->no_offload};
    if (!rc)
        rc = open_port("--dev", o->dev, &vcfg, o->fallback_raw, &m.vport);
    struct vnet_port_cfg ucfg = {.offload = !o->no_offload};
    if (!rc)
        rc = open_port("--underlay", o->underlay, &ucfg, o->fallback_raw, &m.uport);
    if (!rc) {
        struct vnet_port_info info;
        vnet_port_get_info(m.vport, &info);
        snprintf(m.ifname, sizeof(m.ifname), "%s", info.ifname);
        struct vnet_keypair kp;
        uint8_t ctl_pub[VNET_KEY_LEN], join_secret[VNET_JOIN_SECRET_LEN];
        bool use_key = o->key_file != NULL;
        if (use_key) {
            char err[256] = "";
            if (o->join)
                vnet_join_token_parse(o->join, ctl_pub, join_secret);
            else
                vnet_pubkey_parse(o->controller_key, ctl_pub);
            if (o->controller_key && o->join) {
                uint8_t given[VNET_KEY_LEN];
                vnet_pubkey_parse(o->controller_key, given);
                if (memcmp(given, ctl_pub, VNET_KEY_LEN) != 0) {
                    vnet_log(VNET_LOG_ERROR, "node",
                             "--controller-key and the key in --join differ");
                    rc = VNET_EINVAL;
                }
            }
            int lrc = rc ? rc : vnet_key_load(o->key_file, &kp, err, sizeof(err));
            if (lrc == VNET_ENOENT && o->join) { /* enrolling: make the key now */
                lrc = vnet_key_generate(&kp);
                if (!lrc)
                    lrc = vnet_key_save(o->key_file, &kp, err, sizeof(err));
                if (!lrc)
                    vnet_log(VNET_LOG_WARN, "node", "created key %s", o->key_file);
            }
            if (lrc && !rc) {
                vnet_log(VNET_LOG_ERROR, "node", "--key %s: %s", o->key_file,
                         err[0] ? err : vnet_strerror(lrc));
                rc = lrc;
            }
        }
        struct vnet_agent_cfg acfg = {.loop = &m.loop,
                                      .controller = o->controller,
                                      .network = o->network,
                                      .node = o->name,
                                      .table = m.table,
                                      .local = *local,
                                      .cb = {on_welcome, on_peers, on_state},
                                      .cb_arg = &m};
        if (use_key && !rc) {
            m.kp = kp;
            m.has_kp = true;
        }
        if (use_key) {
            acfg.key = &kp;
            acfg.controller_pub = ctl_pub;
            acfg.join_secret = o->join ? join_secret : NULL;
        }
        if (!rc)
            rc = vnet_agent_create(&acfg, &m.agent);
        if (use_key) {
            vnet_key_wipe(&kp);
            sodium_memzero(join_secret, sizeof(join_secret));
        }
        if (rc)
            vnet_log(VNET_LOG_ERROR, "node", "agent: %s", vnet_strerror(rc));
    }
    if (!rc) {
        static const int signums[3] = {SIGINT, SIGTERM, SIGUSR1};
        for (int i = 0; i < 3; i++) {
            uv_signal_init(&m.loop, &m.sig[i]);
            m.sig[i].data = &m;
            uv_signal_start(&m.sig[i], on_signal, signums[i]);
        }
        vnet_log(VNET_LOG_WARN, "node", "managed: %s, joining %s as %s via %s", m.ifname,
                 o->network, o->name, o->controller);
        uv_run(&m.loop, UV_RUN_DEFAULT);
        vnet_log(VNET_LOG_WARN, "node", "stopped");
        m.status = 0;
    } else if (m.agent) {
        vnet_agent_destroy(m.agent);
    }
    uv_walk(&m.loop, close_walk, NULL);
    uv_run(&m.loop, UV_RUN_DEFAULT);
    uv_loop_close(&m.loop);
    vnet_datapath_destroy(m.dp);
    vnet_key_wipe(&m.kp);
    vnet_port_close(m.uport);
    vnet_port_close(m.vport);
    vnet_table_destroy(m.table);
    return m.status;
}

/* Several queues: one worker thread per queue; this thread only writes the table (learned
 * entries) and handles signals. */
static int run_queues(struct vnet_datapath **dps, unsigned nq, int sfd, struct vnet_table *table)
{
    struct pollfd pfd[1 + MAX_QUEUES];
    pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
    for (unsigned q = 0; q < nq; q++) {
        pfd[1 + q] = (struct pollfd){.fd = vnet_datapath_learn_fd(dps[q]), .events = POLLIN};
        int rc = vnet_datapath_start(dps[q]);
        if (rc) {
            vnet_log(VNET_LOG_ERROR, "node", "worker %u: %s", q, vnet_strerror(rc));
            return 1;
        }
    }
    bool quit = false;
    while (!quit) {
        if (poll(pfd, 1 + nq, -1) < 0)
            continue;
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo != SIGUSR1) {
                    quit = true;
                    continue;
                }
                for (unsigned q = 0; q < nq; q++) {
                    vnet_log(VNET_LOG_WARN, "node", "queue %u:", q);
                    print_stats(dps[q], table);
                }
            }
        }
        for (unsigned q = 0; q < nq; q++)
            if (pfd[1 + q].revents & POLLIN)
                vnet_datapath_learn_drain(dps[q]);
    }
    for (unsigned q = 0; q < nq; q++) {
        vnet_datapath_stop(dps[q]);
        vnet_log(VNET_LOG_WARN, "node", "queue %u:", q);
        print_stats(dps[q], table);
    }
    vnet_log(VNET_LOG_WARN, "node", "stopped");
    return 0;
}

/* The local underlay endpoint of an --underlay spec: "udp:IP[:PORT]", or
 * "raw|xdp:IFNAME,local=IP[:PORT]" (the port defaults to 4789, as the backends do). */
static int underlay_local(const char *spec, struct vnet_endpoint *out)
{
    const char *ep;
    if (strncmp(spec, "udp:", 4) == 0) {
        ep = spec + 4;
    } else if ((strncmp(spec, "raw:", 4) == 0 || strncmp(spec, "xdp:", 4) == 0) &&
               strstr(spec, ",local=")) {
        ep = strstr(spec, ",local=") + 7;
    } else {
        return -1;
    }
    if (vnet_endpoint_parse(ep, out) == 0)
        return 0;
    char with_port[VNET_ENDPOINT_STRLEN + 8];
    snprintf(with_port, sizeof(with_port),
             strchr(ep, ':') && ep[0] != '[' ? "[%s]:4789" : "%s:4789", ep);
    return vnet_endpoint_parse(with_port, out) == 0 ? 0 : -1;
}

/* --genkey FILE / --pubkey FILE */
static int key_command(const char *genkey, const char *pubkey_file)
{
    struct vnet_keypair kp;
    char err[256] = "", pub[VNET_PUBKEY_STRLEN];
    int rc = genkey ? vnet_key_generate(&kp) : vnet_key_load(pubkey_file, &kp, err, sizeof(err));
    if (!rc && genkey)
        rc = vnet_key_save(genkey, &kp, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", prog, genkey ? genkey : pubkey_file,
                err[0] ? err : vnet_strerror(rc));
        return 1;
    }
    vnet_pubkey_format(kp.pub, pub, sizeof(pub));
    vnet_key_wipe(&kp);
    printf("%s\n", pub);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof(o));
    o.busy_poll_us = 0;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    if (o.genkey || o.pubkey_file)
        return key_command(o.genkey, o.pubkey_file);

    struct vnet_endpoint local;
    if (underlay_local(o.underlay, &local))
        return usage_error("bad --underlay '%s': want udp:IP:PORT or raw|xdp:IFNAME,local=IP:PORT",
                           o.underlay);
    if (o.controller)
        return run_managed(&o, &local);
    uint32_t overhead =
        local.ip.family == VNET_AF_INET6 ? VNET_ENCAP_OVERHEAD_V6 : VNET_ENCAP_OVERHEAD_V4;
    uint32_t mtu = o.mtu ? o.mtu : 1500 - overhead;

    /* Block the signals we handle before any thread exists. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGUSR1);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);

    struct vnet_table *table = NULL;
    struct vnet_port *vport = NULL, *uport = NULL;
    struct vnet_datapath *dps[MAX_QUEUES] = {NULL};
    struct vnet_datapath *dp = NULL;
    unsigned nq = o.queues ? o.queues : 1;
    int status = 1;

    rc = vnet_table_create(NULL, &table);
    if (rc) {
        vnet_log(VNET_LOG_ERROR, "node", "switch table: %s", vnet_strerror(rc));
        goto out;
    }
    struct vnet_port_cfg vcfg = {.mtu = mtu,
                                 .mac = o.mac,
                                 .set_mac = true,
                                 .up = true,
                                 .offload = !o.no_offload,
                                 .queues = nq};
    rc = open_port("--dev", o.dev, &vcfg, o.fallback_raw, &vport);
    if (rc)
        goto out;
    struct vnet_port_info vinfo;
    vnet_port_get_info(vport, &vinfo);
    for (int i = 0; i < o.nips; i++) {
        rc = vnet_netdev_add_addr(vinfo.ifname, &o.ips[i]);
        if (rc) {
            char buf[VNET_PREFIX_STRLEN];
            vnet_prefix_format(&o.ips[i], buf, sizeof(buf));
            vnet_log(VNET_LOG_ERROR, "node", "--ip %s on %s: %s", buf, vinfo.ifname,
                     vnet_strerror(rc));
            goto out;
        }
    }
    struct vnet_port_cfg ucfg = {.offload = !o.no_offload, .queues = nq};
    rc = open_port("--underlay", o.underlay, &ucfg, o.fallback_raw, &uport);
    if (rc)
        goto out;

    /* The table: our own MAC (local), the static entries and the ARP bindings. */
    struct vnet_table_op self;
    memset(&self, 0, sizeof(self));
    self.type = VNET_TABLE_PUT;
    self.vni = o.vni;
    self.mac = o.mac;
    self.ep = local;
    self.flags = VNET_ENTRY_LOCAL;
    for (int i = 0; i < o.nstatics; i++)
        o.statics[i].vni = o.vni;
    o.statics[o.nstatics] = self;
    for (int i = 0; i < o.nips; i++) {
        struct vnet_table_op *b = &o.statics[o.nstatics + 1 + i];
        memset(b, 0, sizeof(*b));
        b->type = VNET_TABLE_PUT_IP;
        b->vni = o.vni;
        b->mac = o.mac;
        b->ip = o.ips[i].ip;
    }
    rc = vnet_table_apply(table, o.statics, (size_t)(o.nstatics + 1 + o.nips), 1);
    if (rc) {
        vnet_log(VNET_LOG_ERROR, "node", "static entries: %s", vnet_strerror(rc));
        goto out;
    }

    struct vnet_datapath_cfg dcfg = {.table = table,
                                     .vport = vport,
                                     .uport = uport,
                                     .vni = o.vni,
                                     .learn = o.learn,
                                     .no_arp_proxy = o.no_arp_proxy,
                                     .mtu = mtu};
    for (unsigned q = 0; q < nq && !rc; q++) {
        dcfg.queue = q;
        rc = vnet_datapath_create(&dcfg, &dps[q]);
        if (!rc)
            rc = vnet_datapath_set_peers(dps[q], o.peers, (size_t)o.npeers);
        if (!rc)
            rc = vnet_datapath_add_local_mac(dps[q], &o.mac);
    }
    if (rc) {
        vnet_log(VNET_LOG_ERROR, "node", "datapath: %s", vnet_strerror(rc));
        goto out;
    }
    dp = dps[0];
    char ubuf[VNET_ENDPOINT_STRLEN];
    vnet_endpoint_format(&local, ubuf, sizeof(ubuf));
    vnet_log(VNET_LOG_WARN, "node",
             "up: %s (mtu %u) <-> udp %s, vni %u, %d peers, %d static%s, %u queue%s", vinfo.ifname,
             mtu, ubuf, o.vni, o.npeers, o.nstatics, o.learn ? ", learning" : "", nq,
             nq > 1 ? "s" : "");
    if (nq > 1) {
        status = run_queues(dps, nq, sfd, table);
        goto out;
    }

    int fds[2];
    vnet_datapath_fds(dp, fds);
    struct pollfd pfd[4] = {
        {.fd = fds[0], .events = POLLIN},
        {.fd = fds[1], .events = POLLIN},
        {.fd = sfd, .events = POLLIN},
        {.fd = vnet_datapath_learn_fd(dp), .events = POLLIN},
    };
    /* Run to completion: read only the ports poll(2) says are readable, and keep polling
     * without sleeping for a short while after the last packet (busy polling): waking a
     * sleeping thread costs tens of microseconds per hop on a virtual machine. */
    struct timespec last = {0, 0};
    bool quit = false;
    while (!quit) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long idle_us = (now.tv_sec - last.tv_sec) * 1000000L + (now.tv_nsec - last.tv_nsec) / 1000;
        int timeout = idle_us < (long)o.busy_poll_us ? 0 : -1;
        if (poll(pfd, 4, timeout) < 0)
            continue;
        if (pfd[2].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGUSR1)
                    print_stats(dp, table);
                else
                    quit = true;
            }
        }
        if (pfd[3].revents & POLLIN) {
            int n = vnet_datapath_learn_drain(dp);
            if (n < 0)
                vnet_log(VNET_LOG_WARN, "node", "learning: %s", vnet_strerror(n));
        }
        unsigned which =
            (pfd[0].revents ? VNET_DP_VPORT : 0) | (pfd[1].revents ? VNET_DP_UPORT : 0);
        if (!which)
            continue;
        int n = vnet_datapath_poll_ports(dp, which, 0);
        if (n < 0)
            vnet_log(VNET_LOG_WARN, "node", "datapath: %s", vnet_strerror(n));
        if (n > 0)
            last = now;
    }
    print_stats(dp, table);
    vnet_log(VNET_LOG_WARN, "node", "stopped");
    status = 0;
out:
    for (unsigned q = 0; q < nq; q++)
        vnet_datapath_destroy(dps[q]);
    vnet_port_close(uport);
    vnet_port_close(vport);
    vnet_table_destroy(table);
    if (sfd >= 0)
        close(sfd);
    return status;
}
