/* Prometheus text exposition (format 0.0.4) builder, and the controller's metric hooks.
 * Private to libvnet (metrics.c; controller.c records into struct vnet__ctl_metrics). */
#ifndef VNET_METRICS_INT_H
#define VNET_METRICS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vnet_controller;
struct vnet_store;

/* A growing text. On allocation failure @err is set and later writes do nothing. */
struct vnet__mtext {
    char *buf;
    size_t len, cap;
    int err; /* 0 or VNET_ENOMEM */
};

/* printf into the text. */
void vnet__mt_printf(struct vnet__mtext *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "# HELP name help" (help escaped: backslash, newline) and "# TYPE name type". */
void vnet__mt_head(struct vnet__mtext *t, const char *name, const char *type, const char *help);
/* A label value escaped for the text format (backslash, double quote, newline) into @out
 * (always NUL-terminated, cut at @cap). Returns the escaped length it needed. */
size_t vnet__mt_escape(const char *v, char *out, size_t cap);
/* Build the label set `k1="v1",k2="v2"` from @n (key, value) pairs of strings. */
void vnet__mt_labels(char *out, size_t cap, int n, ...);
/* One sample line: name{labels} value ("" labels: no braces). */
void vnet__mt_u64(struct vnet__mtext *t, const char *name, const char *labels, uint64_t v);
void vnet__mt_f64(struct vnet__mtext *t, const char *name, const char *labels, double v);

/* A histogram of durations, fixed buckets (seconds: VNET__HIST_BOUNDS). */
#define VNET__HIST_N 10
extern const double vnet__hist_bounds[VNET__HIST_N];
struct vnet__hist {
    uint64_t bucket[VNET__HIST_N]; /* not cumulative; the last is +Inf */
    uint64_t count;
    uint64_t sum_ns;
};
void vnet__hist_observe(struct vnet__hist *h, uint64_t ns);
/* The _bucket (cumulative, le), _sum and _count lines of @h under @name with @labels. */
void vnet__mt_hist(struct vnet__mtext *t, const char *name, const char *labels,
                   const struct vnet__hist *h);

uint64_t vnet__mono_ns(void);

/* ---- controller ---- */

#define VNET__REQ_OPS 16 /* enum vnet_req_op values 1..15 */
enum vnet__store_call {
    VNET__STORE_REQUEST = 0,
    VNET__STORE_SNAPSHOT,
    VNET__STORE_CHANGES,
    VNET__STORE_HELLO,
    VNET__STORE_CALLS
};

/* What the controller counts for /metrics, beyond struct vnet_controller_stats (loop thread). */
struct vnet__ctl_metrics {
    uint64_t requests[VNET__REQ_OPS][2]; /* [op][0 ok, 1 error] */
    struct vnet__hist store[VNET__STORE_CALLS];
};

/* controller.c */
void vnet__ctl_request_done(struct vnet__ctl_metrics *m, int op, int rc, uint64_t ns);
const struct vnet__ctl_metrics *vnet__controller_metrics(const struct vnet_controller *c);
struct vnet_store *vnet__controller_store(const struct vnet_controller *c);
/* Node @node_id: connected now, and the last revision it acknowledged (0: never). */
void vnet__controller_node_acked(const struct vnet_controller *c, uint64_t node_id, bool *connected,
                                 uint64_t *acked);
/* Node sessions now: how many, and how many wait for a snapshot (fell behind). */
void vnet__controller_node_sessions(const struct vnet_controller *c, uint64_t *n,
                                    uint64_t *need_snapshot);

#endif
