/* modes: what each `weft bench MODE` does with its runs. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"

/* The load of a plain closed or open call. */
static struct bench_load load_of(const struct bench_opts *o)
{
    return (struct bench_load){.mode = o->cmd == CMD_OPEN ? BENCH_OPEN : BENCH_CLOSED,
                               .conns = o->conns,
                               .rps = o->rps,
                               .duration_s = o->total ? 0 : o->duration_s,
                               .total = o->total,
                               .threads = o->threads,
                               .subscribers = o->subscribers,
                               .warmup_s = o->warmup_s};
}

/* Writes the files asked for and returns the exit status the results call for. */
static int finish(const struct bench_opts *o, const struct bench_result *rs, int n)
{
    int rc = 0;
    long long batch = (long long)time(NULL);
    if (o->json_path && bench_write_json(o->json_path, o, rs, n) < 0) {
        fprintf(stderr, "weft bench: cannot write %s\n", o->json_path);
        rc = 1;
    }
    if (o->csv_path && bench_write_csv(o->csv_path, o, rs, n, batch) < 0) {
        fprintf(stderr, "weft bench: cannot write %s\n", o->csv_path);
        rc = 1;
    }
    if (o->html_path && bench_write_html(o->html_path, o, rs, n) < 0) {
        fprintf(stderr, "weft bench: cannot write %s\n", o->html_path);
        rc = 1;
    }
    uint64_t reqs = 0, errs = 0;
    for (int i = 0; i < n; i++) {
        reqs += rs[i].requests;
        errs += rs[i].errors_total;
    }
    if (o->strict && errs > 0)
        rc = 1;
    if (o->max_error_rate >= 0 && errs > 0 &&
        (reqs == 0 || (double)errs / (double)reqs > o->max_error_rate))
        rc = 1;
    return rc;
}

static int mode_single(const struct bench_opts *o, const struct bench_target *t)
{
    struct bench_result r;
    if (bench_result_init(&r) < 0) {
        fprintf(stderr, "weft bench: out of memory\n");
        return 1;
    }
    struct bench_load l = load_of(o);
    snprintf(r.label, sizeof r.label, "%s", o->mode_name);
    int rc = 1;
    if (bench_run(o, t, &l, &r) == 0) {
        bench_print_result(stdout, o, &r);
        fflush(stdout);
        rc = finish(o, &r, 1);
    }
    bench_result_free(&r);
    return rc;
}

int bench_mode_run(const struct bench_opts *o, const struct bench_target *t)
{
    switch (o->cmd) {
    case CMD_CLOSED:
    case CMD_OPEN:
        return mode_single(o, t);
    default:
        fprintf(stderr, "weft bench: mode '%s' is not built yet\n", o->mode_name);
        return 2;
    }
}
