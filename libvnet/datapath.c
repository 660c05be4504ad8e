/* The forwarding engine. One thread polls a datapath at a time; it works in bursts: read up to
 * `burst` packets from a port, handle them, then hand every output to the other port in one
 * call (one sendmmsg for the underlay). Packet buffers are allocated once, at creation; the
 * hot path allocates nothing and makes no syscall per packet beyond what the ports need.
 *
 * Egress frames keep their buffer: the VXLAN header is written into the headroom in front of
 * the frame, and head-end replication sends the same bytes to every peer (one vnet_pkt each,
 * one buffer). Ingress frames are handed to the virtual port where they lie, inside the
 * received datagram.
 */
#include "vnet/datapath.h"
#include "vnet/crypto.h"
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/offload.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define BURST_MAX   64
#define BUF_SIZE    (65536 + 1024)
#define HEADROOM    256
#define UTX_MAX     256 /* underlay sends per flush (replication multiplies frames) */
#define REPLY_MAX   16  /* ARP/ND replies per burst */
#define LEARN_RING  1024
#define LOCAL_MACS  8
#define GSO_OUT_CAP (80 * 1024) /* a 64 KB TSO frame cut up, with 8 bytes of VXLAN each */
#define PROBE_SLOTS 64
#define PROBE_SLOT  128 /* a probe behind VXLAN or sealed (38 + 40 bytes at most) */

#define ETH_P_ARP  0x0806
#define ETH_P_IP   0x0800
#define ETH_P_IPV6 0x86dd

/* Counters have one writer (the polling thread) and are read by monitors: relaxed loads and
 * stores, which compile to plain moves. */
#define STAT_ADD(x, v)                                                                             \
    __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + (v), __ATOMIC_RELAXED)
#define STAT_GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

struct peer {
    struct vnet_endpoint ep;
    uint64_t id;                 /* node id (the peer_id of its table entries); 0: unknown */
    struct vnet_seal_peer *seal; /* secure mode: keys, counters, replay window (stable memory
                                    shared by successive peer sets, used by the poller only) */
    uint8_t pubkey[VNET_KEY_LEN];
    bool has_pubkey, has_nonce;
    uint8_t nonce[VNET_SEAL_NONCE_LEN];
    uint64_t tx_packets, tx_bytes, rx_packets, rx_bytes;
    /* probes (written by the poller, read by monitors: relaxed atomics) */
    uint32_t probe_seq;     /* of the last request sent */
    bool probe_pending;     /* that request is not answered yet */
    uint64_t probe_sent_ns; /* when it left (monotonic) */
    uint64_t probes_sent, probe_replies, probes_answered, probes_unexpected;
    uint64_t rtt_ns, reply_ns;        /* last round trip, and when its reply came */
    uint64_t tx_epoch_ms, rx_adopted; /* secure: published by vnet_datapath_tick */
};

struct peerset {
    size_t n;
    struct peer p[];
};

struct learn_item {
    struct vnet_mac mac;
    struct vnet_endpoint ep;
};

struct vnet_datapath {
    struct vnet_table *table;
    struct vnet_port *vport, *uport;
    uint32_t vni;
    unsigned queue; /* the queue of both ports this datapath serves */
    bool learn, arp_proxy;
    uint32_t mtu;
    int burst;
    struct vnet_table_reader *reader;
    struct peerset *peers; /* published with release; freed through the table's QSBR */
    struct vnet_mac local[LOCAL_MACS];
    unsigned nlocal;

    /* buffers */
    uint8_t *mem;
    struct vnet_pkt vrx[BURST_MAX], urx[BURST_MAX];
    struct vnet_pkt *vrxp[BURST_MAX], *urxp[BURST_MAX];
    struct vnet_pkt utx[UTX_MAX], vtx[BURST_MAX * 64];
    struct vnet_pkt *utxp[UTX_MAX], *vtxp[BURST_MAX * 64];
    int nutx, nvtx;
    uint8_t *replybuf[REPLY_MAX];
    int nreply;
    uint8_t *gsobuf[BURST_MAX]; /* segmented TSO frames, until the next underlay flush */
    int ngso;
    bool udp_gso; /* the underlay takes UDP_SEGMENT batches */
    bool gro;     /* coalesce TCP segments for a virtual port that takes TSO */
    struct vnet_gro grostate;
    uint8_t *grobuf;

    /* learning: single producer (poller), single consumer (writer) */
    struct learn_item ring[LEARN_RING];
    uint32_t ring_head, ring_tail;
    int learn_efd;

    /* worker thread */
    pthread_t thread;
    int running, stop;

    struct vnet_datapath_stats st;
    struct vnet_drop_stats decap;

    /* secure mode */
    bool secure;
    struct vnet_keypair key;
    bool has_nonce; /* per-boot data-plane nonce (controller mode) */
    uint8_t nonce[VNET_SEAL_NONCE_LEN];
    /* seal states of peers that left, kept for their return (writer thread only) */
    struct vnet_seal_peer **retired;
    size_t nretired, capretired;
    uint8_t *arena; /* sealed output until the next underlay flush */
    size_t arena_off, arena_cap;
    uint64_t now_ms; /* wall clock, read once per poll */

    /* peer probes */
    unsigned probe_ms; /* interval; 0: no probing */
    bool probe_all;    /* also peers without a node id */
    uint64_t next_probe_ns;
    uint32_t probe_seq0; /* random start of the sequence numbers */
    uint8_t *probebuf;   /* PROBE_SLOTS x PROBE_SLOT, until the next underlay flush */
    int nprobe;
};

static const char *const drop_names[VNET_DP_DROP__MAX] = {
    "decap",  "foreign_vni", "unknown_peer", "spoof",      "self",       "no_peers", "too_big",
    "short",  "offload",     "tx_underlay",  "tx_virtual", "learn_full", "auth",     "replay",
    "no_key", "spoof_ip4",   "spoof_ip6",    "spoof_arp",  "spoof_nd",
};

const char *vnet_dp_drop_name(enum vnet_dp_drop d)
{
    return (unsigned)d < VNET_DP_DROP__MAX ? drop_names[d] : "unknown";
}

static uint64_t wall_ms(void);

static inline void drop(struct vnet_datapath *dp, enum vnet_dp_drop why)
{
    STAT_ADD(dp->st.drops[why], 1);
}

/* ---- path tracing (debug builds: -Dc_args=-DVNET_DP_TRACE) ----
 * Stamps every ping (ICMP echo request or reply, whose payload starts with the sender's
 * gettimeofday()) at three points in each node it crosses: the poll that handles it, its read
 * from the port, and the end of the flush that hands it on. Offsets are microseconds since
 * ping sent it (one clock for every process on the machine); tests/bench/uspath_trace.py turns
 * the records of both nodes into a per-stage histogram. Records are written, one line each, to
 * the file $VNET_DP_TRACE names when the datapath is destroyed. Never built by default. */
#ifdef VNET_DP_TRACE
#include <stdio.h>
#define TRACE_MAX 65536
struct trace_rec {
    uint8_t dir, type; /* dir 0: TAP -> underlay, 1: underlay -> TAP; type: ICMP type */
    uint16_t seq;
    int64_t t[3]; /* ns since ping's stamp: poll, read, flushed */
};
static struct trace_rec trace_ring[TRACE_MAX];
static unsigned trace_n, trace_open0, trace_open1;
static int64_t trace_t0;

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Record the echo in ethernet frame @f (if it is one) read at the poll started at trace_t0. */
static void trace_frame(int dir, const uint8_t *f, uint32_t len)
{
    if (len < 14 + 20 + 8 + 16 || f[12] != 0x08 || f[13] != 0 || f[14 + 9] != 1)
        return;
    const uint8_t *icmp = f + 14 + (f[14] & 15) * 4;
    if ((icmp[0] != 8 && icmp[0] != 0) || icmp + 24 > f + len || trace_n >= TRACE_MAX)
        return;
    uint64_t sec, usec;
    memcpy(&sec, icmp + 8, 8);
    memcpy(&usec, icmp + 16, 8);
    int64_t stamp = (int64_t)sec * 1000000000 + (int64_t)usec * 1000;
    struct trace_rec *r = &trace_ring[trace_n++];
    r->dir = (uint8_t)dir;
    r->type = icmp[0];
    r->seq = (uint16_t)(icmp[6] << 8 | icmp[7]);
    r->t[0] = trace_t0 - stamp;
    r->t[1] = real_ns() - stamp;
    r->t[2] = stamp; /* until flushed */
}

static void trace_flushed(void)
{
    int64_t now = real_ns();
    for (unsigned i = trace_open1; i < trace_n; i++)
        trace_ring[i].t[2] = now - trace_ring[i].t[2];
    trace_open1 = trace_n;
}

static void trace_dump(void)
{
    const char *path = getenv("VNET_DP_TRACE");
    FILE *fp = path ? fopen(path, "a") : NULL;
    if (!fp)
        return;
    for (unsigned i = trace_open0; i < trace_n; i++)
        fprintf(fp, "%d %d %u %lld %lld %lld\n", trace_ring[i].dir, trace_ring[i].type,
                trace_ring[i].seq, (long long)trace_ring[i].t[0], (long long)trace_ring[i].t[1],
                (long long)trace_ring[i].t[2]);
    trace_open0 = trace_n;
    fclose(fp);
}
#define TRACE_POLL()             (trace_t0 = real_ns())
#define TRACE_FRAME(dir, f, len) trace_frame(dir, f, len)
#define TRACE_FLUSHED()          trace_flushed()
#define TRACE_DUMP()             trace_dump()
#else
#define TRACE_POLL()             ((void)0)
#define TRACE_FRAME(dir, f, len) ((void)0)
#define TRACE_FLUSHED()          ((void)0)
#define TRACE_DUMP()             ((void)0)
#endif

/* ---- setup ---- */

int vnet_datapath_create(const struct vnet_datapath_cfg *cfg, struct vnet_datapath **out)
{
    if (!cfg || !out || !cfg->table || !cfg->vport || !cfg->uport || !vnet_vni_valid(cfg->vni) ||
        cfg->burst > BURST_MAX)
        return VNET_EINVAL;
    struct vnet_datapath *dp = calloc(1, sizeof(*dp));
    if (!dp)
        return VNET_ENOMEM;
    dp->table = cfg->table;
    dp->vport = cfg->vport;
    dp->uport = cfg->uport;
    dp->vni = cfg->vni;
    dp->queue = cfg->queue;
    dp->learn = cfg->learn;
    dp->arp_proxy = !cfg->no_arp_proxy;
    dp->burst = cfg->burst ? (int)cfg->burst : BURST_MAX;
    dp->mtu = cfg->mtu;
    dp->learn_efd = -1;
    if (cfg->secure) {
        if (!cfg->key) {
            free(dp);
            return VNET_EINVAL;
        }
        dp->secure = true;
        dp->key = *cfg->key;
        if (cfg->nonce) {
            dp->has_nonce = true;
            memcpy(dp->nonce, cfg->nonce, VNET_SEAL_NONCE_LEN);
        }
        dp->arena_cap = 8u << 20;
        dp->arena = malloc(dp->arena_cap);
        if (!dp->arena) {
            free(dp);
            return VNET_ENOMEM;
        }
    }
    if (!dp->mtu) {
        struct vnet_port_info info;
        if (vnet_port_get_info(cfg->vport, &info) == 0 && info.mtu)
            dp->mtu = info.mtu;
        else
            dp->mtu = 1500;
    }
    int rc = VNET_ENOMEM;
    size_t nbufs = 2 * BURST_MAX + REPLY_MAX;
    size_t bytes = nbufs * BUF_SIZE + (size_t)BURST_MAX * GSO_OUT_CAP + VNET_GRO_BUF_SIZE +
                   PROBE_SLOTS * PROBE_SLOT;
    dp->mem = malloc(bytes);
    dp->learn_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!dp->mem || dp->learn_efd < 0)
        goto fail;
    for (int i = 0; i < BURST_MAX; i++) {
        dp->vrx[i].buf = dp->mem + (size_t)i * BUF_SIZE;
        dp->vrx[i].cap = BUF_SIZE;
        dp->vrxp[i] = &dp->vrx[i];
        dp->urx[i].buf = dp->mem + (size_t)(BURST_MAX + i) * BUF_SIZE;
        dp->urx[i].cap = BUF_SIZE;
        dp->urxp[i] = &dp->urx[i];
    }
    for (int i = 0; i < REPLY_MAX; i++)
        dp->replybuf[i] = dp->mem + (size_t)(2 * BURST_MAX + i) * BUF_SIZE;
    for (int i = 0; i < BURST_MAX; i++)
        dp->gsobuf[i] = dp->mem + nbufs * BUF_SIZE + (size_t)i * GSO_OUT_CAP;
    dp->grobuf = dp->mem + nbufs * BUF_SIZE + (size_t)BURST_MAX * GSO_OUT_CAP;
    dp->probebuf = dp->grobuf + VNET_GRO_BUF_SIZE;
    if (getrandom(&dp->probe_seq0, sizeof(dp->probe_seq0), GRND_NONBLOCK) < 0)
        dp->probe_seq0 = (uint32_t)wall_ms(); /* guessing it only lets a forger fake an RTT */
    struct vnet_port_info uinfo, vinfo;
    if (vnet_port_get_info(cfg->uport, &uinfo) == 0)
        dp->udp_gso = (uinfo.caps & VNET_PORT_CAP_UDP_GSO) != 0;
    if (vnet_port_get_info(cfg->vport, &vinfo) == 0)
        dp->gro = (vinfo.caps & VNET_PORT_CAP_TSO) != 0;
    /* Inner checksums are verified while merging: with a zero outer UDP checksum nothing
     * else would catch a corrupted segment once the merged frame says "partial". */
    /* In secure mode the AEAD tag already proves every byte is what the sender sent (with
     * valid checksums): checking them again would only cost a pass over the data. */
    vnet_gro_init(&dp->grostate, dp->grobuf, VNET_GRO_BUF_SIZE,
                  cfg->secure ? 0 : VNET_GRO_F_VERIFY_CSUM);
    for (int i = 0; i < UTX_MAX; i++)
        dp->utxp[i] = &dp->utx[i];
    for (int i = 0; i < BURST_MAX * 64; i++)
        dp->vtxp[i] = &dp->vtx[i];
    rc = vnet_table_reader_register(dp->table, &dp->reader);
    if (rc)
        goto fail;
    vnet_table_reader_offline(dp->reader);
    *out = dp;
    return 0;
fail:
    if (dp->learn_efd >= 0)
        close(dp->learn_efd);
    free(dp->mem);
    free(dp);
    return rc;
}

void vnet_datapath_destroy(struct vnet_datapath *dp)
{
    if (!dp)
        return;
    vnet_datapath_stop(dp);
    TRACE_DUMP();
    vnet_table_reader_unregister(dp->reader);
    /* Nobody reads the peer set any more: free it (its seal states just below). */
    close(dp->learn_efd);
    if (dp->peers) {
        for (size_t i = 0; i < dp->peers->n; i++)
            if (dp->peers->p[i].seal) {
                vnet_seal_peer_wipe(dp->peers->p[i].seal);
                free(dp->peers->p[i].seal);
            }
        free(dp->peers);
    }
    for (size_t i = 0; i < dp->nretired; i++) {
        vnet_seal_peer_wipe(dp->retired[i]);
        free(dp->retired[i]);
    }
    free(dp->retired);
    vnet_key_wipe(&dp->key);
    free(dp->arena);
    free(dp->mem);
    free(dp);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Is @seal the state for peer @np (same public key; same nonce, or neither has one)? */
static bool seal_is_for(const struct vnet_seal_peer *seal, const struct peer *np)
{
    if (!seal || !np->has_pubkey || memcmp(seal->rx.peer, np->pubkey, VNET_KEY_LEN) != 0)
        return false;
    if (seal->rx.has_nonces != np->has_nonce)
        return false;
    return !np->has_nonce || memcmp(seal->rx.n_peer, np->nonce, VNET_SEAL_NONCE_LEN) == 0;
}

/* Free @seal once no reader can hold it (synchronously if that cannot be queued). */
static void seal_free_deferred(struct vnet_datapath *dp, struct vnet_seal_peer *seal)
{
    if (vnet_table_defer_free(dp->table, seal) != 0) {
        vnet_table_synchronize(dp->table);
        vnet_seal_peer_wipe(seal);
        free(seal);
    }
}

/* Keep @seal (a peer that left) for its return; on no memory it is freed (its window is lost,
 * which only matters if that exact peer state returns). */
static void seal_retire(struct vnet_datapath *dp, struct vnet_seal_peer *seal)
{
    if (dp->nretired == dp->capretired) {
        size_t cap = dp->capretired ? 2 * dp->capretired : 8;
        struct vnet_seal_peer **r = realloc(dp->retired, cap * sizeof(*r));
        if (!r) {
            vnet_log(VNET_LOG_WARN, "datapath",
                     "no memory to keep a departed peer's replay "
                     "window");
            seal_free_deferred(dp, seal);
            return;
        }
        dp->retired = r;
        dp->capretired = cap;
    }
    dp->retired[dp->nretired++] = seal;
}

/* Forget retired states of @np's key with another nonce: that peer restarted, and the
 * controller never hands out an old nonce again. */
static void retired_purge(struct vnet_datapath *dp, const struct peer *np)
{
    for (size_t i = 0; i < dp->nretired;) {
        struct vnet_seal_peer *r = dp->retired[i];
        if (np->has_pubkey && memcmp(r->rx.peer, np->pubkey, VNET_KEY_LEN) == 0 &&
            !seal_is_for(r, np)) {
            dp->retired[i] = dp->retired[--dp->nretired];
            seal_free_deferred(dp, r);
        } else {
            i++;
        }
    }
}

int vnet_datapath_set_peer_list(struct vnet_datapath *dp, const struct vnet_peer *peers, size_t n)
{
    if (n && !peers)
        return VNET_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (peers[i].ep.ip.family != VNET_AF_INET && peers[i].ep.ip.family != VNET_AF_INET6)
            return VNET_EINVAL;
    struct peerset *ps = calloc(1, sizeof(*ps) + n * sizeof(struct peer));
    /* where each new seal state came from: -1 made here, -2 the old set, else a retired index */
    long *from = calloc(n ? n : 1, sizeof(*from));
    if (!ps || !from) {
        free(ps);
        free(from);
        return VNET_ENOMEM;
    }
    struct peerset *old = dp->peers;
    ps->n = n;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        struct peer *np = &ps->p[i];
        np->ep = peers[i].ep;
        np->id = peers[i].id;
        np->has_pubkey = peers[i].has_pubkey;
        memcpy(np->pubkey, peers[i].pubkey, VNET_KEY_LEN);
        np->has_nonce = dp->has_nonce && peers[i].has_nonce;
        if (np->has_nonce)
            memcpy(np->nonce, peers[i].nonce, VNET_SEAL_NONCE_LEN);
        from[i] = -1;
        for (size_t j = 0; old && j < old->n; j++) {
            struct peer *op = &old->p[j];
            /* carry the counters of peers that stay, and their keys and replay windows:
             * the same memory, so no counter is ever used twice */
            if (vnet_endpoint_eq(&op->ep, &np->ep) || (np->id && op->id == np->id)) {
                np->tx_packets = STAT_GET(op->tx_packets);
                np->tx_bytes = STAT_GET(op->tx_bytes);
                np->rx_packets = STAT_GET(op->rx_packets);
                np->rx_bytes = STAT_GET(op->rx_bytes);
                np->probe_seq = STAT_GET(op->probe_seq);
                np->probe_sent_ns = STAT_GET(op->probe_sent_ns);
                np->probe_pending = STAT_GET(op->probe_pending);
                np->probes_sent = STAT_GET(op->probes_sent);
                np->probe_replies = STAT_GET(op->probe_replies);
                np->probes_answered = STAT_GET(op->probes_answered);
                np->probes_unexpected = STAT_GET(op->probes_unexpected);
                np->rtt_ns = STAT_GET(op->rtt_ns);
                np->reply_ns = STAT_GET(op->reply_ns);
                np->tx_epoch_ms = STAT_GET(op->tx_epoch_ms);
                np->rx_adopted = STAT_GET(op->rx_adopted);
            }
            if (!np->seal && seal_is_for(op->seal, np)) {
                np->seal = op->seal;
                from[i] = -2;
            }
        }
        if (!dp->secure || !np->has_pubkey || np->seal)
            continue;
        if (dp->has_nonce && !np->has_nonce) {
            char buf[VNET_ENDPOINT_STRLEN];
            vnet_endpoint_format(&np->ep, buf, sizeof(buf));
            vnet_log(VNET_LOG_WARN, "datapath",
                     "peer %llu (%s) has no data-plane nonce yet: no secure traffic with it "
                     "until the controller reports one",
                     (unsigned long long)np->id, buf);
            continue;
        }
        for (size_t r = 0; r < dp->nretired && !np->seal; r++)
            if (seal_is_for(dp->retired[r], np)) {
                np->seal = dp->retired[r];
                from[i] = (long)r;
            }
        if (np->seal)
            continue;
        np->seal = malloc(sizeof(*np->seal));
        rc = np->seal ? vnet_seal_peer_init_nonces(
                            np->seal, &dp->key, np->pubkey, dp->vni, VNET_SEAL_AUTO, wall_ms(),
                            dp->has_nonce ? dp->nonce : NULL, np->has_nonce ? np->nonce : NULL)
                      : VNET_ENOMEM;
        if (rc) {
            free(np->seal);
            np->seal = NULL;
        }
    }
    if (rc) {
        /* Free only the seal states this call made. */
        for (size_t i = 0; i < n; i++)
            if (from[i] == -1)
                free(ps->p[i].seal);
        free(ps);
        free(from);
        return rc;
    }
    /* Taken back from the retired list: no longer retired. */
    for (size_t i = 0; i < n; i++)
        if (from[i] >= 0)
            dp->retired[from[i]] = NULL;
    size_t k = 0;
    for (size_t r = 0; r < dp->nretired; r++)
        if (dp->retired[r])
            dp->retired[k++] = dp->retired[r];
    dp->nretired = k;
    free(from);
    __atomic_store_n(&dp->peers, ps, __ATOMIC_RELEASE);
    if (old) {
        /* Seal states no longer referenced are kept aside for the peer's return. */
        for (size_t j = 0; j < old->n; j++) {
            bool kept = false;
            for (size_t i = 0; i < n && !kept; i++)
                kept = old->p[j].seal && ps->p[i].seal == old->p[j].seal;
            for (size_t jj = 0; jj < j && !kept; jj++) /* listed twice in the old set */
                kept = old->p[jj].seal == old->p[j].seal;
            if (old->p[j].seal && !kept)
                seal_retire(dp, old->p[j].seal);
        }
        if (vnet_table_defer_free(dp->table, old) != 0) {
            /* No memory to queue it: wait for the readers instead (this is the writer). */
            vnet_table_synchronize(dp->table);
            free(old);
        }
    }
    for (size_t i = 0; i < n; i++)
        retired_purge(dp, &ps->p[i]);
    return 0;
}

int vnet_datapath_set_peers(struct vnet_datapath *dp, const struct vnet_endpoint *peers, size_t n)
{
    if (n && !peers)
        return VNET_EINVAL;
    struct vnet_peer *v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return VNET_ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i].ep = peers[i];
    int rc = vnet_datapath_set_peer_list(dp, v, n);
    free(v);
    return rc;
}

int vnet_datapath_add_local_mac(struct vnet_datapath *dp, const struct vnet_mac *mac)
{
    unsigned n = __atomic_load_n(&dp->nlocal, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (vnet_mac_eq(&dp->local[i], mac))
            return 0;
    if (n == LOCAL_MACS)
        return VNET_ENOSPC;
    dp->local[n] = *mac;
    __atomic_store_n(&dp->nlocal, n + 1, __ATOMIC_RELEASE);
    return 0;
}

int vnet_datapath_fds(const struct vnet_datapath *dp, int fds[2])
{
    fds[0] = vnet_port_fd(dp->vport, dp->queue);
    fds[1] = vnet_port_fd(dp->uport, dp->queue);
    return fds[0] < 0 ? fds[0] : fds[1] < 0 ? fds[1] : 0;
}

/* ---- helpers ---- */

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static bool is_local_mac(const struct vnet_datapath *dp, const uint8_t *mac)
{
    unsigned n = __atomic_load_n(&dp->nlocal, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (memcmp(dp->local[i].b, mac, 6) == 0)
            return true;
    return false;
}

static struct peer *find_peer(struct peerset *ps, const struct vnet_endpoint *ep)
{
    if (!ps)
        return NULL;
    for (size_t i = 0; i < ps->n; i++)
        if (vnet_ip_eq(&ps->p[i].ep.ip, &ep->ip))
            return &ps->p[i];
    return NULL;
}

static bool entry_ip_eq(const struct vnet_entry *e, const struct vnet_ip *ip)
{
    struct vnet_endpoint ep;
    vnet_entry_endpoint(e, &ep);
    return vnet_ip_eq(&ep.ip, ip);
}

static void flush_underlay(struct vnet_datapath *dp)
{
    int done = 0;
    for (int tries = 0; done < dp->nutx && tries < 50; tries++) {
        int rc = vnet_port_tx_burst(dp->uport, dp->queue, dp->utxp + done, dp->nutx - done);
        if (rc > 0) {
            done += rc;
            continue;
        }
        if (rc < 0 && rc != VNET_EAGAIN && rc != VNET_ENOBUFS)
            break; /* a hard error (device down, ...): drop the rest, counted below */
        /* The socket buffer is full: wait (at most 1 ms) for it to drain rather than drop,
         * which TCP would pay for dearly. */
        struct pollfd pfd = {.fd = vnet_port_fd(dp->uport, dp->queue), .events = POLLOUT};
        poll(&pfd, 1, 1);
    }
    for (int i = 0; i < dp->nutx; i++) {
        if (i < done) {
            STAT_ADD(dp->st.uport.tx_packets, 1);
            STAT_ADD(dp->st.uport.tx_bytes, dp->utx[i].len);
        } else {
            drop(dp, VNET_DP_DROP_TX_UNDERLAY);
        }
    }
    dp->nutx = 0;
}

static void flush_virtual(struct vnet_datapath *dp)
{
    int done = 0;
    for (int tries = 0; done < dp->nvtx && tries < 50; tries++) {
        int rc = vnet_port_tx_burst(dp->vport, dp->queue, dp->vtxp + done, dp->nvtx - done);
        if (rc > 0) {
            done += rc;
            continue;
        }
        if (rc < 0 && rc != VNET_EAGAIN && rc != VNET_ENOBUFS)
            break; /* a hard error (device down, ...): drop the rest, counted below */
        struct pollfd pfd = {.fd = vnet_port_fd(dp->vport, dp->queue), .events = POLLOUT};
        poll(&pfd, 1, 1);
    }
    for (int i = 0; i < dp->nvtx; i++) {
        if (i < done) {
            STAT_ADD(dp->st.vport.tx_packets, 1);
            STAT_ADD(dp->st.vport.tx_bytes, dp->vtx[i].len);
        } else {
            drop(dp, VNET_DP_DROP_TX_VIRTUAL);
        }
    }
    dp->nvtx = 0;
    dp->nreply = 0;
}

static void queue_underlay(struct vnet_datapath *dp, const struct vnet_pkt *frame,
                           const struct vnet_endpoint *to, struct peer *peer)
{
    if (dp->nutx == UTX_MAX)
        flush_underlay(dp);
    struct vnet_pkt *o = &dp->utx[dp->nutx++];
    *o = *frame;
    o->peer = *to;
    if (peer) {
        STAT_ADD(peer->tx_packets, 1);
        STAT_ADD(peer->tx_bytes, frame->len);
    }
}

/* ---- peer probes ---- */

static const uint8_t probe_magic[4] = {'V', 'N', 'P', 'R'};

int vnet_probe_encode(uint8_t *out, size_t cap, const struct vnet_probe *p)
{
    if (!out || !p || (p->type != VNET_PROBE_REQUEST && p->type != VNET_PROBE_REPLY))
        return VNET_EINVAL;
    if (cap < VNET_PROBE_LEN)
        return VNET_ENOSPC;
    memset(out, 0, VNET_PROBE_LEN); /* both MACs 00:00:00:00:00:00, reserved bytes */
    wr16(out + 12, VNET_PROBE_ETHERTYPE);
    memcpy(out + 14, probe_magic, 4);
    out[18] = 1; /* version */
    out[19] = p->type;
    for (int i = 0; i < 4; i++)
        out[22 + i] = (uint8_t)(p->seq >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        out[30 + i] = (uint8_t)(p->ts >> (56 - 8 * i));
    return VNET_PROBE_LEN;
}

/* Ethertype and magic: the frame claims to be a probe. */
static bool is_probe(const uint8_t *f, size_t len)
{
    return len >= 18 && rd16(f + 12) == VNET_PROBE_ETHERTYPE && memcmp(f + 14, probe_magic, 4) == 0;
}

int vnet_probe_decode(const uint8_t *f, size_t len, struct vnet_probe *out)
{
    if (!f || !out)
        return VNET_EINVAL;
    if (!is_probe(f, len))
        return VNET_ENOENT;
    /* Exactly the probe's length: a bigger "request" must not make a bigger answer, and the
     * answer is built afresh, never copied from the request. */
    if (len != VNET_PROBE_LEN || f[18] != 1 ||
        (f[19] != VNET_PROBE_REQUEST && f[19] != VNET_PROBE_REPLY))
        return VNET_EPROTO;
    out->type = f[19];
    out->seq = 0;
    out->ts = 0;
    for (int i = 0; i < 4; i++)
        out->seq = out->seq << 8 | f[22 + i];
    for (int i = 0; i < 8; i++)
        out->ts = out->ts << 8 | f[30 + i];
    return 0;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Send probe @pr to @peer, like data: behind VXLAN, or sealed with the peer's keys. */
static void probe_send(struct vnet_datapath *dp, struct peer *peer, const struct vnet_probe *pr)
{
    if (dp->nprobe == PROBE_SLOTS) {
        flush_underlay(dp); /* the slots queued so far are sent: reuse them */
        dp->nprobe = 0;
    }
    uint8_t *slot = dp->probebuf + (size_t)dp->nprobe * PROBE_SLOT;
    uint8_t frame[VNET_PROBE_LEN];
    vnet_probe_encode(frame, sizeof(frame), pr);
    struct vnet_pkt o;
    memset(&o, 0, sizeof(o));
    o.buf = slot;
    o.cap = PROBE_SLOT;
    if (dp->secure) {
        int rc = vnet_seal_peer_seal(&peer->seal->tx, dp->now_ms, frame, sizeof(frame), slot,
                                     PROBE_SLOT);
        if (rc <= 0) {
            drop(dp, VNET_DP_DROP_OFFLOAD);
            return;
        }
        o.len = (uint32_t)rc;
    } else {
        vnet_vxlan_encode(slot, dp->vni);
        memcpy(slot + VNET_VXLAN_HLEN, frame, sizeof(frame));
        o.len = VNET_VXLAN_HLEN + VNET_PROBE_LEN;
    }
    dp->nprobe++;
    /* To the peer's known endpoint, never to the datagram's source: no reflection. Not counted
     * as the peer's data. */
    queue_underlay(dp, &o, &peer->ep, NULL);
}

/* A probe came from the underlay (authenticated in secure mode): answer a request, time a
 * reply. Never delivered to the virtual port. */
static void probe_in(struct vnet_datapath *dp, struct peer *peer, const uint8_t *f, uint32_t len)
{
    struct vnet_probe pr;
    if (!peer) {
        drop(dp, VNET_DP_DROP_UNKNOWN_PEER);
        return;
    }
    if (vnet_probe_decode(f, len, &pr) != 0) {
        drop(dp, VNET_DP_DROP_DECAP);
        return;
    }
    if (pr.type == VNET_PROBE_REQUEST) {
        if (dp->secure && !peer->seal)
            return;
        pr.type = VNET_PROBE_REPLY;
        probe_send(dp, peer, &pr);
        STAT_ADD(peer->probes_answered, 1);
        return;
    }
    if (!STAT_GET(peer->probe_pending) || pr.seq != STAT_GET(peer->probe_seq)) {
        STAT_ADD(peer->probes_unexpected, 1);
        return;
    }
    uint64_t now = mono_ns();
    __atomic_store_n(&peer->probe_pending, false, __ATOMIC_RELAXED);
    __atomic_store_n(&peer->rtt_ns, now - peer->probe_sent_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&peer->reply_ns, now, __ATOMIC_RELAXED);
    STAT_ADD(peer->probe_replies, 1);
}

int vnet_datapath_set_probe(struct vnet_datapath *dp, unsigned interval_ms, bool all_peers)
{
    if (!dp)
        return VNET_EINVAL;
    dp->probe_ms = interval_ms;
    dp->probe_all = all_peers;
    dp->next_probe_ns = 0; /* the first round at the next tick */
    return 0;
}

int vnet_datapath_tick(struct vnet_datapath *dp)
{
    uint64_t now = mono_ns();
    if (now < dp->next_probe_ns) {
        uint64_t left = (dp->next_probe_ns - now) / 1000000u + 1;
        return left < 1000 ? (int)left : 1000;
    }
    unsigned every = dp->probe_ms ? dp->probe_ms : 1000;
    dp->next_probe_ns = now + (uint64_t)every * 1000000u;
    struct peerset *ps = __atomic_load_n(&dp->peers, __ATOMIC_ACQUIRE);
    if (!ps || !ps->n)
        return (int)every;
    vnet_table_reader_online(dp->reader);
    if (dp->secure)
        dp->now_ms = wall_ms();
    for (size_t i = 0; i < ps->n; i++) {
        struct peer *peer = &ps->p[i];
        if (peer->seal) { /* key times for monitors, which must not touch the seal states */
            __atomic_store_n(&peer->tx_epoch_ms, peer->seal->tx.started_ms, __ATOMIC_RELAXED);
            __atomic_store_n(&peer->rx_adopted, peer->seal->rx.epochs_adopted, __ATOMIC_RELAXED);
        }
        if (!dp->probe_ms || (!peer->id && !dp->probe_all) || (dp->secure && !peer->seal))
            continue;
        struct vnet_probe pr = {.type = VNET_PROBE_REQUEST,
                                .seq = dp->probe_seq0 + (uint32_t)STAT_GET(peer->probes_sent),
                                .ts = now};
        __atomic_store_n(&peer->probe_seq, pr.seq, __ATOMIC_RELAXED);
        __atomic_store_n(&peer->probe_sent_ns, now, __ATOMIC_RELAXED);
        __atomic_store_n(&peer->probe_pending, true, __ATOMIC_RELAXED);
        STAT_ADD(peer->probes_sent, 1);
        probe_send(dp, peer, &pr);
    }
    if (dp->nutx)
        flush_underlay(dp);
    dp->nprobe = 0;
    vnet_table_reader_offline(dp->reader);
    return (int)every;
}

size_t vnet_datapath_peer_info(const struct vnet_datapath *dp, struct vnet_dp_peer_info *out,
                               size_t max)
{
    const struct peerset *ps = __atomic_load_n(&dp->peers, __ATOMIC_ACQUIRE);
    if (!ps)
        return 0;
    uint64_t now = mono_ns(), wall = wall_ms();
    for (size_t i = 0; i < ps->n && i < max; i++) {
        const struct peer *p = &ps->p[i];
        struct vnet_dp_peer_info *o = &out[i];
        memset(o, 0, sizeof(*o));
        o->ep = p->ep;
        o->id = p->id;
        o->probes_sent = STAT_GET(p->probes_sent);
        o->probe_replies = STAT_GET(p->probe_replies);
        o->probes_answered = STAT_GET(p->probes_answered);
        o->probes_unexpected = STAT_GET(p->probes_unexpected);
        o->rtt_ns = STAT_GET(p->rtt_ns);
        uint64_t r = STAT_GET(p->reply_ns);
        o->reply_age_ms = r && o->rtt_ns ? (int64_t)((now - r) / 1000000u) : -1;
        uint64_t e = STAT_GET(p->tx_epoch_ms);
        o->tx_epoch_age_ms = e ? (int64_t)(wall > e ? wall - e : 0) : -1;
        o->rx_epochs_adopted = STAT_GET(p->rx_adopted);
    }
    return ps->n;
}

/* ---- ARP and neighbour discovery answered from the table ---- */

static uint8_t *reply_buf(struct vnet_datapath *dp)
{
    if (dp->nreply == REPLY_MAX || dp->nvtx == BURST_MAX * 64)
        return NULL;
    return dp->replybuf[dp->nreply++];
}

static void queue_reply(struct vnet_datapath *dp, uint8_t *buf, uint32_t len)
{
    struct vnet_pkt *o = &dp->vtx[dp->nvtx++];
    memset(o, 0, sizeof(*o));
    o->buf = buf;
    o->cap = BUF_SIZE;
    o->len = len;
}

/* ARP request for an address the table knows: answer it. Returns true when handled. */
static bool answer_arp(struct vnet_datapath *dp, const uint8_t *f, uint32_t len)
{
    /* htype 1, ptype IPv4, hlen 6, plen 4, op 1 */
    if (len < 42 || rd16(f + 14) != 1 || rd16(f + 16) != ETH_P_IP || f[18] != 6 || f[19] != 4 ||
        rd16(f + 20) != 1)
        return false;
    struct vnet_ip target = {.family = VNET_AF_INET};
    memcpy(target.addr, f + 38, 4);
    struct vnet_mac mac;
    if (vnet_table_lookup_ip(dp->table, dp->vni, &target, &mac) != 0)
        return false;
    if (memcmp(mac.b, f + 6, 6) == 0)
        return false; /* gratuitous / duplicate address probe for itself: let it pass */
    uint8_t *r = reply_buf(dp);
    if (!r)
        return false;
    memcpy(r, f + 6, 6);     /* to the asker */
    memcpy(r + 6, mac.b, 6); /* from the owner */
    wr16(r + 12, ETH_P_ARP);
    wr16(r + 14, 1);
    wr16(r + 16, ETH_P_IP);
    r[18] = 6;
    r[19] = 4;
    wr16(r + 20, 2);           /* reply */
    memcpy(r + 22, mac.b, 6);  /* sender hw: the owner */
    memcpy(r + 28, f + 38, 4); /* sender ip: the target asked for */
    memcpy(r + 32, f + 22, 6); /* target hw: the asker */
    memcpy(r + 38, f + 28, 4); /* target ip: the asker's */
    memset(r + 42, 0, 18);     /* pad to 60 */
    queue_reply(dp, r, 60);
    STAT_ADD(dp->st.arp_replies, 1);
    return true;
}

/* IPv6 neighbour solicitation for a known target: answer with a neighbour advertisement. */
static bool answer_nd(struct vnet_datapath *dp, const uint8_t *f, uint32_t len)
{
    /* Ethernet + IPv6 (next header ICMPv6, hop limit 255) + NS (type 135, code 0) */
    if (len < 14 + 40 + 24 || (f[14] >> 4) != 6 || f[20] != 58 || f[21] != 255 || f[54] != 135 ||
        f[55] != 0)
        return false;
    uint32_t plen = rd16(f + 18);
    if (plen < 24 || 54u + plen > len)
        return false;
    struct vnet_ip target = {.family = VNET_AF_INET6};
    memcpy(target.addr, f + 62, 16);
    struct vnet_mac mac;
    if (vnet_table_lookup_ip(dp->table, dp->vni, &target, &mac) != 0)
        return false;
    if (memcmp(mac.b, f + 6, 6) == 0)
        return false;
    static const uint8_t unspec[16] = {0};
    bool dad = memcmp(f + 22, unspec, 16) == 0; /* duplicate address detection probe */
    uint8_t *r = reply_buf(dp);
    if (!r)
        return false;
    const uint32_t icmp_len = 32; /* NA 24 + target link-layer address option 8 */
    /* Ethernet */
    if (dad) {
        static const uint8_t all_nodes[6] = {0x33, 0x33, 0, 0, 0, 1};
        memcpy(r, all_nodes, 6);
    } else {
        memcpy(r, f + 6, 6);
    }
    memcpy(r + 6, mac.b, 6);
    wr16(r + 12, ETH_P_IPV6);
    /* IPv6 */
    uint8_t *ip = r + 14;
    memset(ip, 0, 40);
    ip[0] = 0x60;
    wr16(ip + 4, (uint16_t)icmp_len);
    ip[6] = 58;
    ip[7] = 255;
    memcpy(ip + 8, target.addr, 16); /* from the target */
    if (dad) {
        static const uint8_t all_nodes6[16] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        memcpy(ip + 24, all_nodes6, 16);
    } else {
        memcpy(ip + 24, f + 22, 16); /* to the asker */
    }
    /* ICMPv6 NA */
    uint8_t *na = ip + 40;
    memset(na, 0, icmp_len);
    na[0] = 136;
    na[4] = dad ? 0x20 : 0x60; /* Solicited (not for DAD) + Override */
    memcpy(na + 8, target.addr, 16);
    na[24] = 2; /* target link-layer address */
    na[25] = 1;
    memcpy(na + 26, mac.b, 6);
    uint32_t sum = vnet_csum_pseudo6(ip + 8, ip + 24, 58, icmp_len);
    sum = vnet_csum_partial(na, icmp_len, sum);
    wr16(na + 2, vnet_csum_fold(sum));
    queue_reply(dp, r, 14 + 40 + icmp_len);
    STAT_ADD(dp->st.nd_replies, 1);
    return true;
}

/* A frame over the MTU came from the node's own stack: tell it, as a router would, so it lowers
 * its path MTU (ICMP "fragmentation needed" for IPv4 with DF, ICMPv6 "packet too big"). The
 * message comes from the destination's address; the stack only looks at the quoted header. */
static void send_too_big(struct vnet_datapath *dp, const uint8_t *f, uint32_t len)
{
    uint16_t et = rd16(f + 12);
    uint8_t *r;
    if (et == ETH_P_IP && len >= 14 + 20 && (f[14] >> 4) == 4 && (rd16(f + 20) & 0x4000)) {
        uint32_t quote = len - 14 < 548 ? len - 14 : 548; /* keeps the reply within 576 */
        if (!(r = reply_buf(dp)))
            return;
        memcpy(r, f + 6, 6);
        memcpy(r + 6, f, 6);
        wr16(r + 12, ETH_P_IP);
        uint8_t *ip = r + 14, *ic = ip + 20;
        memset(ip, 0, 20);
        ip[0] = 0x45;
        wr16(ip + 2, (uint16_t)(20 + 8 + quote));
        ip[8] = 64;
        ip[9] = 1;
        memcpy(ip + 12, f + 14 + 16, 4); /* from: the original destination */
        memcpy(ip + 16, f + 14 + 12, 4); /* to: the original source */
        wr16(ip + 10, vnet_csum_fold(vnet_csum_partial(ip, 20, 0)));
        memset(ic, 0, 8);
        ic[0] = 3; /* destination unreachable */
        ic[1] = 4; /* fragmentation needed and DF set */
        wr16(ic + 6, (uint16_t)dp->mtu);
        memcpy(ic + 8, f + 14, quote);
        wr16(ic + 2, vnet_csum_fold(vnet_csum_partial(ic, 8 + quote, 0)));
        queue_reply(dp, r, 14 + 20 + 8 + quote);
    } else if (et == ETH_P_IPV6 && len >= 14 + 40 && (f[14] >> 4) == 6) {
        uint32_t quote = len - 14 < 1280 - 48 ? len - 14 : 1280 - 48; /* within the IPv6 minimum */
        if (!(r = reply_buf(dp)))
            return;
        memcpy(r, f + 6, 6);
        memcpy(r + 6, f, 6);
        wr16(r + 12, ETH_P_IPV6);
        uint8_t *ip = r + 14, *ic = ip + 40;
        memset(ip, 0, 40);
        ip[0] = 0x60;
        wr16(ip + 4, (uint16_t)(8 + quote));
        ip[6] = 58;
        ip[7] = 64;
        memcpy(ip + 8, f + 14 + 24, 16);
        memcpy(ip + 24, f + 14 + 8, 16);
        memset(ic, 0, 8);
        ic[0] = 2; /* packet too big */
        ic[4] = (uint8_t)(dp->mtu >> 24);
        ic[5] = (uint8_t)(dp->mtu >> 16);
        ic[6] = (uint8_t)(dp->mtu >> 8);
        ic[7] = (uint8_t)dp->mtu;
        memcpy(ic + 8, f + 14, quote);
        uint32_t sum = vnet_csum_pseudo6(ip + 8, ip + 24, 58, 8 + quote);
        wr16(ic + 2, vnet_csum_fold(vnet_csum_partial(ic, 8 + quote, sum)));
        queue_reply(dp, r, 14 + 40 + 8 + quote);
    } else {
        return;
    }
    STAT_ADD(dp->st.too_big_sent, 1);
}

/* ---- egress: virtual port -> underlay ---- */

/* Make @p ready for the underlay: inner checksum completed, VXLAN header in front. */
static bool prepare_egress(struct vnet_datapath *dp, struct vnet_pkt *p)
{
    if (p->len - VNET_ETH_HLEN > dp->mtu + 4 /* a VLAN tag may ride along */) {
        drop(dp, VNET_DP_DROP_TOO_BIG);
        send_too_big(dp, vnet_pkt_data(p), p->len);
        return false;
    }
    if ((p->csum_flags & VNET_CSUM_PARTIAL) && vnet_csum_complete(p) != 0) {
        drop(dp, VNET_DP_DROP_OFFLOAD);
        return false;
    }
    if (p->off < VNET_VXLAN_HLEN) {
        drop(dp, VNET_DP_DROP_OFFLOAD);
        return false;
    }
    p->off -= VNET_VXLAN_HLEN;
    p->len += VNET_VXLAN_HLEN;
    vnet_vxlan_encode(p->buf + p->off, dp->vni);
    p->csum_flags = 0;
    p->gso_size = 0;
    return true;
}

/* A TSO/USO frame: cut it into wire-sized frames at a fixed stride, each behind its VXLAN
 * header, and queue them as UDP GSO batches (or one by one when the underlay cannot), to one
 * peer or, with @ps, to every peer. */
static void send_gso(struct vnet_datapath *dp, struct vnet_pkt *p, const struct vnet_endpoint *to,
                     struct peer *peer, struct peerset *ps)
{
    /* One buffer per frame of the burst; they are reused only by the next burst, so chunks
     * still queued after a mid-burst flush never see their bytes overwritten. */
    if (dp->ngso == BURST_MAX) {
        drop(dp, VNET_DP_DROP_OFFLOAD);
        return;
    }
    uint8_t *out = dp->gsobuf[dp->ngso];
    struct vnet_gso_info info;
    int n = vnet_gso_segment(p, VNET_VXLAN_HLEN, VNET_GSO_MAX_SEGS, out, GSO_OUT_CAP, &info);
    if (n <= 0) {
        drop(dp, VNET_DP_DROP_OFFLOAD);
        return;
    }
    dp->ngso++;
    for (int k = 0; k < n; k++)
        vnet_vxlan_encode(out + (size_t)k * info.stride, dp->vni);
    unsigned per = dp->udp_gso ? vnet_gso_segs_per_send(info.stride) : 1;
    size_t ndst = ps ? ps->n : 1;
    for (size_t d = 0; d < ndst; d++) {
        const struct vnet_endpoint *dst = ps ? &ps->p[d].ep : to;
        struct peer *pr = ps ? &ps->p[d] : peer;
        for (unsigned k = 0; k < (unsigned)n; k += per) {
            uint32_t off = k * info.stride;
            uint32_t end = k + per >= (unsigned)n ? info.total : (k + per) * info.stride;
            struct vnet_pkt chunk;
            memset(&chunk, 0, sizeof(chunk));
            chunk.buf = out;
            chunk.cap = GSO_OUT_CAP;
            chunk.off = off;
            chunk.len = end - off;
            chunk.gso_size = per > 1 && chunk.len > info.stride ? (uint16_t)info.stride : 0;
            queue_underlay(dp, &chunk, dst, pr);
        }
    }
    STAT_ADD(dp->st.gso_frames, 1);
}

static struct peer *find_peer_id(struct peerset *ps, uint64_t id)
{
    for (size_t i = 0; ps && id && i < ps->n; i++)
        if (ps->p[i].id == id)
            return &ps->p[i];
    return NULL;
}

/* Room in the sealed-output arena; flushing the underlay frees it all. */
static uint8_t *arena_alloc(struct vnet_datapath *dp, size_t n)
{
    if (n > dp->arena_cap)
        return NULL;
    if (dp->arena_off + n > dp->arena_cap) {
        /* Send everything queued (some of it lives in the arena), then start it over. Only
         * here: a flush forced by a full send queue must not free regions whose later chunks
         * are still to be queued. */
        flush_underlay(dp);
        dp->arena_off = 0;
    }
    uint8_t *p = dp->arena + dp->arena_off;
    dp->arena_off += (n + 63) & ~(size_t)63;
    return p;
}

/* Secure mode: seal @p for each of @dst[0..ndst) (its own keys and counters) and queue it.
 * TSO/USO frames are cut into wire-sized frames first and each is sealed on its own, at a
 * fixed stride so that a peer still gets one UDP GSO batch. */
static void send_sealed(struct vnet_datapath *dp, struct vnet_pkt *p, struct peer **dst,
                        size_t ndst)
{
    const uint8_t *segs;
    uint32_t nseg = 1, stride, total;
    if (p->gso_type != VNET_GSO_NONE) {
        if (dp->ngso == BURST_MAX) {
            drop(dp, VNET_DP_DROP_OFFLOAD);
            return;
        }
        uint8_t *out = dp->gsobuf[dp->ngso];
        struct vnet_gso_info info;
        int n = vnet_gso_segment(p, 0, VNET_GSO_MAX_SEGS, out, GSO_OUT_CAP, &info);
        if (n <= 0) {
            drop(dp, VNET_DP_DROP_OFFLOAD);
            return;
        }
        dp->ngso++;
        segs = out;
        nseg = (uint32_t)n;
        stride = info.stride;
        total = info.total;
        STAT_ADD(dp->st.gso_frames, 1);
    } else {
        if (p->len - VNET_ETH_HLEN > dp->mtu + 4) {
            drop(dp, VNET_DP_DROP_TOO_BIG);
            send_too_big(dp, vnet_pkt_data(p), p->len);
            return;
        }
        if ((p->csum_flags & VNET_CSUM_PARTIAL) && vnet_csum_complete(p) != 0) {
            drop(dp, VNET_DP_DROP_OFFLOAD);
            return;
        }
        segs = vnet_pkt_data(p);
        stride = total = p->len;
    }
    uint32_t sstride = stride + VNET_SEAL_OVERHEAD;
    unsigned per = nseg > 1 && dp->udp_gso ? vnet_gso_segs_per_send(sstride) : 1;
    for (size_t d = 0; d < ndst; d++) {
        struct peer *pr = dst[d];
        if (!pr || !pr->seal) {
            drop(dp, VNET_DP_DROP_NO_KEY);
            continue;
        }
        uint8_t *region = arena_alloc(dp, (size_t)nseg * sstride);
        if (!region) {
            drop(dp, VNET_DP_DROP_OFFLOAD);
            continue;
        }
        uint32_t sealed_total = 0;
        bool ok = true;
        for (uint32_t k = 0; k < nseg && ok; k++) {
            uint32_t len = k + 1 == nseg ? total - k * stride : stride;
            int rc = vnet_seal_peer_seal(&pr->seal->tx, dp->now_ms, segs + (size_t)k * stride, len,
                                         region + (size_t)k * sstride, sstride);
            ok = rc > 0;
            sealed_total = k * sstride + (uint32_t)(rc > 0 ? rc : 0);
        }
        if (!ok) {
            drop(dp, VNET_DP_DROP_OFFLOAD);
            continue;
        }
        for (uint32_t k = 0; k < nseg; k += per) {
            uint32_t off = k * sstride;
            uint32_t end = k + per >= nseg ? sealed_total : (k + per) * sstride;
            struct vnet_pkt chunk;
            memset(&chunk, 0, sizeof(chunk));
            chunk.buf = region;
            chunk.cap = nseg * sstride;
            chunk.off = off;
            chunk.len = end - off;
            chunk.gso_size = per > 1 && chunk.len > sstride ? (uint16_t)sstride : 0;
            queue_underlay(dp, &chunk, &pr->ep, pr);
        }
    }
}

static void flood(struct vnet_datapath *dp, struct vnet_pkt *p, struct peerset *ps)
{
    if (!ps || ps->n == 0) {
        drop(dp, VNET_DP_DROP_NO_PEERS);
        return;
    }
    STAT_ADD(dp->st.flooded, 1);
    if (dp->secure) {
        struct peer *dst[64];
        for (size_t i = 0; i < ps->n; i += 64) {
            size_t k = 0;
            for (; k < 64 && i + k < ps->n; k++)
                dst[k] = &ps->p[i + k];
            send_sealed(dp, p, dst, k);
        }
        return;
    }
    if (p->gso_type != VNET_GSO_NONE) {
        send_gso(dp, p, NULL, NULL, ps);
        return;
    }
    if (!prepare_egress(dp, p))
        return;
    for (size_t i = 0; i < ps->n; i++)
        queue_underlay(dp, p, &ps->p[i].ep, &ps->p[i]);
}

static int egress(struct vnet_datapath *dp, int budget)
{
    for (int i = 0; i < budget; i++) {
        dp->vrx[i].off = HEADROOM;
        dp->vrx[i].len = 0;
    }
    int n = vnet_port_rx_burst(dp->vport, dp->queue, dp->vrxp, budget);
    if (n <= 0)
        return n;
    dp->ngso = 0;
    dp->arena_off = 0; /* the previous burst was flushed whole */
    struct peerset *ps = __atomic_load_n(&dp->peers, __ATOMIC_ACQUIRE);
    struct vnet_table_key keys[BURST_MAX];
    const struct vnet_entry *ents[BURST_MAX];
    /* Look every destination up at once (multicast ones just miss), then handle the frames in
     * order, so a burst leaves in the order it came. */
    for (int i = 0; i < n; i++) {
        keys[i].vni = dp->vni;
        if (dp->vrx[i].len >= VNET_ETH_HLEN)
            memcpy(keys[i].mac.b, vnet_pkt_data(&dp->vrx[i]), 6);
        else
            memset(keys[i].mac.b, 0xff, 6);
    }
    vnet_table_lookup_burst(dp->table, keys, n, ents, NULL);
    for (int i = 0; i < n; i++) {
        struct vnet_pkt *p = &dp->vrx[i];
        const uint8_t *f = vnet_pkt_data(p);
        STAT_ADD(dp->st.vport.rx_packets, 1);
        STAT_ADD(dp->st.vport.rx_bytes, p->len);
        TRACE_FRAME(0, f, p->len);
        if (p->len < VNET_ETH_HLEN) {
            drop(dp, VNET_DP_DROP_SHORT);
            continue;
        }
        if (is_probe(f, p->len)) {
            drop(dp, VNET_DP_DROP_SPOOF); /* only the datapath speaks probes */
            continue;
        }
        if (f[0] & 1) { /* broadcast / multicast */
            if (dp->arp_proxy) {
                uint16_t et = rd16(f + 12);
                if (et == ETH_P_ARP && answer_arp(dp, f, p->len))
                    continue;
                if (et == ETH_P_IPV6 && answer_nd(dp, f, p->len))
                    continue;
            }
            flood(dp, p, ps);
            continue;
        }
        const struct vnet_entry *e = ents[i];
        if (!e || (vnet_entry_flags(e) & VNET_ENTRY_LOCAL)) {
            if (e) { /* addressed to this node itself: nothing to send */
                drop(dp, VNET_DP_DROP_SELF);
                continue;
            }
            flood(dp, p, ps); /* unknown unicast */
            continue;
        }
        struct vnet_endpoint to;
        vnet_entry_endpoint(e, &to);
        if (dp->secure) {
            struct peer *pr = find_peer_id(ps, e->peer_id);
            if (!pr)
                pr = find_peer(ps, &to);
            send_sealed(dp, p, &pr, 1);
            continue;
        }
        if (p->gso_type != VNET_GSO_NONE) {
            send_gso(dp, p, &to, find_peer(ps, &to), NULL);
            continue;
        }
        if (!prepare_egress(dp, p))
            continue;
        queue_underlay(dp, p, &to, find_peer(ps, &to));
    }
    flush_underlay(dp);
    flush_virtual(dp); /* ARP/ND replies */
    TRACE_FLUSHED();
    return n;
}

/* ---- ingress: underlay -> virtual port ---- */

static void learn(struct vnet_datapath *dp, const uint8_t *mac, const struct vnet_endpoint *from,
                  struct peer *peer)
{
    uint32_t head = __atomic_load_n(&dp->ring_head, __ATOMIC_RELAXED);
    uint32_t tail = __atomic_load_n(&dp->ring_tail, __ATOMIC_ACQUIRE);
    if (head - tail == LEARN_RING) {
        drop(dp, VNET_DP_DROP_LEARN_FULL); /* not a frame drop; the frame is delivered */
        return;
    }
    struct learn_item *it = &dp->ring[head % LEARN_RING];
    memcpy(it->mac.b, mac, 6);
    it->ep = *from;
    /* Senders like Linux vxlan pick the source port per flow: keep the peer's port. */
    it->ep.port = peer ? peer->ep.port : VNET_VXLAN_PORT;
    __atomic_store_n(&dp->ring_head, head + 1, __ATOMIC_RELEASE);
    if (head == tail) {
        uint64_t one = 1;
        ssize_t w = write(dp->learn_efd, &one, sizeof(one));
        (void)w;
    }
}

/* Queue a frame for the virtual port. A merged frame lives in the GRO buffer, which the next
 * merge overwrites: write it out (with everything queued before it) at once. */
static void emit_virtual(struct vnet_datapath *dp, const struct vnet_pkt *f)
{
    if (dp->nvtx == BURST_MAX * 64)
        flush_virtual(dp);
    dp->vtx[dp->nvtx++] = *f;
    if (f->buf == dp->grobuf) {
        STAT_ADD(dp->st.gro_frames, 1);
        flush_virtual(dp);
    }
}

/* ---- secure mode: inner addresses bound to the sending node ---- */

/* Is @ip (family @fam, bytes @a) registered to node @id: bound in the table to a MAC whose
 * entry belongs to @id? */
static bool addr_of_node(const struct vnet_datapath *dp, uint8_t fam, const uint8_t *a, uint32_t id)
{
    struct vnet_ip ip;
    memset(&ip, 0, sizeof(ip));
    ip.family = fam;
    memcpy(ip.addr, a, fam == VNET_AF_INET ? 4 : 16);
    struct vnet_mac mac;
    if (vnet_table_lookup_ip(dp->table, dp->vni, &ip, &mac) != 0)
        return false;
    const struct vnet_entry *e = vnet_table_lookup(dp->table, dp->vni, &mac);
    return e && e->peer_id == id;
}

/* An IPv6 address node @id may claim: the unspecified address (DAD) when @unspec_ok, one
 * registered to @id, or a link-local address (fe80::/10). Link-local addresses are not
 * registered and cannot be bound: a TAP's link-local address comes from the MAC it had when
 * it first went up, not necessarily the node's (see docs/security.md). */
static bool ip6_of_node(const struct vnet_datapath *dp, const uint8_t *a, uint32_t id,
                        bool unspec_ok)
{
    static const uint8_t unspec[16] = {0};
    if (memcmp(a, unspec, 16) == 0)
        return unspec_ok;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return true;
    return addr_of_node(dp, VNET_AF_INET6, a, id);
}

/* ND: every source/target link-layer address option in @opt[0..n) must be @smac. */
static bool nd_opts_ok(const uint8_t *opt, uint32_t n, const uint8_t *smac)
{
    while (n >= 2) {
        uint32_t olen = opt[1] * 8u;
        if (olen == 0 || olen > n)
            return false;
        if ((opt[0] == 1 || opt[0] == 2) && (olen < 8 || memcmp(opt + 2, smac, 6) != 0))
            return false;
        opt += olen;
        n -= olen;
    }
    return true;
}

/* Secure mode, a frame from node @id: the drop reason when it claims an address that is not
 * the node's, or VNET_DP_DROP__MAX when it may pass. Up to two VLAN tags are looked through
 * (more: dropped); ethertypes other than IPv4, IPv6 and ARP claim no address. */
static enum vnet_dp_drop inner_src_check(const struct vnet_datapath *dp, const uint8_t *f,
                                         uint32_t len, uint32_t id)
{
    const uint8_t *smac = f + 6;
    uint32_t off = 12;
    uint16_t type = rd16(f + 12);
    for (int tags = 0; type == 0x8100 || type == 0x88a8; tags++) {
        if (tags == 2 || len < off + 6)
            return VNET_DP_DROP_SPOOF;
        off += 4;
        type = rd16(f + off);
    }
    off += 2; /* the network header */
    const uint8_t *h = f + off;
    uint32_t n = len - off;
    if (type == ETH_P_IP) {
        static const uint8_t any4[4] = {0};
        if (n < 20)
            return VNET_DP_DROP_SPOOF_IP4;
        if (memcmp(h + 12, any4, 4) == 0 || addr_of_node(dp, VNET_AF_INET, h + 12, id))
            return VNET_DP_DROP__MAX;
        return VNET_DP_DROP_SPOOF_IP4;
    }
    if (type == ETH_P_ARP) {
        static const uint8_t any4[4] = {0};
        if (n < 28)
            return VNET_DP_DROP_SPOOF_ARP;
        if (rd16(h) != 1 || rd16(h + 2) != ETH_P_IP || h[4] != 6 || h[5] != 4)
            return VNET_DP_DROP_SPOOF_ARP; /* nothing else is valid on Ethernet/IPv4 */
        if (memcmp(h + 8, smac, 6) != 0 ||
            (memcmp(h + 14, any4, 4) != 0 && !addr_of_node(dp, VNET_AF_INET, h + 14, id)))
            return VNET_DP_DROP_SPOOF_ARP;
        return VNET_DP_DROP__MAX;
    }
    if (type != ETH_P_IPV6)
        return VNET_DP_DROP__MAX;
    if (n < 40)
        return VNET_DP_DROP_SPOOF_IP6;
    if (!ip6_of_node(dp, h + 8, id, true))
        return VNET_DP_DROP_SPOOF_IP6;
    /* Find ICMPv6 behind hop-by-hop, routing and destination options headers. */
    uint8_t nh = h[6];
    uint32_t at = 40;
    while ((nh == 0 || nh == 43 || nh == 60) && at + 8 <= n) {
        nh = h[at];
        at += (h[at + 1] + 1u) * 8;
    }
    if (nh != 58 || at + 4 > n)
        return VNET_DP_DROP__MAX;
    const uint8_t *icmp = h + at;
    uint32_t ilen = n - at;
    if (icmp[0] == 135 || icmp[0] == 133) { /* NS, RS: options after 24 / 8 bytes */
        uint32_t body = icmp[0] == 135 ? 24 : 8;
        if (ilen < body || !nd_opts_ok(icmp + body, ilen - body, smac))
            return VNET_DP_DROP_SPOOF_ND;
    } else if (icmp[0] == 136) { /* NA: the target is the address claimed */
        if (ilen < 24 || !ip6_of_node(dp, icmp + 8, id, false) ||
            !nd_opts_ok(icmp + 24, ilen - 24, smac))
            return VNET_DP_DROP_SPOOF_ND;
    }
    return VNET_DP_DROP__MAX;
}

static void ingress_one(struct vnet_datapath *dp, struct vnet_pkt *dgram, uint8_t *p, uint32_t len,
                        struct peerset *ps)
{
    uint8_t *inner;
    uint32_t ilen;
    struct peer *peer = find_peer(ps, &dgram->peer);
    if (dp->secure) {
        /* Only a peer's own key opens its packets: no key, no frame. */
        if (!peer || !peer->seal) {
            drop(dp, VNET_DP_DROP_UNKNOWN_PEER);
            return;
        }
        int rc = vnet_seal_peer_open(&peer->seal->rx, dp->now_ms, p, len, p + VNET_SEAL_HDR_LEN,
                                     len - (len < VNET_SEAL_HDR_LEN ? len : VNET_SEAL_HDR_LEN));
        if (rc < 0) {
            drop(dp,
                 rc == VNET_EEXIST || rc == VNET_ERANGE ? VNET_DP_DROP_REPLAY : VNET_DP_DROP_AUTH);
            return;
        }
        if (rc < VNET_ETH_HLEN) {
            drop(dp, VNET_DP_DROP_DECAP);
            return;
        }
        inner = p + VNET_SEAL_HDR_LEN;
        ilen = (uint32_t)rc;
    } else {
        uint32_t vni;
        enum vnet_drop_reason why;
        if (vnet_vxlan_decode(p, len, &dp->decap, &vni, &why) != 0) {
            drop(dp, VNET_DP_DROP_DECAP);
            return;
        }
        if (vni != dp->vni) {
            drop(dp, VNET_DP_DROP_FOREIGN_VNI);
            return;
        }
        inner = p + VNET_VXLAN_HLEN;
        ilen = len - VNET_VXLAN_HLEN;
    }
    if (is_probe(inner, ilen)) {
        probe_in(dp, peer, inner, ilen);
        return;
    }
    const uint8_t *src = inner + 6;
    if (is_local_mac(dp, src)) {
        drop(dp, VNET_DP_DROP_SELF);
        return;
    }
    if (src[0] & 1) { /* a multicast source MAC is never valid */
        drop(dp, VNET_DP_DROP_SPOOF);
        return;
    }
    struct vnet_mac smac;
    memcpy(smac.b, src, 6);
    const struct vnet_entry *e = vnet_table_lookup(dp->table, dp->vni, &smac);
    if (e && dp->secure && peer->id && e->peer_id && e->peer_id != (uint32_t)peer->id) {
        drop(dp, VNET_DP_DROP_SPOOF); /* another node's MAC, under this node's own key */
        return;
    }
    if (dp->secure && peer->id) {
        enum vnet_dp_drop why = inner_src_check(dp, inner, ilen, (uint32_t)peer->id);
        if (why != VNET_DP_DROP__MAX) {
            drop(dp, why);
            return;
        }
    }
    if (e) {
        if (!entry_ip_eq(e, &dgram->peer.ip)) {
            if (!(dp->learn && (vnet_entry_flags(e) & VNET_ENTRY_LEARNED) && peer)) {
                drop(dp, VNET_DP_DROP_SPOOF);
                return;
            }
            learn(dp, src, &dgram->peer, peer); /* a learned MAC moved to another peer */
        }
    } else {
        if (!peer) {
            drop(dp, VNET_DP_DROP_UNKNOWN_PEER);
            return;
        }
        if (dp->learn)
            learn(dp, src, &dgram->peer, peer);
    }
    if (peer) {
        STAT_ADD(peer->rx_packets, 1);
        STAT_ADD(peer->rx_bytes, ilen);
    }
    if (dp->gro) {
        struct vnet_pkt outs[2];
        int k = vnet_gro_feed(&dp->grostate, inner, ilen, outs);
        for (int j = 0; j < k; j++) {
            if (dp->secure && outs[j].csum_flags == 0)
                outs[j].csum_flags = VNET_CSUM_VALID; /* authenticated: skip the kernel's check */
            emit_virtual(dp, &outs[j]);
        }
        return;
    }
    struct vnet_pkt o;
    memset(&o, 0, sizeof(o));
    o.buf = dgram->buf;
    o.cap = dgram->cap;
    o.off = (uint32_t)(inner - dgram->buf);
    o.len = ilen;
    emit_virtual(dp, &o);
}

static int ingress(struct vnet_datapath *dp, int budget)
{
    for (int i = 0; i < budget; i++) {
        dp->urx[i].off = HEADROOM;
        dp->urx[i].len = 0;
    }
    int n = vnet_port_rx_burst(dp->uport, dp->queue, dp->urxp, budget);
    if (n <= 0)
        return n;
    struct peerset *ps = __atomic_load_n(&dp->peers, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        struct vnet_pkt *d = &dp->urx[i];
        uint8_t *p = vnet_pkt_data(d);
        uint32_t seg = d->gso_size ? d->gso_size : d->len;
        STAT_ADD(dp->st.uport.rx_bytes, d->len);
        for (uint32_t o = 0; o < d->len; o += seg) {
            uint32_t l = d->len - o < seg ? d->len - o : seg;
            STAT_ADD(dp->st.uport.rx_packets, 1);
            if (!dp->secure && l > 8)
                TRACE_FRAME(1, p + o + 8, l - 8);
            ingress_one(dp, d, p + o, l, ps);
        }
    }
    if (dp->gro) {
        struct vnet_pkt last;
        if (vnet_gro_flush(&dp->grostate, &last) == 1)
            emit_virtual(dp, &last);
    }
    flush_virtual(dp);
    if (dp->nutx) /* probe replies */
        flush_underlay(dp);
    TRACE_FLUSHED();
    return n;
}

int vnet_datapath_poll(struct vnet_datapath *dp, int budget)
{
    return vnet_datapath_poll_ports(dp, VNET_DP_VPORT | VNET_DP_UPORT, budget);
}

int vnet_datapath_poll_ports(struct vnet_datapath *dp, unsigned which, int budget)
{
    if (budget <= 0 || budget > dp->burst)
        budget = dp->burst;
    TRACE_POLL();
    vnet_table_reader_online(dp->reader);
    if (dp->secure)
        dp->now_ms = wall_ms();
    int a = which & VNET_DP_VPORT ? egress(dp, budget) : 0;
    int b = which & VNET_DP_UPORT ? ingress(dp, budget) : 0;
    vnet_table_reader_offline(dp->reader);
    if (a < 0 && a != VNET_EAGAIN)
        return a;
    if (b < 0 && b != VNET_EAGAIN)
        return b;
    return (a > 0 ? a : 0) + (b > 0 ? b : 0);
}

/* ---- learning, writer side ---- */

int vnet_datapath_learn_drain(struct vnet_datapath *dp)
{
    uint64_t v;
    ssize_t r = read(dp->learn_efd, &v, sizeof(v));
    (void)r;
    struct vnet_table_op ops[64];
    int total = 0;
    for (;;) {
        uint32_t tail = __atomic_load_n(&dp->ring_tail, __ATOMIC_RELAXED);
        uint32_t head = __atomic_load_n(&dp->ring_head, __ATOMIC_ACQUIRE);
        size_t n = 0;
        while (tail != head && n < 64) {
            const struct learn_item *it = &dp->ring[tail % LEARN_RING];
            const struct vnet_entry *e = vnet_table_lookup(dp->table, dp->vni, &it->mac);
            tail++;
            /* Never overwrite what was configured, and skip what is already known. */
            if (e && !(vnet_entry_flags(e) & VNET_ENTRY_LEARNED))
                continue;
            struct vnet_endpoint cur;
            if (e) {
                vnet_entry_endpoint(e, &cur);
                if (vnet_endpoint_eq(&cur, &it->ep))
                    continue;
            }
            /* Every frame of a burst from a new MAC was queued: write it once, where it was
             * seen last. */
            size_t k = 0;
            while (k < n && !vnet_mac_eq(&ops[k].mac, &it->mac))
                k++;
            if (k == n) {
                memset(&ops[n], 0, sizeof(ops[n]));
                ops[n].type = VNET_TABLE_PUT;
                ops[n].vni = dp->vni;
                ops[n].mac = it->mac;
                ops[n].flags = VNET_ENTRY_LEARNED;
                n++;
            }
            ops[k].ep = it->ep;
        }
        __atomic_store_n(&dp->ring_tail, tail, __ATOMIC_RELEASE);
        if (n == 0 && tail == head)
            break;
        if (n) {
            int rc = vnet_table_apply(dp->table, ops, n, vnet_table_revision(dp->table));
            if (rc)
                return rc;
            total += (int)n;
            STAT_ADD(dp->st.learned, n);
        }
    }
    return total;
}

int vnet_datapath_learn_fd(const struct vnet_datapath *dp)
{
    return dp->learn_efd;
}

/* ---- worker thread ---- */

static void *worker(void *arg)
{
    struct vnet_datapath *dp = arg;
    int fds[2];
    vnet_datapath_fds(dp, fds);
    struct pollfd pfd[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
    while (!__atomic_load_n(&dp->stop, __ATOMIC_ACQUIRE)) {
        int rc = vnet_datapath_poll(dp, 0);
        if (rc > 0)
            continue;
        if (rc < 0)
            vnet_log(VNET_LOG_WARN, "datapath", "poll: %s", vnet_strerror(rc));
        int next = vnet_datapath_tick(dp);
        poll(pfd, 2, next < 100 ? next : 100);
    }
    return NULL;
}

int vnet_datapath_start(struct vnet_datapath *dp)
{
    if (dp->running)
        return VNET_ESTATE;
    dp->stop = 0;
    if (pthread_create(&dp->thread, NULL, worker, dp) != 0)
        return VNET_ENOMEM;
    dp->running = 1;
    return 0;
}

void vnet_datapath_stop(struct vnet_datapath *dp)
{
    if (!dp->running)
        return;
    __atomic_store_n(&dp->stop, 1, __ATOMIC_RELEASE);
    pthread_join(dp->thread, NULL);
    dp->running = 0;
}

/* ---- counters ---- */

void vnet_datapath_get_stats(const struct vnet_datapath *dp, struct vnet_datapath_stats *out)
{
    memset(out, 0, sizeof(*out));
    const uint64_t *src = (const uint64_t *)&dp->st;
    uint64_t *dst = (uint64_t *)out;
    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    for (int i = 0; i < VNET_DROP__MAX && i < 32; i++)
        out->decap[i] = __atomic_load_n(&dp->decap.count[i], __ATOMIC_RELAXED);
}

size_t vnet_datapath_peer_stats(const struct vnet_datapath *dp, struct vnet_dp_peer_stats *out,
                                size_t max)
{
    const struct peerset *ps = __atomic_load_n(&dp->peers, __ATOMIC_ACQUIRE);
    if (!ps)
        return 0;
    for (size_t i = 0; i < ps->n && i < max; i++) {
        out[i].ep = ps->p[i].ep;
        out[i].tx_packets = STAT_GET(ps->p[i].tx_packets);
        out[i].tx_bytes = STAT_GET(ps->p[i].tx_bytes);
        out[i].rx_packets = STAT_GET(ps->p[i].rx_packets);
        out[i].rx_bytes = STAT_GET(ps->p[i].rx_bytes);
    }
    return ps->n;
}
