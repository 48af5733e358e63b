#include "core/loop.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 512

int loop_init(struct loop *l, const struct poller_ops *ops)
{
    l->poller.ops = ops;
    l->poller.fd = -1;
    l->poller.caps = 0;
    l->poller.priv = NULL;
    timer_heap_init(&l->timers);
    l->defer_head = NULL;
    l->defer_tail = &l->defer_head;
    l->rdata = NULL;
    l->stop = 0;
    loop_update_time(l);
    return ops ? ops->open(&l->poller) : 0;
}

void loop_fini(struct loop *l)
{
    if (l->poller.ops)
        l->poller.ops->close(&l->poller);
    timer_heap_fini(&l->timers);
}

int loop_add(struct loop *l, struct io *io, uint32_t events)
{
    return l->poller.ops->add(&l->poller, io->fd, events, io);
}

int loop_mod(struct loop *l, struct io *io, uint32_t events)
{
    return l->poller.ops->mod(&l->poller, io->fd, events, io);
}

int loop_del(struct loop *l, struct io *io)
{
    return l->poller.ops->del(&l->poller, io->fd);
}

void loop_close(struct loop *l, struct io *io)
{
    const struct poller_ops *ops = l->poller.ops;
    if (!ops || !ops->close_fd || ops->close_fd(&l->poller, io->fd) < 0)
        close(io->fd);
}

void loop_defer(struct loop *l, struct deferred *d, deferred_fn fn)
{
    if (d->queued)
        return;
    d->queued = 1;
    d->fn = fn;
    d->next = NULL;
    *l->defer_tail = d;
    l->defer_tail = &d->next;
}

void loop_undefer(struct loop *l, struct deferred *d)
{
    if (!d->queued)
        return;
    for (struct deferred **pp = &l->defer_head; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            if (l->defer_tail == &d->next)
                l->defer_tail = pp;
            break;
        }
    }
    d->queued = 0;
}

void loop_update_time(struct loop *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    l->now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    l->now_ms = l->now_us / 1000u;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    l->wall_s = ts.tv_sec;
}

static void run_deferred(struct loop *l)
{
    /* Work deferred while running deferred work runs in this same pass. */
    while (l->defer_head) {
        struct deferred *d = l->defer_head;
        l->defer_head = d->next;
        if (!l->defer_head)
            l->defer_tail = &l->defer_head;
        d->queued = 0;
        d->fn(d);
    }
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
    struct poll_event ev[LOOP_BATCH];
    /* The time to wait is measured from now, not from the start of this iteration: timers
     * armed from the fresh clock during a long iteration would otherwise fire late by as much
     * as the iteration took (a /sleep?ms=10 answered after 10.5 ms under load). */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    int64_t next = timer_next(&l->timers, now);
    int64_t wait = max_wait_ms < 0 ? -1 : (int64_t)max_wait_ms * 1000;
    if (l->defer_head)
        wait = 0;
    else if (next >= 0 && (wait < 0 || next < wait))
        wait = next;
    int n = l->poller.ops->wait(&l->poller, ev, LOOP_BATCH, wait);
    loop_update_time(l);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        struct io *io = ev[i].ptr;
        io->res = ev[i].res;
        l->rdata = ev[i].data;
        io->fn(io, ev[i].events);
    }
    timer_run(&l->timers, l->now_us);
    run_deferred(l);
    return n;
}

void loop_run(struct loop *l)
{
    while (!l->stop)
        loop_run_once(l, -1);
}

void loop_stop(struct loop *l)
{
    l->stop = 1;
}
