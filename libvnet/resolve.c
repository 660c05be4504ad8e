/* "HOST:PORT" to endpoints: literal addresses parsed here, host names through getaddrinfo(3).
 * The controller's listeners and the subscriber client use it, so "localhost:7701" and
 * "ctl.example.net:7701" work wherever an address is given. */
#include "vnet/error.h"
#include "vnet/types.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void seterr(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a, b);
}

/* Split @s into @host and the port; 0 or VNET_EINVAL with @err naming what is wrong. */
static int split(const char *s, unsigned flags, char *host, size_t hostlen, uint16_t *port,
                 bool *bracketed, char *err, size_t errlen)
{
    const char *h = s, *colon;
    size_t hl;
    *bracketed = s[0] == '[';
    if (*bracketed) {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            seterr(err, errlen, "bad address '%s': want [IPv6]:PORT%s", s, "");
            return VNET_EINVAL;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            seterr(err, errlen, "bad address '%s': want HOST:PORT (no port given)%s", s, "");
            return VNET_EINVAL;
        }
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl)) {
            seterr(err, errlen, "bad address '%s': an IPv6 address goes in brackets, [%s]:PORT", s,
                   "ADDR");
            return VNET_EINVAL;
        }
    }
    if (hl == 0 || hl >= hostlen) {
        seterr(err, errlen, "bad address '%s': %s", s, hl ? "host name too long" : "no host");
        return VNET_EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    const char *p = colon + 1;
    unsigned long v = 0;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || p[digits] || digits > 5 || (v = strtoul(p, NULL, 10)) > 65535 ||
        (v == 0 && !(flags & VNET_RESOLVE_PORT0))) {
        seterr(err, errlen, "bad port in '%s': want %s", s,
               (flags & VNET_RESOLVE_PORT0) ? "0..65535 (0: any free port)" : "1..65535");
        return VNET_EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

static int add_unique(struct vnet_endpoint *out, size_t n, size_t max,
                      const struct vnet_endpoint *ep)
{
    for (size_t i = 0; i < n; i++)
        if (vnet_endpoint_eq(&out[i], ep))
            return (int)n;
    if (n < max)
        out[n++] = *ep;
    return (int)n;
}

int vnet_endpoint_resolve(const char *s, unsigned flags, struct vnet_endpoint *out, size_t max,
                          char *err, size_t errlen)
{
    char host[256];
    uint16_t port;
    bool bracketed;
    if (err && errlen)
        err[0] = '\0';
    if (!s || !out || max == 0) {
        seterr(err, errlen, "%s%s", "no address given", "");
        return VNET_EINVAL;
    }
    int rc = split(s, flags, host, sizeof(host), &port, &bracketed, err, errlen);
    if (rc)
        return rc;
    struct vnet_endpoint ep;
    memset(&ep, 0, sizeof(ep));
    if (vnet_ip_parse(host, &ep.ip) == 0) {
        if (bracketed != (ep.ip.family == VNET_AF_INET6)) {
            seterr(err, errlen, "bad address '%s': %s", s,
                   bracketed ? "brackets are for IPv6 addresses"
                             : "an IPv6 address goes in brackets, [ADDR]:PORT");
            return VNET_EINVAL;
        }
        ep.port = port;
        out[0] = ep;
        return 1;
    }
    if (bracketed) {
        seterr(err, errlen, "bad address '%s': '%s' is not an IPv6 address", s, host);
        return VNET_EINVAL;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM; /* one entry per address */
    int gai = getaddrinfo(host, NULL, &hints, &res);
    if (gai) {
        int e = errno;
        if (err && errlen)
            snprintf(err, errlen, "cannot resolve '%s': %s", host,
                     gai == EAI_SYSTEM ? strerror(e) : gai_strerror(gai));
        return gai == EAI_NONAME || gai == EAI_NODATA ? VNET_ENOENT
               : gai == EAI_AGAIN                     ? VNET_EAGAIN
               : gai == EAI_MEMORY                    ? VNET_ENOMEM
                                                      : VNET_EIO;
    }
    int n = 0;
    for (int pass = 0; pass < 2; pass++) /* IPv4 first: what "localhost" usually means */
        for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
            if (ai->ai_family == (pass ? AF_INET6 : AF_INET) &&
                vnet_endpoint_from_sockaddr(ai->ai_addr, &ep) == 0) {
                ep.port = port;
                n = add_unique(out, (size_t)n, max, &ep);
            }
    freeaddrinfo(res);
    if (n == 0) {
        seterr(err, errlen, "cannot resolve '%s': %s", host, "no IPv4 or IPv6 address");
        return VNET_ENOENT;
    }
    return n;
}
