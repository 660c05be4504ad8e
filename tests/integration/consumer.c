/* An out-of-tree program: compiled against the installed headers and linked through
 * pkg-config, it uses the switch table and the VXLAN codec once and checks the results. */
#include <vnet/vnet.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    struct vnet_table *t;
    struct vnet_table_op op;
    int rc = vnet_table_create(NULL, &t);
    if (rc) {
        fprintf(stderr, "vnet_table_create: %s\n", vnet_strerror(rc));
        return 1;
    }
    memset(&op, 0, sizeof(op));
    op.type = VNET_TABLE_PUT;
    op.vni = 42;
    if (vnet_mac_parse("02:00:00:00:00:01", &op.mac) ||
        vnet_endpoint_parse("192.0.2.10:4789", &op.ep) || vnet_table_apply(t, &op, 1, 1)) {
        fprintf(stderr, "cannot insert\n");
        return 1;
    }
    const struct vnet_entry *e = vnet_table_lookup(t, 42, &op.mac);
    struct vnet_endpoint ep;
    char buf[VNET_ENDPOINT_STRLEN];
    if (!e)
        return 1;
    vnet_entry_endpoint(e, &ep);
    vnet_endpoint_format(&ep, buf, sizeof(buf));

    uint8_t pkt[VNET_VXLAN_HLEN + 14] = {0}; /* VXLAN header + an inner Ethernet header */
    uint32_t vni = 0;
    vnet_vxlan_encode(pkt, 42);
    if (vnet_vxlan_decode(pkt, sizeof(pkt), NULL, &vni, NULL) || vni != 42) {
        fprintf(stderr, "vxlan round trip failed\n");
        return 1;
    }
    printf("libvnet %s (headers %s): 02:00:00:00:00:01 in VNI 42 -> %s; VXLAN header ok\n",
           vnet_version(), VNET_VERSION_STRING, buf);
    vnet_table_destroy(t);
    return strcmp(buf, "192.0.2.10:4789") != 0;
}
