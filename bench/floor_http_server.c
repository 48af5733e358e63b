/* floor_http_server.c: the least work a server could do for bench/http_vs_nginx.py's `GET /`
 * cases, run beside weft and nginx as a floor to read their CPU per request against.
 *
 *   floor_http_server [--uring] [--threads N] [PORT]   (cc -O2 -pthread floor_http_server.c
 * -luring)
 *
 * What it is: plain C, no weft code, N threads (default 1) that share nothing, each with its
 * own SO_REUSEPORT listener and loop, as weft's workers. For every request it finds (a head ending
 * in CRLF CRLF) it answers with the bytes weft's `GET /` answers with: `HTTP/1.1 200 OK`, `Server`,
 * a `Date` remade once a second, `Content-Type: text/plain`, `Content-Length: 13`, `Hello,
 * World!`. A request with `Connection: close` (wrk's spelling) is answered and the connection
 * closed. The listener has TCP_DEFER_ACCEPT (1 s), like weft's default, and TCP_NODELAY, which
 * accepted sockets inherit. Prints `listening http 127.0.0.1:PORT` when ready (PORT 0, the
 * default, picks a free one); SIGTERM or SIGINT (taken by the main thread, which does nothing
 * else): prints the threads' counts to stderr (`floor: ...`) and exits 0.
 *
 * Two loops, the two ways weft can run:
 *   epoll (default)  level-triggered epoll; per readable connection one read() and one write()
 *                    with every answer the read completed: the two system calls per request
 *                    nginx makes, and nothing else.
 *   --uring          io_uring (liburing): a multishot accept, one multishot receive per
 *                    connection into a ring of provided buffers, one send per batch of answers
 *                    (no completion on success), the close in the ring: weft's --io uring path
 *                    without weft.
 *
 * What it is not: an HTTP server. No parser (it looks for the end of the head and for the
 * text "Connection: close"), no routes, no bodies, no timeouts, no limits, no output queue: a
 * head longer than 2 KiB or a write that is short or fails closes the connection (counted), as
 * does any error. Its figures are a lower bound on what a correct server costs on the
 * same machine, not a target for one. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define INCAP 2048  /* a connection's unfinished head */
#define OUTCAP 4096 /* the answers to one read's requests */
#define NBUF 64     /* provided receive buffers (--uring) */
#define BUFSZ 2048
#define BGID 1
#define ENTRIES 4096

struct conn {
    uint32_t gen; /* --uring: completions of an earlier connection on this fd are dropped */
    uint16_t inlen;
    char in[INCAP];
    char out[OUTCAP]; /* --uring: what the send queued for this connection reads */
};

static struct conn *conns;
static int maxfd;
/* A thread's counts; the main thread sums them when told to stop. */
struct counts {
    unsigned long long nreq, naccepted, nfail, nobufs;
};
static struct counts *counts;
static __thread struct counts *me;

/* the answer, and the answer that closes; each thread remakes its own */
static __thread char resp[256], resp_close[256];
static __thread size_t resp_len, resp_close_len;
static __thread time_t resp_sec = -1;

/* Remakes the answer when the second has changed (CLOCK_REALTIME_COARSE: no system call). */
static void date_tick(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec == resp_sec)
        return;
    resp_sec = ts.tv_sec;
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    resp_len = (size_t)snprintf(resp, sizeof resp,
                                "HTTP/1.1 200 OK\r\nServer: weft\r\nDate: %s\r\n"
                                "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                                "Hello, World!",
                                date);
    resp_close_len = (size_t)snprintf(resp_close, sizeof resp_close,
                                      "HTTP/1.1 200 OK\r\nServer: weft\r\nDate: %s\r\n"
                                      "Content-Type: text/plain\r\nContent-Length: 13\r\n"
                                      "Connection: close\r\n\r\nHello, World!",
                                      date);
}

/* Answers every complete head of c->in (after appending data), leaving an unfinished one;
 * `Connection: close` gets the answer with that header, the same bytes weft sends.
 * Returns the bytes of answers written to out, or -1 to close the connection (head too long,
 * answers too long) and sets *close_after for a `Connection: close` request. */
static ssize_t answer(struct conn *c, const char *data, size_t len, char *out, int *close_after)
{
    if ((size_t)c->inlen + len > INCAP)
        return -1;
    const char *p = data, *end = data + len;
    if (c->inlen) { /* rare: a head split across reads */
        memcpy(c->in + c->inlen, data, len);
        p = c->in;
        end = c->in + c->inlen + len;
    }
    size_t n = 0;
    *close_after = 0;
    for (;;) {
        const char *e = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!e)
            break;
        int last = memmem(p, (size_t)(e - p), "Connection: close", 17) != NULL;
        const char *r = last ? resp_close : resp;
        size_t rlen = last ? resp_close_len : resp_len;
        if (n + rlen > OUTCAP)
            return -1;
        memcpy(out + n, r, rlen);
        n += rlen;
        me->nreq++;
        if (last) {
            *close_after = 1;
            p = end;
            break;
        }
        p = e + 4;
    }
    size_t left = (size_t)(end - p);
    if (left && p != c->in)
        memmove(c->in, p, left);
    c->inlen = (uint16_t)left;
    return (ssize_t)n;
}

/* A listener on 127.0.0.1:*port; *port 0 picks one and is set to it. */
static int listen_on(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, defer = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one); /* a listener per thread */
    /* accepted sockets inherit TCP_NODELAY: no system call per connection (as in weft) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
        perror("floor: listen");
        exit(1);
    }
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return fd;
}

static void new_conn(int fd)
{
    conns[fd].inlen = 0;
    me->naccepted++;
}

/* ---- epoll ---- */

/* Reads and answers what a connection has sent; returns 0 when it stays open. Edge-triggered:
 * reads until a read comes back short. */
static int serve_epoll(int fd, char *buf, char *out)
{
    ssize_t r;
    do {
        r = read(fd, buf, BUFSZ);
        if (r < 0 && errno == EAGAIN)
            return 0;
        int close_after = 0;
        ssize_t m = r > 0 ? answer(&conns[fd], buf, (size_t)r, out, &close_after) : -1;
        if (r > 0 && (m < 0 || (m > 0 && write(fd, out, (size_t)m) != m)))
            m = -1, me->nfail++;
        if (m < 0 || close_after) {
            close(fd); /* also leaves the epoll set */
            return -1;
        }
    } while (r == BUFSZ);
    return 0;
}

static void run_epoll(int lfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[512];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    char buf[BUFSZ], out[OUTCAP];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        date_tick();
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd != lfd) {
                serve_epoll(fd, buf, out);
                continue;
            }
            int c;
            while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                if (c >= maxfd) {
                    close(c);
                    continue;
                }
                new_conn(c);
                /* TCP_DEFER_ACCEPT: the request is usually there already */
                if (serve_epoll(c, buf, out) == 0) {
                    ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                }
            }
        }
    }
    close(ep);
}

/* ---- io_uring ---- */

enum { T_ACCEPT = 1, T_RECV, T_SEND, T_CANCEL, T_CLOSE };

static __thread struct io_uring ring;
static __thread struct io_uring_buf_ring *br;
static __thread char *bufs;

static uint64_t ud(int fd, int tag)
{
    return (uint64_t)conns[fd].gen << 32 | (uint64_t)fd << 3 | (uint64_t)tag;
}

static struct io_uring_sqe *sqe(void)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&ring);
    if (!s) {
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
    }
    return s;
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *s = sqe();
    io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = BGID;
    io_uring_sqe_set_data64(s, ud(fd, T_RECV));
}

/* The receive is cancelled (if still armed) and the fd closed, both in the ring; the socket is
 * released when the last request holding it completes. */
static void uring_close(int fd, int recv_armed)
{
    struct io_uring_sqe *s;
    if (recv_armed) {
        s = sqe();
        io_uring_prep_cancel64(s, ud(fd, T_RECV), 0);
        io_uring_sqe_set_data64(s, ud(fd, T_CANCEL));
        s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
    s = sqe();
    io_uring_prep_close(s, fd);
    io_uring_sqe_set_data64(s, ud(fd, T_CLOSE));
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    conns[fd].gen++;
}

static void run_uring(int lfd)
{
    struct io_uring_params prm = {.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                                           IORING_SETUP_SINGLE_ISSUER};
    int rc = io_uring_queue_init_params(ENTRIES, &ring, &prm);
    if (rc < 0) {
        fprintf(stderr, "floor: io_uring: %s\n", strerror(-rc));
        exit(1);
    }
    io_uring_register_ring_fd(&ring);
    size_t rlen = NBUF * sizeof(struct io_uring_buf);
    br = aligned_alloc(4096, rlen);
    bufs = malloc((size_t)NBUF * BUFSZ);
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)br, .ring_entries = NBUF, .bgid = BGID};
    if (!br || !bufs || (rc = io_uring_register_buf_ring(&ring, &reg, 0)) < 0) {
        fprintf(stderr, "floor: provided buffers: %s\n", strerror(rc < 0 ? -rc : ENOMEM));
        exit(1);
    }
    io_uring_buf_ring_init(br);
    int mask = io_uring_buf_ring_mask(NBUF);
    for (int i = 0; i < NBUF; i++)
        io_uring_buf_ring_add(br, bufs + (size_t)i * BUFSZ, BUFSZ, (unsigned short)i, mask, i);
    io_uring_buf_ring_advance(br, NBUF);

    struct io_uring_sqe *s = sqe();
    io_uring_prep_multishot_accept(s, lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, (uint64_t)T_ACCEPT);
    for (;;) {
        struct io_uring_cqe *cqe;
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR) {
            fprintf(stderr, "floor: io_uring_enter: %s\n", strerror(-rc));
            break;
        }
        date_tick();
        unsigned head, seen = 0, nret = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            uint64_t d = cqe->user_data;
            int tag = (int)(d & 7), fd = (int)((d >> 3) & 0x1fffffff), res = cqe->res;
            if (tag == T_SEND) { /* only a failed send has a completion */
                me->nfail++;
                continue;
            }
            if (tag == T_ACCEPT) {
                if (res >= 0 && res < maxfd) {
                    new_conn(res);
                    arm_recv(res);
                } else if (res >= 0) {
                    close(res);
                }
                if (res == -EINVAL) {
                    fprintf(stderr, "floor: accept: %s\n", strerror(-res));
                    exit(1);
                }
                if (!(cqe->flags & IORING_CQE_F_MORE)) { /* re-arm the accept */
                    s = sqe();
                    io_uring_prep_multishot_accept(s, lfd, NULL, NULL,
                                                   SOCK_NONBLOCK | SOCK_CLOEXEC);
                    io_uring_sqe_set_data64(s, (uint64_t)T_ACCEPT);
                }
                continue;
            }
            int stale = (uint32_t)(d >> 32) != conns[fd].gen;
            if (tag == T_RECV && (cqe->flags & IORING_CQE_F_BUFFER)) {
                unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
                if (!stale && res > 0) {
                    int close_after = 0;
                    ssize_t m = answer(&conns[fd], bufs + (size_t)bid * BUFSZ, (size_t)res,
                                       conns[fd].out, &close_after);
                    if (m > 0) {
                        s = sqe();
                        io_uring_prep_send(s, fd, conns[fd].out, (size_t)m, MSG_NOSIGNAL);
                        io_uring_sqe_set_data64(s, ud(fd, T_SEND));
                        s->flags |= IOSQE_CQE_SKIP_SUCCESS;
                    }
                    if (m < 0 || close_after) {
                        if (m < 0)
                            me->nfail++;
                        uring_close(fd, (cqe->flags & IORING_CQE_F_MORE) != 0);
                        stale = 1;
                    }
                }
                io_uring_buf_ring_add(br, bufs + (size_t)bid * BUFSZ, BUFSZ, (unsigned short)bid,
                                      mask, (int)nret++);
            }
            if (stale || tag != T_RECV || (cqe->flags & IORING_CQE_F_MORE))
                continue;
            if (res > 0 || res == -ENOBUFS) { /* the multishot receive ended: re-armed */
                me->nobufs += res == -ENOBUFS;
                arm_recv(fd);
            } else {
                uring_close(fd, 0);
            }
        }
        if (nret)
            io_uring_buf_ring_advance(br, nret);
        io_uring_cq_advance(&ring, seen);
    }
}

struct thread_arg {
    int lfd, uring;
    struct counts *counts;
};

static void *thread_main(void *p)
{
    struct thread_arg *t = p;
    me = t->counts;
    date_tick();
    if (t->uring)
        run_uring(t->lfd);
    else
        run_epoll(t->lfd);
    return NULL;
}

int main(int argc, char **argv)
{
    int uring = 0, port = 0, nthreads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--uring"))
            uring = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else
            port = atoi(argv[i]);
    }
    if (nthreads < 1 || nthreads > 64) {
        fprintf(stderr, "floor: --threads must be 1-64\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    maxfd = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
    conns = calloc((size_t)maxfd, sizeof *conns); /* pages are touched only for fds in use */
    counts = calloc((size_t)nthreads, sizeof *counts);
    struct thread_arg *args = calloc((size_t)nthreads, sizeof *args);
    if (!conns || !counts || !args)
        return 1;
    /* The threads never take SIGTERM or SIGINT: the main thread waits for them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < nthreads; i++)
        args[i] =
            (struct thread_arg){.lfd = listen_on(&port), .uring = uring, .counts = &counts[i]};
    printf("listening http 127.0.0.1:%d\n", port);
    fflush(stdout);
    for (int i = 0; i < nthreads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_main, &args[i]) != 0) {
            perror("floor: pthread_create");
            return 1;
        }
    }
    int sig;
    sigwait(&sigs, &sig);
    struct counts sum = {0};
    for (int i = 0; i < nthreads; i++) { /* a moment's reading: the threads still run */
        sum.nreq += __atomic_load_n(&counts[i].nreq, __ATOMIC_RELAXED);
        sum.naccepted += __atomic_load_n(&counts[i].naccepted, __ATOMIC_RELAXED);
        sum.nfail += __atomic_load_n(&counts[i].nfail, __ATOMIC_RELAXED);
        sum.nobufs += __atomic_load_n(&counts[i].nobufs, __ATOMIC_RELAXED);
    }
    fprintf(stderr,
            "floor: %llu requests answered, %llu connections accepted, %llu heads too long or "
            "writes failed, %llu receives re-armed for want of buffers\n",
            sum.nreq, sum.naccepted, sum.nfail, sum.nobufs);
    _exit(0); /* the threads are still in their loops */
}
