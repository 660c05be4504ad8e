/* libFuzzer target for the VXLAN decoders.
 *
 * Every input goes through the full-frame parser (with several flag and port settings) and the
 * UDP-payload decoder. Whatever parses is re-encoded with the encoder and parsed again; the
 * fields must survive the round trip, and where the input is in the encoder's canonical form
 * (no IPv4 options, no padding, zero reserved bits, ...) the rebuilt frame must equal the input
 * byte for byte. A broken invariant traps. The checksum routine is also compared with a plain
 * RFC 1071 loop on the same bytes.
 */
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/types.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t ref_sum(const uint8_t *p, size_t len)
{
    uint64_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += rd16(p + i);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint32_t)s;
}

/* Is @frame exactly what our encoder would write for @info? */
static bool canonical(const uint8_t *frame, size_t len, const struct vnet_encap_info *info,
                      size_t hl)
{
    const uint8_t *ip = frame + VNET_ETH_HLEN;
    const uint8_t *vx = frame + info->inner_off - VNET_VXLAN_HLEN;
    if (info->inner_off != hl || len != hl + info->inner_len)
        return false; /* IPv4 options, Ethernet padding or a trimmed UDP length */
    if (info->ttl == 0 || info->dst.port == 0)
        return false; /* the encoder maps 0 to its defaults */
    if (vx[0] != VNET_VXLAN_FLAG_I || vx[1] || vx[2] || vx[3] || vx[7])
        return false; /* reserved bits that the encoder writes as zero */
    if (hl == VNET_ENCAP_OVERHEAD_V4 && (rd16(ip + 6) & ~0x4000u))
        return false; /* the reserved IPv4 flag */
    return true;
}

static void roundtrip(const uint8_t *frame, size_t len, unsigned flags,
                      const struct vnet_encap_info *info)
{
    bool v6 = info->src.ip.family == VNET_AF_INET6;
    size_t hl = v6 ? VNET_ENCAP_OVERHEAD_V6 : VNET_ENCAP_OVERHEAD_V4;

    CHECK(info->src.ip.family == info->dst.ip.family);
    CHECK(v6 || info->src.ip.family == VNET_AF_INET);
    CHECK(info->vni <= VNET_VNI_MAX);
    CHECK(info->vxlan_flags & VNET_VXLAN_FLAG_I);
    CHECK(info->inner_len >= VNET_INNER_MIN);
    CHECK(info->inner_off >= hl);
    CHECK(info->inner_off <= len && info->inner_len <= len - info->inner_off);
    CHECK(v6 || info->flowlabel == 0);
    CHECK(info->flowlabel <= 0xfffff);

    struct vnet_encap_cfg cfg;
    struct vnet_encap_tmpl t;
    memset(&cfg, 0, sizeof(cfg));
    cfg.src_mac = info->src_mac;
    cfg.dst_mac = info->dst_mac;
    cfg.src = info->src;
    cfg.dst = info->dst;
    cfg.ttl = info->ttl;
    cfg.tos = info->tos;
    cfg.flowlabel = info->flowlabel;
    if (info->df)
        cfg.flags |= VNET_ENCAP_F_DF;
    if (!v6 && info->udp_csum)
        cfg.flags |= VNET_ENCAP_F_UDP_CSUM;
    if (v6 && !info->udp_csum)
        cfg.flags |= VNET_ENCAP_F_UDP6_ZERO_CSUM;
    CHECK(vnet_encap_tmpl_init(&cfg, &t) == 0);
    CHECK(vnet_encap_tmpl_len(&t) == hl);

    uint8_t *buf = malloc(hl + info->inner_len);
    CHECK(buf != NULL);
    memcpy(buf + hl, frame + info->inner_off, info->inner_len);
    int off = vnet_encap_push(&t, buf, hl, info->inner_len, info->vni, info->src.port, info->ip_id);
    CHECK(off == 0);
    size_t nlen = hl + info->inner_len;

    struct vnet_encap_info again;
    unsigned pflags = v6 && !info->udp_csum ? VNET_DECAP_F_ZERO_CSUM6 : 0;
    CHECK(vnet_encap_parse(buf, nlen, 0, pflags, NULL, &again, NULL) == 0);
    CHECK(again.vni == info->vni);
    CHECK(again.src.port == info->src.port);
    CHECK(vnet_ip_eq(&again.src.ip, &info->src.ip) && vnet_ip_eq(&again.dst.ip, &info->dst.ip));
    CHECK(vnet_mac_eq(&again.src_mac, &info->src_mac));
    CHECK(vnet_mac_eq(&again.dst_mac, &info->dst_mac));
    CHECK(again.tos == info->tos && again.df == info->df && again.ip_id == info->ip_id);
    CHECK(again.flowlabel == info->flowlabel);
    CHECK((again.udp_csum != 0) == (info->udp_csum != 0));
    CHECK(again.inner_off == hl && again.inner_len == info->inner_len);
    CHECK(memcmp(buf + hl, frame + info->inner_off, info->inner_len) == 0);

    if (!(flags & (VNET_DECAP_F_NO_UDP_CSUM | VNET_DECAP_F_NO_IP_CSUM)) &&
        canonical(frame, len, info, hl)) {
        /* A checksum of 0 and 0xffff verify alike; the IPv4 header one may differ only so. */
        size_t ck = VNET_ETH_HLEN + 10;
        if (!v6) {
            uint16_t a = rd16(frame + ck), b = rd16(buf + ck);
            CHECK(a == b || (a ^ b) == 0xffff);
            CHECK(memcmp(buf, frame, ck) == 0);
            CHECK(memcmp(buf + ck + 2, frame + ck + 2, nlen - ck - 2) == 0);
        } else {
            CHECK(memcmp(buf, frame, nlen) == 0);
        }
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned flag_sets[] = {
        0,
        VNET_DECAP_F_ZERO_CSUM6,
        VNET_DECAP_F_NO_UDP_CSUM | VNET_DECAP_F_NO_IP_CSUM | VNET_DECAP_F_ZERO_CSUM6,
    };
    /* An exact-size copy, so that ASan sees a read one past the end even if the caller's
     * buffer happens to be larger. */
    uint8_t *frame = malloc(size ? size : 1);
    CHECK(frame != NULL);
    if (size)
        memcpy(frame, data, size);

    struct vnet_drop_stats st;
    memset(&st, 0, sizeof(st));
    uint64_t drops = 0;
    for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
        for (int p = 0; p < 2; p++) {
            struct vnet_encap_info info;
            enum vnet_drop_reason why = VNET_DROP__MAX;
            uint16_t dport = p ? VNET_VXLAN_PORT : 0;
            int rc = vnet_encap_parse(frame, size, dport, flag_sets[i], &st, &info, &why);
            if (rc == 0) {
                CHECK(why == VNET_DROP_NONE);
                if (dport)
                    CHECK(info.dst.port == dport);
                roundtrip(frame, size, flag_sets[i], &info);
            } else {
                CHECK(why > VNET_DROP_NONE && why < VNET_DROP__MAX);
                CHECK(rc == vnet_drop_reason_code(why));
                drops++;
                CHECK(st.count[why] > 0);
            }
        }
    }
    uint64_t total = 0;
    for (int r = 0; r < VNET_DROP__MAX; r++)
        total += st.count[r];
    CHECK(total == drops && st.count[VNET_DROP_NONE] == 0);

    /* UDP-payload level on the same bytes. */
    uint32_t vni = 0xffffffffu;
    enum vnet_drop_reason why = VNET_DROP__MAX;
    int rc = vnet_vxlan_decode(frame, size, NULL, &vni, &why);
    if (rc == 0) {
        CHECK(size >= VNET_VXLAN_HLEN + VNET_INNER_MIN && vni <= VNET_VNI_MAX);
        uint8_t hdr[VNET_VXLAN_HLEN];
        CHECK(vnet_vxlan_push(hdr, VNET_VXLAN_HLEN, vni) == 0);
        uint32_t vni2 = 0;
        uint8_t *copy = malloc(size);
        CHECK(copy != NULL);
        memcpy(copy, hdr, VNET_VXLAN_HLEN);
        memcpy(copy + VNET_VXLAN_HLEN, frame + VNET_VXLAN_HLEN, size - VNET_VXLAN_HLEN);
        CHECK(vnet_vxlan_decode(copy, size, NULL, &vni2, NULL) == 0 && vni2 == vni);
        CHECK((frame[4] << 16 | frame[5] << 8 | frame[6]) == (int)vni);
        free(copy);
    } else {
        CHECK(why == VNET_DROP_TRUNC_VXLAN || why == VNET_DROP_BAD_VXLAN_FLAGS ||
              why == VNET_DROP_TRUNC_INNER);
        CHECK(rc == vnet_drop_reason_code(why));
    }

    /* The checksum routine against the textbook loop, at two alignments. */
    uint32_t a = vnet_csum_partial(frame, size, 0), b = ref_sum(frame, size);
    CHECK(vnet_csum_fold(a) == vnet_csum_fold(b));
    if (size > 1) {
        uint32_t c = vnet_csum_partial(frame + 1, size - 1, 0), d = ref_sum(frame + 1, size - 1);
        CHECK(vnet_csum_fold(c) == vnet_csum_fold(d));
    }

    free(frame);
    return 0;
}

/* Seeds for fuzz_driver.c's random mode (libFuzzer ignores this): valid frames from the
 * encoder, over IPv4 and IPv6, with and without UDP checksum, of varied inner lengths, so the
 * driver's mutations start from inputs that get past the first checks. */
size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    static const char *const addrs[][2] = {{"10.0.0.1", "10.0.0.2"}, {"fd00::1", "fd00::2"}};
    static const unsigned tflags[] = {0, VNET_ENCAP_F_UDP_CSUM | VNET_ENCAP_F_DF,
                                      VNET_ENCAP_F_UDP6_ZERO_CSUM};
    struct vnet_encap_cfg cfg;
    struct vnet_encap_tmpl t;
    int v6 = (int)(i & 1);
    size_t hl = v6 ? VNET_ENCAP_OVERHEAD_V6 : VNET_ENCAP_OVERHEAD_V4;
    size_t inner = VNET_INNER_MIN + (size_t)(i * 37u % 200u);
    if (cap < hl + inner)
        return 0;
    memset(&cfg, 0, sizeof(cfg));
    cfg.src_mac.b[0] = 2;
    cfg.src_mac.b[5] = (uint8_t)i;
    cfg.dst_mac.b[0] = 2;
    cfg.dst_mac.b[5] = 0xfe;
    if (vnet_ip_parse(addrs[v6][0], &cfg.src.ip) || vnet_ip_parse(addrs[v6][1], &cfg.dst.ip))
        return 0;
    cfg.tos = (uint8_t)(i * 4);
    cfg.flowlabel = v6 ? (i * 7919u) & 0xfffffu : 0;
    cfg.flags = tflags[(i >> 1) % 3];
    if (vnet_encap_tmpl_init(&cfg, &t))
        return 0;
    for (size_t k = 0; k < inner; k++)
        buf[hl + k] = (uint8_t)(k * 13 + i);
    int off = vnet_encap_push(&t, buf, hl, inner, i & VNET_VNI_MAX, vnet_encap_src_port(i, 0, 0),
                              (uint16_t)i);
    return off == 0 ? hl + inner : 0;
}
