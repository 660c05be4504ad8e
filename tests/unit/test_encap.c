/* Unit tests for the VXLAN codec (vnet/encap.h).
 *
 * The fixtures in data/ were recorded from the Linux vxlan driver (see data/README.md). Each
 * captured frame is parsed, then rebuilt with our encoder from the parsed fields and compared
 * byte for byte, which checks both directions against an independent implementation. The
 * malformed-input tests make every drop reason happen at least once, on buffers allocated to
 * the exact length so that ASan catches any read past the end.
 *
 * Usage: test_encap [DATADIR]   (or VNET_TEST_DATA=DATADIR)
 */
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/types.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *data_dir;

/* ---- Helpers ---- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint32_t rng_state = 0x12345678;

static uint32_t rnd(void)
{
    /* xorshift32: deterministic, so failures reproduce */
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

/* Reference checksum: the textbook RFC 1071 loop over big-endian words. */
static uint32_t ref_sum(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += rd16(p + i);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return s;
}

static void fix_ip4_csum(uint8_t *frame)
{
    uint8_t *ip = frame + VNET_ETH_HLEN;
    size_t hlen = (size_t)(ip[0] & 0xf) * 4;
    wr16(ip + 10, 0);
    wr16(ip + 10, vnet_csum(ip, hlen));
}

/* ---- pcap reader ---- */

struct pcap_frame {
    uint8_t *data;
    size_t len;
};

struct pcap_file {
    struct pcap_frame f[64];
    int n;
};

static uint32_t rd32(const uint8_t *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

/* Read a classic pcap file (microsecond or nanosecond timestamps, either byte order, link
 * type Ethernet). Fails the test on anything else. */
static void pcap_load(const char *name, struct pcap_file *pf)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s (pass the data dir as argv[1] or VNET_TEST_DATA)",
                  path);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    ck_assert_uint_ge(n, 24);
    uint32_t magic;
    memcpy(&magic, buf, 4);
    int swap;
    if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du)
        swap = 0;
    else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u)
        swap = 1;
    else
        ck_abort_msg("%s: bad pcap magic 0x%08x", path, magic);
    ck_assert_uint_eq(rd32(buf + 20, swap), 1); /* LINKTYPE_ETHERNET */
    size_t off = 24;
    pf->n = 0;
    while (off < n) {
        ck_assert_uint_ge(n - off, 16);
        uint32_t incl = rd32(buf + off + 8, swap), orig = rd32(buf + off + 12, swap);
        off += 16;
        ck_assert_uint_le(incl, n - off);
        ck_assert_uint_eq(incl, orig); /* not cut by the snap length */
        ck_assert_int_lt(pf->n, 64);
        pf->f[pf->n].data = malloc(incl ? incl : 1);
        ck_assert_ptr_nonnull(pf->f[pf->n].data);
        memcpy(pf->f[pf->n].data, buf + off, incl);
        pf->f[pf->n].len = incl;
        pf->n++;
        off += incl;
    }
}

static void pcap_free(struct pcap_file *pf)
{
    for (int i = 0; i < pf->n; i++)
        free(pf->f[i].data);
    pf->n = 0;
}

/* ---- Fixtures from the Linux vxlan driver ---- */

struct fixture {
    const char *file;
    const char *a, *b; /* underlay addresses of the two namespaces */
    bool udp_csum;     /* frames carry a nonzero UDP checksum */
    uint8_t tos, ttl;
    bool df;
    uint32_t flowlabel;
    bool fixed_range; /* "srcport 49152 65535" was given */
};

static const struct fixture fixtures[] = {
    {"vxlan4_nocsum.pcap", "10.99.0.1", "10.99.0.2", false, 0, 64, false, 0, false},
    {"vxlan4_csum.pcap", "10.99.0.1", "10.99.0.2", true, 0, 64, false, 0, false},
    {"vxlan4_opts.pcap", "10.99.0.1", "10.99.0.2", true, 0xb8, 17, true, 0, true},
    {"vxlan6_csum.pcap", "fd00:99::1", "fd00:99::2", true, 0, 64, false, 0, false},
    {"vxlan6_zerocsum.pcap", "fd00:99::1", "fd00:99::2", false, 0, 64, false, 0, false},
    {"vxlan6_opts.pcap", "fd00:99::1", "fd00:99::2", true, 0xb8, 17, false, 0x12345, true},
};
#define N_FIXTURES (int)(sizeof(fixtures) / sizeof(fixtures[0]))

START_TEST(t_fixture_roundtrip)
{
    const struct fixture *fx = &fixtures[_i];
    struct pcap_file pf;
    struct vnet_ip a, b;
    struct vnet_mac ma, mb;
    pcap_load(fx->file, &pf);
    ck_assert_int_ge(pf.n, 6);
    ck_assert_int_eq(vnet_ip_parse(fx->a, &a), 0);
    ck_assert_int_eq(vnet_ip_parse(fx->b, &b), 0);
    ck_assert_int_eq(vnet_mac_parse("02:00:00:00:00:a1", &ma), 0);
    ck_assert_int_eq(vnet_mac_parse("02:00:00:00:00:b1", &mb), 0);
    bool v6 = a.family == VNET_AF_INET6;
    size_t overhead = v6 ? VNET_ENCAP_OVERHEAD_V6 : VNET_ENCAP_OVERHEAD_V4;
    unsigned pflags = v6 && !fx->udp_csum ? VNET_DECAP_F_ZERO_CSUM6 : 0;
    struct vnet_drop_stats st;
    memset(&st, 0, sizeof(st));
    int big = 0;

    for (int i = 0; i < pf.n; i++) {
        const uint8_t *fr = pf.f[i].data;
        size_t len = pf.f[i].len;
        struct vnet_encap_info info;
        enum vnet_drop_reason why = VNET_DROP__MAX;
        int rc = vnet_encap_parse(fr, len, VNET_VXLAN_PORT, pflags, &st, &info, &why);
        ck_assert_msg(rc == 0, "%s frame %d: %s (%s)", fx->file, i, vnet_err_name(rc),
                      vnet_drop_reason_name(why));
        ck_assert_int_eq(why, VNET_DROP_NONE);
        ck_assert_uint_eq(info.vni, 42);
        ck_assert_uint_eq(info.vxlan_flags, VNET_VXLAN_FLAG_I);
        ck_assert_uint_eq(info.dst.port, VNET_VXLAN_PORT);
        /* Both directions are in the capture. */
        bool fwd = vnet_ip_eq(&info.src.ip, &a);
        ck_assert(vnet_ip_eq(fwd ? &info.dst.ip : &info.src.ip, &b));
        ck_assert(vnet_ip_eq(fwd ? &info.src.ip : &info.dst.ip, &a));
        ck_assert(vnet_mac_eq(&info.src_mac, fwd ? &ma : &mb));
        ck_assert(vnet_mac_eq(&info.dst_mac, fwd ? &mb : &ma));
        ck_assert_uint_eq(info.tos, fx->tos);
        ck_assert_uint_eq(info.ttl, fx->ttl);
        ck_assert_int_eq(info.df, fx->df);
        ck_assert_uint_eq(info.flowlabel, fx->flowlabel);
        ck_assert_int_eq(info.udp_csum != 0, fx->udp_csum);
        if (fx->fixed_range)
            ck_assert_uint_ge(info.src.port, 49152);
        ck_assert_uint_eq(info.inner_off, overhead);
        ck_assert_uint_eq(info.inner_off + info.inner_len, len);
        ck_assert_uint_ge(info.inner_len, VNET_INNER_MIN);
        uint16_t itype = rd16(fr + info.inner_off + 12);
        ck_assert(itype == 0x0806 || itype == 0x0800);
        if (info.inner_len > 1000)
            big++;

        /* UDP-payload level on the same bytes. */
        uint32_t vni = 0;
        ck_assert_int_eq(vnet_vxlan_decode(fr + info.inner_off - VNET_VXLAN_HLEN,
                                           info.inner_len + VNET_VXLAN_HLEN, &st, &vni, NULL),
                         0);
        ck_assert_uint_eq(vni, 42);
        uint8_t vx[VNET_VXLAN_HLEN + VNET_INNER_MIN];
        memcpy(vx + VNET_VXLAN_HLEN, fr + info.inner_off, VNET_INNER_MIN);
        ck_assert_int_eq(vnet_vxlan_push(vx, VNET_VXLAN_HLEN, 42), 0);
        ck_assert_mem_eq(vx, fr + info.inner_off - VNET_VXLAN_HLEN, VNET_VXLAN_HLEN);

        /* Rebuild the whole frame from the parsed fields. */
        struct vnet_encap_cfg cfg;
        struct vnet_encap_tmpl t;
        memset(&cfg, 0, sizeof(cfg));
        cfg.src_mac = info.src_mac;
        cfg.dst_mac = info.dst_mac;
        cfg.src = info.src;
        cfg.dst = info.dst;
        cfg.ttl = info.ttl;
        cfg.tos = info.tos;
        cfg.flowlabel = info.flowlabel;
        if (info.df)
            cfg.flags |= VNET_ENCAP_F_DF;
        if (!v6 && info.udp_csum)
            cfg.flags |= VNET_ENCAP_F_UDP_CSUM;
        if (v6 && !info.udp_csum)
            cfg.flags |= VNET_ENCAP_F_UDP6_ZERO_CSUM;
        ck_assert_int_eq(vnet_encap_tmpl_init(&cfg, &t), 0);
        ck_assert_uint_eq(vnet_encap_tmpl_len(&t), overhead);

        size_t headroom = 128;
        uint8_t *buf = malloc(headroom + info.inner_len);
        ck_assert_ptr_nonnull(buf);
        memset(buf, 0xa5, headroom);
        memcpy(buf + headroom, fr + info.inner_off, info.inner_len);
        int off =
            vnet_encap_push(&t, buf, headroom, info.inner_len, info.vni, info.src.port, info.ip_id);
        ck_assert_int_eq(off, (int)(headroom - overhead));
        ck_assert_msg(memcmp(buf + off, fr, len) == 0, "%s frame %d: rebuilt frame differs",
                      fx->file, i);
        for (int k = 0; k < off; k++) /* nothing written before the new start */
            ck_assert_uint_eq(buf[k], 0xa5);
        free(buf);
    }
    ck_assert_int_ge(big, 1); /* the 1300-byte pings are in there */
    for (int r = 0; r < VNET_DROP__MAX; r++)
        ck_assert_uint_eq(st.count[r], 0);

    if (v6 && !fx->udp_csum) {
        /* Zero-checksum IPv6 frames are dropped unless the caller opted in. */
        enum vnet_drop_reason why;
        int rc = vnet_encap_parse(pf.f[0].data, pf.f[0].len, 0, 0, &st, NULL, &why);
        ck_assert_int_eq(rc, VNET_ECHECKSUM);
        ck_assert_int_eq(why, VNET_DROP_ZERO_UDP_CSUM6);
        ck_assert_uint_eq(st.count[VNET_DROP_ZERO_UDP_CSUM6], 1);
    }
    if (fx->udp_csum) {
        /* One flipped payload bit must be caught. */
        uint8_t *fr = pf.f[pf.n - 1].data;
        size_t len = pf.f[pf.n - 1].len;
        fr[len - 1] ^= 0x10;
        ck_assert_int_eq(vnet_encap_parse(fr, len, 0, 0, &st, NULL, NULL), VNET_ECHECKSUM);
        ck_assert_uint_eq(st.count[VNET_DROP_BAD_UDP_CSUM], 1);
        ck_assert_int_eq(vnet_encap_parse(fr, len, 0, VNET_DECAP_F_NO_UDP_CSUM, &st, NULL, NULL),
                         0);
    }
    pcap_free(&pf);
}
END_TEST

/* ---- Checksums ---- */

START_TEST(t_csum_rfc1071)
{
    /* RFC 1071 section 3 example: the sum of these words is ddf2. */
    const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    ck_assert_uint_eq(vnet_csum_partial(d, sizeof(d), 0), 0xddf2);
    ck_assert_uint_eq(vnet_csum(d, sizeof(d)), 0x220d);
    /* A well-known IPv4 header (checksum b861). */
    uint8_t ip[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                    0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    ck_assert_uint_eq(vnet_csum(ip, sizeof(ip)), 0);
    ip[10] = ip[11] = 0;
    ck_assert_uint_eq(vnet_csum(ip, sizeof(ip)), 0xb861);
    ck_assert_uint_eq(vnet_csum(ip, 0), 0xffff);
    ck_assert_uint_eq(vnet_csum_fold(0x1fffe), 0); /* 0xfffe + 1 = 0xffff */
    ck_assert_uint_eq(vnet_csum_partial(d, 1, 0), 0x0000);
    ck_assert_uint_eq(vnet_csum_partial(d + 2, 1, 0), 0xf200);
}
END_TEST

START_TEST(t_csum_random)
{
    static uint8_t buf[2048 + 8];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rnd();
    for (size_t len = 0; len <= 2048; len += (len < 200 ? 1 : 37)) {
        for (size_t align = 0; align < 8; align++) {
            const uint8_t *p = buf + align;
            uint32_t ref = ref_sum(p, len);
            uint32_t got = vnet_csum_partial(p, len, 0);
            ck_assert_msg(got == ref || (got == 0 && ref == 0xffff) || (got == 0xffff && ref == 0),
                          "len %zu align %zu: %x != %x", len, align, got, ref);
            ck_assert_uint_le(got, 0xffff);
            /* Chained over an even split gives the same sum. */
            size_t cut = (len / 2) & ~(size_t)1;
            uint32_t ch = vnet_csum_partial(p + cut, len - cut, vnet_csum_partial(p, cut, 0));
            ck_assert_uint_eq(vnet_csum_fold(ch), vnet_csum_fold(got));
        }
    }
    /* All ones: many carries. */
    memset(buf, 0xff, sizeof(buf));
    ck_assert_uint_eq(vnet_csum_fold(vnet_csum_partial(buf, 2048, 0)), 0);
    ck_assert_uint_eq(vnet_csum_partial(buf, 2048, 0xffffffffu) <= 0xffff, 1);
}
END_TEST

START_TEST(t_csum_incremental)
{
    uint8_t h[20];
    for (int iter = 0; iter < 20000; iter++) {
        for (int i = 0; i < 20; i++)
            h[i] = (uint8_t)rnd();
        wr16(h + 10, 0);
        uint16_t c = vnet_csum(h, 20);
        int w = (int)(rnd() % 10);
        if (w == 5)
            w = 4; /* not the checksum word itself */
        uint16_t oldv = rd16(h + 2 * w), newv = (uint16_t)rnd();
        if (iter % 7 == 0)
            newv = oldv; /* no change */
        wr16(h + 2 * w, newv);
        uint16_t inc = vnet_csum_update16(c, oldv, newv);
        wr16(h + 10, inc);
        ck_assert_uint_eq(vnet_csum(h, 20), 0); /* still verifies */

        /* 32-bit: the source address */
        uint32_t o32 = (uint32_t)rd16(h + 12) << 16 | rd16(h + 14), n32 = rnd();
        wr16(h + 12, (uint16_t)(n32 >> 16));
        wr16(h + 14, (uint16_t)n32);
        wr16(h + 10, vnet_csum_update32(inc, o32, n32));
        ck_assert_uint_eq(vnet_csum(h, 20), 0);
    }
}
END_TEST

START_TEST(t_csum_pseudo)
{
    uint8_t s4[4] = {10, 0, 0, 1}, d4[4] = {10, 0, 0, 2};
    uint8_t ph4[12] = {10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0x12, 0x34};
    ck_assert_uint_eq(vnet_csum_fold(vnet_csum_pseudo4(s4, d4, 17, 0x1234)),
                      vnet_csum(ph4, sizeof(ph4)));
    uint8_t s6[16], d6[16], ph6[40];
    for (int i = 0; i < 16; i++) {
        s6[i] = (uint8_t)rnd();
        d6[i] = (uint8_t)rnd();
    }
    memset(ph6, 0, sizeof(ph6));
    memcpy(ph6, s6, 16);
    memcpy(ph6 + 16, d6, 16);
    ph6[33] = 0x01;
    ph6[34] = 0x23;
    ph6[35] = 0x45;
    ph6[39] = 17;
    ck_assert_uint_eq(vnet_csum_fold(vnet_csum_pseudo6(s6, d6, 17, 0x12345)),
                      vnet_csum(ph6, sizeof(ph6)));
}
END_TEST

/* ---- Source port ---- */

START_TEST(t_src_port)
{
    ck_assert_uint_eq(vnet_encap_src_port(0, 0, 0), VNET_ENCAP_SPORT_MIN);
    ck_assert_uint_eq(vnet_encap_src_port(12345, 5000, 5000), 5000);
    ck_assert_uint_eq(vnet_encap_src_port(0x80000000u, 1000, 2999),
                      vnet_encap_src_port(0x80000000u, 2999, 1000));
    static uint8_t seen[65536];
    int distinct = 0;
    for (uint32_t i = 0; i < 100000; i++) {
        uint32_t h = rnd();
        uint16_t p = vnet_encap_src_port(h, 0, 0);
        ck_assert_uint_ge(p, VNET_ENCAP_SPORT_MIN);
        ck_assert_uint_le(p, VNET_ENCAP_SPORT_MAX);
        ck_assert_uint_eq(p, vnet_encap_src_port(h, 0, 0)); /* a flow keeps its port */
        if (!seen[p]++)
            distinct++;
        uint16_t q = vnet_encap_src_port(h, 32768, 60999);
        ck_assert_uint_ge(q, 32768);
        ck_assert_uint_le(q, 60999);
    }
    ck_assert_int_gt(distinct, 16000); /* of 16384: spread over the whole range */
    /* Weak hashes (a counter) still spread, and a two-port range uses both ends. */
    memset(seen, 0, sizeof(seen));
    distinct = 0;
    for (uint32_t i = 0; i < 1000; i++)
        if (!seen[vnet_encap_src_port(i, 0, 0)]++)
            distinct++;
    ck_assert_int_gt(distinct, 900);
    int lo = 0, hi = 0;
    for (uint32_t i = 0; i < 64; i++) {
        uint16_t p = vnet_encap_src_port(i, 65534, 65535);
        lo += p == 65534;
        hi += p == 65535;
    }
    ck_assert_int_eq(lo + hi, 64);
    ck_assert_int_gt(lo, 0);
    ck_assert_int_gt(hi, 0);
}
END_TEST

/* ---- Build helpers for the malformed-input tests ---- */

struct built {
    uint8_t buf[2048];
    int off;
    size_t len;
};

static void build(struct built *b, bool v6, unsigned tflags, size_t inner_len)
{
    struct vnet_encap_cfg cfg;
    struct vnet_encap_tmpl t;
    memset(&cfg, 0, sizeof(cfg));
    ck_assert_int_eq(vnet_mac_parse("02:00:00:00:00:01", &cfg.src_mac), 0);
    ck_assert_int_eq(vnet_mac_parse("02:00:00:00:00:02", &cfg.dst_mac), 0);
    ck_assert_int_eq(vnet_endpoint_parse(v6 ? "[fd00::1]:1" : "10.0.0.1:1", &cfg.src), 0);
    ck_assert_int_eq(vnet_endpoint_parse(v6 ? "[fd00::2]:4789" : "10.0.0.2:4789", &cfg.dst), 0);
    cfg.flags = tflags;
    ck_assert_int_eq(vnet_encap_tmpl_init(&cfg, &t), 0);
    size_t headroom = 128;
    ck_assert_uint_le(headroom + inner_len, sizeof(b->buf));
    for (size_t i = 0; i < inner_len; i++)
        b->buf[headroom + i] = (uint8_t)(i * 7 + 3);
    b->off = vnet_encap_push(&t, b->buf, headroom, inner_len, 4242, 50000, 777);
    ck_assert_int_ge(b->off, 0);
    b->len = vnet_encap_tmpl_len(&t) + inner_len;
}

static uint8_t *frame_of(struct built *b)
{
    return b->buf + b->off;
}

static struct vnet_drop_stats g_st;

/* Parse a copy of exactly @len bytes (so ASan sees any over-read) and expect a drop for
 * @want, counted once in g_st. */
static void expect_drop_(const uint8_t *fr, size_t len, uint16_t dport, unsigned flags,
                         enum vnet_drop_reason want, int line)
{
    uint8_t *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, fr, len);
    struct vnet_drop_stats before = g_st;
    enum vnet_drop_reason why = VNET_DROP_NONE;
    struct vnet_encap_info info;
    int rc = vnet_encap_parse(copy, len, dport, flags, &g_st, &info, &why);
    free(copy);
    ck_assert_msg(why == want, "line %d: reason %s, want %s (rc %s)", line,
                  vnet_drop_reason_name(why), vnet_drop_reason_name(want), vnet_err_name(rc));
    ck_assert_int_eq(rc, vnet_drop_reason_code(want));
    ck_assert_int_lt(rc, 0);
    for (int r = 0; r < VNET_DROP__MAX; r++)
        ck_assert_uint_eq(g_st.count[r] - before.count[r], r == (int)want ? 1 : 0);
    /* Without stats or reason pointers it must fail the same way. */
    copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, fr, len);
    ck_assert_int_eq(vnet_encap_parse(copy, len, dport, flags, NULL, NULL, NULL), rc);
    free(copy);
}
#define expect_drop(fr, len, dport, flags, want) expect_drop_(fr, len, dport, flags, want, __LINE__)

static void expect_ok(const uint8_t *fr, size_t len, unsigned flags, struct vnet_encap_info *info)
{
    uint8_t *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, fr, len);
    enum vnet_drop_reason why = VNET_DROP__MAX;
    int rc = vnet_encap_parse(copy, len, VNET_VXLAN_PORT, flags, NULL, info, &why);
    free(copy);
    ck_assert_msg(rc == 0, "rc %s reason %s", vnet_err_name(rc), vnet_drop_reason_name(why));
    ck_assert_int_eq(why, VNET_DROP_NONE);
}

/* ---- Malformed input: every reason at least once ---- */

START_TEST(t_drop_reasons)
{
    struct built b;
    uint8_t *f, *ip, *udp;
    memset(&g_st, 0, sizeof(g_st));

    /* Ethernet */
    build(&b, false, 0, 64);
    f = frame_of(&b);
    for (size_t l = 0; l < VNET_ETH_HLEN; l++)
        expect_drop(f, l, 0, 0, VNET_DROP_TRUNC_ETH);
    wr16(f + 12, 0x0806);
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_ETHERTYPE);
    wr16(f + 12, 0x8100); /* VLAN tags are not parsed */
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_ETHERTYPE);

    /* IPv4 */
    build(&b, false, VNET_ENCAP_F_UDP_CSUM, 64);
    f = frame_of(&b);
    ip = f + VNET_ETH_HLEN;
    udp = ip + VNET_IP4_HLEN;
    for (size_t l = VNET_ETH_HLEN; l < VNET_ETH_HLEN + VNET_IP4_HLEN; l++)
        expect_drop(f, l, 0, 0, VNET_DROP_TRUNC_IP);
    for (size_t l = VNET_ETH_HLEN + VNET_IP4_HLEN; l < b.len; l++)
        expect_drop(f, l, 0, 0, VNET_DROP_TRUNC_IP); /* total length beyond the frame */
    ip[0] = 0x65;
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_IP_VERSION);
    ip[0] = 0x44;
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_IHL);
    ip[0] = 0x40;
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_IHL);
    ip[0] = 0x4f; /* 60-byte header in a 34-byte buffer */
    expect_drop(f, VNET_ETH_HLEN + 40, 0, 0, VNET_DROP_TRUNC_IP);
    ip[0] = 0x45;
    wr16(ip + 2, 19);
    fix_ip4_csum(f);
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_IP_LEN);
    build(&b, false, VNET_ENCAP_F_UDP_CSUM, 64);
    f = frame_of(&b);
    ip = f + VNET_ETH_HLEN;
    ip[4] ^= 1; /* ID changed, checksum not */
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_IP_CSUM);
    ck_assert_int_eq(vnet_encap_parse(f, b.len, 0, VNET_DECAP_F_NO_IP_CSUM, NULL, NULL, NULL), 0);
    wr16(ip + 6, 0x2000); /* MF */
    fix_ip4_csum(f);
    expect_drop(f, b.len, 0, 0, VNET_DROP_IP_FRAGMENT);
    wr16(ip + 6, 0x4000 | 185); /* DF is fine, an offset is not */
    fix_ip4_csum(f);
    expect_drop(f, b.len, 0, 0, VNET_DROP_IP_FRAGMENT);
    wr16(ip + 6, 0x4000);
    fix_ip4_csum(f);
    expect_ok(f, b.len, 0, NULL);
    ip[9] = 6;
    fix_ip4_csum(f);
    expect_drop(f, b.len, 0, 0, VNET_DROP_NOT_UDP);
    ip[9] = 17;
    fix_ip4_csum(f);

    /* UDP over IPv4 */
    udp = ip + VNET_IP4_HLEN;
    wr16(ip + 2, VNET_IP4_HLEN + 7);
    fix_ip4_csum(f);
    expect_drop(f, VNET_ETH_HLEN + VNET_IP4_HLEN + 7, 0, 0, VNET_DROP_TRUNC_UDP);
    wr16(ip + 2, VNET_IP4_HLEN);
    fix_ip4_csum(f);
    expect_drop(f, VNET_ETH_HLEN + VNET_IP4_HLEN, 0, 0, VNET_DROP_TRUNC_UDP);
    build(&b, false, VNET_ENCAP_F_UDP_CSUM, 64);
    f = frame_of(&b);
    ip = f + VNET_ETH_HLEN;
    udp = ip + VNET_IP4_HLEN;
    uint16_t ulen = rd16(udp + 4);
    wr16(udp + 4, 7);
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_UDP_LEN);
    wr16(udp + 4, (uint16_t)(ulen + 1));
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_UDP_LEN);
    wr16(udp + 4, ulen);
    expect_drop(f, b.len, 8472, 0, VNET_DROP_WRONG_PORT);
    expect_ok(f, b.len, 0, NULL);
    f[b.len - 1] ^= 0xff;
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_UDP_CSUM);
    wr16(udp + 6, 0); /* IPv4: zero means "no checksum" */
    expect_ok(f, b.len, 0, NULL);

    /* VXLAN over IPv4, no UDP checksum so the lengths can be edited freely */
    build(&b, false, 0, 64);
    f = frame_of(&b);
    ip = f + VNET_ETH_HLEN;
    udp = ip + VNET_IP4_HLEN;
    for (uint16_t vl = 0; vl < VNET_VXLAN_HLEN; vl++) {
        wr16(ip + 2, (uint16_t)(VNET_IP4_HLEN + VNET_UDP_HLEN + vl));
        fix_ip4_csum(f);
        wr16(udp + 4, (uint16_t)(VNET_UDP_HLEN + vl));
        expect_drop(f, VNET_ETH_HLEN + VNET_IP4_HLEN + VNET_UDP_HLEN + vl, 0, 0,
                    VNET_DROP_TRUNC_VXLAN);
    }
    for (uint16_t il = 0; il < VNET_INNER_MIN; il++) {
        uint16_t ul = (uint16_t)(VNET_UDP_HLEN + VNET_VXLAN_HLEN + il);
        wr16(ip + 2, (uint16_t)(VNET_IP4_HLEN + ul));
        fix_ip4_csum(f);
        wr16(udp + 4, ul);
        expect_drop(f, VNET_ETH_HLEN + VNET_IP4_HLEN + ul, 0, 0, VNET_DROP_TRUNC_INNER);
    }
    build(&b, false, 0, 64);
    f = frame_of(&b);
    udp = f + VNET_ETH_HLEN + VNET_IP4_HLEN;
    udp[8] = 0x00;
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_VXLAN_FLAGS);
    udp[8] = 0xf7; /* every flag but I */
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_VXLAN_FLAGS);

    /* IPv6 */
    build(&b, true, 0, 64);
    f = frame_of(&b);
    ip = f + VNET_ETH_HLEN;
    udp = ip + VNET_IP6_HLEN;
    for (size_t l = VNET_ETH_HLEN; l < VNET_ETH_HLEN + VNET_IP6_HLEN; l++)
        expect_drop(f, l, 0, 0, VNET_DROP_TRUNC_IP);
    for (size_t l = VNET_ETH_HLEN + VNET_IP6_HLEN; l < b.len; l++)
        expect_drop(f, l, 0, 0, VNET_DROP_TRUNC_IP);
    ip[0] = 0x45;
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_IP_VERSION);
    ip[0] = 0x60;
    ip[6] = 0; /* hop-by-hop options */
    expect_drop(f, b.len, 0, 0, VNET_DROP_NOT_UDP);
    ip[6] = 44; /* fragment header */
    expect_drop(f, b.len, 0, 0, VNET_DROP_NOT_UDP);
    ip[6] = 17;
    wr16(ip + 4, 7);
    expect_drop(f, b.len, 0, 0, VNET_DROP_TRUNC_UDP);
    wr16(ip + 4, 0); /* jumbogram marker: unsupported */
    expect_drop(f, b.len, 0, 0, VNET_DROP_TRUNC_UDP);
    wr16(ip + 4, (uint16_t)(b.len - VNET_ETH_HLEN - VNET_IP6_HLEN));
    expect_ok(f, b.len, 0, NULL);
    wr16(udp + 4, (uint16_t)(rd16(udp + 4) + 1));
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_UDP_LEN);
    wr16(udp + 4, (uint16_t)(rd16(udp + 4) - 1));
    f[b.len - 3] ^= 0x01;
    expect_drop(f, b.len, 0, 0, VNET_DROP_BAD_UDP_CSUM);
    expect_ok(f, b.len, VNET_DECAP_F_NO_UDP_CSUM, NULL);
    f[b.len - 3] ^= 0x01;
    expect_ok(f, b.len, 0, NULL);
    wr16(udp + 6, 0);
    expect_drop(f, b.len, 0, 0, VNET_DROP_ZERO_UDP_CSUM6);
    expect_drop(f, b.len, 0, VNET_DECAP_F_NO_UDP_CSUM, VNET_DROP_ZERO_UDP_CSUM6);
    expect_ok(f, b.len, VNET_DECAP_F_ZERO_CSUM6, NULL);
    expect_drop(f, b.len, 4790, VNET_DECAP_F_ZERO_CSUM6, VNET_DROP_WRONG_PORT);

    /* Every reason was produced and counted, and has its own name. */
    for (int r = 1; r < VNET_DROP__MAX; r++)
        ck_assert_msg(g_st.count[r] > 0, "reason %s never produced",
                      vnet_drop_reason_name((enum vnet_drop_reason)r));
    ck_assert_uint_eq(g_st.count[VNET_DROP_NONE], 0);

    /* Summing per-thread stats */
    struct vnet_drop_stats sum;
    memset(&sum, 0, sizeof(sum));
    vnet_drop_stats_add(&sum, &g_st);
    vnet_drop_stats_add(&sum, &g_st);
    for (int r = 0; r < VNET_DROP__MAX; r++)
        ck_assert_uint_eq(sum.count[r], 2 * g_st.count[r]);
}
END_TEST

START_TEST(t_vxlan_payload)
{
    struct vnet_drop_stats st;
    enum vnet_drop_reason why;
    uint32_t vni = 0;
    uint8_t buf[8 + 64];
    memset(&st, 0, sizeof(st));
    memset(buf, 0xee, sizeof(buf));

    ck_assert_int_eq(vnet_vxlan_push(buf, 7, 1), VNET_ENOSPC);
    ck_assert_int_eq(vnet_vxlan_push(buf, 8, VNET_VNI_MAX + 1), VNET_EINVAL);
    ck_assert_uint_eq(buf[0], 0xee);
    ck_assert_int_eq(vnet_vxlan_push(buf, 8, 0xabcdef), 0);
    const uint8_t want[8] = {0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0};
    ck_assert_mem_eq(buf, want, 8);
    ck_assert_int_eq(vnet_vxlan_decode(buf, sizeof(buf), &st, &vni, &why), 0);
    ck_assert_uint_eq(vni, 0xabcdef);
    ck_assert_int_eq(why, VNET_DROP_NONE);
    ck_assert_int_eq(vnet_vxlan_decode(buf, 8 + 14, NULL, NULL, NULL), 0);

    /* Reserved bits are ignored (RFC 7348: receivers MUST ignore them). */
    buf[0] = 0xff;
    buf[1] = buf[2] = buf[3] = buf[7] = 0xff;
    ck_assert_int_eq(vnet_vxlan_decode(buf, sizeof(buf), &st, &vni, &why), 0);
    ck_assert_uint_eq(vni, 0xabcdef);

    for (size_t l = 0; l < 8; l++) {
        uint8_t *c = malloc(l ? l : 1);
        memcpy(c, buf, l);
        ck_assert_int_eq(vnet_vxlan_decode(c, l, &st, &vni, &why), VNET_ETRUNC);
        ck_assert_int_eq(why, VNET_DROP_TRUNC_VXLAN);
        free(c);
    }
    ck_assert_uint_eq(st.count[VNET_DROP_TRUNC_VXLAN], 8);
    for (size_t l = 8; l < 8 + 14; l++) {
        uint8_t *c = malloc(l);
        memcpy(c, buf, l);
        ck_assert_int_eq(vnet_vxlan_decode(c, l, &st, NULL, &why), VNET_ETRUNC);
        ck_assert_int_eq(why, VNET_DROP_TRUNC_INNER);
        free(c);
    }
    ck_assert_uint_eq(st.count[VNET_DROP_TRUNC_INNER], 14);
    buf[0] = 0xf7;
    ck_assert_int_eq(vnet_vxlan_decode(buf, sizeof(buf), &st, NULL, &why), VNET_EMALFORM);
    ck_assert_int_eq(why, VNET_DROP_BAD_VXLAN_FLAGS);
    ck_assert_uint_eq(st.count[VNET_DROP_BAD_VXLAN_FLAGS], 1);
}
END_TEST

/* ---- Accepted variations ---- */

START_TEST(t_parse_accepts)
{
    struct built b;
    struct vnet_encap_info info;
    uint8_t big[2048];

    /* Ethernet padding after the IP packet is ignored. */
    build(&b, false, VNET_ENCAP_F_UDP_CSUM, 20);
    memcpy(big, frame_of(&b), b.len);
    memset(big + b.len, 0, 10);
    expect_ok(big, b.len + 10, 0, &info);
    ck_assert_uint_eq(info.inner_len, 20);
    ck_assert_uint_eq(info.vni, 4242);
    ck_assert_uint_eq(info.src.port, 50000);
    ck_assert_uint_eq(info.ip_id, 777);

    /* IPv4 options are skipped. */
    build(&b, false, VNET_ENCAP_F_UDP_CSUM, 64);
    uint8_t *f = frame_of(&b);
    memcpy(big, f, VNET_ETH_HLEN + VNET_IP4_HLEN);
    memset(big + VNET_ETH_HLEN + VNET_IP4_HLEN, 1, 8); /* 8 x NOP */
    memcpy(big + VNET_ETH_HLEN + VNET_IP4_HLEN + 8, f + VNET_ETH_HLEN + VNET_IP4_HLEN,
           b.len - VNET_ETH_HLEN - VNET_IP4_HLEN);
    big[VNET_ETH_HLEN] = 0x47;
    wr16(big + VNET_ETH_HLEN + 2, (uint16_t)(rd16(big + VNET_ETH_HLEN + 2) + 8));
    fix_ip4_csum(big);
    expect_ok(big, b.len + 8, 0, &info);
    ck_assert_uint_eq(info.inner_off, VNET_ENCAP_OVERHEAD_V4 + 8);
    ck_assert_uint_eq(info.inner_len, 64);
    ck_assert_mem_eq(big + info.inner_off, f + VNET_ENCAP_OVERHEAD_V4, 64);

    /* A UDP length shorter than the IP payload trims (as Linux does). */
    build(&b, false, 0, 64);
    f = frame_of(&b);
    wr16(f + VNET_ETH_HLEN + VNET_IP4_HLEN + 4, (uint16_t)(VNET_UDP_HLEN + VNET_VXLAN_HLEN + 30));
    expect_ok(f, b.len, 0, &info);
    ck_assert_uint_eq(info.inner_len, 30);

    /* VXLAN reserved bits set. */
    build(&b, true, 0, 64);
    f = frame_of(&b);
    uint8_t *vx = f + VNET_ETH_HLEN + VNET_IP6_HLEN + VNET_UDP_HLEN;
    ck_assert_uint_eq(vx[0], 0x08);
    /* Change bytes covered by the UDP checksum and patch it incrementally (RFC 1624). */
    uint8_t *uc = vx - 2;
    uint16_t c = rd16(uc);
    uint16_t o1 = rd16(vx), o2 = rd16(vx + 6);
    wr16(vx, 0xffff);
    wr16(vx + 6, (uint16_t)(o2 | 0xff));
    c = vnet_csum_update16(c, o1, 0xffff);
    c = vnet_csum_update16(c, o2, (uint16_t)(o2 | 0xff));
    wr16(uc, c);
    expect_ok(f, b.len, 0, &info);
    ck_assert_uint_eq(info.vni, 4242);
    ck_assert_uint_eq(info.vxlan_flags, 0xff);

    /* Any destination port when dport is 0. */
    build(&b, false, 0, 64);
    f = frame_of(&b);
    wr16(f + VNET_ETH_HLEN + VNET_IP4_HLEN + 2, 8472);
    ck_assert_int_eq(vnet_encap_parse(f, b.len, 0, 0, NULL, &info, NULL), 0);
    ck_assert_uint_eq(info.dst.port, 8472);
}
END_TEST

/* ---- Encoder ---- */

START_TEST(t_push_roundtrip)
{
    static const unsigned flag_sets[][2] = {
        {0, 0}, {VNET_ENCAP_F_UDP_CSUM, 0},       {VNET_ENCAP_F_UDP_CSUM | VNET_ENCAP_F_DF, 0},
        {0, 1}, {VNET_ENCAP_F_UDP6_ZERO_CSUM, 1},
    };
    static uint8_t buf[70 + 9000];
    for (size_t fs = 0; fs < sizeof(flag_sets) / sizeof(flag_sets[0]); fs++) {
        bool v6 = flag_sets[fs][1];
        struct vnet_encap_cfg cfg;
        struct vnet_encap_tmpl t;
        memset(&cfg, 0, sizeof(cfg));
        ck_assert_int_eq(vnet_mac_parse("02:aa:bb:cc:dd:01", &cfg.src_mac), 0);
        ck_assert_int_eq(vnet_mac_parse("02:aa:bb:cc:dd:02", &cfg.dst_mac), 0);
        ck_assert_int_eq(vnet_ip_parse(v6 ? "2001:db8::1" : "192.0.2.1", &cfg.src.ip), 0);
        ck_assert_int_eq(vnet_ip_parse(v6 ? "2001:db8::2" : "192.0.2.2", &cfg.dst.ip), 0);
        cfg.tos = 0x2e;
        cfg.flowlabel = v6 ? 0xabcde : 0;
        cfg.flags = flag_sets[fs][0];
        ck_assert_int_eq(vnet_encap_tmpl_init(&cfg, &t), 0);
        size_t hl = vnet_encap_tmpl_len(&t);
        for (size_t inner = 14; inner <= 9000; inner += (inner < 80 ? 1 : 997)) {
            for (size_t i = 0; i < inner; i++)
                buf[70 + i] = (uint8_t)rnd();
            uint32_t vni = rnd() & VNET_VNI_MAX;
            uint16_t sport = vnet_encap_src_port(rnd(), 0, 0), id = (uint16_t)rnd();
            int off = vnet_encap_push(&t, buf, 70, inner, vni, sport, id);
            ck_assert_int_eq(off, (int)(70 - hl));
            struct vnet_encap_info info;
            unsigned pf =
                v6 && (cfg.flags & VNET_ENCAP_F_UDP6_ZERO_CSUM) ? VNET_DECAP_F_ZERO_CSUM6 : 0;
            int rc =
                vnet_encap_parse(buf + off, hl + inner, VNET_VXLAN_PORT, pf, NULL, &info, NULL);
            ck_assert_int_eq(rc, 0);
            ck_assert_uint_eq(info.vni, vni);
            ck_assert_uint_eq(info.src.port, sport);
            ck_assert_uint_eq(info.dst.port, VNET_VXLAN_PORT);
            ck_assert_uint_eq(info.ttl, 64);
            ck_assert_uint_eq(info.tos, 0x2e);
            ck_assert_uint_eq(info.flowlabel, cfg.flowlabel);
            ck_assert_uint_eq(info.ip_id, v6 ? 0 : id);
            ck_assert_int_eq(info.df, !!(cfg.flags & VNET_ENCAP_F_DF));
            ck_assert(vnet_ip_eq(&info.src.ip, &cfg.src.ip));
            ck_assert(vnet_ip_eq(&info.dst.ip, &cfg.dst.ip));
            ck_assert(vnet_mac_eq(&info.src_mac, &cfg.src_mac));
            ck_assert(vnet_mac_eq(&info.dst_mac, &cfg.dst_mac));
            bool want_csum = v6 ? !(cfg.flags & VNET_ENCAP_F_UDP6_ZERO_CSUM)
                                : !!(cfg.flags & VNET_ENCAP_F_UDP_CSUM);
            ck_assert_int_eq(info.udp_csum != 0, want_csum);
            ck_assert_uint_eq(info.inner_off, hl);
            ck_assert_uint_eq(info.inner_len, inner);
        }
    }
}
END_TEST

START_TEST(t_push_errors)
{
    struct vnet_encap_cfg cfg;
    struct vnet_encap_tmpl t, t2;
    uint8_t buf[128];
    memset(&cfg, 0, sizeof(cfg));
    ck_assert_int_eq(vnet_encap_tmpl_init(&cfg, &t), VNET_EINVAL); /* no family */
    ck_assert_int_eq(vnet_encap_tmpl_init(NULL, &t), VNET_EINVAL);
    ck_assert_int_eq(vnet_encap_tmpl_init(&cfg, NULL), VNET_EINVAL);
    ck_assert_int_eq(vnet_ip_parse("10.0.0.1", &cfg.src.ip), 0);
    ck_assert_int_eq(vnet_ip_parse("fd00::1", &cfg.dst.ip), 0);
    ck_assert_int_eq(vnet_encap_tmpl_init(&cfg, &t), VNET_EINVAL); /* mixed */
    ck_assert_int_eq(vnet_ip_parse("fd00::2", &cfg.src.ip), 0);
    cfg.flowlabel = 0x100000;
    ck_assert_int_eq(vnet_encap_tmpl_init(&cfg, &t), VNET_EINVAL);
    cfg.flowlabel = 0;
    ck_assert_int_eq(vnet_encap_tmpl_init(&cfg, &t), 0);
    ck_assert_uint_eq(vnet_encap_tmpl_len(&t), VNET_ENCAP_OVERHEAD_V6);
    ck_assert_int_eq(vnet_ip_parse("10.0.0.1", &cfg.src.ip), 0);
    ck_assert_int_eq(vnet_ip_parse("10.0.0.2", &cfg.dst.ip), 0);
    ck_assert_int_eq(vnet_encap_tmpl_init(&cfg, &t2), 0);
    ck_assert_uint_eq(vnet_encap_tmpl_len(&t2), VNET_ENCAP_OVERHEAD_V4);

    memset(buf, 0x5a, sizeof(buf));
    ck_assert_int_eq(vnet_encap_push(&t, buf, 69, 14, 1, 1, 1), VNET_ENOSPC);
    ck_assert_int_eq(vnet_encap_push(&t2, buf, 49, 14, 1, 1, 1), VNET_ENOSPC);
    ck_assert_int_eq(vnet_encap_push(&t, buf, 70, 13, 1, 1, 1), VNET_EINVAL);
    ck_assert_int_eq(vnet_encap_push(&t, buf, 70, 14, VNET_VNI_MAX + 1, 1, 1), VNET_EINVAL);
    /* 65535 - 20 - 8 - 8 = 65499 is the largest IPv4 inner frame; IPv6 allows 20 more. */
    ck_assert_int_eq(vnet_encap_push(&t2, buf, 50, 65500, 1, 1, 1), VNET_EMSGSIZE);
    ck_assert_int_eq(vnet_encap_push(&t, buf, 70, 65520, 1, 1, 1), VNET_EMSGSIZE);
    for (size_t i = 0; i < sizeof(buf); i++)
        ck_assert_uint_eq(buf[i], 0x5a); /* nothing written on error */

    /* Exact headroom: the frame starts at offset 0. */
    ck_assert_int_eq(vnet_encap_push(&t2, buf, 50, 64, 7, 49152, 1), 0);
    ck_assert_int_eq(vnet_encap_parse(buf, 114, VNET_VXLAN_PORT, 0, NULL, NULL, NULL), 0);
    /* Default TTL and port. */
    ck_assert_uint_eq(buf[VNET_ETH_HLEN + 8], 64);
    ck_assert_uint_eq(rd16(buf + VNET_ETH_HLEN + VNET_IP4_HLEN + 2), VNET_VXLAN_PORT);
}
END_TEST

START_TEST(t_reason_names)
{
    for (int i = 0; i < VNET_DROP__MAX; i++) {
        const char *n = vnet_drop_reason_name((enum vnet_drop_reason)i);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_ne(n, "unknown");
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(n, vnet_drop_reason_name((enum vnet_drop_reason)j));
        int code = vnet_drop_reason_code((enum vnet_drop_reason)i);
        if (i == VNET_DROP_NONE)
            ck_assert_int_eq(code, 0);
        else
            ck_assert(code == VNET_ETRUNC || code == VNET_EMALFORM || code == VNET_ECHECKSUM);
    }
    ck_assert_str_eq(vnet_drop_reason_name(VNET_DROP__MAX), "unknown");
    ck_assert_str_eq(vnet_drop_reason_name((enum vnet_drop_reason) - 1), "unknown");
    ck_assert_int_eq(vnet_drop_reason_code(VNET_DROP__MAX), VNET_EINVAL);
    ck_assert_str_eq(vnet_drop_reason_name(VNET_DROP_BAD_IP_CSUM), "bad_ip_csum");
    ck_assert_int_eq(VNET_ENCAP_OVERHEAD_V4,
                     VNET_ETH_HLEN + VNET_IP4_HLEN + VNET_UDP_HLEN + VNET_VXLAN_HLEN);
    ck_assert_int_eq(VNET_ENCAP_OVERHEAD_V6,
                     VNET_ETH_HLEN + VNET_IP6_HLEN + VNET_UDP_HLEN + VNET_VXLAN_HLEN);
}
END_TEST

static Suite *encap_suite(void)
{
    Suite *s = suite_create("encap");
    TCase *tc = tcase_create("fixtures");
    tcase_add_loop_test(tc, t_fixture_roundtrip, 0, N_FIXTURES);
    suite_add_tcase(s, tc);
    tc = tcase_create("csum");
    tcase_add_test(tc, t_csum_rfc1071);
    tcase_add_test(tc, t_csum_random);
    tcase_add_test(tc, t_csum_incremental);
    tcase_add_test(tc, t_csum_pseudo);
    suite_add_tcase(s, tc);
    tc = tcase_create("codec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_src_port);
    tcase_add_test(tc, t_drop_reasons);
    tcase_add_test(tc, t_vxlan_payload);
    tcase_add_test(tc, t_parse_accepts);
    tcase_add_test(tc, t_push_roundtrip);
    tcase_add_test(tc, t_push_errors);
    tcase_add_test(tc, t_reason_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    data_dir = argc > 1 ? argv[1] : getenv("VNET_TEST_DATA");
    if (!data_dir)
        data_dir = "tests/unit/data";
    SRunner *sr = srunner_create(encap_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
