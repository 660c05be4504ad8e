/* libvnet: segmentation and coalescing offloads done in user space.
 *
 * The data plane reads large TCP (TSO) and UDP (USO) frames with virtio_net_hdr metadata from
 * a TAP device and sends them to a peer as VXLAN-in-UDP; the peer may be a Linux vxlan device,
 * which wants every inner frame to carry valid checksums. This module:
 *
 *  - completes a partial checksum (vnet_csum_complete), for a non-GSO frame with
 *    VNET_CSUM_PARTIAL that is about to leave the host;
 *  - splits a GSO frame into wire-sized frames laid out at a fixed stride in one buffer, with
 *    room in front of each for the VXLAN header (vnet_gso_segment), so the whole batch goes to
 *    the kernel in one sendmsg with UDP_SEGMENT = stride;
 *  - coalesces the inner frames of a received UDP GRO batch back into large TCP frames with GSO
 *    metadata that a TAP with IFF_VNET_HDR accepts (struct vnet_gro).
 *
 * Frames are Ethernet frames, optionally with one or two VLAN tags (0x8100 / 0x88a8) in front
 * of IPv4 or IPv6. Nothing here allocates, blocks, logs or keeps a pointer the caller passed,
 * except where struct vnet_gro says so. Byte order: numbers in arguments and structs are host
 * order; frames are wire order.
 *
 * Thread-safety: every function is thread-safe as long as no two threads use the same buffer
 * or the same struct vnet_gro at once (keep one vnet_gro per thread).
 */
#ifndef VNET_OFFLOAD_H
#define VNET_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet/port.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gso_type flag (VIRTIO_NET_HDR_GSO_ECN): the sender set CWR on a TSO frame. Accepted and
 * ignored by vnet_gso_segment (CWR goes on the first segment only, as Linux does). */
#ifndef VNET_GSO_F_ECN
#define VNET_GSO_F_ECN 0x80
#endif

/* Largest UDP payload one sendmsg may carry (UDP length field, IPv4: 65535 - 20 - 8). A
 * vnet_gso_segment result longer than this must be sent in several calls, each starting at a
 * multiple of the stride: at most vnet_gso_segs_per_send() segments per call. */
#define VNET_UDP_GSO_MAX_BYTES 65507
/* Most segments the kernel takes in one UDP_SEGMENT send (UDP_MAX_SEGMENTS: 64 in older
 * kernels, raised to 128 in recent ones). Also the GRO merge limit. */
#define VNET_GSO_MAX_SEGS 64

/* ---- Checksums ---- */

/* Copy [src, src + len) to @dst and, in the same pass, add the bytes to the partial sum @sum
 * (same conventions as vnet_csum_partial: big-endian words, an odd last byte is a high byte;
 * returns the folded partial sum). The ranges must not overlap. Thread-safe. */
VNET_API uint32_t vnet_csum_copy(void *dst, const void *src, size_t len, uint32_t sum);

/* Complete the partial checksum of @pkt in place: when pkt->csum_flags has VNET_CSUM_PARTIAL,
 * sum the data from csum_start to the end, store the checksum (big-endian; 0 is sent as 0xffff,
 * as Linux' skb_checksum_help does) at csum_start + csum_offset and clear VNET_CSUM_PARTIAL.
 * The field must already hold the pseudo-header sum, as the kernel hands it over. Returns 0
 * (also when there was nothing to do), or VNET_EINVAL for a NULL @pkt, off + len beyond cap, a
 * checksum field not inside the data, or a GSO packet (its checksum is per segment: use
 * vnet_gso_segment); @pkt is then untouched. No allocation; the caller owns the packet. */
VNET_API int vnet_csum_complete(struct vnet_pkt *pkt);

/* ---- Segmentation (GSO) ---- */

/* What vnet_gso_segment wrote. Segment k (0 <= k < nsegs) starts at out + k * stride with
 * @prefix bytes reserved in front of its frame: the frame is
 * [out + k * stride + prefix, out + k * stride + seg_len(k)), where every segment but the last
 * is exactly stride bytes long, prefix included, and the last ends at out + total. */
struct vnet_gso_info {
    uint32_t nsegs;    /* number of segments, >= 1 */
    uint32_t stride;   /* prefix + hdr_len + gso_size; for a frame that was not split (nsegs 1)
                          the length of that one segment, prefix included */
    uint32_t total;    /* (nsegs - 1) * stride + the last segment's length (prefix included) */
    uint16_t hdr_len;  /* Ethernet + IP + TCP/UDP headers of each segment (0 for a non-GSO
                          frame) */
    uint16_t gso_size; /* payload bytes per segment (0 for a non-GSO frame) */
};

/* Split the GSO frame @pkt (data at pkt->buf + pkt->off, pkt->len bytes) into frames of at most
 * pkt->gso_size payload bytes each, written into [out, out + out_cap) as described at struct
 * vnet_gso_info; the caller fills the @prefix bytes in front of each segment (the VXLAN header)
 * and sends [out, out + total) with UDP_SEGMENT = stride (split it when it exceeds
 * VNET_UDP_GSO_MAX_BYTES, see vnet_gso_segs_per_send).
 *
 * gso_type (VNET_GSO_F_ECN ignored):
 *  - VNET_GSO_TCPV4 / VNET_GSO_TCPV6: IPv4 (options allowed, not a fragment) or IPv6 (no
 *    extension headers) carrying TCP. Per segment k: IPv4 total length, ID = ID + k and header
 *    checksum; IPv6 payload length; TCP seq + k * gso_size; FIN and PSH kept on the last
 *    segment only, CWR on the first only; a full TCP checksum, computed while copying.
 *  - VNET_GSO_UDP_L4 (USO): the same for UDP: UDP length and a full UDP checksum per datagram.
 *  - VNET_GSO_NONE: copied as one segment (stride = total = prefix + len) with its partial
 *    checksum completed if it has one; the frame is not parsed otherwise.
 * The IP length field bounds the frame (trailing Ethernet padding is dropped). The input
 * checksum field is ignored for GSO frames; when VNET_CSUM_PARTIAL is set, csum_start and
 * csum_offset must point at the TCP/UDP checksum. pkt->hdr_len is not used.
 *
 * @max_segs: refuse frames that need more segments (0: no limit). @prefix: at most 4096.
 *
 * Returns nsegs (>= 1) and fills @info (may be NULL), or a negative error with nothing useful
 * in @out: VNET_EINVAL (NULL pointers, off + len beyond cap, gso_size 0, prefix too large,
 * csum_start/csum_offset not at the L4 checksum or out of bounds), VNET_ENOTSUP (unknown or UFO
 * gso_type, IPv6 extension headers or jumbograms), VNET_EPROTO (not IPv4/IPv6, or not TCP/UDP as
 * gso_type says), VNET_ETRUNC (headers or IP length beyond the frame), VNET_EMALFORM (bad IP
 * version, IHL or TCP data offset, IPv4 fragment), VNET_EMSGSIZE (more than
 * @max_segs segments, or a segment larger than an IP packet can be), VNET_ENOSPC (@out_cap
 * below info->total; vnet_gso_out_len tells the size). Reads only the packet's data, writes
 * only [out, out + total). No allocation; the caller owns both buffers. Thread-safe. */
VNET_API int vnet_gso_segment(const struct vnet_pkt *pkt, size_t prefix, unsigned max_segs,
                              uint8_t *out, size_t out_cap, struct vnet_gso_info *info);

/* The output size vnet_gso_segment needs for @pkt and @prefix (info->total), or the negative
 * error it would return for reasons other than VNET_ENOSPC and VNET_EMSGSIZE. Thread-safe. */
VNET_API long vnet_gso_out_len(const struct vnet_pkt *pkt, size_t prefix);

/* How many segments of @stride bytes one UDP_SEGMENT send may carry: min(VNET_GSO_MAX_SEGS,
 * VNET_UDP_GSO_MAX_BYTES / stride), at least 1. */
static inline unsigned vnet_gso_segs_per_send(uint32_t stride)
{
    uint32_t n = stride ? VNET_UDP_GSO_MAX_BYTES / stride : VNET_GSO_MAX_SEGS;
    return n < 1 ? 1 : n > VNET_GSO_MAX_SEGS ? VNET_GSO_MAX_SEGS : (unsigned)n;
}

/* ---- Coalescing (GRO) ---- */

/* Flags for vnet_gro_init. */
#define VNET_GRO_F_VERIFY_CSUM                                                                     \
    0x1u /* verify each TCP checksum before merging a segment; a                                   \
            segment that fails is passed through unmerged (so the                                  \
            kernel drops and counts it). Leave it off when the outer                               \
            UDP checksum was verified. */

/* Largest merged frame: L2 header (up to 22 bytes with two VLAN tags) + a 65535-byte IP
 * packet. A buffer of this size never limits merging. */
#define VNET_GRO_BUF_SIZE (22 + 65535)

/* Flow-key and merge state; private fields. Plain data, caller-allocated (one per thread),
 * set up with vnet_gro_init; no destroy needed. */
struct vnet_gro_flow_ {
    uint8_t *frame; /* the held first segment (caller's memory), not yet copied */
    uint32_t frame_len;
    uint16_t l3off, l4off, hdr_len;
    uint16_t mss;   /* payload of the first segment */
    uint16_t ip_id; /* IPv4 ID of the first segment */
    uint8_t v6, df;
    uint32_t next_seq; /* sequence number the next segment must have */
    uint32_t len;      /* length of the frame merged so far (in buf once merging) */
    uint32_t segs;     /* segments merged or held */
    uint32_t pseudo;   /* partial pseudo-header sum without the length (verification) */
};

struct vnet_gro {
    uint8_t *buf_;
    uint32_t cap_;
    unsigned flags_;
    int state_; /* 0: empty, 1: one segment held, 2: merging in buf */
    struct vnet_gro_flow_ f_;
    uint64_t merged_, passed_, bad_csum_;
};

/* Set up @g to build merged frames in the caller's buffer [buf, buf + cap) (VNET_GRO_BUF_SIZE
 * bytes never limit merging; less is allowed, merges then stop earlier). @g keeps @buf until it
 * is initialised again. @flags: VNET_GRO_F_*. Returns 0, or VNET_EINVAL for NULL pointers or
 * cap < 128. */
VNET_API int vnet_gro_init(struct vnet_gro *g, uint8_t *buf, size_t cap, unsigned flags);

/* Offer the next received inner Ethernet frame [frame, frame + len), in arrival order.
 *
 * Consecutive in-order TCP segments of one flow are merged, under the rules of Linux'
 * tcp_gro_receive, simplified: same L2 header, IPs and ports; IPv4 without options and not
 * fragmented, valid header checksum, same TOS, TTL and DF, IDs incrementing unless DF is set;
 * IPv6 with TCP as next header and the same first word and hop limit; TCP seq the expected one,
 * ACK set with the same ack number, the same window and options (byte for byte), no SYN, FIN,
 * RST, URG or CWR; a segment with PSH, or shorter than the first, is included and ends the
 * merge; a longer one starts a new one; at most VNET_GSO_MAX_SEGS segments and a 65535-byte IP
 * packet. Anything else first ends the current merge, then is passed through unchanged or
 * starts a new one.
 *
 * Writes 0, 1 or 2 frames to emit, in order, to out[0..) and returns how many. A pass-through
 * frame has buf = the caller's frame, off 0, len as given, no offload metadata. A merged frame
 * has buf = the @g buffer, gso_type VNET_GSO_TCPV4/TCPV6, gso_size = the first segment's
 * payload, hdr_len, VNET_CSUM_PARTIAL with csum_start/csum_offset at the TCP checksum, which
 * holds the pseudo-header sum (what a TAP with IFF_VNET_HDR takes), IPv4 total length and header
 * checksum recomputed, PSH set when a merged segment had it. (A merged frame that turned out to
 * hold a single segment is passed through as the original frame instead.)
 *
 * Lifetimes: the outputs are valid until the next vnet_gro_feed / vnet_gro_flush / init on @g
 * (the caller writes them out first). @g may keep a pointer to @frame (a held first segment):
 * the caller keeps every frame it fed valid and unchanged until a later call has returned it or
 * vnet_gro_flush has been called. Typically: feed every frame of a received UDP GRO batch,
 * emitting outputs as they come, then vnet_gro_flush before reusing the receive buffer.
 *
 * Returns the number of outputs, or VNET_EINVAL for NULL pointers (nothing changes). Frames of
 * any content and length are accepted (non-TCP, malformed and short ones pass through). */
VNET_API int vnet_gro_feed(struct vnet_gro *g, uint8_t *frame, size_t len, struct vnet_pkt out[2]);

/* End the current merge: writes the held or merged frame, if any, to *out and returns 1, or
 * returns 0 when nothing was pending (VNET_EINVAL for NULL pointers). Same lifetimes as
 * vnet_gro_feed. */
VNET_API int vnet_gro_flush(struct vnet_gro *g, struct vnet_pkt *out);

/* Counters since vnet_gro_init: segments merged into larger frames, frames passed through, and
 * segments refused because their TCP checksum was wrong (VNET_GRO_F_VERIFY_CSUM). Any pointer
 * may be NULL. */
VNET_API void vnet_gro_stats(const struct vnet_gro *g, uint64_t *merged, uint64_t *passed,
                             uint64_t *bad_csum);

#ifdef __cplusplus
}
#endif
#endif
