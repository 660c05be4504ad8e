/* A public header for the ABI checker's self-test (tests/abi/bad.c): every declaration but
 * vnet_bad_ok breaks a rule. */
#ifndef VNET_BAD_H
#define VNET_BAD_H

#define VNET_API __attribute__((visibility("default")))

VNET_API int vnet_bad_ok(void);
VNET_API int vnet_bad_missing(void); /* marked, never defined */
int vnet_bad_unmarked(void);         /* defined, not marked */
int vnet__bad_internal(void);        /* an internal in a public header */

#endif
