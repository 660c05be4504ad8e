/* Internet checksums (RFC 1071), all of libvnet's in one place: the sum over a buffer, folds,
 * incremental updates and pseudo-headers (include/vnet/encap.h), the sum taken while copying and
 * the completion of a partial checksum (include/vnet/offload.h), and where the L4 checksum of a
 * whole Ethernet frame lies (csum_int.h, for the raw and xdp backends).
 *
 * Sums are taken over native-order loads with a 64-bit accumulator and byte-swapped once at the
 * end: the ones'-complement sum commutes with byte swapping (RFC 1071, 2.(B)), so the API can
 * speak big-endian word values in host order without swapping per word. Four independent
 * accumulators keep the carry chains short.
 */
#include "csum_int.h"

#include "bytes_int.h"
#include "vnet/encap.h"
#include "vnet/error.h"
#include "vnet/offload.h"

#include <linux/if_ether.h>
#include <netinet/in.h>
#include <string.h>

/* ---- Sums over a buffer ---- */

/* Sum native 64-bit loads with end-around carry, in four independent accumulators so the
 * carry chains overlap. Each accumulator stays a ones'-complement sum, folded at the end. */
static inline uint64_t add_carry(uint64_t a, uint64_t b)
{
    a += b;
    return a + (a < b);
}

static inline uint64_t sum_native(const uint8_t *p, size_t len)
{
    uint64_t a = 0, b = 0, c = 0, d = 0, w0, w1, w2, w3;
    while (len >= 32) {
        memcpy(&w0, p, 8);
        memcpy(&w1, p + 8, 8);
        memcpy(&w2, p + 16, 8);
        memcpy(&w3, p + 24, 8);
        a = add_carry(a, w0);
        b = add_carry(b, w1);
        c = add_carry(c, w2);
        d = add_carry(d, w3);
        p += 32;
        len -= 32;
    }
    while (len >= 8) {
        memcpy(&w0, p, 8);
        a = add_carry(a, w0);
        p += 8;
        len -= 8;
    }
    /* Tail of 0..7 bytes, at even offsets, so 16-bit words keep their positions. An odd last
     * byte is the first (high) byte of a zero-padded word: in a native load that is its low
     * byte on little-endian machines and its high byte on big-endian ones. */
    if (len & 4) {
        uint32_t t;
        memcpy(&t, p, 4);
        b = add_carry(b, t);
        p += 4;
    }
    if (len & 2) {
        uint16_t t;
        memcpy(&t, p, 2);
        c = add_carry(c, t);
        p += 2;
    }
    if (len & 1) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        d = add_carry(d, *p);
#else
        d = add_carry(d, (uint64_t)*p << 8);
#endif
    }
    return add_carry(add_carry(a, b), add_carry(c, d));
}

static inline uint32_t to_be_sum(uint32_t native16)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (uint32_t)__builtin_bswap16((uint16_t)native16);
#else
    return native16;
#endif
}

uint32_t vnet_csum_partial(const void *data, size_t len, uint32_t sum)
{
    uint32_t s = to_be_sum(vnet__csum_fold64(sum_native(data, len)));
    return vnet__csum_fold64((uint64_t)s + sum);
}

uint16_t vnet_csum_fold(uint32_t sum)
{
    return (uint16_t)~vnet__csum_fold32(sum);
}

uint16_t vnet_csum(const void *data, size_t len)
{
    return vnet_csum_fold(vnet_csum_partial(data, len, 0));
}

uint16_t vnet_csum_update16(uint16_t csum, uint16_t old, uint16_t new_val)
{
    uint32_t s = (uint32_t)(uint16_t)~csum + (uint16_t)~old + new_val;
    return vnet_csum_fold(s);
}

uint16_t vnet_csum_update32(uint16_t csum, uint32_t old, uint32_t new_val)
{
    uint32_t s = (uint32_t)(uint16_t)~csum + (uint16_t) ~(old >> 16) + (uint16_t)~old +
                 (new_val >> 16) + (new_val & 0xffffu);
    return vnet_csum_fold(s);
}

uint32_t vnet_csum_pseudo4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto, uint16_t len)
{
    uint32_t s = (uint32_t)get16(src) + get16(src + 2) + get16(dst) + get16(dst + 2);
    return vnet__csum_fold32(s + proto + len);
}

uint32_t vnet_csum_pseudo6(const uint8_t src[16], const uint8_t dst[16], uint8_t proto,
                           uint32_t len)
{
    uint32_t s = vnet_csum_partial(src, 16, 0);
    s = vnet_csum_partial(dst, 16, s);
    return vnet__csum_fold32(s + (len >> 16) + (len & 0xffffu) + proto);
}

/* ---- Copy and checksum in one pass ---- */

/* Native-order sum of [s, s + len) while copying it to d, portable version. Four independent
 * accumulators keep the carry chains short; fixed-size memcpy compiles to plain moves. */
static uint64_t copy_sum_scalar(uint8_t *restrict d, const uint8_t *restrict s, size_t len)
{
    uint64_t a = 0, b = 0, c = 0, e = 0, w0, w1, w2, w3;
    while (len >= 32) {
        memcpy(&w0, s, 8);
        memcpy(&w1, s + 8, 8);
        memcpy(&w2, s + 16, 8);
        memcpy(&w3, s + 24, 8);
        memcpy(d, &w0, 8);
        memcpy(d + 8, &w1, 8);
        memcpy(d + 16, &w2, 8);
        memcpy(d + 24, &w3, 8);
        a = add_carry(a, w0);
        b = add_carry(b, w1);
        c = add_carry(c, w2);
        e = add_carry(e, w3);
        s += 32;
        d += 32;
        len -= 32;
    }
    while (len >= 8) {
        memcpy(&w0, s, 8);
        memcpy(d, &w0, 8);
        a = add_carry(a, w0);
        s += 8;
        d += 8;
        len -= 8;
    }
    /* 0..7 bytes left, at an even offset: words keep their positions. */
    if (len & 4) {
        uint32_t t;
        memcpy(&t, s, 4);
        memcpy(d, &t, 4);
        b = add_carry(b, t);
        s += 4;
        d += 4;
    }
    if (len & 2) {
        uint16_t t;
        memcpy(&t, s, 2);
        memcpy(d, &t, 2);
        c = add_carry(c, t);
        s += 2;
        d += 2;
    }
    if (len & 1) {
        *d = *s;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        e = add_carry(e, *s);
#else
        e = add_carry(e, (uint64_t)*s << 8);
#endif
    }
    return add_carry(add_carry(a, b), add_carry(c, e));
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_COPY_SUM_AVX2 1

/* The same with 32-byte vectors: 32-bit words are zero-extended into 64-bit lanes, which
 * cannot overflow (2^32 additions), so there is no carry to track in the loop; the native
 * 32-bit words fold to the same ones'-complement sum as 16-bit ones. Scalar code does the
 * tail. Selected at run time (AVX2 is not in the x86-64 baseline). */
__attribute__((target("avx2"))) static uint64_t copy_sum_avx2(uint8_t *restrict d,
                                                              const uint8_t *restrict s, size_t len)
{
    const __m256i z = _mm256_setzero_si256();
    __m256i a0 = z, a1 = z, a2 = z, a3 = z;
    while (len >= 64) {
        __m256i v0 = _mm256_loadu_si256((const __m256i *)s);
        __m256i v1 = _mm256_loadu_si256((const __m256i *)(s + 32));
        _mm256_storeu_si256((__m256i *)d, v0);
        _mm256_storeu_si256((__m256i *)(d + 32), v1);
        a0 = _mm256_add_epi64(a0, _mm256_unpacklo_epi32(v0, z));
        a1 = _mm256_add_epi64(a1, _mm256_unpackhi_epi32(v0, z));
        a2 = _mm256_add_epi64(a2, _mm256_unpacklo_epi32(v1, z));
        a3 = _mm256_add_epi64(a3, _mm256_unpackhi_epi32(v1, z));
        s += 64;
        d += 64;
        len -= 64;
    }
    __m256i t = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    __m128i h = _mm_add_epi64(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    uint64_t lo = (uint64_t)_mm_cvtsi128_si64(h), hi = (uint64_t)_mm_extract_epi64(h, 1);
    uint64_t sum = add_carry(lo, hi);
    return add_carry(sum, copy_sum_scalar(d, s, len));
}

static int have_avx2 = -1;
#endif

static inline uint64_t copy_sum_native(uint8_t *restrict d, const uint8_t *restrict s, size_t len)
{
#ifdef HAVE_COPY_SUM_AVX2
    if (len >= 128) {
        int avx2 = __atomic_load_n(&have_avx2, __ATOMIC_RELAXED);
        if (avx2 < 0) {
            __builtin_cpu_init();
            avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
            __atomic_store_n(&have_avx2, avx2, __ATOMIC_RELAXED);
        }
        if (avx2)
            return copy_sum_avx2(d, s, len);
    }
#endif
    return copy_sum_scalar(d, s, len);
}

uint32_t vnet_csum_copy(void *dst, const void *src, size_t len, uint32_t sum)
{
    uint32_t s = to_be_sum(vnet__csum_fold64(copy_sum_native(dst, src, len)));
    return vnet__csum_fold64((uint64_t)s + sum);
}

int vnet_csum_complete(struct vnet_pkt *pkt)
{
    if (!pkt)
        return VNET_EINVAL;
    if (!(pkt->csum_flags & VNET_CSUM_PARTIAL))
        return 0;
    if ((pkt->gso_type & ~VNET_GSO_F_ECN) != VNET_GSO_NONE || !pkt->buf ||
        (uint64_t)pkt->off + pkt->len > pkt->cap ||
        (uint32_t)pkt->csum_start + pkt->csum_offset + 2 > pkt->len)
        return VNET_EINVAL;
    uint8_t *d = vnet_pkt_data(pkt);
    uint32_t sum = vnet_csum_partial(d + pkt->csum_start, pkt->len - pkt->csum_start, 0);
    put16(d + pkt->csum_start + pkt->csum_offset, vnet__csum_l4(sum));
    pkt->csum_flags &= (uint8_t)~VNET_CSUM_PARTIAL;
    return 0;
}

/* ---- Checksums of whole Ethernet frames from local senders ---- */

/* Ethernet (one optional 802.1Q/AD tag), IPv4 or IPv6 without extension headers, TCP or UDP:
 * the offsets of the IP and L4 headers, the L4 protocol. 0 or -1. */
static int l4_locate(const uint8_t *f, uint32_t len, uint32_t *l3out, uint32_t *l4out,
                     uint8_t *protoout)
{
    uint32_t l3 = 14, l4;
    uint8_t proto;
    if (len < 14)
        return -1;
    uint16_t et = get16(f + 12);
    if (et == ETH_P_8021Q || et == ETH_P_8021AD) {
        if (len < 18)
            return -1;
        et = get16(f + 16);
        l3 = 18;
    }
    if (et == ETH_P_IP && len >= l3 + 20 && f[l3] >> 4 == 4 && (f[l3] & 0xf) >= 5) {
        l4 = l3 + (uint32_t)(f[l3] & 0xf) * 4;
        proto = f[l3 + 9];
    } else if (et == ETH_P_IPV6 && len >= l3 + 40 && f[l3] >> 4 == 6) {
        l4 = l3 + 40;
        proto = f[l3 + 6];
    } else {
        return -1;
    }
    if (!((proto == IPPROTO_TCP && len >= l4 + 20) || (proto == IPPROTO_UDP && len >= l4 + 8)))
        return -1;
    *l3out = l3;
    *l4out = l4;
    *protoout = proto;
    return 0;
}

int vnet__csum_l4_find(const uint8_t *f, uint32_t len, uint16_t *start, uint16_t *off)
{
    uint32_t l3, l4;
    uint8_t proto;
    if (l4_locate(f, len, &l3, &l4, &proto) != 0)
        return -1;
    *start = (uint16_t)l4;
    *off = proto == IPPROTO_TCP ? 16 : 6;
    return 0;
}

bool vnet__csum_l4_pending(const uint8_t *f, uint32_t len, uint16_t *start, uint16_t *off)
{
    uint32_t l3, l4, l4len, sum;
    uint8_t proto;
    if (l4_locate(f, len, &l3, &l4, &proto) != 0)
        return false;
    uint16_t o = proto == IPPROTO_TCP ? 16 : 6;
    if (f[l3] >> 4 == 4) {
        uint32_t tot = get16(f + l3 + 2);
        if ((get16(f + l3 + 6) & 0x3fff) || tot != len - l3 || tot < l4 - l3 + o + 2u)
            return false; /* a fragment, lengths that do not add up, or padding (not local) */
        l4len = tot - (l4 - l3);
        sum = vnet_csum_pseudo4(f + l3 + 12, f + l3 + 16, proto, (uint16_t)l4len);
    } else {
        l4len = get16(f + l3 + 4);
        if (l4len != len - l3 - 40 || l4len < o + 2u)
            return false;
        sum = vnet_csum_pseudo6(f + l3 + 8, f + l3 + 24, proto, l4len);
    }
    uint16_t field = get16(f + l4 + o);
    if (field == 0 && proto == IPPROTO_UDP)
        return false; /* UDP without a checksum (IPv4); over IPv6 it is not valid either way */
    uint16_t pseudo = (uint16_t)(vnet_csum_fold(sum) ^ 0xffffu); /* the sum, not complemented */
    if (field != pseudo)
        return false;
    *start = (uint16_t)l4;
    *off = o;
    return true;
}
