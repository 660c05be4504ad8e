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

/* Copy a name into a request field, checked here so that a bad one is told as such rather
 * than as a request that cannot be sent. A network name may be the admin's
 * "SUBSCRIBER/NETWORK" (the controller judges who may use that form). */
static int put_name(const char *what, const char *s, char dst[VNET_NAME_MAX], char *err,
                    size_t errlen)
{
    bool ok = s && strlen(s) < VNET_NAME_MAX;
    if (ok && !vnet_name_valid(s)) {
        char sub[VNET_NAME_MAX];
        const char *slash = strncmp(what, "network", 7) == 0 ? strchr(s, '/') : NULL;
        snprintf(sub, sizeof(sub), "%.*s", slash ? (int)(slash - s) : 0, s);
        ok = slash && vnet_name_valid(sub) && vnet_name_valid(slash + 1);
    }
    if (!ok) {
        if (err && errlen)
            snprintf(err, errlen, "invalid %s '%.63s': %s", what, s ? s : "(null)", VNET_NAME_RULE);
        return VNET_EINVAL;
    }
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

/* Start a request for @op on @network and @node (either may be NULL): clear @err, check the
 * client and the output the call needs (@need), copy the names. */
static int begin(struct vnet_client *c, const void *need, struct vnet_msg_request *q,
                 enum vnet_req_op op, const char *net_what, const char *network, const char *node,
                 char *err, size_t errlen)
{
    clear_err(err, errlen);
    memset(q, 0, sizeof(*q));
    q->op = op;
    if (!c || !need)
        return VNET_EINVAL;
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

/* Free the reply @m; 0 when the result @block was made, else VNET_ENOMEM. */
static int done(struct vnet_msg *m, const void *block)
{
    vnet_msg_free(m);
    return block ? 0 : VNET_ENOMEM;
}

/* For begin()'s @need when the output is optional. */
static const char optional_out;

/* begin() and call() for a request on names only. */
static int ask(struct vnet_client *c, const void *need, enum vnet_req_op op, const char *net_what,
               const char *network, const char *node, struct vnet_msg *m, char *err, size_t errlen)
{
    struct vnet_msg_request q;
    int rc = begin(c, need, &q, op, net_what, network, node, err, errlen);
    return rc ? rc : call(c, &q, m, err, errlen);
}

/* The reply lacks what the request promises: a controller bug, not the caller's. */
static int short_reply(struct vnet_msg *m, char *err, size_t errlen, const char *what)
{
    vnet_msg_free(m);
    return fail(VNET_EPROTO, err, errlen, "the controller's reply has no %s", what);
}

#define ALIGN_UP(n) (((n) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

/* One block: a header of @head bytes, then @n1 elements of @sz1 copied from @src1, then @n2
 * zeroed elements of @sz2. *arr1 and *arr2 (may be NULL) point into it, even for n == 0. */
static void *pack(size_t head, uint32_t n1, size_t sz1, const void *src1, void **arr1, uint32_t n2,
                  size_t sz2, void **arr2)
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
    return p;
}

void vnet_client_free(void *list)
{
    free(list);
}

/* A request on names only, whose reply carries nothing the caller needs. */
static int ask_done(struct vnet_client *c, enum vnet_req_op op, const char *net_what,
                    const char *network, const char *node, char *err, size_t errlen)
{
    struct vnet_msg m;
    int rc = ask(c, &optional_out, op, net_what, network, node, &m, err, errlen);
    if (!rc)
        vnet_msg_free(&m);
    return rc;
}

/* ask() for a request on the network @name whose reply carries it. */
static int ask_network(struct vnet_client *c, const void *need, enum vnet_req_op op,
                       const char *name, struct vnet_msg *m, char *err, size_t errlen)
{
    int rc = ask(c, need, op, "network name", name, NULL, m, err, errlen);
    if (!rc && m->u.reply.nnetworks < 1)
        rc = short_reply(m, err, errlen, "network");
    return rc;
}

int vnet_client_network_create(struct vnet_client *c, const char *name,
                               const struct vnet_client_network_opts *opts,
                               struct vnet_network *out, char *err, size_t errlen)
{
    struct vnet_client_network_opts o = {0};
    struct vnet_msg_request q;
    struct vnet_msg m;
    int rc = begin(c, &optional_out, &q, VNET_REQ_NETWORK_CREATE, "network name", name, NULL, err,
                   errlen);
    if (rc)
        return rc;
    if (opts)
        o = *opts;
    if (o.vni > VNET_VNI_MAX)
        return fail(VNET_EINVAL, err, errlen, "%s", "bad VNI: want 1..16777215");
    if ((o.subnet4.ip.family && o.subnet4.ip.family != VNET_AF_INET) ||
        (o.subnet6.ip.family && o.subnet6.ip.family != VNET_AF_INET6))
        return fail(VNET_EINVAL, err, errlen, "%s", "subnet4 must be IPv4 and subnet6 IPv6");
    if (o.mode > VNET_CLIENT_MODE_SECURE)
        return fail(VNET_EINVAL, err, errlen, "%s", "bad mode: plain or secure");
    q.vni = o.vni;
    q.subnet4 = o.subnet4;
    q.subnet6 = o.subnet6;
    q.mtu = o.mtu;
    q.mode = o.mode == VNET_CLIENT_MODE_SECURE ? VNET_MODE_SECURE : VNET_MODE_PLAIN;
    q.has = (o.vni ? VNET_REQ_HAS_VNI : 0) | (o.subnet4.ip.family ? VNET_REQ_HAS_SUBNET4 : 0) |
            (o.subnet6.ip.family ? VNET_REQ_HAS_SUBNET6 : 0) | (o.mtu ? VNET_REQ_HAS_MTU : 0) |
            (o.mode != VNET_CLIENT_MODE_DEFAULT ? VNET_REQ_HAS_MODE : 0);
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
    struct vnet_msg m;
    int rc = ask(c, out, VNET_REQ_NETWORK_LIST, NULL, NULL, NULL, &m, err, errlen);
    if (rc)
        return rc;
    const struct vnet_msg_reply *r = &m.u.reply;
    bool owners = r->nsubscribers > 0; /* the admin's view names the owners */
    struct vnet_client_networks *l;
    void *nets, *subs;
    l = pack(sizeof(*l), r->nnetworks, sizeof(*r->networks), r->networks, &nets,
             owners ? r->nnetworks : 0, sizeof(struct vnet_subscriber), &subs);
    for (uint32_t i = 0; l && owners && i < r->nnetworks; i++)
        for (uint32_t j = 0; j < r->nsubscribers; j++)
            if (r->subscribers[j].id == r->networks[i].subscriber_id)
                ((struct vnet_subscriber *)subs)[i] = r->subscribers[j];
    if (l)
        *l = (struct vnet_client_networks){nets, owners ? subs : NULL, r->nnetworks};
    if ((rc = done(&m, l)) == 0)
        *out = l;
    return rc;
}

int vnet_client_network_show(struct vnet_client *c, const char *name,
                             struct vnet_client_network **out, char *err, size_t errlen)
{
    struct vnet_msg m;
    int rc = ask_network(c, out, VNET_REQ_NETWORK_SHOW, name, &m, err, errlen);
    if (rc)
        return rc;
    const struct vnet_msg_reply *r = &m.u.reply;
    struct vnet_client_network *v;
    void *nodes;
    v = pack(sizeof(*v), r->nnodes, sizeof(*r->nodes), r->nodes, &nodes, 0, 0, NULL);
    if (v)
        *v = (struct vnet_client_network){r->networks[0], nodes, r->nnodes};
    if ((rc = done(&m, v)) == 0)
        *out = v;
    return rc;
}

int vnet_client_network_delete(struct vnet_client *c, const char *name, char *err, size_t errlen)
{
    return ask_done(c, VNET_REQ_NETWORK_DELETE, "network name", name, NULL, err, errlen);
}

int vnet_client_network_status(struct vnet_client *c, const char *name,
                               struct vnet_client_status **out, char *err, size_t errlen)
{
    struct vnet_msg m;
    int rc = ask_network(c, out, VNET_REQ_NETWORK_STATUS, name, &m, err, errlen);
    if (rc)
        return rc;
    const struct vnet_msg_reply *r = &m.u.reply;
    struct vnet_client_status *v;
    void *st, *peers;
    uint32_t npeers = 0;
    for (uint32_t i = 0; i < r->nstatus; i++) {
        if (r->status[i].report.npeers > UINT32_MAX - npeers) {
            vnet_msg_free(&m);
            return fail(VNET_EPROTO, err, errlen, "%s", "too many peers in the reply");
        }
        npeers += r->status[i].report.npeers;
    }
    v = pack(sizeof(*v), r->nstatus, sizeof(*r->status), r->status, &st, npeers,
             sizeof(struct vnet_report_peer), &peers);
    if (v) {
        /* the reports' peers move into the same block, after the entries */
        struct vnet_node_status *s = st;
        struct vnet_report_peer *p = peers;
        for (uint32_t i = 0; i < r->nstatus; i++) {
            uint32_t n = s[i].report.npeers;
            if (n)
                memcpy(p, r->status[i].report.peers, n * sizeof(*p));
            s[i].report.peers = n ? p : NULL;
            p += n;
        }
        *v = (struct vnet_client_status){r->networks[0], st, r->nstatus};
    }
    if ((rc = done(&m, v)) == 0)
        *out = v;
    return rc;
}

int vnet_client_node_add(struct vnet_client *c, const char *network, const char *name,
                         const struct vnet_client_node_opts *opts, struct vnet_client_new_node *out,
                         char *err, size_t errlen)
{
    struct vnet_client_node_opts o;
    struct vnet_msg_request q;
    struct vnet_msg m;
    int rc = begin(c, out, &q, VNET_REQ_NODE_ADD, "network name", network, name, err, errlen);
    if (rc)
        return rc;
    memset(&o, 0, sizeof(o));
    if (opts)
        o = *opts;
    if (o.has_mac && vnet_mac_is_multicast(&o.mac))
        return fail(VNET_EINVAL, err, errlen, "%s", "bad MAC: want a unicast one");
    if ((o.ip4.family && o.ip4.family != VNET_AF_INET) ||
        (o.ip6.family && o.ip6.family != VNET_AF_INET6))
        return fail(VNET_EINVAL, err, errlen, "%s", "ip4 must be IPv4 and ip6 IPv6");
    q.mac = o.mac;
    q.ip4 = o.ip4;
    q.ip6 = o.ip6;
    q.phys = o.phys;
    memcpy(q.pubkey, o.pubkey, sizeof(q.pubkey));
    q.has = (o.has_mac ? VNET_REQ_HAS_MAC : 0) | (o.ip4.family ? VNET_REQ_HAS_IP4 : 0) |
            (o.ip6.family ? VNET_REQ_HAS_IP6 : 0) | (o.phys.ip.family ? VNET_REQ_HAS_PHYS : 0) |
            (o.has_pubkey ? VNET_REQ_HAS_PUBKEY : 0);
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
    struct vnet_msg m;
    int rc = ask(c, out, VNET_REQ_NODE_LIST, "network name", network, NULL, &m, err, errlen);
    if (rc)
        return rc;
    const struct vnet_msg_reply *r = &m.u.reply;
    struct vnet_client_nodes *l;
    void *nodes;
    l = pack(sizeof(*l), r->nnodes, sizeof(*r->nodes), r->nodes, &nodes, 0, 0, NULL);
    if (l)
        *l = (struct vnet_client_nodes){nodes, r->nnodes};
    if ((rc = done(&m, l)) == 0)
        *out = l;
    return rc;
}

/* NODE_SHOW and NODE_MOVE: the node as the reply has it. */
static int call_node(struct vnet_client *c, struct vnet_msg_request *q, struct vnet_node_info *out,
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
                          struct vnet_node_info *out, char *err, size_t errlen)
{
    struct vnet_msg_request q;
    int rc = begin(c, out, &q, VNET_REQ_NODE_SHOW, "network name", network, name, err, errlen);
    return rc ? rc : call_node(c, &q, out, err, errlen);
}

int vnet_client_node_move(struct vnet_client *c, const char *network, const char *name,
                          const struct vnet_endpoint *phys, struct vnet_node_info *out, char *err,
                          size_t errlen)
{
    struct vnet_msg_request q;
    int rc =
        begin(c, &optional_out, &q, VNET_REQ_NODE_MOVE, "network name", network, name, err, errlen);
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
    return ask_done(c, VNET_REQ_NODE_REMOVE, "network name", network, name, err, errlen);
}

int vnet_client_node_revoke(struct vnet_client *c, const char *network, const char *name, char *err,
                            size_t errlen)
{
    return ask_done(c, VNET_REQ_NODE_REVOKE, "network name", network, name, err, errlen);
}

/* SUBSCRIBER_CREATE and _TOKEN: the subscriber and its new token. The subscriber's name
 * travels in the request's network field. */
static int ask_token(struct vnet_client *c, enum vnet_req_op op, const char *name,
                     struct vnet_client_new_token *out, char *err, size_t errlen)
{
    struct vnet_msg m;
    int rc = ask(c, out, op, "subscriber name", name, NULL, &m, err, errlen);
    if (rc)
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
    return ask_token(c, VNET_REQ_SUBSCRIBER_CREATE, name, out, err, errlen);
}

int vnet_client_subscriber_token(struct vnet_client *c, const char *name,
                                 struct vnet_client_new_token *out, char *err, size_t errlen)
{
    return ask_token(c, VNET_REQ_SUBSCRIBER_TOKEN, name, out, err, errlen);
}

int vnet_client_subscriber_list(struct vnet_client *c, struct vnet_client_subscribers **out,
                                char *err, size_t errlen)
{
    struct vnet_msg m;
    int rc = ask(c, out, VNET_REQ_SUBSCRIBER_LIST, NULL, NULL, NULL, &m, err, errlen);
    if (rc)
        return rc;
    const struct vnet_msg_reply *r = &m.u.reply;
    struct vnet_client_subscribers *l;
    void *subs;
    l = pack(sizeof(*l), r->nsubscribers, sizeof(*r->subscribers), r->subscribers, &subs, 0, 0,
             NULL);
    if (l)
        *l = (struct vnet_client_subscribers){subs, r->nsubscribers};
    if ((rc = done(&m, l)) == 0)
        *out = l;
    return rc;
}

int vnet_client_subscriber_delete(struct vnet_client *c, const char *name, char *err, size_t errlen)
{
    return ask_done(c, VNET_REQ_SUBSCRIBER_DELETE, "subscriber name", name, NULL, err, errlen);
}
