/* Helpers shared by the C integration tests that work in network namespaces (test_ports.c,
 * test_raw.c, test_xdp.c): entering a namespace, running a shell command in it, a monotonic
 * clock, big-endian field access and endpoint literals. Header-only; each test includes it
 * once, after <check.h> and the vnet headers. */
#ifndef VNET_NSTEST_H
#define VNET_NSTEST_H

#include "vnet/types.h"

#include <check.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Move the calling thread into the network namespace open as @ns. */
static inline void enter(int ns)
{
    ck_assert_int_eq(setns(ns, CLONE_NEWNET), 0);
}

/* Run a shell command (printf-style) in the calling thread's namespace; its exit status. */
static inline int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static inline long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)(v >> 16));
    wr16(p + 2, (uint16_t)v);
}

/* Wait (at most 3 s, checking every 10 ms) until every interface named in the NULL-terminated
 * list is operationally up in the calling thread's namespace (carrier and qdisc ready, so a
 * first send is not lost). 0, or -1 with a message. */
static inline int links_up(const char *first, ...)
{
    for (int i = 0; i < 300; i++) {
        int down = 0;
        va_list ap;
        va_start(ap, first);
        for (const char *d = first; d && !down; d = va_arg(ap, const char *))
            down = sh("ip link show %s | grep -q 'state UP'", d) != 0;
        va_end(ap);
        if (!down)
            return 0;
        usleep(10000);
    }
    fprintf(stderr, "links did not come up\n");
    return -1;
}

/* "IP:PORT" as an endpoint; the test fails on a typo. */
static inline struct vnet_endpoint ep_of(const char *s)
{
    struct vnet_endpoint ep;
    ck_assert_int_eq(vnet_endpoint_parse(s, &ep), 0);
    return ep;
}

#endif
