/* libvnet: the configuration controller.
 *
 * Serves node daemons (sessions that receive their network's configuration) and subscriber
 * clients (requests that change it) on the caller's libuv loop, single-threaded. Every request
 * that changes the configuration is one store transaction; the controller is woken by each
 * commit and, once per loop iteration, sends every affected node one delta with all changes
 * since what it was last sent, in revision order. A node that connects with revision R gets
 * the changes after R, or a full snapshot when they are no longer kept. Nodes acknowledge
 * revisions; `network status` shows who has converged and who is connected.
 *
 * A slow or stuck node never stalls the others: a session's unsent output is bounded; past the
 * bound no more deltas are queued for it and it gets one snapshot once its queue has drained.
 * Keepalives find dead node sessions (clients may idle between requests; TCP keepalive finds
 * clients that vanished). Commits by other processes sharing the database are noticed by
 * polling the store's change counter.
 *
 * Thread-safety: everything runs on the loop's thread.
 */
#ifndef VNET_CONTROLLER_H
#define VNET_CONTROLLER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "vnet/crypto.h"
#include "vnet/store.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vnet_controller;

struct vnet_controller_cfg {
    uv_loop_t *loop;          /* the caller's */
    struct vnet_store *store; /* borrowed; used only on the loop's thread */
    const char *node_listen;  /* "IP:PORT" or "[IPv6]:PORT" for node daemons (NULL: none) */
    const char *api_listen;   /* "IP:PORT" for subscriber clients (NULL: none) */
    const char *api_socket;   /* a Unix socket path for local administration, mode 0600:
                                 its clients are the admin without a token (NULL: none) */
    uint32_t keepalive_ms;    /* 0: 5,000; a session silent for 3 intervals is closed */
    size_t session_queue_max; /* unsent bytes per session; 0: 4 MiB */
    uint32_t poll_store_ms;   /* check for other processes' commits; 0: 500; UINT32_MAX: never */
    /* The controller's static key (copied). With it, every node session is authenticated
     * (the node proves the key registered for it, or enrols one with a join token) and then
     * encrypted, and so is every API client on TCP: it presents an API token (sealed to this
     * key behind its handshake, docs/security.md section 8) and acts as that token's
     * subscriber, seeing only its own networks; no token or an unknown one is refused with
     * VNET_EACCES. Without it (NULL), node sessions are neither and every TCP API client is
     * the admin: for tests and closed labs. Clients on api_socket are always the admin. */
    const struct vnet_keypair *key;
    /* Before authentication. A connection is unauthenticated from accept until its HELLO is
     * handled (let in or refused); until then it may only send frames of preauth_frame_max
     * bytes (0: 64 KiB; over it, it is closed at once), it is closed handshake_timeout_ms
     * after accept whatever it sends meanwhile (0: 10,000; bytes trickling in do not extend
     * it), and a TCP connection past preauth_max unauthenticated ones in total (0: 256) or
     * preauth_per_ip from one source address (0: 16) is closed as soon as it is accepted.
     * The Unix socket's clients count against neither cap. */
    uint32_t preauth_frame_max;
    uint32_t handshake_timeout_ms;
    uint32_t preauth_max;
    uint32_t preauth_per_ip;
};

/* Roles per listener: node_listen serves node sessions only, api_listen and api_socket
 * subscriber clients only; a HELLO of the other role is refused. Without a key, a TCP API
 * client is let in only from a loopback address (127.0.0.0/8, ::1): the API is open then.
 *
 * Create the controller and start listening. Returns 0, VNET_EINVAL (bad address, missing
 * loop/store), or a negative error from the socket layer (VNET_EADDRINUSE-like errnos as
 * negative errno values). The caller owns *out. */
VNET_API int vnet_controller_create(const struct vnet_controller_cfg *cfg,
                                    struct vnet_controller **out);

/* Close every session and listener. The memory is freed once the loop has run the close
 * callbacks: run the loop (uv_run) after this until it returns. NULL ignored. */
VNET_API void vnet_controller_destroy(struct vnet_controller *c);

/* The actual listening ports (useful with port 0). 0 when that listener is off. */
VNET_API int vnet_controller_node_port(const struct vnet_controller *c);
VNET_API int vnet_controller_api_port(const struct vnet_controller *c);

/* Change the node keepalive interval (as vnet_controller_cfg.keepalive_ms, 10..3600000 ms) of a
 * running controller, for a configuration reload: node sessions open now restart their
 * keepalive timer with it, later ones start with it.
 * Returns: 0, or VNET_EINVAL (NULL @c, @ms out of range). Thread-safety: the loop's thread. */
VNET_API int vnet_controller_set_keepalive(struct vnet_controller *c, uint32_t ms);

struct vnet_controller_stats {
    uint64_t node_sessions, client_sessions; /* open now */
    uint64_t deltas_sent, snapshots_sent, requests, errors;
    uint64_t sessions_closed_slow, sessions_closed_dead, sessions_closed_bad;
    uint64_t preauth_sessions;  /* unauthenticated connections open now */
    uint64_t preauth_refused;   /* closed at accept: over preauth_max / preauth_per_ip */
    uint64_t preauth_timed_out; /* closed at the handshake deadline */
    uint64_t endpoints_refused; /* endpoint reports naming another node's endpoint */
};
/* Counters, for monitoring and tests. Loop thread. */
VNET_API void vnet_controller_get_stats(const struct vnet_controller *c,
                                        struct vnet_controller_stats *out);

#ifdef __cplusplus
}
#endif
#endif
