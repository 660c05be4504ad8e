/* libvnet: cryptographic building blocks (docs/security.md describes the design byte for byte).
 *
 * Four parts, all pure computation on caller buffers (no sockets, no files except the key-file
 * calls, no allocation):
 *
 *   vnet_key_*   long-term identity keys (one X25519 keypair per node and per controller), their
 *                files (mode 0600) and their text form (43 characters of URL-safe base64).
 *   vnet_hs_*    the control-channel handshake carried in HELLO.auth / WELCOME.auth: mutual
 *                authentication with static keys plus ephemeral keys for forward secrecy
 *                (Noise IK pattern over X25519, BLAKE2b, ChaCha20-Poly1305).
 *   vnet_chan_*  the encrypted control channel after the handshake (libsodium secretstream:
 *                every frame authenticated, replay, reordering and truncation rejected).
 *   vnet_seal_*  data-plane ("secure" mode) packet protection between two nodes, with keys
 *   vnet_replay_*  derived from their static keys (no exchange), AES-256-GCM when the CPU has it,
 *                else ChaCha20-Poly1305, a 48-bit counter nonce, an anti-replay window and
 *                epochs for rekeying.
 *
 * All primitives come from libsodium. Structures the caller allocates hold secrets: wipe them
 * with the matching *_wipe() call when done (they hold no other resource).
 *
 * Error codes used throughout (vnet/error.h):
 *   VNET_EACCES    authentication failed: a tag or MAC did not verify (tampering, wrong key,
 *                  wrong peer), or a peer offered a degenerate (low-order) public key
 *   VNET_EEXIST    data plane: the counter was already received (replay)
 *   VNET_ERANGE    data plane: the counter is too old for the replay window; on sealing: the
 *                  counter space of the key is exhausted
 *   VNET_ENOENT    data plane: no key for the packet's epoch (stale, or older than allowed)
 *   VNET_ENOTSUP   the cipher suite is not available on this CPU or differs from the key's
 *   VNET_EVERSION  unknown version/type byte
 *   VNET_ETRUNC    input shorter than the minimum for its kind
 *   VNET_EMALFORM  input of the wrong length or with reserved bits set
 *   VNET_ENOSPC    output buffer too small
 *   VNET_ESTATE    call not valid in the object's state (e.g. split before the handshake ends,
 *                  any use of a channel after a failure)
 *   VNET_EINVAL    bad argument (NULL, own key as peer key, ...)
 *
 * Thread-safety: every function is thread-safe on distinct objects; an object (handshake,
 * channel, seal peer) must not be used by two threads at once, except that the transmit half
 * (vnet_seal_peer.tx) and the receive half (vnet_seal_peer.rx) of a seal peer are independent
 * and may each be driven by its own thread.
 */
#ifndef VNET_CRYPTO_H
#define VNET_CRYPTO_H

#include "vnet/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#define VNET_ALIGN16 alignas(16)
#else
#define VNET_ALIGN16 _Alignas(16)
#endif

/* Initialise libsodium. Every init/generate/load call below does it itself; calling it early
 * (once, at startup) only moves the cost. Returns 0 or VNET_EIO. */
VNET_API int vnet_crypto_init(void);

/* ======================================================================================== */
/* Identity keys                                                                             */
/* ======================================================================================== */

#define VNET_KEY_LEN       32 /* X25519 public and secret key size (== VNET_PUBKEY_LEN) */
#define VNET_PUBKEY_STRLEN 44 /* 43 base64 characters plus NUL */
#define VNET_KEYFILE_MAGIC "vnet-key-v1"

struct vnet_keypair {
    uint8_t pub[VNET_KEY_LEN];
    uint8_t sec[VNET_KEY_LEN];
};

/* Generate a fresh X25519 keypair. Returns 0, or VNET_EIO if libsodium cannot initialise. */
VNET_API int vnet_key_generate(struct vnet_keypair *kp);

/* Fill @kp from a 32-byte secret (the public half is computed). Returns 0 or VNET_EINVAL for a
 * secret whose public key would be degenerate. */
VNET_API int vnet_key_from_secret(struct vnet_keypair *kp, const uint8_t sec[VNET_KEY_LEN]);

/* Overwrite @kp with zeros (sodium_memzero, not optimised away). */
VNET_API void vnet_key_wipe(struct vnet_keypair *kp);

/* Write @kp to a new file @path, mode 0600, as one line
 *   "vnet-key-v1 <secret, 43 chars base64url> <public, 43 chars base64url>\n".
 * The file is written to a temporary file in the same directory, fsync'ed and then linked into
 * place, so @path either does not exist or holds the whole key, even after a crash. An existing
 * @path is never overwritten. Returns 0, VNET_EEXIST (@path exists), or a negative errno value
 * (VNET_EACCES, VNET_ENOENT for a missing directory, VNET_EIO, ...); a human explanation goes to
 * @err (may be NULL). */
VNET_API int vnet_key_save(const char *path, const struct vnet_keypair *kp, char *err,
                           size_t errlen);

/* Read a key file written by vnet_key_save(). Refuses a file that group or others may read or
 * write (VNET_EPERM, "key file /x is readable by others (mode 0644); chmod 600 it"), something
 * other than a regular file (VNET_EINVAL), content that is not exactly one well-formed key line
 * or whose public key does not match the secret (VNET_EINVAL), a missing file (VNET_ENOENT)
 * and other open/read failures (negative errno). @err (may be NULL) receives the reason. On
 * error @kp is zeroed. */
VNET_API int vnet_key_load(const char *path, struct vnet_keypair *kp, char *err, size_t errlen);

/* Public key <-> 43 characters of URL-safe base64 without padding ("vnet pubkey" form used on
 * command lines and in the database). format returns 43, or VNET_ENOSPC when @len <
 * VNET_PUBKEY_STRLEN (then buf holds ""). parse accepts exactly 43 characters in canonical
 * form, nothing around them, and returns 0 or VNET_EINVAL (@out untouched). */
VNET_API int vnet_pubkey_format(const uint8_t pub[VNET_KEY_LEN], char *buf, size_t len);
VNET_API int vnet_pubkey_parse(const char *s, uint8_t out[VNET_KEY_LEN]);

/* ======================================================================================== */
/* Control channel: handshake                                                                */
/* ======================================================================================== */

/* Sizes of the two handshake messages (both fit VNET_AUTH_MAX = 512). */
#define VNET_HS_HELLO_LEN    105 /* 1 type + 32 ephemeral + 48 sealed static + 24 sealed time */
#define VNET_HS_WELCOME_LEN  49  /* 1 type + 32 ephemeral + 16 sealed empty payload */
#define VNET_HS_PROLOGUE_MAX 256

enum vnet_hs_role { VNET_HS_INITIATOR = 1, VNET_HS_RESPONDER = 2 };

/* Handshake state. The caller allocates it; all fields are private. Holds secrets: the split
 * call wipes it, vnet_hs_wipe() wipes it otherwise (e.g. after rejecting a node). */
struct vnet_hs {
    int role, state;
    uint8_t h[32];  /* transcript hash */
    uint8_t ck[32]; /* chaining key */
    uint8_t k[32];  /* current handshake cipher key */
    uint64_t n;     /* nonce for k */
    struct vnet_keypair s, e;
    uint8_t rs[VNET_KEY_LEN], re[VNET_KEY_LEN];
    uint64_t peer_time;
};

/* Start a handshake as the initiator (a node): @me is its static keypair (copied), @responder_pub
 * the pinned controller key. @prologue (0..VNET_HS_PROLOGUE_MAX bytes, may be NULL if 0) is
 * hashed into the transcript: both sides must pass the same bytes, so the plaintext HELLO fields
 * can be bound to the handshake (docs/security.md recommends network and node names).
 * Returns 0, VNET_EINVAL (bad argument, @responder_pub equal to our own key) or VNET_EIO. */
VNET_API int vnet_hs_init_initiator(struct vnet_hs *hs, const struct vnet_keypair *me,
                                    const uint8_t responder_pub[VNET_KEY_LEN], const void *prologue,
                                    size_t prologue_len);

/* Start a handshake as the responder (the controller), with its static keypair @me. */
VNET_API int vnet_hs_init_responder(struct vnet_hs *hs, const struct vnet_keypair *me,
                                    const void *prologue, size_t prologue_len);

/* Initiator: write the HELLO.auth blob (VNET_HS_HELLO_LEN bytes) to @out. @timestamp is any
 * value that grows between successive handshakes of this node (unix time in ms is the
 * intended use); it is encrypted and authenticated and handed to the responder, which may
 * refuse a HELLO not newer than the last one it accepted from that node (replayed HELLO).
 * Returns 0, VNET_ENOSPC, VNET_ESTATE, VNET_EACCES (degenerate responder key). */
VNET_API int vnet_hs_write_hello(struct vnet_hs *hs, uint64_t timestamp, uint8_t *out,
                                 size_t outcap, size_t *outlen);

/* Responder: check a HELLO.auth blob. On success returns 0 with the initiator's static public key
 * in @claimed_pub (proven: the initiator holds its secret half) and its timestamp in
 * @timestamp (may be NULL). The caller looks the key up in its database and then calls
 * vnet_hs_accept() or, for an unknown or disabled key, vnet_hs_wipe() and answers ERROR
 * VNET_EACCES. Returns VNET_ETRUNC/VNET_EMALFORM (wrong length), VNET_EVERSION (unknown
 * type byte), VNET_EACCES (does not authenticate: tampered, or encrypted to another
 * controller key, i.e. the node pinned a different key), VNET_ESTATE. The state is unusable
 * after an error. */
VNET_API int vnet_hs_read_hello(struct vnet_hs *hs, const uint8_t *in, size_t len,
                                uint8_t claimed_pub[VNET_KEY_LEN], uint64_t *timestamp);

/* Responder: write the WELCOME.auth blob (VNET_HS_WELCOME_LEN bytes) accepting the initiator
 * whose key read_hello returned. Then vnet_hs_split(). Returns 0, VNET_ENOSPC, VNET_ESTATE. */
VNET_API int vnet_hs_accept(struct vnet_hs *hs, uint8_t *out, size_t outcap, size_t *outlen);

/* Initiator: check the WELCOME.auth blob. Returns 0 (the responder holds the pinned key and
 * answered this very HELLO), VNET_ETRUNC/VNET_EMALFORM, VNET_EVERSION, VNET_EACCES (tampered,
 * or not from the pinned controller), VNET_ESTATE. The state is unusable after an error. */
VNET_API int vnet_hs_read_welcome(struct vnet_hs *hs, const uint8_t *in, size_t len);

struct vnet_chan;
/* After a completed handshake (initiator: read_welcome succeeded; responder: accept done),
 * derive the two channel directions: @tx seals what this side sends, @rx opens what it
 * receives. Wipes @hs. Returns 0 or VNET_ESTATE. */
VNET_API int vnet_hs_split(struct vnet_hs *hs, struct vnet_chan *tx, struct vnet_chan *rx);

/* Zero the handshake state (secrets included). Safe on any state. */
VNET_API void vnet_hs_wipe(struct vnet_hs *hs);

/* ======================================================================================== */
/* Control channel: frames                                                                   */
/* ======================================================================================== */

#define VNET_CHAN_HEADER_LEN 24 /* secretstream header, once, in front of the first frame */
#define VNET_CHAN_OVERHEAD   17 /* per frame: 1 tag byte + 16 MAC bytes */
#define VNET_CHAN_MAX        (16u << 20) /* largest plaintext frame body (VNET_FRAME_MAX) */

/* One direction of an established channel. Caller-allocated, fields private. */
struct vnet_chan {
    VNET_ALIGN16 uint8_t st[64]; /* crypto_secretstream_xchacha20poly1305_state */
    uint8_t key[32];             /* until the header is sent/received */
    uint8_t dir;                 /* 1: seal, 2: open */
    uint8_t started;             /* header sent/received */
    uint8_t broken;              /* a failure happened: no further use */
    uint64_t frames;
};

/* Bytes vnet_chan_seal() will write for a @len-byte body: len + 17, plus 24 on the first. */
VNET_API size_t vnet_chan_sealed_len(const struct vnet_chan *c, size_t len);

/* Encrypt and authenticate one frame body @in (len bytes, <= VNET_CHAN_MAX) into @out (which
 * must not overlap @in); *outlen = vnet_chan_sealed_len(). The caller sends the result as the
 * body of one length-prefixed frame. Returns 0, VNET_ENOSPC, VNET_EMSGSIZE, VNET_ESTATE (not a
 * sealing channel, or broken). */
VNET_API int vnet_chan_seal(struct vnet_chan *c, const uint8_t *in, size_t len, uint8_t *out,
                            size_t outcap, size_t *outlen);

/* Verify and decrypt one received frame body into @out (needs len - 17, and - 24 more for the
 * first frame; no overlap). Any failure breaks the channel for good (VNET_ESTATE afterwards):
 * the caller closes the connection. Returns 0 with *outlen set, VNET_ETRUNC, VNET_ENOSPC,
 * VNET_EACCES (tampered, replayed, reordered, truncated, or from another session),
 * VNET_EPROTO (a secretstream tag other than MESSAGE), VNET_ESTATE. */
VNET_API int vnet_chan_open(struct vnet_chan *c, const uint8_t *in, size_t len, uint8_t *out,
                            size_t outcap, size_t *outlen);

VNET_API void vnet_chan_wipe(struct vnet_chan *c);

/* ======================================================================================== */
/* Data plane: anti-replay window                                                            */
/* ======================================================================================== */

#define VNET_REPLAY_BITS   2048
#define VNET_REPLAY_WINDOW (VNET_REPLAY_BITS - 64) /* counters this far behind the newest pass */

/* RFC 6479 sliding window. Caller-allocated; zeroed (or vnet_replay_init) means "nothing seen". */
struct vnet_replay {
    uint64_t next; /* highest counter accepted + 1; 0: none yet */
    uint64_t bitmap[VNET_REPLAY_BITS / 64];
};

VNET_API void vnet_replay_init(struct vnet_replay *r);
/* Would @counter be accepted? 0, VNET_EEXIST (seen) or VNET_ERANGE (behind the window).
 * Does not modify the window: call it before authenticating, and vnet_replay_update() only
 * after the packet authenticated. */
VNET_API int vnet_replay_check(const struct vnet_replay *r, uint64_t counter);
/* Record @counter as received (after vnet_replay_check() said 0 and the packet authenticated).
 * Returns 0, or what vnet_replay_check() would return (nothing is changed then). */
VNET_API int vnet_replay_update(struct vnet_replay *r, uint64_t counter);

/* ======================================================================================== */
/* Data plane: packet protection                                                             */
/* ======================================================================================== */

/* Packet: [0] version<<4 | suite, [1] flags (0), [2..7] counter (48-bit BE), [8..15] epoch
 * (64-bit BE), ciphertext, 16-byte tag. AAD = the 16 header bytes. Nonce = 4-byte salt from
 * the KDF || 0x0000 || counter. */
#define VNET_SEAL_VERSION     1
#define VNET_SEAL_HDR_LEN     16
#define VNET_SEAL_TAG_LEN     16
#define VNET_SEAL_OVERHEAD    (VNET_SEAL_HDR_LEN + VNET_SEAL_TAG_LEN) /* 32 */
#define VNET_SEAL_MAX_LEN     65535                                   /* largest plaintext */
#define VNET_SEAL_COUNTER_MAX ((1ull << 48) - 1) /* never sealed with; refuse at this value */

/* Rekeying policy (the caller supplies time in ms, wall clock: the epoch carries it). */
#define VNET_SEAL_REKEY_PACKETS (1ull << 28)   /* new epoch after this many packets */
#define VNET_SEAL_REKEY_MS      (120u * 1000u) /* ... or after this long */
#define VNET_SEAL_GRACE_MS      (30u * 1000u)  /* receiver keeps the previous epoch this long */
#define VNET_SEAL_MAX_SKEW_MS   (300u * 1000u) /* tolerated clock difference between nodes */
/* A receiver adopts a new epoch only if it is newer than its current one and its time stamp
 * is at most this old (a restarted receiver thus refuses replays of old traffic). */
#define VNET_SEAL_MAX_AGE_MS   (VNET_SEAL_REKEY_MS + VNET_SEAL_MAX_SKEW_MS)
#define VNET_SEAL_EPOCH_BASE_S 1577836800u /* 2020-01-01T00:00:00Z: epoch time origin */

enum vnet_seal_suite {
    VNET_SEAL_AUTO = 0,      /* AES-256-GCM if the CPU has it, else ChaCha20-Poly1305 */
    VNET_SEAL_AES256GCM = 1, /* VNET_ENOTSUP where the CPU lacks AES-NI/PCLMUL */
    VNET_SEAL_CHACHA20 = 2,  /* ChaCha20-Poly1305-IETF, everywhere */
};

/* Which suite VNET_SEAL_AUTO means on this machine. All nodes of a network must use the same
 * suite: a network that has one node without AES must configure VNET_SEAL_CHACHA20. */
VNET_API enum vnet_seal_suite vnet_seal_suite_auto(void);
/* The suite's name: "aes256gcm", "chacha20poly1305". */
VNET_API const char *vnet_seal_suite_name(enum vnet_seal_suite s);

/* The key of one direction (sender -> receiver) for one epoch. Caller-allocated, private. */
struct vnet_seal_key {
    VNET_ALIGN16 uint8_t st[512]; /* crypto_aead_aes256gcm_state, or the ChaCha20 key */
    uint8_t salt[4];
    uint8_t suite;
    uint8_t valid;
    uint64_t epoch;
};

enum vnet_seal_dir {
    VNET_SEAL_TX = 1, /* the key for what @me sends to @peer */
    VNET_SEAL_RX = 2, /* the key for what @peer sends to @me */
};

/* Low level. Derive the key for one direction and epoch: KDF(X25519(me.sec, peer_pub), suite,
 * sender pub, receiver pub, @vni, @epoch). Both ends derive the same key, no message needed.
 * Returns 0, VNET_EINVAL (peer_pub is our own key, vni over 24 bits, bad suite), VNET_EACCES
 * (degenerate peer key), VNET_ENOTSUP (AES asked for but unavailable). */
VNET_API int vnet_seal_key_derive(struct vnet_seal_key *k, const struct vnet_keypair *me,
                                  const uint8_t peer_pub[VNET_KEY_LEN], uint32_t vni,
                                  enum vnet_seal_suite suite, uint64_t epoch,
                                  enum vnet_seal_dir dir);

/* Low level. Seal @len bytes (<= VNET_SEAL_MAX_LEN) with @counter (< VNET_SEAL_COUNTER_MAX,
 * never reused with this key: the caller's duty here) into @out: len + VNET_SEAL_OVERHEAD
 * bytes. In place: @out + VNET_SEAL_HDR_LEN may equal @in; no other overlap. Returns the
 * packet length, VNET_ENOSPC, VNET_EMSGSIZE, VNET_ERANGE, VNET_EINVAL. */
VNET_API int vnet_seal_encrypt(const struct vnet_seal_key *k, uint64_t counter, const uint8_t *in,
                               size_t len, uint8_t *out, size_t outcap);

/* Low level. Parse the header only (no authentication!). Returns 0, VNET_ETRUNC (shorter than
 * the overhead), VNET_EVERSION, VNET_EMALFORM (flags set), VNET_EMSGSIZE (over
 * VNET_SEAL_MAX_LEN). */
VNET_API int vnet_seal_parse(const uint8_t *in, size_t len, uint64_t *epoch, uint64_t *counter,
                             enum vnet_seal_suite *suite);

/* Low level. Verify and decrypt one packet made with @k (no replay check) into @out:
 * len - VNET_SEAL_OVERHEAD bytes; @out may equal @in + VNET_SEAL_HDR_LEN. Returns the
 * plaintext length with *counter set, VNET_ETRUNC, VNET_EVERSION, VNET_EMALFORM, VNET_ENOTSUP
 * (other suite), VNET_ENOENT (other epoch), VNET_ENOSPC, VNET_EACCES. */
VNET_API int vnet_seal_decrypt(const struct vnet_seal_key *k, const uint8_t *in, size_t len,
                               uint8_t *out, size_t outcap, uint64_t *counter);

VNET_API void vnet_seal_key_wipe(struct vnet_seal_key *k);

/* High level: everything one node needs for one peer in one network: the transmit key with
 * its counter and rekeying, the receive keys (current epoch, previous epoch during the grace
 * period) with their replay windows. Caller-allocated (about 3.1 KiB), fields private. */
struct vnet_seal_rx_slot {
    struct vnet_seal_key key;
    struct vnet_replay win;
};

#define VNET_SEAL_NONCE_LEN 32 /* a node's per-boot data-plane nonce */

struct vnet_seal_tx {
    struct vnet_seal_key key;
    uint64_t counter;    /* next counter to use */
    uint64_t started_ms; /* when key was derived */
    uint8_t dh[32];      /* X25519(me, peer) */
    uint8_t me[32], peer[32];
    uint32_t vni;
    uint8_t suite;
    bool has_nonces;
    uint8_t n_me[VNET_SEAL_NONCE_LEN], n_peer[VNET_SEAL_NONCE_LEN];
    uint64_t rekeys;
};

struct vnet_seal_rx {
    struct vnet_seal_rx_slot cur, prev, tmp;
    uint64_t prev_until_ms; /* prev usable while now < this */
    uint8_t dh[32];
    uint8_t me[32], peer[32];
    uint32_t vni;
    uint8_t suite;
    bool has_nonces;
    uint8_t n_me[VNET_SEAL_NONCE_LEN], n_peer[VNET_SEAL_NONCE_LEN];
    uint64_t epochs_adopted;
};

struct vnet_seal_peer {
    struct vnet_seal_tx tx;
    struct vnet_seal_rx rx;
};

/* Set up @p for traffic between @me and the node whose static key is @peer_pub in network
 * @vni (24 bits). The first transmit epoch is fresh: (now_ms/1000 - VNET_SEAL_EPOCH_BASE_S)
 * << 32 | 32 random bits, so a restarted node never reuses a key. @now_ms: wall-clock unix
 * time in ms (also for every later call). Returns 0, VNET_EINVAL, VNET_EACCES, VNET_ENOTSUP
 * (as vnet_seal_key_derive). The X25519 computation (~50 us) happens here once. */
VNET_API int vnet_seal_peer_init(struct vnet_seal_peer *p, const struct vnet_keypair *me,
                                 const uint8_t peer_pub[VNET_KEY_LEN], uint32_t vni,
                                 enum vnet_seal_suite suite, uint64_t now_ms);

/* vnet_seal_peer_init() for a pair of nodes that each made a random per-boot data-plane
 * nonce (@my_nonce: this process's, @peer_nonce: the peer's current one, as the controller
 * distributed it over the authenticated control channel): both nonces enter every key
 * derivation, so a restarted node (new nonce) shares no key with traffic captured before its
 * restart, and replays of that traffic fail to authenticate (VNET_EACCES) however recent their
 * epoch. Both NULL: exactly vnet_seal_peer_init() (static peers: not replay-safe across
 * restarts). One NULL: VNET_EINVAL. Ownership: the nonces are copied. Returns as
 * vnet_seal_peer_init(). Thread-safety: @p must not be in use. */
VNET_API int vnet_seal_peer_init_nonces(struct vnet_seal_peer *p, const struct vnet_keypair *me,
                                        const uint8_t peer_pub[VNET_KEY_LEN], uint32_t vni,
                                        enum vnet_seal_suite suite, uint64_t now_ms,
                                        const uint8_t my_nonce[VNET_SEAL_NONCE_LEN],
                                        const uint8_t peer_nonce[VNET_SEAL_NONCE_LEN]);

/* Seal one packet for the peer: rekeys first (new epoch, counter 0) when the policy above
 * says so, then seals with the next counter. Output len + VNET_SEAL_OVERHEAD bytes; in place
 * as vnet_seal_encrypt(). Returns the packet length, VNET_ENOSPC, VNET_EMSGSIZE. No
 * allocation, no syscall except the random bits at rekey time. */
VNET_API int vnet_seal_peer_seal(struct vnet_seal_tx *tx, uint64_t now_ms, const uint8_t *in,
                                 size_t len, uint8_t *out, size_t outcap);

/* Open one packet from the peer: picks the key by epoch (current; previous within the grace
 * period; a newer, recent epoch is tried and adopted only once a packet of it authenticates),
 * checks the replay window, authenticates, decrypts, and only then updates the window.
 * Returns the plaintext length, or VNET_ETRUNC, VNET_EVERSION, VNET_EMALFORM, VNET_EMSGSIZE,
 * VNET_ENOTSUP, VNET_ENOENT (no key for that epoch: stale or too old), VNET_EEXIST (replay),
 * VNET_ERANGE (behind the window), VNET_EACCES (forged/tampered/other sender), VNET_ENOSPC.
 * @out may equal @in + VNET_SEAL_HDR_LEN (in place). */
VNET_API int vnet_seal_peer_open(struct vnet_seal_rx *rx, uint64_t now_ms, const uint8_t *in,
                                 size_t len, uint8_t *out, size_t outcap);

/* Force a transmit rekey at the next seal (e.g. on operator request). */
VNET_API void vnet_seal_peer_rekey(struct vnet_seal_tx *tx);

/* Current transmit epoch (for logs and tests). */
VNET_API uint64_t vnet_seal_peer_tx_epoch(const struct vnet_seal_tx *tx);

VNET_API void vnet_seal_peer_wipe(struct vnet_seal_peer *p);

#ifdef __cplusplus
}
#endif
#endif
