/* Internet checksums (RFC 1071) shared inside libvnet: the folds the hot paths inline, and where
 * the L4 checksum of a whole Ethernet frame lies. The public checksum functions are declared in
 * include/vnet/encap.h (vnet_csum*) and include/vnet/offload.h (vnet_csum_copy,
 * vnet_csum_complete); all of them are defined in csum.c. Private, not installed. */
#ifndef VNET_CSUM_INT_H
#define VNET_CSUM_INT_H

#include <stdbool.h>
#include <stdint.h>

/* Fold a 64-bit ones'-complement accumulator to 16 bits (not complemented). */
static inline uint32_t vnet__csum_fold64(uint64_t s)
{
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffu) + (s >> 16);
    s = (s & 0xffffu) + (s >> 16);
    return (uint32_t)s;
}

/* Fold a 32-bit ones'-complement accumulator to 16 bits (not complemented). */
static inline uint32_t vnet__csum_fold32(uint32_t s)
{
    s = (s & 0xffffu) + (s >> 16);
    s = (s & 0xffffu) + (s >> 16);
    return s;
}

/* The value for the checksum field of a UDP datagram or TCP segment whose whole sum (pseudo-
 * header included, field zero) is @sum. 0 is sent as 0xffff: the same number in ones'
 * complement, and the only form UDP allows (0 means "no checksum"). */
static inline uint16_t vnet__csum_l4(uint32_t sum)
{
    uint16_t c = (uint16_t)~vnet__csum_fold32(sum);
    return c ? c : 0xffff;
}

/* Where the L4 checksum of a frame is: Ethernet (one optional 802.1Q/AD tag), IPv4 or IPv6
 * without extension headers, TCP or UDP; offsets from the frame's start. 0 or -1. */
int vnet__csum_l4_find(const uint8_t *f, uint32_t len, uint16_t *start, uint16_t *off);

/* A frame from a local sender with transmit checksum offload on (a veth peer) carries in its
 * TCP/UDP checksum field only the pseudo-header sum, and when it comes through XDP nothing
 * says so. True, with where the checksum is, when @f (as for vnet__csum_l4_find, not a
 * fragment, not UDP without a checksum, no bytes after the IP packet) holds exactly that: the
 * checksum is still to be computed over the rest of the frame. A complete frame whose checksum
 * happens to be that value computes to the same value again. */
bool vnet__csum_l4_pending(const uint8_t *f, uint32_t len, uint16_t *start, uint16_t *off);

#endif
