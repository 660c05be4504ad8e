#include "vnet/vnet.h"

const char *vnet_version(void)
{
    return VNET_VERSION_STRING;
}
