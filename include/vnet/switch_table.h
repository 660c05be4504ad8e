/* libvnet: the VN switch table.
 *
 * Per node, the table maps (VNI, virtual MAC) to the physical endpoint where that MAC lives,
 * the peer node's id, flags and the revision of the configuration change that wrote it. A
 * second index maps (VNI, virtual IP) to a MAC, so ARP and IPv6 neighbour solicitations can
 * be answered locally.
 *
 * Concurrency. Any number of reader threads (the data plane) look entries up without locks
 * while exactly one writer thread (the management daemon) changes the table. The writer
 * changes it only in batches, vnet_table_apply(): a reader sees the table as it was before a
 * batch or after it, never half of it; every lookup (and every burst lookup) sees one state.
 * Memory of removed entries is reclaimed with quiescent-state-based reclamation: a reader
 * thread registers (vnet_table_reader_register) and calls vnet_table_quiescent() between
 * bursts, at points where it holds no entry pointer. An entry pointer returned by a lookup
 * stays valid until that reader's next vnet_table_quiescent() or vnet_table_reader_offline().
 * The writer thread may look up without registering; its pointers stay valid until its next
 * apply, reclaim or synchronize call. A thread that is neither may not use lookups.
 *
 * Hashing is keyed with a random per-table key (SipHash-1-3), so entries learned from the
 * network cannot be chosen to collide in one bucket.
 *
 * Thread-safety of each call is stated below: "writer" calls must come from one thread at a
 * time (the writer), "reader" calls from a registered reader or the writer.
 */
#ifndef VNET_SWITCH_TABLE_H
#define VNET_SWITCH_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "vnet/types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vnet_table;
struct vnet_table_reader;

/* Entry flags (7 bits). */
#define VNET_ENTRY_STATIC  0x01 /* configured (controller or command line); never learned over */
#define VNET_ENTRY_LEARNED 0x02 /* learned from a received frame's outer source */
#define VNET_ENTRY_LOCAL   0x04 /* the MAC lives on this node */
#define VNET_ENTRY_USER    0x78 /* free for the embedder */

#define VNET_VNI_ANY UINT32_MAX /* "every VNI" for iteration and clearing */

/* An entry as the table stores it (48 bytes). Read-only for callers: read the private fields
 * through the accessors below. */
struct vnet_entry {
    uint64_t revision;     /* revision of the batch that wrote this entry */
    uint32_t priv_gen_[2]; /* private: visibility */
    uint32_t priv_vf_;     /* private: VNI and flags, see vnet_entry_vni/flags */
    uint32_t peer_id;      /* the node this MAC belongs to (0: unknown) */
    struct vnet_mac mac;
    uint16_t port;    /* endpoint UDP port, host order */
    uint8_t addr[16]; /* endpoint address (IPv4 in addr[0..3]) */
};

static inline uint32_t vnet_entry_vni(const struct vnet_entry *e)
{
    return e->priv_vf_ >> 8;
}
static inline unsigned vnet_entry_flags(const struct vnet_entry *e)
{
    return e->priv_vf_ & 0x7f;
}
/* The physical endpoint of @e. */
VNET_API void vnet_entry_endpoint(const struct vnet_entry *e, struct vnet_endpoint *out);

struct vnet_table_opts {
    uint32_t max_entries;      /* MAC entries; 0: 16,777,216 */
    uint32_t max_ip_entries;   /* IP bindings; 0: same as max_entries */
    uint32_t initial_capacity; /* entries to size the index for; 0: 1024 */
    uint32_t max_readers;      /* registered reader threads; 0: 64 */
};

/* Create an empty table. @opts may be NULL for defaults. Returns 0, VNET_EINVAL or
 * VNET_ENOMEM. The caller owns *out and frees it with vnet_table_destroy(). */
VNET_API int vnet_table_create(const struct vnet_table_opts *opts, struct vnet_table **out);

/* Free the table and everything in it. No reader may use it any more. NULL is ignored. */
VNET_API void vnet_table_destroy(struct vnet_table *t);

/* ---- Readers ---- */

/* Register the calling thread as a reader (online). Returns 0, or VNET_ENOSPC when
 * max_readers are registered. Thread-safe. */
VNET_API int vnet_table_reader_register(struct vnet_table *t, struct vnet_table_reader **out);

/* Unregister (implies offline). The handle is freed. Call from the reader's thread. */
VNET_API void vnet_table_reader_unregister(struct vnet_table_reader *r);

/* Announce a quiescent state: the reader holds no entry pointer any more. Cheap (one store);
 * call it between bursts. */
VNET_API void vnet_table_quiescent(struct vnet_table_reader *r);

/* Go offline before blocking (poll, sleep) so the writer does not wait for this reader;
 * online again before the next lookup. Offline implies quiescent. */
VNET_API void vnet_table_reader_offline(struct vnet_table_reader *r);
VNET_API void vnet_table_reader_online(struct vnet_table_reader *r);

/* ---- Lookups (reader) ---- */

/* The entry for (@vni, @mac), or NULL. */
VNET_API const struct vnet_entry *vnet_table_lookup(const struct vnet_table *t, uint32_t vni,
                                                    const struct vnet_mac *mac);

struct vnet_table_key {
    uint32_t vni;
    struct vnet_mac mac;
};

#define VNET_TABLE_BURST_MAX 64

/* Look up @n keys (1..VNET_TABLE_BURST_MAX) at once, all against the same table state,
 * prefetching buckets and entries so the memory accesses of the keys overlap. out[i] is the
 * entry or NULL; bit i of *hit_mask (may be NULL) is set on a hit. Returns the number of
 * hits, or VNET_EINVAL for a bad @n. */
VNET_API int vnet_table_lookup_burst(const struct vnet_table *t, const struct vnet_table_key *keys,
                                     int n, const struct vnet_entry **out, uint64_t *hit_mask);

/* The MAC bound to (@vni, @ip): 0 and *mac filled, or VNET_ENOENT. */
VNET_API int vnet_table_lookup_ip(const struct vnet_table *t, uint32_t vni,
                                  const struct vnet_ip *ip, struct vnet_mac *mac);

/* ---- Changes (writer) ---- */

enum vnet_table_op_type {
    VNET_TABLE_PUT = 1,   /* insert or replace (vni, mac) -> ep, peer_id, flags */
    VNET_TABLE_DEL,       /* remove (vni, mac); absent is not an error */
    VNET_TABLE_PUT_IP,    /* bind (vni, ip) -> mac, replacing an older binding */
    VNET_TABLE_DEL_IP,    /* unbind (vni, ip); absent is not an error */
    VNET_TABLE_CLEAR_VNI, /* remove every entry and binding of vni (VNET_VNI_ANY: all) */
};

struct vnet_table_op {
    enum vnet_table_op_type type;
    uint32_t vni;
    struct vnet_mac mac;     /* PUT, DEL, PUT_IP */
    uint8_t flags;           /* PUT: VNET_ENTRY_* */
    uint32_t peer_id;        /* PUT */
    struct vnet_endpoint ep; /* PUT */
    struct vnet_ip ip;       /* PUT_IP, DEL_IP */
};

/* Apply @n operations as one batch, in order, stamping written entries with @revision, then
 * publish them at once. All or nothing: on error nothing of the batch is visible and the
 * table is as before. Errors: VNET_EINVAL (a bad operation: VNI over 24 bits, unknown type,
 * bad endpoint family, flags over 7 bits; nothing was changed), VNET_ENOSPC (max_entries or
 * max_ip_entries reached), VNET_ENOMEM. Also reclaims memory whose grace period has passed.
 * Writer. */
VNET_API int vnet_table_apply(struct vnet_table *t, const struct vnet_table_op *ops, size_t n,
                              uint64_t revision);

/* Free removed entries and old indexes whose grace period has passed, without waiting.
 * Returns how many items still wait for readers. Writer. */
VNET_API size_t vnet_table_reclaim(struct vnet_table *t);

/* Wait until every online reader has passed a quiescent state, then reclaim everything that
 * is pending. Blocks the caller (yielding the CPU); never call it from a reader. Writer. */
VNET_API void vnet_table_synchronize(struct vnet_table *t);

/* free(@ptr) once every reader has passed a quiescent state: call_rcu for data that readers of
 * this table also read (a datapath's peer list, say). The caller must have made @ptr
 * unreachable for new readers first. Returns 0 or VNET_ENOMEM (then nothing was queued and
 * the caller still owns @ptr). Writer. */
VNET_API int vnet_table_defer_free(struct vnet_table *t, void *ptr);

/* ---- Inspection (reader) ---- */

/* Call @fn for each entry of @vni (VNET_VNI_ANY: all) in unspecified order; a non-zero
 * return stops the walk and is returned. */
typedef int (*vnet_table_iter_fn)(const struct vnet_entry *e, void *arg);
VNET_API int vnet_table_foreach(const struct vnet_table *t, uint32_t vni, vnet_table_iter_fn fn,
                                void *arg);

typedef int (*vnet_table_ip_iter_fn)(uint32_t vni, const struct vnet_ip *ip,
                                     const struct vnet_mac *mac, void *arg);
VNET_API int vnet_table_foreach_ip(const struct vnet_table *t, uint32_t vni,
                                   vnet_table_ip_iter_fn fn, void *arg);

/* Number of MAC entries visible now. */
VNET_API size_t vnet_table_count(const struct vnet_table *t);

/* The revision of the last applied batch (0 for a new table). */
VNET_API uint64_t vnet_table_revision(const struct vnet_table *t);

struct vnet_table_stats {
    uint64_t entries;    /* MAC entries visible */
    uint64_t ip_entries; /* IP bindings visible */
    uint64_t slots;      /* MAC index slots */
    uint64_t ip_slots;   /* IP index slots */
    double load_factor;  /* occupied MAC slots (including tombstones) / slots */
    double ip_load_factor;
    uint64_t memory_bytes;    /* entries, indexes and bookkeeping */
    uint64_t pending_reclaim; /* items waiting for a grace period */
    uint64_t batches;         /* batches applied */
    uint64_t rebuilds;        /* index rebuilds (growth or tombstone cleanup) */
    uint32_t readers;         /* registered readers */
};

/* Fill @out. Sizes are exact for the writer; a reader may see them a batch behind. */
VNET_API void vnet_table_get_stats(const struct vnet_table *t, struct vnet_table_stats *out);

#ifdef __cplusplus
}
#endif
#endif
