/* libvnet: the kernel tier's TC programs ("kernel:NAME", see ktier.c and docs/kernel-tier.md).
 *
 * ktier_from_dev runs on NAME's TC hook (egress of a TAP the host stack sends on; ingress of a
 * VM's tap or veth, frames from the VM, in guest mode): it looks the
 * destination MAC up in table_map (the node's switch table, mirrored by the loader), sets the
 * tunnel key (remote IP, VNI) and redirects the frame to the flow-based VXLAN device, which
 * encapsulates it to its own UDP port. Broadcast, multicast and unknown destinations are
 * replicated head-end: one bpf_clone_redirect per peer of peer_list.
 *
 * ktier_from_vx runs on the VXLAN device's ingress (frames already decapsulated, the tunnel
 * key holding VNI and outer source): foreign VNI, unknown outer source and a source MAC that
 * the table binds to another endpoint are dropped and counted; the rest goes to NAME.
 *
 * Built with: clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c ktier.bpf.c
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ktier_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct ktier_cfg);
} cfg_map SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, KTIER_MAX_ENTRIES);
    __type(key, struct ktier_mac_key);
    __type(value, struct ktier_endpoint);
} table_map SEC(".maps");

/* The network's other nodes: the flood list (array, first cfg.npeers used) ... */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, KTIER_MAX_PEERS);
    __type(key, __u32);
    __type(value, struct ktier_endpoint);
} peer_list SEC(".maps");

/* ... and the same addresses as a set, for the receive check (table endpoints too). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, KTIER_MAX_ENTRIES);
    __type(key, struct ktier_ip);
    __type(value, __u32);
} peer_set SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, KTIER_MAX_ENTRIES);
    __type(key, struct ktier_ip4_key);
    __type(value, struct ktier_mac);
} arp_map SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, KTIER_NSTATS);
    __type(key, __u32);
    __type(value, __u64);
} stats_map SEC(".maps");

static __always_inline void count(__u32 slot, __u64 n)
{
    __u64 *v = bpf_map_lookup_elem(&stats_map, &slot);
    if (v)
        *v += n;
}

static __always_inline int drop(__u32 reason)
{
    count(reason, 1);
    return TC_ACT_SHOT;
}

/* The tunnel key for @ep: VNI, remote and local address (the VXLAN device adds its UDP port). */
static __always_inline int set_key(struct __sk_buff *skb, const struct ktier_endpoint *ep,
                                   const struct ktier_cfg *c)
{
    struct bpf_tunnel_key k = {};
    k.tunnel_id = c->vni;
    k.tunnel_ttl = 64;
    if (ep->v4) {
        __builtin_memcpy(&k.remote_ipv4, &ep->ip.addr[12], 4);
        k.remote_ipv4 = bpf_ntohl(k.remote_ipv4);
        __builtin_memcpy(&k.local_ipv4, &c->local[12], 4);
        k.local_ipv4 = bpf_ntohl(k.local_ipv4);
        return bpf_skb_set_tunnel_key(skb, &k, sizeof(k), BPF_F_ZERO_CSUM_TX);
    }
    __builtin_memcpy(k.remote_ipv6, ep->ip.addr, 16);
    __builtin_memcpy(k.local_ipv6, c->local, 16);
    for (int i = 0; i < 4; i++) {
        k.remote_ipv6[i] = bpf_ntohl(k.remote_ipv6[i]);
        k.local_ipv6[i] = bpf_ntohl(k.local_ipv6[i]);
    }
    return bpf_skb_set_tunnel_key(skb, &k, sizeof(k), BPF_F_TUNINFO_IPV6);
}

static __always_inline int same_ip(const struct ktier_ip *a, const struct ktier_ip *b)
{
    const __u32 *x = (const __u32 *)a->addr, *y = (const __u32 *)b->addr;
    return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* An ARP request (Ethernet/IPv4) for an address arp_map binds: turn it into the reply in place
 * and send it back to NAME's ingress. Returns -1 when the frame is no such request. */
static __always_inline int arp_answer(struct __sk_buff *skb, const struct ktier_cfg *c)
{
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    __u8 *p = data;
    if (data + 42 > end)
        return -1;
    /* htype 1, ptype 0x0800, hlen 6, plen 4, oper 1 */
    if (p[14] != 0 || p[15] != 1 || p[16] != 8 || p[17] != 0 || p[18] != 6 || p[19] != 4 ||
        p[20] != 0 || p[21] != 1)
        return -1;
    struct ktier_ip4_key k = {.vni = c->vni};
    __builtin_memcpy(k.ip, p + 38, 4);
    if (k.ip[0] == p[28] && k.ip[1] == p[29] && k.ip[2] == p[30] && k.ip[3] == p[31])
        return -1; /* gratuitous: for the peers to see */
    struct ktier_mac *m = bpf_map_lookup_elem(&arp_map, &k);
    if (!m)
        return -1;
    __u8 req_mac[6], req_ip[4];
    __builtin_memcpy(req_mac, p + 22, 6);
    __builtin_memcpy(req_ip, p + 28, 4);
    __builtin_memcpy(p, req_mac, 6);     /* eth dst */
    __builtin_memcpy(p + 6, m->mac, 6);  /* eth src */
    p[21] = 2;                           /* reply */
    __builtin_memcpy(p + 22, m->mac, 6); /* sender: the bound MAC and IP */
    __builtin_memcpy(p + 28, k.ip, 4);
    __builtin_memcpy(p + 32, req_mac, 6); /* target: the requester */
    __builtin_memcpy(p + 38, req_ip, 4);
    count(KTIER_ARP_REPLIES, 1);
    return bpf_redirect(c->dev_ifindex, c->dev_flags);
}

SEC("tc")
int ktier_from_dev(struct __sk_buff *skb)
{
    __u32 zero = 0;
    struct ktier_cfg *c = bpf_map_lookup_elem(&cfg_map, &zero);
    if (!c)
        return TC_ACT_SHOT;
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return drop(KTIER_DROP_SHORT);
    count(KTIER_VPORT_RX_PKTS, 1);
    count(KTIER_VPORT_RX_BYTES, skb->len);
    __u32 len = skb->len;
    if (eth->h_proto == bpf_htons(ETH_P_ARP) && c->arp_proxy) {
        int rc = arp_answer(skb, c);
        if (rc >= 0)
            return rc;
    }
    if (!(eth->h_dest[0] & 1)) {
        struct ktier_mac_key mk = {.vni = c->vni};
        __builtin_memcpy(mk.mac, eth->h_dest, 6);
        struct ktier_endpoint *ep = bpf_map_lookup_elem(&table_map, &mk);
        if (ep) {
            if (ep->local) /* to this node's own MAC: back to the host */
                return bpf_redirect(c->dev_ifindex, c->dev_flags);
            if (set_key(skb, ep, c) < 0)
                return drop(KTIER_DROP_TX_UNDERLAY);
            count(KTIER_UPORT_TX_PKTS, 1);
            count(KTIER_UPORT_TX_BYTES, len);
            return bpf_redirect(c->vx_ifindex, 0);
        }
    }
    /* BUM or unknown unicast: head-end replication to every peer */
    __u32 np = c->npeers;
    __u32 vx = c->vx_ifindex;
    if (np == 0)
        return drop(KTIER_DROP_NO_PEERS);
    count(KTIER_FLOODED, 1);
    for (__u32 i = 0; i < KTIER_MAX_PEERS; i++) {
        if (i >= np)
            break;
        struct ktier_endpoint *ep = bpf_map_lookup_elem(&peer_list, &i);
        if (!ep)
            break;
        if (set_key(skb, ep, c) < 0 || bpf_clone_redirect(skb, vx, 0) < 0) {
            count(KTIER_DROP_TX_UNDERLAY, 1);
            continue;
        }
        count(KTIER_UPORT_TX_PKTS, 1);
        count(KTIER_UPORT_TX_BYTES, len);
    }
    return TC_ACT_SHOT; /* the original: every copy has gone */
}

SEC("tc")
int ktier_from_vx(struct __sk_buff *skb)
{
    __u32 zero = 0;
    struct ktier_cfg *c = bpf_map_lookup_elem(&cfg_map, &zero);
    if (!c)
        return TC_ACT_SHOT;
    struct bpf_tunnel_key k = {};
    struct ktier_ip src = {};
    if (bpf_skb_get_tunnel_key(skb, &k, sizeof(k), 0) == 0) {
        __u32 a = bpf_htonl(k.remote_ipv4);
        src.addr[10] = 0xff;
        src.addr[11] = 0xff;
        __builtin_memcpy(&src.addr[12], &a, 4);
    } else if (bpf_skb_get_tunnel_key(skb, &k, sizeof(k), BPF_F_TUNINFO_IPV6) == 0) {
        for (int i = 0; i < 4; i++) {
            __u32 a = bpf_htonl(k.remote_ipv6[i]);
            __builtin_memcpy(&src.addr[i * 4], &a, 4);
        }
    } else {
        return drop(KTIER_DROP_UNKNOWN_PEER);
    }
    if (k.tunnel_id != c->vni)
        return drop(KTIER_DROP_FOREIGN_VNI);
    if (!bpf_map_lookup_elem(&peer_set, &src))
        return drop(KTIER_DROP_UNKNOWN_PEER);
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return drop(KTIER_DROP_SHORT);
    struct ktier_mac_key mk = {.vni = c->vni};
    __builtin_memcpy(mk.mac, eth->h_source, 6);
    struct ktier_endpoint *ep = bpf_map_lookup_elem(&table_map, &mk);
    if (ep) {
        if (ep->local)
            return drop(KTIER_DROP_SELF);
        if (!same_ip(&ep->ip, &src))
            return drop(KTIER_DROP_SPOOF);
    }
    count(KTIER_UPORT_RX_PKTS, 1);
    count(KTIER_UPORT_RX_BYTES, skb->len);
    count(KTIER_VPORT_TX_PKTS, 1);
    count(KTIER_VPORT_TX_BYTES, skb->len);
    return bpf_redirect(c->dev_ifindex, c->dev_flags);
}
