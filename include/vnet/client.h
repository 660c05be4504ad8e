/* libvnet: the subscriber client, a blocking API over the controller's request protocol, for
 * vnetctl, scripts and the bindings.
 *
 * Authentication (docs/security.md, "Subscribers"). Over TCP, a controller that has a key
 * serves only authenticated, encrypted sessions: the client pins the controller's public key,
 * does the Noise handshake with a fresh keypair of its own and sends its API token sealed to
 * the controller's key behind it; every frame after WELCOME is then encrypted. The token
 * decides who the client is: a subscriber sees and changes only its own networks; the admin's
 * token manages everything. Over the controller's Unix socket the client is the admin (the
 * socket's file permissions are the protection) and neither key nor token is used.
 *
 * Thread-safety: one thread per client handle.
 */
#ifndef VNET_CLIENT_H
#define VNET_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "vnet/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vnet_client;

struct vnet_client_opts {
    uint32_t timeout_ms;           /* bounds connect and every request; 0: 10,000 */
    const uint8_t *controller_pub; /* 32 bytes: the controller's pinned public key, or NULL */
    const char *token;             /* an API token "vnetapi1-...", or NULL */
};

/* Connect to "IP:PORT", "[IPv6]:PORT" or a Unix socket path (anything with a '/') and say
 * hello. Over TCP with @opts->controller_pub, the session is authenticated (the controller
 * must prove it holds that key) and encrypted, and @opts->token (if any) identifies the
 * subscriber; without controller_pub the session is plain and carries no token (what a
 * controller without a key serves). Over a Unix socket both are ignored. @opts may be NULL.
 * The strings and key are only read during the call. Returns 0, VNET_EINVAL (bad address,
 * malformed token, a token without controller_pub), a negative errno (connection refused,
 * ...), VNET_ETIMEDOUT, VNET_EPROTO, VNET_EACCES (the controller refused the token or the
 * lack of one, or did not prove the pinned key) or another code of the controller's ERROR;
 * @err explains. */
int vnet_client_connect2(const char *addr, const struct vnet_client_opts *opts,
                         struct vnet_client **out, char *err, size_t errlen);

/* vnet_client_connect2() with only a timeout: an unauthenticated session (a Unix socket, or a
 * controller without a key). */
int vnet_client_connect(const char *addr, uint32_t timeout_ms, struct vnet_client **out, char *err,
                        size_t errlen);

/* Close the connection and free the client. NULL is ignored. */
void vnet_client_close(struct vnet_client *c);

/* Send @req (its id is set by the client) and wait for the reply. Returns 0 with *reply
 * filled (free it with vnet_msg_free; reply->u.reply.code tells whether the controller
 * refused the request), or a transport error (the connection is then unusable). */
int vnet_client_request(struct vnet_client *c, const struct vnet_msg_request *req,
                        struct vnet_msg *reply, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
