/* Cryptographic building blocks: identity keys and their files, the control-channel handshake
 * (Noise IK pattern), the control channel (secretstream) and data-plane packet protection.
 *
 * Why this shape: everything is a pure function of caller-owned buffers so that the controller,
 * the agent and the datapath can each drive it from their own loop and threads, and so that the
 * unit tests and the fuzz target exercise exactly the code that runs. Every primitive is
 * libsodium's; this file only composes them (transcript hashing, key derivation, framing,
 * replay window, epoch bookkeeping). docs/security.md is the specification; keep both in step.
 */
#include "vnet/crypto.h"

#include "vnet/error.h"
#include "vnet/secret.h"
#include "vnet/proto.h"

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
_Static_assert(VNET_HS_HELLO_LEN <= VNET_AUTH_MAX, "HELLO.auth fits");
_Static_assert(VNET_HS_WELCOME_LEN <= VNET_AUTH_MAX, "WELCOME.auth fits");
_Static_assert(sizeof(((struct vnet_chan *)0)->st) >=
                   sizeof(crypto_secretstream_xchacha20poly1305_state),
               "secretstream state fits");
_Static_assert(VNET_CHAN_HEADER_LEN == crypto_secretstream_xchacha20poly1305_HEADERBYTES, "hdr");
_Static_assert(VNET_CHAN_OVERHEAD == crypto_secretstream_xchacha20poly1305_ABYTES, "abytes");
_Static_assert(sizeof(((struct vnet_seal_key *)0)->st) >= sizeof(crypto_aead_aes256gcm_state),
               "AES-GCM state fits");
_Static_assert(VNET_SEAL_TAG_LEN == crypto_aead_aes256gcm_ABYTES, "GCM tag");
_Static_assert(VNET_SEAL_TAG_LEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "Poly1305 tag");

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int vnet_crypto_init(void)
{
    return sodium_init() < 0 ? VNET_EIO : 0;
}

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* X25519; libsodium refuses (returns -1) when the result is all zero, i.e. the peer key is of
 * low order and the "shared secret" would be known to everyone. */
static int dh(uint8_t out[32], const uint8_t sec[32], const uint8_t pub[32])
{
    return crypto_scalarmult(out, sec, pub) == 0 ? 0 : VNET_EACCES;
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

static void fsync_dir_of(const char *path)
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
        seterr(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
        return rc;
    }
    int rc = write_all(fd, line, n);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc < 0) {
        seterr(err, errlen, "cannot write key file %s: %s", path, strerror(-rc));
        unlink(path);
    }
    return rc;
}

int vnet_key_save(const char *path, const struct vnet_keypair *kp, char *err, size_t errlen)
{
    if (!path || !*path || !kp) {
        seterr(err, errlen, "no key file path");
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
        seterr(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || (rc = write_all(fd, line, (size_t)n)) != 0 || fsync(fd) != 0) {
        rc = -errno;
        seterr(err, errlen, "cannot write key file %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    /* link() rather than rename(): it fails on an existing path instead of replacing it, so a
     * node's identity is never clobbered by a second `keygen`. */
    if (link(tmp, path) == 0) {
        unlink(tmp);
        fsync_dir_of(path);
        rc = 0;
    } else if (errno == EEXIST) {
        unlink(tmp);
        rc = VNET_EEXIST;
        seterr(err, errlen, "key file %s already exists; not overwriting it", path);
    } else if (errno == EPERM || errno == ENOTSUP || errno == ENOSYS || errno == EMLINK) {
        unlink(tmp);
        rc = save_direct(path, line, (size_t)n, err, errlen);
        if (rc == VNET_EEXIST)
            seterr(err, errlen, "key file %s already exists; not overwriting it", path);
        if (rc == 0)
            fsync_dir_of(path);
    } else {
        rc = -errno;
        seterr(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
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
        seterr(err, errlen, "no key file path");
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
        seterr(err, errlen, "key file %s is malformed (expected one line \"%s <secret> <public>\")",
               path, VNET_KEYFILE_MAGIC);
        goto out;
    }
    uint8_t pub[32];
    if (b64key_decode(buf + ml + 1, B64_KEYLEN, kp->sec) != 0 ||
        b64key_decode(buf + ml + 2 + B64_KEYLEN, B64_KEYLEN, pub) != 0) {
        seterr(err, errlen, "key file %s is malformed (bad base64 key)", path);
        goto out;
    }
    if (crypto_scalarmult_base(kp->pub, kp->sec) != 0 || sodium_memcmp(kp->pub, pub, 32) != 0) {
        seterr(err, errlen, "key file %s is corrupt: public key does not match secret key", path);
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(buf, sizeof(buf));
    if (rc)
        sodium_memzero(kp, sizeof(*kp));
    return rc;
}

/* ======================================================================================== */
/* Handshake: Noise IK shape with libsodium primitives                                       */
/* ======================================================================================== */

#define HS_NAME      "vnet-hs-v1:Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define HS_ROLES     "initiator=node;responder=controller"
#define HS_T_HELLO   0x01
#define HS_T_WELCOME 0x02

enum { HS_NONE = 0, HS_I_START, HS_I_SENT, HS_I_DONE, HS_R_START, HS_R_READ, HS_R_DONE, HS_DEAD };

static void mix_hash(struct vnet_hs *hs, const void *data, size_t len)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, hs->h, 32);
    crypto_generichash_update(&st, data, len);
    crypto_generichash_final(&st, hs->h, 32);
}

/* HKDF with HMAC replaced by keyed BLAKE2b (a PRF): two 32-byte outputs from chaining key @ck
 * and input keying material @ikm. */
static void hkdf2(const uint8_t ck[32], const uint8_t *ikm, size_t ikmlen, uint8_t out1[32],
                  uint8_t out2[32])
{
    uint8_t prk[32], in[33];
    crypto_generichash(prk, 32, ikm, ikmlen, ck, 32);
    in[0] = 1;
    crypto_generichash(out1, 32, in, 1, prk, 32);
    memcpy(in, out1, 32);
    in[32] = 2;
    crypto_generichash(out2, 32, in, 33, prk, 32);
    sodium_memzero(prk, sizeof(prk));
    sodium_memzero(in, sizeof(in));
}

static void mix_key(struct vnet_hs *hs, const uint8_t dhout[32])
{
    uint8_t ck[32];
    hkdf2(hs->ck, dhout, 32, ck, hs->k);
    memcpy(hs->ck, ck, 32);
    sodium_memzero(ck, sizeof(ck));
    hs->n = 0;
}

/* DH then MixKey; the DH output is wiped. */
static int mix_dh(struct vnet_hs *hs, const uint8_t sec[32], const uint8_t pub[32])
{
    uint8_t s[32];
    int rc = dh(s, sec, pub);
    if (rc == 0)
        mix_key(hs, s);
    sodium_memzero(s, sizeof(s));
    return rc;
}

static void hs_nonce(uint8_t nonce[12], uint64_t n)
{
    memset(nonce, 0, 12);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i)); /* Noise: 32 zero bits, 64-bit little endian */
}

static void encrypt_and_hash(struct vnet_hs *hs, const uint8_t *p, size_t plen, uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long clen;
    hs_nonce(nonce, hs->n++);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, p, plen, hs->h, 32, NULL, nonce, hs->k);
    mix_hash(hs, out, (size_t)clen);
}

static int decrypt_and_hash(struct vnet_hs *hs, const uint8_t *c, size_t clen, uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long plen;
    hs_nonce(nonce, hs->n++);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, NULL, c, clen, hs->h, 32, nonce,
                                                  hs->k) != 0)
        return VNET_EACCES;
    mix_hash(hs, c, clen);
    return 0;
}

static int hs_init(struct vnet_hs *hs, int role, const struct vnet_keypair *me,
                   const uint8_t rs[32], const void *prologue, size_t plen)
{
    if (!hs)
        return VNET_EINVAL;
    sodium_memzero(hs, sizeof(*hs));
    if (!me || plen > VNET_HS_PROLOGUE_MAX || (plen && !prologue))
        return VNET_EINVAL;
    if (vnet_crypto_init() < 0)
        return VNET_EIO;
    hs->role = role;
    hs->s = *me;
    crypto_generichash(hs->h, 32, (const uint8_t *)HS_NAME, strlen(HS_NAME), NULL, 0);
    memcpy(hs->ck, hs->h, 32);
    /* Prologue: protocol version and the roles (a message can never be reflected to its
     * sender as if it came from the other role), then the caller's bytes, length-prefixed. */
    uint8_t pre[4 + sizeof(HS_ROLES) - 1 + 2];
    pre[0] = (uint8_t)(VNET_PROTO_VERSION >> 24);
    pre[1] = (uint8_t)(VNET_PROTO_VERSION >> 16);
    pre[2] = (uint8_t)(VNET_PROTO_VERSION >> 8);
    pre[3] = (uint8_t)VNET_PROTO_VERSION;
    memcpy(pre + 4, HS_ROLES, sizeof(HS_ROLES) - 1);
    pre[sizeof(pre) - 2] = (uint8_t)(plen >> 8);
    pre[sizeof(pre) - 1] = (uint8_t)plen;
    mix_hash(hs, pre, sizeof(pre));
    mix_hash(hs, prologue ? prologue : "", plen);
    /* Pre-message of IK: the responder's static key is known to the initiator. */
    mix_hash(hs, rs, 32);
    if (role == VNET_HS_INITIATOR)
        memcpy(hs->rs, rs, 32);
    hs->state = role == VNET_HS_INITIATOR ? HS_I_START : HS_R_START;
    return 0;
}

int vnet_hs_init_initiator(struct vnet_hs *hs, const struct vnet_keypair *me,
                           const uint8_t responder_pub[VNET_KEY_LEN], const void *prologue,
                           size_t prologue_len)
{
    if (!responder_pub || (me && sodium_memcmp(me->pub, responder_pub, 32) == 0)) {
        if (hs)
            sodium_memzero(hs, sizeof(*hs));
        return VNET_EINVAL;
    }
    return hs_init(hs, VNET_HS_INITIATOR, me, responder_pub, prologue, prologue_len);
}

int vnet_hs_init_responder(struct vnet_hs *hs, const struct vnet_keypair *me, const void *prologue,
                           size_t prologue_len)
{
    return hs_init(hs, VNET_HS_RESPONDER, me, me ? me->pub : NULL, prologue, prologue_len);
}

static int hs_fail(struct vnet_hs *hs, int rc)
{
    sodium_memzero(hs, sizeof(*hs));
    hs->state = HS_DEAD;
    return rc;
}

int vnet_hs_write_hello(struct vnet_hs *hs, uint64_t timestamp, uint8_t *out, size_t outcap,
                        size_t *outlen)
{
    if (!hs || !out || !outlen)
        return VNET_EINVAL;
    if (hs->state != HS_I_START)
        return VNET_ESTATE;
    if (outcap < VNET_HS_HELLO_LEN)
        return VNET_ENOSPC;
    uint8_t *p = out;
    *p++ = HS_T_HELLO;
    mix_hash(hs, out, 1);
    crypto_kx_keypair(hs->e.pub, hs->e.sec); /* e */
    memcpy(p, hs->e.pub, 32);
    mix_hash(hs, p, 32);
    p += 32;
    int rc = mix_dh(hs, hs->e.sec, hs->rs); /* es */
    if (rc)
        return hs_fail(hs, rc);
    encrypt_and_hash(hs, hs->s.pub, 32, p); /* s */
    p += 48;
    if ((rc = mix_dh(hs, hs->s.sec, hs->rs)) != 0) /* ss */
        return hs_fail(hs, rc);
    uint8_t ts[8];
    be64(ts, timestamp);
    encrypt_and_hash(hs, ts, 8, p); /* payload: timestamp */
    p += 24;
    *outlen = (size_t)(p - out);
    hs->state = HS_I_SENT;
    return 0;
}

static int check_msg(const uint8_t *in, size_t len, size_t want, uint8_t type)
{
    if (!in || len == 0)
        return VNET_ETRUNC;
    if (in[0] != type)
        return VNET_EVERSION;
    if (len < want)
        return VNET_ETRUNC;
    if (len != want)
        return VNET_EMALFORM;
    return 0;
}

int vnet_hs_read_hello(struct vnet_hs *hs, const uint8_t *in, size_t len,
                       uint8_t claimed_pub[VNET_KEY_LEN], uint64_t *timestamp)
{
    if (!hs || !claimed_pub)
        return VNET_EINVAL;
    if (hs->state != HS_R_START)
        return VNET_ESTATE;
    int rc = check_msg(in, len, VNET_HS_HELLO_LEN, HS_T_HELLO);
    if (rc)
        return hs_fail(hs, rc);
    const uint8_t *p = in;
    mix_hash(hs, p, 1);
    p++;
    memcpy(hs->re, p, 32); /* e */
    mix_hash(hs, p, 32);
    p += 32;
    if ((rc = mix_dh(hs, hs->s.sec, hs->re)) != 0) /* es */
        return hs_fail(hs, rc);
    if ((rc = decrypt_and_hash(hs, p, 48, hs->rs)) != 0) /* s */
        return hs_fail(hs, rc);
    p += 48;
    if ((rc = mix_dh(hs, hs->s.sec, hs->rs)) != 0) /* ss */
        return hs_fail(hs, rc);
    uint8_t ts[8];
    if ((rc = decrypt_and_hash(hs, p, 24, ts)) != 0)
        return hs_fail(hs, rc);
    hs->peer_time = rd64(ts);
    memcpy(claimed_pub, hs->rs, 32);
    if (timestamp)
        *timestamp = hs->peer_time;
    hs->state = HS_R_READ;
    return 0;
}

int vnet_hs_accept(struct vnet_hs *hs, uint8_t *out, size_t outcap, size_t *outlen)
{
    if (!hs || !out || !outlen)
        return VNET_EINVAL;
    if (hs->state != HS_R_READ)
        return VNET_ESTATE;
    if (outcap < VNET_HS_WELCOME_LEN)
        return VNET_ENOSPC;
    uint8_t *p = out;
    *p++ = HS_T_WELCOME;
    mix_hash(hs, out, 1);
    crypto_kx_keypair(hs->e.pub, hs->e.sec); /* e */
    memcpy(p, hs->e.pub, 32);
    mix_hash(hs, p, 32);
    p += 32;
    int rc;
    if ((rc = mix_dh(hs, hs->e.sec, hs->re)) != 0) /* ee */
        return hs_fail(hs, rc);
    if ((rc = mix_dh(hs, hs->e.sec, hs->rs)) != 0) /* se */
        return hs_fail(hs, rc);
    encrypt_and_hash(hs, NULL, 0, p); /* empty payload: key confirmation */
    p += 16;
    *outlen = (size_t)(p - out);
    hs->state = HS_R_DONE;
    return 0;
}

int vnet_hs_read_welcome(struct vnet_hs *hs, const uint8_t *in, size_t len)
{
    if (!hs)
        return VNET_EINVAL;
    if (hs->state != HS_I_SENT)
        return VNET_ESTATE;
    int rc = check_msg(in, len, VNET_HS_WELCOME_LEN, HS_T_WELCOME);
    if (rc)
        return hs_fail(hs, rc);
    const uint8_t *p = in;
    mix_hash(hs, p, 1);
    p++;
    memcpy(hs->re, p, 32); /* e */
    mix_hash(hs, p, 32);
    p += 32;
    if ((rc = mix_dh(hs, hs->e.sec, hs->re)) != 0) /* ee */
        return hs_fail(hs, rc);
    if ((rc = mix_dh(hs, hs->s.sec, hs->re)) != 0) /* se */
        return hs_fail(hs, rc);
    uint8_t empty[1];
    if ((rc = decrypt_and_hash(hs, p, 16, empty)) != 0)
        return hs_fail(hs, rc);
    hs->state = HS_I_DONE;
    return 0;
}

static void chan_setup(struct vnet_chan *c, const uint8_t key[32], uint8_t dir)
{
    sodium_memzero(c, sizeof(*c));
    memcpy(c->key, key, 32);
    c->dir = dir;
}

int vnet_hs_split(struct vnet_hs *hs, struct vnet_chan *tx, struct vnet_chan *rx)
{
    if (!hs || !tx || !rx || tx == rx)
        return VNET_EINVAL;
    if (hs->state != HS_I_DONE && hs->state != HS_R_DONE)
        return VNET_ESTATE;
    uint8_t k1[32], k2[32]; /* k1: initiator -> responder, k2: responder -> initiator */
    hkdf2(hs->ck, NULL, 0, k1, k2);
    bool init = hs->state == HS_I_DONE;
    chan_setup(tx, init ? k1 : k2, 1);
    chan_setup(rx, init ? k2 : k1, 2);
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
    sodium_memzero(hs, sizeof(*hs));
    return 0;
}

void vnet_hs_wipe(struct vnet_hs *hs)
{
    if (hs)
        sodium_memzero(hs, sizeof(*hs));
}

/* ======================================================================================== */
/* Channel                                                                                   */
/* ======================================================================================== */

#define SS(c) ((crypto_secretstream_xchacha20poly1305_state *)(void *)(c)->st)

size_t vnet_chan_sealed_len(const struct vnet_chan *c, size_t len)
{
    return len + VNET_CHAN_OVERHEAD + (c && !c->started ? VNET_CHAN_HEADER_LEN : 0);
}

static int chan_break(struct vnet_chan *c, int rc)
{
    sodium_memzero(c, sizeof(*c));
    c->broken = 1;
    return rc;
}

int vnet_chan_seal(struct vnet_chan *c, const uint8_t *in, size_t len, uint8_t *out, size_t outcap,
                   size_t *outlen)
{
    if (!c || !out || !outlen || (len && !in))
        return VNET_EINVAL;
    if (c->dir != 1 || c->broken)
        return VNET_ESTATE;
    if (len > VNET_CHAN_MAX)
        return VNET_EMSGSIZE;
    size_t need = vnet_chan_sealed_len(c, len);
    if (outcap < need)
        return VNET_ENOSPC;
    uint8_t *p = out;
    if (!c->started) {
        crypto_secretstream_xchacha20poly1305_init_push(SS(c), p, c->key);
        sodium_memzero(c->key, sizeof(c->key));
        c->started = 1;
        p += VNET_CHAN_HEADER_LEN;
    }
    unsigned long long clen;
    crypto_secretstream_xchacha20poly1305_push(SS(c), p, &clen, in, len, NULL, 0,
                                               crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    c->frames++;
    *outlen = need;
    return 0;
}

int vnet_chan_open(struct vnet_chan *c, const uint8_t *in, size_t len, uint8_t *out, size_t outcap,
                   size_t *outlen)
{
    if (!c || !outlen || (len && !in) || (outcap && !out))
        return VNET_EINVAL;
    if (c->dir != 2 || c->broken)
        return VNET_ESTATE;
    size_t hdr = c->started ? 0 : VNET_CHAN_HEADER_LEN;
    if (len < hdr + VNET_CHAN_OVERHEAD)
        return chan_break(c, VNET_ETRUNC);
    size_t plen = len - hdr - VNET_CHAN_OVERHEAD;
    if (plen > VNET_CHAN_MAX)
        return chan_break(c, VNET_EMSGSIZE);
    if (outcap < plen)
        return VNET_ENOSPC; /* the caller's buffer, not the peer's fault: retry allowed */
    if (!c->started && crypto_secretstream_xchacha20poly1305_init_pull(SS(c), in, c->key) != 0)
        return chan_break(c, VNET_EACCES);
    unsigned long long mlen;
    unsigned char tag;
    /* out may be NULL only when plen == 0; libsodium writes nothing then. */
    uint8_t dummy[1];
    if (crypto_secretstream_xchacha20poly1305_pull(SS(c), out ? out : dummy, &mlen, &tag, in + hdr,
                                                   len - hdr, NULL, 0) != 0)
        return chan_break(c, VNET_EACCES);
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        return chan_break(c, VNET_EPROTO);
    if (!c->started) {
        sodium_memzero(c->key, sizeof(c->key));
        c->started = 1;
    }
    c->frames++;
    *outlen = (size_t)mlen;
    return 0;
}

void vnet_chan_wipe(struct vnet_chan *c)
{
    if (c)
        sodium_memzero(c, sizeof(*c));
}

/* ======================================================================================== */
/* Replay window (RFC 6479)                                                                  */
/* ======================================================================================== */

#define RW_WORDS (VNET_REPLAY_BITS / 64)

void vnet_replay_init(struct vnet_replay *r)
{
    memset(r, 0, sizeof(*r));
}

int vnet_replay_check(const struct vnet_replay *r, uint64_t counter)
{
    if (counter >= r->next)
        return 0; /* newer than anything seen */
    if (r->next - 1 - counter >= VNET_REPLAY_WINDOW)
        return VNET_ERANGE;
    uint64_t bit = counter % VNET_REPLAY_BITS;
    return (r->bitmap[bit / 64] >> (bit % 64)) & 1 ? VNET_EEXIST : 0;
}

int vnet_replay_update(struct vnet_replay *r, uint64_t counter)
{
    int rc = vnet_replay_check(r, counter);
    if (rc)
        return rc;
    if (counter >= r->next) {
        /* Slide: clear the words between the old top word and the new one (at most all). */
        uint64_t new_word = counter / 64;
        uint64_t first = r->next ? (r->next - 1) / 64 + 1 : 0;
        if (new_word >= first) {
            uint64_t n = new_word - first + 1;
            if (n > RW_WORDS)
                n = RW_WORDS;
            for (uint64_t i = 0; i < n; i++)
                r->bitmap[(first + i) % RW_WORDS] = 0;
        }
        r->next = counter + 1;
    }
    uint64_t bit = counter % VNET_REPLAY_BITS;
    r->bitmap[bit / 64] |= 1ull << (bit % 64);
    return 0;
}

/* ======================================================================================== */
/* Data plane                                                                                */
/* ======================================================================================== */

#define AES(k)     ((crypto_aead_aes256gcm_state *)(void *)(k)->st)
#define SEAL_LABEL "vnet-seal-v1"

enum vnet_seal_suite vnet_seal_suite_auto(void)
{
    if (vnet_crypto_init() < 0)
        return VNET_SEAL_CHACHA20;
    return crypto_aead_aes256gcm_is_available() ? VNET_SEAL_AES256GCM : VNET_SEAL_CHACHA20;
}

const char *vnet_seal_suite_name(enum vnet_seal_suite s)
{
    switch (s) {
    case VNET_SEAL_AUTO:
        return "auto";
    case VNET_SEAL_AES256GCM:
        return "aes256gcm";
    case VNET_SEAL_CHACHA20:
        return "chacha20poly1305";
    }
    return "?";
}

static int resolve_suite(enum vnet_seal_suite *s)
{
    if (vnet_crypto_init() < 0)
        return VNET_EIO;
    switch (*s) {
    case VNET_SEAL_AUTO:
        *s = vnet_seal_suite_auto();
        return 0;
    case VNET_SEAL_AES256GCM:
        return crypto_aead_aes256gcm_is_available() ? 0 : VNET_ENOTSUP;
    case VNET_SEAL_CHACHA20:
        return 0;
    }
    return VNET_EINVAL;
}

/* okm = BLAKE2b-512(key = X25519 secret, label || suite || sender || receiver || vni || epoch);
 * the AEAD key is okm[0..31], the nonce salt okm[32..35]. */
static void derive_key(struct vnet_seal_key *k, const uint8_t dhs[32], const uint8_t snd[32],
                       const uint8_t rcv[32], uint32_t vni, uint8_t suite, uint64_t epoch)
{
    uint8_t msg[12 + 1 + 32 + 32 + 4 + 8], okm[64];
    _Static_assert(sizeof(SEAL_LABEL) - 1 == 12, "label length");
    uint8_t *p = msg;
    memcpy(p, SEAL_LABEL, 12);
    p += 12;
    *p++ = suite;
    memcpy(p, snd, 32);
    p += 32;
    memcpy(p, rcv, 32);
    p += 32;
    *p++ = (uint8_t)(vni >> 24);
    *p++ = (uint8_t)(vni >> 16);
    *p++ = (uint8_t)(vni >> 8);
    *p++ = (uint8_t)vni;
    be64(p, epoch);
    crypto_generichash(okm, 64, msg, sizeof(msg), dhs, 32);
    sodium_memzero(k, sizeof(*k));
    if (suite == VNET_SEAL_AES256GCM)
        crypto_aead_aes256gcm_beforenm(AES(k), okm);
    else
        memcpy(k->st, okm, 32);
    memcpy(k->salt, okm + 32, 4);
    k->suite = suite;
    k->epoch = epoch;
    k->valid = 1;
    sodium_memzero(okm, sizeof(okm));
}

int vnet_seal_key_derive(struct vnet_seal_key *k, const struct vnet_keypair *me,
                         const uint8_t peer_pub[VNET_KEY_LEN], uint32_t vni,
                         enum vnet_seal_suite suite, uint64_t epoch, enum vnet_seal_dir dir)
{
    if (!k)
        return VNET_EINVAL;
    sodium_memzero(k, sizeof(*k));
    if (!me || !peer_pub || vni > 0xFFFFFFu || (dir != VNET_SEAL_TX && dir != VNET_SEAL_RX))
        return VNET_EINVAL;
    int rc = resolve_suite(&suite);
    if (rc)
        return rc;
    if (sodium_memcmp(me->pub, peer_pub, 32) == 0)
        return VNET_EINVAL;
    uint8_t s[32];
    if ((rc = dh(s, me->sec, peer_pub)) != 0)
        return rc;
    if (dir == VNET_SEAL_TX)
        derive_key(k, s, me->pub, peer_pub, vni, (uint8_t)suite, epoch);
    else
        derive_key(k, s, peer_pub, me->pub, vni, (uint8_t)suite, epoch);
    sodium_memzero(s, sizeof(s));
    return 0;
}

void vnet_seal_key_wipe(struct vnet_seal_key *k)
{
    if (k)
        sodium_memzero(k, sizeof(*k));
}

static inline void seal_nonce(uint8_t nonce[12], const struct vnet_seal_key *k, uint64_t counter)
{
    memcpy(nonce, k->salt, 4);
    be64(nonce + 4, counter);
}

int vnet_seal_encrypt(const struct vnet_seal_key *k, uint64_t counter, const uint8_t *in,
                      size_t len, uint8_t *out, size_t outcap)
{
    if (!k || !k->valid || !out || (len && !in))
        return VNET_EINVAL;
    if (len > VNET_SEAL_MAX_LEN)
        return VNET_EMSGSIZE;
    if (counter >= VNET_SEAL_COUNTER_MAX)
        return VNET_ERANGE;
    if (outcap < len + VNET_SEAL_OVERHEAD)
        return VNET_ENOSPC;
    out[0] = (uint8_t)(VNET_SEAL_VERSION << 4 | k->suite);
    out[1] = 0;
    for (int i = 0; i < 6; i++)
        out[2 + i] = (uint8_t)(counter >> (8 * (5 - i)));
    be64(out + 8, k->epoch);
    uint8_t nonce[12];
    seal_nonce(nonce, k, counter);
    unsigned long long clen;
    static const uint8_t empty[1];
    if (!in)
        in = empty;
    if (k->suite == VNET_SEAL_AES256GCM)
        crypto_aead_aes256gcm_encrypt_afternm(out + VNET_SEAL_HDR_LEN, &clen, in, len, out,
                                              VNET_SEAL_HDR_LEN, NULL, nonce, AES(k));
    else
        crypto_aead_chacha20poly1305_ietf_encrypt(out + VNET_SEAL_HDR_LEN, &clen, in, len, out,
                                                  VNET_SEAL_HDR_LEN, NULL, nonce, k->st);
    return (int)(len + VNET_SEAL_OVERHEAD);
}

int vnet_seal_parse(const uint8_t *in, size_t len, uint64_t *epoch, uint64_t *counter,
                    enum vnet_seal_suite *suite)
{
    if (!in || len < VNET_SEAL_OVERHEAD)
        return VNET_ETRUNC;
    uint8_t suite_b = in[0] & 0x0f;
    if (in[0] >> 4 != VNET_SEAL_VERSION ||
        (suite_b != VNET_SEAL_AES256GCM && suite_b != VNET_SEAL_CHACHA20))
        return VNET_EVERSION;
    if (in[1] != 0)
        return VNET_EMALFORM;
    if (len - VNET_SEAL_OVERHEAD > VNET_SEAL_MAX_LEN)
        return VNET_EMSGSIZE;
    uint64_t c = 0;
    for (int i = 0; i < 6; i++)
        c = c << 8 | in[2 + i];
    if (counter)
        *counter = c;
    if (epoch)
        *epoch = rd64(in + 8);
    if (suite)
        *suite = (enum vnet_seal_suite)suite_b;
    return 0;
}

/* Authenticate and decrypt with @k; the header was parsed already. */
static int seal_open_key(const struct vnet_seal_key *k, uint64_t counter, const uint8_t *in,
                         size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    seal_nonce(nonce, k, counter);
    unsigned long long mlen;
    int r;
    size_t clen = len - VNET_SEAL_HDR_LEN;
    uint8_t dummy[1];
    if (!out)
        out = dummy; /* zero-length plaintext: nothing is written */
    if (k->suite == VNET_SEAL_AES256GCM)
        r = crypto_aead_aes256gcm_decrypt_afternm(out, &mlen, NULL, in + VNET_SEAL_HDR_LEN, clen,
                                                  in, VNET_SEAL_HDR_LEN, nonce, AES(k));
    else
        r = crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, in + VNET_SEAL_HDR_LEN,
                                                      clen, in, VNET_SEAL_HDR_LEN, nonce, k->st);
    return r == 0 ? (int)mlen : VNET_EACCES;
}

int vnet_seal_decrypt(const struct vnet_seal_key *k, const uint8_t *in, size_t len, uint8_t *out,
                      size_t outcap, uint64_t *counter)
{
    if (!k || !k->valid)
        return VNET_EINVAL;
    uint64_t e, c;
    enum vnet_seal_suite s;
    int rc = vnet_seal_parse(in, len, &e, &c, &s);
    if (rc)
        return rc;
    if ((uint8_t)s != k->suite)
        return VNET_ENOTSUP;
    if (e != k->epoch)
        return VNET_ENOENT;
    if (outcap < len - VNET_SEAL_OVERHEAD || (!out && len > VNET_SEAL_OVERHEAD))
        return VNET_ENOSPC;
    rc = seal_open_key(k, c, in, len, out);
    if (rc >= 0 && counter)
        *counter = c;
    return rc;
}

/* ---- peers: epochs, counters, windows ---- */

/* A fresh epoch: seconds since 2020 in the high 32 bits, 32 random bits below. A restarted
 * sender thus starts above every epoch it used before (clocks permitting) and, even with a
 * clock set back, collides with an earlier key only with probability 2^-32. */
static uint64_t fresh_epoch(uint64_t now_ms)
{
    uint64_t s = now_ms / 1000;
    s = s > VNET_SEAL_EPOCH_BASE_S ? s - VNET_SEAL_EPOCH_BASE_S : 0;
    if (s > 0xFFFFFFFFu)
        s = 0xFFFFFFFFu;
    return s << 32 | randombytes_random();
}

static uint64_t epoch_ms(uint64_t epoch)
{
    return ((epoch >> 32) + VNET_SEAL_EPOCH_BASE_S) * 1000;
}

int vnet_seal_peer_init(struct vnet_seal_peer *p, const struct vnet_keypair *me,
                        const uint8_t peer_pub[VNET_KEY_LEN], uint32_t vni,
                        enum vnet_seal_suite suite, uint64_t now_ms)
{
    if (!p)
        return VNET_EINVAL;
    sodium_memzero(p, sizeof(*p));
    if (!me || !peer_pub || vni > 0xFFFFFFu)
        return VNET_EINVAL;
    int rc = resolve_suite(&suite);
    if (rc)
        return rc;
    if (sodium_memcmp(me->pub, peer_pub, 32) == 0)
        return VNET_EINVAL;
    if ((rc = dh(p->tx.dh, me->sec, peer_pub)) != 0) {
        sodium_memzero(p, sizeof(*p));
        return rc;
    }
    memcpy(p->rx.dh, p->tx.dh, 32);
    memcpy(p->tx.me, me->pub, 32);
    memcpy(p->tx.peer, peer_pub, 32);
    memcpy(p->rx.me, me->pub, 32);
    memcpy(p->rx.peer, peer_pub, 32);
    p->tx.vni = p->rx.vni = vni;
    p->tx.suite = p->rx.suite = (uint8_t)suite;
    derive_key(&p->tx.key, p->tx.dh, p->tx.me, p->tx.peer, vni, (uint8_t)suite,
               fresh_epoch(now_ms));
    p->tx.started_ms = now_ms;
    return 0;
}

int vnet_seal_peer_seal(struct vnet_seal_tx *tx, uint64_t now_ms, const uint8_t *in, size_t len,
                        uint8_t *out, size_t outcap)
{
    if (!tx || !tx->key.valid)
        return VNET_EINVAL;
    if (len > VNET_SEAL_MAX_LEN)
        return VNET_EMSGSIZE;
    if (outcap < len + VNET_SEAL_OVERHEAD)
        return VNET_ENOSPC;
    /* Rekey by count or age; a clock set back by more than the period also rekeys. */
    if (tx->counter >= VNET_SEAL_REKEY_PACKETS || now_ms >= tx->started_ms + VNET_SEAL_REKEY_MS ||
        now_ms + VNET_SEAL_REKEY_MS < tx->started_ms) {
        uint64_t e = fresh_epoch(now_ms);
        if (e <= tx->key.epoch)
            e = tx->key.epoch + 1;
        derive_key(&tx->key, tx->dh, tx->me, tx->peer, tx->vni, tx->suite, e);
        tx->counter = 0;
        tx->started_ms = now_ms;
        tx->rekeys++;
    }
    int rc = vnet_seal_encrypt(&tx->key, tx->counter, in, len, out, outcap);
    if (rc >= 0)
        tx->counter++;
    return rc;
}

void vnet_seal_peer_rekey(struct vnet_seal_tx *tx)
{
    if (tx)
        tx->counter = VNET_SEAL_REKEY_PACKETS;
}

uint64_t vnet_seal_peer_tx_epoch(const struct vnet_seal_tx *tx)
{
    return tx ? tx->key.epoch : 0;
}

int vnet_seal_peer_open(struct vnet_seal_rx *rx, uint64_t now_ms, const uint8_t *in, size_t len,
                        uint8_t *out, size_t outcap)
{
    if (!rx || !rx->suite)
        return VNET_EINVAL;
    uint64_t e, c;
    enum vnet_seal_suite s;
    int rc = vnet_seal_parse(in, len, &e, &c, &s);
    if (rc)
        return rc;
    if ((uint8_t)s != rx->suite)
        return VNET_ENOTSUP;
    if (outcap < len - VNET_SEAL_OVERHEAD || (!out && len > VNET_SEAL_OVERHEAD))
        return VNET_ENOSPC;
    struct vnet_seal_rx_slot *slot;
    if (rx->cur.key.valid && e == rx->cur.key.epoch) {
        slot = &rx->cur;
    } else if (rx->prev.key.valid && e == rx->prev.key.epoch) {
        if (now_ms >= rx->prev_until_ms)
            return VNET_ENOENT; /* grace period over */
        slot = &rx->prev;
    } else if ((!rx->cur.key.valid || e > rx->cur.key.epoch) &&
               epoch_ms(e) + VNET_SEAL_MAX_AGE_MS >= now_ms) {
        /* A newer epoch (sender rekeyed or restarted): derive into scratch; it is adopted only
         * if this packet authenticates, so forged packets cannot disturb the current state. */
        if (!rx->tmp.key.valid || rx->tmp.key.epoch != e)
            derive_key(&rx->tmp.key, rx->dh, rx->peer, rx->me, rx->vni, rx->suite, e);
        vnet_replay_init(&rx->tmp.win);
        slot = &rx->tmp;
    } else {
        return VNET_ENOENT; /* older than current (and not the previous), or too old */
    }
    if ((rc = vnet_replay_check(&slot->win, c)) != 0)
        return rc;
    int n = seal_open_key(&slot->key, c, in, len, out);
    if (n < 0)
        return n;
    vnet_replay_update(&slot->win, c);
    if (slot == &rx->tmp) {
        if (rx->cur.key.valid) {
            rx->prev = rx->cur;
            rx->prev_until_ms = now_ms + VNET_SEAL_GRACE_MS;
        }
        rx->cur = rx->tmp;
        sodium_memzero(&rx->tmp, sizeof(rx->tmp));
        rx->epochs_adopted++;
    }
    return n;
}

void vnet_seal_peer_wipe(struct vnet_seal_peer *p)
{
    if (p)
        sodium_memzero(p, sizeof(*p));
}
