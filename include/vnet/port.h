/* libvnet: ports, the pluggable packet I/O backends of the data plane.
 *
 * A port moves bursts of packets between the data plane and something outside it: a TAP
 * device ("tap:NAME"), the underlay UDP socket ("udp:IP:PORT"), and later raw sockets and
 * AF_XDP. Backends are chosen by name when a port is opened; an embedder can register its own
 * (include/vnet/sys/port.h).
 *
 * Packets. The caller owns packet buffers (struct vnet_pkt) and lends them to rx/tx calls; a
 * port never keeps a pointer to one after the call returns. A packet carries offload metadata
 * with virtio_net_hdr semantics, so large TCP segments (TSO/GSO) and partial checksums cross
 * the data plane without being split or summed until they must be.
 *
 * Thread-safety: one thread per queue. Different queues of one port may be used from
 * different threads. open/close are not thread-safe with respect to the same port.
 */
#ifndef VNET_PORT_H
#define VNET_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include "vnet/types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vnet_port;

/* gso_type values (as VIRTIO_NET_HDR_GSO_*) */
#define VNET_GSO_NONE   0
#define VNET_GSO_TCPV4  1
#define VNET_GSO_UDP    3 /* UFO, unused */
#define VNET_GSO_TCPV6  4
#define VNET_GSO_UDP_L4 5 /* USO */

/* csum_flags */
#define VNET_CSUM_PARTIAL                                                                          \
    0x1                     /* L4 checksum to be completed: sum from csum_start, store at          \
                               csum_start + csum_offset (VIRTIO_NET_HDR_F_NEEDS_CSUM) */
#define VNET_CSUM_VALID 0x2 /* checksums already verified (VIRTIO_NET_HDR_F_DATA_VALID) */

/* One packet. For a virtual port (tap) the data is an Ethernet frame; for the udp port it is
 * a UDP payload (VXLAN header + inner frame). */
struct vnet_pkt {
    uint8_t *buf; /* buffer start */
    uint32_t cap; /* bytes at buf */
    uint32_t off; /* data starts at buf + off (headroom in front of it) */
    uint32_t len; /* data bytes */
    uint8_t gso_type;
    uint8_t csum_flags;
    uint16_t gso_size;         /* TCP: MSS. udp port: size of each datagram in a GSO/GRO batch */
    uint16_t hdr_len;          /* headers in front of the GSO payload (a hint, may be 0) */
    uint16_t csum_start;       /* from data start */
    uint16_t csum_offset;      /* from csum_start */
    uint16_t queue;            /* rx: queue it arrived on */
    struct vnet_endpoint peer; /* udp port: rx source, tx destination */
};

static inline uint8_t *vnet_pkt_data(const struct vnet_pkt *p)
{
    return p->buf + p->off;
}

/* Capabilities of an open port. */
#define VNET_PORT_CAP_CSUM       0x01 /* takes and gives partial checksums */
#define VNET_PORT_CAP_TSO        0x02 /* takes and gives TCP GSO frames up to 64 KB */
#define VNET_PORT_CAP_USO        0x04 /* takes and gives UDP GSO (GSO_UDP_L4) frames */
#define VNET_PORT_CAP_UDP_GSO    0x08 /* udp: tx batches of equal datagrams (UDP_SEGMENT) */
#define VNET_PORT_CAP_UDP_GRO    0x10 /* udp: rx coalesced datagrams (UDP_GRO) */
#define VNET_PORT_CAP_MULTIQUEUE 0x20

struct vnet_port_cfg {
    uint32_t queues;     /* 0 or 1: one queue */
    uint32_t mtu;        /* tap: set the device MTU (0: leave it) */
    struct vnet_mac mac; /* tap: set the device MAC when set_mac */
    bool set_mac;
    bool offload;       /* ask for TSO/checksum offload (tap) or GSO/GRO (udp) */
    bool up;            /* tap: bring the device up */
    int sndbuf, rcvbuf; /* udp: socket buffer sizes (0: 4 MiB) */
};

struct vnet_port_info {
    const char *backend;        /* "tap", "udp", ... */
    char ifname[16];            /* tap: the device name */
    int ifindex;                /* tap: 0 when unknown */
    struct vnet_mac mac;        /* tap: the device MAC */
    uint32_t mtu;               /* tap: device MTU; udp: 0 */
    struct vnet_endpoint local; /* udp: the bound address */
    uint32_t caps;              /* VNET_PORT_CAP_* in effect */
    uint32_t queues;
};

/* Open a port from a spec "BACKEND:ARG" ("tap:vnet0", "udp:192.0.2.1:4789",
 * "udp:[2001:db8::1]:4789"). @cfg may be NULL. Returns 0, VNET_ENOENT (no such backend),
 * VNET_EINVAL (bad spec or cfg), or the backend's error (VNET_EPERM without privileges, ...).
 * The caller owns *out and closes it with vnet_port_close(). */
VNET_API int vnet_port_open(const char *spec, const struct vnet_port_cfg *cfg,
                            struct vnet_port **out);

/* Close the port and free it. NULL is ignored. */
VNET_API void vnet_port_close(struct vnet_port *p);

/* Receive up to @n packets into the caller's buffers pkts[0..n) (buf and cap set, off is the
 * headroom wanted). Never blocks. Returns the number received (0: nothing ready) or a negative
 * error. Fills off, len, offload fields, queue and (udp) peer. */
VNET_API int vnet_port_rx_burst(struct vnet_port *p, unsigned queue, struct vnet_pkt **pkts, int n);

/* Send up to @n packets. Never blocks. Returns how many were taken (the rest were not sent:
 * retry later or drop), or a negative error when none was. */
VNET_API int vnet_port_tx_burst(struct vnet_port *p, unsigned queue, struct vnet_pkt **pkts, int n);

/* The file descriptor to poll for readability of @queue, or a negative error. */
VNET_API int vnet_port_fd(const struct vnet_port *p, unsigned queue);

VNET_API int vnet_port_get_info(const struct vnet_port *p, struct vnet_port_info *out);

#ifdef __cplusplus
}
#endif
#endif
