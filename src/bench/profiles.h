/* profiles: the settings of `weft bench preset`: the built-in profiles (smoke, standard,
 * stress), the overrides of a --config JSON file, and the small arithmetic sweeps and presets
 * share (which run is the median, how many connections the open runs get).
 *
 * Pure: no clock and no I/O, except bench_profile_load, which reads the file it is given. */
#ifndef WEFT_BENCH_PROFILES_H
#define WEFT_BENCH_PROFILES_H

#include <stddef.h>

#include "bench/bench.h"

#define BENCH_MAX_LOADS 16
#define BENCH_MIN_OPEN_CONNS 64

struct bench_profile {
    const char *name;
    int concurrencies[BENCH_MAX_CONCURRENCIES]; /* the sweep's points */
    int nconcurrencies;
    double duration_s;             /* each closed run of the sweep */
    int repeat;                    /* runs per sweep point; the median by req/s counts */
    double warmup_s;               /* before each sweep point and each open run, not recorded */
    double open_duration_s;        /* each open run */
    double loads[BENCH_MAX_LOADS]; /* the open runs' rates, as fractions of the capacity */
    int nloads;
    int threads;
    int concurrency_cap; /* open: most connections at once; 0: bench_profile_open_conns' default */
};

/* Fills p with the built-in profile `name`. 0, or -1 when there is no such profile. */
int bench_profile_builtin(const char *name, struct bench_profile *p);

/* Applies the JSON object in text[0..len) to p: each key present replaces that field. 0, or -1
 * with a message in err that names the key (or the JSON error) when a key is unknown, a value
 * is out of range or the text is not a JSON object; p is then left as it was. */
int bench_profile_apply_json(struct bench_profile *p, const char *text, size_t len, char *err,
                             size_t errlen);

/* bench_profile_apply_json on the contents of the file at path; messages start with the path. */
int bench_profile_load(struct bench_profile *p, const char *path, char *err, size_t errlen);

/* Connections of the open runs when the sweep peaked at best_conns: concurrency_cap when set,
 * else max(BENCH_MIN_OPEN_CONNS, 2 * best_conns), so the cap is not what limits a server that
 * keeps up. */
int bench_profile_open_conns(const struct bench_profile *p, int best_conns);

/* The index of the median of v[0..n) (n >= 1): the lower of the two middle values for an even
 * n (of two runs by req/s, the slower one counts). Equal values keep their order. */
int bench_median_index(const double *v, int n);

#endif
