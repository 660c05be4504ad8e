/* libvnet: the management daemon of a node.
 *
 * Keeps a session with the controller on the caller's libuv loop: says hello with the last
 * revision it holds, applies snapshots and deltas to the node's switch table (each one
 * atomically, as one batch), acknowledges them, and reports the node's physical endpoint. It
 * reconnects with jittered exponential backoff, logging each failure with the next delay at
 * warn level once per backoff step or change of reason; while the controller is away the data
 * plane keeps forwarding with the table it has. A permanent refusal stops it for good
 * (vnet_agent_cfg.on_refused).
 *
 * The agent is the switch table's writer: call it from the thread that owns the table's
 * writes (the loop's thread).
 */
#ifndef VNET_AGENT_H
#define VNET_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "vnet/crypto.h"
#include "vnet/datapath.h"
#include "vnet/model.h"
#include "vnet/proto.h"
#include "vnet/switch_table.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vnet_agent;

struct vnet_agent_callbacks {
    /* The controller accepted the node: its network (VNI, MTU, subnets) and itself (MAC,
     * IPs). Called on every (re)connect; apply what changed (TAP MAC, MTU, addresses). */
    void (*on_welcome)(void *arg, const struct vnet_network *net,
                       const struct vnet_node_info *self);
    /* The other nodes changed: their endpoints (the flood list), ids and public keys, ready
     * for vnet_datapath_set_peer_list(). */
    void (*on_peers)(void *arg, const struct vnet_peer *peers, size_t n);
    /* The session went up (connected = 1) or down (0). */
    void (*on_state)(void *arg, int connected);
    /* Fill @out (zeroed) with the node's report: counters, table size, peers (a malloc'd
     * array the agent frees with vnet_report_free). Called every @interval_ms (the WELCOME's
     * report_ms, at least 1,000) while the session is up, the first about a second after it
     * came up; return non-zero to skip this one. NULL: the node sends no reports. */
    int (*on_report)(void *arg, uint32_t interval_ms, struct vnet_report *out);
};

struct vnet_agent_cfg {
    uv_loop_t *loop;
    /* "IP:PORT", "[IPv6]:PORT" or "HOST:PORT": a host name is resolved (getaddrinfo, off the
     * loop) before each connection attempt, so a changed DNS record is followed. */
    const char *controller;
    const char *network, *node; /* names */
    struct vnet_table *table;   /* the agent writes it */
    struct vnet_endpoint local; /* this node's underlay endpoint, reported to the controller */
    uint32_t keepalive_ms;      /* 0: 5,000 */
    uint32_t backoff_min_ms;    /* 0: 100 */
    uint32_t backoff_max_ms;    /* 0: 10,000 */
    struct vnet_agent_callbacks cb;
    void *cb_arg;
    /* Authentication (all copied). With @key, the session starts with a handshake proving
     * @key and checking that the controller holds @controller_pub (pinned), and every frame
     * after it is encrypted; @join_secret (from a join token) enrols @key on first contact.
     * Without @key the session is neither authenticated nor encrypted (a controller without a
     * key). */
    const struct vnet_keypair *key;
    const uint8_t *controller_pub; /* VNET_KEY_LEN bytes */
    const uint8_t *join_secret;    /* VNET_JOIN_SECRET_LEN bytes, or NULL */
    /* This process's per-boot data-plane nonce (VNET_DP_NONCE_LEN bytes, copied, or NULL):
     * reported with the endpoint; the controller hands it to the other nodes, whose secure
     * keys with this node then bind it (the same bytes go to vnet_datapath_cfg.nonce). */
    const uint8_t *dp_nonce;
    /* With @key, a WELCOME for a plain network (unencrypted data plane) is refused unless
     * this is set: a permanent refusal (@on_refused). */
    bool allow_plain;
    /* The controller refused this node for good, or the node's network or record is gone:
     * the network or node is unknown, a join token is used or expired, the node's key is not
     * registered or was revoked, the controller does not hold the pinned key, the node was
     * removed or its network deleted, or (with @key) the network is plain without
     * @allow_plain. A refusal that comes before the handshake completes (the controller's
     * uniform answer to a HELLO, which nothing authenticates) counts only when a second one
     * follows, at least a second later, with no welcome between; one on an authenticated session
     * counts at once. The agent then stops: it does not reconnect, and @why (one line for an
     * operator: what happened, the possible causes, what to check) is final. @code is the
     * controller's VNET_E* code (VNET_EACCES, VNET_ENOENT, VNET_EVERSION) or VNET_EPERM for a
     * refusal of the node's own. Called with @cb_arg, from the loop; destroying the agent
     * from here is allowed. May be NULL: the agent stops all the same. */
    void (*on_refused)(void *arg, int code, const char *why);
};

/* Create and start connecting. Returns 0 or VNET_EINVAL (a missing field, a controller address
 * that is not IP:PORT, [IPv6]:PORT or HOST:PORT) / VNET_ENOMEM. */
VNET_API int vnet_agent_create(const struct vnet_agent_cfg *cfg, struct vnet_agent **out);

/* Close the session; freed once the loop has run the close callbacks. NULL ignored. */
VNET_API void vnet_agent_destroy(struct vnet_agent *a);

/* Tell the controller a new endpoint (e.g. after the underlay address changed). */
VNET_API int vnet_agent_report_endpoint(struct vnet_agent *a, const struct vnet_endpoint *ep);

struct vnet_agent_stats {
    uint64_t connects, snapshots, deltas, acks, errors;
    uint64_t revision; /* applied */
    uint64_t reports;  /* REPORTs sent */
    int connected;
};
/* Counters and state of the session, for monitoring. Loop thread. */
VNET_API void vnet_agent_get_stats(const struct vnet_agent *a, struct vnet_agent_stats *out);

#ifdef __cplusplus
}
#endif
#endif
