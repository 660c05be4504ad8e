/* Switch-table benchmark: lookups per second per core at 1,000 / 100,000 / 1,000,000 entries
 * with random keys (all hits), single and burst API, with 1 and 2 reader threads, and with a
 * writer applying 100,000 updates/s meanwhile; then bytes per entry at 1,000,000 entries.
 * Every figure is the median of RUNS runs. */
#include "vnet/error.h"
#include "vnet/switch_table.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int bench_table_main(int argc, char **argv);

static int RUNS = 5;
static double SECONDS = 0.25;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static struct vnet_mac mac_of(uint64_t i)
{
    uint64_t h = mix(i + 1);
    struct vnet_mac m = {{(uint8_t)((h & 0xfe) | 0x02), (uint8_t)(h >> 8), (uint8_t)(h >> 16),
                          (uint8_t)(h >> 24), (uint8_t)(h >> 32), (uint8_t)(h >> 40)}};
    return m;
}

static struct vnet_table_op op_put(uint64_t i, uint32_t gen)
{
    struct vnet_table_op op;
    memset(&op, 0, sizeof(op));
    op.type = VNET_TABLE_PUT;
    op.vni = 100 + (uint32_t)(i % 4);
    op.mac = mac_of(i);
    op.ep.ip.family = VNET_AF_INET;
    op.ep.ip.addr[0] = 10;
    op.ep.ip.addr[3] = (uint8_t)i;
    op.ep.port = (uint16_t)(4789 + gen);
    op.peer_id = (uint32_t)i;
    op.flags = VNET_ENTRY_STATIC;
    return op;
}

static struct vnet_table *build(uint32_t n)
{
    struct vnet_table *t;
    if (vnet_table_create(NULL, &t))
        return NULL;
    struct vnet_table_op *ops = malloc(sizeof(*ops) * 4096);
    for (uint32_t base = 0; base < n; base += 4096) {
        uint32_t k = n - base < 4096 ? n - base : 4096;
        for (uint32_t i = 0; i < k; i++)
            ops[i] = op_put(base + i, 0);
        if (vnet_table_apply(t, ops, k, 1)) {
            free(ops);
            vnet_table_destroy(t);
            return NULL;
        }
    }
    free(ops);
    vnet_table_synchronize(t);
    return t;
}

enum { NKEYS = 1 << 20 };

struct reader_arg {
    struct vnet_table *t;
    struct vnet_table_key *keys;
    size_t nkeys;
    int burst;
    double seconds;
    double rate; /* out: lookups/s */
    long misses; /* out: must stay 0 */
    int *go;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    struct vnet_table_reader *r;
    if (vnet_table_reader_register(a->t, &r))
        return NULL;
    while (!__atomic_load_n(a->go, __ATOMIC_ACQUIRE))
        ;
    const struct vnet_entry *out[VNET_TABLE_BURST_MAX];
    uint64_t done = 0, sink = 0;
    long misses = 0; /* local: the two readers' args share a cache line */
    size_t pos = 0;
    double t0 = now(), t1;
    do {
        for (int rep = 0; rep < 64; rep++) {
            if (a->burst > 1) {
                int hits = vnet_table_lookup_burst(a->t, &a->keys[pos], a->burst, out, NULL);
                misses += a->burst - hits;
                sink += out[0] ? out[0]->peer_id : 0;
                pos += (size_t)a->burst;
                done += (uint64_t)a->burst;
            } else {
                for (int i = 0; i < 32; i++) {
                    const struct vnet_entry *e = vnet_table_lookup(
                        a->t, a->keys[pos + (size_t)i].vni, &a->keys[pos + (size_t)i].mac);
                    if (!e)
                        misses++;
                    else
                        sink += e->peer_id;
                }
                pos += 32;
                done += 32;
            }
            if (pos + VNET_TABLE_BURST_MAX > a->nkeys)
                pos = 0;
            vnet_table_quiescent(r);
        }
        t1 = now();
    } while (t1 - t0 < a->seconds);
    a->rate = (double)done / (t1 - t0);
    a->misses = misses;
    if (sink == 42)
        fputc(' ', stderr); /* keep the work */
    vnet_table_reader_unregister(r);
    return NULL;
}

struct writer_arg {
    struct vnet_table *t;
    uint32_t n;
    int *stop;
    double applied_per_s; /* out */
};

/* 100,000 updates/s: a batch of 100 updates every millisecond, paced on absolute time. */
static void *writer(void *p)
{
    struct writer_arg *a = p;
    struct vnet_table_op ops[100];
    uint64_t done = 0, i = 0;
    uint32_t gen = 1;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double t0 = now();
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
        for (int k = 0; k < 100; k++, i++)
            ops[k] = op_put(mix(i) % a->n, gen);
        gen++;
        if (vnet_table_apply(a->t, ops, 100, gen) == 0)
            done += 100;
        next.tv_nsec += 1000000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    a->applied_per_s = (double)done / (now() - t0);
    return NULL;
}

/* One measurement: @nreaders threads for SECONDS; returns lookups/s per reader thread. */
static double measure(struct vnet_table *t, struct vnet_table_key *keys, size_t nkeys, int burst,
                      int nreaders, int with_writer, uint32_t n, double *wrate, long *misses)
{
    pthread_t th[2], wt;
    struct reader_arg ra[2];
    int go = 0, stop = 0;
    struct writer_arg wa = {.t = t, .n = n, .stop = &stop};
    for (int i = 0; i < nreaders; i++) {
        /* Each reader walks its own half of the random key sequence. */
        ra[i] = (struct reader_arg){.t = t,
                                    .keys = keys + (size_t)i * (nkeys / 2),
                                    .nkeys = nkeys / 2,
                                    .burst = burst,
                                    .seconds = SECONDS,
                                    .go = &go};
        pthread_create(&th[i], NULL, reader, &ra[i]);
    }
    if (with_writer)
        pthread_create(&wt, NULL, writer, &wa);
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    double sum = 0;
    for (int i = 0; i < nreaders; i++) {
        pthread_join(th[i], NULL);
        sum += ra[i].rate;
        *misses += ra[i].misses;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    if (with_writer) {
        pthread_join(wt, NULL);
        *wrate = wa.applied_per_s;
    }
    return sum / nreaders;
}

int bench_table_main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0) {
            RUNS = 3;
            SECONDS = 0.1;
        }
    static const uint32_t sizes[] = {1000, 100000, 1000000};
    struct vnet_table_key *keys = malloc(sizeof(*keys) * NKEYS);
    if (!keys)
        return 1;
    printf("switch table: lookups per second per reader thread (random keys, all hits), "
           "median of %d runs of %.2f s\n",
           RUNS, SECONDS);
    printf("%-10s %-7s %8s %8s %14s %14s\n", "entries", "api", "readers", "writer",
           "lookups/s/core", "writer upd/s");
    long misses = 0;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint32_t n = sizes[s];
        struct vnet_table *t = build(n);
        if (!t) {
            fprintf(stderr, "table build failed\n");
            return 1;
        }
        /* Keys: a random sequence over the table, 4 times its size (at most 2^20; read in
         * order, so the key array itself costs little). */
        size_t nkeys = (size_t)n * 4 < NKEYS ? (size_t)n * 4 : NKEYS;
        uint64_t seed = 7;
        for (size_t i = 0; i < nkeys; i++) {
            seed = mix(seed + i);
            uint64_t k = seed % n;
            keys[i].vni = 100 + (uint32_t)(k % 4);
            keys[i].mac = mac_of(k);
        }
        static const struct {
            int burst, readers, writer;
        } cfg[] = {{1, 1, 0}, {32, 1, 0}, {1, 2, 0}, {32, 2, 0}, {32, 1, 1}};
        for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
            double v[16], w[16];
            for (int r = 0; r < RUNS; r++) {
                w[r] = 0;
                v[r] = measure(t, keys, nkeys, cfg[c].burst, cfg[c].readers, cfg[c].writer, n,
                               &w[r], &misses);
            }
            double wm = cfg[c].writer ? median(w, RUNS) : 0;
            char wbuf[32] = "-";
            if (cfg[c].writer)
                snprintf(wbuf, sizeof(wbuf), "%.0f", wm);
            printf("%-10u %-7s %8d %8s %12.1f M %14s\n", n, cfg[c].burst > 1 ? "burst32" : "single",
                   cfg[c].readers, cfg[c].writer ? "100k/s" : "-", median(v, RUNS) / 1e6, wbuf);
            fflush(stdout);
        }
        if (n == 1000000) {
            vnet_table_synchronize(t);
            struct vnet_table_stats st;
            vnet_table_get_stats(t, &st);
            printf("memory at %u entries: %.1f bytes/entry (%.1f MiB total, load factor %.2f, "
                   "entry 48 B)\n",
                   n, (double)st.memory_bytes / (double)st.entries,
                   (double)st.memory_bytes / 1048576.0, st.load_factor);
        }
        vnet_table_destroy(t);
    }
    if (misses)
        printf("WARNING: %ld lookups missed keys that were present\n", misses);
    printf("targets: burst >= 20 M/s/core at 1,000,000 entries, >= 60 M/s at 1,000; "
           "<= 64 bytes/entry\n");
    free(keys);
    return misses ? 1 : 0;
}
