/* The store: engine registry, URI dispatch and every rule of the store, once for all engines.
 *
 * Every public call checks its arguments, applies the defaults and refuses writes on a
 * read-only store, then runs one engine transaction of row primitives in which it does what
 * needs the data: uniqueness checks and their messages, MAC and IP assignment, revision bumps,
 * change records and their retention, token expiry (include/vnet/sys/store.h says what an
 * engine does). */
#include "vnet/sys/store.h"
#include "err_int.h"
#include "vec_int.h"
#include "vnet/error.h"
#include "vnet/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENGINES 8

struct vnet_store {
    const struct vnet_store_ops *ops;
    void *state;
    bool read_only;
    uint32_t retention;
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

/* Every member is required. */
static bool ops_complete(const struct vnet_store_ops *o)
{
    return o->open && o->close && o->begin && o->commit && o->rollback && o->subscriber_get &&
           o->subscriber_by_name && o->subscriber_by_token && o->subscriber_list &&
           o->subscriber_insert && o->subscriber_set_token && o->subscriber_delete &&
           o->network_get && o->network_by_vni && o->network_by_name && o->network_list &&
           o->network_free_vni && o->network_insert && o->network_set_revision &&
           o->network_delete && o->node_get && o->node_by_name && o->node_by_mac && o->node_by_ip &&
           o->node_by_pubkey && o->node_by_join_token && o->node_list && o->node_free_ip &&
           o->node_insert && o->node_update && o->node_set_join_token && o->node_delete &&
           o->change_append && o->change_prune && o->change_oldest && o->change_list &&
           o->change_last && o->change_networks;
}

int vnet_store_register(const struct vnet_store_ops *ops)
{
    if (!ops || ops->version != VNET_STORE_OPS_VERSION || !ops->scheme ||
        !scheme_valid(ops->scheme, strlen(ops->scheme)) || !ops_complete(ops))
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

const struct vnet_store_ops *vnet_store_engine(const char *scheme)
{
    return scheme ? find_engine(scheme, strlen(scheme)) : NULL;
}

void vnet_store_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnet__verrf(err, errlen, fmt, ap);
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

/* The start of the write calls that have an error buffer: a store, writable. */
static int can_write(const struct vnet_store *s, char *err, size_t errlen)
{
    if (s)
        return refuse_read_only(s, err, errlen);
    vnet_store_seterr(err, errlen, "no store");
    return VNET_EINVAL;
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

    if (sodium_init() < 0) { /* the random MACs */
        vnet_store_seterr(err, errlen, "libsodium cannot be initialised");
        return VNET_EIO;
    }
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
    s->retention = o.retention;
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
    /* Refused rather than masked, as ip(8) and Python's ipaddress (strict) refuse it: a subnet
     * written with host bits is more often a typo (a host address, a wrong length) than a
     * shorthand, and silently storing another network than the one typed hides it. */
    if (!vnet_ip_eq(&out->ip, &in->ip)) {
        char want[VNET_PREFIX_STRLEN];
        vnet_prefix_format(in, buf, sizeof(buf));
        vnet_prefix_format(out, want, sizeof(want));
        vnet_store_seterr(err, errlen, "subnet %s has host bits set: did you mean %s?", buf, want);
        return VNET_EINVAL;
    }
    return 0;
}

static int check_network_spec(const struct vnet_network_spec *in, struct vnet_network_spec *out,
                              char *err, size_t errlen)
{
    if (!in || !out) {
        vnet_store_seterr(err, errlen, "no network spec given");
        return VNET_EINVAL;
    }
    struct vnet_network_spec o = *in;
    if (!vnet_name_valid(in->name)) {
        vnet_store_seterr(err, errlen, "invalid network name '%.63s': " VNET_NAME_RULE,
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

static int check_endpoint(const struct vnet_endpoint *ep)
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

static int check_node_spec(const struct vnet_node_spec *in, struct vnet_node_spec *out, char *err,
                           size_t errlen)
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
        vnet_store_seterr(err, errlen, "invalid node name '%.63s': " VNET_NAME_RULE,
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
    if (check_endpoint(&in->phys)) {
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

static int check_ip(const struct vnet_network *net, const struct vnet_ip *ip, char *err,
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

static void subnet_first(const struct vnet_prefix *p, struct vnet_ip *out)
{
    struct vnet_prefix m = *p;
    prefix_mask(&m);
    *out = m.ip;
    vnet_store_ip_inc(out);
}

static void subnet_last(const struct vnet_prefix *p, struct vnet_ip *out)
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

int vnet_store_node_encode(const struct vnet_node_info *n, uint8_t *buf, size_t len)
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

int vnet_store_node_decode(const uint8_t *buf, size_t len, struct vnet_node_info *out)
{
    struct vnet_node_info n;
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

/* ---- the rules ----
 *
 * Every public call: the checks that need no data, then one engine transaction of row
 * primitives. The *_tx functions run inside it and return 0 or an error with @err set; the
 * caller commits or rolls back. */

/* Log what a call without an error buffer failed with, unless @rc is an answer (no such row,
 * a conflict) rather than a failure. */
static int quiet(int rc, const char *err)
{
    if (rc && rc != VNET_ENOENT && rc != VNET_EEXIST && err[0])
        vnet_log(VNET_LOG_WARN, "store", "%s", err);
    return rc;
}

/* A lookup's result as a uniqueness check: found is VNET_EEXIST, not found is 0. */
static int conflict(int rc)
{
    return rc == 0 ? VNET_EEXIST : rc == VNET_ENOENT ? 0 : rc;
}

static int tx_begin(struct vnet_store *s, bool write, char *err, size_t errlen)
{
    return s->ops->begin(s->state, write, err, errlen);
}

/* Commit when @rc is 0, else roll back; returns the request's result. */
static int tx_end(struct vnet_store *s, int rc, char *err, size_t errlen)
{
    if (!rc && !(rc = s->ops->commit(s->state, err, errlen)))
        return 0;
    s->ops->rollback(s->state);
    return rc;
}

/* Walks read every row into memory inside the engine call, then call the caller's function
 * once the engine is done, so that it may call the store again. */
enum walk_kind { WALK_SUB, WALK_NET, WALK_NODE, WALK_ID, WALK_CHANGE };

struct walk {
    enum walk_kind kind;
    union {
        vnet_store_subscriber_fn sub;
        vnet_store_network_fn net;
        vnet_store_node_fn node;
        vnet_store_id_fn id;
        vnet_store_change_fn change;
    } fn;
    void *arg;
    void *items;
    size_t n, cap, size;
    uint64_t network_id; /* WALK_CHANGE */
};

static void *walk_room(struct walk *w)
{
    void *v = vec_room(w->items, w->n, &w->cap, w->size, 16);
    if (!v)
        return NULL;
    w->items = v;
    return (char *)v + w->size * w->n++;
}

static int walk_push(struct walk *w, const void *item)
{
    void *p = walk_room(w);
    if (!p)
        return VNET_ENOMEM;
    memcpy(p, item, w->size);
    return 0;
}

static int push_sub(const struct vnet_subscriber *x, void *w)
{
    return walk_push(w, x);
}

static int push_net(const struct vnet_network *x, void *w)
{
    return walk_push(w, x);
}

static int push_node(const struct vnet_node_info *x, void *w)
{
    return walk_push(w, x);
}

static int push_id(uint64_t id, void *w)
{
    return walk_push(w, &id);
}

/* A stored change record as the caller sees it; only the payload the dispatcher wrote. */
static int push_change(const struct vnet_store_change_row *row, void *arg)
{
    struct walk *w = arg;
    struct vnet_change c;
    memset(&c, 0, sizeof(c));
    c.network_id = w->network_id;
    c.revision = row->revision;
    c.op = (enum vnet_change_op)row->op;
    bool node = row->op == VNET_CHANGE_NODE_PUT || row->op == VNET_CHANGE_NODE_DEL;
    if (node ? !row->payload || vnet_store_node_decode(row->payload, row->payload_len, &c.node)
             : row->op != VNET_CHANGE_NET_PUT)
        return VNET_ECORRUPT;
    return walk_push(w, &c);
}

/* Hand the rows read to the caller's function, unless @rc says the read failed. */
static int walk_replay(struct walk *w, int rc)
{
    for (size_t i = 0; !rc && i < w->n; i++) {
        const void *it = (const char *)w->items + w->size * i;
        switch (w->kind) {
        case WALK_SUB:
            rc = w->fn.sub(it, w->arg);
            break;
        case WALK_NET:
            rc = w->fn.net(it, w->arg);
            break;
        case WALK_NODE:
            rc = w->fn.node(it, w->arg);
            break;
        case WALK_ID:
            rc = w->fn.id(*(const uint64_t *)it, w->arg);
            break;
        case WALK_CHANGE:
            rc = w->fn.change(it, w->arg);
            break;
        }
    }
    free(w->items);
    return rc;
}

static struct walk walk_init(enum walk_kind kind, size_t size, void *arg)
{
    struct walk w;
    memset(&w, 0, sizeof(w));
    w.kind = kind;
    w.size = size;
    w.arg = arg;
    return w;
}

static int network_by_id(struct vnet_store *s, uint64_t id, struct vnet_network *out, char *err,
                         size_t errlen)
{
    int rc = s->ops->network_get(s->state, id, out, err, errlen);
    if (rc == VNET_ENOENT)
        vnet_store_seterr(err, errlen, "no network with id %" PRIu64, id);
    return rc;
}

static int node_by_id(struct vnet_store *s, uint64_t id, struct vnet_node_info *out, char *err,
                      size_t errlen)
{
    int rc = s->ops->node_get(s->state, id, out, err, errlen);
    if (rc == VNET_ENOENT)
        vnet_store_seterr(err, errlen, "no node with id %" PRIu64, id);
    return rc;
}

static int node_by_name(struct vnet_store *s, const struct vnet_network *net, const char *name,
                        struct vnet_node_info *out, char *err, size_t errlen)
{
    int rc = s->ops->node_by_name(s->state, net->id, name, out, err, errlen);
    if (rc == VNET_ENOENT)
        vnet_store_seterr(err, errlen, "no node '%s' in network '%s'", name, net->name);
    return rc;
}

/* Network @net_id and one of its nodes by name. */
static int net_and_node(struct vnet_store *s, uint64_t net_id, const char *name,
                        struct vnet_network *net, struct vnet_node_info *n, char *err,
                        size_t errlen)
{
    int rc = network_by_id(s, net_id, net, err, errlen);
    return rc ? rc : node_by_name(s, net, name, n, err, errlen);
}

/* The node of network @net other than @except_id whose key is @pub: 0 when there is one,
 * VNET_ENOENT when the key is free. */
static int pubkey_user(struct vnet_store *s, uint64_t net_id, const uint8_t *pub,
                       uint64_t except_id, struct vnet_node_info *out, char *err, size_t errlen)
{
    int rc = s->ops->node_by_pubkey(s->state, net_id, pub, 0, out, err, errlen);
    if (!rc && out->id == except_id)
        rc = s->ops->node_by_pubkey(s->state, net_id, pub, except_id, out, err, errlen);
    return rc;
}

static int pubkey_free(struct vnet_store *s, const struct vnet_network *net, const uint8_t *pub,
                       uint64_t except_id, char *err, size_t errlen)
{
    struct vnet_node_info other;
    int rc = conflict(pubkey_user(s, net->id, pub, except_id, &other, err, errlen));
    if (rc == VNET_EEXIST)
        vnet_store_seterr(err, errlen, "the public key is used by node '%s' in network '%s'",
                          other.name, net->name);
    return rc;
}

/* Bump network @net_id's revision to @rev, append one change record (with @node's state for
 * the node ops) and apply the retention. */
static int log_change(struct vnet_store *s, uint64_t net_id, uint64_t rev, int op,
                      const struct vnet_node_info *node, char *err, size_t errlen)
{
    uint8_t buf[VNET_STORE_NODE_ENC_MAX];
    int len = 0;
    if (node && (len = vnet_store_node_encode(node, buf, sizeof(buf))) < 0) {
        vnet_store_seterr(err, errlen, "cannot encode node '%s' for the change log", node->name);
        return VNET_EINVAL;
    }
    int rc = s->ops->network_set_revision(s->state, net_id, rev, err, errlen);
    if (!rc)
        rc = s->ops->change_append(s->state, net_id, rev, op, node ? buf : NULL, (size_t)len, err,
                                   errlen);
    if (!rc && rev > s->retention)
        rc = s->ops->change_prune(s->state, net_id, rev - s->retention, err, errlen);
    return rc;
}

/* Write node @n (already changed in memory) at network @net's next revision and log it. */
static int node_put(struct vnet_store *s, const struct vnet_network *net, struct vnet_node_info *n,
                    char *err, size_t errlen)
{
    n->revision = net->revision + 1;
    int rc = s->ops->node_update(s->state, n, err, errlen);
    return rc ? rc : log_change(s, net->id, n->revision, VNET_CHANGE_NODE_PUT, n, err, errlen);
}

/* ---- subscribers ---- */

static int token_free(struct vnet_store *s, const uint8_t *hash, uint64_t except_id,
                      const char *name, char *err, size_t errlen)
{
    struct vnet_subscriber other;
    int rc = s->ops->subscriber_by_token(s->state, hash, &other, err, errlen);
    if (!rc && other.id == except_id)
        rc = VNET_ENOENT;
    rc = conflict(rc);
    if (rc == VNET_EEXIST) /* a token is never shared: do not say whose it is */
        vnet_store_seterr(err, errlen, "subscriber '%s': the token is already in use", name);
    return rc;
}

static int subscriber_create_tx(struct vnet_store *s, const char *name, const uint8_t *hash,
                                struct vnet_subscriber *out, char *err, size_t errlen)
{
    struct vnet_subscriber sub;
    int rc = conflict(s->ops->subscriber_by_name(s->state, name, &sub, err, errlen));
    if (rc == VNET_EEXIST)
        vnet_store_seterr(err, errlen, "subscriber '%s' already exists", name);
    if (!rc && hash)
        rc = token_free(s, hash, 0, name, err, errlen);
    uint64_t id = 0;
    if (!rc)
        rc = s->ops->subscriber_insert(s->state, name, hash, &id, err, errlen);
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    out->id = id;
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->admin = id == VNET_SUBSCRIBER_ADMIN;
    out->has_token = hash != NULL;
    return 0;
}

int vnet_store_subscriber_create(struct vnet_store *s, const char *name,
                                 const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                 struct vnet_subscriber *out, char *err, size_t errlen)
{
    struct vnet_subscriber tmp;
    ERRBUF_FIX(err, errlen);
    int rc = can_write(s, err, errlen);
    if (!rc && !vnet_name_valid(name)) {
        vnet_store_seterr(err, errlen, "invalid subscriber name '%.63s': " VNET_NAME_RULE,
                          name ? name : "(null)");
        return VNET_EINVAL;
    }
    if (!rc && token_hash && !hash_ok(token_hash)) {
        vnet_store_seterr(err, errlen, "subscriber '%s': the token hash is all zeros", name);
        return VNET_EINVAL;
    }
    if (!rc && !(rc = tx_begin(s, true, err, errlen)))
        rc = tx_end(s, subscriber_create_tx(s, name, token_hash, out ? out : &tmp, err, errlen),
                    err, errlen);
    return rc;
}

int vnet_store_subscriber_get(struct vnet_store *s, const char *name, struct vnet_subscriber *out)
{
    struct vnet_subscriber tmp;
    char err[256] = "";
    if (!s || !vnet_name_valid(name))
        return VNET_EINVAL;
    return quiet(s->ops->subscriber_by_name(s->state, name, out ? out : &tmp, err, sizeof(err)),
                 err);
}

int vnet_store_subscriber_get_by_id(struct vnet_store *s, uint64_t id, struct vnet_subscriber *out)
{
    struct vnet_subscriber tmp;
    char err[256] = "";
    if (!s)
        return VNET_EINVAL;
    return quiet(s->ops->subscriber_get(s->state, id, out ? out : &tmp, err, sizeof(err)), err);
}

int vnet_store_subscriber_by_token(struct vnet_store *s,
                                   const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                   struct vnet_subscriber *out)
{
    struct vnet_subscriber tmp;
    char err[256] = "";
    if (!s || !token_hash)
        return VNET_EINVAL;
    if (!hash_ok(token_hash)) /* nobody has it: stored hashes are never all zeros */
        return VNET_ENOENT;
    return quiet(
        s->ops->subscriber_by_token(s->state, token_hash, out ? out : &tmp, err, sizeof(err)), err);
}

int vnet_store_subscriber_list(struct vnet_store *s, vnet_store_subscriber_fn fn, void *arg)
{
    char err[256] = "";
    if (!s || !fn)
        return VNET_EINVAL;
    struct walk w = walk_init(WALK_SUB, sizeof(struct vnet_subscriber), arg);
    w.fn.sub = fn;
    int rc = s->ops->subscriber_list(s->state, push_sub, &w, err, sizeof(err));
    return walk_replay(&w, quiet(rc, err));
}

static int subscriber_set_token_tx(struct vnet_store *s, uint64_t id, const uint8_t *hash,
                                   char *err, size_t errlen)
{
    struct vnet_subscriber sub;
    int rc = s->ops->subscriber_get(s->state, id, &sub, err, errlen);
    if (!rc && hash)
        rc = token_free(s, hash, id, sub.name, err, errlen);
    return rc ? rc : s->ops->subscriber_set_token(s->state, id, hash, err, errlen);
}

int vnet_store_subscriber_set_token(struct vnet_store *s, uint64_t id,
                                    const uint8_t token_hash[VNET_TOKEN_HASH_LEN])
{
    char err[256] = "";
    if (!s || (token_hash && !hash_ok(token_hash)))
        return VNET_EINVAL;
    if (s->read_only)
        return VNET_EPERM;
    int rc = tx_begin(s, true, err, sizeof(err));
    if (!rc)
        rc = tx_end(s, subscriber_set_token_tx(s, id, token_hash, err, sizeof(err)), err,
                    sizeof(err));
    return quiet(rc, err);
}

int vnet_store_admin_token_set(struct vnet_store *s, const uint8_t token_hash[VNET_TOKEN_HASH_LEN])
{
    return vnet_store_subscriber_set_token(s, VNET_SUBSCRIBER_ADMIN, token_hash);
}

static int stop_at_first(const struct vnet_network *n, void *arg)
{
    (void)n;
    (void)arg;
    return 1;
}

static int subscriber_delete_tx(struct vnet_store *s, uint64_t id, char *err, size_t errlen)
{
    struct vnet_subscriber sub;
    int rc = s->ops->subscriber_get(s->state, id, &sub, err, errlen);
    if (!rc)
        rc = s->ops->network_list(s->state, id, stop_at_first, NULL, err, errlen);
    if (rc == 1) /* it owns a network: no message, so that it is not logged */
        return VNET_EBUSY;
    return rc ? rc : s->ops->subscriber_delete(s->state, id, err, errlen);
}

int vnet_store_subscriber_delete(struct vnet_store *s, uint64_t id)
{
    char err[256] = "";
    if (!s)
        return VNET_EINVAL;
    if (s->read_only || id == VNET_SUBSCRIBER_ADMIN)
        return VNET_EPERM;
    int rc = tx_begin(s, true, err, sizeof(err));
    if (!rc)
        rc = tx_end(s, subscriber_delete_tx(s, id, err, sizeof(err)), err, sizeof(err));
    return quiet(rc, err);
}

/* ---- networks ---- */

/* The first network of a subscriber whose subnet overlaps the one being created. */
struct overlap {
    const struct vnet_network_spec *sp;
    struct vnet_network other;
    const struct vnet_prefix *mine, *theirs;
};

static bool prefixes_overlap(const struct vnet_prefix *a, const struct vnet_prefix *b)
{
    return a->ip.family && a->ip.family == b->ip.family &&
           (vnet_prefix_contains(a, &b->ip) || vnet_prefix_contains(b, &a->ip));
}

static int find_overlap(const struct vnet_network *n, void *arg)
{
    struct overlap *o = arg;
    if (o->mine)
        return 0;
    if (prefixes_overlap(&o->sp->subnet4, &n->subnet4))
        o->mine = &o->sp->subnet4, o->theirs = &o->other.subnet4;
    else if (prefixes_overlap(&o->sp->subnet6, &n->subnet6))
        o->mine = &o->sp->subnet6, o->theirs = &o->other.subnet6;
    if (o->mine)
        o->other = *n;
    return 0;
}

/* One subscriber's networks have disjoint subnets: its nodes' addresses then name one network
 * each, which routing between them and the subscriber's own address plan rely on. Networks of
 * different subscribers may overlap (tenants choose their addresses independently). */
static int check_overlap(struct vnet_store *s, const struct vnet_network_spec *sp, char *err,
                         size_t errlen)
{
    struct overlap o = {.sp = sp};
    if (!sp->subnet4.ip.family && !sp->subnet6.ip.family)
        return 0;
    int rc = s->ops->network_list(s->state, sp->subscriber_id, find_overlap, &o, err, errlen);
    if (rc || !o.mine)
        return rc;
    char a[VNET_PREFIX_STRLEN], b[VNET_PREFIX_STRLEN];
    vnet_prefix_format(o.mine, a, sizeof(a));
    vnet_prefix_format(o.theirs, b, sizeof(b));
    vnet_store_seterr(err, errlen, "subnet %s overlaps subnet %s of network '%s'", a, b,
                      o.other.name);
    return VNET_EEXIST;
}

static int network_create_tx(struct vnet_store *s, const struct vnet_network_spec *sp,
                             struct vnet_network *out, char *err, size_t errlen)
{
    struct vnet_subscriber sub;
    struct vnet_network n, other;
    int rc = s->ops->subscriber_get(s->state, sp->subscriber_id, &sub, err, errlen);
    if (rc == VNET_ENOENT)
        vnet_store_seterr(err, errlen, "no subscriber with id %" PRIu64, sp->subscriber_id);
    if (!rc) {
        rc = conflict(
            s->ops->network_by_name(s->state, sp->subscriber_id, sp->name, &other, err, errlen));
        if (rc == VNET_EEXIST)
            vnet_store_seterr(err, errlen, "network '%s' already exists for subscriber '%s'",
                              sp->name, sub.name);
    }
    if (rc)
        return rc;
    memset(&n, 0, sizeof(n));
    n.vni = sp->vni;
    if (sp->has_vni) {
        rc = conflict(s->ops->network_by_vni(s->state, sp->vni, &other, err, errlen));
        if (rc == VNET_EEXIST)
            vnet_store_seterr(err, errlen, "VNI %u is used by network '%s'", sp->vni, other.name);
    } else {
        rc = s->ops->network_free_vni(s->state, &n.vni, err, errlen);
        if (rc == VNET_ENOSPC)
            vnet_store_seterr(err, errlen, "no free VNI left");
    }
    if (!rc)
        rc = check_overlap(s, sp, err, errlen);
    if (rc)
        return rc;
    n.subscriber_id = sp->subscriber_id;
    snprintf(n.name, sizeof(n.name), "%s", sp->name);
    n.subnet4 = sp->subnet4;
    n.subnet6 = sp->subnet6;
    n.mtu = sp->mtu;
    n.revision = 1;
    n.mode = (uint8_t)sp->mode;
    rc = s->ops->network_insert(s->state, &n, err, errlen);
    if (!rc)
        rc = log_change(s, n.id, 1, VNET_CHANGE_NET_PUT, NULL, err, errlen);
    if (!rc)
        *out = n;
    return rc;
}

int vnet_store_network_create(struct vnet_store *s, const struct vnet_network_spec *spec,
                              struct vnet_network *out, char *err, size_t errlen)
{
    struct vnet_network_spec sp;
    struct vnet_network tmp;
    ERRBUF_FIX(err, errlen);
    int rc = can_write(s, err, errlen);
    if (!rc)
        rc = check_network_spec(spec, &sp, err, errlen);
    if (!rc && !(rc = tx_begin(s, true, err, errlen)))
        rc = tx_end(s, network_create_tx(s, &sp, out ? out : &tmp, err, errlen), err, errlen);
    return rc;
}

int vnet_store_network_get(struct vnet_store *s, uint64_t subscriber_id, const char *name,
                           struct vnet_network *out)
{
    struct vnet_network tmp;
    char err[256] = "";
    if (!s || !vnet_name_valid(name))
        return VNET_EINVAL;
    return quiet(
        s->ops->network_by_name(s->state, subscriber_id, name, out ? out : &tmp, err, sizeof(err)),
        err);
}

int vnet_store_network_get_by_id(struct vnet_store *s, uint64_t id, struct vnet_network *out)
{
    struct vnet_network tmp;
    char err[256] = "";
    if (!s)
        return VNET_EINVAL;
    return quiet(s->ops->network_get(s->state, id, out ? out : &tmp, err, sizeof(err)), err);
}

int vnet_store_network_list(struct vnet_store *s, uint64_t subscriber_id, vnet_store_network_fn fn,
                            void *arg)
{
    char err[256] = "";
    if (!s || !fn)
        return VNET_EINVAL;
    struct walk w = walk_init(WALK_NET, sizeof(struct vnet_network), arg);
    w.fn.net = fn;
    int rc = s->ops->network_list(s->state, subscriber_id, push_net, &w, err, sizeof(err));
    return walk_replay(&w, quiet(rc, err));
}

static int network_delete_tx(struct vnet_store *s, uint64_t id, char *err, size_t errlen)
{
    struct vnet_network net;
    int rc = network_by_id(s, id, &net, err, errlen);
    if (!rc)
        rc = s->ops->change_prune(s->state, id, UINT64_MAX, err, errlen);
    if (!rc)
        rc = s->ops->network_delete(s->state, id, err, errlen);
    /* The tombstone: it makes pollers of vnet_store_changed_networks() see the deletion. */
    if (!rc)
        rc = s->ops->change_append(s->state, id, net.revision + 1, VNET_STORE_CHANGE_NET_DEL, NULL,
                                   0, err, errlen);
    return rc;
}

int vnet_store_network_delete(struct vnet_store *s, uint64_t network_id, char *err, size_t errlen)
{
    ERRBUF_FIX(err, errlen);
    int rc = can_write(s, err, errlen);
    if (!rc && !(rc = tx_begin(s, true, err, errlen)))
        rc = tx_end(s, network_delete_tx(s, network_id, err, errlen), err, errlen);
    return rc;
}

/* ---- nodes ---- */

/* A locally administered unicast MAC, 40 random bits: a collision is rare; draw again. */
static int assign_mac(struct vnet_store *s, const struct vnet_network *net, struct vnet_mac *mac,
                      char *err, size_t errlen)
{
    struct vnet_node_info other;
    for (int tries = 0; tries < 32; tries++) {
        mac->b[0] = 0x02;
        randombytes_buf(mac->b + 1, 5);
        int rc = conflict(s->ops->node_by_mac(s->state, net->id, mac, &other, err, errlen));
        if (rc != VNET_EEXIST)
            return rc;
    }
    vnet_store_seterr(err, errlen, "could not pick a free MAC in network '%s'", net->name);
    return VNET_EIO;
}

static int check_mac_free(struct vnet_store *s, const struct vnet_network *net,
                          const struct vnet_mac *mac, char *err, size_t errlen)
{
    char buf[VNET_MAC_STRLEN];
    struct vnet_node_info other;
    int rc = conflict(s->ops->node_by_mac(s->state, net->id, mac, &other, err, errlen));
    if (rc == VNET_EEXIST) {
        vnet_mac_format(mac, buf, sizeof(buf));
        vnet_store_seterr(err, errlen, "MAC %s is used by node '%s' in network '%s'", buf,
                          other.name, net->name);
    }
    return rc;
}

/* The address of family slot @slot (0: IPv4, 1: IPv6) of a new node of @net: the one asked
 * for in @want when it is free and in the subnet, else the lowest free one of the subnet
 * (none when the network has no subnet of that family). */
static int node_ip(struct vnet_store *s, const struct vnet_network *net, int slot,
                   const struct vnet_ip *want, struct vnet_ip *out, char *err, size_t errlen)
{
    char buf[VNET_PREFIX_STRLEN];
    struct vnet_node_info other;
    const struct vnet_prefix *p = slot ? &net->subnet6 : &net->subnet4;
    int rc;
    if (want->family == VNET_AF_NONE) {
        if (p->ip.family == VNET_AF_NONE)
            return 0;
        struct vnet_ip first, last;
        subnet_first(p, &first);
        subnet_last(p, &last);
        rc = vnet_store_ip_cmp(&first, &last) > 0
                 ? VNET_ENOSPC
                 : s->ops->node_free_ip(s->state, net->id, &first, &last, out, err, errlen);
        if (rc == VNET_ENOSPC) {
            vnet_prefix_format(p, buf, sizeof(buf));
            vnet_store_seterr(err, errlen, "no free %s address left in subnet %s of network '%s'",
                              slot ? "IPv6" : "IPv4", buf, net->name);
        }
        return rc;
    }
    if ((rc = check_ip(net, want, err, errlen)))
        return rc;
    rc = conflict(s->ops->node_by_ip(s->state, net->id, want, &other, err, errlen));
    if (rc == VNET_EEXIST) {
        vnet_ip_format(want, buf, sizeof(buf));
        vnet_store_seterr(err, errlen, "IP %s is used by node '%s' in network '%s'", buf,
                          other.name, net->name);
    }
    if (!rc)
        *out = *want;
    return rc;
}

static int node_add_tx(struct vnet_store *s, uint64_t network_id, const struct vnet_node_spec *sp,
                       struct vnet_node_info *out, char *err, size_t errlen)
{
    struct vnet_network net;
    struct vnet_node_info n;
    int rc = network_by_id(s, network_id, &net, err, errlen);
    if (rc)
        return rc;
    rc = conflict(s->ops->node_by_name(s->state, net.id, sp->name, &n, err, errlen));
    if (rc == VNET_EEXIST)
        vnet_store_seterr(err, errlen, "node '%s' already exists in network '%s'", sp->name,
                          net.name);
    if (!rc && sp->pubkey)
        rc = pubkey_free(s, &net, sp->pubkey, 0, err, errlen);
    if (rc)
        return rc;
    memset(&n, 0, sizeof(n));
    n.network_id = net.id;
    snprintf(n.name, sizeof(n.name), "%s", sp->name);
    if (sp->pubkey) {
        memcpy(n.pubkey, sp->pubkey, VNET_PUBKEY_LEN);
        n.has_pubkey = true;
    }
    n.phys = sp->phys;
    n.state = VNET_NODE_PENDING;
    n.mac = sp->mac;
    rc = sp->has_mac ? check_mac_free(s, &net, &n.mac, err, errlen)
                     : assign_mac(s, &net, &n.mac, err, errlen);
    for (int slot = 0; !rc && slot < VNET_NODE_IPS; slot++)
        rc = node_ip(s, &net, slot, &sp->ips[slot], &n.ips[slot], err, errlen);
    if (rc)
        return rc;
    n.revision = net.revision + 1;
    rc = s->ops->node_insert(s->state, &n, err, errlen);
    if (!rc)
        rc = log_change(s, net.id, n.revision, VNET_CHANGE_NODE_PUT, &n, err, errlen);
    if (!rc)
        *out = n;
    return rc;
}

int vnet_store_node_add(struct vnet_store *s, uint64_t network_id,
                        const struct vnet_node_spec *spec, struct vnet_node_info *out, char *err,
                        size_t errlen)
{
    struct vnet_node_spec sp;
    struct vnet_node_info tmp;
    ERRBUF_FIX(err, errlen);
    int rc = can_write(s, err, errlen);
    if (!rc)
        rc = check_node_spec(spec, &sp, err, errlen);
    if (!rc && !(rc = tx_begin(s, true, err, errlen)))
        rc = tx_end(s, node_add_tx(s, network_id, &sp, out ? out : &tmp, err, errlen), err, errlen);
    return rc;
}

int vnet_store_node_get(struct vnet_store *s, uint64_t network_id, const char *name,
                        struct vnet_node_info *out)
{
    struct vnet_node_info tmp;
    char err[256] = "";
    if (!s || !vnet_name_valid(name))
        return VNET_EINVAL;
    return quiet(
        s->ops->node_by_name(s->state, network_id, name, out ? out : &tmp, err, sizeof(err)), err);
}

int vnet_store_node_get_by_id(struct vnet_store *s, uint64_t node_id, struct vnet_node_info *out)
{
    struct vnet_node_info tmp;
    char err[256] = "";
    if (!s)
        return VNET_EINVAL;
    return quiet(s->ops->node_get(s->state, node_id, out ? out : &tmp, err, sizeof(err)), err);
}

int vnet_store_node_list(struct vnet_store *s, uint64_t network_id, vnet_store_node_fn fn,
                         void *arg)
{
    char err[256] = "";
    struct vnet_network net;
    if (!s || !fn)
        return VNET_EINVAL;
    struct walk w = walk_init(WALK_NODE, sizeof(struct vnet_node_info), arg);
    w.fn.node = fn;
    int rc = tx_begin(s, false, err, sizeof(err));
    if (!rc) {
        int r = s->ops->network_get(s->state, network_id, &net, err, sizeof(err));
        if (!r)
            r = s->ops->node_list(s->state, network_id, push_node, &w, err, sizeof(err));
        rc = tx_end(s, r, err, sizeof(err));
    }
    return walk_replay(&w, quiet(rc, err));
}

static int node_move_tx(struct vnet_store *s, uint64_t network_id, const char *name,
                        const struct vnet_endpoint *phys, struct vnet_node_info *out, char *err,
                        size_t errlen)
{
    struct vnet_network net;
    struct vnet_node_info n;
    int rc = net_and_node(s, network_id, name, &net, &n, err, errlen);
    if (!rc && !vnet_endpoint_eq(&n.phys, phys)) { /* else nothing changes: no record */
        n.phys = *phys;
        rc = node_put(s, &net, &n, err, errlen);
    }
    if (!rc)
        *out = n;
    return rc;
}

int vnet_store_node_move(struct vnet_store *s, uint64_t network_id, const char *name,
                         const struct vnet_endpoint *phys, struct vnet_node_info *out, char *err,
                         size_t errlen)
{
    struct vnet_node_info tmp;
    ERRBUF_FIX(err, errlen);
    if (!s || !vnet_name_valid(name) || check_endpoint(phys)) {
        vnet_store_seterr(err, errlen, "%s",
                          !s                       ? "no store"
                          : !vnet_name_valid(name) ? "invalid node name"
                                                   : "bad physical endpoint: need an IPv4 or "
                                                     "IPv6 address and a port 1..65535");
        return VNET_EINVAL;
    }
    int rc = refuse_read_only(s, err, errlen);
    struct vnet_endpoint ep = *phys;
    endpoint_norm(&ep);
    if (!rc && !(rc = tx_begin(s, true, err, errlen)))
        rc = tx_end(s, node_move_tx(s, network_id, name, &ep, out ? out : &tmp, err, errlen), err,
                    errlen);
    return rc;
}

/* An endpoint report's uniqueness check: another node of the network already has it. */
struct ep_owner {
    uint64_t self;
    const struct vnet_endpoint *ep;
    struct vnet_node_info owner;
    bool found;
};

static int find_ep_owner(const struct vnet_node_info *x, void *arg)
{
    struct ep_owner *o = arg;
    if (!o->found && x->id != o->self &&
        (vnet_endpoint_eq(&x->observed, o->ep) || vnet_endpoint_eq(&x->phys, o->ep))) {
        o->owner = *x;
        o->found = true;
    }
    return 0;
}

static int node_set_observed_tx(struct vnet_store *s, uint64_t node_id,
                                const struct vnet_endpoint *observed, struct vnet_node_info *out,
                                char *err, size_t errlen)
{
    struct vnet_network net;
    struct vnet_node_info n;
    int rc = s->ops->node_get(s->state, node_id, &n, err, errlen);
    if (!rc)
        rc = network_by_id(s, n.network_id, &net, err, errlen);
    if (!rc && !vnet_endpoint_eq(&n.observed, observed)) {
        /* The first node with an endpoint keeps it: peers would send one node's traffic to the
         * other (a member reporting another's endpoint hijacks it). */
        struct ep_owner o = {.self = node_id, .ep = observed};
        rc = s->ops->node_list(s->state, n.network_id, find_ep_owner, &o, err, errlen);
        if (!rc && o.found) {
            char epstr[VNET_IP_STRLEN + 8];
            vnet_endpoint_format(observed, epstr, sizeof(epstr));
            vnet_store_seterr(err, errlen, "node '%s': endpoint %s is node '%s''s", n.name, epstr,
                              o.owner.name);
            rc = VNET_EEXIST;
        }
    }
    if (!rc && !(vnet_endpoint_eq(&n.observed, observed) && n.state == VNET_NODE_ACTIVE)) {
        n.observed = *observed;
        n.state = VNET_NODE_ACTIVE;
        rc = node_put(s, &net, &n, err, errlen);
    }
    if (!rc)
        *out = n;
    return rc;
}

int vnet_store_node_set_observed(struct vnet_store *s, uint64_t node_id,
                                 const struct vnet_endpoint *observed, struct vnet_node_info *out)
{
    struct vnet_node_info tmp;
    char err[256] = "";
    if (!s || check_endpoint(observed) || observed->ip.family == VNET_AF_NONE)
        return VNET_EINVAL;
    if (s->read_only)
        return VNET_EPERM;
    struct vnet_endpoint ep = *observed;
    endpoint_norm(&ep);
    int rc = tx_begin(s, true, err, sizeof(err));
    if (!rc)
        rc = tx_end(s, node_set_observed_tx(s, node_id, &ep, out ? out : &tmp, err, sizeof(err)),
                    err, sizeof(err));
    if (rc == VNET_EEXIST)
        vnet_log(VNET_LOG_WARN, "store", "%s: refused", err);
    return quiet(rc, err);
}

static int node_remove_tx(struct vnet_store *s, uint64_t network_id, const char *name,
                          uint64_t *revision, char *err, size_t errlen)
{
    struct vnet_network net;
    struct vnet_node_info n;
    int rc = net_and_node(s, network_id, name, &net, &n, err, errlen);
    if (!rc)
        rc = s->ops->node_delete(s->state, n.id, err, errlen);
    if (rc)
        return rc;
    n.state = VNET_NODE_REMOVED;
    n.revision = net.revision + 1;
    rc = log_change(s, net.id, n.revision, VNET_CHANGE_NODE_DEL, &n, err, errlen);
    if (!rc)
        *revision = n.revision;
    return rc;
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
    if (!rc && !(rc = tx_begin(s, true, err, errlen)))
        rc = tx_end(s, node_remove_tx(s, network_id, name, revision ? revision : &tmp, err, errlen),
                    err, errlen);
    return rc;
}

/* ---- node keys and enrolment ---- */

/* Set (@pub non-NULL) or clear node @n's key and cancel its join token; a change record when
 * the key changes. @n is updated. */
static int node_key_tx(struct vnet_store *s, struct vnet_node_info *n, const uint8_t *pub,
                       char *err, size_t errlen)
{
    struct vnet_network net;
    int rc = network_by_id(s, n->network_id, &net, err, errlen);
    if (!rc && pub)
        rc = pubkey_free(s, &net, pub, n->id, err, errlen);
    if (!rc)
        rc = s->ops->node_set_join_token(s->state, n->id, NULL, 0, err, errlen);
    if (rc)
        return rc;
    if (pub ? n->has_pubkey && memcmp(n->pubkey, pub, VNET_PUBKEY_LEN) == 0 : !n->has_pubkey)
        return 0; /* the same key: no record */
    n->has_pubkey = pub != NULL;
    memset(n->pubkey, 0, VNET_PUBKEY_LEN);
    if (pub)
        memcpy(n->pubkey, pub, VNET_PUBKEY_LEN);
    return node_put(s, &net, n, err, errlen);
}

/* Set (@pub) or clear node @node_id's key, for the calls without an error buffer. */
static int node_key(struct vnet_store *s, uint64_t node_id, const uint8_t *pub)
{
    struct vnet_node_info n;
    char err[256] = "";
    int rc = tx_begin(s, true, err, sizeof(err));
    if (!rc) {
        int r = node_by_id(s, node_id, &n, err, sizeof(err));
        if (!r)
            r = node_key_tx(s, &n, pub, err, sizeof(err));
        rc = tx_end(s, r, err, sizeof(err));
    }
    return quiet(rc, err);
}

int vnet_store_node_set_pubkey(struct vnet_store *s, uint64_t node_id,
                               const uint8_t pub[VNET_PUBKEY_LEN])
{
    if (!s || !key_ok(pub))
        return VNET_EINVAL;
    if (s->read_only)
        return VNET_EPERM;
    return node_key(s, node_id, pub);
}

int vnet_store_node_revoke(struct vnet_store *s, uint64_t node_id)
{
    if (!s)
        return VNET_EINVAL;
    if (s->read_only)
        return VNET_EPERM;
    return node_key(s, node_id, NULL);
}

static int node_set_join_token_tx(struct vnet_store *s, uint64_t node_id, const uint8_t *hash,
                                  uint64_t expires, char *err, size_t errlen)
{
    struct vnet_node_info n, other;
    uint64_t other_expires;
    int rc = node_by_id(s, node_id, &n, err, errlen);
    if (!rc && hash) {
        rc = s->ops->node_by_join_token(s->state, hash, &other, &other_expires, err, errlen);
        rc = conflict(rc == 0 && other.id == node_id ? VNET_ENOENT : rc);
        if (rc == VNET_EEXIST)
            vnet_store_seterr(err, errlen, "node '%s': the join token is already in use", n.name);
    }
    return rc ? rc : s->ops->node_set_join_token(s->state, node_id, hash, expires, err, errlen);
}

int vnet_store_node_set_join_token(struct vnet_store *s, uint64_t node_id,
                                   const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                                   uint64_t expires_unix)
{
    char err[256] = "";
    if (!s || (token_hash && !hash_ok(token_hash)))
        return VNET_EINVAL;
    if (s->read_only)
        return VNET_EPERM;
    int rc = tx_begin(s, true, err, sizeof(err));
    if (!rc)
        rc = tx_end(s,
                    node_set_join_token_tx(s, node_id, token_hash, token_hash ? expires_unix : 0,
                                           err, sizeof(err)),
                    err, sizeof(err));
    return quiet(rc, err);
}

static int node_join_tx(struct vnet_store *s, uint64_t node_id, const uint8_t *hash,
                        const uint8_t *pub, uint64_t now, struct vnet_node_info *out, char *err,
                        size_t errlen)
{
    struct vnet_node_info n;
    uint64_t expires = 0;
    int rc = s->ops->node_by_join_token(s->state, hash, &n, &expires, err, errlen);
    if (rc == VNET_ENOENT)
        vnet_store_seterr(err, errlen, "unknown or already used join token");
    if (rc)
        return rc;
    if (node_id && n.id != node_id) { /* checked before anything is written */
        vnet_store_seterr(err, errlen, "the token belongs to another node");
        return VNET_EACCES;
    }
    if (expires && now >= expires) {
        vnet_store_seterr(err, errlen, "the join token of node '%s' expired", n.name);
        return VNET_ETIMEDOUT;
    }
    rc = node_key_tx(s, &n, pub, err, errlen); /* also consumes the token */
    if (!rc)
        *out = n;
    return rc;
}

int vnet_store_node_join(struct vnet_store *s, const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                         const uint8_t pub[VNET_PUBKEY_LEN], uint64_t now_unix,
                         struct vnet_node_info *out, char *err, size_t errlen)
{
    return vnet_store_node_join_as(s, 0, token_hash, pub, now_unix, out, err, errlen);
}

int vnet_store_node_join_as(struct vnet_store *s, uint64_t node_id,
                            const uint8_t token_hash[VNET_TOKEN_HASH_LEN],
                            const uint8_t pub[VNET_PUBKEY_LEN], uint64_t now_unix,
                            struct vnet_node_info *out, char *err, size_t errlen)
{
    struct vnet_node_info tmp;
    ERRBUF_FIX(err, errlen);
    if (!s || !hash_ok(token_hash) || !key_ok(pub)) {
        vnet_store_seterr(err, errlen, "%s",
                          !s                     ? "no store"
                          : !hash_ok(token_hash) ? "no join token hash, or an all-zero one"
                                                 : "no public key, or an all-zero one");
        return VNET_EINVAL;
    }
    int rc = refuse_read_only(s, err, errlen);
    if (!rc && !(rc = tx_begin(s, true, err, errlen)))
        rc = tx_end(
            s, node_join_tx(s, node_id, token_hash, pub, now_unix, out ? out : &tmp, err, errlen),
            err, errlen);
    return rc;
}

int vnet_store_node_by_pubkey(struct vnet_store *s, uint64_t network_id,
                              const uint8_t pub[VNET_PUBKEY_LEN], struct vnet_node_info *out)
{
    struct vnet_node_info n, second;
    char err[256] = "";
    if (!s || !pub)
        return VNET_EINVAL;
    if (!key_ok(pub)) /* never stored */
        return VNET_ENOENT;
    int rc = s->ops->node_by_pubkey(s->state, network_id, pub, 0, &n, err, sizeof(err));
    if (!rc)
        rc = conflict(
            s->ops->node_by_pubkey(s->state, network_id, pub, n.id, &second, err, sizeof(err)));
    /* Two nodes with one key (only in files from before schema v3): neither is
     * authenticated, since the key does not say which node it is. */
    if (rc == VNET_EEXIST)
        vnet_log(VNET_LOG_WARN, "store",
                 "nodes %" PRIu64 " and %" PRIu64 " of network %" PRIu64
                 " share a public key: refusing it; revoke one",
                 n.id, second.id, network_id);
    if (!rc && out)
        *out = n;
    return quiet(rc, err);
}

/* ---- change log ---- */

static int changes_read(struct vnet_store *s, uint64_t network_id, uint64_t since, struct walk *w,
                        char *err, size_t errlen)
{
    struct vnet_network net;
    uint64_t oldest;
    int rc = s->ops->network_get(s->state, network_id, &net, err, errlen);
    if (rc)
        return rc;
    if (since > net.revision)
        return VNET_ERANGE; /* the caller's state is not from this store's history */
    if (since == net.revision)
        return 0;
    rc = s->ops->change_oldest(s->state, network_id, &oldest, err, errlen);
    if (rc == VNET_ENOENT || (!rc && oldest > since + 1))
        return VNET_ERANGE;
    if (!rc)
        rc = s->ops->change_list(s->state, network_id, since, push_change, w, err, errlen);
    if (rc == VNET_ECORRUPT && !err[0])
        vnet_store_seterr(err, errlen, "network %" PRIu64 ": a malformed change record",
                          network_id);
    return rc;
}

int vnet_store_changes_since(struct vnet_store *s, uint64_t network_id, uint64_t since,
                             vnet_store_change_fn fn, void *arg)
{
    char err[256] = "";
    if (!s || !fn)
        return VNET_EINVAL;
    struct walk w = walk_init(WALK_CHANGE, sizeof(struct vnet_change), arg);
    w.fn.change = fn;
    w.network_id = network_id;
    int rc = tx_begin(s, false, err, sizeof(err));
    if (!rc)
        rc = tx_end(s, changes_read(s, network_id, since, &w, err, sizeof(err)), err, sizeof(err));
    return walk_replay(&w, quiet(rc, err));
}

int vnet_store_last_change(struct vnet_store *s, uint64_t *out)
{
    char err[256] = "";
    if (!s || !out)
        return VNET_EINVAL;
    return quiet(s->ops->change_last(s->state, out, err, sizeof(err)), err);
}

int vnet_store_changed_networks(struct vnet_store *s, uint64_t since, vnet_store_id_fn fn,
                                void *arg)
{
    char err[256] = "";
    if (!s || !fn)
        return VNET_EINVAL;
    struct walk w = walk_init(WALK_ID, sizeof(uint64_t), arg);
    w.fn.id = fn;
    int rc = s->ops->change_networks(s->state, since, push_id, &w, err, sizeof(err));
    return walk_replay(&w, quiet(rc, err));
}
