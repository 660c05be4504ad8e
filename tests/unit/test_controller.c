/* Unit tests of the controller: a real controller on a real SQLite store, run on a libuv loop
 * in a second thread, driven only over sockets, as node daemons and clients drive it.
 *
 * The test thread speaks the node protocol itself on raw TCP sockets (vnet_msg_encode/decode
 * and a frame reader), so it can do what a real agent never does: stay silent, stop reading,
 * send garbage. Requests go through the blocking client API. The loop thread is touched only
 * through a uv_async: to read the controller's statistics and, at the end, to destroy it and
 * let uv_run return. Waits are poll() on sockets with bounded timeouts, never sleeps.
 *
 * Each test starts its own controller with its own store file in a directory made by main()
 * under /tmp and removed at the end. */
#include "../../libvnet/session_int.h"
#include "metrics_check.h"
#include "vnet/metrics.h"
#include "vnet/client.h"
#include "vnet/controller.h"
#include "vnet/crypto.h"
#include "vnet/datapath.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/proto.h"
#include "vnet/store.h"
#include "vnet/token.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdarg.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define WAIT_MS 3000 /* for anything the controller should do at once */

static char tmpdir[PATH_MAX];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the controller on its loop thread ---- */

/* The one refusal a node's HELLO gets before it is authenticated, whatever the reason. */
#define NODE_REFUSED "refused: unknown network or node, or authentication failed"

struct ctl_opts {
    uint32_t keepalive_ms;
    size_t queue_max;
    uint32_t retention;
    uint32_t poll_store_ms; /* 0: never (the tests commit through the controller) */
    bool unix_socket;
    const struct vnet_keypair *key; /* the controller's key (NULL: none) */
    uint32_t handshake_timeout_ms, preauth_max, preauth_per_ip; /* 0: the library's */
};

static struct ctl {
    char db[PATH_MAX + 64];
    char sock[PATH_MAX + 64];
    char api[64];
    int node_port, api_port;
    struct vnet_store *store; /* the loop thread's once the thread runs */
    struct vnet_controller *c;
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*fn)(void *arg); /* run on the loop thread by on_wake */
    void *arg;
    bool done, stop;
} ctl;

static void on_wake(uv_async_t *a)
{
    (void)a;
    pthread_mutex_lock(&ctl.mu);
    if (ctl.fn) {
        ctl.fn(ctl.arg);
        ctl.fn = NULL;
        ctl.done = true;
        pthread_cond_broadcast(&ctl.cv);
    }
    bool stop = ctl.stop;
    pthread_mutex_unlock(&ctl.mu);
    if (stop && ctl.c) {
        vnet_controller_destroy(ctl.c);
        ctl.c = NULL;
        uv_close((uv_handle_t *)&ctl.wake, NULL);
    }
}

static void *loop_main(void *arg)
{
    (void)arg;
    uv_run(&ctl.loop, UV_RUN_DEFAULT);
    return NULL;
}

static void ctl_start(const struct ctl_opts *o)
{
    static int seq;
    memset(&ctl, 0, sizeof(ctl));
    snprintf(ctl.db, sizeof(ctl.db), "%s/ctl-%d-%d.db", tmpdir, (int)getpid(), seq);
    snprintf(ctl.sock, sizeof(ctl.sock), "%s/api-%d-%d.sock", tmpdir, (int)getpid(), seq);
    seq++;
    struct vnet_store_opts so = {o->retention, 0, false};
    char err[256] = "";
    int rc = vnet_store_open(ctl.db, &so, &ctl.store, err, sizeof(err));
    ck_assert_msg(rc == 0, "store open: %s (%s)", vnet_err_name(rc), err);

    pthread_mutex_init(&ctl.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ctl.cv, &ca);
    pthread_condattr_destroy(&ca);
    ck_assert_int_eq(uv_loop_init(&ctl.loop), 0);
    ck_assert_int_eq(uv_async_init(&ctl.loop, &ctl.wake, on_wake), 0);

    struct vnet_controller_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.loop = &ctl.loop;
    cfg.store = ctl.store;
    cfg.node_listen = "127.0.0.1:0";
    cfg.api_listen = "127.0.0.1:0";
    cfg.api_socket = o->unix_socket ? ctl.sock : NULL;
    cfg.keepalive_ms = o->keepalive_ms;
    cfg.session_queue_max = o->queue_max;
    cfg.poll_store_ms = o->poll_store_ms ? o->poll_store_ms : UINT32_MAX;
    cfg.key = o->key;
    cfg.handshake_timeout_ms = o->handshake_timeout_ms;
    cfg.preauth_max = o->preauth_max;
    cfg.preauth_per_ip = o->preauth_per_ip;
    rc = vnet_controller_create(&cfg, &ctl.c);
    ck_assert_msg(rc == 0, "controller create: %s", vnet_err_name(rc));
    /* The loop does not run yet: reading the ports here is on "the loop's thread". */
    ctl.node_port = vnet_controller_node_port(ctl.c);
    ctl.api_port = vnet_controller_api_port(ctl.c);
    ck_assert_int_gt(ctl.node_port, 0);
    ck_assert_int_gt(ctl.api_port, 0);
    ck_assert_int_ne(ctl.node_port, ctl.api_port);
    snprintf(ctl.api, sizeof(ctl.api), "127.0.0.1:%d", ctl.api_port);
    ck_assert_int_eq(pthread_create(&ctl.thread, NULL, loop_main, NULL), 0);
    ctl.running = true;
}

/* Run @fn(@arg) on the loop thread and wait for it. */
static void ctl_call(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&ctl.mu);
    ctl.fn = fn;
    ctl.arg = arg;
    ctl.done = false;
    pthread_mutex_unlock(&ctl.mu);
    ck_assert_int_eq(uv_async_send(&ctl.wake), 0);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&ctl.mu);
    while (!ctl.done)
        if (pthread_cond_timedwait(&ctl.cv, &ctl.mu, &ts) == ETIMEDOUT)
            break;
    bool done = ctl.done;
    pthread_mutex_unlock(&ctl.mu);
    ck_assert_msg(done, "the loop thread did not answer");
}

static void get_stats_fn(void *arg)
{
    vnet_controller_get_stats(ctl.c, arg);
}

static struct vnet_controller_stats stats(void)
{
    struct vnet_controller_stats st;
    memset(&st, 0, sizeof(st));
    ctl_call(get_stats_fn, &st);
    return st;
}

/* Destroy the controller on its thread, let uv_run return, and check nothing was left on the
 * loop (every handle the controller made is closed). */
static void ctl_stop(void)
{
    if (!ctl.running)
        return;
    ctl.running = false;
    pthread_mutex_lock(&ctl.mu);
    ctl.stop = true;
    pthread_mutex_unlock(&ctl.mu);
    ck_assert_int_eq(uv_async_send(&ctl.wake), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    int rc = pthread_timedjoin_np(ctl.thread, NULL, &ts);
    ck_assert_msg(rc == 0, "the loop did not return after vnet_controller_destroy");
    ck_assert_int_eq(uv_loop_close(&ctl.loop), 0);
    vnet_store_close(ctl.store);
    ctl.store = NULL;
    pthread_cond_destroy(&ctl.cv);
    pthread_mutex_destroy(&ctl.mu);
}

static void teardown(void)
{
    ctl_stop();
}

/* ---- subscriber requests ---- */

static struct vnet_client *cl_open(const char *addr)
{
    struct vnet_client *cl = NULL;
    char err[256] = "";
    int rc = vnet_client_connect(addr, WAIT_MS, &cl, err, sizeof(err));
    ck_assert_msg(rc == 0, "client connect %s: %s (%s)", addr, vnet_err_name(rc), err);
    return cl;
}

static struct vnet_msg_request rq(enum vnet_req_op op, const char *network, const char *node)
{
    struct vnet_msg_request q;
    memset(&q, 0, sizeof(q));
    q.op = op;
    if (network)
        snprintf(q.network, sizeof(q.network), "%s", network);
    if (node)
        snprintf(q.node, sizeof(q.node), "%s", node);
    return q;
}

/* Send @q; the transport must work. Returns the reply's code; *r holds the reply (free it). */
static int request(struct vnet_client *cl, const struct vnet_msg_request *q, struct vnet_msg *r)
{
    char err[256] = "";
    memset(r, 0, sizeof(*r));
    int rc = vnet_client_request(cl, q, r, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s: transport error %s (%s)", vnet_req_op_name(q->op),
                  vnet_err_name(rc), err);
    ck_assert_int_eq(r->type, VNET_MSG_REPLY);
    return r->u.reply.code;
}

/* A request that must succeed; the reply is freed. */
static void request_ok(struct vnet_client *cl, const struct vnet_msg_request *q)
{
    struct vnet_msg r;
    int code = request(cl, q, &r);
    ck_assert_msg(code == 0, "%s: %s (%s)", vnet_req_op_name(q->op), vnet_err_name(code),
                  r.u.reply.text);
    vnet_msg_free(&r);
}

static struct vnet_network net_create(struct vnet_client *cl, const char *name, uint32_t vni,
                                      const char *subnet4)
{
    struct vnet_msg_request q = rq(VNET_REQ_NETWORK_CREATE, name, NULL);
    if (vni) {
        q.has |= VNET_REQ_HAS_VNI;
        q.vni = vni;
    }
    if (subnet4) {
        q.has |= VNET_REQ_HAS_SUBNET4;
        ck_assert_int_eq(vnet_prefix_parse(subnet4, &q.subnet4), 0);
    }
    struct vnet_msg r;
    int code = request(cl, &q, &r);
    ck_assert_msg(code == 0, "network create %s: %s (%s)", name, vnet_err_name(code),
                  r.u.reply.text);
    ck_assert_uint_eq(r.u.reply.nnetworks, 1);
    struct vnet_network n = r.u.reply.networks[0];
    vnet_msg_free(&r);
    ck_assert_str_eq(n.name, name);
    return n;
}

static struct vnet_node_info node_add(struct vnet_client *cl, const char *net, const char *name)
{
    struct vnet_msg_request q = rq(VNET_REQ_NODE_ADD, net, name);
    struct vnet_msg r;
    int code = request(cl, &q, &r);
    ck_assert_msg(code == 0, "node add %s/%s: %s (%s)", net, name, vnet_err_name(code),
                  r.u.reply.text);
    ck_assert_uint_eq(r.u.reply.nnodes, 1);
    struct vnet_node_info n = r.u.reply.nodes[0];
    vnet_msg_free(&r);
    ck_assert_str_eq(n.name, name);
    return n;
}

/* The status of @node in @net (its row must exist). */
static struct vnet_node_status node_status(struct vnet_client *cl, const char *net,
                                           const char *node, uint64_t *net_revision)
{
    struct vnet_msg_request q = rq(VNET_REQ_NETWORK_STATUS, net, NULL);
    struct vnet_msg r;
    int code = request(cl, &q, &r);
    ck_assert_msg(code == 0, "network status %s: %s", net, r.u.reply.text);
    ck_assert_uint_eq(r.u.reply.nnetworks, 1);
    if (net_revision)
        *net_revision = r.u.reply.networks[0].revision;
    struct vnet_node_status st;
    bool found = false;
    for (uint32_t i = 0; i < r.u.reply.nstatus; i++) {
        if (strcmp(r.u.reply.status[i].node.name, node) == 0) {
            st = r.u.reply.status[i];
            found = true;
        }
    }
    vnet_msg_free(&r);
    ck_assert_msg(found, "no status row for %s", node);
    return st;
}

/* ---- raw sessions ---- */

struct peer {
    int fd;
    struct vnet_frame_reader rd;
    bool answer_keepalives; /* reply to each keepalive (a live agent) */
    unsigned keepalives;    /* received */
    size_t last_len;        /* the last frame's size, prefix included */
};

enum { R_TIMEOUT = -1, R_EOF = 0, R_MSG = 1 };

/* Connect to @port on 127.0.0.1 from source address @src (NULL: any). */
static void peer_open_src(struct peer *p, int port, int rcvbuf, const char *src)
{
    memset(p, 0, sizeof(*p));
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(p->fd, 0);
    if (src) {
        struct sockaddr_in me = {.sin_family = AF_INET};
        ck_assert_int_eq(inet_pton(AF_INET, src, &me.sin_addr), 1);
        ck_assert_int_eq(bind(p->fd, (struct sockaddr *)&me, sizeof(me)), 0);
    }
    if (rcvbuf) /* before connect, so the window is small from the start */
        ck_assert_int_eq(setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    struct timeval tv = {WAIT_MS / 1000, 0}; /* bounds a blocking send */
    setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
                  strerror(errno));
    vnet_frame_reader_init(&p->rd, 0);
}

static void peer_open_port(struct peer *p, int port, int rcvbuf)
{
    peer_open_src(p, port, rcvbuf, NULL);
}

static void peer_open(struct peer *p, int rcvbuf)
{
    peer_open_port(p, ctl.node_port, rcvbuf);
}

static void peer_close(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    vnet_frame_reader_free(&p->rd);
}

static void peer_send_raw(struct peer *p, const void *data, size_t len)
{
    const uint8_t *d = data;
    while (len > 0) {
        ssize_t w = send(p->fd, d, len, MSG_NOSIGNAL);
        ck_assert_msg(w > 0, "send: %s", strerror(errno));
        d += w;
        len -= (size_t)w;
    }
}

static void peer_send(struct peer *p, const struct vnet_msg *m)
{
    struct vnet_buf b = {0};
    ck_assert_int_eq(vnet_msg_encode(m, &b), 0);
    peer_send_raw(p, b.data, b.len);
    vnet_buf_free(&b);
}

static void peer_send_type(struct peer *p, enum vnet_msg_type t)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = t;
    peer_send(p, &m);
}

static void peer_ack(struct peer *p, uint64_t rev)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ACK;
    m.u.ack.revision = rev;
    peer_send(p, &m);
}

/* The next message other than a keepalive, within @timeout_ms (0: only what is there now). */
static int peer_recv(struct peer *p, struct vnet_msg *m, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        const uint8_t *body;
        size_t len;
        int rc = vnet_frame_reader_next(&p->rd, &body, &len);
        ck_assert_msg(rc >= 0, "frame from the controller over the limit");
        if (rc == 1) {
            char why[128] = "";
            rc = vnet_msg_decode(body, len, m, why, sizeof(why));
            ck_assert_msg(rc == 0, "undecodable message from the controller: %s", why);
            p->last_len = len + 4;
            if (m->type != VNET_MSG_KEEPALIVE)
                return R_MSG;
            vnet_msg_free(m);
            p->keepalives++;
            if (p->answer_keepalives)
                peer_send_type(p, VNET_MSG_KEEPALIVE);
            continue;
        }
        uint8_t buf[65536];
        ssize_t r = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0)
            return R_EOF;
        if (r < 0) {
            if (errno == ECONNRESET)
                return R_EOF;
            ck_assert_msg(errno == EAGAIN || errno == EINTR, "recv: %s", strerror(errno));
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return R_TIMEOUT;
            struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
            poll(&pfd, 1, (int)left);
            continue;
        }
        ck_assert_int_eq(vnet_frame_reader_feed(&p->rd, buf, (size_t)r), 0);
    }
}

static const char *describe(const struct vnet_msg *m)
{
    static char buf[VNET_MSG_TEXT_MAX + 64];
    if (m->type == VNET_MSG_ERROR)
        snprintf(buf, sizeof(buf), "error %s: %s", vnet_err_name(m->u.error.code), m->u.error.text);
    else
        snprintf(buf, sizeof(buf), "%s", vnet_msg_type_name(m->type));
    return buf;
}

/* The next message must be of type @t; *m holds it (free it). */
static void expect(struct peer *p, enum vnet_msg_type t, struct vnet_msg *m)
{
    int rc = peer_recv(p, m, WAIT_MS);
    ck_assert_msg(rc == R_MSG, "waiting for %s: %s", vnet_msg_type_name(t),
                  rc == R_EOF ? "connection closed" : "timed out");
    ck_assert_msg(m->type == t, "waiting for %s, got %s", vnet_msg_type_name(t), describe(m));
}

/* The next message must be ERROR @code, then the controller must close the connection. */
static void expect_error_close(struct peer *p, int code, const char *text_has)
{
    struct vnet_msg m;
    expect(p, VNET_MSG_ERROR, &m);
    ck_assert_msg(m.u.error.code == code, "error %s (%s), want %s", vnet_err_name(m.u.error.code),
                  m.u.error.text, vnet_err_name(code));
    if (text_has)
        ck_assert_msg(strstr(m.u.error.text, text_has), "error text '%s' lacks '%s'",
                      m.u.error.text, text_has);
    vnet_msg_free(&m);
    int rc = peer_recv(p, &m, WAIT_MS);
    if (rc == R_MSG)
        ck_abort_msg("after the error, %s instead of the close", describe(&m));
    ck_assert_msg(rc == R_EOF, "the controller did not close the connection");
}

static void hello_as(struct peer *p, enum vnet_role role, const char *net, const char *node,
                     uint64_t rev, uint32_t version)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = version;
    m.u.hello.role = role;
    snprintf(m.u.hello.network, sizeof(m.u.hello.network), "%s", net);
    snprintf(m.u.hello.node, sizeof(m.u.hello.node), "%s", node);
    m.u.hello.revision = rev;
    peer_send(p, &m);
}

static void hello(struct peer *p, const char *net, const char *node, uint64_t rev, uint32_t version)
{
    hello_as(p, VNET_ROLE_NODE, net, node, rev, version);
}

/* Connect as @node of @net holding @rev; the welcome must name them. */
static void node_connect(struct peer *p, int rcvbuf, const char *net, const char *node,
                         uint64_t rev, struct vnet_msg_welcome *out)
{
    peer_open(p, rcvbuf);
    hello(p, net, node, rev, VNET_PROTO_VERSION);
    struct vnet_msg m;
    expect(p, VNET_MSG_WELCOME, &m);
    ck_assert_str_eq(m.u.welcome.network.name, net);
    ck_assert_str_eq(m.u.welcome.node.name, node);
    ck_assert_uint_eq(m.u.welcome.version, VNET_PROTO_VERSION);
    if (out)
        *out = m.u.welcome;
    vnet_msg_free(&m);
}

/* What a session holds, built from what it received, with the protocol's rules checked. */
struct view {
    uint64_t rev;
    unsigned snapshots, deltas;
    size_t delta_bytes;
    uint32_t nnodes; /* in the last snapshot */
    bool snapshot_after_delta;
};

static void view_apply(struct view *v, const struct peer *p, const struct vnet_msg *m)
{
    if (m->type == VNET_MSG_SNAPSHOT) {
        ck_assert_uint_ge(m->u.snapshot.network.revision, v->rev);
        v->rev = m->u.snapshot.network.revision;
        v->nnodes = m->u.snapshot.nnodes;
        if (v->deltas)
            v->snapshot_after_delta = true;
        v->snapshots++;
    } else if (m->type == VNET_MSG_DELTA) {
        const struct vnet_msg_delta *d = &m->u.delta;
        ck_assert_msg(d->from == v->rev, "delta (%llu, %llu] to a session holding %llu",
                      (unsigned long long)d->from, (unsigned long long)d->to,
                      (unsigned long long)v->rev);
        ck_assert_uint_gt(d->nchanges, 0);
        ck_assert_uint_eq(d->changes[d->nchanges - 1].revision, d->to);
        for (uint32_t i = 0; i < d->nchanges; i++)
            ck_assert_uint_eq(d->changes[i].revision, d->from + 1 + i);
        v->rev = d->to;
        v->deltas++;
        v->delta_bytes += p->last_len;
    } else {
        ck_abort_msg("unexpected %s", describe(m));
    }
}

/* Read and apply until the session holds @rev. */
static void pump_until(struct peer *p, struct view *v, uint64_t rev, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (v->rev < rev) {
        struct vnet_msg m;
        int64_t left = deadline - now_ms();
        int rc = peer_recv(p, &m, left > 0 ? (int)left : 0);
        ck_assert_msg(rc == R_MSG, "session holds %llu, waiting for %llu: %s",
                      (unsigned long long)v->rev, (unsigned long long)rev,
                      rc == R_EOF ? "closed" : "timed out");
        view_apply(v, p, &m);
        vnet_msg_free(&m);
    }
    ck_assert_uint_eq(v->rev, rev);
}

/* The controller's end of the TCP connection whose other end is @fd: same process, so it is
 * in our fd table. Found by matching addresses; -1 when not there. */
static int controller_end(int fd)
{
    struct sockaddr_in me, peer;
    socklen_t l = sizeof(me);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &l), 0);
    l = sizeof(peer);
    ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&peer, &l), 0);
    for (int i = 0; i < 4096; i++) {
        struct sockaddr_in a, b;
        socklen_t la = sizeof(a), lb = sizeof(b);
        if (i == fd || getsockname(i, (struct sockaddr *)&a, &la) != 0 || a.sin_family != AF_INET ||
            getpeername(i, (struct sockaddr *)&b, &lb) != 0)
            continue;
        if (a.sin_port == peer.sin_port && b.sin_port == me.sin_port &&
            a.sin_addr.s_addr == peer.sin_addr.s_addr)
            return i;
    }
    return -1;
}

/* On loopback the kernel would take megabytes for a peer that does not read; a congested link
 * takes far less. Give the controller's end of @p the smallest send buffer, so the session's
 * own queue (the bound under test) is what fills. Only a socket option: the controller's
 * state is not touched. */
static void shrink_controller_sndbuf(const struct peer *p)
{
    int cfd = controller_end(p->fd);
    ck_assert_msg(cfd >= 0, "the controller's end of the session not found");
    int v = 1024; /* the kernel raises it to its minimum */
    ck_assert_int_eq(setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
}

/* A node name of the longest kind (63 bytes), so changes have some weight. */
static void long_name(char *buf, size_t len, int i)
{
    snprintf(buf, len, "n%04d-%.*s", i, VNET_NAME_MAX - 7,
             "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
}

static const struct ctl_opts defaults = {0, 0, 0, 0, false, NULL, 0, 0, 0};

/* ---- 1. a node session: welcome, snapshot, deltas, acknowledgements ---- */

START_TEST(t_node_session)
{
    ctl_start(&defaults);
    struct vnet_client *cl = cl_open(ctl.api);
    struct vnet_network net = net_create(cl, "blue", 100, "10.0.0.0/24");
    ck_assert_uint_eq(net.revision, 1);
    struct vnet_node_info a = node_add(cl, "blue", "a");
    struct vnet_node_info b = node_add(cl, "blue", "b");
    ck_assert_uint_eq(b.revision, 3);

    struct peer p;
    struct vnet_msg_welcome w;
    node_connect(&p, 0, "blue", "a", 0, &w);
    ck_assert_uint_eq(w.network.id, net.id);
    ck_assert_uint_eq(w.network.vni, 100);
    ck_assert_uint_eq(w.node.id, a.id);
    ck_assert(vnet_mac_eq(&w.node.mac, &a.mac));

    struct vnet_msg m;
    expect(&p, VNET_MSG_SNAPSHOT, &m);
    ck_assert_uint_eq(m.u.snapshot.network.revision, 3);
    ck_assert_uint_eq(m.u.snapshot.network.id, net.id);
    ck_assert_uint_eq(m.u.snapshot.nnodes, 2);
    ck_assert_str_eq(m.u.snapshot.nodes[0].name, "a");
    ck_assert_str_eq(m.u.snapshot.nodes[1].name, "b");
    ck_assert_uint_eq(m.u.snapshot.nodes[1].id, b.id);
    vnet_msg_free(&m);

    /* Before any ack: connected, acked 0; b has never connected. */
    struct vnet_node_status st = node_status(cl, "blue", "a", NULL);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_uint_gt(st.connected_since_ms, 0);
    st = node_status(cl, "blue", "b", NULL);
    ck_assert_uint_eq(st.connected, 0);
    ck_assert_uint_eq(st.acked, 0);

    struct vnet_node_info c = node_add(cl, "blue", "c");
    ck_assert_uint_eq(c.revision, 4);
    expect(&p, VNET_MSG_DELTA, &m);
    ck_assert_uint_eq(m.u.delta.from, 3);
    ck_assert_uint_eq(m.u.delta.to, 4);
    ck_assert_uint_eq(m.u.delta.nchanges, 1);
    ck_assert_int_eq(m.u.delta.changes[0].op, VNET_CHANGE_NODE_PUT);
    ck_assert_uint_eq(m.u.delta.changes[0].revision, 4);
    ck_assert_str_eq(m.u.delta.changes[0].node.name, "c");
    ck_assert_uint_eq(m.u.delta.changes[0].node.id, c.id);
    vnet_msg_free(&m);

    /* The ack travels on another connection than the status request: ask until it shows. */
    peer_ack(&p, 4);
    uint64_t rev = 0;
    int64_t deadline = now_ms() + WAIT_MS;
    do
        st = node_status(cl, "blue", "a", &rev);
    while (st.acked != 4 && now_ms() < deadline);
    ck_assert_uint_eq(st.acked, 4);
    ck_assert_uint_eq(rev, 4);
    ck_assert_uint_eq(st.acked, rev);
    ck_assert_uint_eq(st.connected, 1);

    /* An endpoint report with an unspecified address: the controller fills in the address it
     * sees the node at, and the change reaches the node itself as a delta. */
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ENDPOINT;
    ck_assert_int_eq(vnet_endpoint_parse("0.0.0.0:4789", &m.u.endpoint.ep), 0);
    peer_send(&p, &m);
    expect(&p, VNET_MSG_DELTA, &m);
    ck_assert_uint_eq(m.u.delta.from, 4);
    ck_assert_uint_eq(m.u.delta.to, 5);
    ck_assert_uint_eq(m.u.delta.changes[0].node.id, a.id);
    ck_assert_int_eq(m.u.delta.changes[0].node.state, VNET_NODE_ACTIVE);
    char ep[VNET_ENDPOINT_STRLEN];
    vnet_endpoint_format(&m.u.delta.changes[0].node.observed, ep, sizeof(ep));
    ck_assert_str_eq(ep, "127.0.0.1:4789");
    vnet_msg_free(&m);

    /* Gone: not connected, and the last ack is remembered. */
    peer_close(&p);
    deadline = now_ms() + WAIT_MS;
    do
        st = node_status(cl, "blue", "a", NULL);
    while (st.connected && now_ms() < deadline);
    ck_assert_uint_eq(st.connected, 0);
    ck_assert_uint_eq(st.acked, 4);
    ck_assert_uint_eq(st.connected_since_ms, 0);

    struct vnet_controller_stats cs = stats();
    ck_assert_uint_eq(cs.snapshots_sent, 1);
    ck_assert_uint_eq(cs.deltas_sent, 2);
    ck_assert_uint_eq(cs.node_sessions, 0);
    ck_assert_uint_eq(cs.client_sessions, 1);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* ---- /metrics: the controller's text ---- */

struct render {
    char *text;
    size_t len;
    int rc;
};

static void render_fn(void *arg)
{
    struct render *r = arg;
    r->rc = vnet_controller_metrics_write(ctl.c, &r->text, &r->len);
}

/* Render on the loop thread; the text must pass the format checker. */
static char *render_metrics(void)
{
    struct render r = {0};
    ctl_call(render_fn, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(strlen(r.text), r.len);
    const char *bad = metrics_check(r.text);
    ck_assert_msg(bad == NULL, "%s", bad);
    return r.text;
}

static double mval(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static double mval(const char *text, const char *fmt, ...)
{
    char series[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(series, sizeof(series), fmt, ap);
    va_end(ap);
    return metrics_value(text, series);
}

START_TEST(t_metrics)
{
    ctl_start(&defaults);
    struct vnet_client *cl = cl_open(ctl.api);
    struct vnet_network net = net_create(cl, "blue", 100, "10.0.0.0/24");
    node_add(cl, "blue", "a");
    node_add(cl, "blue", "b");
    struct vnet_msg_request q = rq(VNET_REQ_NETWORK_CREATE, "blue", NULL);
    struct vnet_msg r;
    ck_assert_int_ne(request(cl, &q, &r), 0); /* exists: an error */
    vnet_msg_free(&r);

    struct peer p;
    struct vnet_msg_welcome w;
    node_connect(&p, 0, "blue", "a", 0, &w);
    struct vnet_msg m;
    expect(&p, VNET_MSG_SNAPSHOT, &m);
    vnet_msg_free(&m);

    char *t = render_metrics();
    const char *id = "network=\"blue\",network_id";
    ck_assert(mval(t, "vnet_controller_requests_total{type=\"network.create\",result=\"ok\"}") ==
              1);
    ck_assert(mval(t, "vnet_controller_requests_total{type=\"network.create\",result=\"error\"}") ==
              1);
    ck_assert(mval(t, "vnet_controller_requests_total{type=\"node.add\",result=\"ok\"}") == 2);
    ck_assert(mval(t, "vnet_controller_store_duration_seconds_count{call=\"request\"}") == 4);
    ck_assert(mval(t, "vnet_controller_store_duration_seconds_count{call=\"snapshot\"}") == 1);
    ck_assert(mval(t, "vnet_controller_store_duration_seconds_count{call=\"hello\"}") == 1);
    ck_assert(mval(t, "vnet_controller_sessions{kind=\"node\",state=\"up\"}") == 1);
    ck_assert(mval(t, "vnet_controller_sessions{kind=\"client\",state=\"up\"}") == 1);
    ck_assert(mval(t, "vnet_controller_network_revision{%s=\"%llu\"}", id,
                   (unsigned long long)net.id) == 3);
    /* a is connected and has acknowledged nothing yet: 3 behind; b never connected. */
    ck_assert(mval(t, "vnet_controller_node_connected{%s=\"%llu\",node=\"a\"}", id,
                   (unsigned long long)net.id) == 1);
    ck_assert(mval(t, "vnet_controller_node_connected{%s=\"%llu\",node=\"b\"}", id,
                   (unsigned long long)net.id) == 0);
    ck_assert(mval(t, "vnet_controller_node_convergence_lag{%s=\"%llu\",node=\"a\"}", id,
                   (unsigned long long)net.id) == 3);
    vnet_metrics_free(t);

    /* Acknowledged: converged. */
    peer_ack(&p, 3);
    int64_t deadline = now_ms() + WAIT_MS;
    double lag;
    do {
        t = render_metrics();
        lag = mval(t, "vnet_controller_node_convergence_lag{%s=\"%llu\",node=\"a\"}", id,
                   (unsigned long long)net.id);
        vnet_metrics_free(t);
    } while (lag != 0 && now_ms() < deadline);
    ck_assert(lag == 0);
    peer_close(&p);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* ---- 2. reconnecting: a delta from the node's revision, or a snapshot ---- */

/* Send a REPORT whose body is @body (@len bytes). */
static void peer_report(struct peer *p, const uint8_t *body, size_t len)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_REPORT;
    m.u.report.body = (uint8_t *)body;
    m.u.report.len = (uint32_t)len;
    peer_send(p, &m);
}

/* Wait until the controller counted @reports kept and @dropped dropped reports. */
static void wait_reports(uint64_t reports, uint64_t dropped)
{
    int64_t end = now_ms() + WAIT_MS;
    struct vnet_controller_stats st = stats();
    while ((st.reports != reports || st.reports_dropped != dropped) && now_ms() < end) {
        usleep(10000);
        st = stats();
    }
    ck_assert_uint_eq(st.reports, reports);
    ck_assert_uint_eq(st.reports_dropped, dropped);
}

/* A node's REPORTs: the WELCOME says how often; a report that does not decode is counted and
 * dropped while the session stays; a good one shows in network status with the session's
 * address and last-seen time, and stays there after the node is gone. */
START_TEST(t_reports)
{
    ctl_start(&defaults);
    struct vnet_client *cl = cl_open(ctl.api);
    net_create(cl, "blue", 100, "10.0.0.0/24");
    node_add(cl, "blue", "a");
    struct vnet_node_info b = node_add(cl, "blue", "b");
    struct peer p;
    struct vnet_msg_welcome w;
    node_connect(&p, 0, "blue", "a", 0, &w);
    ck_assert_uint_eq(w.report_ms, 10000); /* the default */
    struct vnet_msg m;
    expect(&p, VNET_MSG_SNAPSHOT, &m);
    vnet_msg_free(&m);

    /* malformed: counted, dropped, the session stays (twice: never a disconnect) */
    static const uint8_t junk[] = {0xc0};
    static const uint8_t bad_reach[] = {
        0x96, 0x94, 0,    0, 0, 0, 0x94, 0,    0,    0,    0, 0, 0x90, 0, 0x91, 0x99, 0x01, 0x92,
        0xc4, 0x04, 0x0a, 0, 0, 2, 0xcd, 0x12, 0xb5, 0x94, 1, 2, 3,    4, 0x05, 0x02, 0xc0};
    peer_report(&p, junk, sizeof(junk));
    wait_reports(0, 1);
    peer_report(&p, bad_reach, sizeof(bad_reach));
    peer_report(&p, NULL, 0);
    wait_reports(0, 3);
    struct vnet_node_status st = node_status(cl, "blue", "a", NULL);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert(!st.has_report);

    /* a good one */
    struct vnet_report r;
    memset(&r, 0, sizeof(r));
    r.virt = (struct vnet_report_counters){5, 500, 6, 600};
    r.drops = 2;
    r.drop_reasons[VNET_DP_DROP_UNKNOWN_PEER] = 2;
    r.table_size = 4;
    struct vnet_report_peer peer = {.node_id = b.id,
                                    .c = {7, 700, 8, 800},
                                    .has_last_rx = true,
                                    .last_rx_ms = 1500,
                                    .reach = VNET_REACH_DIRECT};
    ck_assert_int_eq(vnet_endpoint_parse("10.0.9.2:4789", &peer.ep), 0);
    r.peers = &peer;
    r.npeers = 1;
    struct vnet_buf body = {0};
    ck_assert_int_eq(vnet_report_encode(&r, &body), 0);
    int64_t before = now_ms();
    peer_report(&p, body.data, body.len);
    vnet_buf_free(&body);
    wait_reports(1, 3);

    struct sockaddr_in me;
    socklen_t melen = sizeof(me);
    ck_assert_int_eq(getsockname(p.fd, (struct sockaddr *)&me, &melen), 0);
    struct vnet_msg_request q = rq(VNET_REQ_NETWORK_STATUS, "blue", NULL);
    struct vnet_msg reply;
    ck_assert_int_eq(request(cl, &q, &reply), 0);
    ck_assert_uint_eq(reply.u.reply.nstatus, 2);
    const struct vnet_node_status *sa = &reply.u.reply.status[0];
    ck_assert_str_eq(sa->node.name, "a");
    ck_assert(sa->has_report);
    ck_assert_uint_le(sa->report_age_ms, WAIT_MS);
    ck_assert_uint_eq(sa->report.virt.tx_bytes, 600);
    ck_assert_uint_eq(sa->report.drop_reasons[VNET_DP_DROP_UNKNOWN_PEER], 2);
    ck_assert_uint_eq(sa->report.table_size, 4);
    ck_assert_uint_eq(sa->report.npeers, 1);
    ck_assert_uint_eq(sa->report.peers[0].node_id, b.id);
    ck_assert_uint_eq(sa->report.peers[0].reach, VNET_REACH_DIRECT);
    ck_assert_uint_eq(sa->session_from.ip.family, VNET_AF_INET);
    ck_assert_uint_eq(sa->session_from.port, ntohs(me.sin_port));
    ck_assert_uint_ge(sa->last_seen_ms, (uint64_t)before - 1000);
    ck_assert(!reply.u.reply.status[1].has_report); /* b never connected */
    ck_assert_uint_eq(reply.u.reply.status[1].last_seen_ms, 0);
    vnet_msg_free(&reply);

    /* gone: disconnected, last seen stays, so does the last report */
    peer_close(&p);
    int64_t end = now_ms() + WAIT_MS;
    do {
        st = node_status(cl, "blue", "a", NULL);
    } while (st.connected && now_ms() < end && usleep(10000) == 0);
    ck_assert_uint_eq(st.connected, 0);
    ck_assert_uint_ge(st.last_seen_ms, (uint64_t)before - 1000);
    ck_assert(st.has_report);
    ck_assert_uint_eq(st.report.virt.tx_bytes, 600);
    ck_assert_uint_eq(st.session_from.port, ntohs(me.sin_port));
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

START_TEST(t_reconnect)
{
    ctl_start(&defaults);
    struct vnet_client *cl = cl_open(ctl.api);
    net_create(cl, "blue", 0, "10.0.0.0/24");
    node_add(cl, "blue", "a");
    node_add(cl, "blue", "b"); /* revision 3 */

    struct peer p;
    struct view v = {0};
    struct vnet_msg m;
    node_connect(&p, 0, "blue", "a", 0, NULL);
    pump_until(&p, &v, 3, WAIT_MS);
    ck_assert_uint_eq(v.snapshots, 1);
    peer_close(&p);

    node_add(cl, "blue", "c");
    node_add(cl, "blue", "d"); /* revision 5 */

    /* Holding 3: the delta (3, 5], both changes in order; nothing else before the next delta
     * (a snapshot would come first). */
    node_connect(&p, 0, "blue", "a", 3, NULL);
    expect(&p, VNET_MSG_DELTA, &m);
    ck_assert_uint_eq(m.u.delta.from, 3);
    ck_assert_uint_eq(m.u.delta.to, 5);
    ck_assert_uint_eq(m.u.delta.nchanges, 2);
    ck_assert_str_eq(m.u.delta.changes[0].node.name, "c");
    ck_assert_str_eq(m.u.delta.changes[1].node.name, "d");
    vnet_msg_free(&m);
    node_add(cl, "blue", "e");
    expect(&p, VNET_MSG_DELTA, &m);
    ck_assert_uint_eq(m.u.delta.from, 5);
    ck_assert_uint_eq(m.u.delta.to, 6);
    vnet_msg_free(&m);
    peer_close(&p);

    /* Holding the current revision: nothing to send until the next change. */
    node_connect(&p, 0, "blue", "a", 6, NULL);
    node_add(cl, "blue", "f");
    expect(&p, VNET_MSG_DELTA, &m);
    ck_assert_uint_eq(m.u.delta.from, 6);
    ck_assert_uint_eq(m.u.delta.to, 7);
    vnet_msg_free(&m);
    peer_close(&p);

    /* Holding nothing: a snapshot of all six nodes. */
    node_connect(&p, 0, "blue", "a", 0, NULL);
    expect(&p, VNET_MSG_SNAPSHOT, &m);
    ck_assert_uint_eq(m.u.snapshot.network.revision, 7);
    ck_assert_uint_eq(m.u.snapshot.nnodes, 6);
    vnet_msg_free(&m);
    peer_close(&p);

    /* Claiming a revision the network never had (e.g. a restored database): a snapshot. */
    node_connect(&p, 0, "blue", "a", 1000, NULL);
    expect(&p, VNET_MSG_SNAPSHOT, &m);
    ck_assert_uint_eq(m.u.snapshot.network.revision, 7);
    vnet_msg_free(&m);
    peer_close(&p);

    struct vnet_controller_stats cs = stats();
    ck_assert_uint_eq(cs.snapshots_sent, 3);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* A revision whose successors the log no longer keeps: a snapshot. */
START_TEST(t_reconnect_pruned)
{
    struct ctl_opts o = defaults;
    o.retention = 4;
    ctl_start(&o);
    struct vnet_client *cl = cl_open(ctl.api);
    net_create(cl, "blue", 0, "10.0.0.0/24");
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        node_add(cl, "blue", name);
    } /* revision 11; the log keeps 8..11 at least */

    struct peer p;
    struct vnet_msg m;
    node_connect(&p, 0, "blue", "n0", 2, NULL);
    expect(&p, VNET_MSG_SNAPSHOT, &m);
    ck_assert_uint_eq(m.u.snapshot.network.revision, 11);
    ck_assert_uint_eq(m.u.snapshot.nnodes, 10);
    vnet_msg_free(&m);
    peer_close(&p);

    node_connect(&p, 0, "blue", "n0", 9, NULL);
    expect(&p, VNET_MSG_DELTA, &m);
    ck_assert_uint_eq(m.u.delta.from, 9);
    ck_assert_uint_eq(m.u.delta.to, 11);
    vnet_msg_free(&m);
    peer_close(&p);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* ---- 3. refused hellos and malformed input ---- */

START_TEST(t_bad_sessions)
{
    ctl_start(&defaults);
    struct vnet_client *cl = cl_open(ctl.api);
    net_create(cl, "blue", 0, "10.0.0.0/24");
    node_add(cl, "blue", "a");
    node_add(cl, "blue", "b");

    struct peer p;
    peer_open(&p, 0);
    /* An unknown network and an unknown node are refused alike (nothing says which). */
    hello(&p, "nowhere", "a", 0, VNET_PROTO_VERSION);
    expect_error_close(&p, VNET_EACCES, NODE_REFUSED);
    peer_close(&p);

    peer_open(&p, 0);
    hello(&p, "blue", "ghost", 0, VNET_PROTO_VERSION);
    expect_error_close(&p, VNET_EACCES, NODE_REFUSED);
    peer_close(&p);

    peer_open(&p, 0);
    peer_ack(&p, 1); /* not a hello */
    expect_error_close(&p, VNET_EPROTO, "hello");
    peer_close(&p);

    peer_open(&p, 0);
    hello(&p, "blue", "a", 0, VNET_PROTO_VERSION + 1);
    expect_error_close(&p, VNET_EVERSION, NULL);
    peer_close(&p);

    peer_open(&p, 0);
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0x93}; /* 2 GiB announced */
    peer_send_raw(&p, huge, sizeof(huge));
    expect_error_close(&p, VNET_EMSGSIZE, NULL);
    peer_close(&p);

    /* Two good sessions; one sends a frame of garbage (0xc1 is never used in msgpack). */
    struct peer bad, good;
    struct view vb = {0}, vg = {0};
    node_connect(&bad, 0, "blue", "a", 0, NULL);
    node_connect(&good, 0, "blue", "b", 0, NULL);
    pump_until(&bad, &vb, 3, WAIT_MS);
    pump_until(&good, &vg, 3, WAIT_MS);
    static const uint8_t garbage[] = {0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1};
    peer_send_raw(&bad, garbage, sizeof(garbage));
    expect_error_close(&bad, VNET_EPROTO, NULL);
    peer_close(&bad);
    node_add(cl, "blue", "c");
    pump_until(&good, &vg, 4, WAIT_MS);

    /* An unexpected (well-formed) message on a node session: a request. */
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_REQUEST;
    m.u.request.op = VNET_REQ_NETWORK_LIST;
    peer_send(&good, &m);
    expect_error_close(&good, VNET_EPROTO, NULL);
    peer_close(&good);

    struct vnet_controller_stats cs = stats();
    /* The two refused hellos, the garbage and the oversized frame. */
    ck_assert_uint_eq(cs.sessions_closed_bad, 4);
    ck_assert_uint_eq(cs.node_sessions, 0);
    ck_assert_uint_eq(cs.client_sessions, 1);
    /* The client's session was never disturbed. */
    struct vnet_msg_request q = rq(VNET_REQ_NETWORK_LIST, NULL, NULL);
    request_ok(cl, &q);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* ---- 4. a stuck node costs bounded memory and never slows the others ---- */

START_TEST(t_stuck_node)
{
    enum { N = 600, QMAX = 16384 };
    char name[VNET_NAME_MAX];
    struct ctl_opts o = defaults;
    o.queue_max = QMAX;
    o.keepalive_ms = 60000; /* the stuck session must not be closed as dead meanwhile */
    ctl_start(&o);
    struct vnet_client *cl = cl_open(ctl.api);
    net_create(cl, "blue", 0, "10.0.0.0/16");
    node_add(cl, "blue", "healthy");
    node_add(cl, "blue", "stuck"); /* revision 3 */

    struct peer h, s;
    struct view vh = {0}, vs = {0};
    node_connect(&h, 0, "blue", "healthy", 0, NULL);
    pump_until(&h, &vh, 3, WAIT_MS);
    node_connect(&s, 1 /* the kernel's minimum */, "blue", "stuck", 0, NULL);
    pump_until(&s, &vs, 3, WAIT_MS);
    shrink_controller_sndbuf(&s);

    /* The stuck session reads nothing from here on; the healthy one has every change at
     * once. */
    for (int i = 0; i < N; i++) {
        long_name(name, sizeof(name), i);
        struct vnet_node_info n = node_add(cl, "blue", name);
        ck_assert_uint_eq(n.revision, 4 + (uint64_t)i);
        pump_until(&h, &vh, n.revision, WAIT_MS);
    }
    const uint64_t last = 3 + N;
    ck_assert_uint_eq(vh.rev, last);
    ck_assert_uint_eq(vh.deltas, N);
    ck_assert_uint_eq(vh.snapshots, 1);

    /* Deltas for the stuck session stopped at its bound. */
    struct vnet_controller_stats cs = stats();
    ck_assert_uint_eq(cs.snapshots_sent, 2);
    ck_assert_uint_ge(cs.deltas_sent, N);
    const uint64_t stuck_deltas = cs.deltas_sent - N;
    ck_assert_msg(stuck_deltas < N, "all %d deltas queued for the stuck session", N);
    ck_assert_uint_eq(cs.node_sessions, 2);

    /* It reads again: what was queued, then one snapshot at the latest revision. */
    pump_until(&s, &vs, last, 10000);
    ck_assert_uint_eq(vs.deltas, stuck_deltas);
    ck_assert_uint_eq(vs.snapshots, 2);
    ck_assert(vs.snapshot_after_delta);
    ck_assert_uint_eq(vs.nnodes, 2 + N);
    /* What it was sent before falling behind is bounded by the queue plus the kernel's
     * buffers; the healthy session was sent far more. */
    ck_assert_msg(vs.delta_bytes < QMAX + 16384, "%zu bytes of deltas queued", vs.delta_bytes);
    ck_assert_msg(vs.delta_bytes < vh.delta_bytes / 2, "stuck %zu, healthy %zu bytes",
                  vs.delta_bytes, vh.delta_bytes);
    cs = stats();
    ck_assert_uint_eq(cs.snapshots_sent, 3);
    ck_assert_uint_eq(cs.sessions_closed_slow + cs.sessions_closed_dead, 0);

    /* Back to deltas for both. */
    node_add(cl, "blue", "after");
    pump_until(&s, &vs, last + 1, WAIT_MS);
    pump_until(&h, &vh, last + 1, WAIT_MS);
    ck_assert_uint_eq(vs.snapshots, 2);
    peer_close(&s);
    peer_close(&h);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* ---- 5. keepalives ---- */

START_TEST(t_keepalive)
{
    struct ctl_opts o = defaults;
    o.keepalive_ms = 50;
    ctl_start(&o);
    /* Clients send no keepalives between requests: an idle client is not closed for it
     * (idle_cl outlives many intervals below and is then served). */
    struct vnet_client *cl = cl_open(ctl.api);
    net_create(cl, "blue", 0, "10.0.0.0/24");
    node_add(cl, "blue", "live");
    node_add(cl, "blue", "silent");
    vnet_client_close(cl);
    struct vnet_client *idle_cl = cl_open(ctl.api);
    node_add(idle_cl, "blue", "early");

    struct peer live, silent;
    struct view vl = {0}, vs = {0};
    node_connect(&live, 0, "blue", "live", 0, NULL);
    live.answer_keepalives = true;
    pump_until(&live, &vl, 4, WAIT_MS);
    node_connect(&silent, 0, "blue", "silent", 0, NULL);
    pump_until(&silent, &vs, 4, WAIT_MS);
    const int64_t t0 = now_ms(); /* after its hello: its silence is at least this long */

    /* Serve both: the live one answers keepalives, the silent one only reads. Go on until the
     * silent one is closed and the live one has outlived it by many intervals. */
    int64_t closed_at = 0;
    const int64_t deadline = t0 + 2000;
    while (now_ms() < deadline && (!closed_at || now_ms() < closed_at + 500)) {
        struct pollfd pf[2] = {{.fd = live.fd, .events = POLLIN},
                               {.fd = silent.fd, .events = closed_at ? 0 : POLLIN}};
        poll(pf, 2, 50);
        struct vnet_msg m;
        int rc = peer_recv(&live, &m, 0);
        if (rc == R_MSG)
            ck_abort_msg("live session: unexpected %s", describe(&m));
        ck_assert_msg(rc != R_EOF, "the live session was closed after %lld ms",
                      (long long)(now_ms() - t0));
        if (!closed_at) {
            rc = peer_recv(&silent, &m, 0);
            if (rc == R_MSG)
                ck_abort_msg("silent session: unexpected %s", describe(&m));
            if (rc == R_EOF)
                closed_at = now_ms();
        }
    }
    ck_assert_msg(closed_at, "the silent session is still open after 2 s");
    ck_assert_msg(closed_at - t0 >= 100, "closed after %lld ms of silence, before 3 intervals",
                  (long long)(closed_at - t0));
    ck_assert_msg(closed_at - t0 < 1000, "closed only after %lld ms", (long long)(closed_at - t0));
    ck_assert_uint_ge(silent.keepalives, 1);
    ck_assert_uint_ge(live.keepalives, 8);

    struct vnet_controller_stats cs = stats();
    ck_assert_uint_ge(cs.sessions_closed_dead, 1);
    ck_assert_uint_eq(cs.node_sessions, 1);

    /* The idle client, silent since before the silent node, is still served; the live node
     * gets the delta. */
    ck_assert_int_ge(now_ms() - t0, 500);
    node_add(idle_cl, "blue", "new");
    vnet_client_close(idle_cl);
    pump_until(&live, &vl, 5, WAIT_MS);
    peer_close(&live);
    peer_close(&silent);
    ctl_stop();
}
END_TEST

/* ---- 6. one session per node ---- */

START_TEST(t_replace)
{
    ctl_start(&defaults);
    struct vnet_client *cl = cl_open(ctl.api);
    net_create(cl, "blue", 0, "10.0.0.0/24");
    node_add(cl, "blue", "a"); /* revision 2 */

    struct peer old, new;
    struct view vo = {0}, vn = {0};
    node_connect(&old, 0, "blue", "a", 0, NULL);
    pump_until(&old, &vo, 2, WAIT_MS);
    peer_ack(&old, 2);
    node_connect(&new, 0, "blue", "a", 0, NULL);
    pump_until(&new, &vn, 2, WAIT_MS);
    expect_error_close(&old, VNET_EBUSY, NULL);
    peer_close(&old);

    node_add(cl, "blue", "b");
    pump_until(&new, &vn, 3, WAIT_MS);
    struct vnet_controller_stats cs = stats();
    ck_assert_uint_eq(cs.node_sessions, 1);
    struct vnet_node_status st = node_status(cl, "blue", "a", NULL);
    ck_assert_uint_eq(st.connected, 1);
    peer_close(&new);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* ---- 7. requests ---- */

START_TEST(t_requests)
{
    struct ctl_opts o = defaults;
    o.unix_socket = true;
    ctl_start(&o);
    struct vnet_client *cl = cl_open(ctl.api);
    struct vnet_msg r;
    struct vnet_msg_request q;

    struct vnet_network blue = net_create(cl, "blue", 100, "10.1.0.0/24");
    ck_assert_uint_eq(blue.vni, 100);
    ck_assert_uint_eq(blue.revision, 1);
    ck_assert_uint_eq(blue.mtu, 1450);

    q = rq(VNET_REQ_NETWORK_CREATE, "red", NULL);
    q.has = VNET_REQ_HAS_VNI;
    q.vni = 100;
    ck_assert_int_eq(request(cl, &q, &r), VNET_EEXIST);
    ck_assert_msg(strstr(r.u.reply.text, "VNI 100"), "text: %s", r.u.reply.text);
    ck_assert_uint_eq(r.u.reply.nnetworks, 0);
    vnet_msg_free(&r);

    q = rq(VNET_REQ_NETWORK_CREATE, "blue", NULL);
    ck_assert_int_eq(request(cl, &q, &r), VNET_EEXIST);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NETWORK_CREATE, "green", NULL);
    q.has = VNET_REQ_HAS_SUBNET4;
    ck_assert_int_eq(vnet_prefix_parse("10.0.0.0/31", &q.subnet4), 0); /* too small */
    ck_assert_int_eq(request(cl, &q, &r), VNET_EINVAL);
    ck_assert_str_ne(r.u.reply.text, "");
    vnet_msg_free(&r);

    struct vnet_network red = net_create(cl, "red", 0, "10.2.0.0/24");
    ck_assert_uint_ne(red.vni, 100);
    ck_assert_uint_ne(red.id, blue.id);

    q = rq(VNET_REQ_NETWORK_LIST, NULL, NULL);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnetworks, 2);
    ck_assert_str_eq(r.u.reply.networks[0].name, "blue");
    ck_assert_str_eq(r.u.reply.networks[1].name, "red");
    vnet_msg_free(&r);

    struct vnet_node_info a = node_add(cl, "blue", "a");
    char ip[VNET_IP_STRLEN];
    vnet_ip_format(&a.ips[0], ip, sizeof(ip));
    ck_assert_str_eq(ip, "10.1.0.1");
    ck_assert_uint_eq(a.revision, 2);
    q = rq(VNET_REQ_NODE_ADD, "blue", "b");
    q.has = VNET_REQ_HAS_IP4;
    ck_assert_int_eq(vnet_ip_parse("10.1.0.9", &q.ip4), 0);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnodes, 1);
    vnet_ip_format(&r.u.reply.nodes[0].ips[0], ip, sizeof(ip));
    ck_assert_str_eq(ip, "10.1.0.9");
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NODE_ADD, "blue", "a");
    ck_assert_int_eq(request(cl, &q, &r), VNET_EEXIST);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NODE_ADD, "blue", "c");
    q.has = VNET_REQ_HAS_IP4;
    ck_assert_int_eq(vnet_ip_parse("10.9.9.9", &q.ip4), 0); /* outside the subnet */
    ck_assert_int_eq(request(cl, &q, &r), VNET_EINVAL);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NODE_ADD, "green", "a");
    ck_assert_int_eq(request(cl, &q, &r), VNET_ENOENT);
    ck_assert_msg(strstr(r.u.reply.text, "green"), "text: %s", r.u.reply.text);
    vnet_msg_free(&r);

    q = rq(VNET_REQ_NODE_LIST, "blue", NULL);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnodes, 2);
    ck_assert_str_eq(r.u.reply.nodes[0].name, "a");
    ck_assert_str_eq(r.u.reply.nodes[1].name, "b");
    vnet_msg_free(&r);

    q = rq(VNET_REQ_NODE_SHOW, "blue", "a");
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnodes, 1);
    ck_assert_uint_eq(r.u.reply.nodes[0].id, a.id);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NODE_SHOW, "blue", "zz");
    ck_assert_int_eq(request(cl, &q, &r), VNET_ENOENT);
    ck_assert_msg(strstr(r.u.reply.text, "zz"), "text: %s", r.u.reply.text);
    vnet_msg_free(&r);

    q = rq(VNET_REQ_NODE_MOVE, "blue", "a");
    q.has = VNET_REQ_HAS_PHYS;
    ck_assert_int_eq(vnet_endpoint_parse("192.0.2.1:4789", &q.phys), 0);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnodes, 1);
    char ep[VNET_ENDPOINT_STRLEN];
    vnet_endpoint_format(&r.u.reply.nodes[0].phys, ep, sizeof(ep));
    ck_assert_str_eq(ep, "192.0.2.1:4789");
    ck_assert_uint_eq(r.u.reply.nodes[0].revision, 4);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NODE_MOVE, "blue", "a"); /* no endpoint */
    ck_assert_int_eq(request(cl, &q, &r), VNET_EINVAL);
    vnet_msg_free(&r);

    q = rq(VNET_REQ_NETWORK_SHOW, "blue", NULL);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnetworks, 1);
    ck_assert_uint_eq(r.u.reply.networks[0].revision, 4);
    ck_assert_uint_eq(r.u.reply.nnodes, 2);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NETWORK_STATUS, "blue", NULL);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nstatus, 2);
    ck_assert_uint_eq(r.u.reply.status[0].connected, 0);
    vnet_msg_free(&r);

    /* Removing a node closes its session. */
    struct peer pb;
    struct view vb = {0};
    node_connect(&pb, 0, "blue", "b", 0, NULL);
    pump_until(&pb, &vb, 4, WAIT_MS);
    q = rq(VNET_REQ_NODE_REMOVE, "blue", "b");
    ck_assert_int_eq(request(cl, &q, &r), 0);
    vnet_msg_free(&r);
    expect_error_close(&pb, VNET_ENOENT, NULL);
    peer_close(&pb);
    ck_assert_int_eq(request(cl, &q, &r), VNET_ENOENT);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NODE_LIST, "blue", NULL);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnodes, 1);
    vnet_msg_free(&r);

    /* Deleting a network closes its node sessions, not the other network's. */
    node_add(cl, "red", "r1");
    struct peer pa, pr;
    struct view va = {0}, vr = {0};
    node_connect(&pa, 0, "blue", "a", 0, NULL);
    pump_until(&pa, &va, 5, WAIT_MS);
    node_connect(&pr, 0, "red", "r1", 0, NULL);
    pump_until(&pr, &vr, 2, WAIT_MS);
    q = rq(VNET_REQ_NETWORK_DELETE, "blue", NULL);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    vnet_msg_free(&r);
    expect_error_close(&pa, VNET_ENOENT, NULL);
    peer_close(&pa);
    ck_assert_int_eq(request(cl, &q, &r), VNET_ENOENT);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NETWORK_SHOW, "blue", NULL);
    ck_assert_int_eq(request(cl, &q, &r), VNET_ENOENT);
    ck_assert_msg(strstr(r.u.reply.text, "blue"), "text: %s", r.u.reply.text);
    vnet_msg_free(&r);
    node_add(cl, "red", "r2");
    pump_until(&pr, &vr, 3, WAIT_MS);
    peer_close(&pr);

    q = rq(VNET_REQ_NETWORK_LIST, NULL, NULL);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnetworks, 1);
    ck_assert_str_eq(r.u.reply.networks[0].name, "red");
    vnet_msg_free(&r);

    /* The Unix socket serves the same requests. */
    struct vnet_client *lc = cl_open(ctl.sock);
    q = rq(VNET_REQ_NETWORK_SHOW, "red", NULL);
    ck_assert_int_eq(request(lc, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnodes, 2);
    vnet_msg_free(&r);
    struct stat sb;
    ck_assert_int_eq(stat(ctl.sock, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0600);
    vnet_client_close(lc);

    struct vnet_controller_stats cs = stats();
    ck_assert_uint_eq(cs.requests, 28);
    ck_assert_uint_eq(cs.errors, 11);
    vnet_client_close(cl);
    ctl_stop();
    ck_assert_msg(stat(ctl.sock, &sb) != 0, "the Unix socket is left behind");
}
END_TEST

/* ---- subscribers: authenticated API sessions scoped to their own networks ---- */

/* An authenticated client over TCP with @token (NULL: none) pinning @pub: the connect's code. */
static int cl_try(const uint8_t *pub, const char *token, struct vnet_client **out, char *err,
                  size_t errlen)
{
    struct vnet_client_opts o = {.timeout_ms = WAIT_MS, .controller_pub = pub, .token = token};
    *out = NULL;
    return vnet_client_connect2(ctl.api, &o, out, err, errlen);
}

static struct vnet_client *cl_auth(const uint8_t *pub, const char *token)
{
    struct vnet_client *cl;
    char err[256] = "";
    int rc = cl_try(pub, token, &cl, err, sizeof(err));
    ck_assert_msg(rc == 0, "authenticated connect: %s (%s)", vnet_err_name(rc), err);
    return cl;
}

/* subscriber create/token @name as the admin on @cl: its token into @tok. */
static void sub_token(struct vnet_client *cl, enum vnet_req_op op, const char *name, char *tok,
                      size_t len)
{
    struct vnet_msg_request q = rq(op, name, NULL);
    struct vnet_msg r;
    int code = request(cl, &q, &r);
    ck_assert_msg(code == 0, "%s %s: %s (%s)", vnet_req_op_name(op), name, vnet_err_name(code),
                  r.u.reply.text);
    ck_assert_uint_eq(r.u.reply.nsubscribers, 1);
    ck_assert_str_eq(r.u.reply.subscribers[0].name, name);
    ck_assert(r.u.reply.subscribers[0].has_token);
    ck_assert(!r.u.reply.subscribers[0].admin);
    uint8_t raw[VNET_API_TOKEN_LEN];
    ck_assert_int_eq(vnet_api_token_parse(r.u.reply.token, raw), 0);
    snprintf(tok, len, "%s", r.u.reply.token);
    vnet_msg_free(&r);
}

static void expect_code(struct vnet_client *cl, const struct vnet_msg_request *q, int want,
                        const char *text_has)
{
    struct vnet_msg r;
    int code = request(cl, q, &r);
    ck_assert_msg(code == want, "%s %s: %s (%s), want %s", vnet_req_op_name(q->op), q->network,
                  vnet_err_name(code), r.u.reply.text, vnet_err_name(want));
    if (text_has)
        ck_assert_msg(strstr(r.u.reply.text, text_has), "text '%s' lacks '%s'", r.u.reply.text,
                      text_has);
    vnet_msg_free(&r);
}

START_TEST(t_subscribers)
{
    struct vnet_keypair key, other;
    ck_assert_int_eq(vnet_key_generate(&key), 0);
    ck_assert_int_eq(vnet_key_generate(&other), 0);
    struct ctl_opts o = defaults;
    o.unix_socket = true;
    o.key = &key;
    ctl_start(&o);
    struct vnet_msg r;
    struct vnet_msg_request q;
    char alice_tok[VNET_MSG_TEXT_MAX], bob_tok[VNET_MSG_TEXT_MAX], err[256];

    /* The Unix socket is the admin, without key or token. */
    struct vnet_client *adm = cl_open(ctl.sock);
    sub_token(adm, VNET_REQ_SUBSCRIBER_CREATE, "alice", alice_tok, sizeof(alice_tok));
    sub_token(adm, VNET_REQ_SUBSCRIBER_CREATE, "bob", bob_tok, sizeof(bob_tok));
    ck_assert_str_ne(alice_tok, bob_tok);

    struct vnet_client *alice = cl_auth(key.pub, alice_tok);
    struct vnet_client *bob = cl_auth(key.pub, bob_tok);
    struct vnet_network ab = net_create(alice, "blue", 0, "10.1.0.0/24");
    struct vnet_network bb = net_create(bob, "blue", 0, "10.1.0.0/24");
    net_create(bob, "red", 0, NULL);
    ck_assert_uint_ne(ab.vni, bb.vni);
    ck_assert_uint_ne(ab.subscriber_id, bb.subscriber_id);
    ck_assert_uint_ne(ab.subscriber_id, VNET_SUBSCRIBER_ADMIN);
    node_add(alice, "blue", "a1");

    /* Each sees only its own. */
    q = rq(VNET_REQ_NETWORK_LIST, NULL, NULL);
    ck_assert_int_eq(request(alice, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnetworks, 1);
    ck_assert_uint_eq(r.u.reply.networks[0].id, ab.id);
    ck_assert_uint_eq(r.u.reply.nsubscribers, 0); /* owners are the admin's business */
    vnet_msg_free(&r);
    ck_assert_int_eq(request(bob, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnetworks, 2);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NETWORK_SHOW, "blue", NULL);
    ck_assert_int_eq(request(bob, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.networks[0].id, bb.id);
    ck_assert_uint_eq(r.u.reply.nnodes, 0);
    vnet_msg_free(&r);

    /* Another's network does not exist for alice, whatever she asks. */
    static const enum vnet_req_op ops[] = {VNET_REQ_NETWORK_SHOW, VNET_REQ_NETWORK_STATUS,
                                           VNET_REQ_NETWORK_DELETE, VNET_REQ_NODE_LIST,
                                           VNET_REQ_NODE_ADD};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        q = rq(ops[i], "red", "x");
        expect_code(alice, &q, VNET_ENOENT, "no network 'red'");
    }
    q = rq(VNET_REQ_NETWORK_SHOW, "bob/red", NULL);
    expect_code(alice, &q, VNET_ENOENT, "no network");
    /* Issue 13: the API judges names before any lookup and says which characters they may
     * hold (a raw request: the typed client calls would refuse these before sending). */
    q = rq(VNET_REQ_NETWORK_SHOW, "a!b", NULL);
    expect_code(alice, &q, VNET_EINVAL, "invalid network name 'a!b': " VNET_NAME_RULE);
    q = rq(VNET_REQ_NODE_ADD, "blue", "n!1");
    expect_code(alice, &q, VNET_EINVAL, "invalid node name 'n!1': " VNET_NAME_RULE);
    q = rq(VNET_REQ_SUBSCRIBER_CREATE, "x!y", NULL);
    expect_code(adm, &q, VNET_EINVAL, "invalid subscriber name 'x!y': " VNET_NAME_RULE);
    q = rq(VNET_REQ_NETWORK_CREATE, "hb", NULL);
    q.has = VNET_REQ_HAS_SUBNET4;
    ck_assert_int_eq(vnet_prefix_parse("10.1.0.9/24", &q.subnet4), 0);
    expect_code(alice, &q, VNET_EINVAL, "host bits set: did you mean 10.1.0.0/24?");
    ck_assert_int_eq(vnet_prefix_parse("10.1.0.128/25", &q.subnet4), 0);
    expect_code(alice, &q, VNET_EEXIST, "overlaps subnet 10.1.0.0/24 of network 'blue'");
    q = rq(VNET_REQ_NETWORK_SHOW, "red", NULL);
    expect_code(bob, &q, 0, NULL); /* still there */
    /* A VNI taken by another subscriber: refused without naming the network. */
    q = rq(VNET_REQ_NETWORK_CREATE, "green", NULL);
    q.has = VNET_REQ_HAS_VNI;
    q.vni = bb.vni;
    ck_assert_int_eq(request(alice, &q, &r), VNET_EEXIST);
    ck_assert_msg(!strstr(r.u.reply.text, "blue"), "text: %s", r.u.reply.text);
    vnet_msg_free(&r);
    /* Subscribers do not manage subscribers. */
    q = rq(VNET_REQ_SUBSCRIBER_LIST, NULL, NULL);
    expect_code(alice, &q, VNET_EPERM, "admin");

    /* The admin sees everything, with the owners, and must say whose "blue" it means. */
    q = rq(VNET_REQ_NETWORK_LIST, NULL, NULL);
    ck_assert_int_eq(request(adm, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnetworks, 3);
    ck_assert_uint_eq(r.u.reply.nsubscribers, 3);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NETWORK_SHOW, "blue", NULL);
    expect_code(adm, &q, VNET_EINVAL, "SUBSCRIBER/blue");
    q = rq(VNET_REQ_NETWORK_SHOW, "alice/blue", NULL);
    ck_assert_int_eq(request(adm, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.networks[0].id, ab.id);
    ck_assert_uint_eq(r.u.reply.nnodes, 1);
    vnet_msg_free(&r);
    q = rq(VNET_REQ_SUBSCRIBER_LIST, NULL, NULL);
    ck_assert_int_eq(request(adm, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nsubscribers, 3);
    ck_assert(r.u.reply.subscribers[0].admin);
    ck_assert_str_eq(r.u.reply.subscribers[1].name, "alice");
    vnet_msg_free(&r);

    /* Refusals: each one ERROR VNET_EACCES (VNET_EKEYREJECTED for the wrong key) with a reason,
     * then the close. */
    struct vnet_client *x;
    char wrong[VNET_API_TOKEN_STRLEN], hash[VNET_TOKEN_HASH_BYTES];
    ck_assert_int_gt(vnet_api_token_new(wrong, sizeof(wrong), (uint8_t *)hash), 0);
    ck_assert_int_eq(cl_try(key.pub, wrong, &x, err, sizeof(err)), VNET_EACCES);
    ck_assert_msg(strstr(err, "unknown API token"), "err: %s", err);
    ck_assert_int_eq(cl_try(key.pub, NULL, &x, err, sizeof(err)), VNET_EACCES);
    ck_assert_msg(strstr(err, "no API token"), "err: %s", err);
    ck_assert_int_eq(cl_try(NULL, NULL, &x, err, sizeof(err)), VNET_EACCES);
    ck_assert_msg(strstr(err, "authentication required"), "err: %s", err);
    ck_assert_int_eq(cl_try(other.pub, alice_tok, &x, err, sizeof(err)), VNET_EKEYREJECTED);
    ck_assert_msg(strstr(err, "does not match the pinned key"), "err: %s", err);
    ck_assert_int_eq(cl_try(NULL, alice_tok, &x, err, sizeof(err)), VNET_EINVAL);
    ck_assert_int_eq(cl_try(key.pub, "vnetapi1-short", &x, err, sizeof(err)), VNET_EINVAL);
    ck_assert_ptr_null(x);

    /* A sealed token lifted from another connection: bound to that connection's key. */
    struct peer p;
    struct vnet_hs hs;
    struct vnet_keypair mine, theirs;
    uint8_t raw[VNET_API_TOKEN_LEN];
    size_t n = 0;
    ck_assert_int_eq(vnet_key_generate(&mine), 0);
    ck_assert_int_eq(vnet_key_generate(&theirs), 0);
    ck_assert_int_eq(vnet_api_token_parse(alice_tok, raw), 0);
    memset(&r, 0, sizeof(r));
    r.type = VNET_MSG_HELLO;
    r.u.hello.version = VNET_PROTO_VERSION;
    r.u.hello.role = VNET_ROLE_CLIENT;
    ck_assert_int_eq(vnet_hs_init_initiator(&hs, &mine, key.pub, "vnet-client", 11), 0);
    ck_assert_int_eq(vnet_hs_write_hello(&hs, 1, r.u.hello.auth, VNET_AUTH_MAX, &n), 0);
    ck_assert_int_eq(vnet_api_token_seal(key.pub, raw, theirs.pub, r.u.hello.auth + n), 0);
    r.u.hello.auth_len = (uint32_t)(n + VNET_API_SEALED_LEN);
    peer_open_port(&p, ctl.api_port, 0);
    peer_send(&p, &r);
    expect_error_close(&p, VNET_EACCES, "not bound");
    peer_close(&p);
    /* ... and a client hello with the node prologue is not a client hello. */
    r.u.hello.auth_len = 0;
    ck_assert_int_eq(vnet_hs_init_initiator(&hs, &mine, key.pub, "vnet-node//", 11), 0);
    ck_assert_int_eq(vnet_hs_write_hello(&hs, 2, r.u.hello.auth, VNET_AUTH_MAX, &n), 0);
    ck_assert_int_eq(vnet_api_token_seal(key.pub, raw, mine.pub, r.u.hello.auth + n), 0);
    r.u.hello.auth_len = (uint32_t)(n + VNET_API_SEALED_LEN);
    peer_open_port(&p, ctl.api_port, 0);
    peer_send(&p, &r);
    expect_error_close(&p, VNET_EKEYREJECTED, "handshake failed");
    peer_close(&p);
    vnet_hs_wipe(&hs);

    /* Rotation: the old token is refused, alice's open session is closed, the new one works. */
    char alice2[VNET_MSG_TEXT_MAX];
    sub_token(adm, VNET_REQ_SUBSCRIBER_TOKEN, "alice", alice2, sizeof(alice2));
    ck_assert_str_ne(alice2, alice_tok);
    ck_assert_int_eq(cl_try(key.pub, alice_tok, &x, err, sizeof(err)), VNET_EACCES);
    q = rq(VNET_REQ_NETWORK_LIST, NULL, NULL);
    memset(&r, 0, sizeof(r));
    ck_assert_int_ne(vnet_client_request(alice, &q, &r, err, sizeof(err)), 0);
    vnet_client_close(alice);
    alice = cl_auth(key.pub, alice2);
    q = rq(VNET_REQ_NETWORK_SHOW, "blue", NULL);
    expect_code(alice, &q, 0, NULL);

    /* Delete: refused while bob owns networks; the admin never. */
    q = rq(VNET_REQ_SUBSCRIBER_DELETE, "bob", NULL);
    expect_code(adm, &q, VNET_EBUSY, "owns networks");
    q = rq(VNET_REQ_SUBSCRIBER_DELETE, "admin", NULL);
    expect_code(adm, &q, VNET_EPERM, NULL);
    q = rq(VNET_REQ_SUBSCRIBER_DELETE, "nobody", NULL);
    expect_code(adm, &q, VNET_ENOENT, "nobody");
    request_ok(bob, &(struct vnet_msg_request){.op = VNET_REQ_NETWORK_DELETE, .network = "blue"});
    request_ok(bob, &(struct vnet_msg_request){.op = VNET_REQ_NETWORK_DELETE, .network = "red"});
    q = rq(VNET_REQ_SUBSCRIBER_DELETE, "bob", NULL);
    expect_code(adm, &q, 0, NULL);
    ck_assert_int_eq(cl_try(key.pub, bob_tok, &x, err, sizeof(err)), VNET_EACCES);

    /* ... and bob's open session was closed with the deletion. */
    q = rq(VNET_REQ_NETWORK_LIST, NULL, NULL);
    memset(&r, 0, sizeof(r));
    ck_assert_int_ne(vnet_client_request(bob, &q, &r, err, sizeof(err)), 0);
    vnet_client_close(bob);
    vnet_client_close(alice);
    vnet_client_close(adm);
    vnet_key_wipe(&key);
    ctl_stop();
}
END_TEST

/* Without a key, TCP clients are the admin, as before, and see every subscriber's networks. */
START_TEST(t_open_api)
{
    struct ctl_opts o = defaults;
    ctl_start(&o);
    struct vnet_client *cl = cl_open(ctl.api);
    char tok[VNET_MSG_TEXT_MAX];
    sub_token(cl, VNET_REQ_SUBSCRIBER_CREATE, "carol", tok, sizeof(tok));
    struct vnet_msg r;
    struct vnet_msg_request q = rq(VNET_REQ_NETWORK_CREATE, "carol/blue", NULL);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_str_eq(r.u.reply.networks[0].name, "blue");
    vnet_msg_free(&r);
    q = rq(VNET_REQ_NETWORK_LIST, NULL, NULL);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnetworks, 1);
    ck_assert_uint_ne(r.u.reply.networks[0].subscriber_id, VNET_SUBSCRIBER_ADMIN);
    vnet_msg_free(&r);
    /* A client pinning a key refuses a controller that cannot prove one. */
    struct vnet_keypair k;
    struct vnet_client *x;
    char err[256] = "";
    ck_assert_int_eq(vnet_key_generate(&k), 0);
    ck_assert_int_eq(cl_try(k.pub, tok, &x, err, sizeof(err)), VNET_EACCES);
    ck_assert_msg(strstr(err, "did not authenticate"), "err: %s", err);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* ---- commits by another process sharing the database ---- */

START_TEST(t_other_writer)
{
    struct ctl_opts o = defaults;
    o.poll_store_ms = 20;
    ctl_start(&o);
    struct vnet_client *cl = cl_open(ctl.api);
    struct vnet_network net = net_create(cl, "blue", 0, "10.0.0.0/24");
    node_add(cl, "blue", "a");
    struct peer p;
    struct view v = {0};
    node_connect(&p, 0, "blue", "a", 0, NULL);
    pump_until(&p, &v, 2, WAIT_MS);

    struct vnet_store *other = NULL;
    char err[256] = "";
    ck_assert_int_eq(vnet_store_open(ctl.db, NULL, &other, err, sizeof(err)), 0);
    struct vnet_node_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.name = "b";
    ck_assert_int_eq(vnet_store_node_add(other, net.id, &spec, NULL, err, sizeof(err)), 0);
    vnet_store_close(other);
    pump_until(&p, &v, 3, WAIT_MS);
    peer_close(&p);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* ---- a client slow to read a big reply ---- */

START_TEST(t_slow_client)
{
    enum { NODES = 300 };
    struct ctl_opts o = defaults;
    o.keepalive_ms = 50;
    o.queue_max = 1024;
    ctl_start(&o);
    struct vnet_client *cl = cl_open(ctl.api);
    net_create(cl, "blue", 0, "10.0.0.0/16");
    char name[VNET_NAME_MAX];
    for (int i = 0; i < NODES; i++) {
        long_name(name, sizeof(name), i);
        node_add(cl, "blue", name);
    }
    vnet_client_close(cl);

    /* A client on a raw socket: it keeps its session alive but reads its reply late, after
     * keepalive ticks found its output over the bound. */
    struct peer c;
    peer_open_port(&c, ctl.api_port, 1);
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = VNET_PROTO_VERSION;
    m.u.hello.role = VNET_ROLE_CLIENT;
    peer_send(&c, &m);
    expect(&c, VNET_MSG_WELCOME, &m);
    vnet_msg_free(&m);
    shrink_controller_sndbuf(&c);
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_REQUEST;
    m.u.request = rq(VNET_REQ_NETWORK_SHOW, "blue", NULL);
    m.u.request.id = 1;
    peer_send(&c, &m);
    /* Not reading for 6 intervals; a keepalive every half interval. Waiting for the timer is
     * the point here, so this one wait is by the clock. */
    const int64_t until = now_ms() + 300;
    while (now_ms() < until) {
        struct pollfd pf = {.fd = c.fd, .events = 0};
        poll(&pf, 1, 25);
        peer_send_type(&c, VNET_MSG_KEEPALIVE);
    }
    expect(&c, VNET_MSG_REPLY, &m);
    ck_assert_int_eq(m.u.reply.code, 0);
    ck_assert_uint_eq(m.u.reply.id, 1);
    ck_assert_uint_eq(m.u.reply.nnodes, NODES);
    ck_assert_msg(c.last_len > 4 * 1024 + 16384, "reply of %zu bytes: too small to queue",
                  c.last_len);
    vnet_msg_free(&m);

    /* The session still serves requests. */
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_REQUEST;
    m.u.request = rq(VNET_REQ_NETWORK_LIST, NULL, NULL);
    m.u.request.id = 2;
    peer_send(&c, &m);
    expect(&c, VNET_MSG_REPLY, &m);
    ck_assert_uint_eq(m.u.reply.id, 2);
    ck_assert_int_eq(m.u.reply.code, 0);
    vnet_msg_free(&m);
    peer_close(&c);
    ctl_stop();
}
END_TEST

/* ---- create and destroy without a loop thread ---- */

START_TEST(t_create_errors)
{
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    struct vnet_store *store = NULL;
    char path[PATH_MAX + 64], err[256] = "";
    snprintf(path, sizeof(path), "%s/create-%d.db", tmpdir, (int)getpid());
    ck_assert_int_eq(vnet_store_open(path, NULL, &store, err, sizeof(err)), 0);

    struct vnet_controller *c = NULL, *c2 = NULL;
    struct vnet_controller_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.loop = &loop;
    ck_assert_int_eq(vnet_controller_create(&cfg, &c), VNET_EINVAL); /* no store */
    cfg.store = store;
    cfg.loop = NULL;
    ck_assert_int_eq(vnet_controller_create(&cfg, &c), VNET_EINVAL); /* no loop */
    ck_assert_int_eq(vnet_controller_create(NULL, &c), VNET_EINVAL);
    cfg.loop = &loop;
    static const char *bad[] = {"bogus",        "127.0.0.1", "127.0.0.1:99999", "[::1:80",
                                "300.0.0.1:80", ":80",       "127.0.0.1:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg.node_listen = bad[i];
        cfg.api_listen = NULL;
        ck_assert_msg(vnet_controller_create(&cfg, &c) == VNET_EINVAL, "node_listen %s", bad[i]);
        cfg.node_listen = "127.0.0.1:0";
        cfg.api_listen = bad[i];
        ck_assert_msg(vnet_controller_create(&cfg, &c) == VNET_EINVAL, "api_listen %s", bad[i]);
    }
    ck_assert_ptr_null(c);
    uv_run(&loop, UV_RUN_DEFAULT); /* close callbacks of a failed create, if any */

    /* A port in use: a negative errno; the loop is clean once it has run. */
    cfg.node_listen = "127.0.0.1:0";
    cfg.api_listen = NULL;
    ck_assert_int_eq(vnet_controller_create(&cfg, &c), 0);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", vnet_controller_node_port(c));
    ck_assert_int_eq(vnet_controller_api_port(c), 0);
    cfg.node_listen = addr;
    ck_assert_int_eq(vnet_controller_create(&cfg, &c2), -EADDRINUSE);
    vnet_controller_destroy(c);
    vnet_controller_destroy(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    vnet_store_close(store);
}
END_TEST

/* ---- node sessions with keys: the handshake, sealed frames, tampering ---- */

struct snode {
    struct peer p;
    struct vnet_chan tx, rx;
};

/* Open a connection and send node @name's HELLO with key @kp, pinning @ctl_pub, through the
 * session layer as the agent does; with @secret, a join secret sealed behind it and bound to
 * @bind_pub (the real node's key binds its own). The handshake stays in @s. */
static void snode_hello(struct snode *n, struct vnet__sess *s, const struct vnet_keypair *kp,
                        const uint8_t *ctl_pub, const char *net, const char *name,
                        const uint8_t *secret, const uint8_t *bind_pub)
{
    memset(n, 0, sizeof(*n));
    memset(s, 0, sizeof(*s));
    vnet__sess_init(s, 0);
    peer_open(&n->p, 0);
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = VNET_PROTO_VERSION;
    m.u.hello.role = VNET_ROLE_NODE;
    snprintf(m.u.hello.network, sizeof(m.u.hello.network), "%s", net);
    snprintf(m.u.hello.node, sizeof(m.u.hello.node), "%s", name);
    ck_assert_int_eq(vnet__sess_hello(s, kp, ctl_pub, &m.u.hello), 0);
    if (secret) {
        ck_assert_int_eq(
            vnet_join_seal(ctl_pub, secret, bind_pub, m.u.hello.auth + m.u.hello.auth_len), 0);
        m.u.hello.auth_len += VNET_JOIN_SEALED_LEN;
    }
    peer_send(&n->p, &m);
}

/* The WELCOME after snode_hello(): it must authenticate, settings included. */
static void snode_welcome(struct snode *n, struct vnet__sess *s)
{
    struct vnet_msg m;
    expect(&n->p, VNET_MSG_WELCOME, &m);
    ck_assert_int_eq(vnet__sess_welcome(s, &m.u.welcome), 0);
    n->tx = s->tx;
    n->rx = s->rx;
    vnet__sess_wipe(s);
    vnet_msg_free(&m);
}

/* Connect as node @name with key @kp, pinning @ctl_pub; returns after WELCOME checked. */
static void snode_connect(struct snode *n, const struct vnet_keypair *kp, const uint8_t *ctl_pub,
                          const char *net, const char *name)
{
    struct vnet__sess s;
    snode_hello(n, &s, kp, ctl_pub, net, name, NULL, NULL);
    snode_welcome(n, &s);
}

/* Seal @m and send it; with @flip, one byte of the sealed body is changed on the way. */
static void snode_send(struct snode *n, const struct vnet_msg *m, bool flip)
{
    struct vnet_buf b = {0};
    ck_assert_int_eq(vnet_msg_encode(m, &b), 0);
    size_t body = b.len - 4, cap = vnet_chan_sealed_len(&n->tx, body), outl = 0;
    uint8_t *out = malloc(4 + cap);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(vnet_chan_seal(&n->tx, b.data + 4, body, out + 4, cap, &outl), 0);
    out[0] = (uint8_t)(outl >> 24);
    out[1] = (uint8_t)(outl >> 16);
    out[2] = (uint8_t)(outl >> 8);
    out[3] = (uint8_t)outl;
    if (flip)
        out[4 + outl / 2] ^= 0x10;
    peer_send_raw(&n->p, out, 4 + outl);
    free(out);
    vnet_buf_free(&b);
}

/* The next sealed message (keepalives skipped); R_MSG, R_EOF or R_TIMEOUT. */
static int snode_recv(struct snode *n, struct vnet_msg *m, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        const uint8_t *body;
        size_t len;
        int rc = vnet_frame_reader_next(&n->p.rd, &body, &len);
        ck_assert_int_ge(rc, 0);
        if (rc == 1) {
            uint8_t *plain = malloc(len ? len : 1);
            size_t plen = 0;
            ck_assert_int_eq(vnet_chan_open(&n->rx, body, len, plain, len, &plen), 0);
            ck_assert_int_eq(vnet_msg_decode(plain, plen, m, NULL, 0), 0);
            free(plain);
            if (m->type != VNET_MSG_KEEPALIVE)
                return R_MSG;
            vnet_msg_free(m);
            continue;
        }
        uint8_t buf[65536];
        ssize_t r = recv(n->p.fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return R_EOF;
        if (r < 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return R_TIMEOUT;
            struct pollfd pfd = {.fd = n->p.fd, .events = POLLIN};
            poll(&pfd, 1, (int)left);
            continue;
        }
        ck_assert_int_eq(vnet_frame_reader_feed(&n->p.rd, buf, (size_t)r), 0);
    }
}

/* A controller with @key and its Unix socket, and network "blue"; returns the admin client. */
static struct vnet_client *keyed_start(const struct vnet_keypair *key)
{
    struct ctl_opts o = defaults;
    o.unix_socket = true;
    o.key = key;
    ctl_start(&o);
    struct vnet_client *adm = cl_open(ctl.sock);
    net_create(adm, "blue", 0, "10.1.0.0/24");
    return adm;
}

/* Add node @name to "blue" with @kp's public key registered. */
static void node_add_key(struct vnet_client *adm, const char *name, const struct vnet_keypair *kp)
{
    struct vnet_msg_request q = rq(VNET_REQ_NODE_ADD, "blue", name);
    q.has = VNET_REQ_HAS_PUBKEY;
    memcpy(q.pubkey, kp->pub, 32);
    request_ok(adm, &q);
}

/* A tampered sealed frame ends that session, and only that one. */
START_TEST(t_secure_tamper)
{
    struct vnet_keypair key, k1, k2;
    ck_assert_int_eq(vnet_key_generate(&key), 0);
    ck_assert_int_eq(vnet_key_generate(&k1), 0);
    ck_assert_int_eq(vnet_key_generate(&k2), 0);
    struct vnet_client *adm = keyed_start(&key);
    node_add_key(adm, "a", &k1);
    node_add_key(adm, "b", &k2);

    struct snode a, b;
    struct vnet_msg m;
    snode_connect(&a, &k1, key.pub, "blue", "a");
    snode_connect(&b, &k2, key.pub, "blue", "b");
    ck_assert_int_eq(snode_recv(&a, &m, WAIT_MS), R_MSG); /* snapshot, sealed */
    ck_assert_int_eq(m.type, VNET_MSG_SNAPSHOT);
    uint64_t rev = m.u.snapshot.network.revision;
    vnet_msg_free(&m);
    ck_assert_int_eq(snode_recv(&b, &m, WAIT_MS), R_MSG);
    vnet_msg_free(&m);

    /* a: an honest ACK, then a tampered one: the controller closes a's session. */
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ACK;
    m.u.ack.revision = rev;
    snode_send(&a, &m, false);
    snode_send(&a, &m, true);
    struct vnet_msg x;
    int rc;
    while ((rc = snode_recv(&a, &x, WAIT_MS)) == R_MSG)
        vnet_msg_free(&x);
    ck_assert_int_eq(rc, R_EOF);
    ck_assert_uint_ge(stats().sessions_closed_bad, 1);

    /* b is untouched: it still gets the next change. */
    node_add(adm, "blue", "c");
    ck_assert_int_eq(snode_recv(&b, &x, WAIT_MS), R_MSG);
    ck_assert_int_eq(x.type, VNET_MSG_DELTA);
    vnet_msg_free(&x);

    peer_close(&a.p);
    peer_close(&b.p);
    vnet_client_close(adm);
    ctl_stop();
}
END_TEST

/* ---- #12: what faces the network before authentication, roles per listener ---- */

/* Start the controller with @o, a network "blue" and its node "a"; the admin's client. */
static struct vnet_client *blue_start(const struct ctl_opts *o)
{
    ctl_start(o);
    struct vnet_client *cl = cl_open(ctl.api);
    net_create(cl, "blue", 0, "10.0.0.0/24");
    node_add(cl, "blue", "a");
    return cl;
}

/* An unauthenticated connection may announce no frame over 64 KiB (a 16 MiB one was buffered
 * while its bytes trickled in); once let in, the usual limit applies. */
START_TEST(t_preauth_frame_limit)
{
    struct vnet_client *cl = blue_start(&defaults);
    struct peer p;
    static const uint8_t big[] = {0x01, 0x00, 0x00, 0x00, 0x93}; /* 16 MiB announced */
    peer_open(&p, 0);
    peer_send_raw(&p, big, sizeof(big));
    expect_error_close(&p, VNET_EMSGSIZE, NULL);
    peer_close(&p);
    static const uint8_t over[] = {0x00, 0x01, 0x00, 0x01, 0x93}; /* 64 KiB + 1 */
    peer_open_port(&p, ctl.api_port, 0);
    peer_send_raw(&p, over, sizeof(over));
    expect_error_close(&p, VNET_EMSGSIZE, NULL);
    peer_close(&p);
    ck_assert_uint_eq(stats().preauth_sessions, 0);
    /* A node let in may send a larger frame: this one is read whole, then found malformed. */
    struct view v = {0};
    node_connect(&p, 0, "blue", "a", 0, NULL);
    pump_until(&p, &v, 2, WAIT_MS);
    enum { BIG = 100000 };
    uint8_t *frame = malloc(4 + BIG);
    ck_assert_ptr_nonnull(frame);
    frame[0] = 0;
    frame[1] = (uint8_t)(BIG >> 16);
    frame[2] = (uint8_t)(BIG >> 8);
    frame[3] = (uint8_t)BIG;
    memset(frame + 4, 0xc1, BIG);
    peer_send_raw(&p, frame, 4 + BIG);
    free(frame);
    expect_error_close(&p, VNET_EPROTO, NULL);
    peer_close(&p);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* A connection that trickles a frame in a byte at a time is closed at the handshake deadline:
 * the bytes do not extend it. A node let in is not. */
START_TEST(t_handshake_deadline)
{
    struct ctl_opts o = defaults;
    o.handshake_timeout_ms = 600;
    struct vnet_client *cl = blue_start(&o);
    struct peer node, slow;
    struct view v = {0};
    node_connect(&node, 0, "blue", "a", 0, NULL);
    pump_until(&node, &v, 2, WAIT_MS);
    int64_t t0 = now_ms();
    peer_open(&slow, 0);
    static const uint8_t hdr[] = {0x00, 0x00, 0x00, 0xc8}; /* a 200-byte frame */
    peer_send_raw(&slow, hdr, sizeof(hdr));
    int64_t closed = 0;
    while (now_ms() - t0 < 5000) {
        uint8_t b = 0x93;
        send(slow.fd, &b, 1, MSG_NOSIGNAL); /* one byte every 50 ms; fails once closed */
        struct vnet_msg m;
        int rc = peer_recv(&slow, &m, 50);
        if (rc == R_MSG) { /* no error before the close: nothing was wrong but the time */
            ck_abort_msg("unexpected %s", describe(&m));
        } else if (rc == R_EOF) {
            closed = now_ms() - t0;
            break;
        }
    }
    ck_assert_msg(closed > 0, "the trickling connection was still open after 5 s");
    ck_assert_msg(closed >= 500 && closed < 2500, "closed after %lld ms, deadline 600",
                  (long long)closed);
    peer_close(&slow);
    struct vnet_controller_stats st = stats();
    ck_assert_uint_eq(st.preauth_timed_out, 1);
    ck_assert_uint_eq(st.preauth_sessions, 0);
    ck_assert_uint_eq(st.node_sessions, 1);
    node_add(cl, "blue", "b"); /* the node let in long before is still served */
    pump_until(&node, &v, 3, WAIT_MS);
    peer_close(&node);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* Open @p from @src and check whether the controller kept it (true) or closed it at once. */
static bool peer_kept(struct peer *p, const char *src)
{
    peer_open_src(p, ctl.node_port, 0, src);
    struct vnet_msg m;
    int rc = peer_recv(p, &m, 300);
    ck_assert_msg(rc != R_MSG, "unexpected %s", describe(&m));
    return rc == R_TIMEOUT;
}

/* Idle unauthenticated connections are capped in total and per source address; connections
 * let in do not count, and closed ones free their place. */
START_TEST(t_preauth_caps)
{
    struct ctl_opts o = defaults;
    o.preauth_max = 6;
    o.preauth_per_ip = 3;
    struct vnet_client *cl = blue_start(&o); /* a client let in: not counted */
    struct peer p[8];
    for (int i = 0; i < 3; i++)
        ck_assert_msg(peer_kept(&p[i], "127.0.0.1"), "connection %d from .1 refused", i);
    ck_assert_msg(!peer_kept(&p[3], "127.0.0.1"), "a 4th from one address was kept");
    for (int i = 4; i < 7; i++)
        ck_assert_msg(peer_kept(&p[i], "127.0.0.2"), "connection %d from .2 refused", i);
    ck_assert_msg(!peer_kept(&p[7], "127.0.0.3"), "a 7th in total was kept");
    struct vnet_controller_stats st = stats();
    ck_assert_uint_eq(st.preauth_refused, 2);
    ck_assert_uint_eq(st.preauth_sessions, 6);
    /* One closes: its place is free once the controller has seen it go. */
    peer_close(&p[0]);
    int64_t until = now_ms() + WAIT_MS;
    while (stats().preauth_sessions != 5 && now_ms() < until)
        poll(NULL, 0, 10);
    ck_assert_uint_eq(stats().preauth_sessions, 5);
    struct peer n;
    node_connect(&n, 0, "blue", "a", 0, NULL); /* from .1: the 3rd there, the 6th in total */
    ck_assert_uint_eq(stats().preauth_sessions, 5);
    ck_assert_uint_eq(stats().node_sessions, 1);
    peer_close(&n);
    peer_close(&p[3]);
    peer_close(&p[7]);
    for (int i = 1; i < 7; i++)
        if (i != 3)
            peer_close(&p[i]);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* The node port serves nodes only and the API port clients only. */
START_TEST(t_roles)
{
    struct ctl_opts o = defaults;
    o.unix_socket = true;
    struct vnet_client *cl = blue_start(&o);
    struct peer p;
    peer_open(&p, 0);
    hello_as(&p, VNET_ROLE_CLIENT, "blue", "a", 0, VNET_PROTO_VERSION);
    expect_error_close(&p, VNET_EACCES, "nodes only");
    peer_close(&p);
    peer_open_port(&p, ctl.api_port, 0);
    hello_as(&p, VNET_ROLE_NODE, "blue", "a", 0, VNET_PROTO_VERSION);
    expect_error_close(&p, VNET_EACCES, "API clients only");
    peer_close(&p);
    /* vnetctl against the node port: refused, nothing created */
    char addr[64], err[256] = "";
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ctl.node_port);
    struct vnet_client *evil = NULL;
    int rc = vnet_client_connect(addr, WAIT_MS, &evil, err, sizeof(err));
    if (rc == 0) {
        struct vnet_msg r;
        struct vnet_msg_request q = rq(VNET_REQ_NETWORK_CREATE, "evil", NULL);
        memset(&r, 0, sizeof(r));
        rc = vnet_client_request(evil, &q, &r, err, sizeof(err));
        ck_assert_msg(rc != 0, "network create through the node port: %s",
                      r.type == VNET_MSG_REPLY ? vnet_err_name(r.u.reply.code) : "?");
        vnet_client_close(evil);
    }
    ck_assert_msg(strstr(err, "nodes only"), "err: %s", err);
    struct vnet_msg r;
    struct vnet_msg_request q = rq(VNET_REQ_NETWORK_LIST, NULL, NULL);
    ck_assert_int_eq(request(cl, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnetworks, 1);
    vnet_msg_free(&r);
    /* the Unix socket serves clients only too; the node port still serves nodes */
    struct vnet_client *adm = cl_open(ctl.sock);
    vnet_client_close(adm);
    struct view v = {0};
    node_connect(&p, 0, "blue", "a", 0, NULL);
    pump_until(&p, &v, 2, WAIT_MS);
    peer_close(&p);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* A member reporting another node's endpoint is refused: the first owner keeps it. */
START_TEST(t_endpoint_hijack)
{
    struct vnet_client *cl = blue_start(&defaults);
    node_add(cl, "blue", "b");
    struct peer a, b;
    struct view va = {0}, vb = {0};
    node_connect(&a, 0, "blue", "a", 0, NULL);
    pump_until(&a, &va, 3, WAIT_MS);
    node_connect(&b, 0, "blue", "b", 0, NULL);
    pump_until(&b, &vb, 3, WAIT_MS);
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ENDPOINT;
    ck_assert_int_eq(vnet_endpoint_parse("192.0.2.1:4789", &m.u.endpoint.ep), 0);
    peer_send(&a, &m);
    pump_until(&a, &va, 4, WAIT_MS);
    pump_until(&b, &vb, 4, WAIT_MS);
    peer_send(&b, &m); /* a's endpoint */
    int64_t until = now_ms() + WAIT_MS;
    while (stats().endpoints_refused == 0 && now_ms() < until)
        poll(NULL, 0, 10);
    ck_assert_uint_eq(stats().endpoints_refused, 1);
    uint64_t rev = 0;
    struct vnet_node_status sa = node_status(cl, "blue", "a", &rev),
                            sb = node_status(cl, "blue", "b", NULL);
    ck_assert_uint_eq(rev, 4); /* nothing changed */
    ck_assert(vnet_endpoint_eq(&sa.node.observed, &m.u.endpoint.ep));
    ck_assert_int_eq(sb.node.observed.ip.family, 0);
    /* b's session goes on: its own endpoint is taken */
    ck_assert_int_eq(vnet_endpoint_parse("192.0.2.2:4789", &m.u.endpoint.ep), 0);
    peer_send(&b, &m);
    pump_until(&b, &vb, 5, WAIT_MS);
    peer_close(&a);
    peer_close(&b);
    vnet_client_close(cl);
    ctl_stop();
}
END_TEST

/* Issue 12, item 7: before authentication every refusal of a node's HELLO is the same ERROR:
 * an unknown network, an unknown subscriber, an unknown node, a known node with the wrong key
 * or none, a join secret that does not fit. */
START_TEST(t_hello_refusals_alike)
{
    struct vnet_keypair key, k1, stranger;
    ck_assert_int_eq(vnet_key_generate(&key), 0);
    ck_assert_int_eq(vnet_key_generate(&k1), 0);
    ck_assert_int_eq(vnet_key_generate(&stranger), 0);
    struct vnet_client *adm = keyed_start(&key);
    node_add_key(adm, "a", &k1);
    node_add(adm, "blue", "b"); /* no key yet */

    static const struct {
        const char *net, *node;
    } names[] = {
        {"nowhere", "a"}, {"nobody/blue", "a"}, {"blue", "ghost"}, {"blue", "a"}, {"blue", "b"}};
    uint8_t secret[VNET_JOIN_SECRET_LEN];
    memset(secret, 7, sizeof(secret));
    char first[VNET_MSG_TEXT_MAX] = "";
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        for (int join = 0; join < 2; join++) {
            struct snode n;
            struct vnet__sess s;
            snode_hello(&n, &s, &stranger, key.pub, names[i].net, names[i].node,
                        join ? secret : NULL, stranger.pub);
            struct vnet_msg m;
            expect(&n.p, VNET_MSG_ERROR, &m);
            ck_assert_msg(m.u.error.code == VNET_EACCES, "%s/%s: %s", names[i].net, names[i].node,
                          describe(&m));
            if (!first[0])
                snprintf(first, sizeof(first), "%s", m.u.error.text);
            ck_assert_msg(strcmp(m.u.error.text, first) == 0, "%s/%s: '%s' differs from '%s'",
                          names[i].net, names[i].node, m.u.error.text, first);
            vnet_msg_free(&m);
            vnet__sess_wipe(&s);
            peer_close(&n.p);
        }
    ck_assert_str_eq(first, NODE_REFUSED);
    /* Without any handshake: the same again. */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct peer p;
        peer_open(&p, 0);
        hello(&p, names[i].net, names[i].node, 0, VNET_PROTO_VERSION);
        expect_error_close(&p, VNET_EACCES, NODE_REFUSED);
        peer_close(&p);
    }
    vnet_client_close(adm);
    ctl_stop();
}
END_TEST

/* Issue 12, item 2: a join secret sealed by the real node, lifted off the wire and replayed
 * behind a handshake with the attacker's own key, enrols nothing; the real node still joins
 * with it afterwards. */
START_TEST(t_join_stolen)
{
    struct vnet_keypair key, real, thief;
    ck_assert_int_eq(vnet_key_generate(&key), 0);
    ck_assert_int_eq(vnet_key_generate(&real), 0);
    ck_assert_int_eq(vnet_key_generate(&thief), 0);
    struct vnet_client *adm = keyed_start(&key);
    struct vnet_msg_request q = rq(VNET_REQ_NODE_ADD, "blue", "a");
    struct vnet_msg r;
    ck_assert_int_eq(request(adm, &q, &r), 0);
    uint8_t pub[VNET_KEY_LEN], secret[VNET_JOIN_SECRET_LEN];
    ck_assert_int_eq(vnet_join_token_parse(r.u.reply.token, pub, secret), 0);
    vnet_msg_free(&r);

    /* The sealed blob as the real node sends it (bound to its key), behind the thief's
     * handshake: refused, like any other refusal. */
    struct snode n;
    struct vnet__sess s;
    snode_hello(&n, &s, &thief, key.pub, "blue", "a", secret, real.pub);
    expect_error_close(&n.p, VNET_EACCES, NODE_REFUSED);
    vnet__sess_wipe(&s);
    peer_close(&n.p);
    /* Nothing was registered and the token is not used up. */
    q = rq(VNET_REQ_NODE_SHOW, "blue", "a");
    ck_assert_int_eq(request(adm, &q, &r), 0);
    ck_assert_uint_eq(r.u.reply.nnodes, 1);
    ck_assert(!r.u.reply.nodes[0].has_pubkey);
    vnet_msg_free(&r);

    /* The real node joins with its own, and gets the snapshot. */
    snode_hello(&n, &s, &real, key.pub, "blue", "a", secret, real.pub);
    snode_welcome(&n, &s);
    struct vnet_msg m;
    ck_assert_int_eq(snode_recv(&n, &m, WAIT_MS), R_MSG);
    ck_assert_int_eq(m.type, VNET_MSG_SNAPSHOT);
    vnet_msg_free(&m);
    peer_close(&n.p);
    q = rq(VNET_REQ_NODE_SHOW, "blue", "a");
    ck_assert_int_eq(request(adm, &q, &r), 0);
    ck_assert(r.u.reply.nodes[0].has_pubkey);
    ck_assert_mem_eq(r.u.reply.nodes[0].pubkey, real.pub, VNET_KEY_LEN);
    vnet_msg_free(&r);

    /* Issue 13: the node comes back with the same (used) token, e.g. restarted with the same
     * command line: its key is the registered one, so it is let in; the thief still is not. */
    snode_hello(&n, &s, &real, key.pub, "blue", "a", secret, real.pub);
    snode_welcome(&n, &s);
    peer_close(&n.p);
    snode_hello(&n, &s, &thief, key.pub, "blue", "a", secret, thief.pub);
    expect_error_close(&n.p, VNET_EACCES, NODE_REFUSED);
    vnet__sess_wipe(&s);
    peer_close(&n.p);
    vnet_client_close(adm);
    ctl_stop();
}
END_TEST

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void quiet_log(enum vnet_log_level level, const char *module, const char *msg, void *arg)
{
    (void)level;
    (void)module;
    (void)msg;
    (void)arg;
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vnet-controller-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    vnet_log_set_handler(quiet_log, NULL); /* refused sessions are logged on purpose */
    Suite *su = suite_create("controller");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 20);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, t_node_session);
    tcase_add_test(tc, t_reports);
    tcase_add_test(tc, t_metrics);
    tcase_add_test(tc, t_reconnect);
    tcase_add_test(tc, t_reconnect_pruned);
    tcase_add_test(tc, t_bad_sessions);
    tcase_add_test(tc, t_stuck_node);
    tcase_add_test(tc, t_keepalive);
    tcase_add_test(tc, t_replace);
    tcase_add_test(tc, t_requests);
    tcase_add_test(tc, t_other_writer);
    tcase_add_test(tc, t_slow_client);
    tcase_add_test(tc, t_create_errors);
    tcase_add_test(tc, t_subscribers);
    tcase_add_test(tc, t_open_api);
    tcase_add_test(tc, t_secure_tamper);
    tcase_add_test(tc, t_hello_refusals_alike);
    tcase_add_test(tc, t_join_stolen);
    TCase *hc = tcase_create("harden");
    tcase_set_timeout(hc, 30);
    tcase_add_checked_fixture(hc, NULL, teardown);
    tcase_add_test(hc, t_preauth_frame_limit);
    tcase_add_test(hc, t_handshake_deadline);
    tcase_add_test(hc, t_preauth_caps);
    tcase_add_test(hc, t_roles);
    tcase_add_test(hc, t_endpoint_hijack);
    suite_add_tcase(su, tc);
    suite_add_tcase(su, hc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
