/* Cryptographic building blocks, part 1 (include/vnet/crypto.h, "Identity keys"): libsodium
 * set-up, the long-term X25519 keys, their files and their text form.
 *
 * Why this shape: everything is a pure function of caller-owned buffers so that the controller,
 * the agent and the datapath can each drive it from their own loop and threads, and so that the
 * unit tests and the fuzz target exercise exactly the code that runs. Every primitive is
 * libsodium's; the crypto_*.c files only compose them. docs/security.md is the specification;
 * keep both in step.
 */
#include "vnet/crypto.h"

#include "err_int.h"
#include "file_int.h"

#include "vnet/error.h"
#include "vnet/model.h"
#include "vnet/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(VNET_KEY_LEN == crypto_scalarmult_BYTES, "X25519 key size");
_Static_assert(VNET_KEY_LEN == VNET_PUBKEY_LEN, "model pubkey size");

int vnet_crypto_init(void)
{
    return sodium_init() < 0 ? VNET_EIO : 0;
}
/* ======================================================================================== */
/* Identity keys                                                                             */
/* ======================================================================================== */

int vnet_key_generate(struct vnet_keypair *kp)
{
    if (!kp)
        return VNET_EINVAL;
    if (vnet_crypto_init() < 0)
        return VNET_EIO;
    /* crypto_kx keys are X25519 keys: the same curve points crypto_scalarmult uses. */
    crypto_kx_keypair(kp->pub, kp->sec);
    return 0;
}

int vnet_key_from_secret(struct vnet_keypair *kp, const uint8_t sec[VNET_KEY_LEN])
{
    if (!kp || !sec)
        return VNET_EINVAL;
    if (vnet_crypto_init() < 0)
        return VNET_EIO;
    uint8_t pub[32];
    if (crypto_scalarmult_base(pub, sec) != 0)
        return VNET_EINVAL;
    memmove(kp->sec, sec, 32);
    memcpy(kp->pub, pub, 32);
    return 0;
}

void vnet_key_wipe(struct vnet_keypair *kp)
{
    if (kp)
        sodium_memzero(kp, sizeof(*kp));
}

#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define B64_KEYLEN  43

int vnet_pubkey_format(const uint8_t pub[VNET_KEY_LEN], char *buf, size_t len)
{
    if (!buf || len < VNET_PUBKEY_STRLEN) {
        if (buf && len)
            buf[0] = '\0';
        return VNET_ENOSPC;
    }
    sodium_bin2base64(buf, len, pub, VNET_KEY_LEN, B64_VARIANT);
    return B64_KEYLEN;
}

/* Exactly 43 characters of canonical URL-safe base64 for 32 bytes. */
static int b64key_decode(const char *s, size_t slen, uint8_t out[32])
{
    uint8_t tmp[32];
    size_t binlen = 0;
    const char *end = NULL;
    if (slen != B64_KEYLEN)
        return VNET_EINVAL;
    if (sodium_base642bin(tmp, sizeof(tmp), s, slen, NULL, &binlen, &end, B64_VARIANT) != 0 ||
        binlen != 32 || end != s + slen)
        goto bad;
    /* Refuse non-canonical spellings (non-zero padding bits in the last character), so one
     * key has one text form in the database. */
    char again[VNET_PUBKEY_STRLEN];
    sodium_bin2base64(again, sizeof(again), tmp, 32, B64_VARIANT);
    if (memcmp(again, s, B64_KEYLEN) != 0)
        goto bad;
    memcpy(out, tmp, 32);
    sodium_memzero(tmp, sizeof(tmp));
    return 0;
bad:
    sodium_memzero(tmp, sizeof(tmp));
    return VNET_EINVAL;
}

int vnet_pubkey_parse(const char *s, uint8_t out[VNET_KEY_LEN])
{
    if (!s || !out)
        return VNET_EINVAL;
    if (vnet_crypto_init() < 0)
        return VNET_EIO;
    return b64key_decode(s, strlen(s), out);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void vnet__fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(copy);
}

/* Write the key line to a fresh file with O_EXCL: used when the filesystem cannot link(). */
static int save_direct(const char *path, const char *line, size_t n, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int rc = -errno;
        vnet__errf(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
        return rc;
    }
    int rc = write_all(fd, line, n);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc < 0) {
        vnet__errf(err, errlen, "cannot write key file %s: %s", path, strerror(-rc));
        unlink(path);
    }
    return rc;
}

int vnet_key_save(const char *path, const struct vnet_keypair *kp, char *err, size_t errlen)
{
    if (!path || !*path || !kp) {
        vnet__errf(err, errlen, "no key file path");
        return VNET_EINVAL;
    }
    if (vnet_crypto_init() < 0)
        return VNET_EIO;
    char line[12 + 1 + 43 + 1 + 43 + 2];
    char sec64[VNET_PUBKEY_STRLEN], pub64[VNET_PUBKEY_STRLEN];
    sodium_bin2base64(sec64, sizeof(sec64), kp->sec, 32, B64_VARIANT);
    sodium_bin2base64(pub64, sizeof(pub64), kp->pub, 32, B64_VARIANT);
    int n = snprintf(line, sizeof(line), "%s %s %s\n", VNET_KEYFILE_MAGIC, sec64, pub64);
    sodium_memzero(sec64, sizeof(sec64));
    int rc;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        rc = VNET_ENOMEM;
        goto out;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp); /* mode 0600, O_EXCL */
    if (fd < 0) {
        rc = -errno;
        vnet__errf(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || (rc = write_all(fd, line, (size_t)n)) != 0 || fsync(fd) != 0) {
        rc = -errno;
        vnet__errf(err, errlen, "cannot write key file %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    /* link() rather than rename(): it fails on an existing path instead of replacing it, so a
     * node's identity is never clobbered by a second `keygen`. */
    if (link(tmp, path) == 0) {
        unlink(tmp);
        vnet__fsync_dir_of(path);
        rc = 0;
    } else if (errno == EEXIST) {
        unlink(tmp);
        rc = VNET_EEXIST;
        vnet__errf(err, errlen, "key file %s already exists; not overwriting it", path);
    } else if (errno == EPERM || errno == ENOTSUP || errno == ENOSYS || errno == EMLINK) {
        unlink(tmp);
        rc = save_direct(path, line, (size_t)n, err, errlen);
        if (rc == VNET_EEXIST)
            vnet__errf(err, errlen, "key file %s already exists; not overwriting it", path);
        if (rc == 0)
            vnet__fsync_dir_of(path);
    } else {
        rc = -errno;
        vnet__errf(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
        unlink(tmp);
    }
out:
    sodium_memzero(line, sizeof(line));
    free(tmp);
    return rc;
}

int vnet_key_load(const char *path, struct vnet_keypair *kp, char *err, size_t errlen)
{
    if (!kp)
        return VNET_EINVAL;
    sodium_memzero(kp, sizeof(*kp));
    if (!path || !*path) {
        vnet__errf(err, errlen, "no key file path");
        return VNET_EINVAL;
    }
    if (vnet_crypto_init() < 0)
        return VNET_EIO;
    char buf[256];
    size_t n = 0;
    int rrc = vnet_secret_file_read(path, "key file", buf, sizeof(buf), &n, err, errlen);
    if (rrc == VNET_EMSGSIZE) {
        n = sizeof(buf); /* longer than any key line: reported as malformed below */
    } else if (rrc) {
        sodium_memzero(buf, sizeof(buf));
        return rrc;
    }
    /* Exactly: magic SP secret SP public [LF] */
    const size_t ml = strlen(VNET_KEYFILE_MAGIC);
    const size_t want = ml + 1 + B64_KEYLEN + 1 + B64_KEYLEN;
    int rc = VNET_EINVAL;
    if (n == want + 1 && buf[want] == '\n')
        n = want;
    if (n != want || memcmp(buf, VNET_KEYFILE_MAGIC, ml) != 0 || buf[ml] != ' ' ||
        buf[ml + 1 + B64_KEYLEN] != ' ') {
        vnet__errf(err, errlen,
                   "key file %s is malformed (expected one line \"%s <secret> <public>\")", path,
                   VNET_KEYFILE_MAGIC);
        goto out;
    }
    uint8_t pub[32];
    if (b64key_decode(buf + ml + 1, B64_KEYLEN, kp->sec) != 0 ||
        b64key_decode(buf + ml + 2 + B64_KEYLEN, B64_KEYLEN, pub) != 0) {
        vnet__errf(err, errlen, "key file %s is malformed (bad base64 key)", path);
        goto out;
    }
    if (crypto_scalarmult_base(kp->pub, kp->sec) != 0 || sodium_memcmp(kp->pub, pub, 32) != 0) {
        vnet__errf(err, errlen, "key file %s is corrupt: public key does not match secret key",
                   path);
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(buf, sizeof(buf));
    if (rc)
        sodium_memzero(kp, sizeof(*kp));
    return rc;
}
