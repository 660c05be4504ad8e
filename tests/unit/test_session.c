/* Unit tests of the session layer (libvnet/session.c) over socketpairs: the handshake on both
 * transports (blocking fd, libuv stream), a wrong pinned key, tampered, truncated and oversized
 * frames, and the keepalive timing of the libuv transport, measured on the loop's clock and
 * driven by its timers (no sleeps). */
#include "../../libvnet/session_int.h"
#include "vnet/crypto.h"
#include "vnet/error.h"
#include "vnet/proto.h"
#include "vnet/types.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

static struct vnet_keypair node_key, ctl_key, other_key;

static void keys(void)
{
    ck_assert_int_eq(vnet_key_generate(&node_key), 0);
    ck_assert_int_eq(vnet_key_generate(&ctl_key), 0);
    ck_assert_int_eq(vnet_key_generate(&other_key), 0);
}

static void pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void fd_open(struct vnet__sess_fd *t, int fd)
{
    memset(t, 0, sizeof(*t));
    t->fd = fd;
    vnet__sess_init(&t->codec, 0);
}

static struct vnet_msg hello_msg(void)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = VNET_PROTO_VERSION;
    m.u.hello.role = VNET_ROLE_NODE;
    snprintf(m.u.hello.network, sizeof(m.u.hello.network), "blue");
    snprintf(m.u.hello.node, sizeof(m.u.hello.node), "a");
    return m;
}

static struct vnet_msg request_msg(uint32_t id, const char *network)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_REQUEST;
    m.u.request.id = id;
    m.u.request.op = VNET_REQ_NODE_LIST;
    snprintf(m.u.request.network, sizeof(m.u.request.network), "%s", network);
    return m;
}

static int64_t soon(void)
{
    return vnet__sess_now_ms() + 2000;
}

/* The whole handshake over the blocking transport: @i pins @pinned, @r answers with ctl_key.
 * Returns 0, or the first step's error (the HELLO check or the WELCOME check). */
static int fd_handshake(struct vnet__sess_fd *i, struct vnet__sess_fd *r,
                        const uint8_t pinned[VNET_KEY_LEN])
{
    char why[192];
    struct vnet_msg m = hello_msg();
    ck_assert_int_eq(vnet__sess_hello(&i->codec, &node_key, pinned, &m.u.hello), 0);
    ck_assert_uint_eq(m.u.hello.auth_len, VNET_HS_HELLO_LEN);
    ck_assert_int_eq(vnet__sess_fd_send(i, &m, soon()), 0);

    struct vnet_msg h;
    ck_assert_int_eq(vnet__sess_fd_recv(r, &h, soon(), why, sizeof(why)), 0);
    ck_assert_int_eq(h.type, VNET_MSG_HELLO);
    uint8_t claimed[VNET_KEY_LEN];
    uint64_t ts = 0;
    int rc = vnet__sess_read_hello(&r->codec, &ctl_key, &h.u.hello, claimed, &ts);
    vnet_msg_free(&h);
    if (rc)
        return rc;
    ck_assert_mem_eq(claimed, node_key.pub, VNET_KEY_LEN);
    ck_assert_uint_gt(ts, 0);

    struct vnet_msg w;
    memset(&w, 0, sizeof(w));
    w.type = VNET_MSG_WELCOME;
    w.u.welcome.version = VNET_PROTO_VERSION;
    ck_assert_int_eq(vnet__sess_accept(&r->codec, &w.u.welcome), 0);
    ck_assert_int_eq(vnet__sess_fd_send(r, &w, soon()), 0); /* in the clear */
    ck_assert_int_eq(vnet__sess_secure(&r->codec), 0);

    struct vnet_msg got;
    ck_assert_int_eq(vnet__sess_fd_recv(i, &got, soon(), why, sizeof(why)), 0);
    ck_assert_int_eq(got.type, VNET_MSG_WELCOME);
    rc = vnet__sess_welcome(&i->codec, &got.u.welcome);
    vnet_msg_free(&got);
    return rc;
}

/* ---- blocking transport ---- */

START_TEST(t_fd_handshake)
{
    keys();
    int sv[2];
    pair(sv);
    struct vnet__sess_fd i, r;
    fd_open(&i, sv[0]);
    fd_open(&r, sv[1]);
    ck_assert_int_eq(fd_handshake(&i, &r, ctl_key.pub), 0);
    ck_assert(i.codec.secure && r.codec.secure);

    /* Both ways; a keepalive in between is skipped by the receiver. */
    char why[192];
    struct vnet_msg q = request_msg(7, "blue"), got;
    ck_assert_int_eq(vnet__sess_fd_send(&i, &q, soon()), 0);
    ck_assert_int_eq(vnet__sess_fd_recv(&r, &got, soon(), why, sizeof(why)), 0);
    ck_assert_int_eq(got.type, VNET_MSG_REQUEST);
    ck_assert_uint_eq(got.u.request.id, 7);
    ck_assert_str_eq(got.u.request.network, "blue");
    vnet_msg_free(&got);
    struct vnet_msg k;
    memset(&k, 0, sizeof(k));
    k.type = VNET_MSG_KEEPALIVE;
    ck_assert_int_eq(vnet__sess_fd_send(&r, &k, soon()), 0);
    q = request_msg(8, "red");
    ck_assert_int_eq(vnet__sess_fd_send(&r, &q, soon()), 0);
    ck_assert_int_eq(vnet__sess_fd_recv(&i, &got, soon(), why, sizeof(why)), 0);
    ck_assert_int_eq(got.type, VNET_MSG_REQUEST);
    ck_assert_uint_eq(got.u.request.id, 8);
    vnet_msg_free(&got);

    /* On the wire a frame is sealed: the length counts the channel's overhead. */
    struct vnet_buf plain = {0}, sealed = {0};
    q = request_msg(9, "blue");
    ck_assert_int_eq(vnet_msg_encode(&q, &plain), 0);
    ck_assert_int_eq(vnet__sess_encode(&i.codec, &q, &sealed), 0);
    ck_assert_uint_eq(sealed.len, plain.len + VNET_CHAN_OVERHEAD); /* header sent already */
    ck_assert_msg(memmem(sealed.data, sealed.len, "blue", 4) == NULL, "plaintext on the wire");
    vnet_buf_free(&plain);
    vnet_buf_free(&sealed);

    /* Nothing comes: the deadline ends the wait; the peer closes: VNET_EIO. */
    int64_t t0 = vnet__sess_now_ms();
    ck_assert_int_eq(vnet__sess_fd_recv(&r, &got, t0 + 50, why, sizeof(why)), VNET_ETIMEDOUT);
    ck_assert_int_ge(vnet__sess_now_ms() - t0, 50);
    vnet__sess_fd_close(&i);
    ck_assert_int_eq(vnet__sess_fd_recv(&r, &got, soon(), why, sizeof(why)), VNET_EIO);
    vnet__sess_fd_close(&r);
}
END_TEST

START_TEST(t_fd_wrong_key)
{
    keys();
    int sv[2];
    struct vnet__sess_fd i, r;
    /* The node pins another controller key: the controller cannot read its HELLO. */
    pair(sv);
    fd_open(&i, sv[0]);
    fd_open(&r, sv[1]);
    ck_assert_int_eq(fd_handshake(&i, &r, other_key.pub), VNET_EACCES);
    ck_assert(!i.codec.secure && !r.codec.secure);
    vnet__sess_fd_close(&i);
    vnet__sess_fd_close(&r);

    /* A WELCOME that is not from the pinned key, or tampered, is refused. */
    pair(sv);
    fd_open(&i, sv[0]);
    struct vnet_msg m = hello_msg();
    ck_assert_int_eq(vnet__sess_hello(&i.codec, &node_key, ctl_key.pub, &m.u.hello), 0);
    struct vnet__sess impostor;
    memset(&impostor, 0, sizeof(impostor));
    uint8_t claimed[VNET_KEY_LEN];
    ck_assert_int_eq(vnet__sess_read_hello(&impostor, &other_key, &m.u.hello, claimed, NULL),
                     VNET_EACCES);
    /* The HELLO's plaintext is bound to the handshake: another node name does not pass. */
    struct vnet__sess resp;
    memset(&resp, 0, sizeof(resp));
    snprintf(m.u.hello.node, sizeof(m.u.hello.node), "b");
    ck_assert_int_eq(vnet__sess_read_hello(&resp, &ctl_key, &m.u.hello, claimed, NULL),
                     VNET_EACCES);
    snprintf(m.u.hello.node, sizeof(m.u.hello.node), "a");
    m.u.hello.role = VNET_ROLE_CLIENT;
    ck_assert_int_eq(vnet__sess_read_hello(&resp, &ctl_key, &m.u.hello, claimed, NULL),
                     VNET_EACCES);
    m.u.hello.role = VNET_ROLE_NODE;
    ck_assert_int_eq(vnet__sess_read_hello(&resp, &ctl_key, &m.u.hello, claimed, NULL), 0);
    vnet__sess_wipe(&resp);
    struct vnet_msg_welcome w;
    memset(&w, 0, sizeof(w));
    ck_assert_int_eq(vnet__sess_welcome(&i.codec, &w), VNET_EACCES); /* no auth at all */
    vnet__sess_fd_close(&i);
    close(sv[1]);

    pair(sv);
    fd_open(&i, sv[0]);
    memset(&resp, 0, sizeof(resp));
    ck_assert_int_eq(vnet__sess_hello(&i.codec, &node_key, ctl_key.pub, &m.u.hello), 0);
    ck_assert_int_eq(vnet__sess_read_hello(&resp, &ctl_key, &m.u.hello, claimed, NULL), 0);
    ck_assert_int_eq(vnet__sess_accept(&resp, &w), 0);
    w.auth[w.auth_len / 2] ^= 1;
    ck_assert_int_eq(vnet__sess_welcome(&i.codec, &w), VNET_EACCES);
    ck_assert(!i.codec.secure);
    vnet__sess_wipe(&resp);
    vnet__sess_fd_close(&i);
    close(sv[1]);
}
END_TEST

/* Issue 12, item 1: every setting the node acts on is bound into the handshake. A WELCOME
 * carrying a network and node record goes through the wire codec; a copy changed on the way
 * (mode secure -> plain, VNI, MTU, MAC, an IP, the version) fails, the untouched one passes. */
static int welcome_through(int tamper)
{
    struct vnet__sess i, r;
    memset(&i, 0, sizeof(i));
    memset(&r, 0, sizeof(r));
    vnet__sess_init(&i, 0);
    vnet__sess_init(&r, 0);
    struct vnet_msg h = hello_msg();
    ck_assert_int_eq(vnet__sess_hello(&i, &node_key, ctl_key.pub, &h.u.hello), 0);
    uint8_t claimed[VNET_KEY_LEN];
    ck_assert_int_eq(vnet__sess_read_hello(&r, &ctl_key, &h.u.hello, claimed, NULL), 0);
    struct vnet_msg w;
    memset(&w, 0, sizeof(w));
    w.type = VNET_MSG_WELCOME;
    w.u.welcome.version = VNET_PROTO_VERSION;
    struct vnet_network *net = &w.u.welcome.network;
    struct vnet_node_info *self = &w.u.welcome.node;
    net->id = 3;
    snprintf(net->name, sizeof(net->name), "blue");
    net->vni = 4242;
    net->mtu = 1380;
    net->mode = 1; /* secure */
    ck_assert_int_eq(vnet_prefix_parse("10.1.0.0/24", &net->subnet4), 0);
    self->id = 7;
    snprintf(self->name, sizeof(self->name), "a");
    ck_assert_int_eq(vnet_mac_parse("02:00:00:00:00:07", &self->mac), 0);
    ck_assert_int_eq(vnet_ip_parse("10.1.0.7", &self->ips[0]), 0);
    ck_assert_int_eq(vnet__sess_accept(&r, &w.u.welcome), 0);
    /* On the wire and back, as the node receives it. */
    struct vnet_buf b = {0};
    ck_assert_int_eq(vnet_msg_encode(&w, &b), 0);
    struct vnet_msg got;
    ck_assert_int_eq(vnet_msg_decode(b.data + 4, b.len - 4, &got, NULL, 0), 0);
    vnet_buf_free(&b);
    switch (tamper) {
    case 1:
        got.u.welcome.network.mode = 0;
        break;
    case 2:
        got.u.welcome.network.vni++;
        break;
    case 3:
        got.u.welcome.network.mtu = 9000;
        break;
    case 4:
        got.u.welcome.node.mac.b[5] ^= 1;
        break;
    case 5:
        got.u.welcome.node.ips[0].addr[3] ^= 1;
        break;
    case 6:
        got.u.welcome.network.subnet4.len = 16;
        break;
    }
    int rc = vnet__sess_welcome(&i, &got.u.welcome);
    if (rc == 0)
        ck_assert(i.secure);
    vnet_msg_free(&got);
    vnet__sess_wipe(&i);
    vnet__sess_wipe(&r);
    return rc;
}

START_TEST(t_welcome_bound)
{
    keys();
    ck_assert_int_eq(welcome_through(0), 0);
    for (int t = 1; t <= 6; t++)
        ck_assert_msg(welcome_through(t) == VNET_EACCES, "tamper %d accepted", t);
}
END_TEST

/* A sealed session pair, handshake done, and one sealed frame from @i to @r in @frame. */
static void sealed_pair(struct vnet__sess_fd *i, struct vnet__sess_fd *r, struct vnet_buf *frame)
{
    int sv[2];
    pair(sv);
    fd_open(i, sv[0]);
    fd_open(r, sv[1]);
    ck_assert_int_eq(fd_handshake(i, r, ctl_key.pub), 0);
    struct vnet_msg q = request_msg(1, "blue");
    memset(frame, 0, sizeof(*frame));
    ck_assert_int_eq(vnet__sess_encode(&i->codec, &q, frame), 0);
}

static int feed_next(struct vnet__sess *s, const uint8_t *p, size_t n)
{
    char why[192] = "";
    struct vnet_msg m;
    ck_assert_int_eq(vnet__sess_feed(s, p, n), 0);
    int rc = vnet__sess_next(s, &m, why, sizeof(why));
    if (rc == 1)
        vnet_msg_free(&m);
    else if (rc < 0)
        ck_assert_msg(why[0], "error %d without a reason", rc);
    return rc;
}

START_TEST(t_bad_frames)
{
    keys();
    struct vnet__sess_fd i, r;
    struct vnet_buf f;

    /* The intact frame opens. */
    sealed_pair(&i, &r, &f);
    ck_assert_int_eq(feed_next(&r.codec, f.data, f.len), 1);
    vnet_buf_free(&f);
    vnet__sess_fd_close(&i);
    vnet__sess_fd_close(&r);

    /* One bit flipped anywhere in the body: refused, and the session stays refused. */
    sealed_pair(&i, &r, &f);
    f.data[f.len - 3] ^= 0x20;
    ck_assert_int_eq(feed_next(&r.codec, f.data, f.len), VNET_EACCES);
    vnet_buf_free(&f);
    vnet__sess_fd_close(&i);
    vnet__sess_fd_close(&r);

    /* Truncated: one byte short, with the length prefix saying so. */
    sealed_pair(&i, &r, &f);
    uint32_t n = (uint32_t)f.len - 4 - 1;
    f.data[0] = (uint8_t)(n >> 24);
    f.data[1] = (uint8_t)(n >> 16);
    f.data[2] = (uint8_t)(n >> 8);
    f.data[3] = (uint8_t)n;
    ck_assert_int_eq(feed_next(&r.codec, f.data, f.len - 1), VNET_EACCES);
    vnet_buf_free(&f);
    vnet__sess_fd_close(&i);
    vnet__sess_fd_close(&r);

    /* Truncated by the stream: a partial frame is waited for, never handed out. */
    sealed_pair(&i, &r, &f);
    ck_assert_int_eq(feed_next(&r.codec, f.data, f.len - 1), 0);
    ck_assert_int_eq(feed_next(&r.codec, f.data + f.len - 1, 1), 1);
    /* A replayed frame does not open either. */
    ck_assert_int_eq(feed_next(&r.codec, f.data, f.len), VNET_EACCES);
    vnet_buf_free(&f);
    vnet__sess_fd_close(&i);
    vnet__sess_fd_close(&r);

    /* An unsealed frame on a sealed session. */
    sealed_pair(&i, &r, &f);
    struct vnet_buf plain = {0};
    struct vnet_msg q = request_msg(1, "blue");
    ck_assert_int_eq(vnet_msg_encode(&q, &plain), 0);
    ck_assert_int_eq(feed_next(&r.codec, plain.data, plain.len), VNET_EACCES);
    vnet_buf_free(&plain);
    vnet_buf_free(&f);
    vnet__sess_fd_close(&i);
    vnet__sess_fd_close(&r);

    /* Oversized: announced over the limit, before a byte of the body. The limit of a sealed
     * session allows for the channel's overhead, no more. */
    sealed_pair(&i, &r, &f);
    uint8_t big[4];
    uint32_t over = VNET__SESS_SEALED_MAX + 1;
    big[0] = (uint8_t)(over >> 24);
    big[1] = (uint8_t)(over >> 16);
    big[2] = (uint8_t)(over >> 8);
    big[3] = (uint8_t)over;
    ck_assert_int_eq(feed_next(&r.codec, big, 4), VNET_EMSGSIZE);
    vnet_buf_free(&f);
    vnet__sess_fd_close(&i);
    vnet__sess_fd_close(&r);
    sealed_pair(&i, &r, &f); /* the largest message, sealed, is awaited */
    over = VNET__SESS_SEALED_MAX;
    big[0] = (uint8_t)(over >> 24);
    big[1] = (uint8_t)(over >> 16);
    big[2] = (uint8_t)(over >> 8);
    big[3] = (uint8_t)over;
    ck_assert_int_eq(feed_next(&r.codec, big, 4), 0);
    vnet_buf_free(&f);
    vnet__sess_fd_close(&i);
    vnet__sess_fd_close(&r);

    struct vnet__sess s;
    memset(&s, 0, sizeof(s));
    vnet__sess_init(&s, 0);
    over = VNET_FRAME_MAX + 1;
    big[0] = (uint8_t)(over >> 24);
    big[1] = (uint8_t)(over >> 16);
    big[2] = (uint8_t)(over >> 8);
    big[3] = (uint8_t)over;
    ck_assert_int_eq(feed_next(&s, big, 4), VNET_EMSGSIZE);
    vnet__sess_init(&s, 0);
    /* Malformed (0xc1 is never used in msgpack). */
    static const uint8_t garbage[] = {0, 0, 0, 3, 0xc1, 0xc1, 0xc1};
    ck_assert_int_eq(feed_next(&s, garbage, sizeof(garbage)), VNET_EPROTO);
    vnet__sess_wipe(&s);
}
END_TEST

/* ---- libuv transport ---- */

struct end {
    struct vnet__sess_uv t;
    char rxbuf[4096];
    bool responder, answer_keepalives, closed;
    unsigned keepalives, requests, errors;
    int down_code, refused;
    uint64_t down_at;
    struct end *peer;
};

static uv_loop_t loop;
static uv_timer_t guard;
static bool guard_fired;

static void on_guard(uv_timer_t *t)
{
    guard_fired = true;
    uv_stop(t->loop);
}

static void on_msg(struct vnet__sess_uv *t, const struct vnet_msg *m)
{
    struct end *e = t->data;
    switch (m->type) {
    case VNET_MSG_HELLO: {
        uint8_t claimed[VNET_KEY_LEN];
        struct vnet_msg w;
        memset(&w, 0, sizeof(w));
        w.type = VNET_MSG_WELCOME;
        w.u.welcome.version = VNET_PROTO_VERSION;
        ck_assert(e->responder);
        e->refused = vnet__sess_read_hello(&t->codec, &ctl_key, &m->u.hello, claimed, NULL);
        if (e->refused) { /* as the controller does: say why, then close */
            vnet__sess_uv_fail(t, VNET_EACCES, "handshake failed");
            return;
        }
        ck_assert_int_eq(vnet__sess_accept(&t->codec, &w.u.welcome), 0);
        ck_assert_int_eq(vnet__sess_uv_send(t, &w), 0);
        ck_assert_int_eq(vnet__sess_secure(&t->codec), 0);
        return;
    }
    case VNET_MSG_WELCOME: {
        ck_assert_int_eq(vnet__sess_welcome(&t->codec, &m->u.welcome), 0);
        struct vnet_msg q = request_msg(42, "blue");
        ck_assert_int_eq(vnet__sess_uv_send(t, &q), 0);
        return;
    }
    case VNET_MSG_REQUEST:
        ck_assert_uint_eq(m->u.request.id, 42);
        ck_assert(t->codec.secure);
        e->requests++;
        uv_stop(t->h.handle.loop);
        return;
    case VNET_MSG_KEEPALIVE:
        e->keepalives++;
        if (e->answer_keepalives) {
            struct vnet_msg k;
            memset(&k, 0, sizeof(k));
            k.type = VNET_MSG_KEEPALIVE;
            vnet__sess_uv_send(t, &k);
        }
        return;
    case VNET_MSG_ERROR:
        e->errors++;
        return;
    default:
        ck_abort_msg("unexpected message %d", (int)m->type);
    }
}

static void on_down(struct vnet__sess_uv *t, int code, const char *why)
{
    struct end *e = t->data;
    ck_assert_msg(why && why[0], "down without a reason");
    if (!e->down_code) {
        e->down_code = code;
        e->down_at = uv_now(t->h.handle.loop);
    }
    vnet__sess_uv_close(t);
    uv_stop(t->h.handle.loop);
}

static void on_closed(struct vnet__sess_uv *t)
{
    struct end *e = t->data;
    e->closed = true;
}

static const struct vnet__sess_uv_cbs cbs = {
    .on_msg = on_msg,
    .on_down = on_down,
    .on_closed = on_closed,
};

static void uv_pair(struct end *a, struct end *b)
{
    int sv[2];
    pair(sv);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &guard);
    guard_fired = false;
    struct end *ends[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        memset(ends[k], 0, sizeof(*ends[k]));
        ck_assert_int_eq(vnet__sess_uv_init(&ends[k]->t, &loop, true, VNET__SESS_SEALED_MAX,
                                            ends[k]->rxbuf, sizeof(ends[k]->rxbuf), &cbs, ends[k]),
                         0);
        ck_assert_int_eq(uv_pipe_open(&ends[k]->t.h.pipe, sv[k]), 0);
        ck_assert_int_eq(vnet__sess_uv_start(&ends[k]->t), 0);
    }
    a->peer = b;
    b->peer = a;
}

/* Run the loop until something stops it; fail if the guard (@ms) has to. */
static void run_for(uint64_t ms, bool guard_ok)
{
    uv_timer_start(&guard, on_guard, ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_timer_stop(&guard);
    if (!guard_ok)
        ck_assert_msg(!guard_fired, "nothing happened within %llu ms", (unsigned long long)ms);
}

/* Close what is open, let the close callbacks run, and check nothing is left on the loop. */
static void uv_done(struct end *a, struct end *b)
{
    vnet__sess_uv_close(&a->t);
    vnet__sess_uv_close(&b->t);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert(a->closed && b->closed);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* A new pair; @a says HELLO pinning @pinned, @b answers as ctl_key; run until @b has the
 * first sealed request (or the session failed). */
static void uv_handshake(struct end *a, struct end *b, const uint8_t pinned[VNET_KEY_LEN])
{
    uv_pair(a, b);
    b->responder = true;
    struct vnet_msg m = hello_msg();
    ck_assert_int_eq(vnet__sess_hello(&a->t.codec, &node_key, pinned, &m.u.hello), 0);
    ck_assert_int_eq(vnet__sess_uv_send(&a->t, &m), 0);
    run_for(2000, false);
}

/* Bytes on @e's stream as they are, bypassing its codec. */
static void raw_write(struct end *e, const uint8_t *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    ck_assert_int_eq(uv_try_write(&e->t.h.stream, &b, 1), (int)n);
}

START_TEST(t_uv_handshake)
{
    keys();
    struct end a, b;
    uv_handshake(&a, &b, ctl_key.pub);
    ck_assert_uint_eq(b.requests, 1);
    ck_assert(a.t.codec.secure && b.t.codec.secure);

    /* A shared frame to a sealed session is sealed for it alone. */
    struct vnet_msg q = request_msg(42, "blue");
    struct vnet__frame *f = vnet__frame_encode(&q);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(vnet__sess_uv_write(&a.t, f), 0);
    vnet__frame_unref(f);
    run_for(2000, false);
    ck_assert_uint_eq(b.requests, 2);

    /* Failing a session: the ERROR arrives, then the end of the stream. */
    vnet__sess_uv_fail(&b.t, VNET_EACCES, "go away");
    while (!a.down_code)
        run_for(2000, false);
    ck_assert_uint_eq(a.errors, 1);
    ck_assert_int_eq(a.down_code, VNET_EIO);
    uv_done(&a, &b);
}
END_TEST

static void on_stall(uv_timer_t *t)
{
    (void)t;
    usleep(8 * 20 * 1000);
}

START_TEST(t_uv_keepalive)
{
    keys();
    struct end a, b;
    const uint32_t ka = 20;

    /* @a sends keepalives and watches @b, which only listens: @b hears one per interval, and
     * @a gives up on @b after three silent intervals. */
    uv_pair(&a, &b);
    uint64_t t0 = uv_now(&loop);
    vnet__sess_uv_keepalive(&a.t, ka, true);
    run_for(3000, false);
    ck_assert_int_eq(a.down_code, VNET_ETIMEDOUT);
    uint64_t silent = a.down_at - t0;
    ck_assert_msg(silent > 3 * ka, "declared dead after %llu ms", (unsigned long long)silent);
    ck_assert_msg(silent < 1000, "declared dead only after %llu ms", (unsigned long long)silent);
    /* Counted in ticks, which a loaded machine only delays: dead at the first tick after three
     * silent intervals, the fourth at the latest, so at most three keepalives went out. */
    ck_assert_uint_ge(b.keepalives, 1);
    ck_assert_uint_le(b.keepalives, 3);
    /* Paced by the interval: the timer's next tick is due an interval after the loop time of
     * the tick before, so no more keepalives went out than intervals passed. (Arrival times
     * would not show it: a late read bunches them.) */
    ck_assert_msg(b.keepalives <= silent / ka, "%u keepalives in %llu ms", b.keepalives,
                  (unsigned long long)silent);
    uv_done(&a, &b);

    /* A peer that answers is never declared dead, however long it runs, even when this
     * process is not scheduled for longer than three intervals (here: the loop's thread
     * sleeps 8 intervals once): the timers then fire before the answers are read. */
    uv_pair(&a, &b);
    b.answer_keepalives = true;
    vnet__sess_uv_keepalive(&a.t, ka, true);
    uv_timer_t stall;
    uv_timer_init(&loop, &stall);
    uv_timer_start(&stall, on_stall, 4 * ka, 0);
    run_for(20 * ka, true);
    ck_assert_msg(guard_fired, "stopped early: a down %d", a.down_code);
    ck_assert_int_eq(a.down_code, 0);
    ck_assert_uint_ge(b.keepalives, 6);
    ck_assert_uint_ge(a.keepalives, 6);
    uv_close((uv_handle_t *)&stall, NULL);
    uv_done(&a, &b);

    /* Watching without sending (a controller waiting for a hello): silence still ends it. */
    uv_pair(&a, &b);
    vnet__sess_uv_keepalive(&a.t, ka, false);
    run_for(3000, false);
    ck_assert_int_eq(a.down_code, VNET_ETIMEDOUT);
    ck_assert_uint_eq(b.keepalives, 0);
    uv_done(&a, &b);
}
END_TEST

START_TEST(t_uv_refused)
{
    keys();
    struct end a, b;

    /* Another pinned key: the responder cannot read the HELLO and says so; the node hears the
     * ERROR, then the end of the stream. */
    uv_handshake(&a, &b, other_key.pub);
    while (!a.down_code) /* each end's down stops the loop: wait for the node's */
        run_for(2000, false);
    ck_assert_int_eq(b.refused, VNET_EACCES);
    ck_assert_uint_eq(a.errors, 1);
    ck_assert_int_eq(a.down_code, VNET_EIO);
    ck_assert(!a.t.codec.secure && !b.t.codec.secure);
    uv_done(&a, &b);

    /* A tampered sealed frame ends the session. */
    uv_handshake(&a, &b, ctl_key.pub);
    ck_assert_uint_eq(b.requests, 1);
    struct vnet_msg q = request_msg(42, "blue");
    struct vnet_buf f = {0};
    ck_assert_int_eq(vnet__sess_encode(&a.t.codec, &q, &f), 0);
    f.data[f.len - 1] ^= 1;
    raw_write(&a, f.data, f.len);
    vnet_buf_free(&f);
    run_for(2000, false);
    ck_assert_int_eq(b.down_code, VNET_EACCES);
    ck_assert_uint_eq(b.requests, 1);
    uv_done(&a, &b);

    /* A truncated one too (the length prefix agrees with the shorter body). */
    uv_handshake(&a, &b, ctl_key.pub);
    ck_assert_int_eq(vnet__sess_encode(&a.t.codec, &q, &f), 0);
    uint32_t n = (uint32_t)f.len - 4 - 2;
    uint8_t pre[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    memcpy(f.data, pre, 4);
    raw_write(&a, f.data, f.len - 2);
    vnet_buf_free(&f);
    run_for(2000, false);
    ck_assert_int_eq(b.down_code, VNET_EACCES);
    uv_done(&a, &b);

    /* An oversized one is refused on its length prefix alone. */
    uv_handshake(&a, &b, ctl_key.pub);
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff};
    raw_write(&a, huge, sizeof(huge));
    run_for(2000, false);
    ck_assert_int_eq(b.down_code, VNET_EMSGSIZE);
    uv_done(&a, &b);
}
END_TEST

static Suite *session_suite(void)
{
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("fd");
    tcase_add_test(tc, t_fd_handshake);
    tcase_add_test(tc, t_fd_wrong_key);
    tcase_add_test(tc, t_welcome_bound);
    tcase_add_test(tc, t_bad_frames);
    suite_add_tcase(s, tc);
    tc = tcase_create("uv");
    tcase_add_test(tc, t_uv_handshake);
    tcase_add_test(tc, t_uv_refused);
    tcase_add_test(tc, t_uv_keepalive);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(session_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
