/* libvnet: what every public header shares.
 *
 * VNET_API marks a declaration as part of libvnet's ABI. libvnet is compiled with
 * -fvisibility=hidden, so libvnet.so exports exactly the functions and objects declared with
 * VNET_API in include/vnet/, and nothing else (tests/abi/check_abi.py checks this both ways).
 * Every public header includes this one, directly or through another public header; put
 * VNET_API first on each declaration of a function or object the library defines:
 *
 *     VNET_API int vnet_port_open(const char *spec, ...);
 *     VNET_API extern const struct vnet_port_ops vnet_port_tap_ops;
 *
 * Not on static inline functions, types or macros. Internals shared between libvnet's files are
 * named vnet__* and declared in private headers under libvnet/, never here.
 */
#ifndef VNET_COMMON_H
#define VNET_COMMON_H

#if defined(__GNUC__) || defined(__clang__)
#define VNET_API __attribute__((visibility("default")))
#else
#define VNET_API
#endif

#endif
