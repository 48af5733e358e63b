#include "core/server.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "http/models.h"
#include "services.h"

void server_worker_drained(struct server *s, struct worker *w)
{
    (void)w;
    uint64_t one = 1;
    ssize_t n = write(s->done_fd, &one, sizeof one);
    (void)n;
}

static const struct service *service_for(int svc)
{
    switch (svc) {
    case SVC_HTTP:
        return &http_service;
    case SVC_ECHO:
        return &echo_service;
    case SVC_ADMIN:
        return &admin_service;
    case SVC_CHAT:
        return &chat_service;
    default:
        return NULL;
    }
}

static int open_listeners(struct server *srv)
{
    const struct config *cfg = srv->cfg;
    char err[256];
    for (int s = 0; s < SVC_COUNT; s++) {
        for (int i = 0; i < SERVER_MAX_WORKERS; i++)
            srv->listen_fds[s][i] = -1;
        if (!cfg->listen[s].enabled)
            continue;
        srv->services[s] = service_for(s);
        if (!srv->services[s]) {
            log_warn("%s service: not implemented yet; not listening", service_names[s]);
            continue;
        }
        uint16_t port = 0;
        /* The sync models of the http service accept on one listener of their own. */
        int count = s == SVC_HTTP && cfg->model != MODEL_ASYNC ? 1 : srv->nworkers;
        for (int i = 0; i < count; i++) {
            int fd = net_listen(&cfg->listen[s], i == 0 ? 0 : port, &port, err, sizeof err);
            if (fd < 0) {
                log_error("%s service: cannot listen on %s", service_names[s], err);
                return -1;
            }
            srv->listen_fds[s][i] = fd;
            /* The HTTP-speaking services' clients speak first (not the balancer's: a TCP
             * backend may greet first). */
            int rc = cfg->defer_accept > 0 && (s == SVC_HTTP || s == SVC_CHAT || s == SVC_ADMIN)
                         ? net_defer_accept(fd, cfg->defer_accept)
                         : 0;
            if (rc < 0 && i == 0)
                log_warn("%s service: TCP_DEFER_ACCEPT: %s", service_names[s], strerror(-rc));
        }
        srv->ports[s] = port;
    }
    return 0;
}

static void announce(const struct server *srv)
{
    for (int s = 0; s < SVC_COUNT; s++) {
        if (!srv->services[s])
            continue;
        char where[96];
        net_format_addr(srv->cfg->listen[s].host, srv->ports[s], where, sizeof where);
        printf("listening %s %s\n", service_names[s], where);
    }
    fflush(stdout);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for a signal; then drains until every worker reports done, the timeout passes, or a
 * second signal comes. Returns the exit status. */
static int supervise(struct server *srv, int sigfd)
{
    int drained = 0;
    double deadline = 0;
    for (;;) {
        struct pollfd pf[2] = {{.fd = sigfd, .events = POLLIN},
                               {.fd = srv->done_fd, .events = POLLIN}};
        int timeout = -1;
        if (srv->draining) {
            double left = deadline - mono_now();
            if (left <= 0) {
                log_warn("shutdown timeout (%.1f s) passed; closing what is left",
                         srv->cfg->shutdown_timeout);
                return 0;
            }
            timeout = (int)(left * 1000) + 1;
            if (srv->sync_started && timeout > 50)
                timeout = 50; /* sync-model connections are counted, not reported */
        }
        int n = poll(pf, 2, timeout);
        if (n < 0 && errno != EINTR)
            return 1;
        if (n > 0 && (pf[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof si) == sizeof si) {
                if (srv->draining) {
                    log_warn("second signal: exiting now");
                    _exit(1);
                }
                log_info("signal %d: draining (up to %.1f s)", (int)si.ssi_signo,
                         srv->cfg->shutdown_timeout);
                __atomic_store_n(&srv->draining, 1, __ATOMIC_RELAXED);
                deadline = mono_now() + srv->cfg->shutdown_timeout;
                for (int i = 0; i < srv->nworkers; i++)
                    worker_post_drain(&srv->workers[i]);
                http_models_drain(srv);
            }
        }
        if (n > 0 && (pf[1].revents & POLLIN)) {
            uint64_t v;
            if (read(srv->done_fd, &v, sizeof v) == sizeof v)
                drained += (int)v;
        }
        if (srv->draining && drained >= srv->nworkers &&
            __atomic_load_n(&srv->active[SVC_HTTP], __ATOMIC_RELAXED) == 0) {
            log_info("drained; exiting");
            return 0;
        }
    }
}

int server_run(const struct config *cfg)
{
    struct server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return 1;
    srv->cfg = cfg;
    srv->nworkers = cfg->workers;
    srv->start_wall_s = time(NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Signals go to the main thread's signalfd; workers and pool threads inherit the mask. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    int sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
    srv->done_fd = eventfd(0, EFD_CLOEXEC);
    int status = 1;
    if (sigfd < 0 || srv->done_fd < 0 || open_listeners(srv) < 0)
        goto out;
    if (bpool_init(&srv->bpool, cfg->blocking_threads) < 0) {
        log_error("cannot start the blocking-task pool");
        goto out;
    }
    /* The sync models of the http service accept on their own thread: take their listener
     * before the workers are given theirs. */
    int sync_fd = -1;
    if (srv->services[SVC_HTTP] && cfg->model != MODEL_ASYNC) {
        sync_fd = srv->listen_fds[SVC_HTTP][0];
        srv->listen_fds[SVC_HTTP][0] = -1;
    }
    srv->workers = calloc((size_t)srv->nworkers, sizeof *srv->workers);
    if (!srv->workers)
        goto out;
    for (int i = 0; i < srv->nworkers; i++) {
        int rc = worker_init(&srv->workers[i], srv, i);
        if (rc < 0) {
            log_error("worker %d: %s", i, strerror(-rc));
            goto out;
        }
    }
    for (int i = 0; i < srv->nworkers; i++) {
        if (worker_start(&srv->workers[i]) < 0) {
            log_error("cannot start worker %d", i);
            _exit(1);
        }
    }
    if (sync_fd >= 0) {
        if (http_models_start(srv, sync_fd) < 0) {
            log_error("cannot start the %s model",
                      cfg->model == MODEL_THREADED ? "threaded" : "blocking");
            _exit(1);
        }
    }
    announce(srv);
    log_info("weft %s serving with %d worker(s)", WEFT_VERSION, srv->nworkers);
    status = supervise(srv, sigfd);
    __atomic_store_n(&srv->stopping, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < srv->nworkers; i++)
        worker_post_stop(&srv->workers[i]);
    for (int i = 0; i < srv->nworkers; i++)
        worker_join(&srv->workers[i]);
    if (srv->sync_started) {
        /* Threads of the threaded model may still hold connections after a timeout. */
        if (__atomic_load_n(&srv->active[SVC_HTTP], __ATOMIC_RELAXED) > 0) {
            fflush(stdout);
            _exit(status);
        }
        http_models_stop(srv);
    }
    /* Blocking jobs still running would post to the workers we are about to free: leave them to
     * the process exit instead. */
    if (__atomic_load_n(&srv->bpool.running, __ATOMIC_RELAXED) > 0 || srv->bpool.queued > 0) {
        fflush(stdout);
        _exit(status);
    }
    bpool_fini(&srv->bpool);
    for (int i = 0; i < srv->nworkers; i++)
        worker_fini(&srv->workers[i]);
out:
    for (int s = 0; s < SVC_COUNT; s++)
        for (int i = 0; i < SERVER_MAX_WORKERS; i++)
            if (srv->listen_fds[s][i] >= 0)
                close(srv->listen_fds[s][i]);
    free(srv->workers);
    free(srv->sync_metrics);
    if (sigfd >= 0)
        close(sigfd);
    if (srv->done_fd >= 0)
        close(srv->done_fd);
    free(srv);
    return status;
}
