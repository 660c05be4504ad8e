/* vnet-bench: micro-benchmarks of libvnet's building blocks. Not a test: it prints figures
 * (medians of several runs) and never fails on a number.
 *
 *   vnet-bench table [--quick]   switch-table lookups/s, memory per entry
 *   vnet-bench encap [--quick]   VXLAN encap/decap and outer-header ns per packet
 *   vnet-bench all [--quick]
 */
#include <stdio.h>
#include <string.h>

int bench_table_main(int argc, char **argv);
int bench_encap_main(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: %s table|encap|all [--quick]\n", argv[0]);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "table") == 0)
        return bench_table_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "encap") == 0)
        return bench_encap_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "all") == 0) {
        int rc = bench_table_main(argc - 1, argv + 1);
        return rc | bench_encap_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "%s: unknown benchmark '%s' (table, encap, all)\n", argv[0], argv[1]);
    return 2;
}
