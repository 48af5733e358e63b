/* echo_client: a closed-loop load client for a TCP echo server, used by bench/echo.py.
 *
 *   echo_client HOST PORT CONNS DEPTH SIZE WARMUP_S MEASURE_S
 *
 * Opens CONNS connections; each keeps DEPTH messages of SIZE bytes in flight: a new message is
 * sent each time a whole message's worth of bytes has come back. Every byte received is checked
 * against what was sent (a position-dependent pattern). One thread, one epoll loop, edge-triggered.
 *
 * On stdout: "start" when the warm-up ends (the caller samples the server's CPU then), then one
 * line of key=value results for the measured window: round trips completed, payload bytes
 * received (one way), seconds, the client's own user/system CPU seconds, errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)
#define PERIOD 251 /* a prime, so the pattern does not line up with message sizes */

struct cn {
    int fd;
    int open;
    uint64_t tx;     /* bytes written */
    uint64_t rx;     /* bytes read back */
    uint64_t tosend; /* bytes due to be written */
};

static unsigned char pat[CHUNK + PERIOD];
static unsigned char rbuf[CHUNK];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(int user)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct timeval tv = user ? ru.ru_utime : ru.ru_stime;
    return tv.tv_sec + tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT CONNS DEPTH SIZE WARMUP_S MEASURE_S\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), nconn = atoi(argv[3]), depth = atoi(argv[4]);
    uint64_t size = strtoull(argv[5], NULL, 10);
    double warmup = atof(argv[6]), measure = atof(argv[7]);
    if (nconn < 1 || depth < 1 || size < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof pat; i++)
        pat[i] = (unsigned char)(i % PERIOD);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad host %s\n", host);
        return 2;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct cn *cs = calloc(nconn, sizeof *cs);
    if (ep < 0 || !cs) {
        perror("setup");
        return 1;
    }
    /* Blocking connects: loopback completes them at once, and the server's backlog takes them. */
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            fprintf(stderr, "connect %d: %s\n", i, strerror(errno));
            return 1;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
            perror("fcntl");
            return 1;
        }
        cs[i].fd = fd;
        cs[i].open = 1;
        cs[i].tosend = (uint64_t)depth * size;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP,
                                 .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }

    uint64_t msgs = 0, bytes = 0, errors = 0, mismatches = 0;
    int measuring = 0, open_conns = nconn;
    double t0 = now_s(), tstart = t0 + warmup, tend = tstart + measure, tm = 0;
    double u0 = 0, s0 = 0;
    struct epoll_event evs[512];

    while (open_conns > 0) {
        double t = now_s();
        if (!measuring && t >= tstart) {
            measuring = 1;
            msgs = bytes = 0;
            tm = t;
            u0 = cpu_s(1);
            s0 = cpu_s(0);
            printf("start\n");
            fflush(stdout);
        }
        if (measuring && t >= tend)
            break;
        int n = epoll_wait(ep, evs, 512, 50);
        for (int k = 0; k < n; k++) {
            struct cn *c = &cs[evs[k].data.u32];
            if (!c->open)
                continue;
            int dead = 0;
            /* read everything pending; each completed message schedules the next one */
            for (;;) {
                ssize_t r = read(c->fd, rbuf, sizeof rbuf);
                if (r > 0) {
                    if (memcmp(rbuf, pat + c->rx % PERIOD, (size_t)r) != 0)
                        mismatches++;
                    uint64_t before = c->rx / size;
                    c->rx += (uint64_t)r;
                    uint64_t done = c->rx / size - before;
                    msgs += done;
                    bytes += (uint64_t)r;
                    c->tosend += done * size;
                    if ((size_t)r < sizeof rbuf)
                        break;
                } else if (r == 0) {
                    dead = 1;
                    break;
                } else {
                    if (errno != EAGAIN && errno != EINTR)
                        dead = 1;
                    if (errno != EINTR)
                        break;
                }
            }
            while (!dead && c->tosend > 0) {
                size_t want = c->tosend < CHUNK ? (size_t)c->tosend : CHUNK;
                ssize_t w = send(c->fd, pat + c->tx % PERIOD, want, MSG_NOSIGNAL);
                if (w > 0) {
                    c->tx += (uint64_t)w;
                    c->tosend -= (uint64_t)w;
                } else if (w < 0 && errno == EINTR) {
                    continue;
                } else {
                    if (!(w < 0 && errno == EAGAIN))
                        dead = 1;
                    break;
                }
            }
            if (dead) {
                errors++;
                c->open = 0;
                close(c->fd);
                open_conns--;
            }
        }
    }
    double secs = measuring ? now_s() - tm : 0;
    double ucpu = measuring ? cpu_s(1) - u0 : 0, scpu = measuring ? cpu_s(0) - s0 : 0;
    printf("msgs=%llu bytes=%llu secs=%.6f client_user=%.3f client_sys=%.3f errors=%llu "
           "mismatches=%llu open=%d\n",
           (unsigned long long)msgs, (unsigned long long)bytes, secs, ucpu, scpu,
           (unsigned long long)errors, (unsigned long long)mismatches, open_conns);
    fflush(stdout);
    return errors || mismatches ? 3 : 0;
}
