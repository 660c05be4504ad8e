/* libvnet: a whole node of an overlay in one object.
 *
 * A node instance owns what a node of a libvnet network is made of: the switch table, the two
 * ports (the virtual side and the underlay), one datapath per queue and, in managed mode, the
 * agent that keeps the session with the controller. It does for an embedder what vnet-node
 * does: it opens the ports (falling back from xdp: to raw: when asked), loads or enrols the
 * node's key, applies the controller's welcome (MTU, MAC and addresses of the virtual device,
 * the datapath for the network's VNI, plain or secure) and its peer lists, and drives the
 * datapaths.
 *
 *   static mode   (options.controller == NULL) the VNI, MAC, addresses, peers and fixed table
 *                 entries come from the options; the datapaths exist from the start.
 *   managed mode  (options.controller set) they come from the controller; the datapaths are
 *                 made on the first welcome.
 *
 * Threads. The node lives on the caller's libuv loop: the agent, the table writes (learned
 * entries, the controller's changes) and every callback run there, and the node is the table's
 * writer. The datapaths run either on that loop too (one queue, no busy polling: uv_poll on
 * the ports' fds) or on the node's own worker threads, one run-to-completion thread per queue
 * (options.threads, or implied by queues > 1 or busy_poll_us > 0).
 *
 * Lifetime: vnet_node_create() opens everything; vnet_node_start() starts the agent and the
 * datapaths; vnet_node_close() stops the workers, closes the agent and the loop handles and
 * frees the node once the loop has run the close callbacks, then calls its callback (like
 * uv_close). Log lines go through vnet_log() with the module "node".
 *
 * `struct vnet_node_info` (vnet/model.h) is a node's record in the configuration model; the running
 * node is `struct vnet_node`.
 */
#ifndef VNET_NODE_H
#define VNET_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "vnet/agent.h"
#include "vnet/datapath.h"
#include "vnet/switch_table.h"
#include "vnet/types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vnet_node;

#define VNET_NODE_OPTIONS_VERSION 3 /* 2: allow_plain; 3: on_refused */
#define VNET_NODE_MAX_QUEUES      16
#define VNET_NODE_MAX_IPS         16
#define VNET_NODE_PROBE_MS        2000 /* managed mode: peers probed (RTT) this often */

struct vnet_node_options {
    unsigned version; /* VNET_NODE_OPTIONS_VERSION (set by vnet_node_options_init) */

    /* The ports (strings are copied where kept). */
    /* virtual side: "tap:NAME", "raw:IFNAME", "xdp:IFNAME", or "kernel:NAME": the kernel tier
     * (eBPF on TC + a flow-based VXLAN device "vk-NAME"; NAME a TAP made by the node or, when
     * it exists, a VM's tap or veth; plain networks, "udp:" underlay, one queue, no learning;
     * docs/kernel-tier.md) */
    const char *dev;
    /* "udp:IP[:PORT]", "raw:IFNAME[,local=IP[:PORT]]", "xdp:...": without local=, IFNAME's
     * primary address (its first global IPv4 address, else IPv6) and port 4789. */
    const char *underlay;
    bool fallback_raw; /* open an xdp: port that AF_XDP cannot serve here as raw: */
    bool offload;      /* TSO/checksum offload on the TAP, UDP GSO/GRO (default true) */
    /* Prefix of the port and key names in log lines and errors: "--" makes them read
     * "--dev tap:x: ..." as a program's options would; default "" ("dev tap:x: ...").
     * At most 7 characters are used. */
    const char *label_prefix;

    /* The data path. */
    unsigned queues;       /* 1..VNET_NODE_MAX_QUEUES (default 1): multiqueue ports */
    bool threads;          /* own worker threads even for one queue without busy polling */
    uint32_t busy_poll_us; /* workers keep polling this long after the last packet (0: no) */
    bool learn;            /* learn MAC -> endpoint from frames of known peers */
    bool arp_proxy;        /* answer ARP/ND from the table (default true) */

    /* Static mode (controller NULL). The arrays are read by vnet_node_create() only. */
    uint32_t vni;
    struct vnet_mac mac; /* the virtual device's MAC (required) */
    uint32_t mtu;        /* the virtual device's MTU; 0: 1500 minus the encapsulation overhead */
    const struct vnet_prefix *ips;     /* addresses for the virtual device */
    size_t nips;                       /* at most VNET_NODE_MAX_IPS */
    const struct vnet_endpoint *peers; /* the flood list */
    size_t npeers;
    /* Fixed table entries (VNET_TABLE_PUT with VNET_ENTRY_STATIC, VNET_TABLE_PUT_IP): their
     * vni is set to @vni. The node adds its own MAC (local) and @ips bound to @mac. */
    const struct vnet_table_op *entries;
    size_t nentries;

    /* Managed mode. */
    /* "IP:PORT", "[IPv6]:PORT" or "HOST:PORT" (resolved at each connection attempt): managed
     * mode when set */
    const char *controller;
    const char *network, *name; /* this node's network and name in it */
    /* This node's key: authenticated, encrypted session; the data plane's key in a secure
     * network. After an enrolment with @join the controller's key is kept beside it, in
     * KEY_FILE.controller (mode 0600, with the node key and the join token's hash): a node
     * started again with @key_file alone, or with the same @join, uses that pinned key, and
     * a join token already used by this key is ignored ("already enrolled, ignoring join"). */
    const char *key_file;
    const char *controller_key; /* the controller's public key (text form), pinned */
    const char *join;           /* a join token: enrols @key_file (made when missing) */
    bool allow_plain; /* with @key_file, take part in a plain network too (refused without) */
    struct vnet_agent_callbacks cb; /* also told (after the node applied it); may be empty */
    void *cb_arg;
    /* Managed mode: the node cannot go on (vnet_agent_cfg.on_refused says when: the
     * controller refused it for good, its network was deleted or it was removed, or a secure
     * network when the node has no key). The agent has stopped; @why is one line for an
     * operator. Close the node (allowed from here): a pre-existing device is restored, a TAP
     * the node made disappears. Called with @cb_arg on the loop; may be NULL. */
    void (*on_refused)(void *arg, int code, const char *why);
};

/**
 * Fill @o with the defaults: version set, one queue, offload and ARP proxy on, the rest 0.
 * Ownership: writes @o only. Returns: nothing. Thread-safety: thread-safe.
 */
VNET_API void vnet_node_options_init(struct vnet_node_options *o);

/**
 * The local underlay endpoint an underlay spec names: "udp:IP[:PORT]" or
 * "raw|xdp:IFNAME,local=IP[:PORT]" (the port defaults to 4789, as the backends do); for
 * "raw|xdp:IFNAME" alone, IFNAME's primary address in the calling thread's namespace (its
 * first global IPv4 address, else its first global IPv6 one) and port 4789.
 * Ownership: writes *@out only. Returns: 0, VNET_EINVAL when @spec names none, VNET_ENOENT
 * when IFNAME does not exist or has no global address, another netdev error.
 * Thread-safety: thread-safe.
 */
VNET_API int vnet_node_underlay_local(const char *spec, struct vnet_endpoint *out);

/**
 * Check @o as vnet_node_create() will, without opening anything: the ports and the underlay's
 * local endpoint given, managed mode complete (controller, network and name; a key file with
 * the controller's key, a join token or neither (the key pinned at enrolment), and neither of
 * the first two without a key file; a controller address as IP:PORT or HOST:PORT), static mode with
 * a unicast MAC, queues and arrays in range. Messages name options with @o->label_prefix
 * ("--dev is required (tap:NAME)"), so a program can report them as usage errors.
 * Ownership: reads @o; @err (may be NULL) receives the reason.
 * Returns: 0, VNET_EINVAL. Thread-safety: thread-safe.
 */
VNET_API int vnet_node_options_check(const struct vnet_node_options *o, char *err, size_t errlen);

/**
 * Create a node on @loop: check @o, open the table and both ports (@o->queues queues each),
 * and in static mode configure the virtual device (addresses), fill the table and make the
 * datapaths; in managed mode load the key (or make it, when @o->join enrols a missing
 * @o->key_file; "created key FILE" is logged). Nothing runs until vnet_node_start().
 * Ownership: @o and everything it points to are copied; @loop is retained and must outlive
 * the node. *@out is set on success only; free it with vnet_node_close(). @err (may be NULL)
 * receives a one-line reason on failure ("--dev xdp:vm0: operation not permitted").
 * Returns: 0; VNET_EINVAL (missing or bad option: no dev/underlay, managed mode without
 * network/name, a key file without controller key or join token, --controller-key differing
 * from the join token's, queues out of range, a bad underlay spec); VNET_ENOMEM; a port's
 * error (VNET_EPERM, VNET_ENOTSUP, VNET_EBUSY, ...); a key file's error (vnet_key_load).
 * Thread-safety: the loop's thread.
 */
VNET_API int vnet_node_create(const struct vnet_node_options *o, uv_loop_t *loop,
                              struct vnet_node **out, char *err, size_t errlen);

/**
 * Start the node: in static mode the datapaths (on the loop or the workers) and "up: ..." is
 * logged; in managed mode the agent ("managed: ..." is logged) and, on the controller's
 * welcome, the datapaths.
 * Ownership: none. Returns: 0; VNET_ESTATE when already started or closing; VNET_ENOMEM; a
 * thread or agent creation error (the node is then left as it was: close it).
 * Thread-safety: the loop's thread.
 */
VNET_API int vnet_node_start(struct vnet_node *n);

typedef void (*vnet_node_close_cb)(void *userdata);

/**
 * Stop the workers (joined before this returns), close the agent and the node's loop handles,
 * then, from the loop once their close callbacks have run, close the datapaths, ports and
 * table, free the node and call @cb (may be NULL). Works on a started or a never started node.
 * Ownership: @n must not be used after this call (it is freed before @cb runs); @userdata
 * is passed to @cb, never freed. NULL @n is ignored.
 * Thread-safety: the loop's thread.
 */
VNET_API void vnet_node_close(struct vnet_node *n, vnet_node_close_cb cb, void *userdata);

/**
 * How many datapaths the node runs: its queues, or 0 in managed mode before the first welcome.
 * Returns: the count. Thread-safety: the loop's thread.
 */
VNET_API unsigned vnet_node_queue_count(const struct vnet_node *n);

/**
 * Counters of the datapath of @queue.
 * Ownership: writes *@out. Returns: 0, VNET_ENOENT when that datapath does not exist (yet).
 * Thread-safety: the loop's thread (counters are read while the workers run).
 */
VNET_API int vnet_node_get_stats(const struct vnet_node *n, unsigned queue,
                                 struct vnet_datapath_stats *out);

/**
 * Per-peer counters of the datapath of @queue: fills up to @max entries.
 * Returns: the number of peers (0 when that datapath does not exist).
 * Thread-safety: the loop's thread.
 */
VNET_API size_t vnet_node_peer_stats(const struct vnet_node *n, unsigned queue,
                                     struct vnet_dp_peer_stats *out, size_t max);

/**
 * Probe (RTT) and key state of the peers of the datapath of @queue: fills up to @max entries,
 * in the order of vnet_node_peer_stats(). In managed mode queue 0 probes every
 * VNET_NODE_PROBE_MS the peers the controller describes.
 * Ownership: writes @out[0..max). Returns: the number of peers (0 when that datapath does not
 * exist). Thread-safety: the loop's thread.
 */
VNET_API size_t vnet_node_peer_info(const struct vnet_node *n, unsigned queue,
                                    struct vnet_dp_peer_info *out, size_t max);

/**
 * Counters and state of the controller session.
 * Ownership: writes *@out. Returns: 0, VNET_ENOENT in static mode or before start.
 * Thread-safety: the loop's thread.
 */
VNET_API int vnet_node_get_agent_stats(const struct vnet_node *n, struct vnet_agent_stats *out);

/**
 * Static mode: replace the flood list (the --peer endpoints) of a running node, as a
 * configuration reload does. Every datapath gets the new list; learned entries pointing at a
 * removed peer stay until they age out.
 * Ownership: @peers is copied. Returns: 0, VNET_EINVAL (NULL @n, or NULL @peers with @np > 0),
 * VNET_ESTATE in managed mode (the controller owns the peers), VNET_ENOMEM, or a datapath's code.
 * Thread-safety: the loop's thread.
 */
VNET_API int vnet_node_set_peers(struct vnet_node *n, const struct vnet_endpoint *peers, size_t np);

/**
 * Static mode: replace the fixed table entries (vnet_node_options.entries: --static MAC=IP:PORT
 * as VNET_TABLE_PUT, --arp IP=MAC as VNET_TABLE_PUT_IP) of a running node, as a configuration
 * reload does: the old ones are removed and the new ones put in one batch (readers see the
 * table before or after, never between). The VNI is the node's.
 * Ownership: @entries is copied. Returns: 0, VNET_EINVAL (NULL @n, NULL @entries with @count
 * > 0, an operation other than PUT or PUT_IP), VNET_ESTATE in managed mode, VNET_ENOMEM, or
 * vnet_table_apply()'s code (nothing changed then).
 * Thread-safety: the loop's thread (the table's writer).
 */
VNET_API int vnet_node_set_entries(struct vnet_node *n, const struct vnet_table_op *entries,
                                   size_t count);

/**
 * The node's switch table, for lookups and counts.
 * Ownership: borrowed, valid until the node is closed; the node is its writer: do not apply
 * changes to it. Returns: the table. Thread-safety: the loop's thread (lookups: any thread).
 */
VNET_API struct vnet_table *vnet_node_table(const struct vnet_node *n);

/**
 * The virtual device's interface name ("vn0").
 * Ownership: borrowed, valid until the node is closed. Returns: the name, never NULL.
 * Thread-safety: any thread.
 */
VNET_API const char *vnet_node_ifname(const struct vnet_node *n);

#ifdef __cplusplus
}
#endif
#endif
