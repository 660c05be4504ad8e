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
 * Every long option may also come from a --config FILE of `name = value` lines (progopt.h); the
 * command line wins. Without --key, a node given --join or --controller-key keeps its key in
 * the state directory (/var/lib/vnet/node-NETWORK-NAME.key, or under $VNET_STATE_DIR).
 *
 * It runs in the foreground, logs to stderr, prints its counters on SIGUSR1 and at exit,
 * re-reads its --config file on SIGHUP (log level and format, static peers and entries apply at
 * once; other changes are logged as needing a restart), and exits cleanly on SIGINT/SIGTERM. Exit
 * status: 0 after a clean stop, 1 when setup failed or the controller refused the node for good
 * (unknown network or node, used or expired token, wrong controller key, revoked key, node
 * removed, network deleted), 2 for a usage error.
 */
#include "svcnotify.h"

#include <vnet/crypto.h>
#include <vnet/node.h>
#include <vnet/token.h>
#include <vnet/vnet.h>

#include "metrics_http.h"
#include "progopt.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define MAX_ITEMS 256
#define ULL(x)    ((unsigned long long)(x))

static const char *prog = "vnet-node";

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: %s --controller HOST:PORT --network NAME --name NODE\n"
        "          [--key FILE] [--controller-key KEY | --join TOKEN] [--allow-plain]\n"
        "          --dev tap:NAME --underlay udp:LOCAL_IP:PORT [--learn] [--no-offload]\n"
        "          [--queues N] [--busy-poll US] [--fallback raw|none]\n"
        "          [--config FILE] [--log-level LEVEL] [--log-format text|json]\n"
        "          [--metrics IP:PORT]\n"
        "   or: %s --dev tap:NAME --underlay udp:LOCAL_IP:PORT --vni N --mac MAC\n"
        "          [--ip ADDR/PREFIX ...] --peer REMOTE_IP:PORT [--peer ...]\n"
        "          [--static MAC=REMOTE_IP:PORT ...] [--arp IP=MAC ...] [--learn]\n"
        "          [--mtu N] [--no-arp-proxy] [--no-offload] [--busy-poll US]\n"
        "          [--queues N] [--fallback raw|none]\n"
        "          [--config FILE] [--log-level LEVEL] [--log-format text|json]\n"
        "          [--metrics IP:PORT]\n"
        "   or: %s --genkey [FILE] [--network NAME --name NODE] | --pubkey FILE\n"
        "\n"
        "  --config     read options from FILE: 'name = value' lines, the option names\n"
        "               without dashes (flags: true/false); the command line wins;\n"
        "               SIGHUP reads it again\n"
        "  --controller the controller's node address, IP:PORT, [IPv6]:PORT or HOST:PORT\n"
        "               (a name is resolved again at each reconnection; managed mode)\n"
        "  --key        this node's key file (managed mode: authenticated, encrypted session);\n"
        "               default with --join or --controller-key:\n"
        "               $VNET_STATE_DIR or /var/lib/vnet, file node-NETWORK-NAME.key\n"
        "  --controller-key  the controller's public key, pinned\n"
        "  --join       a join token from 'vnetctl node add': enrols --key (created if\n"
        "               missing) once; it also carries the controller's key, which is\n"
        "               then pinned in KEYFILE.controller: later starts need only --key\n"
        "               (the same --join again is ignored)\n"
        "  --allow-plain  with --key, take part in a plain network too (unencrypted VXLAN:\n"
        "               readable and injectable on the path); refused without it\n"
        "  --genkey [FILE]  write a new key file (mode 0600), print its public key, exit;\n"
        "               without FILE: the default --key of --network and --name\n"
        "  --pubkey FILE  print the public key of a key file, exit\n"
        "  --network    the network this node belongs to (managed mode)\n"
        "  --name       this node's name in it (managed mode)\n",
        prog, prog, prog);
    /* two parts: C99 promises string literals of 4095 bytes only */
    fputs("  --dev        the virtual side: tap:NAME creates (or attaches to) a TAP device;\n"
          "               raw:IFNAME attaches to an existing interface (a VM's, a bridge port);\n"
          "               xdp:IFNAME does the same with AF_XDP; kernel:NAME makes NAME a TAP\n"
          "               switched in the kernel (eBPF + a VXLAN device; plain networks,\n"
          "               --underlay udp: only; docs/kernel-tier.md)\n"
          "  --underlay   the physical side: udp:IP:PORT binds the VXLAN socket there;\n"
          "               raw:IFNAME,local=IP:PORT sends and receives whole frames on IFNAME;\n"
          "               xdp:IFNAME,local=IP:PORT does the same with AF_XDP; without\n"
          "               ,local= the interface's primary address and port 4789\n"
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
          "  --no-arp-proxy  do not answer ARP/ND for the --arp entries: flood the requests\n"
          "  --mtu        the TAP's MTU (default: 1500 minus the encapsulation overhead)\n"
          "  --no-offload no TSO/checksum offload on the TAP, no UDP GSO/GRO (slower;\n"
          "               for debugging and for kernels without them)\n"
          "  --queues     N TAP queues and N UDP sockets, one worker thread each (default\n"
          "               1: one thread does everything); secure networks: 1 only\n"
          "  --busy-poll  keep polling this many microseconds after the last packet\n"
          "               before sleeping (default 0: sleep at once; spinning only pays\n"
          "               with a core to spare)\n"
          "  --log-level  error, warn, info (default) or debug\n"
          "  --log-format text (default; timestamped unless stderr is the journal) or json\n"
          "               (one object per line: ts, level, module, msg)\n"
          "  --metrics    serve Prometheus metrics at http://IP:PORT/metrics (counters,\n"
          "               per-peer traffic and round-trip time, drops by reason)\n"
          "  --version    print the version, exit\n"
          "  --help       print this help, exit\n",
          f);
}

/* The options being parsed: a bad value from the --config file is named by its file and line. */
static const struct progopt *parsing;

static int usage_error(const char *fmt, const char *arg)
{
    char where[600];
    fprintf(stderr, "%s: %s", prog, progopt_where(parsing, optind - 1, where, sizeof(where)));
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

/* A --static MAC=IP:PORT or --arp IP=MAC value as a table operation. 0 or -1. */
static int parse_entry(bool is_static, const char *arg, struct vnet_table_op *op)
{
    char left[64];
    const char *right;
    memset(op, 0, sizeof(*op));
    op->type = is_static ? VNET_TABLE_PUT : VNET_TABLE_PUT_IP;
    op->flags = is_static ? VNET_ENTRY_STATIC : 0;
    if (parse_pair(arg, left, sizeof(left), &right) != 0)
        return -1;
    if (is_static)
        return vnet_mac_parse(left, &op->mac) || vnet_endpoint_parse(right, &op->ep) ? -1 : 0;
    return vnet_ip_parse(left, &op->ip) || vnet_mac_parse(right, &op->mac) ? -1 : 0;
}

/* Options whose value may be left out (then ""). */
static const char *const optional_value[] = {"genkey", NULL};

/* The default key file of --network and --name in the state directory (made with @create). */
static int default_key_path(const struct opts *o, bool create, char *out, size_t len)
{
    char name[2 * VNET_NAME_MAX + 16], err[600];
    const char *net = o->no.network, *node = o->no.name;
    if (!net || !node)
        return usage_error("%s", "--genkey without a FILE needs --network and --name");
    if (strchr(net, '/') || strchr(node, '/') || net[0] == '.' || node[0] == '.')
        return usage_error("%s", "the network or node name cannot name a key file: give --key");
    snprintf(name, sizeof(name), "node-%s-%s.key", net, node);
    if (progopt_state_file(name, create, out, len, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o, struct progopt *po)
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
                                             {"log-format", required_argument, NULL, 'F'},
                                             {"metrics", required_argument, NULL, 'X'},
                                             {"config", required_argument, NULL, 'C'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    int rc = progopt_load(po, prog, longopts, optional_value, argc, argv);
    if (rc) {
        fprintf(stderr, "%s: %s\n", prog, po->error);
        return rc;
    }
    argc = po->argc;
    argv = po->argv;
    parsing = po;
    opterr = 0;
    optind = 0; /* a reload parses again */
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
                return usage_error("bad --vni '%s': want 1..16777215", optarg);
            if (o->no.vni == 0)
                return usage_error("bad --vni '%s': VNI 0 is reserved; want 1..16777215", optarg);
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
            if (o->no.nentries == MAX_ITEMS * 2)
                return usage_error("too many --static/--arp: '%s'", optarg);
            if (parse_entry(c == 's', optarg, &o->statics[o->no.nentries]))
                return usage_error(c == 's' ? "bad --static '%s': want MAC=IP:PORT"
                                            : "bad --arp '%s': want IP=MAC",
                                   optarg);
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
        case 'c': /* checked with the rest by vnet_node_options_check */
            o->no.controller = optarg;
            break;
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
        case 'F': {
            enum vnet_log_format f;
            if (vnet_log_format_parse(optarg, &f))
                return usage_error("bad --log-format '%s': text or json", optarg);
            vnet_log_set_format(f);
            break;
        }
        case 'X': {
            char why[160];
            if (metrics_http_check(optarg, why, sizeof(why)) != 0)
                return usage_error("%s", why);
            o->metrics = optarg;
            break;
        }
        case 'C':
            break; /* read by progopt_load() */
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
    static char keypath[4096];
    if (o->genkey && !o->genkey[0]) {
        if ((rc = default_key_path(o, true, keypath, sizeof(keypath))) != 0)
            return rc;
        o->genkey = keypath;
    }
    if (o->genkey || o->pubkey_file)
        return 0; /* key management: nothing else needed */
    if (!o->no.key_file && (o->no.join || o->no.controller_key) && o->no.network && o->no.name) {
        /* --join makes the key; --controller-key alone takes it only when it is there */
        if ((rc = default_key_path(o, o->no.join != NULL, keypath, sizeof(keypath))) != 0)
            return rc;
        if (o->no.join || access(keypath, F_OK) == 0)
            o->no.key_file = keypath;
    } else if (!o->no.key_file && o->no.controller && o->no.network && o->no.name &&
               !strchr(o->no.network, '/') && !strchr(o->no.name, '/') && o->no.network[0] != '.' &&
               o->no.name[0] != '.' && default_key_path(o, false, keypath, sizeof(keypath)) == 0) {
        /* A node that enrolled with the default key: its key and the controller key pinned
         * beside it (KEY.controller) make it start with the same line without --join. */
        char pin[sizeof(keypath) + 16];
        snprintf(pin, sizeof(pin), "%s.controller", keypath);
        if (access(keypath, F_OK) == 0 && access(pin, F_OK) == 0)
            o->no.key_file = keypath;
    }
    if (o->no.controller || o->no.network || o->no.name) {
        if (o->have_vni || o->have_mac || o->no.npeers || o->no.nentries || o->no.nips)
            return usage_error("%s", "--vni, --mac, --ip, --peer, --static and --arp come from "
                                     "the controller in managed mode");
    } else if (!o->have_vni) {
        return usage_error("%s", "--vni is required");
    }
    /* The backends a program offers; the library takes any registered one. */
    const char *dev = o->no.dev;
    if (dev && strncmp(dev, "tap:", 4) != 0 && strncmp(dev, "raw:", 4) != 0 &&
        strncmp(dev, "xdp:", 4) != 0 && strncmp(dev, "kernel:", 7) != 0) {
        fprintf(stderr,
                "%s: --dev %s: want tap:NAME, raw:IFNAME, xdp:IFNAME or kernel:NAME\nTry '%s "
                "--help'.\n",
                prog, dev, prog);
        return 2;
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
    vnet_log(VNET_LOG_INFO, "node",
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
    vnet_log(VNET_LOG_INFO, "node", "drops:%s", off ? line : " none");
    struct vnet_dp_peer_stats ps[64];
    size_t np = vnet_node_peer_stats(n, q, ps, 64);
    for (size_t i = 0; i < np && i < 64; i++) {
        char ep[VNET_ENDPOINT_STRLEN];
        vnet_endpoint_format(&ps[i].ep, ep, sizeof(ep));
        vnet_log(VNET_LOG_INFO, "node", "peer %s: tx %llu pkts %llu B, rx %llu pkts %llu B", ep,
                 ULL(ps[i].tx_packets), ULL(ps[i].tx_bytes), ULL(ps[i].rx_packets),
                 ULL(ps[i].rx_bytes));
    }
}

#define NSIGS 4
static uv_signal_t sigs[NSIGS];      /* SIGINT, SIGTERM, SIGUSR1, SIGHUP */
static int exit_status;              /* 1 once the controller refused the node for good */
static struct metrics_http *metrics; /* --metrics */

static int render_metrics(void *arg, char **out, size_t *len)
{
    return vnet_node_metrics_write(arg, out, len);
}

/* The options the node started with (never freed: the node's options point into them) and
 * those of the last reload. */
static struct progopt start_po, last_po;

static void changed_needs_restart(const char *name, void *arg)
{
    static const char *const live[] = {"log-level", "log-format", "peer", "static", "arp", NULL};
    for (const char *const *l = live; *l; l++)
        if (strcmp(*l, name) == 0)
            return;
    (*(unsigned *)arg)++;
    vnet_log(VNET_LOG_WARN, "node", "reload: --%s changed: takes effect at the next restart", name);
}

struct live_changes {
    bool peers, entries;
};

static void changed_live(const char *name, void *arg)
{
    struct live_changes *ch = arg;
    if (strcmp(name, "peer") == 0)
        ch->peers = true;
    if (strcmp(name, "static") == 0 || strcmp(name, "arp") == 0)
        ch->entries = true;
}

/* The --static and --arp values of @p as table operations into @out (MAX_ITEMS * 2). Returns
 * how many, or -1 with *@bad and *@badval naming the first bad one. */
static long reload_entries(const struct progopt *p, struct vnet_table_op *out, const char **bad,
                           const char **badval)
{
    const char *vals[MAX_ITEMS * 2];
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        const char *name = k == 0 ? "static" : "arp";
        size_t m = progopt_values(p, name, vals, MAX_ITEMS * 2);
        for (size_t i = 0; i < m; i++) {
            if (n == MAX_ITEMS * 2 || i >= MAX_ITEMS * 2 || parse_entry(k == 0, vals[i], &out[n])) {
                *bad = name;
                *badval = i < MAX_ITEMS * 2 ? vals[i] : "(too many)";
                return -1;
            }
            n++;
        }
    }
    return (long)n;
}

/* SIGHUP: read --config again; apply the log level and format and, in static mode, the peers;
 * name every other option that changed since the start. A bad file changes nothing. */
static void reload(struct vnet_node *n)
{
    struct progopt next;
    const char *v, *peer_args[MAX_ITEMS];
    enum vnet_log_level level = VNET_LOG_INFO;
    enum vnet_log_format format = VNET_LOG_FORMAT_TEXT;
    static struct vnet_endpoint peers[MAX_ITEMS];
    static struct vnet_table_op entries[MAX_ITEMS * 2];
    if (!start_po.config) {
        vnet_log(VNET_LOG_INFO, "node", "SIGHUP: no config file to reload");
        return;
    }
    if (progopt_reload(&start_po, &next) != 0) {
        vnet_log(VNET_LOG_ERROR, "node", "reload: %s: nothing changed", next.error);
        return;
    }
    size_t np = progopt_values(&next, "peer", peer_args, MAX_ITEMS);
    const char *bad = NULL;
    if (np > MAX_ITEMS)
        bad = "peer", v = "(too many)";
    else if ((v = progopt_value(&next, "log-level")) && vnet_log_level_parse(v, &level))
        bad = "log-level";
    else if ((v = progopt_value(&next, "log-format")) && vnet_log_format_parse(v, &format))
        bad = "log-format";
    for (size_t i = 0; !bad && i < np; i++)
        if (vnet_endpoint_parse(v = peer_args[i], &peers[i]))
            bad = "peer";
    long ne = bad ? 0 : reload_entries(&next, entries, &bad, &v);
    if (bad) {
        vnet_log(VNET_LOG_ERROR, "node", "reload: bad --%s '%s': nothing changed", bad, v);
        progopt_free(&next);
        return;
    }
    vnet_log_set_level(level);
    vnet_log_set_format(format);
    struct live_changes ch = {false, false};
    progopt_diff(last_po.argv ? &last_po : &start_po, &next, changed_live, &ch);
    bool managed = progopt_value(&start_po, "controller") != NULL;
    if (ch.peers && !managed) {
        int rc = vnet_node_set_peers(n, peers, np);
        if (rc)
            vnet_log(VNET_LOG_ERROR, "node", "reload: peers: %s", vnet_strerror(rc));
        else
            vnet_log(VNET_LOG_INFO, "node", "reload: %zu peer%s now", np, np == 1 ? "" : "s");
    }
    if (managed && (ch.peers || ch.entries))
        vnet_log(VNET_LOG_WARN, "node",
                 "reload: --peer, --static and --arp come from the controller in managed mode: "
                 "ignored");
    if (ch.entries && !managed) {
        int rc = vnet_node_set_entries(n, entries, (size_t)ne);
        if (rc)
            vnet_log(VNET_LOG_ERROR, "node", "reload: static entries: %s", vnet_strerror(rc));
        else
            vnet_log(VNET_LOG_INFO, "node", "reload: %ld static and arp entries now", ne);
    }
    unsigned restart = 0;
    progopt_diff(&start_po, &next, changed_needs_restart, &restart);
    vnet_log(VNET_LOG_INFO, "node",
             "reload: read %s: log level %s, format %s; %u change%s need%s a restart",
             start_po.config, vnet_log_level_name(level),
             format == VNET_LOG_FORMAT_JSON ? "json" : "text", restart, restart == 1 ? "" : "s",
             restart == 1 ? "s" : "");
    progopt_free(&last_po);
    last_po = next;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct vnet_node *n = h->data;
    struct vnet_agent_stats as;
    if (!n)
        return; /* not started */
    if (signum == SIGHUP) {
        reload(n);
        return;
    }
    unsigned nq = vnet_node_queue_count(n); /* several: each under a "queue N:" line */
    for (unsigned q = 0; q < nq; q++) {
        if (nq > 1)
            vnet_log(VNET_LOG_INFO, "node", "queue %u:", q);
        print_stats(n, q);
    }
    if (signum == SIGUSR1 && vnet_node_get_agent_stats(n, &as) == 0)
        vnet_log(VNET_LOG_INFO, "node",
                 "controller: %s, revision %llu, %llu connects, %llu snapshots, %llu deltas",
                 as.connected ? "connected" : "disconnected", ULL(as.revision), ULL(as.connects),
                 ULL(as.snapshots), ULL(as.deltas));
    if (signum == SIGUSR1)
        return;
    svc_notify_stopping("stopping");
    metrics_http_close(metrics);
    metrics = NULL;
    vnet_node_close(n, NULL, NULL); /* the loop ends when every handle is closed */
    for (int i = 0; i < NSIGS; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
}

/* systemd (svcnotify.h): a managed node is up, and READY=1, once the controller's first
 * welcome is applied (the node calls this after its datapaths run); STATUS= follows the
 * session. */
static void svc_on_welcome(void *arg, const struct vnet_network *net,
                           const struct vnet_node_info *self)
{
    (void)arg;
    svc_notify_ready("up: network %s (vni %u) as %s", net->name, net->vni, self->name);
}

static void svc_on_state(void *arg, int connected)
{
    (void)arg;
    svc_notify_status("controller %s", connected ? "connected" : "disconnected: retrying");
}

/* The controller refused the node for good (or its network or record is gone): say why, stop
 * (the node takes down what it set up) and exit 1. */
static void on_refused(void *arg, int code, const char *why)
{
    struct vnet_node **np = arg;
    (void)code;
    vnet_log(VNET_LOG_ERROR, "node", "stopping: %s", why);
    svc_notify_stopping("refused by the controller");
    exit_status = 1;
    if (!*np)
        return;
    metrics_http_close(metrics); /* it renders from the node */
    metrics = NULL;
    vnet_node_close(*np, NULL, NULL);
    *np = NULL;
    for (int i = 0; i < NSIGS; i++) {
        sigs[i].data = NULL;
        if (!uv_is_closing((uv_handle_t *)&sigs[i]))
            uv_close((uv_handle_t *)&sigs[i], NULL);
    }
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
    o.no.cb.on_welcome = svc_on_welcome;
    o.no.cb.on_state = svc_on_state;
    vnet_log_set_level(VNET_LOG_INFO); /* an operator sees "up", "controller connected" */
    int rc = parse_args(argc, argv, &o, &start_po);
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
    static const int signums[NSIGS] = {SIGINT, SIGTERM, SIGUSR1, SIGHUP};
    for (int i = 0; i < NSIGS; i++) {
        uv_signal_init(&loop, &sigs[i]);
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    static struct vnet_node *n = NULL;
    o.no.on_refused = on_refused;
    o.no.cb_arg = &n;
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
        for (int i = 0; i < NSIGS; i++)
            sigs[i].data = n;
        svc_notify_start(&loop); /* systemd: WATCHDOG=1 pings when asked */
        if (o.no.controller)
            svc_notify_status("connecting to the controller %s", o.no.controller);
        else
            svc_notify_ready("up: vni %u, %zu peers", o.no.vni, o.no.npeers);
        uv_run(&loop, UV_RUN_DEFAULT);
        vnet_log(VNET_LOG_INFO, "node", "stopped");
        status = exit_status;
    }
    for (int i = 0; i < NSIGS; i++)
        if (!uv_is_closing((uv_handle_t *)&sigs[i]))
            uv_close((uv_handle_t *)&sigs[i], NULL);
    svc_notify_close();
    uv_run(&loop, UV_RUN_DEFAULT); /* the close callbacks */
    uv_loop_close(&loop);
    return status;
}
