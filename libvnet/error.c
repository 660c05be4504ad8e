/* Error names and messages. Static strings only, so vnet_strerror() is thread-safe.
 *
 * libvnet's own codes and the errno values it names in error.h have their texts here; every
 * other negated errno value (a socket's -ECONNREFUSED, say) gets the C library's. glibc's
 * strerrordesc_np()/strerrorname_np() return static strings (strerror() may write a buffer for
 * numbers it does not know); other C libraries' strerror() (musl's) returns static strings too.
 */
#include "vnet/error.h"

#include "err_int.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define HAVE_STRERRORDESC_NP 1
#endif

/* The errno range: 1..4095 on Linux (what the kernel can return as -errno). */
#define ERRNO_MAX 4095

struct err_desc {
    int code;
    const char *name;
    const char *msg;
};

static const struct err_desc errs[] = {
    {VNET_OK, "VNET_OK", "success"},
    {VNET_EPERM, "VNET_EPERM", "operation not permitted"},
    {VNET_ENOENT, "VNET_ENOENT", "no such entry"},
    {VNET_EIO, "VNET_EIO", "input/output error"},
    {VNET_EAGAIN, "VNET_EAGAIN", "resource temporarily unavailable"},
    {VNET_ENOMEM, "VNET_ENOMEM", "out of memory"},
    {VNET_EACCES, "VNET_EACCES", "permission denied"},
    {VNET_EBUSY, "VNET_EBUSY", "resource busy"},
    {VNET_EEXIST, "VNET_EEXIST", "already exists"},
    {VNET_EINVAL, "VNET_EINVAL", "invalid argument"},
    {VNET_ENOSPC, "VNET_ENOSPC", "no space left (capacity reached)"},
    {VNET_ERANGE, "VNET_ERANGE", "value out of range"},
    {VNET_EMSGSIZE, "VNET_EMSGSIZE", "message too long"},
    {VNET_ENOTSUP, "VNET_ENOTSUP", "operation not supported"},
    {VNET_ENOBUFS, "VNET_ENOBUFS", "no buffer space available"},
    {VNET_EPROTO, "VNET_EPROTO", "protocol error"},
    {VNET_ETIMEDOUT, "VNET_ETIMEDOUT", "timed out"},
    {VNET_EKEYREJECTED, "VNET_EKEYREJECTED", "key does not match the pinned key"},
    {VNET_ETRUNC, "VNET_ETRUNC", "truncated input"},
    {VNET_EMALFORM, "VNET_EMALFORM", "malformed input"},
    {VNET_ECHECKSUM, "VNET_ECHECKSUM", "bad checksum"},
    {VNET_ESTATE, "VNET_ESTATE", "invalid in the current state"},
    {VNET_ECORRUPT, "VNET_ECORRUPT", "stored data is corrupt"},
    {VNET_EVERSION, "VNET_EVERSION", "unsupported version"},
};

static const struct err_desc *find(int code)
{
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        if (errs[i].code == code)
            return &errs[i];
    return NULL;
}

const char *vnet_strerror(int code)
{
    const struct err_desc *d = find(code);
    if (d)
        return d->msg;
    if (code < 0 && code >= -ERRNO_MAX) {
#ifdef HAVE_STRERRORDESC_NP
        const char *s = strerrordesc_np(-code);
        if (s)
            return s;
#else
        return strerror(-code);
#endif
    }
    return "unknown error";
}

const char *vnet_err_name(int code)
{
    const struct err_desc *d = find(code);
    if (d)
        return d->name;
#ifdef HAVE_STRERRORDESC_NP
    if (code < 0 && code >= -ERRNO_MAX) {
        const char *s = strerrorname_np(-code);
        if (s)
            return s;
    }
#endif
    return "VNET_E?";
}

void vnet__verrf(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
}

void vnet__errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnet__verrf(err, errlen, fmt, ap);
    va_end(ap);
}
