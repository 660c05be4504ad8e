/* libvnet: the interface for store engine authors.
 *
 * An engine is one constant ops table, registered by URI scheme. The built-in one is
 * vnet_store_sqlite_ops ("sqlite:PATH", also any URI without a registered scheme); a later
 * PostgreSQL engine registers "postgres". vnet_store_open("SCHEME:ARG") finds the engine and
 * calls its open() with ARG (for "postgres://h/db", ARG is "//h/db").
 *
 * An engine is storage only: transactions and row primitives. Every rule lives once in the
 * dispatcher (libvnet/store.c), for every engine: argument checks and defaults, uniqueness
 * checks and their messages, MAC and IP assignment policy, revision bumps, the content of
 * change records (vnet_store_node_encode()), retention, token expiry, the read-only refusal.
 * The dispatcher calls the primitives inside begin()/commit() and relies on the engine for
 * isolation: inside a write transaction, what a lookup returns is what the transaction's later
 * writes see (SQLite: BEGIN IMMEDIATE; PostgreSQL: SERIALIZABLE, or a lock taken in begin()).
 *
 * Conventions for every member below:
 *   - @state is what open() returned; the dispatcher uses one handle from one thread at a time.
 *   - Pointer arguments are never NULL unless the member says "may be NULL"; @err is never NULL
 *     and @errlen > 0. Names are valid (vnet_name_valid()), addresses have family
 *     VNET_AF_INET (bytes 4..15 zero) or VNET_AF_INET6, keys are VNET_PUBKEY_LEN bytes and
 *     token hashes VNET_TOKEN_HASH_LEN bytes.
 *   - Returns 0, VNET_ENOENT (a lookup or an update/delete by id found no row; @err untouched),
 *     or an engine error with one line in @err: VNET_EBUSY (locked beyond the busy timeout),
 *     VNET_ECORRUPT (a stored value the engine cannot read back), VNET_ENOMEM, VNET_EPERM
 *     (the database itself is read-only), VNET_EEXIST (a uniqueness constraint of the schema
 *     fired: the dispatcher checks first, so this is a race or a bug), VNET_EIO (other).
 *   - Results (*out, *id, ...) are filled whole (every field, zeroed padding) on 0; after an
 *     error their content is unspecified (the dispatcher does not use it).
 *   - Walks (the *_list members) call @fn once per row in the order given, inside the
 *     dispatcher's transaction; @fn does not call the engine. A non-zero return of @fn stops
 *     the walk and is returned.
 *   - Every member is required: vnet_store_register() refuses a table with a NULL member.
 *
 * Thread-safety: vnet_store_register() is thread-safe; the helpers are pure functions.
 */
#ifndef VNET_SYS_STORE_H
#define VNET_SYS_STORE_H

#include "vnet/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 3: transactions and row primitives; the rules moved into the dispatcher. */
#define VNET_STORE_OPS_VERSION 3

/* One stored change record, as change_list() gives it. */
struct vnet_store_change_row {
    uint64_t revision;
    int op;              /* enum vnet_change_op, or VNET_STORE_CHANGE_NET_DEL */
    const void *payload; /* NULL when none; valid during the callback */
    size_t payload_len;
};

typedef int (*vnet_store_change_row_fn)(const struct vnet_store_change_row *row, void *arg);

struct vnet_store_ops {
    uint32_t version;   /* VNET_STORE_OPS_VERSION */
    const char *scheme; /* the URI prefix before ':', "sqlite" */

    /* ---- life cycle ---- */

    /* Open (creating and migrating the schema unless @opts->read_only) the database named by
     * @arg, the URI after "SCHEME:". @opts has its defaults applied (retention, busy timeout).
     * Allocates the engine's state into *state; close() frees it. Errors as vnet_store_open(). */
    int (*open)(const char *arg, const struct vnet_store_opts *opts, void **state, char *err,
                size_t errlen);
    /* Free @state (never NULL). No transaction is open. */
    void (*close)(void *state);

    /* ---- transactions ---- */

    /* Start a transaction: @write true for one that will write (take the write lock now, so a
     * busy database fails here and the reads that follow see what the writes then change),
     * false for a consistent read of several rows. Never nested. */
    int (*begin)(void *state, bool write, char *err, size_t errlen);
    /* Commit the open transaction. On failure the dispatcher calls rollback(). */
    int (*commit)(void *state, char *err, size_t errlen);
    /* Undo the open transaction, if one is still open (an error may have ended it already).
     * Cannot fail in a way the caller could act on. */
    void (*rollback)(void *state);

    /* ---- subscribers (table: id, name unique, token hash unique when set) ---- */

    /* The subscriber with id @id / name @name / token hash @hash: all fields of @out (admin is
     * id == VNET_SUBSCRIBER_ADMIN, has_token whether a hash is set). */
    int (*subscriber_get)(void *state, uint64_t id, struct vnet_subscriber *out, char *err,
                          size_t errlen);
    int (*subscriber_by_name)(void *state, const char *name, struct vnet_subscriber *out, char *err,
                              size_t errlen);
    int (*subscriber_by_token)(void *state, const uint8_t *hash, struct vnet_subscriber *out,
                               char *err, size_t errlen);
    /* Walk every subscriber in id order. */
    int (*subscriber_list)(void *state, vnet_store_subscriber_fn fn, void *arg, char *err,
                           size_t errlen);
    /* Insert a subscriber with @name and @hash (may be NULL: none); *id gets its new id, never
     * one used before. */
    int (*subscriber_insert)(void *state, const char *name, const uint8_t *hash, uint64_t *id,
                             char *err, size_t errlen);
    /* Set (@hash may be NULL: clear) subscriber @id's token hash. VNET_ENOENT: no such row. */
    int (*subscriber_set_token)(void *state, uint64_t id, const uint8_t *hash, char *err,
                                size_t errlen);
    /* Delete subscriber @id (the dispatcher checked it owns no network). */
    int (*subscriber_delete)(void *state, uint64_t id, char *err, size_t errlen);

    /* ---- networks (unique: VNI; subscriber_id and name) ---- */

    /* The network with id @id / VNI @vni / owner @subscriber_id and name @name (subscriber 0:
     * any owner, the one with the lowest id): every field of struct vnet_network. */
    int (*network_get)(void *state, uint64_t id, struct vnet_network *out, char *err,
                       size_t errlen);
    int (*network_by_vni)(void *state, uint32_t vni, struct vnet_network *out, char *err,
                          size_t errlen);
    int (*network_by_name)(void *state, uint64_t subscriber_id, const char *name,
                           struct vnet_network *out, char *err, size_t errlen);
    /* Walk the networks of @subscriber_id (0: all) ordered by name, then id. */
    int (*network_list)(void *state, uint64_t subscriber_id, vnet_store_network_fn fn, void *arg,
                        char *err, size_t errlen);
    /* The lowest VNI in 1..VNET_VNI_MAX no network has, in *vni; VNET_ENOSPC when none. */
    int (*network_free_vni)(void *state, uint32_t *vni, char *err, size_t errlen);
    /* Insert @n (every field but id, which it sets to a new id, never one used before). */
    int (*network_insert)(void *state, struct vnet_network *n, char *err, size_t errlen);
    /* Set network @id's revision. VNET_ENOENT: no such row. */
    int (*network_set_revision)(void *state, uint64_t id, uint64_t revision, char *err,
                                size_t errlen);
    /* Delete network @id and all its nodes (change records stay: see change_prune()). */
    int (*network_delete)(void *state, uint64_t id, char *err, size_t errlen);

    /* ---- nodes (unique per network: name, MAC, IPv4, IPv6; join token hash in the store) ---- */

    /* The node with id @id / of network @network_id with name @name, MAC @mac or address
     * @ip (in ips[0] when IPv4, ips[1] when IPv6): every field of struct vnet_node_info. */
    int (*node_get)(void *state, uint64_t id, struct vnet_node_info *out, char *err, size_t errlen);
    int (*node_by_name)(void *state, uint64_t network_id, const char *name,
                        struct vnet_node_info *out, char *err, size_t errlen);
    int (*node_by_mac)(void *state, uint64_t network_id, const struct vnet_mac *mac,
                       struct vnet_node_info *out, char *err, size_t errlen);
    int (*node_by_ip)(void *state, uint64_t network_id, const struct vnet_ip *ip,
                      struct vnet_node_info *out, char *err, size_t errlen);
    /* The node of @network_id with public key @pub and the lowest id above @after_id (keys are
     * not unique in files from before schema v3: the dispatcher asks for the next one). */
    int (*node_by_pubkey)(void *state, uint64_t network_id, const uint8_t *pub, uint64_t after_id,
                          struct vnet_node_info *out, char *err, size_t errlen);
    /* The node whose join token hash is @hash, with the token's expiry (Unix seconds, 0: none)
     * in *expires. */
    int (*node_by_join_token)(void *state, const uint8_t *hash, struct vnet_node_info *out,
                              uint64_t *expires, char *err, size_t errlen);
    /* Walk the nodes of @network_id ordered by name (none for an unknown network). */
    int (*node_list)(void *state, uint64_t network_id, vnet_store_node_fn fn, void *arg, char *err,
                     size_t errlen);
    /* The lowest address from @first to @last (same family) that no node of @network_id has,
     * in *out; VNET_ENOSPC when all are taken. The engine may remember, until another
     * connection commits or a node or network is deleted, that the addresses below the one it
     * returned are taken once the transaction commits (the dispatcher then inserts a node with
     * it), so the next call need not scan them again. */
    int (*node_free_ip)(void *state, uint64_t network_id, const struct vnet_ip *first,
                        const struct vnet_ip *last, struct vnet_ip *out, char *err, size_t errlen);
    /* Insert @n (every field but id, which it sets to a new id, never one used before), with
     * no join token. */
    int (*node_insert)(void *state, struct vnet_node_info *n, char *err, size_t errlen);
    /* Write the mutable fields of node @n->id: pubkey/has_pubkey, phys, observed, state and
     * revision (name, network, MAC and addresses never change). VNET_ENOENT: no such row. */
    int (*node_update)(void *state, const struct vnet_node_info *n, char *err, size_t errlen);
    /* Set node @id's join token hash (@hash may be NULL: none; then @expires is 0) and its
     * expiry. VNET_ENOENT: no such row. */
    int (*node_set_join_token)(void *state, uint64_t id, const uint8_t *hash, uint64_t expires,
                               char *err, size_t errlen);
    /* Delete node @id (with its join token). */
    int (*node_delete)(void *state, uint64_t id, char *err, size_t errlen);

    /* ---- change log (records: store-wide increasing id, network, revision, op, payload) ---- */

    /* Append a record for @network_id with a new store-wide id above every earlier one (also
     * above those of pruned records). @payload may be NULL (@len 0). */
    int (*change_append)(void *state, uint64_t network_id, uint64_t revision, int op,
                         const void *payload, size_t len, char *err, size_t errlen);
    /* Delete the records of @network_id with revision <= @upto (UINT64_MAX: all of them). */
    int (*change_prune)(void *state, uint64_t network_id, uint64_t upto, char *err, size_t errlen);
    /* The lowest revision kept for @network_id in *revision; VNET_ENOENT when none. */
    int (*change_oldest)(void *state, uint64_t network_id, uint64_t *revision, char *err,
                         size_t errlen);
    /* Walk the records of @network_id with revision > @since in revision order. */
    int (*change_list)(void *state, uint64_t network_id, uint64_t since,
                       vnet_store_change_row_fn fn, void *arg, char *err, size_t errlen);
    /* The highest store-wide record id in *id (0: none yet). */
    int (*change_last)(void *state, uint64_t *id, char *err, size_t errlen);
    /* Walk the distinct network ids of the records with store-wide id > @since, increasing. */
    int (*change_networks)(void *state, uint64_t since, vnet_store_id_fn fn, void *arg, char *err,
                           size_t errlen);
};

/* Register an engine. The table must outlive its use. Returns 0, VNET_EEXIST (scheme taken),
 * VNET_ENOSPC (too many engines) or VNET_EINVAL (bad table, version or scheme: the scheme is
 * 2..31 characters of [a-z0-9+.-] starting with a letter; a NULL member). Thread-safe. */
VNET_API int vnet_store_register(const struct vnet_store_ops *ops);

/* The engine registered for @scheme ("sqlite"), or NULL: for engines that wrap another one
 * (fault injection in tests, tracing). Thread-safe. */
VNET_API const struct vnet_store_ops *vnet_store_engine(const char *scheme);

VNET_API extern const struct vnet_store_ops vnet_store_sqlite_ops;

/* ---- helpers for engines ---- */

/* Defaults and limits the dispatcher applies. */
#define VNET_STORE_RETENTION_DEFAULT 10000
#define VNET_STORE_BUSY_MS_DEFAULT   5000
#define VNET_STORE_MTU_DEFAULT       1450
#define VNET_STORE_MTU_MIN           576 /* 1280 when the network has an IPv6 subnet */
#define VNET_STORE_MTU_MAX           9216

/* The op of the record the dispatcher appends for a deleted network (the record that makes
 * vnet_store_changed_networks() report it). Never passed to a vnet_store_change_fn. */
#define VNET_STORE_CHANGE_NET_DEL 4

/* Write one line to @err (when non-NULL and errlen > 0), printf style. */
VNET_API void vnet_store_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Compare two addresses of the same family as unsigned big-endian numbers (<0, 0, >0). */
VNET_API int vnet_store_ip_cmp(const struct vnet_ip *a, const struct vnet_ip *b);

/* Add one to @ip. Returns false when it wrapped around (the all-ones address). */
VNET_API bool vnet_store_ip_inc(struct vnet_ip *ip);

/* Node records, the payload the dispatcher stores in NODE_PUT and NODE_DEL change records
 * (engines store it as opaque bytes): a compact, versioned, byte-order independent encoding
 * of every field of struct vnet_node_info (layout in docs/store.md). encode returns the length
 * written, or VNET_ENOSPC when @len is too small (VNET_STORE_NODE_ENC_MAX always does), or
 * VNET_EINVAL for a node that cannot be stored (bad name, family or state); decode returns 0
 * or VNET_ECORRUPT for anything but one well-formed record of exactly @len bytes. */
#define VNET_STORE_NODE_ENC_MAX 256
VNET_API int vnet_store_node_encode(const struct vnet_node_info *n, uint8_t *buf, size_t len);
VNET_API int vnet_store_node_decode(const uint8_t *buf, size_t len, struct vnet_node_info *out);

#ifdef __cplusplus
}
#endif
#endif
