/* Fuzz the session layer's receive path (libvnet/session.c): bytes from the network, fed in
 * pieces, into a session before the handshake (frames of plain messages) and into one after it
 * (frames sealed with the channel). Whatever comes in, vnet__sess_next() hands out whole
 * messages or one of its documented errors, and after an error the session stays refused.
 *
 * Two more modes follow what the controller and the node do with the plaintext handshake
 * messages that come out of an unauthenticated connection: every HELLO goes through
 * vnet__sess_read_hello() with the controller's key and, when its handshake verifies, the
 * sealed join secret or API token behind it is opened; every WELCOME goes through
 * vnet__sess_welcome() on a node that sent a HELLO. The oracle is authentication: only the
 * genuine handshake bytes made at start-up verify, with the key and timestamp they carry.
 *
 * vnet_fuzz_seed() hands out genuine sealed streams and genuine HELLO/WELCOME frames so
 * mutations reach past the channel and the handshake's length checks. */
#include "../../libvnet/session_int.h"
#include "vnet/crypto.h"
#include "vnet/error.h"
#include "vnet/proto.h"
#include "vnet/token.h"

#include "fuzz_rand.h"

#include <sodium.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort(); /* a fuzz finding, never reached on valid behaviour */                        \
    } while (0)

#define NFRAMES 4

/* The first input byte: 0x80 sealed session; else MODE_HELLO / MODE_WELCOME (the handshake
 * messages that come out go to the controller's / the node's checks) or a plain session. */
#define MODE_HELLO   0x40
#define MODE_WELCOME 0x60

static struct {
    int ready;
    struct vnet__sess sealed; /* the controller's side right after the handshake */
    uint8_t stream[1024];     /* NFRAMES frames the node sealed, in order */
    size_t streamlen;
    struct vnet_keypair ctl; /* the controller's key (HELLO mode) */
    uint8_t node_pub[VNET_KEY_LEN];
    uint8_t client_pub[VNET_KEY_LEN];
    uint8_t join_secret[VNET_JOIN_SECRET_LEN], api_token[VNET_API_TOKEN_LEN];
    struct vnet_msg_hello hello[2]; /* 0: a node enrolling with a join secret, 1: a client */
    uint8_t hello_frame[2][1024];   /* each as a plain frame */
    size_t hello_framelen[2];
    struct vnet__sess waiting; /* the node of hello[0] waiting for its WELCOME */
    uint8_t welcome_auth[VNET_AUTH_MAX];
    uint32_t welcome_auth_len;
    uint8_t welcome_frame[2048]; /* the controller's WELCOME to hello[0], a plain frame */
    size_t welcome_framelen;
} st;

/* Append the plain frame of @m to @buf. */
static size_t plain_frame(const struct vnet_msg *m, uint8_t *buf, size_t cap)
{
    struct vnet_buf b = {0};
    CHECK(vnet_msg_encode(m, &b) == 0 && b.len <= cap);
    memcpy(buf, b.data, b.len);
    size_t n = b.len;
    vnet_buf_free(&b);
    return n;
}

/* The handshake messages of a node enrolling with a join secret and of a client with an API
 * token, each as the plain frame the controller reads first, and the WELCOME the node waits
 * for. */
static void setup_hello(const struct vnet_keypair *node)
{
    uint8_t sec[VNET_KEY_LEN];
    memset(sec, 2, sizeof(sec));
    CHECK(vnet_key_from_secret(&st.ctl, sec) == 0);
    memcpy(st.node_pub, node->pub, VNET_KEY_LEN);
    memset(st.join_secret, 5, sizeof(st.join_secret));
    memset(st.api_token, 6, sizeof(st.api_token));
    struct vnet_keypair client;
    memset(sec, 3, sizeof(sec));
    CHECK(vnet_key_from_secret(&client, sec) == 0);
    memcpy(st.client_pub, client.pub, VNET_KEY_LEN);

    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    struct vnet_msg_hello *h = &m.u.hello;
    h->version = VNET_PROTO_VERSION;
    h->role = VNET_ROLE_NODE;
    snprintf(h->network, sizeof(h->network), "blue");
    snprintf(h->node, sizeof(h->node), "n2");
    memset(&st.waiting, 0, sizeof(st.waiting));
    vnet__sess_init(&st.waiting, 0);
    /* vnet__sess_hello()'s steps with a fixed timestamp (it reads the clock), so that the
     * WELCOME answering it is the same in every run */
    static const char prologue[] = "vnet-node/blue/n2";
    size_t n = 0;
    CHECK(vnet_hs_init_initiator(&st.waiting.hs, node, st.ctl.pub, prologue,
                                 sizeof(prologue) - 1) == 0);
    CHECK(vnet_hs_write_hello(&st.waiting.hs, 1700000000000ull, h->auth, sizeof(h->auth), &n) == 0);
    h->auth_len = (uint32_t)n;
    CHECK(h->auth_len + VNET_JOIN_SEALED_LEN <= sizeof(h->auth));
    CHECK(vnet_join_seal(st.ctl.pub, st.join_secret, node->pub, h->auth + h->auth_len) == 0);
    h->auth_len += VNET_JOIN_SEALED_LEN;
    st.hello[0] = *h;
    st.hello_framelen[0] = plain_frame(&m, st.hello_frame[0], sizeof(st.hello_frame[0]));

    /* the controller answers it */
    struct vnet__sess r;
    memset(&r, 0, sizeof(r));
    vnet__sess_init(&r, 0);
    uint8_t claimed[VNET_KEY_LEN];
    struct vnet_msg w;
    memset(&w, 0, sizeof(w));
    w.type = VNET_MSG_WELCOME;
    w.u.welcome.version = VNET_PROTO_VERSION;
    w.u.welcome.report_ms = 10000;
    w.u.welcome.network.vni = 4242;
    w.u.welcome.network.mtu = 1450;
    snprintf(w.u.welcome.network.name, sizeof(w.u.welcome.network.name), "blue");
    snprintf(w.u.welcome.node.name, sizeof(w.u.welcome.node.name), "n2");
    CHECK(vnet__sess_read_hello(&r, &st.ctl, h, claimed, NULL) == 0);
    CHECK(vnet__sess_accept(&r, &w.u.welcome) == 0);
    memcpy(st.welcome_auth, w.u.welcome.auth, w.u.welcome.auth_len);
    st.welcome_auth_len = w.u.welcome.auth_len;
    st.welcome_framelen = plain_frame(&w, st.welcome_frame, sizeof(st.welcome_frame));
    vnet__sess_wipe(&r);

    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    h->version = VNET_PROTO_VERSION;
    h->role = VNET_ROLE_CLIENT;
    struct vnet__sess c;
    memset(&c, 0, sizeof(c));
    vnet__sess_init(&c, 0);
    CHECK(vnet__sess_hello(&c, &client, st.ctl.pub, h) == 0);
    CHECK(h->auth_len + VNET_API_SEALED_LEN <= sizeof(h->auth));
    CHECK(vnet_api_token_seal(st.ctl.pub, st.api_token, client.pub, h->auth + h->auth_len) == 0);
    h->auth_len += VNET_API_SEALED_LEN;
    st.hello[1] = *h;
    st.hello_framelen[1] = plain_frame(&m, st.hello_frame[1], sizeof(st.hello_frame[1]));
    vnet__sess_wipe(&c);
    vnet_key_wipe(&client);
}

static void setup(void)
{
    if (st.ready)
        return;
    fuzz_rand_install(); /* the same handshakes in every run: corpus files stay genuine */
    struct vnet_keypair node, ctl;
    uint8_t sec[VNET_KEY_LEN];
    memset(sec, 1, sizeof(sec));
    CHECK(vnet_key_from_secret(&node, sec) == 0);
    memset(sec, 2, sizeof(sec));
    CHECK(vnet_key_from_secret(&ctl, sec) == 0);
    struct vnet__sess i, r;
    memset(&i, 0, sizeof(i));
    memset(&r, 0, sizeof(r));
    vnet__sess_init(&i, 0);
    vnet__sess_init(&r, 0);
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.role = VNET_ROLE_NODE;
    snprintf(m.u.hello.network, sizeof(m.u.hello.network), "blue");
    snprintf(m.u.hello.node, sizeof(m.u.hello.node), "a");
    uint8_t claimed[VNET_KEY_LEN];
    struct vnet_msg_welcome w;
    memset(&w, 0, sizeof(w));
    CHECK(vnet__sess_hello(&i, &node, ctl.pub, &m.u.hello) == 0);
    CHECK(vnet__sess_read_hello(&r, &ctl, &m.u.hello, claimed, NULL) == 0);
    CHECK(vnet__sess_accept(&r, &w) == 0);
    CHECK(vnet__sess_secure(&r) == 0);
    CHECK(vnet__sess_welcome(&i, &w) == 0);
    for (int k = 0; k < NFRAMES; k++) {
        struct vnet_msg q;
        memset(&q, 0, sizeof(q));
        q.type = k % 3 == 2 ? VNET_MSG_REPORT : k % 2 ? VNET_MSG_KEEPALIVE : VNET_MSG_ACK;
        q.u.ack.revision = (uint64_t)k + 1;
        struct vnet_buf b = {0}, rb = {0};
        if (q.type == VNET_MSG_REPORT) { /* a node's periodic report: counters, one peer */
            struct vnet_report_peer peer = {.node_id = 2, .c = {1, 2, 3, 4}, .reach = 1};
            CHECK(vnet_endpoint_parse("10.0.0.2:4789", &peer.ep) == 0);
            struct vnet_report rep = {.virt = {5, 6, 7, 8}, .drops = 1, .table_size = 3};
            rep.drop_reasons[2] = 1;
            rep.peers = &peer;
            rep.npeers = 1;
            CHECK(vnet_report_encode(&rep, &rb) == 0);
            q.u.report.body = rb.data;
            q.u.report.len = (uint32_t)rb.len;
        }
        CHECK(vnet__sess_encode(&i, &q, &b) == 0);
        vnet_buf_free(&rb);
        CHECK(st.streamlen + b.len <= sizeof(st.stream));
        memcpy(st.stream + st.streamlen, b.data, b.len);
        st.streamlen += b.len;
        vnet_buf_free(&b);
    }
    st.sealed = r; /* no buffer allocated yet: a plain copy is a fresh session each time */
    CHECK(r.rd.buf == NULL);
    vnet__sess_wipe(&i);
    setup_hello(&node);
    vnet_key_wipe(&node);
    vnet_key_wipe(&ctl);
    st.ready = 1;
}

size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    setup();
    const uint8_t *src = st.stream;
    size_t len = st.streamlen;
    uint8_t mode = (uint8_t)(0x80 | (i & 0x7f)); /* sealed, with varying piece sizes */
    if (i % 4 == 1 || i % 4 == 2) { /* a HELLO to the controller: a node's or a client's */
        src = st.hello_frame[i % 4 - 1];
        len = st.hello_framelen[i % 4 - 1];
        mode = (uint8_t)(MODE_HELLO | (i & 0x1e));
    } else if (i % 4 == 3) { /* the WELCOME to the node */
        src = st.welcome_frame;
        len = st.welcome_framelen;
        mode = (uint8_t)(MODE_WELCOME | (i & 0x1e));
    }
    if (cap < 1 + len)
        return 0;
    buf[0] = mode;
    memcpy(buf + 1, src, len);
    return 1 + len;
}

/* The controller's first steps with a HELLO from an unauthenticated connection. */
static void on_hello(const struct vnet_msg_hello *h)
{
    if (h->auth_len < VNET_HS_HELLO_LEN)
        return; /* refused before any computation */
    struct vnet__sess r;
    memset(&r, 0, sizeof(r));
    uint8_t claimed[VNET_KEY_LEN];
    uint64_t ts;
    if (vnet__sess_read_hello(&r, &st.ctl, h, claimed, &ts) != 0) {
        vnet__sess_wipe(&r);
        return;
    }
    /* only a genuine handshake verifies (also one of an earlier run: a corpus file), with the
     * key it was made with; only genuine sealed secrets open, to what was sealed */
    int k = h->role == VNET_ROLE_CLIENT;
    if (!k) /* a node's names are bound (the prologue); a client has none */
        CHECK(strcmp(h->network, st.hello[0].network) == 0 &&
              strcmp(h->node, st.hello[0].node) == 0);
    CHECK(memcmp(claimed, k ? st.client_pub : st.node_pub, VNET_KEY_LEN) == 0);
    const uint8_t *extra = h->auth + VNET_HS_HELLO_LEN;
    size_t nextra = h->auth_len - VNET_HS_HELLO_LEN;
    if (k) {
        uint8_t raw[VNET_API_TOKEN_LEN], bound[VNET_KEY_LEN];
        if (vnet_api_token_open(st.ctl.pub, st.ctl.sec, extra, nextra, raw, bound) == 0) {
            CHECK(memcmp(raw, st.api_token, sizeof(raw)) == 0 &&
                  memcmp(bound, claimed, VNET_KEY_LEN) == 0);
        }
    } else if (nextra == VNET_JOIN_SEALED_LEN) {
        uint8_t secret[VNET_JOIN_SECRET_LEN], bound[VNET_KEY_LEN];
        if (vnet_join_open(st.ctl.pub, st.ctl.sec, extra, nextra, secret, bound) == 0)
            CHECK(memcmp(secret, st.join_secret, sizeof(secret)) == 0 &&
                  memcmp(bound, claimed, VNET_KEY_LEN) == 0);
    }
    struct vnet_msg_welcome w;
    memset(&w, 0, sizeof(w));
    CHECK(vnet__sess_accept(&r, &w) == 0 && w.auth_len == VNET_HS_WELCOME_LEN);
    vnet__sess_wipe(&r);
}

/* The node's check of a WELCOME answering its HELLO. */
static void on_welcome(const struct vnet_msg_welcome *w)
{
    struct vnet__sess n = st.waiting; /* no buffer allocated: a fresh copy */
    if (vnet__sess_welcome(&n, w) == 0)
        CHECK(w->auth_len == st.welcome_auth_len &&
              memcmp(w->auth, st.welcome_auth, w->auth_len) == 0);
    vnet__sess_wipe(&n);
}

/* Feed @data to @s in pieces whose sizes follow @pattern; count what comes out. */
static void drive(struct vnet__sess *s, uint8_t pattern, const uint8_t *data, size_t size,
                  unsigned *msgs, int *err, int hs)
{
    size_t off = 0;
    unsigned step = 0;
    *msgs = 0;
    *err = 0;
    while (off < size && !*err) {
        size_t piece = 1 + ((pattern >> (step++ % 7)) & 0x3f) * 3;
        if (piece > size - off)
            piece = size - off;
        CHECK(vnet__sess_feed(s, data + off, piece) == 0);
        off += piece;
        for (;;) {
            struct vnet_msg m;
            char why[192] = "";
            int rc = vnet__sess_next(s, &m, why, sizeof(why));
            if (rc == 0)
                break;
            if (rc == 1) {
                CHECK(m.type >= VNET_MSG_HELLO);
                if (hs == MODE_HELLO && m.type == VNET_MSG_HELLO)
                    on_hello(&m.u.hello);
                else if (hs == MODE_WELCOME && m.type == VNET_MSG_WELCOME)
                    on_welcome(&m.u.welcome);
                vnet_msg_free(&m);
                (*msgs)++;
                continue;
            }
            CHECK(rc == VNET_EMSGSIZE || rc == VNET_EACCES || rc == VNET_EPROTO ||
                  rc == VNET_ENOMEM);
            CHECK(why[0]);
            *err = rc;
            break;
        }
    }
    if (*err == VNET_EACCES || *err == VNET_EMSGSIZE) {
        /* refused for good: nothing more comes out of it */
        struct vnet_msg m;
        char why[192];
        CHECK(vnet__sess_feed(s, st.stream, st.streamlen) == 0);
        for (int k = 0; k <= NFRAMES; k++)
            CHECK(vnet__sess_next(s, &m, why, sizeof(why)) != 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    struct vnet__sess s;
    unsigned msgs;
    int err;
    if (mode & 0x80) {
        s = st.sealed;
        drive(&s, mode, data, size, &msgs, &err, 0);
        if (size == st.streamlen && memcmp(data, st.stream, size) == 0)
            CHECK(msgs == NFRAMES && err == 0); /* the genuine stream opens whole */
    } else {
        memset(&s, 0, sizeof(s));
        vnet__sess_init(&s, mode & 1 ? 64 : 0); /* a small limit too */
        drive(&s, mode, data, size, &msgs, &err, mode & MODE_HELLO ? mode & MODE_WELCOME : 0);
    }
    vnet__sess_wipe(&s);
    return 0;
}
