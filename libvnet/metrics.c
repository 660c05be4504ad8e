/* Prometheus text for a node and a controller. The text is built in one growing buffer; every
 * value is read the way the module's own stats getters read it, on the owner's loop thread.
 */
#include "vnet/metrics.h"

#include "controller_api_int.h"
#include "metrics_int.h"
#include "vec_int.h"
#include "vnet/controller.h"
#include "vnet/datapath.h"
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/node.h"
#include "vnet/proto.h"
#include "vnet/store.h"
#include "vnet/switch_table.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the text builder ---- */

uint64_t vnet__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void vnet__mt_printf(struct vnet__mtext *t, const char *fmt, ...)
{
    if (t->err)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int k = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            t->err = VNET_EINVAL;
            return;
        }
        if (t->buf && (size_t)k < room) {
            t->len += (size_t)k;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + (size_t)k + 1)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->err = VNET_ENOMEM;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
}

void vnet__mt_head(struct vnet__mtext *t, const char *name, const char *type, const char *help)
{
    vnet__mt_printf(t, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            vnet__mt_printf(t, "\\\\");
        else if (*p == '\n')
            vnet__mt_printf(t, "\\n");
        else
            vnet__mt_printf(t, "%c", *p);
    }
    vnet__mt_printf(t, "\n# TYPE %s %s\n", name, type);
}

size_t vnet__mt_escape(const char *v, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = v; *p; p++) {
        const char *rep = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        char one[2] = {*p, 0};
        for (const char *r = rep ? rep : one; *r; r++, n++)
            if (n + 1 < cap)
                out[n] = *r;
    }
    if (cap)
        out[n < cap ? n : cap - 1] = 0;
    return n;
}

void vnet__mt_labels(char *out, size_t cap, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    size_t off = 0;
    if (cap)
        out[0] = 0;
    for (int i = 0; i < n && off < cap; i++) {
        const char *k = va_arg(ap, const char *);
        const char *v = va_arg(ap, const char *);
        int w = snprintf(out + off, cap - off, "%s%s=\"", i ? "," : "", k);
        if (w < 0 || (size_t)w >= cap - off)
            break;
        off += (size_t)w;
        off += vnet__mt_escape(v, out + off, cap - off);
        if (off + 1 >= cap)
            break;
        out[off++] = '"';
        out[off] = 0;
    }
    va_end(ap);
}

void vnet__mt_u64(struct vnet__mtext *t, const char *name, const char *labels, uint64_t v)
{
    if (labels && labels[0])
        vnet__mt_printf(t, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
    else
        vnet__mt_printf(t, "%s %llu\n", name, (unsigned long long)v);
}

void vnet__mt_f64(struct vnet__mtext *t, const char *name, const char *labels, double v)
{
    if (labels && labels[0])
        vnet__mt_printf(t, "%s{%s} %.9g\n", name, labels, v);
    else
        vnet__mt_printf(t, "%s %.9g\n", name, v);
}

const double vnet__hist_bounds[VNET__HIST_N] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                0.005,  0.01,    0.05,   0.25,  0 /* +Inf */};

void vnet__hist_observe(struct vnet__hist *h, uint64_t ns)
{
    double s = (double)ns / 1e9;
    int i = 0;
    while (i < VNET__HIST_N - 1 && s > vnet__hist_bounds[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_ns += ns;
}

void vnet__mt_hist(struct vnet__mtext *t, const char *name, const char *labels,
                   const struct vnet__hist *h)
{
    uint64_t cum = 0;
    for (int i = 0; i < VNET__HIST_N; i++) {
        cum += h->bucket[i];
        char le[32];
        if (i == VNET__HIST_N - 1)
            snprintf(le, sizeof(le), "+Inf");
        else
            snprintf(le, sizeof(le), "%g", vnet__hist_bounds[i]);
        vnet__mt_printf(t, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, labels[0] ? "," : "",
                        le, (unsigned long long)cum);
    }
    char n2[128];
    snprintf(n2, sizeof(n2), "%s_sum", name);
    vnet__mt_f64(t, n2, labels, (double)h->sum_ns / 1e9);
    snprintf(n2, sizeof(n2), "%s_count", name);
    vnet__mt_u64(t, n2, labels, h->count);
}

static int finish(struct vnet__mtext *t, char **out, size_t *len)
{
    if (!t->err && !t->buf)
        vnet__mt_printf(t, "%s", "");
    if (t->err) {
        free(t->buf);
        return t->err;
    }
    *out = t->buf;
    *len = t->len;
    return 0;
}

void vnet_metrics_free(char *text)
{
    free(text);
}

/* ---- node ---- */

#define MAX_PEERS 4096

/* One family with a single unlabelled sample. */
static void one_u64(struct vnet__mtext *t, const char *name, const char *type, const char *help,
                    uint64_t v)
{
    vnet__mt_head(t, name, type, help);
    vnet__mt_u64(t, name, "", v);
}

static void node_ports(struct vnet__mtext *t, const struct vnet_datapath_stats *st)
{
    static const char *const port[2] = {"virtual", "underlay"};
    const struct vnet_dp_port_stats *ps[2] = {&st->vport, &st->uport};
    char l[128];
    static const struct {
        const char *name, *help;
        size_t rx, tx;
    } fam[2] = {
        {"vnet_node_port_packets_total",
         "Packets through a port of the data path (virtual: the node's side, underlay: the UDP "
         "socket), by direction.",
         offsetof(struct vnet_dp_port_stats, rx_packets),
         offsetof(struct vnet_dp_port_stats, tx_packets)},
        {"vnet_node_port_bytes_total", "Bytes through a port of the data path, by direction.",
         offsetof(struct vnet_dp_port_stats, rx_bytes),
         offsetof(struct vnet_dp_port_stats, tx_bytes)},
    };
    for (int f = 0; f < 2; f++) {
        vnet__mt_head(t, fam[f].name, "counter", fam[f].help);
        for (int i = 0; i < 2; i++)
            for (int dir = 0; dir < 2; dir++) {
                uint64_t v;
                memcpy(&v, (const char *)ps[i] + (dir ? fam[f].tx : fam[f].rx), sizeof(v));
                vnet__mt_labels(l, sizeof(l), 2, "port", port[i], "direction", dir ? "tx" : "rx");
                vnet__mt_u64(t, fam[f].name, l, v);
            }
    }
    vnet__mt_head(t, "vnet_node_drops_total", "counter",
                  "Frames and datagrams the data path dropped, by reason (docs/metrics.md).");
    for (int d = 0; d < VNET_DP_DROP__MAX; d++) {
        vnet__mt_labels(l, sizeof(l), 1, "reason", vnet_dp_drop_name((enum vnet_dp_drop)d));
        vnet__mt_u64(t, "vnet_node_drops_total", l, st->drops[d]);
    }
    vnet__mt_head(t, "vnet_node_decap_drops_total", "counter",
                  "Underlay datagrams that were no valid VXLAN, by reason (the \"decap\" drops).");
    for (int r = 1; r < VNET_DROP__MAX && r < 32; r++) {
        vnet__mt_labels(l, sizeof(l), 1, "reason", vnet_drop_reason_name((enum vnet_drop_reason)r));
        vnet__mt_u64(t, "vnet_node_decap_drops_total", l, st->decap[r]);
    }
    one_u64(t, "vnet_node_arp_replies_total", "counter", "ARP requests answered from the table.",
            st->arp_replies);
    one_u64(t, "vnet_node_nd_replies_total", "counter",
            "IPv6 neighbour solicitations answered from the table.", st->nd_replies);
    one_u64(t, "vnet_node_flooded_total", "counter",
            "Broadcast, multicast and unknown-unicast frames replicated to every peer.",
            st->flooded);
    one_u64(t, "vnet_node_learned_total", "counter", "MAC entries learned.", st->learned);
    one_u64(t, "vnet_node_too_big_sent_total", "counter",
            "ICMP fragmentation-needed / packet-too-big messages sent to the virtual port.",
            st->too_big_sent);
}

/* Per-peer data counters summed over the queues, and queue 0's probe and key state. */
struct peer_row {
    struct vnet_dp_peer_stats s;
    struct vnet_dp_peer_info info;
    bool has_info;
    char labels[160];
};

static void node_peers(struct vnet__mtext *t, const struct vnet_node *n, unsigned nq)
{
    struct vnet_dp_peer_stats *tmp = calloc(MAX_PEERS, sizeof(*tmp));
    struct vnet_dp_peer_info *info = calloc(MAX_PEERS, sizeof(*info));
    struct peer_row *rows = calloc(MAX_PEERS, sizeof(*rows));
    if (!tmp || !info || !rows) {
        t->err = VNET_ENOMEM;
        goto out;
    }
    size_t nrows = 0;
    for (unsigned q = 0; q < nq; q++) {
        size_t k = vnet_node_peer_stats(n, q, tmp, MAX_PEERS);
        k = k < MAX_PEERS ? k : MAX_PEERS;
        for (size_t i = 0; i < k; i++) {
            size_t r = 0;
            while (r < nrows && !vnet_endpoint_eq(&rows[r].s.ep, &tmp[i].ep))
                r++;
            if (r == nrows) {
                rows[nrows++].s = tmp[i];
                continue;
            }
            rows[r].s.tx_packets += tmp[i].tx_packets;
            rows[r].s.tx_bytes += tmp[i].tx_bytes;
            rows[r].s.rx_packets += tmp[i].rx_packets;
            rows[r].s.rx_bytes += tmp[i].rx_bytes;
        }
    }
    size_t ni = nq ? vnet_node_peer_info(n, 0, info, MAX_PEERS) : 0;
    ni = ni < MAX_PEERS ? ni : MAX_PEERS;
    for (size_t r = 0; r < nrows; r++) {
        for (size_t i = 0; i < ni && !rows[r].has_info; i++)
            if (vnet_endpoint_eq(&info[i].ep, &rows[r].s.ep)) {
                rows[r].info = info[i];
                rows[r].has_info = true;
            }
        char ep[VNET_ENDPOINT_STRLEN], id[24];
        vnet_endpoint_format(&rows[r].s.ep, ep, sizeof(ep));
        snprintf(id, sizeof(id), "%llu", (unsigned long long)rows[r].info.id);
        vnet__mt_labels(rows[r].labels, sizeof(rows[r].labels), 2, "peer", ep, "peer_id", id);
    }
    one_u64(t, "vnet_node_peers", "gauge", "Peers in the flood list.", nrows);
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"vnet_node_peer_packets_total", "Data frames exchanged with a peer, by direction."},
        {"vnet_node_peer_bytes_total", "Bytes of data frames (inner) exchanged with a peer."},
    };
    for (int f = 0; f < 2; f++) {
        vnet__mt_head(t, fam[f].name, "counter", fam[f].help);
        for (size_t r = 0; r < nrows; r++) {
            char l[200];
            snprintf(l, sizeof(l), "%s,direction=\"rx\"", rows[r].labels);
            vnet__mt_u64(t, fam[f].name, l, f ? rows[r].s.rx_bytes : rows[r].s.rx_packets);
            snprintf(l, sizeof(l), "%s,direction=\"tx\"", rows[r].labels);
            vnet__mt_u64(t, fam[f].name, l, f ? rows[r].s.tx_bytes : rows[r].s.tx_packets);
        }
    }
    vnet__mt_head(t, "vnet_node_peer_rtt_seconds", "gauge",
                  "Round-trip time to a peer, measured by the data plane's last answered probe "
                  "(peers that answered one only).");
    for (size_t r = 0; r < nrows; r++)
        if (rows[r].has_info && rows[r].info.rtt_ns)
            vnet__mt_f64(t, "vnet_node_peer_rtt_seconds", rows[r].labels,
                         (double)rows[r].info.rtt_ns / 1e9);
    vnet__mt_head(t, "vnet_node_peer_probe_reply_age_seconds", "gauge",
                  "Time since a peer last answered a probe: a growing value means the peer "
                  "stopped answering and the RTT is stale.");
    for (size_t r = 0; r < nrows; r++)
        if (rows[r].has_info && rows[r].info.reply_age_ms >= 0)
            vnet__mt_f64(t, "vnet_node_peer_probe_reply_age_seconds", rows[r].labels,
                         (double)rows[r].info.reply_age_ms / 1e3);
    static const struct {
        const char *name, *help;
        size_t off;
    } probe[] = {
        {"vnet_node_peer_probes_sent_total", "Probe requests sent to a peer.",
         offsetof(struct vnet_dp_peer_info, probes_sent)},
        {"vnet_node_peer_probe_replies_total", "Probe replies from a peer that matched.",
         offsetof(struct vnet_dp_peer_info, probe_replies)},
        {"vnet_node_peer_probes_answered_total", "Probe requests of a peer answered.",
         offsetof(struct vnet_dp_peer_info, probes_answered)},
        {"vnet_node_peer_probes_unexpected_total",
         "Probe replies from a peer that matched no pending request (dropped).",
         offsetof(struct vnet_dp_peer_info, probes_unexpected)},
        {"vnet_node_peer_rx_epochs_adopted_total",
         "Secure networks: new receive key epochs of a peer taken up (its rekeys).",
         offsetof(struct vnet_dp_peer_info, rx_epochs_adopted)},
    };
    for (size_t f = 0; f < sizeof(probe) / sizeof(probe[0]); f++) {
        vnet__mt_head(t, probe[f].name, "counter", probe[f].help);
        for (size_t r = 0; r < nrows; r++) {
            uint64_t v;
            memcpy(&v, (const char *)&rows[r].info + probe[f].off, sizeof(v));
            vnet__mt_u64(t, probe[f].name, rows[r].labels, v);
        }
    }
    vnet__mt_head(t, "vnet_node_peer_tx_key_age_seconds", "gauge",
                  "Secure networks: age of the current transmit key (epoch) toward a peer.");
    for (size_t r = 0; r < nrows; r++)
        if (rows[r].has_info && rows[r].info.tx_epoch_age_ms >= 0)
            vnet__mt_f64(t, "vnet_node_peer_tx_key_age_seconds", rows[r].labels,
                         (double)rows[r].info.tx_epoch_age_ms / 1e3);
out:
    free(tmp);
    free(info);
    free(rows);
}

int vnet_node_metrics_write(const struct vnet_node *n, char **out, size_t *len)
{
    if (!n || !out || !len)
        return VNET_EINVAL;
    struct vnet__mtext t = {0};
    unsigned nq = vnet_node_queue_count(n);
    struct vnet_datapath_stats sum, st;
    memset(&sum, 0, sizeof(sum));
    for (unsigned q = 0; q < nq; q++) {
        if (vnet_node_get_stats(n, q, &st) != 0)
            continue;
        const uint64_t *s = (const uint64_t *)&st;
        uint64_t *d = (uint64_t *)&sum;
        for (size_t i = 0; i < sizeof(sum) / sizeof(uint64_t); i++)
            d[i] += s[i];
    }
    one_u64(&t, "vnet_node_queues", "gauge", "Data path queues (0 before the first welcome).", nq);
    node_ports(&t, &sum);
    node_peers(&t, n, nq);
    const struct vnet_table *tab = vnet_node_table(n);
    struct vnet_table_stats ts;
    memset(&ts, 0, sizeof(ts));
    if (tab)
        vnet_table_get_stats(tab, &ts);
    one_u64(&t, "vnet_node_table_entries", "gauge", "MAC entries in the switch table.", ts.entries);
    one_u64(&t, "vnet_node_table_ip_entries", "gauge", "IP bindings in the switch table.",
            ts.ip_entries);
    struct vnet_agent_stats as;
    if (vnet_node_get_agent_stats(n, &as) == 0) {
        one_u64(&t, "vnet_node_controller_connected", "gauge",
                "1 while the session with the controller is up.", as.connected ? 1 : 0);
        one_u64(&t, "vnet_node_config_revision", "gauge",
                "The network revision this node applied last.", as.revision);
        one_u64(&t, "vnet_node_controller_connects_total", "counter",
                "Sessions with the controller established.", as.connects);
        one_u64(&t, "vnet_node_snapshots_total", "counter", "Snapshots applied.", as.snapshots);
        one_u64(&t, "vnet_node_deltas_total", "counter", "Deltas applied.", as.deltas);
        one_u64(&t, "vnet_node_acks_total", "counter", "Revisions acknowledged.", as.acks);
        one_u64(&t, "vnet_node_controller_errors_total", "counter",
                "Session errors (refusals, lost connections).", as.errors);
    }
    return finish(&t, out, len);
}

/* ---- controller ---- */

struct net_vec {
    struct vnet_network *v;
    size_t n, cap;
};

static int collect_net(const struct vnet_network *net, void *arg)
{
    struct net_vec *nv = arg;
    return vec_push(&nv->v, &nv->n, &nv->cap, sizeof(*net), 16, net);
}

/* Per node of every network: connected, lag. The store is read here (networks, then the nodes
 * of each), on the loop thread like every other store call of the controller. */
static int ctl_nodes(struct vnet__mtext *t, struct vnet_controller *c)
{
    struct vnet_store *s = vnet__controller_store(c);
    struct net_vec nets = {0};
    struct vnet__node_vec nodes = {0};
    int rc = vnet_store_network_list(s, 0, collect_net, &nets);
    if (rc)
        goto out;
    vnet__mt_head(t, "vnet_controller_network_revision", "gauge",
                  "The revision of a network in the store.");
    for (size_t i = 0; i < nets.n; i++) {
        char l[160], id[24];
        snprintf(id, sizeof(id), "%llu", (unsigned long long)nets.v[i].id);
        vnet__mt_labels(l, sizeof(l), 2, "network", nets.v[i].name, "network_id", id);
        vnet__mt_u64(t, "vnet_controller_network_revision", l, nets.v[i].revision);
    }
    vnet__mt_head(t, "vnet_controller_node_connected", "gauge",
                  "1 while the node has a session with the controller.");
    struct vnet__mtext lag = {0}, acked = {0};
    vnet__mt_head(&lag, "vnet_controller_node_convergence_lag", "gauge",
                  "Convergence lag of a node: the network's revision in the store minus the "
                  "revision the node last acknowledged (0: converged).");
    vnet__mt_head(&acked, "vnet_controller_node_acked_revision", "gauge",
                  "The network revision a node last acknowledged (0: never).");
    for (size_t i = 0; i < nets.n && !rc; i++) {
        nodes.n = 0;
        if ((rc = vnet_store_node_list(s, nets.v[i].id, vnet__api_collect_node, &nodes)) != 0)
            break;
        for (size_t k = 0; k < nodes.n; k++) {
            bool conn;
            uint64_t ack;
            vnet__controller_node_acked(c, nodes.v[k].id, &conn, &ack);
            char l[240], id[24];
            snprintf(id, sizeof(id), "%llu", (unsigned long long)nets.v[i].id);
            vnet__mt_labels(l, sizeof(l), 3, "network", nets.v[i].name, "network_id", id, "node",
                            nodes.v[k].name);
            vnet__mt_u64(t, "vnet_controller_node_connected", l, conn ? 1 : 0);
            vnet__mt_u64(&lag, "vnet_controller_node_convergence_lag", l,
                         nets.v[i].revision > ack ? nets.v[i].revision - ack : 0);
            vnet__mt_u64(&acked, "vnet_controller_node_acked_revision", l, ack);
        }
    }
    if (lag.err || acked.err)
        t->err = VNET_ENOMEM;
    if (!rc && lag.buf && acked.buf) {
        vnet__mt_printf(t, "%.*s", (int)lag.len, lag.buf);
        vnet__mt_printf(t, "%.*s", (int)acked.len, acked.buf);
    }
    free(lag.buf);
    free(acked.buf);
out:
    free(nets.v);
    free(nodes.v);
    return rc;
}

int vnet_controller_metrics_write(struct vnet_controller *c, char **out, size_t *len)
{
    if (!c || !out || !len)
        return VNET_EINVAL;
    struct vnet__mtext t = {0};
    struct vnet_controller_stats st;
    vnet_controller_get_stats(c, &st);
    uint64_t nsess = 0, behind = 0;
    vnet__controller_node_sessions(c, &nsess, &behind);
    char l[96];
    vnet__mt_head(&t, "vnet_controller_sessions", "gauge",
                  "Open sessions by kind (node, client) and state (preauth: accepted, not yet "
                  "authenticated; up: in sync or being sent deltas; behind: waiting for a "
                  "snapshot after falling behind).");
    vnet__mt_labels(l, sizeof(l), 2, "kind", "node", "state", "up");
    vnet__mt_u64(&t, "vnet_controller_sessions", l, nsess - behind);
    vnet__mt_labels(l, sizeof(l), 2, "kind", "node", "state", "behind");
    vnet__mt_u64(&t, "vnet_controller_sessions", l, behind);
    vnet__mt_labels(l, sizeof(l), 2, "kind", "client", "state", "up");
    vnet__mt_u64(&t, "vnet_controller_sessions", l, st.client_sessions);
    vnet__mt_labels(l, sizeof(l), 2, "kind", "unknown", "state", "preauth");
    vnet__mt_u64(&t, "vnet_controller_sessions", l, st.preauth_sessions);
    vnet__mt_head(&t, "vnet_controller_sessions_closed_total", "counter",
                  "Sessions the controller closed, by reason.");
    static const char *const why[] = {"slow", "dead", "bad", "preauth_refused",
                                      "preauth_timed_out"};
    const uint64_t closed[] = {st.sessions_closed_slow, st.sessions_closed_dead,
                               st.sessions_closed_bad, st.preauth_refused, st.preauth_timed_out};
    for (int i = 0; i < 5; i++) {
        vnet__mt_labels(l, sizeof(l), 1, "reason", why[i]);
        vnet__mt_u64(&t, "vnet_controller_sessions_closed_total", l, closed[i]);
    }
    one_u64(&t, "vnet_controller_deltas_sent_total", "counter", "Deltas sent to node sessions.",
            st.deltas_sent);
    one_u64(&t, "vnet_controller_snapshots_sent_total", "counter",
            "Snapshots sent to node sessions.", st.snapshots_sent);
    one_u64(&t, "vnet_controller_endpoints_refused_total", "counter",
            "Endpoint reports refused because they named another node's endpoint.",
            st.endpoints_refused);
    const struct vnet__ctl_metrics *m = vnet__controller_metrics(c);
    vnet__mt_head(&t, "vnet_controller_requests_total", "counter",
                  "API requests answered, by type and result (ok, error).");
    for (int op = 1; op < VNET__REQ_OPS; op++)
        for (int r = 0; r < 2; r++) {
            vnet__mt_labels(l, sizeof(l), 2, "type", vnet_req_op_name((enum vnet_req_op)op),
                            "result", r ? "error" : "ok");
            vnet__mt_u64(&t, "vnet_controller_requests_total", l, m->requests[op][r]);
        }
    vnet__mt_head(&t, "vnet_controller_store_duration_seconds", "histogram",
                  "Time in the store, by call: request (an API request, its store calls "
                  "included), snapshot and changes (reads for pushes), hello (node lookup).");
    static const char *const calls[VNET__STORE_CALLS] = {"request", "snapshot", "changes", "hello"};
    for (int i = 0; i < VNET__STORE_CALLS; i++) {
        vnet__mt_labels(l, sizeof(l), 1, "call", calls[i]);
        vnet__mt_hist(&t, "vnet_controller_store_duration_seconds", l, &m->store[i]);
    }
    int rc = ctl_nodes(&t, c);
    if (rc) {
        free(t.buf);
        return rc;
    }
    return finish(&t, out, len);
}
