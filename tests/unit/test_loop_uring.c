/* Unit tests for core/loop with the io_uring poller: readiness (level-triggered and edge), reads
 * and writes queued with loop_read / loop_writev and their completions, forget before close (the
 * peer sees the close; a completion of the old registration does not reach the fd's next owner),
 * timed waits, and the receives of EV_RECV registrations (data, EOF, stop and start, more input
 * than the provided buffers hold, buffers of stale completions given back, close while a receive
 * is armed). Skipped where io_uring is not available. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/poll_uring.h"
#include "tcp_pair.h"

/* Gives the just-closed fd number to an eventfd at once, as the next connection would take it:
 * what the old registration still had in the ring must not reach the new owner. */
static void take_fd_number(int fd)
{
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_int_equal(dup2(efd, fd), fd);
    close(efd);
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int setup(void **state)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    if (loop_init(l, &poller_uring) < 0) {
        free(l);
        *state = NULL;
        return 0; /* tests skip */
    }
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    struct loop *l = *state;
    if (l) {
        loop_fini(l);
        free(l);
    }
    return 0;
}

struct watch {
    struct io io;
    struct loop *l;
    int calls;
    uint32_t events;
    int read_it;
    int rdone, wdone;
    int32_t last_res;
    uint32_t last_done;
    /* EV_DATA: what arrived (the first sizeof got bytes of it), the end (0 or -errno) */
    int ndata;
    size_t got_len;
    char got[1 << 16];
    int ended;
    int32_t end_res;
    /* EV_ACCEPTED: the connections (closed by the test) and the last error */
    int accepted[64];
    int naccepted;
    int32_t accept_err;
    int accept_ended; /* EV_ACCEPTED | EV_HUP */
};

static void watch_fn(struct io *io, uint32_t events)
{
    struct watch *w = (struct watch *)io;
    if (events & EV_ACCEPTED) {
        w->accept_ended += (events & EV_HUP) != 0;
        if (io->res < 0)
            w->accept_err = io->res;
        else if (w->naccepted < 64)
            w->accepted[w->naccepted++] = io->res;
        else
            close(io->res);
        return;
    }
    if (events & EV_DATA) {
        w->ndata++;
        if (io->res > 0) {
            assert_false(w->ended);
            for (int32_t i = 0; i < io->res; i++, w->got_len++)
                if (w->got_len < sizeof w->got)
                    w->got[w->got_len] = w->l->rdata[i];
        } else {
            w->ended++;
            w->end_res = io->res;
        }
        return;
    }
    if (events & (EV_RDONE | EV_WDONE)) {
        w->rdone += (events & EV_RDONE) != 0;
        w->wdone += (events & EV_WDONE) != 0;
        w->last_res = io->res;
        w->last_done = events;
        return;
    }
    w->calls++;
    w->events |= events;
    if (w->read_it && (events & EV_IN)) {
        char buf[64];
        ssize_t n = read(io->fd, buf, sizeof buf);
        (void)n;
    }
}

#define NEED_URING(l)                                                                              \
    do {                                                                                           \
        if (!(l))                                                                                  \
            skip();                                                                                \
    } while (0)

static void test_level_triggered_eventfd(void **state)
{
    struct loop *l = *state;
    NEED_URING(l);
    assert_true(loop_async(l));
    struct watch w = {.io.fn = watch_fn, .read_it = 1};
    w.io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_int_equal(loop_add(l, &w.io, EV_IN), 0);
    assert_int_equal(loop_run_once(l, 0), 0);
    uint64_t one = 1;
    assert_int_equal(write(w.io.fd, &one, sizeof one), sizeof one);
    assert_int_equal(loop_run_once(l, 1000), 1);
    assert_int_equal(w.calls, 1);
    /* Drained: nothing more. */
    assert_int_equal(loop_run_once(l, 0), 0);
    assert_int_equal(w.calls, 1);
    /* Not drained: reported again on every iteration. */
    w.read_it = 0;
    assert_int_equal(write(w.io.fd, &one, sizeof one), sizeof one);
    loop_run_once(l, 1000);
    loop_run_once(l, 1000);
    loop_run_once(l, 1000);
    assert_int_equal(w.calls, 4);
    assert_int_equal(loop_del(l, &w.io), 0);
    loop_run_once(l, 0);
    assert_int_equal(w.calls, 4);
    close(w.io.fd);
}

static void test_edge_reports_each_arrival_once(void **state)
{
    struct loop *l = *state;
    NEED_URING(l);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct watch w = {.io.fn = watch_fn, .io.fd = sv[0]};
    assert_int_equal(loop_add(l, &w.io, EV_IN | EV_OUT | EV_EDGE), 0);
    /* Registering reports the current state (writable) once. */
    loop_run_once(l, 1000);
    assert_int_equal(w.calls, 1);
    assert_true(w.events & EV_OUT);
    assert_int_equal(loop_run_once(l, 0), 0);
    /* Bytes arrive: one report, not repeated although they stay unread. */
    w.events = 0;
    assert_int_equal(write(sv[1], "ab", 2), 2);
    loop_run_once(l, 1000);
    assert_int_equal(w.calls, 2);
    assert_true(w.events & EV_IN);
    assert_int_equal(loop_run_once(l, 0), 0);
    assert_int_equal(w.calls, 2);
    /* The peer closes: EV_HUP. */
    close(sv[1]);
    loop_run_once(l, 1000);
    assert_int_equal(w.calls, 3);
    assert_true(w.events & EV_HUP);
    loop_forget(l, &w.io);
    close(sv[0]);
}

static void test_queued_read_and_write(void **state)
{
    struct loop *l = *state;
    NEED_URING(l);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct watch w = {.io.fn = watch_fn, .io.fd = sv[0]};
    assert_int_equal(loop_add(l, &w.io, EV_IN | EV_EDGE), 0);

    /* Nothing to read: the read comes back with EAGAIN (it does not wait). */
    char buf[64];
    assert_int_equal(loop_read(l, &w.io, buf, sizeof buf), 0);
    loop_run_once(l, 1000);
    assert_int_equal(w.rdone, 1);
    assert_int_equal(w.last_res, -EAGAIN);

    /* Bytes there: they are read in the same iteration's system call. */
    assert_int_equal(write(sv[1], "hello", 5), 5);
    assert_int_equal(loop_read(l, &w.io, buf, sizeof buf), 0);
    loop_run_once(l, 1000);
    loop_run_once(l, 0);
    assert_int_equal(w.rdone, 2);
    assert_int_equal(w.last_res, 5);
    assert_memory_equal(buf, "hello", 5);

    /* A write of two slices. */
    struct iovec iov[2] = {{"abc", 3}, {"defg", 4}};
    assert_int_equal(loop_writev(l, &w.io, iov, 2, 0), 0);
    loop_run_once(l, 1000);
    assert_int_equal(w.wdone, 1);
    assert_int_equal(w.last_res, 7);
    assert_false(w.last_done & EV_WSHORT);
    assert_int_equal(read(sv[1], buf, sizeof buf), 7);
    assert_memory_equal(buf, "abcdefg", 7);

    /* Until the socket is full: a short write, then EAGAIN. */
    static char big[1 << 20];
    struct iovec one = {big, sizeof big};
    int shorts = 0, again = 0;
    for (int i = 0; i < 8 && !again; i++) {
        assert_int_equal(loop_writev(l, &w.io, &one, 1, 0), 0);
        loop_run_once(l, 1000);
        if (w.last_res == -EAGAIN)
            again = 1;
        else if (w.last_done & EV_WSHORT)
            shorts++;
    }
    assert_true(shorts >= 1);
    assert_true(again);
    loop_forget(l, &w.io);
    close(sv[0]);
    close(sv[1]);
}

static void test_forget_then_close_closes(void **state)
{
    struct loop *l = *state;
    NEED_URING(l);
    int cfd = -1, sfd = -1;
    assert_int_equal(tcp_pair(&cfd, &sfd), 0);
    struct watch w = {.io.fn = watch_fn, .io.fd = sfd};
    assert_int_equal(loop_add(l, &w.io, EV_IN | EV_OUT | EV_EDGE), 0);
    loop_run_once(l, 1000);
    /* A write queued, then the connection goes: submit, forget, close. */
    struct iovec iov = {"bye", 3};
    assert_int_equal(loop_writev(l, &w.io, &iov, 1, 0), 0);
    loop_submit(l);
    loop_forget(l, &w.io);
    close(sfd);
    /* The fd number is taken by someone else at once. */
    struct watch w2 = {.io.fn = watch_fn};
    take_fd_number(sfd);
    w2.io.fd = sfd;
    assert_int_equal(loop_add(l, &w2.io, EV_IN), 0);
    int calls = w.calls;
    loop_run_once(l, 0);
    loop_run_once(l, 0);
    /* The old write's completion went nowhere; the eventfd saw nothing of it. */
    assert_int_equal(w.wdone, 0);
    assert_int_equal(w.calls, calls);
    assert_int_equal(w2.wdone, 0);
    assert_int_equal(w2.calls, 0);
    /* The peer got the bytes and the end: the poll request no longer holds the socket. */
    char buf[16];
    assert_int_equal(read_within_2s(cfd, buf, sizeof buf), 3);
    assert_int_equal(read_within_2s(cfd, buf, sizeof buf), 0);
    loop_forget(l, &w2.io);
    close(w2.io.fd);
    close(cfd);
}

#define NEED_RECV(l)                                                                               \
    do {                                                                                           \
        if (!(l) || !loop_can_recv(l))                                                             \
            skip();                                                                                \
    } while (0)

static struct watch *watch_new(struct loop *l, int fd)
{
    struct watch *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->l = l;
    w->io.fn = watch_fn;
    w->io.fd = fd;
    return w;
}

/* A connected TCP pair whose accepted end is registered with `events` and watched; the client
 * end in *cfd. */
static struct watch *watch_tcp(struct loop *l, uint32_t events, int *cfd)
{
    int sfd = -1;
    assert_int_equal(tcp_pair(cfd, &sfd), 0);
    struct watch *w = watch_new(l, sfd);
    assert_int_equal(loop_add(l, &w->io, events), 0);
    return w;
}

/* Runs the loop until w has got n bytes (or ended), at most about a second. */
static void run_until(struct loop *l, struct watch *w, size_t n)
{
    for (int i = 0; i < 100 && w->got_len < n && !w->ended; i++)
        loop_run_once(l, 10);
}

static void test_recv_data_and_eof(void **state)
{
    struct loop *l = *state;
    NEED_RECV(l);
    int cfd = -1;
    struct watch *w = watch_tcp(l, EV_RECV | EV_OUT | EV_EDGE, &cfd);
    int sfd = w->io.fd;
    /* Registering reports writable once; no input readiness ever. */
    loop_run_once(l, 1000);
    assert_int_equal(w->calls, 1);
    assert_int_equal(w->events, EV_OUT);
    assert_int_equal(w->ndata, 0);
    /* Bytes arrive: they come with the event, no read of ours. */
    assert_int_equal(write(cfd, "hello", 5), 5);
    run_until(l, w, 5);
    assert_int_equal(w->got_len, 5);
    assert_memory_equal(w->got, "hello", 5);
    int ndata = w->ndata;
    assert_int_equal(write(cfd, " world", 6), 6);
    run_until(l, w, 11);
    assert_int_equal(w->got_len, 11);
    assert_memory_equal(w->got, "hello world", 11);
    assert_true(w->ndata > ndata);
    /* The peer's FIN: EV_DATA with 0, once, and no EV_IN / EV_HUP from the poll. */
    shutdown(cfd, SHUT_WR);
    run_until(l, w, 12);
    assert_int_equal(w->ended, 1);
    assert_int_equal(w->end_res, 0);
    loop_run_once(l, 10);
    assert_int_equal(w->ended, 1);
    assert_false(w->events & (EV_IN | EV_HUP));
    loop_forget(l, &w->io);
    close(sfd);
    close(cfd);
    free(w);
}

static int unread(int fd)
{
    int n = 0;
    return ioctl(fd, FIONREAD, &n) < 0 ? -1 : n;
}

static void test_recv_stop_and_start(void **state)
{
    struct loop *l = *state;
    NEED_RECV(l);
    int cfd = -1;
    struct watch *w = watch_tcp(l, EV_RECV | EV_OUT | EV_EDGE, &cfd);
    int sfd = w->io.fd;
    loop_run_once(l, 0);
    /* Stopped: what arrives stays in the socket (the peer's window fills, not our memory). */
    assert_int_equal(loop_recv(l, &w->io, 0), 0);
    loop_run_once(l, 0);
    assert_int_equal(write(cfd, "abc", 3), 3);
    for (int i = 0; i < 5; i++)
        loop_run_once(l, 10);
    assert_int_equal(w->got_len, 0);
    assert_int_equal(w->ended, 0);
    assert_int_equal(unread(sfd), 3);
    /* Stopping twice is harmless; started: the bytes come. */
    assert_int_equal(loop_recv(l, &w->io, 0), 0);
    assert_int_equal(loop_recv(l, &w->io, 1), 0);
    run_until(l, w, 3);
    assert_int_equal(w->got_len, 3);
    assert_memory_equal(w->got, "abc", 3);
    /* Stopped and started again before the cancellation was issued: nothing lost, nothing twice,
     * in order, also with bytes arriving meanwhile. */
    assert_int_equal(loop_recv(l, &w->io, 0), 0);
    assert_int_equal(write(cfd, "def", 3), 3);
    assert_int_equal(loop_recv(l, &w->io, 1), 0);
    assert_int_equal(write(cfd, "ghi", 3), 3);
    run_until(l, w, 9);
    assert_int_equal(write(cfd, "jkl", 3), 3);
    run_until(l, w, 12);
    assert_int_equal(w->got_len, 12);
    assert_memory_equal(w->got, "abcdefghijkl", 12);
    assert_int_equal(w->ended, 0);
    loop_forget(l, &w->io);
    close(sfd);
    close(cfd);
    free(w);
}

/* More bytes at once than the provided buffers hold: receives end for lack of buffers and are
 * re-armed unseen; every connection gets its bytes whole and in order. */
static void test_recv_more_than_the_buffers(void **state)
{
    struct loop *l = *state;
    NEED_RECV(l);
    enum { PAIRS = 48 };
    int cfd[PAIRS], sfd[PAIRS];
    struct watch *w[PAIRS];
    size_t sent[PAIRS], total = 0;
    static char chunk[65536];
    for (int i = 0; i < PAIRS; i++) {
        assert_int_equal(tcp_pair(&cfd[i], &sfd[i]), 0);
        int big = 1 << 20;
        setsockopt(sfd[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        fcntl(cfd[i], F_SETFL, O_NONBLOCK);
        sent[i] = 0;
        /* Bytes that say where they are: byte k of connection i is (k + i) % 251. */
        for (;;) {
            for (size_t k = 0; k < sizeof chunk; k++)
                chunk[k] = (char)((sent[i] + k + (size_t)i) % 251);
            ssize_t n = write(cfd[i], chunk, sizeof chunk);
            if (n <= 0)
                break;
            sent[i] += (size_t)n;
        }
        total += sent[i];
    }
    uint64_t nobufs = uring_nobufs(&l->poller);
    for (int i = 0; i < PAIRS; i++) {
        w[i] = watch_new(l, sfd[i]);
        assert_int_equal(loop_add(l, &w[i]->io, EV_RECV | EV_EDGE), 0);
    }
    size_t got = 0;
    for (int round = 0; round < 2000 && got < total; round++) {
        loop_run_once(l, 10);
        got = 0;
        for (int i = 0; i < PAIRS; i++)
            got += w[i]->got_len;
    }
    assert_true(total > 4 * URING_RBUFS * URING_RBUF_SIZE);
    assert_int_equal(got, total);
    assert_true(uring_nobufs(&l->poller) > nobufs);
    for (int i = 0; i < PAIRS; i++) {
        assert_int_equal(w[i]->got_len, sent[i]);
        assert_int_equal(w[i]->ended, 0);
        size_t n = sent[i] < sizeof w[i]->got ? sent[i] : sizeof w[i]->got;
        for (size_t k = 0; k < n; k++)
            assert_int_equal((unsigned char)w[i]->got[k], (k + (size_t)i) % 251);
        loop_forget(l, &w[i]->io);
        close(sfd[i]);
        close(cfd[i]);
        free(w[i]);
    }
}

/* Completions of a closed registration still hand their buffers back: more closes with bytes in
 * flight than there are buffers, then a new connection still receives. */
static void test_recv_stale_completions_give_buffers_back(void **state)
{
    struct loop *l = *state;
    NEED_RECV(l);
    char payload[3000];
    memset(payload, 'x', sizeof payload);
    for (int i = 0; i < 700; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        struct watch *w = watch_new(l, sv[0]);
        assert_int_equal(loop_add(l, &w->io, EV_RECV | EV_EDGE), 0);
        loop_run_once(l, 0);
        /* The receive takes the bytes (a buffer) before it hears of the close. */
        assert_int_equal(write(sv[1], payload, sizeof payload), sizeof payload);
        loop_forget(l, &w->io);
        close(sv[0]);
        loop_run_once(l, 0);
        assert_int_equal(w->ndata, 0);
        close(sv[1]);
        free(w);
    }
    int cfd = -1;
    struct watch *w = watch_tcp(l, EV_RECV | EV_EDGE, &cfd);
    int sfd = w->io.fd;
    assert_int_equal(write(cfd, "ok", 2), 2);
    run_until(l, w, 2);
    assert_int_equal(w->got_len, 2);
    loop_forget(l, &w->io);
    close(sfd);
    close(cfd);
    free(w);
}

/* Forget and close while the receive is armed: the peer sees the close (the cancelled receive no
 * longer holds the socket), and the fd's next owner sees nothing of the old registration. */
static void test_recv_forget_then_close_closes(void **state)
{
    struct loop *l = *state;
    NEED_RECV(l);
    int cfd = -1;
    struct watch *w = watch_tcp(l, EV_RECV | EV_OUT | EV_EDGE, &cfd);
    int sfd = w->io.fd;
    loop_run_once(l, 0);
    loop_forget(l, &w->io);
    close(sfd);
    take_fd_number(sfd);
    struct watch *w2 = watch_new(l, sfd);
    assert_int_equal(loop_add(l, &w2->io, EV_IN), 0);
    int calls = w->calls;
    /* Bytes for the old socket: nobody gets them. */
    assert_int_equal(write(cfd, "late", 4), 4);
    loop_run_once(l, 0);
    loop_run_once(l, 0);
    assert_int_equal(w->ndata, 0);
    assert_int_equal(w->calls, calls);
    assert_int_equal(w2->ndata, 0);
    assert_int_equal(w2->calls, 0);
    char buf[16];
    /* Closed with unread bytes: a reset, or an EOF; never a timeout. */
    ssize_t n = read_within_2s(cfd, buf, sizeof buf);
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
    loop_forget(l, &w2->io);
    close(w2->io.fd);
    close(cfd);
    free(w);
    free(w2);
}

/* A forgotten fd closed through the ring: still open until the next wait, then closed (the peer
 * sees the end, the number is free again). */
static void test_close_through_the_ring(void **state)
{
    struct loop *l = *state;
    NEED_URING(l);
    int cfd = -1;
    struct watch *w = watch_tcp(l, EV_IN | EV_OUT | EV_EDGE, &cfd);
    int sfd = w->io.fd;
    loop_run_once(l, 0);
    loop_forget(l, &w->io);
    loop_close(l, &w->io);
    assert_int_equal(fcntl(sfd, F_GETFD), FD_CLOEXEC);
    loop_run_once(l, 0);
    assert_int_equal(fcntl(sfd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    char buf[4];
    assert_int_equal(read_within_2s(cfd, buf, sizeof buf), 0);
    close(cfd);
    free(w);
}

static void close_accepted(struct watch *w)
{
    for (int i = 0; i < w->naccepted; i++)
        close(w->accepted[i]);
    w->naccepted = 0;
}

/* EV_ACCEPT: each connection comes as EV_ACCEPTED with its fd, non-blocking and close-on-exec;
 * no EV_IN, no accept of ours. */
static void test_accept_reports_connections(void **state)
{
    struct loop *l = *state;
    NEED_RECV(l);
    assert_true(loop_can_accept(l));
    struct sockaddr_in a;
    int lfd = listener(&a);
    assert_true(lfd >= 0);
    struct watch *w = watch_new(l, lfd);
    assert_int_equal(loop_add(l, &w->io, EV_ACCEPT), 0);
    loop_run_once(l, 0);
    int c[3];
    for (int i = 0; i < 3; i++)
        assert_true((c[i] = dial(&a)) >= 0);
    for (int i = 0; i < 100 && w->naccepted < 3; i++)
        loop_run_once(l, 10);
    assert_int_equal(w->naccepted, 3);
    assert_int_equal(w->calls, 0);
    for (int i = 0; i < 3; i++) {
        assert_true(fcntl(w->accepted[i], F_GETFL) & O_NONBLOCK);
        assert_int_equal(fcntl(w->accepted[i], F_GETFD), FD_CLOEXEC);
    }
    /* Nothing left for accept4. */
    assert_int_equal(accept4(lfd, NULL, NULL, SOCK_NONBLOCK), -1);
    assert_int_equal(errno, EAGAIN);
    close_accepted(w);
    assert_int_equal(loop_del(l, &w->io), 0);
    close(lfd);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    loop_run_once(l, 0);
    free(w);
}

/* Removed while the kernel accepted connections not reported yet: they still come to the owner;
 * with those left in the queue for accept4, none is lost. */
static void test_accept_after_del_loses_nothing(void **state)
{
    struct loop *l = *state;
    NEED_RECV(l);
    struct sockaddr_in a;
    int lfd = listener(&a);
    assert_true(lfd >= 0);
    struct watch *w = watch_new(l, lfd);
    assert_int_equal(loop_add(l, &w->io, EV_ACCEPT), 0);
    loop_run_once(l, 0);
    enum { N = 8 };
    int c[N];
    for (int i = 0; i < N; i++)
        assert_true((c[i] = dial(&a)) >= 0);
    /* (The accepts run as this thread leaves its system calls: some or all are done now.) */
    assert_int_equal(loop_del(l, &w->io), 0);
    int more = 0, fd;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        more++;
        close(fd);
    }
    close(lfd);
    /* The fd number taken by someone else at once does not matter. */
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct watch *w2 = watch_new(l, efd);
    assert_int_equal(loop_add(l, &w2->io, EV_IN), 0);
    for (int i = 0; i < 5; i++)
        loop_run_once(l, 0);
    assert_int_equal(w->naccepted + more, N);
    assert_int_equal(w->accept_ended, 1); /* and then nothing more comes */
    assert_int_equal(w2->naccepted, 0);
    assert_int_equal(w2->calls, 0);
    close_accepted(w);
    assert_int_equal(loop_del(l, &w2->io), 0);
    close(efd);
    for (int i = 0; i < N; i++)
        close(c[i]);
    free(w);
    free(w2);
}

/* Out of descriptors: the error is reported, and accepting goes on once there are some again.
 * (An accept takes the limit when it is submitted: the limit is lowered before it is armed.) */
static void test_accept_emfile_then_goes_on(void **state)
{
    struct loop *l = *state;
    NEED_RECV(l);
    struct sockaddr_in a;
    int lfd = listener(&a);
    assert_true(lfd >= 0);
    int c1 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int spare = dup(c1);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)spare; /* the lowest free number is spare's, once closed: none left */
    close(spare);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    struct watch *w = watch_new(l, lfd);
    assert_int_equal(loop_add(l, &w->io, EV_ACCEPT), 0);
    loop_run_once(l, 0);
    assert_int_equal(connect(c1, (struct sockaddr *)&a, sizeof a), 0);
    for (int i = 0; i < 100 && !w->accept_err && !w->naccepted; i++)
        loop_run_once(l, 10);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(w->accept_err, -EMFILE);
    assert_int_equal(w->naccepted, 0);
    assert_int_equal(w->accept_ended, 0);
    /* Re-armed: the waiting connection is taken now that there is room. */
    for (int i = 0; i < 100 && !w->naccepted; i++)
        loop_run_once(l, 10);
    assert_int_equal(w->naccepted, 1);
    close_accepted(w);
    assert_int_equal(loop_del(l, &w->io), 0);
    close(lfd);
    close(c1);
    free(w);
}

static void on_timer(struct timer *t)
{
    (void)t;
}

static void test_timed_wait(void **state)
{
    struct loop *l = *state;
    NEED_URING(l);
    struct timer t;
    timer_init(&t, on_timer);
    loop_update_time(l);
    uint64_t t0 = l->now_us;
    loop_timer_set(l, &t, 20);
    loop_run_once(l, -1);
    uint64_t dt = mono_us() - t0;
    assert_true(dt >= 20000);
    assert_true(dt < 500000);
    t0 = mono_us();
    assert_int_equal(loop_run_once(l, 5), 0);
    assert_true(mono_us() - t0 >= 5000);
}

int main(void)
{
    alarm(30);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_level_triggered_eventfd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_reports_each_arrival_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_read_and_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_then_close_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timed_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recv_data_and_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recv_stop_and_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recv_more_than_the_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recv_stale_completions_give_buffers_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recv_forget_then_close_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_through_the_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_reports_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_after_del_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_emfile_then_goes_on, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
