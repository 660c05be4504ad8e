/* What the raw and xdp backends share (outer_int.h): their spec syntax, the outer-header cache,
 * the guard and kick sockets of an underlay port and the parser of underlay frames. (Where the
 * L4 checksum of a frame from a local sender lies is in ../csum.c, with the other checksums.)
 */
#include "../bytes_int.h"
#include "outer_int.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/netdev.h"

#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
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

const struct outer_dst *vnet__outer_dst_get(const struct outer_src *src, struct outer_dst *tab,
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

/* ---- the local endpoint's guard and kick sockets ---- */

static int guard_err(int e)
{
    return e == EPERM || e == EACCES ? VNET_EPERM : -e;
}

int vnet__outer_open_sockets(const struct vnet_endpoint *local, const char *module, int *guard,
                             int *kick)
{
    static const struct sock_filter drop_all[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
    struct sock_fprog prog = {.len = 1, .filter = (struct sock_filter *)drop_all};
    struct sockaddr_storage ss;
    int salen = vnet_endpoint_to_sockaddr(local, &ss);
    if (salen < 0)
        return VNET_EINVAL;
    *guard = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (*guard < 0)
        return guard_err(errno);
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(*guard, IPPROTO_IPV6, IPV6_V6ONLY, &(int){1}, sizeof(int));
    if (setsockopt(*guard, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
        return guard_err(errno);
    if (bind(*guard, (struct sockaddr *)&ss, (socklen_t)salen) < 0) {
        int e = errno;
        char buf[VNET_ENDPOINT_STRLEN];
        vnet_endpoint_format(local, buf, sizeof(buf));
        vnet_log(VNET_LOG_ERROR, module, "bind %s: %s%s", buf, strerror(e),
                 e == EADDRNOTAVAIL ? " (the local address must be configured on the host)"
                 : e == EADDRINUSE  ? " (another socket or port uses it)"
                                    : "");
        return e == EADDRNOTAVAIL ? VNET_EINVAL : e == EADDRINUSE ? VNET_EBUSY : guard_err(e);
    }
    /* the resolution trigger: same family, bound to the local address, any port */
    *kick = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (*kick < 0)
        return guard_err(errno);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = 0;
    if (bind(*kick, (struct sockaddr *)&ss, (socklen_t)salen) < 0)
        return guard_err(errno);
    return 0;
}

/* ---- specs ---- */

static bool valid_ifname(const char *s, size_t n)
{
    if (n == 0 || n >= IFNAMSIZ)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == ':' || s[i] == ',' || s[i] == '=' ||
            isspace((unsigned char)s[i]))
            return false;
    return true;
}

/* "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT"; a concrete address, port 1..65535. */
static int parse_local(const char *s, struct vnet_endpoint *ep)
{
    char tmp[VNET_IP_STRLEN + 2];
    size_t n = strlen(s);
    if (vnet_endpoint_parse(s, ep) != 0) {
        if (n >= 2 && s[0] == '[' && s[n - 1] == ']' && n - 2 < sizeof(tmp)) {
            memcpy(tmp, s + 1, n - 2);
            tmp[n - 2] = '\0';
            if (vnet_ip_parse(tmp, &ep->ip) != 0 || ep->ip.family != VNET_AF_INET6)
                return VNET_EINVAL;
        } else if (vnet_ip_parse(s, &ep->ip) != 0 || ep->ip.family != VNET_AF_INET) {
            return VNET_EINVAL;
        }
        ep->port = VNET_VXLAN_PORT;
    }
    static const uint8_t zero[16];
    size_t alen = ep->ip.family == VNET_AF_INET ? 4 : 16;
    if (ep->port == 0 || memcmp(ep->ip.addr, zero, alen) == 0)
        return VNET_EINVAL;
    if (ep->ip.family == VNET_AF_INET ? ep->ip.addr[0] >= 224 : ep->ip.addr[0] == 0xff)
        return VNET_EINVAL; /* multicast: not an address of ours */
    return 0;
}

int vnet__iface_spec_parse(const char *arg, char ifname[IFNAMSIZ], bool *underlay,
                           struct vnet_endpoint *local)
{
    const char *comma = strchr(arg, ',');
    size_t n = comma ? (size_t)(comma - arg) : strlen(arg);
    if (!valid_ifname(arg, n))
        return VNET_EINVAL;
    memcpy(ifname, arg, n);
    ifname[n] = '\0';
    *underlay = false;
    if (!comma)
        return 0;
    if (strncmp(comma + 1, "local=", 6) != 0 || strchr(comma + 1, ','))
        return VNET_EINVAL;
    *underlay = true;
    return parse_local(comma + 7, local);
}

/* ---- receiving on the underlay ---- */

bool vnet__outer_parse(const struct vnet_endpoint *local, const uint8_t *f, uint32_t len,
                       bool csum_ok, struct udp_view *v)
{
    if (len < 14)
        return false;
    const uint8_t *ip = f + 14, *udp;
    uint32_t avail = len - 14, plen, psum;
    bool v6;
    memset(&v->src, 0, sizeof(v->src));
    if (get16(f + 12) == ETH_P_IP && local->ip.family == VNET_AF_INET) {
        if (avail < 20 || ip[0] >> 4 != 4)
            return false;
        uint32_t hl = (uint32_t)(ip[0] & 0xf) * 4, tot = get16(ip + 2);
        if (hl < 20 || tot < hl || tot > avail || (get16(ip + 6) & 0x3fff) || ip[9] != IPPROTO_UDP)
            return false;
        if (vnet_csum(ip, hl) != 0 || memcmp(ip + 16, local->ip.addr, 4) != 0)
            return false;
        udp = ip + hl;
        plen = tot - hl;
        v->src.ip.family = VNET_AF_INET;
        memcpy(v->src.ip.addr, ip + 12, 4);
        psum = vnet_csum_pseudo4(ip + 12, ip + 16, IPPROTO_UDP, 0);
        v6 = false;
    } else if (get16(f + 12) == ETH_P_IPV6 && local->ip.family == VNET_AF_INET6) {
        if (avail < 40 || ip[0] >> 4 != 6 || ip[6] != IPPROTO_UDP)
            return false;
        plen = get16(ip + 4);
        if (plen > avail - 40 || memcmp(ip + 24, local->ip.addr, 16) != 0)
            return false;
        udp = ip + 40;
        v->src.ip.family = VNET_AF_INET6;
        memcpy(v->src.ip.addr, ip + 8, 16);
        psum = vnet_csum_pseudo6(ip + 8, ip + 24, IPPROTO_UDP, 0);
        v6 = true;
    } else {
        return false;
    }
    if (plen < 8)
        return false;
    uint32_t ulen = get16(udp + 4);
    if (ulen < 8 || ulen > plen || get16(udp + 2) != local->port)
        return false;
    uint16_t c = get16(udp + 6);
    if (!csum_ok && (c != 0 || v6)) {
        /* A sender behind a local veth with checksum offload on leaves only the pseudo-header
         * sum in the field (and XDP does not say so): taken as is, as the kernel would. */
        uint16_t pseudo = (uint16_t)(vnet_csum_fold(psum + ulen) ^ 0xffffu);
        if (c == 0 ||
            (vnet_csum_fold(vnet_csum_partial(udp, ulen, psum + ulen)) != 0 && c != pseudo))
            return false;
    }
    v->src.port = get16(udp);
    v->payload = udp + 8;
    v->plen = ulen - 8;
    return true;
}

int vnet__iface_spec_open(const char *module, const char *arg, unsigned queues, unsigned max_queues,
                          struct iface_spec *out)
{
    memset(out, 0, sizeof(*out));
    if (vnet__iface_spec_parse(arg, out->ifname, &out->underlay, &out->local) != 0) {
        vnet_log(VNET_LOG_ERROR, module,
                 "bad spec \"%s:%.64s\" (IFNAME, or IFNAME,local=IP[:PORT] / "
                 "IFNAME,local=[IPv6][:PORT])",
                 module, arg);
        return VNET_EINVAL;
    }
    out->nq = queues ? queues : 1;
    if (out->nq > max_queues)
        return VNET_EINVAL;
    out->ifindex = vnet_netdev_ifindex(out->ifname);
    if (out->ifindex < 0) {
        vnet_log(VNET_LOG_ERROR, module, "%s: %s", out->ifname, vnet_strerror(out->ifindex));
        return out->ifindex;
    }
    return 0;
}
