/* libvnet: reading secret files (node and controller keys, API tokens).
 *
 * A secret file is one only its owner may access: a regular file whose mode grants nothing to
 * group or others (chmod 600 or 400). Programs and the library read keys and tokens through
 * this one call, so every one of them refuses a loose file with the same message.
 *
 * Thread-safety: thread-safe (no shared state).
 */
#ifndef VNET_SECRET_H
#define VNET_SECRET_H

#include <stddef.h>

#include "vnet/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Read the whole of the secret file @path into @buf, refusing it when it is not a regular
 * file or when group or others may read, write or execute it.
 * @what names the file in messages ("key file", "admin token file"); NULL: "secret file".
 * A loose file gives the message "WHAT PATH is readable by others (mode 0644); chmod 600 it"
 * ("readable", "writable" or "accessible"; "by group" or "by others").
 * Ownership: @buf is the caller's (it holds a secret: wipe it when done); *@len_out is set to
 * the number of bytes read, on success only. @err (may be NULL) receives the reason of a
 * failure, NUL-terminated, cut to @errlen.
 * Returns: 0; VNET_ENOENT when @path does not exist; VNET_EPERM when group or others may
 * access it; VNET_EINVAL for NULL arguments or something other than a regular file;
 * VNET_EMSGSIZE when the file holds more than @cap bytes (@buf is then wiped); another
 * negative errno value when it cannot be opened or read (VNET_EACCES, VNET_EIO, ...).
 * Thread-safety: thread-safe.
 */
VNET_API int vnet_secret_file_read(const char *path, const char *what, void *buf, size_t cap,
                                   size_t *len_out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
