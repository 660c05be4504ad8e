/* A stand-in for libFuzzer's main() so the fuzz targets also build with gcc and run in the
 * ordinary test suite: `TARGET FILE...` replays inputs (a crash corpus, say), and
 * `TARGET --random N [--seed S]` feeds N pseudo-random inputs, half of them mutations of
 * earlier ones, so they reach past the first length checks, and `TARGET --write-seeds DIR N`
 * writes the target's first N seeds (vnet_fuzz_seed()) as files DIR/seed-I: the starting
 * corpus of a libFuzzer run. Real coverage-guided fuzzing is `meson setup -Dfuzz=true` with
 * clang (see docs/testing.md). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: a target may provide seeds for the random mode. */
__attribute__((weak)) size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: plenty for input generation */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* Write seeds 0..n-1 as DIR/seed-I (a seed the target does not make is skipped). */
static int write_seeds(const char *dir, long n)
{
    if (!vnet_fuzz_seed) {
        fprintf(stderr, "this target makes no seeds\n");
        return 1;
    }
    static uint8_t buf[1 << 16];
    for (long i = 0; i < n; i++) {
        size_t len = vnet_fuzz_seed((unsigned)i, buf, sizeof(buf));
        if (len == 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/seed-%ld", dir, i);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
            perror(path);
            return 1;
        }
    }
    return 0;
}

static int replay(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    uint8_t *copy = malloc(n ? n : 1); /* exact-size copy so ASan sees overruns */
    if (!copy)
        return 1;
    memcpy(copy, buf, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

int main(int argc, char **argv)
{
    long count = -1;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--random") == 0 && i + 1 < argc)
            count = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--write-seeds") == 0 && i + 2 < argc)
            return write_seeds(argv[i + 1], strtol(argv[i + 2], NULL, 10));
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0) | 1;
        else
            rc |= replay(argv[i]);
    }
    if (count < 0) {
        if (argc < 2)
            fprintf(stderr, "usage: %s FILE... | --random N [--seed S] | --write-seeds DIR N\n",
                    argv[0]);
        return rc;
    }
    rng_state = seed;
    enum { CAP = 2048 };
    uint8_t prev[CAP];
    size_t prevlen = 0;
    unsigned seeds = 0;
    for (long i = 0; i < count; i++) {
        uint8_t tmp[CAP];
        size_t len;
        uint64_t r = rnd();
        if (vnet_fuzz_seed && (r & 3) == 0 && (len = vnet_fuzz_seed(seeds++, tmp, CAP)) > 0) {
            /* a valid input from the target, to be mutated below */
        } else if ((r & 1) && prevlen) {
            len = prevlen;
            memcpy(tmp, prev, len);
        } else {
            len = (size_t)(rnd() % CAP);
            for (size_t j = 0; j < len; j++)
                tmp[j] = (uint8_t)rnd();
        }
        unsigned flips = (unsigned)(rnd() % 4);
        for (unsigned k = 0; k < flips && len; k++)
            tmp[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
        if (len && (rnd() % 8) == 0)
            len = (size_t)(rnd() % (len + 1)); /* truncate */
        uint8_t *in = malloc(len ? len : 1);
        if (!in)
            return 1;
        memcpy(in, tmp, len);
        LLVMFuzzerTestOneInput(in, len);
        free(in);
        memcpy(prev, tmp, len);
        prevlen = len;
    }
    printf("%ld inputs, no crash\n", count);
    return rc;
}
