/* Join tokens: formatting, parsing and sealing (libsodium only). */
#include "vnet/token.h"
#include "vnet/error.h"

#include <sodium.h>
#include <string.h>

#define PREFIX "vnet1-"

_Static_assert(VNET_JOIN_SEALED_LEN == VNET_JOIN_SECRET_LEN + crypto_box_SEALBYTES,
               "sealed join secret size");

int vnet_join_token_format(const uint8_t ctl_pub[32], const uint8_t secret[VNET_JOIN_SECRET_LEN],
                           char *buf, size_t len)
{
    uint8_t raw[32 + VNET_JOIN_SECRET_LEN];
    char b64[sodium_base64_ENCODED_LEN(sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    if (sodium_init() < 0)
        return VNET_EIO;
    memcpy(raw, ctl_pub, 32);
    memcpy(raw + 32, secret, VNET_JOIN_SECRET_LEN);
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    size_t need = strlen(PREFIX) + strlen(b64);
    if (need + 1 > len) {
        sodium_memzero(b64, sizeof(b64));
        if (len)
            buf[0] = '\0';
        return VNET_ENOSPC;
    }
    memcpy(buf, PREFIX, strlen(PREFIX));
    memcpy(buf + strlen(PREFIX), b64, strlen(b64) + 1);
    sodium_memzero(b64, sizeof(b64));
    return (int)need;
}

int vnet_join_token_parse(const char *s, uint8_t ctl_pub[32], uint8_t secret[VNET_JOIN_SECRET_LEN])
{
    uint8_t raw[32 + VNET_JOIN_SECRET_LEN];
    size_t n = 0;
    const char *end = NULL;
    if (!s || strncmp(s, PREFIX, strlen(PREFIX)) != 0 || sodium_init() < 0)
        return VNET_EINVAL;
    s += strlen(PREFIX);
    if (sodium_base642bin(raw, sizeof(raw), s, strlen(s), NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != sizeof(raw) || *end != '\0')
        return VNET_EINVAL;
    memcpy(ctl_pub, raw, 32);
    memcpy(secret, raw + 32, VNET_JOIN_SECRET_LEN);
    sodium_memzero(raw, sizeof(raw));
    return 0;
}

int vnet_join_seal(const uint8_t ctl_pub[32], const uint8_t secret[VNET_JOIN_SECRET_LEN],
                   uint8_t out[VNET_JOIN_SEALED_LEN])
{
    if (sodium_init() < 0)
        return VNET_EIO;
    return crypto_box_seal(out, secret, VNET_JOIN_SECRET_LEN, ctl_pub) == 0 ? 0 : VNET_EINVAL;
}

void vnet_token_hash(const void *secret, size_t len, uint8_t out[VNET_TOKEN_HASH_BYTES])
{
    crypto_generichash(out, VNET_TOKEN_HASH_BYTES, secret, len, NULL, 0);
}

void vnet_token_random(uint8_t *out, size_t len)
{
    if (sodium_init() >= 0)
        randombytes_buf(out, len);
}
