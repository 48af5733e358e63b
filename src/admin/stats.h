/* stats: a consistent-enough snapshot of every worker's counters, for /metrics and /api/stats. */
#ifndef WEFT_ADMIN_STATS_H
#define WEFT_ADMIN_STATS_H

#include <stdint.h>

#include "core/metrics.h"
#include "core/server.h"

struct stats {
    int enabled[SVC_COUNT];
    int64_t active[SVC_COUNT];
    struct svc_metrics svc[SVC_COUNT];
    uint64_t rss_bytes;
    uint64_t open_fds;
    double cpu_seconds;
    double start_time; /* seconds since the epoch */
    int draining;
    int chat_rooms, chat_clients;
    int redis_on, redis_workers_up, workers;
    struct chat_metrics chat;
};

/* Sums the workers' counters into a malloc'd snapshot; NULL on ENOMEM. */
struct stats *stats_collect(const struct server *srv);
void stats_free(struct stats *s);

/* A growable text buffer for the expositions. */
struct textbuf {
    char *p;
    size_t len, cap;
    int oom;
};
void textbuf_printf(struct textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prometheus text format (version 0.0.4). */
void stats_prometheus(const struct stats *s, struct textbuf *out);
/* The same figures as JSON for /api/stats and the dashboard. */
void stats_json(const struct stats *s, struct textbuf *out);

#endif
