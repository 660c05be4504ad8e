/* Fuzz the text parsers: whatever parses must format back and parse to the same value. */
#include "vnet/error.h"
#include "vnet/types.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    static const char *const seeds[] = {"01:23:45:67:89:ab",  "16777215",    "192.0.2.1:4789",
                                        "[2001:db8::1]:4789", "10.0.0.1/24", "fd00::1/64"};
    const char *s = seeds[i % (sizeof(seeds) / sizeof(seeds[0]))];
    size_t n = strlen(s);
    if (n > cap)
        return 0;
    memcpy(buf, s, n);
    return n;
}

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort(); /* a fuzz finding, never reached on valid behaviour */                        \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char buf[64];

    struct vnet_mac mac, mac2;
    if (vnet_mac_parse(s, &mac) == 0) {
        CHECK(vnet_mac_format(&mac, buf, sizeof(buf)) == 17);
        CHECK(vnet_mac_parse(buf, &mac2) == 0 && vnet_mac_eq(&mac, &mac2));
    }
    uint32_t vni;
    if (vnet_vni_parse(s, &vni) == 0)
        CHECK(vni <= VNET_VNI_MAX);
    struct vnet_ip ip, ip2;
    if (vnet_ip_parse(s, &ip) == 0) {
        CHECK(vnet_ip_format(&ip, buf, sizeof(buf)) > 0);
        CHECK(vnet_ip_parse(buf, &ip2) == 0 && vnet_ip_eq(&ip, &ip2));
    }
    struct vnet_prefix p, p2;
    if (vnet_prefix_parse(s, &p) == 0) {
        CHECK(vnet_prefix_format(&p, buf, sizeof(buf)) > 0);
        CHECK(vnet_prefix_parse(buf, &p2) == 0 && p.len == p2.len && vnet_ip_eq(&p.ip, &p2.ip));
        CHECK(vnet_prefix_contains(&p, &p.ip));
    }
    struct vnet_endpoint ep, ep2;
    if (vnet_endpoint_parse(s, &ep) == 0) {
        CHECK(ep.port != 0);
        CHECK(vnet_endpoint_format(&ep, buf, sizeof(buf)) > 0);
        CHECK(vnet_endpoint_parse(buf, &ep2) == 0 && vnet_endpoint_eq(&ep, &ep2));
    }
    free(s);
    return 0;
}
