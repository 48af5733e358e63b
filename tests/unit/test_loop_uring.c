/* Unit tests for core/loop with the io_uring poller: readiness (level-triggered and edge), reads
 * and writes queued with loop_read / loop_writev and their completions, forget before close (the
 * peer sees the close; a completion of the old registration does not reach the fd's next owner),
 * and timed waits. Skipped where io_uring is not available. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

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
    int calls;
    uint32_t events;
    int read_it;
    int rdone, wdone;
    int32_t last_res;
    uint32_t last_done;
};

static void watch_fn(struct io *io, uint32_t events)
{
    struct watch *w = (struct watch *)io;
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
    assert_int_equal(loop_writev(l, &w.io, iov, 2), 0);
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
        assert_int_equal(loop_writev(l, &w.io, &one, 1), 0);
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

static int tcp_pair(int *client, int *server)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
        return -1;
    *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(*client, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    *server = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    close(lfd);
    return *server < 0 ? -1 : 0;
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
    assert_int_equal(loop_writev(l, &w.io, &iov, 1), 0);
    loop_submit(l);
    loop_forget(l, &w.io);
    close(sfd);
    /* The fd number is taken by someone else at once. */
    struct watch w2 = {.io.fn = watch_fn};
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_int_equal(dup2(efd, sfd), sfd);
    close(efd);
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
    struct timeval tv = {.tv_sec = 2};
    setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16];
    assert_int_equal(read(cfd, buf, sizeof buf), 3);
    assert_int_equal(read(cfd, buf, sizeof buf), 0);
    loop_forget(l, &w2.io);
    close(w2.io.fd);
    close(cfd);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
