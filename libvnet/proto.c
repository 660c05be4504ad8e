/* The control protocol codec: frames of one msgpack array each (docs/protocol.md).
 *
 * Both directions are written by hand over the bytes rather than with msgpack-c. The subset in
 * use is small (nil, bool, integers, str, bin, array), and a schema-driven reader gives what a
 * generic unpacker does not: every type, length and range is checked where the field is read,
 * nesting depth is fixed by the schema (no recursion driven by the input), and nothing is
 * allocated except the message's own arrays, each sized only after checking that the frame
 * holds enough bytes for that many elements at their smallest encoding. msgpack_unpack()
 * would instead build a zone of objects for whatever the peer sent (16 MiB of nested empty
 * arrays is millions of objects) before a single field could be checked.
 *
 * The encoder writes the shortest encoding of every value; the decoder accepts any integer
 * format whose value is in range (other encoders may not minimise), but nothing else: no
 * map, ext, float, str where bin is expected or the reverse, no extra or missing fields, no
 * trailing bytes. Every message the encoder accepts decodes to the same message.
 */
#include "vnet/proto.h"
#include "vnet/error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Smallest encodings of the array elements, used to bound counts before allocating. A node is
 * [id, network_id, name, pubkey|nil, mac (bin 6: 8 bytes), [ip|nil, ip|nil], phys, observed,
 * state, revision]: 1 + 1 + 1 + 1 + 1 + 8 + 3 + 1 + 1 + 1 + 1. */
#define MIN_NETWORK_BYTES 10
#define MIN_NODE_BYTES    20
#define MIN_CHANGE_BYTES  5
/* A status: [node, acked, connected, since, last_seen, from|nil, age|nil, report|nil]. */
#define MIN_STATUS_BYTES (8 + MIN_NODE_BYTES)
/* A report peer: [id, [bin 4, port] (8), 4 counters, nil, reach, nil]: 1 + 1 + 8 + 4 + 3. */
#define MIN_PEER_BYTES       17
#define MIN_REASON_BYTES     3 /* [reason, count] */
#define MIN_SUBSCRIBER_BYTES 5 /* [id, name, admin, has_token]: 1 + 1 + 1 + 1 + 1 */

/* Field counts of the top-level arrays, type included. */
static const uint8_t msg_fields[] = {
    [VNET_MSG_HELLO] = 7,     [VNET_MSG_WELCOME] = 6, [VNET_MSG_SNAPSHOT] = 3,
    [VNET_MSG_DELTA] = 4,     [VNET_MSG_ACK] = 2,     [VNET_MSG_ENDPOINT] = 2,
    [VNET_MSG_KEEPALIVE] = 1, [VNET_MSG_ERROR] = 3,   [VNET_MSG_REQUEST] = 15,
    [VNET_MSG_REPLY] = 9,     [VNET_MSG_REPORT] = 2,
};
#define MSG_TYPE_MAX VNET_MSG_REPORT

#define NETWORK_FIELDS    9
#define NODE_FIELDS       10
#define CHANGE_FIELDS     4
#define STATUS_FIELDS     8
#define REPORT_FIELDS     6
#define PEER_FIELDS       9
#define SUBSCRIBER_FIELDS 4

#define REQ_HAS_ALL 0x3ffu

/* ---- names ---- */

static const char *const type_names[] = {
    [VNET_MSG_HELLO] = "hello",
    [VNET_MSG_WELCOME] = "welcome",
    [VNET_MSG_SNAPSHOT] = "snapshot",
    [VNET_MSG_DELTA] = "delta",
    [VNET_MSG_ACK] = "ack",
    [VNET_MSG_ENDPOINT] = "endpoint",
    [VNET_MSG_KEEPALIVE] = "keepalive",
    [VNET_MSG_ERROR] = "error",
    [VNET_MSG_REQUEST] = "request",
    [VNET_MSG_REPLY] = "reply",
    [VNET_MSG_REPORT] = "report",
};

static const char *const op_names[] = {
    [VNET_REQ_NETWORK_CREATE] = "network.create",
    [VNET_REQ_NETWORK_LIST] = "network.list",
    [VNET_REQ_NETWORK_SHOW] = "network.show",
    [VNET_REQ_NETWORK_DELETE] = "network.delete",
    [VNET_REQ_NETWORK_STATUS] = "network.status",
    [VNET_REQ_NODE_ADD] = "node.add",
    [VNET_REQ_NODE_LIST] = "node.list",
    [VNET_REQ_NODE_SHOW] = "node.show",
    [VNET_REQ_NODE_MOVE] = "node.move",
    [VNET_REQ_NODE_REMOVE] = "node.remove",
    [VNET_REQ_SUBSCRIBER_CREATE] = "subscriber.create",
    [VNET_REQ_SUBSCRIBER_LIST] = "subscriber.list",
    [VNET_REQ_SUBSCRIBER_DELETE] = "subscriber.delete",
    [VNET_REQ_SUBSCRIBER_TOKEN] = "subscriber.token",
    [VNET_REQ_NODE_REVOKE] = "node.revoke",
};
#define REQ_OP_MAX VNET_REQ_NODE_REVOKE

const char *vnet_msg_type_name(enum vnet_msg_type t)
{
    if ((unsigned)t < 1 || (unsigned)t > MSG_TYPE_MAX)
        return "unknown";
    return type_names[t];
}

const char *vnet_req_op_name(enum vnet_req_op op)
{
    if ((unsigned)op < 1 || (unsigned)op > REQ_OP_MAX)
        return "unknown";
    return op_names[op];
}

int vnet_req_op_parse(const char *s, enum vnet_req_op *out)
{
    if (!s || !out)
        return VNET_EINVAL;
    for (unsigned i = 1; i <= REQ_OP_MAX; i++) {
        if (strcmp(s, op_names[i]) == 0) {
            *out = (enum vnet_req_op)i;
            return 0;
        }
    }
    return VNET_EINVAL;
}

/* Names travel as 0..63 bytes of visible ASCII (0x21..0x7e); the stricter character set of
 * model.h is the receiver's business, so that it can answer with an error rather than a
 * closed connection. */
static bool name_byte_ok(uint8_t c)
{
    return c > 0x20 && c < 0x7f;
}

/* ---- message ownership ---- */

void vnet_msg_free(struct vnet_msg *m)
{
    if (!m)
        return;
    switch (m->type) {
    case VNET_MSG_SNAPSHOT:
        free(m->u.snapshot.nodes);
        break;
    case VNET_MSG_DELTA:
        free(m->u.delta.changes);
        break;
    case VNET_MSG_REPLY:
        free(m->u.reply.networks);
        free(m->u.reply.nodes);
        for (uint32_t i = 0; m->u.reply.status && i < m->u.reply.nstatus; i++)
            vnet_report_free(&m->u.reply.status[i].report);
        free(m->u.reply.status);
        free(m->u.reply.subscribers);
        break;
    case VNET_MSG_REPORT:
        free(m->u.report.body);
        break;
    default:
        break;
    }
    memset(m, 0, sizeof(*m));
}

/* ---- output buffer and encoder ---- */

void vnet_buf_free(struct vnet_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

struct enc {
    struct vnet_buf *b;
    size_t start; /* where this frame's length prefix is */
    int err;
};

static uint8_t *enc_grow(struct enc *e, size_t n)
{
    struct vnet_buf *b = e->b;
    if (e->err)
        return NULL;
    /* A frame over the limit fails here, before the buffer grows much past it. */
    if (b->len - e->start + n > (size_t)VNET_FRAME_MAX + 4) {
        e->err = VNET_EMSGSIZE;
        return NULL;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        e->err = VNET_ENOMEM;
        return NULL;
    }
    b->data = p;
    b->cap = cap;
    p += b->len;
    b->len += n;
    return p;
}

static inline uint8_t *enc_space(struct enc *e, size_t n)
{
    struct vnet_buf *b = e->b;
    if (__builtin_expect(e->err == 0 && b->cap - b->len >= n, 1)) {
        uint8_t *p = b->data + b->len;
        b->len += n;
        return p;
    }
    return enc_grow(e, n);
}

static void enc_inval(struct enc *e)
{
    if (!e->err)
        e->err = VNET_EINVAL;
}

static inline void put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* A type byte followed by an n-byte big-endian value. */
static inline void put_tagged(struct enc *e, uint8_t tag, uint64_t v, unsigned n)
{
    uint8_t *p = enc_space(e, 1 + n);
    if (!p)
        return;
    p[0] = tag;
    put_be(p + 1, v, n);
}

static inline void put_byte(struct enc *e, uint8_t c)
{
    uint8_t *p = enc_space(e, 1);
    if (p)
        *p = c;
}

static void put_uint(struct enc *e, uint64_t v)
{
    if (v < 0x80)
        put_byte(e, (uint8_t)v);
    else if (v <= 0xff)
        put_tagged(e, 0xcc, v, 1);
    else if (v <= 0xffff)
        put_tagged(e, 0xcd, v, 2);
    else if (v <= 0xffffffffu)
        put_tagged(e, 0xce, v, 4);
    else
        put_tagged(e, 0xcf, v, 8);
}

static void put_int(struct enc *e, int64_t v)
{
    if (v >= 0)
        put_uint(e, (uint64_t)v);
    else if (v >= -32)
        put_byte(e, (uint8_t)(0xe0 | (v & 0x1f)));
    else if (v >= INT8_MIN)
        put_tagged(e, 0xd0, (uint64_t)v, 1);
    else if (v >= INT16_MIN)
        put_tagged(e, 0xd1, (uint64_t)v, 2);
    else if (v >= INT32_MIN)
        put_tagged(e, 0xd2, (uint64_t)v, 4);
    else
        put_tagged(e, 0xd3, (uint64_t)v, 8);
}

static void put_nil(struct enc *e)
{
    put_byte(e, 0xc0);
}

static void put_array(struct enc *e, uint32_t n)
{
    if (n < 16)
        put_byte(e, (uint8_t)(0x90 | n));
    else if (n <= 0xffff)
        put_tagged(e, 0xdc, n, 2);
    else
        put_tagged(e, 0xdd, n, 4);
}

static void put_raw(struct enc *e, const void *data, size_t n)
{
    if (n == 0)
        return;
    uint8_t *p = enc_space(e, n);
    if (p)
        memcpy(p, data, n);
}

static void put_str(struct enc *e, const char *s, size_t n)
{
    if (n < 32)
        put_byte(e, (uint8_t)(0xa0 | n));
    else if (n <= 0xff)
        put_tagged(e, 0xd9, n, 1);
    else
        put_tagged(e, 0xda, n, 2); /* strings here are at most 255 bytes */
    put_raw(e, s, n);
}

static void put_bin(struct enc *e, const uint8_t *b, size_t n)
{
    if (n <= 0xff)
        put_tagged(e, 0xc4, n, 1);
    else
        put_tagged(e, 0xc5, n, 2); /* bins here are at most 512 bytes */
    put_raw(e, b, n);
}

static void put_name(struct enc *e, const char *s)
{
    size_t n = strnlen(s, VNET_NAME_MAX);
    if (n >= VNET_NAME_MAX) {
        enc_inval(e);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!name_byte_ok((uint8_t)s[i])) {
            enc_inval(e);
            return;
        }
    put_str(e, s, n);
}

static void put_text(struct enc *e, const char *s)
{
    size_t n = strnlen(s, VNET_MSG_TEXT_MAX);
    if (n >= VNET_MSG_TEXT_MAX) {
        enc_inval(e);
        return;
    }
    put_str(e, s, n);
}

/* An address: bin 4 or bin 16, or nil for family 0 when @optional. @want: 0 (either family)
 * or the one family allowed. */
static void put_ip(struct enc *e, const struct vnet_ip *ip, int want, bool optional)
{
    if (ip->family == VNET_AF_NONE && optional) {
        put_nil(e);
        return;
    }
    if (want && ip->family != want) {
        enc_inval(e);
        return;
    }
    if (ip->family == VNET_AF_INET)
        put_bin(e, ip->addr, 4);
    else if (ip->family == VNET_AF_INET6)
        put_bin(e, ip->addr, 16);
    else
        enc_inval(e);
}

/* [ip, len], or nil for family 0. */
static void put_prefix(struct enc *e, const struct vnet_prefix *p, int want)
{
    if (p->ip.family == VNET_AF_NONE) {
        put_nil(e);
        return;
    }
    if (p->len > (p->ip.family == VNET_AF_INET ? 32 : 128)) {
        enc_inval(e);
        return;
    }
    put_array(e, 2);
    put_ip(e, &p->ip, want, false);
    put_uint(e, p->len);
}

/* [ip, port] with port 1..65535, or nil for family 0 when @optional. */
static void put_endpoint(struct enc *e, const struct vnet_endpoint *ep, bool optional)
{
    if (ep->ip.family == VNET_AF_NONE && optional) {
        put_nil(e);
        return;
    }
    if (ep->port == 0) {
        enc_inval(e);
        return;
    }
    put_array(e, 2);
    put_ip(e, &ep->ip, 0, false);
    put_uint(e, ep->port);
}

static void put_network(struct enc *e, const struct vnet_network *n)
{
    if (n->vni > VNET_VNI_MAX) {
        enc_inval(e);
        return;
    }
    put_array(e, NETWORK_FIELDS);
    put_uint(e, n->id);
    put_uint(e, n->subscriber_id);
    put_name(e, n->name);
    put_uint(e, n->vni);
    put_prefix(e, &n->subnet4, VNET_AF_INET);
    put_prefix(e, &n->subnet6, VNET_AF_INET6);
    put_uint(e, n->mtu);
    put_uint(e, n->revision);
    put_uint(e, n->mode);
}

static void put_node(struct enc *e, const struct vnet_node_info *n)
{
    if ((unsigned)n->state > VNET_NODE_REMOVED) {
        enc_inval(e);
        return;
    }
    put_array(e, NODE_FIELDS + (n->has_dp_nonce ? 1 : 0)); /* the nonce: optional, last */
    put_uint(e, n->id);
    put_uint(e, n->network_id);
    put_name(e, n->name);
    if (n->has_pubkey)
        put_bin(e, n->pubkey, VNET_PUBKEY_LEN);
    else
        put_nil(e);
    put_bin(e, n->mac.b, 6);
    put_array(e, VNET_NODE_IPS);
    for (int i = 0; i < VNET_NODE_IPS; i++)
        put_ip(e, &n->ips[i], 0, true);
    put_endpoint(e, &n->phys, true);
    put_endpoint(e, &n->observed, true);
    put_uint(e, (uint64_t)n->state);
    put_uint(e, n->revision);
    if (n->has_dp_nonce)
        put_bin(e, n->dp_nonce, VNET_DP_NONCE_LEN);
}

static void put_change(struct enc *e, const struct vnet_change *c)
{
    put_array(e, CHANGE_FIELDS);
    put_uint(e, (uint64_t)c->op);
    put_uint(e, c->revision);
    put_uint(e, c->network_id);
    if (c->op == VNET_CHANGE_NODE_PUT || c->op == VNET_CHANGE_NODE_DEL)
        put_node(e, &c->node);
    else if (c->op == VNET_CHANGE_NET_PUT)
        put_nil(e);
    else
        enc_inval(e);
}

/* An array of @n elements at @p of @size bytes each: checked, then each put with @fn. */
#define PUT_ARRAY(e, p, n, fn)                                                                     \
    do {                                                                                           \
        if ((n) && !(p)) {                                                                         \
            enc_inval(e);                                                                          \
            break;                                                                                 \
        }                                                                                          \
        put_array(e, (n));                                                                         \
        for (uint32_t i_ = 0; i_ < (n) && !(e)->err; i_++)                                         \
            fn(e, &(p)[i_]);                                                                       \
    } while (0)

static void put_counters(struct enc *e, const struct vnet_report_counters *c)
{
    put_array(e, 4);
    put_uint(e, c->rx_packets);
    put_uint(e, c->rx_bytes);
    put_uint(e, c->tx_packets);
    put_uint(e, c->tx_bytes);
}

static void put_peer(struct enc *e, const struct vnet_report_peer *p)
{
    if (p->reach > VNET_REACH_DIRECT) {
        enc_inval(e);
        return;
    }
    put_array(e, PEER_FIELDS);
    put_uint(e, p->node_id);
    put_endpoint(e, &p->ep, false);
    put_counters(e, &p->c);
    if (p->has_last_rx)
        put_uint(e, p->last_rx_ms);
    else
        put_nil(e);
    put_uint(e, p->reach);
    if (p->has_rtt)
        put_uint(e, p->rtt_us);
    else
        put_nil(e);
}

/* [virt, under, drops, [[reason, count], ...] (non-zero counts, by reason), table_size,
 * peers]. */
static void put_report(struct enc *e, const struct vnet_report *r)
{
    uint32_t nreasons = 0;
    for (unsigned i = 0; i < VNET_REPORT_DROPS; i++)
        nreasons += r->drop_reasons[i] != 0;
    put_array(e, REPORT_FIELDS);
    put_counters(e, &r->virt);
    put_counters(e, &r->under);
    put_uint(e, r->drops);
    put_array(e, nreasons);
    for (unsigned i = 0; i < VNET_REPORT_DROPS; i++) {
        if (r->drop_reasons[i]) {
            put_array(e, 2);
            put_uint(e, i);
            put_uint(e, r->drop_reasons[i]);
        }
    }
    put_uint(e, r->table_size);
    PUT_ARRAY(e, r->peers, r->npeers, put_peer);
}

static void put_status(struct enc *e, const struct vnet_node_status *s)
{
    put_array(e, STATUS_FIELDS);
    put_node(e, &s->node);
    put_uint(e, s->acked);
    put_byte(e, s->connected ? 0xc3 : 0xc2);
    put_uint(e, s->connected_since_ms);
    put_uint(e, s->last_seen_ms);
    put_endpoint(e, &s->session_from, true);
    if (s->has_report) {
        put_uint(e, s->report_age_ms);
        put_report(e, &s->report);
    } else {
        put_nil(e);
        put_nil(e);
    }
}

static void put_subscriber(struct enc *e, const struct vnet_subscriber *s)
{
    put_array(e, SUBSCRIBER_FIELDS);
    put_uint(e, s->id);
    put_name(e, s->name);
    put_byte(e, s->admin ? 0xc3 : 0xc2);
    put_byte(e, s->has_token ? 0xc3 : 0xc2);
}

static void put_auth(struct enc *e, const uint8_t *auth, uint32_t len)
{
    if (len > VNET_AUTH_MAX) {
        enc_inval(e);
        return;
    }
    put_bin(e, auth, len);
}

static void put_request(struct enc *e, const struct vnet_msg_request *r)
{
    if ((unsigned)r->op < 1 || (unsigned)r->op > REQ_OP_MAX || (r->has & ~REQ_HAS_ALL)) {
        enc_inval(e);
        return;
    }
    put_uint(e, r->id);
    put_uint(e, (uint64_t)r->op);
    put_name(e, r->network);
    put_name(e, r->node);
    if (r->has & VNET_REQ_HAS_VNI) {
        if (r->vni > VNET_VNI_MAX) {
            enc_inval(e);
            return;
        }
        put_uint(e, r->vni);
    } else {
        put_nil(e);
    }
    if ((r->has & VNET_REQ_HAS_SUBNET4) && r->subnet4.ip.family != VNET_AF_INET) {
        enc_inval(e);
        return;
    }
    if ((r->has & VNET_REQ_HAS_SUBNET6) && r->subnet6.ip.family != VNET_AF_INET6) {
        enc_inval(e);
        return;
    }
    if (r->has & VNET_REQ_HAS_SUBNET4)
        put_prefix(e, &r->subnet4, VNET_AF_INET);
    else
        put_nil(e);
    if (r->has & VNET_REQ_HAS_SUBNET6)
        put_prefix(e, &r->subnet6, VNET_AF_INET6);
    else
        put_nil(e);
    if (r->has & VNET_REQ_HAS_MTU)
        put_uint(e, r->mtu);
    else
        put_nil(e);
    if (r->has & VNET_REQ_HAS_MAC)
        put_bin(e, r->mac.b, 6);
    else
        put_nil(e);
    if (r->has & VNET_REQ_HAS_IP4)
        put_ip(e, &r->ip4, VNET_AF_INET, false);
    else
        put_nil(e);
    if (r->has & VNET_REQ_HAS_IP6)
        put_ip(e, &r->ip6, VNET_AF_INET6, false);
    else
        put_nil(e);
    if (r->has & VNET_REQ_HAS_PHYS)
        put_endpoint(e, &r->phys, false);
    else
        put_nil(e);
    if (r->has & VNET_REQ_HAS_PUBKEY)
        put_bin(e, r->pubkey, VNET_PUBKEY_LEN);
    else
        put_nil(e);
    if (r->has & VNET_REQ_HAS_MODE) {
        if (r->mode > 1) {
            enc_inval(e);
            return;
        }
        put_uint(e, r->mode);
    } else {
        put_nil(e);
    }
}

static void put_body(struct enc *e, const struct vnet_msg *m)
{
    unsigned t = (unsigned)m->type;
    if (t < 1 || t > MSG_TYPE_MAX) {
        enc_inval(e);
        return;
    }
    bool endpoint_nonce = m->type == VNET_MSG_ENDPOINT && m->u.endpoint.has_nonce;
    put_array(e, msg_fields[t] + (endpoint_nonce ? 1u : 0u)); /* the nonce: optional, last */
    put_uint(e, t);
    switch (m->type) {
    case VNET_MSG_HELLO: {
        const struct vnet_msg_hello *h = &m->u.hello;
        if (h->role != VNET_ROLE_NODE && h->role != VNET_ROLE_CLIENT) {
            enc_inval(e);
            return;
        }
        put_uint(e, h->version);
        put_uint(e, (uint64_t)h->role);
        put_name(e, h->network);
        put_name(e, h->node);
        put_uint(e, h->revision);
        put_auth(e, h->auth, h->auth_len);
        break;
    }
    case VNET_MSG_WELCOME: {
        const struct vnet_msg_welcome *w = &m->u.welcome;
        put_uint(e, w->version);
        put_network(e, &w->network);
        put_node(e, &w->node);
        put_auth(e, w->auth, w->auth_len);
        put_uint(e, w->report_ms);
        break;
    }
    case VNET_MSG_SNAPSHOT: {
        const struct vnet_msg_snapshot *s = &m->u.snapshot;
        if ((uint64_t)s->nnodes * MIN_NODE_BYTES > VNET_FRAME_MAX) {
            e->err = VNET_EMSGSIZE;
            return;
        }
        put_network(e, &s->network);
        PUT_ARRAY(e, s->nodes, s->nnodes, put_node);
        break;
    }
    case VNET_MSG_DELTA: {
        const struct vnet_msg_delta *d = &m->u.delta;
        if ((uint64_t)d->nchanges * MIN_CHANGE_BYTES > VNET_FRAME_MAX) {
            e->err = VNET_EMSGSIZE;
            return;
        }
        put_uint(e, d->from);
        put_uint(e, d->to);
        PUT_ARRAY(e, d->changes, d->nchanges, put_change);
        break;
    }
    case VNET_MSG_ACK:
        put_uint(e, m->u.ack.revision);
        break;
    case VNET_MSG_ENDPOINT:
        put_endpoint(e, &m->u.endpoint.ep, false);
        if (endpoint_nonce)
            put_bin(e, m->u.endpoint.nonce, VNET_DP_NONCE_LEN);
        break;
    case VNET_MSG_KEEPALIVE:
        break;
    case VNET_MSG_ERROR:
        put_int(e, m->u.error.code);
        put_text(e, m->u.error.text);
        break;
    case VNET_MSG_REQUEST:
        put_request(e, &m->u.request);
        break;
    case VNET_MSG_REPLY: {
        const struct vnet_msg_reply *r = &m->u.reply;
        if ((uint64_t)r->nnetworks * MIN_NETWORK_BYTES + (uint64_t)r->nnodes * MIN_NODE_BYTES +
                (uint64_t)r->nstatus * MIN_STATUS_BYTES +
                (uint64_t)r->nsubscribers * MIN_SUBSCRIBER_BYTES >
            VNET_FRAME_MAX) {
            e->err = VNET_EMSGSIZE;
            return;
        }
        put_uint(e, r->id);
        put_int(e, r->code);
        put_text(e, r->text);
        PUT_ARRAY(e, r->networks, r->nnetworks, put_network);
        PUT_ARRAY(e, r->nodes, r->nnodes, put_node);
        PUT_ARRAY(e, r->status, r->nstatus, put_status);
        put_text(e, r->token);
        PUT_ARRAY(e, r->subscribers, r->nsubscribers, put_subscriber);
        break;
    }
    case VNET_MSG_REPORT:
        if (m->u.report.len > VNET_REPORT_MAX || (m->u.report.len && !m->u.report.body)) {
            enc_inval(e);
            return;
        }
        put_bin(e, m->u.report.body, m->u.report.len);
        break;
    }
}

int vnet_msg_encode(const struct vnet_msg *m, struct vnet_buf *out)
{
    if (!m || !out || out->len > out->cap)
        return VNET_EINVAL;
    struct enc e = {.b = out, .start = out->len, .err = 0};
    enc_space(&e, 4); /* the length, filled in below */
    put_body(&e, m);
    if (!e.err) {
        size_t body = out->len - e.start - 4;
        if (body > VNET_FRAME_MAX)
            e.err = VNET_EMSGSIZE;
        else
            put_be(out->data + e.start, body, 4);
    }
    if (e.err) {
        out->len = e.start; /* no partial frame */
        return e.err;
    }
    return 0;
}

/* ---- decoder ---- */

struct dec {
    const uint8_t *p, *end;
    const char *what; /* the field being read */
    long idx;         /* index in the innermost array of elements, -1: none */
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int dec_fail(struct dec *d, const char *fmt, ...)
{
    if (d->err && d->errlen) {
        int n;
        if (d->idx >= 0)
            n = snprintf(d->err, d->errlen, "%s [element %ld]: ", d->what, d->idx);
        else
            n = snprintf(d->err, d->errlen, "%s: ", d->what);
        if (n >= 0 && (size_t)n < d->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return VNET_EPROTO;
}

static inline size_t dec_avail(const struct dec *d)
{
    return (size_t)(d->end - d->p);
}

static inline uint64_t get_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static int dec_type_error(struct dec *d, const char *want)
{
    if (d->p >= d->end)
        return dec_fail(d, "truncated: expected %s", want);
    return dec_fail(d, "expected %s, got type byte 0x%02x", want, *d->p);
}

/* Reads the n-byte length or value after a type byte. */
static inline int dec_fixed(struct dec *d, unsigned n, uint64_t *v)
{
    if (dec_avail(d) < 1 + (size_t)n)
        return dec_fail(d, "truncated");
    *v = get_be(d->p + 1, n);
    d->p += 1 + n;
    return 0;
}

/* Any msgpack integer. *neg tells whether *v holds a negative int64 (two's complement). */
static int dec_int(struct dec *d, bool *neg, uint64_t *v)
{
    if (d->p >= d->end)
        return dec_type_error(d, "integer");
    uint8_t t = *d->p;
    if (t <= 0x7f || t >= 0xe0) {
        d->p++;
        *neg = t >= 0xe0;
        *v = *neg ? (uint64_t)(int64_t)(int8_t)t : t;
        return 0;
    }
    unsigned n;
    bool sgn = t >= 0xd0;
    switch (t) {
    case 0xcc:
    case 0xd0:
        n = 1;
        break;
    case 0xcd:
    case 0xd1:
        n = 2;
        break;
    case 0xce:
    case 0xd2:
        n = 4;
        break;
    case 0xcf:
    case 0xd3:
        n = 8;
        break;
    default:
        return dec_type_error(d, "integer");
    }
    uint64_t x = 0;
    if (dec_fixed(d, n, &x))
        return VNET_EPROTO;
    if (sgn) {
        int64_t s = n == 1 ? (int8_t)x : n == 2 ? (int16_t)x : n == 4 ? (int32_t)x : (int64_t)x;
        *neg = s < 0;
        *v = (uint64_t)s;
    } else {
        *neg = false;
        *v = x;
    }
    return 0;
}

static int dec_uint(struct dec *d, uint64_t max, uint64_t *out)
{
    bool neg = false;
    uint64_t v = 0;
    if (dec_int(d, &neg, &v))
        return VNET_EPROTO;
    if (neg)
        return dec_fail(d, "negative value %lld", (long long)(int64_t)v);
    if (v > max)
        return dec_fail(d, "value %llu over the limit %llu", (unsigned long long)v,
                        (unsigned long long)max);
    *out = v;
    return 0;
}

static int dec_u64(struct dec *d, const char *what, uint64_t *out)
{
    d->what = what;
    return dec_uint(d, UINT64_MAX, out);
}

static int dec_u32(struct dec *d, const char *what, uint32_t *out)
{
    uint64_t v = 0;
    d->what = what;
    if (dec_uint(d, UINT32_MAX, &v))
        return VNET_EPROTO;
    *out = (uint32_t)v;
    return 0;
}

static int dec_i32(struct dec *d, const char *what, int32_t *out)
{
    bool neg = false;
    uint64_t v = 0;
    d->what = what;
    if (dec_int(d, &neg, &v))
        return VNET_EPROTO;
    if (neg ? (int64_t)v < INT32_MIN : v > INT32_MAX)
        return dec_fail(d, "value out of the int32 range");
    *out = (int32_t)(int64_t)v;
    return 0;
}

static bool dec_nil(struct dec *d)
{
    if (d->p < d->end && *d->p == 0xc0) {
        d->p++;
        return true;
    }
    return false;
}

static int dec_bool(struct dec *d, const char *what, uint8_t *out)
{
    d->what = what;
    if (d->p < d->end && (*d->p == 0xc2 || *d->p == 0xc3)) {
        *out = *d->p++ == 0xc3;
        return 0;
    }
    return dec_type_error(d, "bool");
}

static int dec_array_hdr(struct dec *d, uint32_t *n)
{
    if (d->p >= d->end)
        return dec_type_error(d, "array");
    uint8_t t = *d->p;
    uint64_t v = 0;
    if ((t & 0xf0) == 0x90) {
        d->p++;
        *n = t & 0x0f;
        return 0;
    }
    if (t == 0xdc || t == 0xdd) {
        if (dec_fixed(d, t == 0xdc ? 2 : 4, &v))
            return VNET_EPROTO;
        *n = (uint32_t)v;
        return 0;
    }
    return dec_type_error(d, "array");
}

/* An array of exactly @n elements. */
static int dec_array(struct dec *d, const char *what, uint32_t n)
{
    uint32_t got = 0;
    d->what = what;
    if (dec_array_hdr(d, &got))
        return VNET_EPROTO;
    if (got != n)
        return dec_fail(d, "array of %u elements, expected %u", got, n);
    return 0;
}

/* An array header whose count must fit the rest of the frame at @min bytes per element. */
static int dec_count(struct dec *d, const char *what, size_t min, uint32_t *n)
{
    d->what = what;
    if (dec_array_hdr(d, n))
        return VNET_EPROTO;
    if (*n > dec_avail(d) / min)
        return dec_fail(d, "%u elements cannot fit in the %zu bytes left", *n, dec_avail(d));
    return 0;
}

/* str (@is_str) or bin: its bytes, checked against the frame. */
static int dec_raw(struct dec *d, bool is_str, const uint8_t **data, size_t *n)
{
    if (d->p >= d->end)
        return dec_type_error(d, is_str ? "str" : "bin");
    uint8_t t = *d->p;
    uint64_t len = 0;
    if (is_str && (t & 0xe0) == 0xa0) {
        d->p++;
        len = t & 0x1f;
    } else if (t == (is_str ? 0xd9 : 0xc4)) {
        if (dec_fixed(d, 1, &len))
            return VNET_EPROTO;
    } else if (t == (is_str ? 0xda : 0xc5)) {
        if (dec_fixed(d, 2, &len))
            return VNET_EPROTO;
    } else if (t == (is_str ? 0xdb : 0xc6)) {
        if (dec_fixed(d, 4, &len))
            return VNET_EPROTO;
    } else {
        return dec_type_error(d, is_str ? "str" : "bin");
    }
    if (len > dec_avail(d))
        return dec_fail(d, "truncated: %s of %llu bytes, %zu left", is_str ? "str" : "bin",
                        (unsigned long long)len, dec_avail(d));
    *data = d->p;
    *n = (size_t)len;
    d->p += len;
    return 0;
}

static int dec_name(struct dec *d, const char *what, char out[VNET_NAME_MAX])
{
    const uint8_t *s = NULL;
    size_t n = 0;
    d->what = what;
    if (dec_raw(d, true, &s, &n))
        return VNET_EPROTO;
    if (n >= VNET_NAME_MAX)
        return dec_fail(d, "name of %zu bytes, at most %d allowed", n, VNET_NAME_MAX - 1);
    for (size_t i = 0; i < n; i++)
        if (!name_byte_ok(s[i]))
            return dec_fail(d, "byte 0x%02x at %zu is not allowed in a name", s[i], i);
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static int dec_text(struct dec *d, const char *what, char out[VNET_MSG_TEXT_MAX])
{
    const uint8_t *s = NULL;
    size_t n = 0;
    d->what = what;
    if (dec_raw(d, true, &s, &n))
        return VNET_EPROTO;
    if (n >= VNET_MSG_TEXT_MAX)
        return dec_fail(d, "text of %zu bytes, at most %d allowed", n, VNET_MSG_TEXT_MAX - 1);
    if (memchr(s, 0, n))
        return dec_fail(d, "NUL byte in text");
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* bin of exactly @len bytes into @out. */
static int dec_bin_exact(struct dec *d, const char *what, uint8_t *out, size_t len)
{
    const uint8_t *b = NULL;
    size_t n = 0;
    d->what = what;
    if (dec_raw(d, false, &b, &n))
        return VNET_EPROTO;
    if (n != len)
        return dec_fail(d, "bin of %zu bytes, expected %zu", n, len);
    memcpy(out, b, n);
    return 0;
}

/* bin 4 or bin 16 (@want restricts it to one family); nil allowed when @optional. */
static int dec_ip(struct dec *d, const char *what, struct vnet_ip *ip, int want, bool optional)
{
    const uint8_t *b = NULL;
    size_t n = 0;
    d->what = what;
    if (optional && dec_nil(d))
        return 0;
    if (dec_raw(d, false, &b, &n))
        return VNET_EPROTO;
    if (!(n == 4 && want != VNET_AF_INET6) && !(n == 16 && want != VNET_AF_INET))
        return dec_fail(d, "address of %zu bytes, expected %s", n,
                        want == VNET_AF_INET    ? "4"
                        : want == VNET_AF_INET6 ? "16"
                                                : "4 or 16");
    ip->family = n == 4 ? VNET_AF_INET : VNET_AF_INET6;
    memcpy(ip->addr, b, n);
    return 0;
}

static int dec_prefix(struct dec *d, const char *what, struct vnet_prefix *p, int want)
{
    uint64_t len = 0;
    d->what = what;
    if (dec_nil(d))
        return 0;
    if (dec_array(d, what, 2) || dec_ip(d, what, &p->ip, want, false))
        return VNET_EPROTO;
    d->what = what;
    if (dec_uint(d, p->ip.family == VNET_AF_INET ? 32 : 128, &len))
        return VNET_EPROTO;
    p->len = (uint8_t)len;
    return 0;
}

static int dec_endpoint(struct dec *d, const char *what, struct vnet_endpoint *ep, bool optional)
{
    uint64_t port = 0;
    d->what = what;
    if (optional && dec_nil(d))
        return 0;
    if (dec_array(d, what, 2) || dec_ip(d, what, &ep->ip, 0, false))
        return VNET_EPROTO;
    d->what = what;
    if (dec_uint(d, 65535, &port))
        return VNET_EPROTO;
    if (port == 0)
        return dec_fail(d, "port 0");
    ep->port = (uint16_t)port;
    return 0;
}

static int dec_network(struct dec *d, struct vnet_network *n)
{
    uint64_t v = 0;
    if (dec_array(d, "network", NETWORK_FIELDS) || dec_u64(d, "network.id", &n->id) ||
        dec_u64(d, "network.subscriber_id", &n->subscriber_id) ||
        dec_name(d, "network.name", n->name))
        return VNET_EPROTO;
    d->what = "network.vni";
    if (dec_uint(d, VNET_VNI_MAX, &v))
        return VNET_EPROTO;
    n->vni = (uint32_t)v;
    if (dec_prefix(d, "network.subnet4", &n->subnet4, VNET_AF_INET) ||
        dec_prefix(d, "network.subnet6", &n->subnet6, VNET_AF_INET6) ||
        dec_u32(d, "network.mtu", &n->mtu) || dec_u64(d, "network.revision", &n->revision))
        return VNET_EPROTO;
    d->what = "network.mode";
    if (dec_uint(d, 1, &v))
        return VNET_EPROTO;
    n->mode = (uint8_t)v;
    return 0;
}

static int dec_node(struct dec *d, struct vnet_node_info *n)
{
    uint64_t v = 0;
    uint32_t fields = 0;
    d->what = "node";
    if (dec_array_hdr(d, &fields))
        return VNET_EPROTO;
    if (fields != NODE_FIELDS && fields != NODE_FIELDS + 1) /* + 1: the data-plane nonce */
        return dec_fail(d, "array of %u elements, expected %u or %u", fields, NODE_FIELDS,
                        NODE_FIELDS + 1);
    if (dec_u64(d, "node.id", &n->id) || dec_u64(d, "node.network_id", &n->network_id) ||
        dec_name(d, "node.name", n->name))
        return VNET_EPROTO;
    d->what = "node.pubkey";
    if (!dec_nil(d)) {
        if (dec_bin_exact(d, "node.pubkey", n->pubkey, VNET_PUBKEY_LEN))
            return VNET_EPROTO;
        n->has_pubkey = true;
    }
    if (dec_bin_exact(d, "node.mac", n->mac.b, 6) || dec_array(d, "node.ips", VNET_NODE_IPS))
        return VNET_EPROTO;
    for (int i = 0; i < VNET_NODE_IPS; i++)
        if (dec_ip(d, "node.ips", &n->ips[i], 0, true))
            return VNET_EPROTO;
    if (dec_endpoint(d, "node.phys", &n->phys, true) ||
        dec_endpoint(d, "node.observed", &n->observed, true))
        return VNET_EPROTO;
    d->what = "node.state";
    if (dec_uint(d, VNET_NODE_REMOVED, &v))
        return VNET_EPROTO;
    n->state = (enum vnet_node_state)v;
    if (dec_u64(d, "node.revision", &n->revision))
        return VNET_EPROTO;
    if (fields == NODE_FIELDS)
        return 0;
    n->has_dp_nonce = true;
    return dec_bin_exact(d, "node.dp_nonce", n->dp_nonce, VNET_DP_NONCE_LEN);
}

static int dec_change(struct dec *d, struct vnet_change *c)
{
    uint64_t op = 0;
    if (dec_array(d, "change", CHANGE_FIELDS))
        return VNET_EPROTO;
    d->what = "change.op";
    if (dec_uint(d, VNET_CHANGE_NET_PUT, &op))
        return VNET_EPROTO;
    if (op < VNET_CHANGE_NODE_PUT)
        return dec_fail(d, "unknown op %llu", (unsigned long long)op);
    c->op = (enum vnet_change_op)op;
    if (dec_u64(d, "change.revision", &c->revision) ||
        dec_u64(d, "change.network_id", &c->network_id))
        return VNET_EPROTO;
    d->what = "change.node";
    if (c->op == VNET_CHANGE_NET_PUT)
        return dec_nil(d) ? 0 : dec_type_error(d, "nil (a NET_PUT carries no node)");
    return dec_node(d, &c->node);
}

/* Allocates an array of @n elements for the caller's pointer (NULL for 0). */
static int dec_alloc(size_t n, size_t size, void **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    *out = calloc(n, size);
    return *out ? 0 : VNET_ENOMEM;
}

#define DEC_ARRAY(d, what, min, ptr, count, fn)                                                    \
    do {                                                                                           \
        void *p_;                                                                                  \
        if ((rc = dec_count(d, what, min, &(count))) != 0)                                         \
            return rc;                                                                             \
        if ((rc = dec_alloc((count), sizeof(*(ptr)), &p_)) != 0) {                                 \
            (count) = 0;                                                                           \
            return rc;                                                                             \
        }                                                                                          \
        (ptr) = p_;                                                                                \
        for (uint32_t i_ = 0; i_ < (count); i_++) {                                                \
            (d)->idx = i_;                                                                         \
            if ((rc = fn(d, &(ptr)[i_])) != 0)                                                     \
                return rc;                                                                         \
        }                                                                                          \
        (d)->idx = -1;                                                                             \
    } while (0)

static int dec_counters(struct dec *d, const char *what, struct vnet_report_counters *c)
{
    if (dec_array(d, what, 4) || dec_u64(d, what, &c->rx_packets) ||
        dec_u64(d, what, &c->rx_bytes) || dec_u64(d, what, &c->tx_packets) ||
        dec_u64(d, what, &c->tx_bytes))
        return VNET_EPROTO;
    return 0;
}

static int dec_peer(struct dec *d, struct vnet_report_peer *p)
{
    uint64_t v = 0;
    if (dec_array(d, "report.peer", PEER_FIELDS) || dec_u64(d, "peer.node_id", &p->node_id) ||
        dec_endpoint(d, "peer.endpoint", &p->ep, false) || dec_counters(d, "peer.counters", &p->c))
        return VNET_EPROTO;
    d->what = "peer.last_rx_ms";
    if (!dec_nil(d)) {
        if (dec_u64(d, "peer.last_rx_ms", &p->last_rx_ms))
            return VNET_EPROTO;
        p->has_last_rx = true;
    }
    d->what = "peer.reach";
    if (dec_uint(d, VNET_REACH_DIRECT, &v))
        return VNET_EPROTO;
    p->reach = (uint8_t)v;
    d->what = "peer.rtt_us";
    if (!dec_nil(d)) {
        if (dec_u32(d, "peer.rtt_us", &p->rtt_us))
            return VNET_EPROTO;
        p->has_rtt = true;
    }
    return 0;
}

/* Fills @r; on failure the caller frees r->peers. */
static int dec_report(struct dec *d, struct vnet_report *r)
{
    uint32_t n = 0;
    uint64_t reason = 0, count = 0;
    int rc;
    long idx = d->idx;
    if (dec_array(d, "report", REPORT_FIELDS) || dec_counters(d, "report.virt", &r->virt) ||
        dec_counters(d, "report.under", &r->under) || dec_u64(d, "report.drops", &r->drops) ||
        dec_count(d, "report.drop_reasons", MIN_REASON_BYTES, &n))
        return VNET_EPROTO;
    if (n > VNET_REPORT_DROPS)
        return dec_fail(d, "%u reasons, at most %d", n, VNET_REPORT_DROPS);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t prev = reason;
        if (dec_array(d, "report.drop_reasons", 2))
            return VNET_EPROTO;
        d->what = "report.drop_reason";
        if (dec_uint(d, VNET_REPORT_DROPS - 1, &reason))
            return VNET_EPROTO;
        if (i > 0 && reason <= prev)
            return dec_fail(d, "reason %llu out of order", (unsigned long long)reason);
        if (dec_u64(d, "report.drop_count", &count))
            return VNET_EPROTO;
        if (count == 0)
            return dec_fail(d, "a zero count is not sent");
        r->drop_reasons[reason] = count;
    }
    if (dec_u64(d, "report.table_size", &r->table_size))
        return VNET_EPROTO;
    DEC_ARRAY(d, "report.peers", MIN_PEER_BYTES, r->peers, r->npeers, dec_peer);
    d->idx = idx;
    return 0;
}

static int dec_status(struct dec *d, struct vnet_node_status *s)
{
    if (dec_array(d, "status", STATUS_FIELDS) || dec_node(d, &s->node) ||
        dec_u64(d, "status.acked", &s->acked) || dec_bool(d, "status.connected", &s->connected) ||
        dec_u64(d, "status.connected_since_ms", &s->connected_since_ms) ||
        dec_u64(d, "status.last_seen_ms", &s->last_seen_ms) ||
        dec_endpoint(d, "status.session_from", &s->session_from, true))
        return VNET_EPROTO;
    d->what = "status.report_age_ms";
    if (dec_nil(d)) {
        d->what = "status.report";
        return dec_nil(d) ? 0 : dec_type_error(d, "nil (no report without its age)");
    }
    if (dec_u64(d, "status.report_age_ms", &s->report_age_ms))
        return VNET_EPROTO;
    s->has_report = true;
    return dec_report(d, &s->report);
}

static int dec_subscriber(struct dec *d, struct vnet_subscriber *s)
{
    uint8_t admin = 0, has_token = 0;
    if (dec_array(d, "subscriber", SUBSCRIBER_FIELDS) || dec_u64(d, "subscriber.id", &s->id) ||
        dec_name(d, "subscriber.name", s->name) || dec_bool(d, "subscriber.admin", &admin) ||
        dec_bool(d, "subscriber.has_token", &has_token))
        return VNET_EPROTO;
    s->admin = admin != 0;
    s->has_token = has_token != 0;
    return 0;
}

static int dec_request(struct dec *d, struct vnet_msg_request *r)
{
    uint64_t v = 0;
    if (dec_u32(d, "request.id", &r->id))
        return VNET_EPROTO;
    d->what = "request.op";
    if (dec_uint(d, REQ_OP_MAX, &v))
        return VNET_EPROTO;
    if (v < 1)
        return dec_fail(d, "unknown op 0");
    r->op = (enum vnet_req_op)v;
    if (dec_name(d, "request.network", r->network) || dec_name(d, "request.node", r->node))
        return VNET_EPROTO;
    d->what = "request.vni";
    if (!dec_nil(d)) {
        if (dec_uint(d, VNET_VNI_MAX, &v))
            return VNET_EPROTO;
        r->vni = (uint32_t)v;
        r->has |= VNET_REQ_HAS_VNI;
    }
    d->what = "request.subnet4";
    if (!dec_nil(d)) {
        if (dec_prefix(d, "request.subnet4", &r->subnet4, VNET_AF_INET))
            return VNET_EPROTO;
        r->has |= VNET_REQ_HAS_SUBNET4;
    }
    d->what = "request.subnet6";
    if (!dec_nil(d)) {
        if (dec_prefix(d, "request.subnet6", &r->subnet6, VNET_AF_INET6))
            return VNET_EPROTO;
        r->has |= VNET_REQ_HAS_SUBNET6;
    }
    d->what = "request.mtu";
    if (!dec_nil(d)) {
        if (dec_u32(d, "request.mtu", &r->mtu))
            return VNET_EPROTO;
        r->has |= VNET_REQ_HAS_MTU;
    }
    d->what = "request.mac";
    if (!dec_nil(d)) {
        if (dec_bin_exact(d, "request.mac", r->mac.b, 6))
            return VNET_EPROTO;
        r->has |= VNET_REQ_HAS_MAC;
    }
    d->what = "request.ip4";
    if (!dec_nil(d)) {
        if (dec_ip(d, "request.ip4", &r->ip4, VNET_AF_INET, false))
            return VNET_EPROTO;
        r->has |= VNET_REQ_HAS_IP4;
    }
    d->what = "request.ip6";
    if (!dec_nil(d)) {
        if (dec_ip(d, "request.ip6", &r->ip6, VNET_AF_INET6, false))
            return VNET_EPROTO;
        r->has |= VNET_REQ_HAS_IP6;
    }
    d->what = "request.phys";
    if (!dec_nil(d)) {
        if (dec_endpoint(d, "request.phys", &r->phys, false))
            return VNET_EPROTO;
        r->has |= VNET_REQ_HAS_PHYS;
    }
    d->what = "request.pubkey";
    if (!dec_nil(d)) {
        if (dec_bin_exact(d, "request.pubkey", r->pubkey, VNET_PUBKEY_LEN))
            return VNET_EPROTO;
        r->has |= VNET_REQ_HAS_PUBKEY;
    }
    d->what = "request.mode";
    if (!dec_nil(d)) {
        if (dec_uint(d, 1, &v))
            return VNET_EPROTO;
        r->mode = (uint8_t)v;
        r->has |= VNET_REQ_HAS_MODE;
    }
    return 0;
}

static int dec_auth(struct dec *d, uint8_t *auth, uint32_t *auth_len)
{
    const uint8_t *b = NULL;
    size_t n = 0;
    d->what = "auth";
    if (dec_raw(d, false, &b, &n))
        return VNET_EPROTO;
    if (n > VNET_AUTH_MAX)
        return dec_fail(d, "bin of %zu bytes, at most %d allowed", n, VNET_AUTH_MAX);
    memcpy(auth, b, n);
    *auth_len = (uint32_t)n;
    return 0;
}

/* Fills @m; on failure the caller frees what was allocated so far. */
static int dec_body(struct dec *d, struct vnet_msg *m)
{
    uint32_t n = 0;
    uint64_t t = 0;
    int rc;
    d->what = "message";
    if (dec_array_hdr(d, &n))
        return VNET_EPROTO;
    if (n == 0)
        return dec_fail(d, "empty array");
    d->what = "type";
    if (dec_uint(d, MSG_TYPE_MAX, &t))
        return VNET_EPROTO;
    if (t < 1)
        return dec_fail(d, "unknown message type 0");
    d->what = "message";
    if (n != msg_fields[t] && !(t == VNET_MSG_ENDPOINT && n == msg_fields[t] + 1u))
        return dec_fail(d, "%s: array of %u elements, expected %u",
                        vnet_msg_type_name((enum vnet_msg_type)t), n, msg_fields[t]);
    m->type = (enum vnet_msg_type)t;
    switch (m->type) {
    case VNET_MSG_HELLO: {
        struct vnet_msg_hello *h = &m->u.hello;
        uint64_t role = 0;
        if (dec_u32(d, "hello.version", &h->version))
            return VNET_EPROTO;
        d->what = "hello.role";
        if (dec_uint(d, VNET_ROLE_CLIENT, &role))
            return VNET_EPROTO;
        if (role < VNET_ROLE_NODE)
            return dec_fail(d, "unknown role 0");
        h->role = (enum vnet_role)role;
        if (dec_name(d, "hello.network", h->network) || dec_name(d, "hello.node", h->node) ||
            dec_u64(d, "hello.revision", &h->revision) || dec_auth(d, h->auth, &h->auth_len))
            return VNET_EPROTO;
        return 0;
    }
    case VNET_MSG_WELCOME: {
        struct vnet_msg_welcome *w = &m->u.welcome;
        if (dec_u32(d, "welcome.version", &w->version) || dec_network(d, &w->network) ||
            dec_node(d, &w->node) || dec_auth(d, w->auth, &w->auth_len) ||
            dec_u32(d, "welcome.report_ms", &w->report_ms))
            return VNET_EPROTO;
        return 0;
    }
    case VNET_MSG_SNAPSHOT: {
        struct vnet_msg_snapshot *s = &m->u.snapshot;
        if (dec_network(d, &s->network))
            return VNET_EPROTO;
        DEC_ARRAY(d, "snapshot.nodes", MIN_NODE_BYTES, s->nodes, s->nnodes, dec_node);
        return 0;
    }
    case VNET_MSG_DELTA: {
        struct vnet_msg_delta *dl = &m->u.delta;
        if (dec_u64(d, "delta.from", &dl->from) || dec_u64(d, "delta.to", &dl->to))
            return VNET_EPROTO;
        DEC_ARRAY(d, "delta.changes", MIN_CHANGE_BYTES, dl->changes, dl->nchanges, dec_change);
        return 0;
    }
    case VNET_MSG_ACK:
        return dec_u64(d, "ack.revision", &m->u.ack.revision);
    case VNET_MSG_ENDPOINT:
        if (dec_endpoint(d, "endpoint", &m->u.endpoint.ep, false))
            return VNET_EPROTO;
        if (n == msg_fields[t])
            return 0;
        m->u.endpoint.has_nonce = true;
        return dec_bin_exact(d, "endpoint.nonce", m->u.endpoint.nonce, VNET_DP_NONCE_LEN);
    case VNET_MSG_KEEPALIVE:
        return 0;
    case VNET_MSG_ERROR:
        if (dec_i32(d, "error.code", &m->u.error.code) ||
            dec_text(d, "error.text", m->u.error.text))
            return VNET_EPROTO;
        return 0;
    case VNET_MSG_REQUEST:
        return dec_request(d, &m->u.request);
    case VNET_MSG_REPLY: {
        struct vnet_msg_reply *r = &m->u.reply;
        if (dec_u32(d, "reply.id", &r->id) || dec_i32(d, "reply.code", &r->code) ||
            dec_text(d, "reply.text", r->text))
            return VNET_EPROTO;
        DEC_ARRAY(d, "reply.networks", MIN_NETWORK_BYTES, r->networks, r->nnetworks, dec_network);
        DEC_ARRAY(d, "reply.nodes", MIN_NODE_BYTES, r->nodes, r->nnodes, dec_node);
        DEC_ARRAY(d, "reply.status", MIN_STATUS_BYTES, r->status, r->nstatus, dec_status);
        if (dec_text(d, "reply.token", r->token))
            return VNET_EPROTO;
        DEC_ARRAY(d, "reply.subscribers", MIN_SUBSCRIBER_BYTES, r->subscribers, r->nsubscribers,
                  dec_subscriber);
        return 0;
    }
    case VNET_MSG_REPORT: {
        const uint8_t *b = NULL;
        size_t len = 0;
        d->what = "report";
        if (dec_raw(d, false, &b, &len))
            return VNET_EPROTO;
        if (len > VNET_REPORT_MAX)
            return dec_fail(d, "bin of %zu bytes, at most %d allowed", len, VNET_REPORT_MAX);
        if (len && !(m->u.report.body = malloc(len)))
            return VNET_ENOMEM;
        if (len)
            memcpy(m->u.report.body, b, len);
        m->u.report.len = (uint32_t)len;
        return 0;
    }
    }
    return dec_fail(d, "unknown message type"); /* not reached: t was range-checked */
}

int vnet_msg_decode(const uint8_t *body, size_t len, struct vnet_msg *m, char *err, size_t errlen)
{
    if (!m)
        return VNET_EINVAL;
    memset(m, 0, sizeof(*m));
    if (err && errlen)
        err[0] = '\0';
    static const uint8_t empty[1];
    if (!body && len)
        return VNET_EINVAL;
    if (!body)
        body = empty; /* no arithmetic on a null pointer */
    struct dec d = {
        .p = body, .end = body + len, .what = "message", .idx = -1, .err = err, .errlen = errlen};
    int rc = dec_body(&d, m);
    if (rc == 0 && d.p != d.end) {
        d.what = vnet_msg_type_name(m->type);
        d.idx = -1;
        rc = dec_fail(&d, "%zu trailing bytes", dec_avail(&d));
    }
    if (rc)
        vnet_msg_free(m);
    return rc;
}

/* ---- reports ---- */

int vnet_report_encode(const struct vnet_report *r, struct vnet_buf *out)
{
    if (!r || !out || out->len > out->cap)
        return VNET_EINVAL;
    struct enc e = {.b = out, .start = out->len, .err = 0};
    if ((uint64_t)r->npeers * MIN_PEER_BYTES > VNET_REPORT_MAX)
        e.err = VNET_EMSGSIZE;
    else
        put_report(&e, r);
    if (!e.err && out->len - e.start > VNET_REPORT_MAX)
        e.err = VNET_EMSGSIZE;
    if (e.err)
        out->len = e.start;
    return e.err;
}

int vnet_report_decode(const uint8_t *body, size_t len, struct vnet_report *r, char *err,
                       size_t errlen)
{
    if (!r || (!body && len))
        return VNET_EINVAL;
    memset(r, 0, sizeof(*r));
    if (err && errlen)
        err[0] = '\0';
    static const uint8_t empty[1];
    if (!body)
        body = empty;
    struct dec d = {
        .p = body, .end = body + len, .what = "report", .idx = -1, .err = err, .errlen = errlen};
    int rc = len > VNET_REPORT_MAX ? dec_fail(&d, "%zu bytes, at most %d", len, VNET_REPORT_MAX)
                                   : dec_report(&d, r);
    if (rc == 0 && d.p != d.end) {
        d.what = "report";
        d.idx = -1;
        rc = dec_fail(&d, "%zu trailing bytes", dec_avail(&d));
    }
    if (rc)
        vnet_report_free(r);
    return rc;
}

void vnet_report_free(struct vnet_report *r)
{
    if (!r)
        return;
    free(r->peers);
    memset(r, 0, sizeof(*r));
}

/* ---- frame reader ---- */

#define READER_KEEP (1u << 20) /* an idle buffer larger than this is given back */

void vnet_frame_reader_init(struct vnet_frame_reader *r, uint32_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max ? max : VNET_FRAME_MAX;
}

void vnet_frame_reader_free(struct vnet_frame_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = r->off = 0;
}

int vnet_frame_reader_feed(struct vnet_frame_reader *r, const uint8_t *data, size_t len)
{
    if (len == 0)
        return 0;
    if (!data)
        return VNET_EINVAL;
    if (r->off == r->len) {
        r->off = r->len = 0;
        if (r->cap > READER_KEEP) {
            free(r->buf);
            r->buf = NULL;
            r->cap = 0;
        }
    }
    if (r->cap - r->len < len && r->off) {
        /* Compact only when out of room, so many frames per read cost one move, not one each. */
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (r->cap - r->len < len) {
        if (len > SIZE_MAX / 2 - r->len)
            return VNET_ENOMEM;
        size_t cap = r->cap ? r->cap : 4096;
        while (cap - r->len < len)
            cap *= 2;
        uint8_t *p = realloc(r->buf, cap);
        if (!p)
            return VNET_ENOMEM;
        r->buf = p;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

int vnet_frame_reader_next(struct vnet_frame_reader *r, const uint8_t **body, size_t *len)
{
    size_t avail = r->len - r->off;
    if (avail < 4)
        return 0;
    const uint8_t *p = r->buf + r->off;
    uint32_t n = (uint32_t)get_be(p, 4);
    uint32_t max = r->max ? r->max : VNET_FRAME_MAX;
    if (n > max)
        return VNET_EMSGSIZE; /* the buffer stays as it is: every later call says the same */
    if (avail - 4 < n)
        return 0;
    *body = p + 4;
    *len = n;
    r->off += 4 + (size_t)n; /* the bytes stay where they are until the next feed */
    return 1;
}
