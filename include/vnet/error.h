/* libvnet: error codes.
 *
 * Every fallible call returns 0 on success or a negative VNET_E* code. Where an errno value
 * fits, the code is that errno negated, so a caller can compare against -errno from the
 * kernel. Codes below VNET_E_BASE are libvnet's own.
 *
 * Thread-safety: all functions here are thread-safe.
 */
#ifndef VNET_ERROR_H
#define VNET_ERROR_H

#include "vnet/common.h"

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VNET_OK        0
#define VNET_EPERM     (-EPERM)
#define VNET_ENOENT    (-ENOENT)
#define VNET_EIO       (-EIO)
#define VNET_EAGAIN    (-EAGAIN)
#define VNET_ENOMEM    (-ENOMEM)
#define VNET_EACCES    (-EACCES)
#define VNET_EBUSY     (-EBUSY)
#define VNET_EEXIST    (-EEXIST)
#define VNET_EINVAL    (-EINVAL)
#define VNET_ENOSPC    (-ENOSPC)
#define VNET_ERANGE    (-ERANGE)
#define VNET_EMSGSIZE  (-EMSGSIZE)
#define VNET_ENOTSUP   (-EOPNOTSUPP)
#define VNET_ENOBUFS   (-ENOBUFS)
#define VNET_EPROTO    (-EPROTO)
#define VNET_ETIMEDOUT (-ETIMEDOUT)
/* The peer's key is not the one pinned: the controller could not open a client's handshake
 * (the client pinned another key), or a controller did not prove the pinned key. */
#define VNET_EKEYREJECTED (-EKEYREJECTED)

/* libvnet's own codes: well below any errno value. */
#define VNET_E_BASE    (-4000)
#define VNET_ETRUNC    (VNET_E_BASE - 1) /* input shorter than its headers say */
#define VNET_EMALFORM  (VNET_E_BASE - 2) /* input present but not well formed */
#define VNET_ECHECKSUM (VNET_E_BASE - 3) /* checksum does not verify */
#define VNET_ESTATE    (VNET_E_BASE - 4) /* call not valid in the object's current state */
#define VNET_ECORRUPT  (VNET_E_BASE - 5) /* stored data is damaged */
#define VNET_EVERSION  (VNET_E_BASE - 6) /* unsupported version (protocol, schema) */

/**
 * A short human description of @code ("invalid argument").
 * libvnet's own codes (below VNET_E_BASE) and the VNET_E* errno codes above have libvnet's
 * texts; any other negated errno value (-1..-4095) has the C library's description of that
 * errno ("Connection refused"). Any other number (-200, which no errno has) gives
 * "unknown error".
 * Ownership: the string is static; never NULL.
 * Thread-safety: thread-safe.
 */
VNET_API const char *vnet_strerror(int code);

/**
 * The symbolic name of @code: "VNET_EINVAL" for the codes defined above, the errno's own name
 * for any other negated errno value ("ECONNREFUSED" for -ECONNREFUSED), else "VNET_E?".
 * Ownership: the string is static; never NULL.
 * Thread-safety: thread-safe.
 */
VNET_API const char *vnet_err_name(int code);

#ifdef __cplusplus
}
#endif
#endif
