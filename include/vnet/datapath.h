/* libvnet: the forwarding engine (the device-driver shim).
 *
 * A datapath joins a virtual port (the node's side: a TAP device, or an embedder's port) and
 * an underlay port (the UDP socket) through the VN switch table of one network (VNI):
 *
 *  egress   frame from the virtual port -> (VNI, destination MAC) lookup -> VXLAN -> underlay;
 *           broadcast, multicast and unknown unicast go to every peer (head-end replication);
 *           ARP requests and IPv6 neighbour solicitations for addresses the table knows are
 *           answered locally, without leaving the node.
 *  ingress  underlay datagram -> checks (VXLAN, VNI, the sender is a known peer, the outer
 *           source matches what the table holds for the inner source MAC; in secure mode
 *           also: inner source IPv4/IPv6, ARP sender and ND target/link-layer addresses are
 *           the sending node's registered ones) -> virtual port.
 *
 * Every drop is counted by reason. Learning (--learn) records (source MAC -> outer source) of
 * frames from known peers; it never moves a static or controller-provided entry (such a frame
 * is a spoof and is dropped). Learned entries are queued by the worker and written into the
 * table by the table's writer thread (vnet_datapath_learn_drain).
 *
 * Driving it. Either the embedder polls: it watches the fds from vnet_datapath_fds() and calls
 * vnet_datapath_poll() when one is readable (poll never blocks); or vnet_datapath_start()
 * runs a worker thread that does exactly that. Only one thread may poll a datapath at a time.
 * With multiqueue ports (a TAP with several queues, several UDP sockets on one port), create
 * one datapath per queue over the same table and start each: one run-to-completion thread per
 * queue.
 * The datapath registers itself as a reader of the table.
 */
#ifndef VNET_DATAPATH_H
#define VNET_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/crypto.h"
#include "vnet/port.h"
#include "vnet/switch_table.h"
#include "vnet/types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vnet_datapath;

struct vnet_datapath_cfg {
    struct vnet_table *table; /* borrowed; must outlive the datapath */
    struct vnet_port *vport;  /* virtual side, borrowed */
    struct vnet_port *uport;  /* underlay side, borrowed */
    uint32_t vni;
    bool learn;        /* learn source MACs of frames from known peers */
    bool no_arp_proxy; /* do not answer ARP/ND locally */
    uint32_t mtu;      /* inner MTU (L3); 0: the virtual port's MTU */
    unsigned burst;    /* packets per burst, 1..64; 0: 64 */
    /* Secure mode: every frame is encrypted and authenticated between each pair of nodes with
     * keys derived from @key and the peers' public keys (vnet_datapath_set_peer_list), instead
     * of VXLAN. One queue only. */
    bool secure;
    const struct vnet_keypair *key; /* copied */
    unsigned queue; /* which queue of both ports to serve: with multiqueue ports, run one
                       datapath (and one thread) per queue over the same table */
    /* Secure mode with a controller: this process's random per-boot data-plane nonce
     * (VNET_SEAL_NONCE_LEN bytes, copied; the node reports it to the controller, which hands
     * it to the other nodes). Every pair key then binds both nodes' nonces
     * (vnet_seal_peer_init_nonces), so traffic captured before either node restarted never
     * opens again; peers without a nonce get no key. NULL: static keys only, replayable after
     * a restart of the receiver (see docs/security.md). */
    const uint8_t *nonce;
};

enum vnet_dp_drop {
    VNET_DP_DROP_DECAP = 0,    /* malformed VXLAN (details in vnet_datapath_stats.decap) */
    VNET_DP_DROP_FOREIGN_VNI,  /* VNI is not this datapath's */
    VNET_DP_DROP_UNKNOWN_PEER, /* outer source is no known peer */
    VNET_DP_DROP_SPOOF,        /* inner source MAC belongs to another endpoint */
    VNET_DP_DROP_SELF,         /* inner source MAC is one of this node's */
    VNET_DP_DROP_NO_PEERS,     /* BUM frame and nobody to flood to */
    VNET_DP_DROP_TOO_BIG,      /* frame over the MTU */
    VNET_DP_DROP_SHORT,        /* frame from the virtual port shorter than Ethernet */
    VNET_DP_DROP_OFFLOAD,      /* GSO frame that could not be segmented */
    VNET_DP_DROP_TX_UNDERLAY,  /* the underlay did not take it */
    VNET_DP_DROP_TX_VIRTUAL,   /* the virtual port did not take it */
    VNET_DP_DROP_LEARN_FULL,   /* learn queue full */
    VNET_DP_DROP_AUTH,         /* secure: does not authenticate (forged, modified, truncated) */
    VNET_DP_DROP_REPLAY,       /* secure: a replayed or too old packet */
    VNET_DP_DROP_NO_KEY,       /* secure: no key for the destination node */
    /* Secure mode, frames from a node the controller described (peer id known): the inner
     * addresses must be that node's registered ones (its IPs bound in the table to one of its
     * MACs; IPv6 link-local also as the modified EUI-64 of the frame's source MAC). */
    VNET_DP_DROP_SPOOF_IP4, /* IPv4 source address is not the sending node's */
    VNET_DP_DROP_SPOOF_IP6, /* IPv6 source address is not the sending node's */
    VNET_DP_DROP_SPOOF_ARP, /* ARP sender IP or hardware address is not the sending node's */
    VNET_DP_DROP_SPOOF_ND,  /* neighbour advertisement target or link-layer address option is
                               not the sending node's */
    VNET_DP_DROP__MAX
};

VNET_API const char *vnet_dp_drop_name(enum vnet_dp_drop d);

struct vnet_dp_port_stats {
    uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
};

struct vnet_datapath_stats {
    struct vnet_dp_port_stats vport, uport;
    uint64_t drops[VNET_DP_DROP__MAX];
    uint64_t decap[32]; /* by enum vnet_drop_reason (encap.h) */
    uint64_t arp_replies, nd_replies, flooded, learned, gso_frames, gro_frames;
    uint64_t too_big_sent; /* ICMP/ICMPv6 "too big" answered to the virtual port */
};

struct vnet_dp_peer_stats {
    struct vnet_endpoint ep;
    uint64_t tx_packets, tx_bytes, rx_packets, rx_bytes;
};

/* Create a datapath. Returns 0, VNET_EINVAL (missing table/port, bad VNI or burst),
 * VNET_ENOMEM, VNET_ENOSPC (the table has no reader slot left). */
VNET_API int vnet_datapath_create(const struct vnet_datapath_cfg *cfg, struct vnet_datapath **out);

/* Stop it (if started) and free it. The ports and the table are not closed. NULL ignored. */
VNET_API void vnet_datapath_destroy(struct vnet_datapath *dp);

/* Replace the flood list: the underlay endpoints of every other node of the network. Copied.
 * Call from the table's writer thread (the old list is freed after a grace period). Returns 0,
 * VNET_EINVAL or VNET_ENOMEM. */
VNET_API int vnet_datapath_set_peers(struct vnet_datapath *dp, const struct vnet_endpoint *peers,
                                     size_t n);

/* Another node of the network, as the data plane needs it: its underlay endpoint and, for
 * secure mode, its node id (the peer_id of its table entries) and public key. The agent
 * reports peers in this form (vnet_agent_callbacks.on_peers), so they go to
 * vnet_datapath_set_peer_list() as they are. */
struct vnet_peer {
    struct vnet_endpoint ep; /* where its frames go: configured, else reported */
    uint64_t id;             /* node id; 0: unknown (static peers) */
    bool has_pubkey;
    uint8_t pubkey[32];
    bool has_nonce; /* its current per-boot data-plane nonce is known */
    uint8_t nonce[VNET_SEAL_NONCE_LEN];
};

/* Replace the peer list (flood list and, in secure mode, the keys). Copied. Writer thread.
 * Keys, counters and replay windows of peers that stay are kept; those of a peer that leaves
 * are kept aside and taken up again if it comes back with the same key (and nonce), so a
 * frame is accepted at most once however often its sender leaves and returns. They are
 * freed when the peer returns with another nonce (it restarted) or with the datapath. Returns 0,
 * VNET_EINVAL, VNET_ENOMEM, or a key-derivation error (e.g. VNET_EACCES for a degenerate public
 * key). */
VNET_API int vnet_datapath_set_peer_list(struct vnet_datapath *dp, const struct vnet_peer *peers,
                                         size_t n);

/* Add a MAC of this node (the TAP's): frames claiming it from the underlay are dropped.
 * Writer thread. */
VNET_API int vnet_datapath_add_local_mac(struct vnet_datapath *dp, const struct vnet_mac *mac);

/* Handle up to @budget packets from each port; never blocks. Returns packets handled (0:
 * nothing was ready) or a negative error from a port. */
VNET_API int vnet_datapath_poll(struct vnet_datapath *dp, int budget);

/* The same for only the ports in @which (VNET_DP_VPORT, VNET_DP_UPORT): for a caller that
 * knows from poll(2) which fds are readable, to save the reads that would find nothing. */
#define VNET_DP_VPORT 0x1
#define VNET_DP_UPORT 0x2
VNET_API int vnet_datapath_poll_ports(struct vnet_datapath *dp, unsigned which, int budget);

/* The fds to poll for readability: fds[0] the virtual port, fds[1] the underlay. */
VNET_API int vnet_datapath_fds(const struct vnet_datapath *dp, int fds[2]);

/* Write queued learned entries into the table as one batch. Table's writer thread. Returns
 * the number of entries written, or a negative error from vnet_table_apply. */
VNET_API int vnet_datapath_learn_drain(struct vnet_datapath *dp);

/* An eventfd that becomes readable when learned entries wait for vnet_datapath_learn_drain. */
VNET_API int vnet_datapath_learn_fd(const struct vnet_datapath *dp);

/* Run a worker thread that polls both ports (poll(2), 100 ms timeout) until stopped. */
VNET_API int vnet_datapath_start(struct vnet_datapath *dp);
/* Stop and join the worker thread (no-op when not started). */
VNET_API void vnet_datapath_stop(struct vnet_datapath *dp);

/* Counters; consistent enough for monitoring (read without stopping the worker). */
VNET_API void vnet_datapath_get_stats(const struct vnet_datapath *dp,
                                      struct vnet_datapath_stats *out);

/* Per-peer counters: fills up to @max entries, returns how many peers there are. Writer
 * thread or the polling thread. */
VNET_API size_t vnet_datapath_peer_stats(const struct vnet_datapath *dp,
                                         struct vnet_dp_peer_stats *out, size_t max);

/* ---- Peer probes: round-trip time measured by the data plane ----
 *
 * A probe is an Ethernet frame carried like data (VXLAN, or sealed in secure mode) between
 * two libvnet datapaths; the receiving datapath answers it and never hands it to its virtual
 * port. Frame (VNET_PROBE_LEN bytes): destination and source MAC 00:00:00:00:00:00, ethertype
 * VNET_PROBE_ETHERTYPE (IEEE 802 local experimental 1), "VNPR", version 1, type (request 1,
 * reply 2), 2 zero bytes, sequence (32-bit big endian), 4 zero bytes, sender's time stamp (64-bit
 * big endian, echoed as is). The reply has the request's size: no amplification. See
 * docs/wire.md. */
#define VNET_PROBE_ETHERTYPE 0x88b5
#define VNET_PROBE_LEN       38
#define VNET_PROBE_REQUEST   1
#define VNET_PROBE_REPLY     2

struct vnet_probe {
    uint8_t type; /* VNET_PROBE_REQUEST or VNET_PROBE_REPLY */
    uint32_t seq;
    uint64_t ts;
};

/**
 * Write probe @p as an Ethernet frame into @out.
 * Ownership: nothing kept.
 * Returns: VNET_PROBE_LEN, VNET_EINVAL (NULL pointer or bad type), VNET_ENOSPC (@cap too small).
 * Thread-safety: any thread.
 */
VNET_API int vnet_probe_encode(uint8_t *out, size_t cap, const struct vnet_probe *p);

/**
 * Parse an Ethernet frame as a probe.
 * Ownership: nothing kept; *out filled on success.
 * Returns: 0; VNET_ENOENT when the frame is no probe (other ethertype or magic: ordinary
 * traffic); VNET_EPROTO when it claims to be one but is malformed (length, version, type).
 * Thread-safety: any thread.
 */
VNET_API int vnet_probe_decode(const uint8_t *f, size_t len, struct vnet_probe *out);

/**
 * Probe peers every @interval_ms (0: never; the default). Only peers with a node id (those a
 * controller described: libvnet nodes) are probed, unless @all_peers (static mode, where every
 * peer must then be a libvnet node: a Linux vxlan peer would deliver probes to its bridge).
 * Probes are answered whatever this setting. Probes leave from vnet_datapath_tick().
 * Ownership: nothing kept.
 * Returns: 0, VNET_EINVAL (NULL).
 * Thread-safety: before the datapath is polled, or on its polling thread.
 */
VNET_API int vnet_datapath_set_probe(struct vnet_datapath *dp, unsigned interval_ms,
                                     bool all_peers);

/**
 * Timed work of the datapath: send the probes that are due, publish the peers' epoch times.
 * Call on the polling thread whenever the returned time has passed (vnet_datapath_start's
 * worker does).
 * Ownership: nothing kept.
 * Returns: milliseconds until it wants to run again (>= 1).
 * Thread-safety: the polling thread only.
 */
VNET_API int vnet_datapath_tick(struct vnet_datapath *dp);

/* What the data plane knows of one peer beyond its counters. */
struct vnet_dp_peer_info {
    struct vnet_endpoint ep;
    uint64_t id;                /* node id; 0: static peer */
    uint64_t probes_sent;       /* requests sent to it */
    uint64_t probe_replies;     /* its replies that matched the last request */
    uint64_t probes_answered;   /* its requests this datapath answered */
    uint64_t probes_unexpected; /* replies that matched no pending request (dropped) */
    uint64_t rtt_ns;            /* last measured round trip; 0: none yet */
    int64_t reply_age_ms;       /* since that reply; -1: none */
    int64_t tx_epoch_age_ms;    /* secure: age of the current transmit key; -1: none */
    uint64_t rx_epochs_adopted; /* secure: new receive epochs taken up (rekeys by the peer) */
};

/**
 * Probe and key state of every peer: fills up to @max entries, in the order of
 * vnet_datapath_peer_stats().
 * Ownership: nothing kept.
 * Returns: how many peers there are.
 * Thread-safety: the table's writer thread or the polling thread (as vnet_datapath_peer_stats).
 */
VNET_API size_t vnet_datapath_peer_info(const struct vnet_datapath *dp,
                                        struct vnet_dp_peer_info *out, size_t max);

#ifdef __cplusplus
}
#endif
#endif
