/* libvnet: join tokens and token hashes.
 *
 * A join token lets a node enrol its own key once: `vnetctl node add` prints it; `vnet-node
 * --join TOKEN` uses it. The token holds the controller's public key (which the node pins) and
 * a 32-byte random secret; the store keeps only a hash of the secret. The node sends the secret
 * sealed to the controller's key (crypto_box_seal) behind its handshake, so it never crosses
 * the network in the clear, and the controller registers the key the handshake proved.
 *
 * Thread-safety: all functions are thread-safe.
 */
#ifndef VNET_TOKEN_H
#define VNET_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VNET_JOIN_SECRET_LEN   32
#define VNET_JOIN_SEALED_LEN   (VNET_JOIN_SECRET_LEN + 48) /* crypto_box_SEALBYTES = 48 */
#define VNET_JOIN_TOKEN_STRLEN 96                          /* "vnet1-" + 86 base64 + NUL */
#define VNET_TOKEN_HASH_BYTES  32

/* "vnet1-" followed by URL-safe base64 (no padding) of controller public key || secret.
 * Returns the length, or VNET_ENOSPC. */
int vnet_join_token_format(const uint8_t ctl_pub[32], const uint8_t secret[VNET_JOIN_SECRET_LEN],
                           char *buf, size_t len);

/* Parse a join token. Returns 0 or VNET_EINVAL (any other text). */
int vnet_join_token_parse(const char *s, uint8_t ctl_pub[32], uint8_t secret[VNET_JOIN_SECRET_LEN]);

/* Seal @secret to @ctl_pub (anonymous sender): @out gets VNET_JOIN_SEALED_LEN bytes. */
int vnet_join_seal(const uint8_t ctl_pub[32], const uint8_t secret[VNET_JOIN_SECRET_LEN],
                   uint8_t out[VNET_JOIN_SEALED_LEN]);

/* The hash the store keeps of a secret or API token (BLAKE2b-256). */
void vnet_token_hash(const void *secret, size_t len, uint8_t out[VNET_TOKEN_HASH_BYTES]);

/* A fresh random secret. */
void vnet_token_random(uint8_t *out, size_t len);

#ifdef __cplusplus
}
#endif
#endif
