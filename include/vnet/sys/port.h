/* libvnet: the interface for port backend authors.
 *
 * A backend is one constant ops table, registered by name. The built-in ones are
 * vnet_port_tap_ops and vnet_port_udp_ops; an embedder registers its own (a VM's virtio
 * queue, say) with vnet_port_register() and opens it with vnet_port_open("NAME:ARG").
 */
#ifndef VNET_SYS_PORT_H
#define VNET_SYS_PORT_H

#include "vnet/port.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VNET_PORT_OPS_VERSION 1

struct vnet_port_ops {
    uint32_t version; /* VNET_PORT_OPS_VERSION */
    const char *name; /* the spec prefix, "tap" */
    /* @arg: the spec after "NAME:". Allocate the backend's state into *state. */
    int (*open)(const char *arg, const struct vnet_port_cfg *cfg, void **state);
    void (*close)(void *state);
    int (*rx_burst)(void *state, unsigned queue, struct vnet_pkt **pkts, int n);
    int (*tx_burst)(void *state, unsigned queue, struct vnet_pkt **pkts, int n);
    int (*fd)(void *state, unsigned queue);
    int (*get_info)(void *state, struct vnet_port_info *out);
};

/* Register a backend. The table must outlive its use. Returns 0, VNET_EEXIST (name taken),
 * VNET_ENOSPC (too many backends) or VNET_EINVAL (bad table or version). Thread-safe. */
VNET_API int vnet_port_register(const struct vnet_port_ops *ops);

VNET_API extern const struct vnet_port_ops vnet_port_tap_ops;
VNET_API extern const struct vnet_port_ops vnet_port_udp_ops;
VNET_API extern const struct vnet_port_ops vnet_port_raw_ops;
/* AF_XDP, "xdp:IFNAME[,local=IP[:PORT]]"; registered when built with libxdp (VNET_HAVE_XDP) */
VNET_API extern const struct vnet_port_ops vnet_port_xdp_ops;

#ifdef __cplusplus
}
#endif
#endif
