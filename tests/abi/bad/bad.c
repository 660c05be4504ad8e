/* A library built to break every rule tests/abi/check_abi.py checks (bad_expected.txt lists the
 * problems it must report), compiled with -fvisibility=hidden like libvnet. */
#include "vnet/bad.h"

int helper(void);
VNET_API int vnet_bad_leak(void);

int vnet_bad_ok(void)
{
    return 0;
}

int vnet_bad_unmarked(void)
{
    return 1;
}

int vnet__bad_internal(void)
{
    return 2;
}

/* not prefixed */
int helper(void)
{
    return 3;
}

/* exported without a VNET_API declaration in a public header */
int vnet_bad_leak(void)
{
    return 4;
}
