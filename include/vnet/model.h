/* libvnet: the configuration model shared by the store, the protocol, the controller, the
 * management daemon and the subscriber client: networks, nodes and changes.
 *
 * Plain values with fixed-size fields (no pointers), so they can be copied, stored and sent as
 * they are. Names are 1..63 bytes of [A-Za-z0-9._-], starting with a letter or digit.
 */
#ifndef VNET_MODEL_H
#define VNET_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VNET_NAME_MAX   64 /* including the NUL */
#define VNET_PUBKEY_LEN 32 /* X25519 / Ed25519 public key */
#define VNET_NODE_IPS   2  /* one IPv4 and one IPv6 address at most */

/* What vnet_name_valid() accepts, in words: for error messages that say which characters a
 * name may hold. */
#define VNET_NAME_RULE "1 to 63 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"

/**
 * True when @s is a valid subscriber, network or node name (VNET_NAME_RULE).
 * Ownership: @s is only read during the call; NULL is not valid.
 * Returns: true or false.
 * Thread-safety: thread-safe.
 */
VNET_API bool vnet_name_valid(const char *s);

/* A virtual network. */
struct vnet_network {
    uint64_t id;                /* store-assigned, never reused */
    uint64_t subscriber_id;     /* owner */
    char name[VNET_NAME_MAX];   /* unique per subscriber */
    uint32_t vni;               /* unique in the store */
    struct vnet_prefix subnet4; /* ip.family 0: none */
    struct vnet_prefix subnet6; /* ip.family 0: none */
    uint32_t mtu;               /* the overlay MTU every node's TAP gets */
    uint64_t revision;          /* bumped by every change of the network or its nodes */
    uint8_t mode;               /* data plane: 0 plain VXLAN, 1 secure (VNET_MODE_*, store.h) */
};

enum vnet_node_state {
    VNET_NODE_PENDING = 0, /* added, never connected */
    VNET_NODE_ACTIVE = 1,  /* has connected at least once */
    VNET_NODE_REMOVED = 2, /* only in change records */
};

#define VNET_DP_NONCE_LEN 32 /* = VNET_SEAL_NONCE_LEN (crypto.h) */

/* A node of a network. */
struct vnet_node_info {
    uint64_t id; /* store-assigned, never reused; the peer id in switch tables */
    uint64_t network_id;
    char name[VNET_NAME_MAX]; /* unique per network */
    uint8_t pubkey[VNET_PUBKEY_LEN];
    bool has_pubkey;
    struct vnet_mac mac;               /* virtual MAC, unique per network */
    struct vnet_ip ips[VNET_NODE_IPS]; /* virtual IPs (family 0: unused), unique per network */
    struct vnet_endpoint phys;         /* physical endpoint configured (family 0: none yet) */
    struct vnet_endpoint observed;     /* as reported by the node / seen by the controller */
    enum vnet_node_state state;
    uint64_t revision; /* the network revision that last changed it */
    /* The node's per-boot data-plane nonce, as it reported it over its authenticated session
     * (controller memory only, never stored): secure-mode keys bind it, so traffic captured
     * before the node restarted never opens again (docs/security.md 5.4). */
    bool has_dp_nonce;
    uint8_t dp_nonce[VNET_DP_NONCE_LEN];
};

/* One entry of a network's change log. */
enum vnet_change_op {
    VNET_CHANGE_NODE_PUT = 1, /* a node was added or changed: node holds its new state */
    VNET_CHANGE_NODE_DEL = 2, /* a node was removed: node holds its last state */
    VNET_CHANGE_NET_PUT = 3,  /* the network's own settings changed (MTU, subnets) */
};

struct vnet_change {
    uint64_t network_id;
    uint64_t revision; /* the network revision this change produced */
    enum vnet_change_op op;
    struct vnet_node_info node; /* NODE_PUT, NODE_DEL */
};

#ifdef __cplusplus
}
#endif
#endif
