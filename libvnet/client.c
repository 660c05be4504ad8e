/* The subscriber client: blocking sockets and poll(2) timeouts; no event loop. */
#include "vnet/client.h"
#include "vnet/error.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct vnet_client {
    int fd;
    uint32_t timeout_ms;
    uint32_t next_id;
    struct vnet_frame_reader rd;
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
            rc = vnet_msg_decode(body, len, m, why, sizeof(why));
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
    if (!rc)
        rc = write_all(c, b.data, b.len, deadline);
    vnet_buf_free(&b);
    return rc;
}

int vnet_client_connect(const char *addr, uint32_t timeout_ms, struct vnet_client **out, char *err,
                        size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));
    if (!addr || !out)
        return VNET_EINVAL;
    if (strchr(addr, '/')) {
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
    c->timeout_ms = timeout_ms ? timeout_ms : 10000;
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
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = VNET_PROTO_VERSION;
    m.u.hello.role = VNET_ROLE_CLIENT;
    rc = send_msg(c, &m, deadline);
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
    vnet_msg_free(&m); /* a hello (nothing owned), a welcome or an error */
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
