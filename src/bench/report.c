/* report: what `weft bench` prints and writes: the table, JSON, CSV, HTML, the progress line. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/svg.h"

double bench_result_rps(const struct bench_result *r)
{
    return r->elapsed_s > 0 ? (double)r->requests / r->elapsed_s : 0.0;
}

static double pct_ms(const struct hist *h, double p)
{
    return (double)hist_percentile(h, p) / 1e3;
}

static double max_ms(const struct hist *h)
{
    return h->count ? (double)h->max / 1e3 : 0.0;
}

static double deliveries_per_s(const struct bench_result *r)
{
    return r->elapsed_s > 0 ? (double)r->deliveries / r->elapsed_s : 0.0;
}

static const char *proto_name(enum bench_proto p)
{
    return p == BENCH_WS ? "ws" : p == BENCH_TCP ? "tcp" : "http";
}

static int is_open(const struct bench_result *r)
{
    return r->load.mode == BENCH_OPEN;
}

/* --co-correct on a closed run: wrk's expected interval (run time x connections / requests, in
 * microseconds) and the latency corrected with it into *out (caller frees). NULL when the option
 * is off, the run is open or it answered nothing. */
static struct hist *co_corrected(const struct bench_opts *o, const struct bench_result *r,
                                 uint64_t *interval_us)
{
    if (!o->co_correct || is_open(r) || r->requests == 0 || r->load.conns <= 0)
        return NULL;
    double e = r->elapsed_s * 1e6 * r->load.conns / (double)r->requests;
    *interval_us = e < 1 ? 1 : (uint64_t)(e + 0.5);
    struct hist *h = malloc(sizeof(*h));
    if (h)
        hist_correct(h, r->lat, *interval_us);
    return h;
}

/* --busy-poll: the time spent polling, % of one core over the run. */
static double poll_pct(const struct bench_result *r)
{
    return r->elapsed_s > 0 ? (double)r->poll_us / 1e6 / r->elapsed_s * 100 : 0.0;
}

static void print_latency_row(FILE *out, const char *name, const struct hist *h)
{
    fprintf(out, "  %-12s %9.3f %9.3f %9.3f %9.3f %9.3f\n", name, pct_ms(h, 50), pct_ms(h, 90),
            pct_ms(h, 99), pct_ms(h, 99.9), max_ms(h));
}

/* "connect 1, read 0, ..." for every kind, or only the kinds that happened. */
static void print_error_kinds(FILE *out, const struct bench_result *r, int nonzero_only)
{
    int first = 1;
    for (int k = 0; k < BENCH_ERR_KINDS; k++) {
        if (nonzero_only && !r->errors[k])
            continue;
        fprintf(out, "%s%s %llu", first ? "" : ", ", bench_err_names[k],
                (unsigned long long)r->errors[k]);
        first = 0;
    }
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
    if (l->think_us)
        fprintf(out, "think         %.3f ms (after each response; not in the latency)\n",
                (double)l->think_us / 1e3);
    fprintf(out, "%s      %llu\n", o->proto == BENCH_WS ? "messages" : "requests",
            (unsigned long long)r->requests);
    if (o->proto == BENCH_WS)
        fprintf(out, "deliveries    %llu (%.1f/s)\n", (unsigned long long)r->deliveries,
                deliveries_per_s(r));
    fprintf(out, "duration      %.3f s\n", r->elapsed_s);
    fprintf(out, "req/s         %.1f\n", bench_result_rps(r));
    fprintf(out, "errors        %llu (", (unsigned long long)r->errors_total);
    print_error_kinds(out, r, 0);
    fprintf(out, ")\n");
    if (l->mode == BENCH_OPEN)
        fprintf(out, "dropped       %llu\n", (unsigned long long)r->dropped);
    if (r->unanswered)
        fprintf(out, "unanswered    %llu (in flight when the run ended)\n",
                (unsigned long long)r->unanswered);
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
        uint64_t e;
        struct hist *co = co_corrected(o, r, &e);
        print_latency_row(out, o->proto == BENCH_WS ? "fan-out" : co ? "measured" : "", r->lat);
        if (co) {
            print_latency_row(out, "co-corrected", co);
            fprintf(out,
                    "co-correction: expected interval %.3f ms (run time x connections / "
                    "requests), %llu samples added\n",
                    (double)e / 1e3, (unsigned long long)(co->count - r->lat->count));
            free(co);
        }
    }
    fprintf(out, "cpu           %.1f %% of one core", r->cpu_pct);
    if (o->busy_poll_us)
        fprintf(out, " (%.1f %% of it polling: --busy-poll)", poll_pct(r));
    fprintf(out, "\n");
}

/* A number for a table, or "-" where the column does not apply to the run. */
static const char *cell(char *buf, size_t cap, int applies, double v, int decimals)
{
    if (!applies)
        return "-";
    snprintf(buf, cap, "%.*f", decimals, v);
    return buf;
}

void bench_print_table(FILE *out, const struct bench_opts *o, const struct bench_result *rs, int n)
{
    int any_open = 0, ws = o->proto == BENCH_WS, lw = 3;
    char c1[32], c2[32], c3[32];
    for (int i = 0; i < n; i++) {
        any_open |= is_open(&rs[i]);
        lw = (int)strlen(rs[i].label) > lw ? (int)strlen(rs[i].label) : lw;
    }
    /* Columns that apply to no run are left out: target/s, dropped, p99 unc, deliveries/s. */
    fprintf(out, "%-*s", lw, "run");
    if (any_open)
        fprintf(out, " %9s", "target/s");
    fprintf(out, " %10s %10s", ws ? "messages" : "requests", ws ? "msg/s" : "req/s");
    if (ws)
        fprintf(out, " %12s", "deliveries/s");
    if (any_open)
        fprintf(out, " %8s", "dropped");
    fprintf(out, " %8s %9s %9s %9s %9s %9s", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms",
            "max ms");
    if (any_open)
        fprintf(out, " %9s", "p99 unc");
    fprintf(out, " %6s\n", "cpu %");
    for (int i = 0; i < n; i++) {
        const struct bench_result *r = &rs[i];
        int open = is_open(r);
        fprintf(out, "%-*s", lw, r->label);
        if (any_open)
            fprintf(out, " %9s", cell(c1, sizeof c1, open, r->load.rps, 1));
        fprintf(out, " %10llu %10.1f", (unsigned long long)r->requests, bench_result_rps(r));
        if (ws)
            fprintf(out, " %12.1f", deliveries_per_s(r));
        if (any_open)
            fprintf(out, " %8s", cell(c2, sizeof c2, open, (double)r->dropped, 0));
        fprintf(out, " %8llu %9.3f %9.3f %9.3f %9.3f %9.3f", (unsigned long long)r->errors_total,
                pct_ms(r->lat, 50), pct_ms(r->lat, 90), pct_ms(r->lat, 99), pct_ms(r->lat, 99.9),
                max_ms(r->lat));
        if (any_open)
            fprintf(out, " %9s", cell(c3, sizeof c3, open, pct_ms(r->lat_unc, 99), 3));
        fprintf(out, " %6.1f\n", r->cpu_pct);
    }
    if (any_open)
        fprintf(out, "open runs: latency from the scheduled start (corrected); p99 unc from the "
                     "actual send\n");
    for (int i = 0; i < n; i++) {
        if (rs[i].errors_total) {
            fprintf(out, "errors in %s: ", rs[i].label);
            print_error_kinds(out, &rs[i], 1);
            fprintf(out, "\n");
        }
    }
}

/* ---- JSON ---- */

static json_t *latency_json(const struct hist *h)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "p50", pct_ms(h, 50), "p90", pct_ms(h, 90),
                     "p99", pct_ms(h, 99), "p99_9", pct_ms(h, 99.9), "max", max_ms(h), "mean",
                     hist_mean(h) / 1e3);
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
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:I, s:f, s:f, s:I, s:o, s:o, s:o, s:f}", "label",
        r->label, "mode", is_open(r) ? "open" : "closed", "url", o->url ? o->url : "", "protocol",
        proto_name(o->proto), "threads", l->threads, "connections", l->conns, "new_conn",
        o->new_conn, "requests", (json_int_t)r->requests, "duration_s", r->elapsed_s, "rps",
        bench_result_rps(r), "errors_total", (json_int_t)r->errors_total, "errors", errs, "status",
        codes, "latency_ms", latency_json(r->lat), "cpu_percent", r->cpu_pct);
    if (!j)
        return NULL;
    json_object_set_new(j, "unanswered", json_integer((json_int_t)r->unanswered));
    if (l->think_us)
        json_object_set_new(j, "think_ms", json_real((double)l->think_us / 1e3));
    if (o->busy_poll_us) {
        json_object_set_new(j, "busy_poll_us", json_integer((json_int_t)o->busy_poll_us));
        json_object_set_new(j, "busy_poll_percent", json_real(poll_pct(r)));
    }
    uint64_t e;
    struct hist *co = co_corrected(o, r, &e);
    if (co) {
        json_object_set_new(j, "latency_co_corrected_ms", latency_json(co));
        json_object_set_new(j, "co_interval_ms", json_real((double)e / 1e3));
        json_object_set_new(j, "co_added", json_integer((json_int_t)(co->count - r->lat->count)));
        free(co);
    }
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

/* ---- CSV ---- */

/* One CSV row being written: a separator before every field but the first. */
struct csv_row {
    FILE *f;
    int fields;
};

static void csv_sep(struct csv_row *r)
{
    if (r->fields++)
        fputc(',', r->f);
}

/* A text field, quoted as RFC 4180 says when it holds a separator, a quote or a line break. */
static void csv_text(struct csv_row *r, const char *s)
{
    csv_sep(r);
    if (!s[strcspn(s, ",\"\r\n")] && s[0] != ' ' && (!s[0] || s[strlen(s) - 1] != ' ')) {
        fputs(s, r->f);
        return;
    }
    fputc('"', r->f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', r->f);
        fputc(*s, r->f);
    }
    fputc('"', r->f);
}

/* A number, or an empty field where the column does not apply to the run (open-only and
 * ws-only columns). Counts pass through a double: exact below 2^53. */
static void csv_num(struct csv_row *r, int applies, double v, int decimals)
{
    csv_sep(r);
    if (applies)
        fprintf(r->f, "%.*f", decimals, v);
}

/* The columns; "errors_*" stands for errors_connect, errors_read ... one per kind. */
static const char *const csv_columns[] = {"batch_ts",
                                          "batch_time",
                                          "call",
                                          "mode",
                                          "label",
                                          "protocol",
                                          "url",
                                          "threads",
                                          "connections",
                                          "new_conn",
                                          "target_rps",
                                          "subscribers",
                                          "duration_s",
                                          "requests",
                                          "rps",
                                          "deliveries",
                                          "dropped",
                                          "errors_total",
                                          "errors_*",
                                          "p50_ms",
                                          "p90_ms",
                                          "p99_ms",
                                          "p99_9_ms",
                                          "max_ms",
                                          "mean_ms",
                                          "uncorrected_p50_ms",
                                          "uncorrected_p99_ms",
                                          "cpu_percent"};

static void csv_write_header(FILE *f)
{
    struct csv_row row = {f, 0};
    for (size_t i = 0; i < sizeof csv_columns / sizeof csv_columns[0]; i++) {
        if (strcmp(csv_columns[i], "errors_*") != 0) {
            csv_text(&row, csv_columns[i]);
            continue;
        }
        for (int k = 0; k < BENCH_ERR_KINDS; k++) {
            csv_sep(&row);
            fprintf(f, "errors_%s", bench_err_names[k]);
        }
    }
    fputc('\n', f);
}

/* One row, in the order of csv_columns. */
static void csv_write_row(FILE *f, const struct bench_opts *o, const struct bench_result *r,
                          long long batch_ts, const char *batch_time)
{
    const struct bench_load *l = &r->load;
    int open = is_open(r), ws = o->proto == BENCH_WS;
    struct csv_row row = {f, 0};
    csv_sep(&row);
    fprintf(f, "%lld", batch_ts);
    csv_text(&row, batch_time);
    csv_text(&row, o->mode_name ? o->mode_name : "");
    csv_text(&row, open ? "open" : "closed");
    csv_text(&row, r->label);
    csv_text(&row, proto_name(o->proto));
    csv_text(&row, o->url ? o->url : "");
    csv_num(&row, 1, l->threads, 0);
    csv_num(&row, 1, l->conns, 0);
    csv_num(&row, 1, o->new_conn != 0, 0);
    csv_num(&row, open, l->rps, 3);
    csv_num(&row, ws, l->subscribers, 0);
    csv_num(&row, 1, r->elapsed_s, 6);
    csv_num(&row, 1, (double)r->requests, 0);
    csv_num(&row, 1, bench_result_rps(r), 3);
    csv_num(&row, ws, (double)r->deliveries, 0);
    csv_num(&row, open, (double)r->dropped, 0);
    csv_num(&row, 1, (double)r->errors_total, 0);
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        csv_num(&row, 1, (double)r->errors[k], 0);
    static const double ps[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        csv_num(&row, 1, pct_ms(r->lat, ps[i]), 3);
    csv_num(&row, 1, max_ms(r->lat), 3);
    csv_num(&row, 1, hist_mean(r->lat) / 1e3, 3);
    csv_num(&row, open, pct_ms(r->lat_unc, 50), 3);
    csv_num(&row, open, pct_ms(r->lat_unc, 99), 3);
    csv_num(&row, 1, r->cpu_pct, 2);
    fputc('\n', f);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Checks that fd's first line is header (its '\n' included); -1 with errno EINVAL when not. */
static int csv_check_header(int fd, const char *header, size_t len)
{
    char buf[4096];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t r = pread(fd, buf + got, sizeof buf - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    char *nl = memchr(buf, '\n', got);
    size_t line = nl ? (size_t)(nl - buf) : got;
    if (line > 0 && buf[line - 1] == '\r')
        line--; /* a file saved with CRLF line ends by a spreadsheet */
    if (!nl || line != len - 1 || memcmp(buf, header, line) != 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int bench_write_csv(const char *path, const struct bench_opts *o, const struct bench_result *rs,
                    int n, long long batch_ts)
{
    char *header = NULL, *rows = NULL, batch_time[32] = "";
    size_t header_len = 0, rows_len = 0;
    int rc = -1, fd = -1, saved = 0;
    struct tm tm;
    time_t ts = (time_t)batch_ts;
    if (gmtime_r(&ts, &tm))
        strftime(batch_time, sizeof batch_time, "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *hf = open_memstream(&header, &header_len), *rf = open_memstream(&rows, &rows_len);
    if (!hf || !rf)
        goto out;
    csv_write_header(hf);
    for (int i = 0; i < n; i++)
        csv_write_row(rf, o, &rs[i], batch_ts, batch_time);
    int closed = fclose(hf) | fclose(rf);
    hf = rf = NULL;
    if (closed != 0)
        goto out;

    /* O_APPEND and one write for all rows, under a lock so that two calls writing the same
     * file at once cannot both write a header or mix their rows. */
    fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    flock(fd, LOCK_EX); /* advisory; without it the write is still whole */
    struct stat st;
    if (fstat(fd, &st) < 0)
        goto out;
    if (st.st_size == 0) {
        if (write_all(fd, header, header_len) < 0)
            goto out;
    } else {
        if (csv_check_header(fd, header, header_len) < 0) {
            if (errno == EINVAL)
                fprintf(stderr,
                        "weft bench: %s: its first line is not this version's CSV header; not "
                        "appending to it (use a new file)\n",
                        path);
            goto out;
        }
        char last;
        if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n' && write_all(fd, "\n", 1) < 0)
            goto out;
    }
    if (write_all(fd, rows, rows_len) < 0)
        goto out;
    rc = 0;
out:
    saved = errno;
    if (hf)
        fclose(hf);
    if (rf)
        fclose(rf);
    if (fd >= 0 && close(fd) < 0 && rc == 0) {
        saved = errno;
        rc = -1;
    }
    free(header);
    free(rows);
    errno = saved;
    return rc;
}

/* ---- HTML ---- */

#define CURVE_STEP 0.025 /* nines between the points of a percentile curve */

/* Every run's latency percentile curve on one chart; open runs also uncorrected, dashed. */
static void html_percentile_chart(FILE *f, const struct bench_opts *o,
                                  const struct bench_result *rs, int n)
{
    uint64_t most = 0;
    double ymax = 0;
    for (int i = 0; i < n; i++) {
        most = rs[i].lat->count > most ? rs[i].lat->count : most;
        ymax = fmax(ymax, max_ms(rs[i].lat));
        if (is_open(&rs[i]))
            ymax = fmax(ymax, max_ms(rs[i].lat_unc));
    }
    /* The axis reaches the nines the largest run has samples for (1000: 99.9 %). */
    int nines = most > 1 ? (int)ceil(log10((double)most) - 1e-9) : 2;
    nines = nines < 2 ? 2 : nines > 6 ? 6 : nines;
    int np = (int)lround(nines / CURVE_STEP) + 2;
    double *xy = malloc((size_t)(4 * n * np) * sizeof *xy);
    struct svg_series *s = calloc((size_t)(2 * n), sizeof *s);
    char(*names)[96] = calloc((size_t)(2 * n), sizeof *names);
    if (!xy || !s || !names) {
        fputs("<p>Out of memory for this chart.</p>\n", f);
        goto out;
    }
    int ns = 0;
    for (int i = 0; i < n; i++) {
        for (int unc = 0; unc <= is_open(&rs[i]); unc++) {
            const struct hist *h = unc ? rs[i].lat_unc : rs[i].lat;
            if (!h->count)
                continue;
            /* Each curve ends at its last sample, 1 - 1/count, where it reaches the maximum. */
            double *x = xy + (size_t)(2 * ns) * (size_t)np, *y = x + np, end = log10(h->count);
            int k = 0;
            for (; k * CURVE_STEP < fmin(end, nines) - 1e-9; k++) {
                x[k] = k * CURVE_STEP;
                y[k] = pct_ms(h, 100.0 * (1 - pow(10, -x[k])));
            }
            x[k] = fmin(end, nines);
            y[k++] = end <= nines ? max_ms(h) : pct_ms(h, 100.0 * (1 - pow(10, -nines)));
            snprintf(names[ns], sizeof names[ns], "%s%s", rs[i].label,
                     !is_open(&rs[i]) ? ""
                     : unc            ? " uncorrected"
                                      : " corrected");
            s[ns] = (struct svg_series){names[ns], x, y, k, i, unc};
            ns++;
        }
    }
    struct svg_chart c = {"Latency by percentile",
                          "percentile",
                          o->proto == BENCH_WS ? "fan-out latency (ms)" : "latency (ms)",
                          nines,
                          ymax,
                          1};
    svg_line_chart(f, &c, s, ns);
out:
    free(xy);
    free(s);
    free(names);
}

/* Latency (mean and max per slot) and throughput over the run's time. */
static void html_timeline_charts(FILE *f, const struct bench_opts *o, const struct bench_result *r)
{
    const struct bench_timeline *tl = r->tl;
    if (!tl || tl->slot_us == 0 || r->elapsed_s <= 0) {
        fputs("<p>No timeline for this run.</p>\n", f);
        return;
    }
    double slot = (double)tl->slot_us / 1e6, lmax = 0, tmax = 0;
    /* Slots that hold data, and slots plotted: a short last slot (under half a slot) is
     * plotted with the one before, not as a point of its own that would dive to 0/s. */
    int nd = (int)ceil(r->elapsed_s / slot - 1e-9), ns = (int)lround(r->elapsed_s / slot);
    nd = nd < 1 ? 1 : nd > BENCH_TL_SLOTS ? BENCH_TL_SLOTS : nd;
    ns = ns < 1 ? 1 : ns > nd ? nd : ns;
    double x[BENCH_TL_SLOTS], mean[BENCH_TL_SLOTS], max[BENCH_TL_SLOTS], tput[BENCH_TL_SLOTS];
    for (int i = 0; i < ns; i++) {
        /* The last slot ends with the run and takes the data of the slots after it. */
        uint64_t count = 0, sum = 0, mx = 0;
        for (int j = i; j < (i < ns - 1 ? i + 1 : nd); j++) {
            count += tl->count[j];
            sum += tl->sum_us[j];
            mx = tl->max_us[j] > mx ? tl->max_us[j] : mx;
        }
        double start = i * slot, width = i < ns - 1 ? slot : r->elapsed_s - start;
        width = width > 0 ? width : slot;
        x[i] = start + width / 2;
        tput[i] = (double)count / width;
        mean[i] = count ? (double)sum / (double)count / 1e3 : NAN;
        max[i] = count ? (double)mx / 1e3 : NAN;
        lmax = count ? fmax(lmax, max[i]) : lmax;
        tmax = fmax(tmax, tput[i]);
    }
    char title[128];
    struct svg_series lat[] = {{"mean", x, mean, ns, 0, 0}, {"max", x, max, ns, 1, 1}};
    snprintf(title, sizeof title, "Latency over time: %s", r->label);
    struct svg_chart c = {title, "seconds since the start", "latency (ms)", r->elapsed_s, lmax, 0};
    svg_line_chart(f, &c, lat, 2);
    const char *what = o->proto == BENCH_WS ? "deliveries/s" : "responses/s";
    struct svg_series thr[] = {{what, x, tput, ns, 2, 0}};
    snprintf(title, sizeof title, "Throughput over time: %s", r->label);
    c = (struct svg_chart){title, "seconds since the start", what, r->elapsed_s, tmax, 0};
    svg_line_chart(f, &c, thr, 1);
}

__attribute__((format(printf, 3, 4))) static void html_param(FILE *f, const char *name,
                                                             const char *fmt, ...)
{
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    fprintf(f, "<tr><th>%s</th><td>", name);
    svg_escape(f, value);
    fputs("</td></tr>\n", f);
}

static void html_params(FILE *f, const struct bench_opts *o)
{
    char date[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", &tm);
    fputs("<table class=\"params\">\n", f);
    html_param(f, "mode", "%s", o->mode_name ? o->mode_name : "");
    html_param(f, "target", "%s", o->url ? o->url : "");
    html_param(f, "protocol", "%s", proto_name(o->proto));
    html_param(f, "threads", "%d", o->threads);
    if (o->proto == BENCH_WS)
        html_param(f, "subscribers", "%d (and 1 sender)", o->subscribers);
    else if (o->cmd == CMD_OPEN)
        html_param(f, "connections", "at most %d", o->conns);
    else if (o->cmd == CMD_CLOSED || o->cmd == CMD_MODELS || o->conns_set)
        html_param(f, "connections", "%d", o->conns);
    if (o->nconcurrencies > 0) {
        char list[512];
        size_t len = 0;
        for (int i = 0; i < o->nconcurrencies && len < sizeof list; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", i ? ", " : "",
                                    o->concurrencies[i]);
        html_param(f, "concurrencies", "%s", list);
    }
    if (o->cmd == CMD_OPEN)
        html_param(f, "rate", "%.1f requests/s", o->rps);
    if (o->think_us)
        html_param(f, "think time", "%g ms after each response (not in the latency)",
                   (double)o->think_us / 1e3);
    /* What a preset's profile or a sweep's default chose is in the table of runs. */
    if (o->total)
        html_param(f, "requests", "%llu", (unsigned long long)o->total);
    else if (o->duration_s > 0)
        html_param(f, "duration", "%g s", o->duration_s);
    if (o->profile)
        html_param(f, "profile", "%s", o->profile);
    if (o->warmup_s > 0)
        html_param(f, "warmup", "%g s", o->warmup_s);
    if (o->repeat > 1)
        html_param(f, "repeat", "%d (medians)", o->repeat);
    if (o->proto == BENCH_HTTP)
        html_param(f, "method", "%s%s", o->method ? o->method : "GET",
                   o->new_conn ? ", a new connection per request" : ", keep-alive");
    html_param(f, "timeout", "%g s", o->timeout_s);
    html_param(f, "date", "%s", date);
    fputs("</table>\n", f);
}

/* The runs as a table; as in bench_print_table, columns for open runs only when there are some. */
static void html_runs_table(FILE *f, const struct bench_opts *o, const struct bench_result *rs,
                            int n)
{
    int ws = o->proto == BENCH_WS, any_open = 0;
    char c[32];
    for (int i = 0; i < n; i++)
        any_open |= is_open(&rs[i]);
    fprintf(f,
            "<div class=\"wide\"><table>\n<tr><th class=\"l\">run</th><th>mode</th><th>%s</th>%s"
            "<th>duration s</th>",
            ws ? "subscribers" : "connections", any_open ? "<th>target/s</th>" : "");
    fprintf(f, "<th>%s</th><th>%s</th>%s%s", ws ? "messages" : "requests", ws ? "msg/s" : "req/s",
            ws ? "<th>deliveries/s</th>" : "", any_open ? "<th>dropped</th>" : "");
    fprintf(f,
            "<th>errors</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th>"
            "<th>max ms</th>%s<th>cpu %%</th>%s</tr>\n",
            any_open ? "<th>p99 unc. ms</th>" : "",
            o->proto == BENCH_HTTP ? "<th class=\"l\">status</th>" : "");
    for (int i = 0; i < n; i++) {
        const struct bench_result *r = &rs[i];
        int open = is_open(r);
        fputs("<tr><td class=\"l\">", f);
        svg_escape(f, r->label);
        fprintf(f, "</td><td>%s</td><td>%d</td>", open ? "open" : "closed",
                ws ? r->load.subscribers : r->load.conns);
        if (any_open)
            fprintf(f, "<td>%s</td>", cell(c, sizeof c, open, r->load.rps, 1));
        fprintf(f, "<td>%.3f</td><td>%llu</td><td>%.1f</td>", r->elapsed_s,
                (unsigned long long)r->requests, bench_result_rps(r));
        if (ws)
            fprintf(f, "<td>%.1f</td>", deliveries_per_s(r));
        if (any_open)
            fprintf(f, "<td>%s</td>", cell(c, sizeof c, open, (double)r->dropped, 0));
        fprintf(f, "<td>%llu", (unsigned long long)r->errors_total);
        if (r->errors_total) {
            fputs("<br><small>", f);
            print_error_kinds(f, r, 1);
            fputs("</small>", f);
        }
        fprintf(f, "</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td>",
                pct_ms(r->lat, 50), pct_ms(r->lat, 90), pct_ms(r->lat, 99), pct_ms(r->lat, 99.9),
                max_ms(r->lat));
        if (any_open)
            fprintf(f, "<td>%s</td>", cell(c, sizeof c, open, pct_ms(r->lat_unc, 99), 3));
        fprintf(f, "<td>%.1f</td>", r->cpu_pct);
        if (o->proto == BENCH_HTTP) {
            fputs("<td class=\"l\">", f);
            for (int s = 0, first = 1; s < BENCH_MAX_STATUS; s++) {
                if (r->status[s]) {
                    fprintf(f, "%s%d: %llu", first ? "" : "<br>", s,
                            (unsigned long long)r->status[s]);
                    first = 0;
                }
            }
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table></div>\n", f);
}

static const char html_style[] =
    "body{font-family:sans-serif;margin:2em;color:#222}\n"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\n"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top;"
    "white-space:nowrap}\n"
    "th{background:#f3f3f3}\n"
    ".params th,.params td,th.l,td.l{text-align:left}\n"
    "small{color:#666}\n"
    ".wide{overflow-x:auto}\n"
    "svg{display:block;margin:1em 0}\n";

int bench_write_html(const char *path, const struct bench_opts *o, const struct bench_result *rs,
                     int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const char *mode = o->mode_name ? o->mode_name : "", *url = o->url ? o->url : "";
    fputs("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>weft "
          "bench ",
          f);
    svg_escape(f, mode);
    fputs(" ", f);
    svg_escape(f, url);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>weft bench ", html_style);
    svg_escape(f, mode);
    fputs("</h1>\n", f);
    html_params(f, o);
    fputs("<h2>Runs</h2>\n", f);
    html_runs_table(f, o, rs, n);
    fputs("<h2>Latency by percentile</h2>\n<p>The share of requests answered within a latency: "
          "x is the percentile on a scale of nines (90 %, 99 %, 99.9 % ... equally spaced), y "
          "the latency at that percentile. Open runs count latency from the scheduled start "
          "(corrected, solid); the uncorrected curve (dashed) counts from the actual send.</p>\n",
          f);
    html_percentile_chart(f, o, rs, n);
    fputs("<h2>Over time</h2>\n<p>Per time slot: the mean and the largest latency of the "
          "requests that completed in it, and how many completed per second.</p>\n",
          f);
    for (int i = 0; i < n; i++) {
        fputs("<h3>", f);
        svg_escape(f, rs[i].label);
        fputs("</h3>\n", f);
        html_timeline_charts(f, o, &rs[i]);
    }
    fputs("<p><small>Written by weft " WEFT_VERSION ".</small></p>\n</body>\n</html>\n", f);
    int err = ferror(f);
    if (fclose(f) != 0 || err) {
        if (err)
            errno = EIO;
        return -1;
    }
    return 0;
}

/* ---- the progress line ---- */

/* The previous call's values, for the rate over the last interval. A static, not a context:
 * there is one progress line per process (stderr), drawn by the main thread only. */
static struct {
    double elapsed_s;
    uint64_t requests;
} progress_prev;

void bench_progress(const struct bench_opts *o, const struct bench_load *l, double elapsed_s,
                    uint64_t requests, uint64_t errors, int done)
{
    if (done) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        progress_prev.elapsed_s = 0;
        progress_prev.requests = 0;
        return;
    }
    if (elapsed_s < progress_prev.elapsed_s || requests < progress_prev.requests) {
        progress_prev.elapsed_s = 0; /* a new run */
        progress_prev.requests = 0;
    }
    double dt = elapsed_s - progress_prev.elapsed_s;
    double rate = dt > 0 ? (double)(requests - progress_prev.requests) / dt : 0;
    progress_prev.elapsed_s = elapsed_s;
    progress_prev.requests = requests;
    int ws = o->proto == BENCH_WS;
    char planned[48] = "", line[256];
    if (l->total)
        snprintf(planned, sizeof planned, " / %llu", (unsigned long long)l->total);
    else
        snprintf(planned, sizeof planned, " / %.1f s", l->duration_s);
    int len = snprintf(line, sizeof line, "\r%.1f s%s  %s %llu%s  %s/s %.1f  errors %llu\033[K",
                       elapsed_s, l->total ? "" : planned, ws ? "messages" : "requests",
                       (unsigned long long)requests, l->total ? planned : "", ws ? "msg" : "req",
                       rate, (unsigned long long)errors);
    if (len > 0)
        fwrite(line, 1, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1, stderr);
    fflush(stderr);
}
