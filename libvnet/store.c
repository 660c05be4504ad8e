/* The store: engine registry, URI dispatch and the checks that need no stored data.
 *
 * Every public call goes through here so that the argument checks, the defaults and the
 * read-only refusal are the same for every engine; engines only do what needs their data
 * (see include/vnet/sys/store.h for what an engine may rely on). */
#include "vnet/sys/store.h"
#include "vnet/error.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENGINES 8

struct vnet_store {
    const struct vnet_store_ops *ops;
    void *state;
    bool read_only;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct vnet_store_ops *engines[MAX_ENGINES];
static int nengines;

static void register_builtins_locked(void)
{
    if (nengines == 0)
        engines[nengines++] = &vnet_store_sqlite_ops;
}

static bool scheme_valid(const char *s, size_t n)
{
    if (n < 2 || n > 31 || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

int vnet_store_register(const struct vnet_store_ops *ops)
{
    if (!ops || ops->version != VNET_STORE_OPS_VERSION || !ops->scheme ||
        !scheme_valid(ops->scheme, strlen(ops->scheme)) || !ops->open || !ops->close ||
        !ops->network_create || !ops->network_get || !ops->network_get_by_id ||
        !ops->network_list || !ops->network_delete || !ops->node_add || !ops->node_get ||
        !ops->node_get_by_id || !ops->node_list || !ops->node_move || !ops->node_set_observed ||
        !ops->node_remove || !ops->changes_since || !ops->last_change || !ops->changed_networks ||
        !ops->subscriber_create || !ops->subscriber_get || !ops->subscriber_get_by_id ||
        !ops->subscriber_by_token || !ops->subscriber_list || !ops->subscriber_set_token ||
        !ops->subscriber_delete || !ops->node_set_pubkey || !ops->node_set_join_token ||
        !ops->node_join || !ops->node_by_pubkey || !ops->node_revoke)
        return VNET_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&reg_lock);
    register_builtins_locked();
    for (int i = 0; i < nengines; i++)
        if (strcmp(engines[i]->scheme, ops->scheme) == 0)
            rc = VNET_EEXIST;
    if (!rc && nengines == MAX_ENGINES)
        rc = VNET_ENOSPC;
    if (!rc)
        engines[nengines++] = ops;
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

static const struct vnet_store_ops *find_engine(const char *scheme, size_t len)
{
    const struct vnet_store_ops *found = NULL;
    pthread_mutex_lock(&reg_lock);
    register_builtins_locked();
    for (int i = 0; i < nengines && !found; i++)
        if (strlen(engines[i]->scheme) == len && memcmp(engines[i]->scheme, scheme, len) == 0)
            found = engines[i];
    pthread_mutex_unlock(&reg_lock);
    return found;
}

void vnet_store_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Callers may pass no error buffer; engines always get one. */
#define ERRBUF_FIX(err, errlen)                                                                    \
    char errbuf_[256];                                                                             \
    if (!(err) || !(errlen)) {                                                                     \
        (err) = errbuf_;                                                                           \
        (errlen) = sizeof(errbuf_);                                                                \
    }                                                                                              \
    (err)[0] = '\0'

static int refuse_read_only(const struct vnet_store *s, char *err, size_t errlen)
{
    if (!s->read_only)
        return 0;
    vnet_store_seterr(err, errlen, "the store is open read-only");
    return VNET_EPERM;
}

bool vnet_name_valid(const char *s)
{
    if (!s)
        return false;
    size_t i = 0;
    for (; s[i]; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (i >= VNET_NAME_MAX - 1 || !(alnum || (i > 0 && (c == '.' || c == '_' || c == '-'))))
            return false;
    }
    return i > 0;
}

/* An all-zero key or hash is an uninitialised buffer, never a real one (and the all-zero
 * X25519 public key is a low-order point). */
static bool all_zero(const uint8_t *b, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

static bool key_ok(const uint8_t *k)
{
    return k && !all_zero(k, VNET_PUBKEY_LEN);
}

static bool hash_ok(const uint8_t *h)
{
    return h && !all_zero(h, VNET_TOKEN_HASH_LEN);
}

/* ---- open / close ---- */

int vnet_store_open(const char *uri, const struct vnet_store_opts *opts, struct vnet_store **out,
                    char *err, size_t errlen)
{
    ERRBUF_FIX(err, errlen);
    if (!uri || !out) {
        vnet_store_seterr(err, errlen, "no store URI given");
        return VNET_EINVAL;
    }
    const struct vnet_store_ops *ops = NULL;
    const char *arg = uri;
    const char *colon = strchr(uri, ':');
    if (colon && scheme_valid(uri, (size_t)(colon - uri))) {
        ops = find_engine(uri, (size_t)(colon - uri));
        if (ops) {
            arg = colon + 1;
        } else if (colon[1] == '/' && colon[2] == '/') {
            vnet_store_seterr(err, errlen, "no store engine for '%.*s' URIs", (int)(colon - uri),
                              uri);
            return VNET_ENOTSUP;
        }
    }
    if (!ops)
        ops = find_engine("sqlite", 6); /* a plain path, even one with a colon in it */
    if (!ops) {
        vnet_store_seterr(err, errlen, "no SQLite engine");
        return VNET_ENOTSUP;
    }
    if (!arg[0]) {
        vnet_store_seterr(err, errlen, "store URI '%s' names no database", uri);
        return VNET_EINVAL;
    }
    struct vnet_store_opts o;
    memset(&o, 0, sizeof(o));
    if (opts)
        o = *opts;
    if (!o.retention)
        o.retention = VNET_STORE_RETENTION_DEFAULT;
    if (!o.busy_timeout_ms)
        o.busy_timeout_ms = VNET_STORE_BUSY_MS_DEFAULT;

    struct vnet_store *s = calloc(1, sizeof(*s));
    if (!s)
        return VNET_ENOMEM;
    int rc = ops->open(arg, &o, &s->state, err, errlen);
    if (rc) {
        free(s);
        return rc;
    }
    s->ops = ops;
    s->read_only = o.read_only;
    *out = s;
    return 0;
}

void vnet_store_close(struct vnet_store *s)
{
    if (!s)
        return;
    s->ops->close(s->state);
    free(s);
}

/* ---- checks ---- */

static void prefix_mask(struct vnet_prefix *p)
{
    unsigned bits = p->len, max = p->ip.family == VNET_AF_INET ? 32 : 128;
    for (unsigned i = 0; i < 16; i++) {
        unsigned lo = i * 8;
        if (lo >= max)
            p->ip.addr[i] = 0;
        else if (lo + 8 > bits)
            p->ip.addr[i] &= (uint8_t)(bits > lo ? 0xff << (8 - (bits - lo)) : 0);
    }
}

static int check_subnet(const struct vnet_prefix *in, uint8_t family, struct vnet_prefix *out,
                        char *err, size_t errlen)
{
    char buf[VNET_PREFIX_STRLEN];
    memset(out, 0, sizeof(*out));
    if (in->ip.family == VNET_AF_NONE)
        return 0;
    unsigned maxlen = family == VNET_AF_INET ? 30 : 127;
    if (in->ip.family != family || in->len < 1 || in->len > maxlen) {
        if (vnet_prefix_format(in, buf, sizeof(buf)) < 0)
            snprintf(buf, sizeof(buf), "(family %u, length %u)", in->ip.family, in->len);
        vnet_store_seterr(err, errlen, "bad %s subnet %s: need /1 to /%u",
                          family == VNET_AF_INET ? "IPv4" : "IPv6", buf, maxlen);
        return VNET_EINVAL;
    }
    *out = *in;
    prefix_mask(out);
    return 0;
}

int vnet_store_check_network_spec(const struct vnet_network_spec *in, struct vnet_network_spec *out,
                                  char *err, size_t errlen)
{
    if (!in || !out) {
        vnet_store_seterr(err, errlen, "no network spec given");
        return VNET_EINVAL;
    }
    struct vnet_network_spec o = *in;
    if (!vnet_name_valid(in->name)) {
        vnet_store_seterr(err, errlen,
                          "invalid network name '%.63s': 1 to 63 characters of A-Z a-z 0-9 . _ -, "
                          "starting with a letter or digit",
                          in->name ? in->name : "(null)");
        return VNET_EINVAL;
    }
    if (!o.subscriber_id)
        o.subscriber_id = VNET_SUBSCRIBER_ADMIN;
    o.has_vni = in->has_vni || in->vni != 0;
    if (o.has_vni && in->vni == 0) {
        vnet_store_seterr(err, errlen, "VNI 0 is reserved");
        return VNET_EINVAL;
    }
    if (in->vni > VNET_VNI_MAX) {
        vnet_store_seterr(err, errlen, "VNI %u is out of range 1..%u", in->vni, VNET_VNI_MAX);
        return VNET_EINVAL;
    }
    int rc = check_subnet(&in->subnet4, VNET_AF_INET, &o.subnet4, err, errlen);
    if (!rc)
        rc = check_subnet(&in->subnet6, VNET_AF_INET6, &o.subnet6, err, errlen);
    if (rc)
        return rc;
    /* A zeroed spec (mode 0, has_mode false) gets the secure default, not plain. */
    if (in->mode == -1 || (!in->has_mode && in->mode == 0)) {
        o.mode = VNET_MODE_SECURE;
    } else if (in->mode != VNET_MODE_PLAIN && in->mode != VNET_MODE_SECURE) {
        vnet_store_seterr(err, errlen, "unknown data plane mode %d: need %d (plain) or %d (secure)",
                          in->mode, VNET_MODE_PLAIN, VNET_MODE_SECURE);
        return VNET_EINVAL;
    }
    o.has_mode = true;
    if (!o.mtu)
        o.mtu = VNET_STORE_MTU_DEFAULT;
    uint32_t min = o.subnet6.ip.family ? 1280 : VNET_STORE_MTU_MIN;
    if (o.mtu < min || o.mtu > VNET_STORE_MTU_MAX) {
        vnet_store_seterr(err, errlen, "MTU %u is out of range %u..%u%s", o.mtu, min,
                          VNET_STORE_MTU_MAX, o.subnet6.ip.family ? " (IPv6 needs 1280)" : "");
        return VNET_EINVAL;
    }
    *out = o;
    return 0;
}

int vnet_store_check_endpoint(const struct vnet_endpoint *ep)
{
    if (!ep)
        return VNET_EINVAL;
    if (ep->ip.family == VNET_AF_NONE)
        return ep->port == 0 ? 0 : VNET_EINVAL;
    if (ep->ip.family != VNET_AF_INET && ep->ip.family != VNET_AF_INET6)
        return VNET_EINVAL;
    return ep->port ? 0 : VNET_EINVAL;
}

static void endpoint_norm(struct vnet_endpoint *ep)
{
    if (ep->ip.family == VNET_AF_NONE)
        memset(ep, 0, sizeof(*ep));
    else if (ep->ip.family == VNET_AF_INET)
        memset(ep->ip.addr + 4, 0, 12);
}

int vnet_store_check_node_spec(const struct vnet_node_spec *in, struct vnet_node_spec *out,
                               char *err, size_t errlen)
{
    char buf[VNET_MAC_STRLEN];
    if (!in || !out) {
        vnet_store_seterr(err, errlen, "no node spec given");
        return VNET_EINVAL;
    }
    struct vnet_node_spec o;
    memset(&o, 0, sizeof(o));
    o.name = in->name;
    o.pubkey = in->pubkey;
    if (!vnet_name_valid(in->name)) {
        vnet_store_seterr(err, errlen,
                          "invalid node name '%.63s': 1 to 63 characters of A-Z a-z 0-9 . _ -, "
                          "starting with a letter or digit",
                          in->name ? in->name : "(null)");
        return VNET_EINVAL;
    }
    if (in->pubkey && !key_ok(in->pubkey)) {
        vnet_store_seterr(err, errlen, "node '%s': the public key is all zeros", in->name);
        return VNET_EINVAL;
    }
    if (in->has_mac) {
        vnet_mac_format(&in->mac, buf, sizeof(buf));
        if (vnet_mac_is_multicast(&in->mac) || vnet_mac_is_zero(&in->mac)) {
            vnet_store_seterr(err, errlen, "MAC %s is %s, not a unicast address", buf,
                              vnet_mac_is_broadcast(&in->mac)   ? "the broadcast address"
                              : vnet_mac_is_multicast(&in->mac) ? "multicast"
                                                                : "zero");
            return VNET_EINVAL;
        }
        o.has_mac = true;
        o.mac = in->mac;
    }
    for (int i = 0; i < VNET_NODE_IPS; i++) {
        const struct vnet_ip *ip = &in->ips[i];
        int slot = ip->family == VNET_AF_INET ? 0 : ip->family == VNET_AF_INET6 ? 1 : -1;
        if (ip->family == VNET_AF_NONE)
            continue;
        if (slot < 0) {
            vnet_store_seterr(err, errlen, "IP address %d has an unknown family %u", i + 1,
                              ip->family);
            return VNET_EINVAL;
        }
        if (o.ips[slot].family) {
            vnet_store_seterr(err, errlen, "a node has at most one %s address",
                              slot ? "IPv6" : "IPv4");
            return VNET_EINVAL;
        }
        o.ips[slot] = *ip;
        if (slot == 0)
            memset(o.ips[0].addr + 4, 0, 12);
    }
    if (vnet_store_check_endpoint(&in->phys)) {
        vnet_store_seterr(err, errlen,
                          "bad physical endpoint: need an IPv4 or IPv6 address and a port "
                          "1..65535");
        return VNET_EINVAL;
    }
    o.phys = in->phys;
    endpoint_norm(&o.phys);
    *out = o;
    return 0;
}

static const struct vnet_prefix *subnet_of(const struct vnet_network *net, uint8_t family)
{
    return family == VNET_AF_INET ? &net->subnet4 : &net->subnet6;
}

/* Whether the host part of @ip under @p is all zeros (want 0) or all ones (want 1). */
static bool host_bits_all(const struct vnet_prefix *p, const struct vnet_ip *ip, int want)
{
    unsigned max = ip->family == VNET_AF_INET ? 32 : 128;
    for (unsigned bit = p->len; bit < max; bit++) {
        int v = (ip->addr[bit / 8] >> (7 - bit % 8)) & 1;
        if (v != want)
            return false;
    }
    return true;
}

int vnet_store_check_ip(const struct vnet_network *net, const struct vnet_ip *ip, char *err,
                        size_t errlen)
{
    char ipbuf[VNET_IP_STRLEN], pbuf[VNET_PREFIX_STRLEN];
    if (!net || !ip || (ip->family != VNET_AF_INET && ip->family != VNET_AF_INET6)) {
        vnet_store_seterr(err, errlen, "bad IP address");
        return VNET_EINVAL;
    }
    const struct vnet_prefix *p = subnet_of(net, ip->family);
    vnet_ip_format(ip, ipbuf, sizeof(ipbuf));
    if (p->ip.family != ip->family) {
        vnet_store_seterr(err, errlen, "IP %s: network '%s' has no %s subnet", ipbuf, net->name,
                          ip->family == VNET_AF_INET ? "IPv4" : "IPv6");
        return VNET_EINVAL;
    }
    vnet_prefix_format(p, pbuf, sizeof(pbuf));
    if (!vnet_prefix_contains(p, ip)) {
        vnet_store_seterr(err, errlen, "IP %s is not in subnet %s of network '%s'", ipbuf, pbuf,
                          net->name);
        return VNET_EINVAL;
    }
    if (host_bits_all(p, ip, 0)) {
        vnet_store_seterr(err, errlen, "IP %s is the network address of subnet %s of network '%s'",
                          ipbuf, pbuf, net->name);
        return VNET_EINVAL;
    }
    if (ip->family == VNET_AF_INET && host_bits_all(p, ip, 1)) {
        vnet_store_seterr(err, errlen,
                          "IP %s is the broadcast address of subnet %s of network '%s'", ipbuf,
                          pbuf, net->name);
        return VNET_EINVAL;
    }
    return 0;
}

static unsigned ip_len(const struct vnet_ip *ip)
{
    return ip->family == VNET_AF_INET ? 4 : 16;
}

int vnet_store_ip_cmp(const struct vnet_ip *a, const struct vnet_ip *b)
{
    return memcmp(a->addr, b->addr, ip_len(a));
}

bool vnet_store_ip_inc(struct vnet_ip *ip)
{
    for (int i = (int)ip_len(ip) - 1; i >= 0; i--)
        if (++ip->addr[i] != 0)
            return true;
    return false;
}

void vnet_store_subnet_first(const struct vnet_prefix *p, struct vnet_ip *out)
{
    struct vnet_prefix m = *p;
    prefix_mask(&m);
    *out = m.ip;
    vnet_store_ip_inc(out);
}

void vnet_store_subnet_last(const struct vnet_prefix *p, struct vnet_ip *out)
{
    struct vnet_prefix m = *p;
    prefix_mask(&m);
    unsigned max = ip_len(&m.ip) * 8;
    for (unsigned bit = m.len; bit < max; bit++)
        m.ip.addr[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
    *out = m.ip;
    if (out->family == VNET_AF_INET) { /* the one before the broadcast address */
        for (int i = 3; i >= 0; i--)
            if (out->addr[i]-- != 0)
                break;
    }
}

/* ---- node records ----
 *
 * u8 format (1) | u64 id | u64 network_id | u64 revision | u8 state | u8 name length | name |
 * u8 flags (bit 0: has_pubkey) | [32 pubkey] | 6 MAC | 2 x ip | phys | observed
 * ip: u8 family (0, 4, 6) then 0, 4 or 16 address bytes; endpoint: ip then u16 port when the
 * family is not 0. Integers big-endian. */

#define NODE_ENC_FORMAT 1

struct wbuf {
    uint8_t *p;
    size_t len, off;
    bool over;
};

static void put(struct wbuf *w, const void *src, size_t n)
{
    if (w->over || w->len - w->off < n) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->off, src, n);
    w->off += n;
}

static void put_u8(struct wbuf *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(w, &b, 1);
}

static void put_u64(struct wbuf *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    put(w, b, 8);
}

static void put_ip(struct wbuf *w, const struct vnet_ip *ip)
{
    put_u8(w, ip->family);
    if (ip->family)
        put(w, ip->addr, ip_len(ip));
}

static void put_ep(struct wbuf *w, const struct vnet_endpoint *ep)
{
    put_ip(w, &ep->ip);
    if (ep->ip.family) {
        put_u8(w, ep->port >> 8);
        put_u8(w, ep->port & 0xff);
    }
}

static bool family_ok(uint8_t f)
{
    return f == VNET_AF_NONE || f == VNET_AF_INET || f == VNET_AF_INET6;
}

int vnet_store_node_encode(const struct vnet_node *n, uint8_t *buf, size_t len)
{
    if (!n || !buf)
        return VNET_EINVAL;
    size_t nl = strnlen(n->name, VNET_NAME_MAX);
    if (nl == 0 || nl >= VNET_NAME_MAX || (unsigned)n->state > VNET_NODE_REMOVED ||
        !family_ok(n->ips[0].family) || !family_ok(n->ips[1].family) ||
        !family_ok(n->phys.ip.family) || !family_ok(n->observed.ip.family))
        return VNET_EINVAL;
    struct wbuf w = {buf, len, 0, false};
    put_u8(&w, NODE_ENC_FORMAT);
    put_u64(&w, n->id);
    put_u64(&w, n->network_id);
    put_u64(&w, n->revision);
    put_u8(&w, (unsigned)n->state);
    put_u8(&w, (unsigned)nl);
    put(&w, n->name, nl);
    put_u8(&w, n->has_pubkey ? 1 : 0);
    if (n->has_pubkey)
        put(&w, n->pubkey, VNET_PUBKEY_LEN);
    put(&w, n->mac.b, 6);
    for (int i = 0; i < VNET_NODE_IPS; i++)
        put_ip(&w, &n->ips[i]);
    put_ep(&w, &n->phys);
    put_ep(&w, &n->observed);
    return w.over ? VNET_ENOSPC : (int)w.off;
}

struct rbuf {
    const uint8_t *p;
    size_t len, off;
    bool bad;
};

static const uint8_t *take(struct rbuf *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static unsigned get_u8(struct rbuf *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

static uint64_t get_u64(struct rbuf *r)
{
    const uint8_t *p = take(r, 8);
    uint64_t v = 0;
    for (int i = 0; p && i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void get_ip(struct rbuf *r, struct vnet_ip *ip)
{
    unsigned f = get_u8(r);
    if (!family_ok((uint8_t)f)) {
        r->bad = true;
        return;
    }
    ip->family = (uint8_t)f;
    if (f) {
        const uint8_t *p = take(r, ip_len(ip));
        if (p)
            memcpy(ip->addr, p, ip_len(ip));
    }
}

static void get_ep(struct rbuf *r, struct vnet_endpoint *ep)
{
    get_ip(r, &ep->ip);
    if (ep->ip.family) {
        unsigned hi = get_u8(r);
        ep->port = (uint16_t)(hi << 8 | get_u8(r));
    }
}

int vnet_store_node_decode(const uint8_t *buf, size_t len, struct vnet_node *out)
{
    struct vnet_node n;
    if (!buf || !out)
        return VNET_EINVAL;
    memset(&n, 0, sizeof(n));
    struct rbuf r = {buf, len, 0, false};
    if (get_u8(&r) != NODE_ENC_FORMAT)
        return VNET_ECORRUPT;
    n.id = get_u64(&r);
    n.network_id = get_u64(&r);
    n.revision = get_u64(&r);
    unsigned state = get_u8(&r);
    unsigned nl = get_u8(&r);
    const uint8_t *name = take(&r, nl);
    if (r.bad || state > VNET_NODE_REMOVED || nl == 0 || nl >= VNET_NAME_MAX || memchr(name, 0, nl))
        return VNET_ECORRUPT;
    n.state = (enum vnet_node_state)state;
    memcpy(n.name, name, nl);
    unsigned flags = get_u8(&r);
    if (flags > 1)
        return VNET_ECORRUPT;
    n.has_pubkey = flags & 1;
    if (n.has_pubkey) {
        const uint8_t *k = take(&r, VNET_PUBKEY_LEN);
        if (k)
            memcpy(n.pubkey, k, VNET_PUBKEY_LEN);
    }
    const uint8_t *mac = take(&r, 6);
    if (mac)
        memcpy(n.mac.b, mac, 6);
    for (int i = 0; i < VNET_NODE_IPS; i++)
        get_ip(&r, &n.ips[i]);
    get_ep(&r, &n.phys);
    get_ep(&r, &n.observed);
    if (r.bad || r.off != len)
        return VNET_ECORRUPT;
    *out = n;
    return 0;
}

/* ---- dispatch ---- */

int vnet_store_subscriber_create(struct vnet_store *s, const char *name,
                                 const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                 struct vnet_subscriber *out, char *err, size_t errlen)
{
    struct vnet_subscriber tmp;
    ERRBUF_FIX(err, errlen);
    if (!s) {
        vnet_store_seterr(err, errlen, "no store");
        return VNET_EINVAL;
    }
    int rc = refuse_read_only(s, err, errlen);
    if (rc)
        return rc;
    if (!vnet_name_valid(name)) {
        vnet_store_seterr(err, errlen,
                          "invalid subscriber name '%.63s': 1 to 63 characters of A-Z a-z 0-9 . _ "
                          "-, starting with a letter or digit",
                          name ? name : "(null)");
        return VNET_EINVAL;
    }
    if (token_hash && !hash_ok(token_hash)) {
        vnet_store_seterr(err, errlen, "subscriber '%s': the token hash is all zeros", name);
        return VNET_EINVAL;
    }
    return s->ops->subscriber_create(s->state, name, token_hash, out ? out : &tmp, err, errlen);
}

int vnet_store_subscriber_get(struct vnet_store *s, const char *name, struct vnet_subscriber *out)
{
    struct vnet_subscriber tmp;
    if (!s || !vnet_name_valid(name))
        return VNET_EINVAL;
    return s->ops->subscriber_get(s->state, name, out ? out : &tmp);
}

int vnet_store_subscriber_get_by_id(struct vnet_store *s, uint64_t id, struct vnet_subscriber *out)
{
    struct vnet_subscriber tmp;
    if (!s)
        return VNET_EINVAL;
    return s->ops->subscriber_get_by_id(s->state, id, out ? out : &tmp);
}

int vnet_store_subscriber_by_token(struct vnet_store *s,
                                   const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                   struct vnet_subscriber *out)
{
    struct vnet_subscriber tmp;
    if (!s || !token_hash)
        return VNET_EINVAL;
    if (!hash_ok(token_hash)) /* nobody has it: stored hashes are never all zeros */
        return VNET_ENOENT;
    return s->ops->subscriber_by_token(s->state, token_hash, out ? out : &tmp);
}

int vnet_store_subscriber_list(struct vnet_store *s, vnet_store_subscriber_fn fn, void *arg)
{
    if (!s || !fn)
        return VNET_EINVAL;
    return s->ops->subscriber_list(s->state, fn, arg);
}

int vnet_store_subscriber_set_token(struct vnet_store *s, uint64_t id,
                                    const uint8_t token_hash[VNET_TOKEN_HASH_LEN])
{
    if (!s || (token_hash && !hash_ok(token_hash)))
        return VNET_EINVAL;
    if (s->read_only)
        return VNET_EPERM;
    return s->ops->subscriber_set_token(s->state, id, token_hash);
}

int vnet_store_admin_token_set(struct vnet_store *s, const uint8_t token_hash[VNET_TOKEN_HASH_LEN])
{
    return vnet_store_subscriber_set_token(s, VNET_SUBSCRIBER_ADMIN, token_hash);
}

int vnet_store_subscriber_delete(struct vnet_store *s, uint64_t id)
{
    if (!s)
        return VNET_EINVAL;
    if (s->read_only || id == VNET_SUBSCRIBER_ADMIN)
        return VNET_EPERM;
    return s->ops->subscriber_delete(s->state, id);
}

int vnet_store_network_create(struct vnet_store *s, const struct vnet_network_spec *spec,
                              struct vnet_network *out, char *err, size_t errlen)
{
    struct vnet_network_spec sp;
    struct vnet_network tmp;
    ERRBUF_FIX(err, errlen);
    if (!s) {
        vnet_store_seterr(err, errlen, "no store");
        return VNET_EINVAL;
    }
    int rc = refuse_read_only(s, err, errlen);
    if (!rc)
        rc = vnet_store_check_network_spec(spec, &sp, err, errlen);
    if (rc)
        return rc;
    return s->ops->network_create(s->state, &sp, out ? out : &tmp, err, errlen);
}

int vnet_store_network_get(struct vnet_store *s, uint64_t subscriber_id, const char *name,
                           struct vnet_network *out)
{
    struct vnet_network tmp;
    if (!s || !vnet_name_valid(name))
        return VNET_EINVAL;
    return s->ops->network_get(s->state, subscriber_id, name, out ? out : &tmp);
}

int vnet_store_network_get_by_id(struct vnet_store *s, uint64_t id, struct vnet_network *out)
{
    struct vnet_network tmp;
    if (!s)
        return VNET_EINVAL;
    return s->ops->network_get_by_id(s->state, id, out ? out : &tmp);
}

int vnet_store_network_list(struct vnet_store *s, uint64_t subscriber_id, vnet_store_network_fn fn,
                            void *arg)
{
    if (!s || !fn)
        return VNET_EINVAL;
    return s->ops->network_list(s->state, subscriber_id, fn, arg);
}

int vnet_store_network_delete(struct vnet_store *s, uint64_t network_id, char *err, size_t errlen)
{
    ERRBUF_FIX(err, errlen);
    if (!s) {
        vnet_store_seterr(err, errlen, "no store");
        return VNET_EINVAL;
    }
    int rc = refuse_read_only(s, err, errlen);
    if (rc)
        return rc;
    return s->ops->network_delete(s->state, network_id, err, errlen);
}

int vnet_store_node_add(struct vnet_store *s, uint64_t network_id,
                        const struct vnet_node_spec *spec, struct vnet_node *out, char *err,
                        size_t errlen)
{
    struct vnet_node_spec sp;
    struct vnet_node tmp;
    ERRBUF_FIX(err, errlen);
    if (!s) {
        vnet_store_seterr(err, errlen, "no store");
        return VNET_EINVAL;
    }
    int rc = refuse_read_only(s, err, errlen);
    if (!rc)
        rc = vnet_store_check_node_spec(spec, &sp, err, errlen);
    if (rc)
        return rc;
    return s->ops->node_add(s->state, network_id, &sp, out ? out : &tmp, err, errlen);
}

int vnet_store_node_get(struct vnet_store *s, uint64_t network_id, const char *name,
                        struct vnet_node *out)
{
    struct vnet_node tmp;
    if (!s || !vnet_name_valid(name))
        return VNET_EINVAL;
    return s->ops->node_get(s->state, network_id, name, out ? out : &tmp);
}

int vnet_store_node_get_by_id(struct vnet_store *s, uint64_t node_id, struct vnet_node *out)
{
    struct vnet_node tmp;
    if (!s)
        return VNET_EINVAL;
    return s->ops->node_get_by_id(s->state, node_id, out ? out : &tmp);
}

int vnet_store_node_list(struct vnet_store *s, uint64_t network_id, vnet_store_node_fn fn,
                         void *arg)
{
    if (!s || !fn)
        return VNET_EINVAL;
    return s->ops->node_list(s->state, network_id, fn, arg);
}

int vnet_store_node_move(struct vnet_store *s, uint64_t network_id, const char *name,
                         const struct vnet_endpoint *phys, struct vnet_node *out, char *err,
                         size_t errlen)
{
    struct vnet_node tmp;
    ERRBUF_FIX(err, errlen);
    if (!s || !vnet_name_valid(name) || vnet_store_check_endpoint(phys)) {
        vnet_store_seterr(err, errlen, "%s",
                          !s                       ? "no store"
                          : !vnet_name_valid(name) ? "invalid node name"
                                                   : "bad physical endpoint: need an IPv4 or "
                                                     "IPv6 address and a port 1..65535");
        return VNET_EINVAL;
    }
    int rc = refuse_read_only(s, err, errlen);
    if (rc)
        return rc;
    struct vnet_endpoint ep = *phys;
    endpoint_norm(&ep);
    return s->ops->node_move(s->state, network_id, name, &ep, out ? out : &tmp, err, errlen);
}

int vnet_store_node_set_observed(struct vnet_store *s, uint64_t node_id,
                                 const struct vnet_endpoint *observed, struct vnet_node *out)
{
    struct vnet_node tmp;
    if (!s || vnet_store_check_endpoint(observed) || observed->ip.family == VNET_AF_NONE)
        return VNET_EINVAL;
    if (s->read_only)
        return VNET_EPERM;
    struct vnet_endpoint ep = *observed;
    endpoint_norm(&ep);
    return s->ops->node_set_observed(s->state, node_id, &ep, out ? out : &tmp);
}

int vnet_store_node_remove(struct vnet_store *s, uint64_t network_id, const char *name,
                           uint64_t *revision, char *err, size_t errlen)
{
    uint64_t tmp;
    ERRBUF_FIX(err, errlen);
    if (!s || !vnet_name_valid(name)) {
        vnet_store_seterr(err, errlen, "%s", !s ? "no store" : "invalid node name");
        return VNET_EINVAL;
    }
    int rc = refuse_read_only(s, err, errlen);
    if (rc)
        return rc;
    return s->ops->node_remove(s->state, network_id, name, revision ? revision : &tmp, err, errlen);
}

int vnet_store_node_set_pubkey(struct vnet_store *s, uint64_t node_id,
                               const uint8_t pub[VNET_PUBKEY_LEN])
{
    if (!s || !key_ok(pub))
        return VNET_EINVAL;
    if (s->read_only)
        return VNET_EPERM;
    return s->ops->node_set_pubkey(s->state, node_id, pub);
}

int vnet_store_node_set_join_token(struct vnet_store *s, uint64_t node_id,
                                   const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                   uint64_t expires_unix)
{
    if (!s || (token_hash && !hash_ok(token_hash)))
        return VNET_EINVAL;
    if (s->read_only)
        return VNET_EPERM;
    return s->ops->node_set_join_token(s->state, node_id, token_hash,
                                       token_hash ? expires_unix : 0);
}

int vnet_store_node_join(struct vnet_store *s, const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                         const uint8_t pub[VNET_PUBKEY_LEN], uint64_t now_unix,
                         struct vnet_node *out, char *err, size_t errlen)
{
    struct vnet_node tmp;
    ERRBUF_FIX(err, errlen);
    if (!s || !hash_ok(token_hash) || !key_ok(pub)) {
        vnet_store_seterr(err, errlen, "%s",
                          !s                     ? "no store"
                          : !hash_ok(token_hash) ? "no join token hash, or an all-zero one"
                                                 : "no public key, or an all-zero one");
        return VNET_EINVAL;
    }
    int rc = refuse_read_only(s, err, errlen);
    if (rc)
        return rc;
    return s->ops->node_join(s->state, token_hash, pub, now_unix, out ? out : &tmp, err, errlen);
}

int vnet_store_node_by_pubkey(struct vnet_store *s, uint64_t network_id,
                              const uint8_t pub[VNET_PUBKEY_LEN], struct vnet_node *out)
{
    struct vnet_node tmp;
    if (!s || !pub)
        return VNET_EINVAL;
    if (!key_ok(pub)) /* never stored */
        return VNET_ENOENT;
    return s->ops->node_by_pubkey(s->state, network_id, pub, out ? out : &tmp);
}

int vnet_store_node_revoke(struct vnet_store *s, uint64_t node_id)
{
    if (!s)
        return VNET_EINVAL;
    if (s->read_only)
        return VNET_EPERM;
    return s->ops->node_revoke(s->state, node_id);
}

int vnet_store_changes_since(struct vnet_store *s, uint64_t network_id, uint64_t since,
                             vnet_store_change_fn fn, void *arg)
{
    if (!s || !fn)
        return VNET_EINVAL;
    return s->ops->changes_since(s->state, network_id, since, fn, arg);
}

int vnet_store_last_change(struct vnet_store *s, uint64_t *out)
{
    if (!s || !out)
        return VNET_EINVAL;
    return s->ops->last_change(s->state, out);
}

int vnet_store_changed_networks(struct vnet_store *s, uint64_t since, vnet_store_id_fn fn,
                                void *arg)
{
    if (!s || !fn)
        return VNET_EINVAL;
    return s->ops->changed_networks(s->state, since, fn, arg);
}
