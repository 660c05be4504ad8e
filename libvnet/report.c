/* A node's periodic report: its datapaths' counters summed over the queues, the table size and
 * one entry per peer with its counters, when it was last heard from and whether it is reached
 * (report_int.h). */
#include "report_int.h"

#include "vec_int.h"
#include "vnet/error.h"
#include "vnet/types.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(VNET_DP_DROP__MAX <= VNET_REPORT_DROPS, "a report carries every drop reason");

static void add_port(struct vnet_report_counters *c, const struct vnet_dp_port_stats *p)
{
    c->rx_packets += p->rx_packets;
    c->rx_bytes += p->rx_bytes;
    c->tx_packets += p->tx_packets;
    c->tx_bytes += p->tx_bytes;
}

static struct vnet__rx_seen *find_seen(struct vnet__report_state *st,
                                       const struct vnet_endpoint *ep)
{
    for (size_t i = 0; i < st->n; i++)
        if (vnet_endpoint_eq(&st->seen[i].ep, ep))
            return &st->seen[i];
    struct vnet__rx_seen s = {.ep = *ep};
    if (vec_push(&st->seen, &st->n, &st->cap, sizeof(s), 16, &s) != 0)
        return NULL;
    return &st->seen[st->n - 1];
}

/* Forget the peers that are no longer in @peers. */
static void prune_seen(struct vnet__report_state *st, const struct vnet_peer *peers, size_t npeers)
{
    size_t k = 0;
    for (size_t i = 0; i < st->n; i++) {
        bool keep = false;
        for (size_t j = 0; j < npeers && !keep; j++)
            keep = vnet_endpoint_eq(&st->seen[i].ep, &peers[j].ep);
        if (keep)
            st->seen[k++] = st->seen[i];
    }
    st->n = k;
}

/* Every queue's per-peer counters, one after the other: *out (malloc'd) and *n. */
static int all_peer_stats(struct vnet_datapath *const *dp, unsigned ndp,
                          struct vnet_dp_peer_stats **out, size_t *n)
{
    size_t total = 0;
    *out = NULL;
    *n = 0;
    for (unsigned q = 0; q < ndp; q++)
        total += vnet_datapath_peer_stats(dp[q], NULL, 0);
    if (total == 0)
        return 0;
    struct vnet_dp_peer_stats *ps = calloc(total, sizeof(*ps));
    if (!ps)
        return VNET_ENOMEM;
    for (unsigned q = 0; q < ndp && *n < total; q++)
        *n += vnet_datapath_peer_stats(dp[q], ps + *n, total - *n);
    if (*n > total) /* a peer list grew between the two calls: only what was copied counts */
        *n = total;
    *out = ps;
    return 0;
}

/* The probe state of queue 0's datapath, where the probes leave from (node.c): what the data
 * plane measured of each peer. */
static int probe_info(struct vnet_datapath *const *dp, unsigned ndp, struct vnet_dp_peer_info **out,
                      size_t *n)
{
    *out = NULL;
    *n = 0;
    if (ndp == 0)
        return 0;
    size_t total = vnet_datapath_peer_info(dp[0], NULL, 0);
    if (total == 0)
        return 0;
    struct vnet_dp_peer_info *pi = calloc(total, sizeof(*pi));
    if (!pi)
        return VNET_ENOMEM;
    size_t got = vnet_datapath_peer_info(dp[0], pi, total);
    *n = got < total ? got : total;
    *out = pi;
    return 0;
}

/* A peer that answered a probe within the window is reached even when no data came from it;
 * its round trip goes into the report. */
static void apply_probe(const struct vnet_dp_peer_info *pi, size_t n, uint64_t window_ms,
                        struct vnet_report_peer *p)
{
    for (size_t i = 0; i < n; i++) {
        if (!vnet_endpoint_eq(&pi[i].ep, &p->ep) || pi[i].rtt_ns == 0)
            continue;
        uint64_t us = pi[i].rtt_ns / 1000u;
        p->has_rtt = true;
        p->rtt_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)(us ? us : 1);
        if (pi[i].reply_age_ms >= 0 && (uint64_t)pi[i].reply_age_ms <= window_ms)
            p->reach = VNET_REACH_DIRECT;
        return;
    }
}

static void peer_counters(const struct vnet_dp_peer_stats *ps, size_t n,
                          const struct vnet_endpoint *ep, struct vnet_report_counters *c)
{
    for (size_t i = 0; i < n; i++) {
        if (!vnet_endpoint_eq(&ps[i].ep, ep))
            continue;
        c->rx_packets += ps[i].rx_packets;
        c->rx_bytes += ps[i].rx_bytes;
        c->tx_packets += ps[i].tx_packets;
        c->tx_bytes += ps[i].tx_bytes;
    }
}

int vnet__report_fill(struct vnet_datapath *const *dp, unsigned ndp, uint64_t table_size,
                      const struct vnet_peer *peers, size_t npeers, struct vnet__report_state *st,
                      uint64_t now_ms, uint64_t window_ms, struct vnet_report *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned q = 0; q < ndp; q++) {
        struct vnet_datapath_stats s;
        vnet_datapath_get_stats(dp[q], &s);
        add_port(&out->virt, &s.vport);
        add_port(&out->under, &s.uport);
        for (unsigned r = 0; r < VNET_DP_DROP__MAX; r++) {
            out->drop_reasons[r] += s.drops[r];
            out->drops += s.drops[r];
        }
    }
    out->table_size = table_size;
    prune_seen(st, peers, npeers);
    if (npeers == 0)
        return 0;
    struct vnet_dp_peer_stats *ps = NULL;
    struct vnet_dp_peer_info *pi = NULL;
    size_t nps = 0, npi = 0;
    out->peers = calloc(npeers, sizeof(*out->peers));
    if (!out->peers || all_peer_stats(dp, ndp, &ps, &nps) != 0 ||
        probe_info(dp, ndp, &pi, &npi) != 0) {
        free(ps);
        vnet_report_free(out);
        return VNET_ENOMEM;
    }
    for (size_t i = 0; i < npeers; i++) {
        struct vnet_report_peer *p = &out->peers[out->npeers];
        if (peers[i].ep.ip.family == VNET_AF_NONE || peers[i].ep.port == 0)
            continue; /* no endpoint yet: nothing to count */
        p->node_id = peers[i].id;
        p->ep = peers[i].ep;
        peer_counters(ps, nps, &p->ep, &p->c);
        struct vnet__rx_seen *seen = find_seen(st, &p->ep);
        if (!seen) {
            free(ps);
            free(pi);
            vnet_report_free(out);
            return VNET_ENOMEM;
        }
        if (p->c.rx_packets != seen->rx_packets) { /* grew (or the counters were reset) */
            seen->rx_packets = p->c.rx_packets;
            if (p->c.rx_packets)
                seen->at_ms = now_ms ? now_ms : 1;
        }
        if (seen->at_ms) {
            p->has_last_rx = true;
            p->last_rx_ms = now_ms - seen->at_ms;
            p->reach = p->last_rx_ms <= window_ms ? VNET_REACH_DIRECT : VNET_REACH_NONE;
        }
        apply_probe(pi, npi, window_ms, p);
        out->npeers++;
    }
    free(ps);
    free(pi);
    return 0;
}

void vnet__report_state_free(struct vnet__report_state *st)
{
    free(st->seen);
    memset(st, 0, sizeof(*st));
}
