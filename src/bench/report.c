/* report: what `weft bench` prints and writes: the table, JSON, CSV, HTML, the progress line. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

double bench_result_rps(const struct bench_result *r)
{
    return r->elapsed_s > 0 ? (double)r->requests / r->elapsed_s : 0.0;
}

static void print_latency_row(FILE *out, const char *name, const struct hist *h)
{
    fprintf(out, "  %-12s %9.3f %9.3f %9.3f %9.3f %9.3f\n", name, hist_percentile(h, 50) / 1e3,
            hist_percentile(h, 90) / 1e3, hist_percentile(h, 99) / 1e3,
            hist_percentile(h, 99.9) / 1e3, h->count ? (double)h->max / 1e3 : 0.0);
}

void bench_print_result(FILE *out, const struct bench_opts *o, const struct bench_result *r)
{
    const struct bench_load *l = &r->load;
    if (o->proto == BENCH_WS)
        fprintf(out, "weft bench %s %s: %d threads, 1 sender, %d subscribers\n", o->mode_name,
                o->url, l->threads, l->subscribers);
    else
        fprintf(out, "weft bench %s %s: %d threads, %d connections%s\n", o->mode_name, o->url,
                l->threads, l->conns, o->new_conn ? " (new connection per request)" : "");
    if (l->mode == BENCH_OPEN)
        fprintf(out, "target rps    %.1f\n", l->rps);
    fprintf(out, "%s      %llu\n", o->proto == BENCH_WS ? "messages" : "requests",
            (unsigned long long)r->requests);
    if (o->proto == BENCH_WS)
        fprintf(out, "deliveries    %llu (%.1f/s)\n", (unsigned long long)r->deliveries,
                r->elapsed_s > 0 ? (double)r->deliveries / r->elapsed_s : 0.0);
    fprintf(out, "duration      %.3f s\n", r->elapsed_s);
    fprintf(out, "req/s         %.1f\n", bench_result_rps(r));
    fprintf(out, "errors        %llu (", (unsigned long long)r->errors_total);
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        fprintf(out, "%s%s %llu", k ? ", " : "", bench_err_names[k],
                (unsigned long long)r->errors[k]);
    fprintf(out, ")\n");
    if (l->mode == BENCH_OPEN)
        fprintf(out, "dropped       %llu\n", (unsigned long long)r->dropped);
    if (o->proto == BENCH_HTTP) {
        fprintf(out, "status       ");
        for (int s = 0; s < BENCH_MAX_STATUS; s++)
            if (r->status[s])
                fprintf(out, " %d: %llu", s, (unsigned long long)r->status[s]);
        fprintf(out, "\n");
    }
    fprintf(out, "latency (ms)         p50       p90       p99     p99.9       max\n");
    if (l->mode == BENCH_OPEN) {
        print_latency_row(out, "corrected", r->lat);
        print_latency_row(out, "uncorrected", r->lat_unc);
    } else {
        print_latency_row(out, o->proto == BENCH_WS ? "fan-out" : "", r->lat);
    }
    fprintf(out, "cpu           %.1f %% of one core\n", r->cpu_pct);
}

void bench_print_table(FILE *out, const struct bench_opts *o, const struct bench_result *rs, int n)
{
    (void)o;
    fprintf(out, "%-14s %10s %12s %8s %9s %9s %9s %9s %6s\n", "run", "requests", "req/s", "errors",
            "p50 ms", "p99 ms", "p99.9 ms", "max ms", "cpu %");
    for (int i = 0; i < n; i++) {
        const struct bench_result *r = &rs[i];
        fprintf(out, "%-14s %10llu %12.1f %8llu %9.3f %9.3f %9.3f %9.3f %6.1f\n", r->label,
                (unsigned long long)r->requests, bench_result_rps(r),
                (unsigned long long)r->errors_total, hist_percentile(r->lat, 50) / 1e3,
                hist_percentile(r->lat, 99) / 1e3, hist_percentile(r->lat, 99.9) / 1e3,
                r->lat->count ? (double)r->lat->max / 1e3 : 0.0, r->cpu_pct);
    }
}

static json_t *latency_json(const struct hist *h)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "p50", hist_percentile(h, 50) / 1e3, "p90",
                     hist_percentile(h, 90) / 1e3, "p99", hist_percentile(h, 99) / 1e3, "p99_9",
                     hist_percentile(h, 99.9) / 1e3, "max", h->count ? (double)h->max / 1e3 : 0.0,
                     "mean", hist_mean(h) / 1e3);
}

static json_t *result_json(const struct bench_opts *o, const struct bench_result *r)
{
    const struct bench_load *l = &r->load;
    json_t *errs = json_object(), *codes = json_object();
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        json_object_set_new(errs, bench_err_names[k], json_integer((json_int_t)r->errors[k]));
    for (int s = 0; s < BENCH_MAX_STATUS; s++) {
        if (r->status[s]) {
            char key[8];
            snprintf(key, sizeof key, "%d", s);
            json_object_set_new(codes, key, json_integer((json_int_t)r->status[s]));
        }
    }
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:I, s:f, s:f, s:I, s:o, s:o, s:o, s:f}",
                  "label", r->label, "mode", l->mode == BENCH_OPEN ? "open" : "closed", "url",
                  o->url ? o->url : "", "protocol",
                  o->proto == BENCH_WS    ? "ws"
                  : o->proto == BENCH_TCP ? "tcp"
                                          : "http",
                  "threads", l->threads, "connections", l->conns, "new_conn", o->new_conn,
                  "requests", (json_int_t)r->requests, "duration_s", r->elapsed_s, "rps",
                  bench_result_rps(r), "errors_total", (json_int_t)r->errors_total, "errors", errs,
                  "status", codes, "latency_ms", latency_json(r->lat), "cpu_percent", r->cpu_pct);
    if (!j)
        return NULL;
    if (l->mode == BENCH_OPEN) {
        json_object_set_new(j, "target_rps", json_real(l->rps));
        json_object_set_new(j, "dropped", json_integer((json_int_t)r->dropped));
        json_object_set_new(j, "latency_uncorrected_ms", latency_json(r->lat_unc));
    }
    if (o->proto == BENCH_WS) {
        json_object_set_new(j, "subscribers", json_integer(l->subscribers));
        json_object_set_new(j, "deliveries", json_integer((json_int_t)r->deliveries));
    }
    return j;
}

int bench_write_json(const char *path, const struct bench_opts *o, const struct bench_result *rs,
                     int n)
{
    json_t *j;
    if (n == 1) {
        j = result_json(o, &rs[0]); /* one run: the object itself, as in earlier versions */
    } else {
        json_t *runs = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(runs, result_json(o, &rs[i]));
        j = json_pack("{s:s, s:o}", "mode", o->mode_name, "runs", runs);
    }
    if (!j)
        return -1;
    int rc = json_dump_file(j, path, JSON_INDENT(2));
    json_decref(j);
    return rc;
}

int bench_write_csv(const char *path, const struct bench_opts *o, const struct bench_result *rs,
                    int n, long long batch_ts)
{
    (void)path, (void)o, (void)rs, (void)n, (void)batch_ts;
    return -1; /* TODO(report helper) */
}

int bench_write_html(const char *path, const struct bench_opts *o, const struct bench_result *rs,
                     int n)
{
    (void)path, (void)o, (void)rs, (void)n;
    return -1; /* TODO(report helper) */
}

void bench_progress(const struct bench_opts *o, const struct bench_load *l, double elapsed_s,
                    uint64_t requests, uint64_t errors, int done)
{
    (void)o, (void)l, (void)elapsed_s, (void)requests, (void)errors, (void)done;
}
