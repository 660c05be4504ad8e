/* tests/helpers: "mem", an in-memory port backend for tests that drive a datapath without root,
 * devices or sockets.
 *
 * A test creates a memport with a name (memport_create), then opens it like any port:
 * vnet_port_open("mem:NAME", ...). The backend is registered through the public backend API
 * (include/vnet/sys/port.h) by memport_register(). Each queue of a memport has two FIFOs:
 *
 *   rx  frames the test injects (memport_inject); the datapath reads them with rx_burst. For an
 *       underlay port, each carries the sender's endpoint (vnet_pkt.peer).
 *   tx  copies of what the datapath sent with tx_burst, with the destination endpoint and the
 *       offload fields; the test takes them (memport_take) oldest first.
 *
 * The port's fd for a queue is an eventfd, readable while that queue's rx FIFO holds frames
 * (what vnet_datapath_fds() hands out). Frames are copied in and out; the helper allocates
 * freely (it is test code, not a data path).
 *
 * Thread-safety: none. One thread injects, polls the datapath and takes, as the unit tests do.
 */
#ifndef VNET_TEST_MEMPORT_H
#define VNET_TEST_MEMPORT_H

#include "vnet/port.h"
#include "vnet/types.h"

#include <stddef.h>
#include <stdint.h>

#define MEMPORT_MAX_QUEUES 4

struct memport;

struct memport_opts {
    const char *name;           /* the ARG of "mem:ARG"; at most 15 characters */
    unsigned queues;            /* 0 or 1: one queue; at most MEMPORT_MAX_QUEUES */
    uint32_t mtu;               /* reported by get_info (0: 1500); cfg.mtu at open overrides */
    struct vnet_mac mac;        /* reported by get_info */
    uint32_t caps;              /* VNET_PORT_CAP_* reported by get_info */
    struct vnet_endpoint local; /* reported by get_info (an underlay's bound address) */
    size_t tx_limit; /* frames a queue's tx FIFO holds; when full, tx_burst takes no more (the
                        datapath then counts a tx drop). 0: unlimited */
};

/* A frame as injected or as sent. */
struct memport_frame {
    uint8_t *data; /* owned by the frame: memport_frame_free() */
    size_t len;
    struct vnet_endpoint peer; /* rx: the sender; tx: the destination (underlay ports) */
    uint8_t gso_type, csum_flags;
    uint16_t gso_size, hdr_len, csum_start, csum_offset;
};

/* Register the "mem" backend. Idempotent: returns 0 when it is (already) registered, or the
 * error of vnet_port_register(). */
int memport_register(void);

/* Create a memport that "mem:NAME" opens. Returns 0, VNET_EINVAL (bad options), VNET_EEXIST
 * (the name is taken), VNET_ENOSPC (too many memports) or VNET_ENOMEM. Opening it does not
 * transfer ownership: the test destroys it after closing the port. */
int memport_create(const struct memport_opts *o, struct memport **out);

/* Free the memport and every frame still queued. Call after vnet_port_close(). NULL ignored. */
void memport_destroy(struct memport *m);

/* Queue a copy of @len bytes at @data on @queue's rx FIFO, from @from (an underlay's sender;
 * NULL for a virtual port). Returns 0, VNET_EINVAL or VNET_ENOMEM. */
int memport_inject(struct memport *m, unsigned queue, const void *data, size_t len,
                   const struct vnet_endpoint *from);

/* The same with offload metadata: @f->data/len are copied, every other field is handed to the
 * datapath as it is. */
int memport_inject_frame(struct memport *m, unsigned queue, const struct memport_frame *f);

/* Frames the datapath sent on @queue that the test has not taken yet. */
size_t memport_tx_count(const struct memport *m, unsigned queue);

/* Frames injected on @queue that the datapath has not read yet. */
size_t memport_rx_count(const struct memport *m, unsigned queue);

/* Take the oldest frame sent on @queue into *out (the caller then owns out->data). Returns 0,
 * or VNET_ENOENT when nothing was sent, VNET_EINVAL for a bad queue. */
int memport_take(struct memport *m, unsigned queue, struct memport_frame *out);

/* Free the data of a taken frame and zero it. */
void memport_frame_free(struct memport_frame *f);

/* Drop every queued frame, both directions, all queues. */
void memport_clear(struct memport *m);

/* Whether a vnet_port has @m open now, and how many times it was opened in all. */
int memport_is_open(const struct memport *m);
unsigned memport_open_count(const struct memport *m);

/* Frames rx_burst had to drop because they did not fit the datapath's buffer. */
uint64_t memport_rx_dropped(const struct memport *m);

#endif
