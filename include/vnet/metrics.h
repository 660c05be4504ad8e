/* libvnet: a node's and a controller's counters as Prometheus text.
 *
 * The library renders; the embedder serves (vnet-node and vnet-controller answer
 * GET /metrics with libmicrohttpd, examples/metrics_http.c). The text is the Prometheus text
 * exposition format, version 0.0.4 (content type "text/plain; version=0.0.4"): # HELP and
 * # TYPE lines, counters ending in _total, label values escaped. docs/metrics.md lists every
 * metric.
 */
#ifndef VNET_METRICS_H
#define VNET_METRICS_H

#include <stddef.h>

#include "vnet/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vnet_node;
struct vnet_controller;

#define VNET_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/**
 * Render the node's metrics: ports, drops by reason, peers (counters, round-trip time from
 * the data plane's probes, key age in secure networks), switch table, controller session.
 * Counters are read as vnet_node_get_stats() reads them (relaxed loads of counters the worker
 * threads write), so the text is consistent enough for monitoring, not a snapshot.
 * Ownership: *@out is the caller's, NUL-terminated, *@len bytes without the NUL; free it with
 * vnet_metrics_free().
 * Returns: 0, VNET_EINVAL (a NULL pointer), VNET_ENOMEM.
 * Thread-safety: the node's loop thread (peer lists and session state belong to it).
 */
VNET_API int vnet_node_metrics_write(const struct vnet_node *n, char **out, size_t *len);

/**
 * Render the controller's metrics: sessions by kind and state, requests by type and result,
 * store call durations (histograms), convergence lag per node (the network's revision in the
 * store minus the revision the node last acknowledged), and its other counters. Reads the
 * store (networks and their nodes) for the lag.
 * Ownership: as vnet_node_metrics_write().
 * Returns: 0, VNET_EINVAL, VNET_ENOMEM, or a store error.
 * Thread-safety: the controller's loop thread.
 */
VNET_API int vnet_controller_metrics_write(struct vnet_controller *c, char **out, size_t *len);

/**
 * Free a text from vnet_*_metrics_write().
 * Ownership: takes @text. Returns: nothing. Thread-safety: any thread. NULL ignored.
 */
VNET_API void vnet_metrics_free(char *text);

#ifdef __cplusplus
}
#endif
#endif
