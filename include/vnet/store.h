/* libvnet: the VN configuration database.
 *
 * Every network, node, virtual address and physical address, with a revision per change and a
 * change log per network. A store is an engine behind an ops table (include/vnet/sys/store.h
 * for engine authors); "sqlite:PATH" (or a plain path) is the default engine.
 *
 * Every call that changes something is one transaction: it happens whole or not at all. Every
 * change to a network or one of its nodes bumps that network's revision by one and appends one
 * record to its change log; the log keeps at least the last `retention` records per network.
 * (A node's join token is not such a change: see vnet_store_node_set_join_token().)
 *
 * Validation lives here, in one place: names; unique VNI in the store; network name unique per
 * subscriber; node name, MAC and IPs unique within the network; IPs inside the network's
 * subnet (and not its network or broadcast address); a locally administered unicast MAC and
 * the next free IP are assigned when the request gives none. A refused request returns an
 * error and fills @err (when given) with one line naming the conflict, e.g.
 * "VNI 42 is used by network 'blue'".
 *
 * Secrets: the store never sees a token. Subscriber tokens and node join tokens are stored as
 * their 32-byte hashes (the caller hashes, crypto_generichash with a 32-byte output), looked up
 * by hash and unique in the store; node public keys are unique per network. The store does not
 * authorize: a call given a subscriber id 0 sees every subscriber's data, and the calls that
 * take a network or node id do not check who owns it. Callers acting for a subscriber pass its
 * id to vnet_store_network_get()/_list() and check network.subscriber_id on the others.
 *
 * Errors: VNET_EINVAL (bad argument), VNET_EEXIST (a uniqueness conflict), VNET_ENOENT (no
 * such subscriber/network/node, unknown token), VNET_ENOSPC (no free IP left in the subnet, no free
 * VNI), VNET_EBUSY (the database is locked by another process beyond the busy timeout),
 * VNET_ECORRUPT (the file is not a database, is damaged, or is another application's database),
 * VNET_EVERSION (schema newer than this library; or older, on a read-only open, which cannot
 * migrate), VNET_EPERM (a change requested on a store opened read-only), VNET_ENOTSUP (no engine
 * for the URI's scheme), VNET_EIO (other engine errors; @err has the engine's message). Calls
 * without @err log engine errors through vnet_log() (module "store").
 *
 * Thread-safety: a store handle is used by one thread at a time. Several processes may open
 * the same SQLite file (WAL mode); writers wait up to the busy timeout.
 */
#ifndef VNET_STORE_H
#define VNET_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "vnet/model.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vnet_store;

struct vnet_store_opts {
    uint32_t retention;       /* change records kept per network at least; 0: 10,000 */
    uint32_t busy_timeout_ms; /* wait for a lock held by another process; 0: 5,000 */
    bool read_only;
};

/* Open (creating if needed) a store. @uri: "sqlite:PATH", or a PATH (anything that does not
 * start with a registered "SCHEME:"). The schema is created or migrated to the current
 * version; a read-only open never creates or changes the file (VNET_ENOENT when it does not
 * exist). @opts may be NULL (all defaults). Returns 0 or an error above; @err gets the
 * reason. *out is freed by vnet_store_close(). */
VNET_API int vnet_store_open(const char *uri, const struct vnet_store_opts *opts,
                             struct vnet_store **out, char *err, size_t errlen);

/* Close and free. NULL is ignored. */
VNET_API void vnet_store_close(struct vnet_store *s);

/* The schema version this library writes. */
#define VNET_STORE_SCHEMA_VERSION 3

/* ---- subscribers (tenants) ---- */

/* The subscriber that owns networks created without one (id 1, "admin"), made with the store,
 * with no token: it cannot authenticate until one is set with vnet_store_admin_token_set(). It
 * cannot be deleted. */
#define VNET_SUBSCRIBER_ADMIN 1

#define VNET_TOKEN_HASH_LEN 32 /* crypto_generichash output length the store keeps */

struct vnet_subscriber {
    uint64_t id; /* store-assigned, never reused */
    char name[VNET_NAME_MAX];
    bool admin;     /* id == VNET_SUBSCRIBER_ADMIN */
    bool has_token; /* a token hash is set (it can authenticate) */
};

/* Create a subscriber. @token_hash: VNET_TOKEN_HASH_LEN bytes, or NULL for none yet (it cannot
 * authenticate until vnet_store_subscriber_set_token()). Fills *out (may be NULL). Errors:
 * VNET_EINVAL (invalid name; an all-zero hash, which is a caller bug, never a real hash),
 * VNET_EEXIST (name taken, or the hash is another subscriber's: the message does not name
 * it), VNET_EPERM (read-only) or an engine error. No change record (subscribers have no log). */
VNET_API int vnet_store_subscriber_create(struct vnet_store *s, const char *name,
                                          const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                          struct vnet_subscriber *out, char *err, size_t errlen);

/* Look up by name, or by token hash (to authenticate a subscriber session: hash the presented
 * token, then look it up). 0, VNET_ENOENT (no such name / no subscriber has that hash),
 * VNET_EINVAL (invalid name, NULL hash) or an engine error (logged). *out may be NULL. */
VNET_API int vnet_store_subscriber_get(struct vnet_store *s, const char *name,
                                       struct vnet_subscriber *out);
VNET_API int vnet_store_subscriber_get_by_id(struct vnet_store *s, uint64_t id,
                                             struct vnet_subscriber *out);
VNET_API int vnet_store_subscriber_by_token(struct vnet_store *s,
                                            const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                            struct vnet_subscriber *out);

/* Call @fn for each subscriber in id order (the admin first); a non-zero return stops the walk
 * and is returned. */
typedef int (*vnet_store_subscriber_fn)(const struct vnet_subscriber *sub, void *arg);
VNET_API int vnet_store_subscriber_list(struct vnet_store *s, vnet_store_subscriber_fn fn,
                                        void *arg);

/* Replace subscriber @id's token hash (token rotation: the old token stops working when this
 * returns); NULL clears it (the subscriber can no longer authenticate). 0, VNET_ENOENT,
 * VNET_EEXIST (the hash is another subscriber's), VNET_EINVAL (all-zero hash), VNET_EPERM or
 * an engine error (logged). */
VNET_API int vnet_store_subscriber_set_token(struct vnet_store *s, uint64_t id,
                                             const uint8_t token_hash[VNET_TOKEN_HASH_LEN]);

/* vnet_store_subscriber_set_token(s, VNET_SUBSCRIBER_ADMIN, token_hash). */
VNET_API int vnet_store_admin_token_set(struct vnet_store *s,
                                        const uint8_t token_hash[VNET_TOKEN_HASH_LEN]);

/* Delete subscriber @id. Refused with VNET_EBUSY while it owns networks (delete them first;
 * a locked database also gives VNET_EBUSY, after the busy timeout: vnet_store_network_list()
 * tells them apart), VNET_EPERM for the admin subscriber (and on a read-only store),
 * VNET_ENOENT when there is none. Its id is never reused. Engine errors are logged. */
VNET_API int vnet_store_subscriber_delete(struct vnet_store *s, uint64_t id);

/* ---- networks ---- */

/* struct vnet_network.mode: the data plane of a network. */
#define VNET_MODE_PLAIN  0 /* plain VXLAN over UDP (networks from before schema v3) */
#define VNET_MODE_SECURE 1 /* encrypted between node static keys; the default */

struct vnet_network_spec {
    uint64_t subscriber_id; /* 0: VNET_SUBSCRIBER_ADMIN */
    const char *name;
    uint32_t vni;               /* 0: the lowest free VNI >= 1 */
    bool has_vni;               /* vni 0 given explicitly is refused (reserved) */
    struct vnet_prefix subnet4; /* family 0: none (then nodes get no IPv4 unless given one) */
    struct vnet_prefix subnet6; /* family 0: none */
    uint32_t mtu;               /* 0: 1450 */
    /* VNET_MODE_PLAIN or VNET_MODE_SECURE; -1 (or 0 with has_mode false, so a zeroed spec is
     * secure): the default, VNET_MODE_SECURE. Plain must be asked for with has_mode. */
    int mode;
    bool has_mode;
};

/* Create a network. Fills *out (may be NULL) with the stored network (revision 1); the
 * creation is the network's first change record (VNET_CHANGE_NET_PUT, revision 1). IPv4
 * subnets are /1../30, IPv6 /1../127, written without host bits (10.20.0.5/24 is refused with
 * VNET_EINVAL, @err suggesting 10.20.0.0/24); MTU 576..9216 (1280.. with an IPv6 subnet);
 * the name follows VNET_NAME_RULE. VNET_ENOENT: no such subscriber. VNET_EEXIST: the name is
 * taken for this subscriber, the VNI by any network, or a subnet overlaps a subnet of another
 * network of the same subscriber (@err names it; other subscribers' networks may overlap). */
VNET_API int vnet_store_network_create(struct vnet_store *s, const struct vnet_network_spec *spec,
                                       struct vnet_network *out, char *err, size_t errlen);

/* Look up by subscriber and name (subscriber 0: any subscriber; the first match, lowest id).
 * With a non-zero subscriber, another subscriber's network of that name is VNET_ENOENT.
 * 0, VNET_ENOENT, VNET_EINVAL (invalid name) or an engine error. *out may be NULL.
 * vnet_store_network_get_by_id() does not check the owner: compare out->subscriber_id. */
VNET_API int vnet_store_network_get(struct vnet_store *s, uint64_t subscriber_id, const char *name,
                                    struct vnet_network *out);
VNET_API int vnet_store_network_get_by_id(struct vnet_store *s, uint64_t id,
                                          struct vnet_network *out);

/* Call @fn for each network of @subscriber_id (0: all), ordered by name; a non-zero return
 * stops the walk and is returned. */
typedef int (*vnet_store_network_fn)(const struct vnet_network *n, void *arg);
VNET_API int vnet_store_network_list(struct vnet_store *s, uint64_t subscriber_id,
                                     vnet_store_network_fn fn, void *arg);

/* Delete a network with its nodes and change log. Its id is never reused; the deletion is
 * still reported by vnet_store_changed_networks(). VNET_ENOENT: no such network. */
VNET_API int vnet_store_network_delete(struct vnet_store *s, uint64_t network_id, char *err,
                                       size_t errlen);

/* ---- nodes ---- */

struct vnet_node_spec {
    const char *name;
    struct vnet_mac mac; /* used when has_mac */
    bool has_mac;
    struct vnet_ip ips[VNET_NODE_IPS]; /* at most one IPv4 and one IPv6 address, any slot; for
                                          a family not given, the lowest free address of the
                                          network's subnet of that family (if it has one) */
    struct vnet_endpoint phys;         /* family 0: not known yet */
    const uint8_t *pubkey;             /* VNET_PUBKEY_LEN bytes, not all zero, or NULL */
};

/* Add a node. Fills *out (may be NULL) with the stored node; the network's new revision is
 * out->revision. Stored nodes have their IPv4 address (or family 0) in ips[0] and their IPv6
 * address (or family 0) in ips[1], state VNET_NODE_PENDING. A public key already used by a
 * node of the network is VNET_EEXIST. */
VNET_API int vnet_store_node_add(struct vnet_store *s, uint64_t network_id,
                                 const struct vnet_node_spec *spec, struct vnet_node_info *out,
                                 char *err, size_t errlen);

/* Look up a node: 0, VNET_ENOENT, VNET_EINVAL (invalid name) or an engine error. */
VNET_API int vnet_store_node_get(struct vnet_store *s, uint64_t network_id, const char *name,
                                 struct vnet_node_info *out);
VNET_API int vnet_store_node_get_by_id(struct vnet_store *s, uint64_t node_id,
                                       struct vnet_node_info *out);

/* Nodes of a network ordered by name (VNET_ENOENT: no such network); a non-zero return of
 * @fn stops the walk and is returned. The list is read whole first, so @fn may call the
 * store. The same holds for the other walks. */
typedef int (*vnet_store_node_fn)(const struct vnet_node_info *n, void *arg);
VNET_API int vnet_store_node_list(struct vnet_store *s, uint64_t network_id, vnet_store_node_fn fn,
                                  void *arg);

/* Change a node's configured physical endpoint (a move; family 0 clears it). One change
 * record, none when @phys equals the current endpoint. */
VNET_API int vnet_store_node_move(struct vnet_store *s, uint64_t network_id, const char *name,
                                  const struct vnet_endpoint *phys, struct vnet_node_info *out,
                                  char *err, size_t errlen);

/* Record the endpoint a node reported or the controller observed, and mark it active. A change
 * record only when the value (or the state) changed. 0, VNET_ENOENT, VNET_EEXIST (another
 * node of the network has this endpoint, observed or configured: the first one keeps it,
 * nothing changes and a warning naming both is logged), VNET_EINVAL (empty or bad endpoint),
 * VNET_EPERM or an engine error (logged). */
VNET_API int vnet_store_node_set_observed(struct vnet_store *s, uint64_t node_id,
                                          const struct vnet_endpoint *observed,
                                          struct vnet_node_info *out);

/* Remove a node. One change record (VNET_CHANGE_NODE_DEL with its last state, state
 * VNET_NODE_REMOVED). *revision (may be NULL) gets the network's new revision. Its
 * addresses may then be given to other nodes; its id is never reused. */
VNET_API int vnet_store_node_remove(struct vnet_store *s, uint64_t network_id, const char *name,
                                    uint64_t *revision, char *err, size_t errlen);

/* ---- node keys and enrolment ----
 *
 * A node authenticates with a static X25519 key pair; the store keeps the public key, which
 * the other nodes of the network get through change records (the secure data plane needs
 * it). The flow: the admin creates the node (no key), then issues a one-time join token:
 * the caller generates a random token, gives it to the node's operator, and stores only its
 * hash with vnet_store_node_set_join_token(). The node connects presenting the token and its
 * public key; the controller hashes the token and calls vnet_store_node_join(), which binds
 * the key and consumes the token. From then on the node authenticates by its key
 * (vnet_store_node_by_pubkey()). vnet_store_node_revoke() takes the key away. */

/* Set node @node_id's public key (VNET_PUBKEY_LEN bytes, not all zero). One change record
 * (VNET_CHANGE_NODE_PUT), none when it is already the node's key. Cancels the node's join
 * token if it has one. VNET_EEXIST: another node of the network has this key. VNET_ENOENT,
 * VNET_EINVAL, VNET_EPERM or an engine error (logged). */
VNET_API int vnet_store_node_set_pubkey(struct vnet_store *s, uint64_t node_id,
                                        const uint8_t pub[VNET_PUBKEY_LEN]);

/* Give node @node_id a join token: @token_hash (VNET_TOKEN_HASH_LEN bytes, not all zero)
 * valid until @expires_unix (Unix seconds, exclusive; 0: no expiry), replacing any earlier
 * one; NULL cancels it. The token is a secret between the controller and the node, not part of
 * the network's replicated state: no revision bump and no change record. The node may have a
 * key already (re-enrolment replaces it). VNET_EEXIST: the hash is another node's token.
 * VNET_ENOENT, VNET_EINVAL, VNET_EPERM or an engine error (logged). */
VNET_API int vnet_store_node_set_join_token(struct vnet_store *s, uint64_t node_id,
                                            const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                            uint64_t expires_unix);

/* Enrol: in one transaction, find the node whose join token hash is @token_hash, check that
 * it has not expired at @now_unix, set its public key to @pub, clear the token (single use)
 * and append one change record. Fills *out (may be NULL) with the node.
 * Errors: VNET_ENOENT (no node has this token: unknown, already used or cancelled),
 * VNET_ETIMEDOUT (the token expired: now_unix >= expires; it stays stored, unusable, until
 * replaced or cancelled), VNET_EEXIST (another node of the network has this key; the token is
 * not consumed), VNET_EINVAL (NULL or all-zero hash or key), VNET_EPERM, engine errors. */
VNET_API int vnet_store_node_join(struct vnet_store *s,
                                  const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                  const uint8_t pub[VNET_PUBKEY_LEN], uint64_t now_unix,
                                  struct vnet_node_info *out, char *err, size_t errlen);

/* Enrol node @node_id only: as vnet_store_node_join(), but a token that belongs to another
 * node is refused with VNET_EACCES before anything is written (no key registered, the token
 * stays usable by its node). @node_id 0 accepts any node, as vnet_store_node_join() does.
 * Ownership: nothing is kept. Returns what vnet_store_node_join() returns, or VNET_EACCES.
 * Thread-safety: as every call on one store handle (one thread at a time). */
VNET_API int vnet_store_node_join_as(struct vnet_store *s, uint64_t node_id,
                                     const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                     const uint8_t pub[VNET_PUBKEY_LEN], uint64_t now_unix,
                                     struct vnet_node_info *out, char *err, size_t errlen);

/* The node of @network_id whose public key is @pub, to authenticate a node session by its
 * static key. 0, VNET_ENOENT (none: unknown or revoked key), VNET_EEXIST (two nodes share the
 * key, possible only in a file from before schema v3: neither is authenticated, and a warning
 * is logged; revoke one), VNET_EINVAL or an engine error (logged). *out may be NULL. */
VNET_API int vnet_store_node_by_pubkey(struct vnet_store *s, uint64_t network_id,
                                       const uint8_t pub[VNET_PUBKEY_LEN],
                                       struct vnet_node_info *out);

/* Revoke node @node_id: clear its public key (one change record, so the other nodes drop the
 * key; none when it had no key) and cancel its join token. The node can no longer
 * authenticate until it enrols again with a new join token. 0, VNET_ENOENT, VNET_EPERM or an
 * engine error (logged). */
VNET_API int vnet_store_node_revoke(struct vnet_store *s, uint64_t node_id);

/* ---- change log ---- */

/* Call @fn for each change of @network_id with revision > @since, in revision order. Returns
 * 0, or VNET_ERANGE when records after @since are no longer kept or @since is beyond the
 * network's revision (the caller then sends a snapshot), VNET_ENOENT (no such network), or
 * the callback's non-zero value. */
typedef int (*vnet_store_change_fn)(const struct vnet_change *c, void *arg);
VNET_API int vnet_store_changes_since(struct vnet_store *s, uint64_t network_id, uint64_t since,
                                      vnet_store_change_fn fn, void *arg);

/* The store-wide highest change id seen, for pollers that wake on other processes' commits:
 * changes when any network changes. */
VNET_API int vnet_store_last_change(struct vnet_store *s, uint64_t *out);

/* Networks changed after store-wide change id @since (see vnet_store_last_change): @fn gets
 * each network id once, in increasing order. A network deleted after @since is reported too
 * (vnet_store_network_get_by_id() then returns VNET_ENOENT). */
typedef int (*vnet_store_id_fn)(uint64_t id, void *arg);
VNET_API int vnet_store_changed_networks(struct vnet_store *s, uint64_t since, vnet_store_id_fn fn,
                                         void *arg);

#ifdef __cplusplus
}
#endif
#endif
