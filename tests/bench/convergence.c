/* Controller convergence benchmark. Starts a vnet-controller (a child process, fresh SQLite
 * database), opens N real node sessions to it over TCP from this one process (libuv), and
 * measures, for N = 100, 1,000 and 10,000:
 *   - the time from a `node add` request to every session having received and decoded the
 *     delta carrying it (p50 and p99 over the sessions, median over several changes);
 *   - the sustained rate of committed changes with push (a client adds nodes back to back;
 *     the rate counts until every session has the last one);
 *   - the controller's resident memory with N sessions open.
 * It prints figures; it is not a test.
 *
 * usage: vnet-convergence CONTROLLER_BIN [N...]     (default N: 100 1000 10000)
 */
#include <vnet/client.h>
#include <vnet/error.h>
#include <vnet/proto.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define NODE_PORT 17700
#define API_PORT  17701

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct sess {
    uv_tcp_t tcp;
    uv_connect_t conn;
    struct vnet_frame_reader rd;
    uint64_t rev;  /* highest revision received */
    double got_at; /* when the watched revision arrived */
    int up;
};

static struct sess *sess;
static int nsess;
static uint64_t watch_rev; /* the revision whose arrival is timed */
static int nwatch_done;
static int nup;
static char rxbuf[65536];

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h, (void)s;
    *b = uv_buf_init(rxbuf, sizeof(rxbuf));
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void send_msg(struct sess *s, const struct vnet_msg *m)
{
    struct vnet_buf b = {0};
    if (vnet_msg_encode(m, &b)) {
        vnet_buf_free(&b);
        return;
    }
    uv_write_t *w = malloc(sizeof(*w));
    w->data = b.data;
    uv_buf_t buf = uv_buf_init((char *)b.data, (unsigned)b.len);
    if (uv_write(w, (uv_stream_t *)&s->tcp, &buf, 1, on_written)) {
        free(b.data);
        free(w);
    }
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct sess *s = st->data;
    if (n < 0) {
        fprintf(stderr, "session closed: %s\n", uv_strerror((int)n));
        uv_read_stop(st);
        return;
    }
    vnet_frame_reader_feed(&s->rd, (const uint8_t *)buf->base, (size_t)n);
    const uint8_t *body;
    size_t len;
    while (vnet_frame_reader_next(&s->rd, &body, &len) == 1) {
        struct vnet_msg m;
        if (vnet_msg_decode(body, len, &m, NULL, 0))
            continue;
        if (m.type == VNET_MSG_WELCOME) {
            s->up = 1;
            nup++;
        } else if (m.type == VNET_MSG_DELTA || m.type == VNET_MSG_SNAPSHOT) {
            uint64_t to = m.type == VNET_MSG_DELTA ? m.u.delta.to : m.u.snapshot.network.revision;
            if (to > s->rev) {
                uint64_t w = __atomic_load_n(&watch_rev, __ATOMIC_ACQUIRE);
                if (w && s->rev < w && to >= w) {
                    s->got_at = now_ms();
                    __atomic_add_fetch(&nwatch_done, 1, __ATOMIC_RELEASE);
                }
                s->rev = to;
            }
            struct vnet_msg ack;
            memset(&ack, 0, sizeof(ack));
            ack.type = VNET_MSG_ACK;
            ack.u.ack.revision = to;
            send_msg(s, &ack);
        } else if (m.type == VNET_MSG_ERROR) {
            fprintf(stderr, "controller error: %s\n", m.u.error.text);
        }
        vnet_msg_free(&m);
    }
}

static uint64_t start_rev;

static void on_connect(uv_connect_t *c, int status)
{
    struct sess *s = c->data;
    if (status) {
        fprintf(stderr, "connect: %s\n", uv_strerror(status));
        return;
    }
    s->tcp.data = s;
    uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = VNET_PROTO_VERSION;
    m.u.hello.role = VNET_ROLE_NODE;
    strcpy(m.u.hello.network, "bench");
    snprintf(m.u.hello.node, sizeof(m.u.hello.node), "s%d", (int)(s - sess));
    m.u.hello.revision = start_rev; /* up to date: only deltas from here on */
    s->rev = start_rev;
    send_msg(s, &m);
}

static int request(struct vnet_client *c, enum vnet_req_op op, const char *node,
                   struct vnet_msg *out)
{
    struct vnet_msg_request q;
    memset(&q, 0, sizeof(q));
    q.op = op;
    strcpy(q.network, "bench");
    if (node)
        snprintf(q.node, sizeof(q.node), "%s", node);
    if (op == VNET_REQ_NETWORK_CREATE) {
        q.has = VNET_REQ_HAS_SUBNET4;
        vnet_prefix_parse("10.0.0.0/16", &q.subnet4);
    }
    struct vnet_msg m;
    char err[256];
    int rc = vnet_client_request(c, &q, &m, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "request: %s\n", err);
        return rc;
    }
    rc = m.u.reply.code;
    if (rc)
        fprintf(stderr, "refused: %s\n", m.u.reply.text);
    if (out)
        *out = m;
    else
        vnet_msg_free(&m);
    return rc;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct trigger {
    struct vnet_client *cl;
    int changes, burst;
    double *p50, *p99, rate;
    uv_async_t *done;
};

#define BURST_CLIENTS 4

struct burster {
    int first, count;
};

static void *burster_main(void *arg)
{
    struct burster *b = arg;
    struct vnet_client *cl;
    char api[32];
    snprintf(api, sizeof(api), "127.0.0.1:%d", API_PORT);
    if (vnet_client_connect(api, 10000, &cl, NULL, 0) != 0)
        return NULL;
    for (int k = 0; k < b->count; k++) {
        char name[32];
        snprintf(name, sizeof(name), "y%d", b->first + k);
        if (request(cl, VNET_REQ_NODE_ADD, name, NULL) != 0)
            break;
    }
    vnet_client_close(cl);
    return NULL;
}

/* Runs beside the loop: one change at a time, timed; then a burst. */
static void *driver(void *arg)
{
    struct trigger *t = arg;
    double *lat = malloc(sizeof(double) * (size_t)nsess);
    for (int k = 0; k < t->changes; k++) {
        struct vnet_msg m;
        char name[32];
        snprintf(name, sizeof(name), "x%d", k);
        /* the node add's revision is the next one */
        __atomic_store_n(&nwatch_done, 0, __ATOMIC_RELEASE);
        uint64_t next = start_rev + (uint64_t)k + 1;
        __atomic_store_n(&watch_rev, next, __ATOMIC_RELEASE);
        double t0 = now_ms();
        if (request(t->cl, VNET_REQ_NODE_ADD, name, &m) != 0)
            break;
        vnet_msg_free(&m);
        while (__atomic_load_n(&nwatch_done, __ATOMIC_ACQUIRE) < nsess && now_ms() - t0 < 30000)
            usleep(200);
        for (int i = 0; i < nsess; i++)
            lat[i] = sess[i].got_at - t0;
        qsort(lat, (size_t)nsess, sizeof(double), cmp_d);
        t->p50[k] = lat[nsess / 2];
        t->p99[k] =
            lat[(int)((double)nsess * 0.99) < nsess ? (int)((double)nsess * 0.99) : nsess - 1];
    }
    /* Sustained: BURST_CLIENTS clients add nodes back to back (commits that land in the same
     * loop iteration share one delta), then wait for everyone to have the last one. */
    uint64_t last = start_rev + (uint64_t)t->changes + (uint64_t)t->burst;
    __atomic_store_n(&nwatch_done, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&watch_rev, last, __ATOMIC_RELEASE);
    double t0 = now_ms();
    pthread_t th[BURST_CLIENTS];
    struct burster b[BURST_CLIENTS];
    for (int k = 0; k < BURST_CLIENTS; k++) {
        b[k].first = k * (t->burst / BURST_CLIENTS);
        b[k].count = t->burst / BURST_CLIENTS;
        pthread_create(&th[k], NULL, burster_main, &b[k]);
    }
    for (int k = 0; k < BURST_CLIENTS; k++)
        pthread_join(th[k], NULL);
    while (__atomic_load_n(&nwatch_done, __ATOMIC_ACQUIRE) < nsess && now_ms() - t0 < 60000)
        usleep(200);
    t->rate = t->burst / ((now_ms() - t0) / 1000.0);
    free(lat);
    uv_async_send(t->done);
    return NULL;
}

static void on_done(uv_async_t *a)
{
    uv_stop(a->loop);
}

static int run(const char *bin, int n)
{
    char dir[] = "/tmp/vnet-conv-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char db[64];
    snprintf(db, sizeof(db), "%s/c.db", dir);
    pid_t pid = fork();
    if (pid == 0) {
        char l[32], a[32];
        snprintf(l, sizeof(l), "127.0.0.1:%d", NODE_PORT);
        snprintf(a, sizeof(a), "127.0.0.1:%d", API_PORT);
        /* Every simulated node connects from 127.0.0.1 at once: lift the caps on
         * unauthenticated connections (per address and in total), which are for attackers. */
        execl(bin, bin, "--db", db, "--listen", l, "--api", a, "--keepalive", "5000",
              "--preauth-max", "1000000", "--preauth-per-ip", "1000000", (char *)NULL);
        _exit(127);
    }
    char api[32];
    snprintf(api, sizeof(api), "127.0.0.1:%d", API_PORT);
    struct vnet_client *cl = NULL;
    for (int i = 0; i < 200 && !cl; i++) {
        if (vnet_client_connect(api, 5000, &cl, NULL, 0) != 0) {
            cl = NULL;
            usleep(25000);
        }
    }
    if (!cl) {
        fprintf(stderr, "controller did not come up\n");
        kill(pid, SIGKILL);
        return 1;
    }
    request(cl, VNET_REQ_NETWORK_CREATE, NULL, NULL);
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "s%d", i);
        if (request(cl, VNET_REQ_NODE_ADD, name, NULL) != 0)
            return 1;
    }
    double add_ms = now_ms() - t0;
    struct vnet_msg m;
    request(cl, VNET_REQ_NETWORK_SHOW, NULL, &m);
    start_rev = m.u.reply.networks[0].revision;
    vnet_msg_free(&m);

    uv_loop_t loop;
    uv_loop_init(&loop);
    sess = calloc((size_t)n, sizeof(*sess));
    nsess = n;
    nup = 0;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", NODE_PORT, &sa);
    for (int i = 0; i < n; i++) {
        vnet_frame_reader_init(&sess[i].rd, 0);
        uv_tcp_init(&loop, &sess[i].tcp);
        sess[i].conn.data = &sess[i];
        uv_tcp_connect(&sess[i].conn, &sess[i].tcp, (const struct sockaddr *)&sa, on_connect);
    }
    t0 = now_ms();
    while (nup < n && now_ms() - t0 < 60000)
        uv_run(&loop, UV_RUN_ONCE);
    double connect_ms = now_ms() - t0;
    long rss = rss_kb(pid);

    enum { CHANGES = 21, BURST = 200 };
    double p50[CHANGES], p99[CHANGES];
    uv_async_t done;
    uv_async_init(&loop, &done, on_done);
    struct trigger t = {
        .cl = cl, .changes = CHANGES, .burst = BURST, .p50 = p50, .p99 = p99, .done = &done};
    pthread_t th;
    pthread_create(&th, NULL, driver, &t);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    long rss_after = rss_kb(pid);
    qsort(p50, CHANGES, sizeof(double), cmp_d);
    qsort(p99, CHANGES, sizeof(double), cmp_d);
    printf("%7d %9.0f %9.0f %9.2f %9.2f %10.0f %9.1f %9.1f %8.1f\n", n, n / (add_ms / 1000.0),
           connect_ms, p50[CHANGES / 2], p99[CHANGES / 2], t.rate, rss / 1024.0, rss_after / 1024.0,
           rss_after * 1024.0 / n / 1024.0);
    fflush(stdout);

    vnet_client_close(cl);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < n; i++)
        uv_close((uv_handle_t *)&sess[i].tcp, NULL);
    uv_close((uv_handle_t *)&done, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    for (int i = 0; i < n; i++)
        vnet_frame_reader_free(&sess[i].rd);
    free(sess);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CONTROLLER_BIN [N...]\n", argv[0]);
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max; /* 10,000 sessions need 10,000 descriptors, here and there */
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    printf("controller convergence: N node sessions in one process over loopback TCP; latency\n"
           "from a node add request to every session holding the delta (medians of 21 changes)\n");
    printf("%7s %9s %9s %9s %9s %10s %9s %9s %8s\n", "N", "adds/s", "conn ms", "p50 ms", "p99 ms",
           "push ch/s", "RSS MiB", "RSS end", "KiB/ses");
    int rc = 0;
    if (argc == 2) {
        rc |= run(argv[1], 100);
        rc |= run(argv[1], 1000);
        rc |= run(argv[1], 10000);
    }
    for (int i = 2; i < argc; i++)
        rc |= run(argv[1], atoi(argv[i]));
    printf(
        "targets: N = 1,000 p99 <= 100 ms; N = 10,000 p99 <= 1 s; 10,000 sessions in <= 1 GiB\n");
    return rc;
}
