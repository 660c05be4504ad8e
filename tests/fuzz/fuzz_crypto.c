/* Fuzz the parsers and verifiers of the crypto module with attacker-controlled bytes: the
 * data-plane open (peer and low-level), the two handshake readers and the channel open.
 *
 * The first input byte picks the target, the rest is the message. Besides "no crash, no out of
 * bounds access" (inputs arrive in exact-size heap buffers), the oracle is authentication
 * itself: anything a verifier accepts must be byte for byte one of the genuine messages made at
 * start-up (a forgery found by the fuzzer aborts), a packet accepted once is refused the second
 * time, the replay window must agree with a naive model, and a text key that parses must
 * format back to the same text. vnet_fuzz_seed() hands out the
 * genuine messages so that mutations reach past the length checks. */
#include "vnet/crypto.h"
#include "vnet/error.h"

#include "fuzz_rand.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort(); /* a fuzz finding, never reached on valid behaviour */                        \
    } while (0)

#define NOW_MS 1700000000000ull
#define NPKT   4

static struct {
    int ready;
    struct vnet_keypair node, ctl, a, b;
    struct vnet_hs resp; /* responder before read_hello */
    struct vnet_hs init; /* initiator after write_hello */
    uint8_t hello[VNET_HS_HELLO_LEN], welcome[VNET_HS_WELCOME_LEN];
    struct vnet_chan rx; /* controller's receive channel, nothing read yet */
    uint8_t frame[64];   /* first frame the node sent on it */
    size_t framelen;
    /* per suite (0: ChaCha20, 1: AES-GCM when the CPU has it) */
    int nsuites;
    struct vnet_seal_peer ba[2]; /* b's state for packets from a, nothing received yet */
    struct vnet_seal_key kab[2]; /* a -> b key of the epoch the packets use */
    uint8_t pkt[2][NPKT][200 + VNET_SEAL_OVERHEAD];
    size_t pktlen[2][NPKT];
} g;

static void kp(struct vnet_keypair *k, uint8_t b)
{
    uint8_t sec[32];
    memset(sec, b, sizeof(sec));
    CHECK(vnet_key_from_secret(k, sec) == 0);
}

static void setup(void)
{
    if (g.ready)
        return;
    fuzz_rand_install(); /* the same messages in every run: corpus files stay genuine */
    kp(&g.node, 1);
    kp(&g.ctl, 2);
    kp(&g.a, 3);
    kp(&g.b, 4);
    /* a complete handshake, keeping the states just before each read */
    struct vnet_hs hi, hr;
    size_t n;
    uint8_t claimed[32];
    CHECK(vnet_hs_init_initiator(&hi, &g.node, g.ctl.pub, "p", 1) == 0);
    CHECK(vnet_hs_write_hello(&hi, 7, g.hello, sizeof(g.hello), &n) == 0);
    g.init = hi;
    CHECK(vnet_hs_init_responder(&hr, &g.ctl, "p", 1) == 0);
    g.resp = hr;
    CHECK(vnet_hs_read_hello(&hr, g.hello, n, claimed, NULL) == 0);
    CHECK(vnet_hs_accept(&hr, g.welcome, sizeof(g.welcome), &n) == 0);
    CHECK(vnet_hs_read_welcome(&hi, g.welcome, n) == 0);
    struct vnet_chan ntx, nrx, ctx;
    CHECK(vnet_hs_split(&hi, &ntx, &nrx) == 0);
    CHECK(vnet_hs_split(&hr, &ctx, &g.rx) == 0);
    static const uint8_t body[] = "\x93\x05\x01\x02";
    CHECK(vnet_chan_seal(&ntx, body, 4, g.frame, sizeof(g.frame), &g.framelen) == 0);
    /* data-plane packets a -> b of several sizes, one epoch */
    g.nsuites = vnet_seal_suite_auto() == VNET_SEAL_AES256GCM ? 2 : 1;
    for (int s = 0; s < g.nsuites; s++) {
        enum vnet_seal_suite su = s ? VNET_SEAL_AES256GCM : VNET_SEAL_CHACHA20;
        CHECK(vnet_seal_peer_init(&g.ba[s], &g.b, g.a.pub, 4242, su, NOW_MS) == 0);
        uint64_t epoch = (NOW_MS / 1000 - VNET_SEAL_EPOCH_BASE_S) << 32 | 99;
        CHECK(vnet_seal_key_derive(&g.kab[s], &g.a, g.b.pub, 4242, su, epoch, VNET_SEAL_TX) == 0);
        static const size_t sizes[NPKT] = {0, 1, 64, 200};
        uint8_t plain[200];
        for (size_t i = 0; i < sizeof(plain); i++)
            plain[i] = (uint8_t)(i * 13);
        for (int i = 0; i < NPKT; i++) {
            int r = vnet_seal_encrypt(&g.kab[s], (uint64_t)i * 3, plain, sizes[i], g.pkt[s][i],
                                      sizeof(g.pkt[s][i]));
            CHECK(r == (int)(sizes[i] + VNET_SEAL_OVERHEAD));
            g.pktlen[s][i] = (size_t)r;
        }
    }
    g.ready = 1;
}

static int is_genuine_pkt(int s, const uint8_t *d, size_t n)
{
    for (int i = 0; i < NPKT; i++)
        if (n == g.pktlen[s][i] && memcmp(d, g.pkt[s][i], n) == 0)
            return 1;
    return 0;
}

static void fuzz_dp(int s, const uint8_t *d, size_t n)
{
    static struct vnet_seal_peer p;
    if (s >= g.nsuites)
        s = 0;
    p = g.ba[s];
    size_t cap = n > VNET_SEAL_OVERHEAD ? n - VNET_SEAL_OVERHEAD : 0;
    uint8_t *out = malloc(cap ? cap : 1);
    CHECK(out);
    int r = vnet_seal_peer_open(&p.rx, NOW_MS, d, n, cap ? out : NULL, cap);
    CHECK(r < 0 || is_genuine_pkt(s, d, n));
    if (r >= 0) {
        CHECK((size_t)r == cap);
        int r2 = vnet_seal_peer_open(&p.rx, NOW_MS, d, n, out, cap);
        CHECK(r2 == VNET_EEXIST); /* replay */
    }
    /* the low-level path with the right key: same verdict on authenticity */
    uint64_t ctr;
    int r3 = vnet_seal_decrypt(&g.kab[s], d, n, cap ? out : NULL, cap, &ctr);
    CHECK(r3 < 0 || is_genuine_pkt(s, d, n));
    /* a one-byte-short output buffer is always refused */
    if (cap)
        CHECK(vnet_seal_decrypt(&g.kab[s], d, n, out, cap - 1, &ctr) < 0);
    free(out);
}

static void fuzz_hello(const uint8_t *d, size_t n)
{
    struct vnet_hs hs = g.resp;
    uint8_t claimed[32];
    uint64_t ts;
    int r = vnet_hs_read_hello(&hs, d, n, claimed, &ts);
    /* Any genuine HELLO of the node to this controller verifies, also one made in another
     * process from the same fixed keys (a corpus file): the oracle is that only the node's key
     * and the timestamp it sent can come out. (Replays are the caller's timestamp check.) */
    if (r == 0) {
        CHECK(n == sizeof(g.hello));
        CHECK(memcmp(claimed, g.node.pub, 32) == 0 && ts == 7);
        uint8_t w[VNET_HS_WELCOME_LEN];
        size_t wl;
        CHECK(vnet_hs_accept(&hs, w, sizeof(w), &wl) == 0);
    } else {
        size_t wl;
        uint8_t w[VNET_HS_WELCOME_LEN];
        CHECK(vnet_hs_accept(&hs, w, sizeof(w), &wl) == VNET_ESTATE);
    }
    vnet_hs_wipe(&hs);
}

static void fuzz_welcome(const uint8_t *d, size_t n)
{
    struct vnet_hs hs = g.init;
    int r = vnet_hs_read_welcome(&hs, d, n);
    CHECK(r < 0 || (n == sizeof(g.welcome) && memcmp(d, g.welcome, n) == 0));
    struct vnet_chan tx, rx;
    CHECK(vnet_hs_split(&hs, &tx, &rx) == (r == 0 ? 0 : VNET_ESTATE));
    vnet_chan_wipe(&tx);
    vnet_chan_wipe(&rx);
}

static void fuzz_chan(const uint8_t *d, size_t n)
{
    /* up to two frames: byte 0 says where the first ends */
    struct vnet_chan c = g.rx;
    size_t cut = n ? d[0] : 0;
    if (n)
        d++, n--;
    if (cut > n)
        cut = n;
    const uint8_t *f[2] = {d, d + cut};
    size_t fl[2] = {cut, n - cut};
    for (int i = 0; i < 2; i++) {
        uint8_t *in = malloc(fl[i] ? fl[i] : 1), *out = malloc(fl[i] ? fl[i] : 1);
        CHECK(in && out);
        memcpy(in, f[i], fl[i]);
        size_t ol = 0;
        int r = vnet_chan_open(&c, in, fl[i], out, fl[i], &ol);
        if (r == 0) {
            /* only the genuine first frame can open, and only first */
            CHECK(i == 0 && fl[i] == g.framelen && memcmp(in, g.frame, fl[i]) == 0);
            CHECK(ol == 4);
        }
        free(in);
        free(out);
    }
}

/* The replay window against a naive model: 8-byte big-endian counters (12 bits of spread). */
static void fuzz_replay(const uint8_t *d, size_t n)
{
    static struct vnet_replay r;
    static uint8_t seen[1 << 13];
    vnet_replay_init(&r);
    memset(seen, 0, sizeof(seen));
    uint64_t hi = 0;
    int any = 0;
    for (size_t i = 0; i + 2 <= n; i += 2) {
        uint64_t c = ((uint64_t)d[i] << 8 | d[i + 1]) & ((1u << 13) - 1);
        int want = (any && c + VNET_REPLAY_WINDOW <= hi) ? VNET_ERANGE : seen[c] ? VNET_EEXIST : 0;
        CHECK(vnet_replay_check(&r, c) == want);
        CHECK(vnet_replay_update(&r, c) == want);
        if (!want) {
            seen[c] = 1;
            if (!any || c > hi)
                hi = c;
            any = 1;
        }
    }
}

/* Text keys: parse must accept exactly the canonical 43-character form. */
static void fuzz_pubkey(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    CHECK(s);
    memcpy(s, d, n);
    s[n] = '\0';
    uint8_t k[32];
    if (vnet_pubkey_parse(s, k) == 0) {
        char back[VNET_PUBKEY_STRLEN];
        CHECK(vnet_pubkey_format(k, back, sizeof(back)) == 43);
        CHECK(strcmp(back, s) == 0);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0)
        return 0;
    /* exact-size copy of the message part so overruns are caught */
    size_t n = size - 1;
    uint8_t *m = malloc(n ? n : 1);
    if (!m)
        return 0;
    memcpy(m, data + 1, n);
    switch (data[0] % 7) {
    case 0:
        fuzz_dp(0, m, n);
        break;
    case 1:
        fuzz_hello(m, n);
        break;
    case 2:
        fuzz_welcome(m, n);
        break;
    case 3:
        fuzz_chan(m, n);
        break;
    case 4:
        fuzz_replay(m, n);
        break;
    case 5:
        fuzz_dp(1, m, n);
        break;
    case 6:
        fuzz_pubkey(m, n);
        break;
    }
    free(m);
    return 0;
}

size_t vnet_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    setup();
    const uint8_t *src;
    size_t len;
    uint8_t sel = (uint8_t)(i % 5);
    uint8_t pre = 0;
    int has_pre = 0;
    switch (sel) {
    case 0:
    case 4: /* the AES packets (ChaCha ones when the CPU lacks AES) */
        src = g.pkt[sel == 4 && g.nsuites > 1][(i / 5) % NPKT];
        len = g.pktlen[sel == 4 && g.nsuites > 1][(i / 5) % NPKT];
        if (sel == 4)
            sel = 5;
        break;
    case 1:
        src = g.hello;
        len = sizeof(g.hello);
        break;
    case 2:
        src = g.welcome;
        len = sizeof(g.welcome);
        break;
    case 3:
    default:
        src = g.frame;
        len = g.framelen;
        pre = (uint8_t)len; /* the first frame, then what mutation appends */
        has_pre = 1;
        break;
    }
    if (cap < len + 1 + (size_t)has_pre)
        return 0;
    buf[0] = sel;
    if (has_pre)
        buf[1] = pre;
    memcpy(buf + 1 + has_pre, src, len);
    return len + 1 + (size_t)has_pre;
}
