/* libvnet internals of the node and its agent (node_util.c): the controller's address as
 * HOST:PORT, the pinned controller key kept beside a node's key file, and the choice of an
 * underlay interface's primary address. Pure or file-only helpers, so the unit tests reach
 * them without a loop or a namespace. */
#ifndef VNET_NODE_UTIL_INT_H
#define VNET_NODE_UTIL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/crypto.h"
#include "vnet/token.h"
#include "vnet/types.h"

#define VNET__HOST_MAX 254 /* a DNS name of 253 characters, or an address literal, plus NUL */

/* Split "HOST:PORT" or "[IPv6]:PORT": HOST is an IPv4 address or a DNS name (letters, digits,
 * '-' and '.', labels of 1 to 63 characters, 253 at most), PORT 1..65535. @host receives the
 * host without brackets. Returns 0 or VNET_EINVAL (nothing written then). */
int vnet__hostport_split(const char *s, char host[VNET__HOST_MAX], uint16_t *port);

/* What a node keeps beside its key file after enrolling: the controller key it pinned, for
 * the node key that enrolled, and the hash of the join secret that was used (all zero when
 * none), so that a restart with the same --join knows the token is spent by this very key. */
struct vnet__pin {
    uint8_t node_pub[VNET_KEY_LEN];
    uint8_t ctl_pub[VNET_KEY_LEN];
    uint8_t join_hash[VNET_TOKEN_HASH_BYTES];
};

/* The pin file's path: KEYFILE ".controller" into @out. Returns 0 or VNET_EINVAL (too long). */
int vnet__pin_path(const char *key_file, char *out, size_t outlen);

/* Read the pin file @path (a secret file: 0600, one line "vnet-pin-v1 NODE CTL JOIN\n" with
 * the keys in vnet_pubkey_format's form and JOIN the join hash the same way, or "-").
 * Returns 0, VNET_ENOENT when absent, VNET_EPERM when group or others may access it,
 * VNET_EINVAL when it is not such a line (the reason in @err). */
int vnet__pin_read(const char *path, struct vnet__pin *out, char *err, size_t errlen);

/* Write @pin to @path atomically (a temporary file, mode 0600, fsync, rename, fsync of the
 * directory): the file is the old one or the new one, even after a crash. Returns 0 or a
 * negative error with the reason in @err. */
int vnet__pin_write(const char *path, const struct vnet__pin *pin, char *err, size_t errlen);

/* The primary address among an interface's global addresses @v[0..n): the first IPv4 one,
 * else the first IPv6 one. Returns 0 or VNET_ENOENT (none). */
int vnet__primary_addr(const struct vnet_prefix *v, size_t n, struct vnet_ip *out);

#endif
