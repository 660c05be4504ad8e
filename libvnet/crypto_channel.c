/* Cryptographic building blocks, part 2 (include/vnet/crypto.h, "Control-channel handshake"
 * and "Control channel: frames"): the Noise IK handshake carried in HELLO.auth / WELCOME.auth
 * and the secretstream channel that follows it. Pure computation on caller buffers; the
 * session layer (session.c) puts the results on the wire. docs/security.md is the
 * specification. */
#include "vnet/crypto.h"

#include "crypto_int.h"
#include "vnet/error.h"

#include <sodium.h>
#include <string.h>

_Static_assert(sizeof(((struct vnet_chan *)0)->st) >=
                   sizeof(crypto_secretstream_xchacha20poly1305_state),
               "secretstream state fits");
_Static_assert(VNET_CHAN_HEADER_LEN == crypto_secretstream_xchacha20poly1305_HEADERBYTES, "hdr");
_Static_assert(VNET_CHAN_OVERHEAD == crypto_secretstream_xchacha20poly1305_ABYTES, "abytes");

/* ======================================================================================== */
/* Handshake: Noise IK shape with libsodium primitives                                       */
/* ======================================================================================== */

#define HS_BIND      "vnet-hs-bind"
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
    int rc = vnet__dh(s, sec, pub);
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
    pre[0] = (uint8_t)(VNET__HS_PROTO_VERSION >> 24);
    pre[1] = (uint8_t)(VNET__HS_PROTO_VERSION >> 16);
    pre[2] = (uint8_t)(VNET__HS_PROTO_VERSION >> 8);
    pre[3] = (uint8_t)VNET__HS_PROTO_VERSION;
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
    vnet__be64(ts, timestamp);
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
    hs->peer_time = vnet__rd64(ts);
    memcpy(claimed_pub, hs->rs, 32);
    if (timestamp)
        *timestamp = hs->peer_time;
    hs->state = HS_R_READ;
    return 0;
}

int vnet__hs_bind(struct vnet_hs *hs, const void *data, size_t len)
{
    if (!hs || (len && !data))
        return VNET_EINVAL;
    if (hs->state != HS_R_READ && hs->state != HS_I_SENT)
        return VNET_ESTATE;
    /* Labelled and length-prefixed, so bound bytes never read as a handshake token. */
    uint8_t pre[sizeof(HS_BIND) - 1 + 8];
    memcpy(pre, HS_BIND, sizeof(HS_BIND) - 1);
    vnet__be64(pre + sizeof(HS_BIND) - 1, (uint64_t)len);
    mix_hash(hs, pre, sizeof(pre));
    mix_hash(hs, data ? data : (const void *)"", len);
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
