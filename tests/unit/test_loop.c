/* Unit tests for core/loop with the epoll poller: deferred work (once per queueing, in order,
 * work deferred from deferred work in the same pass, loop_undefer), I/O callbacks on an eventfd
 * and a socketpair, timers against CLOCK_MONOTONIC, and when loop_run_once returns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
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
    if (!l || loop_init(l, &poller_epoll) < 0)
        return -1;
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    struct loop *l = *state;
    /* Nothing a test queued may be left over. */
    int left = l->defer_head != NULL || l->defer_tail != &l->defer_head;
    loop_fini(l);
    free(l);
    return left ? -1 : 0;
}

/* ---- deferred work ---- */

struct trace {
    int ids[64];
    int n;
};

struct item {
    struct deferred d;
    struct loop *l;
    struct trace *tr;
    int id;
    int runs;
    struct item *then;    /* deferred from this item's fn, if set */
    int again;            /* re-defer itself this many more times */
    struct item *unqueue; /* undeferred from this item's fn, if set */
};

static void item_fn(struct deferred *d)
{
    struct item *it = (struct item *)((char *)d - offsetof(struct item, d));
    assert_false(d->queued);
    assert_true(it->tr->n < 64);
    it->tr->ids[it->tr->n++] = it->id;
    it->runs++;
    if (it->then) {
        loop_defer(it->l, &it->then->d, item_fn);
        it->then = NULL;
    }
    if (it->unqueue)
        loop_undefer(it->l, &it->unqueue->d);
    if (it->again > 0) {
        it->again--;
        loop_defer(it->l, &it->d, item_fn);
    }
}

static void items_init(struct item *it, int n, struct loop *l, struct trace *tr)
{
    memset(it, 0, (size_t)n * sizeof *it);
    memset(tr, 0, sizeof *tr);
    for (int i = 0; i < n; i++) {
        it[i].l = l;
        it[i].tr = tr;
        it[i].id = i;
    }
}

static void expect_trace(const struct trace *tr, const int *ids, int n)
{
    assert_int_equal(tr->n, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(tr->ids[i], ids[i]);
}

static void test_defer_once_per_queueing_in_order(void **state)
{
    struct loop *l = *state;
    struct item it[3];
    struct trace tr;
    items_init(it, 3, l, &tr);
    loop_defer(l, &it[0].d, item_fn);
    loop_defer(l, &it[1].d, item_fn);
    loop_defer(l, &it[2].d, item_fn);
    loop_defer(l, &it[0].d, item_fn); /* already queued: still runs once, in its first place */
    assert_true(it[0].d.queued);
    assert_int_equal(loop_run_once(l, 1000), 0);
    expect_trace(&tr, (int[]){0, 1, 2}, 3);
    /* Run: no longer queued, and a second iteration runs nothing. */
    for (int i = 0; i < 3; i++)
        assert_false(it[i].d.queued);
    assert_int_equal(loop_run_once(l, 0), 0);
    assert_int_equal(tr.n, 3);
    /* Queued again after running: runs again. */
    loop_defer(l, &it[1].d, item_fn);
    loop_run_once(l, 0);
    expect_trace(&tr, (int[]){0, 1, 2, 1}, 4);
}

static void test_defer_from_deferred_runs_in_same_pass(void **state)
{
    struct loop *l = *state;
    struct item it[4];
    struct trace tr;
    items_init(it, 4, l, &tr);
    it[0].then = &it[3]; /* 0 defers 3 */
    it[0].again = 1;     /* and itself once more */
    it[3].then = &it[2]; /* 3 defers 2 */
    loop_defer(l, &it[0].d, item_fn);
    loop_defer(l, &it[1].d, item_fn);
    loop_run_once(l, 0);
    expect_trace(&tr, (int[]){0, 1, 3, 0, 2}, 5);
    assert_int_equal(it[0].runs, 2);
    assert_int_equal(l->defer_head, NULL);
    loop_run_once(l, 0);
    assert_int_equal(tr.n, 5);
}

static void test_undefer(void **state)
{
    struct loop *l = *state;
    struct item it[5];
    struct trace tr;
    items_init(it, 5, l, &tr);

    /* From the middle. */
    loop_defer(l, &it[0].d, item_fn);
    loop_defer(l, &it[1].d, item_fn);
    loop_defer(l, &it[2].d, item_fn);
    loop_undefer(l, &it[1].d);
    assert_false(it[1].d.queued);
    loop_run_once(l, 0);
    expect_trace(&tr, (int[]){0, 2}, 2);

    /* The tail, then something queued after it: the tail pointer was fixed. */
    tr.n = 0;
    loop_defer(l, &it[0].d, item_fn);
    loop_defer(l, &it[1].d, item_fn);
    loop_defer(l, &it[2].d, item_fn);
    loop_undefer(l, &it[2].d);
    loop_defer(l, &it[3].d, item_fn);
    loop_run_once(l, 0);
    expect_trace(&tr, (int[]){0, 1, 3}, 3);

    /* The head. */
    tr.n = 0;
    loop_defer(l, &it[0].d, item_fn);
    loop_defer(l, &it[1].d, item_fn);
    loop_undefer(l, &it[0].d);
    loop_run_once(l, 0);
    expect_trace(&tr, (int[]){1}, 1);

    /* The only one, then queue again. */
    tr.n = 0;
    loop_defer(l, &it[4].d, item_fn);
    loop_undefer(l, &it[4].d);
    assert_null(l->defer_head);
    assert_ptr_equal(l->defer_tail, &l->defer_head);
    loop_defer(l, &it[2].d, item_fn);
    loop_run_once(l, 0);
    expect_trace(&tr, (int[]){2}, 1);

    /* Not queued: nothing happens. */
    loop_undefer(l, &it[3].d);
    assert_null(l->defer_head);

    /* From a deferred fn, taking off one that is queued after it. */
    tr.n = 0;
    it[0].unqueue = &it[2];
    loop_defer(l, &it[0].d, item_fn);
    loop_defer(l, &it[1].d, item_fn);
    loop_defer(l, &it[2].d, item_fn);
    loop_run_once(l, 0);
    expect_trace(&tr, (int[]){0, 1}, 2);
    assert_false(it[2].d.queued);
}

static void test_deferred_work_does_not_wait(void **state)
{
    struct loop *l = *state;
    struct item it[1];
    struct trace tr;
    items_init(it, 1, l, &tr);
    loop_defer(l, &it[0].d, item_fn);
    uint64_t t0 = mono_us();
    /* "Forever", but there is work to do: no waiting. */
    assert_int_equal(loop_run_once(l, -1), 0);
    assert_true(mono_us() - t0 < 500000);
    assert_int_equal(it[0].runs, 1);
}

/* ---- I/O ---- */

struct watch {
    struct io io;
    struct loop *l;
    int calls;
    uint32_t events;
    int read_it;        /* consume what is readable */
    struct item *defer; /* deferred from the callback */
};

static void watch_fn(struct io *io, uint32_t events)
{
    struct watch *w = (struct watch *)io;
    w->calls++;
    w->events |= events;
    if (w->read_it && (events & EV_IN)) {
        char buf[64];
        ssize_t n = read(io->fd, buf, sizeof buf);
        (void)n;
    }
    if (w->defer)
        loop_defer(w->l, &w->defer->d, item_fn);
}

static void test_io_eventfd(void **state)
{
    struct loop *l = *state;
    struct watch w = {.io.fn = watch_fn, .l = l, .read_it = 1};
    w.io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(w.io.fd >= 0);
    assert_int_equal(loop_add(l, &w.io, EV_IN), 0);
    assert_int_equal(loop_add(l, &w.io, EV_IN), -EEXIST);

    assert_int_equal(loop_run_once(l, 0), 0);
    assert_int_equal(w.calls, 0);
    uint64_t one = 1;
    assert_int_equal(write(w.io.fd, &one, sizeof one), sizeof one);
    assert_int_equal(loop_run_once(l, 1000), 1);
    assert_int_equal(w.calls, 1);
    assert_true(w.events & EV_IN);
    /* Drained by the callback: level-triggered, but nothing more to report. */
    assert_int_equal(loop_run_once(l, 0), 0);
    assert_int_equal(w.calls, 1);

    /* Not drained: level-triggered reports it again on every iteration. */
    w.read_it = 0;
    assert_int_equal(write(w.io.fd, &one, sizeof one), sizeof one);
    loop_run_once(l, 1000);
    loop_run_once(l, 1000);
    assert_int_equal(w.calls, 3);

    /* Edge-triggered: once per change. */
    assert_int_equal(loop_mod(l, &w.io, EV_IN | EV_EDGE), 0);
    loop_run_once(l, 0); /* the mod itself may report the current state once */
    w.calls = 0;
    assert_int_equal(loop_run_once(l, 0), 0);
    assert_int_equal(w.calls, 0);
    assert_int_equal(write(w.io.fd, &one, sizeof one), sizeof one);
    assert_int_equal(loop_run_once(l, 1000), 1);
    assert_int_equal(w.calls, 1);

    /* Removed: never again. */
    assert_int_equal(loop_del(l, &w.io), 0);
    assert_int_equal(write(w.io.fd, &one, sizeof one), sizeof one);
    assert_int_equal(loop_run_once(l, 20), 0);
    assert_int_equal(w.calls, 1);
    close(w.io.fd);
}

static void test_io_socketpair(void **state)
{
    struct loop *l = *state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct item it[1];
    struct trace tr;
    items_init(it, 1, l, &tr);
    struct watch w = {.io.fd = sv[0], .io.fn = watch_fn, .l = l, .read_it = 1, .defer = &it[0]};
    assert_int_equal(loop_add(l, &w.io, EV_IN), 0);
    assert_int_equal(loop_run_once(l, 0), 0);
    assert_int_equal(w.calls, 0);

    assert_int_equal(write(sv[1], "ping", 4), 4);
    assert_int_equal(loop_run_once(l, 1000), 1);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.events, EV_IN);
    /* Work deferred by an I/O callback runs in the same iteration. */
    assert_int_equal(it[0].runs, 1);

    /* Writable at once when asked. */
    w.events = 0;
    assert_int_equal(loop_mod(l, &w.io, EV_IN | EV_OUT), 0);
    assert_int_equal(loop_run_once(l, 1000), 1);
    assert_true(w.events & EV_OUT);
    assert_false(w.events & EV_IN);
    assert_int_equal(loop_mod(l, &w.io, EV_IN), 0);

    /* The peer goes away: readable (EOF) and hung up. */
    w.events = 0;
    w.read_it = 0;
    close(sv[1]);
    assert_int_equal(loop_run_once(l, 1000), 1);
    assert_true(w.events & EV_IN);
    assert_true(w.events & EV_HUP);
    assert_int_equal(loop_del(l, &w.io), 0);
    close(sv[0]);
}

static void test_many_fds_in_one_iteration(void **state)
{
    struct loop *l = *state;
    enum { N = 40 };
    struct watch w[N];
    for (int i = 0; i < N; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].io.fn = watch_fn;
        w[i].l = l;
        w[i].read_it = 1;
        w[i].io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        assert_true(w[i].io.fd >= 0);
        assert_int_equal(loop_add(l, &w[i].io, EV_IN), 0);
    }
    uint64_t one = 1;
    for (int i = 0; i < N; i += 2)
        assert_int_equal(write(w[i].io.fd, &one, sizeof one), sizeof one);
    assert_int_equal(loop_run_once(l, 1000), N / 2);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].calls, i % 2 == 0 ? 1 : 0);
        loop_del(l, &w[i].io);
        close(w[i].io.fd);
    }
}

/* ---- timers ---- */

struct alarm_clock {
    struct timer t;
    struct loop *l;
    int fired;
    uint64_t fired_us;    /* CLOCK_MONOTONIC when it fired */
    uint64_t loop_now_us; /* the loop's cached clock when it fired */
    int stop;             /* loop_stop from the callback */
};

static void alarm_fn(struct timer *t)
{
    struct alarm_clock *a = (struct alarm_clock *)t;
    a->fired++;
    a->fired_us = mono_us();
    a->loop_now_us = a->l->now_us;
    if (a->stop)
        loop_stop(a->l);
}

static void test_timer_not_early_and_not_late(void **state)
{
    struct loop *l = *state;
    struct alarm_clock a = {.l = l};
    timer_init(&a.t, alarm_fn);
    /* The loop's clock is read after t0, so the deadline is at least 20 ms after t0. */
    uint64_t t0 = mono_us();
    loop_update_time(l);
    assert_int_equal(loop_timer_set(l, &a.t, 20), 0);
    int iterations = 0;
    while (!a.fired) {
        loop_run_once(l, -1);
        iterations++;
        if (!a.fired)
            assert_true(mono_us() - t0 < 2000000);
        assert_true(iterations < 100);
    }
    assert_int_equal(a.fired, 1);
    assert_true(a.fired_us - t0 >= 20000);
    /* Due by the loop's own cached clock too. */
    assert_true(a.loop_now_us >= t0 + 20000);
    /* A loose upper bound: CI machines are busy, sanitizers slow. */
    assert_true(a.fired_us - t0 < 500000);
    /* The loop slept until it was due rather than spinning. */
    assert_true(iterations <= 3);
    assert_false(timer_armed(&a.t));
}

static void test_early_wakeup_does_not_fire_a_later_timer(void **state)
{
    struct loop *l = *state;
    struct alarm_clock early = {.l = l}, late = {.l = l};
    timer_init(&early.t, alarm_fn);
    timer_init(&late.t, alarm_fn);
    uint64_t t0 = mono_us();
    loop_update_time(l);
    assert_int_equal(loop_timer_set(l, &early.t, 10), 0);
    assert_int_equal(loop_timer_set(l, &late.t, 14), 0);
    /* The iteration that fires the early one must leave the late one, 4 ms later, alone. */
    while (!early.fired) {
        loop_run_once(l, -1);
        assert_true(mono_us() - t0 < 2000000);
    }
    if (late.fired)
        assert_true(late.fired_us - t0 >= 14000);
    while (!late.fired) {
        loop_run_once(l, -1);
        assert_true(mono_us() - t0 < 2000000);
    }
    assert_true(early.fired_us - t0 >= 10000);
    assert_true(late.fired_us - t0 >= 14000);
    assert_true(late.loop_now_us >= t0 + 14000);

    /* Woken by I/O just before a deadline: not fired either. */
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct watch w = {.io.fd = efd, .io.fn = watch_fn, .l = l, .read_it = 1};
    assert_int_equal(loop_add(l, &w.io, EV_IN), 0);
    struct alarm_clock a = {.l = l};
    timer_init(&a.t, alarm_fn);
    loop_update_time(l);
    uint64_t t1 = l->now_us;
    assert_int_equal(loop_timer_set(l, &a.t, 3), 0);
    uint64_t one = 1;
    while (!a.fired) {
        /* Keep the loop busy with I/O until the timer fires; each wake checks the clock. */
        assert_int_equal(write(efd, &one, sizeof one), sizeof one);
        loop_run_once(l, -1);
        assert_true(mono_us() - t1 < 2000000);
    }
    assert_true(w.calls > 0);
    assert_true(a.loop_now_us >= t1 + 3000);
    loop_del(l, &w.io);
    close(efd);
}

static void test_run_once_returns_when_a_timer_is_due(void **state)
{
    struct loop *l = *state;
    struct alarm_clock a = {.l = l}, b = {.l = l};
    timer_init(&a.t, alarm_fn);
    timer_init(&b.t, alarm_fn);
    loop_update_time(l);
    assert_int_equal(loop_timer_set(l, &a.t, 30), 0);
    assert_int_equal(loop_timer_set(l, &b.t, 10000), 0);
    uint64_t t0 = mono_us();
    /* Nothing to read, no bound on the wait: the timer is what ends it. */
    while (!a.fired) {
        assert_int_equal(loop_run_once(l, -1), 0);
        assert_true(mono_us() - t0 < 2000000);
    }
    assert_int_equal(b.fired, 0);
    assert_true(timer_armed(&b.t));
    loop_timer_cancel(l, &b.t);
    assert_false(timer_armed(&b.t));
}

static void test_run_once_bounded_wait(void **state)
{
    struct loop *l = *state;
    uint64_t t0 = mono_us();
    assert_int_equal(loop_run_once(l, 30), 0);
    uint64_t took = mono_us() - t0;
    assert_true(took >= 29000);
    assert_true(took < 1000000);
    /* The cached clock moved with it. */
    assert_true(l->now_us >= t0 + 29000);
}

static void test_run_until_stopped_by_a_timer(void **state)
{
    struct loop *l = *state;
    struct alarm_clock a = {.l = l, .stop = 1}, b = {.l = l};
    timer_init(&a.t, alarm_fn);
    timer_init(&b.t, alarm_fn);
    loop_update_time(l);
    loop_timer_set(l, &b.t, 5);
    loop_timer_set(l, &a.t, 15);
    uint64_t t0 = mono_us();
    loop_run(l);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 1);
    assert_true(b.fired_us <= a.fired_us);
    assert_true(mono_us() - t0 < 1000000);
    assert_true(l->stop);
}

static void test_cancelled_timer_does_not_fire(void **state)
{
    struct loop *l = *state;
    struct alarm_clock a = {.l = l};
    timer_init(&a.t, alarm_fn);
    loop_update_time(l);
    loop_timer_set(l, &a.t, 10);
    loop_timer_cancel(l, &a.t);
    /* With nothing armed the wait is only bounded by max_wait_ms. */
    assert_int_equal(timer_next(&l->timers, l->now_ms), -1);
    loop_run_once(l, 30);
    assert_int_equal(a.fired, 0);
}

int main(void)
{
    /* A hang is a failure, not a stuck CI job. */
    alarm(30);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defer_once_per_queueing_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defer_from_deferred_runs_in_same_pass, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_undefer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_work_does_not_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_eventfd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_socketpair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_fds_in_one_iteration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_not_early_and_not_late, setup, teardown),
        cmocka_unit_test_setup_teardown(test_early_wakeup_does_not_fire_a_later_timer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_run_once_returns_when_a_timer_is_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_once_bounded_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_until_stopped_by_a_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_timer_does_not_fire, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
