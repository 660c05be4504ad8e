/* Network device helpers over rtnetlink and interface ioctls.
 *
 * Reads (ifindex, MTU, MAC) use ioctls on a throw-away datagram socket: one syscall, and the
 * socket pins the namespace of the calling thread. Changes go through rtnetlink, because
 * RTM_NEWLINK changes one attribute atomically (SIOCSIFFLAGS would be a read-modify-write of
 * all flags) and because addresses and neighbours have no ioctl for IPv6. Each call opens its
 * own sockets, so the helpers are thread-safe without locks; they are not meant for hot paths.
 */
#include "vnet/netdev.h"
#include "vnet/error.h"
#include "vnet/log.h"

#include <errno.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

#ifndef NUD_VALID /* kernel-internal: the states in which an entry holds a usable address */
#define NUD_VALID (NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY)
#endif

#define MOD "netdev"

/* errno to a VNET_E* code: keep what error.h names, fold the device-lookup errors into
 * VNET_ENOENT, pass anything else through as a negative errno. */
static int err_from_errno(int e)
{
    switch (e) {
    case ENODEV:
    case ENXIO:
        return VNET_ENOENT;
    case EOPNOTSUPP:
        return VNET_ENOTSUP;
    case 0:
        return VNET_EIO;
    default:
        return -e;
    }
}

static int check_name(const char *ifname)
{
    if (!ifname || !ifname[0] || strnlen(ifname, IFNAMSIZ) >= IFNAMSIZ)
        return VNET_EINVAL;
    return 0;
}

/* One SIOCGIF* ioctl on @ifname; @ifr is filled in. */
static int ifreq_get(const char *ifname, unsigned long req, struct ifreq *ifr)
{
    int rc = check_name(ifname);
    if (rc)
        return rc;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return err_from_errno(errno);
    memset(ifr, 0, sizeof(*ifr));
    memcpy(ifr->ifr_name, ifname, strlen(ifname) + 1);
    rc = ioctl(s, req, ifr) < 0 ? err_from_errno(errno) : 0;
    close(s);
    return rc;
}

int vnet_netdev_ifindex(const char *ifname)
{
    struct ifreq ifr;
    int rc = ifreq_get(ifname, SIOCGIFINDEX, &ifr);
    return rc ? rc : ifr.ifr_ifindex;
}

int vnet_netdev_get_mtu(const char *ifname, uint32_t *mtu)
{
    struct ifreq ifr;
    if (!mtu)
        return VNET_EINVAL;
    int rc = ifreq_get(ifname, SIOCGIFMTU, &ifr);
    if (!rc)
        *mtu = (uint32_t)ifr.ifr_mtu;
    return rc;
}

int vnet_netdev_get_mac(const char *ifname, struct vnet_mac *mac)
{
    struct ifreq ifr;
    if (!mac)
        return VNET_EINVAL;
    int rc = ifreq_get(ifname, SIOCGIFHWADDR, &ifr);
    if (!rc)
        memcpy(mac->b, ifr.ifr_hwaddr.sa_data, 6);
    return rc;
}

/* ---- rtnetlink ---- */

struct nl_req {
    struct nlmsghdr h;
    union {
        struct ifinfomsg ifi;
        struct ifaddrmsg ifa;
        struct ndmsg nd;
    } u;
    char attrs[128];
};

static void nl_init(struct nl_req *r, uint16_t type, uint16_t flags, size_t body)
{
    memset(r, 0, sizeof(*r));
    r->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(body);
    r->h.nlmsg_type = type;
    r->h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
}

static void nl_attr(struct nl_req *r, uint16_t type, const void *data, size_t len)
{
    size_t off = NLMSG_ALIGN(r->h.nlmsg_len);
    struct rtattr *a = (struct rtattr *)((char *)r + off);
    /* the requests built here are a handful of small attributes: overflow is a bug */
    if (off + RTA_SPACE(len) > sizeof(*r))
        return;
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    r->h.nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
}

/* Log the extended-ACK message that follows a struct nlmsgerr, when there is one. */
static void nl_log_extack(const struct nlmsghdr *h, int err)
{
    if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
        return;
    size_t off = NLMSG_LENGTH(sizeof(struct nlmsgerr));
    if (off > h->nlmsg_len)
        return;
    const char *p = (const char *)h + off;
    size_t left = h->nlmsg_len - off;
    while (left >= sizeof(struct nlattr)) {
        const struct nlattr *a = (const struct nlattr *)p;
        if (a->nla_len < sizeof(*a) || a->nla_len > left)
            break;
        if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && a->nla_len > NLA_HDRLEN) {
            vnet_log(VNET_LOG_DEBUG, MOD, "kernel: %.*s (%s)", (int)(a->nla_len - NLA_HDRLEN - 1),
                     p + NLA_HDRLEN, strerror(-err));
            return;
        }
        size_t step = NLA_ALIGN(a->nla_len);
        if (step >= left)
            break;
        p += step;
        left -= step;
    }
}

/* What nl_exchange() does with each message of the answer other than NLMSG_ERROR: 0 to read
 * on, 1 when the answer is complete (success), a negative error to stop with it. */
typedef int (*nl_msg_fn)(const struct nlmsghdr *h, void *arg);

/* Send @req and read the answer, handing each of its messages to @fn. An NLMSG_ERROR ends it:
 * its error, or with @ack_ok an ACK as success (else an ACK where a reply was expected). */
static int nl_exchange(struct nl_req *req, bool ack_ok, nl_msg_fn fn, void *arg)
{
    static const int one = 1;
    union {
        char buf[16384];
        struct nlmsghdr align;
    } u;
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) {
        int e = errno;
        vnet_log(VNET_LOG_ERROR, MOD, "netlink socket: %s", strerror(e));
        return err_from_errno(e);
    }
    (void)setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    (void)setsockopt(s, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    struct timeval tv = {.tv_sec = 5};
    (void)setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    req->h.nlmsg_seq = 1;
    int rc;
    if (sendto(s, req, req->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
        rc = err_from_errno(errno);
        goto out;
    }
    for (;;) {
        ssize_t n = recv(s, u.buf, sizeof(u.buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = errno == EAGAIN ? VNET_ETIMEDOUT : err_from_errno(errno);
            goto out;
        }
        size_t left = (size_t)n;
        for (struct nlmsghdr *h = &u.align; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != req->h.nlmsg_seq)
                continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e))) {
                    rc = VNET_EPROTO;
                } else if (e->error) {
                    nl_log_extack(h, e->error);
                    rc = err_from_errno(-e->error);
                } else {
                    rc = ack_ok ? 0 : VNET_EPROTO;
                }
                goto out;
            }
            if ((rc = fn ? fn(h, arg) : 0) != 0) {
                rc = rc > 0 ? 0 : rc;
                goto out;
            }
        }
    }
out:
    close(s);
    return rc;
}

struct nl_want {
    uint16_t type;
    void *resp;
    size_t len;
};

static int want_one(const struct nlmsghdr *h, void *arg)
{
    struct nl_want *w = arg;
    if (h->nlmsg_type != w->type)
        return 0;
    if (h->nlmsg_len > w->len)
        return VNET_EPROTO;
    memcpy(w->resp, h, h->nlmsg_len);
    return 1;
}

/* Send @req and wait for the answer. A request with NLM_F_ACK ends with an NLMSG_ERROR (0 on
 * success). A "get" without it ends with the first message of type @want, copied into @resp. */
static int nl_talk(struct nl_req *req, uint16_t want, void *resp, size_t resp_len)
{
    struct nl_want w = {want, resp, resp_len};
    return nl_exchange(req, want == 0, want ? want_one : NULL, &w);
}

/* RTM_NEWLINK on an existing device, found by name, with at most one attribute. */
static int link_change(const char *ifname, unsigned flags, unsigned change, uint16_t attr,
                       const void *data, size_t len)
{
    struct nl_req r;
    int rc = check_name(ifname);
    if (rc)
        return rc;
    nl_init(&r, RTM_NEWLINK, NLM_F_ACK, sizeof(struct ifinfomsg));
    r.u.ifi.ifi_family = AF_UNSPEC;
    r.u.ifi.ifi_flags = flags;
    r.u.ifi.ifi_change = change;
    nl_attr(&r, IFLA_IFNAME, ifname, strlen(ifname) + 1);
    if (attr)
        nl_attr(&r, attr, data, len);
    return nl_talk(&r, 0, NULL, 0);
}

int vnet_netdev_set_up(const char *ifname, bool up)
{
    return link_change(ifname, up ? IFF_UP : 0, IFF_UP, 0, NULL, 0);
}

int vnet_netdev_set_mtu(const char *ifname, uint32_t mtu)
{
    if (mtu == 0 || mtu > INT32_MAX)
        return VNET_EINVAL;
    return link_change(ifname, 0, 0, IFLA_MTU, &mtu, sizeof(mtu));
}

int vnet_netdev_set_mac(const char *ifname, const struct vnet_mac *mac)
{
    if (!mac || vnet_mac_is_zero(mac) || vnet_mac_is_multicast(mac))
        return VNET_EINVAL;
    return link_change(ifname, 0, 0, IFLA_ADDRESS, mac->b, 6);
}

/* RTM_NEWADDR / RTM_DELADDR of @p on @ifname. */
static int addr_change(const char *ifname, const struct vnet_prefix *p, uint16_t type,
                       uint16_t flags)
{
    struct nl_req r;
    if (!p)
        return VNET_EINVAL;
    size_t alen;
    if (p->ip.family == VNET_AF_INET && p->len <= 32)
        alen = 4;
    else if (p->ip.family == VNET_AF_INET6 && p->len <= 128)
        alen = 16;
    else
        return VNET_EINVAL;
    int ifindex = vnet_netdev_ifindex(ifname);
    if (ifindex < 0)
        return ifindex;
    nl_init(&r, type, NLM_F_ACK | flags, sizeof(struct ifaddrmsg));
    r.u.ifa.ifa_family = alen == 4 ? AF_INET : AF_INET6;
    r.u.ifa.ifa_prefixlen = p->len;
    r.u.ifa.ifa_index = (unsigned)ifindex;
    r.u.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
    if (alen == 4) {
        nl_attr(&r, IFA_LOCAL, p->ip.addr, 4);
        nl_attr(&r, IFA_ADDRESS, p->ip.addr, 4);
    } else {
        r.u.ifa.ifa_flags = type == RTM_NEWADDR ? IFA_F_NODAD : 0;
        nl_attr(&r, IFA_ADDRESS, p->ip.addr, 16);
    }
    return nl_talk(&r, 0, NULL, 0);
}

int vnet_netdev_add_addr(const char *ifname, const struct vnet_prefix *p)
{
    int rc = addr_change(ifname, p, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    return rc == VNET_EEXIST ? 0 : rc;
}

int vnet_netdev_neigh_get(int ifindex, const struct vnet_ip *ip, struct vnet_mac *mac)
{
    struct nl_req r;
    union {
        char buf[512];
        struct nlmsghdr h;
    } resp;
    if (!ip || !mac || ifindex <= 0)
        return VNET_EINVAL;
    if (ip->family != VNET_AF_INET && ip->family != VNET_AF_INET6)
        return VNET_EINVAL;
    size_t alen = ip->family == VNET_AF_INET ? 4 : 16;
    nl_init(&r, RTM_GETNEIGH, 0, sizeof(struct ndmsg));
    r.u.nd.ndm_family = alen == 4 ? AF_INET : AF_INET6;
    r.u.nd.ndm_ifindex = ifindex;
    nl_attr(&r, NDA_DST, ip->addr, alen);
    int rc = nl_talk(&r, RTM_NEWNEIGH, &resp, sizeof(resp));
    if (rc)
        return rc;
    const struct ndmsg *nd = NLMSG_DATA(&resp.h);
    if (resp.h.nlmsg_len < NLMSG_LENGTH(sizeof(*nd)))
        return VNET_EPROTO;
    if (!(nd->ndm_state & NUD_VALID))
        return VNET_ENOENT;
    unsigned left = resp.h.nlmsg_len - NLMSG_LENGTH(sizeof(*nd));
    for (const struct rtattr *a =
             (const struct rtattr *)((const char *)nd + NLMSG_ALIGN(sizeof(*nd)));
         RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) {
            memcpy(mac->b, RTA_DATA(a), 6);
            return 0;
        }
    }
    return VNET_ENOENT; /* NOARP entries without an address */
}

int vnet_netdev_get_up(const char *ifname, bool *up)
{
    struct ifreq ifr;
    if (!up)
        return VNET_EINVAL;
    int rc = ifreq_get(ifname, SIOCGIFFLAGS, &ifr);
    if (!rc)
        *up = (ifr.ifr_flags & IFF_UP) != 0;
    return rc;
}

int vnet_netdev_del_addr(const char *ifname, const struct vnet_prefix *p)
{
    int rc = addr_change(ifname, p, RTM_DELADDR, 0);
    return rc == -EADDRNOTAVAIL ? 0 : rc;
}

/* One address of a RTM_GETADDR dump, when it belongs to @ifindex and passes @flags. */
static bool addr_from_msg(const struct nlmsghdr *h, int ifindex, unsigned flags,
                          struct vnet_prefix *p)
{
    const struct ifaddrmsg *ifa = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)) || (int)ifa->ifa_index != ifindex)
        return false;
    if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
        return false;
    uint32_t aflags = ifa->ifa_flags;
    const void *local = NULL, *address = NULL;
    unsigned left = h->nlmsg_len - NLMSG_LENGTH(sizeof(*ifa));
    size_t alen = ifa->ifa_family == AF_INET ? 4 : 16;
    for (const struct rtattr *a =
             (const struct rtattr *)((const char *)ifa + NLMSG_ALIGN(sizeof(*ifa)));
         RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        if (a->rta_type == IFA_LOCAL && RTA_PAYLOAD(a) == alen)
            local = RTA_DATA(a);
        else if (a->rta_type == IFA_ADDRESS && RTA_PAYLOAD(a) == alen)
            address = RTA_DATA(a);
        else if (a->rta_type == IFA_FLAGS && RTA_PAYLOAD(a) == 4)
            memcpy(&aflags, RTA_DATA(a), 4);
    }
    if ((flags & VNET_NETDEV_ADDR_GLOBAL) &&
        (ifa->ifa_scope != RT_SCOPE_UNIVERSE ||
         (aflags & (IFA_F_TENTATIVE | IFA_F_DEPRECATED | IFA_F_DADFAILED))))
        return false;
    /* IPv4: IFA_LOCAL is the address (IFA_ADDRESS the peer's on point-to-point links) */
    const void *ip = local ? local : address;
    if (!ip)
        return false;
    memset(p, 0, sizeof(*p));
    p->ip.family = ifa->ifa_family == AF_INET ? VNET_AF_INET : VNET_AF_INET6;
    memcpy(p->ip.addr, ip, alen);
    p->len = ifa->ifa_prefixlen;
    return true;
}

struct addr_list {
    int ifindex;
    unsigned flags;
    struct vnet_prefix *out;
    size_t max, count;
};

static int addr_one(const struct nlmsghdr *h, void *arg)
{
    struct addr_list *l = arg;
    struct vnet_prefix p;
    if (h->nlmsg_type == NLMSG_DONE)
        return 1;
    if (h->nlmsg_type == RTM_NEWADDR && addr_from_msg(h, l->ifindex, l->flags, &p)) {
        if (l->count < l->max)
            l->out[l->count] = p;
        l->count++;
    }
    return 0;
}

int vnet_netdev_list_addrs(const char *ifname, struct vnet_prefix *out, size_t max, unsigned flags)
{
    if (!out && max)
        return VNET_EINVAL;
    int ifindex = vnet_netdev_ifindex(ifname);
    if (ifindex < 0)
        return ifindex;
    struct nl_req r;
    nl_init(&r, RTM_GETADDR, NLM_F_DUMP, sizeof(struct ifaddrmsg));
    r.u.ifa.ifa_family = AF_UNSPEC;
    r.u.ifa.ifa_index = (unsigned)ifindex;
    struct addr_list l = {ifindex, flags, out, max, 0};
    int rc = nl_exchange(&r, false, addr_one, &l);
    if (rc)
        return rc;
    return l.count > INT32_MAX ? VNET_ERANGE : (int)l.count;
}
