/* The control-protocol session layer, private to libvnet: everything a connection between a
 * node or client and the controller does below the protocol logic, written once.
 *
 *   vnet__sess        the codec of one connection: the frame reader, encode + seal, open +
 *                     decode, and both sides of the handshake (HELLO.auth / WELCOME.auth), after
 *                     which every frame body goes through the channel (docs/protocol.md,
 *                     docs/security.md). Transport-free: bytes in, messages out.
 *   vnet__frame       an encoded plaintext frame with a reference count, so one encoding can be
 *                     queued on many connections (sealed connections get their own copy).
 *   vnet__sess_uv     the libuv stream transport: a TCP or pipe handle, reading into a
 *                     caller-provided buffer, writes of frames, an ERROR-then-shutdown close,
 *                     and the keepalive timer (send when idle, declare the peer dead after
 *                     three silent intervals).
 *   vnet__sess_fd     the blocking transport: a non-blocking fd driven with poll(2) up to a
 *                     deadline (the subscriber client).
 *
 * agent.c, controller.c and client.c keep only protocol logic: which message to send, what an
 * incoming message means, who is allowed in.
 *
 * Thread-safety: none; a session belongs to the thread that drives it (its loop's thread).
 */
#ifndef VNET_SESSION_INT_H
#define VNET_SESSION_INT_H

#include "vnet/crypto.h"
#include "vnet/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* The largest frame on a sealed connection: the largest message plus the channel's overhead. */
#define VNET__SESS_SEALED_MAX (VNET_FRAME_MAX + VNET_CHAN_HEADER_LEN + VNET_CHAN_OVERHEAD)

/* ---- codec ---- */

struct vnet__sess {
    struct vnet_frame_reader rd;
    struct vnet_hs hs;       /* a handshake in progress */
    struct vnet_chan tx, rx; /* after the handshake */
    bool secure;             /* every frame body sealed/opened */
};

/* Start (or start over: wipes what was there; @s is zeroed or was initialised) with an unsealed
 * connection whose frames may be @max bytes (0: VNET_FRAME_MAX). */
void vnet__sess_init(struct vnet__sess *s, uint32_t max);
/* Free the reader's buffer and wipe the keys. Safe twice. */
void vnet__sess_wipe(struct vnet__sess *s);

/* Append one whole frame for @m to @out: length prefix, then the body, sealed when the
 * session is secure. Returns 0, VNET_ENOMEM, what vnet_msg_encode() or vnet_chan_seal()
 * returns (the channel is then broken). */
int vnet__sess_encode(struct vnet__sess *s, const struct vnet_msg *m, struct vnet_buf *out);

/* Buffer received bytes. Returns 0 or VNET_ENOMEM. */
int vnet__sess_feed(struct vnet__sess *s, const uint8_t *data, size_t len);

/* The next whole message: 1 with @m filled (free it with vnet_msg_free()), 0 when more bytes
 * are needed, or an error with a reason in @why: VNET_EMSGSIZE (frame over the limit),
 * VNET_EACCES (a sealed frame does not authenticate: the session is unusable), VNET_ENOMEM,
 * or what vnet_msg_decode() returns (malformed). */
int vnet__sess_next(struct vnet__sess *s, struct vnet_msg *m, char *why, size_t whylen);

/* Initiator (node, client): start the handshake with our key @me and the pinned responder key
 * @peer_pub and write its first message to h->auth (h->auth_len set; the caller may append a
 * sealed token behind it). The handshake is bound to h->role and, for a node, h->network and
 * h->node: fill them first. Returns 0 or what vnet_hs_* returns. */
int vnet__sess_hello(struct vnet__sess *s, const struct vnet_keypair *me,
                     const uint8_t peer_pub[VNET_KEY_LEN], struct vnet_msg_hello *h);
/* Initiator: check WELCOME.auth, and with it every setting of @w (version, network, node: they
 * are bound into the handshake), and switch the session to the channel. Returns 0 or
 * VNET_EACCES (absent, tampered, settings changed on the way, or not from the pinned key). */
int vnet__sess_welcome(struct vnet__sess *s, const struct vnet_msg_welcome *w);

/* Responder (controller): check the handshake at the start of h->auth (the caller checked that
 * h->auth_len >= VNET_HS_HELLO_LEN) with our key @me, bound to the HELLO's role, network and
 * node as the initiator's was; gives the initiator's proven static key and HELLO timestamp
 * (@ts may be NULL). Returns 0 or what vnet_hs_read_hello() returns: VNET_EACCES also when
 * the plaintext fields were changed on the way (the handshake is wiped then). */
int vnet__sess_read_hello(struct vnet__sess *s, const struct vnet_keypair *me,
                          const struct vnet_msg_hello *h, uint8_t claimed[VNET_KEY_LEN],
                          uint64_t *ts);
/* Responder: accept the initiator and write WELCOME.auth to @w, binding the settings @w
 * carries (version, network, node: fill them first, they must not change afterwards).
 * Returns 0, VNET_ESTATE or VNET_ENOMEM. */
int vnet__sess_accept(struct vnet__sess *s, struct vnet_msg_welcome *w);
/* Responder: after the (clear) WELCOME is queued, switch the session to the channel. */
int vnet__sess_secure(struct vnet__sess *s);
/* Abandon a handshake in progress. */
void vnet__sess_hs_abort(struct vnet__sess *s);

/* ---- shared frames ---- */

struct vnet__frame {
    unsigned refs;
    size_t len;
    uint8_t data[];
};

/* Encode @m into a new frame with one reference, or NULL. */
struct vnet__frame *vnet__frame_encode(const struct vnet_msg *m);
void vnet__frame_ref(struct vnet__frame *f);
/* Drop one reference; the last one frees. NULL is ignored. */
void vnet__frame_unref(struct vnet__frame *f);

/* ---- libuv stream transport ---- */

struct vnet__sess_uv;

/* What the owner hears.
 *   on_msg      each decoded message (freed after it returns); the owner may close or fail the
 *               transport inside, and then nothing more is handled.
 *   on_down     the connection is finished and nothing more will be read: @code VNET_EIO
 *               (closed or reset by the peer, a write failed, or the ERROR of
 *               vnet__sess_uv_fail() has been written), VNET_ETIMEDOUT (silent for three
 *               keepalive intervals), VNET_EMSGSIZE, VNET_EACCES (a sealed frame does not
 *               authenticate), VNET_ENOMEM, VNET_EPROTO (malformed); @why says it in words.
 *               The owner closes the transport.
 *   on_drained  (may be NULL) a write finished and nothing is queued.
 *   on_closed   both handles are closed; the owner may free the memory. */
struct vnet__sess_uv_cbs {
    void (*on_msg)(struct vnet__sess_uv *t, const struct vnet_msg *m);
    void (*on_down)(struct vnet__sess_uv *t, int code, const char *why);
    void (*on_drained)(struct vnet__sess_uv *t);
    void (*on_closed)(struct vnet__sess_uv *t);
};

struct vnet__sess_uv {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    uv_timer_t ka;
    struct vnet__sess codec;
    const struct vnet__sess_uv_cbs *cb;
    void *data;  /* the owner's */
    char *rxbuf; /* reads land here (the owner's, may be shared: consumed at once) */
    size_t rxcap;
    uint64_t last_rx;  /* uv_now() of the last bytes received */
    uint32_t ka_ticks; /* keepalive ticks since then: a stalled process is not a silent peer */
    uint32_t ka_ms;
    bool ka_send; /* send a keepalive when the interval passes with nothing queued */
    bool reading, closing;
    int pending; /* handles still closing */
};

/* Initialise the handle (a TCP one, or with @pipe a pipe) and the keepalive timer on @loop;
 * @rxbuf (@rxcap bytes) receives reads. The codec starts unsealed with limit @max.
 * Returns 0 or a libuv code (nothing to close then). */
int vnet__sess_uv_init(struct vnet__sess_uv *t, uv_loop_t *loop, bool pipe, uint32_t max,
                       char *rxbuf, size_t rxcap, const struct vnet__sess_uv_cbs *cb, void *data);
/* Start reading (the handle is connected or accepted). Returns 0 or a libuv code. */
int vnet__sess_uv_start(struct vnet__sess_uv *t);
/* Watch the peer: every @interval_ms, a peer silent for more than three intervals is reported
 * through on_down(VNET_ETIMEDOUT); with @send, a KEEPALIVE goes out when nothing is queued.
 * @interval_ms 0 stops the timer. */
void vnet__sess_uv_keepalive(struct vnet__sess_uv *t, uint32_t interval_ms, bool send);
/* Before authentication: report on_down(VNET_ETIMEDOUT) @ms after now whatever arrives
 * meanwhile (bytes trickling in do not extend it). Uses the keepalive timer: a later
 * vnet__sess_uv_keepalive() replaces the deadline. */
void vnet__sess_uv_deadline(struct vnet__sess_uv *t, uint32_t ms);
/* Change the frame size limit of the codec (0: VNET_FRAME_MAX); a sealed codec keeps its own. */
void vnet__sess_uv_set_max(struct vnet__sess_uv *t, uint32_t max);
/* Queue one message (sealed when secure). Returns 0, VNET_ESTATE (closing), VNET_ENOMEM,
 * an encoding error, or a libuv code (the connection is then reported down). */
int vnet__sess_uv_send(struct vnet__sess_uv *t, const struct vnet_msg *m);
/* Queue a shared frame (a reference is taken; a secure session seals its own copy). */
int vnet__sess_uv_write(struct vnet__sess_uv *t, struct vnet__frame *f);
/* Bytes queued and not yet written. */
size_t vnet__sess_uv_queued(const struct vnet__sess_uv *t);
/* Close the handles; on_closed follows. Safe to call twice. */
void vnet__sess_uv_close(struct vnet__sess_uv *t);
/* End the session with a reason: queue ERROR(@code, @text), stop reading and sending, and shut
 * the stream down; once the ERROR is written, on_down(VNET_EIO) asks the owner to close. The
 * dead-peer check goes on meanwhile (a peer that never lets the ERROR drain is still ended). */
void vnet__sess_uv_fail(struct vnet__sess_uv *t, int code, const char *text);

/* ---- blocking fd transport ---- */

struct vnet__sess_fd {
    int fd;
    struct vnet__sess codec;
};

/* Monotonic milliseconds, for deadlines. */
int64_t vnet__sess_now_ms(void);
/* Connect a new non-blocking stream socket to @sa by @deadline. Returns 0 or a negative errno
 * (VNET_ETIMEDOUT). On error t->fd is closed (-1). */
int vnet__sess_fd_connect(struct vnet__sess_fd *t, const struct sockaddr *sa, unsigned salen,
                          int64_t deadline);
/* Send one message by @deadline. Returns 0, VNET_ETIMEDOUT, a negative errno, an encoding
 * error. */
int vnet__sess_fd_send(struct vnet__sess_fd *t, const struct vnet_msg *m, int64_t deadline);
/* Receive the next message other than a KEEPALIVE by @deadline, a reason in @why on error.
 * Returns 0, VNET_ETIMEDOUT, VNET_EIO (closed by the peer), a negative errno, or what
 * vnet__sess_next() returns. */
int vnet__sess_fd_recv(struct vnet__sess_fd *t, struct vnet_msg *m, int64_t deadline, char *why,
                       size_t whylen);
/* Close the fd and wipe the codec. */
void vnet__sess_fd_close(struct vnet__sess_fd *t);

#endif
