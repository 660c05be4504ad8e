/* The control-protocol session layer (session_int.h): framing, sealing, the handshake steps and
 * keepalive timing, once for the agent, the controller and the blocking client.
 *
 * Wire shape (docs/protocol.md, docs/security.md): every frame is a 4-byte big-endian length
 * and a body. Until the handshake ends the body is the msgpack message; afterwards it is the
 * message sealed with the session's channel (vnet_chan_seal), and the length prefix counts the
 * sealed bytes. HELLO and WELCOME themselves travel in the clear.
 */
#include "session_int.h"

#include "bytes_int.h"
#include "crypto_int.h"
#include "vnet/error.h"

#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

_Static_assert(VNET_HS_HELLO_LEN <= VNET_AUTH_MAX, "HELLO.auth fits");
_Static_assert(VNET_HS_WELCOME_LEN <= VNET_AUTH_MAX, "WELCOME.auth fits");
_Static_assert(VNET__HS_PROTO_VERSION == VNET_PROTO_VERSION, "handshake binds the version");

/* ======================================================================================== */
/* Codec                                                                                     */
/* ======================================================================================== */

void vnet__sess_init(struct vnet__sess *s, uint32_t max)
{
    vnet__sess_wipe(s);
    vnet_frame_reader_init(&s->rd, max);
}

void vnet__sess_wipe(struct vnet__sess *s)
{
    vnet_frame_reader_free(&s->rd);
    sodium_memzero(s, sizeof(*s));
}

/* Seal the body of plaintext frame @frame into a new frame of its own in @out. */
static int seal_frame(struct vnet__sess *s, const uint8_t *frame, size_t len, uint8_t **out,
                      size_t *outlen)
{
    size_t body = len - 4, outl = 0;
    size_t sl = vnet_chan_sealed_len(&s->tx, body);
    uint8_t *sealed = malloc(4 + sl);
    if (!sealed)
        return VNET_ENOMEM;
    int rc = vnet_chan_seal(&s->tx, frame + 4, body, sealed + 4, sl, &outl);
    if (rc) {
        free(sealed);
        return rc;
    }
    put32(sealed, (uint32_t)outl);
    *out = sealed;
    *outlen = 4 + outl;
    return 0;
}

int vnet__sess_encode(struct vnet__sess *s, const struct vnet_msg *m, struct vnet_buf *out)
{
    struct vnet_buf b = {0};
    int rc = vnet_msg_encode(m, &b);
    if (rc || !s->secure) {
        if (rc)
            vnet_buf_free(&b);
        else
            *out = b;
        return rc;
    }
    uint8_t *sealed = NULL;
    size_t len = 0;
    rc = seal_frame(s, b.data, b.len, &sealed, &len);
    vnet_buf_free(&b);
    if (!rc) {
        out->data = sealed;
        out->len = out->cap = len;
    }
    return rc;
}

int vnet__sess_feed(struct vnet__sess *s, const uint8_t *data, size_t len)
{
    return vnet_frame_reader_feed(&s->rd, data, len);
}

int vnet__sess_next(struct vnet__sess *s, struct vnet_msg *m, char *why, size_t whylen)
{
    const uint8_t *body;
    size_t len;
    int rc = vnet_frame_reader_next(&s->rd, &body, &len);
    if (rc < 0) {
        snprintf(why, whylen, "frame over the size limit");
        return VNET_EMSGSIZE;
    }
    if (rc == 0)
        return 0;
    uint8_t *plain = NULL;
    if (s->secure) {
        size_t plen = 0;
        plain = malloc(len ? len : 1);
        if (!plain) {
            snprintf(why, whylen, "out of memory");
            return VNET_ENOMEM;
        }
        if (vnet_chan_open(&s->rx, body, len, plain, len, &plen) != 0) {
            free(plain);
            snprintf(why, whylen, "a frame does not authenticate");
            return VNET_EACCES;
        }
        body = plain;
        len = plen;
    }
    char err[128] = "";
    rc = vnet_msg_decode(body, len, m, err, sizeof(err));
    free(plain);
    if (rc) {
        snprintf(why, whylen, "malformed message: %s", err[0] ? err : vnet_strerror(rc));
        return rc;
    }
    return 1;
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The prologue binds the HELLO's plaintext to the handshake (docs/security.md): the role, and
 * for a node its network and name, so that neither can be changed on the way. */
static size_t hello_prologue(const struct vnet_msg_hello *h, char *buf, size_t len)
{
    int n = h->role == VNET_ROLE_CLIENT
                ? snprintf(buf, len, "vnet-client")
                : snprintf(buf, len, "vnet-node/%.*s/%.*s", (int)sizeof(h->network), h->network,
                           (int)sizeof(h->node), h->node);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

int vnet__sess_hello(struct vnet__sess *s, const struct vnet_keypair *me,
                     const uint8_t peer_pub[VNET_KEY_LEN], struct vnet_msg_hello *h)
{
    char prologue[VNET_HS_PROLOGUE_MAX + 1];
    size_t plen = hello_prologue(h, prologue, sizeof(prologue)), n = 0;
    /* The timestamp lets the controller refuse a replayed HELLO (docs/security.md). */
    int rc = vnet_hs_init_initiator(&s->hs, me, peer_pub, prologue, plen);
    if (!rc)
        rc = vnet_hs_write_hello(&s->hs, unix_ms(), h->auth, sizeof(h->auth), &n);
    if (rc)
        vnet_hs_wipe(&s->hs);
    h->auth_len = (uint32_t)n;
    return rc;
}

static int go_secure(struct vnet__sess *s)
{
    int rc = vnet_hs_split(&s->hs, &s->tx, &s->rx);
    if (rc)
        return rc;
    s->secure = true;
    s->rd.max = VNET__SESS_SEALED_MAX;
    return 0;
}

/* The WELCOME's settings, bound into the handshake: a digest of the message as encoded with an
 * empty auth. Both sides hash their own encoding of the fields (the controller of what it
 * sends, the node of what it decoded and will act on), so any change on the way, of the mode,
 * VNI, MTU, MAC or addresses, fails the key confirmation (docs/security.md). */
static int bind_welcome(struct vnet__sess *s, const struct vnet_msg_welcome *w)
{
    struct vnet_msg *m = malloc(sizeof(*m));
    if (!m)
        return VNET_ENOMEM;
    memset(m, 0, sizeof(*m));
    m->type = VNET_MSG_WELCOME;
    m->u.welcome.version = w->version;
    m->u.welcome.network = w->network;
    m->u.welcome.node = w->node;
    struct vnet_buf b = {0};
    int rc = vnet_msg_encode(m, &b);
    free(m);
    if (!rc) {
        uint8_t digest[32];
        crypto_generichash(digest, sizeof(digest), b.data, b.len, NULL, 0);
        rc = vnet__hs_bind(&s->hs, digest, sizeof(digest));
    }
    vnet_buf_free(&b);
    return rc;
}

int vnet__sess_welcome(struct vnet__sess *s, const struct vnet_msg_welcome *w)
{
    int rc = bind_welcome(s, w);
    if (!rc)
        rc = vnet_hs_read_welcome(&s->hs, w->auth, w->auth_len);
    if (!rc)
        rc = go_secure(s);
    if (rc) {
        vnet_hs_wipe(&s->hs);
        return VNET_EACCES;
    }
    return 0;
}

int vnet__sess_read_hello(struct vnet__sess *s, const struct vnet_keypair *me,
                          const struct vnet_msg_hello *h, uint8_t claimed[VNET_KEY_LEN],
                          uint64_t *ts)
{
    char prologue[VNET_HS_PROLOGUE_MAX + 1];
    size_t plen = hello_prologue(h, prologue, sizeof(prologue));
    int rc = vnet_hs_init_responder(&s->hs, me, prologue, plen);
    if (!rc)
        rc = vnet_hs_read_hello(&s->hs, h->auth, VNET_HS_HELLO_LEN, claimed, ts);
    if (rc)
        vnet_hs_wipe(&s->hs);
    return rc;
}

int vnet__sess_accept(struct vnet__sess *s, struct vnet_msg_welcome *w)
{
    size_t n = 0;
    int rc = bind_welcome(s, w);
    if (!rc)
        rc = vnet_hs_accept(&s->hs, w->auth, sizeof(w->auth), &n);
    if (rc)
        vnet_hs_wipe(&s->hs);
    w->auth_len = (uint32_t)n;
    return rc;
}

int vnet__sess_secure(struct vnet__sess *s)
{
    int rc = go_secure(s);
    if (rc)
        vnet_hs_wipe(&s->hs);
    return rc;
}

void vnet__sess_hs_abort(struct vnet__sess *s)
{
    vnet_hs_wipe(&s->hs);
}

/* ======================================================================================== */
/* Shared frames                                                                             */
/* ======================================================================================== */

struct vnet__frame *vnet__frame_encode(const struct vnet_msg *m)
{
    struct vnet_buf b = {0};
    if (vnet_msg_encode(m, &b) != 0) {
        vnet_buf_free(&b);
        return NULL;
    }
    struct vnet__frame *f = malloc(sizeof(*f) + b.len);
    if (f) {
        f->refs = 1;
        f->len = b.len;
        memcpy(f->data, b.data, b.len);
    }
    vnet_buf_free(&b);
    return f;
}

void vnet__frame_ref(struct vnet__frame *f)
{
    f->refs++;
}

void vnet__frame_unref(struct vnet__frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}

/* ======================================================================================== */
/* libuv stream transport                                                                    */
/* ======================================================================================== */

/* One queued write: a shared frame (a reference) or a buffer of its own (sealed copies). */
struct uv_wreq {
    uv_write_t req;
    struct vnet__frame *f;
    uint8_t *own;
};

static void report_down(struct vnet__sess_uv *t, int code, const char *why)
{
    if (t->closing)
        return;
    if (t->reading) {
        uv_read_stop(&t->h.stream);
        t->reading = false;
    }
    uv_timer_stop(&t->ka);
    t->cb->on_down(t, code, why);
}

static void on_uv_closed(uv_handle_t *h)
{
    struct vnet__sess_uv *t = h->data;
    if (--t->pending == 0) {
        vnet__sess_wipe(&t->codec);
        t->cb->on_closed(t);
    }
}

int vnet__sess_uv_init(struct vnet__sess_uv *t, uv_loop_t *loop, bool pipe, uint32_t max,
                       char *rxbuf, size_t rxcap, const struct vnet__sess_uv_cbs *cb, void *data)
{
    memset(t, 0, sizeof(*t));
    int rc = pipe ? uv_pipe_init(loop, &t->h.pipe, 0) : uv_tcp_init(loop, &t->h.tcp);
    if (rc)
        return rc;
    uv_timer_init(loop, &t->ka); /* cannot fail */
    t->h.handle.data = t;
    t->ka.data = t;
    t->cb = cb;
    t->data = data;
    t->rxbuf = rxbuf;
    t->rxcap = rxcap;
    vnet__sess_init(&t->codec, max);
    return 0;
}

static void on_uv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct vnet__sess_uv *t = h->data;
    (void)suggested;
    *buf = uv_buf_init(t->rxbuf, (unsigned)t->rxcap);
}

static void on_uv_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct vnet__sess_uv *t = st->data;
    if (nread < 0) {
        report_down(t, VNET_EIO, nread == UV_EOF ? "closed by the peer" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || t->closing)
        return;
    t->last_rx = uv_now(st->loop);
    t->ka_ticks = 0;
    if (vnet__sess_feed(&t->codec, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        report_down(t, VNET_ENOMEM, "out of memory");
        return;
    }
    /* The owner may stop us (close, fail) from inside on_msg: then nothing more is handled. */
    while (t->reading && !t->closing) {
        struct vnet_msg m;
        char why[192];
        int rc = vnet__sess_next(&t->codec, &m, why, sizeof(why));
        if (rc == 0)
            break;
        if (rc < 0) {
            report_down(t, rc, why);
            break;
        }
        t->cb->on_msg(t, &m);
        vnet_msg_free(&m);
    }
}

int vnet__sess_uv_start(struct vnet__sess_uv *t)
{
    t->last_rx = uv_now(t->h.handle.loop);
    t->ka_ticks = 0;
    int rc = uv_read_start(&t->h.stream, on_uv_alloc, on_uv_read);
    t->reading = rc == 0;
    return rc;
}

static void on_uv_keepalive(uv_timer_t *timer)
{
    struct vnet__sess_uv *t = timer->data;
    uint64_t silent = uv_now(timer->loop) - t->last_rx;
    /* Dead after three silent intervals, counted both in time and in ticks: a process that was
     * not scheduled for a while (a loaded host, a debugger, a suspended VM) sees its timers
     * fire before it reads what arrived meanwhile, and one late tick must not end a session
     * whose answers are waiting in the socket. Between two ticks the loop polls the socket. */
    if (t->ka_ticks < UINT32_MAX)
        t->ka_ticks++;
    if (silent > 3ull * t->ka_ms && t->ka_ticks > 3) {
        char why[64];
        snprintf(why, sizeof(why), "silent for %llu ms", (unsigned long long)silent);
        report_down(t, VNET_ETIMEDOUT, why);
        return;
    }
    /* Only when idle: a session with output queued is not, and the keepalive would only wait
     * behind it. */
    if (t->ka_send && vnet__sess_uv_queued(t) == 0) {
        struct vnet_msg m;
        memset(&m, 0, sizeof(m));
        m.type = VNET_MSG_KEEPALIVE;
        vnet__sess_uv_send(t, &m);
    }
}

void vnet__sess_uv_keepalive(struct vnet__sess_uv *t, uint32_t interval_ms, bool send)
{
    t->ka_ms = interval_ms;
    t->ka_send = send;
    t->ka_ticks = 0;
    if (interval_ms == 0 || t->closing)
        uv_timer_stop(&t->ka);
    else
        uv_timer_start(&t->ka, on_uv_keepalive, interval_ms, interval_ms);
}

static void on_uv_deadline(uv_timer_t *timer)
{
    report_down(timer->data, VNET_ETIMEDOUT, "no handshake before the deadline");
}

void vnet__sess_uv_deadline(struct vnet__sess_uv *t, uint32_t ms)
{
    t->ka_ms = 0;
    t->ka_send = false;
    if (!t->closing)
        uv_timer_start(&t->ka, on_uv_deadline, ms, 0);
}

void vnet__sess_uv_set_max(struct vnet__sess_uv *t, uint32_t max)
{
    if (!t->codec.secure)
        t->codec.rd.max = max ? max : VNET_FRAME_MAX;
}

static void on_uv_written(uv_write_t *req, int status)
{
    struct uv_wreq *w = (struct uv_wreq *)req;
    struct vnet__sess_uv *t = req->data;
    vnet__frame_unref(w->f);
    free(w->own);
    free(w);
    if (status < 0) {
        report_down(t, VNET_EIO, uv_strerror(status));
        return;
    }
    if (!t->closing && t->cb->on_drained && vnet__sess_uv_queued(t) == 0)
        t->cb->on_drained(t);
}

/* Queue @w (its frame or own buffer); on failure @w is freed and the connection reported. */
static int queue_write(struct vnet__sess_uv *t, struct uv_wreq *w, const uint8_t *p, size_t len)
{
    w->req.data = t;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    int rc = uv_write(&w->req, &t->h.stream, &b, 1, on_uv_written);
    if (rc < 0) {
        vnet__frame_unref(w->f);
        free(w->own);
        free(w);
        report_down(t, VNET_EIO, uv_strerror(rc));
    }
    return rc;
}

int vnet__sess_uv_write(struct vnet__sess_uv *t, struct vnet__frame *f)
{
    if (t->closing)
        return VNET_ESTATE;
    struct uv_wreq *w = calloc(1, sizeof(*w));
    if (!w)
        return VNET_ENOMEM;
    if (!t->codec.secure) {
        vnet__frame_ref(f);
        w->f = f;
        return queue_write(t, w, f->data, f->len);
    }
    /* Each session has its own keys: seal a copy (in send order, which the stream needs). */
    size_t len = 0;
    int rc = seal_frame(&t->codec, f->data, f->len, &w->own, &len);
    if (rc) {
        free(w);
        report_down(t, VNET_EIO, "cannot seal a frame");
        return rc;
    }
    return queue_write(t, w, w->own, len);
}

int vnet__sess_uv_send(struct vnet__sess_uv *t, const struct vnet_msg *m)
{
    if (t->closing)
        return VNET_ESTATE;
    struct uv_wreq *w = calloc(1, sizeof(*w));
    if (!w)
        return VNET_ENOMEM;
    struct vnet_buf b = {0};
    int rc = vnet__sess_encode(&t->codec, m, &b);
    if (rc) {
        free(w);
        return rc;
    }
    w->own = b.data;
    return queue_write(t, w, b.data, b.len);
}

size_t vnet__sess_uv_queued(const struct vnet__sess_uv *t)
{
    return uv_stream_get_write_queue_size(&t->h.stream);
}

void vnet__sess_uv_close(struct vnet__sess_uv *t)
{
    if (t->closing)
        return;
    t->closing = true;
    t->reading = false;
    t->pending = 2;
    uv_close(&t->h.handle, on_uv_closed);
    uv_close((uv_handle_t *)&t->ka, on_uv_closed);
}

static void on_uv_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct vnet__sess_uv *t = req->data;
    free(req);
    if (!t->closing) /* the owner closes, as for any connection that is down */
        t->cb->on_down(t, VNET_EIO, "shut down after an error");
}

void vnet__sess_uv_fail(struct vnet__sess_uv *t, int code, const char *text)
{
    if (t->closing)
        return;
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ERROR;
    m.u.error.code = code;
    snprintf(m.u.error.text, sizeof(m.u.error.text), "%s", text);
    vnet__sess_uv_send(t, &m);
    if (t->closing) /* the write failed */
        return;
    if (t->reading) { /* nothing more is handled from a failed session */
        uv_read_stop(&t->h.stream);
        t->reading = false;
    }
    /* Nothing more is sent either; the timer still ends a peer that never lets the ERROR
     * drain (it is silent now, as far as we listen). */
    t->ka_send = false;
    /* libuv writes what is queued before a shutdown completes, not before a close. */
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (!req || uv_shutdown(req, &t->h.stream, on_uv_shutdown) != 0) {
        free(req);
        vnet__sess_uv_close(t);
        return;
    }
    req->data = t;
}

/* ======================================================================================== */
/* Blocking fd transport                                                                     */
/* ======================================================================================== */

int64_t vnet__sess_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - vnet__sess_now_ms();
        if (left <= 0)
            return VNET_ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = ev};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

int vnet__sess_fd_connect(struct vnet__sess_fd *t, const struct sockaddr *sa, unsigned salen,
                          int64_t deadline)
{
    t->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc = t->fd < 0 ? -errno : 0;
    if (!rc && connect(t->fd, sa, (socklen_t)salen) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
        } else if ((rc = wait_fd(t->fd, POLLOUT, deadline)) == 0) {
            int soerr = 0;
            socklen_t l = sizeof(soerr);
            getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
            rc = -soerr;
        }
    }
    if (rc && t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

int vnet__sess_fd_send(struct vnet__sess_fd *t, const struct vnet_msg *m, int64_t deadline)
{
    struct vnet_buf b = {0};
    int rc = vnet__sess_encode(&t->codec, m, &b);
    if (!rc)
        rc = write_all(t->fd, b.data, b.len, deadline);
    vnet_buf_free(&b);
    return rc;
}

int vnet__sess_fd_recv(struct vnet__sess_fd *t, struct vnet_msg *m, int64_t deadline, char *why,
                       size_t whylen)
{
    for (;;) {
        int rc = vnet__sess_next(&t->codec, m, why, whylen);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            if (m->type != VNET_MSG_KEEPALIVE)
                return 0;
            vnet_msg_free(m);
            continue;
        }
        uint8_t buf[16384];
        ssize_t r = recv(t->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0) {
            snprintf(why, whylen, "closed by the peer");
            return VNET_EIO;
        }
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                snprintf(why, whylen, "%s", strerror(errno));
                return -errno;
            }
            rc = wait_fd(t->fd, POLLIN, deadline);
            if (rc) {
                snprintf(why, whylen, "no answer in time");
                return rc;
            }
            continue;
        }
        rc = vnet__sess_feed(&t->codec, buf, (size_t)r);
        if (rc) {
            snprintf(why, whylen, "out of memory");
            return rc;
        }
    }
}

void vnet__sess_fd_close(struct vnet__sess_fd *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    vnet__sess_wipe(&t->codec);
}
