/* The subscriber client: blocking sockets and poll(2) timeouts; no event loop. With a pinned
 * controller key, HELLO carries the handshake (and the sealed API token) and every later frame
 * body goes through the channel (vnet_chan_seal/open), as for node sessions. */
#include "vnet/client.h"

#include "session_int.h"
#include "vnet/crypto.h"
#include "vnet/error.h"
#include "vnet/token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <sodium.h>

struct vnet_client {
    struct vnet__sess_fd t;
    uint32_t timeout_ms;
    uint32_t next_id;
};

static void seterr(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, arg);
}

/* The next message other than a keepalive, with the failure told in the controller's terms. */
static int read_msg(struct vnet_client *c, struct vnet_msg *m, int64_t deadline, char *err,
                    size_t errlen)
{
    char why[192] = "";
    int rc = vnet__sess_fd_recv(&c->t, m, deadline, why, sizeof(why));
    if (rc == VNET_ETIMEDOUT)
        seterr(err, errlen, "%s", "no answer from the controller in time");
    else if (rc == VNET_EIO)
        seterr(err, errlen, "%s", "the controller closed the connection");
    else if (rc == VNET_EACCES)
        seterr(err, errlen, "%s", "a frame from the controller does not authenticate");
    else if (rc)
        seterr(err, errlen, "bad reply: %s", why);
    return rc;
}

/* HELLO.auth for an authenticated session: the handshake's first message, then the API token
 * (if any) sealed to the controller together with this connection's static key. */
static int write_auth(struct vnet_client *c, const struct vnet_client_opts *o,
                      struct vnet_msg_hello *h, char *err, size_t errlen)
{
    struct vnet_keypair me;
    uint8_t raw[VNET_API_TOKEN_LEN];
    int rc = vnet_key_generate(&me); /* clients have no registered key: a fresh one each time */
    if (!rc)
        rc = vnet__sess_hello(&c->t.codec, &me, o->controller_pub, h);
    if (rc) {
        seterr(err, errlen, "handshake: %s", vnet_strerror(rc));
    } else if (o->token) {
        rc = vnet_api_token_parse(o->token, raw);
        if (rc)
            seterr(err, errlen, "%s", "malformed API token (want vnetapi1-...)");
        else
            rc = vnet_api_token_seal(o->controller_pub, raw, me.pub, h->auth + h->auth_len);
        if (!rc)
            h->auth_len += VNET_API_SEALED_LEN;
        sodium_memzero(raw, sizeof(raw));
    }
    vnet_key_wipe(&me);
    if (rc)
        vnet__sess_hs_abort(&c->t.codec);
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
    socklen_t sslen = 0;
    struct vnet_endpoint eps[8];
    int neps = 0;
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
        char why[192];
        neps = vnet_endpoint_resolve(addr, 0, eps, sizeof(eps) / sizeof(eps[0]), why, sizeof(why));
        if (neps < 0) {
            seterr(err, errlen, "controller address: %s", why);
            return neps;
        }
    }
    struct vnet_client *c = calloc(1, sizeof(*c));
    if (!c)
        return VNET_ENOMEM;
    c->timeout_ms = o.timeout_ms ? o.timeout_ms : 10000;
    c->t.fd = -1;
    vnet__sess_init(&c->t.codec, 0);
    int64_t deadline = vnet__sess_now_ms() + c->timeout_ms;
    int rc = 0;
    /* A name's addresses in turn, as ssh and curl do, until one accepts. */
    for (int i = 0; i < (local ? 1 : neps); i++) {
        if (!local) {
            int len = vnet_endpoint_to_sockaddr(&eps[i], &ss);
            if (len < 0)
                continue;
            sslen = (socklen_t)len;
        }
        if (c->t.fd >= 0)
            close(c->t.fd); /* the previous address's attempt */
        c->t.fd = -1;
        rc = vnet__sess_fd_connect(&c->t, (struct sockaddr *)&ss, sslen, deadline);
        if (rc != VNET_ETIMEDOUT && rc != -ECONNREFUSED && rc != -ENETUNREACH &&
            rc != -EHOSTUNREACH && rc != -EADDRNOTAVAIL)
            break;
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
    if (o.controller_pub)
        rc = write_auth(c, &o, &m.u.hello, err, errlen);
    if (!rc)
        rc = vnet__sess_fd_send(&c->t, &m, deadline);
    sodium_memzero(&m, sizeof(m)); /* the sealed token */
    if (!rc)
        rc = read_msg(c, &m, deadline, err, errlen);
    if (!rc && m.type != VNET_MSG_WELCOME) {
        if (m.type == VNET_MSG_ERROR && o.controller_pub && m.u.error.code == VNET_EKEYREJECTED) {
            seterr(err, errlen, "%s",
                   "the controller's key does not match the pinned key: it could not open the "
                   "handshake");
            rc = VNET_EKEYREJECTED;
        } else if (m.type == VNET_MSG_ERROR) {
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
        } else if (vnet__sess_welcome(&c->t.codec, &m.u.welcome) != 0) {
            seterr(err, errlen, "%s",
                   "the controller's key does not match the pinned key: its welcome does not "
                   "prove it");
            rc = VNET_EKEYREJECTED;
        }
    }
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
    vnet__sess_fd_close(&c->t);
    free(c);
}

int vnet_client_request(struct vnet_client *c, const struct vnet_msg_request *req,
                        struct vnet_msg *reply, char *err, size_t errlen)
{
    int64_t deadline = vnet__sess_now_ms() + c->timeout_ms;
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_REQUEST;
    m.u.request = *req;
    m.u.request.id = ++c->next_id;
    int rc = vnet__sess_fd_send(&c->t, &m, deadline);
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
