/* libvnet: reading secret files (include/vnet/secret.h). */
#include "vnet/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vnet/error.h"

#include "err_int.h"

/* The mode check: any bit for group or others refuses the file. */
static int check_mode(const char *path, const char *what, const struct stat *st, char *err,
                      size_t errlen)
{
    if (!S_ISREG(st->st_mode)) {
        vnet__errf(err, errlen, "%s %s is not a regular file", what, path);
        return VNET_EINVAL;
    }
    unsigned mode = (unsigned)st->st_mode & 07777;
    if (mode & 077) {
        const char *how = (mode & 044) ? "readable" : (mode & 022) ? "writable" : "accessible";
        const char *who = (mode & 007) ? "others" : "group";
        vnet__errf(err, errlen, "%s %s is %s by %s (mode %04o); chmod 600 it", what, path, how, who,
                   mode);
        return VNET_EPERM;
    }
    return 0;
}

int vnet_secret_file_read(const char *path, const char *what, void *buf, size_t cap,
                          size_t *len_out, char *err, size_t errlen)
{
    if (!what)
        what = "secret file";
    if (!path || !*path || !buf || !len_out) {
        vnet__errf(err, errlen, "%s: no path or buffer", what);
        return VNET_EINVAL;
    }
    /* O_NONBLOCK: a FIFO put in the key's place must not hang the caller; it fails the
     * regular-file check instead. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int rc = -errno;
        vnet__errf(err, errlen, "cannot open %s %s: %s", what, path, strerror(errno));
        return rc;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        vnet__errf(err, errlen, "cannot stat %s %s: %s", what, path, strerror(errno));
        goto out;
    }
    if ((rc = check_mode(path, what, &st, err, errlen)) != 0)
        goto out;
    uint8_t *p = buf;
    size_t n = 0;
    for (;;) {
        uint8_t extra;
        /* Once @buf is full, read one more byte to tell "exactly @cap" from "longer". */
        ssize_t r = n < cap ? read(fd, p + n, cap - n) : read(fd, &extra, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            vnet__errf(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        if (n == cap) {
            rc = VNET_EMSGSIZE;
            vnet__errf(err, errlen, "%s %s is longer than %zu bytes", what, path, cap);
            break;
        }
        n += (size_t)r;
    }
    if (rc)
        sodium_memzero(buf, cap);
    else
        *len_out = n;
out:
    close(fd);
    return rc;
}
