/* Fuzz the session layer's receive path (libvnet/session.c): bytes from the network, fed in
 * pieces, into a session before the handshake (frames of plain messages) and into one after it
 * (frames sealed with the channel). Whatever comes in, vnet__sess_next() hands out whole
 * messages or one of its documented errors, and after an error the session stays refused.
 * vnet_fuzz_seed() hands out genuine sealed streams so mutations reach past the channel. */
#include "../../libvnet/session_int.h"
#include "vnet/crypto.h"
#include "vnet/error.h"
#include "vnet/proto.h"

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

static struct {
    int ready;
    struct vnet__sess sealed; /* the controller's side right after the handshake */
    uint8_t stream[1024];     /* NFRAMES frames the node sealed, in order */
    size_t streamlen;
} st;

static void setup(void)
{
    if (st.ready)
        return;
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
        q.type = k % 2 ? VNET_MSG_KEEPALIVE : VNET_MSG_ACK;
        q.u.ack.revision = (uint64_t)k + 1;
        struct vnet_buf b = {0};
        CHECK(vnet__sess_encode(&i, &q, &b) == 0);
        CHECK(st.streamlen + b.len <= sizeof(st.stream));
        memcpy(st.stream + st.streamlen, b.data, b.len);
        st.streamlen += b.len;
        vnet_buf_free(&b);
    }
    st.sealed = r; /* no buffer allocated yet: a plain copy is a fresh session each time */
    CHECK(r.rd.buf == NULL);
    vnet__sess_wipe(&i);
    vnet_key_wipe(&node);
    vnet_key_wipe(&ctl);
    st.ready = 1;
}

size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    setup();
    if (cap < 1 + st.streamlen)
        return 0;
    buf[0] = (uint8_t)(0x80 | (i & 0x7f)); /* sealed, with varying piece sizes */
    memcpy(buf + 1, st.stream, st.streamlen);
    return 1 + st.streamlen;
}

/* Feed @data to @s in pieces whose sizes follow @pattern; count what comes out. */
static void drive(struct vnet__sess *s, uint8_t pattern, const uint8_t *data, size_t size,
                  unsigned *msgs, int *err)
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
        drive(&s, mode, data, size, &msgs, &err);
        if (size == st.streamlen && memcmp(data, st.stream, size) == 0)
            CHECK(msgs == NFRAMES && err == 0); /* the genuine stream opens whole */
    } else {
        memset(&s, 0, sizeof(s));
        vnet__sess_init(&s, mode & 1 ? 64 : 0); /* a small limit too */
        drive(&s, mode, data, size, &msgs, &err);
    }
    vnet__sess_wipe(&s);
    return 0;
}
