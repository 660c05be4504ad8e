/* libvnet: the maps shared by the kernel tier's BPF programs (ktier.bpf.c) and their loader
 * (ktier.c). Plain C with fixed-size types only: both clang -target bpf and the host compiler
 * include it. */
#ifndef VNET_KTIER_MAPS_H
#define VNET_KTIER_MAPS_H

#include <linux/types.h>

/* One network (VNI) per tier; the table map is keyed by (vni, mac) anyway, like the switch
 * table it mirrors. */
struct ktier_cfg {
    __u32 vni;
    __u32 vx_ifindex;  /* the flow-based VXLAN device frames leave by */
    __u32 dev_ifindex; /* NAME: where received frames are delivered */
    __u32 dev_flags;   /* bpf_redirect flags towards NAME (BPF_F_INGRESS: host stack) */
    __u32 npeers;      /* entries of peer_list in use */
    __u32 local_v4;    /* 1: the underlay is IPv4 */
    __u8 local[16];    /* this node's underlay address (IPv4 as ::ffff:a.b.c.d) */
    __u32 arp_proxy;   /* 1: answer ARP requests from arp_map on NAME itself */
    __u32 pad;
};

/* An IPv4 binding of the table (vnet_table_op PUT_IP): ARP answered from it. */
struct ktier_ip4_key {
    __u32 vni;
    __u8 ip[4];
};

struct ktier_mac {
    __u8 mac[6];
    __u8 pad[2];
};

/* An underlay IP address: IPv4 as ::ffff:a.b.c.d (v4 set). */
struct ktier_ip {
    __u8 addr[16];
} __attribute__((aligned(4)));

struct ktier_mac_key {
    __u32 vni;
    __u8 mac[6];
    __u8 pad[2];
};

struct ktier_endpoint {
    struct ktier_ip ip;
    __u32 v4;    /* 1: IPv4 (addr[12..15]) */
    __u32 local; /* 1: this node's own MAC: frames to it are delivered to NAME */
};

/* Counter slots of the per-CPU array: the drops first, numbered as enum vnet_dp_drop
 * (datapath.h; the loader checks the numbers), then the traffic counters. */
#define KTIER_DROP_FOREIGN_VNI  1
#define KTIER_DROP_UNKNOWN_PEER 2
#define KTIER_DROP_SPOOF        3
#define KTIER_DROP_SELF         4
#define KTIER_DROP_NO_PEERS     5
#define KTIER_DROP_SHORT        7
#define KTIER_DROP_TX_UNDERLAY  9
#define KTIER_DROP_TX_VIRTUAL   10
#define KTIER_DROPS             32
#define KTIER_VPORT_RX_PKTS     32 /* frames from NAME */
#define KTIER_VPORT_RX_BYTES    33
#define KTIER_VPORT_TX_PKTS     34 /* frames delivered to NAME */
#define KTIER_VPORT_TX_BYTES    35
#define KTIER_UPORT_RX_PKTS     36 /* frames from the VXLAN device (decapsulated) */
#define KTIER_UPORT_RX_BYTES    37
#define KTIER_UPORT_TX_PKTS     38 /* frames handed to the VXLAN device (each flood copy too) */
#define KTIER_UPORT_TX_BYTES    39
#define KTIER_FLOODED           40 /* BUM frames replicated to the peers */
#define KTIER_ARP_REPLIES       41
#define KTIER_NSTATS            42

#define KTIER_MAX_PEERS   64
#define KTIER_MAX_ENTRIES 65536

#endif
