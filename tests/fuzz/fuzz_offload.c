/* libFuzzer target for the user-space offloads (vnet/offload.h).
 *
 * Input: 12 bytes of metadata, then the frame.
 *   [0] gso_type  [1] csum_flags  [2..3] gso_size  [4..5] csum_start  [6..7] csum_offset
 *   [8] prefix    [9] max_segs    [10] output slack (0x80: exact size, else cap - slack)
 *   [11] GRO flags (bit 0: verify; bit 1: feed the raw frame in the middle; bits 2..: GRO
 *        buffer size class)
 * The frame goes through vnet_gso_out_len, vnet_gso_segment (into an exact-size heap buffer, so
 * ASan sees any write past it), vnet_csum_complete, and every segment through vnet_gro_feed.
 * Invariants that trap when broken: every TCP/UDP segment has a valid L4 checksum and an IPv4
 * segment a valid header checksum; the total length matches vnet_gso_out_len; the payload bytes
 * that leave the GRO, in order, are exactly the payload of the original frame.
 */
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/offload.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define META 12

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

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

/* Checksums of one output segment whose headers are hdr_len long (IP offset from the frame). */
static void check_segment(const uint8_t *s, size_t len, size_t hdr_len, uint8_t gso)
{
    size_t l3 = 14;
    uint16_t et = rd16(s + 12);
    while ((et == 0x8100 || et == 0x88a8) && l3 < 22) {
        et = rd16(s + l3 + 2);
        l3 += 4;
    }
    CHECK(len >= hdr_len && hdr_len > l3);
    const uint8_t *ip = s + l3;
    uint8_t ph[40] = {0};
    size_t l4, phl;
    uint8_t proto;
    if (et == 0x0800) {
        size_t ihl = (ip[0] & 15u) * 4u;
        CHECK(ref_sum(ip, ihl, 0) == 0xffff);
        CHECK(rd16(ip + 2) == len - l3);
        l4 = l3 + ihl;
        memcpy(ph, ip + 12, 8);
        ph[9] = proto = ip[9];
        ph[10] = (uint8_t)((len - l4) >> 8);
        ph[11] = (uint8_t)(len - l4);
        phl = 12;
    } else {
        CHECK(et == 0x86dd);
        CHECK(rd16(ip + 4) == len - l3 - 40);
        l4 = l3 + 40;
        memcpy(ph, ip + 8, 32);
        ph[34] = (uint8_t)((len - l4) >> 8);
        ph[35] = (uint8_t)(len - l4);
        ph[39] = proto = ip[6];
        phl = 40;
    }
    CHECK(proto == (gso == VNET_GSO_UDP_L4 ? 17 : 6));
    CHECK(ref_sum(s + l4, len - l4, ref_sum(ph, phl, 0)) == 0xffff);
}

static uint8_t gro_buf[VNET_GRO_BUF_SIZE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < META)
        return 0;
    const uint8_t *m = data;
    size_t flen = size - META;
    uint8_t *frame = malloc(flen ? flen : 1);
    if (!frame)
        return 0;
    memcpy(frame, data + META, flen);

    struct vnet_pkt pkt = {.buf = frame, .cap = (uint32_t)flen, .len = (uint32_t)flen};
    pkt.gso_type = m[0];
    pkt.csum_flags = m[1] & 3;
    pkt.gso_size = rd16(m + 2);
    pkt.csum_start = rd16(m + 4);
    pkt.csum_offset = rd16(m + 6);
    size_t prefix = m[8] & 0x1f;
    unsigned max_segs = m[9];
    uint8_t gso = pkt.gso_type & (uint8_t)~VNET_GSO_F_ECN;

    long need = vnet_gso_out_len(&pkt, prefix);
    size_t cap = need > 0 ? (size_t)need : 256;
    if (!(m[10] & 0x80) && m[10] && cap > m[10])
        cap -= m[10];
    uint8_t *out = malloc(cap ? cap : 1);
    if (!out) {
        free(frame);
        return 0;
    }
    struct vnet_gso_info info;
    int n = vnet_gso_segment(&pkt, prefix, max_segs, out, cap, &info);
    if (need < 0)
        CHECK(n == need);
    if (n > 0) {
        CHECK((long)info.total == need && info.total <= cap && info.nsegs == (uint32_t)n);
        CHECK(max_segs == 0 || (unsigned)n <= max_segs);
    } else if (n == VNET_ENOSPC) {
        CHECK(need > 0 && (size_t)need > cap);
    }

    /* checksum completion on a copy */
    struct vnet_pkt c = pkt;
    c.buf = malloc(flen ? flen : 1);
    if (c.buf) {
        memcpy(c.buf, frame, flen);
        int rc = vnet_csum_complete(&c);
        CHECK(rc == 0 || rc == VNET_EINVAL);
        free(c.buf);
    }

    struct vnet_gro g;
    uint8_t *copy = NULL;
    if (vnet_gro_init(&g, gro_buf, 128 + ((size_t)(m[11] >> 2) << 10), m[11] & 1) == 0 && n > 0) {
        size_t seen = 0, want = 0;
        bool split = gso != VNET_GSO_NONE;
        const uint8_t *orig_payload = frame + info.hdr_len;
        if (split)
            want = info.total - (size_t)n * (prefix + info.hdr_len);
        struct vnet_pkt o[2];
        for (int k = 0; k < n; k++) {
            uint8_t *s = out + (size_t)k * info.stride + prefix;
            size_t slen = (k + 1 < n ? info.stride : info.total - (size_t)k * info.stride) - prefix;
            if (split)
                check_segment(s, slen, info.hdr_len, gso);
            int r = vnet_gro_feed(&g, s, slen, o);
            if ((m[11] & 2) && k == n / 2) {
                /* an unrelated frame in the middle: must not be merged into the flow */
                copy = malloc(flen ? flen : 1);
                if (copy) {
                    memcpy(copy, frame, flen);
                    CHECK(r >= 0 && r <= 2);
                    for (int i = 0; i < r; i++) {
                        size_t pl = o[i].len - info.hdr_len;
                        if (split)
                            CHECK(seen + pl <= want &&
                                  memcmp(o[i].buf + info.hdr_len, orig_payload + seen, pl) == 0);
                        seen += pl;
                    }
                    r = vnet_gro_feed(&g, copy, flen, o);
                    for (int i = 0; i < r; i++) {
                        if (o[i].buf == copy)
                            continue; /* the raw frame itself */
                        size_t pl = o[i].len - info.hdr_len;
                        if (split)
                            CHECK(seen + pl <= want &&
                                  memcmp(o[i].buf + info.hdr_len, orig_payload + seen, pl) == 0);
                        seen += pl;
                    }
                    r = 0;
                }
            }
            CHECK(r >= 0 && r <= 2);
            for (int i = 0; i < r; i++) {
                if (o[i].buf == copy)
                    continue;
                CHECK(o[i].len >= info.hdr_len);
                size_t pl = o[i].len - info.hdr_len;
                if (o[i].gso_type != VNET_GSO_NONE) {
                    CHECK(o[i].csum_flags == VNET_CSUM_PARTIAL && o[i].hdr_len == info.hdr_len);
                    CHECK(o[i].len <= VNET_GRO_BUF_SIZE);
                }
                if (split)
                    CHECK(seen + pl <= want &&
                          memcmp(o[i].buf + info.hdr_len, orig_payload + seen, pl) == 0);
                seen += pl;
            }
        }
        int r = vnet_gro_flush(&g, o);
        CHECK(r == 0 || r == 1);
        for (int i = 0; i < r; i++) {
            if (o[i].buf == copy)
                continue;
            size_t pl = o[i].len - info.hdr_len;
            if (split)
                CHECK(seen + pl <= want &&
                      memcmp(o[i].buf + info.hdr_len, orig_payload + seen, pl) == 0);
            seen += pl;
        }
        if (split)
            CHECK(seen == want);
    }
    /* the raw input frame alone (arbitrary bytes) */
    if (vnet_gro_init(&g, gro_buf, sizeof(gro_buf), m[11] & 1) == 0) {
        struct vnet_pkt o[2];
        int r = vnet_gro_feed(&g, frame, flen, o);
        CHECK(r >= 0 && r <= 1);
        r = vnet_gro_feed(&g, frame, flen, o); /* the same again: never a merge */
        CHECK(r >= 0 && r <= 2);
        for (int i = 0; i < r; i++)
            CHECK(o[i].buf == frame && o[i].len == flen);
        r = vnet_gro_flush(&g, o);
        CHECK(r == 0 || (r == 1 && o[0].buf == frame));
    }
    free(copy);
    free(out);
    free(frame);
    return 0;
}

/* Valid TSO/USO frames with small MSS, to start mutating from. */
size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    unsigned kind = i % 6; /* TCPv4, TCPv6, UDPv4, UDPv6, TCPv4+options+VLAN, non-GSO */
    bool v6 = kind == 1 || kind == 3;
    bool udp = kind == 2 || kind == 3;
    size_t plen = 100 + (i * 37) % 900;
    size_t l3 = kind == 4 ? 18 : 14;
    size_t iphl = v6 ? 40 : kind == 4 ? 24 : 20;
    size_t l4hl = udp ? 8 : 32;
    size_t len = META + l3 + iphl + l4hl + plen;
    if (len > cap)
        return 0;
    memset(buf, 0, len);
    uint8_t *m = buf, *f = buf + META;
    size_t l4 = l3 + iphl;
    m[0] = kind == 5 ? 0 : udp ? VNET_GSO_UDP_L4 : v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4;
    m[1] = VNET_CSUM_PARTIAL;
    uint16_t mss = (uint16_t)(64 + (i * 13) % 400);
    m[2] = (uint8_t)(mss >> 8);
    m[3] = (uint8_t)mss;
    m[4] = (uint8_t)(l4 >> 8);
    m[5] = (uint8_t)l4;
    m[7] = udp ? 6 : 16;
    m[8] = 8;
    m[9] = (uint8_t)(i & 1 ? 0 : 64);
    m[10] = 0x80;
    m[11] = (uint8_t)(i >> 3 & 3) | (uint8_t)(((i * 7) % 64) << 2);
    f[0] = 2;
    f[6] = 2;
    f[11] = 1;
    if (kind == 4) {
        f[12] = 0x81;
        f[15] = 7;
    }
    f[l3 - 2] = v6 ? 0x86 : 0x08;
    f[l3 - 1] = v6 ? 0xdd : 0x00;
    uint8_t *ip = f + l3;
    size_t l4len = l4hl + plen;
    if (v6) {
        ip[0] = 0x60;
        ip[4] = (uint8_t)(l4len >> 8);
        ip[5] = (uint8_t)l4len;
        ip[6] = udp ? 17 : 6;
        ip[7] = 64;
        ip[8] = 0xfd;
        ip[23] = 1;
        ip[24] = 0xfd;
        ip[39] = 2;
    } else {
        ip[0] = (uint8_t)(0x40 | iphl / 4);
        ip[2] = (uint8_t)((iphl + l4len) >> 8);
        ip[3] = (uint8_t)(iphl + l4len);
        ip[4] = (uint8_t)i;
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = udp ? 17 : 6;
        ip[12] = 10;
        ip[15] = 1;
        ip[16] = 10;
        ip[19] = 2;
        if (iphl > 20)
            ip[20] = ip[21] = ip[22] = ip[23] = 1;
        uint16_t c = (uint16_t)~ref_sum(ip, iphl, 0);
        ip[10] = (uint8_t)(c >> 8);
        ip[11] = (uint8_t)c;
    }
    uint8_t *th = f + l4;
    th[0] = 0x9c;
    th[1] = 0x40;
    th[2] = 0x14;
    th[3] = 0x51;
    if (udp) {
        th[4] = (uint8_t)(l4len >> 8);
        th[5] = (uint8_t)l4len;
    } else {
        th[4] = (uint8_t)i;
        th[11] = 1;
        th[12] = 0x80;
        th[13] = 0x18;
        th[14] = 2;
        th[20] = th[21] = 1;
        th[22] = 8;
        th[23] = 10;
        th[27] = 7;
    }
    for (size_t j = 0; j < plen; j++)
        f[l4 + l4hl + j] = (uint8_t)(j * 31 + i);
    return len;
}
