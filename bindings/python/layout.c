/* vnet-py-layout: prints, as JSON, the size of every C struct the Python binding mirrors with
 * ctypes and the offset of each of its fields. tests/test_layout.py compares them with the
 * ctypes definitions, so a header change that the binding missed fails the test suite instead
 * of corrupting memory. */
#include <vnet/client.h>
#include <vnet/datapath.h>
#include <vnet/port.h>
#include <vnet/switch_table.h>
#include <vnet/vnet.h>

#include <stddef.h>
#include <stdio.h>

static int first_struct = 1, first_field;

#define BEGIN(T)                                                                                   \
    do {                                                                                           \
        printf("%s\"%s\":{\"size\":%zu,\"fields\":{", first_struct ? "" : ",", #T,                 \
               sizeof(struct T));                                                                  \
        first_struct = 0;                                                                          \
        first_field = 1;                                                                           \
    } while (0)
#define F(T, f)                                                                                    \
    do {                                                                                           \
        printf("%s\"%s\":%zu", first_field ? "" : ",", #f, offsetof(struct T, f));                 \
        first_field = 0;                                                                           \
    } while (0)
#define END() printf("}}")

int main(void)
{
    printf("{");
    BEGIN(vnet_mac);
    F(vnet_mac, b);
    END();
    BEGIN(vnet_ip);
    F(vnet_ip, family);
    F(vnet_ip, addr);
    END();
    BEGIN(vnet_prefix);
    F(vnet_prefix, ip);
    F(vnet_prefix, len);
    END();
    BEGIN(vnet_endpoint);
    F(vnet_endpoint, ip);
    F(vnet_endpoint, port);
    END();
    BEGIN(vnet_network);
    F(vnet_network, id);
    F(vnet_network, subscriber_id);
    F(vnet_network, name);
    F(vnet_network, vni);
    F(vnet_network, subnet4);
    F(vnet_network, subnet6);
    F(vnet_network, mtu);
    F(vnet_network, revision);
    F(vnet_network, mode);
    END();
    BEGIN(vnet_node_info);
    F(vnet_node_info, id);
    F(vnet_node_info, network_id);
    F(vnet_node_info, name);
    F(vnet_node_info, pubkey);
    F(vnet_node_info, has_pubkey);
    F(vnet_node_info, mac);
    F(vnet_node_info, ips);
    F(vnet_node_info, phys);
    F(vnet_node_info, observed);
    F(vnet_node_info, state);
    F(vnet_node_info, revision);
    F(vnet_node_info, has_dp_nonce);
    F(vnet_node_info, dp_nonce);
    END();
    BEGIN(vnet_subscriber);
    F(vnet_subscriber, id);
    F(vnet_subscriber, name);
    F(vnet_subscriber, admin);
    F(vnet_subscriber, has_token);
    END();
    BEGIN(vnet_node_status);
    F(vnet_node_status, node);
    F(vnet_node_status, acked);
    F(vnet_node_status, connected);
    F(vnet_node_status, connected_since_ms);
    F(vnet_node_status, last_seen_ms);
    F(vnet_node_status, session_from);
    F(vnet_node_status, has_report);
    F(vnet_node_status, report_age_ms);
    F(vnet_node_status, report);
    END();
    BEGIN(vnet_report_counters);
    F(vnet_report_counters, rx_packets);
    F(vnet_report_counters, rx_bytes);
    F(vnet_report_counters, tx_packets);
    F(vnet_report_counters, tx_bytes);
    END();
    BEGIN(vnet_report_peer);
    F(vnet_report_peer, node_id);
    F(vnet_report_peer, ep);
    F(vnet_report_peer, c);
    F(vnet_report_peer, has_last_rx);
    F(vnet_report_peer, last_rx_ms);
    F(vnet_report_peer, reach);
    F(vnet_report_peer, has_rtt);
    F(vnet_report_peer, rtt_us);
    END();
    BEGIN(vnet_report);
    F(vnet_report, virt);
    F(vnet_report, under);
    F(vnet_report, drops);
    F(vnet_report, drop_reasons);
    F(vnet_report, table_size);
    F(vnet_report, peers);
    F(vnet_report, npeers);
    END();
    BEGIN(vnet_client_opts);
    F(vnet_client_opts, timeout_ms);
    F(vnet_client_opts, controller_pub);
    F(vnet_client_opts, token);
    END();
    BEGIN(vnet_client_network_opts);
    F(vnet_client_network_opts, vni);
    F(vnet_client_network_opts, subnet4);
    F(vnet_client_network_opts, subnet6);
    F(vnet_client_network_opts, mtu);
    F(vnet_client_network_opts, mode);
    END();
    BEGIN(vnet_client_node_opts);
    F(vnet_client_node_opts, mac);
    F(vnet_client_node_opts, has_mac);
    F(vnet_client_node_opts, ip4);
    F(vnet_client_node_opts, ip6);
    F(vnet_client_node_opts, phys);
    F(vnet_client_node_opts, pubkey);
    F(vnet_client_node_opts, has_pubkey);
    END();
    BEGIN(vnet_client_networks);
    F(vnet_client_networks, networks);
    F(vnet_client_networks, owners);
    F(vnet_client_networks, count);
    END();
    BEGIN(vnet_client_network);
    F(vnet_client_network, network);
    F(vnet_client_network, nodes);
    F(vnet_client_network, count);
    END();
    BEGIN(vnet_client_status);
    F(vnet_client_status, network);
    F(vnet_client_status, nodes);
    F(vnet_client_status, count);
    END();
    BEGIN(vnet_client_nodes);
    F(vnet_client_nodes, nodes);
    F(vnet_client_nodes, count);
    END();
    BEGIN(vnet_client_subscribers);
    F(vnet_client_subscribers, subscribers);
    F(vnet_client_subscribers, count);
    END();
    BEGIN(vnet_client_new_node);
    F(vnet_client_new_node, node);
    F(vnet_client_new_node, join_token);
    END();
    BEGIN(vnet_client_new_token);
    F(vnet_client_new_token, subscriber);
    F(vnet_client_new_token, token);
    END();
    BEGIN(vnet_entry);
    F(vnet_entry, revision);
    F(vnet_entry, priv_gen_);
    F(vnet_entry, priv_vf_);
    F(vnet_entry, peer_id);
    F(vnet_entry, mac);
    F(vnet_entry, port);
    F(vnet_entry, addr);
    END();
    BEGIN(vnet_table_opts);
    F(vnet_table_opts, max_entries);
    F(vnet_table_opts, max_ip_entries);
    F(vnet_table_opts, initial_capacity);
    F(vnet_table_opts, max_readers);
    END();
    BEGIN(vnet_table_op);
    F(vnet_table_op, type);
    F(vnet_table_op, vni);
    F(vnet_table_op, mac);
    F(vnet_table_op, flags);
    F(vnet_table_op, peer_id);
    F(vnet_table_op, ep);
    F(vnet_table_op, ip);
    END();
    BEGIN(vnet_table_stats);
    F(vnet_table_stats, entries);
    F(vnet_table_stats, ip_entries);
    F(vnet_table_stats, slots);
    F(vnet_table_stats, ip_slots);
    F(vnet_table_stats, load_factor);
    F(vnet_table_stats, ip_load_factor);
    F(vnet_table_stats, memory_bytes);
    F(vnet_table_stats, pending_reclaim);
    F(vnet_table_stats, batches);
    F(vnet_table_stats, rebuilds);
    F(vnet_table_stats, readers);
    END();
    BEGIN(vnet_port_cfg);
    F(vnet_port_cfg, queues);
    F(vnet_port_cfg, mtu);
    F(vnet_port_cfg, mac);
    F(vnet_port_cfg, set_mac);
    F(vnet_port_cfg, offload);
    F(vnet_port_cfg, up);
    F(vnet_port_cfg, sndbuf);
    F(vnet_port_cfg, rcvbuf);
    END();
    BEGIN(vnet_port_info);
    F(vnet_port_info, backend);
    F(vnet_port_info, ifname);
    F(vnet_port_info, ifindex);
    F(vnet_port_info, mac);
    F(vnet_port_info, mtu);
    F(vnet_port_info, local);
    F(vnet_port_info, caps);
    F(vnet_port_info, queues);
    END();
    BEGIN(vnet_datapath_cfg);
    F(vnet_datapath_cfg, table);
    F(vnet_datapath_cfg, vport);
    F(vnet_datapath_cfg, uport);
    F(vnet_datapath_cfg, vni);
    F(vnet_datapath_cfg, learn);
    F(vnet_datapath_cfg, no_arp_proxy);
    F(vnet_datapath_cfg, mtu);
    F(vnet_datapath_cfg, burst);
    F(vnet_datapath_cfg, secure);
    F(vnet_datapath_cfg, key);
    F(vnet_datapath_cfg, queue);
    F(vnet_datapath_cfg, nonce);
    END();
    BEGIN(vnet_dp_port_stats);
    F(vnet_dp_port_stats, rx_packets);
    F(vnet_dp_port_stats, rx_bytes);
    F(vnet_dp_port_stats, tx_packets);
    F(vnet_dp_port_stats, tx_bytes);
    END();
    BEGIN(vnet_datapath_stats);
    F(vnet_datapath_stats, vport);
    F(vnet_datapath_stats, uport);
    F(vnet_datapath_stats, drops);
    F(vnet_datapath_stats, decap);
    F(vnet_datapath_stats, arp_replies);
    F(vnet_datapath_stats, nd_replies);
    F(vnet_datapath_stats, flooded);
    F(vnet_datapath_stats, learned);
    F(vnet_datapath_stats, gso_frames);
    F(vnet_datapath_stats, gro_frames);
    F(vnet_datapath_stats, too_big_sent);
    END();
    BEGIN(vnet_dp_peer_stats);
    F(vnet_dp_peer_stats, ep);
    F(vnet_dp_peer_stats, tx_packets);
    F(vnet_dp_peer_stats, tx_bytes);
    F(vnet_dp_peer_stats, rx_packets);
    F(vnet_dp_peer_stats, rx_bytes);
    END();
    printf(",\"constants\":{\"VNET_DP_DROP__MAX\":%d,\"VNET_DROP__MAX\":%d,\"VNET_NAME_MAX\":%d,"
           "\"VNET_CLIENT_TOKEN_MAX\":%d,\"VNET_CLIENT_MODE_SECURE\":%d}",
           VNET_DP_DROP__MAX, VNET_DROP__MAX, VNET_NAME_MAX, VNET_CLIENT_TOKEN_MAX,
           VNET_CLIENT_MODE_SECURE);
    printf("}\n");
    return 0;
}
