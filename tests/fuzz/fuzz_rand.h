/* A deterministic randombytes implementation for fuzz targets (tests only): every process
 * makes the same "random" keys, so genuine handshake messages written to a corpus by one run
 * (`--write-seeds`) are still genuine in the next, and the fuzzer can reach the success paths
 * of verifiers that need the other side's ephemeral secret (a WELCOME answering our HELLO).
 * Call fuzz_rand_install() before anything else uses libsodium. Never for anything but tests:
 * the output is a public function of a counter. */
#ifndef VNET_FUZZ_RAND_H
#define VNET_FUZZ_RAND_H

#include <sodium.h>
#include <stdint.h>
#include <string.h>

static uint64_t fuzz_rand_state = 0x243f6a8885a308d3ull;

static uint64_t fuzz_rand_next(void)
{
    /* splitmix64 */
    uint64_t z = (fuzz_rand_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *fuzz_rand_name(void)
{
    return "vnet-fuzz-deterministic";
}

static uint32_t fuzz_rand_random(void)
{
    return (uint32_t)fuzz_rand_next();
}

static void fuzz_rand_buf(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        uint64_t r = fuzz_rand_next();
        size_t k = n < sizeof(r) ? n : sizeof(r);
        memcpy(p, &r, k);
        p += k;
        n -= k;
    }
}

static void fuzz_rand_install(void)
{
    static struct randombytes_implementation impl = {
        .implementation_name = fuzz_rand_name,
        .random = fuzz_rand_random,
        .buf = fuzz_rand_buf,
    };
    randombytes_set_implementation(&impl);
}

#endif
