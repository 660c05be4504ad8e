/* The management daemon: one session with the controller on the caller's libuv loop; it turns
 * snapshots and deltas into switch-table batches. It keeps the network's nodes as it last saw
 * them, because a delta says what a node is now, and the table must lose what it was. */
#include "vec_int.h"
#include "vnet/agent.h"
#include "vnet/crypto.h"
#include "vnet/token.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/proto.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum agent_state { A_IDLE, A_CONNECTING, A_HELLO, A_UP };

struct wreq {
    uv_write_t req;
    struct vnet_buf buf;
};

struct vnet_agent {
    uv_loop_t *loop;
    char *controller, *network, *node;
    struct vnet_table *table;
    struct vnet_endpoint local;
    uint32_t keepalive_ms, backoff_min, backoff_max, backoff;
    struct vnet_agent_callbacks cb;
    void *cb_arg;

    uv_tcp_t tcp;
    bool tcp_open;
    uv_connect_t conn;
    uv_timer_t retry, keepalive;
    enum agent_state state;
    struct vnet_frame_reader rd;
    uint64_t last_rx;

    struct vnet_network net;
    struct vnet_node self;
    bool have_net;
    struct vnet_node *nodes; /* the network as last applied, self included */
    size_t nnodes, capnodes;

    bool has_key, has_join, secure;
    struct vnet_keypair key;
    uint8_t ctl_pub[VNET_KEY_LEN];
    uint8_t join_secret[VNET_JOIN_SECRET_LEN];
    struct vnet_hs hs;
    struct vnet_chan tx, rx;

    bool destroying;
    int pending_closes;
    struct vnet_agent_stats st;
    char rxbuf[65536];
};

static void start_connect(struct vnet_agent *a);
static void drop_session(struct vnet_agent *a, const char *why);

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_retry(uv_timer_t *t)
{
    start_connect(t->data);
}

/* ---- lifecycle helpers ---- */

static void maybe_free(struct vnet_agent *a)
{
    if (a->destroying && a->pending_closes == 0) {
        vnet_key_wipe(&a->key);
        sodium_memzero(a->join_secret, sizeof(a->join_secret));
        vnet_hs_wipe(&a->hs);
        vnet_chan_wipe(&a->tx);
        vnet_chan_wipe(&a->rx);
        vnet_frame_reader_free(&a->rd);
        free(a->nodes);
        free(a->controller);
        free(a->network);
        free(a->node);
        free(a);
    }
}

static void on_closed(uv_handle_t *h)
{
    struct vnet_agent *a = h->data;
    if (h == (uv_handle_t *)&a->tcp)
        a->tcp_open = false;
    a->pending_closes--;
    if (!a->destroying && h == (uv_handle_t *)&a->tcp) {
        /* reconnect after a jittered backoff */
        double jitter = 0.75 + 0.5 * ((double)randombytes_uniform(1000) / 1000.0);
        uint64_t delay = (uint64_t)(a->backoff * jitter);
        a->backoff = a->backoff * 2 > a->backoff_max ? a->backoff_max : a->backoff * 2;
        uv_timer_start(&a->retry, on_retry, delay, 0);
    }
    maybe_free(a);
}

static void close_h(struct vnet_agent *a, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    h->data = a;
    a->pending_closes++;
    uv_close(h, on_closed);
}

static void drop_session(struct vnet_agent *a, const char *why)
{
    if (a->state != A_IDLE) {
        vnet_log(VNET_LOG_WARN, "agent", "controller session down: %s", why);
        bool was_up = a->state == A_UP;
        a->state = A_IDLE;
        uv_timer_stop(&a->keepalive);
        if (was_up && a->cb.on_state)
            a->cb.on_state(a->cb_arg, 0);
    }
    if (a->tcp_open)
        close_h(a, (uv_handle_t *)&a->tcp);
}

/* ---- output ---- */

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    vnet_buf_free(&w->buf);
    free(w);
    (void)status; /* a failed write shows up as a read error too */
}

static int send_msg(struct vnet_agent *a, const struct vnet_msg *m)
{
    if (!a->tcp_open)
        return VNET_ESTATE;
    struct wreq *w = calloc(1, sizeof(*w));
    if (!w)
        return VNET_ENOMEM;
    int rc = vnet_msg_encode(m, &w->buf);
    if (!rc && a->secure) {
        /* Seal the body; the frame keeps its length prefix, now of the sealed bytes. */
        size_t body = w->buf.len - 4, sl = vnet_chan_sealed_len(&a->tx, body), outl = 0;
        uint8_t *sealed = malloc(4 + sl);
        rc = sealed ? vnet_chan_seal(&a->tx, w->buf.data + 4, body, sealed + 4, sl, &outl)
                    : VNET_ENOMEM;
        if (!rc) {
            sealed[0] = (uint8_t)(outl >> 24);
            sealed[1] = (uint8_t)(outl >> 16);
            sealed[2] = (uint8_t)(outl >> 8);
            sealed[3] = (uint8_t)outl;
            vnet_buf_free(&w->buf);
            w->buf.data = sealed;
            w->buf.len = w->buf.cap = 4 + outl;
        } else {
            free(sealed);
        }
    }
    if (rc) {
        vnet_buf_free(&w->buf);
        free(w);
        return rc;
    }
    uv_buf_t b = uv_buf_init((char *)w->buf.data, (unsigned)w->buf.len);
    rc = uv_write(&w->req, (uv_stream_t *)&a->tcp, &b, 1, on_written);
    if (rc) {
        vnet_buf_free(&w->buf);
        free(w);
        drop_session(a, uv_strerror(rc));
    }
    return rc;
}

static void send_ack(struct vnet_agent *a, uint64_t rev)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ACK;
    m.u.ack.revision = rev;
    if (send_msg(a, &m) == 0)
        a->st.acks++;
}

int vnet_agent_report_endpoint(struct vnet_agent *a, const struct vnet_endpoint *ep)
{
    a->local = *ep;
    if (a->state != A_UP)
        return 0;
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ENDPOINT;
    m.u.endpoint.ep = *ep;
    return send_msg(a, &m);
}

/* ---- translating the network into table operations ---- */

struct opvec {
    struct vnet_table_op *v;
    size_t n, cap;
};

static int op_push(struct opvec *o, const struct vnet_table_op *op)
{
    struct vnet_table_op *v = vec_room(o->v, o->n, &o->cap, sizeof(*v), 64);
    if (!v)
        return VNET_ENOMEM;
    o->v = v;
    o->v[o->n++] = *op;
    return 0;
}

/* Where frames for @n go: the endpoint configured for it, else the one it reported. */
static bool node_endpoint(const struct vnet_node *n, struct vnet_endpoint *ep)
{
    if (n->phys.ip.family && n->phys.port) {
        *ep = n->phys;
        return true;
    }
    if (n->observed.ip.family && n->observed.port) {
        *ep = n->observed;
        return true;
    }
    return false;
}

static int ops_add_node(struct vnet_agent *a, struct opvec *o, const struct vnet_node *n)
{
    struct vnet_table_op op;
    memset(&op, 0, sizeof(op));
    op.vni = a->net.vni;
    op.mac = n->mac;
    op.peer_id = (uint32_t)n->id;
    int rc = 0;
    if (n->id == a->self.id) {
        op.type = VNET_TABLE_PUT;
        op.flags = VNET_ENTRY_LOCAL;
        op.ep = a->local;
        if (op.ep.ip.family)
            rc = op_push(o, &op);
    } else if (node_endpoint(n, &op.ep)) {
        op.type = VNET_TABLE_PUT;
        op.flags = VNET_ENTRY_STATIC; /* controller-provided: never moved by learning */
        rc = op_push(o, &op);
    } else {
        op.type = VNET_TABLE_DEL; /* not reachable (yet) */
        rc = op_push(o, &op);
    }
    for (int i = 0; !rc && i < VNET_NODE_IPS; i++) {
        if (!n->ips[i].family)
            continue;
        struct vnet_table_op ip;
        memset(&ip, 0, sizeof(ip));
        ip.type = VNET_TABLE_PUT_IP;
        ip.vni = a->net.vni;
        ip.ip = n->ips[i];
        ip.mac = n->mac;
        rc = op_push(o, &ip);
    }
    return rc;
}

static int ops_del_node(struct vnet_agent *a, struct opvec *o, const struct vnet_node *old,
                        const struct vnet_node *now)
{
    int rc = 0;
    if (!now || !vnet_mac_eq(&old->mac, &now->mac)) {
        struct vnet_table_op op;
        memset(&op, 0, sizeof(op));
        op.type = VNET_TABLE_DEL;
        op.vni = a->net.vni;
        op.mac = old->mac;
        rc = op_push(o, &op);
    }
    for (int i = 0; !rc && i < VNET_NODE_IPS; i++) {
        if (!old->ips[i].family)
            continue;
        bool kept = false;
        for (int j = 0; now && j < VNET_NODE_IPS; j++)
            kept |= now->ips[j].family && vnet_ip_eq(&old->ips[i], &now->ips[j]);
        if (kept)
            continue;
        struct vnet_table_op ip;
        memset(&ip, 0, sizeof(ip));
        ip.type = VNET_TABLE_DEL_IP;
        ip.vni = a->net.vni;
        ip.ip = old->ips[i];
        rc = op_push(o, &ip);
    }
    return rc;
}

static struct vnet_node *find_node(struct vnet_agent *a, uint64_t id)
{
    for (size_t i = 0; i < a->nnodes; i++)
        if (a->nodes[i].id == id)
            return &a->nodes[i];
    return NULL;
}

static int keep_node(struct vnet_agent *a, const struct vnet_node *n)
{
    struct vnet_node *k = find_node(a, n->id);
    if (k) {
        *k = *n;
        return 0;
    }
    if (a->nnodes == a->capnodes) {
        size_t cap = a->capnodes ? a->capnodes * 2 : 64;
        struct vnet_node *v = realloc(a->nodes, cap * sizeof(*v));
        if (!v)
            return VNET_ENOMEM;
        a->nodes = v;
        a->capnodes = cap;
    }
    a->nodes[a->nnodes++] = *n;
    return 0;
}

static void forget_node(struct vnet_agent *a, uint64_t id)
{
    for (size_t i = 0; i < a->nnodes; i++) {
        if (a->nodes[i].id == id) {
            a->nodes[i] = a->nodes[--a->nnodes];
            return;
        }
    }
}

static void tell_peers(struct vnet_agent *a)
{
    if (!a->cb.on_peers)
        return;
    struct vnet_peer *v = malloc((a->nnodes ? a->nnodes : 1) * sizeof(*v));
    if (!v)
        return;
    size_t n = 0;
    for (size_t i = 0; i < a->nnodes; i++) {
        const struct vnet_node *nd = &a->nodes[i];
        struct vnet_endpoint ep;
        if (nd->id == a->self.id || !node_endpoint(nd, &ep))
            continue;
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = vnet_endpoint_eq(&v[j].ep, &ep);
        if (dup)
            continue;
        memset(&v[n], 0, sizeof(v[n]));
        v[n].ep = ep;
        v[n].id = nd->id;
        v[n].has_pubkey = nd->has_pubkey;
        memcpy(v[n].pubkey, nd->pubkey, sizeof(v[n].pubkey));
        n++;
    }
    a->cb.on_peers(a->cb_arg, v, n);
    free(v);
}

static void apply_snapshot(struct vnet_agent *a, const struct vnet_msg_snapshot *sn)
{
    struct opvec o = {0};
    struct vnet_table_op clear;
    memset(&clear, 0, sizeof(clear));
    clear.type = VNET_TABLE_CLEAR_VNI;
    clear.vni = sn->network.vni;
    int rc = op_push(&o, &clear);
    if (!rc && a->have_net && a->net.vni != sn->network.vni) {
        clear.vni = a->net.vni;
        rc = op_push(&o, &clear);
    }
    a->net = sn->network;
    a->have_net = true;
    a->nnodes = 0;
    for (uint32_t i = 0; !rc && i < sn->nnodes; i++) {
        if (sn->nodes[i].id == a->self.id)
            a->self = sn->nodes[i];
        rc = ops_add_node(a, &o, &sn->nodes[i]);
        if (!rc)
            rc = keep_node(a, &sn->nodes[i]);
    }
    if (!rc)
        rc = vnet_table_apply(a->table, o.v, o.n, sn->network.revision);
    free(o.v);
    if (rc) {
        vnet_log(VNET_LOG_ERROR, "agent", "snapshot: %s", vnet_strerror(rc));
        a->st.errors++;
        drop_session(a, "cannot apply a snapshot");
        return;
    }
    a->st.snapshots++;
    a->st.revision = sn->network.revision;
    tell_peers(a);
    send_ack(a, sn->network.revision);
}

static void apply_delta(struct vnet_agent *a, const struct vnet_msg_delta *d)
{
    if (d->from != a->st.revision) {
        /* Out of step: reconnecting with our revision gets us the right deltas. */
        drop_session(a, "delta does not follow the revision held");
        return;
    }
    struct opvec o = {0};
    int rc = 0;
    for (uint32_t i = 0; !rc && i < d->nchanges; i++) {
        const struct vnet_change *ch = &d->changes[i];
        struct vnet_node *old = find_node(a, ch->node.id);
        if (ch->op == VNET_CHANGE_NODE_PUT) {
            if (old)
                rc = ops_del_node(a, &o, old, &ch->node);
            if (!rc)
                rc = ops_add_node(a, &o, &ch->node);
            if (!rc)
                rc = keep_node(a, &ch->node);
            if (ch->node.id == a->self.id)
                a->self = ch->node;
        } else if (ch->op == VNET_CHANGE_NODE_DEL) {
            if (old) {
                rc = ops_del_node(a, &o, old, NULL);
                forget_node(a, ch->node.id);
            }
        }
        /* VNET_CHANGE_NET_PUT: the settings arrive with the next welcome. */
    }
    if (!rc)
        rc = vnet_table_apply(a->table, o.v, o.n, d->to);
    free(o.v);
    if (rc) {
        vnet_log(VNET_LOG_ERROR, "agent", "delta: %s", vnet_strerror(rc));
        a->st.errors++;
        drop_session(a, "cannot apply a delta");
        return;
    }
    a->st.deltas++;
    a->st.revision = d->to;
    tell_peers(a);
    send_ack(a, d->to);
}

/* ---- input ---- */

static void handle(struct vnet_agent *a, const struct vnet_msg *m)
{
    switch (m->type) {
    case VNET_MSG_WELCOME:
        if (a->state != A_HELLO) {
            drop_session(a, "unexpected welcome");
            return;
        }
        if (a->has_key) {
            int rc = vnet_hs_read_welcome(&a->hs, m->u.welcome.auth, m->u.welcome.auth_len);
            if (!rc)
                rc = vnet_hs_split(&a->hs, &a->tx, &a->rx);
            if (rc) {
                vnet_hs_wipe(&a->hs);
                a->st.errors++;
                drop_session(a, "the controller did not prove the pinned key (wrong "
                                "--controller-key, or an impostor)");
                return;
            }
            a->secure = true;
            if (a->has_join) { /* used: the key is registered now */
                a->has_join = false;
                sodium_memzero(a->join_secret, sizeof(a->join_secret));
            }
        }
        a->state = A_UP;
        a->backoff = a->backoff_min;
        a->st.connects++;
        if (a->have_net && a->net.vni != m->u.welcome.network.vni)
            a->st.revision = 0; /* another network: take the snapshot whole */
        a->self = m->u.welcome.node;
        if (a->cb.on_welcome)
            a->cb.on_welcome(a->cb_arg, &m->u.welcome.network, &m->u.welcome.node);
        if (!a->have_net) {
            a->net = m->u.welcome.network;
            a->have_net = true;
        }
        if (a->cb.on_state)
            a->cb.on_state(a->cb_arg, 1);
        vnet_agent_report_endpoint(a, &a->local);
        return;
    case VNET_MSG_SNAPSHOT:
        if (a->state == A_UP)
            apply_snapshot(a, &m->u.snapshot);
        return;
    case VNET_MSG_DELTA:
        if (a->state == A_UP)
            apply_delta(a, &m->u.delta);
        return;
    case VNET_MSG_KEEPALIVE: {
        /* Answer at once: the controller judges a session dead by its own interval, which may
         * be shorter than ours. */
        struct vnet_msg k;
        memset(&k, 0, sizeof(k));
        k.type = VNET_MSG_KEEPALIVE;
        send_msg(a, &k);
        return;
    }
    case VNET_MSG_ERROR: {
        char why[VNET_MSG_TEXT_MAX + 32];
        snprintf(why, sizeof(why), "controller says: %s", m->u.error.text);
        a->st.errors++;
        drop_session(a, why);
        return;
    }
    default:
        drop_session(a, "unexpected message");
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct vnet_agent *a = h->data;
    (void)suggested;
    *buf = uv_buf_init(a->rxbuf, sizeof(a->rxbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct vnet_agent *a = st->data;
    if (nread < 0) {
        drop_session(a, nread == UV_EOF ? "closed by the controller" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    a->last_rx = uv_now(a->loop);
    if (vnet_frame_reader_feed(&a->rd, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        drop_session(a, "out of memory");
        return;
    }
    while (a->state != A_IDLE) {
        const uint8_t *body;
        size_t len;
        int rc = vnet_frame_reader_next(&a->rd, &body, &len);
        if (rc == 0)
            break;
        if (rc < 0) {
            drop_session(a, "frame over the size limit");
            break;
        }
        uint8_t *plain = NULL;
        if (a->secure) {
            size_t plen = 0;
            plain = malloc(len ? len : 1);
            if (!plain || vnet_chan_open(&a->rx, body, len, plain, len, &plen) != 0) {
                free(plain);
                drop_session(a, "a frame from the controller does not authenticate");
                break;
            }
            body = plain;
            len = plen;
        }
        struct vnet_msg m;
        char err[128] = "";
        int drc = vnet_msg_decode(body, len, &m, err, sizeof(err));
        free(plain);
        if (drc != 0) {
            char why[160];
            snprintf(why, sizeof(why), "malformed message from the controller: %s", err);
            drop_session(a, why);
            break;
        }
        handle(a, &m);
        vnet_msg_free(&m);
    }
}

static void on_keepalive(uv_timer_t *t)
{
    struct vnet_agent *a = t->data;
    if (uv_now(a->loop) - a->last_rx > 3ull * a->keepalive_ms) {
        drop_session(a, "controller silent");
        return;
    }
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_KEEPALIVE;
    send_msg(a, &m);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct vnet_agent *a = req->data;
    if (a->destroying)
        return;
    if (status < 0) {
        a->state = A_IDLE;
        vnet_log(VNET_LOG_INFO, "agent", "connect %s: %s", a->controller, uv_strerror(status));
        drop_session(a, uv_strerror(status));
        return;
    }
    a->state = A_HELLO;
    a->last_rx = uv_now(a->loop);
    a->secure = false;
    vnet_chan_wipe(&a->tx);
    vnet_chan_wipe(&a->rx);
    vnet_frame_reader_free(&a->rd);
    vnet_frame_reader_init(&a->rd, VNET_FRAME_MAX + VNET_CHAN_HEADER_LEN + VNET_CHAN_OVERHEAD);
    uv_tcp_nodelay(&a->tcp, 1);
    a->tcp.data = a;
    uv_read_start((uv_stream_t *)&a->tcp, on_alloc, on_read);
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = VNET_PROTO_VERSION;
    m.u.hello.role = VNET_ROLE_NODE;
    snprintf(m.u.hello.network, sizeof(m.u.hello.network), "%s", a->network);
    snprintf(m.u.hello.node, sizeof(m.u.hello.node), "%s", a->node);
    m.u.hello.revision = a->st.revision;
    if (a->has_key) {
        char prologue[2 * VNET_NAME_MAX + 16];
        int plen = snprintf(prologue, sizeof(prologue), "vnet-node/%s/%s", a->network, a->node);
        size_t n = 0;
        int rc = vnet_hs_init_initiator(&a->hs, &a->key, a->ctl_pub, prologue, (size_t)plen);
        if (!rc)
            rc = vnet_hs_write_hello(&a->hs, unix_ms(), m.u.hello.auth, sizeof(m.u.hello.auth), &n);
        if (!rc && a->has_join) {
            rc = vnet_join_seal(a->ctl_pub, a->join_secret, m.u.hello.auth + n);
            n += VNET_JOIN_SEALED_LEN;
        }
        if (rc) {
            drop_session(a, "cannot start the handshake");
            return;
        }
        m.u.hello.auth_len = (uint32_t)n;
    }
    send_msg(a, &m);
    uv_timer_start(&a->keepalive, on_keepalive, a->keepalive_ms, a->keepalive_ms);
}

static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
    struct vnet_endpoint ep;
    int rc = vnet_endpoint_parse(s, &ep);
    if (rc)
        return rc;
    return vnet_endpoint_to_sockaddr(&ep, ss) < 0 ? VNET_EINVAL : 0;
}

static void start_connect(struct vnet_agent *a)
{
    if (a->destroying || a->tcp_open)
        return;
    struct sockaddr_storage ss;
    if (parse_addr(a->controller, &ss) != 0)
        return;
    if (uv_tcp_init(a->loop, &a->tcp) != 0)
        return;
    a->tcp_open = true;
    a->tcp.data = a;
    a->conn.data = a;
    a->state = A_CONNECTING;
    int rc = uv_tcp_connect(&a->conn, &a->tcp, (struct sockaddr *)&ss, on_connected);
    if (rc) {
        a->state = A_IDLE;
        drop_session(a, uv_strerror(rc));
    }
}

int vnet_agent_create(const struct vnet_agent_cfg *cfg, struct vnet_agent **out)
{
    struct sockaddr_storage ss;
    if (!cfg || !out || !cfg->loop || !cfg->table || !cfg->controller || !cfg->network ||
        !cfg->node || parse_addr(cfg->controller, &ss) != 0)
        return VNET_EINVAL;
    if (strlen(cfg->network) >= VNET_NAME_MAX || strlen(cfg->node) >= VNET_NAME_MAX)
        return VNET_EINVAL;
    if ((cfg->key && !cfg->controller_pub) || (cfg->join_secret && !cfg->key))
        return VNET_EINVAL;
    if (sodium_init() < 0)
        return VNET_ENOMEM;
    struct vnet_agent *a = calloc(1, sizeof(*a));
    if (!a)
        return VNET_ENOMEM;
    a->loop = cfg->loop;
    a->controller = strdup(cfg->controller);
    a->network = strdup(cfg->network);
    a->node = strdup(cfg->node);
    if (!a->controller || !a->network || !a->node) {
        a->destroying = true;
        maybe_free(a);
        return VNET_ENOMEM;
    }
    a->table = cfg->table;
    a->local = cfg->local;
    a->keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : 5000;
    a->backoff_min = cfg->backoff_min_ms ? cfg->backoff_min_ms : 100;
    a->backoff_max = cfg->backoff_max_ms ? cfg->backoff_max_ms : 10000;
    a->backoff = a->backoff_min;
    a->cb = cfg->cb;
    a->cb_arg = cfg->cb_arg;
    if (cfg->key) {
        a->key = *cfg->key;
        memcpy(a->ctl_pub, cfg->controller_pub, VNET_KEY_LEN);
        a->has_key = true;
        if (cfg->join_secret) {
            memcpy(a->join_secret, cfg->join_secret, VNET_JOIN_SECRET_LEN);
            a->has_join = true;
        }
    }
    vnet_frame_reader_init(&a->rd, 0);
    uv_timer_init(a->loop, &a->retry);
    a->retry.data = a;
    uv_timer_init(a->loop, &a->keepalive);
    a->keepalive.data = a;
    start_connect(a);
    *out = a;
    return 0;
}

void vnet_agent_destroy(struct vnet_agent *a)
{
    if (!a || a->destroying)
        return;
    a->destroying = true;
    close_h(a, (uv_handle_t *)&a->retry);
    close_h(a, (uv_handle_t *)&a->keepalive);
    if (a->tcp_open)
        close_h(a, (uv_handle_t *)&a->tcp);
    maybe_free(a);
}

void vnet_agent_get_stats(const struct vnet_agent *a, struct vnet_agent_stats *out)
{
    *out = a->st;
    out->connected = a->state == A_UP;
}
