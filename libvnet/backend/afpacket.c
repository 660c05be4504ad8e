/* The "raw" port backend: AF_PACKET sockets on an existing interface, on either side of the
 * data plane.
 *
 * Spec:
 *   "raw:IFNAME"                      virtual side: Ethernet frames to and from IFNAME (a veth
 *                                     whose peer is a guest, a physical port facing hosts)
 *   "raw:IFNAME,local=IP[:PORT]"      underlay side: UDP payloads, sent and received as whole
 *   "raw:IFNAME,local=[IPv6][:PORT]"  Ethernet/IP/UDP frames on IFNAME, from and to that local
 *                                     endpoint (PORT defaults to 4789; no wildcard address)
 * The interface must exist (VNET_ENOENT otherwise); anything else malformed is VNET_EINVAL.
 *
 * Receiving. Every queue is one AF_PACKET socket with a TPACKET_V3 memory-mapped RX ring
 * (16 blocks of 256 KiB: a 64 KiB GSO frame fits in a block). The kernel fills a block and
 * hands it over when it is full or after RING_TOV_MS, so at low rates a frame waits at most
 * about a millisecond, and at high rates one poll wakeup brings a whole block. rx_burst copies
 * frames out of the ring into the caller's buffers (the ring must be given back in order, and
 * a caller keeps its buffers as long as it likes), then returns the block to the kernel. With
 * cfg->queues > 1 the sockets join one PACKET_FANOUT group in FANOUT_HASH mode (flows stay on
 * one queue); the group id is chosen by the kernel (PACKET_FANOUT_FLAG_UNIQUEID) so two ports
 * never share a group by accident. Sockets are created with protocol 0 and bound only once
 * their ring and filter are in place, so no foreign frame ever lands in a ring.
 * PACKET_IGNORE_OUTGOING keeps frames that leave the interface (ours and the host's) out.
 *
 * Metadata. The ring header carries what PACKET_AUXDATA would give recvmsg (that cmsg does
 * not exist for rings): the VLAN tag the kernel took out of the frame (TP_STATUS_VLAN_VALID,
 * TPID and TCI), which we put back so the caller sees the frame as it was on the wire, and the
 * checksum state. A frame sent by a local peer (veth) is usually CHECKSUM_PARTIAL
 * (TP_STATUS_CSUMNOTREADY): its L4 checksum field holds only the pseudo-header sum.
 *  - Without cfg->offload we find the TCP/UDP header (Ethernet, optional VLAN tag, IPv4 or IPv6
 *    without extension headers), complete the checksum in software and hand over a finished
 *    frame (a partial frame we cannot parse is dropped). TP_STATUS_CSUM_VALID becomes
 *    VNET_CSUM_VALID.
 *  - With cfg->offload the sockets use PACKET_VNET_HDR: the kernel puts a struct
 *    virtio_net_hdr in front of each frame in the ring, with the exact csum_start/offset and,
 *    for GSO frames (a veth peer doing TSO), gso_type/gso_size, which we pass on as they are
 *    (shifted by 4 when a VLAN tag is put back), like the tap backend. tx then takes partial
 *    checksums and TSO/USO frames the same way; the kernel (or the NIC) finishes them. The port
 *    reports VNET_PORT_CAP_CSUM | TSO | USO then. Without it, tx completes partial checksums in
 *    software and drops GSO frames (debug log): the caps say it does not take them.
 *
 * Sending. A burst is one sendmmsg, one message per frame (iovecs point into the caller's
 * buffers, the kernel copies). PACKET_QDISC_BYPASS sends straight to the driver: no qdisc, so
 * no queueing discipline applies and a full device queue is a drop (as for any raw sender).
 * A TX ring would save the copy into a socket buffer but costs a copy into the ring instead,
 * plus a fixed frame size; sendmmsg keeps it simple at the same syscall count.
 *
 * Virtual side: the interface is put in promiscuous mode (PACKET_MR_PROMISC, undone by the
 * kernel when the socket closes) since frames for any MAC are ours. cfg->up brings it up;
 * cfg->mtu and cfg->mac are left alone (they are the tap backend's).
 *
 * Underlay side. Each frame is built here: outer Ethernet + IPv4/IPv6 + UDP in front of the
 * caller's payload, from a per-destination header prefix cached per queue (direct-mapped, 64
 * slots, no locks). The prefix is made once with vnet_encap_tmpl_init + vnet_encap_push (the
 * template includes a VXLAN header, which we leave out: the payload is opaque to this port, it
 * can be VXLAN or a sealed packet) and per packet only lengths, IPv4 ID and header checksum are
 * patched. The UDP checksum is left to the kernel/NIC through the virtio header
 * (VIRTIO_NET_HDR_F_NEEDS_CSUM, the field preloaded with the pseudo-header sum), for IPv4 and
 * IPv6 alike. The source port is the local port, so peers answer where our filter listens. With
 * cfg->offload a UDP GSO batch (pkt->gso_size) goes as one GSO frame (virtio gso_type
 * UDP_L4: headers once, the kernel or NIC cuts it, as for a UDP socket with UDP_SEGMENT; over
 * veth it reaches the peer whole), and consecutive packets of one size to one destination are
 * coalesced into such a frame too (iovecs = the packets' buffers; the last may be shorter), so
 * a burst of small datagrams costs one trip through the stack. If the kernel refuses GSO frames
 * from packet sockets (EINVAL), the port logs it once and sends one frame per datagram from
 * then on, as it does without cfg->offload. Datagrams larger than the interface MTU allows are
 * dropped.
 *   The next-hop MAC comes from the kernel's neighbour table (vnet_netdev_neigh_get, through
 * netlink, at most every NEIGH_TTL_MS per destination and queue; outer.c). While it is missing,
 * packets to that destination are counted and dropped, and resolution is triggered by a zero-length
 * UDP datagram to the destination's discard port (9) from an ordinary socket bound to the local
 * address (the kernel queues it, sends ARP/NDP and then the datagram, which the peer ignores or
 * answers with a harmless ICMP error); it is repeated every KICK_MS while unresolved, and the
 * lookup every NEIGH_RETRY_MS. A known entry is rechecked every NEIGH_TTL_MS (a MAC that changed
 * is picked up); when it has vanished we keep using the old MAC and kick again. Only on-link
 * destinations are supported: the next hop is the destination itself (no route lookup).
 *   Receiving, a classic BPF filter (SO_ATTACH_FILTER) passes only untagged IPv4 (not a
 * non-first fragment) or IPv6 UDP to exactly the local address and port; the frame is then
 * parsed and checked here (lengths, IPv4 header checksum, UDP checksum unless the kernel says
 * it is valid or not computed yet) and the UDP payload handed up with pkt->peer = outer
 * source. vnet_encap_parse is not used for this because it insists on a VXLAN header, and the
 * underlay also carries sealed payloads. The underlay sockets always use PACKET_VNET_HDR: a
 * local peer sending with UDP_SEGMENT produces one GSO skb that crosses a veth whole, and only
 * the virtio header says where its datagrams end. Such a batch is handed up as a GRO batch
 * (pkt->gso_size) with cfg->offload (VNET_PORT_CAP_UDP_GRO) and split into single datagrams
 * otherwise. With cfg->offload the port also reports VNET_PORT_CAP_UDP_GSO: it takes batches,
 * though it splits them itself.
 *   AF_PACKET only copies frames: the host's own stack receives them too. To keep it from
 * answering with ICMP port unreachable, the port also binds an ordinary UDP socket to the
 * local address and port, with a BPF filter that refuses everything: the kernel finds a
 * socket (no ICMP), the filter discards the datagram before it is queued (no memory, no
 * wakeups; it shows as UDP InErrors in the host's counters). The bind also claims the port, so
 * a second user of the same endpoint fails at open with VNET_EBUSY. The local address must be
 * configured on the host (VNET_EINVAL otherwise), as the host's stack answers ARP/NDP for it.
 *
 * Neighbour lookups go through vnet_netdev_neigh_get, which works in the network namespace of
 * the calling thread: call tx_burst from a thread in the interface's namespace.
 */
#include "../bytes_int.h"
#include "../csum_int.h"
#include "outer_int.h"
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/netdev.h"
#include "vnet/offload.h"
#include "vnet/sys/port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef PACKET_FANOUT_FLAG_UNIQUEID
#define PACKET_FANOUT_FLAG_UNIQUEID 0x2000
#endif

#define MOD            "raw"
#define RAW_MAX_QUEUES 64
#define RING_BLOCK     (1u << 18) /* 256 KiB: holds a 64 KiB GSO frame */
#define RING_BLOCKS    16
#define RING_FRAME     2048 /* nominal; V3 packs frames by their real size */
#define RING_TOV_MS    1    /* hand a partly filled block over after this long */
#define TX_BATCH       64   /* messages per sendmmsg */
#define TX_IOV         256  /* iovecs per sendmmsg: a coalesced frame takes one per packet */
#define GSO_MAX_SEGS   64   /* datagrams per GSO frame (as UDP_MAX_SEGMENTS for sockets) */
#define DEFAULT_PORT   VNET_VXLAN_PORT
#define VHDR_LEN       ((uint32_t)sizeof(struct virtio_net_hdr))

_Static_assert(sizeof(struct virtio_net_hdr) == 10, "virtio_net_hdr layout");

struct rawq {
    int fd;
    uint8_t *ring;
    uint32_t blk;    /* the block we read next */
    uint32_t left;   /* frames left in the current (user-owned) block */
    uint8_t *pkt;    /* the next frame in it */
    uint32_t segoff; /* underlay: payload bytes of the current frame already handed up */
    uint16_t ip_id;
    uint64_t rx_drops, tx_drops, neigh_drops;
    struct outer_dst dst[OUTER_DST_SLOTS]; /* underlay only */
};

struct raw {
    bool underlay;
    bool vhdr;    /* PACKET_VNET_HDR on the sockets */
    bool offload; /* cfg->offload */
    bool no_gso;  /* underlay: the kernel refused a UDP GSO frame (atomic) */
    unsigned nq;
    int ifindex;
    char ifname[IFNAMSIZ];
    struct vnet_mac mac;
    uint32_t mtu;
    uint32_t caps;
    struct vnet_endpoint local;
    int guard; /* underlay: UDP socket on the local endpoint that drops everything */
    int kick;  /* underlay: UDP socket that triggers neighbour resolution */
    struct rawq q[];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int err_from_errno(int e)
{
    if (e == EPERM || e == EACCES)
        return VNET_EPERM;
    if (e == ENODEV || e == ENXIO)
        return VNET_ENOENT;
    return -e;
}

/* ---- sockets ---- */

/* Classic BPF: untagged UDP to local address and port; IPv4 non-first fragments refused. */
#define TO_DROP 0xff /* placeholder jump target, fixed up to the final "ret 0" */

static int build_filter(const struct vnet_endpoint *l, struct sock_filter *f)
{
    int n = 0;
    uint32_t w[4];
    memcpy(w, l->ip.addr, sizeof(w));
#define S(code, k)         (f[n++] = (struct sock_filter)BPF_STMT(code, k))
#define J(code, k, jt, jf) (f[n++] = (struct sock_filter)BPF_JUMP(code, k, jt, jf))
    S(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT));
    J(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, TO_DROP);
    S(BPF_LD | BPF_H | BPF_ABS, 12);
    if (l->ip.family == VNET_AF_INET) {
        J(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, TO_DROP);
        S(BPF_LD | BPF_B | BPF_ABS, 23);
        J(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, TO_DROP);
        S(BPF_LD | BPF_H | BPF_ABS, 20);
        J(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, TO_DROP, 0);
        S(BPF_LD | BPF_W | BPF_ABS, 30);
        J(BPF_JMP | BPF_JEQ | BPF_K, ntohl(w[0]), 0, TO_DROP);
        S(BPF_LDX | BPF_B | BPF_MSH, 14);
        S(BPF_LD | BPF_H | BPF_IND, 16);
    } else {
        J(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, TO_DROP);
        S(BPF_LD | BPF_B | BPF_ABS, 20);
        J(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, TO_DROP);
        for (int i = 0; i < 4; i++) {
            S(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(38 + 4 * i));
            J(BPF_JMP | BPF_JEQ | BPF_K, ntohl(w[i]), 0, TO_DROP);
        }
        S(BPF_LD | BPF_H | BPF_ABS, 56);
    }
    J(BPF_JMP | BPF_JEQ | BPF_K, l->port, 0, TO_DROP);
    S(BPF_RET | BPF_K, 0x40000u);
    S(BPF_RET | BPF_K, 0);
#undef S
#undef J
    for (int i = 0; i < n; i++) {
        if (f[i].jt == TO_DROP)
            f[i].jt = (uint8_t)(n - 2 - i);
        if (f[i].jf == TO_DROP)
            f[i].jf = (uint8_t)(n - 2 - i);
    }
    return n;
}

static int setopt(int fd, int level, int opt, int val, const char *what, bool fatal)
{
    if (setsockopt(fd, level, opt, &val, sizeof(val)) == 0)
        return 0;
    int e = errno;
    vnet_log(fatal ? VNET_LOG_ERROR : VNET_LOG_WARN, MOD, "%s: %s", what, strerror(e));
    return fatal ? err_from_errno(e) : 0;
}

static int open_queue(struct raw *r, struct rawq *q, unsigned idx, int *fanout_id)
{
    int rc;
    q->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (q->fd < 0) {
        int e = errno;
        vnet_log(VNET_LOG_ERROR, MOD, "socket(AF_PACKET): %s%s", strerror(e),
                 e == EPERM ? " (needs CAP_NET_RAW)" : "");
        return err_from_errno(e);
    }
    if (r->underlay) {
        struct sock_filter f[32];
        struct sock_fprog prog = {.len = (unsigned short)build_filter(&r->local, f), .filter = f};
        if (setsockopt(q->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
            rc = -errno;
            vnet_log(VNET_LOG_ERROR, MOD, "%s: SO_ATTACH_FILTER: %s", r->ifname, strerror(-rc));
            return rc;
        }
    }
    if ((rc = setopt(q->fd, SOL_PACKET, PACKET_VERSION, TPACKET_V3, "PACKET_VERSION", true)))
        return rc;
    if (r->vhdr && (rc = setopt(q->fd, SOL_PACKET, PACKET_VNET_HDR, 1, "PACKET_VNET_HDR", true)))
        return rc;
    struct tpacket_req3 req = {
        .tp_block_size = RING_BLOCK,
        .tp_block_nr = RING_BLOCKS,
        .tp_frame_size = RING_FRAME,
        .tp_frame_nr = RING_BLOCK / RING_FRAME * RING_BLOCKS,
        .tp_retire_blk_tov = RING_TOV_MS,
    };
    if (setsockopt(q->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
        rc = -errno;
        vnet_log(VNET_LOG_ERROR, MOD, "%s: PACKET_RX_RING: %s", r->ifname, strerror(-rc));
        return rc;
    }
    void *m =
        mmap(NULL, (size_t)RING_BLOCK * RING_BLOCKS, PROT_READ | PROT_WRITE, MAP_SHARED, q->fd, 0);
    if (m == MAP_FAILED) {
        rc = -errno;
        vnet_log(VNET_LOG_ERROR, MOD, "%s: mmap ring: %s", r->ifname, strerror(-rc));
        return rc;
    }
    q->ring = m;
    setopt(q->fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS", false);
    setopt(q->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING", false);
    if (!r->underlay && idx == 0) {
        struct packet_mreq mr = {.mr_ifindex = r->ifindex, .mr_type = PACKET_MR_PROMISC};
        if (setsockopt(q->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
            rc = err_from_errno(errno);
            vnet_log(VNET_LOG_ERROR, MOD, "%s: promiscuous mode: %s", r->ifname, strerror(errno));
            return rc;
        }
    }
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET,
        .sll_protocol = htons(ETH_P_ALL),
        .sll_ifindex = r->ifindex,
    };
    if (bind(q->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        rc = err_from_errno(errno);
        vnet_log(VNET_LOG_ERROR, MOD, "%s: bind: %s", r->ifname, strerror(errno));
        return rc;
    }
    if (r->nq > 1) {
        int val = idx == 0 ? PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_UNIQUEID << 16
                           : *fanout_id | PACKET_FANOUT_HASH << 16;
        if (setsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof(val)) < 0) {
            rc = -errno;
            vnet_log(VNET_LOG_ERROR, MOD, "%s: PACKET_FANOUT: %s", r->ifname, strerror(-rc));
            return rc;
        }
        if (idx == 0) {
            socklen_t len = sizeof(val);
            if (getsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &val, &len) < 0)
                return -errno;
            *fanout_id = val & 0xffff;
        }
    }
    return 0;
}

static void raw_close(void *state)
{
    struct raw *r = state;
    if (!r)
        return;
    uint64_t rxd = 0, txd = 0, nd = 0;
    for (unsigned i = 0; i < r->nq; i++) {
        struct rawq *q = &r->q[i];
        if (q->ring)
            munmap(q->ring, (size_t)RING_BLOCK * RING_BLOCKS);
        if (q->fd >= 0)
            close(q->fd);
        rxd += q->rx_drops;
        txd += q->tx_drops;
        nd += q->neigh_drops;
    }
    if (r->guard >= 0)
        close(r->guard);
    if (r->kick >= 0)
        close(r->kick);
    vnet_log(VNET_LOG_DEBUG, MOD,
             "%s: closed; dropped rx %llu, tx %llu (of which %llu waiting for a neighbour)",
             r->ifname, (unsigned long long)rxd, (unsigned long long)txd, (unsigned long long)nd);
    free(r);
}

static int raw_open(const char *arg, const struct vnet_port_cfg *cfg, void **state)
{
    struct iface_spec sp;
    int rc = vnet__iface_spec_open(MOD, arg, cfg->queues, RAW_MAX_QUEUES, &sp);
    if (rc != 0)
        return rc;
    const char *ifname = sp.ifname;
    const bool underlay = sp.underlay;
    const unsigned nq = sp.nq;
    struct raw *r = calloc(1, sizeof(*r) + nq * sizeof(r->q[0]));
    if (!r)
        return VNET_ENOMEM;
    r->nq = nq;
    r->guard = r->kick = -1;
    for (unsigned i = 0; i < nq; i++)
        r->q[i].fd = -1;
    memcpy(r->ifname, sp.ifname, sizeof(sp.ifname));
    r->ifindex = sp.ifindex;
    r->underlay = underlay;
    r->local = sp.local;
    r->offload = cfg->offload;
    r->vhdr = underlay || cfg->offload;
    if ((rc = vnet_netdev_get_mac(ifname, &r->mac)) != 0 ||
        (rc = vnet_netdev_get_mtu(ifname, &r->mtu)) != 0)
        goto fail;
    if (underlay && (rc = vnet__outer_open_sockets(&r->local, MOD, &r->guard, &r->kick)) != 0)
        goto fail;
    int fanout_id = 0;
    for (unsigned i = 0; i < nq; i++)
        if ((rc = open_queue(r, &r->q[i], i, &fanout_id)) != 0)
            goto fail;
    if (cfg->up && (rc = vnet_netdev_set_up(ifname, true)) != 0) {
        vnet_log(VNET_LOG_ERROR, MOD, "%s: set up: %s", ifname, vnet_strerror(rc));
        goto fail;
    }
    if (nq > 1)
        r->caps |= VNET_PORT_CAP_MULTIQUEUE;
    if (cfg->offload)
        r->caps |= underlay ? VNET_PORT_CAP_UDP_GSO | VNET_PORT_CAP_UDP_GRO
                            : VNET_PORT_CAP_CSUM | VNET_PORT_CAP_TSO | VNET_PORT_CAP_USO;
    vnet_log(VNET_LOG_INFO, MOD, "%s: open (%s side), %u queue(s), caps 0x%x", ifname,
             underlay ? "underlay" : "virtual", nq, r->caps);
    *state = r;
    return 0;
fail:
    raw_close(r);
    return rc;
}

/* ---- the RX ring ---- */

static inline struct tpacket_block_desc *ring_block(const struct rawq *q, uint32_t i)
{
    return (struct tpacket_block_desc *)(q->ring + (size_t)i * RING_BLOCK);
}

/* The next frame of the ring, or NULL when the kernel has not handed over a block. */
static struct tpacket3_hdr *ring_peek(struct rawq *q)
{
    while (q->left == 0) {
        struct tpacket_block_desc *b = ring_block(q, q->blk);
        if (!(__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
            return NULL;
        q->left = b->hdr.bh1.num_pkts;
        q->pkt = (uint8_t *)b + b->hdr.bh1.offset_to_first_pkt;
        if (q->left == 0) { /* never seen, but give an empty block back too */
            __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
            q->blk = (q->blk + 1) % RING_BLOCKS;
        }
    }
    return (struct tpacket3_hdr *)q->pkt;
}

/* Done with the current frame; give its block back after the last one. */
static void ring_next(struct rawq *q)
{
    const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)q->pkt;
    q->pkt += h->tp_next_offset;
    q->segoff = 0;
    if (--q->left == 0) {
        struct tpacket_block_desc *b = ring_block(q, q->blk);
        __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        q->blk = (q->blk + 1) % RING_BLOCKS;
    }
}

/* ---- virtual side ---- */

/* One ring frame into @p (virtual side). false: dropped. */
static bool rx_frame(struct raw *r, const struct tpacket3_hdr *h, struct vnet_pkt *p)
{
    const uint8_t *f = (const uint8_t *)h + h->tp_mac;
    uint32_t len = h->tp_snaplen, st = h->tp_status;
    bool tag = (st & TP_STATUS_VLAN_VALID) != 0;
    uint32_t out = len + (tag ? 4 : 0);
    if (len < h->tp_len || len < 14 || p->off > p->cap || out > p->cap - p->off)
        return false;
    uint8_t *d = p->buf + p->off;
    if (tag) {
        memcpy(d, f, 12);
        put16(d + 12, (st & TP_STATUS_VLAN_TPID_VALID) && h->hv1.tp_vlan_tpid ? h->hv1.tp_vlan_tpid
                                                                              : ETH_P_8021Q);
        put16(d + 14, h->hv1.tp_vlan_tci);
        memcpy(d + 16, f + 12, len - 12);
    } else {
        memcpy(d, f, len);
    }
    p->len = out;
    p->gso_type = VNET_GSO_NONE;
    p->gso_size = p->hdr_len = p->csum_start = p->csum_offset = 0;
    p->csum_flags = 0;
    if (r->vhdr) {
        struct virtio_net_hdr vh;
        memcpy(&vh, f - VHDR_LEN, sizeof(vh));
        uint16_t shift = tag ? 4 : 0;
        if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
            p->csum_flags = VNET_CSUM_PARTIAL;
            p->csum_start = (uint16_t)(vh.csum_start + shift);
            p->csum_offset = vh.csum_offset;
        } else if (vh.flags & VIRTIO_NET_HDR_F_DATA_VALID) {
            p->csum_flags = VNET_CSUM_VALID;
        }
        uint8_t gt = vh.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
        if (gt != VIRTIO_NET_HDR_GSO_NONE) {
            p->gso_type = gt;
            p->gso_size = vh.gso_size;
            p->hdr_len = (uint16_t)(vh.hdr_len + shift);
        }
    } else if (st & TP_STATUS_CSUMNOTREADY) {
        if (vnet__csum_l4_find(d, out, &p->csum_start, &p->csum_offset) != 0)
            return false;
        p->csum_flags = VNET_CSUM_PARTIAL;
        if (vnet_csum_complete(p) != 0)
            return false;
    } else if (st & TP_STATUS_CSUM_VALID) {
        p->csum_flags = VNET_CSUM_VALID;
    }
    memset(&p->peer, 0, sizeof(p->peer));
    return true;
}

/* ---- underlay side, receive ---- */

/* One ring frame (or the next part of a GSO batch) into @p. Returns 1: @p filled; 0: frame
 * dropped; the ring only advances once the whole frame was handed up. */
static int rx_dgram(struct raw *r, struct rawq *q, const struct tpacket3_hdr *h, struct vnet_pkt *p)
{
    const uint8_t *f = (const uint8_t *)h + h->tp_mac;
    struct virtio_net_hdr vh;
    struct udp_view v;
    memcpy(&vh, f - VHDR_LEN, sizeof(vh));
    bool csum_ok = (vh.flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)) ||
                   (h->tp_status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID));
    if (h->tp_snaplen < h->tp_len || !vnet__outer_parse(&r->local, f, h->tp_snaplen, csum_ok, &v))
        goto drop;
    uint32_t seg = 0;
    if ((vh.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_UDP_L4 &&
        vh.gso_size && v.plen > vh.gso_size)
        seg = vh.gso_size;
    if (p->off > p->cap)
        goto drop;
    uint32_t room = p->cap - p->off, rest = v.plen - q->segoff, chunk = rest;
    if (seg) {
        uint32_t max = r->offload ? room - room % seg : seg;
        if (chunk > max)
            chunk = max;
        if (chunk == 0)
            goto drop;
    } else if (chunk > room) {
        goto drop;
    }
    memcpy(p->buf + p->off, v.payload + q->segoff, chunk);
    p->len = chunk;
    p->gso_size = (uint16_t)(seg && chunk > seg ? seg : 0);
    p->gso_type = p->gso_size ? VNET_GSO_UDP_L4 : VNET_GSO_NONE;
    p->csum_flags = 0;
    p->hdr_len = p->csum_start = p->csum_offset = 0;
    p->peer = v.src;
    q->segoff += chunk;
    if (q->segoff >= v.plen)
        ring_next(q);
    return 1;
drop:
    q->rx_drops++;
    ring_next(q);
    return 0;
}

static int raw_rx(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct raw *r = state;
    if (queue >= r->nq)
        return VNET_EINVAL;
    struct rawq *q = &r->q[queue];
    int got = 0;
    /* dropped frames use no slot, but bound the work */
    for (int seen = 0; got < n && seen < 4 * n; seen++) {
        struct tpacket3_hdr *h = ring_peek(q);
        if (!h)
            break;
        struct vnet_pkt *p = pkts[got];
        if (r->underlay) {
            got += rx_dgram(r, q, h, p);
            continue;
        }
        if (rx_frame(r, h, p)) {
            p->queue = (uint16_t)queue;
            got++;
        } else {
            q->rx_drops++;
            vnet_log(VNET_LOG_DEBUG, MOD, "%s: rx: %u-byte frame dropped", r->ifname, h->tp_len);
        }
        ring_next(q);
    }
    for (int i = 0; i < got; i++)
        pkts[i]->queue = (uint16_t)queue;
    return got;
}

/* ---- sending ---- */

struct txb {
    struct mmsghdr mm[TX_BATCH];
    struct iovec iov[TX_IOV];
    int owner[TX_BATCH]; /* index of the (first) packet of each message */
    bool gso[TX_BATCH];  /* the message is one GSO frame (a batch, or packets coalesced) */
    uint8_t hdr[TX_BATCH][VHDR_LEN + OUTER_MAX];
    int m, ni;
};

/* Start a message: @h (@hlen bytes, may be 0) then @d; more payloads may follow (txb_more). */
static void txb_add(struct txb *b, int owner, const void *h, size_t hlen, const void *d,
                    size_t dlen)
{
    int i = b->m++;
    struct msghdr *mh = &b->mm[i].msg_hdr;
    memset(mh, 0, sizeof(*mh));
    mh->msg_iov = &b->iov[b->ni];
    if (hlen)
        b->iov[b->ni++] = (struct iovec){(void *)h, hlen};
    b->iov[b->ni++] = (struct iovec){(void *)d, dlen};
    mh->msg_iovlen = hlen ? 2 : 1;
    b->owner[i] = owner;
    b->gso[i] = false;
}

static void txb_more(struct txb *b, const void *d, size_t dlen)
{
    b->iov[b->ni++] = (struct iovec){(void *)d, dlen};
    b->mm[b->m - 1].msg_hdr.msg_iovlen++;
}

/* Send the batch. Returns the number of packets taken, counting from @first, or a negative
 * error when none was and the device refuses (down, gone). A message the kernel refuses alone
 * (too big, malformed) is dropped with its packet; a full queue stops the burst. */
static int txb_flush(struct raw *r, struct rawq *q, struct txb *b, int first, int next)
{
    int k = 0;
    while (k < b->m) {
        int rc = sendmmsg(q->fd, b->mm + k, (unsigned)(b->m - k), MSG_DONTWAIT);
        if (rc > 0) {
            k += rc;
            continue;
        }
        int e = rc == 0 ? EAGAIN : errno;
        if (e == EINTR)
            continue;
        if (e == EINVAL && b->gso[k] && !__atomic_load_n(&r->no_gso, __ATOMIC_RELAXED)) {
            /* the kernel takes no UDP GSO frames from packet sockets: go on without; the
             * caller sends this packet and the rest again (they will be single frames) */
            __atomic_store_n(&r->no_gso, true, __ATOMIC_RELAXED);
            vnet_log(VNET_LOG_INFO, MOD,
                     "%s: tx: the kernel refuses UDP GSO frames here: one frame per datagram",
                     r->ifname);
            int taken = b->owner[k];
            b->m = b->ni = 0;
            return taken - first;
        }
        if (e == EINVAL || e == EMSGSIZE || e == EFAULT) {
            int bad = b->owner[k];
            vnet_log(VNET_LOG_DEBUG, MOD, "%s: tx: packet dropped: %s", r->ifname, strerror(e));
            q->tx_drops++;
            while (k < b->m && b->owner[k] == bad)
                k++;
            continue;
        }
        /* stop; a packet partly sent (segments) counts as taken */
        int taken = b->owner[k] + (k > 0 && b->owner[k - 1] == b->owner[k]);
        b->m = b->ni = 0;
        if (taken > first || e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == ENOMEM)
            return taken - first;
        return err_from_errno(e);
    }
    b->m = b->ni = 0;
    return next - first;
}

static bool pkt_ok(const struct vnet_pkt *p)
{
    return (uint64_t)p->off + p->len <= p->cap;
}

static int tx_virtual(struct raw *r, struct rawq *q, struct vnet_pkt **pkts, int n)
{
    struct txb b;
    b.m = b.ni = 0;
    int done = 0;
    for (int i = 0; i < n; i++) {
        struct vnet_pkt *p = pkts[i];
        bool ok = pkt_ok(p) && p->len >= 14;
        if (ok && r->vhdr) {
            struct virtio_net_hdr vh;
            memset(&vh, 0, sizeof(vh));
            if (p->csum_flags & VNET_CSUM_PARTIAL) {
                vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
                vh.csum_start = p->csum_start;
                vh.csum_offset = p->csum_offset;
            } else if (p->csum_flags & VNET_CSUM_VALID) {
                vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;
            }
            if (p->gso_type != VNET_GSO_NONE) {
                vh.gso_type = p->gso_type;
                vh.gso_size = p->gso_size;
                vh.hdr_len = p->hdr_len;
            }
            memcpy(b.hdr[b.m], &vh, sizeof(vh));
        } else if (ok) {
            /* the caps say no offloads: finish what a caller sends anyway */
            ok = p->gso_type == VNET_GSO_NONE && vnet_csum_complete(p) == 0;
        }
        if (!ok) {
            q->tx_drops++;
            vnet_log(VNET_LOG_DEBUG, MOD, "%s: tx: bad or unsupported packet dropped", r->ifname);
            continue;
        }
        txb_add(&b, i, b.hdr[b.m], r->vhdr ? VHDR_LEN : 0, p->buf + p->off, p->len);
        if (b.m == TX_BATCH) {
            int rc = txb_flush(r, q, &b, done, i + 1);
            if (rc < 0)
                return done ? done : rc;
            done += rc;
            if (done < i + 1)
                return done;
        }
    }
    if (b.m == 0)
        return n;
    int rc = txb_flush(r, q, &b, done, n);
    if (rc < 0)
        return done ? done : rc;
    return done + rc;
}

/* ---- underlay side, send ---- */

/* Write the virtio header and the patched outer header for a @plen-byte payload to @out. With
 * @gso, the payload is a batch of datagrams of @gso bytes (the last may be shorter) that the
 * kernel (or NIC) cuts apart, as for a UDP socket with UDP_SEGMENT: the headers describe the
 * whole, the pseudo-header sum covers the whole length, and segmentation patches each copy. */
static size_t put_headers(struct rawq *q, const struct outer_dst *d, uint32_t plen, uint32_t gso,
                          uint8_t *out)
{
    struct virtio_net_hdr vh;
    uint8_t *h = out + VHDR_LEN;
    uint32_t ulen = plen + VNET_UDP_HLEN;
    uint8_t *udp = h + d->hlen - VNET_UDP_HLEN;
    uint32_t psum;
    memcpy(h, d->hdr, d->hlen);
    if (d->ep.ip.family == VNET_AF_INET) {
        uint8_t *ip = h + VNET_ETH_HLEN;
        put16(ip + 2, (uint16_t)(ulen + VNET_IP4_HLEN));
        put16(ip + 4, q->ip_id);
        q->ip_id = (uint16_t)(q->ip_id + (gso ? (plen + gso - 1) / gso : 1));
        put16(ip + 10, 0);
        put16(ip + 10, vnet_csum(ip, VNET_IP4_HLEN));
        psum = vnet_csum_pseudo4(ip + 12, ip + 16, IPPROTO_UDP, (uint16_t)ulen);
    } else {
        uint8_t *ip = h + VNET_ETH_HLEN;
        put16(ip + 4, (uint16_t)ulen);
        psum = vnet_csum_pseudo6(ip + 8, ip + 24, IPPROTO_UDP, ulen);
    }
    put16(udp + 4, (uint16_t)ulen);
    /* the kernel (or NIC) sums from the UDP header on: preload the pseudo-header */
    put16(udp + 6, (uint16_t)psum);
    memset(&vh, 0, sizeof(vh));
    vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vh.csum_start = (uint16_t)(d->hlen - VNET_UDP_HLEN);
    vh.csum_offset = 6;
    vh.hdr_len = d->hlen;
    if (gso) {
        vh.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4;
        vh.gso_size = (uint16_t)gso;
    }
    memcpy(out, &vh, sizeof(vh));
    return VHDR_LEN + d->hlen;
}

/* Can @q ride in the GSO frame being built: same destination, one datagram of at most @seg
 * bytes (the frame's segment size), and room left? */
static bool joins(const struct vnet_pkt *q, const struct vnet_endpoint *ep, uint32_t seg,
                  uint32_t used, uint32_t bytes, uint32_t maxlen)
{
    return used < GSO_MAX_SEGS && pkt_ok(q) && q->len > 0 && q->len <= seg &&
           (q->gso_size == 0 || q->len <= q->gso_size) && bytes + q->len <= maxlen &&
           vnet_endpoint_eq(&q->peer, ep);
}

static int tx_underlay(struct raw *r, struct rawq *q, struct vnet_pkt **pkts, int n)
{
    struct txb b;
    b.m = b.ni = 0;
    int done = 0;
    int64_t now = now_ms();
    const struct outer_src osrc = {r->ifindex, r->ifname, MOD, r->mac, r->local, r->kick};
    uint32_t l3max = r->mtu;
    bool gso_ok = r->offload && !__atomic_load_n(&r->no_gso, __ATOMIC_RELAXED);
    for (int i = 0; i < n; i++) {
        struct vnet_pkt *p = pkts[i];
        const struct vnet_endpoint *ep = &p->peer;
        if (!pkt_ok(p) || ep->port == 0 || ep->ip.family != r->local.ip.family) {
            q->tx_drops++;
            vnet_log(VNET_LOG_DEBUG, MOD, "%s: tx: bad packet or peer dropped", r->ifname);
            continue;
        }
        uint32_t iph = ep->ip.family == VNET_AF_INET ? VNET_IP4_HLEN : VNET_IP6_HLEN;
        uint32_t seg = p->gso_size && p->len > p->gso_size ? p->gso_size : p->len;
        uint32_t nseg = p->len ? (p->len + seg - 1) / seg : 1;
        /* the most payload one frame's IP length field can describe */
        uint32_t maxlen = ep->ip.family == VNET_AF_INET ? 65535 - VNET_IP4_HLEN - VNET_UDP_HLEN
                                                        : 65535 - VNET_UDP_HLEN;
        if (seg + VNET_UDP_HLEN + iph > l3max || nseg > TX_BATCH || p->len > maxlen) {
            q->tx_drops++;
            vnet_log(VNET_LOG_DEBUG, MOD, "%s: tx: %u-byte datagram over the MTU %u dropped",
                     r->ifname, seg, r->mtu);
            continue;
        }
        const struct outer_dst *d = vnet__outer_dst_get(&osrc, q->dst, ep, now);
        if (!d) {
            q->tx_drops++;
            q->neigh_drops++;
            continue;
        }
        /* one GSO frame (a batch, or this datagram and the next ones of its size to the same
         * place), or one frame per segment */
        bool whole = gso_ok && nseg > 1;
        uint32_t nmsg = whole || gso_ok ? 1 : nseg;
        if (b.m + (int)nmsg > TX_BATCH || b.ni + (int)nmsg * 2 > TX_IOV) {
            int rc = txb_flush(r, q, &b, done, i);
            if (rc < 0)
                return done ? done : rc;
            done += rc;
            if (done < i)
                return done;
        }
        const uint8_t *data = p->buf + p->off;
        if (whole) {
            size_t hl = put_headers(q, d, p->len, seg, b.hdr[b.m]);
            txb_add(&b, i, b.hdr[b.m], hl, data, p->len);
            b.gso[b.m - 1] = true;
            continue;
        }
        if (gso_ok) {
            uint32_t used = 1, bytes = p->len;
            int last = i;
            while (last + 1 < n && b.ni + (int)used + 2 <= TX_IOV && bytes == used * p->len &&
                   joins(pkts[last + 1], ep, p->len, used, bytes, maxlen)) {
                last++;
                used++;
                bytes += pkts[last]->len;
            }
            size_t hl = put_headers(q, d, bytes, used > 1 ? p->len : 0, b.hdr[b.m]);
            txb_add(&b, i, b.hdr[b.m], hl, data, p->len);
            for (int j = i + 1; j <= last; j++)
                txb_more(&b, pkts[j]->buf + pkts[j]->off, pkts[j]->len);
            b.gso[b.m - 1] = used > 1;
            i = last;
            continue;
        }
        for (uint32_t s = 0; s < nseg; s++) {
            uint32_t o = s * seg, l = p->len - o < seg ? p->len - o : seg;
            size_t hl = put_headers(q, d, l, 0, b.hdr[b.m]);
            txb_add(&b, i, b.hdr[b.m], hl, data + o, l);
        }
    }
    if (b.m == 0)
        return n;
    int rc = txb_flush(r, q, &b, done, n);
    if (rc < 0)
        return done ? done : rc;
    return done + rc;
}

static int raw_tx(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct raw *r = state;
    if (queue >= r->nq)
        return VNET_EINVAL;
    return r->underlay ? tx_underlay(r, &r->q[queue], pkts, n)
                       : tx_virtual(r, &r->q[queue], pkts, n);
}

static int raw_fd(void *state, unsigned queue)
{
    const struct raw *r = state;
    return queue < r->nq ? r->q[queue].fd : VNET_EINVAL;
}

static int raw_get_info(void *state, struct vnet_port_info *out)
{
    const struct raw *r = state;
    out->caps = r->caps;
    out->queues = r->nq;
    memcpy(out->ifname, r->ifname, sizeof(out->ifname));
    out->ifindex = r->ifindex;
    out->mac = r->mac;
    out->mtu = r->mtu;
    if (r->underlay)
        out->local = r->local;
    return 0;
}

const struct vnet_port_ops vnet_port_raw_ops = {
    .version = VNET_PORT_OPS_VERSION,
    .name = "raw",
    .open = raw_open,
    .close = raw_close,
    .rx_burst = raw_rx,
    .tx_burst = raw_tx,
    .fd = raw_fd,
    .get_info = raw_get_info,
};
