/* The http service under --model threaded (a thread per connection) and --model blocking (one
 * connection at a time). Both run the same protocol code and handlers as the event loop; only
 * the concurrency differs: sockets are blocking, each connection's thread waits in read() and
 * writev(), and /sleep and /block wait in place. They exist to be compared with async. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/worker.h"
#include "http/http.h"
#include "http/models.h"

#define SYNC_STACK (256 * 1024)
#define SYNC_POLL_MS 500 /* how often a waiting thread looks at the clock and the drain flag */

/* A worker-shaped context for one sync thread: pools, cached clocks and the HTTP state, but no
 * poller and no inbox. Its counters go to the server's shared sync metrics, under a lock. */
static struct worker *sync_worker_new(struct server *srv)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->srv = srv;
    w->cfg = srv->cfg;
    w->sync = 1;
    w->m = srv->sync_metrics;
    w->spare_fd = -1;
    w->inbox.io.fd = -1;
    w->next_conn_id = 1;
    fpool_init(&w->conns, sizeof(struct conn), 4);
    fpool_init(&w->slices, sizeof(struct slice), 64);
    buf_pool_init(&w->bufs, 4);
    w->pools.slices = &w->slices;
    w->pools.bufs = &w->bufs;
    loop_init(&w->loop, NULL);
    if (srv->services[SVC_HTTP]->worker_init(w, SVC_HTTP) < 0) {
        loop_fini(&w->loop);
        free(w);
        return NULL;
    }
    return w;
}

static void sync_worker_free(struct worker *w)
{
    w->srv->services[SVC_HTTP]->worker_fini(w, SVC_HTTP);
    loop_fini(&w->loop);
    fpool_fini(&w->conns);
    fpool_fini(&w->slices);
    buf_pool_fini(&w->bufs);
    free(w);
}

static void sync_count(struct worker *w, uint64_t *ctr, uint64_t n)
{
    pthread_mutex_lock(&w->srv->sync_lock);
    ctr_add(ctr, n);
    pthread_mutex_unlock(&w->srv->sync_lock);
}

/* Writes the whole output queue, blocking. -1 when the peer is gone. */
static int sync_flush(struct conn *c)
{
    while (!outq_empty(&c->out)) {
        size_t sent = 0;
        int rc = outq_write(&c->out, &c->w->pools, c->io.fd, 0, &sent);
        if (sent)
            sync_count(c->w, &c->w->m->svc[SVC_HTTP].bytes_sent, sent);
        if (rc < 0)
            return -1;
        if (rc == OUTQ_BLOCKED) {
            struct pollfd pf = {.fd = c->io.fd, .events = POLLOUT};
            poll(&pf, 1, SYNC_POLL_MS);
        }
    }
    return 0;
}

static void reap(struct worker *w)
{
    while (w->closed) {
        struct conn *c = w->closed;
        w->closed = c->next_closed;
        fpool_put(&w->conns, c);
    }
}

/* Serves one connection until it closes, times out, or the server drains. */
static void serve_conn(struct worker *w, int fd)
{
    const struct config *cfg = w->cfg;
    struct conn *c = conn_open(w, fd, SVC_HTTP, &http_proto);
    if (!c) {
        __atomic_sub_fetch(&w->srv->active[SVC_HTTP], 1, __ATOMIC_RELAXED);
        return;
    }
    w->open_conns[SVC_HTTP]++;
    sync_count(w, &w->m->svc[SVC_HTTP].connections_total, 1);
    struct timeval tv = {.tv_sec = 0, .tv_usec = SYNC_POLL_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    loop_update_time(&w->loop);
    uint64_t waiting_since = w->loop.now_ms;
    for (;;) {
        if (!c->in) {
            c->in = buf_get(&w->bufs);
            if (!c->in)
                break;
            c->in_off = c->in_len = 0;
        } else if (c->in_len == c->in->cap && conn_in_reserve(c, BUF_SIZE / 4) < 0) {
            break;
        }
        ssize_t n = read(fd, c->in->data + c->in_len, c->in->cap - c->in_len);
        loop_update_time(&w->loop);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            int partial = c->in_len > c->in_off;
            uint64_t idle = w->loop.now_ms - waiting_since;
            if (partial && idle >= (uint64_t)(cfg->http_head_timeout * 1000)) {
                c->proto->on_timeout(c); /* 408 */
                break;
            }
            if (!partial &&
                (server_draining(w->srv) || idle >= (uint64_t)(cfg->http_keepalive_timeout * 1000)))
                break;
            continue;
        }
        if (n <= 0)
            break;
        if (c->in_len == c->in_off)
            waiting_since = w->loop.now_ms;
        c->in_len += (uint32_t)n;
        c->in->len = c->in_len;
        sync_count(w, &w->m->svc[SVC_HTTP].bytes_received, (uint64_t)n);
        if (c->proto->on_data(c) < 0 || (c->flags & CONN_CLOSED))
            break;
        if (c->in && c->in_off == c->in_len) {
            buf_unref(c->in);
            c->in = NULL;
            waiting_since = w->loop.now_ms;
        }
        if (sync_flush(c) < 0 || (c->flags & CONN_CLOSING))
            break;
    }
    if (!(c->flags & CONN_CLOSED)) {
        sync_flush(c);
        shutdown(fd, SHUT_WR);
        conn_close(c);
    }
    reap(w);
}

static void *conn_thread(void *arg)
{
    struct sync_conn_arg *a = arg;
    struct worker *w = sync_worker_new(a->srv);
    if (w) {
        serve_conn(w, a->fd);
        sync_worker_free(w);
    } else {
        close(a->fd);
        __atomic_sub_fetch(&a->srv->active[SVC_HTTP], 1, __ATOMIC_RELAXED);
    }
    free(a);
    return NULL;
}

static void *acceptor(void *arg)
{
    struct server *srv = arg;
    const struct config *cfg = srv->cfg;
    struct worker *one = cfg->model == MODEL_BLOCKING ? sync_worker_new(srv) : NULL;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, SYNC_STACK);
    for (;;) {
        int fd = accept4(srv->sync_fd, NULL, NULL, SOCK_CLOEXEC);
        if (server_draining(srv)) {
            if (fd >= 0)
                close(fd);
            break;
        }
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(10000);
            continue;
        }
        int active = __atomic_add_fetch(&srv->active[SVC_HTTP], 1, __ATOMIC_RELAXED);
        if (active > cfg->max_connections) {
            __atomic_sub_fetch(&srv->active[SVC_HTTP], 1, __ATOMIC_RELAXED);
            http_on_reject(fd);
            close(fd);
            pthread_mutex_lock(&srv->sync_lock);
            ctr_add(&srv->sync_metrics->svc[SVC_HTTP].rejected[REJECT_MAX_CONNECTIONS], 1);
            pthread_mutex_unlock(&srv->sync_lock);
            continue;
        }
        if (one) {
            serve_conn(one, fd);
            continue;
        }
        struct sync_conn_arg *a = malloc(sizeof *a);
        pthread_t t;
        if (!a) {
            close(fd);
            __atomic_sub_fetch(&srv->active[SVC_HTTP], 1, __ATOMIC_RELAXED);
            continue;
        }
        a->srv = srv;
        a->fd = fd;
        if (pthread_create(&t, &attr, conn_thread, a) != 0) {
            log_warn("threaded model: cannot start a thread: %s", strerror(errno));
            close(fd);
            free(a);
            __atomic_sub_fetch(&srv->active[SVC_HTTP], 1, __ATOMIC_RELAXED);
        }
    }
    pthread_attr_destroy(&attr);
    if (one)
        sync_worker_free(one);
    return NULL;
}

int http_models_start(struct server *srv, int listen_fd)
{
    int flags = fcntl(listen_fd, F_GETFL);
    fcntl(listen_fd, F_SETFL, flags & ~O_NONBLOCK);
    srv->sync_fd = listen_fd;
    srv->sync_metrics = calloc(1, sizeof *srv->sync_metrics);
    if (!srv->sync_metrics)
        return -ENOMEM;
    metrics_init(srv->sync_metrics);
    pthread_mutex_init(&srv->sync_lock, NULL);
    int rc = pthread_create(&srv->sync_thread, NULL, acceptor, srv);
    if (rc != 0)
        return -rc;
    srv->sync_started = 1;
    return 0;
}

void http_models_drain(struct server *srv)
{
    if (!srv->sync_started)
        return;
    /* Wakes the acceptor from accept(): it sees the drain flag and stops. */
    shutdown(srv->sync_fd, SHUT_RDWR);
}

void http_models_stop(struct server *srv)
{
    if (!srv->sync_started)
        return;
    pthread_join(srv->sync_thread, NULL);
    close(srv->sync_fd);
    srv->sync_started = 0;
}
