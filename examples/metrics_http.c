/* Prometheus endpoint of the programs: libmicrohttpd without a thread of its own. MHD runs in
 * epoll mode; its epoll fd is watched by a uv_poll on the program's loop and MHD_run() is called
 * when it is readable or when MHD's own timeout (idle connections) expires. Each GET /metrics
 * thus renders on the loop thread, between two of the loop's callbacks. */
#include "metrics_http.h"

#include "vnet/error.h"
#include "vnet/metrics.h"
#include "vnet/types.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct metrics_http {
    struct MHD_Daemon *d;
    uv_poll_t poll;
    uv_timer_t timer;
    int closing;
    metrics_render_fn fn;
    void *arg;
};

int metrics_http_check(const char *spec, char *why, size_t whylen)
{
    struct vnet_endpoint ep;
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon[1] == 0 || *end || port < 1 || port > 65535) {
        snprintf(why, whylen, "bad --metrics '%s': want IP:PORT or [IPv6]:PORT, port 1-65535",
                 spec ? spec : "");
        return -1;
    }
    if (vnet_endpoint_parse(spec, &ep) != 0) {
        snprintf(why, whylen,
                 "bad --metrics '%s': want IP:PORT or [IPv6]:PORT (an address, "
                 "not a name)",
                 spec);
        return -1;
    }
    return 0;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    struct metrics_http *h = cls;
    (void)version;
    (void)upload;
    (void)con_cls;
    if (*upload_len)
        return MHD_NO; /* a GET has no body: close */
    unsigned status = MHD_HTTP_OK;
    const char *type = VNET_METRICS_CONTENT_TYPE;
    char *text = NULL;
    size_t len = 0;
    struct MHD_Response *r;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") != 0) {
        status = MHD_HTTP_NOT_FOUND;
    } else if (h->fn(h->arg, &text, &len) != 0) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        text = NULL;
    }
    if (status == MHD_HTTP_OK) {
        r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_COPY);
        vnet_metrics_free(text);
    } else {
        static char msg[64];
        snprintf(msg, sizeof(msg), "%s\n",
                 status == MHD_HTTP_NOT_FOUND            ? "not found: the metrics are at /metrics"
                 : status == MHD_HTTP_METHOD_NOT_ALLOWED ? "method not allowed"
                                                         : "cannot render the metrics");
        r = MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
        type = "text/plain; charset=utf-8";
    }
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_timer(uv_timer_t *t);

/* Let MHD work, then wake it again when its next timeout is due. */
static void run(struct metrics_http *h)
{
    MHD_run(h->d);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->d, &ms) == MHD_YES)
        uv_timer_start(&h->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&h->timer);
}

static void on_timer(uv_timer_t *t)
{
    run(t->data);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run(p->data);
}

/* The listening socket is made here rather than by MHD, for an error that names the cause. */
int metrics_http_listen(const char *spec, char *err, size_t errlen)
{
    struct vnet_endpoint ep;
    if (metrics_http_check(spec, err, errlen) != 0 || vnet_endpoint_parse(spec, &ep) != 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    if (ep.ip.family == VNET_AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(ep.port);
        memcpy(&a->sin_addr, ep.ip.addr, 4);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(ep.port);
        memcpy(&a->sin6_addr, ep.ip.addr, 16);
        sl = sizeof(*a);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
        snprintf(err, errlen, "--metrics %s: cannot listen: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int metrics_http_start(struct metrics_http **out, uv_loop_t *loop, int fd, metrics_render_fn fn,
                       void *arg, char *err, size_t errlen)
{
    struct metrics_http *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "--metrics: out of memory");
        close(fd);
        return -1;
    }
    h->fn = fn;
    h->arg = arg;
    h->d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, answer, h, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                            MHD_OPTION_END);
    const union MHD_DaemonInfo *di =
        h->d ? MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!di) {
        snprintf(err, errlen, "--metrics: cannot start the HTTP server");
        if (h->d)
            MHD_stop_daemon(h->d);
        close(fd);
        free(h);
        return -1;
    }
    uv_poll_init(loop, &h->poll, di->epoll_fd);
    uv_timer_init(loop, &h->timer);
    h->poll.data = h->timer.data = h;
    uv_poll_start(&h->poll, UV_READABLE, on_readable);
    *out = h;
    return 0;
}

static void on_closed(uv_handle_t *hd)
{
    struct metrics_http *h = hd->data;
    if (--h->closing == 0) {
        MHD_stop_daemon(h->d); /* closes the listening socket it was given, too */
        free(h);
    }
}

void metrics_http_close(struct metrics_http *h)
{
    if (!h || h->closing)
        return;
    h->closing = 2;
    uv_close((uv_handle_t *)&h->poll, on_closed);
    uv_close((uv_handle_t *)&h->timer, on_closed);
}
