/* The "xdp" port backend: AF_XDP sockets on an existing interface, on either side of the data
 * plane (the same two roles and spec style as the "raw" backend, afpacket.c).
 *
 * Spec:
 *   "xdp:IFNAME"                      virtual side: every frame received on IFNAME goes to the
 *                                     port (and not to the host), frames sent leave IFNAME
 *   "xdp:IFNAME,local=IP[:PORT]"      underlay side: only untagged, unfragmented UDP to that
 *   "xdp:IFNAME,local=[IPv6][:PORT]"  local endpoint goes to the port (as UDP payloads, peer =
 *                                     outer source); everything else is passed to the kernel
 *                                     (ARP, ping, ssh keep working). PORT defaults to 4789.
 *
 * The XDP program (xdp_redirect.bpf.c) is compiled with clang at build time and embedded in the
 * library (xdp_redirect_obj.h); nothing is read from the file system at run time (libxdp's
 * default XSK program, which lives in a separate .o file, is not used, for either side). It has
 * a one-entry array map telling it what to redirect (all frames, or UDP to IP:PORT) and an
 * XSKMAP indexed by RX queue. It is loaded with libbpf and attached through a BPF link
 * (bpf_link_create, BPF_XDP; kernel 5.9+) in native mode (XDP_FLAGS_DRV_MODE) and, when the
 * driver lacks it, generic mode (SKB_MODE). The link dies with the process, so a crash leaves
 * no program behind. An interface that already has an XDP program is VNET_EBUSY (no libxdp
 * dispatcher: on these kernels it cannot work, see PLATFORM.md). Sockets are created
 * through libxdp with XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD and entered in the XSKMAP
 * (xsk_socket__update_xskmap). Zero-copy is tried first in native mode and copy mode taken
 * when the driver refuses it (veth has no zero-copy). close() detaches the program.
 *
 * Queues: queue i is one AF_XDP socket bound to the interface's RX/TX queue i, with its own
 * UMEM of NFRAMES frames of FRAME_SIZE bytes: the first half is kept in the fill ring, the
 * second half is the TX pool (frames come back through the completion ring). rx_burst copies
 * each frame out to the caller's buffer and gives the frame straight back to the fill ring;
 * tx_burst copies into free TX frames, submits the descriptors and kicks the kernel (sendto)
 * when the ring asks for it (XDP_USE_NEED_WAKEUP; copy mode always does).
 * Virtual side: the interface is put in promiscuous mode (PACKET_MR_PROMISC on an unbound
 * AF_PACKET socket, undone by the kernel at close) since frames for any MAC are ours. The fd to
 * poll is the socket's. No offloads (caps 0): frames are whole, checksums complete on tx. Frames
 * larger than a UMEM frame (FRAME_SIZE - XDP_PACKET_HEADROOM) are dropped, so MTUs above ~3800 do
 * not work.
 *
 * Underlay side: outer headers come from a per-destination prefix cached per queue, built with
 * the encap.h templates, and the next-hop MAC from the kernel's neighbour table
 * (vnet_netdev_neigh_get, in the calling thread's namespace), with the same resolution trigger
 * as the raw backend (a zero-length datagram to port 9 of the destination). The UDP checksum is
 * computed in software while the payload is copied into the UMEM. An ordinary UDP socket bound
 * to the local endpoint (with a filter that drops everything) claims the port: a second user is
 * VNET_EBUSY, and the host does not answer a datagram that reaches it anyway (a fragment, say)
 * with ICMP port unreachable. Received frames are checked (IPv4 header checksum, lengths, UDP
 * checksum when it is not 0 over IPv4).
 *
 * Checksums of local senders. A sender on a veth peer with transmit checksum offload on hands
 * over frames whose TCP/UDP checksum field holds only the pseudo-header sum (CHECKSUM_PARTIAL),
 * and XDP passes no checksum metadata. So a field holding exactly the pseudo-header sum is taken
 * for "still to be computed" (vnet__csum_l4_pending): on the virtual side the frame is marked
 * VNET_CSUM_PARTIAL and the datapath completes it before it leaves (a frame whose real checksum
 * happens to be that value gets the same value again); on the underlay side the outer UDP
 * checksum is accepted as is. Frames from real NICs arrive complete. No `ethtool -K tx off` is
 * needed on the veths that feed an xdp port.
 *
 * Errors: without CAP_NET_ADMIN/CAP_BPF, VNET_EPERM; a kernel without AF_XDP or XDP support,
 * VNET_ENOTSUP; each with a log line naming what is missing.
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
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include "xdp_redirect_obj.h"

#define MOD            "xdp"
#define XDP_MAX_QUEUES 64 /* the XSKMAP's size */
#define FRAME_SIZE     4096u
#define NFRAMES        4096u
#define FILL_FRAMES    (NFRAMES / 2)
#define RING_SIZE      2048u /* fill, completion, rx, tx */
#define DEFAULT_PORT   VNET_VXLAN_PORT
#define MAX_FRAME      (FRAME_SIZE - XDP_PACKET_HEADROOM)

_Static_assert(FILL_FRAMES <= RING_SIZE, "fill ring holds the RX half");

struct vnet_xdp_cfg { /* as in xdp_redirect.bpf.c */
    uint32_t family;
    uint8_t addr[16];
    uint16_t port; /* network byte order */
    uint16_t pad;
};

struct xq {
    struct xsk_socket *xsk;
    struct xsk_umem *umem;
    void *area;
    struct xsk_ring_prod fill, tx;
    struct xsk_ring_cons comp, rx;
    uint64_t freef[NFRAMES - FILL_FRAMES]; /* free TX frames */
    uint32_t nfree;
    uint32_t outstanding; /* TX frames not yet completed */
    uint16_t ip_id;
    uint64_t rx_drops, tx_drops, neigh_drops;
    struct outer_dst dst[OUTER_DST_SLOTS];
};

struct xport {
    bool underlay;
    bool zerocopy;
    uint32_t xdp_mode; /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE */
    unsigned nq;
    int ifindex;
    char ifname[IFNAMSIZ];
    struct vnet_mac mac;
    uint32_t mtu;
    struct vnet_endpoint local;
    int guard, kick;
    int promisc; /* virtual side: AF_PACKET socket holding PACKET_MR_PROMISC */
    struct bpf_object *obj;
    int prog_fd, xsks_fd, cfg_fd, link_fd;
    struct xq *q; /* nq, separately allocated (large) */
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
    if (e == EOPNOTSUPP || e == ENOTSUP || e == EAFNOSUPPORT || e == ENOSYS || e == EPROTONOSUPPORT)
        return VNET_ENOTSUP;
    return -e;
}

/* ---- the XDP program ---- */

static int silent_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
    (void)lvl;
    (void)fmt;
    (void)ap;
    return 0;
}

static int load_prog(struct xport *x)
{
    int rc;
    /* libbpf prints to stderr by default; what matters is logged below */
    libbpf_set_print(silent_print);
    /* best effort: older kernels charge maps to RLIMIT_MEMLOCK; 6.x to the memcg */
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    (void)setrlimit(RLIMIT_MEMLOCK, &rl);
    x->obj = bpf_object__open_mem(vnet_xdp_redirect_obj, sizeof(vnet_xdp_redirect_obj), NULL);
    if (!x->obj) {
        rc = -errno;
        vnet_log(VNET_LOG_ERROR, MOD, "opening the embedded XDP program: %s", strerror(-rc));
        return rc;
    }
    if (bpf_object__load(x->obj) != 0) {
        int e = errno;
        vnet_log(VNET_LOG_ERROR, MOD, "loading the XDP program: %s%s", strerror(e),
                 e == EPERM || e == EACCES ? " (needs CAP_BPF and CAP_NET_ADMIN, or CAP_SYS_ADMIN)"
                 : (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP)
                     ? " (the kernel lacks eBPF XDP or XSKMAP support: CONFIG_BPF_SYSCALL, "
                       "CONFIG_XDP_SOCKETS)"
                     : "");
        return err_from_errno(e == EINVAL ? EOPNOTSUPP : e);
    }
    struct bpf_program *p = bpf_object__find_program_by_name(x->obj, "vnet_xdp_redirect");
    struct bpf_map *xm = bpf_object__find_map_by_name(x->obj, "xsks_map");
    struct bpf_map *cm = bpf_object__find_map_by_name(x->obj, "cfg_map");
    if (!p || !xm || !cm)
        return VNET_EIO;
    x->prog_fd = bpf_program__fd(p);
    x->xsks_fd = bpf_map__fd(xm);
    x->cfg_fd = bpf_map__fd(cm);
    struct vnet_xdp_cfg c;
    memset(&c, 0, sizeof(c));
    if (x->underlay) {
        c.family = x->local.ip.family == VNET_AF_INET ? 4 : 6;
        memcpy(c.addr, x->local.ip.addr, c.family == 4 ? 4 : 16);
        c.port = htons(x->local.port);
    }
    uint32_t k = 0;
    if (bpf_map_update_elem(x->cfg_fd, &k, &c, BPF_ANY) != 0)
        return err_from_errno(errno);
    return 0;
}

/* Attached through a BPF link (kernel 5.9+): the program goes away with the link's fd, so a
 * process that dies does not leave it on the interface. */
static int attach_prog(struct xport *x)
{
    static const uint32_t modes[] = {XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE};
    int e = 0;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = modes[i]);
        int fd = bpf_link_create(x->prog_fd, x->ifindex, BPF_XDP, &opts);
        if (fd >= 0) {
            x->link_fd = fd;
            x->xdp_mode = modes[i];
            return 0;
        }
        e = errno;
        vnet_log(VNET_LOG_DEBUG, MOD, "%s: attach in %s mode: %s", x->ifname,
                 i == 0 ? "native" : "generic", strerror(e));
        if (e == EBUSY || e == EEXIST) {
            vnet_log(VNET_LOG_ERROR, MOD,
                     "%s: the interface already has an XDP program (one per interface here)",
                     x->ifname);
            return VNET_EBUSY;
        }
        if (e == EPERM || e == EACCES) {
            vnet_log(VNET_LOG_ERROR, MOD, "%s: attaching the XDP program: %s (needs CAP_NET_ADMIN)",
                     x->ifname, strerror(e));
            return VNET_EPERM;
        }
    }
    vnet_log(VNET_LOG_ERROR, MOD,
             "%s: attaching the XDP program: %s (no native or generic XDP, or a kernel without "
             "XDP links, before 5.9)",
             x->ifname, strerror(e));
    return err_from_errno(e == EINVAL ? EOPNOTSUPP : e);
}

/* ---- sockets ---- */

static void close_queue(struct xq *q)
{
    if (q->xsk)
        xsk_socket__delete(q->xsk);
    if (q->umem)
        xsk_umem__delete(q->umem);
    if (q->area)
        munmap(q->area, (size_t)NFRAMES * FRAME_SIZE);
    q->xsk = NULL;
    q->umem = NULL;
    q->area = NULL;
}

static int try_queue(struct xport *x, struct xq *q, unsigned idx, uint16_t bind_flags)
{
    int rc;
    size_t size = (size_t)NFRAMES * FRAME_SIZE;
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return VNET_ENOMEM;
    q->area = m;
    struct xsk_umem_config uc = {
        .fill_size = RING_SIZE,
        .comp_size = RING_SIZE,
        .frame_size = FRAME_SIZE,
        .frame_headroom = 0,
        .flags = 0,
    };
    rc = xsk_umem__create(&q->umem, m, size, &q->fill, &q->comp, &uc);
    if (rc != 0) {
        q->umem = NULL;
        int e = -rc;
        vnet_log(VNET_LOG_ERROR, MOD, "%s: UMEM registration: %s%s", x->ifname, strerror(e),
                 e == EAFNOSUPPORT ? " (the kernel has no AF_XDP: CONFIG_XDP_SOCKETS)"
                 : e == EPERM      ? " (needs CAP_NET_RAW and CAP_IPC_LOCK or a larger "
                                     "RLIMIT_MEMLOCK)"
                 : e == ENOMEM     ? " (RLIMIT_MEMLOCK too small)"
                                   : "");
        return err_from_errno(e);
    }
    struct xsk_socket_config sc = {
        .rx_size = RING_SIZE,
        .tx_size = RING_SIZE,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        .xdp_flags = x->xdp_mode,
        .bind_flags = bind_flags,
    };
    rc = xsk_socket__create(&q->xsk, x->ifname, idx, q->umem, &q->rx, &q->tx, &sc);
    if (rc != 0) {
        q->xsk = NULL;
        return rc; /* -errno, logged by the caller */
    }
    /* the RX half of the UMEM into the fill ring, the rest is the TX pool */
    uint32_t fi;
    if (xsk_ring_prod__reserve(&q->fill, FILL_FRAMES, &fi) != FILL_FRAMES)
        return VNET_EIO;
    for (uint32_t i = 0; i < FILL_FRAMES; i++)
        *xsk_ring_prod__fill_addr(&q->fill, fi + i) = (uint64_t)i * FRAME_SIZE;
    xsk_ring_prod__submit(&q->fill, FILL_FRAMES);
    q->nfree = 0;
    for (uint32_t i = FILL_FRAMES; i < NFRAMES; i++)
        q->freef[q->nfree++] = (uint64_t)i * FRAME_SIZE;
    q->outstanding = 0;
    return 0;
}

/* A queue's binding to the socket that held it before is released by the kernel after that
 * socket's close() has returned (the buffer pool is let go from a work queue, under the RTNL
 * lock), so binding again right after a close (a port closed and reopened, a node restarted)
 * can meet EBUSY for a few milliseconds. bind_queue tries again for up to BIND_BUSY_MS before
 * it takes EBUSY for a queue that another socket really holds. */
#define BIND_BUSY_MS 3000

static int bind_queue(struct xport *x, struct xq *q, unsigned idx)
{
    int rc;
    if (x->xdp_mode == XDP_FLAGS_DRV_MODE) {
        rc = try_queue(x, q, idx, XDP_USE_NEED_WAKEUP | XDP_ZEROCOPY);
        if (rc == 0) {
            x->zerocopy = true;
            goto mapped;
        }
        close_queue(q);
        vnet_log(VNET_LOG_DEBUG, MOD, "%s: queue %u: zero-copy: %s; using copy mode", x->ifname,
                 idx, strerror(-rc));
    }
    x->zerocopy = false;
    rc = try_queue(x, q, idx, XDP_USE_NEED_WAKEUP | XDP_COPY);
mapped:
    return rc;
}

static int open_queue(struct xport *x, struct xq *q, unsigned idx)
{
    int64_t deadline = now_ms() + BIND_BUSY_MS;
    unsigned tries = 0, wait_ms = 1;
    int rc;
    while ((rc = bind_queue(x, q, idx)) == -EBUSY && now_ms() < deadline) {
        close_queue(q);
        tries++;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)wait_ms * 1000000L};
        nanosleep(&ts, NULL);
        if (wait_ms < 32)
            wait_ms *= 2;
    }
    if (tries)
        vnet_log(VNET_LOG_DEBUG, MOD, "%s: queue %u: busy, bound after %u retries: %s", x->ifname,
                 idx, tries, rc == 0 ? "ok" : strerror(-rc));
    if (rc != 0) {
        int e = -rc;
        if (q->umem) /* the socket failed (umem errors are logged in try_queue) */
            vnet_log(VNET_LOG_ERROR, MOD, "%s: AF_XDP socket on queue %u: %s%s", x->ifname, idx,
                     strerror(e),
                     e == EINVAL         ? " (the interface has no such queue?)"
                     : e == EAFNOSUPPORT ? " (the kernel has no AF_XDP: CONFIG_XDP_SOCKETS)"
                     : e == EPERM        ? " (needs CAP_NET_RAW)"
                     : e == EBUSY        ? " (another AF_XDP socket holds this queue)"
                                         : "");
        return rc < 0 && rc > -4096 ? err_from_errno(e) : rc;
    }
    rc = xsk_socket__update_xskmap(q->xsk, x->xsks_fd);
    if (rc != 0) {
        vnet_log(VNET_LOG_ERROR, MOD, "%s: XSKMAP update: %s", x->ifname, strerror(-rc));
        return err_from_errno(-rc);
    }
    return 0;
}

/* Virtual side: frames for any MAC are ours. The membership is dropped by the kernel when the
 * socket closes (a socket that is never bound receives nothing). */
static int set_promisc(struct xport *x)
{
    x->promisc = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (x->promisc < 0) {
        int e = errno;
        vnet_log(VNET_LOG_ERROR, MOD, "socket(AF_PACKET): %s%s", strerror(e),
                 e == EPERM ? " (needs CAP_NET_RAW)" : "");
        return err_from_errno(e);
    }
    struct packet_mreq mr = {.mr_ifindex = x->ifindex, .mr_type = PACKET_MR_PROMISC};
    if (setsockopt(x->promisc, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
        int e = errno;
        vnet_log(VNET_LOG_ERROR, MOD, "%s: promiscuous mode: %s", x->ifname, strerror(e));
        return err_from_errno(e);
    }
    return 0;
}

static void xdp_close(void *state)
{
    struct xport *x = state;
    if (!x)
        return;
    uint64_t rxd = 0, txd = 0, nd = 0;
    if (x->q) {
        for (unsigned i = 0; i < x->nq; i++) {
            close_queue(&x->q[i]);
            rxd += x->q[i].rx_drops;
            txd += x->q[i].tx_drops;
            nd += x->q[i].neigh_drops;
        }
        free(x->q);
    }
    if (x->link_fd >= 0)
        close(x->link_fd); /* detaches the program */
    if (x->obj)
        bpf_object__close(x->obj);
    if (x->guard >= 0)
        close(x->guard);
    if (x->kick >= 0)
        close(x->kick);
    if (x->promisc >= 0)
        close(x->promisc);
    vnet_log(VNET_LOG_DEBUG, MOD,
             "%s: closed; dropped rx %llu, tx %llu (of which %llu waiting for a neighbour)",
             x->ifname, (unsigned long long)rxd, (unsigned long long)txd, (unsigned long long)nd);
    free(x);
}

static int xdp_open(const char *arg, const struct vnet_port_cfg *cfg, void **state)
{
    struct iface_spec sp;
    int rc = vnet__iface_spec_open(MOD, arg, cfg->queues, XDP_MAX_QUEUES, &sp);
    if (rc != 0)
        return rc;
    const char *ifname = sp.ifname;
    const bool underlay = sp.underlay;
    const unsigned nq = sp.nq;
    struct xport *x = calloc(1, sizeof(*x));
    if (!x)
        return VNET_ENOMEM;
    x->nq = nq;
    x->guard = x->kick = x->promisc = -1;
    x->prog_fd = x->xsks_fd = x->cfg_fd = x->link_fd = -1;
    memcpy(x->ifname, sp.ifname, sizeof(sp.ifname));
    x->ifindex = sp.ifindex;
    x->underlay = underlay;
    x->local = sp.local;
    x->q = calloc(nq, sizeof(x->q[0]));
    if (!x->q) {
        rc = VNET_ENOMEM;
        goto fail;
    }
    if ((rc = vnet_netdev_get_mac(ifname, &x->mac)) != 0 ||
        (rc = vnet_netdev_get_mtu(ifname, &x->mtu)) != 0)
        goto fail;
    if (x->mtu + VNET_ETH_HLEN + 4 > MAX_FRAME)
        vnet_log(VNET_LOG_WARN, MOD, "%s: MTU %u: frames over %u bytes will be dropped", ifname,
                 x->mtu, MAX_FRAME);
    if (underlay && (rc = vnet__outer_open_sockets(&x->local, MOD, &x->guard, &x->kick)) != 0)
        goto fail;
    if (!underlay && (rc = set_promisc(x)) != 0)
        goto fail;
    if ((rc = load_prog(x)) != 0 || (rc = attach_prog(x)) != 0)
        goto fail;
    for (unsigned i = 0; i < nq; i++)
        if ((rc = open_queue(x, &x->q[i], i)) != 0)
            goto fail;
    if (cfg->up && (rc = vnet_netdev_set_up(ifname, true)) != 0) {
        vnet_log(VNET_LOG_ERROR, MOD, "%s: set up: %s", ifname, vnet_strerror(rc));
        goto fail;
    }
    vnet_log(VNET_LOG_INFO, MOD, "%s: open (%s side), %u queue(s), %s XDP, %s", ifname,
             underlay ? "underlay" : "virtual", nq,
             x->xdp_mode == XDP_FLAGS_DRV_MODE ? "native" : "generic",
             x->zerocopy ? "zero-copy" : "copy mode");
    *state = x;
    return 0;
fail:
    xdp_close(x);
    return rc;
}

/* ---- receiving ---- */

static int xdp_rx(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct xport *x = state;
    if (queue >= x->nq)
        return VNET_EINVAL;
    struct xq *q = &x->q[queue];
    if (n <= 0)
        return 0;
    uint32_t idx, fi;
    uint32_t got = xsk_ring_cons__peek(&q->rx, (uint32_t)(n > 256 ? 256 : n * 2), &idx);
    if (got == 0) {
        if (xsk_ring_prod__needs_wakeup(&q->fill))
            (void)recvfrom(xsk_socket__fd(q->xsk), NULL, 0, MSG_DONTWAIT, NULL, NULL);
        return 0;
    }
    int out = 0;
    uint32_t used = 0;
    /* stop once @n packets are filled; descriptors not looked at stay in the ring */
    for (; used < got && out < n; used++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&q->rx, idx + used);
        const uint8_t *f = xsk_umem__get_data(q->area, xsk_umem__add_offset_to_addr(d->addr));
        struct vnet_pkt *p = pkts[out];
        if (p->off > p->cap) {
            q->rx_drops++;
            continue;
        }
        uint32_t room = p->cap - p->off;
        if (x->underlay) {
            struct udp_view v;
            if (!vnet__outer_parse(&x->local, f, d->len, false, &v) || v.plen > room) {
                q->rx_drops++;
                continue;
            }
            memcpy(p->buf + p->off, v.payload, v.plen);
            p->len = v.plen;
            p->peer = v.src;
        } else {
            if (d->len < 14 || d->len > room) {
                q->rx_drops++;
                continue;
            }
            memcpy(p->buf + p->off, f, d->len);
            p->len = d->len;
            memset(&p->peer, 0, sizeof(p->peer));
        }
        p->gso_type = VNET_GSO_NONE;
        p->gso_size = p->hdr_len = p->csum_start = p->csum_offset = 0;
        p->csum_flags = 0;
        /* a guest behind a veth with checksum offload on: its TCP/UDP checksum is still to be
         * computed (the datapath does it before the frame leaves, as for a TAP's) */
        if (!x->underlay &&
            vnet__csum_l4_pending(p->buf + p->off, p->len, &p->csum_start, &p->csum_offset))
            p->csum_flags = VNET_CSUM_PARTIAL;
        p->queue = (uint16_t)queue;
        out++;
    }
    /* the frames go straight back to the fill ring (it has room: it holds at most the RX half) */
    uint32_t r = xsk_ring_prod__reserve(&q->fill, used, &fi);
    for (uint32_t i = 0; i < r; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&q->rx, idx + i);
        *xsk_ring_prod__fill_addr(&q->fill, fi + i) = xsk_umem__extract_addr(d->addr);
    }
    xsk_ring_prod__submit(&q->fill, r);
    if (r < used) /* cannot happen (see above); never lose a frame for it */
        used = r;
    if (used < got)
        xsk_ring_cons__cancel(&q->rx, got - used);
    xsk_ring_cons__release(&q->rx, used);
    return out;
}

/* ---- sending ---- */

static void reap(struct xq *q)
{
    uint32_t idx;
    uint32_t n = xsk_ring_cons__peek(&q->comp, RING_SIZE, &idx);
    for (uint32_t i = 0; i < n; i++)
        q->freef[q->nfree++] = xsk_umem__extract_addr(*xsk_ring_cons__comp_addr(&q->comp, idx + i));
    xsk_ring_cons__release(&q->comp, n);
    q->outstanding -= n;
}

/* Copy mode sends at most 32 descriptors per sendto (the kernel's TX batch, then EAGAIN): kick
 * once per 32 submitted, stopping at any other answer. */
static void kick_tx(struct xport *x, struct xq *q, uint32_t submitted)
{
    if (!xsk_ring_prod__needs_wakeup(&q->tx))
        return;
    for (uint32_t k = 0; k <= submitted / 32; k++) {
        if (sendto(xsk_socket__fd(q->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
            continue;
        if (errno == EAGAIN || errno == EINTR)
            continue;
        if (errno != EBUSY && errno != ENOBUFS && errno != ENETDOWN)
            vnet_log(VNET_LOG_DEBUG, MOD, "%s: tx kick: %s", x->ifname, strerror(errno));
        break;
    }
}

/* Outer headers + payload into @out; returns the frame length. */
static uint32_t put_frame(struct xq *q, const struct outer_dst *d, const uint8_t *data,
                          uint32_t plen, uint8_t *out)
{
    uint32_t ulen = plen + VNET_UDP_HLEN;
    uint8_t *udp = out + d->hlen - VNET_UDP_HLEN;
    uint32_t psum;
    memcpy(out, d->hdr, d->hlen);
    uint8_t *ip = out + VNET_ETH_HLEN;
    if (d->ep.ip.family == VNET_AF_INET) {
        put16(ip + 2, (uint16_t)(ulen + VNET_IP4_HLEN));
        put16(ip + 4, q->ip_id++);
        put16(ip + 10, 0);
        put16(ip + 10, vnet_csum(ip, VNET_IP4_HLEN));
        psum = vnet_csum_pseudo4(ip + 12, ip + 16, IPPROTO_UDP, (uint16_t)ulen);
    } else {
        put16(ip + 4, (uint16_t)ulen);
        psum = vnet_csum_pseudo6(ip + 8, ip + 24, IPPROTO_UDP, ulen);
    }
    put16(udp + 4, (uint16_t)ulen);
    put16(udp + 6, 0);
    uint32_t s = vnet_csum_partial(udp, VNET_UDP_HLEN, psum);
    s = vnet_csum_copy(udp + VNET_UDP_HLEN, data, plen, s);
    uint16_t c = vnet_csum_fold(s);
    put16(udp + 6, c == 0 ? 0xffff : c);
    return d->hlen + plen;
}

static int xdp_tx(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct xport *x = state;
    if (queue >= x->nq)
        return VNET_EINVAL;
    struct xq *q = &x->q[queue];
    reap(q);
    int64_t now = x->underlay ? now_ms() : 0;
    const struct outer_src osrc = {x->ifindex, x->ifname, MOD, x->mac, x->local, x->kick};
    uint32_t idx = 0, want = 0;
    int i;
    /* one frame per packet (no GSO: caps 0); reserve as many descriptors as frames are free */
    want = (uint32_t)n < q->nfree ? (uint32_t)n : q->nfree;
    if (want == 0) {
        kick_tx(x, q, q->outstanding);
        return 0;
    }
    want = xsk_ring_prod__reserve(&q->tx, want, &idx);
    if (want == 0) {
        kick_tx(x, q, q->outstanding);
        return 0;
    }
    uint32_t used = 0;
    for (i = 0; i < n && used < want; i++) {
        struct vnet_pkt *p = pkts[i];
        if ((uint64_t)p->off + p->len > p->cap || p->gso_type != VNET_GSO_NONE) {
            q->tx_drops++;
            continue;
        }
        uint64_t addr = q->freef[q->nfree - 1];
        uint8_t *f = xsk_umem__get_data(q->area, addr);
        uint32_t flen;
        if (x->underlay) {
            const struct vnet_endpoint *ep = &p->peer;
            uint32_t iph = ep->ip.family == VNET_AF_INET ? VNET_IP4_HLEN : VNET_IP6_HLEN;
            if (ep->port == 0 || ep->ip.family != x->local.ip.family ||
                p->len + VNET_UDP_HLEN + iph > x->mtu ||
                p->len + VNET_UDP_HLEN + iph + VNET_ETH_HLEN > MAX_FRAME) {
                q->tx_drops++;
                vnet_log(VNET_LOG_DEBUG, MOD, "%s: tx: bad peer or oversized datagram dropped",
                         x->ifname);
                continue;
            }
            const struct outer_dst *d = vnet__outer_dst_get(&osrc, q->dst, ep, now);
            if (!d) {
                q->tx_drops++;
                q->neigh_drops++;
                continue;
            }
            flen = put_frame(q, d, p->buf + p->off, p->len, f);
        } else {
            if (p->len < 14 || p->len > MAX_FRAME) {
                q->tx_drops++;
                continue;
            }
            /* the caps say no offloads: finish a partial checksum a caller sends anyway */
            if ((p->csum_flags & VNET_CSUM_PARTIAL) && vnet_csum_complete(p) != 0) {
                q->tx_drops++;
                continue;
            }
            memcpy(f, p->buf + p->off, p->len);
            flen = p->len;
        }
        struct xdp_desc *td = xsk_ring_prod__tx_desc(&q->tx, idx + used);
        td->addr = addr;
        td->len = flen;
        td->options = 0;
        q->nfree--;
        used++;
    }
    if (used < want) {
        /* give back the descriptors we reserved but did not fill */
        q->tx.cached_prod -= want - used; /* libxdp 1.3 has no xsk_ring_prod__cancel */
    }
    if (used) {
        xsk_ring_prod__submit(&q->tx, used);
        q->outstanding += used;
    }
    kick_tx(x, q, used);
    return i; /* dropped packets count as taken */
}

static int xdp_fd(void *state, unsigned queue)
{
    const struct xport *x = state;
    return queue < x->nq ? xsk_socket__fd(x->q[queue].xsk) : VNET_EINVAL;
}

static int xdp_get_info(void *state, struct vnet_port_info *out)
{
    const struct xport *x = state;
    out->caps = x->nq > 1 ? VNET_PORT_CAP_MULTIQUEUE : 0;
    out->queues = x->nq;
    memcpy(out->ifname, x->ifname, sizeof(out->ifname));
    out->ifindex = x->ifindex;
    out->mac = x->mac;
    out->mtu = x->mtu;
    if (x->underlay)
        out->local = x->local;
    return 0;
}

const struct vnet_port_ops vnet_port_xdp_ops = {
    .version = VNET_PORT_OPS_VERSION,
    .name = "xdp",
    .open = xdp_open,
    .close = xdp_close,
    .rx_burst = xdp_rx,
    .tx_burst = xdp_tx,
    .fd = xdp_fd,
    .get_info = xdp_get_info,
};
