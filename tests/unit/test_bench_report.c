/* Unit tests for bench/report and bench/svg: CSV (header, RFC 4180 quoting, appending under one
 * header, the batch timestamp, refusing a file with other columns), JSON (one run, several runs),
 * HTML (self-contained, escaped, the charts' axes and slots), the table of runs, the progress
 * line and the chart's tick steps. Results are built by hand with bench_result_init and
 * hist_record; files go to a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/svg.h"

#define URL_TRICKY "http://h.test:8080/a,b?q=\"x\"&r=<y>"

/* ---- files ---- */

struct tmpdir {
    char dir[64];
    char path[4][128];
};

static void tmp_open(struct tmpdir *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/weft-report-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    for (int i = 0; i < 4; i++)
        snprintf(t->path[i], sizeof t->path[i], "%s/f%d", t->dir, i);
}

static void tmp_close(struct tmpdir *t)
{
    for (int i = 0; i < 4; i++)
        unlink(t->path[i]);
    assert_int_equal(rmdir(t->dir), 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    do {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = 0;
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- results ---- */

static struct bench_opts opts_of(enum bench_cmd cmd, const char *mode, const char *url)
{
    return (struct bench_opts){.cmd = cmd,
                               .mode_name = mode,
                               .proto = BENCH_HTTP,
                               .conns = 10,
                               .duration_s = 1,
                               .threads = 2,
                               .timeout_s = 10,
                               .method = "GET",
                               .repeat = 1,
                               .max_error_rate = -1,
                               .rps = 500,
                               .url = url};
}

/* A run of `count` requests with latencies base, 2 base, ... us, 1 s long (10 slots of 0.1 s),
 * two timeouts, and for open runs uncorrected latencies half the corrected ones. */
static void result_make(struct bench_result *r, const char *label, enum bench_mode mode, int count,
                        uint64_t base)
{
    assert_int_equal(bench_result_init(r), 0);
    snprintf(r->label, sizeof r->label, "%s", label);
    r->load = (struct bench_load){.mode = mode, .conns = 10, .threads = 2, .duration_s = 1};
    if (mode == BENCH_OPEN)
        r->load.rps = 1000;
    r->requests = (uint64_t)count;
    r->errors[BENCH_ERR_TIMEOUT] = 2;
    r->errors_total = 2;
    r->dropped = mode == BENCH_OPEN ? 7 : 0;
    r->status[200] = (uint64_t)count;
    r->elapsed_s = 1.0;
    r->cpu_pct = 12.5;
    r->tl->slot_us = 100000;
    for (int i = 1; i <= count; i++) {
        uint64_t v = base * (uint64_t)i;
        hist_record(r->lat, v);
        if (mode == BENCH_OPEN)
            hist_record(r->lat_unc, v / 2 + 1);
        int slot = (i - 1) * 10 / count;
        r->tl->count[slot]++;
        r->tl->sum_us[slot] += v;
        if (v > r->tl->max_us[slot])
            r->tl->max_us[slot] = v;
    }
}

static char *ms_text(const struct hist *h, double p)
{
    static char buf[4][32];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%.3f", (double)hist_percentile(h, p) / 1e3);
    return buf[k];
}

/* ---- an RFC 4180 reader, strict: a quote inside an unquoted field or a CR is an error ---- */

#define CSV_ROWS 16
#define CSV_COLS 64

struct csv_table {
    int rows;
    int cols[CSV_ROWS];
    char *cell[CSV_ROWS][CSV_COLS];
};

static int csv_parse(const char *p, struct csv_table *t)
{
    memset(t, 0, sizeof *t);
    char field[4096];
    int row = 0, col = 0;
    while (*p) {
        size_t len = 0;
        if (*p == '"') {
            for (p++;; p++) {
                if (!*p)
                    return -1;
                if (*p == '"' && p[1] != '"')
                    break;
                if (*p == '"')
                    p++;
                if (len + 1 >= sizeof field)
                    return -1;
                field[len++] = *p;
            }
            p++;
            if (*p && *p != ',' && *p != '\n')
                return -1;
        } else {
            for (; *p && *p != ',' && *p != '\n'; p++) {
                if (*p == '"' || *p == '\r' || len + 1 >= sizeof field)
                    return -1;
                field[len++] = *p;
            }
        }
        field[len] = 0;
        if (row >= CSV_ROWS || col >= CSV_COLS)
            return -1;
        t->cell[row][col++] = strdup(field);
        if (*p == ',') {
            p++;
            if (!*p)
                return -1;
            continue;
        }
        t->cols[row++] = col;
        col = 0;
        if (*p == '\n')
            p++;
    }
    t->rows = row;
    return 0;
}

static void csv_free(struct csv_table *t)
{
    for (int r = 0; r < CSV_ROWS; r++)
        for (int c = 0; c < CSV_COLS; c++)
            free(t->cell[r][c]);
}

/* The cell of column `name` (from the header row) in row `row`. */
static const char *csv_get(const struct csv_table *t, int row, const char *name)
{
    for (int c = 0; c < t->cols[0]; c++)
        if (strcmp(t->cell[0][c], name) == 0)
            return t->cell[row][c];
    fail_msg("no column %s", name);
    return NULL;
}

static void csv_load(const char *path, struct csv_table *t)
{
    char *text = slurp(path);
    assert_true(text[0] && text[strlen(text) - 1] == '\n');
    assert_int_equal(csv_parse(text, t), 0);
    free(text);
    assert_true(t->rows >= 1);
    for (int r = 1; r < t->rows; r++)
        assert_int_equal(t->cols[r], t->cols[0]);
}

/* ---- CSV ---- */

static void test_csv_header_quoting_and_values(void **state)
{
    struct tmpdir d;
    tmp_open(&d);
    struct bench_opts o = opts_of(CMD_CLOSED, "closed", URL_TRICKY);
    struct bench_result r;
    result_make(&r, "say \"hi\", then\nleave", BENCH_CLOSED, 1000, 10);
    assert_int_equal(bench_write_csv(d.path[0], &o, &r, 1, 1700000000), 0);

    struct csv_table t;
    csv_load(d.path[0], &t);
    assert_int_equal(t.rows, 2);
    assert_string_equal(t.cell[0][0], "batch_ts");
    assert_int_equal(t.cols[0], 33);
    assert_string_equal(csv_get(&t, 1, "batch_ts"), "1700000000");
    assert_string_equal(csv_get(&t, 1, "batch_time"), "2023-11-14T22:13:20Z");
    assert_string_equal(csv_get(&t, 1, "call"), "closed");
    assert_string_equal(csv_get(&t, 1, "mode"), "closed");
    assert_string_equal(csv_get(&t, 1, "url"), URL_TRICKY);
    assert_string_equal(csv_get(&t, 1, "label"), "say \"hi\", then\nleave");
    assert_string_equal(csv_get(&t, 1, "protocol"), "http");
    assert_string_equal(csv_get(&t, 1, "threads"), "2");
    assert_string_equal(csv_get(&t, 1, "connections"), "10");
    assert_string_equal(csv_get(&t, 1, "requests"), "1000");
    assert_string_equal(csv_get(&t, 1, "rps"), "1000.000");
    assert_string_equal(csv_get(&t, 1, "duration_s"), "1.000000");
    assert_string_equal(csv_get(&t, 1, "errors_total"), "2");
    assert_string_equal(csv_get(&t, 1, "errors_timeout"), "2");
    assert_string_equal(csv_get(&t, 1, "errors_connect"), "0");
    assert_string_equal(csv_get(&t, 1, "p50_ms"), ms_text(r.lat, 50));
    assert_string_equal(csv_get(&t, 1, "p90_ms"), ms_text(r.lat, 90));
    assert_string_equal(csv_get(&t, 1, "p99_ms"), ms_text(r.lat, 99));
    assert_string_equal(csv_get(&t, 1, "p99_9_ms"), ms_text(r.lat, 99.9));
    assert_string_equal(csv_get(&t, 1, "max_ms"), "10.000");
    assert_string_equal(csv_get(&t, 1, "mean_ms"), "5.005");
    assert_string_equal(csv_get(&t, 1, "cpu_percent"), "12.50");
    /* Columns for open runs and ws targets are empty for a closed http run. */
    assert_string_equal(csv_get(&t, 1, "target_rps"), "");
    assert_string_equal(csv_get(&t, 1, "dropped"), "");
    assert_string_equal(csv_get(&t, 1, "uncorrected_p99_ms"), "");
    assert_string_equal(csv_get(&t, 1, "subscribers"), "");
    assert_string_equal(csv_get(&t, 1, "deliveries"), "");
    csv_free(&t);
    bench_result_free(&r);
    tmp_close(&d);
}

static void test_csv_appends_under_one_header(void **state)
{
    struct tmpdir d;
    tmp_open(&d);
    struct bench_opts o = opts_of(CMD_PRESET, "preset", "http://h.test/");
    struct bench_result rs[2];
    result_make(&rs[0], "c=1", BENCH_CLOSED, 100, 20);
    result_make(&rs[1], "open 50%", BENCH_OPEN, 200, 30);
    assert_int_equal(bench_write_csv(d.path[0], &o, rs, 2, 1000), 0);
    assert_int_equal(bench_write_csv(d.path[0], &o, &rs[1], 1, 2000), 0);

    struct csv_table t;
    csv_load(d.path[0], &t);
    assert_int_equal(t.rows, 4);
    assert_string_equal(t.cell[0][0], "batch_ts");
    for (int r = 1; r < 4; r++)
        assert_string_not_equal(t.cell[r][0], "batch_ts");
    assert_string_equal(csv_get(&t, 1, "batch_ts"), "1000");
    assert_string_equal(csv_get(&t, 2, "batch_ts"), "1000");
    assert_string_equal(csv_get(&t, 3, "batch_ts"), "2000");
    assert_string_equal(csv_get(&t, 1, "batch_time"), csv_get(&t, 2, "batch_time"));
    assert_string_equal(csv_get(&t, 1, "label"), "c=1");
    assert_string_equal(csv_get(&t, 2, "label"), "open 50%");
    assert_string_equal(csv_get(&t, 2, "call"), "preset");
    assert_string_equal(csv_get(&t, 2, "mode"), "open");
    assert_string_equal(csv_get(&t, 2, "target_rps"), "1000.000");
    assert_string_equal(csv_get(&t, 2, "dropped"), "7");
    assert_string_equal(csv_get(&t, 2, "uncorrected_p50_ms"), ms_text(rs[1].lat_unc, 50));
    assert_string_equal(csv_get(&t, 2, "uncorrected_p99_ms"), ms_text(rs[1].lat_unc, 99));
    assert_string_equal(csv_get(&t, 3, "requests"), "200");
    csv_free(&t);

    /* A file that lost its last line end gets one before the new rows. */
    char *text = slurp(d.path[0]);
    text[strlen(text) - 1] = 0;
    spit(d.path[0], text);
    free(text);
    assert_int_equal(bench_write_csv(d.path[0], &o, &rs[0], 1, 3000), 0);
    csv_load(d.path[0], &t);
    assert_int_equal(t.rows, 5);
    assert_string_equal(csv_get(&t, 3, "cpu_percent"), "12.50");
    assert_string_equal(csv_get(&t, 4, "batch_ts"), "3000");
    csv_free(&t);

    for (int i = 0; i < 2; i++)
        bench_result_free(&rs[i]);
    tmp_close(&d);
}

static void test_csv_refuses_other_columns(void **state)
{
    struct tmpdir d;
    tmp_open(&d);
    struct bench_opts o = opts_of(CMD_CLOSED, "closed", "http://h.test/");
    struct bench_result r;
    result_make(&r, "closed", BENCH_CLOSED, 10, 100);

    const char *other = "batch_ts,label,requests\n1,old,5\n";
    spit(d.path[0], other);
    errno = 0;
    assert_int_equal(bench_write_csv(d.path[0], &o, &r, 1, 1), -1);
    assert_int_equal(errno, EINVAL);
    char *after = slurp(d.path[0]);
    assert_string_equal(after, other);
    free(after);

    /* A header line without its line end is not ours either. */
    assert_int_equal(bench_write_csv(d.path[1], &o, &r, 1, 1), 0);
    char *ours = slurp(d.path[1]);
    *strchr(ours, '\n') = 0;
    spit(d.path[2], ours);
    assert_int_equal(bench_write_csv(d.path[2], &o, &r, 1, 1), -1);
    free(ours);

    /* A directory that does not exist: -1 with the system's errno. */
    assert_int_equal(bench_write_csv("/nonexistent-weft-dir/x.csv", &o, &r, 1, 1), -1);
    assert_int_equal(errno, ENOENT);
    bench_result_free(&r);
    tmp_close(&d);
}

/* ---- JSON ---- */

static void test_json_one_run_and_several(void **state)
{
    struct tmpdir d;
    tmp_open(&d);
    struct bench_opts o = opts_of(CMD_CLOSED, "closed", URL_TRICKY);
    struct bench_result rs[2];
    result_make(&rs[0], "c=<1>", BENCH_CLOSED, 1000, 10);
    result_make(&rs[1], "open 90%", BENCH_OPEN, 500, 40);

    assert_int_equal(bench_write_json(d.path[0], &o, rs, 1), 0);
    json_error_t err;
    json_t *j = json_load_file(d.path[0], 0, &err);
    assert_non_null(j);
    assert_true(json_is_object(j));
    assert_string_equal(json_string_value(json_object_get(j, "label")), "c=<1>");
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "closed");
    assert_string_equal(json_string_value(json_object_get(j, "url")), URL_TRICKY);
    assert_string_equal(json_string_value(json_object_get(j, "protocol")), "http");
    assert_int_equal(json_integer_value(json_object_get(j, "requests")), 1000);
    assert_int_equal(json_integer_value(json_object_get(j, "errors_total")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "errors"), "timeout")),
                     2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "status"), "200")),
                     1000);
    json_t *lat = json_object_get(j, "latency_ms");
    assert_float_equal(json_real_value(json_object_get(lat, "p50")),
                       (double)hist_percentile(rs[0].lat, 50) / 1e3, 1e-9);
    assert_float_equal(json_real_value(json_object_get(lat, "p99_9")),
                       (double)hist_percentile(rs[0].lat, 99.9) / 1e3, 1e-9);
    assert_float_equal(json_real_value(json_object_get(lat, "max")), 10.0, 1e-9);
    assert_null(json_object_get(j, "target_rps"));
    assert_null(json_object_get(j, "latency_uncorrected_ms"));
    json_decref(j);

    o.mode_name = "sweep";
    assert_int_equal(bench_write_json(d.path[1], &o, rs, 2), 0);
    j = json_load_file(d.path[1], 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "sweep");
    json_t *runs = json_object_get(j, "runs");
    assert_int_equal(json_array_size(runs), 2);
    json_t *open = json_array_get(runs, 1);
    assert_string_equal(json_string_value(json_object_get(open, "label")), "open 90%");
    assert_string_equal(json_string_value(json_object_get(open, "mode")), "open");
    assert_float_equal(json_real_value(json_object_get(open, "target_rps")), 1000, 1e-9);
    assert_int_equal(json_integer_value(json_object_get(open, "dropped")), 7);
    json_t *unc = json_object_get(open, "latency_uncorrected_ms");
    assert_float_equal(json_real_value(json_object_get(unc, "p99")),
                       (double)hist_percentile(rs[1].lat_unc, 99) / 1e3, 1e-9);
    json_decref(j);

    for (int i = 0; i < 2; i++)
        bench_result_free(&rs[i]);
    tmp_close(&d);
}

/* ---- HTML ---- */

/* The points of the first series path after `title`: the number of M and L commands. */
static int path_points_after(const char *html, const char *title)
{
    const char *p = strstr(html, title);
    assert_non_null(p);
    p = strstr(p, "stroke-linecap=\"round\"");
    assert_non_null(p);
    p = strstr(p, " d=\"");
    assert_non_null(p);
    int n = 0;
    for (p += 4; *p != '"'; p++)
        n += *p == 'M' || *p == 'L';
    return n;
}

static void test_html_self_contained_and_escaped(void **state)
{
    struct tmpdir d;
    tmp_open(&d);
    struct bench_opts o = opts_of(CMD_SWEEP, "sweep", URL_TRICKY);
    struct bench_result rs[2];
    result_make(&rs[0], "<script>alert(1)</script>", BENCH_CLOSED, 1000, 10);
    result_make(&rs[1], "open 110%", BENCH_OPEN, 1000, 20);
    rs[1].elapsed_s = 1.07; /* 11 slots: the last one a short one of 0.07 s ... */
    rs[0].elapsed_s = 1.02; /* ... here one of 0.02 s, plotted with the slot before */
    assert_int_equal(bench_write_html(d.path[0], &o, rs, 2), 0);
    char *h = slurp(d.path[0]);

    assert_memory_equal(h, "<!doctype html>", 15);
    assert_non_null(strstr(h, "</html>\n"));
    assert_int_equal(count_of(h, "<svg"), 1 + 2 * 2);
    assert_int_equal(count_of(h, "</svg>"), count_of(h, "<svg"));
    assert_int_equal(count_of(h, "<table"), count_of(h, "</table>"));
    /* Nothing from elsewhere, and no scripts: the only URL is the target's, escaped. */
    assert_null(strstr(h, "<script"));
    assert_non_null(strstr(h, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    const char *esc = "http://h.test:8080/a,b?q=&quot;x&quot;&amp;r=&lt;y&gt;";
    int urls = 0;
    for (const char *p = strstr(h, "http"); p; p = strstr(p + 1, "http")) {
        if (strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) {
            assert_memory_equal(p, esc, strlen(esc));
            urls++;
        }
    }
    assert_true(urls >= 2); /* the title and the parameters */
    assert_null(strstr(h, "src="));
    assert_null(strstr(h, "href="));
    assert_null(strstr(h, "url("));
    assert_null(strstr(h, "@import"));
    assert_null(strstr(h, "xmlns"));

    /* Parameters and runs. */
    assert_non_null(strstr(h, "<th>threads</th><td>2</td>"));
    assert_non_null(strstr(h, "<th>duration</th><td>1 s</td>"));
    assert_non_null(strstr(h, "<th>date</th><td>20"));
    assert_non_null(strstr(h, "<td>1000.0</td>")); /* the open run's target */
    assert_non_null(strstr(h, "timeout 2"));

    /* The percentile axis reaches 99.9 % for 1000 samples, not further; open runs have both
     * curves. */
    assert_non_null(strstr(h, ">99.9%</text>"));
    assert_null(strstr(h, ">99.99%</text>"));
    assert_non_null(strstr(h, ">open 110% corrected</text>"));
    assert_non_null(strstr(h, ">open 110% uncorrected</text>"));
    assert_non_null(strstr(h, "stroke-dasharray"));

    /* Over time: only the slots the run lasted, a short last slot folded into the one before. */
    assert_int_equal(path_points_after(h, "Throughput over time: open 110%"), 11);
    assert_int_equal(path_points_after(h, "Throughput over time: &lt;script&gt;"), 10);
    assert_int_equal(path_points_after(h, "Latency over time: open 110%"),
                     10); /* the last is empty */
    free(h);

    for (int i = 0; i < 2; i++)
        bench_result_free(&rs[i]);
    assert_int_equal(bench_write_html("/nonexistent-weft-dir/x.html", &o, rs, 0), -1);
    tmp_close(&d);
}

/* ---- the table ---- */

/* The table in a string; the caller frees it. */
static char *table_of(const struct bench_opts *o, const struct bench_result *rs, int n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    bench_print_table(f, o, rs, n);
    fclose(f);
    char *copy = strdup(text); /* not text itself: gcc takes &text for a dangling pointer */
    free(text);
    assert_non_null(copy);
    return copy;
}

static void test_print_table(void **state)
{
    struct bench_opts o = opts_of(CMD_PRESET, "preset", "http://h.test/");
    struct bench_result rs[2];
    result_make(&rs[0], "c=1", BENCH_CLOSED, 100, 10);
    result_make(&rs[1], "open 50%", BENCH_OPEN, 100, 10);

    char *t = table_of(&o, rs, 1);
    assert_non_null(strstr(t, "p90 ms"));
    assert_non_null(strstr(t, "errors"));
    assert_null(strstr(t, "target/s")); /* no open run: no open columns */
    assert_null(strstr(t, "p99 unc"));
    assert_non_null(strstr(t, "\nc=1 "));
    assert_non_null(strstr(t, "errors in c=1: timeout 2\n"));
    free(t);

    t = table_of(&o, rs, 2);
    assert_non_null(strstr(t, "target/s"));
    assert_non_null(strstr(t, "dropped"));
    assert_non_null(strstr(t, "p99 unc"));
    char want[128];
    snprintf(want, sizeof want, " %9s ", ms_text(rs[1].lat_unc, 99));
    assert_non_null(strstr(strstr(t, "\nopen 50%"), want));
    assert_non_null(strstr(strstr(t, "\nopen 50%"), "1000.0"));
    char *closed_row = strstr(t, "\nc=1 ");
    assert_non_null(closed_row);
    assert_non_null(strstr(closed_row, " - "));
    free(t);

    o.proto = BENCH_WS;
    rs[0].deliveries = 5000;
    t = table_of(&o, rs, 1);
    assert_non_null(strstr(t, "deliveries/s"));
    assert_non_null(strstr(t, "5000.0"));
    free(t);
    for (int i = 0; i < 2; i++)
        bench_result_free(&rs[i]);
}

/* ---- the progress line ---- */

static void test_progress_line(void **state)
{
    struct tmpdir d;
    tmp_open(&d);
    struct bench_opts o = opts_of(CMD_CLOSED, "closed", "http://h.test/");
    struct bench_load timed = {.mode = BENCH_CLOSED, .conns = 1, .duration_s = 10, .threads = 1};
    struct bench_load counted = {.mode = BENCH_CLOSED, .conns = 1, .total = 5000, .threads = 1};

    fflush(stderr);
    int saved = dup(2), fd = open(d.path[0], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    bench_progress(&o, &timed, 1.0, 1000, 0, 0);
    bench_progress(&o, &timed, 2.0, 3000, 1, 0);
    bench_progress(&o, &timed, 0, 0, 0, 1);
    bench_progress(&o, &counted, 0.5, 100, 0, 0); /* a new run: the rate starts over */
    bench_progress(&o, &counted, 0, 0, 0, 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);

    char *s = slurp(d.path[0]);
    assert_null(strchr(s, '\n'));
    assert_int_equal(count_of(s, "\r"), 5);
    assert_int_equal(count_of(s, "\033[K"), 5);
    const char *want = "\r1.0 s / 10.0 s  requests 1000  req/s 1000.0  errors 0\033[K"
                       "\r2.0 s / 10.0 s  requests 3000  req/s 2000.0  errors 1\033[K"
                       "\r\033[K"
                       "\r0.5 s  requests 100 / 5000  req/s 200.0  errors 0\033[K"
                       "\r\033[K";
    assert_string_equal(s, want);
    free(s);
    tmp_close(&d);
}

/* ---- svg ---- */

static void test_svg_nice_step(void **state)
{
    assert_float_equal(svg_nice_step(1, 5), 0.2, 1e-12);
    assert_float_equal(svg_nice_step(5, 5), 1, 1e-12);
    assert_float_equal(svg_nice_step(92, 5), 20, 1e-12);
    assert_float_equal(svg_nice_step(2.0036, 8), 0.2, 1e-12);
    assert_float_equal(svg_nice_step(63000, 5), 10000, 1e-9);
    assert_float_equal(svg_nice_step(0.004, 5), 0.001, 1e-15);
    assert_float_equal(svg_nice_step(0, 5), 1, 0);
    assert_float_equal(svg_nice_step(-3, 5), 1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_header_quoting_and_values),
        cmocka_unit_test(test_csv_appends_under_one_header),
        cmocka_unit_test(test_csv_refuses_other_columns),
        cmocka_unit_test(test_json_one_run_and_several),
        cmocka_unit_test(test_html_self_contained_and_escaped),
        cmocka_unit_test(test_print_table),
        cmocka_unit_test(test_progress_line),
        cmocka_unit_test(test_svg_nice_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
