/* Outer headers for the backends that write whole frames on the underlay (raw, xdp): a small
 * per-queue cache of one prebuilt Ethernet + IP + UDP header per destination, with the next-hop
 * MAC from the kernel's neighbour table, looked up again every NEIGH_TTL_MS and, while missing,
 * resolution triggered by a zero-length datagram to the peer's discard port. Private. */
#ifndef VNET_OUTER_INT_H
#define VNET_OUTER_INT_H

#include "vnet/encap.h"
#include "vnet/types.h"

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#define OUTER_DST_SLOTS 64
#define OUTER_MAX       (VNET_ETH_HLEN + VNET_IP6_HLEN + VNET_UDP_HLEN)

struct outer_dst {
    struct vnet_endpoint ep;
    uint8_t hdr[OUTER_MAX]; /* Ethernet + IP + UDP, variable fields to be patched */
    uint8_t hlen;
    uint8_t state;
    int64_t check_ms; /* next neighbour lookup */
    int64_t kick_ms;  /* last resolution trigger */
};

/* Where outer headers come from: the underlay interface and its local endpoint. */
struct outer_src {
    int ifindex;
    const char *ifname;
    const char *module; /* for log lines */
    struct vnet_mac mac;
    struct vnet_endpoint local;
    int kick_fd; /* a UDP socket for resolution triggers */
};

/* The cached outer header for @ep in @tab (OUTER_DST_SLOTS entries, one queue's), or NULL
 * while its next hop is unresolved. @now: monotonic ms. Not thread-safe per table. */
const struct outer_dst *vnet__outer_dst_get(const struct outer_src *src, struct outer_dst *tab,
                                            const struct vnet_endpoint *ep, int64_t now);

/* The two ordinary UDP sockets of an underlay port on @local (IP:PORT): *guard is bound to it
 * with a filter that drops everything (it claims the port, a second user is VNET_EBUSY, and
 * keeps the host from answering datagrams that reach it with ICMP port unreachable); *kick is
 * bound to the address on any port, for the neighbour resolution triggers. 0 or a VNET_E*
 * code (logged, under @module, when the bind fails); the caller closes what was opened (>= 0)
 * either way. */
int vnet__outer_open_sockets(const struct vnet_endpoint *local, const char *module, int *guard,
                             int *kick);

/* The UDP datagram in an underlay frame. */
struct udp_view {
    const uint8_t *payload;
    uint32_t plen;
    struct vnet_endpoint src; /* the outer source: the peer */
};

/* An untagged Ethernet frame carrying one unfragmented UDP datagram to @local (IP and port):
 * the IPv4 header checksum, all lengths and, unless @csum_ok (the kernel vouched for it), the
 * UDP checksum are checked (0 is "none" over IPv4 only). A UDP checksum field that holds just
 * the pseudo-header sum, left by a local veth sender with checksum offload on, is taken as is.
 * true with @v filled, false for anything else. */
bool vnet__outer_parse(const struct vnet_endpoint *local, const uint8_t *f, uint32_t len,
                       bool csum_ok, struct udp_view *v);

/* "IFNAME" (virtual side) or "IFNAME,local=IP[:PORT]" / "IFNAME,local=[IPv6][:PORT]" (underlay
 * side; the port defaults to 4789, the address must be a concrete unicast one): @ifname gets
 * the name (IFNAMSIZ bytes), *@underlay which side, @local the endpoint. 0 or VNET_EINVAL. */
int vnet__iface_spec_parse(const char *arg, char ifname[IFNAMSIZ], bool *underlay,
                           struct vnet_endpoint *local);

/* What the open of a raw or xdp port starts from: its spec parsed, its queue count and the
 * interface's index. */
struct iface_spec {
    char ifname[IFNAMSIZ];
    bool underlay;
    struct vnet_endpoint local;
    unsigned nq; /* queues: cfg->queues, 0 read as 1 */
    int ifindex;
};

/* Parse the spec @arg of a @module ("raw", "xdp") port, check @queues (0: 1) against
 * @max_queues and find the interface: 0 with @out filled, VNET_EINVAL (bad spec, logged; too
 * many queues) or the interface lookup's error (logged: VNET_ENOENT for no such interface). */
int vnet__iface_spec_open(const char *module, const char *arg, unsigned queues, unsigned max_queues,
                          struct iface_spec *out);

#endif
