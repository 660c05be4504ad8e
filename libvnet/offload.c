/* Segmentation and coalescing offloads in user space (see include/vnet/offload.h).
 *
 * Why here and not in the kernel: a UDP socket with UDP_SEGMENT/UDP_GRO moves 64 KB per system
 * call, but the kernel only splits the UDP payload at a fixed stride; it knows nothing about the
 * TCP segments inside the VXLAN payload. So the TCP work the NIC would do (TSO: cut the payload,
 * fix every header, checksum every segment) happens here, laid out exactly at the stride the
 * kernel will cut at, and the reverse (GRO) turns the received stride batch back into one big
 * TCP frame the TAP can swallow in one write.
 *
 * Cost model: segmenting must touch every payload byte once anyway (it is copied into the
 * output), so the TCP/UDP checksum is accumulated by the copy loop itself (vnet_csum_copy) and
 * the headers of each segment cost a fixed-size copy plus a few stores and a 20..60-byte sum.
 * Coalescing copies every payload byte once, with a checksum only when asked to verify; the
 * first segment of a run is held by pointer and only copied once a second one joins it, so
 * frames that do not merge leave without any copy.
 *
 * vnet_csum_copy and vnet_csum_complete live in csum.c, with libvnet's other checksums.
 */
#include "bytes_int.h"
#include "csum_int.h"
#include "vnet/offload.h"
#include "vnet/encap.h"
#include "vnet/error.h"

#include <string.h>

#define ETH_P_IPV4   0x0800
#define ETH_P_IPV6   0x86dd
#define ETH_P_8021Q  0x8100
#define ETH_P_8021AD 0x88a8
#define PROTO_TCP    6
#define PROTO_UDP    17

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_CWR 0x80

#define GSO_PREFIX_MAX 4096

/* ---- Header parsing ---- */

struct hdrs {
    uint32_t l3off; /* IP header */
    uint32_t l4off; /* TCP/UDP header */
    uint32_t hlen;  /* all headers: payload offset */
    uint32_t end;   /* l3off + IP length: end of the packet (padding excluded) */
    uint8_t v6;
    uint8_t proto;
};

/* Offset of the EtherType after up to two VLAN tags, or 0 when the frame is too short. */
static inline uint32_t l2_len(const uint8_t *f, size_t len, uint16_t *ethertype)
{
    uint32_t off = 12;
    if (len < VNET_ETH_HLEN)
        return 0;
    uint16_t et = get16(f + 12);
    for (int i = 0; i < 2 && (et == ETH_P_8021Q || et == ETH_P_8021AD); i++) {
        if (len < off + 8)
            return 0;
        off += 4;
        et = get16(f + off);
    }
    *ethertype = et;
    return off + 2;
}

static inline bool ipv6_ext_header(uint8_t nh)
{
    switch (nh) {
    case 0:   /* hop-by-hop */
    case 43:  /* routing */
    case 44:  /* fragment */
    case 50:  /* ESP */
    case 51:  /* AH */
    case 60:  /* destination options */
    case 135: /* mobility */
    case 139: /* HIP */
    case 140: /* shim6 */
    case 253:
    case 254: /* experiments */
        return true;
    default:
        return false;
    }
}

/* Parse the L2/L3/L4 headers of a GSO frame whose L4 protocol must be @proto on IP version
 * @v6. Checks every length against the frame before reading. */
static int parse_gso(const uint8_t *f, size_t len, bool v6, uint8_t proto, struct hdrs *h)
{
    uint16_t et = 0;
    uint32_t l3 = l2_len(f, len, &et);
    if (!l3)
        return VNET_ETRUNC;
    const uint8_t *ip = f + l3;
    if (et == ETH_P_IPV4 && !v6) {
        if (len < l3 + VNET_IP4_HLEN)
            return VNET_ETRUNC;
        uint32_t ihl = (ip[0] & 0xfu) * 4u;
        if (ip[0] >> 4 != 4 || ihl < VNET_IP4_HLEN)
            return VNET_EMALFORM;
        uint32_t tot = get16(ip + 2);
        if (len < l3 + ihl || len < l3 + tot)
            return VNET_ETRUNC;
        if (tot < ihl || (get16(ip + 6) & 0x3fff))
            return VNET_EMALFORM;
        if (ip[9] != proto)
            return VNET_EPROTO;
        h->l4off = l3 + ihl;
        h->end = l3 + tot;
    } else if (et == ETH_P_IPV6 && v6) {
        if (len < l3 + VNET_IP6_HLEN)
            return VNET_ETRUNC;
        if (ip[0] >> 4 != 6)
            return VNET_EMALFORM;
        uint32_t plen = get16(ip + 4);
        if (plen == 0)
            return VNET_ENOTSUP; /* jumbogram (or nothing to segment) */
        if (len < l3 + VNET_IP6_HLEN + plen)
            return VNET_ETRUNC;
        if (ip[6] != proto)
            return ipv6_ext_header(ip[6]) ? VNET_ENOTSUP : VNET_EPROTO;
        h->l4off = l3 + VNET_IP6_HLEN;
        h->end = l3 + VNET_IP6_HLEN + plen;
    } else {
        return VNET_EPROTO;
    }
    uint32_t l4len = h->end - h->l4off;
    if (proto == PROTO_TCP) {
        if (l4len < 20)
            return VNET_ETRUNC;
        uint32_t doff = (f[h->l4off + 12] >> 4) * 4u;
        if (doff < 20)
            return VNET_EMALFORM;
        if (l4len < doff)
            return VNET_ETRUNC;
        h->hlen = h->l4off + doff;
    } else {
        if (l4len < VNET_UDP_HLEN)
            return VNET_ETRUNC;
        h->hlen = h->l4off + VNET_UDP_HLEN;
    }
    h->l3off = l3;
    h->v6 = v6;
    h->proto = proto;
    return 0;
}

/* ---- Segmentation ---- */

struct gso_plan {
    struct hdrs h;
    uint32_t nsegs, stride, mss, last;
    uint64_t total;
    bool split; /* a GSO frame (else: one copy) */
};

static int gso_plan(const struct vnet_pkt *pkt, size_t prefix, struct gso_plan *p)
{
    if (!pkt || !pkt->buf || (uint64_t)pkt->off + pkt->len > pkt->cap || prefix > GSO_PREFIX_MAX)
        return VNET_EINVAL;
    const uint8_t *f = vnet_pkt_data(pkt);
    uint32_t len = pkt->len;
    bool v6;
    uint8_t proto;
    switch (pkt->gso_type & ~VNET_GSO_F_ECN) {
    case VNET_GSO_NONE:
        if ((pkt->csum_flags & VNET_CSUM_PARTIAL) &&
            (uint32_t)pkt->csum_start + pkt->csum_offset + 2 > len)
            return VNET_EINVAL;
        p->split = false;
        p->nsegs = 1;
        p->total = prefix + len;
        p->stride = (uint32_t)p->total;
        p->mss = 0;
        p->h.hlen = 0;
        return 0;
    case VNET_GSO_TCPV4:
        v6 = false;
        proto = PROTO_TCP;
        break;
    case VNET_GSO_TCPV6:
        v6 = true;
        proto = PROTO_TCP;
        break;
    case VNET_GSO_UDP_L4: {
        uint16_t et = 0;
        proto = PROTO_UDP;
        v6 = l2_len(f, len, &et) && et == ETH_P_IPV6;
        break;
    }
    default:
        return VNET_ENOTSUP;
    }
    if (pkt->gso_size == 0)
        return VNET_EINVAL;
    int rc = parse_gso(f, len, v6, proto, &p->h);
    if (rc)
        return rc;
    if ((pkt->csum_flags & VNET_CSUM_PARTIAL) &&
        (pkt->csum_start != p->h.l4off || pkt->csum_offset != (proto == PROTO_TCP ? 16 : 6)))
        return VNET_EINVAL;
    uint32_t mss = pkt->gso_size;
    uint32_t payload = p->h.end - p->h.hlen;
    if (mss > payload)
        mss = payload; /* one segment (maybe without payload): the stride is its length */
    /* IP length of a full segment: IPv4 counts its header, IPv6 does not. */
    if (p->h.hlen - (v6 ? p->h.l4off : p->h.l3off) + mss > 0xffff)
        return VNET_EMSGSIZE;
    p->split = true;
    p->mss = mss;
    p->nsegs = payload ? (payload + mss - 1) / mss : 1;
    p->last = payload - (p->nsegs - 1) * mss;
    p->stride = (uint32_t)prefix + p->h.hlen + mss;
    p->total = (uint64_t)(p->nsegs - 1) * p->stride + prefix + p->h.hlen + p->last;
    return 0;
}

long vnet_gso_out_len(const struct vnet_pkt *pkt, size_t prefix)
{
    struct gso_plan p;
    int rc = gso_plan(pkt, prefix, &p);
    return rc ? rc : (long)p.total;
}

int vnet_gso_segment(const struct vnet_pkt *pkt, size_t prefix, unsigned max_segs, uint8_t *out,
                     size_t out_cap, struct vnet_gso_info *info)
{
    struct gso_plan p;
    int rc = gso_plan(pkt, prefix, &p);
    if (rc)
        return rc;
    if (!out)
        return VNET_EINVAL;
    if (max_segs && p.nsegs > max_segs)
        return VNET_EMSGSIZE;
    if (p.total > out_cap)
        return VNET_ENOSPC;
    const uint8_t *f = vnet_pkt_data(pkt);
    if (info)
        *info = (struct vnet_gso_info){.nsegs = p.nsegs,
                                       .stride = p.stride,
                                       .total = (uint32_t)p.total,
                                       .hdr_len = (uint16_t)p.h.hlen,
                                       .gso_size = (uint16_t)p.mss};

    if (!p.split) {
        uint8_t *d = out + prefix;
        uint32_t len = pkt->len;
        if (!(pkt->csum_flags & VNET_CSUM_PARTIAL)) {
            memcpy(d, f, len);
            return 1;
        }
        uint32_t cs = pkt->csum_start;
        memcpy(d, f, cs);
        uint32_t sum = vnet_csum_copy(d + cs, f + cs, len - cs, 0);
        put16(d + cs + pkt->csum_offset, vnet__csum_l4(sum));
        return 1;
    }

    const struct hdrs *h = &p.h;
    const uint8_t *ip0 = f + h->l3off;
    uint32_t iphl = h->l4off - h->l3off;
    uint32_t l4hl = h->hlen - h->l4off;
    bool tcp = h->proto == PROTO_TCP;
    uint32_t pseudo = h->v6 ? vnet_csum_pseudo6(ip0 + 8, ip0 + 24, h->proto, 0)
                            : vnet_csum_pseudo4(ip0 + 12, ip0 + 16, h->proto, 0);
    uint16_t id0 = h->v6 ? 0 : get16(ip0 + 4);
    uint32_t seq0 = tcp ? get32(f + h->l4off + 4) : 0;
    uint8_t flags0 = tcp ? f[h->l4off + 13] : 0;
    const uint8_t *src = f + h->hlen;

    for (uint32_t k = 0; k < p.nsegs; k++) {
        uint8_t *d = out + (size_t)k * p.stride + prefix;
        uint32_t pay = k + 1 < p.nsegs ? p.mss : p.last;
        uint32_t l4len = l4hl + pay;
        memcpy(d, f, h->hlen);
        uint8_t *ip = d + h->l3off;
        if (h->v6) {
            put16(ip + 4, (uint16_t)l4len);
        } else {
            put16(ip + 2, (uint16_t)(iphl + l4len));
            put16(ip + 4, (uint16_t)(id0 + k));
            put16(ip + 10, 0);
            put16(ip + 10, vnet_csum(ip, iphl));
        }
        uint8_t *l4 = d + h->l4off;
        uint8_t *csum_field;
        if (tcp) {
            uint8_t fl = flags0;
            if (k > 0)
                fl &= (uint8_t)~TCP_CWR;
            if (k + 1 < p.nsegs)
                fl &= (uint8_t) ~(TCP_FIN | TCP_PSH);
            put32(l4 + 4, seq0 + k * p.mss);
            l4[13] = fl;
            csum_field = l4 + 16;
        } else {
            put16(l4 + 4, (uint16_t)l4len);
            csum_field = l4 + 6;
        }
        csum_field[0] = csum_field[1] = 0;
        uint32_t sum = vnet_csum_partial(l4, l4hl, pseudo + l4len);
        sum = vnet_csum_copy(d + h->hlen, src, pay, sum);
        put16(csum_field, tcp ? vnet_csum_fold(sum) : vnet__csum_l4(sum));
        src += pay;
    }
    return (int)p.nsegs;
}

/* ---- Coalescing ---- */

#define GRO_EMPTY   0
#define GRO_HELD    1
#define GRO_MERGING 2

/* One received segment that may be merged. */
struct gro_seg {
    struct hdrs h;
    uint32_t seq;
    uint32_t plen;
    uint8_t flags;
};

/* Is [f, f + len) a TCP segment with payload that GRO may merge at all? */
static bool gro_parse(const uint8_t *f, size_t len, struct gro_seg *s)
{
    uint16_t et = 0;
    uint32_t l3 = l2_len(f, len, &et);
    if (!l3)
        return false;
    const uint8_t *ip = f + l3;
    if (et == ETH_P_IPV4) {
        if (len < l3 + VNET_IP4_HLEN || ip[0] != 0x45 || ip[9] != PROTO_TCP ||
            (get16(ip + 6) & 0x3fff))
            return false;
        uint32_t tot = get16(ip + 2);
        if (tot < VNET_IP4_HLEN + 20 || len < l3 + tot || vnet_csum(ip, VNET_IP4_HLEN) != 0)
            return false;
        s->h.l4off = l3 + VNET_IP4_HLEN;
        s->h.end = l3 + tot;
        s->h.v6 = 0;
    } else if (et == ETH_P_IPV6) {
        if (len < l3 + VNET_IP6_HLEN || ip[0] >> 4 != 6 || ip[6] != PROTO_TCP)
            return false;
        uint32_t plen = get16(ip + 4);
        if (plen < 20 || len < l3 + VNET_IP6_HLEN + plen)
            return false;
        s->h.l4off = l3 + VNET_IP6_HLEN;
        s->h.end = l3 + VNET_IP6_HLEN + plen;
        s->h.v6 = 1;
    } else {
        return false;
    }
    const uint8_t *th = f + s->h.l4off;
    uint32_t doff = (th[12] >> 4) * 4u;
    if (doff < 20 || s->h.end - s->h.l4off <= doff)
        return false; /* bad offset, or no payload (pure ACK) */
    s->flags = th[13];
    if ((s->flags & (TCP_ACK | TCP_SYN | TCP_FIN | TCP_RST | TCP_URG | TCP_CWR)) != TCP_ACK)
        return false;
    s->h.l3off = l3;
    s->h.hlen = s->h.l4off + doff;
    s->h.proto = PROTO_TCP;
    s->seq = get32(th + 4);
    s->plen = s->h.end - s->h.hlen;
    return true;
}

/* May @f (parsed as @s) be appended to the flow in @g? */
static bool gro_match(const struct vnet_gro *g, const uint8_t *f, const struct gro_seg *s)
{
    const struct vnet_gro_flow_ *fl = &g->f_;
    const uint8_t *r = g->state_ == GRO_HELD ? fl->frame : g->buf_;
    if (s->h.l3off != fl->l3off || s->h.hlen != fl->hdr_len || s->h.v6 != fl->v6)
        return false;
    if (s->seq != fl->next_seq || s->plen > fl->mss || fl->segs >= VNET_GSO_MAX_SEGS)
        return false;
    if (fl->len + s->plen > g->cap_ || fl->len + s->plen - fl->l3off > 0xffff)
        return false;
    if (memcmp(f, r, fl->l3off) != 0)
        return false;
    const uint8_t *a = f + fl->l3off, *b = r + fl->l3off;
    if (fl->v6) {
        if (memcmp(a, b, 4) != 0 || a[7] != b[7] || memcmp(a + 8, b + 8, 32) != 0)
            return false;
    } else {
        if (a[1] != b[1] || a[6] != b[6] || a[7] != b[7] || a[8] != b[8] ||
            memcmp(a + 12, b + 12, 8) != 0)
            return false;
        if (!fl->df && get16(a + 4) != (uint16_t)(fl->ip_id + fl->segs))
            return false;
    }
    a = f + fl->l4off;
    b = r + fl->l4off;
    /* ports, ack, data offset, flags but PSH, window, options */
    if (memcmp(a, b, 4) != 0 || memcmp(a + 8, b + 8, 5) != 0 ||
        ((a[13] ^ b[13]) & (uint8_t)~TCP_PSH) || a[14] != b[14] || a[15] != b[15] ||
        memcmp(a + 20, b + 20, (size_t)fl->hdr_len - fl->l4off - 20) != 0)
        return false;
    return true;
}

/* Does the TCP checksum of @f (headers as @h, payload summed to @psum) verify? */
static bool gro_csum_ok(const struct vnet_gro *g, const uint8_t *f, const struct hdrs *h,
                        uint32_t psum)
{
    uint32_t sum = vnet_csum_partial(f + h->l4off, h->hlen - h->l4off, psum);
    sum = vnet__csum_fold64((uint64_t)sum + g->f_.pseudo + (h->end - h->l4off));
    return vnet_csum_fold(sum) == 0;
}

static void out_pass(struct vnet_pkt *o, uint8_t *frame, size_t len)
{
    *o = (struct vnet_pkt){.buf = frame, .cap = (uint32_t)len, .len = (uint32_t)len};
}

static void gro_hold(struct vnet_gro *g, uint8_t *frame, size_t len, const struct gro_seg *s)
{
    struct vnet_gro_flow_ *fl = &g->f_;
    const uint8_t *ip = frame + s->h.l3off;
    fl->frame = frame;
    fl->frame_len = (uint32_t)len;
    fl->l3off = (uint16_t)s->h.l3off;
    fl->l4off = (uint16_t)s->h.l4off;
    fl->hdr_len = (uint16_t)s->h.hlen;
    fl->mss = (uint16_t)s->plen;
    fl->v6 = s->h.v6;
    fl->df = s->h.v6 ? 1 : (get16(ip + 6) & 0x4000) != 0;
    fl->ip_id = s->h.v6 ? 0 : get16(ip + 4);
    fl->next_seq = s->seq + s->plen;
    fl->len = s->h.hlen + s->plen;
    fl->segs = 1;
    fl->pseudo = s->h.v6 ? vnet_csum_pseudo6(ip + 8, ip + 24, PROTO_TCP, 0)
                         : vnet_csum_pseudo4(ip + 12, ip + 16, PROTO_TCP, 0);
    g->state_ = GRO_HELD;
}

/* Copy the held segment into the buffer. False when it fails verification. */
static bool gro_start(struct vnet_gro *g)
{
    struct vnet_gro_flow_ *fl = &g->f_;
    if (!(g->flags_ & VNET_GRO_F_VERIFY_CSUM)) {
        memcpy(g->buf_, fl->frame, fl->len);
    } else {
        struct hdrs h = {.l4off = fl->l4off, .hlen = fl->hdr_len, .end = fl->len};
        memcpy(g->buf_, fl->frame, fl->hdr_len);
        uint32_t psum = vnet_csum_copy(g->buf_ + fl->hdr_len, fl->frame + fl->hdr_len, fl->mss, 0);
        if (!gro_csum_ok(g, fl->frame, &h, psum))
            return false;
    }
    g->state_ = GRO_MERGING;
    return true;
}

/* Append the payload of @f. False when it fails verification (nothing appended). */
static bool gro_append(struct vnet_gro *g, const uint8_t *f, const struct gro_seg *s)
{
    struct vnet_gro_flow_ *fl = &g->f_;
    uint8_t *d = g->buf_ + fl->len;
    if (!(g->flags_ & VNET_GRO_F_VERIFY_CSUM)) {
        memcpy(d, f + s->h.hlen, s->plen);
    } else {
        uint32_t psum = vnet_csum_copy(d, f + s->h.hlen, s->plen, 0);
        if (!gro_csum_ok(g, f, &s->h, psum))
            return false;
    }
    fl->len += s->plen;
    fl->segs++;
    fl->next_seq += s->plen;
    if (s->flags & TCP_PSH)
        g->buf_[fl->l4off + 13] |= TCP_PSH;
    return true;
}

/* End the current run; write what to emit to *o. Returns 0 or 1 (frames written). */
static int gro_finish(struct vnet_gro *g, struct vnet_pkt *o)
{
    struct vnet_gro_flow_ *fl = &g->f_;
    int state = g->state_;
    g->state_ = GRO_EMPTY;
    if (state == GRO_EMPTY)
        return 0;
    if (state == GRO_HELD || fl->segs < 2) {
        out_pass(o, fl->frame, fl->frame_len);
        g->passed_++;
        return 1;
    }
    uint8_t *ip = g->buf_ + fl->l3off;
    uint32_t iplen = fl->len - fl->l3off;
    uint32_t l4len = fl->len - fl->l4off;
    if (fl->v6) {
        put16(ip + 4, (uint16_t)(iplen - VNET_IP6_HLEN));
    } else {
        put16(ip + 2, (uint16_t)iplen);
        put16(ip + 10, 0);
        put16(ip + 10, vnet_csum(ip, VNET_IP4_HLEN));
    }
    /* What the kernel leaves in a CHECKSUM_PARTIAL TCP header: the folded pseudo-header sum,
     * not complemented, so that summing from csum_start completes it. */
    put16(g->buf_ + fl->l4off + 16, (uint16_t)~vnet_csum_fold(fl->pseudo + l4len));
    *o = (struct vnet_pkt){.buf = g->buf_,
                           .cap = g->cap_,
                           .len = fl->len,
                           .gso_type = fl->v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4,
                           .csum_flags = VNET_CSUM_PARTIAL,
                           .gso_size = fl->mss,
                           .hdr_len = fl->hdr_len,
                           .csum_start = fl->l4off,
                           .csum_offset = 16};
    g->merged_ += fl->segs;
    return 1;
}

int vnet_gro_init(struct vnet_gro *g, uint8_t *buf, size_t cap, unsigned flags)
{
    if (!g || !buf || cap < 128)
        return VNET_EINVAL;
    memset(g, 0, sizeof(*g));
    g->buf_ = buf;
    g->cap_ = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
    g->flags_ = flags;
    return 0;
}

int vnet_gro_feed(struct vnet_gro *g, uint8_t *frame, size_t len, struct vnet_pkt out[2])
{
    if (!g || !frame || !out)
        return VNET_EINVAL;
    struct gro_seg s;
    int n = 0;
    if (len > UINT32_MAX || !gro_parse(frame, len, &s)) {
        n += gro_finish(g, &out[n]);
        out_pass(&out[n++], frame, len);
        g->passed_++;
        return n;
    }
    if (g->state_ != GRO_EMPTY && gro_match(g, frame, &s)) {
        if (g->state_ == GRO_HELD && !gro_start(g)) {
            /* the held segment is corrupt: let it go alone, then start over with this one */
            g->bad_csum_++;
            n += gro_finish(g, &out[n]);
        } else if (!gro_append(g, frame, &s)) {
            g->bad_csum_++;
            n += gro_finish(g, &out[n]);
            out_pass(&out[n++], frame, len);
            g->passed_++;
            return n;
        } else {
            if (s.plen < g->f_.mss || (s.flags & TCP_PSH))
                n += gro_finish(g, &out[n]);
            return n;
        }
    } else {
        n += gro_finish(g, &out[n]);
    }
    if (s.flags & TCP_PSH) {
        out_pass(&out[n++], frame, len);
        g->passed_++;
        return n;
    }
    gro_hold(g, frame, len, &s);
    return n;
}

int vnet_gro_flush(struct vnet_gro *g, struct vnet_pkt *out)
{
    if (!g || !out)
        return VNET_EINVAL;
    return gro_finish(g, out);
}

void vnet_gro_stats(const struct vnet_gro *g, uint64_t *merged, uint64_t *passed,
                    uint64_t *bad_csum)
{
    if (merged)
        *merged = g ? g->merged_ : 0;
    if (passed)
        *passed = g ? g->passed_ : 0;
    if (bad_csum)
        *bad_csum = g ? g->bad_csum_ : 0;
}
