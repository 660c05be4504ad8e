/* The subscriber API of the controller: one request and the caller's identity in, one reply
 * out, over the store. No sockets and no loop: controller.c feeds it the requests of its client
 * sessions and supplies, through the hooks of struct vnet__api_env, what only it knows (which
 * nodes are connected, which sessions to close, which networks to push).
 *
 * Scope. A subscriber's requests see only its own networks: anything else is "no network",
 * exactly as if it did not exist. The admin sees every subscriber's and manages subscribers.
 */
#include "controller_api_int.h"

#include "vec_int.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/token.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct req {
    const struct vnet__api_env *env;
    const struct vnet__api_caller *who;
};

static uint64_t unix_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void committed(const struct req *x, uint64_t network_id)
{
    if (x->env->committed)
        x->env->committed(x->env->arg, network_id);
}

static void node_gone(const struct req *x, uint64_t node_id, int code, const char *why)
{
    if (x->env->node_gone)
        x->env->node_gone(x->env->arg, node_id, code, why);
}

static void subscriber_gone(const struct req *x, uint64_t sub_id, const char *why)
{
    if (x->env->subscriber_gone)
        x->env->subscriber_gone(x->env->arg, sub_id, why);
}

int vnet__api_collect_node(const struct vnet_node_info *n, void *arg)
{
    struct vnet__node_vec *nv = arg;
    return vec_push(&nv->v, &nv->n, &nv->cap, sizeof(*n), 64, n);
}

/* Append one element to a reply's array (@vp: its T **, @n: its count). Replies are small:
 * one realloc per element. */
static int reply_push(void *vp, uint32_t *n, size_t size, const void *elem)
{
    size_t len = *n, cap = *n;
    if (len >= UINT32_MAX)
        return VNET_ENOMEM;
    int rc = vec_push(vp, &len, &cap, size, 1, elem);
    *n = (uint32_t)len;
    return rc;
}

static int collect_network(const struct vnet_network *n, void *arg)
{
    struct vnet_msg_reply *r = arg;
    return reply_push(&r->networks, &r->nnetworks, sizeof(*n), n);
}

static int reply_nodes(const struct req *x, uint64_t network_id, struct vnet_msg_reply *r)
{
    struct vnet__node_vec nv = {0};
    int rc = vnet_store_node_list(x->env->store, network_id, vnet__api_collect_node, &nv);
    r->nodes = nv.v;
    r->nnodes = nv.n;
    return rc;
}

#define JOIN_TOKEN_TTL_S (24 * 3600)

static void make_join_token(const struct req *x, const struct vnet_node_info *n, char *out,
                            size_t outlen)
{
    uint8_t secret[VNET_JOIN_SECRET_LEN], hash[VNET_TOKEN_HASH_BYTES];
    vnet_token_random(secret, sizeof(secret));
    vnet_token_hash(secret, sizeof(secret), hash);
    if (vnet_store_node_set_join_token(x->env->store, n->id, hash,
                                       unix_ms() / 1000 + JOIN_TOKEN_TTL_S) == 0)
        vnet_join_token_format(x->env->key->pub, secret, out, outlen);
    sodium_memzero(secret, sizeof(secret));
}

/* ---- request scope ---- */

struct name_match {
    const char *name;
    struct vnet_network first;
    unsigned n;
};

static int match_name(const struct vnet_network *n, void *arg)
{
    struct name_match *m = arg;
    if (strcmp(n->name, m->name) == 0 && m->n++ == 0)
        m->first = *n;
    return 0;
}

/* The network @name as the caller may see it. A subscriber: only its own (another's is "no
 * network", so existence is not leaked). The admin: "SUBSCRIBER/NAME" names any subscriber's
 * network; a plain NAME is the admin's own network of that name, else the one network of that
 * name whoever owns it (refused as ambiguous when several subscribers have one). */
static int find_network(const struct req *x, const char *name, struct vnet_network *out, char *err,
                        size_t errlen)
{
    int rc;
    const char *slash = x->who->admin ? strchr(name, '/') : NULL;
    if (!x->who->admin) {
        rc = vnet_store_network_get(x->env->store, x->who->sub_id, name, out);
    } else if (slash) {
        char sub_name[VNET_NAME_MAX];
        struct vnet_subscriber sub;
        snprintf(sub_name, sizeof(sub_name), "%.*s", (int)(slash - name), name);
        if ((rc = vnet_store_subscriber_get(x->env->store, sub_name, &sub)) != 0) {
            snprintf(err, errlen, "no subscriber '%s'", sub_name);
            return VNET_ENOENT;
        }
        rc = vnet_store_network_get(x->env->store, sub.id, slash + 1, out);
    } else {
        rc = vnet_store_network_get(x->env->store, VNET_SUBSCRIBER_ADMIN, name, out);
        if (rc == VNET_ENOENT) {
            struct name_match m = {.name = name};
            rc = vnet_store_network_list(x->env->store, 0, match_name, &m);
            if (!rc && m.n == 0)
                rc = VNET_ENOENT;
            if (!rc && m.n > 1) {
                snprintf(err, errlen,
                         "%u subscribers have a network '%s': say which, as SUBSCRIBER/%s", m.n,
                         name, name);
                return VNET_EINVAL;
            }
            if (!rc)
                *out = m.first;
        }
    }
    if (rc)
        snprintf(err, errlen, "no network '%s'", name);
    return rc == VNET_EINVAL ? VNET_ENOENT : rc; /* an invalid name names no network */
}

static int collect_subscriber(const struct vnet_subscriber *sub, void *arg)
{
    struct vnet_msg_reply *r = arg;
    return reply_push(&r->subscribers, &r->nsubscribers, sizeof(*sub), sub);
}

static bool subscriber_op(enum vnet_req_op op)
{
    return op == VNET_REQ_SUBSCRIBER_CREATE || op == VNET_REQ_SUBSCRIBER_LIST ||
           op == VNET_REQ_SUBSCRIBER_DELETE || op == VNET_REQ_SUBSCRIBER_TOKEN;
}

/* subscriber.create/list/delete/token, for the admin. */
static int handle_subscriber_request(const struct req *x, const struct vnet_msg_request *q,
                                     struct vnet_msg_reply *r, char *err, size_t errlen)
{
    struct vnet_subscriber sub;
    uint8_t hash[VNET_TOKEN_HASH_BYTES];
    int rc;
    if (!x->who->admin) {
        snprintf(err, errlen, "only the admin manages subscribers");
        return VNET_EPERM;
    }
    if (q->op == VNET_REQ_SUBSCRIBER_LIST)
        return vnet_store_subscriber_list(x->env->store, collect_subscriber, r);
    if (q->op == VNET_REQ_SUBSCRIBER_CREATE) {
        if (!vnet_name_valid(q->network)) {
            snprintf(err, errlen, "invalid subscriber name '%s'", q->network);
            return VNET_EINVAL;
        }
        rc = vnet_api_token_new(r->token, sizeof(r->token), hash);
        if (rc > 0)
            rc = vnet_store_subscriber_create(x->env->store, q->network, hash, &sub, err, errlen);
        if (!rc)
            rc = collect_subscriber(&sub, r);
        if (rc) {
            sodium_memzero(r->token, sizeof(r->token));
        } else {
            vnet_log(VNET_LOG_INFO, "controller", "subscriber '%s' created", sub.name);
        }
        return rc;
    }
    if ((rc = vnet_store_subscriber_get(x->env->store, q->network, &sub)) != 0) {
        snprintf(err, errlen, "no subscriber '%s'", q->network);
        return rc == VNET_EINVAL ? VNET_ENOENT : rc;
    }
    if (q->op == VNET_REQ_SUBSCRIBER_DELETE) {
        rc = vnet_store_subscriber_delete(x->env->store, sub.id);
        if (rc == VNET_EPERM)
            snprintf(err, errlen, "the admin cannot be deleted");
        else if (rc == VNET_EBUSY)
            snprintf(err, errlen, "subscriber '%s' owns networks: delete them first", sub.name);
        if (!rc) {
            subscriber_gone(x, sub.id, "subscriber deleted");
            vnet_log(VNET_LOG_INFO, "controller", "subscriber '%s' deleted", sub.name);
        }
        return rc;
    }
    /* SUBSCRIBER_TOKEN: the old token stops working at once, and so do its open sessions. */
    rc = vnet_api_token_new(r->token, sizeof(r->token), hash);
    if (rc > 0)
        rc = vnet_store_subscriber_set_token(x->env->store, sub.id, hash);
    if (!rc) {
        sub.has_token = true;
        rc = collect_subscriber(&sub, r);
    }
    if (rc) {
        sodium_memzero(r->token, sizeof(r->token));
        return rc;
    }
    subscriber_gone(x, sub.id, "API token replaced");
    vnet_log(VNET_LOG_INFO, "controller", "subscriber '%s': new API token", sub.name);
    return 0;
}

int vnet__api_handle(const struct vnet__api_env *env, const struct vnet__api_caller *who,
                     const struct vnet_msg_request *q, struct vnet_msg *m)
{
    const struct req req = {.env = env, .who = who}, *x = &req;
    memset(m, 0, sizeof(*m));
    m->type = VNET_MSG_REPLY;
    struct vnet_msg_reply *r = &m->u.reply;
    r->id = q->id;
    char *err = r->text;
    size_t errlen = sizeof(r->text);
    struct vnet_network net;
    int rc = 0;

    if (subscriber_op(q->op)) {
        rc = handle_subscriber_request(x, q, r, err, errlen);
        goto out;
    }
    bool need_net = q->op != VNET_REQ_NETWORK_CREATE && q->op != VNET_REQ_NETWORK_LIST;
    if (need_net && (rc = find_network(x, q->network, &net, err, errlen)) != 0)
        goto out;
    switch (q->op) {
    case VNET_REQ_NETWORK_CREATE: {
        struct vnet_network_spec spec;
        struct vnet_subscriber owner;
        memset(&spec, 0, sizeof(spec));
        spec.name = q->network;
        spec.subscriber_id = x->who->sub_id;
        const char *slash = x->who->admin ? strchr(q->network, '/') : NULL;
        if (slash) { /* the admin creates a network for a subscriber: SUBSCRIBER/NAME */
            char sub_name[VNET_NAME_MAX];
            snprintf(sub_name, sizeof(sub_name), "%.*s", (int)(slash - q->network), q->network);
            if (vnet_store_subscriber_get(x->env->store, sub_name, &owner) != 0) {
                rc = VNET_ENOENT;
                snprintf(err, errlen, "no subscriber '%s'", sub_name);
                break;
            }
            spec.subscriber_id = owner.id;
            spec.name = slash + 1;
        }
        spec.has_vni = (q->has & VNET_REQ_HAS_VNI) != 0;
        spec.vni = q->vni;
        if (q->has & VNET_REQ_HAS_SUBNET4)
            spec.subnet4 = q->subnet4;
        if (q->has & VNET_REQ_HAS_SUBNET6)
            spec.subnet6 = q->subnet6;
        if (q->has & VNET_REQ_HAS_MTU)
            spec.mtu = q->mtu;
        /* Secure (the default) needs node keys, which only a controller with a key has. */
        spec.has_mode = true;
        spec.mode = (q->has & VNET_REQ_HAS_MODE) ? q->mode
                    : x->env->key                ? VNET_MODE_SECURE
                                                 : VNET_MODE_PLAIN;
        if (spec.mode == VNET_MODE_SECURE && !x->env->key) {
            rc = VNET_ENOTSUP;
            snprintf(err, errlen,
                     "mode secure needs node keys: start vnet-controller with --key (or use "
                     "--mode plain)");
            break;
        }
        /* 1400 leaves room for the secure header and an IPv6 underlay on 1500-byte links. */
        if (!(q->has & VNET_REQ_HAS_MTU) && spec.mode == VNET_MODE_SECURE)
            spec.mtu = 1400;
        struct vnet_network out;
        rc = vnet_store_network_create(x->env->store, &spec, &out, err, errlen);
        if (rc == VNET_EEXIST && !x->who->admin && strncmp(err, "VNI ", 4) == 0)
            snprintf(err, errlen, "VNI %u is not available", q->vni); /* not whose it is */
        if (rc == 0) {
            rc = collect_network(&out, r);
            committed(x, out.id);
        }
        break;
    }
    case VNET_REQ_NETWORK_LIST:
        rc = vnet_store_network_list(x->env->store, x->who->admin ? 0 : x->who->sub_id,
                                     collect_network, r);
        if (!rc && x->who->admin) /* to name the owners */
            rc = vnet_store_subscriber_list(x->env->store, collect_subscriber, r);
        break;
    case VNET_REQ_NETWORK_SHOW:
        rc = collect_network(&net, r);
        if (!rc)
            rc = reply_nodes(x, net.id, r);
        break;
    case VNET_REQ_NETWORK_DELETE:
        rc = vnet_store_network_delete(x->env->store, net.id, err, errlen);
        if (!rc)
            committed(x, net.id);
        break;
    case VNET_REQ_NETWORK_STATUS: {
        rc = collect_network(&net, r);
        struct vnet__node_vec nv = {0};
        if (!rc)
            rc = vnet_store_node_list(x->env->store, net.id, vnet__api_collect_node, &nv);
        if (!rc && nv.n) {
            r->status = calloc(nv.n, sizeof(*r->status));
            if (!r->status)
                rc = VNET_ENOMEM;
        }
        for (uint32_t i = 0; !rc && i < nv.n; i++) {
            struct vnet_node_status *st = &r->status[i];
            st->node = nv.v[i];
            if (env->node_status)
                env->node_status(env->arg, st);
            r->nstatus = i + 1;
        }
        free(nv.v);
        break;
    }
    case VNET_REQ_NODE_ADD: {
        struct vnet_node_spec spec;
        memset(&spec, 0, sizeof(spec));
        spec.name = q->node;
        spec.has_mac = (q->has & VNET_REQ_HAS_MAC) != 0;
        spec.mac = q->mac;
        if (q->has & VNET_REQ_HAS_IP4)
            spec.ips[0] = q->ip4;
        if (q->has & VNET_REQ_HAS_IP6)
            spec.ips[1] = q->ip6;
        if (q->has & VNET_REQ_HAS_PHYS)
            spec.phys = q->phys;
        if (q->has & VNET_REQ_HAS_PUBKEY)
            spec.pubkey = q->pubkey;
        struct vnet_node_info out;
        rc = vnet_store_node_add(x->env->store, net.id, &spec, &out, err, errlen);
        if (rc == 0) {
            r->nodes = malloc(sizeof(*r->nodes));
            if (r->nodes) {
                r->nodes[0] = out;
                r->nnodes = 1;
            }
            committed(x, net.id);
            /* Without a key given, the node enrols its own with a single-use join token. */
            if (x->env->key && !spec.pubkey)
                make_join_token(x, &out, r->token, sizeof(r->token));
        }
        break;
    }
    case VNET_REQ_NODE_LIST:
        rc = reply_nodes(x, net.id, r);
        break;
    case VNET_REQ_NODE_SHOW:
    case VNET_REQ_NODE_MOVE: {
        struct vnet_node_info out;
        if (q->op == VNET_REQ_NODE_SHOW) {
            rc = vnet_store_node_get(x->env->store, net.id, q->node, &out);
            if (rc)
                snprintf(err, errlen, "no node '%s' in network '%s'", q->node, q->network);
        } else if (!(q->has & VNET_REQ_HAS_PHYS)) {
            rc = VNET_EINVAL;
            snprintf(err, errlen, "node move needs a physical endpoint");
        } else {
            rc = vnet_store_node_move(x->env->store, net.id, q->node, &q->phys, &out, err, errlen);
            if (!rc)
                committed(x, net.id);
        }
        if (!rc) {
            r->nodes = malloc(sizeof(*r->nodes));
            if (r->nodes) {
                r->nodes[0] = out;
                r->nnodes = 1;
            }
        }
        break;
    }
    case VNET_REQ_NODE_REMOVE: {
        struct vnet_node_info gone;
        bool had = vnet_store_node_get(x->env->store, net.id, q->node, &gone) == 0;
        uint64_t rev = 0;
        rc = vnet_store_node_remove(x->env->store, net.id, q->node, &rev, err, errlen);
        if (!rc) {
            committed(x, net.id);
            if (had)
                node_gone(x, gone.id, VNET_ENOENT, "node removed from its network");
        }
        break;
    }
    case VNET_REQ_NODE_REVOKE: {
        struct vnet_node_info n;
        rc = vnet_store_node_get(x->env->store, net.id, q->node, &n);
        if (rc) {
            snprintf(err, errlen, "no node '%s' in network '%s'", q->node, q->network);
            break;
        }
        rc = vnet_store_node_revoke(x->env->store, n.id);
        if (!rc) {
            committed(x, net.id); /* the others drop its key */
            vnet_log(VNET_LOG_WARN, "controller", "node '%s' of '%s': key revoked", n.name,
                     net.name);
            node_gone(x, n.id, VNET_EACCES, "key revoked");
        }
        break;
    }
    default:
        rc = VNET_EINVAL;
        snprintf(err, errlen, "unknown request %d", (int)q->op);
    }
out:
    r->code = rc;
    if (rc && !r->text[0])
        snprintf(err, errlen, "%s", vnet_strerror(rc));
    return rc;
}
