#include "admin/stats.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "services.h"

void textbuf_printf(struct textbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static uint64_t read_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    uint64_t n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not counting the directory's own descriptor */
}

struct stats *stats_collect(const struct server *srv)
{
    struct stats *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    for (int v = 0; v < SVC_COUNT; v++) {
        s->enabled[v] = srv->services[v] != NULL;
        s->active[v] = __atomic_load_n(&srv->active[v], __ATOMIC_RELAXED);
        hist_init(&s->svc[v].latency_us);
        for (int i = 0; i < srv->nworkers; i++)
            metrics_sum(&s->svc[v], &srv->workers[i].metrics.svc[v]);
        if (srv->sync_metrics) {
            pthread_mutex_lock((pthread_mutex_t *)&srv->sync_lock);
            metrics_sum(&s->svc[v], &srv->sync_metrics->svc[v]);
            pthread_mutex_unlock((pthread_mutex_t *)&srv->sync_lock);
        }
    }
    hist_init(&s->chat.fanout_us);
    for (int i = 0; i < srv->nworkers; i++) {
        const struct chat_metrics *c = &srv->workers[i].metrics.chat;
        s->chat.received += ctr_read(&c->received);
        s->chat.delivered += ctr_read(&c->delivered);
        s->chat.dropped += ctr_read(&c->dropped);
        s->chat.slow_closed += ctr_read(&c->slow_closed);
        metrics_hist_sum(&s->chat.fanout_us, &c->fanout_us);
    }
    chat_counts(srv, &s->chat_rooms, &s->chat_clients);
    s->redis_on = srv->cfg->redis[0] != '\0';
    s->redis_workers_up = s->redis_on ? chat_redis_workers_up(srv) : 0;
    s->workers = srv->nworkers;
    s->rss_bytes = read_rss();
    s->open_fds = count_fds();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    s->start_time = (double)srv->start_wall_s;
    s->draining = server_draining(srv);
    return s;
}

void stats_free(struct stats *s)
{
    free(s);
}

static const double le_seconds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                    0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                    1,      2.5,     5,      10,    30,     60};

static void header(struct textbuf *o, const char *name, const char *type, const char *help)
{
    textbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int speaks_http(int svc)
{
    return svc == SVC_HTTP || svc == SVC_ADMIN || svc == SVC_BALANCER;
}

static void histogram(struct textbuf *o, const char *name, const char *labels, const struct hist *h)
{
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < sizeof le_seconds / sizeof le_seconds[0]; i++)
        textbuf_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, le_seconds[i],
                       (unsigned long long)hist_count_le(h, (uint64_t)(le_seconds[i] * 1e6)));
    textbuf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                   (unsigned long long)h->count);
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    textbuf_printf(o, "%s_sum%s%s%s %.6f\n", name, open, labels, close, h->sum / 1e6);
    textbuf_printf(o, "%s_count%s%s%s %llu\n", name, open, labels, close,
                   (unsigned long long)h->count);
}

/* A metric without labels: its HELP and TYPE lines and its one sample. */
static void scalar(struct textbuf *o, const char *name, const char *type, const char *help,
                   unsigned long long value)
{
    header(o, name, type, help);
    textbuf_printf(o, "%s %llu\n", name, value);
}

static void chat_prometheus(const struct stats *s, struct textbuf *o)
{
    scalar(o, "weft_chat_rooms", "gauge", "Open chat rooms.", (unsigned long long)s->chat_rooms);
    scalar(o, "weft_chat_clients", "gauge", "Chat members in any room.",
           (unsigned long long)s->chat_clients);
    scalar(o, "weft_chat_messages_received_total", "counter", "Chat messages from clients.",
           s->chat.received);
    scalar(o, "weft_chat_messages_delivered_total", "counter",
           "Copies of chat frames queued to members.", s->chat.delivered);
    scalar(o, "weft_chat_messages_dropped_total", "counter",
           "Copies skipped for slow members (--chat-slow-policy drop).", s->chat.dropped);
    scalar(o, "weft_chat_slow_consumers_closed_total", "counter",
           "Members closed with 1008 for not reading (--chat-slow-policy close).",
           s->chat.slow_closed);
    header(o, "weft_chat_fanout_seconds", "histogram",
           "From a message's receipt to its copies being queued on a worker.");
    histogram(o, "weft_chat_fanout_seconds", "", &s->chat.fanout_us);
    if (s->redis_on) {
        scalar(o, "weft_chat_redis_connected", "gauge",
               "1 when every worker's Redis bridge is connected, else 0.",
               s->redis_workers_up == s->workers);
        scalar(o, "weft_chat_redis_workers_connected", "gauge",
               "Workers whose Redis bridge is connected.", (unsigned long long)s->redis_workers_up);
    }
}

void stats_prometheus(const struct stats *s, struct textbuf *o)
{
    header(o, "weft_connections_active", "gauge", "Open connections.");
    for (int v = 0; v < SVC_COUNT; v++)
        if (s->enabled[v])
            textbuf_printf(o, "weft_connections_active{service=\"%s\"} %lld\n", service_names[v],
                           (long long)s->active[v]);
    header(o, "weft_connections_total", "counter", "Connections accepted.");
    for (int v = 0; v < SVC_COUNT; v++)
        if (s->enabled[v])
            textbuf_printf(o, "weft_connections_total{service=\"%s\"} %llu\n", service_names[v],
                           (unsigned long long)s->svc[v].connections_total);
    header(o, "weft_connections_rejected_total", "counter",
           "Connections refused, by reason (max_connections, fd_limit, draining).");
    for (int v = 0; v < SVC_COUNT; v++)
        if (s->enabled[v])
            for (int r = 0; r < REJECT_COUNT; r++)
                textbuf_printf(o,
                               "weft_connections_rejected_total{service=\"%s\",reason=\"%s\"} "
                               "%llu\n",
                               service_names[v], reject_reason_names[r],
                               (unsigned long long)s->svc[v].rejected[r]);
    header(o, "weft_bytes_received_total", "counter", "Bytes read from clients.");
    for (int v = 0; v < SVC_COUNT; v++)
        if (s->enabled[v])
            textbuf_printf(o, "weft_bytes_received_total{service=\"%s\"} %llu\n", service_names[v],
                           (unsigned long long)s->svc[v].bytes_received);
    header(o, "weft_bytes_sent_total", "counter", "Bytes written to clients.");
    for (int v = 0; v < SVC_COUNT; v++)
        if (s->enabled[v])
            textbuf_printf(o, "weft_bytes_sent_total{service=\"%s\"} %llu\n", service_names[v],
                           (unsigned long long)s->svc[v].bytes_sent);
    header(o, "weft_http_requests_total", "counter", "HTTP requests answered, by status code.");
    for (int v = 0; v < SVC_COUNT; v++) {
        if (!s->enabled[v] || !speaks_http(v))
            continue;
        for (int i = 0; i <= METRICS_STATUS_MAX - METRICS_STATUS_MIN; i++)
            if (s->svc[v].requests[i])
                textbuf_printf(o, "weft_http_requests_total{service=\"%s\",code=\"%d\"} %llu\n",
                               service_names[v], i + METRICS_STATUS_MIN,
                               (unsigned long long)s->svc[v].requests[i]);
    }
    header(o, "weft_http_request_duration_seconds", "histogram",
           "Time from a request's first bytes to its queued response.");
    for (int v = 0; v < SVC_COUNT; v++) {
        if (!s->enabled[v] || !speaks_http(v))
            continue;
        char labels[48];
        snprintf(labels, sizeof labels, "service=\"%s\"", service_names[v]);
        histogram(o, "weft_http_request_duration_seconds", labels, &s->svc[v].latency_us);
    }
    if (s->enabled[SVC_CHAT])
        chat_prometheus(s, o);
    scalar(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
           (unsigned long long)s->rss_bytes);
    scalar(o, "process_open_fds", "gauge", "Open file descriptors.",
           (unsigned long long)s->open_fds);
    header(o, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.");
    textbuf_printf(o, "process_cpu_seconds_total %.6f\n", s->cpu_seconds);
    header(o, "process_start_time_seconds", "gauge", "Start time since the epoch in seconds.");
    textbuf_printf(o, "process_start_time_seconds %.0f\n", s->start_time);
}

void stats_json(const struct stats *s, struct textbuf *o)
{
    textbuf_printf(o, "{\"draining\":%s,\"services\":{", s->draining ? "true" : "false");
    int first = 1;
    for (int v = 0; v < SVC_COUNT; v++) {
        if (!s->enabled[v])
            continue;
        const struct svc_metrics *m = &s->svc[v];
        uint64_t reqs = 0, rejected = 0;
        for (int i = 0; i <= METRICS_STATUS_MAX - METRICS_STATUS_MIN; i++)
            reqs += m->requests[i];
        for (int r = 0; r < REJECT_COUNT; r++)
            rejected += m->rejected[r];
        textbuf_printf(o,
                       "%s\"%s\":{\"connections_active\":%lld,\"connections_total\":%llu,"
                       "\"connections_rejected\":%llu,\"bytes_received\":%llu,"
                       "\"bytes_sent\":%llu,\"requests\":%llu,\"latency_us\":{\"p50\":%llu,"
                       "\"p90\":%llu,\"p99\":%llu,\"max\":%llu}}",
                       first ? "" : ",", service_names[v], (long long)s->active[v],
                       (unsigned long long)m->connections_total, (unsigned long long)rejected,
                       (unsigned long long)m->bytes_received, (unsigned long long)m->bytes_sent,
                       (unsigned long long)reqs,
                       (unsigned long long)hist_percentile(&m->latency_us, 50),
                       (unsigned long long)hist_percentile(&m->latency_us, 90),
                       (unsigned long long)hist_percentile(&m->latency_us, 99),
                       (unsigned long long)(m->latency_us.count ? m->latency_us.max : 0));
        first = 0;
    }
    textbuf_printf(o,
                   "},\"process\":{\"resident_memory_bytes\":%llu,\"open_fds\":%llu,"
                   "\"cpu_seconds\":%.3f,\"start_time\":%.0f}}\n",
                   (unsigned long long)s->rss_bytes, (unsigned long long)s->open_fds,
                   s->cpu_seconds, s->start_time);
}
