/* libvnet: the interface for store engine authors.
 *
 * An engine is one constant ops table, registered by URI scheme. The built-in one is
 * vnet_store_sqlite_ops ("sqlite:PATH", also any URI without a registered scheme); a later
 * PostgreSQL engine registers "postgres". vnet_store_open("SCHEME:ARG") finds the engine and
 * calls its open() with ARG (for "postgres://h/db", ARG is "//h/db").
 *
 * The dispatcher (libvnet/store.c) does every check that needs no stored data before it calls
 * an engine, so engines receive:
 *   - non-NULL pointers for every argument the public call requires, and non-NULL @out and
 *     @err (errlen > 0) even when the caller passed NULL;
 *   - a network spec checked by vnet_store_check_network_spec(): valid name, subscriber_id
 *     and mtu defaults applied, has_vni true when a VNI was given (then 1..VNET_VNI_MAX),
 *     subnets with host bits cleared, mode VNET_MODE_PLAIN or VNET_MODE_SECURE (the default
 *     applied) with has_mode true;
 *   - a node spec checked by vnet_store_check_node_spec(): valid name, unicast non-zero MAC
 *     when has_mac, ips[0] the IPv4 address (family 0: assign) and ips[1] the IPv6 address,
 *     a valid or empty phys endpoint;
 *   - valid names and endpoints in the other calls, non-NULL and not all-zero keys and token
 *     hashes (NULL only where the public call allows it: "clear"), and no write call on a
 *     read-only store; never the admin subscriber in subscriber_delete().
 * The engine does what needs the data: uniqueness (of token hashes in the store, of public keys
 * per network), IP-in-subnet (vnet_store_check_ip()), address assignment, transactions,
 * revisions, the change log and its retention, and token expiry.
 *
 * Thread-safety: vnet_store_register() is thread-safe; the helpers are pure functions.
 */
#ifndef VNET_SYS_STORE_H
#define VNET_SYS_STORE_H

#include "vnet/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VNET_STORE_OPS_VERSION 2 /* 2: subscribers, node keys and enrolment */

/* One member per call of vnet/store.h, with the engine's state first. Every member is
 * required. Errors and semantics are those of the public call. */
struct vnet_store_ops {
    uint32_t version;   /* VNET_STORE_OPS_VERSION */
    const char *scheme; /* the URI prefix before ':', "sqlite" */
    /* @arg: the URI after "SCHEME:". @opts has its defaults applied. Allocate the engine's
     * state into *state; close() frees it. */
    int (*open)(const char *arg, const struct vnet_store_opts *opts, void **state, char *err,
                size_t errlen);
    void (*close)(void *state);

    int (*subscriber_create)(void *state, const char *name, const uint8_t *token_hash,
                             struct vnet_subscriber *out, char *err, size_t errlen);
    int (*subscriber_get)(void *state, const char *name, struct vnet_subscriber *out);
    int (*subscriber_get_by_id)(void *state, uint64_t id, struct vnet_subscriber *out);
    int (*subscriber_by_token)(void *state, const uint8_t *token_hash, struct vnet_subscriber *out);
    int (*subscriber_list)(void *state, vnet_store_subscriber_fn fn, void *arg);
    int (*subscriber_set_token)(void *state, uint64_t id, const uint8_t *token_hash);
    int (*subscriber_delete)(void *state, uint64_t id);

    int (*network_create)(void *state, const struct vnet_network_spec *spec,
                          struct vnet_network *out, char *err, size_t errlen);
    int (*network_get)(void *state, uint64_t subscriber_id, const char *name,
                       struct vnet_network *out);
    int (*network_get_by_id)(void *state, uint64_t id, struct vnet_network *out);
    int (*network_list)(void *state, uint64_t subscriber_id, vnet_store_network_fn fn, void *arg);
    int (*network_delete)(void *state, uint64_t network_id, char *err, size_t errlen);

    int (*node_add)(void *state, uint64_t network_id, const struct vnet_node_spec *spec,
                    struct vnet_node *out, char *err, size_t errlen);
    int (*node_get)(void *state, uint64_t network_id, const char *name, struct vnet_node *out);
    int (*node_get_by_id)(void *state, uint64_t node_id, struct vnet_node *out);
    int (*node_list)(void *state, uint64_t network_id, vnet_store_node_fn fn, void *arg);
    int (*node_move)(void *state, uint64_t network_id, const char *name,
                     const struct vnet_endpoint *phys, struct vnet_node *out, char *err,
                     size_t errlen);
    int (*node_set_observed)(void *state, uint64_t node_id, const struct vnet_endpoint *observed,
                             struct vnet_node *out);
    int (*node_remove)(void *state, uint64_t network_id, const char *name, uint64_t *revision,
                       char *err, size_t errlen);
    int (*node_set_pubkey)(void *state, uint64_t node_id, const uint8_t *pub);
    int (*node_set_join_token)(void *state, uint64_t node_id, const uint8_t *token_hash,
                               uint64_t expires_unix);
    int (*node_join)(void *state, const uint8_t *token_hash, const uint8_t *pub, uint64_t now_unix,
                     struct vnet_node *out, char *err, size_t errlen);
    int (*node_by_pubkey)(void *state, uint64_t network_id, const uint8_t *pub,
                          struct vnet_node *out);
    int (*node_revoke)(void *state, uint64_t node_id);

    int (*changes_since)(void *state, uint64_t network_id, uint64_t since, vnet_store_change_fn fn,
                         void *arg);
    int (*last_change)(void *state, uint64_t *out);
    int (*changed_networks)(void *state, uint64_t since, vnet_store_id_fn fn, void *arg);
};

/* Register an engine. The table must outlive its use. Returns 0, VNET_EEXIST (scheme taken),
 * VNET_ENOSPC (too many engines) or VNET_EINVAL (bad table, version or scheme: the scheme is
 * 2..31 characters of [a-z0-9+.-] starting with a letter). Thread-safe. */
int vnet_store_register(const struct vnet_store_ops *ops);

extern const struct vnet_store_ops vnet_store_sqlite_ops;

/* ---- helpers for engines ---- */

/* Defaults and limits the dispatcher applies. */
#define VNET_STORE_RETENTION_DEFAULT 10000
#define VNET_STORE_BUSY_MS_DEFAULT   5000
#define VNET_STORE_MTU_DEFAULT       1450
#define VNET_STORE_MTU_MIN           576 /* 1280 when the network has an IPv6 subnet */
#define VNET_STORE_MTU_MAX           9216

/* A change op engines store for a deleted network (the record that makes
 * vnet_store_changed_networks() report it). Never passed to a vnet_store_change_fn. */
#define VNET_STORE_CHANGE_NET_DEL 4

/* Write one line to @err (when non-NULL and errlen > 0), printf style. */
void vnet_store_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Check @in and write its normalized form to @out (see the top of this file). Returns 0 or
 * VNET_EINVAL with @err naming the problem. */
int vnet_store_check_network_spec(const struct vnet_network_spec *in, struct vnet_network_spec *out,
                                  char *err, size_t errlen);
int vnet_store_check_node_spec(const struct vnet_node_spec *in, struct vnet_node_spec *out,
                               char *err, size_t errlen);

/* 0 when @ep is empty (family 0; the port must then be 0 too) or an IPv4/IPv6 address with
 * a port 1..65535; VNET_EINVAL otherwise. */
int vnet_store_check_endpoint(const struct vnet_endpoint *ep);

/* 0 when @ip may be a node address of network @net: the network has a subnet of that
 * family, @ip is inside it and is not the subnet's network address nor (IPv4) its broadcast
 * address. VNET_EINVAL otherwise, with @err naming the IP, the subnet and the network. */
int vnet_store_check_ip(const struct vnet_network *net, const struct vnet_ip *ip, char *err,
                        size_t errlen);

/* The first and last assignable host addresses of subnet @p (the address after the network
 * address; the last before the broadcast for IPv4, the all-ones address for IPv6). */
void vnet_store_subnet_first(const struct vnet_prefix *p, struct vnet_ip *out);
void vnet_store_subnet_last(const struct vnet_prefix *p, struct vnet_ip *out);

/* Compare two addresses of the same family as unsigned big-endian numbers (<0, 0, >0). */
int vnet_store_ip_cmp(const struct vnet_ip *a, const struct vnet_ip *b);

/* Add one to @ip. Returns false when it wrapped around (the all-ones address). */
bool vnet_store_ip_inc(struct vnet_ip *ip);

/* Node records for change logs: a compact, versioned, byte-order independent encoding of every
 * field of struct vnet_node (layout in docs/store.md). encode returns the length written, or
 * VNET_ENOSPC when @len is too small (VNET_STORE_NODE_ENC_MAX always does), or VNET_EINVAL
 * for a node that cannot be stored (bad name, family or state); decode returns 0 or
 * VNET_ECORRUPT for anything but one well-formed record of exactly @len bytes. */
#define VNET_STORE_NODE_ENC_MAX 256
int vnet_store_node_encode(const struct vnet_node *n, uint8_t *buf, size_t len);
int vnet_store_node_decode(const uint8_t *buf, size_t len, struct vnet_node *out);

#ifdef __cplusplus
}
#endif
#endif
