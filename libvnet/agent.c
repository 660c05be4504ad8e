/* The management daemon: one session with the controller on the caller's libuv loop; it turns
 * snapshots and deltas into switch-table batches. It keeps the network's nodes as it last saw
 * them, because a delta says what a node is now, and the table must lose what it was. */
#include "vnet/agent.h"

#include "session_int.h"
#include "vec_int.h"
#include "vnet/crypto.h"
#include "vnet/token.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/proto.h"
#include "vnet/store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum agent_state { A_IDLE, A_CONNECTING, A_HELLO, A_UP };

struct vnet_agent {
    uv_loop_t *loop;
    char *controller, *network, *node;
    struct vnet_table *table;
    struct vnet_endpoint local;
    bool has_dp_nonce;
    uint8_t dp_nonce[VNET_DP_NONCE_LEN];
    uint32_t keepalive_ms, backoff_min, backoff_max, backoff;
    struct vnet_agent_callbacks cb;
    void *cb_arg;

    struct vnet__sess_uv t; /* the connection, its codec and keepalive timer */
    bool tcp_open;          /* t is initialised and not closed yet */
    uv_connect_t conn;
    uv_timer_t retry;
    uv_timer_t report;  /* sends a REPORT every report_ms while up */
    uint32_t report_ms; /* from the WELCOME; 0: none */
    enum agent_state state;

    struct vnet_network net;
    struct vnet_node_info self;
    bool have_net;
    struct vnet_node_info *nodes; /* the network as last applied, self included */
    size_t nnodes, capnodes;

    bool has_key, has_join;
    bool allow_plain; /* with a key, take part in a plain network anyway */
    struct vnet_keypair key;
    uint8_t ctl_pub[VNET_KEY_LEN];
    uint8_t join_secret[VNET_JOIN_SECRET_LEN];

    bool destroying;
    bool retry_open;  /* the retry timer is not closed yet */
    bool report_open; /* the report timer is not closed yet */
    struct vnet_agent_stats st;
    char rxbuf[65536];
};

static void start_connect(struct vnet_agent *a);
static void drop_session(struct vnet_agent *a, const char *why);

static void on_retry(uv_timer_t *t)
{
    start_connect(t->data);
}

/* ---- lifecycle helpers ---- */

/* Free the agent once it is being destroyed and none of its handles is left in the loop. */
static void maybe_free(struct vnet_agent *a)
{
    if (!a->destroying || a->retry_open || a->report_open || a->tcp_open)
        return;
    vnet_key_wipe(&a->key);
    sodium_memzero(a->join_secret, sizeof(a->join_secret));
    free(a->nodes);
    free(a->controller);
    free(a->network);
    free(a->node);
    free(a);
}

/* The connection is closed: reconnect after a jittered backoff (unless going away). */
static void on_sess_closed(struct vnet__sess_uv *t)
{
    struct vnet_agent *a = t->data;
    a->tcp_open = false;
    if (a->destroying) {
        maybe_free(a);
        return;
    }
    double jitter = 0.75 + 0.5 * ((double)randombytes_uniform(1000) / 1000.0);
    uint64_t delay = (uint64_t)(a->backoff * jitter);
    a->backoff = a->backoff * 2 > a->backoff_max ? a->backoff_max : a->backoff * 2;
    uv_timer_start(&a->retry, on_retry, delay, 0);
}

static void close_sess(struct vnet_agent *a)
{
    if (a->tcp_open)
        vnet__sess_uv_close(&a->t); /* a no-op when already closing */
}

static void on_retry_closed(uv_handle_t *h)
{
    struct vnet_agent *a = h->data;
    a->retry_open = false;
    maybe_free(a);
}

static void on_report_closed(uv_handle_t *h)
{
    struct vnet_agent *a = h->data;
    a->report_open = false;
    maybe_free(a);
}

static void drop_session(struct vnet_agent *a, const char *why)
{
    if (a->state != A_IDLE) {
        vnet_log(VNET_LOG_WARN, "agent", "controller session down: %s", why);
        bool was_up = a->state == A_UP;
        a->state = A_IDLE;
        uv_timer_stop(&a->report);
        if (was_up && a->cb.on_state)
            a->cb.on_state(a->cb_arg, 0);
    }
    close_sess(a);
}

/* ---- output ---- */

static int send_msg(struct vnet_agent *a, const struct vnet_msg *m)
{
    if (!a->tcp_open)
        return VNET_ESTATE;
    return vnet__sess_uv_send(&a->t, m); /* a failure is reported through on_sess_down */
}

/* The periodic REPORT: the node fills it (on_report), it travels as a bin. */
static void on_report_timer(uv_timer_t *t)
{
    struct vnet_agent *a = t->data;
    struct vnet_report r;
    struct vnet_buf b = {0};
    memset(&r, 0, sizeof(r));
    if (a->state != A_UP || !a->cb.on_report || a->cb.on_report(a->cb_arg, a->report_ms, &r) != 0) {
        vnet_report_free(&r);
        return;
    }
    int rc;
    /* Too many peers for one report: the first ones that fit (halving until they do). */
    while ((rc = vnet_report_encode(&r, &b)) == VNET_EMSGSIZE && r.npeers > 0)
        r.npeers /= 2;
    vnet_report_free(&r);
    if (rc == 0) {
        struct vnet_msg m;
        memset(&m, 0, sizeof(m));
        m.type = VNET_MSG_REPORT;
        m.u.report.body = b.data;
        m.u.report.len = (uint32_t)b.len;
        if (send_msg(a, &m) == 0)
            a->st.reports++;
    } else {
        vnet_log(VNET_LOG_INFO, "agent", "report not sent: %s", vnet_strerror(rc));
    }
    vnet_buf_free(&b);
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
    m.u.endpoint.has_nonce = a->has_dp_nonce;
    memcpy(m.u.endpoint.nonce, a->dp_nonce, VNET_DP_NONCE_LEN);
    return send_msg(a, &m);
}

/* ---- translating the network into table operations ---- */

struct opvec {
    struct vnet_table_op *v;
    size_t n, cap;
};

static int op_push(struct opvec *o, const struct vnet_table_op *op)
{
    return vec_push(&o->v, &o->n, &o->cap, sizeof(*op), 64, op);
}

/* Where frames for @n go: the endpoint configured for it, else the one it reported. */
static bool node_endpoint(const struct vnet_node_info *n, struct vnet_endpoint *ep)
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

static int ops_add_node(struct vnet_agent *a, struct opvec *o, const struct vnet_node_info *n)
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

static int ops_del_node(struct vnet_agent *a, struct opvec *o, const struct vnet_node_info *old,
                        const struct vnet_node_info *now)
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

static struct vnet_node_info *find_node(struct vnet_agent *a, uint64_t id)
{
    for (size_t i = 0; i < a->nnodes; i++)
        if (a->nodes[i].id == id)
            return &a->nodes[i];
    return NULL;
}

static int keep_node(struct vnet_agent *a, const struct vnet_node_info *n)
{
    struct vnet_node_info *k = find_node(a, n->id);
    if (k) {
        *k = *n;
        return 0;
    }
    return vec_push(&a->nodes, &a->nnodes, &a->capnodes, sizeof(*n), 64, n);
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
        const struct vnet_node_info *nd = &a->nodes[i];
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
        v[n].has_nonce = nd->has_dp_nonce;
        memcpy(v[n].nonce, nd->dp_nonce, sizeof(v[n].nonce));
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
        struct vnet_node_info *old = find_node(a, ch->node.id);
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
            if (vnet__sess_welcome(&a->t.codec, &m->u.welcome) != 0) {
                a->st.errors++;
                drop_session(a, "welcome refused: the controller did not prove the pinned key "
                                "(wrong --controller-key, or an impostor) or the welcome was "
                                "changed on the way");
                return;
            }
            /* Authenticated now, the mode included: a node with a key does not fall back to
             * a data plane anyone on the path can read and inject into unless told so. */
            if (m->u.welcome.network.mode != VNET_MODE_SECURE && !a->allow_plain) {
                a->st.errors++;
                vnet_log(VNET_LOG_ERROR, "agent",
                         "network %s is plain (unencrypted VXLAN) and this node has a key: "
                         "refused (vnet-node --allow-plain takes part anyway)",
                         m->u.welcome.network.name);
                drop_session(a, "welcome refused: plain network");
                return;
            }
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
        /* at least a second apart, whatever the controller says */
        a->report_ms =
            m->u.welcome.report_ms && m->u.welcome.report_ms < 1000 ? 1000 : m->u.welcome.report_ms;
        if (a->report_ms && a->cb.on_report)
            uv_timer_start(&a->report, on_report_timer, a->report_ms < 1000 ? a->report_ms : 1000,
                           a->report_ms);
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

static void on_sess_msg(struct vnet__sess_uv *t, const struct vnet_msg *m)
{
    struct vnet_agent *a = t->data;
    if (a->state != A_IDLE)
        handle(a, m);
}

static void on_sess_down(struct vnet__sess_uv *t, int code, const char *why)
{
    struct vnet_agent *a = t->data;
    char text[256];
    if (code == VNET_ETIMEDOUT)
        snprintf(text, sizeof(text), "controller %s", why);
    else if (code == VNET_EIO || code == VNET_ENOMEM)
        snprintf(text, sizeof(text), "%s", why);
    else
        snprintf(text, sizeof(text), "from the controller: %s", why);
    drop_session(a, text);
}

static const struct vnet__sess_uv_cbs sess_cbs = {
    .on_msg = on_sess_msg,
    .on_down = on_sess_down,
    .on_closed = on_sess_closed,
};

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
    uv_tcp_nodelay(&a->t.h.tcp, 1);
    if (vnet__sess_uv_start(&a->t) != 0) {
        drop_session(a, "cannot read");
        return;
    }
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = VNET_PROTO_VERSION;
    m.u.hello.role = VNET_ROLE_NODE;
    snprintf(m.u.hello.network, sizeof(m.u.hello.network), "%s", a->network);
    snprintf(m.u.hello.node, sizeof(m.u.hello.node), "%s", a->node);
    m.u.hello.revision = a->st.revision;
    if (a->has_key) {
        int rc = vnet__sess_hello(&a->t.codec, &a->key, a->ctl_pub, &m.u.hello);
        if (!rc && a->has_join) {
            rc = vnet_join_seal(a->ctl_pub, a->join_secret, a->key.pub,
                                m.u.hello.auth + m.u.hello.auth_len);
            m.u.hello.auth_len += VNET_JOIN_SEALED_LEN;
        }
        if (rc) {
            drop_session(a, "cannot start the handshake");
            return;
        }
    }
    send_msg(a, &m);
    vnet__sess_uv_keepalive(&a->t, a->keepalive_ms, true);
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
    /* Frames may be sealed from the first reply on: the reader allows for the overhead. */
    if (vnet__sess_uv_init(&a->t, a->loop, false, VNET__SESS_SEALED_MAX, a->rxbuf, sizeof(a->rxbuf),
                           &sess_cbs, a) != 0)
        return;
    a->tcp_open = true;
    a->conn.data = a;
    a->state = A_CONNECTING;
    int rc = uv_tcp_connect(&a->conn, &a->t.h.tcp, (struct sockaddr *)&ss, on_connected);
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
    if (cfg->dp_nonce) {
        a->has_dp_nonce = true;
        memcpy(a->dp_nonce, cfg->dp_nonce, VNET_DP_NONCE_LEN);
    }
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
        a->allow_plain = cfg->allow_plain;
        if (cfg->join_secret) {
            memcpy(a->join_secret, cfg->join_secret, VNET_JOIN_SECRET_LEN);
            a->has_join = true;
        }
    }
    uv_timer_init(a->loop, &a->retry);
    a->retry.data = a;
    a->retry_open = true;
    uv_timer_init(a->loop, &a->report);
    a->report.data = a;
    a->report_open = true;
    start_connect(a);
    *out = a;
    return 0;
}

void vnet_agent_destroy(struct vnet_agent *a)
{
    if (!a || a->destroying)
        return;
    a->destroying = true;
    uv_close((uv_handle_t *)&a->retry, on_retry_closed);
    uv_close((uv_handle_t *)&a->report, on_report_closed);
    close_sess(a);
    maybe_free(a);
}

void vnet_agent_get_stats(const struct vnet_agent *a, struct vnet_agent_stats *out)
{
    *out = a->st;
    out->connected = a->state == A_UP;
}
