/* libvnet: umbrella header. Include this, or the module headers one by one.
 *
 * libvnet is a virtual layer-2 network: a configuration database and controller, a management
 * daemon per node, a VN switch table and a data plane that carries Ethernet frames in UDP
 * (VXLAN, RFC 7348) between nodes. See docs/architecture.md.
 */
#ifndef VNET_VNET_H
#define VNET_VNET_H

#include "vnet/common.h"
#include "vnet/version.h"
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/types.h"
#include "vnet/switch_table.h"
#include "vnet/encap.h"
#include "vnet/offload.h"
#include "vnet/port.h"
#include "vnet/netdev.h"
#include "vnet/datapath.h"
#include "vnet/model.h"
#include "vnet/store.h"
#include "vnet/proto.h"
#include "vnet/client.h"
#include "vnet/secret.h"
#include "vnet/metrics.h"
/* controller.h, agent.h and node.h run on a libuv loop and include <uv.h>: include them
 * yourself when you use them, so that embedders without libuv never see it. */

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version string ("0.1.0"); may differ from VNET_VERSION_STRING when a program
 * was compiled against other headers than the library it links. */
VNET_API const char *vnet_version(void);

#ifdef __cplusplus
}
#endif
#endif
