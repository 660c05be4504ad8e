/* The outer-header cache shared by the raw and xdp underlays (outer_int.h). */
#include "outer_int.h"
#include "vnet/log.h"
#include "vnet/netdev.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define NEIGH_TTL_MS   2000
#define NEIGH_RETRY_MS 10
#define KICK_MS        500
#define KICK_PORT      9 /* discard */

enum { DST_EMPTY = 0, DST_PENDING, DST_VALID };

static uint32_t ep_hash(const struct vnet_endpoint *ep)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ ep->ip.addr[i]) * 16777619u;
    h = (h ^ ep->port) * 16777619u;
    return h ^ (h >> 15);
}

static void kick(const struct outer_src *src, const struct vnet_endpoint *ep)
{
    struct vnet_endpoint k = *ep;
    struct sockaddr_storage ss;
    k.port = KICK_PORT;
    int salen = vnet_endpoint_to_sockaddr(&k, &ss);
    if (salen > 0 &&
        sendto(src->kick_fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&ss, (socklen_t)salen) < 0)
        vnet_log(VNET_LOG_DEBUG, src->module, "%s: neighbour trigger: %s", src->ifname,
                 strerror(errno));
}

static bool build(const struct outer_src *src, struct outer_dst *d, const struct vnet_mac *nh)
{
    struct vnet_encap_cfg c;
    struct vnet_encap_tmpl t;
    uint8_t scratch[VNET_ENCAP_OVERHEAD_MAX + VNET_INNER_MIN];
    memset(&c, 0, sizeof(c));
    memset(scratch, 0, sizeof(scratch));
    c.src_mac = src->mac;
    c.dst_mac = *nh;
    c.src = src->local;
    c.dst = d->ep;
    c.flags = VNET_ENCAP_F_DF;
    if (vnet_encap_tmpl_init(&c, &t) != 0)
        return false;
    int off = vnet_encap_push(&t, scratch, VNET_ENCAP_OVERHEAD_MAX, VNET_INNER_MIN, 0,
                              src->local.port, 0);
    if (off < 0)
        return false;
    /* the payload is opaque to these ports: keep Ethernet + IP + UDP, drop the VXLAN part */
    d->hlen = (uint8_t)(vnet_encap_tmpl_len(&t) - VNET_VXLAN_HLEN);
    memcpy(d->hdr, scratch + off, d->hlen);
    return true;
}

const struct outer_dst *outer_dst_get(const struct outer_src *src, struct outer_dst *tab,
                                      const struct vnet_endpoint *ep, int64_t now)
{
    struct outer_dst *d = &tab[ep_hash(ep) % OUTER_DST_SLOTS];
    if (d->state == DST_EMPTY || !vnet_endpoint_eq(&d->ep, ep)) {
        memset(d, 0, sizeof(*d));
        d->ep = *ep;
        d->state = DST_PENDING;
        d->kick_ms = now - KICK_MS;
    }
    if (now >= d->check_ms) {
        struct vnet_mac nh;
        if (vnet_netdev_neigh_get(src->ifindex, &ep->ip, &nh) == 0 && build(src, d, &nh)) {
            d->state = DST_VALID;
            d->check_ms = now + NEIGH_TTL_MS;
        } else {
            /* an entry we had stays in use while the kernel re-resolves */
            if (now - d->kick_ms >= KICK_MS) {
                kick(src, ep);
                d->kick_ms = now;
            }
            d->check_ms = now + NEIGH_RETRY_MS;
        }
    }
    return d->state == DST_VALID ? d : NULL;
}
