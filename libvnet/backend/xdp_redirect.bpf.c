/* libvnet: the XDP program of the "xdp" (AF_XDP) port backend (see afxdp.c).
 *
 * cfg_map[0].family == 0: every frame goes to the AF_XDP socket of its RX queue (virtual
 * side). family 4 or 6: only untagged, unfragmented IPv4 / IPv6 (no extension headers) UDP to
 * exactly addr:port does; everything else is passed to the kernel (underlay side). A queue
 * without a socket in xsks_map passes its frames to the kernel too.
 *
 * Built with: clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c xdp_redirect.bpf.c
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct vnet_xdp_cfg {
    __u32 family; /* 0: all frames; 4; 6 */
    __u8 addr[16];
    __u16 port; /* network byte order */
    __u16 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u32);
} xsks_map SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct vnet_xdp_cfg);
} cfg_map SEC(".maps");

SEC("xdp")
int vnet_xdp_redirect(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    __u32 k = 0;
    struct vnet_xdp_cfg *c = bpf_map_lookup_elem(&cfg_map, &k);
    if (!c)
        return XDP_PASS;
    if (c->family == 0)
        return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return XDP_PASS;
    struct udphdr *udp;
    if (eth->h_proto == bpf_htons(ETH_P_IP) && c->family == 4) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > end)
            return XDP_PASS;
        if (ip->protocol != IPPROTO_UDP || ip->ihl < 5 || (ip->frag_off & bpf_htons(0x3fff)))
            return XDP_PASS;
        if (ip->daddr != *(__u32 *)c->addr)
            return XDP_PASS;
        udp = (void *)ip + ip->ihl * 4;
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6) && c->family == 6) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > end)
            return XDP_PASS;
        if (ip6->nexthdr != IPPROTO_UDP)
            return XDP_PASS;
        const __u32 *a = (const __u32 *)&ip6->daddr, *b = (const __u32 *)c->addr;
        if (a[0] != b[0] || a[1] != b[1] || a[2] != b[2] || a[3] != b[3])
            return XDP_PASS;
        udp = (void *)(ip6 + 1);
    } else {
        return XDP_PASS;
    }
    if ((void *)(udp + 1) > end)
        return XDP_PASS;
    if (udp->dest != c->port)
        return XDP_PASS;
    return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
