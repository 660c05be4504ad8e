/* The configuration controller: node sessions and subscriber requests on one libuv loop.
 *
 * Output. A message is encoded once into a reference-counted buffer and written to every
 * session that needs it (a delta to 10,000 nodes is one encoding). A session whose unsent
 * bytes pass session_queue_max gets nothing more until libuv has drained it; it is then sent
 * one snapshot, so a stuck node costs bounded memory and never slows the others.
 *
 * Pushing. Requests mark their network dirty; a uv_check handle (after each loop iteration's
 * I/O) sends each dirty network's sessions one delta with everything after what they were last
 * sent, grouped by that revision so each group shares one encoding. Commits from other
 * processes are found by polling the store's change counter.
 *
 * Clients. A session on the Unix socket is the admin (the socket is 0600). On TCP, without a
 * controller key every client is the admin (the API is open: the program warns); with a key,
 * a client does the node handshake with a throwaway key and presents an API token sealed to
 * our key and bound to that throwaway key; the token's subscriber is the session's identity
 * and every later frame is encrypted. A subscriber's requests are scoped to its own networks:
 * anything else is "no network", exactly as if it did not exist.
 */
#include "vnet/controller.h"

#include "controller_api_int.h"
#include "metrics_int.h"
#include "session_int.h"
#include "vec_int.h"
#include "vnet/crypto.h"
#include "vnet/token.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/proto.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

enum sess_kind { S_NEW = 0, S_NODE, S_CLIENT };
/* Which listener accepted a session: the role it may take. */
enum lis_kind { L_NODE = 0, L_API, L_UNIX };

/* TCP keepalive on every accepted connection: idle this long, the kernel probes the peer (a
 * client is never closed for silence, see handle_client_hello; this finds one that vanished). */
#define TCP_KEEPALIVE_S 60

struct session {
    struct vnet__sess_uv t; /* the connection: framing, channel, keepalive timer */
    struct vnet_controller *c;
    struct session *prev, *next;
    struct session *pa_prev, *pa_next; /* the unauthenticated sessions (while preauth) */
    enum sess_kind kind;
    enum lis_kind lis;
    bool preauth; /* accepted, its HELLO not yet let in: counts against the caps */
    bool need_snapshot;
    uint64_t network_id, node_id;
    uint64_t sent_rev, acked_rev;
    uint64_t since_unix_ms;
    struct vnet_ip peer_ip; /* TCP peer (family 0 for the Unix socket) */
    uint16_t peer_port;
    /* A node's, for `network status`: when it last sent a frame, its last REPORT (encoded,
     * checked on arrival) and when that came; moved to its struct acked when it closes. */
    uint64_t last_rx_ms;
    uint8_t *report;
    uint32_t report_len;
    uint64_t report_at_ms;
    bool report_bad_logged;
    bool local;      /* on the Unix socket */
    bool admin;      /* a client acting as the admin: sees every subscriber's data */
    uint64_t sub_id; /* a client's subscriber */
    char sub_name[VNET_NAME_MAX];
};

/* A node's per-boot data-plane nonce, from its last ENDPOINT report over its authenticated
 * session; handed to the other nodes in its node records (docs/security.md 5.4). */
struct dp_nonce {
    uint64_t node_id;
    uint8_t nonce[VNET_DP_NONCE_LEN];
};

/* What the controller remembers of a node between sessions, for `network status` (memory
 * only: a restarted controller knows nothing of it until it connects or reports again). */
struct acked {
    uint64_t node_id, rev;
    uint64_t hello_ts;     /* the newest authenticated hello's timestamp: older ones are replays */
    uint64_t last_seen_ms; /* unix ms of its last frame, as of its last session's end */
    struct vnet_endpoint from; /* where that session came from */
    uint8_t *report;           /* its last REPORT (encoded), when the session ended */
    uint32_t report_len;
    uint64_t report_at_ms;
};

struct vnet_controller {
    uv_loop_t *loop;
    struct vnet_store *store;
    union {
        uv_tcp_t tcp;
        uv_handle_t handle;
    } node_lis, api_lis;
    uv_pipe_t unix_lis;
    bool has_node_lis, has_api_lis, has_unix_lis;
    char *unix_path;
    uv_check_t check;
    uv_timer_t poller;
    uint32_t keepalive_ms, poll_ms, report_ms;
    size_t queue_max;
    uint32_t preauth_frame_max, hs_timeout_ms, preauth_max, preauth_per_ip;
    struct session *sessions;
    struct session *preauth; /* the unauthenticated ones, at most preauth_max (+ Unix socket) */
    bool preauth_full_logged;
    uint64_t *dirty;
    size_t ndirty, capdirty;
    struct acked *acks;
    size_t nacks, capacks;
    struct dp_nonce *nonces; /* each node's data-plane nonce, as last reported (memory only) */
    size_t nnonces, capnonces;
    uint64_t last_change;
    bool has_key;
    struct vnet_keypair key;
    int pending_closes;
    bool destroying;
    bool lagging;      /* some session may wait for a snapshot */
    char rxbuf[65536]; /* reads land here and are consumed before the next read */
    struct vnet_controller_stats st;
    struct vnet__ctl_metrics m; /* for /metrics (metrics.c) */
};

static uint64_t unix_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void maybe_free(struct vnet_controller *c)
{
    if (c->destroying && c->pending_closes == 0) {
        sodium_memzero(&c->key, sizeof(c->key));
        free(c->dirty);
        for (size_t i = 0; i < c->nacks; i++)
            free(c->acks[i].report);
        free(c->acks);
        free(c->nonces);
        free(c->unix_path);
        free(c);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct vnet_controller *c = h->data;
    c->pending_closes--;
    maybe_free(c);
}

static void close_handle(struct vnet_controller *c, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    h->data = c;
    c->pending_closes++;
    uv_close(h, on_handle_closed);
}

/* ---- dirty networks and acknowledgements ---- */

static void mark_dirty(struct vnet_controller *c, uint64_t network_id)
{
    for (size_t i = 0; i < c->ndirty; i++)
        if (c->dirty[i] == network_id)
            return;
    uint64_t *d = vec_room(c->dirty, c->ndirty, &c->capdirty, sizeof(*d), 16);
    if (!d)
        return; /* the store poller will find the change again */
    c->dirty = d;
    c->dirty[c->ndirty++] = network_id;
}

static struct acked *find_ack(struct vnet_controller *c, uint64_t node_id, bool create)
{
    for (size_t i = 0; i < c->nacks; i++)
        if (c->acks[i].node_id == node_id)
            return &c->acks[i];
    if (!create)
        return NULL;
    struct acked *a = vec_room(c->acks, c->nacks, &c->capacks, sizeof(*a), 64);
    if (!a)
        return NULL;
    c->acks = a;
    memset(&c->acks[c->nacks], 0, sizeof(c->acks[c->nacks]));
    c->acks[c->nacks].node_id = node_id;
    return &c->acks[c->nacks++];
}

/* ---- sessions: output ---- */

static void session_close(struct session *s);

/* Queue @f on @s; with @droppable, refuse (and ask for a snapshot later) when the session's
 * output is over the bound. */
static int session_write(struct session *s, struct vnet__frame *f, bool droppable)
{
    if (s->t.closing)
        return VNET_ESTATE;
    if (droppable && (s->need_snapshot || vnet__sess_uv_queued(&s->t) > s->c->queue_max)) {
        s->need_snapshot = true;
        s->c->lagging = true;
        return VNET_ENOBUFS;
    }
    return vnet__sess_uv_write(&s->t, f);
}

static int send_msg(struct session *s, const struct vnet_msg *m)
{
    return vnet__sess_uv_send(&s->t, m);
}

/* ---- sessions: lifecycle ---- */

/* The session is let in (or closing): it no longer counts as unauthenticated, and may send
 * frames up to the usual limit (a sealed session has its own). */
static void preauth_leave(struct session *s)
{
    if (!s->preauth)
        return;
    s->preauth = false;
    if (s->pa_prev)
        s->pa_prev->pa_next = s->pa_next;
    else
        s->c->preauth = s->pa_next;
    if (s->pa_next)
        s->pa_next->pa_prev = s->pa_prev;
    s->pa_prev = s->pa_next = NULL;
    s->c->st.preauth_sessions--;
}

static void on_sess_closed(struct vnet__sess_uv *t)
{
    struct session *s = t->data;
    struct vnet_controller *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s->report);
    free(s);
    c->pending_closes--;
    maybe_free(c);
}

static void session_close(struct session *s)
{
    if (s->t.closing)
        return;
    preauth_leave(s);
    if (s->kind == S_NODE) {
        struct acked *a = find_ack(s->c, s->node_id, true);
        if (a && s->acked_rev > a->rev)
            a->rev = s->acked_rev;
        if (a) {
            a->last_seen_ms = s->last_rx_ms;
            a->from = (struct vnet_endpoint){s->peer_ip, s->peer_port};
            if (s->report) { /* the newer report moves over */
                free(a->report);
                a->report = s->report;
                a->report_len = s->report_len;
                a->report_at_ms = s->report_at_ms;
                s->report = NULL;
            }
        }
    }
    if (s->kind == S_NODE)
        s->c->st.node_sessions--;
    else if (s->kind == S_CLIENT)
        s->c->st.client_sessions--;
    s->c->pending_closes++;
    vnet__sess_uv_close(&s->t);
}

/* Tell the peer why (ERROR), then close once that is written. */
static void session_fail(struct session *s, int code, const char *text)
{
    if (s->t.closing)
        return;
    vnet_log(VNET_LOG_INFO, "controller", "closing session: %s", text);
    vnet__sess_uv_fail(&s->t, code, text);
}

/* ---- snapshots and deltas ---- */

/* Put the data-plane nonce the controller holds for node @n into its record. */
static void nonce_fill(const struct vnet_controller *c, struct vnet_node_info *n)
{
    for (size_t i = 0; i < c->nnonces; i++)
        if (c->nonces[i].node_id == n->id) {
            n->has_dp_nonce = true;
            memcpy(n->dp_nonce, c->nonces[i].nonce, VNET_DP_NONCE_LEN);
            return;
        }
}

static struct vnet__frame *build_snapshot(struct vnet_controller *c, uint64_t network_id,
                                          uint64_t *revision)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_SNAPSHOT;
    uint64_t t0 = vnet__mono_ns();
    if (vnet_store_network_get_by_id(c->store, network_id, &m.u.snapshot.network) != 0)
        return NULL;
    struct vnet__node_vec nv = {0};
    if (vnet_store_node_list(c->store, network_id, vnet__api_collect_node, &nv) != 0) {
        free(nv.v);
        return NULL;
    }
    vnet__hist_observe(&c->m.store[VNET__STORE_SNAPSHOT], vnet__mono_ns() - t0);
    for (size_t i = 0; i < nv.n; i++)
        nonce_fill(c, &nv.v[i]);
    m.u.snapshot.nodes = nv.v;
    m.u.snapshot.nnodes = nv.n;
    *revision = m.u.snapshot.network.revision;
    struct vnet__frame *b = vnet__frame_encode(&m);
    free(nv.v);
    return b;
}

static int send_snapshot(struct session *s)
{
    uint64_t rev;
    struct vnet__frame *b = build_snapshot(s->c, s->network_id, &rev);
    if (!b) {
        session_fail(s, VNET_EIO, "cannot read the network for a snapshot");
        return VNET_EIO;
    }
    int rc = session_write(s, b, false);
    vnet__frame_unref(b);
    if (rc == 0) {
        s->sent_rev = rev;
        s->c->st.snapshots_sent++;
    }
    return rc;
}

struct change_vec {
    struct vnet_change *v;
    size_t n, cap;
};

static int collect_change(const struct vnet_change *ch, void *arg)
{
    struct change_vec *cv = arg;
    return vec_push(&cv->v, &cv->n, &cv->cap, sizeof(*ch), 16, ch);
}

/* Bring every node session of @network_id up to the network's revision. */
static void push_network(struct vnet_controller *c, uint64_t network_id)
{
    struct vnet_network net;
    if (vnet_store_network_get_by_id(c->store, network_id, &net) != 0) {
        /* Deleted: its sessions have nothing left to serve. */
        for (struct session *s = c->sessions; s; s = s->next)
            if (s->kind == S_NODE && s->network_id == network_id)
                session_fail(s, VNET_ENOENT, "network deleted");
        return;
    }
    for (;;) {
        /* Find one group: the sessions behind, sent the same revision. */
        uint64_t from = 0;
        bool found = false;
        for (struct session *s = c->sessions; s; s = s->next) {
            if (s->kind != S_NODE || s->t.closing || s->network_id != network_id ||
                s->sent_rev >= net.revision || s->need_snapshot)
                continue;
            from = s->sent_rev;
            found = true;
            break;
        }
        if (!found)
            return;
        struct change_vec cv = {0};
        uint64_t t0 = vnet__mono_ns();
        int rc = vnet_store_changes_since(c->store, network_id, from, collect_change, &cv);
        vnet__hist_observe(&c->m.store[VNET__STORE_CHANGES], vnet__mono_ns() - t0);
        struct vnet__frame *b = NULL;
        if (rc == 0 && cv.n > 0) {
            for (size_t i = 0; i < cv.n; i++)
                nonce_fill(c, &cv.v[i].node);
            struct vnet_msg m;
            memset(&m, 0, sizeof(m));
            m.type = VNET_MSG_DELTA;
            m.u.delta.from = from;
            m.u.delta.to = cv.v[cv.n - 1].revision;
            m.u.delta.changes = cv.v;
            m.u.delta.nchanges = cv.n;
            b = vnet__frame_encode(&m);
        }
        uint64_t to = cv.n ? cv.v[cv.n - 1].revision : net.revision;
        free(cv.v);
        for (struct session *s = c->sessions; s; s = s->next) {
            if (s->kind != S_NODE || s->t.closing || s->network_id != network_id ||
                s->sent_rev != from || s->need_snapshot)
                continue;
            if (b) {
                if (session_write(s, b, true) == 0) {
                    s->sent_rev = to;
                    c->st.deltas_sent++;
                } else {
                    s->need_snapshot = true; /* sent once its queue is empty (on_check) */
                    c->lagging = true;
                }
            } else {
                /* The changes are gone (retention) or unreadable: start over. */
                if (send_snapshot(s) != 0)
                    s->sent_rev = net.revision; /* failed and closing: out of the loop */
            }
        }
        vnet__frame_unref(b);
    }
}

static void on_check(uv_check_t *h)
{
    struct vnet_controller *c = h->data;
    while (c->ndirty > 0) {
        uint64_t id = c->dirty[--c->ndirty];
        push_network(c, id);
    }
    /* Sessions that fell behind and have nothing queued any more: no write callback will come
     * to send their snapshot, so send it here. */
    if (!c->lagging)
        return;
    c->lagging = false;
    for (struct session *s = c->sessions; s; s = s->next) {
        if (s->kind != S_NODE || s->t.closing || !s->need_snapshot)
            continue;
        if (vnet__sess_uv_queued(&s->t) == 0) {
            s->need_snapshot = false;
            send_snapshot(s);
        } else {
            c->lagging = true; /* its write callback will send it */
        }
    }
}

static void note_own_commit(struct vnet_controller *c, uint64_t network_id)
{
    mark_dirty(c, network_id);
    uint64_t last;
    if (vnet_store_last_change(c->store, &last) == 0)
        c->last_change = last;
}

static int mark_changed(uint64_t id, void *arg)
{
    mark_dirty(arg, id);
    return 0;
}

static void on_poll_store(uv_timer_t *t)
{
    struct vnet_controller *c = t->data;
    uint64_t last;
    if (vnet_store_last_change(c->store, &last) != 0 || last == c->last_change)
        return;
    vnet_store_changed_networks(c->store, c->last_change, mark_changed, c);
    c->last_change = last;
}

/* ---- node sessions ---- */

/* Every refusal of a node's HELLO looks the same to the peer, whatever the reason (unknown
 * network, subscriber or node, no or a wrong key, a join token that does not fit, a replay):
 * before authentication nobody learns what exists. The reason goes to the log only. */
#define NODE_REFUSED "refused: unknown network or node, or authentication failed"

static void refuse_node(struct session *s, const struct vnet_msg_hello *h, const char *why)
{
    vnet__sess_hs_abort(&s->t.codec);
    vnet_log(VNET_LOG_WARN, "controller", "node '%s' of '%s' refused: %s", h->node, h->network,
             why);
    s->c->st.sessions_closed_bad++;
    session_fail(s, VNET_EACCES, NODE_REFUSED);
}

/* Enrol @claimed (the key the handshake proved) with the join secret sealed behind the
 * handshake: the secret must be sealed to our key and bound to @claimed, and its token must
 * be @node's. Returns 0 or VNET_EACCES with the reason in @err. */
static int join_node(struct vnet_controller *c, const struct vnet_msg_hello *h,
                     const struct vnet_network *net, struct vnet_node_info *node,
                     const uint8_t claimed[VNET_KEY_LEN], char *err, size_t errlen)
{
    uint8_t secret[VNET_JOIN_SECRET_LEN], bound[VNET_KEY_LEN], hash[32];
    if (vnet_join_open(c->key.pub, c->key.sec, h->auth + VNET_HS_HELLO_LEN,
                       h->auth_len - VNET_HS_HELLO_LEN, secret, bound) != 0) {
        snprintf(err, errlen, "join refused: join token unreadable");
        return VNET_EACCES;
    }
    vnet_token_hash(secret, sizeof(secret), hash);
    sodium_memzero(secret, sizeof(secret));
    /* Sealed for another handshake key: copied off the wire by someone else. */
    if (sodium_memcmp(bound, claimed, VNET_KEY_LEN) != 0) {
        snprintf(err, errlen, "join refused: the join secret is not bound to this handshake");
        return VNET_EACCES;
    }
    /* Another node's token is refused before anything is written: no key is registered and
     * the token stays usable by its node. */
    struct vnet_node_info joined;
    char why[160] = "";
    int rc = vnet_store_node_join_as(c->store, node->id, hash, claimed, unix_ms() / 1000, &joined,
                                     why, sizeof(why));
    if (rc) {
        snprintf(err, errlen, "join refused: %s", why[0] ? why : vnet_strerror(rc));
        return VNET_EACCES;
    }
    *node = joined;
    note_own_commit(c, net->id); /* the others learn the new key */
    vnet_log(VNET_LOG_INFO, "controller", "node '%s' of '%s' joined with a token", node->name,
             net->name);
    return 0;
}

/* The node must prove it holds the static key registered for it (or enrol one with a join
 * token sealed to our key and bound to that key). The handshake is read first, whatever the
 * names say, so that refusals cost the same work. Returns 0 (the handshake is ready to
 * accept) or VNET_EACCES with the reason for the log in @err. */
static int authenticate_node(struct session *s, const struct vnet_msg_hello *h, bool found,
                             const struct vnet_network *net, struct vnet_node_info *node, char *err,
                             size_t errlen)
{
    struct vnet_controller *c = s->c;
    uint8_t claimed[VNET_KEY_LEN];
    uint64_t ts = 0;
    if (h->auth_len < VNET_HS_HELLO_LEN) {
        snprintf(err, errlen, "authentication required (no key in hello)");
        return VNET_EACCES;
    }
    int rc = vnet__sess_read_hello(&s->t.codec, &c->key, h, claimed, &ts);
    if (rc) {
        snprintf(err, errlen, "handshake failed (%s): wrong controller key or tampered hello",
                 vnet_strerror(rc));
        return VNET_EACCES;
    }
    if (!found) {
        snprintf(err, errlen, "no such network or node");
        return VNET_EACCES;
    }
    /* A join by the key already registered for the node (the node enrolled, and its WELCOME
     * was lost, or it restarted with the same --join) adds nothing: the handshake has proved
     * that key, as for any HELLO without a join. A used token stays useless to anyone else. */
    bool enrolled = node->has_pubkey && sodium_memcmp(node->pubkey, claimed, VNET_KEY_LEN) == 0;
    if (h->auth_len > VNET_HS_HELLO_LEN && !enrolled &&
        join_node(c, h, net, node, claimed, err, errlen) != 0)
        return VNET_EACCES;
    if (!node->has_pubkey || sodium_memcmp(node->pubkey, claimed, VNET_KEY_LEN) != 0) {
        char pub[VNET_PUBKEY_STRLEN];
        vnet_pubkey_format(claimed, pub, sizeof(pub));
        snprintf(err, errlen, "key %s is not registered for it%s", pub,
                 node->has_pubkey ? "" : " (no key: revoked or never enrolled)");
        return VNET_EACCES;
    }
    struct acked *a = find_ack(c, node->id, true);
    if (a && ts <= a->hello_ts) {
        snprintf(err, errlen, "replayed hello");
        return VNET_EACCES;
    }
    if (a)
        a->hello_ts = ts;
    return 0;
}

/* A node names its network "NAME", or "SUBSCRIBER/NAME" when several subscribers have a
 * network of that name. */
static int find_node_network(struct vnet_controller *c, const char *spec, struct vnet_network *out)
{
    const char *slash = strchr(spec, '/');
    if (!slash)
        return vnet_store_network_get(c->store, 0, spec, out);
    char sub[VNET_NAME_MAX];
    size_t n = (size_t)(slash - spec);
    if (n == 0 || n >= sizeof(sub))
        return VNET_ENOENT;
    memcpy(sub, spec, n);
    sub[n] = '\0';
    struct vnet_subscriber owner;
    if (vnet_store_subscriber_get(c->store, sub, &owner) != 0)
        return VNET_ENOENT;
    return vnet_store_network_get(c->store, owner.id, slash + 1, out);
}

/* An empty WELCOME: the answer to a hello that is let in. */
static void welcome_init(struct vnet_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = VNET_MSG_WELCOME;
    m->u.welcome.version = VNET_PROTO_VERSION;
}

static void handle_node_hello(struct session *s, const struct vnet_msg_hello *h)
{
    struct vnet_controller *c = s->c;
    struct vnet_msg m;
    welcome_init(&m);
    char err[VNET_MSG_TEXT_MAX] = "no such network or node";
    struct vnet_msg_welcome *w = &m.u.welcome;
    uint64_t t0 = vnet__mono_ns();
    bool found = find_node_network(c, h->network, &w->network) == 0 &&
                 vnet_store_node_get(c->store, w->network.id, h->node, &w->node) == 0;
    vnet__hist_observe(&c->m.store[VNET__STORE_HELLO], vnet__mono_ns() - t0);
    if (c->has_key ? authenticate_node(s, h, found, &w->network, &w->node, err, sizeof(err)) != 0
                   : !found) {
        refuse_node(s, h, err);
        return;
    }
    w->report_ms = c->report_ms;
    /* The WELCOME is complete now: accepting binds its settings into the handshake. */
    if (c->has_key && vnet__sess_accept(&s->t.codec, w) != 0) {
        session_fail(s, VNET_EIO, "handshake failed");
        return;
    }
    /* One session per node: the newest wins (the old one is likely a dead connection). */
    for (struct session *o = c->sessions; o; o = o->next)
        if (o != s && o->kind == S_NODE && o->node_id == w->node.id)
            session_fail(o, VNET_EBUSY, "replaced by a newer session of the same node");
    s->kind = S_NODE;
    c->st.node_sessions++;
    preauth_leave(s);
    vnet__sess_uv_set_max(&s->t, 0);
    s->network_id = w->network.id;
    s->node_id = w->node.id;
    s->since_unix_ms = s->last_rx_ms = unix_ms();
    if (send_msg(s, &m) != 0) /* WELCOME itself goes out in the clear */
        return;
    if (c->has_key && vnet__sess_secure(&s->t.codec) != 0) {
        session_fail(s, VNET_EIO, "handshake failed");
        return;
    }
    vnet__sess_uv_keepalive(&s->t, c->keepalive_ms, true);
    uint64_t rev = w->network.revision;
    if (h->revision > 0 && h->revision <= rev) {
        s->sent_rev = h->revision;
        s->acked_rev = h->revision;
        mark_dirty(c, s->network_id); /* the deltas after its revision, if any */
    } else {
        send_snapshot(s);
    }
}

/* Record node @id's data-plane nonce. Returns 1 when it is new or changed (the node
 * restarted), 0 when unchanged, VNET_ENOMEM. */
static int nonce_set(struct vnet_controller *c, uint64_t id, const uint8_t *nonce)
{
    for (size_t i = 0; i < c->nnonces; i++)
        if (c->nonces[i].node_id == id) {
            if (memcmp(c->nonces[i].nonce, nonce, VNET_DP_NONCE_LEN) == 0)
                return 0;
            memcpy(c->nonces[i].nonce, nonce, VNET_DP_NONCE_LEN);
            return 1;
        }
    struct dp_nonce r = {.node_id = id};
    memcpy(r.nonce, nonce, VNET_DP_NONCE_LEN);
    return vec_push(&c->nonces, &c->nnonces, &c->capnonces, sizeof(r), 16, &r) == 0 ? 1
                                                                                    : VNET_ENOMEM;
}

static void handle_endpoint(struct session *s, const struct vnet_msg_endpoint *e)
{
    /* A new data-plane nonce (the node restarted): every other node of the network needs it
     * before it can talk to this one securely, even when nothing else changed (the same
     * endpoint: no change record, no delta). A snapshot carries it. */
    if (e->has_nonce && nonce_set(s->c, s->node_id, e->nonce) == 1) {
        for (struct session *o = s->c->sessions; o; o = o->next)
            if (o != s && o->kind == S_NODE && !o->t.closing && o->network_id == s->network_id) {
                o->need_snapshot = true;
                s->c->lagging = true;
            }
    }
    struct vnet_endpoint ep = e->ep;
    static const uint8_t zero[16];
    bool unspecified =
        ep.ip.family == 0 || memcmp(ep.ip.addr, zero, ep.ip.family == VNET_AF_INET ? 4 : 16) == 0;
    if (unspecified && s->peer_ip.family) /* "wherever you see me from" */
        ep.ip = s->peer_ip;
    if (ep.ip.family == 0 || ep.port == 0)
        return;
    struct vnet_node_info n;
    uint64_t before = 0;
    struct vnet_node_info old;
    if (vnet_store_node_get_by_id(s->c->store, s->node_id, &old) == 0)
        before = old.revision;
    int rc = vnet_store_node_set_observed(s->c->store, s->node_id, &ep, &n);
    if (rc == 0 && n.revision != before)
        note_own_commit(s->c, s->network_id);
    else if (rc == VNET_EEXIST) /* another node's endpoint: it keeps it (the store logged it) */
        s->c->st.endpoints_refused++;
}

/* ---- client sessions ---- */

static void client_refuse_code(struct session *s, int code, const char *text)
{
    vnet__sess_hs_abort(&s->t.codec);
    vnet_log(VNET_LOG_WARN, "controller", "api client refused: %s", text);
    s->c->st.sessions_closed_bad++;
    session_fail(s, code, text);
}

static void client_refuse(struct session *s, const char *text)
{
    client_refuse_code(s, VNET_EACCES, text);
}

/* A TCP client of a controller with a key: the handshake proves we hold our key; the API
 * token sealed behind it, bound to the client's throwaway static key, says who it is. On
 * success the handshake is ready to split and @out holds WELCOME.auth; on failure the
 * session has been failed with the reason. */
static int authenticate_client(struct session *s, const struct vnet_msg_hello *h,
                               struct vnet_msg_welcome *w)
{
    struct vnet_controller *c = s->c;
    uint8_t claimed[VNET_KEY_LEN], bound[VNET_KEY_LEN], raw[VNET_API_TOKEN_LEN];
    uint8_t hash[VNET_TOKEN_HASH_BYTES];
    struct vnet_subscriber sub;
    char text[VNET_MSG_TEXT_MAX];
    if (h->auth_len < VNET_HS_HELLO_LEN) {
        client_refuse(s, "authentication required: this controller's API needs its public key and "
                         "an API token (vnetctl --controller-key KEY --token-file FILE)");
        return VNET_EACCES;
    }
    int rc = vnet__sess_read_hello(&s->t.codec, &c->key, h, claimed, NULL);
    if (rc) {
        snprintf(text, sizeof(text),
                 "handshake failed (%s): wrong controller key or tampered hello",
                 vnet_strerror(rc));
        /* Its own code, so that the client can say its pinned key is wrong: nothing secret
         * (the client chose the key it pinned), and no token has been looked at yet. */
        client_refuse_code(s, VNET_EKEYREJECTED, text);
        return VNET_EACCES;
    }
    uint32_t extra = h->auth_len - VNET_HS_HELLO_LEN;
    if (extra == 0) {
        client_refuse(s, "no API token: give one (vnetctl --token-file FILE or VNET_TOKEN)");
        return VNET_EACCES;
    }
    rc =
        vnet_api_token_open(c->key.pub, c->key.sec, h->auth + VNET_HS_HELLO_LEN, extra, raw, bound);
    if (rc) {
        client_refuse(s, "API token unreadable");
        return VNET_EACCES;
    }
    if (sodium_memcmp(bound, claimed, VNET_KEY_LEN) != 0) {
        sodium_memzero(raw, sizeof(raw));
        client_refuse(s, "API token not bound to this handshake");
        return VNET_EACCES;
    }
    vnet_token_hash(raw, sizeof(raw), hash);
    sodium_memzero(raw, sizeof(raw));
    rc = vnet_store_subscriber_by_token(c->store, hash, &sub);
    if (rc) {
        client_refuse(s, rc == VNET_ENOENT ? "unknown API token" : "cannot check the API token");
        return VNET_EACCES;
    }
    rc = vnet__sess_accept(&s->t.codec, w);
    if (rc) {
        session_fail(s, VNET_EIO, "handshake failed");
        return rc;
    }
    s->sub_id = sub.id;
    s->admin = sub.admin;
    snprintf(s->sub_name, sizeof(s->sub_name), "%s", sub.name);
    vnet_log(VNET_LOG_INFO, "controller", "api session of subscriber '%s'", sub.name);
    return 0;
}

static void handle_client_hello(struct session *s, const struct vnet_msg_hello *h)
{
    struct vnet_controller *c = s->c;
    struct vnet_msg w;
    welcome_init(&w);
    bool secure = !s->local && c->has_key;
    if (secure) {
        if (authenticate_client(s, h, &w.u.welcome) != 0)
            return;
    } else {
        /* The Unix socket's permissions, or an open API (no key: the program warns). */
        s->admin = true;
        s->sub_id = VNET_SUBSCRIBER_ADMIN;
        snprintf(s->sub_name, sizeof(s->sub_name), "admin");
    }
    s->kind = S_CLIENT;
    c->st.client_sessions++;
    preauth_leave(s);
    vnet__sess_uv_set_max(&s->t, 0);
    /* A client is a blocking program between requests (vnetctl, a script, the Python
     * binding's Client): it reads nothing while idle and answers no keepalive, so its silence
     * closes nothing and it is sent none. A client that is gone shows as a closed connection
     * (Unix socket) or through TCP keepalive (set at accept). */
    vnet__sess_uv_keepalive(&s->t, 0, false);
    if (send_msg(s, &w) != 0) { /* WELCOME itself goes out in the clear */
        vnet__sess_hs_abort(&s->t.codec);
        return;
    }
    if (secure && vnet__sess_secure(&s->t.codec) != 0)
        session_fail(s, VNET_EIO, "handshake failed");
}

/* Close the other authenticated sessions of subscriber @id (deleted, or its token replaced). */
static void drop_subscriber_sessions(struct vnet_controller *c, const struct session *except,
                                     uint64_t id, const char *why)
{
    for (struct session *o = c->sessions; o; o = o->next)
        if (o != except && o->kind == S_CLIENT && o->t.codec.secure && o->sub_id == id)
            session_fail(o, VNET_EACCES, why);
}

/* ---- subscriber requests (controller_api.c) ---- */

static void api_committed(void *arg, uint64_t network_id)
{
    struct session *s = arg;
    note_own_commit(s->c, network_id);
}

static struct session *node_session(struct vnet_controller *c, uint64_t node_id)
{
    for (struct session *s = c->sessions; s; s = s->next)
        if (s->kind == S_NODE && !s->t.closing && s->node_id == node_id)
            return s;
    return NULL;
}

static void api_node_gone(void *arg, uint64_t node_id, int code, const char *why)
{
    struct session *s = arg, *ns = node_session(s->c, node_id);
    if (ns)
        session_fail(ns, code, why);
}

static void api_subscriber_gone(void *arg, uint64_t sub_id, const char *why)
{
    struct session *s = arg;
    drop_subscriber_sessions(s->c, s, sub_id, why);
}

/* The node's last report, decoded into @st (nothing when it cannot be: it was checked on
 * arrival, so only memory can fail). */
static void status_report(struct vnet_node_status *st, const uint8_t *report, uint32_t len,
                          uint64_t at_ms)
{
    if (!report || vnet_report_decode(report, len, &st->report, NULL, 0) != 0)
        return;
    uint64_t now = unix_ms();
    st->has_report = true;
    st->report_age_ms = now > at_ms ? now - at_ms : 0;
}

static void api_node_status(void *arg, struct vnet_node_status *st)
{
    struct session *s = arg, *ns = node_session(s->c, st->node.id);
    struct acked *a = find_ack(s->c, st->node.id, false);
    if (ns) {
        st->connected = 1;
        st->acked = ns->acked_rev;
        st->connected_since_ms = ns->since_unix_ms;
        st->last_seen_ms = ns->last_rx_ms;
        st->session_from = (struct vnet_endpoint){ns->peer_ip, ns->peer_port};
    } else if (a) {
        st->acked = a->rev;
        st->last_seen_ms = a->last_seen_ms;
        st->session_from = a->from;
    }
    if (ns && ns->report)
        status_report(st, ns->report, ns->report_len, ns->report_at_ms);
    else if (a)
        status_report(st, a->report, a->report_len, a->report_at_ms);
}

static void handle_request(struct session *s, const struct vnet_msg_request *q)
{
    struct vnet_controller *c = s->c;
    struct vnet__api_env env = {
        .store = c->store,
        .key = c->has_key ? &c->key : NULL,
        .committed = api_committed,
        .node_gone = api_node_gone,
        .subscriber_gone = api_subscriber_gone,
        .node_status = api_node_status,
        .arg = s,
    };
    struct vnet__api_caller who = {.admin = s->admin, .sub_id = s->sub_id};
    struct vnet_msg m;
    c->st.requests++;
    uint64_t t0 = vnet__mono_ns();
    int rc = vnet__api_handle(&env, &who, q, &m);
    vnet__ctl_request_done(&c->m, (int)q->op, rc, vnet__mono_ns() - t0);
    if (rc != 0)
        c->st.errors++;
    send_msg(s, &m);
    vnet_msg_free(&m);
}

/* ---- input ---- */

static bool is_loopback(const struct vnet_ip *ip)
{
    static const uint8_t v6_lo[16] = {[15] = 1};
    static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (ip->family == VNET_AF_INET)
        return ip->addr[0] == 127;
    if (ip->family == VNET_AF_INET6)
        return memcmp(ip->addr, v6_lo, 16) == 0 ||
               (memcmp(ip->addr, v4_mapped, 12) == 0 && ip->addr[12] == 127);
    return false;
}

/* A HELLO of a role this listener does not serve. */
static void role_refuse(struct session *s, const char *text)
{
    char addr[VNET_IP_STRLEN] = "?";
    vnet_ip_format(&s->peer_ip, addr, sizeof(addr));
    vnet_log(VNET_LOG_WARN, "controller", "refused a session from %s: %s", addr, text);
    s->c->st.sessions_closed_bad++;
    session_fail(s, VNET_EACCES, text);
}

/* A node's REPORT: kept as it came (memory only) once it decodes; one that does not is
 * counted and dropped, the session stays (a node with a bug must not reconnect in a loop). */
static void handle_report(struct session *s, const struct vnet_msg_report *m)
{
    struct vnet_controller *c = s->c;
    struct vnet_report r;
    char err[128];
    if (vnet_report_decode(m->body, m->len, &r, err, sizeof(err)) != 0) {
        c->st.reports_dropped++;
        if (!s->report_bad_logged) { /* once per session */
            s->report_bad_logged = true;
            vnet_log(VNET_LOG_WARN, "controller", "node %llu: report dropped: %s",
                     (unsigned long long)s->node_id, err);
        }
        return;
    }
    vnet_report_free(&r);
    uint8_t *copy = realloc(s->report, m->len ? m->len : 1);
    if (!copy) {
        c->st.reports_dropped++;
        return;
    }
    if (m->len)
        memcpy(copy, m->body, m->len);
    s->report = copy;
    s->report_len = m->len;
    s->report_at_ms = unix_ms();
    c->st.reports++;
}

static void on_sess_msg(struct vnet__sess_uv *t, const struct vnet_msg *m)
{
    struct session *s = t->data;
    if (s->kind == S_NODE)
        s->last_rx_ms = unix_ms();
    if (s->kind == S_NEW) {
        if (m->type != VNET_MSG_HELLO) {
            session_fail(s, VNET_EPROTO, "the first message must be hello");
        } else if (m->u.hello.version != VNET_PROTO_VERSION) {
            session_fail(s, VNET_EVERSION, "unsupported protocol version");
        } else if (m->u.hello.role == VNET_ROLE_NODE) {
            if (s->lis == L_NODE)
                handle_node_hello(s, &m->u.hello);
            else
                role_refuse(s, "this address serves API clients only: nodes connect to the "
                               "controller's --listen address");
        } else if (m->u.hello.role == VNET_ROLE_CLIENT) {
            if (s->lis == L_NODE)
                role_refuse(s, "this address serves nodes only: the API is served where the "
                               "controller's --api or --socket say");
            else if (s->lis == L_API && !s->c->has_key && !is_loopback(&s->peer_ip))
                role_refuse(s, "this controller has no key: its API serves loopback clients "
                               "only");
            else
                handle_client_hello(s, &m->u.hello);
        } else {
            session_fail(s, VNET_EPROTO, "unknown role");
        }
    } else if (m->type == VNET_MSG_KEEPALIVE) {
        /* the transport noted the traffic */
    } else if (s->kind == S_NODE && m->type == VNET_MSG_ACK) {
        /* Kept in the session; remembered in the controller's table when it closes. */
        if (m->u.ack.revision > s->acked_rev && m->u.ack.revision <= s->sent_rev)
            s->acked_rev = m->u.ack.revision;
    } else if (s->kind == S_NODE && m->type == VNET_MSG_ENDPOINT) {
        handle_endpoint(s, &m->u.endpoint);
    } else if (s->kind == S_NODE && m->type == VNET_MSG_REPORT) {
        handle_report(s, &m->u.report);
    } else if (s->kind == S_CLIENT && m->type == VNET_MSG_REQUEST) {
        handle_request(s, &m->u.request);
    } else if (m->type == VNET_MSG_ERROR) {
        vnet_log(VNET_LOG_INFO, "controller", "peer error %d: %s", m->u.error.code,
                 m->u.error.text);
        session_close(s);
    } else {
        session_fail(s, VNET_EPROTO, "unexpected message");
    }
}

/* The connection failed: say why where the peer can still hear it. */
static void on_sess_down(struct vnet__sess_uv *t, int code, const char *why)
{
    struct session *s = t->data;
    struct vnet_controller *c = s->c;
    switch (code) {
    case VNET_EIO: /* closed or reset by the peer */
        session_close(s);
        return;
    case VNET_ETIMEDOUT:
        if (s->preauth) {
            c->st.preauth_timed_out++;
            vnet_log(VNET_LOG_DEBUG, "controller", "unauthenticated session: %s: closed", why);
            session_close(s);
            return;
        }
        c->st.sessions_closed_dead++;
        vnet_log(VNET_LOG_INFO, "controller", "session %s: closed", why);
        session_close(s);
        return;
    case VNET_EACCES: /* a sealed frame does not authenticate: nothing more is said */
        if (s->kind == S_CLIENT)
            vnet_log(VNET_LOG_WARN, "controller",
                     "session of subscriber '%s': a frame does not authenticate: closed",
                     s->sub_name);
        else
            vnet_log(VNET_LOG_WARN, "controller",
                     "session of node %llu: a frame does not authenticate: closed",
                     (unsigned long long)s->node_id);
        c->st.sessions_closed_bad++;
        session_close(s);
        return;
    case VNET_ENOMEM:
        session_fail(s, VNET_ENOMEM, why);
        return;
    default: /* over the size limit, or malformed */
        c->st.sessions_closed_bad++;
        session_fail(s, code == VNET_EMSGSIZE ? VNET_EMSGSIZE : VNET_EPROTO, why);
    }
}

/* Output drained: a session that fell behind gets its snapshot now. */
static void on_sess_drained(struct vnet__sess_uv *t)
{
    struct session *s = t->data;
    if (s->need_snapshot) {
        s->need_snapshot = false;
        send_snapshot(s);
    }
}

static const struct vnet__sess_uv_cbs sess_cbs = {
    .on_msg = on_sess_msg,
    .on_down = on_sess_down,
    .on_drained = on_sess_drained,
    .on_closed = on_sess_closed,
};

/* A TCP connection past the caps on unauthenticated ones: say so once per episode (a flood
 * would otherwise log a line per connection; the count is in the stats). */
static bool preauth_over_cap(struct vnet_controller *c, const struct session *s)
{
    uint32_t total = 0, same = 0;
    for (const struct session *o = c->preauth; o; o = o->pa_next) {
        if (o->local || o == s)
            continue;
        total++;
        if (vnet_ip_eq(&o->peer_ip, &s->peer_ip))
            same++;
    }
    if (total < c->preauth_max && same < c->preauth_per_ip) {
        if (total < c->preauth_max / 2)
            c->preauth_full_logged = false;
        return false;
    }
    c->st.preauth_refused++;
    if (!c->preauth_full_logged) {
        char addr[VNET_IP_STRLEN] = "?";
        vnet_ip_format(&s->peer_ip, addr, sizeof(addr));
        vnet_log(VNET_LOG_WARN, "controller",
                 "refusing connections: %u unauthenticated open (cap %u), %u from %s (cap %u)",
                 total, c->preauth_max, same, addr, c->preauth_per_ip);
        c->preauth_full_logged = true;
    }
    return true;
}

static void on_connection(uv_stream_t *lis, int status)
{
    struct vnet_controller *c = lis->data;
    if (status < 0)
        return;
    struct session *s = calloc(1, sizeof(*s));
    if (!s)
        return;
    s->c = c;
    s->local = lis->type == UV_NAMED_PIPE;
    s->lis = s->local ? L_UNIX : lis == (uv_stream_t *)&c->node_lis.tcp ? L_NODE : L_API;
    if (vnet__sess_uv_init(&s->t, c->loop, s->local, c->preauth_frame_max, c->rxbuf,
                           sizeof(c->rxbuf), &sess_cbs, s) != 0) {
        free(s);
        return;
    }
    s->next = c->sessions;
    if (c->sessions)
        c->sessions->prev = s;
    c->sessions = s;
    s->preauth = true;
    s->pa_next = c->preauth;
    if (c->preauth)
        c->preauth->pa_prev = s;
    c->preauth = s;
    c->st.preauth_sessions++;
    if (uv_accept(lis, &s->t.h.stream) != 0) {
        session_close(s);
        return;
    }
    if (lis->type == UV_TCP) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        struct vnet_endpoint ep;
        uv_tcp_nodelay(&s->t.h.tcp, 1);
        uv_tcp_keepalive(&s->t.h.tcp, 1, TCP_KEEPALIVE_S);
        if (uv_tcp_getpeername(&s->t.h.tcp, (struct sockaddr *)&ss, &len) == 0 &&
            vnet_endpoint_from_sockaddr((struct sockaddr *)&ss, &ep) == 0) {
            s->peer_ip = ep.ip;
            s->peer_port = ep.port;
        }
        if (preauth_over_cap(c, s)) {
            session_close(s);
            return;
        }
    }
    if (vnet__sess_uv_start(&s->t) != 0) {
        session_close(s);
        return;
    }
    /* Until its hello is let in, a new session has a deadline that nothing extends. */
    vnet__sess_uv_deadline(&s->t, c->hs_timeout_ms);
}

/* ---- setup ---- */

/* "IP:PORT", "[IPv6]:PORT" or "HOST:PORT" (resolved now: its first IPv4 address, else its
 * first IPv6 one), port 0 allowed (any free port). */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
    struct vnet_endpoint ep;
    if (vnet_endpoint_resolve(s, VNET_RESOLVE_PORT0, &ep, 1, NULL, 0) < 1)
        return VNET_EINVAL;
    return vnet_endpoint_to_sockaddr(&ep, ss) < 0 ? VNET_EINVAL : 0;
}

static int listen_tcp(struct vnet_controller *c, uv_tcp_t *t, const char *addr)
{
    struct sockaddr_storage ss;
    int rc = parse_listen(addr, &ss);
    if (rc)
        return rc;
    rc = uv_tcp_init(c->loop, t);
    if (rc)
        return rc;
    t->data = c;
    if ((rc = uv_tcp_bind(t, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)t, 1024, on_connection)) != 0) {
        vnet_log(VNET_LOG_ERROR, "controller", "listen %s: %s", addr, uv_strerror(rc));
        return rc;
    }
    return 0;
}

static int listen_unix(struct vnet_controller *c, const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* a stale socket of an earlier run */
    int rc = uv_pipe_init(c->loop, &c->unix_lis, 0);
    if (rc)
        return rc;
    c->has_unix_lis = true;
    c->unix_lis.data = c;
    mode_t old = umask(0177); /* the socket is for the admin: 0600 */
    rc = uv_pipe_bind(&c->unix_lis, path);
    umask(old);
    if (rc || (rc = uv_listen((uv_stream_t *)&c->unix_lis, 128, on_connection)) != 0) {
        vnet_log(VNET_LOG_ERROR, "controller", "listen %s: %s", path, uv_strerror(rc));
        return rc;
    }
    c->unix_path = strdup(path);
    return 0;
}

int vnet_controller_create(const struct vnet_controller_cfg *cfg, struct vnet_controller **out)
{
    if (!cfg || !out || !cfg->loop || !cfg->store)
        return VNET_EINVAL;
    /* Bad addresses are refused before any handle exists: the error path below closes the
     * listeners it believes it has, and an uninitialised one aborts in uv_close(). */
    struct sockaddr_storage ss;
    if ((cfg->node_listen && parse_listen(cfg->node_listen, &ss) != 0) ||
        (cfg->api_listen && parse_listen(cfg->api_listen, &ss) != 0))
        return VNET_EINVAL;
    struct vnet_controller *c = calloc(1, sizeof(*c));
    if (!c)
        return VNET_ENOMEM;
    c->loop = cfg->loop;
    c->store = cfg->store;
    c->keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : 5000;
    c->poll_ms = cfg->poll_store_ms ? cfg->poll_store_ms : 500;
    c->report_ms = cfg->report_ms == UINT32_MAX ? 0 : cfg->report_ms ? cfg->report_ms : 10000;
    c->queue_max = cfg->session_queue_max ? cfg->session_queue_max : (4u << 20);
    c->preauth_frame_max = cfg->preauth_frame_max ? cfg->preauth_frame_max : (64u << 10);
    c->hs_timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : 10000;
    c->preauth_max = cfg->preauth_max ? cfg->preauth_max : 256;
    c->preauth_per_ip = cfg->preauth_per_ip ? cfg->preauth_per_ip : 16;
    if (cfg->key) {
        c->key = *cfg->key;
        c->has_key = true;
    }
    vnet_store_last_change(c->store, &c->last_change);
    int rc = 0;
    uv_check_init(c->loop, &c->check);
    c->check.data = c;
    uv_check_start(&c->check, on_check);
    uv_timer_init(c->loop, &c->poller);
    c->poller.data = c;
    if (c->poll_ms != UINT32_MAX)
        uv_timer_start(&c->poller, on_poll_store, c->poll_ms, c->poll_ms);
    if (cfg->node_listen) {
        c->has_node_lis = true;
        rc = listen_tcp(c, &c->node_lis.tcp, cfg->node_listen);
    }
    if (!rc && cfg->api_listen) {
        c->has_api_lis = true;
        rc = listen_tcp(c, &c->api_lis.tcp, cfg->api_listen);
    }
    if (!rc && cfg->api_socket)
        rc = listen_unix(c, cfg->api_socket);
    if (rc) {
        vnet_controller_destroy(c);
        return rc < 0 ? rc : VNET_EINVAL;
    }
    *out = c;
    return 0;
}

void vnet_controller_destroy(struct vnet_controller *c)
{
    if (!c || c->destroying)
        return;
    c->destroying = true;
    for (struct session *s = c->sessions; s; s = s->next)
        session_close(s);
    close_handle(c, (uv_handle_t *)&c->check);
    close_handle(c, (uv_handle_t *)&c->poller);
    if (c->has_node_lis)
        close_handle(c, &c->node_lis.handle);
    if (c->has_api_lis)
        close_handle(c, &c->api_lis.handle);
    if (c->has_unix_lis) {
        close_handle(c, (uv_handle_t *)&c->unix_lis);
        if (c->unix_path)
            unlink(c->unix_path);
    }
    maybe_free(c);
}

static int port_of(const uv_tcp_t *t)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    struct vnet_endpoint ep;
    if (uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len) != 0 ||
        vnet_endpoint_from_sockaddr((struct sockaddr *)&ss, &ep) != 0)
        return 0;
    return ep.port;
}

int vnet_controller_node_port(const struct vnet_controller *c)
{
    return c->has_node_lis ? port_of(&c->node_lis.tcp) : 0;
}

int vnet_controller_api_port(const struct vnet_controller *c)
{
    return c->has_api_lis ? port_of(&c->api_lis.tcp) : 0;
}

int vnet_controller_set_keepalive(struct vnet_controller *c, uint32_t ms)
{
    if (!c || ms < 10 || ms > 3600000)
        return VNET_EINVAL;
    c->keepalive_ms = ms;
    for (struct session *s = c->sessions; s; s = s->next)
        if (s->t.ka_send) /* a welcomed node session (API clients and the handshake: not) */
            vnet__sess_uv_keepalive(&s->t, ms, true);
    return 0;
}

void vnet_controller_get_stats(const struct vnet_controller *c, struct vnet_controller_stats *out)
{
    *out = c->st;
}

/* ---- for /metrics (metrics_int.h) ---- */

void vnet__ctl_request_done(struct vnet__ctl_metrics *m, int op, int rc, uint64_t ns)
{
    if (op > 0 && op < VNET__REQ_OPS)
        m->requests[op][rc != 0]++;
    vnet__hist_observe(&m->store[VNET__STORE_REQUEST], ns);
}

const struct vnet__ctl_metrics *vnet__controller_metrics(const struct vnet_controller *c)
{
    return &c->m;
}

struct vnet_store *vnet__controller_store(const struct vnet_controller *c)
{
    return c->store;
}

void vnet__controller_node_acked(const struct vnet_controller *c, uint64_t node_id, bool *connected,
                                 uint64_t *acked)
{
    struct vnet_controller *cc = (struct vnet_controller *)c; /* lookups only */
    struct session *ns = node_session(cc, node_id);
    struct acked *a = find_ack(cc, node_id, false);
    *connected = ns != NULL;
    *acked = ns ? ns->acked_rev : a ? a->rev : 0;
}

void vnet__controller_node_sessions(const struct vnet_controller *c, uint64_t *n,
                                    uint64_t *need_snapshot)
{
    *n = *need_snapshot = 0;
    for (const struct session *s = c->sessions; s; s = s->next)
        if (s->kind == S_NODE && !s->t.closing) {
            (*n)++;
            *need_snapshot += s->need_snapshot;
        }
}
