/* vnetctl: the subscriber's command line for every configuration request.
 *
 *   vnetctl [--controller ADDR:PORT | --socket PATH] [--controller-key KEY]
 *           [--token-file PATH] [--json] [--timeout MS] COMMAND
 *     network create NAME [--vni N] [--subnet CIDR]... [--mtu N]
 *     network list | network show NAME | network delete NAME | network status NAME
 *     node add NETWORK NAME [--mac MAC] [--ip ADDR]... [--phys IP:PORT]
 *     node list NETWORK | node show NETWORK NAME
 *     node move NETWORK NAME --phys IP:PORT
 *     node remove NETWORK NAME
 *     subscriber create NAME | subscriber list | subscriber delete NAME | subscriber token NAME
 *
 * Over TCP, a controller with a key needs its public key (--controller-key or
 * $VNET_CONTROLLER_KEY) and an API token (--token-file, else $VNET_TOKEN, else the file named by
 * $VNET_TOKEN_FILE); the session is then encrypted. The Unix socket (--socket) needs neither.
 *
 * Human-readable tables by default, --json for scripts. Exit status: 0 on success, 1 when the
 * controller refused the request (its reason on stderr) or could not be reached, 2 on a usage
 * error. The controller defaults to $VNET_CONTROLLER, else 127.0.0.1:7701.
 *
 * What neither the command line nor the environment gives (the controller's address or
 * socket, its key, the token or token file, the timeout) comes from the first of
 * $XDG_CONFIG_HOME/vnet/vnetctl.conf (else ~/.config/vnet/vnetctl.conf) and
 * /etc/vnet/vnetctl.conf that exists, or from the file $VNETCTL_CONFIG names ("": none).
 */
#include <vnet/client.h>
#include <vnet/crypto.h>
#include <vnet/error.h>
#include <vnet/types.h>
#include <vnet/vnet.h>

#include <vnet/token.h>

#include "progopt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "vnetctl";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--controller ADDR:PORT | --socket PATH] [--controller-key KEY]\n"
            "               [--token-file PATH] [--json] [--timeout MS]\n"
            "               [--log-level LEVEL] [--log-format text|json] COMMAND\n"
            "\n"
            "commands:\n"
            "  network create NAME [--vni N] [--subnet CIDR]... [--mtu N] [--mode plain|secure]\n"
            "  network list\n"
            "  network show NAME\n"
            "  network delete NAME\n"
            "  network status NAME\n"
            "  node add NETWORK NAME [--mac MAC] [--ip ADDR]... [--phys IP:PORT] [--pubkey KEY]\n"
            "  node list NETWORK\n"
            "  node show NETWORK NAME\n"
            "  node move NETWORK NAME --phys IP:PORT\n"
            "  node remove NETWORK NAME\n"
            "  node revoke NETWORK NAME  forget its key: disconnected, refused until a new one\n"
            "  subscriber create NAME    (admin) prints the new subscriber's API token once\n"
            "  subscriber list           (admin)\n"
            "  subscriber delete NAME    (admin) refused while it owns networks\n"
            "  subscriber token NAME     (admin) a new API token; the old one stops working\n"
            "\n"
            "  --controller  the controller's API address (default $VNET_CONTROLLER, else\n"
            "                127.0.0.1:7701)\n"
            "  --socket      the controller's local Unix socket instead (you are the admin)\n"
            "  --controller-key  the controller's public key, pinned (default\n"
            "                $VNET_CONTROLLER_KEY): needed when the controller has a key\n"
            "  --token-file  a file holding your API token (mode 0600); default $VNET_TOKEN,\n"
            "                else the file named by $VNET_TOKEN_FILE\n"
            "  the admin can name another subscriber's network as SUBSCRIBER/NETWORK\n"
            "  --json        machine-readable output\n"
            "  --timeout     ms to wait for the controller's answer (default 10000)\n"
            "  --log-level   error, warn (default), info or debug: the library's messages\n"
            "  --log-format  text (default) or json\n"
            "  --version     print the version, exit; --help: this help\n"
            "  what the command line and environment leave out comes from the first of\n"
            "  ~/.config/vnet/vnetctl.conf and /etc/vnet/vnetctl.conf (or $VNETCTL_CONFIG):\n"
            "  'name = value' lines: controller, socket, controller-key, token-file, token,\n"
            "  timeout\n"
            "  --subnet      IPv4 or IPv6 prefix the nodes' addresses come from (one of each)\n"
            "  --ip          a node's virtual address (one IPv4, one IPv6); default: the next\n"
            "                free address of the network's subnet\n"
            "  --mac         a node's virtual MAC; default: a random locally administered one\n"
            "  --phys        a node's physical (underlay) endpoint; default: what it reports\n"
            "exit status: 0 done, 1 refused or unreachable, 2 usage error\n",
            prog);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s --help'.\n", prog);
    return 2;
}

static bool json;

/* ---- output ---- */

static const char *ipstr(const struct vnet_ip *ip, char *buf, size_t len)
{
    if (!ip->family || vnet_ip_format(ip, buf, len) < 0)
        snprintf(buf, len, "-");
    return buf;
}

static const char *epstr(const struct vnet_endpoint *ep, char *buf, size_t len)
{
    if (!ep->ip.family || vnet_endpoint_format(ep, buf, len) < 0)
        snprintf(buf, len, "-");
    return buf;
}

static const char *pfxstr(const struct vnet_prefix *p, char *buf, size_t len)
{
    if (!p->ip.family || vnet_prefix_format(p, buf, len) < 0)
        snprintf(buf, len, "-");
    return buf;
}

static void json_str(const char *key, const char *v, bool comma)
{
    printf("\"%s\":", key);
    if (!v || strcmp(v, "-") == 0) {
        printf("null");
    } else {
        putchar('"');
        for (const char *p = v; *p; p++) {
            if (*p == '"' || *p == '\\')
                printf("\\%c", *p);
            else if ((unsigned char)*p < 0x20)
                printf("\\u%04x", *p);
            else
                putchar(*p);
        }
        putchar('"');
    }
    if (comma)
        putchar(',');
}

/* @owner: the owner's name, printed as "subscriber" when given (the admin's view). */
static void print_network_json(const struct vnet_network *n, const char *owner)
{
    char a[64], b[64];
    printf("{");
    if (owner)
        json_str("subscriber", owner, true);
    json_str("name", n->name, true);
    printf("\"vni\":%u,", n->vni);
    json_str("subnet4", pfxstr(&n->subnet4, a, sizeof(a)), true);
    json_str("subnet6", pfxstr(&n->subnet6, b, sizeof(b)), true);
    printf("\"mtu\":%u,\"mode\":\"%s\",\"revision\":%llu}", n->mtu, n->mode ? "secure" : "plain",
           (unsigned long long)n->revision);
}

static const char *state_name(enum vnet_node_state s)
{
    return s == VNET_NODE_ACTIVE ? "active" : s == VNET_NODE_PENDING ? "pending" : "removed";
}

static void print_node_json(const struct vnet_node_info *n)
{
    char mac[VNET_MAC_STRLEN], a[64], b[64], p[64], o[64];
    vnet_mac_format(&n->mac, mac, sizeof(mac));
    printf("{");
    json_str("name", n->name, true);
    printf("\"id\":%llu,", (unsigned long long)n->id);
    json_str("mac", mac, true);
    json_str("ip4", ipstr(&n->ips[0], a, sizeof(a)), true);
    json_str("ip6", ipstr(&n->ips[1], b, sizeof(b)), true);
    json_str("phys", epstr(&n->phys, p, sizeof(p)), true);
    json_str("observed", epstr(&n->observed, o, sizeof(o)), true);
    char pk[VNET_PUBKEY_STRLEN];
    json_str("pubkey",
             n->has_pubkey && vnet_pubkey_format(n->pubkey, pk, sizeof(pk)) > 0 ? pk : NULL, true);
    json_str("state", state_name(n->state), true);
    printf("\"revision\":%llu}", (unsigned long long)n->revision);
}

/* The owner's name of networks[i] in the admin's view (@owners given), else NULL. */
static const char *owner_of(const struct vnet_subscriber *owners, uint32_t i)
{
    return owners && owners[i].name[0] ? owners[i].name : NULL;
}

static void print_networks(const struct vnet_network *v, const struct vnet_subscriber *owners,
                           uint32_t count)
{
    if (json) {
        printf("[");
        for (uint32_t i = 0; i < count; i++) {
            if (i)
                putchar(',');
            print_network_json(&v[i], owner_of(owners, i));
        }
        printf("]\n");
        return;
    }
    if (owners)
        printf("%-16s ", "SUBSCRIBER");
    printf("%-20s %9s %-18s %-22s %6s %-7s %9s\n", "NETWORK", "VNI", "SUBNET4", "SUBNET6", "MTU",
           "MODE", "REVISION");
    for (uint32_t i = 0; i < count; i++) {
        const struct vnet_network *n = &v[i];
        char a[64], b[64];
        if (owners) {
            const char *o = owner_of(owners, i);
            printf("%-16s ", o ? o : "?");
        }
        printf("%-20s %9u %-18s %-22s %6u %-7s %9llu\n", n->name, n->vni,
               pfxstr(&n->subnet4, a, sizeof(a)), pfxstr(&n->subnet6, b, sizeof(b)), n->mtu,
               n->mode ? "secure" : "plain", (unsigned long long)n->revision);
    }
}

static void print_subscriber_json(const struct vnet_subscriber *s)
{
    printf("{");
    json_str("name", s->name, true);
    printf("\"id\":%llu,\"admin\":%s,\"has_token\":%s}", (unsigned long long)s->id,
           s->admin ? "true" : "false", s->has_token ? "true" : "false");
}

static void print_subscribers(const struct vnet_subscriber *v, uint32_t count)
{
    if (json) {
        printf("[");
        for (uint32_t i = 0; i < count; i++) {
            if (i)
                putchar(',');
            print_subscriber_json(&v[i]);
        }
        printf("]\n");
        return;
    }
    printf("%-20s %6s %-6s %-6s\n", "SUBSCRIBER", "ID", "ADMIN", "TOKEN");
    for (uint32_t i = 0; i < count; i++) {
        const struct vnet_subscriber *s = &v[i];
        printf("%-20s %6llu %-6s %-6s\n", s->name, (unsigned long long)s->id,
               s->admin ? "yes" : "no", s->has_token ? "yes" : "no");
    }
}

static void print_nodes(const struct vnet_node_info *v, uint32_t n)
{
    if (json) {
        printf("[");
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                putchar(',');
            print_node_json(&v[i]);
        }
        printf("]\n");
        return;
    }
    printf("%-16s %6s %-17s %-15s %-22s %-22s %-8s %8s\n", "NODE", "ID", "MAC", "IP", "PHYS",
           "OBSERVED", "STATE", "REVISION");
    for (uint32_t i = 0; i < n; i++) {
        char mac[VNET_MAC_STRLEN], a[64], p[64], o[64];
        vnet_mac_format(&v[i].mac, mac, sizeof(mac));
        printf("%-16s %6llu %-17s %-15s %-22s %-22s %-8s %8llu\n", v[i].name,
               (unsigned long long)v[i].id, mac, ipstr(&v[i].ips[0], a, sizeof(a)),
               epstr(&v[i].phys, p, sizeof(p)), epstr(&v[i].observed, o, sizeof(o)),
               state_name(v[i].state), (unsigned long long)v[i].revision);
        if (v[i].ips[1].family)
            printf("%-16s %6s %-17s %s\n", "", "", "", ipstr(&v[i].ips[1], a, sizeof(a)));
    }
}

/* ---- network status ---- */

static uint64_t now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The name of node @id among the status entries, else NULL. */
static const char *status_node_name(const struct vnet_client_status *r, uint64_t id)
{
    for (uint32_t i = 0; id && i < r->count; i++)
        if (r->nodes[i].node.id == id)
            return r->nodes[i].node.name;
    return NULL;
}

/* A peer as the table shows it: its node name, else its endpoint. */
static const char *peer_label(const struct vnet_client_status *r, const struct vnet_report_peer *p,
                              char *buf, size_t len)
{
    const char *name = status_node_name(r, p->node_id);
    if (name) {
        snprintf(buf, len, "%s", name);
        return buf;
    }
    return epstr(&p->ep, buf, len);
}

static const char *reach_name(uint8_t reach)
{
    return reach == VNET_REACH_DIRECT ? "direct" : "none";
}

/* 1536 -> "1.5K": bytes for a table column. */
static const char *human_bytes(uint64_t v, char *buf, size_t len)
{
    static const char units[] = "KMGTPE";
    if (v < 1024) {
        snprintf(buf, len, "%llu", (unsigned long long)v);
        return buf;
    }
    double d = (double)v;
    unsigned u = 0;
    while (d >= 1024 && u < sizeof(units) - 1) {
        d /= 1024;
        u++;
    }
    snprintf(buf, len, "%.1f%c", d, units[u - 1]);
    return buf;
}

/* "now", "42s ago", "3m ago", "never". */
static const char *ago(uint64_t then_ms, uint64_t now_ms, char *buf, size_t len)
{
    if (!then_ms) {
        snprintf(buf, len, "never");
        return buf;
    }
    uint64_t s = now_ms > then_ms ? (now_ms - then_ms) / 1000 : 0;
    if (s < 2)
        snprintf(buf, len, "now");
    else if (s < 120)
        snprintf(buf, len, "%llus ago", (unsigned long long)s);
    else if (s < 7200)
        snprintf(buf, len, "%llum ago", (unsigned long long)(s / 60));
    else
        snprintf(buf, len, "%lluh ago", (unsigned long long)(s / 3600));
    return buf;
}

static void print_counters_json(const char *key, const struct vnet_report_counters *c)
{
    printf("\"%s\":{\"rx_packets\":%llu,\"rx_bytes\":%llu,\"tx_packets\":%llu,\"tx_bytes\":%llu}",
           key, (unsigned long long)c->rx_packets, (unsigned long long)c->rx_bytes,
           (unsigned long long)c->tx_packets, (unsigned long long)c->tx_bytes);
}

static void print_peer_json(const struct vnet_client_status *r, const struct vnet_report_peer *p)
{
    char e[64];
    printf("{");
    json_str("peer", status_node_name(r, p->node_id), true);
    printf("\"node_id\":%llu,", (unsigned long long)p->node_id);
    json_str("endpoint", epstr(&p->ep, e, sizeof(e)), true);
    printf("\"rx_packets\":%llu,\"rx_bytes\":%llu,\"tx_packets\":%llu,\"tx_bytes\":%llu,",
           (unsigned long long)p->c.rx_packets, (unsigned long long)p->c.rx_bytes,
           (unsigned long long)p->c.tx_packets, (unsigned long long)p->c.tx_bytes);
    if (p->has_last_rx)
        printf("\"last_rx_ms\":%llu,", (unsigned long long)p->last_rx_ms);
    else
        printf("\"last_rx_ms\":null,");
    json_str("reach", reach_name(p->reach), true);
    if (p->has_rtt)
        printf("\"rtt_us\":%u}", p->rtt_us);
    else
        printf("\"rtt_us\":null}");
}

/* The report: its counters whole, and the table's columns (bytes_in/out, drops, reaches). */
static void print_report_json(const struct vnet_client_status *r, const struct vnet_report *rep,
                              uint64_t age_ms)
{
    printf("\"bytes_in\":%llu,\"bytes_out\":%llu,\"drops\":%llu,\"reaches\":[",
           (unsigned long long)rep->virt.tx_bytes, (unsigned long long)rep->virt.rx_bytes,
           (unsigned long long)rep->drops);
    for (uint32_t k = 0; k < rep->npeers; k++) {
        if (k)
            putchar(',');
        print_peer_json(r, &rep->peers[k]);
    }
    printf("],\"report\":{\"age_ms\":%llu,", (unsigned long long)age_ms);
    print_counters_json("virtual", &rep->virt);
    putchar(',');
    print_counters_json("underlay", &rep->under);
    printf(",\"drops\":%llu,\"drop_reasons\":{", (unsigned long long)rep->drops);
    bool first = true;
    for (unsigned k = 0; k < VNET_REPORT_DROPS; k++) {
        if (!rep->drop_reasons[k])
            continue;
        printf("%s\"%s\":%llu", first ? "" : ",", vnet_dp_drop_name((enum vnet_dp_drop)k),
               (unsigned long long)rep->drop_reasons[k]);
        first = false;
    }
    printf("},\"table_size\":%llu}", (unsigned long long)rep->table_size);
}

static void print_status_json(const struct vnet_client_status *r, uint32_t connected,
                              uint32_t converged)
{
    const struct vnet_network *n = &r->network;
    printf("{");
    json_str("network", n->name, true);
    printf("\"revision\":%llu,\"nodes\":%u,\"connected\":%u,\"converged\":%u,\"status\":[",
           (unsigned long long)n->revision, r->count, connected, converged);
    for (uint32_t i = 0; i < r->count; i++) {
        const struct vnet_node_status *s = &r->nodes[i];
        char ph[64], ob[64], fr[64];
        printf("%s{", i ? "," : "");
        json_str("node", s->node.name, true);
        printf("\"id\":%llu,\"connected\":%s,\"connected_since_ms\":",
               (unsigned long long)s->node.id, s->connected ? "true" : "false");
        if (s->connected_since_ms)
            printf("%llu,", (unsigned long long)s->connected_since_ms);
        else
            printf("null,");
        printf("\"acked\":%llu,\"converged\":%s,\"last_seen_ms\":", (unsigned long long)s->acked,
               s->acked == n->revision ? "true" : "false");
        if (s->last_seen_ms)
            printf("%llu,", (unsigned long long)s->last_seen_ms);
        else
            printf("null,");
        json_str("phys", epstr(&s->node.phys, ph, sizeof(ph)), true);
        json_str("observed", epstr(&s->node.observed, ob, sizeof(ob)), true);
        json_str("session_from", epstr(&s->session_from, fr, sizeof(fr)), true);
        if (s->has_report)
            print_report_json(r, &s->report, s->report_age_ms);
        else
            printf("\"bytes_in\":null,\"bytes_out\":null,\"drops\":null,\"reaches\":null,"
                   "\"report\":null");
        printf("}");
    }
    printf("]}\n");
}

static void print_status(const struct vnet_client_status *r)
{
    const struct vnet_network *n = &r->network;
    uint32_t connected = 0, converged = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        connected += r->nodes[i].connected;
        converged += r->nodes[i].acked == n->revision;
    }
    if (json) {
        print_status_json(r, connected, converged);
        return;
    }
    uint64_t now = now_unix_ms();
    printf("network %s: revision %llu, %u nodes, %u connected, %u converged\n", n->name,
           (unsigned long long)n->revision, r->count, connected, converged);
    printf("%-16s %-9s %-9s %-10s %-22s %8s %8s %7s  %s\n", "NODE", "CONNECTED", "CONVERGED",
           "LAST-SEEN", "OBSERVED", "IN", "OUT", "DROPS", "REACHES");
    for (uint32_t i = 0; i < r->count; i++) {
        const struct vnet_node_status *s = &r->nodes[i];
        const struct vnet_report *rep = &s->report;
        char o[64], seen[32], in[16] = "-", out[16] = "-", drops[24] = "-";
        if (s->has_report) {
            human_bytes(rep->virt.tx_bytes, in, sizeof(in));
            human_bytes(rep->virt.rx_bytes, out, sizeof(out));
            snprintf(drops, sizeof(drops), "%llu", (unsigned long long)rep->drops);
        }
        printf(
            "%-16s %-9s %-9s %-10s %-22s %8s %8s %7s  ", s->node.name, s->connected ? "yes" : "no",
            s->acked == n->revision ? "yes" : "no", ago(s->last_seen_ms, now, seen, sizeof(seen)),
            epstr(s->node.observed.ip.family ? &s->node.observed : &s->session_from, o, sizeof(o)),
            in, out, drops);
        if (!s->has_report || rep->npeers == 0)
            printf("-");
        for (uint32_t k = 0; s->has_report && k < rep->npeers; k++) {
            char pl[64];
            printf("%s%s(%s)", k ? " " : "", peer_label(r, &rep->peers[k], pl, sizeof(pl)),
                   reach_name(rep->peers[k].reach));
        }
        printf("\n");
    }
}

/* ---- arguments ---- */

enum op {
    NETWORK_CREATE = 1,
    NETWORK_LIST,
    NETWORK_SHOW,
    NETWORK_DELETE,
    NETWORK_STATUS,
    NODE_ADD,
    NODE_LIST,
    NODE_SHOW,
    NODE_MOVE,
    NODE_REMOVE,
    NODE_REVOKE,
    SUBSCRIBER_CREATE,
    SUBSCRIBER_LIST,
    SUBSCRIBER_DELETE,
    SUBSCRIBER_TOKEN,
};

struct cmd {
    const char *controller, *socket;
    const char *token_file, *controller_key;
    uint32_t timeout_ms;
    enum op op;
    char name[VNET_NAME_MAX]; /* the network's or the subscriber's */
    char node[VNET_NAME_MAX];
    struct vnet_client_network_opts net;
    struct vnet_client_node_opts nd; /* node add; node move's phys */
};

/* Every command: its words, the names it takes (what they are, in order), its options. */
static const struct command {
    const char *obj, *verb;
    enum op op;
    const char *name, *node;
    const char *opts;
} commands[] = {
    {"network", "create", NETWORK_CREATE, "network name", NULL, "vni subnet mtu mode"},
    {"network", "list", NETWORK_LIST, NULL, NULL, NULL},
    {"network", "show", NETWORK_SHOW, "network name", NULL, NULL},
    {"network", "delete", NETWORK_DELETE, "network name", NULL, NULL},
    {"network", "status", NETWORK_STATUS, "network name", NULL, NULL},
    {"node", "add", NODE_ADD, "network name", "node name", "mac ip phys pubkey"},
    {"node", "list", NODE_LIST, "network name", NULL, NULL},
    {"node", "show", NODE_SHOW, "network name", "node name", NULL},
    {"node", "move", NODE_MOVE, "network name", "node name", "phys"},
    {"node", "remove", NODE_REMOVE, "network name", "node name", NULL},
    {"node", "revoke", NODE_REVOKE, "network name", "node name", NULL},
    {"subscriber", "create", SUBSCRIBER_CREATE, "subscriber name", NULL, NULL},
    {"subscriber", "list", SUBSCRIBER_LIST, NULL, NULL, NULL},
    {"subscriber", "delete", SUBSCRIBER_DELETE, "subscriber name", NULL, NULL},
    {"subscriber", "token", SUBSCRIBER_TOKEN, "subscriber name", NULL, NULL},
};

/* A name as the controller will judge it (VNET_NAME_RULE); a network's may be the admin's
 * SUBSCRIBER/NETWORK. */
static int want_name(const char *what, const char *s, char *dst)
{
    if (!s)
        return usage_error("missing %s", what);
    bool ok = strlen(s) < VNET_NAME_MAX && vnet_name_valid(s);
    const char *slash = strchr(s, '/');
    if (!ok && slash && strncmp(what, "network", 7) == 0 && strlen(s) < VNET_NAME_MAX) {
        char sub[VNET_NAME_MAX];
        snprintf(sub, sizeof(sub), "%.*s", (int)(slash - s), s);
        ok = vnet_name_valid(sub) && vnet_name_valid(slash + 1);
    }
    if (!ok) {
        fprintf(stderr, "%s: bad %s '%s': %s\nTry '%s --help'.\n", prog, what, s, VNET_NAME_RULE,
                prog);
        return 2;
    }
    strcpy(dst, s);
    return 0;
}

/* A subnet names a network, not a host in it: 10.20.0.5/24 is refused (as ip(8) refuses it),
 * saying which network was probably meant. 0, or 2 with the message printed. */
static int subnet_host_bits(const char *val, const struct vnet_prefix *p)
{
    struct vnet_prefix net = *p;
    unsigned bits = p->ip.family == VNET_AF_INET ? 32 : 128;
    for (unsigned i = p->len; i < bits; i++)
        net.ip.addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    if (vnet_ip_eq(&net.ip, &p->ip))
        return 0;
    char want[VNET_PREFIX_STRLEN];
    vnet_prefix_format(&net, want, sizeof(want));
    fprintf(stderr, "%s: bad --subnet '%s': host bits set: did you mean %s?\nTry '%s --help'.\n",
            prog, val, want, prog);
    return 2;
}

static int parse_u32(const char *s, unsigned long max, uint32_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_command(int argc, char **argv, int i, struct cmd *c)
{
    struct vnet_client_network_opts *net = &c->net;
    struct vnet_client_node_opts *nd = &c->nd;
    if (i >= argc)
        return usage_error("%s", "missing command");
    const char *obj = argv[i++];
    const char *verb = i < argc ? argv[i++] : NULL;
    if (!verb)
        return usage_error("missing action after '%s'", obj);
    const struct command *k = NULL;
    bool known = false;
    for (size_t j = 0; j < sizeof(commands) / sizeof(commands[0]); j++) {
        known |= strcmp(obj, commands[j].obj) == 0;
        if (strcmp(obj, commands[j].obj) == 0 && strcmp(verb, commands[j].verb) == 0)
            k = &commands[j];
    }
    if (!known)
        return usage_error("unknown command '%s' (network, node, subscriber)", obj);
    if (!k) {
        char what[128];
        snprintf(what, sizeof(what), "%s %s", obj, verb);
        return usage_error("unknown action '%s'", what);
    }
    c->op = k->op;
    const char *extra_ok = k->opts;
    int rc;
    if (k->name && (rc = want_name(k->name, i < argc ? argv[i++] : NULL, c->name)) != 0)
        return rc;
    if (k->node && (rc = want_name(k->node, i < argc ? argv[i++] : NULL, c->node)) != 0)
        return rc;
    while (i < argc) {
        const char *opt = argv[i++];
        if (strcmp(opt, "--json") == 0) { /* accepted after the command too */
            json = true;
            continue;
        }
        const char *val = i < argc ? argv[i] : NULL;
        const char *name = strncmp(opt, "--", 2) == 0 ? opt + 2 : NULL;
        if (!name || !extra_ok || !strstr(extra_ok, name) || strchr(name, ' ') || !*name)
            return usage_error("unexpected argument '%s'", opt);
        if (!val)
            return usage_error("option '%s' needs a value", opt);
        i++;
        if (strcmp(name, "vni") == 0) {
            if (parse_u32(val, VNET_VNI_MAX, &net->vni) || net->vni == 0)
                return usage_error("bad --vni '%s': want 1..16777215", val);
        } else if (strcmp(name, "mode") == 0) {
            if (strcmp(val, "plain") == 0)
                net->mode = VNET_CLIENT_MODE_PLAIN;
            else if (strcmp(val, "secure") == 0)
                net->mode = VNET_CLIENT_MODE_SECURE;
            else
                return usage_error("bad --mode '%s': plain or secure", val);
        } else if (strcmp(name, "mtu") == 0) {
            if (parse_u32(val, 65000, &net->mtu) || net->mtu < 576)
                return usage_error("bad --mtu '%s': want 576..65000", val);
        } else if (strcmp(name, "subnet") == 0) {
            struct vnet_prefix p;
            if (vnet_prefix_parse(val, &p))
                return usage_error("bad --subnet '%s': want CIDR like 10.0.0.0/24", val);
            if ((rc = subnet_host_bits(val, &p)) != 0)
                return rc;
            struct vnet_prefix *slot = p.ip.family == VNET_AF_INET ? &net->subnet4 : &net->subnet6;
            if (slot->ip.family) {
                char first[VNET_PREFIX_STRLEN];
                vnet_prefix_format(slot, first, sizeof(first));
                fprintf(stderr,
                        "%s: two IPv%c --subnet given (%s and %s): a network has at most one "
                        "IPv4 and one IPv6 subnet\nTry '%s --help'.\n",
                        prog, p.ip.family == VNET_AF_INET ? '4' : '6', first, val, prog);
                return 2;
            }
            *slot = p;
        } else if (strcmp(name, "mac") == 0) {
            if (vnet_mac_parse(val, &nd->mac) || vnet_mac_is_multicast(&nd->mac))
                return usage_error("bad --mac '%s': want a unicast xx:xx:xx:xx:xx:xx", val);
            nd->has_mac = true;
        } else if (strcmp(name, "ip") == 0) {
            struct vnet_ip ip;
            if (vnet_ip_parse(val, &ip))
                return usage_error("bad --ip '%s': want an IPv4 or IPv6 address", val);
            struct vnet_ip *slot = ip.family == VNET_AF_INET ? &nd->ip4 : &nd->ip6;
            if (slot->family)
                return usage_error("--ip '%s' is a second address of its family: a node has at "
                                   "most one IPv4 and one IPv6 address",
                                   val);
            *slot = ip;
        } else if (strcmp(name, "pubkey") == 0) {
            if (vnet_pubkey_parse(val, nd->pubkey))
                return usage_error("bad --pubkey '%s': want the 43 characters that vnet-node "
                                   "--pubkey prints",
                                   val);
            nd->has_pubkey = true;
        } else if (strcmp(name, "phys") == 0) {
            if (vnet_endpoint_parse(val, &nd->phys))
                return usage_error("bad --phys '%s': want IP:PORT or [IPv6]:PORT", val);
        }
    }
    if (c->op == NODE_MOVE && !c->nd.phys.ip.family)
        return usage_error("%s", "node move needs --phys IP:PORT");
    return 0;
}

/* Trim surrounding blanks and a final newline in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* ---- vnetctl.conf ---- */

struct ctlconf {
    const char *path; /* the file read, or NULL */
    char controller[256], socket[256], controller_key[128], token[VNET_MSG_TEXT_MAX];
    char token_file[1024];
    char timeout[16];
    bool socket_last; /* "socket" given after "controller" */
    char msg[512];
};

static struct ctlconf conf;

static int on_conf(const char *name, const char *value, int line, void *arg)
{
    struct ctlconf *k = arg;
    static const struct {
        const char *name;
        size_t off, len;
    } keys[] = {
#define KEY(n, f) {n, offsetof(struct ctlconf, f), sizeof(((struct ctlconf *)0)->f)}
        KEY("controller", controller),         KEY("socket", socket),
        KEY("controller-key", controller_key), KEY("token", token),
        KEY("token-file", token_file),         KEY("timeout", timeout),
#undef KEY
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(name, keys[i].name) != 0)
            continue;
        if (!value || !value[0] || strlen(value) >= keys[i].len) {
            snprintf(k->msg, sizeof(k->msg), "%s:%d: '%s' needs a value%s", k->path, line, name,
                     value && value[0] ? " (too long)" : "");
            return 2;
        }
        snprintf((char *)k + keys[i].off, keys[i].len, "%s", value);
        if (i <= 1)
            k->socket_last = i == 1;
        return 0;
    }
    snprintf(k->msg, sizeof(k->msg), "%s:%d: unknown option '%s'", k->path, line, name);
    return 2;
}

/* Read the first vnetctl.conf found into conf. Returns 0, 1 (cannot read it) or 2 (bad). */
static int read_conf(void)
{
    static char user[1024];
    const char *paths[2] = {NULL, "/etc/vnet/vnetctl.conf"};
    const char *env = getenv("VNETCTL_CONFIG"), *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (env) {
        paths[0] = env[0] ? env : NULL;
        paths[1] = NULL;
    } else if (xdg && xdg[0]) {
        snprintf(user, sizeof(user), "%s/vnet/vnetctl.conf", xdg);
        paths[0] = user;
    } else if (home && home[0]) {
        snprintf(user, sizeof(user), "%s/.config/vnet/vnetctl.conf", home);
        paths[0] = user;
    }
    for (int i = 0; i < 2; i++) {
        if (!paths[i] || (i == 0 && env ? false : access(paths[i], F_OK) != 0))
            continue;
        conf.path = paths[i];
        int rc = progopt_read_ini(paths[i], on_conf, &conf, conf.msg, sizeof(conf.msg));
        if (rc) {
            fprintf(stderr, "%s: %s\n", prog, conf.msg);
            return rc == -1 ? 1 : 2;
        }
        struct stat st;
        if (conf.token[0] && stat(paths[i], &st) == 0 && (st.st_mode & 077)) {
            fprintf(stderr, "%s: %s holds a token but others may read it (chmod 600 it)\n", prog,
                    paths[i]);
            return 1;
        }
        return 0;
    }
    return 0;
}

/* On the controller's machine with nothing said about which controller or how to
 * authenticate (no address, key or token on the command line, in the environment or in
 * vnetctl.conf): the local controller at its default API address, as its admin, with the
 * admin token and the key the controller keeps in its state directory ($VNET_STATE_DIR or
 * /var/lib/vnet: controller.db.admin-token, controller.key), as zerotier-cli does. Only who
 * may read those files (root, the controller's user) gets this far; anyone else gets the
 * controller's refusal as before. Returns whether the local files are used. */
static bool local_controller(struct cmd *c, char pub[VNET_PUBKEY_STRLEN], char *token_path,
                             size_t token_len)
{
    static const char *const envs[] = {"VNET_CONTROLLER", "VNET_CONTROLLER_KEY", "VNET_TOKEN",
                                       "VNET_TOKEN_FILE"};
    if (c->controller || c->socket || c->controller_key || c->token_file || conf.token[0] ||
        conf.token_file[0] || conf.controller_key[0])
        return false;
    for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++)
        if (getenv(envs[i]) && getenv(envs[i])[0])
            return false;
    char key_path[4096], err[256];
    if (progopt_state_file("controller.key", false, key_path, sizeof(key_path), err, sizeof(err)) ||
        progopt_state_file("controller.db.admin-token", false, token_path, token_len, err,
                           sizeof(err)) ||
        access(key_path, R_OK) != 0 || access(token_path, R_OK) != 0)
        return false;
    struct vnet_keypair kp;
    if (vnet_key_load(key_path, &kp, err, sizeof(err)) != 0)
        return false; /* the controller would not start with it either */
    vnet_pubkey_format(kp.pub, pub, VNET_PUBKEY_STRLEN);
    vnet_key_wipe(&kp);
    c->controller_key = pub;
    c->token_file = token_path;
    return true;
}

/* The API token: --token-file, else $VNET_TOKEN, else the file $VNET_TOKEN_FILE; "" for none.
 * A token file must not be readable by others, like a key file. Returns 0, 1 (cannot read:
 * message printed) or 2 (a malformed token). */
static int load_token(const struct cmd *c, char *out, size_t outlen)
{
    const char *file = c->token_file, *env = getenv("VNET_TOKEN");
    out[0] = '\0';
    if (!file && !(env && env[0]) && !(getenv("VNET_TOKEN_FILE") && getenv("VNET_TOKEN_FILE")[0]))
        env = conf.token[0] ? conf.token : NULL, file = conf.token_file[0] ? conf.token_file : NULL;
    if (!file && env && env[0]) {
        char buf[VNET_MSG_TEXT_MAX];
        snprintf(buf, sizeof(buf), "%s", env);
        snprintf(out, outlen, "%s", trim(buf));
    } else {
        if (!file)
            file = getenv("VNET_TOKEN_FILE");
        if (!file || !file[0])
            return 0;
        char buf[VNET_MSG_TEXT_MAX], why[256];
        size_t n;
        if (vnet_secret_file_read(file, "token file", buf, sizeof(buf) - 1, &n, why, sizeof(why)) !=
            0) {
            fprintf(stderr, "%s: %s\n", prog, why);
            return 1;
        }
        buf[n] = '\0';
        snprintf(out, outlen, "%s", trim(buf));
        memset(buf, 0, sizeof(buf));
    }
    uint8_t raw[VNET_API_TOKEN_LEN];
    if (out[0] && vnet_api_token_parse(out, raw) != 0) {
        memset(out, 0, outlen);
        return usage_error("%s", "malformed API token (want vnetapi1- and 43 characters)");
    }
    memset(raw, 0, sizeof(raw));
    return 0;
}

/* ---- the request ---- */

static void print_new_token(const struct vnet_client_new_token *t)
{
    if (json) { /* {"subscriber": {...}, "token": "vnetapi1-..."} */
        printf("{\"subscriber\":");
        print_subscriber_json(&t->subscriber);
        printf(",");
        json_str("token", t->token[0] ? t->token : NULL, false);
        printf("}\n");
        return;
    }
    print_subscribers(&t->subscriber, 1);
    printf("API token (shown once; keep it in a file of mode 0600): %s\n", t->token);
}

/* "{"ok":true}" or the human line @fmt about @name. */
static void print_done(const char *fmt, const char *name)
{
    if (json)
        printf("{\"ok\":true}\n");
    else
        printf(fmt, name);
}

/* Make the request of @c and print its result. Returns 0 or the code, with @err explaining. */
static int run(struct vnet_client *cl, const struct cmd *c, char *err, size_t errlen)
{
    struct vnet_network net;
    struct vnet_node_info node;
    struct vnet_client_new_node added;
    struct vnet_client_new_token tok;
    struct vnet_client_networks *nets = NULL;
    struct vnet_client_network *shown = NULL;
    struct vnet_client_status *st = NULL;
    struct vnet_client_nodes *nodes = NULL;
    struct vnet_client_subscribers *subs = NULL;
    int rc = 0;
    switch (c->op) {
    case NETWORK_CREATE:
        if ((rc = vnet_client_network_create(cl, c->name, &c->net, &net, err, errlen)) == 0)
            print_networks(&net, NULL, 1);
        break;
    case NETWORK_LIST:
        if ((rc = vnet_client_network_list(cl, &nets, err, errlen)) == 0)
            print_networks(nets->networks, nets->owners, nets->count);
        break;
    case NETWORK_SHOW:
        if ((rc = vnet_client_network_show(cl, c->name, &shown, err, errlen)) != 0)
            break;
        if (json) {
            printf("{\"network\":");
            print_network_json(&shown->network, NULL);
            printf(",\"nodes\":");
            print_nodes(shown->nodes, shown->count);
            printf("}\n");
        } else {
            print_networks(&shown->network, NULL, 1);
            printf("\n");
            print_nodes(shown->nodes, shown->count);
        }
        break;
    case NETWORK_DELETE:
        if ((rc = vnet_client_network_delete(cl, c->name, err, errlen)) == 0)
            print_done("network %s removed\n", c->name);
        break;
    case NETWORK_STATUS:
        if ((rc = vnet_client_network_status(cl, c->name, &st, err, errlen)) == 0)
            print_status(st);
        break;
    case NODE_ADD:
        if ((rc = vnet_client_node_add(cl, c->name, c->node, &c->nd, &added, err, errlen)) != 0)
            break;
        if (json) { /* {"node": {...}, "join_token": "..." | null} */
            printf("{\"node\":");
            print_node_json(&added.node);
            printf(",");
            json_str("join_token", added.join_token[0] ? added.join_token : NULL, false);
            printf("}\n");
            break;
        }
        print_nodes(&added.node, 1);
        if (added.join_token[0])
            printf("join token (single use, valid 24 h): %s\n", added.join_token);
        break;
    case NODE_LIST:
        if ((rc = vnet_client_node_list(cl, c->name, &nodes, err, errlen)) == 0)
            print_nodes(nodes->nodes, nodes->count);
        break;
    case NODE_SHOW:
        if ((rc = vnet_client_node_show(cl, c->name, c->node, &node, err, errlen)) == 0)
            print_nodes(&node, 1);
        break;
    case NODE_MOVE:
        rc = vnet_client_node_move(cl, c->name, c->node, &c->nd.phys, &node, err, errlen);
        if (rc == 0)
            print_nodes(&node, 1);
        break;
    case NODE_REMOVE:
        if ((rc = vnet_client_node_remove(cl, c->name, c->node, err, errlen)) == 0)
            print_done("node %s removed\n", c->node);
        break;
    case NODE_REVOKE:
        if ((rc = vnet_client_node_revoke(cl, c->name, c->node, err, errlen)) == 0)
            print_done("node %s: key revoked\n", c->node);
        break;
    case SUBSCRIBER_CREATE:
        if ((rc = vnet_client_subscriber_create(cl, c->name, &tok, err, errlen)) == 0)
            print_new_token(&tok);
        break;
    case SUBSCRIBER_TOKEN:
        if ((rc = vnet_client_subscriber_token(cl, c->name, &tok, err, errlen)) == 0)
            print_new_token(&tok);
        break;
    case SUBSCRIBER_LIST:
        if ((rc = vnet_client_subscriber_list(cl, &subs, err, errlen)) == 0)
            print_subscribers(subs->subscribers, subs->count);
        break;
    case SUBSCRIBER_DELETE:
        if ((rc = vnet_client_subscriber_delete(cl, c->name, err, errlen)) == 0)
            print_done("subscriber %s removed\n", c->name);
        break;
    }
    memset(&tok, 0, sizeof(tok));
    memset(&added, 0, sizeof(added));
    vnet_client_free(nets);
    vnet_client_free(shown);
    vnet_client_free(st);
    vnet_client_free(nodes);
    vnet_client_free(subs);
    return rc;
}

int main(int argc, char **argv)
{
    struct cmd c;
    memset(&c, 0, sizeof(c));
    c.controller = getenv("VNET_CONTROLLER");
    c.timeout_ms = 0; /* 0: not given (the file's, else 10000) */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("vnetctl %s\n", vnet_version());
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--log-level") == 0 || strcmp(a, "--log-format") == 0) {
            if (i + 1 >= argc)
                return usage_error("option '%s' needs a value", a);
            const char *v = argv[++i];
            enum vnet_log_level l;
            enum vnet_log_format f;
            if (a[6] == 'l' && vnet_log_level_parse(v, &l))
                return usage_error("bad --log-level '%s': error, warn, info or debug", v);
            if (a[6] == 'f' && vnet_log_format_parse(v, &f))
                return usage_error("bad --log-format '%s': text or json", v);
            if (a[6] == 'l')
                vnet_log_set_level(l);
            else
                vnet_log_set_format(f);
        } else if (strcmp(a, "--token-file") == 0 || strcmp(a, "--controller-key") == 0) {
            if (i + 1 >= argc)
                return usage_error("option '%s' needs a value", a);
            if (a[2] == 't')
                c.token_file = argv[++i];
            else
                c.controller_key = argv[++i];
        } else if (strcmp(a, "--controller") == 0 || strcmp(a, "--socket") == 0 ||
                   strcmp(a, "--timeout") == 0) {
            if (i + 1 >= argc)
                return usage_error("option '%s' needs a value", a);
            const char *v = argv[++i];
            if (a[2] == 'c')
                c.controller = v, c.socket = NULL;
            else if (a[2] == 's')
                c.socket = v, c.controller = NULL;
            else if (parse_u32(v, 3600000, &c.timeout_ms) || !c.timeout_ms)
                return usage_error("bad --timeout '%s': milliseconds", v);
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    int rc = parse_command(argc, argv, i, &c);
    if (rc)
        return rc;
    if ((rc = read_conf()) != 0)
        return rc;
    if (!c.controller && !c.socket) { /* neither the command line nor $VNET_CONTROLLER */
        if (conf.socket[0] && (conf.socket_last || !conf.controller[0]))
            c.socket = conf.socket;
        else if (conf.controller[0])
            c.controller = conf.controller;
    }
    if (!c.controller_key && !getenv("VNET_CONTROLLER_KEY") && conf.controller_key[0])
        c.controller_key = conf.controller_key;
    static char local_pub[VNET_PUBKEY_STRLEN], local_token[4096];
    bool local_admin = local_controller(&c, local_pub, local_token, sizeof(local_token));
    if (!c.timeout_ms && conf.timeout[0] &&
        (parse_u32(conf.timeout, 3600000, &c.timeout_ms) || !c.timeout_ms)) {
        fprintf(stderr, "%s: %s: bad timeout '%s': milliseconds\n", prog, conf.path, conf.timeout);
        return 2;
    }
    if (!c.timeout_ms)
        c.timeout_ms = 10000;
    const char *addr = c.socket ? c.socket : c.controller ? c.controller : "127.0.0.1:7701";
    if (c.socket && !strchr(c.socket, '/'))
        return usage_error("bad --socket '%s': want a path", c.socket);
    char err[256] = "";
    char token[VNET_MSG_TEXT_MAX] = "";
    uint8_t ctl_pub[VNET_KEY_LEN];
    struct vnet_client_opts opts = {.timeout_ms = c.timeout_ms};
    /* where the key came from, for the message when it does not match */
    char key_source[300] = "--controller-key";
    if (c.controller_key == conf.controller_key)
        snprintf(key_source, sizeof(key_source), "controller-key in %s", conf.path);
    else if (local_admin)
        snprintf(key_source, sizeof(key_source), "the local controller's key file");
    if (!c.socket) { /* the Unix socket needs neither: whoever may open it is the admin */
        if (!c.controller_key) {
            c.controller_key = getenv("VNET_CONTROLLER_KEY");
            snprintf(key_source, sizeof(key_source), "VNET_CONTROLLER_KEY");
        }
        if (c.controller_key && c.controller_key[0]) {
            if (vnet_pubkey_parse(c.controller_key, ctl_pub))
                return usage_error("bad controller key '%s': want the 43 characters that "
                                   "vnet-controller --pubkey prints",
                                   c.controller_key);
            opts.controller_pub = ctl_pub;
        }
        if ((rc = load_token(&c, token, sizeof(token))) != 0)
            return rc;
        if (token[0]) {
            if (!opts.controller_pub)
                return usage_error("%s", "an API token needs the controller's public key: "
                                         "--controller-key KEY or VNET_CONTROLLER_KEY");
            opts.token = token;
        }
    }
    struct vnet_client *cl;
    rc = vnet_client_connect2(addr, &opts, &cl, err, sizeof(err));
    memset(token, 0, sizeof(token));
    if (rc == VNET_EKEYREJECTED) {
        fprintf(stderr,
                "%s: the controller's key does not match %s (%s): use the key that "
                "'vnet-controller --pubkey KEYFILE' prints on the controller\n",
                prog, key_source, c.controller_key);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "%s: %s\n", prog, err[0] ? err : vnet_strerror(rc));
        return 1;
    }
    rc = run(cl, &c, err, sizeof(err));
    vnet_client_close(cl);
    if (rc) {
        fprintf(stderr, "%s: %s\n", prog, err[0] ? err : vnet_strerror(rc));
        return 1;
    }
    return 0;
}
