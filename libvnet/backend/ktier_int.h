/* libvnet internal: the kernel tier ("kernel:NAME"): TC programs on NAME and on a flow-based
 * VXLAN device switch every frame in the kernel; the node only mirrors its switch table and
 * peer list into their maps. See ktier.c and docs/kernel-tier.md. */
#ifndef VNET_KTIER_INT_H
#define VNET_KTIER_INT_H

#include "vnet/datapath.h"
#include "vnet/switch_table.h"
#include "vnet/types.h"

#include <stddef.h>
#include <stdint.h>

struct vnet__ktier;

struct vnet__ktier_cfg {
    const char *dev;            /* NAME: an existing interface the host stack transmits on */
    uint32_t vni;               /* the network */
    struct vnet_endpoint local; /* --underlay udp:IP:PORT: the VXLAN device's address, port */
    bool arp_proxy;             /* answer ARP on NAME from the table's IPv4 bindings */
    /* false: NAME is the host's (a TAP): frames from it are taken on its egress and delivered
     * to its ingress. true: NAME is a VM's tap or veth: frames from the VM are taken on its
     * ingress and delivered to its egress (to the VM). */
    bool guest;
};

/* Whether this build has the tier (libbpf found). */
bool vnet__ktier_available(void);

/* Create the VXLAN device (named "vk-" + NAME, cut to 15 characters), load the programs and
 * attach them (tcx links: they go away with the process). Returns 0, VNET_ENOTSUP (no BPF
 * here: no libbpf in the build, or a kernel without tcx), VNET_ENOENT (no NAME) or another
 * code, with a line in @err. */
int vnet__ktier_open(const struct vnet__ktier_cfg *cfg, struct vnet__ktier **out, char *err,
                     size_t errlen);

/* Detach, unload, delete the VXLAN device. NULL ignored. */
void vnet__ktier_close(struct vnet__ktier *k);

/* Mirror the entries of the tier's VNI in @t into the table map (entries gone from @t are
 * removed) and their endpoints into the peer set. Call after every change of @t (writer). */
int vnet__ktier_sync_table(struct vnet__ktier *k, const struct vnet_table *t);

/* Replace the flood list (and the peer set with it). */
int vnet__ktier_set_peers(struct vnet__ktier *k, const struct vnet_peer *peers, size_t n);

/* The counters summed over the CPUs, in the datapath's shape (vport: NAME, uport: the VXLAN
 * device; drops by enum vnet_dp_drop). */
void vnet__ktier_get_stats(const struct vnet__ktier *k, struct vnet_datapath_stats *out);

/* The VXLAN device's name. */
const char *vnet__ktier_vx_name(const struct vnet__ktier *k);

#endif
