/* libvnet internals: the "@err, @errlen" reason buffers of calls that explain a failure in
 * words (vnet_key_load, vnet_secret_file_read, vnet_node_create). */
#ifndef VNET_ERR_INT_H
#define VNET_ERR_INT_H

#include <stdarg.h>
#include <stddef.h>

/* printf into @err (cut to @errlen, NUL-terminated); nothing when @err is NULL or @errlen 0. */
void vnet__errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* vnet__errf with a va_list. */
void vnet__verrf(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
