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
#include <vnet/crypto.h>
#include <vnet/node.h>
#include <vnet/token.h>
#include <vnet/vnet.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "metrics_http.h"

#define MAX_ITEMS 256
#define ULL(x)    ((unsigned long long)(x))

static const char *prog = "vnet-node";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --controller ADDR:PORT --network NAME --name NODE\n"
            "          [--key FILE (--controller-key KEY | --join TOKEN)] [--allow-plain]\n"
            "          --dev tap:NAME --underlay udp:LOCAL_IP:PORT [--learn] [--no-offload]\n"
            "          [--queues N] [--busy-poll US] [--fallback raw|none]\n"
            "   or: %s --dev tap:NAME --underlay udp:LOCAL_IP:PORT --vni N --mac MAC\n"
            "          [--ip ADDR/PREFIX ...] --peer REMOTE_IP:PORT [--peer ...]\n"
            "          [--static MAC=REMOTE_IP:PORT ...] [--arp IP=MAC ...] [--learn]\n"
            "          [--mtu N] [--no-arp-proxy] [--no-offload] [--busy-poll US]\n"
            "          [--queues N] [--fallback raw|none]\n"
            "          [--log-level error|warn|info|debug] [--metrics IP:PORT]\n"
            "\n"
            "  --controller the controller's node address (managed mode)\n"
            "  --key        this node's key file (managed mode: authenticated, encrypted session)\n"
            "  --controller-key  the controller's public key, pinned\n"
            "  --join       a join token from 'vnetctl node add': enrols --key (created if\n"
            "               missing) once; it also carries the controller's key\n"
            "  --allow-plain  with --key, take part in a plain network too (unencrypted VXLAN:\n"
            "               readable and injectable on the path); refused without it\n"
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
            "  --queues     N TAP queues and N UDP sockets, one worker thread each (default\n"
            "               1: one thread does everything); secure networks: 1 only\n"
            "  --busy-poll  keep polling this many microseconds after the last packet\n"
            "               before sleeping (default 0: sleep at once; spinning only pays\n"
            "               with a core to spare)\n"
            "  --metrics    serve Prometheus metrics at http://IP:PORT/metrics (counters,\n"
            "               per-peer traffic and round-trip time, drops by reason)\n",
            prog, prog);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s --help'.\n", prog);
    return 2;
}

/* What the command line gives: the node's options and the arrays they point into. */
struct opts {
    struct vnet_node_options no;
    const char *genkey, *pubkey_file;
    const char *metrics; /* --metrics IP:PORT */
    bool have_vni, have_mac;
    struct vnet_prefix ips[VNET_NODE_MAX_IPS];
    struct vnet_endpoint peers[MAX_ITEMS];
    struct vnet_table_op statics[MAX_ITEMS * 2];
};

/* A decimal number in [min, max]. */
static int parse_uint(const char *arg, unsigned long min, unsigned long max, uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(arg, &end, 10);
    if (!arg[0] || *end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

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
    /* Long options only: the letters are ids, not short options (optstring is ":h"). */
    static const struct option longopts[] = {{"dev", required_argument, NULL, 'd'},
                                             {"underlay", required_argument, NULL, 'u'},
                                             {"vni", required_argument, NULL, 'n'},
                                             {"mac", required_argument, NULL, 'm'},
                                             {"ip", required_argument, NULL, 'i'},
                                             {"peer", required_argument, NULL, 'p'},
                                             {"static", required_argument, NULL, 's'},
                                             {"arp", required_argument, NULL, 'a'},
                                             {"learn", no_argument, NULL, 'l'},
                                             {"mtu", required_argument, NULL, 'M'},
                                             {"no-arp-proxy", no_argument, NULL, 'A'},
                                             {"no-offload", no_argument, NULL, 'O'},
                                             {"busy-poll", required_argument, NULL, 'b'},
                                             {"controller", required_argument, NULL, 'c'},
                                             {"network", required_argument, NULL, 'N'},
                                             {"name", required_argument, NULL, 'o'},
                                             {"queues", required_argument, NULL, 'q'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"controller-key", required_argument, NULL, 'K'},
                                             {"join", required_argument, NULL, 'j'},
                                             {"allow-plain", no_argument, NULL, 'E'},
                                             {"genkey", required_argument, NULL, 'g'},
                                             {"pubkey", required_argument, NULL, 'P'},
                                             {"fallback", required_argument, NULL, 'f'},
                                             {"log-level", required_argument, NULL, 'L'},
                                             {"metrics", required_argument, NULL, 'X'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    char left[64];
    const char *right;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->no.dev = optarg;
            break;
        case 'u':
            o->no.underlay = optarg;
            break;
        case 'n':
            if (vnet_vni_parse(optarg, &o->no.vni))
                return usage_error("bad --vni '%s': want 0..16777215", optarg);
            o->have_vni = true;
            break;
        case 'm':
            if (vnet_mac_parse(optarg, &o->no.mac))
                return usage_error("bad --mac '%s': want xx:xx:xx:xx:xx:xx", optarg);
            if (vnet_mac_is_multicast(&o->no.mac))
                return usage_error("bad --mac '%s': a multicast address", optarg);
            o->have_mac = true;
            break;
        case 'i':
            if (o->no.nips == VNET_NODE_MAX_IPS)
                return usage_error("too many --ip (max 16): '%s'", optarg);
            if (vnet_prefix_parse(optarg, &o->ips[o->no.nips]))
                return usage_error("bad --ip '%s': want ADDR/PREFIX", optarg);
            o->no.nips++;
            break;
        case 'p':
            if (o->no.npeers == MAX_ITEMS)
                return usage_error("too many --peer: '%s'", optarg);
            if (vnet_endpoint_parse(optarg, &o->peers[o->no.npeers]))
                return usage_error("bad --peer '%s': want IP:PORT or [IPv6]:PORT", optarg);
            o->no.npeers++;
            break;
        case 's':
        case 'a': {
            struct vnet_table_op *op = &o->statics[o->no.nentries];
            if (o->no.nentries == MAX_ITEMS * 2)
                return usage_error("too many --static/--arp: '%s'", optarg);
            memset(op, 0, sizeof(*op));
            op->type = c == 's' ? VNET_TABLE_PUT : VNET_TABLE_PUT_IP;
            op->flags = c == 's' ? VNET_ENTRY_STATIC : 0;
            bool bad = parse_pair(optarg, left, sizeof(left), &right) != 0;
            if (c == 's' &&
                (bad || vnet_mac_parse(left, &op->mac) || vnet_endpoint_parse(right, &op->ep)))
                return usage_error("bad --static '%s': want MAC=IP:PORT", optarg);
            if (c == 'a' &&
                (bad || vnet_ip_parse(left, &op->ip) || vnet_mac_parse(right, &op->mac)))
                return usage_error("bad --arp '%s': want IP=MAC", optarg);
            o->no.nentries++;
            break;
        }
        case 'l':
            o->no.learn = true;
            break;
        case 'M':
            if (parse_uint(optarg, 576, 65000, &o->no.mtu))
                return usage_error("bad --mtu '%s': want 576..65000", optarg);
            break;
        case 'A':
            o->no.arp_proxy = false;
            break;
        case 'E':
            o->no.allow_plain = true;
            break;
        case 'O':
            o->no.offload = false;
            break;
        case 'c': {
            struct vnet_endpoint ep;
            if (vnet_endpoint_parse(optarg, &ep))
                return usage_error("bad --controller '%s': want IP:PORT or [IPv6]:PORT", optarg);
            o->no.controller = optarg;
            break;
        }
        case 'k':
            o->no.key_file = optarg;
            break;
        case 'K': {
            uint8_t pub[VNET_KEY_LEN];
            if (vnet_pubkey_parse(optarg, pub))
                return usage_error("bad --controller-key '%s': want the 43 characters that "
                                   "vnet-controller --pubkey prints",
                                   optarg);
            o->no.controller_key = optarg;
            break;
        }
        case 'j': {
            uint8_t pub[VNET_KEY_LEN], sec[VNET_JOIN_SECRET_LEN];
            if (vnet_join_token_parse(optarg, pub, sec))
                return usage_error("bad --join '%s': want the token vnetctl node add printed",
                                   optarg);
            o->no.join = optarg;
            break;
        }
        case 'g':
            o->genkey = optarg;
            break;
        case 'P':
            o->pubkey_file = optarg;
            break;
        case 'q':
            if (parse_uint(optarg, 1, VNET_NODE_MAX_QUEUES, &o->no.queues))
                return usage_error("bad --queues '%s': 1..16", optarg);
            break;
        case 'N':
        case 'o':
            if (!optarg[0] || strlen(optarg) >= VNET_NAME_MAX)
                return usage_error("bad name '%s': 1 to 63 characters", optarg);
            if (c == 'N')
                o->no.network = optarg;
            else
                o->no.name = optarg;
            break;
        case 'b':
            if (parse_uint(optarg, 0, 1000000, &o->no.busy_poll_us))
                return usage_error("bad --busy-poll '%s': want 0..1000000 (microseconds)", optarg);
            break;
        case 'f':
            if (strcmp(optarg, "raw") != 0 && strcmp(optarg, "none") != 0)
                return usage_error("bad --fallback '%s': want raw or none", optarg);
            o->no.fallback_raw = strcmp(optarg, "raw") == 0;
            break;
        case 'L': {
            enum vnet_log_level l;
            if (vnet_log_level_parse(optarg, &l))
                return usage_error("bad --log-level '%s': error, warn, info or debug", optarg);
            vnet_log_set_level(l);
            break;
        }
        case 'X': {
            char why[160];
            if (metrics_http_check(optarg, why, sizeof(why)) != 0)
                return usage_error("%s", why);
            o->metrics = optarg;
            break;
        }
        case 'V':
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
    if (o->no.controller || o->no.network || o->no.name) {
        if (o->have_vni || o->have_mac || o->no.npeers || o->no.nentries || o->no.nips)
            return usage_error("%s", "--vni, --mac, --ip, --peer, --static and --arp come from "
                                     "the controller in managed mode");
    } else if (!o->have_vni) {
        return usage_error("%s", "--vni is required");
    }
    char err[256];
    if (vnet_node_options_check(&o->no, err, sizeof(err)))
        return usage_error("%s", err);
    return 0;
}

static void print_stats(const struct vnet_node *n, unsigned q)
{
    struct vnet_datapath_stats st;
    if (vnet_node_get_stats(n, q, &st))
        return;
    vnet_log(VNET_LOG_WARN, "node",
             "virtual rx %llu pkts %llu B, tx %llu pkts %llu B; underlay rx %llu pkts %llu B, "
             "tx %llu pkts %llu B; flooded %llu, arp %llu, nd %llu, learned %llu, too_big %llu, "
             "gso %llu, gro %llu, table %zu",
             ULL(st.vport.rx_packets), ULL(st.vport.rx_bytes), ULL(st.vport.tx_packets),
             ULL(st.vport.tx_bytes), ULL(st.uport.rx_packets), ULL(st.uport.rx_bytes),
             ULL(st.uport.tx_packets), ULL(st.uport.tx_bytes), ULL(st.flooded), ULL(st.arp_replies),
             ULL(st.nd_replies), ULL(st.learned), ULL(st.too_big_sent), ULL(st.gso_frames),
             ULL(st.gro_frames), vnet_table_count(vnet_node_table(n)));
    char line[1024];
    size_t off = 0;
    line[0] = '\0';
    for (int i = 0; i < VNET_DP_DROP__MAX; i++)
        if (st.drops[i] && off < sizeof(line))
            off += (size_t)snprintf(line + off, sizeof(line) - off, " %s=%llu",
                                    vnet_dp_drop_name((enum vnet_dp_drop)i), ULL(st.drops[i]));
    for (int i = 1; i < VNET_DROP__MAX && i < 32; i++)
        if (st.decap[i] && off < sizeof(line))
            off +=
                (size_t)snprintf(line + off, sizeof(line) - off, " decap_%s=%llu",
                                 vnet_drop_reason_name((enum vnet_drop_reason)i), ULL(st.decap[i]));
    vnet_log(VNET_LOG_WARN, "node", "drops:%s", off ? line : " none");
    struct vnet_dp_peer_stats ps[64];
    size_t np = vnet_node_peer_stats(n, q, ps, 64);
    for (size_t i = 0; i < np && i < 64; i++) {
        char ep[VNET_ENDPOINT_STRLEN];
        vnet_endpoint_format(&ps[i].ep, ep, sizeof(ep));
        vnet_log(VNET_LOG_WARN, "node", "peer %s: tx %llu pkts %llu B, rx %llu pkts %llu B", ep,
                 ULL(ps[i].tx_packets), ULL(ps[i].tx_bytes), ULL(ps[i].rx_packets),
                 ULL(ps[i].rx_bytes));
    }
}

static uv_signal_t sigs[3];          /* SIGINT, SIGTERM, SIGUSR1 */
static struct metrics_http *metrics; /* --metrics */

static int render_metrics(void *arg, char **out, size_t *len)
{
    return vnet_node_metrics_write(arg, out, len);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct vnet_node *n = h->data;
    struct vnet_agent_stats as;
    if (!n)
        return;                             /* not started */
    unsigned nq = vnet_node_queue_count(n); /* several: each under a "queue N:" line */
    for (unsigned q = 0; q < nq; q++) {
        if (nq > 1)
            vnet_log(VNET_LOG_WARN, "node", "queue %u:", q);
        print_stats(n, q);
    }
    if (signum == SIGUSR1 && vnet_node_get_agent_stats(n, &as) == 0)
        vnet_log(VNET_LOG_WARN, "node",
                 "controller: %s, revision %llu, %llu connects, %llu snapshots, %llu deltas",
                 as.connected ? "connected" : "disconnected", ULL(as.revision), ULL(as.connects),
                 ULL(as.snapshots), ULL(as.deltas));
    if (signum == SIGUSR1)
        return;
    metrics_http_close(metrics);
    metrics = NULL;
    vnet_node_close(n, NULL, NULL); /* the loop ends when every handle is closed */
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
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
    static struct opts o;
    vnet_node_options_init(&o.no);
    o.no.label_prefix = "--";
    o.no.ips = o.ips;
    o.no.peers = o.peers;
    o.no.entries = o.statics;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    if (o.genkey || o.pubkey_file)
        return key_command(o.genkey, o.pubkey_file);
    char err[512];
    int mfd = -1; /* --metrics: bound first, so a port in use changes nothing */
    if (o.metrics && (mfd = metrics_http_listen(o.metrics, err, sizeof(err))) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }

    /* The signals are watched before anything starts: a stop request is never lost. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    static const int signums[3] = {SIGINT, SIGTERM, SIGUSR1};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&loop, &sigs[i]);
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    struct vnet_node *n = NULL;
    int status = 1;
    if ((rc = vnet_node_create(&o.no, &loop, &n, err, sizeof(err))) != 0) {
        vnet_log(VNET_LOG_ERROR, "node", "%s", err);
    } else if ((rc = vnet_node_start(n)) != 0) {
        vnet_log(VNET_LOG_ERROR, "node", "%s: %s", o.no.controller ? "agent" : "start",
                 vnet_strerror(rc));
        vnet_node_close(n, NULL, NULL);
    } else if (mfd >= 0 &&
               metrics_http_start(&metrics, &loop, mfd, render_metrics, n, err, sizeof(err))) {
        vnet_log(VNET_LOG_ERROR, "node", "%s", err);
        vnet_node_close(n, NULL, NULL);
    } else {
        for (int i = 0; i < 3; i++)
            sigs[i].data = n;
        uv_run(&loop, UV_RUN_DEFAULT);
        vnet_log(VNET_LOG_WARN, "node", "stopped");
        status = 0;
    }
    for (int i = 0; i < 3; i++)
        if (!uv_is_closing((uv_handle_t *)&sigs[i]))
            uv_close((uv_handle_t *)&sigs[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* the close callbacks */
    uv_loop_close(&loop);
    return status;
}
