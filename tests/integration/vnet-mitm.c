/* vnet-mitm: a man in the middle between vnet-node and vnet-controller, for mitm_test.sh
 * (issue 12, items 1 and 2). It accepts node connections on LISTEN and relays each, one at a
 * time, to the controller at UPSTREAM, byte for byte, except:
 *
 *   relay                 nothing: an honest path (the test's positive control)
 *   welcome FIELD=VALUE   the first frame from the controller (the WELCOME) is decoded, one
 *                         setting changed, encoded again and passed on with its auth bytes
 *                         untouched: mode=0|1, vni=N, mtu=N, mac=MAC, ip=IP (the first)
 *   steal CONTROLLER_KEY  the node's HELLO is held; its join secret (the bytes behind the
 *                         handshake message in HELLO.auth) is replayed first behind a
 *                         handshake of our own, with a fresh key of ours, on a connection of
 *                         our own; what the controller answers is printed; then the node's
 *                         HELLO goes on unchanged
 *
 * Every event is one line on stdout ("mitm: ..."), flushed, for the test to wait for.
 * Usage: vnet-mitm LISTEN_IP:PORT UPSTREAM_IP:PORT MODE [ARG]
 */
#include "../../libvnet/session_int.h"
#include "vnet/crypto.h"
#include "vnet/error.h"
#include "vnet/proto.h"
#include "vnet/types.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum mode { M_RELAY, M_WELCOME, M_STEAL };

static struct {
    enum mode mode;
    char field[16], value[64];
    uint8_t ctl_pub[VNET_KEY_LEN];
    struct sockaddr_storage up;
    socklen_t uplen;
} cfg;

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("mitm: ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

static int parse_ep(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    struct vnet_endpoint ep;
    if (vnet_endpoint_parse(s, &ep) != 0)
        return -1;
    int n = vnet_endpoint_to_sockaddr(&ep, ss);
    if (n < 0)
        return -1;
    *len = (socklen_t)n;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one whole frame (length prefix included) into @buf (grown as needed). Blocking. */
static int read_frame(int fd, uint8_t **buf, size_t *len)
{
    uint8_t hdr[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t r = recv(fd, hdr + got, 4 - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    uint32_t body =
        (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (body > (1u << 20))
        return -1;
    uint8_t *b = malloc(4 + body);
    if (!b)
        return -1;
    memcpy(b, hdr, 4);
    got = 0;
    while (got < body) {
        ssize_t r = recv(fd, b + 4 + got, body - got, 0);
        if (r <= 0) {
            free(b);
            return -1;
        }
        got += (size_t)r;
    }
    *buf = b;
    *len = 4 + body;
    return 0;
}

static int connect_up(void)
{
    int fd = socket(cfg.up.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&cfg.up, cfg.uplen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Change the WELCOME in @frame as configured; the result replaces it. */
static int tamper_welcome(uint8_t **frame, size_t *len)
{
    struct vnet_msg m;
    char err[128] = "";
    if (vnet_msg_decode(*frame + 4, *len - 4, &m, err, sizeof(err)) != 0 ||
        m.type != VNET_MSG_WELCOME) {
        say("first controller frame is not a WELCOME (%s)", err);
        return -1;
    }
    struct vnet_network *net = &m.u.welcome.network;
    struct vnet_node_info *self = &m.u.welcome.node;
    int rc = 0;
    if (strcmp(cfg.field, "mode") == 0)
        net->mode = (uint8_t)atoi(cfg.value);
    else if (strcmp(cfg.field, "vni") == 0)
        net->vni = (uint32_t)strtoul(cfg.value, NULL, 10);
    else if (strcmp(cfg.field, "mtu") == 0)
        net->mtu = (uint32_t)strtoul(cfg.value, NULL, 10);
    else if (strcmp(cfg.field, "mac") == 0)
        rc = vnet_mac_parse(cfg.value, &self->mac);
    else if (strcmp(cfg.field, "ip") == 0)
        rc = vnet_ip_parse(cfg.value, &self->ips[0]);
    else
        rc = -1;
    struct vnet_buf b = {0};
    if (!rc)
        rc = vnet_msg_encode(&m, &b);
    vnet_msg_free(&m);
    if (rc) {
        vnet_buf_free(&b);
        say("cannot rewrite %s=%s", cfg.field, cfg.value);
        return -1;
    }
    free(*frame);
    *frame = b.data;
    *len = b.len;
    say("rewrote WELCOME %s=%s (auth untouched)", cfg.field, cfg.value);
    return 0;
}

/* The theft: the node's sealed join secret behind a handshake with our own key, made with
 * libvnet's own session layer (as a node would), so that a controller that let us in would
 * show it: a WELCOME that authenticates and a snapshot we can open. */
static void steal(const uint8_t *frame, size_t len)
{
    struct vnet_msg h;
    if (vnet_msg_decode(frame + 4, len - 4, &h, NULL, 0) != 0 || h.type != VNET_MSG_HELLO) {
        say("first node frame is not a HELLO");
        return;
    }
    if (h.u.hello.auth_len <= VNET_HS_HELLO_LEN) {
        say("the HELLO carries no join secret");
        return;
    }
    uint32_t extra = h.u.hello.auth_len - VNET_HS_HELLO_LEN;
    say("captured a sealed join secret (%u bytes) of node %s", extra, h.u.hello.node);
    uint8_t sealed[VNET_AUTH_MAX];
    memcpy(sealed, h.u.hello.auth + VNET_HS_HELLO_LEN, extra);
    struct vnet_keypair mine;
    struct vnet__sess s;
    memset(&s, 0, sizeof(s));
    vnet__sess_init(&s, VNET__SESS_SEALED_MAX);
    struct vnet_buf b = {0};
    int fd = -1;
    if (vnet_key_generate(&mine) != 0 || vnet__sess_hello(&s, &mine, cfg.ctl_pub, &h.u.hello)) {
        say("cannot make our own handshake");
        goto out;
    }
    memcpy(h.u.hello.auth + h.u.hello.auth_len, sealed, extra);
    h.u.hello.auth_len += extra;
    fd = connect_up();
    if (fd < 0 || vnet_msg_encode(&h, &b) != 0 || write_all(fd, b.data, b.len) != 0) {
        say("cannot send our HELLO");
        goto out;
    }
    bool welcomed = false;
    for (;;) {
        struct vnet_msg r;
        char why[192] = "";
        int rc = vnet__sess_next(&s, &r, why, sizeof(why));
        if (rc < 0) {
            say("stolen join: %s", why);
            break;
        }
        if (rc == 0) {
            uint8_t buf[65536];
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0) {
                say("stolen join: connection closed");
                break;
            }
            vnet__sess_feed(&s, buf, (size_t)n);
            continue;
        }
        bool done = true;
        if (r.type == VNET_MSG_ERROR) {
            say("stolen join: refused: %s", r.u.error.text);
        } else if (r.type == VNET_MSG_WELCOME && !welcomed) {
            if (vnet__sess_welcome(&s, &r.u.welcome) == 0) {
                say("stolen join: WELCOME (our key enrolled)");
                welcomed = true;
                done = false;
            } else {
                say("stolen join: a WELCOME that does not authenticate");
            }
        } else if (r.type == VNET_MSG_SNAPSHOT) {
            say("stolen join: got the SNAPSHOT (%zu nodes)", r.u.snapshot.nnodes);
        } else {
            say("stolen join: answer type %d", (int)r.type);
            done = !welcomed;
        }
        vnet_msg_free(&r);
        if (done)
            break;
    }
out:
    vnet_buf_free(&b);
    if (fd >= 0)
        close(fd);
    vnet__sess_wipe(&s);
    vnet_key_wipe(&mine);
}

/* Relay one node connection until either side closes. */
static void relay(int node)
{
    int ctl = -1;
    uint8_t *f = NULL;
    size_t flen = 0;
    if (cfg.mode == M_STEAL) { /* hold the HELLO, try the theft first */
        if (read_frame(node, &f, &flen) != 0)
            goto out;
        steal(f, flen);
    }
    ctl = connect_up();
    if (ctl < 0) {
        say("cannot reach the controller");
        goto out;
    }
    if (f && write_all(ctl, f, flen) != 0)
        goto out;
    free(f);
    f = NULL;
    if (cfg.mode == M_WELCOME) {
        /* The node's HELLO passes as it is: only bytes from the controller are held. */
        struct pollfd p[2] = {{.fd = node, .events = POLLIN}, {.fd = ctl, .events = POLLIN}};
        for (;;) {
            if (poll(p, 2, -1) < 0 && errno != EINTR)
                goto out;
            if (p[1].revents)
                break;
            if (p[0].revents) {
                uint8_t buf[4096];
                ssize_t r = recv(node, buf, sizeof(buf), 0);
                if (r <= 0 || write_all(ctl, buf, (size_t)r) != 0)
                    goto out;
            }
        }
        if (read_frame(ctl, &f, &flen) != 0 || tamper_welcome(&f, &flen) != 0 ||
            write_all(node, f, flen) != 0)
            goto out;
    }
    struct pollfd p[2] = {{.fd = node, .events = POLLIN}, {.fd = ctl, .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (!p[i].revents)
                continue;
            uint8_t buf[65536];
            ssize_t r = recv(p[i].fd, buf, sizeof(buf), 0);
            if (r <= 0 || write_all(p[1 - i].fd, buf, (size_t)r) != 0)
                goto out;
        }
    }
out:
    free(f);
    if (ctl >= 0)
        close(ctl);
    close(node);
    say("connection closed");
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr,
                "usage: %s LISTEN_IP:PORT UPSTREAM_IP:PORT relay | welcome FIELD=VALUE "
                "| steal CONTROLLER_KEY\n",
                argv[0]);
        return 2;
    }
    struct sockaddr_storage ls;
    socklen_t llen;
    if (parse_ep(argv[1], &ls, &llen) != 0 || parse_ep(argv[2], &cfg.up, &cfg.uplen) != 0) {
        fprintf(stderr, "bad address\n");
        return 2;
    }
    if (strcmp(argv[3], "relay") == 0) {
        cfg.mode = M_RELAY;
    } else if (strcmp(argv[3], "welcome") == 0 && argc > 4 && strchr(argv[4], '=')) {
        cfg.mode = M_WELCOME;
        const char *eq = strchr(argv[4], '=');
        snprintf(cfg.field, sizeof(cfg.field), "%.*s", (int)(eq - argv[4]), argv[4]);
        snprintf(cfg.value, sizeof(cfg.value), "%s", eq + 1);
    } else if (strcmp(argv[3], "steal") == 0 && argc > 4 &&
               vnet_pubkey_parse(argv[4], cfg.ctl_pub) == 0) {
        cfg.mode = M_STEAL;
    } else {
        fprintf(stderr, "bad mode\n");
        return 2;
    }
    if (vnet_crypto_init() < 0)
        return 1;
    int lfd = socket(ls.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&ls, llen) != 0 || listen(lfd, 8) != 0) {
        perror("listen");
        return 1;
    }
    say("listening on %s, upstream %s, %s", argv[1], argv[2], argv[3]);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        say("node connected");
        relay(fd);
    }
}
