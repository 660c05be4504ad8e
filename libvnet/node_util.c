/* libvnet internals of the node and its agent (node_util_int.h). */
#include "node_util_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vnet/error.h"
#include "vnet/secret.h"

#include "err_int.h"
#include "file_int.h"

#define PIN_MAGIC "vnet-pin-v1"

/* A DNS name as RFC 1123 spells host names: labels of letters, digits and '-', not starting
 * or ending with '-', 1 to 63 characters each, 253 in all (a final '.' allowed). */
static bool dns_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && label > 0))
            return false;
        if (++label > 63)
            return false;
    }
    return s[n - 1] != '-';
}

int vnet__hostport_split(const char *s, char host[VNET__HOST_MAX], uint16_t *port)
{
    if (!s || !host || !port)
        return VNET_EINVAL;
    const char *h, *p;
    size_t hn;
    struct vnet_ip ip;
    char tmp[VNET__HOST_MAX];
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return VNET_EINVAL;
        h = s + 1;
        hn = (size_t)(close - h);
        p = close + 2;
        if (hn == 0 || hn >= sizeof(tmp))
            return VNET_EINVAL;
        memcpy(tmp, h, hn);
        tmp[hn] = '\0';
        if (vnet_ip_parse(tmp, &ip) || ip.family != VNET_AF_INET6)
            return VNET_EINVAL;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return VNET_EINVAL; /* none, or an IPv6 address without brackets */
        h = s;
        hn = (size_t)(colon - s);
        p = colon + 1;
        if (hn == 0 || hn >= sizeof(tmp))
            return VNET_EINVAL;
        memcpy(tmp, h, hn);
        tmp[hn] = '\0';
        if (vnet_ip_parse(tmp, &ip) != 0 && !dns_name_ok(tmp, hn))
            return VNET_EINVAL;
        /* all digits and dots but not an address ("10.0.0.300"): a typo, not a name */
        if (vnet_ip_parse(tmp, &ip) != 0 && strspn(tmp, "0123456789.") == hn)
            return VNET_EINVAL;
    }
    char *end;
    errno = 0;
    unsigned long v = strtoul(p, &end, 10);
    if (!p[0] || *end || p[0] < '0' || p[0] > '9' || errno || v == 0 || v > 65535)
        return VNET_EINVAL;
    memcpy(host, tmp, hn + 1);
    *port = (uint16_t)v;
    return 0;
}

int vnet__pin_path(const char *key_file, char *out, size_t outlen)
{
    if (!key_file || !out)
        return VNET_EINVAL;
    int n = snprintf(out, outlen, "%s.controller", key_file);
    return n < 0 || (size_t)n >= outlen ? VNET_EINVAL : 0;
}

int vnet__pin_read(const char *path, struct vnet__pin *out, char *err, size_t errlen)
{
    char buf[256];
    size_t len = 0;
    int rc =
        vnet_secret_file_read(path, "pinned key file", buf, sizeof(buf) - 1, &len, err, errlen);
    if (rc == VNET_EMSGSIZE) {
        vnet__errf(err, errlen, "pinned key file %s: too long", path);
        return VNET_EINVAL;
    }
    if (rc)
        return rc;
    buf[len] = '\0';
    char node[64], ctl[64], join[64], extra[2];
    struct vnet__pin pin;
    memset(&pin, 0, sizeof(pin));
    if (len == 0 || buf[len - 1] != '\n' ||
        sscanf(buf, PIN_MAGIC " %63s %63s %63s %1s", node, ctl, join, extra) != 3 ||
        strncmp(buf, PIN_MAGIC " ", sizeof(PIN_MAGIC)) != 0 ||
        vnet_pubkey_parse(node, pin.node_pub) || vnet_pubkey_parse(ctl, pin.ctl_pub) ||
        (strcmp(join, "-") != 0 && vnet_pubkey_parse(join, pin.join_hash))) {
        vnet__errf(err, errlen,
                   "pinned key file %s: not a line '" PIN_MAGIC " NODEKEY CONTROLLERKEY JOIN'",
                   path);
        return VNET_EINVAL;
    }
    *out = pin;
    return 0;
}

int vnet__pin_write(const char *path, const struct vnet__pin *pin, char *err, size_t errlen)
{
    static const uint8_t zero[VNET_TOKEN_HASH_BYTES];
    char node[VNET_PUBKEY_STRLEN], ctl[VNET_PUBKEY_STRLEN], join[VNET_PUBKEY_STRLEN];
    char line[256], tmp[4096];
    if (!path || !pin)
        return VNET_EINVAL;
    vnet_pubkey_format(pin->node_pub, node, sizeof(node));
    vnet_pubkey_format(pin->ctl_pub, ctl, sizeof(ctl));
    if (sodium_memcmp(pin->join_hash, zero, sizeof(zero)) == 0)
        snprintf(join, sizeof(join), "-");
    else
        vnet_pubkey_format(pin->join_hash, join, sizeof(join));
    int n = snprintf(line, sizeof(line), PIN_MAGIC " %s %s %s\n", node, ctl, join);
    int tn = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(line) || tn < 0 || (size_t)tn >= sizeof(tmp)) {
        vnet__errf(err, errlen, "pinned key file %s: path too long", path);
        return VNET_EINVAL;
    }
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        int rc = -errno;
        vnet__errf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return rc;
    }
    int rc = 0;
    const char *p = line;
    size_t left = (size_t)n;
    while (left && !rc) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno != EINTR)
            rc = -errno;
        if (w > 0) {
            p += w;
            left -= (size_t)w;
        }
    }
    if (!rc && (fchmod(fd, 0600) != 0 || fsync(fd) != 0))
        rc = -errno;
    if (close(fd) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc) {
        vnet__errf(err, errlen, "cannot write pinned key file %s: %s", path, strerror(-rc));
        unlink(tmp);
        return rc;
    }
    vnet__fsync_dir_of(path);
    return 0;
}

int vnet__primary_addr(const struct vnet_prefix *v, size_t n, struct vnet_ip *out)
{
    for (int fam = 0; fam < 2; fam++)
        for (size_t i = 0; i < n; i++)
            if (v[i].ip.family == (fam == 0 ? VNET_AF_INET : VNET_AF_INET6)) {
                *out = v[i].ip;
                return 0;
            }
    return VNET_ENOENT;
}
