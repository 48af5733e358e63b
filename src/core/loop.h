/* loop: one event loop per worker thread.
 *
 * An iteration: wait for readiness (or the next timer), cache the clock, dispatch I/O callbacks,
 * run due timers, then run deferred work (output flushes, resumed reads) before waiting again:
 * output written in one iteration leaves in one writev per connection. */
#ifndef WEFT_CORE_LOOP_H
#define WEFT_CORE_LOOP_H

#include <stdint.h>

#include "core/poller.h"
#include "core/timer.h"

struct io;
typedef void (*io_fn)(struct io *io, uint32_t events);

/* A registered descriptor; embedded in its owner (connection, listener, inbox). */
struct io {
    int fd;
    int32_t res; /* the result of the completion being reported (EV_RDONE, EV_WDONE, EV_DATA) */
    io_fn fn;
};

struct deferred;
typedef void (*deferred_fn)(struct deferred *d);

/* Work to run at the end of this iteration; embedded in its owner, queued at most once. */
struct deferred {
    struct deferred *next;
    deferred_fn fn;
    int queued;
};

struct loop {
    struct poller poller;
    struct timer_heap timers;
    uint64_t now_ms; /* monotonic, cached once per iteration */
    uint64_t now_us;
    int64_t wall_s; /* CLOCK_REALTIME seconds, cached once per iteration */
    struct deferred *defer_head, **defer_tail;
    /* EV_DATA: the bytes reported to the callback running now (here rather than in every struct
     * io: an idle connection stays 168 bytes) */
    const char *rdata;
    int stop;
};

/* ops NULL: a loop with clocks, timers and deferred work but no poller (the sync models). */
int loop_init(struct loop *l, const struct poller_ops *ops);
void loop_fini(struct loop *l);

/* Registers io->fd for events (EV_IN | EV_OUT | EV_EDGE ...). 0 or -errno. */
int loop_add(struct loop *l, struct io *io, uint32_t events);
int loop_mod(struct loop *l, struct io *io, uint32_t events);
int loop_del(struct loop *l, struct io *io);

/* Whether the poller takes reads and writes (loop_read, loop_writev). */
static inline int loop_async(const struct loop *l)
{
    return l->poller.ops && l->poller.ops->read;
}

/* Queues a read or a write on io->fd, reported later to io->fn as EV_RDONE / EV_WDONE with the
 * result in io->res. 0, or -EBUSY when it can't be queued now: do it synchronously. */
static inline int loop_read(struct loop *l, struct io *io, void *buf, size_t len)
{
    return l->poller.ops->read(&l->poller, io->fd, buf, len);
}

static inline int loop_writev(struct loop *l, struct io *io, const struct iovec *iov, int cnt,
                              int msg_flags)
{
    return l->poller.ops->writev(&l->poller, io->fd, iov, cnt, msg_flags);
}

/* Whether the poller receives for sockets registered with EV_RECV (see poller.h). */
static inline int loop_can_recv(const struct loop *l)
{
    return l->poller.ops && (l->poller.caps & POLLER_RECV);
}

/* Whether the poller accepts for listening sockets registered with EV_ACCEPT. */
static inline int loop_can_accept(const struct loop *l)
{
    return l->poller.ops && (l->poller.caps & POLLER_ACCEPT);
}

/* Starts or stops the receive of an EV_RECV registration. 0 or -errno. */
static inline int loop_recv(struct loop *l, struct io *io, int on)
{
    return l->poller.ops->recv(&l->poller, io->fd, on);
}

/* io->fd is about to be closed: the poller lets go of it (no system call with epoll). */
static inline void loop_forget(struct loop *l, struct io *io)
{
    if (l->poller.ops && l->poller.ops->forget)
        l->poller.ops->forget(&l->poller, io->fd);
}

/* Closes io->fd after loop_forget: with the poller's next wait where it can (no system call of
 * its own), else at once. */
void loop_close(struct loop *l, struct io *io);

/* Issues queued reads and writes now. */
static inline void loop_submit(struct loop *l)
{
    if (l->poller.ops && l->poller.ops->submit)
        l->poller.ops->submit(&l->poller);
}

void loop_defer(struct loop *l, struct deferred *d, deferred_fn fn);
/* Takes d off the deferred queue if it is on it (its owner is going away). */
void loop_undefer(struct loop *l, struct deferred *d);

/* Re-reads the clocks (the loop calls it once per iteration). */
void loop_update_time(struct loop *l);

/* A deadline `ms` from now on the loop's clock (timers count microseconds). */
static inline uint64_t loop_deadline(const struct loop *l, uint64_t ms)
{
    return l->now_us + ms * 1000;
}

static inline int loop_timer_set(struct loop *l, struct timer *t, uint64_t ms_from_now)
{
    return timer_set(&l->timers, t, loop_deadline(l, ms_from_now));
}

static inline void loop_timer_cancel(struct loop *l, struct timer *t)
{
    timer_cancel(&l->timers, t);
}

/* One iteration, waiting at most max_wait_ms (-1: until something happens). */
int loop_run_once(struct loop *l, int max_wait_ms);
/* Runs until loop_stop. */
void loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
