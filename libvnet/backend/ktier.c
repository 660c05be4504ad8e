/* libvnet: the kernel tier ("kernel:NAME"), loader and map writer. The programs are in
 * ktier.bpf.c, compiled with clang and embedded (ktier_obj.h): nothing is read from disk.
 *
 * Why TC (and tcx links): the frames the host stack sends on NAME pass its TC egress hook as
 * socket buffers that still carry their GSO and checksum state, so a redirect to the VXLAN
 * device keeps the kernel's segmentation and checksum offloads (XDP sees neither egress nor
 * GSO frames). tcx links (kernel 6.6) are BPF links: they are detached when the last file
 * descriptor closes, so the programs go away with the process even when it is killed; nothing
 * is pinned. Netkit would save the extra device but Debian's iproute2 cannot show it.
 *
 * The VXLAN device is flow-based (IFLA_VXLAN_COLLECT_METADATA, "external"): one device for
 * every peer, the destination given per frame by the tunnel key. It has no FDB, no learning:
 * the maps are the only forwarding state, mirrored from the node's switch table.
 */
#include "ktier_int.h"
#include "ktier_maps.h"

#include "../err_int.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/netdev.h"

#include <bpf/bpf.h>
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ktier_obj.h"

#define MOD "ktier"

#ifndef BPF_TCX_INGRESS /* uapi headers older than 6.6 */
#define BPF_TCX_INGRESS 46
#define BPF_TCX_EGRESS  47
#endif

_Static_assert(KTIER_DROP_FOREIGN_VNI == VNET_DP_DROP_FOREIGN_VNI &&
                   KTIER_DROP_UNKNOWN_PEER == VNET_DP_DROP_UNKNOWN_PEER &&
                   KTIER_DROP_SPOOF == VNET_DP_DROP_SPOOF && KTIER_DROP_SELF == VNET_DP_DROP_SELF &&
                   KTIER_DROP_NO_PEERS == VNET_DP_DROP_NO_PEERS &&
                   KTIER_DROP_SHORT == VNET_DP_DROP_SHORT &&
                   KTIER_DROP_TX_UNDERLAY == VNET_DP_DROP_TX_UNDERLAY &&
                   KTIER_DROP_TX_VIRTUAL == VNET_DP_DROP_TX_VIRTUAL &&
                   VNET_DP_DROP__MAX <= KTIER_DROPS,
               "ktier_maps.h drop slots must match enum vnet_dp_drop");

struct vnet__ktier {
    struct bpf_object *obj;
    int cfg_fd, table_fd, plist_fd, pset_fd, stats_fd, arp_fd;
    int link_dev, link_vx; /* tcx link fds */
    struct ktier_cfg cfg;
    uint16_t port; /* the VXLAN device's: every peer's too */
    char vx[IF_NAMESIZE];
    bool vx_made;
    struct ktier_ip *tpeers; /* the table's endpoints, kept in the peer set */
    size_t ntpeers;
    struct vnet_peer *peers; /* the flood list */
    size_t npeers;
};

bool vnet__ktier_available(void)
{
    return true;
}

/* ---- rtnetlink: the VXLAN device ---- */

struct nlbuf {
    char b[512];
    size_t len;
};

static struct rtattr *nl_put(struct nlbuf *m, uint16_t type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)(m->b + NLMSG_ALIGN(m->len));
    if (NLMSG_ALIGN(m->len) + RTA_SPACE(len) > sizeof(m->b))
        return NULL; /* the messages here are small and fixed: not reached */
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(a), data, len);
    m->len = NLMSG_ALIGN(m->len) + RTA_SPACE(len);
    return a;
}

static void nl_end(struct nlbuf *m, struct rtattr *nest)
{
    if (nest)
        nest->rta_len = (unsigned short)(m->b + m->len - (char *)nest);
}

static int nl_do(struct nlbuf *m)
{
    struct nlmsghdr *h = (struct nlmsghdr *)m->b;
    h->nlmsg_len = (uint32_t)m->len;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    int rc = 0;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (sendto(fd, m->b, m->len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
    } else {
        char resp[1024];
        ssize_t k = recv(fd, resp, sizeof(resp), 0);
        struct nlmsghdr *r = (struct nlmsghdr *)resp;
        if (k < 0)
            rc = -errno;
        else if (k < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || r->nlmsg_type != NLMSG_ERROR)
            rc = VNET_EIO;
        else
            rc = ((struct nlmsgerr *)NLMSG_DATA(r))->error;
    }
    close(fd);
    return rc;
}

static void nl_link_msg(struct nlbuf *m, uint16_t type, uint16_t flags, const char *name)
{
    memset(m, 0, sizeof(*m));
    struct nlmsghdr *h = (struct nlmsghdr *)m->b;
    h->nlmsg_type = type;
    h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    m->len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_family = AF_UNSPEC;
    nl_put(m, IFLA_IFNAME, name, strlen(name) + 1);
}

static int vx_delete(const char *name)
{
    struct nlbuf m;
    nl_link_msg(&m, RTM_DELLINK, 0, name);
    return nl_do(&m);
}

/* ip link add NAME type vxlan external dstport PORT local IP nolearning */
static int vx_create(const char *name, const struct vnet_endpoint *local)
{
    struct nlbuf m;
    nl_link_msg(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, name);
    struct rtattr *li = nl_put(&m, IFLA_LINKINFO, NULL, 0);
    nl_put(&m, IFLA_INFO_KIND, "vxlan", 5);
    struct rtattr *data = nl_put(&m, IFLA_INFO_DATA, NULL, 0);
    uint8_t one = 1, zero = 0;
    uint16_t port = htons(local->port);
    nl_put(&m, IFLA_VXLAN_COLLECT_METADATA, &one, 1);
    nl_put(&m, IFLA_VXLAN_LEARNING, &zero, 1);
    nl_put(&m, IFLA_VXLAN_PORT, &port, 2);
    if (local->ip.family == VNET_AF_INET)
        nl_put(&m, IFLA_VXLAN_LOCAL, local->ip.addr, 4);
    else
        nl_put(&m, IFLA_VXLAN_LOCAL6, local->ip.addr, 16);
    nl_end(&m, data);
    nl_end(&m, li);
    return nl_do(&m);
}

/* ---- maps ---- */

static void ip_key(const struct vnet_ip *ip, struct ktier_ip *k, uint32_t *v4)
{
    memset(k, 0, sizeof(*k));
    if (ip->family == VNET_AF_INET) {
        k->addr[10] = k->addr[11] = 0xff;
        memcpy(&k->addr[12], ip->addr, 4);
        *v4 = 1;
    } else {
        memcpy(k->addr, ip->addr, 16);
        *v4 = 0;
    }
}

static int map_fd(struct bpf_object *obj, const char *name)
{
    struct bpf_map *m = bpf_object__find_map_by_name(obj, name);
    return m ? bpf_map__fd(m) : -1;
}

static int attach(struct bpf_object *obj, const char *prog, int ifindex, int type, int *link)
{
    struct bpf_program *p = bpf_object__find_program_by_name(obj, prog);
    if (!p)
        return VNET_EINVAL;
    int fd = bpf_link_create(bpf_program__fd(p), ifindex, (enum bpf_attach_type)type, NULL);
    if (fd < 0)
        return fd == -EINVAL ? VNET_ENOTSUP : (errno ? -errno : VNET_EIO);
    *link = fd;
    return 0;
}

/* The peer set: the flood list and the table's endpoints. Rebuilt whole (it is small). */
static int rebuild_peer_set(struct vnet__ktier *k)
{
    struct ktier_ip key, next;
    uint32_t one = 1, v4;
    /* delete all, then add: a frame in between may be dropped as from an unknown peer */
    while (bpf_map_get_next_key(k->pset_fd, NULL, &next) == 0) {
        key = next;
        if (bpf_map_delete_elem(k->pset_fd, &key) < 0)
            break;
    }
    int rc = 0;
    for (size_t i = 0; i < k->npeers && !rc; i++) {
        ip_key(&k->peers[i].ep.ip, &key, &v4);
        rc = bpf_map_update_elem(k->pset_fd, &key, &one, BPF_ANY);
    }
    for (size_t i = 0; i < k->ntpeers && !rc; i++)
        rc = bpf_map_update_elem(k->pset_fd, &k->tpeers[i], &one, BPF_ANY);
    return rc < 0 ? (errno ? -errno : VNET_EIO) : 0;
}

int vnet__ktier_set_peers(struct vnet__ktier *k, const struct vnet_peer *peers, size_t n)
{
    if (!k || (n && !peers))
        return VNET_EINVAL;
    if (n > KTIER_MAX_PEERS)
        vnet_log(VNET_LOG_WARN, MOD, "%zu peers: floods reach the first %d only", n,
                 KTIER_MAX_PEERS);
    struct vnet_peer *copy = malloc((n ? n : 1) * sizeof(*copy));
    if (!copy)
        return VNET_ENOMEM;
    if (n)
        memcpy(copy, peers, n * sizeof(*copy));
    free(k->peers);
    k->peers = copy;
    k->npeers = n;
    uint32_t used = 0;
    for (size_t i = 0; i < n && used < KTIER_MAX_PEERS; i++) {
        if (peers[i].ep.port != k->port) { /* the VXLAN device sends to its own port only */
            char b[VNET_ENDPOINT_STRLEN];
            vnet_endpoint_format(&peers[i].ep, b, sizeof(b));
            vnet_log(VNET_LOG_WARN, MOD, "peer %s: not on port %u, the kernel tier cannot reach it",
                     b, k->port);
            continue;
        }
        struct ktier_endpoint ep = {0};
        ip_key(&peers[i].ep.ip, &ep.ip, &ep.v4);
        if (bpf_map_update_elem(k->plist_fd, &used, &ep, BPF_ANY) == 0)
            used++;
    }
    uint32_t zero = 0;
    k->cfg.npeers = used;
    if (bpf_map_update_elem(k->cfg_fd, &zero, &k->cfg, BPF_ANY) < 0)
        return -errno;
    return rebuild_peer_set(k);
}

struct sync_ctx {
    struct vnet__ktier *k;
    struct ktier_ip *ips;
    size_t nips, cap, skipped;
    int rc;
};

static int sync_one(const struct vnet_entry *e, void *arg)
{
    struct sync_ctx *s = arg;
    struct ktier_mac_key key = {.vni = s->k->cfg.vni};
    struct ktier_endpoint ep = {0};
    struct vnet_endpoint ve;
    memcpy(key.mac, e->mac.b, 6);
    vnet_entry_endpoint(e, &ve);
    ip_key(&ve.ip, &ep.ip, &ep.v4);
    ep.local = (vnet_entry_flags(e) & VNET_ENTRY_LOCAL) != 0;
    if (!ep.local && ve.port != s->k->port) { /* unreachable from the VXLAN device: flooded */
        s->skipped++;
        return 0;
    }
    if (bpf_map_update_elem(s->k->table_fd, &key, &ep, BPF_ANY) < 0) {
        s->rc = -errno;
        return 1;
    }
    if (ep.local)
        return 0;
    for (size_t i = 0; i < s->nips; i++)
        if (memcmp(&s->ips[i], &ep.ip, sizeof(ep.ip)) == 0)
            return 0;
    if (s->nips == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct ktier_ip *ips = realloc(s->ips, cap * sizeof(*ips));
        if (!ips) {
            s->rc = VNET_ENOMEM;
            return 1;
        }
        s->ips = ips;
        s->cap = cap;
    }
    s->ips[s->nips++] = ep.ip;
    return 0;
}

static int sync_ip(uint32_t vni, const struct vnet_ip *ip, const struct vnet_mac *mac, void *arg)
{
    struct vnet__ktier *k = arg;
    if (ip->family != VNET_AF_INET)
        return 0; /* ND: flooded */
    struct ktier_ip4_key key = {.vni = vni};
    struct ktier_mac m;
    memset(&m, 0, sizeof(m));
    memcpy(key.ip, ip->addr, 4);
    memcpy(m.mac, mac->b, 6);
    return bpf_map_update_elem(k->arp_fd, &key, &m, BPF_ANY) < 0 ? -errno : 0;
}

/* The table's IPv4 bindings into arp_map; those gone from the table out of it. */
static int sync_arp(struct vnet__ktier *k, const struct vnet_table *t)
{
    int rc = vnet_table_foreach_ip(t, k->cfg.vni, sync_ip, k);
    if (rc)
        return rc;
    struct ktier_ip4_key key, next;
    void *prev = NULL;
    while (bpf_map_get_next_key(k->arp_fd, prev, &next) == 0) {
        struct vnet_ip ip = {.family = VNET_AF_INET};
        struct vnet_mac mac;
        memcpy(ip.addr, next.ip, 4);
        if (vnet_table_lookup_ip(t, next.vni, &ip, &mac) != 0 &&
            bpf_map_delete_elem(k->arp_fd, &next) == 0)
            continue;
        key = next;
        prev = &key;
    }
    return 0;
}

int vnet__ktier_sync_table(struct vnet__ktier *k, const struct vnet_table *t)
{
    if (!k || !t)
        return VNET_EINVAL;
    struct sync_ctx s = {.k = k};
    vnet_table_foreach(t, k->cfg.vni, sync_one, &s);
    if (s.rc) {
        free(s.ips);
        return s.rc;
    }
    /* entries the table no longer has */
    struct ktier_mac_key key, next;
    void *prev = NULL;
    while (bpf_map_get_next_key(k->table_fd, prev, &next) == 0) {
        struct vnet_mac mac;
        memcpy(mac.b, next.mac, 6);
        if (next.vni != k->cfg.vni || !vnet_table_lookup(t, next.vni, &mac)) {
            if (bpf_map_delete_elem(k->table_fd, &next) == 0)
                continue; /* the walk goes on from the same predecessor */
        }
        key = next;
        prev = &key;
    }
    if (s.skipped)
        vnet_log(VNET_LOG_WARN, MOD,
                 "%zu entries are not on port %u: the kernel tier floods to them", s.skipped,
                 k->port);
    free(k->tpeers);
    k->tpeers = s.ips;
    k->ntpeers = s.nips;
    int rc = sync_arp(k, t);
    return rc ? rc : rebuild_peer_set(k);
}

void vnet__ktier_get_stats(const struct vnet__ktier *k, struct vnet_datapath_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!k)
        return;
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return;
    uint64_t *v = calloc((size_t)ncpu, sizeof(*v));
    if (!v)
        return;
    uint64_t sum[KTIER_NSTATS] = {0};
    for (uint32_t i = 0; i < KTIER_NSTATS; i++) {
        if (bpf_map_lookup_elem(k->stats_fd, &i, v) < 0)
            continue;
        for (int c = 0; c < ncpu; c++)
            sum[i] += v[c];
    }
    free(v);
    for (int d = 0; d < VNET_DP_DROP__MAX; d++)
        out->drops[d] = sum[d];
    out->vport = (struct vnet_dp_port_stats){sum[KTIER_VPORT_RX_PKTS], sum[KTIER_VPORT_RX_BYTES],
                                             sum[KTIER_VPORT_TX_PKTS], sum[KTIER_VPORT_TX_BYTES]};
    out->uport = (struct vnet_dp_port_stats){sum[KTIER_UPORT_RX_PKTS], sum[KTIER_UPORT_RX_BYTES],
                                             sum[KTIER_UPORT_TX_PKTS], sum[KTIER_UPORT_TX_BYTES]};
    out->flooded = sum[KTIER_FLOODED];
    out->arp_replies = sum[KTIER_ARP_REPLIES];
}

const char *vnet__ktier_vx_name(const struct vnet__ktier *k)
{
    return k ? k->vx : "";
}

void vnet__ktier_close(struct vnet__ktier *k)
{
    if (!k)
        return;
    if (k->link_dev >= 0)
        close(k->link_dev);
    if (k->link_vx >= 0)
        close(k->link_vx);
    bpf_object__close(k->obj);
    if (k->vx_made) {
        int rc = vx_delete(k->vx);
        if (rc)
            vnet_log(VNET_LOG_WARN, MOD, "deleting %s: %s", k->vx, vnet_strerror(rc));
    }
    free(k->tpeers);
    free(k->peers);
    free(k);
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    (void)level;
    (void)fmt;
    (void)ap;
    return 0;
}
/* The tier's VXLAN device: "vk-NAME", or for a NAME longer than 12 characters "vk-" with its
 * first 6 and 24 bits of a hash of the whole name, so that two long names sharing a prefix
 * (vm-tenant-0001, vm-tenant-0002) never share a device (a start replaces a leftover of its
 * own name). */
static void vx_name(const char *dev, char *out, size_t len)
{
    if (strlen(dev) <= 12) {
        snprintf(out, len, "vk-%s", dev);
        return;
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)dev; *c; c++)
        h = (h ^ *c) * 16777619u;
    snprintf(out, len, "vk-%.6s%06x", dev, (unsigned)(h & 0xffffff));
}

int vnet__ktier_open(const struct vnet__ktier_cfg *cfg, struct vnet__ktier **out, char *err,
                     size_t errlen)
{
    if (!cfg || !cfg->dev || !out)
        return VNET_EINVAL;
    int dev_ifindex = vnet_netdev_ifindex(cfg->dev);
    if (dev_ifindex <= 0) {
        vnet__errf(err, errlen, "kernel:%s: no such interface", cfg->dev);
        return VNET_ENOENT;
    }
    struct vnet__ktier *k = calloc(1, sizeof(*k));
    if (!k)
        return VNET_ENOMEM;
    k->link_dev = k->link_vx = -1;
    vx_name(cfg->dev, k->vx, sizeof(k->vx));
    int rc = vx_create(k->vx, &cfg->local);
    if (rc == -EEXIST) { /* left by a node that was killed: the name is the tier's */
        vnet_log(VNET_LOG_WARN, MOD, "%s exists (left by an earlier run?): replacing it", k->vx);
        vx_delete(k->vx);
        rc = vx_create(k->vx, &cfg->local);
    }
    if (rc) {
        char ep[VNET_ENDPOINT_STRLEN];
        vnet_endpoint_format(&cfg->local, ep, sizeof(ep));
        vnet__errf(err, errlen, "kernel:%s: creating the VXLAN device %s on %s: %s", cfg->dev,
                   k->vx, ep, vnet_strerror(rc));
        goto fail;
    }
    k->vx_made = true;
    if ((rc = vnet_netdev_set_up(k->vx, true)) != 0) {
        vnet__errf(err, errlen, "kernel:%s: %s up: %s", cfg->dev, k->vx, vnet_strerror(rc));
        goto fail;
    }
    int vx_ifindex = vnet_netdev_ifindex(k->vx);
    libbpf_set_print(libbpf_quiet);
    LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "vnet_ktier");
    k->obj = bpf_object__open_mem(vnet_ktier_obj, sizeof(vnet_ktier_obj), &oo);
    if (!k->obj) {
        rc = errno ? -errno : VNET_EIO;
        vnet__errf(err, errlen, "kernel:%s: BPF object: %s", cfg->dev, vnet_strerror(rc));
        goto fail;
    }
    if ((rc = bpf_object__load(k->obj)) != 0) {
        vnet__errf(err, errlen, "kernel:%s: loading the BPF programs: %s (needs root or CAP_BPF)",
                   cfg->dev, vnet_strerror(rc < 0 ? rc : VNET_EIO));
        rc = rc == -EPERM ? VNET_EPERM : VNET_ENOTSUP;
        goto fail;
    }
    k->cfg_fd = map_fd(k->obj, "cfg_map");
    k->table_fd = map_fd(k->obj, "table_map");
    k->plist_fd = map_fd(k->obj, "peer_list");
    k->pset_fd = map_fd(k->obj, "peer_set");
    k->stats_fd = map_fd(k->obj, "stats_map");
    k->arp_fd = map_fd(k->obj, "arp_map");
    k->cfg.arp_proxy = cfg->arp_proxy;
    k->cfg.vni = cfg->vni;
    k->port = cfg->local.port;
    k->cfg.vx_ifindex = (uint32_t)vx_ifindex;
    k->cfg.dev_ifindex = (uint32_t)dev_ifindex;
    k->cfg.dev_flags = cfg->guest ? 0 : BPF_F_INGRESS;
    struct ktier_ip lk;
    ip_key(&cfg->local.ip, &lk, &k->cfg.local_v4);
    memcpy(k->cfg.local, lk.addr, 16);
    uint32_t zero = 0;
    if (bpf_map_update_elem(k->cfg_fd, &zero, &k->cfg, BPF_ANY) < 0) {
        rc = -errno;
        vnet__errf(err, errlen, "kernel:%s: BPF map: %s", cfg->dev, vnet_strerror(rc));
        goto fail;
    }
    if ((rc = attach(k->obj, "ktier_from_dev", dev_ifindex,
                     cfg->guest ? BPF_TCX_INGRESS : BPF_TCX_EGRESS, &k->link_dev)) ||
        (rc = attach(k->obj, "ktier_from_vx", vx_ifindex, BPF_TCX_INGRESS, &k->link_vx))) {
        vnet__errf(err, errlen, "kernel:%s: attaching the TC programs (tcx, kernel 6.6+): %s",
                   cfg->dev, vnet_strerror(rc));
        goto fail;
    }
    *out = k;
    return 0;
fail:
    vnet__ktier_close(k);
    return rc;
}
