/* The node's periodic report (REPORT): built from its datapaths' counters and peer list.
 * Private to libvnet (node.c calls it from the agent's on_report callback). */
#ifndef VNET_REPORT_INT_H
#define VNET_REPORT_INT_H

#include "vnet/datapath.h"
#include "vnet/proto.h"

#include <stddef.h>
#include <stdint.h>

/* When each peer's receive counter last moved: the data plane counts packets but keeps no
 * time, so the report notes, at each report, which counters grew since the last one (a
 * peer's last-rx age is therefore known to within one report interval). */
struct vnet__rx_seen {
    struct vnet_endpoint ep;
    uint64_t rx_packets;
    uint64_t at_ms; /* monotonic ms when rx_packets was seen to grow; 0: never */
};

struct vnet__report_state {
    struct vnet__rx_seen *seen;
    size_t n, cap;
};

/* Fill @out from the datapaths @dp[0..ndp) (counters summed over queues), the table size
 * @table_size and the peer list @peers (the other nodes: ids and endpoints), at monotonic
 * time @now_ms, updating @st. A peer counts as reached (VNET_REACH_DIRECT) while a packet
 * came from it within @window_ms (the node uses three report intervals). @out's peers are
 * malloc'd (vnet_report_free). Returns 0 or VNET_ENOMEM. */
int vnet__report_fill(struct vnet_datapath *const *dp, unsigned ndp, uint64_t table_size,
                      const struct vnet_peer *peers, size_t npeers, struct vnet__report_state *st,
                      uint64_t now_ms, uint64_t window_ms, struct vnet_report *out);

void vnet__report_state_free(struct vnet__report_state *st);

#endif
