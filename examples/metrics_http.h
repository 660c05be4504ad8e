/* --metrics IP:PORT for vnet-node and vnet-controller: GET /metrics answered with the text a
 * render function gives (libvnet's vnet_*_metrics_write), served by libmicrohttpd driven from
 * the program's libuv loop. So the render runs on the loop thread, where libvnet's node and
 * controller state lives: no lock and no thread hand-off (docs/metrics.md). */
#ifndef VNET_EXAMPLES_METRICS_HTTP_H
#define VNET_EXAMPLES_METRICS_HTTP_H

#include <stddef.h>
#include <uv.h>

struct metrics_http;

/* Renders the text: *out is freed with vnet_metrics_free(). Returns 0 or a VNET_E* code. */
typedef int (*metrics_render_fn)(void *arg, char **out, size_t *len);

/* Is @spec a valid --metrics value: IP:PORT or [IPv6]:PORT, port 1..65535? Returns 0, or -1
 * with the reason in @why (a usage error). */
int metrics_http_check(const char *spec, char *why, size_t whylen);

/* Open the listening socket for @spec (checked): done before anything else starts, so that a
 * port in use fails the program before it changed anything. Returns the fd, or -1 with one
 * line in @err ("--metrics IP:PORT: cannot listen: Address already in use"). */
int metrics_http_listen(const char *spec, char *err, size_t errlen);

/* Serve GET /metrics on listening socket @fd (taken) from @loop. Returns 0, or -1 with one line
 * in @err (@fd is closed then). */
int metrics_http_start(struct metrics_http **out, uv_loop_t *loop, int fd, metrics_render_fn fn,
                       void *arg, char *err, size_t errlen);

/* Stop serving and close the loop handles (their close callbacks free it). NULL ignored. */
void metrics_http_close(struct metrics_http *h);

#endif
