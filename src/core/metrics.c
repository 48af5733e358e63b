#include "core/metrics.h"

#include <string.h>

const char *const reject_reason_names[REJECT_COUNT] = {"max_connections", "fd_limit", "draining"};

void metrics_init(struct worker_metrics *m)
{
    memset(m, 0, sizeof *m);
    for (int s = 0; s < SVC_COUNT; s++)
        hist_init(&m->svc[s].latency_us);
    hist_init(&m->chat.fanout_us);
}

void metrics_request(struct svc_metrics *m, int status, uint64_t duration_us)
{
    if (status >= METRICS_STATUS_MIN && status <= METRICS_STATUS_MAX)
        ctr_add(&m->requests[status - METRICS_STATUS_MIN], 1);
    hist_record(&m->latency_us, duration_us);
}

void metrics_sum(struct svc_metrics *dst, const struct svc_metrics *src)
{
    dst->connections_total += ctr_read(&src->connections_total);
    for (int r = 0; r < REJECT_COUNT; r++)
        dst->rejected[r] += ctr_read(&src->rejected[r]);
    dst->bytes_received += ctr_read(&src->bytes_received);
    dst->bytes_sent += ctr_read(&src->bytes_sent);
    for (int i = 0; i <= METRICS_STATUS_MAX - METRICS_STATUS_MIN; i++)
        dst->requests[i] += ctr_read(&src->requests[i]);
    metrics_hist_sum(&dst->latency_us, &src->latency_us);
}

void metrics_hist_sum(struct hist *d, const struct hist *h)
{
    /* Copied field by field with relaxed loads so a scrape never tears a counter; buckets may be
     * a few records apart, which a scrape tolerates. */
    d->count += ctr_read(&h->count);
    d->clamped += ctr_read(&h->clamped);
    uint64_t mn = ctr_read(&h->min), mx = ctr_read(&h->max);
    if (mn < d->min)
        d->min = mn;
    if (mx > d->max)
        d->max = mx;
    d->sum += h->sum;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        d->counts[i] += ctr_read(&h->counts[i]);
}
