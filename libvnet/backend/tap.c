/* The "tap" port backend: a Linux TAP device ("tap:NAME") carrying Ethernet frames.
 *
 * The device is opened with IFF_VNET_HDR, so every frame crosses the fd with a 10-byte
 * struct virtio_net_hdr in front of it. That header is what lets the kernel hand us whole TCP
 * segments of up to 64 KB (TSO/GSO) with the checksum left to finish, and take them back the
 * same way: a flow then costs one read and one write per 64 KB instead of per 1.5 KB, which is
 * the difference between a few and ~16 Gbit/s. The header's fields have the same meaning as
 * the offload fields of struct vnet_pkt, so translating is a copy. It is in native byte order
 * (the legacy virtio layout; we never set TUNSETVNETLE/BE).
 *
 * A TAP fd has no recvmmsg/sendmmsg: a burst is a loop of readv/writev that stops at EAGAIN.
 * The header goes to and from a struct on the stack (an iovec of its own), so the caller's
 * headroom is left untouched and no allocation happens per packet. tun's read returns only what
 * fit, so rx adds a one-byte spill iovec after the buffer: a frame that reaches it was cut and
 * is dropped. Buffers should hold cap - off >= 65550 bytes with offload on (a TSO frame is up to
 * 64 KiB plus the Ethernet header), MTU + 14 (+4 for VLAN) otherwise.
 *
 * Multiqueue: with cfg->queues > 1 the device is created with IFF_MULTI_QUEUE and one fd per
 * queue; the kernel spreads flows over the queues by hash. Offloads and the header size are
 * properties of the device, so they are set once, through the first fd.
 *
 * A device is created if it does not exist (and then disappears when the port is closed, as
 * it is not made persistent) or attached to if it does (a persistent tap made with
 * "ip tuntap add"); attaching requires the same single/multi-queue mode. A name with "%d"
 * ("tap:vnet%d") lets the kernel pick a free number; get_info reports the result.
 *
 * Errors: opening gives VNET_ENOENT without /dev/net/tun; VNET_EPERM when the process may not
 * use it, in either of two ways that depend on the host rather than on us: the device node is
 * not openable (mode 0600 root, as on a machine without udev: the log line names the device,
 * its mode and owner), or it is openable (0666, Debian's udev rule) and TUNSETIFF refuses
 * (the log line says whether the process lacks CAP_NET_ADMIN or, holding it, was refused for
 * another reason, such as a security module);
 * VNET_EBUSY when the (single-queue) device is attached elsewhere, VNET_EINVAL for a bad name
 * or a device of the wrong kind; each with a log line that says which. Writing to a device
 * that is down fails with VNET_EIO (tun refuses it); frames with a bad offload header are
 * dropped one by one (debug log) and the burst goes on.
 */
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/netdev.h"
#include "vnet/sys/port.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* Not in the 6.1 uapi headers this is built against (Linux 6.2 added USO to tun). */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

#define MOD            "tap"
#define TAP_MAX_QUEUES 256 /* the kernel's MAX_TAP_QUEUES */
#define TUN_PATH       "/dev/net/tun"

_Static_assert(sizeof(struct virtio_net_hdr) == 10, "virtio_net_hdr layout");
_Static_assert(VNET_GSO_TCPV4 == VIRTIO_NET_HDR_GSO_TCPV4 &&
                   VNET_GSO_TCPV6 == VIRTIO_NET_HDR_GSO_TCPV6 &&
                   VNET_GSO_UDP_L4 == VIRTIO_NET_HDR_GSO_UDP_L4,
               "VNET_GSO_* follow VIRTIO_NET_HDR_GSO_*");

struct tap {
    unsigned nq;
    uint32_t caps;
    int ctl; /* a datagram socket in the device's namespace, for the SIOCGIF* ioctls */
    int fds[];
};

/* Whether CAP_NET_ADMIN is in this thread's effective set (capget: no libcap needed). */
static bool has_net_admin(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) != 0)
        return false;
    return (data[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32))) != 0;
}

static int open_queue(const char *name, bool mq, char actual[IFNAMSIZ])
{
    int fd = open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO) {
            vnet_log(VNET_LOG_ERROR, MOD, "%s: %s (is the tun module loaded?)", TUN_PATH,
                     strerror(e));
            return VNET_ENOENT;
        }
        if (e == EACCES || e == EPERM) {
            struct stat st;
            if (stat(TUN_PATH, &st) == 0)
                vnet_log(VNET_LOG_ERROR, MOD,
                         "%s: %s (the device is mode %04o, owner uid %u gid %u: run as root, or "
                         "give this user access to the device and CAP_NET_ADMIN)",
                         TUN_PATH, strerror(e), (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                         (unsigned)st.st_gid);
            else
                vnet_log(VNET_LOG_ERROR, MOD, "%s: %s (TAP devices need root or CAP_NET_ADMIN)",
                         TUN_PATH, strerror(e));
            return VNET_EPERM;
        }
        vnet_log(VNET_LOG_ERROR, MOD, "%s: %s", TUN_PATH, strerror(e));
        return -e;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, name, strlen(name) + 1);
    ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (mq ? IFF_MULTI_QUEUE : 0));
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno, rc;
        const char *why;
        switch (e) {
        case EPERM:
        case EACCES:
            why = has_net_admin()
                      ? "not permitted although this process holds CAP_NET_ADMIN (a security "
                        "module, or a user namespace that does not own this network namespace)"
                      : "not permitted: this process lacks CAP_NET_ADMIN (run as root, give the "
                        "program CAP_NET_ADMIN, or attach to a persistent TAP made for this "
                        "user with 'ip tuntap add NAME mode tap user USER')";
            rc = VNET_EPERM;
            break;
        case EBUSY:
            why = "device busy (already attached by another process, or all queues taken)";
            rc = VNET_EBUSY;
            break;
        case EINVAL:
            why = mq ? "a device of that name exists and is not a multi-queue TAP"
                     : "a device of that name exists and is not a single-queue TAP";
            rc = VNET_EINVAL;
            break;
        default:
            why = strerror(e);
            rc = -e;
        }
        vnet_log(VNET_LOG_ERROR, MOD, "%s: TUNSETIFF: %s", name, why);
        close(fd);
        return rc;
    }
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    actual[IFNAMSIZ - 1] = '\0';
    return fd;
}

/* Ask for checksum and segmentation offload; older kernels reject USO with EINVAL. Returns
 * the TUN_F_* flags in effect. */
static unsigned set_offload(int fd, const char *name, bool want)
{
    static const unsigned tries[] = {
        TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6,
        TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
        TUN_F_CSUM,
    };
    if (want) {
        for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
            if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)tries[i]) == 0)
                return tries[i];
            if (errno != EINVAL)
                break;
        }
        vnet_log(VNET_LOG_WARN, MOD, "%s: TUNSETOFFLOAD: %s, running without offloads", name,
                 strerror(errno));
    }
    /* An attached persistent device may have offloads from an earlier user: clear them, or
     * the kernel would send GSO frames to a caller that did not ask for them. */
    (void)ioctl(fd, TUNSETOFFLOAD, 0ul);
    return 0;
}

static bool valid_ifname(const char *s)
{
    size_t n = strnlen(s, IFNAMSIZ);
    if (n == 0 || n >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == ':' || isspace((unsigned char)s[i]))
            return false;
    return true;
}

static void tap_close(void *state)
{
    struct tap *t = state;
    if (!t)
        return;
    for (unsigned q = 0; q < t->nq; q++)
        if (t->fds[q] >= 0)
            close(t->fds[q]);
    if (t->ctl >= 0)
        close(t->ctl);
    free(t);
}

static int tap_open(const char *arg, const struct vnet_port_cfg *cfg, void **state)
{
    char name[IFNAMSIZ];
    int rc;
    if (!valid_ifname(arg)) {
        vnet_log(VNET_LOG_ERROR, MOD,
                 "bad device name \"%.32s\" (1 to %d characters, no /, : or space)", arg,
                 IFNAMSIZ - 1);
        return VNET_EINVAL;
    }
    unsigned nq = cfg->queues ? cfg->queues : 1;
    if (nq > TAP_MAX_QUEUES)
        return VNET_EINVAL;
    struct tap *t = calloc(1, sizeof(*t) + nq * sizeof(t->fds[0]));
    if (!t)
        return VNET_ENOMEM;
    t->ctl = -1;
    for (unsigned q = 0; q < nq; q++)
        t->fds[q] = -1;
    t->nq = nq;

    for (unsigned q = 0; q < nq; q++) {
        /* later queues attach by the name the kernel gave the first (arg may be "tap%d") */
        rc = open_queue(q == 0 ? arg : name, nq > 1, name);
        if (rc < 0)
            goto fail;
        t->fds[q] = rc;
    }
    int hdrsz = (int)sizeof(struct virtio_net_hdr);
    if (ioctl(t->fds[0], TUNSETVNETHDRSZ, &hdrsz) < 0) {
        rc = -errno;
        vnet_log(VNET_LOG_ERROR, MOD, "%s: TUNSETVNETHDRSZ: %s", name, strerror(-rc));
        goto fail;
    }
    unsigned off = set_offload(t->fds[0], name, cfg->offload);
    if (off & TUN_F_CSUM)
        t->caps |= VNET_PORT_CAP_CSUM;
    if (off & (TUN_F_TSO4 | TUN_F_TSO6))
        t->caps |= VNET_PORT_CAP_TSO;
    if (off & (TUN_F_USO4 | TUN_F_USO6))
        t->caps |= VNET_PORT_CAP_USO;
    if (nq > 1)
        t->caps |= VNET_PORT_CAP_MULTIQUEUE;

    t->ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (t->ctl < 0) {
        rc = -errno;
        goto fail;
    }
    if (cfg->set_mac && (rc = vnet_netdev_set_mac(name, &cfg->mac)) != 0) {
        vnet_log(VNET_LOG_ERROR, MOD, "%s: set MAC: %s", name, vnet_strerror(rc));
        goto fail;
    }
    if (cfg->mtu && (rc = vnet_netdev_set_mtu(name, cfg->mtu)) != 0) {
        vnet_log(VNET_LOG_ERROR, MOD, "%s: set MTU %u: %s", name, cfg->mtu, vnet_strerror(rc));
        goto fail;
    }
    if (cfg->up && (rc = vnet_netdev_set_up(name, true)) != 0) {
        vnet_log(VNET_LOG_ERROR, MOD, "%s: set up: %s", name, vnet_strerror(rc));
        goto fail;
    }
    vnet_log(VNET_LOG_INFO, MOD, "%s: open, %u queue(s), offloads 0x%x", name, nq, off);
    *state = t;
    return 0;
fail:
    tap_close(t);
    return rc;
}

static int tap_rx(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct tap *t = state;
    if (queue >= t->nq)
        return VNET_EINVAL;
    int fd = t->fds[queue];
    int got = 0;
    /* dropped frames (truncated, undescribable) do not use a slot, but bound the work */
    for (int reads = 0; got < n && reads < 2 * n; reads++) {
        struct vnet_pkt *p = pkts[got];
        struct virtio_net_hdr h;
        uint8_t spill;
        if (p->off > p->cap)
            return got ? got : VNET_EINVAL;
        size_t room = p->cap - p->off;
        /* tun returns at most what fits: one more byte shows a frame was cut */
        struct iovec iov[3] = {{&h, sizeof(h)}, {p->buf + p->off, room}, {&spill, 1}};
        ssize_t r = readv(fd, iov, 3);
        if (r < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                break;
            if (e == EINTR)
                continue;
            if (e == EINVAL) {
                /* the frame was consumed: a GSO type the header cannot express */
                vnet_log(VNET_LOG_DEBUG, MOD, "rx: frame dropped by the kernel (EINVAL)");
                continue;
            }
            return got ? got : -e;
        }
        size_t flen = (size_t)r - sizeof(h);
        if ((size_t)r < sizeof(h) || flen > room) {
            vnet_log(VNET_LOG_DEBUG, MOD, "rx: frame larger than the %zu-byte buffer dropped",
                     room);
            continue;
        }
        p->len = (uint32_t)flen;
        p->gso_type = h.gso_type;
        p->gso_size = h.gso_type != VIRTIO_NET_HDR_GSO_NONE ? h.gso_size : 0;
        p->hdr_len = h.hdr_len;
        p->csum_flags = 0;
        p->csum_start = p->csum_offset = 0;
        if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
            p->csum_flags = VNET_CSUM_PARTIAL;
            p->csum_start = h.csum_start;
            p->csum_offset = h.csum_offset;
        } else if (h.flags & VIRTIO_NET_HDR_F_DATA_VALID) {
            p->csum_flags = VNET_CSUM_VALID;
        }
        p->queue = (uint16_t)queue;
        memset(&p->peer, 0, sizeof(p->peer));
        got++;
    }
    return got;
}

static int tap_tx(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct tap *t = state;
    if (queue >= t->nq)
        return VNET_EINVAL;
    int fd = t->fds[queue];
    int i = 0;
    while (i < n) {
        const struct vnet_pkt *p = pkts[i];
        if ((uint64_t)p->off + p->len > p->cap || p->len < 14) {
            vnet_log(VNET_LOG_DEBUG, MOD, "tx: bad packet (off %u len %u cap %u) dropped", p->off,
                     p->len, p->cap);
            i++;
            continue;
        }
        struct virtio_net_hdr h;
        memset(&h, 0, sizeof(h));
        if (p->csum_flags & VNET_CSUM_PARTIAL) {
            h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
            h.csum_start = p->csum_start;
            h.csum_offset = p->csum_offset;
        } else if (p->csum_flags & VNET_CSUM_VALID) {
            h.flags = VIRTIO_NET_HDR_F_DATA_VALID;
        }
        if (p->gso_type != VNET_GSO_NONE) {
            h.gso_type = p->gso_type;
            h.gso_size = p->gso_size;
            h.hdr_len = p->hdr_len;
        }
        struct iovec iov[2] = {{&h, sizeof(h)}, {p->buf + p->off, p->len}};
        if (writev(fd, iov, 2) < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK)
                break;
            if (e == EINVAL || e == EMSGSIZE || e == ENOMEM || e == ENOBUFS || e == EFAULT) {
                /* this frame only (bad offload header, too big, memory pressure) */
                vnet_log(VNET_LOG_DEBUG, MOD, "tx: %u-byte frame dropped: %s", p->len, strerror(e));
                i++;
                continue;
            }
            return i ? i : -e;
        }
        i++;
    }
    return i;
}

static int tap_fd(void *state, unsigned queue)
{
    const struct tap *t = state;
    return queue < t->nq ? t->fds[queue] : VNET_EINVAL;
}

static int tap_get_info(void *state, struct vnet_port_info *out)
{
    const struct tap *t = state;
    struct ifreq ifr;
    out->caps = t->caps;
    out->queues = t->nq;
    /* by fd and through our own socket: right even if the device was renamed, or the caller
     * is now in another network namespace */
    memset(&ifr, 0, sizeof(ifr));
    if (ioctl(t->fds[0], TUNGETIFF, &ifr) < 0)
        return -errno;
    memcpy(out->ifname, ifr.ifr_name, sizeof(out->ifname));
    out->ifname[sizeof(out->ifname) - 1] = '\0';
    if (ioctl(t->ctl, SIOCGIFINDEX, &ifr) < 0)
        return -errno;
    out->ifindex = ifr.ifr_ifindex;
    if (ioctl(t->ctl, SIOCGIFMTU, &ifr) < 0)
        return -errno;
    out->mtu = (uint32_t)ifr.ifr_mtu;
    if (ioctl(t->ctl, SIOCGIFHWADDR, &ifr) < 0)
        return -errno;
    memcpy(out->mac.b, ifr.ifr_hwaddr.sa_data, 6);
    return 0;
}

const struct vnet_port_ops vnet_port_tap_ops = {
    .version = VNET_PORT_OPS_VERSION,
    .name = "tap",
    .open = tap_open,
    .close = tap_close,
    .rx_burst = tap_rx,
    .tx_burst = tap_tx,
    .fd = tap_fd,
    .get_info = tap_get_info,
};
