/* libvnet: small helpers to look at and configure network devices.
 *
 * These talk to the kernel directly, over rtnetlink (a NETLINK_ROUTE socket, no libnl) and
 * interface ioctls. They act on the network namespace of the calling thread: a device that
 * lives in another namespace is not found (VNET_ENOENT). They are control-path calls: each one
 * opens and closes its own socket, so none of them keeps state.
 *
 * Errors: 0 or a negative code. Common to all: VNET_EINVAL for a NULL or empty name, a name of
 * IFNAMSIZ (16) characters or more, or a bad value; VNET_ENOENT when the device does not exist;
 * VNET_EPERM without CAP_NET_ADMIN for the calls that change something; otherwise the kernel's
 * error as a negative errno value. The kernel's own explanation, when it sends one (netlink
 * extended ACK), is logged at VNET_LOG_DEBUG under the module name "netdev".
 *
 * Thread-safety: all functions are thread-safe (no shared state). Concurrent changes to the
 * same device are applied by the kernel in some order.
 */
#ifndef VNET_NETDEV_H
#define VNET_NETDEV_H

#include <stdbool.h>
#include <stdint.h>

#include "vnet/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The interface index of @ifname (> 0), or a negative error (VNET_ENOENT: no such device). */
VNET_API int vnet_netdev_ifindex(const char *ifname);

/* Set the administrative state of @ifname up or down (RTM_NEWLINK, only IFF_UP changes, so
 * other flags are never overwritten). Returns 0 or a negative error. */
VNET_API int vnet_netdev_set_up(const char *ifname, bool up);

/* Set the MTU of @ifname. Returns 0, VNET_EINVAL (0 or outside the device's range, as the
 * kernel decides), or another negative error. */
VNET_API int vnet_netdev_set_mtu(const char *ifname, uint32_t mtu);

/* The MTU of @ifname into *mtu. Returns 0 or a negative error. */
VNET_API int vnet_netdev_get_mtu(const char *ifname, uint32_t *mtu);

/* Set the Ethernet address of @ifname. A zero or multicast address gives VNET_EINVAL. Devices
 * that cannot change their address while up give the kernel's error (VNET_EBUSY). */
VNET_API int vnet_netdev_set_mac(const char *ifname, const struct vnet_mac *mac);

/* The hardware address of @ifname into *mac (the first 6 bytes; devices without one, such as
 * "lo", give all zeros). Returns 0 or a negative error. */
VNET_API int vnet_netdev_get_mac(const char *ifname, struct vnet_mac *mac);

/* Add the address @p ("10.0.0.1/24", "fd00::1/64") to @ifname (RTM_NEWADDR). IPv6 addresses
 * are added with IFA_F_NODAD, so they are usable at once instead of after duplicate address
 * detection. An address that is already there is success. Returns 0, VNET_EINVAL (bad family
 * or prefix length) or another negative error. */
VNET_API int vnet_netdev_add_addr(const char *ifname, const struct vnet_prefix *p);

/**
 * Remove the address @p from @ifname (RTM_DELADDR; the prefix length must match the one it
 * was added with). An address that is not there is success.
 * Ownership: none. Returns: 0, VNET_EINVAL (bad family or prefix length) or another negative
 * error. Thread-safety: thread-safe.
 */
VNET_API int vnet_netdev_del_addr(const char *ifname, const struct vnet_prefix *p);

#define VNET_NETDEV_ADDR_GLOBAL 1u /* vnet_netdev_list_addrs: only addresses of global scope */

/**
 * List the IPv4 and IPv6 addresses of @ifname (RTM_GETADDR), in the kernel's order, with
 * their prefix lengths; with VNET_NETDEV_ADDR_GLOBAL in @flags only those of global scope
 * (no link-local, host or site addresses), and never tentative or deprecated ones then.
 * Ownership: writes up to @max entries of @out (may be NULL when @max is 0).
 * Returns: the number of addresses there are (more than @max when @out was too small), or a
 * negative error. Thread-safety: thread-safe.
 */
VNET_API int vnet_netdev_list_addrs(const char *ifname, struct vnet_prefix *out, size_t max,
                                    unsigned flags);

/**
 * Whether @ifname is administratively up (IFF_UP) into *@up.
 * Ownership: writes *@up. Returns: 0 or a negative error. Thread-safety: thread-safe.
 */
VNET_API int vnet_netdev_get_up(const char *ifname, bool *up);

/* Look up the neighbour (ARP or NDP) entry of @ip on the device @ifindex (RTM_GETNEIGH) and
 * store its link-layer address in *mac. Only entries holding a usable address count (states
 * PERMANENT, NOARP, REACHABLE, STALE, DELAY, PROBE); an absent, INCOMPLETE or FAILED entry
 * gives VNET_ENOENT, as does an unknown @ifindex. Never triggers resolution itself. */
VNET_API int vnet_netdev_neigh_get(int ifindex, const struct vnet_ip *ip, struct vnet_mac *mac);

#ifdef __cplusplus
}
#endif
#endif
