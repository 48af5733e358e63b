#include "core/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/server.h"

#define ACCEPT_BATCH 64
#define BUF_POOL_KEEP 256    /* 4 MiB of free buffers kept per worker at most */
#define CONNS_PER_SLAB 256   /* 44 KiB slabs: whole pages (see fpool) */
#define SLICES_PER_SLAB 1024 /* 48 KiB */
/* Once a second the pools shrink to the most they had in use during the last second, so what a
 * burst left (a join storm in one room of 10,000: 50 million presence frames through the output
 * queues) is given back about two seconds after it ends. Slabs are unmapped at once; buffers go
 * back to malloc, whose free pages are returned (malloc_trim) once 1 MiB of them were freed.
 * malloc_trim walks every arena and took up to ~400 ms on a loaded VM, so it runs on the
 * blocking pool, never on the loop. */
#define WORKER_TRIM_MS 1000
#define WORKER_TRIM_MALLOC (1024u * 1024u)

/* ---- inbox ---- */

static void inbox_io(struct io *io, uint32_t events)
{
    struct worker *w = (struct worker *)((char *)io - offsetof(struct worker, inbox.io));
    uint64_t v;
    ssize_t n = read(io->fd, &v, sizeof v);
    (void)n; /* EAGAIN after a spurious wake-up is fine: the list is what counts */
    pthread_mutex_lock(&w->inbox.lock);
    struct inbox_msg *m = w->inbox.head;
    w->inbox.head = w->inbox.tail = NULL;
    pthread_mutex_unlock(&w->inbox.lock);
    while (m) {
        struct inbox_msg *next = m->next;
        m->fn(w, m);
        m = next;
    }
}

void inbox_post(struct worker *w, struct inbox_msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&w->inbox.lock);
    int was_empty = w->inbox.head == NULL;
    if (w->inbox.tail)
        w->inbox.tail->next = m;
    else
        w->inbox.head = m;
    w->inbox.tail = m;
    pthread_mutex_unlock(&w->inbox.lock);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t n = write(w->inbox.io.fd, &one, sizeof one);
        (void)n; /* EAGAIN means the counter is already non-zero: the loop will wake */
    }
}

/* ---- accepting ---- */

static void refuse(struct worker *w, int svc, int fd, enum reject_reason why)
{
    const struct service *s = w->srv->services[svc];
    if (s->on_reject)
        s->on_reject(fd);
    close(fd);
    ctr_add(&w->m->svc[svc].rejected[why], 1);
}

/* Out of descriptors: free the spare, take the pending connection and refuse it, so a
 * level-triggered listener does not spin on EMFILE. */
static void accept_emfile(struct worker *w, struct listener *l)
{
    if (w->spare_fd >= 0) {
        close(w->spare_fd);
        w->spare_fd = -1;
    }
    int fd = accept4(l->io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
        refuse(w, l->svc, fd, REJECT_FD_LIMIT);
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_failed(struct worker *w, struct listener *l, int err)
{
    if (err == EMFILE || err == ENFILE)
        accept_emfile(w, l);
    else if (err != EAGAIN && err != EINTR && err != ECONNABORTED && err != ECANCELED)
        log_warn("accept on %s: %s", w->srv->services[l->svc]->name, strerror(err));
}

/* A connection accepted on l: counted against --max-connections, then opened. */
static struct conn *accepted(struct worker *w, struct listener *l, int fd)
{
    struct server *srv = w->srv;
    const struct service *s = srv->services[l->svc];
    int active = __atomic_add_fetch(&srv->active[l->svc], 1, __ATOMIC_RELAXED);
    if (active > w->cfg->max_connections) {
        __atomic_sub_fetch(&srv->active[l->svc], 1, __ATOMIC_RELAXED);
        refuse(w, l->svc, fd, REJECT_MAX_CONNECTIONS);
        return NULL;
    }
    struct conn *c = conn_open(w, fd, l->svc, s->proto);
    if (!c) {
        __atomic_sub_fetch(&srv->active[l->svc], 1, __ATOMIC_RELAXED);
        return NULL;
    }
    w->open_conns[l->svc]++;
    ctr_add(&w->m->svc[l->svc].connections_total, 1);
    if (s->on_open)
        s->on_open(c);
    return c;
}

static void shutdown_conn(struct conn *c, void *arg);

static void listener_io(struct io *io, uint32_t events)
{
    struct listener *l = (struct listener *)io;
    struct worker *w = l->w;
    /* The poller accepted (EV_ACCEPT): one connection, or an error. One that the kernel
     * accepted before a drain closed the listener is shut down like those the drain found. */
    if (events & EV_ACCEPTED) {
        if (events & EV_HUP)
            l->accepting = 0;
        if (events & EV_ERR) /* the ring could not take the accept again */
            log_warn("accept on %s: not accepting any more", w->srv->services[l->svc]->name);
        if (io->res < 0) {
            accept_failed(w, l, -io->res);
            return;
        }
        struct conn *c = accepted(w, l, io->res);
        if (c && w->draining && !(c->flags & CONN_CLOSED))
            shutdown_conn(c, NULL);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            accept_failed(w, l, err);
            if (err != EINTR && err != ECONNABORTED)
                return;
            continue;
        }
        accepted(w, l, fd);
    }
}

void worker_conn_closed(struct worker *w, struct conn *c)
{
    __atomic_sub_fetch(&w->srv->active[c->svc], 1, __ATOMIC_RELAXED);
    w->open_conns[c->svc]--;
    c->next_closed = w->closed;
    w->closed = c;
}

/* ---- draining ---- */

/* Connections open, or a closed listener's accept may still report some the kernel took. */
static int worker_busy(const struct worker *w)
{
    for (int s = 0; s < SVC_COUNT; s++)
        if (s != SVC_ADMIN && (w->open_conns[s] > 0 || w->listeners[s].accepting))
            return 1;
    return 0;
}

void worker_foreach_conn(struct worker *w, void (*fn)(struct conn *c, void *arg), void *arg)
{
    for (size_t s = 0; s < w->conns.slab_count; s++) {
        for (size_t i = 0; i < w->conns.per_slab; i++) {
            struct conn *c = fpool_obj(&w->conns, s, i);
            if (c->proto && !(c->flags & CONN_CLOSED))
                fn(c, arg);
        }
    }
}

static void shutdown_conn(struct conn *c, void *arg)
{
    (void)arg;
    if (c->svc == SVC_ADMIN)
        return;
    if (c->proto->on_shutdown)
        c->proto->on_shutdown(c);
    else if (outq_empty(&c->out))
        conn_close(c);
    else
        conn_close_after_flush(c);
}

/* Accepts what is already queued on a listener before closing it: closing a SO_REUSEPORT
 * listener resets the connections waiting in its own accept queue. */
static void listener_drain_and_close(struct worker *w, struct listener *l)
{
    loop_del(&w->loop, &l->io);
    listener_io(&l->io, EV_IN);
    close(l->io.fd);
    l->io.fd = -1;
}

struct drain_msg {
    struct inbox_msg m;
};

static void drain_begin(struct worker *w, struct inbox_msg *m)
{
    free(m);
    if (w->draining)
        return;
    w->draining = 1;
    for (int s = 0; s < SVC_COUNT; s++)
        if (s != SVC_ADMIN && w->listeners[s].io.fd >= 0)
            listener_drain_and_close(w, &w->listeners[s]);
    worker_foreach_conn(w, shutdown_conn, NULL);
}

static void force_stop(struct worker *w, struct inbox_msg *m)
{
    free(m);
    loop_stop(&w->loop);
}

static void reap_closed(struct worker *w)
{
    while (w->closed) {
        struct conn *c = w->closed;
        w->closed = c->next_closed;
        fpool_put(&w->conns, c);
    }
}

#ifdef __GLIBC__
static void trim_run(struct bjob *j)
{
    (void)j;
    malloc_trim(0);
}

static void trim_done(struct worker *w, struct inbox_msg *m)
{
    w->trim_busy = 0;
    free((char *)m - offsetof(struct bjob, done));
}
#endif

/* Gives back what the pools kept beyond their use since the last call (see WORKER_TRIM_MS). */
static void worker_trim(struct worker *w)
{
    fpool_trim(&w->slices, 0);
    w->trimmed += buf_pool_trim(&w->bufs, 0);
#ifdef __GLIBC__
    if (w->trimmed >= WORKER_TRIM_MALLOC && !w->trim_busy) {
        struct bjob *j = calloc(1, sizeof *j);
        if (j) {
            j->w = w;
            j->run = trim_run;
            j->done.fn = trim_done;
            w->trim_busy = 1;
            bpool_submit(&w->srv->bpool, j);
        } else {
            malloc_trim(0);
        }
        w->trimmed = 0;
    }
#endif
}

static void trim_fired(struct timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, trim_timer));
    worker_trim(w);
    loop_timer_set(&w->loop, &w->trim_timer, WORKER_TRIM_MS);
}

static void close_conn(struct conn *c, void *arg)
{
    (void)arg;
    conn_close(c);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* The default 50 us of timer slack would show in every short /sleep. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    timer_init(&w->trim_timer, trim_fired);
    loop_timer_set(&w->loop, &w->trim_timer, WORKER_TRIM_MS);
    int reported = 0;
    while (!w->loop.stop) {
        loop_run_once(&w->loop, -1);
        reap_closed(w);
        if (w->draining && !reported && !worker_busy(w)) {
            reported = 1;
            server_worker_drained(w->srv, w);
        }
    }
    /* Stopped: close what is left (admin connections, or everything after a drain timeout) so
     * that protocols release their state. */
    worker_foreach_conn(w, close_conn, NULL);
    reap_closed(w);
    return NULL;
}

/* Runs messages still queued once every worker stopped (nothing posts any more), so that what
 * they hold (shared buffers, jobs) is released. */
static void inbox_drain(struct worker *w)
{
    struct inbox_msg *m = w->inbox.head;
    w->inbox.head = w->inbox.tail = NULL;
    while (m) {
        struct inbox_msg *next = m->next;
        m->fn(w, m);
        m = next;
    }
}

/* ---- life cycle ---- */

int worker_init(struct worker *w, struct server *srv, int id)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->srv = srv;
    w->cfg = srv->cfg;
    w->spare_fd = -1;
    w->inbox.io.fd = -1;
    for (int s = 0; s < SVC_COUNT; s++)
        w->listeners[s].io.fd = -1;
    metrics_init(&w->metrics);
    w->m = &w->metrics;
    fpool_init(&w->conns, sizeof(struct conn), CONNS_PER_SLAB);
    fpool_init(&w->slices, sizeof(struct slice), SLICES_PER_SLAB);
    buf_pool_init(&w->bufs, BUF_POOL_KEEP);
    w->pools.slices = &w->slices;
    w->pools.bufs = &w->bufs;
    w->next_conn_id = 1;
    const struct poller_ops *ops = w->cfg->io == IO_URING ? &poller_uring : &poller_epoll;
    int rc = loop_init(&w->loop, ops);
    if (rc < 0 && ops == &poller_uring) {
        /* No io_uring here (an old kernel, or io_uring_disabled): epoll does the same job. */
        if (id == 0)
            log_warn("io_uring unavailable (%s): using epoll", strerror(-rc));
        w->loop.poller.ops = &poller_epoll;
        rc = poller_epoll.open(&w->loop.poller);
    }
    if (rc < 0)
        return rc;
    pthread_mutex_init(&w->inbox.lock, NULL);
    w->inbox.io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->inbox.io.fd < 0)
        return -errno;
    w->inbox.io.fn = inbox_io;
    if ((rc = loop_add(&w->loop, &w->inbox.io, EV_IN)) < 0)
        return rc;
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (int s = 0; s < SVC_COUNT; s++) {
        if (!srv->services[s])
            continue;
        if (srv->services[s]->worker_init && (rc = srv->services[s]->worker_init(w, s)) < 0)
            return rc;
        if (srv->listen_fds[s][id] < 0)
            continue; /* served elsewhere (the http service's sync models) */
        struct listener *l = &w->listeners[s];
        l->w = w;
        l->svc = s;
        l->io.fd = srv->listen_fds[s][id];
        l->io.fn = listener_io;
        srv->listen_fds[s][id] = -1;
        /* io_uring accepts itself (multishot): no readiness, then accept4, per connection. */
        l->accepting = loop_can_accept(&w->loop);
        if ((rc = loop_add(&w->loop, &l->io, l->accepting ? EV_ACCEPT : EV_IN)) < 0)
            return rc;
    }
    return 0;
}

void worker_fini(struct worker *w)
{
    inbox_drain(w);
    for (int s = 0; s < SVC_COUNT; s++) {
        if (w->listeners[s].io.fd >= 0)
            close(w->listeners[s].io.fd);
        if (w->srv->services[s] && w->srv->services[s]->worker_fini)
            w->srv->services[s]->worker_fini(w, s);
    }
    if (w->inbox.io.fd >= 0)
        close(w->inbox.io.fd);
    pthread_mutex_destroy(&w->inbox.lock);
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    loop_fini(&w->loop);
    fpool_fini(&w->conns);
    fpool_fini(&w->slices);
    buf_pool_fini(&w->bufs);
}

int worker_start(struct worker *w)
{
    return -pthread_create(&w->thread, NULL, worker_main, w);
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

/* Messages the server sends to every worker. */
int worker_post_drain(struct worker *w)
{
    struct drain_msg *m = malloc(sizeof *m);
    if (!m)
        return -ENOMEM;
    m->m.fn = drain_begin;
    inbox_post(w, &m->m);
    return 0;
}

int worker_post_stop(struct worker *w)
{
    struct inbox_msg *m = malloc(sizeof *m);
    if (!m)
        return -ENOMEM;
    m->fn = force_stop;
    inbox_post(w, m);
    return 0;
}
