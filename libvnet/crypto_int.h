/* Helpers shared by the three parts of the crypto module (crypto_keys.c, crypto_channel.c,
 * crypto_seal.c). Private to libvnet. */
#ifndef VNET_CRYPTO_INT_H
#define VNET_CRYPTO_INT_H

#include "vnet/error.h"

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

/* The control protocol version hashed into every handshake transcript. It is VNET_PROTO_VERSION
 * (vnet/proto.h), which the crypto files do not include: session.c checks the two are equal. */
#define VNET__HS_PROTO_VERSION 3u

struct vnet_hs;
/* Hash @len bytes of @data (e.g. a digest of the plaintext WELCOME) into the handshake
 * transcript before its second message: the responder calls it between vnet_hs_read_hello()
 * and vnet_hs_accept(), the initiator between vnet_hs_write_hello() and vnet_hs_read_welcome()
 * with the same bytes, and the WELCOME's key confirmation then authenticates them (a
 * difference fails vnet_hs_read_welcome() with VNET_EACCES). Returns 0, VNET_EINVAL or
 * VNET_ESTATE (another point of the handshake). */
int vnet__hs_bind(struct vnet_hs *hs, const void *data, size_t len);

static inline void vnet__be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t vnet__rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* X25519; libsodium refuses (returns -1) when the result is all zero, i.e. the peer key is of
 * low order and the "shared secret" would be known to everyone. */
static inline int vnet__dh(uint8_t out[32], const uint8_t sec[32], const uint8_t pub[32])
{
    return crypto_scalarmult(out, sec, pub) == 0 ? 0 : VNET_EACCES;
}

#endif
