/* Fuzz the two handshake messages as the session layer reads them (libvnet/session.c), before
 * anything is authenticated (issue 12):
 *
 *   first byte even  the controller's side: the rest is a HELLO body as it arrives; the
 *                    handshake in HELLO.auth is read and a join secret behind it opened. It
 *                    only ever succeeds for the genuine handshake and names it was made for
 *                    (network, node and role are bound), and the join secret opens only bound
 *                    to the key the handshake proved.
 *   first byte 0x?1  the node's side: a fresh handshake per input; the controller's genuine
 *                    WELCOME (a secure network with VNI, MTU, subnets, a MAC and an IP) is
 *                    encoded, XORed with the rest as a mask, decoded, and checked. Whatever
 *                    the mask, the node accepts it only when every setting it would act on is
 *                    unchanged (and the all-zero mask is accepted).
 *
 * vnet_fuzz_seed() hands out the genuine HELLO (with a join secret) and zero masks. */
#include "../../libvnet/session_int.h"
#include "vnet/crypto.h"
#include "vnet/error.h"
#include "vnet/proto.h"
#include "vnet/token.h"
#include "vnet/types.h"

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

static struct {
    int ready;
    struct vnet_keypair node, ctl;
    uint8_t secret[VNET_JOIN_SECRET_LEN];
    struct vnet_buf hello; /* the genuine HELLO frame (length prefix included) */
    struct vnet_msg welcome;
} st;

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

static void setup(void)
{
    if (st.ready)
        return;
    uint8_t sec[VNET_KEY_LEN];
    memset(sec, 1, sizeof(sec));
    CHECK(vnet_key_from_secret(&st.node, sec) == 0);
    memset(sec, 2, sizeof(sec));
    CHECK(vnet_key_from_secret(&st.ctl, sec) == 0);
    memset(st.secret, 3, sizeof(st.secret));
    struct vnet__sess i;
    memset(&i, 0, sizeof(i));
    vnet__sess_init(&i, 0);
    struct vnet_msg m = hello_msg();
    CHECK(vnet__sess_hello(&i, &st.node, st.ctl.pub, &m.u.hello) == 0);
    CHECK(vnet_join_seal(st.ctl.pub, st.secret, st.node.pub, m.u.hello.auth + m.u.hello.auth_len) ==
          0);
    m.u.hello.auth_len += VNET_JOIN_SEALED_LEN;
    CHECK(vnet_msg_encode(&m, &st.hello) == 0);
    vnet__sess_wipe(&i);

    struct vnet_msg *w = &st.welcome;
    w->type = VNET_MSG_WELCOME;
    w->u.welcome.version = VNET_PROTO_VERSION;
    struct vnet_network *net = &w->u.welcome.network;
    net->id = 3;
    snprintf(net->name, sizeof(net->name), "blue");
    net->vni = 4242;
    net->mtu = 1380;
    net->mode = 1;
    net->revision = 9;
    CHECK(vnet_prefix_parse("10.1.0.0/24", &net->subnet4) == 0);
    CHECK(vnet_prefix_parse("fd00:1::/64", &net->subnet6) == 0);
    struct vnet_node_info *self = &w->u.welcome.node;
    self->id = 7;
    self->network_id = 3;
    snprintf(self->name, sizeof(self->name), "a");
    CHECK(vnet_mac_parse("02:00:00:00:00:07", &self->mac) == 0);
    CHECK(vnet_ip_parse("10.1.0.7", &self->ips[0]) == 0);
    memcpy(self->pubkey, st.node.pub, VNET_KEY_LEN);
    self->has_pubkey = true;
    st.ready = 1;
}

size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    setup();
    size_t body = st.hello.len - 4;
    if (i % 2 == 0) {
        if (cap < 1 + body)
            return 0;
        buf[0] = (uint8_t)(2 * (i / 2 % 64)); /* even: the controller's side */
        memcpy(buf + 1, st.hello.data + 4, body);
        return 1 + body;
    }
    size_t n = 1 + (i * 37u) % 200; /* a zero mask, of varying length */
    if (cap < n)
        return 0;
    memset(buf, 0, n);
    buf[0] = 0x01;
    return n;
}

/* The controller reads a HELLO. */
static void responder(const uint8_t *data, size_t size)
{
    struct vnet_msg m;
    if (vnet_msg_decode(data, size, &m, NULL, 0) != 0)
        return;
    if (m.type != VNET_MSG_HELLO || m.u.hello.auth_len < VNET_HS_HELLO_LEN) {
        vnet_msg_free(&m);
        return;
    }
    const struct vnet_msg_hello *h = &m.u.hello;
    struct vnet__sess r;
    memset(&r, 0, sizeof(r));
    vnet__sess_init(&r, 0);
    uint8_t claimed[VNET_KEY_LEN];
    uint64_t ts = 0;
    int rc = vnet__sess_read_hello(&r, &st.ctl, h, claimed, &ts);
    CHECK(rc == 0 || rc == VNET_EACCES || rc == VNET_ETRUNC || rc == VNET_EMALFORM ||
          rc == VNET_EVERSION);
    if (rc == 0) {
        /* Only the genuine handshake reads, and only for the names it was made for. */
        CHECK(h->role == VNET_ROLE_NODE && strcmp(h->network, "blue") == 0 &&
              strcmp(h->node, "a") == 0);
        CHECK(memcmp(claimed, st.node.pub, VNET_KEY_LEN) == 0);
        uint32_t extra = h->auth_len - VNET_HS_HELLO_LEN;
        uint8_t secret[VNET_JOIN_SECRET_LEN], bound[VNET_KEY_LEN];
        if (extra) {
            int jr = vnet_join_open(st.ctl.pub, st.ctl.sec, h->auth + VNET_HS_HELLO_LEN, extra,
                                    secret, bound);
            CHECK(jr == 0 || jr == VNET_EMALFORM || jr == VNET_EACCES);
            if (jr == 0) /* sealed by the node: the secret and the binding are its own */
                CHECK(memcmp(secret, st.secret, sizeof(secret)) == 0 &&
                      memcmp(bound, st.node.pub, VNET_KEY_LEN) == 0);
        }
        struct vnet_msg_welcome w = st.welcome.u.welcome;
        CHECK(vnet__sess_accept(&r, &w) == 0);
        CHECK(w.auth_len == VNET_HS_WELCOME_LEN);
    }
    vnet__sess_wipe(&r);
    vnet_msg_free(&m);
}

/* The settings of a WELCOME as the handshake binds them: its encoding with auth empty. */
static void settings(const struct vnet_msg_welcome *w, struct vnet_buf *out)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_WELCOME;
    m.u.welcome = *w;
    m.u.welcome.auth_len = 0;
    CHECK(vnet_msg_encode(&m, out) == 0);
}

/* The node reads a WELCOME changed on the way by @mask. */
static void initiator(const uint8_t *mask, size_t size)
{
    struct vnet__sess i, r;
    memset(&i, 0, sizeof(i));
    memset(&r, 0, sizeof(r));
    vnet__sess_init(&i, 0);
    vnet__sess_init(&r, 0);
    struct vnet_msg h = hello_msg();
    uint8_t claimed[VNET_KEY_LEN];
    CHECK(vnet__sess_hello(&i, &st.node, st.ctl.pub, &h.u.hello) == 0);
    CHECK(vnet__sess_read_hello(&r, &st.ctl, &h.u.hello, claimed, NULL) == 0);
    struct vnet_msg w = st.welcome;
    CHECK(vnet__sess_accept(&r, &w.u.welcome) == 0);
    struct vnet_buf b = {0};
    CHECK(vnet_msg_encode(&w, &b) == 0);
    int changed = 0;
    for (size_t k = 0; k < size && 4 + k < b.len; k++) {
        b.data[4 + k] ^= mask[k];
        changed |= mask[k];
    }
    struct vnet_msg got;
    if (vnet_msg_decode(b.data + 4, b.len - 4, &got, NULL, 0) == 0) {
        int rc = got.type == VNET_MSG_WELCOME ? vnet__sess_welcome(&i, &got.u.welcome) : -1;
        if (got.type == VNET_MSG_WELCOME)
            CHECK(rc == 0 || rc == VNET_EACCES);
        if (!changed)
            CHECK(rc == 0);
        if (rc == 0) {
            /* Accepted: everything the node acts on is what the controller sent. */
            struct vnet_buf x = {0}, y = {0};
            settings(&got.u.welcome, &x);
            settings(&w.u.welcome, &y);
            CHECK(x.len == y.len && memcmp(x.data, y.data, x.len) == 0);
            vnet_buf_free(&x);
            vnet_buf_free(&y);
        }
        vnet_msg_free(&got);
    } else {
        CHECK(changed);
    }
    vnet_buf_free(&b);
    vnet__sess_wipe(&i);
    vnet__sess_wipe(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    if (mode % 2 == 0)
        responder(data + 1, size - 1);
    else if ((mode & 0x1f) == 1) /* a fresh handshake each: the costly half, kept rarer */
        initiator(data + 1, size - 1);
    return 0;
}
