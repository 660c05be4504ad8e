/* The typed subscriber calls: each builds one request, sends it with vnet_client_request() and
 * copies the reply's results out into plain structs, so that no caller needs the wire format.
 * Lists are one allocation (a header followed by its arrays) so that one free releases them. */
#include "vnet/client.h"
#include "vnet/error.h"
#include "vnet/types.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void clear_err(char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
}

static int fail(int rc, char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, arg);
    return rc;
}

/* Copy a name into a request field; the controller judges its characters (the admin's
 * "SUBSCRIBER/NETWORK" included). */
static int put_name(const char *what, const char *s, char dst[VNET_NAME_MAX], char *err,
                    size_t errlen)
{
    if (!s || !s[0] || strlen(s) >= VNET_NAME_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "bad %s '%s': 1 to 63 characters", what, s ? s : "(null)");
        return VNET_EINVAL;
    }
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

/* A request for @op on @network (may be NULL) and @node (may be NULL). */
static int prepare(struct vnet_msg_request *q, enum vnet_req_op op, const char *net_what,
                   const char *network, const char *node, char *err, size_t errlen)
{
    memset(q, 0, sizeof(*q));
    q->op = op;
    int rc = 0;
    if (net_what)
        rc = put_name(net_what, network, q->network, err, errlen);
    if (!rc && node)
        rc = put_name("node name", node, q->node, err, errlen);
    return rc;
}

/* Send @q: 0 with *m holding an accepted reply (free it), or the transport's or controller's
 * code with @err explaining (nothing to free). */
static int call(struct vnet_client *c, const struct vnet_msg_request *q, struct vnet_msg *m,
                char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    int rc = vnet_client_request(c, q, m, err, errlen);
    if (rc)
        return rc;
    const struct vnet_msg_reply *r = &m->u.reply;
    if (r->code != 0) {
        rc = r->code < 0 ? r->code : VNET_EPROTO;
        fail(0, err, errlen, "%s", r->text);
        vnet_msg_free(m);
    }
    return rc;
}

/* The reply lacks what the request promises: a controller bug, not the caller's. */
static int short_reply(struct vnet_msg *m, char *err, size_t errlen, const char *what)
{
    vnet_msg_free(m);
    return fail(VNET_EPROTO, err, errlen, "the controller's reply has no %s", what);
}

/* A request on names only, whose reply carries nothing the caller needs. */
static int call_plain(struct vnet_client *c, enum vnet_req_op op, const char *net_what,
                      const char *network, const char *node, char *err, size_t errlen)
{
    struct vnet_msg_request q;
    struct vnet_msg m;
    clear_err(err, errlen);
    if (!c)
        return VNET_EINVAL;
    int rc = prepare(&q, op, net_what, network, node, err, errlen);
    if (!rc && (rc = call(c, &q, &m, err, errlen)) == 0)
        vnet_msg_free(&m);
    return rc;
}

#define ALIGN_UP(n) (((n) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

/* One block: a header of @head bytes, then @n1 elements of @sz1 from @src1, then @n2 of @sz2
 * from @src2 (src2 NULL: zeroed). *arr1 and *arr2 point into it, even for n == 0. */
static void *pack(size_t head, uint32_t n1, size_t sz1, const void *src1, void **arr1, uint32_t n2,
                  size_t sz2, const void *src2, void **arr2)
{
    size_t off1 = ALIGN_UP(head), off2 = ALIGN_UP(off1 + (size_t)n1 * sz1);
    uint8_t *p = calloc(1, off2 + (size_t)n2 * sz2);
    if (!p)
        return NULL;
    *arr1 = p + off1;
    if (n1)
        memcpy(p + off1, src1, (size_t)n1 * sz1);
    if (arr2)
        *arr2 = p + off2;
    if (n2 && src2)
        memcpy(p + off2, src2, (size_t)n2 * sz2);
    return p;
}

void vnet_client_free(void *list)
{
    free(list);
}

int vnet_client_network_create(struct vnet_client *c, const char *name,
                               const struct vnet_client_network_opts *opts,
                               struct vnet_network *out, char *err, size_t errlen)
{
    struct vnet_client_network_opts o = {0};
    struct vnet_msg_request q;
    struct vnet_msg m;
    clear_err(err, errlen);
    if (!c)
        return VNET_EINVAL;
    if (opts)
        o = *opts;
    int rc = prepare(&q, VNET_REQ_NETWORK_CREATE, "network name", name, NULL, err, errlen);
    if (rc)
        return rc;
    if (o.vni > VNET_VNI_MAX)
        return fail(VNET_EINVAL, err, errlen, "%s", "bad VNI: want 1..16777215");
    if ((o.subnet4.ip.family && o.subnet4.ip.family != VNET_AF_INET) ||
        (o.subnet6.ip.family && o.subnet6.ip.family != VNET_AF_INET6))
        return fail(VNET_EINVAL, err, errlen, "%s", "subnet4 must be IPv4 and subnet6 IPv6");
    if (o.mode > VNET_CLIENT_MODE_SECURE)
        return fail(VNET_EINVAL, err, errlen, "%s", "bad mode: plain or secure");
    if (o.vni) {
        q.vni = o.vni;
        q.has |= VNET_REQ_HAS_VNI;
    }
    if (o.subnet4.ip.family) {
        q.subnet4 = o.subnet4;
        q.has |= VNET_REQ_HAS_SUBNET4;
    }
    if (o.subnet6.ip.family) {
        q.subnet6 = o.subnet6;
        q.has |= VNET_REQ_HAS_SUBNET6;
    }
    if (o.mtu) {
        q.mtu = o.mtu;
        q.has |= VNET_REQ_HAS_MTU;
    }
    if (o.mode != VNET_CLIENT_MODE_DEFAULT) {
        q.mode = o.mode == VNET_CLIENT_MODE_SECURE ? VNET_MODE_SECURE : VNET_MODE_PLAIN;
        q.has |= VNET_REQ_HAS_MODE;
    }
    if ((rc = call(c, &q, &m, err, errlen)) != 0)
        return rc;
    if (m.u.reply.nnetworks < 1)
        return short_reply(&m, err, errlen, "network");
    if (out)
        *out = m.u.reply.networks[0];
    vnet_msg_free(&m);
    return 0;
}

int vnet_client_network_list(struct vnet_client *c, struct vnet_client_networks **out, char *err,
                             size_t errlen)
{
    struct vnet_msg_request q;
    struct vnet_msg m;
    clear_err(err, errlen);
    if (!c || !out)
        return VNET_EINVAL;
    prepare(&q, VNET_REQ_NETWORK_LIST, NULL, NULL, NULL, err, errlen);
    int rc = call(c, &q, &m, err, errlen);
    if (rc)
        return rc;
    const struct vnet_msg_reply *r = &m.u.reply;
    bool owners = r->nsubscribers > 0; /* the admin's view names the owners */
    struct vnet_client_networks *l;
    void *nets, *subs;
    l = pack(sizeof(*l), r->nnetworks, sizeof(*r->networks), r->networks, &nets,
             owners ? r->nnetworks : 0, sizeof(struct vnet_subscriber), NULL, &subs);
    if (!l) {
        vnet_msg_free(&m);
        return VNET_ENOMEM;
    }
    l->networks = nets;
    l->owners = owners ? subs : NULL;
    l->count = r->nnetworks;
    for (uint32_t i = 0; owners && i < r->nnetworks; i++)
        for (uint32_t j = 0; j < r->nsubscribers; j++)
            if (r->subscribers[j].id == r->networks[i].subscriber_id)
                l->owners[i] = r->subscribers[j];
    vnet_msg_free(&m);
    *out = l;
    return 0;
}

int vnet_client_network_show(struct vnet_client *c, const char *name,
                             struct vnet_client_network **out, char *err, size_t errlen)
{
    struct vnet_msg_request q;
    struct vnet_msg m;
    clear_err(err, errlen);
    if (!c || !out)
        return VNET_EINVAL;
    int rc = prepare(&q, VNET_REQ_NETWORK_SHOW, "network name", name, NULL, err, errlen);
    if (rc || (rc = call(c, &q, &m, err, errlen)) != 0)
        return rc;
    const struct vnet_msg_reply *r = &m.u.reply;
    if (r->nnetworks < 1)
        return short_reply(&m, err, errlen, "network");
    struct vnet_client_network *v;
    void *nodes;
    v = pack(sizeof(*v), r->nnodes, sizeof(*r->nodes), r->nodes, &nodes, 0, 0, NULL, NULL);
    if (!v) {
        vnet_msg_free(&m);
        return VNET_ENOMEM;
    }
    v->network = r->networks[0];
    v->nodes = nodes;
    v->count = r->nnodes;
    vnet_msg_free(&m);
    *out = v;
    return 0;
}

int vnet_client_network_delete(struct vnet_client *c, const char *name, char *err, size_t errlen)
{
    return call_plain(c, VNET_REQ_NETWORK_DELETE, "network name", name, NULL, err, errlen);
}

int vnet_client_network_status(struct vnet_client *c, const char *name,
                               struct vnet_client_status **out, char *err, size_t errlen)
{
    struct vnet_msg_request q;
    struct vnet_msg m;
    clear_err(err, errlen);
    if (!c || !out)
        return VNET_EINVAL;
    int rc = prepare(&q, VNET_REQ_NETWORK_STATUS, "network name", name, NULL, err, errlen);
    if (rc || (rc = call(c, &q, &m, err, errlen)) != 0)
        return rc;
    const struct vnet_msg_reply *r = &m.u.reply;
    if (r->nnetworks < 1)
        return short_reply(&m, err, errlen, "network");
    struct vnet_client_status *s;
    void *st;
    s = pack(sizeof(*s), r->nstatus, sizeof(*r->status), r->status, &st, 0, 0, NULL, NULL);
    if (!s) {
        vnet_msg_free(&m);
        return VNET_ENOMEM;
    }
    s->network = r->networks[0];
    s->nodes = st;
    s->count = r->nstatus;
    vnet_msg_free(&m);
    *out = s;
    return 0;
}

int vnet_client_node_add(struct vnet_client *c, const char *network, const char *name,
                         const struct vnet_client_node_opts *opts, struct vnet_client_new_node *out,
                         char *err, size_t errlen)
{
    struct vnet_client_node_opts o;
    struct vnet_msg_request q;
    struct vnet_msg m;
    clear_err(err, errlen);
    if (!c || !out)
        return VNET_EINVAL;
    memset(&o, 0, sizeof(o));
    if (opts)
        o = *opts;
    int rc = prepare(&q, VNET_REQ_NODE_ADD, "network name", network, name, err, errlen);
    if (rc)
        return rc;
    if (o.has_mac && vnet_mac_is_multicast(&o.mac))
        return fail(VNET_EINVAL, err, errlen, "%s", "bad MAC: want a unicast one");
    if ((o.ip4.family && o.ip4.family != VNET_AF_INET) ||
        (o.ip6.family && o.ip6.family != VNET_AF_INET6))
        return fail(VNET_EINVAL, err, errlen, "%s", "ip4 must be IPv4 and ip6 IPv6");
    if (o.has_mac) {
        q.mac = o.mac;
        q.has |= VNET_REQ_HAS_MAC;
    }
    if (o.ip4.family) {
        q.ip4 = o.ip4;
        q.has |= VNET_REQ_HAS_IP4;
    }
    if (o.ip6.family) {
        q.ip6 = o.ip6;
        q.has |= VNET_REQ_HAS_IP6;
    }
    if (o.phys.ip.family) {
        q.phys = o.phys;
        q.has |= VNET_REQ_HAS_PHYS;
    }
    if (o.has_pubkey) {
        memcpy(q.pubkey, o.pubkey, sizeof(q.pubkey));
        q.has |= VNET_REQ_HAS_PUBKEY;
    }
    if ((rc = call(c, &q, &m, err, errlen)) != 0)
        return rc;
    if (m.u.reply.nnodes < 1)
        return short_reply(&m, err, errlen, "node");
    memset(out, 0, sizeof(*out));
    out->node = m.u.reply.nodes[0];
    snprintf(out->join_token, sizeof(out->join_token), "%s", m.u.reply.token);
    vnet_msg_free(&m);
    return 0;
}

int vnet_client_node_list(struct vnet_client *c, const char *network,
                          struct vnet_client_nodes **out, char *err, size_t errlen)
{
    struct vnet_msg_request q;
    struct vnet_msg m;
    clear_err(err, errlen);
    if (!c || !out)
        return VNET_EINVAL;
    int rc = prepare(&q, VNET_REQ_NODE_LIST, "network name", network, NULL, err, errlen);
    if (rc || (rc = call(c, &q, &m, err, errlen)) != 0)
        return rc;
    const struct vnet_msg_reply *r = &m.u.reply;
    struct vnet_client_nodes *l;
    void *nodes;
    l = pack(sizeof(*l), r->nnodes, sizeof(*r->nodes), r->nodes, &nodes, 0, 0, NULL, NULL);
    if (!l) {
        vnet_msg_free(&m);
        return VNET_ENOMEM;
    }
    l->nodes = nodes;
    l->count = r->nnodes;
    vnet_msg_free(&m);
    *out = l;
    return 0;
}

/* NODE_SHOW and NODE_MOVE: the node as the reply has it. */
static int call_node(struct vnet_client *c, struct vnet_msg_request *q, struct vnet_node *out,
                     char *err, size_t errlen)
{
    struct vnet_msg m;
    int rc = call(c, q, &m, err, errlen);
    if (rc)
        return rc;
    if (m.u.reply.nnodes < 1)
        return short_reply(&m, err, errlen, "node");
    if (out)
        *out = m.u.reply.nodes[0];
    vnet_msg_free(&m);
    return 0;
}

int vnet_client_node_show(struct vnet_client *c, const char *network, const char *name,
                          struct vnet_node *out, char *err, size_t errlen)
{
    struct vnet_msg_request q;
    clear_err(err, errlen);
    if (!c || !out)
        return VNET_EINVAL;
    int rc = prepare(&q, VNET_REQ_NODE_SHOW, "network name", network, name, err, errlen);
    return rc ? rc : call_node(c, &q, out, err, errlen);
}

int vnet_client_node_move(struct vnet_client *c, const char *network, const char *name,
                          const struct vnet_endpoint *phys, struct vnet_node *out, char *err,
                          size_t errlen)
{
    struct vnet_msg_request q;
    clear_err(err, errlen);
    if (!c)
        return VNET_EINVAL;
    int rc = prepare(&q, VNET_REQ_NODE_MOVE, "network name", network, name, err, errlen);
    if (rc)
        return rc;
    if (!phys || !phys->ip.family)
        return fail(VNET_EINVAL, err, errlen, "%s", "node move needs a physical endpoint");
    q.phys = *phys;
    q.has |= VNET_REQ_HAS_PHYS;
    return call_node(c, &q, out, err, errlen);
}

int vnet_client_node_remove(struct vnet_client *c, const char *network, const char *name, char *err,
                            size_t errlen)
{
    return call_plain(c, VNET_REQ_NODE_REMOVE, "network name", network, name, err, errlen);
}

int vnet_client_node_revoke(struct vnet_client *c, const char *network, const char *name, char *err,
                            size_t errlen)
{
    return call_plain(c, VNET_REQ_NODE_REVOKE, "network name", network, name, err, errlen);
}

/* SUBSCRIBER_CREATE and _TOKEN: the subscriber and its new token. The subscriber's name
 * travels in the request's network field. */
static int call_token(struct vnet_client *c, enum vnet_req_op op, const char *name,
                      struct vnet_client_new_token *out, char *err, size_t errlen)
{
    struct vnet_msg_request q;
    struct vnet_msg m;
    clear_err(err, errlen);
    if (!c || !out)
        return VNET_EINVAL;
    int rc = prepare(&q, op, "subscriber name", name, NULL, err, errlen);
    if (rc || (rc = call(c, &q, &m, err, errlen)) != 0)
        return rc;
    if (m.u.reply.nsubscribers < 1)
        return short_reply(&m, err, errlen, "subscriber");
    memset(out, 0, sizeof(*out));
    out->subscriber = m.u.reply.subscribers[0];
    snprintf(out->token, sizeof(out->token), "%s", m.u.reply.token);
    vnet_msg_free(&m); /* zeroes the token's copy in the message */
    return 0;
}

int vnet_client_subscriber_create(struct vnet_client *c, const char *name,
                                  struct vnet_client_new_token *out, char *err, size_t errlen)
{
    return call_token(c, VNET_REQ_SUBSCRIBER_CREATE, name, out, err, errlen);
}

int vnet_client_subscriber_token(struct vnet_client *c, const char *name,
                                 struct vnet_client_new_token *out, char *err, size_t errlen)
{
    return call_token(c, VNET_REQ_SUBSCRIBER_TOKEN, name, out, err, errlen);
}

int vnet_client_subscriber_list(struct vnet_client *c, struct vnet_client_subscribers **out,
                                char *err, size_t errlen)
{
    struct vnet_msg_request q;
    struct vnet_msg m;
    clear_err(err, errlen);
    if (!c || !out)
        return VNET_EINVAL;
    prepare(&q, VNET_REQ_SUBSCRIBER_LIST, NULL, NULL, NULL, err, errlen);
    int rc = call(c, &q, &m, err, errlen);
    if (rc)
        return rc;
    const struct vnet_msg_reply *r = &m.u.reply;
    struct vnet_client_subscribers *l;
    void *subs;
    l = pack(sizeof(*l), r->nsubscribers, sizeof(*r->subscribers), r->subscribers, &subs, 0, 0,
             NULL, NULL);
    if (!l) {
        vnet_msg_free(&m);
        return VNET_ENOMEM;
    }
    l->subscribers = subs;
    l->count = r->nsubscribers;
    vnet_msg_free(&m);
    *out = l;
    return 0;
}

int vnet_client_subscriber_delete(struct vnet_client *c, const char *name, char *err, size_t errlen)
{
    return call_plain(c, VNET_REQ_SUBSCRIBER_DELETE, "subscriber name", name, NULL, err, errlen);
}
