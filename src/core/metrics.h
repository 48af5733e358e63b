/* metrics: per-worker counters, summed by whoever reads them (the admin service).
 *
 * Each counter has one writer, its worker, which adds with a relaxed load and store (a plain
 * add on x86-64, no lock prefix); readers on other threads load with relaxed atomics. No lock is
 * taken on the hot path. */
#ifndef WEFT_CORE_METRICS_H
#define WEFT_CORE_METRICS_H

#include <stdint.h>

#include "core/config.h"
#include "core/hist.h"

enum reject_reason { REJECT_MAX_CONNECTIONS, REJECT_FD_LIMIT, REJECT_DRAINING, REJECT_COUNT };

extern const char *const reject_reason_names[REJECT_COUNT];

#define METRICS_STATUS_MIN 100
#define METRICS_STATUS_MAX 599

struct svc_metrics {
    uint64_t connections_total;
    uint64_t rejected[REJECT_COUNT];
    uint64_t bytes_received;
    uint64_t bytes_sent;
    uint64_t requests[METRICS_STATUS_MAX - METRICS_STATUS_MIN + 1]; /* by status code */
    struct hist latency_us;                                         /* request duration */
};

struct chat_metrics {
    uint64_t received;     /* messages from clients */
    uint64_t delivered;    /* copies queued to members */
    uint64_t dropped;      /* copies skipped for slow members (--chat-slow-policy drop) */
    uint64_t slow_closed;  /* members closed with 1008 for being slow */
    struct hist fanout_us; /* from a message's receipt to its copies being queued, per worker */
};

struct worker_metrics {
    struct svc_metrics svc[SVC_COUNT];
    struct chat_metrics chat;
};

static inline void ctr_add(uint64_t *c, uint64_t n)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline uint64_t ctr_read(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

void metrics_init(struct worker_metrics *m);
/* Counts one answered request with its status and duration. */
void metrics_request(struct svc_metrics *m, int status, uint64_t duration_us);
/* Adds src into dst, reading src with relaxed atomic loads. */
void metrics_sum(struct svc_metrics *dst, const struct svc_metrics *src);
/* Adds histogram src into dst the same way. */
void metrics_hist_sum(struct hist *dst, const struct hist *src);

#endif
