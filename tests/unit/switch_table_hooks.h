/* Test-only hooks into the switch table's internals (switch_table_hooks.c). Not in libvnet. */
#ifndef VNET_TEST_SWITCH_TABLE_HOOKS_H
#define VNET_TEST_SWITCH_TABLE_HOOKS_H

#include <stdint.h>

struct vnet_table;

/* Jump the published generation (to test 32-bit wrap-around). Writer, between batches, and
 * only when every entry is reclaimed or normalised (after vnet_table_synchronize). */
void table_test_set_gen(struct vnet_table *t, uint32_t gen);

#endif
