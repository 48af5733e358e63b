/* worker: one event-loop thread with its own listeners, connections, pools, timers, metrics and
 * inbox. Workers share nothing on the hot path and talk only through inbox messages. */
#ifndef WEFT_CORE_WORKER_H
#define WEFT_CORE_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/loop.h"
#include "core/metrics.h"

struct worker;
struct server;
struct inbox_msg;

typedef void (*inbox_fn)(struct worker *w, struct inbox_msg *m);

/* A message for a worker; embedded in a larger struct that its fn knows how to free. */
struct inbox_msg {
    struct inbox_msg *next;
    inbox_fn fn;
};

/* Many writers, one reader: a locked list and an eventfd that wakes the reader's loop. The
 * eventfd is written only when the list goes from empty to not empty. */
struct inbox {
    struct io io;
    pthread_mutex_t lock;
    struct inbox_msg *head, *tail;
};

struct listener {
    struct io io;
    struct worker *w;
    int svc;
    int paused;
    int accepting; /* EV_ACCEPT: the poller may still report connections (until EV_HUP) */
};

struct worker {
    int id;
    pthread_t thread;
    struct server *srv;
    const struct config *cfg;
    struct loop loop;
    struct inbox inbox;
    struct listener listeners[SVC_COUNT];
    struct fpool conns;
    struct fpool slices;
    struct buf_pool bufs;
    struct outq_pools pools;
    struct timer trim_timer; /* shrinks the pools after a burst (worker.c: WORKER_TRIM_MS) */
    size_t trimmed;          /* bytes of buffers freed since the last malloc_trim */
    int trim_busy;           /* a malloc_trim is running on the blocking pool */
    uint64_t next_conn_id;
    struct conn *closed; /* freed at the end of the iteration */
    uint32_t open_conns[SVC_COUNT];
    int draining;
    int spare_fd;             /* closed to accept-and-refuse when out of descriptors */
    struct worker_metrics *m; /* &metrics, or the shared one of the sync models */
    int sync;                 /* a --model threaded/blocking thread: no loop runs */
    struct worker_metrics metrics;
    void *svc_state[SVC_COUNT]; /* each service's per-worker state */
};

int worker_init(struct worker *w, struct server *srv, int id);
void worker_fini(struct worker *w);
int worker_start(struct worker *w);
void worker_join(struct worker *w);

/* Queues m for w's loop; any thread may call it. */
void inbox_post(struct worker *w, struct inbox_msg *m);

/* Calls fn on every open connection of the worker (fn may close it). */
void worker_foreach_conn(struct worker *w, void (*fn)(struct conn *c, void *arg), void *arg);

/* A connection closed: accounting, and the end of a graceful drain. Called by conn_close. */
void worker_conn_closed(struct worker *w, struct conn *c);

/* Server to worker: begin a graceful drain; stop the loop now. 0 or -ENOMEM. */
int worker_post_drain(struct worker *w);
int worker_post_stop(struct worker *w);

#endif
