/* Private hooks of the switch table, for libvnet's own tests. Not installed. */
#ifndef VNET_SWITCH_TABLE_INT_H
#define VNET_SWITCH_TABLE_INT_H

#include <stdint.h>

struct vnet_table;

/* Jump the published generation (to test 32-bit wrap-around). Writer, between batches, and
 * only when every entry is reclaimed or normalised (after vnet_table_synchronize). */
void vnet_table_test_set_gen(struct vnet_table *t, uint32_t gen);

#endif
