/* libFuzzer target for what the raw and xdp backends read from the wire or from an operator
 * before anything else looks at it (libvnet/backend/outer.c, libvnet/csum.c):
 *  - vnet__csum_l4_find / vnet__csum_l4_pending on whole Ethernet frames: never read past the
 * frame, and when a checksum is said to be pending, completing it (vnet_csum_complete, as the
 * datapath does) yields a TCP/UDP checksum that verifies against the pseudo-header, also when the
 *    frame carries padding after the IP packet;
 *  - vnet__outer_parse on the input as an underlay frame: what it accepts lies inside the frame;
 *  - vnet__iface_spec_parse on the input as a spec string: a parsed name is a valid interface name,
 *    and an underlay endpoint has a port.
 * A broken invariant traps. Seeds are well-formed frames with pending checksums (IPv4/IPv6,
 * TCP/UDP, with and without a VLAN tag), which the random mode then mutates.
 */
#include "../../libvnet/backend/outer_int.h"
#include "../../libvnet/csum_int.h"
#include "vnet/encap.h"
#include "vnet/offload.h"
#include "vnet/port.h"

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

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* The L4 checksum of @f verifies against its pseudo-header (the frame's shape was accepted by
 * vnet__csum_l4_pending, so the offsets below are inside it). */
static bool l4_verifies(const uint8_t *f, uint16_t start)
{
    uint32_t l3 = start >= 18 && rd16(f + 12) != 0x0800 && rd16(f + 12) != 0x86dd ? 18 : 14;
    uint8_t proto;
    uint32_t l4len, sum;
    if (f[l3] >> 4 == 4) {
        proto = f[l3 + 9];
        l4len = rd16(f + l3 + 2) - (start - l3);
        sum = vnet_csum_pseudo4(f + l3 + 12, f + l3 + 16, proto, (uint16_t)l4len);
    } else {
        proto = f[l3 + 6];
        l4len = rd16(f + l3 + 4);
        sum = vnet_csum_pseudo6(f + l3 + 8, f + l3 + 24, proto, l4len);
    }
    return vnet_csum_fold(vnet_csum_partial(f + start, l4len, sum)) == 0;
}

static void frames(const uint8_t *data, size_t size)
{
    uint16_t start = 0, off = 0;
    if (size > 0xffff)
        return;
    if (vnet__csum_l4_find(data, (uint32_t)size, &start, &off) == 0)
        CHECK((off == 6 || off == 16) && (size_t)start + off + 2 <= size);
    if (!vnet__csum_l4_pending(data, (uint32_t)size, &start, &off))
        return;
    /* past a whole IP header (Ethernet + at least 20 bytes), inside the frame */
    CHECK((off == 6 || off == 16) && start >= 14 + 20 && (size_t)start + off + 2 <= size);
    uint8_t *copy = malloc(size);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    struct vnet_pkt p;
    memset(&p, 0, sizeof(p));
    p.buf = copy;
    p.cap = (uint32_t)size;
    p.len = (uint32_t)size;
    p.csum_flags = VNET_CSUM_PARTIAL;
    p.csum_start = start;
    p.csum_offset = off;
    CHECK(vnet_csum_complete(&p) == 0);
    CHECK(l4_verifies(copy, start));
    free(copy);
}

/* vnet__outer_parse: whatever it accepts lies inside the frame. */
static void underlay(const uint8_t *data, size_t size)
{
    static const char *const locals[] = {"10.0.0.2:4789", "[fd00::2]:4789"};
    for (int i = 0; i < 2; i++) {
        struct vnet_endpoint local;
        CHECK(vnet_endpoint_parse(locals[i], &local) == 0);
        for (int ok = 0; ok < 2; ok++) {
            struct udp_view v;
            if (size > 0xffff || !vnet__outer_parse(&local, data, (uint32_t)size, ok, &v))
                continue;
            CHECK(v.payload >= data + 14 + 8 && v.payload + v.plen <= data + size);
            CHECK(v.src.ip.family == local.ip.family);
        }
    }
}

static void specs(const uint8_t *data, size_t size)
{
    char s[128], ifname[IFNAMSIZ];
    if (size >= sizeof(s))
        size = sizeof(s) - 1;
    memcpy(s, data, size);
    s[size] = '\0';
    struct vnet_endpoint local;
    memset(&local, 0, sizeof(local));
    bool underlay = false;
    memset(ifname, 'x', sizeof(ifname));
    if (vnet__iface_spec_parse(s, ifname, &underlay, &local) != 0)
        return;
    size_t n = strnlen(ifname, sizeof(ifname));
    CHECK(n > 0 && n < sizeof(ifname) && strchr(ifname, ',') == NULL);
    CHECK(!underlay || local.port != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    frames(data, size);
    /* the same frame with Ethernet padding after it (what a short frame gets on a wire) */
    if (size > 0 && size < 0xffff - 64) {
        size_t pad = 1 + data[size - 1] % 46;
        uint8_t *padded = malloc(size + pad);
        CHECK(padded != NULL);
        memcpy(padded, data, size);
        memset(padded + size, 0xa5, pad); /* not zeros: those would not change a sum */
        frames(padded, size + pad);
        free(padded);
    }
    underlay(data, size);
    specs(data, size);
    return 0;
}

/* Well-formed frames whose checksum is pending: the pseudo-header sum in the field. */
size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    static const char *const spec_seeds[] = {"eth0", "eth0,local=10.0.0.1:4789",
                                             "vm0,local=[fd00::1]", "u1,local=192.0.2.7"};
    if (i % 5 == 4) {
        const char *s = spec_seeds[(i / 5) % 4];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        return n;
    }
    bool v6 = i & 1, tcp = i & 2, vlan = (i / 4) & 1;
    uint32_t payload = 1 + (i * 37) % 1000;
    uint32_t l3 = vlan ? 18 : 14, l4 = l3 + (v6 ? 40 : 20), hl = tcp ? 20 : 8;
    size_t len = l4 + hl + payload;
    if (len > cap)
        return 0;
    memset(buf, 0, len);
    memset(buf, 0x02, 12);
    if (vlan) {
        wr16(buf + 12, 0x8100);
        wr16(buf + 14, 7);
    }
    wr16(buf + l3 - 2, v6 ? 0x86dd : 0x0800);
    uint8_t proto = tcp ? 6 : 17;
    uint8_t *ip = buf + l3;
    uint32_t l4len = hl + payload, sum;
    if (v6) {
        ip[0] = 0x60;
        wr16(ip + 4, (uint16_t)l4len);
        ip[6] = proto;
        ip[7] = 64;
        ip[8] = 0xfd;
        ip[23] = 1;
        ip[24] = 0xfd;
        ip[39] = 2;
        sum = vnet_csum_pseudo6(ip + 8, ip + 24, proto, l4len);
    } else {
        ip[0] = 0x45;
        wr16(ip + 2, (uint16_t)(20 + l4len));
        ip[8] = 64;
        ip[9] = proto;
        ip[12] = 10;
        ip[15] = 1;
        ip[16] = 10;
        ip[19] = 2;
        wr16(ip + 10, vnet_csum(ip, 20));
        sum = vnet_csum_pseudo4(ip + 12, ip + 16, proto, (uint16_t)l4len);
    }
    uint8_t *th = buf + l4;
    wr16(th, 1234);
    wr16(th + 2, 80);
    if (tcp)
        th[12] = 0x50;
    else
        wr16(th + 4, (uint16_t)l4len);
    for (uint32_t k = 0; k < payload; k++)
        th[hl + k] = (uint8_t)(i + k);
    wr16(th + (tcp ? 16 : 6), (uint16_t)(vnet_csum_fold(sum) ^ 0xffffu));
    return len;
}
