/* profiles: `weft bench preset`'s built-in profiles and their --config JSON overrides. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench/profiles.h"

#define MAX_CONNS 100000
#define MAX_SECONDS 86400.0
#define MAX_LOAD 100.0 /* an open run at 100 x the capacity is already far past it */

/* The fractions of the capacity every profile runs open at: well under it, near it, past it. */
static const double default_loads[] = {0.5, 0.9, 1.1};

struct builtin {
    const char *name;
    int concurrencies[BENCH_MAX_CONCURRENCIES];
    int nconcurrencies;
    double duration_s;
    int repeat;
    double warmup_s;
    double open_duration_s;
};

/* smoke checks that everything runs (about 6 s); standard is a measurement (about 2.5 min);
 * stress goes to a thousand connections with longer runs (about 5 min). */
static const struct builtin builtins[] = {
    {"smoke", {1, 4, 16}, 3, 1, 1, 0, 1},
    {"standard", {1, 2, 5, 10, 20, 50, 100}, 7, 5, 3, 1, 10},
    {"stress", {1, 10, 50, 100, 200, 500, 1000}, 7, 10, 3, 2, 20},
};

int bench_profile_builtin(const char *name, struct bench_profile *p)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        const struct builtin *b = &builtins[i];
        if (strcmp(name, b->name) != 0)
            continue;
        memset(p, 0, sizeof *p);
        p->name = b->name;
        memcpy(p->concurrencies, b->concurrencies, sizeof b->concurrencies);
        p->nconcurrencies = b->nconcurrencies;
        p->duration_s = b->duration_s;
        p->repeat = b->repeat;
        p->warmup_s = b->warmup_s;
        p->open_duration_s = b->open_duration_s;
        p->nloads = (int)(sizeof default_loads / sizeof default_loads[0]);
        memcpy(p->loads, default_loads, sizeof default_loads);
        p->threads = 2;
        return 0;
    }
    return -1;
}

/* An integer JSON value in [lo, hi]. */
static int get_int(const json_t *v, long long lo, long long hi, int *out)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return -1;
    *out = (int)x;
    return 0;
}

/* A number (integer or real) in (lo, hi], or [lo, hi] when lo_ok. */
static int get_num(const json_t *v, double lo, int lo_ok, double hi, double *out)
{
    if (!json_is_number(v))
        return -1;
    double x = json_number_value(v);
    if (!isfinite(x) || x > hi || x < lo || (x == lo && !lo_ok))
        return -1;
    *out = x;
    return 0;
}

/* A list of 1 to max values, each read by get_int or get_num's rules into out. */
static int get_int_list(const json_t *v, int max, long long lo, long long hi, int *out, int *n)
{
    size_t k = json_is_array(v) ? json_array_size(v) : 0;
    if (k == 0 || k > (size_t)max)
        return -1;
    for (size_t i = 0; i < k; i++)
        if (get_int(json_array_get(v, i), lo, hi, &out[i]) < 0)
            return -1;
    *n = (int)k;
    return 0;
}

static int get_num_list(const json_t *v, int max, double lo, double hi, double *out, int *n)
{
    size_t k = json_is_array(v) ? json_array_size(v) : 0;
    if (k == 0 || k > (size_t)max)
        return -1;
    for (size_t i = 0; i < k; i++)
        if (get_num(json_array_get(v, i), lo, 0, hi, &out[i]) < 0)
            return -1;
    *n = (int)k;
    return 0;
}

/* One key of the config object applied to p. 0, or -1 with err set. */
static int apply_key(struct bench_profile *p, const char *key, const json_t *v, char *err,
                     size_t errlen)
{
    if (strcmp(key, "concurrencies") == 0) {
        if (get_int_list(v, BENCH_MAX_CONCURRENCIES, 1, MAX_CONNS, p->concurrencies,
                         &p->nconcurrencies) == 0)
            return 0;
        snprintf(err, errlen,
                 "'concurrencies' must be a list of 1 to %d connection counts, each from 1 to %d",
                 BENCH_MAX_CONCURRENCIES, MAX_CONNS);
        return -1;
    }
    if (strcmp(key, "loads") == 0) {
        if (get_num_list(v, BENCH_MAX_LOADS, 0, MAX_LOAD, p->loads, &p->nloads) == 0)
            return 0;
        snprintf(err, errlen,
                 "'loads' must be a list of 1 to %d fractions of the capacity, each > 0 and <= %g",
                 BENCH_MAX_LOADS, MAX_LOAD);
        return -1;
    }
    int rc = 0;
    const char *want = NULL;
    if (strcmp(key, "duration") == 0) {
        rc = get_num(v, 0, 0, MAX_SECONDS, &p->duration_s);
        want = "a number of seconds > 0";
    } else if (strcmp(key, "open_duration") == 0) {
        rc = get_num(v, 0, 0, MAX_SECONDS, &p->open_duration_s);
        want = "a number of seconds > 0";
    } else if (strcmp(key, "warmup") == 0) {
        rc = get_num(v, 0, 1, MAX_SECONDS, &p->warmup_s);
        want = "a number of seconds >= 0";
    } else if (strcmp(key, "repeat") == 0) {
        rc = get_int(v, 1, 1000, &p->repeat);
        want = "an integer from 1 to 1000";
    } else if (strcmp(key, "threads") == 0) {
        rc = get_int(v, 1, 1024, &p->threads);
        want = "an integer from 1 to 1024";
    } else if (strcmp(key, "concurrency_cap") == 0) {
        rc = get_int(v, 1, MAX_CONNS, &p->concurrency_cap);
        want = "an integer from 1 to 100000";
    } else {
        snprintf(err, errlen,
                 "unknown key '%s' (known: concurrencies, duration, repeat, warmup, "
                 "open_duration, loads, threads, concurrency_cap)",
                 key);
        return -1;
    }
    if (rc < 0)
        snprintf(err, errlen, "'%s' must be %s", key, want);
    return rc;
}

int bench_profile_apply_json(struct bench_profile *p, const char *text, size_t len, char *err,
                             size_t errlen)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        snprintf(err, errlen, "line %d: %s", jerr.line, jerr.text);
        return -1;
    }
    int rc = 0;
    if (!json_is_object(j)) {
        snprintf(err, errlen, "not a JSON object ({\"concurrencies\": [1, 10], ...})");
        rc = -1;
    }
    /* Applied to a copy, so a bad key leaves p as it was. */
    struct bench_profile q = *p;
    const char *key;
    json_t *v;
    if (rc == 0) {
        json_object_foreach(j, key, v)
        {
            if (apply_key(&q, key, v, err, errlen) < 0) {
                rc = -1;
                break;
            }
        }
    }
    json_decref(j);
    if (rc == 0)
        *p = q;
    return rc;
}

int bench_profile_load(struct bench_profile *p, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* A config is a few lines; anything past 64 KiB is not one. */
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    int rd_err = ferror(f), too_big = n == sizeof buf;
    fclose(f);
    if (rd_err || too_big) {
        snprintf(err, errlen, "%s: %s", path, rd_err ? "read error" : "larger than 64 KiB");
        return -1;
    }
    char msg[512];
    if (bench_profile_apply_json(p, buf, n, msg, sizeof msg) < 0) {
        snprintf(err, errlen, "%s: %s", path, msg);
        return -1;
    }
    return 0;
}

int bench_profile_open_conns(const struct bench_profile *p, int best_conns)
{
    if (p->concurrency_cap > 0)
        return p->concurrency_cap;
    int c = best_conns > MAX_CONNS / 2 ? MAX_CONNS : 2 * best_conns;
    return c > BENCH_MIN_OPEN_CONNS ? c : BENCH_MIN_OPEN_CONNS;
}

int bench_median_index(const double *v, int n)
{
    /* The element with exactly (n - 1) / 2 others before it in (value, index) order; n is a
     * handful of runs, so counting is simpler than sorting a copy. */
    int want = (n - 1) / 2;
    for (int i = 0; i < n; i++) {
        int before = 0;
        for (int k = 0; k < n; k++)
            before += v[k] < v[i] || (v[k] == v[i] && k < i);
        if (before == want)
            return i;
    }
    return 0;
}
