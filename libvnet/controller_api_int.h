/* The controller's subscriber API as a plain function (controller_api.c). Private to libvnet. */
#ifndef VNET_CONTROLLER_API_INT_H
#define VNET_CONTROLLER_API_INT_H

#include "vnet/crypto.h"
#include "vnet/proto.h"
#include "vnet/store.h"

#include <stdbool.h>
#include <stdint.h>

/* Who asks: the identity a session established (docs/security.md). */
struct vnet__api_caller {
    bool admin;      /* sees and manages everything */
    uint64_t sub_id; /* the subscriber (VNET_SUBSCRIBER_ADMIN for the admin) */
};

/* What the API works on, and what it tells its owner. Every hook may be NULL. */
struct vnet__api_env {
    struct vnet_store *store;       /* borrowed */
    const struct vnet_keypair *key; /* the controller's key, NULL if it has none */
    /* A request committed a change to @network_id (its nodes are to be told). */
    void (*committed)(void *arg, uint64_t network_id);
    /* Node @node_id was removed or its key revoked: close its session with ERROR @code. */
    void (*node_gone)(void *arg, uint64_t node_id, int code, const char *why);
    /* Subscriber @sub_id was deleted or its token replaced: close its other sessions. */
    void (*subscriber_gone)(void *arg, uint64_t sub_id, const char *why);
    /* Fill the session fields of @st (st->node is set): connected, acked, connected_since_ms,
     * last_seen_ms, session_from and the last report (its peers malloc'd: the reply owns them). */
    void (*node_status)(void *arg, struct vnet_node_status *st);
    void *arg;
};

/* Answer request @q from @who. @reply is always set to a REPLY for @q->id (with the code, the
 * reason text on error, and the data asked for); free it with vnet_msg_free().
 * Returns the reply's code: 0 or a VNET_E* (VNET_ENOENT: no such network/node/subscriber, also
 * for another subscriber's; VNET_EEXIST: conflict; VNET_EINVAL: bad request; VNET_EPERM: admin
 * only; VNET_ENOTSUP; store errors). */
int vnet__api_handle(const struct vnet__api_env *env, const struct vnet__api_caller *who,
                     const struct vnet_msg_request *q, struct vnet_msg *reply);

/* A growable node array, and a vnet_store_node_list() callback appending to it. */
struct vnet__node_vec {
    struct vnet_node_info *v;
    size_t n, cap;
};
int vnet__api_collect_node(const struct vnet_node_info *n, void *arg);

#endif
