/* libvnet: a whole node in one object (include/vnet/node.h). */
#include "vnet/node.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vnet/crypto.h"
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/netdev.h"
#include "vnet/port.h"
#include "vnet/store.h"
#include "vnet/token.h"

#include "backend/ktier_int.h"
#include "err_int.h"
#include "node_util_int.h"
#include "report_int.h"

#define MOD                     "node"
#define VNET_NODE_KTIER_SYNC_MS 100 /* kernel tier: how often the table revision is checked */
#define MAX_SAVED_ADDRS         32

/* A device that existed before the node opened it, as it was: put back at close. */
struct saved_dev {
    bool valid, up;
    char ifname[16];
    struct vnet_mac mac;
    uint32_t mtu;
    struct vnet_prefix addrs[MAX_SAVED_ADDRS];
    size_t naddrs;
};

struct worker {
    struct vnet_node *n;
    struct vnet_datapath *dp;
    pthread_t th;
    bool running;
};

struct vnet_node {
    uv_loop_t *loop;
    char prefix[8]; /* label prefix of log lines ("--") */
    bool managed, learn, arp_proxy, threaded;
    unsigned nq;  /* queues of the ports */
    unsigned ndp; /* datapaths made: nq, or 0 before the first welcome */
    uint32_t busy_poll_us;
    struct vnet_table *table;
    struct vnet_port *vport, *uport;
    char ifname[16];
    struct vnet_endpoint local;
    struct vnet_datapath *dp[VNET_NODE_MAX_QUEUES];

    /* Static mode: what the "up" line reports. */
    uint32_t vni, mtu;
    size_t npeers, nentries;

    /* Managed mode. */
    char controller[VNET_ENDPOINT_STRLEN + 8], network[VNET_NAME_MAX], name[VNET_NAME_MAX];
    struct vnet_agent *agent;
    struct vnet_agent_callbacks cb;
    void *cb_arg;
    bool has_kp, has_join;
    char pin_path[4096];                           /* KEY_FILE.controller */
    uint8_t join_hash[VNET_TOKEN_HASH_BYTES];      /* of the join secret in use */
    void (*on_refused)(void *, int, const char *); /* the embedder's */
    struct saved_dev saved;                        /* a pre-existing --dev, restored at close */
    bool allow_plain;       /* with a key, a plain network is taken part in too */
    struct vnet_keypair kp; /* this node's key: the data plane's too, in a secure network */
    uint8_t ctl_pub[VNET_KEY_LEN], join_secret[VNET_JOIN_SECRET_LEN];
    /* random per process: secure keys bind it, so nothing captured before a restart of this
     * node opens after it (reported to the controller, which hands it to the peers) */
    uint8_t dp_nonce[VNET_DP_NONCE_LEN];
    struct vnet_peer *peers; /* the last peer list, for datapaths made after it came */
    size_t npeer_list;
    struct vnet__report_state report; /* for the controller's REPORTs (report_int.h) */
    struct vnet_table_op *entries;    /* static mode: the fixed entries in the table now */
    size_t nentry_list;

    /* Driving the datapaths. */
    struct worker workers[VNET_NODE_MAX_QUEUES];
    int stop_fd;      /* eventfd: readable once the workers must stop */
    uv_poll_t pv, pu; /* the ports of queue 0, polled on the loop (not threaded) */
    uv_poll_t pl[VNET_NODE_MAX_QUEUES]; /* the datapaths' learn fds */
    bool ports_polled;
    unsigned nlearn;
    uv_timer_t anchor; /* always there, so a close always ends in a close callback */

    /* --dev kernel:NAME: the kernel switches every frame; the maps mirror table and peers */
    bool kernel, kernel_guest; /* guest: NAME existed (a VM's port): hooked on its ingress */
    struct vnet__ktier *kt;
    uint64_t kt_rev; /* the table revision the maps hold */

    bool started, closing;
    unsigned pending; /* handles whose close callback has not run */
    vnet_node_close_cb close_cb;
    void *close_arg;
};

void vnet_node_options_init(struct vnet_node_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->version = VNET_NODE_OPTIONS_VERSION;
    o->offload = true;
    o->arp_proxy = true;
    o->queues = 1;
}

int vnet_node_underlay_local(const char *spec, struct vnet_endpoint *out)
{
    const char *ep;
    if (!spec || !out)
        return VNET_EINVAL;
    if (strncmp(spec, "udp:", 4) == 0) {
        ep = spec + 4;
    } else if ((strncmp(spec, "raw:", 4) == 0 || strncmp(spec, "xdp:", 4) == 0) &&
               strstr(spec, ",local=")) {
        ep = strstr(spec, ",local=") + 7;
    } else if ((strncmp(spec, "raw:", 4) == 0 || strncmp(spec, "xdp:", 4) == 0) &&
               !strchr(spec, ',')) {
        struct vnet_prefix addrs[MAX_SAVED_ADDRS];
        int n = vnet_netdev_list_addrs(spec + 4, addrs, MAX_SAVED_ADDRS, VNET_NETDEV_ADDR_GLOBAL);
        if (n < 0)
            return n;
        struct vnet_endpoint e = {.port = 4789};
        int rc = vnet__primary_addr(
            addrs, (size_t)n < MAX_SAVED_ADDRS ? (size_t)n : MAX_SAVED_ADDRS, &e.ip);
        if (rc == 0)
            *out = e;
        return rc;
    } else {
        return VNET_EINVAL;
    }
    if (vnet_endpoint_parse(ep, out) == 0)
        return 0;
    char with_port[VNET_ENDPOINT_STRLEN + 8];
    snprintf(with_port, sizeof(with_port),
             strchr(ep, ':') && ep[0] != '[' ? "[%s]:4789" : "%s:4789", ep);
    return vnet_endpoint_parse(with_port, out) == 0 ? 0 : VNET_EINVAL;
}

/* Opens the port @what (dev, underlay) from @spec. With fallback_raw, an xdp: spec that AF_XDP
 * cannot serve here is opened as raw: (AF_PACKET), which takes the same IFNAME[,local=...]:
 * VNET_EPERM (no CAP_BPF/CAP_NET_ADMIN), VNET_ENOTSUP (no AF_XDP or XDP in the kernel),
 * VNET_EBUSY (the interface has an XDP program already). Other errors (a bad spec, no such
 * interface) stay errors: raw would fail the same way. */
static int open_port(const struct vnet_node *n, const char *what, const char *spec,
                     const struct vnet_port_cfg *cfg, bool fallback_raw, struct vnet_port **out,
                     char *err, size_t errlen)
{
    char raw[256];
    int rc = vnet_port_open(spec, cfg, out);
    if ((rc == VNET_EPERM || rc == VNET_ENOTSUP || rc == VNET_EBUSY) && fallback_raw &&
        strncmp(spec, "xdp:", 4) == 0 &&
        (size_t)snprintf(raw, sizeof(raw), "raw:%s", spec + 4) < sizeof(raw)) {
        vnet_log(VNET_LOG_WARN, MOD, "%s%s %s: %s: falling back to %s", n->prefix, what, spec,
                 vnet_strerror(rc), raw);
        spec = raw;
        rc = vnet_port_open(spec, cfg, out);
    }
    if (rc)
        vnet__errf(err, errlen, "%s%s %s: %s", n->prefix, what, spec, vnet_strerror(rc));
    return rc;
}

/* An underlay spec as written, without looking at interfaces: raw|xdp:IFNAME alone is
 * resolved when the node is made. */
static bool underlay_syntax_ok(const char *spec)
{
    struct vnet_endpoint ep;
    if ((strncmp(spec, "raw:", 4) == 0 || strncmp(spec, "xdp:", 4) == 0) && !strchr(spec, ','))
        return spec[4] && strlen(spec + 4) < 16 && !strchr(spec + 4, '/') && !strchr(spec + 4, ' ');
    return vnet_node_underlay_local(spec, &ep) == 0;
}

int vnet_node_options_check(const struct vnet_node_options *o, char *err, size_t errlen)
{
    if (!o) {
        vnet__errf(err, errlen, "no options");
        return VNET_EINVAL;
    }
    if (o->version != VNET_NODE_OPTIONS_VERSION) {
        vnet__errf(err, errlen, "options version %u, want %u (vnet_node_options_init)", o->version,
                   VNET_NODE_OPTIONS_VERSION);
        return VNET_EINVAL;
    }
    const char *p = o->label_prefix ? o->label_prefix : "";
    static const struct vnet_mac zero_mac;
    char host[VNET__HOST_MAX];
    uint16_t port;
    bool managed = o->controller || o->network || o->name;
    int rc = VNET_EINVAL;
    if (!o->dev)
        vnet__errf(err, errlen, "%sdev is required (tap:NAME)", p);
    else if (!o->underlay)
        vnet__errf(err, errlen, "%sunderlay is required (udp:IP:PORT)", p);
    else if (managed && (!o->controller || !o->network || !o->name))
        vnet__errf(err, errlen, "managed mode needs %scontroller, %snetwork and %sname", p, p, p);
    else if (managed && vnet__hostport_split(o->controller, host, &port))
        vnet__errf(err, errlen, "bad %scontroller '%s': want IP:PORT, [IPv6]:PORT or HOST:PORT", p,
                   o->controller);
    else if (managed && (!o->network[0] || strlen(o->network) >= VNET_NAME_MAX || !o->name[0] ||
                         strlen(o->name) >= VNET_NAME_MAX))
        vnet__errf(err, errlen, "bad %snetwork or %sname: 1 to 63 characters", p, p);
    else if (managed && (o->join || o->controller_key) && !o->key_file)
        vnet__errf(err, errlen, "%sjoin and %scontroller-key need %skey FILE", p, p, p);
    else if (!managed && vnet_mac_eq(&o->mac, &zero_mac))
        vnet__errf(err, errlen, "%smac is required", p);
    else if (!managed && vnet_mac_is_multicast(&o->mac))
        vnet__errf(err, errlen, "bad %smac: a multicast address", p);
    else if (o->queues < 1 || o->queues > VNET_NODE_MAX_QUEUES)
        vnet__errf(err, errlen, "bad %squeues %u: 1..%d", p, o->queues, VNET_NODE_MAX_QUEUES);
    else if (o->nips > VNET_NODE_MAX_IPS)
        vnet__errf(err, errlen, "too many %sip (max %d)", p, VNET_NODE_MAX_IPS);
    else if ((o->nips && !o->ips) || (o->npeers && !o->peers) || (o->nentries && !o->entries))
        vnet__errf(err, errlen, "an address, peer or entry array is NULL");
    else if (strncmp(o->dev, "kernel:", 7) == 0 && (o->queues > 1 || o->learn))
        vnet__errf(err, errlen,
                   "%s%s: not with %sdev kernel:NAME (the kernel switches every frame: no "
                   "user-space queues, no learning)",
                   p, o->queues > 1 ? "queues > 1" : "learn", p);
    else if (strncmp(o->dev, "kernel:", 7) == 0 && strncmp(o->underlay, "udp:", 4) != 0)
        vnet__errf(err, errlen,
                   "%sdev kernel:NAME needs %sunderlay udp:IP:PORT (its VXLAN device binds that "
                   "address and port)",
                   p, p);
    else if (!underlay_syntax_ok(o->underlay))
        vnet__errf(err, errlen,
                   "bad %sunderlay '%s': want udp:IP:PORT or raw|xdp:IFNAME[,local=IP:PORT]", p,
                   o->underlay);
    else
        rc = 0;
    return rc;
}

/* The key pinned at enrolment (KEY_FILE.controller), when it is this key's: with neither
 * --controller-key nor --join it is the controller's key; with a --join whose token this key
 * has used already, the join is spent and ignored. */
static int use_pin(struct vnet_node *n, const struct vnet_node_options *o, char *err, size_t errlen)
{
    struct vnet__pin pin;
    char perr[256] = "";
    int rc = vnet__pin_read(n->pin_path, &pin, perr, sizeof(perr));
    bool mine = rc == 0 && sodium_memcmp(pin.node_pub, n->kp.pub, VNET_KEY_LEN) == 0;
    if (rc && rc != VNET_ENOENT) {
        vnet__errf(err, errlen, "%s", perr);
        return rc;
    }
    if (rc == 0 && !mine)
        vnet_log(VNET_LOG_WARN, MOD, "%s was written for another key than %s: ignored", n->pin_path,
                 o->key_file);
    if (o->join) {
        if (mine && sodium_memcmp(pin.ctl_pub, n->ctl_pub, VNET_KEY_LEN) == 0 &&
            sodium_memcmp(pin.join_hash, n->join_hash, VNET_TOKEN_HASH_BYTES) == 0) {
            vnet_log(VNET_LOG_INFO, MOD,
                     "already enrolled, ignoring %sjoin (controller key "
                     "pinned in %s)",
                     n->prefix, n->pin_path);
            n->has_join = false;
            sodium_memzero(n->join_secret, sizeof(n->join_secret));
        }
        return 0;
    }
    if (o->controller_key) {
        if (mine && sodium_memcmp(pin.ctl_pub, n->ctl_pub, VNET_KEY_LEN) != 0)
            vnet_log(VNET_LOG_WARN, MOD,
                     "%scontroller-key differs from the key pinned in %s: "
                     "using %scontroller-key",
                     n->prefix, n->pin_path, n->prefix);
        return 0;
    }
    if (!mine) {
        vnet__errf(err, errlen,
                   "%skey %s: no %scontroller-key or %sjoin given, and no controller key pinned "
                   "for this key in %s (written when a node enrols with %sjoin)",
                   n->prefix, o->key_file, n->prefix, n->prefix, n->pin_path, n->prefix);
        return VNET_EINVAL;
    }
    memcpy(n->ctl_pub, pin.ctl_pub, VNET_KEY_LEN);
    vnet_log(VNET_LOG_INFO, MOD, "controller key pinned in %s", n->pin_path);
    return 0;
}

/* After the first welcome of an enrolment: keep the controller's key (proven by the
 * handshake) for the next start, bound to this node's key and the join token used. */
static void write_pin(struct vnet_node *n)
{
    struct vnet__pin pin;
    char perr[256] = "";
    memcpy(pin.node_pub, n->kp.pub, VNET_KEY_LEN);
    memcpy(pin.ctl_pub, n->ctl_pub, VNET_KEY_LEN);
    memcpy(pin.join_hash, n->join_hash, VNET_TOKEN_HASH_BYTES);
    if (vnet__pin_write(n->pin_path, &pin, perr, sizeof(perr)) != 0)
        vnet_log(VNET_LOG_WARN, MOD, "enrolled, but %s: a restart needs %scontroller-key", perr,
                 n->prefix);
    else
        vnet_log(VNET_LOG_INFO, MOD, "enrolled: controller key pinned in %s", n->pin_path);
}

/* Managed mode with a key: the controller's key (pinned or from the join token), and this
 * node's key, loaded or (enrolling) made. */
static int load_keys(struct vnet_node *n, const struct vnet_node_options *o, char *err,
                     size_t errlen)
{
    if (o->join) {
        if (vnet_join_token_parse(o->join, n->ctl_pub, n->join_secret)) {
            vnet__errf(err, errlen, "%sjoin: not a join token", n->prefix);
            return VNET_EINVAL;
        }
        n->has_join = true;
        vnet_token_hash(n->join_secret, sizeof(n->join_secret), n->join_hash);
    }
    if (o->controller_key) {
        uint8_t given[VNET_KEY_LEN];
        if (vnet_pubkey_parse(o->controller_key, given)) {
            vnet__errf(err, errlen, "%scontroller-key: not a public key", n->prefix);
            return VNET_EINVAL;
        }
        if (o->join && memcmp(given, n->ctl_pub, VNET_KEY_LEN) != 0) {
            vnet__errf(err, errlen, "%scontroller-key and the key in %sjoin differ", n->prefix,
                       n->prefix);
            return VNET_EINVAL;
        }
        memcpy(n->ctl_pub, given, VNET_KEY_LEN);
    }
    char kerr[256] = "";
    if (vnet__pin_path(o->key_file, n->pin_path, sizeof(n->pin_path)) != 0) {
        vnet__errf(err, errlen, "%skey %s: path too long", n->prefix, o->key_file);
        return VNET_EINVAL;
    }
    int rc = vnet_key_load(o->key_file, &n->kp, kerr, sizeof(kerr));
    if (rc == VNET_ENOENT && o->join) { /* enrolling: make the key now */
        rc = vnet_key_generate(&n->kp);
        if (!rc)
            rc = vnet_key_save(o->key_file, &n->kp, kerr, sizeof(kerr));
        if (!rc)
            vnet_log(VNET_LOG_INFO, MOD, "created key %s", o->key_file);
    }
    if (rc) {
        vnet__errf(err, errlen, "%skey %s: %s", n->prefix, o->key_file,
                   kerr[0] ? kerr : vnet_strerror(rc));
        return rc;
    }
    n->has_kp = true;
    return use_pin(n, o, err, errlen);
}

/* One datapath per queue over the node's table and ports, configured as @base says, each
 * given the last peer list. All or none: on failure none is left. */
static int make_datapaths(struct vnet_node *n, const struct vnet_datapath_cfg *base)
{
    struct vnet_datapath_cfg dcfg = *base;
    dcfg.table = n->table;
    dcfg.vport = n->vport;
    dcfg.uport = n->uport;
    int rc = 0;
    for (unsigned q = 0; q < n->nq && !rc; q++) {
        dcfg.queue = q;
        if ((rc = vnet_datapath_create(&dcfg, &n->dp[q])) != 0)
            break;
        n->ndp++;
        /* Controller-described peers are libvnet nodes: probe them (RTT) from queue 0. */
        if (n->managed && q == 0)
            vnet_datapath_set_probe(n->dp[q], VNET_NODE_PROBE_MS, false);
        if (n->peers)
            rc = vnet_datapath_set_peer_list(n->dp[q], n->peers, n->npeer_list);
    }
    if (rc) {
        for (unsigned q = 0; q < n->ndp; q++)
            vnet_datapath_destroy(n->dp[q]);
        n->ndp = 0;
    }
    return rc;
}

static int add_local_mac(struct vnet_node *n, const struct vnet_mac *mac)
{
    int rc = 0;
    for (unsigned q = 0; q < n->ndp && !rc; q++)
        rc = vnet_datapath_add_local_mac(n->dp[q], mac);
    return rc;
}

/* ---- the kernel tier (--dev kernel:NAME, backend/ktier.c) ---- */

/* Bring the tier up on the node's device for @vni, with the table and peers as they are. */
static int ktier_up(struct vnet_node *n, uint32_t vni, char *err, size_t errlen)
{
    struct vnet__ktier_cfg kc = {.dev = n->ifname,
                                 .vni = vni,
                                 .local = n->local,
                                 .arp_proxy = n->arp_proxy,
                                 .guest = n->kernel_guest};
    int rc = vnet__ktier_open(&kc, &n->kt, err, errlen);
    if (rc)
        return rc;
    n->kt_rev = vnet_table_revision(n->table);
    if ((rc = vnet__ktier_sync_table(n->kt, n->table)) == 0 && n->peers)
        rc = vnet__ktier_set_peers(n->kt, n->peers, n->npeer_list);
    if (rc)
        vnet__errf(err, errlen, "%sdev kernel:%s: BPF maps: %s", n->prefix, n->ifname,
                   vnet_strerror(rc));
    return rc;
}

/* The table's writer is the agent (managed) or vnet_node_set_entries (static): mirror every
 * new revision into the maps. */
static void on_ktier_tick(uv_timer_t *t)
{
    struct vnet_node *n = t->data;
    uint64_t rev = vnet_table_revision(n->table);
    if (n->kt && rev != n->kt_rev) {
        int rc = vnet__ktier_sync_table(n->kt, n->table);
        if (rc)
            vnet_log(VNET_LOG_WARN, MOD, "kernel tier: table to the maps: %s", vnet_strerror(rc));
        else
            n->kt_rev = rev;
    }
    uv_timer_start(t, on_ktier_tick, VNET_NODE_KTIER_SYNC_MS, 0);
}

/* Static mode: addresses, the table (own MAC, fixed entries, ARP bindings), the datapaths. */
static int setup_static(struct vnet_node *n, const struct vnet_node_options *o, char *err,
                        size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < o->nips; i++) {
        if ((rc = vnet_netdev_add_addr(n->ifname, &o->ips[i])) != 0) {
            char buf[VNET_PREFIX_STRLEN];
            vnet_prefix_format(&o->ips[i], buf, sizeof(buf));
            vnet__errf(err, errlen, "%sip %s on %s: %s", n->prefix, buf, n->ifname,
                       vnet_strerror(rc));
            return rc;
        }
    }
    size_t nops = o->nentries + 1 + o->nips;
    struct vnet_table_op *ops = calloc(nops, sizeof(*ops));
    if (!ops)
        return VNET_ENOMEM;
    for (size_t i = 0; i < o->nentries; i++) {
        ops[i] = o->entries[i];
        ops[i].vni = o->vni;
    }
    struct vnet_table_op *self = &ops[o->nentries];
    self->type = VNET_TABLE_PUT;
    self->vni = o->vni;
    self->mac = o->mac;
    self->ep = n->local;
    self->flags = VNET_ENTRY_LOCAL;
    for (size_t i = 0; i < o->nips; i++) {
        struct vnet_table_op *b = &ops[o->nentries + 1 + i];
        b->type = VNET_TABLE_PUT_IP;
        b->vni = o->vni;
        b->mac = o->mac;
        b->ip = o->ips[i].ip;
    }
    rc = vnet_table_apply(n->table, ops, nops, 1);
    n->entries = rc ? NULL : malloc((o->nentries ? o->nentries : 1) * sizeof(*n->entries));
    if (n->entries) {
        memcpy(n->entries, ops, o->nentries * sizeof(*ops));
        n->nentry_list = o->nentries;
    } else if (!rc) {
        rc = VNET_ENOMEM;
    }
    free(ops);
    if (rc) {
        vnet__errf(err, errlen, "static entries: %s", vnet_strerror(rc));
        return rc;
    }
    /* The flood list, kept as the peer list a controller would give. */
    n->peers = calloc(o->npeers ? o->npeers : 1, sizeof(*n->peers));
    if (!n->peers)
        return VNET_ENOMEM;
    for (size_t i = 0; i < o->npeers; i++)
        n->peers[i].ep = o->peers[i];
    n->npeer_list = o->npeers;
    if (n->kernel)
        return ktier_up(n, o->vni, err, errlen);
    struct vnet_datapath_cfg dcfg = {
        .vni = o->vni, .learn = o->learn, .no_arp_proxy = !o->arp_proxy, .mtu = n->mtu};
    if ((rc = make_datapaths(n, &dcfg)) == 0)
        rc = add_local_mac(n, &o->mac);
    if (rc)
        vnet__errf(err, errlen, "datapath: %s", vnet_strerror(rc));
    return rc;
}

/* The interface a dev spec names ("tap:NAME", "raw:IFNAME", "xdp:IFNAME[,...]"), or "". */
static void dev_ifname(const char *spec, char out[16])
{
    const char *colon = strchr(spec, ':');
    out[0] = '\0';
    if (!colon)
        return;
    size_t len = strcspn(colon + 1, ",");
    if (len > 0 && len < 16) {
        memcpy(out, colon + 1, len);
        out[len] = '\0';
    }
}

/* Note how a device that exists already looks (MAC, MTU, addresses, up or down), before the
 * node changes it. */
static void save_dev(struct vnet_node *n, const char *spec)
{
    struct saved_dev *d = &n->saved;
    dev_ifname(spec, d->ifname);
    if (!d->ifname[0] || vnet_netdev_ifindex(d->ifname) <= 0)
        return;
    int k = vnet_netdev_list_addrs(d->ifname, d->addrs, MAX_SAVED_ADDRS, 0);
    if (k < 0 || k > MAX_SAVED_ADDRS || vnet_netdev_get_mac(d->ifname, &d->mac) ||
        vnet_netdev_get_mtu(d->ifname, &d->mtu) || vnet_netdev_get_up(d->ifname, &d->up)) {
        vnet_log(VNET_LOG_WARN, MOD,
                 "%s exists, but its state could not be read: it will not be "
                 "restored at exit",
                 d->ifname);
        return;
    }
    d->naddrs = (size_t)k;
    d->valid = true;
}

static bool prefix_in(const struct vnet_prefix *p, const struct vnet_prefix *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].len == p->len && vnet_ip_eq(&v[i].ip, &p->ip))
            return true;
    return false;
}

/* Put a pre-existing device back as save_dev() found it (once its port is closed). */
static void restore_dev(struct vnet_node *n)
{
    struct saved_dev *d = &n->saved;
    if (!d->valid || vnet_netdev_ifindex(d->ifname) <= 0)
        return;
    d->valid = false;
    struct vnet_prefix now[MAX_SAVED_ADDRS];
    int k = vnet_netdev_list_addrs(d->ifname, now, MAX_SAVED_ADDRS, 0);
    int fails = 0;
    for (int i = 0; i < k && i < MAX_SAVED_ADDRS; i++)
        if (!prefix_in(&now[i], d->addrs, d->naddrs) && vnet_netdev_del_addr(d->ifname, &now[i]))
            fails++;
    for (size_t i = 0; i < d->naddrs; i++)
        if (k >= 0 && k <= MAX_SAVED_ADDRS && !prefix_in(&d->addrs[i], now, (size_t)k) &&
            vnet_netdev_add_addr(d->ifname, &d->addrs[i]))
            fails++;
    struct vnet_mac mac;
    uint32_t mtu;
    bool up;
    if (!vnet_mac_is_zero(&d->mac) &&
        (vnet_netdev_get_mac(d->ifname, &mac) || !vnet_mac_eq(&mac, &d->mac)) &&
        vnet_netdev_set_mac(d->ifname, &d->mac))
        fails++;
    if ((vnet_netdev_get_mtu(d->ifname, &mtu) || mtu != d->mtu) &&
        vnet_netdev_set_mtu(d->ifname, d->mtu))
        fails++;
    if ((vnet_netdev_get_up(d->ifname, &up) || up != d->up) && vnet_netdev_set_up(d->ifname, d->up))
        fails++;
    char macs[VNET_MAC_STRLEN];
    vnet_mac_format(&d->mac, macs, sizeof(macs));
    vnet_log(fails ? VNET_LOG_WARN : VNET_LOG_INFO, MOD,
             "%s restored as found (mac %s, mtu %u, %zu address%s, %s)%s", d->ifname, macs, d->mtu,
             d->naddrs, d->naddrs == 1 ? "" : "es", d->up ? "up" : "down",
             fails ? ": some changes failed" : "");
}

static void free_node(struct vnet_node *n)
{
    vnet__ktier_close(n->kt);
    for (unsigned q = 0; q < n->ndp; q++)
        vnet_datapath_destroy(n->dp[q]);
    vnet_port_close(n->uport);
    vnet_port_close(n->vport);
    restore_dev(n);
    vnet_table_destroy(n->table);
    if (n->stop_fd >= 0)
        close(n->stop_fd);
    vnet_key_wipe(&n->kp);
    sodium_memzero(n->join_secret, sizeof(n->join_secret));
    free(n->peers);
    vnet__report_state_free(&n->report);
    free(n->entries);
    free(n);
}

int vnet_node_create(const struct vnet_node_options *o, uv_loop_t *loop, struct vnet_node **out,
                     char *err, size_t errlen)
{
    if (!o || !loop || !out) {
        vnet__errf(err, errlen, "no options, loop or result pointer");
        return VNET_EINVAL;
    }
    int rc = vnet_node_options_check(o, err, errlen);
    if (rc)
        return rc;
    struct vnet_node *n = calloc(1, sizeof(*n));
    if (!n)
        return VNET_ENOMEM;
    n->loop = loop;
    n->stop_fd = -1;
    snprintf(n->prefix, sizeof(n->prefix), "%s", o->label_prefix ? o->label_prefix : "");
    n->managed = o->controller != NULL;
    n->learn = o->learn;
    n->allow_plain = o->allow_plain;
    n->arp_proxy = o->arp_proxy;
    n->nq = o->queues;
    n->busy_poll_us = o->busy_poll_us;
    n->threaded = o->threads || o->queues > 1 || o->busy_poll_us > 0;
    n->vni = o->vni;
    n->npeers = o->npeers;
    n->nentries = o->nentries;
    n->cb = o->cb;
    n->cb_arg = o->cb_arg;
    n->on_refused = o->on_refused;
    n->kernel = strncmp(o->dev, "kernel:", 7) == 0;
    char uspec[256], kspec[32];
    const char *underlay = o->underlay;
    if ((rc = vnet_node_underlay_local(o->underlay, &n->local)) != 0) {
        char ifn[16];
        dev_ifname(o->underlay, ifn);
        vnet__errf(err, errlen, "%sunderlay %s: %s%s; give %s,local=IP[:PORT]", n->prefix,
                   o->underlay, ifn,
                   rc == VNET_ENOENT ? " does not exist or has no global IPv4 or IPv6 address"
                                     : ": cannot read its addresses",
                   o->underlay);
        goto fail;
    }
    if ((strncmp(underlay, "raw:", 4) == 0 || strncmp(underlay, "xdp:", 4) == 0) &&
        !strchr(underlay, ',')) {
        char ep[VNET_ENDPOINT_STRLEN];
        vnet_endpoint_format(&n->local, ep, sizeof(ep));
        snprintf(uspec, sizeof(uspec), "%s,local=%s", underlay, ep);
        vnet_log(VNET_LOG_INFO, MOD, "%sunderlay %s: using %s (the primary address of %s)",
                 n->prefix, underlay, ep, underlay + 4);
        underlay = uspec;
    }
    if (n->managed) {
        snprintf(n->controller, sizeof(n->controller), "%s", o->controller);
        snprintf(n->network, sizeof(n->network), "%s", o->network);
        snprintf(n->name, sizeof(n->name), "%s", o->name);
    }
    uint32_t overhead =
        n->local.ip.family == VNET_AF_INET6 ? VNET_ENCAP_OVERHEAD_V6 : VNET_ENCAP_OVERHEAD_V4;
    n->mtu = o->mtu ? o->mtu : 1500 - overhead;
    if ((rc = vnet_table_create(NULL, &n->table)) != 0) {
        vnet__errf(err, errlen, "switch table: %s", vnet_strerror(rc));
        goto fail;
    }
    /* Managed mode: the MTU and MAC come with the welcome. */
    struct vnet_port_cfg vcfg = {.up = true, .offload = o->offload, .queues = n->nq};
    if (!n->managed) {
        vcfg.mtu = n->mtu;
        vcfg.mac = o->mac;
        vcfg.set_mac = true;
    }
    /* kernel:NAME is a TAP the node holds open; the frames never reach its file: TC takes them.
     * An interface that exists (a VM's tap or veth) is attached to as it is, like raw:. */
    const char *dev = o->dev;
    n->kernel_guest = n->kernel && vnet_netdev_ifindex(o->dev + 7) > 0;
    if (n->kernel && (size_t)snprintf(kspec, sizeof(kspec), "tap:%s", o->dev + 7) < sizeof(kspec))
        dev = kspec;
    save_dev(n, dev);
    if (n->kernel_guest) {
        snprintf(n->ifname, sizeof(n->ifname), "%s", o->dev + 7);
        if ((rc = vnet_netdev_set_up(n->ifname, true)) != 0) {
            vnet__errf(err, errlen, "%sdev %s: %s", n->prefix, o->dev, vnet_strerror(rc));
            goto fail;
        }
    } else {
        if ((rc = open_port(n, "dev", dev, &vcfg, o->fallback_raw, &n->vport, err, errlen)) != 0)
            goto fail;
        struct vnet_port_info info;
        vnet_port_get_info(n->vport, &info);
        snprintf(n->ifname, sizeof(n->ifname), "%s", info.ifname);
    }
    struct vnet_port_cfg ucfg = {.offload = o->offload, .queues = n->nq};
    if (!n->kernel && /* the tier's VXLAN device has the underlay's address and port */
        (rc = open_port(n, "underlay", underlay, &ucfg, o->fallback_raw, &n->uport, err, errlen)) !=
            0)
        goto fail;
    if (n->managed && o->key_file)
        rc = load_keys(n, o, err, errlen);
    else if (!n->managed)
        rc = setup_static(n, o, err, errlen);
    if (rc)
        goto fail;
    if ((n->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        rc = VNET_ENOMEM;
        vnet__errf(err, errlen, "eventfd: %s", vnet_strerror(rc));
        goto fail;
    }
    uv_timer_init(loop, &n->anchor);
    n->anchor.data = n;
    *out = n;
    return 0;
fail:
    free_node(n);
    return rc;
}

/* ---- driving the datapaths ---- */

/* Run to completion: read only the ports poll(2) says are readable, and keep polling without
 * sleeping for a short while after the last packet (busy polling): waking a sleeping thread
 * costs tens of microseconds per hop on a virtual machine. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int fds[2];
    vnet_datapath_fds(w->dp, fds);
    struct pollfd pfd[3] = {
        {.fd = fds[0], .events = POLLIN},
        {.fd = fds[1], .events = POLLIN},
        {.fd = w->n->stop_fd, .events = POLLIN},
    };
    long busy_us = (long)w->n->busy_poll_us;
    struct timespec last = {0, 0};
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long idle_us = (now.tv_sec - last.tv_sec) * 1000000L + (now.tv_nsec - last.tv_nsec) / 1000;
        int next = vnet_datapath_tick(w->dp);
        if (poll(pfd, 3, idle_us < busy_us ? 0 : next) < 0)
            continue;
        if (pfd[2].revents)
            break;
        unsigned which =
            (pfd[0].revents ? VNET_DP_VPORT : 0) | (pfd[1].revents ? VNET_DP_UPORT : 0);
        if (!which)
            continue;
        int k = vnet_datapath_poll_ports(w->dp, which, 0);
        if (k < 0)
            vnet_log(VNET_LOG_WARN, MOD, "datapath: %s", vnet_strerror(k));
        if (k > 0)
            last = now;
    }
    return NULL;
}

static void on_port(uv_poll_t *h, int status, int events)
{
    struct vnet_node *n = h->data;
    (void)events;
    if (status < 0)
        return;
    int k = vnet_datapath_poll_ports(n->dp[0], h == &n->pv ? VNET_DP_VPORT : VNET_DP_UPORT, 0);
    if (k < 0)
        vnet_log(VNET_LOG_WARN, MOD, "datapath: %s", vnet_strerror(k));
}

/* Not threaded: the datapath's timed work (probes) on the loop. */
static void on_tick(uv_timer_t *t)
{
    struct vnet_node *n = t->data;
    uv_timer_start(t, on_tick, (uint64_t)vnet_datapath_tick(n->dp[0]), 0);
}

static void on_learn(uv_poll_t *h, int status, int events)
{
    (void)events;
    if (status < 0)
        return;
    int k = vnet_datapath_learn_drain(h->data);
    if (k < 0)
        vnet_log(VNET_LOG_WARN, MOD, "learning: %s", vnet_strerror(k));
}

static void stop_workers(struct vnet_node *n)
{
    uint64_t one = 1;
    if (n->stop_fd >= 0 && write(n->stop_fd, &one, sizeof(one)) < 0)
        vnet_log(VNET_LOG_WARN, MOD, "stopping the workers: eventfd write failed");
    for (unsigned q = 0; q < n->ndp; q++) {
        if (n->workers[q].running)
            pthread_join(n->workers[q].th, NULL);
        n->workers[q].running = false;
    }
}

/* Start polling the datapaths: their learn fds on the loop, their ports on the loop or on one
 * worker thread each. */
static int run_datapaths(struct vnet_node *n)
{
    if (n->kernel) {
        uv_timer_start(&n->anchor, on_ktier_tick, VNET_NODE_KTIER_SYNC_MS, 0);
        return 0;
    }
    for (unsigned q = 0; q < n->ndp; q++) {
        uv_poll_init(n->loop, &n->pl[q], vnet_datapath_learn_fd(n->dp[q]));
        n->pl[q].data = n->dp[q];
        uv_poll_start(&n->pl[q], UV_READABLE, on_learn);
        n->nlearn++;
    }
    if (!n->threaded) {
        int fds[2];
        vnet_datapath_fds(n->dp[0], fds);
        uv_poll_init(n->loop, &n->pv, fds[0]);
        uv_poll_init(n->loop, &n->pu, fds[1]);
        n->pv.data = n->pu.data = n;
        uv_poll_start(&n->pv, UV_READABLE, on_port);
        uv_poll_start(&n->pu, UV_READABLE, on_port);
        n->ports_polled = true;
        uv_timer_start(&n->anchor, on_tick, 0, 0);
        return 0;
    }
    /* The workers take none of the process's signals: they are the embedder's. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    for (unsigned q = 0; q < n->ndp && !rc; q++) {
        struct worker *w = &n->workers[q];
        w->n = n;
        w->dp = n->dp[q];
        rc = -pthread_create(&w->th, NULL, worker_main, w);
        w->running = rc == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        vnet_log(VNET_LOG_ERROR, MOD, "worker: %s", vnet_strerror(rc));
        stop_workers(n);
    }
    return rc;
}

/* ---- managed mode: the agent's callbacks ---- */

static void apply_welcome_netdev(struct vnet_node *n, const struct vnet_network *net,
                                 const struct vnet_node_info *self, const char *mac)
{
    int rc = vnet_netdev_set_mtu(n->ifname, net->mtu);
    if (rc)
        vnet_log(VNET_LOG_WARN, MOD, "MTU %u on %s: %s", net->mtu, n->ifname, vnet_strerror(rc));
    rc = vnet_netdev_set_mac(n->ifname, &self->mac);
    if (rc)
        vnet_log(VNET_LOG_WARN, MOD, "MAC %s on %s: %s", mac, n->ifname, vnet_strerror(rc));
    for (int i = 0; i < VNET_NODE_IPS; i++) {
        if (!self->ips[i].family)
            continue;
        struct vnet_prefix p = {.ip = self->ips[i]};
        const struct vnet_prefix *sub =
            self->ips[i].family == VNET_AF_INET ? &net->subnet4 : &net->subnet6;
        p.len = sub->ip.family ? sub->len : (self->ips[i].family == VNET_AF_INET ? 32 : 128);
        rc = vnet_netdev_add_addr(n->ifname, &p);
        if (rc)
            vnet_log(VNET_LOG_WARN, MOD, "address on %s: %s", n->ifname, vnet_strerror(rc));
    }
    vnet_netdev_set_up(n->ifname, true);
}

/* The first welcome: the datapaths for the network's VNI and MTU, plain or secure. */
static int welcome_datapaths(struct vnet_node *n, const struct vnet_network *net)
{
    struct vnet_datapath_cfg dcfg = {
        .vni = net->vni, .learn = n->learn, .no_arp_proxy = !n->arp_proxy, .mtu = net->mtu};
    if (n->kernel) {
        char err[256] = "";
        int rc = VNET_ENOTSUP;
        if (n->kt) /* a later welcome (the session came back): the tier is up */
            return 0;
        if (net->mode == VNET_MODE_SECURE)
            vnet_log(VNET_LOG_ERROR, MOD,
                     "network %s is secure: %sdev kernel:%s carries plain networks only (this "
                     "kernel has no ESP/xfrm to encrypt in); use tap:NAME",
                     net->name, n->prefix, n->ifname);
        else if ((rc = ktier_up(n, net->vni, err, sizeof(err))) != 0)
            vnet_log(VNET_LOG_ERROR, MOD, "%s", err);
        return rc ? rc : run_datapaths(n);
    }
    if (net->mode == VNET_MODE_SECURE) {
        if (!n->has_kp) {
            vnet_log(VNET_LOG_ERROR, MOD, "network %s is secure: the node needs %skey to take part",
                     net->name, n->prefix);
            return VNET_EPERM;
        }
        /* Each queue's datapath would hold its own replay windows and nonce counters for the
         * same keys: refuse rather than reuse nonces. */
        if (n->nq > 1) {
            vnet_log(VNET_LOG_ERROR, MOD,
                     "network %s is secure: %squeues %u is not supported there (one queue only)",
                     net->name, n->prefix, n->nq);
            return VNET_ENOTSUP;
        }
        dcfg.secure = true;
        dcfg.key = &n->kp;
        dcfg.nonce = n->dp_nonce;
    }
    int rc = make_datapaths(n, &dcfg);
    if (rc) {
        vnet_log(VNET_LOG_ERROR, MOD, "datapath: %s", vnet_strerror(rc));
        return rc;
    }
    return run_datapaths(n);
}

static void on_welcome(void *arg, const struct vnet_network *net, const struct vnet_node_info *self)
{
    struct vnet_node *n = arg;
    char mac[VNET_MAC_STRLEN];
    vnet_mac_format(&self->mac, mac, sizeof(mac));
    if (n->has_join) { /* the controller accepted the join: enrolled */
        n->has_join = false;
        write_pin(n);
    }
    apply_welcome_netdev(n, net, self, mac);
    if (!n->ndp && welcome_datapaths(n, net) != 0)
        return;
    add_local_mac(n, &self->mac);
    vnet_log(VNET_LOG_INFO, MOD, "up: %s in network %s (vni %u, mtu %u, %s) as %s, mac %s",
             n->ifname, net->name, net->vni, net->mtu,
             net->mode == VNET_MODE_SECURE ? vnet_seal_suite_name(vnet_seal_suite_auto()) : "plain",
             self->name, mac);
    if (n->cb.on_welcome)
        n->cb.on_welcome(n->cb_arg, net, self);
}

static void on_peers(void *arg, const struct vnet_peer *peers, size_t np)
{
    struct vnet_node *n = arg;
    struct vnet_peer *copy = malloc((np ? np : 1) * sizeof(*copy));
    if (copy) {
        if (np)
            memcpy(copy, peers, np * sizeof(*copy));
        free(n->peers);
        n->peers = copy;
        n->npeer_list = np;
    }
    for (unsigned q = 0; q < n->ndp; q++) {
        int rc = vnet_datapath_set_peer_list(n->dp[q], peers, np);
        if (rc)
            vnet_log(VNET_LOG_WARN, MOD, "peers: %s", vnet_strerror(rc));
    }
    int krc = n->kt ? vnet__ktier_set_peers(n->kt, peers, np) : 0;
    if (krc)
        vnet_log(VNET_LOG_WARN, MOD, "kernel tier peers: %s", vnet_strerror(krc));
    if (n->cb.on_peers)
        n->cb.on_peers(n->cb_arg, peers, np);
}

static int on_report(void *arg, uint32_t interval_ms, struct vnet_report *out)
{
    struct vnet_node *n = arg;
    return vnet__report_fill(n->dp, n->ndp, vnet_table_count(n->table), n->peers, n->npeer_list,
                             &n->report, uv_now(n->loop), 3 * (uint64_t)interval_ms, out);
}

static void on_state(void *arg, int connected)
{
    struct vnet_node *n = arg;
    vnet_log(connected ? VNET_LOG_INFO : VNET_LOG_WARN, MOD, "controller %s",
             connected ? "connected" : "disconnected");
    if (n->cb.on_state)
        n->cb.on_state(n->cb_arg, connected);
}

static void on_refused(void *arg, int code, const char *why)
{
    struct vnet_node *n = arg;
    if (n->on_refused)
        n->on_refused(n->cb_arg, code, why);
}

int vnet_node_start(struct vnet_node *n)
{
    if (!n)
        return VNET_EINVAL;
    if (n->started || n->closing)
        return VNET_ESTATE;
    int rc;
    if (!n->managed) {
        if ((rc = run_datapaths(n)) != 0)
            return rc;
        char ubuf[VNET_ENDPOINT_STRLEN];
        vnet_endpoint_format(&n->local, ubuf, sizeof(ubuf));
        vnet_log(VNET_LOG_INFO, MOD,
                 "up: %s (mtu %u) <-> udp %s, vni %u, %zu peers, %zu static%s, %u queue%s",
                 n->ifname, n->mtu, ubuf, n->vni, n->npeers, n->nentries,
                 n->learn ? ", learning" : "", n->nq, n->nq > 1 ? "s" : "");
        n->started = true;
        return 0;
    }
    struct vnet_agent_cfg acfg = {.loop = n->loop,
                                  .controller = n->controller,
                                  .network = n->network,
                                  .node = n->name,
                                  .table = n->table,
                                  .local = n->local,
                                  .cb = {on_welcome, on_peers, on_state, on_report},
                                  .cb_arg = n,
                                  .on_refused = on_refused};
    if (vnet_crypto_init() < 0)
        return VNET_EIO;
    randombytes_buf(n->dp_nonce, sizeof(n->dp_nonce));
    acfg.dp_nonce = n->dp_nonce;
    if (n->has_kp) {
        acfg.key = &n->kp;
        acfg.controller_pub = n->ctl_pub;
        acfg.join_secret = n->has_join ? n->join_secret : NULL;
        acfg.allow_plain = n->allow_plain;
    }
    rc = vnet_agent_create(&acfg, &n->agent);
    sodium_memzero(n->join_secret, sizeof(n->join_secret)); /* the agent has its copy */
    if (rc)
        return rc;
    vnet_log(VNET_LOG_INFO, MOD, "managed: %s, joining %s as %s via %s", n->ifname, n->network,
             n->name, n->controller);
    n->started = true;
    return 0;
}

/* ---- close ---- */

static void on_closed(uv_handle_t *h)
{
    struct vnet_node *n = h->data;
    if (--n->pending)
        return;
    vnet_node_close_cb cb = n->close_cb;
    void *arg = n->close_arg;
    free_node(n);
    if (cb)
        cb(arg);
}

static void close_handle(struct vnet_node *n, uv_handle_t *h)
{
    h->data = n;
    n->pending++;
    uv_close(h, on_closed);
}

void vnet_node_close(struct vnet_node *n, vnet_node_close_cb cb, void *userdata)
{
    if (!n || n->closing)
        return;
    n->closing = true;
    n->close_cb = cb;
    n->close_arg = userdata;
    stop_workers(n);
    vnet_agent_destroy(n->agent);
    n->agent = NULL;
    if (n->ports_polled) {
        close_handle(n, (uv_handle_t *)&n->pv);
        close_handle(n, (uv_handle_t *)&n->pu);
    }
    for (unsigned q = 0; q < n->nlearn; q++)
        close_handle(n, (uv_handle_t *)&n->pl[q]);
    close_handle(n, (uv_handle_t *)&n->anchor);
}

/* ---- what the node reports ---- */

unsigned vnet_node_queue_count(const struct vnet_node *n)
{
    return n ? (n->kt ? 1 : n->ndp) : 0;
}

int vnet_node_get_stats(const struct vnet_node *n, unsigned queue, struct vnet_datapath_stats *out)
{
    if (!n || !out)
        return VNET_EINVAL;
    if (n->kt && queue == 0) {
        vnet__ktier_get_stats(n->kt, out);
        return 0;
    }
    if (queue >= n->ndp)
        return VNET_ENOENT;
    vnet_datapath_get_stats(n->dp[queue], out);
    return 0;
}

size_t vnet_node_peer_stats(const struct vnet_node *n, unsigned queue,
                            struct vnet_dp_peer_stats *out, size_t max)
{
    if (!n || queue >= n->ndp)
        return 0;
    return vnet_datapath_peer_stats(n->dp[queue], out, max);
}

int vnet_node_set_peers(struct vnet_node *n, const struct vnet_endpoint *peers, size_t np)
{
    if (!n || (np && !peers))
        return VNET_EINVAL;
    if (n->managed)
        return VNET_ESTATE;
    struct vnet_peer *list = calloc(np ? np : 1, sizeof(*list));
    if (!list)
        return VNET_ENOMEM;
    for (size_t i = 0; i < np; i++)
        list[i].ep = peers[i];
    int rc = 0;
    for (unsigned q = 0; q < n->ndp && !rc; q++)
        rc = vnet_datapath_set_peer_list(n->dp[q], list, np);
    if (n->kt && !rc)
        rc = vnet__ktier_set_peers(n->kt, list, np);
    free(n->peers);
    n->peers = list;
    n->npeer_list = np;
    n->npeers = np;
    return rc;
}

int vnet_node_set_entries(struct vnet_node *n, const struct vnet_table_op *entries, size_t count)
{
    if (!n || (count && !entries))
        return VNET_EINVAL;
    if (n->managed)
        return VNET_ESTATE;
    for (size_t i = 0; i < count; i++)
        if (entries[i].type != VNET_TABLE_PUT && entries[i].type != VNET_TABLE_PUT_IP)
            return VNET_EINVAL;
    /* one batch: the old entries out, the new ones in; readers see either table whole */
    size_t nops = n->nentry_list + count;
    struct vnet_table_op *ops = calloc(nops ? nops : 1, sizeof(*ops));
    struct vnet_table_op *keep = malloc((count ? count : 1) * sizeof(*keep));
    if (!ops || !keep) {
        free(ops);
        free(keep);
        return VNET_ENOMEM;
    }
    for (size_t i = 0; i < n->nentry_list; i++) {
        const struct vnet_table_op *old = &n->entries[i];
        ops[i].vni = old->vni;
        if (old->type == VNET_TABLE_PUT) {
            ops[i].type = VNET_TABLE_DEL;
            ops[i].mac = old->mac;
        } else {
            ops[i].type = VNET_TABLE_DEL_IP;
            ops[i].ip = old->ip;
        }
    }
    for (size_t i = 0; i < count; i++) {
        keep[i] = entries[i];
        keep[i].vni = n->vni;
        ops[n->nentry_list + i] = keep[i];
    }
    int rc = vnet_table_apply(n->table, ops, nops, vnet_table_revision(n->table));
    free(ops);
    if (rc) {
        free(keep);
        return rc;
    }
    free(n->entries);
    n->entries = keep;
    n->nentry_list = n->nentries = count;
    if (n->kt && (rc = vnet__ktier_sync_table(n->kt, n->table)) == 0)
        n->kt_rev = vnet_table_revision(n->table);
    return rc;
}

int vnet_node_get_agent_stats(const struct vnet_node *n, struct vnet_agent_stats *out)
{
    if (!n || !out)
        return VNET_EINVAL;
    if (!n->agent)
        return VNET_ENOENT;
    vnet_agent_get_stats(n->agent, out);
    return 0;
}

size_t vnet_node_peer_info(const struct vnet_node *n, unsigned queue, struct vnet_dp_peer_info *out,
                           size_t max)
{
    if (!n || queue >= n->ndp)
        return 0;
    return vnet_datapath_peer_info(n->dp[queue], out, max);
}

struct vnet_table *vnet_node_table(const struct vnet_node *n)
{
    return n ? n->table : NULL;
}

const char *vnet_node_ifname(const struct vnet_node *n)
{
    return n ? n->ifname : "";
}
