/* libvnet: value types every layer shares, with parse and format functions.
 *
 * MAC addresses, 24-bit VXLAN network identifiers (VNI), IP addresses (IPv4 or IPv6), IP
 * prefixes and physical endpoints (IP address + UDP port). All are plain values the caller
 * owns; none allocates.
 *
 * Parsers take a NUL-terminated string and return 0, or VNET_EINVAL for text that is not
 * exactly one well-formed value (no leading or trailing junk), or VNET_ERANGE for a number
 * that is out of range. On error *out is left untouched. Formatters write a NUL-terminated
 * string and return its length, or VNET_ENOSPC when @len is too small (the buffer then holds
 * an empty string).
 *
 * Thread-safety: all functions are thread-safe.
 */
#ifndef VNET_TYPES_H
#define VNET_TYPES_H

#include "vnet/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- MAC addresses ---- */

struct vnet_mac {
    uint8_t b[6];
};

#define VNET_MAC_STRLEN 18 /* "01:23:45:67:89:ab" plus NUL */

/* Accepts "01:23:45:67:89:ab" and "01-23-45-67-89-ab" (either case). */
VNET_API int vnet_mac_parse(const char *s, struct vnet_mac *out);
VNET_API int vnet_mac_format(const struct vnet_mac *mac, char *buf, size_t len);

static inline bool vnet_mac_is_multicast(const struct vnet_mac *m)
{
    return (m->b[0] & 1) != 0; /* includes broadcast */
}
static inline bool vnet_mac_is_broadcast(const struct vnet_mac *m)
{
    return (m->b[0] & m->b[1] & m->b[2] & m->b[3] & m->b[4] & m->b[5]) == 0xff;
}
static inline bool vnet_mac_is_zero(const struct vnet_mac *m)
{
    return (m->b[0] | m->b[1] | m->b[2] | m->b[3] | m->b[4] | m->b[5]) == 0;
}
static inline bool vnet_mac_eq(const struct vnet_mac *a, const struct vnet_mac *b)
{
    return a->b[0] == b->b[0] && a->b[1] == b->b[1] && a->b[2] == b->b[2] && a->b[3] == b->b[3] &&
           a->b[4] == b->b[4] && a->b[5] == b->b[5];
}

/* ---- VXLAN network identifiers ---- */

#define VNET_VNI_MAX 0xFFFFFFu /* 24 bits (RFC 7348) */

/* Decimal 0..16777215, no sign, no leading '+' or spaces. */
VNET_API int vnet_vni_parse(const char *s, uint32_t *out);
static inline bool vnet_vni_valid(uint64_t vni)
{
    return vni <= VNET_VNI_MAX;
}

/* ---- IP addresses ---- */

enum { VNET_AF_NONE = 0, VNET_AF_INET = 4, VNET_AF_INET6 = 6 };

/* An IPv4 address uses addr[0..3] and leaves the rest zero. */
struct vnet_ip {
    uint8_t family; /* VNET_AF_INET or VNET_AF_INET6 */
    uint8_t addr[16];
};

#define VNET_IP_STRLEN 46 /* INET6_ADDRSTRLEN */

VNET_API int vnet_ip_parse(const char *s, struct vnet_ip *out);
VNET_API int vnet_ip_format(const struct vnet_ip *ip, char *buf, size_t len);
VNET_API bool vnet_ip_eq(const struct vnet_ip *a, const struct vnet_ip *b);

/* An address and prefix length, "10.0.0.1/24" or "fd00::1/64". The address keeps its host
 * bits (it names an interface address); vnet_prefix_contains() masks them. */
struct vnet_prefix {
    struct vnet_ip ip;
    uint8_t len; /* 0..32 or 0..128 */
};

#define VNET_PREFIX_STRLEN (VNET_IP_STRLEN + 4)

VNET_API int vnet_prefix_parse(const char *s, struct vnet_prefix *out);
VNET_API int vnet_prefix_format(const struct vnet_prefix *p, char *buf, size_t len);
VNET_API bool vnet_prefix_contains(const struct vnet_prefix *p, const struct vnet_ip *ip);

/* ---- Physical endpoints ---- */

/* The underlay address of a node: IP address and UDP port (host byte order). */
struct vnet_endpoint {
    struct vnet_ip ip;
    uint16_t port;
};

#define VNET_ENDPOINT_STRLEN (VNET_IP_STRLEN + 8)

/* "192.0.2.1:4789" or "[2001:db8::1]:4789". The port must be 1..65535. */
VNET_API int vnet_endpoint_parse(const char *s, struct vnet_endpoint *out);
VNET_API int vnet_endpoint_format(const struct vnet_endpoint *ep, char *buf, size_t len);
VNET_API bool vnet_endpoint_eq(const struct vnet_endpoint *a, const struct vnet_endpoint *b);

/* vnet_endpoint_resolve() flag: port 0 allowed (a listener's "any free port"). */
#define VNET_RESOLVE_PORT0 1u

/**
 * Resolve "HOST:PORT" to endpoints. HOST is an IPv4 address, an IPv6 address in brackets
 * ("[::1]:7701") or a host name, looked up with getaddrinfo(3) (/etc/hosts, DNS: this call
 * may block for as long as the name service takes). PORT is decimal, 1..65535, or 0..65535
 * with VNET_RESOLVE_PORT0 in @flags.
 * Ownership: fills @out[0..@max); @s is only read during the call; @err (may be NULL) gets
 * one line naming @s and what is wrong with it.
 * Returns: the number of endpoints (1..@max; a name's IPv4 addresses before its IPv6 ones,
 * each once), VNET_EINVAL (not HOST:PORT, a bad port, IPv6 without brackets), VNET_ENOENT (the
 * name has no address), VNET_EAGAIN (the name service failed for now: try again later),
 * VNET_ENOMEM or VNET_EIO.
 * Thread-safety: thread-safe.
 */
VNET_API int vnet_endpoint_resolve(const char *s, unsigned flags, struct vnet_endpoint *out,
                                   size_t max, char *err, size_t errlen);

struct sockaddr;
struct sockaddr_storage;
/* Fill @ss from @ep; returns the sockaddr length, or VNET_EINVAL for a bad family. */
VNET_API int vnet_endpoint_to_sockaddr(const struct vnet_endpoint *ep, struct sockaddr_storage *ss);
/* Fill @out from an AF_INET or AF_INET6 sockaddr (a v4-mapped IPv6 address becomes IPv4). */
VNET_API int vnet_endpoint_from_sockaddr(const struct sockaddr *sa, struct vnet_endpoint *out);

#ifdef __cplusplus
}
#endif
#endif
