/* libvnet: the subscriber client, a blocking API over the controller's request protocol, for
 * vnetctl, scripts and the bindings.
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

/* Connect to "IP:PORT", "[IPv6]:PORT" or a Unix socket path (anything with a '/') and say
 * hello. @timeout_ms bounds connect and every request (0: 10,000). Returns 0, VNET_EINVAL, a
 * negative errno (connection refused, ...), VNET_ETIMEDOUT or VNET_EPROTO; @err explains. */
int vnet_client_connect(const char *addr, uint32_t timeout_ms, struct vnet_client **out,
                        char *err, size_t errlen);

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
