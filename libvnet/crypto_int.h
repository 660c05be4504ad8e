/* Helpers shared by the three parts of the crypto module (crypto_keys.c, crypto_channel.c,
 * crypto_seal.c). Private to libvnet. */
#ifndef VNET_CRYPTO_INT_H
#define VNET_CRYPTO_INT_H

#include "vnet/error.h"

#include <sodium.h>
#include <stdint.h>

/* The control protocol version hashed into every handshake transcript. It is VNET_PROTO_VERSION
 * (vnet/proto.h), which the crypto files do not include: session.c checks the two are equal. */
#define VNET__HS_PROTO_VERSION 1u

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
