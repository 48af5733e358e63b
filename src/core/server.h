/* server: the process-wide side of `weft serve`: listening sockets made before the workers
 * start, the workers, the blocking-task pool, signals and graceful shutdown. */
#ifndef WEFT_CORE_SERVER_H
#define WEFT_CORE_SERVER_H

#include <pthread.h>
#include <stdint.h>

#include "core/bpool.h"
#include "core/config.h"
#include "core/worker.h"

struct conn;

/* What a service plugs into the core: its protocol and its per-worker set-up. */
struct service {
    const char *name;
    const struct proto *proto;
    /* Per-worker state in w->svc_state[svc]; may be NULL. 0 or -errno. */
    int (*worker_init)(struct worker *w, int svc);
    void (*worker_fini)(struct worker *w, int svc);
    /* A new connection (set timers, greet). May be NULL. */
    void (*on_open)(struct conn *c);
    /* Answers a connection refused over the limit before it is closed (HTTP: 503). May be
     * NULL: a plain close. */
    void (*on_reject)(int fd);
};

#define SERVER_MAX_WORKERS 256

struct server {
    const struct config *cfg;
    const struct service *services[SVC_COUNT]; /* NULL: the service is off */
    int listen_fds[SVC_COUNT][SERVER_MAX_WORKERS];
    uint16_t ports[SVC_COUNT];
    int nworkers;
    struct worker *workers;
    struct bpool bpool;
    int active[SVC_COUNT]; /* atomic: open connections, enforced against max_connections */
    int draining;          /* atomic */
    int done_fd;           /* eventfd: a worker finished draining */
    int64_t start_wall_s;
    void *svc_shared[SVC_COUNT]; /* state a service shares between its workers (chat rooms) */
    int stopping;                /* atomic: workers are being stopped; post nothing more */
    /* --model threaded|blocking: the http service runs on its own threads (http/models.c). */
    int sync_fd;
    int sync_started;
    pthread_t sync_thread;
    pthread_mutex_t sync_lock;
    struct worker_metrics *sync_metrics;
};

/* Runs `weft serve` with cfg until shut down; returns the process exit status. */
int server_run(const struct config *cfg);

/* True once graceful shutdown began (read from any thread). */
static inline int server_draining(const struct server *s)
{
    return __atomic_load_n(&s->draining, __ATOMIC_RELAXED);
}

/* Tells the main thread that w finished draining. */
void server_worker_drained(struct server *s, struct worker *w);

#endif
