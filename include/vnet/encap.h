/* libvnet: VXLAN encapsulation (RFC 7348) and the outer Ethernet/IP/UDP headers around it.
 *
 * Two levels, for two kinds of backend:
 *
 *  - UDP-payload level, for backends that hand datagrams to a UDP socket: only the 8-byte
 *    VXLAN header is written in front of the inner Ethernet frame (vnet_vxlan_push) or checked
 *    and stripped (vnet_vxlan_decode).
 *  - Whole-frame level, for backends that send and receive complete frames (raw sockets,
 *    AF_PACKET, AF_XDP): outer Ethernet + IPv4/IPv6 + UDP + VXLAN. A per-destination template
 *    (struct vnet_encap_tmpl) is built once; vnet_encap_push() then copies it in front of the
 *    inner frame and patches only lengths, IPv4 ID, source port, VNI and checksums.
 *    vnet_encap_parse() validates a received frame and reports where the inner frame is.
 *
 * Everything works in place on caller-owned buffers: nothing here allocates, blocks, logs or
 * keeps a pointer after returning. Encoders write only in front of the inner frame, inside
 * the headroom the caller gives; decoders never read outside [frame, frame + len).
 *
 * Every decoder that rejects its input returns a negative code (VNET_ETRUNC, VNET_EMALFORM or
 * VNET_ECHECKSUM), stores the reason in *reason when @reason is not NULL, and adds one to
 * stats->count[reason] when @stats is not NULL. The stats are plain counters, no atomics: keep
 * one struct vnet_drop_stats per thread and add them up with vnet_drop_stats_add() on read.
 *
 * Byte order: values in the structs and arguments (ports, VNI, IP ID, checksums) are host
 * order; addresses and MACs are bytes in wire order.
 *
 * Thread-safety: all functions are thread-safe as long as no two threads write the same buffer,
 * template or stats struct at the same time. A template is read-only after vnet_encap_tmpl_init
 * and may be shared by any number of threads.
 */
#ifndef VNET_ENCAP_H
#define VNET_ENCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Constants ---- */

#define VNET_VXLAN_PORT   4789 /* IANA-assigned destination port */
#define VNET_VXLAN_HLEN   8    /* VXLAN header */
#define VNET_VXLAN_FLAG_I 0x08 /* "VNI valid" flag, the only one RFC 7348 defines */

#define VNET_ETH_HLEN  14
#define VNET_IP4_HLEN  20 /* without options */
#define VNET_IP6_HLEN  40
#define VNET_UDP_HLEN  8
#define VNET_INNER_MIN 14 /* an inner frame must at least hold an Ethernet header */

/* Outer Ethernet + IP + UDP + VXLAN. */
#define VNET_ENCAP_OVERHEAD_V4  50
#define VNET_ENCAP_OVERHEAD_V6  70
#define VNET_ENCAP_OVERHEAD_MAX VNET_ENCAP_OVERHEAD_V6

/* Default UDP source port range: the IANA dynamic range that RFC 7348 section 5 recommends.
 * (Linux' vxlan driver uses net.ipv4.ip_local_port_range instead, 32768-60999 by default, unless
 * "srcport MIN MAX" is given; pass those bounds to vnet_encap_src_port to match it.) */
#define VNET_ENCAP_SPORT_MIN 49152
#define VNET_ENCAP_SPORT_MAX 65535

/* ---- Drop reasons and counters ---- */

enum vnet_drop_reason {
    VNET_DROP_NONE = 0,        /* not a drop; never counted */
    VNET_DROP_TRUNC_ETH,       /* frame shorter than the outer Ethernet header */
    VNET_DROP_BAD_ETHERTYPE,   /* outer EtherType neither IPv4 nor IPv6 (VLAN tags included) */
    VNET_DROP_TRUNC_IP,        /* frame shorter than the IP header or the IP length field says */
    VNET_DROP_BAD_IP_VERSION,  /* IP version does not match the EtherType */
    VNET_DROP_BAD_IHL,         /* IPv4 header length below 20 bytes */
    VNET_DROP_BAD_IP_LEN,      /* IPv4 total length shorter than its own header */
    VNET_DROP_IP_FRAGMENT,     /* IPv4 fragment (MF set or nonzero offset) */
    VNET_DROP_BAD_IP_CSUM,     /* IPv4 header checksum does not verify */
    VNET_DROP_NOT_UDP,         /* IPv4 protocol / IPv6 next header is not UDP (ext. headers too) */
    VNET_DROP_TRUNC_UDP,       /* IP payload shorter than a UDP header */
    VNET_DROP_BAD_UDP_LEN,     /* UDP length below 8 or beyond the IP payload */
    VNET_DROP_WRONG_PORT,      /* UDP destination port is not the VXLAN port asked for */
    VNET_DROP_BAD_UDP_CSUM,    /* UDP checksum does not verify */
    VNET_DROP_ZERO_UDP_CSUM6,  /* zero UDP checksum over IPv6 without VNET_DECAP_F_ZERO_CSUM6 */
    VNET_DROP_TRUNC_VXLAN,     /* UDP payload shorter than the VXLAN header */
    VNET_DROP_BAD_VXLAN_FLAGS, /* VXLAN I flag not set */
    VNET_DROP_TRUNC_INNER,     /* inner frame shorter than an Ethernet header */
    VNET_DROP__MAX
};

/* Per-thread drop counters, indexed by enum vnet_drop_reason. Zero-initialise it. */
struct vnet_drop_stats {
    uint64_t count[VNET_DROP__MAX];
};

/* The symbolic name of @r without prefix ("trunc_eth", "bad_ip_csum"), or "unknown" for a value
 * out of range. The string is static. Thread-safe. */
VNET_API const char *vnet_drop_reason_name(enum vnet_drop_reason r);

/* The error code that the decoders return for @r: VNET_ETRUNC for the TRUNC_* reasons,
 * VNET_ECHECKSUM for the checksum reasons, VNET_EMALFORM for the others, 0 for VNET_DROP_NONE
 * and VNET_EINVAL for a value out of range. Thread-safe. */
VNET_API int vnet_drop_reason_code(enum vnet_drop_reason r);

/* Add every counter of @src to @dst (summing per-thread stats). The caller makes sure that
 * nobody writes @dst meanwhile; reading a @src another thread is updating gives a value that
 * may lag by a few packets (plain, non-atomic 64-bit loads: exact on 64-bit platforms). */
VNET_API void vnet_drop_stats_add(struct vnet_drop_stats *dst, const struct vnet_drop_stats *src);

/* ---- Internet checksum (RFC 1071, incremental update RFC 1624) ----
 *
 * A "partial sum" is the ones'-complement sum of the data read as big-endian 16-bit words,
 * kept folded to 0..0xffff so that a few can be added together with plain `+` and folded again.
 * A "checksum" is the folded, complemented value that goes into a header, in host order (write
 * it big-endian). To verify, sum the header including its checksum field: the partial sum is
 * 0xffff (vnet_csum_fold gives 0) when it is right. */

/* Add the bytes [data, data + len) to @sum and return the folded partial sum. An odd trailing
 * byte counts as the high byte of a word, so when chaining buffers all but the last must have
 * even lengths. @data needs no alignment. Thread-safe. */
VNET_API uint32_t vnet_csum_partial(const void *data, size_t len, uint32_t sum);

/* Fold a 32-bit sum of partial sums to 16 bits and complement it: the checksum to store. */
VNET_API uint16_t vnet_csum_fold(uint32_t sum);

/* The checksum of [data, data + len): vnet_csum_fold(vnet_csum_partial(data, len, 0)). */
VNET_API uint16_t vnet_csum(const void *data, size_t len);

/* RFC 1624 eqn. 3: the new checksum after a 16-bit word of the covered data changed from @old
 * to @new_val (HC' = ~(~HC + ~m + m')). @csum, @old and @new_val are host order. */
VNET_API uint16_t vnet_csum_update16(uint16_t csum, uint16_t old, uint16_t new_val);

/* The same for an aligned 32-bit field (an IPv4 address, two adjacent 16-bit words). */
VNET_API uint16_t vnet_csum_update32(uint16_t csum, uint32_t old, uint32_t new_val);

/* Partial sum of the UDP/TCP pseudo-header: source and destination addresses (4 or 16 bytes,
 * wire order), protocol number and upper-layer length. */
VNET_API uint32_t vnet_csum_pseudo4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
                                    uint16_t len);
VNET_API uint32_t vnet_csum_pseudo6(const uint8_t src[16], const uint8_t dst[16], uint8_t proto,
                                    uint32_t len);

/* ---- UDP-payload level: the VXLAN header only ---- */

/* Write the 8-byte VXLAN header for @vni (I flag set, reserved fields zero) at @hdr.
 * @vni must be <= VNET_VNI_MAX; higher bits are dropped. Thread-safe. */
VNET_API void vnet_vxlan_encode(uint8_t hdr[VNET_VXLAN_HLEN], uint32_t vni);

/* Prepend a VXLAN header to the inner frame that starts at @buf + @headroom. Writes only
 * buf[headroom - 8 .. headroom). Returns the offset of the VXLAN header (headroom - 8), or
 * VNET_ENOSPC when @headroom < 8 and VNET_EINVAL when @vni > VNET_VNI_MAX (nothing written). */
VNET_API int vnet_vxlan_push(uint8_t *buf, size_t headroom, uint32_t vni);

/* Check the VXLAN header of a received UDP payload [p, p + len): at least 8 bytes, I flag set,
 * reserved bits ignored (RFC 7348: receivers MUST ignore them), and at least 14 bytes of inner
 * frame after it. On success stores the VNI in *vni (may be NULL) and returns 0; the inner frame
 * is [p + 8, p + len). On failure returns VNET_ETRUNC (reasons TRUNC_VXLAN, TRUNC_INNER) or
 * VNET_EMALFORM (BAD_VXLAN_FLAGS), counts it in @stats and reports it in @reason (either may
 * be NULL). Reads nothing outside [p, p + len). */
VNET_API int vnet_vxlan_decode(const uint8_t *p, size_t len, struct vnet_drop_stats *stats,
                               uint32_t *vni, enum vnet_drop_reason *reason);

/* ---- Outer UDP source port ---- */

/* Map a flow hash to a UDP source port in [@min, @max] (inclusive), as RFC 7348 section 5
 * suggests, so that underlay ECMP spreads flows: the same hash always gives the same port.
 * The hash is mixed first (so weak or sequential hashes still spread), then scaled with a
 * multiply-shift like Linux' udp_flow_src_port(); the ports differ from Linux', which does not
 * matter to a receiver. min = max = 0 selects the default range VNET_ENCAP_SPORT_MIN..
 * VNET_ENCAP_SPORT_MAX; if @min > @max they are swapped. Thread-safe. */
VNET_API uint16_t vnet_encap_src_port(uint32_t flow_hash, uint16_t min, uint16_t max);

/* ---- Whole-frame level ---- */

/* Template flags. */
#define VNET_ENCAP_F_UDP_CSUM       0x1u /* IPv4: fill in the UDP checksum (default: send 0) */
#define VNET_ENCAP_F_UDP6_ZERO_CSUM 0x2u /* IPv6: send a zero UDP checksum (RFC 6935 mode) */
#define VNET_ENCAP_F_DF             0x4u /* IPv4: set Don't Fragment */

/* What vnet_encap_tmpl_init needs to know about one destination. */
struct vnet_encap_cfg {
    struct vnet_mac src_mac;  /* outer Ethernet source (our interface) */
    struct vnet_mac dst_mac;  /* outer Ethernet destination (the next hop) */
    struct vnet_endpoint src; /* local underlay address; .port unused (see push) */
    struct vnet_endpoint dst; /* remote VTEP; .port 0 means VNET_VXLAN_PORT */
    uint8_t ttl;              /* IPv4 TTL / IPv6 hop limit; 0 means 64 */
    uint8_t tos;              /* IPv4 TOS / IPv6 traffic class (DSCP << 2 | ECN) */
    uint32_t flowlabel;       /* IPv6 flow label (20 bits) */
    unsigned flags;           /* VNET_ENCAP_F_* */
};

/* A prebuilt outer header for one destination. The caller allocates it (it is plain data, may
 * be copied) and fills it with vnet_encap_tmpl_init; the fields are private. */
struct vnet_encap_tmpl {
    uint8_t hdr[VNET_ENCAP_OVERHEAD_MAX]; /* Eth + IP + UDP + VXLAN with variable fields 0 */
    uint8_t len;                          /* VNET_ENCAP_OVERHEAD_V4 or _V6 */
    uint8_t family;                       /* VNET_AF_INET or VNET_AF_INET6 */
    uint8_t udp_csum;                     /* nonzero: compute the UDP checksum */
    uint8_t pad_;
    uint32_t ip_sum;  /* IPv4: partial sum of the header without length and ID */
    uint32_t udp_sum; /* partial sum of pseudo-header addresses + proto, dst port, VXLAN flags */
};

/* Build @t from @cfg. Both endpoints must be of the same family (IPv4 or IPv6). Returns 0, or
 * VNET_EINVAL for a NULL pointer, mixed or unknown families or a flow label above 20 bits
 * (@t is then left untouched). Thread-safe. */
VNET_API int vnet_encap_tmpl_init(const struct vnet_encap_cfg *cfg, struct vnet_encap_tmpl *t);

/* The outer header length @t writes (VNET_ENCAP_OVERHEAD_V4 or _V6). */
static inline size_t vnet_encap_tmpl_len(const struct vnet_encap_tmpl *t)
{
    return t->len;
}

/* Encapsulate in place: the inner Ethernet frame is [buf + headroom, buf + headroom +
 * inner_len); write the outer headers from @t right in front of it with VNI @vni, UDP source
 * port @sport (see vnet_encap_src_port) and IPv4 identification @ip_id (ignored for IPv6),
 * computing the IPv4 header checksum and, if the template asks, the UDP checksum (which reads
 * the inner frame). Returns the offset of the new frame start (headroom - overhead); the frame
 * is inner_len + overhead bytes long. Errors, with nothing written: VNET_ENOSPC when
 * @headroom is smaller than the overhead, VNET_EINVAL for @vni > VNET_VNI_MAX or @inner_len <
 * VNET_INNER_MIN, VNET_EMSGSIZE when the IP length field would overflow. No allocation; the
 * caller owns @buf. */
VNET_API int vnet_encap_push(const struct vnet_encap_tmpl *t, uint8_t *buf, size_t headroom,
                             size_t inner_len, uint32_t vni, uint16_t sport, uint16_t ip_id);

/* Parse flags. */
#define VNET_DECAP_F_ZERO_CSUM6  0x1u /* accept a zero UDP checksum over IPv6 (RFC 6935) */
#define VNET_DECAP_F_NO_UDP_CSUM 0x2u /* don't verify UDP checksums (the NIC/kernel did) */
#define VNET_DECAP_F_NO_IP_CSUM  0x4u /* don't verify the IPv4 header checksum */

/* What vnet_encap_parse found in the outer headers. */
struct vnet_encap_info {
    struct vnet_mac src_mac, dst_mac; /* outer Ethernet */
    struct vnet_endpoint src, dst;    /* outer IP addresses and UDP ports */
    uint32_t vni;
    uint8_t vxlan_flags; /* first byte of the VXLAN header (I flag set) */
    uint8_t ttl;         /* TTL / hop limit */
    uint8_t tos;         /* TOS / traffic class */
    bool df;             /* IPv4 Don't Fragment */
    uint16_t ip_id;      /* IPv4 identification; 0 for IPv6 */
    uint16_t udp_csum;   /* UDP checksum as received; 0 means none was sent */
    uint32_t flowlabel;  /* IPv6 flow label; 0 for IPv4 */
    size_t inner_off;    /* the inner Ethernet frame is [frame + inner_off, + inner_len) */
    size_t inner_len;
};

/* Validate a received frame [frame, frame + len) as Ethernet + IPv4/IPv6 + UDP + VXLAN and
 * fill @info (may be NULL). @dport is the UDP destination port to accept (0: any). @flags are
 * VNET_DECAP_F_*.
 *
 * Checks: EtherType 0x0800/0x86dd (no VLAN tag); IPv4 version, IHL >= 5 (options are
 * skipped), total length within the frame (trailing Ethernet padding is ignored), header
 * checksum, no fragments, protocol UDP; IPv6 version, payload length within the frame, next
 * header UDP (extension headers are rejected as NOT_UDP; jumbograms are not supported); UDP
 * length within the IP payload (a shorter UDP length trims, as Linux does), destination port,
 * checksum when nonzero over IPv4 and always over IPv6 (zero rejected unless
 * VNET_DECAP_F_ZERO_CSUM6); VXLAN as vnet_vxlan_decode.
 *
 * Returns 0, or VNET_ETRUNC / VNET_EMALFORM / VNET_ECHECKSUM with the reason counted in @stats
 * and stored in @reason (either may be NULL); @info is then unspecified. Reads nothing outside
 * the frame; no allocation. */
VNET_API int vnet_encap_parse(const uint8_t *frame, size_t len, uint16_t dport, unsigned flags,
                              struct vnet_drop_stats *stats, struct vnet_encap_info *info,
                              enum vnet_drop_reason *reason);

#ifdef __cplusplus
}
#endif
#endif
