/* Unit tests for the user-space offloads (vnet/offload.h).
 *
 * Frames are built here byte by byte (Ethernet, IPv4 with or without options or IPv6, TCP with
 * a timestamp option or UDP, a position-dependent payload pattern) and every field and checksum
 * of every segment is checked against values computed independently: checksums with a textbook
 * RFC 1071 loop over a pseudo-header laid out in bytes, not with the library's helpers. The GRO
 * tests feed segments and compare each output with what Linux' tcp_gro_receive would do. Input
 * that must be rejected is passed in heap buffers of exactly its length, so ASan sees any read
 * past the end.
 */
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/offload.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ---- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Reference checksum: the textbook RFC 1071 loop over big-endian words. */
static uint32_t ref_sum(const uint8_t *p, size_t len, uint32_t s)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        s += rd16(p + i);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return s;
}

static uint8_t pat(uint32_t i)
{
    return (uint8_t)(i * 31u + (i >> 8) * 7u + (i >> 16) + 1u);
}

static uint8_t *dup_exact(const uint8_t *p, size_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(d);
    memcpy(d, p, len);
    return d;
}

/* ---- Frame builder ---- */

enum { CS_PSEUDO, CS_FULL, CS_ZERO };

struct fb {
    bool v6, udp;
    int vlan;         /* 0 or 1 tag */
    int ip_opt_words; /* IPv4 options, 4-byte words */
    bool ts;          /* TCP timestamp option (12 bytes: NOP NOP TS) */
    uint8_t flags;
    uint32_t seq, ack, tsval;
    uint16_t id, ipfl, sport, dport, win;
    uint8_t ttl, tos;
    uint32_t plen, pat_off;
    int csum;
};

static struct fb fb_default(bool v6)
{
    return (struct fb){.v6 = v6,
                       .ts = true,
                       .flags = 0x18, /* ACK|PSH */
                       .seq = 0xfffff000u,
                       .ack = 0x01020304u,
                       .tsval = 777,
                       .id = 0xfff0,
                       .ipfl = 0x4000,
                       .sport = 40000,
                       .dport = 5201,
                       .win = 502,
                       .ttl = 64,
                       .tos = 0x10,
                       .plen = 1000,
                       .csum = CS_PSEUDO};
}

struct layout {
    size_t l3, l4, hlen, len;
};

static const uint8_t SRC6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t DST6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
static const uint8_t SRC4[4] = {10, 0, 0, 1};
static const uint8_t DST4[4] = {10, 0, 0, 2};

/* Independent pseudo-header sum, laid out in bytes (RFC 793 / RFC 8200 8.1). */
static uint32_t ref_pseudo(const uint8_t *ip, bool v6, uint8_t proto, uint32_t l4len)
{
    uint8_t ph[40] = {0};
    if (v6) {
        memcpy(ph, ip + 8, 32);
        wr32(ph + 32, l4len);
        ph[39] = proto;
        return ref_sum(ph, 40, 0);
    }
    memcpy(ph, ip + 12, 8);
    ph[9] = proto;
    wr16(ph + 10, (uint16_t)l4len);
    return ref_sum(ph, 12, 0);
}

static size_t build(uint8_t *b, const struct fb *p, struct layout *lo)
{
    size_t o = 0;
    const uint8_t dmac[6] = {2, 0, 0, 0, 0, 2}, smac[6] = {2, 0, 0, 0, 0, 1};
    memcpy(b, dmac, 6);
    memcpy(b + 6, smac, 6);
    o = 12;
    if (p->vlan) {
        wr16(b + o, 0x8100);
        wr16(b + o + 2, 42);
        o += 4;
    }
    wr16(b + o, p->v6 ? 0x86dd : 0x0800);
    o += 2;
    size_t l3 = o;
    uint8_t *ip = b + l3;
    size_t iphl = p->v6 ? 40 : 20 + 4u * (size_t)p->ip_opt_words;
    size_t l4hl = p->udp ? 8 : 20 + (p->ts ? 12 : 0);
    size_t l4len = l4hl + p->plen;
    uint8_t proto = p->udp ? 17 : 6;
    if (p->v6) {
        wr32(ip, 6u << 28 | (uint32_t)p->tos << 20 | 0x12345);
        wr16(ip + 4, (uint16_t)l4len);
        ip[6] = proto;
        ip[7] = p->ttl;
        memcpy(ip + 8, SRC6, 16);
        memcpy(ip + 24, DST6, 16);
    } else {
        ip[0] = (uint8_t)(0x40 | (iphl / 4));
        ip[1] = p->tos;
        wr16(ip + 2, (uint16_t)(iphl + l4len));
        wr16(ip + 4, p->id);
        wr16(ip + 6, p->ipfl);
        ip[8] = p->ttl;
        ip[9] = proto;
        wr16(ip + 10, 0);
        memcpy(ip + 12, SRC4, 4);
        memcpy(ip + 16, DST4, 4);
        for (int i = 0; i < p->ip_opt_words * 4; i++)
            ip[20 + i] = 1; /* NOP */
        wr16(ip + 10, (uint16_t)~ref_sum(ip, iphl, 0));
    }
    size_t l4 = l3 + iphl;
    uint8_t *th = b + l4;
    wr16(th, p->sport);
    wr16(th + 2, p->dport);
    if (p->udp) {
        wr16(th + 4, (uint16_t)l4len);
        wr16(th + 6, 0);
    } else {
        wr32(th + 4, p->seq);
        wr32(th + 8, p->ack);
        th[12] = (uint8_t)((l4hl / 4) << 4);
        th[13] = p->flags;
        wr16(th + 14, p->win);
        wr16(th + 16, 0);
        wr16(th + 18, 0);
        if (p->ts) {
            th[20] = 1;
            th[21] = 1;
            th[22] = 8;
            th[23] = 10;
            wr32(th + 24, p->tsval);
            wr32(th + 28, 0x0badf00d);
        }
    }
    size_t hlen = l4 + l4hl;
    for (uint32_t i = 0; i < p->plen; i++)
        b[hlen + i] = pat(p->pat_off + i);
    uint8_t *cf = th + (p->udp ? 6 : 16);
    uint32_t ps = ref_pseudo(ip, p->v6, proto, (uint32_t)l4len);
    if (p->csum == CS_PSEUDO) {
        wr16(cf, (uint16_t)ps);
    } else if (p->csum == CS_FULL) {
        uint16_t c = (uint16_t)~ref_sum(th, l4len, ps);
        wr16(cf, c ? c : 0xffff);
    }
    if (lo)
        *lo = (struct layout){l3, l4, hlen, hlen + p->plen};
    return hlen + p->plen;
}

static struct vnet_pkt mkpkt(uint8_t *f, size_t len, const struct fb *p, const struct layout *lo,
                             uint16_t gso_size)
{
    struct vnet_pkt k = {.buf = f, .cap = (uint32_t)len, .len = (uint32_t)len};
    k.gso_type = p->udp ? VNET_GSO_UDP_L4 : p->v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4;
    k.gso_size = gso_size;
    k.csum_flags = VNET_CSUM_PARTIAL;
    k.csum_start = (uint16_t)lo->l4;
    k.csum_offset = p->udp ? 6 : 16;
    k.hdr_len = (uint16_t)lo->hlen;
    return k;
}

/* Is the L4 checksum of the frame [f, f + len) right (independent computation)? */
static bool l4_csum_ok(const uint8_t *f, const struct layout *lo, bool v6, uint8_t proto)
{
    const uint8_t *ip = f + lo->l3;
    uint32_t l4len = (uint32_t)(lo->len - lo->l4);
    uint32_t s = ref_sum(f + lo->l4, l4len, ref_pseudo(ip, v6, proto, l4len));
    return s == 0xffff;
}

/* Check every segment of a segmented frame against the original [orig, orig + olen). */
static void check_segments(const uint8_t *orig, const struct fb *p, const struct layout *lo,
                           uint16_t mss, size_t prefix, const uint8_t *out, int n,
                           const struct vnet_gso_info *info)
{
    uint32_t payload = (uint32_t)(lo->len - lo->hlen);
    uint32_t eff = mss < payload ? mss : payload;
    uint32_t want_n = payload ? (payload + eff - 1) / eff : 1;
    ck_assert_int_eq(n, (int)want_n);
    ck_assert_uint_eq(info->nsegs, want_n);
    ck_assert_uint_eq(info->hdr_len, lo->hlen);
    ck_assert_uint_eq(info->stride, prefix + lo->hlen + eff);
    uint32_t last = payload - (want_n - 1) * eff;
    ck_assert_uint_eq(info->total, (want_n - 1) * info->stride + prefix + lo->hlen + last);
    uint8_t proto = p->udp ? 17 : 6;
    const uint8_t *oth = orig + lo->l4;
    for (uint32_t k = 0; k < want_n; k++) {
        const uint8_t *s = out + (size_t)k * info->stride + prefix;
        uint32_t pay = k + 1 < want_n ? eff : last;
        struct layout sl = {lo->l3, lo->l4, lo->hlen, lo->hlen + pay};
        /* L2 and unchanged IP fields */
        ck_assert_int_eq(memcmp(s, orig, lo->l3), 0);
        const uint8_t *ip = s + lo->l3, *oip = orig + lo->l3;
        size_t iphl = lo->l4 - lo->l3;
        if (p->v6) {
            ck_assert_int_eq(memcmp(ip, oip, 4), 0);
            ck_assert_uint_eq(rd16(ip + 4), lo->hlen - lo->l4 + pay);
            ck_assert_int_eq(memcmp(ip + 6, oip + 6, 34), 0);
        } else {
            ck_assert_uint_eq(ip[0], oip[0]);
            ck_assert_uint_eq(ip[1], oip[1]);
            ck_assert_uint_eq(rd16(ip + 2), iphl + (lo->hlen - lo->l4) + pay);
            ck_assert_uint_eq(rd16(ip + 4), (uint16_t)(rd16(oip + 4) + k));
            ck_assert_int_eq(memcmp(ip + 6, oip + 6, 4), 0);
            ck_assert_int_eq(memcmp(ip + 12, oip + 12, iphl - 12), 0);
            ck_assert_uint_eq(ref_sum(ip, iphl, 0), 0xffff);
        }
        const uint8_t *th = s + lo->l4;
        ck_assert_int_eq(memcmp(th, oth, 4), 0);
        if (p->udp) {
            ck_assert_uint_eq(rd16(th + 4), 8 + pay);
            ck_assert_uint_ne(rd16(th + 6), 0);
        } else {
            ck_assert_uint_eq(rd32(th + 4), rd32(oth + 4) + k * eff);
            ck_assert_int_eq(memcmp(th + 8, oth + 8, 5), 0);
            uint8_t fl = oth[13];
            if (k > 0)
                fl &= (uint8_t)~0x80;
            if (k + 1 < want_n)
                fl &= (uint8_t)~0x09;
            ck_assert_uint_eq(th[13], fl);
            ck_assert_int_eq(memcmp(th + 14, oth + 14, 2), 0);
            ck_assert_int_eq(memcmp(th + 18, oth + 18, lo->hlen - lo->l4 - 18), 0);
        }
        ck_assert(l4_csum_ok(s, &sl, p->v6, proto));
        ck_assert_int_eq(memcmp(s + lo->hlen, orig + lo->hlen + (size_t)k * eff, pay), 0);
    }
}

/* Build, segment and check; returns the number of segments. */
static int seg_and_check(const struct fb *p, uint16_t mss, size_t prefix)
{
    static uint8_t frame[70000];
    struct layout lo;
    size_t len = build(frame, p, &lo);
    uint8_t *f = dup_exact(frame, len);
    struct vnet_pkt k = mkpkt(f, len, p, &lo, mss);
    long need = vnet_gso_out_len(&k, prefix);
    ck_assert_int_gt(need, 0);
    uint8_t *out = malloc((size_t)need);
    ck_assert_ptr_nonnull(out);
    struct vnet_gso_info info;
    int n = vnet_gso_segment(&k, prefix, 0, out, (size_t)need, &info);
    ck_assert_int_gt(n, 0);
    ck_assert_uint_eq(info.total, (uint32_t)need);
    check_segments(f, p, &lo, mss, prefix, out, n, &info);
    /* the input is untouched */
    ck_assert_int_eq(memcmp(f, frame, len), 0);
    free(out);
    free(f);
    return n;
}

/* ---- Checksum completion ---- */

START_TEST(t_csum_copy)
{
    uint8_t src[300], dst[300];
    for (int i = 0; i < 300; i++)
        src[i] = pat((uint32_t)i * 13u);
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len + off <= 300; len += 1 + len / 8) {
            memset(dst, 0xee, sizeof(dst));
            uint32_t s = vnet_csum_copy(dst + off, src + off, len, 0x1234);
            ck_assert_uint_eq(s, ref_sum(src + off, len, 0x1234));
            ck_assert_uint_eq(s, vnet_csum_partial(src + off, len, 0x1234));
            ck_assert_int_eq(memcmp(dst + off, src + off, len), 0);
            if (off)
                ck_assert_uint_eq(dst[off - 1], 0xee);
            if (off + len < 300)
                ck_assert_uint_eq(dst[off + len], 0xee);
        }
    }
}
END_TEST

START_TEST(t_csum_complete)
{
    uint8_t buf[2000];
    for (int v6 = 0; v6 < 2; v6++) {
        for (int udp = 0; udp < 2; udp++) {
            struct fb p = fb_default(v6);
            p.udp = udp;
            p.plen = 777;
            struct layout lo;
            size_t len = build(buf + 10, &p, &lo);
            struct vnet_pkt k = {.buf = buf, .cap = sizeof(buf), .off = 10, .len = (uint32_t)len};
            k.csum_flags = VNET_CSUM_PARTIAL;
            k.csum_start = (uint16_t)lo.l4;
            k.csum_offset = udp ? 6 : 16;
            ck_assert_int_eq(vnet_csum_complete(&k), 0);
            ck_assert_uint_eq(k.csum_flags & VNET_CSUM_PARTIAL, 0);
            ck_assert(l4_csum_ok(buf + 10, &lo, v6, udp ? 17 : 6));
            /* nothing to do the second time */
            uint16_t c = rd16(buf + 10 + lo.l4 + k.csum_offset);
            ck_assert_int_eq(vnet_csum_complete(&k), 0);
            ck_assert_uint_eq(rd16(buf + 10 + lo.l4 + k.csum_offset), c);
        }
    }
    /* bounds */
    struct vnet_pkt k = {.buf = buf, .cap = 100, .len = 100, .csum_flags = VNET_CSUM_PARTIAL};
    k.csum_start = 90;
    k.csum_offset = 8; /* field at 98..99: fine */
    ck_assert_int_eq(vnet_csum_complete(&k), 0);
    k.csum_flags = VNET_CSUM_PARTIAL;
    k.csum_offset = 9; /* 99..100: one byte out */
    ck_assert_int_eq(vnet_csum_complete(&k), VNET_EINVAL);
    ck_assert_uint_eq(k.csum_flags, VNET_CSUM_PARTIAL);
    k.csum_start = 0xffff;
    k.csum_offset = 0xffff;
    ck_assert_int_eq(vnet_csum_complete(&k), VNET_EINVAL);
    k.csum_start = 0;
    k.csum_offset = 0;
    k.off = 1; /* off + len beyond cap */
    ck_assert_int_eq(vnet_csum_complete(&k), VNET_EINVAL);
    k.off = 0;
    k.gso_type = VNET_GSO_TCPV4;
    ck_assert_int_eq(vnet_csum_complete(&k), VNET_EINVAL);
    ck_assert_int_eq(vnet_csum_complete(NULL), VNET_EINVAL);
    /* a result of 0 goes out as 0xffff: 8 zero bytes whose field gets the sum */
    uint8_t z[8] = {0};
    struct vnet_pkt zk = {.buf = z, .cap = 8, .len = 8, .csum_flags = VNET_CSUM_PARTIAL};
    zk.csum_offset = 6;
    wr16(z + 6, 0xffff); /* pseudo sum that makes the total 0xffff: checksum 0 */
    ck_assert_int_eq(vnet_csum_complete(&zk), 0);
    ck_assert_uint_eq(rd16(z + 6), 0xffff);
}
END_TEST

/* ---- Segmentation ---- */

START_TEST(t_tso4_64k)
{
    struct fb p = fb_default(false);
    p.plen = 65535 - 20 - 32; /* largest IPv4 TSO frame */
    ck_assert_int_eq(seg_and_check(&p, 1448, 8), 46);
    ck_assert_int_eq(seg_and_check(&p, 1428, 8), 46);
    ck_assert_int_eq(seg_and_check(&p, 1448, 0), 46);
    p.plen = 65226 - 66; /* the largest seen from a tap */
    seg_and_check(&p, 1448, 8);
}
END_TEST

START_TEST(t_tso6_64k)
{
    struct fb p = fb_default(true);
    p.plen = 65535 - 32;
    ck_assert_int_eq(seg_and_check(&p, 1428, 8), 46);
    ck_assert_int_eq(seg_and_check(&p, 1448, 8), 46);
    p.vlan = 1;
    p.plen = 20000;
    seg_and_check(&p, 1428, 8);
}
END_TEST

START_TEST(t_tso_edges)
{
    for (int v6 = 0; v6 < 2; v6++) {
        struct fb p = fb_default(v6);
        p.plen = 1448; /* exactly one MSS */
        ck_assert_int_eq(seg_and_check(&p, 1448, 8), 1);
        p.plen = 1449; /* one byte more */
        ck_assert_int_eq(seg_and_check(&p, 1448, 8), 2);
        p.plen = 1447;
        ck_assert_int_eq(seg_and_check(&p, 1448, 8), 1);
        p.plen = 10000; /* MSS not dividing, odd MSS, odd tail */
        ck_assert_int_eq(seg_and_check(&p, 1427, 8), 8);
        ck_assert_int_eq(seg_and_check(&p, 3, 8), 3334);
        p.plen = 0; /* headers only */
        ck_assert_int_eq(seg_and_check(&p, 1448, 8), 1);
        p.ts = false;
        p.plen = 5000;
        ck_assert_int_eq(seg_and_check(&p, 1460, 16), 4);
    }
}
END_TEST

START_TEST(t_tso_flags)
{
    static const uint8_t flags[] = {0x10, 0x18, 0x19, 0x11, 0x98, 0xd9, 0x50};
    for (size_t i = 0; i < sizeof(flags); i++) {
        struct fb p = fb_default(i & 1);
        p.flags = flags[i];
        p.plen = 5000;
        ck_assert_int_eq(seg_and_check(&p, 1448, 8), 4); /* checks FIN/PSH/CWR placement */
        p.plen = 1000;
        ck_assert_int_eq(seg_and_check(&p, 1448, 8), 1); /* one segment keeps them all */
    }
    /* explicit: FIN|PSH|CWR on a 3-segment frame */
    struct fb p = fb_default(false);
    p.flags = 0x99;
    p.plen = 3000;
    static uint8_t frame[4000], out[8000];
    struct layout lo;
    size_t len = build(frame, &p, &lo);
    struct vnet_pkt k = mkpkt(frame, len, &p, &lo, 1448);
    k.gso_type |= VNET_GSO_F_ECN;
    struct vnet_gso_info info;
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), 3);
    ck_assert_uint_eq(out[8 + lo.l4 + 13], 0x90);
    ck_assert_uint_eq(out[info.stride + 8 + lo.l4 + 13], 0x10);
    ck_assert_uint_eq(out[2 * info.stride + 8 + lo.l4 + 13], 0x19);
}
END_TEST

START_TEST(t_tso_ip_options)
{
    for (int w = 1; w <= 10; w++) {
        struct fb p = fb_default(false);
        p.ip_opt_words = w;
        p.plen = 9000;
        seg_and_check(&p, 1448 - 4 * (uint16_t)w, 8);
    }
    struct fb p = fb_default(false);
    p.ipfl = 0; /* no DF: IDs still increment */
    p.plen = 4000;
    seg_and_check(&p, 1448, 8);
}
END_TEST

START_TEST(t_uso)
{
    for (int v6 = 0; v6 < 2; v6++) {
        struct fb p = fb_default(v6);
        p.udp = true;
        p.plen = 61600;
        ck_assert_int_eq(seg_and_check(&p, 1400, 8), 44);
        p.plen = 4001;
        ck_assert_int_eq(seg_and_check(&p, 1400, 8), 3);
        p.plen = 1400;
        ck_assert_int_eq(seg_and_check(&p, 1400, 8), 1);
    }
}
END_TEST

START_TEST(t_non_gso)
{
    static uint8_t frame[2000], out[2100];
    struct fb p = fb_default(false);
    p.plen = 1001;
    struct layout lo;
    size_t len = build(frame, &p, &lo);
    struct vnet_pkt k = mkpkt(frame, len, &p, &lo, 0);
    k.gso_type = VNET_GSO_NONE;
    struct vnet_gso_info info;
    memset(out, 0xaa, sizeof(out));
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 64, out, sizeof(out), &info), 1);
    ck_assert_uint_eq(info.nsegs, 1);
    ck_assert_uint_eq(info.total, 8 + len);
    ck_assert_uint_eq(info.stride, 8 + len);
    ck_assert_uint_eq(out[0], 0xaa); /* prefix untouched */
    ck_assert_uint_eq(out[8 + len], 0xaa);
    ck_assert(l4_csum_ok(out + 8, &lo, false, 6));
    ck_assert_int_eq(memcmp(out + 8, frame, lo.l4 + 16), 0);
    ck_assert_int_eq(memcmp(out + 8 + lo.l4 + 18, frame + lo.l4 + 18, len - lo.l4 - 18), 0);
    /* no partial checksum: a plain copy, even of a frame that is not IP */
    uint8_t arp[42];
    for (int i = 0; i < 42; i++)
        arp[i] = (uint8_t)i;
    struct vnet_pkt a = {.buf = arp, .cap = 42, .len = 42};
    ck_assert_int_eq(vnet_gso_segment(&a, 8, 0, out, 50, &info), 1);
    ck_assert_int_eq(memcmp(out + 8, arp, 42), 0);
    ck_assert_int_eq(vnet_gso_segment(&a, 8, 0, out, 49, &info), VNET_ENOSPC);
    ck_assert_int_eq(vnet_gso_out_len(&a, 8), 50);
    /* partial checksum out of bounds */
    a.csum_flags = VNET_CSUM_PARTIAL;
    a.csum_start = 40;
    a.csum_offset = 1;
    ck_assert_int_eq(vnet_gso_segment(&a, 8, 0, out, sizeof(out), &info), VNET_EINVAL);
}
END_TEST

START_TEST(t_gso_bad)
{
    static uint8_t frame[20000], out[40000];
    struct vnet_gso_info info;
    for (int kind = 0; kind < 4; kind++) {
        struct fb p = fb_default(kind & 1);
        p.udp = kind >= 2;
        p.plen = 3000;
        struct layout lo;
        size_t len = build(frame, &p, &lo);
        struct vnet_pkt k0 = mkpkt(frame, len, &p, &lo, 1000);
        /* every truncation, in an exact-size buffer: an error, never a read past the end */
        for (size_t l = 0; l < len; l++) {
            uint8_t *f = dup_exact(frame, l);
            struct vnet_pkt k = k0;
            k.buf = f;
            k.cap = k.len = (uint32_t)l;
            int rc = vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info);
            ck_assert_msg(rc == VNET_ETRUNC || rc == VNET_EINVAL, "len %zu rc %d", l, rc);
            free(f);
        }
        /* trailing padding is ignored */
        uint8_t *f = dup_exact(frame, len + 5);
        struct vnet_pkt k = k0;
        k.buf = f;
        k.cap = k.len = (uint32_t)len + 5;
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), 3);
        ck_assert_uint_eq(info.total, 2 * info.stride + 8 + lo.hlen + 1000);
        free(f);
        k = k0;
        k.gso_size = 0;
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EINVAL);
        k = k0;
        k.gso_type = 2;
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_ENOTSUP);
        k.gso_type = VNET_GSO_UDP;
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_ENOTSUP);
        k = k0;
        k.csum_start++;
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EINVAL);
        k = k0;
        k.csum_offset = p.udp ? 16 : 6;
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EINVAL);
        k = k0;
        k.csum_flags = 0; /* no partial flag: the checksum is computed anyway */
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), 3);
        k = k0;
        k.off = 1;
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EINVAL);
        /* output too small, by one byte and by a lot; nothing written past the cap */
        k = k0;
        long need = vnet_gso_out_len(&k, 8);
        ck_assert_int_gt(need, 0);
        for (long c = need - 1; c >= 0; c -= 97) {
            uint8_t *o = malloc((size_t)c + 1);
            ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, o, (size_t)c, &info), VNET_ENOSPC);
            free(o);
        }
        uint8_t *o = malloc((size_t)need);
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, o, (size_t)need, &info), 3);
        free(o);
        /* segment cap */
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 2, out, sizeof(out), &info), VNET_EMSGSIZE);
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 3, out, sizeof(out), &info), 3);
        /* NULLs, prefix */
        ck_assert_int_eq(vnet_gso_segment(NULL, 8, 0, out, sizeof(out), &info), VNET_EINVAL);
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, NULL, sizeof(out), &info), VNET_EINVAL);
        ck_assert_int_eq(vnet_gso_segment(&k, 5000, 0, out, sizeof(out), &info), VNET_EINVAL);
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), NULL), 3);
        /* IP version mismatching gso_type */
        k = k0;
        k.gso_type = p.udp ? VNET_GSO_UDP_L4 : (p.v6 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6);
        if (!p.udp)
            ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EPROTO);
        /* TCP gso_type on UDP and the reverse */
        k = k0;
        k.gso_type = p.udp ? (p.v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4) : VNET_GSO_UDP_L4;
        k.csum_flags = 0;
        ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EPROTO);
    }
    /* malformed headers */
    struct fb p = fb_default(false);
    p.plen = 3000;
    struct layout lo;
    size_t len = build(frame, &p, &lo);
    struct vnet_pkt k = mkpkt(frame, len, &p, &lo, 1000);
    frame[lo.l3] = 0x44; /* IHL 4 */
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EMALFORM);
    frame[lo.l3] = 0x55; /* version 5 */
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EMALFORM);
    frame[lo.l3] = 0x4f; /* IHL 15: beyond the TCP header start, csum_start then wrong */
    ck_assert_int_lt(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), 0);
    frame[lo.l3] = 0x45;
    wr16(frame + lo.l3 + 6, 0x2000); /* MF */
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EMALFORM);
    wr16(frame + lo.l3 + 6, 0x4000);
    wr16(frame + lo.l3 + 2, (uint16_t)(len - lo.l3 + 1)); /* IP length beyond the frame */
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_ETRUNC);
    wr16(frame + lo.l3 + 2, 19);
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EMALFORM);
    wr16(frame + lo.l3 + 2, (uint16_t)(len - lo.l3));
    frame[lo.l4 + 12] = 0x40; /* data offset 4 */
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EMALFORM);
    frame[lo.l4 + 12] = 0x80;
    frame[lo.l3 + 9] = 17; /* not TCP */
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EPROTO);
    wr16(frame + 12, 0x0806); /* not IP */
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_EPROTO);
    /* IPv6 extension header, jumbogram */
    p = fb_default(true);
    p.plen = 3000;
    len = build(frame, &p, &lo);
    k = mkpkt(frame, len, &p, &lo, 1000);
    frame[lo.l3 + 6] = 0; /* hop-by-hop */
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_ENOTSUP);
    frame[lo.l3 + 6] = 44; /* fragment */
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_ENOTSUP);
    frame[lo.l3 + 6] = 6;
    wr16(frame + lo.l3 + 4, 0);
    ck_assert_int_eq(vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info), VNET_ENOTSUP);
}
END_TEST

/* ---- Coalescing ---- */

/* What came out of the GRO, copied (a merged output only lives until the next call). */
struct outrec {
    uint8_t *bytes;
    struct vnet_pkt pkt;
    bool merged;
    const uint8_t *src; /* pass-through: the frame pointer */
};

struct collector {
    struct outrec r[4096];
    int n;
};

static void collect(struct collector *c, const struct vnet_gro *g, const struct vnet_pkt *o, int n,
                    const uint8_t *gbuf)
{
    ck_assert_int_ge(n, 0);
    ck_assert_int_le(n, 2);
    for (int i = 0; i < n; i++) {
        ck_assert_int_lt(c->n, 4096);
        struct outrec *r = &c->r[c->n++];
        r->pkt = o[i];
        r->merged = o[i].buf == gbuf;
        r->src = o[i].buf;
        r->bytes = dup_exact(o[i].buf + o[i].off, o[i].len);
        if (!r->merged) {
            ck_assert_uint_eq(o[i].gso_type, VNET_GSO_NONE);
            ck_assert_uint_eq(o[i].csum_flags, 0);
        }
    }
    (void)g;
}

static void collector_free(struct collector *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->r[i].bytes);
    c->n = 0;
}

static uint8_t gro_buf[VNET_GRO_BUF_SIZE];

static void gro_run(struct vnet_gro *g, uint8_t **frames, const size_t *lens, int n,
                    struct collector *c)
{
    struct vnet_pkt o[2];
    for (int i = 0; i < n; i++)
        collect(c, g, o, vnet_gro_feed(g, frames[i], lens[i], o), gro_buf);
    collect(c, g, o, vnet_gro_flush(g, o), gro_buf);
    ck_assert_int_eq(vnet_gro_flush(g, o), 0);
}

/* Segments of a stream as separate frames (full checksums). */
struct stream {
    uint8_t *f[256];
    size_t len[256];
    struct layout lo[256];
    int n;
};

static void stream_add(struct stream *s, const struct fb *p)
{
    static uint8_t tmp[70000];
    ck_assert_int_lt(s->n, 256);
    struct fb q = *p;
    q.csum = CS_FULL;
    size_t len = build(tmp, &q, &s->lo[s->n]);
    s->f[s->n] = dup_exact(tmp, len);
    s->len[s->n] = len;
    s->n++;
}

/* n segments of @mss following @p (seq, ID, pattern advance); PSH only on the last */
static void stream_make(struct stream *s, const struct fb *p0, int n, uint32_t mss)
{
    struct fb p = *p0;
    uint8_t fl = p.flags;
    for (int i = 0; i < n; i++) {
        p.plen = mss;
        p.flags = i + 1 < n ? (uint8_t)(fl & ~0x08) : fl;
        stream_add(s, &p);
        p.seq += mss;
        p.pat_off += mss;
        p.id++;
    }
}

/* Recompute the IPv4 header and TCP checksums of segment i after an edit. */
static void refix(struct stream *s, int i, bool v6)
{
    uint8_t *ip = s->f[i] + s->lo[i].l3, *th = s->f[i] + s->lo[i].l4;
    if (!v6) {
        wr16(ip + 10, 0);
        wr16(ip + 10, (uint16_t)~ref_sum(ip, 20, 0));
    }
    uint32_t l4len = (uint32_t)(s->len[i] - s->lo[i].l4);
    wr16(th + 16, 0);
    wr16(th + 16, (uint16_t)~ref_sum(th, l4len, ref_pseudo(ip, v6, 6, l4len)));
}

static void stream_free(struct stream *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->f[i]);
    s->n = 0;
}

/* A merged output equals the frame that vnet_gro would rebuild from segments [a, b) of @s. */
static void check_merged(const struct outrec *r, const struct stream *s, int a, int b, bool v6)
{
    ck_assert(r->merged);
    const struct layout *lo = &s->lo[a];
    size_t want = lo->hlen;
    for (int i = a; i < b; i++)
        want += s->len[i] - s->lo[i].hlen;
    ck_assert_uint_eq(r->pkt.len, want);
    ck_assert_uint_eq(r->pkt.gso_type, v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4);
    ck_assert_uint_eq(r->pkt.gso_size, s->len[a] - lo->hlen);
    ck_assert_uint_eq(r->pkt.hdr_len, lo->hlen);
    ck_assert_uint_eq(r->pkt.csum_flags, VNET_CSUM_PARTIAL);
    ck_assert_uint_eq(r->pkt.csum_start, lo->l4);
    ck_assert_uint_eq(r->pkt.csum_offset, 16);
    const uint8_t *m = r->bytes;
    const uint8_t *f0 = s->f[a];
    ck_assert_int_eq(memcmp(m, f0, lo->l3), 0);
    const uint8_t *ip = m + lo->l3;
    if (v6) {
        ck_assert_uint_eq(rd16(ip + 4), want - lo->l4);
    } else {
        ck_assert_uint_eq(rd16(ip + 2), want - lo->l3);
        ck_assert_uint_eq(ref_sum(ip, 20, 0), 0xffff);
        ck_assert_uint_eq(rd16(ip + 4), rd16(f0 + lo->l3 + 4));
    }
    const uint8_t *th = m + lo->l4;
    ck_assert_uint_eq(rd32(th + 4), rd32(f0 + lo->l4 + 4));
    uint8_t psh = 0;
    for (int i = a; i < b; i++)
        psh |= s->f[i][s->lo[i].l4 + 13] & 0x08;
    ck_assert_uint_eq(th[13], (f0[lo->l4 + 13] & ~0x08) | psh);
    /* the checksum field holds the pseudo-header sum for the merged length */
    ck_assert_uint_eq(rd16(th + 16), ref_pseudo(ip, v6, 6, (uint32_t)(want - lo->l4)));
    size_t off = lo->hlen;
    for (int i = a; i < b; i++) {
        size_t pl = s->len[i] - s->lo[i].hlen;
        ck_assert_int_eq(memcmp(m + off, s->f[i] + s->lo[i].hlen, pl), 0);
        off += pl;
    }
    /* completing it gives a valid TCP checksum */
    uint8_t *c = dup_exact(m, want);
    uint16_t v = (uint16_t)~ref_sum(c + lo->l4, want - lo->l4, 0);
    wr16(c + lo->l4 + 16, v);
    struct layout ml = {lo->l3, lo->l4, lo->hlen, want};
    ck_assert(l4_csum_ok(c, &ml, v6, 6));
    free(c);
}

static void check_pass(const struct outrec *r, const struct stream *s, int i)
{
    ck_assert(!r->merged);
    ck_assert_ptr_eq(r->src, s->f[i]);
    ck_assert_uint_eq(r->pkt.len, s->len[i]);
}

/* segment a TSO frame, coalesce the segments: the original comes back */
static void roundtrip(bool v6, uint32_t plen, uint16_t mss, unsigned gflags)
{
    static uint8_t frame[70000], out[80000];
    struct fb p = fb_default(v6);
    p.plen = plen;
    struct layout lo;
    size_t len = build(frame, &p, &lo);
    struct vnet_pkt k = mkpkt(frame, len, &p, &lo, mss);
    struct vnet_gso_info info;
    int n = vnet_gso_segment(&k, 8, 0, out, sizeof(out), &info);
    ck_assert_int_gt(n, 1);
    struct vnet_gro g;
    ck_assert_int_eq(vnet_gro_init(&g, gro_buf, sizeof(gro_buf), gflags), 0);
    static struct collector c;
    uint8_t *fr[256];
    size_t fl[256];
    for (int i = 0; i < n; i++) {
        fr[i] = out + (size_t)i * info.stride + 8;
        fl[i] = i + 1 < n ? info.stride - 8 : info.total - (size_t)i * info.stride - 8;
    }
    gro_run(&g, fr, fl, n, &c);
    ck_assert_int_eq(c.n, 1);
    ck_assert(c.r[0].merged);
    ck_assert_uint_eq(c.r[0].pkt.len, len);
    ck_assert_int_eq(memcmp(c.r[0].bytes, frame, len), 0); /* checksum field included */
    ck_assert_uint_eq(c.r[0].pkt.gso_type, v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4);
    ck_assert_uint_eq(c.r[0].pkt.gso_size, mss);
    ck_assert_uint_eq(c.r[0].pkt.csum_start, lo.l4);
    ck_assert_uint_eq(c.r[0].pkt.csum_offset, 16);
    ck_assert_uint_eq(c.r[0].pkt.hdr_len, lo.hlen);
    uint64_t merged, passed, bad;
    vnet_gro_stats(&g, &merged, &passed, &bad);
    ck_assert_uint_eq(merged, (uint64_t)n);
    ck_assert_uint_eq(passed, 0);
    ck_assert_uint_eq(bad, 0);
    /* and segmenting the merged frame again gives the same segments */
    static uint8_t out2[80000];
    struct vnet_pkt m = c.r[0].pkt;
    m.buf = c.r[0].bytes;
    m.cap = m.len;
    struct vnet_gso_info info2;
    ck_assert_int_eq(vnet_gso_segment(&m, 8, 0, out2, sizeof(out2), &info2), n);
    ck_assert_int_eq(memcmp(&info, &info2, sizeof(info)), 0);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(
            memcmp(out + (size_t)i * info.stride + 8, out2 + (size_t)i * info.stride + 8, fl[i]),
            0);
    collector_free(&c);
}

START_TEST(t_gro_roundtrip)
{
    for (int v6 = 0; v6 < 2; v6++) {
        for (unsigned fl = 0; fl < 2; fl++) {
            roundtrip(v6, 65535 - 72, 1448, fl);
            roundtrip(v6, 65535 - 72, 1428, fl);
            roundtrip(v6, 65226 - 66 - 20 * v6, 1448, fl);
            roundtrip(v6, 1449, 1448, fl);
            roundtrip(v6, 10001, 1000, fl);
        }
    }
}
END_TEST

static struct collector gc;

START_TEST(t_gro_interleaved)
{
    struct stream a = {0}, b = {0}, mix = {0};
    struct fb pa = fb_default(false), pb = fb_default(false);
    pb.sport = 40001;
    stream_make(&a, &pa, 4, 1448);
    stream_make(&b, &pb, 4, 1448);
    struct vnet_gro g;
    vnet_gro_init(&g, gro_buf, sizeof(gro_buf), 0);
    /* A0 B0 A1 B1 ...: nothing merges, order kept */
    for (int i = 0; i < 4; i++) {
        mix.f[2 * i] = a.f[i];
        mix.len[2 * i] = a.len[i];
        mix.lo[2 * i] = a.lo[i];
        mix.f[2 * i + 1] = b.f[i];
        mix.len[2 * i + 1] = b.len[i];
        mix.lo[2 * i + 1] = b.lo[i];
    }
    mix.n = 8;
    gro_run(&g, mix.f, mix.len, 8, &gc);
    ck_assert_int_eq(gc.n, 8);
    for (int i = 0; i < 8; i++)
        check_pass(&gc.r[i], &mix, i);
    collector_free(&gc);
    /* A0..A3 B0..B3: two merges */
    for (int i = 0; i < 4; i++) {
        mix.f[i] = a.f[i];
        mix.len[i] = a.len[i];
        mix.f[4 + i] = b.f[i];
        mix.len[4 + i] = b.len[i];
    }
    gro_run(&g, mix.f, mix.len, 8, &gc);
    ck_assert_int_eq(gc.n, 2);
    check_merged(&gc.r[0], &a, 0, 4, false);
    check_merged(&gc.r[1], &b, 0, 4, false);
    collector_free(&gc);
    mix.n = 0;
    stream_free(&a);
    stream_free(&b);
}
END_TEST

START_TEST(t_gro_out_of_order)
{
    struct stream s = {0};
    for (int v6 = 0; v6 < 2; v6++) {
        struct fb p = fb_default(v6);
        stream_make(&s, &p, 4, 1448);
        struct vnet_gro g;
        vnet_gro_init(&g, gro_buf, sizeof(gro_buf), VNET_GRO_F_VERIFY_CSUM);
        uint8_t *f[4] = {s.f[0], s.f[2], s.f[1], s.f[3]};
        size_t l[4] = {s.len[0], s.len[2], s.len[1], s.len[3]};
        gro_run(&g, f, l, 4, &gc);
        ck_assert_int_eq(gc.n, 4);
        check_pass(&gc.r[0], &s, 0);
        check_pass(&gc.r[1], &s, 2);
        check_pass(&gc.r[2], &s, 1);
        check_pass(&gc.r[3], &s, 3);
        collector_free(&gc);
        /* a retransmission of the previous segment */
        uint8_t *f2[3] = {s.f[0], s.f[1], s.f[1]};
        size_t l2[3] = {s.len[0], s.len[1], s.len[1]};
        gro_run(&g, f2, l2, 3, &gc);
        ck_assert_int_eq(gc.n, 2);
        check_merged(&gc.r[0], &s, 0, 2, v6);
        check_pass(&gc.r[1], &s, 1);
        collector_free(&gc);
        stream_free(&s);
    }
}
END_TEST

/* Feed s, expect outputs described by @spec: "m0-3" merged [0,3), "p4" pass 4, ... */
static void expect(const struct stream *s, const char *spec, bool v6)
{
    int i = 0;
    const char *c = spec;
    while (*c) {
        ck_assert_int_lt(i, gc.n);
        if (*c == 'm') {
            int a = (int)strtol(c + 1, (char **)&c, 10);
            ck_assert(*c == '-');
            int b = (int)strtol(c + 1, (char **)&c, 10);
            check_merged(&gc.r[i], s, a, b, v6);
        } else {
            ck_assert(*c == 'p');
            int a = (int)strtol(c + 1, (char **)&c, 10);
            check_pass(&gc.r[i], s, a);
        }
        i++;
        while (*c == ' ')
            c++;
    }
    ck_assert_int_eq(i, gc.n);
    collector_free(&gc);
}

static void run_stream(const struct stream *s, unsigned flags, const char *spec, bool v6)
{
    struct vnet_gro g;
    ck_assert_int_eq(vnet_gro_init(&g, gro_buf, sizeof(gro_buf), flags), 0);
    gro_run(&g, (uint8_t **)s->f, s->len, s->n, &gc);
    expect(s, spec, v6);
}

START_TEST(t_gro_rules)
{
    for (int v6 = 0; v6 < 2; v6++) {
        struct stream s = {0};
        struct fb p = fb_default(v6);
        p.flags = 0x10;
        /* different ack in the middle */
        stream_make(&s, &p, 6, 1448);
        wr32(s.f[3] + s.lo[3].l4 + 8, p.ack + 1);
        refix(&s, 3, v6);
        run_stream(&s, VNET_GRO_F_VERIFY_CSUM, "m0-3 p3 m4-6", v6);
        stream_free(&s);

        /* PSH ends a merge, including the segment */
        struct fb q = p;
        stream_make(&s, &q, 3, 1448);
        s.f[1][s.lo[1].l4 + 13] |= 0x08;
        refix(&s, 1, v6);
        q.seq += 3 * 1448;
        q.pat_off += 3 * 1448;
        q.id += 3;
        stream_make(&s, &q, 3, 1448);
        run_stream(&s, VNET_GRO_F_VERIFY_CSUM, "m0-2 m2-6", v6);
        /* PSH on the first: passed at once */
        s.f[0][s.lo[0].l4 + 13] |= 0x08;
        refix(&s, 0, v6);
        run_stream(&s, VNET_GRO_F_VERIFY_CSUM, "p0 p1 m2-6", v6);
        stream_free(&s);

        /* a shorter segment ends the merge; a longer one starts a new one */
        q = p;
        uint32_t sizes[] = {1448, 1448, 1000, 1448, 1448, 500, 1000, 1448, 1448};
        for (int i = 0; i < 9; i++) {
            q.plen = sizes[i];
            stream_add(&s, &q);
            q.seq += sizes[i];
            q.pat_off += sizes[i];
            q.id++;
        }
        run_stream(&s, 0, "m0-3 m3-6 p6 m7-9", v6);
        stream_free(&s);

        /* flags: SYN, FIN, RST, URG, CWR, no ACK pass through */
        static const uint8_t bad[] = {0x12, 0x11, 0x14, 0x30, 0x90, 0x00};
        for (size_t b = 0; b < sizeof(bad); b++) {
            q = p;
            stream_make(&s, &q, 5, 1448);
            s.f[2][s.lo[2].l4 + 13] = bad[b]; /* checksum now wrong: verification off */
            run_stream(&s, 0, "m0-2 p2 m3-5", v6);
            stream_free(&s);
        }

        /* a pure ACK in between (no payload) and a non-IP frame */
        q = p;
        stream_make(&s, &q, 2, 1448);
        q.plen = 0;
        q.seq += 2 * 1448;
        stream_add(&s, &q);
        q.plen = 1448;
        q.pat_off += 2 * 1448;
        stream_add(&s, &q);
        q.seq += 1448;
        q.pat_off += 1448;
        stream_add(&s, &q);
        uint8_t arp[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
        s.f[s.n] = dup_exact(arp, 60);
        s.len[s.n++] = 60;
        s.f[s.n] = dup_exact(arp, 5);
        s.len[s.n++] = 5;
        run_stream(&s, 0, "m0-2 p2 m3-5 p5 p6", v6);
        stream_free(&s);

        /* options must be identical: a different timestamp ends a merge */
        q = p;
        stream_make(&s, &q, 2, 1448);
        q.seq += 2 * 1448;
        q.pat_off += 2 * 1448;
        q.id += 2;
        q.tsval++;
        stream_make(&s, &q, 2, 1448);
        run_stream(&s, 0, "m0-2 m2-4", v6);
        stream_free(&s);

        /* window, TTL/hop limit, TOS, MAC differences end a merge */
        for (int what = 0; what < 4; what++) {
            q = p;
            stream_make(&s, &q, 2, 1448);
            q.seq += 2 * 1448;
            q.pat_off += 2 * 1448;
            q.id += 2;
            if (what == 0)
                q.win++;
            else if (what == 1)
                q.ttl--;
            else if (what == 2)
                q.tos = 0;
            stream_make(&s, &q, 2, 1448);
            if (what == 3)
                for (int i = 2; i < 4; i++)
                    s.f[i][0] ^= 4; /* ... checksums do not cover it */
            run_stream(&s, VNET_GRO_F_VERIFY_CSUM, "m0-2 m2-4", v6);
            stream_free(&s);
        }

        /* merge limits: 64 segments, 65535-byte IP packet */
        q = p;
        stream_make(&s, &q, 70, 500);
        run_stream(&s, 0, "m0-64 m64-70", v6);
        stream_free(&s);
        q = p;
        stream_make(&s, &q, 50, 1448);
        run_stream(&s, 0, v6 ? "m0-45 m45-50" : "m0-45 m45-50", v6);
        stream_free(&s);
        /* a smaller buffer stops merges earlier, never overflows */
        {
            q = p;
            stream_make(&s, &q, 10, 1448);
            uint8_t *small = malloc(5000);
            struct vnet_gro g;
            ck_assert_int_eq(vnet_gro_init(&g, small, 5000, 0), 0);
            struct vnet_pkt o[2];
            int merged = 0, outs = 0;
            for (int i = 0; i < s.n; i++) {
                int n = vnet_gro_feed(&g, s.f[i], s.len[i], o);
                for (int j = 0; j < n; j++, outs++)
                    merged += o[j].buf == small;
            }
            outs += vnet_gro_flush(&g, o);
            ck_assert_int_eq(outs, 4); /* 3 + 3 + 3 segments merged, 1 alone */
            ck_assert_int_eq(merged, 3);
            free(small);
            stream_free(&s);
        }
    }
}
END_TEST

START_TEST(t_gro_ipv4)
{
    struct stream s = {0};
    struct fb p = fb_default(false);
    p.flags = 0x10;
    /* no DF: IDs must increment */
    p.ipfl = 0;
    stream_make(&s, &p, 4, 1448);
    run_stream(&s, 0, "m0-4", false);
    wr16(s.f[2] + s.lo[2].l3 + 4, 7);
    refix(&s, 2, false);
    run_stream(&s, VNET_GRO_F_VERIFY_CSUM, "m0-2 p2 p3", false);
    stream_free(&s);
    /* DF: any IDs */
    p.ipfl = 0x4000;
    stream_make(&s, &p, 4, 1448);
    for (int i = 0; i < 4; i++) {
        uint8_t *ip = s.f[i] + s.lo[i].l3;
        wr16(ip + 4, 0);
        wr16(ip + 10, 0);
        wr16(ip + 10, (uint16_t)~ref_sum(ip, 20, 0));
    }
    run_stream(&s, 0, "m0-4", false);
    /* a bad IPv4 header checksum is never merged (it would be laundered) */
    s.f[1][s.lo[1].l3 + 10] ^= 1;
    run_stream(&s, 0, "p0 p1 m2-4", false);
    stream_free(&s);
    /* IPv4 options, fragments: passed through */
    p.ip_opt_words = 1;
    stream_make(&s, &p, 3, 1448);
    run_stream(&s, 0, "p0 p1 p2", false);
    stream_free(&s);
    p.ip_opt_words = 0;
    p.ipfl = 0x2000;
    stream_make(&s, &p, 3, 1448);
    run_stream(&s, 0, "p0 p1 p2", false);
    stream_free(&s);
    /* VLAN-tagged flows merge too */
    p.ipfl = 0x4000;
    p.vlan = 1;
    stream_make(&s, &p, 3, 1448);
    run_stream(&s, 0, "m0-3", false);
    stream_free(&s);
}
END_TEST

START_TEST(t_gro_verify)
{
    for (int v6 = 0; v6 < 2; v6++) {
        struct stream s = {0};
        struct fb p = fb_default(v6);
        stream_make(&s, &p, 6, 1448);
        /* corrupt a payload byte of segment 3 */
        s.f[3][s.lo[3].hlen + 100] ^= 0x40;
        run_stream(&s, VNET_GRO_F_VERIFY_CSUM, "m0-3 p3 m4-6", v6);
        /* without verification it is merged (the outer checksum is trusted) */
        run_stream(&s, 0, "m0-6", v6);
        s.f[3][s.lo[3].hlen + 100] ^= 0x40;
        /* the held first segment corrupt */
        s.f[0][s.lo[0].hlen] ^= 1;
        struct vnet_gro g;
        vnet_gro_init(&g, gro_buf, sizeof(gro_buf), VNET_GRO_F_VERIFY_CSUM);
        gro_run(&g, s.f, s.len, s.n, &gc);
        expect(&s, "p0 m1-6", v6);
        uint64_t merged, passed, bad;
        vnet_gro_stats(&g, &merged, &passed, &bad);
        ck_assert_uint_eq(merged, 5);
        ck_assert_uint_eq(passed, 1);
        ck_assert_uint_eq(bad, 1);
        s.f[0][s.lo[0].hlen] ^= 1;
        /* the second corrupt: the first goes alone (unmerged), then the second */
        s.f[1][s.lo[1].hlen + 7] ^= 1;
        run_stream(&s, VNET_GRO_F_VERIFY_CSUM, "p0 p1 m2-6", v6);
        /* a corrupt header field the merge does not compare (urgent pointer) */
        s.f[1][s.lo[1].hlen + 7] ^= 1;
        s.f[5][s.lo[5].l4 + 19] ^= 1;
        run_stream(&s, VNET_GRO_F_VERIFY_CSUM, "m0-5 p5", v6);
        stream_free(&s);
    }
}
END_TEST

START_TEST(t_gro_args)
{
    struct vnet_gro g;
    struct vnet_pkt o[2];
    uint8_t b[200];
    ck_assert_int_eq(vnet_gro_init(NULL, b, 200, 0), VNET_EINVAL);
    ck_assert_int_eq(vnet_gro_init(&g, NULL, 200, 0), VNET_EINVAL);
    ck_assert_int_eq(vnet_gro_init(&g, b, 100, 0), VNET_EINVAL);
    ck_assert_int_eq(vnet_gro_init(&g, b, 200, 0), 0);
    ck_assert_int_eq(vnet_gro_feed(NULL, b, 10, o), VNET_EINVAL);
    ck_assert_int_eq(vnet_gro_feed(&g, NULL, 10, o), VNET_EINVAL);
    ck_assert_int_eq(vnet_gro_feed(&g, b, 10, NULL), VNET_EINVAL);
    ck_assert_int_eq(vnet_gro_flush(&g, NULL), VNET_EINVAL);
    ck_assert_int_eq(vnet_gro_flush(&g, o), 0);
    /* every truncation of a valid segment, exact-size: passes through */
    static uint8_t frame[2000];
    struct fb p = fb_default(false);
    p.csum = CS_FULL;
    p.flags = 0x10;
    for (int v6 = 0; v6 < 2; v6++) {
        p.v6 = v6;
        struct layout lo;
        size_t len = build(frame, &p, &lo);
        vnet_gro_init(&g, gro_buf, sizeof(gro_buf), VNET_GRO_F_VERIFY_CSUM);
        for (size_t l = 0; l <= len; l++) {
            uint8_t *f = dup_exact(frame, l);
            int n = vnet_gro_feed(&g, f, l, o);
            ck_assert_int_eq(n, l == len ? 0 : 1);
            if (n)
                ck_assert_ptr_eq(o[0].buf, f);
            ck_assert_int_eq(vnet_gro_flush(&g, o), l == len ? 1 : 0);
            free(f);
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("offload");
    TCase *tc = tcase_create("csum");
    tcase_add_test(tc, t_csum_copy);
    tcase_add_test(tc, t_csum_complete);
    suite_add_tcase(s, tc);
    tc = tcase_create("gso");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_tso4_64k);
    tcase_add_test(tc, t_tso6_64k);
    tcase_add_test(tc, t_tso_edges);
    tcase_add_test(tc, t_tso_flags);
    tcase_add_test(tc, t_tso_ip_options);
    tcase_add_test(tc, t_uso);
    tcase_add_test(tc, t_non_gso);
    tcase_add_test(tc, t_gso_bad);
    suite_add_tcase(s, tc);
    tc = tcase_create("gro");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_gro_roundtrip);
    tcase_add_test(tc, t_gro_interleaved);
    tcase_add_test(tc, t_gro_out_of_order);
    tcase_add_test(tc, t_gro_rules);
    tcase_add_test(tc, t_gro_ipv4);
    tcase_add_test(tc, t_gro_verify);
    tcase_add_test(tc, t_gro_args);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
