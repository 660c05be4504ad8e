/* Parse and format the shared value types. Parsers are strict: the whole string must be one
 * value, so "10.0.0.1:80x" or " 5" are errors rather than partially read. */
#include "vnet/types.h"
#include "vnet/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int vnet_mac_parse(const char *s, struct vnet_mac *out)
{
    struct vnet_mac m;
    if (!s || !out || strlen(s) != 17)
        return VNET_EINVAL;
    char sep = s[2];
    if (sep != ':' && sep != '-')
        return VNET_EINVAL;
    for (int i = 0; i < 6; i++) {
        const char *p = s + 3 * i;
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0)
            return VNET_EINVAL;
        if (i < 5 && p[2] != sep)
            return VNET_EINVAL;
        m.b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = m;
    return 0;
}

static int finish(char *buf, size_t len, int n)
{
    if (n < 0 || (size_t)n >= len) {
        if (len)
            buf[0] = '\0';
        return VNET_ENOSPC;
    }
    return n;
}

int vnet_mac_format(const struct vnet_mac *m, char *buf, size_t len)
{
    if (!m || !buf)
        return VNET_EINVAL;
    int n = snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m->b[0], m->b[1], m->b[2], m->b[3],
                     m->b[4], m->b[5]);
    return finish(buf, len, n);
}

/* Strict unsigned decimal: digits only, no sign, at most @max. */
static int parse_udec(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 20)
        return n == 0 ? VNET_EINVAL : VNET_ERANGE;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return VNET_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > max) {
            for (size_t j = i + 1; j < n; j++) /* junk after a big number is still junk */
                if (s[j] < '0' || s[j] > '9')
                    return VNET_EINVAL;
            return VNET_ERANGE;
        }
    }
    *out = v;
    return 0;
}

int vnet_vni_parse(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!s || !out)
        return VNET_EINVAL;
    int rc = parse_udec(s, strlen(s), VNET_VNI_MAX, &v);
    if (rc)
        return rc;
    *out = (uint32_t)v;
    return 0;
}

/* Parse exactly @n bytes of @s as an address (inet_pton wants a terminated string). */
static int ip_parse_n(const char *s, size_t n, struct vnet_ip *out)
{
    char tmp[VNET_IP_STRLEN];
    struct vnet_ip ip;
    if (n == 0 || n >= sizeof(tmp))
        return VNET_EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    memset(&ip, 0, sizeof(ip));
    if (memchr(tmp, ':', n)) {
        if (inet_pton(AF_INET6, tmp, ip.addr) != 1)
            return VNET_EINVAL;
        ip.family = VNET_AF_INET6;
    } else {
        if (inet_pton(AF_INET, tmp, ip.addr) != 1)
            return VNET_EINVAL;
        ip.family = VNET_AF_INET;
    }
    *out = ip;
    return 0;
}

int vnet_ip_parse(const char *s, struct vnet_ip *out)
{
    if (!s || !out)
        return VNET_EINVAL;
    return ip_parse_n(s, strlen(s), out);
}

int vnet_ip_format(const struct vnet_ip *ip, char *buf, size_t len)
{
    char tmp[VNET_IP_STRLEN];
    if (!ip || !buf)
        return VNET_EINVAL;
    int af = ip->family == VNET_AF_INET ? AF_INET : ip->family == VNET_AF_INET6 ? AF_INET6 : -1;
    if (af < 0)
        return VNET_EINVAL;
    if (!inet_ntop(af, ip->addr, tmp, sizeof(tmp)))
        return VNET_EINVAL;
    return finish(buf, len, snprintf(buf, len, "%s", tmp));
}

bool vnet_ip_eq(const struct vnet_ip *a, const struct vnet_ip *b)
{
    if (a->family != b->family)
        return false;
    return memcmp(a->addr, b->addr, a->family == VNET_AF_INET ? 4 : 16) == 0;
}

int vnet_prefix_parse(const char *s, struct vnet_prefix *out)
{
    struct vnet_prefix p;
    uint64_t len;
    if (!s || !out)
        return VNET_EINVAL;
    const char *slash = strchr(s, '/');
    if (!slash)
        return VNET_EINVAL;
    int rc = ip_parse_n(s, (size_t)(slash - s), &p.ip);
    if (rc)
        return rc;
    uint64_t max = p.ip.family == VNET_AF_INET ? 32 : 128;
    rc = parse_udec(slash + 1, strlen(slash + 1), max, &len);
    if (rc)
        return rc;
    p.len = (uint8_t)len;
    *out = p;
    return 0;
}

int vnet_prefix_format(const struct vnet_prefix *p, char *buf, size_t len)
{
    char tmp[VNET_IP_STRLEN];
    if (!p || !buf)
        return VNET_EINVAL;
    int rc = vnet_ip_format(&p->ip, tmp, sizeof(tmp));
    if (rc < 0)
        return rc;
    return finish(buf, len, snprintf(buf, len, "%s/%u", tmp, p->len));
}

bool vnet_prefix_contains(const struct vnet_prefix *p, const struct vnet_ip *ip)
{
    if (p->ip.family != ip->family)
        return false;
    unsigned bits = p->len, max = ip->family == VNET_AF_INET ? 32 : 128;
    if (bits > max)
        return false;
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(p->ip.addr, ip->addr, full) != 0)
        return false;
    if (rest) {
        uint8_t mask = (uint8_t)(0xff << (8 - rest));
        if ((p->ip.addr[full] & mask) != (ip->addr[full] & mask))
            return false;
    }
    return true;
}

int vnet_endpoint_parse(const char *s, struct vnet_endpoint *out)
{
    struct vnet_endpoint ep;
    const char *host, *port;
    size_t hostlen;
    uint64_t pv;
    int rc;
    if (!s || !out)
        return VNET_EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return VNET_EINVAL;
        host = s + 1;
        hostlen = (size_t)(close - host);
        port = close + 2;
        rc = ip_parse_n(host, hostlen, &ep.ip);
        if (rc)
            return rc;
        if (ep.ip.family != VNET_AF_INET6)
            return VNET_EINVAL; /* brackets are for IPv6 only */
    } else {
        const char *colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            return VNET_EINVAL; /* IPv6 needs brackets */
        host = s;
        hostlen = (size_t)(colon - s);
        port = colon + 1;
        rc = ip_parse_n(host, hostlen, &ep.ip);
        if (rc)
            return rc;
    }
    rc = parse_udec(port, strlen(port), 65535, &pv);
    if (rc)
        return rc;
    if (pv == 0)
        return VNET_ERANGE;
    ep.port = (uint16_t)pv;
    *out = ep;
    return 0;
}

int vnet_endpoint_format(const struct vnet_endpoint *ep, char *buf, size_t len)
{
    char tmp[VNET_IP_STRLEN];
    if (!ep || !buf)
        return VNET_EINVAL;
    int rc = vnet_ip_format(&ep->ip, tmp, sizeof(tmp));
    if (rc < 0)
        return rc;
    const char *fmt = ep->ip.family == VNET_AF_INET6 ? "[%s]:%u" : "%s:%u";
    return finish(buf, len, snprintf(buf, len, fmt, tmp, ep->port));
}

bool vnet_endpoint_eq(const struct vnet_endpoint *a, const struct vnet_endpoint *b)
{
    return a->port == b->port && vnet_ip_eq(&a->ip, &b->ip);
}

int vnet_endpoint_to_sockaddr(const struct vnet_endpoint *ep, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (ep->ip.family == VNET_AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(ep->port);
        memcpy(&sin->sin_addr, ep->ip.addr, 4);
        return (int)sizeof(*sin);
    }
    if (ep->ip.family == VNET_AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(ep->port);
        memcpy(&sin6->sin6_addr, ep->ip.addr, 16);
        return (int)sizeof(*sin6);
    }
    return VNET_EINVAL;
}

int vnet_endpoint_from_sockaddr(const struct sockaddr *sa, struct vnet_endpoint *out)
{
    struct vnet_endpoint ep;
    memset(&ep, 0, sizeof(ep));
    if (!sa || !out)
        return VNET_EINVAL;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        ep.ip.family = VNET_AF_INET;
        memcpy(ep.ip.addr, &sin->sin_addr, 4);
        ep.port = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            ep.ip.family = VNET_AF_INET;
            memcpy(ep.ip.addr, (const uint8_t *)&sin6->sin6_addr + 12, 4);
        } else {
            ep.ip.family = VNET_AF_INET6;
            memcpy(ep.ip.addr, &sin6->sin6_addr, 16);
        }
        ep.port = ntohs(sin6->sin6_port);
    } else {
        return VNET_EINVAL;
    }
    *out = ep;
    return 0;
}
