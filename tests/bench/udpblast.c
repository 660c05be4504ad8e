/* udpblast: a batched UDP load generator and sink for the overlay benchmark, because iperf3
 * tops out near 280 kpps with small datagrams here.
 *
 *   udpblast send DST_IP PORT SIZE SECONDS    sendmmsg bursts of 64 datagrams of SIZE bytes
 *   udpblast recv PORT SECONDS                count what arrives; prints
 *                                             "received=N pps=P mbps=M"
 *
 * The sender prints "sent=N pps=P". The receiver counts from the first datagram until the flow
 * has been quiet for 0.5 s (what was queued on the way is still counted, so received/sent is
 * the loss), at most SECONDS+5 s after the first datagram, or gives up after 2*SECONDS+5 s with
 * nothing; P is N over the time from the first to the last datagram. It can be started before
 * the sender without measuring idle time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int do_send(const char *ip, int port, int size, double secs)
{
    struct sockaddr_in6 dst6;
    struct sockaddr_in dst4;
    struct sockaddr *dst;
    socklen_t dlen;
    int fam;
    memset(&dst6, 0, sizeof(dst6));
    memset(&dst4, 0, sizeof(dst4));
    if (inet_pton(AF_INET, ip, &dst4.sin_addr) == 1) {
        dst4.sin_family = AF_INET;
        dst4.sin_port = htons((uint16_t)port);
        dst = (struct sockaddr *)&dst4;
        dlen = sizeof(dst4);
        fam = AF_INET;
    } else if (inet_pton(AF_INET6, ip, &dst6.sin6_addr) == 1) {
        dst6.sin6_family = AF_INET6;
        dst6.sin6_port = htons((uint16_t)port);
        dst = (struct sockaddr *)&dst6;
        dlen = sizeof(dst6);
        fam = AF_INET6;
    } else {
        fprintf(stderr, "udpblast: bad address %s\n", ip);
        return 2;
    }
    int fd = socket(fam, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, dst, dlen) < 0) {
        perror("udpblast: socket/connect");
        return 1;
    }
    static char buf[65536];
    memset(buf, 'x', sizeof(buf));
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = buf;
        iov[i].iov_len = (size_t)size;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long sent = 0;
    double t0 = now(), t = t0;
    do {
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n > 0)
            sent += (unsigned long)n;
        else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED)
            break;
        t = now();
    } while (t - t0 < secs);
    printf("sent=%lu pps=%.0f\n", sent, (double)sent / (t - t0));
    close(fd);
    return 0;
}

static int do_recv(int port, double secs)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    int zero = 0, big = 32 << 20;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_port = htons((uint16_t)port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        perror("udpblast: bind");
        return 1;
    }
    static char bufs[BATCH][2048];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof(bufs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    printf("ready\n");
    fflush(stdout);
    unsigned long got = 0, bytes = 0;
    double t0 = 0, last = 0, start = now();
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) > 0) {
            int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            if (n > 0) {
                last = now();
                if (!got)
                    t0 = last;
                got += (unsigned long)n;
                for (int i = 0; i < n; i++)
                    bytes += msgs[i].msg_len;
            }
        }
        double t = now();
        if (got && (t - last >= 0.5 || t - t0 >= secs + 5))
            break;
        if (!got && t - start > 2 * secs + 5)
            break;
    }
    double el = got && last > t0 ? last - t0 : 1;
    printf("received=%lu pps=%.0f mbps=%.1f\n", got, (double)got / el,
           (double)bytes * 8 / el / 1e6);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "send") == 0)
        return do_send(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
    if (argc == 4 && strcmp(argv[1], "recv") == 0)
        return do_recv(atoi(argv[2]), atof(argv[3]));
    fprintf(stderr, "usage: udpblast send DST_IP PORT SIZE SECONDS | recv PORT SECONDS\n");
    return 2;
}
