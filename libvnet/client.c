/* The subscriber client: blocking sockets and poll(2) timeouts; no event loop. With a pinned
 * controller key, HELLO carries the handshake (and the sealed API token) and every later frame
 * body goes through the channel (vnet_chan_seal/open), as for node sessions. */
#include "vnet/client.h"
#include "vnet/crypto.h"
#include "vnet/error.h"
#include "vnet/token.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_PROLOGUE "vnet-client" /* binds the role into the handshake transcript */

struct vnet_client {
    int fd;
    uint32_t timeout_ms;
    uint32_t next_id;
    struct vnet_frame_reader rd;
    bool secure; /* after the handshake: every frame body sealed/opened */
    struct vnet_chan tx, rx;
};

static void seterr(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, arg);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return VNET_ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = ev};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

static int write_all(struct vnet_client *c, const uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = wait_fd(c->fd, POLLOUT, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

/* Read until one whole message other than a keepalive has been decoded. */
static int read_msg(struct vnet_client *c, struct vnet_msg *m, int64_t deadline, char *err,
                    size_t errlen)
{
    for (;;) {
        const uint8_t *body;
        size_t len;
        int rc = vnet_frame_reader_next(&c->rd, &body, &len);
        if (rc < 0) {
            seterr(err, errlen, "%s", "frame over the size limit");
            return rc;
        }
        if (rc == 1) {
            char why[128] = "";
            uint8_t *plain = NULL;
            if (c->secure) {
                size_t plen = 0;
                plain = malloc(len ? len : 1);
                if (!plain)
                    return VNET_ENOMEM;
                rc = vnet_chan_open(&c->rx, body, len, plain, len, &plen);
                if (rc) {
                    free(plain);
                    seterr(err, errlen, "%s", "a frame from the controller does not authenticate");
                    return VNET_EACCES;
                }
                body = plain;
                len = plen;
            }
            rc = vnet_msg_decode(body, len, m, why, sizeof(why));
            free(plain);
            if (rc) {
                seterr(err, errlen, "malformed reply: %s", why);
                return rc;
            }
            if (m->type == VNET_MSG_KEEPALIVE) {
                vnet_msg_free(m);
                continue;
            }
            return 0;
        }
        uint8_t buf[16384];
        ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0) {
            seterr(err, errlen, "%s", "the controller closed the connection");
            return VNET_EIO;
        }
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return -errno;
            rc = wait_fd(c->fd, POLLIN, deadline);
            if (rc) {
                seterr(err, errlen, "%s", "no answer from the controller in time");
                return rc;
            }
            continue;
        }
        rc = vnet_frame_reader_feed(&c->rd, buf, (size_t)r);
        if (rc)
            return rc;
    }
}

static int send_msg(struct vnet_client *c, const struct vnet_msg *m, int64_t deadline)
{
    struct vnet_buf b = {0};
    int rc = vnet_msg_encode(m, &b);
    if (!rc && c->secure) {
        size_t body = b.len - 4, outl = 0;
        size_t sl = vnet_chan_sealed_len(&c->tx, body);
        uint8_t *sealed = malloc(4 + sl);
        if (!sealed) {
            rc = VNET_ENOMEM;
        } else if ((rc = vnet_chan_seal(&c->tx, b.data + 4, body, sealed + 4, sl, &outl)) == 0) {
            sealed[0] = (uint8_t)(outl >> 24);
            sealed[1] = (uint8_t)(outl >> 16);
            sealed[2] = (uint8_t)(outl >> 8);
            sealed[3] = (uint8_t)outl;
            rc = write_all(c, sealed, 4 + outl, deadline);
        }
        free(sealed);
    } else if (!rc) {
        rc = write_all(c, b.data, b.len, deadline);
    }
    vnet_buf_free(&b);
    return rc;
}

/* HELLO.auth for an authenticated session: the handshake's first message, then the API token
 * (if any) sealed to the controller together with this connection's static key. */
static int write_auth(struct vnet_hs *hs, const struct vnet_client_opts *o,
                      struct vnet_msg_hello *h, char *err, size_t errlen)
{
    struct vnet_keypair me;
    uint8_t raw[VNET_API_TOKEN_LEN];
    size_t n = 0;
    int rc = vnet_key_generate(&me); /* clients have no registered key: a fresh one each time */
    if (!rc)
        rc = vnet_hs_init_initiator(hs, &me, o->controller_pub, CLIENT_PROLOGUE,
                                    strlen(CLIENT_PROLOGUE));
    if (!rc) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rc = vnet_hs_write_hello(hs, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000,
                                 h->auth, sizeof(h->auth), &n);
    }
    if (rc) {
        seterr(err, errlen, "handshake: %s", vnet_strerror(rc));
    } else if (o->token) {
        rc = vnet_api_token_parse(o->token, raw);
        if (rc)
            seterr(err, errlen, "%s", "malformed API token (want vnetapi1-...)");
        else
            rc = vnet_api_token_seal(o->controller_pub, raw, me.pub, h->auth + n);
        if (!rc)
            n += VNET_API_SEALED_LEN;
        sodium_memzero(raw, sizeof(raw));
    }
    vnet_key_wipe(&me);
    h->auth_len = (uint32_t)n;
    if (rc)
        vnet_hs_wipe(hs);
    return rc;
}

int vnet_client_connect(const char *addr, uint32_t timeout_ms, struct vnet_client **out, char *err,
                        size_t errlen)
{
    struct vnet_client_opts o = {.timeout_ms = timeout_ms};
    return vnet_client_connect2(addr, &o, out, err, errlen);
}

int vnet_client_connect2(const char *addr, const struct vnet_client_opts *opts,
                         struct vnet_client **out, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct vnet_client_opts o = {0};
    memset(&ss, 0, sizeof(ss));
    if (opts)
        o = *opts;
    if (!addr || !out)
        return VNET_EINVAL;
    bool local = strchr(addr, '/') != NULL;
    if (local) {
        o.controller_pub = NULL; /* the socket's permissions make us the admin */
        o.token = NULL;
    } else if (o.token && !o.controller_pub) {
        seterr(err, errlen, "%s", "an API token needs the controller's public key to be sent");
        return VNET_EINVAL;
    }
    if (local) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        if (strlen(addr) >= sizeof(un->sun_path)) {
            seterr(err, errlen, "socket path too long: %s", addr);
            return VNET_EINVAL;
        }
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, addr);
        sslen = sizeof(*un);
    } else {
        struct vnet_endpoint ep;
        int rc = vnet_endpoint_parse(addr, &ep);
        if (rc) {
            seterr(err, errlen, "bad controller address '%s' (want IP:PORT or a socket path)",
                   addr);
            return rc;
        }
        rc = vnet_endpoint_to_sockaddr(&ep, &ss);
        if (rc < 0)
            return rc;
        sslen = (socklen_t)rc;
    }
    struct vnet_client *c = calloc(1, sizeof(*c));
    if (!c)
        return VNET_ENOMEM;
    c->timeout_ms = o.timeout_ms ? o.timeout_ms : 10000;
    vnet_frame_reader_init(&c->rd, 0);
    c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int64_t deadline = now_ms() + c->timeout_ms;
    int rc = c->fd < 0 ? -errno : 0;
    if (!rc && connect(c->fd, (struct sockaddr *)&ss, sslen) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
        } else if ((rc = wait_fd(c->fd, POLLOUT, deadline)) == 0) {
            int soerr = 0;
            socklen_t l = sizeof(soerr);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
            rc = -soerr;
        }
    }
    if (rc) {
        seterr(err, errlen, "cannot connect to %s: ", addr);
        if (err && errlen) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, "%s", rc == VNET_ETIMEDOUT ? "timed out" : strerror(-rc));
        }
        vnet_client_close(c);
        return rc;
    }
    struct vnet_msg m;
    struct vnet_hs hs;
    memset(&m, 0, sizeof(m));
    memset(&hs, 0, sizeof(hs));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = VNET_PROTO_VERSION;
    m.u.hello.role = VNET_ROLE_CLIENT;
    if (o.controller_pub)
        rc = write_auth(&hs, &o, &m.u.hello, err, errlen);
    if (!rc)
        rc = send_msg(c, &m, deadline);
    sodium_memzero(&m, sizeof(m)); /* the sealed token */
    if (!rc)
        rc = read_msg(c, &m, deadline, err, errlen);
    if (!rc && m.type != VNET_MSG_WELCOME) {
        if (m.type == VNET_MSG_ERROR) {
            seterr(err, errlen, "refused: %s", m.u.error.text);
            rc = m.u.error.code < 0 ? m.u.error.code : VNET_EPROTO;
        } else {
            seterr(err, errlen, "%s", "unexpected answer to hello");
            rc = VNET_EPROTO;
        }
    }
    if (!rc && o.controller_pub) {
        if (m.u.welcome.auth_len == 0) {
            seterr(err, errlen, "%s",
                   "the controller did not authenticate itself (does it have a key?): refusing "
                   "to go on");
            rc = VNET_EACCES;
        } else if ((rc = vnet_hs_read_welcome(&hs, m.u.welcome.auth, m.u.welcome.auth_len)) != 0) {
            seterr(err, errlen, "%s",
                   "the controller does not hold the pinned key (wrong --controller-key?)");
            rc = VNET_EACCES;
        } else if ((rc = vnet_hs_split(&hs, &c->tx, &c->rx)) == 0) {
            c->secure = true;
            c->rd.max = VNET_FRAME_MAX + VNET_CHAN_HEADER_LEN + VNET_CHAN_OVERHEAD;
        }
    }
    vnet_hs_wipe(&hs);
    vnet_msg_free(&m); /* a welcome or an error */
    if (rc) {
        vnet_client_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void vnet_client_close(struct vnet_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    vnet_frame_reader_free(&c->rd);
    vnet_chan_wipe(&c->tx);
    vnet_chan_wipe(&c->rx);
    free(c);
}

int vnet_client_request(struct vnet_client *c, const struct vnet_msg_request *req,
                        struct vnet_msg *reply, char *err, size_t errlen)
{
    int64_t deadline = now_ms() + c->timeout_ms;
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_REQUEST;
    m.u.request = *req;
    m.u.request.id = ++c->next_id;
    int rc = send_msg(c, &m, deadline);
    if (rc) {
        seterr(err, errlen, "cannot send the request: %s", vnet_strerror(rc));
        return rc;
    }
    rc = read_msg(c, reply, deadline, err, errlen);
    if (rc)
        return rc;
    if (reply->type == VNET_MSG_ERROR) {
        seterr(err, errlen, "%s", reply->u.error.text);
        rc = reply->u.error.code < 0 ? reply->u.error.code : VNET_EPROTO;
        vnet_msg_free(reply);
        return rc;
    }
    if (reply->type != VNET_MSG_REPLY || reply->u.reply.id != m.u.request.id) {
        vnet_msg_free(reply);
        seterr(err, errlen, "%s", "unexpected answer from the controller");
        return VNET_EPROTO;
    }
    return 0;
}
