/* run: one run of `weft bench`: the load split over worker threads, their results merged. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/schedule.h"

#define OPEN_LEAD_US 20000 /* every thread is waiting before the first request is due */
#define MIN_SLOT_US 100000 /* the timeline's finest slot */
#define PROGRESS_US 1000000

const char *const bench_err_names[BENCH_ERR_KINDS] = {"connect", "read",   "write",
                                                      "timeout", "status", "protocol"};

uint64_t bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int bench_send(int fd, const void *p, size_t len, size_t *off)
{
    while (*off < len) {
        ssize_t n = send(fd, (const char *)p + *off, len - *off, MSG_NOSIGNAL);
        if (n > 0)
            *off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        else
            return -1;
    }
    return 0;
}

void bench_timeline_record(struct bench_worker *w, uint64_t now, uint64_t lat_us)
{
    struct bench_timeline *tl = w->tl;
    if (!tl)
        return;
    uint64_t i = now > w->t0_us ? (now - w->t0_us) / tl->slot_us : 0;
    if (i >= BENCH_TL_SLOTS)
        i = BENCH_TL_SLOTS - 1;
    tl->count[i]++;
    tl->sum_us[i] += lat_us;
    if (lat_us > tl->max_us[i])
        tl->max_us[i] = lat_us;
}

int bench_result_init(struct bench_result *r)
{
    memset(r, 0, sizeof *r);
    r->lat = malloc(sizeof *r->lat);
    r->lat_unc = malloc(sizeof *r->lat_unc);
    r->tl = calloc(1, sizeof *r->tl);
    if (!r->lat || !r->lat_unc || !r->tl) {
        bench_result_free(r);
        return -1;
    }
    hist_init(r->lat);
    hist_init(r->lat_unc);
    return 0;
}

void bench_result_free(struct bench_result *r)
{
    free(r->lat);
    free(r->lat_unc);
    free(r->tl);
    r->lat = r->lat_unc = NULL;
    r->tl = NULL;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

struct thread {
    pthread_t tid;
    struct bench_worker w;
    int done; /* set (atomically) by the thread when its worker returned */
};

static void *thread_main(void *arg)
{
    struct thread *th = arg;
    if (th->w.t->proto == BENCH_WS)
        bench_ws_worker_run(&th->w);
    else
        bench_http_worker_run(&th->w);
    __atomic_store_n(&th->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Sets up worker i of nt for load l starting at t0. -1 when out of memory. */
static int worker_init(struct bench_worker *w, const struct bench_target *t,
                       const struct bench_load *l, int i, int nt, uint64_t t0)
{
    memset(w, 0, sizeof *w);
    w->t = t;
    w->mode = l->mode;
    w->t0_us = t0;
    w->end_us = t0 + (uint64_t)(l->duration_s * 1e6);
    w->think_us = l->mode == BENCH_CLOSED ? l->think_us : 0;
    if (t->proto == BENCH_WS) {
        w->sender = i == 0;
        w->subscribers = l->subscribers / nt + (i < l->subscribers % nt);
        w->conns = w->subscribers + w->sender;
        w->total = w->sender ? l->total : 0;
        if (l->mode == BENCH_OPEN && w->sender) {
            w->rps = l->rps;
            w->total = schedule_count(l->rps, l->duration_s);
        }
    } else {
        w->conns = l->conns / nt + (i < l->conns % nt);
        if (l->mode == BENCH_OPEN) {
            /* Thread i takes requests i, i + nt, i + 2 nt ... of the one global schedule. */
            uint64_t all = schedule_count(l->rps, l->duration_s);
            w->rps = l->rps / nt;
            w->t0_us = t0 + (uint64_t)((double)i * 1e6 / l->rps);
            w->total = all > (uint64_t)i ? (all - (uint64_t)i + nt - 1) / nt : 0;
        } else if (l->total) {
            w->total = l->total / nt + ((uint64_t)i < l->total % nt);
        }
    }
    w->lat = malloc(sizeof *w->lat);
    w->lat_unc = malloc(sizeof *w->lat_unc);
    w->tl = calloc(1, sizeof *w->tl);
    if (!w->lat || !w->lat_unc || !w->tl)
        return -1;
    hist_init(w->lat);
    hist_init(w->lat_unc);
    uint64_t span = (uint64_t)(l->duration_s * 1e6) / BENCH_TL_SLOTS + 1;
    w->tl->slot_us = span > MIN_SLOT_US ? span : MIN_SLOT_US;
    return 0;
}

static void worker_free(struct bench_worker *w)
{
    free(w->lat);
    free(w->lat_unc);
    free(w->tl);
}

static void merge(struct bench_result *r, const struct bench_worker *w)
{
    r->requests += w->requests;
    r->dropped += w->dropped;
    r->deliveries += w->deliveries;
    r->unanswered += w->unanswered;
    r->poll_us += w->poll_us;
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        r->errors[k] += w->errors[k];
    for (int s = 0; s < BENCH_MAX_STATUS; s++)
        r->status[s] += w->status[s];
    hist_merge(r->lat, w->lat);
    hist_merge(r->lat_unc, w->lat_unc);
    r->tl->slot_us = w->tl->slot_us;
    for (int i = 0; i < BENCH_TL_SLOTS; i++) {
        r->tl->count[i] += w->tl->count[i];
        r->tl->sum_us[i] += w->tl->sum_us[i];
        if (w->tl->max_us[i] > r->tl->max_us[i])
            r->tl->max_us[i] = w->tl->max_us[i];
    }
}

/* Waits for the threads, calling the progress line about once a second. */
static void wait_threads(const struct bench_opts *o, const struct bench_load *l, struct thread *ths,
                         int nt, uint64_t t0, int show)
{
    uint64_t next = bench_now_us() + PROGRESS_US;
    for (;;) {
        int running = 0;
        uint64_t reqs = 0, errs = 0;
        for (int i = 0; i < nt; i++) {
            running += !__atomic_load_n(&ths[i].done, __ATOMIC_ACQUIRE);
            /* Racy reads of counters another thread increments: good enough for a display. */
            reqs += __atomic_load_n(&ths[i].w.requests, __ATOMIC_RELAXED);
            for (int k = 0; k < BENCH_ERR_KINDS; k++)
                errs += __atomic_load_n(&ths[i].w.errors[k], __ATOMIC_RELAXED);
        }
        uint64_t now = bench_now_us();
        if (!running)
            break;
        if (show && now >= next) {
            bench_progress(o, l, now > t0 ? (double)(now - t0) / 1e6 : 0, reqs, errs, 0);
            next += PROGRESS_US;
        }
        struct timespec ts = {.tv_nsec = 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < nt; i++)
        pthread_join(ths[i].tid, NULL);
    if (show)
        bench_progress(o, l, 0, 0, 0, 1);
}

/* One pass of load l: threads started, waited for and, when r is set, merged into it. */
static int run_once(const struct bench_opts *o, const struct bench_target *t,
                    const struct bench_load *l, struct bench_result *r)
{
    int nt = l->threads;
    int conns = t->proto == BENCH_WS ? l->subscribers + 1 : l->conns;
    if (nt > conns)
        nt = conns;
    if (nt < 1)
        nt = 1;
    struct thread *ths = calloc((size_t)nt, sizeof *ths);
    int rc = -1, started = 0;
    if (!ths) {
        fprintf(stderr, "weft bench: out of memory\n");
        return -1;
    }
    uint64_t start = bench_now_us();
    uint64_t t0 = start + (l->mode == BENCH_OPEN ? OPEN_LEAD_US : 0);
    struct bench_ws_sync sync = {
        .conns = conns, .run_id = start, .cur_seq = UINT64_MAX, .wake_fd = -1};
    if (t->proto == BENCH_WS && l->mode == BENCH_CLOSED &&
        (sync.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        fprintf(stderr, "weft bench: eventfd: %s\n", strerror(errno));
        free(ths);
        return -1;
    }
    for (int i = 0; i < nt; i++) {
        if (worker_init(&ths[i].w, t, l, i, nt, t0) < 0) {
            fprintf(stderr, "weft bench: out of memory\n");
            goto out;
        }
        ths[i].w.sync = &sync;
    }
    double cpu0 = cpu_seconds();
    for (; started < nt; started++) {
        if (pthread_create(&ths[started].tid, NULL, thread_main, &ths[started]) != 0) {
            fprintf(stderr, "weft bench: cannot start a thread\n");
            goto out;
        }
    }
    wait_threads(o, l, ths, nt, t0, r && o->progress);
    started = 0;
    uint64_t end = bench_now_us();
    rc = 0;
    for (int i = 0; i < nt; i++) {
        if (ths[i].w.fail[0]) {
            fprintf(stderr, "weft bench: %s\n", ths[i].w.fail);
            rc = -1;
        }
    }
    if (r) {
        /* ws://: the run is measured from the barrier, without connecting and joining. */
        if (sync.go_us) {
            t0 = sync.go_us;
            cpu0 = sync.go_cpu_s;
        }
        r->load = *l;
        r->elapsed_s = (double)(end - t0) / 1e6;
        r->cpu_pct = r->elapsed_s > 0 ? (cpu_seconds() - cpu0) / r->elapsed_s * 100 : 0;
        for (int i = 0; i < nt; i++)
            merge(r, &ths[i].w);
        for (int k = 0; k < BENCH_ERR_KINDS; k++)
            r->errors_total += r->errors[k];
    }
out:
    for (int i = 0; i < started; i++)
        pthread_join(ths[i].tid, NULL);
    if (sync.wake_fd >= 0)
        close(sync.wake_fd);
    for (int i = 0; i < nt; i++)
        worker_free(&ths[i].w);
    free(ths);
    return rc;
}

int bench_run(const struct bench_opts *o, const struct bench_target *t, const struct bench_load *l,
              struct bench_result *r)
{
    if (l->warmup_s > 0) {
        struct bench_load warm = *l;
        warm.duration_s = l->warmup_s;
        warm.total = 0;
        warm.warmup_s = 0;
        if (run_once(o, t, &warm, NULL) < 0)
            return -1;
    }
    return run_once(o, t, l, r);
}
