/* The VN switch table: a hash table with lock-free readers, one writer, batch-atomic updates
 * and quiescent-state-based reclamation (QSBR).
 *
 * Layout. Entries live in one slab: a virtual range reserved for max_entries at creation and
 * made accessible as the table grows, so entries never move and an entry is named by a 32-bit
 * index (one multiply-add away from its address). Large slabs and indexes ask for
 * transparent huge pages: at a million entries TLB misses, not cache misses, would dominate. The
 * index is an open-addressing array of 64-byte buckets, 8 slots each; a slot is one 64-bit word,
 * (signature << 32 | entry index), written and read atomically, so a reader never sees half a slot.
 * Probing is linear over buckets; a never-used slot ends a probe, a removed one is a tombstone. The
 * bucket comes from the low 32 bits of a keyed SipHash-1-3, the signature from the high 32 (forced
 * odd, so a live slot is never 0 or the tombstone 1). At 1M entries this costs 48 bytes per entry
 * plus 9-15 bytes of index at the 0.55..0.85 load the table keeps.
 *
 * Batches. Every entry carries two generation numbers: the batch that added it and the one
 * that removed it (0: none). The table publishes a generation number g; a reader reads g
 * once per lookup (or burst) and sees exactly the entries added at or before g and not removed
 * at or before g. The writer applies a batch at generation g+1 (new entries are invisible,
 * replaced and deleted ones stay visible) and publishes it with one release store. Entries are
 * immutable once linked, except for those two numbers, so a reader never reads a torn entry.
 * Generations are 32-bit and compared with serial arithmetic; an added entry's number is
 * reset to 0 ("always") after a grace period so it never ages into the future.
 *
 * Reclamation. Readers announce quiescent states (vnet_table_quiescent) by copying the
 * global epoch into their slot. A removed entry goes through two grace periods: after the
 * first, no reader can still see it as visible, so its slot becomes a tombstone; after the
 * second, no reader can still hold its index from an earlier slot read, so it is freed. Old
 * indexes (after a rebuild) are freed after one grace period. All this runs on the writer's
 * thread inside apply/reclaim/synchronize; readers never block and never free.
 */
#include "vec_int.h"
#include "vnet/switch_table.h"
#include "vnet/error.h"
#include "vnet/log.h"

#include <sched.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define HUGE_PAGE    (2u << 20)
#define SMALL_STEP   (64u << 10)
#define BUCKET_SLOTS 8
#define SLOT_EMPTY   0ull
#define SLOT_TOMB    1ull
#define IDX_NONE     UINT32_MAX
#define LOAD_MAX_PCT 85 /* rebuild when occupied slots pass this */
#define LOAD_TARGET  0.55
#define DEFAULT_MAX  (16u << 20)

#define LOAD_RELAXED(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD_ACQUIRE(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORE_RELEASE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* An IP binding, (vni, ip) -> mac. */
struct ip_entry {
    uint32_t gen[2];
    uint32_t vni;
    uint8_t family;
    uint8_t pad;
    uint8_t mac[6];
    uint8_t addr[16];
};

_Static_assert(sizeof(struct vnet_entry) == 48, "vnet_entry must stay 48 bytes");
_Static_assert(sizeof(struct ip_entry) == 36, "ip_entry layout");

#define FAMILY6_FLAG 0x80 /* in priv_vf_: the endpoint is IPv6 */

struct index {
    uint32_t nbuckets;
    uint32_t mapped; /* 1: mmap'd (map, map_len), 0: malloc'd */
    void *map;
    size_t map_len;
    uint8_t pad_[64 - 24];
    uint64_t slots[]; /* nbuckets * BUCKET_SLOTS, 64-byte aligned */
};
_Static_assert(sizeof(struct index) == 64, "index header is one cache line");

enum map_kind { MAP_MAC = 0, MAP_IP = 1 };

struct slab {
    uint8_t *base; /* reserved for max entries; [base, base + committed) is usable */
    void *map;     /* the mapping, for munmap */
    size_t map_len;
    size_t committed;
    uint32_t esize;
    uint32_t hiwater;   /* indexes handed out so far */
    uint32_t free_head; /* IDX_NONE: empty free list */
    uint32_t max;
    uint32_t allocated; /* entries currently allocated (visible or waiting) */
};

struct map {
    struct index *idx; /* published with release */
    struct slab slab;
    uint64_t k0, k1; /* hash key */
    uint32_t live;   /* entries not removed (writer's view; published after commit) */
    uint32_t used;   /* occupied slots including tombstones */
    uint32_t tombs;
    enum map_kind kind;
};

enum retire_kind { R_YOUNG, R_DEAD, R_FREE, R_INDEX, R_PTR };

struct retire {
    uint64_t epoch;
    void *ptr; /* R_INDEX */
    uint32_t idx;
    uint8_t kind;
    uint8_t map;
};

struct rvec {
    struct retire *v;
    size_t head, n, cap;
};

struct undo {
    uint32_t idx;
    uint8_t map;
};

struct uvec {
    struct undo *v;
    size_t n, cap;
};

struct reader_slot {
    uint64_t epoch; /* 0: offline */
    uint32_t in_use;
    char pad_[64 - 12];
} __attribute__((aligned(64)));

struct vnet_table_reader {
    struct vnet_table *t;
    struct reader_slot *slot;
};

struct vnet_table {
    uint32_t gen; /* published generation */
    uint32_t pad0_;
    uint64_t epoch; /* QSBR epoch */
    uint64_t revision;
    struct map maps[2];
    struct rvec retire;
    struct uvec added, killed, requeue;
    uint64_t batches, rebuilds;
    uint32_t nreaders_max;
    struct reader_slot *readers;
};

/* ---- hashing: SipHash-1-3 over whole 64-bit words ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* SipHash-1-3 of a message of @n whole words followed by @tail_len (0..7) bytes in @tail. */
static inline uint64_t sip13(uint64_t k0, uint64_t k1, const uint64_t *m, int n, uint64_t tail,
                             int tail_len)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    for (int i = 0; i < n; i++) {
        v3 ^= m[i];
        SIPROUND;
        v0 ^= m[i];
    }
    uint64_t b = (uint64_t)(8 * n + tail_len) << 56 | tail;
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static inline uint64_t mac_word(const uint8_t *mac)
{
    uint32_t lo;
    uint16_t hi;
    memcpy(&lo, mac, 4);
    memcpy(&hi, mac + 4, 2);
    return (uint64_t)lo | (uint64_t)hi << 32;
}

static inline uint64_t hash_mac(const struct map *m, uint32_t vni, const uint8_t *mac)
{
    /* The 9-byte message MAC, VNI (little-endian, 24 bits): one word and a 1-byte tail, so
     * five SipRounds in all. */
    uint64_t w = mac_word(mac) | (uint64_t)(vni & 0xffff) << 48;
    return sip13(m->k0, m->k1, &w, 1, (vni >> 16) & 0xff, 1);
}

static inline uint64_t hash_ip(const struct map *m, uint32_t vni, uint8_t family,
                               const uint8_t *addr)
{
    uint64_t w[3];
    memcpy(&w[0], addr, 8);
    memcpy(&w[1], addr + 8, 8);
    w[2] = (uint64_t)vni | (uint64_t)family << 32;
    return sip13(m->k0, m->k1, w, 3, 0, 0);
}

static inline uint32_t bucket_of(uint64_t h, uint32_t nbuckets)
{
    return (uint32_t)(((uint64_t)(uint32_t)h * nbuckets) >> 32);
}

static inline uint64_t sig_of(uint64_t h)
{
    return (h >> 32) | 1;
}

/* ---- entries ---- */

static inline void *slab_get(const struct slab *s, uint32_t idx)
{
    return s->base + (size_t)idx * s->esize;
}

static inline struct vnet_entry *mac_entry(const struct map *m, uint32_t idx)
{
    return slab_get(&m->slab, idx);
}

static inline struct ip_entry *ip_entry(const struct map *m, uint32_t idx)
{
    return slab_get(&m->slab, idx);
}

static inline uint32_t *gen_of(const struct map *m, uint32_t idx)
{
    if (m->kind == MAP_MAC)
        return mac_entry(m, idx)->priv_gen_;
    return ip_entry(m, idx)->gen;
}

static inline bool visible(const uint32_t *gen, uint32_t snap)
{
    uint32_t a = LOAD_RELAXED(&gen[0]);
    uint32_t d = LOAD_RELAXED(&gen[1]);
    if (a != 0 && (int32_t)(snap - a) < 0)
        return false;
    if (d != 0 && (int32_t)(snap - d) >= 0)
        return false;
    return true;
}

static inline bool mac_key_eq(const struct vnet_entry *e, uint32_t vni, const uint8_t *mac)
{
    return (e->priv_vf_ >> 8) == vni && mac_word(e->mac.b) == mac_word(mac);
}

static inline bool ip_key_eq(const struct ip_entry *e, uint32_t vni, uint8_t family,
                             const uint8_t *addr)
{
    return e->vni == vni && e->family == family && memcmp(e->addr, addr, 16) == 0;
}

static uint64_t entry_hash(const struct map *m, uint32_t idx)
{
    if (m->kind == MAP_MAC) {
        const struct vnet_entry *e = mac_entry(m, idx);
        return hash_mac(m, e->priv_vf_ >> 8, e->mac.b);
    }
    const struct ip_entry *e = ip_entry(m, idx);
    return hash_ip(m, e->vni, e->family, e->addr);
}

static int slab_alloc(struct slab *s, uint32_t *out)
{
    uint32_t idx;
    if (s->allocated >= s->max)
        return VNET_ENOSPC;
    if (s->free_head != IDX_NONE) {
        idx = s->free_head;
        uint8_t *p = slab_get(s, idx);
        UNPOISON(p, s->esize);
        memcpy(&s->free_head, p + s->esize - 4, 4);
    } else {
        idx = s->hiwater;
        size_t need = ((size_t)idx + 1) * s->esize;
        if (need > s->committed) {
            size_t step = s->committed < HUGE_PAGE ? SMALL_STEP : HUGE_PAGE;
            size_t to = (need + step - 1) / step * step;
            if (to > s->map_len - (size_t)(s->base - (uint8_t *)s->map))
                to = s->map_len - (size_t)(s->base - (uint8_t *)s->map);
            if (mprotect(s->base + s->committed, to - s->committed, PROT_READ | PROT_WRITE))
                return VNET_ENOMEM;
            s->committed = to;
        }
        s->hiwater++;
    }
    s->allocated++;
    *out = idx;
    return 0;
}

static void slab_free(struct slab *s, uint32_t idx)
{
    uint8_t *p = slab_get(s, idx);
    memcpy(p + s->esize - 4, &s->free_head, 4);
    POISON(p, s->esize - 4); /* a reader touching a freed entry trips ASan */
    s->free_head = idx;
    s->allocated--;
}

/* ---- index ---- */

/* A 2 MiB-aligned anonymous mapping of @len bytes (rounded up), asking for huge pages. */
static void *map_huge(size_t len, int prot, void **map, size_t *map_len)
{
    size_t want = (len + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE + HUGE_PAGE;
    void *p = mmap(NULL, want, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uint8_t *aligned = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    (void)madvise(aligned, want - (size_t)(aligned - (uint8_t *)p), MADV_HUGEPAGE);
    *map = p;
    *map_len = want;
    return aligned;
}

static struct index *index_new(uint32_t nbuckets)
{
    size_t bytes = sizeof(struct index) + (size_t)nbuckets * BUCKET_SLOTS * sizeof(uint64_t);
    struct index *ix;
    void *map = NULL;
    size_t map_len = 0;
    if (bytes >= HUGE_PAGE) {
        ix = map_huge(bytes, PROT_READ | PROT_WRITE, &map, &map_len);
        if (!ix)
            return NULL;
    } else {
        ix = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        if (!ix)
            return NULL;
        memset(ix, 0, bytes);
    }
    ix->nbuckets = nbuckets;
    ix->mapped = map != NULL;
    ix->map = map;
    ix->map_len = map_len;
    return ix;
}

static void index_free(struct index *ix)
{
    if (!ix)
        return;
    if (ix->mapped)
        munmap(ix->map, ix->map_len);
    else
        free(ix);
}

static size_t index_bytes(const struct index *ix)
{
    return sizeof(struct index) + (size_t)ix->nbuckets * BUCKET_SLOTS * sizeof(uint64_t);
}

static uint32_t buckets_for(uint64_t entries)
{
    uint64_t slots = (uint64_t)((double)entries / LOAD_TARGET) + BUCKET_SLOTS;
    uint64_t nb = (slots + BUCKET_SLOTS - 1) / BUCKET_SLOTS;
    if (nb < 2)
        nb = 2;
    if (nb > UINT32_MAX / BUCKET_SLOTS)
        nb = UINT32_MAX / BUCKET_SLOTS;
    return (uint32_t)nb;
}

/* Put slot value @v for hash @h into the first free slot (empty or tombstone). The caller
 * made sure there is room. Returns true when a tombstone was reused. */
static bool index_place(struct index *ix, uint64_t h, uint64_t v)
{
    uint32_t b = bucket_of(h, ix->nbuckets);
    for (;;) {
        uint64_t *bk = &ix->slots[(size_t)b * BUCKET_SLOTS];
        for (int s = 0; s < BUCKET_SLOTS; s++) {
            uint64_t cur = LOAD_RELAXED(&bk[s]);
            if (cur == SLOT_EMPTY || cur == SLOT_TOMB) {
                STORE_RELEASE(&bk[s], v);
                return cur == SLOT_TOMB;
            }
        }
        if (++b == ix->nbuckets)
            b = 0;
    }
}

/* Build a new index sized for the current entries, publish it and retire the old one. */
static int retire_push(struct vnet_table *t, const struct retire *r);

static int map_rebuild(struct vnet_table *t, struct map *m, uint64_t extra)
{
    struct index *old = m->idx;
    uint64_t keep = (uint64_t)(m->used - m->tombs) + extra;
    struct index *ix = index_new(buckets_for(keep));
    if (!ix)
        return VNET_ENOMEM;
    /* Reserve the retire item before publishing, so nothing can fail after. */
    struct retire r = {.epoch = 0, .ptr = old, .kind = R_INDEX};
    int rc = retire_push(t, &r);
    if (rc) {
        index_free(ix);
        return rc;
    }
    size_t nslots = (size_t)old->nbuckets * BUCKET_SLOTS;
    uint32_t used = 0;
    for (size_t i = 0; i < nslots; i++) {
        uint64_t v = old->slots[i];
        if (v == SLOT_EMPTY || v == SLOT_TOMB)
            continue;
        index_place(ix, entry_hash(m, (uint32_t)v), v);
        used++;
    }
    STORE_RELEASE(&m->idx, ix);
    m->used = used;
    m->tombs = 0;
    t->rebuilds++;
    /* The old index is freed after a grace period that starts now. */
    uint64_t e = __atomic_add_fetch(&t->epoch, 1, __ATOMIC_SEQ_CST);
    t->retire.v[t->retire.head + t->retire.n - 1].epoch = e;
    return 0;
}

/* Make room for one more slot. */
static int map_reserve_slot(struct vnet_table *t, struct map *m)
{
    uint64_t nslots = (uint64_t)m->idx->nbuckets * BUCKET_SLOTS;
    if ((uint64_t)(m->used + 1) * 100 <= nslots * LOAD_MAX_PCT)
        return 0;
    return map_rebuild(t, m, 1);
}

static void map_insert(struct map *m, uint32_t idx, uint64_t h)
{
    if (index_place(m->idx, h, sig_of(h) << 32 | idx))
        m->tombs--;
    else
        m->used++;
}

/* Tombstone the slot holding entry @idx. */
static void map_unlink(struct map *m, uint32_t idx)
{
    uint64_t h = entry_hash(m, idx);
    struct index *ix = m->idx;
    uint64_t want = sig_of(h) << 32 | idx;
    uint32_t b = bucket_of(h, ix->nbuckets);
    for (uint32_t n = 0; n < ix->nbuckets; n++) {
        uint64_t *bk = &ix->slots[(size_t)b * BUCKET_SLOTS];
        for (int s = 0; s < BUCKET_SLOTS; s++) {
            uint64_t cur = bk[s];
            if (cur == want) {
                STORE_RELEASE(&bk[s], SLOT_TOMB);
                m->tombs++;
                return;
            }
            if (cur == SLOT_EMPTY)
                return;
        }
        if (++b == ix->nbuckets)
            b = 0;
    }
}

/* ---- probing ---- */

struct mac_key {
    uint32_t vni;
    uint32_t snap;
    const uint8_t *mac;
    bool live; /* writer: match the entry not removed; reader: the one visible at snap */
};

struct ip_key {
    uint32_t vni;
    uint32_t snap;
    uint8_t family;
    bool live;
    const uint8_t *addr;
};

static inline bool match_mac(const struct map *m, uint32_t idx, const void *ctx)
{
    const struct mac_key *k = ctx;
    const struct vnet_entry *e = mac_entry(m, idx);
    if (!mac_key_eq(e, k->vni, k->mac))
        return false;
    return k->live ? e->priv_gen_[1] == 0 : visible(e->priv_gen_, k->snap);
}

static inline bool match_ip(const struct map *m, uint32_t idx, const void *ctx)
{
    const struct ip_key *k = ctx;
    const struct ip_entry *e = ip_entry(m, idx);
    if (!ip_key_eq(e, k->vni, k->family, k->addr))
        return false;
    return k->live ? e->gen[1] == 0 : visible(e->gen, k->snap);
}

/* Walk the probe sequence of hash @h in @ix until an empty slot; return the index of the first
 * entry with a matching signature that @match accepts, or IDX_NONE. Inlined with a constant
 * @match, so the hot path pays no indirect call. */
static inline uint32_t probe(const struct map *m, const struct index *ix, uint64_t h,
                             bool (*match)(const struct map *, uint32_t, const void *),
                             const void *ctx)
{
    uint64_t sig = sig_of(h);
    uint32_t b = bucket_of(h, ix->nbuckets);
    for (uint32_t n = 0; n < ix->nbuckets; n++) {
        const uint64_t *bk = &ix->slots[(size_t)b * BUCKET_SLOTS];
        for (int s = 0; s < BUCKET_SLOTS; s++) {
            uint64_t v = LOAD_ACQUIRE(&bk[s]);
            if (v == SLOT_EMPTY)
                return IDX_NONE;
            if ((v >> 32) == sig && match(m, (uint32_t)v, ctx))
                return (uint32_t)v;
        }
        if (++b == ix->nbuckets)
            b = 0;
    }
    return IDX_NONE;
}

/* ---- lookups ---- */

static inline const struct vnet_entry *probe_mac(const struct map *m, const struct index *ix,
                                                 uint32_t snap, uint64_t h, uint32_t vni,
                                                 const uint8_t *mac)
{
    struct mac_key k = {.vni = vni, .snap = snap, .mac = mac, .live = false};
    uint32_t idx = probe(m, ix, h, match_mac, &k);
    return idx == IDX_NONE ? NULL : mac_entry(m, idx);
}

const struct vnet_entry *vnet_table_lookup(const struct vnet_table *t, uint32_t vni,
                                           const struct vnet_mac *mac)
{
    const struct map *m = &t->maps[MAP_MAC];
    uint32_t snap = LOAD_ACQUIRE(&t->gen);
    const struct index *ix = LOAD_ACQUIRE(&m->idx);
    return probe_mac(m, ix, snap, hash_mac(m, vni, mac->b), vni, mac->b);
}

int vnet_table_lookup_burst(const struct vnet_table *t, const struct vnet_table_key *keys, int n,
                            const struct vnet_entry **out, uint64_t *hit_mask)
{
    if (n <= 0 || n > VNET_TABLE_BURST_MAX)
        return VNET_EINVAL;
    const struct map *m = &t->maps[MAP_MAC];
    uint32_t snap = LOAD_ACQUIRE(&t->gen);
    const struct index *ix = LOAD_ACQUIRE(&m->idx);
    uint64_t hs[VNET_TABLE_BURST_MAX];
    uint64_t cand[VNET_TABLE_BURST_MAX];
    uint64_t mask = 0;
    int hits = 0;

    /* Stage 1: hash every key and prefetch its bucket (one cache line). */
    for (int i = 0; i < n; i++) {
        hs[i] = hash_mac(m, keys[i].vni, keys[i].mac.b);
        __builtin_prefetch(&ix->slots[(size_t)bucket_of(hs[i], ix->nbuckets) * BUCKET_SLOTS]);
    }
    /* Stage 2: find the first signature match in the home bucket; prefetch that entry.
     * cand: a slot value, SLOT_EMPTY for a sure miss, SLOT_TOMB for "probe further". */
    for (int i = 0; i < n; i++) {
        uint64_t sig = sig_of(hs[i]);
        const uint64_t *bk = &ix->slots[(size_t)bucket_of(hs[i], ix->nbuckets) * BUCKET_SLOTS];
        cand[i] = SLOT_TOMB;
        for (int s = 0; s < BUCKET_SLOTS; s++) {
            uint64_t v = LOAD_ACQUIRE(&bk[s]);
            if (v == SLOT_EMPTY) {
                cand[i] = SLOT_EMPTY;
                break;
            }
            if ((v >> 32) == sig) {
                cand[i] = v;
                __builtin_prefetch(mac_entry(m, (uint32_t)v));
                break;
            }
        }
    }
    /* Stage 3: confirm; anything unusual takes the full probe. */
    for (int i = 0; i < n; i++) {
        const struct vnet_entry *e = NULL;
        if (cand[i] != SLOT_EMPTY) {
            if (cand[i] != SLOT_TOMB) {
                e = mac_entry(m, (uint32_t)cand[i]);
                if (!mac_key_eq(e, keys[i].vni, keys[i].mac.b) || !visible(e->priv_gen_, snap))
                    e = NULL;
            }
            if (!e)
                e = probe_mac(m, ix, snap, hs[i], keys[i].vni, keys[i].mac.b);
        }
        out[i] = e;
        if (e) {
            mask |= 1ull << i;
            hits++;
        }
    }
    if (hit_mask)
        *hit_mask = mask;
    return hits;
}

static const struct ip_entry *probe_ip(const struct map *m, const struct index *ix, uint32_t snap,
                                       uint64_t h, uint32_t vni, uint8_t family,
                                       const uint8_t *addr)
{
    struct ip_key k = {.vni = vni, .snap = snap, .family = family, .addr = addr, .live = false};
    uint32_t idx = probe(m, ix, h, match_ip, &k);
    return idx == IDX_NONE ? NULL : ip_entry(m, idx);
}

static bool ip_addr16(const struct vnet_ip *ip, uint8_t addr[16])
{
    if (ip->family != VNET_AF_INET && ip->family != VNET_AF_INET6)
        return false;
    memset(addr, 0, 16);
    memcpy(addr, ip->addr, ip->family == VNET_AF_INET ? 4 : 16);
    return true;
}

int vnet_table_lookup_ip(const struct vnet_table *t, uint32_t vni, const struct vnet_ip *ip,
                         struct vnet_mac *mac)
{
    uint8_t addr[16];
    if (!ip_addr16(ip, addr))
        return VNET_ENOENT;
    const struct map *m = &t->maps[MAP_IP];
    uint32_t snap = LOAD_ACQUIRE(&t->gen);
    const struct index *ix = LOAD_ACQUIRE(&m->idx);
    const struct ip_entry *e =
        probe_ip(m, ix, snap, hash_ip(m, vni, ip->family, addr), vni, ip->family, addr);
    if (!e)
        return VNET_ENOENT;
    memcpy(mac->b, e->mac, 6);
    return 0;
}

void vnet_entry_endpoint(const struct vnet_entry *e, struct vnet_endpoint *out)
{
    memset(out, 0, sizeof(*out));
    out->ip.family = (e->priv_vf_ & FAMILY6_FLAG) ? VNET_AF_INET6 : VNET_AF_INET;
    memcpy(out->ip.addr, e->addr, out->ip.family == VNET_AF_INET ? 4 : 16);
    out->port = e->port;
}

/* ---- writer: finding the live entry of a key ---- */

static uint32_t find_live_mac(const struct map *m, uint32_t vni, const uint8_t *mac)
{
    struct mac_key k = {.vni = vni, .mac = mac, .live = true};
    return probe(m, m->idx, hash_mac(m, vni, mac), match_mac, &k);
}

static uint32_t find_live_ip(const struct map *m, uint32_t vni, uint8_t family, const uint8_t *addr)
{
    struct ip_key k = {.vni = vni, .family = family, .addr = addr, .live = true};
    return probe(m, m->idx, hash_ip(m, vni, family, addr), match_ip, &k);
}

/* ---- retire queue and undo lists ---- */

static int retire_push(struct vnet_table *t, const struct retire *r)
{
    struct rvec *q = &t->retire;
    if (q->head + q->n == q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, q->n * sizeof(*q->v));
            q->head = 0;
        }
        if (q->n == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 256;
            struct retire *v = realloc(q->v, cap * sizeof(*v));
            if (!v)
                return VNET_ENOMEM;
            q->v = v;
            q->cap = cap;
        }
    }
    q->v[q->head + q->n++] = *r;
    return 0;
}

static int retire_reserve(struct vnet_table *t, size_t more)
{
    struct rvec *q = &t->retire;
    if (q->head + q->n + more <= q->cap)
        return 0;
    if (q->head > 0) {
        memmove(q->v, q->v + q->head, q->n * sizeof(*q->v));
        q->head = 0;
    }
    if (q->n + more <= q->cap)
        return 0;
    size_t cap = q->cap ? q->cap : 256;
    while (cap < q->n + more)
        cap *= 2;
    struct retire *v = realloc(q->v, cap * sizeof(*v));
    if (!v)
        return VNET_ENOMEM;
    q->v = v;
    q->cap = cap;
    return 0;
}

static int uvec_push(struct uvec *u, uint32_t idx, uint8_t map)
{
    struct undo *v = vec_room(u->v, u->n, &u->cap, sizeof(*v), 64);
    if (!v)
        return VNET_ENOMEM;
    u->v = v;
    u->v[u->n].idx = idx;
    u->v[u->n].map = map;
    u->n++;
    return 0;
}

/* ---- grace periods ---- */

/* The oldest epoch any online reader may still be in (UINT64_MAX: none online). */
static uint64_t readers_min_epoch(const struct vnet_table *t)
{
    uint64_t min = UINT64_MAX;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (uint32_t i = 0; i < t->nreaders_max; i++) {
        if (!LOAD_ACQUIRE(&t->readers[i].in_use))
            continue;
        uint64_t e = LOAD_ACQUIRE(&t->readers[i].epoch);
        if (e != 0 && e < min)
            min = e;
    }
    return min;
}

size_t vnet_table_reclaim(struct vnet_table *t)
{
    struct rvec *q = &t->retire;
    struct uvec *rq = &t->requeue;
    rq->n = 0;
    if (q->n > 0) {
        uint64_t min = readers_min_epoch(t);
        /* Items are in epoch order: stop at the first one whose grace period is not over. */
        size_t i = q->head, end = q->head + q->n;
        for (; i < end; i++) {
            struct retire *r = &q->v[i];
            if (r->epoch > min)
                break;
            struct map *m = &t->maps[r->map];
            if (r->kind == R_YOUNG) {
                STORE_RELAXED(&gen_of(m, r->idx)[0], 0u);
            } else if (r->kind == R_DEAD) {
                /* First grace period over: nobody can see it as visible; tombstone it and
                 * free it after a second one (a reader may still hold the slot's index). */
                if (uvec_push(rq, r->idx, r->map) != 0)
                    break;
                map_unlink(m, r->idx);
            } else if (r->kind == R_FREE) {
                slab_free(&m->slab, r->idx);
            } else if (r->kind == R_INDEX) {
                index_free(r->ptr);
            } else {
                free(r->ptr);
            }
        }
        size_t done = i - q->head;
        q->head += done;
        q->n -= done;
        if (q->n == 0)
            q->head = 0;
    }
    if (rq->n > 0) {
        uint64_t e = __atomic_add_fetch(&t->epoch, 1, __ATOMIC_SEQ_CST);
        size_t k = 0;
        if (retire_reserve(t, rq->n) == 0) {
            for (; k < rq->n; k++) {
                struct retire r = {
                    .epoch = e, .idx = rq->v[k].idx, .kind = R_FREE, .map = rq->v[k].map};
                q->v[q->head + q->n++] = r;
            }
        }
        /* Without memory for the queue the entries stay allocated (and tombstoned) until
         * vnet_table_destroy(): a leak bounded by this failure, never a use after free. */
    }
    for (int k = 0; k < 2; k++) {
        struct map *m = &t->maps[k];
        uint64_t nslots = (uint64_t)m->idx->nbuckets * BUCKET_SLOTS;
        if ((uint64_t)m->tombs * 8 > nslots)
            (void)map_rebuild(t, m, 0); /* best effort: tombstones only slow probes down */
    }
    return q->n;
}

void vnet_table_synchronize(struct vnet_table *t)
{
    /* Each pass waits for every online reader to reach the current epoch, which lets every
     * queued item advance one stage; dead entries need two such passes. */
    for (int pass = 0; pass < 8 && t->retire.n > 0; pass++) {
        uint64_t target = LOAD_ACQUIRE(&t->epoch);
        unsigned spins = 0;
        while (readers_min_epoch(t) < target) {
            if (++spins < 1000) {
                sched_yield();
            } else {
                struct timespec ts = {0, 50 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        vnet_table_reclaim(t);
    }
}

/* ---- readers ---- */

int vnet_table_reader_register(struct vnet_table *t, struct vnet_table_reader **out)
{
    struct vnet_table_reader *r = malloc(sizeof(*r));
    if (!r)
        return VNET_ENOMEM;
    for (uint32_t i = 0; i < t->nreaders_max; i++) {
        uint32_t zero = 0;
        if (__atomic_compare_exchange_n(&t->readers[i].in_use, &zero, 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            r->t = t;
            r->slot = &t->readers[i];
            vnet_table_reader_online(r);
            *out = r;
            return 0;
        }
    }
    free(r);
    return VNET_ENOSPC;
}

void vnet_table_reader_unregister(struct vnet_table_reader *r)
{
    if (!r)
        return;
    STORE_RELEASE(&r->slot->epoch, 0);
    STORE_RELEASE(&r->slot->in_use, 0u);
    free(r);
}

void vnet_table_quiescent(struct vnet_table_reader *r)
{
    STORE_RELEASE(&r->slot->epoch, LOAD_ACQUIRE(&r->t->epoch));
}

void vnet_table_reader_offline(struct vnet_table_reader *r)
{
    STORE_RELEASE(&r->slot->epoch, 0);
}

void vnet_table_reader_online(struct vnet_table_reader *r)
{
    STORE_RELAXED(&r->slot->epoch, LOAD_ACQUIRE(&r->t->epoch));
    /* The writer must see us online before we read a slot it may be about to recycle. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* ---- create / destroy ---- */

static int map_init(struct map *m, enum map_kind kind, uint32_t max, uint32_t initial)
{
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    randombytes_buf(&m->k0, sizeof(m->k0));
    randombytes_buf(&m->k1, sizeof(m->k1));
    m->slab.esize = kind == MAP_MAC ? sizeof(struct vnet_entry) : sizeof(struct ip_entry);
    m->slab.max = max;
    m->slab.free_head = IDX_NONE;
    /* Reserve address space only (PROT_NONE costs no memory and no commit charge); pages
     * become usable as the table grows. */
    m->slab.base = map_huge((size_t)max * m->slab.esize, PROT_NONE, &m->slab.map, &m->slab.map_len);
    if (!m->slab.base)
        return VNET_ENOMEM;
    m->idx = index_new(buckets_for(initial));
    return m->idx ? 0 : VNET_ENOMEM;
}

static void map_fini(struct map *m)
{
    if (m->slab.map) {
        UNPOISON(m->slab.base, m->slab.committed);
        munmap(m->slab.map, m->slab.map_len);
    }
    index_free(m->idx);
}

int vnet_table_create(const struct vnet_table_opts *opts, struct vnet_table **out)
{
    struct vnet_table_opts o = {0};
    if (opts)
        o = *opts;
    if (!out)
        return VNET_EINVAL;
    if (o.max_entries == 0)
        o.max_entries = DEFAULT_MAX;
    if (o.max_ip_entries == 0)
        o.max_ip_entries = o.max_entries;
    if (o.initial_capacity == 0)
        o.initial_capacity = 1024;
    if (o.max_readers == 0)
        o.max_readers = 64;
    if (o.max_entries > (1u << 30) || o.max_ip_entries > (1u << 30) || o.max_readers > 4096)
        return VNET_EINVAL;
    if (sodium_init() < 0)
        return VNET_ENOMEM;
    struct vnet_table *t = calloc(1, sizeof(*t));
    if (!t)
        return VNET_ENOMEM;
    t->gen = 1;
    t->epoch = 1;
    t->nreaders_max = o.max_readers;
    t->readers = aligned_alloc(64, sizeof(struct reader_slot) * o.max_readers);
    int rc = t->readers ? 0 : VNET_ENOMEM;
    if (!rc) {
        memset(t->readers, 0, sizeof(struct reader_slot) * o.max_readers);
        uint32_t init = o.initial_capacity < o.max_entries ? o.initial_capacity : o.max_entries;
        rc = map_init(&t->maps[MAP_MAC], MAP_MAC, o.max_entries, init);
    }
    if (!rc) {
        uint32_t init =
            o.initial_capacity < o.max_ip_entries ? o.initial_capacity : o.max_ip_entries;
        rc = map_init(&t->maps[MAP_IP], MAP_IP, o.max_ip_entries, init);
    }
    if (rc) {
        vnet_table_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

void vnet_table_destroy(struct vnet_table *t)
{
    if (!t)
        return;
    struct rvec *q = &t->retire;
    for (size_t i = q->head; i < q->head + q->n; i++)
        if (q->v[i].kind == R_INDEX)
            index_free(q->v[i].ptr);
        else if (q->v[i].kind == R_PTR)
            free(q->v[i].ptr);
    free(q->v);
    free(t->added.v);
    free(t->killed.v);
    free(t->requeue.v);
    map_fini(&t->maps[MAP_MAC]);
    map_fini(&t->maps[MAP_IP]);
    free(t->readers);
    free(t);
}

/* ---- batches ---- */

static uint32_t next_gen(uint32_t g)
{
    return g + 1 == 0 ? 1 : g + 1;
}

static int validate(const struct vnet_table_op *op)
{
    switch (op->type) {
    case VNET_TABLE_PUT:
        if (op->ep.ip.family != VNET_AF_INET && op->ep.ip.family != VNET_AF_INET6)
            return VNET_EINVAL;
        if (op->flags & 0x80)
            return VNET_EINVAL;
        /* fall through */
    case VNET_TABLE_DEL:
        return vnet_vni_valid(op->vni) ? 0 : VNET_EINVAL;
    case VNET_TABLE_PUT_IP:
    case VNET_TABLE_DEL_IP:
        if (op->ip.family != VNET_AF_INET && op->ip.family != VNET_AF_INET6)
            return VNET_EINVAL;
        return vnet_vni_valid(op->vni) ? 0 : VNET_EINVAL;
    case VNET_TABLE_CLEAR_VNI:
        return op->vni == VNET_VNI_ANY || vnet_vni_valid(op->vni) ? 0 : VNET_EINVAL;
    }
    return VNET_EINVAL;
}

/* Mark entry @idx of map @mi removed in generation @g. */
static int mark_removed(struct vnet_table *t, uint8_t mi, uint32_t idx, uint32_t g)
{
    struct map *m = &t->maps[mi];
    int rc = uvec_push(&t->killed, idx, mi);
    if (rc)
        return rc;
    STORE_RELAXED(&gen_of(m, idx)[1], g);
    m->live--;
    return 0;
}

/* Allocate an entry of map @mi, with room in the index to link it and an undo record. */
static int add_entry(struct vnet_table *t, uint8_t mi, uint32_t *idx_out)
{
    struct map *m = &t->maps[mi];
    uint32_t idx;
    int rc = map_reserve_slot(t, m);
    if (rc)
        return rc;
    rc = uvec_push(&t->added, 0, mi); /* reserve the undo record first */
    if (rc)
        return rc;
    rc = slab_alloc(&m->slab, &idx);
    if (rc) {
        t->added.n--;
        return rc;
    }
    t->added.v[t->added.n - 1].idx = idx;
    *idx_out = idx;
    return 0;
}

static int op_put(struct vnet_table *t, const struct vnet_table_op *op, uint32_t g,
                  uint64_t revision)
{
    struct map *m = &t->maps[MAP_MAC];
    uint32_t old = find_live_mac(m, op->vni, op->mac.b);
    uint8_t v6 = op->ep.ip.family == VNET_AF_INET6 ? FAMILY6_FLAG : 0;
    uint32_t vf = op->vni << 8 | v6 | op->flags;
    if (old != IDX_NONE) {
        const struct vnet_entry *e = mac_entry(m, old);
        if (e->priv_vf_ == vf && e->peer_id == op->peer_id && e->port == op->ep.port &&
            memcmp(e->addr, op->ep.ip.addr, 16) == 0 && e->revision == revision)
            return 0; /* unchanged: no churn */
    }
    uint32_t idx;
    uint64_t h = hash_mac(m, op->vni, op->mac.b);
    int rc = add_entry(t, MAP_MAC, &idx);
    if (rc)
        return rc;
    struct vnet_entry *e = mac_entry(m, idx);
    memset(e, 0, sizeof(*e));
    e->revision = revision;
    e->priv_gen_[0] = g;
    e->priv_gen_[1] = 0;
    e->priv_vf_ = vf;
    e->peer_id = op->peer_id;
    e->mac = op->mac;
    e->port = op->ep.port;
    memcpy(e->addr, op->ep.ip.addr, op->ep.ip.family == VNET_AF_INET ? 4 : 16);
    map_insert(m, idx, h); /* release store: the entry is complete before it is reachable */
    m->live++;
    if (old != IDX_NONE)
        return mark_removed(t, MAP_MAC, old, g);
    return 0;
}

static int op_put_ip(struct vnet_table *t, const struct vnet_table_op *op, uint32_t g)
{
    struct map *m = &t->maps[MAP_IP];
    uint8_t addr[16];
    ip_addr16(&op->ip, addr);
    uint32_t old = find_live_ip(m, op->vni, op->ip.family, addr);
    if (old != IDX_NONE && memcmp(ip_entry(m, old)->mac, op->mac.b, 6) == 0)
        return 0;
    uint32_t idx;
    uint64_t h = hash_ip(m, op->vni, op->ip.family, addr);
    int rc = add_entry(t, MAP_IP, &idx);
    if (rc)
        return rc;
    struct ip_entry *e = ip_entry(m, idx);
    memset(e, 0, sizeof(*e));
    e->gen[0] = g;
    e->vni = op->vni;
    e->family = op->ip.family;
    memcpy(e->mac, op->mac.b, 6);
    memcpy(e->addr, addr, 16);
    map_insert(m, idx, h);
    m->live++;
    if (old != IDX_NONE)
        return mark_removed(t, MAP_IP, old, g);
    return 0;
}

static int op_clear(struct vnet_table *t, uint32_t vni, uint32_t g)
{
    for (uint8_t mi = 0; mi < 2; mi++) {
        struct map *m = &t->maps[mi];
        struct index *ix = m->idx;
        size_t nslots = (size_t)ix->nbuckets * BUCKET_SLOTS;
        for (size_t i = 0; i < nslots; i++) {
            uint64_t v = ix->slots[i];
            if (v == SLOT_EMPTY || v == SLOT_TOMB)
                continue;
            uint32_t idx = (uint32_t)v;
            uint32_t evni, *gen = gen_of(m, idx);
            if (gen[1] != 0)
                continue;
            evni = mi == MAP_MAC ? mac_entry(m, idx)->priv_vf_ >> 8 : ip_entry(m, idx)->vni;
            if (vni != VNET_VNI_ANY && evni != vni)
                continue;
            int rc = mark_removed(t, mi, idx, g);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int apply_one(struct vnet_table *t, const struct vnet_table_op *op, uint32_t g,
                     uint64_t revision)
{
    uint8_t addr[16];
    uint32_t old;
    switch (op->type) {
    case VNET_TABLE_PUT:
        return op_put(t, op, g, revision);
    case VNET_TABLE_DEL:
        old = find_live_mac(&t->maps[MAP_MAC], op->vni, op->mac.b);
        return old == IDX_NONE ? 0 : mark_removed(t, MAP_MAC, old, g);
    case VNET_TABLE_PUT_IP:
        return op_put_ip(t, op, g);
    case VNET_TABLE_DEL_IP:
        ip_addr16(&op->ip, addr);
        old = find_live_ip(&t->maps[MAP_IP], op->vni, op->ip.family, addr);
        return old == IDX_NONE ? 0 : mark_removed(t, MAP_IP, old, g);
    case VNET_TABLE_CLEAR_VNI:
        return op_clear(t, op->vni, g);
    }
    return VNET_EINVAL;
}

/* Undo an unpublished batch: entries it added become invisible for good and are unlinked
 * now (readers may have seen their slots, so memory is freed after a grace period);
 * entries it removed come back. */
static void rollback(struct vnet_table *t, uint32_t g)
{
    for (size_t i = t->killed.n; i-- > 0;) {
        struct map *m = &t->maps[t->killed.v[i].map];
        STORE_RELAXED(&gen_of(m, t->killed.v[i].idx)[1], 0u);
        m->live++;
    }
    bool queued = retire_reserve(t, t->added.n) == 0;
    uint64_t e = __atomic_load_n(&t->epoch, __ATOMIC_RELAXED);
    for (size_t i = 0; i < t->added.n; i++) {
        struct map *m = &t->maps[t->added.v[i].map];
        uint32_t idx = t->added.v[i].idx;
        uint32_t *gen = gen_of(m, idx);
        STORE_RELAXED(&gen[1], g); /* add == del: never visible, even once g is published */
        map_unlink(m, idx);
        m->live--;
        if (queued) {
            struct retire r = {
                .epoch = e + 1, .idx = idx, .kind = R_FREE, .map = t->added.v[i].map};
            t->retire.v[t->retire.head + t->retire.n++] = r;
        }
    }
    if (queued && t->added.n)
        __atomic_add_fetch(&t->epoch, 1, __ATOMIC_SEQ_CST);
    t->added.n = 0;
    t->killed.n = 0;
}

int vnet_table_apply(struct vnet_table *t, const struct vnet_table_op *ops, size_t n,
                     uint64_t revision)
{
    if (!t || (n && !ops))
        return VNET_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (validate(&ops[i]))
            return VNET_EINVAL;
    uint32_t g = next_gen(t->gen);
    t->added.n = 0;
    t->killed.n = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = apply_one(t, &ops[i], g, revision);
    /* Each added entry gets an R_YOUNG item, each removed one an R_DEAD item (which turns
     * into R_FREE later, in place of itself). */
    if (!rc)
        rc = retire_reserve(t, t->added.n + t->killed.n);
    if (rc) {
        rollback(t, g);
        return rc;
    }
    STORE_RELEASE(&t->gen, g); /* the batch becomes visible here, all at once */
    __atomic_store_n(&t->revision, revision, __ATOMIC_RELEASE);
    uint64_t e = __atomic_add_fetch(&t->epoch, 1, __ATOMIC_SEQ_CST);
    struct rvec *q = &t->retire;
    for (size_t i = 0; i < t->added.n; i++) {
        struct retire r = {
            .epoch = e, .idx = t->added.v[i].idx, .kind = R_YOUNG, .map = t->added.v[i].map};
        q->v[q->head + q->n++] = r;
    }
    for (size_t i = 0; i < t->killed.n; i++) {
        struct retire r = {
            .epoch = e, .idx = t->killed.v[i].idx, .kind = R_DEAD, .map = t->killed.v[i].map};
        q->v[q->head + q->n++] = r;
    }
    t->added.n = 0;
    t->killed.n = 0;
    t->batches++;
    vnet_table_reclaim(t);
    return 0;
}

/* ---- inspection ---- */

int vnet_table_foreach(const struct vnet_table *t, uint32_t vni, vnet_table_iter_fn fn, void *arg)
{
    const struct map *m = &t->maps[MAP_MAC];
    uint32_t snap = LOAD_ACQUIRE(&t->gen);
    const struct index *ix = LOAD_ACQUIRE(&m->idx);
    size_t nslots = (size_t)ix->nbuckets * BUCKET_SLOTS;
    for (size_t i = 0; i < nslots; i++) {
        uint64_t v = LOAD_ACQUIRE(&ix->slots[i]);
        if (v == SLOT_EMPTY || v == SLOT_TOMB)
            continue;
        const struct vnet_entry *e = mac_entry(m, (uint32_t)v);
        if (!visible(e->priv_gen_, snap))
            continue;
        if (vni != VNET_VNI_ANY && vnet_entry_vni(e) != vni)
            continue;
        int rc = fn(e, arg);
        if (rc)
            return rc;
    }
    return 0;
}

int vnet_table_foreach_ip(const struct vnet_table *t, uint32_t vni, vnet_table_ip_iter_fn fn,
                          void *arg)
{
    const struct map *m = &t->maps[MAP_IP];
    uint32_t snap = LOAD_ACQUIRE(&t->gen);
    const struct index *ix = LOAD_ACQUIRE(&m->idx);
    size_t nslots = (size_t)ix->nbuckets * BUCKET_SLOTS;
    for (size_t i = 0; i < nslots; i++) {
        uint64_t v = LOAD_ACQUIRE(&ix->slots[i]);
        if (v == SLOT_EMPTY || v == SLOT_TOMB)
            continue;
        const struct ip_entry *e = ip_entry(m, (uint32_t)v);
        if (!visible(e->gen, snap))
            continue;
        if (vni != VNET_VNI_ANY && e->vni != vni)
            continue;
        struct vnet_ip ip;
        struct vnet_mac mac;
        memset(&ip, 0, sizeof(ip));
        ip.family = e->family;
        memcpy(ip.addr, e->addr, 16);
        memcpy(mac.b, e->mac, 6);
        int rc = fn(e->vni, &ip, &mac, arg);
        if (rc)
            return rc;
    }
    return 0;
}

size_t vnet_table_count(const struct vnet_table *t)
{
    return LOAD_ACQUIRE(&t->maps[MAP_MAC].live);
}

uint64_t vnet_table_revision(const struct vnet_table *t)
{
    return __atomic_load_n(&t->revision, __ATOMIC_ACQUIRE);
}

void vnet_table_get_stats(const struct vnet_table *t, struct vnet_table_stats *out)
{
    memset(out, 0, sizeof(*out));
    const struct map *mm = &t->maps[MAP_MAC], *mi = &t->maps[MAP_IP];
    out->entries = mm->live;
    out->ip_entries = mi->live;
    out->slots = (uint64_t)mm->idx->nbuckets * BUCKET_SLOTS;
    out->ip_slots = (uint64_t)mi->idx->nbuckets * BUCKET_SLOTS;
    out->load_factor = (double)mm->used / (double)out->slots;
    out->ip_load_factor = (double)mi->used / (double)out->ip_slots;
    uint64_t mem = sizeof(*t) + (uint64_t)t->nreaders_max * sizeof(struct reader_slot);
    for (int k = 0; k < 2; k++) {
        const struct map *m = &t->maps[k];
        mem += index_bytes(m->idx);
        mem += m->slab.committed;
    }
    mem += t->retire.cap * sizeof(struct retire);
    mem += (t->added.cap + t->killed.cap + t->requeue.cap) * sizeof(struct undo);
    out->memory_bytes = mem;
    out->pending_reclaim = t->retire.n;
    out->batches = t->batches;
    out->rebuilds = t->rebuilds;
    for (uint32_t i = 0; i < t->nreaders_max; i++)
        out->readers += LOAD_RELAXED(&t->readers[i].in_use) ? 1 : 0;
}

int vnet_table_defer_free(struct vnet_table *t, void *ptr)
{
    if (!ptr)
        return 0;
    struct retire r = {.epoch = 0, .ptr = ptr, .kind = R_PTR};
    int rc = retire_push(t, &r);
    if (rc)
        return rc;
    /* The caller unpublished @ptr before this call; the grace period starts now. */
    uint64_t e = __atomic_add_fetch(&t->epoch, 1, __ATOMIC_SEQ_CST);
    t->retire.v[t->retire.head + t->retire.n - 1].epoch = e;
    return 0;
}
