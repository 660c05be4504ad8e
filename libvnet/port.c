/* Port registry and dispatch: a port is a backend's ops table plus its state. */
#include "vnet/error.h"
#include "vnet/sys/port.h"
#include "vnet/version.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BACKENDS 16

struct vnet_port {
    const struct vnet_port_ops *ops;
    void *state;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct vnet_port_ops *backends[MAX_BACKENDS];
static int nbackends;

static void register_builtins_locked(void)
{
    if (nbackends == 0) {
        backends[nbackends++] = &vnet_port_tap_ops;
        backends[nbackends++] = &vnet_port_udp_ops;
        backends[nbackends++] = &vnet_port_raw_ops;
#if VNET_HAVE_XDP
        backends[nbackends++] = &vnet_port_xdp_ops;
#endif
    }
}

int vnet_port_register(const struct vnet_port_ops *ops)
{
    if (!ops || ops->version != VNET_PORT_OPS_VERSION || !ops->name || !ops->name[0] ||
        strchr(ops->name, ':') || !ops->open || !ops->close || !ops->rx_burst || !ops->tx_burst ||
        !ops->fd)
        return VNET_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&reg_lock);
    register_builtins_locked();
    for (int i = 0; i < nbackends; i++)
        if (strcmp(backends[i]->name, ops->name) == 0)
            rc = VNET_EEXIST;
    if (!rc && nbackends == MAX_BACKENDS)
        rc = VNET_ENOSPC;
    if (!rc)
        backends[nbackends++] = ops;
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

static const struct vnet_port_ops *find_backend(const char *name, size_t len)
{
    const struct vnet_port_ops *found = NULL;
    pthread_mutex_lock(&reg_lock);
    register_builtins_locked();
    for (int i = 0; i < nbackends && !found; i++)
        if (strlen(backends[i]->name) == len && memcmp(backends[i]->name, name, len) == 0)
            found = backends[i];
    pthread_mutex_unlock(&reg_lock);
    return found;
}

int vnet_port_open(const char *spec, const struct vnet_port_cfg *cfg, struct vnet_port **out)
{
    struct vnet_port_cfg defcfg;
    if (!spec || !out)
        return VNET_EINVAL;
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec)
        return VNET_EINVAL;
    const struct vnet_port_ops *ops = find_backend(spec, (size_t)(colon - spec));
    if (!ops)
        return VNET_ENOENT;
    if (!cfg) {
        memset(&defcfg, 0, sizeof(defcfg));
        cfg = &defcfg;
    }
    struct vnet_port *p = calloc(1, sizeof(*p));
    if (!p)
        return VNET_ENOMEM;
    int rc = ops->open(colon + 1, cfg, &p->state);
    if (rc) {
        free(p);
        return rc < 0 ? rc : VNET_EIO;
    }
    p->ops = ops;
    *out = p;
    return 0;
}

void vnet_port_close(struct vnet_port *p)
{
    if (!p)
        return;
    p->ops->close(p->state);
    free(p);
}

int vnet_port_rx_burst(struct vnet_port *p, unsigned queue, struct vnet_pkt **pkts, int n)
{
    if (n <= 0)
        return n < 0 ? VNET_EINVAL : 0;
    return p->ops->rx_burst(p->state, queue, pkts, n);
}

int vnet_port_tx_burst(struct vnet_port *p, unsigned queue, struct vnet_pkt **pkts, int n)
{
    if (n <= 0)
        return n < 0 ? VNET_EINVAL : 0;
    return p->ops->tx_burst(p->state, queue, pkts, n);
}

int vnet_port_fd(const struct vnet_port *p, unsigned queue)
{
    return p->ops->fd(p->state, queue);
}

int vnet_port_get_info(const struct vnet_port *p, struct vnet_port_info *out)
{
    memset(out, 0, sizeof(*out));
    out->backend = p->ops->name;
    if (!p->ops->get_info)
        return 0;
    int rc = p->ops->get_info(p->state, out);
    out->backend = p->ops->name;
    return rc;
}
