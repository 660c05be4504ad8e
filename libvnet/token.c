/* Join and API tokens: formatting, parsing and sealing (libsodium only). */
#include "vnet/token.h"
#include "vnet/error.h"

#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#define PREFIX "vnet1-"

_Static_assert(VNET_JOIN_SEALED_LEN == VNET_JOIN_SECRET_LEN + 32 + crypto_box_SEALBYTES,
               "sealed join secret size");
_Static_assert(VNET_API_SEALED_LEN == VNET_API_TOKEN_LEN + 32 + crypto_box_SEALBYTES,
               "sealed API token size");
_Static_assert(VNET_JOIN_SECRET_LEN == VNET_API_TOKEN_LEN, "join secrets seal as API tokens");

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

/* Join secrets are sealed exactly as API tokens are: secret || the handshake's static key. */
int vnet_join_seal(const uint8_t ctl_pub[32], const uint8_t secret[VNET_JOIN_SECRET_LEN],
                   const uint8_t node_pub[32], uint8_t out[VNET_JOIN_SEALED_LEN])
{
    return vnet_api_token_seal(ctl_pub, secret, node_pub, out);
}

int vnet_join_open(const uint8_t ctl_pub[32], const uint8_t ctl_sec[32], const uint8_t *in,
                   size_t len, uint8_t secret[VNET_JOIN_SECRET_LEN], uint8_t node_pub[32])
{
    return vnet_api_token_open(ctl_pub, ctl_sec, in, len, secret, node_pub);
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

/* ---- API tokens ---- */

#define API_PREFIX "vnetapi1-"

_Static_assert(VNET_API_SEALED_LEN == VNET_API_TOKEN_LEN + 32 + crypto_box_SEALBYTES,
               "sealed API token size");
_Static_assert(VNET_API_TOKEN_STRLEN ==
                   sizeof(API_PREFIX) - 1 +
                       sodium_base64_ENCODED_LEN(VNET_API_TOKEN_LEN,
                                                 sodium_base64_VARIANT_URLSAFE_NO_PADDING),
               "API token length");

int vnet_api_token_format(const uint8_t raw[VNET_API_TOKEN_LEN], char *buf, size_t len)
{
    char b64[sodium_base64_ENCODED_LEN(VNET_API_TOKEN_LEN,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    if (len < VNET_API_TOKEN_STRLEN) {
        if (len)
            buf[0] = '\0';
        return VNET_ENOSPC;
    }
    if (sodium_init() < 0)
        return VNET_EIO;
    sodium_bin2base64(b64, sizeof(b64), raw, VNET_API_TOKEN_LEN,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    memcpy(buf, API_PREFIX, strlen(API_PREFIX));
    memcpy(buf + strlen(API_PREFIX), b64, sizeof(b64));
    sodium_memzero(b64, sizeof(b64));
    return VNET_API_TOKEN_STRLEN - 1;
}

int vnet_api_token_parse(const char *s, uint8_t raw[VNET_API_TOKEN_LEN])
{
    uint8_t tmp[VNET_API_TOKEN_LEN];
    size_t n = 0;
    const char *end = NULL;
    if (!s || strncmp(s, API_PREFIX, strlen(API_PREFIX)) != 0 ||
        strlen(s) != VNET_API_TOKEN_STRLEN - 1 || sodium_init() < 0)
        return VNET_EINVAL;
    s += strlen(API_PREFIX);
    if (sodium_base642bin(tmp, sizeof(tmp), s, strlen(s), NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != sizeof(tmp) || *end != '\0')
        return VNET_EINVAL;
    /* Only the canonical spelling: the last character's two unused bits must be zero. */
    char again[VNET_API_TOKEN_STRLEN];
    vnet_api_token_format(tmp, again, sizeof(again));
    bool same = strcmp(again + strlen(API_PREFIX), s) == 0;
    sodium_memzero(again, sizeof(again));
    if (!same) {
        sodium_memzero(tmp, sizeof(tmp));
        return VNET_EINVAL;
    }
    memcpy(raw, tmp, sizeof(tmp));
    sodium_memzero(tmp, sizeof(tmp));
    return 0;
}

int vnet_api_token_new(char *buf, size_t len, uint8_t hash[VNET_TOKEN_HASH_BYTES])
{
    uint8_t raw[VNET_API_TOKEN_LEN];
    if (sodium_init() < 0)
        return VNET_EIO;
    randombytes_buf(raw, sizeof(raw));
    int rc = vnet_api_token_format(raw, buf, len);
    if (rc > 0)
        vnet_token_hash(raw, sizeof(raw), hash);
    sodium_memzero(raw, sizeof(raw));
    return rc;
}

int vnet_api_token_seal(const uint8_t ctl_pub[32], const uint8_t raw[VNET_API_TOKEN_LEN],
                        const uint8_t client_pub[32], uint8_t out[VNET_API_SEALED_LEN])
{
    uint8_t plain[VNET_API_TOKEN_LEN + 32];
    if (sodium_init() < 0)
        return VNET_EIO;
    memcpy(plain, raw, VNET_API_TOKEN_LEN);
    memcpy(plain + VNET_API_TOKEN_LEN, client_pub, 32);
    int rc = crypto_box_seal(out, plain, sizeof(plain), ctl_pub) == 0 ? 0 : VNET_EINVAL;
    sodium_memzero(plain, sizeof(plain));
    return rc;
}

int vnet_api_token_open(const uint8_t ctl_pub[32], const uint8_t ctl_sec[32], const uint8_t *in,
                        size_t len, uint8_t raw[VNET_API_TOKEN_LEN], uint8_t client_pub[32])
{
    uint8_t plain[VNET_API_TOKEN_LEN + 32];
    if (!in || len != VNET_API_SEALED_LEN)
        return VNET_EMALFORM;
    if (sodium_init() < 0 || crypto_box_seal_open(plain, in, len, ctl_pub, ctl_sec) != 0)
        return VNET_EACCES;
    memcpy(raw, plain, VNET_API_TOKEN_LEN);
    memcpy(client_pub, plain + VNET_API_TOKEN_LEN, 32);
    sodium_memzero(plain, sizeof(plain));
    return 0;
}
