/* The management daemon: one session with the controller on the caller's libuv loop; it turns
 * snapshots and deltas into switch-table batches. It keeps the network's nodes as it last saw
 * them, because a delta says what a node is now, and the table must lose what it was. */
#include "vnet/agent.h"

#include "node_util_int.h"
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

/* Pre-handshake refusals in a row that make a permanent one, and the least delay between them:
 * a refusal nothing authenticates is confirmed once, a second later, so that a momentary state
 * (the node's record being added at that moment, a controller that has just restarted) does
 * not end the node. */
#define REFUSALS_CONFIRM 2
#define CONFIRM_DELAY_MS 1000

struct vnet_agent {
    uv_loop_t *loop;
    char *controller, *network, *node;
    char host[VNET__HOST_MAX];
    char port[8];
    bool host_is_ip;      /* an address literal: no resolution */
    uv_getaddrinfo_t gai; /* resolving the host name */
    bool gai_pending;
    void (*on_refused)(void *arg, int code, const char *why);
    bool stopped;         /* refused for good: no more attempts */
    unsigned refusals;    /* pre-handshake refusals in a row */
    char why[320];        /* why the last attempt failed, for the retry line */
    char logged_why[320]; /* the reason of the last retry line at warn level */
    uint32_t logged_backoff;
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

/* Try again after a jittered backoff, and say so: at warn level when the reason or the backoff
 * step changed since the last such line (so a controller that stays away costs one line per
 * step, then silence at the longest delay), at debug level otherwise. */
static void schedule_retry(struct vnet_agent *a)
{
    if (a->destroying || a->stopped)
        return;
    uint32_t step = a->backoff;
    double jitter = 0.75 + 0.5 * ((double)randombytes_uniform(1000) / 1000.0);
    uint64_t delay = (uint64_t)(step * jitter);
    a->backoff = a->backoff * 2 > a->backoff_max ? a->backoff_max : a->backoff * 2;
    bool news = strcmp(a->why, a->logged_why) != 0 || step != a->logged_backoff;
    vnet_log(news ? VNET_LOG_WARN : VNET_LOG_DEBUG, "agent",
             "controller %s: %s, retrying in %.1f s", a->controller,
             a->why[0] ? a->why : "connection closed", (double)delay / 1000.0);
    if (news) {
        memcpy(a->logged_why, a->why, sizeof(a->why));
        a->logged_backoff = step;
    }
    uv_timer_start(&a->retry, on_retry, delay, 0);
}

/* ---- lifecycle helpers ---- */

/* Free the agent once it is being destroyed and none of its handles is left in the loop. */
static void maybe_free(struct vnet_agent *a)
{
    if (!a->destroying || a->retry_open || a->report_open || a->tcp_open || a->gai_pending)
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
    schedule_retry(a);
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
    snprintf(a->why, sizeof(a->why), "%s", why);
    if (a->state != A_IDLE) {
        bool was_up = a->state == A_UP;
        if (was_up)
            vnet_log(VNET_LOG_WARN, "agent", "controller session down: %s", why);
        a->state = A_IDLE;
        uv_timer_stop(&a->report);
        if (was_up && a->cb.on_state)
            a->cb.on_state(a->cb_arg, 0);
    }
    close_sess(a);
}

/* Refused for good: close the session, never retry, tell the owner (last: it may destroy us). */
static void give_up(struct vnet_agent *a, int code, const char *why)
{
    a->stopped = true;
    a->st.errors++;
    drop_session(a, why);
    uv_timer_stop(&a->retry);
    if (a->on_refused)
        a->on_refused(a->cb_arg, code, why);
}

/* What an operator should check after the controller's uniform refusal of a HELLO: the causes
 * it may stand for, given what this node sent. */
static void refusal_causes(const struct vnet_agent *a, char *buf, size_t len)
{
    if (!a->has_key)
        snprintf(buf, len,
                 "network '%s' or node '%s' unknown to the controller, or the controller wants a "
                 "node key (--key); check 'vnetctl node list %s'",
                 a->network, a->node, a->network);
    else if (a->has_join)
        snprintf(buf, len,
                 "network '%s' or node '%s' unknown, the join token used or expired, or the "
                 "controller's key does not match the join token's; check 'vnetctl node show %s "
                 "%s' (a new token: vnetctl node add)",
                 a->network, a->node, a->network, a->node);
    else
        snprintf(buf, len,
                 "network '%s' or node '%s' unknown, this node's key not registered for it or "
                 "revoked, or the controller's key does not match --controller-key / the pinned "
                 "key; check 'vnetctl node show %s %s' against vnet-node --pubkey, and "
                 "vnet-controller --pubkey",
                 a->network, a->node, a->network, a->node);
}

/* A refusal before the handshake completed: nothing authenticates it, so it ends the node only
 * when a second one follows, a second later at least, with no welcome between. @what says what
 * happened; with @uniform, it is the controller's answer to the HELLO, which stands for several
 * causes. */
static void refused_unauthenticated(struct vnet_agent *a, int code, const char *what, bool uniform)
{
    char causes[400] = "", why[VNET_MSG_TEXT_MAX + 600];
    if (++a->refusals >= REFUSALS_CONFIRM) {
        if (uniform)
            refusal_causes(a, causes, sizeof(causes));
        snprintf(why, sizeof(why), "controller %s: %s%s%s", a->controller, what,
                 uniform ? ": " : "", causes);
        give_up(a, code, why);
        return;
    }
    if (a->backoff < CONFIRM_DELAY_MS)
        a->backoff = CONFIRM_DELAY_MS;
    snprintf(why, sizeof(why), "%s; trying once more to confirm", what);
    a->st.errors++;
    drop_session(a, why);
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
    bool self_gone = false;
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
            if (ch->node.id == a->self.id)
                self_gone = true;
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
    if (self_gone) {
        char why[2 * VNET_NAME_MAX + 96];
        snprintf(why, sizeof(why), "node %s was removed from network %s", a->node, a->network);
        give_up(a, VNET_ENOENT, why);
    }
}

/* A network this node cannot take part in: plain when it has a key (the WELCOME is authenticated
 * by now, the mode included: a node with a key does not fall back to a data plane anyone on the
 * path can read and inject into unless told so), secure when it has none. */
static bool welcome_mode_refused(struct vnet_agent *a, const struct vnet_network *net)
{
    const char *why = NULL;
    if (a->has_key && net->mode != VNET_MODE_SECURE && !a->allow_plain)
        why = "is plain (unencrypted VXLAN) and this node has a key: refused (vnet-node "
              "--allow-plain takes part anyway)";
    else if (!a->has_key && net->mode == VNET_MODE_SECURE)
        why = "is secure: this node needs a key (--key) to take part";
    if (!why)
        return false;
    char text[VNET_NAME_MAX + 160];
    snprintf(text, sizeof(text), "network %s %s", net->name, why);
    give_up(a, VNET_EPERM, text);
    return true;
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
                refused_unauthenticated(a, VNET_EACCES,
                                        "welcome refused: it does not prove the pinned key (the "
                                        "controller's key does not match --controller-key / the "
                                        "pinned key), or it was changed on the way",
                                        false);
                return;
            }
            if (a->has_join) { /* used: the key is registered now */
                a->has_join = false;
                sodium_memzero(a->join_secret, sizeof(a->join_secret));
            }
        }
        if (welcome_mode_refused(a, &m->u.welcome.network))
            return;
        a->state = A_UP;
        a->backoff = a->backoff_min;
        a->refusals = 0;
        a->why[0] = a->logged_why[0] = '\0';
        a->logged_backoff = 0;
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
        char why[VNET_MSG_TEXT_MAX + 160];
        int code = m->u.error.code;
        if (a->state == A_UP && (code == VNET_ENOENT || code == VNET_EACCES)) {
            /* On an authenticated session (or one with a keyless controller, where nothing
             * is): the network was deleted, the node removed or its key revoked. */
            snprintf(why, sizeof(why), "controller %s says: %s (network %s, node %s)",
                     a->controller, m->u.error.text, a->network, a->node);
            give_up(a, code, why);
            return;
        }
        if (a->state == A_HELLO && (code == VNET_EACCES || code == VNET_EVERSION)) {
            snprintf(why, sizeof(why), "refused this node (controller says: %s)", m->u.error.text);
            refused_unauthenticated(a, code, why, code == VNET_EACCES);
            return;
        }
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
        char why[160];
        a->state = A_IDLE;
        snprintf(why, sizeof(why), "unreachable (%s)", uv_strerror(status));
        drop_session(a, why);
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

static void connect_to(struct vnet_agent *a, const struct sockaddr *sa);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct vnet_agent *a = req->data;
    a->gai_pending = false;
    if (a->destroying) {
        uv_freeaddrinfo(res);
        maybe_free(a);
        return;
    }
    if (status < 0 || !res) {
        snprintf(a->why, sizeof(a->why), "cannot resolve %s (%s)", a->host,
                 status < 0 ? uv_strerror(status) : "no address");
        uv_freeaddrinfo(res);
        schedule_retry(a);
        return;
    }
    char ip[64] = "";
    if (res->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, ip, sizeof(ip));
    else if (res->ai_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, ip, sizeof(ip));
    vnet_log(VNET_LOG_DEBUG, "agent", "controller %s: %s is %s", a->controller, a->host, ip);
    connect_to(a, res->ai_addr);
    uv_freeaddrinfo(res);
}

/* Each attempt resolves the name again: a controller that moved is found at its new address. */
static void start_connect(struct vnet_agent *a)
{
    if (a->destroying || a->stopped || a->tcp_open || a->gai_pending)
        return;
    if (a->host_is_ip) {
        struct sockaddr_storage ss;
        struct vnet_endpoint ep;
        char hp[VNET__HOST_MAX + 16];
        snprintf(hp, sizeof(hp), strchr(a->host, ':') ? "[%s]:%s" : "%s:%s", a->host, a->port);
        if (vnet_endpoint_parse(hp, &ep) != 0 || vnet_endpoint_to_sockaddr(&ep, &ss) < 0)
            return; /* checked at create */
        connect_to(a, (struct sockaddr *)&ss);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    a->gai.data = a;
    int rc = uv_getaddrinfo(a->loop, &a->gai, on_resolved, a->host, a->port, &hints);
    if (rc) {
        snprintf(a->why, sizeof(a->why), "cannot resolve %s (%s)", a->host, uv_strerror(rc));
        schedule_retry(a);
        return;
    }
    a->gai_pending = true;
}

static void connect_to(struct vnet_agent *a, const struct sockaddr *sa)
{
    /* Frames may be sealed from the first reply on: the reader allows for the overhead. */
    if (vnet__sess_uv_init(&a->t, a->loop, false, VNET__SESS_SEALED_MAX, a->rxbuf, sizeof(a->rxbuf),
                           &sess_cbs, a) != 0)
        return;
    a->tcp_open = true;
    a->conn.data = a;
    a->state = A_CONNECTING;
    int rc = uv_tcp_connect(&a->conn, &a->t.h.tcp, sa, on_connected);
    if (rc) {
        char why[160];
        a->state = A_IDLE;
        snprintf(why, sizeof(why), "unreachable (%s)", uv_strerror(rc));
        drop_session(a, why);
    }
}

int vnet_agent_create(const struct vnet_agent_cfg *cfg, struct vnet_agent **out)
{
    char host[VNET__HOST_MAX];
    uint16_t port;
    if (!cfg || !out || !cfg->loop || !cfg->table || !cfg->controller || !cfg->network ||
        !cfg->node || vnet__hostport_split(cfg->controller, host, &port) != 0)
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
    memcpy(a->host, host, sizeof(host));
    snprintf(a->port, sizeof(a->port), "%u", port);
    struct vnet_ip lit;
    a->host_is_ip = vnet_ip_parse(host, &lit) == 0;
    a->on_refused = cfg->on_refused;
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
    if (a->gai_pending)
        uv_cancel((uv_req_t *)&a->gai); /* on_resolved still runs, then frees */
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
