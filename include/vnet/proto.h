/* libvnet: the control protocol between the controller, node daemons and subscriber clients.
 *
 * A connection carries frames: a 4-byte big-endian length, then that many bytes of one msgpack
 * array, [type, fields...] (docs/protocol.md lays out every message byte for byte). The first
 * frame on a connection is VNET_MSG_HELLO from the connecting side, answered by
 * VNET_MSG_WELCOME or VNET_MSG_ERROR; both carry an `auth` blob that the security layer fills
 * (empty until then), so authentication slots in without a new message.
 *
 * Decoders never trust their input: anything malformed, of the wrong type, oversized or with
 * trailing bytes is refused with VNET_EPROTO (or VNET_EMSGSIZE for a frame over the limit), and
 * the caller closes that one connection.
 *
 * Thread-safety: all functions are thread-safe on distinct objects.
 */
#ifndef VNET_PROTO_H
#define VNET_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "vnet/model.h"
#include "vnet/store.h" /* struct vnet_subscriber */

#ifdef __cplusplus
extern "C" {
#endif

#define VNET_PROTO_VERSION 3
#define VNET_FRAME_MAX     (16u << 20) /* default frame size limit */
#define VNET_MSG_TEXT_MAX  256         /* error/reply messages, truncated beyond */
#define VNET_AUTH_MAX      512         /* auth blob */

enum vnet_msg_type {
    VNET_MSG_HELLO = 1,     /* client/node -> controller: first frame */
    VNET_MSG_WELCOME = 2,   /* controller -> client/node: accepted */
    VNET_MSG_SNAPSHOT = 3,  /* controller -> node: the whole network at a revision */
    VNET_MSG_DELTA = 4,     /* controller -> node: changes (from, to] */
    VNET_MSG_ACK = 5,       /* node -> controller: applied up to revision */
    VNET_MSG_ENDPOINT = 6,  /* node -> controller: my physical endpoint */
    VNET_MSG_KEEPALIVE = 7, /* either way */
    VNET_MSG_ERROR = 8,     /* either way: then the sender closes */
    VNET_MSG_REQUEST = 9,   /* client -> controller: a subscriber request */
    VNET_MSG_REPLY = 10,    /* controller -> client */
    VNET_MSG_REPORT = 11,   /* node -> controller: its counters and peers (struct vnet_report) */
};

enum vnet_role {
    VNET_ROLE_NODE = 1,   /* a management daemon */
    VNET_ROLE_CLIENT = 2, /* a subscriber client (vnetctl, API, bindings) */
};

struct vnet_msg_hello {
    uint32_t version; /* VNET_PROTO_VERSION */
    enum vnet_role role;
    char network[VNET_NAME_MAX]; /* node: its network ("" for a client) */
    char node[VNET_NAME_MAX];    /* node: its name */
    uint64_t revision;           /* node: the last network revision it holds (0: none) */
    uint8_t auth[VNET_AUTH_MAX];
    uint32_t auth_len;
};

struct vnet_msg_welcome {
    uint32_t version;
    struct vnet_network network; /* node: its network (id, VNI, MTU, subnets, revision) */
    struct vnet_node_info node;  /* node: itself (id, MAC, IPs, endpoints) */
    uint8_t auth[VNET_AUTH_MAX];
    uint32_t auth_len;
    uint32_t report_ms; /* node: send a REPORT this often (ms); 0: never (a client: 0) */
};

/* SNAPSHOT: the network and every node at network.revision. DELTA: changes with revision in
 * (from, to], in order. Both own their arrays (vnet_msg_free). */
struct vnet_msg_snapshot {
    struct vnet_network network;
    struct vnet_node_info *nodes;
    uint32_t nnodes;
};

struct vnet_msg_delta {
    uint64_t from, to;
    struct vnet_change *changes;
    uint32_t nchanges;
};

struct vnet_msg_ack {
    uint64_t revision;
};

struct vnet_msg_endpoint {
    struct vnet_endpoint ep;
    bool has_nonce; /* the node's per-boot data-plane nonce follows (optional third element) */
    uint8_t nonce[VNET_DP_NONCE_LEN];
};

/* A node's periodic report (REPORT, and per node in a network.status reply): what its data
 * plane counted since it started and which peers it hears from. */
#define VNET_REPORT_MAX   65535 /* bytes of an encoded report (the REPORT's bin) */
#define VNET_REPORT_DROPS 32    /* drop reasons a report carries: enum vnet_dp_drop values below */

enum vnet_reach {
    VNET_REACH_NONE = 0,   /* nothing came from the peer recently */
    VNET_REACH_DIRECT = 1, /* its packets arrive straight over the underlay */
};

struct vnet_report_counters {
    uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
};

struct vnet_report_peer {
    uint64_t node_id;        /* 0: a peer the controller did not describe (static) */
    struct vnet_endpoint ep; /* its underlay endpoint */
    struct vnet_report_counters c;
    bool has_last_rx;
    uint64_t last_rx_ms; /* how long before the report a packet last came from it */
    uint8_t reach;       /* enum vnet_reach */
    bool has_rtt;
    uint32_t rtt_us; /* data-plane round trip, when the data plane measures it */
};

struct vnet_report {
    struct vnet_report_counters virt, under;  /* the virtual port, the underlay */
    uint64_t drops;                           /* every dropped packet */
    uint64_t drop_reasons[VNET_REPORT_DROPS]; /* by enum vnet_dp_drop */
    uint64_t table_size;                      /* switch table entries */
    struct vnet_report_peer *peers;           /* npeers of them, owned (vnet_report_free) */
    uint32_t npeers;
};

/* REPORT carries the report as a msgpack bin, decoded apart with vnet_report_decode(), so that
 * a report the controller cannot read is dropped (and counted) rather than ending the
 * session. */
struct vnet_msg_report {
    uint8_t *body; /* decoded: a copy owned by the message (vnet_msg_free); when encoding, only
                      read */
    uint32_t len;  /* at most VNET_REPORT_MAX */
};

struct vnet_msg_error {
    int32_t code; /* a VNET_E* code */
    char text[VNET_MSG_TEXT_MAX];
};

/* Subscriber requests. Which fields matter depends on op; the rest are ignored (and encoded as
 * absent). */
enum vnet_req_op {
    VNET_REQ_NETWORK_CREATE = 1,
    VNET_REQ_NETWORK_LIST,
    VNET_REQ_NETWORK_SHOW,
    VNET_REQ_NETWORK_DELETE,
    VNET_REQ_NETWORK_STATUS,
    VNET_REQ_NODE_ADD,
    VNET_REQ_NODE_LIST,
    VNET_REQ_NODE_SHOW,
    VNET_REQ_NODE_MOVE,
    VNET_REQ_NODE_REMOVE,
    /* Subscriber management, for the admin only; the subscriber's name travels in `network`. */
    VNET_REQ_SUBSCRIBER_CREATE, /* 11: reply subscribers[0] + token (shown this once) */
    VNET_REQ_SUBSCRIBER_LIST,   /* 12: reply subscribers */
    VNET_REQ_SUBSCRIBER_DELETE, /* 13: nothing (refused while it owns networks) */
    VNET_REQ_SUBSCRIBER_TOKEN,  /* 14: a new token replaces the old: subscribers[0] + token */
    VNET_REQ_NODE_REVOKE,       /* 15: forget a node's key; it is disconnected and refused */
};

#define VNET_REQ_HAS_VNI     0x01
#define VNET_REQ_HAS_SUBNET4 0x02
#define VNET_REQ_HAS_SUBNET6 0x04
#define VNET_REQ_HAS_MTU     0x08
#define VNET_REQ_HAS_MAC     0x10
#define VNET_REQ_HAS_IP4     0x20
#define VNET_REQ_HAS_IP6     0x40
#define VNET_REQ_HAS_PHYS    0x80
#define VNET_REQ_HAS_PUBKEY  0x100
#define VNET_REQ_HAS_MODE    0x200

struct vnet_msg_request {
    uint32_t id; /* echoed in the reply */
    enum vnet_req_op op;
    uint32_t has; /* VNET_REQ_HAS_* */
    char network[VNET_NAME_MAX];
    char node[VNET_NAME_MAX];
    uint32_t vni;
    struct vnet_prefix subnet4, subnet6;
    uint32_t mtu;
    struct vnet_mac mac;
    struct vnet_ip ip4, ip6;
    struct vnet_endpoint phys;
    uint8_t pubkey[VNET_PUBKEY_LEN];
    uint8_t mode; /* NETWORK_CREATE: VNET_MODE_PLAIN or VNET_MODE_SECURE (store.h) */
};

/* What the controller knows of a node's session, for `network status`. */
struct vnet_node_status {
    struct vnet_node_info node;
    uint64_t acked; /* the revision the node acknowledged last */
    uint8_t connected;
    uint64_t connected_since_ms; /* unix time in ms, 0 when not connected */
    uint64_t last_seen_ms;       /* unix time in ms of the last frame from it; 0: not since the
                                    controller started */
    struct vnet_endpoint session_from; /* where its last session came from (family 0: unknown) */
    /* Its last report (memory only: none after a controller restart until the next one). */
    bool has_report;
    uint64_t report_age_ms;    /* how long ago it arrived */
    struct vnet_report report; /* its peers are owned by the message (vnet_msg_free) */
};

struct vnet_msg_reply {
    uint32_t id;
    int32_t code;                 /* 0 or a VNET_E* code */
    char text[VNET_MSG_TEXT_MAX]; /* the reason when code != 0 */
    /* Results, by op: NETWORK_CREATE/SHOW: networks[0] (+ nodes for SHOW);
     * NETWORK_LIST: networks; NETWORK_STATUS: networks[0] + status; NODE_ADD/SHOW/MOVE:
     * nodes[0]; NODE_LIST: nodes; NODE_REMOVE, NETWORK_DELETE: nothing (revision in
     * networks[0].revision when present). Owned by the message (vnet_msg_free). */
    struct vnet_network *networks;
    uint32_t nnetworks;
    struct vnet_node_info *nodes;
    uint32_t nnodes;
    struct vnet_node_status *status;
    uint32_t nstatus;
    /* NODE_ADD without a public key, when the controller has a key: the node's single-use
     * join token for `vnet-node --join`; SUBSCRIBER_CREATE/TOKEN: the subscriber's new API
     * token; "" otherwise. */
    char token[VNET_MSG_TEXT_MAX];
    /* SUBSCRIBER_CREATE/TOKEN: subscribers[0]; SUBSCRIBER_LIST: every subscriber; NETWORK_LIST
     * asked by the admin: every subscriber, to name the networks' owners. Owned by the
     * message (vnet_msg_free). */
    struct vnet_subscriber *subscribers;
    uint32_t nsubscribers;
};

struct vnet_msg {
    enum vnet_msg_type type;
    union {
        struct vnet_msg_hello hello;
        struct vnet_msg_welcome welcome;
        struct vnet_msg_snapshot snapshot;
        struct vnet_msg_delta delta;
        struct vnet_msg_ack ack;
        struct vnet_msg_endpoint endpoint;
        struct vnet_msg_error error;
        struct vnet_msg_request request;
        struct vnet_msg_reply reply;
        struct vnet_msg_report report;
    } u;
};

/* Free the arrays a decoded (or caller-built) message owns, and zero it. Safe on any
 * message that was zeroed first or decoded. */
VNET_API void vnet_msg_free(struct vnet_msg *m);

/* A growable output buffer. */
struct vnet_buf {
    uint8_t *data;
    size_t len, cap;
};
VNET_API void vnet_buf_free(struct vnet_buf *b);

/* Append one whole frame (length prefix + body) for @m to @out. Returns 0, VNET_EINVAL (bad
 * message: unknown type, string not terminated, ...), VNET_EMSGSIZE (over VNET_FRAME_MAX) or
 * VNET_ENOMEM. */
VNET_API int vnet_msg_encode(const struct vnet_msg *m, struct vnet_buf *out);

/* Decode one frame body (without the length prefix). Returns 0 and fills @m (free it with
 * vnet_msg_free), or VNET_EPROTO (malformed: the reason in @err when given) or VNET_ENOMEM.
 * On error @m holds nothing to free. */
VNET_API int vnet_msg_decode(const uint8_t *body, size_t len, struct vnet_msg *m, char *err,
                             size_t errlen);

/**
 * Append the msgpack encoding of @r (no frame prefix) to @out: the body of a REPORT.
 * Ownership: @r is only read.
 * Returns: 0, VNET_EINVAL (a reach value or endpoint out of range), VNET_EMSGSIZE (over
 * VNET_REPORT_MAX: too many peers) or VNET_ENOMEM; @out holds nothing new on failure.
 * Thread-safety: thread-safe on distinct objects.
 */
VNET_API int vnet_report_encode(const struct vnet_report *r, struct vnet_buf *out);

/**
 * Decode a report (a REPORT's body) into @r.
 * Ownership: @r's peers are the caller's: vnet_report_free().
 * Returns: 0, VNET_EPROTO (malformed: the reason in @err when given) or VNET_ENOMEM; on
 * error @r holds nothing to free.
 * Thread-safety: thread-safe on distinct objects.
 */
VNET_API int vnet_report_decode(const uint8_t *body, size_t len, struct vnet_report *r, char *err,
                                size_t errlen);

/**
 * Free the peers of @r and zero it. NULL ignored.
 * Thread-safety: thread-safe on distinct objects.
 */
VNET_API void vnet_report_free(struct vnet_report *r);

/* Reassembles frames from a byte stream. */
struct vnet_frame_reader {
    uint8_t *buf;
    size_t len, cap;
    size_t off;   /* bytes at the start of buf already returned (private) */
    uint32_t max; /* frame size limit; 0: VNET_FRAME_MAX */
};

VNET_API void vnet_frame_reader_init(struct vnet_frame_reader *r, uint32_t max);
VNET_API void vnet_frame_reader_free(struct vnet_frame_reader *r);
/* Append received bytes. VNET_ENOMEM. */
VNET_API int vnet_frame_reader_feed(struct vnet_frame_reader *r, const uint8_t *data, size_t len);
/* The next complete frame's body: 1 and (*body, *len) valid until the next call on @r, 0 when
 * no complete frame is buffered, VNET_EMSGSIZE when the announced length is over the limit
 * (the stream is then unusable: close it). */
VNET_API int vnet_frame_reader_next(struct vnet_frame_reader *r, const uint8_t **body, size_t *len);

VNET_API const char *vnet_msg_type_name(enum vnet_msg_type t);
VNET_API const char *vnet_req_op_name(enum vnet_req_op op); /* "network.create", ... */
VNET_API int vnet_req_op_parse(const char *s, enum vnet_req_op *out);

#ifdef __cplusplus
}
#endif
#endif
