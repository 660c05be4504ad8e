/* Benchmark of the VXLAN codec: ns per packet, median of several runs.
 *
 *   vxlan push+decode      UDP-payload level: 8-byte header written, then checked (no checksum)
 *   v4 csum0 push+parse    whole frame over IPv4, UDP checksum 0 (IPv4 header checksum only)
 *   v4 csum push+parse     whole frame over IPv4 with the UDP checksum computed and verified
 *   v6 push+parse          whole frame over IPv6, UDP checksum computed and verified
 *
 * Each packet is encapsulated in place and then parsed back, with the VNI, source port and IP
 * ID changing per packet. The results are folded into a volatile sink and an empty asm
 * statement marks the buffer as read and written, so the compiler cannot drop or hoist the work.
 *
 * Options: -r RUNS (default 5, at least 5), -n ITERATIONS for 64-byte frames (default
 * 10000000; 1400-byte frames with checksums use a fifth), --quick (1000000 iterations).
 * Prints figures only: it never fails on a number.
 */
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int bench_encap_main(int argc, char **argv);

#define MAX_RUNS 101

static volatile uint64_t sink;

static inline void clobber(void *p)
{
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum mode { M_VXLAN, M_V4_NOCSUM, M_V4_CSUM, M_V6 };

static const char *const mode_names[] = {
    [M_VXLAN] = "vxlan push+decode (UDP payload, no csum)",
    [M_V4_NOCSUM] = "outer v4, UDP csum 0: push+parse",
    [M_V4_CSUM] = "outer v4, UDP csum:   push+parse",
    [M_V6] = "outer v6, UDP csum:   push+parse",
};

struct ctx {
    struct vnet_encap_tmpl t;
    uint8_t *buf;
    size_t headroom, inner;
};

static int setup(struct ctx *c, enum mode m, size_t inner)
{
    struct vnet_encap_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    memset(c, 0, sizeof(*c));
    bool v6 = m == M_V6;
    if (vnet_mac_parse("02:00:00:00:00:01", &cfg.src_mac) ||
        vnet_mac_parse("02:00:00:00:00:02", &cfg.dst_mac) ||
        vnet_ip_parse(v6 ? "fd00::1" : "10.0.0.1", &cfg.src.ip) ||
        vnet_ip_parse(v6 ? "fd00::2" : "10.0.0.2", &cfg.dst.ip))
        return VNET_EINVAL;
    if (m == M_V4_CSUM)
        cfg.flags |= VNET_ENCAP_F_UDP_CSUM;
    int rc = vnet_encap_tmpl_init(&cfg, &c->t);
    if (rc)
        return rc;
    c->headroom = 128; /* keeps the inner frame 64-byte aligned, as a real pool would */
    c->inner = inner;
    c->buf = aligned_alloc(64, 128 + 2048);
    if (!c->buf)
        return VNET_ENOMEM;
    for (size_t i = 0; i < 128 + 2048; i++)
        c->buf[i] = (uint8_t)(i * 31 + 7);
    return 0;
}

/* One timed run; returns ns per packet, or a negative value when a packet failed to parse. */
static double run(struct ctx *c, enum mode m, uint64_t iters)
{
    uint64_t acc = 0, bad = 0;
    uint8_t *buf = c->buf;
    size_t inner = c->inner, headroom = c->headroom;
    uint64_t t0 = now_ns();
    if (m == M_VXLAN) {
        for (uint64_t i = 0; i < iters; i++) {
            uint32_t vni = (uint32_t)i & VNET_VNI_MAX, out = 0;
            int off = vnet_vxlan_push(buf, headroom, vni);
            clobber(buf);
            bad += vnet_vxlan_decode(buf + off, VNET_VXLAN_HLEN + inner, NULL, &out, NULL) != 0;
            acc += out;
        }
    } else {
        size_t hl = vnet_encap_tmpl_len(&c->t);
        for (uint64_t i = 0; i < iters; i++) {
            struct vnet_encap_info info;
            uint32_t vni = (uint32_t)i & VNET_VNI_MAX;
            int off = vnet_encap_push(&c->t, buf, headroom, inner, vni,
                                      (uint16_t)(49152 + (i & 0x3fff)), (uint16_t)i);
            clobber(buf);
            bad +=
                vnet_encap_parse(buf + off, hl + inner, VNET_VXLAN_PORT, 0, NULL, &info, NULL) != 0;
            acc += info.vni + info.inner_len;
        }
    }
    uint64_t t1 = now_ns();
    sink += acc;
    if (bad)
        return -1;
    return (double)(t1 - t0) / (double)iters;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int usage(void)
{
    fprintf(stderr, "usage: vnet-bench encap [--quick] [-r RUNS (>=5)] [-n ITERATIONS]\n");
    return 2;
}

int bench_encap_main(int argc, char **argv)
{
    int runs = 5;
    uint64_t iters = 10000000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-r") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            iters = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--quick"))
            iters = 1000000;
        else
            return usage();
    }
    if (runs < 5 || runs > MAX_RUNS || iters == 0)
        return usage();

    static const size_t sizes[] = {64, 1400};
    double med[4][2];
    bool ok = true;
    printf("VXLAN codec: ns per packet, median of %d runs (min..max), %llu iterations at 64 B\n",
           runs, (unsigned long long)iters);
    printf("%-42s %22s %22s\n", "case", "64 B inner", "1400 B inner");
    for (int m = M_VXLAN; m <= M_V6; m++) {
        printf("%-42s", mode_names[m]);
        for (int s = 0; s < 2; s++) {
            struct ctx c;
            double r[MAX_RUNS];
            if (setup(&c, (enum mode)m, sizes[s])) {
                fprintf(stderr, "bench_encap: setup failed\n");
                return 1;
            }
            /* Checksummed 1400-byte frames cost ~10x more per packet; fewer keep runs short. */
            uint64_t n = sizes[s] > 64 && m != M_VXLAN && m != M_V4_NOCSUM ? iters / 5 : iters;
            if (n == 0)
                n = 1;
            run(&c, (enum mode)m, n / 10 + 1); /* warm up caches and branch predictors */
            for (int k = 0; k < runs; k++)
                r[k] = run(&c, (enum mode)m, n);
            free(c.buf);
            qsort(r, (size_t)runs, sizeof(r[0]), cmp_double);
            if (r[0] < 0) {
                fprintf(stderr, "\nbench_encap: %s: a packet failed to parse\n", mode_names[m]);
                return 1;
            }
            med[m][s] = r[runs / 2];
            char cell[64];
            snprintf(cell, sizeof(cell), "%.2f (%.2f..%.2f)", med[m][s], r[0], r[runs - 1]);
            printf(" %22s", cell);
            fflush(stdout);
        }
        printf("\n");
    }
    for (int s = 0; s < 2; s++) {
        bool hit = med[M_VXLAN][s] <= 20.0;
        ok = ok && hit;
        printf("target: vxlan push+decode <= 20 ns at %zu B: %.2f ns, %s\n", sizes[s],
               med[M_VXLAN][s], hit ? "met" : "MISSED");
    }
    printf("(sink %llu)\n", (unsigned long long)(sink & 0xff));
    return 0;
}
