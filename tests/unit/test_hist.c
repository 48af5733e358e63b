/* Unit tests for core/hist: bucket layout, percentiles against sorted exact values, merge,
 * count_le, clamping and the empty histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist.h"

#define NVALUES 100000

/* splitmix64: a fixed-seed PRNG so every run checks the same values. */
struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double rng_unit(struct rng *r)
{
    return ((double)(rng_next(r) >> 11) + 1.0) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static struct hist *hist_new(void)
{
    struct hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    hist_init(h);
    return h;
}

/* ---- bucket layout ---- */

static void test_bucket_count(void **state)
{
    (void)state;
    assert_int_equal(hist_bucket_of(0), 0);
    assert_int_equal(hist_bucket_of(HIST_MAX_VALUE), HIST_BUCKETS - 1);
    assert_int_equal(hist_bucket_lo(0), 0);
    assert_int_equal(hist_bucket_hi(HIST_BUCKETS - 1), HIST_MAX_VALUE);
    /* The spec's formula for the top bucket, written out, lands on the last index. */
    unsigned b = HIST_MAX_BITS - 1;
    uint64_t v = HIST_MAX_VALUE;
    size_t want = (b - HIST_SUB_BITS + 1) * HIST_SUB_BUCKETS +
                  ((v >> (b - HIST_SUB_BITS)) - HIST_SUB_BUCKETS);
    assert_int_equal(want, HIST_BUCKETS - 1);
}

/* Walking every bucket: they tile [0, HIST_MAX_VALUE] with no gap or overlap, in order, and each
 * is narrow enough for the stated relative error. Together this covers every value. */
static void test_buckets_tile(void **state)
{
    (void)state;
    uint64_t next = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
        assert_int_equal(lo, next);
        assert_true(lo <= hi);
        assert_int_equal(hist_bucket_of(lo), i);
        assert_int_equal(hist_bucket_of(hi), i);
        assert_int_equal(hist_bucket_of(lo + (hi - lo) / 2), i);
        if (lo < HIST_SUB_BUCKETS)
            assert_int_equal(hi, lo);
        else
            assert_true((hi - lo + 1) * HIST_SUB_BUCKETS <= lo);
        next = hi + 1;
    }
    assert_int_equal(next, HIST_MAX_VALUE + 1);
}

/* The spec's formula, independently computed, for cross-checking. */
static size_t ref_bucket(uint64_t v)
{
    if (v < HIST_SUB_BUCKETS)
        return (size_t)v;
    unsigned b = 0;
    while (b < 63 && (v >> (b + 1)) != 0)
        b++;
    return (b - HIST_SUB_BITS + 1) * HIST_SUB_BUCKETS +
           ((v >> (b - HIST_SUB_BITS)) - HIST_SUB_BUCKETS);
}

static void test_power_of_two_boundaries(void **state)
{
    (void)state;
    for (unsigned b = 0; b <= HIST_MAX_BITS; b++) {
        uint64_t p = UINT64_C(1) << b;
        uint64_t vs[] = {p - 1, p, p + 1};
        for (size_t k = 0; k < 3; k++) {
            uint64_t v = vs[k];
            if (v > HIST_MAX_VALUE)
                continue;
            size_t i = hist_bucket_of(v);
            assert_int_equal(i, ref_bucket(v));
            assert_true(hist_bucket_lo(i) <= v && v <= hist_bucket_hi(i));
        }
        /* A power of two starts a bucket, and the value below it ends the previous one. */
        if (p <= HIST_MAX_VALUE && b > 0) {
            assert_int_equal(hist_bucket_lo(hist_bucket_of(p)), p);
            assert_int_equal(hist_bucket_of(p), hist_bucket_of(p - 1) + 1);
        }
    }
}

static void test_random_values(void **state)
{
    (void)state;
    struct rng r = {1};
    size_t prev_i = 0;
    uint64_t prev_v = 0;
    for (int n = 0; n < 200000; n++) {
        /* A random bit length first, so that small values are as well covered as large. */
        unsigned bits = (unsigned)(rng_next(&r) % (HIST_MAX_BITS + 1));
        uint64_t v = bits ? rng_next(&r) >> (64 - bits) : 0;
        size_t i = hist_bucket_of(v);
        assert_true(i < HIST_BUCKETS);
        assert_int_equal(i, ref_bucket(v));
        uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
        assert_true(lo <= v && v <= hi);
        assert_true((double)(hi - v) <= (double)v / HIST_SUB_BUCKETS);
        /* Monotonic: a larger value never lands in an earlier bucket. */
        if (v > prev_v)
            assert_true(i >= prev_i);
        else if (v < prev_v)
            assert_true(i <= prev_i);
        prev_v = v;
        prev_i = i;
    }
}

/* ---- percentiles against the exact values ---- */

static const double pcts[] = {0,  0.1, 1,  5,  10,   25,   33.3,  50,     66.7,
                              75, 90,  95, 99, 99.5, 99.9, 99.99, 99.999, 100};

/* Records vals, then checks every percentile against the sorted values using the same rank rule
 * (ceil(p/100 * n), p = 0 the minimum), and min, max and mean exactly. */
static void check_distribution(uint64_t *vals, size_t n)
{
    struct hist *h = hist_new();
    long double sum = 0;
    for (size_t i = 0; i < n; i++) {
        hist_record(h, vals[i]);
        sum += vals[i];
    }
    qsort(vals, n, sizeof(vals[0]), cmp_u64);

    assert_int_equal(h->count, n);
    assert_int_equal(h->clamped, 0);
    assert_int_equal(h->min, vals[0]);
    assert_int_equal(h->max, vals[n - 1]);
    assert_true(h->sum == (double)sum);
    assert_true(hist_mean(h) == (double)sum / (double)n);

    for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++) {
        double p = pcts[k];
        size_t rank = (size_t)ceil(p / 100.0 * (double)n);
        if (rank < 1)
            rank = 1;
        if (rank > n)
            rank = n;
        uint64_t exact = vals[rank - 1];
        uint64_t got = hist_percentile(h, p);
        /* Reported as the bucket's top, so never below the exact value, and within 1/128 above. */
        assert_true(got >= exact);
        assert_true((double)(got - exact) <= (double)exact / HIST_SUB_BUCKETS);
        assert_true(got >= h->min && got <= h->max);
    }
    assert_int_equal(hist_percentile(h, 0), vals[0]);
    assert_int_equal(hist_percentile(h, 100), vals[n - 1]);
    free(h);
}

static void test_uniform(void **state)
{
    (void)state;
    struct rng r = {2};
    uint64_t *v = malloc(NVALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < NVALUES; i++)
        v[i] = 100 + rng_next(&r) % 10000;
    check_distribution(v, NVALUES);
    free(v);
}

static void test_exponential(void **state)
{
    (void)state;
    struct rng r = {3};
    uint64_t *v = malloc(NVALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < NVALUES; i++)
        v[i] = (uint64_t)(-2000.0 * log(rng_unit(&r)));
    check_distribution(v, NVALUES);
    free(v);
}

/* Most requests fast, a tenth slow: the percentiles around the gap are the ones that go wrong. */
static void test_bimodal(void **state)
{
    (void)state;
    struct rng r = {4};
    uint64_t *v = malloc(NVALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < NVALUES; i++) {
        if (rng_next(&r) % 10 == 0)
            v[i] = 50000 + rng_next(&r) % 20000;
        else
            v[i] = 200 + rng_next(&r) % 300;
    }
    check_distribution(v, NVALUES);
    free(v);
}

static void test_constant(void **state)
{
    (void)state;
    uint64_t *v = malloc(1000 * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < 1000; i++)
        v[i] = 12345;
    check_distribution(v, 1000);

    /* Clamping to [min, max] makes a constant exact, whatever its bucket's width. */
    struct hist *h = hist_new();
    hist_record_n(h, 12345, 1000);
    for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++)
        assert_int_equal(hist_percentile(h, pcts[k]), 12345);
    free(h);
    free(v);
}

static void test_single_value(void **state)
{
    (void)state;
    uint64_t v[1] = {987654321};
    check_distribution(v, 1);

    struct hist *h = hist_new();
    hist_record(h, 0);
    assert_int_equal(hist_percentile(h, 50), 0);
    assert_int_equal(h->min, 0);
    assert_int_equal(h->max, 0);
    free(h);
}

/* Log-uniform from 1 us to 60 s: every bucket width from 1 to 2^19 is exercised. */
static void test_wide_range(void **state)
{
    (void)state;
    struct rng r = {5};
    uint64_t *v = malloc(NVALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < NVALUES; i++)
        v[i] = (uint64_t)exp(rng_unit(&r) * log(60e6));
    v[0] = 1;
    v[1] = 60000000;
    check_distribution(v, NVALUES);
    free(v);
}

static void test_record_n(void **state)
{
    (void)state;
    struct hist *a = hist_new(), *b = hist_new();
    for (int i = 0; i < 7; i++)
        hist_record(a, 4321);
    hist_record(a, 5);
    hist_record_n(b, 4321, 7);
    hist_record_n(b, 5, 1);
    hist_record_n(b, 99, 0);
    assert_memory_equal(a, b, sizeof(*a));
    free(a);
    free(b);
}

/* ---- clamping, merge, count_le, empty ---- */

static void test_clamping(void **state)
{
    (void)state;
    struct hist *h = hist_new();
    hist_record(h, 10);
    hist_record(h, HIST_MAX_VALUE);
    hist_record(h, HIST_MAX_VALUE + 1);
    hist_record(h, UINT64_MAX);
    hist_record_n(h, UINT64_C(1) << 40, 3);
    assert_int_equal(h->count, 7);
    assert_int_equal(h->clamped, 5);
    assert_int_equal(h->max, HIST_MAX_VALUE);
    assert_int_equal(h->min, 10);
    assert_int_equal(h->counts[HIST_BUCKETS - 1], 6);
    assert_int_equal(hist_percentile(h, 100), HIST_MAX_VALUE);
    assert_int_equal(hist_percentile(h, 50), HIST_MAX_VALUE);
    assert_true(h->sum == 10.0 + 6.0 * (double)HIST_MAX_VALUE);
    assert_int_equal(hist_bucket_of(UINT64_MAX), HIST_BUCKETS - 1);
    assert_int_equal(hist_bucket_of(HIST_MAX_VALUE + 1), HIST_BUCKETS - 1);
    assert_int_equal(hist_count_le(h, HIST_MAX_VALUE), 7);
    assert_int_equal(hist_count_le(h, HIST_MAX_VALUE - 1), 1);
    free(h);
}

static void test_merge(void **state)
{
    (void)state;
    struct rng r = {6};
    struct hist *a = hist_new(), *b = hist_new(), *all = hist_new();
    for (int i = 0; i < 20000; i++) {
        uint64_t v = (uint64_t)(-500.0 * log(rng_unit(&r)));
        hist_record(a, v);
        hist_record(all, v);
    }
    for (int i = 0; i < 20000; i++) {
        uint64_t v = 100000 + rng_next(&r) % 1000000;
        hist_record(b, v);
        hist_record(all, v);
    }
    hist_record(b, UINT64_MAX);
    hist_record(all, UINT64_MAX);

    hist_merge(a, b);
    /* Sums of integers below 2^53 are exact in any order, so the structs match byte for byte. */
    assert_memory_equal(a, all, sizeof(*a));

    /* Merging an empty histogram changes nothing, and into an empty one copies. */
    struct hist *e = hist_new();
    hist_merge(a, e);
    assert_memory_equal(a, all, sizeof(*a));
    hist_merge(e, all);
    assert_memory_equal(e, all, sizeof(*e));
    free(a);
    free(b);
    free(all);
    free(e);
}

/* ---- correction for coordinated omission (hist_correct) ---- */

/* The correction done value by value, as wrk does it over exact microseconds: every v > 2E adds
 * v - E, v - 2E, ... while the value stays above E. */
static void correct_slowly(struct hist *dst, const uint64_t *vals, size_t n, uint64_t e)
{
    for (size_t i = 0; i < n; i++) {
        hist_record(dst, vals[i]);
        for (uint64_t m = vals[i] - e; vals[i] > 2 * e && m > e; m -= e)
            hist_record(dst, m);
    }
}

static void test_correct_exact_small_values(void **state)
{
    (void)state;
    /* Below 2 * HIST_SUB_BUCKETS every value has its own bucket: the result is exact. */
    struct rng r = {7};
    uint64_t vals[5000];
    struct hist *h = hist_new(), *want = hist_new(), *got = hist_new();
    for (size_t i = 0; i < 5000; i++) {
        vals[i] = 1 + rng_next(&r) % (2 * HIST_SUB_BUCKETS - 1);
        hist_record(h, vals[i]);
    }
    const uint64_t intervals[] = {1, 3, 7, 50, 127, 300};
    for (size_t k = 0; k < sizeof intervals / sizeof intervals[0]; k++) {
        hist_init(want);
        correct_slowly(want, vals, 5000, intervals[k]);
        hist_correct(got, h, intervals[k]);
        assert_memory_equal(got->counts, want->counts, sizeof(want->counts));
        assert_int_equal(got->count, want->count);
        assert_int_equal(got->min, want->min);
        assert_int_equal(got->max, want->max);
        assert_true(fabs(got->sum - want->sum) < 0.5);
    }
    free(h);
    free(want);
    free(got);
}

static void test_correct_large_values(void **state)
{
    (void)state;
    /* Wide buckets: each bucket's values count as its middle, so the result equals correcting
     * the middles one by one, and its percentiles are within the stated error of the exact
     * correction's. */
    struct rng r = {8};
    enum { N = 20000 };
    uint64_t *vals = malloc(N * sizeof(*vals));
    assert_non_null(vals);
    struct hist *h = hist_new(), *exact = hist_new(), *mids = hist_new(), *got = hist_new();
    double mids_sum = 0; /* of the middles alone, without what the correction adds */
    for (size_t i = 0; i < N; i++) {
        vals[i] = 50 + (uint64_t)(-2000.0 * log(rng_unit(&r)));
        hist_record(h, vals[i]);
    }
    const uint64_t e = 80;
    correct_slowly(exact, vals, N, e);
    hist_correct(got, h, e);
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        if (!h->counts[i])
            continue;
        uint64_t lo = hist_bucket_lo(i), v = lo + (hist_bucket_hi(i) - lo) / 2;
        v = v < h->min ? h->min : v > h->max ? h->max : v;
        for (uint64_t c = 0; c < h->counts[i]; c++) {
            hist_record(mids, v);
            mids_sum += (double)v;
            for (uint64_t m = v - e; v > 2 * e && m > e; m -= e)
                hist_record(mids, m);
        }
    }
    assert_memory_equal(got->counts, mids->counts, sizeof(mids->counts));
    assert_int_equal(got->count, mids->count);
    /* The sum grows by what was added; the recorded values keep their exact sum. */
    assert_true(fabs((got->sum - h->sum) - (mids->sum - mids_sum)) <= 1e-9 * mids->sum);
    const double ps[] = {50, 90, 99, 99.9};
    for (size_t k = 0; k < 4; k++) {
        double a = (double)hist_percentile(got, ps[k]), b = (double)hist_percentile(exact, ps[k]);
        assert_true(fabs(a - b) <= 2.0 * b / HIST_SUB_BUCKETS);
    }
    free(vals);
    free(h);
    free(exact);
    free(mids);
    free(got);
}

static void test_correct_stall(void **state)
{
    (void)state;
    /* One connection, 9,900 answers of 100 us and one 1 s stall: measured, p99 is 100 us; a
     * closed loop that had kept its pace would have sent ~10,000 requests during the stall, and
     * the correction adds them (E = 200 us: ~5,000 samples spread over the stall, a third of
     * all, so p50 stays while p99 rises to near the stall). */
    struct hist *h = hist_new(), *got = hist_new(), *copy = hist_new();
    hist_record_n(h, 100, 9900);
    hist_record(h, 1000000);
    memcpy(copy, h, sizeof(*h));
    uint64_t e = (uint64_t)((9900.0 * 100 + 1000000) / 9901); /* run time / requests */
    hist_correct(got, h, e);
    assert_memory_equal(copy, h, sizeof(*h)); /* src untouched */
    assert_int_equal(got->count, 9901 + (1000000 - e - 1) / e);
    assert_int_equal(hist_percentile(got, 50), 100);
    assert_true(hist_percentile(got, 99) > 950000 && hist_percentile(got, 99) <= 1000000);
    assert_int_equal(hist_percentile(h, 99), 100);

    /* Nothing to add: no interval, an empty histogram, values all <= 2E. */
    hist_correct(got, h, 0);
    assert_memory_equal(got, h, sizeof(*h));
    struct hist *e0 = hist_new();
    hist_correct(got, e0, 100);
    assert_memory_equal(got, e0, sizeof(*e0));
    hist_correct(got, h, 500000);
    assert_memory_equal(got, h, sizeof(*h));
    free(h);
    free(got);
    free(copy);
    free(e0);
}

static uint64_t exact_count_le(const uint64_t *vals, size_t n, uint64_t v)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += vals[i] <= v;
    return c;
}

static void test_count_le(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct rng r = {7};
    uint64_t vals[N];
    struct hist *h = hist_new();
    for (size_t i = 0; i < N; i++) {
        vals[i] = 50 + (uint64_t)exp(rng_unit(&r) * log(1e7));
        hist_record(h, vals[i]);
    }
    qsort(vals, N, sizeof(vals[0]), cmp_u64);

    /* Prometheus-style bounds, in microseconds: 1 ms .. 10 s, plus the extremes. */
    uint64_t les[] = {0,    1,     49,    50,     100,     1000,     2500,
                      5000, 10000, 25000, 100000, 1000000, 10000000, HIST_MAX_VALUE,
                      0,    0,     0,     0};
    size_t nles = sizeof(les) / sizeof(les[0]);
    les[nles - 4] = vals[0];
    les[nles - 3] = vals[N - 1];
    les[nles - 2] = vals[N - 1] - 1;
    les[nles - 1] = vals[N / 2];
    for (size_t k = 0; k < nles; k++) {
        uint64_t v = les[k];
        uint64_t got = hist_count_le(h, v);
        /* Never over, and never under by more than v's own bucket holds below v. */
        assert_true(got <= exact_count_le(vals, N, v));
        size_t i = hist_bucket_of(v);
        uint64_t lo = hist_bucket_lo(i);
        if (lo > 0)
            assert_true(got >= exact_count_le(vals, N, lo - 1));
    }
    assert_int_equal(hist_count_le(h, vals[0] - 1), 0);
    assert_int_equal(hist_count_le(h, vals[N - 1]), N);
    assert_int_equal(hist_count_le(h, UINT64_MAX), N);

    /* Exact at every bucket's top. */
    for (size_t i = 0; i < HIST_BUCKETS; i += 7) {
        uint64_t hi = hist_bucket_hi(i);
        assert_int_equal(hist_count_le(h, hi), exact_count_le(vals, N, hi));
    }
    free(h);
}

static void test_empty(void **state)
{
    (void)state;
    struct hist *h = hist_new();
    assert_int_equal(h->count, 0);
    assert_int_equal(h->min, UINT64_MAX);
    assert_int_equal(h->max, 0);
    assert_true(hist_mean(h) == 0.0);
    assert_int_equal(hist_percentile(h, 0), 0);
    assert_int_equal(hist_percentile(h, 50), 0);
    assert_int_equal(hist_percentile(h, 100), 0);
    assert_int_equal(hist_count_le(h, 0), 0);
    assert_int_equal(hist_count_le(h, UINT64_MAX), 0);
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        assert_int_equal(h->counts[i], 0);
    free(h);
}

/* Out-of-range p is clamped, and NaN reads as the minimum instead of undefined behaviour. */
static void test_percentile_args(void **state)
{
    (void)state;
    struct hist *h = hist_new();
    hist_record(h, 10);
    hist_record(h, 1000);
    assert_int_equal(hist_percentile(h, -5), 10);
    assert_int_equal(hist_percentile(h, NAN), 10);
    assert_int_equal(hist_percentile(h, 250), 1000);
    assert_int_equal(hist_percentile(h, 50), 10);
    assert_int_equal(hist_percentile(h, 50.001), 1000);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_count),
        cmocka_unit_test(test_buckets_tile),
        cmocka_unit_test(test_power_of_two_boundaries),
        cmocka_unit_test(test_random_values),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_bimodal),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_single_value),
        cmocka_unit_test(test_wide_range),
        cmocka_unit_test(test_record_n),
        cmocka_unit_test(test_clamping),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_correct_exact_small_values),
        cmocka_unit_test(test_correct_large_values),
        cmocka_unit_test(test_correct_stall),
        cmocka_unit_test(test_count_le),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_percentile_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
