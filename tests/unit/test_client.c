/* Unit tests of the typed client calls (client.h): each against a real controller with a key,
 * a temporary SQLite file, a Unix socket (the admin) and a TCP API (subscribers with tokens).
 *
 * The controller runs in a forked process on its own libuv loop; it reports its API port on a
 * pipe once it listens, so the test waits for that event, never for time to pass. It dies with
 * the test (PR_SET_PDEATHSIG) or when the test kills it. */
#include "vnet/client.h"
#include "vnet/controller.h"
#include "vnet/crypto.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/store.h"

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define TIMEOUT_MS 5000

static char tmpdir[PATH_MAX];

static struct {
    pid_t pid;
    char sock[PATH_MAX + 32];
    char api[32];
    struct vnet_keypair key;
} srv;

static void quiet_log(enum vnet_log_level level, const char *module, const char *msg, void *arg)
{
    (void)level;
    (void)module;
    (void)msg;
    (void)arg;
}

/* The controller process: listen, tell the parent the API port (0 on failure), serve. */
static void serve(int wfd, const char *db)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    vnet_log_set_handler(quiet_log, NULL);
    struct vnet_store_opts so = {0, 0, false};
    struct vnet_store *st = NULL;
    struct vnet_controller *c = NULL;
    uv_loop_t loop;
    int port = 0;
    char err[256];
    if (uv_loop_init(&loop) == 0 && vnet_store_open(db, &so, &st, err, sizeof(err)) == 0) {
        struct vnet_controller_cfg cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.loop = &loop;
        cfg.store = st;
        cfg.api_listen = "127.0.0.1:0";
        cfg.api_socket = srv.sock;
        cfg.key = &srv.key;
        if (vnet_controller_create(&cfg, &c) == 0)
            port = vnet_controller_api_port(c);
    }
    if (write(wfd, &port, sizeof(port)) != sizeof(port) || !port)
        _exit(1);
    close(wfd);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
}

static void setup(void)
{
    static int seq;
    char db[PATH_MAX + 32];
    int p[2];
    snprintf(db, sizeof(db), "%s/ctl-%d-%d.db", tmpdir, (int)getpid(), seq);
    snprintf(srv.sock, sizeof(srv.sock), "%s/ctl-%d-%d.sock", tmpdir, (int)getpid(), seq++);
    ck_assert_int_eq(vnet_key_generate(&srv.key), 0);
    ck_assert_int_eq(pipe(p), 0);
    srv.pid = fork();
    ck_assert_int_ge(srv.pid, 0);
    if (srv.pid == 0) {
        close(p[0]);
        serve(p[1], db);
    }
    close(p[1]);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int port = 0;
    ck_assert_msg(poll(&pf, 1, TIMEOUT_MS) == 1, "the controller did not start in time");
    ck_assert_int_eq(read(p[0], &port, sizeof(port)), sizeof(port));
    close(p[0]);
    ck_assert_msg(port > 0, "the controller did not start");
    snprintf(srv.api, sizeof(srv.api), "127.0.0.1:%d", port);
}

static void stop_controller(void)
{
    if (srv.pid > 0) {
        kill(srv.pid, SIGKILL);
        waitpid(srv.pid, NULL, 0);
        srv.pid = 0;
    }
}

static void teardown(void)
{
    stop_controller();
}

static struct vnet_client *admin(void)
{
    struct vnet_client *c = NULL;
    char err[256] = "";
    int rc = vnet_client_connect(srv.sock, TIMEOUT_MS, &c, err, sizeof(err));
    ck_assert_msg(rc == 0, "connect %s: %s (%s)", srv.sock, vnet_err_name(rc), err);
    return c;
}

/* A subscriber's session over TCP; returns the code (and *out on success). */
static int subscriber(const char *token, struct vnet_client **out)
{
    struct vnet_client_opts o = {TIMEOUT_MS, srv.key.pub, token};
    char err[256] = "";
    return vnet_client_connect2(srv.api, &o, out, err, sizeof(err));
}

static struct vnet_prefix pfx(const char *s)
{
    struct vnet_prefix p;
    ck_assert_int_eq(vnet_prefix_parse(s, &p), 0);
    return p;
}

static struct vnet_ip ip(const char *s)
{
    struct vnet_ip a;
    ck_assert_int_eq(vnet_ip_parse(s, &a), 0);
    return a;
}

static struct vnet_endpoint ep(const char *s)
{
    struct vnet_endpoint e;
    ck_assert_int_eq(vnet_endpoint_parse(s, &e), 0);
    return e;
}

static const char *fmt_ip(const struct vnet_ip *a, char *buf, size_t len)
{
    ck_assert_int_ge(vnet_ip_format(a, buf, len), 0);
    return buf;
}

static const char *fmt_ep(const struct vnet_endpoint *e, char *buf, size_t len)
{
    ck_assert_int_ge(vnet_endpoint_format(e, buf, len), 0);
    return buf;
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        ck_assert_msg(rc_ == 0, "%s: %s (%s)", #call, vnet_err_name(rc_), err);                    \
    } while (0)

#define FAILS(want, call)                                                                          \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        ck_assert_msg(rc_ == (want), "%s: %s, want %s (%s)", #call, vnet_err_name(rc_),            \
                      vnet_err_name(want), err);                                                   \
    } while (0)

START_TEST(t_networks)
{
    struct vnet_client *c = admin();
    char err[256], buf[64];
    struct vnet_client_networks *l = NULL;
    OK(vnet_client_network_list(c, &l, err, sizeof(err)));
    ck_assert_uint_eq(l->count, 0);
    ck_assert_ptr_nonnull(l->owners); /* the admin's view, even when empty */
    vnet_client_free(l);

    struct vnet_client_network_opts o = {0};
    o.vni = 4242;
    o.subnet4 = pfx("10.42.0.0/24");
    o.subnet6 = pfx("fd42::/64");
    o.mtu = 1300;
    o.mode = VNET_CLIENT_MODE_PLAIN;
    struct vnet_network blue, red;
    OK(vnet_client_network_create(c, "blue", &o, &blue, err, sizeof(err)));
    ck_assert_str_eq(blue.name, "blue");
    ck_assert_uint_eq(blue.vni, 4242);
    ck_assert_uint_eq(blue.mtu, 1300);
    ck_assert_uint_eq(blue.mode, VNET_MODE_PLAIN);
    vnet_prefix_format(&blue.subnet4, buf, sizeof(buf));
    ck_assert_str_eq(buf, "10.42.0.0/24");
    vnet_prefix_format(&blue.subnet6, buf, sizeof(buf));
    ck_assert_str_eq(buf, "fd42::/64");
    /* Defaults: the lowest free VNI, secure (the controller has a key) with its MTU. */
    OK(vnet_client_network_create(c, "red", NULL, &red, err, sizeof(err)));
    ck_assert_uint_eq(red.vni, 1);
    ck_assert_uint_eq(red.mode, VNET_MODE_SECURE);
    ck_assert_uint_eq(red.mtu, 1400);
    ck_assert_uint_eq(red.subnet4.ip.family, 0);
    OK(vnet_client_network_create(c, "green", &(struct vnet_client_network_opts){.mtu = 1450}, NULL,
                                  err, sizeof(err)));

    /* The controller's refusal: its code and its reason. */
    FAILS(VNET_EEXIST, vnet_client_network_create(c, "other", &o, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "4242"), "err: %s", err);
    FAILS(VNET_EEXIST, vnet_client_network_create(c, "red", NULL, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "red"), "err: %s", err);

    OK(vnet_client_network_list(c, &l, err, sizeof(err)));
    ck_assert_str_eq(err, ""); /* cleared on success */
    ck_assert_uint_eq(l->count, 3);
    ck_assert_str_eq(l->networks[0].name, "blue");
    ck_assert_str_eq(l->networks[1].name, "green");
    ck_assert_str_eq(l->networks[2].name, "red");
    ck_assert_uint_eq(l->networks[2].id, red.id);
    ck_assert_ptr_nonnull(l->owners);
    for (uint32_t i = 0; i < l->count; i++) {
        ck_assert_str_eq(l->owners[i].name, "admin");
        ck_assert(l->owners[i].admin);
        ck_assert_uint_eq(l->owners[i].id, l->networks[i].subscriber_id);
    }
    vnet_client_free(l);

    struct vnet_client_network *v = NULL;
    OK(vnet_client_network_show(c, "blue", &v, err, sizeof(err)));
    ck_assert_str_eq(v->network.name, "blue");
    ck_assert_uint_eq(v->network.id, blue.id);
    ck_assert_uint_eq(v->count, 0);
    vnet_client_free(v);
    v = NULL;
    FAILS(VNET_ENOENT, vnet_client_network_show(c, "nope", &v, err, sizeof(err)));
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(err, "nope"), "err: %s", err);

    OK(vnet_client_network_delete(c, "red", err, sizeof(err)));
    FAILS(VNET_ENOENT, vnet_client_network_delete(c, "red", err, sizeof(err)));
    ck_assert_msg(strstr(err, "red"), "err: %s", err);
    OK(vnet_client_network_list(c, &l, err, sizeof(err)));
    ck_assert_uint_eq(l->count, 2);
    vnet_client_free(l);
    vnet_client_close(c);
}
END_TEST

/* Refused before anything is sent: the session stays usable and nothing was created. */
START_TEST(t_bad_arguments)
{
    struct vnet_client *c = admin();
    char err[256], name[80];
    struct vnet_client_networks *l = NULL;
    struct vnet_client_new_node nn;
    memset(name, 'x', 64);
    name[64] = '\0';
    FAILS(VNET_EINVAL, vnet_client_network_create(c, name, NULL, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "network name"), "err: %s", err);
    FAILS(VNET_EINVAL, vnet_client_network_create(c, "", NULL, NULL, err, sizeof(err)));
    FAILS(VNET_EINVAL, vnet_client_network_create(c, NULL, NULL, NULL, err, sizeof(err)));
    FAILS(VNET_EINVAL, vnet_client_network_create(NULL, "a", NULL, NULL, err, sizeof(err)));
    struct vnet_client_network_opts o = {.vni = VNET_VNI_MAX + 1};
    FAILS(VNET_EINVAL, vnet_client_network_create(c, "a", &o, NULL, err, sizeof(err)));
    o = (struct vnet_client_network_opts){.subnet4 = pfx("fd00::/64")};
    FAILS(VNET_EINVAL, vnet_client_network_create(c, "a", &o, NULL, err, sizeof(err)));
    o = (struct vnet_client_network_opts){.subnet6 = pfx("10.0.0.0/8")};
    FAILS(VNET_EINVAL, vnet_client_network_create(c, "a", &o, NULL, err, sizeof(err)));
    o = (struct vnet_client_network_opts){.mode = (enum vnet_client_mode)7};
    FAILS(VNET_EINVAL, vnet_client_network_create(c, "a", &o, NULL, err, sizeof(err)));
    FAILS(VNET_EINVAL, vnet_client_network_list(c, NULL, err, sizeof(err)));
    FAILS(VNET_EINVAL, vnet_client_node_add(c, "a", "b", NULL, NULL, err, sizeof(err)));
    FAILS(VNET_EINVAL, vnet_client_node_add(c, "a", name, NULL, &nn, err, sizeof(err)));
    ck_assert_msg(strstr(err, "node name"), "err: %s", err);
    FAILS(VNET_EINVAL, vnet_client_node_move(c, "a", "b", NULL, NULL, err, sizeof(err)));
    FAILS(VNET_EINVAL, vnet_client_subscriber_delete(c, "", err, sizeof(err)));
    ck_assert_msg(strstr(err, "subscriber name"), "err: %s", err);
    /* err may be NULL. */
    FAILS(VNET_EINVAL, vnet_client_network_delete(c, "", NULL, 0));

    OK(vnet_client_network_list(c, &l, err, sizeof(err)));
    ck_assert_uint_eq(l->count, 0);
    vnet_client_free(l);
    vnet_client_free(NULL);
    vnet_client_close(c);
}
END_TEST

START_TEST(t_nodes)
{
    struct vnet_client *c = admin();
    char err[256], buf[64];
    struct vnet_client_network_opts no = {.subnet4 = pfx("10.42.0.0/24"),
                                          .subnet6 = pfx("fd42::/64")};
    struct vnet_network net;
    OK(vnet_client_network_create(c, "blue", &no, &net, err, sizeof(err)));

    /* Without a key given, a controller with a key makes a join token. */
    struct vnet_client_node_opts o = {0};
    o.phys = ep("192.0.2.1:4789");
    struct vnet_client_new_node n1, n2;
    OK(vnet_client_node_add(c, "blue", "n1", &o, &n1, err, sizeof(err)));
    ck_assert_str_eq(n1.node.name, "n1");
    ck_assert_str_eq(fmt_ip(&n1.node.ips[0], buf, sizeof(buf)), "10.42.0.1");
    ck_assert_str_eq(fmt_ep(&n1.node.phys, buf, sizeof(buf)), "192.0.2.1:4789");
    ck_assert_uint_gt(strlen(n1.join_token), 16);

    /* Everything given, with a key: no token. */
    struct vnet_keypair nk;
    ck_assert_int_eq(vnet_key_generate(&nk), 0);
    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(vnet_mac_parse("02:00:00:00:42:02", &o.mac), 0);
    o.has_mac = true;
    o.ip4 = ip("10.42.0.20");
    o.ip6 = ip("fd42::20");
    memcpy(o.pubkey, nk.pub, sizeof(o.pubkey));
    o.has_pubkey = true;
    OK(vnet_client_node_add(c, "blue", "n2", &o, &n2, err, sizeof(err)));
    ck_assert_str_eq(n2.join_token, "");
    ck_assert_mem_eq(n2.node.mac.b, o.mac.b, 6);
    ck_assert_str_eq(fmt_ip(&n2.node.ips[0], buf, sizeof(buf)), "10.42.0.20");
    ck_assert_str_eq(fmt_ip(&n2.node.ips[1], buf, sizeof(buf)), "fd42::20");
    ck_assert(n2.node.has_pubkey);
    ck_assert_mem_eq(n2.node.pubkey, nk.pub, VNET_PUBKEY_LEN);
    ck_assert_uint_gt(n2.node.revision, n1.node.revision);
    /* One family given, the other the next free one. */
    struct vnet_client_new_node n3;
    struct vnet_client_node_opts o3 = {.ip4 = ip("10.42.0.33")};
    OK(vnet_client_node_add(c, "blue", "n3", &o3, &n3, err, sizeof(err)));
    ck_assert_str_eq(fmt_ip(&n3.node.ips[0], buf, sizeof(buf)), "10.42.0.33");
    ck_assert_str_eq(fmt_ip(&n3.node.ips[1], buf, sizeof(buf)), "fd42::2");
    OK(vnet_client_node_remove(c, "blue", "n3", err, sizeof(err)));
    o3 = (struct vnet_client_node_opts){.ip6 = ip("fd42::33")};
    OK(vnet_client_node_add(c, "blue", "n3", &o3, &n3, err, sizeof(err)));
    ck_assert_str_eq(fmt_ip(&n3.node.ips[0], buf, sizeof(buf)), "10.42.0.2");
    ck_assert_str_eq(fmt_ip(&n3.node.ips[1], buf, sizeof(buf)), "fd42::33");
    OK(vnet_client_node_remove(c, "blue", "n3", err, sizeof(err)));

    /* Refused by the client (multicast MAC, address in the wrong field), by the controller. */
    struct vnet_client_new_node x;
    struct vnet_client_node_opts bad = {.has_mac = true};
    ck_assert_int_eq(vnet_mac_parse("03:00:00:00:00:01", &bad.mac), 0);
    FAILS(VNET_EINVAL, vnet_client_node_add(c, "blue", "n3", &bad, &x, err, sizeof(err)));
    bad = (struct vnet_client_node_opts){.ip4 = ip("fd42::30")};
    FAILS(VNET_EINVAL, vnet_client_node_add(c, "blue", "n3", &bad, &x, err, sizeof(err)));
    bad = (struct vnet_client_node_opts){.mac = o.mac, .has_mac = true};
    FAILS(VNET_EEXIST, vnet_client_node_add(c, "blue", "n3", &bad, &x, err, sizeof(err)));
    ck_assert_msg(strstr(err, "n2"), "err: %s", err);
    FAILS(VNET_ENOENT, vnet_client_node_add(c, "nope", "n3", NULL, &x, err, sizeof(err)));

    struct vnet_client_nodes *l = NULL;
    OK(vnet_client_node_list(c, "blue", &l, err, sizeof(err)));
    ck_assert_uint_eq(l->count, 2);
    ck_assert_str_eq(l->nodes[0].name, "n1");
    ck_assert_str_eq(l->nodes[1].name, "n2");
    ck_assert_uint_eq(l->nodes[1].id, n2.node.id);
    vnet_client_free(l);

    struct vnet_client_network *v = NULL;
    OK(vnet_client_network_show(c, "blue", &v, err, sizeof(err)));
    ck_assert_uint_eq(v->count, 2);
    ck_assert_str_eq(v->nodes[1].name, "n2");
    ck_assert_uint_gt(v->network.revision, n2.node.revision); /* n3 came and went since */
    vnet_client_free(v);

    struct vnet_node_info n;
    OK(vnet_client_node_show(c, "blue", "n2", &n, err, sizeof(err)));
    ck_assert_uint_eq(n.id, n2.node.id);
    FAILS(VNET_ENOENT, vnet_client_node_show(c, "blue", "ghost", &n, err, sizeof(err)));
    ck_assert_msg(strstr(err, "ghost"), "err: %s", err);

    struct vnet_endpoint to = ep("[2001:db8::2]:4790");
    OK(vnet_client_node_move(c, "blue", "n2", &to, &n, err, sizeof(err)));
    ck_assert_str_eq(fmt_ep(&n.phys, buf, sizeof(buf)), "[2001:db8::2]:4790");
    ck_assert_uint_gt(n.revision, n2.node.revision);
    struct vnet_endpoint none = {0};
    FAILS(VNET_EINVAL, vnet_client_node_move(c, "blue", "n2", &none, &n, err, sizeof(err)));

    struct vnet_client_status *st = NULL;
    OK(vnet_client_network_status(c, "blue", &st, err, sizeof(err)));
    ck_assert_str_eq(st->network.name, "blue");
    ck_assert_uint_eq(st->network.revision, n.revision);
    ck_assert_uint_eq(st->count, 2);
    ck_assert_str_eq(st->nodes[0].node.name, "n1");
    ck_assert_str_eq(st->nodes[1].node.name, "n2");
    ck_assert(!st->nodes[0].connected && !st->nodes[1].connected);
    vnet_client_free(st);

    OK(vnet_client_node_revoke(c, "blue", "n2", err, sizeof(err)));
    OK(vnet_client_node_show(c, "blue", "n2", &n, err, sizeof(err)));
    ck_assert(!n.has_pubkey);
    FAILS(VNET_ENOENT, vnet_client_node_revoke(c, "blue", "ghost", err, sizeof(err)));

    OK(vnet_client_node_remove(c, "blue", "n1", err, sizeof(err)));
    FAILS(VNET_ENOENT, vnet_client_node_remove(c, "blue", "n1", err, sizeof(err)));
    OK(vnet_client_node_list(c, "blue", &l, err, sizeof(err)));
    ck_assert_uint_eq(l->count, 1);
    ck_assert_str_eq(l->nodes[0].name, "n2");
    vnet_client_free(l);
    vnet_client_close(c);
}
END_TEST

START_TEST(t_subscribers)
{
    struct vnet_client *c = admin(), *s = NULL;
    char err[256];
    struct vnet_client_new_token alice, again;
    OK(vnet_client_subscriber_create(c, "alice", &alice, err, sizeof(err)));
    ck_assert_str_eq(alice.subscriber.name, "alice");
    ck_assert(!alice.subscriber.admin && alice.subscriber.has_token);
    ck_assert_int_eq(strncmp(alice.token, "vnetapi1-", 9), 0);
    FAILS(VNET_EEXIST, vnet_client_subscriber_create(c, "alice", &again, err, sizeof(err)));

    struct vnet_client_subscribers *subs = NULL;
    OK(vnet_client_subscriber_list(c, &subs, err, sizeof(err)));
    ck_assert_uint_eq(subs->count, 2);
    ck_assert(subs->subscribers[0].admin);
    ck_assert_str_eq(subs->subscribers[1].name, "alice");
    ck_assert_uint_eq(subs->subscribers[1].id, alice.subscriber.id);
    vnet_client_free(subs);

    /* Alice over TCP sees only her own networks, with no owners, and manages no one. */
    ck_assert_int_eq(subscriber(alice.token, &s), 0);
    struct vnet_network mine;
    OK(vnet_client_network_create(c, "adm", NULL, NULL, err, sizeof(err)));
    OK(vnet_client_network_create(s, "anet", NULL, &mine, err, sizeof(err)));
    ck_assert_uint_eq(mine.subscriber_id, alice.subscriber.id);
    struct vnet_client_networks *l = NULL;
    OK(vnet_client_network_list(s, &l, err, sizeof(err)));
    ck_assert_uint_eq(l->count, 1);
    ck_assert_str_eq(l->networks[0].name, "anet");
    ck_assert_ptr_null(l->owners);
    vnet_client_free(l);
    subs = NULL;
    FAILS(VNET_EPERM, vnet_client_subscriber_list(s, &subs, err, sizeof(err)));
    ck_assert_ptr_null(subs);
    ck_assert_msg(strstr(err, "admin"), "err: %s", err);
    vnet_client_close(s);

    /* The admin sees the owner. */
    OK(vnet_client_network_list(c, &l, err, sizeof(err)));
    ck_assert_uint_eq(l->count, 2);
    ck_assert_str_eq(l->networks[1].name, "anet");
    ck_assert_str_eq(l->owners[1].name, "alice");
    ck_assert_str_eq(l->owners[0].name, "admin");
    vnet_client_free(l);

    /* A new token replaces the old. */
    OK(vnet_client_subscriber_token(c, "alice", &again, err, sizeof(err)));
    ck_assert_str_ne(again.token, alice.token);
    ck_assert_int_eq(subscriber(alice.token, &s), VNET_EACCES);
    ck_assert_int_eq(subscriber(again.token, &s), 0);
    vnet_client_close(s);
    FAILS(VNET_ENOENT, vnet_client_subscriber_token(c, "bob", &again, err, sizeof(err)));

    FAILS(VNET_EBUSY, vnet_client_subscriber_delete(c, "alice", err, sizeof(err)));
    OK(vnet_client_network_delete(c, "alice/anet", err, sizeof(err)));
    OK(vnet_client_subscriber_delete(c, "alice", err, sizeof(err)));
    FAILS(VNET_ENOENT, vnet_client_subscriber_delete(c, "alice", err, sizeof(err)));
    vnet_client_close(c);
}
END_TEST

/* A transport failure comes back as such, with a reason, and frees nothing it did not make. */
START_TEST(t_transport_error)
{
    struct vnet_client *c = admin();
    char err[256];
    struct vnet_client_networks *l = NULL;
    OK(vnet_client_network_create(c, "blue", NULL, NULL, err, sizeof(err)));
    stop_controller();
    int rc = vnet_client_network_list(c, &l, err, sizeof(err));
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_null(l);
    ck_assert_msg(err[0], "no reason given for %s", vnet_err_name(rc));
    vnet_client_close(c);
}
END_TEST

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vnet-client-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    Suite *su = suite_create("client");
    TCase *tc = tcase_create("typed");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_networks);
    tcase_add_test(tc, t_bad_arguments);
    tcase_add_test(tc, t_nodes);
    tcase_add_test(tc, t_subscribers);
    tcase_add_test(tc, t_transport_error);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
