/* VXLAN encapsulation: the VXLAN header, outer Ethernet/IPv4/IPv6/UDP templates and the parser.
 *
 * Why a template: almost every byte of the outer header is the same for all packets to one
 * destination. vnet_encap_tmpl_init builds those bytes once, together with the ones'-complement
 * sums of the fixed parts of the IPv4 header and the UDP pseudo-header, so that the per-packet
 * work in vnet_encap_push is one fixed-size copy, a handful of 16-bit stores and two folds (plus
 * a pass over the payload only when a UDP checksum is wanted).
 *
 * The checksum functions of encap.h (vnet_csum*) live in csum.c, with libvnet's other checksums.
 *
 * The parser checks lengths before every read, in the order the headers appear, so each
 * rejection names the first thing that was wrong. Its error paths go through drop(), kept out
 * of line so the accept path stays short.
 */
#include "bytes_int.h"
#include "csum_int.h"
#include "vnet/encap.h"
#include "vnet/error.h"

#include <string.h>

#define ETH_P_IPV4   0x0800
#define ETH_P_IPV6   0x86dd
#define IPPROTO_UDP_ 17

/* ---- Drop reasons ---- */

static const char *const drop_names[VNET_DROP__MAX] = {
    [VNET_DROP_NONE] = "none",
    [VNET_DROP_TRUNC_ETH] = "trunc_eth",
    [VNET_DROP_BAD_ETHERTYPE] = "bad_ethertype",
    [VNET_DROP_TRUNC_IP] = "trunc_ip",
    [VNET_DROP_BAD_IP_VERSION] = "bad_ip_version",
    [VNET_DROP_BAD_IHL] = "bad_ihl",
    [VNET_DROP_BAD_IP_LEN] = "bad_ip_len",
    [VNET_DROP_IP_FRAGMENT] = "ip_fragment",
    [VNET_DROP_BAD_IP_CSUM] = "bad_ip_csum",
    [VNET_DROP_NOT_UDP] = "not_udp",
    [VNET_DROP_TRUNC_UDP] = "trunc_udp",
    [VNET_DROP_BAD_UDP_LEN] = "bad_udp_len",
    [VNET_DROP_WRONG_PORT] = "wrong_port",
    [VNET_DROP_BAD_UDP_CSUM] = "bad_udp_csum",
    [VNET_DROP_ZERO_UDP_CSUM6] = "zero_udp_csum6",
    [VNET_DROP_TRUNC_VXLAN] = "trunc_vxlan",
    [VNET_DROP_BAD_VXLAN_FLAGS] = "bad_vxlan_flags",
    [VNET_DROP_TRUNC_INNER] = "trunc_inner",
};

const char *vnet_drop_reason_name(enum vnet_drop_reason r)
{
    if ((unsigned)r >= VNET_DROP__MAX || !drop_names[r])
        return "unknown";
    return drop_names[r];
}

int vnet_drop_reason_code(enum vnet_drop_reason r)
{
    switch (r) {
    case VNET_DROP_NONE:
        return 0;
    case VNET_DROP_TRUNC_ETH:
    case VNET_DROP_TRUNC_IP:
    case VNET_DROP_TRUNC_UDP:
    case VNET_DROP_TRUNC_VXLAN:
    case VNET_DROP_TRUNC_INNER:
        return VNET_ETRUNC;
    case VNET_DROP_BAD_IP_CSUM:
    case VNET_DROP_BAD_UDP_CSUM:
    case VNET_DROP_ZERO_UDP_CSUM6:
        return VNET_ECHECKSUM;
    case VNET_DROP_BAD_ETHERTYPE:
    case VNET_DROP_BAD_IP_VERSION:
    case VNET_DROP_BAD_IHL:
    case VNET_DROP_BAD_IP_LEN:
    case VNET_DROP_IP_FRAGMENT:
    case VNET_DROP_NOT_UDP:
    case VNET_DROP_BAD_UDP_LEN:
    case VNET_DROP_WRONG_PORT:
    case VNET_DROP_BAD_VXLAN_FLAGS:
        return VNET_EMALFORM;
    case VNET_DROP__MAX:
        break;
    }
    return VNET_EINVAL;
}

void vnet_drop_stats_add(struct vnet_drop_stats *dst, const struct vnet_drop_stats *src)
{
    for (int i = 0; i < VNET_DROP__MAX; i++)
        dst->count[i] += src->count[i];
}

__attribute__((cold, noinline)) static int
drop(struct vnet_drop_stats *stats, enum vnet_drop_reason *reason, enum vnet_drop_reason r)
{
    if (stats)
        stats->count[r]++;
    if (reason)
        *reason = r;
    return vnet_drop_reason_code(r);
}

/* ---- VXLAN header ---- */

void vnet_vxlan_encode(uint8_t hdr[VNET_VXLAN_HLEN], uint32_t vni)
{
    put32(hdr, (uint32_t)VNET_VXLAN_FLAG_I << 24);
    put32(hdr + 4, (vni & VNET_VNI_MAX) << 8);
}

int vnet_vxlan_push(uint8_t *buf, size_t headroom, uint32_t vni)
{
    if (headroom < VNET_VXLAN_HLEN)
        return VNET_ENOSPC;
    if (vni > VNET_VNI_MAX || headroom > (size_t)INT32_MAX)
        return VNET_EINVAL;
    vnet_vxlan_encode(buf + headroom - VNET_VXLAN_HLEN, vni);
    return (int)(headroom - VNET_VXLAN_HLEN);
}

int vnet_vxlan_decode(const uint8_t *p, size_t len, struct vnet_drop_stats *stats, uint32_t *vni,
                      enum vnet_drop_reason *reason)
{
    if (len < VNET_VXLAN_HLEN)
        return drop(stats, reason, VNET_DROP_TRUNC_VXLAN);
    /* Only I matters; the reserved bits (and the G/P bits of later drafts) are ignored. */
    if (!(p[0] & VNET_VXLAN_FLAG_I))
        return drop(stats, reason, VNET_DROP_BAD_VXLAN_FLAGS);
    if (len - VNET_VXLAN_HLEN < VNET_INNER_MIN)
        return drop(stats, reason, VNET_DROP_TRUNC_INNER);
    if (vni)
        *vni = get32(p + 4) >> 8;
    if (reason)
        *reason = VNET_DROP_NONE;
    return 0;
}

/* ---- Source port ---- */

uint16_t vnet_encap_src_port(uint32_t flow_hash, uint16_t min, uint16_t max)
{
    if (min == 0 && max == 0) {
        min = VNET_ENCAP_SPORT_MIN;
        max = VNET_ENCAP_SPORT_MAX;
    } else if (min > max) {
        uint16_t t = min;
        min = max;
        max = t;
    }
    /* Linux' udp_flow_src_port only does h ^= h << 16, which trusts the skb hash to be good.
     * Ours may come from a weak hash (or a counter), so finish it with a murmur3-style mix,
     * then scale by the high bits (multiply-shift: uniform without a division). The range is
     * inclusive. */
    uint32_t h = flow_hash;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    uint64_t span = (uint64_t)max - min + 1;
    return (uint16_t)(min + (((uint64_t)h * span) >> 32));
}

/* ---- Templates and push ---- */

/* Offsets inside the template. */
enum {
    OFF_IP = VNET_ETH_HLEN,
    /* IPv4 */
    OFF4_TOTLEN = OFF_IP + 2,
    OFF4_ID = OFF_IP + 4,
    OFF4_CSUM = OFF_IP + 10,
    OFF4_UDP = OFF_IP + VNET_IP4_HLEN,
    /* IPv6 */
    OFF6_PLEN = OFF_IP + 4,
    OFF6_UDP = OFF_IP + VNET_IP6_HLEN,
};

int vnet_encap_tmpl_init(const struct vnet_encap_cfg *cfg, struct vnet_encap_tmpl *t)
{
    struct vnet_encap_tmpl n;
    if (!cfg || !t)
        return VNET_EINVAL;
    int fam = cfg->src.ip.family;
    if (fam != cfg->dst.ip.family || (fam != VNET_AF_INET && fam != VNET_AF_INET6))
        return VNET_EINVAL;
    if (cfg->flowlabel > 0xfffffu)
        return VNET_EINVAL;

    memset(&n, 0, sizeof(n));
    uint8_t *h = n.hdr;
    uint8_t ttl = cfg->ttl ? cfg->ttl : 64;
    uint16_t dport = cfg->dst.port ? cfg->dst.port : VNET_VXLAN_PORT;
    uint8_t *udp;

    memcpy(h, cfg->dst_mac.b, 6);
    memcpy(h + 6, cfg->src_mac.b, 6);
    n.family = (uint8_t)fam;
    if (fam == VNET_AF_INET) {
        uint8_t *ip = h + OFF_IP;
        put16(h + 12, ETH_P_IPV4);
        ip[0] = 0x45;
        ip[1] = cfg->tos;
        /* total length, ID: per packet */
        put16(ip + 6, (cfg->flags & VNET_ENCAP_F_DF) ? 0x4000 : 0);
        ip[8] = ttl;
        ip[9] = IPPROTO_UDP_;
        /* checksum: per packet */
        memcpy(ip + 12, cfg->src.ip.addr, 4);
        memcpy(ip + 16, cfg->dst.ip.addr, 4);
        n.ip_sum = vnet_csum_partial(ip, VNET_IP4_HLEN, 0);
        n.udp_sum = vnet_csum_pseudo4(ip + 12, ip + 16, IPPROTO_UDP_, 0);
        n.udp_csum = (cfg->flags & VNET_ENCAP_F_UDP_CSUM) != 0;
        n.len = VNET_ENCAP_OVERHEAD_V4;
        udp = h + OFF4_UDP;
    } else {
        uint8_t *ip = h + OFF_IP;
        put16(h + 12, ETH_P_IPV6);
        put32(ip, 6u << 28 | (uint32_t)cfg->tos << 20 | cfg->flowlabel);
        /* payload length: per packet */
        ip[6] = IPPROTO_UDP_;
        ip[7] = ttl;
        memcpy(ip + 8, cfg->src.ip.addr, 16);
        memcpy(ip + 24, cfg->dst.ip.addr, 16);
        n.udp_sum = vnet_csum_pseudo6(ip + 8, ip + 24, IPPROTO_UDP_, 0);
        n.udp_csum = !(cfg->flags & VNET_ENCAP_F_UDP6_ZERO_CSUM);
        n.len = VNET_ENCAP_OVERHEAD_V6;
        udp = h + OFF6_UDP;
    }
    /* source port, length, checksum: per packet */
    put16(udp + 2, dport);
    vnet_vxlan_encode(udp + VNET_UDP_HLEN, 0);
    /* Fixed part of the UDP checksum: destination port and the VXLAN flags word. */
    n.udp_sum = vnet__csum_fold32(n.udp_sum + dport + ((uint32_t)VNET_VXLAN_FLAG_I << 8));
    *t = n;
    return 0;
}

/* UDP header + VXLAN header + payload checksum, with @udp_len counted twice (pseudo-header and
 * UDP header). @inner must start at an even offset from the UDP header, which it does. */
static inline uint16_t udp_csum(const struct vnet_encap_tmpl *t, const uint8_t *inner,
                                size_t inner_len, uint16_t udp_len, uint16_t sport, uint32_t vni)
{
    uint32_t s = t->udp_sum + 2u * udp_len + sport + (vni >> 8) + ((vni & 0xffu) << 8);
    s = vnet_csum_partial(inner, inner_len, vnet__csum_fold32(s));
    uint16_t c = vnet_csum_fold(s);
    return c ? c : 0xffff; /* RFC 768: a computed 0 is sent as all ones */
}

int vnet_encap_push(const struct vnet_encap_tmpl *t, uint8_t *buf, size_t headroom,
                    size_t inner_len, uint32_t vni, uint16_t sport, uint16_t ip_id)
{
    size_t hl = t->len;
    if (headroom < hl)
        return VNET_ENOSPC;
    if (vni > VNET_VNI_MAX || inner_len < VNET_INNER_MIN || headroom > (size_t)INT32_MAX)
        return VNET_EINVAL;
    const uint8_t *inner = buf + headroom;
    uint8_t *f = buf + headroom - hl;
    size_t udp_len = inner_len + VNET_UDP_HLEN + VNET_VXLAN_HLEN;
    uint8_t *udp;

    if (t->family == VNET_AF_INET) {
        size_t ip_len = udp_len + VNET_IP4_HLEN;
        if (ip_len > 0xffff)
            return VNET_EMSGSIZE;
        memcpy(f, t->hdr, VNET_ENCAP_OVERHEAD_V4);
        put16(f + OFF4_TOTLEN, (uint16_t)ip_len);
        put16(f + OFF4_ID, ip_id);
        put16(f + OFF4_CSUM, vnet_csum_fold(t->ip_sum + (uint32_t)ip_len + ip_id));
        udp = f + OFF4_UDP;
    } else {
        if (udp_len > 0xffff)
            return VNET_EMSGSIZE;
        memcpy(f, t->hdr, VNET_ENCAP_OVERHEAD_V6);
        put16(f + OFF6_PLEN, (uint16_t)udp_len);
        udp = f + OFF6_UDP;
    }
    put16(udp, sport);
    put16(udp + 4, (uint16_t)udp_len);
    put32(udp + 12, vni << 8);
    if (t->udp_csum)
        put16(udp + 6, udp_csum(t, inner, inner_len, (uint16_t)udp_len, sport, vni));
    return (int)(headroom - hl);
}

/* ---- Parse ---- */

int vnet_encap_parse(const uint8_t *frame, size_t len, uint16_t dport, unsigned flags,
                     struct vnet_drop_stats *stats, struct vnet_encap_info *info,
                     enum vnet_drop_reason *reason)
{
    const uint8_t *ip, *udp;
    size_t avail, plen;
    uint32_t psum;
    bool v6;

    if (len < VNET_ETH_HLEN)
        return drop(stats, reason, VNET_DROP_TRUNC_ETH);
    uint16_t etype = get16(frame + 12);
    ip = frame + VNET_ETH_HLEN;
    avail = len - VNET_ETH_HLEN;

    if (etype == ETH_P_IPV4) {
        v6 = false;
        if (avail < VNET_IP4_HLEN)
            return drop(stats, reason, VNET_DROP_TRUNC_IP);
        if ((ip[0] >> 4) != 4)
            return drop(stats, reason, VNET_DROP_BAD_IP_VERSION);
        size_t hlen = (size_t)(ip[0] & 0xf) * 4;
        if (hlen < VNET_IP4_HLEN)
            return drop(stats, reason, VNET_DROP_BAD_IHL);
        if (avail < hlen)
            return drop(stats, reason, VNET_DROP_TRUNC_IP);
        size_t tot = get16(ip + 2);
        if (tot < hlen)
            return drop(stats, reason, VNET_DROP_BAD_IP_LEN);
        if (tot > avail)
            return drop(stats, reason, VNET_DROP_TRUNC_IP);
        if (!(flags & VNET_DECAP_F_NO_IP_CSUM) && vnet_csum(ip, hlen) != 0)
            return drop(stats, reason, VNET_DROP_BAD_IP_CSUM);
        if (get16(ip + 6) & 0x3fff)
            return drop(stats, reason, VNET_DROP_IP_FRAGMENT);
        if (ip[9] != IPPROTO_UDP_)
            return drop(stats, reason, VNET_DROP_NOT_UDP);
        udp = ip + hlen;
        plen = tot - hlen; /* anything after tot is Ethernet padding */
        psum = vnet_csum_pseudo4(ip + 12, ip + 16, IPPROTO_UDP_, 0);
    } else if (etype == ETH_P_IPV6) {
        v6 = true;
        if (avail < VNET_IP6_HLEN)
            return drop(stats, reason, VNET_DROP_TRUNC_IP);
        if ((ip[0] >> 4) != 6)
            return drop(stats, reason, VNET_DROP_BAD_IP_VERSION);
        plen = get16(ip + 4);
        if (plen > avail - VNET_IP6_HLEN)
            return drop(stats, reason, VNET_DROP_TRUNC_IP);
        if (ip[6] != IPPROTO_UDP_)
            return drop(stats, reason, VNET_DROP_NOT_UDP);
        udp = ip + VNET_IP6_HLEN;
        psum = vnet_csum_pseudo6(ip + 8, ip + 24, IPPROTO_UDP_, 0);
    } else {
        return drop(stats, reason, VNET_DROP_BAD_ETHERTYPE);
    }

    if (plen < VNET_UDP_HLEN)
        return drop(stats, reason, VNET_DROP_TRUNC_UDP);
    size_t ulen = get16(udp + 4);
    if (ulen < VNET_UDP_HLEN || ulen > plen)
        return drop(stats, reason, VNET_DROP_BAD_UDP_LEN);
    uint16_t udport = get16(udp + 2);
    if (dport && udport != dport)
        return drop(stats, reason, VNET_DROP_WRONG_PORT);
    uint16_t ucsum = get16(udp + 6);
    if (ucsum == 0) {
        if (v6 && !(flags & VNET_DECAP_F_ZERO_CSUM6))
            return drop(stats, reason, VNET_DROP_ZERO_UDP_CSUM6);
    } else if (!(flags & VNET_DECAP_F_NO_UDP_CSUM)) {
        /* The pseudo-header length is the UDP length (RFC 768 / RFC 8200 8.1). */
        uint32_t s = vnet_csum_partial(udp, ulen, vnet__csum_fold32(psum + (uint32_t)ulen));
        if (vnet_csum_fold(s) != 0)
            return drop(stats, reason, VNET_DROP_BAD_UDP_CSUM);
    }

    const uint8_t *vx = udp + VNET_UDP_HLEN;
    uint32_t vni;
    int rc = vnet_vxlan_decode(vx, ulen - VNET_UDP_HLEN, stats, &vni, reason);
    if (rc)
        return rc;

    if (info) {
        memcpy(info->dst_mac.b, frame, 6);
        memcpy(info->src_mac.b, frame + 6, 6);
        memset(&info->src.ip, 0, sizeof(info->src.ip));
        memset(&info->dst.ip, 0, sizeof(info->dst.ip));
        if (v6) {
            uint32_t w = get32(ip);
            info->src.ip.family = info->dst.ip.family = VNET_AF_INET6;
            memcpy(info->src.ip.addr, ip + 8, 16);
            memcpy(info->dst.ip.addr, ip + 24, 16);
            info->tos = (uint8_t)(w >> 20);
            info->flowlabel = w & 0xfffffu;
            info->ttl = ip[7];
            info->df = false;
            info->ip_id = 0;
        } else {
            info->src.ip.family = info->dst.ip.family = VNET_AF_INET;
            memcpy(info->src.ip.addr, ip + 12, 4);
            memcpy(info->dst.ip.addr, ip + 16, 4);
            info->tos = ip[1];
            info->flowlabel = 0;
            info->ttl = ip[8];
            info->df = (ip[6] & 0x40) != 0;
            info->ip_id = get16(ip + 4);
        }
        info->src.port = get16(udp);
        info->dst.port = udport;
        info->udp_csum = ucsum;
        info->vni = vni;
        info->vxlan_flags = vx[0];
        info->inner_off = (size_t)(vx + VNET_VXLAN_HLEN - frame);
        info->inner_len = ulen - VNET_UDP_HLEN - VNET_VXLAN_HLEN;
    }
    return 0;
}
