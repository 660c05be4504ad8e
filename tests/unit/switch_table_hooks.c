/* A test-only build of the switch table: libvnet/switch_table.c compiled into the test program
 * together with hooks that reach into its private state, so the hooks never ship in libvnet.
 * The program's own copy defines every vnet_table_* symbol, so the linker never takes
 * switch_table.o from libvnet.a (which would then clash). */
#include "switch_table_hooks.h"

#include "../../libvnet/switch_table.c"

void table_test_set_gen(struct vnet_table *t, uint32_t gen)
{
    STORE_RELEASE(&t->gen, gen == 0 ? 1 : gen);
}
