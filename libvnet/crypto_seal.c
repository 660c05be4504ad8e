/* Cryptographic building blocks, part 3 (include/vnet/crypto.h, "Data plane: anti-replay
 * window" and "Data plane: packet protection"): per-peer keys derived from the static keys,
 * AES-256-GCM or ChaCha20-Poly1305 packet sealing, epochs and the replay window.
 * docs/security.md is the specification. */
#include "vnet/crypto.h"

#include "crypto_int.h"
#include "vnet/error.h"

#include <sodium.h>
#include <string.h>

_Static_assert(sizeof(((struct vnet_seal_key *)0)->st) >= sizeof(crypto_aead_aes256gcm_state),
               "AES-GCM state fits");
_Static_assert(VNET_SEAL_TAG_LEN == crypto_aead_aes256gcm_ABYTES, "GCM tag");
_Static_assert(VNET_SEAL_TAG_LEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "Poly1305 tag");

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

/* okm = BLAKE2b-512(key = X25519 secret, label || suite || sender || receiver || vni || epoch
 * [|| sender nonce || receiver nonce]); the AEAD key is okm[0..31], the nonce salt okm[32..35].
 * The two per-boot data-plane nonces (vnet_seal_peer_init_nonces) are appended only when the
 * pair uses them: without them the derivation is the original one. */
static void derive_key_n(struct vnet_seal_key *k, const uint8_t dhs[32], const uint8_t snd[32],
                         const uint8_t rcv[32], uint32_t vni, uint8_t suite, uint64_t epoch,
                         const uint8_t *snd_nonce, const uint8_t *rcv_nonce)
{
    uint8_t msg[12 + 1 + 32 + 32 + 4 + 8 + 2 * VNET_SEAL_NONCE_LEN], okm[64];
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
    vnet__be64(p, epoch);
    p += 8;
    if (snd_nonce && rcv_nonce) {
        memcpy(p, snd_nonce, VNET_SEAL_NONCE_LEN);
        p += VNET_SEAL_NONCE_LEN;
        memcpy(p, rcv_nonce, VNET_SEAL_NONCE_LEN);
        p += VNET_SEAL_NONCE_LEN;
    }
    crypto_generichash(okm, 64, msg, (size_t)(p - msg), dhs, 32);
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

static void derive_key(struct vnet_seal_key *k, const uint8_t dhs[32], const uint8_t snd[32],
                       const uint8_t rcv[32], uint32_t vni, uint8_t suite, uint64_t epoch)
{
    derive_key_n(k, dhs, snd, rcv, vni, suite, epoch, NULL, NULL);
}

/* The transmit and receive halves' keys for @epoch, with their nonces when they have them. */
static void derive_tx(struct vnet_seal_tx *tx, uint64_t epoch)
{
    derive_key_n(&tx->key, tx->dh, tx->me, tx->peer, tx->vni, tx->suite, epoch,
                 tx->has_nonces ? tx->n_me : NULL, tx->has_nonces ? tx->n_peer : NULL);
}

static void derive_rx(struct vnet_seal_rx *rx, struct vnet_seal_key *k, uint64_t epoch)
{
    derive_key_n(k, rx->dh, rx->peer, rx->me, rx->vni, rx->suite, epoch,
                 rx->has_nonces ? rx->n_peer : NULL, rx->has_nonces ? rx->n_me : NULL);
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
    if ((rc = vnet__dh(s, me->sec, peer_pub)) != 0)
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
    vnet__be64(nonce + 4, counter);
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
    vnet__be64(out + 8, k->epoch);
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
        *epoch = vnet__rd64(in + 8);
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
    return vnet_seal_peer_init_nonces(p, me, peer_pub, vni, suite, now_ms, NULL, NULL);
}

int vnet_seal_peer_init_nonces(struct vnet_seal_peer *p, const struct vnet_keypair *me,
                               const uint8_t peer_pub[VNET_KEY_LEN], uint32_t vni,
                               enum vnet_seal_suite suite, uint64_t now_ms,
                               const uint8_t my_nonce[VNET_SEAL_NONCE_LEN],
                               const uint8_t peer_nonce[VNET_SEAL_NONCE_LEN])
{
    if (!p)
        return VNET_EINVAL;
    sodium_memzero(p, sizeof(*p));
    if (!me || !peer_pub || vni > 0xFFFFFFu || (!my_nonce != !peer_nonce))
        return VNET_EINVAL;
    int rc = resolve_suite(&suite);
    if (rc)
        return rc;
    if (sodium_memcmp(me->pub, peer_pub, 32) == 0)
        return VNET_EINVAL;
    if (my_nonce) {
        p->tx.has_nonces = p->rx.has_nonces = true;
        memcpy(p->tx.n_me, my_nonce, VNET_SEAL_NONCE_LEN);
        memcpy(p->rx.n_me, my_nonce, VNET_SEAL_NONCE_LEN);
        memcpy(p->tx.n_peer, peer_nonce, VNET_SEAL_NONCE_LEN);
        memcpy(p->rx.n_peer, peer_nonce, VNET_SEAL_NONCE_LEN);
    }
    if ((rc = vnet__dh(p->tx.dh, me->sec, peer_pub)) != 0) {
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
    derive_tx(&p->tx, fresh_epoch(now_ms));
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
        derive_tx(tx, e);
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
            derive_rx(rx, &rx->tmp.key, e);
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
