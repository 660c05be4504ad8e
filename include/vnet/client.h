/* libvnet: the subscriber client, a blocking API over the controller's request protocol, for
 * vnetctl, scripts and the bindings.
 *
 * Authentication (docs/security.md, "Subscribers"). Over TCP, a controller that has a key
 * serves only authenticated, encrypted sessions: the client pins the controller's public key,
 * does the Noise handshake with a fresh keypair of its own and sends its API token sealed to
 * the controller's key behind it; every frame after WELCOME is then encrypted. The token
 * decides who the client is: a subscriber sees and changes only its own networks; the admin's
 * token manages everything. Over the controller's Unix socket the client is the admin (the
 * socket's file permissions are the protection) and neither key nor token is used.
 *
 * Typed calls. vnet_client_network_create(), vnet_client_node_add() (which returns the node's
 * join token), vnet_client_network_status(), ...: one call per request, which builds the
 * request, checks the controller's answer and hands back plain structs, so that programs and
 * bindings never see the wire format (vnet_client_request() stays for tools that need it).
 * Every typed call clears @err first (when given); on failure it returns a negative VNET_E*
 * code and @err explains: the controller's own code and reason when it refused the request
 * (VNET_ENOENT, VNET_EEXIST, VNET_EINVAL, VNET_EACCES, VNET_EPERM, VNET_EBUSY, VNET_ENOSPC,
 * VNET_ENOTSUP, ...), or a transport error as vnet_client_request() returns it (the connection
 * is then unusable: close it). VNET_EINVAL, with nothing sent, for a NULL client, a NULL
 * output the call needs, or a name that breaks VNET_NAME_RULE (model.h; @err says which
 * characters a name may hold). A network name may also be "SUBSCRIBER/NETWORK": the admin's
 * way to name another subscriber's network (the controller refuses it from others). Lists
 * are one allocation each (the struct and its arrays), freed with vnet_client_free(); single
 * results are filled into the caller's struct.
 *
 * Thread-safety: one thread per client handle.
 */
#ifndef VNET_CLIENT_H
#define VNET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vnet_client;

struct vnet_client_opts {
    uint32_t timeout_ms;           /* bounds connect and every request; 0: 10,000 */
    const uint8_t *controller_pub; /* 32 bytes: the controller's pinned public key, or NULL */
    const char *token;             /* an API token "vnetapi1-...", or NULL */
};

/* Connect to "IP:PORT", "[IPv6]:PORT", "HOST:PORT" or a Unix socket path (anything with a
 * '/') and say hello. A host name is resolved with getaddrinfo (vnet_endpoint_resolve()) and
 * its addresses are tried in turn until one accepts the connection. Over TCP with
 * @opts->controller_pub, the session is authenticated (the controller must prove it holds that key)
 * and encrypted, and @opts->token (if any) identifies the subscriber; without controller_pub the
 * session is plain and carries no token (what a controller without a key serves). Over a Unix
 * socket both are ignored. @opts may be NULL. The strings and key are only read during the call.
 * Returns 0, VNET_EINVAL (bad address, malformed token, a token without controller_pub),
 * VNET_ENOENT or VNET_EAGAIN (the host name does not resolve, for good or for now), a negative
 * errno (connection refused, ...), VNET_ETIMEDOUT, VNET_EPROTO, VNET_EKEYREJECTED (controller_pub
 * is not the controller's key: it could not open our handshake, or did not prove that key),
 * VNET_EACCES (the controller refused the token or the lack of one) or another code of the
 * controller's ERROR; @err explains. */
VNET_API int vnet_client_connect2(const char *addr, const struct vnet_client_opts *opts,
                                  struct vnet_client **out, char *err, size_t errlen);

/* vnet_client_connect2() with only a timeout: an unauthenticated session (a Unix socket, or a
 * controller without a key). */
VNET_API int vnet_client_connect(const char *addr, uint32_t timeout_ms, struct vnet_client **out,
                                 char *err, size_t errlen);

/* Close the connection and free the client. NULL is ignored. */
VNET_API void vnet_client_close(struct vnet_client *c);

/* Send @req (its id is set by the client) and wait for the reply. Returns 0 with *reply
 * filled (free it with vnet_msg_free; reply->u.reply.code tells whether the controller
 * refused the request), or a transport error (the connection is then unusable). */
VNET_API int vnet_client_request(struct vnet_client *c, const struct vnet_msg_request *req,
                                 struct vnet_msg *reply, char *err, size_t errlen);

/* ---- typed calls (see the file comment) ---- */

#define VNET_CLIENT_TOKEN_MAX 256 /* join and API tokens, with the NUL */

enum vnet_client_mode {
    VNET_CLIENT_MODE_DEFAULT = 0, /* the controller's: secure when it has a key, else plain */
    VNET_CLIENT_MODE_PLAIN = 1,
    VNET_CLIENT_MODE_SECURE = 2,
};

/* A new network's settings; a zeroed struct asks for the controller's defaults. */
struct vnet_client_network_opts {
    uint32_t vni;               /* 1..VNET_VNI_MAX; 0: the lowest free VNI */
    struct vnet_prefix subnet4; /* ip.family VNET_AF_INET, or 0: none */
    struct vnet_prefix subnet6; /* ip.family VNET_AF_INET6, or 0: none */
    uint32_t mtu;               /* 0: the controller's default (1400 secure, 1450 plain) */
    enum vnet_client_mode mode;
};

/* A new node's settings; a zeroed struct asks for the controller's defaults. */
struct vnet_client_node_opts {
    struct vnet_mac mac; /* a unicast MAC, used when has_mac; else a random one */
    bool has_mac;
    struct vnet_ip ip4;              /* family VNET_AF_INET, or 0: the next free of the subnet */
    struct vnet_ip ip6;              /* family VNET_AF_INET6, or 0: the next free of the subnet */
    struct vnet_endpoint phys;       /* ip.family 0: what the node reports */
    uint8_t pubkey[VNET_PUBKEY_LEN]; /* the node's key (vnet-node --pubkey), when has_pubkey */
    bool has_pubkey;
};

/* vnet_client_network_list(): every network the caller may see, ordered by name. */
struct vnet_client_networks {
    struct vnet_network *networks; /* count of them */
    /* NULL, except in the admin's view (even with no network): owners[i] owns networks[i];
     * id 0 and name "" when the controller did not name the owner. */
    struct vnet_subscriber *owners;
    uint32_t count;
};

/* vnet_client_network_show(): a network and its nodes, ordered by name. */
struct vnet_client_network {
    struct vnet_network network;
    struct vnet_node_info *nodes; /* count of them */
    uint32_t count;
};

/* vnet_client_network_status(): a network and its nodes' sessions. A node has converged when
 * its acked revision equals network.revision. Each entry carries the node's last report
 * (has_report) with its peers (report.peers, inside the same allocation: vnet_client_free()
 * releases everything). */
struct vnet_client_status {
    struct vnet_network network;
    struct vnet_node_status *nodes; /* count of them */
    uint32_t count;
};

/* vnet_client_node_list(). */
struct vnet_client_nodes {
    struct vnet_node_info *nodes; /* count of them, ordered by name */
    uint32_t count;
};

/* vnet_client_subscriber_list(). */
struct vnet_client_subscribers {
    struct vnet_subscriber *subscribers; /* count of them, in id order */
    uint32_t count;
};

/* vnet_client_node_add(): the stored node and its join token. */
struct vnet_client_new_node {
    struct vnet_node_info node;
    /* The node's single-use join token for `vnet-node --join` (valid 24 h): made when the
     * controller has a key and no public key was given; "" otherwise. */
    char join_token[VNET_CLIENT_TOKEN_MAX];
};

/* vnet_client_subscriber_create() and _token(): the subscriber and its new API token. */
struct vnet_client_new_token {
    struct vnet_subscriber subscriber;
    char token[VNET_CLIENT_TOKEN_MAX]; /* "vnetapi1-...": shown this once */
};

/**
 * Free a list that a typed call returned. NULL is ignored.
 * Ownership: takes @list (a struct vnet_client_networks, _network, _status, _nodes or
 * _subscribers pointer).
 * Thread-safety: any thread.
 */
VNET_API void vnet_client_free(void *list);

/**
 * Create the network @name with @opts (NULL: the controller's defaults).
 * Ownership: @name and @opts are only read; *out (may be NULL) receives the stored network.
 * Returns: 0, VNET_EEXIST (the name or VNI is taken), VNET_EINVAL (bad settings; also before
 * sending: a VNI over VNET_VNI_MAX, a subnet or mode that is not what its field says),
 * VNET_ENOTSUP (secure mode from a controller without a key), VNET_ENOENT (the admin named no
 * such subscriber), or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_network_create(struct vnet_client *c, const char *name,
                                        const struct vnet_client_network_opts *opts,
                                        struct vnet_network *out, char *err, size_t errlen);

/**
 * List the networks the caller may see (the admin: every one, with its owner).
 * Ownership: *out is the caller's: vnet_client_free().
 * Returns: 0 or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_network_list(struct vnet_client *c, struct vnet_client_networks **out,
                                      char *err, size_t errlen);

/**
 * Show the network @name with its nodes.
 * Ownership: *out is the caller's: vnet_client_free().
 * Returns: 0, VNET_ENOENT (no such network) or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_network_show(struct vnet_client *c, const char *name,
                                      struct vnet_client_network **out, char *err, size_t errlen);

/**
 * Delete the network @name with its nodes.
 * Ownership: nothing is kept.
 * Returns: 0, VNET_ENOENT or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_network_delete(struct vnet_client *c, const char *name, char *err,
                                        size_t errlen);

/**
 * What the controller knows of the sessions of network @name's nodes.
 * Ownership: *out is the caller's: vnet_client_free().
 * Returns: 0, VNET_ENOENT or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_network_status(struct vnet_client *c, const char *name,
                                        struct vnet_client_status **out, char *err, size_t errlen);

/**
 * Add the node @name to @network with @opts (NULL: the controller's defaults). The result
 * carries the node's join token when the controller made one.
 * Ownership: the strings and @opts are only read; *out (not NULL) is filled.
 * Returns: 0, VNET_ENOENT (no such network), VNET_EEXIST (name, MAC, IP or key taken),
 * VNET_EINVAL (bad settings; also before sending: a multicast MAC, an address in the wrong
 * field), VNET_ENOSPC (no free address left) or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_node_add(struct vnet_client *c, const char *network, const char *name,
                                  const struct vnet_client_node_opts *opts,
                                  struct vnet_client_new_node *out, char *err, size_t errlen);

/**
 * List the nodes of @network.
 * Ownership: *out is the caller's: vnet_client_free().
 * Returns: 0, VNET_ENOENT or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_node_list(struct vnet_client *c, const char *network,
                                   struct vnet_client_nodes **out, char *err, size_t errlen);

/**
 * Show the node @name of @network.
 * Ownership: *out (not NULL) is filled.
 * Returns: 0, VNET_ENOENT or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_node_show(struct vnet_client *c, const char *network, const char *name,
                                   struct vnet_node_info *out, char *err, size_t errlen);

/**
 * Set the physical (underlay) endpoint of node @name of @network to @phys.
 * Ownership: *out (may be NULL) receives the node as stored (its new revision).
 * Returns: 0, VNET_ENOENT, VNET_EINVAL (@phys NULL or without an address) or as the other
 * typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_node_move(struct vnet_client *c, const char *network, const char *name,
                                   const struct vnet_endpoint *phys, struct vnet_node_info *out,
                                   char *err, size_t errlen);

/**
 * Remove the node @name from @network; its session, if any, is closed.
 * Returns: 0, VNET_ENOENT or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_node_remove(struct vnet_client *c, const char *network, const char *name,
                                     char *err, size_t errlen);

/**
 * Forget the key of node @name of @network: it is disconnected and refused until it enrols
 * with a new key.
 * Returns: 0, VNET_ENOENT or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_node_revoke(struct vnet_client *c, const char *network, const char *name,
                                     char *err, size_t errlen);

/**
 * (Admin) Create the subscriber @name with a new API token.
 * Ownership: *out (not NULL) is filled; wipe out->token when done with it.
 * Returns: 0, VNET_EEXIST, VNET_EPERM (not the admin) or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_subscriber_create(struct vnet_client *c, const char *name,
                                           struct vnet_client_new_token *out, char *err,
                                           size_t errlen);

/**
 * (Admin) List every subscriber.
 * Ownership: *out is the caller's: vnet_client_free().
 * Returns: 0, VNET_EPERM (not the admin) or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_subscriber_list(struct vnet_client *c,
                                         struct vnet_client_subscribers **out, char *err,
                                         size_t errlen);

/**
 * (Admin) Delete the subscriber @name.
 * Returns: 0, VNET_EBUSY (it still owns networks), VNET_ENOENT, VNET_EPERM or as the other
 * typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_subscriber_delete(struct vnet_client *c, const char *name, char *err,
                                           size_t errlen);

/**
 * (Admin) Give the subscriber @name a new API token; the old one stops working and its
 * sessions are closed.
 * Ownership: *out (not NULL) is filled; wipe out->token when done with it.
 * Returns: 0, VNET_ENOENT, VNET_EPERM or as the other typed calls.
 * Thread-safety: one thread per client.
 */
VNET_API int vnet_client_subscriber_token(struct vnet_client *c, const char *name,
                                          struct vnet_client_new_token *out, char *err,
                                          size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
