/* The "mem" port backend: per-queue FIFOs of copied frames, an eventfd per queue. */
#include "memport.h"

#include "vnet/error.h"
#include "vnet/sys/port.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_MEMPORTS 16

struct node {
    struct node *next;
    struct memport_frame f;
};

struct fifo {
    struct node *head, *tail;
    size_t n;
};

struct memport {
    char name[16];
    unsigned queues;
    uint32_t mtu;
    struct vnet_mac mac;
    uint32_t caps;
    struct vnet_endpoint local;
    size_t tx_limit;
    struct fifo rx[MEMPORT_MAX_QUEUES], tx[MEMPORT_MAX_QUEUES];
    int efd[MEMPORT_MAX_QUEUES]; /* readable while rx[q] holds frames */
    bool open;
    unsigned opens;
    uint64_t rx_dropped;
};

static struct memport *all[MAX_MEMPORTS];

static void fifo_push(struct fifo *q, struct node *n)
{
    n->next = NULL;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    q->n++;
}

static struct node *fifo_pop(struct fifo *q)
{
    struct node *n = q->head;
    if (!n)
        return NULL;
    q->head = n->next;
    if (!q->head)
        q->tail = NULL;
    q->n--;
    return n;
}

static void fifo_clear(struct fifo *q)
{
    struct node *n;
    while ((n = fifo_pop(q)) != NULL) {
        free(n->f.data);
        free(n);
    }
}

/* A node holding a copy of @f (its data copied, the rest as is). */
static struct node *node_copy(const struct memport_frame *f)
{
    struct node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->f = *f;
    n->f.data = malloc(f->len ? f->len : 1);
    if (!n->f.data) {
        free(n);
        return NULL;
    }
    if (f->len)
        memcpy(n->f.data, f->data, f->len);
    return n;
}

static void efd_set(int fd, bool readable)
{
    uint64_t v = 1;
    ssize_t r = readable ? write(fd, &v, sizeof(v)) : read(fd, &v, sizeof(v));
    (void)r; /* EAGAIN: already in that state */
}

/* ---- the backend ---- */

static int mem_open(const char *arg, const struct vnet_port_cfg *cfg, void **state)
{
    for (int i = 0; i < MAX_MEMPORTS; i++) {
        struct memport *m = all[i];
        if (!m || strcmp(m->name, arg) != 0)
            continue;
        if (m->open)
            return VNET_EBUSY;
        if (cfg && cfg->queues > m->queues)
            return VNET_ENOTSUP;
        if (cfg && cfg->mtu)
            m->mtu = cfg->mtu;
        if (cfg && cfg->set_mac)
            m->mac = cfg->mac;
        m->open = true;
        m->opens++;
        *state = m;
        return 0;
    }
    return VNET_ENOENT;
}

static void mem_close(void *state)
{
    struct memport *m = state;
    m->open = false; /* the frames stay for the test to look at */
}

static int mem_rx_burst(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct memport *m = state;
    if (queue >= m->queues)
        return VNET_EINVAL;
    struct fifo *q = &m->rx[queue];
    int got = 0;
    while (got < n && q->head) {
        struct node *nd = fifo_pop(q);
        struct vnet_pkt *p = pkts[got];
        if (p->off > p->cap || nd->f.len > p->cap - p->off) {
            m->rx_dropped++;
        } else {
            memcpy(p->buf + p->off, nd->f.data, nd->f.len);
            p->len = (uint32_t)nd->f.len;
            p->gso_type = nd->f.gso_type;
            p->csum_flags = nd->f.csum_flags;
            p->gso_size = nd->f.gso_size;
            p->hdr_len = nd->f.hdr_len;
            p->csum_start = nd->f.csum_start;
            p->csum_offset = nd->f.csum_offset;
            p->queue = (uint16_t)queue;
            p->peer = nd->f.peer;
            got++;
        }
        free(nd->f.data);
        free(nd);
    }
    if (!q->head)
        efd_set(m->efd[queue], false);
    return got;
}

static int mem_tx_burst(void *state, unsigned queue, struct vnet_pkt **pkts, int n)
{
    struct memport *m = state;
    if (queue >= m->queues)
        return VNET_EINVAL;
    struct fifo *q = &m->tx[queue];
    int taken = 0;
    for (; taken < n; taken++) {
        if (m->tx_limit && q->n >= m->tx_limit)
            break;
        const struct vnet_pkt *p = pkts[taken];
        struct memport_frame f = {
            .data = vnet_pkt_data(p),
            .len = p->len,
            .peer = p->peer,
            .gso_type = p->gso_type,
            .csum_flags = p->csum_flags,
            .gso_size = p->gso_size,
            .hdr_len = p->hdr_len,
            .csum_start = p->csum_start,
            .csum_offset = p->csum_offset,
        };
        struct node *nd = node_copy(&f);
        if (!nd)
            break;
        fifo_push(q, nd);
    }
    return taken ? taken : VNET_EAGAIN;
}

static int mem_fd(void *state, unsigned queue)
{
    const struct memport *m = state;
    return queue < m->queues ? m->efd[queue] : VNET_EINVAL;
}

static int mem_get_info(void *state, struct vnet_port_info *out)
{
    const struct memport *m = state;
    memset(out, 0, sizeof(*out));
    out->backend = "mem";
    memcpy(out->ifname, m->name, sizeof(out->ifname));
    out->mac = m->mac;
    out->mtu = m->mtu;
    out->local = m->local;
    out->caps = m->caps;
    out->queues = m->queues;
    return 0;
}

static const struct vnet_port_ops mem_ops = {
    .version = VNET_PORT_OPS_VERSION,
    .name = "mem",
    .open = mem_open,
    .close = mem_close,
    .rx_burst = mem_rx_burst,
    .tx_burst = mem_tx_burst,
    .fd = mem_fd,
    .get_info = mem_get_info,
};

int memport_register(void)
{
    int rc = vnet_port_register(&mem_ops);
    return rc == VNET_EEXIST ? 0 : rc;
}

/* ---- the test's side ---- */

int memport_create(const struct memport_opts *o, struct memport **out)
{
    if (!o || !out || !o->name || !o->name[0] || strlen(o->name) >= sizeof(all[0]->name) ||
        o->queues > MEMPORT_MAX_QUEUES)
        return VNET_EINVAL;
    int slot = -1;
    for (int i = 0; i < MAX_MEMPORTS; i++) {
        if (all[i] && strcmp(all[i]->name, o->name) == 0)
            return VNET_EEXIST;
        if (!all[i] && slot < 0)
            slot = i;
    }
    if (slot < 0)
        return VNET_ENOSPC;
    struct memport *m = calloc(1, sizeof(*m));
    if (!m)
        return VNET_ENOMEM;
    strcpy(m->name, o->name);
    m->queues = o->queues ? o->queues : 1;
    m->mtu = o->mtu ? o->mtu : 1500;
    m->mac = o->mac;
    m->caps = o->caps;
    m->local = o->local;
    m->tx_limit = o->tx_limit;
    for (unsigned q = 0; q < MEMPORT_MAX_QUEUES; q++)
        m->efd[q] = -1;
    for (unsigned q = 0; q < m->queues; q++) {
        m->efd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (m->efd[q] < 0) {
            memport_destroy(m);
            return VNET_ENOMEM;
        }
    }
    all[slot] = m;
    *out = m;
    return 0;
}

void memport_destroy(struct memport *m)
{
    if (!m)
        return;
    for (int i = 0; i < MAX_MEMPORTS; i++)
        if (all[i] == m)
            all[i] = NULL;
    memport_clear(m);
    for (unsigned q = 0; q < MEMPORT_MAX_QUEUES; q++)
        if (m->efd[q] >= 0)
            close(m->efd[q]);
    free(m);
}

int memport_inject_frame(struct memport *m, unsigned queue, const struct memport_frame *f)
{
    if (!m || !f || queue >= m->queues || (f->len && !f->data))
        return VNET_EINVAL;
    struct node *nd = node_copy(f);
    if (!nd)
        return VNET_ENOMEM;
    fifo_push(&m->rx[queue], nd);
    efd_set(m->efd[queue], true);
    return 0;
}

int memport_inject(struct memport *m, unsigned queue, const void *data, size_t len,
                   const struct vnet_endpoint *from)
{
    struct memport_frame f;
    memset(&f, 0, sizeof(f));
    f.data = (uint8_t *)data;
    f.len = len;
    if (from)
        f.peer = *from;
    return memport_inject_frame(m, queue, &f);
}

size_t memport_tx_count(const struct memport *m, unsigned queue)
{
    return queue < m->queues ? m->tx[queue].n : 0;
}

size_t memport_rx_count(const struct memport *m, unsigned queue)
{
    return queue < m->queues ? m->rx[queue].n : 0;
}

int memport_take(struct memport *m, unsigned queue, struct memport_frame *out)
{
    if (!m || !out || queue >= m->queues)
        return VNET_EINVAL;
    struct node *nd = fifo_pop(&m->tx[queue]);
    if (!nd)
        return VNET_ENOENT;
    *out = nd->f;
    free(nd);
    return 0;
}

void memport_frame_free(struct memport_frame *f)
{
    if (!f)
        return;
    free(f->data);
    memset(f, 0, sizeof(*f));
}

void memport_clear(struct memport *m)
{
    for (unsigned q = 0; q < m->queues; q++) {
        fifo_clear(&m->rx[q]);
        fifo_clear(&m->tx[q]);
        efd_set(m->efd[q], false);
    }
}

int memport_is_open(const struct memport *m)
{
    return m->open;
}

unsigned memport_open_count(const struct memport *m)
{
    return m->opens;
}

uint64_t memport_rx_dropped(const struct memport *m)
{
    return m->rx_dropped;
}
