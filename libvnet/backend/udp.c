/* The "udp" port backend: the underlay UDP socket that VXLAN datagrams travel in.
 *
 * Spec: "udp:IP:PORT" or "udp:[IPv6]:PORT"; without ":PORT" ("udp:192.0.2.1",
 * "udp:[2001:db8::1]") the port is 4789, the IANA VXLAN port. Port 0 is not accepted (a VTEP
 * must listen where its peers send). 0.0.0.0 and [::] are wildcards; [::] is dual-stack
 * (IPV6_V6ONLY off), and IPv4 peers seen through it are reported as IPv4 endpoints.
 *
 * Packets are UDP payloads (VXLAN header + inner frame). Bursts are one recvmmsg/sendmmsg per
 * up to UDP_BATCH datagrams, straight into/out of the caller's buffers.
 *
 * Offload (cfg->offload), both probed at open and reported in the caps:
 *  - UDP_GRO: the kernel may hand over several datagrams of one flow as one buffer: the
 *    concatenation of datagrams of pkt->gso_size bytes each (the last one may be shorter),
 *    with gso_type VNET_GSO_UDP_L4. Over veth and loopback this happens when the sender used
 *    UDP_SEGMENT; on real NICs also for plain datagrams. Receive buffers need cap - off of
 *    64 KiB to take a whole batch; a smaller buffer gets as many whole datagrams as fit, and
 *    the rest of that batch is lost (logged at debug level). Without GRO, buffers need the
 *    largest datagram expected (underlay MTU - 28 or - 48).
 *  - UDP_SEGMENT: a tx packet with gso_size != 0 and len > gso_size is sent as one buffer
 *    that the kernel (or NIC) cuts into datagrams of gso_size bytes. At most 64 datagrams and
 *    64 KiB of payload per packet (kernel limits); larger packets are dropped. Without the
 *    capability such packets are still accepted: they are cut here into separate sendmmsg
 *    entries that point into the same buffer (no copy).
 *  - Coalescing (with UDP_SEGMENT): consecutive packets of a burst to the same destination,
 *    all of one size but the last (which may be shorter), go as one message whose iovecs are
 *    the packets' buffers and whose segment size is the first one's length: one trip through
 *    the sender's stack (and, over veth or to a receiver with UDP_GRO, through the
 *    receiver's) for up to 64 datagrams, where each would pay its own. A burst of small
 *    frames to one peer (a flood of 64-byte packets, a VM's ACKs) is where this pays. The
 *    datagrams on the wire are the same as if sent one by one. A coalesced message that fails
 *    is sent again one packet per message, so each packet meets its own fate; EIO (a route
 *    whose device cannot checksum, where the kernel refuses UDP GSO) turns coalescing off for
 *    the port, with an info log line.
 *
 * Don't fragment: sockets use IP_PMTUDISC_DO / IPV6_PMTUDISC_DO. Fragmented VXLAN is slow,
 * reassembly is fragile under loss, and RFC 7348 4.3 says VTEPs must not fragment. With DF
 * set, a datagram larger than the route MTU (or a path MTU learned from ICMP) fails at send
 * time with EMSGSIZE instead of leaving the host as fragments or vanishing in the network,
 * so an MTU problem is visible (and a GSO segment that does not fit fails with EINVAL).
 * PMTUDISC_PROBE would ignore learned path MTUs and stay silent about them.
 *
 * Errors for one packet (EMSGSIZE, EINVAL, unreachable, a peer of the wrong family, a packet
 * whose off/len do not fit its buffer) drop that packet, count it as taken and are logged at
 * debug level; the rest of the burst goes on. EAGAIN/ENOBUFS stop the burst: tx_burst returns
 * the number taken so far (possibly 0).
 *
 * rx_burst fills pkts[0..ret) in place and in arrival order. A datagram that did not fit its
 * buffer (no GRO) cannot be taken back from the middle of a recvmmsg batch, so its slot is
 * returned with len 0 (and a debug log line) rather than cut: callers already have to cope
 * with empty datagrams, which any peer can send.
 *
 * Queues: cfg->queues > 1 opens that many sockets on the same address with SO_REUSEPORT; the
 * kernel spreads received flows over them by hash (VXLAN varies the source port per inner
 * flow), and each queue sends on its own socket.
 *
 * The port is this process's alone: no SO_REUSEADDR (with it, a second process could bind the
 * same port and silently take the traffic), SO_REUSEPORT only with several queues, and then,
 * once every queue is bound, the kernel's socket table (/proc/net/udp, udp6) must show no
 * socket on the same local address that is not one of ours (a process of the same user with
 * SO_REUSEPORT would otherwise join the group). A port held by another process: VNET_EBUSY
 * and an error log line naming it.
 */
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/sys/port.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define MOD              "udp"
#define UDP_BATCH        64
#define UDP_IOV          256 /* iovecs per sendmmsg: coalesced messages take one a packet */
#define UDP_MAX_SEGS     64  /* the kernel's UDP_MAX_SEGMENTS */
#define UDP_MAX_QUEUES   64
#define UDP_DEFAULT_PORT 4789
#define UDP_DEFAULT_BUF  (4 << 20)
#define UDP_MAX_V4       (65535 - 20 - 8)
#define UDP_MAX_V6       (65535 - 8)

union sa {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct udp_port {
    unsigned nq;
    int family;       /* of the sockets: AF_INET or AF_INET6 */
    bool gro;         /* UDP_GRO on: look for the cmsg */
    bool no_coalesce; /* set once the kernel refused a coalesced send (atomic) */
    uint32_t caps;
    int fds[];
};

static int err_from_errno(int e)
{
    switch (e) {
    case EADDRNOTAVAIL:
    case ENODEV:
        return VNET_ENOENT;
    case EADDRINUSE:
        return VNET_EBUSY;
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
    case EOPNOTSUPP:
        return VNET_ENOTSUP;
    default:
        return -e;
    }
}

/* "IP:PORT", "[IPv6]:PORT", "IP" or "[IPv6]". */
static int parse_spec(const char *arg, struct vnet_endpoint *ep)
{
    char tmp[VNET_IP_STRLEN + 2];
    if (vnet_endpoint_parse(arg, ep) == 0)
        return 0;
    size_t n = strlen(arg);
    if (n >= 2 && arg[0] == '[' && arg[n - 1] == ']' && n - 2 < sizeof(tmp)) {
        memcpy(tmp, arg + 1, n - 2);
        tmp[n - 2] = '\0';
        if (vnet_ip_parse(tmp, &ep->ip) != 0 || ep->ip.family != VNET_AF_INET6)
            return VNET_EINVAL;
    } else if (vnet_ip_parse(arg, &ep->ip) != 0 || ep->ip.family != VNET_AF_INET) {
        return VNET_EINVAL; /* bare IPv6 is ambiguous with a port: brackets required */
    }
    ep->port = UDP_DEFAULT_PORT;
    return 0;
}

static void set_buf(int fd, int force_opt, int opt, int size, const char *what)
{
    if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof(size)) == 0)
        return;
    /* without CAP_NET_ADMIN: capped at net.core.[rw]mem_max */
    if (setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size)) < 0)
        vnet_log(VNET_LOG_WARN, MOD, "%s %d: %s", what, size, strerror(errno));
}

static int open_socket(const struct vnet_endpoint *ep, const struct vnet_port_cfg *cfg,
                       bool reuseport)
{
    static const int one = 1, zero = 0;
    struct sockaddr_storage ss;
    int salen = vnet_endpoint_to_sockaddr(ep, &ss);
    if (salen < 0)
        return VNET_EINVAL;
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0) {
        int e = errno;
        vnet_log(VNET_LOG_ERROR, MOD, "socket: %s", strerror(e));
        return err_from_errno(e);
    }
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        int e = errno;
        vnet_log(VNET_LOG_ERROR, MOD, "SO_REUSEPORT: %s", strerror(e));
        close(fd);
        return err_from_errno(e);
    }
    int pmtu4 = IP_PMTUDISC_DO;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        int v6only = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ? 0 : 1;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? &one : &zero, sizeof(int));
        int pmtu6 = IPV6_PMTUDISC_DO;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu6, sizeof(pmtu6));
    }
    /* on a dual-stack socket this covers its IPv4 traffic */
    (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu4, sizeof(pmtu4));
    set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, cfg->rcvbuf > 0 ? cfg->rcvbuf : UDP_DEFAULT_BUF,
            "SO_RCVBUF");
    set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, cfg->sndbuf > 0 ? cfg->sndbuf : UDP_DEFAULT_BUF,
            "SO_SNDBUF");
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)salen) < 0) {
        int e = errno;
        char buf[VNET_ENDPOINT_STRLEN];
        vnet_endpoint_format(ep, buf, sizeof(buf));
        vnet_log(VNET_LOG_ERROR, MOD, "bind %s: %s%s", buf, strerror(e),
                 e == EADDRNOTAVAIL ? " (not an address of this host/namespace)"
                 : e == EADDRINUSE  ? " (the port is held by another socket or process)"
                                    : "");
        close(fd);
        return err_from_errno(e);
    }
    return fd;
}

/* Is one of fds[0..n) the socket with inode @ino? */
static bool own_inode(const int *fds, unsigned n, unsigned long ino)
{
    for (unsigned q = 0; q < n; q++) {
        struct stat st;
        if (fstat(fds[q], &st) == 0 && (unsigned long)st.st_ino == ino)
            return true;
    }
    return false;
}

/* Multiqueue: does a socket that is not one of fds[0..n) share their local address (joined
 * the SO_REUSEPORT group from another process)? Reads /proc/net/udp or udp6 (this network
 * namespace's table). Returns 0 (the port is ours), VNET_EBUSY, or VNET_EIO (table unreadable:
 * refused too, since ownership cannot be shown). */
static int check_owner(const int *fds, unsigned n, int family, const struct vnet_endpoint *ep)
{
    FILE *f = fopen(family == AF_INET ? "/proc/net/udp" : "/proc/net/udp6", "re");
    if (!f) {
        vnet_log(VNET_LOG_ERROR, MOD, "cannot read the UDP socket table: %s", strerror(errno));
        return VNET_EIO;
    }
    /* Two passes over the lines: the local address (hex "ADDR:PORT") of our sockets, then any
     * other inode with that local address. */
    char line[512], local[80] = "", foreign_local[80];
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        rewind(f);
        if (!fgets(line, sizeof(line), f)) /* header */
            break;
        while (fgets(line, sizeof(line), f)) {
            unsigned long ino;
            if (sscanf(line, " %*u: %79s %*s %*x %*s %*s %*s %*u %*u %lu", foreign_local, &ino) !=
                2)
                continue;
            bool ours = own_inode(fds, n, ino);
            if (pass == 0 && ours) {
                memcpy(local, foreign_local, sizeof(local));
                break;
            }
            if (pass == 1 && !ours && local[0] && strcmp(local, foreign_local) == 0) {
                rc = VNET_EBUSY;
                break;
            }
        }
    }
    fclose(f);
    if (rc) {
        char buf[VNET_ENDPOINT_STRLEN];
        vnet_endpoint_format(ep, buf, sizeof(buf));
        vnet_log(VNET_LOG_ERROR, MOD, "udp port %s is already used by another process", buf);
    }
    return rc;
}

static void udp_close(void *state)
{
    struct udp_port *u = state;
    if (!u)
        return;
    for (unsigned q = 0; q < u->nq; q++)
        if (u->fds[q] >= 0)
            close(u->fds[q]);
    free(u);
}

static int udp_open(const char *arg, const struct vnet_port_cfg *cfg, void **state)
{
    struct vnet_endpoint ep;
    if (parse_spec(arg, &ep) != 0) {
        vnet_log(VNET_LOG_ERROR, MOD, "bad spec \"udp:%.64s\" (IP[:PORT] or [IPv6][:PORT])", arg);
        return VNET_EINVAL;
    }
    unsigned nq = cfg->queues ? cfg->queues : 1;
    if (nq > UDP_MAX_QUEUES || cfg->rcvbuf < 0 || cfg->sndbuf < 0)
        return VNET_EINVAL;
    struct udp_port *u = calloc(1, sizeof(*u) + nq * sizeof(u->fds[0]));
    if (!u)
        return VNET_ENOMEM;
    u->nq = nq;
    u->family = ep.ip.family == VNET_AF_INET ? AF_INET : AF_INET6;
    for (unsigned q = 0; q < nq; q++)
        u->fds[q] = -1;
    for (unsigned q = 0; q < nq; q++) {
        int fd = open_socket(&ep, cfg, nq > 1);
        if (fd < 0) {
            udp_close(u);
            return fd;
        }
        u->fds[q] = fd;
    }
    int orc = nq > 1 ? check_owner(u->fds, nq, u->family, &ep) : 0;
    if (orc) {
        udp_close(u);
        return orc;
    }
    if (cfg->offload) {
        static const int one = 1, zero = 0;
        bool gso = true, gro = true;
        for (unsigned q = 0; q < nq; q++) {
            /* setting the socket default segment size to 0 is a no-op that only kernels with
             * UDP GSO (4.18+) accept */
            if (setsockopt(u->fds[q], SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) < 0)
                gso = false;
            if (setsockopt(u->fds[q], SOL_UDP, UDP_GRO, &one, sizeof(one)) < 0)
                gro = false;
        }
        if (gso)
            u->caps |= VNET_PORT_CAP_UDP_GSO;
        if (gro)
            u->caps |= VNET_PORT_CAP_UDP_GRO;
        u->gro = gro;
        if (!gso || !gro)
            vnet_log(VNET_LOG_INFO, MOD, "udp:%s: kernel lacks%s%s", arg, gso ? "" : " UDP_SEGMENT",
                     gro ? "" : " UDP_GRO");
    }
    if (nq > 1)
        u->caps |= VNET_PORT_CAP_MULTIQUEUE;
    *state = u;
    return 0;
}

static int udp_rx(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct udp_port *u = state;
    struct mmsghdr mm[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    union sa sa[UDP_BATCH];
    struct {
        _Alignas(struct cmsghdr) char buf[CMSG_SPACE(sizeof(int))];
    } cm[UDP_BATCH];
    if (queue >= u->nq)
        return VNET_EINVAL;
    int fd = u->fds[queue];
    int got = 0, soft_errors = 0;
    while (got < n) {
        int want = n - got < UDP_BATCH ? n - got : UDP_BATCH;
        for (int i = 0; i < want; i++) {
            struct vnet_pkt *p = pkts[got + i];
            if (p->off > p->cap) {
                want = i;
                break;
            }
            iov[i].iov_base = p->buf + p->off;
            iov[i].iov_len = p->cap - p->off;
            memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
            mm[i].msg_hdr.msg_name = &sa[i];
            mm[i].msg_hdr.msg_namelen = sizeof(sa[i]);
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
            if (u->gro) {
                mm[i].msg_hdr.msg_control = cm[i].buf;
                mm[i].msg_hdr.msg_controllen = sizeof(cm[i].buf);
            }
        }
        if (want == 0)
            return got ? got : VNET_EINVAL;
        int r = recvmmsg(fd, mm, (unsigned)want, MSG_DONTWAIT, NULL);
        if (r < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                break;
            if (e == EINTR)
                continue;
            if ((e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN ||
                 e == EMSGSIZE) &&
                ++soft_errors < 4) {
                /* a reported ICMP error, already cleared by this call */
                vnet_log(VNET_LOG_DEBUG, MOD, "rx: %s", strerror(e));
                continue;
            }
            return got ? got : err_from_errno(e);
        }
        for (int i = 0; i < r; i++) {
            struct vnet_pkt *p = pkts[got + i];
            struct msghdr *mh = &mm[i].msg_hdr;
            uint32_t len = mm[i].msg_len, gso = 0;
            if (u->gro) {
                for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
                    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
                        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                        int v;
                        memcpy(&v, CMSG_DATA(c), sizeof(v));
                        gso = v > 0 ? (uint32_t)v : 0;
                    }
            }
            if (mh->msg_flags & MSG_TRUNC) {
                if (gso == 0 || len < gso) {
                    vnet_log(VNET_LOG_DEBUG, MOD,
                             "rx: datagram larger than the %u-byte buffer dropped (len 0)", len);
                    len = gso = 0;
                } else {
                    vnet_log(VNET_LOG_DEBUG, MOD,
                             "rx: GRO batch cut to %u whole datagrams of %u, buffer holds %u",
                             len / gso, gso, len);
                    len -= len % gso;
                }
            }
            if (vnet_endpoint_from_sockaddr(&sa[i].sa, &p->peer) != 0) {
                memset(&p->peer, 0, sizeof(p->peer));
                len = gso = 0;
            }
            p->len = len;
            p->gso_size = (uint16_t)(gso && len > gso ? gso : 0);
            p->gso_type = p->gso_size ? VNET_GSO_UDP_L4 : VNET_GSO_NONE;
            p->csum_flags = 0;
            p->hdr_len = p->csum_start = p->csum_offset = 0;
            p->queue = (uint16_t)queue;
        }
        got += r;
        if (r < want)
            break; /* the socket is drained */
    }
    return got;
}

/* Destination of @p as a sockaddr of the socket's family; 0 or a negative errno. */
static int fill_dst(const struct udp_port *u, const struct vnet_pkt *p, union sa *sa,
                    socklen_t *salen, uint32_t *maxlen)
{
    const struct vnet_endpoint *ep = &p->peer;
    memset(sa, 0, sizeof(*sa));
    if (ep->port == 0)
        return -EDESTADDRREQ;
    if (ep->ip.family == VNET_AF_INET && u->family == AF_INET) {
        sa->in.sin_family = AF_INET;
        sa->in.sin_port = htons(ep->port);
        memcpy(&sa->in.sin_addr, ep->ip.addr, 4);
        *salen = sizeof(sa->in);
        *maxlen = UDP_MAX_V4;
    } else if (ep->ip.family == VNET_AF_INET && u->family == AF_INET6) {
        sa->in6.sin6_family = AF_INET6;
        sa->in6.sin6_port = htons(ep->port);
        sa->in6.sin6_addr.s6_addr[10] = 0xff;
        sa->in6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&sa->in6.sin6_addr.s6_addr[12], ep->ip.addr, 4);
        *salen = sizeof(sa->in6);
        *maxlen = UDP_MAX_V4;
    } else if (ep->ip.family == VNET_AF_INET6 && u->family == AF_INET6) {
        sa->in6.sin6_family = AF_INET6;
        sa->in6.sin6_port = htons(ep->port);
        memcpy(&sa->in6.sin6_addr, ep->ip.addr, 16);
        *salen = sizeof(sa->in6);
        *maxlen = UDP_MAX_V6;
    } else {
        return -EAFNOSUPPORT;
    }
    return 0;
}

static void log_drop(const struct vnet_pkt *p, int e)
{
    if (vnet_log_get_level() < VNET_LOG_DEBUG)
        return;
    char buf[VNET_ENDPOINT_STRLEN];
    if (vnet_endpoint_format(&p->peer, buf, sizeof(buf)) < 0)
        strcpy(buf, "?");
    vnet_log(VNET_LOG_DEBUG, MOD, "tx: %u-byte packet (gso_size %u) to %s dropped: %s", p->len,
             p->gso_size, buf, strerror(e));
}

/* Can @q join a coalesced message whose datagrams are @seg bytes, @used of them so far with
 * @bytes in all, to @dst? (See "Coalescing" at the top.) */
static bool joins(const struct vnet_pkt *q, const union sa *dst, socklen_t salen, uint32_t seg,
                  uint32_t used, uint32_t bytes, uint32_t maxlen, const struct udp_port *u)
{
    union sa qdst;
    socklen_t qlen = 0;
    uint32_t qmax = 0;
    if (used >= UDP_MAX_SEGS || q->len == 0 || q->len > seg || bytes + q->len > maxlen ||
        (q->gso_size != 0 && q->len > q->gso_size) || (uint64_t)q->off + q->len > q->cap)
        return false;
    return fill_dst(u, q, &qdst, &qlen, &qmax) == 0 && qlen == salen &&
           memcmp(&qdst, dst, salen) == 0;
}

static int udp_tx(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct udp_port *u = state;
    struct mmsghdr mm[UDP_BATCH];
    struct iovec iov[UDP_IOV];
    union sa sa[UDP_BATCH];
    int owner[UDP_BATCH]; /* index of the (first) packet of each message */
    int npk[UDP_BATCH];   /* packets a message carries whole: 1, more when coalesced, 0 for the
                             second and later datagrams of a packet cut here */
    struct {
        _Alignas(struct cmsghdr) char buf[CMSG_SPACE(sizeof(uint16_t))];
    } cm[UDP_BATCH];
    if (queue >= u->nq)
        return VNET_EINVAL;
    int fd = u->fds[queue];
    bool kgso = (u->caps & VNET_PORT_CAP_UDP_GSO) != 0;
    bool coalesce = kgso && !__atomic_load_n(&u->no_coalesce, __ATOMIC_RELAXED);
    int done = 0;        /* packets taken: sent or dropped */
    int alone_until = 0; /* packets before this index go one per message (a retry) */

    while (done < n) {
        /* build up to UDP_BATCH messages, from packet `done` to packet `next` */
        int m = 0, next = done, ni = 0;
        while (next < n && ni < UDP_IOV) {
            const struct vnet_pkt *p = pkts[next];
            union sa dst;
            socklen_t salen = 0;
            uint32_t maxlen = 0;
            int e = 0;
            if ((uint64_t)p->off + p->len > p->cap)
                e = EINVAL;
            else
                e = -fill_dst(u, p, &dst, &salen, &maxlen);
            bool seg = p->gso_size != 0 && p->len > p->gso_size;
            uint32_t nseg = seg ? (p->len + p->gso_size - 1) / p->gso_size : 1;
            if (!e && (p->len > maxlen || nseg > UDP_MAX_SEGS))
                e = EMSGSIZE;
            if (e) {
                log_drop(p, e);
                next++;
                continue;
            }
            uint32_t nmsg = seg && !kgso ? nseg : 1;
            if (m + (int)nmsg > UDP_BATCH || ni + (int)nmsg > UDP_IOV)
                break;
            for (uint32_t s = 0; s < nmsg; s++, m++) {
                struct msghdr *mh = &mm[m].msg_hdr;
                memset(mh, 0, sizeof(*mh));
                sa[m] = dst;
                mh->msg_name = &sa[m];
                mh->msg_namelen = salen;
                mh->msg_iov = &iov[ni];
                mh->msg_iovlen = 1;
                owner[m] = next;
                npk[m] = s == 0;
                uint16_t gso = 0;
                if (nmsg == 1) {
                    iov[ni].iov_base = p->buf + p->off;
                    iov[ni++].iov_len = p->len;
                    if (seg) {
                        gso = p->gso_size; /* kernel GSO */
                    } else if (coalesce && next >= alone_until) {
                        /* following packets of this size to the same place ride along */
                        uint32_t used = 1, bytes = p->len;
                        while (next + 1 < n && ni < UDP_IOV && bytes == used * p->len &&
                               joins(pkts[next + 1], &dst, salen, p->len, used, bytes, maxlen, u)) {
                            const struct vnet_pkt *q = pkts[++next];
                            iov[ni].iov_base = q->buf + q->off;
                            iov[ni++].iov_len = q->len;
                            used++;
                            bytes += q->len;
                        }
                        if (used > 1) {
                            mh->msg_iovlen = used;
                            npk[m] = (int)used;
                            gso = (uint16_t)p->len;
                        }
                    }
                } else { /* cut here: one message per segment, same buffer */
                    uint32_t o = s * p->gso_size;
                    iov[ni].iov_base = p->buf + p->off + o;
                    iov[ni++].iov_len = p->len - o < p->gso_size ? p->len - o : p->gso_size;
                }
                if (gso) {
                    mh->msg_control = cm[m].buf;
                    mh->msg_controllen = sizeof(cm[m].buf);
                    struct cmsghdr *c = CMSG_FIRSTHDR(mh);
                    c->cmsg_level = SOL_UDP;
                    c->cmsg_type = UDP_SEGMENT;
                    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                    memcpy(CMSG_DATA(c), &gso, sizeof(uint16_t));
                }
            }
            next++;
        }
        if (m == 0) { /* only dropped packets */
            done = next;
            continue;
        }
        /* send messages [k, m); a failing message is retried alone to learn its errno */
        int k = 0;
        while (k < m) {
            int r = sendmmsg(fd, mm + k, (unsigned)(m - k), MSG_DONTWAIT);
            if (r > 0) {
                k += r;
                continue;
            }
            int e = errno;
            if (r == 0)
                e = EAGAIN;
            if (e == EINTR)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == ENOMEM || e == EBADF ||
                e == ENOTSOCK || e == EFAULT) {
                /* stop here. A packet cut in software and partly sent counts as taken (its
                 * other datagrams are lost, as UDP may lose them anyway). */
                int taken = owner[k] + (npk[k] == 0);
                if (taken > 0 || (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == ENOMEM))
                    return taken;
                return err_from_errno(e);
            }
            if (npk[k] > 1) {
                /* a coalesced message failed: send its packets one by one, so that each gets
                 * its own fate (EIO: the route's device cannot checksum, so no GSO there) */
                if (e == EIO) {
                    coalesce = false;
                    if (!__atomic_exchange_n(&u->no_coalesce, true, __ATOMIC_RELAXED))
                        vnet_log(VNET_LOG_INFO, MOD,
                                 "tx: the kernel refuses UDP GSO on this route (%s): datagrams "
                                 "go one by one from now on",
                                 strerror(e));
                }
                alone_until = owner[k] + npk[k];
                break;
            }
            /* this packet only: drop all its messages */
            int bad = owner[k];
            log_drop(pkts[bad], e);
            k++;
            while (k < m && npk[k] == 0 && owner[k] == bad)
                k++;
        }
        done = k < m ? owner[k] : next;
    }
    return done;
}

static int udp_fd(void *state, unsigned queue)
{
    const struct udp_port *u = state;
    return queue < u->nq ? u->fds[queue] : VNET_EINVAL;
}

static int udp_get_info(void *state, struct vnet_port_info *out)
{
    const struct udp_port *u = state;
    union sa sa;
    socklen_t len = sizeof(sa);
    out->caps = u->caps;
    out->queues = u->nq;
    if (getsockname(u->fds[0], &sa.sa, &len) < 0)
        return err_from_errno(errno);
    return vnet_endpoint_from_sockaddr(&sa.sa, &out->local);
}

const struct vnet_port_ops vnet_port_udp_ops = {
    .version = VNET_PORT_OPS_VERSION,
    .name = "udp",
    .open = udp_open,
    .close = udp_close,
    .rx_burst = udp_rx,
    .tx_burst = udp_tx,
    .fd = udp_fd,
    .get_info = udp_get_info,
};
