/* libvnet: join tokens, API tokens and token hashes.
 *
 * A join token lets a node enrol its own key once: `vnetctl node add` prints it; `vnet-node
 * --join TOKEN` uses it. The token holds the controller's public key (which the node pins) and
 * a 32-byte random secret; the store keeps only a hash of the secret. The node sends the secret
 * sealed to the controller's key (crypto_box_seal) behind its handshake, so it never crosses
 * the network in the clear, and the controller registers the key the handshake proved.
 *
 * An API token authenticates a subscriber (or the admin) to the controller's API: the string
 * "vnetapi1-" followed by 43 characters of URL-safe base64 (no padding) of 32 random bytes. The
 * store keeps vnet_token_hash() of the 32 raw bytes (not of the string). A client sends the
 * raw bytes, together with the static key of its handshake, sealed to the controller's key
 * behind its handshake (vnet_api_token_seal); the controller opens them (vnet_api_token_open)
 * and checks that the key inside is the one the handshake proved, so a sealed token copied
 * from another connection is useless.
 *
 * Thread-safety: all functions are thread-safe.
 */
#ifndef VNET_TOKEN_H
#define VNET_TOKEN_H

#include "vnet/common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VNET_JOIN_SECRET_LEN   32
#define VNET_JOIN_SEALED_LEN   (VNET_JOIN_SECRET_LEN + 32 + 48) /* secret || node key, sealed */
#define VNET_JOIN_TOKEN_STRLEN 96                               /* "vnet1-" + 86 base64 + NUL */
#define VNET_TOKEN_HASH_BYTES  32

/* "vnet1-" followed by URL-safe base64 (no padding) of controller public key || secret.
 * Returns the length, or VNET_ENOSPC. */
VNET_API int vnet_join_token_format(const uint8_t ctl_pub[32],
                                    const uint8_t secret[VNET_JOIN_SECRET_LEN], char *buf,
                                    size_t len);

/* Parse a join token. Returns 0 or VNET_EINVAL (any other text). */
VNET_API int vnet_join_token_parse(const char *s, uint8_t ctl_pub[32],
                                   uint8_t secret[VNET_JOIN_SECRET_LEN]);

/* Seal @secret || @node_pub (the static public key the node's handshake proves) to the
 * controller's key @ctl_pub (anonymous sender): VNET_JOIN_SEALED_LEN bytes into @out. The
 * binding means a sealed secret copied off the wire enrols nothing behind another key.
 * Returns 0, VNET_EINVAL (degenerate @ctl_pub) or VNET_EIO. */
VNET_API int vnet_join_seal(const uint8_t ctl_pub[32], const uint8_t secret[VNET_JOIN_SECRET_LEN],
                            const uint8_t node_pub[32], uint8_t out[VNET_JOIN_SEALED_LEN]);

/* The controller's side: open @in (@len bytes) with its keypair. Returns 0 with the secret in
 * @secret and the node key it was bound to in @node_pub, VNET_EMALFORM (wrong length) or
 * VNET_EACCES (not sealed to this key, or tampered). */
VNET_API int vnet_join_open(const uint8_t ctl_pub[32], const uint8_t ctl_sec[32], const uint8_t *in,
                            size_t len, uint8_t secret[VNET_JOIN_SECRET_LEN], uint8_t node_pub[32]);

#define VNET_API_TOKEN_LEN    32                             /* raw bytes */
#define VNET_API_TOKEN_STRLEN 53                             /* "vnetapi1-" + 43 base64 + NUL */
#define VNET_API_SEALED_LEN   (VNET_API_TOKEN_LEN + 32 + 48) /* token || client key, sealed */

/* A fresh API token: its text into @buf (VNET_API_TOKEN_STRLEN bytes at least) and the hash
 * the store keeps into @hash. Returns 52 (the text's length), VNET_ENOSPC or VNET_EIO. */
VNET_API int vnet_api_token_new(char *buf, size_t len, uint8_t hash[VNET_TOKEN_HASH_BYTES]);

/* "vnetapi1-" + base64url(@raw). Returns the length (52) or VNET_ENOSPC. */
VNET_API int vnet_api_token_format(const uint8_t raw[VNET_API_TOKEN_LEN], char *buf, size_t len);

/* Parse an API token: exactly the 52 characters above, nothing around them. Returns 0 or
 * VNET_EINVAL (@raw untouched then). */
VNET_API int vnet_api_token_parse(const char *s, uint8_t raw[VNET_API_TOKEN_LEN]);

/* Seal @raw || @client_pub (the static public key of the client's handshake) to the
 * controller's key @ctl_pub (anonymous sender): VNET_API_SEALED_LEN bytes into @out.
 * Returns 0, VNET_EINVAL (degenerate @ctl_pub) or VNET_EIO. */
VNET_API int vnet_api_token_seal(const uint8_t ctl_pub[32], const uint8_t raw[VNET_API_TOKEN_LEN],
                                 const uint8_t client_pub[32], uint8_t out[VNET_API_SEALED_LEN]);

/* The controller's side: open @in (@len bytes) with its keypair. Returns 0 with the token in
 * @raw and the client key it was bound to in @client_pub, VNET_EMALFORM (wrong length) or
 * VNET_EACCES (not sealed to this key, or tampered). */
VNET_API int vnet_api_token_open(const uint8_t ctl_pub[32], const uint8_t ctl_sec[32],
                                 const uint8_t *in, size_t len, uint8_t raw[VNET_API_TOKEN_LEN],
                                 uint8_t client_pub[32]);

/* The hash the store keeps of a secret or API token (BLAKE2b-256). */
VNET_API void vnet_token_hash(const void *secret, size_t len, uint8_t out[VNET_TOKEN_HASH_BYTES]);

/* A fresh random secret. */
VNET_API void vnet_token_random(uint8_t *out, size_t len);

#ifdef __cplusplus
}
#endif
#endif
