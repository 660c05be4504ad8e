/* libvnet: the kernel tier in a build without libbpf or clang: every call says so. */
#include "ktier_int.h"

#include "../err_int.h"
#include "vnet/error.h"

#include <string.h>

bool vnet__ktier_available(void)
{
    return false;
}

int vnet__ktier_open(const struct vnet__ktier_cfg *cfg, struct vnet__ktier **out, char *err,
                     size_t errlen)
{
    (void)out;
    vnet__errf(err, errlen, "kernel:%s: this libvnet was built without libbpf (the kernel tier)",
               cfg && cfg->dev ? cfg->dev : "");
    return VNET_ENOTSUP;
}

void vnet__ktier_close(struct vnet__ktier *k)
{
    (void)k;
}

int vnet__ktier_sync_table(struct vnet__ktier *k, const struct vnet_table *t)
{
    (void)k;
    (void)t;
    return VNET_ENOTSUP;
}

int vnet__ktier_set_peers(struct vnet__ktier *k, const struct vnet_peer *peers, size_t n)
{
    (void)k;
    (void)peers;
    (void)n;
    return VNET_ENOTSUP;
}

void vnet__ktier_get_stats(const struct vnet__ktier *k, struct vnet_datapath_stats *out)
{
    (void)k;
    memset(out, 0, sizeof(*out));
}

const char *vnet__ktier_vx_name(const struct vnet__ktier *k)
{
    (void)k;
    return "";
}
